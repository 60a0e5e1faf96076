//! Shared helpers of the end-to-end scenarios: a gateway (in-process or as a child process) on SQLite in
//! a temp folder or on a throwaway PostgreSQL cluster ([`TestStore`]), the bank simulators on loopback,
//! rosters from `shared/tools/gen_roster.py`.
#![allow(dead_code)]

pub mod pg;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bank_profiles::DurationText;
use gateway::clock::SystemClock;
use gateway::config::{self, Config, Role, Token};
use gateway::server::{self, Running};
use serde_json::Value;
use simulators::{FixedWidthSim, FixedWidthSimConfig, SimHandle};

pub const SUBMITTER: &str = "test-submitter-token";
pub const AUDITOR: &str = "test-auditor-token";
pub const ADMIN: &str = "test-admin-token";
pub const BANK_A: &str = "402241000015";

/// The shared folder beside the repository (CI lays a copy there).
pub fn shared() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    assert!(
        p.join("tools/gen_roster.py").exists(),
        "the shared folder is missing at {}",
        p.display()
    );
    p
}

/// Runs `gen_roster.py` with `args`; returns stdout.
pub fn gen_roster(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("python3")
        .arg(shared().join("tools/gen_roster.py"))
        .args(args)
        .output()
        .expect("python3 runs gen_roster.py");
    assert!(
        out.status.success(),
        "gen_roster.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A temp folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "gw-test-{tag}-{}-{}",
            std::process::id(),
            ulid::Ulid::new()
        ));
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn bank_a_profile() -> bank_profiles::Profile {
    bank_profiles::builtin().expect("profiles")[BANK_A].clone()
}

/// A bank A simulator with `tune` applied.
pub async fn bank_a(tune: impl FnOnce(&mut FixedWidthSimConfig)) -> SimHandle {
    let mut cfg = FixedWidthSimConfig::new(bank_a_profile());
    cfg.processing = Duration::from_millis(800);
    tune(&mut cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    FixedWidthSim::start(cfg, listener).expect("simulator")
}

/// A config for a gateway on `db` talking to bank A at `bank_a_addr`.
pub fn config(db: &Path, bank_a_addr: &str) -> Config {
    config_at(&format!("sqlite://{}", db.display()), bank_a_addr)
}

/// A config for a gateway on the store at `store_url` talking to bank A at `bank_a_addr`.
pub fn config_at(store_url: &str, bank_a_addr: &str) -> Config {
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.store.url = store_url.to_owned();
    cfg.tokens = vec![
        Token {
            token: Some(SUBMITTER.into()),
            token_sha256: None,
            role: Role::Submitter,
            name: Some("platform".into()),
        },
        Token {
            token: Some(AUDITOR.into()),
            token_sha256: None,
            role: Role::Auditor,
            name: Some("auditor".into()),
        },
        Token {
            token: Some(ADMIN.into()),
            token_sha256: None,
            role: Role::Admin,
            name: Some("admin".into()),
        },
    ];
    cfg.banks.insert(
        BANK_A.into(),
        config::Bank {
            endpoint: bank_a_addr.into(),
            poll_interval: Some(DurationText(Duration::from_millis(500))),
            ..Default::default()
        },
    );
    cfg
}

/// Starts an in-process gateway.
pub async fn gateway(cfg: Config) -> Running {
    server::start(cfg, Arc::new(SystemClock::default()))
        .await
        .expect("gateway starts")
}

/// An HTTP client of the gateway.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(addr: impl std::fmt::Display) -> Self {
        server::install_crypto();
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()
                .expect("client"),
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub async fn submit_json(&self, token: &str, body: Vec<u8>) -> (u16, Value) {
        self.send(
            self.http
                .post(format!("{}/v1/batches", self.base))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    pub async fn post(&self, token: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// Waits until the batch is final; returns it.
    pub async fn wait_final(&self, batch_id: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let (status, b) = self
                .get(SUBMITTER, &format!("/v1/batches/{batch_id}"))
                .await;
            assert_eq!(status, 200, "{b}");
            if b["status"] == "final" {
                return b;
            }
            assert!(
                started.elapsed() < limit,
                "batch not final after {limit:?}: {b}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Every item of a batch.
    pub async fn all_items(&self, batch_id: &str, status: Option<&str>) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let filter = status.map(|s| format!("&status={s}")).unwrap_or_default();
            let (code, page) = self
                .get(
                    SUBMITTER,
                    &format!("/v1/batches/{batch_id}/items?after_seq={after}&limit=10000{filter}"),
                )
                .await;
            assert_eq!(code, 200, "{page}");
            out.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_after_seq"].as_i64() {
                Some(n) => after = n,
                None => return out,
            }
        }
    }
}

/// The store backends a scenario can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreBackend {
    /// A SQLite file in the scenario's temp folder (the embedded default).
    Sqlite,
    /// A database in a throwaway PostgreSQL cluster ([`pg::Pg`]).
    Postgres,
}

/// A scenario's store: its URL for `[store] url`, and the cluster behind it (stopped when this is
/// dropped) on PostgreSQL.
pub struct TestStore {
    pub backend: StoreBackend,
    pub url: String,
    _pg: Option<pg::Pg>,
}

impl TestStore {
    /// A fresh store on `backend`; a SQLite file goes in `dir`.
    pub fn new(backend: StoreBackend, dir: &Path) -> Self {
        match backend {
            StoreBackend::Sqlite => Self {
                backend,
                url: format!("sqlite://{}", dir.join("gw.db").display()),
                _pg: None,
            },
            StoreBackend::Postgres => {
                let pg = pg::Pg::start();
                Self {
                    backend,
                    url: pg.url(),
                    _pg: Some(pg),
                }
            }
        }
    }

    /// A gateway config on this store talking to bank A at `bank_a_addr` (as [`config`]).
    pub fn config(&self, bank_a_addr: &str) -> Config {
        config_at(&self.url, bank_a_addr)
    }

    /// Rows of `from`: a table, perhaps with a `where` clause.
    pub async fn count_rows(&self, from: &str) -> i64 {
        count_rows_at(&self.url, from).await
    }
}

/// Rows of `from` (a table, perhaps with a `where` clause) in the store at `url` (SQLite or
/// PostgreSQL).
pub async fn count_rows_at(url: &str, from: &str) -> i64 {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("open store");
    let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select count(*) as n from {from}"
    )))
    .fetch_one(&pool)
    .await
    .expect("count")
    .try_get("n")
    .expect("n");
    pool.close().await;
    n
}

