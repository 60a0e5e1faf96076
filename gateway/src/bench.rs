//! `gateway bench`: one roster end to end on this machine — NDJSON over HTTP, intake, storage, bank
//! batches encoded and sent to bank A's simulator on loopback, result polling and ingestion — with the
//! time of each stage, items/s and the process's peak resident memory. Numbers go to
//! `docs/performance.md` with the exact command.
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream;
use serde_json::Value;

use crate::clock::{Clock, SystemClock, date_str};
use crate::config::{Role, Token};
use crate::roster::{self, RosterSpec};
use crate::server;

const TOKEN: &str = "bench-submitter-token";
const BANK_A: &str = "402241000015";

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// Runs the benchmark with `items` items.
pub async fn run(items: u64) -> anyhow::Result<()> {
    server::install_crypto();
    let dir = std::env::temp_dir().join(format!("gateway-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let tokens = vec![Token {
        token: Some(TOKEN.into()),
        token_sha256: None,
        role: Role::Submitter,
        name: None,
    }];
    let clock = Arc::new(SystemClock::default());
    let today = clock.today();
    let (sim, gw) = crate::demo::local_stack(
        &dir.join("gw.db"),
        "127.0.0.1:0",
        Duration::from_millis(500),
        50,
        Duration::from_millis(200),
        tokens,
        clock,
    )
    .await?;
    let base = format!("http://{}", gw.addr);
    let spec = RosterSpec {
        items,
        seed: 5,
        bad: 0,
        batch_no: format!("BENCH-{}", std::process::id()),
        year: today.year(),
        payout_bank: BANK_A.into(),
        funds_arrived_on: date_str(today),
    };
    let mut sum = 0i64;
    for seq in 1..=items {
        sum += roster::item(spec.seed, seq)["amount_fen"]
            .as_i64()
            .unwrap_or(0);
    }
    let mut header = roster::header(&spec, &[]);
    header["total_count"] = items.into();
    header["total_amount_fen"] = sum.into();
    let head = format!("{header}\n");
    let seed = spec.seed;
    let body = stream::iter((0..=items.div_ceil(1000)).map(move |chunk| {
        let mut buf = String::new();
        if chunk == 0 {
            buf.push_str(&head);
        } else {
            for seq in (chunk - 1) * 1000 + 1..=(chunk * 1000).min(items) {
                buf.push_str(&roster::item(seed, seq).to_string());
                buf.push('\n');
            }
        }
        Ok::<_, std::io::Error>(buf)
    }));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()?;
    let t0 = Instant::now();
    let resp = http
        .post(format!("{base}/v1/batches"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().as_u16() == 202,
        "intake answered {}",
        resp.status()
    );
    let answer: Value = resp.json().await?;
    let intake = t0.elapsed();
    let batch_id = answer["batch_id"].as_str().unwrap_or_default().to_owned();
    let (mut sent, mut done) = (None, None);
    while done.is_none() {
        let b: Value = http
            .get(format!("{base}/v1/batches/{batch_id}"))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        if sent.is_none() && (b["status"] == "sent" || b["status"] == "final") {
            sent = Some(t0.elapsed());
        }
        if b["status"] == "final" {
            done = Some(t0.elapsed());
        }
        // Reading a batch counts its items by status: poll gently so the reader does not slow the writer.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (sent, done) = (sent.unwrap_or_default(), done.unwrap_or_default());
    let rate = |d: Duration| items as f64 / d.as_secs_f64().max(1e-9);
    println!("items                      {items}");
    println!(
        "intake (HTTP NDJSON -> stored, 202)   {:>8.2} s   {:>10.0} items/s",
        intake.as_secs_f64(),
        rate(intake)
    );
    println!(
        "sent (all parts accepted by the bank)  {:>8.2} s   {:>10.0} items/s",
        (sent - intake).as_secs_f64(),
        rate(sent.saturating_sub(intake))
    );
    println!(
        "final (polled, reconciled, applied)   {:>8.2} s   {:>10.0} items/s",
        (done - sent).as_secs_f64(),
        rate(done.saturating_sub(sent))
    );
    println!(
        "end to end                            {:>8.2} s   {:>10.0} items/s",
        done.as_secs_f64(),
        rate(done)
    );
    println!(
        "  (the simulator holds each bank batch 0.5 s before its results are final; polls every 0.2 s)"
    );
    println!(
        "peak RSS of this process (gateway + simulator + generator): {} MiB",
        peak_rss_mib()
    );
    println!(
        "simulator ledger: {} items paid, max payments per recipient {}",
        sim.ledger.items_paid(),
        sim.ledger.max_payments_per_id()
    );
    gw.shutdown().await;
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
