//! `gateway keys`: the data keyring's tools (see docs/encryption.md).
//!
//! ```text
//! gateway keys new --id k2027            a fresh line `k2027=<64 hex digits>` for the keyring file
//! gateway keys rotate --config FILE      reseal every value not sealed with the current key, to the end
//!                     [--again]          start the pass from the first row even if one finished
//! gateway keys status --config FILE      how many stored values each key id seals
//! ```
//! `rotate` and `status` open the store of the config with its keys like `serve` does (pending
//! migrations are applied first). `rotate` may run beside a serving gateway: the pass is idempotent
//! and resumable, and stopping it (Ctrl-C) loses nothing.
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::keys::KeyError;
use crate::store::{Store, StoreError};

/// `gateway keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a fresh data key line `ID=<64 hex digits>` (from the system's random source). Put it
    /// first in the keyring to make it the current key; keep the old lines until `status` shows they
    /// seal nothing.
    New {
        /// The key id: 1 to 16 of A-Z a-z 0-9 _ -.
        #[arg(long)]
        id: String,
    },
    /// Reseal every personal value not sealed with the current key (values from before sealing
    /// included), page by page to the end.
    Rotate {
        /// The gateway's TOML config (its store and its keys).
        #[arg(long)]
        config: PathBuf,
        /// Start the pass from the first row even when one has finished for the current key.
        #[arg(long)]
        again: bool,
        /// Rows per page (one transaction each).
        #[arg(long, default_value_t = crate::keys::rotation::PAGE)]
        page: i64,
    },
    /// Count the stored personal values by the key id that seals them (`plaintext`: from before
    /// sealing; reads every row).
    Status {
        /// The gateway's TOML config.
        #[arg(long)]
        config: PathBuf,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysCliError {
    /// The config could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store could not be opened, read or written.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// `--page` out of range.
    #[error("--page: 1 to 10000 rows")]
    Page,
}

async fn open(config: &Path) -> Result<Store, KeysCliError> {
    let cfg = Config::load(config)?;
    let keys = crate::keys::load(&cfg.gateway)?;
    Ok(Store::open_with_keys(&cfg.store.url, keys).await?)
}

/// Runs a command; returns the text for stdout.
pub async fn run(cmd: KeysCommand) -> Result<String, KeysCliError> {
    match cmd {
        KeysCommand::New { id } => Ok(format!("{}\n", crate::keys::new_key_line(&id)?)),
        KeysCommand::Rotate {
            config,
            again,
            page,
        } => {
            if !(1..=10_000).contains(&page) {
                return Err(KeysCliError::Page);
            }
            let store = open(&config).await?;
            if again {
                store.restart_rotation().await?;
            }
            let clock = SystemClock::default();
            let totals = crate::keys::rotation::rotate_to_end(
                &store,
                || clock.now_ms(),
                page,
                Duration::ZERO,
                None,
            )
            .await;
            let key_id = store.keys().data.current_id().to_owned();
            store.close().await;
            let mut text = String::new();
            for (scope, t) in totals? {
                text.push_str(&format!(
                    "{}: {} rows read, {} resealed; every value sealed with `{key_id}`\n",
                    scope.as_str(),
                    t.scanned,
                    t.resealed
                ));
            }
            Ok(text)
        }
        KeysCommand::Status { config } => {
            let store = open(&config).await?;
            let usage = store.sealed_key_usage().await;
            let current = store.keys().data.current_id().to_owned();
            store.close().await;
            let mut text = format!("current key: {current}\n");
            for ((table, key_id), n) in usage? {
                text.push_str(&format!("{table}\t{key_id}\t{n}\n"));
            }
            Ok(text)
        }
    }
}
