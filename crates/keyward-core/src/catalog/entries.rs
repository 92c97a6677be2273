//! Entry rows: each key's metadata and state (never its secret).

use super::*;
use crate::entry::ProviderUse;
use std::collections::HashMap;

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

impl Catalog {
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

    /// Sets an entry's write state.
    pub fn set_entry_state(&self, id: &str, state: EntryState) -> Result<(), CatalogError> {
        self.conn.execute(
            "UPDATE entries SET state = ?1 WHERE id = ?2",
            params![state.as_str(), id],
        )?;
        Ok(())
    }

    /// The last reminder shown for each key: entry id → (its state then, when, RFC 3339).
    pub fn reminders(&self) -> Result<HashMap<String, (String, String)>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT entry_id, state, at FROM reminders")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records that entry `id` was reminded of `state` at `at`.
    pub fn set_reminder(&self, id: &str, state: &str, at: &str) -> Result<(), CatalogError> {
        self.conn.execute(
            "INSERT INTO reminders (entry_id, state, at) VALUES (?1, ?2, ?3)
             ON CONFLICT (entry_id) DO UPDATE SET state = excluded.state, at = excluded.at",
            params![id, state, at],
        )?;
        Ok(())
    }

    /// Forgets entry `id`'s reminder (it is ok again: the next time it is due is news).
    pub fn clear_reminder(&self, id: &str) -> Result<(), CatalogError> {
        self.conn
            .execute("DELETE FROM reminders WHERE entry_id = ?1", params![id])?;
        Ok(())
    }

    /// Every (entry id, `program` or `chain`, value) a key has served.
    pub fn usage_seen(&self) -> Result<Vec<(String, String, String)>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT entry_id, what, value FROM usage_seen")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records what keys served first at `at`, and adds `days` (entry id, day, count) to their
    /// daily counts, in one transaction.
    pub fn record_usage(
        &mut self,
        seen: &[(String, &str, String)],
        days: &[(String, String, u64)],
        at: &str,
    ) -> Result<(), CatalogError> {
        let tx = self.conn.transaction()?;
        {
            let mut add = tx.prepare_cached(
                "INSERT OR IGNORE INTO usage_seen (entry_id, what, value, first_seen)
                 SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM entries WHERE id = ?1)",
            )?;
            for (id, what, value) in seen {
                add.execute(params![id, what, value, at])?;
            }
            let mut count = tx.prepare_cached(
                "INSERT INTO usage_days (entry_id, day, count)
                 SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM entries WHERE id = ?1)
                 ON CONFLICT (entry_id, day) DO UPDATE SET count = count + excluded.count",
            )?;
            for (id, day, n) in days {
                count.execute(params![id, day, i64::try_from(*n).unwrap_or(i64::MAX)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// How many credentials entry `id` issued on `day` (as recorded so far).
    pub fn usage_on(&self, id: &str, day: &str) -> Result<u64, CatalogError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT count FROM usage_days WHERE entry_id = ?1 AND day = ?2")?;
        let n: Option<i64> = stmt.query_row(params![id, day], |r| r.get(0)).optional()?;
        Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    /// Entry `id`'s daily counts before `day` (newest first, at most `n` days with any use).
    pub fn usage_history(&self, id: &str, day: &str, n: u32) -> Result<Vec<u64>, CatalogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT count FROM usage_days WHERE entry_id = ?1 AND day < ?2 ORDER BY day DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![id, day, n], |r| r.get::<_, i64>(0))?;
        rows.map(|r| Ok(u64::try_from(r?).unwrap_or(0))).collect()
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

    /// Replaces what the provider last said about entry `id`'s use.
    pub fn set_provider_use(&self, id: &str, u: &ProviderUse) -> Result<(), CatalogError> {
        self.conn.execute(
            "INSERT INTO provider_use (entry_id, used, service, region, checked, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (entry_id) DO UPDATE SET used = ?2, service = ?3, region = ?4,
                checked = ?5, error = ?6",
            params![id, u.used, u.service, u.region, u.checked, u.error],
        )?;
        Ok(())
    }

    /// Forgets what the provider said about entry `id` (its key was replaced).
    pub fn clear_provider_use(&self, id: &str) -> Result<(), CatalogError> {
        self.conn
            .execute("DELETE FROM provider_use WHERE entry_id = ?1", params![id])?;
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
                provider_use: match r.get::<_, Option<String>>(17)? {
                    Some(checked) => Some(ProviderUse {
                        used: r.get(14)?,
                        service: r.get(15)?,
                        region: r.get(16)?,
                        checked,
                        error: r.get(18)?,
                    }),
                    None => None,
                },
            },
            r.get(3)?,
        ))
    }

    /// The columns `row_to_entry` reads, from `entries e` joined with `provider_use p`.
    const ENTRY_COLUMNS: &'static str =
        "e.id, e.name, e.kind, e.state, e.owner, e.purpose, e.tags, e.created, e.rotated,
        e.rotation_interval_days, e.expires, e.last_used, e.use_count, e.config,
        p.used, p.service, p.region, p.checked, p.error
        FROM entries e LEFT JOIN provider_use p ON p.entry_id = e.id";

    /// All entries with their write state, ordered by name.
    pub fn entries(&self) -> Result<Vec<(EntryMeta, EntryState)>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {} ORDER BY e.name", Self::ENTRY_COLUMNS))?;
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
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {} WHERE e.name = ?1", Self::ENTRY_COLUMNS))?;
        let row = stmt
            .query_row(params![name], Self::row_to_entry)
            .optional()?;
        row.map(|(raw, state)| Ok((raw.decode()?, EntryState::parse(&state)?)))
            .transpose()
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
    provider_use: Option<ProviderUse>,
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
            provider_use: self.provider_use,
        })
    }
}

/// Counts `uses` (entry id, count) on their entries as last used at `now`, inside `tx`.
pub(super) fn touch(
    tx: &rusqlite::Transaction<'_>,
    uses: &[(String, u64)],
    now: &str,
) -> Result<(), CatalogError> {
    if uses.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "UPDATE entries SET last_used = ?1, use_count = use_count + ?2 WHERE id = ?3",
    )?;
    for (id, n) in uses {
        stmt.execute(params![now, i64::try_from(*n).unwrap_or(i64::MAX), id])?;
    }
    Ok(())
}
