//! Bank A's fault menu, each its own scenario: busy answers, replies dropped after the bank processed the
//! request, garbled replies, replies split across reads, duplicated replies. After each: every item
//! final, nobody paid twice, the gateway still serving.
mod common;

use std::time::Duration;

use common::*;
use simulators::faults::Faults;

/// Runs `items` through bank A with `faults`; `happened` counts, in the bank's ledger, the fault the
/// scenario is about, which must have happened at least once (else the run proved nothing: on shares
/// alone, runs of 2026-12-07 drew none now and then, so every scenario faults each request's first
/// attempt with `first_attempts_faulted`, then rolls the shares).
async fn scenario(
    backend: StoreBackend,
    tag: &str,
    items: usize,
    faults: Faults,
    happened: fn(&simulators::ledger::Ledger) -> usize,
) {
    let dir = TempDir::new(tag);
    let store = TestStore::new(backend, &dir.0);
    let sim = bank_a(|c| {
        c.faults = faults;
        c.seed = 5;
    })
    .await;
    let gw = gateway(store.config(&sim.addr.to_string())).await;
    let api = Api::new(gw.addr);
    let roster = gen_roster(&[
        "--items",
        &items.to_string(),
        "--seed",
        "41",
        "--payout-bank",
        BANK_A,
        "--batch-no",
        &format!("FAULT-{tag}"),
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
        "{tag}: every accepted item paid"
    );
    assert_eq!(ledger.max_payments_per_id(), 1, "{tag}: nobody paid twice");
    let c = &batch["counts"];
    assert_eq!(
        c["succeeded"].as_u64(),
        Some(ledger.credited() as u64),
        "{tag}"
    );
    assert_eq!(c["failed"].as_u64(), Some(ledger.failed() as u64), "{tag}");
    let (h, _) = api.get(SUBMITTER, "/v1/banks").await;
    assert_eq!(h, 200, "{tag}: still serving");
    let faulted = happened(ledger);
    eprintln!("{tag}: {faulted} faulted replies");
    assert!(faulted > 0, "{tag}: the fault happened");
    gw.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_answers_are_retried_with_the_same_batch_no() {
    scenario(
        StoreBackend::Sqlite,
        "busy",
        3000,
        Faults {
            first_attempts_faulted: 1,
            busy_submit_permille: 600,
            busy_query_permille: 500,
            ..Faults::default()
        },
        simulators::ledger::Ledger::busy_replies,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_replies_are_resolved_by_asking() {
    dropped_replies(StoreBackend::Sqlite, "drop", 3000).await;
}

async fn dropped_replies(backend: StoreBackend, tag: &str, items: usize) {
    scenario(
        backend,
        tag,
        items,
        Faults {
            first_attempts_faulted: 1,
            drop_before_reply_permille: 500,
            ..Faults::default()
        },
        simulators::ledger::Ledger::dropped_replies,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_replies_are_not_believed() {
    scenario(
        StoreBackend::Sqlite,
        "garble",
        3000,
        Faults {
            first_attempts_faulted: 1,
            garble_reply_permille: 500,
            ..Faults::default()
        },
        simulators::ledger::Ledger::garbled_replies,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_duplicated_replies() {
    scenario(
        StoreBackend::Sqlite,
        "split",
        3000,
        Faults {
            first_attempts_faulted: 1,
            split_writes: true,
            duplicate_reply_permille: 500,
            ..Faults::default()
        },
        simulators::ledger::Ledger::duplicated_replies,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_unreachable_then_back() {
    // Nothing listens at first: parts stay pending, nothing is lost; then the bank comes up.
    let dir = TempDir::new("down");
    let db = dir.0.join("gw.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let gw = gateway(config(&db, &format!("127.0.0.1:{port}"))).await;
    let api = Api::new(gw.addr);
    let roster = gen_roster(&["--items", "500", "--seed", "42", "--payout-bank", BANK_A]);
    let (s, answer) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{answer}");
    let batch_id = answer["batch_id"].as_str().expect("id").to_owned();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, b) = api.get(SUBMITTER, &format!("/v1/batches/{batch_id}")).await;
    assert!(b["status"] == "accepted" || b["status"] == "sending", "{b}");
    assert_eq!(b["counts"]["pending"], 500, "{b}");
    let (ready, _) = api.get(SUBMITTER, "/readyz").await;
    assert_eq!(ready, 503);
    let mut cfg = simulators::FixedWidthSimConfig::new(bank_a_profile());
    cfg.processing = Duration::from_millis(300);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the bank's port");
    let sim = simulators::FixedWidthSim::start(cfg, listener).expect("sim");
    let batch = api.wait_final(&batch_id, Duration::from_secs(120)).await;
    assert_eq!(sim.ledger.max_payments_per_id(), 1);
    assert_eq!(
        batch["counts"]["succeeded"].as_u64(),
        Some(sim.ledger.credited() as u64)
    );
    let (ready, _) = api.get(SUBMITTER, "/readyz").await;
    assert_eq!(ready, 200);
    gw.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_dropped_replies_are_resolved_by_asking() {
    dropped_replies(StoreBackend::Postgres, "drop-pg", 1000).await;
}
