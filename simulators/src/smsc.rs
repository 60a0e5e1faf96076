//! An SMS centre speaking SMPP 3.4 as `shared/specs/sms-smpp.md` describes it, for the gateway's tests.
//!
//! ```text
//! client                                       centre
//!   |-- bind_transceiver(system_id, password) -->|  credentials, at most `max_binds` per system_id
//!   |<-------------------- bind_transceiver_resp -|
//!   |-- submit_sm (x up to window) ------------->|  window full -> ESME_RTHROTTLED
//!   |<---------------------------- submit_sm_resp |  > rate/s (sliding, per system_id) -> RTHROTTLED
//!   |<--------------------- enquire_link (every n)|  faults: RMSGQFUL, dropped connection, lost resp
//!   |-- enquire_link_resp ---------------------->|
//!   |<------------- deliver_sm (receipt, 0x04) ---|  after receipt_delay + seeded jitter, one per part;
//!   |-- deliver_sm_resp ------------------------>|  unanswered receipts are sent again after a rebind
//! ```
//!
//! The PDUs are the shared codecs' (`codecs::format::smpp`), so the centre checks the gateway against
//! the same field rules the gateway writes by. Every accepted part goes into [`SmscLedger`]. The notice
//! key, if the client sends one, travels in the vendor TLV [`SmscSimConfig::key_tlv`] (default
//! `0x1400`, a C-octet string) and is booked with the part.
//!
//! Faults are data ([`SmscFaults`]) decided by seeded dice keyed on the message (destination, octets,
//! key) and how often it was seen, so a scenario replays the same way whatever the interleaving.
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use codecs::format::smpp::pdu::{self, command_id, status};
use codecs::format::smpp::rusmpp::Command;
use codecs::format::smpp::text::{self, DATA_CODING_UCS2};
use codecs::format::smpp::{Inbound, ReceiptText, SmppCodec, SmscTime, Stat};
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

mod ledger;

use ledger::Count;
pub use ledger::{AcceptedPart, AssembledMessage, SmscLedger};

/// Beijing time, for receipt dates.
const BEIJING: UtcOffset = time::macros::offset!(+8);

/// Faults to inject; `Default` injects none. Shares in permille.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmscFaults {
    /// Share of `submit_sm`s on which the centre closes the connection instead of processing them:
    /// that one and everything after it on the connection are neither accepted nor answered (what
    /// was answered before is flushed first).
    pub drop_connection_permille: u32,
    /// Share of `submit_sm`s accepted and booked whose response is lost: the connection closes
    /// instead (the ambiguous case for the client).
    pub lose_resp_permille: u32,
    /// Share of `submit_sm`s answered `ESME_RMSGQFUL`.
    pub queue_full_permille: u32,
    /// Share of parts whose receipt is never sent.
    pub receipt_never_permille: u32,
    /// Share of parts whose receipt comes `receipt_late` later than usual.
    pub receipt_late_permille: u32,
    /// The extra delay of a late receipt.
    #[serde(with = "duration_ms")]
    pub receipt_late: Duration,
    /// Share of parts reported `UNDELIV` instead of `DELIVRD`.
    pub undelivered_permille: u32,
    /// Most connection faults (`drop_connection` + `lose_resp`) in a run; `0` = no limit.
    pub max_connection_faults: u32,
}

/// A `Duration` as milliseconds in config.
mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// How the simulated centre behaves.
#[derive(Clone)]
pub struct SmscSimConfig {
    /// The client's `system_id`.
    pub system_id: String,
    /// The client's password.
    pub password: String,
    /// The centre's own `system_id` in `bind_transceiver_resp`.
    pub centre_id: String,
    /// Seed of every random decision.
    pub seed: u64,
    /// Binds allowed at once per `system_id` (the interface says 2).
    pub max_binds: usize,
    /// `submit_sm`s outstanding per bind before `ESME_RTHROTTLED` (10).
    pub window: usize,
    /// Parts accepted per `system_id` in any one second (sliding); `0` = no limit (100).
    pub rate_per_second: usize,
    /// Delay before each `submit_sm_resp` (so a window can fill).
    pub resp_delay: Duration,
    /// Base delay of a receipt after acceptance.
    pub receipt_delay: Duration,
    /// Seeded random extra delay of a receipt, `0..receipt_jitter`.
    pub receipt_jitter: Duration,
    /// Send receipts at all (`registered_delivery` 1 asks for them).
    pub receipts: bool,
    /// How long a receipt waits for its `deliver_sm_resp` before it is sent again.
    pub receipt_resend_after: Duration,
    /// Interval of the centre's own `enquire_link`s; `None` sends none.
    pub enquire_link_interval: Option<Duration>,
    /// The vendor TLV read as the notice key.
    pub key_tlv: u16,
    /// Faults to inject.
    pub faults: SmscFaults,
}

