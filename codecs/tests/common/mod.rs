//! Random messages for ISO 8583 tests, derived from a field table (any table, not only bank C's), so
//! that a value generator never disagrees with the table it tests.
#![allow(dead_code)]

use codecs::format::iso8583::{Enc, FieldKind, FieldSpec, FieldValue, Message, MessageSpec, Tlv};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// Characters of GBK names: common hanzi, the middle dot of minority names, full-width forms.
pub const HANZI: &[char] = &[
    '张', '三', '李', '四', '王', '五', '赵', '钱', '孙', '周', '吴', '郑', '冯', '陈', '褚', '卫',
    '蒋', '沈', '韩', '杨', '朱', '秦', '尤', '许', '何', '吕', '施', '欧', '阳', '司', '马', '阿',
    '依', '买', '提', '·', '（', '）', '账', '户', '冻', '结', '已', '销', '农', '村', '补', '贴',
    '社', '保', '卡', '龘', '喆', '昇',
];

/// GBK text of at most `budget` bytes: printable ASCII and hanzi mixed.
pub fn gbk_text(budget: usize) -> BoxedStrategy<String> {
    let ch = prop_oneof![
        3 => proptest::char::range(' ', '~'),
        2 => select(HANZI),
    ];
    vec(ch, 0..=budget)
        .prop_map(move |chars| {
            let mut out = String::new();
            let mut used = 0;
            for c in chars {
                let w = if c.is_ascii() { 1 } else { 2 };
                if used + w > budget {
                    break;
                }
                used += w;
                out.push(c);
            }
            out
        })
        .boxed()
}

/// GBK text of exactly `len` bytes.
pub fn gbk_text_exact(len: usize) -> BoxedStrategy<String> {
    vec(select(HANZI), len / 2)
        .prop_map(move |hanzi| {
            let mut s: String = hanzi.into_iter().collect();
            if len % 2 == 1 {
                s.push('X');
            }
            s
        })
        .boxed()
}

/// A tag list of F48's tags (writer order), cut to fit `budget` bytes.
pub fn tlv_text(budget: usize) -> BoxedStrategy<String> {
    const TAGS: &[&str] = &[
        "NM", "IT", "ID", "KD", "PH", "SB", "BN", "SQ", "CT", "TX", "RS",
    ];
    vec((select(TAGS), gbk_text(60)), 0..8)
        .prop_map(move |entries| {
            let mut t = Tlv::new();
            let mut used = 0;
            for (tag, value) in entries {
                if t.get(tag).is_some() {
                    continue;
                }
                let w = 5 + value
                    .chars()
                    .map(|c| if c.is_ascii() { 1 } else { 2 })
                    .sum::<usize>();
                if used + w > budget {
                    break;
                }
                used += w;
                t.push(tag, value);
            }
            t.encode().unwrap_or_default()
        })
        .boxed()
}

fn regex(class: &str, min: usize, max: usize) -> BoxedStrategy<String> {
    proptest::string::string_regex(&format!("{class}{{{min},{max}}}"))
        .unwrap_or_else(|e| panic!("regex: {e}"))
        .boxed()
}

fn charset(enc: Enc) -> &'static str {
    match enc {
        Enc::Numeric => "[0-9]",
        Enc::Alpha => "[A-Za-z0-9]",
        _ => "[ -~]",
    }
}

/// Values the table's field accepts and that decode back to themselves (fixed `n`/`an` at full length,
/// fixed `ans`/GBK without trailing spaces); maximum lengths are drawn often.
pub fn field_value(f: &FieldSpec) -> BoxedStrategy<FieldValue> {
    let text = |s: BoxedStrategy<String>| s.prop_map(FieldValue::Text).boxed();
    let trimmed = |s: BoxedStrategy<String>| {
        s.prop_map(|v| FieldValue::Text(v.trim_end_matches(' ').to_owned()))
            .boxed()
    };
    match (f.kind, f.encoding) {
        (FieldKind::Binary { len }, _) => vec(any::<u8>(), len).prop_map(FieldValue::Bytes).boxed(),
        (FieldKind::Fixed { len }, e @ (Enc::Numeric | Enc::Alpha)) => {
            text(regex(charset(e), len, len))
        }
        (FieldKind::Fixed { len }, Enc::Gbk) => trimmed(gbk_text(len)),
        (FieldKind::Fixed { len }, e) => trimmed(regex(charset(e), 0, len)),
        (FieldKind::LlVar { max } | FieldKind::LllVar { max }, Enc::Binary) => {
            vec(any::<u8>(), 0..=max)
                .prop_map(FieldValue::Bytes)
                .boxed()
        }
        (FieldKind::LlVar { max } | FieldKind::LllVar { max }, Enc::Gbk) => text(
            prop_oneof![
                2 => gbk_text(max),
                2 => tlv_text(max),
                1 => gbk_text_exact(max),
            ]
            .boxed(),
        ),
        (FieldKind::LlVar { max } | FieldKind::LllVar { max }, e) => text(
            prop_oneof![
                3 => regex(charset(e), 0, max),
                1 => regex(charset(e), max, max),
            ]
            .boxed(),
        ),
    }
}

/// A message of `spec`: a random MTI and each field present or not (one in five with no field above 64).
pub fn message(spec: &MessageSpec) -> BoxedStrategy<Message> {
    let spec = spec.clone();
    let fields: Vec<BoxedStrategy<(u8, Option<FieldValue>)>> = spec
        .fields()
        .iter()
        .map(|f| {
            let n = f.number;
            proptest::option::weighted(0.6, field_value(f))
                .prop_map(move |v| (n, v))
                .boxed()
        })
        .collect();
    let mti = prop_oneof![
        select(&["0200", "0210", "0800", "0810"][..]).prop_map(str::to_owned),
        regex("[0-9]", 4, 4),
    ];
    // One message in five keeps to fields 2..=64: no secondary bitmap.
    (mti, fields, proptest::bool::weighted(0.2))
        .prop_map(move |(mti, fields, primary_only)| {
            let mut m = spec.message(mti);
            for (n, v) in fields {
                if let Some(v) = v
                    && (n <= 64 || !primary_only)
                {
                    m.set(n, v);
                }
            }
            m
        })
        .boxed()
}

/// A message with every field of `spec` at its maximum length.
pub fn message_at_max(spec: &MessageSpec) -> Message {
    let mut m = spec.message("0200");
    for f in spec.fields() {
        let v = match (f.kind, f.encoding) {
            (FieldKind::Binary { len }, _) => FieldValue::Bytes(vec![0xFF; len]),
            (FieldKind::LlVar { max } | FieldKind::LllVar { max }, Enc::Binary) => {
                FieldValue::Bytes(vec![0xA5; max])
            }
            (FieldKind::Fixed { len }, Enc::Gbk)
            | (FieldKind::LlVar { max: len } | FieldKind::LllVar { max: len }, Enc::Gbk) => {
                let mut s = "龘".repeat(len / 2);
                if len % 2 == 1 {
                    s.push('9');
                }
                FieldValue::Text(s)
            }
            (FieldKind::Fixed { len }, _)
            | (FieldKind::LlVar { max: len } | FieldKind::LllVar { max: len }, _) => {
                FieldValue::Text("9".repeat(len))
            }
        };
        m.set(f.number, v);
    }
    m
}
