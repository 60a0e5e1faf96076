//! Reading a roster: structure first (types, required fields, formats), as a stream.
//!
//! JSON bodies are read in one pass with a visitor that turns each item into a typed [`ItemIn`] as it
//! goes; NDJSON bodies line by line. Both feed the same canonical hash, so "the same JSON value" means
//! the same thing whatever the key order, spacing or content type.
use std::cell::RefCell;
use std::fmt;
use std::io::Write;

use serde::Deserialize;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::{AccountKind, RecipientKind};

/// A structure error: the path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructureError {
    /// JSON path, e.g. `items[17].amount_fen`.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for StructureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

fn serr(path: impl Into<String>, problem: impl Into<String>) -> StructureError {
    StructureError {
        path: path.into(),
        problem: problem.into(),
    }
}

/// The payer account of a batch.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct PayerAccount {
    /// Account number.
    pub no: String,
    /// Account name.
    pub name: String,
}

/// A batch header as submitted (without items).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct HeaderIn {
    /// The platform's id.
    pub batch_no: String,
    /// Line department.
    pub department_code: String,
    /// 6-digit region.
    pub region_code: String,
    /// Subsidy code.
    pub subsidy_code: String,
    /// Subsidy name.
    pub subsidy_name: String,
    /// Budget year.
    pub budget_year: i64,
    /// Period.
    pub period: String,
    /// Indicator number: absent or empty is a rule failure (`E-BATCH-INDICATOR`), not a structure one.
    #[serde(default)]
    pub indicator_no: Option<String>,
    /// Supervised-funds flag: absent or false is `E-BATCH-INDICATOR`.
    #[serde(default)]
    pub supervised: Option<bool>,
    /// Payout bank code.
    pub payout_bank: String,
    /// Payout account.
    pub payer_account: PayerAccount,
    /// `YYYY-MM-DD`.
    pub funds_arrived_on: String,
    /// Header count.
    pub total_count: u64,
    /// Header amount.
    pub total_amount_fen: i64,
}

/// An item as submitted.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ItemIn {
    /// Sequence number (unique, positive).
    pub seq: i64,
    /// Person or unit.
    pub recipient_kind: RecipientKind,
    /// Name.
    pub name: String,
    /// Id number.
    pub id_no: String,
    /// Account number.
    pub account_no: String,
    /// Account kind.
    pub account_kind: AccountKind,
    /// Account bank.
    pub account_bank_code: String,
    /// Amount in fen (an integer; a string or a fraction is a structure error).
    pub amount_fen: i64,
    /// Phone.
    pub phone: String,
    /// Exempt from the social security card rule.
    #[serde(default)]
    pub ssc_exempt: bool,
    /// Memo.
    #[serde(default)]
    pub memo: String,
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// Converts a JSON value to `T`, naming the field on failure.
fn typed<T: serde::de::DeserializeOwned>(value: Value, prefix: &str) -> Result<T, StructureError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            prefix.to_owned()
        } else if prefix.is_empty() {
            inner
        } else {
            format!("{prefix}.{inner}")
        };
        let msg = e.into_inner().to_string();
        // serde's messages mention a field by name and the expected type; they never echo the value
        // for the types used here except for unknown enum variants, which we rephrase.
        let problem = if msg.starts_with("unknown variant") {
            msg.split(", expected")
                .next()
                .map(|m| m.replace("unknown variant", "unknown value"))
                .unwrap_or(msg)
        } else {
            msg
        };
        serr(
            if path.is_empty() {
                "$".to_owned()
            } else {
                path
            },
            problem,
        )
    })
}

/// Parses and checks a header object (with `items` already removed).
pub fn header_from_map(map: Map<String, Value>, ndjson: bool) -> Result<HeaderIn, StructureError> {
    if ndjson && map.contains_key("items") {
        return Err(serr(
            "items",
            "an NDJSON header line has no items: send one item per line after it",
        ));
    }
    let h: HeaderIn = typed(Value::Object(map), "")?;
    if h.batch_no.trim().is_empty() || h.batch_no.chars().count() > 64 {
        return Err(serr("batch_no", "must be 1 to 64 characters"));
    }
    if h.department_code.trim().is_empty() || h.department_code.chars().count() > 15 {
        return Err(serr("department_code", "must be 1 to 15 characters"));
    }
    if !is_digits(&h.region_code, 6) {
        return Err(serr("region_code", "must be 6 digits"));
    }
    if !is_digits(&h.payout_bank, 12) {
        return Err(serr("payout_bank", "must be a 12-digit bank code"));
    }
    if crate::clock::parse_date(&h.funds_arrived_on).is_none() {
        return Err(serr("funds_arrived_on", "must be a date YYYY-MM-DD"));
    }
    for (path, v) in [
        ("subsidy_code", &h.subsidy_code),
        ("period", &h.period),
        ("payer_account.no", &h.payer_account.no),
    ] {
        if v.trim().is_empty() {
            return Err(serr(path, "must not be empty"));
        }
    }
    Ok(h)
}

