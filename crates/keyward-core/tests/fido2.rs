//! FIDO2 factor against a software authenticator (webauthn-authenticator-rs SoftToken): full
//! WebAuthn ceremonies verified by webauthn-rs, and the hmac-secret output as key material.
//! Runs with the explicit file keystore so it needs no Secret Service.

use hmac::{Hmac, Mac};
use keyward_core::fido2::ORIGIN;
use keyward_core::vault::{SecondFactor, SlotKind};
use keyward_core::{Actor, Vault, VaultError};
use secrecy::SecretString;
use sha2::Sha256;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use zeroize::Zeroizing;

mod common;

/// The CTAP2 hmac-secret function of a software authenticator: HMAC-SHA256 under a per-token
/// secret bound to the credential id.
fn hmac_secret(token_secret: &[u8], cred_id: &[u8], salt: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(token_secret).expect("key");
    m.update(cred_id);
    m.update(salt);
    m.finalize().into_bytes().to_vec()
}

fn origin() -> url::Url {
    url::Url::parse(ORIGIN).expect("origin")
}

type Attempt = Result<
    Result<keyward_core::vault::Unlocked, VaultError>,
    webauthn_authenticator_rs::error::WebauthnCError,
>;

fn attempt(
    vault: &mut Vault,
    pass: &SecretString,
    token: &mut SoftToken,
    secret: &[u8],
) -> Attempt {
    let keyward_core::fido2::UnlockChallenge {
        challenge,
        pending,
        salts,
    } = vault.fido2_unlock_begin().expect("begin");
    let assertion = token.do_authentication(origin(), challenge)?;
    let id = data_encoding::HEXLOWER.encode(assertion.raw_id.as_ref());
    let salt_hex = &salts
        .iter()
        .find(|(c, _)| *c == id)
        .map(|(_, s)| s.clone())
        .unwrap_or_else(|| salts[0].1.clone());
    let salt = data_encoding::HEXLOWER
        .decode(salt_hex.as_bytes())
        .expect("hex");
    let out = hmac_secret(secret, assertion.raw_id.as_ref(), &salt);
    Ok(vault.unlock(
        pass,
        &SecondFactor::Fido2 {
            pending,
            assertion: Box::new(assertion),
            hmac_output: Zeroizing::new(out),
        },
        &Actor::default(),
    ))
}

#[test]
fn security_key_opens_the_vault_only_with_its_hmac_secret() {
    let pass = SecretString::from("fido-orbit-maple-quartz-7".to_owned());
    let (_dir, mut vault, recovery_codes) = common::new_vault(&pass);
    let key = vault
        .unlock(
            &pass,
            &SecondFactor::Recovery(recovery_codes[0].clone()),
            &Actor::default(),
        )
        .expect("unlock")
        .key;

    // Register the software security key.
    let (mut token, _) = SoftToken::new(true).expect("soft token");
    let token_secret = [7u8; 32];
    let (challenge, pending) = vault.fido2_register_begin().expect("begin");
    let response = token
        .do_registration(origin(), challenge)
        .expect("authenticator registers");
    let out = hmac_secret(&token_secret, response.raw_id.as_ref(), &pending.hmac_salt);
    let info = vault
        .enroll_fido2(
            &key,
            &pass,
            &pending,
            &response,
            &out,
            "soft key",
            &Actor::default(),
        )
        .expect("enroll");
    assert_eq!(info.kind, SlotKind::Fido2);

    // The right key with its hmac-secret opens the vault.
    attempt(&mut vault, &pass, &mut token, &token_secret)
        .expect("ceremony")
        .expect("unlock with the security key");
    // A valid assertion with a different hmac-secret output does not.
    let err = attempt(&mut vault, &pass, &mut token, &[8u8; 32])
        .expect("ceremony")
        .expect_err("hmac-secret mismatch must fail");
    assert!(matches!(err, VaultError::WrongCredentials { .. }), "{err}");
    // Nor does the right key and hmac-secret with the wrong passphrase.
    let wrong = SecretString::from("not-the-passphrase-at-all".to_owned());
    let err = attempt(&mut vault, &wrong, &mut token, &token_secret)
        .expect("ceremony")
        .expect_err("wrong passphrase");
    assert!(matches!(err, VaultError::WrongCredentials { .. }), "{err}");
    // A key that was never registered is not accepted.
    let (mut other, _) = SoftToken::new(true).expect("soft token");
    let res = attempt(&mut vault, &pass, &mut other, &token_secret);
    assert!(
        !matches!(res, Ok(Ok(_))),
        "an unregistered authenticator must not unlock"
    );
}
