//! The SLA's rows: strikes, past ratings, the once-only marks of evaluations and sweeps, and the
//! figures assessments are computed from.
use sqlx::Row;

use super::audit::{NewAudit, append_audit};
use super::misc::insert_events;
use super::rows::*;
use super::{Store, StoreResult};

/// A strike about to be recorded.
#[derive(Debug, Clone)]
pub struct NewStrike {
    /// Id.
    pub strike_id: String,
    /// Bank struck.
    pub bank_code: String,
    /// The agreement's department.
    pub department_code: String,
    /// Batch.
    pub batch_id: String,
    /// Query.
    pub query_id: String,
    /// Roles missed.
    pub roles: Vec<&'static str>,
    /// Deadline.
    pub due_at: i64,
    /// When the feedback came, if it did.
    pub fed_back_at: Option<i64>,
    /// Year of the deadline.
    pub year: i32,
    /// Evidence (JSON).
    pub evidence: serde_json::Value,
}

/// A recorded strike.
#[derive(Debug, Clone)]
pub struct StrikeRow {
    /// Id.
    pub strike_id: String,
    /// Bank.
    pub bank_code: String,
    /// Department.
    pub department_code: String,
    /// Batch.
    pub batch_id: String,
    /// Query.
    pub query_id: String,
    /// Roles (JSON array text).
    pub roles: String,
    /// Deadline.
    pub due_at: i64,
    /// Feedback time.
    pub fed_back_at: Option<i64>,
    /// Recorded.
    pub recorded_at: i64,
    /// Evidence (JSON text).
    pub evidence: String,
}

/// A query whose evaluation is due, with its batch's agreement.
#[derive(Debug, Clone)]
pub struct QueryDue {
    /// The query.
    pub query: QueryRow,
    /// Payout bank.
    pub bank_code: String,
    /// Department.
    pub department_code: String,
}

/// Account-bank confirmations of a batch.
#[derive(Debug, Clone)]
pub struct AccountFeedback {
    /// Account bank as reported.
    pub bank_code: String,
    /// Items at that bank.
    pub items: i64,
    /// Confirmed by the deadline.
    pub on_time: i64,
    /// Without a confirmation time.
    pub unconfirmed: i64,
    /// Latest confirmation.
    pub last_confirmed_at: Option<i64>,
}

/// One bank x department x year figure set.
#[derive(Debug, Clone, Default)]
pub struct AgreementFigures {
    /// Queries whose deadline fell in the year.
    pub queries: i64,
    /// Of which struck.
    pub struck_queries: i64,
    /// Strikes.
    pub strikes: i64,
}

fn query_due(r: &sqlx::any::AnyRow) -> StoreResult<QueryDue> {
    Ok(QueryDue {
        query: QueryRow {
            query_id: r.try_get("query_id")?,
            batch_id: r.try_get("batch_id")?,
            clicked_at: r.try_get("clicked_at")?,
            due_at: r.try_get("due_at")?,
            status: r.try_get("status")?,
            fed_back_at: r.try_get("fed_back_at")?,
            late: r.try_get::<i64, _>("late")? != 0,
        },
        bank_code: r.try_get("payout_bank")?,
        department_code: r.try_get("department_code")?,
    })
}

const QUERY_DUE_COLS: &str = "q.query_id, q.batch_id, q.clicked_at, q.due_at, q.status, q.fed_back_at, q.late, \
     b.payout_bank, b.department_code";

