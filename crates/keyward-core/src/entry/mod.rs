//! Entries: the metadata of a stored key (catalog) and its secret value (keystore).
//!
//! Input is validated here, at the edge of the core, so the catalog and the providers only ever
//! see well-formed names, ARNs and durations.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What kind of key an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// An AWS access key pair, handed out only as STS session credentials.
    Aws,
    /// A plain API key or token.
    Static,
    /// An OAuth2 client (id and secret), handed out only as access tokens from the
    /// client-credentials grant.
    #[serde(rename = "oauth2")]
    OAuth2,
    /// An Alibaba Cloud RAM user's AccessKey pair, handed out as STS tokens (`AssumeRole`) when
    /// a role is set.
    Aliyun,
}

/// How a static key may be handed to a program (`keyward edit NAME --allow-lease MODE`): a
/// static key has no short-lived form, so it leaves the agent only as a lease, and only where
/// the user said so for that key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum LeaseMode {
    /// In an environment variable of the one command `keyward exec` starts (or, as that is no
    /// less exposed, in a file descriptor it reads).
    Env,
    /// Only in a file descriptor the command reads (`/dev/fd/N`): not in its environment, which
    /// every program it starts inherits.
    File,
}

impl LeaseMode {
    /// The name the CLI and the audit use.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseMode::Env => "env",
            LeaseMode::File => "file",
        }
    }

    /// Whether a key allowed this way may be leased in `form`: `env` allows a variable and a
    /// file descriptor, `file` only a file descriptor.
    pub fn allows(self, form: LeaseMode) -> bool {
        self == LeaseMode::Env || form == LeaseMode::File
    }
}

/// A tool whose credential-helper protocol Keyward answers (`keyward setup git|docker`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ts_rs::TS,
)]
#[serde(rename_all = "lowercase")]
pub enum HelperTool {
    /// git's credential helper (`git-credential-keyward`).
    Git,
    /// docker's credential helper (`docker-credential-keyward`).
    Docker,
}

impl HelperTool {
    /// The name the CLI and the audit use.
    pub fn as_str(self) -> &'static str {
        match self {
            HelperTool::Git => "git",
            HelperTool::Docker => "docker",
        }
    }
}

/// Which key answers a tool's credential helper for one host, and the user name it gives with
/// it. Kept in the authenticated vault header: a key goes only to the host the user bound it to,
/// whatever a tool's config file (which any program of the user can edit) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelperBinding {
    /// The entry's id.
    pub entry: String,
    /// The user name the helper answers with (a token's conventional name when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// Checks and normalises a host a credential helper answers for: `host` or `host:port`,
/// lower-cased, no scheme, path or user part.
pub fn helper_host(host: &str) -> Result<String, EntryError> {
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        && !host.starts_with(['.', '-', ':']);
    if ok {
        Ok(host.to_ascii_lowercase())
    } else {
        Err(EntryError::Host(printable(host)))
    }
}

/// Checks a user name a credential helper answers with: printable, no spaces.
pub fn helper_username(name: &str) -> Result<(), EntryError> {
    if !name.is_empty() && name.len() <= 256 && name.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(EntryError::Username)
    }
}

impl EntryKind {
    /// The stable name stored in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Aws => "aws",
            EntryKind::Static => "static",
            EntryKind::OAuth2 => "oauth2",
            EntryKind::Aliyun => "aliyun",
        }
    }
    /// Parses a stored kind name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "aws" => Some(EntryKind::Aws),
            "static" => Some(EntryKind::Static),
            "oauth2" => Some(EntryKind::OAuth2),
            "aliyun" => Some(EntryKind::Aliyun),
            _ => None,
        }
    }
}

mod aliyun;
mod aws;
mod oauth2;
mod provider_use;

pub use aliyun::{
    validate_aliyun_config, validate_aliyun_key, AliyunConfig, ALIYUN_DEFAULT_SESSION_SECS,
};
pub use aws::{access_key_hint, validate_aws_config, validate_aws_key, AwsConfig};
pub use oauth2::{validate_client_secret, validate_oauth2_config, ClientAuth, OAuth2Config};
pub use provider_use::{ProviderUse, ReportedUse};

