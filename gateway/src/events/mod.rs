//! The outbox and the platform callback: events are written in the transaction of the change that
//! causes them; this worker POSTs them, oldest first, to `[events] callback_url` with the header
//! `Idempotency-Key: <event_id>`, retrying with backoff until a 2xx. Delivery survives restarts (the
//! outbox row says what is delivered); the platform drops repeats by the key.
//!
//! When several instances share the store, one delivers at a time (a named lease, taken over when its
//! holder stops renewing it): events go out in order, which two deliverers could not keep.
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::App;
use crate::clock::rfc3339;
use crate::store::{EventRow, NamedLease};

/// The lease of the outbox delivery, and how long it is taken for.
const LEASE: &str = "outbox-delivery";
const LEASE_MS: i64 = 90_000;

/// The JSON of an event, as `GET /v1/events` shows it and the callback receives it.
pub fn event_json(e: &EventRow) -> Value {
    json!({
        "event_id": e.event_id, "type": e.kind, "at": rfc3339(e.at), "batch_id": e.batch_id, "seq": e.seq,
        "bank_code": e.bank_code, "code": e.code,
        "data": serde_json::from_str::<Value>(&e.data).unwrap_or(Value::Null),
    })
}

/// Retry delay after `attempts` failed deliveries: 1 s doubling to 5 min.
pub fn retry_delay(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(0, 9)).unwrap_or(9);
    Duration::from_secs((1u64 << exp).min(300))
}

/// Delivers events to `url` until `stop`.
pub async fn run(app: Arc<App>, url: String, stop: CancellationToken) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot build the callback client; events are not delivered");
            return;
        }
    };
    info!(%url, "event delivery started");
    let mut lease = NamedLease::new(LEASE, &app.node_id, LEASE_MS);
    loop {
        let now = app.clock.now_ms();
        let mut idle = true;
        let held = match lease.hold(&app.store, now).await {
            Ok(held) => held,
            Err(e) => {
                warn!(error = %e, "taking the outbox lease failed");
                false
            }
        };
        let due = if held {
            app.store.undelivered_events(now, 100).await
        } else {
            Ok(Vec::new())
        };
        match due {
            Ok(batch) => {
                for (e, attempts) in batch {
                    // Each POST may take its whole timeout: stop when the lease is no longer ours.
                    if !matches!(lease.hold(&app.store, app.clock.now_ms()).await, Ok(true)) {
                        break;
                    }
                    idle = false;
                    let sent = http
                        .post(&url)
                        .header("Idempotency-Key", &e.event_id)
                        .json(&event_json(&e))
                        .send()
                        .await;
                    let ok = matches!(&sent, Ok(r) if r.status().is_success());
                    let result = if ok {
                        app.store
                            .event_delivered(&e.event_id, app.clock.now_ms())
                            .await
                    } else {
                        let next = app.clock.now_ms()
                            + i64::try_from(retry_delay(attempts).as_millis()).unwrap_or(300_000);
                        app.store.event_failed(&e.event_id, next).await
                    };
                    if let Err(err) = result {
                        warn!(error = %err, "recording a delivery failed");
                    }
                    if !ok {
                        // Keep the order: stop at the first event the platform did not take.
                        break;
                    }
                }
            }
            Err(e) => warn!(error = %e, "reading the outbox failed"),
        }
        let pause = if idle {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(10)
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
    if let Err(e) = lease.release(&app.store).await {
        warn!(error = %e, "giving the outbox lease up failed");
    }
}
