//! Runs the key rotation pass (`store::rotation`): in the background of a running gateway, and to its
//! end from `gateway keys rotate`.
//!
//! The background task checks every few minutes whether the pass of each table has reached its end
//! for the current key (a read); while it has not, it reseals a page, pauses so intake and bank work
//! keep the store, and goes on. When several instances share the store one of them runs it at a time
//! (a named lease); the pass is idempotent and resumable, so a lease moving mid-pass loses nothing.
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::App;
use crate::store::{NamedLease, RotationScope, Store, StoreResult};

const LEASE: &str = "key-rotation";
const LEASE_MS: i64 = 60_000;
/// How often a finished pass is looked at again (a new current key after a restart starts a new one
/// at once: the first look is at start-up).
const TICK: Duration = Duration::from_secs(300);
/// Rows per page (one write transaction).
pub const PAGE: i64 = 500;
/// Pause between pages of the background task.
const PAUSE: Duration = Duration::from_millis(50);

/// The sum of pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassTotals {
    /// Rows read.
    pub scanned: u64,
    /// Rows written again.
    pub resealed: u64,
}

/// Runs the pass of every table to its end with pages of `page` rows and `pause` between them.
/// `now` gives the time written into the progress rows. Stops early (with what was done) when `stop`
/// is cancelled.
pub async fn rotate_to_end(
    store: &Store,
    now: impl Fn() -> i64,
    page: i64,
    pause: Duration,
    stop: Option<&CancellationToken>,
) -> StoreResult<Vec<(RotationScope, PassTotals)>> {
    let mut out = Vec::new();
    for scope in RotationScope::ALL {
        let mut totals = PassTotals::default();
        loop {
            let p = store.rotate_page(scope, page, now()).await?;
            totals.scanned += p.scanned;
            totals.resealed += p.resealed;
            if p.done || stop.is_some_and(CancellationToken::is_cancelled) {
                break;
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        out.push((scope, totals));
    }
    Ok(out)
}

/// The background task: until `stop`.
pub async fn run(app: Arc<App>, stop: CancellationToken) {
    let mut lease = NamedLease::new(LEASE, &app.node_id, LEASE_MS);
    let mut totals = [PassTotals::default(); RotationScope::ALL.len()];
    loop {
        let mut more = false;
        match lease.hold(&app.store, app.clock.now_ms()).await {
            Ok(true) => {
                for (i, scope) in RotationScope::ALL.into_iter().enumerate() {
                    match app.store.rotate_page(scope, PAGE, app.clock.now_ms()).await {
                        Ok(p) => {
                            totals[i].scanned += p.scanned;
                            totals[i].resealed += p.resealed;
                            if p.done && totals[i].scanned > 0 {
                                info!(
                                    table = scope.as_str(),
                                    key_id = app.store.keys().data.current_id(),
                                    scanned = totals[i].scanned,
                                    resealed = totals[i].resealed,
                                    "key rotation pass finished: every personal value of the table is sealed with the current key"
                                );
                                totals[i] = PassTotals::default();
                            }
                            more |= !p.done;
                        }
                        Err(e) => warn!(
                            table = scope.as_str(),
                            error = %e,
                            "key rotation page failed; will retry"
                        ),
                    }
                }
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "taking the key rotation lease failed; will retry"),
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(if more { PAUSE } else { TICK }) => {}
        }
    }
    if let Err(e) = lease.release(&app.store).await {
        warn!(error = %e, "giving the key rotation lease up failed");
    }
}
