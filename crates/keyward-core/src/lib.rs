//! Keyward's core: the vault model and everything that touches secrets at rest.
//!
//! This crate has no UI, no network and no global state; the agent, the CLI and the desktop app
//! are thin shells over it. Secrets are age-encrypted into the OS keychain ([`keystore`]), their
//! metadata lives in SQLite ([`catalog`]), the vault key opens only with two factors ([`vault`],
//! [`factors`], [`kdf`]) and every use is recorded in a hash-chained log ([`audit`]).

#![forbid(unsafe_code)]

pub mod audit;
pub mod awsfiles;
pub mod catalog;
pub mod entry;
pub mod factors;
pub mod fido2;
mod integrity;
pub mod kdf;
pub mod keystore;
pub mod policy;
pub mod security_key;
pub mod usage;
pub mod vault;

pub use audit::{Actor, AuditEvent, ProcessInfo};
pub use catalog::KeystoreKind;
pub use entry::{
    AliyunConfig, AwsConfig, ClientAuth, EntryConfig, EntryKind, EntryMeta, EntryState, HelperTool,
    OAuth2Config, ProviderUse, ReportedUse, SecretValue,
};
pub use vault::{
    BoundKey, PassKey, SecondFactor, UnlockStart, UnlockedKey, Vault, VaultError, VaultPaths,
};
