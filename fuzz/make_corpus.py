#!/usr/bin/env python3
"""Seed corpus of the fuzz targets, cut from the golden fixtures of bank-profiles/fixtures/ (and the
SMPP PDUs of codecs/tests/fixtures/smpp/).

    python3 fuzz/make_corpus.py          # (re)writes fuzz/corpus/<target>/seed-*
    python3 fuzz/make_corpus.py --check  # exit 1 and list the seeds that would change

Only `seed-*` files are written; inputs a fuzz run found (`crash-*`, `found-*`) are left alone.
"""
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "bank-profiles", "fixtures")
A, B, C = (os.path.join(FIX, b) for b in ("402241000015", "103241000018", "403241000011"))
SMPP = os.path.join(HERE, "..", "codecs", "tests", "fixtures", "smpp")
RECEIPT = (b"id:0000000001 sub:001 dlvrd:001 submit date:2503051200 done date:2503051201 "
           b"stat:DELIVRD err:000 text:Hello")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def hexfile(path):
    """An annotated golden PDU (codecs/tests/fixtures/smpp): hex, `#` comments."""
    with open(path) as f:
        return bytes.fromhex("".join(line.split("#")[0].strip() for line in f))


def case(path):
    return os.path.splitext(os.path.basename(path))[0]


def tlv(tags):
    out = b""
    for t in tags:
        v = t["value"].encode("gbk")
        out += t["tag"].encode("ascii") + b"%03d" % len(v) + v
    return out


def seeds():
    s = {}
    a = sorted(glob.glob(os.path.join(A, "*.bin")))
    c = sorted(glob.glob(os.path.join(C, "*.bin")))
    s["fixed_width_request"] = {case(p): read(p)[8:] for p in a if case(p).startswith("request_")}
    s["fixed_width_replies"] = {case(p): read(p)[8:] for p in a if not case(p).startswith("request_")}
    s["framing_ascii_len"] = {case(p): read(p) for p in a}
    s["framing_ascii_len"]["all_frames"] = b"".join(read(p) for p in a)
    s["iso8583_decode"] = {case(p): read(p)[2:] for p in c}
    s["framing_u16_len"] = {case(p): read(p) for p in c}
    s["framing_u16_len"]["all_frames"] = b"".join(read(p) for p in c)
    s["iso8583_tlv"] = {}
    for p in sorted(glob.glob(os.path.join(C, "*.json"))):
        if case(p) == "cases":
            continue
        for f in json.loads(read(p))["fields"]:
            if "tags" in f:
                s["iso8583_tlv"]["%s_f%d" % (case(p), f["number"])] = tlv(f["tags"])
    s["iso8583_tlv"]["spec_example"] = "NM004张三IT0011ID01822012219800101123X".encode("gbk")
    s["pain002_read"] = {case(p): read(p) for p in sorted(glob.glob(os.path.join(B, "*.xml")))}
    smpp = sorted(glob.glob(os.path.join(SMPP, "*.hex")))
    s["smpp_frame"] = {case(p): hexfile(p) for p in smpp}
    s["smpp_frame"]["all_pdus"] = b"".join(hexfile(p) for p in smpp)
    s["smpp_receipt"] = {
        "appendix_b": RECEIPT,
        "lenient": b"Stat:UNDELIV ID:ab-12 Done Date:240229235959  err:C01 Submit date:2402292359",
        "text_with_labels": b"id:1 stat:DELIVRD text:stat:REJECTD id:2",
    }
    return s


def main():
    check = "--check" in sys.argv[1:]
    changed = []
    for target, files in sorted(seeds().items()):
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for name, data in sorted(files.items()):
            path = os.path.join(d, "seed-" + name)
            if not os.path.exists(path) or read(path) != data:
                changed.append(os.path.relpath(path, HERE))
                if not check:
                    with open(path, "wb") as f:
                        f.write(data)
    if check:
        for p in changed:
            print("would change:", p)
        sys.exit(1 if changed else 0)
    print("wrote" if changed else "unchanged", len(changed), "seed(s)")


if __name__ == "__main__":
    main()
