//! Admin policy: the rules an administrator sets for every key (rotation age, reminders,
//! enforcement, credential lifetime, idle keys, grants, auto-lock, providers, leases), read from
//! a TOML file at a system path, and the user's own settings, which may only make them stricter.
//!
//! This module parses, checks and merges; it does not watch the file or act on the rules (the
//! agent does). A policy file is trusted only when its owner is the administrator and nobody
//! else can write it or the directories above it: otherwise the user the policy binds could
//! rewrite it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::entry::EntryKind;

mod standing;
pub use standing::{reminder_due, Reminded, Standing, REMIND_AT_MOST_EVERY};

/// Where the admin policy lives on Linux.
pub const SYSTEM_PATH: &str = "/etc/keyward/policy.toml";

/// The variable that names another policy path, honoured only in test builds (the
/// `test-policy-path` feature, which the release build and the .deb leave out): the user the
/// policy binds sets their own environment, and would otherwise point it at a file of theirs.
pub const PATH_VAR: &str = "KEYWARD_POLICY";

/// The largest policy file read (a policy is a few kilobytes).
const MAX_FILE: u64 = 256 * 1024;

/// What happens to a key past its rotation age or expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// Remind, and keep issuing.
    Warn,
    /// Issue nothing from the key until it is rotated.
    Block,
}

/// Declares every limit once: its field in [`Limits`] (as the file spells it), in [`Effective`],
/// and which [`Strictness`] decides between two values of it.
macro_rules! limits {
    ($($(#[$doc:meta])* $field:ident: $t:ty => $rule:ty,)*) => {
        /// One set of limits; a field left out sets nothing. In the file these are the keys of
        /// `[defaults]` and of each rule's `[rule.limits]`; in the user's settings, the same names.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Limits {
            $($(#[$doc])* pub $field: Option<$t>,)*
        }

        /// The limits in force on one key (or, in [`Policy::admit`], on every key), each with
        /// the part of the policy that set it.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Effective {
            $($(#[$doc])* pub $field: Option<Bound<$t>>,)*
        }

        impl Limits {
            /// The values set, each as its name and its value as the file writes it.
            pub fn set(&self) -> Vec<(&'static str, String)> {
                let mut out = Vec::new();
                $(if let Some(v) = &self.$field {
                    out.push((stringify!($field), shown(v)));
                })*
                out
            }
        }

        impl Effective {
            /// Takes from `l` each value stricter than the one in force (or set where none is).
            fn take(&mut self, l: &Limits, by: &str) {
                $(tighten::<$rule, _>(&mut self.$field, l.$field.as_ref(), by);)*
            }

            /// Refuses the first of `u`'s values looser than the one in force.
            fn admit(&self, u: &Limits) -> Result<(), PolicyError> {
                $(no_looser::<$rule, _>(stringify!($field), &self.$field, u.$field.as_ref())?;)*
                Ok(())
            }
        }
    };
}

limits! {
    /// A key older than this many days (since created or rotated) is overdue.
    max_key_age_days: u32 => AtMost,
    /// Reminders start this many days before a key is overdue or expires.
    remind_before_days: u32 => Earlier,
    /// What overdue or expired means: `warn` or `block`.
    enforcement: Enforcement => Harder,
    /// The longest a credential handed out may live, in seconds.
    max_credential_ttl_secs: u32 => AtMost,
    /// A key that issued nothing for this many days counts as unused.
    max_idle_days: u32 => AtMost,
    /// Whether "allow for hours" and "until lock" grants may be given.
    standing_grants: bool => OnlyIfBoth,
    /// The longest idle time before the vault locks itself, in seconds.
    auto_lock_max_secs: u32 => AtMost,
    /// The providers keys may issue through (`aws`, `oauth2`, …); left out: any.
    allowed_providers: Vec<String> => InBoth,
    /// The STS endpoints AWS keys may use; left out: any.
    allowed_sts_endpoints: Vec<String> => InBoth,
    /// Whether static keys may be handed to a program as a lease.
    static_leases: bool => OnlyIfBoth,
    /// How many requests one program may make for one key per minute, standing (a credential
    /// from the cache or a lease counts 1, a call to the provider 10).
    rate_per_minute: u32 => AtMost,
    /// How many it may make at once above that (the bucket's size, in the same units).
    rate_burst: u32 => AtMost,
}

/// A `[[rule]]`: limits for the keys of some kinds and/or with some tags.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSection {
    name: String,
    #[serde(default)]
    kinds: Vec<EntryKind>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    limits: Limits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    defaults: Limits,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleSection>,
    #[serde(default)]
    audit: AuditForwarding,
}

/// Where the audit trail goes besides the catalog (`[audit]`): each record once, in order, with
/// its sequence number and chain hash, so the receiver can tell a gap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditForwarding {
    /// A syslog receiver as `host:port`: RFC 5424 messages over TCP, octet-counted (RFC 6587).
    pub syslog_tcp: Option<String>,
    /// A syslog receiver as `host:port` over TLS (RFC 5425), its certificate checked for that
    /// host against the system's roots, or against `syslog_ca` when given.
    pub syslog_tls: Option<String>,
    /// A PEM file of the certificate authorities `syslog_tls` trusts instead of the system's;
    /// an absolute path, held to the same ownership rules as the policy file.
    pub syslog_ca: Option<PathBuf>,
    /// Also into the systemd journal (its native protocol), each record with its sequence and
    /// hashes as fields.
    #[serde(default)]
    pub journal: bool,
    /// The journal namespace (`systemd-journald@NAME`) instead of the system journal; implies
    /// `journal`.
    pub journal_namespace: Option<String>,
}

/// A named rule and the keys it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The name the admin gave it; refusals quote it.
    pub name: String,
    /// Kinds it covers; empty: every kind.
    pub kinds: Vec<EntryKind>,
    /// Tags it covers (a key with any of them); empty: every key.
    pub tags: Vec<String>,
    /// What it sets.
    pub limits: Limits,
}

impl Rule {
    /// Whether the rule covers a key of `kind` with `tags`.
    pub fn covers(&self, kind: EntryKind, tags: &[String]) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && (self.tags.is_empty() || self.tags.iter().any(|t| tags.contains(t)))
    }
}

