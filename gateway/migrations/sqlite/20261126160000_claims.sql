-- Claims in a table of their own, and items without a rowid (issue 9: a million-item roster).
--
-- A claim is what makes a person paid once per subsidy and period: its key is the first 16 bytes of
-- HMAC-SHA256(look-up key, "claim" 0x1F id_no 0x1F subsidy_code 0x1F period), half the hex text the
-- items held before, so twice as many keys share a page. Claim keys are random: inserted row by row
-- as items were, each commit touched most pages of their index. A roster's claims are now written once
-- the roster is taken in, sorted, in the same transaction as its items (docs/performance.md).
-- `batch_id`, `seq`: the accepted item holding the claim.
create table claims (
  claim_key blob primary key,
  batch_id  text not null,
  seq       integer not null
) without rowid;
insert into claims (claim_key, batch_id, seq)
  select unhex(substr(claim_key, 1, 32)), batch_id, seq from items where claim_key is not null order by 1;

-- The items table keyed by (batch_id, seq) itself, without a rowid: one b-tree fewer to write per
-- item (the primary key's index was a second copy of the key beside the rowid table).
create table items_new (
  batch_id          text not null,
  seq               integer not null,
  recipient_kind    text not null,
  name              text not null,
  id_no             text not null,
  account_no        text not null,
  account_kind      text not null,
  account_bank_code text not null,
  amount_fen        integer not null,
  phone             text not null,
  ssc_exempt        integer not null,
  memo              text not null,
  status            text not null,
  reject_code       text,
  reject_message    text,
  part_id           text,
  result_code       text,      -- the bank's item code
  fail_code         text,
  fail_reason       text,
  result_bank_code  text,      -- account bank as reported by the payout bank
  confirmed_at      integer,   -- when the account bank confirmed (bank's time)
  bank_txn_no       text,
  final_at          integer,   -- when the gateway received the final result
  replaces_batch_id text,      -- a re-issued item: the item it replaces
  replaces_seq      integer,
  overdue_warned    integer not null default 0,  -- 20261126000002_sla.sql
  handled_at        integer,
  handled_reason    text,
  bank_item_ref     text,      -- bank C: the item's F37 (20261126000003_item_attempts.sql)
  bank_accepted     integer not null default 0,
  primary key (batch_id, seq)
) without rowid;
insert into items_new (batch_id, seq, recipient_kind, name, id_no, account_no, account_kind,
  account_bank_code, amount_fen, phone, ssc_exempt, memo, status, reject_code, reject_message, part_id,
  result_code, fail_code, fail_reason, result_bank_code, confirmed_at, bank_txn_no, final_at,
  replaces_batch_id, replaces_seq, overdue_warned, handled_at, handled_reason, bank_item_ref,
  bank_accepted)
  select batch_id, seq, recipient_kind, name, id_no, account_no, account_kind,
  account_bank_code, amount_fen, phone, ssc_exempt, memo, status, reject_code, reject_message, part_id,
  result_code, fail_code, fail_reason, result_bank_code, confirmed_at, bank_txn_no, final_at,
  replaces_batch_id, replaces_seq, overdue_warned, handled_at, handled_reason, bank_item_ref,
  bank_accepted
  from items order by batch_id, seq;
drop table items;
alter table items_new rename to items;
create index items_part on items (part_id, seq);
create index items_status on items (batch_id, status, seq);
create unique index items_bank_item_ref on items (bank_item_ref) where bank_item_ref is not null;
