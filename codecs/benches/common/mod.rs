//! Inputs shared by the codec benchmarks: the same deterministic rosters on every run (a fixed-seed
//! generator, no `rand`), shaped like the gateway's items: GBK names of 2 to 4 hanzi (some with the
//! middle dot of minority names), 18-character resident IDs, 19-digit accounts, 11-digit phones.
#![allow(dead_code)] // each bench target uses part of it

use std::collections::BTreeMap;
use std::path::Path;

use codecs::format::fixed_width::RecordLayout;
use codecs::format::fixed_width::messages::{Layouts, SubmitDetail};
use codecs::format::fixed_width::{FieldSpec, messages::ResultDetail};
use codecs::format::iso8583::{Message, MessageSpec, Tlv};
use serde::Deserialize;

/// Items per benchmark iteration: large enough that per-call overhead is amortized like in a part,
/// small enough to stay in cache like the gateway's page-by-page encoding.
pub const BATCH: usize = 1_000;

/// Bank A's profile, read as data (see `codecs.rs` for why not through `bank-profiles`).
pub const BANK_A_PROFILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bank-profiles/profiles/402241000015.toml"
);

const SURNAMES: &[char] = &[
    '张', '李', '王', '赵', '钱', '孙', '周', '吴', '郑', '冯', '陈', '褚', '蒋', '沈', '韩', '杨',
    '朱', '秦', '许', '何', '吕', '施', '欧', '郝',
];
const GIVEN: &[char] = &[
    '三', '四', '五', '桂', '芳', '伟', '敏', '静', '丽', '强', '磊', '军', '洋', '勇', '艳', '杰',
    '娟', '涛', '明', '超', '秀', '英', '华', '龘', '喆', '昇',
];
const MINORITY: &[&str] = &["阿依古丽·买买提", "吐尔逊·艾力", "卓玛", "巴特尔"];
const MEMOS: &[&str] = &["2026年耕地地力保护补贴", "8月", "", "农机购置补贴 第2批"];

/// This thread's on-CPU time in nanoseconds (`/proc/thread-self/schedstat`, first field). Linux only;
/// without it the benchmarks that ask for CPU time cannot run.
pub fn thread_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .unwrap_or_else(|e| panic!("on-CPU time needs /proc/thread-self/schedstat: {e}"));
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected /proc/thread-self/schedstat: {text:?}"))
}

/// splitmix64: deterministic, good enough to vary field values.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `len` decimal digits.
    pub fn digits(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }

    /// A recipient's name.
    pub fn name(&mut self) -> String {
        if self.below(20) == 0 {
            return MINORITY[self.below(MINORITY.len())].to_owned();
        }
        let mut s = String::new();
        s.push(SURNAMES[self.below(SURNAMES.len())]);
        for _ in 0..1 + self.below(3) {
            s.push(GIVEN[self.below(GIVEN.len())]);
        }
        s
    }

    /// A resident ID: 17 digits and a digit or `X`.
    pub fn id_no(&mut self) -> String {
        let mut s = self.digits(17);
        s.push(if self.below(11) == 10 { 'X' } else { '0' });
        s
    }

    /// A mobile number.
    pub fn phone(&mut self) -> String {
        format!("1{}", self.digits(10))
    }

    /// A memo (some empty, some GBK).
    pub fn memo(&mut self) -> &'static str {
        MEMOS[self.below(MEMOS.len())]
    }

    /// An amount in fen, 1.00 to 9,999.99 yuan.
    pub fn amount(&mut self) -> u64 {
        100 + self.next_u64() % 999_900
    }
}

#[derive(Deserialize)]
struct Profile {
    fixed_width: FixedWidth,
}

#[derive(Deserialize)]
struct FixedWidth {
    record_len: usize,
    layouts: BTreeMap<String, Vec<FieldSpec>>,
}

/// Bank A's record layouts, from its profile file.
pub fn bank_a_layouts() -> Layouts {
    let path = Path::new(BANK_A_PROFILE);
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let profile: Profile = toml::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not a fixed-width profile: {e}", path.display()));
    let fw = profile.fixed_width;
    let mut map = BTreeMap::new();
    for (name, fields) in fw.layouts {
        let layout = RecordLayout::new(fw.record_len, fields)
            .unwrap_or_else(|e| panic!("layout {name}: {e}"));
        map.insert(name, layout);
    }
    Layouts::from_map(&map).unwrap_or_else(|missing| panic!("no layout `{missing}`"))
}

/// `n` submit details of bank A.
pub fn submit_details(n: usize) -> Vec<SubmitDetail> {
    let mut r = Rng::new(1);
    (1..=n as u64)
        .map(|seq| SubmitDetail {
            seq,
            account_no: format!("6217{}", r.digits(15)),
            account_name: r.name(),
            id_type: "1".into(),
            id_no: r.id_no(),
            amount: r.amount(),
            account_kind: "S".into(),
            account_bank_code: "402241000015".into(),
            phone: r.phone(),
            memo: r.memo().into(),
        })
        .collect()
}

/// `n` result details of bank A (one in ten failed, with a GBK reason).
pub fn result_details(n: usize) -> Vec<ResultDetail> {
    let mut r = Rng::new(2);
    (1..=n as u64)
        .map(|seq| {
            let failed = r.below(10) == 0;
            ResultDetail {
                seq,
                account_no: format!("6217{}", r.digits(15)),
                amount: r.amount(),
                result: if failed { "F" } else { "S" }.into(),
                fail_code: if failed { "A003" } else { "" }.into(),
                fail_reason: if failed { "账户已冻结" } else { "" }.into(),
                account_bank_code: "402241000015".into(),
                confirm_date: "20260304".into(),
                confirm_time: "101500".into(),
                bank_txn_no: format!("TX{}", r.digits(18)),
            }
        })
        .collect()
}

/// The F128 value of the benchmark messages: 8 fixed bytes, no MAC computed (pyiso8583 has no MAC;
/// the MAC's cost is measured apart).
pub const F128: [u8; 8] = [0x5D, 0xF1, 0x73, 0x7F, 0xBC, 0x6E, 0x04, 0x9F];

/// `n` bank C payout requests (`0200`, processing code `400000`), with the fields of the golden
/// `payout` frame: F2 F3 F4 F7 F11 F12 F13 F32 F37 F41 F42 F48 (all eight tags, GBK name) F49 F100
/// F102 F128.
pub fn payouts(n: usize) -> Vec<Message> {
    let spec = MessageSpec::bank_c();
    let mut r = Rng::new(3);
    (1..=n)
        .map(|i| {
            let f48 = Tlv::new()
                .with("NM", r.name())
                .with("IT", "1")
                .with("ID", r.id_no())
                .with("KD", "S")
                .with("PH", r.phone())
                .with("SB", "SUB2025")
                .with("BN", "BATCH20250315001")
                .with("SQ", format!("{i:08}"))
                .encode()
                .unwrap_or_else(|e| panic!("F48 of message {i}: {e}"));
            spec.message("0200")
                .with(2, format!("6217{}", r.digits(15)))
                .with(3, "400000")
                .with(4, format!("{:012}", r.amount()))
                .with(7, "0315093005")
                .with(11, format!("{:06}", i % 1_000_000))
                .with(12, "093005")
                .with(13, "0315")
                .with(32, "12345678")
                .with(37, format!("PO{i:010}"))
                .with(41, "GW01")
                .with(42, "DEPT001")
                .with(48, f48)
                .with(49, "156")
                .with(100, "403100000004")
                .with(102, "11001234567890123")
                .with(128, F128)
        })
        .collect()
}
