//! The gateway's domain: batches, items, parts, queries; money in fen; personal data as masked types;
//! status enums and their allowed transitions. No I/O of any kind here.
pub mod ids;
pub mod money;
pub mod pii;
pub mod status;

pub use money::Fen;
pub use pii::{AccountNo, IdNo, Name, Phone, Pii};
pub use status::{BatchStatus, ItemStatus, PartState};

/// A recipient is a person or a unit (an organisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientKind {
    /// A natural person: resident ID, paid to a social security card.
    Person,
    /// A unit: unified social credit code, paid to a corporate account.
    Unit,
}

impl RecipientKind {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Unit => "unit",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "person" => Some(Self::Person),
            "unit" => Some(Self::Unit),
            _ => None,
        }
    }
}

/// The kind of account an item is paid to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// Social security card (社保卡).
    Ssc,
    /// Corporate account (对公账户).
    Corporate,
    /// Another personal account.
    Personal,
}

impl AccountKind {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ssc => "ssc",
            Self::Corporate => "corporate",
            Self::Personal => "personal",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ssc" => Some(Self::Ssc),
            "corporate" => Some(Self::Corporate),
            "personal" => Some(Self::Personal),
            _ => None,
        }
    }
}
