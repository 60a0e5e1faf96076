//! Time-driven warnings with an injected clock: `W-FAILED-NOT-HANDLED` once a failed item has been
//! neither corrected nor returned for 2 working days, `W-START-LATE` for a batch submitted after its
//! funds day and for one not sent by the end of it. Each is raised once.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use gateway::clock::{Clock, SystemClock};
use serde_json::{Value, json};

async fn warnings(api: &Api, code: &str) -> Vec<Value> {
    let (_, v) = api.get(AUDITOR, "/v1/events?limit=5000").await;
    v["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["code"] == code)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_items_and_late_starts_are_warned_once() {
    let dir = TempDir::new("warn");
    let db = dir.0.join("gw.db");
    let sim = bank_a(|c| {
        c.fail_permille = 500;
        c.processing = Duration::from_millis(200);
    })
    .await;
    let clock = Arc::new(SystemClock::default());
    let gw = gateway::server::start(config(&db, &sim.addr.to_string()), clock.clone())
        .await
        .expect("gateway");
    let api = Api::new(gw.addr);

    // Submitted the day after its funds arrived: warned at intake.
    let yesterday = gateway::clock::date_str(clock.today().previous_day().expect("day"));
    let raw = gen_roster(&[
        "--items",
        "20",
        "--seed",
        "91",
        "--payout-bank",
        BANK_A,
        "--funds-arrived-on",
        &yesterday,
    ]);
    let (s, a) = api.submit_json(SUBMITTER, raw).await;
    assert_eq!(s, 202, "{a}");
    assert!(
        a["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w["code"] == "W-START-LATE" && w["seq"].is_null()),
        "{a}"
    );
    let batch_id = a["batch_id"].as_str().expect("id").to_owned();
    api.wait_final(&batch_id, Duration::from_secs(60)).await;
    let failed = api.all_items(&batch_id, Some("failed")).await;
    assert!(failed.len() >= 2, "need failed items");
    // Handle one in time; leave the others.
    let seq = failed[0]["seq"].as_i64().expect("seq");
    let (s, _) = api
        .post(
            SUBMITTER,
            &format!("/v1/batches/{batch_id}/items/{seq}/return"),
            Some(json!({"reason": "退回国库"})),
        )
        .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        warnings(&api, "W-FAILED-NOT-HANDLED").await.is_empty(),
        "not yet: within 2 working days"
    );

    // Five calendar days later (at least 2 working days whatever the calendar says).
    clock.advance_ms(5 * 86_400_000);
    let t = std::time::Instant::now();
    while warnings(&api, "W-FAILED-NOT-HANDLED").await.len() < failed.len() - 1 {
        assert!(t.elapsed() < Duration::from_secs(20), "warnings not raised");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let w = warnings(&api, "W-FAILED-NOT-HANDLED").await;
    assert_eq!(
        w.len(),
        failed.len() - 1,
        "once per unhandled item, none for the returned one"
    );
    assert!(w.iter().all(|e| e["seq"] != seq));
    // The late-start batch was warned at intake only, not again by the sweep.
    assert_eq!(warnings(&api, "W-START-LATE").await.len(), 1);
    gw.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_not_sent_on_its_funds_day_is_warned_after_midnight() {
    let dir = TempDir::new("start");
    let db = dir.0.join("gw.db");
    // Nobody listens at the bank's address: the batch cannot be sent.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let clock = Arc::new(SystemClock::default());
    let gw = gateway::server::start(config(&db, &format!("127.0.0.1:{port}")), clock.clone())
        .await
        .expect("gateway");
    let api = Api::new(gw.addr);
    let raw = gen_roster(&["--items", "10", "--seed", "92", "--payout-bank", BANK_A]);
    let (s, a) = api.submit_json(SUBMITTER, raw).await;
    assert_eq!(s, 202, "{a}");
    assert!(a["warnings"].as_array().expect("warnings").is_empty());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(warnings(&api, "W-START-LATE").await.is_empty());
    clock.advance_ms(86_400_000);
    let t = std::time::Instant::now();
    while warnings(&api, "W-START-LATE").await.is_empty() {
        assert!(t.elapsed() < Duration::from_secs(20), "no W-START-LATE");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(warnings(&api, "W-START-LATE").await.len(), 1);
    gw.shutdown().await;
}
