//! How the agent's errors go on the wire: a code a client can branch on and the message the
//! user reads, taken from the library that failed.

use keyward_core::VaultError;

use crate::aws::AwsError;
use crate::oauth::OAuthError;
use crate::protocol::{ErrorCode, ErrorReply};

pub(super) fn err(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        code,
        message: message.into(),
    }
}

/// Maps a vault error to the wire, keeping the core's actionable message.
pub fn vault_err(e: VaultError) -> ErrorReply {
    e.into()
}

impl From<VaultError> for ErrorReply {
    fn from(e: VaultError) -> Self {
        vault_reply(e)
    }
}

fn vault_reply(e: VaultError) -> ErrorReply {
    use keyward_core::keystore::KeystoreError;
    let code = match &e {
        VaultError::NoVault => ErrorCode::NoVault,
        VaultError::Locked => ErrorCode::Locked,
        VaultError::WrongCredentials { .. }
        | VaultError::WrongCode { .. }
        | VaultError::CodeReused
        | VaultError::CodeMismatch => ErrorCode::WrongCredentials,
        VaultError::Throttled(_) => ErrorCode::Throttled,
        VaultError::NotFound(_) => ErrorCode::NotFound,
        VaultError::Entry(_)
        | VaultError::Factor(_)
        | VaultError::WrongKind { .. }
        | VaultError::AlreadyExists(_)
        | VaultError::NoSuchFactor(_)
        | VaultError::LastFactor => ErrorCode::Invalid,
        VaultError::Catalog(keyward_core::catalog::CatalogError::Duplicate(_)) => {
            ErrorCode::Invalid
        }
        VaultError::Keystore(KeystoreError::Catalog(_)) => ErrorCode::Internal,
        VaultError::Keystore(_) | VaultError::DeviceSecretMissing => ErrorCode::Keystore,
        VaultError::Audit(_) => ErrorCode::Audit,
        VaultError::HeaderTampered(_)
        | VaultError::SettingsTampered { .. }
        | VaultError::JournalForged(_) => ErrorCode::Tampered,
        VaultError::Unsealed(_) => ErrorCode::Invalid,
        VaultError::RecipientUnverified => ErrorCode::Locked,
        _ => ErrorCode::Internal,
    };
    err(code, e.to_string())
}

impl From<AwsError> for ErrorReply {
    fn from(e: AwsError) -> Self {
        let code = match e {
            AwsError::MfaRequired(_) => ErrorCode::MfaRequired,
            AwsError::NotAnAwsKey(_) => ErrorCode::Internal,
            _ => ErrorCode::Upstream,
        };
        err(code, e.to_string())
    }
}

impl From<OAuthError> for ErrorReply {
    fn from(e: OAuthError) -> Self {
        let code = match e {
            OAuthError::Client(_) | OAuthError::NotAClient(_) => ErrorCode::Internal,
            _ => ErrorCode::Upstream,
        };
        err(code, e.to_string())
    }
}

impl From<crate::aliyun::AliyunError> for ErrorReply {
    fn from(e: crate::aliyun::AliyunError) -> Self {
        use crate::aliyun::AliyunError as E;
        let code = match e {
            E::Client(_) | E::NotAnAliyunKey(_) => ErrorCode::Internal,
            E::Upstream { .. } | E::TooShort(_) => ErrorCode::Upstream,
        };
        err(code, e.to_string())
    }
}

impl From<crate::lease::LeaseError> for ErrorReply {
    fn from(e: crate::lease::LeaseError) -> Self {
        err(ErrorCode::Internal, e.to_string())
    }
}