/// Kind-specific, non-secret settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct EntryConfig {
    /// Present for `aws` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsConfig>,
    /// Present for `oauth2` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Config>,
    /// Present for `aliyun` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliyun: Option<AliyunConfig>,
}

/// Catalog metadata of one entry. Never holds secret material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct EntryMeta {
    /// Random id naming the keychain item.
    pub id: String,
    /// User-chosen unique name (also the AWS profile name for `aws`).
    pub name: String,
    /// Kind of key.
    pub kind: EntryKind,
    /// Who is responsible for the key.
    pub owner: Option<String>,
    /// What the key is for.
    pub purpose: Option<String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// When it was added (RFC 3339).
    pub created: String,
    /// When its secret was last rotated (RFC 3339).
    pub rotated: Option<String>,
    /// Rotation interval in days, if a rotation policy applies.
    pub rotation_interval_days: Option<u32>,
    /// When the key expires (RFC 3339).
    pub expires: Option<String>,
    /// When it was last used to issue a credential (RFC 3339).
    pub last_used: Option<String>,
    /// How many credentials it has issued.
    pub use_count: u64,
    /// What the provider last said about the key's use (AWS keys; `None` until asked). Filled
    /// in by the catalog, never written through the entry.
    pub provider_use: Option<ProviderUse>,
    /// Kind-specific settings.
    pub config: EntryConfig,
}

/// How close a key is to needing attention, from its rotation interval and expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Nothing due.
    Ok,
    /// Rotation or expiry within [`DUE_SOON_DAYS`] days.
    DueSoon,
    /// Rotation is past due.
    Overdue,
    /// Past its expiry.
    Expired,
    /// Issued nothing for longer than the admin policy's `max_idle_days`.
    Unused,
}

/// How many days ahead a rotation or expiry counts as "due soon".
pub const DUE_SOON_DAYS: i64 = 14;

impl EntryState {
    /// The state as the catalog and the wire spell it (`due_soon`).
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Ok => "ok",
            EntryState::DueSoon => "due_soon",
            EntryState::Overdue => "overdue",
            EntryState::Expired => "expired",
            EntryState::Unused => "unused",
        }
    }

    /// The state spelt `s`, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Ok,
            Self::DueSoon,
            Self::Overdue,
            Self::Expired,
            Self::Unused,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

impl EntryMeta {
    /// Its state at `now` under its own rotation interval and expiry alone (no admin policy):
    /// see [`crate::policy::Effective::standing`].
    pub fn state(&self, now: time::OffsetDateTime) -> EntryState {
        crate::policy::Effective::default()
            .standing(self, now)
            .state
    }
}

/// The secret part of an entry: what is age-encrypted into the keystore.
pub enum SecretValue {
    /// An AWS access key pair.
    Aws {
        /// Access key id (AKIA…).
        access_key_id: String,
        /// Secret access key.
        secret_access_key: SecretString,
    },
    /// A plain token.
    Static {
        /// The token.
        value: SecretString,
    },
    /// An OAuth2 client secret (the client id is in the entry's config).
    OAuth2 {
        /// The client secret.
        client_secret: SecretString,
    },
    /// An Alibaba Cloud AccessKey pair.
    Aliyun {
        /// AccessKey ID (LTAI…).
        access_key_id: String,
        /// AccessKey secret.
        access_key_secret: SecretString,
    },
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretValue::Aws { .. } => f.write_str("SecretValue::Aws(<redacted>)"),
            SecretValue::Static { .. } => f.write_str("SecretValue::Static(<redacted>)"),
            SecretValue::OAuth2 { .. } => f.write_str("SecretValue::OAuth2(<redacted>)"),
            SecretValue::Aliyun { .. } => f.write_str("SecretValue::Aliyun(<redacted>)"),
        }
    }
}

