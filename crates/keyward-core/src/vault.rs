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

/// Version of the header format this build writes and reads.
const HEADER_VERSION: u32 = 1;
/// Upper bound on slots read from a header (guard against a hostile header).
const MAX_SLOTS: usize = 64;
/// Upper bound on a slot's sealed payload.
const MAX_SLOT_CIPHERTEXT: usize = 4096;
/// Longest delay between unlock attempts after repeated failures.
const MAX_DELAY_SECS: i64 = 900;
/// Failures allowed before delays start.
const FREE_FAILURES: u32 = 2;

/// Catalog setting holding the user's auto-lock time in seconds.
const AUTO_LOCK_SETTING: &str = "auto_lock_secs";
/// Shortest auto-lock time a user may set.
pub const MIN_AUTO_LOCK: std::time::Duration = std::time::Duration::from_secs(60);
/// Longest auto-lock time a user may set.
pub const MAX_AUTO_LOCK: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The descriptive metadata of an entry a user may edit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryEdit {
    /// Who is responsible for the key.
    pub owner: Option<String>,
    /// What the key is for.
    pub purpose: Option<String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Rotation interval in days.
    pub rotation_interval_days: Option<u32>,
    /// Expiry (RFC 3339).
    pub expires: Option<String>,
}

/// Errors from vault operations; each message says what to do.
#[derive(Debug, Error)]
pub enum VaultError {
    /// No vault was created yet.
    #[error("no vault yet: run `keyward init` to create one")]
    NoVault,
    /// A vault already exists.
    #[error("a vault already exists at {0}: remove it first if you really mean to start over")]
    AlreadyExists(PathBuf),
    /// Wrong passphrase or second factor.
    #[error("unlock failed: the passphrase or the second factor is wrong ({failures} failed attempt(s) in a row{delay})")]
    WrongCredentials {
        /// Consecutive failures so far.
        failures: u32,
        /// Human text on the delay now in force.
        delay: String,
    },
    /// A code asked for while unlocked does not match any authenticator app.
    #[error("that code does not match your authenticator app ({failures} failed attempt(s) in a row{delay})")]
    WrongCode {
        /// Consecutive failures so far.
        failures: u32,
        /// Human text on the delay now in force.
        delay: String,
    },
    /// The first code from a new authenticator does not match.
    #[error("that code does not match the new TOTP secret: check that the app scanned this QR code and that the clock is right, then try the next code")]
    CodeMismatch,
    /// A TOTP code was used before.
    #[error("that code was already used: wait for the next code from your authenticator app")]
    CodeReused,
    /// Attempts are throttled.
    #[error("too many failed unlock attempts: try again in {0} s")]
    Throttled(i64),
    /// The vault is locked.
    #[error("the vault is locked: run `keyward unlock`")]
    Locked,
    /// No entry with this name.
    #[error("no key named '{0}': `keyward list` shows the stored keys")]
    NotFound(String),
    /// Entry of the wrong kind for the operation.
    #[error("'{name}' is a {actual} key, not {expected}")]
    WrongKind {
        /// Entry name.
        name: String,
        /// Kind required.
        expected: &'static str,
        /// Kind found.
        actual: &'static str,
    },
    /// The vault has no factor of this kind.
    #[error("this vault has no {0} factor enrolled")]
    NoSuchFactor(&'static str),
    /// An auto-lock time outside what Keyward allows.
    #[error("auto-lock must be between 1 minute and 24 hours")]
    AutoLockRange,
    /// Removing this factor would leave the vault without a second factor.
    #[error("cannot remove the last second factor: enroll another one first")]
    LastFactor,
    /// A FIDO2 ceremony failed.
    #[error("security key: {0}")]
    Fido2(String),
    /// The header is damaged or hostile.
    #[error("the vault header is damaged: {0}")]
    BadHeader(String),
    /// The header does not match the identity it seals: someone edited the catalog.
    #[error("the vault header was tampered with ({0}): Keyward will not use it. Restore the catalog from a backup you trust and find out what wrote to it")]
    HeaderTampered(String),
    /// The header changed while the passphrase was being stretched (another unlock spent a
    /// recovery code, or the catalog was written): nothing was counted against the user.
    #[error("the vault changed while unlocking: try again")]
    HeaderChanged,
    /// No recipient was verified yet, so a new secret has no trustworthy key to be encrypted to.
    #[error("the vault's public key has not been checked since the agent started: run `keyward unlock` once, then add the key again (after that, adding works while locked)")]
    RecipientUnverified,
    /// An entry's settings no longer match those sealed with its secret.
    #[error("the settings of key '{name}' were changed outside Keyward ({fields}), so it will not be used: if you made that change, remove the key and add it again; otherwise restore the catalog from a backup you trust")]
    SettingsTampered {
        /// Entry name.
        name: String,
        /// What differs, e.g. `oauth2.token_url`.
        fields: String,
    },
    /// An entry stored before settings were sealed with secrets.
    #[error("the key '{0}' was stored by an older Keyward, before its settings were sealed with it: check them with `keyward show {0}`, then store it again with `keyward rotate {0}`")]
    Unsealed(String),
    /// The device secret is gone from the keychain.
    #[error("the device secret is missing from the keychain: this vault can only be opened with the keychain it was created in")]
    DeviceSecretMissing,
    /// A stored secret could not be decrypted with the vault identity.
    #[error("the stored secret of '{0}' cannot be decrypted: it was not written by this vault or is damaged")]
    Undecryptable(String),
    /// Invalid entry input.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// Factor problem.
    #[error(transparent)]
    Factor(#[from] FactorError),
    /// KDF problem.
    #[error(transparent)]
    Kdf(#[from] KdfError),
    /// Keystore problem.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// Catalog problem.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Audit write failed: the operation was refused.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// The kind of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Slot {
    id: String,
    kind: SlotKind,
    label: String,
    created: String,
    salt: String,
    nonce: String,
    ciphertext: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fido2: Option<Fido2Slot>,
}

/// What a FIDO2 slot keeps beside its sealed payload: the registered credential (public key,
/// counter) and the salt sent to the authenticator's hmac-secret extension.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fido2Slot {
    key: webauthn_rs::prelude::SecurityKey,
    hmac_salt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    version: u32,
    recipient: String,
    kdf: KdfParams,
    kdf_salt: String,
    slots: Vec<Slot>,
    /// Standing grants (for hours, until lock) need a current second-factor code. Kept in the
    /// authenticated header, not in the settings table: an edit to turn it off is caught.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    grants_need_code: bool,
    /// Counts the writes of the header; the newest count is also kept in the keystore, so an
    /// older header (with a spent recovery code's slot, or a setting since turned on) put back
    /// with its valid MAC is refused.
    #[serde(default, skip_serializing_if = "is_zero")]
    generation: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a slot seals.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotPayload {
    identity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totp_secret: Option<String>,
}

impl Drop for SlotPayload {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.identity.zeroize();
        if let Some(s) = &mut self.totp_secret {
            s.zeroize();
        }
    }
}

/// An enrolled factor as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

fn factor_name(factor: &SecondFactor) -> &'static str {
    match factor {
        SecondFactor::Totp(_) => "totp",
        SecondFactor::Recovery(_) => "recovery",
        SecondFactor::Fido2 { .. } => "fido2",
    }
}

/// One fix made by [`Vault::reconcile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// Derives a slot's sealing key from the passphrase key, device secret and factor material.
fn slot_key(
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

fn aad(vault_id: &str, slot_id: &str, kind: SlotKind) -> Vec<u8> {
    format!("keyward/v1|{vault_id}|{slot_id}|{}", kind.as_str()).into_bytes()
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

    /// Records audit events (fail closed: an error means the caller must not proceed). Once a
    /// vault exists the rows are keyed and the new head is anchored in the keystore.
    pub fn audit(&mut self, events: &[(Actor, AuditEvent)]) -> Result<(), VaultError> {
        self.audit_unanchored(events)?;
        self.anchor_head()
    }

    /// Records audit events (fail closed) and leaves moving the keystore's anchor to
    /// [`Vault::anchor_head`]: the issuance path answers once its rows are committed and
    /// anchors right after, so the keychain write (a D-Bus round trip to the Secret Service)
    /// is off the reply path. While an earlier anchor write is failing, this retries it first
    /// and refuses if it still fails.
    pub fn audit_unanchored(&mut self, events: &[(Actor, AuditEvent)]) -> Result<(), VaultError> {
        let Some((key, keystore)) = self.audit_key()? else {
            audit::append(&mut self.catalog, &now_rfc3339(), events, None)?;
            return Ok(());
        };
        if self.anchor_failed {
            self.anchor_head()?;
        }
        if self.anchor.is_none() {
            self.anchor = read_anchor(&keystore, &self.catalog)?;
        }
        // The anchor moves only along an intact trail: once rows it covers were removed or
        // replaced, it stays where it was, so `verify` keeps naming the break. The head not
        // yet anchored counts: its rows were written by this value.
        let latest = self.unanchored.as_ref().or(self.anchor.as_ref());
        let intact = match latest {
            Some(a) => self.catalog.audit_hash_at(a.seq)?.as_deref() == Some(a.hash.as_str()),
            None => true,
        };
        let keyed_from = latest.map(|a| a.keyed_from);
        let rows = audit::append(&mut self.catalog, &now_rfc3339(), events, Some(&key))?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(());
        };
        if !intact {
            tracing::warn!("the audit trail was changed outside Keyward: `keyward audit verify` names the first bad row");
            return Ok(());
        }
        self.unanchored = Some(Anchor {
            // The first keyed row of this vault (a vault made before the chain was keyed
            // starts keying here; `verify` checks the rows before it unkeyed).
            keyed_from: keyed_from.unwrap_or(first.seq),
            seq: last.seq,
            hash: last.hash.clone(),
        });
        Ok(())
    }

    /// Writes the trail's head, recorded by [`Vault::audit_unanchored`], to the keystore's
    /// anchor; nothing to do when it is already there.
    pub fn anchor_head(&mut self) -> Result<(), VaultError> {
        let Some(head) = self.unanchored.take() else {
            return Ok(());
        };
        let keystore = self.keystore()?;
        let json = serde_json::to_vec(&head).map_err(|e| VaultError::BadHeader(e.to_string()))?;
        match keystore.put(&self.catalog, keystore::AUDIT_ANCHOR_ITEM, &json) {
            Ok(()) => {
                self.anchor = Some(head);
                self.anchor_failed = false;
                Ok(())
            }
            Err(e) => {
                self.unanchored = Some(head);
                self.anchor_failed = true;
                Err(AuditError::Anchor(e).into())
            }
        }
    }

    /// The audit chain key and the keystore holding the anchor; `None` before a vault exists.
    fn audit_key(&mut self) -> Result<Option<(MacKey, Keystore)>, VaultError> {
        let Some(row) = self.catalog.vault()? else {
            return Ok(None);
        };
        let keystore = Keystore::new(row.keystore, &row.vault_id);
        if let Some(k) = &self.audit_key {
            return Ok(Some((k.clone(), keystore)));
        }
        let device = self.device_secret(&keystore).map_err(|e| match e {
            VaultError::Keystore(k) => VaultError::Audit(AuditError::Anchor(k)),
            other => other,
        })?;
        let key = MacKey::derive(&device, &row.vault_id, AUDIT_INFO);
        self.audit_key = Some(key.clone());
        Ok(Some((key, keystore)))
    }

    /// Verifies the whole audit trail: the keyed chain and, against the keystore's anchor, that
    /// nothing was cut from its end. Returns the number of rows.
    pub fn verify_audit(&mut self) -> Result<u64, VaultError> {
        let Some((key, keystore)) = self.audit_key()? else {
            return Ok(audit::verify(&self.catalog, None, None)?);
        };
        // A head this value has not anchored yet would read as rows beyond the anchor: fine,
        // but anchoring first makes a cut right after an issuance show.
        self.anchor_head()?;
        let anchor = read_anchor(&keystore, &self.catalog)?;
        Ok(audit::verify(&self.catalog, Some(&key), anchor.as_ref())?)
    }

    /// Creates a new vault with a TOTP factor and returns recovery codes to show once.
    pub fn create(&mut self, opts: CreateOptions, actor: &Actor) -> Result<Created, VaultError> {
        if self.exists()? {
            return Err(VaultError::AlreadyExists(self.catalog.path().to_path_buf()));
        }
        let now = now_unix() as u64;
        let step = opts
            .totp
            .check(&opts.totp_code, now)?
            .ok_or(VaultError::CodeMismatch)?;
        let vault_id = uuid::Uuid::new_v4().simple().to_string();
        let keystore = Keystore::new(opts.keystore, &vault_id);
        keystore.probe(&self.catalog)?;

        let identity = x25519::Identity::generate();
        let recipient = identity.to_public().to_string();
        let kdf_salt: [u8; 16] = random();
        let pass_key = kdf::derive(
            opts.passphrase.expose_secret().as_bytes(),
            &kdf_salt,
            &opts.kdf,
        )?;
        let device = Zeroizing::new(random::<32>());

        let mut header = Header {
            version: HEADER_VERSION,
            recipient,
            kdf: opts.kdf,
            kdf_salt: hex(&kdf_salt),
            slots: Vec::new(),
            grants_need_code: false,
            generation: 0,
        };
        let totp_slot = seal_slot(
            &vault_id,
            &pass_key,
            device.as_ref(),
            &[],
            SlotKind::Totp,
            &opts.totp_label,
            &identity,
            Some(&opts.totp.secret_bytes()),
        )?;
        let totp_slot_id = totp_slot.id.clone();
        header.slots.push(totp_slot);
        let codes = factors::generate_recovery_codes();
        for (i, code) in codes.iter().enumerate() {
            let material = factors::parse_recovery_code(code)?;
            header.slots.push(seal_slot(
                &vault_id,
                &pass_key,
                device.as_ref(),
                &material,
                SlotKind::Recovery,
                &format!("recovery code {}", i + 1),
                &identity,
                None,
            )?);
        }
        let header_json =
            serde_json::to_string(&header).map_err(|e| VaultError::BadHeader(e.to_string()))?;
        let header_mac = header_tag(&identity, &vault_id, opts.keystore, &header_json);

        // Device secret first: a crash before the row leaves only an unreferenced random key.
        keystore.put(&self.catalog, keystore::DEVICE_SECRET_ITEM, device.as_ref())?;
        keystore.put(&self.catalog, keystore::HEADER_SEALED_ITEM, b"1")?;
        self.catalog.create_vault(
            &VaultRow {
                vault_id: vault_id.clone(),
                keystore: opts.keystore,
                header: header_json,
                header_mac: Some(header_mac),
            },
            &now_rfc3339(),
        )?;
        self.audit_key = Some(MacKey::derive(device.as_ref(), &vault_id, AUDIT_INFO));
        self.anchor = None;
        self.unanchored = None;
        self.anchor_failed = false;
        self.recipient = Some(identity.to_public());
        self.store_throttle(0, 0)?;
        self.set_totp_last_step(&totp_slot_id, step)?;
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "init",
                target: None,
                outcome: "ok",
                detail: serde_json::json!({
                    "keystore": match opts.keystore { KeystoreKind::Keychain => "keychain", KeystoreKind::File => "file" },
                    "kdf_memory_kib": opts.kdf.memory_kib,
                    "kdf_iterations": opts.kdf.iterations,
                }),
            },
        )])?;
        Ok(Created {
            recovery_codes: codes,
            vault_id,
            key: UnlockedKey {
                identity,
                totp: vec![(totp_slot_id, opts.totp.secret_bytes())],
            },
        })
    }

    /// Seconds until the next unlock attempt is allowed (0 = now).
    pub fn unlock_wait(&self) -> Result<i64, VaultError> {
        let (_, next) = self.throttle_state()?;
        Ok((next - now_unix()).max(0))
    }

    /// The failure count and next allowed attempt: the worse of the catalog's row and the copy
    /// kept in the keystore, so that editing or deleting the row does not lift a delay.
    fn throttle_state(&self) -> Result<(u32, i64), VaultError> {
        let (mut failures, mut next) = self.catalog.throttle().unwrap_or((u32::MAX, i64::MAX));
        if let Some(row) = self.catalog.vault()? {
            let keystore = Keystore::new(row.keystore, &row.vault_id);
            match keystore.get(&self.catalog, keystore::THROTTLE_ITEM) {
                Ok(bytes) => {
                    let (f, n): (u32, i64) =
                        serde_json::from_slice(&bytes).unwrap_or((u32::MAX, i64::MAX));
                    failures = failures.max(f);
                    next = next.max(n);
                }
                // A vault made before the copy was kept has none until its next attempt.
                Err(KeystoreError::Missing { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if failures == u32::MAX || next == i64::MAX {
            // An unreadable or missing row counts as the longest delay from now, once.
            let next = now_unix() + MAX_DELAY_SECS;
            return Ok((FREE_FAILURES + 10, next));
        }
        Ok((failures, next))
    }

    /// Stores the throttle in the catalog and in the keystore.
    fn store_throttle(&self, failures: u32, next_allowed_at: i64) -> Result<(), VaultError> {
        if let Some(row) = self.catalog.vault()? {
            let keystore = Keystore::new(row.keystore, &row.vault_id);
            let json = serde_json::to_vec(&(failures, next_allowed_at))
                .map_err(|e| VaultError::BadHeader(e.to_string()))?;
            keystore.put(&self.catalog, keystore::THROTTLE_ITEM, &json)?;
        }
        self.catalog.set_throttle(failures, next_allowed_at)?;
        Ok(())
    }

    /// Refuses, audited as `action`/`throttled`, while failed attempts delay the next one.
    fn refuse_if_throttled(
        &mut self,
        actor: &Actor,
        action: &'static str,
        purpose: &'static str,
    ) -> Result<(), VaultError> {
        let wait = self.unlock_wait()?;
        if wait > 0 {
            self.audit(&[vault_event(
                actor,
                action,
                "throttled",
                serde_json::json!({"for": purpose, "retry_in_s": wait}),
            )])?;
            return Err(VaultError::Throttled(wait));
        }
        Ok(())
    }

    /// Counts one more failed check of the passphrase or a factor; returns the count and the
    /// delay now in force.
    fn count_failure(&self) -> Result<(u32, i64), VaultError> {
        let (failures, _) = self.throttle_state()?;
        let failures = failures.saturating_add(1);
        let delay = delay_after(failures);
        self.store_throttle(failures, now_unix() + delay)?;
        Ok((failures, delay))
    }

    /// The last accepted TOTP step of a factor: the later of the catalog's and the keystore's.
    fn totp_last_step(&self, slot_id: &str) -> Result<Option<u64>, VaultError> {
        let in_catalog = self.catalog.totp_last_step(slot_id)?;
        let kept = self.kept_totp_steps()?.get(slot_id).copied();
        Ok(in_catalog.max(kept))
    }

    fn kept_totp_steps(&self) -> Result<std::collections::BTreeMap<String, u64>, VaultError> {
        let Some(row) = self.catalog.vault()? else {
            return Ok(Default::default());
        };
        let keystore = Keystore::new(row.keystore, &row.vault_id);
        match keystore.get(&self.catalog, keystore::TOTP_STEPS_ITEM) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
            Err(KeystoreError::Missing { .. }) => Ok(Default::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Records an accepted TOTP step in the catalog and, out of the catalog's reach, in the
    /// keystore.
    fn set_totp_last_step(&self, slot_id: &str, step: u64) -> Result<(), VaultError> {
        if let Some(row) = self.catalog.vault()? {
            let mut kept = self.kept_totp_steps()?;
            let e = kept.entry(slot_id.to_owned()).or_insert(step);
            *e = (*e).max(step);
            let keystore = Keystore::new(row.keystore, &row.vault_id);
            let json =
                serde_json::to_vec(&kept).map_err(|e| VaultError::BadHeader(e.to_string()))?;
            keystore.put(&self.catalog, keystore::TOTP_STEPS_ITEM, &json)?;
        }
        self.catalog.set_totp_last_step(slot_id, step)?;
        Ok(())
    }

    fn device_secret(&self, keystore: &Keystore) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        match keystore.get(&self.catalog, keystore::DEVICE_SECRET_ITEM) {
            Ok(v) => Ok(Zeroizing::new(v)),
            Err(KeystoreError::Missing { .. }) => Err(VaultError::DeviceSecretMissing),
            Err(e) => Err(e.into()),
        }
    }

    /// Unlocks with passphrase and second factor. Every attempt is audited; failures are
    /// counted persistently and delay the next attempt.
    ///
    /// The same as [`Vault::unlock_start`], [`UnlockStart::derive`] and
    /// [`Vault::unlock_finish`] in a row; a service that must keep answering while the
    /// passphrase is stretched calls the three itself and derives without holding the vault.
    pub fn unlock(
        &mut self,
        passphrase: &SecretString,
        factor: &SecondFactor,
        actor: &Actor,
    ) -> Result<Unlocked, VaultError> {
        let start = self.unlock_start(factor, actor)?;
        let pass_key = start.derive(passphrase);
        self.unlock_finish(&start, pass_key, factor, actor)
    }

    /// The first step of an unlock: refuses (audited) while failed attempts delay the next one,
    /// and reads what the passphrase must be stretched with. Unlock attempts must not overlap
    /// (each must see the failures counted before it): a caller that splits the steps runs
    /// one attempt at a time.
    pub fn unlock_start(
        &mut self,
        factor: &SecondFactor,
        actor: &Actor,
    ) -> Result<UnlockStart, VaultError> {
        let factor_name = factor_name(factor);
        let wait = self.unlock_wait()?;
        if wait > 0 {
            self.audit(&[(
                actor.clone(),
                AuditEvent {
                    action: "unlock",
                    target: None,
                    outcome: "throttled",
                    detail: serde_json::json!({"factor": factor_name, "retry_in_s": wait}),
                },
            )])?;
            return Err(VaultError::Throttled(wait));
        }
        let (row, header) = self.header()?;
        Ok(UnlockStart {
            header_text: row.header,
            salt: unhex(&header.kdf_salt, "kdf salt")?,
            kdf: header.kdf,
        })
    }

    /// The last step of an unlock: opens the slot `factor` answers with the stretched
    /// passphrase, checks the header, counts a failure or clears the count, and audits the
    /// outcome.
    pub fn unlock_finish(
        &mut self,
        start: &UnlockStart,
        pass_key: Result<PassKey, VaultError>,
        factor: &SecondFactor,
        actor: &Actor,
    ) -> Result<Unlocked, VaultError> {
        let result = pass_key.and_then(|k| self.try_unlock(start, &k, factor));
        let outcome = match &result {
            Ok(_) => "ok",
            Err(VaultError::WrongCredentials { .. }) | Err(VaultError::CodeReused) => "failed",
            Err(VaultError::HeaderTampered(_)) => "tampered",
            Err(_) => "error",
        };
        let mut detail = serde_json::json!({"factor": factor_name(factor)});
        if let Err(VaultError::HeaderTampered(why)) = &result {
            detail["reason"] = why.clone().into();
        }
        match result {
            Ok(unlocked) => {
                self.store_throttle(0, 0)?;
                if let Some(left) = unlocked.recovery_codes_left {
                    detail["recovery_codes_left"] = left.into();
                }
                self.audit(&[(
                    actor.clone(),
                    AuditEvent {
                        action: "unlock",
                        target: None,
                        outcome,
                        detail,
                    },
                )])?;
                Ok(unlocked)
            }
            Err(err) => {
                let mut err = err;
                if outcome == "failed" {
                    let (failures, delay) = self.count_failure()?;
                    detail["failures"] = failures.into();
                    if let VaultError::WrongCredentials {
                        failures: f,
                        delay: d,
                    } = &mut err
                    {
                        *f = failures;
                        *d = delay_text(delay);
                    }
                }
                self.audit(&[(
                    actor.clone(),
                    AuditEvent {
                        action: "unlock",
                        target: None,
                        outcome,
                        detail,
                    },
                )])?;
                Err(err)
            }
        }
    }

    fn try_unlock(
        &mut self,
        start: &UnlockStart,
        pass_key: &PassKey,
        factor: &SecondFactor,
    ) -> Result<Unlocked, VaultError> {
        let (row, header) = self.header()?;
        if row.header != start.header_text {
            // Another unlock (a recovery code spent, a counter moved) or an edit came between:
            // the stretched passphrase belongs to the header read before.
            return Err(VaultError::HeaderChanged);
        }
        let keystore = Keystore::new(row.keystore, &row.vault_id);
        let device = self.device_secret(&keystore)?;
        let pass_key = &pass_key.0;
        let mut unlocked = self.open_with(&row, header, pass_key, &device, factor)?;
        // Every TOTP slot opens with the passphrase key alone: keep their seeds for fresh codes.
        let (_, header) = self.header()?;
        for slot in header.slots.iter().filter(|s| s.kind == SlotKind::Totp) {
            if let Ok(Some(p)) = open_slot(&row.vault_id, slot, pass_key, &device, &[]) {
                if let Some(seed) = p.totp_secret.as_deref().and_then(|s| unhex(s, "seed").ok()) {
                    unlocked
                        .key
                        .totp
                        .push((slot.id.clone(), Zeroizing::new(seed)));
                }
            }
        }
        Ok(unlocked)
    }

    /// Opens the slot `factor` answers and checks the header against the identity inside.
    fn open_with(
        &mut self,
        row: &VaultRow,
        mut header: Header,
        pass_key: &[u8; 32],
        device: &[u8],
        factor: &SecondFactor,
    ) -> Result<Unlocked, VaultError> {
        let row = row.clone();
        let wrong = || VaultError::WrongCredentials {
            failures: 0,
            delay: String::new(),
        };
        match factor {
            SecondFactor::Totp(code) => {
                let now = now_unix() as u64;
                for slot in header.slots.iter().filter(|s| s.kind == SlotKind::Totp) {
                    let Some(payload) = open_slot(&row.vault_id, slot, pass_key, device, &[])?
                    else {
                        continue;
                    };
                    let seed = payload
                        .totp_secret
                        .as_deref()
                        .ok_or_else(|| VaultError::BadHeader("TOTP slot without seed".into()))?;
                    let seed = Zeroizing::new(unhex(seed, "totp seed")?);
                    let totp = TotpSetup::from_bytes(&seed)?;
                    let Some(step) = totp.check(code, now).map_err(|_| wrong())? else {
                        continue;
                    };
                    let key = parse_identity(&payload.identity)?;
                    self.check_header(&row, &header, &key)?;
                    if self
                        .totp_last_step(&slot.id)?
                        .is_some_and(|last| step <= last)
                    {
                        return Err(VaultError::CodeReused);
                    }
                    self.set_totp_last_step(&slot.id, step)?;
                    self.upgrade_header(&row, &header, &key)?;
                    self.recipient = Some(key.identity.to_public());
                    return Ok(Unlocked {
                        key,
                        recovery_codes_left: None,
                    });
                }
                Err(wrong())
            }
            SecondFactor::Fido2 {
                pending,
                assertion,
                hmac_output,
            } => {
                let result = crate::fido2::relying_party()?
                    .finish_securitykey_authentication(assertion, &pending.state)
                    .map_err(|_| wrong())?;
                let index = header
                    .slots
                    .iter()
                    .position(|s| {
                        s.fido2
                            .as_ref()
                            .is_some_and(|f| f.key.cred_id() == result.cred_id())
                    })
                    .ok_or_else(wrong)?;
                let payload = open_slot(
                    &row.vault_id,
                    &header.slots[index],
                    pass_key,
                    device,
                    hmac_output,
                )?
                .ok_or_else(wrong)?;
                let key = parse_identity(&payload.identity)?;
                self.check_header(&row, &header, &key)?;
                // Keep the signature counter current (clone detection).
                if let Some(f) = header.slots[index].fido2.as_mut() {
                    f.key.update_credential(&result);
                }
                self.store_header(&header, &key)?;
                self.recipient = Some(key.identity.to_public());
                Ok(Unlocked {
                    key,
                    recovery_codes_left: None,
                })
            }
            SecondFactor::Recovery(code) => {
                let material = factors::parse_recovery_code(code).map_err(|_| wrong())?;
                let found = header.slots.iter().enumerate().find_map(|(i, slot)| {
                    (slot.kind == SlotKind::Recovery)
                        .then(|| open_slot(&row.vault_id, slot, pass_key, device, &material))
                        .and_then(|r| r.ok().flatten())
                        .map(|p| (i, p))
                });
                let Some((index, payload)) = found else {
                    return Err(wrong());
                };
                let key = parse_identity(&payload.identity)?;
                self.check_header(&row, &header, &key)?;
                // One-time: the slot is gone before the vault is handed out.
                header.slots.remove(index);
                let left = header
                    .slots
                    .iter()
                    .filter(|s| s.kind == SlotKind::Recovery)
                    .count();
                self.store_header(&header, &key)?;
                self.recipient = Some(key.identity.to_public());
                Ok(Unlocked {
                    key,
                    recovery_codes_left: Some(left),
                })
            }
        }
    }

    /// Stores `header` with its MAC under the unlocked identity.
    fn store_header(&self, header: &Header, key: &UnlockedKey) -> Result<(), VaultError> {
        let row = self.row()?;
        let keystore = Keystore::new(row.keystore, &row.vault_id);
        let mut header = header.clone();
        header.generation = header
            .generation
            .max(self.kept_generation(&keystore)?)
            .saturating_add(1);
        let json =
            serde_json::to_string(&header).map_err(|e| VaultError::BadHeader(e.to_string()))?;
        let mac = header_tag(&key.identity, &row.vault_id, row.keystore, &json);
        // The catalog first: a crash between the two leaves a header newer than the kept
        // count (accepted), never an authentic header that looks rolled back.
        self.catalog.update_header(&json, &mac)?;
        keystore.put(
            &self.catalog,
            keystore::HEADER_GENERATION_ITEM,
            header.generation.to_string().as_bytes(),
        )?;
        if row.header_mac.is_none() {
            keystore.put(&self.catalog, keystore::HEADER_SEALED_ITEM, b"1")?;
        }
        Ok(())
    }

    /// The newest header generation the keystore remembers (0 before the first write); an
    /// unreadable record counts as the highest, so it refuses rather than accepts.
    fn kept_generation(&self, keystore: &Keystore) -> Result<u64, VaultError> {
        match keystore.get(&self.catalog, keystore::HEADER_GENERATION_ITEM) {
            Ok(bytes) => Ok(std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::MAX)),
            Err(KeystoreError::Missing { .. }) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks, once a slot opened, that the header is the one this identity wrote: its
    /// recipient is the identity's own and its MAC verifies (the stored text exactly).
    fn check_header(
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
    fn upgrade_header(
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

    /// Checks a current code from one of the vault's authenticator apps, for an action that needs
    /// a second factor now and not only at unlock (a standing grant): a program that talks to
    /// an unlocked agent has no code. Throttled and counted like an unlock attempt, each code
    /// accepted once, audited as `factor.check` with `purpose`.
    pub fn check_code(
        &mut self,
        key: &UnlockedKey,
        code: &str,
        purpose: &'static str,
        actor: &Actor,
    ) -> Result<(), VaultError> {
        let event = |outcome, detail| vault_event(actor, "factor.check", outcome, detail);
        self.refuse_if_throttled(actor, "factor.check", purpose)?;
        let now = now_unix() as u64;
        for (slot, seed) in &key.totp {
            let totp = TotpSetup::from_bytes(seed)?;
            let Some(step) = totp.check(code, now).ok().flatten() else {
                continue;
            };
            if self.totp_last_step(slot)?.is_some_and(|last| step <= last) {
                self.audit(&[event(
                    "failed",
                    serde_json::json!({"for": purpose, "reason": "code used before"}),
                )])?;
                return Err(VaultError::CodeReused);
            }
            self.set_totp_last_step(slot, step)?;
            self.audit(&[event("ok", serde_json::json!({"for": purpose}))])?;
            return Ok(());
        }
        let (failures, delay) = self.count_failure()?;
        self.audit(&[event(
            "failed",
            serde_json::json!({"for": purpose, "failures": failures}),
        )])?;
        Err(VaultError::WrongCode {
            failures,
            delay: delay_text(delay),
        })
    }

    /// Enrolled factors (recovery codes counted as one line each).
    pub fn factors(&self) -> Result<Vec<FactorInfo>, VaultError> {
        let (_, header) = self.header()?;
        Ok(header
            .slots
            .iter()
            .map(|s| FactorInfo {
                id: s.id.clone(),
                kind: s.kind,
                label: s.label.clone(),
                created: s.created.clone(),
            })
            .collect())
    }

    /// Enrolls another TOTP factor; needs the unlocked key and the passphrase (to derive the
    /// slot key) and a current code from the new app.
    pub fn enroll_totp(
        &mut self,
        key: &UnlockedKey,
        passphrase: &SecretString,
        totp: &TotpSetup,
        code: &str,
        label: &str,
        actor: &Actor,
    ) -> Result<FactorInfo, VaultError> {
        let (row, header) = self.header()?;
        let step = totp
            .check(code, now_unix() as u64)?
            .ok_or(VaultError::CodeMismatch)?;
        let (pass_key, device) =
            self.enrollment_keys(&row, &header, key, passphrase, "factor.add", actor)?;
        let slot = seal_slot(
            &row.vault_id,
            &pass_key,
            &device,
            &[],
            SlotKind::Totp,
            label,
            &key.identity,
            Some(&totp.secret_bytes()),
        )?;
        let info = self.add_slot(header, slot, key, actor)?;
        self.set_totp_last_step(&info.id, step)?;
        Ok(info)
    }

    /// Derives the passphrase key and reads the device secret for sealing a new slot, after
    /// checking that the header is the unlocked key's own and the passphrase is right. The
    /// passphrase check is throttled and audited like an unlock attempt, so a program talking
    /// to an unlocked agent cannot guess it freely.
    fn enrollment_keys(
        &mut self,
        row: &VaultRow,
        header: &Header,
        key: &UnlockedKey,
        passphrase: &SecretString,
        purpose: &'static str,
        actor: &Actor,
    ) -> Result<SealingKeys, VaultError> {
        self.check_header(row, header, key)?;
        let passphrase_event = |outcome, detail| vault_event(actor, "passphrase", outcome, detail);
        self.refuse_if_throttled(actor, "passphrase", purpose)?;
        let keystore = Keystore::new(row.keystore, &row.vault_id);
        let device = self.device_secret(&keystore)?;
        let salt = unhex(&header.kdf_salt, "kdf salt")?;
        let pass_key = kdf::derive(passphrase.expose_secret().as_bytes(), &salt, &header.kdf)?;
        if let Err(e) = self.verify_passphrase_key(&row.vault_id, header, &pass_key, &device) {
            let (failures, delay) = self.count_failure()?;
            self.audit(&[passphrase_event(
                "failed",
                serde_json::json!({"for": purpose, "failures": failures}),
            )])?;
            return Err(match e {
                VaultError::WrongCredentials { .. } => VaultError::WrongCredentials {
                    failures,
                    delay: delay_text(delay),
                },
                other => other,
            });
        }
        Ok((pass_key, device))
    }

    /// Appends a sealed slot to the header, audited (fail closed) before it is stored.
    fn add_slot(
        &mut self,
        mut header: Header,
        slot: Slot,
        key: &UnlockedKey,
        actor: &Actor,
    ) -> Result<FactorInfo, VaultError> {
        let info = FactorInfo {
            id: slot.id.clone(),
            kind: slot.kind,
            label: slot.label.clone(),
            created: slot.created.clone(),
        };
        header.slots.push(slot);
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "factor.add",
                target: Some(info.id.clone()),
                outcome: "ok",
                detail: serde_json::json!({"kind": info.kind.as_str(), "label": info.label}),
            },
        )])?;
        self.store_header(&header, key)?;
        Ok(info)
    }

    /// A passphrase key is right when it opens at least one TOTP slot (which need no other
    /// material). Vaults always keep one, because the last one cannot be removed.
    fn verify_passphrase_key(
        &self,
        vault_id: &str,
        header: &Header,
        pass_key: &[u8; 32],
        device: &[u8],
    ) -> Result<(), VaultError> {
        for slot in header.slots.iter().filter(|s| s.kind == SlotKind::Totp) {
            if open_slot(vault_id, slot, pass_key, device, &[])?.is_some() {
                return Ok(());
            }
        }
        Err(VaultError::WrongCredentials {
            failures: 0,
            delay: String::new(),
        })
    }

    /// Starts registering a FIDO2 security key: the challenge for the authenticator and the state
    /// (with the hmac-secret salt) to finish it with.
    pub fn fido2_register_begin(
        &self,
    ) -> Result<
        (
            webauthn_rs::prelude::CreationChallengeResponse,
            crate::fido2::PendingRegistration,
        ),
        VaultError,
    > {
        let (row, header) = self.header()?;
        let user = webauthn_rs::prelude::Uuid::parse_str(&row.vault_id)
            .map_err(|_| VaultError::BadHeader("vault id is not a UUID".into()))?;
        let exclude: Vec<_> = header
            .slots
            .iter()
            .filter_map(|s| s.fido2.as_ref().map(|f| f.key.cred_id().clone()))
            .collect();
        let (challenge, state) = crate::fido2::relying_party()?
            .start_securitykey_registration(
                user,
                "keyward",
                "Keyward vault",
                Some(exclude),
                None,
                None,
            )
            .map_err(|e| VaultError::Fido2(e.to_string()))?;
        Ok((
            challenge,
            crate::fido2::PendingRegistration {
                state,
                hmac_salt: random(),
            },
        ))
    }

    /// Finishes registering a security key and seals a slot under passphrase + its hmac-secret.
    #[allow(clippy::too_many_arguments)]
    pub fn enroll_fido2(
        &mut self,
        key: &UnlockedKey,
        passphrase: &SecretString,
        pending: &crate::fido2::PendingRegistration,
        response: &webauthn_rs::prelude::RegisterPublicKeyCredential,
        hmac_output: &[u8],
        label: &str,
        actor: &Actor,
    ) -> Result<FactorInfo, VaultError> {
        if hmac_output.len() != 32 {
            return Err(VaultError::Fido2(
                "the security key returned no hmac-secret output (it needs the CTAP2 hmac-secret extension)".into(),
            ));
        }
        let security_key = crate::fido2::relying_party()?
            .finish_securitykey_registration(response, &pending.state)
            .map_err(|e| VaultError::Fido2(format!("registration was not accepted: {e}")))?;
        let (row, header) = self.header()?;
        let (pass_key, device) =
            self.enrollment_keys(&row, &header, key, passphrase, "factor.add", actor)?;
        let mut slot = seal_slot(
            &row.vault_id,
            &pass_key,
            &device,
            hmac_output,
            SlotKind::Fido2,
            label,
            &key.identity,
            None,
        )?;
        slot.fido2 = Some(Fido2Slot {
            key: security_key,
            hmac_salt: hex(&pending.hmac_salt),
        });
        let info = self.add_slot(header, slot, key, actor)?;
        Ok(info)
    }

    /// Starts a FIDO2 unlock: the challenge for every enrolled key and each key's hmac salt
    /// (credential id → salt, both hex).
    pub fn fido2_unlock_begin(&self) -> Result<crate::fido2::UnlockChallenge, VaultError> {
        let (_, header) = self.header()?;
        let slots: Vec<&Fido2Slot> = header
            .slots
            .iter()
            .filter_map(|s| s.fido2.as_ref())
            .collect();
        if slots.is_empty() {
            return Err(VaultError::NoSuchFactor("FIDO2 security key"));
        }
        let keys: Vec<_> = slots.iter().map(|f| f.key.clone()).collect();
        let (challenge, state) = crate::fido2::relying_party()?
            .start_securitykey_authentication(&keys)
            .map_err(|e| VaultError::Fido2(e.to_string()))?;
        let salts = slots
            .iter()
            .map(|f| (hex(f.key.cred_id().as_ref()), f.hmac_salt.clone()))
            .collect();
        Ok(crate::fido2::UnlockChallenge {
            challenge,
            pending: crate::fido2::PendingAuthentication { state },
            salts,
        })
    }

    /// Removes a factor by slot id; refuses to remove the last TOTP factor. Needs the unlocked
    /// key, which checks the header and re-authenticates it.
    pub fn remove_factor(
        &mut self,
        id: &str,
        key: &UnlockedKey,
        actor: &Actor,
    ) -> Result<(), VaultError> {
        let (row, mut header) = self.header()?;
        self.check_header(&row, &header, key)?;
        let Some(pos) = header.slots.iter().position(|s| s.id == id) else {
            return Err(VaultError::NoSuchFactor("such a"));
        };
        let kind = header.slots[pos].kind;
        if kind == SlotKind::Totp
            && header
                .slots
                .iter()
                .filter(|s| s.kind == SlotKind::Totp)
                .count()
                == 1
        {
            return Err(VaultError::LastFactor);
        }
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "factor.remove",
                target: Some(id.to_owned()),
                outcome: "ok",
                detail: serde_json::json!({"kind": kind.as_str()}),
            },
        )])?;
        header.slots.remove(pos);
        self.store_header(&header, key)?;
        Ok(())
    }

    /// Checks `secret` fits `meta` (kind, AWS key shape, OAuth2 settings, non-empty), fills the AWS
    /// key hint, and returns it sealed with `meta`'s id and settings, encrypted to the recipient
    /// verified at the last unlock, with the keystore to put it in.
    fn seal_secret(
        &self,
        meta: &mut EntryMeta,
        secret: &SecretValue,
    ) -> Result<(Vec<u8>, Keystore), VaultError> {
        if secret.kind() != meta.kind {
            return Err(VaultError::WrongKind {
                name: meta.name.clone(),
                expected: meta.kind.as_str(),
                actual: secret.kind().as_str(),
            });
        }
        if let (
            EntryKind::Aws,
            SecretValue::Aws {
                access_key_id,
                secret_access_key,
            },
        ) = (meta.kind, secret)
        {
            crate::entry::validate_aws_key(access_key_id, secret_access_key.expose_secret())?;
            let cfg = meta.config.aws.get_or_insert_with(Default::default);
            cfg.access_key_hint = crate::entry::access_key_hint(access_key_id);
            crate::entry::validate_aws_config(cfg)?;
        }
        if let SecretValue::Static { value } = secret {
            if value.expose_secret().is_empty() {
                return Err(EntryError::EmptySecret.into());
            }
        }
        if let SecretValue::OAuth2 { client_secret } = secret {
            crate::entry::validate_client_secret(client_secret.expose_secret())?;
            let cfg = meta
                .config
                .oauth2
                .as_ref()
                .ok_or(EntryError::MissingConfig("OAuth2"))?;
            crate::entry::validate_oauth2_config(cfg)?;
        }
        let row = self.row()?;
        let recipient = self
            .recipient
            .as_ref()
            .ok_or(VaultError::RecipientUnverified)?;
        let plaintext = secret.to_sealed_plaintext(&meta.id, &meta.config);
        let ciphertext = age::encrypt(recipient, &plaintext)
            .map_err(|e| VaultError::BadHeader(format!("encryption failed: {e}")))?;
        Ok((ciphertext, Keystore::new(row.keystore, &row.vault_id)))
    }

    /// Adds an entry; works while locked once an unlock has verified the vault's recipient
    /// (the new secret is encrypted to it). Audited with its outcome once done.
    pub fn add_entry(
        &mut self,
        mut meta: EntryMeta,
        secret: &SecretValue,
        actor: &Actor,
    ) -> Result<EntryMeta, VaultError> {
        crate::entry::validate_name(&meta.name)?;
        meta.id = uuid::Uuid::new_v4().simple().to_string();
        meta.created = now_rfc3339();
        let (ciphertext, keystore) = self.seal_secret(&mut meta, secret)?;
        let event = |outcome: &'static str, detail: serde_json::Value| {
            (
                actor.clone(),
                AuditEvent {
                    action: "add",
                    target: Some(meta.name.clone()),
                    outcome,
                    detail,
                },
            )
        };
        let kind = meta.kind.as_str();
        self.catalog.insert_entry(&meta, EntryState::Pending)?;
        let item = keystore::entry_item(&meta.id);
        if let Err(e) = keystore.put(&self.catalog, &item, &ciphertext) {
            // Roll back the row so no entry without a secret remains.
            self.catalog.delete_entry(&meta.id)?;
            self.audit(&[event(
                "failed",
                serde_json::json!({"kind": kind, "error": e.to_string()}),
            )])?;
            return Err(e.into());
        }
        self.catalog.set_entry_state(&meta.id, EntryState::Active)?;
        if let Err(e) = self.audit(&[event("ok", serde_json::json!({"kind": kind}))]) {
            // Fail closed: an add that cannot be recorded does not stay.
            let _ = self.catalog.set_entry_state(&meta.id, EntryState::Deleting);
            let _ = keystore.delete(&self.catalog, &item);
            let _ = self.catalog.delete_entry(&meta.id);
            return Err(e);
        }
        Ok(meta)
    }

    /// Changes an entry's descriptive metadata (owner, purpose, tags, rotation interval, expiry)
    /// to those of `edit`; the secret, name and kind stay. Audited with the fields that changed.
    pub fn update_entry(
        &mut self,
        name: &str,
        edit: EntryEdit,
        actor: &Actor,
    ) -> Result<EntryMeta, VaultError> {
        let mut meta = self.get(name)?;
        let mut changed = Vec::new();
        if meta.owner != edit.owner {
            changed.push("owner");
        }
        if meta.purpose != edit.purpose {
            changed.push("purpose");
        }
        if meta.tags != edit.tags {
            changed.push("tags");
        }
        if meta.rotation_interval_days != edit.rotation_interval_days {
            changed.push("rotation_interval_days");
        }
        if meta.expires != edit.expires {
            changed.push("expires");
        }
        if changed.is_empty() {
            return Ok(meta);
        }
        meta.owner = edit.owner;
        meta.purpose = edit.purpose;
        meta.tags = edit.tags;
        meta.rotation_interval_days = edit.rotation_interval_days;
        meta.expires = edit.expires;
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "update",
                target: Some(meta.name.clone()),
                outcome: "ok",
                detail: serde_json::json!({ "changed": changed }),
            },
        )])?;
        self.catalog.update_entry_meta(&meta)?;
        Ok(meta)
    }

    /// Replaces an entry's secret with a new one of the same kind (a rotation done elsewhere,
    /// e.g. a new access key made in the AWS console) and records when.
    ///
    /// Needs the unlocked key: the settings sealed with the old secret are checked against the
    /// catalog's first, because they are sealed again with the new one. The keychain item is
    /// overwritten in one call, so the entry holds either the old or the new secret, never
    /// neither; a pending-rotation row written before lets [`Vault::reconcile`] finish the
    /// catalog's side if a crash comes between. Audited with both key hints once done.
    pub fn replace_secret(
        &mut self,
        name: &str,
        secret: &SecretValue,
        key: &UnlockedKey,
        actor: &Actor,
    ) -> Result<EntryMeta, VaultError> {
        let mut meta = self.get(name)?;
        match self.open_secret(key, &meta) {
            Ok(_) | Err(VaultError::Unsealed(_)) | Err(VaultError::Undecryptable(_)) => {}
            Err(e) => return Err(e),
        }
        let old_hint = meta.config.aws.as_ref().map(|a| a.access_key_hint.clone());
        let (ciphertext, keystore) = self.seal_secret(&mut meta, secret)?;
        let new_hint = meta.config.aws.as_ref().map(|a| a.access_key_hint.clone());
        meta.rotated = Some(now_rfc3339());
        let config = serde_json::to_string(&meta.config)
            .map_err(|e| VaultError::BadHeader(e.to_string()))?;
        self.catalog.put_pending_rotation(&PendingRotation {
            entry_id: meta.id.clone(),
            ciphertext_sha256: sha256_hex(&ciphertext),
            config,
            rotated: meta.rotated.clone().unwrap_or_default(),
        })?;
        let detail = serde_json::json!({
            "kind": meta.kind.as_str(),
            "from": old_hint,
            "to": new_hint,
        });
        let done = keystore
            .put(&self.catalog, &keystore::entry_item(&meta.id), &ciphertext)
            .map_err(VaultError::from)
            .and_then(|()| Ok(self.catalog.update_entry_meta(&meta)?))
            .and_then(|()| Ok(self.catalog.delete_pending_rotation(&meta.id)?));
        let outcome = if done.is_ok() { "ok" } else { "failed" };
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "rotate",
                target: Some(meta.name.clone()),
                outcome,
                detail,
            },
        )])?;
        done?;
        Ok(meta)
    }

    /// The newest `limit` audit records about entry `name` (adds, rotations, edits, credentials
    /// issued, tests, reveals), oldest first; works for a removed entry's name too.
    pub fn history(
        &self,
        name: &str,
        limit: u32,
    ) -> Result<Vec<crate::catalog::AuditRow>, VaultError> {
        Ok(self.catalog.audit_rows_for(name, limit)?)
    }

    /// Replaces every recovery code with a fresh set (the old ones stop working); needs the
    /// unlocked key and the passphrase, like enrolling a factor. Returns the codes to show once.
    pub fn regenerate_recovery_codes(
        &mut self,
        key: &UnlockedKey,
        passphrase: &SecretString,
        actor: &Actor,
    ) -> Result<Vec<SecretString>, VaultError> {
        let (row, mut header) = self.header()?;
        let (pass_key, device) =
            self.enrollment_keys(&row, &header, key, passphrase, "recovery.regenerate", actor)?;
        let codes = factors::generate_recovery_codes();
        let mut slots = Vec::with_capacity(codes.len());
        for (i, code) in codes.iter().enumerate() {
            let material = factors::parse_recovery_code(code)?;
            slots.push(seal_slot(
                &row.vault_id,
                &pass_key,
                &device,
                &material,
                SlotKind::Recovery,
                &format!("recovery code {}", i + 1),
                &key.identity,
                None,
            )?);
        }
        let old = header
            .slots
            .iter()
            .filter(|s| s.kind == SlotKind::Recovery)
            .count();
        header.slots.retain(|s| s.kind != SlotKind::Recovery);
        header.slots.extend(slots);
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "recovery.regenerate",
                target: None,
                outcome: "ok",
                detail: serde_json::json!({ "replaced": old, "codes": codes.len() }),
            },
        )])?;
        self.store_header(&header, key)?;
        Ok(codes)
    }

    /// The auto-lock time the user chose, if any.
    pub fn auto_lock_setting(&self) -> Result<Option<std::time::Duration>, VaultError> {
        Ok(self
            .catalog
            .setting(AUTO_LOCK_SETTING)?
            .and_then(|v| v.parse::<u64>().ok())
            .map(std::time::Duration::from_secs))
    }

    /// Whether standing grants need a current second-factor code, read from the header and
    /// checked against the unlocked identity (a header edited since the unlock is refused).
    pub fn grants_need_code(&self, key: &UnlockedKey) -> Result<bool, VaultError> {
        let (row, header) = self.header()?;
        self.check_header(&row, &header, key)?;
        Ok(header.grants_need_code)
    }

    /// Turns the need for a code on standing grants on or off (audited). The caller checks a
    /// fresh code before turning it off: a program must not be able to lift it.
    pub fn set_grants_need_code(
        &mut self,
        key: &UnlockedKey,
        on: bool,
        actor: &Actor,
    ) -> Result<(), VaultError> {
        let (row, mut header) = self.header()?;
        self.check_header(&row, &header, key)?;
        header.grants_need_code = on;
        self.store_header(&header, key)?;
        self.audit(&[vault_event(
            actor,
            "settings.grants_need_code",
            "ok",
            serde_json::json!({ "on": on }),
        )])
    }

    /// Stores the auto-lock time (audited).
    pub fn set_auto_lock(
        &mut self,
        after: std::time::Duration,
        actor: &Actor,
    ) -> Result<(), VaultError> {
        if after < MIN_AUTO_LOCK || after > MAX_AUTO_LOCK {
            return Err(VaultError::AutoLockRange);
        }
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "settings.auto_lock",
                target: None,
                outcome: "ok",
                detail: serde_json::json!({ "secs": after.as_secs() }),
            },
        )])?;
        self.catalog
            .set_setting(AUTO_LOCK_SETTING, &after.as_secs().to_string())?;
        Ok(())
    }

    /// Removes an entry and its keychain item; audited with the outcome once done.
    pub fn remove_entry(&mut self, name: &str, actor: &Actor) -> Result<(), VaultError> {
        let (meta, _) = self
            .catalog
            .entry_by_name(name)?
            .ok_or_else(|| VaultError::NotFound(name.to_owned()))?;
        let keystore = self.keystore()?;
        self.catalog
            .set_entry_state(&meta.id, EntryState::Deleting)?;
        let done = keystore
            .delete(&self.catalog, &keystore::entry_item(&meta.id))
            .map_err(VaultError::from)
            .and_then(|()| Ok(self.catalog.delete_entry(&meta.id)?));
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "remove",
                target: Some(name.to_owned()),
                outcome: if done.is_ok() { "ok" } else { "failed" },
                detail: serde_json::json!({"kind": meta.kind.as_str()}),
            },
        )])?;
        done
    }

    /// Active entries, by name.
    pub fn list(&self) -> Result<Vec<EntryMeta>, VaultError> {
        Ok(self
            .catalog
            .entries()?
            .into_iter()
            .filter(|(_, s)| *s == EntryState::Active)
            .map(|(m, _)| m)
            .collect())
    }

    /// One active entry by name.
    pub fn get(&self, name: &str) -> Result<EntryMeta, VaultError> {
        match self.catalog.entry_by_name(name)? {
            Some((m, EntryState::Active)) => Ok(m),
            _ => Err(VaultError::NotFound(name.to_owned())),
        }
    }

    /// Decrypts an entry's secret with the unlocked key, after checking that the settings
    /// sealed with it are `meta`'s (the catalog's) and still valid. A mismatch refuses the
    /// secret and is audited; an access key hint that does not name the stored key is repaired.
    pub fn read_secret(
        &mut self,
        key: &UnlockedKey,
        meta: &EntryMeta,
    ) -> Result<SecretValue, VaultError> {
        match self.open_secret(key, meta) {
            Ok(v) => Ok(v),
            Err(VaultError::SettingsTampered { name, fields }) => {
                self.audit(&[(
                    Actor::default(),
                    AuditEvent {
                        action: "tamper",
                        target: Some(name.clone()),
                        outcome: "refused",
                        detail: serde_json::json!({"changed": fields}),
                    },
                )])?;
                Err(VaultError::SettingsTampered { name, fields })
            }
            Err(e) => Err(e),
        }
    }

    /// [`Vault::read_secret`] without the audit of a mismatch.
    fn open_secret(
        &mut self,
        key: &UnlockedKey,
        meta: &EntryMeta,
    ) -> Result<SecretValue, VaultError> {
        let keystore = self.keystore()?;
        let ciphertext = match keystore.get(&self.catalog, &keystore::entry_item(&meta.id)) {
            Ok(c) => c,
            Err(KeystoreError::Missing { .. }) => {
                return Err(VaultError::Undecryptable(meta.name.clone()))
            }
            Err(e) => return Err(e.into()),
        };
        let plain = Zeroizing::new(
            age::decrypt(&key.identity, &ciphertext)
                .map_err(|_| VaultError::Undecryptable(meta.name.clone()))?,
        );
        let (value, binding) = SecretValue::from_plaintext(&plain)
            .ok_or_else(|| VaultError::Undecryptable(meta.name.clone()))?;
        let binding = binding.ok_or_else(|| VaultError::Unsealed(meta.name.clone()))?;
        let tampered = |fields: String| VaultError::SettingsTampered {
            name: meta.name.clone(),
            fields,
        };
        if binding.entry_id != meta.id || value.kind() != meta.kind {
            return Err(tampered("its stored secret belongs to another key".into()));
        }
        let changed = binding.config.differences(&meta.config.bound());
        if !changed.is_empty() {
            return Err(tampered(changed.join(", ")));
        }
        // The sealed settings are the catalog's; they are still checked as on input, so a
        // value that was valid once but is refused now is not used either.
        if let Some(aws) = &meta.config.aws {
            crate::entry::validate_aws_config(aws)?;
        }
        if let Some(o) = &meta.config.oauth2 {
            crate::entry::validate_oauth2_config(o)?;
        }
        if let (SecretValue::Aws { access_key_id, .. }, Some(aws)) = (&value, &meta.config.aws) {
            let hint = crate::entry::access_key_hint(access_key_id);
            if aws.access_key_hint != hint {
                let mut fixed = meta.clone();
                if let Some(a) = fixed.config.aws.as_mut() {
                    a.access_key_hint = hint.clone();
                }
                self.catalog.update_entry_meta(&fixed)?;
                self.audit(&[(
                    Actor::default(),
                    AuditEvent {
                        action: "reconcile",
                        target: Some(meta.name.clone()),
                        outcome: "ok",
                        detail: serde_json::json!({"action": format!("the catalog named {} but {hint} is stored: corrected", aws.access_key_hint)}),
                    },
                )])?;
            }
        }
        Ok(value)
    }

    /// Records one use of an entry.
    pub fn record_use(&self, meta: &EntryMeta) -> Result<(), VaultError> {
        self.catalog.touch_entry(&meta.id, &now_rfc3339())?;
        Ok(())
    }

    /// Records uses of several entries (entry id, count) in one transaction.
    pub fn record_uses(&mut self, uses: &[(String, u64)]) -> Result<(), VaultError> {
        self.catalog.touch_entries(uses, &now_rfc3339())?;
        Ok(())
    }

    /// Finishes or rolls back writes a crash interrupted; returns what it did.
    pub fn reconcile(&mut self, actor: &Actor) -> Result<Vec<ReconcileNote>, VaultError> {
        if !self.exists()? {
            return Ok(Vec::new());
        }
        let keystore = self.keystore()?;
        let mut notes = Vec::new();
        let entries = self.catalog.entries()?;
        for p in self.catalog.pending_rotations()? {
            let Some((meta, _)) = entries.iter().find(|(m, _)| m.id == p.entry_id) else {
                self.catalog.delete_pending_rotation(&p.entry_id)?;
                continue;
            };
            let stored = match keystore.get(&self.catalog, &keystore::entry_item(&meta.id)) {
                Ok(c) => Some(sha256_hex(&c)),
                Err(KeystoreError::Missing { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            let action = if stored.as_deref() == Some(p.ciphertext_sha256.as_str()) {
                self.catalog
                    .set_entry_rotation(&meta.id, &p.config, &p.rotated)?;
                "an interrupted rotation was completed: the new key is stored and now named"
            } else {
                "an interrupted rotation was rolled back: the old key is still stored; rotate again"
            };
            self.catalog.delete_pending_rotation(&meta.id)?;
            notes.push(ReconcileNote {
                name: meta.name.clone(),
                action: action.to_owned(),
            });
        }
        for (meta, state) in entries {
            let item = keystore::entry_item(&meta.id);
            match state {
                EntryState::Active => {
                    if !keystore.exists(&self.catalog, &item)? {
                        notes.push(ReconcileNote {
                            name: meta.name.clone(),
                            action: "its keychain item is missing: the key cannot be used; remove it and add it again".to_owned(),
                        });
                    }
                }
                EntryState::Pending => {
                    if keystore.exists(&self.catalog, &item)? {
                        self.catalog.set_entry_state(&meta.id, EntryState::Active)?;
                        notes.push(ReconcileNote {
                            name: meta.name.clone(),
                            action: "an interrupted add was completed (its secret had been stored)"
                                .to_owned(),
                        });
                    } else {
                        self.catalog.delete_entry(&meta.id)?;
                        notes.push(ReconcileNote {
                            name: meta.name.clone(),
                            action: "an interrupted add was rolled back (its secret was never stored): add it again".to_owned(),
                        });
                    }
                }
                EntryState::Deleting => {
                    keystore.delete(&self.catalog, &item)?;
                    self.catalog.delete_entry(&meta.id)?;
                    notes.push(ReconcileNote {
                        name: meta.name.clone(),
                        action: "an interrupted removal was completed".to_owned(),
                    });
                }
            }
        }
        if !notes.is_empty() {
            let events: Vec<_> = notes
                .iter()
                .map(|n| {
                    (
                        actor.clone(),
                        AuditEvent {
                            action: "reconcile",
                            target: Some(n.name.clone()),
                            outcome: "ok",
                            detail: serde_json::json!({"action": n.action}),
                        },
                    )
                })
                .collect();
            self.audit(&events)?;
        }
        Ok(notes)
    }
}

/// Parses a stored vault header and applies the bounds every read applies (version, KDF work,
/// slot count and size): what a tampered or damaged catalog is checked against before any work.
pub fn validate_header(text: &str) -> Result<(), VaultError> {
    parse_header(text).map(|_| ())
}

fn parse_header(text: &str) -> Result<Header, VaultError> {
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
type SealingKeys = (Zeroizing<[u8; 32]>, Zeroizing<Vec<u8>>);

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&Sha256::digest(bytes))
}

/// The header MAC key: derived from the identity, so only an unlocked vault can write a header
/// that verifies.
fn header_key(identity: &x25519::Identity, vault_id: &str) -> MacKey {
    MacKey::derive(
        identity.to_string().expose_secret().as_bytes(),
        vault_id,
        HEADER_INFO,
    )
}

fn header_parts<'a>(vault_id: &'a str, keystore: KeystoreKind, header: &'a str) -> [&'a [u8]; 3] {
    let ks: &'static [u8] = match keystore {
        KeystoreKind::Keychain => b"keychain",
        KeystoreKind::File => b"file",
    };
    [vault_id.as_bytes(), ks, header.as_bytes()]
}