/// The admin policy: defaults for every key, and rules for some.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Limits on every key.
    pub defaults: Limits,
    /// Rules, in the file's order.
    pub rules: Vec<Rule>,
    /// Where the audit trail is forwarded.
    pub audit: AuditForwarding,
}

/// Why a policy was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// The file does not parse or breaks a rule of the format.
    #[error("{path} line {line}: {reason}")]
    Invalid {
        /// The policy file.
        path: String,
        /// 1-based line of the fault.
        line: usize,
        /// What is wrong, in the parser's words.
        reason: String,
    },
    /// The file, or a directory above it, could be changed by someone other than the admin.
    #[error("{path} is not trusted: {why}; an admin policy must be owned by root and writable by nobody else (chown root:root, chmod 644)")]
    Untrusted {
        /// The file or directory at fault.
        path: String,
        /// Who else could write it.
        why: String,
    },
    /// The file cannot be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The policy file.
        path: String,
        /// The OS's words.
        reason: String,
    },
    /// A user setting would loosen what the admin policy sets.
    #[error("{field} = {wanted} is looser than the administrator's policy ({by}: {allowed}); a setting can only make it stricter")]
    Looser {
        /// The setting's name, as in the policy file.
        field: &'static str,
        /// What the user asked for.
        wanted: String,
        /// What the policy allows at most.
        allowed: String,
        /// Which part of the policy sets it (`defaults` or `rule 'NAME'`).
        by: String,
    },
}

