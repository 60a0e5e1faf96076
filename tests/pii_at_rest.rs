//! Personal data at rest (rules.md "Personal information"): rosters through banks A, B and C, with
//! SMS notices, a blacklist and a correction, then no plaintext ID number, account number, phone or
//! name of the rosters in the SQLite file and its WAL, in the logs (every level the gateway writes),
//! in `/metrics`, or in any answer a submitter or an auditor gets; an admin still reads them in full,
//! and that read is audited. Then a new data key: `gateway keys rotate` reseals everything, the old
//! key leaves the keyring, and the values read back the same. A last test runs the rotation pass on
//! PostgreSQL.
mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use simulators::smsc::{SmscHandle, SmscSim, SmscSimConfig};

/// Everything the process logs, as the gateway writes it (text, no colours).
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

/// Installs the process's subscriber writing into a buffer: everything of the gateway (trace) and
/// its codecs; the simulators (the banks' and the centre's side, which see personal data by their
/// nature) are left out.
fn capture_logs() -> LogBuffer {
    let buf = LogBuffer::default();
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "debug,gateway=trace,gw_codecs=trace,simulators=off,sqlx=info,hyper=info,hyper_util=info,\
             h2=info,rustls=info,reqwest=info,tokio_rustls=info",
        ))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the first subscriber of this test binary");
    buf
}

