use super::*;

/// The delay as the end of an error message ("" when there is none).
pub(super) fn delay_text(delay: i64) -> String {
    if delay > 0 {
        format!("; next attempt allowed in {delay} s")
    } else {
        String::new()
    }
}

pub(super) fn delay_after(failures: u32) -> i64 {
    if failures <= FREE_FAILURES {
        return 0;
    }
    let exp = (failures - FREE_FAILURES - 1).min(16);
    (1i64 << exp).min(MAX_DELAY_SECS)
}

pub(super) fn factor_name(factor: &SecondFactor) -> &'static str {
    match factor {
        SecondFactor::Totp(_) => "totp",
        SecondFactor::Recovery(_) => "recovery",
        SecondFactor::Fido2 { .. } => "fido2",
    }
}

/// Longest delay between unlock attempts after repeated failures.
pub(super) const MAX_DELAY_SECS: i64 = 900;

/// Failures allowed before delays start.
pub(super) const FREE_FAILURES: u32 = 2;

impl Vault {
    /// Seconds until the next unlock attempt is allowed (0 = now).
    pub fn unlock_wait(&self) -> Result<i64, VaultError> {
        let (_, next) = self.throttle_state()?;
        Ok((next - now_unix()).max(0))
    }

    /// The failure count and next allowed attempt: the worse of the catalog's row and the copy
    /// kept in the keystore, so that editing or deleting the row does not lift a delay.
    pub(super) fn throttle_state(&self) -> Result<(u32, i64), VaultError> {
        let (mut failures, mut next) = self.catalog.throttle().unwrap_or((u32::MAX, i64::MAX));
        if let Some(row) = self.catalog.vault()? {
            let keystore = Keystore::new(row.keystore, &row.vault_id);
            match keystore.get(&self.catalog, keystore::THROTTLE_ITEM) {
                Ok(bytes) => {
                    let (f, n): (u32, i64) =
                        serde_json::from_slice(&bytes).unwrap_or((u32::MAX, i64::MAX));
                    failures = failures.max(f);
                    next = next.max(n);
                }
                // A vault made before the copy was kept has none until its next attempt.
                Err(KeystoreError::Missing { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if failures == u32::MAX || next == i64::MAX {
            // An unreadable or missing row counts as the longest delay from now, once.
            let next = now_unix() + MAX_DELAY_SECS;
            return Ok((FREE_FAILURES + 10, next));
        }
        Ok((failures, next))
    }

    /// Stores the throttle in the catalog and in the keystore.
    pub(super) fn store_throttle(
        &self,
        failures: u32,
        next_allowed_at: i64,
    ) -> Result<(), VaultError> {
        if let Some(row) = self.catalog.vault()? {
            let keystore = Keystore::new(row.keystore, &row.vault_id);
            let json = serde_json::to_vec(&(failures, next_allowed_at))
                .map_err(|e| VaultError::Internal(format!("writing the unlock throttle: {e}")))?;
            keystore.put(&self.catalog, keystore::THROTTLE_ITEM, &json)?;
        }
        self.catalog.set_throttle(failures, next_allowed_at)?;
        Ok(())
    }

    /// Refuses, audited as `action`/`throttled`, while failed attempts delay the next one.
    pub(super) fn refuse_if_throttled(
        &mut self,
        actor: &Actor,
        action: &'static str,
        purpose: &'static str,
    ) -> Result<(), VaultError> {
        let wait = self.unlock_wait()?;
        if wait > 0 {
            self.audit(&[vault_event(
                actor,
                action,
                "throttled",
                serde_json::json!({"for": purpose, "retry_in_s": wait}),
            )])?;
            return Err(VaultError::Throttled(wait));
        }
        Ok(())
    }

    /// Counts one more failed check of the passphrase or a factor; returns the count and the
    /// delay now in force.
    pub(super) fn count_failure(&self) -> Result<(u32, i64), VaultError> {
        let (failures, _) = self.throttle_state()?;
        let failures = failures.saturating_add(1);
        let delay = delay_after(failures);
        self.store_throttle(failures, now_unix() + delay)?;
        Ok((failures, delay))
    }

    /// The last accepted TOTP step of a factor: the later of the catalog's and the keystore's.
    pub(super) fn totp_last_step(&self, slot_id: &str) -> Result<Option<u64>, VaultError> {
        let in_catalog = self.catalog.totp_last_step(slot_id)?;
        let kept = self.kept_totp_steps()?.get(slot_id).copied();
        Ok(in_catalog.max(kept))
    }

    pub(super) fn kept_totp_steps(
        &self,
    ) -> Result<std::collections::BTreeMap<String, u64>, VaultError> {
        let Some(row) = self.catalog.vault()? else {
            return Ok(Default::default());
        };
        let keystore = Keystore::new(row.keystore, &row.vault_id);
        match keystore.get(&self.catalog, keystore::TOTP_STEPS_ITEM) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
            Err(KeystoreError::Missing { .. }) => Ok(Default::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Records an accepted TOTP step in the catalog and, out of the catalog's reach, in the
    /// keystore.
    pub(super) fn set_totp_last_step(&self, slot_id: &str, step: u64) -> Result<(), VaultError> {
        if let Some(row) = self.catalog.vault()? {
            let mut kept = self.kept_totp_steps()?;
            let e = kept.entry(slot_id.to_owned()).or_insert(step);
            *e = (*e).max(step);
            let keystore = Keystore::new(row.keystore, &row.vault_id);
            let json = serde_json::to_vec(&kept)
                .map_err(|e| VaultError::Internal(format!("writing the TOTP steps: {e}")))?;
            keystore.put(&self.catalog, keystore::TOTP_STEPS_ITEM, &json)?;
        }
        self.catalog.set_totp_last_step(slot_id, step)?;
        Ok(())
    }

    pub(super) fn device_secret(
        &self,
        keystore: &Keystore,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        match keystore.get(&self.catalog, keystore::DEVICE_SECRET_ITEM) {
            Ok(v) => Ok(Zeroizing::new(v)),
            Err(KeystoreError::Missing { .. }) => Err(VaultError::DeviceSecretMissing),
            Err(e) => Err(e.into()),
        }
    }

    /// Unlocks with passphrase and second factor. Every attempt is audited; failures are
    /// counted persistently and delay the next attempt.
    ///
    /// The same as [`Vault::unlock_start`], [`UnlockStart::derive`] and
    /// [`Vault::unlock_finish`] in a row; a service that must keep answering while the
    /// passphrase is stretched calls the three itself and derives without holding the vault.
    pub fn unlock(
        &mut self,
        passphrase: &SecretString,
        factor: &SecondFactor,
        actor: &Actor,
    ) -> Result<Unlocked, VaultError> {
        let start = self.unlock_start(factor, actor)?;
        let pass_key = start.derive(passphrase);
        self.unlock_finish(&start, pass_key, factor, actor)
    }

    /// The first step of an unlock: refuses (audited) while failed attempts delay the next one,
    /// and reads what the passphrase must be stretched with. Unlock attempts must not overlap
    /// (each must see the failures counted before it): a caller that splits the steps runs
    /// one attempt at a time.
    pub fn unlock_start(
        &mut self,
        factor: &SecondFactor,
        actor: &Actor,
    ) -> Result<UnlockStart, VaultError> {
        let factor_name = factor_name(factor);
        let wait = self.unlock_wait()?;
        if wait > 0 {
            let detail = serde_json::json!({"factor": factor_name, "retry_in_s": wait});
            self.audit_unlock(actor, "throttled", detail)?;
            return Err(VaultError::Throttled(wait));
        }
        let (row, header) = self.header()?;
        Ok(UnlockStart {
            header_text: row.header,
            salt: unhex(&header.kdf_salt, "kdf salt")?,
            kdf: header.kdf,
        })
    }

    /// The last step of an unlock: opens the slot `factor` answers with the stretched
    /// passphrase, checks the header, counts a failure or clears the count, and audits the
    /// outcome.
    pub fn unlock_finish(
        &mut self,
        start: &UnlockStart,
        pass_key: Result<PassKey, VaultError>,
        factor: &SecondFactor,
        actor: &Actor,
    ) -> Result<Unlocked, VaultError> {
        // What this value remembers of the keystore is read afresh, the unlock's own checks
        // first: a keychain changed while the vault was locked is seen as it is.
        self.entry_items.clear();
        self.kept.set(None);
        let result = pass_key.and_then(|k| self.try_unlock(start, &k, factor));
        let outcome = match &result {
            Ok(_) => "ok",
            Err(VaultError::WrongCredentials { .. }) | Err(VaultError::CodeReused) => "failed",
            Err(VaultError::HeaderTampered(_)) => "tampered",
            Err(_) => "error",
        };
        let mut detail = serde_json::json!({"factor": factor_name(factor)});
        if let Err(VaultError::HeaderTampered(why)) = &result {
            detail["reason"] = why.clone().into();
        }
        match result {
            Ok(unlocked) => {
                self.store_throttle(0, 0)?;
                if let Some(left) = unlocked.recovery_codes_left {
                    detail["recovery_codes_left"] = left.into();
                }
                self.audit_unlock(actor, outcome, detail)?;
                Ok(unlocked)
            }
            Err(mut err) => {
                if outcome == "failed" {
                    let (failures, delay) = self.count_failure()?;
                    detail["failures"] = failures.into();
                    if let VaultError::WrongCredentials {
                        failures: f,
                        delay: d,
                    } = &mut err
                    {
                        *f = failures;
                        *d = delay_text(delay);
                    }
                }
                self.audit_unlock(actor, outcome, detail)?;
                Err(err)
            }
        }
    }

    /// Records one unlock attempt (every attempt is recorded, whatever its outcome).
    fn audit_unlock(
        &mut self,
        actor: &Actor,
        outcome: &'static str,
        detail: serde_json::Value,
    ) -> Result<(), VaultError> {
        let event = AuditEvent {
            action: "unlock",
            target: None,
            outcome,
            detail,
        };
        self.audit(&[(actor.clone(), event)])
    }

    pub(super) fn try_unlock(
        &mut self,
        start: &UnlockStart,
        pass_key: &PassKey,
        factor: &SecondFactor,
    ) -> Result<Unlocked, VaultError> {
        let (row, header) = self.header()?;
        if row.header != start.header_text {
            // Another unlock (a recovery code spent, a counter moved) or an edit came between:
            // the stretched passphrase belongs to the header read before.
            return Err(VaultError::HeaderChanged);
        }
        let keystore = Keystore::new(row.keystore, &row.vault_id);
        let device = self.device_secret(&keystore)?;
        let pass_key = &pass_key.0;
        let mut unlocked = self.open_with(&row, header, pass_key, &device, factor)?;
        // Every TOTP slot opens with the passphrase key alone: keep their seeds for fresh codes.
        let (_, header) = self.header()?;
        for slot in header.slots.iter().filter(|s| s.kind == SlotKind::Totp) {
            if let Ok(Some(p)) = open_slot(&row.vault_id, slot, pass_key, &device, &[]) {
                if let Some(seed) = p.totp_secret.as_deref().and_then(|s| unhex(s, "seed").ok()) {
                    unlocked
                        .key
                        .totp
                        .push((slot.id.clone(), Zeroizing::new(seed)));
                }
            }
        }
        Ok(unlocked)
    }

    /// Opens the slot `factor` answers and checks the header against the identity inside.
    pub(super) fn open_with(
        &mut self,
        row: &VaultRow,
        mut header: Header,
        pass_key: &[u8; 32],
        device: &[u8],
        factor: &SecondFactor,
    ) -> Result<Unlocked, VaultError> {
        let row = row.clone();
        let wrong = || VaultError::WrongCredentials {
            failures: 0,
            delay: String::new(),
        };
        match factor {
            SecondFactor::Totp(code) => {
                let now = now_unix() as u64;
                for slot in header.slots.iter().filter(|s| s.kind == SlotKind::Totp) {
                    let Some(payload) = open_slot(&row.vault_id, slot, pass_key, device, &[])?
                    else {
                        continue;
                    };
                    let seed = payload
                        .totp_secret
                        .as_deref()
                        .ok_or_else(|| VaultError::BadHeader("TOTP slot without seed".into()))?;
                    let seed = Zeroizing::new(unhex(seed, "totp seed")?);
                    let totp = TotpSetup::from_bytes(&seed)?;
                    let Some(step) = totp.check(code, now).map_err(|_| wrong())? else {
                        continue;
                    };
                    let key = parse_identity(&payload.identity)?;
                    self.check_header(&row, &header, &key)?;
                    if self
                        .totp_last_step(&slot.id)?
                        .is_some_and(|last| step <= last)
                    {
                        return Err(VaultError::CodeReused);
                    }
                    self.set_totp_last_step(&slot.id, step)?;
                    self.upgrade_header(&row, &header, &key)?;
                    self.recipient = Some(key.identity.to_public());
                    return Ok(Unlocked {
                        key,
                        recovery_codes_left: None,
                    });
                }
                Err(wrong())
            }
            SecondFactor::Fido2 {
                pending,
                assertion,
                hmac_output,
            } => {
                let result = crate::fido2::relying_party()?
                    .finish_securitykey_authentication(assertion, &pending.state)
                    .map_err(|_| wrong())?;
                let index = header
                    .slots
                    .iter()
                    .position(|s| {
                        s.fido2
                            .as_ref()
                            .is_some_and(|f| f.key.cred_id() == result.cred_id())
                    })
                    .ok_or_else(wrong)?;
                let payload = open_slot(
                    &row.vault_id,
                    &header.slots[index],
                    pass_key,
                    device,
                    hmac_output,
                )?
                .ok_or_else(wrong)?;
                let key = parse_identity(&payload.identity)?;
                self.check_header(&row, &header, &key)?;
                // Keep the signature counter current (clone detection).
                if let Some(f) = header.slots[index].fido2.as_mut() {
                    f.key.update_credential(&result);
                }
                self.store_header(&header, &key)?;
                self.recipient = Some(key.identity.to_public());
                Ok(Unlocked {
                    key,
                    recovery_codes_left: None,
                })
            }
            SecondFactor::Recovery(code) => {
                let material = factors::parse_recovery_code(code).map_err(|_| wrong())?;
                let found = header.slots.iter().enumerate().find_map(|(i, slot)| {
                    (slot.kind == SlotKind::Recovery)
                        .then(|| open_slot(&row.vault_id, slot, pass_key, device, &material))
                        .and_then(|r| r.ok().flatten())
                        .map(|p| (i, p))
                });
                let Some((index, payload)) = found else {
                    return Err(wrong());
                };
                let key = parse_identity(&payload.identity)?;
                self.check_header(&row, &header, &key)?;
                // One-time: the slot is gone before the vault is handed out.
                header.slots.remove(index);
                let left = header
                    .slots
                    .iter()
                    .filter(|s| s.kind == SlotKind::Recovery)
                    .count();
                self.store_header(&header, &key)?;
                self.recipient = Some(key.identity.to_public());
                Ok(Unlocked {
                    key,
                    recovery_codes_left: Some(left),
                })
            }
        }
    }

    /// Checks a current code from one of the vault's authenticator apps, for an action that needs
    /// a second factor now and not only at unlock (a standing grant): a program that talks to
    /// an unlocked agent has no code. Throttled and counted like an unlock attempt, each code
    /// accepted once, audited as `factor.check` with `purpose`.
    pub fn check_code(
        &mut self,
        key: &UnlockedKey,
        code: &str,
        purpose: &'static str,
        actor: &Actor,
    ) -> Result<(), VaultError> {
        let event = |outcome, detail| vault_event(actor, "factor.check", outcome, detail);
        self.refuse_if_throttled(actor, "factor.check", purpose)?;
        let now = now_unix() as u64;
        for (slot, seed) in &key.totp {
            let totp = TotpSetup::from_bytes(seed)?;
            let Some(step) = totp.check(code, now).ok().flatten() else {
                continue;
            };
            if self.totp_last_step(slot)?.is_some_and(|last| step <= last) {
                self.audit(&[event(
                    "failed",
                    serde_json::json!({"for": purpose, "reason": "code used before"}),
                )])?;
                return Err(VaultError::CodeReused);
            }
            self.set_totp_last_step(slot, step)?;
            self.audit(&[event("ok", serde_json::json!({"for": purpose}))])?;
            return Ok(());
        }
        let (failures, delay) = self.count_failure()?;
        self.audit(&[event(
            "failed",
            serde_json::json!({"for": purpose, "failures": failures}),
        )])?;
        Err(VaultError::WrongCode {
            failures,
            delay: delay_text(delay),
        })
    }
}