/// Serialized form, only ever built transiently right before encryption / after decryption.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum SecretWire {
    Aws {
        access_key_id: String,
        secret_access_key: String,
    },
    Static {
        value: String,
    },
    #[serde(rename = "oauth2")]
    OAuth2 {
        client_secret: String,
    },
    Aliyun {
        access_key_id: String,
        access_key_secret: String,
    },
}

impl Drop for SecretWire {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        match self {
            SecretWire::Aws {
                access_key_id,
                secret_access_key,
            } => {
                access_key_id.zeroize();
                secret_access_key.zeroize();
            }
            SecretWire::Static { value } => value.zeroize(),
            SecretWire::OAuth2 { client_secret } => client_secret.zeroize(),
            SecretWire::Aliyun {
                access_key_id,
                access_key_secret,
            } => {
                access_key_id.zeroize();
                access_key_secret.zeroize();
            }
        }
    }
}

impl SecretValue {
    /// The kind this secret belongs to.
    pub fn kind(&self) -> EntryKind {
        match self {
            SecretValue::Aws { .. } => EntryKind::Aws,
            SecretValue::Static { .. } => EntryKind::Static,
            SecretValue::OAuth2 { .. } => EntryKind::OAuth2,
            SecretValue::Aliyun { .. } => EntryKind::Aliyun,
        }
    }

    /// Plaintext bytes for encryption; the caller wipes them.
    fn to_wire(&self) -> SecretWire {
        match self {
            SecretValue::Aws {
                access_key_id,
                secret_access_key,
            } => SecretWire::Aws {
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.expose_secret().to_owned(),
            },
            SecretValue::Static { value } => SecretWire::Static {
                value: value.expose_secret().to_owned(),
            },
            SecretValue::OAuth2 { client_secret } => SecretWire::OAuth2 {
                client_secret: client_secret.expose_secret().to_owned(),
            },
            SecretValue::Aliyun {
                access_key_id,
                access_key_secret,
            } => SecretWire::Aliyun {
                access_key_id: access_key_id.clone(),
                access_key_secret: access_key_secret.expose_secret().to_owned(),
            },
        }
    }

    fn from_wire(wire: &SecretWire) -> Self {
        match wire {
            SecretWire::Aws {
                access_key_id,
                secret_access_key,
            } => SecretValue::Aws {
                access_key_id: access_key_id.clone(),
                secret_access_key: SecretString::from(secret_access_key.clone()),
            },
            SecretWire::Static { value } => SecretValue::Static {
                value: SecretString::from(value.clone()),
            },
            SecretWire::OAuth2 { client_secret } => SecretValue::OAuth2 {
                client_secret: SecretString::from(client_secret.clone()),
            },
            SecretWire::Aliyun {
                access_key_id,
                access_key_secret,
            } => SecretValue::Aliyun {
                access_key_id: access_key_id.clone(),
                access_key_secret: SecretString::from(access_key_secret.clone()),
            },
        }
    }

    /// What is age-encrypted for entry `entry_id`: the secret together with the settings that
    /// decide where it is sent and what it is used for, so that editing those in the catalog
    /// cannot redirect it (the catalog is not authenticated; the age ciphertext is).
    pub(crate) fn to_sealed_plaintext(
        &self,
        entry_id: &str,
        config: &EntryConfig,
    ) -> zeroize::Zeroizing<Vec<u8>> {
        let sealed = SealedWire {
            v: SEALED_VERSION,
            entry_id: entry_id.to_owned(),
            config: config.bound(),
            secret: self.to_wire(),
        };
        // Serializing strings and plain structs into a Vec cannot fail.
        zeroize::Zeroizing::new(serde_json::to_vec(&sealed).unwrap_or_default())
    }

