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
}

impl EntryKind {
    /// The stable name stored in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Aws => "aws",
            EntryKind::Static => "static",
        }
    }
    /// Parses a stored kind name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "aws" => Some(EntryKind::Aws),
            "static" => Some(EntryKind::Static),
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

/// Kind-specific, non-secret settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryConfig {
    /// Present for `aws` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsConfig>,
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
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretValue::Aws { .. } => f.write_str("SecretValue::Aws(<redacted>)"),
            SecretValue::Static { .. } => f.write_str("SecretValue::Static(<redacted>)"),
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
        }
    }
}

impl SecretValue {
    /// The kind this secret belongs to.
    pub fn kind(&self) -> EntryKind {
        match self {
            SecretValue::Aws { .. } => EntryKind::Aws,
            SecretValue::Static { .. } => EntryKind::Static,
        }
    }

    /// Plaintext bytes for encryption; the caller wipes them.
    pub(crate) fn to_plaintext(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let wire = match self {
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
        };
        // Serializing two strings into a Vec cannot fail.
        zeroize::Zeroizing::new(serde_json::to_vec(&wire).unwrap_or_default())
    }

    /// Parses decrypted plaintext.
    pub(crate) fn from_plaintext(bytes: &[u8]) -> Option<Self> {
        let wire: SecretWire = serde_json::from_slice(bytes).ok()?;
        Some(match &wire {
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
        })
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
    /// Empty secret.
    #[error("the secret value is empty")]
    EmptySecret,
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
        let back = SecretValue::from_plaintext(&s.to_plaintext()).expect("parse");
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
