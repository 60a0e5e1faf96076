//! The API's protections (issue 8):
//!
//! - per-token rate limits: a token over its bucket gets 429 `E-RATE-LIMITED` with `Retry-After`,
//!   other tokens and unauthenticated probes go on, and the bucket refills;
//! - request timeouts: a request not answered within `server.request_timeout` gets 503 `E-TIMEOUT`
//!   and goes on to its end (a change with its audit record, never half of it); a roster upload that
//!   stalls is ended and stores nothing, one that keeps sending is not ended;
//! - TLS: with `server.tls_cert` / `tls_key` the API speaks HTTPS only (certificate made by rcgen at
//!   test time), a client that does not trust the certificate's CA gets no answer;
//! - errors from outside the handlers (a path segment that is not a number) have the error body;
//! - a connection whose request headers do not arrive within `server.header_read_timeout` (sent in
//!   part, trickled, or not at all: slowloris) is closed, over plain HTTP and TLS.
mod common;

use std::time::{Duration, Instant};

use bank_profiles::DurationText;
use common::*;
use futures::StreamExt;
use serde_json::{Value, json};

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body["error"]["details"].is_array(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_token_has_its_own_rate_limit() {
    let dir = TempDir::new("rate-limit");
    let db = dir.0.join("gw.db");
    let bank = bank_a(|_| {}).await;
    let mut cfg = config(&db, &bank.addr.to_string());
    cfg.server.rate_limit_per_second = 2;
    cfg.server.rate_limit_burst = 5;
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);

    for i in 0..5 {
        let (s, v) = api.get(SUBMITTER, "/v1/events").await;
        assert_eq!(s, 200, "request {i}: {v}");
    }
    let resp = api
        .http
        .get(format!("{}/v1/events", api.base))
        .bearer_auth(SUBMITTER)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = resp.json().await.expect("json");
    assert_error(429, &body, 429, "E-RATE-LIMITED");

    // Another token is not slowed by this one; probes without a token are never limited; a wrong
    // token is refused as such.
    let (s, _) = api.get(AUDITOR, "/v1/events").await;
    assert_eq!(s, 200);
    for _ in 0..20 {
        let (s, _) = api.get("", "/healthz").await;
        assert_eq!(s, 200);
        let (s, b) = api.get("not-a-configured-token", "/v1/events").await;
        assert_error(s, &b, 401, "E-AUTH");
    }
    // The limited token stays limited for writes too, and nothing is written.
    let (s, b) = api
        .post(
            SUBMITTER,
            "/v1/blacklist",
            Some(json!({"kind": "id_no", "value": "x", "reason": "r"})),
        )
        .await;
    assert_error(s, &b, 429, "E-RATE-LIMITED");

    // Two per second: after 600 ms one request is back.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (s, _) = api.get(SUBMITTER, "/v1/events").await;
    assert_eq!(s, 200);
    let (s, _) = api.get(SUBMITTER, "/v1/events").await;
    assert_eq!(s, 429);

    // The metric counts the refusals by code.
    let (_, m) = api.get("", "/metrics").await;
    let m = m.as_str().unwrap_or_default().to_owned();
    assert!(m.contains("code=\"E-RATE-LIMITED\""), "{m}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_requests_time_out_without_half_done_changes() {
    let dir = TempDir::new("timeouts");
    let db = dir.0.join("gw.db");
    let bank = bank_a(|_| {}).await;
    let mut cfg = config(&db, &bank.addr.to_string());
    cfg.server.request_timeout = DurationText(Duration::from_secs(1));
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);

    // Another writer holds the SQLite file: an admin's blacklist entry cannot be written in time.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("db");
    let mut holder = pool.acquire().await.expect("connection");
    sqlx::query("begin immediate")
        .execute(&mut *holder)
        .await
        .expect("lock");
    let started = Instant::now();
    let (s, b) = api
        .post(
            ADMIN,
            "/v1/blacklist",
            Some(json!({"kind": "account_no", "value": "6217995505724754105", "reason": "r"})),
        )
        .await;
    assert_error(s, &b, 503, "E-TIMEOUT");
    assert!(started.elapsed() < Duration::from_secs(5));
    sqlx::query("rollback")
        .execute(&mut *holder)
        .await
        .expect("unlock");
    drop(holder);
    pool.close().await;
    // The request was not stopped half-way: once the store is free it completes, the entry with its
    // audit record, so a caller who reads first sees it, and repeating it is refused as a repeat.
    let deadline = Instant::now() + Duration::from_secs(20);
    while count_rows(&db, "audit").await < 1 {
        assert!(
            Instant::now() < deadline,
            "the timed-out request never completed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count_rows(&db, "blacklist").await, 1);
    let (s, b) = api.get(ADMIN, "/v1/blacklist").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["entries"].as_array().map(Vec::len), Some(1), "{b}");
    let (s, b) = api
        .post(
            ADMIN,
            "/v1/blacklist",
            Some(json!({"kind": "account_no", "value": "6217995505724754105", "reason": "r"})),
        )
        .await;
    assert_eq!(s, 409, "{b}");

    // A roster upload that stops sending is ended after the timeout, and nothing is stored.
    let roster = gen_roster(&[
        "--items",
        "40",
        "--seed",
        "77",
        "--payout-bank",
        BANK_A,
        "--format",
        "ndjson",
    ]);
    let head_len = roster
        .iter()
        .position(|b| *b == b'\n')
        .expect("header line")
        + 1;
    let first = bytes::Bytes::copy_from_slice(&roster[..head_len]);
    let stalled =
        futures::stream::iter([Ok::<_, std::io::Error>(first)]).chain(futures::stream::pending());
    let started = Instant::now();
    let (s, b) = api
        .send(
            api.http
                .post(format!("{}/v1/batches", api.base))
                .bearer_auth(SUBMITTER)
                .header("content-type", "application/x-ndjson")
                .body(reqwest::Body::wrap_stream(stalled)),
        )
        .await;
    assert_error(s, &b, 400, "E-REQUEST-INVALID");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(count_rows(&db, "batches").await, 0);

    // One that keeps sending, slower in total than the timeout, is taken in.
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = roster
        .split_inclusive(|b| *b == b'\n')
        .collect::<Vec<_>>()
        .chunks(10)
        .map(|c| Ok(bytes::Bytes::from(c.concat())))
        .collect();
    let slow = futures::stream::iter(chunks).then(|c| async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        c
    });
    let started = Instant::now();
    let (s, b) = api
        .send(
            api.http
                .post(format!("{}/v1/batches", api.base))
                .bearer_auth(SUBMITTER)
                .header("content-type", "application/x-ndjson")
                .body(reqwest::Body::wrap_stream(slow)),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    assert!(started.elapsed() > Duration::from_secs(1));
    assert_eq!(b["accepted_count"], 40, "{b}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_is_served_over_tls_when_configured() {
    gateway::server::install_crypto();
    let dir = TempDir::new("api-tls");
    let db = dir.0.join("gw.db");
    let bank = bank_a(|_| {}).await;
    let pki = simulators::TestPki::generate("API test CA").expect("pki");
    let files = pki.write_to(&dir.0.join("pki")).expect("pem files");
    let mut cfg = config(&db, &bank.addr.to_string());
    cfg.server.tls_cert = Some(files.server_cert.clone());
    cfg.server.tls_key = Some(files.server_key.clone());
    let gw = gateway(cfg).await;
    let port = gw.addr.port();

    let https = reqwest::Client::builder()
        .use_preconfigured_tls(pki.client_config_without_certificate().expect("client"))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let api = Api {
        base: format!("https://localhost:{port}"),
        http: https,
    };
    let (s, _) = api.get("", "/healthz").await;
    assert_eq!(s, 200);
    let (s, banks) = api.get(AUDITOR, "/v1/banks").await;
    assert_eq!(s, 200, "{banks}");
    let (s, b) = api.get("wrong-token-here", "/v1/banks").await;
    assert_error(s, &b, 401, "E-AUTH");
    let roster = gen_roster(&["--items", "20", "--seed", "78", "--payout-bank", BANK_A]);
    let (s, b) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{b}");
    // Several requests on one kept-alive connection, and several connections at once.
    let mut calls = Vec::new();
    for _ in 0..8 {
        let api = api.clone();
        calls.push(tokio::spawn(async move {
            for _ in 0..5 {
                let (s, _) = api.get(SUBMITTER, "/v1/events").await;
                assert_eq!(s, 200);
            }
        }));
    }
    for c in calls {
        c.await.expect("call");
    }

    // Plain HTTP on the TLS port gets no API answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");
    let answer = plain
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(
        answer.as_ref().map_or(true, |r| r.status().as_u16() != 200),
        "plain HTTP was answered: {answer:?}"
    );

    // A client that trusts another CA refuses the server: nothing is exchanged.
    let other = simulators::TestPki::generate("another CA").expect("pki");
    let stranger = reqwest::Client::builder()
        .use_preconfigured_tls(other.client_config_without_certificate().expect("client"))
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");
    let refused = stranger
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");

    // After all that, the server still answers.
    let (s, _) = api.get("", "/healthz").await;
    assert_eq!(s, 200);
    gw.shutdown().await;
    // Stopped: the port no longer answers.
    assert!(
        api.http
            .get(format!("{}/healthz", api.base))
            .send()
            .await
            .is_err()
    );
}

/// Sends `first` on `stream`, then, with `trickle`, one more header byte every 200 ms (slowloris), and
/// reads until the server closes the connection. Whatever the server answered, or an error when the
/// connection is still open after `limit`.
async fn until_closed<S>(
    stream: S,
    first: &'static [u8],
    trickle: bool,
    limit: Duration,
) -> Result<Vec<u8>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        if wr.write_all(first).await.is_err() || wr.flush().await.is_err() {
            return;
        }
        // Bounded, so that the task ends even if the connection were never closed.
        for _ in 0..600 {
            if !trickle {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            if wr.write_all(b"a").await.is_err() || wr.flush().await.is_err() {
                return;
            }
        }
        // Keep the write half (and so the connection) open until the server closes it.
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
    let read = tokio::time::timeout(limit, async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match rd.read(&mut buf).await {
                // Closed (end of stream, a reset, or a TLS stream cut without close_notify).
                Ok(0) | Err(_) => return answer,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    writer.abort();
    read.map_err(|_| format!("the connection was still open after {limit:?}"))
}

/// A client that opens connections and sends its headers slowly, in part, or not at all
/// (slowloris) is disconnected once `server.header_read_timeout` has passed, over plain HTTP and
/// over TLS, while other clients are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_that_do_not_finish_their_headers_are_closed() {
    gateway::server::install_crypto();
    let dir = TempDir::new("header-timeout");
    let bank = bank_a(|_| {}).await;
    let pki = simulators::TestPki::generate("API test CA").expect("pki");
    let files = pki.write_to(&dir.0.join("pki")).expect("pem files");
    let mut plain_cfg = config(&dir.0.join("plain.db"), &bank.addr.to_string());
    plain_cfg.server.header_read_timeout = DurationText(Duration::from_secs(1));
    let mut tls_cfg = config(&dir.0.join("tls.db"), &bank.addr.to_string());
    tls_cfg.server.header_read_timeout = DurationText(Duration::from_secs(1));
    tls_cfg.server.tls_cert = Some(files.server_cert.clone());
    tls_cfg.server.tls_key = Some(files.server_key.clone());
    let plain = gateway(plain_cfg).await;
    let tls = gateway(tls_cfg).await;
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        pki.client_config_without_certificate().expect("client"),
    ));
    // Far above the 1 s configured: only a connection never closed fails.
    let limit = Duration::from_secs(30);

    let partial: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    let mut held = Vec::new();
    for (first, trickle) in [(partial, false), (partial, true), (&b""[..], false)] {
        let tcp = tokio::net::TcpStream::connect(plain.addr)
            .await
            .expect("connect");
        held.push(tokio::spawn(until_closed(tcp, first, trickle, limit)));
        let tcp = tokio::net::TcpStream::connect(tls.addr)
            .await
            .expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let stream = connector.connect(name, tcp).await.expect("TLS handshake");
        held.push(tokio::spawn(until_closed(stream, first, trickle, limit)));
    }

    // Meanwhile the others are served, on both listeners.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .use_preconfigured_tls(pki.client_config_without_certificate().expect("client"))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    for base in [
        format!("http://{}", plain.addr),
        format!("https://localhost:{}", tls.addr.port()),
    ] {
        let r = fresh
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status().as_u16(), 200, "{base}");
    }

    for (i, h) in held.into_iter().enumerate() {
        let answer = h
            .await
            .expect("task")
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        // Nothing is answered to headers that never ended.
        assert!(
            answer.is_empty(),
            "connection {i}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    plain.shutdown().await;
    tls.shutdown().await;
}

#[test]
fn tls_cert_without_key_is_refused_naming_the_key() {
    let err = gateway::config::Config::parse(
        std::path::Path::new("gw.toml"),
        "[server]\ntls_cert = \"cert.pem\"\n",
    )
    .expect_err("refused");
    assert!(err.to_string().contains("server.tls_cert"), "{err}");
    let err = gateway::config::Config::parse(
        std::path::Path::new("gw.toml"),
        "[server]\nrate_limit_per_second = 5\nrate_limit_burst = 0\n",
    )
    .expect_err("refused");
    assert!(err.to_string().contains("server.rate_limit_burst"), "{err}");
    let err = gateway::config::Config::parse(
        std::path::Path::new("gw.toml"),
        "[server]\nheader_read_timeout = \"0s\"\n",
    )
    .expect_err("refused");
    assert!(
        err.to_string().contains("server.header_read_timeout"),
        "{err}"
    );
    let ok = gateway::config::Config::parse(
        std::path::Path::new("gw.toml"),
        "[server]\nrate_limit_per_second = 0\nrequest_timeout = \"45s\"\nheader_read_timeout = \"5s\"\n",
    )
    .expect("valid");
    assert_eq!(ok.server.request_timeout.0, Duration::from_secs(45));
    assert_eq!(ok.server.header_read_timeout.0, Duration::from_secs(5));
    let default =
        gateway::config::Config::parse(std::path::Path::new("gw.toml"), "").expect("valid");
    assert_eq!(
        default.server.header_read_timeout.0,
        Duration::from_secs(30)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_outside_the_handlers_have_the_error_body() {
    let dir = TempDir::new("rejections");
    let db = dir.0.join("gw.db");
    let bank = bank_a(|_| {}).await;
    let gw = gateway(config(&db, &bank.addr.to_string())).await;
    let api = Api::new(gw.addr);
    let (s, b) = api
        .post(
            ADMIN,
            "/v1/batches/b_1/items/not-a-number/resolve",
            Some(json!({"status": "failed", "reason": "x"})),
        )
        .await;
    assert_error(s, &b, 400, "E-REQUEST-INVALID");
    let (s, b) = api
        .post(SUBMITTER, "/v1/batches/b_1/items/1/return", None)
        .await;
    assert!(s == 400 || s == 404 || s == 415, "{s} {b}");
    assert!(
        b["error"]["code"]
            .as_str()
            .is_some_and(|c| c.starts_with("E-")),
        "{b}"
    );
    let (s, b) = api.get(SUBMITTER, "/v1/batches/%FF%FE").await;
    assert!(s == 400 || s == 404, "{s} {b}");
    assert!(
        b["error"]["code"]
            .as_str()
            .is_some_and(|c| c.starts_with("E-")),
        "{b}"
    );
    gw.shutdown().await;
}
