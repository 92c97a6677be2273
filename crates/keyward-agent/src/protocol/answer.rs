//! What the agent answers with beyond a reply's own fields: its state, credentials, the window's
//! poll, and the replies that carry several fields.

use super::*;
use keyward_core::entry::EntryKind;

/// Agent and vault state.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct StatusInfo {
    /// Agent version.
    pub agent_version: String,
    /// Agent pid.
    pub agent_pid: u32,
    /// Whether a vault exists.
    pub vault: bool,
    /// Whether it is locked.
    pub locked: bool,
    /// `keychain` or `file`.
    pub keystore: Option<String>,
    /// Number of keys.
    pub entries: usize,
    /// Auto-lock after this many idle seconds.
    pub auto_lock_secs: u64,
    /// Seconds until auto-lock (when unlocked).
    pub locks_in_secs: Option<u64>,
    /// Seconds before another unlock attempt is allowed.
    pub unlock_wait_secs: i64,
    /// Catalog path.
    pub catalog: String,
    /// What startup reconciliation fixed.
    pub reconciled: Vec<ReconcileNote>,
    /// Whether the agent process could be dumped or ptrace-attached (false when hardened).
    pub dumpable: bool,
    /// Whether this agent runs for the desktop app (tray icon, opens the window).
    #[serde(default)]
    pub desktop: bool,
    /// Whether standing grants need a current authenticator code (known while unlocked).
    #[serde(default)]
    pub grants_need_code: Option<bool>,
    /// The administrator's policy in force.
    pub policy: PolicyInfo,
    /// How many keys stand where, and the ones that need action.
    pub keys: KeyStates,
    /// How far the audit trail has been forwarded, per receiver the policy names (a syslog
    /// receiver, the journal).
    pub forwarding: Vec<crate::forward::Forwarding>,
    /// The audit trail's last sequence number.
    pub audit_head: i64,
}

/// The administrator's policy as the agent holds it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct PolicyInfo {
    /// The file the agent reads (`/etc/keyward/policy.toml`).
    pub path: String,
    /// SHA-256 of the file in force, hex (`sha256sum` of it matches); `None`: no policy file.
    pub sha256: Option<String>,
    /// When it took effect (RFC 3339).
    pub since: Option<String>,
    /// The limits on every key, as the file writes them.
    pub defaults: Vec<PolicyLimit>,
    /// The rules, in the file's order.
    pub rules: Vec<PolicyRule>,
    /// Why the file as it is now is not used (its line and reason); the last good policy stays
    /// in force meanwhile.
    pub refused: Option<String>,
    /// No good policy was ever read while the file exists: nothing is issued until it is fixed.
    pub unusable: bool,
}

/// One limit a policy sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct PolicyLimit {
    /// Its name in the file (`max_key_age_days`).
    pub name: String,
    /// Its value as the file writes it.
    pub value: String,
}

/// One `[[rule]]` of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// Its name.
    pub name: String,
    /// The kinds of key it covers (empty: every kind).
    pub kinds: Vec<EntryKind>,
    /// The tags it covers (empty: any tags).
    pub tags: Vec<String>,
    /// What it sets.
    pub limits: Vec<PolicyLimit>,
}

/// The keys' standings, counted, and the ones that need action.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct KeyStates {
    /// Nothing due.
    pub ok: usize,
    /// Rotation or expiry within the reminder window.
    pub due_soon: usize,
    /// Past their rotation age.
    pub overdue: usize,
    /// Past their expiry.
    pub expired: usize,
    /// Unused for longer than the policy allows.
    pub unused: usize,
    /// Every key not ok, worst first, then by name.
    pub attention: Vec<Listed>,
}

/// A key with its standing under the policy in force.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct Listed {
    /// Its metadata.
    pub meta: EntryMeta,
    /// Where it stands.
    pub standing: Standing,
}

/// What the app's window needs at each poll.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowState {
    /// Whether the vault is locked.
    pub locked: bool,
    /// Approval requests waiting for the user.
    pub approvals: Vec<ApprovalInfo>,
    /// The tray asked the window to come to the front.
    pub focus: bool,
    /// A key to show: the user acted on a notification about it.
    pub show_key: Option<ShowKey>,
}

/// A key the window is asked to show, from a notification's action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ShowKey {
    /// The key's name.
    pub name: String,
    /// Open its rotation ("Rotate now"), not only its detail.
    pub rotate: bool,
}

/// Temporary AWS credentials.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsCredentials {
    /// ASIA… id.
    pub access_key_id: String,
    /// Session secret.
    pub secret_access_key: WireSecret,
    /// Session token.
    pub session_token: WireSecret,
    /// RFC 3339 expiry.
    pub expiration: String,
    /// Whether this came from the agent's cache.
    pub cached: bool,
}

