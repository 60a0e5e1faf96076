//! The SLA end to end with drill-length deadlines and a bank that answers late: strikes land on the
//! right banks and roles; a third strike rates the payout bank unqualified by that department; the
//! previous year's recorded rating makes it disqualification-due; confirming blocks new batches from
//! that department only. A restart while a clock runs loses no strike and doubles none. The scenario
//! runs on SQLite and on PostgreSQL (a throwaway cluster).
mod common;

use std::time::{Duration, Instant};

use bank_profiles::DurationText;
use common::*;
use serde_json::{Value, json};

const D1: &str = "220623-NYNC";
const D2: &str = "220122-NYNC";

fn roster(seed: u32, dept: &str, batch_no: &str) -> Vec<u8> {
    let raw = gen_roster(&[
        "--items",
        "30",
        "--seed",
        &seed.to_string(),
        "--batch-no",
        batch_no,
        "--payout-bank",
        BANK_A,
    ]);
    let mut v: Value = serde_json::from_slice(&raw).expect("json");
    v["department_code"] = json!(dept);
    serde_json::to_vec(&v).expect("json")
}

async fn events_of(api: &Api, kind: &str) -> Vec<Value> {
    let (s, v) = api.get(AUDITOR, "/v1/events?limit=5000").await;
    assert_eq!(s, 200, "{v}");
    v["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

async fn wait_for(limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let t = Instant::now();
    while !check().await {
        assert!(t.elapsed() < limit, "condition not reached in {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_bank_is_struck_rated_and_disqualified_for_one_department() {
    scenario(StoreBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_late_bank_is_struck_rated_and_disqualified_for_one_department() {
    scenario(StoreBackend::Postgres).await;
}

async fn scenario(backend: StoreBackend) {
    let dir = TempDir::new("sla");
    let store = TestStore::new(backend, &dir.0);
    let sim = bank_a(|c| c.processing = Duration::from_secs(3)).await;
    let cfg = || {
        let mut c = store.config(&sim.addr.to_string());
        c.sla.deadline = "1s".into();
        if let Some(b) = c.banks.get_mut(BANK_A) {
            b.poll_interval = Some(DurationText(Duration::from_millis(300)));
        }
        c
    };
    let mut gw = gateway(cfg()).await;
    let mut api = Api::new(gw.addr);

    let mut batch_ids = Vec::new();
    for (i, seed) in [61u32, 62, 63].into_iter().enumerate() {
        let (s, a) = api
            .submit_json(SUBMITTER, roster(seed, D1, &format!("SLA-D1-{i}")))
            .await;
        assert_eq!(s, 202, "{a}");
        let id = a["batch_id"].as_str().expect("id").to_owned();
        let (s, q) = api
            .post(SUBMITTER, &format!("/v1/batches/{id}/query"), None)
            .await;
        assert_eq!(s, 202, "{q}");
        assert_eq!(q["status"], "running");
        // A second click while the clock runs does not restart it.
        let (_, q2) = api
            .post(SUBMITTER, &format!("/v1/batches/{id}/query"), None)
            .await;
        assert_eq!(q2["query_id"], q["query_id"]);
        assert_eq!(q2["due_at"], q["due_at"]);
        batch_ids.push(id);
        if i == 2 {
            // Stop while the third clock runs; come back after its deadline.
            gw.shutdown().await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            gw = gateway(cfg()).await;
            api = Api::new(gw.addr);
        }
    }
    for id in &batch_ids {
        let b = api.wait_final(id, Duration::from_secs(60)).await;
        assert_eq!(b["query"]["late"], true, "{b}");
    }
    // Each query: one payout strike for bank A (the account banks are judged on their confirmation times).
    let api2 = api.clone();
    wait_for(Duration::from_secs(20), async || {
        let (_, s) = api2
            .get(AUDITOR, &format!("/v1/assessments/{BANK_A}/strikes"))
            .await;
        s["strikes"].as_array().map_or(0, Vec::len) == 3
    })
    .await;
    let (_, strikes) = api
        .get(AUDITOR, &format!("/v1/assessments/{BANK_A}/strikes"))
        .await;
    for s in strikes["strikes"].as_array().expect("strikes") {
        assert_eq!(s["roles"], json!(["payout"]), "{s}");
        assert!(
            s["fed_back_at"].is_null(),
            "struck at the deadline, before the result: {s}"
        );
        assert_eq!(s["department_code"], D1);
        assert!(batch_ids.contains(&s["batch_id"].as_str().unwrap_or("").to_owned()));
    }
    // Account banks other than A confirmed after the deadline: struck in the account role, once per query
    // (judged when the results are in: give the evaluator a moment after the last result).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, other) = api
        .get(AUDITOR, "/v1/assessments/105241000012/strikes")
        .await;
    let other = other["strikes"].as_array().cloned().expect("strikes");
    let mut queries: Vec<&str> = other
        .iter()
        .map(|s| s["query_id"].as_str().unwrap_or(""))
        .collect();
    queries.sort_unstable();
    queries.dedup();
    assert_eq!(
        queries.len(),
        other.len(),
        "at most one strike per bank per query"
    );
    assert!(
        !other.is_empty(),
        "bank 105241000012 holds accounts in these rosters and confirmed late"
    );
    for s in &other {
        assert_eq!(s["roles"], json!(["account"]), "{s}");
    }
    assert!(
        events_of(&api, "rating")
            .await
            .iter()
            .any(|e| e["bank_code"] == BANK_A && e["data"]["rating"] == "unqualified")
    );
    assert!(events_of(&api, "disqualification.due").await.is_empty());

    let year: i64 = api.get(AUDITOR, "/v1/assessments").await.1["year"]
        .as_i64()
        .expect("year");
    let (s, v) = api
        .post(
            ADMIN,
            &format!("/v1/banks/{BANK_A}/disqualify"),
            Some(json!({"department_code": D1, "reason": "x"})),
        )
        .await;
    assert_eq!(s, 409, "not due yet: {v}");
    // Last year's rating, taken over from the former platform: now due.
    let (s, v) = api
        .send(api.http.put(format!("{}/v1/assessments/{BANK_A}/{}", api.base, year - 1)).bearer_auth(ADMIN)
            .json(&json!({"department_code": D1, "rating": "unqualified", "reason": "原一卡通平台评价"})))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(events_of(&api, "disqualification.due").await.len(), 1);
    let (_, a) = api
        .get(AUDITOR, &format!("/v1/assessments?year={year}"))
        .await;
    let rows = a["rows"].as_array().expect("rows");
    let row = rows
        .iter()
        .find(|r| r["bank_code"] == BANK_A && r["department_code"] == D1)
        .expect("agreement row");
    assert_eq!(row["queries"], 3);
    assert_eq!(row["on_time"], 0);
    assert_eq!(row["strikes"], 3);
    assert_eq!(row["rating"], "unqualified");
    assert_eq!(row["previous_rating"], "unqualified");
    assert_eq!(row["disqualification_due"], true);
    let province = rows
        .iter()
        .find(|r| r["bank_code"] == BANK_A && r["department_code"].is_null())
        .expect("province row");
    assert_eq!(province["departments_unqualified"], 1);
    assert_eq!(province["strikes"], 3);
    let account_row = rows
        .iter()
        .find(|r| r["bank_code"] == "105241000012" && r["department_code"].is_null());
    assert_eq!(
        account_row.and_then(|r| r["strikes"].as_u64()).unwrap_or(0),
        other.len() as u64
    );
    let csv = api
        .http
        .get(format!(
            "{}/v1/assessments?year={year}&format=csv",
            api.base
        ))
        .bearer_auth(AUDITOR)
        .send()
        .await
        .expect("csv");
    let bytes = csv.bytes().await.expect("bytes");
    assert!(bytes.starts_with("\u{FEFF}bank_code,department_code".as_bytes()));

    let (s, v) = api
        .post(
            ADMIN,
            &format!("/v1/banks/{BANK_A}/disqualify"),
            Some(json!({"department_code": D1, "reason": "两年不合格"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, banks) = api.get(SUBMITTER, "/v1/banks").await;
    assert_eq!(banks["banks"][0]["disqualified_for"], json!([D1]));
    let (s, v) = api
        .submit_json(SUBMITTER, roster(64, D1, "SLA-D1-after"))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("E-BANK-NOT-ELIGIBLE")),
        "{v}"
    );
    let (s, v) = api
        .submit_json(SUBMITTER, roster(65, D2, "SLA-D2-after"))
        .await;
    assert_eq!(s, 202, "another department is not affected: {v}");
    // A click after the final result is on time and gives the stored result.
    let id = v["batch_id"].as_str().expect("id").to_owned();
    api.wait_final(&id, Duration::from_secs(60)).await;
    let (s, q) = api
        .post(SUBMITTER, &format!("/v1/batches/{id}/query"), None)
        .await;
    assert_eq!(
        (s, q["status"].as_str(), q["late"].as_bool()),
        (200, Some("final"), Some(false)),
        "{q}"
    );

    // Nothing doubled after the restart and further evaluation passes.

    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, strikes) = api
        .get(AUDITOR, &format!("/v1/assessments/{BANK_A}/strikes"))
        .await;
    assert_eq!(strikes["strikes"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        events_of(&api, "strike")
            .await
            .iter()
            .filter(|e| e["bank_code"] == BANK_A)
            .count(),
        3
    );
    // A strike is voided by a correction record (admin), never changed: the count drops, the record stays.
    let first = strikes_before_void(&api).await;
    let (s, v) = api
        .post(
            ADMIN,
            &format!("/v1/assessments/{BANK_A}/strikes/{first}/void"),
            Some(json!({"reason": "delay caused by the gateway's network"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = api
        .post(
            ADMIN,
            &format!("/v1/assessments/{BANK_A}/strikes/{first}/void"),
            Some(json!({"reason": "again"})),
        )
        .await;
    assert_eq!(s, 409);
    let (_, a) = api
        .get(
            AUDITOR,
            &format!("/v1/assessments?year={year}&department_code={D1}"),
        )
        .await;
    let row = a["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["bank_code"] == BANK_A)
        .cloned()
        .expect("row");
    assert_eq!(row["strikes"], 2);
    assert_eq!(row["rating"], "qualified");
    let (_, strikes) = api
        .get(AUDITOR, &format!("/v1/assessments/{BANK_A}/strikes"))
        .await;
    assert_eq!(strikes["strikes"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        events_of(&api, "strike")
            .await
            .iter()
            .filter(|e| e["bank_code"] == BANK_A)
            .count(),
        3
    );
    gw.shutdown().await;
    sim.shutdown().await;
    drop(store);
}

async fn strikes_before_void(api: &Api) -> String {
    let (_, strikes) = api
        .get(AUDITOR, &format!("/v1/assessments/{BANK_A}/strikes"))
        .await;
    strikes["strikes"][0]["strike_id"]
        .as_str()
        .expect("strike")
        .to_owned()
}
