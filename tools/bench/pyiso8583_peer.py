#!/usr/bin/env python3
"""pyiso8583's throughput on bank C's messages: the peer of codecs/benches/iso8583_ratio.rs.

The field table is the one the interop test already uses (codecs/interop/pyiso8583_peer.py, typed in
from the interface specification), imported from there, not copied.

    python3 pyiso8583_peer.py check                 stdin: JSON list of pyiso8583 dicts
                                                    stdout: the hex of each encoded message, one a line
    python3 pyiso8583_peer.py MODE SECONDS          MODE: encode | decode | encode_decode
                                                    stdin: the same list; stdout: one JSON line
                                                    {"mode", "messages", "passes", "seconds",
                                                     "msgs_per_s", "cpu_seconds", "msgs_per_cpu_s",
                                                     "python", "pyiso8583"}

A timed run passes over the whole list again and again until SECONDS have gone by (checked after each
pass) and counts messages, per second of the clock and per second of this thread's CPU time
(`time.thread_time()`, which leaves out waiting for a core on a loaded machine). `decode` decodes the bytes pyiso8583 itself encoded before the clock
started. The dicts are passed to `iso8583.encode` as they are (it recomputes the bitmaps it stores in
them), without the defensive copy the interop peer makes: the copy would only slow pyiso8583 down.

Usually run by `cargo bench -p gw-codecs --bench iso8583_ratio`, which sends the messages.
"""
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

try:
    import iso8583
except ImportError:  # pragma: no cover
    sys.stderr.write("pyiso8583 is missing: pip install pyiso8583\n")
    sys.exit(3)

_INTEROP = Path(__file__).resolve().parents[2] / "codecs" / "interop" / "pyiso8583_peer.py"
_spec = importlib.util.spec_from_file_location("bank_c_interop_peer", _INTEROP)
_peer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_peer)
SPEC = _peer.SPEC


def timed(mode, docs, seconds):
    encoded = [bytes(iso8583.encode(d, SPEC)[0]) for d in docs]
    encode, decode = iso8583.encode, iso8583.decode
    passes = 0
    cpu_start = time.thread_time()
    start = time.perf_counter()
    while True:
        if mode == "encode":
            for d in docs:
                encode(d, SPEC)
        elif mode == "decode":
            for raw in encoded:
                decode(raw, SPEC)
        else:
            for d in docs:
                raw, _ = encode(d, SPEC)
                decode(raw, SPEC)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            cpu = time.thread_time() - cpu_start
            break
    return {
        "mode": mode,
        "messages": len(docs),
        "passes": passes,
        "seconds": elapsed,
        "msgs_per_s": passes * len(docs) / elapsed,
        "cpu_seconds": cpu,
        "msgs_per_cpu_s": passes * len(docs) / cpu,
        "python": platform.python_version(),
        "pyiso8583": getattr(iso8583, "__version__", "unknown"),
    }


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    docs = json.loads(sys.stdin.buffer.read().decode("utf-8")) if mode else None
    if mode == "check":
        for d in docs:
            print(bytes(iso8583.encode(dict(d), SPEC)[0]).hex().upper())
    elif mode in ("encode", "decode", "encode_decode") and len(sys.argv) == 3:
        print(json.dumps(timed(mode, docs, float(sys.argv[2]))))
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
