#!/usr/bin/env python3
"""The storage limit on this machine: the gateway's item rows bulk-inserted by the plainest program.

A reference for `gateway bench` (docs/performance.md): how fast SQLite itself takes the rows intake
writes, with nothing else in the way (no HTTP, no parsing, no rules, no async driver).

    python3 tools/bench/plain_insert.py                      # 1,000,000 rows, 10,000 per commit
    python3 tools/bench/plain_insert.py --rows 200000 --per-commit 10000 --cache-mib 64
    python3 tools/bench/plain_insert.py --drop-index items_part     # what one index costs
    python3 tools/bench/plain_insert.py --claims each               # claims written with each commit

What it does, as the gateway does it:
  * a new database file in the temp folder (the one `gateway bench` uses), the gateway's own SQLite
    migrations applied in order (gateway/migrations/sqlite/*.sql: the `items` table with its four
    indexes, `items_pii`, and the `claims` table: 16-byte keys, random-ordered HMAC-SHA256 prefixes);
  * `journal_mode = wal`, `synchronous = full`, `temp_store = memory` (gateway/src/store/mod.rs);
  * one roster (one batch_id) of rows shaped by ../shared/tools/gen_roster.py (the platform's roster
    generator: 5% units, GBK-able names, valid IDs and accounts), status `pending`, the 18 columns of
    the intake's inserts (14 in `items`, the 4 personal ones in `items_pii` with the key, since
    migration 20261208000000); one claim per row, the key of (id_no, subsidy, period) under a fixed look-up
    key;
  * `executemany` of one prepared single-row insert, `commit` every --per-commit rows; the claims
    sorted by key in one more commit at the end (--claims end, as the gateway writes a roster's), or
    those of each commit's rows in that commit as they come (--claims each).
Only the inserts and commits are timed; the rows of each commit are made before its clock starts.
Prints the rate of the whole run and of its first and last tenth (the indexes grow).
"""
import argparse
import hashlib
import hmac
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MIGRATIONS = REPO / "gateway" / "migrations" / "sqlite"
SHARED_TOOLS = REPO.parent / "shared" / "tools"

