//! Bank C's test endpoint: ISO 8583-like messages behind a 2-byte length header, as its interface
//! document (`shared/specs/bank-c-iso8583.md`, v3.0) describes it.
//!
//! ```text
//! gateway                                              simulator
//!   |-- 0800 F70=001 (sign-on) -------------------------->|  echo (301) is answered before it too
//!   |<----------------------------------- 0810 F39=00 ----|
//!   |-- 0200 F3=400000 F11=000001 F37=A ----------------->|  A7 -> A0 -> 30 -> 96, then books F37
//!   |-- 0200 F3=400000 F11=000002 F37=B ----------------->|  once for ever (00, later 94)
//!   |<--------------------- 0210 F11=000002 F39=00 -------|  replies in any order, matched by F11;
//!   |<--------------------- 0210 F11=000001 F39=00 -------|  more than 32 outstanding: 96
//!   |-- 0200 F3=300000 F37=A F90=0200 000001 .. --------->|  25 unknown, 09 until final, then
//!   |<------- 0210 F39=00 F121=CT,TX | 14/62/.. CT,RS ----|  00 or the failure code
//! ```
//! Everything about the wire comes from the bank's profile (field table, messages, codes, tags, framing,
//! limits, timers) and the shared codecs, so the simulator checks the gateway against the same tables the
//! gateway uses. Per connection requests are read in order and decided at once (a payout is booked when
//! it is read), while the replies wait a seeded delay each and leave in whatever order those delays give.
//! At most `transport.max_connections` connections (more are closed at once); a connection idle for
//! `timers.idle_timeout` is closed, as is one that sends a frame over the framing's maximum or a message
//! whose fields cannot be delimited. Item results are a pure function of `(seed, F37)`, faults of
//! `(seed, request, attempt)` (see [`crate::faults`]), so a scenario replays the same way.
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bank_profiles::iso8583::{Iso8583, MessageKind, TagField};
use bank_profiles::{Framing, Profile};
use codecs::field::gbk;
use codecs::format::iso8583::{
    self as wire, Enc, FieldKind, FieldSpec, MAC_FIELD, Message, MessageSpec, SpecError, Tlv,
};
use codecs::framing::{FramingError, U16LenCodec};
use codecs::mac::{self, MacAlg, MacKey};
use futures::StreamExt;
use time::{OffsetDateTime, UtcOffset};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::faults::{Dice, Faults, Roll};
use crate::fixed_width::SimHandle;
use crate::ledger::{BankItem, Event, ItemOutcome, Ledger, RefItem, SettledItem};

/// Response codes (F39) of the interface. They are the bank's, not ours: the profile maps them.
mod rc {
    pub(super) const OK: &str = "00";
    pub(super) const PROCESSING: &str = "09";
    pub(super) const UNKNOWN_REF: &str = "25";
    pub(super) const FORMAT: &str = "30";
    pub(super) const DUPLICATE: &str = "94";
    pub(super) const BUSY: &str = "96";
    pub(super) const BAD_MAC: &str = "A0";
    pub(super) const NOT_SIGNED_ON: &str = "A7";
    /// "Other": the one failure whose `F121` has no `CT` (the account bank did not refuse it).
    pub(super) const OTHER: &str = "05";
}

/// Fields by their ISO 8583 meaning, which the family's profiles keep (see
/// `bank_profiles::iso8583::ISO8583_REQUIRED_FIELDS`).
mod f {
    pub(super) const ACCOUNT: u8 = 2;
    pub(super) const PROCESSING_CODE: u8 = 3;
    pub(super) const AMOUNT: u8 = 4;
    pub(super) const TRANSMISSION_TIME: u8 = 7;
    pub(super) const STAN: u8 = 11;
    pub(super) const LOCAL_TIME: u8 = 12;
    pub(super) const LOCAL_DATE: u8 = 13;
    pub(super) const REF: u8 = 37;
    pub(super) const RESPONSE_CODE: u8 = 39;
    pub(super) const CURRENCY: u8 = 49;
    pub(super) const NETWORK_CODE: u8 = 70;
    pub(super) const ORIGINAL_DATA: u8 = 90;
    pub(super) const ACCOUNT_BANK: u8 = 100;
}

/// Length of the frame header.
const HEADER: usize = 2;
/// Length of the MTI.
const MTI_LEN: usize = 4;

/// Beijing time (UTC+8, no daylight saving).
const BEIJING: UtcOffset = time::macros::offset!(+8);

/// The interface's test key, `0123456789ABCDEFFEDCBA9876543210`.
const TEST_KEY: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10,
];

/// How a simulated bank C behaves.
#[derive(Debug, Clone)]
pub struct Iso8583SimConfig {
    /// The bank's profile (family `iso8583`): field table, messages, codes, tags, framing, limits
    /// (`max_in_flight`), timers (`idle_timeout`).
    pub profile: Profile,
    /// Seed of every random decision (item results, reply delays, faults).
    pub seed: u64,
    /// How long an accepted item is answered `09` (processing).
    pub processing: Duration,
    /// How much later still a late item's result becomes final (which items: fault
    /// `late_result_permille`).
    pub late_result: Duration,
    /// Share of items that fail, in permille.
    pub fail_permille: u32,
    /// Failure codes to pick from, deterministically per item; empty means `05`.
    pub fail_codes: Vec<String>,
    /// MAC algorithm of F128 (checked on requests, written on replies).
    pub mac_alg: MacAlg,
    /// MAC key.
    pub mac_key: MacKey,
    /// Each reply waits a seeded delay of up to this long (on top of `faults.reply_delay`), so that
    /// pipelined replies leave out of order.
    pub reply_jitter: Duration,
    /// Faults to inject.
    pub faults: Faults,
}

impl Iso8583SimConfig {
    /// Sensible defaults for `profile`: seed 1, processing 1 s, late results 30 s late (when the fault
    /// picks them), 50 ‰ of items failing with one of `14`, `62`, `78`, `76`, `77`, `05`, the
    /// profile's MAC algorithm with the interface's test key, replies up to 20 ms apart, no faults.
    pub fn new(profile: Profile) -> Self {
        let mac_alg = profile.iso8583.as_ref().map_or(MacAlg::X919, |i| i.mac);
        Self {
            profile,
            seed: 1,
            processing: Duration::from_secs(1),
            late_result: Duration::from_secs(30),
            fail_permille: 50,
            fail_codes: ["14", "62", "78", "76", "77", "05"]
                .map(String::from)
                .to_vec(),
            mac_alg,
            mac_key: Self::test_key(),
            reply_jitter: Duration::from_millis(20),
            faults: Faults::default(),
        }
    }

