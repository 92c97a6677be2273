//! Alibaba Cloud adapters: `add aliyun`, `cred aliyun` (the CLI's and SDKs' `External` process
//! output), `setup aliyun` (the External profile in `~/.aliyun/config.json`) and the variables
//! `exec` hands a child.

use std::io::Write;

use anyhow::{bail, Result};
use keyward_agent::protocol::{
    AliyunCredentials, AliyunKeyInput, AliyunMode, MetaInput, WireSecret,
};
use secrecy::ExposeSecret;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::connect;
use crate::prompt::Prompter;

/// How long the detached clean-up watches `~/.aliyun/config.json` after a `cred aliyun`: the
/// SDK saves what it got right after the command exits.
const SCRUB_WATCH: std::time::Duration = std::time::Duration::from_secs(5);

/// Arguments of `keyward add aliyun`.
pub struct AddAliyun {
    /// Name.
    pub name: String,
    /// AccessKey ID (asked for when absent).
    pub access_key_id: Option<String>,
    /// RAM role to assume.
    pub role_arn: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Token lifetime.
    pub duration: Option<std::time::Duration>,
    /// STS endpoint override.
    pub sts_endpoint: Option<String>,
}

/// `keyward add aliyun`.
pub fn add(input_fd: Option<u32>, a: AddAliyun, meta: MetaInput) -> Result<()> {
    keyward_core::entry::validate_name(&a.name)?;
    let mut p = Prompter::new(input_fd)?;
    let access_key_id = match a.access_key_id {
        Some(id) => id,
        None => p.line("Alibaba Cloud AccessKey ID (LTAI…): ", "AccessKey ID")?,
    };
    let secret = p.secret("Alibaba Cloud AccessKey secret: ", "AccessKey secret")?;
    let entry = connect::agent()?
        .add_aliyun(
            &a.name,
            meta,
            AliyunKeyInput {
                access_key_id: access_key_id.trim().to_owned(),
                access_key_secret: WireSecret::new(secret.expose_secret().trim().to_owned()),
                role_arn: a.role_arn,
                region: a.region,
                session_duration_secs: a
                    .duration
                    .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
                sts_endpoint: a.sts_endpoint,
            },
        )?
        .meta;
    let cfg = entry.config.aliyun.as_ref();
    let hint = cfg.map(|c| c.access_key_hint.as_str()).unwrap_or("");
    let name = &entry.name;
    if cfg.is_some_and(|c| c.role_arn.is_none()) {
        println!(
            "Stored Alibaba Cloud key '{name}' ({hint}) without a RAM role: tools would get the AccessKey itself. Give it a role (--role-arn) for short-lived STS tokens. `keyward exec aliyun:{name} -- COMMAND` hands it to one command."
        );
    } else {
        println!(
            "Stored Alibaba Cloud key '{name}' ({hint}). Next: `keyward exec aliyun:{name} -- COMMAND` runs a command with an STS token, or `keyward setup aliyun {name}` points the aliyun CLI at it."
        );
    }
    Ok(())
}

/// The Alibaba Cloud CLI's `External` process output, as the credentials SDK reads it.
#[derive(Serialize)]
struct External<'a> {
    mode: &'a str,
    access_key_id: &'a str,
    access_key_secret: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sts_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration: Option<&'a str>,
}

/// Checks what goes to a tool: printable, no line break or NUL.
fn usable(name: &str, c: &AliyunCredentials) -> Result<()> {
    let visible = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic());
    let token_ok = c
        .security_token
        .as_ref()
        .is_none_or(|t| visible(t.expose()));
    if !visible(&c.access_key_id) || !visible(c.access_key_secret.expose()) || !token_ok {
        bail!("the credentials for '{name}' hold characters a tool cannot use: not handed on");
    }
    if c.mode == AliyunMode::StsToken && c.security_token.is_none() {
        bail!("the agent sent an STS token for '{name}' without its security token");
    }
    Ok(())
}

/// `keyward cred aliyun --profile NAME`.
pub fn cred(input_fd: Option<u32>, profile: &str) -> Result<()> {
    // What an earlier run of the SDK saved goes first.
    if let Err(e) = keyward_shell::aliyun::scrub_saved_credentials() {
        eprintln!("keyward: warning: cannot clean the Alibaba Cloud config: {e}");
    }
    let c = crate::awscmd::obtain(
        input_fd,
        profile,
        "Alibaba Cloud key",
        |c, _mfa, approval| c.cred_aliyun(profile, approval),
    )?;
    usable(profile, &c)?;
    let out = External {
        mode: match c.mode {
            AliyunMode::StsToken => "StsToken",
            AliyunMode::AccessKey => "AK",
        },
        access_key_id: &c.access_key_id,
        access_key_secret: c.access_key_secret.expose(),
        sts_token: c.security_token.as_ref().map(|t| t.expose()),
        expiration: c.expiration.as_deref(),
    };
    let mut text = Zeroizing::new(serde_json::to_string(&out)?);
    text.push('\n');
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    watch_for_saved_credentials();
    Ok(())
}

