//! Vault-level commands: init, unlock, lock, status, factors, audit, and the agent itself.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Result};
use keyward_agent::activity::ActivityRecord;
use keyward_agent::client::ClientError;
use keyward_agent::protocol::{
    ErrorCode, FactorInput, Initialized, KdfChoice, KeystoreChoice, NewVault, Unlocked, WireSecret,
};
use keyward_core::factors::{self, TotpSetup};
use keyward_shell::ceremony;
use secrecy::ExposeSecret;

use crate::connect;
use crate::prompt::Prompter;

fn wire(s: &secrecy::SecretString) -> WireSecret {
    WireSecret::new(s.expose_secret().to_owned())
}

/// Renders a QR code for the terminal with half-block characters.
fn qr_text(data: &str) -> Option<String> {
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build(),
    )
}

/// `keyward init`.
pub fn init(
    input_fd: Option<u32>,
    file_keystore: bool,
    kdf_memory_mib: Option<u32>,
    kdf_iterations: Option<u32>,
) -> Result<()> {
    let mut p = Prompter::new(input_fd)?;
    let s = connect::agent()?.status()?;
    if s.vault {
        bail!(
            "a vault already exists ({}): `keyward unlock` opens it",
            s.catalog
        );
    }
    let interactive = p.interactive();
    let passphrase = loop {
        let first = p.secret("Choose a passphrase: ", "passphrase")?;
        if let Err(e) = factors::check_passphrase_strength(&first, &[]) {
            if interactive {
                eprintln!("{e}");
                continue;
            }
            return Err(e.into());
        }
        let again = p.secret("Repeat the passphrase: ", "passphrase confirmation")?;
        if again.expose_secret() != first.expose_secret() {
            if interactive {
                eprintln!("The two passphrases differ; try again.");
                continue;
            }
            bail!("the two passphrases differ");
        }
        break first;
    };

    let totp = TotpSetup::generate("keyward")?;
    let url = totp.otpauth_url();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nSecond factor: add Keyward to your authenticator app."
    )?;
    if let Some(qr) = qr_text(url.expose_secret()) {
        writeln!(out, "{qr}")?;
    }
    writeln!(
        out,
        "Or enter this secret by hand: {}",
        totp.secret_base32().expose_secret()
    )?;
    writeln!(out, "otpauth URL: {}", url.expose_secret())?;
    writeln!(
        out,
        "(TOTP is checked on every unlock and rate-limited; its seed is stored on this machine, sealed by your passphrase.)\n"
    )?;
    out.flush()?;
    drop(out);

    let kdf = kdf_memory_mib.map(|m| KdfChoice {
        memory_mib: m,
        iterations: kdf_iterations.unwrap_or(2),
    });
    if kdf.is_some_and(|k| k.memory_mib < 64) {
        eprintln!("warning: Argon2id memory below 64 MiB makes the passphrase cheaper to guess; use this only for tests");
    }
    let mut attempts = 0;
    let reply = loop {
        attempts += 1;
        let code = p.secret("Code shown by the app: ", "TOTP code")?;
        if !interactive {
            eprintln!("Deriving the vault key…");
        }
        let keystore = match file_keystore {
            true => KeystoreChoice::File,
            false => KeystoreChoice::Keychain,
        };
        let res = connect::agent()?.init(NewVault {
            passphrase: wire(&passphrase),
            totp_secret: wire(&totp.secret_base32()),
            totp_code: wire(&code),
            keystore,
            kdf,
            unlock: false,
            window: false,
        });
        match res {
            Err(ClientError::Agent(e))
                if e.code == ErrorCode::WrongCredentials && interactive && attempts < 3 =>
            {
                eprintln!("{}", e.message);
            }
            other => break other?,
        }
    };
    let Initialized {
        recovery_codes,
        kdf_memory_mib,
        kdf_iterations,
        ..
    } = reply;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Vault created (Argon2id {kdf_memory_mib} MiB × {kdf_iterations} passes). Run `keyward unlock` to open it.")?;
    writeln!(out, "\nRecovery codes — each opens the vault once with your passphrase if you lose your authenticator.")?;
    writeln!(
        out,
        "Store them offline now; they will not be shown again:\n"
    )?;
    for (i, c) in recovery_codes.iter().enumerate() {
        writeln!(out, "  {:>2}. {}", i + 1, c.expose())?;
    }
    writeln!(out)?;
    out.flush()?;
    drop(out);
    if interactive {
        p.line(
            "Press Enter once you have stored the recovery codes. ",
            "confirmation",
        )?;
    }
    Ok(())
}

