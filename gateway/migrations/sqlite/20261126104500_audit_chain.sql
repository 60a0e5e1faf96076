-- The audit log becomes a hash chain (tamper-evident). Each record stores the hash of the record before
-- it (`prev_hash`) and its own `hash`: SHA-256 over a canonical encoding of (audit_no, at, actor, role,
-- action, target, detail, prev_hash), see gateway/src/store/audit.rs. A changed, removed or inserted
-- record breaks the chain at that point; `gateway audit verify` walks it.
alter table audit add column prev_hash text;
alter table audit add column hash text;

-- The head of the chain: one row, updated by every append in the append's transaction. The update locks
-- the row until commit, so appends take turns (also across gateways on one PostgreSQL) and records are
-- numbered without gaps in commit order. `hash` is that of the last record; the head also catches a
-- removed last record.
--
-- Records written before this migration carry no hashes: the chain starts after them
-- (`chain_start` = the last of them; the first chained record's prev_hash is 64 zeros). They are
-- listed as before but not covered by the chain.
create table audit_head (
  id          integer primary key check (id = 1),
  chain_start integer not null,
  audit_no    integer not null,
  hash        text not null
);
insert into audit_head (id, chain_start, audit_no, hash)
  select 1, coalesce(max(audit_no), 0), coalesce(max(audit_no), 0),
         '0000000000000000000000000000000000000000000000000000000000000000'
  from audit;
