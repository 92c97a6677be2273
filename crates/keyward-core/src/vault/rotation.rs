//! The journal of an AWS key rotation at IAM, so a crash between any two of its steps can be
//! finished or undone by the next agent.
//!
//! A rotation creates a new access key, stores it, deactivates the old one and deletes it after
//! a grace period. IAM hands a new key's secret out once, so it is written here before anything
//! else refers to it. The journal holds that secret, so it lives in the keychain beside the
//! entry's own item, age-encrypted to the vault's recipient. Being in the keychain does not make
//! it authentic (anyone may encrypt to the public recipient), and a forged journal could make
//! the agent delete a key at AWS with the user's own credentials; so each journal carries an
//! HMAC under a key derived from the vault's identity: only an unlocked vault can write one that
//! is honoured. The catalog keeps an index (entry ids with a journal) only to find them fast; a
//! removed index row delays a recovery until that key is rotated again, it cannot forge one.

use super::*;

/// The step a rotation has finished, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationStep {
    /// Written before the new key is created: a key found at IAM later that is neither the old
    /// one nor recorded here was created by this rotation and its secret is lost.
    Begun,
    /// The new key exists at IAM and its secret is here.
    Created,
    /// The entry holds the new key.
    Stored,
    /// The old key is inactive at IAM; it is deleted once the grace period is over.
    Deactivated,
}

impl RotationStep {
    /// The step's name, as audited and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationStep::Begun => "begun",
            RotationStep::Created => "created",
            RotationStep::Stored => "stored",
            RotationStep::Deactivated => "deactivated",
        }
    }
}

/// Where one key's rotation stands.
#[derive(Clone)]
pub struct RotationJournal {
    /// The IAM user the key belongs to.
    pub user_name: String,
    /// The key being replaced.
    pub old_key_id: String,
    /// The new key, once created.
    pub new_key_id: Option<String>,
    /// The new key's secret, from creation until the entry holds it.
    pub new_secret: Option<SecretString>,
    /// The last step done.
    pub step: RotationStep,
    /// When the rotation began (RFC 3339).
    pub begun: String,
    /// When the old key was deactivated (RFC 3339).
    pub deactivated: Option<String>,
    /// How long the deactivated old key is kept before it is deleted.
    pub grace_secs: u64,
}

impl std::fmt::Debug for RotationJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationJournal")
            .field("user_name", &self.user_name)
            .field("old_key_id", &self.old_key_id)
            .field("new_key_id", &self.new_key_id)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// The sealed form; the secret is only ever in this struct inside a zeroized buffer.
#[derive(Serialize, Deserialize)]
struct Sealed {
    entry_id: String,
    user_name: String,
    old_key_id: String,
    #[serde(default)]
    new_key_id: Option<String>,
    #[serde(default)]
    new_secret: Option<String>,
    step: RotationStep,
    begun: String,
    #[serde(default)]
    deactivated: Option<String>,
    grace_secs: u64,
}

impl Drop for Sealed {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        if let Some(s) = self.new_secret.as_mut() {
            s.zeroize();
        }
    }
}

/// HKDF `info` of the journal key (input: the age identity's secret encoding).
const ROTATION_INFO: &[u8] = b"keyward/v1/rotation-journal";
/// Catalog setting prefix of the index of entries with a journal.
const INDEX_PREFIX: &str = "rotation.pending.";
/// Length of the HMAC-SHA256 tag in front of the ciphertext.
const TAG_LEN: usize = 32;

fn journal_item(entry_id: &str) -> String {
    format!("rotation/{entry_id}")
}

fn journal_key(key: &UnlockedKey, vault_id: &str) -> MacKey {
    MacKey::derive(
        key.identity.to_string().expose_secret().as_bytes(),
        vault_id,
        ROTATION_INFO,
    )
}

