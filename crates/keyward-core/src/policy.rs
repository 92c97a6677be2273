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

use crate::entry::EntryKind;

/// Where the admin policy lives on Linux.
pub const SYSTEM_PATH: &str = "/etc/keyward/policy.toml";

/// The variable that names another policy path, for tests. Not yet honoured by the agent:
/// whether a release build may honour it at all is open (a user who sets it escapes the
/// admin's file), see docs/STATUS.md, issue 13.
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

/// One set of limits; a field left out sets nothing. In the file these are the keys of
/// `[defaults]` and of each `[[rule]]`; in the user's settings, the same names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// A key older than this many days (since created or rotated) is overdue.
    pub max_key_age_days: Option<u32>,
    /// Reminders start this many days before a key is overdue or expires.
    pub remind_before_days: Option<u32>,
    /// What overdue or expired means: `warn` or `block`.
    pub enforcement: Option<Enforcement>,
    /// The longest a credential handed out may live, in seconds.
    pub max_credential_ttl_secs: Option<u32>,
    /// A key that issued nothing for this many days counts as unused.
    pub max_idle_days: Option<u32>,
    /// Whether "allow for hours" and "until lock" grants may be given.
    pub standing_grants: Option<bool>,
    /// The longest idle time before the vault locks itself, in seconds.
    pub auto_lock_max_secs: Option<u32>,
    /// The providers keys may issue through (`aws`, `oauth2`, …); left out: any.
    pub allowed_providers: Option<Vec<String>>,
    /// The STS endpoints AWS keys may use; left out: any.
    pub allowed_sts_endpoints: Option<Vec<String>>,
    /// Whether static keys may be handed to a program as a lease.
    pub static_leases: Option<bool>,
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

/// The policy path in force: [`PATH_VAR`] when set, else [`SYSTEM_PATH`].
pub fn path() -> PathBuf {
    std::env::var_os(PATH_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SYSTEM_PATH))
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
        let policy = Policy {
            defaults: file.defaults,
            rules,
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
    pub fn load(path: &Path, admin_uid: u32) -> Result<Policy, PolicyError> {
        let unreadable = |e: std::io::Error| PolicyError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Policy::default()),
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
        Policy::parse(path, &text)
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
            ];
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

/// The limits in force on one key (or, from [`Policy::admit`], on every key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effective {
    /// See [`Limits::max_key_age_days`].
    pub max_key_age_days: Option<Bound<u32>>,
    /// See [`Limits::remind_before_days`].
    pub remind_before_days: Option<Bound<u32>>,
    /// See [`Limits::enforcement`].
    pub enforcement: Option<Bound<Enforcement>>,
    /// See [`Limits::max_credential_ttl_secs`].
    pub max_credential_ttl_secs: Option<Bound<u32>>,
    /// See [`Limits::max_idle_days`].
    pub max_idle_days: Option<Bound<u32>>,
    /// See [`Limits::standing_grants`].
    pub standing_grants: Option<Bound<bool>>,
    /// See [`Limits::auto_lock_max_secs`].
    pub auto_lock_max_secs: Option<Bound<u32>>,
    /// See [`Limits::allowed_providers`].
    pub allowed_providers: Option<Bound<Vec<String>>>,
    /// See [`Limits::allowed_sts_endpoints`].
    pub allowed_sts_endpoints: Option<Bound<Vec<String>>>,
    /// See [`Limits::static_leases`].
    pub static_leases: Option<Bound<bool>>,
}

/// Which of two values of a limit is the stricter.
trait Strict: Clone + PartialEq + std::fmt::Debug {
    fn stricter(a: &Self, b: &Self) -> Self;
}

/// A maximum: the smaller is stricter.
#[derive(Clone, Copy, PartialEq, Debug)]
struct AtMost(u32);
/// A reminder window: the earlier (longer) one is stricter.
#[derive(Clone, Copy, PartialEq, Debug)]
struct Earlier(u32);

impl Strict for AtMost {
    fn stricter(a: &Self, b: &Self) -> Self {
        AtMost(a.0.min(b.0))
    }
}
impl Strict for Earlier {
    fn stricter(a: &Self, b: &Self) -> Self {
        Earlier(a.0.max(b.0))
    }
}
impl Strict for Enforcement {
    fn stricter(a: &Self, b: &Self) -> Self {
        *a.max(b)
    }
}
/// A permission: `false` is stricter.
impl Strict for bool {
    fn stricter(a: &Self, b: &Self) -> Self {
        *a && *b
    }
}
/// An allow list: only what both allow (compared as sets: [`set`] sorts them).
impl Strict for Vec<String> {
    fn stricter(a: &Self, b: &Self) -> Self {
        set(&b
            .iter()
            .filter(|x| a.contains(x))
            .cloned()
            .collect::<Vec<_>>())
    }
}

