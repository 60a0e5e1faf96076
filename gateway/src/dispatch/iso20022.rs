//! The ISO 20022 family's link (bank B): a part is one `pain.001.001.09` document `POST`ed over HTTPS
//! with mutual TLS; its results come back as `pain.002.001.10` from the status call.
//!
//! ```text
//! send:    POST submit_path  pain.001 (streamed from the store)  -> 202 ACTC | 200 (repeat) | 400/413 | 503
//! resolve: GET  status_path  (an unknown send)                   -> 200 (the bank has it) | 404 (send again)
//! poll:    GET  status_path                                      -> 200 PDNG | ACCC / PART / RJCT + TxInfAndSts
//! ```
//! Only the configured CA is trusted (no system roots, no insecure mode); the gateway presents the
//! client certificate the bank issued. At most `max_connections` (8) requests are in flight at once.
//! A `503` is retried with the same body after `Retry-After` (a floor under our own backoff). A request
//! that may have reached the bank without a readable answer has an **unknown** outcome: the gateway asks
//! the status before it sends anything again (`MsgId` is the part's reference, stored before the first
//! send, so a repeat is answered `200` and never paid twice).
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bank_profiles::{ItemOutcome, Profile, QueryOutcome, StatusOutcome, SubmitOutcome};
use codecs::format::iso20022::BeijingTime;
use codecs::format::iso20022::pain001::{
    AccountKind as TxAccountKind, GroupHeader, Pain001Writer, PaymentInfo,
    RecipientKind as TxRecipientKind, Transaction,
};
use codecs::format::iso20022::pain002::{StatusReport, TxState, read_document};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use super::BankEntry;
use super::worker::{apply_final, backoff, event, ms, next_poll_at, review};
use crate::app::App;
use crate::config;
use crate::domain::{AccountKind, ItemStatus, PartState, RecipientKind, ids};
use crate::intake::parse::{HeaderIn, ItemIn};
use crate::ops::metrics;
use crate::results::Mismatch;
use crate::store::{ItemResult, PartRow, SentItem, StoreError};

/// Why an HTTP exchange gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No connection (refused, TLS handshake failed): nothing reached the bank.
    #[error("no connection to the bank (nothing sent): {0}")]
    Connect(String),
    /// The request may have reached the bank, but no complete answer came.
    #[error("no complete answer from the bank: {0}")]
    Transport(String),
}

