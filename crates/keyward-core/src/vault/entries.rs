use super::*;

impl Vault {
    /// Checks `secret` fits `meta` (kind, AWS key shape, OAuth2 settings, non-empty), fills the AWS
    /// key hint, and returns it sealed with `meta`'s id and settings, encrypted to the recipient
    /// verified at the last unlock, with the keystore to put it in.
    pub(super) fn seal_secret(
        &self,
        meta: &mut EntryMeta,
        secret: &SecretValue,
    ) -> Result<(Vec<u8>, Keystore), VaultError> {
        if secret.kind() != meta.kind {
            return Err(VaultError::WrongKind {
                name: meta.name.clone(),
                expected: meta.kind.as_str(),
                actual: secret.kind().as_str(),
            });
        }
        if let (
            EntryKind::Aws,
            SecretValue::Aws {
                access_key_id,
                secret_access_key,
            },
        ) = (meta.kind, secret)
        {
            crate::entry::validate_aws_key(access_key_id, secret_access_key.expose_secret())?;
            let cfg = meta.config.aws.get_or_insert_with(Default::default);
            cfg.access_key_hint = crate::entry::access_key_hint(access_key_id);
            crate::entry::validate_aws_config(cfg)?;
        }
        if let (
            EntryKind::Aliyun,
            SecretValue::Aliyun {
                access_key_id,
                access_key_secret,
            },
        ) = (meta.kind, secret)
        {
            crate::entry::validate_aliyun_key(access_key_id, access_key_secret.expose_secret())?;
            let cfg = meta
                .config
                .aliyun
                .as_mut()
                .ok_or(EntryError::MissingConfig("Alibaba Cloud"))?;
            cfg.access_key_hint = crate::entry::access_key_hint(access_key_id);
            crate::entry::validate_aliyun_config(cfg)?;
        }
        if let SecretValue::Static { value } = secret {
            if value.expose_secret().is_empty() {
                return Err(EntryError::EmptySecret.into());
            }
        }
        if let SecretValue::OAuth2 { client_secret } = secret {
            crate::entry::validate_client_secret(client_secret.expose_secret())?;
            let cfg = meta
                .config
                .oauth2
                .as_ref()
                .ok_or(EntryError::MissingConfig("OAuth2"))?;
            crate::entry::validate_oauth2_config(cfg)?;
        }
        let row = self.row()?;
        let recipient = self
            .recipient
            .as_ref()
            .ok_or(VaultError::RecipientUnverified)?;
        let plaintext = secret.to_sealed_plaintext(&meta.id, &meta.config);
        let ciphertext = age::encrypt(recipient, &plaintext).map_err(|e| {
            VaultError::Internal(format!("age encryption of the secret failed: {e}"))
        })?;
        Ok((ciphertext, Keystore::new(row.keystore, &row.vault_id)))
    }

