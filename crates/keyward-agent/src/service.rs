//! The agent's state and request handling: the only place an unlocked vault key lives.
//!
//! Blocking work (SQLite, the keychain's D-Bus calls, the KDF) runs on tokio's blocking pool; the
//! vault sits behind a std mutex because a SQLite connection is not shareable across threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use keyward_core::audit::{Actor, AuditEvent};
use keyward_core::catalog::KeystoreKind;
use keyward_core::entry::{EntryError, EntryKind};
use keyward_core::factors::TotpSetup;
use keyward_core::kdf::KdfParams;
use keyward_core::vault::{CreateOptions, EntryEdit, ReconcileNote, SecondFactor};
use keyward_core::{
    AwsConfig, EntryConfig, EntryMeta, OAuth2Config, SecretValue, UnlockedKey, Vault, VaultError,
};
use secrecy::{ExposeSecret, SecretString};
use tracing::{info, warn};

use crate::approvals::{
    client_of, client_process, Answerer, Approvals, ClientId, Decision, APPROVAL_WAIT,
};
use crate::aws::{self, AwsCache, AwsError};
use crate::desktop::Desktop;
use crate::oauth::{self, OAuthCache};
use crate::protocol::{
    AwsCredentials, ErrorCode, ErrorReply, FactorInput, KeystoreChoice, MetaInput, NewSecret,
    OAuth2Token, Reply, Request, StatusInfo, WindowState, WireSecret,
};

/// Default idle time before the vault locks itself.
pub const DEFAULT_AUTO_LOCK: Duration = Duration::from_secs(15 * 60);
/// How long a FIDO2 challenge stays valid.
const CEREMONY_TTL: Duration = Duration::from_secs(120);
/// Most FIDO2 ceremonies pending at once (older ones are dropped).
const MAX_CEREMONIES: usize = 16;

/// A WebAuthn ceremony waiting for the authenticator's answer.
enum Ceremony {
    Register(keyward_core::fido2::PendingRegistration),
    Authenticate(keyward_core::fido2::PendingAuthentication),
}

fn denied(client: &ClientId, profile: &str) -> ErrorReply {
    err(
        ErrorCode::Denied,
        format!("you denied {client} credentials for profile {profile:?}"),
    )
}

/// Whether the peer is this Keyward installation's own executable (the CLI the agent runs
/// from), by path: only it may answer approvals or give grants over the socket.
fn is_keyward_binary(actor: &Actor) -> bool {
    actor
        .chain
        .first()
        .and_then(|p| p.exe.as_deref())
        .is_some_and(crate::approvals::is_own_exe)
}

/// Default STS session duration for new AWS entries.
const DEFAULT_SESSION_SECS: u32 = 3600;

/// The agent: vault, unlocked key, caches.
pub struct Agent {
    vault: Arc<Mutex<Vault>>,
    /// Held through a whole unlock attempt, so attempts run one at a time (each sees the
    /// failures counted before it) while the vault itself stays free for other requests
    /// during the seconds of Argon2id.
    unlocking: Mutex<()>,
    issues: std::sync::mpsc::Sender<IssueRecord>,
    key: RwLock<Option<Arc<UnlockedKey>>>,
    last_activity: Mutex<Instant>,
    /// Idle time before auto-lock (changed at run time from Settings).
    auto_lock_ms: AtomicU64,
    aws: AwsCache,
    oauth: OAuthCache,
    /// The HTTPS client for authorization servers, made at the first OAuth2 request.
    oauth_http: std::sync::OnceLock<reqwest::Client>,
    reconciled: Vec<ReconcileNote>,
    ceremonies: Mutex<HashMap<String, (Instant, Ceremony)>>,
    /// Which programs may have credentials (cleared on lock).
    pub approvals: Approvals,
    /// Signalled when a client asks the agent to stop.
    pub shutdown: tokio::sync::Notify,
    /// The desktop app this agent serves, if any, and its window.
    pub desktop: Desktop,
}

type Outcome = Result<Reply, ErrorReply>;

fn err(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        code,
        message: message.into(),
    }
}

/// Maps a vault error to the wire, keeping the core's actionable message.
pub fn vault_err(e: VaultError) -> ErrorReply {
    use keyward_core::keystore::KeystoreError;
    let code = match &e {
        VaultError::NoVault => ErrorCode::NoVault,
        VaultError::Locked => ErrorCode::Locked,
        VaultError::WrongCredentials { .. }
        | VaultError::WrongCode { .. }
        | VaultError::CodeReused
        | VaultError::CodeMismatch => ErrorCode::WrongCredentials,
        VaultError::Throttled(_) => ErrorCode::Throttled,
        VaultError::NotFound(_) => ErrorCode::NotFound,
        VaultError::Entry(_)
        | VaultError::Factor(_)
        | VaultError::WrongKind { .. }
        | VaultError::AlreadyExists(_)
        | VaultError::NoSuchFactor(_)
        | VaultError::LastFactor => ErrorCode::Invalid,
        VaultError::Catalog(keyward_core::catalog::CatalogError::Duplicate(_)) => {
            ErrorCode::Invalid
        }
        VaultError::Keystore(KeystoreError::Catalog(_)) => ErrorCode::Internal,
        VaultError::Keystore(_) | VaultError::DeviceSecretMissing => ErrorCode::Keystore,
        VaultError::Audit(_) => ErrorCode::Audit,
        VaultError::HeaderTampered(_) | VaultError::SettingsTampered { .. } => ErrorCode::Tampered,
        VaultError::Unsealed(_) => ErrorCode::Invalid,
        VaultError::RecipientUnverified => ErrorCode::Locked,
        _ => ErrorCode::Internal,
    };
    err(code, e.to_string())
}

