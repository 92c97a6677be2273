//! Static-key leases: a static key (a GitHub token, a SaaS API key) has no short-lived form, so
//! it leaves the agent only as a lease — handed to the one command `keyward exec` starts, under
//! the per-key setting the user gave (`keyward edit NAME --allow-lease env`, kept in the
//! authenticated vault header), the admin policy's `static_leases`, and the approval gate. The
//! lease's life bounds how long Keyward counts it as out; a value in a child's environment
//! cannot be taken back, so the setting, the question and the audit are what guard it.

use keyward_core::{EntryKind, EntryMeta, SecretValue};
use secrecy::SecretString;
use thiserror::Error;
use time::OffsetDateTime;

use crate::cache::{CredCache, Issued};
use crate::provider::Provider;

/// How long a lease lasts unless the policy's `max_credential_ttl_secs` is shorter.
pub const LEASE_SECS: u32 = 3600;

/// A static key handed out for a while.
#[derive(Clone)]
pub struct Lease {
    /// The key's value.
    pub value: SecretString,
    /// When the lease ends (RFC 3339).
    pub expires_at: String,
    /// How it went out: `exec` or `helper`.
    pub via: &'static str,
}

impl Issued for Lease {
    // Leases are never cached: each one is its own issuance, asked for and audited.
    fn set_cached(&mut self) {}
}

/// Why no lease was handed out.
#[derive(Debug, Error)]
pub enum LeaseError {
    /// The stored secret is not a static value.
    #[error("'{0}' does not hold a static value")]
    NotStatic(String),
    /// The clock could not be written as RFC 3339.
    #[error("the lease's end cannot be written: {0}")]
    Time(String),
}

/// The lease provider: the pipeline's gate, policy and audit, with the key's own value.
#[derive(Default)]
pub struct Leases {
    // Never filled (no lease is cached); the pipeline asks every provider for one.
    cache: CredCache<Lease>,
}

impl Provider for Leases {
    type Credential = Lease;
    type Error = LeaseError;
    /// The lease's life in seconds, already capped by the policy, and how it goes out (`exec`:
    /// in a variable of the command `keyward exec` starts; `helper`: to the tool that ran a
    /// keyward credential helper).
    type Input = (u32, &'static str);
    const KIND: EntryKind = EntryKind::Static;

    fn cache(&self) -> &CredCache<Lease> {
        &self.cache
    }

    fn ttl_secs(&self, _meta: &EntryMeta) -> Option<u64> {
        Some(u64::from(LEASE_SECS))
    }

    async fn issue(
        &self,
        meta: &EntryMeta,
        secret: SecretValue,
        (secs, via): (u32, &'static str),
    ) -> Result<(Lease, Option<OffsetDateTime>), LeaseError> {
        let SecretValue::Static { value } = secret else {
            return Err(LeaseError::NotStatic(meta.name.clone()));
        };
        let expires_at = (OffsetDateTime::now_utc() + time::Duration::seconds(i64::from(secs)))
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc())
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| LeaseError::Time(e.to_string()))?;
        // No cache expiry: a lease is handed out once.
        Ok((
            Lease {
                value,
                expires_at,
                via,
            },
            None,
        ))
    }

    fn audit_detail(&self, _meta: &EntryMeta, lease: &Lease) -> serde_json::Value {
        serde_json::json!({ "lease": lease.via, "expires_at": lease.expires_at })
    }
}
