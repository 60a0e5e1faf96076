#!/usr/bin/env python3
"""Runs the criterion codec benchmarks several times and prints the median of the runs.

    python3 tools/bench/codec_medians.py                    # 3 runs of cargo bench -p gw-codecs --bench codecs
    python3 tools/bench/codec_medians.py --runs 5 -- fixed_width iso8583
    python3 tools/bench/codec_medians.py --clock cpu        # on-CPU time (GW_BENCH_CLOCK=cpu)

Each run is `cargo bench -p gw-codecs --bench codecs [-- FILTER...]`; after it, every benchmark's
figure is criterion's *median* time per iteration (target/criterion/<group>/<bench>/new/estimates.json:
the median of the samples, less moved by bursts of load than the mean). The table gives, per benchmark,
the median over the runs, with the slowest and fastest run, in items/s and MB/s (10^6 bytes), and the
load average around each run: on a machine shared with other builds, say so next to the figures.
With `--clock cpu` the benchmarks time this thread's on-CPU time instead of the clock (waiting for a
core left out; caches shared with the other work still slow it down), in groups named `cpu-...`.

Issue 9's targets are checked on the medians: fixed-width GBK >= 2M records/s (submit detail encode
and decode), pain.001 writing >= 500k items/s.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGETS = {
    "fixed_width/submit_detail_encode": 2_000_000,
    "fixed_width/submit_detail_decode": 2_000_000,
    "pain001/write_transaction": 500_000,
}


def criterion_dir():
    target = os.environ.get("CARGO_TARGET_DIR")
    if not target:
        meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=REPO,
                              check=True, capture_output=True, text=True)
        target = json.loads(meta.stdout)["target_directory"]
    return Path(target) / "criterion"


def loadavg():
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def read_run(root, since):
    """{full_id: (elements, bytes, median ns per iteration)} of the benchmarks written after `since`."""
    out = {}
    for bench in root.glob("*/*/new/benchmark.json"):
        if bench.stat().st_mtime < since:
            continue
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        tp = meta.get("throughput") or {}
        if "ElementsAndBytes" in tp:
            elements, nbytes = tp["ElementsAndBytes"]["elements"], tp["ElementsAndBytes"]["bytes"]
        else:
            elements, nbytes = tp.get("Elements", 1), tp.get("Bytes", 0)
        out[meta["full_id"]] = (elements, nbytes, est["median"]["point_estimate"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("filters", nargs="*", help="criterion filters, passed after --")
    a = ap.parse_args()
    root = criterion_dir()
    cmd = ["cargo", "bench", "-p", "gw-codecs", "--bench", "codecs"]
    if a.filters:
        cmd += ["--"] + a.filters
    env = dict(os.environ, GW_BENCH_CLOCK=a.clock)
    runs, loads = [], []
    for i in range(a.runs):
        before = loadavg()
        since = time.time()
        print(f"run {i + 1}/{a.runs}: {' '.join(cmd)} (load average {before})", file=sys.stderr, flush=True)
        done = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
        for line in done.stderr.splitlines():
            if "ERROR" in line or "panicked" in line:
                print(f"  run {i + 1}: {line}", file=sys.stderr)
        runs.append({k: v for k, v in read_run(root, since).items() if k.startswith("cpu-") == (a.clock == "cpu")})
        loads.append(f"{before} -> {loadavg()}")

    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}")
    print(f"command: GW_BENCH_CLOCK={a.clock} {' '.join(cmd)}, {a.runs} runs; load average (1/5/15 min) before -> after each run:")
    for i, l in enumerate(loads):
        print(f"  run {i + 1}: {l}")
    print(f"{'benchmark':<36} {'items/s median':>15} {'(slowest - fastest run)':>25} {'MB/s':>8} {'target':>12}")
    for name in sorted(set().union(*runs)):
        figures = [r[name] for r in runs if name in r]
        rates = [e / (ns / 1e9) for e, _, ns in figures]
        mbs = [b / (ns / 1e9) / 1e6 for _, b, ns in figures]
        med = statistics.median(rates)
        target = TARGETS.get(name.removeprefix("cpu-"))
        verdict = "" if target is None else ("met" if med >= target else "NOT met") + f" ({target / 1e3:,.0f}k)"
        missing = "" if len(figures) == len(runs) else f"  (in {len(figures)} of {len(runs)} runs)"
        print(f"{name:<36} {med:>15,.0f} {f'({min(rates):,.0f} - {max(rates):,.0f})':>25} "
              f"{statistics.median(mbs):>8.1f} {verdict:>12}{missing}")


if __name__ == "__main__":
    main()
