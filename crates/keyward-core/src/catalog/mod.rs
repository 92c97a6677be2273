//! The SQLite catalog: entry metadata, the wrapped vault header, unlock throttling, TOTP replay
//! state and the audit log.
//!
//! Migrations are ordered SQL files applied in one transaction; a database written by a newer
//! Keyward is refused rather than half-understood. No plaintext secret is ever written here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::entry::{EntryConfig, EntryKind, EntryMeta};

mod entries;
mod trail;
pub use trail::AuditFilter;
mod vault_rows;

/// The ordered migrations; index + 1 is the schema version each one produces.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_settings.sql"),
    include_str!("../../migrations/0003_integrity.sql"),
    include_str!("../../migrations/0004_reminders.sql"),
    include_str!("../../migrations/0005_audit_filters.sql"),
    include_str!("../../migrations/0006_usage.sql"),
    include_str!("../../migrations/0007_provider_use.sql"),
    include_str!("../../migrations/0008_audit_programs.sql"),
];

/// Errors reading or writing the catalog.
#[derive(Debug, Error)]
pub enum CatalogError {
    /// The file exists but is not a usable SQLite database.
    #[error("the catalog {path} is not a readable SQLite database (corrupt or not Keyward's): move it aside or restore it from a backup")]
    Corrupt {
        /// Path of the catalog file.
        path: PathBuf,
    },
    /// The database schema is newer than this build understands.
    #[error("the catalog {path} was written by a newer Keyward (schema {found}, this build knows {known}): upgrade Keyward")]
    TooNew {
        /// Path of the catalog file.
        path: PathBuf,
        /// Schema version found in the file.
        found: i64,
        /// Newest schema version this build knows.
        known: i64,
    },
    /// The directory or file could not be created or opened.
    #[error("cannot open the catalog {path}: {reason}")]
    Open {
        /// Path of the catalog file.
        path: PathBuf,
        /// What the OS or SQLite said.
        reason: String,
    },
    /// An entry with this name already exists.
    #[error("a key named '{0}' already exists")]
    Duplicate(String),
    /// A stored row could not be decoded.
    #[error("the catalog holds a malformed {what}: {reason}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// Why it could not be decoded.
        reason: String,
    },
    /// Any other SQLite failure.
    #[error("catalog error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// The keystore a vault was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeystoreKind {
    /// The OS keychain (Secret Service, macOS Keychain, Windows Credential Manager).
    Keychain,
    /// Explicit fallback: the same age ciphertext kept in the catalog.
    File,
}

impl KeystoreKind {
    fn as_str(self) -> &'static str {
        match self {
            KeystoreKind::Keychain => "keychain",
            KeystoreKind::File => "file",
        }
    }
}

/// The vault row: identity of the vault and its wrapped header.
#[derive(Debug, Clone)]
pub struct VaultRow {
    /// Random id naming this vault's keychain items.
    pub vault_id: String,
    /// Where secrets are stored.
    pub keystore: KeystoreKind,
    /// The JSON vault header (wrapped identity slots, KDF parameters).
    pub header: String,
    /// The header's MAC (hex); `None` for a vault made before headers were authenticated.
    pub header_mac: Option<String>,
}

/// A rotation that was started but whose catalog update may not have happened.
#[derive(Debug, Clone)]
pub struct PendingRotation {
    /// The entry rotated.
    pub entry_id: String,
    /// SHA-256 (hex) of the new ciphertext given to the keystore.
    pub ciphertext_sha256: String,
    /// The entry's config JSON once rotated (the new key's hint).
    pub config: String,
    /// The rotation time to record.
    pub rotated: String,
}

/// Write state of an entry; see the migration's comment on the write order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Row written, keychain item not yet confirmed.
    Pending,
    /// Both stores hold the entry.
    Active,
    /// Removal started.
    Deleting,
}

impl EntryState {
    fn as_str(self) -> &'static str {
        match self {
            EntryState::Pending => "pending",
            EntryState::Active => "active",
            EntryState::Deleting => "deleting",
        }
    }
    fn parse(s: &str) -> Result<Self, CatalogError> {
        match s {
            "pending" => Ok(EntryState::Pending),
            "active" => Ok(EntryState::Active),
            "deleting" => Ok(EntryState::Deleting),
            other => Err(CatalogError::Malformed {
                what: "entry state",
                reason: format!("unknown state '{other}'"),
            }),
        }
    }
}

/// One row of the audit log as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// RFC 3339 UTC time.
    pub ts: String,
    /// What happened (`unlock`, `issue`, `add`, …).
    pub action: String,
    /// The entry or profile concerned, if any.
    pub target: Option<String>,
    /// `ok`, `denied`, `failed`, …
    pub outcome: String,
    /// JSON description of the client (uid, pid, executable chain).
    pub actor: String,
    /// JSON with non-secret details.
    pub detail: String,
    /// Hash of the previous row (hex), all zeros for the first.
    pub prev_hash: String,
    /// Hash of this row (hex).
    pub hash: String,
}

/// The catalog database.
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("path", &self.path).finish()
    }
}

