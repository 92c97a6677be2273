use super::*;

/// Catalog setting holding the user's auto-lock time in seconds.
pub(super) const AUTO_LOCK_SETTING: &str = "auto_lock_secs";

/// Shortest auto-lock time a user may set.
pub const MIN_AUTO_LOCK: std::time::Duration = std::time::Duration::from_secs(60);

/// Longest auto-lock time a user may set.
pub const MAX_AUTO_LOCK: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl Vault {
    /// The auto-lock time the user chose, if any.
    pub fn auto_lock_setting(&self) -> Result<Option<std::time::Duration>, VaultError> {
        Ok(self
            .catalog
            .setting(AUTO_LOCK_SETTING)?
            .and_then(|v| v.parse::<u64>().ok())
            .map(std::time::Duration::from_secs))
    }

    /// Whether standing grants need a current second-factor code, read from the header and
    /// checked against the unlocked identity (a header edited since the unlock is refused).
    pub fn grants_need_code(&self, key: &UnlockedKey) -> Result<bool, VaultError> {
        let (row, header) = self.header()?;
        self.check_header(&row, &header, key)?;
        Ok(header.grants_need_code)
    }

    /// Turns the need for a code on standing grants on or off (audited). The caller checks a
    /// fresh code before turning it off: a program must not be able to lift it.
    pub fn set_grants_need_code(
        &mut self,
        key: &UnlockedKey,
        on: bool,
        actor: &Actor,
    ) -> Result<(), VaultError> {
        let (row, mut header) = self.header()?;
        self.check_header(&row, &header, key)?;
        header.grants_need_code = on;
        self.store_header(&header, key)?;
        self.audit(&[vault_event(
            actor,
            "settings.grants_need_code",
            "ok",
            serde_json::json!({ "on": on }),
        )])
    }

    /// How static key `meta` may be leased, if the user allowed it: read from the header and
    /// checked against the unlocked identity (a header edited since is refused).
    pub fn lease_mode(
        &self,
        key: &UnlockedKey,
        meta: &EntryMeta,
    ) -> Result<Option<crate::entry::LeaseMode>, VaultError> {
        let (row, header) = self.header()?;
        self.check_header(&row, &header, key)?;
        Ok(header.leases.get(&meta.id).copied())
    }

    /// Allows static key `name` to be leased in `mode`, or no longer (`None`); audited. The
    /// caller checks a current code before allowing: a program must not be able to let a key
    /// out by itself.
    pub fn set_lease(
        &mut self,
        key: &UnlockedKey,
        name: &str,
        mode: Option<crate::entry::LeaseMode>,
        actor: &Actor,
    ) -> Result<(), VaultError> {
        let meta = self.get(name)?;
        if meta.kind != crate::EntryKind::Static {
            return Err(VaultError::WrongKind {
                name: meta.name,
                expected: "static",
                actual: meta.kind.as_str(),
            });
        }
        let (row, mut header) = self.header()?;
        self.check_header(&row, &header, key)?;
        match mode {
            Some(m) => header.leases.insert(meta.id.clone(), m),
            None => header.leases.remove(&meta.id),
        };
        self.store_header(&header, key)?;
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "settings.lease",
                target: Some(meta.name),
                outcome: "ok",
                detail: serde_json::json!({ "mode": mode.map(crate::entry::LeaseMode::as_str) }),
            },
        )])
    }

    /// Stores the auto-lock time (audited).
    pub fn set_auto_lock(
        &mut self,
        after: std::time::Duration,
        actor: &Actor,
    ) -> Result<(), VaultError> {
        if after < MIN_AUTO_LOCK || after > MAX_AUTO_LOCK {
            return Err(VaultError::AutoLockRange);
        }
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "settings.auto_lock",
                target: None,
                outcome: "ok",
                detail: serde_json::json!({ "secs": after.as_secs() }),
            },
        )])?;
        self.catalog
            .set_setting(AUTO_LOCK_SETTING, &after.as_secs().to_string())?;
        Ok(())
    }
}
