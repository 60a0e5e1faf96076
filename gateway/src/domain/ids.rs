//! Identifiers. Ours are ULID-based, so they sort by creation time and need no coordination between
//! instances; the references banks see are derived from them and stored before the first send.
use ulid::Ulid;

/// A new id with a short type prefix, e.g. `b_01J...` for a batch.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", Ulid::new())
}

/// A 20-character bank reference (bank A `batch_no`, bank B `MsgId`): the ULID without its last 6
/// characters of randomness: 48 bits of milliseconds + 50 random bits, unique for ever in practice.
pub fn new_bank_ref() -> String {
    let mut s = Ulid::new().to_string();
    s.truncate(20);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_refs_are_20_alphanumerics_and_distinct() {
        let a = new_bank_ref();
        let b = new_bank_ref();
        assert_eq!(a.len(), 20);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