/// Which second factor to unlock with.
#[derive(Clone, Copy)]
pub enum FactorKind {
    /// Authenticator app code.
    Totp,
    /// One-time recovery code.
    Recovery,
    /// FIDO2 security key.
    Fido2,
}

/// Prompts for both factors and unlocks; shared by `unlock` and `cred` when locked.
pub fn unlock_with(p: &mut Prompter, kind: FactorKind) -> Result<Unlocked> {
    let passphrase = p.secret("Keyward passphrase: ", "passphrase")?;
    let factor = match kind {
        FactorKind::Recovery => FactorInput::Recovery {
            code: wire(&p.secret("Recovery code: ", "recovery code")?),
        },
        FactorKind::Totp => FactorInput::Totp {
            code: wire(&p.secret("Authenticator code: ", "TOTP code")?),
        },
        FactorKind::Fido2 => {
            let mut device = keyward_authenticator::open()?;
            let interactive = p.interactive();
            ceremony::unlock_factor(&keyward_shell::launch::agent, device.as_mut(), || {
                if interactive {
                    eprintln!("Touch your security key…");
                }
            })?
        }
    };
    Ok(connect::agent()?.unlock(wire(&passphrase), factor, false)?)
}

/// `keyward factor add-fido2`.
pub fn factor_add_fido2(input_fd: Option<u32>, label: &str) -> Result<()> {
    let mut p = Prompter::new(input_fd)?;
    let mut device = keyward_authenticator::open()?;
    let passphrase = p.secret("Keyward passphrase: ", "passphrase")?;
    let interactive = p.interactive();
    let f = ceremony::enrol(
        &keyward_shell::launch::agent,
        device.as_mut(),
        wire(&passphrase),
        label,
        || -> Result<_> { Ok(Some(p.secret("Security key PIN: ", "security key PIN")?)) },
        || {
            if interactive {
                eprintln!("Touch your security key, then touch it again to confirm…");
            }
        },
    )?;
    print_enrolled(&[f]);
    Ok(())
}

/// `keyward unlock`.
pub fn unlock(input_fd: Option<u32>, kind: FactorKind) -> Result<()> {
    let mut p = Prompter::new(input_fd)?;
    let s = connect::agent()?.status()?;
    if !s.vault {
        bail!("no vault yet: run `keyward init` to create one");
    }
    if !s.locked {
        println!("Already unlocked.");
        return Ok(());
    }
    let u = unlock_with(&mut p, kind)?;
    println!(
        "Unlocked. Locks after {} of inactivity (`keyward lock` locks now).",
        humantime::format_duration(Duration::from_secs(u.auto_lock_secs))
    );
    if let Some(left) = u.recovery_codes_left {
        println!("A recovery code was used; {left} left. Enroll a new authenticator now with `keyward factor add-totp`.");
    }
    Ok(())
}

/// `keyward lock`.
pub fn lock() -> Result<()> {
    match connect::existing()? {
        None => println!("Locked (no agent running)."),
        Some(mut c) => {
            c.lock()?;
            println!("Locked.");
        }
    }
    Ok(())
}

/// `keyward status`.
/// Exits 0 when every key is ok, 1 when one is due soon, 2 when one is overdue, expired or
/// unused (for scripts and shell prompts); see [`status_code`].
pub fn status(json: bool) -> Result<u8> {
    let s = connect::agent()?.status()?;
    let code = status_code(&s.keys);
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(code);
    }
    print_status(&s);
    Ok(code)
}

/// What `keyward status` exits with for these keys.
pub fn status_code(k: &keyward_agent::protocol::KeyStates) -> u8 {
    if k.overdue + k.expired + k.unused > 0 {
        2
    } else if k.due_soon > 0 {
        1
    } else {
        0
    }
}

fn print_policy(p: &keyward_agent::protocol::PolicyInfo) {
    match &p.sha256 {
        Some(sha) => {
            let rules: Vec<&str> = p.rules.iter().map(|r| r.name.as_str()).collect();
            let rules = match rules.len() {
                0 => "defaults only".to_owned(),
                n => format!("{n} rule(s): {}", rules.join(", ")),
            };
            println!(
                "Policy:   {} (sha256 {}, {rules}), in force since {}",
                p.path,
                sha.get(..16).unwrap_or(sha),
                p.since.as_deref().unwrap_or("-")
            );
        }
        None if p.unusable => println!(
            "Policy:   {} CANNOT BE USED: nothing is issued until it is fixed",
            p.path
        ),
        None => println!(
            "Policy:   none set by an administrator ({} does not exist)",
            p.path
        ),
    }
    if let Some(why) = &p.refused {
        let kept = if p.unusable {
            ""
        } else {
            "; the last good policy stays in force"
        };
        println!("          refused: {why}{kept}");
    }
}

