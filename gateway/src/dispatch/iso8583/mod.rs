//! The ISO 8583 family's link (bank C): one payment per message over a pipelined channel.
//!
//! ```text
//! send (a part, window by window):
//!   items with an earlier attempt -> inquiry (F3 300000, F37, F90 = that attempt) first:
//!        25 -> never arrived: pay it | 00/09/final -> accepted | no answer -> ask again later
//!   the others -> attempt (STAN, F7) stored -> payout (F3 400000, F37 = the item's reference)
//!        00/94 -> accepted | 96, A0, A7 -> again (same F37) | 30 -> item review
//!        timeout, lost, bad MAC -> unknown: asked (inquiry) before any resend
//!   all accepted -> the part is accepted; polling starts
//! poll: inquiry per waiting item -> 09 again later | final code -> result (F121 CT, TX, RS)
//! ```
//! The item's F37 is stored before its first attempt and never changes, so the bank pays it at most once
//! whatever happens; nothing is ever re-sent on an unknown outcome without asking first.
pub mod channel;

use std::time::Duration;

use bank_profiles::iso8583::MessageKind;
use bank_profiles::{
    ItemOutcome, Profile, QueryOutcome, SessionOutcome, StatusOutcome, SubmitOutcome,
};
use codecs::format::iso8583::{Message, Tlv};
use codecs::mac::{MacAlg, MacKey};
use futures::future::join_all;
use serde_json::json;
use tracing::{info, warn};

use self::channel::{CallError, Channel, ChannelConfig, beijing_stamps};
use super::BankEntry;
use super::worker::{apply_final_items, backoff, event, keep_lease, ms, next_poll_at, review};
use crate::app::App;
use crate::config;
use crate::domain::{AccountKind, ItemStatus, PartState, RecipientKind};
use crate::intake::parse::{HeaderIn, ItemIn};
use crate::ops::metrics;
use crate::store::{Attempt, BankItem, EventRow, ItemResult, PartRow, StoreError};

/// Bank C's link: the channel and the profile's tables.
#[derive(Debug)]
pub struct Iso8583Link {
    channel: Channel,
    table: bank_profiles::Iso8583,
    institution: String,
    terminal: String,
    /// Items taken per step: their attempts stored in one transaction, then sent pipelined (the channel
    /// keeps at most its window per connection in flight).
    window: usize,
    endpoint: String,
}

/// Items per step at least: each step costs two durable commits (attempts before, answers after), so
/// steps of one channel window (128) made the commits, not the bank, the limit.
const STEP_ITEMS: usize = 1_000;

/// What one payout attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Paid {
    /// The bank has it (00 or 94).
    Accepted(String),
    /// Try again later with the same F37 (96, A0, A7, nothing sent).
    Again(String),
    /// The bank cannot take it (30, an unknown code): an operator must look.
    Refused(String),
    /// Perhaps arrived: ask before anything else.
    Unknown(String),
}

/// What an inquiry came to.
#[derive(Debug, Clone)]
enum Asked {
    /// The bank never got the payout (25).
    NeverArrived,
    /// Still processing (09).
    Processing,
    /// Final: the result.
    Final(ItemResult),
    /// No usable answer now (busy, no reply, bad MAC, refused): ask again later.
    NoAnswer(String),
}

fn read_key(settings: &config::Bank) -> Result<MacKey, String> {
    let hex = if let Some(f) = &settings.mac_key_file {
        std::fs::read_to_string(f).map_err(|e| format!("mac_key_file {}: {e}", f.display()))?
    } else if let Some(v) = &settings.mac_key_env {
        std::env::var(v).map_err(|_| format!("mac_key_env: the variable {v} is not set"))?
    } else {
        return Err(
            "mac_key_file or mac_key_env: required (the MAC key agreed with the bank)".into(),
        );
    };
    MacKey::from_hex(hex.trim()).map_err(|e| format!("MAC key: {e}"))
}

