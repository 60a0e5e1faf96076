//! Bank A's test endpoint: fixed-width GBK records behind an 8-digit ASCII length header, as its
//! interface document (`shared/specs/bank-a-fixed-width.md`, v2.1) describes it.
//!
//! ```text
//! gateway                                   simulator
//!   |-- 00000606 H1001.. D.. T.. ------------->|  checks 1001 -> 1003 -> 1002 -> 1004, pays at 0000
//!   |<------------------------- 00000202 R1002 -|
//!   |-- 00000202 Q2001 ----------------------->|  P until processing + late_result has passed,
//!   |<----------------- 00000202 H2002 [D.. T] -|  then F with one result per item
//!   |-- 00000202 E9001 ----------------------->|
//!   |<------------------------- 00000202 E9002 -|
//! ```
//! Everything about the wire comes from the bank's profile and the shared codecs: the simulator checks
//! the gateway against the same layouts the gateway uses, not against a copy. Per connection one request
//! and one reply at a time; at most `transport.max_connections` connections (more are closed at once);
//! connections idle for `timers.idle_timeout` are closed; a body that cannot be read is answered by
//! closing the connection. Item results are a pure function of `(seed, batch_no, seq)`, faults of
//! `(seed, request, attempt)` (see [`crate::faults`]), so a scenario replays the same way.
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bank_profiles::{Framing, Profile};
use codecs::field::gbk;
use codecs::format::fixed_width::DecodeError;
use codecs::format::fixed_width::messages::{
    Layouts, MessageError, Query, QueryReply, QueryReplyHeader, Request, ResultDetail, Submit,
    SubmitReply, Trailer,
};
use codecs::framing::AsciiLenCodec;
use futures::StreamExt;
use time::{OffsetDateTime, UtcOffset};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::faults::{Dice, Faults, Roll};
use crate::ledger::{BankBatch, BankItem, Event, ItemOutcome, Ledger, Settled};

/// Return codes of the interface (spec v2.1). They are the bank's, not ours: the profile maps them.
mod ret {
    pub(super) const OK: &str = "0000";
    pub(super) const FORMAT: &str = "1001";
    pub(super) const TOTALS: &str = "1002";
    pub(super) const DUPLICATE: &str = "1003";
    pub(super) const PAYER: &str = "1004";
    pub(super) const UNKNOWN_BATCH: &str = "2001";
    pub(super) const BUSY: &str = "9999";
}

/// Item `result` codes of the interface.
const RESULT_CREDITED: &str = "S";
const RESULT_FAILED: &str = "F";

/// Beijing time (UTC+8, no daylight saving).
const BEIJING: UtcOffset = time::macros::offset!(+8);

/// How a simulated bank behaves.
#[derive(Debug, Clone)]
pub struct FixedWidthSimConfig {
    /// The bank's profile (family `fixed-width`): layouts, framing, limits, timers.
    pub profile: Profile,
    /// Seed of every random decision (item results, faults).
    pub seed: u64,
    /// How long an accepted batch stays `P` (processing).
    pub processing: Duration,
    /// Share of items that fail, in permille.
    pub fail_permille: u32,
    /// Failure codes to pick from, deterministically per item; empty means `A009`.
    pub fail_codes: Vec<String>,
    /// Faults to inject.
    pub faults: Faults,
    /// Extra delay before results become final, on top of `processing` (SLA drills).
    pub late_result: Duration,
}

impl FixedWidthSimConfig {
    /// Sensible defaults for `profile`: seed 1, processing 1 s, 50 ‰ of items failing with one of
    /// `A001`..`A005`, `A009`, no faults, no late result.
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            seed: 1,
            processing: Duration::from_secs(1),
            fail_permille: 50,
            fail_codes: ["A001", "A002", "A003", "A004", "A005", "A009"]
                .map(String::from)
                .to_vec(),
            faults: Faults::default(),
            late_result: Duration::ZERO,
        }
    }
}

/// The bank A simulator.
#[derive(Debug)]
pub struct FixedWidthSim;