    /// The interface's test key, `0123456789ABCDEFFEDCBA9876543210` (for tests and drills only).
    pub fn test_key() -> MacKey {
        MacKey::new(TEST_KEY)
    }
}

/// The bank C simulator.
#[derive(Debug)]
pub struct Iso8583Sim;

impl Iso8583Sim {
    /// Serves `listener` in a new task (call inside a Tokio runtime) until [`SimHandle::shutdown`].
    ///
    /// # Errors
    /// `InvalidInput` when the profile is not a usable ISO 8583 profile (no `iso8583` table, another
    /// framing, a tag the simulator needs is missing) or a fail code is not two letters or digits; the
    /// listener's own error when its address cannot be read.
    pub fn start(cfg: Iso8583SimConfig, listener: TcpListener) -> io::Result<SimHandle> {
        let addr = listener.local_addr()?;
        let bank = Arc::new(Bank::new(cfg)?);
        let ledger = Arc::clone(&bank.ledger);
        let token = CancellationToken::new();
        let task = tokio::spawn(accept_loop(bank, listener, token.clone()));
        info!(%addr, "bank C simulator listening");
        Ok(SimHandle {
            addr,
            ledger,
            token,
            task,
        })
    }

    /// Listens on `addr` and serves until Ctrl-C; see [`run`].
    ///
    /// # Errors
    /// As [`run`].
    pub async fn run(cfg: Iso8583SimConfig, addr: &str) -> io::Result<()> {
        run(cfg, addr).await
    }
}

/// Listens on `addr` and serves until Ctrl-C.
///
/// # Errors
/// When `addr` cannot be bound, the configuration is unusable (see [`Iso8583Sim::start`]) or Ctrl-C
/// cannot be listened for.
pub async fn run(cfg: Iso8583SimConfig, addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let sim = Iso8583Sim::start(cfg, listener)?;
    let stopped = tokio::signal::ctrl_c().await;
    info!("stopping the bank C simulator");
    sim.shutdown().await;
    stopped
}

/// Wire tags of the recipient data (F48) the bank reads.
struct RecipientTags {
    id_type: String,
    id_no: String,
    account_kind: String,
    batch_ref: String,
    seq: String,
}

/// Wire tags of the result data (F121) the bank writes.
struct ResultTags {
    confirmed_at: String,
    bank_ref: String,
    reason: String,
}

/// The bank: configuration turned into what serving needs, and its books.
struct Bank {
    iso: Iso8583,
    /// The profile's field table.
    spec: MessageSpec,
    /// The same table with every field read as bytes: delimits a message whose values are wrong, so
    /// that it can still be answered (`30`) with its STAN.
    raw_spec: MessageSpec,
    codec: U16LenCodec,
    recipient: RecipientTags,
    result: ResultTags,
    id_types: Vec<String>,
    account_kinds: Vec<String>,
    /// A field number in the primary bitmap that the table lacks (for garbling).
    absent_field: Option<u8>,
    max_connections: usize,
    max_in_flight: usize,
    idle_timeout: Option<Duration>,
    processing: Duration,
    late_result: Duration,
    fail_permille: u32,
    fail_codes: Vec<String>,
    /// Reasons by failure code.
    reasons: HashMap<String, String>,
    mac_alg: MacAlg,
    mac_key: MacKey,
    reply_jitter: Duration,
    faults: Faults,
    dice: Dice,
    ledger: Arc<Ledger>,
    /// Requests seen per key (`payout:<F37>`, ...): the attempt number fed to the dice.
    attempts: Mutex<HashMap<String, u64>>,
}

/// What to do about one request.
enum Answer {
    /// Send this reply (after its delay).
    Reply(Reply),
    /// Nothing (unknown MTI).
    Ignore,
    /// Close the connection without a reply.
    Close,
}

/// What a reply is keyed on (fault dice) and what it frees when sent.
struct Ticket {
    /// `payout:<F37>`, `inquiry:<F37>`, `sign-on`, `echo`...
    key: String,
    /// Earlier requests with the same key.
    attempt: u64,
    /// The STAN it frees on its connection when sent, when it was counted as outstanding.
    tracked: Option<String>,
}

/// A reply to send.
struct Reply {
    body: Vec<u8>,
    /// Whether it carries F128 (and so can get a wrong one).
    has_mac: bool,
    ticket: Ticket,
}

/// What the writer of a connection does next.
enum Out {
    /// Write a frame (twice for the duplicate fault), freeing its STAN.
    Frame {
        wire: Vec<u8>,
        twice: bool,
        release: Option<String>,
    },
    /// Write the start of a frame, then close.
    Cut(Vec<u8>),
    /// Close without writing.
    Close,
}

/// One connection's state as the reader sees it.
struct Session {
    signed_on: bool,
    /// STANs read and not yet answered, shared with the writer, which frees them.
    outstanding: Arc<Mutex<HashSet<String>>>,
}

impl Session {
    fn outstanding(&self) -> MutexGuard<'_, HashSet<String>> {
        self.outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request that passed every format check.
struct Checked {
    msg: Message,
    /// F48, on a payout.
    recipient: Option<Tlv>,
}

fn invalid(problem: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, problem.into())
}

/// `spec` with every field read as bytes (lengths and prefixes unchanged).
fn raw_spec(spec: &MessageSpec) -> Result<MessageSpec, SpecError> {
    MessageSpec::new(
        spec.fields()
            .iter()
            .map(|fs| FieldSpec {
                kind: match fs.kind {
                    FieldKind::Fixed { len } => FieldKind::Binary { len },
                    other => other,
                },
                encoding: Enc::Binary,
                sensitive: true,
                ..fs.clone()
            })
            .collect(),
    )
}

fn tag_of(profile: &Profile, section: &str, field: &TagField, name: &str) -> io::Result<String> {
    field
        .tags
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.tag.clone())
        .ok_or_else(|| {
            invalid(format!(
                "profile {}: iso8583.{section} has no tag `{name}`",
                profile.code
            ))
        })
}

