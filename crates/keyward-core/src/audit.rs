//! The audit trail: an append-only, hash-chained log of every unlock attempt, issuance and change.
//!
//! Each row's hash covers the previous row's hash and all of its own fields, so editing, deleting
//! or reordering a row breaks the chain at that point and `verify` names it. Callers write the
//! record before acting on success paths and refuse the operation when the write fails.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::catalog::{AuditRow, Catalog, CatalogError};

/// The hash standing before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who asked: the peer of the agent's socket, or the local user for in-process actions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Peer uid.
    pub uid: Option<u32>,
    /// Peer pid (for display; never used to authorize on its own).
    pub pid: Option<i32>,
    /// Executable of the peer and its ancestors, nearest first (`keyward`, `aws`, `bash`, …).
    pub chain: Vec<ProcessInfo>,
}

/// One process in a client's parent chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: i32,
    /// Executable path, if readable.
    pub exe: Option<String>,
    /// For an interpreter (python, node, a shell…), the script it runs: the executable alone
    /// would name every Python tool the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

/// One thing to record.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// What happened.
    pub action: &'static str,
    /// Entry or profile name concerned.
    pub target: Option<String>,
    /// `ok`, `failed`, `denied`, …
    pub outcome: &'static str,
    /// Non-secret details.
    pub detail: serde_json::Value,
}

/// Errors from the audit log.
#[derive(Debug, Error)]
pub enum AuditError {
    /// The record could not be written; the caller must refuse the operation.
    #[error("the audit record could not be written, so the operation was refused: {0}")]
    Write(CatalogError),
    /// The chain is broken.
    #[error("audit log verification failed at row {seq}: {reason}")]
    Broken {
        /// First bad row.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
    /// Reading failed.
    #[error(transparent)]
    Read(CatalogError),
}

/// Hash of a row over the previous hash and every field but its own hash.
fn row_hash(r: &AuditRow) -> String {
    // A JSON array gives an unambiguous encoding of the fields (no delimiter games).
    let canonical = serde_json::json!([
        r.prev_hash,
        r.seq,
        r.ts,
        r.action,
        r.target,
        r.outcome,
        r.actor,
        r.detail
    ]);
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    data_encoding::HEXLOWER.encode(&digest)
}

/// Appends `events` (all or none) and returns the new rows.
pub fn append(
    catalog: &mut Catalog,
    ts: &str,
    events: &[(Actor, AuditEvent)],
) -> Result<Vec<AuditRow>, AuditError> {
    let (mut seq, mut prev) = catalog
        .audit_head()
        .map_err(AuditError::Write)?
        .unwrap_or((0, GENESIS.to_owned()));
    let mut rows = Vec::with_capacity(events.len());
    for (actor, ev) in events {
        seq += 1;
        let actor = serde_json::to_string(actor).unwrap_or_else(|_| "{}".to_owned());
        let detail = ev.detail.to_string();
        let mut row = AuditRow {
            seq,
            ts: ts.to_owned(),
            action: ev.action.to_owned(),
            target: ev.target.clone(),
            outcome: ev.outcome.to_owned(),
            actor,
            detail,
            prev_hash: prev.clone(),
            hash: String::new(),
        };
        let hash = row_hash(&row);
        row.hash = hash.clone();
        rows.push(row);
        prev = hash;
    }
    catalog.append_audit(&rows).map_err(AuditError::Write)?;
    Ok(rows)
}

/// Checks the whole chain; returns the number of rows verified.
pub fn verify(catalog: &Catalog) -> Result<u64, AuditError> {
    let rows = catalog.audit_rows(None).map_err(AuditError::Read)?;
    let mut prev = GENESIS.to_owned();
    for (expected_seq, r) in (1..).zip(rows.iter()) {
        if r.seq != expected_seq {
            return Err(AuditError::Broken {
                seq: expected_seq,
                reason: format!("row {expected_seq} is missing (next row is {})", r.seq),
            });
        }
        if r.prev_hash != prev {
            return Err(AuditError::Broken {
                seq: r.seq,
                reason: "it does not follow the previous row (a row was removed or replaced)"
                    .to_owned(),
            });
        }
        if row_hash(r) != r.hash {
            return Err(AuditError::Broken {
                seq: r.seq,
                reason: "its contents were changed after it was written".to_owned(),
            });
        }
        prev = r.hash.clone();
    }
    Ok(rows.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: &'static str) -> (Actor, AuditEvent) {
        (
            Actor::default(),
            AuditEvent {
                action,
                target: Some("prod".into()),
                outcome: "ok",
                detail: serde_json::json!({"n": 1}),
            },
        )
    }

    fn catalog_with_rows() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cat = Catalog::open(&dir.path().join("c.sqlite")).expect("open");
        append(
            &mut cat,
            "2026-01-01T00:00:00Z",
            &[ev("unlock"), ev("issue")],
        )
        .expect("a");
        append(&mut cat, "2026-01-01T00:00:01Z", &[ev("lock")]).expect("b");
        (dir, cat)
    }

    #[test]
    fn intact_chain_verifies() {
        let (_d, cat) = catalog_with_rows();
        assert_eq!(verify(&cat).expect("verify"), 3);
    }

    #[test]
    fn edited_row_is_detected() {
        let (_d, cat) = catalog_with_rows();
        let c = cat.connection();
        c.execute_batch(
            "DROP TRIGGER audit_no_update; UPDATE audit SET outcome = 'denied' WHERE seq = 2;",
        )
        .expect("tamper");
        let err = verify(&cat).expect_err("tampering must be found");
        assert!(matches!(err, AuditError::Broken { seq: 2, .. }), "{err}");
    }

    #[test]
    fn deleted_row_is_detected() {
        let (_d, cat) = catalog_with_rows();
        cat.connection()
            .execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2;")
            .expect("tamper");
        let err = verify(&cat).expect_err("deletion must be found");
        assert!(matches!(err, AuditError::Broken { seq: 2, .. }), "{err}");
    }

    #[test]
    fn deleted_last_row_is_not_detectable_by_chain_alone_but_middle_is() {
        // Truncating the tail leaves a valid prefix (a documented limitation, see ADMIN.md);
        // `verify` reports the row count so it can be compared with an exported copy.
        let (_d, cat) = catalog_with_rows();
        cat.connection()
            .execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 3;")
            .expect("tamper");
        assert_eq!(verify(&cat).expect("prefix verifies"), 2);
    }
}