impl FixedWidthSim {
    /// Serves `listener` in a new task (call inside a Tokio runtime) until [`SimHandle::shutdown`].
    ///
    /// # Errors
    /// `InvalidInput` when the profile is not a usable fixed-width profile (no layouts, an HTTP framing,
    /// a missing value table) or a fail code does not fit the `fail_code` field; the listener's own
    /// error when its address cannot be read.
    pub fn start(cfg: FixedWidthSimConfig, listener: TcpListener) -> io::Result<SimHandle> {
        let addr = listener.local_addr()?;
        let bank = Arc::new(Bank::new(cfg)?);
        let ledger = Arc::clone(&bank.ledger);
        let token = CancellationToken::new();
        let task = tokio::spawn(accept_loop(bank, listener, token.clone()));
        info!(%addr, "bank simulator listening");
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
    pub async fn run(cfg: FixedWidthSimConfig, addr: &str) -> io::Result<()> {
        run(cfg, addr).await
    }
}

/// Listens on `addr` and serves until Ctrl-C (what `gateway simulate bank` runs).
///
/// # Errors
/// When `addr` cannot be bound, the configuration is unusable (see [`FixedWidthSim::start`]) or
/// Ctrl-C cannot be listened for.
pub async fn run(cfg: FixedWidthSimConfig, addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let sim = FixedWidthSim::start(cfg, listener)?;
    let stopped = tokio::signal::ctrl_c().await;
    info!("stopping the bank simulator");
    sim.shutdown().await;
    stopped
}

/// A running simulator.
#[derive(Debug)]
pub struct SimHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its books.
    pub ledger: Arc<Ledger>,
    // Crate-visible so that every simulator hands out this one handle type.
    pub(crate) token: CancellationToken,
    pub(crate) task: JoinHandle<()>,
}

impl SimHandle {
    /// Stops accepting, closes every connection and waits until the server is gone.
    pub async fn shutdown(self) {
        self.token.cancel();
        if let Err(e) = self.task.await {
            warn!(error = %e, "bank simulator task ended abnormally");
        }
    }
}

/// The bank: configuration turned into what serving needs, and its books.
struct Bank {
    layouts: Layouts,
    codec: AsciiLenCodec,
    state_processing: String,
    state_final: String,
    echo_request: String,
    echo_reply: String,
    id_types: Vec<String>,
    account_kinds: Vec<String>,
    items_per_part: usize,
    max_connections: usize,
    idle_timeout: Option<Duration>,
    processing: Duration,
    fail_permille: u32,
    fail_codes: Vec<String>,
    /// Reasons by failure code.
    reasons: HashMap<String, String>,
    faults: Faults,
    dice: Dice,
    ledger: Arc<Ledger>,
    /// Requests seen per key (`submit:<batch_no>`, ...): the attempt number fed to the dice.
    attempts: Mutex<HashMap<String, u64>>,
}

/// A reply to send, and what the fault dice are keyed on.
struct Reply {
    body: Vec<u8>,
    key: String,
    attempt: u64,
}

fn invalid(problem: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, problem.into())
}

