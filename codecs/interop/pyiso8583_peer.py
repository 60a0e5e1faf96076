#!/usr/bin/env python3
"""Bank C's ISO 8583-like messages through pyiso8583 (PyPI), an implementation independent of ours.

Used by codecs/tests/iso8583_interop.rs. The field table below is typed in from the interface
specification (../shared/specs/bank-c-iso8583.md, "Message layout"), not generated from the Rust table,
so that the test compares two readings of the document as well as two codecs.

    python3 pyiso8583_peer.py encode   stdin: JSON list of messages; stdout: one line per message,
                                       the hex of the message (no length header) or `ERR <reason>`
    python3 pyiso8583_peer.py decode   stdin: one hex message per line; stdout: a JSON list, per line
                                       the decoded dict or {"error": reason}
    python3 pyiso8583_peer.py spec     stdout: the field table as JSON

A message is pyiso8583's dict: "t" the MTI, "2".."128" the fields; text as text (fixed fields already
padded: pyiso8583 checks fixed lengths but never pads), binary fields (F128) as upper-case hex.
Decoded dicts also carry "p" and "1", the primary and secondary bitmaps in hex.

pyiso8583 behaviour this relies on (checked against its 4.x source): it adds the secondary bitmap (and
sets bit 1) by itself when a field 65..128 is present and drops any "1" given; bitmaps with data_enc "b"
are 8 raw bytes; it reads bit 65 as "tertiary bitmap follows" (bank C has no F65, both sides reject
it); len_enc "ascii" with len_type 2/3 writes the length as 2/3 ASCII digits counting bytes of the
encoded value (so GBK lengths count bytes); it rejects trailing bytes after the last field.

Install: pip install pyiso8583
"""
import json
import sys

try:
    import iso8583
except ImportError:  # pragma: no cover
    sys.stderr.write("pyiso8583 is missing: pip install pyiso8583\n")
    sys.exit(3)


def _f(desc, data_enc, len_type, max_len):
    return {
        "data_enc": data_enc,
        "len_enc": "ascii",
        "len_type": len_type,
        "max_len": max_len,
        "desc": desc,
    }


FIXED, LL, LLL = 0, 2, 3

SPEC = {
    "h": _f("Message header (none)", "ascii", FIXED, 0),
    "t": _f("Message type", "ascii", FIXED, 4),
    "p": _f("Primary bitmap", "b", FIXED, 8),
    "1": _f("Secondary bitmap", "b", FIXED, 8),
    "2": _f("Recipient account", "ascii", LL, 28),
    "3": _f("Processing code", "ascii", FIXED, 6),
    "4": _f("Amount in fen", "ascii", FIXED, 12),
    "7": _f("Transmission date-time", "ascii", FIXED, 10),
    "11": _f("STAN", "ascii", FIXED, 6),
    "12": _f("Local time", "ascii", FIXED, 6),
    "13": _f("Local date", "ascii", FIXED, 4),
    "32": _f("Sending institution", "ascii", LL, 11),
    "37": _f("Item reference", "ascii", FIXED, 12),
    "39": _f("Response code", "ascii", FIXED, 2),
    "41": _f("Terminal", "ascii", FIXED, 8),
    "42": _f("Department code", "ascii", FIXED, 15),
    "48": _f("Recipient data", "gbk", LLL, 999),
    "49": _f("Currency", "ascii", FIXED, 3),
    "70": _f("Network management code", "ascii", FIXED, 3),
    "90": _f("Original data elements", "ascii", FIXED, 42),
    "100": _f("Account bank code", "ascii", LL, 12),
    "102": _f("Payer account", "ascii", LL, 32),
    "121": _f("Result data", "gbk", LLL, 999),
    "128": _f("MAC", "b", FIXED, 8),
}


def encode_all(messages):
    lines = []
    for doc in messages:
        try:
            raw, _ = iso8583.encode(dict(doc), SPEC)
            lines.append(bytes(raw).hex().upper())
        except (iso8583.EncodeError, KeyError, TypeError, ValueError) as e:
            lines.append("ERR " + type(e).__name__ + ": " + str(e).replace("\n", " "))
    return "\n".join(lines)


def decode_all(lines):
    out = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            doc, _ = iso8583.decode(bytes.fromhex(line), SPEC)
            out.append(doc)
        except (iso8583.DecodeError, KeyError, ValueError) as e:
            # KeyError: a bit set for a field this table does not have.
            out.append({"error": type(e).__name__ + ": " + str(e)})
    # ASCII-only JSON (\uXXXX escapes): independent of the locale's stdout encoding.
    return json.dumps(out)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "encode":
        print(encode_all(json.loads(sys.stdin.buffer.read().decode("utf-8"))))
    elif mode == "decode":
        print(decode_all(sys.stdin.buffer.read().decode("ascii").splitlines()))
    elif mode == "spec":
        print(json.dumps(SPEC))
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
