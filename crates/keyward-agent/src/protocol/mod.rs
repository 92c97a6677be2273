//! The agent's wire protocol: one JSON object per line over the Unix socket, versioned and parsed
//! strictly (unknown fields are refused). See docs/PROTOCOL.md.
//!
//! Frames: request `{"v":1,"req":{"op":…,…}}`, response `{"v":1,"ok":{"type":…,…}}` or
//! `{"v":1,"err":{"code":…,"message":…}}`.

use crate::activity::ActivityRecord;
use keyward_core::policy::Standing;
use keyward_core::vault::{FactorInfo, ReconcileNote};
use keyward_core::EntryMeta;

use crate::approvals::{ApprovalInfo, ClientId, Decision, GrantInfo};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

mod answer;
mod convert;
mod input;

pub use answer::*;
pub use input::*;

/// Protocol version spoken by this build.
pub const VERSION: u32 = 1;

/// Largest request line accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A secret string on the wire: redacted in `Debug`, wiped on drop. It is serializable only
/// because the CLI must send a passphrase to the agent over the private socket.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(transparent)]
pub struct WireSecret(String);

impl WireSecret {
    /// Wraps a secret.
    pub fn new(s: String) -> Self {
        WireSecret(s)
    }
    /// The secret, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WireSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for WireSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A request frame.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFrame {
    /// Protocol version.
    pub v: u32,
    /// The request.
    pub req: Request,
}