fn print_status(s: &keyward_agent::protocol::StatusInfo) {
    if !s.vault {
        println!("No vault yet: run `keyward init`.");
        println!("Agent: pid {} (catalog {})", s.agent_pid, s.catalog);
        print_policy(&s.policy);
        return;
    }
    println!("Vault:    {}", if s.locked { "locked" } else { "unlocked" });
    println!(
        "Keystore: {}",
        match s.keystore.as_deref() {
            Some("file") => "catalog file (explicit fallback: no OS keychain protection)",
            _ => "OS keychain",
        }
    );
    let k = &s.keys;
    let counts: Vec<String> = [
        (k.ok, "ok"),
        (k.due_soon, "due soon"),
        (k.overdue, "overdue"),
        (k.expired, "expired"),
        (k.unused, "unused"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, w)| format!("{n} {w}"))
    .collect();
    match counts.is_empty() {
        true => println!("Keys:     none"),
        false => println!("Keys:     {} ({})", s.entries, counts.join(", ")),
    }
    for l in &k.attention {
        let blocked = match l.standing.blocked {
            true => format!(" — BLOCKED: rotate it: keyward rotate {}", l.meta.name),
            false => String::new(),
        };
        println!(
            "  {:<22} {:<9} {}{blocked}",
            l.meta.name,
            crate::keys::state_word(l.standing.state),
            l.standing.reason.as_deref().unwrap_or("")
        );
    }
    print_policy(&s.policy);
    for f in &s.forwarding {
        let behind = s.audit_head - f.sent_seq;
        let state = match (&f.error, behind) {
            (Some(e), _) => format!("{behind} record(s) waiting: {e}"),
            (None, 0) => "up to date".to_owned(),
            (None, n) => format!("{n} record(s) on their way"),
        };
        println!(
            "Audit:    forwarded to {} up to #{} of #{} ({state})",
            f.target, f.sent_seq, s.audit_head
        );
    }
    match s.locks_in_secs {
        Some(left) => println!(
            "Auto-lock: in {} (after {} idle)",
            humantime::format_duration(Duration::from_secs(left)),
            humantime::format_duration(Duration::from_secs(s.auto_lock_secs))
        ),
        None => println!(
            "Auto-lock: after {} idle",
            humantime::format_duration(Duration::from_secs(s.auto_lock_secs))
        ),
    }
    if let Some(on) = s.grants_need_code {
        println!(
            "Grants:   {}",
            if on {
                "allowing a program for hours or until lock asks for an authenticator code"
            } else {
                "allowing a program for hours or until lock asks for no code (`keyward settings grants-need-code on`)"
            }
        );
    }
    if s.unlock_wait_secs > 0 {
        println!(
            "Unlock attempts paused for {} s after failures",
            s.unlock_wait_secs
        );
    }
    println!("Agent:    pid {} v{}", s.agent_pid, s.agent_version);
    println!("Catalog:  {}", s.catalog);
    for n in &s.reconciled {
        println!("Repaired at start-up: {}: {}", n.name, n.action);
    }
}

/// `keyward factor list`.
pub fn factor_list(json: bool) -> Result<()> {
    let factors = connect::agent()?.factors()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&factors)?);
        return Ok(());
    }
    let recovery = factors
        .iter()
        .filter(|f| f.kind == keyward_core::vault::SlotKind::Recovery)
        .count();
    println!("{:<14} {:<10} {:<22} LABEL", "ID", "KIND", "ENROLLED");
    for f in factors
        .iter()
        .filter(|f| f.kind != keyward_core::vault::SlotKind::Recovery)
    {
        println!(
            "{:<14} {:<10} {:<22} {}",
            f.id,
            f.kind.as_str(),
            f.created,
            f.label
        );
    }
    println!("Recovery codes left: {recovery}");
    Ok(())
}

/// `keyward factor add-totp`.
pub fn factor_add_totp(input_fd: Option<u32>, label: &str) -> Result<()> {
    let mut p = Prompter::new(input_fd)?;
    let totp = TotpSetup::generate(label)?;
    let url = totp.otpauth_url();
    if let Some(qr) = qr_text(url.expose_secret()) {
        println!("{qr}");
    }
    println!(
        "Or enter this secret by hand: {}",
        totp.secret_base32().expose_secret()
    );
    let passphrase = p.secret("Keyward passphrase: ", "passphrase")?;
    let code = p.secret("Code shown by the new app: ", "TOTP code")?;
    let factors = connect::agent()?.factor_add_totp(
        wire(&passphrase),
        wire(&totp.secret_base32()),
        wire(&code),
        label,
    )?;
    print_enrolled(&factors);
    Ok(())
}

