//! The FIDO2 authenticator Keyward's CLI and desktop app talk to for unlocking with a security
//! key and enrolling one.
//!
//! Normally a USB security key (CTAP2 over HID with the hmac-secret extension, through
//! `keyward_core::security_key`); `KEYWARD_FIDO2_DEVICE` picks one by hidraw path when several
//! are plugged in. Builds with the test-only `test-authenticator` feature use instead a
//! file-backed software authenticator (webauthn-authenticator-rs `SoftToken`) when
//! `KEYWARD_TEST_AUTHENTICATOR` names its file, with a software hmac-secret: HMAC-SHA256 under a
//! per-token secret, bound to the credential id.

#![forbid(unsafe_code)]

use keyward_core::fido2::webauthn::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};
use keyward_core::security_key::{SecurityKeyError, UsbKey};
use thiserror::Error;
use zeroize::Zeroizing;

/// Errors talking to the authenticator, each with what to do.
#[derive(Debug, Error)]
pub enum AuthenticatorError {
    /// The USB key failed or is missing.
    #[error(transparent)]
    Device(#[from] SecurityKeyError),
    /// The agent sent a salt that is not 32 bytes.
    #[error("the agent sent a salt of the wrong size")]
    Salt,
    /// The key needs its PIN to register and none was given.
    #[error("this security key needs its PIN to register a new credential")]
    PinNeeded,
    /// The key answered, but for a credential the vault does not know.
    #[error("this security key is not enrolled in the vault")]
    NotEnrolled,
    /// The software authenticator (test builds) failed.
    #[error("software authenticator: {0}")]
    Soft(String),
}

/// A registration: the credential and the hmac-secret output for the vault's salt.
pub type Registration = (RegisterPublicKeyCredential, Zeroizing<Vec<u8>>);
/// An assertion and the hmac-secret output for the credential's salt.
pub type Assertion = (PublicKeyCredential, Zeroizing<Vec<u8>>);

/// A security key.
pub trait Authenticator: Send {
    /// Whether registering needs the key's PIN (asked for before touching it).
    fn pin_needed_to_register(&self) -> Result<bool, AuthenticatorError>;
    /// Makes a credential (one touch) and derives its hmac-secret output for `salt` (another
    /// touch on a USB key).
    fn register(
        &mut self,
        challenge: CreationChallengeResponse,
        salt: &[u8],
        pin: Option<&str>,
    ) -> Result<Registration, AuthenticatorError>;
    /// Answers a challenge; `salts` maps credential ids (hex) to hmac-secret salts (hex).
    fn authenticate(
        &mut self,
        challenge: RequestChallengeResponse,
        salts: &[(String, String)],
    ) -> Result<Assertion, AuthenticatorError>;
}

/// The hmac-secret salt of a registration challenge (`salts` as the agent sends them: one pair,
/// credential id empty, salt in hex).
pub fn registration_salt(salts: &[(String, String)]) -> Result<Vec<u8>, AuthenticatorError> {
    salts
        .first()
        .and_then(|(_, s)| data_encoding::HEXLOWER.decode(s.as_bytes()).ok())
        .filter(|s| s.len() == 32)
        .ok_or(AuthenticatorError::Salt)
}

/// The authenticator available to this build.
pub fn open() -> Result<Box<dyn Authenticator>, AuthenticatorError> {
    #[cfg(feature = "test-authenticator")]
    if std::env::var_os("KEYWARD_TEST_AUTHENTICATOR").is_some() {
        return soft::SoftAuthenticator::open().map(|a| Box::new(a) as Box<dyn Authenticator>);
    }
    let path = std::env::var("KEYWARD_FIDO2_DEVICE").ok();
    Ok(Box::new(Usb(UsbKey::open(path.as_deref())?)))
}

/// A USB security key.
struct Usb(UsbKey);

impl Authenticator for Usb {
    fn pin_needed_to_register(&self) -> Result<bool, AuthenticatorError> {
        Ok(self.0.pin_needed_to_register()?)
    }

    fn register(
        &mut self,
        challenge: CreationChallengeResponse,
        salt: &[u8],
        pin: Option<&str>,
    ) -> Result<Registration, AuthenticatorError> {
        let salt: [u8; 32] = salt.try_into().map_err(|_| AuthenticatorError::Salt)?;
        if pin.is_none() && self.0.pin_needed_to_register()? {
            return Err(AuthenticatorError::PinNeeded);
        }
        let cred = self.0.register(&challenge, pin)?;
        let out = self.0.hmac_secret(cred.raw_id.as_ref(), &salt)?;
        Ok((cred, out))
    }

