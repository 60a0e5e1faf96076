//! The keys that protect personal data at rest: the data keyring (personal fields sealed one by one
//! with AES-256-GCM, [`sealed`]) and the look-up key (keyed hashes, so that duplicate claims, blacklist
//! hits and SMS receipts are found without a plaintext index). Both come from a file or an environment
//! variable named in `[gateway]`, never from the config file itself; without them a development key is
//! used and a warning is logged at every start. See `docs/encryption.md`.
//!
//! Keyring text (a file, or a variable where `;`, `,` or spaces may stand for the line breaks):
//!
//! ```text
//! # the first key seals; the others only open what they sealed until the rotation pass has resealed it
//! k2027=5f1c...64 hex digits...
//! k2026=9a0e...
//! ```
pub mod rotation;
pub mod sealed;

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use tracing::warn;
use zeroize::Zeroizing;

pub use sealed::{Keyring, SealError};

/// Why a key could not be loaded. Messages name the setting and the line, never key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The environment variable named in the config is not set.
    #[error("{setting}: ${var} is not set")]
    EnvMissing {
        /// The config key.
        setting: &'static str,
        /// The variable.
        var: String,
    },
    /// The file named in the config cannot be read.
    #[error("{setting}: {path}: {source}")]
    File {
        /// The config key.
        setting: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An entry of the keyring is unusable.
    #[error("{setting}: entry {entry}: {problem}")]
    Entry {
        /// The config key.
        setting: &'static str,
        /// 1-based entry (line) number.
        entry: usize,
        /// What is wrong.
        problem: String,
    },
    /// The keyring holds no key.
    #[error("{setting}: no key (one `key_id=<64 hex digits>` per line, the current one first)")]
    Empty {
        /// The config key.
        setting: &'static str,
    },
    /// The look-up key is unusable.
    #[error("the lookup key {0}")]
    Lookup(&'static str),
}

/// The key of the keyed hashes used for look-ups (duplicate claims, blacklist, SMS receipts), so no
/// look-up needs a plaintext index.
#[derive(Clone)]
pub struct LookupKey(Zeroizing<Vec<u8>>);

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
        Self(Zeroizing::new(key))
    }

    /// The development key.
    pub fn development() -> Self {
        Self::new(DEV_LOOKUP_KEY.to_vec())
    }

    /// HMAC-SHA256 over the parts, separated by 0x1F, as hex.
    pub fn hash(&self, parts: &[&str]) -> String {
        hex::encode(self.digest(parts))
    }

    /// HMAC-SHA256 over the parts, separated by 0x1F.
    fn digest(&self, parts: &[&str]) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return [0; 32];
        };
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                mac.update(&[0x1F]);
            }
            mac.update(p.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// The key of the claim an accepted item holds: a person is paid once per subsidy and period.
    pub fn claim(&self, id_no: &str, subsidy_code: &str, period: &str) -> ClaimKey {
        let d = self.digest(&["claim", id_no, subsidy_code, period]);
        let mut k = [0u8; 16];
        k.copy_from_slice(&d[..16]);
        ClaimKey(k)
    }

    /// The keyed hash a phone number is found by (SMS receipts name the phone, not the item).
    pub fn phone_hash(&self, phone: &str) -> String {
        self.hash(&["phone", phone])
    }
}

/// A claim's key: the first 16 bytes of [`LookupKey::claim`]'s keyed hash (128 bits: no two people
/// meet by chance), stored as a blob (`claims.claim_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimKey(pub [u8; 16]);

/// What the store needs to keep personal data sealed: the data keyring and the look-up key.
#[derive(Debug, Clone)]
pub struct StoreKeys {
    /// Seals and opens personal fields.
    pub data: Keyring,
    /// Keyed hashes.
    pub lookup: LookupKey,
}

impl StoreKeys {
    /// The development keys (tests, demos; a deployment names its own).
    pub fn development() -> Self {
        Self {
            data: Keyring::development(),
            lookup: LookupKey::development(),
        }
    }
}

/// The development data key: SHA-256 of a public sentence, so anybody can open what it sealed. Its
/// hex is in `docs/encryption.md`, for moving a development store onto a real key.
pub(crate) fn development_data_key() -> Zeroizing<Vec<u8>> {
    Zeroizing::new(
        Sha256::digest(b"subsidy-gateway development data key: configure gateway.data_key_file")
            .to_vec(),
    )
}

