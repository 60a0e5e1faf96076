//! The fixed-width family's link (bank A): map our rows onto the profile's records, and talk to the
//! bank over TCP with 8-digit length framing, one request and one reply at a time per connection.
//!
//! ```text
//! submit:  00000000+len | H1001 header | D detail x n (streamed from the store) | T trailer
//! query:   Q2001 -> H2002 [| D x n | T]          echo: E9001 -> E9002 on idle connections
//! ```
//! At most `max_connections` connections; idle ones are kept alive by echo or dropped before the bank's
//! idle timeout. A submit whose bytes may have reached the bank but got no readable reply has an
//! **unknown** outcome: the caller must ask (query) before anything is sent again.
use std::sync::Arc;
use std::time::{Duration, Instant};

use bank_profiles::{Framing, Profile};
use codecs::format::fixed_width::EncodeError;
use codecs::format::fixed_width::messages::{
    Layouts, MessageError, Query, QueryReply, SubmitDetail, SubmitHeader, SubmitReply, Trailer,
};
use codecs::framing::{AsciiLenCodec, FramingError};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore};
use tokio_util::codec::Framed;

use crate::config;
use crate::domain::{AccountKind, RecipientKind};
use crate::intake::parse::{HeaderIn, ItemIn};

/// The profile's records and value tables, resolved once.
#[derive(Debug, Clone)]
pub struct FixedWidthFamily {
    /// Record layouts.
    pub layouts: Layouts,
    id_type_person: String,
    id_type_unit: String,
    kind_ssc: String,
    kind_corporate: String,
    kind_personal: String,
    /// State code of a final query reply.
    pub state_final: String,
    /// State code of a reply still processing.
    pub state_processing: String,
    echo_request: String,
    echo_reply: String,
    bank_ref_width: usize,
}

/// The fields of one item as the bank receives them.
pub struct DetailSource<'a> {
    /// Seq.
    pub seq: i64,
    /// Person or unit.
    pub recipient_kind: RecipientKind,
    /// Name.
    pub name: &'a str,
    /// Id number.
    pub id_no: &'a str,
    /// Account.
    pub account_no: &'a str,
    /// Account kind.
    pub account_kind: AccountKind,
    /// Account bank.
    pub account_bank_code: &'a str,
    /// Amount.
    pub amount_fen: i64,
    /// Phone.
    pub phone: &'a str,
    /// Memo.
    pub memo: &'a str,
}

/// Layout field names as the platform API calls them, for error messages.
fn api_field(layout_field: &str) -> &str {
    match layout_field {
        "account_name" => "name",
        "amount" => "amount_fen",
        "payer_account" => "payer_account.no",
        "payer_name" => "payer_account.name",
        other => other,
    }
}

fn describe(e: &EncodeError) -> (String, String) {
    match e {
        EncodeError::TooLong { field, len, width } => (
            api_field(field).to_owned(),
            format!("{len} bytes do not fit the bank's {width}-byte field"),
        ),
        EncodeError::NotGbk { field, source } => (
            api_field(field).to_owned(),
            format!("{source} (the bank's interface carries GBK only)"),
        ),
        EncodeError::Control { field, position } => (
            api_field(field).to_owned(),
            format!("character {position} is a control character"),
        ),
        EncodeError::NotDigits { field } => (api_field(field).to_owned(), "must be digits".into()),
        other => ("?".into(), other.to_string()),
    }
}

impl FixedWidthFamily {
    /// Resolves the family's tables from a profile.
    pub fn from_profile(profile: &Profile) -> Result<Self, String> {
        let fw = profile
            .fixed_width
            .as_ref()
            .ok_or("not a fixed-width profile")?;
        let v = |t: &str, k: &str| {
            fw.value(t, k)
                .map(str::to_owned)
                .ok_or(format!("no value {t}.{k}"))
        };
        let layouts = fw.messages()?;
        let bank_ref_width = layouts
            .submit_header
            .field("batch_no")
            .map_or(0, |f| f.width);
        Ok(Self {
            id_type_person: v("id_type", "person")?,
            id_type_unit: v("id_type", "unit")?,
            kind_ssc: v("account_kind", "ssc")?,
            kind_corporate: v("account_kind", "corporate")?,
            kind_personal: v("account_kind", "personal")?,
            state_final: v("state", "final")?,
            state_processing: v("state", "processing")?,
            echo_request: fw.echo_request.clone(),
            echo_reply: fw.echo_reply.clone(),
            layouts,
            bank_ref_width,
        })
    }

