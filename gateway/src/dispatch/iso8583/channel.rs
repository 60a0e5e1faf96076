//! A pipelined ISO 8583 channel: up to `max_connections` TCP connections, each signed on before any
//! other traffic, kept alive by echo, carrying up to `window` outstanding requests matched to their
//! replies by STAN (F11), in any order.
//!
//! ```text
//! call(0200 STAN 000123) --> [window permit] --> pending{000123} --> write frame
//!                                         reader task: frame --> F11 000123 --> MAC check --> caller
//! ```
//! A connection that breaks fails every request outstanding on it with [`CallError::Lost`]; the next
//! call connects again (and signs on again). A connection that carried no request for
//! `release_after` (half the bank's idle limit) is closed: a gateway with nothing to send does not
//! keep the bank's connections, which the bank counts per client, from other instances that have
//! work (the bank closes at once a connection over its limit; with `gateway.instances` wrong, an
//! instance holding idle connections would otherwise starve another one forever). A reply whose MAC does not verify is handed to its caller
//! as [`CallError::BadMac`]: not believed. Frames that cannot be read, and replies nobody waits for
//! (duplicates, late ones), are logged and dropped.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use codecs::format::iso8583::mac::{encode_with_mac, verify_mac};
use codecs::format::iso8583::message::{decode, encode};
use codecs::format::iso8583::{Message, MessageSpec};
use codecs::framing::U16LenCodec;
use codecs::mac::{MacAlg, MacKey};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex, Semaphore, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::ops::metrics;

/// How the channel talks.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Bank code (logs, metrics).
    pub bank: String,
    /// `host:port`.
    pub endpoint: String,
    /// Connections at most.
    pub max_connections: usize,
    /// Outstanding requests per connection at most.
    pub window: usize,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Echo period (zero: none).
    pub echo_interval: Duration,
    /// A connection without a request (echoes aside) for this long is closed (zero: kept).
    pub release_after: Duration,
    /// Largest message.
    pub max_frame: usize,
    /// F32: the gateway's institution code.
    pub institution: String,
    /// MTI of network management requests and replies.
    pub network_mti: (String, String),
    /// F70 of sign-on, echo.
    pub sign_on: String,
    /// F70 of an echo.
    pub echo: String,
    /// F39 answers that mean "sign on again" (the connection is dropped; the next call signs on).
    pub sign_on_again: Vec<String>,
}

/// Why a call gave no believable reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// Nothing was sent (no connection, sign-on refused, message not encodable).
    #[error("nothing sent: {0}")]
    NotSent(String),
    /// Sent, but no reply in time.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// Sent (perhaps), but the connection broke before the reply.
    #[error("the connection broke before the reply")]
    Lost,
    /// A reply came whose MAC does not verify: not believed.
    #[error("the reply's MAC does not verify")]
    BadMac,
}

impl CallError {
    /// Whether the bank certainly did not get the request.
    pub fn nothing_sent(&self) -> bool {
        matches!(self, Self::NotSent(_))
    }
}

type Waiter = oneshot::Sender<Result<Message, CallError>>;

struct Conn {
    id: u64,
    writer: Mutex<FramedWrite<OwnedWriteHalf, U16LenCodec>>,
    pending: StdMutex<HashMap<String, Waiter>>,
    window: Semaphore,
    closed: CancellationToken,
    /// When the last request other than an echo was made on it.
    last_used: StdMutex<std::time::Instant>,
}

impl Conn {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiter>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn used(&self) {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = std::time::Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }

    fn close(&self) {
        self.closed.cancel();
        for (_, w) in self.pending().drain() {
            let _ = w.send(Err(CallError::Lost));
        }
    }
}