impl Agent {
    /// Opens the vault, reconciles the two stores, and starts locked.
    /// `auto_lock` given (command line) wins over the vault's setting for this run.
    pub fn new(vault: Vault, auto_lock: Option<Duration>) -> Result<Self, VaultError> {
        let mut vault = vault;
        let auto_lock = match auto_lock {
            Some(d) => d,
            None => vault
                .auto_lock_setting()
                .unwrap_or_else(|e| {
                    warn!("cannot read the auto-lock setting, using the default: {e}");
                    None
                })
                .unwrap_or(crate::DEFAULT_AUTO_LOCK),
        };
        let reconciled = match vault.reconcile(&crate::peer::this_process()) {
            Ok(notes) => notes,
            // An unreachable keychain must not keep the agent from starting and saying so.
            Err(VaultError::Keystore(e)) => {
                warn!("could not reconcile with the keychain at start-up: {e}");
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        for n in &reconciled {
            info!(entry = %n.name, "start-up reconciliation: {}", n.action);
        }
        let vault = Arc::new(Mutex::new(vault));
        let (issues, rx) = std::sync::mpsc::channel();
        {
            let vault = Arc::clone(&vault);
            std::thread::Builder::new()
                .name("keyward-audit".into())
                .spawn(move || issue_writer(&vault, &rx))
                .map_err(|e| {
                    VaultError::BadHeader(format!("cannot start the audit writer thread: {e}"))
                })?;
        }
        Ok(Agent {
            vault,
            unlocking: Mutex::new(()),
            issues,
            key: RwLock::new(None),
            last_activity: Mutex::new(Instant::now()),
            auto_lock_ms: AtomicU64::new(auto_lock.as_millis().try_into().unwrap_or(u64::MAX)),
            aws: AwsCache::default(),
            oauth: OAuthCache::default(),
            oauth_http: std::sync::OnceLock::new(),
            reconciled,
            ceremonies: Mutex::new(HashMap::new()),
            approvals: Approvals::default(),
            shutdown: tokio::sync::Notify::new(),
            desktop: Desktop::default(),
        })
    }

    fn with_vault<T>(&self, f: impl FnOnce(&mut Vault) -> T) -> T {
        lock_vault(&self.vault, f)
    }

    fn current_key(&self) -> Option<Arc<UnlockedKey>> {
        match self.key.read() {
            Ok(k) => k.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn touch(&self) {
        if let Ok(mut t) = self.last_activity.lock() {
            *t = Instant::now();
        }
    }

    fn idle_for(&self) -> Duration {
        self.last_activity
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    fn auto_lock(&self) -> Duration {
        Duration::from_millis(self.auto_lock_ms.load(Ordering::Relaxed))
    }

    /// Whether the vault is unlocked.
    pub fn is_unlocked(&self) -> bool {
        self.current_key().is_some()
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

    /// Handles one request from `actor`.
    pub async fn handle(self: &Arc<Self>, req: Request, actor: Actor) -> Outcome {
        // Polls and status checks are not the user's activity: they must not hold off auto-lock.
        if !matches!(
            req,
            Request::Ping {} | Request::Status {} | Request::Window { .. }
        ) {
            self.touch();
        }
        match req {
            Request::Ping {} => Ok(Reply::Pong {
                pid: std::process::id(),
            }),
            Request::Status {} => self.blocking(move |a| a.status(&actor)).await,
            Request::Init {
                passphrase,
                totp_secret,
                totp_code,
                keystore,
                kdf,
                unlock,
                window,
            } => {
                self.blocking(move |a| {
                    let (mut reply, key) =
                        a.init(passphrase, totp_secret, totp_code, keystore, kdf, &actor)?;
                    if unlock {
                        a.set_key(key);
                        a.audited(&actor, "unlock", None, "ok")?;
                        if let Reply::Initialized { window_token, .. } = &mut reply {
                            *window_token = a.window_token(window, &actor);
                        }
                    }
                    Ok(reply)
                })
                .await
            }
            Request::Unlock {
                passphrase,
                factor,
                window,
            } => {
                self.blocking(move |a| {
                    let mut reply = a.unlock(passphrase, factor, &actor)?;
                    if let Reply::Unlocked { window_token, .. } = &mut reply {
                        *window_token = a.window_token(window, &actor);
                    }
                    Ok(reply)
                })
                .await
            }
            Request::Lock {} => {
                self.lock(&actor, "requested");
                Ok(Reply::Done)
            }
            Request::AddAws { name, meta, aws } => {
                self.blocking(move |a| {
                    let cfg = AwsConfig {
                        access_key_hint: String::new(),
                        role_arn: aws.role_arn,
                        mfa_serial: aws.mfa_serial,
                        region: aws.region,
                        session_duration_secs: aws
                            .session_duration_secs
                            .unwrap_or(DEFAULT_SESSION_SECS),
                        sts_endpoint: aws.sts_endpoint,
                    };
                    let secret = SecretValue::Aws {
                        access_key_id: aws.access_key_id,
                        secret_access_key: SecretString::from(
                            aws.secret_access_key.expose().to_owned(),
                        ),
                    };
                    let config = EntryConfig {
                        aws: Some(cfg),
                        ..Default::default()
                    };
                    a.add(name, EntryKind::Aws, meta, config, secret, &actor)
                })
                .await
            }
            Request::AddStatic { name, meta, value } => {
                self.blocking(move |a| {
                    let secret = SecretValue::Static {
                        value: SecretString::from(value.expose().to_owned()),
                    };
                    a.add(
                        name,
                        EntryKind::Static,
                        meta,
                        EntryConfig::default(),
                        secret,
                        &actor,
                    )
                })
                .await
            }
            Request::AddOauth2 { name, meta, oauth2 } => {
                self.blocking(move |a| {
                    let config = EntryConfig {
                        oauth2: Some(OAuth2Config {
                            client_id: oauth2.client_id,
                            token_url: oauth2.token_url,
                            scopes: oauth2.scopes,
                            auth: oauth2.auth.unwrap_or_default(),
                            introspection_url: oauth2.introspection_url,
                        }),
                        ..Default::default()
                    };
                    let secret = SecretValue::OAuth2 {
                        client_secret: SecretString::from(oauth2.client_secret.expose().to_owned()),
                    };
                    a.add(name, EntryKind::OAuth2, meta, config, secret, &actor)
                })
                .await
            }
            Request::List {} => {
                self.blocking(move |a| {
                    let entries = a.with_vault(|v| v.list()).map_err(vault_err)?;
                    a.audited(&actor, "list", None, "ok")?;
                    Ok(Reply::Entries { entries })
                })
                .await
            }
            Request::Show { name } => {
                self.blocking(move |a| {
                    let entry = a.with_vault(|v| v.get(&name)).map_err(vault_err)?;
                    a.audited(&actor, "show", Some(name), "ok")?;
                    Ok(Reply::Entry {
                        entry: Box::new(entry),
                    })
                })
                .await
            }
            Request::Remove { name } => {
                self.blocking(move |a| {
                    a.with_vault(|v| v.remove_entry(&name, &actor))
                        .map_err(vault_err)?;
                    a.clear_caches();
                    Ok(Reply::Done)
                })
                .await
            }
            Request::Update { name, meta } => {
                self.blocking(move |a| {
                    validate_meta(&meta)?;
                    let edit = EntryEdit {
                        owner: meta.owner,
                        purpose: meta.purpose,
                        tags: meta.tags,
                        rotation_interval_days: meta.rotation_interval_days,
                        expires: meta.expires,
                    };
                    let entry = a
                        .with_vault(|v| v.update_entry(&name, edit, &actor))
                        .map_err(vault_err)?;
                    Ok(Reply::Entry {
                        entry: Box::new(entry),
                    })
                })
                .await
            }
            Request::Rotate { name, secret } => {
                self.blocking(move |a| {
                    let secret = match secret {
                        NewSecret::Aws {
                            access_key_id,
                            secret_access_key,
                        } => SecretValue::Aws {
                            access_key_id,
                            secret_access_key: SecretString::from(
                                secret_access_key.expose().to_owned(),
                            ),
                        },
                        NewSecret::Static { value } => SecretValue::Static {
                            value: SecretString::from(value.expose().to_owned()),
                        },
                        NewSecret::Oauth2 { client_secret } => SecretValue::OAuth2 {
                            client_secret: SecretString::from(client_secret.expose().to_owned()),
                        },
                    };
                    let key = a
                        .current_key()
                        .ok_or_else(|| vault_err(VaultError::Locked))?;
                    let entry = a
                        .with_vault(|v| v.replace_secret(&name, &secret, &key, &actor))
                        .map_err(vault_err)?;
                    // Sessions cached from the old key would outlive the rotation.
                    a.clear_caches();
                    Ok(Reply::Entry {
                        entry: Box::new(entry),
                    })
                })
                .await
            }
            Request::History { name, limit } => {
                self.blocking(move |a| {
                    let rows = a
                        .with_vault(|v| v.history(&name, limit.min(10_000)))
                        .map_err(vault_err)?;
                    a.audited(&actor, "history", Some(name), "ok")?;
                    Ok(Reply::Audit { rows })
                })
                .await
            }
            Request::CredAws {
                profile,
                mfa_code,
                approval,
            } => {
                self.cred_aws(profile, mfa_code, approval, actor, true)
                    .await
            }
            Request::CredOauth2 { profile, approval } => {
                self.cred_oauth2(profile, approval, actor, true).await
            }
            Request::TestKey {
                name,
                mfa_code,
                approval,
                token,
            } => {
                // The window passes the gate with its token, as it answers approvals with it.
                let gated = !self.is_trusted_window(&actor, token.as_ref());
                self.test_key(name, mfa_code, approval, gated, actor).await
            }
            Request::Approve {
                id,
                decision,
                token,
                code,
            } => {
                let by = if self.is_trusted_window(&actor, token.as_ref()) {
                    Answerer::App
                } else if let (true, Some(pid)) = (is_keyward_binary(&actor), actor.pid) {
                    Answerer::Process(pid)
                } else {
                    return Err(err(
                        ErrorCode::Forbidden,
                        "approvals are answered in the Keyward app or at the terminal of the keyward command that asked",
                    ));
                };
                self.blocking(move |a| {
                    a.check_standing_code(decision, code.as_ref(), &actor)?;
                    a.decide_approval(&id, decision, by, &actor)
                })
                .await
            }
            Request::SetGrantsNeedCode { on, code } => {
                self.blocking(move |a| {
                    let key = a
                        .current_key()
                        .ok_or_else(|| vault_err(VaultError::Locked))?;
                    if !on {
                        // Lifting it is what a program running as the user would want to do.
                        let Some(code) = code else {
                            return Err(err(
                                ErrorCode::FactorNeeded,
                                "turning this off needs a current code from your authenticator app",
                            ));
                        };
                        a.with_vault(|v| {
                            v.check_code(&key, code.expose(), "settings.grants_need_code", &actor)
                        })
                        .map_err(vault_err)?;
                    }
                    a.with_vault(|v| v.set_grants_need_code(&key, on, &actor))
                        .map_err(vault_err)?;
                    a.approvals.set_standing_needs_code(on);
                    Ok(Reply::Done)
                })
                .await
            }
            Request::Grants {} => Ok(Reply::Grants {
                grants: self.approvals.list(),
            }),
            Request::GrantRevoke { id } => {
                self.blocking(move |a| {
                    let g = a
                        .approvals
                        .revoke(&id)
                        .map_err(|e| err(ErrorCode::NotFound, e.to_string()))?;
                    a.audited_with(
                        &actor,
                        "grant.revoke",
                        Some(g.profile),
                        "ok",
                        serde_json::json!({ "client": g.client }),
                    )?;
                    Ok(Reply::Done)
                })
                .await
            }
            Request::GrantAllow {
                client,
                profile,
                hours,
                code,
            } => {
                if !is_keyward_binary(&actor) {
                    return Err(err(
                        ErrorCode::Forbidden,
                        "grants are given in the Keyward app or with the keyward command",
                    ));
                }
                self.blocking(move |a| {
                    let key = a
                        .current_key()
                        .ok_or_else(|| vault_err(VaultError::Locked))?;
                    a.with_vault(|v| v.get(&profile)).map_err(vault_err)?;
                    let Some(code) = code else {
                        return Err(err(
                            ErrorCode::Invalid,
                            "a standing grant needs a current code from your authenticator app",
                        ));
                    };
                    a.with_vault(|v| v.check_code(&key, code.expose(), "grant.allow", &actor))
                        .map_err(vault_err)?;
                    let g = a
                        .approvals
                        .allow(client, &profile, hours)
                        .map_err(|e| err(ErrorCode::Invalid, e.to_string()))?;
                    a.audited_with(
                        &actor,
                        "grant.allow",
                        Some(profile),
                        "ok",
                        serde_json::json!({ "client": g.client, "expires": g.expires }),
                    )?;
                    Ok(Reply::Grants { grants: vec![g] })
                })
                .await
            }
            Request::Factors {} => {
                self.blocking(move |a| {
                    let factors = a.with_vault(|v| v.factors()).map_err(vault_err)?;
                    a.audited(&actor, "factors", None, "ok")?;
                    Ok(Reply::Factors { factors })
                })
                .await
            }
            Request::FactorAddTotp {
                passphrase,
                totp_secret,
                totp_code,
                label,
            } => {
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
            Request::RecoveryRegenerate { passphrase } => {
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
            Request::SetAutoLock { secs } => {
                self.blocking(move |a| {
                    if !a.is_unlocked() {
                        return Err(vault_err(VaultError::Locked));
                    }
                    let after = Duration::from_secs(secs);
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
            Request::Fido2RegisterBegin {} => {
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
                    Ok(Reply::Fido2Challenge {
                        ceremony,
                        challenge,
                        salts: vec![(String::new(), salt)],
                    })
                })
                .await
            }
            Request::Fido2RegisterFinish {
                ceremony,
                passphrase,
                response,
                hmac_output,
                label,
            } => {
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
            Request::Fido2UnlockBegin {} => {
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
                    Ok(Reply::Fido2Challenge {
                        ceremony,
                        challenge,
                        salts,
                    })
                })
                .await
            }
            Request::FactorRemove { id } => {
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
            Request::AuditVerify {} => {
                self.blocking(move |a| {
                    let rows = a
                        .with_vault(|v| v.verify_audit())
                        .map_err(|e| err(ErrorCode::Audit, e.to_string()))?;
                    a.audited(&actor, "audit.verify", None, "ok")?;
                    Ok(Reply::AuditVerified { rows })
                })
                .await
            }
            Request::AuditTail { limit } => {
                self.blocking(move |a| {
                    let rows = a
                        .with_vault(|v| v.catalog().audit_rows(Some(limit.min(10_000))))
                        .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
                    // Recorded after the read, so the rows shown are the ones before this request.
                    a.audited(&actor, "audit.tail", None, "ok")?;
                    Ok(Reply::Audit { rows })
                })
                .await
            }
            Request::Reveal { name, token } => {
                if !self.desktop.is_app(&actor) {
                    return Err(err(
                        ErrorCode::Forbidden,
                        "secrets are revealed only in the Keyward app, and only when you click Reveal",
                    ));
                }
                if !self.is_trusted_window(&actor, Some(&token)) {
                    return Err(err(
                        ErrorCode::Forbidden,
                        "this window was not unlocked: lock Keyward and unlock it in this window (or open Keyward from its tray icon) to reveal or copy a key",
                    ));
                }
                // The window's token proves which window asks, not that the user is at it.
                if !self.desktop.is_fresh(&token) {
                    return Err(err(
                        ErrorCode::FactorNeeded,
                        "enter a current code from your authenticator app to reveal or copy a stored key",
                    ));
                }
                let secret = self.reveal_secret(name, actor).await?;
                Ok(Reply::Revealed {
                    secret: WireSecret::new(secret.expose_secret().to_owned()),
                })
            }
            Request::ConfirmFactor { token, code } => {
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
            Request::Window { closed, token } => {
                if !self.desktop.is_app(&actor) {
                    return Err(err(
                        ErrorCode::Forbidden,
                        "only the Keyward app this agent serves may open its window",
                    ));
                }
                let focus = if closed {
                    self.desktop.closed();
                    if let Some(t) = &token {
                        self.desktop.revoke_token(t);
                    }
                    false
                } else {
                    self.desktop.polled()
                };
                Ok(Reply::Window(WindowState {
                    locked: !self.is_unlocked(),
                    approvals: self.approvals.pending(),
                    focus,
                }))
            }
            Request::OpenWindow {} => {
                if self.desktop.app().is_none() {
                    return Err(err(
                        ErrorCode::Invalid,
                        "this Keyward agent runs without the desktop app: stop it (`keyward agent stop`) and start Keyward again",
                    ));
                }
                // A window opened while unlocked gets a window token: who asked is on record.
                self.blocking(move |a| {
                    a.audited(&actor, "window.open", None, "ok")
                        .map(|()| Reply::Done)
                })
                .await?;
                self.desktop.request_open();
                Ok(Reply::Done)
            }
            Request::Shutdown {} => {
                // Recorded with the caller: stopping the agent is how another would replace it.
                // Best effort: an agent must stop even when its audit cannot be written.
                let a = actor.clone();
                if let Err(e) = self
                    .blocking(move |me| {
                        me.audited(&a, "shutdown", None, "ok").map(|()| Reply::Done)
                    })
                    .await
                {
                    warn!("shutdown was not audited: {}", e.message);
                }
                self.lock(&actor, "shutdown");
                self.shutdown.notify_one();
                Ok(Reply::Done)
            }
        }
    }

    async fn blocking(
        self: &Arc<Self>,
        f: impl FnOnce(&Agent) -> Outcome + Send + 'static,
    ) -> Outcome {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .unwrap_or_else(|_| Err(err(ErrorCode::Internal, "internal error (task failed)")))
    }

    /// Writes one audit row; a failure refuses the operation (fail closed).
    fn audited(
        &self,
        actor: &Actor,
        action: &'static str,
        target: Option<String>,
        outcome: &'static str,
    ) -> Result<(), ErrorReply> {
        self.audited_with(actor, action, target, outcome, serde_json::json!({}))
    }

    /// Writes one audit row with details.
    fn audited_with(
        &self,
        actor: &Actor,
        action: &'static str,
        target: Option<String>,
        outcome: &'static str,
        detail: serde_json::Value,
    ) -> Result<(), ErrorReply> {
        self.with_vault(|v| {
            v.audit(&[(
                actor.clone(),
                AuditEvent {
                    action,
                    target,
                    outcome,
                    detail,
                },
            )])
        })
        .map_err(vault_err)
    }

    /// The secret of entry `name`, for the desktop app's Reveal and Copy only (the `reveal`
    /// request is refused to every other program), audited.
    pub async fn reveal_secret(
        self: &Arc<Self>,
        name: String,
        actor: Actor,
    ) -> Result<SecretString, ErrorReply> {
        self.touch();
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let key = me
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            let meta = me.with_vault(|v| v.get(&name)).map_err(vault_err)?;
            let secret = me
                .with_vault(|v| v.read_secret(&key, &meta))
                .map_err(vault_err)?;
            me.audited(&actor, "reveal", Some(name), "ok")?;
            Ok(match secret {
                SecretValue::Aws {
                    secret_access_key, ..
                } => secret_access_key,
                SecretValue::Static { value } => value,
                SecretValue::OAuth2 { client_secret } => client_secret,
            })
        })
        .await
        .map_err(|_| err(ErrorCode::Internal, "internal error (task failed)"))?
    }

    /// When the vault's setting says so, an allow for hours or until lock comes with a current
    /// authenticator code (checked once, throttled, audited); a header edited since the unlock
    /// refuses every standing grant.
    pub fn check_standing_code(
        &self,
        decision: Decision,
        code: Option<&WireSecret>,
        actor: &Actor,
    ) -> Result<(), ErrorReply> {
        if !matches!(decision, Decision::Hours(_) | Decision::UntilLock) {
            return Ok(());
        }
        let key = self
            .current_key()
            .ok_or_else(|| vault_err(VaultError::Locked))?;
        let needed = self
            .with_vault(|v| v.grants_need_code(&key))
            .map_err(vault_err)?;
        if !needed {
            return Ok(());
        }
        let Some(code) = code else {
            return Err(err(
                ErrorCode::FactorNeeded,
                "allowing a program for hours or until lock needs a current code from your authenticator app (the vault's setting); allow it once instead, or give the code",
            ));
        };
        self.with_vault(|v| v.check_code(&key, code.expose(), "grant", actor))
            .map_err(vault_err)
    }

    /// Records the user's answer to approval request `id` (from the app, in-process, or from
    /// the keyward CLI's terminal).
    pub fn decide_approval(
        &self,
        id: &str,
        decision: Decision,
        by: Answerer,
        actor: &Actor,
    ) -> Outcome {
        let info = self
            .approvals
            .decide(id, decision, by)
            .map_err(|e| err(ErrorCode::Invalid, e.to_string()))?;
        self.audited_with(
            actor,
            "approval",
            Some(info.profile),
            decision.outcome(),
            serde_json::json!({ "client": info.client, "decision": decision }),
        )?;
        Ok(Reply::Done)
    }

    /// Lets the request through if its program may have `profile`'s credentials; otherwise
    /// asks the embedded approver and waits, or returns what the CLI must ask on its terminal.
    async fn gate(
        self: &Arc<Self>,
        actor: &Actor,
        profile: &str,
        kind: EntryKind,
        ttl_secs: Option<u64>,
        approval: Option<&str>,
        gated: bool,
    ) -> Result<Option<Reply>, ErrorReply> {
        // The app's own requests (in-process) are the user's own clicks.
        if !gated || actor.chain.first().map(|p| p.pid) == Some(std::process::id() as i32) {
            return Ok(None);
        }
        let Some(proc_) = client_process(actor) else {
            return Err(err(
                ErrorCode::Denied,
                "cannot tell which program is asking (its executable is unreadable), so it cannot be approved",
            ));
        };
        // A program whose name does not say which code it runs holds no standing grant.
        if let (Some(exe), None) = (proc_.exe.as_deref(), &proc_.unvouched) {
            if self
                .approvals
                .granted_to(exe, proc_.script.as_deref(), profile)
            {
                return Ok(None);
            }
        }
        let Some(client) = client_of(actor) else {
            return Err(err(ErrorCode::Internal, "client identity changed"));
        };
        if let Some(id) = approval {
            match self.approvals.take_decision(id, &client, profile) {
                Some(Decision::Deny) => return Err(denied(&client, profile)),
                Some(_) => return Ok(None),
                None => {}
            }
        }
        let (info, decided) = self
            .approvals
            .ask(
                client.clone(),
                actor.chain.clone(),
                profile,
                kind,
                ttl_secs,
                actor.pid,
            )
            .map_err(|e| err(ErrorCode::Denied, e.to_string()))?;
        {
            let me = Arc::clone(self);
            let a = actor.clone();
            let target = Some(profile.to_owned());
            let detail = serde_json::json!({ "client": client, "ttl_secs": ttl_secs });
            tokio::task::spawn_blocking(move || {
                me.audited_with(&a, "approval", target, "asked", detail)
            })
            .await
            .map_err(|_| err(ErrorCode::Internal, "internal error (task failed)"))??;
        }
        if !self.approvals.has_approver() {
            return Ok(Some(Reply::ApprovalNeeded { approval: info }));
        }
        let _ = tokio::time::timeout(APPROVAL_WAIT, decided.notified()).await;
        match self.approvals.take_decision(&info.id, &client, profile) {
            Some(Decision::Deny) => Err(denied(&client, profile)),
            Some(_) => Ok(None),
            None => {
                self.approvals.expire(&info.id);
                let me = Arc::clone(self);
                let a = actor.clone();
                let target = Some(profile.to_owned());
                let detail = serde_json::json!({ "client": client });
                let _ = tokio::task::spawn_blocking(move || {
                    me.audited_with(&a, "approval", target, "expired", detail)
                })
                .await;
                Err(err(
                    ErrorCode::Denied,
                    format!("nobody approved {client} for profile {profile:?} in time"),
                ))
            }
        }
    }

    /// Keeps a pending ceremony and returns its id; expired and surplus ones are dropped.
    fn remember(&self, c: Ceremony) -> String {
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
    fn take_ceremony(&self, id: &str) -> Option<Ceremony> {
        let mut map = match self.ceremonies.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.remove(id)
            .filter(|(t, _)| t.elapsed() < CEREMONY_TTL)
            .map(|(_, c)| c)
    }

    fn status(&self, actor: &Actor) -> Outcome {
        let unlocked = self.is_unlocked();
        let (vault, keystore, entries, wait, catalog) = self.with_vault(|v| {
            let exists = v.exists().unwrap_or(false);
            let keystore = v.keystore().ok().map(|k| match k.kind() {
                KeystoreKind::Keychain => "keychain".to_owned(),
                KeystoreKind::File => "file".to_owned(),
            });
            let entries = v.list().map(|l| l.len()).unwrap_or(0);
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
        self.audited(actor, "status", None, "ok")?;
        Ok(Reply::Status(StatusInfo {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            agent_pid: std::process::id(),
            vault,
            locked: !unlocked,
            keystore,
            entries,
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
        }))
    }

    fn init(
        &self,
        passphrase: WireSecret,
        totp_secret: WireSecret,
        totp_code: WireSecret,
        keystore: KeystoreChoice,
        kdf: Option<crate::protocol::KdfChoice>,
        actor: &Actor,
    ) -> Result<(Reply, UnlockedKey), ErrorReply> {
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
        let reply = Reply::Initialized {
            recovery_codes: created
                .recovery_codes
                .iter()
                .map(|c| WireSecret::new(c.expose_secret().to_owned()))
                .collect(),
            kdf_memory_mib: kdf.memory_kib / 1024,
            kdf_iterations: kdf.iterations,
            window_token: None,
        };
        Ok((reply, created.key))
    }

    fn unlock(&self, passphrase: WireSecret, factor: FactorInput, actor: &Actor) -> Outcome {
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
        Ok(Reply::Unlocked {
            recovery_codes_left: unlocked.recovery_codes_left,
            auto_lock_secs: self.auto_lock().as_secs(),
            window_token: None,
        })
    }

    /// A window token for the app's window the vault was just unlocked through; none for any
    /// other program, or when the window did not ask.
    fn window_token(&self, asked: bool, actor: &Actor) -> Option<WireSecret> {
        (asked && self.desktop.is_app(actor)).then(|| self.desktop.issue_token(true))
    }

    /// Whether the request comes from the app's window and carries a live window token.
    fn is_trusted_window(&self, actor: &Actor, token: Option<&WireSecret>) -> bool {
        self.desktop.is_app(actor) && self.desktop.token_valid(token)
    }

    /// Holds `key` as the unlocked vault key.
    fn set_key(&self, key: UnlockedKey) {
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

    fn add(
        &self,
        name: String,
        kind: EntryKind,
        meta: MetaInput,
        config: EntryConfig,
        secret: SecretValue,
        actor: &Actor,
    ) -> Outcome {
        validate_meta(&meta)?;
        let entry = EntryMeta {
            id: String::new(),
            name,
            kind,
            owner: meta.owner,
            purpose: meta.purpose,
            tags: meta.tags,
            created: String::new(),
            rotated: None,
            rotation_interval_days: meta.rotation_interval_days,
            expires: meta.expires,
            last_used: None,
            use_count: 0,
            config,
        };
        let entry = self
            .with_vault(|v| v.add_entry(entry, &secret, actor))
            .map_err(vault_err)?;
        Ok(Reply::Entry {
            entry: Box::new(entry),
        })
    }

    /// Wipes every cached credential (lock, removal, rotation).
    fn clear_caches(&self) {
        self.aws.clear();
        self.oauth.clear();
    }

    /// The HTTPS client for authorization servers (one for the agent's life: it pools
    /// connections and reads the CA store once).
    fn oauth_http(&self) -> Result<&reqwest::Client, ErrorReply> {
        if let Some(c) = self.oauth_http.get() {
            return Ok(c);
        }
        let c = oauth::http_client().map_err(|e| err(ErrorCode::Internal, e))?;
        Ok(self.oauth_http.get_or_init(|| c))
    }

    /// Entry `name`'s metadata, read off the async threads.
    async fn entry(self: &Arc<Self>, name: &str) -> Result<EntryMeta, ErrorReply> {
        let me = Arc::clone(self);
        let n = name.to_owned();
        tokio::task::spawn_blocking(move || me.with_vault(|v| v.get(&n)))
            .await
            .map_err(|_| err(ErrorCode::Internal, "internal error (task failed)"))?
            .map_err(vault_err)
    }

    /// Entry `meta`'s decrypted secret, read off the async threads.
    async fn secret(
        self: &Arc<Self>,
        key: &Arc<UnlockedKey>,
        meta: &EntryMeta,
    ) -> Result<SecretValue, ErrorReply> {
        let me = Arc::clone(self);
        let m = meta.clone();
        let k = Arc::clone(key);
        tokio::task::spawn_blocking(move || me.with_vault(|v| v.read_secret(&k, &m)))
            .await
            .map_err(|_| err(ErrorCode::Internal, "internal error (task failed)"))?
            .map_err(vault_err)
    }

    /// `test_key`: issues a credential for `name` (as `cred_aws` / `cred_oauth2` would, cached
    /// the same way, behind the same approval gate) and reports only whose it is and until
    /// when. It is gated because issuing sends the long-lived secret to the key's endpoint.
    async fn test_key(
        self: &Arc<Self>,
        name: String,
        mfa_code: Option<WireSecret>,
        approval: Option<String>,
        gated: bool,
        actor: Actor,
    ) -> Outcome {
        let meta = self.entry(&name).await?;
        match (meta.kind, meta.config.aws, meta.config.oauth2) {
            (EntryKind::Aws, Some(cfg), _) => {
                let creds = match self
                    .cred_aws(name.clone(), mfa_code, approval, actor, gated)
                    .await?
                {
                    Reply::AwsCredentials(creds) => creds,
                    ask @ Reply::ApprovalNeeded { .. } => return Ok(ask),
                    _ => return Err(err(ErrorCode::Internal, "no credentials were issued")),
                };
                let identity = aws::caller_identity(&name, &cfg, &creds)
                    .await
                    .map_err(|e| err(ErrorCode::Upstream, e.to_string()))?;
                Ok(Reply::KeyTested {
                    kind: EntryKind::Aws,
                    identity,
                    expiration: Some(creds.expiration.clone()),
                    scope: None,
                })
            }
            (EntryKind::OAuth2, _, Some(cfg)) => {
                let token = match self
                    .cred_oauth2(name.clone(), approval, actor, gated)
                    .await?
                {
                    Reply::Oauth2Token(token) => token,
                    ask @ Reply::ApprovalNeeded { .. } => return Ok(ask),
                    _ => return Err(err(ErrorCode::Internal, "no token was issued")),
                };
                if cfg.introspection_url.is_none() {
                    return Ok(Reply::KeyTested {
                        kind: EntryKind::OAuth2,
                        identity: format!("client {} (no introspection URL to confirm it)", cfg.client_id),
                        expiration: token.expires_at.clone(),
                        scope: token.scope.clone(),
                    });
                }
                let key = self
                    .current_key()
                    .ok_or_else(|| vault_err(VaultError::Locked))?;
                let meta = self.entry(&name).await?;
                let SecretValue::OAuth2 { client_secret } = self.secret(&key, &meta).await? else {
                    return Err(err(ErrorCode::Internal, "stored secret is not an OAuth2 client"));
                };
                let http = self.oauth_http()?;
                let seen = oauth::introspect(http, &name, &cfg, &client_secret, &token.access_token)
                    .await
                    .map_err(|e| err(ErrorCode::Upstream, e.to_string()))?;
                let mut identity = format!(
                    "client {} (confirmed by introspection)",
                    seen.client_id.as_deref().unwrap_or(&cfg.client_id)
                );
                if let Some(sub) = seen.sub.as_deref().filter(|s| *s != cfg.client_id) {
                    identity = format!("{identity}, subject {sub}");
                }
                Ok(Reply::KeyTested {
                    kind: EntryKind::OAuth2,
                    identity,
                    expiration: seen.expires_at.or_else(|| token.expires_at.clone()),
                    scope: seen.scope.or_else(|| token.scope.clone()),
                })
            }
            (kind, _, _) => Err(err(
                ErrorCode::Invalid,
                format!(
                    "'{name}' is a {} key: only AWS and OAuth2 keys issue short-lived credentials to test",
                    kind.as_str()
                ),
            )),
        }
    }

    /// An access token for OAuth2 entry `profile`, from the cache or the token endpoint.
    async fn cred_oauth2(
        self: &Arc<Self>,
        profile: String,
        approval: Option<String>,
        actor: Actor,
        gated: bool,
    ) -> Outcome {
        let key = self
            .current_key()
            .ok_or_else(|| vault_err(VaultError::Locked))?;
        // A token's lifetime is the server's to choose, so the question names none.
        if let Some((t, meta)) = self.oauth.fresh(&profile) {
            if let Some(ask) = self
                .gate(
                    &actor,
                    &profile,
                    EntryKind::OAuth2,
                    None,
                    approval.as_deref(),
                    gated,
                )
                .await?
            {
                return Ok(ask);
            }
            return self.issued_oauth2(actor, meta, t).await;
        }
        let meta = self.entry(&profile).await?;
        let Some(cfg) = meta
            .config
            .oauth2
            .clone()
            .filter(|_| meta.kind == EntryKind::OAuth2)
        else {
            return Err(vault_err(VaultError::WrongKind {
                name: profile,
                expected: "oauth2",
                actual: meta.kind.as_str(),
            }));
        };
        if let Some(ask) = self
            .gate(
                &actor,
                &profile,
                EntryKind::OAuth2,
                None,
                approval.as_deref(),
                gated,
            )
            .await?
        {
            return Ok(ask);
        }
        let flight = self.oauth.flight(&profile);
        let _guard = flight.lock().await;
        if let Some((t, meta)) = self.oauth.fresh(&profile) {
            return self.issued_oauth2(actor, meta, t).await;
        }
        let SecretValue::OAuth2 { client_secret } = self.secret(&key, &meta).await? else {
            return Err(err(
                ErrorCode::Internal,
                "stored secret is not an OAuth2 client",
            ));
        };
        let http = self.oauth_http()?;
        let (token, expires) = match oauth::issue(http, &profile, &cfg, &client_secret).await {
            Ok(v) => v,
            Err(e) => {
                return Err(self
                    .issue_failed(&actor, &profile, err(ErrorCode::Upstream, e.to_string()))
                    .await)
            }
        };
        // Dropped while the vault is locked in the meantime: do not cache or hand out.
        if !self.is_unlocked() {
            return Err(vault_err(VaultError::Locked));
        }
        if let Some(expires) = expires {
            self.oauth.store(&profile, &meta, &token, expires);
        }
        self.issued_oauth2(actor, meta, token).await
    }

    /// Records an access token's issuance (never the token) and hands it out.
    async fn issued_oauth2(
        self: &Arc<Self>,
        actor: Actor,
        meta: EntryMeta,
        token: OAuth2Token,
    ) -> Outcome {
        let detail = serde_json::json!({
            "kind": "oauth2",
            "client_id": meta.config.oauth2.as_ref().map(|c| c.client_id.clone()),
            "expires_at": token.expires_at,
            "scope": token.scope,
            "cached": token.cached,
        });
        self.issued(actor, meta, detail, Reply::Oauth2Token(token))
            .await
    }

    async fn cred_aws(
        self: &Arc<Self>,
        profile: String,
        mfa_code: Option<WireSecret>,
        approval: Option<String>,
        actor: Actor,
        gated: bool,
    ) -> Outcome {
        let key = self
            .current_key()
            .ok_or_else(|| vault_err(VaultError::Locked))?;
        // Hot path: no catalog read, only the grant check and the (batched) audit write.
        if let Some((c, meta)) = self.aws.fresh(&profile) {
            let ttl = meta
                .config
                .aws
                .as_ref()
                .map_or(0, |a| u64::from(a.session_duration_secs));
            if let Some(ask) = self
                .gate(
                    &actor,
                    &profile,
                    EntryKind::Aws,
                    Some(ttl),
                    approval.as_deref(),
                    gated,
                )
                .await?
            {
                return Ok(ask);
            }
            return self.issued_aws(actor, meta, c).await;
        }
        let meta = {
            let me = Arc::clone(self);
            let p = profile.clone();
            tokio::task::spawn_blocking(move || me.with_vault(|v| v.get(&p)))
                .await
                .map_err(|_| err(ErrorCode::Internal, "internal error (task failed)"))?
                .map_err(vault_err)?
        };
        let Some(cfg) = meta
            .config
            .aws
            .clone()
            .filter(|_| meta.kind == EntryKind::Aws)
        else {
            return Err(vault_err(VaultError::WrongKind {
                name: profile,
                expected: "aws",
                actual: meta.kind.as_str(),
            }));
        };
        let ttl = u64::from(cfg.session_duration_secs);
        if let Some(ask) = self
            .gate(
                &actor,
                &profile,
                EntryKind::Aws,
                Some(ttl),
                approval.as_deref(),
                gated,
            )
            .await?
        {
            return Ok(ask);
        }
        let flight = self.aws.flight(&profile);
        let _guard = flight.lock().await;
        if let Some((c, meta)) = self.aws.fresh(&profile) {
            return self.issued_aws(actor, meta, c).await;
        }
        let secret = {
            let me = Arc::clone(self);
            let m = meta.clone();
            let k = Arc::clone(&key);
            tokio::task::spawn_blocking(move || me.with_vault(|v| v.read_secret(&k, &m)))
                .await
                .map_err(|_| err(ErrorCode::Internal, "internal error (task failed)"))?
                .map_err(vault_err)?
        };
        let SecretValue::Aws {
            access_key_id,
            secret_access_key,
        } = secret
        else {
            return Err(err(ErrorCode::Internal, "stored secret is not an AWS key"));
        };
        let session_name = format!("keyward-{}", meta.name);
        let session_name: String = session_name.chars().take(64).collect();
        let issued = aws::issue(
            &profile,
            &cfg,
            &access_key_id,
            &secret_access_key,
            mfa_code.as_ref().map(|c| c.expose()),
            &session_name,
        )
        .await;
        let (creds, expires) = match issued {
            Ok(v) => v,
            Err(e) => {
                let code = match e {
                    AwsError::MfaRequired(_) => ErrorCode::MfaRequired,
                    _ => ErrorCode::Upstream,
                };
                return Err(self
                    .issue_failed(&actor, &profile, err(code, e.to_string()))
                    .await);
            }
        };
        // Dropped while the vault is locked in the meantime: do not cache or hand out.
        if !self.is_unlocked() {
            return Err(vault_err(VaultError::Locked));
        }
        self.aws.store(&profile, &meta, &creds, expires);
        self.issued_aws(actor, meta, creds).await
    }

    /// Records that the provider refused or failed for `profile` (best effort: the request fails
    /// either way) and returns `reply` for the client.
    async fn issue_failed(
        self: &Arc<Self>,
        actor: &Actor,
        profile: &str,
        reply: ErrorReply,
    ) -> ErrorReply {
        let me = Arc::clone(self);
        let target = Some(profile.to_owned());
        let a = actor.clone();
        let _ =
            tokio::task::spawn_blocking(move || me.audited(&a, "issue", target, "failed")).await;
        reply
    }

    /// Records an STS session's issuance and hands it out.
    async fn issued_aws(
        self: &Arc<Self>,
        actor: Actor,
        meta: EntryMeta,
        creds: AwsCredentials,
    ) -> Outcome {
        let detail = serde_json::json!({
            "kind": "aws-sts",
            "access_key_id": creds.access_key_id,
            "expiration": creds.expiration,
            "cached": creds.cached,
        });
        self.issued(actor, meta, detail, Reply::AwsCredentials(creds))
            .await
    }

    /// Records the issuance (fail closed) and hands the credentials out.
    async fn issued(
        self: &Arc<Self>,
        actor: Actor,
        meta: EntryMeta,
        detail: serde_json::Value,
        reply: Reply,
    ) -> Outcome {
        let (done, wait) = tokio::sync::oneshot::channel();
        let record = IssueRecord {
            actor,
            event: AuditEvent {
                action: "issue",
                target: Some(meta.name.clone()),
                outcome: "ok",
                detail,
            },
            entry_id: meta.id,
            done,
        };
        let refused = || {
            err(
                ErrorCode::Audit,
                "the audit writer is not running, so the credentials were withheld",
            )
        };
        self.issues.send(record).map_err(|_| refused())?;
        wait.await.map_err(|_| refused())??;
        Ok(reply)
    }
}

fn expired() -> ErrorReply {
    err(
        ErrorCode::Invalid,
        "the security-key challenge expired or was already used: start again",
    )
}

fn hex(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}

fn unhex(s: &WireSecret) -> Result<Vec<u8>, ErrorReply> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.expose().as_bytes())
        .map_err(|_| err(ErrorCode::BadRequest, "hmac_output must be hex"))
}

/// One issuance waiting to be audited.
struct IssueRecord {
    actor: Actor,
    event: AuditEvent,
    entry_id: String,
    done: tokio::sync::oneshot::Sender<Result<(), ErrorReply>>,
}

fn lock_vault<T>(vault: &Mutex<Vault>, f: impl FnOnce(&mut Vault) -> T) -> T {
    let mut guard = match vault.lock() {
        Ok(g) => g,
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        Err(p) => p.into_inner(),
    };
    f(&mut guard)
}

/// Writes issuance records in batches: under load, one transaction covers every request that
/// arrived meanwhile (group commit). Each request is answered only after its row is committed.
fn issue_writer(vault: &Mutex<Vault>, rx: &std::sync::mpsc::Receiver<IssueRecord>) {
    const MAX_BATCH: usize = 1024;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let mut uses: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        let mut events = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        for r in batch {
            *uses.entry(r.entry_id).or_default() += 1;
            events.push((r.actor, r.event));
            waiters.push(r.done);
        }
        let uses: Vec<(String, u64)> = uses.into_iter().collect();
        let result = lock_vault(vault, |v| {
            v.audit(&events)?;
            v.record_uses(&uses)
        })
        .map_err(vault_err);
        if let Err(e) = &result {
            warn!("issuance audit failed, credentials withheld: {}", e.message);
        }
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}

/// Checks user-typed metadata: lengths, tag count, and an RFC 3339 expiry.
fn validate_meta(meta: &MetaInput) -> Result<(), ErrorReply> {
    for (field, value, max) in [
        ("owner", meta.owner.as_deref(), 128),
        ("purpose", meta.purpose.as_deref(), 512),
        ("expires", meta.expires.as_deref(), 64),
    ] {
        if let Some(v) = value {
            keyward_core::entry::validate_text(field, v, max).map_err(|e| vault_err(e.into()))?;
        }
    }
    if meta.tags.len() > 32 {
        return Err(vault_err(
            EntryError::Text {
                field: "tags",
                max: 32,
            }
            .into(),
        ));
    }
    for t in &meta.tags {
        keyward_core::entry::validate_text("tag", t, 64).map_err(|e| vault_err(e.into()))?;
    }
    if let Some(exp) = &meta.expires {
        time::OffsetDateTime::parse(exp, &time::format_description::well_known::Rfc3339).map_err(
            |_| {
                err(
                    ErrorCode::Invalid,
                    "invalid expiry: use RFC 3339, e.g. 2027-01-31T00:00:00Z",
                )
            },
        )?;
    }
    Ok(())
}
