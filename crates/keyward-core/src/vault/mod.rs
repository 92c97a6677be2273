//! The vault: creation, two-factor unlock, entries, and keeping the two stores in step.
//!
//! Key hierarchy. An age X25519 identity encrypts every secret; its public recipient sits in the
//! header so keys can be added while locked. The header is authenticated under a key derived
//! from the identity and checked at every unlock; adds use the recipient verified at the last
//! unlock (held by this `Vault`), never one read fresh from the catalog. The identity is sealed in *slots*, one per enrolled
//! factor, each with XChaCha20-Poly1305 under
//! `HKDF-SHA256(Argon2id(passphrase) ‖ device secret ‖ factor material, slot salt)`.
//! The device secret is random and kept in the keychain, so a copied catalog cannot be attacked
//! elsewhere. Factor material is the recovery code for recovery slots and the authenticator's
//! hmac-secret output for FIDO2 slots; TOTP slots carry none (TOTP is a gate: its seed is sealed
//! in the slot and the code is checked after the slot opens).
//!
//! Write order between keychain and catalog (crash-safe, no silent orphan):
//! add = catalog row `pending` → keychain item → row `active`;
//! remove = row `deleting` → keychain item removed → row deleted.
//! [`Vault::reconcile`] finishes or rolls back whatever a crash interrupted, and reports it.
//!
//! Rooms: `header` (the header and slot format, its MAC, sealing and opening slots; a
//! known-answer vector from an independent implementation pins it), `create`, `unlock`
//! (unlock, throttle, TOTP steps, code checks), `enrol` (factors), `entries` (keys and their
//! secrets), `settings`, `trail` (the audit trail and its anchor), `reconcile`, `error`.

use std::path::{Path, PathBuf};

use age::x25519;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::audit::{self, Actor, Anchor, AuditError, AuditEvent};
use crate::catalog::{Catalog, CatalogError, EntryState, KeystoreKind, PendingRotation, VaultRow};
use crate::entry::{EntryError, EntryKind, EntryMeta, SecretValue};
use crate::factors::{self, FactorError, TotpSetup};
use crate::integrity::{MacKey, AUDIT_INFO, HEADER_INFO};
use crate::kdf::{self, KdfError, KdfParams};
use crate::keystore::{self, Keystore, KeystoreError};

mod bindings;
mod create;
mod enrol;
mod entries;
mod error;
mod header;
mod reconcile;
mod rotation;
mod settings;
mod trail;
mod unlock;

pub use bindings::BoundKey;
pub use error::VaultError;
pub use header::validate_header;
use header::*;
pub use rotation::{RotationJournal, RotationStep};
pub use settings::{MAX_AUTO_LOCK, MIN_AUTO_LOCK};
use trail::*;
use unlock::*;

/// The descriptive metadata of an entry a user may edit, checked once when it is made
/// ([`EntryEdit::new`]); `Default` is the empty set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryEdit {
    owner: Option<String>,
    purpose: Option<String>,
    tags: Vec<String>,
    rotation_interval_days: Option<u32>,
    expires: Option<String>,
}

impl EntryEdit {
    /// Who is responsible for the key, what it is for, its tags, rotation interval (days) and
    /// expiry (RFC 3339); refused with the field to fix when one is too long, has control
    /// characters, or (expiry) is not a date.
    pub fn new(
        owner: Option<String>,
        purpose: Option<String>,
        tags: Vec<String>,
        rotation_interval_days: Option<u32>,
        expires: Option<String>,
    ) -> Result<Self, EntryError> {
        crate::entry::validate_meta(
            owner.as_deref(),
            purpose.as_deref(),
            &tags,
            expires.as_deref(),
        )?;
        Ok(EntryEdit {
            owner,
            purpose,
            tags,
            rotation_interval_days,
            expires,
        })
    }
}

/// The kind of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum SlotKind {
    /// Passphrase + TOTP gate.
    Totp,
    /// Passphrase + one-time recovery code.
    Recovery,
    /// Passphrase + FIDO2 security key (assertion verified, hmac-secret output as material).
    Fido2,
}

