//! Intake: a roster from the platform, read as a stream, checked against the rules, stored.
//!
//! Structure first (types, required fields, formats, unique `seq`), then the batch rules, then item
//! rules, in the order of rules.md's code table. A roster is written in one transaction in chunks and
//! committed only when the whole body has been read and its totals agree, so a rejected roster leaves
//! nothing behind and an accepted one is stored before the gateway answers.
pub mod parse;
pub mod rules;
pub mod seqs;

use std::collections::HashSet;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::app::App;
use crate::clock::{date_str, day_start_ms, parse_date};
use crate::domain::{ItemStatus, Pii, ids};
use crate::keys::ClaimKey;
use crate::store::{EventRow, NewBatch, NewItem, NewPart, StoreError};
use parse::{BodyHash, HeaderIn, ItemIn, StructureError};
use rules::{Violation, codes};

/// Items processed per chunk (rules, look-ups and one multi-row insert each).
pub const CHUNK: usize = 1000;
/// Longest NDJSON line.
pub const MAX_LINE: usize = 1 << 20;

/// A roster body.
pub enum Body<'a> {
    /// `application/json`, whole.
    Json(&'a [u8]),
    /// `application/x-ndjson`, as a stream.
    Ndjson(Box<dyn AsyncBufRead + Unpin + Send + 'a>),
}

/// The answer to a submission.
#[derive(Debug)]
pub struct Accepted {
    /// 202 (new) or 200 (identical resubmission).
    pub status: u16,
    /// The answer body.
    pub body: Value,
    /// The batch.
    pub batch_id: String,
}

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Unreadable: 400 `E-REQUEST-INVALID`.
    #[error("{0}")]
    Invalid(StructureError),
    /// Refused by a rule: `status` with `code`.
    #[error("{code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// `E-*` code.
        code: &'static str,
        /// Message.
        message: String,
        /// Rejected items, where there are any.
        details: Vec<Value>,
    },
    /// Body over the limit: 413.
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    /// Reading the body failed.
    #[error("reading the body: {0}")]
    Io(std::io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused(status: u16, v: Violation) -> IntakeError {
    IntakeError::Refused {
        status,
        code: v.code,
        message: v.message,
        details: Vec::new(),
    }
}

fn violation_json(v: &Violation, seq: Option<i64>) -> Value {
    json!({"seq": seq, "code": v.code, "message": v.message})
}

/// Items as they come: a vector (JSON) or lines (NDJSON).
enum Items<'a> {
    Vec(std::vec::IntoIter<ItemIn>, usize),
    Lines {
        reader: Box<dyn AsyncBufRead + Unpin + Send + 'a>,
        index: usize,
        line_no: usize,
        hash: BodyHash,
        read: usize,
        limit: usize,
    },
}

impl Items<'_> {
    /// The next item, or `None` at the end.
    async fn next(&mut self) -> Result<Option<ItemIn>, IntakeError> {
        match self {
            Items::Vec(it, index) => {
                *index += 1;
                Ok(it.next())
            }
            Items::Lines {
                reader,
                index,
                line_no,
                hash,
                read,
                limit,
            } => {
                let mut line = Vec::new();
                loop {
                    line.clear();
                    let n = read_line(reader.as_mut(), &mut line).await?;
                    if n == 0 {
                        return Ok(None);
                    }
                    *read += n;
                    if *read > *limit {
                        return Err(IntakeError::TooLarge(*limit));
                    }
                    *line_no += 1;
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let path = format!("items[{index}]");
                    let v =
                        parse::parse_line(&line, *line_no, &path).map_err(IntakeError::Invalid)?;
                    hash.item(&v);
                    let item = parse::item_from_value(*index, v).map_err(IntakeError::Invalid)?;
                    *index += 1;
                    return Ok(Some(item));
                }
            }
        }
    }
}

async fn read_line(
    reader: &mut (dyn AsyncBufRead + Unpin + Send),
    out: &mut Vec<u8>,
) -> Result<usize, IntakeError> {
    let mut total = 0;
    loop {
        let buf = reader.fill_buf().await.map_err(IntakeError::Io)?;
        if buf.is_empty() {
            return Ok(total);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(p) => (p + 1, true),
            None => (buf.len(), false),
        };
        if out.len() + take > MAX_LINE {
            return Err(IntakeError::Invalid(StructureError {
                path: "$".into(),
                problem: format!("an NDJSON line is longer than {MAX_LINE} bytes"),
            }));
        }
        out.extend_from_slice(&buf[..take]);
        reader.consume(take);
        total += take;
        if done {
            return Ok(total);
        }
    }
}

