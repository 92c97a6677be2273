//! Unlock time at the shipped KDF parameters (calibrated to ~1 s on this machine): creates a vault
//! with the explicit file keystore in a temp dir and times `Vault::unlock` with recovery codes
//! (each one-time, so every sample is a full, real unlock: Argon2id + HKDF + slot open).

use std::time::{Duration, Instant};

use keyward_core::factors::TotpSetup;
use keyward_core::kdf::KdfParams;
use keyward_core::vault::{CreateOptions, SecondFactor};
use keyward_core::{Actor, KeystoreKind, Vault, VaultPaths};
use secrecy::SecretString;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vault = Vault::open(VaultPaths {
        data_dir: dir.path().to_path_buf(),
    })
    .expect("open");
    let kdf = KdfParams::calibrate(Duration::from_millis(1000)).expect("calibrate");
    let totp = TotpSetup::generate("bench").expect("totp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let code = totp.code_at(now);
    let pass = SecretString::from("bench-passphrase-correct-horse".to_owned());
    let created = vault
        .create(
            CreateOptions {
                passphrase: pass.clone(),
                keystore: KeystoreKind::File,
                kdf,
                totp,
                totp_code: code,
                totp_label: "bench".into(),
            },
            &Actor::default(),
        )
        .expect("create");
    let mut times = Vec::new();
    for code in created.recovery_codes.iter().take(5) {
        let t = Instant::now();
        vault
            .unlock(
                &pass,
                &SecondFactor::Recovery(code.clone()),
                &Actor::default(),
            )
            .expect("unlock");
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "unlock: Argon2id {} MiB x {} passes; {} unlocks: min {:.3} s, median {:.3} s, max {:.3} s",
        kdf.memory_kib / 1024,
        kdf.iterations,
        times.len(),
        times[0].as_secs_f64(),
        times[times.len() / 2].as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    );
}
