-- The sealed personal fields of an item in a table of their own, written once (issue 9); see the
-- SQLite twin of this migration.
create table items_pii (
  batch_id   text not null,
  seq        bigint not null,
  name       text not null,
  id_no      text not null,
  account_no text not null,
  phone      text not null,
  primary key (batch_id, seq)
);
insert into items_pii (batch_id, seq, name, id_no, account_no, phone)
  select batch_id, seq, name, id_no, account_no, phone from items order by batch_id, seq;

alter table items drop column name, drop column id_no, drop column account_no, drop column phone;