/// The policy path in force: [`SYSTEM_PATH`], or in a test build [`PATH_VAR`] when set.
pub fn path() -> PathBuf {
    #[cfg(feature = "test-policy-path")]
    if let Some(p) = std::env::var_os(PATH_VAR) {
        return PathBuf::from(p);
    }
    PathBuf::from(SYSTEM_PATH)
}

/// A policy as read from its file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The rules.
    pub policy: Policy,
    /// SHA-256 of the file's bytes, hex: which version of the file is in force (the audit
    /// records it, so an admin can match it with what they rolled out). `None`: no file.
    pub sha256: Option<String>,
}

impl Policy {
    /// Parses a policy file's text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Policy, PolicyError> {
        let invalid = |line: usize, reason: String| PolicyError::Invalid {
            path: path.display().to_string(),
            line,
            reason,
        };
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            invalid(line, e.message().trim().to_owned())
        })?;
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, r) in file.rules.into_iter().enumerate() {
            if r.name.trim().is_empty() || rules.iter().any(|o: &Rule| o.name == r.name) {
                let line = nth_rule_line(text, i);
                return Err(invalid(
                    line,
                    format!("rule {} needs a name of its own", i + 1),
                ));
            }
            rules.push(Rule {
                name: r.name,
                kinds: r.kinds,
                tags: r.tags,
                limits: r.limits,
            });
        }
        let line_of_key = |key: &str| {
            text.lines()
                .position(|l| {
                    l.trim_start()
                        .strip_prefix(key)
                        .is_some_and(|r| r.trim_start().starts_with('='))
                })
                .map_or(1, |i| i + 1)
        };
        let a = &file.audit;
        for (key, target) in [("syslog_tcp", &a.syslog_tcp), ("syslog_tls", &a.syslog_tls)] {
            let Some(target) = target else { continue };
            let port = target
                .rsplit_once(':')
                .and_then(|(h, p)| (!h.is_empty()).then_some(p));
            if port
                .and_then(|p| p.parse::<u16>().ok())
                .is_none_or(|p| p == 0)
            {
                return Err(invalid(
                    line_of_key(key),
                    format!("{key} = {target:?}: give the receiver as host:port"),
                ));
            }
        }
        if a.syslog_tcp.is_some() && a.syslog_tls.is_some() {
            return Err(invalid(
                line_of_key("syslog_tls"),
                "give one receiver: syslog_tcp or syslog_tls, not both".into(),
            ));
        }
        if let Some(ns) = &a.journal_namespace {
            let ok = (1..=64).contains(&ns.len())
                && !ns.starts_with('.')
                && ns
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(invalid(
                    line_of_key("journal_namespace"),
                    format!("journal_namespace = {ns:?}: a namespace is 1 to 64 letters, digits, '-', '_' or '.'"),
                ));
            }
        }
        if let Some(ca) = &a.syslog_ca {
            if a.syslog_tls.is_none() {
                return Err(invalid(
                    line_of_key("syslog_ca"),
                    "syslog_ca is the trust for syslog_tls: set syslog_tls too".into(),
                ));
            }
            if !ca.is_absolute() {
                return Err(invalid(
                    line_of_key("syslog_ca"),
                    format!("syslog_ca = {:?}: give an absolute path", ca.display()),
                ));
            }
        }
        let policy = Policy {
            defaults: file.defaults,
            rules,
            audit: file.audit,
        };
        policy.check_values().map_err(|(scope, why)| {
            let line = match scope {
                Some(i) => nth_rule_line(text, i),
                None => 1,
            };
            invalid(line, why)
        })?;
        Ok(policy)
    }

    /// Reads the policy at `path`, after checking that only `admin_uid` could have written it.
    /// A missing file is an empty policy (no admin has set one).
    pub fn load(path: &Path, admin_uid: u32) -> Result<Loaded, PolicyError> {
        let unreadable = |e: std::io::Error| PolicyError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
            Err(e) => return Err(unreadable(e)),
        };
        trusted(path, admin_uid)?;
        if meta.len() > MAX_FILE {
            return Err(PolicyError::Invalid {
                path: path.display().to_string(),
                line: 1,
                reason: format!(
                    "the file is {} bytes; a policy is at most {MAX_FILE}",
                    meta.len()
                ),
            });
        }
        let text = std::fs::read_to_string(path).map_err(unreadable)?;
        let sha256 = data_encoding::HEXLOWER.encode(&Sha256::digest(text.as_bytes()));
        Ok(Loaded {
            policy: Policy::parse(path, &text)?,
            sha256: Some(sha256),
        })
    }

    /// The limits on a key of `kind` with `tags`: the defaults and every rule that covers it,
    /// the strictest value of each winning, with where it came from.
    pub fn for_key(&self, kind: EntryKind, tags: &[String]) -> Effective {
        let mut out = Effective::default();
        out.take(&self.defaults, "defaults");
        for r in self.rules.iter().filter(|r| r.covers(kind, tags)) {
            out.take(&r.limits, &format!("rule '{}'", r.name));
        }
        out
    }

    /// Checks the user's own settings against the policy's defaults: each may only be stricter.
    pub fn admit(&self, user: &Limits) -> Result<(), PolicyError> {
        let mut admin = Effective::default();
        admin.take(&self.defaults, "defaults");
        admin.admit(user)
    }

    /// Values that make no sense (a zero age, a reminder window longer than the age).
    fn check_values(&self) -> Result<(), (Option<usize>, String)> {
        let scopes = std::iter::once((None, &self.defaults)).chain(
            self.rules
                .iter()
                .enumerate()
                .map(|(i, r)| (Some(i), &r.limits)),
        );
        for (scope, l) in scopes {
            let zero = [
                ("max_key_age_days", l.max_key_age_days),
                ("max_credential_ttl_secs", l.max_credential_ttl_secs),
                ("max_idle_days", l.max_idle_days),
                ("auto_lock_max_secs", l.auto_lock_max_secs),
                ("rate_per_minute", l.rate_per_minute),
            ];
            // A call to the provider costs 10: a smaller bucket could never make one.
            if let Some(b) = l.rate_burst.filter(|b| *b < 10) {
                return Err((
                    scope,
                    format!("rate_burst = {b}: a call to the provider costs 10, so at least 10"),
                ));
            }
            if let Some((name, _)) = zero.iter().find(|(_, v)| *v == Some(0)) {
                return Err((scope, format!("{name} must be at least 1")));
            }
            if let Some(ttl) = l.max_credential_ttl_secs.filter(|t| *t < 900) {
                return Err((
                    scope,
                    format!("max_credential_ttl_secs = {ttl}: STS issues nothing shorter than 900"),
                ));
            }
        }
        Ok(())
    }
}

