//! The audit log is a hash chain (`store/audit.rs`):
//!
//! - records made through the API (blacklist changes, an admin's reads of full personal data) are
//!   chained and numbered without gaps, `GET /v1/audit` shows their hashes, and `gateway audit verify`
//!   (the binary) says the chain is intact;
//! - one record's detail changed in the SQLite file: verify exits 1 naming that record; put back, intact
//!   again; a record removed from the middle, or the last one: verify exits 1 naming the gap;
//! - records written before the chain existed stay readable and are reported as not covered;
//! - two stores (two gateways) appending at once on one PostgreSQL database keep one unbroken chain;
//! - a change and its record are one transaction: when no record can be written (the chain's head row
//!   gone), every audited change fails and leaves nothing, on SQLite and PostgreSQL; an admin's read
//!   of full personal data gets the error instead of the data;
//! - `gateway audit verify` changes nothing: a store with migrations pending is refused (exit 2) and
//!   left byte for byte as it was, a missing one is not created; on PostgreSQL its session cannot write.
mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::pg::Pg;
use common::*;
use gateway::domain::{AccountKind, ItemStatus, Pii, RecipientKind};
use gateway::store::{
    BlacklistRow, EvaluationPhase, EventRow, NewAudit, NewBatch, NewItem, NewPart, NewStrike,
    Store, StoreResult,
};
use serde_json::{Value, json};
use sqlx::Row;

/// Runs `gateway audit verify` on the store at `db`; exit code, stdout and stderr.
fn run_verify(dir: &Path, db: &Path) -> (i32, String, String) {
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
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `gateway audit verify` on the store at `db`, which it must be able to check; exit code and
/// stdout.
fn verify(dir: &Path, db: &Path) -> (i32, String) {
    let (code, stdout, stderr) = run_verify(dir, db);
    assert_ne!(code, 2, "verify could not run: {stderr}");
    (code, stdout)
}

/// A store at `db` migrated only as far as the releases before the audit chain.
async fn store_before_the_chain(dir: &Path, db: &Path) -> sqlx::AnyPool {
    let url = format!("sqlite://{}?mode=rwc", db.display());
    store_migrated_before(&url, "sqlite", "20261126104500", dir).await
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
    let pool = store_before_the_chain(&dir.0, &db).await;
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

/// `gateway audit verify` changes nothing it checks: a store with migrations pending is refused (exit
/// 2, naming them) and left byte for byte as it was; a store that is not there is not created. Once
/// `serve` (here: the store's open) has migrated it, the same command checks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_pending_migrations_and_changes_nothing() {
    let dir = TempDir::new("audit-verify-ro");
    let db = dir.0.join("gw.db");
    let pool = store_before_the_chain(&dir.0, &db).await;
    sqlx::query(
        "insert into audit (at, actor, role, action, target, detail) values (1, 'admin', 'admin', 'read-personal-data', 'old', '{}')",
    )
    .execute(&pool)
    .await
    .expect("old record");
    pool.close().await;
    let digest = |db: &Path| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(db).expect("store file")))
    };
    let before = digest(&db);
    let migrations = count_rows(&db, "_sqlx_migrations").await;

    let (code, out, err) = run_verify(&dir.0, &db);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("4 migration(s) of this gateway are pending")
            && err.contains("20261126104500 (audit chain)")
            && err.contains("20261126120000 (pii at rest)")
            && err.contains("20261126160000 (claims)")
            && err.contains("20261208000000 (items pii)")
            && err.contains("gateway serve"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
    assert_eq!(digest(&db), before, "the store file changed");
    assert_eq!(count_rows(&db, "_sqlx_migrations").await, migrations);
    let head = query_texts(
        &db,
        "select name from sqlite_master where type = 'table' and name = 'audit_head'",
    )
    .await;
    assert!(head.is_none(), "the chain's migration ran: {head:?}");

    // A store that is not there.
    let missing = dir.0.join("elsewhere").join("none.db");
    let (code, _, err) = run_verify(&dir.0, &missing);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no SQLite store at"), "{err}");
    assert!(!missing.exists() && !dir.0.join("elsewhere").exists());

    // Migrated by the gateway: checked, and still not changed by the check.
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .expect("migrates");
    store.close().await;
    let migrated = digest(&db);
    let (code, out) = verify(&dir.0, &db);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 records, chain intact"), "{out}");
    assert!(out.contains("1 earlier records"), "{out}");
    assert_eq!(digest(&db), migrated);
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

    // Opened as `gateway audit verify` opens it: the chain reads the same, and nothing can be written.
    let check = Store::open_read_only(&url, gateway::keys::StoreKeys::development())
        .await
        .expect("read-only store");
    let v = check.verify_audit().await.expect("verify");
    assert!(v.broken.is_none(), "{:?}", v.broken);
    assert_eq!((v.chained, v.head_no), (200, 200));
    let refused = check
        .audit(1, "gw-c", "admin", "read-personal-data", "x", "{}")
        .await
        .expect_err("a read-only session wrote");
    assert!(refused.to_string().contains("read-only"), "{refused}");
    check.close().await;
}