impl SlotKind {
    fn info(self) -> &'static [u8] {
        match self {
            SlotKind::Totp => b"keyward/v1/slot/totp",
            SlotKind::Recovery => b"keyward/v1/slot/recovery",
            SlotKind::Fido2 => b"keyward/v1/slot/fido2",
        }
    }
    /// Display name.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::Totp => "totp",
            SlotKind::Recovery => "recovery",
            SlotKind::Fido2 => "fido2",
        }
    }
}

/// An enrolled factor as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct FactorInfo {
    /// Slot id (used to remove it).
    pub id: String,
    /// Kind.
    pub kind: SlotKind,
    /// User label.
    pub label: String,
    /// When enrolled.
    pub created: String,
}

/// The unlocked vault key. Wiped on drop (age's identity zeroizes its scalar).
pub struct UnlockedKey {
    identity: x25519::Identity,
    /// The TOTP factors' seeds (slot id, seed), read from their slots at unlock, so that an
    /// action can ask for a fresh code while the vault is open ([`Vault::check_code`]).
    totp: Vec<(String, Zeroizing<Vec<u8>>)>,
}

impl std::fmt::Debug for UnlockedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockedKey(<redacted>)")
    }
}

/// The second factor presented at unlock.
pub enum SecondFactor {
    /// A 6-digit TOTP code.
    Totp(String),
    /// A recovery code (consumed on success).
    Recovery(SecretString),
    /// A FIDO2 assertion answering a challenge from [`Vault::fido2_unlock_begin`], with the
    /// authenticator's hmac-secret output for the slot's salt.
    Fido2 {
        /// The pending ceremony.
        pending: crate::fido2::PendingAuthentication,
        /// The authenticator's assertion.
        assertion: Box<webauthn_rs::prelude::PublicKeyCredential>,
        /// hmac-secret output (32 bytes).
        hmac_output: Zeroizing<Vec<u8>>,
    },
}

/// Options for creating a vault.
pub struct CreateOptions {
    /// The passphrase (strength already checked by the caller's edge, or checked here).
    pub passphrase: SecretString,
    /// Where secrets will live.
    pub keystore: KeystoreKind,
    /// KDF parameters (calibrated by the caller).
    pub kdf: KdfParams,
    /// TOTP factor to enroll, with a code proving the user's app has it.
    pub totp: TotpSetup,
    /// Current code from the user's app.
    pub totp_code: String,
    /// Label for the TOTP factor.
    pub totp_label: String,
}

/// What creation hands back once.
pub struct Created {
    /// One-time recovery codes, to show once.
    pub recovery_codes: Vec<SecretString>,
    /// The vault id.
    pub vault_id: String,
    /// The new vault's key: the caller just proved both factors, so it may start unlocked.
    pub key: UnlockedKey,
}

/// Result of a successful unlock.
#[derive(Debug)]
pub struct Unlocked {
    /// The key.
    pub key: UnlockedKey,
    /// Recovery codes left, when one was used.
    pub recovery_codes_left: Option<usize>,
}

/// What an unlock's passphrase is stretched with, read by [`Vault::unlock_start`]; deriving
/// needs no vault, so a service can keep answering meanwhile.
#[derive(Debug)]
pub struct UnlockStart {
    header_text: String,
    salt: Vec<u8>,
    kdf: KdfParams,
}

impl UnlockStart {
    /// Stretches the passphrase with the vault's Argon2id parameters (bounded: see
    /// [`KdfParams::check_bounds`]); about a second as calibrated, a few at the bound.
    pub fn derive(&self, passphrase: &SecretString) -> Result<PassKey, VaultError> {
        Ok(PassKey(kdf::derive(
            passphrase.expose_secret().as_bytes(),
            &self.salt,
            &self.kdf,
        )?))
    }
}

/// A stretched passphrase, for [`Vault::unlock_finish`]; wiped when dropped.
pub struct PassKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for PassKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PassKey(..)")
    }
}

/// One fix made by [`Vault::reconcile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct ReconcileNote {
    /// Entry name.
    pub name: String,
    /// What was done.
    pub action: String,
}

/// Where a vault's files are.
#[derive(Debug, Clone)]
pub struct VaultPaths {
    /// Data directory (catalog).
    pub data_dir: PathBuf,
}

