//! The notice sender: takes due notices from the store (leases), marks them `sending` before any PDU is
//! written, sends them through the SMPP session and records what came back; stores delivery receipts
//! (and only then answers them).
//!
//! ```text
//! claim (lease) -> quiet hours? wait -> mark sending (one transaction) -> SmppHandle::send x n
//!   Ok(ids) -> submitted          Rejected / no mobile number -> failed
//!   not sent (connection down) -> pending again (backoff)
//!   ambiguous (answer lost)    -> unknown: a receipt naming the phone settles it; else after the grace
//!                                 it is sent again (see docs/sms.md: at most once unless the centre
//!                                 shows no sign of it)
//! receipts -> notice_receipt -> ack (deliver_sm_resp); a receipt not stored is not acked: sent again
//! ```
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::notice::Templates;
use super::{PartOutcome, Receipts, SendError, SmppHandle};
use crate::app::App;
use crate::clock::SHANGHAI;
use crate::domain::pii::Phone;
use crate::store::NoticeJob;

/// How the sender behaves.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Notice texts.
    pub templates: Templates,
    /// Quiet hours `(from, to)` as minutes after midnight, Beijing; none are sent inside them.
    pub quiet: Option<(u16, u16)>,
    /// How long an ambiguous notice waits for a receipt before it is sent again.
    pub unknown_grace: Duration,
    /// Notices claimed at once.
    pub batch: usize,
}

/// Parses `HH:MM-HH:MM` (may wrap midnight).
pub fn parse_quiet(text: &str) -> Result<(u16, u16), String> {
    let mins = |s: &str| -> Option<u16> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("`{text}`: expected HH:MM-HH:MM"))?;
    match (mins(a), mins(b)) {
        (Some(x), Some(y)) if x != y => Ok((x, y)),
        _ => Err(format!(
            "`{text}`: expected HH:MM-HH:MM, two different times"
        )),
    }
}

/// Milliseconds until the quiet hours end, or zero outside them.
pub fn quiet_left_ms(quiet: Option<(u16, u16)>, now_ms: i64) -> i64 {
    let Some((from, to)) = quiet else { return 0 };
    let t = time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(SHANGHAI);
    let now = u16::from(t.hour()) * 60 + u16::from(t.minute());
    let inside = if from < to {
        now >= from && now < to
    } else {
        now >= from || now < to
    };
    if !inside {
        return 0;
    }
    let left_min = (i64::from(to) - i64::from(now)).rem_euclid(24 * 60);
    left_min * 60_000 - i64::from(t.second()) * 1000
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Runs the sender and the receipt recorder until `stop`.
pub async fn run(
    app: Arc<App>,
    handle: SmppHandle,
    receipts: Receipts,
    cfg: SenderConfig,
    stop: CancellationToken,
) {
    let now = app.clock.now_ms();
    match app
        .store
        .recover_notices(&app.node_id, now, now + ms(cfg.unknown_grace))
        .await
    {
        Ok(0) => {}
        Ok(n) => {
            warn!(
                notices = n,
                "notices interrupted by the last stop are held until a receipt or the grace settles them"
            )
        }
        Err(e) => warn!(error = %e, "recovering notices failed"),
    }
    let recorder = tokio::spawn(record_receipts(app.clone(), receipts, stop.clone()));
    let mut idle = Duration::from_millis(50);
    let mut last_sweep = std::time::Instant::now();
    loop {
        if stop.is_cancelled() {
            break;
        }
        let now = app.clock.now_ms();
        // Another sender that died (SIGKILL, lost machine) leaves its notices `sending`: once their
        // leases run out they are settled here, on whichever sender is alive, as a restart settles
        // its own.
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = std::time::Instant::now();
            match app
                .store
                .recover_expired_notices(now, now + ms(cfg.unknown_grace))
                .await
            {
                Ok(0) => {}
                Ok(n) => warn!(
                    notices = n,
                    "notices of a sender whose lease ran out are held until a receipt or the grace settles them"
                ),
                Err(e) => warn!(error = %e, "recovering expired notice leases failed"),
            }
        }
        let quiet = quiet_left_ms(cfg.quiet, now);
        if quiet > 0 {
            let wait = Duration::from_millis(u64::try_from(quiet.min(60_000)).unwrap_or(60_000));
            tokio::select! { _ = stop.cancelled() => break, _ = tokio::time::sleep(wait) => continue }
        }
        if let Err(e) = app.store.release_unknown_notices(now).await {
            warn!(error = %e, "releasing unknown notices failed");
        }
        let jobs = match app
            .store
            .claim_notices(now, &app.node_id, now + ms(NOTICE_LEASE), cfg.batch as i64)
            .await
        {
            Ok(j) => j,
            Err(e) => {
                warn!(error = %e, "claiming notices failed");
                Vec::new()
            }
        };
        if jobs.is_empty() {
            tokio::select! { _ = stop.cancelled() => break, _ = tokio::time::sleep(idle) => {} }
            idle = (idle * 2).min(Duration::from_secs(1));
            continue;
        }
        idle = Duration::from_millis(50);
        // The part count is stored with `sending`: a receipt that settles an ambiguous notice after a
        // restart then knows how many parts to wait for.
        let keys: Vec<(String, i64, i64)> = jobs
            .iter()
            .map(|j| {
                let text = cfg.templates.render(j);
                let parts = codecs::format::smpp::text::split(&text, 0).map_or(1, |p| p.len());
                (j.batch_id.clone(), j.seq, i64::try_from(parts).unwrap_or(1))
            })
            .collect();
        if let Err(e) = app.store.notices_sending(&keys, now).await {
            warn!(error = %e, "marking notices as sending failed");
            continue;
        }
        let held: Vec<(String, i64)> = jobs.iter().map(|j| (j.batch_id.clone(), j.seq)).collect();
        let sends = join_all(jobs.iter().map(|j| send_one(&app, &handle, &cfg, j)));
        let results = tokio::select! {
            r = sends => r,
            () = keep_notice_leases(&app, &held, now + ms(NOTICE_LEASE)) => {
                warn!(
                    notices = held.len(),
                    "the notices' leases could not be renewed: stopped waiting for them, another sender settles them"
                );
                continue;
            }
        };
        for (j, r) in jobs.iter().zip(results) {
            if let Err(e) = r {
                warn!(batch = %j.batch_id, seq = j.seq, error = %e, "recording a notice failed");
            }
        }
    }
    recorder.abort();
    let _ = recorder.await;
    handle.shutdown().await;
}

