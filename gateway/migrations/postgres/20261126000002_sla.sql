-- The next-day feedback SLA: strikes (append-only), past ratings recorded by an admin, and the marks
-- that make every evaluation and sweep happen exactly once (also across restarts).

-- One strike per bank per query, whatever the role(s). A correction is a new record that supersedes
-- an earlier one and says why; nothing is ever updated or deleted.
create table strikes (
  strike_id       text primary key,
  bank_code       text not null,
  department_code text not null,
  batch_id        text not null,
  query_id        text not null,
  roles           text not null,     -- JSON array: ["payout"], ["account"] or both
  due_at          bigint not null,
  fed_back_at     bigint,            -- when the feedback came, null if it never did (by recording time)
  year            bigint not null,  -- the year of the deadline, Asia/Shanghai
  recorded_at     bigint not null,
  evidence        text not null,     -- JSON: the bank's own timestamps, counts
  supersedes      text,              -- a correction: the strike it replaces
  reason          text
);
create unique index strikes_once on strikes (bank_code, query_id) where supersedes is null;
create index strikes_year on strikes (bank_code, department_code, year);

-- Ratings of years before the gateway ran (e.g. taken over from the former 一卡通 platform).
create table past_ratings (
  bank_code       text not null,
  department_code text not null,
  year            bigint not null,
  rating          text not null,     -- qualified | unqualified
  reason          text not null,
  recorded_by     text not null,
  recorded_at     bigint not null,
  primary key (bank_code, department_code, year)
);

alter table queries add column payout_checked bigint not null default 0;
alter table queries add column accounts_checked bigint not null default 0;
alter table items add column overdue_warned bigint not null default 0;
alter table items add column handled_at bigint;
alter table items add column handled_reason text;
alter table batches add column start_checked bigint not null default 0;
