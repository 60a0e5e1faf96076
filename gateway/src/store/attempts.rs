//! One payment per message (bank C's family): item references at the bank, payout attempts recorded
//! before they are sent, per-item acceptance, and results applied item by item as they become final.
//!
//! ```text
//! assign_item_refs (once per part) -> record_attempts (before each send) -> mark_accepted
//!   -> part accepted -> poll: apply_item_results (the final ones) ... -> finish_part (none left)
//! ```
use sqlx::Row;

use super::batches::{ITEM_FROM, ITEM_SELECT, item_from_row, item_status_filter};
use super::misc::insert_events;
use super::rows::{EventRow, ItemRow, PartRow};
use super::{Backend, Store, StoreResult, in_list, no_index, param, placeholders, rows_query};
use crate::domain::ItemStatus;
use crate::keys::Keyring;

/// Rows per set-based statement.
const ROWS_PER_STATEMENT: usize = 1_000;

/// The counter of item references.
const ITEM_REF_COUNTER: &str = "item_ref";

/// An item as a one-payment-per-message bank sees it.
#[derive(Debug, Clone)]
pub struct BankItem {
    /// The item.
    pub row: ItemRow,
    /// Its reference at the bank (F37).
    pub item_ref: String,
    /// The last payout attempt: STAN and F7 as sent.
    pub last_attempt: Option<(String, String)>,
}

/// A payout attempt about to be sent.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The item's reference.
    pub item_ref: String,
    /// STAN.
    pub stan: String,
    /// F7 (`MMDDhhmmss`).
    pub sent_time: String,
}

fn bank_item_from_row(keys: &Keyring, r: &sqlx::any::AnyRow) -> StoreResult<BankItem> {
    let stan: Option<String> = r.try_get("last_stan")?;
    let time: Option<String> = r.try_get("last_time")?;
    Ok(BankItem {
        row: item_from_row(keys, r)?,
        item_ref: r.try_get("bank_item_ref")?,
        last_attempt: stan.zip(time),
    })
}

