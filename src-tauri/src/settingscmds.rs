//! Commands of the Settings screen and of security keys: factors, recovery codes, auto-lock,
//! and the FIDO2 ceremonies (the app talks to the key; the agent checks the answers).

use keyward_agent::protocol::{ErrorCode, FactorInput, Reply, Request, WireSecret};
use keyward_authenticator::AuthenticatorError;
use keyward_core::vault::FactorInfo;
use tauri::State;

use crate::commands::{call, unexpected, w, with_client, AppState, CmdError, Res, Unlocked};

fn key_err(e: AuthenticatorError) -> CmdError {
    CmdError::new(ErrorCode::Invalid, e.to_string())
}

/// Runs `f` with the security key off the async runtime (a touch can take a while).
async fn with_key<T: Send + 'static>(
    f: impl FnOnce(&mut dyn keyward_authenticator::Authenticator) -> Result<T, AuthenticatorError>
        + Send
        + 'static,
) -> Res<T> {
    tauri::async_runtime::spawn_blocking(move || {
        let mut device = keyward_authenticator::open()?;
        f(device.as_mut())
    })
    .await
    .map_err(|_| CmdError::new(ErrorCode::Internal, "the security key task failed"))?
    .map_err(key_err)
}

fn hex(b: &[u8]) -> WireSecret {
    WireSecret::new(data_encoding::HEXLOWER.encode(b))
}

/// Enrolls a FIDO2 security key (vault unlocked): the user touches it; `pin` only when the key
/// has one and asks for it.
#[tauri::command]
pub async fn enroll_security_key(
    state: State<'_, AppState>,
    passphrase: String,
    label: String,
    pin: Option<String>,
) -> Res<FactorInfo> {
    let Reply::Fido2Challenge {
        ceremony,
        challenge,
        salts,
    } = call(&state, Request::Fido2RegisterBegin {}).await?
    else {
        return Err(unexpected());
    };
    let salt = keyward_authenticator::registration_salt(&salts).map_err(key_err)?;
    let challenge = serde_json::from_value(challenge).map_err(|_| unexpected())?;
    let pin = pin.filter(|p| !p.is_empty()).map(zeroize::Zeroizing::new);
    let (response, out) =
        with_key(move |k| k.register(challenge, &salt, pin.as_ref().map(|p| p.as_str()))).await?;
    let reply = call(
        &state,
        Request::Fido2RegisterFinish {
            ceremony,
            passphrase: w(passphrase),
            response: serde_json::to_value(&response).map_err(|_| unexpected())?,
            hmac_output: hex(&out),
            label,
        },
    )
    .await?;
    match reply {
        Reply::Factors { mut factors } if factors.len() == 1 => Ok(factors.remove(0)),
        _ => Err(unexpected()),
    }
}

/// Unlocks with the passphrase and a touch of an enrolled security key.
#[tauri::command]
pub async fn unlock_with_security_key(
    state: State<'_, AppState>,
    passphrase: String,
) -> Res<Unlocked> {
    let Reply::Fido2Challenge {
        ceremony,
        challenge,
        salts,
    } = call(&state, Request::Fido2UnlockBegin {}).await?
    else {
        return Err(unexpected());
    };
    let challenge = serde_json::from_value(challenge).map_err(|_| unexpected())?;
    let (assertion, out) = with_key(move |k| k.authenticate(challenge, &salts)).await?;
    let factor = FactorInput::Fido2 {
        ceremony,
        assertion: serde_json::to_value(&assertion).map_err(|_| unexpected())?,
        hmac_output: hex(&out),
    };
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
    let req = Request::FactorAddTotp {
        passphrase: w(passphrase),
        totp_secret: w(totp_secret),
        totp_code: w(totp_code),
        label,
    };
    match call(&state, req).await? {
        Reply::Factors { mut factors } if factors.len() == 1 => Ok(factors.remove(0)),
        _ => Err(unexpected()),
    }
}

/// Removes a factor (the last authenticator app cannot be removed).
#[tauri::command]
pub async fn remove_factor(state: State<'_, AppState>, id: String) -> Res<()> {
    call(&state, Request::FactorRemove { id }).await.map(|_| ())
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
    call(
        &state,
        Request::SetGrantsNeedCode {
            on,
            code: code.map(w),
        },
    )
    .await
    .map(|_| ())
}

/// Sets the idle time before the vault locks itself.
#[tauri::command]
pub async fn set_auto_lock(state: State<'_, AppState>, secs: u64) -> Res<()> {
    call(&state, Request::SetAutoLock { secs })
        .await
        .map(|_| ())
}