/// A random key as hex (`bytes` bytes).
fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn write_secret(path: &Path, text: &str) {
    std::fs::write(path, text).expect("secret file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

const KEY_TLV: u16 = 0x1400;

async fn smsc() -> SmscHandle {
    let mut cfg = SmscSimConfig::new("gwtest", "pw");
    cfg.key_tlv = KEY_TLV;
    cfg.receipt_delay = Duration::from_millis(100);
    cfg.rate_per_second = 2000;
    SmscSim::start(
        cfg,
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
    )
    .expect("smsc")
}

fn sms_config(addr: &str, password_file: &Path) -> gateway::config::Sms {
    gateway::config::Sms {
        endpoint: addr.into(),
        system_id: "gwtest".into(),
        password_env: None,
        password_file: Some(password_file.to_owned()),
        service_number: "10690000".into(),
        templates: Default::default(),
        quiet_hours: None,
        unknown_grace: Some(bank_profiles::DurationText(Duration::from_secs(3))),
        max_rate: Some(2000),
        key_tlv: Some(KEY_TLV),
        enquire_link: None,
    }
}

/// The personal values of a roster that are long enough to be found unambiguously: ID numbers,
/// account numbers, phones (8 characters or more: broken items too), names of 3 characters or more.
fn personal_values(roster: &[u8], out: &mut BTreeSet<String>) {
    let v: Value = serde_json::from_slice(roster).expect("roster JSON");
    for it in v["items"].as_array().expect("items") {
        for (field, min) in [("id_no", 8), ("account_no", 8), ("phone", 8), ("name", 3)] {
            if let Some(s) = it[field].as_str()
                && s.chars().count() >= min
            {
                out.insert(s.to_owned());
                if field == "id_no" {
                    // The store keeps resident IDs with an upper-case check character.
                    out.insert(s.to_uppercase());
                }
            }
        }
    }
}

/// `(where, masked value)` of every personal value found in `haystack`.
fn find(place: &str, haystack: &[u8], values: &BTreeSet<String>) -> Vec<String> {
    // Every value in one pass (Aho-Corasick, overlapping matches): a search per value over a database
    // file took most of this test's time.
    let needles: Vec<&String> = values.iter().collect();
    let ac =
        aho_corasick::AhoCorasick::new(needles.iter().map(|v| v.as_bytes())).expect("automaton");
    let mut seen = vec![false; needles.len()];
    for m in ac.find_overlapping_iter(haystack) {
        seen[m.pattern().as_usize()] = true;
    }
    needles
        .iter()
        .zip(&seen)
        .filter(|(_, found)| **found)
        .map(|(v, _)| {
            let shown: String = v.chars().take(4).collect();
            format!("{place}: {shown}*** ({} chars)", v.chars().count())
        })
        .collect()
}

async fn wait_notices_settled(api: &Api, batch_id: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        let (_, n) = api
            .get(
                SUBMITTER,
                &format!("/v1/batches/{batch_id}/notices?limit=1"),
            )
            .await;
        let c = &n["counts"];
        if ["pending", "sending", "unknown"]
            .iter()
            .all(|s| c[*s].is_null())
        {
            return;
        }
        assert!(started.elapsed() < limit, "notices not settled: {n}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every answer a caller with `token` gets from the read endpoints, as text.
async fn answers_of(
    api: &Api,
    token: &str,
    batches: &[String],
    year: i32,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let get = |path: String| {
        let api = api.clone();
        async move {
            let resp = api
                .http
                .get(format!("{}{path}", api.base))
                .bearer_auth(token)
                .send()
                .await
                .expect("request");
            (path, resp.text().await.expect("body"))
        }
    };
    for b in batches {
        out.push(get(format!("/v1/batches/{b}")).await);
        let mut after = 0;
        loop {
            let (path, text) = get(format!(
                "/v1/batches/{b}/items?after_seq={after}&limit=1000"
            ))
            .await;
            let page: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            out.push((path, text));
            match page["next_after_seq"].as_i64() {
                Some(n) => after = n,
                None => break,
            }
        }
        out.push(get(format!("/v1/batches/{b}/notices?limit=10000")).await);
    }
    let mut after = String::new();
    loop {
        let (path, text) = get(format!("/v1/events?limit=5000&after={after}")).await;
        let page: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let last = page["events"]
            .as_array()
            .and_then(|e| e.last())
            .and_then(|e| e["event_id"].as_str())
            .map(str::to_owned);
        out.push((path, text));
        match last {
            Some(id) if id != after => after = id,
            _ => break,
        }
    }
    out.push(get("/v1/audit?limit=5000".into()).await);
    out.push(get(format!("/v1/assessments?year={year}")).await);
    out.push(get(format!("/v1/assessments?year={year}&format=csv")).await);
    for bank in [BANK_A, BANK_B, BANK_C] {
        out.push(get(format!("/v1/assessments/{bank}/strikes?year={year}")).await);
    }
    out.push(get("/v1/banks".into()).await);
    out.push(get("/v1/blacklist".into()).await);
    out.push(get("/dashboard".into()).await);
    out.push(get("/healthz".into()).await);
    out.push(get("/readyz".into()).await);
    out
}

fn read_if_exists(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// The store's files: the database, its WAL and shared-memory index.
fn store_files(db: &Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let p = Path::new(&format!("{}{suffix}", db.display())).to_owned();
            (format!("gw.db{suffix}"), read_if_exists(&p))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_personal_data_in_the_store_files_logs_metrics_or_non_admin_answers() {
    let logs = capture_logs();
    let dir = TempDir::new("pii-at-rest");
    let db = dir.0.join("gw.db");
    let ring_file = dir.0.join("data.keys");
    let k1 = random_hex(32);
    write_secret(&ring_file, &format!("# test keyring\nk1={k1}\n"));
    let lookup_file = dir.0.join("lookup.key");
    write_secret(&lookup_file, &random_hex(32));
    let pw = dir.0.join("smpp.pw");
    std::fs::write(&pw, "pw").expect("password");

    let sim_a = bank_a(|c| {
        c.fail_permille = 100;
        c.processing = Duration::from_millis(300);
    })
    .await;
    let sim_b = bank_b(|c| c.fail_permille = 100).await;
    let sim_c = bank_c(|c| c.fail_permille = 100).await;
    let centre = smsc().await;
    let mut cfg = config(&db, &sim_a.addr.to_string());
    with_bank_b(&mut cfg, &sim_b.addr.to_string(), &sim_b.pki, &dir.0);
    with_bank_c(&mut cfg, &sim_c.addr.to_string(), &dir.0);
    cfg.gateway.data_key_file = Some(ring_file.clone());
    cfg.gateway.lookup_key_file = Some(lookup_file.clone());
    cfg.sms = Some(sms_config(&centre.addr.to_string(), &pw));
    let gw = gateway(cfg.clone()).await;
    let api = Api::new(gw.addr);

    let rosters: Vec<(&str, Vec<u8>)> = [(BANK_A, "71"), (BANK_B, "72"), (BANK_C, "73")]
        .into_iter()
        .map(|(bank, seed)| {
            let r = gen_roster(&[
                "--items",
                "300",
                "--seed",
                seed,
                "--payout-bank",
                bank,
                "--bad",
                "12",
            ]);
            (bank, r)
        })
        .collect();
    let mut values = BTreeSet::new();
    for (_, r) in &rosters {
        personal_values(r, &mut values);
    }
    assert!(values.len() > 2000, "{} values", values.len());
    // The search finds what is there (the rosters themselves hold every value).
    let in_rosters: usize = rosters
        .iter()
        .map(|(_, r)| find("roster", r, &values).len())
        .sum();
    assert!(
        in_rosters >= values.len() - 2,
        "{in_rosters} of {}",
        values.len()
    );
    let item = |roster: usize, seq: usize| -> Value {
        let v: Value = serde_json::from_slice(&rosters[roster].1).expect("roster");
        v["items"][seq].clone()
    };

    // A blacklisted ID (bank B's roster) and account (bank C's): their items are refused, and the
    // blacklist holds them sealed.
    let mut answers: Vec<(String, String)> = Vec::new();
    let listed_id = item(1, 40)["id_no"].as_str().expect("id").to_owned();
    let listed_account = item(2, 50)["account_no"].as_str().expect("acct").to_owned();
    for (kind, value) in [("id_no", &listed_id), ("account_no", &listed_account)] {
        let (s, v) = api
            .post(
                ADMIN,
                "/v1/blacklist",
                Some(json!({"kind": kind, "value": value, "reason": "pii test"})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }

    let mut batches = Vec::new();
    for (bank, roster) in &rosters {
        let (s, answer) = api.submit_json(SUBMITTER, roster.clone()).await;
        assert_eq!(s, 202, "{bank}: {answer}");
        answers.push((format!("submit {bank}"), answer.to_string()));
        let id = answer["batch_id"].as_str().expect("batch_id").to_owned();
        let (s, q) = api
            .post(SUBMITTER, &format!("/v1/batches/{id}/query"), None)
            .await;
        assert!(s == 200 || s == 202, "{q}");
        answers.push((format!("query {bank}"), q.to_string()));
        batches.push(id);
    }
    let refused: Vec<String> = answers
        .iter()
        .filter_map(|(_, a)| serde_json::from_str::<Value>(a).ok())
        .flat_map(|a| a["rejected"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["code"].as_str().map(str::to_owned))
        .collect();
    assert!(
        refused
            .iter()
            .filter(|c| *c == "E-ITEM-BLACKLISTED")
            .count()
            >= 2,
        "{refused:?}"
    );
    for b in &batches {
        api.wait_final(b, Duration::from_secs(300)).await;
    }

    // A correction of a failed item to a new account: the re-issue is sealed too.
    let failed = api.all_items(&batches[0], Some("failed")).await;
    // The correction pays a personal (ssc) account: a person's item (a unit's would be refused).
    let seq = failed
        .iter()
        .find(|f| f["recipient_kind"] == "person")
        .and_then(|f| f["seq"].as_i64())
        .expect("a failed person");
    let new_account = gateway::roster::luhn_complete("621700987654321");
    values.insert(new_account.clone());
    values.insert("欧阳明月".into());
    let (s, c) = api
        .post(
            SUBMITTER,
            &format!("/v1/batches/{}/items/{seq}/correction", batches[0]),
            Some(json!({"account_no": new_account, "account_kind": "ssc",
                        "account_bank_code": "102241000019", "name": "欧阳明月"})),
        )
        .await;
    assert_eq!(s, 202, "{c}");
    answers.push(("correction".into(), c.to_string()));
    let reissue = c["reissue_batch_id"].as_str().expect("reissue").to_owned();
    api.wait_final(&reissue, Duration::from_secs(120)).await;
    batches.push(reissue);
    for b in &batches {
        wait_notices_settled(&api, b, Duration::from_secs(120)).await;
    }
    assert!(
        !centre.ledger.messages().is_empty(),
        "notices reached the centre"
    );

    let year = time::OffsetDateTime::now_utc().year();
    for token in [SUBMITTER, AUDITOR] {
        answers.extend(answers_of(&api, token, &batches, year).await);
    }
    // Non-admin answers show masked values.
    let (_, page) = api
        .get(
            AUDITOR,
            &format!("/v1/batches/{}/items?limit=3", batches[0]),
        )
        .await;
    let shown = page["items"][0]["id_no"]
        .as_str()
        .expect("masked id")
        .to_owned();
    assert!(shown.contains("****"), "{shown}");
    let metrics = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(metrics.contains("gateway_items_total"), "{metrics}");

    // The files while the gateway runs (the WAL not yet checkpointed).
    let mut found = Vec::new();
    let files = store_files(&db);
    assert!(files[0].1.len() > 100_000, "the database file was read");
    for (name, bytes) in files {
        found.extend(find(&format!("{name} (running)"), &bytes, &values));
    }
    for (path, text) in &answers {
        found.extend(find(path, text.as_bytes(), &values));
    }
    found.extend(find("/metrics", metrics.as_bytes(), &values));

    // An admin reads the values in full, and that read is audited.
    let (s, full) = api
        .get(
            ADMIN,
            &format!("/v1/batches/{}/items?limit=300", batches[0]),
        )
        .await;
    assert_eq!(s, 200, "{full}");
    let first = &full["items"][0];
    let roster_first = item(0, 0);
    assert_eq!(first["seq"], roster_first["seq"]);
    assert_eq!(first["phone"], roster_first["phone"]);
    assert_eq!(first["account_no"], roster_first["account_no"]);
    assert_eq!(first["name"], roster_first["name"]);
    assert_eq!(
        first["id_no"].as_str().map(str::to_uppercase),
        roster_first["id_no"].as_str().map(str::to_uppercase)
    );
    assert!(
        find("admin answer", full.to_string().as_bytes(), &values).len() >= 3 * 250,
        "an admin sees the values in full"
    );
    let (_, bl) = api.get(ADMIN, "/v1/blacklist").await;
    let listed: Vec<&str> = bl["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["value"].as_str())
        .collect();
    assert!(
        listed.contains(&listed_account.as_str()) && listed.len() == 2,
        "{bl}"
    );
    let (_, audit) = api.get(AUDITOR, "/v1/audit?limit=5000").await;
    let reads = audit["records"]
        .as_array()
        .expect("audit records")
        .iter()
        .filter(|r| r["action"] == "read-personal-data" && r["role"] == "admin")
        .count();
    assert!(reads >= 1, "the admin's read is audited: {audit}");
    found.extend(find(
        "/v1/audit after the admin read",
        audit.to_string().as_bytes(),
        &values,
    ));

    gw.shutdown().await;
    for (name, bytes) in store_files(&db) {
        found.extend(find(&format!("{name} (stopped)"), &bytes, &values));
    }
    let log_text = logs.text();
    assert!(
        log_text.contains("gateway listening"),
        "the logs were captured"
    );
    found.extend(find("logs", log_text.as_bytes(), &values));
    eprintln!(
        "scanned: {} store files, {} answers, {} bytes of logs",
        store_files(&db).len(),
        answers.len(),
        log_text.len()
    );
    assert!(
        found.is_empty(),
        "personal data in plaintext ({} finds):\n{}",
        found.len(),
        found.join("\n")
    );

    // A new data key: the old one stays in the keyring until `keys rotate` has resealed everything.
    let k2 = random_hex(32);
    write_secret(&ring_file, &format!("k2={k2}\nk1={k1}\n"));
    let cli_config = dir.0.join("gw.toml");
    std::fs::write(
        &cli_config,
        format!(
            "[store]\nurl = \"sqlite://{}\"\n[gateway]\ndata_key_file = \"{}\"\nlookup_key_file = \"{}\"\n",
            db.display(),
            ring_file.display(),
            lookup_file.display()
        ),
    )
    .expect("config");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
            .args(args)
            .arg("--config")
            .arg(&cli_config)
            .env("RUST_LOG", "warn")
            .output()
            .expect("gateway keys");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let rotated = run(&["keys", "rotate"]);
    // Every submitted item is stored (refused ones too), and the re-issue.
    let item_rows: usize = 3 * 300 + 1;
    assert!(
        rotated.contains(&format!(
            "items: {item_rows} rows read, {item_rows} resealed"
        )),
        "{rotated}"
    );
    assert!(
        rotated.contains("blacklist: 2 rows read, 2 resealed"),
        "{rotated}"
    );
    let again = run(&["keys", "rotate"]);
    assert!(
        again.contains("items: 0 rows read, 0 resealed"),
        "idempotent: {again}"
    );
    let status = run(&["keys", "status"]);
    assert_eq!(
        status,
        format!(
            "current key: k2\nblacklist\tk2\t2\nitems\tk2\t{}\n",
            item_rows * 4
        ),
        "nothing sealed with k1 is left"
    );
    let mut found = Vec::new();
    for (name, bytes) in store_files(&db) {
        found.extend(find(&format!("{name} (rotated)"), &bytes, &values));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));

    // k1 leaves the keyring; the values read back the same.
    write_secret(&ring_file, &format!("k2={k2}\n"));
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);
    let (s, again) = api
        .get(
            ADMIN,
            &format!("/v1/batches/{}/items?limit=300", batches[0]),
        )
        .await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["items"], full["items"], "the same values under k2");
    gw.shutdown().await;
    sim_a.shutdown().await;
    sim_b.shutdown().await;
    sim_c.shutdown().await;
    centre.shutdown().await;
}

/// The rotation pass on PostgreSQL: old-key and plaintext values resealed, the cursor's row-value
/// paging, the progress row's upsert, a finished pass left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_pass_on_postgres() {
    use gateway::domain::{AccountKind, ItemStatus, Pii, RecipientKind};
    use gateway::keys::{Keyring, LookupKey, StoreKeys};
    use gateway::store::{NewBatch, NewItem, RotationScope, Store};
    use sqlx::Row;

    let pg = pg::Pg::start();
    let url = pg.fresh_database();
    let keys = |ring: &str| StoreKeys {
        data: Keyring::parse(ring, "test").expect("keyring"),
        lookup: LookupKey::new(vec![3; 32]),
    };
    let k1 = format!("k1={}", random_hex(32));
    let k2 = format!("k2={}", random_hex(32));
    let store = Store::open_with_keys(&url, keys(&k1)).await.expect("store");
    let batch = |id: &str| NewBatch {
        batch_id: id.into(),
        batch_no: format!("NO-{id}"),
        body_hash: String::new(),
        parent_batch_id: None,
        department_code: "220623-NYNC".into(),
        region_code: "220623".into(),
        subsidy_code: "NY001".into(),
        subsidy_name: "耕地地力保护补贴".into(),
        budget_year: 2026,
        period: "2026".into(),
        indicator_no: "IND-1".into(),
        payout_bank: BANK_A.into(),
        payer_account_no: "22050166000100000001".into(),
        payer_account_name: "财政零余额账户".into(),
        funds_arrived_on: "2026-11-26".into(),
        total_count: 0,
        total_amount_fen: 0,
        created_at: 1,
        start_late: false,
    };
    let items: Vec<NewItem> = (1..=7)
        .map(|seq| NewItem {
            seq,
            recipient_kind: RecipientKind::Person,
            name: Pii::new(format!("张{seq}")),
            id_no: Pii::new(format!("22062319800101{seq:04}")),
            account_no: Pii::new(format!("6217{seq:015}")),
            account_kind: AccountKind::Ssc,
            account_bank_code: "105241000012".into(),
            amount_fen: 100,
            phone: Pii::new(format!("1380000{seq:04}")),
            ssc_exempt: false,
            memo: String::new(),
            status: ItemStatus::Pending,
            reject_code: None,
            reject_message: None,
            part_id: None,
            claim_key: None,
            replaces: None,
        })
        .collect();
    for id in ["B1", "B2"] {
        let mut tx = store.begin_intake(&batch(id)).await.expect("intake");
        tx.insert_items(&items).await.expect("items");
        tx.finish((7, 700), 0, "{}", &[]).await.expect("commit");
    }
    sqlx::query(
        "update items_pii set name = '李四', id_no = '220623198001019999', phone = '13900009999' \
         where batch_id = 'B2' and seq = 3",
    )
    .execute(store.pool())
    .await
    .expect("a plaintext row from before sealing");
    store.close().await;

    let store = Store::open_with_keys(&url, keys(&format!("{k2}\n{k1}")))
        .await
        .expect("store");
    let mut pages = 0;
    loop {
        let p = store
            .rotate_page(RotationScope::Items, 3, 10)
            .await
            .expect("page");
        pages += 1;
        if p.done {
            break;
        }
    }
    assert_eq!(pages, 5, "14 rows in pages of 3");
    let raw = sqlx::query("select name, id_no, account_no, phone from items_pii")
        .fetch_all(store.pool())
        .await
        .expect("raw");
    for r in &raw {
        for i in 0..4 {
            let v: String = r.try_get(i).expect("text");
            assert!(v.starts_with("v1:k2:"), "{v}");
        }
    }
    let b2 = store.get_item("B2", 3).await.expect("read").expect("item");
    assert_eq!(b2.name.expose(), "李四");
    assert_eq!(b2.phone.expose(), "13900009999");
    let again = store
        .rotate_page(RotationScope::Items, 3, 11)
        .await
        .expect("page");
    assert!(again.done && again.scanned == 0);
    let usage = store.sealed_key_usage().await.expect("usage");
    assert_eq!(usage.len(), 1, "{usage:?}");
    store.close().await;
}