/// Reads the secret named by `env` or `file` (the variable wins when both are set).
fn read_secret(
    env: Option<&String>,
    file: Option<&Path>,
    env_setting: &'static str,
    file_setting: &'static str,
) -> Result<Option<Zeroizing<String>>, KeyError> {
    if let Some(var) = env {
        return std::env::var(var)
            .map(|v| Some(Zeroizing::new(v)))
            .map_err(|_| KeyError::EnvMissing {
                setting: env_setting,
                var: var.clone(),
            });
    }
    let Some(path) = file else { return Ok(None) };
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::File {
        setting: file_setting,
        path: path.display().to_string(),
        source,
    })?;
    warn_if_readable_by_others(path, file_setting);
    Ok(Some(Zeroizing::new(text)))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, setting: &'static str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        warn!(
            setting,
            file = %path.display(),
            "the key file can be read by other users than its owner: chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _setting: &'static str) {}

/// The look-up key of `[gateway] lookup_key_env` / `lookup_key_file` (hex, at least 16 bytes), or the
/// development key with a warning.
pub fn lookup_key(g: &crate::config::Gateway) -> Result<LookupKey, KeyError> {
    let hex_key = read_secret(
        g.lookup_key_env.as_ref(),
        g.lookup_key_file.as_deref(),
        "gateway.lookup_key_env",
        "gateway.lookup_key_file",
    )?;
    match hex_key {
        Some(h) => {
            let bytes = hex::decode(h.trim()).map_err(|_| KeyError::Lookup("is not hex"))?;
            if bytes.len() < 16 {
                return Err(KeyError::Lookup("must have at least 16 bytes"));
            }
            Ok(LookupKey::new(bytes))
        }
        None => {
            warn!("no gateway.lookup_key_env/lookup_key_file: using the development look-up key");
            Ok(LookupKey::development())
        }
    }
}

/// The data keyring of `[gateway] data_key_env` / `data_key_file`, or the development keyring with a
/// warning.
pub fn data_keyring(g: &crate::config::Gateway) -> Result<Keyring, KeyError> {
    let text = read_secret(
        g.data_key_env.as_ref(),
        g.data_key_file.as_deref(),
        "gateway.data_key_env",
        "gateway.data_key_file",
    )?;
    let setting = if g.data_key_env.is_some() {
        "gateway.data_key_env"
    } else {
        "gateway.data_key_file"
    };
    match text {
        Some(t) => Keyring::parse(&t, setting),
        None => {
            warn!(
                "no gateway.data_key_file/data_key_env: personal data is sealed with the DEVELOPMENT data key, \
                 which anybody can read in the source; never run a deployment like this (docs/encryption.md)"
            );
            Ok(Keyring::development())
        }
    }
}

/// Both keys of `[gateway]`.
pub fn load(g: &crate::config::Gateway) -> Result<StoreKeys, KeyError> {
    Ok(StoreKeys {
        data: data_keyring(g)?,
        lookup: lookup_key(g)?,
    })
}

/// A fresh data key line `id=<64 hex digits>` from the operating system's random source.
pub fn new_key_line(id: &str) -> Result<String, KeyError> {
    sealed::check_key_id(id).map_err(|problem| KeyError::Entry {
        setting: "--id",
        entry: 1,
        problem,
    })?;
    let mut key = Zeroizing::new([0u8; 32]);
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), key.as_mut()).map_err(
        |_| KeyError::Entry {
            setting: "--id",
            entry: 1,
            problem: "the system's random source failed".into(),
        },
    )?;
    Ok(format!("{id}={}", hex::encode(key.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_hashes_are_keyed_and_separated() {
        let a = LookupKey::new(vec![1; 32]);
        let b = LookupKey::new(vec![2; 32]);
        assert_ne!(a.hash(&["x", "y"]), b.hash(&["x", "y"]));
        assert_ne!(a.hash(&["xy"]), a.hash(&["x", "y"]));
        assert_eq!(
            a.phone_hash("13912345678"),
            a.hash(&["phone", "13912345678"])
        );
        assert_eq!(format!("{a:?}"), "LookupKey(***)");
    }

    #[test]
    fn a_new_key_line_parses_as_a_keyring() {
        let line = new_key_line("k2027").expect("line");
        assert!(line.starts_with("k2027=") && line.len() == 6 + 64, "{line}");
        let ring = Keyring::parse(&line, "test").expect("parses");
        assert_eq!(ring.current_id(), "k2027");
        assert!(new_key_line("bad:id").is_err());
    }

    #[test]
    fn missing_env_and_file_are_named() {
        let g = crate::config::Gateway {
            data_key_env: Some("GW_TEST_SURELY_UNSET_VAR".into()),
            ..Default::default()
        };
        let e = data_keyring(&g).expect_err("unset");
        assert!(e.to_string().contains("gateway.data_key_env"), "{e}");
        let g = crate::config::Gateway {
            data_key_file: Some("/nonexistent/keyring".into()),
            ..Default::default()
        };
        let e = data_keyring(&g).expect_err("missing");
        assert!(e.to_string().contains("gateway.data_key_file"), "{e}");
    }
}
