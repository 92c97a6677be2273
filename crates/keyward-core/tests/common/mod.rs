//! What the vault tests share: a fresh file-keystore vault in a temp dir with a fast KDF.

use keyward_core::factors::TotpSetup;
use keyward_core::kdf::{KdfParams, MIN_MEMORY_KIB};
use keyward_core::vault::CreateOptions;
use keyward_core::{Actor, KeystoreKind, Vault, VaultPaths};
use secrecy::SecretString;

/// A new vault (TOTP factor enrolled) under a temp dir, with its recovery codes; the dir lives
/// as long as the returned guard.
pub fn new_vault(pass: &SecretString) -> (tempfile::TempDir, Vault, Vec<SecretString>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vault = Vault::open(VaultPaths {
        data_dir: dir.path().to_path_buf(),
    })
    .expect("open");
    let totp = TotpSetup::generate("t").expect("totp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let created = vault
        .create(
            CreateOptions {
                passphrase: pass.clone(),
                keystore: KeystoreKind::File,
                kdf: KdfParams {
                    memory_kib: MIN_MEMORY_KIB,
                    iterations: 1,
                    parallelism: 1,
                },
                totp_code: totp.code_at(now),
                totp,
                totp_label: "app".into(),
            },
            &Actor::default(),
        )
        .expect("create");
    (dir, vault, created.recovery_codes)
}