impl Bank {
    fn new(cfg: Iso8583SimConfig) -> io::Result<Self> {
        let p = &cfg.profile;
        let iso = p
            .iso8583
            .clone()
            .ok_or_else(|| invalid(format!("profile {} is not of the iso8583 family", p.code)))?;
        let spec = iso
            .message_spec()
            .map_err(|e| invalid(format!("profile {}: {e}", p.code)))?;
        let raw_spec = raw_spec(&spec).map_err(|e| invalid(format!("profile {}: {e}", p.code)))?;
        if spec.field(MAC_FIELD).map(|fs| fs.kind) != Some(FieldKind::Binary { len: mac::MAC_LEN })
        {
            return Err(invalid(format!(
                "profile {}: no binary 8-byte field {MAC_FIELD} for the MAC",
                p.code
            )));
        }
        let codec = match p.transport.framing {
            Framing::U16Length { max_body } => U16LenCodec::new(max_body),
            _ => {
                return Err(invalid(format!(
                    "profile {}: needs the 2-byte length framing",
                    p.code
                )));
            }
        };
        if let Some(code) = cfg
            .fail_codes
            .iter()
            .find(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(invalid(format!(
                "fail code `{code}` is not a response code (two ASCII letters or digits)"
            )));
        }
        let rd = &iso.recipient_data;
        let recipient = RecipientTags {
            id_type: tag_of(p, "recipient_data", rd, "id_type")?,
            id_no: tag_of(p, "recipient_data", rd, "id_no")?,
            account_kind: tag_of(p, "recipient_data", rd, "account_kind")?,
            batch_ref: tag_of(p, "recipient_data", rd, "batch_ref")?,
            seq: tag_of(p, "recipient_data", rd, "seq")?,
        };
        let res = &iso.result_data;
        let result = ResultTags {
            confirmed_at: tag_of(p, "result_data", res, "confirmed_at")?,
            bank_ref: tag_of(p, "result_data", res, "bank_ref")?,
            reason: tag_of(p, "result_data", res, "reason")?,
        };
        let table = |name: &str| -> Vec<String> {
            iso.values
                .get(name)
                .map(|t| t.values().cloned().collect())
                .unwrap_or_default()
        };
        let mut reasons = HashMap::new();
        for code in cfg.fail_codes.iter().map(String::as_str).chain([rc::OTHER]) {
            reasons.insert(code.to_owned(), reason_for(p, code));
        }
        Ok(Self {
            id_types: table("id_type"),
            account_kinds: table("account_kind"),
            absent_field: (2..=64u8).find(|&n| spec.field(n).is_none()),
            max_connections: usize::try_from(p.transport.max_connections)
                .unwrap_or(1)
                .max(1),
            max_in_flight: usize::try_from(p.limits.max_in_flight).unwrap_or(1).max(1),
            idle_timeout: Some(p.timers.idle_timeout.0).filter(|d| !d.is_zero()),
            processing: cfg.processing,
            late_result: cfg.late_result,
            fail_permille: cfg.fail_permille,
            fail_codes: cfg.fail_codes,
            reasons,
            mac_alg: cfg.mac_alg,
            mac_key: cfg.mac_key,
            reply_jitter: cfg.reply_jitter,
            faults: cfg.faults,
            dice: Dice::new(cfg.seed),
            ledger: Arc::new(Ledger::new(first_serial())),
            attempts: Mutex::new(HashMap::new()),
            iso,
            spec,
            raw_spec,
            codec,
            recipient,
            result,
        })
    }

    /// The attempt number of a request with `key` (0 for the first).
    fn attempt(&self, key: &str) -> u64 {
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = attempts.entry(key.to_owned()).or_insert(0);
        let this = *n;
        *n += 1;
        this
    }

