//! The FIDO2 ceremonies: this side talks to the security key, the agent checks its answers.
//! Unlocking: the agent's challenge → one touch → the assertion and hmac-secret output as the
//! unlock factor. Enrolling: the agent's challenge and salt → the PIN if the key has one → two
//! touches → the agent seals a new slot with the output.
//!
//! A touch can take longer than the agent keeps an idle connection open, so each request to
//! the agent goes on a fresh connection from `connect`.

use keyward_agent::client::{Client, ClientError};
use keyward_agent::protocol::{FactorInput, WireSecret};
use keyward_authenticator::Authenticator;
use keyward_core::vault::FactorInfo;
use secrecy::{ExposeSecret, SecretString};

use crate::ShellError;

fn hex(b: &[u8]) -> WireSecret {
    WireSecret::new(data_encoding::HEXLOWER.encode(b))
}

fn webauthn<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, ShellError> {
    serde_json::from_value(v).map_err(|_| ShellError::WebAuthnFormat)
}

fn to_json(v: &impl serde::Serialize) -> Result<serde_json::Value, ShellError> {
    serde_json::to_value(v).map_err(|_| ShellError::WebAuthnFormat)
}

/// The second factor for `unlock` from a touch of an enrolled security key. `before_touch`
/// runs once the key is about to wait for the touch (to say "touch your key").
pub fn unlock_factor(
    connect: &dyn Fn() -> Result<Client, ShellError>,
    device: &mut dyn Authenticator,
    before_touch: impl FnOnce(),
) -> Result<FactorInput, ShellError> {
    let c = connect()?.fido2_unlock_begin()?;
    let challenge = webauthn(c.challenge)?;
    before_touch();
    let (assertion, out) = device.authenticate(challenge, &c.salts)?;
    Ok(FactorInput::Fido2 {
        ceremony: c.ceremony,
        assertion: to_json(&assertion)?,
        hmac_output: hex(&out),
    })
}

/// Enrols a security key as a second factor (the vault unlocked; `passphrase` seals the new
/// slot) and returns it. `ask_pin` is called only when the key has a PIN; `before_touch` once
/// the key is about to wait for its two touches.
pub fn enrol<E: From<ShellError>>(
    connect: &dyn Fn() -> Result<Client, ShellError>,
    device: &mut dyn Authenticator,
    passphrase: WireSecret,
    label: &str,
    ask_pin: impl FnOnce() -> Result<Option<SecretString>, E>,
    before_touch: impl FnOnce(),
) -> Result<FactorInfo, E> {
    let c = connect()?
        .fido2_register_begin()
        .map_err(ShellError::from)?;
    let salt = keyward_authenticator::registration_salt(&c.salts).map_err(ShellError::from)?;
    let challenge = webauthn(c.challenge)?;
    let pin = match device.pin_needed_to_register().map_err(ShellError::from)? {
        true => ask_pin()?,
        false => None,
    };
    before_touch();
    let (response, out) = device
        .register(challenge, &salt, pin.as_ref().map(|p| p.expose_secret()))
        .map_err(ShellError::from)?;
    let factors = connect()?
        .fido2_register_finish(
            c.ceremony,
            passphrase,
            to_json(&response)?,
            hex(&out),
            label,
        )
        .map_err(ShellError::from)?;
    // The agent answers with the one factor it enrolled.
    let mut factors = factors.into_iter();
    match (factors.next(), factors.next()) {
        (Some(f), None) => Ok(f),
        _ => Err(ShellError::Client(ClientError::Unexpected).into()),
    }
}
