//! SMS notices (信息直达): created with the credit (see `parts::apply_item_results`), claimed with
//! leases, marked `sending` before their PDUs are written, `submitted` with the SMS centre's message
//! ids, final from delivery receipts.
//!
//! ```text
//! pending --claim--> (leased) --mark_sending--> sending --submitted--> submitted --receipts--> delivered | failed
//!                                                  |  (crash: ambiguous)
//!                                                  +--> unknown --receipt names it--> submitted
//!                                                           +--grace over, no receipt--> pending (sent again)
//! ```
use sqlx::Row;

use super::batches::{items_pii_join, open_item_field};
use super::{Store, StoreResult};

/// A notice to send, with what its text needs.
#[derive(Debug, Clone)]
pub struct NoticeJob {
    /// Batch.
    pub batch_id: String,
    /// Item.
    pub seq: i64,
    /// Phone (11 digits).
    pub phone: String,
    /// Account number (only its last 4 digits go into the text).
    pub account_no: String,
    /// Account kind (`ssc`, `corporate`, `personal`).
    pub account_kind: String,
    /// Amount.
    pub amount_fen: i64,
    /// When the account bank credited it (bank's time), else when the gateway learned it.
    pub credited_at: i64,
    /// Subsidy code (selects the template).
    pub subsidy_code: String,
    /// Subsidy name.
    pub subsidy_name: String,
    /// Attempts so far (this one included).
    pub attempts: i64,
}

/// A notice as the API shows it.
#[derive(Debug, Clone)]
pub struct NoticeRow {
    /// Item.
    pub seq: i64,
    /// State.
    pub state: String,
    /// Parts.
    pub parts: Option<i64>,
    /// Message ids.
    pub message_ids: Option<String>,
    /// When submitted.
    pub submitted_at: Option<i64>,
    /// Receipts received.
    pub receipts: i64,
    /// Final receipt state.
    pub final_stat: Option<String>,
    /// When final.
    pub final_at: Option<i64>,
    /// Attempts.
    pub attempts: i64,
    /// Last problem.
    pub last_error: Option<String>,
}

/// The worst of two receipt states (a notice is delivered only when every part is).
fn worse(a: &str, b: &str) -> String {
    let rank = |s: &str| match s {
        "DELIVRD" => 0,
        "UNKNOWN" => 1,
        "EXPIRED" => 2,
        "UNDELIV" => 3,
        _ => 4,
    };
    if rank(a) >= rank(b) { a } else { b }.to_owned()
}

