//! The store: the repository the rest of the gateway talks to.
//!
//! One codebase for SQLite (the embedded default) and PostgreSQL: queries are written once, in the
//! portable subset (`$n` parameters, integer times and money, 0/1 flags) over sqlx's `Any` driver; only
//! DDL (migrations: `migrations/sqlite/` and `migrations/postgres/`, same versions) and work claiming
//! differ per backend. Write transactions on SQLite begin `IMMEDIATE`, so a transaction never fails
//! half-way on a lock upgrade, and SQLite has one writer at a time: a claim is a plain
//! `update ... returning`. On PostgreSQL several gateways may share the database, so a claim also
//! locks the rows it takes and skips rows another transaction is claiming
//! ([`Store::skip_locked`]).
//!
//! Portable-subset rules the queries keep: every integer column is `bigint` on PostgreSQL (the `Any`
//! driver decodes `i64`); `sum()` is cast to `bigint` (PostgreSQL sums `bigint` into `numeric`, which
//! `Any` cannot decode); flags are compared with 0/1, never `true`; no SQLite-only functions.
mod attempts;
mod audit;
mod batches;
mod handling;
mod leases;
mod misc;
mod notices;
mod parts;
mod read_only;
mod rotation;
mod sla;
pub use attempts::{Attempt, BankItem};
pub use audit::{AuditBreak, AuditVerdict, GENESIS_HASH, NewAudit, record_hash};
pub use batches::IntakeTx;
pub use leases::NamedLease;
pub use notices::{NoticeJob, NoticeRow};
pub use parts::{Claim, FinalInfo};
pub use rotation::{RotationPage, RotationScope};
pub use sla::{
    AccountFeedback, AgreementFigures, EvaluationPhase, InFlight, NewStrike, QueryDue, StrikeRow,
};
pub mod rows;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::keys::StoreKeys;

pub use rows::*;

/// Store errors. Messages never carry personal data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database said no.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value is not what the code expects.
    #[error("corrupt row in {table}: {problem}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// What.
        problem: String,
    },
    /// A write the store's rules forbid (a caller's bug, caught before the database would).
    #[error("refused: {0}")]
    Refused(String),
    /// The URL names no supported backend.
    #[error("unsupported store url `{0}` (sqlite://... or postgres://...)")]
    Url(String),
    /// A store opened for reading only is not one this binary can read as it is: missing, never
    /// migrated, or with migrations pending or unknown (see [`Store::open_read_only`]).
    #[error("{0}")]
    NotReady(String),
    /// A sealed personal field did not open (see `docs/encryption.md`).
    #[error("{table}.{column} of row {row}: {problem}")]
    Sealed {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// The row's key (ids and numbers, never personal data).
        row: String,
        /// Why.
        problem: crate::keys::SealError,
    },
}

/// Result alias.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file (WAL).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The gateway's store. Personal fields are sealed on the way in and opened on the way out with
/// its keys (`crate::keys`), so the rest of the code sees `Pii` values and never ciphertext.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    keys: std::sync::Arc<StoreKeys>,
}

impl Store {
    /// Opens (creating if needed) and migrates the store at `url`, with the development keys (tests).
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with_keys(url, StoreKeys::development()).await
    }

    /// Opens (creating if needed) and migrates the store at `url`; personal fields are sealed and
    /// opened with `keys`.
    pub async fn open_with_keys(url: &str, keys: StoreKeys) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            // The scheme only: the rest of a URL may hold a password.
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::Url(format!("{scheme}:...")));
        };
        let url = match backend {
            Backend::Sqlite => {
                if let Some(path) = url
                    .strip_prefix("sqlite://")
                    .map(|p| p.split('?').next().unwrap_or(p))
                    && let Some(parent) = std::path::Path::new(path)
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
                }
                if url.contains('?') {
                    url.to_owned()
                } else {
                    format!("{url}?mode=rwc")
                }
            }
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 6 } else { 16 })
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL with full sync: a commit is durable when it returns; commits are grouped
                        // by the callers instead of weakening this.
                        conn.execute("pragma journal_mode = wal").await?;
                        conn.execute("pragma synchronous = full").await?;
                        conn.execute("pragma busy_timeout = 60000").await?;
                        conn.execute("pragma temp_store = memory").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let store = Self {
            pool,
            backend,
            keys: std::sync::Arc::new(keys),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The keys personal fields are sealed with.
    pub fn keys(&self) -> &StoreKeys {
        &self.keys
    }

    /// The pool (for health checks and tests).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a write transaction (IMMEDIATE on SQLite).
    pub(crate) async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("begin immediate").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// The locking clause of the sub-select that picks the rows a claim takes: on PostgreSQL the rows
    /// are locked, and rows another instance is claiming at that moment are skipped (not waited for,
    /// not taken twice); SQLite has one writer at a time and needs none.
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " for update skip locked",
        }
    }

    /// Whether the store answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("select 1").execute(&self.pool).await.is_ok()
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The `n`th parameter (from 1) of a statement built with [`placeholders`]: `?` on SQLite, `$n` on
/// PostgreSQL (parameters after the rows continue the numbering).
pub(crate) fn param(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_owned(),
        Backend::Postgres => format!("${n}"),
    }
}

