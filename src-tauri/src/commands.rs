//! The commands the web view may call (listed in build.rs, allowed for the `main` window only).
//! Each builds one agent request, sends it over the agent's socket and maps the answer; the
//! agent does the work. See docs/DESKTOP.md for the contract.

use keyward_agent::activity::ActivityRecord;
use keyward_agent::approvals::{ApprovalInfo, Decision, GrantInfo};
use keyward_agent::client::{Client, ClientError, Issued};
use keyward_agent::protocol::{
    AliyunKeyInput, AwsKeyInput, ErrorCode, ErrorReply, FactorInput, KeystoreChoice, Listed,
    MetaInput, NewVault, OAuth2KeyInput, StatusInfo, WireSecret,
};
use keyward_core::policy::Standing;
use keyward_core::vault::FactorInfo;
use keyward_core::EntryMeta;
use keyward_shell::ShellError;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tauri::State;

/// What the app keeps: where its agent listens, and the questions waiting for the user.
pub struct AppState {
    /// The agent's socket.
    pub socket: std::path::PathBuf,
    /// Approval requests not yet answered, as of the latest poll.
    pub pending: std::sync::Mutex<Vec<ApprovalInfo>>,
    /// This window's token: it lets the window reveal keys and answer approvals. Given by the
    /// agent when it started the window, or when the vault was unlocked through it; void once
    /// the vault locks.
    pub token: std::sync::Mutex<Option<WireSecret>>,
}

impl AppState {
    /// The window token, if the window has one.
    pub fn token(&self) -> Option<WireSecret> {
        self.token.lock().ok().and_then(|t| t.clone())
    }

    /// Keeps the token a reply carried.
    pub fn set_token(&self, token: Option<WireSecret>) {
        if let Ok(mut t) = self.token.lock() {
            *t = token;
        }
    }
}

/// An error as the web view sees it.
#[derive(Debug, Serialize)]
pub struct CmdError {
    code: ErrorCode,
    message: String,
}

impl From<ErrorReply> for CmdError {
    fn from(e: ErrorReply) -> Self {
        CmdError {
            code: e.code,
            message: e.message,
        }
    }
}

impl CmdError {
    /// An error of `code` with a one-line message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CmdError {
            code,
            message: message.into(),
        }
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A command's result.
pub type Res<T> = Result<T, CmdError>;

impl From<ClientError> for CmdError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Agent(e) => e.into(),
            ClientError::NotRunning => CmdError::new(
                ErrorCode::Internal,
                "the Keyward agent is not running: start Keyward again",
            ),
            other => CmdError::new(ErrorCode::Internal, other.to_string()),
        }
    }
}

impl From<ShellError> for CmdError {
    fn from(e: ShellError) -> Self {
        match e {
            ShellError::Client(e) => e.into(),
            other => CmdError::new(ErrorCode::Invalid, other.to_string()),
        }
    }
}

/// Runs typed client calls (`Client::status`, `Client::show`, …) off the async threads, on a
/// fresh connection (the agent drops idle ones).
pub async fn with_client<T: Send + 'static, E: Into<CmdError>>(
    state: &State<'_, AppState>,
    f: impl FnOnce(&mut Client) -> Result<T, E> + Send + 'static,
) -> Res<T> {
    let socket = state.socket.clone();
    tauri::async_runtime::spawn_blocking(move || -> Res<T> {
        f(&mut Client::connect(&socket)?).map_err(Into::into)
    })
    .await
    .map_err(|_| CmdError::new(ErrorCode::Internal, "internal error (task failed)"))?
}

/// Runs blocking work that opens its own connections (`connect`) off the async threads: the
/// FIDO2 ceremonies, whose touches outlast an idle connection.
pub async fn with_connector<T: Send + 'static, E: Into<CmdError>>(
    state: &State<'_, AppState>,
    f: impl FnOnce(&dyn Fn() -> Result<Client, ShellError>) -> Result<T, E> + Send + 'static,
) -> Res<T> {
    let socket = state.socket.clone();
    tauri::async_runtime::spawn_blocking(move || -> Res<T> {
        f(&|| Ok(Client::connect(&socket)?)).map_err(Into::into)
    })
    .await
    .map_err(|_| CmdError::new(ErrorCode::Internal, "internal error (task failed)"))?
}

/// Wraps a string from the web view as a secret.
pub fn w(s: String) -> WireSecret {
    WireSecret::new(s)
}

/// Agent and vault state.
#[tauri::command]
pub async fn status(state: State<'_, AppState>) -> Res<StatusInfo> {
    with_client(&state, |c| c.status()).await
}

/// Whether a passphrase is strong enough, and why not.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PassphraseVerdict {
    acceptable: bool,
    reason: Option<String>,
}

