//! SMS notices over SMPP 3.4 to the SMS centre (`shared/specs/sms-smpp.md`): the protocol client.
//!
//! ```text
//!  caller (notice outbox)                SmppClient task                          SMS centre
//!  handle.send(key, phone, text) --parts--> window (semaphore, 10) + pacing --submit_sm--> |
//!        <-- Ok(Sent{message_ids}) <------- submit_sm_resp by sequence_number <------------ |
//!            throttled / queue full: backoff (backon), same PDU content again               |
//!  receipts.recv() <-- InboundReceipt <---- deliver_sm (esm_class 0x04) <------------------- |
//!  receipt.ack()  ------------------------> deliver_sm_resp ------------------------------> |
//!                                           enquire_link every 30 s, answers the centre's;
//!                                           silent 60 s or connection lost: reconnect with
//!                                           backoff and bind again
//! ```
//!
//! This module knows nothing about the store: the caller keys notices by its own opaque key and keeps
//! the mapping to the centre's message ids that [`SmppHandle::send`] returns; receipts come back with
//! the message id (and the recipient), which is how a final state finds its notice.
//!
//! # Where the notice key travels
//! In the caller's hands, and in logs (it is opaque, not personal data). On the wire only if
//! [`SmppConfig::key_tlv`] names a vendor-specific TLV tag (`0x1400..=0x3FFF`, default `None`): the key
//! is then sent as a C-octet string in that TLV on every part. The simulated centre books it (it reads
//! `0x1400`), so tests count messages per key from the centre's side; a production centre that does not
//! know the tag should ignore it, but one may refuse it (`ESME_ROPTPARNOTALLWD`), hence off by default.
//!
//! # At most once, at the SMPP level
//! SMPP has no idempotency key: a `submit_sm` written to a connection that is lost before its
//! `submit_sm_resp` arrives may or may not have been accepted. The spec says one notice, never two, so by
//! default ([`Unconfirmed::Report`]) such a part is **not** sent again: [`SmppHandle::send`] ends with
//! [`SendError::Unsettled`], which lists per part whether it was accepted (with its id), definitely not
//! sent (never handed to a connection, or still queued when it died: safe to send), or ambiguous. The
//! caller decides — hold the notice as unknown and wait for a receipt naming it, or resend with
//! [`SmppHandle::retry`] (same UDH reference, so a handset still assembles the parts). With
//! [`Unconfirmed::Resend`] the client resends ambiguous parts itself after reconnecting: at least once.
//! Throttled (`ESME_RTHROTTLED`) and queue-full (`ESME_RMSGQFUL`) answers are definite refusals and are
//! always resent, after a backoff.
use std::fmt;
use std::time::Duration;

use codecs::format::smpp::pdu::status;
use codecs::format::smpp::{SmscTime, Stat, TextError};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::clock::SHANGHAI;
use crate::domain::pii::Phone;

pub mod notice;
pub mod sender;
mod session;

pub use session::{InboundReceipt, Receipts, SmppClient, SmppHandle};

/// The password of the bind: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmscPassword(String);

impl SmscPassword {
    /// Wraps a password resolved by the caller (from the environment or a file).
    pub fn new(p: impl Into<String>) -> Self {
        Self(p.into())
    }

    /// The plaintext, for the bind only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SmscPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What to do with a part whose `submit_sm_resp` was lost with its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unconfirmed {
    /// Do not resend: report it ([`SendError::Unsettled`]) and let the caller decide (at most once).
    #[default]
    Report,
    /// Resend it after reconnecting (at least once: the recipient may get the part twice).
    Resend,
}