// ---------------------------------------------------------------------------------------------------
// A change and its audit record are one transaction.

const T: i64 = 1_795_000_000_000;
const DEPT: &str = "220623-NYNC";

fn new_batch(batch_id: &str) -> NewBatch {
    NewBatch {
        batch_id: batch_id.into(),
        batch_no: format!("NO-{batch_id}"),
        body_hash: String::new(),
        parent_batch_id: None,
        department_code: DEPT.into(),
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
        total_count: 3,
        total_amount_fen: 300,
        created_at: T,
        start_late: false,
    }
}

fn new_item(seq: i64, status: ItemStatus, part_id: &str) -> NewItem {
    NewItem {
        seq,
        recipient_kind: RecipientKind::Person,
        name: Pii::new("张三"),
        id_no: Pii::new(format!("22062319800101{seq:04}")),
        account_no: Pii::new(format!("6217{seq:015}")),
        account_kind: AccountKind::Ssc,
        account_bank_code: "105241000012".into(),
        amount_fen: 100,
        phone: Pii::new("13800000000"),
        ssc_exempt: false,
        memo: String::new(),
        status,
        reject_code: None,
        reject_message: None,
        part_id: Some(part_id.into()),
        claim_key: Some(gateway::keys::LookupKey::development().claim(
            &seq.to_string(),
            "S1",
            "2026",
        )),
        replaces: None,
    }
}

fn record(action: &str, target: &str) -> NewAudit {
    NewAudit::new(T + 1, "admin", "admin", action, target, "{}")
}

/// What the changes below could touch, as text: row counts and the items' states.
async fn fingerprint(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for table in [
        "batches",
        "items",
        "parts",
        "events",
        "strikes",
        "past_ratings",
        "disqualifications",
        "blacklist",
        "audit",
    ] {
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "select count(*) as n from {table}"
        )))
        .fetch_one(store.pool())
        .await
        .expect("count")
        .try_get("n")
        .expect("n");
        out.push(format!("{table}: {n}"));
    }
    for i in store.list_items("b1", None, 0, 100).await.expect("items") {
        out.push(format!("b1/{}: {}", i.seq, i.status));
    }
    out
}

/// Every audited change, from the store's side, each with the answer it gives when it is made.
async fn make_changes(store: &Store) -> Vec<StoreResult<String>> {
    let entry = BlacklistRow {
        entry_id: "bl1".into(),
        kind: "account_no".into(),
        value: "6217995505724754105".into(),
        reason: "冒领".into(),
        added_by: "admin".into(),
        added_at: T + 1,
    };
    let mut sub = new_batch("b2");
    sub.parent_batch_id = Some("b1".into());
    sub.total_count = 1;
    sub.total_amount_fen = 100;
    let mut item = new_item(3, ItemStatus::Pending, "p2");
    item.claim_key = None;
    item.replaces = Some(("b1".into(), 3));
    let part = NewPart {
        part_id: "p2".into(),
        bank_ref: "R000002".into(),
        part_no: 0,
        item_count: 1,
        amount_fen: 100,
    };
    let ev = |kind: &str| vec![EventRow::new(kind, T + 1, BANK_A, json!({})).batch("b1")];
    vec![
        store
            .add_blacklist(&entry, "h1", &record("blacklist-add", "bl1"))
            .await
            .map(|r| format!("{r:?}")),
        store
            .delete_blacklist("bl0", &record("blacklist-delete", "bl0"))
            .await
            .map(|r| format!("{r:?}")),
        store
            .settle_item(
                "b1",
                1,
                ItemStatus::Failed,
                ItemStatus::Returned,
                "back to the treasury",
                T + 1,
                &ev("item.returned"),
                &record("item-return", "b1/1"),
            )
            .await
            .map(|r| format!("{r:?}")),
        store
            .settle_item(
                "b1",
                2,
                ItemStatus::Review,
                ItemStatus::Succeeded,
                "the bank says paid",
                T + 1,
                &ev("item.resolved"),
                &record("item-resolve", "b1/2"),
            )
            .await
            .map(|r| format!("{r:?}")),
        store
            .reissue(
                ("b1", 3),
                &sub,
                &item,
                &part,
                BANK_A,
                "{}",
                &ev("item.corrected"),
                &record("item-correct", "b1/3"),
            )
            .await
            .map(|r| format!("{r:?}")),
        store
            .put_past_rating(
                BANK_A,
                DEPT,
                2025,
                "unqualified",
                "taken over",
                "admin",
                T + 1,
                &ev("rating.recorded"),
                &record("rating-record", "402241000015/2025"),
            )
            .await
            .map(|r| format!("{r:?}")),
        store
            .disqualify(
                BANK_A,
                DEPT,
                "two years",
                "admin",
                T + 1,
                &ev("disqualification.confirmed"),
                &record("disqualify", BANK_A),
            )
            .await
            .map(|r| format!("{r:?}")),
        store
            .void_strike(
                BANK_A,
                "s1",
                "s1v",
                "the delay was ours",
                T + 1,
                &ev("strike.voided"),
                &record("strike-void", "s1"),
            )
            .await
            .map(|r| format!("{r:?}")),
    ]
}

