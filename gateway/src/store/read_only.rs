//! Opening a store for reading only, as a check does (`gateway audit verify`): a check must not change
//! what it checks. Nothing is created or migrated, and no connection can write: SQLite opens the file
//! `mode=ro` (a missing file is an error, not a new empty store), PostgreSQL sessions are `read only`.
//! A store whose migrations are not exactly this binary's (some pending, or some from a newer binary)
//! is refused with the versions named: its tables are not the ones this binary reads.
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Executor, Row};

use super::{Backend, Store, StoreError, StoreResult};
use crate::keys::StoreKeys;

impl Store {
    /// Opens the existing store at `url` for reading only; personal fields open with `keys`.
    /// [`StoreError::NotReady`] when the store is missing, was never migrated, or has migrations
    /// pending or unknown to this binary.
    pub async fn open_read_only(url: &str, keys: StoreKeys) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = read_only_url(url)?;
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    match backend {
                        // No journal mode or sync setting here: those are the writers' (and setting
                        // WAL needs write access).
                        Backend::Sqlite => {
                            conn.execute("pragma busy_timeout = 60000").await?;
                            conn.execute("pragma query_only = 1").await?;
                        }
                        Backend::Postgres => {
                            conn.execute("set session characteristics as transaction read only")
                                .await?;
                        }
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
        if let Err(e) = store.check_migrations().await {
            store.close().await;
            return Err(e);
        }
        Ok(store)
    }

    /// Refuses a store whose applied migrations are not exactly this binary's.
    async fn check_migrations(&self) -> StoreResult<()> {
        let (migrator, has_table): (Migrator, &str) = match self.backend {
            Backend::Sqlite => (
                sqlx::migrate!("migrations/sqlite"),
                "select count(*) as n from sqlite_master where type = 'table' and name = '_sqlx_migrations'",
            ),
            Backend::Postgres => (
                sqlx::migrate!("migrations/postgres"),
                "select count(*) as n from information_schema.tables \
                 where table_schema = current_schema() and table_name = '_sqlx_migrations'",
            ),
        };
        let n: i64 = sqlx::query(has_table)
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        if n == 0 {
            return Err(StoreError::NotReady(
                "the store has no migrations table: it is not a gateway's store, or no gateway \
                 was ever started on it"
                    .into(),
            ));
        }
        let applied: Vec<i64> =
            sqlx::query("select version from _sqlx_migrations where success order by version")
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| r.try_get("version"))
                .collect::<Result<_, _>>()?;
        let known: Vec<(i64, String)> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| (m.version, format!("{} ({})", m.version, m.description)))
            .collect();
        match migration_gap(&known, &applied) {
            None => Ok(()),
            Some(problem) => Err(StoreError::NotReady(problem)),
        }
    }
}

/// What differs between this binary's migrations (`known`: version and name) and the store's
/// (`applied`): pending ones, or ones this binary does not know. `None` when they are the same.
fn migration_gap(known: &[(i64, String)], applied: &[i64]) -> Option<String> {
    let unknown: Vec<String> = applied
        .iter()
        .filter(|v| !known.iter().any(|(k, _)| k == *v))
        .map(i64::to_string)
        .collect();
    if !unknown.is_empty() {
        return Some(format!(
            "the store has migrations this gateway does not know ({}): a newer gateway migrated \
             it; use that version",
            unknown.join(", ")
        ));
    }
    let pending: Vec<&str> = known
        .iter()
        .filter(|(v, _)| !applied.contains(v))
        .map(|(_, name)| name.as_str())
        .collect();
    (!pending.is_empty()).then(|| {
        format!(
            "{} migration(s) of this gateway are pending on the store ({}); this command does \
             not change the store: start `gateway serve` of this version once (it migrates), \
             then run it again",
            pending.len(),
            pending.join(", ")
        )
    })
}

/// The backend of `url`, and the URL to open it for reading only.
fn read_only_url(url: &str) -> StoreResult<(Backend, String)> {
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        // The scheme only: the rest of a URL may hold a password.
        let scheme = url.split(':').next().unwrap_or_default();
        return Err(StoreError::Url(format!("{scheme}:...")));
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::NotReady(
            "an in-memory SQLite store has nothing to check".into(),
        ));
    }
    if !std::path::Path::new(path).is_file() {
        return Err(StoreError::NotReady(format!(
            "no SQLite store at {path} (nothing is created: check store.url)"
        )));
    }
    // The store's own mode (rwc, ...) gives way to read-only.
    let mut params: Vec<&str> = params
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("mode="))
        .collect();
    params.push("mode=ro");
    Ok((
        Backend::Sqlite,
        format!("sqlite://{path}?{}", params.join("&")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<(i64, String)> {
        vec![(1, "1 (initial)".into()), (2, "2 (more)".into())]
    }

    #[test]
    fn migrations_must_match_exactly() {
        assert_eq!(migration_gap(&known(), &[1, 2]), None);
        let pending = migration_gap(&known(), &[1]).expect("pending");
        assert!(
            pending.starts_with("1 migration(s)") && pending.contains("2 (more)"),
            "{pending}"
        );
        let newer = migration_gap(&known(), &[1, 2, 3]).expect("unknown");
        assert!(newer.contains("does not know (3)"), "{newer}");
    }

    #[test]
    fn sqlite_urls_are_opened_read_only() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("gw.db");
        std::fs::write(&db, b"").expect("file");
        let url = format!("sqlite://{}?mode=rwc&cache=shared", db.display());
        let (backend, ro) = read_only_url(&url).expect("url");
        assert_eq!(backend, Backend::Sqlite);
        assert_eq!(
            ro,
            format!("sqlite://{}?cache=shared&mode=ro", db.display())
        );
        let missing = format!("sqlite://{}", dir.path().join("none.db").display());
        let err = read_only_url(&missing).expect_err("missing");
        assert!(err.to_string().contains("no SQLite store at"), "{err}");
        assert!(!dir.path().join("none.db").exists());
        let err = read_only_url("mysql://user:secret@host/db").expect_err("scheme");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert_eq!(
            read_only_url("postgres://gw@/gateway?host=/run/postgresql")
                .expect("pg")
                .0,
            Backend::Postgres
        );
    }
}