/// How long a claimed notice is this sender's: renewed every [`RENEW_EVERY`] while it is being sent,
/// so only a sender that died (or lost the store) lets it run out.
const NOTICE_LEASE: Duration = Duration::from_secs(30);
/// How often the leases of the notices being sent are renewed.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// A sender stops waiting for notices whose lease it could not renew this long before it runs out
/// (clocks of different instances differ a little).
const LEASE_GUARD: Duration = Duration::from_secs(10);
/// How often a sender looks for notices left `sending` under an expired lease.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Renews the leases of `held` every [`RENEW_EVERY`]; returns (ending the wait for their sends) only
/// when the last lease written is about to run out: the store could not be reached in time. A lease
/// that is no longer this sender's (already recorded) is simply not extended.
async fn keep_notice_leases(app: &App, held: &[(String, i64)], mut until: i64) {
    loop {
        let stop_at = until - ms(LEASE_GUARD);
        let left = stop_at - app.clock.now_ms();
        if left <= 0 {
            return;
        }
        let left = Duration::from_millis(u64::try_from(left).unwrap_or(0));
        tokio::time::sleep(RENEW_EVERY.min(left)).await;
        let asked = app.clock.now_ms();
        if asked >= stop_at {
            return;
        }
        let left = Duration::from_millis(u64::try_from(stop_at - asked).unwrap_or(0));
        match tokio::time::timeout(
            left,
            app.store
                .renew_notice_leases(&app.node_id, held, asked + ms(NOTICE_LEASE)),
        )
        .await
        {
            Ok(Ok(_)) => until = asked + ms(NOTICE_LEASE),
            Ok(Err(e)) => warn!(error = %e, "renewing notice leases failed"),
            Err(_) => {}
        }
    }
}