INSERT = (
    "insert into items (batch_id, seq, recipient_kind, account_kind, account_bank_code, amount_fen, "
    "ssc_exempt, memo, status, reject_code, reject_message, part_id, replaces_batch_id, replaces_seq) "
    "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_PII = "insert into items_pii (batch_id, seq, name, id_no, account_no, phone) values (?, ?, ?, ?, ?, ?)"
INSERT_CLAIM = "insert into claims (claim_key, batch_id, seq) values (?, ?, ?)"


def claim_key(key, id_no, subsidy, period):
    """As gateway/src/keys/mod.rs hashes: HMAC-SHA256 over the parts separated by 0x1F, first 16 bytes."""
    msg = "\x1f".join(["claim", id_no, subsidy, period]).encode()
    return hmac.new(key, msg, hashlib.sha256).digest()[:16]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--per-commit", type=int, default=10_000)
    ap.add_argument("--cache-mib", type=int, default=0,
                    help="set the page cache (pragma cache_size); 0 keeps SQLite's default 2 MiB, as the gateway")
    ap.add_argument("--drop-index", action="append", default=[], metavar="NAME",
                    help="drop this index after the migrations (repeatable), to see what it costs")
    ap.add_argument("--claims", choices=["end", "each"], default="end",
                    help="claims sorted in one commit at the end (as the gateway), or with each commit")
    ap.add_argument("--keep", action="store_true", help="keep the database file")
    a = ap.parse_args()
    if a.rows >= 10_000_000:
        ap.error("--rows must stay below 10,000,000 (gen_roster's identities are unique below that)")

    sys.path.insert(0, str(SHARED_TOOLS))
    try:
        import gen_roster
    except ImportError:
        sys.exit(f"needs {SHARED_TOOLS}/gen_roster.py (the shared folder beside the repository)")

    folder = tempfile.mkdtemp(prefix="plain-insert-")
    path = os.path.join(folder, "items.db")
    db = sqlite3.connect(path, isolation_level=None)
    mode = db.execute("pragma journal_mode = wal").fetchone()[0]
    db.execute("pragma synchronous = full")
    db.execute("pragma temp_store = memory")
    if a.cache_mib:
        db.execute(f"pragma cache_size = -{a.cache_mib * 1024}")
    # The claims migration moves an earlier version's keys with unhex() (SQLite 3.41; the gateway
    # bundles 3.51): older SQLite libraries get it from here, for the migration's (empty) copy.
    db.create_function("unhex", 1, lambda h: bytes.fromhex(h) if h is not None else None)
    migrations = sorted(MIGRATIONS.glob("*.sql"))
    for m in migrations:
        db.executescript(m.read_text(encoding="utf-8"))
    for name in a.drop_index:
        db.execute(f'drop index "{name}"')

    rng = random.Random(5)
    key = bytes(range(32))
    batch_id = "b-plain-insert"
    subsidy, period = "NY001", "2026"
    timed = 0.0
    marks = []  # (rows so far, seconds so far) after each commit
    held = []  # claims for the end
    done = 0
    while done < a.rows:
        n = min(a.per_commit, a.rows - done)
        rows, pii, claims = [], [], []
        for seq in range(done + 1, done + n + 1):
            it = gen_roster.item(rng, seq, "220623", 0.05)
            rows.append((
                batch_id, seq, it["recipient_kind"], it["account_kind"], it["account_bank_code"],
                it["amount_fen"], int(it["ssc_exempt"]), it["memo"], "pending", None, None, None, None, None,
            ))
            pii.append((batch_id, seq, it["name"], it["id_no"], it["account_no"], it["phone"]))
            claims.append((claim_key(key, it["id_no"], subsidy, period), batch_id, seq))
        start = time.perf_counter()
        db.execute("begin")
        db.executemany(INSERT, rows)
        db.executemany(INSERT_PII, pii)
        if a.claims == "each":
            db.executemany(INSERT_CLAIM, claims)
        else:
            held.extend(claims)
        db.execute("commit")
        timed += time.perf_counter() - start
        done += n
        marks.append((done, timed))
    if held:
        start = time.perf_counter()
        held.sort()
        db.execute("begin")
        db.executemany(INSERT_CLAIM, held)
        db.execute("commit")
        claims_end = time.perf_counter() - start
        timed += claims_end
        marks[-1] = (done, timed)
    db.close()
    size = os.path.getsize(path)
    if a.keep:
        print(f"database kept: {path}")
    else:
        for f in os.listdir(folder):
            os.remove(os.path.join(folder, f))
        os.rmdir(folder)

    def rate(lo, hi):
        (r0, t0), (r1, t1) = lo, hi
        return (r1 - r0) / (t1 - t0) if t1 > t0 else float("inf")

    tenth = max(1, len(marks) // 10)
    first = rate((0, 0.0), marks[tenth - 1])
    last = rate(marks[-tenth - 1] if len(marks) > tenth else (0, 0.0), marks[-1])
    print(f"sqlite {sqlite3.sqlite_version}, journal_mode {mode}, synchronous full, "
          f"cache {'%d MiB' % a.cache_mib if a.cache_mib else 'default (2 MiB)'}, "
          f"{len(migrations)} migrations, folder {tempfile.gettempdir()}"
          + (f", dropped {' '.join(a.drop_index)}" if a.drop_index else "")
          + f", claims {a.claims}" + (f" ({claims_end:.2f} s)" if held else ""))
    print(f"{done} rows in {done // a.per_commit + (done % a.per_commit > 0)} commits of {a.per_commit}: "
          f"{timed:.2f} s inserting and committing, {done / timed:,.0f} rows/s "
          f"(first tenth {first:,.0f} rows/s, last tenth {last:,.0f} rows/s), file {size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