/// Where intake time goes (logged per roster).
#[derive(Default)]
struct Stages {
    read: std::time::Duration,
    judge: std::time::Duration,
    insert: std::time::Duration,
    commit: std::time::Duration,
}

/// Header totals against the items actually submitted.
#[derive(Default)]
struct Totals {
    count: u64,
    amount: i128,
}

impl Totals {
    fn add(&mut self, it: &ItemIn) {
        self.count += 1;
        self.amount += i128::from(it.amount_fen);
    }

    fn check(&self, h: &HeaderIn) -> Result<(), Violation> {
        if self.count != h.total_count || self.amount != i128::from(h.total_amount_fen) {
            return Err(Violation {
                code: codes::TOTALS,
                message: format!(
                    "header says {} items, {} fen; the body has {} items, {} fen",
                    h.total_count, h.total_amount_fen, self.count, self.amount
                ),
            });
        }
        Ok(())
    }
}

fn seq_repeat(index: usize, seq: i64) -> IntakeError {
    IntakeError::Invalid(StructureError {
        path: format!("items[{index}].seq"),
        problem: format!("seq {seq} appears more than once"),
    })
}

/// Takes in one roster.
pub async fn take_in(
    app: &App,
    body: Body<'_>,
    ndjson_limit: usize,
) -> Result<Accepted, IntakeError> {
    let (header_map, items) = match body {
        Body::Json(bytes) => {
            let roster = parse::parse_json(bytes).map_err(IntakeError::Invalid)?;
            let hash = roster.hash;
            (
                roster.header,
                (Items::Vec(roster.items.into_iter(), 0), Some(hash)),
            )
        }
        Body::Ndjson(mut reader) => {
            let mut line = Vec::new();
            let mut line_no = 0;
            let mut read = 0;
            loop {
                line.clear();
                let n = read_line(reader.as_mut(), &mut line).await?;
                read += n;
                line_no += 1;
                if n == 0 {
                    return Err(IntakeError::Invalid(StructureError {
                        path: "$".into(),
                        problem: "empty body".into(),
                    }));
                }
                if !line.iter().all(u8::is_ascii_whitespace) {
                    break;
                }
            }
            let v: Value = parse::parse_line(&line, line_no, "$").map_err(IntakeError::Invalid)?;
            let Value::Object(map) = v else {
                return Err(IntakeError::Invalid(StructureError {
                    path: "$".into(),
                    problem: "the first NDJSON line must be the header object".into(),
                }));
            };
            let items = Items::Lines {
                reader,
                index: 0,
                line_no,
                hash: BodyHash::default(),
                read,
                limit: ndjson_limit,
            };
            (map, (items, None))
        }
    };
    let (mut items, json_hash) = items;
    let header = parse::header_from_map(header_map.clone(), json_hash.is_none())
        .map_err(IntakeError::Invalid)?;

    let existing = app.store.find_batch_by_no(&header.batch_no).await?;
    let header_verdict = check_header(app, &header).await?;

    if existing.is_some() || header_verdict.is_err() {
        // Read everything for structure and totals, store nothing.
        let mut seqs = seqs::SeqSet::default();
        let mut totals = Totals::default();
        let mut index = 0;
        while let Some(it) = items.next().await? {
            if !seqs.insert(it.seq) {
                return Err(seq_repeat(index, it.seq));
            }
            totals.add(&it);
            index += 1;
        }
        let hash = finish_hash(items, json_hash, &header_map);
        if let Some(b) = existing.as_ref().filter(|b| b.body_hash == hash) {
            let body: Value = serde_json::from_str(&b.answer).unwrap_or(Value::Null);
            return Ok(Accepted {
                status: 200,
                body,
                batch_id: b.batch_id.clone(),
            });
        }
        header_verdict?;
        totals.check(&header).map_err(|v| refused(422, v))?;
        return Err(refused(
            409,
            Violation {
                code: codes::CONFLICT,
                message: format!(
                    "batch_no {} was accepted before with a different body",
                    header.batch_no
                ),
            },
        ));
    }

    let bank = app.banks.get(&header.payout_bank).cloned().ok_or_else(|| {
        refused(
            422,
            Violation {
                code: codes::BANK_NOT_ELIGIBLE,
                message: "payout bank not shortlisted".into(),
            },
        )
    })?;
    let now = app.clock.now_ms();
    let today = app.clock.today();
    let funds_day = parse_date(&header.funds_arrived_on).unwrap_or(today);
    let start_late = funds_day < today;
    let batch_id = ids::new_id("b");
    let new_batch = NewBatch {
        batch_id: batch_id.clone(),
        batch_no: header.batch_no.clone(),
        body_hash: String::new(),
        parent_batch_id: None,
        department_code: header.department_code.clone(),
        region_code: header.region_code.clone(),
        subsidy_code: header.subsidy_code.clone(),
        subsidy_name: header.subsidy_name.clone(),
        budget_year: header.budget_year,
        period: header.period.clone(),
        indicator_no: header.indicator_no.clone().unwrap_or_default(),
        payout_bank: header.payout_bank.clone(),
        payer_account_no: header.payer_account.no.clone(),
        payer_account_name: header.payer_account.name.clone(),
        funds_arrived_on: header.funds_arrived_on.clone(),
        total_count: i64::try_from(header.total_count).unwrap_or(i64::MAX),
        total_amount_fen: header.total_amount_fen,
        created_at: now,
        start_late,
    };
    let mut tx = app.store.begin_intake(&new_batch).await?;
    let blacklist = app.store.blacklist_hashes().await?;
    let per_part = i64::from(bank.profile.limits.items_per_part);

    let mut seqs = seqs::SeqSet::default();
    let mut totals = Totals::default();
    let mut rejected: Vec<Value> = Vec::new();
    let mut warnings: Vec<Value> = Vec::new();
    let mut events: Vec<EventRow> = Vec::new();
    let mut parts: Vec<NewPart> = Vec::new();
    let mut accepted = (0i64, 0i64);
    let mut index = 0usize;
    let mut stages = Stages::default();
    // Chunk N is written while chunk N+1 is read and parsed: SQLite works on its own thread, so the two
    // overlap on two cores. Judging needs the claims of every chunk before it, so it waits for both.
    let mut to_insert: Vec<NewItem> = Vec::new();
    let result: Result<(), IntakeError> = async {
        loop {
            let (inserted, read) = futures::join!(
                async {
                    if to_insert.is_empty() {
                        return Ok(std::time::Duration::ZERO);
                    }
                    let t = std::time::Instant::now();
                    tx.insert_items(&to_insert).await?;
                    Ok::<_, IntakeError>(t.elapsed())
                },
                read_chunk(&mut items, &mut seqs, &mut totals, &mut index)
            );
            stages.insert += inserted?;
            to_insert.clear();
            let (chunk, end, read_time) = read?;
            stages.read += read_time;
            if !chunk.is_empty() {
                let t1 = std::time::Instant::now();
                let rows = judge_chunk(app, &header, &bank, &blacklist, &mut tx, chunk).await?;
                let mut stored = Vec::with_capacity(rows.len());
                for (mut row, verdict) in rows {
                    match verdict {
                        Err(v) => {
                            rejected.push(violation_json(&v, Some(row.seq)));
                            row.reject_code = Some(v.code.to_owned());
                            row.reject_message = Some(v.message);
                        }
                        Ok(ws) => {
                            if accepted.0 % per_part == 0 {
                                parts.push(NewPart {
                                    part_id: ids::new_id("p"),
                                    bank_ref: ids::new_bank_ref(),
                                    part_no: i64::try_from(parts.len()).unwrap_or(0),
                                    item_count: 0,
                                    amount_fen: 0,
                                });
                            }
                            if let Some(p) = parts.last_mut() {
                                p.item_count += 1;
                                p.amount_fen += row.amount_fen;
                                row.part_id = Some(p.part_id.clone());
                            }
                            accepted.0 += 1;
                            accepted.1 += row.amount_fen;
                            for w in ws {
                                events.push(warning_event(
                                    now,
                                    &batch_id,
                                    Some(row.seq),
                                    &bank.code,
                                    &w,
                                ));
                                warnings.push(violation_json(&w, Some(row.seq)));
                            }
                        }
                    }
                    stored.push(row);
                }
                stages.judge += t1.elapsed();
                to_insert = stored;
            }
            if end {
                if !to_insert.is_empty() {
                    let t = std::time::Instant::now();
                    tx.insert_items(&to_insert).await?;
                    stages.insert += t.elapsed();
                }
                return Ok(());
            }
        }
    }
    .await;
    if let Err(e) = result {
        tx.abort().await?;
        return Err(e);
    }
    let hash = finish_hash(items, json_hash, &header_map);
    if let Err(v) = totals.check(&header) {
        tx.abort().await?;
        return Err(refused(422, v));
    }
    if accepted.0 == 0 {
        tx.abort().await?;
        return Err(IntakeError::Refused {
            status: 422,
            code: codes::EMPTY,
            message: format!("all {} items were rejected", rejected.len()),
            details: rejected,
        });
    }
    if start_late {
        let w = Violation {
            code: codes::W_START_LATE,
            message: format!(
                "funds arrived on {}, the batch is submitted on {}: sending did not start that day",
                header.funds_arrived_on,
                date_str(today)
            ),
        };
        events.push(warning_event(now, &batch_id, None, &bank.code, &w));
        warnings.push(violation_json(&w, None));
    }
    tx.insert_parts(&bank.code, day_start_ms(funds_day), &parts)
        .await?;
    let answer = json!({
        "batch_id": batch_id,
        "batch_no": header.batch_no,
        "status": "accepted",
        "accepted_count": accepted.0,
        "rejected_count": rejected.len(),
        "rejected": rejected,
        "warnings": warnings,
    });
    events.insert(
        0,
        EventRow::new(
            "batch.accepted",
            now,
            &bank.code,
            json!({"batch_no": header.batch_no, "accepted_count": accepted.0, "accepted_amount_fen": accepted.1,
                   "rejected_count": answer["rejected_count"], "parts": parts.len()}),
        )
        .batch(&batch_id),
    );
    let rejected_count =
        i64::try_from(answer["rejected"].as_array().map_or(0, Vec::len)).unwrap_or(0);
    tx.set_hash(&hash).await?;
    let t3 = std::time::Instant::now();
    let finish = tx
        .finish(accepted, rejected_count, &answer.to_string(), &events)
        .await;
    stages.commit = t3.elapsed();
    finish?;
    tracing::info!(
        items = index,
        read_ms = stages.read.as_millis() as u64,
        rules_ms = stages.judge.as_millis() as u64,
        insert_ms = stages.insert.as_millis() as u64,
        commit_ms = stages.commit.as_millis() as u64,
        "roster taken in"
    );
    crate::ops::metrics::batch_accepted(&bank.code, accepted.0, rejected_count);
    app.work.notify_waiters();
    Ok(Accepted {
        status: 202,
        body: answer,
        batch_id,
    })
}

