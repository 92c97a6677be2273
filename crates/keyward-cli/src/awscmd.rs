//! AWS adapters: `cred aws` (credential_process JSON v1), `setup aws` (write the
//! credential_process line) and `import aws` (move plaintext keys from the credentials file into
//! the vault).

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Result};
use keyward_agent::client::{Client, ClientError, Issued};
use keyward_agent::protocol::{ErrorCode, WireSecret};
use keyward_shell::aws::CredentialsFile;
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::connect;
use crate::prompt::{self, Prompter};
use crate::vaultcmd::unlock_with;

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
    let creds = obtain(input_fd, profile, "AWS profile", |c, mfa_code, approval| {
        c.cred_aws(profile, mfa_code, approval)
    })?;
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

/// Asks the agent for `profile`'s credentials with `request(client, mfa_code, approval)` (a
/// typed client call: `Client::cred_aws`, …) until it hands them out: approving the program, unlocking the vault and giving an MFA code on the
/// terminal when there is one, or failing with one line saying what to do when there is none.
/// `what` names the profile in messages ("AWS profile", "OAuth2 key").
pub fn obtain<C>(
    input_fd: Option<u32>,
    profile: &str,
    what: &str,
    request: impl Fn(&mut Client, Option<WireSecret>, Option<String>) -> Result<Issued<C>, ClientError>,
) -> Result<C> {
    keyward_core::entry::validate_name(profile)?;
    obtain_for(input_fd, profile, what, request)
}

/// [`obtain`] for something other than a key name (a credential helper's host: `what` is
/// "registry" or "host"); `profile` is only named in messages.
pub fn obtain_for<C>(
    input_fd: Option<u32>,
    profile: &str,
    what: &str,
    request: impl Fn(&mut Client, Option<WireSecret>, Option<String>) -> Result<Issued<C>, ClientError>,
) -> Result<C> {
    let mut client = connect::agent()?;
    let mut mfa_code: Option<WireSecret> = None;
    let mut unlock_tries = 0;
    let mut approval: Option<String> = None;
    loop {
        match request(&mut client, mfa_code.clone(), approval.clone()) {
            Ok(Issued::ApprovalNeeded(info)) => {
                // Never from --input-fd: the program that ran us would answer its own question.
                let p = Prompter::terminal();
                if approval.is_some() || !p.available() {
                    bail!(
                        "{} is not approved for {what} '{profile}': run it from a terminal to approve it there, approve it in the Keyward app, or grant it with `keyward grants allow`",
                        info.client
                    );
                }
                let (decision, code) = crate::grantscmd::ask(p, &info)?;
                client.approve(&info.id, decision, None, code.map(WireSecret::new))?;
                if decision == keyward_agent::approvals::Decision::Deny {
                    bail!(
                        "denied: {} gets no credentials for {what} '{profile}'",
                        info.client
                    );
                }
                approval = Some(info.id);
            }
            Ok(Issued::Credential(c)) => return Ok(c),
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

/// Prints what pointing profiles at Keyward did.
fn print_pointed(pointed: &keyward_shell::aws::Pointed, profiles: &[&str]) {
    let path = pointed.config.display();
    if pointed.changed {
        for profile in profiles {
            println!("AWS profile '{profile}' now gets credentials from Keyward ({path}).");
        }
    } else {
        println!("{path} already points these profiles at Keyward.");
    }
    for w in &pointed.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(b) = &pointed.backup {
        println!("Previous config saved as {}.", b.display());
    }
}

/// `keyward setup aws NAME`.
pub fn setup(name: &str, profile: Option<&str>) -> Result<()> {
    let pointed = keyward_shell::aws::setup(&mut connect::agent()?, name, profile)?;
    print_pointed(&pointed, &[profile.unwrap_or(name)]);
    Ok(())
}

/// `keyward import aws`.
pub fn import(
    input_fd: Option<u32>,
    only: &[String],
    remove_plaintext: Option<bool>,
    sts_endpoint: Option<String>,
) -> Result<()> {
    let file = CredentialsFile::read()?;
    let path = file.path.display().to_string();
    let done = file.import(&mut connect::agent()?, only, sts_endpoint)?;
    for name in &done.imported {
        println!("Imported '{name}'.");
    }
    for (name, why) in &done.skipped {
        println!("Skipped '{}': {why}.", name.escape_default());
    }
    if done.imported.is_empty() {
        println!("Nothing imported.");
        return Ok(());
    }
    let pairs: Vec<(String, String)> = done
        .imported
        .iter()
        .map(|n| (n.clone(), n.clone()))
        .collect();
    let profiles: Vec<&str> = done.imported.iter().map(String::as_str).collect();
    print_pointed(&keyward_shell::aws::point_profiles(&pairs)?, &profiles);

    let mut prompter = Prompter::new(input_fd)?;
    let remove = match remove_plaintext {
        Some(v) => Some(v),
        None if prompter.available() => Some(prompter.confirm(&format!(
            "Remove the imported plaintext keys from {path}? (a 0600 backup is kept)"
        ))?),
        None => None,
    };
    match remove {
        Some(true) => {
            let backup = file.remove_plaintext(&done.imported)?;
            println!(
                "Removed {} plaintext key(s) from {path}.",
                done.imported.len()
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
                "The plaintext keys stay in {path} and the AWS CLI still prefers them: run `keyward import aws --remove-plaintext` to remove them."
            );
        }
    }
    Ok(())
}