/// How to reach and use the SMS centre. Timers are fields so tests can run them fast.
#[derive(Debug, Clone)]
pub struct SmppConfig {
    /// `host:port` of the centre.
    pub endpoint: String,
    /// `system_id` of the bind (at most 15 octets).
    pub system_id: String,
    /// Password of the bind (at most 8 octets), already resolved by the caller.
    pub password: SmscPassword,
    /// The service number: `source_addr`, TON 0, NPI 1.
    pub service_number: String,
    /// `registered_delivery` (1: a receipt for the final outcome).
    pub registered_delivery: u8,
    /// `submit_sm`s outstanding at once (the centre allows 10).
    pub window: usize,
    /// Parts per second the client paces itself to; `None` sends as fast as the window allows
    /// (throttling answers are still handled).
    pub max_rate_per_second: Option<u32>,
    /// Interval of our `enquire_link`.
    pub enquire_link_interval: Duration,
    /// A centre silent this long is gone: reconnect.
    pub dead_after: Duration,
    /// How long a `bind_transceiver_resp` or `submit_sm_resp` may take; past it the connection is
    /// considered broken and is replaced.
    pub response_timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Reconnect backoff, first delay.
    pub reconnect_min: Duration,
    /// Reconnect backoff, longest delay.
    pub reconnect_max: Duration,
    /// Backoff after `ESME_RTHROTTLED` / `ESME_RMSGQFUL`, first delay.
    pub throttle_min: Duration,
    /// Same, longest delay.
    pub throttle_max: Duration,
    /// At most or at least once for parts whose response was lost.
    pub unconfirmed: Unconfirmed,
    /// Vendor TLV tag carrying the notice key on every part; `None` keeps it off the wire.
    pub key_tlv: Option<u16>,
    /// Receipts buffered for the caller; when full, the centre is asked to send again later.
    pub receipt_buffer: usize,
}

impl SmppConfig {
    /// The interface's settings: window 10, 100 parts/s, `enquire_link` every 30 s, gone after 60 s of
    /// silence, 30 s response timeout, reconnect 1 s..60 s, throttle backoff 100 ms..5 s, at most once,
    /// no key on the wire.
    pub fn new(
        endpoint: impl Into<String>,
        system_id: impl Into<String>,
        password: SmscPassword,
        service_number: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            system_id: system_id.into(),
            password,
            service_number: service_number.into(),
            registered_delivery: 1,
            window: 10,
            max_rate_per_second: Some(100),
            enquire_link_interval: Duration::from_secs(30),
            dead_after: Duration::from_secs(60),
            response_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            throttle_min: Duration::from_millis(100),
            throttle_max: Duration::from_secs(5),
            unconfirmed: Unconfirmed::Report,
            key_tlv: None,
            receipt_buffer: 1024,
        }
    }
}

/// The state of the link, for health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Connecting or binding; `attempt` counts since the last successful bind.
    Connecting {
        /// Attempts so far.
        attempt: u32,
    },
    /// Bound as transceiver.
    Bound,
    /// The centre refused the bind with `status` (credentials, too many binds): retrying with backoff.
    BindRefused {
        /// `command_status` of the `bind_transceiver_resp`.
        status: u32,
    },
    /// Shut down.
    Closed,
}

/// Every part of a notice was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The centre's message ids, in part order.
    pub message_ids: Vec<String>,
}

/// What became of one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartOutcome {
    /// Accepted with this message id.
    Accepted(String),
    /// Refused for good with this `command_status` (not throttling).
    Rejected(u32),
    /// Never handed to a connection, or still queued when it died: safe to send.
    NotSent,
    /// Written, and the connection was lost before its response: may or may not have been accepted.
    Ambiguous,
}

/// The parts of a notice that did not all settle, with what is needed to send them again.
#[derive(Clone)]
pub struct Unsettled {
    pub(crate) key: String,
    pub(crate) destination: String,
    pub(crate) parts: Vec<session::PreparedPart>,
    /// Per part, in order.
    pub outcomes: Vec<PartOutcome>,
}

impl Unsettled {
    /// The caller's notice key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Parts whose fate is unknown.
    pub fn ambiguous(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| **o == PartOutcome::Ambiguous)
            .count()
    }

    /// Message ids of the accepted parts (part number 1-based, id).
    pub fn accepted(&self) -> Vec<(usize, String)> {
        self.outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                PartOutcome::Accepted(id) => Some((i + 1, id.clone())),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Debug for Unsettled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unsettled")
            .field("key", &self.key)
            .field("outcomes", &self.outcomes)
            .finish_non_exhaustive()
    }
}

