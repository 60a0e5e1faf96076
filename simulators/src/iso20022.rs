//! Bank B's test endpoint: ISO 20022 `pain.001.001.09` in, `pain.002.001.10` out, over HTTPS (HTTP/1.1)
//! with mutual TLS, as its interface document (`shared/specs/bank-b-iso20022.md`, v1.4) describes it.
//!
//! ```text
//! gateway (client certificate of the CA)        simulator (server certificate of the same CA)
//!   |== TLS 1.2/1.3, client certificate required ==|  no certificate, another CA's, plain HTTP: refused
//!   |-- POST /cbp/v1/payments  pain.001 ---------->|  slot (8 in flight) -> size -> MsgId repeat?
//!   |<- 202 ACTC | 200 (repeat, first body again) --|     -> XSD (xmllint, when configured)
//!   |<- 400 RJCT + StsRsnInf/AddtlInf | 413 | 503 --|     -> pain.001 reader (structure, totals, CNY,
//!   |                                              |        whole fen, one PmtInf, <= 10,000, payer)
//!   |-- GET /cbp/v1/payments/{MsgId}/status ------>|     -> books every transaction at acceptance
//!   |<- 200 PDNG (no OrgnlPmtInfAndSts) -----------|  until processing (+ late_result) has passed,
//!   |<- 200 ACCC | PART | RJCT + TxInfAndSts ------|  then one TxInfAndSts per transaction; 404 unknown
//! ```
//! Everything about the documents comes from the shared codecs (the pain.001 reader, the pain.002
//! writer) and the paths from the bank's profile: the simulator checks the gateway against the same code
//! the gateway uses, and answers in the canonical layout of the golden fixtures. Outcomes are decided when
//! a batch is accepted and never change: a pure function of `(seed, MsgId, position)`, except that an
//! `EndToEndId` already credited (under another `MsgId`, or earlier in the same document) is not paid
//! again and ends `RJCT` `AM05`. Faults are a pure function of `(seed, request key, attempt)` (see
//! [`crate::faults`]), so a scenario replays the same way.
//!
//! Faults (the menu of banks A and C, as they fit HTTP; every one leaves the request processed):
//! `reply_delay` before every answer; `drop_before_reply_permille` closes the connection without an
//! answer; `cut_reply_permille` writes the head and part of the body, then closes the connection;
//! `garble_reply_permille` sends a body that is not XML; `duplicate_reply_permille` answers
//! an accepted submit as a repeat (`200` and the same body) as the spec says a repeat is answered;
//! `busy_submit_permille` / `busy_query_permille` answer `503` with `Retry-After`; `late_result` delays
//! the final results; `fail_permille` / `fail_codes` decide failed transactions. `split_writes`,
//! `bad_mac_reply_permille` and `late_result_permille` do not apply (hyper and TLS frame the answer;
//! there is no MAC; results are final per batch, so `late_result` delays the whole batch, as bank A's).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use simulators::{Iso20022Sim, Iso20022SimConfig};
//! let profile = bank_profiles::builtin().map_err(std::io::Error::other)?.remove("103241000018");
//! let mut cfg = Iso20022SimConfig::new(profile.ok_or_else(|| std::io::Error::other("no bank B"))?);
//! cfg.xsd = Some("../shared/data/xsd/pain.001.001.09.xsd".into()); // optional: xmllint on every body
//! let sim = Iso20022Sim::start(cfg, tokio::net::TcpListener::bind("127.0.0.1:0").await?).await?;
//! // The gateway's bank settings: endpoint = sim.base_url(); ca, client_cert, client_key = these files.
//! let files = sim.pki.write_to(std::path::Path::new("/tmp/bank-b-pki"))?;
//! # let _ = files;
//! // ... run the scenario ...
//! assert_eq!(sim.ledger.max_payments_per_id(), 1);
//! assert!(sim.max_credits_per_end_to_end_id() <= 1);
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bank_profiles::{Framing, Profile};
use bytes::Bytes;
use codecs::format::iso20022::BeijingTime;
use codecs::format::iso20022::pain001::{self, Pain001Reader, Transaction};
use codecs::format::iso20022::pain002::{
    Reason, ReportHeader, StatusReason, StatusReport, TimeStyle, TxStatus, write_report,
};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use time::{OffsetDateTime, UtcOffset};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::faults::{Dice, Faults, Roll};
use crate::fixed_width::SimHandle;
use crate::ledger::{BankBatch, BankItem, Event, ItemOutcome, Ledger, Settled};
use crate::tls::TestPki;

/// Beijing time (UTC+8, no daylight saving).
const BEIJING: UtcOffset = time::macros::offset!(+8);
const XML: &str = "application/xml; charset=utf-8";
/// `OrgnlMsgId` of a 400 answer to a body whose `MsgId` cannot be read.
const NOT_PROVIDED: &str = "NOTPROVIDED";
/// Connections served at once; more are closed at once. This only bounds the simulator's resources:
/// the spec limits requests, not connections ("at most 8 requests at once from one client; beyond
/// that ... `503` with `Retry-After`"), and a request over that limit is answered so on whichever
/// connection it comes (`Bank::slots`, the profile's `max_connections`).
const MAX_CONNECTIONS: usize = 64;
/// Time a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the simulated bank B behaves.
#[derive(Debug, Clone)]
pub struct Iso20022SimConfig {
    /// The bank's profile (family `iso20022`): paths, body limit, transactions per document, requests
    /// in flight.
    pub profile: Profile,
    /// Seed of every random decision (transaction results, faults).
    pub seed: u64,
    /// How long an accepted batch stays `PDNG`.
    pub processing: Duration,
    /// Share of transactions that fail, in permille.
    pub fail_permille: u32,
    /// `Rsn/Cd` codes of failed transactions, picked deterministically per transaction; empty means
    /// `NARR`. `NARR` comes with an `AddtlInf` text.
    pub fail_codes: Vec<String>,
    /// Faults to inject.
    pub faults: Faults,
    /// Extra time before results become final, on top of `processing` (SLA drills).
    pub late_result: Duration,
    /// Payer accounts (`DbtrAcct/Id/Othr/Id`) the bank knows; empty: any.
    pub payer_accounts: HashSet<String>,
    /// `pain.001.001.09.xsd`: when set, every submit body is validated with `xmllint --noout --schema`
    /// (`400` when invalid). `start` fails when xmllint cannot be run.
    pub xsd: Option<PathBuf>,
    /// `Retry-After` of a `503`, in whole seconds (at least 1).
    pub retry_after: Duration,
    /// The certificates: the server's and the CA its clients must come from. `None`: a new
    /// [`TestPki`] is made at start (read it from [`Iso20022SimHandle::pki`]).
    pub pki: Option<TestPki>,
}