    /// The answer to one frame's message.
    fn answer(&self, session: &mut Session, body: &[u8]) -> Answer {
        let Some(mti) = body
            .get(..MTI_LEN)
            .filter(|m| m.iter().all(u8::is_ascii_digit))
        else {
            self.ledger.note(Event::Unparsable);
            debug!("no MTI: closing without a reply");
            return Answer::Close;
        };
        let m = &self.iso.messages;
        let network = mti == m.network.mti.as_bytes();
        if !network && mti != m.payout.mti.as_bytes() && mti != m.inquiry.mti.as_bytes() {
            self.ledger.note(Event::UnknownMti);
            debug!("unknown MTI: not answered");
            return Answer::Ignore;
        }
        let raw = match wire::decode(&self.raw_spec, body) {
            Ok(raw) => raw,
            Err(e) => {
                self.ledger.note(Event::Unparsable);
                debug!(error = %e, "message cannot be delimited: closing without a reply");
                return Answer::Close;
            }
        };
        let Some(stan) = raw_text(&raw, f::STAN)
            .filter(|s| s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
        else {
            self.ledger.note(Event::Unparsable);
            debug!("no STAN to answer to: closing without a reply");
            return Answer::Close;
        };
        if network {
            self.network(session, &raw, body, stan)
        } else {
            self.financial(session, &raw, body, stan)
        }
    }

    /// Sign-on, sign-off and echo (`0800`), answered `0810`.
    fn network(&self, session: &mut Session, raw: &Message, body: &[u8], stan: String) -> Answer {
        let f70 = raw_text(raw, f::NETWORK_CODE).unwrap_or_default();
        let codes = &self.iso.network_codes;
        let key = if f70 == codes.sign_on {
            "sign-on"
        } else if f70 == codes.sign_off {
            "sign-off"
        } else if f70 == codes.echo {
            "echo"
        } else {
            "network"
        };
        let attempt = self.attempt(key);
        let (duplicate, full) = self.slot(session, &stan);
        let checked = wire::decode(&self.spec, body)
            .map_err(|e| e.to_string())
            .and_then(|m| {
                self.iso
                    .check_fields(MessageKind::Network, m.fields.keys().copied())
                    .map_err(|e| e.to_string())
            });
        let mut track = !duplicate;
        let code = if duplicate {
            self.ledger.note(Event::DuplicateStan);
            self.ledger.note(Event::FormatError);
            rc::FORMAT
        } else if let Err(problem) = checked {
            self.ledger.note(Event::FormatError);
            debug!(%problem, "network message format error");
            rc::FORMAT
        } else if full {
            self.ledger.note(Event::Overloaded);
            track = false;
            rc::BUSY
        } else if f70 == codes.sign_on {
            session.signed_on = true;
            self.ledger.note(Event::SignOn);
            rc::OK
        } else if f70 == codes.sign_off {
            session.signed_on = false;
            self.ledger.note(Event::SignOff);
            rc::OK
        } else if f70 == codes.echo {
            self.ledger.note(Event::Echo);
            rc::OK
        } else {
            self.ledger.note(Event::FormatError);
            debug!("unknown network management code");
            rc::FORMAT
        };
        debug!(key, response_code = code, "network message answered");
        self.reply(
            session,
            MessageKind::NetworkReply,
            raw,
            code,
            None,
            Ticket {
                key: key.to_owned(),
                attempt,
                tracked: track.then_some(stan),
            },
        )
    }

    /// Payouts and inquiries (`0200`), answered `0210`: `A7`, `A0`, `30` in that order, then `96`
    /// (over the outstanding limit, or the busy fault), then the business answer.
    fn financial(&self, session: &mut Session, raw: &Message, body: &[u8], stan: String) -> Answer {
        let f3 = raw_text(raw, f::PROCESSING_CODE);
        let known = self
            .iso
            .kind_of(&raw.mti, f3)
            .filter(|k| matches!(k, MessageKind::Payout | MessageKind::Inquiry));
        let kind = known.unwrap_or(
            if raw.mti == self.iso.messages.inquiry.mti && raw.mti != self.iso.messages.payout.mti {
                MessageKind::Inquiry
            } else {
                MessageKind::Payout
            },
        );
        let (reply_kind, busy_permille) = if kind == MessageKind::Inquiry {
            self.ledger.note(Event::Query);
            (MessageKind::InquiryReply, self.faults.busy_query_permille)
        } else {
            self.ledger.note(Event::Submit);
            (MessageKind::PayoutReply, self.faults.busy_submit_permille)
        };
        let item_ref = raw_text(raw, f::REF).unwrap_or_default();
        let key = format!("{}:{item_ref}", kind.as_str());
        let attempt = self.attempt(&key);
        let (duplicate, full) = self.slot(session, &stan);
        let mut track = !duplicate;
        let mut result_data = None;
        let code: String = if !session.signed_on {
            self.ledger.note(Event::NotSignedOn);
            rc::NOT_SIGNED_ON.into()
        } else if !self.mac_ok(raw, body) {
            self.ledger.note(Event::MacRejected);
            rc::BAD_MAC.into()
        } else if duplicate {
            self.ledger.note(Event::DuplicateStan);
            self.ledger.note(Event::FormatError);
            debug!("STAN already outstanding on this connection");
            rc::FORMAT.into()
        } else {
            match self.check(known, body) {
                Err(problem) => {
                    self.ledger.note(Event::FormatError);
                    debug!(%problem, "format error");
                    rc::FORMAT.into()
                }
                Ok(_) if full => {
                    self.ledger.note(Event::Overloaded);
                    track = false;
                    rc::BUSY.into()
                }
                Ok(_)
                    if self.faults.hits(
                        &self.dice,
                        Roll::Busy,
                        key.as_bytes(),
                        attempt,
                        busy_permille,
                    ) =>
                {
                    self.ledger.note(Event::Busy);
                    rc::BUSY.into()
                }
                Ok(checked) if kind == MessageKind::Payout => self.pay(&checked),
                Ok(checked) => {
                    let (code, data) = self.inquire(&checked.msg);
                    result_data = data;
                    code
                }
            }
        };
        debug!(kind = kind.as_str(), response_code = %code, "financial message answered");
        let extra = result_data.map(|d| (self.iso.result_data.field, d));
        self.reply(
            session,
            reply_kind,
            raw,
            &code,
            extra,
            Ticket {
                key,
                attempt,
                tracked: track.then_some(stan),
            },
        )
    }

    /// Whether `stan` is outstanding on the connection already, and whether the connection is full.
    fn slot(&self, session: &Session, stan: &str) -> (bool, bool) {
        let outstanding = session.outstanding();
        (
            outstanding.contains(stan),
            outstanding.len() >= self.max_in_flight,
        )
    }

    /// Whether the request's F128 is the MAC of the request (a missing F128 is not).
    fn mac_ok(&self, raw: &Message, body: &[u8]) -> bool {
        raw.bytes(MAC_FIELD).is_some_and(|code| {
            mac::verify(self.mac_alg, &self.mac_key, wire::mac_input(body), code)
        })
    }

    /// The format checks answered `30`: the values against the field table, the fields against the
    /// message's layout, dates and times, amount, currency, F48's tags, F90's shape.
    fn check(&self, kind: Option<MessageKind>, body: &[u8]) -> Result<Checked, String> {
        let msg = wire::decode(&self.spec, body).map_err(|e| e.to_string())?;
        let Some(kind) = kind else {
            return Err("F3 is neither a payout nor an inquiry".into());
        };
        self.iso
            .check_fields(kind, msg.fields.keys().copied())
            .map_err(|e| e.to_string())?;
        let well_formed = |n: u8, ok: fn(&str) -> bool| match msg.text(n) {
            Some(v) if !ok(v) => Err(format!("F{n} is not a valid date or time")),
            _ => Ok(()),
        };
        well_formed(f::TRANSMISSION_TIME, valid_mmddhhmmss)?;
        well_formed(f::LOCAL_TIME, valid_hhmmss)?;
        well_formed(f::LOCAL_DATE, valid_mmdd)?;
        let mut recipient = None;
        if kind == MessageKind::Payout {
            if msg
                .text(f::AMOUNT)
                .is_none_or(|a| a.bytes().all(|b| b == b'0'))
            {
                return Err("F4: amount 0".into());
            }
            if msg
                .text(f::CURRENCY)
                .is_some_and(|c| c != self.iso.currency)
            {
                return Err("F49: not the interface's currency".into());
            }
            let field = self.iso.recipient_data.field;
            let text = msg
                .text(field)
                .ok_or_else(|| format!("F{field} is absent"))?;
            recipient = Some(self.check_recipient(field, text)?);
        } else if let Some(original) = msg.text(f::ORIGINAL_DATA) {
            self.check_original(original)?;
        }
        Ok(Checked { msg, recipient })
    }

    /// F48: a tag list of known tags within their sizes, every required tag present and not blank, the
    /// id type and account kind from the interface's tables, the item seq in digits.
    fn check_recipient(&self, field: u8, text: &str) -> Result<Tlv, String> {
        let tlv = Tlv::decode(text).map_err(|e| format!("F{field}: {e}"))?;
        let tags = &self.iso.recipient_data.tags;
        for (tag, value) in tlv.iter() {
            let Some(spec) = tags.iter().find(|t| t.tag == tag) else {
                return Err(format!("F{field}: unknown tag {tag}"));
            };
            let len = gbk::encoded_len(value).unwrap_or(usize::MAX);
            if let Some(max) = spec.max.filter(|&max| len > max) {
                return Err(format!("F{field}: tag {tag} is over {max} bytes"));
            }
        }
        if let Some(t) = tags
            .iter()
            .filter(|t| t.required)
            .find(|t| tlv.get(&t.tag).is_none_or(|v| v.trim().is_empty()))
        {
            return Err(format!("F{field}: required tag {} absent or blank", t.tag));
        }
        let r = &self.recipient;
        let in_table = |tag: &str, table: &[String]| {
            tlv.get(tag)
                .is_some_and(|v| table.iter().any(|known| known == v))
        };
        if !in_table(&r.id_type, &self.id_types) {
            return Err(format!(
                "F{field}: {} not in the interface's table",
                r.id_type
            ));
        }
        if !in_table(&r.account_kind, &self.account_kinds) {
            return Err(format!(
                "F{field}: {} not in the interface's table",
                r.account_kind
            ));
        }
        if !tlv
            .get(&r.seq)
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!("F{field}: {} is not digits", r.seq));
        }
        Ok(tlv)
    }

    /// F90: the original payout's MTI, STAN, F7, F32 zero-padded to 11, then 11 zeros.
    fn check_original(&self, f90: &str) -> Result<(), String> {
        let part = |from: usize, to: usize| f90.get(from..to).unwrap_or("");
        if f90.len() != 42 {
            return Err("F90 is not 42 digits".into());
        }
        if part(0, 4) != self.iso.messages.payout.mti {
            return Err("F90: the original MTI is not the payout's".into());
        }
        if !valid_mmddhhmmss(part(10, 20)) {
            return Err("F90: the original F7 is not a date and time".into());
        }
        if part(31, 42).bytes().any(|b| b != b'0') {
            return Err("F90: the last 11 digits are not zeros".into());
        }
        Ok(())
    }

    /// Books a checked payout: `00` for a new F37 (paid now, result later), `94` for a known one.
    fn pay(&self, checked: &Checked) -> String {
        let msg = &checked.msg;
        let empty = Tlv::new();
        let tlv = checked.recipient.as_ref().unwrap_or(&empty);
        let item_ref = msg.text(f::REF).unwrap_or_default();
        match self
            .ledger
            .settle_item(item_ref, |serial| self.book(msg, tlv, serial))
        {
            SettledItem::Accepted => rc::OK.into(),
            SettledItem::Duplicate => rc::DUPLICATE.into(),
        }
    }

    /// The item as the bank books it on acceptance: its outcome and when it is final decided now.
    fn book(&self, msg: &Message, tlv: &Tlv, serial: u64) -> RefItem {
        let item_ref = msg.text(f::REF).unwrap_or_default();
        let late = !self.late_result.is_zero()
            && self.dice.hits(
                Roll::Late,
                item_ref.as_bytes(),
                0,
                self.faults.late_result_permille,
            );
        let wait = if late {
            self.processing.saturating_add(self.late_result)
        } else {
            self.processing
        };
        let now = OffsetDateTime::now_utc().to_offset(BEIJING);
        let confirmed = time::Duration::try_from(wait)
            .ok()
            .and_then(|d| now.checked_add(d))
            .unwrap_or(now);
        let start = Instant::now();
        let text = |n: u8| msg.text(n).unwrap_or_default().to_owned();
        let tag = |t: &str| tlv.get(t).unwrap_or_default().to_owned();
        RefItem {
            batch_no: tag(&self.recipient.batch_ref),
            item: BankItem {
                seq: tag(&self.recipient.seq).parse().unwrap_or(0),
                account_no: text(f::ACCOUNT),
                id_no: tag(&self.recipient.id_no),
                amount: msg
                    .text(f::AMOUNT)
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(0),
                account_bank_code: text(f::ACCOUNT_BANK),
                outcome: self.outcome(item_ref),
            },
            accept_date: yyyymmdd(now),
            final_at: start
                .checked_add(wait)
                .or_else(|| start.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
                .unwrap_or(start),
            confirmed_at: format!("{}{}", yyyymmdd(confirmed), hhmmss(confirmed)),
            // 20 characters: "C", the date, an 11-digit serial.
            bank_ref: format!("C{}{:011}", yyyymmdd(now), serial % 100_000_000_000),
            late,
        }
    }

    /// An item's outcome: a pure function of `(seed, F37)`.
    fn outcome(&self, item_ref: &str) -> ItemOutcome {
        let key = item_ref.as_bytes();
        if !self.dice.hits(Roll::ItemFails, key, 0, self.fail_permille) {
            return ItemOutcome::Credited;
        }
        let code = match self.fail_codes.len() {
            0 => rc::OTHER,
            n => {
                let i = usize::try_from(self.dice.number(Roll::FailCode, key, 0) % n as u64)
                    .unwrap_or(0);
                self.fail_codes.get(i).map_or(rc::OTHER, String::as_str)
            }
        };
        ItemOutcome::Failed {
            code: code.to_owned(),
            reason: self
                .reasons
                .get(code)
                .cloned()
                .unwrap_or_else(|| "其他 other".to_owned()),
        }
    }

    /// An inquiry's answer and its F121: `25` unknown F37, `09` not final yet, else the result.
    fn inquire(&self, msg: &Message) -> (String, Option<String>) {
        let item_ref = msg.text(f::REF).unwrap_or_default();
        let Some(item) = self.ledger.ref_item(item_ref) else {
            return (rc::UNKNOWN_REF.into(), None);
        };
        if Instant::now() < item.final_at {
            return (rc::PROCESSING.into(), None);
        }
        let t = &self.result;
        let (code, data) = match &item.item.outcome {
            ItemOutcome::Credited => (
                rc::OK.to_owned(),
                Tlv::new()
                    .with(&t.confirmed_at, item.confirmed_at.as_str())
                    .with(&t.bank_ref, item.bank_ref.as_str()),
            ),
            ItemOutcome::Failed { code, reason } => {
                let mut data = Tlv::new();
                if code != rc::OTHER {
                    data.push(&t.confirmed_at, item.confirmed_at.as_str());
                }
                data.push(&t.reason, reason.as_str());
                (code.clone(), data)
            }
        };
        match data.encode() {
            Ok(text) => (code, Some(text)),
            Err(e) => {
                warn!(error = %e, "cannot write the result data: answering without it");
                (code, None)
            }
        }
    }

    /// The reply of `kind` to `raw`: the request's fields the reply layout carries, F7 the bank's time,
    /// F39 `code`, `extra` (F121), and F128 when the layout has it.
    fn reply(
        &self,
        session: &Session,
        kind: MessageKind,
        raw: &Message,
        code: &str,
        extra: Option<(u8, String)>,
        ticket: Ticket,
    ) -> Answer {
        let layout = self.iso.messages.get(kind);
        let mut msg = self.spec.message(layout.mti.clone());
        let now = OffsetDateTime::now_utc().to_offset(BEIJING);
        for &n in &layout.fields {
            match n {
                f::TRANSMISSION_TIME => {
                    msg.set(n, format!("{}{}", mmdd(now), hhmmss(now)));
                }
                f::RESPONSE_CODE => {
                    msg.set(n, code);
                }
                MAC_FIELD => {}
                n => {
                    if let Some(v) = self.echo_value(raw, n) {
                        msg.set(n, v);
                    }
                }
            }
        }
        if let Some((n, v)) = extra {
            msg.set(n, v);
        }
        let has_mac = layout.fields.contains(&MAC_FIELD);
        let body = if has_mac {
            wire::encode_with_mac(&self.spec, &msg, self.mac_alg, &self.mac_key)
        } else {
            wire::encode(&self.spec, &msg)
        };
        match body {
            Ok(body) => {
                if let Some(stan) = &ticket.tracked {
                    session.outstanding().insert(stan.clone());
                }
                Answer::Reply(Reply {
                    body,
                    has_mac,
                    ticket,
                })
            }
            Err(e) => {
                warn!(error = %e, "cannot encode a reply: closing");
                Answer::Close
            }
        }
    }

    /// The request's field `n` as the reply can carry it, when it is valid for the field.
    fn echo_value(&self, raw: &Message, n: u8) -> Option<String> {
        let bytes = raw.bytes(n)?;
        let fs = self.spec.field(n)?;
        let text = match fs.encoding {
            Enc::Binary => return None,
            Enc::Gbk => gbk::decode(bytes).ok()?,
            _ => std::str::from_utf8(bytes).ok()?.to_owned(),
        };
        let text = match (fs.kind, fs.encoding) {
            (FieldKind::Fixed { .. }, Enc::AlphaNumSpecial | Enc::Gbk) => {
                text.trim_end_matches(' ').to_owned()
            }
            _ => text,
        };
        wire::encode(&self.spec, &Message::new("0000").with(n, text.as_str())).ok()?;
        Some(text)
    }

    /// The seeded extra delay of a reply.
    fn jitter(&self, reply: &Reply) -> Duration {
        let max = u64::try_from(self.reply_jitter.as_micros()).unwrap_or(u64::MAX);
        if max == 0 {
            return Duration::ZERO;
        }
        let n = self.dice.number(
            Roll::Jitter,
            reply.ticket.key.as_bytes(),
            reply.ticket.attempt,
        );
        Duration::from_micros(n % max.saturating_add(1))
    }

    /// Waits the reply's delay, then hands it to the writer with the faults the dice pick.
    async fn deliver(self: Arc<Self>, reply: Reply, tx: mpsc::UnboundedSender<Out>) {
        if !self.faults.reply_delay.is_zero() {
            self.ledger.note(Event::Delayed);
        }
        let delay = self.faults.reply_delay.saturating_add(self.jitter(&reply));
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let out = self.outgoing(reply);
        if tx.send(out).is_err() {
            debug!("connection closed before the reply was due");
        }
    }

    /// The reply on the wire, with the faults the dice pick for it.
    fn outgoing(&self, reply: Reply) -> Out {
        let f = &self.faults;
        let key = reply.ticket.key.as_bytes();
        let n = reply.ticket.attempt;
        if self
            .faults
            .hits(&self.dice, Roll::Drop, key, n, f.drop_before_reply_permille)
        {
            self.ledger.note(Event::Dropped);
            debug!("fault: closing without the reply");
            return Out::Close;
        }
        let mut body = reply.body;
        if reply.has_mac
            && self
                .faults
                .hits(&self.dice, Roll::BadMac, key, n, f.bad_mac_reply_permille)
        {
            self.ledger.note(Event::BadMac);
            debug!("fault: wrong MAC on the reply");
            if let Some(last) = body.last_mut() {
                *last ^= 0x01;
            }
        }
        let header = match self.codec.header(body.len()) {
            Ok(h) => h,
            Err(e) => {
                warn!(error = %e, "reply too long for the framing: closing");
                return Out::Close;
            }
        };
        let mut wire = Vec::with_capacity(HEADER + body.len());
        wire.extend_from_slice(&header);
        wire.extend_from_slice(&body);
        if self
            .faults
            .hits(&self.dice, Roll::Cut, key, n, f.cut_reply_permille)
        {
            self.ledger.note(Event::Cut);
            debug!("fault: reply cut short, then the connection closed");
            let keep = wire.len().saturating_sub(1).max(1);
            let at = 1 + self.dice.number(Roll::CutHow, key, n) % keep as u64;
            wire.truncate(usize::try_from(at).unwrap_or(1));
            return Out::Cut(wire);
        }
        if self
            .faults
            .hits(&self.dice, Roll::Garble, key, n, f.garble_reply_permille)
        {
            self.ledger.note(Event::Garbled);
            debug!("fault: garbled reply");
            let how = self.dice.number(Roll::GarbleHow, key, n);
            garble(&mut wire, how, self.codec.max_len(), self.absent_field);
        }
        let twice = self.faults.hits(
            &self.dice,
            Roll::Duplicate,
            key,
            n,
            f.duplicate_reply_permille,
        );
        if twice {
            self.ledger.note(Event::Duplicated);
            debug!("fault: reply sent twice");
        }
        Out::Frame {
            wire,
            twice,
            release: reply.ticket.tracked,
        }
    }
}

