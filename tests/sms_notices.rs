//! SMS notices end to end (信息直达): a credited item gets exactly one notice at the SMS centre, a failed
//! one none; long texts arrive as correctly concatenated parts; a gateway killed while notices are in
//! flight still sends exactly one per credited item after its restart; a centre limited to 100
//! messages/s is not flooded and loses or doubles nothing. The notice key (batch and seq) travels in a
//! vendor TLV the simulator books, so counts are taken from the centre's side. The first two scenarios
//! run on PostgreSQL (a throwaway cluster) too, with fewer items.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use simulators::smsc::{SmscHandle, SmscSim, SmscSimConfig};

const KEY_TLV: u16 = 0x1400;
const LONG: &str = "【惠民惠农】您的{subsidy_name}{amount}元已于{date}发放至您尾号{last4}的{account_desc}，请注意查收。如有疑问请拨打当地财政局惠民惠农政策咨询电话，或持身份证到乡镇财政所查询。";

async fn smsc(tune: impl FnOnce(&mut SmscSimConfig)) -> SmscHandle {
    let mut cfg = SmscSimConfig::new("gwtest", "pw");
    cfg.key_tlv = KEY_TLV;
    cfg.receipt_delay = Duration::from_millis(200);
    tune(&mut cfg);
    SmscSim::start(
        cfg,
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
    )
    .expect("smsc")
}

fn sms_config(addr: &str, password_file: &std::path::Path) -> gateway::config::Sms {
    gateway::config::Sms {
        endpoint: addr.into(),
        system_id: "gwtest".into(),
        password_env: None,
        password_file: Some(password_file.to_owned()),
        service_number: "10690000".into(),
        templates: BTreeMap::new(),
        quiet_hours: None,
        unknown_grace: Some(bank_profiles::DurationText(Duration::from_secs(3))),
        max_rate: None,
        key_tlv: Some(KEY_TLV),
        enquire_link: None,
    }
}