/// Why a notice was not (entirely) sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The phone is neither 11 digits (`1xxxxxxxxxx`) nor `86` followed by them.
    #[error("destination is not a mainland mobile number")]
    InvalidDestination,
    /// The text cannot be sent (empty, more than 255 parts).
    #[error("text: {0}")]
    Text(#[from] TextError),
    /// The configuration cannot build a PDU (service number or key too long, key tag not vendor).
    #[error("configuration: {0}")]
    Config(String),
    /// The centre refused a part for good (e.g. `ESME_RINVDSTADR`); other parts may have been accepted.
    #[error("refused by the SMS centre: {} ({status:#010x})", status::name(*status))]
    Rejected {
        /// The refusal's `command_status`.
        status: u32,
        /// Every part's outcome.
        outcomes: Vec<PartOutcome>,
    },
    /// Some parts are not known to be accepted (connection lost, client shut down): see the module
    /// docs; [`SmppHandle::retry`] sends them again.
    #[error("{} part(s) ambiguous, {} accepted", .0.ambiguous(), .0.accepted().len())]
    Unsettled(Box<Unsettled>),
    /// The client is shut down and nothing was sent.
    #[error("the SMPP client is shut down")]
    Closed,
}

/// A delivery receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The centre's message id of the part (from `receipted_message_id`, else the text's `id`).
    pub message_id: String,
    /// The part's state.
    pub stat: Stat,
    /// The network error code, as sent.
    pub err: Option<String>,
    /// When the part was submitted, in the centre's local time.
    pub submitted_at: Option<PrimitiveDateTime>,
    /// When it reached its state, in the centre's local time.
    pub done_at: Option<PrimitiveDateTime>,
    /// The recipient (`source_addr` of the receipt, as the centre wrote it).
    pub recipient: Phone,
}

impl Receipt {
    /// `done_at` read as Beijing time (the centre's clock is assumed to be on it).
    pub fn done_at_beijing(&self) -> Option<OffsetDateTime> {
        self.done_at.map(|t| t.assume_offset(SHANGHAI))
    }
}

/// A centre time as a calendar time.
pub(crate) fn primitive(t: SmscTime) -> Option<PrimitiveDateTime> {
    let date =
        Date::from_calendar_date(i32::from(t.year), Month::try_from(t.month).ok()?, t.day).ok()?;
    let time = Time::from_hms(t.hour, t.minute, t.second.unwrap_or(0)).ok()?;
    Some(PrimitiveDateTime::new(date, time))
}

/// `86` + 11 digits from a phone of 11 digits or already prefixed.
pub(crate) fn destination_of(phone: &Phone) -> Result<String, SendError> {
    let p = phone.expose();
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match p.len() {
        11 if p.starts_with('1') && digits(p) => Ok(format!("86{p}")),
        13 if p.starts_with("861") && digits(p) => Ok(p.to_owned()),
        _ => Err(SendError::InvalidDestination),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn destinations_are_86_plus_11_digits() {
        assert_eq!(
            destination_of(&Phone::new("13912345678")).unwrap(),
            "8613912345678"
        );
        assert_eq!(
            destination_of(&Phone::new("8613912345678")).unwrap(),
            "8613912345678"
        );
        for bad in [
            "1391234567",
            "23912345678",
            "+8613912345678",
            "139-1234-5678",
            "",
        ] {
            assert!(destination_of(&Phone::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_and_numbers_stay_out_of_debug() {
        let c = SmppConfig::new(
            "127.0.0.1:2775",
            "gw",
            SmscPassword::new("pw123"),
            "10690001",
        );
        assert!(!format!("{c:?}").contains("pw123"));
        let r = Receipt {
            message_id: "1".into(),
            stat: Stat::Delivered,
            err: None,
            submitted_at: None,
            done_at: primitive(SmscTime::parse("2503051201").unwrap()),
            recipient: Phone::new("8613912345678"),
        };
        assert!(!format!("{r:?}").contains("13912345678"));
        assert_eq!(
            r.done_at_beijing().unwrap().unix_timestamp(),
            // 2025-03-05 12:01 +08:00
            1_741_147_260
        );
    }
}