impl Iso20022SimConfig {
    /// Defaults for `profile`: seed 1, processing 1 s, 50 ‰ of transactions failing with one of
    /// `AC01`, `AC04`, `AC06`, `BE01`, `AC14`, `NARR`, no faults, no late result, any payer account, no
    /// XSD check, `Retry-After: 1`, a new PKI at start.
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            seed: 1,
            processing: Duration::from_secs(1),
            fail_permille: 50,
            fail_codes: ["AC01", "AC04", "AC06", "BE01", "AC14", "NARR"]
                .map(String::from)
                .to_vec(),
            faults: Faults::default(),
            late_result: Duration::ZERO,
            payer_accounts: HashSet::new(),
            xsd: None,
            retry_after: Duration::from_secs(1),
            pki: None,
        }
    }
}

/// Counters of what bank B's simulator did beyond the shared [`Ledger`]'s.
#[derive(Debug, Default)]
pub struct Iso20022Stats {
    accepted: AtomicUsize,
    repeats: AtomicUsize,
    rejected: AtomicUsize,
    too_large: AtomicUsize,
    not_found: AtomicUsize,
    handshake_failures: AtomicUsize,
    am05: AtomicUsize,
    xsd_invalid: AtomicUsize,
    retries_after_busy: AtomicUsize,
    early_retries: AtomicUsize,
}

impl Iso20022Stats {
    fn bump(c: &AtomicUsize) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Submits answered `202` (accepted now).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Submits answered `200` (a `MsgId` accepted before, or the duplicate fault).
    pub fn repeats(&self) -> usize {
        self.repeats.load(Ordering::Relaxed)
    }

    /// Submits answered `400`.
    pub fn rejected(&self) -> usize {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Submits answered `413`.
    pub fn too_large(&self) -> usize {
        self.too_large.load(Ordering::Relaxed)
    }

    /// Status calls answered `404`.
    pub fn not_found(&self) -> usize {
        self.not_found.load(Ordering::Relaxed)
    }

    /// Connections whose TLS handshake failed (no or a wrong client certificate, plain HTTP...).
    pub fn handshake_failures(&self) -> usize {
        self.handshake_failures.load(Ordering::Relaxed)
    }

    /// Transactions ended `RJCT AM05` (an `EndToEndId` already paid).
    pub fn am05(&self) -> usize {
        self.am05.load(Ordering::Relaxed)
    }

    /// Submits the XSD check refused.
    pub fn xsd_invalid(&self) -> usize {
        self.xsd_invalid.load(Ordering::Relaxed)
    }

    /// Requests that came again after a busy (`503` + `Retry-After`) answer to the same key.
    pub fn retries_after_busy(&self) -> usize {
        self.retries_after_busy.load(Ordering::Relaxed)
    }

    /// Of those, the ones that came sooner than `Retry-After` after the busy answer (less
    /// [`EARLY_RETRY_TOLERANCE`]): a client that honours the header makes none.
    pub fn early_retries(&self) -> usize {
        self.early_retries.load(Ordering::Relaxed)
    }
}

/// How much sooner than `Retry-After` a retry may come and still count as honouring it: the
/// client's clock reads milliseconds, and it times the wait from when it read the answer, which is
/// later than when it was made here.
pub const EARLY_RETRY_TOLERANCE: Duration = Duration::from_millis(20);

/// The bank B simulator.
#[derive(Debug)]
pub struct Iso20022Sim;

impl Iso20022Sim {
    /// Serves HTTPS on `listener` in a new task (call inside a Tokio runtime) until
    /// [`Iso20022SimHandle::shutdown`].
    ///
    /// # Errors
    /// `InvalidInput` when the profile is not a usable ISO 20022 profile, a fail code is not 1 to 4
    /// characters, the XSD is set but missing or xmllint cannot be run, or the PKI cannot be made or used;
    /// the listener's own error when its address cannot be read.
    pub async fn start(
        cfg: Iso20022SimConfig,
        listener: TcpListener,
    ) -> io::Result<Iso20022SimHandle> {
        let addr = listener.local_addr()?;
        if let Some(xsd) = &cfg.xsd {
            check_xmllint(xsd).await?;
        }
        let pki = match cfg.pki.clone() {
            Some(p) => p,
            None => TestPki::generate("bank B simulator test CA")?,
        };
        let tls = Arc::new(pki.server_config()?);
        let bank = Arc::new(Bank::new(cfg)?);
        let ledger = Arc::clone(&bank.ledger);
        let stats = Arc::clone(&bank.stats);
        let token = CancellationToken::new();
        let task = tokio::spawn(accept_loop(
            Arc::clone(&bank),
            listener,
            TlsAcceptor::from(tls),
            token.clone(),
        ));
        info!(%addr, "bank B simulator listening (HTTPS, mutual TLS)");
        Ok(Iso20022SimHandle {
            sim: SimHandle {
                addr,
                ledger,
                token,
                task,
            },
            stats,
            pki,
            bank,
        })
    }

    /// Listens on `addr` and serves until Ctrl-C; see [`run`].
    ///
    /// # Errors
    /// As [`run`].
    pub async fn run(cfg: Iso20022SimConfig, addr: &str) -> io::Result<()> {
        run(cfg, addr).await
    }
}

/// Listens on `addr` and serves until Ctrl-C (what a `gateway simulate bank` for bank B would run).
///
/// # Errors
/// When `addr` cannot be bound, the configuration is unusable (see [`Iso20022Sim::start`]) or Ctrl-C
/// cannot be listened for.
pub async fn run(cfg: Iso20022SimConfig, addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let sim = Iso20022Sim::start(cfg, listener).await?;
    let stopped = tokio::signal::ctrl_c().await;
    info!("stopping the bank B simulator");
    sim.shutdown().await;
    stopped
}

/// A running bank B simulator: the handle every simulator hands out ([`SimHandle`]: `addr`, `ledger`,
/// reached through `Deref`), plus what is bank B's own.
pub struct Iso20022SimHandle {
    sim: SimHandle,
    /// Its own counters.
    pub stats: Arc<Iso20022Stats>,
    /// The certificates it serves with and trusts clients of: give the gateway
    /// [`TestPki::write_to`]'s `ca`, `client_cert` and `client_key`.
    pub pki: TestPki,
    bank: Arc<Bank>,
}

impl std::ops::Deref for Iso20022SimHandle {
    type Target = SimHandle;

