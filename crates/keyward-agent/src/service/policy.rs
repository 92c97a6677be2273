//! The administrator's policy in force: read at start, read again when its file changes (see
//! [`crate::policywatch`]), and applied to each key's standing and to issuance.
//!
//! A changed file that is not good (it does not parse, or others could have written it) leaves
//! the last good policy in force, says so in the log, the audit trail and `status`, and is read
//! again at the next change. A file that was never good leaves the agent issuing nothing: the
//! admin meant some policy, and none is a looser one.

use std::path::{Path, PathBuf};

use keyward_core::policy::{Effective, Loaded, Policy, Standing};

use super::*;
use crate::protocol::{KeyStates, Listed, PolicyInfo, PolicyLimit, PolicyRule};

/// What the policy lets one issuance have.
pub(super) struct Admitted {
    /// Whether a standing grant counts for the key.
    pub standing_grants: bool,
    /// The longest a credential may live, when the policy says.
    pub max_ttl_secs: Option<u32>,
    /// How fast one program may ask for the key.
    pub rate: crate::ratelimit::Rate,
}

/// Who may write the policy: root.
pub(crate) const ADMIN_UID: u32 = 0;

/// The policy the agent holds.
#[derive(Debug, Clone, Default)]
pub struct InForce {
    path: PathBuf,
    /// The last good policy read; `None` while the file exists and never was good.
    loaded: Option<Loaded>,
    since: Option<String>,
    /// Why the file as it is now is not used.
    refused: Option<String>,
}

fn limits(l: &keyward_core::policy::Limits) -> Vec<PolicyLimit> {
    l.set()
        .into_iter()
        .map(|(name, value)| PolicyLimit {
            name: name.to_owned(),
            value,
        })
        .collect()
}

impl InForce {
    /// Nothing read yet: no policy from `path`.
    pub fn at(path: &Path) -> Self {
        InForce {
            path: path.to_owned(),
            loaded: Some(Loaded::default()),
            ..InForce::default()
        }
    }

    /// The policy's limits on a key of `kind` with `tags`; `None` when no good policy is held.
    pub fn for_key(&self, kind: EntryKind, tags: &[String]) -> Option<Effective> {
        self.loaded.as_ref().map(|l| l.policy.for_key(kind, tags))
    }

    /// The longest idle time before the vault locks itself, when the policy sets one. No good
    /// policy held: none (the vault still locks at the user's time; nothing is issued anyway).
    pub fn auto_lock_ceiling(&self) -> Option<std::time::Duration> {
        let secs = self.loaded.as_ref()?.policy.defaults.auto_lock_max_secs?;
        Some(std::time::Duration::from_secs(secs.into()))
    }

    /// Refuses a user setting looser than the policy, naming the setting and the rule.
    pub fn admit_setting(&self, user: keyward_core::policy::Limits) -> Result<(), ErrorReply> {
        let Some(loaded) = &self.loaded else {
            return Ok(());
        };
        loaded
            .policy
            .admit(&user)
            .map_err(|e| err(ErrorCode::Policy, e.to_string()))
    }

    /// Where the audit trail goes besides the catalog, as the policy says: a syslog receiver,
    /// the journal, both or neither.
    pub fn forward_targets(&self) -> Vec<crate::forward::Target> {
        use crate::forward::Target;
        let Some(loaded) = &self.loaded else {
            return Vec::new();
        };
        let audit = &loaded.policy.audit;
        let mut out = Vec::new();
        match (&audit.syslog_tcp, &audit.syslog_tls) {
            (Some(addr), _) => out.push(Target::Syslog {
                addr: addr.clone(),
                tls: None,
            }),
            (None, Some(addr)) => out.push(Target::Syslog {
                addr: addr.clone(),
                tls: Some(audit.syslog_ca.clone()),
            }),
            (None, None) => {}
        }
        if audit.journal || audit.journal_namespace.is_some() {
            out.push(Target::Journal {
                namespace: audit.journal_namespace.clone(),
            });
        }
        out
    }