    /// A submit detail from an item.
    pub fn detail(&self, d: &DetailSource<'_>) -> SubmitDetail {
        SubmitDetail {
            seq: u64::try_from(d.seq).unwrap_or_default(),
            account_no: d.account_no.to_owned(),
            account_name: d.name.to_owned(),
            id_type: match d.recipient_kind {
                RecipientKind::Person => self.id_type_person.clone(),
                RecipientKind::Unit => self.id_type_unit.clone(),
            },
            id_no: d.id_no.to_owned(),
            amount: u64::try_from(d.amount_fen).unwrap_or_default(),
            account_kind: match d.account_kind {
                AccountKind::Ssc => self.kind_ssc.clone(),
                AccountKind::Corporate => self.kind_corporate.clone(),
                AccountKind::Personal => self.kind_personal.clone(),
            },
            account_bank_code: d.account_bank_code.to_owned(),
            phone: d.phone.to_owned(),
            memo: d.memo.to_owned(),
        }
    }

    /// Whether the item can travel in this bank's detail record (the real encoder is the check).
    pub fn check_item(&self, it: &ItemIn) -> Result<(), (String, String)> {
        let d = self.detail(&DetailSource {
            seq: it.seq,
            recipient_kind: it.recipient_kind,
            name: &it.name,
            id_no: &it.id_no,
            account_no: &it.account_no,
            account_kind: it.account_kind,
            account_bank_code: &it.account_bank_code,
            amount_fen: it.amount_fen.max(0),
            phone: &it.phone,
            memo: &it.memo,
        });
        let mut scratch = Vec::with_capacity(self.layouts.unit());
        self.layouts
            .encode_submit_detail(&mut scratch, &d)
            .map_err(|e| describe(&e))
    }

    /// Whether the batch header can travel in this bank's header record.
    pub fn check_header(&self, h: &HeaderIn) -> Result<(), (String, String)> {
        let header = SubmitHeader {
            batch_no: "X".repeat(self.bank_ref_width.min(20)),
            payer_account: h.payer_account.no.clone(),
            payer_name: h.payer_account.name.clone(),
            subsidy_code: h.subsidy_code.clone(),
            item_count: 1,
            total_amount: 1,
            submit_date: "20260101".into(),
            submit_time: "000000".into(),
            region_code: h.region_code.clone(),
        };
        let mut scratch = Vec::with_capacity(self.layouts.unit());
        self.layouts
            .encode_submit_header(&mut scratch, &header)
            .map_err(|e| describe(&e))
    }
}

