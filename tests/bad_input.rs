//! Bad input, every rule and code of rules.md: the right status and code, never a 500, the store unchanged.
mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};

fn roster(items: usize, seed: u32, batch_no: &str) -> Value {
    let out = gen_roster(&[
        "--items",
        &items.to_string(),
        "--seed",
        &seed.to_string(),
        "--batch-no",
        batch_no,
        "--payout-bank",
        BANK_A,
        "--unit-ratio",
        "0",
    ]);
    serde_json::from_slice(&out).expect("roster json")
}

fn fix_totals(r: &mut Value) {
    let items = r["items"].as_array().expect("items");
    let sum: i64 = items
        .iter()
        .map(|i| i["amount_fen"].as_i64().unwrap_or(0))
        .sum();
    r["total_count"] = json!(items.len());
    r["total_amount_fen"] = json!(sum);
}

struct Env {
    _dir: TempDir,
    db: std::path::PathBuf,
    api: Api,
    gw: Option<gateway::server::Running>,
    sim: Option<simulators::SimHandle>,
}

async fn env() -> Env {
    let dir = TempDir::new("bad");
    let db = dir.0.join("gw.db");
    let sim = bank_a(|_| {}).await;
    let gw = gateway(config(&db, &sim.addr.to_string())).await;
    let api = Api::new(gw.addr);
    Env {
        _dir: dir,
        db,
        api,
        gw: Some(gw),
        sim: Some(sim),
    }
}

impl Env {
    async fn stop(mut self) {
        if let Some(g) = self.gw.take() {
            g.shutdown().await;
        }
        if let Some(s) = self.sim.take() {
            s.shutdown().await;
        }
    }
}

/// Rows a refused request must not touch (events are left out: the bank worker may be writing them for
/// batches accepted earlier in the same test).
async fn snapshot(db: &Path) -> (i64, i64, i64, i64) {
    (
        count_rows(db, "batches").await,
        count_rows(db, "items").await,
        count_rows(db, "parts").await,
        count_rows(db, "blacklist").await,
    )
}