    /// The policy as `status` shows it.
    pub fn info(&self) -> PolicyInfo {
        let policy = self.loaded.as_ref().map(|l| &l.policy);
        PolicyInfo {
            path: self.path.display().to_string(),
            sha256: self.loaded.as_ref().and_then(|l| l.sha256.clone()),
            since: self.since.clone(),
            defaults: policy.map(|p| limits(&p.defaults)).unwrap_or_default(),
            rules: policy
                .map(|p| {
                    p.rules
                        .iter()
                        .map(|r| PolicyRule {
                            name: r.name.clone(),
                            kinds: r.kinds.clone(),
                            tags: r.tags.clone(),
                            limits: limits(&r.limits),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            refused: self.refused.clone(),
            unusable: self.loaded.is_none(),
        }
    }
}

/// `meta`'s standing at `now` under `policy`; under an unusable one, its own settings'.
fn standing_at(policy: &InForce, meta: &EntryMeta, now: time::OffsetDateTime) -> Standing {
    policy
        .for_key(meta.kind, &meta.tags)
        .unwrap_or_default()
        .standing(meta, now)
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Agent {
    /// The policy held now.
    pub fn policy(&self) -> Arc<InForce> {
        match self.policy.read() {
            Ok(p) => Arc::clone(&p),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    fn set_policy(&self, p: InForce) {
        let p = Arc::new(p);
        match self.policy.write() {
            Ok(mut g) => *g = p,
            Err(e) => *e.into_inner() = p,
        }
    }

    /// Holds `policy` as if read from a file (tests of the stages that apply it).
    #[cfg(test)]
    pub(super) fn hold_policy(&self, policy: Policy) {
        self.set_policy(InForce {
            path: PathBuf::from("test-policy.toml"),
            loaded: Some(Loaded {
                policy,
                sha256: Some("test".into()),
            }),
            since: Some(rfc3339(now())),
            refused: None,
        });
    }

    /// Reads the policy at `path` (the agent's start) and holds it, whatever it says.
    pub fn start_policy(&self, path: &Path) {
        self.set_policy(InForce::at(path));
        self.reload_policy();
    }

    /// Reads the policy file again and, when it changed, puts the new one in force or keeps
    /// the last good one and says why; either is audited once per change.
    pub fn reload_policy(&self) {
        let held = self.policy();
        let me = crate::peer::this_process();
        match Policy::load(&held.path, ADMIN_UID) {
            Ok(loaded) => {
                if held.loaded.as_ref() == Some(&loaded) && held.refused.is_none() {
                    return;
                }
                let rules: Vec<&str> = loaded
                    .policy
                    .rules
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect();
                let detail = serde_json::json!({
                    "path": held.path.display().to_string(),
                    "sha256": loaded.sha256,
                    "rules": rules,
                });
                let action = if loaded.sha256.is_some() {
                    info!(path = %held.path.display(), sha256 = ?loaded.sha256, "admin policy in force");
                    "policy.loaded"
                } else {
                    info!(path = %held.path.display(), "no admin policy file: no policy in force");
                    "policy.removed"
                };
                self.record_policy(&me, action, "ok", detail);
                self.set_policy(InForce {
                    path: held.path.clone(),
                    loaded: Some(loaded),
                    since: Some(rfc3339(now())),
                    refused: None,
                });
                // Sessions issued under the old policy may outlive what the new one allows.
                self.clear_caches();
                self.standings_changed.notify_one();
            }
            Err(e) => {
                let reason = e.to_string();
                if held.refused.as_deref() == Some(reason.as_str()) {
                    return;
                }
                let kept = if held.since.is_some() {
                    "the last good policy stays in force"
                } else {
                    "no policy was ever good, so nothing is issued until it is fixed"
                };
                warn!("admin policy refused, {kept}: {reason}");
                let detail = serde_json::json!({
                    "path": held.path.display().to_string(),
                    "reason": reason,
                });
                self.record_policy(&me, "policy.refused", "refused", detail);
                let mut next = (*held).clone();
                if next.since.is_none() {
                    next.loaded = None;
                }
                next.refused = Some(reason);
                self.set_policy(next);
                self.standings_changed.notify_one();
            }
        }
    }

    /// The policy takes effect whether or not its row can be written: refusing a stricter policy
    /// because the disk is full would loosen it. The failure is logged.
    fn record_policy(
        &self,
        me: &Actor,
        action: &'static str,
        outcome: &'static str,
        detail: serde_json::Value,
    ) {
        if let Err(e) = self.audited_with(me, action, None, outcome, detail) {
            warn!(
                "the policy change is in force but its audit row was not written: {}",
                e.message
            );
        }
    }

    /// `meta`'s standing now under the policy; under an unusable policy, its own settings'.
    pub(super) fn standing(&self, policy: &InForce, meta: &EntryMeta) -> Standing {
        standing_at(policy, meta, now())
    }

    /// The keys to remind the user of at `now` (see [`keyward_core::policy::reminder_due`]),
    /// each recorded so that neither a restart nor the next call reminds again, and audited
    /// (`reminder`). A key back to ok is forgotten, so its next due date is news again. The
    /// desktop agent calls this on a timer and whenever keys or the policy change.
    pub fn reminders_due(&self, now: time::OffsetDateTime) -> Vec<Listed> {
        let policy = self.policy();
        let read = self.with_vault(|v| Ok::<_, VaultError>((v.list()?, v.reminders()?)));
        let (entries, last) = match read {
            Ok(r) => r,
            Err(e) => {
                warn!("cannot read the keys to remind of: {e}");
                return Vec::new();
            }
        };
        let me = crate::peer::this_process();
        let mut due = Vec::new();
        for meta in entries {
            let standing = standing_at(&policy, &meta, now);
            let previous = last.get(&meta.id);
            let remind = keyward_core::policy::reminder_due(standing.state, previous, now);
            let back_to_ok = standing.state == EntryState::Ok && previous.is_some();
            if !(remind || back_to_ok) {
                continue;
            }
            if let Err(e) = self.with_vault(|v| v.record_reminder(&meta.id, standing.state, now)) {
                warn!("cannot record a reminder (it may be shown again): {e}");
            }
            if remind {
                let detail = serde_json::json!({ "reason": standing.reason });
                if let Err(e) = self.audited_with(
                    &me,
                    "reminder",
                    Some(meta.name.clone()),
                    standing.state.as_str(),
                    detail,
                ) {
                    warn!("a reminder was not audited: {}", e.message);
                }
                due.push(Listed { meta, standing });
            }
        }
        due
    }

    /// Every key's standing, counted, with the ones that need action.
    pub(super) fn key_states(&self, entries: Vec<EntryMeta>) -> KeyStates {
        let policy = self.policy();
        let mut out = KeyStates::default();
        for meta in entries {
            let standing = self.standing(&policy, &meta);
            let n = match standing.state {
                EntryState::Ok => &mut out.ok,
                EntryState::DueSoon => &mut out.due_soon,
                EntryState::Overdue => &mut out.overdue,
                EntryState::Expired => &mut out.expired,
                EntryState::Unused => &mut out.unused,
            };
            *n += 1;
            if standing.state != EntryState::Ok {
                out.attention.push(Listed { meta, standing });
            }
        }
        let rank = |s: EntryState| match s {
            EntryState::Expired => 0,
            EntryState::Overdue => 1,
            EntryState::Unused => 2,
            EntryState::DueSoon => 3,
            EntryState::Ok => 4,
        };
        out.attention.sort_by(|a, b| {
            (rank(a.standing.state), &a.meta.name).cmp(&(rank(b.standing.state), &b.meta.name))
        });
        out
    }

    /// Every key's standing now, counted (what the tray shows).
    pub fn key_states_now(&self) -> KeyStates {
        match self.with_vault(|v| v.list()) {
            Ok(entries) => self.key_states(entries),
            Err(e) => {
                warn!("cannot read the keys: {e}");
                KeyStates::default()
            }
        }
    }

    /// Every key with its standing.
    pub(super) fn listed(&self, entries: Vec<EntryMeta>) -> Vec<Listed> {
        let policy = self.policy();
        entries
            .into_iter()
            .map(|meta| Listed {
                standing: self.standing(&policy, &meta),
                meta,
            })
            .collect()
    }

    /// Refuses an allow for hours or until lock for `profile` when the policy allows no
    /// standing grants for its key (the user can still allow each request once).
    pub(super) fn policy_allows_standing(
        &self,
        decision: Decision,
        profile: &str,
    ) -> Result<(), ErrorReply> {
        if !matches!(decision, Decision::Hours(_) | Decision::UntilLock) {
            return Ok(());
        }
        let meta = self.with_vault(|v| v.get(profile)).map_err(vault_err)?;
        let policy = self.policy();
        let refused = |why: String| {
            Err(err(
                ErrorCode::Policy,
                format!("the administrator's policy allows no standing grants for '{profile}' ({why}): allow it once instead"),
            ))
        };
        match policy.for_key(meta.kind, &meta.tags) {
            None => refused("the policy cannot be used".into()),
            Some(l) => match l.standing_grants {
                Some(b) if !b.value => refused(format!("{}: standing_grants = false", b.by)),
                _ => Ok(()),
            },
        }
    }

    /// The answer about one key: its metadata and standing.
    pub(super) fn entry_reply(&self, meta: EntryMeta) -> Reply {
        let standing = self.standing(&self.policy(), &meta);
        Reply::Entry {
            entry: Box::new(Listed { meta, standing }),
        }
    }

    /// The pipeline's policy stage, before the approval gate: refuses a key the policy blocks
    /// (overdue or expired under `enforcement = "block"`), a provider or STS endpoint it does
    /// not allow, and everything while no good policy is held. Otherwise says what the policy
    /// lets this key's issuance have.
    pub(super) fn policy_admits(&self, meta: &EntryMeta) -> Result<Admitted, ErrorReply> {
        let policy = self.policy();
        let Some(limits) = policy.for_key(meta.kind, &meta.tags) else {
            return Err(err(
                ErrorCode::Policy,
                format!(
                    "nothing is issued while the administrator's policy cannot be used ({}); `keyward status` shows it, your administrator can fix it",
                    policy.refused.as_deref().unwrap_or("unreadable")
                ),
            ));
        };
        if let Some(allowed) = &limits.allowed_providers {
            if !allowed.value.iter().any(|p| p == meta.kind.as_str()) {
                return Err(err(
                    ErrorCode::Policy,
                    format!(
                        "'{}' issues no credentials: the administrator's policy allows only {} keys to ({}: allowed_providers)",
                        meta.name,
                        allowed.value.join(", "),
                        allowed.by
                    ),
                ));
            }
        }
        // A key without an override uses its cloud's own endpoint, which the list names as
        // "aws" or "aliyun".
        let sts = match (&meta.config.aws, &meta.config.aliyun) {
            (Some(aws), _) => Some(aws.sts_endpoint.as_deref().unwrap_or("aws")),
            (_, Some(ali)) => Some(ali.sts_endpoint.as_deref().unwrap_or("aliyun")),
            _ => None,
        };
        if let (Some(allowed), Some(endpoint)) = (&limits.allowed_sts_endpoints, sts) {
            if !allowed.value.iter().any(|e| e == endpoint) {
                return Err(err(
                    ErrorCode::Policy,
                    format!(
                        "'{}' issues no credentials: its STS endpoint {endpoint} is not one the administrator's policy allows ({}: allowed_sts_endpoints = [{}])",
                        meta.name,
                        allowed.by,
                        allowed.value.join(", ")
                    ),
                ));
            }
        }
        if let (EntryKind::Static, Some(leases)) = (meta.kind, &limits.static_leases) {
            if !leases.value {
                return Err(err(
                    ErrorCode::Policy,
                    format!(
                        "'{}' is not leased: the administrator's policy hands static keys to no program ({}: static_leases = false)",
                        meta.name, leases.by
                    ),
                ));
            }
        }
        // An Alibaba Cloud key without a role has no short-lived form: it would go out as itself.
        let own_key = meta.kind == EntryKind::Aliyun
            && meta
                .config
                .aliyun
                .as_ref()
                .is_some_and(|a| a.role_arn.is_none());
        if let (true, Some(leases)) = (own_key, &limits.static_leases) {
            if !leases.value {
                return Err(err(
                    ErrorCode::Policy,
                    format!(
                        "'{}' has no RAM role, so only its AccessKey itself could go out, and the administrator's policy hands long-lived keys to no program ({}: static_leases = false): give it a role (a new key with --role-arn)",
                        meta.name, leases.by
                    ),
                ));
            }
        }
        let standing = limits.standing(meta, now());
        if standing.blocked {
            return Err(err(
                ErrorCode::Policy,
                format!(
                    "'{}' issues no credentials: {}, and the administrator's policy blocks such keys ({}: enforcement = \"block\"); rotate it: keyward rotate {}",
                    meta.name,
                    standing.reason.as_deref().unwrap_or("it is due"),
                    limits.enforcement.as_ref().map_or("defaults", |b| b.by.as_str()),
                    meta.name
                ),
            ));
        }
        Ok(Admitted {
            standing_grants: limits.standing_grants.is_none_or(|b| b.value),
            max_ttl_secs: limits.max_credential_ttl_secs.map(|b| b.value),
            rate: crate::ratelimit::Rate {
                per_minute: limits
                    .rate_per_minute
                    .map_or(crate::ratelimit::DEFAULT_PER_MINUTE, |b| b.value),
                burst: limits
                    .rate_burst
                    .map_or(crate::ratelimit::DEFAULT_BURST, |b| b.value),
            },
        })
    }
}
