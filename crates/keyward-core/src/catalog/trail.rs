//! The audit rows: appended in order, read back newest last; the chain itself is `audit`.

use super::*;

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

/// Up to this many rows naming the matched programs, they are fetched through their index;
/// past it, rows are checked newest first (many matches: the newest come soon).
pub(super) const RARE_CLIENT_ROWS: i64 = 20_000;

/// The executables and scripts in an actor's process chain (its JSON as the trail stores it).
fn chain_programs(actor: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(actor) else {
        return Vec::new();
    };
    let mut out: Vec<String> = v["chain"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| [p["exe"].as_str(), p["script"].as_str()])
        .flatten()
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Which audit rows `keyward audit` wants; every field left out matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The key or profile concerned.
    pub target: Option<String>,
    /// An event (`issue`) or a family of them (`grant` matches `grant.allow`, `grant.revoke`).
    pub action: Option<String>,
    /// Part of the path of a program (executable or script) in the client's process chain.
    pub client: Option<String>,
    /// At or after this time (RFC 3339, UTC).
    pub since: Option<String>,
    /// Before this time (RFC 3339, UTC).
    pub until: Option<String>,
    /// Only rows after this sequence number, and then the *oldest* `limit` of them (a reader
    /// going through the whole trail page by page); otherwise the newest `limit`.
    pub after_seq: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

impl Catalog {
    /// The audit rows `f` selects (the newest `f.limit`, or the oldest after `f.after_seq`),
    /// oldest first. Key, event and time use indexes; the client is looked up among the
    /// programs the trail names (few), so a program never seen costs nothing, a rare one is
    /// found through its rows, and a common one is checked row by row from the newest (the
    /// first matches come soon).
    pub fn audit_query(&self, f: &AuditFilter) -> Result<Vec<AuditRow>, CatalogError> {
        let programs = match &f.client {
            Some(c) => {
                let ids = self.programs_matching(c)?;
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                Some(ids)
            }
            None => None,
        };
        let mut sql = String::from(
            "SELECT seq, ts, action, target, outcome, actor, detail, prev_hash, hash FROM
             (SELECT * FROM audit WHERE 1",
        );
        let mut args: Vec<&dyn rusqlite::ToSql> = Vec::new();
        let family = f.action.as_ref().map(|a| format!("{a}.%"));
        if let Some(t) = &f.target {
            sql.push_str(" AND target = ?");
            args.push(t);
        }
        if let (Some(a), Some(fam)) = (&f.action, &family) {
            sql.push_str(" AND (action = ? OR action LIKE ?)");
            args.push(a);
            args.push(fam);
        }
        if let Some(ids) = &programs {
            // Ids from the catalog itself: integers, written into the statement as such.
            let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            // Counted only as far as the choice needs.
            let rows: i64 = self.conn.query_row(
                &format!(
                    "SELECT count(*) FROM (SELECT 1 FROM audit_program_rows
                     WHERE program IN ({list}) LIMIT {})",
                    RARE_CLIENT_ROWS + 1
                ),
                [],
                |r| r.get(0),
            )?;
            if rows <= RARE_CLIENT_ROWS {
                sql.push_str(&format!(
                    " AND seq IN (SELECT seq FROM audit_program_rows WHERE program IN ({list}))"
                ));
            } else {
                sql.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM audit_program_rows AS r WHERE r.program IN ({list}) AND r.seq = audit.seq)"
                ));
            }
        }
        if let Some(s) = &f.since {
            sql.push_str(" AND ts >= ?");
            args.push(s);
        }
        if let Some(u) = &f.until {
            sql.push_str(" AND ts < ?");
            args.push(u);
        }
        let limit = i64::from(f.limit);
        match &f.after_seq {
            Some(after) => {
                sql.push_str(" AND seq > ? ORDER BY seq LIMIT ?)");
                args.push(after);
            }
            None => sql.push_str(" ORDER BY seq DESC LIMIT ?) ORDER BY seq"),
        }
        args.push(&limit);
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(args.as_slice(), audit_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The ids of the programs the trail names whose path contains `part`.
    fn programs_matching(&self, part: &str) -> Result<Vec<i64>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM audit_programs WHERE instr(path, ?1) > 0")?;
        let ids = stmt.query_map(params![part], |r| r.get(0))?;
        Ok(ids.collect::<Result<Vec<i64>, _>>()?)
    }

    /// The hash of audit row `seq`, if it exists.
    pub fn audit_hash_at(&self, seq: i64) -> Result<Option<String>, CatalogError> {
        // On every issuance's path: prepared once per connection.
        Ok(self
            .conn
            .prepare_cached("SELECT hash FROM audit WHERE seq = ?1")?
            .query_row(params![seq], |r| r.get(0))
            .optional()?)
    }

    /// The last audit row's sequence number and hash.
    pub fn audit_head(&self) -> Result<Option<(i64, String)>, CatalogError> {
        Ok(self
            .conn
            .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Appends audit rows in one transaction (all or none).
    pub fn append_audit(&mut self, rows: &[AuditRow]) -> Result<(), CatalogError> {
        self.append_audit_touching(rows, &[], "")
    }

    /// Appends audit rows and counts `uses` (entry id, count) on their entries as last used at
    /// `now`, in one transaction (all or none): an issuance's row and its use are one commit.
    pub fn append_audit_touching(
        &mut self,
        rows: &[AuditRow],
        uses: &[(String, u64)],
        now: &str,
    ) -> Result<(), CatalogError> {
        let tx = self.conn.transaction()?;
        super::entries::touch(&tx, uses, now)?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO audit (seq, ts, action, target, outcome, actor, detail, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            let mut program = tx.prepare_cached(
                "INSERT INTO audit_programs (path) VALUES (?1)
                 ON CONFLICT (path) DO UPDATE SET path = path RETURNING id",
            )?;
            let mut named =
                tx.prepare_cached("INSERT OR IGNORE INTO audit_program_rows VALUES (?1, ?2)")?;
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
                for path in chain_programs(&r.actor) {
                    let id: i64 = program.query_row(params![path], |row| row.get(0))?;
                    named.execute(params![id, r.seq])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The newest `limit` audit rows about `target` (oldest first), without the reads of the
    /// entry itself (`show`, `uses`, `history`), which would drown its history.
    pub fn audit_rows_for(&self, target: &str, limit: u32) -> Result<Vec<AuditRow>, CatalogError> {
        let sql = "SELECT seq, ts, action, target, outcome, actor, detail, prev_hash, hash FROM
                   (SELECT * FROM audit WHERE target = ?1 AND action NOT IN ('show', 'history', 'uses')
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
}