impl Store {
    /// Running queries past their deadline whose payout bank has not been judged yet.
    pub async fn queries_past_due(&self, now: i64) -> StoreResult<Vec<QueryDue>> {
        let sql = format!(
            "select {QUERY_DUE_COLS} from queries q join batches b on b.batch_id = q.batch_id \
             where q.status = 'running' and q.due_at < $1 and q.payout_checked = 0 order by q.due_at limit 500"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(query_due).collect()
    }

    /// Final queries whose account banks have not been judged yet.
    pub async fn queries_to_judge_accounts(&self) -> StoreResult<Vec<QueryDue>> {
        let sql = format!(
            "select {QUERY_DUE_COLS} from queries q join batches b on b.batch_id = q.batch_id \
             where q.status = 'final' and q.accounts_checked = 0 order by q.due_at limit 500"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(query_due).collect()
    }

    /// Confirmation times of a batch's final items, per account bank.
    pub async fn account_feedback(
        &self,
        batch_id: &str,
        due_at: i64,
    ) -> StoreResult<Vec<AccountFeedback>> {
        let rows = sqlx::query(
            "select coalesce(result_bank_code, account_bank_code) as bank, count(*) as n, \
             cast(sum(case when confirmed_at is not null and confirmed_at <= $2 then 1 else 0 end) as bigint) as on_time, \
             cast(sum(case when confirmed_at is null then 1 else 0 end) as bigint) as unconfirmed, max(confirmed_at) as last_at \
             from items where batch_id = $1 and status in ('succeeded', 'failed', 'review', 'corrected', 'returned') \
             group by coalesce(result_bank_code, account_bank_code) order by 1",
        )
        .bind(batch_id)
        .bind(due_at)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AccountFeedback {
                    bank_code: r.try_get("bank")?,
                    items: r.try_get("n")?,
                    on_time: r.try_get("on_time")?,
                    unconfirmed: r.try_get("unconfirmed")?,
                    last_confirmed_at: r.try_get("last_at")?,
                })
            })
            .collect()
    }

    /// Records the outcome of one evaluation of a query: its strikes (at most one per bank per query;
    /// repeats are ignored), the mark that it was done, and the events, in one transaction. `events_for`
    /// is called for each strike actually recorded with the bank's strike count in that year (after it).
    pub async fn record_evaluation(
        &self,
        query_id: &str,
        phase: EvaluationPhase,
        strikes: &[NewStrike],
        now: i64,
        mut events_for: impl FnMut(&NewStrike, i64) -> Vec<EventRow>,
    ) -> StoreResult<usize> {
        let mut tx = self.begin_write().await?;
        let mut recorded = 0;
        let mut events = Vec::new();
        for s in strikes {
            let res = sqlx::query(
                "insert into strikes (strike_id, bank_code, department_code, batch_id, query_id, roles, due_at, \
                 fed_back_at, year, recorded_at, evidence) values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) \
                 on conflict do nothing",
            )
            .bind(&s.strike_id)
            .bind(&s.bank_code)
            .bind(&s.department_code)
            .bind(&s.batch_id)
            .bind(&s.query_id)
            .bind(serde_json::to_string(&s.roles).unwrap_or_default())
            .bind(s.due_at)
            .bind(s.fed_back_at)
            .bind(i64::from(s.year))
            .bind(now)
            .bind(s.evidence.to_string())
            .execute(&mut *tx)
            .await?;
            if res.rows_affected() == 1 {
                recorded += 1;
                let n: i64 = sqlx::query(
                    "select count(*) as n from strikes where bank_code = $1 and department_code = $2 and year = $3 \
                     and supersedes is null and strike_id not in (select supersedes from strikes where supersedes is not null)",
                )
                .bind(&s.bank_code)
                .bind(&s.department_code)
                .bind(i64::from(s.year))
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
                events.extend(events_for(s, n));
            }
        }
        let mark = match phase {
            EvaluationPhase::PayoutDeadline => {
                "update queries set payout_checked = 1, late = 1 where query_id = $1"
            }
            EvaluationPhase::Accounts => {
                "update queries set accounts_checked = 1, payout_checked = 1 where query_id = $1"
            }
        };
        sqlx::query(mark).bind(query_id).execute(&mut *tx).await?;
        insert_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// Whether the bank already has a strike for the query.
    pub async fn has_strike(&self, bank: &str, query_id: &str) -> StoreResult<bool> {
        let r = sqlx::query("select 1 as x from strikes where bank_code = $1 and query_id = $2")
            .bind(bank)
            .bind(query_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(r.is_some())
    }

    /// Strikes of a bank in a year (all departments), oldest first.
    pub async fn strikes_of(&self, bank: &str, year: i32) -> StoreResult<Vec<StrikeRow>> {
        let rows = sqlx::query(
            "select strike_id, bank_code, department_code, batch_id, query_id, roles, due_at, fed_back_at, \
             recorded_at, evidence from strikes where bank_code = $1 and year = $2 and supersedes is null and strike_id not in (select supersedes from strikes where supersedes is not null) \
             order by due_at, strike_id",
        )
        .bind(bank)
        .bind(i64::from(year))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StrikeRow {
                    strike_id: r.try_get("strike_id")?,
                    bank_code: r.try_get("bank_code")?,
                    department_code: r.try_get("department_code")?,
                    batch_id: r.try_get("batch_id")?,
                    query_id: r.try_get("query_id")?,
                    roles: r.try_get("roles")?,
                    due_at: r.try_get("due_at")?,
                    fed_back_at: r.try_get("fed_back_at")?,
                    recorded_at: r.try_get("recorded_at")?,
                    evidence: r.try_get("evidence")?,
                })
            })
            .collect()
    }

    /// Figures per (bank, department) for queries whose deadline is in `[from, to)` and strikes of `year`.
    pub async fn agreement_figures(
        &self,
        year: i32,
        from: i64,
        to: i64,
    ) -> StoreResult<std::collections::BTreeMap<(String, String), AgreementFigures>> {
        let mut out: std::collections::BTreeMap<(String, String), AgreementFigures> =
            Default::default();
        let rows = sqlx::query(
            "select b.payout_bank as bank, b.department_code as dept, count(*) as n, \
             cast(sum(case when exists (select 1 from strikes s where s.query_id = q.query_id and s.bank_code = b.payout_bank \
             and s.supersedes is null and s.strike_id not in (select supersedes from strikes where supersedes is not null)) \
             then 1 else 0 end) as bigint) as struck \
             from queries q join batches b on b.batch_id = q.batch_id where q.due_at >= $1 and q.due_at < $2 \
             group by b.payout_bank, b.department_code",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        for r in rows {
            let f = out
                .entry((r.try_get("bank")?, r.try_get("dept")?))
                .or_default();
            f.queries = r.try_get("n")?;
            f.struck_queries = r.try_get("struck")?;
        }
        let rows = sqlx::query(
            "select bank_code, department_code, count(*) as n from strikes where year = $1 and supersedes is null and strike_id not in (select supersedes from strikes where supersedes is not null) \
             group by bank_code, department_code",
        )
        .bind(i64::from(year))
        .fetch_all(self.pool())
        .await?;
        for r in rows {
            let f = out
                .entry((r.try_get("bank_code")?, r.try_get("department_code")?))
                .or_default();
            f.strikes = r.try_get("n")?;
        }
        Ok(out)
    }

    /// Recorded ratings of a year: (bank, department) -> rating.
    pub async fn past_ratings(
        &self,
        year: i32,
    ) -> StoreResult<std::collections::BTreeMap<(String, String), String>> {
        let rows = sqlx::query(
            "select bank_code, department_code, rating from past_ratings where year = $1",
        )
        .bind(i64::from(year))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    (r.try_get("bank_code")?, r.try_get("department_code")?),
                    r.try_get("rating")?,
                ))
            })
            .collect()
    }

    /// Records (or replaces) an admin's rating of a past year, with its events and audit record in
    /// one transaction.
    // The arguments are the fields of one state change, written in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_past_rating(
        &self,
        bank: &str,
        department: &str,
        year: i32,
        rating: &str,
        reason: &str,
        by: &str,
        now: i64,
        events: &[EventRow],
        audit: &NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "insert into past_ratings (bank_code, department_code, year, rating, reason, recorded_by, recorded_at) \
             values ($1,$2,$3,$4,$5,$6,$7) on conflict (bank_code, department_code, year) do update set \
             rating = excluded.rating, reason = excluded.reason, recorded_by = excluded.recorded_by, \
             recorded_at = excluded.recorded_at",
        )
        .bind(bank)
        .bind(department)
        .bind(i64::from(year))
        .bind(rating)
        .bind(reason)
        .bind(by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_events(&mut tx, events).await?;
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Confirms a disqualification, with its events and audit record in one transaction; false when
    /// it was confirmed before (nothing written).
    // The arguments are the fields of one state change, written in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn disqualify(
        &self,
        bank: &str,
        department: &str,
        reason: &str,
        by: &str,
        now: i64,
        events: &[EventRow],
        audit: &NewAudit,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let res = sqlx::query(
            "insert into disqualifications (bank_code, department_code, reason, confirmed_by, confirmed_at) \
             values ($1,$2,$3,$4,$5) on conflict do nothing",
        )
        .bind(bank)
        .bind(department)
        .bind(reason)
        .bind(by)
        .bind(now)
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

    /// Every confirmed disqualification.
    pub async fn disqualifications(
        &self,
    ) -> StoreResult<std::collections::BTreeSet<(String, String)>> {
        let rows = sqlx::query("select bank_code, department_code from disqualifications")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("bank_code")?, r.try_get("department_code")?)))
            .collect()
    }
}

