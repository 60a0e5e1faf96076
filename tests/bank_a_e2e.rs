//! A 120,000-item roster (`gen_roster.py --items 120000 --bad 50`) goes in over HTTP, becomes 3 bank
//! batches, is paid exactly once each by bank A's simulator, and every item ends succeeded or failed with
//! the counts matching the simulator's ledger.
mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_of_120k_through_bank_a_paid_exactly_once() {
    let roster = gen_roster(&[
        "--items",
        "120000",
        "--bad",
        "50",
        "--seed",
        "11",
        "--payout-bank",
        BANK_A,
    ]);
    let dir = TempDir::new("e2e120k");
    let db = dir.0.join("gw.db");
    let sim = bank_a(|c| c.fail_permille = 30).await;
    let gw = gateway(config(&db, &sim.addr.to_string())).await;
    let api = Api::new(gw.addr);

    let (status, answer) = api.submit_json(SUBMITTER, roster.clone()).await;
    assert_eq!(status, 202, "{answer}");
    let accepted = answer["accepted_count"].as_u64().expect("accepted_count");
    let rejected = answer["rejected_count"].as_u64().expect("rejected_count");
    assert_eq!(accepted + rejected, 120_000);
    assert!(
        (40..=50).contains(&rejected),
        "the 50 broken items (some may overlap): {rejected}"
    );
    for r in answer["rejected"].as_array().expect("rejected list") {
        let code = r["code"].as_str().expect("code");
        assert!(
            [
                "E-ITEM-ID-INVALID",
                "E-ITEM-ACCOUNT-INVALID",
                "E-ACCT-UNIT-PERSONAL",
                "E-ITEM-AMOUNT",
                "E-ITEM-DUPLICATE"
            ]
            .contains(&code),
            "unexpected {r}"
        );
    }
    let batch_id = answer["batch_id"].as_str().expect("batch_id").to_owned();

    // The same body again: the original answer, 200.
    let (again, answer2) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(again, 200);
    assert_eq!(answer2, answer);

    let (click, q) = api
        .post(SUBMITTER, &format!("/v1/batches/{batch_id}/query"), None)
        .await;
    assert!(click == 202 || click == 200, "{q}");

    let batch = api.wait_final(&batch_id, Duration::from_secs(600)).await;
    let parts = batch["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 3, "{batch}");
    let sizes: Vec<u64> = parts
        .iter()
        .map(|p| p["items"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(sizes.iter().sum::<u64>(), accepted);
    assert!(sizes.iter().all(|&s| s <= 50_000), "{sizes:?}");

    let ledger = &sim.ledger;
    assert_eq!(ledger.accepted_batches(), 3);
    assert_eq!(
        ledger.items_paid() as u64,
        accepted,
        "each accepted item paid once"
    );
    assert_eq!(ledger.max_payments_per_id(), 1, "nobody paid twice");
    let c = &batch["counts"];
    assert_eq!(c["succeeded"].as_u64(), Some(ledger.credited() as u64));
    assert_eq!(c["failed"].as_u64(), Some(ledger.failed() as u64));
    assert_eq!(c["review"].as_u64(), Some(0));
    assert_eq!(c["pending"].as_u64(), Some(0));
    assert_eq!(c["sent"].as_u64(), Some(0));
    assert_eq!(
        batch["amounts_fen"]["succeeded"].as_u64(),
        Some(ledger.credited_amount())
    );
    assert_eq!(batch["query"]["late"], false);
    assert!(batch["query"]["fed_back_at"].is_string());

    // Every failed item carries the bank's code and reason, the account bank and the confirmation time.
    let failed = api.all_items(&batch_id, Some("failed")).await;
    assert_eq!(failed.len() as u64, ledger.failed() as u64);
    for it in &failed {
        assert!(
            it["fail_code"].as_str().is_some_and(|c| c.starts_with('A')),
            "{it}"
        );
        assert!(it["confirmed_at"].is_string(), "{it}");
        assert!(it["bank_ref"].is_string(), "{it}");
        assert!(
            it["id_no"].as_str().is_some_and(|s| s.contains('*')),
            "masked for a submitter: {it}"
        );
    }
    gw.shutdown().await;
    sim.shutdown().await;
}
