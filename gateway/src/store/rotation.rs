//! The key rotation pass: every sealed personal value not sealed with the current data key (an older
//! key, or plaintext written before sealing existed) is opened and sealed again with the current one.
//!
//! ```text
//! key_rotation(scope): key_id = current?  no -> new pass: cursor = start
//!                      done_at set?       yes -> nothing to do
//! page: rows after the cursor in primary-key order (limit n) -> reseal those not current
//!       -> cursor = last row, counts; fewer than n rows: done_at      (one transaction)
//! ```
//!
//! Idempotent (a resealed value is current and left alone next time) and resumable (the cursor is
//! committed with the page it ends), so a pass may stop anywhere: a restart, a lost lease, the
//! operator's Ctrl-C in `gateway keys rotate`. Rows written while a pass runs are sealed with the
//! current key already.
use std::collections::BTreeMap;

use sqlx::{Any, Row, Transaction};

use super::batches::{ITEM_SEALED, open_item_field, seal_item_field};
use super::misc::blacklist_sealed;
use super::{Backend, Store, StoreResult};
use crate::keys::Keyring;
use crate::keys::sealed::blacklist_ad;

/// A table whose personal values the pass reseals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RotationScope {
    /// The items' personal fields (`items_pii`: name, id_no, account_no, phone).
    Items,
    /// `blacklist.value`.
    Blacklist,
}

impl RotationScope {
    /// Every scope.
    pub const ALL: [Self; 2] = [Self::Items, Self::Blacklist];

    /// Its name in `key_rotation.scope`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Items => "items",
            Self::Blacklist => "blacklist",
        }
    }
}

/// What one page of a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotationPage {
    /// Rows read.
    pub scanned: u64,
    /// Rows written again (a value resealed).
    pub resealed: u64,
    /// The pass of this scope has reached its end (for the current key).
    pub done: bool,
}