/// Parses and checks one item.
pub fn item_from_value(index: usize, value: Value) -> Result<ItemIn, StructureError> {
    let prefix = format!("items[{index}]");
    if !value.is_object() {
        return Err(serr(prefix, "must be an object"));
    }
    let it: ItemIn = typed(value, &prefix)?;
    if it.seq <= 0 {
        return Err(serr(format!("{prefix}.seq"), "must be a positive integer"));
    }
    if !is_digits(&it.account_bank_code, 12) {
        return Err(serr(
            format!("{prefix}.account_bank_code"),
            "must be a 12-digit bank code",
        ));
    }
    Ok(it)
}

/// Writes the canonical form of a JSON value (object keys sorted, no spaces) to `w`.
pub fn write_canonical(v: &Value, w: &mut impl Write) -> std::io::Result<()> {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            w.write_all(b"{")?;
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                serde_json::to_writer(&mut *w, k)?;
                w.write_all(b":")?;
                if let Some(x) = m.get(k) {
                    write_canonical(x, w)?;
                }
            }
            w.write_all(b"}")
        }
        Value::Array(a) => {
            w.write_all(b"[")?;
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                write_canonical(x, w)?;
            }
            w.write_all(b"]")
        }
        other => Ok(serde_json::to_writer(&mut *w, other)?),
    }
}

/// Canonical hash of a roster: the header object (without items), then every item in order.
#[derive(Default, Clone, Debug)]
pub struct BodyHash {
    items: Sha256,
    count: u64,
}

struct HashWriter<'a>(&'a mut Sha256);
impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl BodyHash {
    /// Adds the next item.
    pub fn item(&mut self, v: &Value) {
        // Writing to a hasher cannot fail.
        let _ = write_canonical(v, &mut HashWriter(&mut self.items));
        self.items.update(b"\n");
        self.count += 1;
    }

    /// The final hash, given the header object.
    pub fn finish(self, header: &Map<String, Value>) -> String {
        let mut h = Sha256::new();
        let _ = write_canonical(&Value::Object(header.clone()), &mut HashWriter(&mut h));
        h.update(b"\nitems:");
        h.update(self.count.to_be_bytes());
        h.update(self.items.finalize());
        hex::encode(h.finalize())
    }
}

/// A whole JSON roster, parsed in one pass.
#[derive(Debug)]
pub struct JsonRoster {
    /// Header fields (everything but `items`).
    pub header: Map<String, Value>,
    /// Typed items in order.
    pub items: Vec<ItemIn>,
    /// Hash over the items.
    pub hash: BodyHash,
}

/// Parses a JSON roster body. Structure errors name the path.
pub fn parse_json(body: &[u8]) -> Result<JsonRoster, StructureError> {
    let failure: RefCell<Option<StructureError>> = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = RosterSeed { failure: &failure }
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|_| r));
    match result {
        Ok(r) => Ok(r),
        Err(e) => Err(failure.into_inner().unwrap_or_else(|| {
            if e.is_eof() || e.is_syntax() {
                serr("$", format!("not valid JSON ({})", e))
            } else {
                serr("$", e.to_string())
            }
        })),
    }
}

struct RosterSeed<'a> {
    failure: &'a RefCell<Option<StructureError>>,
}

impl<'de> DeserializeSeed<'de> for RosterSeed<'_> {
    type Value = JsonRoster;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<JsonRoster, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RosterSeed<'_> {
    type Value = JsonRoster;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a roster object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonRoster, A::Error> {
        let mut header = Map::new();
        let mut items = None;
        let mut hash = BodyHash::default();
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                if items.is_some() {
                    *self.failure.borrow_mut() = Some(serr("items", "appears twice"));
                    return Err(serde::de::Error::custom("duplicate items"));
                }
                items = Some(map.next_value_seed(ItemsSeed {
                    failure: self.failure,
                    hash: &mut hash,
                })?);
            } else {
                let v: Value = map.next_value()?;
                if header.insert(key.clone(), v).is_some() {
                    *self.failure.borrow_mut() = Some(serr(key, "appears twice"));
                    return Err(serde::de::Error::custom("duplicate key"));
                }
            }
        }
        let Some(items) = items else {
            *self.failure.borrow_mut() = Some(serr("items", "missing field `items`"));
            return Err(serde::de::Error::custom("missing items"));
        };
        Ok(JsonRoster {
            header,
            items,
            hash,
        })
    }
}

