#!/usr/bin/env python3
"""The intake's inserts with and without the sealed fields in a table of their own (issue 9).

    python3 tools/bench/split_insert_model.py SOURCE.db wide|split

Inserts SOURCE's 1,000,000 items again (10,000 per commit, WAL, synchronous = full, the items_part and
items_status indexes) into /tmp/ins_VARIANT.db, either as they are (wide) or with name, id_no,
account_no and phone in items_pii (split, without rowid); prints the time of the inserts and commits.

SOURCE must hold the items as they were before migration 20261208000000 (the personal fields in
`items`): a database made by the gateway of b9595ca or earlier, as the figures were.
"""
import sqlite3, time, sys, os
source, variant = sys.argv[1], sys.argv[2]
path = f"/tmp/ins_{variant}.db"
for s in ("", "-wal", "-shm"):
    if os.path.exists(path + s): os.remove(path + s)
src = sqlite3.connect(source)
cols = [r[1] for r in src.execute("pragma table_info(items)")]
if "name" not in cols:
    sys.exit(f"{source}: its items have no personal fields (made after migration 20261208000000); use a database of b9595ca or earlier")
info = {r[1]: r for r in src.execute("pragma table_info(items)")}
pii = ["name", "id_no", "account_no", "phone"]
core = [c for c in cols if c not in pii] if variant == "split" else cols
def cd(cs): return ", ".join(f"{c} {info[c][2]}" + (" not null" if info[c][3] else "") for c in cs)
rows = src.execute(f"select {', '.join(cols)} from items order by seq").fetchall()
idx = {c: i for i, c in enumerate(cols)}
db = sqlite3.connect(path, isolation_level=None)
db.execute("pragma journal_mode=wal"); db.execute("pragma synchronous=full")
db.execute(f"create table items ({cd(core)}, primary key (batch_id, seq))")
if variant == "split":
    db.execute(f"create table items_pii ({cd(['batch_id','seq']+pii)}, primary key (batch_id, seq)) without rowid")
db.execute("create index items_part on items (part_id, seq)")
db.execute("create index items_status on items (batch_id, status, seq)")
ci = [idx[c] for c in core]; pi = [idx[c] for c in ["batch_id", "seq"] + pii]
qc = f"insert into items ({', '.join(core)}) values ({','.join('?'*len(core))})"
qp = f"insert into items_pii values ({','.join('?'*(len(pi)))})"
tot = 0.0
for i in range(0, len(rows), 10000):
    ch = rows[i:i+10000]
    a = [tuple(r[j] for j in ci) for r in ch]
    b = [tuple(r[j] for j in pi) for r in ch] if variant == "split" else None
    t = time.time()
    db.execute("begin"); db.executemany(qc, a)
    if b: db.executemany(qp, b)
    db.execute("commit"); tot += time.time() - t
print(variant, f"insert 1M: {tot:.2f} s", os.path.getsize(path) >> 20, "MiB")