impl Iso8583Link {
    /// Builds the link from the profile, the deployment settings and who the gateway is.
    pub fn new(
        profile: &Profile,
        settings: &config::Bank,
        gateway: &config::Gateway,
    ) -> Result<Self, String> {
        let table = profile
            .iso8583
            .clone()
            .ok_or("the profile has no [iso8583] table")?;
        let spec = table.message_spec().map_err(|e| e.to_string())?;
        let alg = match settings.mac_alg.as_deref() {
            None => table.mac,
            Some("x919") => MacAlg::X919,
            Some("sm4") => MacAlg::Sm4,
            Some(other) => return Err(format!("mac_alg `{other}`: x919 or sm4")),
        };
        let key = read_key(settings)?;
        if settings.endpoint.contains("://") {
            return Err(format!(
                "endpoint `{}`: host:port (a TCP bank)",
                settings.endpoint
            ));
        }
        let t = &profile.transport;
        let max_connections = settings
            .max_connections
            .map_or(t.max_connections, |c| c.clamp(1, t.max_connections))
            as usize;
        let window = profile.limits.max_in_flight.max(1) as usize;
        let sign_on_again = profile
            .codes
            .session
            .iter()
            .filter(|(_, o)| **o == SessionOutcome::SignOn)
            .map(|(k, _)| k.clone())
            .collect();
        let cfg = ChannelConfig {
            bank: profile.code.clone(),
            endpoint: settings.endpoint.clone(),
            max_connections,
            window,
            connect_timeout: t.connect_timeout.0,
            request_timeout: settings
                .request_timeout
                .map_or(t.request_timeout.0, |d| d.0),
            echo_interval: profile.timers.echo_interval.0,
            // Half the bank's idle limit: well after the poll interval, so a part being polled
            // keeps its connections.
            release_after: profile.timers.idle_timeout.0 / 2,
            max_frame: t.framing.max_body(),
            institution: gateway.institution_code.clone(),
            network_mti: (
                table.messages.network.mti.clone(),
                table.messages.network_reply.mti.clone(),
            ),
            sign_on: table.network_codes.sign_on.clone(),
            echo: table.network_codes.echo.clone(),
            sign_on_again,
        };
        Ok(Self {
            channel: Channel::new(cfg, spec, alg, key),
            table,
            institution: gateway.institution_code.clone(),
            terminal: gateway.node_id.clone(),
            window: (window * max_connections).max(STEP_ITEMS),
            endpoint: settings.endpoint.clone(),
        })
    }

    /// `host:port`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Echo on idle connections (the channel also echoes on its own timer).
    pub async fn keep_alive(&self) {
        self.channel.keep_alive().await;
    }

    fn value(&self, table: &str, key: &str) -> String {
        self.table.value(table, key).unwrap_or_default().to_owned()
    }

    fn recipient_data(
        &self,
        it: &RecipientFields<'_>,
        batch_ref: &str,
        subsidy: &str,
    ) -> Result<String, String> {
        let id_type = match it.recipient_kind {
            RecipientKind::Person => self.value("id_type", "person"),
            RecipientKind::Unit => self.value("id_type", "unit"),
        };
        let kind = match it.account_kind {
            AccountKind::Ssc => self.value("account_kind", "ssc"),
            AccountKind::Corporate => self.value("account_kind", "corporate"),
            AccountKind::Personal => self.value("account_kind", "personal"),
        };
        let mut tlv = Tlv::new();
        for spec in &self.table.recipient_data.tags {
            let v = match spec.name.as_str() {
                "name" => it.name.to_owned(),
                "id_type" => id_type.clone(),
                "id_no" => it.id_no.to_owned(),
                "account_kind" => kind.clone(),
                "phone" => it.phone.to_owned(),
                "subsidy_code" => subsidy.to_owned(),
                "batch_ref" => batch_ref.to_owned(),
                "seq" => format!("{:08}", it.seq),
                _ => continue,
            };
            if v.is_empty() && !spec.required {
                continue;
            }
            if let Some(max) = spec.max
                && v.len() > max
            {
                return Err(format!("{} is longer than {max}", spec.name));
            }
            tlv.push(&spec.tag, v);
        }
        tlv.encode().map_err(|e| e.to_string())
    }

