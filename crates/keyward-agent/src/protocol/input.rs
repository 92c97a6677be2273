//! What clients send beyond the request's own fields: new keys, their metadata, factors, the new
//! vault's choices.

use super::*;

/// Where a new vault keeps secrets.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KeystoreChoice {
    /// OS keychain.
    Keychain,
    /// Catalog file (explicit fallback).
    File,
}

/// Argon2id parameters asked for at init (bounded by the core).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfChoice {
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Passes.
    pub iterations: u32,
}

/// The second factor at unlock.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum FactorInput {
    /// TOTP code.
    Totp {
        /// 6 digits.
        code: WireSecret,
    },
    /// Recovery code.
    Recovery {
        /// The code.
        code: WireSecret,
    },
    /// FIDO2 assertion answering `fido2_unlock_begin`.
    Fido2 {
        /// Ceremony id from the challenge.
        ceremony: String,
        /// The WebAuthn `PublicKeyCredential` (JSON).
        assertion: serde_json::Value,
        /// hmac-secret output, hex.
        hmac_output: WireSecret,
    },
}

/// The AWS part of an add request.
#[derive(Debug, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
// Absent fields are None to serde: optional to TypeScript callers too.
#[ts(optional_fields)]
pub struct AwsKeyInput {
    /// AKIA… id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: WireSecret,
    /// Role to assume.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// MFA serial.
    #[serde(default)]
    pub mfa_serial: Option<String>,
    /// Region.
    #[serde(default)]
    pub region: Option<String>,
    /// Session duration in seconds.
    #[serde(default)]
    pub session_duration_secs: Option<u32>,
    /// STS endpoint override.
    #[serde(default)]
    pub sts_endpoint: Option<String>,
    /// IAM endpoint override (where rotation creates and retires keys).
    #[serde(default)]
    pub iam_endpoint: Option<String>,
}

/// The OAuth2 part of an add request.
#[derive(Debug, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
// Absent fields are None to serde: optional to TypeScript callers too.
#[ts(optional_fields)]
pub struct OAuth2KeyInput {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: WireSecret,
    /// Token endpoint.
    pub token_url: String,
    /// Scopes to ask for (none: the server's default).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Client authentication (default: HTTP Basic).
    #[serde(default)]
    pub auth: Option<keyward_core::ClientAuth>,
    /// Introspection endpoint, for "test this key".
    #[serde(default)]
    pub introspection_url: Option<String>,
}

/// The Alibaba Cloud part of an add request.
#[derive(Debug, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
// Absent fields are None to serde: optional to TypeScript callers too.
#[ts(optional_fields)]
pub struct AliyunKeyInput {
    /// LTAI… id.
    pub access_key_id: String,
    /// Its secret.
    pub access_key_secret: WireSecret,
    /// RAM role to assume; without one the AccessKey itself goes out (the CLI's `AK` mode).
    #[serde(default)]
    pub role_arn: Option<String>,
    /// Region (`cn-hangzhou`).
    #[serde(default)]
    pub region: Option<String>,
    /// Token lifetime in seconds (3600 when absent).
    #[serde(default)]
    pub session_duration_secs: Option<u32>,
    /// STS endpoint override.
    #[serde(default)]
    pub sts_endpoint: Option<String>,
}

/// Metadata common to every add.
#[derive(Debug, Default, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
// Absent fields are None to serde: optional to TypeScript callers too.
#[ts(optional_fields)]
pub struct MetaInput {
    /// Owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// Purpose.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Rotation interval in days.
    #[serde(default)]
    pub rotation_interval_days: Option<u32>,
    /// Expiry (RFC 3339).
    #[serde(default)]
    pub expires: Option<String>,
}

/// A replacement secret for [`Request::Rotate`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum NewSecret {
    /// A new AWS access key pair.
    Aws {
        /// AKIA… id.
        access_key_id: String,
        /// Its secret.
        secret_access_key: WireSecret,
    },
    /// A new token.
    Static {
        /// The token.
        value: WireSecret,
    },
    /// A new OAuth2 client secret.
    #[serde(rename = "oauth2")]
    Oauth2 {
        /// The client secret.
        client_secret: WireSecret,
    },
    /// A new Alibaba Cloud AccessKey pair.
    Aliyun {
        /// LTAI… id.
        access_key_id: String,
        /// Its secret.
        access_key_secret: WireSecret,
    },
}

/// What `init` needs to create the vault.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVault {
    /// Passphrase.
    pub passphrase: WireSecret,
    /// TOTP secret (base32) the user's app was given.
    pub totp_secret: WireSecret,
    /// Current code from that app.
    pub totp_code: WireSecret,
    /// Keystore.
    pub keystore: KeystoreChoice,
    /// KDF parameters; calibrated to ~1 s when absent.
    #[serde(default)]
    pub kdf: Option<KdfChoice>,
    /// Leave the new vault unlocked (both factors were just given), e.g. so the app can go
    /// on to enrol a security key.
    #[serde(default)]
    pub unlock: bool,
    /// The desktop app's window asks: the reply carries a window token (see `Reveal`).
    #[serde(default)]
    pub window: bool,
}

/// Default STS session duration for new AWS entries.
pub const DEFAULT_SESSION_SECS: u32 = 3600;

/// Which audit rows to return; a field left out matches every row.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// The key or profile concerned.
    #[serde(default)]
    pub key: Option<String>,
    /// An event (`issue`) or a family (`grant`: `grant.allow`, `grant.revoke`, …).
    #[serde(default)]
    pub action: Option<String>,
    /// Text in the client's description (a program's path in its chain).
    #[serde(default)]
    pub client: Option<String>,
    /// At or after this time (RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    /// Before this time (RFC 3339).
    #[serde(default)]
    pub until: Option<String>,
    /// Only rows after this sequence number, the oldest first (to read the whole trail page by
    /// page); otherwise the newest.
    #[serde(default)]
    pub after_seq: Option<i64>,
    /// At most this many (at most 10,000 per answer).
    pub limit: u32,
}

/// The command `keyward exec` is about to start, which a credential request is for. Only this
/// installation's own `keyward` may send one; the agent works out from it which program will run
/// (the interpreter and script of a `#!` file, as the kernel will start it) and treats that as
/// the client, so the question and any grant name the command, not the shell that ran exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecTarget {
    /// The executable, an absolute path (exec found it on `PATH` and starts exactly this).
    pub program: String,
    /// Its arguments, without argv\[0\].
    pub args: Vec<String>,
}
