//! Entries: the metadata of a stored key (catalog) and its secret value (keystore).
//!
//! Input is validated here, at the edge of the core, so the catalog and the providers only ever
//! see well-formed names, ARNs and durations.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What kind of key an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl EntryKind {
    /// The stable name stored in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Aws => "aws",
            EntryKind::Static => "static",
            EntryKind::OAuth2 => "oauth2",
        }
    }
    /// Parses a stored kind name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "aws" => Some(EntryKind::Aws),
            "static" => Some(EntryKind::Static),
            "oauth2" => Some(EntryKind::OAuth2),
            _ => None,
        }
    }
}

/// Non-secret settings of an AWS entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// First and last characters of the access key id, for display (`AKIA…WXYZ`).
    pub access_key_hint: String,
    /// Role to assume; GetSessionToken is used when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// MFA device serial or ARN, when the account requires MFA for STS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_serial: Option<String>,
    /// Region for the STS call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Lifetime of issued session credentials in seconds.
    pub session_duration_secs: u32,
    /// STS endpoint override (tests, private endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_endpoint: Option<String>,
}

/// How an OAuth2 client proves itself to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`), the method every server must support.
    #[default]
    Basic,
    /// Id and secret in the form body (`client_secret_post`).
    Post,
}

impl ClientAuth {
    /// The registered method name (`client_secret_basic` / `client_secret_post`).
    pub fn method_name(self) -> &'static str {
        match self {
            ClientAuth::Basic => "client_secret_basic",
            ClientAuth::Post => "client_secret_post",
        }
    }
}

/// Non-secret settings of an OAuth2 client entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// The client identifier (public, shown).
    pub client_id: String,
    /// The authorization server's token endpoint.
    pub token_url: String,
    /// Scopes asked for; the server's default for the client when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Client authentication method.
    #[serde(default, skip_serializing_if = "is_default_auth")]
    pub auth: ClientAuth,
    /// Token introspection endpoint (RFC 7662), used by "test this key" to confirm whose the
    /// token is and what it may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_url: Option<String>,
}

fn is_default_auth(a: &ClientAuth) -> bool {
    *a == ClientAuth::Basic
}

/// Kind-specific, non-secret settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryConfig {
    /// Present for `aws` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsConfig>,
    /// Present for `oauth2` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Config>,
}

/// Catalog metadata of one entry. Never holds secret material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Kind-specific settings.
    pub config: EntryConfig,
}

/// How close a key is to needing attention, from its rotation interval and expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// How many days ahead a rotation or expiry counts as "due soon".
pub const DUE_SOON_DAYS: i64 = 14;

fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

impl EntryMeta {
    /// Its state at `now`. Rotation is due `rotation_interval_days` after the last rotation (or
    /// creation when never rotated); an unreadable date counts as due, so it is looked at.
    pub fn state(&self, now: time::OffsetDateTime) -> EntryState {
        let soon = now + time::Duration::days(DUE_SOON_DAYS);
        let expiry = self.expires.as_deref().map(parse_time);
        let rotation_due = self.rotation_interval_days.map(|days| {
            parse_time(self.rotated.as_deref().unwrap_or(&self.created))
                .map(|t| t + time::Duration::days(i64::from(days)))
        });
        match expiry {
            Some(None) => return EntryState::Expired,
            Some(Some(t)) if t <= now => return EntryState::Expired,
            _ => {}
        }
        match rotation_due {
            Some(None) => return EntryState::Overdue,
            Some(Some(t)) if t <= now => return EntryState::Overdue,
            _ => {}
        }
        let due_soon =
            |d: Option<Option<time::OffsetDateTime>>| matches!(d, Some(Some(t)) if t <= soon);
        if due_soon(expiry) || due_soon(rotation_due) {
            EntryState::DueSoon
        } else {
            EntryState::Ok
        }
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
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretValue::Aws { .. } => f.write_str("SecretValue::Aws(<redacted>)"),
            SecretValue::Static { .. } => f.write_str("SecretValue::Static(<redacted>)"),
            SecretValue::OAuth2 { .. } => f.write_str("SecretValue::OAuth2(<redacted>)"),
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
        for kind in ["aws", "oauth2"] {
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
    /// Bad access key id.
    #[error("invalid AWS access key id: expected 16-128 upper-case letters and digits starting with AKIA (long-lived key)")]
    AccessKeyId,
    /// Bad secret access key.
    #[error(
        "invalid AWS secret access key: expected 40 characters of letters, digits, '+' and '/'"
    )]
    SecretAccessKey,
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

/// Checks a long-lived AWS key pair.
pub fn validate_aws_key(access_key_id: &str, secret: &str) -> Result<(), EntryError> {
    let id_ok = (16..=128).contains(&access_key_id.len())
        && access_key_id.starts_with("AKIA")
        && access_key_id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !id_ok {
        return Err(EntryError::AccessKeyId);
    }
    let secret_ok = secret.len() == 40
        && secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/');
    if !secret_ok {
        return Err(EntryError::SecretAccessKey);
    }
    Ok(())
}

/// Checks the non-secret AWS settings.
pub fn validate_aws_config(cfg: &AwsConfig) -> Result<(), EntryError> {
    if let Some(arn) = &cfg.role_arn {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "iam"
            && parts[4].len() == 12
            && parts[4].chars().all(|c| c.is_ascii_digit())
            && parts[5].starts_with("role/")
            && parts[5].len() > 5
            && arn.len() <= 2048
            && !arn.chars().any(|c| c.is_control() || c.is_whitespace());
        if !ok {
            return Err(EntryError::RoleArn(printable(arn)));
        }
    }
    if let Some(serial) = &cfg.mfa_serial {
        let ok = (9..=256).contains(&serial.len())
            && serial
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "=,.@:/-_+".contains(c));
        if !ok {
            return Err(EntryError::MfaSerial(printable(serial)));
        }
    }
    if let Some(region) = &cfg.region {
        let ok = (4..=32).contains(&region.len())
            && region.contains('-')
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(EntryError::Region(printable(region)));
        }
    }
    if !(1800..=129_600).contains(&cfg.session_duration_secs) {
        return Err(EntryError::Duration(cfg.session_duration_secs));
    }
    if let Some(ep) = &cfg.sts_endpoint {
        let local = ep.starts_with("http://127.0.0.1:")
            || ep.starts_with("http://localhost:")
            || ep.starts_with("http://[::1]:");
        let ok = (ep.starts_with("https://") || local)
            && ep.len() <= 512
            && !ep.chars().any(|c| c.is_control() || c.is_whitespace());
        if !ok {
            return Err(EntryError::Endpoint(printable(ep)));
        }
    }
    Ok(())
}