    fn deref(&self) -> &SimHandle {
        &self.sim
    }
}

impl std::fmt::Debug for Iso20022SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iso20022SimHandle")
            .field("addr", &self.sim.addr)
            .field("ledger", &self.sim.ledger)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Iso20022SimHandle {
    /// `https://127.0.0.1:port` (the address, with `localhost` for an unspecified one).
    pub fn base_url(&self) -> String {
        if self.addr.ip().is_unspecified() {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("https://{}", self.addr)
        }
    }

    /// The most times one `EndToEndId` was credited, over all batches (`1` or `0`: nobody paid twice).
    pub fn max_credits_per_end_to_end_id(&self) -> usize {
        self.bank
            .lock_e2e()
            .values()
            .map(|e| e.credited)
            .max()
            .unwrap_or(0)
    }

    /// The `EndToEndId`s of the accepted batch `msg_id`, with their `TxSts` and reason code, in
    /// document order.
    pub fn results(&self, msg_id: &str) -> Option<Vec<(String, &'static str, Option<String>)>> {
        let batch = self.bank.lock_batches().get(msg_id).cloned()?;
        Some(
            batch
                .txs
                .iter()
                .map(|t| match &t.outcome {
                    ItemOutcome::Credited => (t.e2e.clone(), "ACCC", None),
                    ItemOutcome::Failed { code, .. } => (t.e2e.clone(), "RJCT", Some(code.clone())),
                })
                .collect(),
        )
    }

    /// The plain handle (for code that keeps every simulator's handle alike); the PKI and the
    /// counters stay readable only through clones taken before.
    pub fn into_sim_handle(self) -> SimHandle {
        self.sim
    }

    /// Stops accepting, closes every connection and waits until the server is gone.
    pub async fn shutdown(self) {
        self.sim.shutdown().await;
    }
}

/// One transaction as booked (no personal data beyond what the status report repeats).
struct BookedTx {
    seq: u64,
    e2e: String,
    account_bank_code: String,
    outcome: ItemOutcome,
}

/// An accepted batch as the status call reports it.
struct Batch {
    /// The `202` body, sent again (with `200`) to every repeat of the `MsgId`.
    ack: Bytes,
    serial: u64,
    final_at: Instant,
    /// When the account banks confirmed (acceptance + processing + late result), Beijing time.
    confirmed: BeijingTime,
    txs: Vec<BookedTx>,
}

/// Who paid an `EndToEndId`.
struct E2e {
    msg_id: String,
    credited: usize,
}

/// Why a submit is refused with `400`: `Rsn/Prtry` and the `AddtlInf` text.
struct Refusal {
    code: &'static str,
    text: String,
}

impl Refusal {
    fn new(code: &'static str, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
        }
    }
}

/// An answer before the faults are applied.
struct Answer {
    status: StatusCode,
    body: Bytes,
    retry_after: bool,
    /// What the fault dice are keyed on (`None`: no faults, e.g. 413).
    key: Option<(String, u64)>,
    /// An accepted submit: the duplicate fault may answer it as a repeat.
    fresh_accept: bool,
}

impl Answer {
    fn plain(status: StatusCode) -> Self {
        Self {
            status,
            body: Bytes::new(),
            retry_after: false,
            key: None,
            fresh_accept: false,
        }
    }

    fn xml(status: StatusCode, body: Bytes, key: (String, u64)) -> Self {
        Self {
            status,
            body,
            retry_after: false,
            key: Some(key),
            fresh_accept: false,
        }
    }

