//! Key commands: add, list, show, remove. Secrets are asked for, never taken from argv, and never
//! printed; list and show print metadata only.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Result};
use keyward_agent::protocol::{
    AwsKeyInput, ErrorCode, KeyTested, Listed, MetaInput, NewSecret, WireSecret,
};
use keyward_core::{EntryKind, EntryMeta};
use secrecy::ExposeSecret;

use crate::connect;
use crate::prompt::Prompter;

/// Arguments of `keyward add aws`.
pub struct AddAws {
    /// Name.
    pub name: String,
    /// Access key id, asked for when absent.
    pub access_key_id: Option<String>,
    /// Role.
    pub role_arn: Option<String>,
    /// MFA serial.
    pub mfa_serial: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Session duration.
    pub duration: Option<Duration>,
    /// STS endpoint.
    pub sts_endpoint: Option<String>,
    /// IAM endpoint.
    pub iam_endpoint: Option<String>,
}

/// `keyward add aws`.
pub fn add_aws(input_fd: Option<u32>, a: AddAws, meta: MetaInput) -> Result<()> {
    keyward_core::entry::validate_name(&a.name)?;
    let mut p = Prompter::new(input_fd)?;
    let access_key_id = match a.access_key_id {
        Some(id) => id,
        None => p.line("AWS access key id (AKIA…): ", "access key id")?,
    };
    let secret = p.secret("AWS secret access key: ", "secret access key")?;
    let duration = a
        .duration
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
    let entry = connect::agent()?
        .add_aws(
            &a.name,
            meta,
            AwsKeyInput {
                access_key_id: access_key_id.trim().to_owned(),
                secret_access_key: WireSecret::new(secret.expose_secret().trim().to_owned()),
                role_arn: a.role_arn,
                mfa_serial: a.mfa_serial,
                region: a.region,
                session_duration_secs: duration,
                sts_endpoint: a.sts_endpoint,
                iam_endpoint: a.iam_endpoint,
            },
        )?
        .meta;
    println!(
        "Stored AWS key '{}' ({}). Next: `keyward setup aws {}` points the AWS CLI and SDKs at it.",
        entry.name,
        entry
            .config
            .aws
            .as_ref()
            .map(|c| c.access_key_hint.as_str())
            .unwrap_or(""),
        entry.name
    );
    Ok(())
}

/// `keyward add static`.
pub fn add_static(input_fd: Option<u32>, name: String, meta: MetaInput) -> Result<()> {
    keyward_core::entry::validate_name(&name)?;
    let mut p = Prompter::new(input_fd)?;
    let value = p.secret("Token value: ", "token")?;
    connect::agent()?.add_static(
        &name,
        meta,
        WireSecret::new(value.expose_secret().to_owned()),
    )?;
    println!("Stored token '{name}'.");
    Ok(())
}

fn date(s: &Option<String>) -> String {
    s.as_deref()
        .map(|d| d.get(..10).unwrap_or(d).to_owned())
        .unwrap_or_else(|| "-".to_owned())
}

/// A key as `list --json` and `show --json` print it: its metadata, its state and why.
#[derive(serde::Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    meta: &'a EntryMeta,
    state: keyward_core::EntryState,
    standing: &'a keyward_core::policy::Standing,
}

impl<'a> Row<'a> {
    fn of(l: &'a Listed) -> Self {
        Row {
            meta: &l.meta,
            state: l.standing.state,
            standing: &l.standing,
        }
    }
}

