//! A 5,000-item roster to bank C (ISO 8583, one payment per message over a pipelined channel): every
//! item paid exactly once by the simulator, every item final, counts matching the simulator's ledger.
//! The same scenario runs on PostgreSQL (a throwaway cluster) with 3,000 items.
mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_of_5000_through_bank_c_paid_exactly_once() {
    scenario(StoreBackend::Sqlite, 5_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_through_bank_c_on_postgres_paid_exactly_once() {
    scenario(StoreBackend::Postgres, 3_000).await;
}

async fn scenario(backend: StoreBackend, items: u64) {
    let roster = gen_roster(&[
        "--items",
        &items.to_string(),
        "--seed",
        "23",
        "--payout-bank",
        BANK_C,
    ]);
    let dir = TempDir::new("e2e-c");
    let store = TestStore::new(backend, &dir.0);
    let sim = bank_c(|c| c.fail_permille = 40).await;
    let mut cfg = store.config("127.0.0.1:9");
    cfg.banks.clear();
    with_bank_c(&mut cfg, &sim.addr.to_string(), &dir.0);
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

    let batch = api.wait_final(&batch_id, Duration::from_secs(300)).await;
    let parts = batch["parts"].as_array().expect("parts");
    assert_eq!(
        parts.len() as u64,
        items.div_ceil(2_000),
        "2,000 items a part: {batch}"
    );

    let ledger = &sim.ledger;
    assert_eq!(ledger.items_paid() as u64, accepted, "each item paid once");
    assert_eq!(ledger.max_payments_per_id(), 1, "nobody paid twice");
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

    // Failed items carry the bank's code, reason text and confirmation time; credited ones the bank's
    // transaction reference.
    let failed = api.all_items(&batch_id, Some("failed")).await;
    assert_eq!(failed.len(), ledger.failed());
    for it in &failed {
        let code = it["fail_code"].as_str().expect("fail code");
        assert!(["14", "62", "78", "76", "77", "05"].contains(&code), "{it}");
        assert!(it["fail_reason"].is_string(), "{it}");
    }
    let ok = api.all_items(&batch_id, Some("succeeded")).await;
    assert!(
        ok.iter().all(|it| it["confirmed_at"].is_string()),
        "CT read"
    );
    assert_eq!(
        store.count_rows("item_attempts").await as u64,
        items,
        "one stored attempt per item, none re-sent"
    );
    gw.shutdown().await;
    sim.shutdown().await;
    drop(store);
}
