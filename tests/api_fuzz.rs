//! The API under random and malformed requests (a seeded generator, 20,000 cases): random methods, paths, query strings, headers, tokens and bodies, and mutations of valid
//! requests that make them invalid, against an in-process gateway holding a paid batch, its failed
//! items and a blacklist entry.
//!
//! For every answer: never a 5xx (so never a panic: a caught panic is a 500), and every error answer
//! has the contract's error body (`{"error": {"code": "E-...", "message": ..., "details": [...]}}`).
//! After all cases: every table of the store is exactly as before (row counts and the content of
//! every row), and the gateway still answers.
//!
//! Only requests that must be refused are made (a valid token never comes with a well-formed change:
//! its body is malformed, or the resource does not exist, or the role may not make it), so "nothing
//! changed" is the expected outcome, not a hope. The exception is the `leases` table, which the
//! gateway's own background jobs renew while it runs.
//!
//! `API_FUZZ_SEED` and `API_FUZZ_CASES` change the seed (default 8) and the number of cases (default
//! 20,000, about 10 s in a debug build). A failing case prints its number and request; each case's
//! generator is seeded from the seed and its number, so the same seed replays it.
mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What the generator knows of the store: real ids, to aim at existing resources.
#[derive(Clone)]
struct Known {
    batch_id: String,
    failed_seqs: Vec<i64>,
    entry_id: String,
    roster: Value,
}

/// One generated request.
#[derive(Debug, Clone)]
struct Case {
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(&v[..v.len().min(80)])))
            .collect();
        let body = self.body.as_ref().map(|b| {
            let text = String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned();
            format!("{} bytes: {text}", b.len())
        });
        write!(
            f,
            "{} {} {:?} body {:?}",
            self.method,
            &self.path[..self.path.len().min(300)],
            headers,
            body
        )
    }
}

const TOKENS_PRIVILEGED: [&str; 2] = [SUBMITTER, ADMIN];

const LONG: &str = concat!(
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
);

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

/// Text meant to upset parsers: control characters, odd Unicode, huge numbers, encodings.
fn nasty_text(rng: &mut StdRng) -> String {
    let atoms = [
        "",
        " ",
        "0",
        "-1",
        "1e308",
        "99999999999999999999999",
        "NaN",
        "null",
        "true",
        "%",
        "%zz",
        "%00",
        "%FF%FE",
        "%2e%2e",
        "..",
        "../..",
        "//",
        "\\",
        "'",
        "\"",
        "<script>",
        "${x}",
        "\u{0}",
        "\u{7f}",
        "\u{202e}",
        "\u{feff}",
        "𠀀",
        "陈",
        "鿿",
        "\u{fffd}",
        "🙂",
        LONG,
        "220203196602074567",
        "6217995505724754105",
        "b_01J0000000000000000000000",
        "x;y=z",
        "a&b=c",
        "#frag",
        "?",
        "=",
        "\t",
        " ",
    ];
    let n = rng.random_range(0..4);
    (0..n).map(|_| *pick(rng, &atoms)).collect()
}

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let n = rng.random_range(0..=max);
    (0..n).map(|_| rng.random()).collect()
}