/// Checks an OAuth2 client secret.
pub fn validate_client_secret(secret: &str) -> Result<(), EntryError> {
    // RFC 6749 Appendix A: client_secret is VSCHAR (printable ASCII and space); servers refuse
    // anything else in the Basic header, so say so here rather than at the first token.
    if secret.is_empty() || secret.len() > 4096 || !secret.chars().all(|c| (' '..='~').contains(&c))
    {
        return Err(EntryError::ClientSecret);
    }
    Ok(())
}

/// Checks an endpoint URL: https, or plain http only to loopback; nothing that would put
/// credentials or a fragment in it.
fn validate_oauth_url(field: &'static str, raw: &str) -> Result<(), EntryError> {
    let bad = || EntryError::OAuthUrl {
        field,
        url: printable(raw),
    };
    if raw.len() > 2048 || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    let url = url::Url::parse(raw).map_err(|_| bad())?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return Err(bad());
    }
    Ok(())
}

/// Checks the non-secret OAuth2 settings.
pub fn validate_oauth2_config(cfg: &OAuth2Config) -> Result<(), EntryError> {
    let id = &cfg.client_id;
    // RFC 6749 Appendix A: client_id is VSCHAR (printable ASCII and space).
    if id.is_empty()
        || id.len() > 255
        || id.trim() != id
        || !id.chars().all(|c| (' '..='~').contains(&c))
    {
        return Err(EntryError::ClientId);
    }
    validate_oauth_url("token URL", &cfg.token_url)?;
    if let Some(u) = &cfg.introspection_url {
        validate_oauth_url("introspection URL", u)?;
    }
    if cfg.scopes.len() > 32 {
        return Err(EntryError::TooManyScopes);
    }
    for scope in &cfg.scopes {
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
        let ok = (1..=128).contains(&scope.len())
            && scope
                .chars()
                .all(|c| ('!'..='~').contains(&c) && c != '"' && c != '\\');
        if !ok {
            return Err(EntryError::Scope(printable(scope)));
        }
    }
    Ok(())
}