/// `keyward list`.
pub fn list(json: bool) -> Result<()> {
    let entries = connect::agent()?.list()?;
    if json {
        let rows: Vec<Row> = entries.iter().map(Row::of).collect();
        // Straight to standard output: a catalog of 10,000 keys is megabytes of JSON.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(());
    }
    if entries.is_empty() {
        println!("No keys yet: `keyward add aws NAME`, `keyward add oauth2 NAME` or `keyward import aws` stores one.");
        return Ok(());
    }
    // One write per screenful, not per line: a catalog can hold 10,000 keys.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(
        out,
        "{:<24} {:<7} {:<9} {:<16} {:<11} {:<11} {:>5}  TAGS",
        "NAME", "KIND", "STATE", "OWNER", "CREATED", "LAST USED", "USES"
    )?;
    for Listed { meta: e, standing } in &entries {
        writeln!(
            out,
            "{:<24} {:<7} {:<9} {:<16} {:<11} {:<11} {:>5}  {}",
            e.name,
            e.kind.as_str(),
            state_word(standing.state),
            e.owner.as_deref().unwrap_or("-"),
            date(&Some(e.created.clone())),
            date(&e.last_used),
            e.use_count,
            e.tags.join(",")
        )?;
    }
    let why: Vec<_> = entries
        .iter()
        .filter_map(|l| Some((&l.meta.name, l.standing.reason.as_deref()?)))
        .collect();
    if !why.is_empty() {
        writeln!(out)?;
    }
    for (name, reason) in why {
        writeln!(out, "{name}: {reason}")?;
    }
    out.flush()?;
    Ok(())
}

/// A state as `list` and `status` print it: the ones that need action in capitals.
pub fn state_word(s: keyward_core::EntryState) -> &'static str {
    match s {
        keyward_core::EntryState::Ok => "ok",
        keyward_core::EntryState::DueSoon => "due soon",
        keyward_core::EntryState::Overdue => "OVERDUE",
        keyward_core::EntryState::Expired => "EXPIRED",
        keyward_core::EntryState::Unused => "UNUSED",
    }
}

fn print_entry(e: &EntryMeta) {
    let field = |k: &str, v: &str| println!("{k:<17} {v}");
    field("Name:", &e.name);
    field("Kind:", e.kind.as_str());
    field("Owner:", e.owner.as_deref().unwrap_or("-"));
    field("Purpose:", e.purpose.as_deref().unwrap_or("-"));
    field(
        "Tags:",
        &if e.tags.is_empty() {
            "-".to_owned()
        } else {
            e.tags.join(", ")
        },
    );
    field("Created:", &e.created);
    field("Rotated:", e.rotated.as_deref().unwrap_or("never"));
    field(
        "Rotate every:",
        &e.rotation_interval_days
            .map(|d| format!("{d} days"))
            .unwrap_or_else(|| "-".into()),
    );
    field("Expires:", e.expires.as_deref().unwrap_or("-"));
    field("Last used:", e.last_used.as_deref().unwrap_or("never"));
    field("Uses:", &e.use_count.to_string());
    if let (EntryKind::Aws, Some(c)) = (e.kind, &e.config.aws) {
        field(
            "Last used at AWS:",
            &match &e.provider_use {
                Some(u) => u.summary(),
                None if c.sts_endpoint.is_some() && c.iam_endpoint.is_none() => {
                    "not asked (a key for another STS; set its IAM endpoint)".into()
                }
                None => "not asked yet (the agent asks once a day)".into(),
            },
        );
        field("Access key:", &c.access_key_hint);
        field(
            "Issues:",
            if c.role_arn.is_some() {
                "STS AssumeRole"
            } else {
                "STS GetSessionToken"
            },
        );
        if let Some(r) = &c.role_arn {
            field("Role:", r);
        }
        if let Some(m) = &c.mfa_serial {
            field("MFA device:", m);
        }
        field(
            "Region:",
            c.region.as_deref().unwrap_or("us-east-1 (default)"),
        );
        field(
            "Session length:",
            &humantime::format_duration(Duration::from_secs(c.session_duration_secs.into()))
                .to_string(),
        );
        if let Some(ep) = &c.sts_endpoint {
            field("STS endpoint:", ep);
        }
        if let Some(ep) = &c.iam_endpoint {
            field("IAM endpoint:", ep);
        }
    }
    if let (EntryKind::Aliyun, Some(c)) = (e.kind, &e.config.aliyun) {
        field("AccessKey:", &c.access_key_hint);
        match &c.role_arn {
            Some(r) => {
                field("Issues:", "STS tokens (AssumeRole)");
                field("Role:", r);
                field(
                    "Session length:",
                    &humantime::format_duration(Duration::from_secs(
                        c.session_duration_secs.into(),
                    ))
                    .to_string(),
                );
            }
            None => field("Issues:", "the AccessKey itself (no RAM role)"),
        }
        field("Region:", c.region.as_deref().unwrap_or("-"));
        if let Some(ep) = &c.sts_endpoint {
            field("STS endpoint:", ep);
        }
    }
    if let (EntryKind::OAuth2, Some(c)) = (e.kind, &e.config.oauth2) {
        field("Client id:", &c.client_id);
        field("Issues:", "access tokens (client-credentials grant)");
        field("Token URL:", &c.token_url);
        field(
            "Scopes:",
            &if c.scopes.is_empty() {
                "the server's default".to_owned()
            } else {
                c.scopes.join(" ")
            },
        );
        field("Client auth:", c.auth.method_name());
        field(
            "Introspection:",
            c.introspection_url.as_deref().unwrap_or("-"),
        );
    }
}