impl Store {
    /// Whether `bank` was unqualified for `department` in `year`: 3 strikes, or a recorded rating.
    pub async fn unqualified_in(
        &self,
        bank: &str,
        department: &str,
        year: i32,
    ) -> StoreResult<bool> {
        let n: i64 = sqlx::query(
            "select count(*) as n from strikes where bank_code = $1 and department_code = $2 and year = $3              and supersedes is null and strike_id not in (select supersedes from strikes where supersedes is not null)",
        )
        .bind(bank)
        .bind(department)
        .bind(i64::from(year))
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        if n >= 3 {
            return Ok(true);
        }
        let r = sqlx::query(
            "select rating from past_ratings where bank_code = $1 and department_code = $2 and year = $3",
        )
        .bind(bank)
        .bind(department)
        .bind(i64::from(year))
        .fetch_optional(self.pool())
        .await?;
        Ok(match r {
            Some(r) => r.try_get::<String, _>("rating")? == "unqualified",
            None => false,
        })
    }

    /// Failed items not yet warned about, that failed before `before` (candidates for
    /// `W-FAILED-NOT-HANDLED`): (batch, seq, bank, final_at).
    pub async fn failed_unwarned(
        &self,
        before: i64,
    ) -> StoreResult<Vec<(String, i64, String, i64)>> {
        let rows = sqlx::query(
            "select i.batch_id, i.seq, b.payout_bank, i.final_at from items i join batches b on b.batch_id = i.batch_id              where i.status = 'failed' and i.overdue_warned = 0 and i.final_at < $1 order by i.final_at limit 2000",
        )
        .bind(before)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("batch_id")?,
                    r.try_get("seq")?,
                    r.try_get("payout_bank")?,
                    r.try_get("final_at")?,
                ))
            })
            .collect()
    }

    /// Marks a failed item as warned, with the warning event.
    pub async fn mark_failed_warned(
        &self,
        batch_id: &str,
        seq: i64,
        event: &EventRow,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let res = sqlx::query(
            "update items set overdue_warned = 1 where batch_id = $1 and seq = $2 and status = 'failed'              and overdue_warned = 0",
        )
        .bind(batch_id)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() == 1 {
            insert_events(&mut tx, std::slice::from_ref(event)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Batches whose funds day may have ended without a start check: (batch, bank, funds day,
    /// first acceptance by the bank, already warned at intake).
    pub async fn start_unchecked(
        &self,
    ) -> StoreResult<Vec<(String, String, String, Option<i64>, bool)>> {
        let rows = sqlx::query(
            "select b.batch_id, b.payout_bank, b.funds_arrived_on, b.start_late,              (select min(p.accepted_at) from parts p where p.batch_id = b.batch_id) as first_accepted              from batches b where b.start_checked = 0 order by b.created_at limit 500",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("batch_id")?,
                    r.try_get("payout_bank")?,
                    r.try_get("funds_arrived_on")?,
                    r.try_get("first_accepted")?,
                    r.try_get::<i64, _>("start_late")? != 0,
                ))
            })
            .collect()
    }

    /// Marks a batch's start as checked, with a warning event when it started late.
    pub async fn mark_start_checked(
        &self,
        batch_id: &str,
        late: Option<&EventRow>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let res = sqlx::query(
            "update batches set start_checked = 1, start_late = start_late + $2 where batch_id = $1 and start_checked = 0",
        )
        .bind(batch_id)
        .bind(i64::from(late.is_some()))
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() == 1
            && let Some(e) = late
        {
            insert_events(&mut tx, std::slice::from_ref(e)).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A batch not yet final, for the dashboard.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// Batch.
    pub batch_id: String,
    /// Platform id.
    pub batch_no: String,
    /// Payout bank.
    pub bank_code: String,
    /// Department.
    pub department_code: String,
    /// Accepted items.
    pub items: i64,
    /// Items with a final result.
    pub done: i64,
    /// The query's deadline, if clicked.
    pub due_at: Option<i64>,
}

impl Store {
    /// Batches not yet final, oldest first.
    pub async fn in_flight(&self, limit: i64) -> StoreResult<Vec<InFlight>> {
        let rows = sqlx::query(
            "select b.batch_id, b.batch_no, b.payout_bank, b.department_code, b.accepted_count, q.due_at, \
             (select count(*) from items i where i.batch_id = b.batch_id and i.status in \
               ('succeeded', 'failed', 'review', 'corrected', 'returned')) as done \
             from batches b left join queries q on q.batch_id = b.batch_id where b.final_at is null \
             order by b.created_at limit $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InFlight {
                    batch_id: r.try_get("batch_id")?,
                    batch_no: r.try_get("batch_no")?,
                    bank_code: r.try_get("payout_bank")?,
                    department_code: r.try_get("department_code")?,
                    items: r.try_get("accepted_count")?,
                    done: r.try_get("done")?,
                    due_at: r.try_get("due_at")?,
                })
            })
            .collect()
    }

    /// Failed items awaiting correction or return, per batch: (batch_no, bank, count, oldest failure).
    pub async fn failed_awaiting(&self) -> StoreResult<Vec<(String, String, i64, i64)>> {
        let rows = sqlx::query(
            "select b.batch_no, b.payout_bank, count(*) as n, min(i.final_at) as oldest from items i \
             join batches b on b.batch_id = i.batch_id where i.status = 'failed' \
             group by b.batch_no, b.payout_bank order by oldest limit 200",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("batch_no")?,
                    r.try_get("payout_bank")?,
                    r.try_get("n")?,
                    r.try_get::<Option<i64>, _>("oldest")?.unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Credited amounts grouped by payout bank (`by_subsidy = false`) or subsidy name.
    pub async fn payouts(&self, by_subsidy: bool) -> StoreResult<Vec<(String, i64, i64)>> {
        let sql = if by_subsidy {
            "select b.subsidy_name as k, count(*) as n, cast(coalesce(sum(i.amount_fen), 0) as bigint) as amount from items i \
             join batches b on b.batch_id = i.batch_id where i.status = 'succeeded' group by b.subsidy_name order by 3 desc"
        } else {
            "select b.payout_bank as k, count(*) as n, cast(coalesce(sum(i.amount_fen), 0) as bigint) as amount from items i \
             join batches b on b.batch_id = i.batch_id where i.status = 'succeeded' group by b.payout_bank order by 3 desc"
        };
        let rows = sqlx::query(sql).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("k")?, r.try_get("n")?, r.try_get("amount")?)))
            .collect()
    }
}

