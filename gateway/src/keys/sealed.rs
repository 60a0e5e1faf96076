//! Personal fields sealed one by one: AES-256-GCM (ring) with a random 96-bit nonce, the associated
//! data naming the table, the row and the column, so a sealed value opens only where it was written
//! (moved to another row or column it fails like a tampered one).
//!
//! ```text
//! v1:<key_id>:<base64(nonce[12] || ciphertext[len(plaintext)] || tag[16])>     (standard alphabet, no padding)
//! associated data: "<table>" 0x1F "<column>" 0x1F "<row key part>" (0x1F "<row key part>")*
//!   items:     "items" 0x1F "id_no" 0x1F "<batch_id>" 0x1F "<seq>"
//!   blacklist: "blacklist" 0x1F "value" 0x1F "<entry_id>"
//! ```
//!
//! A stored value without the `v1:` prefix is plaintext written before sealing existed: it is read as
//! it is and counts as sealed with an old key, so the rotation pass seals it.
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use super::KeyError;

const PREFIX: &str = "v1:";
const TAG_LEN: usize = 16;
/// Key ids: what may stand between the colons.
const MAX_KEY_ID: usize = 16;

/// Why a stored value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Sealed with a key the keyring does not hold (an old key removed too early?).
    #[error("sealed with data key `{0}`, which the keyring does not hold")]
    UnknownKey(String),
    /// Not of the `v1:<key_id>:<base64>` form.
    #[error("not a sealed value of the v1 form")]
    Malformed,
    /// The tag does not verify: another row's or column's value, altered bytes, or a different key
    /// under the same id.
    #[error(
        "does not authenticate (altered, moved from another row or column, or a different key)"
    )]
    Auth,
    /// The plaintext is not UTF-8 (cannot happen for a value this code sealed).
    #[error("opened to bytes that are not UTF-8")]
    NotUtf8,
    /// Sealing itself failed (a value over 64 GiB).
    #[error("sealing failed")]
    Seal,
}

struct DataKey {
    id: String,
    key: LessSafeKey,
}

/// The data keys: the first seals, every one opens.
#[derive(Clone)]
pub struct Keyring {
    keys: std::sync::Arc<Vec<DataKey>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "Keyring({ids:?}, ***)")
    }
}

/// A key id: 1 to 16 of `A-Z a-z 0-9 _ -`.
pub(crate) fn check_key_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_KEY_ID {
        return Err(format!("the key id must have 1 to {MAX_KEY_ID} characters"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "the key id may hold A-Z a-z 0-9 _ - only, not `{}`",
            c.escape_default()
        ));
    }
    Ok(())
}

/// The associated data of a sealed field: table, column and the row's key.
pub fn associated(table: &str, column: &str, row: &[&str]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(table.len() + column.len() + 40);
    ad.extend_from_slice(table.as_bytes());
    ad.push(0x1F);
    ad.extend_from_slice(column.as_bytes());
    for part in row {
        ad.push(0x1F);
        ad.extend_from_slice(part.as_bytes());
    }
    ad
}

/// The associated data of an item's personal field (`name`, `id_no`, `account_no`, `phone`).
pub fn item_ad(batch_id: &str, seq: i64, column: &str) -> Vec<u8> {
    associated("items", column, &[batch_id, &seq.to_string()])
}

/// The associated data of a blacklist entry's value.
pub fn blacklist_ad(entry_id: &str) -> Vec<u8> {
    associated("blacklist", "value", &[entry_id])
}

impl Keyring {
    fn from_keys(keys: Vec<(String, &[u8])>) -> Result<Self, String> {
        let mut out = Vec::with_capacity(keys.len());
        for (id, bytes) in keys {
            let unbound = UnboundKey::new(&AES_256_GCM, bytes)
                .map_err(|_| "an AES-256 key has 32 bytes".to_owned())?;
            out.push(DataKey {
                id,
                key: LessSafeKey::new(unbound),
            });
        }
        Ok(Self {
            keys: std::sync::Arc::new(out),
        })
    }

