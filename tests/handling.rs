//! Failed and review items, and the platform callback: a failed item is corrected (re-issued in a
//! sub-batch, paid once), another returned to the treasury; an unknown result code puts an item in
//! review until an admin settles it; events reach the platform's callback with retries and
//! `Idempotency-Key`, in order, none lost. The scenario runs on SQLite and on PostgreSQL (a throwaway
//! cluster).
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use common::*;
use serde_json::{Value, json};

#[derive(Default)]
struct Platform {
    received: Vec<(String, Value)>,
    refused: usize,
}

async fn platform() -> (String, Arc<Mutex<Platform>>) {
    let state = Arc::new(Mutex::new(Platform::default()));
    let s2 = state.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let s = s2.clone();
            async move {
                let mut p = s.lock().expect("lock");
                // Refuse every third delivery: the gateway must retry.
                if (p.received.len() + p.refused) % 3 == 2 {
                    p.refused += 1;
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                p.received.push((key, body.0));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/events"), state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_returns_reviews_and_callbacks() {
    scenario(StoreBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_corrections_returns_reviews_and_callbacks() {
    scenario(StoreBackend::Postgres).await;
}

async fn scenario(backend: StoreBackend) {
    let dir = TempDir::new("handling");
    let store = TestStore::new(backend, &dir.0);
    let sim = bank_a(|c| {
        c.fail_permille = 300;
        c.fail_codes = vec!["A001".into(), "A004".into(), "Z999".into()];
        c.processing = Duration::from_millis(300);
    })
    .await;
    let (callback, received) = platform().await;
    let mut cfg = store.config(&sim.addr.to_string());
    cfg.events.callback_url = Some(callback);
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);
    let roster = gen_roster(&[
        "--items",
        "60",
        "--seed",
        "71",
        "--payout-bank",
        BANK_A,
        "--unit-ratio",
        "0",
    ]);
    let (s, a) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{a}");
    let batch_id = a["batch_id"].as_str().expect("id").to_owned();
    let b = api.wait_final(&batch_id, Duration::from_secs(60)).await;
    let failed = api.all_items(&batch_id, Some("failed")).await;
    let review = api.all_items(&batch_id, Some("review")).await;
    assert!(
        failed.len() >= 2 && !review.is_empty(),
        "need failed and review items: {b}"
    );
    assert!(review.iter().all(|i| i["fail_code"] == "Z999"));

    // Correct the first failed item: a new sub-batch that the bank pays.
    // Corrections here pay personal (ssc) accounts, so they correct persons' items: a unit's would be
    // refused first (E-ACCT-UNIT-PERSONAL), and which items fail depends on the simulator's draw.
    let persons: Vec<&serde_json::Value> = failed
        .iter()
        .filter(|i| i["recipient_kind"] == "person")
        .collect();
    assert!(persons.len() >= 2, "need two failed persons: {b}");
    let seq = persons[0]["seq"].as_i64().expect("seq");
    let good_account = gateway::roster::luhn_complete("621700555566667");
    let (s, c) = api
        .post(SUBMITTER, &format!("/v1/batches/{batch_id}/items/{seq}/correction"),
            Some(json!({"account_no": good_account, "account_kind": "ssc", "account_bank_code": "102241000019", "name": "张三"})))
        .await;
    assert_eq!(s, 202, "{c}");
    assert_eq!(c["status"], "pending");
    let reissue = c["reissue_batch_id"].as_str().expect("reissue").to_owned();
    // The same item cannot be corrected or returned twice.
    let (s, _) = api
        .post(SUBMITTER, &format!("/v1/batches/{batch_id}/items/{seq}/correction"),
            Some(json!({"account_no": good_account, "account_kind": "ssc", "account_bank_code": "102241000019", "name": "张三"})))
        .await;
    assert_eq!(s, 409);
    let (s, _) = api
        .post(
            SUBMITTER,
            &format!("/v1/batches/{batch_id}/items/{seq}/return"),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(s, 409);
    // A correction that breaks a rule is refused with its code.
    let seq2 = persons[1]["seq"].as_i64().expect("seq");
    let (s, v) = api
        .post(SUBMITTER, &format!("/v1/batches/{batch_id}/items/{seq2}/correction"),
            Some(json!({"account_no": "6217000000000001", "account_kind": "ssc", "account_bank_code": "102241000019", "name": "李四"})))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("E-ITEM-ACCOUNT-INVALID")),
        "{v}"
    );
    // Return the second one to the treasury.
    let (s, v) = api
        .post(
            SUBMITTER,
            &format!("/v1/batches/{batch_id}/items/{seq2}/return"),
            Some(json!({"reason": "户主已故，退回国库"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Review items: only an admin settles them.
    let rseq = review[0]["seq"].as_i64().expect("seq");
    let path = format!("/v1/batches/{batch_id}/items/{rseq}/resolve");
    let (s, _) = api
        .post(
            SUBMITTER,
            &path,
            Some(json!({"status": "succeeded", "reason": "bank confirmed by phone"})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, v) = api
        .post(
            ADMIN,
            &path,
            Some(json!({"status": "succeeded", "reason": "bank confirmed by phone"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = api
        .post(
            ADMIN,
            &path,
            Some(json!({"status": "failed", "reason": "again"})),
        )
        .await;
    assert_eq!(s, 409);

    let rb = api.wait_final(&reissue, Duration::from_secs(60)).await;
    let ri = api.all_items(&reissue, None).await;
    assert_eq!(ri.len(), 1);
    let (_, orig) = api
        .get(
            SUBMITTER,
            &format!("/v1/batches/{batch_id}/items?after_seq={}&limit=1", seq - 1),
        )
        .await;
    assert_eq!(orig["items"][0]["status"], "corrected");
    assert_eq!(rb["counts"]["accepted"], 1);
    // The simulator paid the re-issue under its own bank reference; nobody credited twice.
    assert_eq!(sim.ledger.accepted_batches(), 2);
    assert!(sim.ledger.max_payments_per_id() <= 1);

    // Every event reaches the callback, in order, each key its event id, despite refusals.
    let (_, ev) = api.get(AUDITOR, "/v1/events?limit=5000").await;
    let ids: Vec<String> = ev["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event_id"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(ids.len() > 5);
    let t = std::time::Instant::now();
    loop {
        let got: Vec<String> = received
            .lock()
            .expect("lock")
            .received
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        if got.len() >= ids.len() {
            let mut dedup = got.clone();
            dedup.dedup();
            assert_eq!(
                &dedup[..ids.len()],
                &ids[..],
                "delivered in order, keyed by event id"
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "only {} of {} events delivered",
            got.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    {
        let p = received.lock().expect("lock");
        assert!(p.refused > 0, "the platform refused some deliveries");
        assert!(
            p.received
                .iter()
                .all(|(k, body)| body["event_id"] == k.as_str())
        );
    }
    gw.shutdown().await;
    sim.shutdown().await;
    drop(store);
}
