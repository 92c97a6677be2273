//! The agent's state and request handling: the only place an unlocked vault key lives.
//!
//! Blocking work (SQLite, the keychain's D-Bus calls, the KDF) runs on tokio's blocking pool; the
//! vault sits behind a std mutex because a SQLite connection is not shareable across threads.
//!
//! [`Agent::handle`] is the dispatch: one line per request, into the room that holds it —
//! `session` (init, unlock, lock, auto-lock, shutdown), `keys` (the catalog and its secrets),
//! `issuance` (credentials for tools, behind the approval gate, audited before they leave),
//! `consent` (approvals and grants), `factors` (TOTP, recovery codes, FIDO2 ceremonies),
//! `policy` (the administrator's policy in force and each key's standing under it),
//! `rotation` (AWS keys rotated at IAM, journaled),
//! `window` (the desktop app's window) and `trail` (the audit trail).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use keyward_core::audit::{Actor, AuditEvent};
use keyward_core::catalog::KeystoreKind;
use keyward_core::entry::{EntryKind, EntryState};
use keyward_core::factors::TotpSetup;
use keyward_core::kdf::KdfParams;
use keyward_core::vault::{CreateOptions, EntryEdit, ReconcileNote, SecondFactor};
use keyward_core::{EntryConfig, EntryMeta, SecretValue, UnlockedKey, Vault, VaultError};
use secrecy::{ExposeSecret, SecretString};
use tracing::{info, warn};

use crate::approvals::{
    client_of, client_process, Answerer, Approvals, ClientId, Decision, APPROVAL_WAIT,
};
use crate::aws;
use crate::desktop::Desktop;
use crate::oauth;
use crate::protocol::{
    AliyunKeyInput, AwsKeyInput, ErrorCode, ErrorReply, FactorInput, Fido2Challenge, Initialized,
    KeyTested, KeystoreChoice, MetaInput, NewSecret, NewVault, OAuth2KeyInput, Reply, Request,
    StatusInfo, Unlocked, WindowState, WireSecret,
};

/// Default idle time before the vault locks itself.
pub const DEFAULT_AUTO_LOCK: Duration = Duration::from_secs(15 * 60);

/// Where a request is recorded in the audit trail. Decided here, for every request, so a new
/// request cannot go unrecorded by accident.
enum Recorded {
    /// By the dispatch, once the request succeeded: the reads.
    Here {
        /// The action recorded.
        action: &'static str,
        /// The key concerned.
        target: Option<String>,
    },
    /// Where its effect happens, in the same step, so the record and the change stand or fall
    /// together: changes in the core's transaction (init, unlock, add, update, rotate, remove,
    /// factors, settings), issuance by the pipeline (`issuance`), questions, answers and
    /// grants by the gate (`consent`), reveals and the window's requests (`window`), lock and
    /// shutdown by `session` before the agent acts on them.
    ByItsRoom,
    /// Not recorded: liveness, the window's poll, the grants list it shows, and the first half
    /// of a FIDO2 ceremony (its second half is recorded).
    Never,
}

