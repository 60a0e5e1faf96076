-- SMS notices (信息直达): one per credited item, created in the transaction that records the credit
-- (outbox), keyed by the item so that there can never be two.
create table notices (
  batch_id     text not null,
  seq          integer not null,
  state        text not null,     -- pending | sending | submitted | delivered | failed | unknown
  created_at   integer not null,
  next_at      integer not null,  -- when it may be sent (quiet hours, backoff)
  attempts     integer not null default 0,
  parts        integer,           -- SMS parts (concatenated messages)
  message_ids  text,              -- the SMS centre's ids, one per part, space-separated in part order
  submitted_at integer,
  receipts     integer not null default 0,
  final_stat   text,              -- DELIVRD | EXPIRED | UNDELIV | REJECTD | UNKNOWN (worst part)
  final_at     integer,
  last_error   text,
  lease_owner  text,
  lease_until  integer,
  primary key (batch_id, seq)
);
create index notices_due on notices (state, next_at);

-- Each part's message id (delivery receipts name it).
create table notice_parts (
  message_id text primary key,
  batch_id   text not null,
  seq        integer not null,
  part_no    integer not null,
  stat       text,
  done_at    integer
);
create index notice_parts_item on notice_parts (batch_id, seq);
