//! Which `seq` values a roster has used: a bitmap for the usual small numbers, a set beyond, so a
//! million-item roster costs about 128 KiB here.
use std::collections::HashSet;

const BITMAP_LIMIT: i64 = 1 << 24;

/// Seen sequence numbers.
#[derive(Debug, Default)]
pub struct SeqSet {
    bits: Vec<u64>,
    large: HashSet<i64>,
}

impl SeqSet {
    /// Records `seq`; `false` when it was seen before.
    pub fn insert(&mut self, seq: i64) -> bool {
        if (0..BITMAP_LIMIT).contains(&seq) {
            let (word, bit) = ((seq / 64) as usize, seq % 64);
            if self.bits.len() <= word {
                self.bits.resize(word + 1, 0);
            }
            let mask = 1u64 << bit;
            let fresh = self.bits[word] & mask == 0;
            self.bits[word] |= mask;
            fresh
        } else {
            self.large.insert(seq)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_repeats_small_and_large() {
        let mut s = SeqSet::default();
        assert!(s.insert(1));
        assert!(s.insert(64));
        assert!(!s.insert(1));
        assert!(s.insert(1 << 40));
        assert!(!s.insert(1 << 40));
    }
}