impl Recorded {
    fn of(req: &Request) -> Recorded {
        let here = |action, target: Option<&String>| Recorded::Here {
            action,
            target: target.cloned(),
        };
        match req {
            Request::Status {} => here("status", None),
            Request::List {} => here("list", None),
            Request::Show { name } => here("show", Some(name)),
            Request::History { name, .. } => here("history", Some(name)),
            Request::Factors {} => here("factors", None),
            Request::AuditTail { .. } => here("audit.tail", None),
            Request::AuditQuery(_) => here("audit.query", None),
            Request::AuditVerify {} => here("audit.verify", None),
            Request::Bindings {} => here("bindings", None),
            Request::KeyUses { name } => here("uses", Some(name)),
            Request::Init(_)
            | Request::Unlock { .. }
            | Request::Lock {}
            | Request::AddAws { .. }
            | Request::AddStatic { .. }
            | Request::AddOauth2 { .. }
            | Request::AddAliyun { .. }
            | Request::Remove { .. }
            | Request::Update { .. }
            | Request::Rotate { .. }
            | Request::RotateAws { .. }
            | Request::CredAws { .. }
            | Request::CredOauth2 { .. }
            | Request::CredAliyun { .. }
            | Request::CredKube { .. }
            | Request::LeaseStatic { .. }
            | Request::SetLease { .. }
            | Request::HelperGet { .. }
            | Request::HelperStore { .. }
            | Request::HelperErase { .. }
            | Request::Bind { .. }
            | Request::TestKey { .. }
            | Request::Approve { .. }
            | Request::SetGrantsNeedCode { .. }
            | Request::GrantRevoke { .. }
            | Request::GrantAllow { .. }
            | Request::FactorAddTotp { .. }
            | Request::RecoveryRegenerate { .. }
            | Request::SetAutoLock { .. }
            | Request::Fido2RegisterFinish { .. }
            | Request::FactorRemove { .. }
            | Request::Reveal { .. }
            | Request::ConfirmFactor { .. }
            | Request::OpenWindow {}
            | Request::Shutdown {} => Recorded::ByItsRoom,
            Request::Ping {}
            | Request::Window { .. }
            | Request::Grants {}
            | Request::Fido2RegisterBegin {}
            | Request::Fido2UnlockBegin {} => Recorded::Never,
        }
    }
}

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
    /// AWS STS sessions (the provider and its cache).
    sts: aws::Sts,
    /// OAuth2 access tokens (the provider, its cache and its HTTPS client).
    oauth: oauth::ClientCredentials,
    /// Alibaba Cloud STS tokens (the provider, its cache and its HTTPS client).
    aliyun: crate::aliyun::Sts,
    /// Static-key leases (never cached).
    leases: crate::lease::Leases,
    /// How fast each program may ask for each key.
    rates: crate::ratelimit::RateLimiter,
    reconciled: Vec<ReconcileNote>,
    ceremonies: Mutex<HashMap<String, (Instant, Ceremony)>>,
    /// Which programs may have credentials (cleared on lock).
    pub approvals: Approvals,
    /// Signalled when a client asks the agent to stop.
    pub shutdown: tokio::sync::Notify,
    /// The desktop app this agent serves, if any, and its window.
    pub desktop: Desktop,
    /// The administrator's policy in force (swapped whole on a reload).
    policy: RwLock<Arc<policy::InForce>>,
    /// Signalled when a key or the policy changed, so keys' standings may have: the desktop
    /// agent then looks for reminders and redraws the tray.
    pub standings_changed: tokio::sync::Notify,
    /// Issuances that do not fit their key's baseline (see `usage`), for the desktop agent's
    /// notifications; already audited when sent.
    pub unusual: tokio::sync::broadcast::Sender<usage::UnusualUse>,
    /// How far the audit trail has been forwarded (set by `forward`).
    forwarding: Mutex<std::collections::BTreeMap<crate::forward::Sink, crate::forward::Forwarding>>,
    /// Held through an AWS rotation or the finishing of open ones: one at a time, so two never
    /// act on the same journal.
    rotating: tokio::sync::Mutex<()>,
    /// Held while IAM is asked about the keys' last use: one round at a time.
    checking_use: tokio::sync::Mutex<()>,
}

mod consent;
mod errors;
mod factors;
mod helpers;
mod issuance;
mod keys;
mod last_use;
pub mod policy;
pub mod rotation;
mod session;
mod trail;
pub mod usage;
mod window;

#[cfg(test)]
mod pipeline_tests;

use errors::err;
pub use errors::vault_err;
use factors::{expired, unhex, Ceremony};
use issuance::{issue_writer, IssueRecord};

