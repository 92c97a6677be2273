//! The vault: creation, two-factor unlock, entries, and keeping the two stores in step.
//!
//! Key hierarchy. An age X25519 identity encrypts every secret; its public recipient sits in the
//! header so keys can be added while locked. The identity is sealed in *slots*, one per enrolled
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

use crate::audit::{self, Actor, AuditError, AuditEvent};
use crate::catalog::{Catalog, CatalogError, EntryState, KeystoreKind, VaultRow};
use crate::entry::{EntryError, EntryKind, EntryMeta, SecretValue};
use crate::factors::{self, FactorError, TotpSetup};
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
        Ok(Vault { catalog, paths })
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
        let header: Header =
            serde_json::from_str(&row.header).map_err(|e| VaultError::BadHeader(e.to_string()))?;
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
        Ok((row, header))
    }

    /// The keystore of the existing vault.
    pub fn keystore(&self) -> Result<Keystore, VaultError> {
        let row = self.row()?;
        Ok(Keystore::new(row.keystore, &row.vault_id))
    }

    /// Records audit events (fail closed: an error means the caller must not proceed).
    pub fn audit(&mut self, events: &[(Actor, AuditEvent)]) -> Result<(), VaultError> {
        audit::append(&mut self.catalog, &now_rfc3339(), events)?;
        Ok(())
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

        // Device secret first: a crash before the row leaves only an unreferenced random key.
        keystore.put(&self.catalog, keystore::DEVICE_SECRET_ITEM, device.as_ref())?;
        self.catalog.create_vault(
            &VaultRow {
                vault_id: vault_id.clone(),
                keystore: opts.keystore,
                header: header_json,
            },
            &now_rfc3339(),
        )?;
        self.catalog.set_totp_last_step(&totp_slot_id, step)?;
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
            key: UnlockedKey { identity },
        })
    }

    /// Seconds until the next unlock attempt is allowed (0 = now).
    pub fn unlock_wait(&self) -> Result<i64, VaultError> {
        let (_, next) = self.catalog.throttle()?;
        Ok((next - now_unix()).max(0))
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
    pub fn unlock(
        &mut self,
        passphrase: &SecretString,
        factor: &SecondFactor,
        actor: &Actor,
    ) -> Result<Unlocked, VaultError> {
        let factor_name = match factor {
            SecondFactor::Totp(_) => "totp",
            SecondFactor::Recovery(_) => "recovery",
            SecondFactor::Fido2 { .. } => "fido2",
        };
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
        let result = self.try_unlock(passphrase, factor);
        let outcome = match &result {
            Ok(_) => "ok",
            Err(VaultError::WrongCredentials { .. }) | Err(VaultError::CodeReused) => "failed",
            Err(_) => "error",
        };
        let mut detail = serde_json::json!({"factor": factor_name});
        match result {
            Ok(unlocked) => {
                self.catalog.set_throttle(0, 0)?;
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
                    let (failures, _) = self.catalog.throttle()?;
                    let failures = failures.saturating_add(1);
                    let delay = delay_after(failures);
                    self.catalog.set_throttle(failures, now_unix() + delay)?;
                    detail["failures"] = failures.into();
                    if let VaultError::WrongCredentials {
                        failures: f,
                        delay: d,
                    } = &mut err
                    {
                        *f = failures;
                        *d = if delay > 0 {
                            format!("; next attempt allowed in {delay} s")
                        } else {
                            String::new()
                        };
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
        passphrase: &SecretString,
        factor: &SecondFactor,
    ) -> Result<Unlocked, VaultError> {
        let (row, mut header) = self.header()?;
        let keystore = Keystore::new(row.keystore, &row.vault_id);
        let device = self.device_secret(&keystore)?;
        let salt = unhex(&header.kdf_salt, "kdf salt")?;
        let pass_key = kdf::derive(passphrase.expose_secret().as_bytes(), &salt, &header.kdf)?;
        let wrong = || VaultError::WrongCredentials {
            failures: 0,
            delay: String::new(),
        };
        match factor {
            SecondFactor::Totp(code) => {
                let now = now_unix() as u64;
                for slot in header.slots.iter().filter(|s| s.kind == SlotKind::Totp) {
                    let Some(payload) = open_slot(&row.vault_id, slot, &pass_key, &device, &[])?
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
                    if self
                        .catalog
                        .totp_last_step(&slot.id)?
                        .is_some_and(|last| step <= last)
                    {
                        return Err(VaultError::CodeReused);
                    }
                    self.catalog.set_totp_last_step(&slot.id, step)?;
                    return Ok(Unlocked {
                        key: parse_identity(&payload.identity)?,
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
                    &pass_key,
                    &device,
                    hmac_output,
                )?
                .ok_or_else(wrong)?;
                let key = parse_identity(&payload.identity)?;
                // Keep the signature counter current (clone detection).
                if let Some(f) = header.slots[index].fido2.as_mut() {
                    f.key.update_credential(&result);
                }
                self.store_header(&header)?;
                Ok(Unlocked {
                    key,
                    recovery_codes_left: None,
                })
            }
            SecondFactor::Recovery(code) => {
                let material = factors::parse_recovery_code(code).map_err(|_| wrong())?;
                let found = header.slots.iter().enumerate().find_map(|(i, slot)| {
                    (slot.kind == SlotKind::Recovery)
                        .then(|| open_slot(&row.vault_id, slot, &pass_key, &device, &material))
                        .and_then(|r| r.ok().flatten())
                        .map(|p| (i, p))
                });
                let Some((index, payload)) = found else {
                    return Err(wrong());
                };
                let key = parse_identity(&payload.identity)?;
                // One-time: the slot is gone before the vault is handed out.
                header.slots.remove(index);
                let left = header
                    .slots
                    .iter()
                    .filter(|s| s.kind == SlotKind::Recovery)
                    .count();
                self.store_header(&header)?;
                Ok(Unlocked {
                    key,
                    recovery_codes_left: Some(left),
                })
            }
        }
    }

    fn store_header(&self, header: &Header) -> Result<(), VaultError> {
        let json =
            serde_json::to_string(header).map_err(|e| VaultError::BadHeader(e.to_string()))?;
        self.catalog.update_header(&json)?;
        Ok(())
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
        let (pass_key, device) = self.enrollment_keys(&row, &header, key, passphrase)?;
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
        let info = self.add_slot(header, slot, actor)?;
        self.catalog.set_totp_last_step(&info.id, step)?;
        Ok(info)
    }

    /// Derives the passphrase key and reads the device secret for sealing a new slot, after
    /// checking that the unlocked key is this vault's and the passphrase is right.
    fn enrollment_keys(
        &self,
        row: &VaultRow,
        header: &Header,
        key: &UnlockedKey,
        passphrase: &SecretString,
    ) -> Result<SealingKeys, VaultError> {
        if key.identity.to_public().to_string() != header.recipient {
            return Err(VaultError::BadHeader(
                "unlocked key does not match the vault".into(),
            ));
        }
        let keystore = Keystore::new(row.keystore, &row.vault_id);
        let device = self.device_secret(&keystore)?;
        let salt = unhex(&header.kdf_salt, "kdf salt")?;
        let pass_key = kdf::derive(passphrase.expose_secret().as_bytes(), &salt, &header.kdf)?;
        self.verify_passphrase_key(&row.vault_id, header, &pass_key, &device)?;
        Ok((pass_key, device))
    }

    /// Appends a sealed slot to the header, audited (fail closed) before it is stored.
    fn add_slot(
        &mut self,
        mut header: Header,
        slot: Slot,
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
        self.store_header(&header)?;
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
        let (pass_key, device) = self.enrollment_keys(&row, &header, key, passphrase)?;
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
        let info = self.add_slot(header, slot, actor)?;
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

    /// Removes a factor by slot id; refuses to remove the last TOTP factor.
    pub fn remove_factor(&mut self, id: &str, actor: &Actor) -> Result<(), VaultError> {
        let (_, mut header) = self.header()?;
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
        self.store_header(&header)?;
        Ok(())
    }

    /// Checks `secret` fits `meta` (kind, AWS key shape, OAuth2 settings, non-empty), fills the AWS
    /// key hint, and returns it encrypted to the vault's public recipient with the keystore to put it in.
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
        let (row, header) = self.header()?;
        let recipient: x25519::Recipient = header
            .recipient
            .parse()
            .map_err(|_| VaultError::BadHeader("bad recipient".into()))?;
        let ciphertext = age::encrypt(&recipient, &secret.to_plaintext())
            .map_err(|e| VaultError::BadHeader(format!("encryption failed: {e}")))?;
        Ok((ciphertext, Keystore::new(row.keystore, &row.vault_id)))
    }

    /// Adds an entry; works while locked (encrypts to the public recipient).
    pub fn add_entry(
        &mut self,
        mut meta: EntryMeta,
        secret: &SecretValue,
        actor: &Actor,
    ) -> Result<EntryMeta, VaultError> {
        crate::entry::validate_name(&meta.name)?;
        let (ciphertext, keystore) = self.seal_secret(&mut meta, secret)?;
        meta.id = uuid::Uuid::new_v4().simple().to_string();
        meta.created = now_rfc3339();
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "add",
                target: Some(meta.name.clone()),
                outcome: "ok",
                detail: serde_json::json!({"kind": meta.kind.as_str()}),
            },
        )])?;
        self.catalog.insert_entry(&meta, EntryState::Pending)?;
        if let Err(e) = keystore.put(&self.catalog, &keystore::entry_item(&meta.id), &ciphertext) {
            // Roll back the row so no entry without a secret remains.
            self.catalog.delete_entry(&meta.id)?;
            return Err(e.into());
        }
        self.catalog.set_entry_state(&meta.id, EntryState::Active)?;
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
    /// e.g. a new access key made in the AWS console) and records when. Works while locked.
    ///
    /// The keychain item is overwritten in one call, so the entry holds either the old or the new
    /// secret, never neither; the audit row (written first, fail closed) names both key hints.
    pub fn replace_secret(
        &mut self,
        name: &str,
        secret: &SecretValue,
        actor: &Actor,
    ) -> Result<EntryMeta, VaultError> {
        let mut meta = self.get(name)?;
        let old_hint = meta.config.aws.as_ref().map(|a| a.access_key_hint.clone());
        let (ciphertext, keystore) = self.seal_secret(&mut meta, secret)?;
        let new_hint = meta.config.aws.as_ref().map(|a| a.access_key_hint.clone());
        meta.rotated = Some(now_rfc3339());
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "rotate",
                target: Some(meta.name.clone()),
                outcome: "ok",
                detail: serde_json::json!({
                    "kind": meta.kind.as_str(),
                    "from": old_hint,
                    "to": new_hint,
                }),
            },
        )])?;
        keystore.put(&self.catalog, &keystore::entry_item(&meta.id), &ciphertext)?;
        self.catalog.update_entry_meta(&meta)?;
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
        let (pass_key, device) = self.enrollment_keys(&row, &header, key, passphrase)?;
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
        self.store_header(&header)?;
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

    /// Removes an entry and its keychain item.
    pub fn remove_entry(&mut self, name: &str, actor: &Actor) -> Result<(), VaultError> {
        let (meta, _) = self
            .catalog
            .entry_by_name(name)?
            .ok_or_else(|| VaultError::NotFound(name.to_owned()))?;
        let keystore = self.keystore()?;
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "remove",
                target: Some(name.to_owned()),
                outcome: "ok",
                detail: serde_json::json!({"kind": meta.kind.as_str()}),
            },
        )])?;
        self.catalog
            .set_entry_state(&meta.id, EntryState::Deleting)?;
        keystore.delete(&self.catalog, &keystore::entry_item(&meta.id))?;
        self.catalog.delete_entry(&meta.id)?;
        Ok(())
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

    /// Decrypts an entry's secret with the unlocked key.
    pub fn read_secret(
        &self,
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
        SecretValue::from_plaintext(&plain)
            .ok_or_else(|| VaultError::Undecryptable(meta.name.clone()))
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
        for (meta, state) in self.catalog.entries()? {
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

/// The passphrase key and device secret a new slot is sealed with.
type SealingKeys = (Zeroizing<[u8; 32]>, Zeroizing<Vec<u8>>);

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
    Ok(UnlockedKey { identity })
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