    /// A payout (0200, F3 payout) of an item.
    fn payout(
        &self,
        it: &RecipientFields<'_>,
        item_ref: &str,
        stan: &str,
        f7: &str,
        ctx: &PartContext,
    ) -> Result<Message, String> {
        let (_, hms, mmdd) = split_f7(f7);
        let f48 = self.recipient_data(it, &ctx.batch_ref, &ctx.subsidy)?;
        let m = &self.table.messages.payout;
        Ok(Message::new(m.mti.clone())
            .with(2, it.account_no.to_owned())
            .with(3, self.table.processing_codes.payout.clone())
            .with(4, format!("{:012}", it.amount_fen))
            .with(7, f7.to_owned())
            .with(11, stan.to_owned())
            .with(12, hms)
            .with(13, mmdd)
            .with(32, self.institution.clone())
            .with(37, item_ref.to_owned())
            .with(41, self.terminal.clone())
            .with(42, ctx.department.clone())
            .with(48, f48)
            .with(49, self.table.currency.clone())
            .with(100, it.account_bank_code.to_owned())
            .with(102, ctx.payer_account.clone()))
    }

    /// An inquiry (0200, F3 inquiry) about an item, quoting its last payout attempt in F90.
    fn inquiry(
        &self,
        item_ref: &str,
        original: &(String, String),
        stan: &str,
        f7: &str,
        department: &str,
    ) -> Message {
        let (_, hms, mmdd) = split_f7(f7);
        let f90 = format!(
            "{}{}{}{:0>11}{}",
            self.table.messages.payout.mti,
            original.0,
            original.1,
            self.institution,
            "0".repeat(11)
        );
        Message::new(self.table.messages.inquiry.mti.clone())
            .with(3, self.table.processing_codes.inquiry.clone())
            .with(7, f7.to_owned())
            .with(11, stan.to_owned())
            .with(12, hms)
            .with(13, mmdd)
            .with(32, self.institution.clone())
            .with(37, item_ref.to_owned())
            .with(41, self.terminal.clone())
            .with(42, department.to_owned())
            .with(90, f90)
    }

    /// Whether an item can travel in a payout.
    pub fn check_item(&self, it: &ItemIn) -> Result<(), (String, String)> {
        let f = RecipientFields {
            seq: it.seq,
            recipient_kind: it.recipient_kind,
            name: &it.name,
            id_no: &it.id_no,
            account_no: &it.account_no,
            account_kind: it.account_kind,
            account_bank_code: &it.account_bank_code,
            amount_fen: it.amount_fen.max(0),
            phone: &it.phone,
        };
        let ctx = PartContext {
            batch_ref: "X".repeat(20),
            subsidy: "X".into(),
            department: "X".into(),
            payer_account: "1".into(),
        };
        let msg = self
            .payout(&f, "000000000001", "000001", "0101000000", &ctx)
            .map_err(|e| ("item".to_owned(), e))?;
        codecs::format::iso8583::encode(self.channel.spec(), &msg)
            .map(|_| ())
            .map_err(|e| {
                let text = e.to_string();
                let field = if text.contains("field 2 ") || text.contains("F2 ") {
                    "account_no"
                } else if text.contains("100") {
                    "account_bank_code"
                } else if text.contains("48") {
                    "name"
                } else {
                    "item"
                };
                (
                    field.to_owned(),
                    format!("{text} (the bank's interface cannot carry it)"),
                )
            })
    }

    /// Whether a batch header can travel (F42 department, F102 payer account).
    pub fn check_header(&self, h: &HeaderIn) -> Result<(), (String, String)> {
        let f = RecipientFields {
            seq: 1,
            recipient_kind: RecipientKind::Person,
            name: "X",
            id_no: "X",
            account_no: "1",
            account_kind: AccountKind::Personal,
            account_bank_code: "1",
            amount_fen: 1,
            phone: "",
        };
        let ctx = PartContext {
            batch_ref: "X".repeat(20),
            subsidy: h.subsidy_code.clone(),
            department: h.department_code.clone(),
            payer_account: h.payer_account.no.clone(),
        };
        let msg = self
            .payout(&f, "000000000001", "000001", "0101000000", &ctx)
            .map_err(|e| ("subsidy_code".to_owned(), e))?;
        codecs::format::iso8583::encode(self.channel.spec(), &msg)
            .map(|_| ())
            .map_err(|e| {
                let text = e.to_string();
                let field = if text.contains("42") {
                    "department_code"
                } else if text.contains("102") {
                    "payer_account.no"
                } else {
                    "subsidy_code"
                };
                (field.to_owned(), text)
            })
    }
}

