//! Keys that authenticate what the catalog keeps outside the sealed secrets.
//!
//! The catalog is a plain SQLite file: anyone who can write it (a same-user process, a restored
//! backup) can change any row. What decides where a secret goes is sealed with the secret (see
//! [`crate::entry`]); what remains is authenticated here, each with a key the catalog does not hold:
//! - the vault **header** (recipient, KDF parameters, slots) under a key derived from the vault's
//!   age identity, so it is checked at every unlock and rewritten only by an unlocked vault;
//! - the **audit chain** under a key derived from the device secret in the OS keychain, because
//!   records are written while the vault is locked too (failed unlocks, adds).
//!
//! Both are HMAC-SHA256 (RFC 2104) with HKDF-SHA256 (RFC 5869) key separation.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// A 256-bit MAC key, wiped on drop.
#[derive(Clone)]
pub(crate) struct MacKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(<redacted>)")
    }
}

impl MacKey {
    /// HKDF-SHA256 of `ikm` with `info`, scoped to one vault by its id as salt.
    pub(crate) fn derive(ikm: &[u8], vault_id: &str, info: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(vault_id.as_bytes()), ikm);
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(info, out.as_mut());
        MacKey(out)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length.
        <HmacSha256 as Mac>::new_from_slice(self.0.as_ref()).unwrap_or_else(|_| unreachable!())
    }

    /// The tag of `parts`, each length-prefixed so no two inputs share an encoding.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut m = self.mac();
        for p in parts {
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }

    /// Whether `tag` is the tag of `parts` (constant-time comparison).
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut m = self.mac();
        for p in parts {
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m.verify_slice(tag).is_ok()
    }
}

/// HKDF `info` of the header key (input: the age identity's secret encoding).
pub(crate) const HEADER_INFO: &[u8] = b"keyward/v1/header-mac";
/// HKDF `info` of the audit chain key (input: the device secret).
pub(crate) const AUDIT_INFO: &[u8] = b"keyward/v1/audit-chain";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_key_vault_and_every_part() {
        let k = MacKey::derive(b"ikm", "vault-a", AUDIT_INFO);
        let t = k.tag(&[b"ab", b"c"]);
        assert!(k.verify(&[b"ab", b"c"], &t));
        // Moving a byte between parts changes the tag (length prefixes).
        assert!(!k.verify(&[b"a", b"bc"], &t));
        assert!(!MacKey::derive(b"ikm", "vault-b", AUDIT_INFO).verify(&[b"ab", b"c"], &t));
        assert!(!MacKey::derive(b"ikm", "vault-a", HEADER_INFO).verify(&[b"ab", b"c"], &t));
        assert!(!k.verify(&[b"ab", b"c"], &t[..31]));
    }

    #[test]
    fn known_answer() {
        // Pins the construction: a change here makes every stored header and chain unreadable.
        let k = MacKey::derive(&[7u8; 32], "00000000000000000000000000000000", AUDIT_INFO);
        let tag = data_encoding::HEXLOWER.encode(&k.tag(&[b"keyward"]));
        assert_eq!(tag, KNOWN_TAG, "{tag}");
    }

    // Computed independently with Python's hmac and hashlib (RFC 5869 HKDF by hand).
    const KNOWN_TAG: &str = "9e0f5986e9ecf340e2367c5b50412325346a2ef5708c5d92ee6df59eeccd5877";
}