/// How Alibaba Cloud credentials are meant to be used, in the Alibaba Cloud CLI's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AliyunMode {
    /// An STS token with its security token and expiry.
    StsToken,
    /// The long-lived AccessKey itself (a key without a RAM role).
    #[serde(rename = "AK")]
    AccessKey,
}

/// Alibaba Cloud credentials.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliyunCredentials {
    /// StsToken or AK.
    pub mode: AliyunMode,
    /// `STS.…` (a token) or `LTAI…` (the AccessKey).
    pub access_key_id: String,
    /// The matching secret.
    pub access_key_secret: WireSecret,
    /// The security token (StsToken mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_token: Option<WireSecret>,
    /// When the token ends, `YYYY-MM-DDThh:mm:ssZ` (StsToken mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// The key's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Whether this came from the agent's cache.
    pub cached: bool,
}

/// A static key's value, leased to one command until `expires_at` (its `Debug` shows no value:
/// `WireSecret`'s is redacted).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticLease {
    /// The key's value.
    pub value: WireSecret,
    /// When the lease ends (RFC 3339).
    pub expires_at: String,
}

/// What a tool's credential helper answers for a host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelperCredential {
    /// The key it came from.
    pub key: String,
    /// The user name to give (`None`: the tool's convention for a token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A static key's value (a lease) or an OAuth2 access token.
    pub secret: WireSecret,
    /// When it stops being good (RFC 3339), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Which key a tool's credential helper answers with for a host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct BindingInfo {
    /// The tool.
    pub tool: keyward_core::HelperTool,
    /// The host.
    pub host: String,
    /// The key's name.
    pub key: String,
    /// The user name given with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// How tools may get one key beyond asking for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct KeyUses {
    /// How a static key may be leased (`keyward edit NAME --allow-lease`), if at all.
    pub lease: Option<keyward_core::entry::LeaseMode>,
    /// The hosts git's or docker's helper answers for with it.
    pub bindings: Vec<BindingInfo>,
}

/// An OAuth2 access token.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Token {
    /// The access token.
    pub access_token: WireSecret,
    /// Its type as the server named it (`Bearer`).
    pub token_type: String,
    /// RFC 3339 expiry, when the server said.
    pub expires_at: Option<String>,
    /// Granted scope (space-separated), when the server said.
    pub scope: Option<String>,
    /// Whether this came from the agent's cache.
    pub cached: bool,
}

/// A new vault: what `init` answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Initialized {
    /// Codes to show once.
    pub recovery_codes: Vec<WireSecret>,
    /// KDF parameters chosen.
    pub kdf_memory_mib: u32,
    /// KDF passes chosen.
    pub kdf_iterations: u32,
    /// The window token, when the app's window asked and the vault was left unlocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_token: Option<WireSecret>,
}

/// An unlocked vault: what `unlock` answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unlocked {
    /// Codes left when a recovery code was used.
    pub recovery_codes_left: Option<usize>,
    /// Auto-lock after this many idle seconds.
    pub auto_lock_secs: u64,
    /// The window token, when the app's window asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_token: Option<WireSecret>,
}

/// A WebAuthn challenge for the authenticator (registering or unlocking).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fido2Challenge {
    /// Ceremony id to send back.
    pub ceremony: String,
    /// `CreationChallengeResponse` or `RequestChallengeResponse` (JSON).
    pub challenge: serde_json::Value,
    /// hmac-secret salts: (credential id hex, salt hex); credential id empty at registration.
    pub salts: Vec<(String, String)>,
}

/// What an AWS rotation at IAM did (key ids are not secret: AWS shows them in its console and
/// CloudTrail).
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct AwsRotated {
    /// The key's name.
    pub name: String,
    /// The IAM user whose access key was rotated.
    pub user_name: String,
    /// The key replaced.
    pub old_key_id: String,
    /// The key now stored.
    pub new_key_id: String,
    /// Whether the old key is deleted at AWS already.
    pub old_deleted: bool,
    /// When the inactive old key will be deleted (RFC 3339), while it is kept.
    pub delete_after: Option<String>,
    /// What was finished first: an interrupted rotation, an old key deleted early to make room.
    pub notes: Vec<String>,
}

/// A key works: the identity its session has (nothing secret).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyTested {
    /// Kind of the key tested.
    pub kind: keyward_core::EntryKind,
    /// Whose it is: the ARN STS reports for an AWS session, the client an OAuth2 server
    /// confirms.
    pub identity: String,
    /// When the session or token ends (RFC 3339), when known.
    pub expiration: Option<String>,
    /// Granted scope of an OAuth2 token (space-separated), when the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AliyunCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AliyunCredentials")
            .field("mode", &self.mode)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OAuth2Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Token")
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}
