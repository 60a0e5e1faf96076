//! The ISO 8583 family's table (bank C): the field table as data (`codecs::format::iso8583::FieldSpec`,
//! the same rows as `codecs/src/format/iso8583/bank_c_fields.toml`), which fields each message carries,
//! the processing and network codes, the tag lists of the recipient and result fields, and the MAC
//! algorithm agreed by default.
//!
//! ```text
//! 0800 network (F70 sign-on | sign-off | echo)      -> 0810 network_reply (F39)
//! 0200 payout  (F3 = processing_codes.payout)       -> 0210 payout_reply  (F39: codes.submit / session)
//! 0200 inquiry (F3 = processing_codes.inquiry)      -> 0210 inquiry_reply (F39: codes.query / status / item)
//! ```
//! A message's kind is told by its MTI and, where two kinds share one, by F3; the profile is refused
//! when two kinds cannot be told apart.
use std::collections::BTreeMap;

use codecs::format::iso8583::{Enc, FieldKind, FieldSpec, MessageSpec, SpecError};
use codecs::mac::MacAlg;
use serde::{Deserialize, Serialize};

use crate::schema::{
    Framing, Invalid, ItemOutcome, Profile, QueryOutcome, StatusOutcome, TransportKind, bad,
};

/// The field that carries the MAC.
pub const MAC_FIELD: u8 = 128;

/// The messages of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Sign-on, sign-off or echo (`0800`).
    Network,
    /// Its reply (`0810`).
    NetworkReply,
    /// Pay one item (`0200`, F3 payout).
    Payout,
    /// Its reply (`0210`).
    PayoutReply,
    /// Ask for one item's result (`0200`, F3 inquiry).
    Inquiry,
    /// Its reply (`0210`).
    InquiryReply,
}

impl MessageKind {
    /// Every kind.
    pub const ALL: [MessageKind; 6] = [
        MessageKind::Network,
        MessageKind::NetworkReply,
        MessageKind::Payout,
        MessageKind::PayoutReply,
        MessageKind::Inquiry,
        MessageKind::InquiryReply,
    ];

    /// The name as profiles and the codec tool write it.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Network => "network",
            MessageKind::NetworkReply => "network_reply",
            MessageKind::Payout => "payout",
            MessageKind::PayoutReply => "payout_reply",
            MessageKind::Inquiry => "inquiry",
            MessageKind::InquiryReply => "inquiry_reply",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Fields every message of a kind must carry whatever the bank, because the family's link relies on
/// them (ISO 8583 meanings), with the reason.
pub const ISO8583_REQUIRED_FIELDS: &[(MessageKind, &[(u8, &str)])] = &[
    (
        MessageKind::Network,
        &[
            (11, "replies are matched by STAN"),
            (70, "network management code"),
        ],
    ),
    (
        MessageKind::NetworkReply,
        &[
            (11, "replies are matched by STAN"),
            (39, "response code"),
            (70, "network management code"),
        ],
    ),
    (
        MessageKind::Payout,
        &[
            (3, "processing code"),
            (11, "replies are matched by STAN"),
            (37, "item reference"),
            (MAC_FIELD, "payments are authenticated"),
        ],
    ),
    (
        MessageKind::PayoutReply,
        &[
            (3, "processing code"),
            (11, "replies are matched by STAN"),
            (37, "item reference"),
            (39, "response code"),
            (MAC_FIELD, "replies are authenticated"),
        ],
    ),
    (
        MessageKind::Inquiry,
        &[
            (3, "processing code"),
            (11, "replies are matched by STAN"),
            (37, "item reference"),
            (90, "original data elements"),
            (MAC_FIELD, "inquiries are authenticated"),
        ],
    ),
    (
        MessageKind::InquiryReply,
        &[
            (3, "processing code"),
            (11, "replies are matched by STAN"),
            (37, "item reference"),
            (39, "response code"),
            (MAC_FIELD, "replies are authenticated"),
        ],
    ),
];

/// The recipient tags the gateway fills (names in `recipient_data.tags`).
pub const ISO8583_RECIPIENT_TAGS: &[&str] = &[
    "name",
    "id_type",
    "id_no",
    "account_kind",
    "phone",
    "subsidy_code",
    "batch_ref",
    "seq",
];

/// The result tags the gateway reads (names in `result_data.tags`).
pub const ISO8583_RESULT_TAGS: &[&str] = &["confirmed_at", "bank_ref", "reason"];

/// Value tables the gateway looks up, and their keys.
pub const ISO8583_VALUES: &[(&str, &[&str])] = &[
    ("id_type", &["person", "unit"]),
    ("account_kind", &["ssc", "corporate", "personal"]),
];

/// The ISO 8583 family's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Iso8583 {
    /// MAC algorithm agreed by default; a deployment may pick the other one in its config, the key
    /// always comes from the deployment's secret store.
    pub mac: MacAlg,
    /// F49: currency code.
    pub currency: String,
    /// F3 of payouts and inquiries.
    pub processing_codes: ProcessingCodes,
    /// F70 of network messages.
    pub network_codes: NetworkCodes,
    /// Value tables: e.g. `id_type.person = "1"`.
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// The tag list of the recipient's data (F48).
    pub recipient_data: TagField,
    /// The tag list of an item's result (F121).
    pub result_data: TagField,
    /// The fields of each message.
    pub messages: Messages,
    /// The field table (checked by `codecs::format::iso8583::MessageSpec::new`).
    pub fields: Vec<FieldSpec>,
}

