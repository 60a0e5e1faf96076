//! Batches and items: intake (one transaction per roster, rows written in chunks) and reads.
use std::collections::{BTreeMap, HashSet};

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::rows::*;
use super::{Store, StoreError, StoreResult, in_list, placeholders, rows_query};
use crate::domain::{AccountKind, ItemStatus, Pii, RecipientKind};
use crate::keys::sealed::item_ad;
use crate::keys::{ClaimKey, Keyring, StoreKeys};

const ITEM_COLS: usize = 14;
const PII_COLS: usize = 6;
/// Rows per multi-row insert (14 columns each stays well under SQLite's parameter limit).
pub const INSERT_CHUNK: usize = 500;

const BATCH_COLS: &str = "batch_id, batch_no, body_hash, parent_batch_id, department_code, region_code, subsidy_code, \
     subsidy_name, budget_year, period, payout_bank, payer_account_no, payer_account_name, funds_arrived_on, \
     accepted_count, accepted_amount_fen, rejected_count, answer, created_at, sent_at, final_at";

/// The join of an item (`i`) with its sealed personal fields (`x`: `items_pii`, written once at
/// intake, apart so that the writes of its status and result rewrite a narrow row).
macro_rules! items_pii_join {
    () => {
        "join items_pii x on x.batch_id = i.batch_id and x.seq = i.seq"
    };
}
pub(crate) use items_pii_join;

/// An item (`i`) with its sealed personal fields (`x`) and its part (`p`).
pub(crate) const ITEM_FROM: &str = concat!(
    "items i ",
    items_pii_join!(),
    " left join parts p on p.part_id = i.part_id"
);

/// An item's status as every reader sees it, from [`ITEM_FROM`].
///
/// An item is stored `pending` until its result is written: from the moment the bank accepts its part
/// (`parts.accepted_at` is set, and never cleared) it reads `sent`. Deriving it saves rewriting every
/// row of a part at its acceptance (issue 9, `docs/performance.md`). Rows that earlier builds stored as
/// `sent` still read `sent`.
macro_rules! item_status_sql {
    () => {
        "case when i.status = 'pending' and p.accepted_at is not null then 'sent' else i.status end"
    };
}

/// The columns of an [`ItemRow`], read `from` [`ITEM_FROM`].
pub(crate) const ITEM_SELECT: &str = concat!(
    "i.batch_id, i.seq, i.recipient_kind, x.name, x.id_no, x.account_no, \
     i.account_kind, i.account_bank_code, i.amount_fen, x.phone, i.ssc_exempt, i.memo, ",
    item_status_sql!(),
    " as status, i.reject_code, \
     i.reject_message, i.part_id, i.result_code, i.fail_code, i.fail_reason, i.result_bank_code, i.confirmed_at, \
     i.bank_txn_no, i.final_at, p.bank_ref"
);

/// A filter keeping the items whose status (as `item_status_sql!` derives it) is `status`, written
/// on the stored status so that its index can serve it; same join.
pub(crate) fn item_status_filter(status: ItemStatus) -> String {
    match status {
        ItemStatus::Sent => {
            "(i.status = 'sent' or (i.status = 'pending' and p.accepted_at is not null))".into()
        }
        ItemStatus::Pending => "(i.status = 'pending' and p.accepted_at is null)".into(),
        // A closed set of literals, never input.
        other => format!("i.status = '{}'", other.as_str()),
    }
}

/// Counts of `items i` by stored status with one extra row, [`DERIVED_SENT`]: how many of the
/// `pending` ones read `sent` (their part is accepted). One statement, so one snapshot.
fn counts_sql(filter: &str) -> String {
    format!(
        "select i.status as status, count(*) as n, cast(coalesce(sum(i.amount_fen), 0) as bigint) as amount \
         from items i where {filter} group by i.status \
         union all \
         select '{DERIVED_SENT}' as status, count(*) as n, cast(0 as bigint) as amount \
         from items i join parts p on p.part_id = i.part_id \
         where {filter} and i.status = 'pending' and p.accepted_at is not null"
    )
}

/// The marker row of [`counts_sql`] (not a status).
const DERIVED_SENT: &str = "+sent";