fn finish_hash(
    items: Items<'_>,
    json_hash: Option<BodyHash>,
    header: &Map<String, Value>,
) -> String {
    match (items, json_hash) {
        (Items::Lines { hash, .. }, _) => hash.finish(header),
        (Items::Vec(..), Some(h)) => h.finish(header),
        (Items::Vec(..), None) => BodyHash::default().finish(header),
    }
}

/// A warning event.
pub fn warning_event(
    now: i64,
    batch_id: &str,
    seq: Option<i64>,
    bank: &str,
    w: &Violation,
) -> EventRow {
    EventRow::new("warning", now, bank, json!({"message": w.message}))
        .batch(batch_id)
        .item(seq)
        .code(w.code)
}

/// The batch rules: eligible bank, current year, indicator; then whether the header can travel.
async fn check_header(app: &App, h: &HeaderIn) -> Result<Result<(), IntakeError>, IntakeError> {
    let eligible = match app.banks.get(&h.payout_bank) {
        None => Err(format!("payout bank {} is not shortlisted", h.payout_bank)),
        Some(_)
            if app
                .store
                .is_disqualified(&h.payout_bank, &h.department_code)
                .await? =>
        {
            Err(format!(
                "payout bank {} is disqualified for department {}",
                h.payout_bank, h.department_code
            ))
        }
        Some(_) => Ok(()),
    };
    if let Err(v) = rules::batch::check_header(h, app.clock.today().year(), eligible) {
        return Ok(Err(refused(422, v)));
    }
    if let Some(bank) = app.banks.get(&h.payout_bank)
        && let Err((field, problem)) = bank.link.check_header(h)
    {
        return Ok(Err(refused(
            422,
            Violation {
                code: codes::UNENCODABLE,
                message: format!("{field}: {problem}; bank {} cannot carry it", h.payout_bank),
            },
        )));
    }
    Ok(Ok(()))
}