type Outcome = Result<Reply, ErrorReply>;

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
        let (unusual, _) = tokio::sync::broadcast::channel(64);
        {
            let vault = Arc::clone(&vault);
            let unusual = unusual.clone();
            std::thread::Builder::new()
                .name("keyward-audit".into())
                .spawn(move || issue_writer(&vault, &rx, &unusual))
                .map_err(|e| {
                    VaultError::Internal(format!("cannot start the audit writer thread: {e}"))
                })?;
        }
        Ok(Agent {
            vault,
            unlocking: Mutex::new(()),
            issues,
            key: RwLock::new(None),
            last_activity: Mutex::new(Instant::now()),
            auto_lock_ms: AtomicU64::new(auto_lock.as_millis().try_into().unwrap_or(u64::MAX)),
            sts: aws::Sts::default(),
            oauth: oauth::ClientCredentials::default(),
            aliyun: crate::aliyun::Sts::default(),
            leases: crate::lease::Leases::default(),
            rates: crate::ratelimit::RateLimiter::default(),
            reconciled,
            ceremonies: Mutex::new(HashMap::new()),
            approvals: Approvals::default(),
            shutdown: tokio::sync::Notify::new(),
            desktop: Desktop::default(),
            policy: RwLock::new(Arc::new(policy::InForce::at(std::path::Path::new(
                keyward_core::policy::SYSTEM_PATH,
            )))),
            standings_changed: tokio::sync::Notify::new(),
            unusual,
            forwarding: Mutex::new(std::collections::BTreeMap::new()),
            rotating: tokio::sync::Mutex::new(()),
            checking_use: tokio::sync::Mutex::new(()),
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

    /// The idle time before auto-lock: the user's (or the command line's), within the
    /// administrator's ceiling.
    fn auto_lock(&self) -> Duration {
        let chosen = Duration::from_millis(self.auto_lock_ms.load(Ordering::Relaxed));
        match self.policy().auto_lock_ceiling() {
            Some(max) => chosen.min(max),
            None => chosen,
        }
    }

    /// Whether the vault is unlocked.
    pub fn is_unlocked(&self) -> bool {
        self.current_key().is_some()
    }

    /// Handles one request from `actor`, and records it: here for the reads, where its effect
    /// happens for the rest (see [`Recorded`]). A read whose record cannot be written is
    /// refused, as everything else is (the audit is fail-closed).
    pub async fn handle(self: &Arc<Self>, req: Request, actor: Actor) -> Outcome {
        // Polls and status checks are not the user's activity: they must not hold off auto-lock.
        if !matches!(
            req,
            Request::Ping {} | Request::Status {} | Request::Window { .. }
        ) {
            self.touch();
        }
        let recorded = Recorded::of(&req);
        let changes_keys = matches!(
            req,
            Request::AddAws { .. }
                | Request::AddStatic { .. }
                | Request::AddOauth2 { .. }
                | Request::AddAliyun { .. }
                | Request::Remove { .. }
                | Request::Update { .. }
                | Request::Rotate { .. }
                | Request::RotateAws { .. }
                | Request::HelperStore { .. }
        );
        // A new AWS key (added or rotated in): ask AWS what it has seen of it.
        let new_aws_key = matches!(
            req,
            Request::AddAws { .. } | Request::Rotate { .. } | Request::RotateAws { .. }
        );
        let reply = self.dispatch(req, actor.clone()).await?;
        if changes_keys {
            self.standings_changed.notify_one();
        }
        if new_aws_key {
            let me = Arc::clone(self);
            tokio::spawn(async move { me.check_provider_use().await });
        }
        if let Recorded::Here { action, target } = recorded {
            // After the read: the rows a trail read shows are the ones before this request.
            let me = Arc::clone(self);
            tokio::task::spawn_blocking(move || me.audited(&actor, action, target, "ok"))
                .await
                .map_err(|_| err(ErrorCode::Internal, "internal error (task failed)"))??;
        }
        Ok(reply)
    }

    /// One line per request: the room that does it.
    async fn dispatch(self: &Arc<Self>, req: Request, actor: Actor) -> Outcome {
        match req {
            Request::Ping {} => Ok(Reply::Pong {
                pid: std::process::id(),
            }),
            Request::Status {} => self.blocking(move |a| a.status()).await,
            Request::Init(new) => self.init(new, actor).await,
            Request::Unlock {
                passphrase,
                factor,
                window,
            } => self.unlock(passphrase, factor, window, actor).await,
            Request::Lock {} => self.lock_requested(actor).await,
            Request::AddAws { name, meta, aws } => self.add_aws(name, meta, aws, actor).await,
            Request::AddStatic { name, meta, value } => {
                self.add_static(name, meta, value, actor).await
            }
            Request::AddOauth2 { name, meta, oauth2 } => {
                self.add_oauth2(name, meta, oauth2, actor).await
            }
            Request::AddAliyun { name, meta, aliyun } => {
                self.add_aliyun(name, meta, aliyun, actor).await
            }
            Request::List {} => self.list_keys().await,
            Request::Show { name } => self.show_key(name).await,
            Request::Remove { name } => self.remove_key(name, actor).await,
            Request::Update { name, meta } => self.update_key(name, meta, actor).await,
            Request::Rotate { name, secret } => self.rotate_key(name, secret, actor).await,
            Request::RotateAws { name, grace_secs } => {
                self.rotate_aws(name, grace_secs, actor).await
            }
            Request::History { name, limit } => self.key_history(name, limit).await,
            Request::CredAws {
                profile,
                mfa_code,
                approval,
                exec,
            } => {
                let actor = self.speaking_for(actor, exec)?;
                self.cred_aws(profile, mfa_code, approval, actor, true)
                    .await
            }
            Request::CredOauth2 {
                profile,
                approval,
                exec,
            } => {
                let actor = self.speaking_for(actor, exec)?;
                self.cred_oauth2(profile, approval, actor, true).await
            }
            Request::CredAliyun {
                profile,
                approval,
                exec,
            } => {
                let actor = self.speaking_for(actor, exec)?;
                self.cred_aliyun(profile, approval, actor, true).await
            }
            Request::CredKube { profile, approval } => {
                self.cred_kube(profile, approval, actor).await
            }
            Request::LeaseStatic {
                profile,
                form,
                approval,
                exec,
            } => {
                let via = match (&exec, form) {
                    (Some(_), keyward_core::entry::LeaseMode::File) => "exec-fd",
                    (Some(_), keyward_core::entry::LeaseMode::Env) => "exec",
                    (None, _) => "helper",
                };
                let actor = self.speaking_for(actor, exec)?;
                self.lease_static(profile, form, approval, via, actor).await
            }
            Request::SetLease { name, mode, code } => self.set_lease(name, mode, code, actor).await,
            Request::HelperGet {
                tool,
                host,
                approval,
            } => self.helper_get(tool, host, approval, actor).await,
            Request::HelperStore {
                tool,
                host,
                username,
                secret,
            } => self.helper_store(tool, host, username, secret, actor).await,
            Request::HelperErase { tool, host } => self.helper_erase(tool, host, actor).await,
            Request::Bind {
                tool,
                host,
                key,
                username,
                code,
            } => self.bind(tool, host, key, username, code, actor).await,
            Request::Bindings {} => self.list_bindings().await,
            Request::KeyUses { name } => self.key_uses(name).await,
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
            } => self.approve(id, decision, token, code, actor).await,
            Request::SetGrantsNeedCode { on, code } => {
                self.set_grants_need_code(on, code, actor).await
            }
            Request::Grants {} => Ok(Reply::Grants {
                grants: self.approvals.list(),
            }),
            Request::GrantRevoke { id } => self.grant_revoke(id, actor).await,
            Request::GrantAllow {
                client,
                profile,
                hours,
                code,
            } => self.grant_allow(client, profile, hours, code, actor).await,
            Request::Factors {} => self.list_factors().await,
            Request::FactorAddTotp {
                passphrase,
                totp_secret,
                totp_code,
                label,
            } => {
                self.factor_add_totp(passphrase, totp_secret, totp_code, label, actor)
                    .await
            }
            Request::RecoveryRegenerate { passphrase } => {
                self.recovery_regenerate(passphrase, actor).await
            }
            Request::SetAutoLock { secs } => self.set_auto_lock(secs, actor).await,
            Request::Fido2RegisterBegin {} => self.fido2_register_begin().await,
            Request::Fido2RegisterFinish {
                ceremony,
                passphrase,
                response,
                hmac_output,
                label,
            } => {
                self.fido2_register_finish(
                    ceremony,
                    passphrase,
                    response,
                    hmac_output,
                    label,
                    actor,
                )
                .await
            }
            Request::Fido2UnlockBegin {} => self.fido2_unlock_begin().await,
            Request::FactorRemove { id } => self.factor_remove(id, actor).await,
            Request::AuditVerify {} => self.audit_verify().await,
            Request::AuditTail { limit } => self.audit_tail(limit).await,
            Request::AuditQuery(q) => self.audit_query(q).await,
            Request::Reveal { name, token } => self.reveal(name, token, actor).await,
            Request::ConfirmFactor { token, code } => self.confirm_factor(token, code, actor).await,
            Request::Window { closed, token } => self.window_poll(closed, token, actor).await,
            Request::OpenWindow {} => self.open_window(actor).await,
            Request::Shutdown {} => self.shutdown(actor).await,
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
}

fn lock_vault<T>(vault: &Mutex<Vault>, f: impl FnOnce(&mut Vault) -> T) -> T {
    let mut guard = match vault.lock() {
        Ok(g) => g,
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        Err(p) => p.into_inner(),
    };
    f(&mut guard)
}