impl VaultPaths {
    /// `$KEYWARD_DATA_DIR`, else `$XDG_DATA_HOME/keyward`, else `~/.local/share/keyward`.
    pub fn from_env() -> Option<Self> {
        let data_dir = std::env::var_os("KEYWARD_DATA_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_DATA_HOME")
                    .filter(|v| !v.is_empty())
                    .map(|d| PathBuf::from(d).join("keyward"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/keyward"))
            })?;
        Some(VaultPaths { data_dir })
    }
    /// The catalog file.
    pub fn catalog(&self) -> PathBuf {
        self.data_dir.join("catalog.sqlite")
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

fn hex(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}

fn unhex(s: &str, what: &str) -> Result<Vec<u8>, VaultError> {
    data_encoding::HEXLOWER
        .decode(s.as_bytes())
        .map_err(|_| VaultError::BadHeader(format!("{what} is not hex")))
}

/// The vault: catalog plus keystore, with the header read on demand.
pub struct Vault {
    catalog: Catalog,
    paths: VaultPaths,
    /// The recipient checked against the unlocked identity at the last unlock (or creation):
    /// what new secrets are encrypted to. It outlives a lock, not this value.
    recipient: Option<x25519::Recipient>,
    /// The audit chain's key (from the device secret), read once.
    audit_key: Option<MacKey>,
    /// The chain's anchor as last written by this value.
    anchor: Option<Anchor>,
    /// The trail's head written by this value and not yet anchored.
    unanchored: Option<Anchor>,
    /// The last anchor write failed: audit refuses until one succeeds.
    anchor_failed: bool,
    /// Entry ciphertexts as this value last read or wrote them (entry id → age ciphertext), so
    /// that using a key again costs no keychain round trip (a D-Bus call to the Secret Service,
    /// most of a lease's time). Only ciphertext: every use still decrypts it and checks what it
    /// is sealed with. Emptied at each unlock, so a changed keychain is read afresh.
    entry_items: std::collections::HashMap<String, Vec<u8>>,
    /// The newest header generation the keystore keeps, as this value last read or wrote it:
    /// every check of the header compares against it, and reading it is a keychain round trip.
    /// Only header writes raise it, and this value makes them, so the copy can only be as high
    /// as the keystore's (a keychain item lowered behind the agent's back changes nothing).
    /// Read afresh at each unlock.
    kept: std::cell::Cell<Option<u64>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("paths", &self.paths).finish()
    }
}

impl Vault {
    /// Opens the catalog (creating the file if needed); the vault itself may not exist yet.
    pub fn open(paths: VaultPaths) -> Result<Self, VaultError> {
        let catalog = Catalog::open(&paths.catalog())?;
        Ok(Vault {
            catalog,
            paths,
            recipient: None,
            audit_key: None,
            anchor: None,
            unanchored: None,
            anchor_failed: false,
            entry_items: std::collections::HashMap::new(),
            kept: std::cell::Cell::new(None),
        })
    }

    /// The catalog path.
    pub fn catalog_path(&self) -> &Path {
        self.catalog.path()
    }

    /// Direct catalog access (tests, the agent's audit writer).
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Mutable catalog access.
    pub fn catalog_mut(&mut self) -> &mut Catalog {
        &mut self.catalog
    }

    /// Whether a vault has been created.
    pub fn exists(&self) -> Result<bool, VaultError> {
        Ok(self.catalog.vault()?.is_some())
    }

    fn row(&self) -> Result<VaultRow, VaultError> {
        self.catalog.vault()?.ok_or(VaultError::NoVault)
    }

    fn header(&self) -> Result<(VaultRow, Header), VaultError> {
        let row = self.row()?;
        let header = parse_header(&row.header)?;
        Ok((row, header))
    }

    /// The keystore of the existing vault.
    pub fn keystore(&self) -> Result<Keystore, VaultError> {
        let row = self.row()?;
        Ok(Keystore::new(row.keystore, &row.vault_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        assert_eq!(delay_after(1), 0);
        assert_eq!(delay_after(2), 0);
        assert_eq!(delay_after(3), 1);
        assert_eq!(delay_after(4), 2);
        assert_eq!(delay_after(6), 8);
        assert_eq!(delay_after(40), MAX_DELAY_SECS);
    }
}