/// F3 codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessingCodes {
    /// Pay one item.
    pub payout: String,
    /// Ask for one item's result.
    pub inquiry: String,
}

/// F70 codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkCodes {
    /// Sign on.
    pub sign_on: String,
    /// Sign off.
    pub sign_off: String,
    /// Echo (keep-alive).
    pub echo: String,
}

/// A field holding a tag list: tag (2 ASCII) + length (3 ASCII digits, bytes) + value, repeated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagField {
    /// The field number.
    pub field: u8,
    /// The tags, in the order writers put them (readers take any order).
    pub tags: Vec<TagSpec>,
}

/// One tag of a tag list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagSpec {
    /// What it holds, as the gateway calls it (`name`, `id_no`...).
    pub name: String,
    /// The tag on the wire (2 ASCII letters or digits).
    pub tag: String,
    /// Must be in every message carrying the list.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Personal data: masked whenever shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    /// Largest value in bytes (at most 999).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<usize>,
}

/// The fields of each message kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Messages {
    /// `0800`.
    pub network: MessageLayout,
    /// `0810`.
    pub network_reply: MessageLayout,
    /// `0200` payout.
    pub payout: MessageLayout,
    /// `0210` to a payout.
    pub payout_reply: MessageLayout,
    /// `0200` inquiry.
    pub inquiry: MessageLayout,
    /// `0210` to an inquiry.
    pub inquiry_reply: MessageLayout,
}

/// One message: its MTI, the fields it always carries and those it may carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageLayout {
    /// Message type indicator (4 digits).
    pub mti: String,
    /// Fields always present, ascending.
    pub fields: Vec<u8>,
    /// Fields present in some messages only (e.g. F121 when final), ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional: Vec<u8>,
}

/// Why a message does not have the fields of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// A field the kind always carries is absent.
    #[error("a {kind} message carries field {field}, it is absent")]
    Missing {
        /// The kind (`payout`...).
        kind: &'static str,
        /// The field.
        field: u8,
    },
    /// A field the kind never carries is present.
    #[error("a {kind} message has no field {field}")]
    Unexpected {
        /// The kind.
        kind: &'static str,
        /// The field.
        field: u8,
    },
}

impl Messages {
    /// The layout of `kind`.
    pub fn get(&self, kind: MessageKind) -> &MessageLayout {
        match kind {
            MessageKind::Network => &self.network,
            MessageKind::NetworkReply => &self.network_reply,
            MessageKind::Payout => &self.payout,
            MessageKind::PayoutReply => &self.payout_reply,
            MessageKind::Inquiry => &self.inquiry,
            MessageKind::InquiryReply => &self.inquiry_reply,
        }
    }
}

impl MessageLayout {
    /// Whether `field` is always or sometimes present.
    pub fn allows(&self, field: u8) -> bool {
        self.fields.contains(&field) || self.optional.contains(&field)
    }
}

