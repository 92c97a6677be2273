//! The USB security-key path up to the wire: client data built by `security_key`, hashed and
//! signed by an authenticator that sees only the hash (SoftToken's CTAP-level interface, as a
//! USB key would), its raw answer reassembled by `security_key` and verified by webauthn-rs.
//! Only the USB HID transfer itself needs a physical key: `tests/usb_key.rs` runs it.

use ciborium::value::Value;
use keyward_core::fido2::relying_party;
use keyward_core::security_key::{
    assertion_credential, client_data_json, registration_credential, AttestationStatement, Ceremony,
};
use sha2::{Digest, Sha256};
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::AuthenticatorBackendHashedClientData;
use webauthn_rs::prelude::{SecurityKey, Uuid};

/// Splits a WebAuthn attestation object into what a CTAP2 makeCredential answer carries.
fn ctap_parts(attestation_object: &[u8]) -> (String, Vec<u8>, AttestationStatement) {
    let v: Value = ciborium::from_reader(attestation_object).expect("cbor");
    let map = v.into_map().expect("map");
    let get = |k: &str| {
        map.iter()
            .find(|(key, _)| key.as_text() == Some(k))
            .map(|(_, v)| v.clone())
            .expect(k)
    };
    let fmt = get("fmt").into_text().expect("fmt");
    let auth_data = get("authData").into_bytes().expect("authData");
    let mut stmt = AttestationStatement::default();
    for (k, v) in get("attStmt").into_map().expect("attStmt") {
        match k.as_text() {
            Some("alg") => stmt.alg = Some(i128::from(v.as_integer().expect("alg")) as i64),
            Some("sig") => stmt.sig = v.into_bytes().expect("sig"),
            Some("x5c") => {
                stmt.x5c = v
                    .into_array()
                    .expect("x5c")
                    .into_iter()
                    .map(|c| c.into_bytes().expect("cert"))
                    .collect()
            }
            other => panic!("unexpected attStmt field {other:?}"),
        }
    }
    (fmt, auth_data, stmt)
}

fn register(token: &mut SoftToken) -> SecurityKey {
    let rp = relying_party().expect("rp");
    let (ccr, state) = rp
        .start_securitykey_registration(Uuid::new_v4(), "me", "Me", None, None, None)
        .expect("start");
    let cdj = client_data_json(Ceremony::Create, ccr.public_key.challenge.as_ref());
    let answer = token
        .perform_register(Sha256::digest(&cdj).to_vec(), ccr.public_key, 60_000)
        .expect("authenticator registers");
    let (fmt, auth_data, stmt) = ctap_parts(answer.response.attestation_object.as_ref());
    assert_eq!(
        fmt, "packed",
        "SoftToken gives packed attestation with a certificate"
    );
    assert!(!stmt.x5c.is_empty());
    let cred = registration_credential(cdj, answer.raw_id.as_ref(), &fmt, auth_data, &stmt)
        .expect("assemble");
    rp.finish_securitykey_registration(&cred, &state)
        .expect("webauthn-rs accepts the reassembled registration")
}

#[test]
fn reassembled_ceremonies_verify_and_tampering_is_refused() {
    let (mut token, _) = SoftToken::new(true).expect("token");
    let key = register(&mut token);
    let rp = relying_party().expect("rp");

    let assert_with = |token: &mut SoftToken, ceremony: Ceremony, tamper: bool| {
        let (rcr, state) = rp
            .start_securitykey_authentication(std::slice::from_ref(&key))
            .expect("start");
        let cdj = client_data_json(ceremony, rcr.public_key.challenge.as_ref());
        let answer = token
            .perform_auth(Sha256::digest(&cdj).to_vec(), rcr.public_key, 60_000)
            .expect("authenticator signs");
        let mut auth_data = answer.response.authenticator_data.to_vec();
        if tamper {
            // Flip the signature counter: the signature no longer covers these bytes.
            auth_data[36] ^= 1;
        }
        let cred = assertion_credential(
            cdj,
            answer.raw_id.as_ref(),
            auth_data,
            answer.response.signature.to_vec(),
        );
        rp.finish_securitykey_authentication(&cred, &state)
    };

    assert!(
        assert_with(&mut token, Ceremony::Get, false).is_ok(),
        "a faithful reassembly verifies"
    );
    assert!(
        assert_with(&mut token, Ceremony::Create, false).is_err(),
        "client data of the wrong ceremony type is refused"
    );
    assert!(
        assert_with(&mut token, Ceremony::Get, true).is_err(),
        "authenticator data the key did not sign is refused"
    );
}

#[test]
fn client_data_names_origin_challenge_and_type() {
    let cdj = client_data_json(Ceremony::Get, b"\x00\x01\xfe\xff");
    let v: serde_json::Value = serde_json::from_slice(&cdj).expect("json");
    assert_eq!(v["type"], "webauthn.get");
    assert_eq!(v["challenge"], "AAH-_w", "base64url without padding");
    assert_eq!(v["origin"], keyward_core::fido2::ORIGIN);
    assert_eq!(v["crossOrigin"], false);
}

#[test]
fn unknown_attestation_formats_are_refused() {
    let err = registration_credential(
        b"{}".to_vec(),
        b"id",
        "tpm",
        vec![0; 37],
        &AttestationStatement::default(),
    )
    .expect_err("tpm is not a security-key format");
    assert!(err.to_string().contains("\"tpm\""), "{err}");
    let err = registration_credential(
        b"{}".to_vec(),
        b"id",
        "packed",
        vec![0; 37],
        &AttestationStatement::default(),
    )
    .expect_err("packed needs alg");
    assert!(err.to_string().contains("alg"), "{err}");
}

#[test]
fn opening_a_missing_device_names_it() {
    match keyward_core::security_key::UsbKey::open(Some("/dev/hidraw-keyward-missing")) {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("/dev/hidraw-keyward-missing"), "{msg}");
        }
        Ok(_) => panic!("a path that does not exist cannot open"),
    }
}