/// `keyward show`.
pub fn show(name: &str, json: bool) -> Result<()> {
    let mut client = connect::agent()?;
    let listed = client.show(name)?;
    // Kept in the authenticated header: readable only while the vault is unlocked.
    let uses = match client.key_uses(name) {
        Ok(u) => Some(u),
        Err(keyward_agent::client::ClientError::Agent(e)) if e.code == ErrorCode::Locked => None,
        Err(e) => return Err(e.into()),
    };
    if json {
        let mut v = serde_json::to_value(Row::of(&listed))?;
        if let (Some(u), Some(o)) = (&uses, v.as_object_mut()) {
            o.insert("uses".into(), serde_json::to_value(u)?);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_entry(&listed.meta);
        if let Some(reason) = &listed.standing.reason {
            println!(
                "{:<12}{} — {reason}",
                "State:",
                state_word(listed.standing.state)
            );
        }
        match &uses {
            None => println!("{:<12}(unlock to see how tools may get it)", "Tools:"),
            Some(u) => {
                if listed.meta.kind == EntryKind::Static {
                    let lease = match u.lease {
                        Some(m) => format!(
                            "allowed ({}): keyward exec static:{name}={} -- COMMAND",
                            m.as_str(),
                            lease_form(m)
                        ),
                        None => format!("not allowed (keyward edit {name} --allow-lease env)"),
                    };
                    println!("{:<12}{lease}", "Lease:");
                }
                for b in &u.bindings {
                    println!(
                        "{:<12}{} for {}{}",
                        "Helper:",
                        b.tool.as_str(),
                        b.host,
                        b.username
                            .as_deref()
                            .map(|n| format!(" (user {n})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        if let Some(exe) = keyward_shell::launch::keyward_binary() {
            println!("Use it:");
            for u in keyward_shell::usage::usages(&listed.meta, &exe, uses.as_ref()) {
                println!("  {:<9}{}", u.tool, u.line);
                println!("  {:<9}  {}", "", u.note);
            }
        }
    }
    Ok(())
}

/// `keyward remove`.
pub fn remove(input_fd: Option<u32>, name: &str, yes: bool) -> Result<()> {
    if !yes {
        let mut p = Prompter::new(input_fd)?;
        if !p.available() {
            bail!("removing '{name}' needs confirmation: run it in a terminal or pass --yes");
        }
        if !p.confirm(&format!(
            "Remove '{name}' and its secret from the keychain? This cannot be undone."
        ))? {
            bail!("not removed");
        }
    }
    connect::agent()?.remove(name)?;
    println!("Removed '{name}'.");
    Ok(())
}

/// `keyward test NAME`.
pub fn test(input_fd: Option<u32>, name: &str) -> Result<()> {
    keyward_core::entry::validate_name(name)?;
    // Testing issues a real credential: the same approval and unlock flow as `cred`.
    let KeyTested {
        kind,
        identity,
        expiration,
        scope,
    } = crate::awscmd::obtain(input_fd, name, "key", |c, mfa_code, approval| {
        c.test_key(name, mfa_code, approval, None)
    })?;
    let until = expiration
        .map(|e| format!("valid until {e}"))
        .unwrap_or_else(|| "expiry not stated by the server".to_owned());
    match (kind, scope) {
        (EntryKind::OAuth2, Some(scope)) => println!(
            "'{name}' works: the token endpoint issued a token for {identity}, scope '{scope}', {until}."
        ),
        (EntryKind::OAuth2, None) => println!(
            "'{name}' works: the token endpoint issued a token for {identity} (scope not stated), {until}."
        ),
        _ => println!("'{name}' works: STS issued a session for {identity}, {until}."),
    }
    Ok(())
}

/// `keyward edit`: the fields given in `set` change, those named in `clear` are emptied, the
/// rest stay.
pub fn edit(name: &str, set: MetaInput, clear: &[String]) -> Result<()> {
    let entry = connect::agent()?.show(name)?.meta;
    let mut meta = MetaInput {
        owner: entry.owner,
        purpose: entry.purpose,
        tags: entry.tags,
        rotation_interval_days: entry.rotation_interval_days,
        expires: entry.expires,
    };
    for field in clear {
        match field.as_str() {
            "owner" => meta.owner = None,
            "purpose" => meta.purpose = None,
            "tags" => meta.tags.clear(),
            "rotate-every" => meta.rotation_interval_days = None,
            "expires" => meta.expires = None,
            other => bail!(
                "cannot clear '{}': use owner, purpose, tags, rotate-every or expires",
                other.escape_default()
            ),
        }
    }
    if set.owner.is_some() {
        meta.owner = set.owner;
    }
    if set.purpose.is_some() {
        meta.purpose = set.purpose;
    }
    if !set.tags.is_empty() {
        meta.tags = set.tags;
    }
    if set.rotation_interval_days.is_some() {
        meta.rotation_interval_days = set.rotation_interval_days;
    }
    if set.expires.is_some() {
        meta.expires = set.expires;
    }
    connect::agent()?.update(name, meta)?;
    println!("Updated '{name}'.");
    Ok(())
}

/// How `keyward exec` names a lease of a key allowed `m`: a variable, or a file descriptor's.
fn lease_form(m: keyward_core::entry::LeaseMode) -> &'static str {
    match m {
        keyward_core::entry::LeaseMode::Env => "VAR",
        keyward_core::entry::LeaseMode::File => "fd:VAR",
    }
}

/// `keyward edit NAME --allow-lease env|file|off`: whether a static key may be leased to a command
/// `keyward exec` starts. Allowing asks for a current authenticator code.
pub fn set_lease(
    input_fd: Option<u32>,
    name: &str,
    mode: Option<keyward_core::entry::LeaseMode>,
) -> Result<()> {
    keyward_core::entry::validate_name(name)?;
    let mut client = connect::agent()?;
    let code = match mode {
        Some(_) => {
            let mut p = crate::prompt::Prompter::new(input_fd)?;
            let code = p.secret(
                &format!("Code from your authenticator app to let '{name}' be leased: "),
                "authenticator code",
            )?;
            Some(WireSecret::new(
                secrecy::ExposeSecret::expose_secret(&code)
                    .trim()
                    .to_owned(),
            ))
        }
        None => None,
    };
    client.set_lease(name, mode, code)?;
    match mode {
        Some(m) => println!(
            "'{name}' may now be leased ({}): keyward exec static:{name}={} -- COMMAND (each lease is asked for and audited).",
            m.as_str(),
            lease_form(m)
        ),
        None => println!("'{name}' is no longer leased."),
    }
    Ok(())
}

/// `keyward rotate`: an AWS key at IAM, anything else (or `--manual`) by storing the new value.
pub fn rotate(
    input_fd: Option<u32>,
    name: &str,
    manual: bool,
    grace: Option<Duration>,
) -> Result<()> {
    let entry = connect::agent()?.show(name)?.meta;
    if entry.kind == EntryKind::Aws && !manual {
        return rotate_aws(name, grace);
    }
    let mut p = Prompter::new(input_fd)?;
    let secret = match entry.kind {
        EntryKind::Aws => {
            let id = p.line("New AWS access key id (AKIA…): ", "access key id")?;
            let secret = p.secret("New AWS secret access key: ", "secret access key")?;
            NewSecret::Aws {
                access_key_id: id.trim().to_owned(),
                secret_access_key: WireSecret::new(secret.expose_secret().trim().to_owned()),
            }
        }
        EntryKind::OAuth2 => NewSecret::Oauth2 {
            client_secret: WireSecret::new(
                p.secret("New client secret: ", "client secret")?
                    .expose_secret()
                    .trim()
                    .to_owned(),
            ),
        },
        EntryKind::Aliyun => {
            let id = p.line("New Alibaba Cloud AccessKey ID (LTAI…): ", "AccessKey ID")?;
            let secret = p.secret("New AccessKey secret: ", "AccessKey secret")?;
            NewSecret::Aliyun {
                access_key_id: id.trim().to_owned(),
                access_key_secret: WireSecret::new(secret.expose_secret().trim().to_owned()),
            }
        }
        EntryKind::Static => NewSecret::Static {
            value: WireSecret::new(
                p.secret("New token value: ", "token")?
                    .expose_secret()
                    .to_owned(),
            ),
        },
    };
    let entry = connect::agent()?.rotate(name, secret)?.meta;
    match (entry.kind, entry.config.aws.as_ref()) {
        (EntryKind::Aws, Some(a)) => println!(
            "Stored the new key for '{name}' ({}). Deactivate the old one at AWS once tools work.",
            a.access_key_hint
        ),
        (EntryKind::OAuth2, _) => println!(
            "Stored the new client secret for '{name}'. Revoke the old one at the provider once tools work."
        ),
        (EntryKind::Aliyun, _) => println!(
            "Stored the new AccessKey for '{name}'. Disable the old one in the RAM console once tools work."
        ),
        _ => println!("Stored the new token for '{name}'."),
    }
    Ok(())
}

/// `keyward rotate NAME` for an AWS key: the rotation at IAM, and what became of the old key.
fn rotate_aws(name: &str, grace: Option<Duration>) -> Result<()> {
    let r = connect::agent()?.rotate_aws(name, grace.map(|g| g.as_secs()))?;
    for n in &r.notes {
        println!("Before rotating: {n}.");
    }
    println!(
        "Rotated '{name}' at AWS (IAM user {}): {} is stored and works.",
        r.user_name, r.new_key_id
    );
    match (&r.delete_after, r.old_deleted) {
        (_, true) => println!("The old key {} is deleted.", r.old_key_id),
        (Some(when), false) => println!(
            "The old key {} is inactive and will be deleted after {when} (until then `aws iam update-access-key --status Active` brings it back; rotating again deletes it at once).",
            r.old_key_id
        ),
        (None, false) => println!("The old key {} is inactive.", r.old_key_id),
    }
    Ok(())
}

/// `keyward history`.
pub fn history(name: &str, lines: u32, json: bool) -> Result<()> {
    let rows = connect::agent()?.history(name, lines)?;
    if rows.is_empty() && !json {
        println!("No records about '{name}'.");
        return Ok(());
    }
    crate::vaultcmd::print_audit(rows, json)
}