impl std::fmt::Debug for SmscSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmscSimConfig")
            .field("system_id", &self.system_id)
            .field("password", &"***")
            .field("seed", &self.seed)
            .field("max_binds", &self.max_binds)
            .field("window", &self.window)
            .field("rate_per_second", &self.rate_per_second)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl SmscSimConfig {
    /// The interface's numbers: 2 binds, window 10, 100 parts/s, receipts after 50-150 ms, no
    /// centre-side `enquire_link`, key TLV `0x1400`, seed 1, no faults.
    pub fn new(system_id: &str, password: &str) -> Self {
        Self {
            system_id: system_id.to_owned(),
            password: password.to_owned(),
            centre_id: "SIMSMSC".to_owned(),
            seed: 1,
            max_binds: 2,
            window: 10,
            rate_per_second: 100,
            resp_delay: Duration::ZERO,
            receipt_delay: Duration::from_millis(50),
            receipt_jitter: Duration::from_millis(100),
            receipts: true,
            receipt_resend_after: Duration::from_secs(5),
            enquire_link_interval: None,
            key_tlv: pdu::tag::VENDOR_FIRST,
            faults: SmscFaults::default(),
        }
    }
}

/// Seeded, stateless dice (FNV-1a then SplitMix64): the same inputs give the same number anywhere.
#[derive(Debug, Clone, Copy)]
struct Dice(u64);

impl Dice {
    fn number(&self, what: &str, key: u64, n: u64) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for chunk in [
            &self.0.to_le_bytes()[..],
            what.as_bytes(),
            &key.to_le_bytes(),
            &n.to_le_bytes(),
        ] {
            for b in (chunk.len() as u64).to_le_bytes().iter().chain(chunk) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn hits(&self, what: &str, key: u64, n: u64, permille: u32) -> bool {
        permille > 0 && self.number(what, key, n) % 1000 < u64::from(permille)
    }
}

fn fnv(bytes: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in bytes {
        for b in (chunk.len() as u64).to_le_bytes().iter().chain(*chunk) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// A receipt waiting to be sent or answered.
#[derive(Clone)]
struct PendingReceipt {
    due: Instant,
    message_id: String,
    recipient: String,
    service_number: String,
    stat: Stat,
    submitted: SmscTime,
    text: String,
}

/// What the sessions share.
struct Centre {
    cfg: SmscSimConfig,
    dice: Dice,
    ledger: Arc<SmscLedger>,
    state: Mutex<State>,
    next_message_id: AtomicU64,
    next_connection: AtomicU64,
    silent: AtomicBool,
    /// Bumped by [`SmscHandle::drop_connections`]: every session ends.
    kick: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    binds: HashMap<String, usize>,
    accepted_at: HashMap<String, VecDeque<Instant>>,
    attempts: HashMap<u64, u64>,
    connection_faults: u32,
    /// Receipts to send, per `system_id`.
    outbox: HashMap<String, Vec<PendingReceipt>>,
}

impl Centre {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The SMS centre simulator.
#[derive(Debug)]
pub struct SmscSim;

impl SmscSim {
    /// Serves `listener` in a new task until [`SmscHandle::shutdown`].
    ///
    /// # Errors
    /// The listener's error when its address cannot be read.
    pub fn start(cfg: SmscSimConfig, listener: TcpListener) -> io::Result<SmscHandle> {
        let addr = listener.local_addr()?;
        let ledger = Arc::new(SmscLedger::new());
        let (kick, _) = watch::channel(0);
        let centre = Arc::new(Centre {
            dice: Dice(cfg.seed),
            cfg,
            ledger: Arc::clone(&ledger),
            state: Mutex::new(State::default()),
            next_message_id: AtomicU64::new(1),
            next_connection: AtomicU64::new(1),
            silent: AtomicBool::new(false),
            kick,
        });
        let token = CancellationToken::new();
        let task = tokio::spawn(accept_loop(Arc::clone(&centre), listener, token.clone()));
        info!(%addr, "SMS centre simulator listening");
        Ok(SmscHandle {
            addr,
            ledger,
            centre,
            token,
            task,
        })
    }
}

/// A running centre.
pub struct SmscHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its books.
    pub ledger: Arc<SmscLedger>,
    centre: Arc<Centre>,
    token: CancellationToken,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for SmscHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmscHandle")
            .field("addr", &self.addr)
            .field("ledger", &self.ledger)
            .finish_non_exhaustive()
    }
}

impl SmscHandle {
    /// Closes every open connection now (answered responses are flushed first), as a network loss.
    pub fn drop_connections(&self) {
        self.centre.kick.send_modify(|n| *n += 1);
    }

    /// While silent the centre reads nothing and sends nothing, keeping connections open (a hung peer).
    pub fn set_silent(&self, silent: bool) {
        self.centre.silent.store(silent, Ordering::SeqCst);
    }

    /// Binds open now.
    pub fn binds_open(&self) -> usize {
        self.centre.lock().binds.values().sum()
    }

    /// Receipts not yet answered by a client.
    pub fn receipts_pending(&self) -> usize {
        self.centre.lock().outbox.values().map(Vec::len).sum()
    }

    /// Stops accepting, closes every connection and waits until the server is gone.
    pub async fn shutdown(self) {
        self.token.cancel();
        if let Err(e) = self.task.await {
            warn!(error = %e, "SMS centre task ended abnormally");
        }
    }
}

async fn accept_loop(centre: Arc<Centre>, listener: TcpListener, token: CancellationToken) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            () = token.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    centre.ledger.count(Count::Connection);
                    let c = Arc::clone(&centre);
                    let t = token.child_token();
                    sessions.spawn(async move { Session::run(c, stream, peer, t).await });
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    sessions.shutdown().await;
}

/// Why a session ends.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Peer closed or unbound, or the centre shut down.
    Normal,
    /// Closed on purpose (fault or `drop_connections`).
    Dropped,
}

