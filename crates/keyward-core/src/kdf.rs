//! Passphrase key derivation: Argon2id with parameters calibrated at vault creation and bounded
//! whenever they are read back (a tampered header must not make unlock take hours or all memory).

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

/// Smallest memory cost accepted when reading a header (KiB). Tests may use it; shipped vaults
/// use at least [`RECOMMENDED_MIN_MEMORY_KIB`].
pub const MIN_MEMORY_KIB: u32 = 8 * 1024;
/// Largest memory cost accepted when reading a header (KiB): 1 GiB.
pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
/// Largest iteration count accepted when reading a header.
pub const MAX_ITERATIONS: u32 = 64;
/// Largest total work accepted (memory in KiB × passes): what calibration can reach at most,
/// 64 MiB × 64 passes, about 2–3 s here. A tampered header asking for more is refused at once
/// instead of holding unlock (and the vault) for minutes.
pub const MAX_WORK_KIB_PASSES: u64 = 64 * 1024 * 64;
/// Largest parallelism accepted when reading a header.
pub const MAX_PARALLELISM: u32 = 8;
/// Memory cost below which `init` warns that the vault is weaker than recommended (64 MiB).
pub const RECOMMENDED_MIN_MEMORY_KIB: u32 = 64 * 1024;

/// Errors from key derivation.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KdfError {
    /// Parameters outside the accepted bounds.
    #[error("key-derivation parameters out of bounds (memory {memory_kib} KiB, {iterations} iterations, parallelism {parallelism}): the vault header may be corrupt or tampered with")]
    OutOfBounds {
        /// Memory cost in KiB.
        memory_kib: u32,
        /// Iterations.
        iterations: u32,
        /// Lanes.
        parallelism: u32,
    },
    /// The salt has the wrong length.
    #[error("the vault header has a malformed salt")]
    BadSalt,
    /// Argon2 itself failed.
    #[error("key derivation failed: {0}")]
    Argon2(String),
}

/// Argon2id parameters as stored in the vault header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// Refuses absurd work factors (denial-of-service guard on read).
    pub fn check_bounds(&self) -> Result<(), KdfError> {
        let ok = (MIN_MEMORY_KIB..=MAX_MEMORY_KIB).contains(&self.memory_kib)
            && (1..=MAX_ITERATIONS).contains(&self.iterations)
            && (1..=MAX_PARALLELISM).contains(&self.parallelism)
            && u64::from(self.memory_kib) * u64::from(self.iterations) <= MAX_WORK_KIB_PASSES;
        if ok {
            Ok(())
        } else {
            Err(KdfError::OutOfBounds {
                memory_kib: self.memory_kib,
                iterations: self.iterations,
                parallelism: self.parallelism,
            })
        }
    }

    /// Whether these parameters are below the recommended strength.
    pub fn is_weak(&self) -> bool {
        self.memory_kib < RECOMMENDED_MIN_MEMORY_KIB
    }

    /// Picks parameters for this machine: 64 MiB, then as many passes as fit in `target`.
    pub fn calibrate(target: Duration) -> Result<Self, KdfError> {
        let mut params = KdfParams {
            memory_kib: RECOMMENDED_MIN_MEMORY_KIB,
            iterations: 1,
            parallelism: 1,
        };
        let salt = [0u8; 16];
        // Time 1 and 3 passes (best of three each, so a busy moment does not skew it): their
        // difference is the cost of a pass, the rest is fixed overhead (allocating the memory).
        let time = |passes: u32| -> Result<Duration, KdfError> {
            let p = KdfParams {
                iterations: passes,
                ..params
            };
            let mut best = Duration::MAX;
            for _ in 0..3 {
                let start = Instant::now();
                derive(b"calibration", &salt, &p)?;
                best = best.min(start.elapsed());
            }
            Ok(best)
        };
        let (one, three) = (time(1)?, time(3)?);
        let per_pass = (three.saturating_sub(one) / 2).max(Duration::from_millis(1));
        let overhead = one.saturating_sub(per_pass);
        let fit =
            (target.saturating_sub(overhead).as_secs_f64() / per_pass.as_secs_f64()).floor() as u32;
        params.iterations = fit.clamp(2, MAX_ITERATIONS);
        Ok(params)
    }
}

/// Derives a 32-byte key from `secret` and `salt`.
pub fn derive(
    secret: &[u8],
    salt: &[u8],
    params: &KdfParams,
) -> Result<Zeroizing<[u8; 32]>, KdfError> {
    params.check_bounds()?;
    if !(16..=64).contains(&salt.len()) {
        return Err(KdfError::BadSalt);
    }
    let p = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(|e| KdfError::Argon2(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(secret, salt, out.as_mut())
        .map_err(|e| KdfError::Argon2(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: KdfParams = KdfParams {
        memory_kib: MIN_MEMORY_KIB,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn deterministic_and_salt_sensitive() {
        let a = derive(b"pw", &[1u8; 16], &TEST).expect("derive");
        let b = derive(b"pw", &[1u8; 16], &TEST).expect("derive");
        let c = derive(b"pw", &[2u8; 16], &TEST).expect("derive");
        assert_eq!(*a, *b);
        assert_ne!(*a, *c);
    }

    #[test]
    fn absurd_parameters_are_refused_before_any_work() {
        for p in [
            KdfParams {
                memory_kib: u32::MAX,
                ..TEST
            },
            KdfParams {
                iterations: 10_000,
                ..TEST
            },
            KdfParams {
                memory_kib: 1,
                ..TEST
            },
            KdfParams {
                parallelism: 0,
                ..TEST
            },
            // The review's tampered header: 4 GiB × 64 passes ran for minutes.
            KdfParams {
                memory_kib: 4 * 1024 * 1024,
                iterations: 64,
                parallelism: 1,
            },
            KdfParams {
                memory_kib: 1024 * 1024,
                iterations: 8,
                parallelism: 1,
            },
        ] {
            assert!(matches!(
                derive(b"pw", &[0u8; 16], &p),
                Err(KdfError::OutOfBounds { .. })
            ));
        }
        assert_eq!(derive(b"pw", &[0u8; 4], &TEST), Err(KdfError::BadSalt));
    }
}
