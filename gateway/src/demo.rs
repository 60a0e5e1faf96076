//! `gateway demo`: the whole path on one machine — SQLite, the three banks' simulators and the SMS
//! centre's, one generated roster per bank with good and bad items, the department's click, the final
//! results, the SMS notices, a readable summary.
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

/// The three shortlisted banks' simulators, the SMS centre's, and a gateway talking to all of them.
pub(crate) struct FullStack {
    /// Bank A (fixed-width over TCP).
    pub a: simulators::SimHandle,
    /// Bank B (ISO 20022 over HTTPS with mutual TLS).
    pub b: simulators::Iso20022SimHandle,
    /// Bank C (ISO 8583 over TCP, MACs).
    pub c: simulators::SimHandle,
    /// The SMS centre (SMPP 3.4).
    pub smsc: simulators::smsc::SmscHandle,
    /// The gateway.
    pub gw: server::Running,
}

const BANK_B: &str = "103241000018";
const BANK_C: &str = "403241000011";

/// Starts every simulator on loopback and a gateway on `db` configured for them; certificates, the
/// MAC key and the SMPP password are made in `dir`.
pub(crate) async fn full_stack(
    dir: &std::path::Path,
    listen: &str,
    tokens: Vec<Token>,
    clock: Arc<SystemClock>,
) -> anyhow::Result<FullStack> {
    let profiles = bank_profiles::builtin()?;
    let profile = |code: &str| {
        profiles
            .get(code)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no built-in profile {code}"))
    };
    let local = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let mut a_cfg = FixedWidthSimConfig::new(profile(BANK_A)?);
    a_cfg.processing = Duration::from_secs(2);
    a_cfg.fail_permille = 40;
    let a = FixedWidthSim::start(a_cfg, local().await?)?;
    let mut b_cfg = simulators::Iso20022SimConfig::new(profile(BANK_B)?);
    b_cfg.processing = Duration::from_secs(2);
    b_cfg.fail_permille = 40;
    let b = simulators::Iso20022Sim::start(b_cfg, local().await?).await?;
    let pki = b.pki.write_to(&dir.join("bank-b-pki"))?;
    let mut c_cfg = simulators::Iso8583SimConfig::new(profile(BANK_C)?);
    c_cfg.processing = Duration::from_secs(1);
    c_cfg.fail_permille = 40;
    let c = simulators::Iso8583Sim::start(c_cfg, local().await?)?;
    let mac_key = dir.join("bank-c-mac.key");
    std::fs::write(&mac_key, "0123456789ABCDEFFEDCBA9876543210\n")?;
    let password = format!("{:08x}", rand::random::<u32>());
    let mut sms_cfg = simulators::smsc::SmscSimConfig::new("gwdemo", &password);
    sms_cfg.receipt_delay = Duration::from_millis(500);
    let smsc = simulators::smsc::SmscSim::start(sms_cfg, local().await?)?;
    let password_file = dir.join("smpp.password");
    std::fs::write(&password_file, &password)?;

    let mut cfg = Config::default();
    cfg.server.listen = listen.to_owned();
    cfg.store.url = format!("sqlite://{}", dir.join("gateway.db").display());
    cfg.tokens = tokens;
    let poll = Some(DurationText(Duration::from_secs(1)));
    cfg.banks.insert(
        BANK_A.into(),
        config::Bank {
            endpoint: a.addr.to_string(),
            poll_interval: poll,
            ..Default::default()
        },
    );
    cfg.banks.insert(
        BANK_B.into(),
        config::Bank {
            endpoint: format!("https://{}", b.addr),
            ca: Some(pki.ca),
            client_cert: Some(pki.client_cert),
            client_key: Some(pki.client_key),
            poll_interval: poll,
            ..Default::default()
        },
    );
    cfg.banks.insert(
        BANK_C.into(),
        config::Bank {
            endpoint: c.addr.to_string(),
            mac_key_file: Some(mac_key),
            poll_interval: poll,
            ..Default::default()
        },
    );
    cfg.sms = Some(config::Sms {
        endpoint: smsc.addr.to_string(),
        system_id: "gwdemo".into(),
        password_env: None,
        password_file: Some(password_file),
        service_number: "10690000".into(),
        templates: BTreeMap::new(),
        quiet_hours: None,
        unknown_grace: None,
        max_rate: None,
        key_tlv: None,
        enquire_link: None,
    });
    let gw = server::start(cfg, clock).await?;
    Ok(FullStack { a, b, c, smsc, gw })
}

