//! `gateway bench`: one roster end to end on this machine — NDJSON over HTTP, intake, storage, bank
//! batches encoded and sent to a bank's simulator on loopback, result polling and ingestion, until
//! every item is final and the notice of every credited item is queued — with the time of each stage,
//! items/s and peak resident memory. The simulator runs as a child process (`gateway simulate bank`), so
//! the memory and CPU of this process are the gateway's (and the roster generator's, which streams).
//! Numbers go to `docs/performance.md` with the exact command.
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::stream;
use serde_json::Value;

use crate::clock::{Clock, SystemClock, date_str};
use bank_profiles::DurationText;

use crate::config::{self, Config, Role, Token};
use crate::roster::{self, RosterSpec};
use crate::server;

const TOKEN: &str = "bench-submitter-token";

/// The bank a bench roster is paid through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchBank {
    /// Bank A: fixed-width GBK records over TCP, parts of 50,000.
    A,
    /// Bank C: ISO 8583-like frames with MACs over TCP, one payout per item, pipelined.
    C,
}

impl BenchBank {
    fn code(self) -> &'static str {
        match self {
            BenchBank::A => "402241000015",
            BenchBank::C => "403241000011",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Items in the roster.
    pub items: u64,
    /// The payout bank.
    pub bank: BenchBank,
    /// The store: a fresh SQLite file in a temporary folder when absent.
    pub store_url: Option<String>,
    /// How long the simulator holds a bank batch before its results are final.
    pub processing: Duration,
    /// The gateway's result poll interval.
    pub poll: Duration,
}

fn peak_rss_mib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// The bank's simulator as a child process on a free loopback port; killed when dropped.
async fn spawn_simulator(
    bank: BenchBank,
    processing: Duration,
) -> anyhow::Result<(tokio::process::Child, std::net::SocketAddr)> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let exe = std::env::current_exe().context("the gateway binary")?;
    let child = tokio::process::Command::new(exe)
        .args([
            "simulate",
            "bank",
            "--profile",
            bank.code(),
            "--listen",
            &addr.to_string(),
            "--processing-ms",
            &processing.as_millis().to_string(),
            "--fail-permille",
            "50",
            "--seed",
            "5",
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting the bank simulator")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the bank simulator did not listen on {addr} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((child, addr))
}

/// Runs the benchmark.
pub async fn run(opts: BenchOptions) -> anyhow::Result<()> {
    server::install_crypto();
    let items = opts.items;
    let dir = std::env::temp_dir().join(format!("gateway-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (mut sim, sim_addr) = spawn_simulator(opts.bank, opts.processing).await?;

    let clock = Arc::new(SystemClock::default());
    let today = clock.today();
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    let store_url = opts
        .store_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("gw.db").display()));
    cfg.store.url = store_url.clone();
    cfg.tokens = vec![Token {
        token: Some(TOKEN.into()),
        token_sha256: None,
        role: Role::Submitter,
        name: None,
    }];
    let mut bank = config::Bank {
        endpoint: sim_addr.to_string(),
        poll_interval: Some(DurationText(opts.poll)),
        ..Default::default()
    };
    if opts.bank == BenchBank::C {
        // The simulator's default key: the interface specification's test key.
        let key = dir.join("bank-c-mac.key");
        std::fs::write(&key, "0123456789ABCDEFFEDCBA9876543210\n")?;
        bank.mac_key_file = Some(key);
    }
    cfg.banks.insert(opts.bank.code().into(), bank);
    let gw = server::start(cfg, clock).await?;
    let base = format!("http://{}", gw.addr);

    // A seed of its own per run: a reused PostgreSQL database already holds the claims of earlier runs.
    let seed = u64::from(std::process::id());
    let spec = RosterSpec {
        items,
        seed,
        bad: 0,
        batch_no: format!("BENCH-{}-{}", std::process::id(), opts.bank.code()),
        year: today.year(),
        payout_bank: opts.bank.code().into(),
        funds_arrived_on: date_str(today),
    };
    let mut sum = 0i64;
    for seq in 1..=items {
        sum += roster::item(seed, seq)["amount_fen"].as_i64().unwrap_or(0);
    }
    let mut header = roster::header(&spec, &[]);
    header["total_count"] = items.into();
    header["total_amount_fen"] = sum.into();
    let head = format!("{header}\n");
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
    // The batch row says when it was sent and final; reading it costs nothing, unlike the API's answer,
    // which counts every item by status.
    let (mut sent, mut done) = (None, None);
    while done.is_none() {
        let b = gw
            .app
            .store
            .get_batch(&batch_id)
            .await?
            .context("the batch is gone")?;
        if sent.is_none() && b.sent_at.is_some() {
            sent = Some(t0.elapsed());
        }
        if b.final_at.is_some() {
            done = Some(t0.elapsed());
        }
        if let Ok(Some(status)) = sim.try_wait() {
            anyhow::bail!("the bank simulator stopped: {status}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (sent, done) = (sent.unwrap_or_default(), done.unwrap_or_default());
    let counts = gw.app.store.batch_counts(&batch_id).await?;
    let notices: i64 = gw
        .app
        .store
        .notice_counts(Some(&batch_id))
        .await?
        .iter()
        .map(|(_, n)| n)
        .sum();
    let sim_rss = sim.id().map_or(0, |pid| peak_rss_mib(&pid.to_string()));
    let rate = |d: Duration| items as f64 / d.as_secs_f64().max(1e-9);
    let backend = store_url.split(':').next().unwrap_or_default();
    println!(
        "items {items}, bank {} ({:?}), store {backend}",
        opts.bank.code(),
        opts.bank
    );
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
        "  (the simulator holds each bank batch {} ms before its results are final; polls every {} ms)",
        opts.processing.as_millis(),
        opts.poll.as_millis()
    );
    println!(
        "items by status: {:?}; notices queued: {notices}",
        counts.by_status
    );
    println!(
        "peak RSS: gateway (with the roster generator) {} MiB; bank simulator {} MiB",
        peak_rss_mib("self"),
        sim_rss
    );
    let succeeded = counts.by_status.get("succeeded").copied().unwrap_or(0);
    let finals = succeeded + counts.by_status.get("failed").copied().unwrap_or(0);
    gw.shutdown().await;
    let _ = sim.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(
        u64::try_from(finals).unwrap_or(0) == items,
        "only {finals} of {items} items are final"
    );
    anyhow::ensure!(
        notices == succeeded,
        "{notices} notices queued for {succeeded} credited items"
    );
    Ok(())
}