impl Store {
    /// Claims up to `limit` due notices for `owner` until `lease_until`.
    pub async fn claim_notices(
        &self,
        now: i64,
        owner: &str,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<NoticeJob>> {
        // As `claim_parts`: a materialized pick that on PostgreSQL skips rows another instance is
        // claiming, and the filter checked again on each row, so two instances never take one notice.
        let filter =
            "state = 'pending' and next_at <= $3 and (lease_until is null or lease_until < $4)";
        let sql = format!(
            "with picked as materialized (select batch_id, seq from notices where {filter} \
             order by next_at limit $5{lock}) \
             update notices set attempts = attempts + 1, lease_owner = $1, lease_until = $2 \
             where (batch_id, seq) in (select batch_id, seq from picked) and {filter} \
             returning batch_id, seq",
            lock = self.skip_locked(),
        );
        let mut tx = self.begin_write().await?;
        let keys = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(keys.len());
        for k in &keys {
            let batch_id: String = k.try_get("batch_id")?;
            let seq: i64 = k.try_get("seq")?;
            let r = sqlx::query(concat!(
                "select x.phone, x.account_no, i.account_kind, i.amount_fen, \
                 coalesce(i.confirmed_at, i.final_at, n.created_at) as credited_at, b.subsidy_code, b.subsidy_name, n.attempts, \
                 n.phone_hash \
                 from notices n join items i on i.batch_id = n.batch_id and i.seq = n.seq ",
                items_pii_join!(),
                " join batches b on b.batch_id = n.batch_id where n.batch_id = $1 and n.seq = $2"
            ))
            .bind(&batch_id)
            .bind(seq)
            .fetch_one(&mut *tx)
            .await?;
            let phone = open_item_field(&self.keys.data, &r, &batch_id, seq, "phone")?;
            let account_no = open_item_field(&self.keys.data, &r, &batch_id, seq, "account_no")?;
            // The phone's keyed hash, for a delivery receipt that names only the phone (see
            // `notice_receipt`): written when the notice is first taken, before anything is sent.
            if r.try_get::<Option<String>, _>("phone_hash")?.is_none() {
                sqlx::query("update notices set phone_hash = $1 where batch_id = $2 and seq = $3")
                    .bind(self.keys.lookup.phone_hash(&phone))
                    .bind(&batch_id)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
            }
            out.push(NoticeJob {
                batch_id,
                seq,
                phone,
                account_no,
                account_kind: r.try_get("account_kind")?,
                amount_fen: r.try_get("amount_fen")?,
                credited_at: r.try_get("credited_at")?,
                subsidy_code: r.try_get("subsidy_code")?,
                subsidy_name: r.try_get("subsidy_name")?,
                attempts: r.try_get("attempts")?,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Marks notices `sending`: from now on their outcome may be ambiguous (one transaction, before
    /// any of their PDUs is written).
    /// `keys` are `(batch_id, seq, parts)`.
    pub async fn notices_sending(&self, keys: &[(String, i64, i64)], now: i64) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for (b, s, parts) in keys {
            sqlx::query(
                "update notices set state = 'sending', parts = $1, next_at = $2 where batch_id = $3 and seq = $4 and state = 'pending'",
            )
            .bind(parts)
            .bind(now)
            .bind(b)
            .bind(s)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The SMS centre took every part: its message ids, in part order.
    pub async fn notice_submitted(
        &self,
        batch_id: &str,
        seq: i64,
        message_ids: &[String],
        now: i64,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "update notices set state = 'submitted', parts = $1, message_ids = $2, submitted_at = $3, \
             last_error = null, lease_owner = null, lease_until = null where batch_id = $4 and seq = $5",
        )
        .bind(i64::try_from(message_ids.len()).unwrap_or(i64::MAX))
        .bind(message_ids.join(" "))
        .bind(now)
        .bind(batch_id)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        for (i, id) in message_ids.iter().enumerate() {
            sqlx::query(
                "insert into notice_parts (message_id, batch_id, seq, part_no) values ($1, $2, $3, $4) \
                 on conflict (message_id) do nothing",
            )
            .bind(id)
            .bind(batch_id)
            .bind(seq)
            .bind(i64::try_from(i + 1).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Nothing reached the SMS centre (or it refused for now): back to `pending` at `next_at`.
    pub async fn notice_retry(
        &self,
        batch_id: &str,
        seq: i64,
        next_at: i64,
        error: &str,
    ) -> StoreResult<()> {
        self.notice_set(batch_id, seq, "pending", next_at, error)
            .await
    }

    /// The SMS centre may have the notice, but its answer was lost: `unknown` until a receipt names
    /// it or `next_at` passes (then it is sent again).
    pub async fn notice_unknown(
        &self,
        batch_id: &str,
        seq: i64,
        next_at: i64,
        error: &str,
    ) -> StoreResult<()> {
        self.notice_set(batch_id, seq, "unknown", next_at, error)
            .await
    }

    /// The notice cannot be sent (no phone, refused for good).
    pub async fn notice_failed(&self, batch_id: &str, seq: i64, error: &str) -> StoreResult<()> {
        self.notice_set(batch_id, seq, "failed", 0, error).await
    }

    async fn notice_set(
        &self,
        batch_id: &str,
        seq: i64,
        state: &str,
        next_at: i64,
        error: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "update notices set state = $1, next_at = $2, last_error = $3, lease_owner = null, lease_until = null \
             where batch_id = $4 and seq = $5",
        )
        .bind(state)
        .bind(next_at)
        .bind(error)
        .bind(batch_id)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// After a restart of `owner`: its notices left `sending`, and any other instance's whose lease
    /// ran out, are ambiguous: `unknown` until `grace_until`.
    pub async fn recover_notices(
        &self,
        owner: &str,
        now: i64,
        grace_until: i64,
    ) -> StoreResult<u64> {
        self.notices_to_unknown(Some(owner), now, grace_until, "outcome unknown (restart)")
            .await
    }

    /// Notices left `sending` by an instance whose lease ran out (it died, or lost the store for
    /// longer than its lease): ambiguous, `unknown` until `grace_until`. Run every few seconds by each
    /// sender: the `notices_due` index finds the few `sending` rows.
    pub async fn recover_expired_notices(&self, now: i64, grace_until: i64) -> StoreResult<u64> {
        self.notices_to_unknown(
            None,
            now,
            grace_until,
            "outcome unknown (its sender's lease ran out)",
        )
        .await
    }

    async fn notices_to_unknown(
        &self,
        owner: Option<&str>,
        now: i64,
        grace_until: i64,
        why: &str,
    ) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "update notices set state = 'unknown', next_at = $1, last_error = $2, \
             lease_owner = null, lease_until = null \
             where state = 'sending' and (lease_owner = $3 or lease_until < $4)",
        )
        .bind(grace_until)
        .bind(why)
        // No owner: only expired leases (a node id is never empty).
        .bind(owner.unwrap_or(""))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Extends `owner`'s leases of notices it is still sending (`keys` are `(batch_id, seq)`); those
    /// already recorded (no lease) or taken from it are left alone. Returns how many were extended.
    pub async fn renew_notice_leases(
        &self,
        owner: &str,
        keys: &[(String, i64)],
        until: i64,
    ) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let mut n = 0;
        for (b, s) in keys {
            n += sqlx::query(
                "update notices set lease_until = $1 where batch_id = $2 and seq = $3 and lease_owner = $4",
            )
            .bind(until)
            .bind(b)
            .bind(s)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    /// `unknown` notices whose grace is over, and that no receipt named: sent again.
    pub async fn release_unknown_notices(&self, now: i64) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "update notices set state = 'pending' where state = 'unknown' and next_at <= $1",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// A delivery receipt. Known message id: the part's state, and the notice's once every part has
    /// one. Unknown id: it answers an ambiguous notice to this phone, if exactly one is waiting — that
    /// notice was submitted after all and is not sent again (the phone is found by its keyed hash,
    /// `notices.phone_hash`, as the phone itself is sealed). Returns whether the receipt was used.
    pub async fn notice_receipt(
        &self,
        message_id: &str,
        phone: &str,
        stat: &str,
        done_at: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let known = sqlx::query("select batch_id, seq from notice_parts where message_id = $1")
            .bind(message_id)
            .fetch_optional(&mut *tx)
            .await?;
        let (batch_id, seq): (String, i64) = match known {
            Some(r) => (r.try_get("batch_id")?, r.try_get("seq")?),
            None => {
                let waiting = sqlx::query(
                    "select batch_id, seq from notices where state = 'unknown' and phone_hash = $1 limit 2",
                )
                .bind(self.keys.lookup.phone_hash(phone))
                .fetch_all(&mut *tx)
                .await?;
                if waiting.len() != 1 {
                    return Ok(false);
                }
                let b: String = waiting[0].try_get("batch_id")?;
                let s: i64 = waiting[0].try_get("seq")?;
                sqlx::query(
                    "update notices set state = 'submitted', submitted_at = coalesce(submitted_at, $1), \
                     last_error = 'answered by a delivery receipt after a restart' where batch_id = $2 and seq = $3",
                )
                .bind(done_at)
                .bind(&b)
                .bind(s)
                .execute(&mut *tx)
                .await?;
                let part_no: i64 = sqlx::query(
                    "select count(*) as n from notice_parts where batch_id = $1 and seq = $2",
                )
                .bind(&b)
                .bind(s)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
                sqlx::query(
                    "insert into notice_parts (message_id, batch_id, seq, part_no) values ($1, $2, $3, $4)",
                )
                .bind(message_id)
                .bind(&b)
                .bind(s)
                .bind(part_no + 1)
                .execute(&mut *tx)
                .await?;
                (b, s)
            }
        };
        let res = sqlx::query(
            "update notice_parts set stat = $1, done_at = $2 where message_id = $3 and stat is null",
        )
        .bind(stat)
        .bind(done_at)
        .bind(message_id)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() == 1 {
            let n = sqlx::query(
                "select parts, final_stat from notices where batch_id = $1 and seq = $2",
            )
            .bind(&batch_id)
            .bind(seq)
            .fetch_one(&mut *tx)
            .await?;
            let parts: Option<i64> = n.try_get("parts")?;
            let so_far: Option<String> = n.try_get("final_stat")?;
            let stat_now = so_far.map_or_else(|| stat.to_owned(), |s| worse(&s, stat));
            let got: i64 = sqlx::query(
                "select count(*) as n from notice_parts where batch_id = $1 and seq = $2 and stat is not null",
            )
            .bind(&batch_id)
            .bind(seq)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            let complete = parts.is_some_and(|p| got >= p);
            let state = if !complete {
                None
            } else if stat_now == "DELIVRD" {
                Some("delivered")
            } else {
                Some("failed")
            };
            sqlx::query(
                "update notices set receipts = $1, final_stat = $2, state = coalesce($3, state), \
                 final_at = case when $4 = 1 then $5 else final_at end where batch_id = $6 and seq = $7",
            )
            .bind(got)
            .bind(&stat_now)
            .bind(state)
            .bind(i64::from(complete))
            .bind(done_at)
            .bind(&batch_id)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A batch's notices in `seq` order, after `after_seq`.
    pub async fn batch_notices(
        &self,
        batch_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<NoticeRow>> {
        let rows = sqlx::query(
            "select seq, state, parts, message_ids, submitted_at, receipts, final_stat, final_at, attempts, last_error \
             from notices where batch_id = $1 and seq > $2 order by seq limit $3",
        )
        .bind(batch_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NoticeRow {
                    seq: r.try_get("seq")?,
                    state: r.try_get("state")?,
                    parts: r.try_get("parts")?,
                    message_ids: r.try_get("message_ids")?,
                    submitted_at: r.try_get("submitted_at")?,
                    receipts: r.try_get("receipts")?,
                    final_stat: r.try_get("final_stat")?,
                    final_at: r.try_get("final_at")?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }

    /// Notices by state (a batch's, or all).
    pub async fn notice_counts(&self, batch_id: Option<&str>) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "select state, count(*) as n from notices where ($1 = '' or batch_id = $2) group by state order by state",
        )
        .bind(batch_id.unwrap_or(""))
        .bind(batch_id.unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::worse;

    #[test]
    fn a_notice_is_as_delivered_as_its_worst_part() {
        assert_eq!(worse("DELIVRD", "DELIVRD"), "DELIVRD");
        assert_eq!(worse("DELIVRD", "UNDELIV"), "UNDELIV");
        assert_eq!(worse("EXPIRED", "DELIVRD"), "EXPIRED");
        assert_eq!(worse("REJECTD", "UNDELIV"), "REJECTD");
    }
}
