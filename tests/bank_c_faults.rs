//! Bank C's fault menu, each its own scenario: connection dropped mid-reply, corrupted frames, busy
//! answers, replies with a bad MAC, reply timeouts, duplicated replies, late results. After each: every
//! item final, nobody paid twice, none lost, the gateway still serving. Where a reply was lost, the
//! gateway asked (inquiry) before it paid again: the ledger never books an F37 twice.
mod common;

use std::time::Duration;

use common::*;
use simulators::faults::Faults;

async fn scenario(
    tag: &str,
    items: usize,
    faults: Faults,
    tune: impl FnOnce(&mut gateway::config::Config),
) -> simulators::SimHandle {
    if std::env::var_os("GW_TEST_LOG").is_some() {
        gateway::ops::logging::init(false, None);
    }
    let dir = TempDir::new(tag);
    let db = dir.0.join("gw.db");
    let sim = bank_c(|c| {
        c.faults = faults;
        c.seed = 9;
        c.fail_permille = 30;
        c.late_result = Duration::from_secs(2);
    })
    .await;
    let mut cfg = config(&db, "127.0.0.1:9");
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
    // Replies dropped after the bank processed the payout: the gateway times out, asks, never pays twice.
    let sim = scenario(
        "timeout",
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