/// Checks a candidate passphrase with the same rule `init` enforces.
#[tauri::command(async)]
pub fn passphrase_check(passphrase: String) -> PassphraseVerdict {
    let p = SecretString::from(passphrase);
    match keyward_core::factors::check_passphrase_strength(&p, &[]) {
        Ok(()) => PassphraseVerdict {
            acceptable: true,
            reason: None,
        },
        Err(e) => PassphraseVerdict {
            acceptable: false,
            reason: Some(e.to_string()),
        },
    }
}

/// A new TOTP secret to enrol, shown once.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct TotpEnrollment {
    secret: String,
    otpauth_url: String,
    qr_svg: String,
}

/// Generates a TOTP secret and its QR code for the authenticator app.
#[tauri::command(async)]
pub fn totp_enrollment() -> Res<TotpEnrollment> {
    let totp = keyward_core::factors::TotpSetup::generate("vault")
        .map_err(|e| CmdError::new(ErrorCode::Internal, e.to_string()))?;
    let url = totp.otpauth_url();
    Ok(TotpEnrollment {
        secret: totp.secret_base32().expose_secret().to_owned(),
        qr_svg: qr_svg(url.expose_secret())?,
        otpauth_url: url.expose_secret().to_owned(),
    })
}

/// The QR code of an `otpauth://` URL, as SVG for the web view.
fn qr_svg(url: &str) -> Res<String> {
    let qr = qrcode::QrCode::new(url.as_bytes())
        .map_err(|e| CmdError::new(ErrorCode::Internal, format!("cannot draw the QR code: {e}")))?;
    Ok(qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// Recovery codes of a new vault, shown once.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Created {
    recovery_codes: Vec<String>,
}

/// Creates the vault in the OS keychain.
#[tauri::command]
pub async fn init_vault(
    state: State<'_, AppState>,
    passphrase: String,
    totp_secret: String,
    totp_code: String,
) -> Res<Created> {
    let new = first_run_vault(passphrase, totp_secret, totp_code);
    let done = with_client(&state, move |c| c.init(new)).await?;
    state.set_token(done.window_token);
    let codes = done.recovery_codes.iter().map(|c| c.expose().to_owned());
    Ok(Created {
        recovery_codes: codes.collect(),
    })
}

/// The app's new vault: in the OS keychain, KDF calibrated, left unlocked for this window (both
/// factors were just given: the first run goes on to offer a security key).
fn first_run_vault(passphrase: String, totp_secret: String, totp_code: String) -> NewVault {
    NewVault {
        passphrase: w(passphrase),
        totp_secret: w(totp_secret),
        totp_code: w(totp_code),
        keystore: KeystoreChoice::Keychain,
        kdf: None,
        unlock: true,
        window: true,
    }
}

/// The second factor typed in the unlock screen.
#[derive(Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum UnlockFactor {
    /// Authenticator app code.
    Totp {
        /// Code.
        code: String,
    },
    /// One-time recovery code.
    Recovery {
        /// Code.
        code: String,
    },
}

/// After unlocking.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Unlocked {
    recovery_codes_left: Option<usize>,
    auto_lock_secs: u64,
}

/// Unlocks with passphrase + code.
#[tauri::command]
pub async fn unlock(
    state: State<'_, AppState>,
    passphrase: String,
    factor: UnlockFactor,
) -> Res<Unlocked> {
    let factor = match factor {
        UnlockFactor::Totp { code } => FactorInput::Totp { code: w(code) },
        UnlockFactor::Recovery { code } => FactorInput::Recovery { code: w(code) },
    };
    unlock_with(&state, passphrase, factor).await
}

/// Sends an unlock request with `factor` and maps the answer (shared with the security-key path).
pub async fn unlock_with(
    state: &State<'_, AppState>,
    passphrase: String,
    factor: FactorInput,
) -> Res<Unlocked> {
    let passphrase = w(passphrase);
    let u = with_client(state, move |c| c.unlock(passphrase, factor, true)).await?;
    state.set_token(u.window_token);
    Ok(Unlocked {
        recovery_codes_left: u.recovery_codes_left,
        auto_lock_secs: u.auto_lock_secs,
    })
}

/// Locks now.
#[tauri::command]
pub async fn lock(state: State<'_, AppState>) -> Res<()> {
    with_client(&state, |c| c.lock()).await
}

/// A key as the Keys screen shows it: its metadata and where it stands under the policy.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct KeyRow {
    #[serde(flatten)]
    meta: EntryMeta,
    #[serde(flatten)]
    standing: Standing,
}

impl From<Listed> for KeyRow {
    fn from(l: Listed) -> Self {
        KeyRow {
            meta: l.meta,
            standing: l.standing,
        }
    }
}

/// Every key's metadata and standing.
#[tauri::command]
pub async fn list_keys(state: State<'_, AppState>) -> Res<Vec<KeyRow>> {
    let entries = with_client(&state, |c| c.list()).await?;
    Ok(entries.into_iter().map(KeyRow::from).collect())
}

