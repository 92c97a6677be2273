use super::*;

/// The audit anchor kept in the keystore, if any.
pub(super) fn read_anchor(
    keystore: &Keystore,
    catalog: &Catalog,
) -> Result<Option<Anchor>, VaultError> {
    match keystore.get(catalog, keystore::AUDIT_ANCHOR_ITEM) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| VaultError::Audit(AuditError::AnchorMissing)),
        Err(KeystoreError::Missing { .. }) => Ok(None),
        Err(e) => Err(AuditError::Anchor(e).into()),
    }
}

/// An audit event about the vault itself (no entry).
pub(super) fn vault_event(
    actor: &Actor,
    action: &'static str,
    outcome: &'static str,
    detail: serde_json::Value,
) -> (Actor, AuditEvent) {
    (
        actor.clone(),
        AuditEvent {
            action,
            target: None,
            outcome,
            detail,
        },
    )
}

impl Vault {
    /// Records audit events (fail closed: an error means the caller must not proceed). Once a
    /// vault exists the rows are keyed and the new head is anchored in the keystore.
    pub fn audit(&mut self, events: &[(Actor, AuditEvent)]) -> Result<(), VaultError> {
        self.audit_unanchored(events)?;
        self.anchor_head()
    }

    /// Records audit events (fail closed) and leaves moving the keystore's anchor to
    /// [`Vault::anchor_head`]: the issuance path answers once its rows are committed and
    /// anchors right after, so the keychain write (a D-Bus round trip to the Secret Service)
    /// is off the reply path. While an earlier anchor write is failing, this retries it first
    /// and refuses if it still fails.
    pub fn audit_unanchored(&mut self, events: &[(Actor, AuditEvent)]) -> Result<(), VaultError> {
        self.audit_issued(events, &[])
    }

    /// [`Vault::audit_unanchored`] that also counts `uses` (entry id, count) on their entries,
    /// in the same commit: what the issuance path records before it answers.
    pub fn audit_issued(
        &mut self,
        events: &[(Actor, AuditEvent)],
        uses: &[(String, u64)],
    ) -> Result<(), VaultError> {
        let Some((key, keystore)) = self.audit_key()? else {
            audit::append(&mut self.catalog, &now_rfc3339(), events, None, uses)?;
            return Ok(());
        };
        if self.anchor_failed {
            self.anchor_head()?;
        }
        if self.anchor.is_none() {
            self.anchor = read_anchor(&keystore, &self.catalog)?;
        }
        // The anchor moves only along an intact trail: once rows it covers were removed or
        // replaced, it stays where it was, so `verify` keeps naming the break. The head not
        // yet anchored counts: its rows were written by this value.
        let latest = self.unanchored.as_ref().or(self.anchor.as_ref());
        let intact = match latest {
            Some(a) => self.catalog.audit_hash_at(a.seq)?.as_deref() == Some(a.hash.as_str()),
            None => true,
        };
        let keyed_from = latest.map(|a| a.keyed_from);
        let rows = audit::append(&mut self.catalog, &now_rfc3339(), events, Some(&key), uses)?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(());
        };
        if !intact {
            tracing::warn!("the audit trail was changed outside Keyward: `keyward audit verify` names the first bad row");
            return Ok(());
        }
        self.unanchored = Some(Anchor {
            // The first keyed row of this vault (a vault made before the chain was keyed
            // starts keying here; `verify` checks the rows before it unkeyed).
            keyed_from: keyed_from.unwrap_or(first.seq),
            seq: last.seq,
            hash: last.hash.clone(),
        });
        Ok(())
    }

    /// Writes the trail's head, recorded by [`Vault::audit_unanchored`], to the keystore's
    /// anchor; nothing to do when it is already there.
    pub fn anchor_head(&mut self) -> Result<(), VaultError> {
        let Some(head) = self.unanchored.take() else {
            return Ok(());
        };
        let keystore = self.keystore()?;
        let json = serde_json::to_vec(&head)
            .map_err(|e| VaultError::Internal(format!("writing the audit anchor: {e}")))?;
        match keystore.put(&self.catalog, keystore::AUDIT_ANCHOR_ITEM, &json) {
            Ok(()) => {
                self.anchor = Some(head);
                self.anchor_failed = false;
                Ok(())
            }
            Err(e) => {
                self.unanchored = Some(head);
                self.anchor_failed = true;
                Err(AuditError::Anchor(e).into())
            }
        }
    }

    /// The audit chain key and the keystore holding the anchor; `None` before a vault exists.
    pub(super) fn audit_key(&mut self) -> Result<Option<(MacKey, Keystore)>, VaultError> {
        let Some(row) = self.catalog.vault()? else {
            return Ok(None);
        };
        let keystore = Keystore::new(row.keystore, &row.vault_id);
        if let Some(k) = &self.audit_key {
            return Ok(Some((k.clone(), keystore)));
        }
        let device = self.device_secret(&keystore).map_err(|e| match e {
            VaultError::Keystore(k) => VaultError::Audit(AuditError::Anchor(k)),
            other => other,
        })?;
        let key = MacKey::derive(&device, &row.vault_id, AUDIT_INFO);
        self.audit_key = Some(key.clone());
        Ok(Some((key, keystore)))
    }

    /// Verifies the whole audit trail: the keyed chain and, against the keystore's anchor, that
    /// nothing was cut from its end. Returns the number of rows.
    pub fn verify_audit(&mut self) -> Result<u64, VaultError> {
        let Some((key, keystore)) = self.audit_key()? else {
            return Ok(audit::verify(&self.catalog, None, None)?);
        };
        // A head this value has not anchored yet would read as rows beyond the anchor: fine,
        // but anchoring first makes a cut right after an issuance show.
        self.anchor_head()?;
        let anchor = read_anchor(&keystore, &self.catalog)?;
        Ok(audit::verify(&self.catalog, Some(&key), anchor.as_ref())?)
    }
}