/// An allow list sorted and without repeats, so that equal sets compare equal.
fn set(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Takes `new` into `slot` when it is stricter than what is there (or nothing is).
fn tighten<S: Strict, T>(
    slot: &mut Option<Bound<T>>,
    new: Option<T>,
    by: &str,
    wrap: impl Fn(&T) -> S,
    unwrap: impl Fn(S) -> T,
) {
    let Some(new) = new else { return };
    match slot {
        None => {
            *slot = Some(Bound {
                value: new,
                by: by.to_owned(),
            })
        }
        Some(old) => {
            let (o, n) = (wrap(&old.value), wrap(&new));
            let won = S::stricter(&o, &n);
            if won != o {
                *slot = Some(Bound {
                    value: unwrap(won),
                    by: by.to_owned(),
                });
            }
        }
    }
}

/// The refusal when `wanted` is looser than the bound in `slot`.
fn no_looser<S: Strict, T: std::fmt::Debug>(
    field: &'static str,
    slot: &Option<Bound<T>>,
    wanted: &Option<T>,
    wrap: impl Fn(&T) -> S,
) -> Result<(), PolicyError> {
    let (Some(bound), Some(wanted)) = (slot, wanted) else {
        return Ok(());
    };
    let w = wrap(wanted);
    if S::stricter(&wrap(&bound.value), &w) == w {
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

impl Effective {
    fn take(&mut self, l: &Limits, by: &str) {
        let c = |v: &Option<u32>| *v;
        tighten(
            &mut self.max_key_age_days,
            c(&l.max_key_age_days),
            by,
            |v| AtMost(*v),
            |s| s.0,
        );
        tighten(
            &mut self.remind_before_days,
            c(&l.remind_before_days),
            by,
            |v| Earlier(*v),
            |s| s.0,
        );
        tighten(&mut self.enforcement, l.enforcement, by, |v| *v, |s| s);
        tighten(
            &mut self.max_credential_ttl_secs,
            c(&l.max_credential_ttl_secs),
            by,
            |v| AtMost(*v),
            |s| s.0,
        );
        tighten(
            &mut self.max_idle_days,
            c(&l.max_idle_days),
            by,
            |v| AtMost(*v),
            |s| s.0,
        );
        tighten(
            &mut self.standing_grants,
            l.standing_grants,
            by,
            |v| *v,
            |s| s,
        );
        tighten(
            &mut self.auto_lock_max_secs,
            c(&l.auto_lock_max_secs),
            by,
            |v| AtMost(*v),
            |s| s.0,
        );
        tighten(
            &mut self.allowed_providers,
            l.allowed_providers.clone(),
            by,
            |v| set(v),
            |s| s,
        );
        tighten(
            &mut self.allowed_sts_endpoints,
            l.allowed_sts_endpoints.clone(),
            by,
            |v| set(v),
            |s| s,
        );
        tighten(&mut self.static_leases, l.static_leases, by, |v| *v, |s| s);
    }

    fn admit(&self, u: &Limits) -> Result<(), PolicyError> {
        no_looser(
            "max_key_age_days",
            &self.max_key_age_days,
            &u.max_key_age_days,
            |v| AtMost(*v),
        )?;
        no_looser(
            "remind_before_days",
            &self.remind_before_days,
            &u.remind_before_days,
            |v| Earlier(*v),
        )?;
        no_looser("enforcement", &self.enforcement, &u.enforcement, |v| *v)?;
        no_looser(
            "max_credential_ttl_secs",
            &self.max_credential_ttl_secs,
            &u.max_credential_ttl_secs,
            |v| AtMost(*v),
        )?;
        no_looser(
            "max_idle_days",
            &self.max_idle_days,
            &u.max_idle_days,
            |v| AtMost(*v),
        )?;
        no_looser(
            "standing_grants",
            &self.standing_grants,
            &u.standing_grants,
            |v| *v,
        )?;
        no_looser(
            "auto_lock_max_secs",
            &self.auto_lock_max_secs,
            &u.auto_lock_max_secs,
            |v| AtMost(*v),
        )?;
        no_looser(
            "allowed_providers",
            &self.allowed_providers,
            &u.allowed_providers,
            |v| set(v),
        )?;
        no_looser(
            "allowed_sts_endpoints",
            &self.allowed_sts_endpoints,
            &u.allowed_sts_endpoints,
            |v| set(v),
        )?;
        no_looser(
            "static_leases",
            &self.static_leases,
            &u.static_leases,
            |v| *v,
        )
    }
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
