//! The SMPP session: one task owns the connection (connect, bind, read, `enquire_link`, reconnect);
//! senders write `submit_sm`s through it and wait for their responses by sequence number.
//!
//! A connection is published on a `watch` channel while it is bound. A part takes a window permit,
//! registers a oneshot under its sequence number, hands the PDU to the connection's writer task and
//! waits. When the connection ends, the writer first answers "not written" for every PDU still in its
//! queue (those are safe to send again); then the pending table is dropped, and every part still
//! waiting learns its response is lost (ambiguous).
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use codecs::format::smpp::pdu::{self, SubmitFields, command_id, status, tag};
use codecs::format::smpp::rusmpp::Command;
use codecs::format::smpp::text::{self, Part};
use codecs::format::smpp::{Header, Inbound, ReceiptText, SmppCodec, Stat};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{
    LinkState, PartOutcome, Receipt, SendError, Sent, SmppConfig, Unconfirmed, Unsettled,
    destination_of, primitive,
};
use crate::domain::pii::Phone;

/// The answer a waiting part gets.
#[derive(Debug)]
enum Answer {
    /// `submit_sm_resp` (or `generic_nack`) with its status and message id.
    Resp {
        status: u32,
        message_id: Option<String>,
    },
    /// The PDU was still queued when the connection died: never written.
    NotWritten,
}

type Pending = HashMap<u32, oneshot::Sender<Answer>>;

/// One bound connection.
struct Conn {
    tx: mpsc::UnboundedSender<Command>,
    pending: Mutex<Pending>,
    seq: AtomicU32,
    closed: CancellationToken,
}

impl Conn {
    fn next_seq(&self) -> u32 {
        // 1..=0x7FFFFFFF (SMPP 3.4 §5.1.4), wrapping around.
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        (n % 0x7FFF_FFFF) + 1
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A part ready to send, kept so that a resend carries the same content.
#[derive(Clone)]
pub(crate) struct PreparedPart {
    fields: Arc<SubmitFields>,
    part: Part,
}

struct Shared {
    cfg: SmppConfig,
    window: Semaphore,
    conn: watch::Receiver<Option<Arc<Conn>>>,
    link: watch::Receiver<LinkState>,
    next_ref: AtomicU8,
    next_slot: Mutex<Instant>,
    shutdown: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Starts clients.
#[derive(Debug)]
pub struct SmppClient;

impl SmppClient {
    /// Starts the session task (inside a Tokio runtime): it connects and binds in the background and
    /// keeps doing so. Returns the handle to send through and the stream of delivery receipts.
    pub fn start(cfg: SmppConfig) -> (SmppHandle, Receipts) {
        let (conn_tx, conn_rx) = watch::channel(None);
        let (link_tx, link_rx) = watch::channel(LinkState::Connecting { attempt: 0 });
        let (receipt_tx, receipt_rx) = mpsc::channel(cfg.receipt_buffer.max(1));
        let shared = Arc::new(Shared {
            window: Semaphore::new(cfg.window.max(1)),
            conn: conn_rx,
            link: link_rx,
            next_ref: AtomicU8::new(rand::random()),
            next_slot: Mutex::new(Instant::now()),
            shutdown: CancellationToken::new(),
            task: Mutex::new(None),
            cfg,
        });
        let manager = Manager {
            shared: Arc::clone(&shared),
            conn_tx,
            link_tx,
            receipts: receipt_tx,
        };
        let task = tokio::spawn(manager.run());
        *shared.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
        (SmppHandle { shared }, Receipts { rx: receipt_rx })
    }
}

/// Sends notices. Cheap to clone; every clone uses the same session.
#[derive(Clone)]
pub struct SmppHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SmppHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmppHandle")
            .field("endpoint", &self.shared.cfg.endpoint)
            .field("link", &*self.shared.link.borrow())
            .finish()
    }
}

impl SmppHandle {
    /// Sends `text` to `destination` as one message or as concatenated parts; resolves when every part
    /// has its answer. `key` is the caller's opaque notice key (logs, and the key TLV if configured).
    ///
    /// # Errors
    /// See [`SendError`]. Throttling and queue-full answers are not errors: they are retried.
    pub async fn send(
        &self,
        key: &str,
        destination: &Phone,
        text: &str,
    ) -> Result<Sent, SendError> {
        let dest = destination_of(destination)?;
        let reference = self.shared.next_ref.fetch_add(1, Ordering::Relaxed);
        let parts = text::split(text, reference)?;
        let fields = Arc::new(SubmitFields {
            service_number: self.shared.cfg.service_number.clone(),
            destination: dest.clone(),
            registered_delivery: self.shared.cfg.registered_delivery,
            key_tlv: self.shared.cfg.key_tlv.map(|t| (t, key.to_owned())),
        });
        // Built once up front: a configuration problem shows before anything is written.
        if let Some(p) = parts.first() {
            pdu::submit_sm(1, &fields, p).map_err(|e| SendError::Config(e.to_string()))?;
        }
        let prepared: Vec<PreparedPart> = parts
            .into_iter()
            .map(|part| PreparedPart {
                fields: Arc::clone(&fields),
                part,
            })
            .collect();
        debug!(key, to = %destination, parts = prepared.len(), "sending notice");
        let outcomes = vec![PartOutcome::NotSent; prepared.len()];
        self.settle(key.to_owned(), dest, prepared, outcomes).await
    }

