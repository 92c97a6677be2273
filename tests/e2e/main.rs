//! End-to-end tests: the real `keyward` binary and its agent against a real gnome-keyring Secret
//! Service, a real SQLite catalog, moto as STS/IAM (signatures checked), and the real AWS CLI v2
//! and boto3 resolving profiles through `credential_process`.

mod approvals;
mod aws;
mod errors;
mod fido2;
mod keys;
mod session;
mod support;
mod vault;