impl Iso8583 {
    /// The checked field table (checked on load already: an error here means the profile was changed
    /// after loading).
    pub fn message_spec(&self) -> Result<MessageSpec, SpecError> {
        MessageSpec::new(self.fields.clone())
    }

    /// F3 of `kind`, for the kinds that carry one.
    pub fn processing_code(&self, kind: MessageKind) -> Option<&str> {
        match kind {
            MessageKind::Payout | MessageKind::PayoutReply => {
                Some(self.processing_codes.payout.as_str())
            }
            MessageKind::Inquiry | MessageKind::InquiryReply => {
                Some(self.processing_codes.inquiry.as_str())
            }
            MessageKind::Network | MessageKind::NetworkReply => None,
        }
    }

    /// The kind of a message with this MTI and F3 (`None` when no kind matches).
    pub fn kind_of(&self, mti: &str, processing_code: Option<&str>) -> Option<MessageKind> {
        let mut candidates = MessageKind::ALL
            .into_iter()
            .filter(|&k| self.messages.get(k).mti == mti);
        let first = candidates.next()?;
        let rest: Vec<MessageKind> = candidates.collect();
        if rest.is_empty() {
            return Some(first);
        }
        std::iter::once(first).chain(rest).find(|&k| {
            self.processing_code(k).is_some() && self.processing_code(k) == processing_code
        })
    }

    /// Checks that a message of `kind` has exactly the fields its layout allows.
    pub fn check_fields(
        &self,
        kind: MessageKind,
        present: impl IntoIterator<Item = u8>,
    ) -> Result<(), LayoutError> {
        let layout = self.messages.get(kind);
        let present: Vec<u8> = present.into_iter().collect();
        if let Some(&field) = present.iter().find(|&&f| !layout.allows(f)) {
            return Err(LayoutError::Unexpected {
                kind: kind.as_str(),
                field,
            });
        }
        if let Some(&field) = layout.fields.iter().find(|f| !present.contains(f)) {
            return Err(LayoutError::Missing {
                kind: kind.as_str(),
                field,
            });
        }
        Ok(())
    }

    /// The value of `table.key`, e.g. `value("id_type", "person")`.
    pub fn value(&self, table: &str, key: &str) -> Option<&str> {
        self.values
            .get(table)
            .and_then(|t| t.get(key))
            .map(String::as_str)
    }

    /// The tag list carried in field `number`, if it is one.
    pub fn tag_field(&self, number: u8) -> Option<&TagField> {
        [&self.recipient_data, &self.result_data]
            .into_iter()
            .find(|t| t.field == number)
    }

