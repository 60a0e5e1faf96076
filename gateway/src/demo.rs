//! `gateway demo`: the whole path on one machine — SQLite, the built-in bank simulator, a generated
//! roster with good and bad items, the department's click, the final result, a readable summary.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bank_profiles::DurationText;
use serde_json::Value;
use simulators::{FixedWidthSim, FixedWidthSimConfig};

use crate::clock::{Clock, SystemClock, date_str};
use crate::config::{self, Config, Role, Token};
use crate::roster::{self, RosterSpec};
use crate::server;

/// Demo options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Items in the roster.
    pub items: u64,
    /// Items broken on purpose.
    pub bad: u64,
    /// Keep serving after the summary (Ctrl-C to stop).
    pub keep_running: bool,
    /// API listen address.
    pub listen: String,
}

const TOKEN: &str = "demo-submitter-token";
const ADMIN: &str = "demo-admin-token";
const BANK_A: &str = "402241000015";

/// Bank A's simulator on loopback and a gateway on the SQLite file `db` talking to it (demo, bench).
pub(crate) async fn local_stack(
    db: &std::path::Path,
    listen: &str,
    processing: Duration,
    fail_permille: u32,
    poll: Duration,
    tokens: Vec<Token>,
    clock: Arc<SystemClock>,
) -> anyhow::Result<(simulators::SimHandle, server::Running)> {
    let profile = bank_profiles::builtin()?
        .get(BANK_A)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no built-in profile {BANK_A}"))?;
    let mut sim_cfg = FixedWidthSimConfig::new(profile);
    sim_cfg.processing = processing;
    sim_cfg.fail_permille = fail_permille;
    let sim = FixedWidthSim::start(sim_cfg, tokio::net::TcpListener::bind("127.0.0.1:0").await?)?;
    let mut cfg = Config::default();
    cfg.server.listen = listen.to_owned();
    cfg.store.url = format!("sqlite://{}", db.display());
    cfg.tokens = tokens;
    cfg.banks.insert(
        BANK_A.into(),
        config::Bank {
            endpoint: sim.addr.to_string(),
            poll_interval: Some(DurationText(poll)),
            ..Default::default()
        },
    );
    let gw = server::start(cfg, clock).await?;
    Ok((sim, gw))
}

/// Runs the demo and prints the summary.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    server::install_crypto();
    let dir = std::env::temp_dir().join(format!("gateway-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("gateway.db");

    let tokens = vec![
        Token {
            token: Some(TOKEN.into()),
            token_sha256: None,
            role: Role::Submitter,
            name: Some("demo-platform".into()),
        },
        Token {
            token: Some(ADMIN.into()),
            token_sha256: None,
            role: Role::Admin,
            name: Some("demo-admin".into()),
        },
    ];
    let clock = Arc::new(SystemClock::default());
    let today = clock.today();
    let (sim, gw) = local_stack(
        &db,
        &opts.listen,
        Duration::from_secs(2),
        40,
        Duration::from_secs(1),
        tokens,
        clock,
    )
    .await?;
    let base = format!("http://{}", gw.addr);
    println!(
        "gateway listening on {base}  (dashboard: {base}/dashboard, API: {base}/openapi.json)"
    );
    println!("store: {}", db.display());

    let spec = RosterSpec {
        items: opts.items,
        seed: 7,
        bad: opts.bad,
        batch_no: format!("DEMO-{}-{}", today.year(), std::process::id()),
        year: today.year(),
        payout_bank: BANK_A.into(),
        funds_arrived_on: date_str(today),
    };
    let items = roster::items(&spec);
    let mut body = roster::header(&spec, &items);
    body["items"] = Value::Array(items);
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let resp = http
        .post(format!("{base}/v1/batches"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let answer: Value = resp.json().await?;
    anyhow::ensure!(
        status.as_u16() == 202,
        "submission answered {status}: {answer}"
    );
    let batch_id = answer["batch_id"].as_str().unwrap_or_default().to_owned();
    println!(
        "\nsubmitted {} items as {} -> {status}",
        opts.items, spec.batch_no
    );
    println!(
        "  accepted {}, rejected {}",
        answer["accepted_count"], answer["rejected_count"]
    );
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    for r in answer["rejected"].as_array().into_iter().flatten() {
        *by_code
            .entry(r["code"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    for (code, n) in &by_code {
        println!("    {code}: {n}");
    }
    let warnings = answer["warnings"].as_array().map_or(0, Vec::len);
    println!("  warnings {warnings}");

    let click: Value = http
        .post(format!("{base}/v1/batches/{batch_id}/query"))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .json()
        .await?;
    println!(
        "\nquery status clicked at {}: due {}",
        click["clicked_at"], click["due_at"]
    );

    let batch = loop {
        let b: Value = http
            .get(format!("{base}/v1/batches/{batch_id}"))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        if b["status"] == "final" {
            break b;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "no final result after 120 s: {b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let c = &batch["counts"];
    println!(
        "\nfinal after {:.1} s: succeeded {}, failed {}, review {}",
        started.elapsed().as_secs_f64(),
        c["succeeded"],
        c["failed"],
        c["review"]
    );
    println!(
        "  amounts: accepted {} fen, succeeded {} fen, failed {} fen",
        batch["amounts_fen"]["accepted"],
        batch["amounts_fen"]["succeeded"],
        batch["amounts_fen"]["failed"]
    );
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    let mut after = 0i64;
    loop {
        let page: Value = http
            .get(format!(
                "{base}/v1/batches/{batch_id}/items?status=failed&after_seq={after}&limit=1000"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        for it in page["items"].as_array().into_iter().flatten() {
            let key = format!(
                "{} {}",
                it["fail_code"].as_str().unwrap_or("?"),
                it["fail_reason"].as_str().unwrap_or("")
            );
            *reasons.entry(key).or_default() += 1;
        }
        match page["next_after_seq"].as_i64() {
            Some(n) => after = n,
            None => break,
        }
    }
    for (r, n) in &reasons {
        println!("    failed {r}: {n}");
    }
    println!(
        "  parts (bank batches): {}",
        batch["parts"].as_array().map_or(0, Vec::len)
    );
    println!("  query: {}", batch["query"]);
    let ledger = &sim.ledger;
    println!(
        "\nbank A simulator ledger: {} batches accepted, {} items paid ({} credited, {} failed), max payments per recipient {}",
        ledger.accepted_batches(),
        ledger.items_paid(),
        ledger.credited(),
        ledger.failed(),
        ledger.max_payments_per_id()
    );
    if opts.keep_running {
        println!("\nserving until Ctrl-C (tokens: submitter `{TOKEN}`, admin `{ADMIN}`)");
        gw.until_signal().await;
    } else {
        gw.shutdown().await;
    }
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