/// Folds [`counts_sql`]'s rows into counts by status as readers see them (pending items of accepted
/// parts move from `pending` to `sent`); answers `(status, count, amount)`, no zero counts.
fn fold_counts(rows: Vec<(String, i64, i64)>) -> Vec<(String, i64, i64)> {
    let derived: i64 = rows
        .iter()
        .filter(|r| r.0 == DERIVED_SENT)
        .map(|r| r.1)
        .sum();
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (status, n, amount) in rows.into_iter().filter(|r| r.0 != DERIVED_SENT) {
        let e = out.entry(status).or_default();
        e.0 += n;
        e.1 += amount;
    }
    if derived > 0 {
        let moved = derived.min(out.get("pending").map_or(0, |e| e.0));
        if let Some(p) = out.get_mut("pending") {
            p.0 -= moved;
        }
        out.entry("sent".into()).or_default().0 += moved;
    }
    out.into_iter()
        .filter(|(_, (n, _))| *n > 0)
        .map(|(s, (n, a))| (s, n, a))
        .collect()
}

/// [`counts_sql`] run and folded.
pub(crate) async fn status_counts(
    pool: &sqlx::AnyPool,
    filter: &str,
    bind: Option<&str>,
) -> StoreResult<Vec<(String, i64, i64)>> {
    let sql = counts_sql(filter);
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(b) = bind {
        q = q.bind(b);
    }
    let rows = q.fetch_all(pool).await?;
    let rows = rows
        .iter()
        .map(|r| Ok((r.try_get("status")?, r.try_get("n")?, r.try_get("amount")?)))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(fold_counts(rows))
}

fn corrupt(table: &'static str, problem: String) -> StoreError {
    StoreError::Corrupt { table, problem }
}

pub(crate) fn batch_from_row(r: &AnyRow) -> StoreResult<BatchRow> {
    Ok(BatchRow {
        batch_id: r.try_get("batch_id")?,
        batch_no: r.try_get("batch_no")?,
        body_hash: r.try_get("body_hash")?,
        parent_batch_id: r.try_get("parent_batch_id")?,
        department_code: r.try_get("department_code")?,
        region_code: r.try_get("region_code")?,
        subsidy_code: r.try_get("subsidy_code")?,
        subsidy_name: r.try_get("subsidy_name")?,
        budget_year: r.try_get("budget_year")?,
        period: r.try_get("period")?,
        payout_bank: r.try_get("payout_bank")?,
        payer_account_no: r.try_get("payer_account_no")?,
        payer_account_name: r.try_get("payer_account_name")?,
        funds_arrived_on: r.try_get("funds_arrived_on")?,
        accepted_count: r.try_get("accepted_count")?,
        accepted_amount_fen: r.try_get("accepted_amount_fen")?,
        rejected_count: r.try_get("rejected_count")?,
        answer: r.try_get("answer")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
        final_at: r.try_get("final_at")?,
    })
}

/// The personal columns of `items`, sealed one by one (`crate::keys::sealed`).
pub(crate) const ITEM_SEALED: [&str; 4] = ["name", "id_no", "account_no", "phone"];

/// Opens the sealed `column` of the item (`batch_id`, `seq`) as stored in `r`.
pub(crate) fn open_item_field(
    keys: &Keyring,
    r: &AnyRow,
    batch_id: &str,
    seq: i64,
    column: &'static str,
) -> StoreResult<String> {
    let stored: String = r.try_get(column)?;
    keys.open(&item_ad(batch_id, seq, column), &stored)
        .map_err(|problem| StoreError::Sealed {
            table: "items",
            column,
            row: format!("({batch_id}, {seq})"),
            problem,
        })
}

/// Seals an item's personal field for its row and column.
pub(crate) fn seal_item_field(
    keys: &Keyring,
    batch_id: &str,
    seq: i64,
    column: &'static str,
    plain: &str,
) -> StoreResult<String> {
    keys.seal(&item_ad(batch_id, seq, column), plain)
        .map_err(|problem| StoreError::Sealed {
            table: "items",
            column,
            row: format!("({batch_id}, {seq})"),
            problem,
        })
}