struct ItemsSeed<'a> {
    failure: &'a RefCell<Option<StructureError>>,
    hash: &'a mut BodyHash,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = Vec<ItemIn>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Vec<ItemIn>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = Vec<ItemIn>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<ItemIn>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(v) = seq.next_element::<Value>()? {
            self.hash.item(&v);
            match item_from_value(out.len(), v) {
                Ok(it) => out.push(it),
                Err(e) => {
                    *self.failure.borrow_mut() = Some(e);
                    return Err(serde::de::Error::custom("bad item"));
                }
            }
        }
        Ok(out)
    }
}

/// Parses one NDJSON line as a JSON value, naming the line on failure.
pub fn parse_line(line: &[u8], line_no: usize, path: &str) -> Result<Value, StructureError> {
    serde_json::from_slice(line)
        .map_err(|e| serr(path, format!("line {line_no} is not valid JSON ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"batch_no":"B1","department_code":"220623-NYNC","region_code":"220623",
      "subsidy_code":"NY001","subsidy_name":"耕地地力保护补贴","budget_year":2026,"period":"2026",
      "indicator_no":"吉财农指〔2026〕4号","supervised":true,"payout_bank":"402241000015",
      "payer_account":{"no":"0711012345678901","name":"专户"},"funds_arrived_on":"2026-03-03",
      "total_count":1,"total_amount_fen":288265,"items":[{"seq":1,"recipient_kind":"person","name":"郝桂",
      "id_no":"220203196602074567","account_no":"6217995505724754105","account_kind":"ssc",
      "account_bank_code":"102241000019","amount_fen":288265,"phone":"14597919074"}]}"#;

    #[test]
    fn parses_a_roster_and_defaults_optional_fields() {
        let r = parse_json(GOOD.as_bytes()).expect("good");
        assert_eq!(r.items.len(), 1);
        assert!(!r.items[0].ssc_exempt);
        assert_eq!(r.items[0].memo, "");
        let h = header_from_map(r.header, false).expect("header");
        assert_eq!(h.total_amount_fen, 288_265);
    }

    #[test]
    fn names_the_path_of_a_wrong_type() {
        let bad = GOOD.replace("\"amount_fen\":288265", "\"amount_fen\":\"288265\"");
        assert_eq!(
            parse_json(bad.as_bytes()).err().map(|e| e.path),
            Some("items[0].amount_fen".into())
        );
        let frac = GOOD.replace("\"amount_fen\":288265", "\"amount_fen\":2882.65");
        assert_eq!(
            parse_json(frac.as_bytes()).err().map(|e| e.path),
            Some("items[0].amount_fen".into())
        );
        let missing = GOOD.replace("\"phone\":\"14597919074\"", "\"memo\":\"x\"");
        let e = parse_json(missing.as_bytes()).expect_err("missing phone");
        assert!(e.problem.contains("phone"), "{e}");
        let enum_bad = GOOD.replace("\"ssc\"", "\"sscx\"");
        let e = parse_json(enum_bad.as_bytes()).expect_err("enum");
        assert_eq!(e.path, "items[0].account_kind");
    }

    #[test]
    fn same_value_same_hash_whatever_the_order() {
        let a = parse_json(GOOD.as_bytes()).expect("a");
        let reordered = GOOD.replace(
            "\"batch_no\":\"B1\",\"department_code\":\"220623-NYNC\"",
            "\"department_code\":\"220623-NYNC\",  \"batch_no\":\"B1\"",
        );
        let b = parse_json(reordered.as_bytes()).expect("b");
        assert_eq!(a.hash.finish(&a.header), b.hash.finish(&b.header));
        let other = parse_json(GOOD.replace("郝桂", "郝贵").as_bytes()).expect("c");
        let a2 = parse_json(GOOD.as_bytes()).expect("a2");
        assert_ne!(a2.hash.finish(&a2.header), other.hash.finish(&other.header));
    }

    #[test]
    fn bad_json_is_a_structure_error() {
        assert!(parse_json(b"{\"batch_no\": ").is_err());
        assert!(parse_json(b"[]").is_err());
        assert!(parse_json(format!("{GOOD} trailing").as_bytes()).is_err());
    }
}