/// One limit in force and the part of the policy that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound<T> {
    /// The value.
    pub value: T,
    /// `defaults` or `rule 'NAME'`.
    pub by: String,
}

/// How to choose between two values of one limit.
trait Strictness<T: Clone + PartialEq> {
    /// The stricter of `a` and `b`.
    fn stricter(a: &T, b: &T) -> T;
    /// `v` in the form [`Strictness::stricter`] returns, so that equal values compare equal.
    fn normal(v: &T) -> T {
        v.clone()
    }
}

/// A maximum: the smaller is stricter.
struct AtMost;
/// A reminder window: the longer (reminding earlier) is stricter.
struct Earlier;
/// Enforcement: `block` is stricter than `warn`.
struct Harder;
/// A permission: allowed only if both allow it.
struct OnlyIfBoth;
/// An allow list: only what both allow, compared as sets.
struct InBoth;

impl Strictness<u32> for AtMost {
    fn stricter(a: &u32, b: &u32) -> u32 {
        *a.min(b)
    }
}
impl Strictness<u32> for Earlier {
    fn stricter(a: &u32, b: &u32) -> u32 {
        *a.max(b)
    }
}
impl Strictness<Enforcement> for Harder {
    fn stricter(a: &Enforcement, b: &Enforcement) -> Enforcement {
        *a.max(b)
    }
}
impl Strictness<bool> for OnlyIfBoth {
    fn stricter(a: &bool, b: &bool) -> bool {
        *a && *b
    }
}
impl Strictness<Vec<String>> for InBoth {
    fn stricter(a: &Vec<String>, b: &Vec<String>) -> Vec<String> {
        Self::normal(&b.iter().filter(|x| a.contains(x)).cloned().collect())
    }
    fn normal(v: &Vec<String>) -> Vec<String> {
        let mut v = v.clone();
        v.sort();
        v.dedup();
        v
    }
}