struct Session {
    centre: Arc<Centre>,
    connection: u64,
    tx: mpsc::UnboundedSender<Command>,
    bound: Option<String>,
    seq: u32,
    outstanding: Arc<AtomicUsize>,
    /// Cancelled when the connection closes: delayed responses are then lost, not sent.
    stop: CancellationToken,
    /// Receipts sent and not yet answered, by sequence number, with when they were sent.
    in_flight: HashMap<u32, (Instant, PendingReceipt)>,
    last_enquire: Instant,
}

impl Session {
    async fn run(
        centre: Arc<Centre>,
        stream: TcpStream,
        peer: SocketAddr,
        token: CancellationToken,
    ) {
        let connection = centre.next_connection.fetch_add(1, Ordering::Relaxed);
        let (rd, wr) = stream.into_split();
        let mut reader = FramedRead::new(rd, SmppCodec::default());
        let (tx, mut rx) = mpsc::unbounded_channel::<Command>();
        let stop = CancellationToken::new();
        let writer_stop = stop.clone();
        let writer = tokio::spawn(async move {
            let mut w = FramedWrite::new(wr, SmppCodec::default());
            loop {
                let cmd = tokio::select! {
                    biased;
                    cmd = rx.recv() => cmd,
                    // Closing: what is queued goes out, responses still being delayed do not.
                    () = writer_stop.cancelled() => rx.try_recv().ok(),
                };
                let Some(cmd) = cmd else { break };
                if let Err(e) = w.send(cmd).await {
                    debug!(error = %e, "centre write failed");
                    break;
                }
            }
            // FIN after everything queued: answered responses reach the client before the close.
            let _ = tokio::io::AsyncWriteExt::shutdown(w.get_mut()).await;
        });
        let mut kick = centre.kick.subscribe();
        kick.mark_unchanged();
        let mut s = Session {
            centre,
            connection,
            tx,
            bound: None,
            seq: 0,
            outstanding: Arc::new(AtomicUsize::new(0)),
            stop,
            in_flight: HashMap::new(),
            last_enquire: Instant::now(),
        };
        debug!(%peer, connection, "centre connection open");
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        // Frames read just as the centre went silent wait here until it speaks again.
        let mut held: VecDeque<Inbound> = VecDeque::new();
        let end = loop {
            if s.centre.silent.load(Ordering::SeqCst) {
                tokio::select! {
                    () = token.cancelled() => break End::Normal,
                    _ = kick.changed() => break End::Dropped,
                    _ = tokio::time::sleep(Duration::from_millis(10)) => continue,
                }
            }
            let frame = if let Some(f) = held.pop_front() {
                Some(Ok(f))
            } else {
                tokio::select! {
                    () = token.cancelled() => break End::Normal,
                    _ = kick.changed() => {
                        s.centre.ledger.count(Count::DroppedConnection);
                        break End::Dropped;
                    }
                    _ = tick.tick() => {
                        s.on_tick();
                        continue;
                    }
                    frame = reader.next() => frame,
                }
            };
            if s.centre.silent.load(Ordering::SeqCst)
                && let Some(Ok(f)) = frame
            {
                held.push_back(f);
                continue;
            }
            match frame {
                None => break End::Normal,
                Some(Err(e)) => {
                    debug!(error = %e, "centre read failed");
                    break End::Normal;
                }
                Some(Ok(Inbound::Malformed { header, error })) => {
                    s.centre.ledger.count(Count::Malformed);
                    warn!(%error, "centre read a malformed PDU");
                    if !header.is_response() {
                        s.send(pdu::bodiless(
                            command_id::GENERIC_NACK,
                            status::RINVCMDLEN,
                            header.sequence_number,
                        ));
                    }
                }
                Some(Ok(Inbound::Pdu(cmd))) => {
                    if let Err(end) = s.on_pdu(*cmd) {
                        break end;
                    }
                }
            }
        };
        s.close(end, writer).await;
        // Drain briefly what the client still sends, so the close is a FIN rather than a reset that
        // could discard the responses just flushed; nothing read here is processed.
        let _ = tokio::time::timeout(Duration::from_millis(50), async {
            while let Some(Ok(_)) = reader.next().await {}
        })
        .await;
        debug!(connection, "centre connection closed");
    }

