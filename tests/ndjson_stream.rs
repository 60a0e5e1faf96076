//! A 1,000,000-item NDJSON roster is accepted as a stream: the body is generated while it is sent (the
//! test never holds it whole either) and the gateway process's peak resident memory stays bounded.
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use futures::stream;
use gateway::roster::{self, RosterSpec};

const ITEMS: u64 = 1_000_000;
/// Far below the ~300 MB body: the roster is never held whole.
const PEAK_RSS_LIMIT_KB: u64 = 200 * 1024;

fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn million_item_ndjson_is_streamed_with_bounded_memory() {
    let dir = TempDir::new("million");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config_path = dir.0.join("gateway.toml");
    // The payout bank is configured but nothing listens: this test is about intake only.
    std::fs::write(
        &config_path,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[store]\nurl = \"sqlite://{}\"\n[[tokens]]\ntoken = \"{SUBMITTER}\"\nrole = \"submitter\"\n[banks.\"{BANK_A}\"]\nendpoint = \"127.0.0.1:9\"\n",
            dir.0.join("gw.db").display()
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["serve", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("gateway");
    let api = Api::new(format!("127.0.0.1:{port}"));
    let started = Instant::now();
    while api
        .http
        .get(format!("{}/healthz", api.base))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "gateway did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let today = gateway::clock::Clock::today(&gateway::clock::SystemClock::default());
    let spec = RosterSpec {
        items: ITEMS,
        seed: 3,
        bad: 0,
        batch_no: "MILLION-1".into(),
        year: today.year(),
        payout_bank: BANK_A.into(),
        funds_arrived_on: gateway::clock::date_str(today),
    };
    // Totals are computed in a first pass over the generator, so the body itself is produced lazily.
    let (mut count, mut sum) = (0u64, 0i64);
    for seq in 1..=ITEMS {
        count += 1;
        sum += roster::item(spec.seed, seq)["amount_fen"]
            .as_i64()
            .unwrap_or(0);
    }
    let mut header = roster::header(&spec, &[]);
    header["total_count"] = count.into();
    header["total_amount_fen"] = sum.into();
    let head = format!("{header}\n");
    let lines = stream::iter((0..=ITEMS / 1000).map(move |chunk| {
        let mut buf = String::new();
        if chunk == 0 {
            buf.push_str(&head);
        } else {
            for seq in (chunk - 1) * 1000 + 1..=chunk * 1000 {
                buf.push_str(&roster::item(spec.seed, seq).to_string());
                buf.push('\n');
            }
        }
        Ok::<_, std::io::Error>(buf)
    }));
    let t = Instant::now();
    let resp = api
        .http
        .post(format!("{}/v1/batches", api.base))
        .bearer_auth(SUBMITTER)
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(lines))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.expect("json");
    let took = t.elapsed();
    let peak = peak_rss_kb(child.id());
    child.kill().expect("stop");
    let _ = child.wait();
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted_count"], ITEMS);
    eprintln!(
        "1,000,000 NDJSON items accepted in {:.1} s; gateway peak RSS {} MiB",
        took.as_secs_f64(),
        peak / 1024
    );
    assert!(peak < PEAK_RSS_LIMIT_KB, "peak RSS {peak} kB");
}
