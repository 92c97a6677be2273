//! Second factors and recovery codes: TOTP set-up and checking (RFC 6238), recovery code
//! generation and parsing, and passphrase strength.
//!
//! TOTP is an enforced, rate-limited gate, not key material: its seed has to be stored on this
//! machine (inside the passphrase-wrapped slot), so it adds nothing against an attacker who has
//! the disk, the keychain and the passphrase. SECURITY.md says so too.

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

/// Issuer shown in authenticator apps.
pub const TOTP_ISSUER: &str = "Keyward";
/// Number of recovery codes generated at set-up.
pub const RECOVERY_CODES: usize = 8;
/// Bytes of randomness per recovery code (160 bits, above the 128 required).
pub const RECOVERY_CODE_BYTES: usize = 20;

/// Errors about factors, worded for the user.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FactorError {
    /// Passphrase rejected by the strength check.
    #[error("passphrase too weak: {0}")]
    WeakPassphrase(String),
    /// The TOTP secret is unusable.
    #[error("invalid TOTP secret: {0}")]
    BadTotpSecret(String),
    /// A recovery code is not well-formed.
    #[error("that is not a recovery code: expected 32 letters and digits in groups of four")]
    BadRecoveryCode,
    /// The TOTP code does not have the right shape.
    #[error("a TOTP code is 6 digits")]
    BadCodeFormat,
}

/// A TOTP factor being enrolled: its secret and how to show it to an authenticator app.
pub struct TotpSetup {
    totp: Totp,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSetup(<redacted>)")
    }
}

fn build(secret: Vec<u8>, account: &str) -> Result<Totp, FactorError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(Secret::from(secret))
        .with_issuer(Some(TOTP_ISSUER))
        .with_account_name(account)
        .build()
        .map_err(|e| FactorError::BadTotpSecret(e.to_string()))
}

impl TotpSetup {
    /// A fresh random 160-bit TOTP secret for `account` (shown in the authenticator app).
    pub fn generate(account: &str) -> Result<Self, FactorError> {
        let mut bytes = vec![0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Ok(TotpSetup {
            totp: build(bytes, account)?,
        })
    }

    /// Rebuilds a set-up from its base32 secret (as typed or sent by a front end).
    pub fn from_base32(secret_b32: &str, account: &str) -> Result<Self, FactorError> {
        let cleaned: Zeroizing<String> = Zeroizing::new(
            secret_b32
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let bytes = data_encoding::BASE32_NOPAD
            .decode(cleaned.trim_end_matches('=').as_bytes())
            .map_err(|_| FactorError::BadTotpSecret("not base32".to_owned()))?;
        Ok(TotpSetup {
            totp: build(bytes, account)?,
        })
    }

    /// The secret in base32, for typing into an authenticator app.
    pub fn secret_base32(&self) -> SecretString {
        SecretString::from(self.totp.secret().to_base32())
    }

    /// The `otpauth://` URL (for a QR code).
    pub fn otpauth_url(&self) -> SecretString {
        SecretString::from(self.totp.to_url().unwrap_or_default())
    }

    /// Checks `code` at Unix time `now`; returns the matched time step.
    pub fn check(&self, code: &str, now: u64) -> Result<Option<u64>, FactorError> {
        let code = code.trim();
        if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
            return Err(FactorError::BadCodeFormat);
        }
        Ok(self.totp.check(code, now))
    }

    /// The code for Unix time `now` (tests and the set-up confirmation).
    pub fn code_at(&self, now: u64) -> String {
        self.totp.generate(now).to_string()
    }

    /// Raw secret bytes, for sealing into a vault slot.
    pub(crate) fn secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let b32 = self.totp.secret().to_base32();
        Zeroizing::new(
            data_encoding::BASE32_NOPAD
                .decode(b32.trim_end_matches('=').as_bytes())
                .unwrap_or_default(),
        )
    }

    /// Rebuilds from raw bytes unsealed from a slot.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, FactorError> {
        Ok(TotpSetup {
            totp: build(bytes.to_vec(), "keyward")?,
        })
    }
}

