//! Named leases: jobs that one instance at a time may run when several gateways share a PostgreSQL
//! store (the outbox delivery, which must keep the events' order; the SLA evaluator, whose strike
//! counts and rating events are computed from what is recorded). Bank work is not one of them: parts
//! are claimed one by one (`parts::claim_parts`).
//!
//! Taking or renewing a lease is one upsert, atomic on both backends: it succeeds when nobody holds the
//! lease, when the caller already does, or when the holder's lease has run out.
use sqlx::Row;

use super::{Store, StoreResult};

impl Store {
    /// Takes or renews the lease `name` for `owner` until `until`; `false` while another owner holds
    /// an unexpired one.
    pub async fn hold_lease(
        &self,
        name: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "insert into leases (name, lease_owner, lease_until) values ($1, $2, $3) \
             on conflict (name) do update set lease_owner = excluded.lease_owner, lease_until = excluded.lease_until \
             where leases.lease_owner = excluded.lease_owner or leases.lease_until < $4 \
             returning lease_owner",
        )
        .bind(name)
        .bind(owner)
        .bind(until)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(match row {
            Some(r) => r.try_get::<String, _>("lease_owner")? == owner,
            None => false,
        })
    }

    /// Gives the lease up (on a clean stop), so that another instance takes over at once.
    pub async fn release_lease(&self, name: &str, owner: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("update leases set lease_until = 0 where name = $1 and lease_owner = $2")
            .bind(name)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A named lease as its holder keeps it: renewed through the store once half of it has run, so a
/// job that checks it on every turn of its loop writes only now and then.
#[derive(Debug, Clone)]
pub struct NamedLease {
    name: &'static str,
    owner: String,
    ttl_ms: i64,
    held_until: Option<i64>,
}

impl NamedLease {
    /// The lease `name` for `owner` (the instance's `gateway.node_id`), taken for `ttl_ms` at a time.
    pub fn new(name: &'static str, owner: &str, ttl_ms: i64) -> Self {
        Self {
            name,
            owner: owner.to_owned(),
            ttl_ms,
            held_until: None,
        }
    }

    /// Whether this instance holds the lease at `now`, taking or renewing it when due. After an error
    /// the lease is not known to be held: the caller should not run the job on that turn.
    pub async fn hold(&mut self, store: &Store, now: i64) -> StoreResult<bool> {
        if let Some(until) = self.held_until
            && now < until - self.ttl_ms / 2
        {
            return Ok(true);
        }
        self.held_until = None;
        let until = now + self.ttl_ms;
        if store.hold_lease(self.name, &self.owner, now, until).await? {
            self.held_until = Some(until);
        }
        Ok(self.held_until.is_some())
    }

    /// Gives the lease up if held.
    pub async fn release(&mut self, store: &Store) -> StoreResult<()> {
        if self.held_until.take().is_some() {
            store.release_lease(self.name, &self.owner).await?;
        }
        Ok(())
    }
}