/// Rows of a table in the SQLite file (to prove the store unchanged).
pub async fn count_rows(db: &Path, table: &str) -> i64 {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open db");
    let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select count(*) as n from {table}"
    )))
    .fetch_one(&pool)
    .await
    .expect("count")
    .try_get("n")
    .expect("n");
    pool.close().await;
    n
}

pub const BANK_B: &str = "103241000018";
pub const BANK_C: &str = "403241000011";
/// The MAC test key of bank C's spec.
pub const BANK_C_TEST_KEY: &str = "0123456789ABCDEFFEDCBA9876543210";

/// A bank C simulator with `tune` applied (results final after 800 ms).
pub async fn bank_c(tune: impl FnOnce(&mut simulators::Iso8583SimConfig)) -> SimHandle {
    let profile = bank_profiles::builtin().expect("profiles")[BANK_C].clone();
    let mut cfg = simulators::Iso8583SimConfig::new(profile);
    cfg.processing = Duration::from_millis(800);
    tune(&mut cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    simulators::Iso8583Sim::start(cfg, listener).expect("simulator")
}

/// Adds bank C at `addr` to `cfg`, its MAC key in a file under `dir`.
pub fn with_bank_c(cfg: &mut Config, addr: &str, dir: &Path) {
    let key = dir.join("bank-c.key");
    std::fs::write(&key, format!("{BANK_C_TEST_KEY}\n")).expect("key file");
    cfg.banks.insert(
        BANK_C.into(),
        config::Bank {
            endpoint: addr.into(),
            mac_key_file: Some(key),
            poll_interval: Some(DurationText(Duration::from_millis(500))),
            request_timeout: Some(DurationText(Duration::from_secs(2))),
            ..Default::default()
        },
    );
}

/// A bank B simulator (HTTPS, mutual TLS, validating every document against the pain.001 XSD) with
/// `tune` applied; results final after 800 ms.
pub async fn bank_b(
    tune: impl FnOnce(&mut simulators::Iso20022SimConfig),
) -> simulators::Iso20022SimHandle {
    let profile = bank_profiles::builtin().expect("profiles")[BANK_B].clone();
    let mut cfg = simulators::Iso20022SimConfig::new(profile);
    cfg.processing = Duration::from_millis(800);
    cfg.xsd = Some(shared().join("data/xsd/pain.001.001.09.xsd"));
    tune(&mut cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    simulators::Iso20022Sim::start(cfg, listener)
        .await
        .expect("simulator")
}

/// Adds bank B to `cfg`: its endpoint, and the CA and client certificate of `pki` written under `dir`.
pub fn with_bank_b(cfg: &mut Config, addr: &str, pki: &simulators::TestPki, dir: &Path) {
    let files = pki.write_to(&dir.join("pki-b")).expect("PEM files");
    cfg.banks.insert(
        BANK_B.into(),
        config::Bank {
            endpoint: format!("https://{addr}"),
            ca: Some(files.ca),
            client_cert: Some(files.client_cert),
            client_key: Some(files.client_key),
            poll_interval: Some(DurationText(Duration::from_millis(500))),
            ..Default::default()
        },
    );
}

/// The text columns of the first row `sql` selects from the SQLite store at `db` (`None` when no row).
pub async fn query_texts(db: &Path, sql: &str) -> Option<Vec<Option<String>>> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open db");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_optional(&pool)
        .await
        .expect("query");
    let out = row.map(|r| {
        (0..r.columns().len())
            .map(|i| r.try_get::<Option<String>, _>(i).expect("text"))
            .collect()
    });
    pool.close().await;
    out
}

/// A store as an earlier version of this gateway left it: the migrations of `backend` (`sqlite` or
/// `postgres`) older than `before` (a version prefix), copied into `dir` and applied to `url`.
pub async fn store_migrated_before(
    url: &str,
    backend: &str,
    before: &str,
    dir: &Path,
) -> sqlx::AnyPool {
    let old = dir.join(format!("old-migrations-{backend}"));
    std::fs::create_dir_all(&old).expect("dir");
    let all = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    for e in std::fs::read_dir(&all).expect("migrations") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if name.as_str() < before {
            std::fs::copy(e.path(), old.join(&name)).expect("copy");
        }
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("db");
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .expect("migrator")
        .run(&pool)
        .await
        .expect("old migrations");
    pool
}

/// Starts the `gateway` binary as a child process: `serve --config FILE` (logs as `GW_TEST_LOG` says,
/// `warn` by default).
pub fn spawn_gateway(config: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["serve", "--config"])
        .arg(config)
        .env(
            "RUST_LOG",
            std::env::var("GW_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("gateway starts")
}

/// Waits until the gateway behind `api` answers `/healthz` (at most 30 s).
pub async fn wait_healthy(api: &Api) {
    let started = Instant::now();
    loop {
        if let Ok(r) = api.http.get(format!("{}/healthz", api.base)).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "gateway did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
