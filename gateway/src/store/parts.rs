//! Parts (bank batches): claims with leases, send outcomes, polls and the grouped application of
//! results, each with the events it causes in the same transaction (outbox).
use futures::TryStreamExt;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::batches::{
    ITEM_FROM, ITEM_SELECT, item_from_row, items_pii_join, open_item_field, outgoing_from_row,
};
use super::misc::insert_events;
use super::rows::*;
use super::{Backend, Store, StoreError, StoreResult, no_index, param, placeholders, rows_query};
use crate::domain::{ItemStatus, PartState, Pii};

const PART_COLS: &str = "part_id, batch_id, bank_code, bank_ref, part_no, item_count, amount_fen, state, attempts, \
     polls, bank_batch_id, accepted_at, last_error";

/// Item results are written in transactions of this many rows: a whole part of bank A's 50,000 in one.
/// With 5,000 a part took ten commits. At 1,000,000 items through bank A, the results stage after the
/// last send took a median of 14.35 s that way and 11.53 s this way (five runs each, alternated;
/// docs/performance.md).
pub const RESULT_GROUP: usize = 50_000;
/// Item results per `update ... from (values ...)` statement (8 parameters each).
const RESULT_ROWS_PER_STATEMENT: usize = 1_000;

/// What a worker claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Pending parts due for sending (they become `sending`).
    Send,
    /// Parts whose send outcome is unknown (or whose sender's lease expired): to be asked about.
    Resolve,
    /// Accepted parts due for a result poll.
    Poll,
}

fn part_from_row(r: &AnyRow) -> StoreResult<PartRow> {
    let state: String = r.try_get("state")?;
    Ok(PartRow {
        part_id: r.try_get("part_id")?,
        batch_id: r.try_get("batch_id")?,
        bank_code: r.try_get("bank_code")?,
        bank_ref: r.try_get("bank_ref")?,
        part_no: r.try_get("part_no")?,
        item_count: r.try_get("item_count")?,
        amount_fen: r.try_get("amount_fen")?,
        state: PartState::parse(&state).ok_or_else(|| StoreError::Corrupt {
            table: "parts",
            problem: format!("state {state}"),
        })?,
        attempts: r.try_get("attempts")?,
        polls: r.try_get("polls")?,
        bank_batch_id: r.try_get("bank_batch_id")?,
        accepted_at: r.try_get("accepted_at")?,
        last_error: r.try_get("last_error")?,
    })
}

