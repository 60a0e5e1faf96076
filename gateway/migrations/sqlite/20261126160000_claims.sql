-- Claims in a table of their own (issue 9: a million-item roster).
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

drop index items_claim;
alter table items drop column claim_key;

-- The overdue-correction sweep (store/sla.rs) looks for failed items not yet warned of, every few
-- seconds: without this index it read the whole items table each time (3 s at 1,000,000 items).
-- Only failed, unwarned items have an entry.
create index items_overdue on items (final_at) where status = 'failed' and overdue_warned = 0;
