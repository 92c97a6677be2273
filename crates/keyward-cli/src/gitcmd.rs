//! git: `keyward git-credential … get|store|erase` (also run as `git-credential-keyward`), the
//! credential helper `keyward setup git HOST --key NAME` configures for one host.
//!
//! `get` answers only for the host it was set up for, over HTTPS (plain HTTP only to loopback),
//! with a lease of a static key the user allowed to be leased, or an OAuth2 access token, and
//! `password_expiry_utc` so git forgets it in time. `store` writes nothing anywhere: the password
//! stays where it came from. `erase` has nothing to erase. Each request passes the approval gate
//! with git as the client.

use std::io::{Read, Write};

use anyhow::{bail, Context, Result};
use keyward_core::EntryKind;
use keyward_shell::gitcred;

use crate::awscmd::obtain;

/// What a `get` answers with.
struct Found {
    password: zeroize::Zeroizing<String>,
    expires_at: Option<String>,
}

fn unix(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn loopback(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

/// Runs the helper's `action` for key `key`, set up for `host`.
pub fn helper(key: &str, host: &str, username: Option<&str>, action: &str) -> Result<()> {
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .take(gitcred::MAX_INPUT as u64 + 1)
        .read_to_end(&mut input)
        .context("cannot read what git sent")?;
    let asked = gitcred::parse(&input)?;
    match action {
        "get" => {}
        // Never written anywhere: the password the user typed stays theirs to vault
        // (`keyward add static`), and a token Keyward gave needs no storing.
        "store" | "erase" => return Ok(()),
        other => bail!(
            "unknown git credential action '{}': get, store or erase",
            other.escape_default()
        ),
    }
    let asked_host = asked.host.as_deref().unwrap_or_default();
    if !asked_host.eq_ignore_ascii_case(host) {
        // Not ours to answer: git asks its next helper or the user.
        return Ok(());
    }
    match asked.protocol.as_deref() {
        Some("https") => {}
        Some("http") if loopback(host) => {}
        Some(p) => bail!(
            "git asked for a credential for {host} over {}: Keyward answers only over HTTPS (plain HTTP only to this machine)",
            p.escape_default()
        ),
        None => bail!("git asked for a credential without saying the protocol"),
    }
    keyward_core::entry::validate_name(key)?;
    let kind = crate::connect::agent()?.show(key)?.meta.kind;
    let found = match kind {
        EntryKind::Static => {
            let l = obtain(None, key, "static key", |c, _mfa, approval| {
                c.lease_static(key, approval)
            })?;
            Found {
                password: zeroize::Zeroizing::new(l.value.expose().to_owned()),
                expires_at: Some(l.expires_at),
            }
        }
        EntryKind::OAuth2 => {
            let t = obtain(None, key, "OAuth2 key", |c, _mfa, approval| {
                c.cred_oauth2(key, approval)
            })?;
            Found {
                password: zeroize::Zeroizing::new(t.access_token.expose().to_owned()),
                expires_at: t.expires_at,
            }
        }
        EntryKind::Aws => bail!(
            "'{key}' is an AWS key: git gets a static key's lease or an OAuth2 token (AWS CodeCommit: use its own credential helper under keyward exec)"
        ),
    };
    let user = asked.username.as_deref().or(username).unwrap_or("token");
    let text = gitcred::answer(&gitcred::Answer {
        username: user,
        password: &found.password,
        expires_unix: found.expires_at.as_deref().and_then(unix),
    })?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// `keyward setup git HOST --key NAME`: git asks Keyward, and only Keyward, for HOST's
/// credentials (in the user's global git config, which git writes atomically).
pub fn setup(host: &str, key: &str, username: Option<&str>) -> Result<()> {
    keyward_core::entry::validate_name(key)?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !host_ok {
        bail!(
            "'{}' is not a host name (host or host:port)",
            host.escape_default()
        );
    }
    if let Some(u) = username {
        if u.is_empty() || !u.chars().all(|c| c.is_ascii_graphic()) {
            bail!("the user name must be printable, without spaces");
        }
    }
    // git runs `git credential-keyward ARGS`: its own `git` then starts the helper, so the
    // program Keyward sees asking is git. (An absolute helper path with arguments would run
    // through a shell, and `sh -c` is no program one can approve.)
    let exe = std::fs::canonicalize(
        std::env::current_exe().context("cannot tell where keyward is installed")?,
    )?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path)
        .map(|d| d.join("git-credential-keyward"))
        .find(|p| p.exists());
    match on_path.as_ref().map(std::fs::canonicalize) {
        Some(Ok(p)) if p == exe => {}
        Some(_) => bail!(
            "git-credential-keyward on PATH ({}) is not this keyward ({}): point it here",
            on_path.as_deref().unwrap_or(std::path::Path::new("?")).display(),
            exe.display()
        ),
        None => bail!(
            "git-credential-keyward is not on PATH (scripts/run and the .deb install it): ln -s {} ~/.local/bin/git-credential-keyward",
            exe.display()
        ),
    }
    let scheme = if loopback(host) { "http" } else { "https" };
    let section = format!("credential.{scheme}://{host}.helper");
    let mut line = format!("keyward --key {key} --host {host}");
    if let Some(u) = username {
        line.push_str(&format!(" --username {u}"));
    }
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
    git(&["config", "--global", "--add", &section, &line])?;
    println!("git now asks Keyward for {scheme}://{host} credentials (key '{key}'; in your global git config).");
    Ok(())
}