/// Corrupts a frame so that any careful reader notices: never a plausible but wrong value.
fn garble(wire: &mut [u8], how: u64, max_len: usize, absent_field: Option<u8>) {
    let too_long = u16::try_from(max_len.saturating_add(1)).ok();
    match (how % 3, too_long, absent_field) {
        // A length over the framing's maximum.
        (1, Some(len), _) => {
            if let Some(h) = wire.get_mut(..HEADER) {
                h.copy_from_slice(&len.to_be_bytes());
            }
        }
        // The bit of a field the table does not have, in the primary bitmap.
        (2, _, Some(n)) => {
            let i = usize::from(n - 1);
            if let Some(b) = wire.get_mut(HEADER + MTI_LEN + i / 8) {
                *b |= 0x80 >> (i % 8);
            }
        }
        // A letter in the MTI.
        _ => {
            if let Some(b) = wire.get_mut(HEADER) {
                *b = b'X';
            }
        }
    }
}

/// Writes `wire`; split into small pieces (1..11 bytes, a millisecond apart) over its first part when
/// `split`, so a reader sees the header and the bitmaps arrive in several reads.
async fn write_wire<W: AsyncWrite + Unpin>(wr: &mut W, wire: &[u8], split: bool) -> io::Result<()> {
    if !split {
        wr.write_all(wire).await?;
        return wr.flush().await;
    }
    let mut rest = wire;
    let mut piece = 0usize;
    while !rest.is_empty() {
        let small = piece < 24;
        let size = if small { 1 + (piece * 5) % 11 } else { 4096 };
        let (now, later) = rest.split_at(size.min(rest.len()));
        wr.write_all(now).await?;
        wr.flush().await?;
        if small {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        rest = later;
        piece += 1;
    }
    Ok(())
}

async fn accept_loop(bank: Arc<Bank>, listener: TcpListener, token: CancellationToken) {
    let permits = Arc::new(Semaphore::new(bank.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, _peer)) => match Arc::clone(&permits).try_acquire_owned() {
                Ok(permit) => {
                    let bank = Arc::clone(&bank);
                    connections.spawn(async move {
                        serve_tcp(bank, stream).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    bank.ledger.note(Event::ConnectionRefused);
                    debug!(
                        max = bank.max_connections,
                        "connection over the limit: closing it"
                    );
                    drop(stream);
                }
            },
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
    drop(listener);
    // Dropping the connection tasks closes their sockets.
    connections.shutdown().await;
    debug!("bank C simulator stopped");
}

async fn serve_tcp(bank: Arc<Bank>, stream: TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!(error = %e, "cannot set TCP_NODELAY");
    }
    serve(bank, stream).await;
}

/// One connection (any byte stream, so TLS can wrap it): a reader that decides every request as it
/// arrives and a writer that sends the replies as their delays run out, until the peer closes, goes
/// idle, breaks the framing, or a fault closes it.
async fn serve<S>(bank: Arc<Bank>, stream: S)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let closing = CancellationToken::new();
    let outstanding = Arc::new(Mutex::new(HashSet::new()));
    let (tx, rx) = mpsc::unbounded_channel();
    let session = Session {
        signed_on: false,
        outstanding: Arc::clone(&outstanding),
    };
    tokio::join!(
        read_side(&bank, rd, tx, session, &closing),
        write_side(&bank, wr, rx, &outstanding, &closing),
    );
}

async fn read_side<R: AsyncRead + Unpin>(
    bank: &Arc<Bank>,
    rd: R,
    tx: mpsc::UnboundedSender<Out>,
    mut session: Session,
    closing: &CancellationToken,
) {
    let mut frames = FramedRead::new(rd, bank.codec);
    let mut replies = JoinSet::new();
    loop {
        let next = tokio::select! {
            _ = closing.cancelled() => return,
            next = next_frame(&mut frames, bank.idle_timeout) => next,
        };
        while replies.try_join_next().is_some() {}
        let body = match next {
            Some(Ok(body)) => body,
            None => break,
            Some(Err(e)) => {
                match e {
                    NextError::Idle => {
                        bank.ledger.note(Event::IdleClosed);
                        debug!("idle connection: closing");
                    }
                    NextError::Framing(FramingError::TooLong { len, max }) => {
                        bank.ledger.note(Event::Oversized);
                        debug!(len, max, "frame over the maximum: closing");
                    }
                    NextError::Framing(FramingError::Io(e)) => {
                        debug!(error = %e, "connection error");
                    }
                    NextError::Framing(e) => {
                        bank.ledger.note(Event::Unparsable);
                        debug!(error = %e, "framing error: closing");
                    }
                }
                closing.cancel();
                return;
            }
        };
        match bank.answer(&mut session, &body) {
            Answer::Reply(reply) => {
                let bank = Arc::clone(bank);
                replies.spawn(bank.deliver(reply, tx.clone()));
            }
            Answer::Ignore => {}
            Answer::Close => {
                closing.cancel();
                return;
            }
        }
    }
    // The peer has finished sending: answer what it asked, then let the writer finish.
    tokio::select! {
        _ = closing.cancelled() => {}
        _ = async { while replies.join_next().await.is_some() {} } => {}
    }
}

enum NextError {
    Idle,
    Framing(FramingError),
}

async fn next_frame<R: AsyncRead + Unpin>(
    frames: &mut FramedRead<R, U16LenCodec>,
    idle: Option<Duration>,
) -> Option<Result<bytes::BytesMut, NextError>> {
    let next = match idle {
        Some(idle) => match tokio::time::timeout(idle, frames.next()).await {
            Ok(next) => next,
            Err(_) => return Some(Err(NextError::Idle)),
        },
        None => frames.next().await,
    };
    next.map(|r| r.map_err(NextError::Framing))
}

async fn write_side<W: AsyncWrite + Unpin>(
    bank: &Bank,
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<Out>,
    outstanding: &Mutex<HashSet<String>>,
    closing: &CancellationToken,
) {
    let split = bank.faults.split_writes;
    loop {
        let out = tokio::select! {
            _ = closing.cancelled() => break,
            out = rx.recv() => match out {
                Some(out) => out,
                None => break,
            },
        };
        let keep_open = match out {
            Out::Frame {
                wire,
                twice,
                release,
            } => {
                // Freed before writing: the peer may reuse the STAN as soon as it reads the reply.
                if let Some(stan) = release {
                    outstanding
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&stan);
                }
                let mut written = write_wire(&mut wr, &wire, split).await;
                if written.is_ok() && twice {
                    written = write_wire(&mut wr, &wire, split).await;
                }
                if let Err(e) = &written {
                    debug!(error = %e, "cannot write a reply: closing");
                }
                written.is_ok()
            }
            Out::Cut(part) => {
                if let Err(e) = write_wire(&mut wr, &part, false).await {
                    debug!(error = %e, "cannot write the cut reply");
                }
                false
            }
            Out::Close => false,
        };
        if !keep_open {
            closing.cancel();
            break;
        }
    }
    if let Err(e) = wr.shutdown().await {
        debug!(error = %e, "shutdown of the connection failed");
    }
}