    /// Reads `key_id=<64 hex digits>` entries, one per line (or separated by `;`, `,` or spaces);
    /// `#` starts a comment. The first entry is the current key. `setting` names the source in errors.
    pub fn parse(text: &str, setting: &'static str) -> Result<Self, KeyError> {
        let mut entries: Vec<(String, zeroize::Zeroizing<Vec<u8>>)> = Vec::new();
        let items = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .flat_map(|l| l.split([';', ',', ' ', '\t']))
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for (i, entry) in items.enumerate() {
            let bad = |problem: String| KeyError::Entry {
                setting,
                entry: i + 1,
                problem,
            };
            let (id, hex_key) = entry
                .split_once('=')
                .ok_or_else(|| bad("expected `key_id=<64 hex digits>`".into()))?;
            let id = id.trim();
            check_key_id(id).map_err(bad)?;
            if entries.iter().any(|(known, _)| known == id) {
                return Err(bad(format!("key id `{id}` appears twice")));
            }
            let bytes = zeroize::Zeroizing::new(
                hex::decode(hex_key.trim())
                    .map_err(|_| bad(format!("the key of `{id}` is not hex")))?,
            );
            if bytes.len() != 32 {
                return Err(bad(format!(
                    "the key of `{id}` has {} bytes; AES-256 needs 32 (64 hex digits)",
                    bytes.len()
                )));
            }
            entries.push((id.to_owned(), bytes));
        }
        if entries.is_empty() {
            return Err(KeyError::Empty { setting });
        }
        Self::from_keys(
            entries
                .iter()
                .map(|(id, k)| (id.clone(), k.as_slice()))
                .collect(),
        )
        .map_err(|problem| KeyError::Entry {
            setting,
            entry: 1,
            problem,
        })
    }

    /// The development keyring: key id `dev`, a key anybody can derive (see [`super::development_data_key`]).
    pub fn development() -> Self {
        let key = super::development_data_key();
        match Self::from_keys(vec![("dev".into(), key.as_slice())]) {
            Ok(k) => k,
            // A 32-byte SHA-256 output is always an AES-256 key.
            Err(_) => unreachable!("SHA-256 gives 32 bytes"),
        }
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    /// Every key id, the current one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// Seals `plain` for the place `ad` names, with the current key and a fresh random nonce.
    pub fn seal(&self, ad: &[u8], plain: &str) -> Result<String, SealError> {
        let key = self.keys.first().ok_or(SealError::Seal)?;
        let mut nonce = [0u8; NONCE_LEN];
        // ThreadRng: a ChaCha CSPRNG seeded and reseeded from the operating system, much cheaper than
        // a system call per field on the intake path. Random 96-bit nonces stay safe for 2^32 values
        // per key (docs/encryption.md: rotate well before).
        rand::rng().fill_bytes(&mut nonce);
        let mut buf = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(plain.as_bytes());
        let tag = key
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(ad),
                &mut buf[NONCE_LEN..],
            )
            .map_err(|_| SealError::Seal)?;
        buf.extend_from_slice(tag.as_ref());
        let mut out =
            String::with_capacity(PREFIX.len() + key.id.len() + 1 + buf.len() * 4 / 3 + 4);
        out.push_str(PREFIX);
        out.push_str(&key.id);
        out.push(':');
        STANDARD_NO_PAD.encode_string(&buf, &mut out);
        Ok(out)
    }