fn open_err(path: &Path, e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

impl Catalog {
    /// Opens (creating if needed) the catalog at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(|e| open_err(dir, e))?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_err(path, e))?;
        let corrupt = |e: rusqlite::Error| {
            if is_corruption(&e) {
                CatalogError::Corrupt {
                    path: path.to_path_buf(),
                }
            } else {
                CatalogError::Sql(e)
            }
        };
        conn.busy_timeout(Duration::from_secs(5)).map_err(corrupt)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(corrupt)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(corrupt)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(corrupt)?;
        // Catalog files hold metadata other users need not see.
        set_private_mode(path).map_err(|e| open_err(path, e))?;
        let mut catalog = Catalog {
            conn,
            path: path.to_path_buf(),
        };
        catalog.migrate().map_err(|e| match e {
            CatalogError::Sql(inner) if is_corruption(&inner) => CatalogError::Corrupt {
                path: path.to_path_buf(),
            },
            other => other,
        })?;
        Ok(catalog)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<(), CatalogError> {
        let known = MIGRATIONS.len() as i64;
        let found: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > known {
            return Err(CatalogError::TooNew {
                path: self.path.clone(),
                found,
                known,
            });
        }
        if found == known {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Turns off checkpointing on commit, for a long-lived writer whose owner runs
    /// [`Catalog::checkpoint`] from another connection instead (keeps fsyncs off the hot path).
    pub fn disable_autocheckpoint(&self) -> Result<(), CatalogError> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(())
    }

    /// Copies committed WAL pages into the database without blocking writers (PASSIVE).
    pub fn checkpoint(&self) -> Result<(), CatalogError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Direct access for tests that simulate tampering or crashes.
    #[doc(hidden)]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// Creates `dir` (and parents) with mode 0700 when missing.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn set_private_mode(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_fresh_db_and_refuses_newer_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k/catalog.sqlite");
        let cat = Catalog::open(&path).expect("open");
        assert_eq!(cat.throttle().expect("throttle"), (0, 0));
        cat.connection()
            .pragma_update(None, "user_version", 99)
            .expect("bump");
        drop(cat);
        let err = Catalog::open(&path).expect_err("newer schema must be refused");
        assert!(err.to_string().contains("newer Keyward"), "{err}");
    }

    #[test]
    fn corrupt_file_is_reported_as_such() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("catalog.sqlite");
        std::fs::write(&path, vec![0x42u8; 8192]).expect("write");
        let err = Catalog::open(&path).expect_err("corrupt");
        assert!(matches!(err, CatalogError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("not a readable SQLite database"));
    }

    #[test]
    fn audit_rows_cannot_be_updated_or_deleted_through_sql() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cat = Catalog::open(&dir.path().join("c.sqlite")).expect("open");
        let row = AuditRow {
            seq: 1,
            ts: "t".into(),
            action: "a".into(),
            target: None,
            outcome: "ok".into(),
            actor: "{}".into(),
            detail: "{}".into(),
            prev_hash: "0".into(),
            hash: "h".into(),
        };
        cat.append_audit(std::slice::from_ref(&row))
            .expect("append");
        assert!(cat
            .connection()
            .execute("UPDATE audit SET outcome = 'x'", [])
            .is_err());
        assert!(cat.connection().execute("DELETE FROM audit", []).is_err());
        assert_eq!(cat.audit_rows(None).expect("rows"), vec![row]);
    }

    #[test]
    fn the_audit_query_filters_by_key_event_family_client_and_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cat = Catalog::open(&dir.path().join("c.sqlite")).expect("open");
        let row = |seq: i64, ts: &str, action: &str, target: Option<&str>, exe: &str| AuditRow {
            seq,
            ts: ts.into(),
            action: action.into(),
            target: target.map(Into::into),
            outcome: "ok".into(),
            actor: format!(r#"{{"uid":1000,"chain":[{{"pid":7,"exe":"{exe}"}}]}}"#),
            detail: "{}".into(),
            prev_hash: "0".into(),
            hash: format!("h{seq}"),
        };
        let rows = [
            row(
                1,
                "2026-11-30T10:00:00Z",
                "issue",
                Some("prod"),
                "/usr/bin/aws",
            ),
            row(
                2,
                "2026-12-01T10:00:00Z",
                "grant.allow",
                Some("prod"),
                "/usr/bin/keyward",
            ),
            row(
                3,
                "2026-12-01T11:00:00Z",
                "issue",
                Some("ci"),
                "/usr/bin/terraform",
            ),
            row(
                4,
                "2026-12-02T09:00:00Z",
                "issue",
                Some("prod"),
                "/usr/bin/terraform",
            ),
            row(
                5,
                "2026-12-02T10:00:00Z",
                "grantsx",
                None,
                "/usr/bin/keyward",
            ),
        ];
        cat.append_audit(&rows).expect("append");
        let seqs = |f: AuditFilter| -> Vec<i64> {
            let f = AuditFilter { limit: 100, ..f };
            cat.audit_query(&f)
                .expect("query")
                .iter()
                .map(|r| r.seq)
                .collect()
        };
        assert_eq!(seqs(AuditFilter::default()), [1, 2, 3, 4, 5]);
        let prod = || Some("prod".to_owned());
        assert_eq!(
            seqs(AuditFilter {
                target: prod(),
                ..Default::default()
            }),
            [1, 2, 4]
        );
        // A family, and not a longer word that starts the same.
        let grant = Some("grant".to_owned());
        assert_eq!(
            seqs(AuditFilter {
                action: grant,
                ..Default::default()
            }),
            [2]
        );
        let tf = Some("terraform".to_owned());
        assert_eq!(
            seqs(AuditFilter {
                client: tf,
                ..Default::default()
            }),
            [3, 4]
        );
        let since = Some("2026-12-01T00:00:00Z".to_owned());
        let until = Some("2026-12-02T09:00:00Z".to_owned());
        assert_eq!(
            seqs(AuditFilter {
                since,
                until,
                ..Default::default()
            }),
            [2, 3]
        );
        // The newest n, oldest first; or page by page from the start.
        let f = AuditFilter {
            limit: 2,
            ..Default::default()
        };
        let got: Vec<i64> = cat
            .audit_query(&f)
            .expect("q")
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(got, [4, 5]);
        let page = |after| {
            let f = AuditFilter {
                limit: 2,
                after_seq: Some(after),
                ..Default::default()
            };
            cat.audit_query(&f)
                .expect("q")
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<i64>>()
        };
        assert_eq!(
            (page(0), page(2), page(4), page(5)),
            (vec![1, 2], vec![3, 4], vec![5], vec![])
        );
        // A program never seen: nothing (found among the trail's programs, not by a scan).
        let none = Some("no-such-program".to_owned());
        assert!(seqs(AuditFilter {
            client: none,
            ..Default::default()
        })
        .is_empty());
        // A client with the key filter, and a program matched by part of its path.
        assert_eq!(
            seqs(AuditFilter {
                client: Some("bin/".into()),
                target: prod(),
                ..Default::default()
            }),
            [1, 2, 4]
        );
    }

    fn actor_row(seq: i64, actor: &str) -> AuditRow {
        AuditRow {
            seq,
            ts: "2026-12-02T10:00:00Z".into(),
            action: "issue".into(),
            target: Some("prod".into()),
            outcome: "ok".into(),
            actor: actor.into(),
            detail: "{}".into(),
            prev_hash: "0".into(),
            hash: format!("h{seq}"),
        }
    }

    #[test]
    fn a_client_filter_finds_rare_and_common_programs_and_scripts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cat = Catalog::open(&dir.path().join("c.sqlite")).expect("open");
        // More rows naming `aws` than the rare-program path takes, one naming a script.
        let aws = r#"{"uid":1000,"chain":[{"pid":7,"exe":"/usr/bin/keyward"},{"pid":6,"exe":"/usr/bin/aws"}]}"#;
        let n = trail::RARE_CLIENT_ROWS + 10;
        let mut rows: Vec<AuditRow> = (1..=n).map(|i| actor_row(i, aws)).collect();
        rows.insert(
            5,
            actor_row(
                n + 1,
                r#"{"chain":[{"pid":9,"exe":"/usr/bin/python3.11","script":"/home/me/deploy.py"}]}"#,
            ),
        );
        rows.sort_by_key(|r| r.seq);
        cat.append_audit(&rows).expect("append");
        let q = |client: &str, limit: u32| -> Vec<i64> {
            cat.audit_query(&AuditFilter {
                client: Some(client.into()),
                limit,
                ..Default::default()
            })
            .expect("query")
            .iter()
            .map(|r| r.seq)
            .collect()
        };
        assert_eq!(q("deploy.py", 100), [n + 1], "rare: through its rows");
        assert_eq!(
            q("/usr/bin/aws", 3),
            [n - 2, n - 1, n],
            "common: newest first"
        );
        assert_eq!(q("python3", 100), [n + 1]);
        assert!(q("1000", 100).is_empty(), "a uid is not a program");
    }

    #[test]
    fn the_programs_index_is_rebuilt_from_the_trail_by_its_migration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.sqlite");
        let mut cat = Catalog::open(&path).expect("open");
        let tf = r#"{"chain":[{"pid":7,"exe":"/usr/bin/keyward"},{"pid":6,"exe":"/usr/bin/terraform"}]}"#;
        cat.append_audit(&[actor_row(1, tf), actor_row(2, r#"{"chain":[]}"#)])
            .expect("append");
        // As a catalog of schema 7 had it: no index of programs.
        cat.connection()
            .execute_batch(
                "DROP TABLE audit_programs; DROP TABLE audit_program_rows; PRAGMA user_version = 7;",
            )
            .expect("back to 7");
        drop(cat);
        let cat = Catalog::open(&path).expect("migrate");
        let found = cat
            .audit_query(&AuditFilter {
                client: Some("terraform".into()),
                limit: 10,
                ..Default::default()
            })
            .expect("query");
        assert_eq!(found.iter().map(|r| r.seq).collect::<Vec<_>>(), [1]);
        let n: i64 = cat
            .connection()
            .query_row("SELECT count(*) FROM audit_program_rows", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 2, "keyward and terraform for row 1, nothing for row 2");
    }
}
