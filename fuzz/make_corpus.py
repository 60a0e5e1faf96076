#!/usr/bin/env python3
"""Seed corpus of the fuzz targets, cut from the golden fixtures of bank-profiles/fixtures/.

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


def read(path):
    with open(path, "rb") as f:
        return f.read()


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
