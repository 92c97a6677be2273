//! FIDO2 security keys as a second factor: the relying-party side of the WebAuthn ceremonies
//! (webauthn-rs verifies registration and every assertion: challenge, origin, rp id, signature,
//! counter). The authenticator's CTAP2 hmac-secret output for a per-slot salt is the slot's key
//! material, so the vault cannot be opened without the physical key even with the disk, the
//! keychain and the passphrase.

use webauthn_rs::prelude::{SecurityKeyAuthentication, SecurityKeyRegistration, Url};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use thiserror::Error;

/// The WebAuthn types front ends exchange with the agent (challenges, credentials).
pub use webauthn_rs::prelude as webauthn;

/// Relying-party id for every Keyward credential.
pub const RP_ID: &str = "keyward.localhost";
/// Origin the client reports in its client data.
pub const ORIGIN: &str = "https://keyward.localhost";
/// Bytes of hmac-secret output mixed into a slot key.
pub const HMAC_OUTPUT_LEN: usize = 32;

/// How a security-key ceremony fails.
#[derive(Debug, Error)]
pub enum Fido2Error {
    /// The relying party could not be set up (a bug: its id and origin are constants).
    #[error("security key: the relying party could not be set up: {0}")]
    Setup(String),
    /// A challenge could not be made.
    #[error("security key: no challenge could be made: {0}")]
    Challenge(String),
    /// The authenticator did not evaluate the hmac-secret extension.
    #[error("security key: the security key returned no hmac-secret output (it needs the CTAP2 hmac-secret extension)")]
    NoHmacSecret,
    /// The registration did not verify (attestation, challenge, origin).
    #[error("security key: registration was not accepted: {0}")]
    Rejected(String),
}

/// The relying party.
pub fn relying_party() -> Result<Webauthn, Fido2Error> {
    let origin = Url::parse(ORIGIN).map_err(|e| Fido2Error::Setup(e.to_string()))?;
    WebauthnBuilder::new(RP_ID, &origin)
        .and_then(|b| b.rp_name("Keyward").build())
        .map_err(|e| Fido2Error::Setup(e.to_string()))
}

/// A registration waiting for the authenticator's answer.
pub struct PendingRegistration {
    pub(crate) state: SecurityKeyRegistration,
    /// Salt the authenticator's hmac-secret extension must be evaluated on.
    pub hmac_salt: [u8; 32],
}

/// An authentication waiting for the authenticator's answer.
pub struct PendingAuthentication {
    pub(crate) state: SecurityKeyAuthentication,
}

impl std::fmt::Debug for PendingRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingRegistration")
    }
}

impl std::fmt::Debug for PendingAuthentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingAuthentication")
    }
}

/// What a FIDO2 unlock starts with: the challenge for the authenticator, the state to finish
/// with, and each enrolled credential's hmac-secret salt (credential id hex, salt hex).
pub struct UnlockChallenge {
    /// For the authenticator.
    pub challenge: webauthn::RequestChallengeResponse,
    /// Kept by the relying party until the answer comes.
    pub pending: PendingAuthentication,
    /// Salts per credential.
    pub salts: Vec<(String, String)>,
}