    fn send(&self, cmd: Command) {
        let _ = self.tx.send(cmd);
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = if self.seq >= 0x7FFF_FFFF {
            1
        } else {
            self.seq + 1
        };
        self.seq
    }

    async fn close(mut self, _end: End, writer: JoinHandle<()>) {
        if let Some(system_id) = self.bound.take() {
            let mut st = self.centre.lock();
            if let Some(n) = st.binds.get_mut(&system_id) {
                *n = n.saturating_sub(1);
            }
            // Unanswered receipts go back to the outbox: another bind gets them.
            let back: Vec<PendingReceipt> = self.in_flight.drain().map(|(_, (_, r))| r).collect();
            st.outbox.entry(system_id).or_default().extend(back);
        }
        self.stop.cancel();
        drop(self.tx);
        let _ = writer.await;
    }

    fn on_tick(&mut self) {
        let Some(system_id) = self.bound.clone() else {
            return;
        };
        let now = Instant::now();
        // Receipts due, and those unanswered for too long, go out.
        let resend_after = self.centre.cfg.receipt_resend_after;
        let stale: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, (sent, _))| now.duration_since(*sent) >= resend_after)
            .map(|(seq, _)| *seq)
            .collect();
        let mut to_send: Vec<PendingReceipt> = stale
            .into_iter()
            .filter_map(|seq| self.in_flight.remove(&seq).map(|(_, r)| r))
            .collect();
        {
            let mut st = self.centre.lock();
            if let Some(q) = st.outbox.get_mut(&system_id) {
                let (due, later): (Vec<_>, Vec<_>) = q.drain(..).partition(|r| r.due <= now);
                *q = later;
                to_send.extend(due);
            }
        }
        for r in to_send {
            self.send_receipt(r, now);
        }
        if let Some(every) = self.centre.cfg.enquire_link_interval
            && now.duration_since(self.last_enquire) >= every
        {
            self.last_enquire = now;
            let seq = self.next_seq();
            self.send(pdu::bodiless(command_id::ENQUIRE_LINK, status::ROK, seq));
            self.centre.ledger.count(Count::EnquireLinkSent);
        }
    }

    fn send_receipt(&mut self, r: PendingReceipt, now: Instant) {
        let done = beijing_now();
        let receipt = ReceiptText {
            id: r.message_id.clone(),
            sub: Some(1),
            dlvrd: Some(u32::from(r.stat == Stat::Delivered)),
            submit_date: Some(r.submitted),
            done_date: Some(done),
            stat: r.stat.clone(),
            err: Some(
                if r.stat == Stat::Delivered {
                    "000"
                } else {
                    "001"
                }
                .to_owned(),
            ),
            text: Some(r.text.clone()),
        };
        let seq = self.next_seq();
        match pdu::deliver_sm_receipt(
            seq,
            &r.recipient,
            &r.service_number,
            &receipt.to_text(),
            &r.message_id,
            &r.stat,
        ) {
            Ok(cmd) => {
                self.send(cmd);
                self.centre.ledger.count(Count::ReceiptSent);
                self.in_flight.insert(seq, (now, r));
            }
            Err(e) => warn!(error = %e, "receipt cannot be built"),
        }
    }

    fn on_pdu(&mut self, cmd: Command) -> Result<(), End> {
        let seq = cmd.sequence_number;
        let id = pdu::id_of(&cmd);
        match id {
            command_id::BIND_TRANSCEIVER => self.on_bind(&cmd),
            command_id::SUBMIT_SM => return self.on_submit(&cmd),
            command_id::ENQUIRE_LINK => {
                self.centre.ledger.count(Count::EnquireLinkReceived);
                self.send(pdu::bodiless(
                    command_id::response_of(command_id::ENQUIRE_LINK),
                    status::ROK,
                    seq,
                ));
            }
            x if x == command_id::response_of(command_id::ENQUIRE_LINK) => {
                self.centre.ledger.count(Count::EnquireLinkRespReceived);
            }
            x if x == command_id::response_of(command_id::DELIVER_SM) => {
                if let Some((_, r)) = self.in_flight.remove(&seq) {
                    match pdu::status_of(&cmd) {
                        status::ROK => self.centre.ledger.count(Count::ReceiptAcked),
                        st => {
                            self.centre.ledger.count(Count::ReceiptNacked);
                            if st != status::RX_P_APPN
                                && let Some(system_id) = &self.bound
                            {
                                // Temporary: offer it again a little later.
                                let mut again = r;
                                again.due = Instant::now() + Duration::from_millis(200);
                                self.centre
                                    .lock()
                                    .outbox
                                    .entry(system_id.clone())
                                    .or_default()
                                    .push(again);
                            }
                        }
                    }
                }
            }
            command_id::UNBIND => {
                self.centre.ledger.count(Count::Unbind);
                self.send(pdu::bodiless(
                    command_id::response_of(command_id::UNBIND),
                    status::ROK,
                    seq,
                ));
                return Err(End::Normal);
            }
            x if x == command_id::GENERIC_NACK => {
                warn!(status = pdu::status_of(&cmd), "client sent generic_nack");
            }
            x if x & 0x8000_0000 != 0 => {}
            _ => self.send(pdu::bodiless(
                command_id::GENERIC_NACK,
                status::RINVCMDID,
                seq,
            )),
        }
        Ok(())
    }

    fn on_bind(&mut self, cmd: &Command) {
        let seq = cmd.sequence_number;
        let cfg = &self.centre.cfg;
        let answer = |st: u32| pdu::bind_transceiver_resp(seq, st, &cfg.centre_id);
        let status = match pdu::read_bind_transceiver(cmd) {
            _ if self.bound.is_some() => status::RALYBND,
            None => status::RSYSERR,
            Some(b) if b.system_id != cfg.system_id => status::RINVSYSID,
            Some(b) if b.password != cfg.password => status::RINVPASWD,
            Some(b) => {
                let mut st = self.centre.lock();
                let n = st.binds.entry(b.system_id.clone()).or_default();
                if *n >= cfg.max_binds {
                    status::RBINDFAIL
                } else {
                    *n += 1;
                    drop(st);
                    self.bound = Some(b.system_id);
                    status::ROK
                }
            }
        };
        self.centre.ledger.count(if status == status::ROK {
            Count::BindOk
        } else {
            Count::BindRefused
        });
        match answer(status) {
            Ok(c) => self.send(c),
            Err(e) => warn!(error = %e, "bind response cannot be built"),
        }
    }

    fn respond_submit(&self, seq: u32, st: u32, message_id: &str) {
        match pdu::submit_sm_resp(seq, st, message_id) {
            Ok(c) => self.send(c),
            Err(e) => warn!(error = %e, "submit_sm_resp cannot be built"),
        }
    }

    fn on_submit(&mut self, cmd: &Command) -> Result<(), End> {
        let seq = cmd.sequence_number;
        self.centre.ledger.count(Count::SubmitSeen);
        let Some(system_id) = self.bound.clone() else {
            self.centre.ledger.count(Count::Rejected);
            self.respond_submit(seq, status::RINVBNDSTS, "");
            return Ok(());
        };
        let Some(sm) = pdu::read_submit_sm(cmd) else {
            self.centre.ledger.count(Count::Rejected);
            self.respond_submit(seq, status::RSYSERR, "");
            return Ok(());
        };
        let cfg = &self.centre.cfg;
        if self.outstanding.load(Ordering::SeqCst) >= cfg.window {
            self.centre.ledger.count(Count::ThrottledWindow);
            self.respond_submit(seq, status::RTHROTTLED, "");
            return Ok(());
        }
        // Field checks of the interface: a client that gets these wrong gets an error, not a pass.
        let dest_ok = sm.destination.ton == 1
            && sm.destination.npi == 1
            && sm.destination.addr.len() == 13
            && sm.destination.addr.starts_with("86")
            && sm.destination.addr.bytes().all(|b| b.is_ascii_digit());
        let src_ok = sm.source.ton == 0 && sm.source.npi == 1 && !sm.source.addr.is_empty();
        let read = text::read_udh(sm.esm_class, &sm.short_message);
        let (concat, text) = match (&read, sm.data_coding) {
            (Ok((c, ud)), DATA_CODING_UCS2) => match text::decode_ucs2(ud) {
                Ok(t) => (*c, t),
                Err(_) => (None, String::new()),
            },
            _ => (None, String::new()),
        };
        let reject = if !dest_ok {
            Some(status::RINVDSTADR)
        } else if !src_ok {
            Some(status::RINVSRCADR)
        } else if read.is_err() || (sm.esm_class & 0x40 != 0 && concat.is_none()) {
            Some(status::RINVESMCLASS)
        } else if sm.data_coding != DATA_CODING_UCS2 || text.is_empty() {
            Some(status::RINVMSGLEN)
        } else {
            None
        };
        if let Some(st) = reject {
            self.centre.ledger.count(Count::Rejected);
            self.respond_submit(seq, st, "");
            return Ok(());
        }
        let notice_key = sm.tlv_c_string(cfg.key_tlv);
        let key = fnv(&[
            sm.destination.addr.as_bytes(),
            &sm.short_message,
            notice_key.as_deref().unwrap_or("").as_bytes(),
        ]);
        let faults = &cfg.faults;
        let dice = self.centre.dice;
        let now = Instant::now();
        let mut st = self.centre.lock();
        let attempt = {
            let a = st.attempts.entry(key).or_default();
            *a += 1;
            *a
        };
        let faults_left = faults.max_connection_faults == 0
            || st.connection_faults < faults.max_connection_faults;
        if faults_left && dice.hits("drop", key, attempt, faults.drop_connection_permille) {
            st.connection_faults += 1;
            drop(st);
            self.centre.ledger.count(Count::DroppedConnection);
            return Err(End::Dropped);
        }
        if dice.hits("queue-full", key, attempt, faults.queue_full_permille) {
            drop(st);
            self.centre.ledger.count(Count::QueueFull);
            self.respond_submit(seq, status::RMSGQFUL, "");
            return Ok(());
        }
        if cfg.rate_per_second > 0 {
            let q = st.accepted_at.entry(system_id.clone()).or_default();
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                q.pop_front();
            }
            if q.len() >= cfg.rate_per_second {
                drop(st);
                self.centre.ledger.count(Count::ThrottledRate);
                self.respond_submit(seq, status::RTHROTTLED, "");
                return Ok(());
            }
            q.push_back(now);
        }
        let lose = faults_left && dice.hits("lose-resp", key, attempt, faults.lose_resp_permille);
        if lose {
            st.connection_faults += 1;
        }
        let n = self.centre.next_message_id.fetch_add(1, Ordering::Relaxed);
        let message_id = format!("{n:010}");
        // The receipt, decided now from the same dice.
        if cfg.receipts && sm.registered_delivery & 0x03 != 0 {
            if dice.hits("receipt-never", key, attempt, faults.receipt_never_permille) {
                self.centre.ledger.count(Count::ReceiptWithheld);
            } else {
                let jitter_ms = u64::try_from(cfg.receipt_jitter.as_millis()).unwrap_or(0);
                let mut delay = cfg.receipt_delay
                    + Duration::from_millis(if jitter_ms == 0 {
                        0
                    } else {
                        dice.number("receipt-delay", key, attempt) % jitter_ms
                    });
                if dice.hits("receipt-late", key, attempt, faults.receipt_late_permille) {
                    delay += faults.receipt_late;
                }
                let stat = if dice.hits("undelivered", key, attempt, faults.undelivered_permille) {
                    Stat::Undeliverable
                } else {
                    Stat::Delivered
                };
                let ascii: String = text
                    .chars()
                    .take(20)
                    .map(|c| {
                        if c.is_ascii_graphic() || c == ' ' {
                            c
                        } else {
                            '?'
                        }
                    })
                    .collect();
                st.outbox
                    .entry(system_id.clone())
                    .or_default()
                    .push(PendingReceipt {
                        due: now + delay,
                        message_id: message_id.clone(),
                        recipient: sm.destination.addr.clone(),
                        service_number: sm.source.addr.clone(),
                        stat,
                        submitted: beijing_now(),
                        text: ascii,
                    });
            }
        }
        drop(st);
        self.centre.ledger.accept(AcceptedPart {
            message_id: message_id.clone(),
            system_id,
            destination: sm.destination.addr.clone(),
            source: sm.source.addr.clone(),
            text,
            concat,
            notice_key,
            at: now,
            connection: self.connection,
        });
        if lose {
            self.centre.ledger.count(Count::LostResp);
            return Err(End::Dropped);
        }
        let delay = cfg.resp_delay;
        if delay.is_zero() {
            self.respond_submit(seq, status::ROK, &message_id);
        } else {
            self.outstanding.fetch_add(1, Ordering::SeqCst);
            let tx = self.tx.clone();
            let outstanding = Arc::clone(&self.outstanding);
            let stop = self.stop.clone();
            let ledger = Arc::clone(&self.centre.ledger);
            tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {
                        if let Ok(c) = pdu::submit_sm_resp(seq, status::ROK, &message_id) {
                            let _ = tx.send(c);
                        }
                    }
                    // Booked, and the connection went before the answer: a lost response.
                    () = stop.cancelled() => ledger.count(Count::LostResp),
                }
                outstanding.fetch_sub(1, Ordering::SeqCst);
            });
        }
        Ok(())
    }
}