/// Adds an AWS key.
#[tauri::command]
pub async fn add_aws(
    state: State<'_, AppState>,
    name: String,
    meta: MetaInput,
    aws: AwsKeyInput,
) -> Res<()> {
    with_client(&state, move |c| c.add_aws(&name, meta, aws).map(drop)).await
}

/// Adds a static token.
#[tauri::command]
pub async fn add_static(
    state: State<'_, AppState>,
    name: String,
    meta: MetaInput,
    value: String,
) -> Res<()> {
    with_client(&state, move |c| {
        c.add_static(&name, meta, w(value)).map(drop)
    })
    .await
}

/// Adds an OAuth2 client.
#[tauri::command]
pub async fn add_oauth2(
    state: State<'_, AppState>,
    name: String,
    meta: MetaInput,
    oauth2: OAuth2KeyInput,
) -> Res<()> {
    with_client(&state, move |c| c.add_oauth2(&name, meta, oauth2).map(drop)).await
}

/// Adds an Alibaba Cloud AccessKey.
#[tauri::command]
pub async fn add_aliyun(
    state: State<'_, AppState>,
    name: String,
    meta: MetaInput,
    aliyun: AliyunKeyInput,
) -> Res<()> {
    with_client(&state, move |c| c.add_aliyun(&name, meta, aliyun).map(drop)).await
}

/// Removes a key.
#[tauri::command]
pub async fn remove_key(state: State<'_, AppState>, name: String) -> Res<()> {
    with_client(&state, move |c| c.remove(&name)).await
}

/// What "test this key" shows: whose session it got and until when, nothing secret.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Tested {
    identity: String,
    expiration: Option<String>,
    scope: Option<String>,
}

/// Issues a session (AWS) or an access token (OAuth2) and reports whose it is.
#[tauri::command]
pub async fn test_key(state: State<'_, AppState>, name: String) -> Res<Tested> {
    let token = state.token();
    match with_client(&state, move |c| c.test_key(&name, None, None, token)).await? {
        Issued::Credential(t) => Ok(Tested {
            identity: t.identity,
            expiration: t.expiration,
            scope: t.scope,
        }),
        // The window's token stands for the user's answer: the agent never asks it.
        Issued::ApprovalNeeded(_) => Err(CmdError::new(
            ErrorCode::Forbidden,
            "this window may not test keys: lock and unlock Keyward in this window",
        )),
    }
}

/// The newest audit records, oldest first.
#[tauri::command]
pub async fn activity(state: State<'_, AppState>, limit: u32) -> Res<Vec<ActivityRecord>> {
    with_client(&state, move |c| c.audit_tail(limit)).await
}

/// Enrolled factors.
#[tauri::command]
pub async fn factors(state: State<'_, AppState>) -> Res<Vec<FactorInfo>> {
    with_client(&state, |c| c.factors()).await
}

/// Standing grants.
#[tauri::command]
pub async fn grants(state: State<'_, AppState>) -> Res<Vec<GrantInfo>> {
    with_client(&state, |c| c.grants()).await
}

/// A static-key lease still out.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct LeaseRow {
    key: String,
    client: String,
    /// `exec`, `exec-fd`, `git`, `docker`, `helper`.
    via: String,
    issued: String,
    expires_at: String,
}

/// The static-key leases that have not ended (found in the audit trail: the agent keeps none).
#[tauri::command]
pub async fn leases(state: State<'_, AppState>) -> Res<Vec<LeaseRow>> {
    let out = with_client(&state, keyward_shell::leases::leases_out).await?;
    Ok(out
        .into_iter()
        .map(|l| LeaseRow {
            key: l.key,
            client: l.client,
            via: l.via,
            issued: l.issued,
            expires_at: l.expires_at,
        })
        .collect())
}

/// Revokes a grant.
#[tauri::command]
pub async fn revoke_grant(state: State<'_, AppState>, id: String) -> Res<()> {
    with_client(&state, move |c| c.grant_revoke(&id)).await
}

/// Answers an approval request.
#[tauri::command]
pub async fn decide_approval(
    state: State<'_, AppState>,
    id: String,
    decision: Decision,
    code: Option<String>,
) -> Res<()> {
    let (token, asked, code) = (state.token(), id.clone(), code.map(w));
    with_client(&state, move |c| c.approve(&asked, decision, token, code)).await?;
    // Only once answered: a refused code leaves the question on screen to answer again.
    if let Ok(mut p) = state.pending.lock() {
        p.retain(|a| a.id != id);
    }
    Ok(())
}

/// Questions waiting for the user (for a window opened after they arrived).
#[tauri::command(async)]
pub fn pending_approvals(state: State<'_, AppState>) -> Vec<ApprovalInfo> {
    state.pending.lock().map(|p| p.clone()).unwrap_or_default()
}
