//! The SLA evaluator: strikes at deadlines and when results arrive, and the once-only sweeps of
//! `W-FAILED-NOT-HANDLED` and `W-START-LATE`. Every evaluation is recorded with a mark in the same
//! transaction, so a restart neither loses nor doubles a strike.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::deadline::working_days_end_ms;
use crate::app::App;
use crate::clock::{SHANGHAI, day_start_ms, from_ms, parse_date, rfc3339};
use crate::domain::ids;
use crate::intake::rules::{Violation, codes};
use crate::intake::warning_event;
use crate::store::{EvaluationPhase, EventRow, NamedLease, NewStrike, QueryDue, StoreError};

/// How often the evaluator looks.
const TICK: Duration = Duration::from_millis(500);
/// Strikes that make a bank unqualified in a year.
pub const STRIKES_UNQUALIFIED: i64 = 3;

/// The year of a deadline, Asia/Shanghai.
pub fn year_of(ms: i64) -> i32 {
    from_ms(ms).to_offset(SHANGHAI).year()
}

fn event(
    now: i64,
    kind: &str,
    batch_id: Option<&str>,
    bank: &str,
    data: serde_json::Value,
) -> EventRow {
    let e = EventRow::new(kind, now, bank, data);
    match batch_id {
        Some(b) => e.batch(b),
        None => e,
    }
}

/// The evaluator's lease when several instances share the store, and how long it is taken for.
const LEASE: &str = "sla-evaluator";
const LEASE_MS: i64 = 60_000;

