use super::*;

impl Agent {
    /// Creates the vault (`init`) and, when asked, unlocks it for the caller at once.
    pub(super) async fn init(self: &Arc<Self>, new: NewVault, actor: Actor) -> Outcome {
        let (unlock, window) = (new.unlock, new.window);
        self.blocking(move |a| {
            let (mut reply, key) = a.create_vault(new, &actor)?;
            if unlock {
                a.set_key(key);
                a.audited(&actor, "unlock", None, "ok")?;
                if let Reply::Initialized(Initialized { window_token, .. }) = &mut reply {
                    *window_token = a.window_token(window, &actor);
                }
            }
            Ok(reply)
        })
        .await
    }

    /// Unlocks with the passphrase and a second factor; the app's window gets a window token.
    pub(super) async fn unlock(
        self: &Arc<Self>,
        passphrase: WireSecret,
        factor: FactorInput,
        window: bool,
        actor: Actor,
    ) -> Outcome {
        let reply = self
            .blocking(move |a| {
                let mut reply = a.open_vault(passphrase, factor, &actor)?;
                if let Reply::Unlocked(Unlocked { window_token, .. }) = &mut reply {
                    *window_token = a.window_token(window, &actor);
                }
                Ok(reply)
            })
            .await;
        if reply.is_ok() {
            // A rotation a crash interrupted goes on now that its journal can be read.
            let me = Arc::clone(self);
            // Then AWS is asked what it saw of each key (once a day).
            tokio::spawn(async move {
                me.finish_rotations().await;
                me.check_provider_use().await;
            });
        }
        reply
    }

    /// Locks at the caller's request (`lock`).
    pub(super) async fn lock_requested(self: &Arc<Self>, actor: Actor) -> Outcome {
        self.lock(&actor, "requested");
        Ok(Reply::Done)
    }