/// Why a request to the bank did not give a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Could not connect (nothing was sent).
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The request could not be encoded (nothing was sent).
    #[error("encode: {0}")]
    Encode(#[from] EncodeError),
    /// Writing or reading failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// No reply in time.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The bank closed the connection without a reply.
    #[error("the bank closed the connection without a reply")]
    Closed,
    /// The reply was not well framed.
    #[error("reply framing: {0}")]
    Framing(#[from] FramingError),
    /// The reply could not be read.
    #[error("reply: {0}")]
    Reply(#[from] MessageError),
    /// The reply was readable but not the answer to this request.
    #[error("reply does not answer the request: {0}")]
    Mismatch(String),
}

impl LinkError {
    /// Whether nothing can have reached the bank (safe to send again without asking).
    pub fn nothing_sent(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::Encode(_))
    }
}

struct Conn {
    framed: Framed<TcpStream, AsciiLenCodec>,
    last_used: Instant,
}

/// A pool of connections to one fixed-width bank.
pub struct FixedWidthLink {
    family: Arc<FixedWidthFamily>,
    endpoint: String,
    codec: AsciiLenCodec,
    slots: Semaphore,
    idle: Mutex<Vec<Conn>>,
    connect_timeout: Duration,
    request_timeout: Duration,
    idle_timeout: Duration,
    echo_interval: Duration,
}

impl std::fmt::Debug for FixedWidthLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedWidthLink")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl FixedWidthLink {
    /// A link for `profile` at the configured endpoint.
    pub fn new(profile: &Profile, settings: &config::Bank) -> Result<Self, String> {
        let family = FixedWidthFamily::from_profile(profile)?;
        let codec = match profile.transport.framing {
            Framing::AsciiLength { digits, max_body } => AsciiLenCodec::new(digits, max_body),
            _ => {
                return Err("the fixed-width family needs the ASCII length framing".into());
            }
        };
        let max = settings
            .max_connections
            .map_or(profile.transport.max_connections, |c| {
                c.clamp(1, profile.transport.max_connections)
            });
        Ok(Self {
            family: Arc::new(family),
            endpoint: settings.endpoint.clone(),
            codec,
            slots: Semaphore::new(max as usize),
            idle: Mutex::new(Vec::new()),
            connect_timeout: profile.transport.connect_timeout.0,
            request_timeout: settings
                .request_timeout
                .map_or(profile.transport.request_timeout.0, |d| d.0),
            idle_timeout: profile.timers.idle_timeout.0,
            echo_interval: profile.timers.echo_interval.0,
        })
    }

    /// The family tables.
    pub fn family(&self) -> &FixedWidthFamily {
        &self.family
    }

    /// Idle connections are dropped a little before the bank would close them.
    fn still_fresh(&self, c: &Conn) -> bool {
        self.idle_timeout.is_zero()
            || c.last_used.elapsed() + Duration::from_secs(5) < self.idle_timeout
    }

    async fn checkout(&self) -> Result<Conn, LinkError> {
        loop {
            let candidate = self.idle.lock().await.pop();
            match candidate {
                // A connection with unread bytes (a duplicated or late reply) is out of step: drop it.
                Some(mut c) if self.still_fresh(&c) => {
                    if c.framed.read_buffer().is_empty()
                        && futures::FutureExt::now_or_never(c.framed.next()).is_none()
                    {
                        return Ok(c);
                    }
                }
                Some(_) => continue,
                None => break,
            }
        }
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.endpoint))
            .await
            .map_err(|_| {
                LinkError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                ))
            })?
            .map_err(LinkError::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            framed: Framed::new(stream, self.codec),
            last_used: Instant::now(),
        })
    }

    async fn checkin(&self, mut c: Conn) {
        c.last_used = Instant::now();
        self.idle.lock().await.push(c);
    }

    async fn send_small(&self, body: Vec<u8>) -> Result<bytes::BytesMut, LinkError> {
        let header = self.codec.header(body.len())?;
        let mut framed = Vec::with_capacity(header.len() + body.len());
        framed.extend_from_slice(&header);
        framed.extend_from_slice(&body);
        self.exchange_bytes(&framed).await
    }

    async fn exchange_bytes(&self, framed: &[u8]) -> Result<bytes::BytesMut, LinkError> {
        let _permit = self.slots.acquire().await.map_err(|_| LinkError::Closed)?;
        let mut conn = self.checkout().await?;
        let timeout = self.request_timeout;
        let result = tokio::time::timeout(timeout, async {
            conn.framed.get_mut().write_all(framed).await?;
            conn.framed.get_mut().flush().await?;
            match conn.framed.next().await {
                Some(Ok(body)) => Ok(body),
                Some(Err(e)) => Err(LinkError::Framing(e)),
                None => Err(LinkError::Closed),
            }
        })
        .await;
        match result {
            Ok(Ok(body)) => {
                self.checkin(conn).await;
                Ok(body)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(LinkError::Timeout(timeout)),
        }
    }

    /// Starts the framed bytes of a submit of `header.item_count` details: length header and header
    /// record. Details are appended with [`Self::push_detail`], then [`Self::submit_wire`] sends it.
    pub fn begin_submit(&self, header: &SubmitHeader) -> Result<Vec<u8>, LinkError> {
        let layouts = &self.family.layouts;
        let count = usize::try_from(header.item_count).unwrap_or(usize::MAX);
        let body_len = layouts.submit_body_len(count);
        let mut wire = self.codec.header(body_len)?;
        wire.reserve(body_len);
        layouts.encode_submit_header(&mut wire, header)?;
        Ok(wire)
    }

    /// Appends one detail record.
    pub fn push_detail(&self, wire: &mut Vec<u8>, d: &SubmitDetail) -> Result<(), LinkError> {
        Ok(self.family.layouts.encode_submit_detail(wire, d)?)
    }

    /// Appends the trailer; checks that the body has the announced length.
    pub fn finish_submit(
        &self,
        header: &SubmitHeader,
        wire: &mut Vec<u8>,
    ) -> Result<(), LinkError> {
        let layouts = &self.family.layouts;
        let trailer = Trailer {
            item_count: header.item_count,
            total_amount: header.total_amount,
        };
        layouts.encode_trailer(wire, &trailer)?;
        let count = usize::try_from(header.item_count).unwrap_or(usize::MAX);
        if wire.len() != self.codec.digits() + layouts.submit_body_len(count) {
            return Err(LinkError::Mismatch(
                "the part's items do not match its count".into(),
            ));
        }
        Ok(())
    }

    /// Sends a finished submit (see [`Self::begin_submit`]); the same bytes may be sent again on retry.
    pub async fn submit_wire(
        &self,
        header: &SubmitHeader,
        wire: &[u8],
    ) -> Result<SubmitReply, LinkError> {
        let layouts = &self.family.layouts;
        let body = self.exchange_bytes(wire).await?;
        let reply = layouts.decode_submit_reply(&body)?;
        if reply.batch_no != header.batch_no {
            return Err(LinkError::Mismatch(
                "submit reply for another batch_no".into(),
            ));
        }
        Ok(reply)
    }

    /// Submits a whole part from its details (tests and tools).
    pub async fn submit(
        &self,
        header: &SubmitHeader,
        details: &[SubmitDetail],
    ) -> Result<SubmitReply, LinkError> {
        let mut wire = self.begin_submit(header)?;
        for d in details {
            self.push_detail(&mut wire, d)?;
        }
        self.finish_submit(header, &mut wire)?;
        self.submit_wire(header, &wire).await
    }

    /// Asks for the results of `batch_no`.
    pub async fn query(&self, q: &Query) -> Result<QueryReply, LinkError> {
        let body = self.family.layouts.encode_query(q)?;
        let reply_body = self.send_small(body).await?;
        let reply = self
            .family
            .layouts
            .decode_query_reply(&reply_body, &self.family.state_final)?;
        if reply.header.batch_no != q.batch_no {
            return Err(LinkError::Mismatch(
                "query reply for another batch_no".into(),
            ));
        }
        Ok(reply)
    }

    /// Echoes every idle connection that has been quiet for the echo interval; drops stale ones.
    pub async fn keep_alive(&self) {
        let conns: Vec<Conn> = std::mem::take(&mut *self.idle.lock().await);
        let mut keep = Vec::with_capacity(conns.len());
        for mut c in conns {
            if !self.still_fresh(&c) {
                continue;
            }
            if c.last_used.elapsed() < self.echo_interval {
                keep.push(c);
                continue;
            }
            let Ok(body) = self.family.layouts.encode_echo(&self.family.echo_request) else {
                continue;
            };
            let Ok(header) = self.codec.header(body.len()) else {
                continue;
            };
            let ok =
                tokio::time::timeout(self.request_timeout.min(Duration::from_secs(10)), async {
                    let s = c.framed.get_mut();
                    s.write_all(&header).await.ok()?;
                    s.write_all(&body).await.ok()?;
                    let reply = c.framed.next().await?.ok()?;
                    let code = self.family.layouts.decode_echo(&reply).ok()?;
                    (code == self.family.echo_reply).then_some(())
                })
                .await;
            if matches!(ok, Ok(Some(()))) {
                c.last_used = Instant::now();
                keep.push(c);
            }
        }
        self.idle.lock().await.extend(keep);
    }

    /// Whether the bank can be reached now (readiness).
    pub async fn reachable(&self) -> bool {
        let Ok(body) = self.family.layouts.encode_echo(&self.family.echo_request) else {
            return false;
        };
        match self.send_small(body).await {
            Ok(reply) => self
                .family
                .layouts
                .decode_echo(&reply)
                .is_ok_and(|c| c == self.family.echo_reply),
            Err(_) => false,
        }
    }

    /// The echo interval.
    pub fn echo_interval(&self) -> Duration {
        self.echo_interval
    }
}