/// A body that no handler can accept: not JSON, the wrong JSON type, or a valid template with an
/// unknown field, a field of the wrong type or a missing field (every body type denies unknown
/// fields and requires its fields).
fn malformed_body(rng: &mut StdRng, template: &Value) -> Vec<u8> {
    match rng.random_range(0..9) {
        // Now and then larger than `server.max_json_bytes` (1 MiB here): 413.
        0 if rng.random_bool(0.05) => vec![b' '; 1_200_000],
        0 => random_bytes(rng, 2048),
        1 => {
            let mut t = serde_json::to_vec(template).expect("json");
            let cut = rng.random_range(0..t.len().max(1));
            t.truncate(cut);
            t
        }
        2 => pick(
            rng,
            &[
                b"[]".as_slice(),
                b"null",
                b"1",
                b"\"x\"",
                b"true",
                b"{",
                b"}",
                b"{\"a\":}",
                b"\xff\xfe{}",
                b"{}{}",
            ],
        )
        .to_vec(),
        3 => {
            // Deep nesting.
            let depth = rng.random_range(100..5000);
            let mut v = "[".repeat(depth).into_bytes();
            v.extend("]".repeat(depth).into_bytes());
            v
        }
        4 => {
            let mut t = template.clone();
            if let Some(o) = t.as_object_mut() {
                o.insert(
                    format!("unknown_{}", rng.random::<u16>()),
                    json!(nasty_text(rng)),
                );
            }
            serde_json::to_vec(&t).expect("json")
        }
        5 => {
            // A field of the wrong type.
            let mut t = template.clone();
            if let Some(o) = t.as_object_mut() {
                let keys: Vec<String> = o.keys().cloned().collect();
                if !keys.is_empty() {
                    let k = pick(rng, &keys).clone();
                    let wrong = pick(
                        rng,
                        &[
                            json!(1),
                            json!([]),
                            json!({}),
                            json!(null),
                            json!(true),
                            json!(-1.5),
                        ],
                    )
                    .clone();
                    o.insert(k, wrong);
                }
            }
            serde_json::to_vec(&t).expect("json")
        }
        6 => {
            // A required field missing, and an unknown one to be sure.
            let mut t = template.clone();
            if let Some(o) = t.as_object_mut() {
                let keys: Vec<String> = o.keys().cloned().collect();
                if let Some(k) = keys.first() {
                    o.remove(k);
                }
                o.insert("x".into(), json!(1));
            }
            serde_json::to_vec(&t).expect("json")
        }
        7 => {
            // Duplicate keys and invalid UTF-8 in a string.
            let mut v = b"{\"reason\":\"a\",\"reason\":\"".to_vec();
            v.extend([0xC3, 0x28, 0xA0, 0xA1]);
            v.extend(b"\"}");
            v
        }
        _ => {
            // Very long string values: still unknown fields.
            let mut t = template.clone();
            if let Some(o) = t.as_object_mut() {
                o.insert(
                    "zz".into(),
                    json!("x".repeat(rng.random_range(1000..200_000))),
                );
            }
            serde_json::to_vec(&t).expect("json")
        }
    }
}

/// A roster the intake must refuse as a whole (structure or a batch rule), never partly accept.
fn broken_roster(rng: &mut StdRng, roster: &Value) -> (Vec<u8>, &'static str) {
    let mut r = roster.clone();
    // A new batch_no, so a refusal cannot be the replay of the stored answer.
    r["batch_no"] = json!(format!("FUZZ-{}", rng.random::<u32>()));
    let n = r["items"].as_array().map_or(0, Vec::len);
    // Never item 0: case 3 copies its seq onto item i.
    let i = rng.random_range(1..n.max(2));
    match rng.random_range(0..12) {
        0 => r["items"][i]["amount_fen"] = json!("100"),
        1 => r["items"][i]["amount_fen"] = json!(1.5),
        2 => r["items"][i]["seq"] = json!(-1),
        3 => r["items"][i]["seq"] = r["items"][0]["seq"].clone(),
        4 => r["region_code"] = json!(nasty_text(rng) + "x"),
        5 => r["payout_bank"] = json!("12"),
        6 => {
            if let Some(o) = r.as_object_mut() {
                o.remove("department_code");
            }
        }
        7 => r["total_count"] = json!(n + 1),
        8 => r["total_amount_fen"] = json!(-5),
        9 => r["items"][i]["recipient_kind"] = json!("alien"),
        10 => r["budget_year"] = json!(1999),
        _ => {
            let mut bytes = serde_json::to_vec(&r).expect("json");
            let cut = rng.random_range(1..bytes.len());
            bytes.truncate(cut);
            return (bytes, "application/json");
        }
    }
    if rng.random_bool(0.3) {
        // The same as NDJSON: header line, then one line per item.
        let items = r["items"].as_array().cloned().unwrap_or_default();
        let mut head = r.clone();
        if let Some(o) = head.as_object_mut() {
            o.remove("items");
        }
        let mut out = serde_json::to_vec(&head).expect("json");
        out.push(b'\n');
        for it in items {
            out.extend(serde_json::to_vec(&it).expect("json"));
            out.push(b'\n');
        }
        return (out, "application/x-ndjson");
    }
    (serde_json::to_vec(&r).expect("json"), "application/json")
}