    /// Sends again the parts of `unsettled` that are not accepted (ambiguous or not sent), with the
    /// same content (same UDH reference); accepted parts keep their ids.
    ///
    /// # Errors
    /// As [`SmppHandle::send`].
    pub async fn retry(&self, unsettled: Unsettled) -> Result<Sent, SendError> {
        let Unsettled {
            key,
            destination,
            parts,
            outcomes,
        } = unsettled;
        let outcomes = outcomes
            .into_iter()
            .map(|o| match o {
                PartOutcome::Ambiguous => PartOutcome::NotSent,
                other => other,
            })
            .collect();
        self.settle(key, destination, parts, outcomes).await
    }

    /// Sends every part whose outcome is `NotSent`, concurrently; then sums up.
    async fn settle(
        &self,
        key: String,
        destination: String,
        parts: Vec<PreparedPart>,
        mut outcomes: Vec<PartOutcome>,
    ) -> Result<Sent, SendError> {
        let todo: Vec<usize> = (0..parts.len())
            .filter(|i| outcomes[*i] == PartOutcome::NotSent)
            .collect();
        let results =
            futures::future::join_all(todo.iter().map(|i| self.submit_part(&parts[*i]))).await;
        for (i, r) in todo.into_iter().zip(results) {
            outcomes[i] = r;
        }
        if let Some(st) = outcomes.iter().find_map(|o| match o {
            PartOutcome::Rejected(s) => Some(*s),
            _ => None,
        }) {
            metrics::counter!("gateway_sms_notices_total", "outcome" => "rejected").increment(1);
            warn!(
                key,
                status = status::name(st),
                "notice refused by the SMS centre"
            );
            return Err(SendError::Rejected {
                status: st,
                outcomes,
            });
        }
        if outcomes
            .iter()
            .all(|o| matches!(o, PartOutcome::Accepted(_)))
        {
            metrics::counter!("gateway_sms_notices_total", "outcome" => "sent").increment(1);
            let message_ids = outcomes
                .into_iter()
                .filter_map(|o| match o {
                    PartOutcome::Accepted(id) => Some(id),
                    _ => None,
                })
                .collect();
            return Ok(Sent { message_ids });
        }
        if outcomes.iter().all(|o| *o == PartOutcome::NotSent)
            && self.shared.shutdown.is_cancelled()
        {
            return Err(SendError::Closed);
        }
        metrics::counter!("gateway_sms_notices_total", "outcome" => "unsettled").increment(1);
        let u = Unsettled {
            key,
            destination,
            parts,
            outcomes,
        };
        warn!(
            key = u.key(),
            ambiguous = u.ambiguous(),
            "notice not settled"
        );
        Err(SendError::Unsettled(Box::new(u)))
    }

