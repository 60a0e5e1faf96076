-- SMS notices (信息直达): one per credited item, created in the transaction that records the credit
-- (outbox), keyed by the item so that there can never be two.
create table notices (
  batch_id     text not null,
  seq          bigint not null,
  state        text not null,     -- pending | sending | submitted | delivered | failed | unknown
  created_at   bigint not null,
  next_at      bigint not null,   -- when it may be sent (quiet hours, backoff)
  attempts     bigint not null default 0,
  parts        bigint,            -- SMS parts (concatenated messages)
  message_ids  text,              -- the SMS centre's ids, one per part, space-separated in part order
  submitted_at bigint,
  receipts     bigint not null default 0,
  final_stat   text,              -- DELIVRD | EXPIRED | UNDELIV | REJECTD | UNKNOWN (worst part)
  final_at     bigint,
  last_error   text,
  lease_owner  text,
  lease_until  bigint,
  primary key (batch_id, seq)
);
create index notices_due on notices (state, next_at);

-- Each part's message id (delivery receipts name it).
create table notice_parts (
  message_id text primary key,
  batch_id   text not null,
  seq        bigint not null,
  part_no    bigint not null,
  stat       text,
  done_at    bigint
);
create index notice_parts_item on notice_parts (batch_id, seq);
