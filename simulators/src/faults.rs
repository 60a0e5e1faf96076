//! Faults a simulator injects, as data, and the seeded dice that decide them.
//!
//! Every decision is a pure function of `(seed, what, key, attempt)`: the key names the request
//! (bank A: `submit:<batch_no>`, `query:<batch_no>`, `echo`; bank C: `payout:<F37>`, `inquiry:<F37>`,
//! `sign-on`, `echo`...) and the attempt counts earlier requests with the
//! same key. A scenario therefore replays the same way with the same seed even when the gateway runs
//! several connections at once (only the order of requests *for one key* matters).
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Faults to inject. `Default` injects none. Shares are in permille (`1000` = always).
///
/// Reads from config as, e.g. (TOML):
/// ```toml
/// busy_submit_permille = 200
/// split_writes = true
/// reply_delay = "250ms"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Share of submits answered `9999` (busy) instead of being processed.
    pub busy_submit_permille: u32,
    /// Share of queries answered `9999` (busy).
    pub busy_query_permille: u32,
    /// The first this many requests *for each key* meet every reply fault whose share is above zero
    /// (busy, drop, garble, duplicate, cut, bad MAC), as if that share were 1000; later requests roll
    /// the shares. So a scenario sees its fault in every run whatever keys the gateway draws: a share
    /// alone depends on the gateway's random message ids, and a part has few requests to roll on.
    pub first_attempts_faulted: u32,
    /// Share of requests whose reply is lost: the request is read *and processed* (a submit is
    /// accepted and paid), then the connection is closed without a reply.
    pub drop_before_reply_permille: u32,
    /// Share of replies sent with corrupted bytes (always detectably: a broken length header, a broken
    /// record terminator or an unknown record type — never a plausible but wrong value).
    pub garble_reply_permille: u32,
    /// Write replies in small pieces, so the reader sees frames split across reads.
    pub split_writes: bool,
    /// Delay before every reply.
    #[serde(with = "duration_text")]
    pub reply_delay: Duration,
    /// Share of replies sent twice on the connection.
    pub duplicate_reply_permille: u32,
    /// Share of replies cut short: part of the frame is written, then the connection is closed (the
    /// request was processed). Banks B (the HTTP head and half the body) and C.
    pub cut_reply_permille: u32,
    /// Share of replies sent with a wrong MAC (F128); replies without a MAC are left alone. Bank C only.
    pub bad_mac_reply_permille: u32,
    /// Share of accepted items whose result becomes final only the simulator's `late_result` after its
    /// processing time, decided per item. Bank C only (bank A delays every batch by its `late_result`).
    pub late_result_permille: u32,
}

impl Faults {
    /// Whether the `attempt`-th request (or reply) for `key` meets the fault `roll` at `permille`:
    /// the dice decide, except that a reply fault with a share above zero always hits the first
    /// `first_attempts_faulted` attempts. Per-item draws (fail, late, jitter...) only roll.
    pub(crate) fn hits(
        &self,
        dice: &Dice,
        roll: Roll,
        key: &[u8],
        attempt: u64,
        permille: u32,
    ) -> bool {
        let reply_fault = matches!(
            roll,
            Roll::Busy | Roll::Drop | Roll::Garble | Roll::Duplicate | Roll::Cut | Roll::BadMac
        );
        if reply_fault && permille > 0 && attempt < u64::from(self.first_attempts_faulted) {
            return true;
        }
        dice.hits(roll, key, attempt, permille)
    }
}

/// Reads and writes a `Duration` as `250ms`, `2s`, `1m`.
mod duration_text {
    use std::time::Duration;

    use bank_profiles::DurationText;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        DurationText(*d).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        DurationText::deserialize(d).map(|t| t.0)
    }
}

/// One thing the dice decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Roll {
    Busy,
    Drop,
    Garble,
    GarbleHow,
    Duplicate,
    ItemFails,
    FailCode,
    Cut,
    CutHow,
    BadMac,
    Jitter,
    Late,
}

impl Roll {
    fn tag(self) -> &'static [u8] {
        match self {
            Roll::Busy => b"busy",
            Roll::Drop => b"drop",
            Roll::Garble => b"garble",
            Roll::GarbleHow => b"garble-how",
            Roll::Duplicate => b"duplicate",
            Roll::ItemFails => b"item-fails",
            Roll::FailCode => b"fail-code",
            Roll::Cut => b"cut",
            Roll::CutHow => b"cut-how",
            Roll::BadMac => b"bad-mac",
            Roll::Jitter => b"jitter",
            Roll::Late => b"late",
        }
    }
}