impl Vault {
    /// Writes (replaces) the rotation journal of `meta`; the secret it holds is encrypted to the
    /// vault's recipient and the whole is authenticated under the unlocked key.
    pub fn put_rotation_journal(
        &self,
        key: &UnlockedKey,
        meta: &EntryMeta,
        journal: &RotationJournal,
    ) -> Result<(), VaultError> {
        let row = self.row()?;
        let recipient = self
            .recipient
            .as_ref()
            .ok_or(VaultError::RecipientUnverified)?;
        let sealed = Sealed {
            entry_id: meta.id.clone(),
            user_name: journal.user_name.clone(),
            old_key_id: journal.old_key_id.clone(),
            new_key_id: journal.new_key_id.clone(),
            new_secret: journal
                .new_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            step: journal.step,
            begun: journal.begun.clone(),
            deactivated: journal.deactivated.clone(),
            grace_secs: journal.grace_secs,
        };
        let plain = Zeroizing::new(
            serde_json::to_vec(&sealed)
                .map_err(|e| VaultError::Internal(format!("writing a rotation journal: {e}")))?,
        );
        let ciphertext = age::encrypt(recipient, &plain).map_err(|e| {
            VaultError::Internal(format!("age encryption of a rotation journal failed: {e}"))
        })?;
        let tag = journal_key(key, &row.vault_id).tag(&[meta.id.as_bytes(), &ciphertext]);
        let mut item = tag;
        item.extend_from_slice(&ciphertext);
        Keystore::new(row.keystore, &row.vault_id).put(
            &self.catalog,
            &journal_item(&meta.id),
            &item,
        )?;
        self.catalog
            .set_setting(&format!("{INDEX_PREFIX}{}", meta.id), journal.step.as_str())?;
        Ok(())
    }

    /// The rotation journal of `meta`, if one is open. One that does not carry this vault's tag,
    /// or that belongs to another entry, is refused: it was not written by this vault.
    pub fn rotation_journal(
        &self,
        key: &UnlockedKey,
        meta: &EntryMeta,
    ) -> Result<Option<RotationJournal>, VaultError> {
        let row = self.row()?;
        let item = match Keystore::new(row.keystore, &row.vault_id)
            .get(&self.catalog, &journal_item(&meta.id))
        {
            Ok(item) => item,
            Err(KeystoreError::Missing { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let forged = || VaultError::JournalForged(meta.name.clone());
        if item.len() <= TAG_LEN {
            return Err(forged());
        }
        let (tag, ciphertext) = item.split_at(TAG_LEN);
        if !journal_key(key, &row.vault_id).verify(&[meta.id.as_bytes(), ciphertext], tag) {
            return Err(forged());
        }
        let plain = Zeroizing::new(age::decrypt(&key.identity, ciphertext).map_err(|_| forged())?);
        let s: Sealed = serde_json::from_slice(&plain).map_err(|_| forged())?;
        if s.entry_id != meta.id {
            return Err(forged());
        }
        Ok(Some(RotationJournal {
            user_name: s.user_name.clone(),
            old_key_id: s.old_key_id.clone(),
            new_key_id: s.new_key_id.clone(),
            new_secret: s.new_secret.clone().map(SecretString::from),
            step: s.step,
            begun: s.begun.clone(),
            deactivated: s.deactivated.clone(),
            grace_secs: s.grace_secs,
        }))
    }

    /// Closes the rotation journal of `meta` (the rotation is done or undone).
    pub fn clear_rotation_journal(&self, meta: &EntryMeta) -> Result<(), VaultError> {
        let row = self.row()?;
        Keystore::new(row.keystore, &row.vault_id)
            .delete(&self.catalog, &journal_item(&meta.id))?;
        self.catalog
            .delete_setting(&format!("{INDEX_PREFIX}{}", meta.id))?;
        Ok(())
    }

    /// Ids of the entries whose rotation journal is open, with the step the index says (a
    /// hint: [`Vault::rotation_journal`] is what counts).
    pub fn open_rotations(&self) -> Result<Vec<(String, String)>, VaultError> {
        Ok(self
            .catalog
            .settings_with_prefix(INDEX_PREFIX)?
            .into_iter()
            .map(|(name, step)| (name[INDEX_PREFIX.len()..].to_owned(), step))
            .collect())
    }
}
