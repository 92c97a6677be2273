use super::*;
use crate::fido2::Fido2Error;

impl Vault {
    /// Enrolled factors (recovery codes counted as one line each).
    pub fn factors(&self) -> Result<Vec<FactorInfo>, VaultError> {
        let (_, header) = self.header()?;
        Ok(header
            .slots
            .iter()
            .map(|s| FactorInfo {
                id: s.id.clone(),
                kind: s.kind,
                label: s.label.clone(),
                created: s.created.clone(),
            })
            .collect())
    }

    /// Enrolls another TOTP factor; needs the unlocked key and the passphrase (to derive the
    /// slot key) and a current code from the new app.
    pub fn enroll_totp(
        &mut self,
        key: &UnlockedKey,
        passphrase: &SecretString,
        totp: &TotpSetup,
        code: &str,
        label: &str,
        actor: &Actor,
    ) -> Result<FactorInfo, VaultError> {
        let (row, header) = self.header()?;
        let step = totp
            .check(code, now_unix() as u64)?
            .ok_or(VaultError::CodeMismatch)?;
        let (pass_key, device) =
            self.enrollment_keys(&row, &header, key, passphrase, "factor.add", actor)?;
        let slot = seal_slot(
            &row.vault_id,
            &pass_key,
            &device,
            &[],
            SlotKind::Totp,
            label,
            &key.identity,
            Some(&totp.secret_bytes()),
        )?;
        let info = self.add_slot(header, slot, key, actor)?;
        self.set_totp_last_step(&info.id, step)?;
        Ok(info)
    }

    /// Derives the passphrase key and reads the device secret for sealing a new slot, after
    /// checking that the header is the unlocked key's own and the passphrase is right. The
    /// passphrase check is throttled and audited like an unlock attempt, so a program talking
    /// to an unlocked agent cannot guess it freely.
    pub(super) fn enrollment_keys(
        &mut self,
        row: &VaultRow,
        header: &Header,
        key: &UnlockedKey,
        passphrase: &SecretString,
        purpose: &'static str,
        actor: &Actor,
    ) -> Result<SealingKeys, VaultError> {
        self.check_header(row, header, key)?;
        let passphrase_event = |outcome, detail| vault_event(actor, "passphrase", outcome, detail);
        self.refuse_if_throttled(actor, "passphrase", purpose)?;
        let keystore = Keystore::new(row.keystore, &row.vault_id);
        let device = self.device_secret(&keystore)?;
        let salt = unhex(&header.kdf_salt, "kdf salt")?;
        let pass_key = kdf::derive(passphrase.expose_secret().as_bytes(), &salt, &header.kdf)?;
        if let Err(e) = self.verify_passphrase_key(&row.vault_id, header, &pass_key, &device) {
            let (failures, delay) = self.count_failure()?;
            self.audit(&[passphrase_event(
                "failed",
                serde_json::json!({"for": purpose, "failures": failures}),
            )])?;
            return Err(match e {
                VaultError::WrongCredentials { .. } => VaultError::WrongCredentials {
                    failures,
                    delay: delay_text(delay),
                },
                other => other,
            });
        }
        Ok((pass_key, device))
    }

