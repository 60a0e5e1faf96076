//! Events (the outbox), the blacklist, queries (clicks) and disqualifications (the audit log: `audit.rs`).
use std::collections::HashSet;

use sqlx::{Any, Row, Transaction};

use super::audit::{NewAudit, append_audit};
use super::rows::*;
use super::{Store, StoreError, StoreResult, backend_of, placeholders, rows_query};

/// Events per multi-row insert (9 parameters each).
const EVENTS_PER_STATEMENT: usize = 500;
use crate::keys::sealed::blacklist_ad;

/// A blacklist value that did not seal or open.
pub(crate) fn blacklist_sealed(entry_id: &str, problem: crate::keys::SealError) -> StoreError {
    StoreError::Sealed {
        table: "blacklist",
        column: "value",
        row: entry_id.to_owned(),
        problem,
    }
}

fn event_from_row(r: &sqlx::any::AnyRow) -> StoreResult<EventRow> {
    Ok(EventRow {
        event_id: r.try_get("event_id")?,
        kind: r.try_get("type")?,
        at: r.try_get("at")?,
        batch_id: r.try_get("batch_id")?,
        seq: r.try_get("seq")?,
        bank_code: r.try_get("bank_code")?,
        code: r.try_get("code")?,
        data: r.try_get("data")?,
    })
}