    /// Parses decrypted plaintext: the secret and, unless it was stored before settings were
    /// sealed with it, what it is bound to.
    pub(crate) fn from_plaintext(bytes: &[u8]) -> Option<(Self, Option<Binding>)> {
        if let Ok(sealed) = serde_json::from_slice::<SealedWire>(bytes) {
            if sealed.v != SEALED_VERSION {
                return None;
            }
            let value = SecretValue::from_wire(&sealed.secret);
            let binding = Binding {
                entry_id: sealed.entry_id.clone(),
                config: sealed.config.clone(),
            };
            return Some((value, Some(binding)));
        }
        let wire: SecretWire = serde_json::from_slice(bytes).ok()?;
        Some((SecretValue::from_wire(&wire), None))
    }
}

/// Version of the sealed plaintext format ([`SecretValue::to_sealed_plaintext`]).
const SEALED_VERSION: u32 = 2;

/// The sealed plaintext: the secret and what it is bound to.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedWire {
    v: u32,
    entry_id: String,
    config: EntryConfig,
    secret: SecretWire,
}

/// What a stored secret was sealed together with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding {
    /// The entry it was stored for.
    pub entry_id: String,
    /// The entry's settings when it was stored, in [`EntryConfig::bound`] form.
    pub config: EntryConfig,
}

impl EntryConfig {
    /// The part of the settings sealed with the secret: all of it but what is derived from the
    /// secret itself (the access key hint, recomputed from the sealed key id).
    pub(crate) fn bound(&self) -> EntryConfig {
        let mut c = self.clone();
        if let Some(aws) = c.aws.as_mut() {
            aws.access_key_hint = String::new();
        }
        if let Some(ali) = c.aliyun.as_mut() {
            ali.access_key_hint = String::new();
        }
        c
    }

    /// Names of the settings that differ between `self` and `other` (both in bound form),
    /// e.g. `oauth2.token_url`: what the user is told was changed.
    pub(crate) fn differences(&self, other: &EntryConfig) -> Vec<String> {
        let (a, b) = (
            serde_json::to_value(self).unwrap_or_default(),
            serde_json::to_value(other).unwrap_or_default(),
        );
        let mut out = Vec::new();
        for kind in ["aws", "oauth2", "aliyun"] {
            let (x, y) = (&a[kind], &b[kind]);
            if x == y {
                continue;
            }
            let (Some(xm), Some(ym)) = (x.as_object(), y.as_object()) else {
                out.push(kind.to_owned());
                continue;
            };
            let mut fields: Vec<&String> = xm.keys().chain(ym.keys()).collect();
            fields.sort();
            fields.dedup();
            for f in fields {
                if xm.get(f) != ym.get(f) {
                    out.push(format!("{kind}.{f}"));
                }
            }
        }
        out
    }
}

