use super::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Slot {
    pub(super) id: String,
    pub(super) kind: SlotKind,
    pub(super) label: String,
    pub(super) created: String,
    pub(super) salt: String,
    pub(super) nonce: String,
    pub(super) ciphertext: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) fido2: Option<Fido2Slot>,
}

/// What a FIDO2 slot keeps beside its sealed payload: the registered credential (public key,
/// counter) and the salt sent to the authenticator's hmac-secret extension.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Fido2Slot {
    pub(super) key: webauthn_rs::prelude::SecurityKey,
    pub(super) hmac_salt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Header {
    pub(super) version: u32,
    pub(super) recipient: String,
    pub(super) kdf: KdfParams,
    pub(super) kdf_salt: String,
    pub(super) slots: Vec<Slot>,
    /// Standing grants (for hours, until lock) need a current second-factor code. Kept in the
    /// authenticated header, not in the settings table: an edit to turn it off is caught.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) grants_need_code: bool,
    /// The static keys (by entry id) the user allowed to be leased, and how. In the
    /// authenticated header, so editing the catalog cannot let a key out.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(super) leases: std::collections::BTreeMap<String, crate::entry::LeaseMode>,
    /// Which key answers which tool's credential helper for which host (`"git:HOST"`,
    /// `"docker:HOST"`). Authenticated, so an edit cannot send a key to another host.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(super) bindings: std::collections::BTreeMap<String, crate::entry::HelperBinding>,
    /// Counts the writes of the header; the newest count is also kept in the keystore, so an
    /// older header (with a spent recovery code's slot, or a setting since turned on) put back
    /// with its valid MAC is refused.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(super) generation: u64,
}

pub(super) fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a slot seals.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SlotPayload {
    pub(super) identity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) totp_secret: Option<String>,
}

/// Derives a slot's sealing key from the passphrase key, device secret and factor material.
pub(super) fn slot_key(
    pass_key: &[u8; 32],
    device: &[u8],
    material: &[u8],
    salt: &[u8],
    kind: SlotKind,
) -> Zeroizing<[u8; 32]> {
    let mut ikm = Zeroizing::new(Vec::with_capacity(32 + device.len() + material.len()));
    ikm.extend_from_slice(pass_key);
    ikm.extend_from_slice(device);
    ikm.extend_from_slice(material);
    let hk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = hk.expand(kind.info(), out.as_mut());
    out
}

pub(super) fn aad(vault_id: &str, slot_id: &str, kind: SlotKind) -> Vec<u8> {
    format!("keyward/v1|{vault_id}|{slot_id}|{}", kind.as_str()).into_bytes()
}

/// Parses a stored vault header and applies the bounds every read applies (version, KDF work,
/// slot count and size): what a tampered or damaged catalog is checked against before any work.
pub fn validate_header(text: &str) -> Result<(), VaultError> {
    parse_header(text).map(|_| ())
}

pub(super) fn parse_header(text: &str) -> Result<Header, VaultError> {
    let header: Header =
        serde_json::from_str(text).map_err(|e| VaultError::BadHeader(e.to_string()))?;
    if header.version != HEADER_VERSION {
        return Err(VaultError::BadHeader(format!(
            "unknown header version {}",
            header.version
        )));
    }
    header.kdf.check_bounds()?;
    if header.slots.len() > MAX_SLOTS {
        return Err(VaultError::BadHeader("too many slots".to_owned()));
    }
    if header
        .slots
        .iter()
        .any(|s| s.ciphertext.len() > MAX_SLOT_CIPHERTEXT * 2)
    {
        return Err(VaultError::BadHeader("oversized slot".to_owned()));
    }
    Ok(header)
}

/// The passphrase key and device secret a new slot is sealed with.
pub(super) type SealingKeys = (Zeroizing<[u8; 32]>, Zeroizing<Vec<u8>>);

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&Sha256::digest(bytes))
}

/// The header MAC key: derived from the identity, so only an unlocked vault can write a header
/// that verifies.
pub(super) fn header_key(identity: &x25519::Identity, vault_id: &str) -> MacKey {
    MacKey::derive(
        identity.to_string().expose_secret().as_bytes(),
        vault_id,
        HEADER_INFO,
    )
}

pub(super) fn header_parts<'a>(
    vault_id: &'a str,
    keystore: KeystoreKind,
    header: &'a str,
) -> [&'a [u8]; 3] {
    let ks: &'static [u8] = match keystore {
        KeystoreKind::Keychain => b"keychain",
        KeystoreKind::File => b"file",
    };
    [vault_id.as_bytes(), ks, header.as_bytes()]
}