/// An item row as selected with [`ITEM_SELECT`], its personal fields opened with `keys`.
pub(crate) fn item_from_row(keys: &Keyring, r: &AnyRow) -> StoreResult<ItemRow> {
    let kind: String = r.try_get("recipient_kind")?;
    let acct: String = r.try_get("account_kind")?;
    let status: String = r.try_get("status")?;
    let batch_id: String = r.try_get("batch_id")?;
    let seq: i64 = r.try_get("seq")?;
    let open = |column| open_item_field(keys, r, &batch_id, seq, column);
    Ok(ItemRow {
        recipient_kind: RecipientKind::parse(&kind)
            .ok_or_else(|| corrupt("items", format!("recipient_kind {kind}")))?,
        name: Pii::new(open("name")?),
        id_no: Pii::new(open("id_no")?),
        account_no: Pii::new(open("account_no")?),
        account_kind: AccountKind::parse(&acct)
            .ok_or_else(|| corrupt("items", format!("account_kind {acct}")))?,
        account_bank_code: r.try_get("account_bank_code")?,
        amount_fen: r.try_get("amount_fen")?,
        phone: Pii::new(open("phone")?),
        ssc_exempt: r.try_get::<i64, _>("ssc_exempt")? != 0,
        memo: r.try_get("memo")?,
        status: ItemStatus::parse(&status)
            .ok_or_else(|| corrupt("items", format!("status {status}")))?,
        reject_code: r.try_get("reject_code")?,
        reject_message: r.try_get("reject_message")?,
        part_id: r.try_get("part_id")?,
        result_code: r.try_get("result_code")?,
        fail_code: r.try_get("fail_code")?,
        fail_reason: r.try_get("fail_reason")?,
        result_bank_code: r.try_get("result_bank_code")?,
        confirmed_at: r.try_get("confirmed_at")?,
        bank_txn_no: r.try_get("bank_txn_no")?,
        final_at: r.try_get("final_at")?,
        bank_ref: r.try_get("bank_ref")?,
        batch_id,
        seq,
    })
}

/// What a bank's request carries of an item, from a row of [`Store::part_outgoing_page`].
pub(crate) fn outgoing_from_row(keys: &Keyring, r: &AnyRow) -> StoreResult<OutgoingItem> {
    let kind: String = r.try_get("recipient_kind")?;
    let acct: String = r.try_get("account_kind")?;
    let batch_id: String = r.try_get("batch_id")?;
    let seq: i64 = r.try_get("seq")?;
    let open = |column| open_item_field(keys, r, &batch_id, seq, column);
    Ok(OutgoingItem {
        seq,
        recipient_kind: RecipientKind::parse(&kind)
            .ok_or_else(|| corrupt("items", format!("recipient_kind {kind}")))?,
        name: Pii::new(open("name")?),
        id_no: Pii::new(open("id_no")?),
        account_no: Pii::new(open("account_no")?),
        account_kind: AccountKind::parse(&acct)
            .ok_or_else(|| corrupt("items", format!("account_kind {acct}")))?,
        account_bank_code: r.try_get("account_bank_code")?,
        amount_fen: r.try_get("amount_fen")?,
        phone: Pii::new(open("phone")?),
        memo: r.try_get("memo")?,
    })
}

/// A roster being taken in: everything happens in one transaction, committed only when the whole roster
/// has been read and checked, so a rejected roster leaves nothing behind.
pub struct IntakeTx {
    tx: Transaction<'static, Any>,
    backend: super::Backend,
    keys: std::sync::Arc<StoreKeys>,
    batch_id: String,
    /// The roster's claims so far (key -> seq), written in key order by [`IntakeTx::finish`]: kept
    /// sorted as they come (about 40 bytes a claim), so writing them needs no second, sorted copy.
    claims: BTreeMap<ClaimKey, i64>,
}