fn token_header(rng: &mut StdRng) -> (Option<Vec<u8>>, Option<&'static str>) {
    match rng.random_range(0..14) {
        0 => (None, None),
        1 => (Some(b"Bearer ".to_vec()), None),
        2 => (Some(b"Basic dXNlcjpwYXNz".to_vec()), None),
        3 => (
            Some(format!("Bearer {}", nasty_text(rng)).into_bytes()),
            None,
        ),
        4 => {
            let mut v = b"Bearer ".to_vec();
            v.extend(random_bytes(rng, 64).into_iter().map(|b| b | 0x80));
            (Some(v), None)
        }
        5 => (
            Some(format!("Bearer {}", "t".repeat(20_000)).into_bytes()),
            None,
        ),
        6 => (Some(format!("Bearer {SUBMITTER}x").into_bytes()), None),
        7 => (
            Some(format!("bearer  {AUDITOR} ").into_bytes()),
            Some(AUDITOR),
        ),
        8 | 9 => (
            Some(format!("Bearer {AUDITOR}").into_bytes()),
            Some(AUDITOR),
        ),
        10 | 11 => (
            Some(format!("Bearer {SUBMITTER}").into_bytes()),
            Some(SUBMITTER),
        ),
        _ => (Some(format!("Bearer {ADMIN}").into_bytes()), Some(ADMIN)),
    }
}

fn query_string(rng: &mut StdRng) -> String {
    if rng.random_bool(0.4) {
        return String::new();
    }
    let keys = [
        "limit",
        "after",
        "after_seq",
        "status",
        "year",
        "department_code",
        "format",
        "x",
        "",
        "limit[]",
        "status",
    ];
    let values = [
        "0",
        "-1",
        "1",
        "10000",
        "10001",
        "abc",
        "1.5",
        "99999999999999999999",
        "failed",
        "final",
        "csv",
        "xml",
        "",
        "%zz",
        "%00",
        "2026",
        "1999",
        "2147483648",
        "陈",
    ];
    let n = rng.random_range(1..5);
    let parts: Vec<String> = (0..n)
        .map(|_| {
            let v = if rng.random_bool(0.2) {
                nasty_text(rng)
            } else {
                (*pick(rng, &values)).to_owned()
            };
            format!("{}={}", pick(rng, &keys), v)
        })
        .collect();
    format!("?{}", parts.join("&"))
}

