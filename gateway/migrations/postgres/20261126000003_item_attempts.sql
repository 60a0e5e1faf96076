-- One payment per message (bank C): each item's reference at the bank (F37: 12 digits from the
-- `item_ref` counter, stored before the first attempt and never changed), whether the bank accepted
-- its payout, and every payout attempt's STAN and F7, stored before the attempt is sent (an inquiry
-- quotes the last attempt in F90).
alter table items add column bank_item_ref text;
alter table items add column bank_accepted bigint not null default 0;
create unique index items_bank_item_ref on items (bank_item_ref) where bank_item_ref is not null;

create table item_attempts (
  item_ref   text not null,
  attempt_no bigint not null,
  bank_code  text not null,
  stan       text not null,
  sent_time  text not null,      -- F7 as sent: MMDDhhmmss, Beijing time
  sent_at    bigint not null,
  answer     text,               -- F39 of the reply, or why there was none
  primary key (item_ref, attempt_no)
);

create table counters (
  name  text primary key,
  value bigint not null
);
