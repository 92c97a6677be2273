//! USB security keys: the WebAuthn client half of a FIDO2 ceremony and its CTAP2 transport.
//!
//! webauthn-rs verifies what a key answers, but it expects what a browser sends: client data
//! JSON, an attestation object, an assertion. A key speaks CTAP2 and signs only the SHA-256 of
//! the client data, so this module builds the client data, sends its hash to the key
//! (ctap-hid-fido2, which carries the hmac-secret extension that webauthn-authenticator-rs
//! lacks) and reassembles the key's answer into the types webauthn-rs checks.
//!
//! hmac-secret is always asked for without user verification (no PIN on assertions): the key
//! derives different outputs with and without it, so mixing the two would lock the user out.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ciborium::value::Value;
use ctap_hid_fido2::fidokey::get_assertion::get_assertion_params::Extension as AssertionExt;
use ctap_hid_fido2::fidokey::make_credential::{Extension as MakeExt, MakeCredentialArgsBuilder};
use ctap_hid_fido2::fidokey::GetAssertionArgsBuilder;
use ctap_hid_fido2::public_key_credential_user_entity::PublicKeyCredentialUserEntity;
use ctap_hid_fido2::{FidoKeyHid, HidParam, LibCfg};
use data_encoding::BASE64URL_NOPAD;
use serde::Serialize;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::fido2::{HMAC_OUTPUT_LEN, ORIGIN};
use webauthn_rs_proto::{
    AuthenticatorAssertionResponseRaw, AuthenticatorAttestationResponseRaw, AuthenticatorTransport,
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

/// HID usage page FIDO authenticators announce themselves with.
const FIDO_USAGE_PAGE: u16 = 0xf1d0;

/// What can go wrong talking to a security key.
#[derive(Debug, Error)]
pub enum SecurityKeyError {
    /// Nothing plugged in.
    #[error("no security key found: plug one in (and check you may read /dev/hidraw*)")]
    NoDevice,
    /// More than one key and no choice made.
    #[error("several security keys are plugged in ({0}): unplug the others or set KEYWARD_FIDO2_DEVICE to one of these paths")]
    SeveralDevices(String),
    /// The USB HID layer is unavailable.
    #[error("cannot list USB devices: {0}")]
    Hid(String),
    /// The named device could not be opened.
    #[error("cannot open the security key at {0}: check the path and its permissions")]
    Open(String),
    /// The key lacks hmac-secret, so it cannot hold key material.
    #[error("this security key does not support the hmac-secret extension: use another key or an authenticator app")]
    NoHmacSecret,
    /// None of the vault's credentials is on this key.
    #[error("this security key is not enrolled in the vault")]
    NotEnrolled,
    /// The key wants its PIN to register.
    #[error("this security key needs its PIN to register a credential")]
    PinRequired,
    /// The key refused or failed.
    #[error("the security key refused: {0}")]
    Device(String),
    /// The key's answer cannot be used.
    #[error("the security key sent an answer keyward cannot use: {0}")]
    BadResponse(String),
}

/// Which ceremony client data is for.
#[derive(Debug, Clone, Copy)]
pub enum Ceremony {
    /// Registration (`webauthn.create`).
    Create,
    /// Authentication (`webauthn.get`).
    Get,
}

#[derive(Serialize)]
struct ClientData<'a> {
    #[serde(rename = "type")]
    ty: &'a str,
    challenge: String,
    origin: &'a str,
    #[serde(rename = "crossOrigin")]
    cross_origin: bool,
}

/// The client data JSON a browser would send for `challenge` at Keyward's origin.
pub fn client_data_json(ceremony: Ceremony, challenge: &[u8]) -> Vec<u8> {
    let cd = ClientData {
        ty: match ceremony {
            Ceremony::Create => "webauthn.create",
            Ceremony::Get => "webauthn.get",
        },
        challenge: BASE64URL_NOPAD.encode(challenge),
        origin: ORIGIN,
        cross_origin: false,
    };
    // Serialising a struct of strings and a bool cannot fail.
    serde_json::to_vec(&cd).unwrap_or_default()
}