impl HttpError {
    /// Whether the bank certainly got nothing.
    pub fn nothing_sent(&self) -> bool {
        matches!(self, Self::Connect(_))
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct HttpAnswer {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
    /// `Retry-After` in seconds, when sent.
    pub retry_after: Option<Duration>,
}

/// Bank B's link.
#[derive(Debug)]
pub struct Iso20022Link {
    client: reqwest::Client,
    base: String,
    table: bank_profiles::Iso20022,
    slots: Semaphore,
    max_body: usize,
}

/// The whole error chain of `e`, so that a TLS problem says what it is ("invalid peer certificate:
/// UnknownIssuer", "received fatal alert: CertificateRequired").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Whether an error is the bank refusing the TLS handshake with an alert. With TLS 1.3 the client
/// learns that its certificate was refused only after it has written its request into the connection;
/// the bank never read it (the handshake failed), so nothing was sent in any sense that matters.
fn refused_handshake(text: &str) -> bool {
    const ALERTS: &[&str] = &[
        "UnknownCA",
        "BadCertificate",
        "CertificateRequired",
        "CertificateUnknown",
        "CertificateRevoked",
        "CertificateExpired",
        "UnsupportedCertificate",
        "AccessDenied",
        "HandshakeFailure",
        "DecryptError",
    ];
    text.contains("received fatal alert")
        && ALERTS.iter().any(|a| text.contains(&format!("alert: {a}")))
}

fn tls_config(settings: &config::Bank) -> Result<rustls::ClientConfig, String> {
    let ca = settings
        .ca
        .as_ref()
        .ok_or("ca: required for an HTTPS bank (only this CA is trusted; no system roots)")?;
    let cert = settings
        .client_cert
        .as_ref()
        .ok_or("client_cert: required (mutual TLS: the certificate the bank issued)")?;
    let key = settings
        .client_key
        .as_ref()
        .ok_or("client_key: required (the key of client_cert)")?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("ca {}: {e}", ca.display()))? {
        let c = c.map_err(|e| format!("ca {}: {e}", ca.display()))?;
        roots
            .add(c)
            .map_err(|e| format!("ca {}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("ca {}: no certificate in the file", ca.display()));
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("client_cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("client_cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "client_cert {}: no certificate in the file",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("client_key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("client_cert/client_key: {e}"))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

impl Iso20022Link {
    /// Builds the link from the profile and the deployment settings (endpoint `https://host:port`,
    /// `ca`, `client_cert`, `client_key`).
    pub fn new(profile: &Profile, settings: &config::Bank) -> Result<Self, String> {
        let table = profile
            .iso20022
            .clone()
            .ok_or("the profile has no [iso20022] table")?;
        let base = settings.endpoint.trim_end_matches('/').to_owned();
        if !base.starts_with("https://") {
            return Err(format!(
                "endpoint `{base}`: must be https://host:port (the bank refuses plain HTTP)"
            ));
        }
        let tls = tls_config(settings)?;
        let t = &profile.transport;
        let slots = settings
            .max_connections
            .map_or(t.max_connections, |c| c.clamp(1, t.max_connections))
            .clamp(1, 8) as usize;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .http1_only()
            .no_proxy()
            .connect_timeout(t.connect_timeout.0)
            .timeout(
                settings
                    .request_timeout
                    .map_or(t.request_timeout.0, |d| d.0),
            )
            .pool_max_idle_per_host(slots)
            .pool_idle_timeout(profile.timers.idle_timeout.0)
            .build()
            .map_err(|e| format!("HTTPS client: {}", chain(&e)))?;
        Ok(Self {
            client,
            base,
            table,
            slots: Semaphore::new(slots),
            max_body: profile.transport.framing.max_body(),
        })
    }

    /// Whether an item can travel in a `CdtTrfTxInf`.
    pub fn check_item(&self, it: &ItemIn) -> Result<(), (String, String)> {
        let tx = transaction(
            "X".repeat(35).as_str(),
            &TxSource {
                seq: it.seq,
                recipient_kind: it.recipient_kind,
                name: &it.name,
                id_no: &it.id_no,
                account_no: &it.account_no,
                account_kind: it.account_kind,
                account_bank_code: &it.account_bank_code,
                amount_fen: it.amount_fen.max(1),
                phone: &it.phone,
                memo: &it.memo,
            },
        );
        tx.validate().map_err(|e| {
            let text = e.to_string();
            (api_field(&text).to_owned(), text)
        })
    }

    /// Whether a batch header can travel in the group header and payment information.
    pub fn check_header(&self, h: &HeaderIn) -> Result<(), (String, String)> {
        let g = GroupHeader {
            msg_id: "X".repeat(20),
            created: "2026-01-01T00:00:00".into(),
            nb_of_txs: 1,
            ctrl_sum_fen: 1,
            initiating_party: h.department_code.clone(),
        };
        g.validate()
            .map_err(|e| ("department_code".to_owned(), e.to_string()))?;
        let p = PaymentInfo {
            subsidy_code: h.subsidy_code.clone(),
            execution_date: "2026-01-01".into(),
            payer_name: h.payer_account.name.clone(),
            payer_account: h.payer_account.no.clone(),
            payer_bank_code: self.table.clearing_member_id.clone(),
        };
        p.validate().map_err(|e| {
            let text = e.to_string();
            let field = if text.contains("Dbtr/Nm") {
                "payer_account.name"
            } else if text.contains("DbtrAcct") {
                "payer_account.no"
            } else {
                "subsidy_code"
            };
            (field.to_owned(), text)
        })
    }

    async fn exchange(&self, req: reqwest::RequestBuilder) -> Result<HttpAnswer, HttpError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| HttpError::Connect(e.to_string()))?;
        let resp = req.send().await.map_err(|e| {
            let text = chain(&e);
            if e.is_connect() || refused_handshake(&text) {
                HttpError::Connect(text)
            } else {
                HttpError::Transport(text)
            }
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| HttpError::Transport(chain(&e)))?
        {
            if body.len() + chunk.len() > self.max_body {
                return Err(HttpError::Transport(format!(
                    "answer over {} bytes",
                    self.max_body
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpAnswer {
            status,
            body,
            retry_after,
        })
    }

    /// `POST`s a pain.001 document.
    pub async fn submit(&self, body: &[u8]) -> Result<HttpAnswer, HttpError> {
        let url = format!("{}{}", self.base, self.table.submit_path);
        let req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, &self.table.content_type)
            .body(body.to_vec());
        self.exchange(req).await
    }

    /// `GET`s the status of `msg_id`.
    pub async fn status(&self, msg_id: &str, query_id: &str) -> Result<HttpAnswer, HttpError> {
        let url = format!(
            "{}{}",
            self.base,
            self.table.status_path_for(msg_id, query_id)
        );
        self.exchange(self.client.get(url)).await
    }

    /// `host:port` of the endpoint.
    pub fn host_port(&self) -> &str {
        self.base.trim_start_matches("https://")
    }

    /// The payout bank's clearing member id.
    pub fn clearing_member_id(&self) -> &str {
        &self.table.clearing_member_id
    }
}

/// The item's fields as a transaction needs them.
struct TxSource<'a> {
    seq: i64,
    recipient_kind: RecipientKind,
    name: &'a str,
    id_no: &'a str,
    account_no: &'a str,
    account_kind: AccountKind,
    account_bank_code: &'a str,
    amount_fen: i64,
    phone: &'a str,
    memo: &'a str,
}

fn api_field(problem: &str) -> &'static str {
    let pairs = [
        ("Cdtr/Nm", "name"),
        ("Othr/Id", "id_no"),
        ("CdtrAcct", "account_no"),
        ("CdtrAgt", "account_bank_code"),
        ("MobNb", "phone"),
        ("Ustrd", "memo"),
        ("InstdAmt", "amount_fen"),
    ];
    pairs
        .iter()
        .find(|(k, _)| problem.contains(k))
        .map_or("item", |(_, v)| v)
}

/// `EndToEndId` of an item: the part's reference and the seq, unique for ever since part references
/// are.
pub fn end_to_end_id(bank_ref: &str, seq: i64) -> String {
    format!("{bank_ref}{seq:010}")
}

fn transaction(e2e: &str, s: &TxSource<'_>) -> Transaction {
    Transaction {
        seq: u64::try_from(s.seq).unwrap_or_default(),
        end_to_end_id: e2e.to_owned(),
        amount_fen: u64::try_from(s.amount_fen).unwrap_or_default(),
        account_bank_code: s.account_bank_code.to_owned(),
        name: s.name.to_owned(),
        recipient_kind: match s.recipient_kind {
            RecipientKind::Person => TxRecipientKind::Person,
            RecipientKind::Unit => TxRecipientKind::Unit,
        },
        id_no: s.id_no.to_owned(),
        phone: s.phone.to_owned(),
        account_no: s.account_no.to_owned(),
        account_kind: match s.account_kind {
            AccountKind::Ssc => TxAccountKind::Ssc,
            AccountKind::Corporate => TxAccountKind::Corporate,
            AccountKind::Personal => TxAccountKind::Personal,
        },
        memo: s.memo.to_owned(),
    }
}

fn beijing_now(app: &App) -> (String, String) {
    let now = app.clock.now_shanghai();
    let date = format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let time = format!(
        "{date}T{:02}:{:02}:{:02}",
        now.hour(),
        now.minute(),
        now.second()
    );
    (date, time)
}

/// Encodes the part's document, page by page from the store.
async fn encode(
    app: &App,
    link: &Iso20022Link,
    part: &PartRow,
    batch: &crate::store::BatchRow,
) -> Result<Vec<u8>, String> {
    let (date, created) = beijing_now(app);
    let header = GroupHeader {
        msg_id: part.bank_ref.clone(),
        created,
        nb_of_txs: u64::try_from(part.item_count).unwrap_or(0),
        ctrl_sum_fen: u64::try_from(part.amount_fen).unwrap_or(0),
        initiating_party: batch.department_code.clone(),
    };
    let payment = PaymentInfo {
        subsidy_code: batch.subsidy_code.clone(),
        execution_date: date,
        payer_name: batch.payer_account_name.clone(),
        payer_account: batch.payer_account_no.clone(),
        payer_bank_code: link.clearing_member_id().to_owned(),
    };
    let cap = usize::try_from(part.item_count).unwrap_or(0) * 1_100 + 4_096;
    let mut w = Pain001Writer::new(Vec::with_capacity(cap), &header, &payment)
        .map_err(|e| e.to_string())?;
    let mut after = 0;
    loop {
        let page = app
            .store
            .part_outgoing_page(&part.part_id, after, 5_000)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for i in &page {
            let tx = transaction(
                &end_to_end_id(&part.bank_ref, i.seq),
                &TxSource {
                    seq: i.seq,
                    recipient_kind: i.recipient_kind,
                    name: i.name.expose(),
                    id_no: i.id_no.expose(),
                    account_no: i.account_no.expose(),
                    account_kind: i.account_kind,
                    account_bank_code: &i.account_bank_code,
                    amount_fen: i.amount_fen,
                    phone: i.phone.expose(),
                    memo: &i.memo,
                },
            );
            w.transaction(&tx).map_err(|e| e.to_string())?;
        }
    }
    w.finish().map_err(|e| e.to_string())
}

/// What a pain.002 body says, for logs and review texts: `GrpSts` and the reasons' texts.
fn describe_report(body: &[u8]) -> String {
    match read_document(body) {
        Ok(r) => {
            let mut s = format!(
                "GrpSts {}",
                r.header.group_status.as_deref().unwrap_or("(none)")
            );
            for reason in &r.header.reasons {
                if let Some(code) = &reason.reason {
                    s.push_str(&format!(" {}", code.as_str()));
                }
                for t in &reason.additional_info {
                    s.push_str(&format!(": {t}"));
                }
            }
            s
        }
        Err(e) => format!("unreadable pain.002 ({e})"),
    }
}

/// Sends a part: encode, `POST`, and record what the bank said.
pub async fn send(
    app: &App,
    bank: &BankEntry,
    link: &Iso20022Link,
    part: PartRow,
) -> Result<(), StoreError> {
    let Some(batch) = app.store.get_batch(&part.batch_id).await? else {
        return review(
            app,
            bank,
            &part,
            "missing-batch",
            "the part's batch is gone".into(),
        )
        .await;
    };
    let body = match encode(app, link, &part, &batch).await {
        Ok(b) => b,
        Err(e) => return review(app, bank, &part, "encode", e).await,
    };
    let mut delays = backoff(bank);
    loop {
        let started = Instant::now();
        let result = link.submit(&body).await;
        let code = match &result {
            Ok(a) => a.status.to_string(),
            Err(_) => "error".into(),
        };
        metrics::bank_request(&bank.code, "submit", &code, started.elapsed());
        let answer = match result {
            Ok(a) => a,
            Err(e) if e.nothing_sent() => {
                warn!(bank = %bank.code, part = %part.part_id, error = %e, "cannot reach the bank");
                app.store.part_note(&part.part_id, &e.to_string()).await?;
                match delays.next() {
                    Some(d) => {
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    None => {
                        let next = app.clock.now_ms() + ms(bank.profile.timers.retry_max.0);
                        return app
                            .store
                            .part_retry(&part.part_id, PartState::Pending, next, &e.to_string())
                            .await;
                    }
                }
            }
            Err(e) => {
                warn!(bank = %bank.code, part = %part.part_id, error = %e, "send outcome unknown; will ask the bank");
                let next = app.clock.now_ms() + ms(bank.profile.timers.retry_min.0);
                return app
                    .store
                    .part_retry(&part.part_id, PartState::Unknown, next, &e.to_string())
                    .await;
            }
        };
        match bank.profile.codes.submit.get(&code).copied() {
            Some(SubmitOutcome::Accepted | SubmitOutcome::Duplicate) => {
                if let Ok(r) = read_document(&answer.body)
                    && (r.header.original_msg_id != part.bank_ref
                        || r.header.group_status.as_deref() == Some("RJCT"))
                {
                    return review(
                        app,
                        bank,
                        &part,
                        "contradiction",
                        format!(
                            "HTTP {code} but the report is about `{}` with {}",
                            r.header.original_msg_id,
                            describe_report(&answer.body)
                        ),
                    )
                    .await;
                }
                let now = app.clock.now_ms();
                info!(bank = %bank.code, part = %part.part_id, status = answer.status, items = part.item_count, "part accepted");
                let mut events = vec![event(
                    app,
                    "batch.sent",
                    &part,
                    &bank.code,
                    json!({"bank_ref": part.bank_ref}),
                )];
                return app
                    .store
                    .part_accepted(
                        &part,
                        None,
                        now,
                        now + ms(bank.poll_interval()),
                        &mut events,
                    )
                    .await;
            }
            Some(SubmitOutcome::Busy) => match delays.next() {
                Some(d) => tokio::time::sleep(d.max(answer.retry_after.unwrap_or_default())).await,
                None => {
                    let wait = bank
                        .profile
                        .timers
                        .retry_max
                        .0
                        .max(answer.retry_after.unwrap_or_default());
                    return app
                        .store
                        .part_retry(
                            &part.part_id,
                            PartState::Pending,
                            app.clock.now_ms() + ms(wait),
                            "bank busy",
                        )
                        .await;
                }
            },
            Some(SubmitOutcome::Rejected) => {
                return review(
                    app,
                    bank,
                    &part,
                    "refused",
                    format!(
                        "bank answered HTTP {code}: {}",
                        describe_report(&answer.body)
                    ),
                )
                .await;
            }
            None => {
                return review(
                    app,
                    bank,
                    &part,
                    "unknown-code",
                    format!("unknown submit answer HTTP {code}"),
                )
                .await;
            }
        }
    }
}

/// Asks the bank about a part: `resolving` an unknown send, or polling an accepted part for results.
pub async fn ask(
    app: &App,
    bank: &BankEntry,
    link: &Iso20022Link,
    part: PartRow,
    resolving: bool,
) -> Result<(), StoreError> {
    let started = Instant::now();
    let result = link.status(&part.bank_ref, &ids::new_bank_ref()).await;
    let code = match &result {
        Ok(a) => a.status.to_string(),
        Err(_) => "error".into(),
    };
    metrics::bank_request(&bank.code, "query", &code, started.elapsed());
    let now_ms = app.clock.now_ms();
    let later = now_ms + ms(bank.profile.timers.retry_min.0.max(Duration::from_secs(1)));
    let part_id = part.part_id.as_str();
    let again = |note: String| async move {
        if resolving {
            app.store
                .part_retry(part_id, PartState::Unknown, later, &note)
                .await
        } else {
            app.store.poll_again(part_id, later, Some(&note)).await
        }
    };
    let answer = match result {
        Ok(a) => a,
        Err(e) => return again(e.to_string()).await,
    };
    match bank.profile.codes.query.get(&code).copied() {
        Some(QueryOutcome::Answered) => {}
        Some(QueryOutcome::Busy) => {
            let wait = answer.retry_after.map_or(later, |d| now_ms + ms(d));
            return if resolving {
                app.store
                    .part_retry(&part.part_id, PartState::Unknown, wait, "bank busy")
                    .await
            } else {
                app.store
                    .poll_again(&part.part_id, wait, Some("bank busy"))
                    .await
            };
        }
        Some(QueryOutcome::Unknown) if resolving => {
            info!(bank = %bank.code, part = %part.part_id, "the bank never got the part: sending it again");
            return app
                .store
                .part_retry(
                    &part.part_id,
                    PartState::Pending,
                    now_ms,
                    "unknown at the bank",
                )
                .await;
        }
        Some(QueryOutcome::Unknown) => {
            return review(
                app,
                bank,
                &part,
                "forgotten",
                "the bank no longer knows an accepted part".into(),
            )
            .await;
        }
        None => {
            return review(
                app,
                bank,
                &part,
                "unknown-code",
                format!("unknown status answer HTTP {code}"),
            )
            .await;
        }
    }
    let report = match read_document(&answer.body) {
        Ok(r) if r.header.original_msg_id == part.bank_ref => r,
        Ok(r) => {
            warn!(bank = %bank.code, part = %part.part_id, about = %r.header.original_msg_id, "status report about another MsgId; asking again");
            return again(format!(
                "status report about `{}`",
                r.header.original_msg_id
            ))
            .await;
        }
        Err(e) => {
            warn!(bank = %bank.code, part = %part.part_id, error = %e, "unreadable status report; asking again");
            return again(format!("unreadable status report: {e}")).await;
        }
    };
    if resolving {
        let mut events = vec![event(
            app,
            "batch.sent",
            &part,
            &bank.code,
            json!({"bank_ref": part.bank_ref}),
        )];
        return app
            .store
            .part_accepted(&part, None, now_ms, now_ms, &mut events)
            .await;
    }
    let group = report.header.group_status.clone().unwrap_or_default();
    match bank.profile.codes.status_outcome(&group) {
        Some(StatusOutcome::Accepted | StatusOutcome::Processing) => {
            let next = next_poll_at(app, bank, &part.batch_id, now_ms).await?;
            app.store.poll_again(&part.part_id, next, None).await
        }
        Some(StatusOutcome::Final) => {
            let sent = app.store.part_sent(&part.part_id).await?;
            match reconcile(&part.bank_ref, &sent, &report, &bank.profile.codes) {
                Ok(results) => apply_final(app, bank, &part, &results, now_ms).await,
                Err(m) => review(app, bank, &part, "reconcile", m.0).await,
            }
        }
        None => {
            review(
                app,
                bank,
                &part,
                "unknown-state",
                format!("unknown group status `{group}`"),
            )
            .await
        }
    }
}

fn beijing_time_ms(t: BeijingTime) -> Option<i64> {
    let (y, mo, d, h, mi, s) = t.parts();
    crate::results::beijing_ms(
        &format!("{y:04}{mo:02}{d:02}"),
        &format!("{h:02}{mi:02}{s:02}"),
    )
}

/// Reconciles a final status report with the part's items: one `TxInfAndSts` per sent item (matched by
/// `OrgnlEndToEndId`, with the matching `OrgnlInstrId`), nothing else; `GrpSts` agrees with the items
/// (`ACCC` all credited, `RJCT` none, `PART` some).
pub fn reconcile(
    bank_ref: &str,
    sent: &[SentItem],
    report: &StatusReport,
    codes: &bank_profiles::Codes,
) -> Result<Vec<ItemResult>, Mismatch> {
    let by_e2e: HashMap<String, &SentItem> = sent
        .iter()
        .map(|i| (end_to_end_id(bank_ref, i.seq), i))
        .collect();
    let mut seen = HashMap::with_capacity(sent.len());
    let mut out = Vec::with_capacity(sent.len());
    let (mut credited, mut not_credited) = (0usize, 0usize);
    for t in &report.transactions {
        let e2e = t.original_end_to_end_id.as_deref().unwrap_or_default();
        let Some(item) = by_e2e.get(e2e) else {
            return Err(Mismatch(format!(
                "result for EndToEndId `{e2e}`, which this part did not send"
            )));
        };
        if seen.insert(item.seq, ()).is_some() {
            return Err(Mismatch(format!("two results for seq {}", item.seq)));
        }
        if let Some(instr) = &t.original_instr_id
            && instr.parse::<i64>().ok() != Some(item.seq)
        {
            return Err(Mismatch(format!(
                "EndToEndId `{e2e}` came back with InstrId `{instr}`, sent as {}",
                item.seq
            )));
        }
        let key = match t.state() {
            TxState::Credited => t.status.clone().unwrap_or_default(),
            TxState::Rejected => t.reason_code().unwrap_or("RJCT").to_owned(),
            _ => t.status.clone().unwrap_or_else(|| "(no TxSts)".into()),
        };
        if t.state() == TxState::Credited {
            credited += 1;
        } else {
            not_credited += 1;
        }
        let (outcome, reason) = codes.item_outcome(&key);
        let status = match outcome {
            ItemOutcome::Succeeded if t.state() == TxState::Credited => ItemStatus::Succeeded,
            ItemOutcome::Failed if t.state() == TxState::Rejected => ItemStatus::Failed,
            _ => ItemStatus::Review,
        };
        let text: Vec<&str> = t
            .reasons
            .iter()
            .flat_map(|r| r.additional_info.iter().map(String::as_str))
            .collect();
        let fail_reason = if text.is_empty() {
            reason.to_owned()
        } else {
            text.join(" ")
        };
        out.push(ItemResult {
            seq: item.seq,
            status,
            result_code: key.clone(),
            fail_code: (status != ItemStatus::Succeeded).then(|| key.clone()),
            fail_reason: (status != ItemStatus::Succeeded).then_some(fail_reason),
            result_bank_code: t
                .creditor_agent
                .clone()
                .unwrap_or_else(|| item.account_bank_code.clone()),
            confirmed_at: t.acceptance_time.and_then(beijing_time_ms),
            bank_txn_no: t.account_servicer_ref.clone(),
        });
    }
    if out.len() != sent.len() {
        return Err(Mismatch(format!(
            "{} results for {} items sent",
            out.len(),
            sent.len()
        )));
    }
    let group = report.header.group_status.as_deref().unwrap_or_default();
    let agrees = match group {
        "ACCC" | "ACSC" => not_credited == 0,
        "RJCT" => credited == 0,
        "PART" => credited > 0 && not_credited > 0,
        _ => false,
    };
    if !agrees {
        return Err(Mismatch(format!(
            "GrpSts {group} but {credited} credited and {not_credited} not"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Pii;

    const REF: &str = "01M8BN0000000000TEST";

    fn sent(seq: i64) -> SentItem {
        SentItem {
            seq,
            amount_fen: 100,
            account_no: Pii::new(format!("62179955057247541{seq:02}")),
            account_bank_code: "102241000019".into(),
        }
    }

    fn tx(seq: i64, sts: &str, reason: Option<&str>) -> String {
        let rsn = reason.map_or(String::new(), |r| {
            format!("<StsRsnInf><Rsn><Cd>{r}</Cd></Rsn></StsRsnInf>")
        });
        format!(
            "<TxInfAndSts><OrgnlInstrId>{seq}</OrgnlInstrId><OrgnlEndToEndId>{}</OrgnlEndToEndId>\
             <TxSts>{sts}</TxSts>{rsn}<AccptncDtTm>2026-03-04T09:01:02</AccptncDtTm>\
             <AcctSvcrRef>T{seq}</AcctSvcrRef></TxInfAndSts>",
            end_to_end_id(REF, seq)
        )
    }

    fn report(group: &str, txs: &[String]) -> StatusReport {
        let xml = format!(
            "<?xml version=\"1.0\"?><b:Document xmlns:b=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.10\">\
             <b:CstmrPmtStsRpt><b:GrpHdr><b:MsgId>R1</b:MsgId><b:CreDtTm>2026-03-04T10:20:30</b:CreDtTm></b:GrpHdr>\
             <b:OrgnlGrpInfAndSts><b:OrgnlMsgId>{REF}</b:OrgnlMsgId><b:OrgnlMsgNmId>pain.001.001.09</b:OrgnlMsgNmId>\
             <b:GrpSts>{group}</b:GrpSts></b:OrgnlGrpInfAndSts><b:OrgnlPmtInfAndSts><b:OrgnlPmtInfId>{REF}</b:OrgnlPmtInfId>{}\
             </b:OrgnlPmtInfAndSts></b:CstmrPmtStsRpt></b:Document>",
            txs.join("").replace("<", "<b:").replace("<b:/", "</b:")
        );
        read_document(xml.as_bytes()).expect("a valid report")
    }

    fn codes() -> bank_profiles::Codes {
        bank_profiles::builtin().expect("profiles")["103241000018"]
            .codes
            .clone()
    }

    #[test]
    fn credited_failed_and_am05_to_review() {
        let sent = [sent(1), sent(2), sent(3)];
        let r = report(
            "PART",
            &[
                tx(1, "ACCC", None),
                tx(2, "RJCT", Some("AC04")),
                tx(3, "RJCT", Some("AM05")),
            ],
        );
        let out = reconcile(REF, &sent, &r, &codes()).expect("reconciles");
        assert_eq!(out[0].status, ItemStatus::Succeeded);
        assert_eq!(out[0].bank_txn_no.as_deref(), Some("T1"));
        assert!(out[0].confirmed_at.is_some());
        assert_eq!(out[1].status, ItemStatus::Failed);
        assert_eq!(out[1].fail_code.as_deref(), Some("AC04"));
        assert_eq!(
            out[2].status,
            ItemStatus::Review,
            "AM05: paid before, never a failure to correct"
        );
    }

    #[test]
    fn what_does_not_add_up_is_refused() {
        let sent = [sent(1), sent(2)];
        // GrpSts ACCC but one rejected.
        let r = report("ACCC", &[tx(1, "ACCC", None), tx(2, "RJCT", Some("AC01"))]);
        assert!(reconcile(REF, &sent, &r, &codes()).is_err());
        // A result missing.
        let r = report("ACCC", &[tx(1, "ACCC", None)]);
        assert!(reconcile(REF, &sent, &r, &codes()).is_err());
        // A result for an item never sent.
        let r = report(
            "ACCC",
            &[
                tx(1, "ACCC", None),
                tx(2, "ACCC", None),
                tx(9, "ACCC", None),
            ],
        );
        assert!(reconcile(REF, &sent, &r, &codes()).is_err());
        // An unknown reason is review, not failure.
        let r = report("PART", &[tx(1, "ACCC", None), tx(2, "RJCT", Some("XX99"))]);
        let out = reconcile(REF, &sent, &r, &codes()).expect("reconciles");
        assert_eq!(out[1].status, ItemStatus::Review);
    }

    #[test]
    fn tls_refusals_are_recognised() {
        assert!(refused_handshake(
            "connection error: received fatal alert: UnknownCA"
        ));
        assert!(refused_handshake(
            "received fatal alert: CertificateRequired"
        ));
        assert!(!refused_handshake("connection reset by peer"));
    }
}