impl Store {
    /// Voids a strike with a correction record that supersedes it and says why (strikes are never
    /// updated or deleted), with its events and audit record in one transaction. `Ok(None)`: no such
    /// strike of that bank; `Ok(Some(false))`: voided before (nothing written either way).
    // The arguments are the fields of one state change, written in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn void_strike(
        &self,
        bank: &str,
        strike_id: &str,
        new_id: &str,
        reason: &str,
        now: i64,
        events: &[EventRow],
        audit: &NewAudit,
    ) -> StoreResult<Option<bool>> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("select 1 as x from strikes where strike_id = $1 and bank_code = $2 and supersedes is null")
            .bind(strike_id)
            .bind(bank)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            tx.rollback().await?;
            return Ok(None);
        }
        let voided = sqlx::query("select 1 as x from strikes where supersedes = $1")
            .bind(strike_id)
            .fetch_optional(&mut *tx)
            .await?;
        if voided.is_some() {
            tx.rollback().await?;
            return Ok(Some(false));
        }
        sqlx::query(
            "insert into strikes (strike_id, bank_code, department_code, batch_id, query_id, roles, due_at, fed_back_at, \
             year, recorded_at, evidence, supersedes, reason) select $1, bank_code, department_code, batch_id, query_id, \
             roles, due_at, fed_back_at, year, $2, '{\"void\":true}', strike_id, $3 from strikes where strike_id = $4",
        )
        .bind(new_id)
        .bind(now)
        .bind(reason)
        .bind(strike_id)
        .execute(&mut *tx)
        .await?;
        insert_events(&mut tx, events).await?;
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Some(true))
    }
}

/// Which evaluation of a query is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvaluationPhase {
    /// The deadline passed without the payout bank's final result.
    PayoutDeadline,
    /// The result is in: account banks (and a late payout bank) judged.
    Accounts,
}