fn beijing_now() -> SmscTime {
    let t = OffsetDateTime::now_utc().to_offset(BEIJING);
    SmscTime {
        year: u16::try_from(t.year()).unwrap_or(2000).clamp(2000, 2099),
        month: u8::from(t.month()),
        day: t.day(),
        hour: t.hour(),
        minute: t.minute(),
        second: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_from_toml_and_refuse_unknown_keys() {
        let f: SmscFaults =
            toml::from_str("queue_full_permille = 20\nreceipt_late = 1500").expect("faults");
        assert_eq!(f.queue_full_permille, 20);
        assert_eq!(f.receipt_late, Duration::from_millis(1500));
        assert!(toml::from_str::<SmscFaults>("drop = 1").is_err());
        let again: SmscFaults = toml::from_str(&toml::to_string(&f).expect("ser")).expect("de");
        assert_eq!(again, f);
    }

    #[test]
    fn dice_are_stable() {
        let d = Dice(7);
        assert_eq!(d.number("x", 1, 2), Dice(7).number("x", 1, 2));
        assert_ne!(d.number("x", 1, 2), d.number("y", 1, 2));
        let hits = (0..10_000).filter(|n| d.hits("x", 5, *n, 100)).count();
        assert!((800..1200).contains(&hits), "{hits}");
    }

    #[test]
    fn config_debug_hides_the_password() {
        let c = SmscSimConfig::new("gw", "s3cr3t");
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