/// Writes events in the caller's transaction, numbered from the `event_no` counter. Updating the
/// counter locks its row until the transaction ends, so event-writing transactions take turns from
/// here to their commit and numbers are handed out in commit order: a reader paging by `event_no`
/// never passes over an event that becomes visible later with a smaller number (with an identity
/// column alone, PostgreSQL hands numbers out in insert order, and commits come in any order). Call
/// it last in the transaction, to hold the row briefly.
pub(crate) async fn insert_events(
    tx: &mut Transaction<'static, Any>,
    events: &[EventRow],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let last: i64 = sqlx::query(
        "update counters set value = value + $1 where name = 'event_no' returning value",
    )
    .bind(n)
    .fetch_one(&mut **tx)
    .await?
    .try_get("value")?;
    let numbered: Vec<(i64, &EventRow)> = (last - n + 1..).zip(events).collect();
    for rows in numbered.chunks(EVENTS_PER_STATEMENT) {
        let sql = format!(
            "insert into events (event_no, event_id, type, at, batch_id, seq, bank_code, code, data) values {}",
            placeholders(backend_of(tx), rows.len(), 9)
        );
        let mut q = rows_query(sql, rows.len(), EVENTS_PER_STATEMENT);
        for (event_no, e) in rows {
            q = q
                .bind(*event_no)
                .bind(&e.event_id)
                .bind(&e.kind)
                .bind(e.at)
                .bind(&e.batch_id)
                .bind(e.seq)
                .bind(&e.bank_code)
                .bind(&e.code)
                .bind(&e.data);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// Writes events on their own (state changes write theirs in their own transaction).
    pub async fn add_events(&self, events: &[EventRow]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Events after `after` (an event id; `None` from the start), oldest first.
    pub async fn list_events(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Option<Vec<EventRow>>> {
        let after_no: i64 = match after {
            None => 0,
            Some(id) => {
                let row = sqlx::query("select event_no from events where event_id = $1")
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?;
                match row {
                    Some(r) => r.try_get("event_no")?,
                    None => return Ok(None),
                }
            }
        };
        let rows = sqlx::query(
            "select event_id, type, at, batch_id, seq, bank_code, code, data from events \
             where event_no > $1 order by event_no limit $2",
        )
        .bind(after_no)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(event_from_row)
            .collect::<StoreResult<Vec<_>>>()
            .map(Some)
    }

    /// Undelivered events due for (another) delivery attempt, oldest first, with their attempts so far.
    /// Delivery is in order: an event waits while an older one is not delivered.
    pub async fn undelivered_events(
        &self,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<(EventRow, i64)>> {
        let first = sqlx::query("select min(event_no) as n from events where delivered_at is null")
            .fetch_one(self.pool())
            .await?;
        let Some(first_no) = first.try_get::<Option<i64>, _>("n")? else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "select event_id, type, at, batch_id, seq, bank_code, code, data, attempts, next_at from events \
             where event_no >= $1 and delivered_at is null order by event_no limit $2",
        )
        .bind(first_no)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let next_at: i64 = r.try_get("next_at")?;
            if i == 0 && next_at > now {
                return Ok(Vec::new());
            }
            out.push((event_from_row(r)?, r.try_get("attempts")?));
        }
        Ok(out)
    }

    /// The platform took the event.
    pub async fn event_delivered(&self, event_id: &str, at: i64) -> StoreResult<()> {
        sqlx::query(
            "update events set delivered_at = $1, attempts = attempts + 1 where event_id = $2",
        )
        .bind(at)
        .bind(event_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A delivery attempt failed: try again at `next_at`.
    pub async fn event_failed(&self, event_id: &str, next_at: i64) -> StoreResult<()> {
        sqlx::query("update events set attempts = attempts + 1, next_at = $1 where event_id = $2")
            .bind(next_at)
            .bind(event_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The keyed hashes of every blacklisted value (`kind:hash`).
    pub async fn blacklist_hashes(&self) -> StoreResult<HashSet<String>> {
        let rows = sqlx::query("select kind, value_hash from blacklist")
            .fetch_all(self.pool())
            .await?;
        let mut out = HashSet::with_capacity(rows.len());
        for r in rows {
            let kind: String = r.try_get("kind")?;
            let hash: String = r.try_get("value_hash")?;
            out.insert(format!("{kind}:{hash}"));
        }
        Ok(out)
    }

    /// Adds a blacklist entry (its value sealed for the entry) with its audit record, in one
    /// transaction; `Ok(None)` when that value is already listed (nothing written).
    pub async fn add_blacklist(
        &self,
        row: &BlacklistRow,
        value_hash: &str,
        audit: &NewAudit,
    ) -> StoreResult<Option<String>> {
        let sealed = self
            .keys
            .data
            .seal(&blacklist_ad(&row.entry_id), &row.value)
            .map_err(|problem| blacklist_sealed(&row.entry_id, problem))?;
        let mut tx = self.begin_write().await?;
        let res = sqlx::query(
            "insert into blacklist (entry_id, kind, value_hash, value, reason, added_by, added_at) \
             values ($1,$2,$3,$4,$5,$6,$7) on conflict (kind, value_hash) do nothing",
        )
        .bind(&row.entry_id)
        .bind(&row.kind)
        .bind(value_hash)
        .bind(sealed)
        .bind(&row.reason)
        .bind(&row.added_by)
        .bind(row.added_at)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Some(row.entry_id.clone()))
    }

    /// The blacklist.
    pub async fn list_blacklist(&self) -> StoreResult<Vec<BlacklistRow>> {
        let rows = sqlx::query(
            "select entry_id, kind, value, reason, added_by, added_at from blacklist order by added_at, entry_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let entry_id: String = r.try_get("entry_id")?;
                let stored: String = r.try_get("value")?;
                let value = self
                    .keys
                    .data
                    .open(&blacklist_ad(&entry_id), &stored)
                    .map_err(|problem| blacklist_sealed(&entry_id, problem))?;
                Ok(BlacklistRow {
                    entry_id,
                    kind: r.try_get("kind")?,
                    value,
                    reason: r.try_get("reason")?,
                    added_by: r.try_get("added_by")?,
                    added_at: r.try_get("added_at")?,
                })
            })
            .collect()
    }

    /// Removes an entry with its audit record, in one transaction; whether it existed (nothing
    /// written when not).
    pub async fn delete_blacklist(&self, entry_id: &str, audit: &NewAudit) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let res = sqlx::query("delete from blacklist where entry_id = $1")
            .bind(entry_id)
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Whether `bank` is disqualified for `department`.
    pub async fn is_disqualified(&self, bank: &str, department: &str) -> StoreResult<bool> {
        let row = sqlx::query(
            "select 1 as x from disqualifications where bank_code = $1 and department_code = $2",
        )
        .bind(bank)
        .bind(department)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Departments for which `bank` is disqualified.
    pub async fn disqualified_for(&self, bank: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "select department_code from disqualifications where bank_code = $1 order by 1",
        )
        .bind(bank)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get("department_code")?))
            .collect()
    }

    /// The click of a batch.
    pub async fn get_query(&self, batch_id: &str) -> StoreResult<Option<QueryRow>> {
        let row = sqlx::query(
            "select query_id, batch_id, clicked_at, due_at, status, fed_back_at, late from queries where batch_id = $1",
        )
        .bind(batch_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(QueryRow {
                query_id: r.try_get("query_id")?,
                batch_id: r.try_get("batch_id")?,
                clicked_at: r.try_get("clicked_at")?,
                due_at: r.try_get("due_at")?,
                status: r.try_get("status")?,
                fed_back_at: r.try_get("fed_back_at")?,
                late: r.try_get::<i64, _>("late")? != 0,
            })
        })
        .transpose()
    }

    /// Records the first click of a batch; later clicks return the stored one. When the batch is already
    /// final (`final_at`), the query is final at once and on time.
    pub async fn click(&self, q: &QueryRow, final_at: Option<i64>) -> StoreResult<QueryRow> {
        let mut tx = self.begin_write().await?;
        let (status, fed_back_at) = match final_at {
            Some(at) => ("final", Some(at)),
            None => ("running", None),
        };
        sqlx::query(
            "insert into queries (query_id, batch_id, clicked_at, due_at, status, fed_back_at, late) \
             values ($1,$2,$3,$4,$5,$6,0) on conflict (batch_id) do nothing",
        )
        .bind(&q.query_id)
        .bind(&q.batch_id)
        .bind(q.clicked_at)
        .bind(q.due_at)
        .bind(status)
        .bind(fed_back_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.get_query(&q.batch_id)
            .await?
            .ok_or_else(|| super::StoreError::Corrupt {
                table: "queries",
                problem: "query vanished after insert".into(),
            })
    }
}