/// The attestation statement a key returned with a new credential.
#[derive(Debug, Clone, Default)]
pub struct AttestationStatement {
    /// COSE algorithm of the signature (`packed` only).
    pub alg: Option<i64>,
    /// Signature over authData ‖ clientDataHash (empty for `none`).
    pub sig: Vec<u8>,
    /// Attestation certificate chain, leaf first (may be empty for self attestation).
    pub x5c: Vec<Vec<u8>>,
}

/// Builds the credential webauthn-rs verifies from a key's makeCredential answer.
pub fn registration_credential(
    client_data_json: Vec<u8>,
    credential_id: &[u8],
    fmt: &str,
    auth_data: Vec<u8>,
    stmt: &AttestationStatement,
) -> Result<RegisterPublicKeyCredential, SecurityKeyError> {
    let text = |s: &str| Value::Text(s.to_owned());
    let mut att = Vec::new();
    match fmt {
        "none" => {}
        "packed" | "fido-u2f" => {
            if fmt == "packed" {
                let alg = stmt.alg.ok_or_else(|| {
                    SecurityKeyError::BadResponse("packed attestation without alg".into())
                })?;
                att.push((text("alg"), Value::Integer(alg.into())));
            }
            att.push((text("sig"), Value::Bytes(stmt.sig.clone())));
            if !stmt.x5c.is_empty() {
                let chain = stmt.x5c.iter().cloned().map(Value::Bytes).collect();
                att.push((text("x5c"), Value::Array(chain)));
            }
        }
        other => {
            return Err(SecurityKeyError::BadResponse(format!(
                "attestation format {other:?} is not supported"
            )))
        }
    }
    let object = Value::Map(vec![
        (text("fmt"), text(fmt)),
        (text("attStmt"), Value::Map(att)),
        (text("authData"), Value::Bytes(auth_data)),
    ]);
    let mut attestation_object = Vec::new();
    ciborium::into_writer(&object, &mut attestation_object)
        .map_err(|e| SecurityKeyError::BadResponse(e.to_string()))?;
    Ok(RegisterPublicKeyCredential {
        id: BASE64URL_NOPAD.encode(credential_id),
        raw_id: credential_id.to_vec(),
        response: AuthenticatorAttestationResponseRaw {
            attestation_object,
            client_data_json,
            transports: Some(vec![AuthenticatorTransport::Usb]),
        },
        type_: "public-key".into(),
        extensions: Default::default(),
    })
}

/// Builds the assertion webauthn-rs verifies from a key's getAssertion answer.
pub fn assertion_credential(
    client_data_json: Vec<u8>,
    credential_id: &[u8],
    auth_data: Vec<u8>,
    signature: Vec<u8>,
) -> PublicKeyCredential {
    PublicKeyCredential {
        id: BASE64URL_NOPAD.encode(credential_id),
        raw_id: credential_id.to_vec(),
        response: AuthenticatorAssertionResponseRaw {
            authenticator_data: auth_data,
            client_data_json,
            signature,
            user_handle: None,
        },
        extensions: Default::default(),
        type_: "public-key".into(),
    }
}

/// A FIDO2 key on USB HID.
pub struct UsbKey {
    dev: FidoKeyHid,
}

impl std::fmt::Debug for UsbKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsbKey")
    }
}

/// Runs a call into the CTAP library, turning its panics on malformed device answers into
/// errors: a broken or hostile USB device must not crash the vault's front end.
fn guarded<T, E: std::fmt::Display>(
    what: &str,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, SecurityKeyError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(SecurityKeyError::Device(format!("{what}: {e}"))),
        Err(_) => Err(SecurityKeyError::BadResponse(format!(
            "{what}: malformed answer"
        ))),
    }
}

