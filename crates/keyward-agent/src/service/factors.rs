use super::*;

/// How long a FIDO2 challenge stays valid.
pub(super) const CEREMONY_TTL: Duration = Duration::from_secs(120);

/// Most FIDO2 ceremonies pending at once (older ones are dropped).
pub(super) const MAX_CEREMONIES: usize = 16;

/// A WebAuthn ceremony waiting for the authenticator's answer.
pub(super) enum Ceremony {
    Register(keyward_core::fido2::PendingRegistration),
    Authenticate(keyward_core::fido2::PendingAuthentication),
}

pub(super) fn expired() -> ErrorReply {
    err(
        ErrorCode::Invalid,
        "the security-key challenge expired or was already used: start again",
    )
}

pub(super) fn hex(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}

pub(super) fn unhex(s: &WireSecret) -> Result<Vec<u8>, ErrorReply> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.expose().as_bytes())
        .map_err(|_| err(ErrorCode::BadRequest, "hmac_output must be hex"))
}

impl Agent {
    /// The enrolled factors, without their secrets.
    pub(super) async fn list_factors(self: &Arc<Self>) -> Outcome {
        self.blocking(move |a| {
            let factors = a.with_vault(|v| v.factors()).map_err(vault_err)?;
            Ok(Reply::Factors { factors })
        })
        .await
    }

    /// Enrolls another authenticator app (needs the passphrase).
    pub(super) async fn factor_add_totp(
        self: &Arc<Self>,
        passphrase: WireSecret,
        totp_secret: WireSecret,
        totp_code: WireSecret,
        label: String,
        actor: Actor,
    ) -> Outcome {
        self.blocking(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            let totp = TotpSetup::from_base32(totp_secret.expose(), &label)
                .map_err(|e| vault_err(e.into()))?;
            let pass = SecretString::from(passphrase.expose().to_owned());
            let info = a
                .with_vault(|v| {
                    v.enroll_totp(&key, &pass, &totp, totp_code.expose(), &label, &actor)
                })
                .map_err(vault_err)?;
            Ok(Reply::Factors {
                factors: vec![info],
            })
        })
        .await
    }

    /// Replaces the recovery codes (needs the passphrase); the new ones are shown once.
    pub(super) async fn recovery_regenerate(
        self: &Arc<Self>,
        passphrase: WireSecret,
        actor: Actor,
    ) -> Outcome {
        self.blocking(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            let pass = SecretString::from(passphrase.expose().to_owned());
            let codes = a
                .with_vault(|v| v.regenerate_recovery_codes(&key, &pass, &actor))
                .map_err(vault_err)?;
            Ok(Reply::RecoveryCodes {
                codes: codes
                    .iter()
                    .map(|c| WireSecret::new(c.expose_secret().to_owned()))
                    .collect(),
            })
        })
        .await
    }

    /// Starts enrolling a security key: the WebAuthn challenge and the hmac-secret salt.
    pub(super) async fn fido2_register_begin(self: &Arc<Self>) -> Outcome {
        self.blocking(move |a| {
            if !a.is_unlocked() {
                return Err(vault_err(VaultError::Locked));
            }
            let (challenge, pending) = a
                .with_vault(|v| v.fido2_register_begin())
                .map_err(vault_err)?;
            let salt = hex(&pending.hmac_salt);
            let challenge = serde_json::to_value(&challenge)
                .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
            let ceremony = a.remember(Ceremony::Register(pending));
            Ok(Reply::Fido2Challenge(Fido2Challenge {
                ceremony,
                challenge,
                salts: vec![(String::new(), salt)],
            }))
        })
        .await
    }

    /// Checks the security key's attestation and binds its hmac-secret output into a new slot.
    pub(super) async fn fido2_register_finish(
        self: &Arc<Self>,
        ceremony: String,
        passphrase: WireSecret,
        response: serde_json::Value,
        hmac_output: WireSecret,
        label: String,
        actor: Actor,
    ) -> Outcome {
        self.blocking(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            let Some(Ceremony::Register(pending)) = a.take_ceremony(&ceremony) else {
                return Err(expired());
            };
            let response: keyward_core::fido2::webauthn::RegisterPublicKeyCredential =
                serde_json::from_value(response).map_err(|e| {
                    err(
                        ErrorCode::BadRequest,
                        format!("malformed registration: {e}"),
                    )
                })?;
            let out = unhex(&hmac_output)?;
            let pass = SecretString::from(passphrase.expose().to_owned());
            let info = a
                .with_vault(|v| {
                    v.enroll_fido2(&key, &pass, &pending, &response, &out, &label, &actor)
                })
                .map_err(vault_err)?;
            Ok(Reply::Factors {
                factors: vec![info],
            })
        })
        .await
    }

    /// Starts a security-key unlock: the challenge and each enrolled key's salt.
    pub(super) async fn fido2_unlock_begin(self: &Arc<Self>) -> Outcome {
        self.blocking(move |a| {
            let keyward_core::fido2::UnlockChallenge {
                challenge,
                pending,
                salts,
            } = a
                .with_vault(|v| v.fido2_unlock_begin())
                .map_err(vault_err)?;
            let challenge = serde_json::to_value(&challenge)
                .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
            let ceremony = a.remember(Ceremony::Authenticate(pending));
            Ok(Reply::Fido2Challenge(Fido2Challenge {
                ceremony,
                challenge,
                salts,
            }))
        })
        .await
    }

    /// Removes a factor (never the last authenticator app).
    pub(super) async fn factor_remove(self: &Arc<Self>, id: String, actor: Actor) -> Outcome {
        self.blocking(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            a.with_vault(|v| v.remove_factor(&id, &key, &actor))
                .map_err(vault_err)?;
            Ok(Reply::Done)
        })
        .await
    }

    /// Checks a current code for a window, which makes its factor fresh for Reveal and Copy.
    pub(super) async fn confirm_factor(
        self: &Arc<Self>,
        token: WireSecret,
        code: WireSecret,
        actor: Actor,
    ) -> Outcome {
        if !self.is_trusted_window(&actor, Some(&token)) {
            return Err(err(
                        ErrorCode::Forbidden,
                        "only a Keyward window the vault was unlocked in (or that Keyward opened) can confirm a code",
                    ));
        }
        self.blocking(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            a.with_vault(|v| v.check_code(&key, code.expose(), "reveal", &actor))
                .map_err(vault_err)?;
            a.desktop.mark_fresh(&token);
            Ok(Reply::Done)
        })
        .await
    }

    /// Keeps a pending ceremony and returns its id; expired and surplus ones are dropped.
    pub(super) fn remember(&self, c: Ceremony) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut map = match self.ceremonies.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.retain(|_, (t, _)| t.elapsed() < CEREMONY_TTL);
        while map.len() >= MAX_CEREMONIES {
            let oldest = map
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(id.clone(), (Instant::now(), c));
        id
    }

    /// Takes a pending ceremony (each answers once) if it has not expired.
    pub(super) fn take_ceremony(&self, id: &str) -> Option<Ceremony> {
        let mut map = match self.ceremonies.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.remove(id)
            .filter(|(t, _)| t.elapsed() < CEREMONY_TTL)
            .map(|(_, c)| c)
    }
}