/// Placeholders for `rows` rows of `cols` columns: plain `?` on SQLite, `$1, $2, ...` on PostgreSQL.
///
/// SQLite looks up a parameter's name linearly, and sqlx asks for the name of every parameter, so a
/// 10,000-parameter insert with numbered (`$n` or `?n`) parameters costs O(n²); anonymous `?` costs O(n).
/// Statements built with these must use no other parameters.
pub(crate) fn placeholders(backend: Backend, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            match backend {
                Backend::Sqlite => s.push('?'),
                Backend::Postgres => {
                    s.push('$');
                    s.push_str(&n.to_string());
                }
            }
            n += 1;
        }
        s.push(')');
    }
    s
}

/// A prefix that keeps a column's term off the indexes: SQLite's planner (3.51), given an equality on
/// an indexed column beside a join to a `values` list, may walk that index and scan the list for each
/// row (quadratic); with `+column` each value finds its row by the primary key. PostgreSQL has no unary
/// `+` on text, nor the need.
pub(crate) fn no_index(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "+",
        Backend::Postgres => "",
    }
}

/// The backend of a connection (for functions handed only a transaction).
pub(crate) fn backend_of(conn: &sqlx::AnyConnection) -> Backend {
    if conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// A statement whose text depends on its number of rows (a multi-row `values` or an `in` list), of
/// `rows` rows out of at most `full`. Only a full one is kept prepared. sqlx keeps up to 100 prepared
/// statements a connection, and one of a thousand rows holds about 90 KiB of SQLite's memory. Keeping
/// one for every row count a tail can have (the credited items of a group, the accepted payouts of a
/// step) grew the gateway by about 200 bytes an item through bank C's sending (issue 9,
/// docs/performance.md). A full statement is the common one: it is prepared once a connection.
pub(crate) fn rows_query(
    sql: String,
    rows: usize,
    full: usize,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(rows == full)
}

/// The list of an `in (...)` of `n` values (see [`placeholders`]).
pub(crate) fn in_list(backend: Backend, n: usize) -> String {
    let row = placeholders(backend, 1, n);
    row[1..row.len() - 1].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_per_backend() {
        assert_eq!(placeholders(Backend::Sqlite, 2, 2), "(?,?),(?,?)");
        assert_eq!(placeholders(Backend::Postgres, 2, 2), "($1,$2),($3,$4)");
        assert_eq!(in_list(Backend::Postgres, 3), "$1,$2,$3");
        assert_eq!(in_list(Backend::Sqlite, 2), "?,?");
    }

    fn migration_names(backend: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("migrations folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Both backends are migrated through the same versions: a migration added for one needs its twin.
    #[test]
    fn migration_sets_are_in_step() {
        let sqlite = migration_names("sqlite");
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, migration_names("postgres"));
    }

    /// PostgreSQL DDL keeps to `bigint` (the `Any` driver decodes `i64` from it) and identities.
    #[test]
    fn postgres_ddl_has_no_sqlite_types() {
        for name in migration_names("postgres") {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations/postgres")
                .join(&name);
            let text = std::fs::read_to_string(path).expect("migration");
            for line in text.lines() {
                let code = line.split("--").next().unwrap_or("").to_lowercase();
                for word in [
                    "integer",
                    "autoincrement",
                    " int ",
                    " int,",
                    "boolean",
                    " real",
                ] {
                    assert!(!code.contains(word), "{name}: `{word}` in `{line}`");
                }
            }
        }
    }
}
