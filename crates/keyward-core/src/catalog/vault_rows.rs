//! The vault's own rows: its wrapped header, unlock throttling, TOTP replay state, pending
//! rotations, settings, and the file keystore's sealed items.

use super::*;

impl Catalog {
    /// The vault row, if a vault was created.
    pub fn vault(&self) -> Result<Option<VaultRow>, CatalogError> {
        // Read on every issuance's path (the audit key's keystore): prepared once.
        let row = self
            .conn
            .prepare_cached(
                "SELECT vault_id, keystore, header, header_mac FROM vault WHERE id = 1",
            )?
            .query_row([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
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

    /// Removes a vault setting (absent is fine).
    pub fn delete_setting(&self, name: &str) -> Result<(), CatalogError> {
        self.conn
            .execute("DELETE FROM settings WHERE name = ?1", params![name])?;
        Ok(())
    }

    /// Every setting whose name starts with `prefix`, by name.
    pub fn settings_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, CatalogError> {
        let mut stmt = self.conn.prepare(
            "SELECT name, value FROM settings WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
        )?;
        let rows = stmt
            .query_map(params![prefix], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
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
}
