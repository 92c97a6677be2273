//! Commands of the Settings screen and of security keys: factors, recovery codes, auto-lock,
//! and the FIDO2 ceremonies (the app talks to the key; the agent checks the answers).

use keyward_agent::client::{Client, ClientError};
use keyward_agent::protocol::WireSecret;
use keyward_core::vault::FactorInfo;
use keyward_shell::{ceremony, ShellError};
use secrecy::SecretString;
use tauri::State;

use crate::commands::{w, with_client, with_connector, AppState, Res, Unlocked};

/// Enrolls a FIDO2 security key (vault unlocked): the user touches it; `pin` only when the key
/// has one and asks for it.
#[tauri::command]
pub async fn enroll_security_key(
    state: State<'_, AppState>,
    passphrase: String,
    label: String,
    pin: Option<String>,
) -> Res<FactorInfo> {
    let pin = pin.filter(|p| !p.is_empty()).map(SecretString::from);
    with_connector(&state, move |c| enrol(c, w(passphrase), &label, pin)).await
}

/// The ceremony with the key this build talks to (the PIN the form gave, if the key asks).
fn enrol(
    connect: &dyn Fn() -> Result<Client, ShellError>,
    passphrase: WireSecret,
    label: &str,
    pin: Option<SecretString>,
) -> Result<FactorInfo, ShellError> {
    let mut key = keyward_authenticator::open()?;
    ceremony::enrol(connect, key.as_mut(), passphrase, label, || Ok(pin), || {})
}

/// Unlocks with the passphrase and a touch of an enrolled security key.
#[tauri::command]
pub async fn unlock_with_security_key(
    state: State<'_, AppState>,
    passphrase: String,
) -> Res<Unlocked> {
    let factor = with_connector(&state, |connect| {
        let mut key = keyward_authenticator::open().map_err(ShellError::from)?;
        ceremony::unlock_factor(connect, key.as_mut(), || {})
    })
    .await?;
    crate::commands::unlock_with(&state, passphrase, factor).await
}

/// Enrolls another authenticator app (secret from `totp_enrollment`, code from the app).
#[tauri::command]
pub async fn add_totp(
    state: State<'_, AppState>,
    passphrase: String,
    totp_secret: String,
    totp_code: String,
    label: String,
) -> Res<FactorInfo> {
    let (p, s, c) = (w(passphrase), w(totp_secret), w(totp_code));
    let mut factors = with_client(&state, move |cl| cl.factor_add_totp(p, s, c, &label)).await?;
    match (factors.pop(), factors.is_empty()) {
        (Some(f), true) => Ok(f),
        _ => Err(ClientError::Unexpected.into()),
    }
}

/// Removes a factor (the last authenticator app cannot be removed).
#[tauri::command]
pub async fn remove_factor(state: State<'_, AppState>, id: String) -> Res<()> {
    with_client(&state, move |c| c.factor_remove(&id)).await
}

/// Replaces the recovery codes; the new ones are shown once.
#[tauri::command]
pub async fn new_recovery_codes(
    state: State<'_, AppState>,
    passphrase: String,
) -> Res<Vec<String>> {
    let codes = with_client(&state, move |c| c.recovery_regenerate(w(passphrase))).await?;
    Ok(codes.iter().map(|c| c.expose().to_owned()).collect())
}

/// Turns on or off the code asked for with "for hours" and "until lock" (off needs a code).
#[tauri::command]
pub async fn set_grants_need_code(
    state: State<'_, AppState>,
    on: bool,
    code: Option<String>,
) -> Res<()> {
    with_client(&state, move |c| c.set_grants_need_code(on, code.map(w))).await
}

/// Sets the idle time before the vault locks itself.
#[tauri::command]
pub async fn set_auto_lock(state: State<'_, AppState>, secs: u64) -> Res<()> {
    with_client(&state, move |c| c.set_auto_lock(secs)).await
}