/// One case. Writes with a token allowed to make them always carry a malformed body or aim at
/// something that does not exist; body-less changes (the click, a blacklist delete) with such a token
/// only aim at ids that do not exist; an admin's GET never reads a real batch's items or the
/// blacklist (those reads are audited, a change by design).
fn generate(rng: &mut StdRng, known: &Known) -> Case {
    let (auth, who) = token_header(rng);
    let privileged = who.is_some_and(|t| TOKENS_PRIVILEGED.contains(&t));
    let real_batch = known.batch_id.clone();
    let fake_id = |rng: &mut StdRng| -> String {
        let x = nasty_text(rng);
        if x.is_empty() || x == known.batch_id || x == known.entry_id {
            format!("b_{}", rng.random::<u32>())
        } else {
            x
        }
    };
    let seq = |rng: &mut StdRng| -> String {
        if rng.random_bool(0.5) && !known.failed_seqs.is_empty() {
            pick(rng, &known.failed_seqs).to_string()
        } else {
            (*pick(
                rng,
                &[
                    "0",
                    "-1",
                    "1",
                    "abc",
                    "1.0",
                    "99999999999999999999",
                    "",
                    "%20",
                ],
            ))
            .to_owned()
        }
    };
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(a) = auth {
        headers.push(("authorization".into(), a));
    }
    let (method, path, body): (String, String, Option<Vec<u8>>) = match rng.random_range(0..16) {
        // Reads with random paths and query strings.
        0..=3 => {
            let batch = if who == Some(ADMIN) || rng.random_bool(0.3) {
                fake_id(rng)
            } else {
                real_batch.clone()
            };
            let options = [
                format!("/v1/batches/{batch}"),
                format!("/v1/batches/{batch}/items"),
                format!("/v1/batches/{batch}/notices"),
                "/v1/events".into(),
                "/v1/audit".into(),
                "/v1/banks".into(),
                "/v1/assessments".into(),
                format!("/v1/assessments/{}/strikes", nasty_text(rng)),
                format!("/v1/assessments/{BANK_A}/strikes"),
                "/v1/blacklist".into(),
                "/healthz".into(),
                "/readyz".into(),
                "/openapi.json".into(),
                format!("/{}", nasty_text(rng)),
                format!("/v1/{}/{}", nasty_text(rng), nasty_text(rng)),
                format!("/v1/batches/{batch}/items/{}", seq(rng)),
            ];
            let p = pick(rng, &options).clone();
            let m = (*pick(
                rng,
                &["GET", "GET", "GET", "HEAD", "OPTIONS", "TRACE", "PATCH"],
            ))
            .to_owned();
            // An admin's GET of a real batch's items or of the blacklist would be an audited read:
            // aim elsewhere.
            let p = if who == Some(ADMIN) && (p.contains(&real_batch) || p == "/v1/blacklist") {
                "/v1/events".into()
            } else {
                p
            };
            (m, p + &query_string(rng), None)
        }
        // Roster submissions the intake must refuse as a whole.
        4..=6 => {
            let (body, ctype) = if rng.random_bool(0.7) {
                broken_roster(rng, &known.roster)
            } else {
                (malformed_body(rng, &known.roster), "application/json")
            };
            let ctype = if rng.random_bool(0.85) {
                ctype.to_owned()
            } else {
                (*pick(
                    rng,
                    &[
                        "text/plain",
                        "application/json; charset=gbk",
                        "",
                        "application/x-ndjson",
                        "multipart/form-data; boundary=x",
                        "application/json, application/x-ndjson",
                    ],
                ))
                .to_owned()
            };
            headers.push(("content-type".into(), ctype.into_bytes()));
            ("POST".into(), "/v1/batches".into(), Some(body))
        }
        // Changes with bodies.
        7..=11 => {
            let batch = if rng.random_bool(0.7) {
                real_batch.clone()
            } else {
                fake_id(rng)
            };
            let options = [
                (
                    format!("/v1/batches/{batch}/items/{}/correction", seq(rng)),
                    json!({"account_no": "6217995505724754105", "account_kind": "ssc",
                               "account_bank_code": "102241000019", "name": "郝桂"}),
                ),
                (
                    format!("/v1/batches/{batch}/items/{}/return", seq(rng)),
                    json!({"reason": "returned"}),
                ),
                (
                    format!("/v1/batches/{batch}/items/{}/resolve", seq(rng)),
                    json!({"status": "failed", "reason": "checked"}),
                ),
                (
                    "/v1/blacklist".into(),
                    json!({"kind": "id_no", "value": "220203196602074567", "reason": "r"}),
                ),
                (
                    format!("/v1/banks/{BANK_A}/disqualify"),
                    json!({"department_code": "220623-NYNC", "reason": "r"}),
                ),
                (
                    format!("/v1/assessments/{BANK_A}/strikes/{}/void", fake_id(rng)),
                    json!({"reason": "r"}),
                ),
                (
                    format!(
                        "/v1/assessments/{BANK_A}/{}",
                        pick(rng, &["2020", "2025", "x", "-1", "99999999999"])
                    ),
                    json!({"department_code": "220623-NYNC", "rating": "unqualified", "reason": "r"}),
                ),
            ];
            let (p, template) = pick(rng, &options).clone();
            let method = if p.starts_with("/v1/assessments/") && !p.ends_with("/void") {
                "PUT"
            } else {
                "POST"
            };
            // The body is always malformed for a token that may make the change; for the others a
            // well-formed one shows the role check holds.
            let body = if privileged || rng.random_bool(0.5) {
                malformed_body(rng, &template)
            } else {
                serde_json::to_vec(&template).expect("json")
            };
            let ctype = pick(
                rng,
                &[
                    "application/json",
                    "application/json",
                    "text/plain",
                    "",
                    "application/x-ndjson",
                ],
            );
            if !ctype.is_empty() {
                headers.push(("content-type".into(), ctype.as_bytes().to_vec()));
            }
            (method.into(), p, Some(body))
        }
        // Body-less changes: the click, a blacklist delete.
        12 | 13 => {
            let target_real = !privileged && rng.random_bool(0.6);
            let p = if rng.random_bool(0.5) {
                let b = if target_real {
                    real_batch.clone()
                } else {
                    fake_id(rng)
                };
                format!("/v1/batches/{b}/query")
            } else {
                let e = if target_real {
                    known.entry_id.clone()
                } else {
                    fake_id(rng)
                };
                format!("/v1/blacklist/{e}")
            };
            let m = if p.contains("/blacklist/") {
                "DELETE"
            } else {
                "POST"
            };
            let body = rng.random_bool(0.3).then(|| random_bytes(rng, 64));
            (m.into(), p, body)
        }
        // Anything at all.
        _ => {
            let m = (*pick(
                rng,
                &[
                    "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECTX", "get",
                ],
            ))
            .to_owned();
            let p = format!(
                "/{}/{}{}",
                nasty_text(rng),
                nasty_text(rng),
                query_string(rng)
            );
            let body = rng.random_bool(0.5).then(|| random_bytes(rng, 4096));
            // Never a real resource for a privileged token: the random path may not hit one anyway.
            (m, p, body)
        }
    };
    // Random extra headers, some odd.
    for _ in 0..rng.random_range(0..4) {
        let name = (*pick(
            rng,
            &[
                "x-request-id",
                "accept",
                "accept-encoding",
                "content-encoding",
                "idempotency-key",
                "x-forwarded-for",
                "transfer-encoding-x",
                "cookie",
                "range",
                "expect-x",
                "if-none-match",
            ],
        ))
        .to_owned();
        let mut value = nasty_text(rng).into_bytes();
        if rng.random_bool(0.2) {
            value = vec![b'v'; rng.random_range(1000..30_000)];
        }
        headers.push((name, value));
    }
    Case {
        method,
        path,
        headers,
        body,
    }
}