/// What the client asks for.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Liveness check.
    Ping {},
    /// Vault and agent state.
    Status {},
    /// Create the vault.
    Init(NewVault),
    /// Unlock with both factors.
    Unlock {
        /// Passphrase.
        passphrase: WireSecret,
        /// Second factor.
        factor: FactorInput,
        /// The desktop app's window asks: the reply carries a window token (see `Reveal`).
        #[serde(default)]
        window: bool,
    },
    /// Lock now.
    Lock {},
    /// Add an AWS key.
    AddAws {
        /// Entry (and profile) name.
        name: String,
        /// Metadata.
        #[serde(default)]
        meta: MetaInput,
        /// The key and its settings.
        aws: AwsKeyInput,
    },
    /// Add a static token.
    AddStatic {
        /// Entry name.
        name: String,
        /// Metadata.
        #[serde(default)]
        meta: MetaInput,
        /// The token.
        value: WireSecret,
    },
    /// Add an OAuth2 client.
    AddOauth2 {
        /// Entry (and profile) name.
        name: String,
        /// Metadata.
        #[serde(default)]
        meta: MetaInput,
        /// The client and its settings.
        oauth2: OAuth2KeyInput,
    },
    /// Add an Alibaba Cloud AccessKey.
    AddAliyun {
        /// Entry (and profile) name.
        name: String,
        /// Metadata.
        #[serde(default)]
        meta: MetaInput,
        /// The key pair and its STS settings.
        aliyun: AliyunKeyInput,
    },
    /// List entries.
    List {},
    /// One entry's metadata.
    Show {
        /// Entry name.
        name: String,
    },
    /// Remove an entry.
    Remove {
        /// Entry name.
        name: String,
    },
    /// Change an entry's descriptive metadata (the whole set: absent fields are cleared).
    Update {
        /// Entry name.
        name: String,
        /// New metadata.
        meta: MetaInput,
    },
    /// Replace an entry's secret with a new one of the same kind (after rotating it at the
    /// provider); records the rotation time. Works while locked.
    Rotate {
        /// Entry name.
        name: String,
        /// The new secret.
        secret: NewSecret,
    },
    /// Rotate an AWS key at IAM: create a new access key, check it works, store it, deactivate
    /// the old one and delete it after `grace_secs` (a day when absent). Journaled: a crash at
    /// any point is finished or undone at the next unlock. Needs the vault unlocked.
    RotateAws {
        /// Entry name.
        name: String,
        /// How long the deactivated old key is kept (so it can be switched back on) before it
        /// is deleted; 0 deletes it at once.
        #[serde(default)]
        grace_secs: Option<u64>,
    },
    /// The audit records about one entry (its history), oldest first.
    History {
        /// Entry name.
        name: String,
        /// How many of the newest.
        limit: u32,
    },
    /// Short-lived AWS credentials for a profile.
    CredAws {
        /// Entry / profile name.
        profile: String,
        /// MFA code when the entry has an MFA serial and no cached session.
        #[serde(default)]
        mfa_code: Option<WireSecret>,
        /// Id of an approval request this client had answered.
        #[serde(default)]
        approval: Option<String>,
        /// The command `keyward exec` starts with these credentials: it is the client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec: Option<ExecTarget>,
    },
    /// An OAuth2 access token (client-credentials grant) for a profile.
    CredOauth2 {
        /// Entry / profile name.
        profile: String,
        /// Id of an approval request this client had answered.
        #[serde(default)]
        approval: Option<String>,
        /// The command `keyward exec` starts with this token: it is the client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec: Option<ExecTarget>,
    },
    /// Alibaba Cloud credentials for a profile: an STS token (`AssumeRole`) for a key with a RAM
    /// role, the AccessKey itself for one without (where the policy allows it).
    CredAliyun {
        /// Entry / profile name.
        profile: String,
        /// Id of an approval request this client had answered.
        #[serde(default)]
        approval: Option<String>,
        /// The command `keyward exec` starts with these credentials: it is the client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec: Option<ExecTarget>,
    },
    /// kubectl's credential for a profile, whichever kind the key is: an OAuth2 key's access
    /// token, or a lease of a static key the user allowed to be leased (for the tool that ran
    /// `keyward cred kube`). One request, so the adapter need not ask for the kind first.
    CredKube {
        /// Entry / profile name.
        profile: String,
        /// Id of an approval request this client had answered.
        #[serde(default)]
        approval: Option<String>,
    },
    /// A lease of a static key, only for a key the user allowed to be leased: for the command
    /// `keyward exec` starts (`exec`), or for the tool that ran the keyward adapter (git's
    /// credential helper).
    LeaseStatic {
        /// Entry / profile name.
        profile: String,
        /// How the value reaches the command: in a variable (`env`, the default) or a file
        /// descriptor (`file`); the key's lease setting must allow it.
        #[serde(default = "env_form")]
        form: keyward_core::entry::LeaseMode,
        /// Id of an approval request this client had answered.
        #[serde(default)]
        approval: Option<String>,
        /// The command the lease is for: it is the client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec: Option<ExecTarget>,
    },
    /// Allows a static key to be leased (`mode`), with a current code, or no longer (`null`).
    SetLease {
        /// Entry name.
        name: String,
        /// How it may be leased; `null`: not at all.
        mode: Option<keyward_core::entry::LeaseMode>,
        /// A current authenticator code (needed to allow).
        #[serde(default)]
        code: Option<WireSecret>,
    },
    /// What a tool's credential helper answers for a host: the key bound to it (static: a lease;
    /// OAuth2: an access token), for the tool that ran the keyward helper. Only a bound host
    /// gets anything: the binding is in the authenticated vault header.
    HelperGet {
        /// The tool asking (git, docker).
        tool: keyward_core::HelperTool,
        /// The host it asks for (`host` or `host:port`).
        host: String,
        /// Id of an approval request this client had answered.
        #[serde(default)]
        approval: Option<String>,
    },
    /// What `docker login` hands its credential helper: vaulted as a static key bound to the
    /// registry (a new key for a registry not bound yet; the bound static key's new value
    /// otherwise). Only from this installation's keyward.
    HelperStore {
        /// The tool (docker).
        tool: keyward_core::HelperTool,
        /// The registry host.
        host: String,
        /// The user name.
        username: String,
        /// The password or identity token.
        secret: WireSecret,
    },
    /// `docker logout`: the registry is no longer bound (the key stays in the vault). Only from
    /// this installation's keyward.
    HelperErase {
        /// The tool (docker).
        tool: keyward_core::HelperTool,
        /// The registry host.
        host: String,
    },
    /// Binds a static or OAuth2 key to a tool's helper for a host, with a current code (a
    /// binding decides where a key may go). Only from this installation's keyward.
    Bind {
        /// The tool.
        tool: keyward_core::HelperTool,
        /// The host.
        host: String,
        /// The key.
        key: String,
        /// The user name given with the secret.
        #[serde(default)]
        username: Option<String>,
        /// A current authenticator code.
        #[serde(default)]
        code: Option<WireSecret>,
    },
    /// The hosts each tool's helper answers for, and with which key (no secrets).
    Bindings {},
    /// How tools may get key `name` beyond asking for it: its lease setting and the helpers'
    /// hosts bound to it (vault unlocked: both are in the authenticated header).
    KeyUses {
        /// Entry name.
        name: String,
    },
    /// Check a key works: issue a short-lived credential and report whose it is (no secrets
    /// returned). AWS and OAuth2 keys. It issues a real credential, so it passes the same
    /// approval gate as `cred_aws` / `cred_oauth2` (the app's window: its window token).
    TestKey {
        /// Entry name.
        name: String,
        /// MFA code when the entry needs one.
        #[serde(default)]
        mfa_code: Option<WireSecret>,
        /// Id of an approval this client answered on its terminal.
        #[serde(default)]
        approval: Option<String>,
        /// The app window's token.
        #[serde(default)]
        token: Option<WireSecret>,
    },
    /// Answer a pending approval request (only from the Keyward binary).
    Approve {
        /// Request id from `approval_needed`.
        id: String,
        /// The user's decision.
        decision: Decision,
        /// The window token, when the desktop app's window answers.
        #[serde(default)]
        token: Option<WireSecret>,
        /// A current authenticator code: needed for an allow for hours or until lock when the
        /// vault's setting says standing grants need one (`standing_needs_code`).
        #[serde(default)]
        code: Option<WireSecret>,
    },
    /// Turn on or off the need for a code on standing grants given in the app's dialog or at
    /// the terminal. Turning it off needs a current code.
    SetGrantsNeedCode {
        /// On or off.
        on: bool,
        /// A current authenticator code (needed to turn it off).
        #[serde(default)]
        code: Option<WireSecret>,
    },
    /// Standing grants.
    Grants {},
    /// Revoke a grant.
    GrantRevoke {
        /// Grant id.
        id: String,
    },
    /// Grant a program a profile ahead of time (only from the Keyward binary, vault unlocked).
    GrantAllow {
        /// The program.
        client: ClientId,
        /// Profile.
        profile: String,
        /// Hours; absent: until the vault locks.
        #[serde(default)]
        hours: Option<u32>,
        /// A current code from the user's authenticator app: a standing grant needs a second
        /// factor now, so that a program cannot grant itself.
        #[serde(default)]
        code: Option<WireSecret>,
    },
    /// Enrolled factors.
    Factors {},
    /// Enroll another TOTP factor (vault must be unlocked).
    FactorAddTotp {
        /// Passphrase (needed to seal the new slot).
        passphrase: WireSecret,
        /// New TOTP secret (base32).
        totp_secret: WireSecret,
        /// Current code from the new app.
        totp_code: WireSecret,
        /// Label.
        label: String,
    },
    /// Replace every recovery code with a new set (vault must be unlocked).
    RecoveryRegenerate {
        /// Passphrase (needed to seal the new slots).
        passphrase: WireSecret,
    },
    /// Set the idle time before auto-lock, kept in the vault's settings.
    SetAutoLock {
        /// Seconds (60 to 86,400).
        secs: u64,
    },
    /// Start registering a FIDO2 security key (vault must be unlocked).
    Fido2RegisterBegin {},
    /// Finish registering it.
    Fido2RegisterFinish {
        /// Ceremony id from the challenge.
        ceremony: String,
        /// Passphrase (needed to seal the new slot).
        passphrase: WireSecret,
        /// The WebAuthn `RegisterPublicKeyCredential` (JSON).
        response: serde_json::Value,
        /// hmac-secret output for the challenge's salt, hex.
        hmac_output: WireSecret,
        /// Label.
        label: String,
    },
    /// Start a FIDO2 unlock.
    Fido2UnlockBegin {},
    /// Remove a factor by id (vault must be unlocked).
    FactorRemove {
        /// Slot id.
        id: String,
    },
    /// Verify the audit chain.
    AuditVerify {},
    /// Last audit rows.
    AuditTail {
        /// How many.
        limit: u32,
    },
    /// The audit rows a filter selects (`keyward audit list`).
    AuditQuery(AuditQuery),
    /// Stop the agent (locks first).
    Shutdown {},
    /// The secret of a key, for the app's Reveal and Copy: only from the app this agent serves,
    /// with the token of a window the vault was unlocked through or the agent opened.
    Reveal {
        /// Entry name.
        name: String,
        /// The window token.
        token: WireSecret,
    },
    /// The user gave a second-factor code in the app's window, to reveal or copy: if it is
    /// current (and unused), that window may reveal for a minute.
    ConfirmFactor {
        /// The window token.
        token: WireSecret,
        /// A current authenticator code.
        code: WireSecret,
    },
    /// The app's window: "I am open" (polled), or "I closed" (only from the app).
    Window {
        /// The window is closing (its token, if any, ends with it).
        #[serde(default)]
        closed: bool,
        /// The window token, if it has one.
        #[serde(default)]
        token: Option<WireSecret>,
    },
    /// Open the desktop app's window, or bring it to the front (a second start of the app asks
    /// this instead of opening a window of its own).
    OpenWindow {},
}