/// Field `n` of a message read with the raw table, as ASCII text.
fn raw_text(raw: &Message, n: u8) -> Option<&str> {
    raw.bytes(n)
        .filter(|b| b.is_ascii())
        .and_then(|b| std::str::from_utf8(b).ok())
}

/// A failure code's reason: Chinese and English, as bank C's test endpoint writes them.
fn reason_for(profile: &Profile, code: &str) -> String {
    let known = match code {
        "14" => "账户不存在 account does not exist",
        "62" => "账户已销户 account closed",
        "78" => "账户已冻结 account frozen",
        "76" => "户名不符 name does not match the account",
        "77" => "非社保卡账户 not a social security card account",
        rc::OTHER => "其他 other",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_owned();
    }
    // A code the spec does not list (drills of unknown codes): the profile's text if it can be sent.
    profile
        .codes
        .item
        .get(code)
        .map(|c| c.reason.clone())
        .filter(|r| gbk::encode(r).is_ok())
        .unwrap_or_else(|| "其他 other".to_owned())
}

/// Two ASCII digits at `at`, as a number.
fn two_digits(s: &str, at: usize) -> Option<u8> {
    let d = s.as_bytes().get(at..at + 2)?;
    d.iter()
        .all(u8::is_ascii_digit)
        .then(|| (d[0] - b'0') * 10 + (d[1] - b'0'))
}

