//! The audit trail: an append-only, keyed hash chain of every unlock attempt, issuance and change.
//!
//! Each row's tag is an HMAC over the previous row's tag and all of its own fields, under a key
//! the catalog does not hold (derived from the device secret in the OS keychain). So whoever can
//! edit the catalog cannot recompute the chain after editing, deleting or inserting a row, and
//! `verify` names the first bad row. After every append the chain's head (sequence number and
//! tag) is written to the keychain as the [`Anchor`]: a log cut short at the end no longer
//! verifies either. Rows written before a vault existed (no device secret yet) are chained with
//! plain SHA-256; the anchor says from which row on the chain is keyed.
//!
//! Callers record an operation's outcome after acting, and refuse to go on when the write fails.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::catalog::{AuditRow, Catalog, CatalogError};
use crate::integrity::MacKey;
use crate::keystore::KeystoreError;

/// The hash standing before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who asked: the peer of the agent's socket, or the local user for in-process actions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Actor {
    /// Peer uid.
    pub uid: Option<u32>,
    /// Peer pid (for display; never used to authorize on its own).
    pub pid: Option<i32>,
    /// Executable of the peer and its ancestors, nearest first (`keyward`, `aws`, `bash`, …).
    pub chain: Vec<ProcessInfo>,
}

/// One process in a client's parent chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: i32,
    /// Executable path, if readable.
    pub exe: Option<String>,
    /// For an interpreter (python, node, a shell…), the script it runs: the executable alone
    /// would name every Python tool the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Why the executable (and script) do not say which code runs, when they do not: an
    /// interpreter given code on its command line or stdin, or an environment that injects code
    /// (`LD_PRELOAD`, `PYTHONPATH`, …). Such a process gets no standing grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unvouched: Option<String>,
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
    /// The chain's head could not be written to (or read from) the keychain.
    #[error("the audit trail's anchor in the keychain could not be written, so the operation was refused: {0}")]
    Anchor(KeystoreError),
    /// The vault exists but the keychain holds no anchor for its trail.
    #[error("the audit trail cannot be verified: its anchor is missing from the keychain (it was removed, or the catalog belongs to another keychain)")]
    AnchorMissing,
}

/// The head of the keyed chain as last written, kept outside the catalog (in the keystore), so
/// that rows removed from the end are noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// First row of the keyed chain; rows before it predate the vault.
    pub keyed_from: i64,
    /// Sequence number of the last row written.
    pub seq: i64,
    /// Its tag.
    pub hash: String,
}

/// Tag of a row over the previous tag and every field but its own: HMAC when keyed, else
/// SHA-256 (rows from before the vault existed).
fn row_hash(r: &AuditRow, key: Option<&MacKey>) -> String {
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
    let text = canonical.to_string();
    match key {
        Some(k) => {
            data_encoding::HEXLOWER.encode(&k.tag(&[b"keyward/v1/audit-row", text.as_bytes()]))
        }
        None => data_encoding::HEXLOWER.encode(&Sha256::digest(text.as_bytes())),
    }
}

/// Appends `events` (all or none), keyed with `key` when the vault has one, and returns the new
/// rows; `uses` (entry id, count) are counted on their entries in the same transaction.
pub(crate) fn append(
    catalog: &mut Catalog,
    ts: &str,
    events: &[(Actor, AuditEvent)],
    key: Option<&MacKey>,
    uses: &[(String, u64)],
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
        let hash = row_hash(&row, key);
        row.hash = hash.clone();
        rows.push(row);
        prev = hash;
    }
    catalog
        .append_audit_touching(&rows, uses, ts)
        .map_err(AuditError::Write)?;
    Ok(rows)
}