impl UsbKey {
    /// Opens the key at `path` (a hidraw path), or the only FIDO key plugged in.
    pub fn open(path: Option<&str>) -> Result<Self, SecurityKeyError> {
        // Enumerate ourselves: the CTAP library panics when the HID layer cannot start.
        let api = hidapi::HidApi::new().map_err(|e| SecurityKeyError::Hid(e.to_string()))?;
        let keys: Vec<String> = api
            .device_list()
            .filter(|d| d.usage_page() == FIDO_USAGE_PAGE)
            .filter_map(|d| d.path().to_str().ok().map(str::to_owned))
            .collect();
        let chosen = match path {
            Some(p) => p.to_owned(),
            None => match keys.as_slice() {
                [] => return Err(SecurityKeyError::NoDevice),
                [one] => one.clone(),
                many => return Err(SecurityKeyError::SeveralDevices(many.join(", "))),
            },
        };
        drop(api);
        let cfg = LibCfg {
            // The library's "touch" banner would land on stdout, where credential JSON goes.
            enable_keep_alive_msg: false,
            ..LibCfg::init()
        };
        let dev = guarded("open", || {
            FidoKeyHid::new(&[HidParam::Path(chosen.clone())], &cfg)
        })
        .map_err(|_| SecurityKeyError::Open(chosen.clone()))?;
        Ok(UsbKey { dev })
    }