/// The file one clean-up run holds locked while it watches; its time is when the latest
/// `cred aliyun` asked for one (each run watches until [`SCRUB_WATCH`] after that).
fn scrub_lock() -> Option<std::fs::File> {
    let dir = keyward_shell::launch::socket().ok()?.parent()?.to_owned();
    std::fs::create_dir_all(&dir).ok()?;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join("aliyun-scrub.lock"))
        .ok()
}

/// Whether `file` could be locked: no clean-up run holds it.
fn lock_free(file: &std::fs::File) -> bool {
    use rustix::fs::{flock, FlockOperation};
    flock(file, FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// Asks for the clean-up (`keyward aliyun-scrub`): the SDK saves what it got after this command
/// has exited, so only a process that outlives it can take that out again. One run at a time:
/// while one watches, a new `cred aliyun` only moves its end (the lock file's time) on.
fn watch_for_saved_credentials() {
    let Some(lock) = scrub_lock() else {
        eprintln!("keyward: warning: cannot start the clean-up of ~/.aliyun/config.json: run `keyward cred aliyun` again to clean it");
        return;
    };
    let _ = lock.set_modified(std::time::SystemTime::now());
    if !lock_free(&lock) {
        return;
    }
    drop(lock);
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let spawned = std::process::Command::new(me)
        .arg("aliyun-scrub")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
    if let Err(e) = spawned {
        eprintln!("keyward: warning: cannot start the clean-up of ~/.aliyun/config.json ({e}): run `keyward cred aliyun` again to clean it");
    }
}

/// `keyward aliyun-scrub` (hidden): until [`SCRUB_WATCH`] after the latest `cred aliyun`, takes
/// out what the SDK saves into a Keyward profile of `~/.aliyun/config.json`. A second run
/// while one watches ends at once.
pub fn scrub_watch() -> Result<()> {
    let Some(lock) = scrub_lock() else {
        bail!("cannot open the clean-up's lock file in Keyward's runtime directory");
    };
    if !lock_free(&lock) {
        return Ok(());
    }
    loop {
        // Errors (the file mid-rename, unreadable) are retried until the end.
        let _ = keyward_shell::aliyun::scrub_saved_credentials();
        let asked = lock
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        if asked.elapsed().unwrap_or_default() > SCRUB_WATCH {
            let _ = rustix::fs::flock(&lock, rustix::fs::FlockOperation::Unlock);
            // A `cred aliyun` that moved the time on just now found the lock held and started
            // no run of its own: watch on for it.
            let again = lock.metadata().and_then(|m| m.modified()).ok();
            if again != Some(asked) && lock_free(&lock) {
                continue;
            }
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The variables `exec` gives the child for Alibaba Cloud key `name`.
pub fn child_env(name: &str, c: &AliyunCredentials) -> Result<Vec<(String, Zeroizing<String>)>> {
    usable(name, c)?;
    let mut env = vec![
        (
            "ALIBABA_CLOUD_ACCESS_KEY_ID".to_owned(),
            Zeroizing::new(c.access_key_id.clone()),
        ),
        (
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET".to_owned(),
            Zeroizing::new(c.access_key_secret.expose().to_owned()),
        ),
    ];
    if let Some(t) = &c.security_token {
        env.push((
            "ALIBABA_CLOUD_SECURITY_TOKEN".to_owned(),
            Zeroizing::new(t.expose().to_owned()),
        ));
    }
    if let Some(r) = &c.region {
        env.push((
            "ALIBABA_CLOUD_REGION_ID".to_owned(),
            Zeroizing::new(r.clone()),
        ));
    }
    Ok(env)
}

/// `keyward setup aliyun NAME [--profile P]`.
pub fn setup(name: &str, profile: Option<&str>) -> Result<()> {
    keyward_core::entry::validate_name(name)?;
    let profile = profile.unwrap_or(name);
    keyward_core::entry::validate_name(profile)?;
    let entry = connect::agent()?.show(name)?.meta;
    let Some(cfg) = entry.config.aliyun.as_ref() else {
        bail!(
            "'{name}' is a {} key: `setup aliyun` is for Alibaba Cloud keys",
            entry.kind.as_str()
        );
    };
    if cfg.role_arn.is_none() {
        bail!("'{name}' has no RAM role: through an External profile the Alibaba Cloud SDK would save the AccessKey itself in ~/.aliyun/config.json. Give it a role, or hand it to one command with `keyward exec aliyun:{name} -- COMMAND`");
    }
    let exe = keyward_shell::launch::keyward_binary().ok_or(keyward_shell::ShellError::NoBinary)?;
    let exe = exe.to_string_lossy();
    if exe
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\'')
    {
        bail!("the keyward command's path ({exe}) holds a space or a quote: the Alibaba Cloud CLI splits the command on spaces, so install keyward where its path has none");
    }
    let command = format!("{exe} cred aliyun --profile {name}");
    // Cleaned first, with no backup: a backup would keep what was cleaned out.
    let cleaned = keyward_shell::aliyun::scrub_saved_credentials()?;
    let mut file = keyward_shell::aliyun::AliyunConfigFile::read()?;
    let changed = file.set_external(profile, &command, cfg.region.as_deref())?;
    let path = file.path().display().to_string();
    if !changed && cleaned.is_empty() {
        println!("{path}: profile '{profile}' already gets its credentials from Keyward.");
        return Ok(());
    }
    match file.write()? {
        Some(backup) => println!(
            "{path}: profile '{profile}' now runs `{command}` (the old file is in {}).",
            backup.display()
        ),
        None => println!("{path}: profile '{profile}' now runs `{command}`."),
    }
    println!("The Alibaba Cloud SDK saves what it gets into that profile in plain text; Keyward takes it out again after each use. `keyward exec aliyun:{name} -- COMMAND` writes nothing to disk.");
    Ok(())
}

/// `keyward import aliyun`: vaults the AccessKeys `~/.aliyun/config.json` holds in plain text,
/// then (asked, or `--remove-plaintext`) takes them out of the file: a profile with a role
/// becomes Keyward's External one, one without is removed.
pub fn import(
    input_fd: Option<u32>,
    only: &[String],
    remove_plaintext: Option<bool>,
    sts_endpoint: Option<String>,
) -> Result<()> {
    let mut file = keyward_shell::aliyun::AliyunConfigFile::read()?;
    let path = file.path().display().to_string();
    let (found, other) = file.candidates();
    if let Some(name) = only
        .iter()
        .find(|n| !found.iter().any(|c| &c.name == *n) && !other.iter().any(|(o, _)| o == *n))
    {
        bail!("{path} has no profile '{name}' with an AccessKey");
    }
    let wanted = |n: &str| only.is_empty() || only.iter().any(|o| o == n);
    for (name, why) in other.iter().filter(|(n, _)| wanted(n)) {
        println!("Skipped '{}': {why}.", name.escape_default());
    }
    let mut client = connect::agent()?;
    let mut imported = Vec::new();
    for c in found.into_iter().filter(|c| wanted(&c.name)) {
        let meta = MetaInput {
            purpose: Some(format!("imported from {path}")),
            ..Default::default()
        };
        let input = AliyunKeyInput {
            access_key_id: c.access_key_id.clone(),
            access_key_secret: WireSecret::new(c.access_key_secret.to_string()),
            role_arn: c.role_arn.clone(),
            region: c.region.clone(),
            session_duration_secs: c.duration,
            sts_endpoint: sts_endpoint.clone(),
        };
        match client.add_aliyun(&c.name, meta, input) {
            Ok(_) => {
                println!("Imported '{}'.", c.name);
                imported.push(c);
            }
            Err(e) => println!("Skipped '{}': {e}.", c.name.escape_default()),
        }
    }
    if imported.is_empty() {
        println!("Nothing imported.");
        return Ok(());
    }
    let mut prompter = Prompter::new(input_fd)?;
    let remove = match remove_plaintext {
        Some(v) => v,
        None if prompter.available() => prompter.confirm(&format!(
            "Remove the imported AccessKeys from {path}? (a 0600 backup is kept)"
        ))?,
        None => false,
    };
    if !remove {
        println!("The AccessKeys stay in {path} in plain text: run `keyward import aliyun --remove-plaintext` to take them out.");
        return Ok(());
    }
    let exe = keyward_shell::launch::keyward_binary().ok_or(keyward_shell::ShellError::NoBinary)?;
    let exe = exe.to_string_lossy().into_owned();
    let removed = file.replace_imported(&imported, |n| format!("{exe} cred aliyun --profile {n}"));
    let backup = file.write()?;
    for c in imported.iter().filter(|c| c.role_arn.is_some()) {
        println!("Profile '{}' now gets STS tokens from Keyward.", c.name);
    }
    for name in &removed {
        println!("Profile '{name}' removed (no RAM role: it would only ever hand out the AccessKey). Run tools with `keyward exec aliyun:{name} -- COMMAND`.");
    }
    if let Some(b) = backup {
        println!(
            "Backup (mode 0600, still holds the plaintext keys): {} — delete it once Keyward works for you.",
            b.display()
        );
    }
    Ok(())
}