type Verdict = Result<Vec<Violation>, Violation>;
type Judged = (NewItem, Verdict);

/// Applies the item rules to a chunk, duplicate claims included (against the store and the chunk).
/// Reads up to [`CHUNK`] items, checking `seq` uniqueness and adding to the totals; answers them,
/// whether the body ended, and the time it took.
async fn read_chunk(
    items: &mut Items<'_>,
    seqs: &mut seqs::SeqSet,
    totals: &mut Totals,
    index: &mut usize,
) -> Result<(Vec<ItemIn>, bool, std::time::Duration), IntakeError> {
    let t = std::time::Instant::now();
    let mut chunk = Vec::with_capacity(CHUNK);
    while chunk.len() < CHUNK {
        let Some(it) = items.next().await? else {
            return Ok((chunk, true, t.elapsed()));
        };
        if !seqs.insert(it.seq) {
            return Err(seq_repeat(*index, it.seq));
        }
        totals.add(&it);
        *index += 1;
        chunk.push(it);
    }
    Ok((chunk, false, t.elapsed()))
}

async fn judge_chunk(
    app: &App,
    h: &HeaderIn,
    bank: &crate::dispatch::BankEntry,
    blacklist: &HashSet<String>,
    tx: &mut crate::store::IntakeTx,
    chunk: Vec<ItemIn>,
) -> Result<Vec<Judged>, IntakeError> {
    let mut judged: Vec<(ItemIn, Verdict, Option<ClaimKey>)> = Vec::with_capacity(chunk.len());
    for mut it in chunk {
        let verdict = rules::check_item(&mut it, |kind, value| {
            !blacklist.is_empty()
                && blacklist.contains(&format!("{kind}:{}", app.lookup.hash(&[kind, value])))
        });
        let claim = verdict
            .is_ok()
            .then(|| app.lookup.claim(&it.id_no, &h.subsidy_code, &h.period));
        judged.push((it, verdict, claim));
    }
    let keys: Vec<ClaimKey> = judged.iter().filter_map(|(_, _, c)| *c).collect();
    let taken = tx.claimed(&keys).await?;
    let mut in_chunk: HashSet<ClaimKey> = HashSet::new();
    let mut out = Vec::with_capacity(judged.len());
    for (it, mut verdict, claim) in judged {
        let mut claim_key = None;
        if verdict.is_ok()
            && let Some(c) = claim
        {
            if taken.contains(&c) || in_chunk.contains(&c) {
                verdict = Err(Violation::item(
                    codes::DUPLICATE,
                    it.seq,
                    format!(
                        "id_no already claimed subsidy {} for period {}",
                        h.subsidy_code, h.period
                    ),
                ));
            } else if let Err((field, problem)) = bank.link.check_item(&it) {
                verdict = Err(Violation::item(
                    codes::UNENCODABLE,
                    it.seq,
                    format!("{field}: {problem}; bank {} cannot carry it", bank.code),
                ));
            } else {
                in_chunk.insert(c);
                claim_key = Some(c);
            }
        }
        let row = NewItem {
            seq: it.seq,
            recipient_kind: it.recipient_kind,
            name: Pii::new(it.name),
            id_no: Pii::new(it.id_no),
            account_no: Pii::new(it.account_no),
            account_kind: it.account_kind,
            account_bank_code: it.account_bank_code,
            amount_fen: it.amount_fen,
            phone: Pii::new(it.phone),
            ssc_exempt: it.ssc_exempt,
            memo: it.memo,
            status: if verdict.is_ok() {
                ItemStatus::Pending
            } else {
                ItemStatus::Rejected
            },
            reject_code: None,
            reject_message: None,
            part_id: None,
            claim_key,
            replaces: None,
        };
        out.push((row, verdict));
    }
    Ok(out)
}