/// A display hint for an access key id: first four and last four characters.
pub fn access_key_hint(access_key_id: &str) -> String {
    let n = access_key_id.len();
    if n <= 8 {
        return "…".to_owned();
    }
    format!("{}…{}", &access_key_id[..4], &access_key_id[n - 4..])
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

    fn aws_cfg() -> AwsConfig {
        AwsConfig {
            access_key_hint: "AKIA…ABCD".into(),
            session_duration_secs: 3600,
            ..Default::default()
        }
    }

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
    fn aws_keys() {
        assert!(validate_aws_key(
            "AKIAKEYWARDTEST001",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        )
        .is_ok());
        assert_eq!(
            validate_aws_key("ASIAIOSFODNN7EXAMPLE", "x"),
            Err(EntryError::AccessKeyId)
        );
        assert_eq!(
            validate_aws_key("AKIAKEYWARDTEST001", "short"),
            Err(EntryError::SecretAccessKey)
        );
    }

    #[test]
    fn aws_config_bounds() {
        assert!(validate_aws_config(&aws_cfg()).is_ok());
        let mut c = aws_cfg();
        c.session_duration_secs = 900;
        assert_eq!(validate_aws_config(&c), Err(EntryError::Duration(900)));
        let mut c = aws_cfg();
        c.role_arn = Some("arn:aws:iam::123456789012:role/deploy".into());
        assert!(validate_aws_config(&c).is_ok());
        c.role_arn = Some("arn:aws:iam::1234:role/deploy".into());
        assert!(validate_aws_config(&c).is_err());
        let mut c = aws_cfg();
        c.sts_endpoint = Some("http://evil.example:80".into());
        assert!(validate_aws_config(&c).is_err());
        c.sts_endpoint = Some("http://127.0.0.1:5000".into());
        assert!(validate_aws_config(&c).is_ok());
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
mod oauth2_tests {
    use super::*;

    fn cfg() -> OAuth2Config {
        OAuth2Config {
            client_id: "ci-bot".into(),
            token_url: "https://auth.example.com/oauth/token".into(),
            scopes: vec!["deploy:read".into()],
            ..Default::default()
        }
    }

    #[test]
    fn endpoints_must_be_https_or_loopback() {
        assert!(validate_oauth2_config(&cfg()).is_ok());
        for (url, ok) in [
            ("http://127.0.0.1:8080/token", true),
            ("http://localhost:9000/token", true),
            ("http://[::1]:9000/token", true),
            ("http://auth.example.com/token", false),
            ("http://127.0.0.1.evil.example/token", false),
            ("https://user:pw@auth.example.com/token", false),
            ("https://auth.example.com/token#frag", false),
            ("ftp://auth.example.com/token", false),
            ("https://auth.example.com/to ken", false),
            ("https://auth.example.com/token\r\nX: y", false),
            ("not a url", false),
        ] {
            let mut c = cfg();
            c.token_url = url.into();
            assert_eq!(validate_oauth2_config(&c).is_ok(), ok, "{url}");
            let mut c = cfg();
            c.introspection_url = Some(url.into());
            assert_eq!(
                validate_oauth2_config(&c).is_ok(),
                ok,
                "introspection {url}"
            );
        }
    }

    #[test]
    fn client_id_and_scopes_carry_no_control_characters() {
        for id in ["", " ci", "ci\n", "ci\0x", &"a".repeat(256)] {
            let mut c = cfg();
            c.client_id = id.into();
            assert_eq!(
                validate_oauth2_config(&c),
                Err(EntryError::ClientId),
                "{id:?}"
            );
        }
        let mut c = cfg();
        c.client_id = "0oa1b2c3d4 e5f6".into();
        assert!(
            validate_oauth2_config(&c).is_ok(),
            "VSCHAR allows inner spaces"
        );
        for scope in ["", "a b", "a\"b", "a\\b", "a\nb"] {
            let mut c = cfg();
            c.scopes = vec![scope.into()];
            assert!(
                matches!(validate_oauth2_config(&c), Err(EntryError::Scope(_))),
                "{scope:?}"
            );
        }
        let mut c = cfg();
        c.scopes = vec!["api://x/.default".into(), "openid".into()];
        assert!(validate_oauth2_config(&c).is_ok());
        c.scopes = (0..33).map(|i| format!("s{i}")).collect();
        assert_eq!(validate_oauth2_config(&c), Err(EntryError::TooManyScopes));
        assert!(validate_client_secret("s3cr3t").is_ok());
        assert!(validate_client_secret("").is_err());
        assert!(validate_client_secret("line\nbreak").is_err());
        assert!(validate_client_secret("caf\u{e9}").is_err(), "not VSCHAR");
        assert!(validate_client_secret("a b+/:%&=~").is_ok());
    }

    #[test]
    fn oauth2_secret_round_trip_and_kind_name() {
        let s = SecretValue::OAuth2 {
            client_secret: SecretString::from("kw-client-secret-canary"),
        };
        assert!(!format!("{s:?}").contains("canary"));
        assert_eq!(s.kind(), EntryKind::OAuth2);
        let sealed = s.to_sealed_plaintext("id", &EntryConfig::default());
        match SecretValue::from_plaintext(&sealed).map(|(v, _)| v) {
            Some(SecretValue::OAuth2 { client_secret }) => {
                assert_eq!(client_secret.expose_secret(), "kw-client-secret-canary")
            }
            other => panic!("wrong kind {other:?}"),
        }
        assert_eq!(EntryKind::parse("oauth2"), Some(EntryKind::OAuth2));
        assert_eq!(
            serde_json::to_string(&EntryKind::OAuth2).expect("json"),
            "\"oauth2\""
        );
        // The default method is not written out, so older catalogs read the same.
        let json = serde_json::to_string(&cfg()).expect("json");
        assert!(!json.contains("auth\""), "{json}");
        let back: OAuth2Config = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.auth, ClientAuth::Basic);
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
