//! The audit log as a hash chain: who read or changed what, tamper-evident.
//!
//! Every record carries the hash of the record before it (`prev_hash`) and its own `hash`, the SHA-256
//! of this canonical encoding (all integers big-endian; each text is its UTF-8 bytes after its length):
//!
//! ```text
//! "gateway-audit-v1"            16 bytes, the version of this encoding
//! audit_no                       8 bytes, i64
//! at                             8 bytes, i64 (Unix ms)
//! actor, role, action,           each: length (8 bytes, u64) + bytes
//! target, detail, prev_hash
//! ```
//!
//! `hash` and `prev_hash` are written as 64 lowercase hex digits; the first chained record's
//! `prev_hash` is 64 zeros. Records are appended by one function, [`append_audit`], inside the
//! transaction that makes the change the record describes (a read of full personal data has one of
//! its own, committed before the data is answered): it takes the next number and the last hash from
//! the one-row `audit_head` table with an `update ... returning`, which locks that row until the
//! transaction ends.
//! So appends take turns, on SQLite (one writer anyway) as on PostgreSQL with several gateways, and
//! numbers have no gaps and follow commit order. The head keeps the last hash too, so removing the last
//! record is seen as well.
//!
//! Records written before the chain existed (migration `20261126104500_audit_chain`) have no hashes;
//! the chain starts after them (`audit_head.chain_start`) and they are not covered.
//!
//! What the chain proves: a record changed, removed or inserted in the middle, or removed at the end,
//! breaks it ([`Store::verify_audit`] names the first such record). What it cannot prove on its own:
//! someone with write access to the database who rewrites every record from some point on, and the
//! head with them. Against that, note the head (`gateway audit verify` prints it) somewhere the
//! database's writers cannot change, and compare.
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use super::rows::AuditRow;
use super::{Store, StoreError, StoreResult};

/// The `prev_hash` of the first chained record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Version tag at the start of the encoding; a new encoding gets a new tag.
const ENCODING_TAG: &[u8; 16] = b"gateway-audit-v1";

/// Records read per page when the chain is walked.
const VERIFY_PAGE: i64 = 1000;

/// The hash of `r` (its own `prev_hash` and `hash` fields are not read) chained to `prev_hash`.
pub fn record_hash(r: &AuditRow, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(ENCODING_TAG);
    h.update(r.audit_no.to_be_bytes());
    h.update(r.at.to_be_bytes());
    for text in [
        r.actor.as_str(),
        &r.role,
        &r.action,
        &r.target,
        &r.detail,
        prev_hash,
    ] {
        h.update((text.len() as u64).to_be_bytes());
        h.update(text.as_bytes());
    }
    hex::encode(h.finalize())
}

/// An audit record to append: who did what, to what, when. The store functions that make a change
/// take the change's record and append it in the change's own transaction, so a change is never
/// stored without its record, nor a record without its change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    /// When (Unix ms).
    pub at: i64,
    /// Who (the token's actor name).
    pub actor: String,
    /// The caller's role.
    pub role: String,
    /// What (`blacklist-add`, `read-personal-data`, ...).
    pub action: String,
    /// On what (ids and numbers, never personal data).
    pub target: String,
    /// Detail (JSON text; personal values in it masked).
    pub detail: String,
}

impl NewAudit {
    /// A record of `action` on `target` by `actor` in `role` at `at`.
    pub fn new(
        at: i64,
        actor: impl Into<String>,
        role: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            at,
            actor: actor.into(),
            role: role.into(),
            action: action.into(),
            target: target.into(),
            detail: detail.into(),
        }
    }
}