    /// Opens a stored value sealed for the place `ad` names. A value without the `v1:` prefix is
    /// plaintext from before sealing and is returned as it is.
    pub fn open(&self, ad: &[u8], stored: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (id, body) = rest.split_once(':').ok_or(SealError::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let mut buf = STANDARD_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Malformed)?;
        if buf.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&buf[..NONCE_LEN]);
        let plain = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(ad),
                &mut buf[NONCE_LEN..],
            )
            .map_err(|_| SealError::Auth)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::NotUtf8)
    }

    /// Whether `stored` is sealed with the current key (else the rotation pass reseals it).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_prefix(self.current_id()))
            .is_some_and(|r| r.starts_with(':'))
    }

    /// The key id a stored value is sealed with, `None` for plaintext.
    pub fn key_id_of(stored: &str) -> Option<&str> {
        stored
            .strip_prefix(PREFIX)
            .and_then(|r| r.split_once(':'))
            .map(|(id, _)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "k2=1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    fn ring(text: &str) -> Keyring {
        Keyring::parse(text, "test").expect("keyring")
    }

    #[test]
    fn round_trip_with_the_v1_form() {
        let k = ring(K1);
        let ad = item_ad("B1", 7, "id_no");
        let sealed = k.seal(&ad, "220102198001011234").expect("seal");
        assert!(sealed.starts_with("v1:k1:"), "{sealed}");
        assert!(!sealed.contains("220102198001011234"));
        let raw = STANDARD_NO_PAD.decode(&sealed[6..]).expect("base64");
        assert_eq!(raw.len(), 12 + 18 + 16, "nonce || ciphertext || tag");
        assert_eq!(k.open(&ad, &sealed).expect("open"), "220102198001011234");
        assert_eq!(
            k.open(&ad, &k.seal(&ad, "").expect("seal")).expect("open"),
            ""
        );
        assert_eq!(
            k.open(&ad, &k.seal(&ad, "陈明").expect("seal"))
                .expect("open"),
            "陈明"
        );
        // A fresh nonce every time: the same value seals differently.
        assert_ne!(sealed, k.seal(&ad, "220102198001011234").expect("seal"));
    }

    #[test]
    fn another_row_or_column_does_not_open() {
        let k = ring(K1);
        let sealed = k
            .seal(&item_ad("B1", 7, "id_no"), "220102198001011234")
            .expect("seal");
        for ad in [
            item_ad("B1", 8, "id_no"),
            item_ad("B2", 7, "id_no"),
            item_ad("B1", 7, "account_no"),
            blacklist_ad("B1"),
            Vec::new(),
        ] {
            assert_eq!(k.open(&ad, &sealed), Err(SealError::Auth));
        }
        // Separators keep parts apart: ("B1", 17) is not ("B11", 7).
        let s = k.seal(&item_ad("B1", 17, "name"), "x").expect("seal");
        assert_eq!(k.open(&item_ad("B11", 7, "name"), &s), Err(SealError::Auth));
    }

    #[test]
    fn tampered_values_fail() {
        let k = ring(K1);
        let ad = item_ad("B1", 1, "phone");
        let sealed = k.seal(&ad, "13912345678").expect("seal");
        let mut raw = STANDARD_NO_PAD.decode(&sealed[6..]).expect("base64");
        for i in [0, 12, raw.len() - 1] {
            raw[i] ^= 1;
            let bad = format!("v1:k1:{}", STANDARD_NO_PAD.encode(&raw));
            assert_eq!(k.open(&ad, &bad), Err(SealError::Auth), "byte {i}");
            raw[i] ^= 1;
        }
        let short = format!("v1:k1:{}", STANDARD_NO_PAD.encode(&raw[..20]));
        assert_eq!(k.open(&ad, &short), Err(SealError::Malformed));
        assert_eq!(k.open(&ad, "v1:k1:***"), Err(SealError::Malformed));
        assert_eq!(k.open(&ad, "v1:k1"), Err(SealError::Malformed));
        assert_eq!(
            k.open(&ad, &sealed.replacen("k1", "k9", 1)),
            Err(SealError::UnknownKey("k9".into()))
        );
        // The same id bound to a different key: the tag says so.
        let other = ring("k1=ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
        assert_eq!(other.open(&ad, &sealed), Err(SealError::Auth));
    }

    #[test]
    fn rotation_keeps_old_keys_opening_and_seals_with_the_first() {
        let old = ring(K1);
        let ad = item_ad("B1", 1, "name");
        let by_old = old.seal(&ad, "陈明").expect("seal");
        let rotated = ring(&format!("{K2}\n{K1}\n"));
        assert_eq!(rotated.current_id(), "k2");
        assert!(!rotated.is_current(&by_old));
        assert!(
            !rotated.is_current("陈明"),
            "plaintext counts as an old key"
        );
        assert_eq!(rotated.open(&ad, &by_old).expect("old key opens"), "陈明");
        let resealed = rotated.seal(&ad, "陈明").expect("seal");
        assert!(rotated.is_current(&resealed) && resealed.starts_with("v1:k2:"));
        assert_eq!(Keyring::key_id_of(&resealed), Some("k2"));
        assert_eq!(Keyring::key_id_of("13912345678"), None);
        // Without the old key what it sealed no longer opens.
        assert_eq!(
            ring(K2).open(&ad, &by_old),
            Err(SealError::UnknownKey("k1".into()))
        );
        // Plaintext from before sealing reads as it is.
        assert_eq!(
            rotated.open(&ad, "13912345678").expect("plain"),
            "13912345678"
        );
        // A key id that starts like the current one is not it.
        let k10 = ring(&K1.replacen("k1=", "k10=", 1));
        let s = k10.seal(&ad, "x").expect("seal");
        assert!(!ring(K1).is_current(&s));
    }

    #[test]
    fn keyring_text_is_checked() {
        let two = ring(&format!("# keys\n{K2}   # current\n\n{K1}\n"));
        assert_eq!(two.ids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert_eq!(ring(&format!("{K2};{K1}")).ids().count(), 2);
        let err = |t: &str| {
            Keyring::parse(t, "gateway.data_key_file")
                .expect_err(t)
                .to_string()
        };
        assert!(err("").contains("no key"));
        assert!(err("# nothing\n").contains("no key"));
        assert!(err("k1").contains("entry 1: expected"));
        assert!(err(&format!("{K1}\nk2=00")).contains("entry 2: the key of `k2` has 1 bytes"));
        assert!(err(&format!("{K1}\n{K1}")).contains("appears twice"));
        assert!(err("k:1=00").contains("not `:`"));
        assert!(err("k1=zz").contains("not hex"));
        let e = err(&K1.replacen('0', "g", 1));
        assert!(
            !e.contains("0102030405"),
            "errors never show key material: {e}"
        );
        assert!(format!("{two:?}").contains("***") && !format!("{two:?}").contains("0102"));
    }

    #[test]
    fn the_development_keyring_seals() {
        let k = Keyring::development();
        assert_eq!(k.current_id(), "dev");
        let ad = blacklist_ad("bl1");
        assert_eq!(
            k.open(&ad, &k.seal(&ad, "6217").expect("seal"))
                .expect("open"),
            "6217"
        );
    }
}