/// Waits until every credited item's notice is settled at the gateway (submitted or final).
async fn wait_notices(api: &Api, batch_id: &str, credited: u64, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (_, n) = api
            .get(
                SUBMITTER,
                &format!("/v1/batches/{batch_id}/notices?limit=1"),
            )
            .await;
        let c = &n["counts"];
        let settled: u64 = ["submitted", "delivered"]
            .iter()
            .map(|s| c[*s].as_u64().unwrap_or(0))
            .sum();
        if settled == credited
            && c["pending"].is_null()
            && c["sending"].is_null()
            && c["unknown"].is_null()
        {
            return n;
        }
        assert!(started.elapsed() < limit, "notices not settled: {n}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The notices the centre holds, by key: `(complete messages, parts per message)`.
fn by_key(smsc: &SmscHandle) -> BTreeMap<String, Vec<simulators::smsc::AssembledMessage>> {
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for m in smsc.ledger.messages() {
        out.entry(m.notice_key.clone().unwrap_or_default())
            .or_default()
            .push(m);
    }
    out
}

async fn seqs(api: &Api, batch_id: &str, status: &str) -> BTreeSet<String> {
    api.all_items(batch_id, Some(status))
        .await
        .iter()
        .map(|i| format!("{batch_id}:{}", i["seq"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_notice_per_credited_item_none_for_failures_long_texts_concatenated() {
    notices(StoreBackend::Sqlite, 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_one_notice_per_credited_item_none_for_failures_long_texts_concatenated() {
    notices(StoreBackend::Postgres, 3_000).await;
}

async fn notices(backend: StoreBackend, items: u64) {
    let dir = TempDir::new("sms-notices");
    let store = TestStore::new(backend, &dir.0);
    let sim = bank_a(|c| c.fail_permille = 50).await;
    // The centre's rate raised for the size of the run (the 100/s limit has its own test below).
    let centre = smsc(|c| c.rate_per_second = 3000).await;
    let pw = dir.0.join("smpp.pw");
    std::fs::write(&pw, "pw").expect("password");
    let mut cfg = store.config(&sim.addr.to_string());
    let mut sms = sms_config(&centre.addr.to_string(), &pw);
    sms.max_rate = Some(3000);
    sms.templates.insert("NY001".into(), LONG.into());
    cfg.sms = Some(sms);
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);
    let roster = gen_roster(&[
        "--items",
        &items.to_string(),
        "--seed",
        "61",
        "--payout-bank",
        BANK_A,
    ]);
    let (s, answer) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{answer}");
    let batch_id = answer["batch_id"].as_str().expect("id").to_owned();
    let batch = api.wait_final(&batch_id, Duration::from_secs(300)).await;
    let credited = batch["counts"]["succeeded"].as_u64().expect("succeeded");
    assert!(
        credited > items * 9 / 10 && credited < items,
        "about 95%: {credited} of {items}"
    );
    wait_notices(&api, &batch_id, credited, Duration::from_secs(300)).await;

    let ok = seqs(&api, &batch_id, "succeeded").await;
    let failed = seqs(&api, &batch_id, "failed").await;
    let got = by_key(&centre);
    assert_eq!(
        got.len() as u64,
        credited,
        "as many notices as credited items"
    );
    assert_eq!(
        got.keys().cloned().collect::<BTreeSet<_>>(),
        ok,
        "exactly the credited items"
    );
    assert!(
        failed.iter().all(|k| !got.contains_key(k)),
        "none for failures"
    );
    for (k, msgs) in &got {
        assert_eq!(msgs.len(), 1, "{k}: one notice");
        let m = &msgs[0];
        assert!(
            m.complete() && m.total >= 2,
            "{k}: concatenated, every part: {m:?}"
        );
        assert!(
            m.text.starts_with("【惠民惠农】您的耕地地力保护补贴"),
            "{}",
            m.text
        );
        assert!(m.text.ends_with("到乡镇财政所查询。"), "{}", m.text);
        assert!(m.destination.starts_with("861") && m.destination.len() == 13);
    }
    // The text carries the last 4 digits only (admin sees the full account number to compare).
    let items = api
        .get(
            ADMIN,
            &format!("/v1/batches/{batch_id}/items?status=succeeded&limit=20"),
        )
        .await
        .1;
    for it in items["items"].as_array().expect("items") {
        let acct = it["account_no"].as_str().expect("account");
        let m = &got[&format!("{batch_id}:{}", it["seq"])][0];
        assert!(
            m.text.contains(&format!("尾号{}", &acct[acct.len() - 4..])),
            "{}",
            m.text
        );
        assert!(!m.text.contains(acct), "no full account number");
        assert!(
            !m.text.contains(it["id_no"].as_str().expect("id")),
            "no ID number"
        );
    }
    // Receipts come back and make the notices final.
    let started = Instant::now();
    loop {
        let (_, n) = api
            .get(
                SUBMITTER,
                &format!("/v1/batches/{batch_id}/notices?limit=1"),
            )
            .await;
        let done = n["counts"]["delivered"].as_u64().unwrap_or(0)
            + n["counts"]["failed"].as_u64().unwrap_or(0);
        if done == credited {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "receipts: {n}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (_, m) = api.get(AUDITOR, "/metrics").await;
    let _ = m;
    gw.shutdown().await;
    centre.shutdown().await;
    sim.shutdown().await;
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_to_100_per_second_without_loss_or_duplicates() {
    let dir = TempDir::new("sms-throttle");
    let db = dir.0.join("gw.db");
    let sim = bank_a(|c| c.fail_permille = 0).await;
    let centre = smsc(|c| c.rate_per_second = 100).await;
    let pw = dir.0.join("smpp.pw");
    std::fs::write(&pw, "pw").expect("password");
    let mut cfg = config(&db, &sim.addr.to_string());
    let mut sms = sms_config(&centre.addr.to_string(), &pw);
    // Faster than the centre allows: the centre throttles, the gateway backs off and resends.
    sms.max_rate = Some(400);
    cfg.sms = Some(sms);
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);
    let roster = gen_roster(&["--items", "600", "--seed", "62", "--payout-bank", BANK_A]);
    let (s, answer) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{answer}");
    let batch_id = answer["batch_id"].as_str().expect("id").to_owned();
    let batch = api.wait_final(&batch_id, Duration::from_secs(120)).await;
    let credited = batch["counts"]["succeeded"].as_u64().expect("succeeded");
    wait_notices(&api, &batch_id, credited, Duration::from_secs(120)).await;
    let got = by_key(&centre);
    assert_eq!(got.len() as u64, credited, "none lost");
    assert!(
        got.values().all(|m| m.len() == 1 && m[0].complete()),
        "none doubled"
    );
    assert!(
        centre.ledger.throttled_rate() > 0,
        "the centre had to throttle"
    );
    assert!(
        centre.ledger.max_parts_in_any_second("gwtest") <= 100,
        "never above the limit"
    );
    gw.shutdown().await;
    centre.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_notices_are_in_flight_still_one_per_credited_item() {
    killed_while_sending(StoreBackend::Sqlite, 1_500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_killed_while_notices_are_in_flight_still_one_per_credited_item() {
    killed_while_sending(StoreBackend::Postgres, 1_000).await;
}

async fn killed_while_sending(backend: StoreBackend, items: u64) {
    let dir = TempDir::new("sms-kill");
    let store = TestStore::new(backend, &dir.0);
    let sim = bank_a(|c| c.fail_permille = 30).await;
    // Answers take a while, so that submits are in flight when the gateway dies.
    let centre = smsc(|c| c.resp_delay = Duration::from_millis(80)).await;
    std::fs::write(dir.0.join("smpp.pw"), "pw").expect("password");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config_path = dir.0.join("gateway.toml");
    std::fs::write(
        &config_path,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[store]
url = "{url}"
[[tokens]]
token = "{SUBMITTER}"
role = "submitter"
[gateway]
node_id = "GW01"
[banks."{BANK_A}"]
endpoint = "{bank}"
poll_interval = "500ms"
[sms]
endpoint = "{centre}"
system_id = "gwtest"
password_file = "{pw}"
service_number = "10690000"
unknown_grace = "3s"
key_tlv = {KEY_TLV}
"#,
            url = store.url,
            bank = sim.addr,
            centre = centre.addr,
            pw = dir.0.join("smpp.pw").display(),
        ),
    )
    .expect("config");
    let api = Api::new(format!("127.0.0.1:{port}"));
    let mut child = spawn_gateway(&config_path);
    wait_healthy(&api).await;
    let roster = gen_roster(&[
        "--items",
        &items.to_string(),
        "--seed",
        "63",
        "--payout-bank",
        BANK_A,
    ]);
    let (s, answer) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{answer}");
    let batch_id = answer["batch_id"].as_str().expect("id").to_owned();
    let started = Instant::now();
    while centre.ledger.accepted() < items as usize / 5 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no notices sent"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let at_kill = centre.ledger.accepted();

    let mut child = spawn_gateway(&config_path);
    wait_healthy(&api).await;
    let batch = api.wait_final(&batch_id, Duration::from_secs(120)).await;
    let credited = batch["counts"]["succeeded"].as_u64().expect("succeeded");
    assert!(
        at_kill < credited as usize,
        "killed mid-way ({at_kill} of {credited})"
    );
    wait_notices(&api, &batch_id, credited, Duration::from_secs(120)).await;
    let ok = seqs(&api, &batch_id, "succeeded").await;
    child.kill().expect("stop");
    let _ = child.wait();

    let got = by_key(&centre);
    assert_eq!(
        got.keys().cloned().collect::<BTreeSet<_>>(),
        ok,
        "every credited item, nothing else"
    );
    for (k, m) in &got {
        assert_eq!(m.len(), 1, "{k}: exactly one notice across the restart");
    }
    // The kill did leave notices whose outcome was unknown; they were settled, not blindly resent.
    let held = store
        .count_rows("notices where last_error like '%restart%'")
        .await;
    assert!(held > 0, "no notice was in flight at the kill");
    centre.shutdown().await;
    sim.shutdown().await;
    drop(store);
}