/// Appends one audit record in the caller's transaction and returns its number. The only writer of
/// the `audit` table. It holds the chain's head row from here to the end of `tx`: call it late in a
/// transaction that does other work (after the change the record describes, before the commit).
pub(crate) async fn append_audit(
    tx: &mut Transaction<'static, Any>,
    record: &NewAudit,
) -> StoreResult<i64> {
    let head = sqlx::query(
        "update audit_head set audit_no = audit_no + 1 where id = 1 returning audit_no, hash",
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::Corrupt {
        table: "audit_head",
        problem: "the head row of the audit chain is missing".into(),
    })?;
    let mut row = AuditRow {
        audit_no: head.try_get("audit_no")?,
        at: record.at,
        actor: record.actor.clone(),
        role: record.role.clone(),
        action: record.action.clone(),
        target: record.target.clone(),
        detail: record.detail.clone(),
        prev_hash: None,
        hash: None,
    };
    let prev_hash: String = head.try_get("hash")?;
    let hash = record_hash(&row, &prev_hash);
    row.prev_hash = Some(prev_hash);
    sqlx::query(
        "insert into audit (audit_no, at, actor, role, action, target, detail, prev_hash, hash) \
         values ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
    )
    .bind(row.audit_no)
    .bind(row.at)
    .bind(&row.actor)
    .bind(&row.role)
    .bind(&row.action)
    .bind(&row.target)
    .bind(&row.detail)
    .bind(&row.prev_hash)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("update audit_head set hash = $1 where id = 1")
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
    Ok(row.audit_no)
}