    /// Waits for a bound connection; `None` once shut down.
    async fn bound(&self) -> Option<Arc<Conn>> {
        let mut rx = self.shared.conn.clone();
        loop {
            let current = rx.borrow_and_update().clone();
            if let Some(c) = current
                && !c.closed.is_cancelled()
            {
                return Some(c);
            }
            tokio::select! {
                () = self.shared.shutdown.cancelled() => return None,
                changed = rx.changed() => if changed.is_err() { return None },
            }
        }
    }

    /// Waits for this part's slot under `max_rate_per_second` (and after a pause a throttling answer
    /// asked for).
    async fn pace(&self) {
        let step = self
            .shared
            .cfg
            .max_rate_per_second
            .filter(|r| *r > 0)
            .map_or(Duration::ZERO, |rate| Duration::from_secs(1) / rate);
        let slot = {
            let mut next = self
                .shared
                .next_slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let slot = (*next).max(Instant::now());
            *next = slot + step;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Holds every part's next slot at least `pause` from now.
    fn pause_all(&self, pause: Duration) {
        let mut next = self
            .shared
            .next_slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *next = (*next).max(Instant::now() + pause);
    }

    /// Sends one part until it is accepted, refused for good, or its fate is unknown.
    async fn submit_part(&self, p: &PreparedPart) -> PartOutcome {
        let cfg = &self.shared.cfg;
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(cfg.throttle_min)
            .with_max_delay(cfg.throttle_max)
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            let Some(conn) = self.bound().await else {
                return PartOutcome::NotSent;
            };
            let Ok(permit) = self.shared.window.acquire().await else {
                return PartOutcome::NotSent;
            };
            self.pace().await;
            if conn.closed.is_cancelled() {
                continue;
            }
            let seq = conn.next_seq();
            let Ok(cmd) = pdu::submit_sm(seq, &p.fields, &p.part) else {
                // Checked in `send`: a part cannot fail where the first did not.
                return PartOutcome::Rejected(status::RSYSERR);
            };
            let (tx, rx) = oneshot::channel();
            conn.pending().insert(seq, tx);
            if conn.tx.send(cmd).is_err() {
                conn.pending().remove(&seq);
                continue;
            }
            let answer = tokio::select! {
                a = rx => a.ok(),
                () = tokio::time::sleep(cfg.response_timeout) => {
                    warn!(seq, "no submit_sm_resp in time: replacing the connection");
                    conn.closed.cancel();
                    conn.pending().remove(&seq);
                    None
                }
            };
            drop(permit);
            match answer {
                Some(Answer::Resp {
                    status: status::ROK,
                    message_id: Some(id),
                }) => {
                    metrics::counter!("gateway_sms_parts_total", "outcome" => "accepted")
                        .increment(1);
                    return PartOutcome::Accepted(id);
                }
                Some(Answer::Resp {
                    status: status::ROK,
                    message_id: None,
                }) => {
                    // Accepted, but the id could not be read: only a receipt can name it.
                    metrics::counter!("gateway_sms_parts_total", "outcome" => "ambiguous")
                        .increment(1);
                    return PartOutcome::Ambiguous;
                }
                Some(Answer::Resp { status: st, .. })
                    if st == status::RTHROTTLED || st == status::RMSGQFUL =>
                {
                    let label = if st == status::RTHROTTLED {
                        "throttled"
                    } else {
                        "queue_full"
                    };
                    metrics::counter!("gateway_sms_parts_total", "outcome" => label).increment(1);
                    // The whole client pauses briefly (the centre's limit is per client), and this
                    // part backs off further on its own.
                    self.pause_all(cfg.throttle_min);
                    let wait = backoff.next().unwrap_or(cfg.throttle_max);
                    debug!(seq, status = status::name(st), ?wait, "backing off");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.shared.shutdown.cancelled() => return PartOutcome::NotSent,
                    }
                }
                Some(Answer::Resp { status: st, .. }) => {
                    metrics::counter!("gateway_sms_parts_total", "outcome" => "rejected")
                        .increment(1);
                    return PartOutcome::Rejected(st);
                }
                Some(Answer::NotWritten) => {}
                None => match cfg.unconfirmed {
                    Unconfirmed::Resend => {
                        metrics::counter!("gateway_sms_parts_total", "outcome" => "resent")
                            .increment(1);
                    }
                    Unconfirmed::Report => {
                        metrics::counter!("gateway_sms_parts_total", "outcome" => "ambiguous")
                            .increment(1);
                        return PartOutcome::Ambiguous;
                    }
                },
            }
        }
    }