impl Bank {
    fn new(cfg: FixedWidthSimConfig) -> io::Result<Self> {
        let p = &cfg.profile;
        let fw = p.fixed_width.as_ref().ok_or_else(|| {
            invalid(format!(
                "profile {} is not of the fixed-width family",
                p.code
            ))
        })?;
        let layouts = fw
            .messages()
            .map_err(|e| invalid(format!("profile {}: {e}", p.code)))?;
        let codec = match p.transport.framing {
            Framing::AsciiLength { digits, max_body } => AsciiLenCodec::new(digits, max_body),
            _ => {
                return Err(invalid(format!(
                    "profile {}: needs the ASCII length framing",
                    p.code
                )));
            }
        };
        let value = |table: &str, key: &str| {
            fw.value(table, key).map(str::to_owned).ok_or_else(|| {
                invalid(format!(
                    "profile {}: no fixed_width.values.{table}.{key}",
                    p.code
                ))
            })
        };
        let table = |name: &str| -> Vec<String> {
            fw.values
                .get(name)
                .map(|t| t.values().cloned().collect())
                .unwrap_or_default()
        };
        let code_width = layouts
            .result_detail
            .field("fail_code")
            .map_or(0, |f| f.width);
        if let Some(code) = cfg
            .fail_codes
            .iter()
            .find(|c| !c.is_ascii() || c.is_empty() || c.len() > code_width)
        {
            return Err(invalid(format!(
                "fail code `{code}` does not fit the {code_width}-byte fail_code field"
            )));
        }
        let mut reasons = HashMap::new();
        for code in &cfg.fail_codes {
            reasons.insert(code.clone(), reason_for(p, code));
        }
        reasons.insert("A009".to_owned(), reason_for(p, "A009"));
        Ok(Self {
            state_processing: value("state", "processing")?,
            state_final: value("state", "final")?,
            echo_request: fw.echo_request.clone(),
            echo_reply: fw.echo_reply.clone(),
            id_types: table("id_type"),
            account_kinds: table("account_kind"),
            items_per_part: usize::try_from(p.limits.items_per_part).unwrap_or(usize::MAX),
            max_connections: usize::try_from(p.transport.max_connections)
                .unwrap_or(1)
                .max(1),
            idle_timeout: Some(p.timers.idle_timeout.0).filter(|d| !d.is_zero()),
            layouts,
            codec,
            processing: cfg.processing.saturating_add(cfg.late_result),
            fail_permille: cfg.fail_permille,
            fail_codes: cfg.fail_codes,
            reasons,
            faults: cfg.faults,
            dice: Dice::new(cfg.seed),
            ledger: Arc::new(Ledger::new(first_serial())),
            attempts: Mutex::new(HashMap::new()),
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

    /// The reply to a request body, or `None` to close the connection without one.
    fn answer(&self, body: &[u8]) -> Option<Reply> {
        let record_len = self.layouts.submit_header.record_len();
        if body
            .get(..record_len)
            .is_some_and(|first| self.layouts.submit_header.matches(first))
        {
            return self.submit(body);
        }
        match self.layouts.decode_request(body) {
            Ok(Request::Query(q)) => self.query(q),
            Ok(Request::Echo(code)) => self.echo(&code),
            // The submit header tag was checked above; another decoder's opinion is not ours to trust.
            Ok(Request::Submit(_)) => None,
            Err(e) => {
                self.ledger.note(Event::Unparsable);
                debug!(error = %e, "unreadable request: closing without a reply");
                None
            }
        }
    }

    fn echo(&self, code: &str) -> Option<Reply> {
        if code != self.echo_request {
            self.ledger.note(Event::Unparsable);
            debug!("echo with an unknown transaction code: closing without a reply");
            return None;
        }
        self.ledger.note(Event::Echo);
        let key = "echo".to_owned();
        let attempt = self.attempt(&key);
        match self.layouts.encode_echo(&self.echo_reply) {
            Ok(body) => Some(Reply { body, key, attempt }),
            Err(e) => {
                warn!(error = %e, "cannot encode an echo reply");
                None
            }
        }
    }

    fn submit(&self, body: &[u8]) -> Option<Reply> {
        self.ledger.note(Event::Submit);
        // A well-framed submit whose fields are wrong is answered 1001; anything else that cannot be
        // read (records, terminators, record types, order) closes the connection.
        let decoded = match self.layouts.decode_request(body) {
            Ok(Request::Submit(s)) => Ok(s),
            Ok(_) => return None,
            Err(MessageError::Record {
                record,
                source:
                    DecodeError::Field {
                        field,
                        offset,
                        problem,
                    },
            }) => Err(format!(
                "record {record}: field `{field}` at byte {offset}: {problem}"
            )),
            Err(e) => {
                self.ledger.note(Event::Unparsable);
                debug!(error = %e, "unreadable submit: closing without a reply");
                return None;
            }
        };
        let batch_no = match &decoded {
            Ok(s) => s.header.batch_no.clone(),
            Err(_) => self.raw_batch_no(body),
        };
        let key = format!("submit:{batch_no}");
        let attempt = self.attempt(&key);
        let reply = |code: &str, msg: &str, bank_batch_id: &str, accept_date: &str| {
            debug!(%batch_no, ret_code = code, "submit answered");
            let r = SubmitReply {
                batch_no: batch_no.clone(),
                ret_code: code.to_owned(),
                ret_msg: msg.to_owned(),
                bank_batch_id: bank_batch_id.to_owned(),
                accept_date: accept_date.to_owned(),
            };
            let body = self.layouts.encode_submit_reply(&r).or_else(|e| {
                // A batch_no that decodes but has no strict GBK form again (e.g. a euro sign): answer
                // without echoing it rather than not at all.
                debug!(error = %e, "cannot echo the batch_no; answering with it blank");
                self.layouts.encode_submit_reply(&SubmitReply {
                    batch_no: String::new(),
                    ..r
                })
            });
            match body {
                Ok(body) => Some(Reply {
                    body,
                    key: key.clone(),
                    attempt,
                }),
                Err(e) => {
                    warn!(error = %e, "cannot encode a submit reply");
                    None
                }
            }
        };
        if self.faults.hits(
            &self.dice,
            Roll::Busy,
            key.as_bytes(),
            attempt,
            self.faults.busy_submit_permille,
        ) {
            self.ledger.note(Event::Busy);
            return reply(ret::BUSY, "系统忙，请稍后重试 busy", "", "");
        }
        let submit = match decoded {
            Ok(s) => s,
            Err(problem) => {
                debug!(%batch_no, %problem, "submit field error");
                return reply(ret::FORMAT, "格式错误 format error", "", "");
            }
        };
        if let Err(problem) = self.check_format(&submit) {
            debug!(%batch_no, problem, "submit format error");
            return reply(ret::FORMAT, "格式错误 format error", "", "");
        }
        let refusal = if !totals_agree(&submit) {
            Some((ret::TOTALS, "笔数或金额不符 totals mismatch"))
        } else if submit.header.payer_account.trim().is_empty() {
            Some((ret::PAYER, "付款账户错误 payer account error"))
        } else {
            None
        };
        match self
            .ledger
            .settle_submit(&batch_no, refusal.is_some(), |serial| {
                self.book(&submit, serial)
            }) {
            Settled::Accepted {
                bank_batch_id,
                accept_date,
            } => reply(ret::OK, "受理成功 accepted", &bank_batch_id, &accept_date),
            Settled::Duplicate {
                bank_batch_id,
                accept_date,
            } => reply(
                ret::DUPLICATE,
                "批次号重复 duplicate batch_no",
                &bank_batch_id,
                &accept_date,
            ),
            Settled::Refused => {
                let (code, msg) = refusal.unwrap_or((ret::FORMAT, "格式错误 format error"));
                reply(code, msg, "", "")
            }
        }
    }

    /// The `batch_no` of a submit whose header may not decode, or blank.
    fn raw_batch_no(&self, body: &[u8]) -> String {
        let Some(f) = self.layouts.submit_header.field("batch_no") else {
            return String::new();
        };
        let Some(bytes) = body.get(f.at..f.at.saturating_add(f.width)) else {
            return String::new();
        };
        let end = bytes.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
        gbk::decode(&bytes[..end]).unwrap_or_default()
    }

    /// Format checks beyond what the layouts check (answered `1001`). The count in the header is not
    /// one of them: a header that disagrees with the details is a totals mismatch (`1002`).
    fn check_format(&self, s: &Submit) -> Result<(), &'static str> {
        if s.header.batch_no.trim().is_empty() {
            return Err("batch_no is blank");
        }
        if s.details.is_empty() {
            return Err("no details");
        }
        if s.details.len() > self.items_per_part {
            return Err("more details than a batch may hold");
        }
        let mut last_seq = None;
        for d in &s.details {
            if last_seq.is_some_and(|last| d.seq <= last) {
                return Err("seq not strictly rising");
            }
            last_seq = Some(d.seq);
            if d.amount == 0 {
                return Err("amount 0");
            }
            if d.account_no.trim().is_empty() {
                return Err("account_no is blank");
            }
            if !self.id_types.contains(&d.id_type) {
                return Err("id_type not in the interface's table");
            }
            if !self.account_kinds.contains(&d.account_kind) {
                return Err("account_kind not in the interface's table");
            }
        }
        Ok(())
    }

    /// The batch as the bank books it on acceptance: every item's outcome decided now.
    fn book(&self, s: &Submit, serial: u64) -> BankBatch {
        let now = OffsetDateTime::now_utc().to_offset(BEIJING);
        let accept_date = yyyymmdd(now);
        let confirmed = time::Duration::try_from(self.processing)
            .ok()
            .and_then(|d| now.checked_add(d))
            .unwrap_or(now);
        let items = s
            .details
            .iter()
            .map(|d| BankItem {
                seq: d.seq,
                account_no: d.account_no.clone(),
                id_no: d.id_no.clone(),
                amount: d.amount,
                account_bank_code: d.account_bank_code.clone(),
                outcome: self.outcome(&s.header.batch_no, d.seq),
            })
            .collect();
        let start = Instant::now();
        BankBatch {
            // 20 characters: "A", the date, an 11-digit serial.
            bank_batch_id: format!("A{accept_date}{:011}", serial % 100_000_000_000),
            accept_date,
            final_at: start
                .checked_add(self.processing)
                .unwrap_or_else(|| far_future(start)),
            confirm_date: yyyymmdd(confirmed),
            confirm_time: hhmmss(confirmed),
            items,
        }
    }

    /// An item's outcome: a pure function of `(seed, batch_no, seq)`.
    fn outcome(&self, batch_no: &str, seq: u64) -> ItemOutcome {
        let key = batch_no.as_bytes();
        if !self
            .dice
            .hits(Roll::ItemFails, key, seq, self.fail_permille)
        {
            return ItemOutcome::Credited;
        }
        let code = match self.fail_codes.len() {
            0 => "A009",
            n => {
                let i = usize::try_from(self.dice.number(Roll::FailCode, key, seq) % n as u64)
                    .unwrap_or(0);
                self.fail_codes.get(i).map_or("A009", String::as_str)
            }
        };
        let reason = self
            .reasons
            .get(code)
            .cloned()
            .unwrap_or_else(|| "其他 other".to_owned());
        ItemOutcome::Failed {
            code: code.to_owned(),
            reason,
        }
    }

    fn query(&self, q: Query) -> Option<Reply> {
        self.ledger.note(Event::Query);
        let key = format!("query:{}", q.batch_no);
        let attempt = self.attempt(&key);
        let now = OffsetDateTime::now_utc().to_offset(BEIJING);
        let mut header = QueryReplyHeader {
            batch_no: q.batch_no.clone(),
            query_id: q.query_id,
            reply_date: yyyymmdd(now),
            reply_time: hhmmss(now),
            ..QueryReplyHeader::default()
        };
        let mut reply = QueryReply::default();
        if self.faults.hits(
            &self.dice,
            Roll::Busy,
            key.as_bytes(),
            attempt,
            self.faults.busy_query_permille,
        ) {
            self.ledger.note(Event::Busy);
            header.ret_code = ret::BUSY.to_owned();
        } else {
            match self.ledger.bank_batch(&q.batch_no) {
                None => header.ret_code = ret::UNKNOWN_BATCH.to_owned(),
                Some(b) if Instant::now() < b.final_at => {
                    header.ret_code = ret::OK.to_owned();
                    header.state = self.state_processing.clone();
                }
                Some(b) => {
                    header.ret_code = ret::OK.to_owned();
                    header.state = self.state_final.clone();
                    let mut total = 0u64;
                    for item in &b.items {
                        total = total.saturating_add(item.amount);
                        let (result, fail_code, fail_reason) = match &item.outcome {
                            ItemOutcome::Credited => {
                                header.success_count += 1;
                                header.success_amount =
                                    header.success_amount.saturating_add(item.amount);
                                (RESULT_CREDITED, String::new(), String::new())
                            }
                            ItemOutcome::Failed { code, reason } => {
                                header.fail_count += 1;
                                header.fail_amount = header.fail_amount.saturating_add(item.amount);
                                (RESULT_FAILED, code.clone(), reason.clone())
                            }
                        };
                        reply.details.push(ResultDetail {
                            seq: item.seq,
                            account_no: item.account_no.clone(),
                            amount: item.amount,
                            result: result.to_owned(),
                            fail_code,
                            fail_reason,
                            account_bank_code: item.account_bank_code.clone(),
                            confirm_date: b.confirm_date.clone(),
                            confirm_time: b.confirm_time.clone(),
                            // Unique: the batch id is unique and `seq` is unique within the batch.
                            bank_txn_no: format!("{}{:08}", b.bank_batch_id, item.seq),
                        });
                    }
                    reply.trailer = Some(Trailer {
                        item_count: reply.details.len() as u64,
                        total_amount: total,
                    });
                }
            }
        }
        debug!(batch_no = %q.batch_no, ret_code = %header.ret_code, state = %header.state, "query answered");
        reply.header = header;
        match self.layouts.encode_query_reply(&reply) {
            Ok(body) => Some(Reply { body, key, attempt }),
            Err(e) => {
                warn!(error = %e, "cannot encode a query reply");
                None
            }
        }
    }

    /// Sends `reply` on `wr` with the configured faults. `Err` or `Ok(false)` ends the connection.
    async fn send(&self, wr: &mut OwnedWriteHalf, reply: Reply) -> io::Result<bool> {
        let f = &self.faults;
        let key = reply.key.as_bytes();
        if !f.reply_delay.is_zero() {
            tokio::time::sleep(f.reply_delay).await;
        }
        if self.faults.hits(
            &self.dice,
            Roll::Drop,
            key,
            reply.attempt,
            f.drop_before_reply_permille,
        ) {
            self.ledger.note(Event::Dropped);
            debug!("fault: closing without the reply");
            return Ok(false);
        }
        let mut wire = self
            .codec
            .header(reply.body.len())
            .map_err(io::Error::other)?;
        wire.extend_from_slice(&reply.body);
        if self.faults.hits(
            &self.dice,
            Roll::Garble,
            key,
            reply.attempt,
            f.garble_reply_permille,
        ) {
            self.ledger.note(Event::Garbled);
            let how = self.dice.number(Roll::GarbleHow, key, reply.attempt);
            garble(
                &mut wire,
                self.codec.digits(),
                self.layouts.submit_header.record_len(),
                how,
            );
            debug!("fault: garbled reply");
        }
        write_wire(wr, &wire, f.split_writes).await?;
        if self.faults.hits(
            &self.dice,
            Roll::Duplicate,
            key,
            reply.attempt,
            f.duplicate_reply_permille,
        ) {
            self.ledger.note(Event::Duplicated);
            debug!("fault: reply sent twice");
            write_wire(wr, &wire, f.split_writes).await?;
        }
        Ok(true)
    }
}

/// Header and trailer agree with each other and with the details.
fn totals_agree(s: &Submit) -> bool {
    // 50,000 amounts of 15 digits overflow u64: add in u128.
    let sum: u128 = s.details.iter().map(|d| u128::from(d.amount)).sum();
    let count = s.details.len() as u64;
    s.header.item_count == count
        && s.trailer.item_count == count
        && u128::from(s.header.total_amount) == sum
        && u128::from(s.trailer.total_amount) == sum
}

/// Corrupts a reply so that any careful reader notices: never a plausible but wrong value.
fn garble(wire: &mut [u8], digits: usize, record_len: usize, how: u64) {
    let (at, byte) = match how % 3 {
        // A non-digit in the length header.
        0 => (0, b'X'),
        // The first record's CR becomes '?'.
        1 => (digits + record_len, b'?'),
        // An unknown record type.
        _ => (digits, b'#'),
    };
    if let Some(b) = wire.get_mut(at) {
        *b = byte;
    }
}

/// Writes `wire`; split into small pieces (1..11 bytes, a millisecond apart) over its first part when
/// `split`, so a reader sees the length header and the first record arrive in several reads.
async fn write_wire(wr: &mut OwnedWriteHalf, wire: &[u8], split: bool) -> io::Result<()> {
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
                        serve(&bank, stream).await;
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
    debug!("bank simulator stopped");
}

/// One connection: request, reply, request, reply... until the peer closes, goes idle, or sends
/// something unreadable.
async fn serve(bank: &Bank, stream: TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let (rd, mut wr) = stream.into_split();
    let mut frames = FramedRead::new(rd, bank.codec);
    loop {
        let next = match bank.idle_timeout {
            Some(idle) => match tokio::time::timeout(idle, frames.next()).await {
                Ok(next) => next,
                Err(_) => {
                    debug!("idle connection: closing");
                    return;
                }
            },
            None => frames.next().await,
        };
        let body = match next {
            None => return,
            Some(Ok(body)) => body,
            Some(Err(e)) => {
                bank.ledger.note(Event::Unparsable);
                debug!(error = %e, "framing error: closing without a reply");
                return;
            }
        };
        let Some(reply) = bank.answer(&body) else {
            return;
        };
        match bank.send(&mut wr, reply).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                debug!(error = %e, "cannot write a reply: closing");
                return;
            }
        }
    }
}

