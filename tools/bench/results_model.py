#!/usr/bin/env python3
"""A model of the writer's work per part when results are applied (issue 9, docs/performance.md).

    python3 tools/bench/results_model.py SOURCE.db VARIANT [PARTS]
    # SOURCE.db: a database of `gateway bench --items 1000000 --store-url sqlite:///tmp/big.db`
    # VARIANT: rowid (the schema as it is) | norowid | split (the sealed fields in items_pii) | splitnr
    # env NOSTATUS=1: without the items_status index; INSERT=1: results inserted into item_results

Rebuilds SOURCE's items (their results cleared) in /tmp/exp_VARIANT.db with the schema VARIANT, then
applies the results of the first PARTS parts (default 6) with the gateway's own statements (the
results as `with v (...) as (values ...) update items ... from v`, 1,000 rows a statement; the
credited items' notices as multi-row inserts; one transaction per part; WAL, synchronous = full) and
prints the time of each step.

SOURCE must hold the items as they were before migration 20261208000000 (the personal fields in
`items`): a database made by the gateway of b9595ca or earlier, as the figures were.
"""
import sqlite3, time, sys, os, random
source, variant = sys.argv[1], sys.argv[2]
parts_n = int(sys.argv[3]) if len(sys.argv) > 3 else 6
path = f"/tmp/exp_{variant}.db"
for s in ("", "-wal", "-shm"):
    if os.path.exists(path + s): os.remove(path + s)
db = sqlite3.connect(path, isolation_level=None)
db.execute("pragma journal_mode=wal"); db.execute("pragma synchronous=full"); db.execute("pragma temp_store=memory")
db.execute("attach ? as src", (source,))
cols = [r[1] for r in db.execute("pragma src.table_info(items)")]
if "name" not in cols:
    sys.exit(f"{source}: its items have no personal fields (made after migration 20261208000000); use a database of b9595ca or earlier")
pii = ["name", "id_no", "account_no", "phone"]
def coldefs(cs):
    info = {r[1]: r for r in db.execute("pragma src.table_info(items)")}
    return ", ".join(f"{c} {info[c][2]}" + (" not null" if info[c][3] else "") for c in cs)
reset = {"status": "'pending'", "result_code": "null", "fail_code": "null", "fail_reason": "null",
         "result_bank_code": "null", "confirmed_at": "null", "bank_txn_no": "null", "final_at": "null"}
t = time.time()
db.execute("begin")
if variant in ("rowid", "norowid"):
    wr = " without rowid" if variant == "norowid" else ""
    db.execute(f"create table items ({coldefs(cols)}, primary key (batch_id, seq)){wr}")
    sel = ", ".join(reset.get(c, c) for c in cols)
    db.execute(f"insert into items select {sel} from src.items order by batch_id, seq")
elif variant in ("split", "splitnr"):
    wr = " without rowid" if variant == "splitnr" else ""
    core = [c for c in cols if c not in pii]
    db.execute(f"create table items ({coldefs(core)}, primary key (batch_id, seq)){wr}")
    db.execute(f"create table items_pii ({coldefs(['batch_id','seq'] + pii)}, primary key (batch_id, seq)) without rowid")
    db.execute(f"insert into items select {', '.join(reset.get(c, c) for c in core)} from src.items order by batch_id, seq")
    db.execute(f"insert into items_pii select batch_id, seq, {', '.join(pii)} from src.items order by batch_id, seq")
db.execute("create index items_part on items (part_id, seq)")
if os.environ.get("NOSTATUS") is None: db.execute("create index items_status on items (batch_id, status, seq)")
db.execute("create table item_results (batch_id text not null, seq integer not null, status text not null, result_code text, fail_code text, fail_reason text, result_bank_code text, confirmed_at integer, bank_txn_no text, final_at integer, primary key (batch_id, seq)) without rowid")
db.execute("create index items_overdue on items (final_at) where status = 'failed' and overdue_warned = 0")
db.execute(f"create table notices as select * from src.notices where 0")
db.execute("create unique index notices_pk on notices (batch_id, seq)")
db.execute("create index notices_due on notices (state, next_at)")
db.execute("commit")
db.execute("pragma wal_checkpoint(truncate)")
print(variant, "built in %.1f s" % (time.time() - t), "size MiB", os.path.getsize(path) >> 20)
parts = [r[0] for r in db.execute("select part_id from src.parts order by part_no")]
rnd = random.Random(1)
tu = tn = 0.0
for pid in parts[:parts_n]:
    rows = db.execute("select batch_id, seq from items where part_id = ? order by seq", (pid,)).fetchall()
    batch = rows[0][0]
    res = [(s, "succeeded" if rnd.random() < 0.95 else "failed", "0000", None, None, "102100099996", 1765000000, "T%012d" % s) for _, s in rows]
    t0 = time.time()
    db.execute("begin")
    for i in range(0, len(res), 1000):
        chunk = res[i:i+1000]
        vals = ",".join(["(?,?,?,?,?,?,?,?)"] * len(chunk))
        args = [x for r in chunk for x in r] + [1765000001, batch, pid]
        if os.environ.get("INSERT"):
            vals = ",".join(["(?,?,?,?,?,?,?,?,?,?)"] * len(chunk))
            db.execute(f"insert into item_results values {vals} on conflict do nothing", [x for r in chunk for x in (batch,) + r + (1765000001,)])
            continue
        db.execute(f"with v (seq, status, result_code, fail_code, fail_reason, result_bank_code, confirmed_at, bank_txn_no) as (values {vals}) "
                   "update items set status = v.status, result_code = v.result_code, fail_code = v.fail_code, fail_reason = v.fail_reason, "
                   "result_bank_code = v.result_bank_code, confirmed_at = v.confirmed_at, bank_txn_no = v.bank_txn_no, final_at = ? "
                   "from v where items.batch_id = ? and items.part_id = ? and items.seq = v.seq and +items.status in ('pending','sent') returning items.seq", args).fetchall()
    t1 = time.time()
    cred = [r[0] for r in res if r[1] == "succeeded"]
    for i in range(0, len(cred), 1000):
        chunk = cred[i:i+1000]
        vals = ",".join(["(?,?,?,?,?)"] * len(chunk))
        db.execute(f"insert into notices (batch_id, seq, state, created_at, next_at) values {vals} on conflict (batch_id, seq) do nothing",
                   [x for s in chunk for x in (batch, s, "pending", 1765000001, 1765000001)])
    t2 = time.time()
    db.execute("commit")
    t3 = time.time()
    tu += t1 - t0; tn += t3 - t1
    print(f"  part: update {t1-t0:.3f} s, notices {t2-t1:.3f} s, commit {t3-t2:.3f} s")
print(variant, f"per part: update {tu/parts_n:.3f} s, notices+commit {tn/parts_n:.3f} s")