fn split_f7(f7: &str) -> (String, String, String) {
    let mmdd = f7.get(0..4).unwrap_or("0101").to_owned();
    let hms = f7.get(4..10).unwrap_or("000000").to_owned();
    (f7.to_owned(), hms, mmdd)
}

struct RecipientFields<'a> {
    seq: i64,
    recipient_kind: RecipientKind,
    name: &'a str,
    id_no: &'a str,
    account_no: &'a str,
    account_kind: AccountKind,
    account_bank_code: &'a str,
    amount_fen: i64,
    phone: &'a str,
}

struct PartContext {
    batch_ref: String,
    subsidy: String,
    department: String,
    payer_account: String,
}

fn fields(i: &BankItem) -> RecipientFields<'_> {
    let r = &i.row;
    RecipientFields {
        seq: r.seq,
        recipient_kind: r.recipient_kind,
        name: r.name.expose(),
        id_no: r.id_no.expose(),
        account_no: r.account_no.expose(),
        account_kind: r.account_kind,
        account_bank_code: &r.account_bank_code,
        amount_fen: r.amount_fen,
        phone: r.phone.expose(),
    }
}

fn f7_now(app: &App) -> String {
    let now =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(app.clock.now_ms()) * 1_000_000)
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    beijing_stamps(now).0
}

/// Checks that a reply answers the request (MTI, STAN, F37) and gives its F39.
fn answer_of<'a>(
    link: &Iso8583Link,
    kind: MessageKind,
    reply: &'a Message,
    stan: &str,
    item_ref: &str,
) -> Result<&'a str, String> {
    let want = &link.table.messages.get(kind).mti;
    if &reply.mti != want {
        return Err(format!("reply MTI {} (expected {want})", reply.mti));
    }
    if reply.text(11) != Some(stan) {
        return Err("reply STAN differs".into());
    }
    if reply.text(37).is_some_and(|r| r != item_ref) {
        return Err(format!(
            "reply about F37 {} (asked about {item_ref})",
            reply.text(37).unwrap_or_default()
        ));
    }
    reply.text(39).ok_or_else(|| "reply without F39".to_owned())
}

async fn pay(
    link: &Iso8583Link,
    bank: &BankEntry,
    msg: Message,
    stan: &str,
    item_ref: &str,
) -> Paid {
    let started = std::time::Instant::now();
    let result = link.channel.call(&msg).await;
    let outcome = match &result {
        Ok(r) => r.text(39).unwrap_or("none").to_owned(),
        Err(CallError::BadMac) => "bad-mac".into(),
        Err(_) => "error".into(),
    };
    metrics::bank_request(&bank.code, "submit", &outcome, started.elapsed());
    let reply = match result {
        Ok(r) => r,
        Err(e) if e.nothing_sent() => return Paid::Again(e.to_string()),
        Err(e) => return Paid::Unknown(e.to_string()),
    };
    let code = match answer_of(link, MessageKind::PayoutReply, &reply, stan, item_ref) {
        Ok(c) => c,
        Err(e) => return Paid::Unknown(e),
    };
    let codes = &bank.profile.codes;
    match codes.session_outcome(code) {
        Some(SessionOutcome::SignOn | SessionOutcome::Resend) => {
            return Paid::Again(format!("F39 {code}"));
        }
        Some(SessionOutcome::Refused) => return Paid::Refused(format!("F39 {code}")),
        None => {}
    }
    match codes.submit.get(code) {
        Some(SubmitOutcome::Accepted | SubmitOutcome::Duplicate) => Paid::Accepted(code.to_owned()),
        Some(SubmitOutcome::Busy) => Paid::Again(format!("F39 {code}")),
        Some(SubmitOutcome::Rejected) | None => {
            Paid::Refused(format!("unknown payout answer F39 {code}"))
        }
    }
}

