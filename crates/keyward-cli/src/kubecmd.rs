//! Kubernetes: `keyward cred kube --profile NAME`, the exec credential plugin
//! (`client.authentication.k8s.io/v1`) a kubeconfig user runs. kubectl runs it on every
//! invocation: the token is an OAuth2 access token (from the agent's cache) or a static key's
//! lease, with `expirationTimestamp` so client-go asks again in time.

use std::io::Write;

use anyhow::{bail, Context, Result};
use keyward_agent::client::KubeCredential;
use keyward_core::EntryKind;
use serde::Serialize;

use crate::awscmd::obtain;

const API_VERSION: &str = "client.authentication.k8s.io/v1";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status<'a> {
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration_timestamp: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredential<'a> {
    api_version: &'a str,
    kind: &'a str,
    status: Status<'a>,
}

/// Checks what kubectl says it speaks (`KUBERNETES_EXEC_INFO`), when it says.
fn check_exec_info() -> Result<()> {
    let Ok(info) = std::env::var("KUBERNETES_EXEC_INFO") else {
        return Ok(());
    };
    let v: serde_json::Value = serde_json::from_str(&info)
        .map_err(|e| anyhow::anyhow!("KUBERNETES_EXEC_INFO is not JSON: {e}"))?;
    match v.get("apiVersion").and_then(|a| a.as_str()) {
        Some(API_VERSION) | None => Ok(()),
        Some(other) => bail!(
            "kubectl asks for {}: Keyward answers {API_VERSION} (set apiVersion: {API_VERSION} in the kubeconfig's exec user)",
            other.escape_default()
        ),
    }
}

/// `keyward cred kube --profile NAME`.
pub fn cred(profile: &str) -> Result<()> {
    check_exec_info()?;
    keyward_core::entry::validate_name(profile)?;
    let (token, expires) = match obtain(None, profile, "key", |c, _mfa, approval| {
        c.cred_kube(profile, approval)
    })? {
        KubeCredential::Token(t) => (
            zeroize::Zeroizing::new(t.access_token.expose().to_owned()),
            t.expires_at,
        ),
        KubeCredential::Lease(l) => (
            zeroize::Zeroizing::new(l.value.expose().to_owned()),
            Some(l.expires_at),
        ),
    };
    // A bearer token goes into an HTTP header: nothing but visible ASCII.
    if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
        bail!("the token of '{profile}' holds characters an HTTP header cannot carry: not printed");
    }
    let out = ExecCredential {
        api_version: API_VERSION,
        kind: "ExecCredential",
        status: Status {
            token: &token,
            expiration_timestamp: expires.as_deref(),
        },
    };
    let json = zeroize::Zeroizing::new(serde_json::to_string(&out)?);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(json.as_bytes())?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

/// `keyward setup kube --key NAME`: adds an exec user running `keyward cred kube` to the
/// kubeconfig kubectl reads (`KUBECONFIG` respected), every other byte kept, with a backup.
pub fn setup(key: &str, user: Option<&str>, interactive: bool) -> Result<()> {
    keyward_core::entry::validate_name(key)?;
    let name = user.map_or_else(|| format!("keyward-{key}"), str::to_owned);
    keyward_core::entry::validate_name(&name).map_err(|_| {
        anyhow::anyhow!(
            "invalid user name '{}': use letters, digits, '.', '_' or '-'",
            name.escape_default()
        )
    })?;
    let kind = crate::connect::agent()?.show(key)?.meta.kind;
    if kind == EntryKind::Aws {
        bail!("'{key}' is an AWS key: EKS clusters take `aws eks get-token` under `keyward exec aws:{key} --`; kubectl gets a static key's lease or an OAuth2 token from Keyward");
    }
    // kubectl runs the command itself, without a shell: an absolute path to this keyward.
    let command = std::fs::canonicalize(
        std::env::current_exe().context("cannot tell where keyward is installed")?,
    )?;
    let done = keyward_shell::kube::setup(&keyward_shell::kube::ExecUser {
        name: &name,
        command: &command,
        profile: key,
        interactive,
    })?;
    let path = done.path.display();
    if done.already {
        println!("{path} already has the user '{name}' running keyward for '{key}'.");
    } else {
        println!("Added the user '{name}' to {path}: kubectl runs `keyward cred kube --profile {key}` for it.");
    }
    if let Some(b) = done.backup {
        println!("The old file is kept as {}.", b.display());
    }
    println!("Use it in a context: kubectl config set-context CONTEXT --user {name}");
    if kind == EntryKind::Static {
        println!("A static key goes to kubectl as a lease: allow it once with `keyward edit {key} --allow-lease env` if you have not.");
    }
    Ok(())
}
