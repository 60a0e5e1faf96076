#!/usr/bin/env bash
# gateway bench with the gateway's memory sampled every half second, to see in which stage it grows:
# OUT.log gets the bench's output, OUT.rss one line per sample: seconds since start, then VmRSS,
# RssAnon, RssFile and RssShmem in KiB (from /proc/PID/status).
#   tools/bench/rss_over_time.sh OUT --items 1000000 [--bank c]
#   awk 'NR % 40 == 1' OUT.rss     # every 20 s
#   sort -k2 -n OUT.rss | tail -1  # the peak
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
gateway=${GATEWAY:-$here/target/release/gateway}
[ $# -ge 1 ] || { echo "usage: $0 OUT [gateway bench arguments]" >&2; exit 2; }
out=$1
shift
: > "$out.rss"
"$gateway" bench "$@" > "$out.log" 2>&1 &
pid=$!
start=$(date +%s%N)
while kill -0 "$pid" 2>/dev/null; do
  kib=$(grep -E '^(VmRSS|RssAnon|RssFile|RssShmem):' "/proc/$pid/status" 2>/dev/null | awk '{printf " %s", $2}') || true
  now=$(date +%s%N)
  [ -n "$kib" ] && printf '%d.%03d%s\n' $(((now - start) / 1000000000)) $((((now - start) / 1000000) % 1000)) "$kib" >> "$out.rss"
  sleep 0.5
done
wait "$pid"