/// Invalid input for an entry, said so that the user can fix it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EntryError {
    /// Bad entry name.
    #[error("invalid name '{0}': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")]
    Name(String),
    /// A host a credential helper cannot answer for.
    #[error("'{0}' is not a host name: use host or host:port (no scheme, path or user)")]
    Host(String),
    /// A user name a credential helper cannot answer with.
    #[error("the user name must be 1-256 printable characters, without spaces")]
    Username,
    /// Bad access key id.
    #[error("invalid AWS access key id: expected 16-128 upper-case letters and digits starting with AKIA (long-lived key)")]
    AccessKeyId,
    /// Bad secret access key.
    #[error(
        "invalid AWS secret access key: expected 40 characters of letters, digits, '+' and '/'"
    )]
    SecretAccessKey,
    /// Bad Alibaba Cloud AccessKey ID.
    #[error("invalid Alibaba Cloud AccessKey ID: expected 16-32 letters and digits starting with LTAI (a RAM user's long-lived key)")]
    AliyunAccessKeyId,
    /// Bad Alibaba Cloud AccessKey secret.
    #[error("invalid Alibaba Cloud AccessKey secret: expected 30 letters and digits")]
    AliyunSecret,
    /// Bad RAM role ARN.
    #[error("invalid RAM role ARN '{0}': expected acs:ram::<account id>:role/<name>")]
    AliyunRoleArn(String),
    /// Bad Alibaba Cloud session duration.
    #[error(
        "session duration {0}s is out of range for Alibaba Cloud STS: use 900 to 43200 seconds"
    )]
    AliyunDuration(u32),
    /// Bad role ARN.
    #[error("invalid role ARN '{0}': expected arn:aws:iam::<12-digit account>:role/<name>")]
    RoleArn(String),
    /// Bad MFA serial.
    #[error("invalid MFA serial '{0}': expected an ARN like arn:aws:iam::<account>:mfa/<name> or a hardware serial")]
    MfaSerial(String),
    /// Bad region.
    #[error("invalid region '{0}': expected something like eu-west-1")]
    Region(String),
    /// Bad session duration.
    #[error("session duration {0}s is out of range: use 1800 to 129600 seconds (credentials with under 20 minutes left are never handed out)")]
    Duration(u32),
    /// Bad endpoint.
    #[error("invalid STS endpoint '{0}': use https://… (or http://127.0.0.1:PORT for a local test endpoint)")]
    Endpoint(String),
    /// Text field with control characters or too long.
    #[error("invalid {field}: at most {max} characters, no control characters")]
    Text {
        /// Which field.
        field: &'static str,
        /// Maximum length.
        max: usize,
    },
    /// More tags than a key may have.
    #[error("too many tags: at most 32")]
    TooManyTags,
    /// An expiry that is not an RFC 3339 date-time.
    #[error("invalid expiry: use RFC 3339, e.g. 2027-01-31T00:00:00Z")]
    Expiry,
    /// Empty secret.
    #[error("the secret value is empty")]
    EmptySecret,
    /// Bad OAuth2 client id.
    #[error("invalid client id: 1-255 printable characters, no spaces at either end, no control characters")]
    ClientId,
    /// Bad OAuth2 client secret.
    #[error(
        "invalid client secret: 1-4096 printable ASCII characters (no line breaks, NUL or accented letters, as OAuth2 requires)"
    )]
    ClientSecret,
    /// Bad token or introspection endpoint.
    #[error("invalid {field} '{url}': use https://… (or http://127.0.0.1:PORT for a local test server), with no user name, password or #fragment")]
    OAuthUrl {
        /// Which URL.
        field: &'static str,
        /// What was given (escaped).
        url: String,
    },
    /// Bad scope.
    #[error("invalid scope '{0}': a scope is 1-128 visible characters without spaces, '\"' or '\\' (give several as separate scopes)")]
    Scope(String),
    /// Too many scopes.
    #[error("too many scopes: at most 32")]
    TooManyScopes,
    /// Config missing for the kind.
    #[error("the {0} settings are missing")]
    MissingConfig(&'static str),
}

/// Checks an entry name.
pub fn validate_name(name: &str) -> Result<(), EntryError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(EntryError::Name(printable(name)))
    }
}

/// Checks a free-text metadata field.
pub fn validate_text(field: &'static str, value: &str, max: usize) -> Result<(), EntryError> {
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(EntryError::Text { field, max });
    }
    Ok(())
}

/// Checks a key's user-typed metadata: owner (128 characters) and purpose (512) without control
/// characters, at most 32 tags of 64, and an RFC 3339 expiry.
pub fn validate_meta(
    owner: Option<&str>,
    purpose: Option<&str>,
    tags: &[String],
    expires: Option<&str>,
) -> Result<(), EntryError> {
    for (field, value, max) in [
        ("owner", owner, 128),
        ("purpose", purpose, 512),
        ("expires", expires, 64),
    ] {
        if let Some(v) = value {
            validate_text(field, v, max)?;
        }
    }
    if tags.len() > 32 {
        return Err(EntryError::TooManyTags);
    }
    for t in tags {
        validate_text("tag", t, 64)?;
    }
    if let Some(exp) = expires {
        time::OffsetDateTime::parse(exp, &time::format_description::well_known::Rfc3339)
            .map_err(|_| EntryError::Expiry)?;
    }
    Ok(())
}