/// A lease's form when the request names none: a variable.
fn env_form() -> keyward_core::entry::LeaseMode {
    keyward_core::entry::LeaseMode::Env
}

impl Request {
    /// Short name for the audit log.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Ping {} => "ping",
            Request::Status {} => "status",
            Request::Init { .. } => "init",
            Request::Unlock { .. } => "unlock",
            Request::Lock {} => "lock",
            Request::AddAws { .. } => "add",
            Request::AddStatic { .. } => "add",
            Request::AddOauth2 { .. } => "add",
            Request::AddAliyun { .. } => "add",
            Request::List {} => "list",
            Request::Show { .. } => "show",
            Request::Remove { .. } => "remove",
            Request::Update { .. } => "update",
            Request::Rotate { .. } => "rotate",
            Request::RotateAws { .. } => "rotate.aws",
            Request::History { .. } => "history",
            Request::RecoveryRegenerate { .. } => "recovery.regenerate",
            Request::SetAutoLock { .. } => "settings.auto_lock",
            Request::CredAws { .. } => "cred.aws",
            Request::CredOauth2 { .. } => "cred.oauth2",
            Request::CredAliyun { .. } => "cred.aliyun",
            Request::CredKube { .. } => "cred.kube",
            Request::TestKey { .. } => "test",
            Request::Approve { .. } => "approve",
            Request::SetGrantsNeedCode { .. } => "settings.grants_need_code",
            Request::LeaseStatic { .. } => "lease.static",
            Request::SetLease { .. } => "settings.lease",
            Request::HelperGet { .. } => "helper.get",
            Request::HelperStore { .. } => "helper.store",
            Request::HelperErase { .. } => "helper.erase",
            Request::Bind { .. } => "settings.binding",
            Request::Bindings {} => "bindings",
            Request::KeyUses { .. } => "uses",
            Request::Grants {} => "grants",
            Request::GrantRevoke { .. } => "grant.revoke",
            Request::GrantAllow { .. } => "grant.allow",
            Request::Factors {} => "factors",
            Request::FactorAddTotp { .. } => "factor.add",
            Request::FactorRemove { .. } => "factor.remove",
            Request::Fido2RegisterBegin {} => "fido2.register",
            Request::Fido2RegisterFinish { .. } => "fido2.register",
            Request::Fido2UnlockBegin {} => "fido2.unlock",
            Request::AuditVerify {} => "audit.verify",
            Request::AuditTail { .. } => "audit.tail",
            Request::AuditQuery(_) => "audit.query",
            Request::Shutdown {} => "shutdown",
            Request::Reveal { .. } => "reveal",
            Request::ConfirmFactor { .. } => "factor.confirm",
            Request::Window { .. } => "window",
            Request::OpenWindow {} => "window.open",
        }
    }
}