impl Store {
    /// The accepted batch with this platform `batch_no`.
    pub async fn find_batch_by_no(&self, batch_no: &str) -> StoreResult<Option<BatchRow>> {
        let sql = format!("select {BATCH_COLS} from batches where batch_no = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(batch_no)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(batch_from_row).transpose()
    }

    /// A batch by our id.
    pub async fn get_batch(&self, batch_id: &str) -> StoreResult<Option<BatchRow>> {
        let sql = format!("select {BATCH_COLS} from batches where batch_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(batch_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(batch_from_row).transpose()
    }

    /// Item counts by status and amounts of a batch.
    pub async fn batch_counts(&self, batch_id: &str) -> StoreResult<BatchCounts> {
        let rows = status_counts(self.pool(), "i.batch_id = $1", Some(batch_id)).await?;
        let mut c = BatchCounts::default();
        for (status, n, amount) in rows {
            match status.as_str() {
                "succeeded" => c.succeeded_fen = amount,
                "failed" => c.failed_fen = amount,
                _ => {}
            }
            c.by_status.insert(status, n);
        }
        Ok(c)
    }

    /// A page of items in `seq` order.
    pub async fn list_items(
        &self,
        batch_id: &str,
        status: Option<ItemStatus>,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<ItemRow>> {
        let filter = status.map_or_else(|| "1 = 1".to_string(), item_status_filter);
        let sql = format!(
            "select {ITEM_SELECT} from {ITEM_FROM} \
             where i.batch_id = $1 and i.seq > $2 and {filter} order by i.seq limit $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(batch_id)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| item_from_row(&self.keys.data, r))
            .collect()
    }

    /// Starts taking in a roster: the batch row is written with zero counts, fixed by [`IntakeTx::finish`].
    /// Intakes take turns (the `intakes` counter row stays locked until this one commits or aborts), so
    /// [`IntakeTx::claimed`] sees the claims of every roster taken in before: SQLite's single writer
    /// gives that by itself, several PostgreSQL connections need the lock.
    pub async fn begin_intake(&self, b: &NewBatch) -> StoreResult<IntakeTx> {
        let mut tx = self.begin_write().await?;
        sqlx::query("update counters set value = value + 1 where name = 'intakes'")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "insert into batches (batch_id, batch_no, body_hash, parent_batch_id, department_code, region_code, \
             subsidy_code, subsidy_name, budget_year, period, indicator_no, payout_bank, payer_account_no, \
             payer_account_name, funds_arrived_on, total_count, total_amount_fen, accepted_count, \
             accepted_amount_fen, rejected_count, answer, created_at, start_late) \
             values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,0,0,0,'',$18,$19)",
        )
        .bind(&b.batch_id)
        .bind(&b.batch_no)
        .bind(&b.body_hash)
        .bind(&b.parent_batch_id)
        .bind(&b.department_code)
        .bind(&b.region_code)
        .bind(&b.subsidy_code)
        .bind(&b.subsidy_name)
        .bind(b.budget_year)
        .bind(&b.period)
        .bind(&b.indicator_no)
        .bind(&b.payout_bank)
        .bind(&b.payer_account_no)
        .bind(&b.payer_account_name)
        .bind(&b.funds_arrived_on)
        .bind(b.total_count)
        .bind(b.total_amount_fen)
        .bind(b.created_at)
        .bind(i64::from(b.start_late))
        .execute(&mut *tx)
        .await?;
        Ok(IntakeTx {
            tx,
            backend: self.backend(),
            keys: self.keys.clone(),
            batch_id: b.batch_id.clone(),
            claims: BTreeMap::new(),
        })
    }
}

impl IntakeTx {
    /// The batch id being written.
    pub fn batch_id(&self) -> &str {
        &self.batch_id
    }

    /// Which of `keys` are claimed by accepted items (of any batch, this one included).
    pub async fn claimed(&mut self, keys: &[ClaimKey]) -> StoreResult<HashSet<ClaimKey>> {
        let mut out: HashSet<ClaimKey> = keys
            .iter()
            .filter(|k| self.claims.contains_key(k))
            .copied()
            .collect();
        for chunk in keys.chunks(INSERT_CHUNK * 4) {
            let sql = format!(
                "select claim_key from claims where claim_key in ({})",
                in_list(self.backend, chunk.len())
            );
            let mut q = rows_query(sql, chunk.len(), INSERT_CHUNK * 4);
            for k in chunk {
                q = q.bind(k.0.to_vec());
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                let raw: Vec<u8> = r.try_get("claim_key")?;
                let key = <[u8; 16]>::try_from(raw.as_slice()).map_err(|_| {
                    corrupt("claims", format!("a claim key of {} bytes", raw.len()))
                })?;
                out.insert(ClaimKey(key));
            }
        }
        Ok(out)
    }

    /// Writes items (multi-row inserts); their claims are held until [`IntakeTx::finish`] writes
    /// them all at once, in key order. A claim already held (by this roster or in the store) is an
    /// error: [`IntakeTx::claimed`] tells which are free.
    pub async fn insert_items(&mut self, items: &[NewItem]) -> StoreResult<()> {
        for it in items {
            if let Some(k) = it.claim_key
                && self.claims.insert(k, it.seq).is_some()
            {
                return Err(StoreError::Refused(format!(
                    "item {}: its claim is held by another item of the roster",
                    it.seq
                )));
            }
        }
        write_items(
            &mut self.tx,
            self.backend,
            &self.keys,
            &self.batch_id,
            items,
        )
        .await
    }

    /// Writes the parts of the batch.
    pub async fn insert_parts(
        &mut self,
        bank_code: &str,
        not_before: i64,
        parts: &[NewPart],
    ) -> StoreResult<()> {
        for p in parts {
            sqlx::query(
                "insert into parts (part_id, batch_id, bank_code, bank_ref, part_no, item_count, amount_fen, state, \
                 not_before, next_at) values ($1,$2,$3,$4,$5,$6,$7,'pending',$8,$8)",
            )
            .bind(&p.part_id)
            .bind(&self.batch_id)
            .bind(bank_code)
            .bind(&p.bank_ref)
            .bind(p.part_no)
            .bind(p.item_count)
            .bind(p.amount_fen)
            .bind(not_before)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// Records the canonical body hash (known only once the whole body has been read).
    pub async fn set_hash(&mut self, hash: &str) -> StoreResult<()> {
        sqlx::query("update batches set body_hash = $1 where batch_id = $2")
            .bind(hash)
            .bind(&self.batch_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Fixes the counts and the answer, writes the events, and commits.
    pub async fn finish(
        mut self,
        accepted: (i64, i64),
        rejected_count: i64,
        answer: &str,
        events: &[EventRow],
    ) -> StoreResult<()> {
        sqlx::query(
            "update batches set accepted_count = $1, accepted_amount_fen = $2, rejected_count = $3, answer = $4 \
             where batch_id = $5",
        )
        .bind(accepted.0)
        .bind(accepted.1)
        .bind(rejected_count)
        .bind(answer)
        .bind(&self.batch_id)
        .execute(&mut *self.tx)
        .await?;
        super::misc::insert_events(&mut self.tx, events).await?;
        let claims = std::mem::take(&mut self.claims);
        write_claims(
            &mut self.tx,
            self.backend,
            &self.batch_id,
            claims.into_iter(),
        )
        .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Drops everything written.
    pub async fn abort(self) -> StoreResult<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// Writes claims in key order: each page of the claims index is written once per roster, where
/// random keys inserted as they come would rewrite most of its pages with every chunk.
pub(crate) async fn insert_claims(
    tx: &mut Transaction<'static, Any>,
    backend: super::Backend,
    batch_id: &str,
    claims: &mut [(ClaimKey, i64)],
) -> StoreResult<()> {
    claims.sort_unstable();
    write_claims(tx, backend, batch_id, claims.iter().copied()).await
}

/// Writes claims given in key order, in multi-row inserts.
async fn write_claims(
    tx: &mut Transaction<'static, Any>,
    backend: super::Backend,
    batch_id: &str,
    mut claims: impl Iterator<Item = (ClaimKey, i64)>,
) -> StoreResult<()> {
    let mut chunk = Vec::with_capacity(INSERT_CHUNK * 2);
    loop {
        chunk.clear();
        chunk.extend(claims.by_ref().take(INSERT_CHUNK * 2));
        if chunk.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "insert into claims (claim_key, batch_id, seq) values {}",
            placeholders(backend, chunk.len(), 3)
        );
        let mut q = rows_query(sql, chunk.len(), INSERT_CHUNK * 2);
        for (k, seq) in &chunk {
            q = q.bind(k.0.to_vec()).bind(batch_id.to_owned()).bind(*seq);
        }
        q.execute(&mut **tx).await?;
    }
}

/// Writes items, their personal fields sealed for their row, and the claims of those that hold one
/// (a roster's are written at its end instead: [`IntakeTx::insert_items`]).
pub(crate) async fn insert_items(
    tx: &mut Transaction<'static, Any>,
    backend: super::Backend,
    keys: &StoreKeys,
    batch_id: &str,
    items: &[NewItem],
) -> StoreResult<()> {
    write_items(tx, backend, keys, batch_id, items).await?;
    let mut claims: Vec<(ClaimKey, i64)> = items
        .iter()
        .filter_map(|it| it.claim_key.map(|k| (k, it.seq)))
        .collect();
    insert_claims(tx, backend, batch_id, &mut claims).await
}

/// Writes items, their personal fields sealed for their row (not their claims). Sealing is CPU
/// work: each chunk is sealed while the database writes the one before it.
async fn write_items(
    tx: &mut Transaction<'static, Any>,
    backend: super::Backend,
    keys: &StoreKeys,
    batch_id: &str,
    items: &[NewItem],
) -> StoreResult<()> {
    let mut chunks = items.chunks(INSERT_CHUNK);
    let mut next = chunks
        .next()
        .map(|c| item_insert(backend, &keys.data, batch_id, c))
        .transpose()?;
    while let Some(q) = next.take() {
        // `join!` polls the insert first, which hands it to the database (SQLite's worker thread, or
        // PostgreSQL's server), then seals the following chunk on this thread meanwhile.
        let [items, pii] = q;
        let write = async {
            items.execute(&mut **tx).await?;
            pii.execute(&mut **tx).await
        };
        let (written, following) = futures::join!(write, async {
            chunks
                .next()
                .map(|c| item_insert(backend, &keys.data, batch_id, c))
                .transpose()
        });
        written?;
        next = following?;
    }
    Ok(())
}

/// The multi-row inserts of a chunk of items: the items, then their personal fields sealed
/// (`items_pii`).
fn item_insert(
    backend: super::Backend,
    keys: &Keyring,
    batch_id: &str,
    chunk: &[NewItem],
) -> StoreResult<[sqlx::query::Query<'static, Any, sqlx::any::AnyArguments>; 2]> {
    let sql = format!(
        "insert into items (batch_id, seq, recipient_kind, account_kind, account_bank_code, amount_fen, \
         ssc_exempt, memo, status, reject_code, reject_message, part_id, replaces_batch_id, replaces_seq) \
         values {}",
        placeholders(backend, chunk.len(), ITEM_COLS)
    );
    let mut q = rows_query(sql, chunk.len(), INSERT_CHUNK);
    let sql = format!(
        "insert into items_pii (batch_id, seq, name, id_no, account_no, phone) values {}",
        placeholders(backend, chunk.len(), PII_COLS)
    );
    let mut pii = rows_query(sql, chunk.len(), INSERT_CHUNK);
    for it in chunk {
        let (rb, rs) = match &it.replaces {
            Some((b, s)) => (Some(b.clone()), Some(*s)),
            None => (None, None),
        };
        q = q
            .bind(batch_id.to_owned())
            .bind(it.seq)
            .bind(it.recipient_kind.as_str())
            .bind(it.account_kind.as_str())
            .bind(it.account_bank_code.clone())
            .bind(it.amount_fen)
            .bind(i64::from(it.ssc_exempt))
            .bind(it.memo.clone())
            .bind(it.status.as_str())
            .bind(it.reject_code.clone())
            .bind(it.reject_message.clone())
            .bind(it.part_id.clone())
            .bind(rb)
            .bind(rs);
        let seal = |column, pii: &str| seal_item_field(keys, batch_id, it.seq, column, pii);
        pii = pii
            .bind(batch_id.to_owned())
            .bind(it.seq)
            .bind(seal("name", it.name.expose())?)
            .bind(seal("id_no", it.id_no.expose())?)
            .bind(seal("account_no", it.account_no.expose())?)
            .bind(seal("phone", it.phone.expose())?);
    }
    Ok([q, pii])
}