    /// The link's state, to watch.
    pub fn link(&self) -> watch::Receiver<LinkState> {
        self.shared.link.clone()
    }

    /// Unbinds, closes the connection and stops the session; sends still waiting end with
    /// [`SendError::Closed`] or [`SendError::Unsettled`].
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        self.shared.window.close();
        let task = self
            .shared
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = task
            && let Err(e) = t.await
        {
            warn!(error = %e, "SMPP session task ended abnormally");
        }
    }
}

/// Delivery receipts, in arrival order.
#[derive(Debug)]
pub struct Receipts {
    rx: mpsc::Receiver<InboundReceipt>,
}

impl Receipts {
    /// The next receipt; `None` once the client is shut down.
    pub async fn recv(&mut self) -> Option<InboundReceipt> {
        self.rx.recv().await
    }

    /// A receipt if one is waiting.
    pub fn try_recv(&mut self) -> Option<InboundReceipt> {
        self.rx.try_recv().ok()
    }
}

/// A receipt and the `deliver_sm_resp` it owes: [`InboundReceipt::ack`] once it is stored; dropped
/// without ack, the centre is told to send it again later (`ESME_RX_T_APPN`). Receipts are therefore
/// at least once: the same one may come twice.
#[derive(Debug)]
pub struct InboundReceipt {
    /// The receipt.
    pub receipt: Receipt,
    reply: Option<(mpsc::UnboundedSender<Command>, u32)>,
}

impl InboundReceipt {
    /// Answers `deliver_sm_resp` OK.
    pub fn ack(mut self) {
        self.answer(status::ROK);
    }

    fn answer(&mut self, st: u32) {
        if let Some((tx, seq)) = self.reply.take() {
            // A closed connection cannot be answered: the centre sends the receipt again.
            let _ = tx.send(pdu::deliver_sm_resp(seq, st));
        }
    }
}

impl Drop for InboundReceipt {
    fn drop(&mut self) {
        self.answer(status::RX_T_APPN);
    }
}

/// Owns the connection: the session task.
struct Manager {
    shared: Arc<Shared>,
    conn_tx: watch::Sender<Option<Arc<Conn>>>,
    link_tx: watch::Sender<LinkState>,
    receipts: mpsc::Sender<InboundReceipt>,
}

/// Why connecting failed.
enum BindFailure {
    Refused(u32),
    Other(String),
}

type Reader = FramedRead<OwnedReadHalf, SmppCodec>;
type Writer = FramedWrite<OwnedWriteHalf, SmppCodec>;

impl Manager {
    async fn run(self) {
        let cfg = &self.shared.cfg;
        let reconnect = || {
            ExponentialBuilder::default()
                .with_min_delay(cfg.reconnect_min)
                .with_max_delay(cfg.reconnect_max)
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut backoff = reconnect();
        let mut attempt: u32 = 0;
        while !self.shared.shutdown.is_cancelled() {
            attempt = attempt.saturating_add(1);
            let _ = self.link_tx.send(LinkState::Connecting { attempt });
            match self.connect_and_bind().await {
                Ok((reader, writer)) => {
                    attempt = 0;
                    backoff = reconnect();
                    metrics::counter!("gateway_sms_binds_total", "outcome" => "bound").increment(1);
                    info!(endpoint = %cfg.endpoint, "bound to the SMS centre");
                    self.serve(reader, writer).await;
                    if self.shared.shutdown.is_cancelled() {
                        break;
                    }
                    metrics::counter!("gateway_sms_reconnects_total").increment(1);
                    warn!(endpoint = %cfg.endpoint, "connection to the SMS centre lost: reconnecting");
                }
                Err(BindFailure::Refused(st)) => {
                    metrics::counter!("gateway_sms_binds_total", "outcome" => "refused")
                        .increment(1);
                    warn!(status = status::name(st), "the SMS centre refused the bind");
                    let _ = self.link_tx.send(LinkState::BindRefused { status: st });
                }
                Err(BindFailure::Other(e)) => {
                    metrics::counter!("gateway_sms_binds_total", "outcome" => "failed")
                        .increment(1);
                    warn!(endpoint = %cfg.endpoint, error = %e, "cannot bind to the SMS centre");
                }
            }
            let wait = backoff.next().unwrap_or(cfg.reconnect_max);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.shared.shutdown.cancelled() => break,
            }
        }
        let _ = self.link_tx.send(LinkState::Closed);
    }