async fn ask_item(
    link: &Iso8583Link,
    bank: &BankEntry,
    app: &App,
    item: &BankItem,
    department: &str,
) -> Asked {
    let Some(original) = &item.last_attempt else {
        return Asked::NeverArrived;
    };
    let stan = link.channel.next_stan();
    let msg = link.inquiry(&item.item_ref, original, &stan, &f7_now(app), department);
    let started = std::time::Instant::now();
    let result = link.channel.call(&msg).await;
    let outcome = match &result {
        Ok(r) => r.text(39).unwrap_or("none").to_owned(),
        Err(CallError::BadMac) => "bad-mac".into(),
        Err(_) => "error".into(),
    };
    metrics::bank_request(&bank.code, "query", &outcome, started.elapsed());
    let reply = match result {
        Ok(r) => r,
        Err(e) => return Asked::NoAnswer(e.to_string()),
    };
    let code = match answer_of(
        link,
        MessageKind::InquiryReply,
        &reply,
        &stan,
        &item.item_ref,
    ) {
        Ok(c) => c.to_owned(),
        Err(e) => return Asked::NoAnswer(e),
    };
    let codes = &bank.profile.codes;
    if codes.session_outcome(&code).is_some() {
        return Asked::NoAnswer(format!("F39 {code}"));
    }
    match codes.query.get(&code) {
        Some(QueryOutcome::Unknown) => return Asked::NeverArrived,
        Some(QueryOutcome::Busy) => return Asked::NoAnswer(format!("F39 {code}")),
        Some(QueryOutcome::Answered) => {}
        None => {
            return Asked::Final(review_result(
                item,
                &code,
                format!("unknown inquiry answer F39 {code}"),
            ));
        }
    }
    match codes.status_outcome(&code) {
        Some(StatusOutcome::Processing | StatusOutcome::Accepted) => Asked::Processing,
        Some(StatusOutcome::Final) => Asked::Final(result_of(item, &code, &reply, codes, link)),
        None => Asked::Final(review_result(
            item,
            &code,
            format!("inquiry answer F39 {code} has no state in the profile"),
        )),
    }
}

fn review_result(item: &BankItem, code: &str, why: String) -> ItemResult {
    ItemResult {
        seq: item.row.seq,
        status: ItemStatus::Review,
        result_code: code.to_owned(),
        fail_code: Some(code.to_owned()),
        fail_reason: Some(why),
        result_bank_code: item.row.account_bank_code.clone(),
        confirmed_at: None,
        bank_txn_no: None,
    }
}

fn result_of(
    item: &BankItem,
    code: &str,
    reply: &Message,
    codes: &bank_profiles::Codes,
    link: &Iso8583Link,
) -> ItemResult {
    let field = link.table.result_data.field;
    let data = match reply.text(field).map(Tlv::decode) {
        Some(Ok(t)) => t,
        Some(Err(e)) => return review_result(item, code, format!("F{field} unreadable: {e}")),
        None => Tlv::new(),
    };
    let tag = |name: &str| {
        link.table
            .result_data
            .tags
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| data.get(&t.tag))
            .map(str::to_owned)
    };
    let (outcome, reason) = codes.item_outcome(code);
    let status = match outcome {
        ItemOutcome::Succeeded => ItemStatus::Succeeded,
        ItemOutcome::Failed => ItemStatus::Failed,
        ItemOutcome::Review => ItemStatus::Review,
    };
    let confirmed_at = tag("confirmed_at").and_then(|ct| {
        (ct.len() == 14)
            .then(|| crate::results::beijing_ms(&ct[0..8], &ct[8..14]))
            .flatten()
    });
    ItemResult {
        seq: item.row.seq,
        status,
        result_code: code.to_owned(),
        fail_code: (status != ItemStatus::Succeeded).then(|| code.to_owned()),
        fail_reason: (status != ItemStatus::Succeeded)
            .then(|| tag("reason").unwrap_or_else(|| reason.to_owned())),
        result_bank_code: item.row.account_bank_code.clone(),
        confirmed_at,
        bank_txn_no: tag("bank_ref"),
    }
}

