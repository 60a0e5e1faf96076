//! The audit log is a hash chain (`store/audit.rs`):
//!
//! - records made through the API (blacklist changes, an admin's reads of full personal data) are
//!   chained and numbered without gaps, `GET /v1/audit` shows their hashes, and `gateway audit verify`
//!   (the binary) says the chain is intact;
//! - one record's detail changed in the SQLite file: verify exits 1 naming that record; put back, intact
//!   again; a record removed from the middle, or the last one: verify exits 1 naming the gap;
//! - records written before the chain existed stay readable and are reported as not covered;
//! - two stores (two gateways) appending at once on one PostgreSQL database keep one unbroken chain.
mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::pg::Pg;
use common::*;
use gateway::store::Store;
use serde_json::{Value, json};

/// Runs `gateway audit verify` on the store at `db`; exit code and stdout.
fn verify(dir: &Path, db: &Path) -> (i32, String) {
    let cfg = dir.join("verify.toml");
    std::fs::write(
        &cfg,
        format!("[store]\nurl = \"sqlite://{}\"\n", db.display()),
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["audit", "verify", "--config"])
        .arg(&cfg)
        .output()
        .expect("gateway audit verify runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "verify could not run: {stderr}");
    (out.status.code().expect("exit code"), stdout)
}

/// Runs one statement on the SQLite file.
async fn exec(db: &Path, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open db");
    let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await
        .expect("statement");
    assert_eq!(done.rows_affected(), 1, "{sql}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_records_are_chained_and_tampering_is_named() {
    let dir = TempDir::new("audit-chain");
    let db = dir.0.join("gw.db");
    let bank = bank_a(|_| {}).await;
    let gw = gateway(config(&db, &bank.addr.to_string())).await;
    let api = Api::new(gw.addr);

    // Audited changes: three blacklist entries, one removed again.
    let mut entries = Vec::new();
    for (i, value) in [
        "6217995505724754105",
        "6217995505724754113",
        "947355155493498279",
    ]
    .iter()
    .enumerate()
    {
        let (s, v) = api
            .post(
                ADMIN,
                "/v1/blacklist",
                Some(json!({"kind": "account_no", "value": value, "reason": format!("case {i}")})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        entries.push(v["entry_id"].as_str().expect("entry_id").to_owned());
    }
    let resp = api
        .http
        .delete(format!("{}/v1/blacklist/{}", api.base, entries[1]))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 204);

    // Audited reads: an admin reads full personal data, page by page, some at once.
    let roster = gen_roster(&["--items", "30", "--seed", "88", "--payout-bank", BANK_A]);
    let (s, answer) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{answer}");
    let batch_id = answer["batch_id"].as_str().expect("batch_id").to_owned();
    let mut reads = Vec::new();
    for after in (0..30).step_by(5) {
        let api = api.clone();
        let path = format!("/v1/batches/{batch_id}/items?after_seq={after}&limit=5");
        reads.push(tokio::spawn(async move { api.get(ADMIN, &path).await }));
    }
    for r in reads {
        let (s, v) = r.await.expect("read");
        assert_eq!(s, 200, "{v}");
    }
    // A masked read (submitter) is not audited.
    let (s, _) = api
        .get(SUBMITTER, &format!("/v1/batches/{batch_id}/items"))
        .await;
    assert_eq!(s, 200);

    let (s, audit) = api.get(AUDITOR, "/v1/audit?limit=1000").await;
    assert_eq!(s, 200, "{audit}");
    let records = audit["records"].as_array().expect("records").clone();
    assert_eq!(records.len(), 4 + 6, "{audit}");
    let mut prev = gateway::store::GENESIS_HASH.to_owned();
    for (i, r) in records.iter().enumerate() {
        // The shape of the contract plus the chain's two fields.
        for k in [
            "audit_no", "at", "actor", "role", "action", "target", "detail",
        ] {
            assert!(r.get(k).is_some(), "{k} missing in {r}");
        }
        assert_eq!(r["audit_no"], json!(i + 1), "numbers without gaps: {audit}");
        assert_eq!(r["prev_hash"], json!(prev), "{r}");
        let hash = r["hash"].as_str().expect("hash");
        assert_eq!(hash.len(), 64);
        prev = hash.to_owned();
    }
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "read-personal-data")
            .count(),
        6
    );
    assert!(actions.contains(&"blacklist-delete"));
    // Masked in the log: the blacklisted account is never there in full.
    assert!(!audit.to_string().contains("6217995505724754105"));
    gw.shutdown().await;
    drop(bank);

    let (code, out) = verify(&dir.0, &db);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("10 records, chain intact"), "{out}");
    assert!(out.contains(&prev), "the head's hash is printed: {out}");

    // One record's detail changed: record 5 is named.
    let original = query_texts(&db, "select detail from audit where audit_no = 5")
        .await
        .expect("record 5")[0]
        .clone()
        .expect("detail");
    exec(
        &db,
        "update audit set detail = '{\"after_seq\":0,\"limit\":5,\"items\":0}' where audit_no = 5",
    )
    .await;
    let (code, out) = verify(&dir.0, &db);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("chain broken at record 5:") && out.contains("was changed"),
        "{out}"
    );
    assert!(out.contains("4 records before it verified"), "{out}");

    // Put back: intact again (the check is exact, not a guess).
    exec(
        &db,
        &format!(
            "update audit set detail = '{}' where audit_no = 5",
            original.replace('\'', "''")
        ),
    )
    .await;
    let (code, out) = verify(&dir.0, &db);
    assert_eq!(code, 0, "{out}");

    // Changed and re-hashed by someone who knows the encoding: the next record no longer follows.
    let row: Value = {
        let t = query_texts(
            &db,
            "select actor, role, action, target, detail, prev_hash, hash, cast(at as text) \
             from audit where audit_no = 7",
        )
        .await
        .expect("record 7");
        json!(t)
    };
    let forged = gateway::store::AuditRow {
        audit_no: 7,
        at: row[7].as_str().expect("at").parse().expect("at"),
        actor: "someone-else".into(),
        role: row[1].as_str().expect("role").into(),
        action: row[2].as_str().expect("action").into(),
        target: row[3].as_str().expect("target").into(),
        detail: row[4].as_str().expect("detail").into(),
        prev_hash: None,
        hash: None,
    };
    let forged_hash = gateway::store::record_hash(&forged, row[5].as_str().expect("prev"));
    exec(
        &db,
        &format!(
            "update audit set actor = 'someone-else', hash = '{forged_hash}' where audit_no = 7"
        ),
    )
    .await;
    let (code, out) = verify(&dir.0, &db);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("chain broken at record 8:") && out.contains("does not follow record 7"),
        "{out}"
    );
    exec(
        &db,
        &format!(
            "update audit set actor = '{}', hash = '{}' where audit_no = 7",
            row[0].as_str().expect("actor"),
            row[6].as_str().expect("hash")
        ),
    )
    .await;
    assert_eq!(verify(&dir.0, &db).0, 0);

    // A record removed from the middle.
    exec(&db, "delete from audit where audit_no = 3").await;
    let (code, out) = verify(&dir.0, &db);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("chain broken at record 3:") && out.contains("missing"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_the_last_record_is_seen() {
    let dir = TempDir::new("audit-tail");
    let db = dir.0.join("gw.db");
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .expect("store");
    for i in 0..5 {
        store
            .audit(1_000 + i, "admin", "admin", "blacklist-add", "bl_x", "{}")
            .await
            .expect("audit");
    }
    store.close().await;
    assert_eq!(verify(&dir.0, &db).0, 0);
    exec(&db, "delete from audit where audit_no = 5").await;
    let (code, out) = verify(&dir.0, &db);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("chain broken at record 5:") && out.contains("after 4 are missing"),
        "{out}"
    );
}