impl Store {
    /// Gives every item of the part without one a reference: 12 digits from a counter, so unique for
    /// ever in this store. Done once, before the first attempt; never changed afterwards.
    pub async fn assign_item_refs(&self, part_id: &str) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let seqs: Vec<(String, i64)> = sqlx::query(
            "select batch_id, seq from items where part_id = $1 and bank_item_ref is null order by seq",
        )
        .bind(part_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("batch_id")?, r.try_get("seq")?)))
        .collect::<StoreResult<_>>()?;
        if seqs.is_empty() {
            return Ok(0);
        }
        let n = i64::try_from(seqs.len()).unwrap_or(i64::MAX);
        sqlx::query(
            "insert into counters (name, value) values ($1, 0) on conflict (name) do nothing",
        )
        .bind(ITEM_REF_COUNTER)
        .execute(&mut *tx)
        .await?;
        let end: i64 =
            sqlx::query("update counters set value = value + $1 where name = $2 returning value")
                .bind(n)
                .bind(ITEM_REF_COUNTER)
                .fetch_one(&mut *tx)
                .await?
                .try_get("value")?;
        // A part's items are all of one batch.
        let batch_id = seqs[0].0.clone();
        let refs: Vec<(i64, String)> = (end - n + 1..)
            .zip(&seqs)
            .map(|(next, (_, seq))| (*seq, format!("{next:012}")))
            .collect();
        for rows in refs.chunks(ROWS_PER_STATEMENT) {
            // One statement per thousand items; `no_index`: each value finds its row by the key.
            let tail = param(self.backend(), rows.len() * 2 + 1);
            let sql = format!(
                "with v (seq, item_ref) as (values {}) \
                 update items set bank_item_ref = v.item_ref from v \
                 where items.batch_id = {tail} and items.seq = v.seq and {}items.bank_item_ref is null",
                placeholders(self.backend(), rows.len(), 2),
                no_index(self.backend())
            );
            let mut q = rows_query(sql, rows.len(), ROWS_PER_STATEMENT);
            for (seq, item_ref) in rows {
                q = q.bind(*seq).bind(item_ref);
            }
            q.bind(&batch_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(refs.len() as u64)
    }

    async fn bank_items(&self, part_id: &str, filter: &str) -> StoreResult<Vec<BankItem>> {
        let sql = format!(
            "select {ITEM_SELECT}, i.bank_item_ref, \
             (select a.stan from item_attempts a where a.item_ref = i.bank_item_ref order by a.attempt_no desc limit 1) as last_stan, \
             (select a.sent_time from item_attempts a where a.item_ref = i.bank_item_ref order by a.attempt_no desc limit 1) as last_time \
             from {ITEM_FROM} \
             where i.part_id = $1 and i.bank_item_ref is not null and {filter} order by i.seq"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(part_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| bank_item_from_row(&self.keys.data, r))
            .collect()
    }

    /// Items of the part the bank has not accepted yet (and that are still to be paid).
    pub async fn unaccepted_items(&self, part_id: &str) -> StoreResult<Vec<BankItem>> {
        self.bank_items(
            part_id,
            "i.status = 'pending' and p.accepted_at is null and i.bank_accepted = 0",
        )
        .await
    }

    /// Items of an accepted part still waiting for their result.
    pub async fn awaiting_items(&self, part_id: &str) -> StoreResult<Vec<BankItem>> {
        self.bank_items(part_id, &item_status_filter(ItemStatus::Sent))
            .await
    }

    /// Records attempts before they are sent (one transaction).
    pub async fn record_attempts(
        &self,
        bank: &str,
        attempts: &[Attempt],
        now: i64,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for rows in attempts.chunks(ROWS_PER_STATEMENT) {
            // An item has one attempt per step, so the numbers of one statement never collide.
            let values = attempt_rows(self.backend(), rows.len());
            let sql = format!(
                "insert into item_attempts (item_ref, attempt_no, bank_code, stan, sent_time, sent_at) values {values}"
            );
            let mut q = rows_query(sql, rows.len(), ROWS_PER_STATEMENT);
            for a in rows {
                q = q
                    .bind(&a.item_ref)
                    .bind(&a.item_ref)
                    .bind(bank)
                    .bind(&a.stan)
                    .bind(&a.sent_time)
                    .bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Writes what each attempt got (`(item_ref, stan, answer)`), and marks the items whose payout
    /// the bank accepted (one transaction).
    pub async fn record_answers(
        &self,
        answers: &[(String, String, String)],
        accepted: &[String],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for rows in answers.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "with v (item_ref, stan, answer) as (values {}) \
                 update item_attempts set answer = v.answer from v \
                 where item_attempts.item_ref = v.item_ref and item_attempts.stan = v.stan \
                 and item_attempts.answer is null",
                placeholders(self.backend(), rows.len(), 3)
            );
            let mut q = rows_query(sql, rows.len(), ROWS_PER_STATEMENT);
            for (item_ref, stan, answer) in rows {
                q = q.bind(item_ref).bind(stan).bind(answer);
            }
            q.execute(&mut *tx).await?;
        }
        for refs in accepted.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "update items set bank_accepted = 1 where bank_item_ref in ({})",
                in_list(self.backend(), refs.len())
            );
            let mut q = rows_query(sql, refs.len(), ROWS_PER_STATEMENT);
            for r in refs {
                q = q.bind(r);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Puts single items in review before their part is accepted (the bank cannot take them), with
    /// their events.
    pub async fn items_review(
        &self,
        part: &PartRow,
        items: &[(i64, String)],
        now: i64,
        events: &[EventRow],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for (seq, why) in items {
            sqlx::query(
                "update items set status = 'review', fail_reason = $1, final_at = $2 \
                 where batch_id = $3 and seq = $4 and part_id = $5 and status in ('pending', 'sent')",
            )
            .bind(why)
            .bind(now)
            .bind(&part.batch_id)
            .bind(seq)
            .bind(&part.part_id)
            .execute(&mut *tx)
            .await?;
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every attempt of an item, oldest first: `(attempt_no, stan, sent_time, answer)`.
    pub async fn item_attempts(
        &self,
        item_ref: &str,
    ) -> StoreResult<Vec<(i64, String, String, Option<String>)>> {
        let rows = sqlx::query(
            "select attempt_no, stan, sent_time, answer from item_attempts where item_ref = $1 order by attempt_no",
        )
        .bind(item_ref)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("attempt_no")?,
                    r.try_get("stan")?,
                    r.try_get("sent_time")?,
                    r.try_get("answer")?,
                ))
            })
            .collect()
    }
}

/// The `values` rows of an attempts insert: the item's reference, its next attempt number (one more
/// than its last), bank, STAN, F7 and time; 6 parameters each, numbered as [`placeholders`] does.
fn attempt_rows(backend: Backend, n: usize) -> String {
    (0..n)
        .map(|row| {
            let p = |k| param(backend, row * 6 + k);
            format!(
                "({}, (select coalesce(max(attempt_no), 0) + 1 from item_attempts where item_ref = {}), \
                 {}, {}, {}, {})",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}