/// Echoable form of user input in an error: control characters escaped, length capped.
fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(80).flat_map(char::escape_default).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("prod-deploy_1.x").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name(&"a".repeat(65)).is_err());
        assert_eq!(
            validate_name("a\nb"),
            Err(EntryError::Name("a\\nb".into())),
            "control characters are escaped in the message"
        );
    }

    #[test]
    fn secret_round_trip_and_debug_redacts() {
        let s = SecretValue::Aws {
            access_key_id: "AKIAKEYWARDTEST001".into(),
            secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        };
        assert!(!format!("{s:?}").contains("wJalr"));
        let cfg = EntryConfig {
            aws: Some(AwsConfig {
                access_key_hint: "AKIA…T001".into(),
                session_duration_secs: 3600,
                ..Default::default()
            }),
            ..Default::default()
        };
        let (back, binding) =
            SecretValue::from_plaintext(&s.to_sealed_plaintext("id1", &cfg)).expect("parse");
        let binding = binding.expect("sealed with its settings");
        assert_eq!(binding.entry_id, "id1");
        assert_eq!(binding.config, cfg.bound());
        assert_eq!(
            binding.config.differences(&cfg.bound()),
            Vec::<String>::new()
        );
        let mut moved = cfg.bound();
        if let Some(a) = moved.aws.as_mut() {
            a.sts_endpoint = Some("https://elsewhere.example".into());
        }
        assert_eq!(binding.config.differences(&moved), ["aws.sts_endpoint"]);
        match back {
            SecretValue::Aws {
                access_key_id,
                secret_access_key,
            } => {
                assert_eq!(access_key_id, "AKIAKEYWARDTEST001");
                assert_eq!(
                    secret_access_key.expose_secret(),
                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
                );
            }
            other => panic!("wrong kind {other:?}"),
        }
        assert_eq!(access_key_hint("AKIAKEYWARDTEST001"), "AKIA…T001");
    }
}

#[cfg(test)]
mod state_tests {
    use super::*;
    use time::macros::datetime;

    fn meta(
        created: &str,
        rotated: Option<&str>,
        days: Option<u32>,
        expires: Option<&str>,
    ) -> EntryMeta {
        EntryMeta {
            id: "x".into(),
            name: "k".into(),
            kind: EntryKind::Static,
            owner: None,
            purpose: None,
            tags: vec![],
            created: created.into(),
            rotated: rotated.map(Into::into),
            rotation_interval_days: days,
            expires: expires.map(Into::into),
            last_used: None,
            use_count: 0,
            provider_use: None,
            config: EntryConfig::default(),
        }
    }

    #[test]
    fn state_follows_rotation_interval_and_expiry() {
        let now = datetime!(2026-11-22 12:00 UTC);
        let created = "2026-09-01T00:00:00Z";
        assert_eq!(meta(created, None, None, None).state(now), EntryState::Ok);
        // 90 days after 1 Sept is 30 Nov: within 14 days.
        assert_eq!(
            meta(created, None, Some(90), None).state(now),
            EntryState::DueSoon
        );
        assert_eq!(
            meta(created, None, Some(60), None).state(now),
            EntryState::Overdue
        );
        // A rotation resets the clock.
        assert_eq!(
            meta(created, Some("2026-11-01T00:00:00Z"), Some(60), None).state(now),
            EntryState::Ok
        );
        assert_eq!(
            meta(created, None, None, Some("2026-11-22T11:59:59Z")).state(now),
            EntryState::Expired
        );
        assert_eq!(
            meta(created, None, None, Some("2026-12-01T00:00:00Z")).state(now),
            EntryState::DueSoon
        );
        assert_eq!(
            meta(created, None, Some(60), Some("2026-01-01T00:00:00Z")).state(now),
            EntryState::Expired,
            "expired outranks overdue"
        );
        assert_eq!(
            meta(created, None, None, Some("garbage")).state(now),
            EntryState::Expired
        );
    }
}
