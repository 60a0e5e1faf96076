//! Bank C's fault menu, each its own scenario: connection dropped mid-reply, corrupted frames, busy
//! answers, replies with a bad MAC, reply timeouts, duplicated replies, late results; and two gateways
//! over the bank's connection limit. After each: every
//! item final, nobody paid twice, none lost, the gateway still serving. Where a reply was lost, the
//! gateway asked (inquiry) before it paid again: the ledger never books an F37 twice.
mod common;

use std::time::Duration;

use common::*;
use simulators::faults::Faults;

async fn scenario(
    backend: StoreBackend,
    tag: &str,
    items: usize,
    faults: Faults,
    tune: impl FnOnce(&mut gateway::config::Config),
) -> simulators::SimHandle {
    if std::env::var_os("GW_TEST_LOG").is_some() {
        gateway::ops::logging::init(false, None);
    }
    let dir = TempDir::new(tag);
    let store = TestStore::new(backend, &dir.0);
    let sim = bank_c(|c| {
        c.faults = faults;
        c.seed = 9;
        c.fail_permille = 30;
        c.late_result = Duration::from_secs(2);
    })
    .await;
    let mut cfg = store.config("127.0.0.1:9");
    cfg.banks.clear();
    with_bank_c(&mut cfg, &sim.addr.to_string(), &dir.0);
    tune(&mut cfg);
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);
    let roster = gen_roster(&[
        "--items",
        &items.to_string(),
        "--seed",
        "43",
        "--payout-bank",
        BANK_C,
        "--batch-no",
        &format!("FAULT-C-{tag}"),
    ]);
    let (s, answer) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{answer}");
    let accepted = answer["accepted_count"].as_u64().expect("accepted");
    let batch_id = answer["batch_id"].as_str().expect("id").to_owned();
    let batch = api.wait_final(&batch_id, Duration::from_secs(240)).await;
    let ledger = &sim.ledger;
    assert_eq!(
        ledger.items_paid() as u64,
        accepted,
        "{tag}: every item paid"
    );
    assert_eq!(ledger.max_payments_per_id(), 1, "{tag}: nobody paid twice");
    let c = &batch["counts"];
    assert_eq!(
        c["succeeded"].as_u64(),
        Some(ledger.credited() as u64),
        "{tag}: {batch}"
    );
    assert_eq!(
        c["failed"].as_u64(),
        Some(ledger.failed() as u64),
        "{tag}: {batch}"
    );
    assert_eq!(c["review"].as_u64(), Some(0), "{tag}: {batch}");
    let (h, _) = api.get(SUBMITTER, "/v1/banks").await;
    assert_eq!(h, 200, "{tag}: still serving");
    gw.shutdown().await;
    sim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_dropped_mid_reply() {
    let sim = scenario(
        StoreBackend::Sqlite,
        "cut",
        600,
        Faults {
            cut_reply_permille: 20,
            ..Faults::default()
        },
        |_| {},
    )
    .await;
    assert!(sim.ledger.cut_replies() > 0, "the fault happened");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_frames() {
    let sim = scenario(
        StoreBackend::Sqlite,
        "garble",
        300,
        Faults {
            garble_reply_permille: 20,
            ..Faults::default()
        },
        |cfg| {
            for b in cfg.banks.values_mut() {
                b.request_timeout = Some(bank_profiles::DurationText(Duration::from_millis(700)));
            }
        },
    )
    .await;
    assert!(sim.ledger.garbled_replies() > 0, "the fault happened");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_answers_are_retried_with_the_same_f37() {
    let sim = scenario(
        StoreBackend::Sqlite,
        "busy",
        600,
        Faults {
            busy_submit_permille: 200,
            busy_query_permille: 200,
            ..Faults::default()
        },
        |_| {},
    )
    .await;
    assert!(sim.ledger.busy_replies() > 0, "the fault happened");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_with_a_bad_mac_are_not_believed() {
    let sim = scenario(
        StoreBackend::Sqlite,
        "badmac",
        600,
        Faults {
            bad_mac_reply_permille: 30,
            ..Faults::default()
        },
        |_| {},
    )
    .await;
    assert!(sim.ledger.bad_mac_replies() > 0, "the fault happened");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_timeouts_are_asked_about_before_any_resend() {
    reply_timeouts(StoreBackend::Sqlite, "timeout").await;
}

/// Replies dropped after the bank processed the payout: the gateway times out, asks, never pays twice.
async fn reply_timeouts(backend: StoreBackend, tag: &str) {
    let sim = scenario(
        backend,
        tag,
        300,
        Faults {
            drop_before_reply_permille: 20,
            ..Faults::default()
        },
        |cfg| {
            for b in cfg.banks.values_mut() {
                b.request_timeout = Some(bank_profiles::DurationText(Duration::from_millis(700)));
            }
        },
    )
    .await;
    assert!(sim.ledger.dropped_replies() > 0, "the fault happened");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_replies_and_late_results() {
    let sim = scenario(
        StoreBackend::Sqlite,
        "dup-late",
        600,
        Faults {
            duplicate_reply_permille: 50,
            late_result_permille: 100,
            ..Faults::default()
        },
        |_| {},
    )
    .await;
    assert!(sim.ledger.duplicated_replies() > 0, "the fault happened");
    sim.shutdown().await;
}

/// Two gateways that each believe they may open the bank's 4 connections (`gateway.instances` not
/// raised), on one bank: the bank closes every connection over its limit at once. Neither may stall:
/// the first, its roster done, gives its idle connections back (after half the bank's idle limit,
/// 20 s in this profile, echoes every 5 s) and the second then gets them; both rosters end final, each item paid once.
/// (Before, the first kept its idle connections alive with echoes and the second never connected.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_over_the_banks_connection_limit_both_finish() {
    if std::env::var_os("GW_TEST_LOG").is_some() {
        gateway::ops::logging::init(false, None);
    }
    let dir = TempDir::new("over-limit");
    let sim = bank_c(|c| c.seed = 11).await;
    let profiles = dir.0.join("profiles");
    std::fs::create_dir_all(&profiles).expect("mkdir");
    let profile = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../bank-profiles/profiles/{BANK_C}.toml")),
    )
    .expect("profile");
    assert!(profile.contains("idle_timeout = \"120s\""));
    std::fs::write(
        profiles.join(format!("{BANK_C}.toml")),
        profile
            .replace("idle_timeout = \"120s\"", "idle_timeout = \"20s\"")
            .replace("echo_interval = \"30s\"", "echo_interval = \"5s\""),
    )
    .expect("profile");
    let mut gws = Vec::new();
    for (i, node) in ["GW01", "GW02"].into_iter().enumerate() {
        let mut cfg = config(&dir.0.join(format!("gw{i}.db")), "127.0.0.1:9");
        cfg.banks.clear();
        cfg.gateway.node_id = node.into();
        cfg.gateway.profiles_dir = Some(profiles.clone());
        with_bank_c(&mut cfg, &sim.addr.to_string(), &dir.0);
        gws.push(gateway(cfg).await);
        // Each has its own store here: their item references (F37, unique for ever at the bank) are
        // kept apart as one shared store would keep them.
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&format!(
            "sqlite://{}",
            dir.0.join(format!("gw{i}.db")).display()
        ))
        .await
        .expect("store");
        sqlx::query("insert into counters (name, value) values ('item_ref', $1)")
            .bind(i as i64 * 1_000_000)
            .execute(&pool)
            .await
            .expect("item_ref counter");
        pool.close().await;
    }
    let started = std::time::Instant::now();
    let mut batches = Vec::new();
    for (i, gw) in gws.iter().enumerate() {
        let api = Api::new(gw.addr);
        let roster = gen_roster(&[
            "--items",
            "1500",
            "--seed",
            &format!("{}", 61 + i),
            "--payout-bank",
            BANK_C,
            "--batch-no",
            &format!("OVER-LIMIT-{i}"),
        ]);
        let (s, answer) = api.submit_json(SUBMITTER, roster).await;
        assert_eq!(s, 202, "{answer}");
        let accepted = answer["accepted_count"].as_u64().expect("accepted");
        batches.push((
            api,
            answer["batch_id"].as_str().expect("id").to_owned(),
            accepted,
        ));
    }
    let mut total = 0;
    for (api, id, accepted) in &batches {
        let b = api.wait_final(id, Duration::from_secs(120)).await;
        let c = &b["counts"];
        assert_eq!(
            c["succeeded"].as_u64().unwrap_or(0) + c["failed"].as_u64().unwrap_or(0),
            *accepted,
            "{b}"
        );
        total += accepted;
    }
    println!(
        "both rosters final in {:.1} s; the bank closed {} connections over its limit",
        started.elapsed().as_secs_f64(),
        sim.ledger.refused_connections()
    );
    assert!(
        sim.ledger.refused_connections() > 0,
        "the gateways went over the limit"
    );
    assert_eq!(sim.ledger.items_paid() as u64, total, "every item paid");
    assert_eq!(sim.ledger.max_payments_per_id(), 1, "nobody paid twice");
    for gw in gws {
        gw.shutdown().await;
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_reply_timeouts_are_asked_about_before_any_resend() {
    reply_timeouts(StoreBackend::Postgres, "timeout-pg").await;
}
