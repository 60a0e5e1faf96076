//! Interop with an SMPP implementation we did not write: smpp34 (PyPI), run as an SMS centre by
//! `tests/interop/smpp34_peer.py`. Our client binds, submits a single and a concatenated notice (with
//! the notice key TLV), takes smpp34's delivery receipts, and unbinds; the peer's log shows what it
//! decoded, field by field. The golden PDUs of `codecs/tests/fixtures/smpp/` are also read by
//! smpp34's decoder.
//!
//! Needs `python3` with smpp34 (`python3 -m pip install smpp34`); `GW_PYTHON` names another
//! interpreter. Missing either is a FAILURE, not a skip: CI must install them.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use codecs::format::smpp::Stat;
use gateway::domain::pii::Phone;
use gateway::sms::{LinkState, SmppClient, SmppConfig, SmscPassword};
use serde_json::Value;

fn python() -> String {
    std::env::var("GW_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/smpp34_peer.py")
}

fn missing(py: &str, stderr: &str) -> ! {
    panic!("smpp34 is not installed for `{py}`: python3 -m pip install smpp34\n{stderr}")
}

/// Kills the peer when the test ends, however it ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_binds_submits_and_takes_receipts_from_smpp34() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("peer.jsonl");
    let port = free_port();
    let mut child = Command::new(&py)
        .arg(peer_script())
        .args(["serve", &port.to_string()])
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{py}` ({e}): python3 -m pip install smpp34"));
    // Wait until it listens (or died: missing module).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            if st.code() == Some(3) {
                missing(&py, &err);
            }
            panic!("smpp34 peer exited ({st}): {err}");
        }
        if log_lines(&log).iter().any(|l| l["event"] == "listening")
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "smpp34 peer not listening"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _peer = Peer(child);

    let mut cfg = SmppConfig::new(
        format!("127.0.0.1:{port}"),
        "gw-test",
        SmscPassword::new("secret08"),
        "10690001",
    );
    cfg.key_tlv = Some(0x1400);
    cfg.reconnect_min = Duration::from_millis(100);
    cfg.response_timeout = Duration::from_secs(10);
    let (h, mut receipts) = SmppClient::start(cfg);
    let mut link = h.link();
    tokio::time::timeout(
        Duration::from_secs(10),
        link.wait_for(|s| *s == LinkState::Bound),
    )
    .await
    .expect("bound to smpp34")
    .unwrap();

    let single = "【惠民惠农】您的补贴1,234.56元已发放。";
    let long: String = format!(
        "{}😀结束",
        "【惠民惠农】您的耕地地力保护补贴1,234.56元已于3月5日发放至您尾号1234的社保卡，请注意查收。"
            .repeat(3)
    );
    let a = h
        .send("notice:1", &Phone::new("13912345678"), single)
        .await
        .unwrap();
    let b = h
        .send("notice:2", &Phone::new("13987654321"), &long)
        .await
        .unwrap();
    assert_eq!(a.message_ids.len(), 1);
    assert!(b.message_ids.len() >= 3, "{:?}", b.message_ids);
    let mut ids: Vec<String> = a
        .message_ids
        .iter()
        .chain(&b.message_ids)
        .cloned()
        .collect();

    // smpp34's receipts, one per part, parsed from its deliver_sm.
    let mut got = Vec::new();
    while got.len() < ids.len() {
        let r = tokio::time::timeout(Duration::from_secs(10), receipts.recv())
            .await
            .expect("a receipt from smpp34")
            .unwrap();
        assert_eq!(r.receipt.stat, Stat::Delivered);
        assert!(r.receipt.done_at.is_some());
        got.push(r.receipt.message_id.clone());
        r.ack();
    }
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
    h.shutdown().await;

    // What smpp34 decoded.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = log_lines(&log);
    let binds: Vec<&Value> = lines.iter().filter(|l| l["event"] == "bind").collect();
    assert_eq!(binds.len(), 1);
    assert_eq!(binds[0]["system_id"], "gw-test");
    let submits: Vec<&Value> = lines.iter().filter(|l| l["event"] == "submit_sm").collect();
    assert_eq!(submits.len(), ids.len());
    for s in &submits {
        assert_eq!(s["source_addr"], "10690001");
        assert_eq!(
            (s["source_addr_ton"].as_u64(), s["source_addr_npi"].as_u64()),
            (Some(0), Some(1))
        );
        assert_eq!(
            (s["dest_addr_ton"].as_u64(), s["dest_addr_npi"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(s["data_coding"], 8);
        assert_eq!(s["registered_delivery"], 1);
        // The key TLV came through as a C-octet string.
        let tlv = &s["tlvs"][0];
        assert_eq!(tlv[0], 0x1400);
    }
    let one: Vec<&&Value> = submits
        .iter()
        .filter(|s| s["destination_addr"] == "8613912345678")
        .collect();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["esm_class"], 0);
    assert_eq!(one[0]["text"], single);
    assert_eq!(one[0]["tlvs"][0][1], hex::encode("notice:1\0"));
    // The long one: UDH read by the peer script, parts reassembled in order.
    let mut parts: Vec<(u64, u64, u64, String)> = submits
        .iter()
        .filter(|s| s["destination_addr"] == "8613987654321")
        .map(|s| {
            assert_eq!(s["esm_class"], 0x40);
            let c = s["concat"].as_array().unwrap();
            (
                c[0].as_u64().unwrap(),
                c[1].as_u64().unwrap(),
                c[2].as_u64().unwrap(),
                s["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    parts.sort_by_key(|p| p.2);
    assert!(
        parts
            .iter()
            .all(|p| p.0 == parts[0].0 && p.1 == parts.len() as u64)
    );
    let text: String = parts.iter().map(|p| p.3.as_str()).collect();
    assert_eq!(text, long);
    // Every receipt was answered OK.
    let resps: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "deliver_sm_resp")
        .collect();
    assert_eq!(resps.len(), ids.len());
    assert!(resps.iter().all(|r| r["command_status"] == 0));
}

#[test]
fn smpp34_reads_the_golden_pdus() {
    let py = python();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../codecs/tests/fixtures/smpp");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    let out = Command::new(&py)
        .arg(peer_script())
        .arg("decode")
        .args(&files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{py}` ({e}): python3 -m pip install smpp34"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        missing(&py, &stderr);
    }
    assert!(out.status.success(), "smpp34 decode failed: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_object().unwrap().len(), files.len());
    let single = &v["submit_sm_single.hex"];
    assert_eq!(single["destination_addr"], "8613912345678");
    assert_eq!(single["text"], "您好");
    let part = &v["submit_sm_concat_part2.hex"];
    assert_eq!(part["concat"], serde_json::json!([0x2A, 2, 2]));
    assert_eq!(part["text"], "贴发放至");
    assert_eq!(part["tlvs"][0][0], 0x1400);
    let receipt = &v["deliver_sm_receipt.hex"];
    assert_eq!(receipt["esm_class"], 4);
    assert_eq!(receipt["tlvs"][1], serde_json::json!([0x0427, "02"]));
    assert_eq!(v["submit_sm_resp_throttled.hex"]["command_status"], 0x58);
    assert_eq!(
        v["bind_transceiver.hex"]["body"].as_str().unwrap().len(),
        44
    );
}