fn item_review_events(
    app: &App,
    part: &PartRow,
    bank: &str,
    items: &[(i64, String)],
) -> Vec<EventRow> {
    let now = app.clock.now_ms();
    let mut out = Vec::new();
    for (seq, why) in items {
        out.push(
            EventRow::new("item.review", now, bank, json!({"fail_reason": why}))
                .batch(&part.batch_id)
                .item(Some(*seq)),
        );
        out.push(
            EventRow::new(
                "warning",
                now,
                bank,
                json!({"message": format!("item {seq}: {why}")}),
            )
            .batch(&part.batch_id)
            .item(Some(*seq))
            .code(crate::intake::rules::codes::W_RESULT_REVIEW),
        );
    }
    out
}

/// Sends (or, after a restart, resolves) a part: every item paid exactly once.
pub async fn send(
    app: &App,
    bank: &BankEntry,
    link: &Iso8583Link,
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
    app.store.assign_item_refs(&part.part_id).await?;
    let ctx = PartContext {
        batch_ref: part.bank_ref.clone(),
        subsidy: batch.subsidy_code.clone(),
        department: batch.department_code.clone(),
        payer_account: batch.payer_account_no.clone(),
    };
    let mut delays = backoff(bank);
    let mut last_problem = String::new();
    loop {
        if !keep_lease(app, bank, &part).await? {
            warn!(bank = %bank.code, part = %part.part_id, "another worker has taken the part over");
            return Ok(());
        }
        let todo = app.store.unaccepted_items(&part.part_id).await?;
        if todo.is_empty() {
            break;
        }
        let mut progress = false;
        for chunk in todo.chunks(link.window) {
            let (p, problem) = send_window(app, bank, link, &part, &ctx, chunk).await?;
            progress |= p;
            if let Some(pr) = problem {
                last_problem = pr;
            }
        }
        if app.store.unaccepted_items(&part.part_id).await?.is_empty() {
            break;
        }
        match delays.next() {
            Some(d) => tokio::time::sleep(d).await,
            None => {
                let next = app.clock.now_ms() + ms(bank.profile.timers.retry_max.0);
                warn!(bank = %bank.code, part = %part.part_id, problem = %last_problem, "items still not accepted; trying again later");
                return app
                    .store
                    .part_retry(&part.part_id, PartState::Pending, next, &last_problem)
                    .await;
            }
        }
        if progress {
            delays = backoff(bank);
        }
    }
    let now = app.clock.now_ms();
    info!(bank = %bank.code, part = %part.part_id, items = part.item_count, "every item of the part accepted");
    let mut events = vec![event(
        app,
        "batch.sent",
        &part,
        &bank.code,
        json!({"bank_ref": part.bank_ref}),
    )];
    app.store
        .part_accepted(
            &part,
            None,
            now,
            now + ms(bank.poll_interval()),
            &mut events,
        )
        .await
}