/// The channel to one ISO 8583 bank.
pub struct Channel {
    cfg: ChannelConfig,
    spec: Arc<MessageSpec>,
    alg: MacAlg,
    key: Arc<MacKey>,
    slots: Vec<Mutex<Option<Arc<Conn>>>>,
    rr: AtomicUsize,
    stan: AtomicU32,
    conn_ids: AtomicU64,
    /// After a failed connect or sign-on: no new attempt before this instant; the delay doubles
    /// (100 ms .. 5 s) while failures go on, so a bank refusing connections is not hammered.
    reconnect: StdMutex<(std::time::Instant, Duration)>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("endpoint", &self.cfg.endpoint)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// `MMDDhhmmss`, `hhmmss`, `MMDD` of now, Beijing time.
pub fn beijing_stamps(now: time::OffsetDateTime) -> (String, String, String) {
    let t = now.to_offset(crate::clock::SHANGHAI);
    let mmdd = format!("{:02}{:02}", u8::from(t.month()), t.day());
    let hms = format!("{:02}{:02}{:02}", t.hour(), t.minute(), t.second());
    (format!("{mmdd}{hms}"), hms, mmdd)
}

impl Channel {
    /// A channel; nothing connects until the first call.
    pub fn new(cfg: ChannelConfig, spec: MessageSpec, alg: MacAlg, key: MacKey) -> Self {
        let slots = (0..cfg.max_connections.max(1))
            .map(|_| Mutex::new(None))
            .collect();
        Self {
            cfg,
            spec: Arc::new(spec),
            alg,
            key: Arc::new(key),
            slots,
            rr: AtomicUsize::new(0),
            stan: AtomicU32::new(0),
            conn_ids: AtomicU64::new(0),
            reconnect: StdMutex::new((std::time::Instant::now(), Duration::ZERO)),
        }
    }

    /// The field table.
    pub fn spec(&self) -> &MessageSpec {
        &self.spec
    }

    /// A STAN not outstanding anywhere: a counter over 000001..=989999 (far more than can ever be
    /// outstanding at once).
    pub fn next_stan(&self) -> String {
        let n = self.stan.fetch_add(1, Ordering::Relaxed) % 989_999 + 1;
        format!("{n:06}")
    }

    /// Sends a request that carries a MAC (F128) and waits for its reply, whose MAC is checked.
    pub async fn call(&self, msg: &Message) -> Result<Message, CallError> {
        let conn = self.conn().await?;
        conn.used();
        let reply = self.exchange(&conn, msg, true).await?;
        if let Some(code) = reply.text(39)
            && self.cfg.sign_on_again.iter().any(|c| c == code)
        {
            info!(bank = %self.cfg.bank, conn = conn.id, "the bank says we are not signed on: reconnecting");
            conn.close();
        }
        Ok(reply)
    }

    /// Sends an echo on every live connection; one that does not answer is closed.
    pub async fn keep_alive(&self) {
        for slot in &self.slots {
            let conn = slot.lock().await.clone();
            if let Some(c) = conn.filter(|c| !c.closed.is_cancelled()) {
                let msg = self.network(&self.cfg.echo);
                if let Err(e) = self.exchange(&c, &msg, false).await {
                    warn!(bank = %self.cfg.bank, conn = c.id, error = %e, "echo failed: closing the connection");
                    c.close();
                }
            }
        }
    }

    /// Closes every connection (outstanding calls fail with `Lost`).
    pub async fn close_all(&self) {
        for slot in &self.slots {
            if let Some(c) = slot.lock().await.take() {
                c.close();
            }
        }
    }

    fn network(&self, code: &str) -> Message {
        let (f7, _, _) = beijing_stamps(time::OffsetDateTime::now_utc());
        Message::new(self.cfg.network_mti.0.clone())
            .with(7, f7)
            .with(11, self.next_stan())
            .with(32, self.cfg.institution.clone())
            .with(70, code.to_owned())
    }