    async fn connect_and_bind(&self) -> Result<(Reader, Writer), BindFailure> {
        let cfg = &self.shared.cfg;
        let other = |e: &dyn std::fmt::Display| BindFailure::Other(e.to_string());
        let stream = tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(&cfg.endpoint))
            .await
            .map_err(|_| BindFailure::Other("connect timed out".into()))?
            .map_err(|e| other(&e))?;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let mut reader = FramedRead::new(rd, SmppCodec::default());
        let mut writer = FramedWrite::new(wr, SmppCodec::default());
        let bind = pdu::bind_transceiver(1, &cfg.system_id, cfg.password.expose())
            .map_err(|e| other(&e))?;
        writer.send(bind).await.map_err(|e| other(&e))?;
        let deadline = Instant::now() + cfg.response_timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline, reader.next())
                .await
                .map_err(|_| BindFailure::Other("no bind_transceiver_resp in time".into()))?;
            let cmd = match frame {
                None => return Err(BindFailure::Other("closed during bind".into())),
                Some(Err(e)) => return Err(other(&e)),
                Some(Ok(Inbound::Malformed { header, error })) => {
                    if header.sequence_number == 1 {
                        return Err(other(&error));
                    }
                    continue;
                }
                Some(Ok(Inbound::Pdu(cmd))) => cmd,
            };
            let id = pdu::id_of(&cmd);
            if id == command_id::response_of(command_id::BIND_TRANSCEIVER) {
                return match pdu::status_of(&cmd) {
                    status::ROK => Ok((reader, writer)),
                    st => Err(BindFailure::Refused(st)),
                };
            }
            if id == command_id::GENERIC_NACK && cmd.sequence_number == 1 {
                return Err(BindFailure::Refused(pdu::status_of(&cmd)));
            }
            if id == command_id::ENQUIRE_LINK {
                let resp = pdu::bodiless(
                    command_id::response_of(command_id::ENQUIRE_LINK),
                    status::ROK,
                    cmd.sequence_number,
                );
                writer.send(resp).await.map_err(|e| other(&e))?;
            }
        }
    }

    /// Runs a bound connection until it is lost, the centre goes silent, or shutdown.
    async fn serve(&self, mut reader: Reader, writer: Writer) {
        let cfg = &self.shared.cfg;
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = Arc::new(Conn {
            tx,
            pending: Mutex::new(HashMap::new()),
            // Sequence number 1 was the bind.
            seq: AtomicU32::new(1),
            closed: CancellationToken::new(),
        });
        let writer_task = tokio::spawn(write_loop(writer, rx, Arc::clone(&conn)));
        let _ = self.conn_tx.send(Some(Arc::clone(&conn)));
        let _ = self.link_tx.send(LinkState::Bound);
        let mut enquire = tokio::time::interval_at(
            Instant::now() + cfg.enquire_link_interval,
            cfg.enquire_link_interval,
        );
        let mut last_heard = Instant::now();
        let mut unbinding: Option<Instant> = None;
        loop {
            let silence = last_heard + cfg.dead_after;
            let unbind_deadline = unbinding.unwrap_or(silence);
            tokio::select! {
                frame = reader.next() => {
                    last_heard = Instant::now();
                    match frame {
                        None => break,
                        Some(Err(e)) => {
                            warn!(error = %e, "SMPP stream unreadable");
                            break;
                        }
                        Some(Ok(Inbound::Malformed { header, error })) => {
                            warn!(%error, "malformed PDU from the SMS centre");
                            on_malformed(&conn, header);
                        }
                        Some(Ok(Inbound::Pdu(cmd))) => {
                            if self.on_pdu(&conn, &cmd) {
                                break;
                            }
                        }
                    }
                }
                _ = enquire.tick(), if unbinding.is_none() => {
                    let seq = conn.next_seq();
                    let _ = conn.tx.send(pdu::bodiless(command_id::ENQUIRE_LINK, status::ROK, seq));
                }
                () = tokio::time::sleep_until(silence), if unbinding.is_none() => {
                    warn!(silent_for = ?cfg.dead_after, "the SMS centre went silent: reconnecting");
                    break;
                }
                () = tokio::time::sleep_until(unbind_deadline), if unbinding.is_some() => break,
                () = conn.closed.cancelled() => break,
                () = self.shared.shutdown.cancelled(), if unbinding.is_none() => {
                    // Unbind, and wait briefly for unbind_resp (a centre may just close: EOF is fine).
                    let seq = conn.next_seq();
                    let _ = conn.tx.send(pdu::bodiless(command_id::UNBIND, status::ROK, seq));
                    unbinding = Some(Instant::now() + cfg.response_timeout.min(Duration::from_secs(2)));
                }
            }
        }
        let _ = self.conn_tx.send(None);
        conn.closed.cancel();
        // The writer answers "not written" for what it still holds before the table goes.
        let _ = writer_task.await;
        let lost = std::mem::take(&mut *conn.pending());
        if !lost.is_empty() {
            debug!(parts = lost.len(), "responses lost with the connection");
        }
        drop(lost);
    }

    /// Handles one PDU; `true` ends the connection.
    fn on_pdu(&self, conn: &Conn, cmd: &Command) -> bool {
        let seq = cmd.sequence_number;
        match pdu::id_of(cmd) {
            x if x == command_id::response_of(command_id::SUBMIT_SM)
                || x == command_id::GENERIC_NACK =>
            {
                if let Some(w) = conn.pending().remove(&seq) {
                    let _ = w.send(Answer::Resp {
                        status: pdu::status_of(cmd),
                        message_id: pdu::read_submit_sm_resp(cmd),
                    });
                }
            }
            command_id::DELIVER_SM => self.on_deliver_sm(conn, cmd),
            command_id::ENQUIRE_LINK => {
                let _ = conn.tx.send(pdu::bodiless(
                    command_id::response_of(command_id::ENQUIRE_LINK),
                    status::ROK,
                    seq,
                ));
            }
            command_id::UNBIND => {
                let _ = conn.tx.send(pdu::bodiless(
                    command_id::response_of(command_id::UNBIND),
                    status::ROK,
                    seq,
                ));
                info!("the SMS centre unbound");
                return true;
            }
            x if x == command_id::response_of(command_id::UNBIND) => return true,
            x if x & 0x8000_0000 != 0 => {}
            _ => {
                let _ = conn.tx.send(pdu::bodiless(
                    command_id::GENERIC_NACK,
                    status::RINVCMDID,
                    seq,
                ));
            }
        }
        false
    }

    fn on_deliver_sm(&self, conn: &Conn, cmd: &Command) {
        let seq = cmd.sequence_number;
        let answer = |st| {
            let _ = conn.tx.send(pdu::deliver_sm_resp(seq, st));
        };
        let Some(sm) = pdu::read_deliver_sm(cmd) else {
            answer(status::RX_P_APPN);
            return;
        };
        // Message type bits 2-5: 0b0001 is a delivery receipt; anything else (a reply from a
        // handset) is not ours to handle.
        if sm.esm_class & 0x3C != pdu::ESM_CLASS_RECEIPT {
            metrics::counter!("gateway_sms_deliver_sm_total", "kind" => "other").increment(1);
            answer(status::ROK);
            return;
        }
        let Some(receipt) = to_receipt(&sm) else {
            metrics::counter!("gateway_sms_deliver_sm_total", "kind" => "unreadable_receipt")
                .increment(1);
            warn!("a delivery receipt without a readable id or state: refused for good");
            answer(status::RX_P_APPN);
            return;
        };
        metrics::counter!("gateway_sms_receipts_total", "stat" => receipt.stat.code().to_owned())
            .increment(1);
        let inbound = InboundReceipt {
            receipt,
            reply: Some((conn.tx.clone(), seq)),
        };
        if self.receipts.try_send(inbound).is_err() {
            // Full, or nobody listening: the receipt dropped here answers ESME_RX_T_APPN.
            debug!("receipt buffer full: the centre will send it again");
        }
    }
}

