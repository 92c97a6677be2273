//! AWS adapters: `cred aws` (credential_process JSON v1), `setup aws` (write the
//! credential_process line) and `import aws` (move plaintext keys from the credentials file into
//! the vault).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use keyward_agent::client::ClientError;
use keyward_agent::protocol::{ErrorCode, Reply, Request, WireSecret};
use keyward_core::EntryKind;
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::connect;
use crate::prompt::{self, Prompter};
use crate::vaultcmd::{call, unlock_with};
use keyward_core::awsfiles;

/// How long `cred aws` waits for the user to unlock on the terminal, unless
/// `KEYWARD_UNLOCK_WAIT` (seconds) says otherwise.
const UNLOCK_WAIT: Duration = Duration::from_secs(120);

fn unlock_wait() -> Duration {
    std::env::var("KEYWARD_UNLOCK_WAIT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(UNLOCK_WAIT)
}

/// AWS credential_process output, version 1.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessOutput<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: &'a str,
}

/// Writes a line to the controlling terminal, if there is one.
pub fn tell_tty(msg: &str) {
    if let Ok(mut tty) = std::fs::OpenOptions::new().write(true).open("/dev/tty") {
        let _ = writeln!(tty, "{msg}");
    }
}

/// `keyward cred aws --profile NAME`.
pub fn cred(input_fd: Option<u32>, profile: &str) -> Result<()> {
    let reply = obtain(input_fd, profile, "AWS profile", |mfa_code, approval| {
        Request::CredAws {
            profile: profile.to_owned(),
            mfa_code,
            approval,
        }
    })?;
    let Reply::AwsCredentials(creds) = reply else {
        bail!("the agent gave an unexpected answer");
    };
    let out = ProcessOutput {
        version: 1,
        access_key_id: &creds.access_key_id,
        secret_access_key: creds.secret_access_key.expose(),
        session_token: creds.session_token.expose(),
        expiration: &creds.expiration,
    };
    let json = zeroize::Zeroizing::new(serde_json::to_string(&out)?);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(json.as_bytes())?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

/// Asks the agent for `profile`'s credentials with `request(mfa_code, approval)` until it
/// hands them out: approving the program, unlocking the vault and giving an MFA code on the
/// terminal when there is one, or failing with one line saying what to do when there is none.
/// `what` names the profile in messages ("AWS profile", "OAuth2 key").
pub fn obtain(
    input_fd: Option<u32>,
    profile: &str,
    what: &str,
    request: impl Fn(Option<WireSecret>, Option<String>) -> Request,
) -> Result<Reply> {
    keyward_core::entry::validate_name(profile)?;
    let mut client = connect::agent()?;
    let mut mfa_code: Option<WireSecret> = None;
    let mut unlock_tries = 0;
    let mut approval: Option<String> = None;
    loop {
        match client.call(request(mfa_code.clone(), approval.clone())) {
            Ok(Reply::ApprovalNeeded { approval: info }) => {
                // Never from --input-fd: the program that ran us would answer its own question.
                let p = Prompter::terminal();
                if approval.is_some() || !p.available() {
                    bail!(
                        "{} is not approved for {what} '{profile}': run it from a terminal to approve it there, approve it in the Keyward app, or grant it with `keyward grants allow`",
                        info.client
                    );
                }
                let (decision, code) = crate::grantscmd::ask(p, &info)?;
                client.call(Request::Approve {
                    id: info.id.clone(),
                    decision,
                    token: None,
                    code: code.map(WireSecret::new),
                })?;
                if decision == keyward_agent::approvals::Decision::Deny {
                    bail!(
                        "denied: {} gets no credentials for {what} '{profile}'",
                        info.client
                    );
                }
                approval = Some(info.id);
            }
            Ok(reply) => return Ok(reply),
            Err(ClientError::Agent(e)) if e.code == ErrorCode::Locked => {
                let mut p = Prompter::new(input_fd)?;
                if !p.available() || unlock_tries >= 3 {
                    bail!("the vault is locked: run `keyward unlock` in a terminal (or unlock in the Keyward app), then retry");
                }
                unlock_tries += 1;
                tell_tty(&format!(
                    "Keyward: {what} '{profile}' was asked for and the vault is locked. Unlock to continue (Ctrl-C to cancel)."
                ));
                let res = prompt::with_timeout(unlock_wait(), move || {
                    unlock_with(&mut p, crate::vaultcmd::FactorKind::Totp)
                });
                match res {
                    Ok(_) => {}
                    Err(e) => match e.downcast_ref::<ClientError>() {
                        Some(ClientError::Agent(a)) if a.code == ErrorCode::WrongCredentials => {
                            tell_tty(&format!("Keyward: {}", a.message));
                        }
                        _ => return Err(e),
                    },
                }
                client = connect::agent()?;
            }
            Err(ClientError::Agent(e))
                if e.code == ErrorCode::MfaRequired && mfa_code.is_none() =>
            {
                let mut p = Prompter::new(input_fd)?;
                if !p.available() {
                    bail!("{}", e.message);
                }
                let code = p.secret(&format!("MFA code for {what} '{profile}': "), "MFA code")?;
                mfa_code = Some(WireSecret::new(code.expose_secret().trim().to_owned()));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The `credential_process` command line for a key, running this executable.
fn process_command(name: &str) -> Result<String> {
    let exe = std::env::current_exe().context("cannot find the keyward executable")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    Ok(awsfiles::credential_process_command(&exe, name)?)
}

fn read_or_empty(path: &Path) -> Result<String> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b).map_err(|_| anyhow!("{} is not UTF-8 text", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// Sets credential_process for each (profile, key) in the config file in one atomic write.
fn write_process_lines(pairs: &[(String, String)]) -> Result<()> {
    let path = awsfiles::config_path()?;
    let old = read_or_empty(&path)?;
    let mut text = old.clone();
    for (profile, name) in pairs {
        text = awsfiles::set_credential_process(&text, profile, &process_command(name)?)?;
    }
    if text == old {
        println!(
            "{} already points these profiles at Keyward.",
            path.display()
        );
        return Ok(());
    }
    let backup = awsfiles::write_atomic_with_backup(&path, &text, awsfiles::mode_to_keep(&path))?;
    for (profile, _) in pairs {
        println!(
            "AWS profile '{profile}' now gets credentials from Keyward ({}).",
            path.display()
        );
        let conflicts = awsfiles::conflicting_keys(&text, profile);
        if !conflicts.is_empty() {
            eprintln!(
                "warning: profile '{profile}' in {} also sets {}; remove them so the AWS CLI uses Keyward",
                path.display(),
                conflicts.join(", ")
            );
        }
    }
    if let Some(b) = backup {
        println!("Previous config saved as {}.", b.display());
    }
    Ok(())
}

/// `keyward setup aws NAME`.
pub fn setup(name: &str, profile: Option<&str>) -> Result<()> {
    keyward_core::entry::validate_name(name)?;
    let profile = profile.unwrap_or(name);
    keyward_core::entry::validate_name(profile)
        .map_err(|_| anyhow!("invalid profile name '{}'", profile.escape_default()))?;
    let entry = crate::connect::agent()?.show(name)?;
    if entry.kind != EntryKind::Aws {
        bail!("'{name}' is a {} key, not an AWS key", entry.kind.as_str());
    }
    write_process_lines(&[(profile.to_owned(), name.to_owned())])?;
    let creds_path = awsfiles::credentials_path()?;
    let creds_text = read_or_empty(&creds_path)?;
    let (plain, _) = awsfiles::parse_credentials(&creds_text);
    if plain.iter().any(|p| p.name == profile) {
        eprintln!(
            "warning: {} still holds a plaintext key for profile '{profile}', which the AWS CLI prefers over Keyward: run `keyward import aws --profile {profile} --remove-plaintext`",
            creds_path.display()
        );
    }
    Ok(())
}

/// `keyward import aws`.
pub fn import(
    input_fd: Option<u32>,
    only: &[String],
    remove_plaintext: Option<bool>,
    sts_endpoint: Option<String>,
) -> Result<()> {
    let path = awsfiles::credentials_path()?;
    let text = match std::fs::read(&path) {
        Ok(b) => {
            String::from_utf8(b).map_err(|_| anyhow!("{} is not UTF-8 text", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "no AWS credentials file at {}: nothing to import",
                path.display()
            )
        }
        Err(e) => bail!("cannot read {}: {e}", path.display()),
    };
    let (profiles, incomplete) = awsfiles::parse_credentials(&text);
    for name in only {
        if !profiles.iter().any(|p| &p.name == name) {
            bail!(
                "profile '{name}' has no long-lived key in {}",
                path.display()
            );
        }
    }
    for name in &incomplete {
        if only.is_empty() || only.contains(name) {
            println!("Skipped '{name}': it has no access key id and secret pair.");
        }
    }
    let mut imported: Vec<String> = Vec::new();
    for p in profiles
        .iter()
        .filter(|p| only.is_empty() || only.contains(&p.name))
    {
        if let Some(why) = p.import_problem() {
            println!("Skipped '{}': {why}.", p.name.escape_default());
            continue;
        }
        let res = call(Request::import_aws(p, &path, sts_endpoint.clone()));
        match res {
            Ok(_) => {
                println!("Imported '{}'.", p.name);
                imported.push(p.name.clone());
            }
            Err(e) => println!("Skipped '{}': {e}", p.name),
        }
    }
    if imported.is_empty() {
        println!("Nothing imported.");
        return Ok(());
    }
    let pairs: Vec<(String, String)> = imported.iter().map(|n| (n.clone(), n.clone())).collect();
    write_process_lines(&pairs)?;

    let mut prompter = Prompter::new(input_fd)?;
    let remove = match remove_plaintext {
        Some(v) => Some(v),
        None if prompter.available() => Some(prompter.confirm(&format!(
            "Remove the imported plaintext keys from {}? (a 0600 backup is kept)",
            path.display()
        ))?),
        None => None,
    };
    match remove {
        Some(true) => {
            let names: Vec<&str> = imported.iter().map(String::as_str).collect();
            let new_text = awsfiles::remove_profiles(&text, &names);
            let backup = awsfiles::write_atomic_with_backup(&path, &new_text, 0o600)?;
            println!(
                "Removed {} plaintext key(s) from {}.",
                imported.len(),
                path.display()
            );
            if let Some(b) = backup {
                println!(
                    "Backup (mode 0600, still holds the plaintext keys): {} — delete it once Keyward works for you.",
                    b.display()
                );
            }
        }
        Some(false) | None => {
            println!(
                "The plaintext keys stay in {} and the AWS CLI still prefers them: run `keyward import aws --remove-plaintext` to remove them.",
                path.display()
            );
        }
    }
    Ok(())
}