    fn busy(key: (String, u64)) -> Self {
        Self {
            retry_after: true,
            key: Some(key),
            ..Self::plain(StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

type Body = BoxBody<Bytes, io::Error>;

/// The bank: configuration turned into what serving needs, and its books.
struct Bank {
    submit_path: String,
    /// The status path around `{msg_id}`.
    status_prefix: String,
    status_suffix: String,
    max_body: usize,
    items_per_part: u64,
    processing: Duration,
    fail_permille: u32,
    fail_codes: Vec<String>,
    payer_accounts: HashSet<String>,
    xsd: Option<PathBuf>,
    retry_after_secs: u64,
    faults: Faults,
    dice: Dice,
    slots: Arc<Semaphore>,
    ledger: Arc<Ledger>,
    stats: Arc<Iso20022Stats>,
    batches: Mutex<HashMap<String, Arc<Batch>>>,
    e2e: Mutex<HashMap<String, E2e>>,
    /// Requests seen per key (`submit:<MsgId>`, `status:<MsgId>`): the attempt number for the dice.
    attempts: Mutex<HashMap<String, u64>>,
    /// When the last busy answer per key was made, until that key's next request.
    busy_at: Mutex<HashMap<String, Instant>>,
    report_serial: AtomicU64,
}

fn invalid(problem: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, problem.into())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a few plain assignments: consistent even after a panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Bank {
    fn new(cfg: Iso20022SimConfig) -> io::Result<Self> {
        let p = &cfg.profile;
        let table = p.iso20022.as_ref().ok_or_else(|| {
            invalid(format!(
                "profile {} is not of the ISO 20022 family (no [iso20022] table)",
                p.code
            ))
        })?;
        let max_body = match p.transport.framing {
            Framing::Http { max_body } => max_body,
            _ => {
                return Err(invalid(format!(
                    "profile {}: needs the HTTP framing",
                    p.code
                )));
            }
        };
        let status_path = table
            .status_path
            .split('?')
            .next()
            .unwrap_or(&table.status_path);
        let (status_prefix, status_suffix) = status_path
            .split_once("{msg_id}")
            .ok_or_else(|| invalid(format!("profile {}: status_path has no {{msg_id}}", p.code)))?;
        if let Some(code) = cfg
            .fail_codes
            .iter()
            .find(|c| c.is_empty() || c.chars().count() > 4 || c.chars().any(char::is_control))
        {
            return Err(invalid(format!(
                "fail code `{code}` is not a Rsn/Cd of 1 to 4 characters"
            )));
        }
        Ok(Self {
            submit_path: table.submit_path.clone(),
            status_prefix: status_prefix.to_owned(),
            status_suffix: status_suffix.to_owned(),
            max_body,
            items_per_part: u64::from(p.limits.items_per_part),
            processing: cfg.processing.saturating_add(cfg.late_result),
            fail_permille: cfg.fail_permille,
            fail_codes: cfg.fail_codes,
            payer_accounts: cfg.payer_accounts,
            xsd: cfg.xsd,
            retry_after_secs: cfg.retry_after.as_secs().max(1),
            faults: cfg.faults,
            dice: Dice::new(cfg.seed),
            slots: Arc::new(Semaphore::new(
                usize::try_from(p.transport.max_connections)
                    .unwrap_or(8)
                    .max(1),
            )),
            ledger: Arc::new(Ledger::new(first_serial())),
            stats: Arc::new(Iso20022Stats::default()),
            batches: Mutex::new(HashMap::new()),
            e2e: Mutex::new(HashMap::new()),
            attempts: Mutex::new(HashMap::new()),
            busy_at: Mutex::new(HashMap::new()),
            report_serial: AtomicU64::new(1),
        })
    }

    fn lock_batches(&self) -> MutexGuard<'_, HashMap<String, Arc<Batch>>> {
        lock(&self.batches)
    }

    fn lock_e2e(&self) -> MutexGuard<'_, HashMap<String, E2e>> {
        lock(&self.e2e)
    }

    /// The attempt number of a request with `key` (0 for the first); a request after a busy answer
    /// to the same key is counted, and counted early when it came before `Retry-After` had passed.
    fn attempt(&self, key: &str) -> u64 {
        if let Some(busy) = lock(&self.busy_at).remove(key) {
            Iso20022Stats::bump(&self.stats.retries_after_busy);
            let wait = Duration::from_secs(self.retry_after_secs);
            if busy.elapsed() + EARLY_RETRY_TOLERANCE < wait {
                Iso20022Stats::bump(&self.stats.early_retries);
            }
        }
        let mut attempts = lock(&self.attempts);
        let n = attempts.entry(key.to_owned()).or_insert(0);
        let this = *n;
        *n += 1;
        this
    }

    /// A busy answer to `key`, timed for [`Iso20022Stats::early_retries`].
    fn busy(&self, key: (String, u64)) -> Answer {
        self.ledger.note(Event::Busy);
        lock(&self.busy_at).insert(key.0.clone(), Instant::now());
        Answer::busy(key)
    }

    /// A new `GrpHdr/MsgId` of a status report: `CBP`, the time, a serial.
    fn report_id(&self, now: BeijingTime) -> String {
        let (y, mo, d, h, mi, s) = now.parts();
        let n = self.report_serial.fetch_add(1, Ordering::Relaxed) % 1_000_000;
        format!("CBP{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}{n:06}")
    }

    fn report(&self, original_msg_id: &str, status: &str) -> ReportHeader {
        let now = beijing_now();
        let mut h = ReportHeader::about(&self.report_id(now), now, original_msg_id);
        h.group_status = Some(status.to_owned());
        h
    }

    /// One request: routing, then the endpoint.
    async fn handle(&self, req: Request<Incoming>) -> Answer {
        let path = req.uri().path().to_owned();
        let is_submit = path == self.submit_path;
        let status_of = path
            .strip_prefix(&self.status_prefix)
            .and_then(|rest| rest.strip_suffix(&self.status_suffix))
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .map(str::to_owned);
        if !is_submit && status_of.is_none() {
            return Answer::plain(StatusCode::NOT_FOUND);
        }
        let method_ok = if is_submit {
            req.method() == Method::POST
        } else {
            req.method() == Method::GET
        };
        if !method_ok {
            return Answer::plain(StatusCode::METHOD_NOT_ALLOWED);
        }
        // "At most 8 requests at once from one client; beyond that ... 503 with Retry-After": the
        // slot is held until the answer is made. Counted apart from the busy fault, so a test can
        // check that the clients together never went over the limit.
        let Ok(_slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            self.ledger.note(if is_submit {
                Event::Submit
            } else {
                Event::Query
            });
            self.ledger.note(Event::Overloaded);
            debug!("more requests in flight than the bank takes: 503");
            return Answer {
                retry_after: true,
                ..Answer::plain(StatusCode::SERVICE_UNAVAILABLE)
            };
        };
        let answer = match status_of {
            Some(msg_id) => self.status(&msg_id),
            None => self.submit(req).await,
        };
        if !self.faults.reply_delay.is_zero() {
            tokio::time::sleep(self.faults.reply_delay).await;
        }
        answer
    }

    // --- submit ---------------------------------------------------------------------------------

    async fn submit(&self, req: Request<Incoming>) -> Answer {
        self.ledger.note(Event::Submit);
        let announced = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > self.max_body as u64) {
            Iso20022Stats::bump(&self.stats.too_large);
            return Answer::plain(StatusCode::PAYLOAD_TOO_LARGE);
        }
        let body = match Limited::new(req.into_body(), self.max_body).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                Iso20022Stats::bump(&self.stats.too_large);
                return Answer::plain(StatusCode::PAYLOAD_TOO_LARGE);
            }
            Err(e) => {
                self.ledger.note(Event::Unparsable);
                debug!(error = %e, "submit body could not be read");
                return Answer::plain(StatusCode::BAD_REQUEST);
            }
        };
        let msg_id = sniff_msg_id(&body);
        let key = format!("submit:{}", msg_id.as_deref().unwrap_or("?"));
        let attempt = self.attempt(&key);
        let dice_key = (key, attempt);
        if self.faults.hits(
            &self.dice,
            Roll::Busy,
            dice_key.0.as_bytes(),
            attempt,
            self.faults.busy_submit_permille,
        ) {
            return self.busy(dice_key);
        }
        // A MsgId accepted before: the first answer again, whatever the body (checked before anything
        // else, as the spec says).
        // (Looked up in a statement of its own: the books' lock is never taken while holding this one.)
        let known = msg_id
            .as_ref()
            .and_then(|id| self.lock_batches().get(id).cloned());
        if let (Some(id), Some(batch)) = (&msg_id, known) {
            self.ledger.settle_submit(id, true, |_| unreachable_book());
            Iso20022Stats::bump(&self.stats.repeats);
            debug!(msg_id = %id, "repeat of an accepted MsgId: 200");
            return Answer::xml(StatusCode::OK, batch.ack.clone(), dice_key);
        }
        let original = msg_id.clone().unwrap_or_else(|| NOT_PROVIDED.to_owned());
        if let Some(xsd) = &self.xsd
            && let Err(problem) = xmllint(xsd, &body).await
        {
            Iso20022Stats::bump(&self.stats.xsd_invalid);
            return self.refuse(
                &original,
                Refusal::new("SCHEMA", format!("schema error: {problem}")),
                dice_key,
            );
        }
        let doc = match self.check(&body) {
            Ok(doc) => doc,
            Err(r) => return self.refuse(&original, r, dice_key),
        };
        let msg_id = doc.header.msg_id.clone();
        let serial_ack = |serial: u64| -> Result<Batch, String> { self.book_batch(&doc, serial) };
        let mut booked: Result<(), String> = Ok(());
        let settled = self.ledger.settle_submit(&msg_id, false, |serial| {
            match serial_ack(serial) {
                Ok(batch) => {
                    let ledger_batch = ledger_batch(&doc, &batch);
                    self.lock_batches().insert(msg_id.clone(), Arc::new(batch));
                    ledger_batch
                }
                Err(e) => {
                    booked = Err(e);
                    // Nothing reachable without an answer body: book an empty batch the status call
                    // does not know (404), so the gateway sends again under a new MsgId.
                    empty_ledger_batch(serial)
                }
            }
        });
        if let Err(e) = booked {
            warn!(error = %e, "cannot write an ACTC answer");
            return Answer::plain(StatusCode::INTERNAL_SERVER_ERROR);
        }
        let Some(batch) = self.lock_batches().get(&msg_id).cloned() else {
            return Answer::plain(StatusCode::INTERNAL_SERVER_ERROR);
        };
        match settled {
            Settled::Accepted { .. } => {
                Iso20022Stats::bump(&self.stats.accepted);
                debug!(%msg_id, txs = batch.txs.len(), "submit accepted: 202");
                Answer {
                    fresh_accept: true,
                    ..Answer::xml(StatusCode::ACCEPTED, batch.ack.clone(), dice_key)
                }
            }
            // Accepted by a concurrent request with the same MsgId in the meantime.
            Settled::Duplicate { .. } | Settled::Refused => {
                Iso20022Stats::bump(&self.stats.repeats);
                Answer::xml(StatusCode::OK, batch.ack.clone(), dice_key)
            }
        }
    }

    /// The structural checks (always on): the pain.001 reader, then bank B's limits.
    fn check(&self, body: &[u8]) -> Result<pain001::Document, Refusal> {
        let mut r = Pain001Reader::new(body).map_err(refusal_of)?;
        if r.header().nb_of_txs > self.items_per_part {
            return Err(Refusal::new(
                "TOOMANY",
                format!(
                    "GrpHdr/NbOfTxs {} is over the {} transactions a document may hold",
                    r.header().nb_of_txs,
                    self.items_per_part
                ),
            ));
        }
        if !self.payer_accounts.is_empty()
            && !self.payer_accounts.contains(&r.payment().payer_account)
        {
            return Err(Refusal::new(
                "PAYER",
                "unknown payer account (PmtInf/DbtrAcct/Id/Othr/Id)",
            ));
        }
        let mut transactions: Vec<Transaction> = Vec::new();
        while let Some(tx) = r.next_transaction().map_err(refusal_of)? {
            transactions.push(tx);
        }
        Ok(pain001::Document {
            header: r.header().clone(),
            payment: r.payment().clone(),
            transactions,
        })
    }

    /// A `400` with a `pain.002` `RJCT` saying why.
    fn refuse(&self, original: &str, r: Refusal, key: (String, u64)) -> Answer {
        Iso20022Stats::bump(&self.stats.rejected);
        if r.code == "SCHEMA" {
            self.ledger.note(Event::Unparsable);
        }
        debug!(code = r.code, reason = %r.text, "submit refused: 400");
        let mut header = self.report(original, "RJCT");
        header.reasons = vec![StatusReason {
            reason: Some(Reason::Proprietary(r.code.to_owned())),
            additional_info: lines(&r.text, 105),
        }];
        match write_report(
            &StatusReport {
                header,
                transactions: Vec::new(),
            },
            TimeStyle::Offset,
        ) {
            Ok(body) => Answer::xml(StatusCode::BAD_REQUEST, Bytes::from(body), key),
            Err(e) => {
                // The original MsgId as sent may not fit `Max35Text` (it was not read): say so without it.
                debug!(error = %e, "cannot echo the MsgId in a 400 answer");
                if original == NOT_PROVIDED {
                    Answer::plain(StatusCode::BAD_REQUEST)
                } else {
                    self.refuse(NOT_PROVIDED, r, key)
                }
            }
        }
    }

    /// The batch as the bank books it on acceptance: every transaction's outcome decided now. Runs
    /// under the ledger's lock, so that two submits never book the same `EndToEndId` both as paid.
    fn book_batch(&self, doc: &pain001::Document, serial: u64) -> Result<Batch, String> {
        let msg_id = &doc.header.msg_id;
        let mut e2e = self.lock_e2e();
        let mut txs = Vec::with_capacity(doc.transactions.len());
        for (i, t) in doc.transactions.iter().enumerate() {
            let position = i as u64 + 1;
            let earlier = e2e.get(&t.end_to_end_id).filter(|e| e.credited > 0);
            let outcome = match earlier {
                Some(e) => {
                    Iso20022Stats::bump(&self.stats.am05);
                    let reason = if &e.msg_id == msg_id {
                        "EndToEndId already paid earlier in this document".to_owned()
                    } else {
                        format!("EndToEndId already paid under MsgId {}", e.msg_id)
                    };
                    ItemOutcome::Failed {
                        code: "AM05".to_owned(),
                        reason,
                    }
                }
                None => self.outcome(msg_id, position),
            };
            let entry = e2e.entry(t.end_to_end_id.clone()).or_insert_with(|| E2e {
                msg_id: msg_id.clone(),
                credited: 0,
            });
            if outcome == ItemOutcome::Credited {
                entry.credited += 1;
                entry.msg_id = msg_id.clone();
            }
            txs.push(BookedTx {
                seq: t.seq,
                e2e: t.end_to_end_id.clone(),
                account_bank_code: t.account_bank_code.clone(),
                outcome,
            });
        }
        drop(e2e);
        let ack = write_report(
            &StatusReport {
                header: self.report(msg_id, "ACTC"),
                transactions: Vec::new(),
            },
            TimeStyle::Offset,
        )
        .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let confirmed = time::Duration::try_from(self.processing)
            .ok()
            .and_then(|d| OffsetDateTime::now_utc().to_offset(BEIJING).checked_add(d))
            .map_or_else(beijing_now, beijing);
        Ok(Batch {
            ack: Bytes::from(ack),
            serial,
            final_at: start
                .checked_add(self.processing)
                .unwrap_or_else(|| far_future(start)),
            confirmed,
            txs,
        })
    }

    /// A transaction's outcome: a pure function of `(seed, MsgId, position)`.
    fn outcome(&self, msg_id: &str, position: u64) -> ItemOutcome {
        let key = msg_id.as_bytes();
        if !self
            .dice
            .hits(Roll::ItemFails, key, position, self.fail_permille)
        {
            return ItemOutcome::Credited;
        }
        let code = match self.fail_codes.len() {
            0 => "NARR",
            n => {
                let i = usize::try_from(self.dice.number(Roll::FailCode, key, position) % n as u64)
                    .unwrap_or(0);
                self.fail_codes.get(i).map_or("NARR", String::as_str)
            }
        };
        ItemOutcome::Failed {
            code: code.to_owned(),
            reason: reason_for(code).to_owned(),
        }
    }

    // --- status ---------------------------------------------------------------------------------

    fn status(&self, msg_id: &str) -> Answer {
        self.ledger.note(Event::Query);
        let key = format!("status:{msg_id}");
        let attempt = self.attempt(&key);
        let dice_key = (key, attempt);
        if self.faults.hits(
            &self.dice,
            Roll::Busy,
            dice_key.0.as_bytes(),
            attempt,
            self.faults.busy_query_permille,
        ) {
            return self.busy(dice_key);
        }
        let Some(batch) = self.lock_batches().get(msg_id).cloned() else {
            Iso20022Stats::bump(&self.stats.not_found);
            return Answer {
                key: Some(dice_key),
                ..Answer::plain(StatusCode::NOT_FOUND)
            };
        };
        let report = if Instant::now() < batch.final_at {
            StatusReport {
                header: self.report(msg_id, "PDNG"),
                transactions: Vec::new(),
            }
        } else {
            self.final_report(msg_id, &batch)
        };
        match write_report(&report, TimeStyle::Offset) {
            Ok(body) => Answer::xml(StatusCode::OK, Bytes::from(body), dice_key),
            Err(e) => {
                warn!(error = %e, "cannot write a status report");
                Answer::plain(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    fn final_report(&self, msg_id: &str, batch: &Batch) -> StatusReport {
        let credited = batch
            .txs
            .iter()
            .filter(|t| t.outcome == ItemOutcome::Credited)
            .count();
        let group = if credited == batch.txs.len() {
            "ACCC"
        } else if credited == 0 {
            "RJCT"
        } else {
            "PART"
        };
        let transactions = batch
            .txs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (status, reasons) = match &t.outcome {
                    ItemOutcome::Credited => ("ACCC", Vec::new()),
                    ItemOutcome::Failed { code, reason } => {
                        let additional_info = if code == "NARR" || code == "AM05" {
                            lines(reason, 105)
                        } else {
                            Vec::new()
                        };
                        (
                            "RJCT",
                            vec![StatusReason {
                                reason: Some(Reason::Code(code.clone())),
                                additional_info,
                            }],
                        )
                    }
                };
                TxStatus {
                    original_instr_id: Some(t.seq.to_string()),
                    original_end_to_end_id: Some(t.e2e.clone()),
                    status: Some(status.to_owned()),
                    reasons,
                    acceptance_time: Some(batch.confirmed),
                    // Unique: the serial is unique per batch, the position within it.
                    account_servicer_ref: Some(format!(
                        "B103{:011}{:06}",
                        batch.serial % 100_000_000_000,
                        i + 1
                    )),
                    creditor_agent: Some(t.account_bank_code.clone()),
                }
            })
            .collect();
        StatusReport {
            header: self.report(msg_id, group),
            transactions,
        }
    }

    // --- answers and faults ---------------------------------------------------------------------

    /// The HTTP response of `a`, with the configured faults; `Err` closes the connection without an
    /// answer (hyper's way for a service error).
    fn respond(&self, a: Answer) -> Result<Response<Body>, io::Error> {
        let f = &self.faults;
        let mut status = a.status;
        let mut body = a.body;
        let mut cut = false;
        if let Some((key, attempt)) = &a.key {
            let k = key.as_bytes();
            if self.faults.hits(
                &self.dice,
                Roll::Drop,
                k,
                *attempt,
                f.drop_before_reply_permille,
            ) {
                // Processed (a submit is booked and paid), but no answer at all.
                self.ledger.note(Event::Dropped);
                debug!("fault: closing the connection without the answer");
                return Err(io::Error::other("fault: answer dropped"));
            }
            if a.fresh_accept
                && self.faults.hits(
                    &self.dice,
                    Roll::Duplicate,
                    k,
                    *attempt,
                    f.duplicate_reply_permille,
                )
            {
                // Answered as the spec answers a repeat: the same body, with 200.
                self.ledger.note(Event::Duplicated);
                status = StatusCode::OK;
            }
            let has_body = !body.is_empty();
            if has_body
                && self
                    .faults
                    .hits(&self.dice, Roll::Cut, k, *attempt, f.cut_reply_permille)
            {
                self.ledger.note(Event::Cut);
                debug!("fault: cutting the answer and closing the connection");
                cut = true;
            } else if has_body
                && self.faults.hits(
                    &self.dice,
                    Roll::Garble,
                    k,
                    *attempt,
                    f.garble_reply_permille,
                )
            {
                self.ledger.note(Event::Garbled);
                debug!("fault: garbled answer");
                body = garble(&body);
            }
        }
        let len = body.len();
        let content: Body = if cut {
            // The status line, the headers and half the body; a moment later (so that hyper has
            // flushed them) an error, on which hyper closes the connection short of the announced
            // length.
            let half = body.slice(..len / 2);
            let head = futures::stream::iter([Ok(Frame::data(half))]);
            let fail = futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(io::Error::other("fault: answer cut"))
            });
            BodyExt::boxed(StreamBody::new(futures::StreamExt::chain(head, fail)))
        } else {
            Full::new(body).map_err(|never| match never {}).boxed()
        };
        let mut resp = Response::new(content);
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(CONTENT_LENGTH, HeaderValue::from(len));
        if len > 0 {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(XML));
        }
        if a.retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from(self.retry_after_secs));
        }
        Ok(resp)
    }
}

