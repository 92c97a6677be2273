//! Where secret ciphertext lives: the OS keychain through `keyring` (Secret Service on Linux,
//! Keychain on macOS, Credential Manager on Windows), or — only when the user asked for it — the
//! catalog's `file_secrets` table.
//!
//! Everything stored here is age ciphertext except the device secret, which is random key material
//! mixed into unlock (so a copied catalog alone cannot be attacked off this machine).
//! `keyring` errors are mapped by variant and never formatted with `{:?}`: the `Debug` text of
//! some variants carries the raw bytes.

use thiserror::Error;

use crate::catalog::{Catalog, CatalogError, KeystoreKind};

/// The keyring service name all Keyward items are stored under.
pub const SERVICE: &str = "keyward";

/// Errors from the keystore, each naming the cause and what to do.
#[derive(Debug, Error)]
pub enum KeystoreError {
    /// No Secret Service / keychain could be reached.
    #[error("no OS keychain is reachable (no Secret Service on the session D-Bus): start a keyring daemon such as gnome-keyring in your session, or create the vault with `keyward init --keystore file` to keep the age ciphertext in the catalog instead")]
    Unavailable,
    /// The keychain exists but is locked or refused access.
    #[error("the OS keychain is locked or refused access: unlock your login keyring (e.g. log in to the desktop, or run `gnome-keyring-daemon --unlock`) and retry")]
    Locked,
    /// The item is missing.
    #[error("the keychain item {item} is missing")]
    Missing {
        /// Item name.
        item: String,
    },
    /// Any other platform failure (message kept free of secret bytes).
    #[error("the OS keychain failed: {0}")]
    Platform(String),
    /// File keystore failure.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

fn map_keyring(e: keyring::Error, item: &str) -> KeystoreError {
    use keyring::Error as K;
    match e {
        K::NoDefaultStore => KeystoreError::Unavailable,
        K::NoStorageAccess(inner) => {
            let text = inner.to_string();
            // A bus with no Secret Service behind it surfaces as a storage-access error too.
            if text.contains("ServiceUnknown")
                || text.contains("was not provided by any .service files")
                || text.contains("NotFound")
            {
                KeystoreError::Unavailable
            } else {
                KeystoreError::Locked
            }
        }
        K::NoEntry => KeystoreError::Missing {
            item: item.to_owned(),
        },
        K::PlatformFailure(inner) => {
            let text = inner.to_string();
            if text.contains("ServiceUnknown")
                || text.contains("org.freedesktop.DBus")
                || text.contains("No such file")
                || text.contains("Connection refused")
            {
                KeystoreError::Unavailable
            } else {
                KeystoreError::Platform(text)
            }
        }
        K::BadEncoding(_) | K::BadDataFormat(_, _) => {
            KeystoreError::Platform(format!("item {item} holds data Keyward did not write"))
        }
        K::TooLong(attr, max) => {
            KeystoreError::Platform(format!("{attr} is longer than the keychain allows ({max})"))
        }
        K::Invalid(attr, reason) => KeystoreError::Platform(format!("invalid {attr}: {reason}")),
        K::Ambiguous(_) => {
            KeystoreError::Platform(format!("more than one keychain item matches {item}"))
        }
        _ => KeystoreError::Platform("unexpected keychain error".to_owned()),
    }
}

/// A vault's keystore: item names are scoped by the vault id.
#[derive(Debug, Clone)]
pub struct Keystore {
    kind: KeystoreKind,
    vault_id: String,
}

impl Keystore {
    /// A keystore of `kind` for vault `vault_id`.
    pub fn new(kind: KeystoreKind, vault_id: &str) -> Self {
        Keystore {
            kind,
            vault_id: vault_id.to_owned(),
        }
    }

    /// Which backend this is.
    pub fn kind(&self) -> KeystoreKind {
        self.kind
    }

    fn user(&self, item: &str) -> String {
        format!("{}/{}", self.vault_id, item)
    }

    /// Checks that the keychain is reachable and writable now.
    pub fn probe(&self, catalog: &Catalog) -> Result<(), KeystoreError> {
        let item = "probe";
        self.put(catalog, item, b"probe")?;
        self.delete(catalog, item)?;
        Ok(())
    }

    /// Stores `value` under `item`, replacing any previous value.
    pub fn put(&self, catalog: &Catalog, item: &str, value: &[u8]) -> Result<(), KeystoreError> {
        match self.kind {
            KeystoreKind::File => Ok(catalog.put_file_secret(&self.user(item), value)?),
            KeystoreKind::Keychain => {
                let user = self.user(item);
                let entry =
                    keyring::Entry::new(SERVICE, &user).map_err(|e| map_keyring(e, &user))?;
                entry.set_secret(value).map_err(|e| map_keyring(e, &user))
            }
        }
    }

    /// Reads `item`.
    pub fn get(&self, catalog: &Catalog, item: &str) -> Result<Vec<u8>, KeystoreError> {
        let user = self.user(item);
        match self.kind {
            KeystoreKind::File => catalog
                .file_secret(&user)?
                .ok_or(KeystoreError::Missing { item: user }),
            KeystoreKind::Keychain => {
                let entry =
                    keyring::Entry::new(SERVICE, &user).map_err(|e| map_keyring(e, &user))?;
                entry.get_secret().map_err(|e| map_keyring(e, &user))
            }
        }
    }

    /// Whether `item` exists.
    pub fn exists(&self, catalog: &Catalog, item: &str) -> Result<bool, KeystoreError> {
        match self.get(catalog, item) {
            Ok(_) => Ok(true),
            Err(KeystoreError::Missing { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `item`; a missing item is not an error (removal is idempotent for reconciliation).
    pub fn delete(&self, catalog: &Catalog, item: &str) -> Result<(), KeystoreError> {
        let user = self.user(item);
        match self.kind {
            KeystoreKind::File => {
                catalog.delete_file_secret(&user)?;
                Ok(())
            }
            KeystoreKind::Keychain => {
                let entry =
                    keyring::Entry::new(SERVICE, &user).map_err(|e| map_keyring(e, &user))?;
                match entry.delete_credential() {
                    Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                    Err(e) => Err(map_keyring(e, &user)),
                }
            }
        }
    }
}

/// Item name of an entry's secret.
pub fn entry_item(entry_id: &str) -> String {
    format!("entry/{entry_id}")
}

/// Item name of the device secret.
pub const DEVICE_SECRET_ITEM: &str = "device-secret";

/// Item name of the audit chain's anchor (its last sequence number and tag).
pub const AUDIT_ANCHOR_ITEM: &str = "audit-anchor";

/// Item name of the copy of the unlock throttle kept out of the catalog's reach.
pub const THROTTLE_ITEM: &str = "unlock-throttle";

/// Item name of the last accepted TOTP steps, kept out of the catalog's reach.
pub const TOTP_STEPS_ITEM: &str = "totp-steps";

/// Item marking that this vault's header carries a MAC (so a cleared MAC is noticed).
pub const HEADER_SEALED_ITEM: &str = "header-sealed";

/// Item holding the generation of the newest header written (so an older authentic header put
/// back is noticed).
pub const HEADER_GENERATION_ITEM: &str = "header-generation";
