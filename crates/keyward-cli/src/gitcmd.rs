//! git: `keyward git-credential get|store|erase` (also run as `git-credential-keyward`), the
//! credential helper `keyward setup git HOST --key NAME` configures for one host.
//!
//! `get` answers only for a host the user bound a key to (in the vault, with a code: git's
//! config, which any program can edit, only names the helper), over HTTPS (plain HTTP only to
//! loopback), with a lease of the bound static key or an OAuth2 access token, and
//! `password_expiry_utc` so git forgets it in time. `store` writes nothing anywhere; for a host no
//! key is bound to, a password the user just typed is offered to the vault on the terminal (kept
//! as a static key bound to that host, with a code). `erase` has nothing to erase. Each request passes the approval gate
//! with git as the client.

use std::io::{Read, Write};

use anyhow::{bail, Context, Result};
use keyward_agent::protocol::{ErrorCode, WireSecret};
use keyward_core::HelperTool;
use keyward_shell::gitcred;

use crate::awscmd::obtain_for;

fn unix(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn loopback(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

/// Runs the helper's `action`.
pub fn helper(action: &str) -> Result<()> {
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .take(gitcred::MAX_INPUT as u64 + 1)
        .read_to_end(&mut input)
        .context("cannot read what git sent")?;
    let asked = gitcred::parse(&input)?;
    match action {
        "get" => {}
        "store" => return offer_to_vault(&asked),
        // Nothing is kept anywhere that could be erased; a binding is `keyward setup git`'s.
        "erase" => return Ok(()),
        other => bail!(
            "unknown git credential action '{}': get, store or erase",
            other.escape_default()
        ),
    }
    let Some(host) = asked.host.as_deref() else {
        return Ok(());
    };
    let Ok(host) = keyward_core::entry::helper_host(host) else {
        // Not a host a key can be bound to: not ours to answer.
        return Ok(());
    };
    match asked.protocol.as_deref() {
        Some("https") => {}
        Some("http") if loopback(&host) => {}
        Some(p) => bail!(
            "git asked for a credential for {host} over {}: Keyward answers only over HTTPS (plain HTTP only to this machine)",
            p.escape_default()
        ),
        None => bail!("git asked for a credential without saying the protocol"),
    }
    let found = match obtain_for(None, &host, "host", |c, _mfa, approval| {
        c.helper_get(HelperTool::Git, &host, approval)
    }) {
        Ok(f) => f,
        Err(e)
            if e.downcast_ref::<keyward_agent::client::ClientError>()
                .is_some_and(|c| matches!(c, keyward_agent::client::ClientError::Agent(a) if a.code == ErrorCode::NotFound)) =>
        {
            // No key bound to this host: git asks its next helper or the user.
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let user = asked
        .username
        .as_deref()
        .or(found.username.as_deref())
        .unwrap_or("token");
    let text = gitcred::answer(&gitcred::Answer {
        username: user,
        password: found.secret.expose(),
        expires_unix: found.expires_at.as_deref().and_then(unix),
    })?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// git's `store` for a password the user typed (git asked them because no key answers for the
/// host): on a terminal, offers to keep it in the vault as the static key `git-HOST`, bound to
/// git for that host (the binding asks for a code). Never written to a file; without a terminal,
/// or for a host a key already answers for, nothing happens.
fn offer_to_vault(asked: &gitcred::Asked) -> Result<()> {
    let (Some(host), Some(user), Some(password)) = (
        asked.host.as_deref(),
        asked.username.as_deref(),
        asked.password.as_deref(),
    ) else {
        return Ok(());
    };
    let Ok(host) = keyward_core::entry::helper_host(host) else {
        return Ok(());
    };
    let secure = match asked.protocol.as_deref() {
        Some("https") => true,
        Some("http") => loopback(&host),
        _ => false,
    };
    let mut p = crate::prompt::Prompter::terminal();
    if !secure || password.is_empty() || !p.interactive() {
        return Ok(());
    }
    let mut client = crate::connect::agent()?;
    let bound = client
        .bindings()?
        .iter()
        .any(|b| b.tool == HelperTool::Git && b.host == host);
    if bound {
        return Ok(());
    }
    let answer = p.line(
        &format!("Keyward: keep the password you typed for {user}@{host} in the vault (git then gets it from Keyward, never from a file)? [y/N]: "),
        "answer",
    )?;
    if !matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
        return Ok(());
    }
    let name: String = format!("git-{}", host.replace([':', '[', ']'], "-"))
        .chars()
        .take(64)
        .collect();
    keyward_core::entry::validate_name(&name)?;
    let code = binding_code(None, &name, "git", &host)?;
    let meta = keyward_agent::protocol::MetaInput {
        purpose: Some(format!("typed into git for {user}@{host}")),
        ..Default::default()
    };
    client.add_static(&name, meta, WireSecret::new(password.to_owned()))?;
    if let Err(e) = client.bind(HelperTool::Git, &host, &name, Some(user), Some(code)) {
        // Not bound (a wrong code): the password is not kept either.
        let _ = client.remove(&name);
        return Err(e.into());
    }
    eprintln!("Keyward: kept as '{name}', bound to git for {host}: git gets it from Keyward from now on (a lease, approved and audited).");
    Ok(())
}

/// Asks for a current authenticator code to bind a key to a tool (a binding decides where the
/// key may go).
pub fn binding_code(
    input_fd: Option<u32>,
    key: &str,
    tool: &str,
    host: &str,
) -> Result<WireSecret> {
    let mut p = crate::prompt::Prompter::new(input_fd)?;
    let code = p.secret(
        &format!("Code from your authenticator app to let {tool} use '{key}' for {host}: "),
        "authenticator code",
    )?;
    Ok(WireSecret::new(
        secrecy::ExposeSecret::expose_secret(&code)
            .trim()
            .to_owned(),
    ))
}

/// Checks that `helper` (`git-credential-keyward`, `docker-credential-keyward`) on PATH is this
/// keyward: the tool runs it by that name.
pub fn helper_on_path(helper: &str) -> Result<()> {
    let exe = std::fs::canonicalize(
        std::env::current_exe().context("cannot tell where keyward is installed")?,
    )?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path)
        .map(|d| d.join(helper))
        .find(|p| p.exists());
    match on_path.as_ref().map(std::fs::canonicalize) {
        Some(Ok(p)) if p == exe => Ok(()),
        Some(_) => bail!(
            "{helper} on PATH ({}) is not this keyward ({}): point it here",
            on_path.as_deref().unwrap_or(std::path::Path::new("?")).display(),
            exe.display()
        ),
        None => bail!(
            "{helper} is not on PATH (scripts/run and the .deb install it): ln -s {} ~/.local/bin/{helper}",
            exe.display()
        ),
    }
}

/// `keyward setup git HOST --key NAME`: binds the key to git for HOST (with a code), and makes
/// git ask Keyward, and only Keyward, for HOST's credentials (in the user's global git config,
/// which git writes atomically).
pub fn setup(input_fd: Option<u32>, host: &str, key: &str, username: Option<&str>) -> Result<()> {
    keyward_core::entry::validate_name(key)?;
    let host = keyward_core::entry::helper_host(host)?;
    if let Some(u) = username {
        keyward_core::entry::helper_username(u)?;
    }
    // git runs `git credential-keyward ARGS`: its own `git` then starts the helper, so the
    // program Keyward sees asking is git. (An absolute helper path with arguments would run
    // through a shell, and `sh -c` is no program one can approve.)
    helper_on_path("git-credential-keyward")?;
    let mut client = crate::connect::agent()?;
    let kind = client.show(key)?.meta.kind;
    if kind == keyward_core::EntryKind::Aws {
        bail!("'{key}' is an AWS key: git gets a static key's lease or an OAuth2 token (AWS CodeCommit: use its own credential helper under keyward exec)");
    }
    let code = binding_code(input_fd, key, "git", &host)?;
    client.bind(HelperTool::Git, &host, key, username, Some(code))?;
    let scheme = if loopback(&host) { "http" } else { "https" };
    let section = format!("credential.{scheme}://{host}.helper");
    let git = |args: &[&str]| -> Result<()> {
        let st = std::process::Command::new("git")
            .args(args)
            .status()
            .context("cannot run git")?;
        if !st.success() {
            bail!("git config failed ({st})");
        }
        Ok(())
    };
    // An empty helper first: helpers configured more widely (`store` writes passwords in plain
    // text) are not asked for this host.
    git(&["config", "--global", "--replace-all", &section, ""])?;
    git(&["config", "--global", "--add", &section, "keyward"])?;
    println!("git now asks Keyward for {scheme}://{host} credentials (key '{key}', bound in the vault; the helper is in your global git config).");
    Ok(())
}