async fn get_json(http: &reqwest::Client, url: String) -> anyhow::Result<Value> {
    Ok(http
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await?
        .json()
        .await?)
}

/// Runs the demo and prints the summary.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    server::install_crypto();
    let dir = std::env::temp_dir().join(format!("gateway-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

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
    let stack = full_stack(&dir, &opts.listen, tokens, clock).await?;
    let base = format!("http://{}", stack.gw.addr);
    println!(
        "gateway listening on {base}  (dashboard: {base}/dashboard, API: {base}/openapi.json)"
    );
    println!("store: {}", dir.join("gateway.db").display());
    println!(
        "banks: A {} (fixed-width/TCP), B https://{} (ISO 20022, mutual TLS), C {} (ISO 8583, MAC); SMS centre {}",
        stack.a.addr, stack.b.addr, stack.c.addr, stack.smsc.addr
    );

    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let mut batches = Vec::new();
    for (i, bank) in [BANK_A, BANK_B, BANK_C].into_iter().enumerate() {
        let spec = RosterSpec {
            items: opts.items,
            seed: 7 + i as u64,
            bad: opts.bad,
            batch_no: format!("DEMO-{}-{}-{bank}", today.year(), std::process::id()),
            year: today.year(),
            payout_bank: bank.into(),
            funds_arrived_on: date_str(today),
        };
        let items = roster::items(&spec);
        let mut body = roster::header(&spec, &items);
        body["items"] = Value::Array(items);
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
            "\nbank {bank}: submitted {} items as {} -> {status}: accepted {}, rejected {}",
            opts.items, spec.batch_no, answer["accepted_count"], answer["rejected_count"]
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
        let click: Value = http
            .post(format!("{base}/v1/batches/{batch_id}/query"))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        println!(
            "  query status clicked at {}: due {}",
            click["clicked_at"], click["due_at"]
        );
        batches.push((bank, batch_id));
    }

    for (bank, batch_id) in &batches {
        let batch = loop {
            let b = get_json(&http, format!("{base}/v1/batches/{batch_id}")).await?;
            if b["status"] == "final" {
                break b;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(180),
                "no final result after 180 s: {b}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let c = &batch["counts"];
        println!(
            "\nbank {bank}: final after {:.1} s: succeeded {}, failed {}, review {}; {} bank batch(es); late: {}",
            started.elapsed().as_secs_f64(),
            c["succeeded"],
            c["failed"],
            c["review"],
            batch["parts"].as_array().map_or(0, Vec::len),
            batch["query"]["late"]
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
            let page = get_json(
                &http,
                format!(
                    "{base}/v1/batches/{batch_id}/items?status=failed&after_seq={after}&limit=1000"
                ),
            )
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
        // Notices: one per credited item, once the SMS centre has taken them.
        let credited = c["succeeded"].as_u64().unwrap_or(0);
        let notices = loop {
            let n = get_json(
                &http,
                format!("{base}/v1/batches/{batch_id}/notices?limit=1"),
            )
            .await?;
            let settled: u64 = ["submitted", "delivered", "failed"]
                .iter()
                .map(|s| n["counts"][*s].as_u64().unwrap_or(0))
                .sum();
            if settled >= credited || started.elapsed() > Duration::from_secs(240) {
                break n;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        println!("  SMS notices: {}", notices["counts"]);
    }
    let show = |name: &str, l: &simulators::ledger::Ledger| {
        println!(
            "{name}: {} items paid ({} credited, {} failed), max payments per recipient {}",
            l.items_paid(),
            l.credited(),
            l.failed(),
            l.max_payments_per_id()
        );
    };
    println!("\nsimulator ledgers (the banks' side):");
    show("  bank A", &stack.a.ledger);
    show("  bank B", &stack.b.ledger);
    show("  bank C", &stack.c.ledger);
    println!(
        "  SMS centre: {} parts accepted, {} receipts sent",
        stack.smsc.ledger.accepted(),
        stack.smsc.ledger.receipts_sent()
    );
    let FullStack { a, b, c, smsc, gw } = stack;
    if opts.keep_running {
        println!("\nserving until Ctrl-C (tokens: submitter `{TOKEN}`, admin `{ADMIN}`)");
        gw.until_signal().await;
    } else {
        gw.shutdown().await;
    }
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
    smsc.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
