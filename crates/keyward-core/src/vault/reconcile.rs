use super::*;

impl Vault {
    /// Finishes or rolls back writes a crash interrupted; returns what it did.
    pub fn reconcile(&mut self, actor: &Actor) -> Result<Vec<ReconcileNote>, VaultError> {
        if !self.exists()? {
            return Ok(Vec::new());
        }
        let keystore = self.keystore()?;
        // It settles what the keychain holds: read it afresh afterwards.
        self.entry_items.clear();
        let mut notes = Vec::new();
        let entries = self.catalog.entries()?;
        for p in self.catalog.pending_rotations()? {
            let Some((meta, _)) = entries.iter().find(|(m, _)| m.id == p.entry_id) else {
                self.catalog.delete_pending_rotation(&p.entry_id)?;
                continue;
            };
            let stored = match keystore.get(&self.catalog, &keystore::entry_item(&meta.id)) {
                Ok(c) => Some(sha256_hex(&c)),
                Err(KeystoreError::Missing { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            let action = if stored.as_deref() == Some(p.ciphertext_sha256.as_str()) {
                self.catalog
                    .set_entry_rotation(&meta.id, &p.config, &p.rotated)?;
                self.catalog.clear_provider_use(&meta.id)?;
                "an interrupted rotation was completed: the new key is stored and now named"
            } else {
                "an interrupted rotation was rolled back: the old key is still stored; rotate again"
            };
            self.catalog.delete_pending_rotation(&meta.id)?;
            notes.push(ReconcileNote {
                name: meta.name.clone(),
                action: action.to_owned(),
            });
        }
        for (meta, state) in entries {
            let item = keystore::entry_item(&meta.id);
            match state {
                EntryState::Active => {
                    if !keystore.exists(&self.catalog, &item)? {
                        notes.push(ReconcileNote {
                            name: meta.name.clone(),
                            action: "its keychain item is missing: the key cannot be used; remove it and add it again".to_owned(),
                        });
                    }
                }
                EntryState::Pending => {
                    if keystore.exists(&self.catalog, &item)? {
                        self.catalog.set_entry_state(&meta.id, EntryState::Active)?;
                        notes.push(ReconcileNote {
                            name: meta.name.clone(),
                            action: "an interrupted add was completed (its secret had been stored)"
                                .to_owned(),
                        });
                    } else {
                        self.catalog.delete_entry(&meta.id)?;
                        notes.push(ReconcileNote {
                            name: meta.name.clone(),
                            action: "an interrupted add was rolled back (its secret was never stored): add it again".to_owned(),
                        });
                    }
                }
                EntryState::Deleting => {
                    keystore.delete(&self.catalog, &item)?;
                    self.catalog.delete_entry(&meta.id)?;
                    notes.push(ReconcileNote {
                        name: meta.name.clone(),
                        action: "an interrupted removal was completed".to_owned(),
                    });
                }
            }
        }
        if !notes.is_empty() {
            let events: Vec<_> = notes
                .iter()
                .map(|n| {
                    (
                        actor.clone(),
                        AuditEvent {
                            action: "reconcile",
                            target: Some(n.name.clone()),
                            outcome: "ok",
                            detail: serde_json::json!({"action": n.action}),
                        },
                    )
                })
                .collect();
            self.audit(&events)?;
        }
        Ok(notes)
    }
}