/// Answers a PDU whose body could not be read.
fn on_malformed(conn: &Conn, header: Header) {
    if header.is_response() {
        // A response we cannot read: the status in its header still counts.
        if let Some(w) = conn.pending().remove(&header.sequence_number) {
            let _ = w.send(Answer::Resp {
                status: header.command_status,
                message_id: None,
            });
        }
        return;
    }
    let resp = if header.command_id == command_id::DELIVER_SM {
        // A receipt we cannot read will not become readable: do not have it sent again.
        pdu::deliver_sm_resp(header.sequence_number, status::RX_P_APPN)
    } else {
        pdu::bodiless(
            command_id::GENERIC_NACK,
            status::RINVCMDLEN,
            header.sequence_number,
        )
    };
    let _ = conn.tx.send(resp);
}

/// A receipt from the text, completed (or overridden) by the TLVs `receipted_message_id` and
/// `message_state`, which SMPP 3.4 defines for exactly this.
fn to_receipt(sm: &pdu::ShortMessage) -> Option<Receipt> {
    let parsed = ReceiptText::parse(&sm.short_message);
    if let Err(e) = &parsed {
        debug!(error = %e, "receipt text unreadable");
    }
    let text = parsed.ok();
    let message_id = sm
        .tlv_c_string(tag::RECEIPTED_MESSAGE_ID)
        .filter(|s| !s.is_empty())
        .or_else(|| text.as_ref().map(|t| t.id.clone()))?;
    let from_tlv = sm
        .tlv(tag::MESSAGE_STATE)
        .and_then(|v| v.first().copied())
        .and_then(pdu::stat_of_message_state);
    let stat: Stat = from_tlv.or_else(|| text.as_ref().map(|t| t.stat.clone()))?;
    Some(Receipt {
        message_id,
        stat,
        err: text.as_ref().and_then(|t| t.err.clone()),
        submitted_at: text
            .as_ref()
            .and_then(|t| t.submit_date)
            .and_then(primitive),
        done_at: text.as_ref().and_then(|t| t.done_date).and_then(primitive),
        recipient: Phone::new(sm.source.addr.clone()),
    })
}

/// Writes queued PDUs until the connection closes; then answers "not written" for every `submit_sm`
/// still queued.
async fn write_loop(mut writer: Writer, mut rx: mpsc::UnboundedReceiver<Command>, conn: Arc<Conn>) {
    loop {
        tokio::select! {
            biased;
            () = conn.closed.cancelled() => break,
            cmd = rx.recv() => match cmd {
                Some(cmd) => {
                    if let Err(e) = writer.send(cmd).await {
                        debug!(error = %e, "SMPP write failed");
                        conn.closed.cancel();
                        break;
                    }
                }
                None => break,
            },
        }
    }
    rx.close();
    while let Ok(cmd) = rx.try_recv() {
        if pdu::id_of(&cmd) == command_id::SUBMIT_SM
            && let Some(w) = conn.pending().remove(&cmd.sequence_number)
        {
            let _ = w.send(Answer::NotWritten);
        }
    }
    let _ = tokio::io::AsyncWriteExt::shutdown(writer.get_mut()).await;
}
