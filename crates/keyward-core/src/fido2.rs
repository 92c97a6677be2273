//! FIDO2 security keys as a second factor: the relying-party side of the WebAuthn ceremonies
//! (webauthn-rs verifies registration and every assertion: challenge, origin, rp id, signature,
//! counter). The authenticator's CTAP2 hmac-secret output for a per-slot salt is the slot's key
//! material, so the vault cannot be opened without the physical key even with the disk, the
//! keychain and the passphrase.

use webauthn_rs::prelude::{SecurityKeyAuthentication, SecurityKeyRegistration, Url};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::vault::VaultError;

/// The WebAuthn types front ends exchange with the agent (challenges, credentials).
pub use webauthn_rs::prelude as webauthn;

/// Relying-party id for every Keyward credential.
pub const RP_ID: &str = "keyward.localhost";
/// Origin the client reports in its client data.
pub const ORIGIN: &str = "https://keyward.localhost";
/// Bytes of hmac-secret output mixed into a slot key.
pub const HMAC_OUTPUT_LEN: usize = 32;

/// The relying party.
pub fn relying_party() -> Result<Webauthn, VaultError> {
    let origin = Url::parse(ORIGIN).map_err(|e| VaultError::Fido2(e.to_string()))?;
    WebauthnBuilder::new(RP_ID, &origin)
        .and_then(|b| b.rp_name("Keyward").build())
        .map_err(|e| VaultError::Fido2(e.to_string()))
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
