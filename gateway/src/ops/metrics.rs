//! Typed telemetry: each function both counts (Prometheus through `metrics`) and, where useful, logs.
//! Labels are bank codes, statuses and rule codes: never personal data.
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process; later calls reuse it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests running several gateways in one
            // process): then this handle simply renders what it has.
            let _ = metrics::set_global_recorder(recorder);
            spawn_upkeep(handle.clone());
            handle
        })
        .clone()
}

/// How often the recorder's pending histogram samples are folded into their summaries.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds the recorder's histogram samples into their summaries every [`UPKEEP_EVERY`]. A recorder made
/// with `build_recorder` keeps every sample until the next scrape otherwise: a gateway nobody scraped
/// grew by each bank request's sample (issue 9: about 40 bytes an item through bank C's sending, two
/// requests an item). A plain thread, because this is installed before (or without) a runtime.
fn spawn_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = started {
        tracing::warn!(error = %e, "the metrics upkeep thread did not start: histograms are folded only when scraped");
    }
}

/// A batch was accepted.
pub fn batch_accepted(bank: &str, accepted: i64, rejected: i64) {
    metrics::counter!("gateway_batches_total", "bank" => bank.to_owned(), "status" => "accepted")
        .increment(1);
    metrics::counter!("gateway_items_total", "bank" => bank.to_owned(), "status" => "accepted")
        .increment(u64::try_from(accepted).unwrap_or(0));
    metrics::counter!("gateway_items_total", "bank" => bank.to_owned(), "status" => "rejected")
        .increment(u64::try_from(rejected).unwrap_or(0));
}

/// A request was refused with an `E-*` code.
pub fn api_error(code: &'static str) {
    metrics::counter!("gateway_errors_total", "code" => code).increment(1);
}

/// A request to a bank and how it ended.
pub fn bank_request(bank: &str, kind: &'static str, outcome: &str, took: Duration) {
    metrics::counter!("gateway_bank_requests_total", "bank" => bank.to_owned(), "kind" => kind, "outcome" => outcome.to_owned())
        .increment(1);
    metrics::histogram!("gateway_bank_request_seconds", "bank" => bank.to_owned(), "kind" => kind)
        .record(took.as_secs_f64());
}

/// Items reached a final status.
pub fn items_final(bank: &str, status: &'static str, n: u64) {
    metrics::counter!("gateway_items_total", "bank" => bank.to_owned(), "status" => status)
        .increment(n);
}

/// A part needs an operator.
pub fn part_review(bank: &str, reason: &'static str) {
    metrics::counter!("gateway_part_reviews_total", "bank" => bank.to_owned(), "reason" => reason)
        .increment(1);
}

/// Current items by status (a gauge refreshed on scrape).
pub fn items_by_status(status: &str, n: i64) {
    metrics::gauge!("gateway_items", "status" => status.to_owned()).set(n as f64);
}

/// A bank connection event (`signed-on`, ...).
pub fn bank_connection(bank: &str, event: &'static str) {
    metrics::counter!("gateway_bank_connections_total", "bank" => bank.to_owned(), "event" => event)
        .increment(1);
}

/// A reply from a bank that was not used: `unreadable`, `unexpected` (nobody waited for it), `mac`
/// (its MAC did not verify: alerted).
pub fn bank_bad_reply(bank: &str, kind: &'static str) {
    metrics::counter!("gateway_bank_bad_replies_total", "bank" => bank.to_owned(), "kind" => kind)
        .increment(1);
}

/// SMS notices by outcome: `sent` (every part accepted), `delivered` / `undelivered` (receipts),
/// `failed` (refused, no mobile number), `throttled` (the centre asked us to slow down).
pub fn sms(outcome: &'static str, n: u64) {
    metrics::counter!("gateway_sms_notices_total", "outcome" => outcome).increment(n);
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The threads of this process named `name` (from `/proc/self/task/*/comm`).
    fn threads_named(name: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .expect("/proc/self/task")
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == name)
            .count()
    }

    #[test]
    fn installing_starts_one_upkeep_thread_however_often_it_is_called() {
        install();
        install();
        bank_request("403241000011", "payout", "00", Duration::from_millis(3));
        // A thread names itself once it runs: wait for it (up to 10 s), then count.
        for _ in 0..200 {
            if threads_named("metrics-upkeep") > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(threads_named("metrics-upkeep"), 1);
    }
}
