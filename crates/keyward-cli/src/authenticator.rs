//! The FIDO2 authenticator the CLI talks to for `unlock --fido2` and `factor add-fido2`.
//!
//! Normally a USB security key (CTAP2 over HID with the hmac-secret extension, through
//! `keyward_core::security_key`); `KEYWARD_FIDO2_DEVICE` picks one by hidraw path when several
//! are plugged in. Builds with the test-only `test-authenticator` feature use instead a
//! file-backed software authenticator (webauthn-authenticator-rs `SoftToken`) when
//! `KEYWARD_TEST_AUTHENTICATOR` names its file, with a software hmac-secret: HMAC-SHA256 under a
//! per-token secret, bound to the credential id.

use anyhow::Result;
use keyward_core::fido2::webauthn::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};
use keyward_core::security_key::UsbKey;
use zeroize::Zeroizing;

use crate::prompt::Prompter;

/// A security key.
pub trait Authenticator {
    /// Makes a credential and returns it with the hmac-secret output for `salt`.
    fn register(
        &mut self,
        challenge: CreationChallengeResponse,
        salt: &[u8],
        p: &mut Prompter,
    ) -> Result<(RegisterPublicKeyCredential, Zeroizing<Vec<u8>>)>;
    /// Answers a challenge; `salts` maps credential ids (hex) to hmac-secret salts (hex).
    fn authenticate(
        &mut self,
        challenge: RequestChallengeResponse,
        salts: &[(String, String)],
        p: &mut Prompter,
    ) -> Result<(PublicKeyCredential, Zeroizing<Vec<u8>>)>;
}

/// The authenticator available to this build.
pub fn open() -> Result<Box<dyn Authenticator>> {
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
    fn register(
        &mut self,
        challenge: CreationChallengeResponse,
        salt: &[u8],
        p: &mut Prompter,
    ) -> Result<(RegisterPublicKeyCredential, Zeroizing<Vec<u8>>)> {
        let salt: [u8; 32] = salt
            .try_into()
            .map_err(|_| anyhow::anyhow!("the agent sent a salt of the wrong size"))?;
        let pin = if self.0.pin_needed_to_register()? {
            Some(p.secret("Security key PIN: ", "security key PIN")?)
        } else {
            None
        };
        let cred = self.0.register(
            &challenge,
            pin.as_ref().map(secrecy::ExposeSecret::expose_secret),
        )?;
        if p.interactive() {
            eprintln!("Touch your security key again to confirm…");
        }
        let out = self.0.hmac_secret(cred.raw_id.as_ref(), &salt)?;
        Ok((cred, out))
    }

    fn authenticate(
        &mut self,
        challenge: RequestChallengeResponse,
        salts: &[(String, String)],
        _p: &mut Prompter,
    ) -> Result<(PublicKeyCredential, Zeroizing<Vec<u8>>)> {
        Ok(self.0.authenticate(&challenge, salts)?)
    }
}

#[cfg(feature = "test-authenticator")]
mod soft {
    use std::path::PathBuf;

    use anyhow::{anyhow, Context, Result};
    use hmac::{Hmac, Mac};
    use keyward_core::fido2::webauthn::{
        CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
        RequestChallengeResponse,
    };
    use sha2::Sha256;
    use webauthn_authenticator_rs::softtoken::{SoftToken, SoftTokenFile};
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use zeroize::Zeroizing;

    pub struct SoftAuthenticator {
        token: SoftTokenFile,
        secret: Zeroizing<Vec<u8>>,
    }

    fn origin() -> Result<url::Url> {
        Ok(url::Url::parse(keyward_core::fido2::ORIGIN)?)
    }

    impl SoftAuthenticator {
        pub fn open() -> Result<Self> {
            let path = PathBuf::from(std::env::var_os("KEYWARD_TEST_AUTHENTICATOR").ok_or_else(
                || anyhow!("no security key: set KEYWARD_TEST_AUTHENTICATOR to a software authenticator file"),
            )?);
            let secret_path = path.with_extension("hmac");
            let token = if path.exists() {
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)?;
                SoftTokenFile::open(f)
                    .map_err(|e| anyhow!("cannot load the software authenticator: {e:?}"))?
            } else {
                let (t, _) = SoftToken::new(true)
                    .map_err(|e| anyhow!("cannot create a software authenticator: {e:?}"))?;
                let f = std::fs::File::create(&path)?;
                let mut secret = [0u8; 32];
                std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut secret)?;
                std::fs::write(&secret_path, secret)?;
                SoftTokenFile::new(t, f)
            };
            let secret = Zeroizing::new(
                std::fs::read(&secret_path)
                    .context("cannot read the software authenticator's secret")?,
            );
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
        fn register(
            &mut self,
            challenge: CreationChallengeResponse,
            salt: &[u8],
            _p: &mut crate::prompt::Prompter,
        ) -> Result<(RegisterPublicKeyCredential, Zeroizing<Vec<u8>>)> {
            let cred = self
                .token
                .do_registration(origin()?, challenge)
                .map_err(|e| anyhow!("the security key refused to register: {e:?}"))?;
            let out = self.hmac_secret(cred.raw_id.as_ref(), salt);
            Ok((cred, out))
        }

        fn authenticate(
            &mut self,
            challenge: RequestChallengeResponse,
            salts: &[(String, String)],
            _p: &mut crate::prompt::Prompter,
        ) -> Result<(PublicKeyCredential, Zeroizing<Vec<u8>>)> {
            let cred = self
                .token
                .do_authentication(origin()?, challenge)
                .map_err(|_| anyhow!("this security key is not enrolled in the vault"))?;
            let id = data_encoding::HEXLOWER.encode(cred.raw_id.as_ref());
            let salt = salts
                .iter()
                .find(|(c, _)| *c == id)
                .map(|(_, s)| s)
                .ok_or_else(|| anyhow!("this security key is not enrolled in the vault"))?;
            let salt = data_encoding::HEXLOWER.decode(salt.as_bytes())?;
            let out = self.hmac_secret(cred.raw_id.as_ref(), &salt);
            Ok((cred, out))
        }
    }
}
