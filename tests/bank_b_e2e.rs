//! A 30,000-item roster to bank B (ISO 20022 over HTTPS with mutual TLS): three pain.001 documents of
//! 10,000 transactions, each valid against the XSD (the simulator runs xmllint on every body), every
//! end-to-end id credited at most once, every item final, counts matching the simulator's ledger. The
//! same scenario runs on PostgreSQL (a throwaway cluster) with 4,000 items.
mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_of_30k_through_bank_b_paid_exactly_once() {
    scenario(StoreBackend::Sqlite, 30_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_through_bank_b_on_postgres_paid_exactly_once() {
    scenario(StoreBackend::Postgres, 4_000).await;
}

async fn scenario(backend: StoreBackend, items: u64) {
    let roster = gen_roster(&[
        "--items",
        &items.to_string(),
        "--seed",
        "29",
        "--payout-bank",
        BANK_B,
    ]);
    let dir = TempDir::new("e2e-b");
    let store = TestStore::new(backend, &dir.0);
    let sim = bank_b(|c| c.fail_permille = 30).await;
    let mut cfg = store.config("127.0.0.1:9");
    cfg.banks.clear();
    with_bank_b(&mut cfg, &sim.addr.to_string(), &sim.pki, &dir.0);
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);

    let (status, answer) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(status, 202, "{answer}");
    let accepted = answer["accepted_count"].as_u64().expect("accepted_count");
    assert_eq!(accepted, items, "{answer}");
    let batch_id = answer["batch_id"].as_str().expect("batch_id").to_owned();
    let (click, q) = api
        .post(SUBMITTER, &format!("/v1/batches/{batch_id}/query"), None)
        .await;
    assert!(click == 202 || click == 200, "{q}");

    let batch = api.wait_final(&batch_id, Duration::from_secs(600)).await;
    let parts = batch["parts"].as_array().expect("parts");
    let documents = items.div_ceil(10_000);
    assert_eq!(
        parts.len() as u64,
        documents,
        "10,000 transactions a document: {batch}"
    );

    assert_eq!(
        sim.stats.accepted() as u64,
        documents,
        "every message accepted"
    );
    assert_eq!(
        sim.stats.xsd_invalid(),
        0,
        "every document valid against the XSD"
    );
    assert_eq!(sim.stats.rejected(), 0);
    let ledger = &sim.ledger;
    assert_eq!(ledger.items_paid() as u64, accepted, "each item paid once");
    assert_eq!(ledger.max_payments_per_id(), 1, "nobody paid twice");
    assert!(sim.max_credits_per_end_to_end_id() <= 1);
    let c = &batch["counts"];
    assert_eq!(c["succeeded"].as_u64(), Some(ledger.credited() as u64));
    assert_eq!(c["failed"].as_u64(), Some(ledger.failed() as u64));
    assert!(ledger.failed() > 0, "the simulator fails some");
    assert_eq!(c["review"].as_u64(), Some(0), "{batch}");
    assert_eq!(c["pending"].as_u64(), Some(0));
    assert_eq!(c["sent"].as_u64(), Some(0));
    assert_eq!(
        batch["amounts_fen"]["succeeded"].as_u64(),
        Some(ledger.credited_amount())
    );
    let failed = api.all_items(&batch_id, Some("failed")).await;
    for it in &failed {
        let code = it["fail_code"].as_str().expect("fail code");
        assert!(
            ["AC01", "AC04", "AC06", "BE01", "AC14", "NARR"].contains(&code),
            "{it}"
        );
        assert!(it["confirmed_at"].is_string(), "{it}");
    }
    gw.shutdown().await;
    sim.shutdown().await;
    drop(store);
}
