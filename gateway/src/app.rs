//! The running gateway's shared state, built once from the config.
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::dispatch::Banks;
use crate::sla::{Calendar, DeadlinePolicy};
use crate::store::Store;

/// The key of the keyed hashes used for look-ups (duplicate claims, blacklist), so no look-up needs a
/// plaintext index.
#[derive(Clone)]
pub struct LookupKey(Vec<u8>);

impl std::fmt::Debug for LookupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LookupKey(***)")
    }
}

/// Development key, used when the config names none (a warning is logged).
const DEV_LOOKUP_KEY: &[u8] =
    b"subsidy-gateway development lookup key: configure gateway.lookup_key_env";

impl LookupKey {
    /// A key from raw bytes.
    pub fn new(key: Vec<u8>) -> Self {
        Self(key)
    }

    /// The development key.
    pub fn development() -> Self {
        Self(DEV_LOOKUP_KEY.to_vec())
    }

    /// HMAC-SHA256 over the parts, separated by 0x1F, as hex.
    pub fn hash(&self, parts: &[&str]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                mac.update(&[0x1F]);
            }
            mac.update(p.as_bytes());
        }
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Shared state of a running gateway.
#[derive(Debug)]
pub struct App {
    /// The configuration.
    pub config: Config,
    /// The store.
    pub store: Store,
    /// Time.
    pub clock: SharedClock,
    /// The shortlisted banks.
    pub banks: Banks,
    /// Look-up hashing key.
    pub lookup: LookupKey,
    /// Working calendar.
    pub calendar: Calendar,
    /// SLA deadline policy.
    pub deadline: DeadlinePolicy,
    /// Wakes the dispatch workers when new work is stored.
    pub work: Notify,
    /// This instance.
    pub node_id: String,
}

/// Shared handle.
pub type SharedApp = Arc<App>;