/// Seeded, stateless dice: the same inputs give the same number on every platform and release
/// (FNV-1a over the inputs, then the SplitMix64 finalizer; no dependency on a PRNG's stream).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dice {
    seed: u64,
}

impl Dice {
    pub(crate) fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// A 64-bit number for `(roll, key, n)`.
    pub(crate) fn number(&self, roll: Roll, key: &[u8], n: u64) -> u64 {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            // Length first, so ("ab","c") and ("a","bc") differ.
            for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(PRIME);
            }
        };
        eat(&self.seed.to_le_bytes());
        eat(roll.tag());
        eat(key);
        eat(&n.to_le_bytes());
        splitmix64(h)
    }

    /// Whether an event with a share of `permille` happens for `(roll, key, n)`.
    pub(crate) fn hits(&self, roll: Roll, key: &[u8], n: u64, permille: u32) -> bool {
        permille > 0 && self.number(roll, key, n) % 1000 < u64::from(permille)
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_no_fault() {
        let f = Faults::default();
        assert_eq!(
            f.busy_submit_permille + f.busy_query_permille + f.drop_before_reply_permille,
            0
        );
        assert_eq!(f.garble_reply_permille + f.duplicate_reply_permille, 0);
        assert_eq!(
            f.cut_reply_permille + f.bad_mac_reply_permille + f.late_result_permille,
            0
        );
        assert!(!f.split_writes);
        assert!(f.reply_delay.is_zero());
    }

    #[test]
    fn reads_from_toml_with_defaults_and_refuses_unknown_keys() {
        let f: Faults = toml::from_str(
            "busy_submit_permille = 200\nreply_delay = \"250ms\"\nsplit_writes = true",
        )
        .expect("faults");
        assert_eq!(f.busy_submit_permille, 200);
        assert_eq!(f.reply_delay, Duration::from_millis(250));
        assert!(f.split_writes);
        assert_eq!(f.garble_reply_permille, 0);
        let err = toml::from_str::<Faults>("busy_permille = 1").expect_err("unknown key");
        assert!(err.to_string().contains("busy_permille"), "{err}");
        let again: Faults =
            toml::from_str(&toml::to_string(&f).expect("serialize")).expect("reload");
        assert_eq!(again, f);
    }

    #[test]
    fn dice_are_deterministic_and_roughly_fair() {
        let a = Dice::new(7);
        let b = Dice::new(7);
        let c = Dice::new(8);
        assert_eq!(a.number(Roll::Busy, b"k", 3), b.number(Roll::Busy, b"k", 3));
        assert_ne!(a.number(Roll::Busy, b"k", 3), c.number(Roll::Busy, b"k", 3));
        assert_ne!(a.number(Roll::Busy, b"k", 3), a.number(Roll::Drop, b"k", 3));
        let hits = (0..10_000)
            .filter(|n| a.hits(Roll::Busy, b"k", *n, 100))
            .count();
        assert!((800..1200).contains(&hits), "{hits}");
        assert!((0..1000).all(|n| a.hits(Roll::Busy, b"k", n, 1000)));
        assert!((0..1000).all(|n| !a.hits(Roll::Busy, b"k", n, 0)));
    }

    #[test]
    fn the_first_attempts_meet_reply_faults_then_the_share_decides() {
        let dice = Dice::new(3);
        let f = Faults {
            first_attempts_faulted: 2,
            ..Faults::default()
        };
        let k = b"submit:X";
        for roll in [
            Roll::Busy,
            Roll::Drop,
            Roll::Garble,
            Roll::Duplicate,
            Roll::Cut,
            Roll::BadMac,
        ] {
            assert!(f.hits(&dice, roll, k, 0, 1), "{roll:?}");
            assert!(f.hits(&dice, roll, k, 1, 1), "{roll:?}");
            assert!(
                !f.hits(&dice, roll, k, 0, 0),
                "{roll:?}: a share of 0 is no fault"
            );
            let later = (2..1000)
                .filter(|n| f.hits(&dice, roll, k, *n, 100))
                .count();
            assert!((50..160).contains(&later), "{roll:?}: {later}");
        }
        assert!((0..1000).all(|n| !f.hits(&dice, Roll::ItemFails, k, n, 0)));
        let none = Faults::default();
        assert!(
            (0..1000).all(
                |n| none.hits(&dice, Roll::Busy, k, n, 100) == dice.hits(Roll::Busy, k, n, 100)
            ),
            "without the knob the dice alone decide"
        );
        let per_item = (0..1000)
            .filter(|n| f.hits(&dice, Roll::ItemFails, k, *n, 100))
            .count();
        assert!(
            (50..160).contains(&per_item),
            "per-item draws are not forced: {per_item}"
        );
    }
}