async fn expect_error(e: &Env, body: Vec<u8>, status: u16, code: &str) -> Value {
    let before = snapshot(&e.db).await;
    let (s, v) = e.api.submit_json(SUBMITTER, body).await;
    assert_eq!(s, status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert_eq!(
        snapshot(&e.db).await,
        before,
        "the store changed after a refused request"
    );
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_requests_are_400_naming_the_field() {
    let e = env().await;
    let base = roster(3, 21, "BAD-STRUCT-1");
    expect_error(&e, b"{\"batch_no\": ".to_vec(), 400, "E-REQUEST-INVALID").await;
    expect_error(&e, b"[1,2,3]".to_vec(), 400, "E-REQUEST-INVALID").await;

    let mut r = base.clone();
    r["items"][1]["amount_fen"] = json!("288265");
    let v = expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        400,
        "E-REQUEST-INVALID",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("items[1].amount_fen"),
        "{v}"
    );

    let mut r = base.clone();
    r["items"][0]["amount_fen"] = json!(12.5);
    let v = expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        400,
        "E-REQUEST-INVALID",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("items[0].amount_fen"),
        "{v}"
    );

    let mut r = base.clone();
    r["items"][2]["account_kind"] = json!("savings");
    let v = expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        400,
        "E-REQUEST-INVALID",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("items[2].account_kind"),
        "{v}"
    );

    let mut r = base.clone();
    r["items"][0].as_object_mut().expect("obj").remove("phone");
    let v = expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        400,
        "E-REQUEST-INVALID",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("phone"),
        "{v}"
    );

    let mut r = base.clone();
    r.as_object_mut().expect("obj").remove("department_code");
    expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        400,
        "E-REQUEST-INVALID",
    )
    .await;

    let mut r = base.clone();
    r["region_code"] = json!("22062");
    let v = expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        400,
        "E-REQUEST-INVALID",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("region_code"),
        "{v}"
    );

    let mut r = base.clone();
    r["payout_bank"] = json!("40224100001");
    expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        400,
        "E-REQUEST-INVALID",
    )
    .await;

    let mut r = base.clone();
    r["items"][0]["account_bank_code"] = json!("10224100001X");
    expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        400,
        "E-REQUEST-INVALID",
    )
    .await;

    let mut r = base.clone();
    r["items"][2]["seq"] = json!(1);
    let v = expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        400,
        "E-REQUEST-INVALID",
    )
    .await;
    assert!(
        v["error"]["message"].as_str().unwrap_or("").contains("seq"),
        "{v}"
    );

    let mut r = base.clone();
    r["items"][2]["seq"] = json!(0);
    expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        400,
        "E-REQUEST-INVALID",
    )
    .await;

    let mut r = base.clone();
    r["items"][2]["seq"] = json!(-4);
    expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        400,
        "E-REQUEST-INVALID",
    )
    .await;

    // Structure is checked before rules: a prior-year roster with a wrong type is still 400.
    let mut r = base.clone();
    r["budget_year"] = json!(2019);
    r["items"][0]["amount_fen"] = json!("1");
    expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        400,
        "E-REQUEST-INVALID",
    )
    .await;

    // Wrong content type, no token, wrong token, wrong role.
    let (s, v) = e
        .api
        .send(
            e.api
                .http
                .post(format!("{}/v1/batches", e.api.base))
                .bearer_auth(SUBMITTER)
                .header("content-type", "text/plain")
                .body("x"),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (415, Some("E-REQUEST-INVALID"))
    );
    let (s, v) = e
        .api
        .send(
            e.api
                .http
                .post(format!("{}/v1/batches", e.api.base))
                .json(&base),
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("E-AUTH")));
    let (s, v) = e
        .api
        .submit_json("not-a-token", serde_json::to_vec(&base).expect("json"))
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("E-AUTH")));
    let (s, v) = e
        .api
        .submit_json(AUDITOR, serde_json::to_vec(&base).expect("json"))
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("E-AUTH")));
    let (s, v) = e.api.get(SUBMITTER, "/v1/batches/b_nope").await;
    assert_eq!(s, 404, "{v}");
    let (s, _) = e
        .api
        .get(SUBMITTER, "/v1/batches/b_nope/items?limit=abc")
        .await;
    assert_eq!(s, 400);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_body_is_413() {
    let e = env().await;
    let mut body = Vec::with_capacity(100 * 1024 * 1024 + 64);
    body.extend_from_slice(b"{\"batch_no\":\"BIG\",\"pad\":\"");
    body.resize(100 * 1024 * 1024, b'x');
    body.extend_from_slice(b"\"}");
    let before = snapshot(&e.db).await;
    let (s, v) = e.api.submit_json(SUBMITTER, body).await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["error"]["code"], "E-REQUEST-TOO-LARGE");
    assert_eq!(snapshot(&e.db).await, before);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_rules_refuse_the_whole_roster() {
    let e = env().await;
    let base = roster(4, 22, "BAD-BATCH-1");

    let mut r = base.clone();
    r["payout_bank"] = json!("999241000019");
    expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        422,
        "E-BANK-NOT-ELIGIBLE",
    )
    .await;

    let mut r = base.clone();
    r["budget_year"] = json!(2025);
    r["period"] = json!("2025");
    expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        422,
        "E-BATCH-PRIOR-YEAR",
    )
    .await;

    let mut r = base.clone();
    r.as_object_mut().expect("obj").remove("indicator_no");
    expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        422,
        "E-BATCH-INDICATOR",
    )
    .await;

    let mut r = base.clone();
    r["supervised"] = json!(false);
    expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        422,
        "E-BATCH-INDICATOR",
    )
    .await;

    // Several batch rules fail: the first code of the table wins.
    let mut r = base.clone();
    r["supervised"] = json!(false);
    r["budget_year"] = json!(2025);
    r["payout_bank"] = json!("999241000019");
    expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        422,
        "E-BANK-NOT-ELIGIBLE",
    )
    .await;

    let mut r = base.clone();
    r["total_amount_fen"] = json!(r["total_amount_fen"].as_i64().unwrap_or(0) + 1);
    expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        422,
        "E-BATCH-TOTALS",
    )
    .await;

    let mut r = base.clone();
    r["total_count"] = json!(5);
    expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        422,
        "E-BATCH-TOTALS",
    )
    .await;

    // Every item rejected: 422 E-BATCH-EMPTY listing each one.
    let mut r = base.clone();
    for it in r["items"].as_array_mut().expect("items") {
        it["amount_fen"] = json!(0);
    }
    fix_totals(&mut r);
    let v = expect_error(
        &e,
        serde_json::to_vec(&r).expect("json"),
        422,
        "E-BATCH-EMPTY",
    )
    .await;
    assert_eq!(
        v["error"]["details"].as_array().map(Vec::len),
        Some(4),
        "{v}"
    );
    assert!(
        v["error"]["details"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|d| d["code"] == "E-ITEM-AMOUNT")
    );

    // A refused batch_no is not remembered: the corrected roster is accepted.
    let (s, v) = e
        .api
        .submit_json(SUBMITTER, serde_json::to_vec(&base).expect("json"))
        .await;
    assert_eq!(s, 202, "{v}");
    // Same batch_no, another body: 409; the same body with other key order and spacing: 200.
    let mut other = base.clone();
    other["items"][0]["memo"] = json!("changed");
    expect_error(
        &e,
        serde_json::to_vec(&other).expect("json"),
        409,
        "E-BATCH-CONFLICT",
    )
    .await;
    let pretty = serde_json::to_vec_pretty(&base).expect("json");
    let (s, again) = e.api.submit_json(SUBMITTER, pretty).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again, v);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_rules_reject_items_with_their_codes() {
    let e = env().await;
    // Blacklist an id and an account first (admin).
    let mut r = roster(12, 23, "ITEMS-1");
    let id_black = r["items"][0]["id_no"].as_str().expect("id").to_owned();
    let acct_black = r["items"][1]["account_no"]
        .as_str()
        .expect("acct")
        .to_owned();
    let (s, v) = e
        .api
        .post(
            ADMIN,
            "/v1/blacklist",
            Some(json!({"kind": "id_no", "value": id_black, "reason": "冒领"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, _) = e
        .api
        .post(
            ADMIN,
            "/v1/blacklist",
            Some(json!({"kind": "account_no", "value": acct_black, "reason": "test"})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = e
        .api
        .post(
            SUBMITTER,
            "/v1/blacklist",
            Some(json!({"kind": "account_no", "value": "1", "reason": "x"})),
        )
        .await;
    assert_eq!(s, 403, "blacklist changes are admin only");

    let items = r["items"].as_array_mut().expect("items");
    // 2: id check character wrong, and amount 0 too: the id code comes first.
    let id = items[2]["id_no"].as_str().expect("id").to_owned();
    let last = if id.ends_with('0') { '1' } else { '0' };
    items[2]["id_no"] = json!(format!("{}{last}", &id[..17]));
    items[2]["amount_fen"] = json!(0);
    // 3: Luhn.
    let a = items[3]["account_no"].as_str().expect("acct").to_owned();
    let d = a.as_bytes()[a.len() - 1] - b'0';
    items[3]["account_no"] = json!(format!("{}{}", &a[..a.len() - 1], (d + 1) % 10));
    // 4: amount 0.
    items[4]["amount_fen"] = json!(0);
    // 5: a unit on a personal account.
    items[5]["recipient_kind"] = json!("unit");
    items[5]["id_no"] = json!("93220623P73R84RHW4");
    items[5]["account_kind"] = json!("personal");
    // 6: duplicate claim of item 7's id (the later one is rejected).
    items[7]["id_no"] = items[6]["id_no"].clone();
    // 8: a name with a character outside GBK.
    items[8]["name"] = json!("王𠀀明");
    // 9: a person paid to a personal account: accepted with a warning.
    items[9]["account_kind"] = json!("personal");
    // 10: same, but exempt: no warning. Lowercase x is accepted.
    items[10]["account_kind"] = json!("personal");
    items[10]["ssc_exempt"] = json!(true);
    items[11]["id_no"] = json!("11010519491231002x");
    // A phone longer than bank A's field.
    items[1]["phone"] = json!("138000000001");
    fix_totals(&mut r);
    let (s, v) = e
        .api
        .submit_json(SUBMITTER, serde_json::to_vec(&r).expect("json"))
        .await;
    assert_eq!(s, 202, "{v}");
    let codes: Vec<(i64, String)> = v["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|x| {
            (
                x["seq"].as_i64().unwrap_or(0),
                x["code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            (1, "E-ITEM-BLACKLISTED".into()),
            (2, "E-ITEM-BLACKLISTED".into()),
            (3, "E-ITEM-ID-INVALID".into()),
            (4, "E-ITEM-ACCOUNT-INVALID".into()),
            (5, "E-ITEM-AMOUNT".into()),
            (6, "E-ACCT-UNIT-PERSONAL".into()),
            (8, "E-ITEM-DUPLICATE".into()),
            (9, "E-ITEM-UNENCODABLE".into()),
        ],
        "{v}"
    );
    for x in v["rejected"].as_array().expect("rejected") {
        let m = x["message"].as_str().unwrap_or("");
        assert!(m.starts_with(&format!("item {}:", x["seq"])), "{m}");
        assert!(
            !m.contains(&id_black) && !m.contains(&acct_black),
            "no personal data in messages: {m}"
        );
    }
    let unenc = &v["rejected"][7]["message"];
    assert!(
        unenc.as_str().unwrap_or("").contains("name")
            && unenc.as_str().unwrap_or("").contains("character 2"),
        "{unenc}"
    );
    let warns: Vec<(i64, String)> = v["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|x| {
            (
                x["seq"].as_i64().unwrap_or(0),
                x["code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(warns, vec![(10, "W-ACCT-NOT-SSC".into())], "{v}");
    assert_eq!(v["accepted_count"], 4);
    let batch_id = v["batch_id"].as_str().expect("id").to_owned();
    // Item 12 stored with X; seen in full only by an admin, and that read is audited.
    let (_, page) = e
        .api
        .get(ADMIN, &format!("/v1/batches/{batch_id}/items?after_seq=11"))
        .await;
    assert_eq!(page["items"][0]["id_no"], "11010519491231002X");
    let (_, page) = e
        .api
        .get(
            SUBMITTER,
            &format!("/v1/batches/{batch_id}/items?after_seq=11"),
        )
        .await;
    assert_eq!(page["items"][0]["id_no"], "1101**********002X");
    let (_, audit) = e.api.get(AUDITOR, "/v1/audit").await;
    assert!(
        audit["records"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["action"] == "read-personal-data"),
        "{audit}"
    );
    let (_, rejected) = e
        .api
        .get(
            SUBMITTER,
            &format!("/v1/batches/{batch_id}/items?status=rejected"),
        )
        .await;
    assert_eq!(rejected["items"].as_array().map(Vec::len), Some(8));
    assert_eq!(rejected["items"][0]["status"], "rejected");

    // Across batches: the accepted claims block the same id + subsidy + period in a new roster.
    let mut r2 = roster(2, 24, "ITEMS-2");
    r2["items"][0]["id_no"] = r["items"][11]["id_no"].clone();
    fix_totals(&mut r2);
    let (s, v2) = e
        .api
        .submit_json(SUBMITTER, serde_json::to_vec(&r2).expect("json"))
        .await;
    assert_eq!(s, 202, "{v2}");
    assert_eq!(v2["rejected"][0]["code"], "E-ITEM-DUPLICATE");
    assert_eq!(v2["accepted_count"], 1);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_and_json_are_the_same_roster() {
    let e = env().await;
    let r = roster(50, 25, "NDJSON-1");
    let nd = gen_roster(&[
        "--items",
        "50",
        "--seed",
        "25",
        "--batch-no",
        "NDJSON-1",
        "--payout-bank",
        BANK_A,
        "--unit-ratio",
        "0",
        "--format",
        "ndjson",
    ]);
    let (s, v) = e
        .api
        .send(
            e.api
                .http
                .post(format!("{}/v1/batches", e.api.base))
                .bearer_auth(SUBMITTER)
                .header("content-type", "application/x-ndjson")
                .body(nd.clone()),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["accepted_count"], 50);
    let (s, again) = e
        .api
        .submit_json(SUBMITTER, serde_json::to_vec(&r).expect("json"))
        .await;
    assert_eq!(
        s, 200,
        "the JSON form of the same roster is the same value: {again}"
    );
    // A broken NDJSON line names the item.
    let text =
        String::from_utf8(nd)
            .expect("utf8")
            .replacen("\"amount_fen\": ", "\"amount_fen\": \"", 1);
    let (s, v) = e
        .api
        .send(
            e.api
                .http
                .post(format!("{}/v1/batches", e.api.base))
                .bearer_auth(SUBMITTER)
                .header("content-type", "application/x-ndjson")
                .body(text),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    e.stop().await;
}
