//! A real USB security key, end to end: registration and assertions verified by webauthn-rs, and
//! the hmac-secret output stable across touches (the property the vault's key derivation needs).
//!
//! Needs a key and a person: `KEYWARD_FIDO2_DEVICE=/dev/hidrawN [KEYWARD_FIDO2_PIN=…] cargo test
//! -p keyward-core --features hardware-tests --test usb_key -- --nocapture`, touching the key
//! when asked. Compiled only with that feature, so it never passes without a key.

use keyward_core::fido2::relying_party;
use keyward_core::security_key::UsbKey;
use webauthn_rs::prelude::Uuid;

#[test]
fn usb_key_registers_asserts_and_gives_a_stable_hmac_secret() {
    let path = std::env::var("KEYWARD_FIDO2_DEVICE")
        .expect("set KEYWARD_FIDO2_DEVICE to the key's /dev/hidraw path");
    let key = UsbKey::open(Some(&path)).expect("open the key");
    let pin = if key.pin_needed_to_register().expect("getInfo") {
        Some(std::env::var("KEYWARD_FIDO2_PIN").expect("this key has a PIN: set KEYWARD_FIDO2_PIN"))
    } else {
        None
    };
    let rp = relying_party().expect("rp");
    let (ccr, state) = rp
        .start_securitykey_registration(
            Uuid::new_v4(),
            "keyward-test",
            "Keyward test",
            None,
            None,
            None,
        )
        .expect("start");
    eprintln!("touch the key (1/4: register)");
    let cred = key.register(&ccr, pin.as_deref()).expect("register");
    let sk = rp
        .finish_securitykey_registration(&cred, &state)
        .expect("webauthn-rs accepts the key's registration");

    let salt = [7u8; 32];
    eprintln!("touch the key (2/4: hmac-secret)");
    let first = key
        .hmac_secret(cred.raw_id.as_ref(), &salt)
        .expect("hmac-secret");
    eprintln!("touch the key (3/4: hmac-secret, other salt)");
    let other = key
        .hmac_secret(cred.raw_id.as_ref(), &[8u8; 32])
        .expect("hmac-secret");
    assert_ne!(*first, *other, "different salts give different outputs");

    let (rcr, auth_state) = rp
        .start_securitykey_authentication(std::slice::from_ref(&sk))
        .expect("start");
    let salts = vec![(
        data_encoding::HEXLOWER.encode(cred.raw_id.as_ref()),
        data_encoding::HEXLOWER.encode(&salt),
    )];
    eprintln!("touch the key (4/4: unlock)");
    let (assertion, out) = key.authenticate(&rcr, &salts).expect("assert");
    rp.finish_securitykey_authentication(&assertion, &auth_state)
        .expect("webauthn-rs accepts the key's assertion");
    assert_eq!(
        *out, *first,
        "the unlock-time output equals the enrolment-time output"
    );
}