/// Runs until `stop`. When several instances share the store, one evaluates at a time (a named
/// lease): every evaluation is once-only by itself, but a strike's count in the year, and the rating
/// events at the third one, are only right when evaluations do not run side by side.
pub async fn run(app: Arc<App>, stop: CancellationToken) {
    let mut lease = NamedLease::new(LEASE, &app.node_id, LEASE_MS);
    loop {
        match lease.hold(&app.store, app.clock.now_ms()).await {
            Ok(true) => {
                if let Err(e) = evaluate_once(&app).await {
                    warn!(error = %e, "SLA evaluation failed; will retry");
                }
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "taking the SLA evaluator's lease failed; will retry"),
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
    if let Err(e) = lease.release(&app.store).await {
        warn!(error = %e, "giving the SLA evaluator's lease up failed");
    }
}

/// One pass: deadlines, results, sweeps.
pub async fn evaluate_once(app: &App) -> Result<(), StoreError> {
    let now = app.clock.now_ms();
    for q in app.store.queries_past_due(now).await? {
        payout_missed(app, &q, now).await?;
    }
    for q in app.store.queries_to_judge_accounts().await? {
        judge_accounts(app, &q, now).await?;
    }
    sweep_failed(app, now).await?;
    sweep_start(app, now).await?;
    Ok(())
}

async fn record(
    app: &App,
    q: &QueryDue,
    phase: EvaluationPhase,
    strikes: Vec<NewStrike>,
    now: i64,
) -> Result<(), StoreError> {
    // Events need the count after each insert, known only inside the transaction: compute the events
    // from the count the store reports, looking up the previous year's rating beforehand.
    let mut prev_unqualified = BTreeMap::new();
    for s in &strikes {
        let u = app
            .store
            .unqualified_in(&s.bank_code, &s.department_code, s.year - 1)
            .await?;
        prev_unqualified.insert(s.bank_code.clone(), u);
    }
    let n = app
        .store
        .record_evaluation(&q.query.query_id, phase, &strikes, now, |s, count| {
            let mut ev = vec![event(
                now,
                "strike",
                Some(&s.batch_id),
                &s.bank_code,
                json!({"strike_id": s.strike_id, "query_id": s.query_id, "department_code": s.department_code,
                       "roles": s.roles, "due_at": rfc3339(s.due_at), "fed_back_at": s.fed_back_at.map(rfc3339),
                       "year": s.year, "strikes_in_year": count}),
            )];
            if count == STRIKES_UNQUALIFIED {
                ev.push(event(now, "rating", Some(&s.batch_id), &s.bank_code,
                    json!({"department_code": s.department_code, "year": s.year, "rating": "unqualified", "strikes": count})));
                if prev_unqualified.get(&s.bank_code).copied().unwrap_or(false) {
                    ev.push(event(now, "disqualification.due", Some(&s.batch_id), &s.bank_code,
                        json!({"department_code": s.department_code, "years": [s.year - 1, s.year]})));
                }
            }
            ev
        })
        .await?;
    if n > 0 {
        info!(query = %q.query.query_id, strikes = n, "strikes recorded");
    }
    Ok(())
}

async fn payout_missed(app: &App, q: &QueryDue, now: i64) -> Result<(), StoreError> {
    let parts = app.store.batch_parts(&q.query.batch_id).await?;
    let strike = NewStrike {
        strike_id: ids::new_id("s"),
        bank_code: q.bank_code.clone(),
        department_code: q.department_code.clone(),
        batch_id: q.query.batch_id.clone(),
        query_id: q.query.query_id.clone(),
        roles: vec!["payout"],
        due_at: q.query.due_at,
        fed_back_at: None,
        year: year_of(q.query.due_at),
        evidence: json!({
            "clicked_at": rfc3339(q.query.clicked_at),
            "due_at": rfc3339(q.query.due_at),
            "judged_at": rfc3339(now),
            "final_result": false,
            "parts": parts.iter().map(|p| json!({"bank_ref": p.bank_ref, "state": p.state.api_str(), "polls": p.polls})).collect::<Vec<_>>(),
        }),
    };
    warn!(bank = %q.bank_code, query = %q.query.query_id, "payout bank missed the feedback deadline");
    record(app, q, EvaluationPhase::PayoutDeadline, vec![strike], now).await
}

async fn judge_accounts(app: &App, q: &QueryDue, now: i64) -> Result<(), StoreError> {
    let due = q.query.due_at;
    let mut roles: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    let mut evidence: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let fed_back = q.query.fed_back_at;
    if fed_back.is_some_and(|f| f > due)
        && !app
            .store
            .has_strike(&q.bank_code, &q.query.query_id)
            .await?
    {
        roles.entry(q.bank_code.clone()).or_default().push("payout");
        evidence.insert(
            q.bank_code.clone(),
            json!({"final_result_at": fed_back.map(rfc3339)}),
        );
    }
    let feedback = app.store.account_feedback(&q.query.batch_id, due).await?;
    for f in &feedback {
        if f.on_time < f.items {
            roles
                .entry(f.bank_code.clone())
                .or_default()
                .push("account");
            let e = evidence
                .entry(f.bank_code.clone())
                .or_insert_with(|| json!({}));
            e["account"] = json!({"items": f.items, "confirmed_by_deadline": f.on_time, "unconfirmed": f.unconfirmed,
                                  "last_confirmed_at": f.last_confirmed_at.map(rfc3339)});
        }
    }
    let mut strikes = Vec::new();
    for (bank, r) in roles {
        if app.store.has_strike(&bank, &q.query.query_id).await? {
            continue; // at most one strike per bank per query
        }
        let mut ev = evidence.remove(&bank).unwrap_or_else(|| json!({}));
        ev["clicked_at"] = json!(rfc3339(q.query.clicked_at));
        ev["due_at"] = json!(rfc3339(due));
        let fed = if r.contains(&"account") {
            feedback
                .iter()
                .find(|f| f.bank_code == bank)
                .and_then(|f| f.last_confirmed_at)
        } else {
            fed_back
        };
        strikes.push(NewStrike {
            strike_id: ids::new_id("s"),
            bank_code: bank,
            department_code: q.department_code.clone(),
            batch_id: q.query.batch_id.clone(),
            query_id: q.query.query_id.clone(),
            roles: r,
            due_at: due,
            fed_back_at: fed,
            year: year_of(due),
            evidence: ev,
        });
    }
    record(app, q, EvaluationPhase::Accounts, strikes, now).await
}

async fn sweep_failed(app: &App, now: i64) -> Result<(), StoreError> {
    // Two working days are at least two calendar days: older failures only.
    for (batch_id, seq, bank, failed_at) in app.store.failed_unwarned(now - 2 * 86_400_000).await? {
        let deadline = working_days_end_ms(failed_at, 2, &app.calendar);
        if now < deadline {
            continue;
        }
        let w = Violation::item(
            codes::W_FAILED_NOT_HANDLED,
            seq,
            format!(
                "failed at {}, neither corrected nor returned by {}",
                rfc3339(failed_at),
                rfc3339(deadline)
            ),
        );
        let ev = warning_event(now, &batch_id, Some(seq), &bank, &w);
        app.store.mark_failed_warned(&batch_id, seq, &ev).await?;
    }
    Ok(())
}

async fn sweep_start(app: &App, now: i64) -> Result<(), StoreError> {
    for (batch_id, bank, funds_day, first_accepted, warned) in app.store.start_unchecked().await? {
        let Some(day) = parse_date(&funds_day) else {
            continue;
        };
        let Some(end) = day.next_day().map(day_start_ms) else {
            continue;
        };
        let started_in_time = first_accepted.is_some_and(|a| a < end);
        if warned || started_in_time {
            app.store.mark_start_checked(&batch_id, None).await?;
            continue;
        }
        if now < end {
            continue; // the day is not over yet
        }
        let w = Violation {
            code: codes::W_START_LATE,
            message: format!(
                "funds arrived on {funds_day}; sending had not started by the end of that day"
            ),
        };
        let ev = warning_event(now, &batch_id, None, &bank, &w);
        app.store.mark_start_checked(&batch_id, Some(&ev)).await?;
    }
    Ok(())
}