/// A fresh set of recovery codes (display form), each with its raw bytes.
pub fn generate_recovery_codes() -> Vec<SecretString> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut raw = Zeroizing::new([0u8; RECOVERY_CODE_BYTES]);
            rand::rngs::OsRng.fill_bytes(raw.as_mut());
            let enc = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(raw.as_ref()));
            let grouped: Vec<&str> = enc
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap_or(""))
                .collect();
            SecretString::from(grouped.join("-"))
        })
        .collect()
}

/// Parses a recovery code as typed (case, spaces and dashes ignored) into its bytes.
pub fn parse_recovery_code(code: &SecretString) -> Result<Zeroizing<Vec<u8>>, FactorError> {
    let cleaned: Zeroizing<String> = Zeroizing::new(
        code.expose_secret()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    let bytes = data_encoding::BASE32_NOPAD
        .decode(cleaned.as_bytes())
        .map_err(|_| FactorError::BadRecoveryCode)?;
    if bytes.len() != RECOVERY_CODE_BYTES {
        return Err(FactorError::BadRecoveryCode);
    }
    Ok(Zeroizing::new(bytes))
}

/// Rejects weak passphrases with a reason the user can act on.
pub fn check_passphrase_strength(
    passphrase: &SecretString,
    user_inputs: &[&str],
) -> Result<(), FactorError> {
    let p = passphrase.expose_secret();
    if p.chars().count() < 12 {
        return Err(FactorError::WeakPassphrase(
            "use at least 12 characters (a few unrelated words work well)".to_owned(),
        ));
    }
    if p.len() > 1024 {
        return Err(FactorError::WeakPassphrase(
            "use at most 1024 bytes".to_owned(),
        ));
    }
    let entropy = zxcvbn::zxcvbn(p, user_inputs);
    if (entropy.score() as u8) < 3 {
        let reason = entropy
            .feedback()
            .and_then(|f| {
                f.warning()
                    .map(|w| w.to_string())
                    .or_else(|| f.suggestions().first().map(|s| s.to_string()))
            })
            .unwrap_or_else(|| "it is too easy to guess".to_owned());
        return Err(FactorError::WeakPassphrase(format!(
            "{reason} — add more unrelated words"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_rfc6238_shape_and_reports_step() {
        let t = TotpSetup::generate("alice").expect("gen");
        let now = 1_800_000_000;
        let code = t.code_at(now);
        assert_eq!(t.check(&code, now).expect("fmt"), Some(now / 30));
        assert_eq!(
            t.check(&code, now + 30).expect("fmt"),
            Some(now / 30),
            "one step of skew"
        );
        assert_eq!(t.check(&code, now + 120).expect("fmt"), None);
        assert_eq!(t.check("12345", now), Err(FactorError::BadCodeFormat));
        assert!(t
            .otpauth_url()
            .expose_secret()
            .starts_with("otpauth://totp/Keyward:alice?"));
        let again =
            TotpSetup::from_base32(t.secret_base32().expose_secret(), "alice").expect("b32");
        assert_eq!(again.code_at(now), code);
    }

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 → 94287082 (8 digits); last 6 digits with 6-digit codes.
        let t = TotpSetup::from_bytes(b"12345678901234567890").expect("build");
        assert_eq!(t.code_at(59), "287082");
    }

    #[test]
    fn recovery_codes_round_trip_and_are_distinct() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let first = codes[0].expose_secret().to_owned();
        assert_eq!(first.len(), 32 + 7, "{first}");
        let parsed =
            parse_recovery_code(&SecretString::from(first.to_lowercase().replace('-', " ")))
                .expect("parse");
        assert_eq!(parsed.len(), RECOVERY_CODE_BYTES);
        assert_ne!(codes[0].expose_secret(), codes[1].expose_secret());
        assert!(parse_recovery_code(&SecretString::from("ABCD")).is_err());
    }

    #[test]
    fn weak_passphrases_are_rejected_with_a_reason() {
        let weak = check_passphrase_strength(&SecretString::from("password1234"), &[]);
        assert!(matches!(weak, Err(FactorError::WeakPassphrase(_))));
        let short = check_passphrase_strength(&SecretString::from("Xk9$"), &[]);
        assert!(short
            .expect_err("short")
            .to_string()
            .contains("12 characters"));
        assert!(check_passphrase_strength(
            &SecretString::from("correct-horse-battery-staple-velvet"),
            &[]
        )
        .is_ok());
    }
}