/// The MAC (hex) of the stored header text.
pub(super) fn header_tag(
    identity: &x25519::Identity,
    vault_id: &str,
    keystore: KeystoreKind,
    header: &str,
) -> String {
    hex(&header_key(identity, vault_id).tag(&header_parts(vault_id, keystore, header)))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn seal_slot(
    vault_id: &str,
    pass_key: &[u8; 32],
    device: &[u8],
    material: &[u8],
    kind: SlotKind,
    label: &str,
    identity: &x25519::Identity,
    totp_secret: Option<&[u8]>,
) -> Result<Slot, VaultError> {
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let salt: [u8; 32] = random();
    let nonce: [u8; 24] = random();
    let key = slot_key(pass_key, device, material, &salt, kind);
    let payload = SlotPayload {
        identity: identity.to_string().expose_secret().to_owned(),
        totp_secret: totp_secret.map(hex),
    };
    let plain = Zeroizing::new(
        serde_json::to_vec(&payload)
            .map_err(|e| VaultError::Internal(format!("writing a slot: {e}")))?,
    );
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &aad(vault_id, &id, kind),
            },
        )
        .map_err(|_| VaultError::Internal("sealing a slot failed".into()))?;
    Ok(Slot {
        id,
        kind,
        label: label.to_owned(),
        created: now_rfc3339(),
        salt: hex(&salt),
        nonce: hex(&nonce),
        ciphertext: hex(&ct),
        fido2: None,
    })
}

/// Opens a slot; `Ok(None)` when the key material does not fit it.
pub(super) fn open_slot(
    vault_id: &str,
    slot: &Slot,
    pass_key: &[u8; 32],
    device: &[u8],
    material: &[u8],
) -> Result<Option<SlotPayload>, VaultError> {
    let salt = unhex(&slot.salt, "slot salt")?;
    let nonce = unhex(&slot.nonce, "slot nonce")?;
    if nonce.len() != 24 {
        return Err(VaultError::BadHeader(
            "slot nonce has the wrong length".into(),
        ));
    }
    let ct = unhex(&slot.ciphertext, "slot ciphertext")?;
    let key = slot_key(pass_key, device, material, &salt, slot.kind);
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let Ok(plain) = cipher.decrypt(
        XNonce::from_slice(&nonce),
        Payload {
            msg: &ct,
            aad: &aad(vault_id, &slot.id, slot.kind),
        },
    ) else {
        return Ok(None);
    };
    let plain = Zeroizing::new(plain);
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(|_| VaultError::BadHeader("slot payload is malformed".into()))
}

pub(super) fn parse_identity(s: &str) -> Result<UnlockedKey, VaultError> {
    let identity: x25519::Identity = s
        .parse()
        .map_err(|_| VaultError::BadHeader("sealed identity is malformed".into()))?;
    Ok(UnlockedKey {
        identity,
        totp: Vec::new(),
    })
}

/// Version of the header format this build writes and reads.
pub(super) const HEADER_VERSION: u32 = 1;

/// Upper bound on slots read from a header (guard against a hostile header).
pub(super) const MAX_SLOTS: usize = 64;

/// Upper bound on a slot's sealed payload.
pub(super) const MAX_SLOT_CIPHERTEXT: usize = 4096;

impl Drop for SlotPayload {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.identity.zeroize();
        if let Some(s) = &mut self.totp_secret {
            s.zeroize();
        }
    }
}

impl Vault {
    /// Stores `header` with its MAC under the unlocked identity.
    pub(super) fn store_header(
        &self,
        header: &Header,
        key: &UnlockedKey,
    ) -> Result<(), VaultError> {
        let row = self.row()?;
        let keystore = Keystore::new(row.keystore, &row.vault_id);
        let mut header = header.clone();
        header.generation = header
            .generation
            .max(self.kept_generation(&keystore)?)
            .saturating_add(1);
        let json = serde_json::to_string(&header)
            .map_err(|e| VaultError::Internal(format!("writing the header: {e}")))?;
        let mac = header_tag(&key.identity, &row.vault_id, row.keystore, &json);
        // The catalog first: a crash between the two leaves a header newer than the kept
        // count (accepted), never an authentic header that looks rolled back.
        self.catalog.update_header(&json, &mac)?;
        // Forgotten first: if the write fails, the next check reads what the keystore has.
        self.kept.set(None);
        keystore.put(
            &self.catalog,
            keystore::HEADER_GENERATION_ITEM,
            header.generation.to_string().as_bytes(),
        )?;
        self.kept.set(Some(header.generation));
        if row.header_mac.is_none() {
            keystore.put(&self.catalog, keystore::HEADER_SEALED_ITEM, b"1")?;
        }
        Ok(())
    }

    /// The newest header generation the keystore remembers (0 before the first write); an
    /// unreadable record counts as the highest, so it refuses rather than accepts.
    pub(super) fn kept_generation(&self, keystore: &Keystore) -> Result<u64, VaultError> {
        if let Some(kept) = self.kept.get() {
            return Ok(kept);
        }
        let kept = match keystore.get(&self.catalog, keystore::HEADER_GENERATION_ITEM) {
            Ok(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::MAX),
            Err(KeystoreError::Missing { .. }) => 0,
            Err(e) => return Err(e.into()),
        };
        self.kept.set(Some(kept));
        Ok(kept)
    }