/// `MMDD`.
fn valid_mmdd(s: &str) -> bool {
    s.len() == 4
        && two_digits(s, 0).is_some_and(|m| (1..=12).contains(&m))
        && two_digits(s, 2).is_some_and(|d| (1..=31).contains(&d))
}

/// `MMDDhhmmss`.
fn valid_mmddhhmmss(s: &str) -> bool {
    s.len() == 10 && valid_mmdd(s.get(..4).unwrap_or("")) && valid_hhmmss(s.get(4..).unwrap_or(""))
}

/// `hhmmss`.
fn valid_hhmmss(s: &str) -> bool {
    s.len() == 6
        && two_digits(s, 0).is_some_and(|h| h < 24)
        && two_digits(s, 2).is_some_and(|m| m < 60)
        && two_digits(s, 4).is_some_and(|x| x < 60)
}

fn yyyymmdd(t: OffsetDateTime) -> String {
    format!("{:04}{}", t.year(), mmdd(t))
}

fn mmdd(t: OffsetDateTime) -> String {
    format!("{:02}{:02}", u8::from(t.month()), t.day())
}

fn hhmmss(t: OffsetDateTime) -> String {
    format!("{:02}{:02}{:02}", t.hour(), t.minute(), t.second())
}

/// First serial of the bank's transaction references: the start time in milliseconds, so two runs of
/// the simulator on one day do not hand out the same references.
fn first_serial() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0)
        % 100_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        bank_profiles::builtin()
            .expect("builtin")
            .remove("403241000011")
            .expect("bank C")
    }

    fn bank(cfg: Iso8583SimConfig) -> Bank {
        Bank::new(cfg).expect("bank")
    }

    #[test]
    fn outcomes_are_a_function_of_seed_and_reference() {
        let mut cfg = Iso8583SimConfig::new(profile());
        cfg.fail_permille = 300;
        let a = bank(cfg.clone());
        let b = bank(cfg.clone());
        cfg.seed = 2;
        let c = bank(cfg);
        let run = |bank: &Bank| {
            (1..=200)
                .map(|i| bank.outcome(&format!("PO{i:010}")))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(&a), run(&b));
        assert_ne!(run(&a), run(&c));
        let failed: Vec<_> = run(&a)
            .into_iter()
            .filter(|o| *o != ItemOutcome::Credited)
            .collect();
        assert!((30..90).contains(&failed.len()), "{}", failed.len());
        for fail in failed {
            let ItemOutcome::Failed { code, reason } = fail else {
                unreachable!()
            };
            assert!(["14", "62", "78", "76", "77", "05"].contains(&code.as_str()));
            assert!(gbk::encode(&reason).is_ok());
        }
    }

    #[test]
    fn refuses_unusable_config() {
        let mut cfg = Iso8583SimConfig::new(profile());
        cfg.fail_codes = vec!["140".into()];
        assert_eq!(
            Bank::new(cfg).err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidInput)
        );
        let bank_a = bank_profiles::builtin()
            .expect("builtin")
            .remove("402241000015")
            .expect("bank A");
        assert!(Bank::new(Iso8583SimConfig::new(bank_a)).is_err());
    }

    #[test]
    fn defaults_follow_the_profile_and_the_spec() {
        let cfg = Iso8583SimConfig::new(profile());
        assert_eq!(cfg.mac_alg, MacAlg::X919);
        assert_eq!(
            cfg.mac_key,
            MacKey::from_hex("0123456789ABCDEFFEDCBA9876543210").expect("key")
        );
        assert!(!format!("{cfg:?}").contains("0123456789"));
        let b = bank(cfg);
        assert_eq!((b.max_connections, b.max_in_flight), (4, 32));
        assert_eq!(b.idle_timeout, Some(Duration::from_secs(120)));
        assert_eq!(b.codec.max_len(), 4096);
        assert_eq!(b.absent_field, Some(5));
    }

    #[test]
    fn garbling_always_breaks_the_frame() {
        let b = bank(Iso8583SimConfig::new(profile()));
        let msg = b
            .spec
            .message("0810")
            .with(7, "0315093000")
            .with(11, "000001")
            .with(32, "12345678")
            .with(39, "00")
            .with(70, "001");
        let body = wire::encode(&b.spec, &msg).expect("encode");
        for how in 0..3 {
            let mut frame = b.codec.header(body.len()).expect("header").to_vec();
            frame.extend_from_slice(&body);
            garble(&mut frame, how, b.codec.max_len(), b.absent_field);
            let broken = b.codec.parse_header([frame[0], frame[1]]).is_err()
                || wire::decode(&b.spec, &frame[HEADER..]).is_err();
            assert!(broken, "variant {how}");
        }
    }

    #[test]
    fn raw_table_delimits_what_the_strict_one_refuses() {
        let b = bank(Iso8583SimConfig::new(profile()));
        // F11 with a letter: the strict table refuses it, the raw one reads the bytes.
        let mut body = wire::encode(
            &b.spec,
            &b.spec.message("0800").with(11, "000001").with(70, "301"),
        )
        .expect("encode");
        let at = body.len() - 3 - 6;
        body[at] = b'A';
        assert!(wire::decode(&b.spec, &body).is_err());
        let raw = wire::decode(&b.raw_spec, &body).expect("raw");
        assert_eq!(raw_text(&raw, 11), Some("A00001"));
        assert_eq!(b.echo_value(&raw, 11), None);
        assert_eq!(b.echo_value(&raw, 70).as_deref(), Some("301"));
    }

    #[test]
    fn dates_and_times() {
        assert!(valid_mmdd("0315") && valid_mmdd("1231"));
        assert!(!valid_mmdd("1315") && !valid_mmdd("0300") && !valid_mmdd("03a5"));
        assert!(valid_hhmmss("235959") && !valid_hhmmss("240000") && !valid_hhmmss("12345"));
        let t = time::macros::datetime!(2024-12-31 16:30:05 UTC).to_offset(BEIJING);
        assert_eq!(
            (yyyymmdd(t), mmdd(t), hhmmss(t)),
            (
                "20250101".to_owned(),
                "0101".to_owned(),
                "003005".to_owned()
            )
        );
    }
}
