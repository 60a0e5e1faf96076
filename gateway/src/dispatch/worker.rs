//! One loop per bank: claim due work with leases, run it with at most the bank's connection count in
//! flight, record the outcome. Sends that may have reached the bank without a readable answer become
//! `unknown` and are resolved by a query before anything is sent again.
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use bank_profiles::{QueryOutcome, SubmitOutcome};
use codecs::format::fixed_width::messages::{Query, SubmitHeader};
use serde_json::json;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::fixed_width::{DetailSource, FixedWidthLink, LinkError};
use super::{BankEntry, BankLink};
use crate::app::App;
use crate::domain::{PartState, ids};
use crate::ops::metrics;
use crate::results;
use crate::store::{Claim, EventRow, PartRow, StoreError};

/// How often a worker looks for due work when nothing wakes it.
const TICK: Duration = Duration::from_millis(250);
/// A poll is made this long before a running query's deadline, whatever the interval.
const LAST_POLL_BEFORE_DEADLINE: i64 = 120_000;

pub(super) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Runs the bank's worker until `stop`.
pub async fn run(app: Arc<App>, bank: Arc<BankEntry>, stop: CancellationToken) {
    let slots = bank.max_connections() as usize;
    let lease = lease_ms(&bank);
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut last_echo = Instant::now();
    info!(bank = %bank.code, slots, "bank worker started");
    loop {
        while tasks.try_join_next().is_some() {}
        let free = slots.saturating_sub(tasks.len());
        if free > 0 {
            let now = app.clock.now_ms();
            // Polls are claimed before sends, but no more of them than may apply a whole part's
            // results at once (`App::result_polls`): the results of accepted parts are taken in while
            // the other parts are still being sent, and sends keep the remaining slots.
            for claim in [Claim::Resolve, Claim::Poll, Claim::Send] {
                let mut free = slots.saturating_sub(tasks.len());
                if free == 0 {
                    break;
                }
                if claim == Claim::Poll && !matches!(bank.link, BankLink::Iso8583(_)) {
                    free = free.min(app.result_polls.available_permits());
                    if free == 0 {
                        continue;
                    }
                }
                let claimed = app
                    .store
                    .claim_parts(
                        claim,
                        &bank.code,
                        now,
                        &app.node_id,
                        now + lease,
                        free as i64,
                    )
                    .await;
                match claimed {
                    Ok(parts) => {
                        for part in parts {
                            let (app, bank) = (app.clone(), bank.clone());
                            tasks.spawn(async move {
                                let part_id = part.part_id.clone();
                                let work = handle(&app, &bank, claim, part);
                                match under_lease(&app, &bank, &part_id, now + lease, work).await {
                                    Some(Ok(())) => {}
                                    Some(Err(e)) => {
                                        warn!(bank = %bank.code, error = %e, "store error in bank worker")
                                    }
                                    None => {
                                        warn!(bank = %bank.code, part = %part_id, "the part's lease could not be renewed: work on it stopped before the lease runs out (another instance takes it over)")
                                    }
                                }
                            });
                        }
                    }
                    Err(e) => warn!(bank = %bank.code, error = %e, "claiming work failed"),
                }
            }
        }
        if let BankLink::FixedWidth(link) = &bank.link
            && last_echo.elapsed() >= link.echo_interval() / 2
        {
            last_echo = Instant::now();
            link.keep_alive().await;
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = app.work.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // Work in flight keeps its lease; a restart resolves it.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    info!(bank = %bank.code, "bank worker stopped");
}

async fn handle(
    app: &App,
    bank: &BankEntry,
    claim: Claim,
    part: PartRow,
) -> Result<(), StoreError> {
    // A whole part's results in memory at a time (App::result_polls); the lease is renewed meanwhile.
    let _permit = match (&bank.link, claim) {
        (BankLink::FixedWidth(_) | BankLink::Iso20022(_), Claim::Poll) => {
            app.result_polls.acquire().await.ok()
        }
        _ => None,
    };
    match &bank.link {
        BankLink::FixedWidth(link) => match claim {
            Claim::Send => send(app, bank, link, part).await,
            Claim::Resolve => ask(app, bank, link, part, true).await,
            Claim::Poll => ask(app, bank, link, part, false).await,
        },
        BankLink::Iso20022(link) => match claim {
            Claim::Send => super::iso20022::send(app, bank, link, part).await,
            Claim::Resolve => super::iso20022::ask(app, bank, link, part, true).await,
            Claim::Poll => super::iso20022::ask(app, bank, link, part, false).await,
        },
        BankLink::Iso8583(link) => match claim {
            Claim::Send | Claim::Resolve => super::iso8583::send(app, bank, link, part).await,
            Claim::Poll => super::iso8583::poll(app, bank, link, part).await,
        },
    }
}

/// A lease covers one request to the bank (`banks."<code>".request_timeout`, else the profile's)
/// plus this margin: a store that answers a renewal late, or not for a while, does not cut a request
/// short.
const LEASE_MARGIN: Duration = Duration::from_secs(15);
/// Work under a lease stops this long before the last lease written runs out, should it not be
/// renewed: another instance may take the part over only once the lease has run out by its own clock.
const LEASE_GUARD: Duration = Duration::from_secs(5);

/// How long a claim is held before another worker may take it over: one request plus a margin,
/// renewed while the work goes on ([`under_lease`]), so a dead instance's parts are taken over soon.
pub(super) fn lease_ms(bank: &BankEntry) -> i64 {
    ms(bank.request_timeout() + LEASE_MARGIN)
}

/// How often a lease is renewed while its part is worked on: three times per lease, at least every
/// 30 s.
fn renew_every(lease_ms: i64) -> Duration {
    Duration::from_millis(
        u64::try_from(lease_ms / 3)
            .unwrap_or(1_000)
            .clamp(1_000, 30_000),
    )
}

/// Runs `work` on a claimed part while renewing its lease (held until `until`). The work never goes on
/// past the last lease written (less [`LEASE_GUARD`]): when the store cannot renew it in time, the work
/// is dropped and `None` returned. A send cut short is then an unknown outcome, asked about before
/// anything is sent again, like a send of a dead instance; so two instances never work on one part at
/// once. A lease that is no longer this instance's (the work itself finished the part) is not renewed.
async fn under_lease<F>(
    app: &App,
    bank: &BankEntry,
    part_id: &str,
    until: i64,
    work: F,
) -> Option<Result<(), StoreError>>
where
    F: std::future::Future<Output = Result<(), StoreError>>,
{
    let lease = lease_ms(bank);
    let keep = async {
        let mut until = until;
        let mut ours = true;
        loop {
            let stop_at = until - ms(LEASE_GUARD);
            let now = app.clock.now_ms();
            if now >= stop_at {
                return;
            }
            let left = Duration::from_millis(u64::try_from(stop_at - now).unwrap_or(0));
            tokio::time::sleep(if ours {
                renew_every(lease).min(left)
            } else {
                left
            })
            .await;
            if !ours {
                continue;
            }
            let asked = app.clock.now_ms();
            if asked >= stop_at {
                return;
            }
            let left = Duration::from_millis(u64::try_from(stop_at - asked).unwrap_or(0));
            match tokio::time::timeout(
                left,
                app.store.renew_lease(part_id, &app.node_id, asked + lease),
            )
            .await
            {
                Ok(Ok(true)) => until = asked + lease,
                // Finished by the work itself (a lease is cleared with the outcome), or taken over:
                // nothing to renew; the work is not let run past the lease it had.
                Ok(Ok(false)) => ours = false,
                Ok(Err(e)) => {
                    warn!(bank = %bank.code, part = %part_id, error = %e, "renewing a part's lease failed")
                }
                Err(_) => {}
            }
        }
    };
    tokio::select! {
        r = work => Some(r),
        () = keep => None,
    }
}

/// Renews the lease of a part being worked on; `false` when another worker has it now.
pub(super) async fn keep_lease(
    app: &App,
    bank: &BankEntry,
    part: &PartRow,
) -> Result<bool, StoreError> {
    app.store
        .renew_lease(
            &part.part_id,
            &app.node_id,
            app.clock.now_ms() + lease_ms(bank),
        )
        .await
}

pub(super) fn backoff(bank: &BankEntry) -> impl Iterator<Item = Duration> {
    let t = &bank.profile.timers;
    ExponentialBuilder::default()
        .with_min_delay(t.retry_min.0)
        .with_max_delay(t.retry_max.0)
        .with_max_times(t.retry_times as usize)
        .with_jitter()
        .build()
}

pub(super) fn event(
    app: &App,
    kind: &str,
    part: &PartRow,
    bank: &str,
    data: serde_json::Value,
) -> EventRow {
    EventRow::new(kind, app.clock.now_ms(), bank, data).batch(&part.batch_id)
}

pub(super) async fn review(
    app: &App,
    bank: &BankEntry,
    part: &PartRow,
    reason: &'static str,
    detail: String,
) -> Result<(), StoreError> {
    warn!(bank = %bank.code, part = %part.part_id, reason, detail = %detail, "part needs review");
    metrics::part_review(&bank.code, reason);
    // The platform's event types are a closed list: a part that needs an operator is a `warning`
    // (`W-RESULT-REVIEW`: the bank's answer needs an operator), its data says which part and why.
    let ev = event(
        app,
        "warning",
        part,
        &bank.code,
        json!({"part_review": true, "bank_ref": part.bank_ref, "reason": reason, "detail": detail,
               "message": format!("bank batch {} needs an operator: {reason}", part.bank_ref)}),
    )
    .code(crate::intake::rules::codes::W_RESULT_REVIEW);
    app.store.part_review(&part.part_id, &detail, &[ev]).await
}

async fn send(
    app: &App,
    bank: &BankEntry,
    link: &FixedWidthLink,
    part: PartRow,
) -> Result<(), StoreError> {
    let Some(batch) = app.store.get_batch(&part.batch_id).await? else {
        return review(
            app,
            bank,
            &part,
            "missing-batch",
            "the part's batch is gone".into(),
        )
        .await;
    };
    let family = link.family();
    let now = app.clock.now_shanghai();
    let header = SubmitHeader {
        batch_no: part.bank_ref.clone(),
        payer_account: batch.payer_account_no.clone(),
        payer_name: batch.payer_account_name.clone(),
        subsidy_code: batch.subsidy_code.clone(),
        item_count: u64::try_from(part.item_count).unwrap_or(0),
        total_amount: u64::try_from(part.amount_fen).unwrap_or(0),
        submit_date: format!(
            "{:04}{:02}{:02}",
            now.year(),
            u8::from(now.month()),
            now.day()
        ),
        submit_time: format!("{:02}{:02}{:02}", now.hour(), now.minute(), now.second()),
        region_code: batch.region_code.clone(),
    };
    // The records are encoded page by page from the store: memory holds the wire bytes, not the rows.
    let encode_started = Instant::now();
    let encoded: Result<Vec<u8>, LinkError> = async {
        let mut wire = link.begin_submit(&header)?;
        let mut after = 0;
        loop {
            let page = app
                .store
                .part_outgoing_page(&part.part_id, after, 5_000)
                .await
                .map_err(|e| LinkError::Mismatch(e.to_string()))?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for i in &page {
                let d = family.detail(&DetailSource {
                    seq: i.seq,
                    recipient_kind: i.recipient_kind,
                    name: i.name.expose(),
                    id_no: i.id_no.expose(),
                    account_no: i.account_no.expose(),
                    account_kind: i.account_kind,
                    account_bank_code: &i.account_bank_code,
                    amount_fen: i.amount_fen,
                    phone: i.phone.expose(),
                    memo: &i.memo,
                });
                link.push_detail(&mut wire, &d)?;
            }
        }
        link.finish_submit(&header, &mut wire)?;
        Ok(wire)
    }
    .await;
    let wire = match encoded {
        Ok(w) => w,
        Err(e) => return review(app, bank, &part, "encode", e.to_string()).await,
    };
    let encode_ms = ms(encode_started.elapsed());
    let mut delays = backoff(bank);
    loop {
        let started = Instant::now();
        let result = link.submit_wire(&header, &wire).await;
        let outcome = match &result {
            Ok(r) => bank.profile.codes.submit.get(&r.ret_code).copied(),
            Err(_) => None,
        };
        metrics::bank_request(
            &bank.code,
            "submit",
            &match &result {
                Ok(r) => r.ret_code.clone(),
                Err(_) => "error".into(),
            },
            started.elapsed(),
        );
        match (result, outcome) {
            (Ok(reply), Some(SubmitOutcome::Accepted | SubmitOutcome::Duplicate)) => {
                let now = app.clock.now_ms();
                let next_poll = now + ms(bank.poll_interval());
                let bank_ms = ms(started.elapsed());
                let mut events = vec![event(
                    app,
                    "batch.sent",
                    &part,
                    &bank.code,
                    json!({"bank_ref": part.bank_ref}),
                )];
                let id = (!reply.bank_batch_id.is_empty()).then_some(reply.bank_batch_id.as_str());
                let stored = Instant::now();
                app.store
                    .part_accepted(&part, id, now, next_poll, &mut events)
                    .await?;
                let store_ms = ms(stored.elapsed());
                info!(bank = %bank.code, part = %part.part_id, ret = %reply.ret_code, items = part.item_count, encode_ms, bank_ms, store_ms, "part accepted");
                return Ok(());
            }
            (Ok(_), Some(SubmitOutcome::Busy)) => match delays.next() {
                Some(d) => tokio::time::sleep(d).await,
                None => {
                    let next = app.clock.now_ms() + ms(bank.profile.timers.retry_max.0);
                    return app
                        .store
                        .part_retry(&part.part_id, PartState::Pending, next, "bank busy")
                        .await;
                }
            },
            (Ok(reply), Some(SubmitOutcome::Rejected)) => {
                return review(
                    app,
                    bank,
                    &part,
                    "refused",
                    format!("bank answered {} {}", reply.ret_code, reply.ret_msg),
                )
                .await;
            }
            (Ok(reply), None) => {
                return review(
                    app,
                    bank,
                    &part,
                    "unknown-code",
                    format!("unknown submit answer {}", reply.ret_code),
                )
                .await;
            }
            (Err(e), _) if e.nothing_sent() => match delays.next() {
                Some(d) => tokio::time::sleep(d).await,
                None => {
                    let next = app.clock.now_ms() + ms(bank.profile.timers.retry_max.0);
                    return app
                        .store
                        .part_retry(&part.part_id, PartState::Pending, next, &e.to_string())
                        .await;
                }
            },
            (Err(e), _) => {
                // The bank may have the batch: ask before anything is sent again.
                warn!(bank = %bank.code, part = %part.part_id, error = %e, "send outcome unknown; will ask the bank");
                let next = app.clock.now_ms() + ms(bank.profile.timers.retry_min.0);
                return app
                    .store
                    .part_retry(&part.part_id, PartState::Unknown, next, &e.to_string())
                    .await;
            }
        }
    }
}

/// Asks the bank about a part: `resolving` an unknown send, or polling an accepted part for results.
async fn ask(
    app: &App,
    bank: &BankEntry,
    link: &FixedWidthLink,
    part: PartRow,
    resolving: bool,
) -> Result<(), StoreError> {
    let now = app.clock.now_shanghai();
    let q = Query {
        batch_no: part.bank_ref.clone(),
        query_id: ids::new_bank_ref(),
        query_date: format!(
            "{:04}{:02}{:02}",
            now.year(),
            u8::from(now.month()),
            now.day()
        ),
        query_time: format!("{:02}{:02}{:02}", now.hour(), now.minute(), now.second()),
    };
    let started = Instant::now();
    let result = link.query(&q).await;
    metrics::bank_request(
        &bank.code,
        "query",
        &match &result {
            Ok(r) => r.header.ret_code.clone(),
            Err(_) => "error".into(),
        },
        started.elapsed(),
    );
    let now_ms = app.clock.now_ms();
    let retry_state = if resolving {
        PartState::Unknown
    } else {
        PartState::Accepted
    };
    let reply = match result {
        Ok(r) => r,
        Err(e) => {
            let next = now_ms + ms(bank.profile.timers.retry_min.0.max(Duration::from_secs(1)));
            return if resolving {
                app.store
                    .part_retry(&part.part_id, retry_state, next, &e.to_string())
                    .await
            } else {
                if matches!(
                    e,
                    LinkError::Reply(_) | LinkError::Framing(_) | LinkError::Mismatch(_)
                ) {
                    warn!(bank = %bank.code, part = %part.part_id, error = %e, "unreadable query reply; asking again");
                }
                app.store
                    .poll_again(&part.part_id, next, Some(&e.to_string()))
                    .await
            };
        }
    };
    match bank
        .profile
        .codes
        .query
        .get(&reply.header.ret_code)
        .copied()
    {
        Some(QueryOutcome::Answered) => {}
        Some(QueryOutcome::Busy) => {
            let next = now_ms + ms(bank.profile.timers.retry_min.0.max(Duration::from_secs(1)));
            return if resolving {
                app.store
                    .part_retry(&part.part_id, retry_state, next, "bank busy")
                    .await
            } else {
                app.store
                    .poll_again(&part.part_id, next, Some("bank busy"))
                    .await
            };
        }
        Some(QueryOutcome::Unknown) if resolving => {
            info!(bank = %bank.code, part = %part.part_id, "the bank never got the part: sending it again");
            return app
                .store
                .part_retry(
                    &part.part_id,
                    PartState::Pending,
                    now_ms,
                    "unknown at the bank",
                )
                .await;
        }
        Some(QueryOutcome::Unknown) => {
            return review(
                app,
                bank,
                &part,
                "forgotten",
                "the bank no longer knows an accepted part".into(),
            )
            .await;
        }
        None => {
            return review(
                app,
                bank,
                &part,
                "unknown-code",
                format!("unknown query answer {}", reply.header.ret_code),
            )
            .await;
        }
    }
    if resolving {
        // The bank has it: accepted (its results come by polling).
        let mut events = vec![event(
            app,
            "batch.sent",
            &part,
            &bank.code,
            json!({"bank_ref": part.bank_ref}),
        )];
        return app
            .store
            .part_accepted(&part, None, now_ms, now_ms, &mut events)
            .await;
    }
    let family = link.family();
    if reply.header.state == family.state_processing {
        let next = next_poll_at(app, bank, &part.batch_id, now_ms).await?;
        return app.store.poll_again(&part.part_id, next, None).await;
    }
    if reply.header.state != family.state_final {
        return review(
            app,
            bank,
            &part,
            "unknown-state",
            format!("unknown state `{}`", reply.header.state),
        )
        .await;
    }
    let bank_ms = ms(started.elapsed());
    let read_started = Instant::now();
    let sent = app.store.part_sent(&part.part_id).await?;
    let read_ms = ms(read_started.elapsed());
    let credited = bank
        .profile
        .codes
        .item
        .iter()
        .find(|(_, c)| c.outcome == bank_profiles::ItemOutcome::Succeeded)
        .map_or("S", |(k, _)| k.as_str());
    let results = match results::reconcile_fixed_width(&sent, &reply, &bank.profile.codes, credited)
    {
        Ok(r) => r,
        Err(m) => return review(app, bank, &part, "reconcile", m.0).await,
    };
    info!(bank = %bank.code, part = %part.part_id, bank_ms, read_ms, reconcile_ms = ms(read_started.elapsed()) - read_ms, "results reconciled");
    apply_final(app, bank, &part, &results, now_ms).await
}

/// When to poll next: after the poll interval, or just before a running query's deadline if sooner.
pub(super) async fn next_poll_at(
    app: &App,
    bank: &BankEntry,
    batch_id: &str,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let mut next = now_ms + ms(bank.poll_interval());
    if let Some(q) = app
        .store
        .get_query(batch_id)
        .await?
        .filter(|q| q.status == "running")
    {
        let last = q.due_at - LAST_POLL_BEFORE_DEADLINE;
        if last > now_ms && last < next {
            next = last;
        }
    }
    Ok(next)
}

/// Applies the reconciled final results of a whole part (with their events) and counts them.
pub(super) async fn apply_final(
    app: &App,
    bank: &BankEntry,
    part: &PartRow,
    results: &[crate::store::ItemResult],
    now_ms: i64,
) -> Result<(), StoreError> {
    apply_final_items(app, bank, part, results, now_ms, true).await
}

/// Applies final item results (with their events) and counts them; with `last`, the part is final
/// too (and its batch, when it was the last open part).
pub(super) async fn apply_final_items(
    app: &App,
    bank: &BankEntry,
    part: &PartRow,
    results: &[crate::store::ItemResult],
    now_ms: i64,
    last: bool,
) -> Result<(), StoreError> {
    let (mut ok, mut failed, mut rev) = (0u64, 0u64, 0u64);
    for r in results {
        match r.status {
            crate::domain::ItemStatus::Succeeded => ok += 1,
            crate::domain::ItemStatus::Failed => failed += 1,
            _ => rev += 1,
        }
    }
    let (batch_id, code) = (part.batch_id.clone(), bank.code.clone());
    let stored = Instant::now();
    app.store
        .apply_item_results(part, results, now_ms, |r| {
            results::item_events(now_ms, &batch_id, &code, r)
        })
        .await?;
    let fin = if last {
        app.store
            .finish_part(part, now_ms, |f| results::final_events(&code, f))
            .await?
    } else {
        None
    };
    metrics::items_final(&bank.code, "succeeded", ok);
    metrics::items_final(&bank.code, "failed", failed);
    metrics::items_final(&bank.code, "review", rev);
    let store_ms = ms(stored.elapsed());
    info!(bank = %bank.code, part = %part.part_id, ok, failed, review = rev, part_final = last, batch_final = fin.is_some(), store_ms, "results applied");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bank_profiles::DurationText;

    use super::*;
    use crate::dispatch::Banks;
    use crate::store::{NewBatch, NewPart, Store};

    const BANK_A: &str = "402241000015";

    fn settings(request_timeout: Option<Duration>) -> BTreeMap<String, crate::config::Bank> {
        BTreeMap::from([(
            BANK_A.to_owned(),
            crate::config::Bank {
                endpoint: "127.0.0.1:9".into(),
                request_timeout: request_timeout.map(DurationText),
                ..Default::default()
            },
        )])
    }

    fn banks(request_timeout: Option<Duration>) -> Banks {
        let profiles = bank_profiles::builtin().expect("profiles");
        Banks::build(
            &profiles,
            &settings(request_timeout),
            &crate::config::Gateway::default(),
        )
        .expect("banks")
    }

    /// A gateway's state on a SQLite store in `dir`, with bank A's requests timing out after 1 s.
    async fn app(dir: &std::path::Path) -> App {
        let mut config = crate::config::Config::default();
        config.store.url = format!("sqlite://{}", dir.join("gw.db").display());
        config.banks = settings(Some(Duration::from_secs(1)));
        let keys = crate::keys::load(&config.gateway).expect("keys");
        let lookup = keys.lookup.clone();
        let store = Store::open_with_keys(&config.store.url, keys)
            .await
            .expect("store");
        App {
            result_polls: App::result_polls_for(&store),
            node_id: "GW01".into(),
            banks: banks(Some(Duration::from_secs(1))),
            config,
            store,
            clock: Arc::new(crate::clock::SystemClock::default()),
            lookup,
            calendar: crate::sla::Calendar::builtin(),
            deadline: crate::sla::DeadlinePolicy::parse("next-day").expect("deadline"),
            work: tokio::sync::Notify::new(),
        }
    }

    /// One part of bank A, due now, claimed by `GW01` until `until`.
    async fn claimed_part(app: &App, until: i64) -> String {
        let mut tx = app
            .store
            .begin_intake(&NewBatch {
                batch_id: "b1".into(),
                batch_no: "NO-b1".into(),
                body_hash: String::new(),
                parent_batch_id: None,
                department_code: "220623-NYNC".into(),
                region_code: "220623".into(),
                subsidy_code: "NY001".into(),
                subsidy_name: "耕地地力保护补贴".into(),
                budget_year: 2026,
                period: "2026".into(),
                indicator_no: "IND-1".into(),
                payout_bank: BANK_A.into(),
                payer_account_no: "22050166000100000001".into(),
                payer_account_name: "财政零余额账户".into(),
                funds_arrived_on: "2026-11-26".into(),
                total_count: 0,
                total_amount_fen: 0,
                created_at: 1,
                start_late: false,
            })
            .await
            .expect("intake");
        tx.insert_parts(
            BANK_A,
            0,
            &[NewPart {
                part_id: "p1".into(),
                bank_ref: "R1".into(),
                part_no: 1,
                item_count: 0,
                amount_fen: 0,
            }],
        )
        .await
        .expect("part");
        tx.finish((0, 0), 0, "{}", &[]).await.expect("finish");
        let now = app.clock.now_ms();
        let got = app
            .store
            .claim_parts(Claim::Send, BANK_A, now, "GW01", until, 1)
            .await
            .expect("claim");
        assert_eq!(got.len(), 1);
        got[0].part_id.clone()
    }

    async fn lease_until(app: &App, part_id: &str) -> i64 {
        use sqlx::Row;
        sqlx::query("select lease_until from parts where part_id = $1")
            .bind(part_id)
            .fetch_one(app.store.pool())
            .await
            .expect("part")
            .try_get("lease_until")
            .expect("lease_until")
    }

    #[test]
    fn a_lease_is_one_configured_request_plus_a_margin() {
        let with = banks(Some(Duration::from_secs(3)));
        let entry = with.get(BANK_A).expect("bank A");
        assert_eq!(lease_ms(entry), 18_000, "banks.X.request_timeout");
        assert_eq!(entry.request_timeout(), Duration::from_secs(3));
        let without = banks(None);
        let entry = without.get(BANK_A).expect("bank A");
        assert_eq!(lease_ms(entry), 135_000, "the profile's 120 s");
        // Renewed three times a lease, but at least every second and at most every 30 s.
        assert_eq!(renew_every(18_000), Duration::from_secs(6));
        assert_eq!(renew_every(135_000), Duration::from_secs(30));
        assert_eq!(renew_every(900), Duration::from_secs(1));
    }

    /// Work on a part goes on past its first lease while the lease is renewed; work whose lease
    /// cannot be renewed (here: the part is nobody's in the store) is dropped before the lease it had
    /// runs out, so that another instance taking the part over never works beside it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_runs_only_under_a_lease_it_keeps() {
        let dir = tempfile::tempdir().expect("dir");
        let app = app(dir.path()).await;
        let bank = app.banks.get(BANK_A).expect("bank A").clone();
        let lease = lease_ms(&bank);
        assert_eq!(lease, 16_000);
        let start = app.clock.now_ms();
        let part = claimed_part(&app, start + lease).await;

        let kept = under_lease(&app, &bank, &part, start + lease, async {
            // Longer than a third of the lease: renewed at least once meanwhile.
            tokio::time::sleep(Duration::from_millis(6_500)).await;
            Ok(())
        });
        let lost = under_lease(
            &app,
            &bank,
            "nobody-has-this-part",
            start + lease,
            std::future::pending::<Result<(), StoreError>>(),
        );
        let started = Instant::now();
        let (kept, lost) =
            tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(kept, lost) })
                .await
                .expect("work without a lease went on past it");
        let took = started.elapsed();
        assert!(matches!(kept, Some(Ok(()))), "{kept:?}");
        assert!(
            lease_until(&app, &part).await > start + lease,
            "the lease was renewed"
        );
        assert!(lost.is_none(), "work without a lease is dropped");
        let stop = Duration::from_millis(u64::try_from(lease).expect("ms")) - LEASE_GUARD;
        assert!(
            took >= stop - Duration::from_millis(500) && took < stop + Duration::from_secs(2),
            "dropped {took:?} after its claim, {LEASE_GUARD:?} before the lease runs out"
        );
    }
}