    pub(crate) fn validate(&self, p: &Profile) -> Result<(), Invalid> {
        let spec = match self.message_spec() {
            Ok(s) => s,
            Err(e) => return bad("iso8583.fields", e.to_string()),
        };
        if let Some(f) = spec.field(MAC_FIELD)
            && f.kind
                != (FieldKind::Binary {
                    len: codecs::mac::MAC_LEN,
                })
        {
            return bad(
                "iso8583.fields",
                format!("field {MAC_FIELD} carries the MAC: kind binary, len 8"),
            );
        }
        digits("iso8583.currency", &self.currency, 3)?;
        digits(
            "iso8583.processing_codes.payout",
            &self.processing_codes.payout,
            6,
        )?;
        digits(
            "iso8583.processing_codes.inquiry",
            &self.processing_codes.inquiry,
            6,
        )?;
        if self.processing_codes.payout == self.processing_codes.inquiry {
            return bad(
                "iso8583.processing_codes",
                "payout and inquiry share one code",
            );
        }
        self.validate_messages(&spec)?;
        let n = &self.network_codes;
        digits("iso8583.network_codes.sign_on", &n.sign_on, 3)?;
        digits("iso8583.network_codes.sign_off", &n.sign_off, 3)?;
        digits("iso8583.network_codes.echo", &n.echo, 3)?;
        if n.sign_on == n.sign_off || n.sign_on == n.echo || n.sign_off == n.echo {
            return bad("iso8583.network_codes", "two purposes share one code");
        }
        for (table, keys) in ISO8583_VALUES {
            for k in *keys {
                match self.value(table, k) {
                    Some(v) if !v.is_empty() => {}
                    _ => return bad(format!("iso8583.values.{table}"), format!("has no `{k}`")),
                }
            }
        }
        self.validate_tags(
            &spec,
            "recipient_data",
            &self.recipient_data,
            MessageKind::Payout,
        )?;
        self.validate_tags(
            &spec,
            "result_data",
            &self.result_data,
            MessageKind::InquiryReply,
        )?;
        for name in ISO8583_RECIPIENT_TAGS {
            if !self.recipient_data.tags.iter().any(|t| t.name == *name) {
                return bad("iso8583.recipient_data.tags", format!("has no `{name}`"));
            }
        }
        if let Some(t) = self
            .recipient_data
            .tags
            .iter()
            .find(|t| !ISO8583_RECIPIENT_TAGS.contains(&t.name.as_str()))
        {
            return bad(
                "iso8583.recipient_data.tags",
                format!("`{}`: the gateway has no such value to send", t.name),
            );
        }
        for name in ISO8583_RESULT_TAGS {
            if !self.result_data.tags.iter().any(|t| t.name == *name) {
                return bad("iso8583.result_data.tags", format!("has no `{name}`"));
            }
        }
        if !matches!(p.transport.kind, TransportKind::Tcp | TransportKind::Tls) {
            return bad(
                "transport.kind",
                "the iso8583 family runs over `tcp` or `tls`",
            );
        }
        if !matches!(p.transport.framing, Framing::U16Length { .. }) {
            return bad(
                "transport.framing",
                "the iso8583 family needs `method = \"u16-length\"`",
            );
        }
        validate_codes(p)
    }