/// A response frame: `{"v":1,"ok":{…}}` or `{"v":1,"err":{…}}`, the reply or the error, never
/// both or neither (a frame with both, neither or another version does not parse).
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawResponseFrame")]
pub enum ResponseFrame {
    /// Success payload.
    Ok(Reply),
    /// Failure.
    Err(ErrorReply),
}

impl From<Result<Reply, ErrorReply>> for ResponseFrame {
    fn from(r: Result<Reply, ErrorReply>) -> Self {
        match r {
            Ok(reply) => ResponseFrame::Ok(reply),
            Err(e) => ResponseFrame::Err(e),
        }
    }
}

impl From<ResponseFrame> for Result<Reply, ErrorReply> {
    fn from(f: ResponseFrame) -> Self {
        match f {
            ResponseFrame::Ok(reply) => Ok(reply),
            ResponseFrame::Err(e) => Err(e),
        }
    }
}

impl Serialize for ResponseFrame {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ResponseFrame", 2)?;
        st.serialize_field("v", &VERSION)?;
        match self {
            ResponseFrame::Ok(reply) => st.serialize_field("ok", reply)?,
            ResponseFrame::Err(e) => st.serialize_field("err", e)?,
        }
        st.end()
    }
}

/// The frame as it is on the wire, before it is known to be one or the other.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponseFrame {
    v: u32,
    #[serde(default)]
    ok: Option<Reply>,
    #[serde(default)]
    err: Option<ErrorReply>,
}

