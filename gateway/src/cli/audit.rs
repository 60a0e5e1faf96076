//! `gateway audit`: checks of the audit log.
//!
//! ```text
//! gateway audit verify --config FILE
//!   exit 0  "N records, chain intact" (and the head: its last record and hash)
//!   exit 1  the first record that breaks the chain, and why
//!   exit 2  the check could not run (config, store)
//! ```
//! It opens the store of the config for reading only ([`Store::open_read_only`]): it creates,
//! migrates and writes nothing, so a store with migrations pending (or from a newer gateway) is
//! refused with exit 2, naming them, rather than changed by its check. It needs no data key (the
//! audit log holds no sealed field, so the store is opened with the development keys and never uses
//! them): whoever checks the chain need not be able to read personal data. See `store/audit.rs` for
//! the chain and docs/security.md for how to use it.
use std::path::PathBuf;

use clap::Subcommand;

use crate::config::{Config, ConfigError};
use crate::keys::StoreKeys;
use crate::store::{AuditVerdict, Store, StoreError};

/// `gateway audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the audit log's hash chain; exit 1 naming the first broken record.
    Verify {
        /// The gateway's TOML config (its `store.url` is checked).
        #[arg(long)]
        config: PathBuf,
    },
}

/// Why a check could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditCliError {
    /// The config could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened or read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What a check found: the text to print and the exit code.
#[derive(Debug)]
pub struct Report {
    /// Lines for stdout.
    pub text: String,
    /// 0 intact, 1 broken.
    pub exit_code: i32,
}

/// Runs a command.
pub async fn run(cmd: AuditCommand) -> Result<Report, AuditCliError> {
    match cmd {
        AuditCommand::Verify { config } => {
            let cfg = Config::load(&config)?;
            let store = Store::open_read_only(&cfg.store.url, StoreKeys::development()).await?;
            let verdict = store.verify_audit().await;
            store.close().await;
            Ok(report(&verdict?))
        }
    }
}

fn report(v: &AuditVerdict) -> Report {
    let mut text = String::new();
    let exit_code = match &v.broken {
        None => {
            text.push_str(&format!("{} records, chain intact\n", v.chained));
            text.push_str(&format!(
                "head: record {} hash {}\n",
                v.head_no, v.head_hash
            ));
            0
        }
        Some(b) => {
            text.push_str(&format!(
                "chain broken at record {}: {b}\n{} records before it verified\n",
                b.audit_no(),
                v.chained
            ));
            1
        }
    };
    if v.before_chain > 0 {
        text.push_str(&format!(
            "{} earlier records, written before the chain existed, are not covered\n",
            v.before_chain
        ));
    }
    Report { text, exit_code }
}