    fn validate_messages(&self, spec: &MessageSpec) -> Result<(), Invalid> {
        for kind in MessageKind::ALL {
            let m = self.messages.get(kind);
            let key = |part: &str| format!("iso8583.messages.{}.{part}", kind.as_str());
            digits(&key("mti"), &m.mti, 4)?;
            for (part, list) in [("fields", &m.fields), ("optional", &m.optional)] {
                if list.windows(2).any(|w| w[0] >= w[1]) {
                    return bad(key(part), "not ascending, or a field twice");
                }
                if let Some(f) = list.iter().find(|&&f| spec.field(f).is_none()) {
                    return bad(key(part), format!("field {f} is not in iso8583.fields"));
                }
            }
            if let Some(f) = m.optional.iter().find(|f| m.fields.contains(f)) {
                return bad(key("optional"), format!("field {f} is also always present"));
            }
            for (k, required) in ISO8583_REQUIRED_FIELDS {
                if *k != kind {
                    continue;
                }
                for (f, why) in *required {
                    if !m.fields.contains(f) {
                        return bad(key("fields"), format!("has no field {f} ({why})"));
                    }
                }
            }
        }
        for a in MessageKind::ALL {
            for b in MessageKind::ALL {
                if a < b
                    && self.messages.get(a).mti == self.messages.get(b).mti
                    && (self.processing_code(a).is_none()
                        || self.processing_code(b).is_none()
                        || self.processing_code(a) == self.processing_code(b))
                {
                    return bad(
                        format!("iso8583.messages.{}.mti", b.as_str()),
                        format!(
                            "{} and {} share an MTI and cannot be told apart by F3",
                            a.as_str(),
                            b.as_str()
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    fn validate_tags(
        &self,
        spec: &MessageSpec,
        section: &str,
        t: &TagField,
        carried_by: MessageKind,
    ) -> Result<(), Invalid> {
        let key = format!("iso8583.{section}");
        let Some(f) = spec.field(t.field) else {
            return bad(
                format!("{key}.field"),
                format!("field {} is not in iso8583.fields", t.field),
            );
        };
        if !matches!(f.kind, FieldKind::LlVar { .. } | FieldKind::LllVar { .. })
            || !matches!(f.encoding, Enc::Gbk | Enc::AlphaNumSpecial)
        {
            return bad(
                format!("{key}.field"),
                format!(
                    "field {} cannot hold a tag list (needs a variable gbk or ans field)",
                    t.field
                ),
            );
        }
        if !self.messages.get(carried_by).allows(t.field) {
            return bad(
                format!("{key}.field"),
                format!(
                    "field {} is not in iso8583.messages.{}",
                    t.field,
                    carried_by.as_str()
                ),
            );
        }
        if t.tags.is_empty() {
            return bad(format!("{key}.tags"), "empty");
        }
        for (i, tag) in t.tags.iter().enumerate() {
            let k = format!("{key}.tags[{i}]");
            if tag.name.trim().is_empty() {
                return bad(format!("{k}.name"), "empty");
            }
            if tag.tag.len() != 2 || !tag.tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return bad(
                    format!("{k}.tag"),
                    format!("`{}` is not two ASCII letters or digits", tag.tag),
                );
            }
            if let Some(max) = tag.max
                && !(1..=codecs::format::iso8583::tlv::MAX_VALUE_LEN).contains(&max)
            {
                return bad(format!("{k}.max"), "must be 1 to 999");
            }
            for other in &t.tags[..i] {
                if other.tag == tag.tag {
                    return bad(format!("{k}.tag"), format!("`{}` is used twice", tag.tag));
                }
                if other.name == tag.name {
                    return bad(format!("{k}.name"), format!("`{}` is used twice", tag.name));
                }
            }
        }
        Ok(())
    }
}

fn digits(key: &str, v: &str, n: usize) -> Result<(), Invalid> {
    if v.len() != n || !v.bytes().all(|b| b.is_ascii_digit()) {
        return bad(key, format!("`{v}` is not {n} digits"));
    }
    Ok(())
}

/// Response codes: every table's keys are F39 values, and the tables agree with each other.
fn validate_codes(p: &Profile) -> Result<(), Invalid> {
    let c = &p.codes;
    let tables: [(&str, Vec<&String>); 5] = [
        ("submit", c.submit.keys().collect()),
        ("query", c.query.keys().collect()),
        ("item", c.item.keys().collect()),
        ("status", c.status.keys().collect()),
        ("session", c.session.keys().collect()),
    ];
    for (table, keys) in &tables {
        if let Some(k) = keys
            .iter()
            .find(|k| k.len() != 2 || !k.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return bad(
                format!("codes.{table}"),
                format!("`{k}` is not a response code (2 ASCII letters or digits)"),
            );
        }
    }
    for code in c.session.keys() {
        if c.submit.contains_key(code) || c.query.contains_key(code) {
            return bad(
                format!("codes.session.{code}"),
                "also in codes.submit or codes.query: session codes are looked up first, the other entry would never apply",
            );
        }
    }
    if c.status.is_empty() {
        return bad(
            "codes.status",
            "the iso8583 family maps inquiry answers to processing or final here",
        );
    }
    for (code, s) in &c.status {
        if c.query.get(code) != Some(&QueryOutcome::Answered) {
            return bad(
                format!("codes.status.{code}"),
                "a state must be an answered inquiry (codes.query = \"answered\")",
            );
        }
        match (s, c.item.get(code)) {
            (StatusOutcome::Final, None) => {
                return bad(
                    format!("codes.status.{code}"),
                    "final, but codes.item does not say how the item ended",
                );
            }
            (StatusOutcome::Processing | StatusOutcome::Accepted, Some(_)) => {
                return bad(
                    format!("codes.item.{code}"),
                    "the item is not final under this code (codes.status)",
                );
            }
            _ => {}
        }
    }
    for (code, item) in &c.item {
        if c.status.get(code) != Some(&StatusOutcome::Final) {
            return bad(
                format!("codes.item.{code}"),
                "an item code must be a final state in codes.status",
            );
        }
        if item.outcome == ItemOutcome::Review && item.reason.trim().is_empty() {
            return bad(format!("codes.item.{code}.reason"), "empty");
        }
    }
    for (code, o) in &c.query {
        if *o == QueryOutcome::Answered && !c.status.contains_key(code) {
            return bad(
                format!("codes.query.{code}"),
                "answered, but codes.status does not say whether it is final",
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_their_names() {
        for k in MessageKind::ALL {
            assert_eq!(MessageKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(MessageKind::parse("refund"), None);
    }
}