/// A failure code's reason: Chinese and English, as bank A's test endpoint writes them.
fn reason_for(profile: &Profile, code: &str) -> String {
    let known = match code {
        "A001" => "账户不存在 account does not exist",
        "A002" => "账户已销户 account closed",
        "A003" => "账户已冻结 account frozen",
        "A004" => "户名不符 name does not match the account",
        "A005" => "非社保卡账户 not a social security card account",
        "A009" => "其他 other",
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

fn yyyymmdd(t: OffsetDateTime) -> String {
    format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day())
}

fn hhmmss(t: OffsetDateTime) -> String {
    format!("{:02}{:02}{:02}", t.hour(), t.minute(), t.second())
}

/// First bank batch serial: the start time in milliseconds, so two runs of the simulator on one day do
/// not hand out the same bank batch ids (unless one accepted more than a batch per millisecond).
fn first_serial() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0)
        % 100_000_000_000
}

fn far_future(from: Instant) -> Instant {
    from.checked_add(Duration::from_secs(100 * 365 * 24 * 3600))
        .unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bank(cfg: FixedWidthSimConfig) -> Bank {
        Bank::new(cfg).expect("bank")
    }

    fn profile() -> Profile {
        bank_profiles::builtin()
            .expect("builtin")
            .remove("402241000015")
            .expect("bank A")
    }

    #[test]
    fn outcomes_are_a_function_of_seed_batch_and_seq() {
        let mut cfg = FixedWidthSimConfig::new(profile());
        cfg.fail_permille = 300;
        let a = bank(cfg.clone());
        let b = bank(cfg.clone());
        cfg.seed = 2;
        let c = bank(cfg);
        let run = |bank: &Bank| {
            (1..=200)
                .map(|seq| bank.outcome("B1", seq))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(&a), run(&b));
        assert_ne!(run(&a), run(&c));
        let failed: Vec<_> = run(&a)
            .into_iter()
            .filter(|o| *o != ItemOutcome::Credited)
            .collect();
        assert!((30..90).contains(&failed.len()), "{}", failed.len());
        for f in failed {
            let ItemOutcome::Failed { code, reason } = f else {
                unreachable!()
            };
            assert!(["A001", "A002", "A003", "A004", "A005", "A009"].contains(&code.as_str()));
            assert!(gbk::encode(&reason).is_ok());
        }
    }

    #[test]
    fn refuses_unusable_config() {
        let mut cfg = FixedWidthSimConfig::new(profile());
        cfg.fail_codes = vec!["A0001".into()];
        assert_eq!(
            Bank::new(cfg).err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidInput)
        );
        let mut cfg = FixedWidthSimConfig::new(profile());
        cfg.profile.fixed_width = None;
        assert!(Bank::new(cfg).is_err());
    }

    #[test]
    fn garbling_always_breaks_the_frame() {
        let b = bank(FixedWidthSimConfig::new(profile()));
        let body = b.layouts.encode_echo("9002").expect("echo");
        for how in 0..3 {
            let mut wire = b.codec.header(body.len()).expect("header");
            wire.extend_from_slice(&body);
            garble(&mut wire, 8, 200, how);
            let broken = b.codec.parse_header(&wire[..8]).is_err()
                || b.layouts.decode_echo(&wire[8..]).is_err();
            assert!(broken, "variant {how}");
        }
    }

    #[test]
    fn beijing_time_formats() {
        let t = time::macros::datetime!(2024-12-31 16:30:05 UTC).to_offset(BEIJING);
        assert_eq!(
            (yyyymmdd(t), hhmmss(t)),
            ("20250101".to_owned(), "003005".to_owned())
        );
    }
}
