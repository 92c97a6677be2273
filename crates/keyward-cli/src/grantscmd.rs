//! Per-client approval at the terminal (`cred aws` asking the user) and `keyward grants`.

use std::time::Duration;

use anyhow::{bail, Result};
use keyward_agent::approvals::{ApprovalInfo, ClientId, Decision};

use crate::prompt::{self, Prompter};

fn hours_text(secs: u64) -> String {
    if secs >= 3600 && secs % 3600 == 0 {
        format!("{} h", secs / 3600)
    } else {
        format!("{} min", secs.div_ceil(60))
    }
}

/// The question shown on the terminal: who asks, through which processes, for what.
pub fn describe(info: &ApprovalInfo) -> String {
    let chain: Vec<String> = info
        .chain
        .iter()
        .map(|p| {
            let exe = p.exe.as_deref().unwrap_or("?");
            // Pid 0: the command keyward exec starts once this is answered.
            let pid = match p.pid {
                0 => "to be started by keyward exec".to_owned(),
                n => n.to_string(),
            };
            match &p.script {
                Some(s) => format!("{exe} {s} ({pid})"),
                None => format!("{exe} ({pid})"),
            }
        })
        .collect();
    let what = match info.kind {
        keyward_core::EntryKind::Static => format!(
            "a lease of static key '{}' (its value itself, counted out for {})",
            info.profile,
            info.ttl_secs
                .map_or_else(|| "as issued".to_owned(), hours_text)
        ),
        keyward_core::EntryKind::OAuth2 => format!(
            "an access token of OAuth2 key '{}' (valid as long as the server issues it)",
            info.profile
        ),
        keyward_core::EntryKind::Aliyun => match info.ttl_secs {
            Some(secs) => format!(
                "an STS token of Alibaba Cloud key '{}' (valid {})",
                info.profile,
                hours_text(secs)
            ),
            None => format!(
                "Alibaba Cloud key '{}' itself (its AccessKey: the key has no RAM role)",
                info.profile
            ),
        },
        keyward_core::EntryKind::Aws => format!(
            "AWS profile '{}' (credentials valid {})",
            info.profile,
            info.ttl_secs
                .map_or_else(|| "as issued".to_owned(), hours_text)
        ),
    };
    let mut text = format!(
        "Keyward: {} asks for {what}.\n  process chain: {}",
        info.client,
        chain.join(" <- ")
    );
    if let Some(why) = &info.client.unvouched {
        text.push_str(&format!(
            "\n  Only this request can be allowed: {why}, so its name does not say which code runs."
        ));
    }
    text
}

/// Asks the user on the terminal what to do with `info`; with the answer, the authenticator
/// code an allow for hours or until lock needs when the vault's setting says so.
pub fn ask(p: Prompter, info: &ApprovalInfo) -> Result<(Decision, Option<String>)> {
    let question = describe(info);
    let needs_code = info.standing_needs_code;
    // The agent refuses a standing answer for such a program: offer only what it will take.
    let once_only = info.client.unvouched.is_some();
    let wait = Duration::from_secs(info.expires_in_secs);
    prompt::with_timeout(wait, move || {
        let mut p = p;
        crate::awscmd::tell_tty(&question);
        let question = if once_only {
            "Allow it? [o]nce, [d]eny: "
        } else {
            "Allow it? [o]nce, for [h]ours, until [l]ock, [d]eny: "
        };
        let decision = loop {
            let answer = p.line(question, "approval")?;
            match answer.to_ascii_lowercase().as_str() {
                "o" | "once" => break Decision::Once,
                "d" | "deny" | "n" | "no" => break Decision::Deny,
                "h" | "hours" | "l" | "lock" if once_only => crate::awscmd::tell_tty(
                    "Keyward: this program can only be allowed once: answer o or d.",
                ),
                "l" | "lock" => break Decision::UntilLock,
                "h" | "hours" => {
                    let h = p.line("For how many hours? [1]: ", "hours")?;
                    let h = if h.is_empty() {
                        Ok(1)
                    } else {
                        h.parse::<u32>()
                    };
                    match h {
                        Ok(h) if (1..=keyward_agent::approvals::MAX_GRANT_HOURS).contains(&h) => {
                            break Decision::Hours(h)
                        }
                        _ => crate::awscmd::tell_tty(
                            "Keyward: enter a number of hours from 1 to 168.",
                        ),
                    }
                }
                _ if once_only => crate::awscmd::tell_tty("Keyward: answer o or d."),
                _ => crate::awscmd::tell_tty("Keyward: answer o, h, l or d."),
            }
        };
        let standing = matches!(decision, Decision::Hours(_) | Decision::UntilLock);
        if !(standing && needs_code) {
            return Ok((decision, None));
        }
        let code = p.line(
            "Standing grants need a code: current code from your authenticator app: ",
            "authenticator code",
        )?;
        Ok((decision, Some(code)))
    })
}

/// `keyward grants [--json]`.
pub fn list(json: bool) -> Result<()> {
    let mut client = crate::connect::agent()?;
    let grants = client.grants()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&grants)?);
        return Ok(());
    }
    if grants.is_empty() {
        println!("No grants: programs are asked about the first time they want credentials.");
    } else {
        println!("{:<12}  {:<16}  {:<25}  PROGRAM", "ID", "PROFILE", "UNTIL");
        for g in grants {
            println!(
                "{:<12}  {:<16}  {:<25}  {}",
                g.id,
                g.profile,
                g.expires.as_deref().unwrap_or("vault locks"),
                g.client
            );
        }
    }
    let leases = keyward_shell::leases::leases_out(&mut client)?;
    if !leases.is_empty() {
        println!();
        println!("Leases out (a lease cannot be taken back: if one may have leaked, replace the key at its provider):");
        println!(
            "{:<16}  {:<8}  {:<25}  PROGRAM",
            "KEY", "HOW", "COUNTED OUT UNTIL"
        );
        for l in leases {
            println!(
                "{:<16}  {:<8}  {:<25}  {}",
                l.key, l.via, l.expires_at, l.client
            );
        }
    }
    Ok(())
}

/// `keyward grants revoke ID`.
pub fn revoke(id: &str) -> Result<()> {
    crate::connect::agent()?.grant_revoke(id)?;
    println!("Revoked grant {id}.");
    Ok(())
}

/// `keyward grants allow --exe PATH [--script PATH] --profile NAME [--hours N]`: asks for a
/// current code from the authenticator app (a program running as you has none).
pub fn allow(
    input_fd: Option<u32>,
    exe: &str,
    script: Option<String>,
    profile: &str,
    hours: Option<u32>,
) -> Result<()> {
    let exe = std::path::Path::new(exe);
    if !exe.is_absolute() {
        bail!("--exe needs an absolute path, as the program's /proc/PID/exe shows it");
    }
    let client = ClientId {
        exe: exe.to_string_lossy().into_owned(),
        script,
        unvouched: None,
    };
    let mut p = Prompter::new(input_fd)?;
    let code = p.secret(
        &format!("Code from your authenticator app to let {client} use '{profile}': "),
        "authenticator code",
    )?;
    let code = keyward_agent::protocol::WireSecret::new(
        secrecy::ExposeSecret::expose_secret(&code)
            .trim()
            .to_owned(),
    );
    let grants = crate::connect::agent()?.grant_allow(client, profile, hours, code)?;
    for g in grants {
        println!(
            "Granted {} profile '{}' until {} (id {}).",
            g.client,
            g.profile,
            g.expires.as_deref().unwrap_or("the vault locks"),
            g.id
        );
    }
    Ok(())
}