/// The ledger's copy of an accepted batch (its items carry the personal data the ledger needs to see
/// a double payment; the status call reads `Batch`).
fn ledger_batch(doc: &pain001::Document, batch: &Batch) -> BankBatch {
    let (y, mo, d, h, mi, s) = batch.confirmed.parts();
    let today = beijing_now().parts();
    BankBatch {
        bank_batch_id: format!("B103{:011}", batch.serial % 100_000_000_000),
        accept_date: format!("{:04}{:02}{:02}", today.0, today.1, today.2),
        final_at: batch.final_at,
        confirm_date: format!("{y:04}{mo:02}{d:02}"),
        confirm_time: format!("{h:02}{mi:02}{s:02}"),
        items: doc
            .transactions
            .iter()
            .zip(&batch.txs)
            .map(|(t, b)| BankItem {
                seq: t.seq,
                account_no: t.account_no.clone(),
                id_no: t.id_no.clone(),
                amount: t.amount_fen,
                account_bank_code: t.account_bank_code.clone(),
                outcome: b.outcome.clone(),
            })
            .collect(),
    }
}

fn empty_ledger_batch(serial: u64) -> BankBatch {
    let now = Instant::now();
    BankBatch {
        bank_batch_id: format!("B103{:011}", serial % 100_000_000_000),
        accept_date: String::new(),
        final_at: now,
        confirm_date: String::new(),
        confirm_time: String::new(),
        items: Vec::new(),
    }
}

