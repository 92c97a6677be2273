//! The FIDO2 authenticator the CLI talks to for `unlock --fido2` and `factor add-fido2`.
//!
//! Release builds have no security-key transport yet (USB HID with the CTAP2 hmac-secret
//! extension is the next step, see docs/STATUS.md) and say so. Builds with the
//! `test-authenticator` feature use a file-backed software authenticator
//! (webauthn-authenticator-rs `SoftToken`) named by `KEYWARD_TEST_AUTHENTICATOR`, with a
//! software hmac-secret: HMAC-SHA256 under a per-token secret, bound to the credential id.

use anyhow::Result;
use keyward_core::fido2::webauthn::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};
use zeroize::Zeroizing;

/// A security key.
pub trait Authenticator {
    /// Makes a credential and returns it with the hmac-secret output for `salt`.
    fn register(
        &mut self,
        challenge: CreationChallengeResponse,
        salt: &[u8],
    ) -> Result<(RegisterPublicKeyCredential, Zeroizing<Vec<u8>>)>;
    /// Answers a challenge; `salts` maps credential ids (hex) to hmac-secret salts (hex).
    fn authenticate(
        &mut self,
        challenge: RequestChallengeResponse,
        salts: &[(String, String)],
    ) -> Result<(PublicKeyCredential, Zeroizing<Vec<u8>>)>;
}

/// The authenticator available to this build.
#[cfg(not(feature = "test-authenticator"))]
pub fn open() -> Result<Box<dyn Authenticator>> {
    anyhow::bail!("this build of keyward cannot talk to USB security keys yet: use your authenticator app (TOTP) or a recovery code")
}

/// The authenticator available to this build.
#[cfg(feature = "test-authenticator")]
pub fn open() -> Result<Box<dyn Authenticator>> {
    soft::SoftAuthenticator::open().map(|a| Box::new(a) as Box<dyn Authenticator>)
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