/// Checks the whole chain against `key` and the keystore's `anchor`; returns the number of rows
/// verified. Without a key (no vault yet) only the unkeyed chain is checked.
pub(crate) fn verify(
    catalog: &Catalog,
    key: Option<&MacKey>,
    anchor: Option<&Anchor>,
) -> Result<u64, AuditError> {
    let rows = catalog.audit_rows(None).map_err(AuditError::Read)?;
    let keyed_from = match (key, anchor) {
        (Some(_), Some(a)) => a.keyed_from,
        (Some(_), None) => return Err(AuditError::AnchorMissing),
        (None, _) => i64::MAX,
    };
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
        let k = (r.seq >= keyed_from).then_some(key).flatten();
        if row_hash(r, k) != r.hash {
            return Err(AuditError::Broken {
                seq: r.seq,
                reason: "its contents or its place in the chain were changed after it was written"
                    .to_owned(),
            });
        }
        prev = r.hash.clone();
    }
    if let Some(a) = anchor.filter(|_| key.is_some()) {
        let last = rows.last().map_or(0, |r| r.seq);
        if last < a.seq {
            return Err(AuditError::Broken {
                seq: last + 1,
                reason: format!(
                    "the log was cut short: rows {} to {} are missing (the keychain's anchor says the log reached row {})",
                    last + 1,
                    a.seq,
                    a.seq
                ),
            });
        }
        let anchored = rows.iter().find(|r| r.seq == a.seq);
        if anchored.is_none_or(|r| r.hash != a.hash) {
            return Err(AuditError::Broken {
                seq: a.seq,
                reason: "it is not the row the keychain's anchor names (rows were replaced)"
                    .to_owned(),
            });
        }
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

    fn key() -> MacKey {
        MacKey::derive(&[1; 32], "v", crate::integrity::AUDIT_INFO)
    }

    fn anchor(cat: &Catalog) -> Anchor {
        let (seq, hash) = cat.audit_head().expect("head").expect("rows");
        Anchor {
            keyed_from: 1,
            seq,
            hash,
        }
    }

    fn check(cat: &Catalog, a: &Anchor) -> Result<u64, AuditError> {
        verify(cat, Some(&key()), Some(a))
    }

    fn catalog_with_rows() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cat = Catalog::open(&dir.path().join("c.sqlite")).expect("open");
        append(
            &mut cat,
            "2026-01-01T00:00:00Z",
            &[ev("unlock"), ev("issue")],
            Some(&key()),
            &[],
        )
        .expect("a");
        append(
            &mut cat,
            "2026-01-01T00:00:01Z",
            &[ev("lock")],
            Some(&key()),
            &[],
        )
        .expect("b");
        (dir, cat)
    }

    #[test]
    fn intact_chain_verifies_only_under_its_key() {
        let (_d, cat) = catalog_with_rows();
        let a = anchor(&cat);
        assert_eq!(check(&cat, &a).expect("verify"), 3);
        let other = MacKey::derive(&[2; 32], "v", crate::integrity::AUDIT_INFO);
        assert!(verify(&cat, Some(&other), Some(&a)).is_err());
        assert!(matches!(
            verify(&cat, Some(&key()), None),
            Err(AuditError::AnchorMissing)
        ));
    }

    #[test]
    fn edited_row_is_detected() {
        let (_d, cat) = catalog_with_rows();
        let a = anchor(&cat);
        let c = cat.connection();
        c.execute_batch(
            "DROP TRIGGER audit_no_update; UPDATE audit SET outcome = 'denied' WHERE seq = 2;",
        )
        .expect("tamper");
        let err = check(&cat, &a).expect_err("tampering must be found");
        assert!(matches!(err, AuditError::Broken { seq: 2, .. }), "{err}");
    }

    #[test]
    fn deleted_row_is_detected() {
        let (_d, cat) = catalog_with_rows();
        let a = anchor(&cat);
        cat.connection()
            .execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2;")
            .expect("tamper");
        let err = check(&cat, &a).expect_err("deletion must be found");
        assert!(matches!(err, AuditError::Broken { seq: 2, .. }), "{err}");
    }

    #[test]
    fn deleted_last_row_is_detected_by_the_anchor() {
        let (_d, cat) = catalog_with_rows();
        let a = anchor(&cat);
        cat.connection()
            .execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 3;")
            .expect("tamper");
        let err = check(&cat, &a).expect_err("truncation must be found");
        assert!(matches!(err, AuditError::Broken { seq: 3, .. }), "{err}");
    }

    #[test]
    fn rows_before_the_keyed_chain_are_checked_unkeyed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cat = Catalog::open(&dir.path().join("c.sqlite")).expect("open");
        append(&mut cat, "t", &[ev("status")], None, &[]).expect("pre-vault");
        append(&mut cat, "t", &[ev("init"), ev("add")], Some(&key()), &[]).expect("keyed");
        let (seq, hash) = cat.audit_head().expect("head").expect("rows");
        let a = Anchor {
            keyed_from: 2,
            seq,
            hash,
        };
        assert_eq!(check(&cat, &a).expect("verify"), 3);
        // Claiming the keyed rows were unkeyed does not verify.
        let all_unkeyed = Anchor {
            keyed_from: 4,
            ..a.clone()
        };
        assert!(check(&cat, &all_unkeyed).is_err());
    }
}