fn print_enrolled(factors: &[keyward_core::vault::FactorInfo]) {
    for f in factors {
        println!(
            "Enrolled {} factor {} ({}).",
            f.kind.as_str(),
            f.id,
            f.label
        );
    }
}

/// `keyward factor new-recovery-codes`.
pub fn factor_new_recovery_codes(input_fd: Option<u32>) -> Result<()> {
    let mut p = Prompter::new(input_fd)?;
    let passphrase = p.secret("Keyward passphrase: ", "passphrase")?;
    let codes = connect::agent()?.recovery_regenerate(wire(&passphrase))?;
    println!("New recovery codes (each works once; the old ones no longer work). Store them offline now:");
    for c in &codes {
        println!("  {}", c.expose());
    }
    Ok(())
}

/// `keyward settings auto-lock`.
pub fn set_auto_lock(after: Duration) -> Result<()> {
    connect::agent()?.set_auto_lock(after.as_secs())?;
    println!(
        "The vault now locks after {} without use.",
        humantime::format_duration(after)
    );
    Ok(())
}

/// `keyward settings grants-need-code on|off`.
pub fn set_grants_need_code(input_fd: Option<u32>, on: bool) -> Result<()> {
    let code = if on {
        None
    } else {
        let mut p = Prompter::new(input_fd)?;
        Some(wire(&p.secret(
            "Current code from your authenticator app: ",
            "authenticator code",
        )?))
    };
    connect::agent()?.set_grants_need_code(on, code)?;
    println!(
        "{}",
        if on {
            "Allowing a program for hours or until lock now asks for an authenticator code too."
        } else {
            "Allowing a program for hours or until lock no longer asks for a code."
        }
    );
    Ok(())
}

/// `keyward factor remove`.
pub fn factor_remove(id: &str) -> Result<()> {
    connect::agent()?.factor_remove(id)?;
    println!("Removed factor {id}.");
    Ok(())
}

/// `keyward audit verify`.
pub fn audit_verify() -> Result<()> {
    let rows = connect::agent()?.audit_verify()?;
    println!("Audit log intact: {rows} records, hash chain verified.");
    Ok(())
}

/// `keyward audit tail`.
pub fn audit_tail(lines: u32, json: bool) -> Result<()> {
    let rows = connect::agent()?.audit_tail(lines)?;
    print_audit(rows, json)
}

/// Prints audit rows, one line each (or JSON).
pub fn print_audit(rows: Vec<ActivityRecord>, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for r in rows {
        let client = r.client.unwrap_or_else(|| "-".to_owned());
        println!(
            "{:>6} {} {:<14} {:<10} {} ({client})",
            r.seq, r.ts, r.action, r.outcome, r.summary
        );
    }
    Ok(())
}

/// What `keyward agent` does.
pub enum AgentVerb {
    /// Foreground.
    Run,
    /// Background.
    Start,
    /// Stop.
    Stop,
}

/// How `keyward agent` runs: its auto-lock, and whether it serves the desktop app.
pub struct AgentMode {
    /// Idle time before auto-lock (command line).
    pub auto_lock: Option<Duration>,
    /// Run for the desktop app (tray icon, window on demand).
    pub tray: bool,
}

/// `keyward agent`.
pub fn agent(verb: AgentVerb, mode: AgentMode) -> Result<()> {
    match verb {
        // The agent is `keyward-agent`, beside this program: this process becomes it (same
        // pid, same process group), so whoever started `keyward agent` holds the agent.
        AgentVerb::Run => {
            use std::os::unix::process::CommandExt;
            let agent = keyward_shell::launch::agent_binary()?;
            let mut cmd = std::process::Command::new(&agent);
            if let Some(d) = mode.auto_lock {
                cmd.arg("--auto-lock")
                    .arg(humantime::format_duration(d).to_string());
            }
            if mode.tray {
                cmd.arg("--tray");
            }
            let e = cmd.exec();
            bail!("cannot run the agent {}: {e}", agent.display())
        }
        AgentVerb::Start => {
            let mut args = Vec::new();
            if mode.tray {
                args.push("--tray".into());
            }
            let pid = connect::agent_with(&args)?.ping()?;
            println!("Agent running (pid {pid}).");
            Ok(())
        }
        // "Stopped" means gone: `stop` waits until the agent has released its lock.
        AgentVerb::Stop => {
            match keyward_shell::launch::stop()? {
                true => println!("Agent stopped."),
                false => println!("No agent running."),
            }
            Ok(())
        }
    }
}