fn audit_from_row(r: &sqlx::any::AnyRow) -> StoreResult<AuditRow> {
    Ok(AuditRow {
        audit_no: r.try_get("audit_no")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        role: r.try_get("role")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        detail: r.try_get("detail")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditBreak {
    /// A number between two records is absent: the record was removed.
    #[error("audit record {audit_no} is missing (the record after {before} is {found})")]
    Missing {
        /// The absent number.
        audit_no: i64,
        /// The record before the gap.
        before: i64,
        /// The record found instead.
        found: i64,
    },
    /// A chained record without hashes (written or altered outside the gateway).
    #[error("audit record {audit_no} has no hash (written outside the chain)")]
    Unhashed {
        /// The record.
        audit_no: i64,
    },
    /// The record's content does not give its stored hash: changed after it was written.
    #[error("audit record {audit_no} was changed: its content does not match its hash")]
    Changed {
        /// The record.
        audit_no: i64,
    },
    /// The record does not follow the one before it: that one was changed or replaced, or this one
    /// was inserted.
    #[error(
        "audit record {audit_no} does not follow record {before}: its prev_hash is not the hash of \
         {before} (a record was changed, removed or inserted)"
    )]
    Unlinked {
        /// The record.
        audit_no: i64,
        /// The record before it.
        before: i64,
    },
    /// The chain ends before the head: the last records were removed.
    #[error("audit records after {last} are missing (the chain's head is at {head})")]
    Truncated {
        /// The last record found.
        last: i64,
        /// Where the head says the chain ends.
        head: i64,
    },
    /// A record after the head, or a last record that is not the one the head recorded.
    #[error("audit record {audit_no} is not the chain's head record (the head is at {head})")]
    NotHead {
        /// The record.
        audit_no: i64,
        /// The head's number.
        head: i64,
    },
}

impl AuditBreak {
    /// The number of the first record found broken.
    pub fn audit_no(&self) -> i64 {
        match self {
            Self::Missing { audit_no, .. }
            | Self::Unhashed { audit_no }
            | Self::Changed { audit_no }
            | Self::Unlinked { audit_no, .. }
            | Self::NotHead { audit_no, .. } => *audit_no,
            Self::Truncated { last, .. } => last + 1,
        }
    }
}

/// The result of walking the chain.
#[derive(Debug, Clone)]
pub struct AuditVerdict {
    /// Chained records checked (up to the first break).
    pub chained: u64,
    /// Records from before the chain (not covered).
    pub before_chain: u64,
    /// The head: last record number and its hash.
    pub head_no: i64,
    /// The head's hash.
    pub head_hash: String,
    /// The first break, if any.
    pub broken: Option<AuditBreak>,
}

impl Store {
    /// Appends an audit record in a transaction of its own, for what changes nothing else: an
    /// admin's read of full personal data is recorded this way, and answered only once this returned
    /// (the record is committed before the data leaves). A change takes its record instead (see
    /// [`NewAudit`]).
    pub async fn audit(
        &self,
        at: i64,
        actor: &str,
        role: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        append_audit(
            &mut tx,
            &NewAudit::new(at, actor, role, action, target, detail),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Audit records after `after_no`, oldest first.
    pub async fn list_audit(&self, after_no: i64, limit: i64) -> StoreResult<Vec<AuditRow>> {
        let rows = sqlx::query(
            "select audit_no, at, actor, role, action, target, detail, prev_hash, hash from audit \
             where audit_no > $1 order by audit_no limit $2",
        )
        .bind(after_no)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    /// Walks the whole chain from its start and reports the first record that breaks it.
    pub async fn verify_audit(&self) -> StoreResult<AuditVerdict> {
        let head = sqlx::query("select chain_start, audit_no, hash from audit_head where id = 1")
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                table: "audit_head",
                problem: "the head row of the audit chain is missing".into(),
            })?;
        let chain_start: i64 = head.try_get("chain_start")?;
        let head_no: i64 = head.try_get("audit_no")?;
        let head_hash: String = head.try_get("hash")?;
        let before: i64 = sqlx::query("select count(*) as n from audit where audit_no <= $1")
            .bind(chain_start)
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let mut verdict = AuditVerdict {
            chained: 0,
            before_chain: u64::try_from(before).unwrap_or(0),
            head_no,
            head_hash,
            broken: None,
        };
        let mut walk = ChainWalk::new(chain_start);
        loop {
            let page = self.list_audit(walk.last_no, VERIFY_PAGE).await?;
            for r in &page {
                if let Err(b) = walk.step(r, head_no) {
                    verdict.broken = Some(b);
                    return Ok(verdict);
                }
                verdict.chained += 1;
            }
            if (page.len() as i64) < VERIFY_PAGE {
                break;
            }
        }
        verdict.broken = walk.finish(head_no, &verdict.head_hash).err();
        Ok(verdict)
    }
}

/// The walk along the chain, one record at a time (apart from the store so that it is unit-tested).
struct ChainWalk {
    last_no: i64,
    prev_hash: String,
}

impl ChainWalk {
    fn new(chain_start: i64) -> Self {
        Self {
            last_no: chain_start,
            prev_hash: GENESIS_HASH.to_owned(),
        }
    }

    fn step(&mut self, r: &AuditRow, head_no: i64) -> Result<(), AuditBreak> {
        let expected = self.last_no + 1;
        if r.audit_no > head_no {
            return Err(AuditBreak::NotHead {
                audit_no: r.audit_no,
                head: head_no,
            });
        }
        if r.audit_no != expected {
            return Err(AuditBreak::Missing {
                audit_no: expected,
                before: self.last_no,
                found: r.audit_no,
            });
        }
        let (Some(prev), Some(hash)) = (&r.prev_hash, &r.hash) else {
            return Err(AuditBreak::Unhashed {
                audit_no: r.audit_no,
            });
        };
        if record_hash(r, prev) != *hash {
            return Err(AuditBreak::Changed {
                audit_no: r.audit_no,
            });
        }
        if *prev != self.prev_hash {
            return Err(AuditBreak::Unlinked {
                audit_no: r.audit_no,
                before: self.last_no,
            });
        }
        self.last_no = r.audit_no;
        self.prev_hash.clone_from(hash);
        Ok(())
    }

    fn finish(&self, head_no: i64, head_hash: &str) -> Result<(), AuditBreak> {
        if self.last_no < head_no {
            return Err(AuditBreak::Truncated {
                last: self.last_no,
                head: head_no,
            });
        }
        if self.prev_hash != head_hash {
            return Err(AuditBreak::NotHead {
                audit_no: self.last_no,
                head: head_no,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(no: i64, detail: &str) -> AuditRow {
        AuditRow {
            audit_no: no,
            at: 1_764_000_000_000 + no,
            actor: "admin".into(),
            role: "admin".into(),
            action: "blacklist-add".into(),
            target: format!("bl_{no}"),
            detail: detail.into(),
            prev_hash: None,
            hash: None,
        }
    }

    fn chain(n: i64) -> Vec<AuditRow> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|no| {
                let mut r = record(no, "{}");
                let h = record_hash(&r, &prev);
                r.prev_hash = Some(std::mem::replace(&mut prev, h.clone()));
                r.hash = Some(h);
                r
            })
            .collect()
    }

    fn walk(rows: &[AuditRow], head_no: i64, head_hash: &str) -> Result<(), AuditBreak> {
        let mut w = ChainWalk::new(0);
        for r in rows {
            w.step(r, head_no)?;
        }
        w.finish(head_no, head_hash)
    }

    /// The encoding is frozen: a verifier written elsewhere from the module doc (this value was
    /// computed with Python's hashlib and struct) gets the same hash.
    #[test]
    fn encoding_is_stable() {
        assert_eq!(
            record_hash(&record(1, "{}"), GENESIS_HASH),
            "6ea90ab85c414cb71cc7af053dc80ef6ce2fb0ba9c38bc4c2c4fe4b266859f08"
        );
        let mut manual = Vec::new();
        manual.extend_from_slice(b"gateway-audit-v1");
        manual.extend_from_slice(&1i64.to_be_bytes());
        manual.extend_from_slice(&1_764_000_000_001i64.to_be_bytes());
        for t in [
            "admin",
            "admin",
            "blacklist-add",
            "bl_1",
            "{}",
            GENESIS_HASH,
        ] {
            manual.extend_from_slice(&(t.len() as u64).to_be_bytes());
            manual.extend_from_slice(t.as_bytes());
        }
        assert_eq!(
            record_hash(&record(1, "{}"), GENESIS_HASH),
            hex::encode(Sha256::digest(&manual))
        );
    }

    /// Moving text from one field to the next changes the hash (the lengths are part of it).
    #[test]
    fn field_boundaries_count() {
        let a = record(1, "{}");
        let mut b = a.clone();
        b.actor = "admi".into();
        b.role = "nadmin".into();
        assert_ne!(record_hash(&a, GENESIS_HASH), record_hash(&b, GENESIS_HASH));
    }

    #[test]
    fn intact_chain_walks() {
        let rows = chain(5);
        let head = rows[4].hash.clone().expect("hash");
        assert_eq!(walk(&rows, 5, &head), Ok(()));
        assert_eq!(walk(&[], 0, GENESIS_HASH), Ok(()));
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let rows = chain(5);
        let head = rows[4].hash.clone().expect("hash");

        let mut changed = rows.clone();
        changed[2].detail = "{\"x\":1}".into();
        assert_eq!(
            walk(&changed, 5, &head),
            Err(AuditBreak::Changed { audit_no: 3 })
        );

        // Changed and re-hashed: the next record no longer follows it.
        let mut rehashed = rows.clone();
        rehashed[2].detail = "{\"x\":1}".into();
        let prev = rehashed[2].prev_hash.clone().expect("prev");
        rehashed[2].hash = Some(record_hash(&rehashed[2], &prev));
        assert_eq!(
            walk(&rehashed, 5, &head),
            Err(AuditBreak::Unlinked {
                audit_no: 4,
                before: 3
            })
        );

        let mut removed = rows.clone();
        removed.remove(1);
        let err = walk(&removed, 5, &head).expect_err("gap");
        assert_eq!(
            err,
            AuditBreak::Missing {
                audit_no: 2,
                before: 1,
                found: 3
            }
        );
        assert_eq!(err.audit_no(), 2);

        let err = walk(&rows[..4], 5, &head).expect_err("truncated");
        assert_eq!(err, AuditBreak::Truncated { last: 4, head: 5 });
        assert_eq!(err.audit_no(), 5);

        let mut unhashed = rows.clone();
        unhashed[0].hash = None;
        assert_eq!(
            walk(&unhashed, 5, &head),
            Err(AuditBreak::Unhashed { audit_no: 1 })
        );

        assert_eq!(
            walk(&rows, 4, rows[3].hash.as_deref().expect("hash")),
            Err(AuditBreak::NotHead {
                audit_no: 5,
                head: 4
            })
        );
        assert_eq!(
            walk(&rows, 5, GENESIS_HASH),
            Err(AuditBreak::NotHead {
                audit_no: 5,
                head: 5
            })
        );
    }
}