/// Locks the batch row until the transaction ends. The parts of a batch may be worked on by several
/// instances at once; "was this the batch's last open part?" is only answered right when the
/// transactions asking it for one batch take turns (each then sees what the previous one committed).
/// SQLite has one writer at a time anyway.
async fn lock_batch(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    batch_id: &str,
) -> StoreResult<()> {
    sqlx::query("update batches set sent_at = sent_at where batch_id = $1")
        .bind(batch_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Claims up to `limit` parts of `bank` for `owner` until `lease_until`.
    pub async fn claim_parts(
        &self,
        claim: Claim,
        bank: &str,
        now: i64,
        owner: &str,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<PartRow>> {
        let (set, filter) = match claim {
            Claim::Send => (
                "state = 'sending', attempts = attempts + 1",
                "state = 'pending' and next_at <= $4 and not_before <= $4",
            ),
            Claim::Resolve => (
                "state = 'unknown'",
                "((state = 'unknown' and next_at <= $4 and (lease_until is null or lease_until < $4)) \
                 or (state = 'sending' and lease_until < $4))",
            ),
            Claim::Poll => (
                "polls = polls + 1",
                "state = 'accepted' and next_at <= $4 and (lease_until is null or lease_until < $4)",
            ),
        };
        // `picked` chooses the parts; on PostgreSQL it locks them and skips parts another instance is
        // claiming right now, so two instances never take the same part. It is a materialized CTE, run
        // once: as a plain `in (sub-select)` PostgreSQL may run it again for each row it updates, and
        // each run, skipping the rows this very statement has just changed, picks further parts (a
        // claim of 4 took all 60 parts in tests/postgres_store.rs). The filter is checked again on each row as the update
        // finds it (PostgreSQL re-reads a row another transaction changed meanwhile), so a part
        // claimed and committed in between is not taken.
        let sql = format!(
            "with picked as materialized (select part_id from parts where bank_code = $3 and {filter} \
             order by next_at, part_no limit $5{lock}) \
             update parts set {set}, lease_owner = $1, lease_until = $2 \
             where part_id in (select part_id from picked) and {filter} returning {PART_COLS}",
            lock = self.skip_locked(),
        );
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(lease_until)
            .bind(bank)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(part_from_row).collect()
    }

    /// Extends `owner`'s lease of a part it is still working on; `false` when the lease is no longer
    /// its own (another worker took the part over: stop).
    pub async fn renew_lease(&self, part_id: &str, owner: &str, until: i64) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "update parts set lease_until = $1 where part_id = $2 and lease_owner = $3",
        )
        .bind(until)
        .bind(part_id)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// After a restart of `owner`: its sends in flight have an unknown outcome; its other leases end.
    pub async fn recover_leases(&self, owner: &str) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "update parts set state = 'unknown', lease_owner = null, lease_until = null \
             where state = 'sending' and lease_owner = $1",
        )
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "update parts set lease_owner = null, lease_until = null where lease_owner = $1",
        )
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// The parts of a batch.
    pub async fn batch_parts(&self, batch_id: &str) -> StoreResult<Vec<PartRow>> {
        let sql = format!("select {PART_COLS} from parts where batch_id = $1 order by part_no");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(batch_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(part_from_row).collect()
    }

    /// The items of a part in `seq` order.
    pub async fn part_items(&self, part_id: &str) -> StoreResult<Vec<ItemRow>> {
        let sql = format!(
            "select {ITEM_SELECT} from {ITEM_FROM} \
             where i.part_id = $1 order by i.seq"
        );
        // Rows are mapped as they come: a fetched row carries its column names and values, many times
        // the size of the item, and a part holds up to 50,000.
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(part_id)
            .fetch(self.pool());
        let mut out = Vec::new();
        while let Some(r) = rows.try_next().await? {
            out.push(item_from_row(&self.keys.data, &r)?);
        }
        Ok(out)
    }

    /// What reconciliation needs of a part's items, in `seq` order: the other personal fields stay
    /// sealed, and a row is a fifth of an [`ItemRow`].
    pub async fn part_sent(&self, part_id: &str) -> StoreResult<Vec<SentItem>> {
        let mut rows = sqlx::query(
            concat!(
                "select i.batch_id, i.seq, i.amount_fen, x.account_no, i.account_bank_code from items i ",
                items_pii_join!(),
                " where i.part_id = $1 order by i.seq"
            ),
        )
        .bind(part_id)
        .fetch(self.pool());
        let mut out = Vec::new();
        while let Some(r) = rows.try_next().await? {
            let batch_id: String = r.try_get("batch_id")?;
            let seq: i64 = r.try_get("seq")?;
            out.push(SentItem {
                seq,
                amount_fen: r.try_get("amount_fen")?,
                account_no: Pii::new(open_item_field(
                    &self.keys.data,
                    &r,
                    &batch_id,
                    seq,
                    "account_no",
                )?),
                account_bank_code: r.try_get("account_bank_code")?,
            });
        }
        Ok(out)
    }

    /// A page of what the bank's request carries of a part's items (`seq` order, after `after_seq`),
    /// mapped as the rows come: the columns an encoder needs, no join with `parts`.
    pub async fn part_outgoing_page(
        &self,
        part_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<OutgoingItem>> {
        let mut rows = sqlx::query(
            concat!(
                "select i.batch_id, i.seq, i.recipient_kind, x.name, x.id_no, x.account_no, i.account_kind, \
                 i.account_bank_code, i.amount_fen, x.phone, i.memo from items i ",
                items_pii_join!(),
                " where i.part_id = $1 and i.seq > $2 order by i.seq limit $3"
            ),
        )
        .bind(part_id)
        .bind(after_seq)
        .bind(limit)
        .fetch(self.pool());
        let mut out = Vec::with_capacity(usize::try_from(limit).unwrap_or(0).min(10_000));
        while let Some(r) = rows.try_next().await? {
            out.push(outgoing_from_row(&self.keys.data, &r)?);
        }
        Ok(out)
    }

    /// A page of a part's items in `seq` order, after `after_seq`.
    pub async fn part_items_page(
        &self,
        part_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<ItemRow>> {
        let sql = format!(
            "select {ITEM_SELECT} from {ITEM_FROM} \
             where i.part_id = $1 and i.seq > $2 order by i.seq limit $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(part_id)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| item_from_row(&self.keys.data, r))
            .collect()
    }

    /// The bank accepted the part: its items are `sent` (derived from `accepted_at` in
    /// [`ITEM_SELECT`]'s status; no item row is written); polling starts
    /// at `next_poll`.
    pub async fn part_accepted(
        &self,
        part: &PartRow,
        bank_batch_id: Option<&str>,
        now: i64,
        next_poll: i64,
        events: &mut Vec<EventRow>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        lock_batch(&mut tx, &part.batch_id).await?;
        sqlx::query(
            "update parts set state = 'accepted', bank_batch_id = coalesce($1, bank_batch_id), accepted_at = $2, \
             next_at = $3, lease_owner = null, lease_until = null, last_error = null where part_id = $4",
        )
        .bind(bank_batch_id)
        .bind(now)
        .bind(next_poll)
        .bind(&part.part_id)
        .execute(&mut *tx)
        .await?;
        let open: i64 = sqlx::query(
            "select count(*) as n from parts where batch_id = $1 and state in ('pending', 'sending', 'unknown')",
        )
        .bind(&part.batch_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if open == 0 {
            let res = sqlx::query(
                "update batches set sent_at = $1 where batch_id = $2 and sent_at is null",
            )
            .bind(now)
            .bind(&part.batch_id)
            .execute(&mut *tx)
            .await?;
            if res.rows_affected() == 0 {
                events.retain(|e| e.kind != "batch.sent");
            }
        } else {
            events.retain(|e| e.kind != "batch.sent");
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Puts a part back: `state` (`pending` to send again, `unknown` to ask again) at `next_at`.
    pub async fn part_retry(
        &self,
        part_id: &str,
        state: PartState,
        next_at: i64,
        error: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "update parts set state = $1, next_at = $2, last_error = $3, lease_owner = null, lease_until = null \
             where part_id = $4",
        )
        .bind(state.as_str())
        .bind(next_at)
        .bind(error)
        .bind(part_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the last problem with a part without changing anything else (operators see why it
    /// waits).
    pub async fn part_note(&self, part_id: &str, error: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("update parts set last_error = $1 where part_id = $2")
            .bind(error)
            .bind(part_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The next poll of an accepted part.
    pub async fn poll_again(
        &self,
        part_id: &str,
        next_at: i64,
        note: Option<&str>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "update parts set next_at = $1, last_error = $2, lease_owner = null, lease_until = null where part_id = $3",
        )
        .bind(next_at)
        .bind(note)
        .bind(part_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A part an operator must look at (refused by the bank, or results that do not reconcile).
    pub async fn part_review(
        &self,
        part_id: &str,
        error: &str,
        events: &[EventRow],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "update parts set state = 'review', last_error = $1, lease_owner = null, lease_until = null \
             where part_id = $2",
        )
        .bind(error)
        .bind(part_id)
        .execute(&mut *tx)
        .await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies reconciled results of a part in grouped transactions, then makes the part final. Items
    /// already final are left as they are, so applying the same results twice changes nothing. Returns
    /// whether the batch became final with this part.
    pub async fn apply_results(
        &self,
        part: &PartRow,
        results: &[ItemResult],
        now: i64,
        item_events: impl Fn(&ItemResult) -> Vec<EventRow>,
        final_events: impl FnOnce(&FinalInfo) -> Vec<EventRow>,
    ) -> StoreResult<Option<FinalInfo>> {
        self.apply_item_results(part, results, now, item_events)
            .await?;
        self.finish_part(part, now, final_events).await
    }

    /// Applies item results (grouped transactions, with their events); items already final are left as
    /// they are. The part stays as it is.
    ///
    /// Each group is one transaction of a few set-based statements: the results as a `values` list
    /// joined to the items (`update ... from`), which answers the items it changed (`returning`), then
    /// the notices of the credited ones and the events, each a multi-row insert. Row-by-row updates
    /// cost a statement round trip per item (issue 9).
    pub async fn apply_item_results(
        &self,
        part: &PartRow,
        results: &[ItemResult],
        now: i64,
        item_events: impl Fn(&ItemResult) -> Vec<EventRow>,
    ) -> StoreResult<()> {
        for group in results.chunks(RESULT_GROUP) {
            let mut tx = self.begin_write().await?;
            let mut changed = std::collections::HashSet::with_capacity(group.len());
            for rows in group.chunks(RESULT_ROWS_PER_STATEMENT) {
                changed.extend(update_results(&mut tx, self.backend, part, rows, now).await?);
            }
            let mut events = Vec::new();
            let mut credited = Vec::new();
            for r in group.iter().filter(|r| changed.contains(&r.seq)) {
                events.extend(item_events(r));
                if r.status == ItemStatus::Succeeded {
                    credited.push(r.seq);
                }
            }
            for seqs in credited.chunks(RESULT_ROWS_PER_STATEMENT) {
                // The SMS notices (outbox): keyed by the item, so never two.
                let sql = format!(
                    "insert into notices (batch_id, seq, state, created_at, next_at) values {} \
                     on conflict (batch_id, seq) do nothing",
                    placeholders(self.backend, seqs.len(), 5)
                );
                let mut q = rows_query(sql, seqs.len(), RESULT_ROWS_PER_STATEMENT);
                for seq in seqs {
                    q = q
                        .bind(&part.batch_id)
                        .bind(*seq)
                        .bind("pending")
                        .bind(now)
                        .bind(now);
                }
                q.execute(&mut *tx).await?;
            }
            insert_events(&mut tx, &events).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Makes an accepted part final (its items all have their results) and, when it was the batch's
    /// last open work, the batch too (with the query's feedback time and the final events). Returns
    /// whether the batch became final.
    pub async fn finish_part(
        &self,
        part: &PartRow,
        now: i64,
        final_events: impl FnOnce(&FinalInfo) -> Vec<EventRow>,
    ) -> StoreResult<Option<FinalInfo>> {
        let mut tx = self.begin_write().await?;
        lock_batch(&mut tx, &part.batch_id).await?;
        sqlx::query(
            "update parts set state = 'final', final_at = $1, lease_owner = null, lease_until = null \
             where part_id = $2 and state = 'accepted'",
        )
        .bind(now)
        .bind(&part.part_id)
        .execute(&mut *tx)
        .await?;
        let open: i64 = sqlx::query(
            "select count(*) as n from items where batch_id = $1 and status in ('pending', 'sent')",
        )
        .bind(&part.batch_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        let mut info = None;
        if open == 0 {
            let res = sqlx::query(
                "update batches set final_at = $1 where batch_id = $2 and final_at is null",
            )
            .bind(now)
            .bind(&part.batch_id)
            .execute(&mut *tx)
            .await?;
            if res.rows_affected() == 1 {
                let q = sqlx::query(
                    "select due_at from queries where batch_id = $1 and status = 'running'",
                )
                .bind(&part.batch_id)
                .fetch_optional(&mut *tx)
                .await?;
                let due_at: Option<i64> = q.map(|r| r.try_get("due_at")).transpose()?;
                let late = due_at.is_some_and(|d| now > d);
                if due_at.is_some() {
                    sqlx::query(
                        "update queries set status = 'final', fed_back_at = $1, late = $2 where batch_id = $3",
                    )
                    .bind(now)
                    .bind(i64::from(late))
                    .bind(&part.batch_id)
                    .execute(&mut *tx)
                    .await?;
                }
                let fi = FinalInfo {
                    batch_id: part.batch_id.clone(),
                    final_at: now,
                    query_due_at: due_at,
                    late,
                };
                insert_events(&mut tx, &final_events(&fi)).await?;
                info = Some(fi);
            }
        }
        tx.commit().await?;
        Ok(info)
    }

    /// Batches with parts of `bank` not yet final (for the dashboard and readiness).
    pub async fn open_parts(&self, bank: &str) -> StoreResult<i64> {
        let n: i64 = sqlx::query(
            "select count(*) as n from parts where bank_code = $1 and state not in ('final')",
        )
        .bind(bank)
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        Ok(n)
    }

    /// Items of the whole store by status (metrics).
    pub async fn item_status_totals(&self) -> StoreResult<Vec<(ItemStatus, i64)>> {
        let rows = super::batches::status_counts(self.pool(), "1 = 1", None).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(s, n, _)| ItemStatus::parse(&s).map(|st| (st, n)))
            .collect())
    }
}

/// A batch that became final.
#[derive(Debug, Clone)]
pub struct FinalInfo {
    /// The batch.
    pub batch_id: String,
    /// When.
    pub final_at: i64,
    /// Its query's deadline, if clicked.
    pub query_due_at: Option<i64>,
    /// Past the deadline.
    pub late: bool,
}

/// Writes one statement's worth of results to the items of `part` still open (stored `pending`, read
/// `sent` since the part was accepted; or stored `sent` by an earlier build); answers the `seq` of the
/// items it changed.
///
/// The statement is written so that each value finds its item by the primary key whatever the
/// planner's statistics say. Its estimates of the `status` and `part_id` terms come from the last
/// `analyze`, which may have seen every item `pending`; a constant in those terms then looks like one
/// row and is walked through its index (the batch's every `sent` item, up to a million) for each
/// statement:
/// - on SQLite, the status term is kept off `items_status` (`+items.status`, [`no_index`]);
/// - on PostgreSQL, the batch and the part come with each value instead of as constants, so no index
///   has a constant prefix and every path's cost follows the table's size and the list's (a probe of
///   `items_pkey` per value on a large table, a hash join on a small one: `docs/performance.md`).
async fn update_results(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    part: &PartRow,
    rows: &[ItemResult],
    now: i64,
) -> StoreResult<Vec<i64>> {
    const SET: &str = "update items set status = v.status, result_code = v.result_code, \
        fail_code = v.fail_code, fail_reason = v.fail_reason, result_bank_code = v.result_bank_code, \
        confirmed_at = v.confirmed_at, bank_txn_no = v.bank_txn_no";
    const COLUMNS: &str = "seq, status, result_code, fail_code, fail_reason, result_bank_code, confirmed_at, bank_txn_no";
    let (sql, keys_per_row) = match backend {
        Backend::Sqlite => {
            let n = rows.len() * 8;
            let tail = [n + 1, n + 2, n + 3].map(|i| param(backend, i));
            (
                format!(
                    "with v ({COLUMNS}) as (values {}) {SET}, final_at = {} \
                     from v where items.batch_id = {} and items.part_id = {} and items.seq = v.seq \
                     and {}items.status in ('pending', 'sent') returning items.seq",
                    placeholders(backend, rows.len(), 8),
                    tail[0],
                    tail[1],
                    tail[2],
                    no_index(backend)
                ),
                false,
            )
        }
        Backend::Postgres => (
            format!(
                "with v (batch_id, part_id, {COLUMNS}) as (values {}) {SET}, final_at = {} \
                 from v where items.batch_id = v.batch_id and items.seq = v.seq \
                 and items.part_id = v.part_id and items.status in ('pending', 'sent') returning items.seq",
                placeholders(backend, rows.len(), 10),
                param(backend, rows.len() * 10 + 1)
            ),
            true,
        ),
    };
    let mut q = rows_query(sql, rows.len(), RESULT_ROWS_PER_STATEMENT);
    for r in rows {
        if keys_per_row {
            q = q.bind(&part.batch_id).bind(&part.part_id);
        }
        q = q
            .bind(r.seq)
            .bind(r.status.as_str())
            .bind(&r.result_code)
            .bind(&r.fail_code)
            .bind(&r.fail_reason)
            .bind(&r.result_bank_code)
            .bind(r.confirmed_at)
            .bind(&r.bank_txn_no);
    }
    q = q.bind(now);
    if !keys_per_row {
        q = q.bind(&part.batch_id).bind(&part.part_id);
    }
    let out = q.fetch_all(&mut **tx).await?;
    out.iter()
        .map(|r| Ok(r.try_get::<i64, _>("seq")?))
        .collect()
}
