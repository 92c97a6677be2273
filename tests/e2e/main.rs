//! End-to-end tests: the real `keyward` binary and its agent against a real gnome-keyring Secret
//! Service, a real SQLite catalog, moto as STS/IAM (signatures checked), the real AWS CLI v2
//! and boto3 resolving profiles through `credential_process`, and a real OAuth2 authorization
//! server (oidc-provider) whose tokens the real curl sends to an API that checks them.

mod aliyun;
mod approvals;
mod audit;
mod aws;
mod completions;
mod docker;
mod errors;
mod exec;
mod fido2;
mod git;
mod keys;
mod kube;
mod oauth2;
mod policy;
mod rotation;
mod session;
mod support;
mod tamper;
mod vault;