    /// Checks, once a slot opened, that the header is the one this identity wrote: its
    /// recipient is the identity's own and its MAC verifies (the stored text exactly).
    pub(super) fn check_header(
        &self,
        row: &VaultRow,
        header: &Header,
        key: &UnlockedKey,
    ) -> Result<(), VaultError> {
        if key.identity.to_public().to_string() != header.recipient {
            return Err(VaultError::HeaderTampered(
                "its public recipient is not the vault's own key".into(),
            ));
        }
        match &row.header_mac {
            Some(mac) => {
                let ok = unhex(mac, "header MAC").ok().is_some_and(|tag| {
                    header_key(&key.identity, &row.vault_id).verify(
                        &header_parts(&row.vault_id, row.keystore, &row.header),
                        &tag,
                    )
                });
                let kept = self.kept_generation(&Keystore::new(row.keystore, &row.vault_id))?;
                if ok && header.generation < kept {
                    Err(VaultError::HeaderTampered(format!(
                        "an older copy of it was put back (it is write {} of {kept})",
                        header.generation
                    )))
                } else if ok {
                    Ok(())
                } else {
                    Err(VaultError::HeaderTampered(
                        "its recipient, KDF parameters or slots differ from what this vault wrote"
                            .into(),
                    ))
                }
            }
            // Made before headers were authenticated: sealed by `upgrade_header` now that the
            // recipient has been checked. The keystore remembers that a header was sealed, so a
            // cleared MAC does not pass a newer vault off as an old one.
            None => {
                let keystore = Keystore::new(row.keystore, &row.vault_id);
                if keystore.exists(&self.catalog, keystore::HEADER_SEALED_ITEM)? {
                    return Err(VaultError::HeaderTampered("its MAC was removed".into()));
                }
                Ok(())
            }
        }
    }

    /// Gives a header from before schema 3 its MAC.
    pub(super) fn upgrade_header(
        &self,
        row: &VaultRow,
        header: &Header,
        key: &UnlockedKey,
    ) -> Result<(), VaultError> {
        if row.header_mac.is_none() {
            self.store_header(header, key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed with libsodium and Python's hmac, not with this code: tests/vectors/slot_kat.py.
    const KAT_KEY: &str = "aca6030b1bedf5b77e2be87b4b16f69cbd9ea3309e0cbde2a4098d44c21ffc09";
    const KAT_CIPHERTEXT: &str = "de5fac137ea602c213b78079cb2c50e82790186c0f78d8b1db451d2e145970d1d0ac20ab86c2e520468569853f48bb92ab4abdaf2b69810941bf9a49f3b936c01ed96e7fc07b4fe548b3f21b3eedc650510c1dbb67c29c1f4515e0c974ffac4f2d524b6732";
    const VAULT_ID: &str = "0123456789abcdef0123456789abcdef";

    fn bytes(from: u8, n: u8) -> Vec<u8> {
        (from..from + n).collect()
    }

    fn kat_slot() -> Slot {
        Slot {
            id: "a1b2c3d4e5f6".into(),
            kind: SlotKind::Recovery,
            label: "recovery code 1".into(),
            created: "2026-12-02T00:00:00Z".into(),
            salt: hex(&bytes(64, 32)),
            nonce: hex(&bytes(96, 24)),
            ciphertext: KAT_CIPHERTEXT.into(),
            fido2: None,
        }
    }

    fn pass_key() -> [u8; 32] {
        let mut k = [0u8; 32];
        k.copy_from_slice(&bytes(0, 32));
        k
    }

    #[test]
    fn the_slot_key_is_hkdf_sha256_of_passphrase_key_device_secret_and_material() {
        let key = slot_key(
            &pass_key(),
            &bytes(32, 32),
            b"recovery-material",
            &bytes(64, 32),
            SlotKind::Recovery,
        );
        assert_eq!(hex(key.as_ref()), KAT_KEY);
    }

    #[test]
    fn a_slot_sealed_elsewhere_opens() {
        let payload = open_slot(
            VAULT_ID,
            &kat_slot(),
            &pass_key(),
            &bytes(32, 32),
            b"recovery-material",
        )
        .expect("well formed")
        .expect("the right factors open it");
        assert_eq!(
            payload.identity,
            "AGE-SECRET-KEY-1KATKATKATKATKATKATKATKATKATKATKATKATKATKATKATKATKATKAT"
        );
        assert!(payload.totp_secret.is_none());
        // The slot is bound to its vault, its id and its kind (the AEAD's associated data).
        for (vault_id, slot) in [
            ("fedcba9876543210fedcba9876543210", kat_slot()),
            (
                VAULT_ID,
                Slot {
                    id: "000000000000".into(),
                    ..kat_slot()
                },
            ),
        ] {
            let opened = open_slot(
                vault_id,
                &slot,
                &pass_key(),
                &bytes(32, 32),
                b"recovery-material",
            )
            .expect("well formed");
            assert!(opened.is_none(), "opened under another vault id or slot id");
        }
        let wrong = open_slot(
            VAULT_ID,
            &kat_slot(),
            &pass_key(),
            &bytes(32, 32),
            b"another-material",
        )
        .expect("well formed");
        assert!(wrong.is_none(), "other factor material");
    }
}