async fn send_one(
    app: &App,
    handle: &SmppHandle,
    cfg: &SenderConfig,
    j: &NoticeJob,
) -> Result<(), crate::store::StoreError> {
    let key = format!("{}:{}", j.batch_id, j.seq);
    let text = cfg.templates.render(j);
    let phone = Phone::new(j.phone.clone());
    let mut result = handle.send(&key, &phone, &text).await;
    let mut tries = 0;
    loop {
        let now = app.clock.now_ms();
        match result {
            Ok(sent) => {
                crate::ops::metrics::sms("sent", 1);
                return app
                    .store
                    .notice_submitted(&j.batch_id, j.seq, &sent.message_ids, now)
                    .await;
            }
            Err(SendError::InvalidDestination) => {
                crate::ops::metrics::sms("failed", 1);
                return app
                    .store
                    .notice_failed(&j.batch_id, j.seq, "no mainland mobile number")
                    .await;
            }
            Err(SendError::Rejected { status, .. }) => {
                crate::ops::metrics::sms("failed", 1);
                return app
                    .store
                    .notice_failed(
                        &j.batch_id,
                        j.seq,
                        &format!("refused by the SMS centre ({status:#010x})"),
                    )
                    .await;
            }
            Err(SendError::Unsettled(u)) if u.ambiguous() > 0 => {
                warn!(notice = %key, ambiguous = u.ambiguous(), "the SMS centre's answer was lost: held until a receipt or the grace settles it");
                return app
                    .store
                    .notice_unknown(
                        &j.batch_id,
                        j.seq,
                        now + ms(cfg.unknown_grace),
                        "answer lost with the connection",
                    )
                    .await;
            }
            Err(SendError::Unsettled(u)) if tries < 5 && u.accepted().is_empty() => {
                // Nothing accepted, nothing ambiguous: the whole notice may simply be sent again.
                tries += 1;
                tokio::time::sleep(Duration::from_secs(1) * tries).await;
                let _ = u;
                result = handle.send(&key, &phone, &text).await;
            }
            Err(SendError::Unsettled(u)) if tries < 5 => {
                // Some parts accepted: only the others again, with the same reference.
                tries += 1;
                tokio::time::sleep(Duration::from_secs(1) * tries).await;
                result = handle.retry(*u).await;
            }
            Err(SendError::Unsettled(u))
                if u.outcomes.iter().all(|o| *o == PartOutcome::NotSent) =>
            {
                return app
                    .store
                    .notice_retry(&j.batch_id, j.seq, now + 30_000, "SMS centre unreachable")
                    .await;
            }
            Err(e @ SendError::Unsettled(_)) => {
                return app
                    .store
                    .notice_unknown(
                        &j.batch_id,
                        j.seq,
                        now + ms(cfg.unknown_grace),
                        &e.to_string(),
                    )
                    .await;
            }
            Err(e @ SendError::Closed) => {
                return app
                    .store
                    .notice_retry(&j.batch_id, j.seq, now + 5_000, &e.to_string())
                    .await;
            }
            Err(e) => {
                crate::ops::metrics::sms("failed", 1);
                return app
                    .store
                    .notice_failed(&j.batch_id, j.seq, &e.to_string())
                    .await;
            }
        }
    }
}

/// How long a receipt naming no known notice is left unanswered (the centre sends it again later):
/// under load a receipt can overtake the storing of its notice's message ids.
const UNMATCHED_RECEIPT_PATIENCE: Duration = Duration::from_secs(600);

async fn record_receipts(app: Arc<App>, mut receipts: Receipts, stop: CancellationToken) {
    let mut unmatched: std::collections::HashMap<String, std::time::Instant> =
        std::collections::HashMap::new();
    loop {
        let r = tokio::select! {
            _ = stop.cancelled() => return,
            r = receipts.recv() => r,
        };
        let Some(inbound) = r else { return };
        let rc = &inbound.receipt;
        let done_at = rc
            .done_at_beijing()
            .map_or_else(|| app.clock.now_ms(), |t| t.unix_timestamp() * 1000);
        let phone = rc.recipient.expose();
        let phone = phone.strip_prefix("86").unwrap_or(phone).to_owned();
        match app
            .store
            .notice_receipt(&rc.message_id, &phone, rc.stat.code(), done_at)
            .await
        {
            Ok(used) => {
                if used {
                    crate::ops::metrics::sms(
                        if rc.stat.code() == "DELIVRD" {
                            "delivered"
                        } else {
                            "undelivered"
                        },
                        1,
                    );
                    unmatched.remove(&rc.message_id);
                    inbound.ack();
                } else {
                    // Perhaps its notice's ids are not stored yet: leave it unanswered (the centre
                    // sends it again) for a while, then take it as a receipt of no notice of ours.
                    let first = *unmatched
                        .entry(rc.message_id.clone())
                        .or_insert_with(std::time::Instant::now);
                    if first.elapsed() >= UNMATCHED_RECEIPT_PATIENCE {
                        info!(message_id = %rc.message_id, "a receipt for no known notice");
                        unmatched.remove(&rc.message_id);
                        inbound.ack();
                    } else {
                        drop(inbound);
                    }
                    if unmatched.len() > 100_000 {
                        unmatched.retain(|_, t| t.elapsed() < UNMATCHED_RECEIPT_PATIENCE);
                    }
                }
            }
            // Not acked: the centre sends it again later.
            Err(e) => warn!(error = %e, "storing a receipt failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours() {
        assert_eq!(parse_quiet("22:00-08:00"), Ok((1320, 480)));
        assert!(parse_quiet("22:00").is_err());
        assert!(parse_quiet("25:00-08:00").is_err());
        // 2026-03-06 23:00 Beijing = 15:00 UTC
        let at_23 = 1_772_809_200_000;
        assert_eq!(quiet_left_ms(Some((1320, 480)), at_23), 9 * 3_600_000);
        assert_eq!(quiet_left_ms(Some((480, 1320)), at_23), 0);
        assert_eq!(quiet_left_ms(None, at_23), 0);
    }
}