/// Where a pass stands.
struct Marker {
    key_id: String,
    after_key: String,
    after_seq: i64,
    done: bool,
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl Store {
    async fn rotation_marker(
        &self,
        tx: Option<&mut Transaction<'static, Any>>,
        scope: RotationScope,
    ) -> StoreResult<Option<Marker>> {
        let q = sqlx::query(
            "select key_id, after_key, after_seq, done_at from key_rotation where scope = $1",
        )
        .bind(scope.as_str());
        let row = match tx {
            Some(tx) => q.fetch_optional(&mut **tx).await?,
            None => q.fetch_optional(self.pool()).await?,
        };
        row.map(|r| {
            Ok(Marker {
                key_id: r.try_get("key_id")?,
                after_key: r.try_get("after_key")?,
                after_seq: r.try_get("after_seq")?,
                done: r.try_get::<Option<i64>, _>("done_at")?.is_some(),
            })
        })
        .transpose()
    }

    /// Whether the pass of `scope` has reached its end for the current key (a read, no lock).
    pub async fn rotation_done(&self, scope: RotationScope) -> StoreResult<bool> {
        let current = self.keys.data.current_id();
        Ok(self
            .rotation_marker(None, scope)
            .await?
            .is_some_and(|m| m.done && m.key_id == current))
    }

    /// One page of the pass of `scope`: at most `limit` rows after the cursor, in one transaction
    /// with the cursor's move. A pass already at its end does nothing (no write).
    pub async fn rotate_page(
        &self,
        scope: RotationScope,
        limit: i64,
        now: i64,
    ) -> StoreResult<RotationPage> {
        if self.rotation_done(scope).await? {
            return Ok(RotationPage {
                done: true,
                ..Default::default()
            });
        }
        let current = self.keys.data.current_id().to_owned();
        let mut tx = self.begin_write().await?;
        let marker = match self.rotation_marker(Some(&mut tx), scope).await? {
            Some(m) if m.key_id == current => m,
            _ => {
                sqlx::query(
                    "insert into key_rotation (scope, key_id, after_key, after_seq, scanned, resealed, started_at) \
                     values ($1, $2, '', 0, 0, 0, $3) on conflict (scope) do update set key_id = excluded.key_id, \
                     after_key = '', after_seq = 0, scanned = 0, resealed = 0, started_at = excluded.started_at, \
                     done_at = null",
                )
                .bind(scope.as_str())
                .bind(&current)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                Marker {
                    key_id: current,
                    after_key: String::new(),
                    after_seq: 0,
                    done: false,
                }
            }
        };
        if marker.done {
            tx.commit().await?;
            return Ok(RotationPage {
                done: true,
                ..Default::default()
            });
        }
        // Plaintext from before sealing must not stay behind in SQLite's free space once resealed.
        if self.backend == Backend::Sqlite {
            sqlx::query("pragma secure_delete = on")
                .execute(&mut *tx)
                .await?;
        }
        let page = match scope {
            RotationScope::Items => self.reseal_items(&mut tx, &marker, limit).await,
            RotationScope::Blacklist => self.reseal_blacklist(&mut tx, &marker, limit).await,
        };
        if self.backend == Backend::Sqlite {
            sqlx::query("pragma secure_delete = off")
                .execute(&mut *tx)
                .await?;
        }
        let (page, cursor) = page?;
        let (after_key, after_seq) = cursor.unwrap_or((marker.after_key, marker.after_seq));
        let done = page.scanned < u64::try_from(limit).unwrap_or(0);
        sqlx::query(
            "update key_rotation set after_key = $1, after_seq = $2, scanned = scanned + $3, \
             resealed = resealed + $4, done_at = $5 where scope = $6",
        )
        .bind(after_key)
        .bind(after_seq)
        .bind(i64::try_from(page.scanned).unwrap_or(i64::MAX))
        .bind(i64::try_from(page.resealed).unwrap_or(i64::MAX))
        .bind(done.then_some(now))
        .bind(scope.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RotationPage { done, ..page })
    }

    async fn reseal_items(
        &self,
        tx: &mut Transaction<'static, Any>,
        marker: &Marker,
        limit: i64,
    ) -> StoreResult<(RotationPage, Option<(String, i64)>)> {
        let rows = sqlx::query(
            "select batch_id, seq, name, id_no, account_no, phone from items_pii \
             where (batch_id, seq) > ($1, $2) order by batch_id, seq limit $3",
        )
        .bind(&marker.after_key)
        .bind(marker.after_seq)
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?;
        let keys = &self.keys.data;
        let mut resealed = 0;
        let mut last = None;
        for r in &rows {
            let batch_id: String = r.try_get("batch_id")?;
            let seq: i64 = r.try_get("seq")?;
            let mut values = Vec::with_capacity(ITEM_SEALED.len());
            let mut stale = false;
            for column in ITEM_SEALED {
                let stored: String = r.try_get(column)?;
                if keys.is_current(&stored) {
                    values.push(stored);
                } else {
                    let plain = open_item_field(keys, r, &batch_id, seq, column)?;
                    values.push(seal_item_field(keys, &batch_id, seq, column, &plain)?);
                    stale = true;
                }
            }
            if stale {
                let mut q = sqlx::query(
                    "update items_pii set name = $1, id_no = $2, account_no = $3, phone = $4 \
                     where batch_id = $5 and seq = $6",
                );
                for v in values {
                    q = q.bind(v);
                }
                q.bind(&batch_id).bind(seq).execute(&mut **tx).await?;
                resealed += 1;
            }
            last = Some((batch_id, seq));
        }
        Ok((
            RotationPage {
                scanned: count(rows.len()),
                resealed,
                done: false,
            },
            last,
        ))
    }

    async fn reseal_blacklist(
        &self,
        tx: &mut Transaction<'static, Any>,
        marker: &Marker,
        limit: i64,
    ) -> StoreResult<(RotationPage, Option<(String, i64)>)> {
        let rows = sqlx::query(
            "select entry_id, value from blacklist where entry_id > $1 order by entry_id limit $2",
        )
        .bind(&marker.after_key)
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?;
        let keys: &Keyring = &self.keys.data;
        let mut resealed = 0;
        let mut last = None;
        for r in &rows {
            let entry_id: String = r.try_get("entry_id")?;
            let stored: String = r.try_get("value")?;
            if !keys.is_current(&stored) {
                let ad = blacklist_ad(&entry_id);
                let plain = keys
                    .open(&ad, &stored)
                    .map_err(|p| blacklist_sealed(&entry_id, p))?;
                let sealed = keys
                    .seal(&ad, &plain)
                    .map_err(|p| blacklist_sealed(&entry_id, p))?;
                sqlx::query("update blacklist set value = $1 where entry_id = $2")
                    .bind(sealed)
                    .bind(&entry_id)
                    .execute(&mut **tx)
                    .await?;
                resealed += 1;
            }
            last = Some((entry_id, 0));
        }
        Ok((
            RotationPage {
                scanned: count(rows.len()),
                resealed,
                done: false,
            },
            last,
        ))
    }

    /// Starts every pass again from the first row (`gateway keys rotate --again`): for when values
    /// sealed with an old key turned up behind a finished pass (an instance that still had the old
    /// keyring when the pass ran).
    pub async fn restart_rotation(&self) -> StoreResult<()> {
        sqlx::query("delete from key_rotation")
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// How many stored personal values each key id seals, per table (`plaintext` for values from
    /// before sealing): an old key may leave the keyring once it seals nothing. Reads every row.
    pub async fn sealed_key_usage(&self) -> StoreResult<BTreeMap<(String, String), u64>> {
        fn tally(out: &mut BTreeMap<(String, String), u64>, scope: &str, stored: &str) {
            let id = Keyring::key_id_of(stored).unwrap_or("plaintext");
            *out.entry((scope.to_owned(), id.to_owned())).or_default() += 1;
        }
        // Enough of each value to see its key id (`v1:` + at most 16 + `:`).
        const HEAD: &str = "24";
        let mut out = BTreeMap::new();
        let (mut after_key, mut after_seq) = (String::new(), 0i64);
        loop {
            let sql = format!(
                "select batch_id, seq, substr(name, 1, {HEAD}) as name, substr(id_no, 1, {HEAD}) as id_no, \
                 substr(account_no, 1, {HEAD}) as account_no, substr(phone, 1, {HEAD}) as phone from items_pii \
                 where (batch_id, seq) > ($1, $2) order by batch_id, seq limit 5000"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&after_key)
                .bind(after_seq)
                .fetch_all(self.pool())
                .await?;
            for r in &rows {
                for column in ITEM_SEALED {
                    tally(&mut out, "items", &r.try_get::<String, _>(column)?);
                }
                after_key = r.try_get("batch_id")?;
                after_seq = r.try_get("seq")?;
            }
            if rows.len() < 5000 {
                break;
            }
        }
        for r in sqlx::query("select value from blacklist")
            .fetch_all(self.pool())
            .await?
        {
            tally(&mut out, "blacklist", &r.try_get::<String, _>("value")?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{AccountKind, ItemStatus, Pii, RecipientKind};
    use crate::keys::{LookupKey, StoreKeys};
    use crate::store::{BlacklistRow, NewBatch, NewItem, StoreError};

    const K1: &str = "k1=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "k2=1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";
    const K3: &str = "k3=a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

    async fn store(db: &std::path::Path, keyring: &str) -> Store {
        let keys = StoreKeys {
            data: Keyring::parse(keyring, "test").expect("keyring"),
            lookup: LookupKey::new(vec![7; 32]),
        };
        Store::open_with_keys(&format!("sqlite://{}", db.display()), keys)
            .await
            .expect("store")
    }

    fn batch(batch_id: &str) -> NewBatch {
        NewBatch {
            batch_id: batch_id.into(),
            batch_no: format!("NO-{batch_id}"),
            body_hash: String::new(),
            parent_batch_id: None,
            department_code: "220623-NYNC".into(),
            region_code: "220623".into(),
            subsidy_code: "NY001".into(),
            subsidy_name: "耕地地力保护补贴".into(),
            budget_year: 2026,
            period: "2026".into(),
            indicator_no: "IND-1".into(),
            payout_bank: "402241000015".into(),
            payer_account_no: "22050166000100000001".into(),
            payer_account_name: "财政零余额账户".into(),
            funds_arrived_on: "2026-11-26".into(),
            total_count: 0,
            total_amount_fen: 0,
            created_at: 1,
            start_late: false,
        }
    }

    fn item(seq: i64) -> NewItem {
        NewItem {
            seq,
            recipient_kind: RecipientKind::Person,
            name: Pii::new(format!("张{seq}")),
            id_no: Pii::new(format!("22062319800101{seq:04}")),
            account_no: Pii::new(format!("6217{seq:015}")),
            account_kind: AccountKind::Ssc,
            account_bank_code: "105241000012".into(),
            amount_fen: 100,
            phone: Pii::new(format!("1380000{seq:04}")),
            ssc_exempt: false,
            memo: String::new(),
            status: ItemStatus::Pending,
            reject_code: None,
            reject_message: None,
            part_id: None,
            claim_key: None,
            replaces: None,
        }
    }

    async fn raw(store: &Store, sql: &str) -> Vec<String> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(store.pool())
            .await
            .expect("raw");
        rows.iter()
            .flat_map(|r| {
                (0..r.columns().len())
                    .map(|i| r.try_get::<String, _>(i).expect("text"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    async fn personal_values(store: &Store) -> Vec<String> {
        let mut v = raw(
            store,
            "select name, id_no, account_no, phone from items_pii",
        )
        .await;
        v.extend(raw(store, "select value from blacklist").await);
        v
    }

    /// The items and blacklist as the store hands them over (opened).
    async fn opened(store: &Store) -> Vec<String> {
        let mut out = Vec::new();
        for b in ["B1", "B2"] {
            for i in store.list_items(b, None, 0, 100).await.expect("items") {
                out.extend([
                    i.name.expose().to_owned(),
                    i.id_no.expose().to_owned(),
                    i.account_no.expose().to_owned(),
                    i.phone.expose().to_owned(),
                ]);
            }
        }
        out.extend(
            store
                .list_blacklist()
                .await
                .expect("blacklist")
                .into_iter()
                .map(|e| e.value),
        );
        out
    }

    async fn to_end(
        store: &Store,
        page: i64,
    ) -> Vec<(RotationScope, crate::keys::rotation::PassTotals)> {
        crate::keys::rotation::rotate_to_end(store, || 5, page, Duration::ZERO, None)
            .await
            .expect("rotation")
    }

    #[tokio::test]
    async fn a_pass_reseals_old_keys_and_plaintext_once_and_resumes_after_a_stop() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("gw.db");
        let s1 = store(&db, K1).await;
        let mut tx = s1.begin_intake(&batch("B1")).await.expect("intake");
        tx.insert_items(&(1..=5).map(item).collect::<Vec<_>>())
            .await
            .expect("items");
        tx.finish((5, 500), 0, "{}", &[]).await.expect("commit");
        // A roster and a blacklist entry stored before sealing existed: plaintext, no phone hash.
        let tx = s1.begin_intake(&batch("B2")).await.expect("intake");
        tx.finish((0, 0), 0, "{}", &[]).await.expect("commit");
        sqlx::query(
            "insert into items (batch_id, seq, recipient_kind, account_kind, account_bank_code, amount_fen, \
             ssc_exempt, memo, status) values ('B2', 1, 'person', 'ssc', '105241000012', 100, 0, '', 'pending')",
        )
        .execute(s1.pool())
        .await
        .expect("legacy item");
        sqlx::query(
            "insert into items_pii (batch_id, seq, name, id_no, account_no, phone) values \
             ('B2', 1, '李四', '220623198001019999', '6217000000000009999', '13900009999')",
        )
        .execute(s1.pool())
        .await
        .expect("legacy item's personal fields");
        sqlx::query(
            "insert into blacklist (entry_id, kind, value_hash, value, reason, added_by, added_at) \
             values ('bl-legacy', 'id_no', 'h-legacy', '220623198001018888', 'old', 'admin', 1)",
        )
        .execute(s1.pool())
        .await
        .expect("legacy entry");
        s1.add_blacklist(
            &BlacklistRow {
                entry_id: "bl-new".into(),
                kind: "account_no".into(),
                value: "6217000000000007777".into(),
                reason: "test".into(),
                added_by: "admin".into(),
                added_at: 2,
            },
            "h-new",
            &crate::store::NewAudit::new(2, "admin", "admin", "blacklist-add", "bl-new", "{}"),
        )
        .await
        .expect("entry");
        let before = opened(&s1).await;
        assert!(before.contains(&"13900009999".to_owned()) && before.len() == 6 * 4 + 2);
        let sealed = personal_values(&s1).await;
        assert_eq!(
            sealed.iter().filter(|v| v.starts_with("v1:k1:")).count(),
            5 * 4 + 1,
            "new rows are sealed, old ones not yet: {sealed:?}"
        );
        s1.close().await;

        // k2 becomes current, k1 still opens: the pass reseals what k1 sealed and the plaintext.
        let s2 = store(&db, &format!("{K2}\n{K1}")).await;
        assert_eq!(opened(&s2).await, before, "old values open before the pass");
        let totals = to_end(&s2, 2).await;
        assert_eq!(totals[0].1.scanned, 6);
        assert_eq!(totals[0].1.resealed, 6);
        assert_eq!((totals[1].1.scanned, totals[1].1.resealed), (2, 2));
        assert!(
            personal_values(&s2)
                .await
                .iter()
                .all(|v| v.starts_with("v1:k2:")),
            "every value sealed with k2"
        );
        assert_eq!(opened(&s2).await, before, "the same values after the pass");
        // Idempotent: a finished pass does nothing, even when run again.
        let again = to_end(&s2, 2).await;
        assert!(again.iter().all(|(_, t)| t.scanned == 0 && t.resealed == 0));
        assert!(s2.rotation_done(RotationScope::Items).await.expect("done"));
        s2.close().await;

        // k3: a pass stopped after one page resumes from its cursor in another process.
        let s3 = store(&db, &format!("{K3}\n{K2}")).await;
        let first = s3
            .rotate_page(RotationScope::Items, 1, 6)
            .await
            .expect("page");
        assert_eq!((first.scanned, first.resealed, first.done), (1, 1, false));
        s3.close().await;
        let s3 = store(&db, &format!("{K3}\n{K2}")).await;
        let rest = to_end(&s3, 2).await;
        assert_eq!(rest[0].1.scanned, 5, "the first row is not read again");
        assert_eq!(rest[0].1.resealed, 5);
        let usage = s3.sealed_key_usage().await.expect("usage");
        assert_eq!(
            usage
                .keys()
                .map(|(t, k)| format!("{t}:{k}"))
                .collect::<Vec<_>>(),
            ["blacklist:k3", "items:k3"]
        );
        assert_eq!(usage[&("items".to_owned(), "k3".to_owned())], 24);
        s3.close().await;

        // k2 can now leave the keyring.
        let only = store(&db, K3).await;
        assert_eq!(opened(&only).await, before);
        // Without the key that sealed them the values do not open, and the error says which key.
        only.close().await;
        let wrong = store(&db, K1).await;
        let e = wrong
            .list_items("B1", None, 0, 10)
            .await
            .expect_err("k3 missing");
        assert!(e.to_string().contains("`k3`"), "{e}");
        assert!(
            !e.to_string().contains("2206231980"),
            "no personal data: {e}"
        );
        wrong.close().await;
    }

    #[tokio::test]
    async fn a_value_moved_to_another_row_does_not_open() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir.path().join("gw.db"), K1).await;
        let mut tx = s.begin_intake(&batch("B1")).await.expect("intake");
        tx.insert_items(&[item(1), item(2)]).await.expect("items");
        tx.finish((2, 200), 0, "{}", &[]).await.expect("commit");
        sqlx::query(
            "update items_pii set id_no = (select id_no from items_pii where seq = 1) where batch_id = 'B1' and seq = 2",
        )
        .execute(s.pool())
        .await
        .expect("swap");
        match s.get_item("B1", 2).await {
            Err(StoreError::Sealed {
                table: "items",
                column: "id_no",
                problem: crate::keys::SealError::Auth,
                ..
            }) => {}
            other => panic!("expected an authentication failure, got {other:?}"),
        }
        assert!(s.get_item("B1", 1).await.expect("row 1").is_some());
    }

    #[tokio::test]
    async fn a_receipt_naming_only_the_phone_finds_its_unknown_notice_by_keyed_hash() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir.path().join("gw.db"), K1).await;
        let mut tx = s.begin_intake(&batch("B1")).await.expect("intake");
        tx.insert_items(&[item(1), item(2)]).await.expect("items");
        tx.finish((2, 200), 0, "{}", &[]).await.expect("commit");
        for seq in [1, 2] {
            sqlx::query(
                "insert into notices (batch_id, seq, state, created_at, next_at) values ('B1', $1, 'pending', 1, 1)",
            )
            .bind(seq)
            .execute(s.pool())
            .await
            .expect("notice");
        }
        let jobs = s.claim_notices(2, "GW01", 100, 10).await.expect("claim");
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].phone, "13800000001", "opened for sending");
        let hashes = raw(&s, "select phone_hash from notices order by seq").await;
        assert_eq!(
            hashes,
            [
                s.keys().lookup.phone_hash("13800000001"),
                s.keys().lookup.phone_hash("13800000002")
            ]
        );
        // Both sent, then a restart: their outcome is unknown.
        let keys = [("B1".to_owned(), 1, 1), ("B1".to_owned(), 2, 1)];
        s.notices_sending(&keys, 3).await.expect("sending");
        assert_eq!(
            s.recover_notices("GW01", 4, 1000).await.expect("recover"),
            2
        );
        assert!(
            !s.notice_receipt("m-x", "13800000009", "DELIVRD", 5)
                .await
                .expect("receipt"),
            "another phone answers nothing"
        );
        assert!(
            s.notice_receipt("m-2", "13800000002", "DELIVRD", 5)
                .await
                .expect("receipt"),
            "the phone's hash finds the notice"
        );
        let states = raw(&s, "select state from notices order by seq").await;
        assert_eq!(states, ["unknown", "delivered"]);
    }
}
