use super::*;

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
    #[error(transparent)]
    Fido2(#[from] crate::fido2::Fido2Error),
    /// The header is damaged or hostile.
    #[error("the vault header is damaged: {0}")]
    BadHeader(String),
    /// Keyward itself failed at something that does not depend on the stored data (encrypting,
    /// writing its own structures).
    #[error("internal error: {0} (this is a bug in Keyward; please report it)")]
    Internal(String),
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
    /// A rotation journal that this vault did not write.
    #[error("the rotation record of '{0}' in the keychain was not written by this vault, so Keyward will not act on it: check the key's access keys at AWS (`aws iam list-access-keys`), then store the key you want to keep with `keyward rotate {0} --manual`, which ends the rotation")]
    JournalForged(String),
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
