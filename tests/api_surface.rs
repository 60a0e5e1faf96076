//! The API surface: every path of the OpenAPI document is served (never 404), auth is enforced on the
//! `/v1` routes, operations routes answer without a token, and `/metrics` never shows personal data.
mod common;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_paths_are_served_and_metrics_are_clean() {
    let dir = TempDir::new("surface");
    let db = dir.0.join("gw.db");
    let sim = bank_a(|_| {}).await;
    let gw = gateway(config(&db, &sim.addr.to_string())).await;
    let api = Api::new(gw.addr);
    let (s, doc) = api
        .send(api.http.get(format!("{}/openapi.json", api.base)))
        .await;
    assert_eq!(s, 200);
    let paths = doc["paths"].as_object().expect("paths");
    for (path, ops) in paths {
        let concrete = path
            .replace("{batch_id}", "b_x")
            .replace("{entry_id}", "bl_x");
        for (method, op) in ops.as_object().expect("ops") {
            let url = format!("{}{concrete}", api.base);
            let req = match method.as_str() {
                "get" => api.http.get(&url),
                "post" => api.http.post(&url),
                "delete" => api.http.delete(&url),
                "put" => api.http.put(&url),
                other => panic!("unexpected method {other}"),
            };
            let (status, body) = api.send(req).await;
            let needs_auth = op.get("security").is_some();
            if needs_auth {
                assert_eq!(status, 401, "{method} {path} without a token: {body}");
                assert_eq!(body["error"]["code"], "E-AUTH");
            } else {
                assert!(
                    status == 200 || status == 503,
                    "{method} {path}: {status} {body}"
                );
            }
        }
    }
    let (s, _) = api.get(SUBMITTER, "/v1/nothing-here").await;
    assert_eq!(s, 404);

    // Run a roster through, then look at the metrics text for any personal data.
    let roster = gen_roster(&["--items", "200", "--seed", "51", "--payout-bank", BANK_A]);
    let parsed: Value = serde_json::from_slice(&roster).expect("json");
    let (s, answer) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{answer}");
    api.wait_final(
        answer["batch_id"].as_str().expect("id"),
        std::time::Duration::from_secs(60),
    )
    .await;
    let metrics = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("gateway_batches_total"), "{metrics}");
    assert!(metrics.contains("gateway_bank_requests_total"), "{metrics}");
    for it in parsed["items"].as_array().expect("items") {
        for k in ["id_no", "account_no", "phone", "name"] {
            let v = it[k].as_str().expect("field");
            assert!(!metrics.contains(v), "metrics carry a {k}");
        }
    }
    let dash = api
        .http
        .get(format!("{}/dashboard", api.base))
        .send()
        .await
        .expect("dash")
        .text()
        .await
        .expect("text");
    assert!(dash.contains("402241000015"));
    gw.shutdown().await;
    sim.shutdown().await;
}
