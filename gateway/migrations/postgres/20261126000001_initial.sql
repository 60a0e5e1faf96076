-- The gateway's store, PostgreSQL DDL: the same tables, columns and versions as `../sqlite/` (keep the two
-- sets in step, file for file). Times are Unix milliseconds (UTC), money is integer fen, flags are 0/1,
-- so the same queries run on both. Every integer column is `bigint`: sqlx's `Any` driver hands the code
-- an `i64` for it, as SQLite's `integer` does. Forward-only: never edit a released migration, add one.

-- A roster as the platform submitted it, accepted (rejected rosters are not remembered).
create table batches (
  batch_id            text primary key,
  batch_no            text not null unique,     -- the platform's idempotency key
  body_hash           text not null,            -- sha-256 of the canonical JSON value
  parent_batch_id     text,                     -- re-issue sub-batches: the batch they correct
  department_code     text not null,
  region_code         text not null,
  subsidy_code        text not null,
  subsidy_name        text not null,
  budget_year         bigint not null,
  period              text not null,
  indicator_no        text not null,
  payout_bank         text not null,
  payer_account_no    text not null,
  payer_account_name  text not null,
  funds_arrived_on    text not null,            -- YYYY-MM-DD, Asia/Shanghai
  total_count         bigint not null,
  total_amount_fen    bigint not null,
  accepted_count      bigint not null,
  accepted_amount_fen bigint not null,
  rejected_count      bigint not null,
  answer              text not null,            -- the original answer, replayed on an identical resubmission
  created_at          bigint not null,
  sent_at             bigint,                   -- when the last part was accepted by the bank
  final_at            bigint,                   -- when the last item got its final result
  start_late          bigint not null default 0
);

-- One row per submitted item, rejected ones included (the API lists them).
create table items (
  batch_id          text not null,
  seq               bigint not null,
  recipient_kind    text not null,
  name              text not null,
  id_no             text not null,
  account_no        text not null,
  account_kind      text not null,
  account_bank_code text not null,
  amount_fen        bigint not null,
  phone             text not null,
  ssc_exempt        bigint not null,
  memo              text not null,
  status            text not null,
  reject_code       text,
  reject_message    text,
  part_id           text,
  claim_key         text,      -- keyed hash of (id_no, subsidy_code, period) while the item holds the claim
  result_code       text,      -- the bank's item code
  fail_code         text,
  fail_reason       text,
  result_bank_code  text,      -- account bank as reported by the payout bank
  confirmed_at      bigint,    -- when the account bank confirmed (bank's time)
  bank_txn_no       text,
  final_at          bigint,    -- when the gateway received the final result
  replaces_batch_id text,      -- a re-issued item: the item it replaces
  replaces_seq      bigint,
  primary key (batch_id, seq)
);
create unique index items_claim on items (claim_key) where claim_key is not null;
create index items_part on items (part_id, seq);
create index items_status on items (batch_id, status, seq);

-- A bank batch: the unit sent to the payout bank, with its deterministic reference.
create table parts (
  part_id       text primary key,
  batch_id      text not null,
  bank_code     text not null,
  bank_ref      text not null unique,  -- bank A batch_no / bank B MsgId: stored before the first send
  part_no       bigint not null,
  item_count    bigint not null,
  amount_fen    bigint not null,
  state         text not null,         -- pending | sending | unknown | accepted | final | review
  not_before    bigint not null,       -- held until the funds day
  next_at       bigint not null,       -- when the next send or poll is due
  attempts      bigint not null default 0,
  polls         bigint not null default 0,
  bank_batch_id text,
  accepted_at   bigint,
  final_at      bigint,
  last_error    text,
  lease_owner   text,
  lease_until   bigint
);
create index parts_due on parts (state, next_at);
create index parts_batch on parts (batch_id, part_no);

-- The department's click: starts the SLA clock of a batch (one clock per batch).
create table queries (
  query_id    text primary key,
  batch_id    text not null unique,
  clicked_at  bigint not null,
  due_at      bigint not null,
  status      text not null,           -- running | final
  fed_back_at bigint,
  late        bigint not null default 0
);

create table blacklist (
  entry_id     text primary key,
  kind         text not null,          -- id_no | account_no
  value_hash   text not null,          -- keyed hash: look-ups need no plaintext
  value        text not null,
  reason       text not null,
  added_by     text not null,
  added_at     bigint not null,
  unique (kind, value_hash)
);

-- Disqualifications confirmed by an admin (bank x department).
create table disqualifications (
  bank_code       text not null,
  department_code text not null,
  reason          text not null,
  confirmed_by    text not null,
  confirmed_at    bigint not null,
  primary key (bank_code, department_code)
);

-- The outbox of platform events (at-least-once; event_id lets the platform drop repeats).
create table events (
  event_no     bigint generated by default as identity primary key,
  event_id     text not null unique,
  type         text not null,
  at           bigint not null,
  batch_id     text,
  seq          bigint,
  bank_code    text,
  code         text,
  data         text not null,
  delivered_at bigint,
  attempts     bigint not null default 0,
  next_at      bigint not null default 0
);
create index events_undelivered on events (delivered_at, next_at);

-- Who read or changed what.
create table audit (
  audit_no bigint generated by default as identity primary key,
  at       bigint not null,
  actor    text not null,
  role     text not null,
  action   text not null,
  target   text not null,
  detail   text not null
);