    async fn conn(&self) -> Result<Arc<Conn>, CallError> {
        let n = self.slots.len();
        let start = self.rr.fetch_add(1, Ordering::Relaxed) % n;
        // A live connection with room first; else (re)connect the chosen slot.
        for i in 0..n {
            let mut slot = self.slots[(start + i) % n].lock().await;
            // A closed connection leaves its slot, so its socket is really closed (the bank counts
            // connections, and refuses a fifth).
            if slot.as_ref().is_some_and(|c| c.closed.is_cancelled()) {
                *slot = None;
            }
            if let Some(c) = slot.as_ref()
                && c.window.available_permits() > 0
            {
                return Ok(c.clone());
            }
        }
        let mut slot = self.slots[start].lock().await;
        if let Some(c) = slot.as_ref()
            && !c.closed.is_cancelled()
        {
            return Ok(c.clone());
        }
        *slot = None;
        let c = self.connect().await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn connect(&self) -> Result<Arc<Conn>, CallError> {
        {
            let r = self
                .reconnect
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if std::time::Instant::now() < r.0 {
                return Err(CallError::NotSent(
                    "waiting before connecting again after a failure".into(),
                ));
            }
        }
        let result = self.connect_now().await;
        let mut r = self
            .reconnect
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &result {
            Ok(_) => *r = (std::time::Instant::now(), Duration::ZERO),
            Err(_) => {
                let delay = (r.1 * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
                *r = (std::time::Instant::now() + delay, delay);
            }
        }
        result
    }

    async fn connect_now(&self) -> Result<Arc<Conn>, CallError> {
        let stream = tokio::time::timeout(
            self.cfg.connect_timeout,
            TcpStream::connect(&self.cfg.endpoint),
        )
        .await
        .map_err(|_| CallError::NotSent(format!("connect to {} timed out", self.cfg.endpoint)))?
        .map_err(|e| CallError::NotSent(format!("connect to {}: {e}", self.cfg.endpoint)))?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let codec = U16LenCodec::new(self.cfg.max_frame);
        let conn = Arc::new(Conn {
            id: self.conn_ids.fetch_add(1, Ordering::Relaxed) + 1,
            writer: Mutex::new(FramedWrite::new(write, codec)),
            pending: StdMutex::new(HashMap::new()),
            window: Semaphore::new(self.cfg.window.max(1)),
            closed: CancellationToken::new(),
            last_used: StdMutex::new(std::time::Instant::now()),
        });
        tokio::spawn(read_loop(
            conn.clone(),
            FramedRead::new(read, codec),
            self.spec.clone(),
            self.alg,
            self.key.clone(),
            self.cfg.bank.clone(),
        ));
        let sign_on = self.network(&self.cfg.sign_on);
        let reply = match self.exchange(&conn, &sign_on, false).await {
            Ok(r) => r,
            Err(e) => {
                conn.close();
                return Err(CallError::NotSent(format!("sign-on: {e}")));
            }
        };
        if reply.text(39) != Some("00") {
            conn.close();
            return Err(CallError::NotSent(format!(
                "sign-on refused: F39 {}",
                reply.text(39).unwrap_or("(none)")
            )));
        }
        info!(bank = %self.cfg.bank, conn = conn.id, "signed on");
        metrics::bank_connection(&self.cfg.bank, "signed-on");
        if !self.cfg.echo_interval.is_zero() || !self.cfg.release_after.is_zero() {
            tokio::spawn(upkeep_loop(
                conn.clone(),
                self.cfg.clone(),
                self.spec.clone(),
                self.stan_source(),
            ));
        }
        Ok(conn)
    }

    fn stan_source(&self) -> Arc<dyn Fn() -> String + Send + Sync> {
        // Echo STANs come from their own high range so they never meet a request's.
        let n = Arc::new(AtomicU32::new(0));
        Arc::new(move || format!("{:06}", 990_000 + n.fetch_add(1, Ordering::Relaxed) % 9_999))
    }

    async fn exchange(
        &self,
        conn: &Conn,
        msg: &Message,
        with_mac: bool,
    ) -> Result<Message, CallError> {
        exchange(
            conn,
            msg,
            with_mac.then(|| (self.alg, self.key.as_ref())),
            &self.spec,
            self.cfg.request_timeout,
        )
        .await
    }
}

async fn exchange(
    conn: &Conn,
    msg: &Message,
    mac: Option<(MacAlg, &MacKey)>,
    spec: &MessageSpec,
    timeout: Duration,
) -> Result<Message, CallError> {
    let stan = msg
        .text(11)
        .ok_or_else(|| CallError::NotSent("the request has no STAN".into()))?
        .to_owned();
    let bytes = match mac {
        Some((alg, key)) => encode_with_mac(spec, msg, alg, key),
        None => encode(spec, msg),
    }
    .map_err(|e| CallError::NotSent(format!("encode: {e}")))?;
    let _permit = conn
        .window
        .acquire()
        .await
        .map_err(|_| CallError::NotSent("connection closed".into()))?;
    if conn.closed.is_cancelled() {
        return Err(CallError::NotSent("connection closed".into()));
    }
    let (tx, rx) = oneshot::channel();
    {
        let mut pending = conn.pending();
        if pending.contains_key(&stan) {
            return Err(CallError::NotSent(format!(
                "STAN {stan} is already outstanding"
            )));
        }
        pending.insert(stan.clone(), tx);
    }
    // Closed since the check above: `close` may have emptied `pending` before this request was in it,
    // and nothing would ever answer it; nothing was written yet.
    if conn.closed.is_cancelled() {
        conn.pending().remove(&stan);
        return Err(CallError::NotSent("connection closed".into()));
    }
    let written = conn.writer.lock().await.send(Bytes::from(bytes)).await;
    if let Err(e) = written {
        debug!(conn = conn.id, error = %e, "write failed");
        conn.close();
        return Err(CallError::Lost);
    }
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(CallError::Lost),
        Err(_) => {
            conn.pending().remove(&stan);
            Err(CallError::Timeout(timeout))
        }
    }
}

async fn read_loop(
    conn: Arc<Conn>,
    mut frames: FramedRead<tokio::net::tcp::OwnedReadHalf, U16LenCodec>,
    spec: Arc<MessageSpec>,
    alg: MacAlg,
    key: Arc<MacKey>,
    bank: String,
) {
    loop {
        let frame = tokio::select! {
            _ = conn.closed.cancelled() => break,
            f = frames.next() => f,
        };
        let bytes = match frame {
            Some(Ok(b)) => b,
            Some(Err(codecs::framing::FramingError::Io(e))) => {
                debug!(bank = %bank, conn = conn.id, error = %e, "connection lost");
                break;
            }
            Some(Err(e)) => {
                warn!(bank = %bank, conn = conn.id, error = %e, "unreadable framing: closing the connection");
                metrics::bank_bad_reply(&bank, "unreadable");
                break;
            }
            None => {
                debug!(bank = %bank, conn = conn.id, "the bank closed the connection");
                break;
            }
        };
        let msg = match decode(&spec, &bytes) {
            Ok(m) => m,
            Err(e) => {
                warn!(bank = %bank, conn = conn.id, error = %e, "unreadable message from the bank: dropped");
                metrics::bank_bad_reply(&bank, "unreadable");
                continue;
            }
        };
        let Some(stan) = msg.text(11).map(str::to_owned) else {
            warn!(bank = %bank, conn = conn.id, mti = %msg.mti, "reply without STAN: dropped");
            continue;
        };
        let Some(waiter) = conn.pending().remove(&stan) else {
            debug!(bank = %bank, conn = conn.id, stan = %stan, "reply nobody waits for (duplicate or late): dropped");
            metrics::bank_bad_reply(&bank, "unexpected");
            continue;
        };
        let result = if msg.has(codecs::format::iso8583::mac::MAC_FIELD) {
            match verify_mac(&spec, &bytes, alg, &key) {
                Ok(m) => Ok(m),
                Err(e) => {
                    warn!(bank = %bank, conn = conn.id, stan = %stan, error = %e, "reply MAC does not verify: not believed");
                    metrics::bank_bad_reply(&bank, "mac");
                    Err(CallError::BadMac)
                }
            }
        } else {
            Ok(msg)
        };
        let _ = waiter.send(result);
    }
    conn.close();
    // Really close the socket now (the bank counts it until then), not when the last holder of the
    // connection lets it go; a writer stuck on a full socket is not waited for long.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        SinkExt::<Bytes>::close(&mut *conn.writer.lock().await).await
    })
    .await;
}