impl TryFrom<RawResponseFrame> for ResponseFrame {
    type Error = String;

    fn try_from(raw: RawResponseFrame) -> Result<Self, String> {
        if raw.v != VERSION {
            return Err(format!(
                "the agent speaks protocol version {}, this client {VERSION}",
                raw.v
            ));
        }
        match (raw.ok, raw.err) {
            (Some(reply), None) => Ok(ResponseFrame::Ok(reply)),
            (None, Some(e)) => Ok(ResponseFrame::Err(e)),
            _ => Err("a response carries either `ok` or `err`".to_owned()),
        }
    }
}

/// A failure: a stable code and a one-line message the user can act on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ErrorReply {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// One line for the user.
    pub message: String,
}

/// Stable error codes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed, oversized or unknown request.
    BadRequest,
    /// Protocol version not spoken.
    Version,
    /// Vault not created.
    NoVault,
    /// Vault locked.
    Locked,
    /// Wrong factor.
    WrongCredentials,
    /// Too many attempts.
    Throttled,
    /// No such entry.
    NotFound,
    /// Invalid input.
    Invalid,
    /// Keychain problem.
    Keystore,
    /// MFA code needed.
    MfaRequired,
    /// Upstream (STS) failure.
    Upstream,
    /// Audit write failed: operation refused.
    Audit,
    /// The user denied the request, or did not answer in time.
    Denied,
    /// Only the Keyward app or the `keyward` command may do this.
    Forbidden,
    /// The catalog was edited outside Keyward (header or a key's settings): refused.
    Tampered,
    /// A fresh second factor is needed first (`confirm_factor`), e.g. to reveal a secret.
    FactorNeeded,
    /// The administrator's policy refuses it (the message names the rule).
    Policy,
    /// Anything else.
    Internal,
}

/// Success payloads.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// Ping answer.
    Pong {
        /// Agent pid.
        pid: u32,
    },
    /// Status.
    Status(Box<StatusInfo>),
    /// Vault created.
    Initialized(Initialized),
    /// Unlocked.
    Unlocked(Unlocked),
    /// Done, nothing to return.
    Done,
    /// Entries.
    Entries {
        /// Each key with its standing under the policy in force.
        entries: Vec<Listed>,
    },
    /// One entry.
    Entry {
        /// Its metadata and standing.
        entry: Box<Listed>,
    },
    /// AWS credentials.
    AwsCredentials(AwsCredentials),
    /// An OAuth2 access token.
    Oauth2Token(OAuth2Token),
    /// Alibaba Cloud credentials.
    AliyunCredentials(AliyunCredentials),
    /// A static key's lease.
    Lease(StaticLease),
    /// What a credential helper answers with.
    HelperCredential(HelperCredential),
    /// How tools may get one key.
    KeyUses(KeyUses),
    /// The credential-helper bindings.
    Bindings {
        /// Each binding.
        bindings: Vec<BindingInfo>,
    },
    /// Enrolled factors.
    Factors {
        /// Each factor.
        factors: Vec<FactorInfo>,
    },
    /// A WebAuthn challenge for the authenticator.
    Fido2Challenge(Fido2Challenge),
    /// Audit chain verified.
    AuditVerified {
        /// Rows checked.
        rows: u64,
    },
    /// Audit rows.
    Audit {
        /// Rows, oldest first.
        rows: Vec<ActivityRecord>,
    },
    /// The requesting program has no grant: the user must decide (answer with `approve`,
    /// then ask again with `approval` set to this id).
    ApprovalNeeded {
        /// What to show the user.
        approval: ApprovalInfo,
    },
    /// A key works: the identity its session has.
    KeyTested(KeyTested),
    /// New recovery codes, to show once.
    RecoveryCodes {
        /// The codes.
        codes: Vec<WireSecret>,
    },
    /// Standing grants.
    Grants {
        /// Each grant.
        grants: Vec<GrantInfo>,
    },
    /// A stored secret, revealed to the app.
    Revealed {
        /// The secret (the secret access key of an AWS key, an OAuth2 client's secret).
        secret: WireSecret,
    },
    /// The window's poll answer.
    Window(WindowState),
    /// What an AWS rotation did.
    Rotated(AwsRotated),
}

#[cfg(test)]
mod tests;