/// The MAC (hex) of the stored header text.
fn header_tag(
    identity: &x25519::Identity,
    vault_id: &str,
    keystore: KeystoreKind,
    header: &str,
) -> String {
    hex(&header_key(identity, vault_id).tag(&header_parts(vault_id, keystore, header)))
}

/// The audit anchor kept in the keystore, if any.
fn read_anchor(keystore: &Keystore, catalog: &Catalog) -> Result<Option<Anchor>, VaultError> {
    match keystore.get(catalog, keystore::AUDIT_ANCHOR_ITEM) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| VaultError::Audit(AuditError::AnchorMissing)),
        Err(KeystoreError::Missing { .. }) => Ok(None),
        Err(e) => Err(AuditError::Anchor(e).into()),
    }
}

/// An audit event about the vault itself (no entry).
fn vault_event(
    actor: &Actor,
    action: &'static str,
    outcome: &'static str,
    detail: serde_json::Value,
) -> (Actor, AuditEvent) {
    (
        actor.clone(),
        AuditEvent {
            action,
            target: None,
            outcome,
            detail,
        },
    )
}

/// The delay as the end of an error message ("" when there is none).
fn delay_text(delay: i64) -> String {
    if delay > 0 {
        format!("; next attempt allowed in {delay} s")
    } else {
        String::new()
    }
}

fn delay_after(failures: u32) -> i64 {
    if failures <= FREE_FAILURES {
        return 0;
    }
    let exp = (failures - FREE_FAILURES - 1).min(16);
    (1i64 << exp).min(MAX_DELAY_SECS)
}

fn parse_identity(s: &str) -> Result<UnlockedKey, VaultError> {
    let identity: x25519::Identity = s
        .parse()
        .map_err(|_| VaultError::BadHeader("sealed identity is malformed".into()))?;
    Ok(UnlockedKey {
        identity,
        totp: Vec::new(),
    })
}

#[allow(clippy::too_many_arguments)]
fn seal_slot(
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
        serde_json::to_vec(&payload).map_err(|e| VaultError::BadHeader(e.to_string()))?,
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
        .map_err(|_| VaultError::BadHeader("sealing failed".into()))?;
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
fn open_slot(
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