/// `settle_submit` of a known `MsgId` never calls its `book`; this is what it would book.
fn unreachable_book() -> BankBatch {
    empty_ledger_batch(0)
}

/// The reader's error as the reason of a `400` (the texts name element paths and offsets, never
/// values).
fn refusal_of(e: pain001::ReadError) -> Refusal {
    use pain001::ReadError as E;
    let code = match &e {
        E::NotUtf8 { .. } | E::Encoding { .. } => "UTF8",
        E::MoreThanOnePaymentInfo { .. } => "PMTINF",
        E::CountMismatch { .. } | E::SumMismatch { .. } => "CTRLSUM",
        E::Amount { .. } => "AMOUNT",
        E::Currency { .. } => "CURRENCY",
        _ => "SCHEMA",
    };
    let what = match code {
        "UTF8" => "body is not UTF-8: ",
        "PMTINF" => "more than one PmtInf: ",
        "CTRLSUM" => "totals mismatch: ",
        "AMOUNT" => "amount not in whole fen: ",
        "CURRENCY" => "amount not in CNY: ",
        _ => "schema error: ",
    };
    Refusal::new(code, format!("{what}{e}"))
}

/// `text` in lines of at most `max` characters (`AddtlInf` is `Max105Text`), at most 5 of them.
fn lines(text: &str, max: usize) -> Vec<String> {
    let chars: Vec<char> = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out: Vec<String> = chars
        .chunks(max)
        .take(5)
        .map(|c| c.iter().collect::<String>())
        .collect();
    out.retain(|l| !l.is_empty());
    if out.is_empty() {
        out.push("refused".to_owned());
    }
    out
}