/// Puts `new` in `slot` when it is stricter than what is there, or nothing is.
fn tighten<S: Strictness<T>, T: Clone + PartialEq>(
    slot: &mut Option<Bound<T>>,
    new: Option<&T>,
    by: &str,
) {
    let Some(new) = new else { return };
    let value = match slot {
        None => S::normal(new),
        Some(old) => {
            let won = S::stricter(&old.value, new);
            if won == old.value {
                return;
            }
            won
        }
    };
    *slot = Some(Bound {
        value,
        by: by.to_owned(),
    });
}

/// The refusal when `wanted` is looser than the bound in `slot`.
fn no_looser<S: Strictness<T>, T: Clone + PartialEq + std::fmt::Debug>(
    field: &'static str,
    slot: &Option<Bound<T>>,
    wanted: Option<&T>,
) -> Result<(), PolicyError> {
    let (Some(bound), Some(wanted)) = (slot, wanted) else {
        return Ok(());
    };
    if S::stricter(&bound.value, wanted) == S::normal(wanted) {
        return Ok(());
    }
    Err(PolicyError::Looser {
        field,
        wanted: shown(wanted),
        allowed: shown(&bound.value),
        by: bound.by.clone(),
    })
}

/// A value as the policy file writes it.
fn shown<T: std::fmt::Debug>(v: &T) -> String {
    format!("{v:?}").to_lowercase()
}

/// Refuses a file the policy names (a CA bundle) unless only `admin_uid` could have written it,
/// as for the policy itself: a file the user can replace would let them choose what is trusted.
pub fn check_trusted(path: &Path, admin_uid: u32) -> Result<(), PolicyError> {
    trusted(path, admin_uid)
}

/// Refuses a file, or a directory above it, that someone other than `admin_uid` owns or that
/// group or others may write (a sticky world-writable directory such as /tmp included: its
/// users may not replace another's file, but may plant one before the admin does).
fn trusted(path: &Path, admin_uid: u32) -> Result<(), PolicyError> {
    let untrusted = |p: &Path, why: String| PolicyError::Untrusted {
        path: p.display().to_string(),
        why,
    };
    let abs = std::fs::canonicalize(path).map_err(|e| PolicyError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    for p in abs.ancestors() {
        let m = std::fs::metadata(p).map_err(|e| PolicyError::Unreadable {
            path: p.display().to_string(),
            reason: e.to_string(),
        })?;
        if m.uid() != admin_uid {
            return Err(untrusted(p, format!("it is owned by uid {}", m.uid())));
        }
        if m.mode() & 0o022 != 0 {
            let who = if m.mode() & 0o002 != 0 {
                "everyone"
            } else {
                "its group"
            };
            return Err(untrusted(
                p,
                format!("{who} may write it (mode {:o})", m.mode() & 0o7777),
            ));
        }
    }
    Ok(())
}

/// The 1-based line holding byte `at` of `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The line of the `i`-th `[[rule]]` header (0-based), or 1 when it cannot be found.
fn nth_rule_line(text: &str, i: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[rule]]"))
        .nth(i)
        .map_or(1, |(n, _)| n + 1)
}

#[cfg(test)]
mod tests;