    /// Adds an entry; works while locked once an unlock has verified the vault's recipient
    /// (the new secret is encrypted to it). Audited with its outcome once done.
    pub fn add_entry(
        &mut self,
        mut meta: EntryMeta,
        secret: &SecretValue,
        actor: &Actor,
    ) -> Result<EntryMeta, VaultError> {
        crate::entry::validate_name(&meta.name)?;
        crate::entry::validate_meta(
            meta.owner.as_deref(),
            meta.purpose.as_deref(),
            &meta.tags,
            meta.expires.as_deref(),
        )?;
        meta.id = uuid::Uuid::new_v4().simple().to_string();
        meta.created = now_rfc3339();
        let (ciphertext, keystore) = self.seal_secret(&mut meta, secret)?;
        let event = |outcome: &'static str, detail: serde_json::Value| {
            (
                actor.clone(),
                AuditEvent {
                    action: "add",
                    target: Some(meta.name.clone()),
                    outcome,
                    detail,
                },
            )
        };
        let kind = meta.kind.as_str();
        self.catalog.insert_entry(&meta, EntryState::Pending)?;
        let item = keystore::entry_item(&meta.id);
        self.entry_items.remove(&meta.id);
        if let Err(e) = keystore.put(&self.catalog, &item, &ciphertext) {
            // Roll back the row so no entry without a secret remains.
            self.catalog.delete_entry(&meta.id)?;
            self.audit(&[event(
                "failed",
                serde_json::json!({"kind": kind, "error": e.to_string()}),
            )])?;
            return Err(e.into());
        }
        self.catalog.set_entry_state(&meta.id, EntryState::Active)?;
        if let Err(e) = self.audit(&[event("ok", serde_json::json!({"kind": kind}))]) {
            // Fail closed: an add that cannot be recorded does not stay.
            let _ = self.catalog.set_entry_state(&meta.id, EntryState::Deleting);
            let _ = keystore.delete(&self.catalog, &item);
            let _ = self.catalog.delete_entry(&meta.id);
            return Err(e);
        }
        Ok(meta)
    }

    /// Changes an entry's descriptive metadata (owner, purpose, tags, rotation interval, expiry)
    /// to those of `edit`; the secret, name and kind stay. Audited with the fields that changed.
    pub fn update_entry(
        &mut self,
        name: &str,
        edit: EntryEdit,
        actor: &Actor,
    ) -> Result<EntryMeta, VaultError> {
        let mut meta = self.get(name)?;
        let mut changed = Vec::new();
        if meta.owner != edit.owner {
            changed.push("owner");
        }
        if meta.purpose != edit.purpose {
            changed.push("purpose");
        }
        if meta.tags != edit.tags {
            changed.push("tags");
        }
        if meta.rotation_interval_days != edit.rotation_interval_days {
            changed.push("rotation_interval_days");
        }
        if meta.expires != edit.expires {
            changed.push("expires");
        }
        if changed.is_empty() {
            return Ok(meta);
        }
        meta.owner = edit.owner;
        meta.purpose = edit.purpose;
        meta.tags = edit.tags;
        meta.rotation_interval_days = edit.rotation_interval_days;
        meta.expires = edit.expires;
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "update",
                target: Some(meta.name.clone()),
                outcome: "ok",
                detail: serde_json::json!({ "changed": changed }),
            },
        )])?;
        self.catalog.update_entry_meta(&meta)?;
        Ok(meta)
    }

    /// Replaces an entry's secret with a new one of the same kind (a rotation done elsewhere,
    /// e.g. a new access key made in the AWS console) and records when.
    ///
    /// Needs the unlocked key: the settings sealed with the old secret are checked against the
    /// catalog's first, because they are sealed again with the new one. The keychain item is
    /// overwritten in one call, so the entry holds either the old or the new secret, never
    /// neither; a pending-rotation row written before lets [`Vault::reconcile`] finish the
    /// catalog's side if a crash comes between. Audited with both key hints once done.
    pub fn replace_secret(
        &mut self,
        name: &str,
        secret: &SecretValue,
        key: &UnlockedKey,
        actor: &Actor,
    ) -> Result<EntryMeta, VaultError> {
        let mut meta = self.get(name)?;
        meta.provider_use = None;
        match self.open_secret(key, &meta) {
            Ok(_) | Err(VaultError::Unsealed(_)) | Err(VaultError::Undecryptable(_)) => {}
            Err(e) => return Err(e),
        }
        let old_hint = meta.config.aws.as_ref().map(|a| a.access_key_hint.clone());
        let (ciphertext, keystore) = self.seal_secret(&mut meta, secret)?;
        let new_hint = meta.config.aws.as_ref().map(|a| a.access_key_hint.clone());
        meta.rotated = Some(now_rfc3339());
        let config = serde_json::to_string(&meta.config)
            .map_err(|e| VaultError::Internal(format!("writing the key's settings: {e}")))?;
        self.catalog.put_pending_rotation(&PendingRotation {
            entry_id: meta.id.clone(),
            ciphertext_sha256: sha256_hex(&ciphertext),
            config,
            rotated: meta.rotated.clone().unwrap_or_default(),
        })?;
        let detail = serde_json::json!({
            "kind": meta.kind.as_str(),
            "from": old_hint,
            "to": new_hint,
        });
        self.entry_items.remove(&meta.id);
        let done = keystore
            .put(&self.catalog, &keystore::entry_item(&meta.id), &ciphertext)
            .map_err(VaultError::from)
            .and_then(|()| Ok(self.catalog.update_entry_meta(&meta)?))
            // What the provider said was about the old key.
            .and_then(|()| Ok(self.catalog.clear_provider_use(&meta.id)?))
            .and_then(|()| Ok(self.catalog.delete_pending_rotation(&meta.id)?));
        let outcome = if done.is_ok() { "ok" } else { "failed" };
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "rotate",
                target: Some(meta.name.clone()),
                outcome,
                detail,
            },
        )])?;
        done?;
        Ok(meta)
    }

    /// The newest `limit` audit records about entry `name` (adds, rotations, edits, credentials
    /// issued, tests, reveals), oldest first; works for a removed entry's name too.
    pub fn history(
        &self,
        name: &str,
        limit: u32,
    ) -> Result<Vec<crate::catalog::AuditRow>, VaultError> {
        Ok(self.catalog.audit_rows_for(name, limit)?)
    }

    /// Removes an entry and its keychain item; audited with the outcome once done.
    pub fn remove_entry(&mut self, name: &str, actor: &Actor) -> Result<(), VaultError> {
        let (meta, _) = self
            .catalog
            .entry_by_name(name)?
            .ok_or_else(|| VaultError::NotFound(name.to_owned()))?;
        let keystore = self.keystore()?;
        self.catalog
            .set_entry_state(&meta.id, EntryState::Deleting)?;
        self.entry_items.remove(&meta.id);
        let done = keystore
            .delete(&self.catalog, &keystore::entry_item(&meta.id))
            .map_err(VaultError::from)
            .and_then(|()| Ok(self.catalog.delete_entry(&meta.id)?));
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "remove",
                target: Some(name.to_owned()),
                outcome: if done.is_ok() { "ok" } else { "failed" },
                detail: serde_json::json!({"kind": meta.kind.as_str()}),
            },
        )])?;
        done
    }

    /// Active entries, by name.
    pub fn list(&self) -> Result<Vec<EntryMeta>, VaultError> {
        Ok(self
            .catalog
            .entries()?
            .into_iter()
            .filter(|(_, s)| *s == EntryState::Active)
            .map(|(m, _)| m)
            .collect())
    }

    /// The last reminder shown for each key, by entry id (a row that does not read counts as
    /// none: its key is reminded again).
    pub fn reminders(
        &self,
    ) -> Result<std::collections::HashMap<String, crate::policy::Reminded>, VaultError> {
        let parse = |t: &str| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        };
        Ok(self
            .catalog
            .reminders()?
            .into_iter()
            .filter_map(|(id, (state, at))| {
                let r = crate::policy::Reminded {
                    state: crate::EntryState::parse(&state)?,
                    at: parse(&at)?,
                };
                Some((id, r))
            })
            .collect())
    }

    /// Records that entry `id` was reminded of `state` at `at`, or, for `ok`, forgets it.
    pub fn record_reminder(
        &self,
        id: &str,
        state: crate::EntryState,
        at: time::OffsetDateTime,
    ) -> Result<(), VaultError> {
        if state == crate::EntryState::Ok {
            return Ok(self.catalog.clear_reminder(id)?);
        }
        let at = at
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| VaultError::Internal(format!("cannot format a time: {e}")))?;
        Ok(self.catalog.set_reminder(id, state.as_str(), &at)?)
    }

    /// Keeps what the provider said about entry `id`'s use (see [`crate::entry::ProviderUse`]).
    pub fn record_provider_use(
        &self,
        id: &str,
        u: &crate::entry::ProviderUse,
    ) -> Result<(), VaultError> {
        Ok(self.catalog.set_provider_use(id, u)?)
    }

    /// One active entry by name.
    pub fn get(&self, name: &str) -> Result<EntryMeta, VaultError> {
        match self.catalog.entry_by_name(name)? {
            Some((m, EntryState::Active)) => Ok(m),
            _ => Err(VaultError::NotFound(name.to_owned())),
        }
    }

    /// Decrypts an entry's secret with the unlocked key, after checking that the settings
    /// sealed with it are `meta`'s (the catalog's) and still valid. A mismatch refuses the
    /// secret and is audited; an access key hint that does not name the stored key is repaired.
    pub fn read_secret(
        &mut self,
        key: &UnlockedKey,
        meta: &EntryMeta,
    ) -> Result<SecretValue, VaultError> {
        match self.open_secret(key, meta) {
            Ok(v) => Ok(v),
            Err(VaultError::SettingsTampered { name, fields }) => {
                self.audit(&[(
                    Actor::default(),
                    AuditEvent {
                        action: "tamper",
                        target: Some(name.clone()),
                        outcome: "refused",
                        detail: serde_json::json!({"changed": fields}),
                    },
                )])?;
                Err(VaultError::SettingsTampered { name, fields })
            }
            Err(e) => Err(e),
        }
    }

    /// [`Vault::read_secret`] without the audit of a mismatch.
    pub(super) fn open_secret(
        &mut self,
        key: &UnlockedKey,
        meta: &EntryMeta,
    ) -> Result<SecretValue, VaultError> {
        let ciphertext = match self.entry_items.get(&meta.id) {
            Some(c) => c.clone(),
            None => {
                let keystore = self.keystore()?;
                let c = match keystore.get(&self.catalog, &keystore::entry_item(&meta.id)) {
                    Ok(c) => c,
                    Err(KeystoreError::Missing { .. }) => {
                        return Err(VaultError::Undecryptable(meta.name.clone()))
                    }
                    Err(e) => return Err(e.into()),
                };
                self.entry_items.insert(meta.id.clone(), c.clone());
                c
            }
        };
        let plain = Zeroizing::new(
            age::decrypt(&key.identity, &ciphertext)
                .map_err(|_| VaultError::Undecryptable(meta.name.clone()))?,
        );
        let (value, binding) = SecretValue::from_plaintext(&plain)
            .ok_or_else(|| VaultError::Undecryptable(meta.name.clone()))?;
        let binding = binding.ok_or_else(|| VaultError::Unsealed(meta.name.clone()))?;
        let tampered = |fields: String| VaultError::SettingsTampered {
            name: meta.name.clone(),
            fields,
        };
        if binding.entry_id != meta.id || value.kind() != meta.kind {
            return Err(tampered("its stored secret belongs to another key".into()));
        }
        let changed = binding.config.differences(&meta.config.bound());
        if !changed.is_empty() {
            return Err(tampered(changed.join(", ")));
        }
        // The sealed settings are the catalog's; they are still checked as on input, so a
        // value that was valid once but is refused now is not used either.
        if let Some(aws) = &meta.config.aws {
            crate::entry::validate_aws_config(aws)?;
        }
        if let Some(o) = &meta.config.oauth2 {
            crate::entry::validate_oauth2_config(o)?;
        }
        if let Some(a) = &meta.config.aliyun {
            crate::entry::validate_aliyun_config(a)?;
        }
        if let (SecretValue::Aws { access_key_id, .. }, Some(aws)) = (&value, &meta.config.aws) {
            let hint = crate::entry::access_key_hint(access_key_id);
            if aws.access_key_hint != hint {
                let mut fixed = meta.clone();
                if let Some(a) = fixed.config.aws.as_mut() {
                    a.access_key_hint = hint.clone();
                }
                self.catalog.update_entry_meta(&fixed)?;
                self.audit(&[(
                    Actor::default(),
                    AuditEvent {
                        action: "reconcile",
                        target: Some(meta.name.clone()),
                        outcome: "ok",
                        detail: serde_json::json!({"action": format!("the catalog named {} but {hint} is stored: corrected", aws.access_key_hint)}),
                    },
                )])?;
            }
        }
        Ok(value)
    }

    /// Records one use of an entry.
    pub fn record_use(&self, meta: &EntryMeta) -> Result<(), VaultError> {
        self.catalog.touch_entry(&meta.id, &now_rfc3339())?;
        Ok(())
    }

    /// Adds to the keys' usage baseline (see [`crate::usage`]): programs and chains served for
    /// the first time, and issuances per (entry id, day).
    pub fn record_usage(
        &mut self,
        seen: &[(String, &str, String)],
        days: &[(String, String, u64)],
    ) -> Result<(), VaultError> {
        self.catalog.record_usage(seen, days, &now_rfc3339())?;
        Ok(())
    }
}