/// The `GrpHdr/MsgId` of a body, found without reading it as XML (so that a repeat is recognised
/// whatever else is wrong with it): the text of the first element named `MsgId`, any prefix.
fn sniff_msg_id(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let mut rest = text;
    while let Some(i) = rest.find("MsgId>") {
        let before = &rest[..i];
        let after = &rest[i + "MsgId>".len()..];
        rest = after;
        // `<MsgId>` or `<p:MsgId>`, not `</MsgId>` nor `OrgnlMsgId>`.
        let tag_start = before.rfind('<')?;
        let name = &before[tag_start + 1..];
        if name.starts_with('/') || !(name.is_empty() || name.ends_with(':')) {
            continue;
        }
        let end = after.find('<')?;
        let id = &after[..end];
        if id.is_empty() || id.chars().count() > 35 || id.chars().any(char::is_control) {
            return None;
        }
        return Some(id.to_owned());
    }
    None
}

/// A body that is surely not a `pain.002`: half of it, then bytes no XML may hold.
fn garble(body: &Bytes) -> Bytes {
    let mut out = body.slice(..body.len() / 2).to_vec();
    out.extend_from_slice(b"\x00\x01 <<garbled>> &");
    Bytes::from(out)
}

fn reason_for(code: &str) -> &'static str {
    match code {
        "AC01" => "账户不存在 account does not exist",
        "AC04" => "账户已销户 account closed",
        "AC06" => "账户已冻结 account blocked",
        "BE01" => "户名不符 name does not match the account",
        "AC14" => "非社保卡账户 not a social security card account",
        "NARR" => "账户状态异常，请核实 account in an abnormal state, please check",
        _ => "其他 other",
    }
}

fn beijing(t: OffsetDateTime) -> BeijingTime {
    BeijingTime::new(
        u16::try_from(t.year()).unwrap_or(2000),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
    .unwrap_or_else(fallback_time)
}

fn fallback_time() -> BeijingTime {
    BeijingTime::new(2000, 1, 1, 0, 0, 0).unwrap_or_else(fallback_time)
}

fn beijing_now() -> BeijingTime {
    beijing(OffsetDateTime::now_utc().to_offset(BEIJING))
}

/// First batch serial: the start time in milliseconds, so two runs do not hand out the same ids.
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

/// Checks at start that the XSD is there and xmllint runs.
async fn check_xmllint(xsd: &std::path::Path) -> io::Result<()> {
    if !xsd.is_file() {
        return Err(invalid(format!("xsd {}: no such file", xsd.display())));
    }
    let out = tokio::process::Command::new("xmllint")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| {
            invalid(format!(
                "xsd is set but xmllint cannot be run ({e}): install libxml2-utils"
            ))
        })?;
    if !out.status.success() {
        return Err(invalid("xsd is set but `xmllint --version` failed"));
    }
    Ok(())
}