/// A store with audit records from before the chain: they stay, uncovered; the chain starts after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_from_before_the_chain_are_kept_and_not_covered() {
    let dir = TempDir::new("audit-legacy");
    let db = dir.0.join("gw.db");
    // The migrations released before the chain, applied by themselves.
    let old = dir.0.join("old-migrations");
    std::fs::create_dir_all(&old).expect("dir");
    let all = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for e in std::fs::read_dir(&all).expect("migrations") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if name.as_str() < "20261126104500" {
            std::fs::copy(e.path(), old.join(&name)).expect("copy");
        }
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}?mode=rwc", db.display()))
        .await
        .expect("db");
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .expect("migrator")
        .run(&pool)
        .await
        .expect("old migrations");
    for i in 1..=3 {
        sqlx::query(
            "insert into audit (at, actor, role, action, target, detail) values ($1, 'admin', 'admin', 'read-personal-data', 'old', '{}')",
        )
        .bind(i as i64)
        .execute(&pool)
        .await
        .expect("old record");
    }
    pool.close().await;

    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .expect("store migrates");
    store
        .audit(10, "admin", "admin", "blacklist-add", "bl_1", "{}")
        .await
        .expect("audit");
    store
        .audit(11, "admin", "admin", "blacklist-add", "bl_2", "{}")
        .await
        .expect("audit");
    let rows = store.list_audit(0, 100).await.expect("list");
    assert_eq!(
        rows.iter().map(|r| r.audit_no).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(rows[..3].iter().all(|r| r.hash.is_none()));
    assert_eq!(
        rows[3].prev_hash.as_deref(),
        Some(gateway::store::GENESIS_HASH)
    );
    let v = store.verify_audit().await.expect("verify");
    assert_eq!((v.chained, v.before_chain, v.head_no), (2, 3, 5));
    assert!(v.broken.is_none());
    store.close().await;

    let (code, out) = verify(&dir.0, &db);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 records, chain intact"), "{out}");
    assert!(out.contains("3 earlier records"), "{out}");
}

/// Two gateways' stores on one PostgreSQL database append at once: appends take turns on the head
/// row, so the chain has no gap, no fork and no record twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_on_postgres_keep_one_chain() {
    let pg = Pg::start();
    let url = pg.fresh_database();
    let a = Arc::new(Store::open(&url).await.expect("store a"));
    let b = Arc::new(Store::open(&url).await.expect("store b"));
    let mut tasks = Vec::new();
    for (name, store) in [("gw-a", a.clone()), ("gw-b", b.clone())] {
        for t in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    store
                        .audit(
                            i,
                            name,
                            "admin",
                            "read-personal-data",
                            &format!("{name}/{t}/{i}"),
                            "{}",
                        )
                        .await
                        .expect("append");
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("task");
    }
    let v = a.verify_audit().await.expect("verify");
    assert!(v.broken.is_none(), "{:?}", v.broken);
    assert_eq!((v.chained, v.head_no), (200, 200));
    let rows = b.list_audit(0, 1000).await.expect("list");
    assert_eq!(rows.len(), 200);
    assert!(rows.iter().any(|r| r.actor == "gw-a") && rows.iter().any(|r| r.actor == "gw-b"));
    a.close().await;
    b.close().await;
}