    /// Changes the idle time before auto-lock, now and in the vault's settings.
    pub(super) async fn set_auto_lock(self: &Arc<Self>, secs: u64, actor: Actor) -> Outcome {
        self.blocking(move |a| {
            if !a.is_unlocked() {
                return Err(vault_err(VaultError::Locked));
            }
            let after = Duration::from_secs(secs);
            a.policy().admit_setting(keyward_core::policy::Limits {
                auto_lock_max_secs: Some(u32::try_from(secs).unwrap_or(u32::MAX)),
                ..Default::default()
            })?;
            a.with_vault(|v| v.set_auto_lock(after, &actor))
                .map_err(vault_err)?;
            a.auto_lock_ms.store(
                after.as_millis().try_into().unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            Ok(Reply::Done)
        })
        .await
    }

    /// Stops the agent (`shutdown`), recorded with the caller first.
    pub(super) async fn shutdown(self: &Arc<Self>, actor: Actor) -> Outcome {
        // Recorded with the caller: stopping the agent is how another would replace it.
        // Best effort: an agent must stop even when its audit cannot be written.
        let a = actor.clone();
        if let Err(e) = self
            .blocking(move |me| me.audited(&a, "shutdown", None, "ok").map(|()| Reply::Done))
            .await
        {
            warn!("shutdown was not audited: {}", e.message);
        }
        self.lock(&actor, "shutdown");
        self.shutdown.notify_one();
        Ok(Reply::Done)
    }

    /// Locks: wipes the key and every cached credential.
    pub fn lock(&self, actor: &Actor, reason: &'static str) -> bool {
        let was = match self.key.write() {
            Ok(mut k) => k.take(),
            Err(p) => p.into_inner().take(),
        };
        self.clear_caches();
        self.approvals.clear();
        self.desktop.clear_tokens();
        let unlocked = was.is_some();
        drop(was);
        if unlocked {
            // Locking is called from async tasks; the audit row touches the keychain (its
            // anchor), whose client may block on a runtime of its own: write it on a thread.
            let vault = Arc::clone(&self.vault);
            let actor = actor.clone();
            let res = std::thread::scope(|s| {
                s.spawn(|| {
                    lock_vault(&vault, |v| {
                        v.audit(&[(
                            actor,
                            AuditEvent {
                                action: "lock",
                                target: None,
                                outcome: "ok",
                                detail: serde_json::json!({"reason": reason}),
                            },
                        )])
                    })
                })
                .join()
            });
            match res {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!("lock was not audited: {e}"),
                Err(_) => warn!("lock was not audited: the audit thread failed"),
            }
            info!(reason, "vault locked");
        }
        unlocked
    }

    /// Locks if idle for longer than the auto-lock time; called periodically.
    pub fn auto_lock_tick(&self) {
        if self.is_unlocked() && self.idle_for() >= self.auto_lock() {
            self.lock(&crate::peer::this_process(), "idle");
        }
    }

    pub(super) fn status(&self) -> Outcome {
        let unlocked = self.is_unlocked();
        let (vault, keystore, entries, wait, catalog) = self.with_vault(|v| {
            let exists = v.exists().unwrap_or(false);
            let keystore = v.keystore().ok().map(|k| match k.kind() {
                KeystoreKind::Keychain => "keychain".to_owned(),
                KeystoreKind::File => "file".to_owned(),
            });
            let entries = v.list().unwrap_or_default();
            let wait = if exists {
                v.unlock_wait().unwrap_or(0)
            } else {
                0
            };
            (
                exists,
                keystore,
                entries,
                wait,
                v.catalog_path().display().to_string(),
            )
        });
        Ok(Reply::Status(Box::new(StatusInfo {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            agent_pid: std::process::id(),
            vault,
            locked: !unlocked,
            keystore,
            entries: entries.len(),
            auto_lock_secs: self.auto_lock().as_secs(),
            locks_in_secs: unlocked
                .then(|| self.auto_lock().saturating_sub(self.idle_for()).as_secs()),
            unlock_wait_secs: wait,
            catalog,
            reconciled: self.reconciled.clone(),
            dumpable: crate::hardening::is_dumpable(),
            desktop: self.desktop.app().is_some(),
            grants_need_code: self
                .current_key()
                .and_then(|k| self.with_vault(|v| v.grants_need_code(&k)).ok()),
            policy: self.policy().info(),
            keys: self.key_states(entries),
            forwarding: self.forwarding(),
            audit_head: self
                .with_vault(|v| v.catalog().audit_head())
                .ok()
                .flatten()
                .map_or(0, |(seq, _)| seq),
        })))
    }

    pub(super) fn create_vault(
        &self,
        new: NewVault,
        actor: &Actor,
    ) -> Result<(Reply, UnlockedKey), ErrorReply> {
        let NewVault {
            passphrase,
            totp_secret,
            totp_code,
            keystore,
            kdf,
            ..
        } = new;
        let passphrase = SecretString::from(passphrase.expose().to_owned());
        keyward_core::factors::check_passphrase_strength(&passphrase, &[])
            .map_err(|e| vault_err(e.into()))?;
        let totp = TotpSetup::from_base32(totp_secret.expose(), "vault")
            .map_err(|e| vault_err(e.into()))?;
        let kdf = match kdf {
            Some(k) => {
                let p = KdfParams {
                    memory_kib: k.memory_mib.saturating_mul(1024),
                    iterations: k.iterations,
                    parallelism: 1,
                };
                p.check_bounds()
                    .map_err(|e| err(ErrorCode::Invalid, e.to_string()))?;
                p
            }
            None => KdfParams::calibrate(Duration::from_millis(1000))
                .map_err(|e| err(ErrorCode::Internal, e.to_string()))?,
        };
        let created = self
            .with_vault(|v| {
                v.create(
                    CreateOptions {
                        passphrase,
                        keystore: match keystore {
                            KeystoreChoice::Keychain => KeystoreKind::Keychain,
                            KeystoreChoice::File => KeystoreKind::File,
                        },
                        kdf,
                        totp,
                        totp_code: totp_code.expose().to_owned(),
                        totp_label: "authenticator app".to_owned(),
                    },
                    actor,
                )
            })
            .map_err(vault_err)?;
        let reply = Reply::Initialized(Initialized {
            recovery_codes: created
                .recovery_codes
                .iter()
                .map(|c| WireSecret::new(c.expose_secret().to_owned()))
                .collect(),
            kdf_memory_mib: kdf.memory_kib / 1024,
            kdf_iterations: kdf.iterations,
            window_token: None,
        });
        Ok((reply, created.key))
    }

    pub(super) fn open_vault(
        &self,
        passphrase: WireSecret,
        factor: FactorInput,
        actor: &Actor,
    ) -> Outcome {
        let passphrase = SecretString::from(passphrase.expose().to_owned());
        let factor = match factor {
            FactorInput::Totp { code } => SecondFactor::Totp(code.expose().to_owned()),
            FactorInput::Recovery { code } => {
                SecondFactor::Recovery(SecretString::from(code.expose().to_owned()))
            }
            FactorInput::Fido2 {
                ceremony,
                assertion,
                hmac_output,
            } => {
                let Some(Ceremony::Authenticate(pending)) = self.take_ceremony(&ceremony) else {
                    return Err(expired());
                };
                let assertion: keyward_core::fido2::webauthn::PublicKeyCredential =
                    serde_json::from_value(assertion).map_err(|e| {
                        err(ErrorCode::BadRequest, format!("malformed assertion: {e}"))
                    })?;
                SecondFactor::Fido2 {
                    pending,
                    assertion: Box::new(assertion),
                    hmac_output: zeroize::Zeroizing::new(unhex(&hmac_output)?),
                }
            }
        };
        let _one_at_a_time = match self.unlocking.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let start = self
            .with_vault(|v| v.unlock_start(&factor, actor))
            .map_err(vault_err)?;
        let pass_key = start.derive(&passphrase);
        let unlocked = self
            .with_vault(|v| v.unlock_finish(&start, pass_key, &factor, actor))
            .map_err(vault_err)?;
        self.set_key(unlocked.key);
        Ok(Reply::Unlocked(Unlocked {
            recovery_codes_left: unlocked.recovery_codes_left,
            auto_lock_secs: self.auto_lock().as_secs(),
            window_token: None,
        }))
    }

    /// Holds `key` as the unlocked vault key.
    pub(super) fn set_key(&self, key: UnlockedKey) {
        // A header that does not verify says "needed": the answer is refused either way.
        let needs_code = self
            .with_vault(|v| v.grants_need_code(&key))
            .unwrap_or(true);
        self.approvals.set_standing_needs_code(needs_code);
        match self.key.write() {
            Ok(mut k) => *k = Some(Arc::new(key)),
            Err(p) => *p.into_inner() = Some(Arc::new(key)),
        }
        self.touch();
        info!("vault unlocked");
    }
}