/// Echoes every `echo_interval`; closes the connection when an echo goes unanswered, or when it has
/// carried no request for `release_after` and has nothing outstanding.
async fn upkeep_loop(
    conn: Arc<Conn>,
    cfg: ChannelConfig,
    spec: Arc<MessageSpec>,
    stans: Arc<dyn Fn() -> String + Send + Sync>,
) {
    let (every, release_after) = (cfg.echo_interval, cfg.release_after);
    let mut last_echo = std::time::Instant::now();
    loop {
        let mut wait = Duration::MAX;
        if !every.is_zero() {
            wait = wait.min(every.saturating_sub(last_echo.elapsed()));
        }
        if !release_after.is_zero() {
            wait = wait.min(release_after.saturating_sub(conn.idle_for()));
        }
        tokio::select! {
            _ = conn.closed.cancelled() => return,
            _ = tokio::time::sleep(wait.max(Duration::from_millis(50))) => {}
        }
        if !release_after.is_zero() && conn.idle_for() >= release_after && conn.pending().is_empty()
        {
            info!(bank = %cfg.bank, conn = conn.id, idle = ?release_after, "no request for a while: the connection is given back to the bank");
            metrics::bank_connection(&cfg.bank, "released");
            conn.close();
            return;
        }
        if every.is_zero() || last_echo.elapsed() < every {
            continue;
        }
        last_echo = std::time::Instant::now();
        let (f7, _, _) = beijing_stamps(time::OffsetDateTime::now_utc());
        let msg = Message::new(cfg.network_mti.0.clone())
            .with(7, f7)
            .with(11, stans())
            .with(32, cfg.institution.clone())
            .with(70, cfg.echo.clone());
        if let Err(e) = exchange(&conn, &msg, None, &spec, cfg.request_timeout).await {
            warn!(bank = %cfg.bank, conn = conn.id, error = %e, "echo failed: closing the connection");
            conn.close();
            return;
        }
    }
}