/// With the chain's head row gone every append fails, so each change must fail and leave nothing
/// behind; with the head back, each is made with its record and the chain is intact. Were a record
/// written after its change in a transaction of its own, the changes would stay without records.
async fn changes_are_stored_with_their_records_or_not_at_all(store: &Store) {
    // A batch with two failed items and one for review, a strike, a blacklist entry to remove.
    let mut tx = store.begin_intake(&new_batch("b1")).await.expect("intake");
    tx.insert_items(&[
        new_item(1, ItemStatus::Failed, "p1"),
        new_item(2, ItemStatus::Review, "p1"),
        new_item(3, ItemStatus::Failed, "p1"),
    ])
    .await
    .expect("items");
    tx.insert_parts(
        BANK_A,
        T,
        &[NewPart {
            part_id: "p1".into(),
            bank_ref: "R000001".into(),
            part_no: 1,
            item_count: 3,
            amount_fen: 300,
        }],
    )
    .await
    .expect("parts");
    tx.finish((3, 300), 0, "{}", &[]).await.expect("finish");
    let strike = NewStrike {
        strike_id: "s1".into(),
        bank_code: BANK_A.into(),
        department_code: DEPT.into(),
        batch_id: "b1".into(),
        query_id: "q1".into(),
        roles: vec!["payout"],
        due_at: T,
        fed_back_at: None,
        year: 2026,
        evidence: json!({}),
    };
    let recorded = store
        .record_evaluation(
            "q1",
            EvaluationPhase::PayoutDeadline,
            &[strike],
            T,
            |_, _| Vec::new(),
        )
        .await
        .expect("strike");
    assert_eq!(recorded, 1);
    let first = BlacklistRow {
        entry_id: "bl0".into(),
        kind: "id_no".into(),
        value: "220623198001010001".into(),
        reason: "冒领".into(),
        added_by: "admin".into(),
        added_at: T,
    };
    assert_eq!(
        store
            .add_blacklist(&first, "h0", &record("blacklist-add", "bl0"))
            .await
            .expect("add"),
        Some("bl0".to_owned())
    );

    let head = sqlx::query("select chain_start, audit_no, hash from audit_head")
        .fetch_one(store.pool())
        .await
        .expect("head");
    let (start, no, hash): (i64, i64, String) = (
        head.try_get("chain_start").expect("chain_start"),
        head.try_get("audit_no").expect("audit_no"),
        head.try_get("hash").expect("hash"),
    );
    let before = fingerprint(store).await;
    assert!(before.contains(&"audit: 1".to_owned()), "{before:?}");

    sqlx::query("delete from audit_head")
        .execute(store.pool())
        .await
        .expect("break the head");
    for (i, outcome) in make_changes(store).await.into_iter().enumerate() {
        let err = outcome.expect_err(&format!("change {i} was made without its audit record"));
        assert!(err.to_string().contains("audit_head"), "change {i}: {err}");
    }
    assert_eq!(
        fingerprint(store).await,
        before,
        "a change stayed without its record"
    );

    sqlx::query("insert into audit_head (id, chain_start, audit_no, hash) values (1, $1, $2, $3)")
        .bind(start)
        .bind(no)
        .bind(&hash)
        .execute(store.pool())
        .await
        .expect("restore the head");
    let made: Vec<String> = make_changes(store)
        .await
        .into_iter()
        .map(|r| r.expect("change"))
        .collect();
    assert_eq!(
        made,
        [
            "Some(\"bl1\")",
            "true",
            "true",
            "true",
            "true",
            "()",
            "true",
            "Some(true)"
        ]
    );
    let after = fingerprint(store).await;
    assert_ne!(after, before);
    assert!(after.contains(&"audit: 9".to_owned()), "{after:?}");
    let actions: Vec<String> = store
        .list_audit(1, 100)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| format!("{} {}", r.action, r.target))
        .collect();
    assert_eq!(
        actions,
        [
            "blacklist-add bl1",
            "blacklist-delete bl0",
            "item-return b1/1",
            "item-resolve b1/2",
            "item-correct b1/3",
            "rating-record 402241000015/2025",
            "disqualify 402241000015",
            "strike-void s1"
        ]
    );
    let v = store.verify_audit().await.expect("verify");
    assert!(v.broken.is_none(), "{:?}", v.broken);
    assert_eq!((v.chained, v.head_no), (9, 9));

    // A change refused for its state (made already) writes no record either.
    assert!(
        !store
            .delete_blacklist("bl0", &record("blacklist-delete", "bl0"))
            .await
            .expect("delete")
    );
    assert_eq!(
        store
            .void_strike(
                BANK_A,
                "s1",
                "s1w",
                "again",
                T + 2,
                &[],
                &record("strike-void", "s1")
            )
            .await
            .expect("void"),
        Some(false)
    );
    assert_eq!(fingerprint(store).await, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_and_records_are_one_transaction_on_sqlite() {
    let dir = TempDir::new("audit-atomic");
    let store = Store::open(&format!("sqlite://{}", dir.0.join("gw.db").display()))
        .await
        .expect("store");
    changes_are_stored_with_their_records_or_not_at_all(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_and_records_are_one_transaction_on_postgres() {
    let pg = Pg::start();
    let store = Store::open(&pg.fresh_database()).await.expect("store");
    changes_are_stored_with_their_records_or_not_at_all(&store).await;
    store.close().await;
}

/// An admin's read of full personal data is answered only once its record is stored: with the
/// chain's head gone (no record can be written) the read gets the error and none of the data, and an
/// audited change through the API is not made; the masked reads go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_reads_are_answered_only_once_recorded() {
    let dir = TempDir::new("audit-read-first");
    let db = dir.0.join("gw.db");
    let bank = bank_a(|_| {}).await;
    let gw = gateway(config(&db, &bank.addr.to_string())).await;
    let api = Api::new(gw.addr);
    let roster = gen_roster(&["--items", "10", "--seed", "89", "--payout-bank", BANK_A]);
    let ids: Vec<String> = serde_json::from_slice::<Value>(&roster).expect("roster")["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id_no"].as_str().expect("id_no").to_owned())
        .collect();
    let (s, answer) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{answer}");
    let items = format!(
        "/v1/batches/{}/items",
        answer["batch_id"].as_str().expect("batch_id")
    );
    let listed = "6217995505724754105";
    let (s, v) = api
        .post(
            ADMIN,
            "/v1/blacklist",
            Some(json!({"kind": "account_no", "value": listed, "reason": "r"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    let head = query_texts(
        &db,
        "select cast(chain_start as text), cast(audit_no as text), hash from audit_head",
    )
    .await
    .expect("head");
    let head: Vec<String> = head.into_iter().map(|t| t.expect("text")).collect();
    exec(&db, "delete from audit_head").await;

    let (s, v) = api.get(ADMIN, &items).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (500, Some("E-INTERNAL")),
        "{v}"
    );
    let (s, v2) = api.get(ADMIN, "/v1/blacklist").await;
    assert_eq!(s, 500, "{v2}");
    for answer in [&v, &v2] {
        let text = answer.to_string();
        assert!(!text.contains(listed), "{text}");
        assert!(ids.iter().all(|id| !text.contains(id.as_str())), "{text}");
    }
    let (s, v) = api
        .post(
            ADMIN,
            "/v1/blacklist",
            Some(json!({"kind": "account_no", "value": "6217995505724754113", "reason": "r"})),
        )
        .await;
    assert_eq!(s, 500, "{v}");
    // Masked reads are not recorded, so they go on.
    let (s, v) = api.get(SUBMITTER, &items).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(10));

    exec(
        &db,
        &format!(
            "insert into audit_head (id, chain_start, audit_no, hash) values (1, {}, {}, '{}')",
            head[0], head[1], head[2]
        ),
    )
    .await;
    let (s, v) = api.get(ADMIN, "/v1/blacklist").await;
    assert_eq!(s, 200, "{v}");
    let entries = v["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "the refused change left nothing: {v}");
    assert_eq!(entries[0]["value"], listed);
    let (s, v) = api.get(ADMIN, &items).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["items"][0]["id_no"], ids[0].as_str());
    let (s, audit) = api.get(AUDITOR, "/v1/audit").await;
    assert_eq!(s, 200, "{audit}");
    let actions: Vec<String> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| format!("{} {}", r["action"], r["target"]))
        .collect();
    assert_eq!(
        actions.len(),
        3,
        "one change and two reads, nothing from the refused requests: {actions:?}"
    );
    assert!(actions[0].starts_with("\"blacklist-add\""), "{actions:?}");
    assert_eq!(actions[1], "\"read-personal-data\" \"blacklist\"");
    assert!(
        actions[2].starts_with("\"read-personal-data\" \"batch "),
        "{actions:?}"
    );
    gw.shutdown().await;
    drop(bank);
    let (code, out) = verify(&dir.0, &db);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 records, chain intact"), "{out}");
}
