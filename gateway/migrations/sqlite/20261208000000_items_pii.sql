-- The sealed personal fields of an item in a table of their own, written once (issue 9).
--
-- `name`, `id_no`, `account_no` and `phone` are sealed values (AES-256-GCM, base64 with their key id:
-- about 400 of an item row's 500 bytes). They are written when the item is taken in and only ever
-- rewritten by a key rotation. The item's status, result and handling are written two or three times
-- more; with the sealed values beside them each of those writes rewrote the whole wide row. Kept
-- apart, the results of a part of 50,000 cost the writer 0.37 s instead of 0.67 s in a model of this
-- schema (docs/performance.md, tools/bench/results_model.py).
--
-- Keyed like `items`, in the same order (a roster's rows are appended): no rowid, one b-tree.
create table items_pii (
  batch_id   text not null,
  seq        integer not null,
  name       text not null,
  id_no      text not null,
  account_no text not null,
  phone      text not null,
  primary key (batch_id, seq)
) without rowid;
insert into items_pii (batch_id, seq, name, id_no, account_no, phone)
  select batch_id, seq, name, id_no, account_no, phone from items order by batch_id, seq;

alter table items drop column name;
alter table items drop column id_no;
alter table items drop column account_no;
alter table items drop column phone;