    /// Appends a sealed slot to the header, audited (fail closed) before it is stored.
    pub(super) fn add_slot(
        &mut self,
        mut header: Header,
        slot: Slot,
        key: &UnlockedKey,
        actor: &Actor,
    ) -> Result<FactorInfo, VaultError> {
        let info = FactorInfo {
            id: slot.id.clone(),
            kind: slot.kind,
            label: slot.label.clone(),
            created: slot.created.clone(),
        };
        header.slots.push(slot);
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "factor.add",
                target: Some(info.id.clone()),
                outcome: "ok",
                detail: serde_json::json!({"kind": info.kind.as_str(), "label": info.label}),
            },
        )])?;
        self.store_header(&header, key)?;
        Ok(info)
    }

    /// A passphrase key is right when it opens at least one TOTP slot (which need no other
    /// material). Vaults always keep one, because the last one cannot be removed.
    pub(super) fn verify_passphrase_key(
        &self,
        vault_id: &str,
        header: &Header,
        pass_key: &[u8; 32],
        device: &[u8],
    ) -> Result<(), VaultError> {
        for slot in header.slots.iter().filter(|s| s.kind == SlotKind::Totp) {
            if open_slot(vault_id, slot, pass_key, device, &[])?.is_some() {
                return Ok(());
            }
        }
        Err(VaultError::WrongCredentials {
            failures: 0,
            delay: String::new(),
        })
    }

    /// Starts registering a FIDO2 security key: the challenge for the authenticator and the state
    /// (with the hmac-secret salt) to finish it with.
    pub fn fido2_register_begin(
        &self,
    ) -> Result<
        (
            webauthn_rs::prelude::CreationChallengeResponse,
            crate::fido2::PendingRegistration,
        ),
        VaultError,
    > {
        let (row, header) = self.header()?;
        let user = webauthn_rs::prelude::Uuid::parse_str(&row.vault_id)
            .map_err(|_| VaultError::BadHeader("vault id is not a UUID".into()))?;
        let exclude: Vec<_> = header
            .slots
            .iter()
            .filter_map(|s| s.fido2.as_ref().map(|f| f.key.cred_id().clone()))
            .collect();
        let (challenge, state) = crate::fido2::relying_party()?
            .start_securitykey_registration(
                user,
                "keyward",
                "Keyward vault",
                Some(exclude),
                None,
                None,
            )
            .map_err(|e| Fido2Error::Challenge(e.to_string()))?;
        Ok((
            challenge,
            crate::fido2::PendingRegistration {
                state,
                hmac_salt: random(),
            },
        ))
    }

    /// Finishes registering a security key and seals a slot under passphrase + its hmac-secret.
    #[allow(clippy::too_many_arguments)]
    pub fn enroll_fido2(
        &mut self,
        key: &UnlockedKey,
        passphrase: &SecretString,
        pending: &crate::fido2::PendingRegistration,
        response: &webauthn_rs::prelude::RegisterPublicKeyCredential,
        hmac_output: &[u8],
        label: &str,
        actor: &Actor,
    ) -> Result<FactorInfo, VaultError> {
        if hmac_output.len() != 32 {
            return Err(Fido2Error::NoHmacSecret.into());
        }
        let security_key = crate::fido2::relying_party()?
            .finish_securitykey_registration(response, &pending.state)
            .map_err(|e| Fido2Error::Rejected(e.to_string()))?;
        let (row, header) = self.header()?;
        let (pass_key, device) =
            self.enrollment_keys(&row, &header, key, passphrase, "factor.add", actor)?;
        let mut slot = seal_slot(
            &row.vault_id,
            &pass_key,
            &device,
            hmac_output,
            SlotKind::Fido2,
            label,
            &key.identity,
            None,
        )?;
        slot.fido2 = Some(Fido2Slot {
            key: security_key,
            hmac_salt: hex(&pending.hmac_salt),
        });
        let info = self.add_slot(header, slot, key, actor)?;
        Ok(info)
    }

    /// Starts a FIDO2 unlock: the challenge for every enrolled key and each key's hmac salt
    /// (credential id → salt, both hex).
    pub fn fido2_unlock_begin(&self) -> Result<crate::fido2::UnlockChallenge, VaultError> {
        let (_, header) = self.header()?;
        let slots: Vec<&Fido2Slot> = header
            .slots
            .iter()
            .filter_map(|s| s.fido2.as_ref())
            .collect();
        if slots.is_empty() {
            return Err(VaultError::NoSuchFactor("FIDO2 security key"));
        }
        let keys: Vec<_> = slots.iter().map(|f| f.key.clone()).collect();
        let (challenge, state) = crate::fido2::relying_party()?
            .start_securitykey_authentication(&keys)
            .map_err(|e| Fido2Error::Challenge(e.to_string()))?;
        let salts = slots
            .iter()
            .map(|f| (hex(f.key.cred_id().as_ref()), f.hmac_salt.clone()))
            .collect();
        Ok(crate::fido2::UnlockChallenge {
            challenge,
            pending: crate::fido2::PendingAuthentication { state },
            salts,
        })
    }

    /// Removes a factor by slot id; refuses to remove the last TOTP factor. Needs the unlocked
    /// key, which checks the header and re-authenticates it.
    pub fn remove_factor(
        &mut self,
        id: &str,
        key: &UnlockedKey,
        actor: &Actor,
    ) -> Result<(), VaultError> {
        let (row, mut header) = self.header()?;
        self.check_header(&row, &header, key)?;
        let Some(pos) = header.slots.iter().position(|s| s.id == id) else {
            return Err(VaultError::NoSuchFactor("such a"));
        };
        let kind = header.slots[pos].kind;
        if kind == SlotKind::Totp
            && header
                .slots
                .iter()
                .filter(|s| s.kind == SlotKind::Totp)
                .count()
                == 1
        {
            return Err(VaultError::LastFactor);
        }
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "factor.remove",
                target: Some(id.to_owned()),
                outcome: "ok",
                detail: serde_json::json!({"kind": kind.as_str()}),
            },
        )])?;
        header.slots.remove(pos);
        self.store_header(&header, key)?;
        Ok(())
    }

    /// Replaces every recovery code with a fresh set (the old ones stop working); needs the
    /// unlocked key and the passphrase, like enrolling a factor. Returns the codes to show once.
    pub fn regenerate_recovery_codes(
        &mut self,
        key: &UnlockedKey,
        passphrase: &SecretString,
        actor: &Actor,
    ) -> Result<Vec<SecretString>, VaultError> {
        let (row, mut header) = self.header()?;
        let (pass_key, device) =
            self.enrollment_keys(&row, &header, key, passphrase, "recovery.regenerate", actor)?;
        let codes = factors::generate_recovery_codes();
        let mut slots = Vec::with_capacity(codes.len());
        for (i, code) in codes.iter().enumerate() {
            let material = factors::parse_recovery_code(code)?;
            slots.push(seal_slot(
                &row.vault_id,
                &pass_key,
                &device,
                &material,
                SlotKind::Recovery,
                &format!("recovery code {}", i + 1),
                &key.identity,
                None,
            )?);
        }
        let old = header
            .slots
            .iter()
            .filter(|s| s.kind == SlotKind::Recovery)
            .count();
        header.slots.retain(|s| s.kind != SlotKind::Recovery);
        header.slots.extend(slots);
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "recovery.regenerate",
                target: None,
                outcome: "ok",
                detail: serde_json::json!({ "replaced": old, "codes": codes.len() }),
            },
        )])?;
        self.store_header(&header, key)?;
        Ok(codes)
    }
}
