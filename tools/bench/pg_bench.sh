#!/usr/bin/env bash
# gateway bench on a throwaway PostgreSQL cluster on this machine: initdb in a temp folder (owned by
# the `postgres` OS user when run as root), a Unix socket there only, fsync on (the defaults: nothing
# traded for speed), then `gateway bench --store-url postgres://...` with the arguments given, then the
# cluster stopped and removed.
#   tools/bench/pg_bench.sh --items 1000000 [--bank c]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
gateway=${GATEWAY:-$here/target/release/gateway}
bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
[ -x "$bin/initdb" ] || { echo "no initdb in $bin (install the postgresql package or set PG_BIN)" >&2; exit 2; }
dir=$(mktemp -d /tmp/gw-pg-bench.XXXXXX)
run=()
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; run=(runuser -u postgres --); fi
cleanup() { "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
"${run[@]}" "$bin/initdb" -D "$dir/data" -U gw --auth=trust >/dev/null
"${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-c listen_addresses='' -c unix_socket_directories=$dir -c max_connections=50 -c shared_buffers=256MB" start >/dev/null
"${run[@]}" "$bin/createdb" -h "$dir" -U gw gw
"$gateway" bench --store-url "postgres://gw@localhost/gw?host=$dir" "$@"
