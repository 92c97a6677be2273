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

/// The ordered migrations; index + 1 is the schema version each one produces.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_settings.sql"),
    include_str!("../migrations/0003_integrity.sql"),
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

/// An audit row from `SELECT seq, ts, action, target, outcome, actor, detail, prev_hash, hash`.
fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        seq: r.get(0)?,
        ts: r.get(1)?,
        action: r.get(2)?,
        target: r.get(3)?,
        outcome: r.get(4)?,
        actor: r.get(5)?,
        detail: r.get(6)?,
        prev_hash: r.get(7)?,
        hash: r.get(8)?,
    })
}

/// An entry's tags and config as the JSON the catalog stores.
fn entry_json(meta: &EntryMeta) -> Result<(String, String), CatalogError> {
    let tags = serde_json::to_string(&meta.tags).map_err(|e| CatalogError::Malformed {
        what: "tags",
        reason: e.to_string(),
    })?;
    let config = serde_json::to_string(&meta.config).map_err(|e| CatalogError::Malformed {
        what: "entry config",
        reason: e.to_string(),
    })?;
    Ok((tags, config))
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

    /// The vault row, if a vault was created.
    pub fn vault(&self) -> Result<Option<VaultRow>, CatalogError> {
        let row = self
            .conn
            .query_row(
                "SELECT vault_id, keystore, header, header_mac FROM vault WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(vault_id, ks, header, header_mac)| {
            let keystore = match ks.as_str() {
                "keychain" => KeystoreKind::Keychain,
                "file" => KeystoreKind::File,
                _ => {
                    return Err(CatalogError::Malformed {
                        what: "vault row",
                        reason: format!("unknown keystore '{ks}'"),
                    })
                }
            };
            Ok(VaultRow {
                vault_id,
                keystore,
                header,
                header_mac,
            })
        })
        .transpose()
    }

    /// Creates the vault row; fails if one exists.
    pub fn create_vault(&self, row: &VaultRow, now: &str) -> Result<(), CatalogError> {
        self.conn.execute(
            "INSERT INTO vault (id, vault_id, keystore, header, header_mac, created)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            params![
                row.vault_id,
                row.keystore.as_str(),
                row.header,
                row.header_mac,
                now
            ],
        )?;
        Ok(())
    }

    /// Replaces the vault header and its MAC (after enrolling or removing a factor).
    pub fn update_header(&self, header: &str, mac: &str) -> Result<(), CatalogError> {
        self.conn.execute(
            "UPDATE vault SET header = ?1, header_mac = ?2 WHERE id = 1",
            params![header, mac],
        )?;
        Ok(())
    }

    /// Records a rotation about to write its new ciphertext.
    pub fn put_pending_rotation(&self, p: &PendingRotation) -> Result<(), CatalogError> {
        self.conn.execute(
            "INSERT INTO pending_rotations (entry_id, ciphertext_sha256, config, rotated)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(entry_id) DO UPDATE SET ciphertext_sha256 = excluded.ciphertext_sha256,
                config = excluded.config, rotated = excluded.rotated",
            params![p.entry_id, p.ciphertext_sha256, p.config, p.rotated],
        )?;
        Ok(())
    }

    /// Rotations started but not known to be finished.
    pub fn pending_rotations(&self) -> Result<Vec<PendingRotation>, CatalogError> {
        let mut stmt = self.conn.prepare(
            "SELECT entry_id, ciphertext_sha256, config, rotated FROM pending_rotations",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(PendingRotation {
                entry_id: r.get(0)?,
                ciphertext_sha256: r.get(1)?,
                config: r.get(2)?,
                rotated: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets a pending rotation (finished or rolled back).
    pub fn delete_pending_rotation(&self, entry_id: &str) -> Result<(), CatalogError> {
        self.conn.execute(
            "DELETE FROM pending_rotations WHERE entry_id = ?1",
            params![entry_id],
        )?;
        Ok(())
    }

    /// Sets an entry's config JSON and rotation time (finishing an interrupted rotation).
    pub fn set_entry_rotation(
        &self,
        id: &str,
        config: &str,
        rotated: &str,
    ) -> Result<(), CatalogError> {
        self.conn.execute(
            "UPDATE entries SET config = ?1, rotated = ?2 WHERE id = ?3",
            params![config, rotated, id],
        )?;
        Ok(())
    }

    /// Current failed-unlock count and the Unix time before which no attempt is allowed.
    pub fn throttle(&self) -> Result<(u32, i64), CatalogError> {
        Ok(self.conn.query_row(
            "SELECT failures, next_allowed_at FROM unlock_throttle WHERE id = 1",
            [],
            |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?)),
        )?)
    }

    /// Stores the failed-unlock count and next allowed time.
    pub fn set_throttle(&self, failures: u32, next_allowed_at: i64) -> Result<(), CatalogError> {
        self.conn.execute(
            "UPDATE unlock_throttle SET failures = ?1, next_allowed_at = ?2 WHERE id = 1",
            params![failures, next_allowed_at],
        )?;
        Ok(())
    }

    /// Last accepted TOTP time step for a factor.
    pub fn totp_last_step(&self, slot_id: &str) -> Result<Option<u64>, CatalogError> {
        Ok(self
            .conn
            .query_row(
                "SELECT last_step FROM totp_steps WHERE slot_id = ?1",
                params![slot_id],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|v| v as u64))
    }

    /// Records the accepted TOTP time step for a factor.
    pub fn set_totp_last_step(&self, slot_id: &str, step: u64) -> Result<(), CatalogError> {
        self.conn.execute(
            "INSERT INTO totp_steps (slot_id, last_step) VALUES (?1, ?2)
             ON CONFLICT(slot_id) DO UPDATE SET last_step = excluded.last_step",
            params![slot_id, step as i64],
        )?;
        Ok(())
    }

    /// Inserts a new entry row in the given state.
    pub fn insert_entry(&self, meta: &EntryMeta, state: EntryState) -> Result<(), CatalogError> {
        let (tags, config) = entry_json(meta)?;
        let res = self.conn.execute(
            "INSERT INTO entries (id, name, kind, state, owner, purpose, tags, created, rotated,
                rotation_interval_days, expires, last_used, use_count, config)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                meta.id,
                meta.name,
                meta.kind.as_str(),
                state.as_str(),
                meta.owner,
                meta.purpose,
                tags,
                meta.created,
                meta.rotated,
                meta.rotation_interval_days,
                meta.expires,
                meta.last_used,
                meta.use_count,
                config
            ],
        );
        match res {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(CatalogError::Duplicate(meta.name.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Rewrites an entry's editable metadata (owner, purpose, tags, rotation, expiry, rotated,
    /// config); name, kind, id and usage stay.
    pub fn update_entry_meta(&self, meta: &EntryMeta) -> Result<(), CatalogError> {
        let (tags, config) = entry_json(meta)?;
        self.conn.execute(
            "UPDATE entries SET owner = ?1, purpose = ?2, tags = ?3, rotated = ?4,
                rotation_interval_days = ?5, expires = ?6, config = ?7 WHERE id = ?8",
            params![
                meta.owner,
                meta.purpose,
                tags,
                meta.rotated,
                meta.rotation_interval_days,
                meta.expires,
                config,
                meta.id
            ],
        )?;
        Ok(())
    }

    /// A vault setting, if it was ever set.
    pub fn setting(&self, name: &str) -> Result<Option<String>, CatalogError> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM settings WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Stores a vault setting.
    pub fn set_setting(&self, name: &str, value: &str) -> Result<(), CatalogError> {
        self.conn.execute(
            "INSERT INTO settings (name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            params![name, value],
        )?;
        Ok(())
    }

    /// Sets an entry's write state.
    pub fn set_entry_state(&self, id: &str, state: EntryState) -> Result<(), CatalogError> {
        self.conn.execute(
            "UPDATE entries SET state = ?1 WHERE id = ?2",
            params![state.as_str(), id],
        )?;
        Ok(())
    }

    /// Deletes an entry row.
    pub fn delete_entry(&self, id: &str) -> Result<(), CatalogError> {
        self.conn
            .execute("DELETE FROM entries WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// Records one use of an entry.
    pub fn touch_entry(&self, id: &str, now: &str) -> Result<(), CatalogError> {
        self.conn.execute(
            "UPDATE entries SET last_used = ?1, use_count = use_count + 1 WHERE id = ?2",
            params![now, id],
        )?;
        Ok(())
    }

    /// Records `n` uses of each entry in one transaction.
    pub fn touch_entries(&mut self, uses: &[(String, u64)], now: &str) -> Result<(), CatalogError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE entries SET last_used = ?1, use_count = use_count + ?2 WHERE id = ?3",
            )?;
            for (id, n) in uses {
                stmt.execute(params![now, *n as i64, id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn row_to_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<(EntryMetaRaw, String)> {
        Ok((
            EntryMetaRaw {
                id: r.get(0)?,
                name: r.get(1)?,
                kind: r.get(2)?,
                owner: r.get(4)?,
                purpose: r.get(5)?,
                tags: r.get(6)?,
                created: r.get(7)?,
                rotated: r.get(8)?,
                rotation_interval_days: r.get(9)?,
                expires: r.get(10)?,
                last_used: r.get(11)?,
                use_count: r.get(12)?,
                config: r.get(13)?,
            },
            r.get(3)?,
        ))
    }

    const ENTRY_COLUMNS: &'static str =
        "id, name, kind, state, owner, purpose, tags, created, rotated,
        rotation_interval_days, expires, last_used, use_count, config";

    /// All entries with their write state, ordered by name.
    pub fn entries(&self) -> Result<Vec<(EntryMeta, EntryState)>, CatalogError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {} FROM entries ORDER BY name",
            Self::ENTRY_COLUMNS
        ))?;
        let rows = stmt.query_map([], Self::row_to_entry)?;
        let mut out = Vec::new();
        for row in rows {
            let (raw, state) = row?;
            out.push((raw.decode()?, EntryState::parse(&state)?));
        }
        Ok(out)
    }

    /// One entry by name, with its write state.
    pub fn entry_by_name(
        &self,
        name: &str,
    ) -> Result<Option<(EntryMeta, EntryState)>, CatalogError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {} FROM entries WHERE name = ?1",
            Self::ENTRY_COLUMNS
        ))?;
        let row = stmt
            .query_row(params![name], Self::row_to_entry)
            .optional()?;
        row.map(|(raw, state)| Ok((raw.decode()?, EntryState::parse(&state)?)))
            .transpose()
    }

    /// Stores an item in the explicit file keystore.
    pub fn put_file_secret(&self, item: &str, value: &[u8]) -> Result<(), CatalogError> {
        self.conn.execute(
            "INSERT INTO file_secrets (item, value) VALUES (?1, ?2)
             ON CONFLICT(item) DO UPDATE SET value = excluded.value",
            params![item, value],
        )?;
        Ok(())
    }

    /// Reads an item from the explicit file keystore.
    pub fn file_secret(&self, item: &str) -> Result<Option<Vec<u8>>, CatalogError> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM file_secrets WHERE item = ?1",
                params![item],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Removes an item from the explicit file keystore; true if it existed.
    pub fn delete_file_secret(&self, item: &str) -> Result<bool, CatalogError> {
        Ok(self
            .conn
            .execute("DELETE FROM file_secrets WHERE item = ?1", params![item])?
            > 0)
    }

    /// The hash of audit row `seq`, if it exists.
    pub fn audit_hash_at(&self, seq: i64) -> Result<Option<String>, CatalogError> {
        Ok(self
            .conn
            .query_row("SELECT hash FROM audit WHERE seq = ?1", params![seq], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// The last audit row's sequence number and hash.
    pub fn audit_head(&self) -> Result<Option<(i64, String)>, CatalogError> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Appends audit rows in one transaction (all or none).
    pub fn append_audit(&mut self, rows: &[AuditRow]) -> Result<(), CatalogError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO audit (seq, ts, action, target, outcome, actor, detail, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for r in rows {
                stmt.execute(params![
                    r.seq,
                    r.ts,
                    r.action,
                    r.target,
                    r.outcome,
                    r.actor,
                    r.detail,
                    r.prev_hash,
                    r.hash
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The newest `limit` audit rows about `target` (oldest first), without the reads of the
    /// entry itself (`show`, `history`), which would drown its history.
    pub fn audit_rows_for(&self, target: &str, limit: u32) -> Result<Vec<AuditRow>, CatalogError> {
        let sql = "SELECT seq, ts, action, target, outcome, actor, detail, prev_hash, hash FROM
                   (SELECT * FROM audit WHERE target = ?1 AND action NOT IN ('show', 'history')
                    ORDER BY seq DESC LIMIT ?2) ORDER BY seq";
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map(params![target, i64::from(limit)], audit_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The newest `limit` audit rows (all when `None`), oldest first.
    pub fn audit_rows(&self, limit: Option<u32>) -> Result<Vec<AuditRow>, CatalogError> {
        let sql = "SELECT seq, ts, action, target, outcome, actor, detail, prev_hash, hash FROM
                   (SELECT * FROM audit ORDER BY seq DESC LIMIT ?1) ORDER BY seq";
        let mut stmt = self.conn.prepare(sql)?;
        let lim = limit.map(i64::from).unwrap_or(-1);
        let rows = stmt.query_map(params![lim], audit_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
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

struct EntryMetaRaw {
    id: String,
    name: String,
    kind: String,
    owner: Option<String>,
    purpose: Option<String>,
    tags: String,
    created: String,
    rotated: Option<String>,
    rotation_interval_days: Option<u32>,
    expires: Option<String>,
    last_used: Option<String>,
    use_count: u64,
    config: String,
}

impl EntryMetaRaw {
    fn decode(self) -> Result<EntryMeta, CatalogError> {
        let malformed = |what: &'static str, e: String| CatalogError::Malformed { what, reason: e };
        Ok(EntryMeta {
            kind: EntryKind::parse(&self.kind)
                .ok_or_else(|| malformed("entry kind", self.kind.clone()))?,
            tags: serde_json::from_str(&self.tags).map_err(|e| malformed("tags", e.to_string()))?,
            config: serde_json::from_str::<EntryConfig>(&self.config)
                .map_err(|e| malformed("entry config", e.to_string()))?,
            id: self.id,
            name: self.name,
            owner: self.owner,
            purpose: self.purpose,
            created: self.created,
            rotated: self.rotated,
            rotation_interval_days: self.rotation_interval_days,
            expires: self.expires,
            last_used: self.last_used,
            use_count: self.use_count,
        })
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
}