/// A text image of every table of the SQLite store (row count and every row's values), by the
/// common helpers.
async fn store_image(db: &Path) -> Vec<(String, i64, String)> {
    let tables = query_texts(
        db,
        "select group_concat(name, ',') from (select name from sqlite_master where type = 'table' \
         and name not like 'sqlite_%' and name <> 'leases' order by name)",
    )
    .await
    .expect("tables")[0]
        .clone()
        .expect("names");
    let mut out = Vec::new();
    for t in tables.split(',') {
        let cols = query_texts(
            db,
            &format!("select group_concat(name, ',') from pragma_table_info('{t}')"),
        )
        .await
        .expect("columns")[0]
            .clone()
            .expect("column names");
        let row_expr = cols
            .split(',')
            .map(|c| format!("quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let all = query_texts(
            db,
            &format!(
                "select group_concat(r, char(10)) from (select {row_expr} as r from \"{t}\" order by 1)"
            ),
        )
        .await
        .expect("rows")[0]
            .clone()
            .unwrap_or_default();
        let digest = hex::encode(Sha256::digest(all.as_bytes()));
        out.push((
            t.to_owned(),
            count_rows(db, &format!("\"{t}\"")).await,
            digest,
        ));
    }
    out
}

/// Checks one answer; the failure text, if any.
fn check(case: &Case, status: u16, body: &[u8]) -> Result<(), String> {
    if status >= 500 {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    if status >= 400 && case.method != "HEAD" {
        let v: Value = serde_json::from_slice(body).map_err(|_| {
            format!(
                "status {status} without the error body: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            )
        })?;
        let code = v["error"]["code"].as_str().unwrap_or_default();
        if !code.starts_with("E-")
            || !v["error"]["message"].is_string()
            || !v["error"]["details"].is_array()
        {
            return Err(format!("status {status} with a malformed error body: {v}"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_and_malformed_requests_change_nothing_and_never_fail_the_server() {
    let seed: u64 = std::env::var("API_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let cases: usize = std::env::var("API_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let dir = TempDir::new("api-fuzz");
    let db = dir.0.join("gw.db");
    let bank = bank_a(|c| c.fail_permille = 200).await;
    let mut cfg = config(&db, &bank.addr.to_string());
    // Thousands of requests a second from three tokens: rate limits are tested elsewhere.
    cfg.server.rate_limit_per_second = 0;
    // Small enough that oversize bodies are cheap to send.
    cfg.server.max_json_bytes = 1024 * 1024;
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);

    // What there is to aim at: a paid batch with failed items, a blacklist entry.
    let roster_bytes = gen_roster(&["--items", "40", "--seed", "99", "--payout-bank", BANK_A]);
    let roster: Value = serde_json::from_slice(&roster_bytes).expect("roster");
    let (s, answer) = api.submit_json(SUBMITTER, roster_bytes).await;
    assert_eq!(s, 202, "{answer}");
    let batch_id = answer["batch_id"].as_str().expect("batch_id").to_owned();
    api.wait_final(&batch_id, Duration::from_secs(120)).await;
    let failed: Vec<i64> = api
        .all_items(&batch_id, Some("failed"))
        .await
        .iter()
        .filter_map(|i| i["seq"].as_i64())
        .collect();
    assert!(!failed.is_empty(), "the seeded bank fails some items");
    let (s, e) = api
        .post(
            ADMIN,
            "/v1/blacklist",
            Some(json!({"kind": "account_no", "value": "6222020200112233445", "reason": "fuzz"})),
        )
        .await;
    assert_eq!(s, 201, "{e}");
    let known = Known {
        batch_id,
        failed_seqs: failed,
        entry_id: e["entry_id"].as_str().expect("entry").to_owned(),
        roster,
    };
    // Let the background settle (notices recorded, events written), then take the image.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = store_image(&db).await;
    for (table, at_least) in [
        ("batches", 1),
        ("items", 40),
        ("parts", 1),
        ("events", 1),
        ("audit", 1),
        ("blacklist", 1),
    ] {
        assert!(
            before.iter().any(|(t, n, _)| t == table && *n >= at_least),
            "{table} in {before:?}"
        );
    }

    // A connection per request: an answer given before a body was read closes the connection, and a
    // pooled client would send its next request on a closing one.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (next, client, known, base) = (
            next.clone(),
            client.clone(),
            known.clone(),
            api.base.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            let mut skipped = 0usize;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= cases {
                    return Ok::<_, String>((statuses, skipped));
                }
                let mut rng =
                    StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(n as u64));
                let case = generate(&mut rng, &known);
                let Ok(method) = reqwest::Method::from_bytes(case.method.as_bytes()) else {
                    skipped += 1;
                    continue;
                };
                let Ok(url) = reqwest::Url::parse(&format!("{base}{}", case.path)) else {
                    skipped += 1;
                    continue;
                };
                let mut req = client.request(method, url);
                for (k, v) in &case.headers {
                    match reqwest::header::HeaderValue::from_bytes(v) {
                        Ok(v) => req = req.header(k.as_str(), v),
                        Err(_) => skipped += 1,
                    }
                }
                if let Some(b) = &case.body {
                    req = req.body(b.clone());
                }
                let resp = match req.send().await {
                    Ok(r) => r,
                    // Refused before its body was read (401, 413, ...): the server answers and closes
                    // while the client still writes, and the client may see only the closed socket.
                    Err(e)
                        if case.body.as_ref().is_some_and(|b| !b.is_empty()) && e.is_request() =>
                    {
                        *statuses.entry(0).or_default() += 1;
                        continue;
                    }
                    Err(e) => return Err(format!("case {n} ({case}): no answer: {e:?}")),
                };
                let status = resp.status().as_u16();
                let body = resp
                    .bytes()
                    .await
                    .map_err(|e| format!("case {n}: body: {e}"))?;
                check(&case, status, &body).map_err(|e| format!("case {n} ({case}): {e}"))?;
                *statuses.entry(status).or_default() += 1;
            }
        }));
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut skipped = 0;
    let mut failures = Vec::new();
    for w in workers {
        match w.await.expect("worker") {
            Ok((s, k)) => {
                for (code, n) in s {
                    *statuses.entry(code).or_default() += n;
                }
                skipped += k;
            }
            Err(e) => failures.push(e),
        }
    }
    eprintln!(
        "api_fuzz: seed {seed}, {cases} cases in {:?}; statuses {statuses:?} (0: closed while the body \
         was still being sent); {skipped} requests or headers not sendable",
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Many cases reached the handlers, not only the router's refusals.
    for code in [400, 401, 403, 404] {
        assert!(
            statuses.get(&code).copied().unwrap_or(0) > 20,
            "{statuses:?}"
        );
    }

    // Nothing stored changed, and the gateway is still well.
    let (s, _) = api.get("", "/healthz").await;
    assert_eq!(s, 200);
    let after = store_image(&db).await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "table {} changed", b.0);
    }
    assert_eq!(before.len(), after.len());
    gw.shutdown().await;
}