    /// Whether registering needs the key's PIN (a PIN is set and the key does not waive it).
    pub fn pin_needed_to_register(&self) -> Result<bool, SecurityKeyError> {
        let info = guarded("getInfo", || self.dev.get_info())?;
        let opt = |name: &str| {
            info.options
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| *v)
        };
        if !info.extensions.iter().any(|e| e == "hmac-secret") {
            return Err(SecurityKeyError::NoHmacSecret);
        }
        Ok(opt("clientPin") == Some(true) && opt("makeCredUvNotRqd") != Some(true))
    }

    /// Registers a new credential for `challenge` (the key wants a touch).
    pub fn register(
        &self,
        challenge: &CreationChallengeResponse,
        pin: Option<&str>,
    ) -> Result<RegisterPublicKeyCredential, SecurityKeyError> {
        let opts = &challenge.public_key;
        let cdj = client_data_json(Ceremony::Create, opts.challenge.as_ref());
        let user = PublicKeyCredentialUserEntity::new(
            Some(opts.user.id.as_ref()),
            Some(&opts.user.name),
            Some(&opts.user.display_name),
        );
        let mut args = MakeCredentialArgsBuilder::new(&opts.rp.id, &cdj)
            .extensions(&[MakeExt::HmacSecret(Some(true))])
            .user_entity(&user);
        for c in opts.exclude_credentials.iter().flatten() {
            args = args.exclude_authenticator(c.id.as_ref());
        }
        args = match pin {
            Some(p) => args.pin(p),
            None => args.without_pin_and_uv(),
        };
        let args = args.build();
        let att = guarded("makeCredential", || {
            self.dev.make_credential_with_args(&args)
        })
        .map_err(|e| match e {
            SecurityKeyError::Device(m) if m.contains("PIN_REQUIRED") => {
                SecurityKeyError::PinRequired
            }
            e => e,
        })?;
        if !att
            .extensions
            .iter()
            .any(|e| matches!(e, MakeExt::HmacSecret(Some(true))))
        {
            return Err(SecurityKeyError::NoHmacSecret);
        }
        let stmt = AttestationStatement {
            alg: (att.fmt == "packed").then_some(i64::from(att.attstmt_alg)),
            sig: att.attstmt_sig,
            x5c: att.attstmt_x5c,
        };
        registration_credential(
            cdj,
            &att.credential_descriptor.id,
            &att.fmt,
            att.auth_data,
            &stmt,
        )
    }

    /// The hmac-secret output of credential `credential_id` for `salt` (the key wants a touch).
    pub fn hmac_secret(
        &self,
        credential_id: &[u8],
        salt: &[u8; 32],
    ) -> Result<Zeroizing<Vec<u8>>, SecurityKeyError> {
        let mut challenge = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut challenge);
        let cdj = client_data_json(Ceremony::Get, &challenge);
        let (_, out) = self.assert(crate::fido2::RP_ID, &cdj, credential_id, salt)?;
        Ok(out)
    }

    /// Answers an unlock challenge with the enrolled credential this key holds, and that
    /// credential's hmac-secret output for its salt. `salts` pairs credential ids (hex) with
    /// salts (hex), as the agent sends them.
    pub fn authenticate(
        &self,
        challenge: &RequestChallengeResponse,
        salts: &[(String, String)],
    ) -> Result<(PublicKeyCredential, Zeroizing<Vec<u8>>), SecurityKeyError> {
        let opts = &challenge.public_key;
        let mut enrolled = Vec::new();
        for (id, salt) in salts {
            let id = data_encoding::HEXLOWER
                .decode(id.as_bytes())
                .map_err(|e| SecurityKeyError::BadResponse(e.to_string()))?;
            let salt: [u8; 32] = data_encoding::HEXLOWER
                .decode(salt.as_bytes())
                .ok()
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| SecurityKeyError::BadResponse("salt is not 32 bytes".into()))?;
            enrolled.push((id, salt));
        }
        let (id, salt) = self.find_enrolled(&opts.rp_id, &enrolled)?;
        let cdj = client_data_json(Ceremony::Get, opts.challenge.as_ref());
        let (assertion, out) = self.assert(&opts.rp_id, &cdj, &id, &salt)?;
        Ok((assertion, out))
    }

    /// Which enrolled credential this key holds, asked without a touch (up = false).
    fn find_enrolled(
        &self,
        rp_id: &str,
        enrolled: &[(Vec<u8>, [u8; 32])],
    ) -> Result<(Vec<u8>, [u8; 32]), SecurityKeyError> {
        if let [only] = enrolled {
            return Ok(only.clone());
        }
        for (id, salt) in enrolled {
            let probe = GetAssertionArgsBuilder::new(rp_id, b"keyward-probe")
                .credential_id(id)
                .without_pin_and_uv()
                .without_up()
                .build();
            if guarded("probe", || self.dev.get_assertion_with_args(&probe)).is_ok() {
                return Ok((id.clone(), *salt));
            }
        }
        Err(SecurityKeyError::NotEnrolled)
    }

    fn assert(
        &self,
        rp_id: &str,
        cdj: &[u8],
        credential_id: &[u8],
        salt: &[u8; 32],
    ) -> Result<(PublicKeyCredential, Zeroizing<Vec<u8>>), SecurityKeyError> {
        let args = GetAssertionArgsBuilder::new(rp_id, cdj)
            .credential_id(credential_id)
            .without_pin_and_uv()
            .extensions(&[AssertionExt::HmacSecret(Some(*salt))])
            .build();
        let mut got = guarded("getAssertion", || self.dev.get_assertion_with_args(&args)).map_err(
            |e| match e {
                SecurityKeyError::Device(m) if m.contains("NO_CREDENTIALS") => {
                    SecurityKeyError::NotEnrolled
                }
                e => e,
            },
        )?;
        let a = got
            .pop()
            .ok_or_else(|| SecurityKeyError::BadResponse("no assertion".into()))?;
        let out = a
            .extensions
            .iter()
            .find_map(|e| match e {
                AssertionExt::HmacSecret(Some(o)) => Some(Zeroizing::new(o.to_vec())),
                _ => None,
            })
            .ok_or(SecurityKeyError::NoHmacSecret)?;
        if out.len() != HMAC_OUTPUT_LEN {
            return Err(SecurityKeyError::BadResponse(
                "hmac-secret output length".into(),
            ));
        }
        // Keys may omit the credential id when the allow list had one entry.
        let id = if a.credential_id.is_empty() {
            credential_id.to_vec()
        } else {
            a.credential_id
        };
        Ok((
            assertion_credential(cdj.to_vec(), &id, a.auth_data, a.signature),
            out,
        ))
    }
}
