//! Bank B's fault menu, each its own scenario: connection dropped mid-reply, garbage answers, busy
//! (503 + Retry-After), lost answers and timeouts, late results; a refused document goes to review; and
//! TLS with the wrong CA on either side is refused with a clear error and no data sent. After each: no
//! item paid twice, none lost, the gateway still serving.
mod common;

use std::time::Duration;

use common::*;
use simulators::faults::Faults;

fn log() {
    if std::env::var_os("GW_TEST_LOG").is_some() {
        gateway::ops::logging::init(false, None);
    }
}

async fn scenario(
    backend: StoreBackend,
    tag: &str,
    items: usize,
    tune_sim: impl FnOnce(&mut simulators::Iso20022SimConfig),
    tune: impl FnOnce(&mut gateway::config::Config),
) -> simulators::Iso20022SimHandle {
    log();
    let dir = TempDir::new(tag);
    let store = TestStore::new(backend, &dir.0);
    let sim = bank_b(|c| {
        c.seed = 13;
        c.fail_permille = 30;
        c.late_result = Duration::from_secs(2);
        tune_sim(c);
    })
    .await;
    let mut cfg = store.config("127.0.0.1:9");
    cfg.banks.clear();
    with_bank_b(&mut cfg, &sim.addr.to_string(), &sim.pki, &dir.0);
    tune(&mut cfg);
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);
    let roster = gen_roster(&[
        "--items",
        &items.to_string(),
        "--seed",
        "47",
        "--payout-bank",
        BANK_B,
        "--batch-no",
        &format!("FAULT-B-{tag}"),
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
    assert!(sim.max_credits_per_end_to_end_id() <= 1, "{tag}");
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
    assert_eq!(sim.stats.xsd_invalid(), 0, "{tag}");
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
        2500,
        |c| {
            c.faults = Faults {
                first_attempts_faulted: 1,
                cut_reply_permille: 300,
                ..Faults::default()
            }
        },
        |_| {},
    )
    .await;
    assert!(sim.ledger.cut_replies() > 0, "the fault happened");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_answers() {
    let sim = scenario(
        StoreBackend::Sqlite,
        "garble",
        2500,
        |c| {
            // One part: its answers (submit, status polls) are few, so the share is high enough that
            // some are garbled in every run (at 300 a run saw none once: the draw depends on the
            // part's random reference).
            c.faults = Faults {
                first_attempts_faulted: 1,
                garble_reply_permille: 700,
                ..Faults::default()
            }
        },
        |_| {},
    )
    .await;
    assert!(sim.ledger.garbled_replies() > 0, "the fault happened");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_answers_honour_retry_after() {
    let sim = scenario(
        StoreBackend::Sqlite,
        "busy",
        2500,
        |c| {
            // Longer than the profile's first backoff (retry_min 1 s), so a client that ignored the
            // header would retry early.
            c.retry_after = Duration::from_secs(2);
            // One part: its submit and status polls are few, so on shares alone some runs saw no
            // busy answer (CI, 2026-12-07: the draw depends on the part's random MsgId). Each
            // request's first attempt is therefore answered busy, then the shares decide.
            c.faults = Faults {
                first_attempts_faulted: 1,
                busy_submit_permille: 500,
                busy_query_permille: 300,
                ..Faults::default()
            }
        },
        |_| {},
    )
    .await;
    assert!(sim.ledger.busy_replies() > 0, "the fault happened");
    assert!(
        sim.stats.retries_after_busy() > 0,
        "busy requests were retried"
    );
    assert_eq!(
        sim.stats.early_retries(),
        0,
        "no retry came before Retry-After ({} retries)",
        sim.stats.retries_after_busy()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_and_timeouts_are_asked_about_first() {
    lost_answers(StoreBackend::Sqlite, "lost", 2500).await;
}

async fn lost_answers(backend: StoreBackend, tag: &str, items: usize) {
    let sim = scenario(
        backend,
        tag,
        items,
        |c| {
            // One part: its answers (submit, status polls) are few, so the share is high enough that
            // some are lost in every run (at 300, 3 of 6 runs on 2026-11-26 lost none: the draw
            // depends on the part's random MsgId).
            c.faults = Faults {
                first_attempts_faulted: 1,
                drop_before_reply_permille: 700,
                duplicate_reply_permille: 200,
                ..Faults::default()
            }
        },
        |cfg| {
            for b in cfg.banks.values_mut() {
                b.request_timeout = Some(bank_profiles::DurationText(Duration::from_secs(5)));
            }
        },
    )
    .await;
    assert!(sim.ledger.dropped_replies() > 0, "the fault happened");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_document_goes_to_review_with_the_banks_reason() {
    log();
    let dir = TempDir::new("b-refused");
    let db = dir.0.join("gw.db");
    let sim = bank_b(|c| {
        c.payer_accounts = ["000000000000".to_owned()].into_iter().collect();
    })
    .await;
    let mut cfg = config(&db, "127.0.0.1:9");
    cfg.banks.clear();
    with_bank_b(&mut cfg, &sim.addr.to_string(), &sim.pki, &dir.0);
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);
    let roster = gen_roster(&["--items", "50", "--seed", "5", "--payout-bank", BANK_B]);
    let (s, answer) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{answer}");
    let batch_id = answer["batch_id"].as_str().expect("id").to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, b) = api.get(SUBMITTER, &format!("/v1/batches/{batch_id}")).await;
        if b["parts"][0]["state"] == "review" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no review: {b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let err = query_texts(&db, "select last_error from parts")
        .await
        .expect("part")[0]
        .clone()
        .expect("last_error");
    assert!(err.contains("400") && err.contains("RJCT"), "{err}");
    assert_eq!(sim.ledger.items_paid(), 0);
    gw.shutdown().await;
    sim.shutdown().await;
}

/// The gateway trusts another CA than the bank's, or presents a certificate the bank's CA did not
/// issue: the handshake fails, nothing is sent, the part waits with the TLS reason, the gateway serves.
async fn wrong_pki(
    tag: &str,
    gateway_pki: impl FnOnce(&simulators::TestPki) -> simulators::TestPki,
) {
    log();
    let dir = TempDir::new(tag);
    let db = dir.0.join("gw.db");
    let sim = bank_b(|_| {}).await;
    let mut cfg = config(&db, "127.0.0.1:9");
    cfg.banks.clear();
    let pki = gateway_pki(&sim.pki);
    with_bank_b(&mut cfg, &sim.addr.to_string(), &pki, &dir.0);
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);
    let roster = gen_roster(&["--items", "20", "--seed", "6", "--payout-bank", BANK_B]);
    let (s, answer) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{answer}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let err = loop {
        if let Some(row) = query_texts(
            &db,
            "select last_error from parts where last_error is not null",
        )
        .await
        {
            break row[0].clone().expect("text");
        }
        assert!(std::time::Instant::now() < deadline, "no error recorded");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        err.contains("nothing sent")
            && (err.to_lowercase().contains("certificate") || err.contains("alert")),
        "{tag}: a clear TLS reason: {err}"
    );
    assert_eq!(sim.stats.accepted(), 0, "{tag}");
    assert_eq!(
        sim.ledger.submits_seen(),
        0,
        "{tag}: no data reached the bank"
    );
    assert!(
        sim.stats.handshake_failures() > 0 || tag == "b-wrong-server-ca",
        "{tag}"
    );
    let (h, _) = api.get(SUBMITTER, "/v1/banks").await;
    assert_eq!(h, 200, "{tag}: still serving");
    gw.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_is_refused() {
    // The gateway's client certificate is right, but it trusts only another CA.
    wrong_pki("b-wrong-server-ca", |bank| {
        let other = simulators::TestPki::generate("some other CA").expect("pki");
        simulators::TestPki::from_pem(
            other.ca_pem(),
            bank.server_cert_pem(),
            bank.server_key_pem(),
            bank.client_cert_pem(),
            bank.client_key_pem(),
        )
        .expect("mixed pki")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_from_another_ca_is_refused() {
    // The gateway trusts the bank's CA, but presents a certificate another CA issued.
    wrong_pki("b-wrong-client-ca", |bank| {
        let other = simulators::TestPki::generate("some other CA").expect("pki");
        simulators::TestPki::from_pem(
            bank.ca_pem(),
            bank.server_cert_pem(),
            bank.server_key_pem(),
            other.client_cert_pem(),
            other.client_key_pem(),
        )
        .expect("mixed pki")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_lost_answers_and_timeouts_are_asked_about_first() {
    lost_answers(StoreBackend::Postgres, "lost-pg", 1000).await;
}