    fn authenticate(
        &mut self,
        challenge: RequestChallengeResponse,
        salts: &[(String, String)],
    ) -> Result<Assertion, AuthenticatorError> {
        Ok(self.0.authenticate(&challenge, salts)?)
    }
}

#[cfg(feature = "test-authenticator")]
mod soft {
    use std::path::PathBuf;

    use hmac::{Hmac, Mac};
    use keyward_core::fido2::webauthn::{CreationChallengeResponse, RequestChallengeResponse};
    use sha2::Sha256;
    use webauthn_authenticator_rs::softtoken::{SoftToken, SoftTokenFile};
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use zeroize::Zeroizing;

    use super::{Assertion, AuthenticatorError, Registration};

    pub struct SoftAuthenticator {
        token: SoftTokenFile,
        secret: Zeroizing<Vec<u8>>,
    }

    fn soft(what: &str, e: impl std::fmt::Debug) -> AuthenticatorError {
        AuthenticatorError::Soft(format!("{what}: {e:?}"))
    }

    fn origin() -> Result<url::Url, AuthenticatorError> {
        url::Url::parse(keyward_core::fido2::ORIGIN).map_err(|e| soft("origin", e))
    }

    impl SoftAuthenticator {
        pub fn open() -> Result<Self, AuthenticatorError> {
            let path = PathBuf::from(std::env::var_os("KEYWARD_TEST_AUTHENTICATOR").ok_or_else(
                || AuthenticatorError::Soft("set KEYWARD_TEST_AUTHENTICATOR to a file".into()),
            )?);
            let secret_path = path.with_extension("hmac");
            let token = if path.exists() {
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(|e| soft("open", e))?;
                SoftTokenFile::open(f).map_err(|e| soft("load", e))?
            } else {
                let (t, _) = SoftToken::new(true).map_err(|e| soft("create", e))?;
                let f = std::fs::File::create(&path).map_err(|e| soft("create", e))?;
                let mut secret = [0u8; 32];
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut r| std::io::Read::read_exact(&mut r, &mut secret))
                    .map_err(|e| soft("random", e))?;
                std::fs::write(&secret_path, secret).map_err(|e| soft("write", e))?;
                SoftTokenFile::new(t, f)
            };
            let secret =
                Zeroizing::new(std::fs::read(&secret_path).map_err(|e| soft("read secret", e))?);
            Ok(SoftAuthenticator { token, secret })
        }

        fn hmac_secret(&self, cred_id: &[u8], salt: &[u8]) -> Zeroizing<Vec<u8>> {
            // HMAC takes keys of any length, so this cannot fail; an empty output would be refused.
            let Ok(mut m) = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret) else {
                return Zeroizing::new(Vec::new());
            };
            m.update(cred_id);
            m.update(salt);
            Zeroizing::new(m.finalize().into_bytes().to_vec())
        }
    }

    impl super::Authenticator for SoftAuthenticator {
        fn pin_needed_to_register(&self) -> Result<bool, AuthenticatorError> {
            Ok(false)
        }

        fn register(
            &mut self,
            challenge: CreationChallengeResponse,
            salt: &[u8],
            _pin: Option<&str>,
        ) -> Result<Registration, AuthenticatorError> {
            let cred = self
                .token
                .do_registration(origin()?, challenge)
                .map_err(|e| soft("the key refused to register", e))?;
            let out = self.hmac_secret(cred.raw_id.as_ref(), salt);
            Ok((cred, out))
        }

        fn authenticate(
            &mut self,
            challenge: RequestChallengeResponse,
            salts: &[(String, String)],
        ) -> Result<Assertion, AuthenticatorError> {
            let cred = self
                .token
                .do_authentication(origin()?, challenge)
                .map_err(|_| AuthenticatorError::NotEnrolled)?;
            let id = data_encoding::HEXLOWER.encode(cred.raw_id.as_ref());
            let salt = salts
                .iter()
                .find(|(c, _)| *c == id)
                .map(|(_, s)| s)
                .ok_or(AuthenticatorError::NotEnrolled)?;
            let salt = data_encoding::HEXLOWER
                .decode(salt.as_bytes())
                .map_err(|_| AuthenticatorError::Salt)?;
            let out = self.hmac_secret(cred.raw_id.as_ref(), &salt);
            Ok((cred, out))
        }
    }
}