/// `xmllint --noout --schema XSD -` on `body`: `Err` says where (line and element, never values).
async fn xmllint(xsd: &std::path::Path, body: &[u8]) -> Result<(), String> {
    let mut child = tokio::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(xsd)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("the bank's validator could not run ({e})"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // xmllint may stop reading early on a broken body: a write error is not the verdict.
        let _ = stdin.write_all(body).await;
        drop(stdin);
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("the bank's validator failed ({e})"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(xmllint_problem(&String::from_utf8_lossy(&out.stderr)))
}

/// The first error of xmllint's report as `line N, element X` (its messages quote values: left out).
fn xmllint_problem(stderr: &str) -> String {
    for line in stderr.lines() {
        // "-:12: element InstdAmt: Schemas validity error : ..." or "-:3: parser error : ..."
        let mut parts = line.splitn(4, ':');
        let (Some(_file), Some(number), Some(what)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if number.trim().parse::<u64>().is_err() {
            continue;
        }
        let what = what.trim();
        let element = what
            .strip_prefix("element ")
            .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()));
        return match element {
            Some(e) => format!(
                "not valid against pain.001.001.09.xsd at line {}, element {e}",
                number.trim()
            ),
            None => format!(
                "not well-formed or not valid against pain.001.001.09.xsd at line {}",
                number.trim()
            ),
        };
    }
    "not valid against pain.001.001.09.xsd".to_owned()
}

async fn accept_loop(
    bank: Arc<Bank>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    token: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, peer)) => match Arc::clone(&permits).try_acquire_owned() {
                Ok(permit) => {
                    let bank = Arc::clone(&bank);
                    let acceptor = acceptor.clone();
                    connections.spawn(async move {
                        serve(bank, acceptor, stream, peer).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    bank.ledger.note(Event::ConnectionRefused);
                    debug!(
                        max = MAX_CONNECTIONS,
                        "connection over the limit: closing it"
                    );
                    drop(stream);
                }
            },
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
    drop(listener);
    connections.shutdown().await;
    debug!("bank B simulator stopped");
}

/// One connection: the TLS handshake (client certificate required), then HTTP/1.1 requests.
async fn serve(
    bank: Arc<Bank>,
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            Iso20022Stats::bump(&bank.stats.handshake_failures);
            bank.ledger.note(Event::ConnectionRefused);
            debug!(%peer, error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            Iso20022Stats::bump(&bank.stats.handshake_failures);
            bank.ledger.note(Event::ConnectionRefused);
            debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let bank = Arc::clone(&bank);
        async move {
            let answer = bank.handle(req).await;
            bank.respond(answer)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive(true);
    if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        bank_profiles::builtin()
            .expect("builtin")
            .remove("103241000018")
            .expect("bank B")
    }

    #[test]
    fn finds_the_msg_id_without_reading_xml() {
        let doc = |s: &str| sniff_msg_id(s.as_bytes());
        assert_eq!(
            doc("<Document><CstmrCdtTrfInitn><GrpHdr><MsgId>GW-1</MsgId>"),
            Some("GW-1".into())
        );
        assert_eq!(
            doc("<p:Document><p:GrpHdr><p:MsgId>GW-2</p:MsgId>"),
            Some("GW-2".into())
        );
        assert_eq!(
            doc("<OrgnlMsgId>X</OrgnlMsgId><MsgId>Y</MsgId>"),
            Some("Y".into())
        );
        assert_eq!(doc("<MsgId></MsgId>"), None);
        assert_eq!(doc(&format!("<MsgId>{}</MsgId>", "X".repeat(36))), None);
        assert_eq!(doc("no xml"), None);
        assert_eq!(sniff_msg_id(b"\xff<MsgId>X</MsgId>"), None);
    }

    #[test]
    fn outcomes_are_a_function_of_seed_msg_id_and_position() {
        let mut cfg = Iso20022SimConfig::new(profile());
        cfg.fail_permille = 300;
        let a = Bank::new(cfg.clone()).expect("bank");
        let b = Bank::new(cfg.clone()).expect("bank");
        cfg.seed = 9;
        let c = Bank::new(cfg).expect("bank");
        let run = |bank: &Bank| {
            (1..=200)
                .map(|i| bank.outcome("GW-1", i))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(&a), run(&b));
        assert_ne!(run(&a), run(&c));
        let failed = run(&a)
            .into_iter()
            .filter(|o| *o != ItemOutcome::Credited)
            .count();
        assert!((30..90).contains(&failed), "{failed}");
    }

    #[test]
    fn refuses_unusable_config() {
        let mut cfg = Iso20022SimConfig::new(profile());
        cfg.fail_codes = vec!["AC001".into()];
        assert!(Bank::new(cfg).is_err());
        let mut cfg = Iso20022SimConfig::new(profile());
        cfg.profile.iso20022 = None;
        assert!(Bank::new(cfg).is_err());
    }

    #[test]
    fn reasons_fit_addtl_inf_and_xmllint_output_is_summarised() {
        let l = lines(&"字".repeat(230), 105);
        assert_eq!(l.len(), 3);
        assert!(l.iter().all(|x| x.chars().count() <= 105));
        assert_eq!(lines("", 105), vec!["refused".to_owned()]);
        let p = xmllint_problem(
            "-:12: element InstdAmt: Schemas validity error : Element '{urn}InstdAmt': '1.234' is not valid\n- fails to validate\n",
        );
        assert_eq!(
            p,
            "not valid against pain.001.001.09.xsd at line 12, element InstdAmt"
        );
        assert!(!p.contains("1.234"));
        assert!(
            xmllint_problem("-:3: parser error : Opening and ending tag mismatch")
                .contains("line 3")
        );
    }

    #[test]
    fn garbled_bodies_are_never_xml() {
        let body = Bytes::from_static(b"<?xml version=\"1.0\"?><Document/>");
        let g = garble(&body);
        assert!(codecs::format::iso20022::pain002::read_document(&g).is_err());
    }
}
