//! What a credential provider is to the agent: the one issuance pipeline (cache → approval gate
//! → single flight → decrypt → issue → cache → audit) is the agent's, in `service::issuance`;
//! a provider only turns a stored secret into a short-lived credential and says how it is
//! cached, audited and answered. AWS STS and OAuth2 are the two; a new one is a type, not a
//! copy of the pipeline.

use std::future::Future;

use keyward_core::{EntryKind, EntryMeta, SecretValue};
use time::OffsetDateTime;

use crate::cache::{CredCache, Issued};
use crate::protocol::{ErrorReply, Reply};

/// A source of short-lived credentials for one kind of key. It deals in domain types: how a
/// credential and an error go on the wire is `protocol`'s (`From` impls beside the wire types).
pub trait Provider: Send + Sync {
    /// What it hands out.
    type Credential: Issued + Send + Sync + Into<Reply>;
    /// How its call fails.
    type Error: Into<ErrorReply> + Send;
    /// What a request may bring besides the profile (AWS: an MFA code).
    type Input: Send;
    /// The kind of key it issues from; another kind's profile is refused before any call.
    const KIND: EntryKind;

    /// The cache its credentials live in until they have too little time left.
    fn cache(&self) -> &CredCache<Self::Credential>;

    /// How long what it would issue for `meta` lives, for the approval question (`None`: the
    /// server decides).
    fn ttl_secs(&self, meta: &EntryMeta) -> Option<u64>;

    /// `meta` as it is issued from under a policy that lets credentials live at most
    /// `max_secs`: shortened where the provider asks for a lifetime (AWS: the session
    /// duration), unchanged where the server decides it (OAuth2).
    fn capped(&self, meta: &EntryMeta, max_secs: u32) -> EntryMeta {
        let _ = max_secs;
        meta.clone()
    }

    /// Calls upstream with the long-lived `secret`; the expiry, when known, lets the credential
    /// be cached (without one it is handed out once).
    fn issue(
        &self,
        meta: &EntryMeta,
        secret: SecretValue,
        input: Self::Input,
    ) -> impl Future<Output = Result<(Self::Credential, Option<OffsetDateTime>), Self::Error>> + Send;

    /// What the audit row records of an issuance: ids, expiry, scope — never a secret.
    fn audit_detail(&self, meta: &EntryMeta, credential: &Self::Credential) -> serde_json::Value;
}
