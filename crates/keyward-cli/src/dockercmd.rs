//! docker: `keyward docker-credential get|store|erase|list|version` (also run as
//! `docker-credential-keyward`, which docker starts for a registry `keyward setup docker` set
//! up), and that setup.
//!
//! docker reads the helper's stdout, errors included, so every answer and every failure goes
//! there; a registry with no key bound is the miss docker expects (its exact text, exit 1).
//! `store` vaults what `docker login` hands over (the vault binds it to that registry), `erase`
//! (`docker logout`) unbinds the registry and keeps the key. `get` hands the bound key's value
//! (a lease) or an OAuth2 token to docker, through the approval gate with docker as the client.

use std::io::{Read, Write};

use anyhow::{bail, Context, Result};
use keyward_agent::client::ClientError;
use keyward_agent::protocol::{ErrorCode, WireSecret};
use keyward_core::HelperTool;
use keyward_shell::docker;

use crate::awscmd::obtain_for;

fn read_input() -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let mut input = zeroize::Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .take(docker::MAX_INPUT as u64 + 1)
        .read_to_end(&mut input)
        .context("cannot read what docker sent")?;
    if input.len() > docker::MAX_INPUT {
        bail!("docker sent more than {} bytes", docker::MAX_INPUT);
    }
    Ok(input)
}

fn not_found(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<ClientError>(),
        Some(ClientError::Agent(a)) if a.code == ErrorCode::NotFound
    )
}

/// What one action prints on success.
fn run(action: &str) -> Result<String> {
    match action {
        "get" => {
            let input = read_input()?;
            let url = String::from_utf8_lossy(&input).trim().to_owned();
            let host = docker::registry_host(&url)?;
            let found = match obtain_for(None, &host, "registry", |c, _mfa, approval| {
                c.helper_get(HelperTool::Docker, &host, approval)
            }) {
                Ok(f) => f,
                Err(e) if not_found(&e) => bail!(docker::NOT_FOUND),
                Err(e) => return Err(e),
            };
            let username = found.username.as_deref().unwrap_or("oauth2accesstoken");
            Ok(serde_json::to_string(&docker::Answer {
                server_url: &url,
                username,
                secret: found.secret.expose(),
            })?)
        }
        "store" => {
            let input = read_input()?;
            let s = docker::parse_store(&input)?;
            let host = docker::registry_host(&s.server_url)?;
            crate::connect::agent()?.helper_store(
                HelperTool::Docker,
                &host,
                &s.username,
                WireSecret::new(s.secret.as_str().to_owned()),
            )?;
            Ok(String::new())
        }
        "erase" => {
            let input = read_input()?;
            let host = docker::registry_host(String::from_utf8_lossy(&input).trim())?;
            crate::connect::agent()?.helper_erase(HelperTool::Docker, &host)?;
            Ok(String::new())
        }
        "list" => {
            let all = crate::connect::agent()?.bindings()?;
            let map: serde_json::Map<String, serde_json::Value> = all
                .into_iter()
                .filter(|b| b.tool == HelperTool::Docker)
                .map(|b| {
                    let user = b.username.unwrap_or_else(|| "oauth2accesstoken".into());
                    (b.host, serde_json::Value::String(user))
                })
                .collect();
            Ok(serde_json::Value::Object(map).to_string())
        }
        "version" => Ok(format!(
            "docker-credential-keyward (Keyward) v{}",
            env!("CARGO_PKG_VERSION")
        )),
        other => bail!(
            "unknown docker credential action '{}': get, store, erase, list or version",
            other.escape_default()
        ),
    }
}

/// Runs the helper's `action`, answering on stdout as docker reads it; the exit status says
/// whether it worked.
pub fn helper(action: &str) -> std::process::ExitCode {
    let (text, code) = match run(action) {
        Ok(t) => (t, std::process::ExitCode::SUCCESS),
        Err(e) => (
            keyward_agent::text::terminal_safe(&format!("{e:#}"), 2000),
            std::process::ExitCode::FAILURE,
        ),
    };
    let mut out = std::io::stdout().lock();
    let written = if text.is_empty() {
        Ok(())
    } else {
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(_) => std::process::ExitCode::FAILURE,
    }
}

/// `keyward setup docker REGISTRY [--key NAME]`: docker asks Keyward for REGISTRY
/// (`credHelpers` in its config; backup, atomic write). A login docker kept in plain text for it
/// is vaulted and removed from the file; `--key` binds an existing key instead (with a code).
pub fn setup(
    input_fd: Option<u32>,
    registry: &str,
    key: Option<&str>,
    username: Option<&str>,
) -> Result<()> {
    let host = docker::registry_host(registry)?;
    if let Some(k) = key {
        keyward_core::entry::validate_name(k)?;
    }
    if let Some(u) = username {
        keyward_core::entry::helper_username(u)?;
    }
    crate::gitcmd::helper_on_path("docker-credential-keyward")?;
    let mut config = docker::DockerConfig::read()?;
    let mut client = crate::connect::agent()?;
    let plaintext = config.plaintext_login(&host);
    match key {
        Some(k) => {
            let kind = client.show(k)?.meta.kind;
            if kind == keyward_core::EntryKind::Aws {
                bail!("'{k}' is an AWS key: docker gets a static key (a registry password or token) or an OAuth2 token");
            }
            let code = crate::gitcmd::binding_code(input_fd, k, "docker", &host)?;
            client.bind(HelperTool::Docker, &host, k, username, Some(code))?;
        }
        None => {
            if let Some((user, pass)) = &plaintext {
                client.helper_store(
                    HelperTool::Docker,
                    &host,
                    user,
                    WireSecret::new(pass.as_str().to_owned()),
                )?;
            }
        }
    }
    config.point_at_keyward(&host);
    let backup = config.write()?;
    let path = config.path().display().to_string();
    match (key, &plaintext) {
        (Some(k), _) => println!("docker now asks Keyward for {host} (key '{k}'), set in {path}."),
        (None, Some(_)) => println!(
            "docker's plain-text login for {host} is in the vault now and gone from {path}; docker asks Keyward for it."
        ),
        (None, None) => println!(
            "docker now asks Keyward for {host} (set in {path}): `docker login {host}` vaults the password."
        ),
    }
    if key.is_some() && plaintext.is_some() {
        println!("The plain-text login docker kept for {host} was removed from {path}.");
    }
    if let Some(b) = backup {
        println!("The old file is kept as {} (mode 0600).", b.display());
    }
    Ok(())
}
