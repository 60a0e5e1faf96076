//! Failed and review items: correction (a re-issue sub-batch), return to the treasury, an operator's
//! resolution. Each is a guarded state change (only from the right status) with its events.
use sqlx::Row;

use super::audit::{NewAudit, append_audit};
use super::batches::{ITEM_FROM, ITEM_SELECT, insert_items, item_from_row};
use super::misc::insert_events;
use super::rows::*;
use super::{Store, StoreResult};
use crate::domain::ItemStatus;

impl Store {
    /// One item.
    pub async fn get_item(&self, batch_id: &str, seq: i64) -> StoreResult<Option<ItemRow>> {
        let sql = format!(
            "select {ITEM_SELECT} from {ITEM_FROM} \
             where i.batch_id = $1 and i.seq = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(batch_id)
            .bind(seq)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(|r| item_from_row(&self.keys.data, r))
            .transpose()
    }

    /// `from` -> `to` with a reason, its events and its audit record in one transaction; false when
    /// the item is not in `from` (nothing changed).
    // The arguments are the fields of one state change, written in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn settle_item(
        &self,
        batch_id: &str,
        seq: i64,
        from: ItemStatus,
        to: ItemStatus,
        reason: &str,
        now: i64,
        events: &[EventRow],
        audit: &NewAudit,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let res = sqlx::query(
            "update items set status = $1, handled_at = $2, handled_reason = $3 \
             where batch_id = $4 and seq = $5 and status = $6",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(reason)
        .bind(batch_id)
        .bind(seq)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_events(&mut tx, events).await?;
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Re-issues a failed item as a one-item sub-batch linked to it; false when the item is not
    /// `failed` (nothing changed). Written in one transaction with its events and audit record. The
    /// original keeps its claim; the new item holds none, so the same recipient is not refused as a
    /// duplicate, and the original can never be re-issued twice.
    // The arguments are the fields of one state change, written in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn reissue(
        &self,
        original: (&str, i64),
        batch: &NewBatch,
        item: &NewItem,
        part: &NewPart,
        bank_code: &str,
        answer: &str,
        events: &[EventRow],
        audit: &NewAudit,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let res = sqlx::query(
            "update items set status = 'corrected', handled_at = $1 where batch_id = $2 and seq = $3 and status = 'failed'",
        )
        .bind(batch.created_at)
        .bind(original.0)
        .bind(original.1)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "insert into batches (batch_id, batch_no, body_hash, parent_batch_id, department_code, region_code, \
             subsidy_code, subsidy_name, budget_year, period, indicator_no, payout_bank, payer_account_no, \
             payer_account_name, funds_arrived_on, total_count, total_amount_fen, accepted_count, \
             accepted_amount_fen, rejected_count, answer, created_at, start_late) \
             values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$16,$17,0,$18,$19,0)",
        )
        .bind(&batch.batch_id)
        .bind(&batch.batch_no)
        .bind(&batch.body_hash)
        .bind(&batch.parent_batch_id)
        .bind(&batch.department_code)
        .bind(&batch.region_code)
        .bind(&batch.subsidy_code)
        .bind(&batch.subsidy_name)
        .bind(batch.budget_year)
        .bind(&batch.period)
        .bind(&batch.indicator_no)
        .bind(&batch.payout_bank)
        .bind(&batch.payer_account_no)
        .bind(&batch.payer_account_name)
        .bind(&batch.funds_arrived_on)
        .bind(batch.total_count)
        .bind(batch.total_amount_fen)
        .bind(answer)
        .bind(batch.created_at)
        .execute(&mut *tx)
        .await?;
        insert_items(
            &mut tx,
            self.backend(),
            &self.keys,
            &batch.batch_id,
            std::slice::from_ref(item),
        )
        .await?;
        sqlx::query(
            "insert into parts (part_id, batch_id, bank_code, bank_ref, part_no, item_count, amount_fen, state, \
             not_before, next_at) values ($1,$2,$3,$4,0,$5,$6,'pending',$7,$7)",
        )
        .bind(&part.part_id)
        .bind(&batch.batch_id)
        .bind(bank_code)
        .bind(&part.bank_ref)
        .bind(part.item_count)
        .bind(part.amount_fen)
        .bind(batch.created_at)
        .execute(&mut *tx)
        .await?;
        insert_events(&mut tx, events).await?;
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Indicator number of a batch (copied to its re-issues).
    pub async fn batch_indicator(&self, batch_id: &str) -> StoreResult<String> {
        let r = sqlx::query("select indicator_no from batches where batch_id = $1")
            .bind(batch_id)
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get("indicator_no")?)
    }
}