/// One window of a part's unaccepted items: ask about those with an earlier attempt, pay the others.
/// Returns whether any item was accepted and the last problem seen.
async fn send_window(
    app: &App,
    bank: &BankEntry,
    link: &Iso8583Link,
    part: &PartRow,
    ctx: &PartContext,
    chunk: &[BankItem],
) -> Result<(bool, Option<String>), StoreError> {
    let mut problem = None;
    let mut accepted: Vec<String> = Vec::new();
    let mut to_pay: Vec<&BankItem> = Vec::new();
    // 1. Unknown outcomes first: ask.
    let asked = join_all(
        chunk
            .iter()
            .filter(|i| i.last_attempt.is_some())
            .map(|i| async move { (i, ask_item(link, bank, app, i, &ctx.department).await) }),
    )
    .await;
    for (item, a) in asked {
        match a {
            Asked::NeverArrived => to_pay.push(item),
            Asked::Processing | Asked::Final(_) => accepted.push(item.item_ref.clone()),
            Asked::NoAnswer(why) => problem = Some(why),
        }
    }
    to_pay.extend(chunk.iter().filter(|i| i.last_attempt.is_none()));
    // 2. Attempts stored before anything is sent.
    let f7 = f7_now(app);
    let mut prepared = Vec::with_capacity(to_pay.len());
    let mut refused: Vec<(i64, String)> = Vec::new();
    for item in to_pay {
        let stan = link.channel.next_stan();
        match link.payout(&fields(item), &item.item_ref, &stan, &f7, ctx) {
            Ok(m) => prepared.push((item, stan, m)),
            Err(e) => refused.push((item.row.seq, format!("cannot build the payout: {e}"))),
        }
    }
    let attempts: Vec<Attempt> = prepared
        .iter()
        .map(|(i, stan, _)| Attempt {
            item_ref: i.item_ref.clone(),
            stan: stan.clone(),
            sent_time: f7.clone(),
        })
        .collect();
    app.store
        .record_attempts(&bank.code, &attempts, app.clock.now_ms())
        .await?;
    // 3. Pipelined payouts.
    let paid = join_all(prepared.into_iter().map(|(item, stan, msg)| async move {
        let p = pay(link, bank, msg, &stan, &item.item_ref).await;
        (item, stan, p)
    }))
    .await;
    let mut answers = Vec::with_capacity(paid.len());
    for (item, stan, p) in paid {
        let answer = match &p {
            Paid::Accepted(c) => {
                accepted.push(item.item_ref.clone());
                c.clone()
            }
            Paid::Again(why) | Paid::Unknown(why) => {
                problem = Some(why.clone());
                why.clone()
            }
            Paid::Refused(why) => {
                refused.push((item.row.seq, format!("the bank refused the payout: {why}")));
                why.clone()
            }
        };
        if let Paid::Unknown(why) = &p {
            warn!(bank = %bank.code, part = %part.part_id, seq = item.row.seq, why = %why, "payout outcome unknown; will ask the bank");
        }
        answers.push((item.item_ref.clone(), stan, answer));
    }
    app.store.record_answers(&answers, &accepted).await?;
    if !refused.is_empty() {
        let events = item_review_events(app, part, &bank.code, &refused);
        metrics::part_review(&bank.code, "item-refused");
        app.store
            .items_review(part, &refused, app.clock.now_ms(), &events)
            .await?;
    }
    Ok((!accepted.is_empty(), problem))
}

/// Polls an accepted part: an inquiry per item still waiting; final results applied as they come.
pub async fn poll(
    app: &App,
    bank: &BankEntry,
    link: &Iso8583Link,
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
    let department = batch.department_code.as_str();
    let waiting = app.store.awaiting_items(&part.part_id).await?;
    let mut results = Vec::new();
    let mut trouble = None;
    for chunk in waiting.chunks(link.window) {
        let asked = join_all(
            chunk
                .iter()
                .map(|i| async move { (i, ask_item(link, bank, app, i, department).await) }),
        )
        .await;
        for (item, a) in asked {
            match a {
                Asked::Final(r) => results.push(r),
                Asked::Processing => {}
                Asked::NeverArrived => results.push(review_result(
                    item,
                    "25",
                    "the bank no longer knows an accepted payout".into(),
                )),
                Asked::NoAnswer(why) => trouble = Some(why),
            }
        }
    }
    let now = app.clock.now_ms();
    let done = results.len() == waiting.len();
    tracing::debug!(bank = %bank.code, part = %part.part_id, waiting = waiting.len(), finals = results.len(), trouble = ?trouble, "poll round");
    apply_final_items(app, bank, &part, &results, now, done).await?;
    if done {
        return Ok(());
    }
    let next = next_poll_at(app, bank, &part.batch_id, now).await?;
    let next = if trouble.is_some() {
        next.min(now + ms(bank.profile.timers.retry_min.0.max(Duration::from_secs(1))))
    } else {
        next
    };
    app.store
        .poll_again(&part.part_id, next, trouble.as_deref())
        .await
}
