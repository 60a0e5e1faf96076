-- Several gateways on one store (PostgreSQL). SQLite has one writer at a time, so there these only
-- keep the code the same.

-- Named leases of the jobs that one instance at a time may run: the outbox delivery (events go out in
-- order, so one deliverer) and the SLA evaluator (strike counts and the rating events they cause are
-- computed from what is recorded). The holder renews its lease while it works; another instance takes
-- an expired lease over. Bank work is claimed per part instead (`parts.lease_owner`, `lease_until`).
create table leases (
  name        text primary key,
  lease_owner text not null,     -- the holder's `gateway.node_id`
  lease_until bigint not null    -- Unix ms
);

-- Events are numbered from a counter row that each writing transaction holds until it commits, so
-- numbers are handed out in commit order: a reader paging by `event_no` (GET /v1/events?after=, the
-- callback delivery) never passes over an event that commits later with a smaller number.
insert into counters (name, value) select 'event_no', coalesce(max(event_no), 0) from events;

-- Intakes take turns, so that the claims of one roster are checked against those of the roster
-- before it (a counter row held by the intake transaction).
insert into counters (name, value) values ('intakes', 0);
