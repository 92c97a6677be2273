//! `keyward exec PROFILE… -- COMMAND ARGS…`: runs one command with short-lived credentials for
//! the profiles named, in the forms its tools read, and no long-lived key anywhere near it.
//!
//! - `aws:NAME`: a container-credentials endpoint on 127.0.0.1 for the child's SDK (see
//!   [`crate::container`]), which refreshes the session by itself; the region when the key has one.
//! - `oauth2:NAME=VAR`: the access token in `VAR`, its expiry in `VAR_EXPIRES_AT`.
//! - `static:NAME=VAR`: a lease of a static key the user allowed to be leased (`keyward edit
//!   NAME --allow-lease env`), in `VAR`, the lease's end in `VAR_EXPIRES_AT`; asked for and
//!   audited with the command as the client.
//!
//! Every approval, unlock and MFA code is asked for before the child starts; the endpoint then
//! never waits on a person. Exit status and signals pass through: the child's status is ours (a
//! child killed by a signal gives 128 + its number, as a shell says it); SIGTERM, SIGHUP, SIGUSR1
//! and SIGUSR2 sent to us go on to the child; Ctrl-C and Ctrl-\ are the terminal's to deliver, to
//! the child directly, so we only outlive them.

use std::ffi::OsString;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use keyward_agent::client::{ClientError, Issued};
use keyward_agent::protocol::{ErrorCode, ExecTarget};
use keyward_core::EntryKind;

use crate::awscmd::{obtain, tell_tty};
use crate::container::{Endpoint, Refusal, Served, Source};

/// Variables the child must not inherit when it gets an AWS endpoint: each would win over the
/// endpoint in the SDKs' credential chain (or, with the long-lived key in them, be exactly what
/// `exec` exists to keep away from the child).
const AWS_SHADOWING: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
];

/// Variables the child must not inherit when it gets an Alibaba Cloud key: each would mix with,
/// or win over, the ones exec sets in the SDKs' credential chain.
const ALIYUN_SHADOWING: &[&str] = &[
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_CREDENTIALS_FILE",
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
];

/// What one profile argument asks for.
#[derive(Debug, PartialEq, Eq)]
enum Spec {
    Aws(String),
    Aliyun(String),
    OAuth2 {
        name: String,
        var: Option<String>,
    },
    Static {
        name: String,
        var: Option<String>,
        /// In a file descriptor (`static:NAME=fd:VAR`: `VAR=/dev/fd/N`), not the variable itself.
        fd: bool,
    },
    /// A bare name: its kind is looked up.
    Any {
        name: String,
        var: Option<String>,
    },
}

fn valid_var(var: &str) -> Result<()> {
    let mut chars = var.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("'{var}' is not an environment variable name: use letters, digits and _, not starting with a digit");
    }
    if var.starts_with("AWS_")
        || var.starts_with("ALIBABA_CLOUD_")
        || var.starts_with("LD_")
        || var == "KEYWARD_EXEC"
    {
        bail!("{var} is not free for a token: keyward exec, the AWS SDKs or the dynamic linker read it");
    }
    Ok(())
}

fn parse_spec(arg: &str) -> Result<Spec> {
    let (target, var, fd) = match arg.split_once('=') {
        Some((t, v)) => {
            let (v, fd) = match v.strip_prefix("fd:") {
                Some(v) => (v, true),
                None => (v, false),
            };
            valid_var(v)?;
            (t, Some(v.to_owned()), fd)
        }
        None => (arg, None, false),
    };
    if fd && !target.starts_with("static:") {
        bail!("'{arg}': only a static key is handed over in a file descriptor: write static:NAME=fd:VAR");
    }
    let (kind, name) = match target.split_once(':') {
        Some((k, n)) => (Some(k), n),
        None => (None, target),
    };
    keyward_core::entry::validate_name(name)?;
    Ok(match kind {
        Some("aws") if var.is_some() => {
            bail!("'{arg}': an AWS profile reaches the child through its SDK's endpoint, not a variable")
        }
        Some("aws") => Spec::Aws(name.to_owned()),
        Some("aliyun") if var.is_some() => {
            bail!("'{arg}': an Alibaba Cloud key reaches the child in the ALIBABA_CLOUD_* variables its SDKs read, not a variable of your choice")
        }
        Some("aliyun") => Spec::Aliyun(name.to_owned()),
        Some("oauth2") => Spec::OAuth2 {
            name: name.to_owned(),
            var,
        },
        Some("static") => Spec::Static {
            name: name.to_owned(),
            var,
            fd,
        },
        Some(other) => bail!("'{arg}': unknown kind '{other}': use aws:NAME, aliyun:NAME, oauth2:NAME=VAR or static:NAME=VAR"),
        None => Spec::Any {
            name: name.to_owned(),
            var,
        },
    })
}

/// The agent, asked afresh when the child's session nears its end. It never waits on a person:
/// what would need one is refused with what to do, and said once on the terminal too.
struct AgentSource {
    profile: String,
    /// The command the credentials are for (the agent's client for them).
    target: ExecTarget,
    /// The last refusal's status told on the terminal (0: none), so a retrying SDK does not
    /// repeat it there.
    told: AtomicU16,
}

impl AgentSource {
    fn refuse(&self, status: u16, message: String) -> Refusal {
        if self.told.swap(status, Ordering::Relaxed) != status {
            tell_tty(&format!("Keyward: {message}"));
        }
        Refusal { status, message }
    }
}

impl Source for AgentSource {
    fn fetch(&self) -> Result<Served, Refusal> {
        let p = &self.profile;
        let mut client = match crate::connect::existing() {
            Ok(Some(c)) => c,
            _ => {
                return Err(self.refuse(
                    503,
                    format!("AWS profile '{p}' cannot be refreshed: the Keyward agent is not running (start it and unlock)"),
                ))
            }
        };
        client.speak_for(self.target.clone());
        match client.cred_aws(p, None, None) {
            Ok(Issued::Credential(c)) => {
                self.told.store(0, Ordering::Relaxed);
                Served::new(
                    &c.access_key_id,
                    c.secret_access_key.expose(),
                    c.session_token.expose(),
                    &c.expiration,
                )
                .map_err(|m| self.refuse(502, m))
            }
            Ok(Issued::ApprovalNeeded(info)) => Err(self.refuse(
                403,
                format!("{} needs approval again for AWS profile '{p}' (it was allowed once, or its grant ended): allow it for a while in the Keyward app or with `keyward grants allow`", info.client),
            )),
            Err(ClientError::Agent(e)) if e.code == ErrorCode::Locked => Err(self.refuse(
                503,
                format!("AWS profile '{p}' cannot be refreshed: the vault is locked (run `keyward unlock` or unlock in the Keyward app)"),
            )),
            Err(ClientError::Agent(e)) if e.code == ErrorCode::MfaRequired => Err(self.refuse(
                403,
                format!("AWS profile '{p}' needs a new MFA code for its next session: run keyward exec again"),
            )),
            Err(e) => Err(self.refuse(502, format!("AWS profile '{p}' cannot be refreshed: {e}"))),
        }
    }
}

/// The executable `program` names, as `execvp` would find it: a name with a `/` from the working
/// directory, else the first executable file of that name on `PATH`. Exec starts exactly this
/// file, the one the approval names.
fn resolve(program: &std::ffi::OsStr) -> Result<std::path::PathBuf, std::io::Error> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.as_bytes().contains(&b'/') {
        let p = std::path::absolute(program)?;
        return if executable(&p) {
            Ok(p)
        } else if p.exists() {
            Err(std::io::ErrorKind::PermissionDenied.into())
        } else {
            Err(std::io::ErrorKind::NotFound.into())
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
        .ok_or_else(|| std::io::ErrorKind::NotFound.into())
}

/// The exit status a shell would give for a child that ended with `status`.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    }
}

/// A profile argument with its kind known.
enum Resolved {
    Aws(String),
    Aliyun(String),
    OAuth2 {
        name: String,
        var: Option<String>,
    },
    Static {
        name: String,
        var: Option<String>,
        fd: bool,
    },
}

/// What the child gets.
struct Prepared {
    env: Vec<(String, zeroize::Zeroizing<String>)>,
    aws: Option<(AgentSource, Served)>,
    /// Leases in file descriptors: open (and inherited) until the child has started.
    fds: Vec<std::os::fd::OwnedFd>,
}

/// A lease in a file descriptor the child inherits: a sealed memory file holding `value`,
/// opened read-only without close-on-exec, and the `/dev/fd/N` path that reads it. Nothing is
/// written to disk; the descriptor is closed here once the child has started.
fn lease_fd(name: &str, value: &str) -> Result<(std::os::fd::OwnedFd, String)> {
    use rustix::fs::{fcntl_add_seals, memfd_create, open, MemfdFlags, Mode, OFlags, SealFlags};
    use std::os::fd::AsRawFd;
    let fail = |e: rustix::io::Errno| {
        anyhow::anyhow!("cannot hand '{name}' over in a file descriptor: {e}")
    };
    let mem = memfd_create(
        "keyward-lease",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(fail)?;
    let mut rest = value.as_bytes();
    while !rest.is_empty() {
        let n = rustix::io::write(&mem, rest).map_err(fail)?;
        rest = &rest[n..];
    }
    fcntl_add_seals(
        &mem,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )
    .map_err(fail)?;
    // Without CLOEXEC: the one child exec starts inherits it, read-only.
    let read = open(
        format!("/proc/self/fd/{}", mem.as_raw_fd()).as_str(),
        OFlags::RDONLY,
        Mode::empty(),
    )
    .map_err(fail)?;
    let path = format!("/dev/fd/{}", read.as_raw_fd());
    Ok((read, path))
}

fn prepare(
    input_fd: Option<u32>,
    specs: Vec<Spec>,
    env_var: Option<String>,
    target: &ExecTarget,
) -> Result<Prepared> {
    let mut client = crate::connect::agent()?;
    let mut resolved = Vec::new();
    for spec in specs {
        resolved.push(match spec {
            Spec::Aws(name) => Resolved::Aws(name),
            Spec::Aliyun(name) => Resolved::Aliyun(name),
            Spec::OAuth2 { name, var } => Resolved::OAuth2 { name, var },
            Spec::Static { name, var, fd } => Resolved::Static { name, var, fd },
            Spec::Any { name, var } => match client.show(&name)?.meta.kind {
                EntryKind::Aws if var.is_none() => Resolved::Aws(name),
                EntryKind::Aws => bail!("'{name}' is an AWS key: its credentials reach the child through its SDK's endpoint, not a variable"),
                EntryKind::OAuth2 => Resolved::OAuth2 { name, var },
                EntryKind::Static => Resolved::Static {
                    name,
                    var,
                    fd: false,
                },
                EntryKind::Aliyun if var.is_none() => Resolved::Aliyun(name),
                EntryKind::Aliyun => bail!("'{name}' is an Alibaba Cloud key: its credentials reach the child in the ALIBABA_CLOUD_* variables, not a variable of your choice"),
            },
        });
    }
    let oauth_count = resolved
        .iter()
        .filter(|s| matches!(s, Resolved::OAuth2 { .. }))
        .count();
    if env_var.is_some() && oauth_count != 1 {
        bail!("--env names the variable of one OAuth2 key; with {oauth_count}, write oauth2:NAME=VAR for each");
    }
    if let Some(v) = &env_var {
        valid_var(v)?;
    }
    // Every argument is checked before anything is asked for.
    if resolved
        .iter()
        .filter(|s| matches!(s, Resolved::Aws(_)))
        .count()
        > 1
    {
        bail!("one AWS profile per exec: an SDK reads one set of credentials");
    }
    if resolved
        .iter()
        .filter(|s| matches!(s, Resolved::Aliyun(_)))
        .count()
        > 1
    {
        bail!("one Alibaba Cloud key per exec: its SDKs read one set of ALIBABA_CLOUD_* variables");
    }
    let mut vars = std::collections::HashSet::new();
    for r in &mut resolved {
        match r {
            Resolved::OAuth2 { name, var } => {
                let Some(v) = var.clone().or_else(|| env_var.clone()) else {
                    bail!("oauth2:{name} needs a variable for its token: write oauth2:{name}=VAR or give --env VAR");
                };
                if !vars.insert(v.clone()) {
                    bail!("{v} is given twice");
                }
                *var = Some(v);
            }
            Resolved::Static { name, var, .. } => {
                let Some(v) = var.clone() else {
                    bail!("static:{name} needs a variable for its lease: write static:{name}=VAR");
                };
                if !vars.insert(v) {
                    bail!("a variable is given twice");
                }
            }
            Resolved::Aws(_) | Resolved::Aliyun(_) => {}
        }
    }
    let mut env = Vec::new();
    let mut aws = None;
    let mut fds = Vec::new();
    for spec in resolved {
        match spec {
            Resolved::Aws(name) => {
                let region = client.show(&name)?.meta.config.aws.and_then(|a| a.region);
                let c = obtain(input_fd, &name, "AWS profile", |c, mfa, approval| {
                    c.speak_for(target.clone());
                    c.cred_aws(&name, mfa, approval)
                })?;
                let served = Served::new(
                    &c.access_key_id,
                    c.secret_access_key.expose(),
                    c.session_token.expose(),
                    &c.expiration,
                )
                .map_err(anyhow::Error::msg)?;
                if let Some(r) = region {
                    for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
                        env.push((var.to_owned(), zeroize::Zeroizing::new(r.clone())));
                    }
                }
                aws = Some((
                    AgentSource {
                        profile: name,
                        target: target.clone(),
                        told: AtomicU16::new(0),
                    },
                    served,
                ));
            }
            Resolved::Aliyun(name) => {
                let c = obtain(input_fd, &name, "Alibaba Cloud key", |c, _mfa, approval| {
                    c.speak_for(target.clone());
                    c.cred_aliyun(&name, approval)
                })?;
                env.extend(crate::aliyuncmd::child_env(&name, &c)?);
            }
            Resolved::Static { name, var, fd } => {
                let Some(var) = var else {
                    bail!("internal error: static:{name} has no variable");
                };
                let form = if fd {
                    keyward_core::entry::LeaseMode::File
                } else {
                    keyward_core::entry::LeaseMode::Env
                };
                let lease = obtain(input_fd, &name, "static key", |c, _mfa, approval| {
                    c.speak_for(target.clone());
                    c.lease_static_as(&name, form, approval)
                })?;
                let value = lease.value.expose();
                if fd {
                    let (owned, path) = lease_fd(&name, value)?;
                    fds.push(owned);
                    env.push((var.clone(), zeroize::Zeroizing::new(path)));
                    env.push((
                        format!("{var}_EXPIRES_AT"),
                        zeroize::Zeroizing::new(lease.expires_at),
                    ));
                    continue;
                }
                // A variable holds no NUL; a line break would be a second line to every tool
                // that reads it as one.
                if value.is_empty() || value.chars().any(|c| matches!(c, '\0' | '\n' | '\r')) {
                    bail!("the value of '{name}' holds characters a variable cannot carry: not handed on");
                }
                env.push((var.clone(), zeroize::Zeroizing::new(value.to_owned())));
                env.push((
                    format!("{var}_EXPIRES_AT"),
                    zeroize::Zeroizing::new(lease.expires_at),
                ));
            }
            Resolved::OAuth2 { name, var } => {
                let Some(var) = var else {
                    bail!("internal error: oauth2:{name} has no variable");
                };
                let t = obtain(input_fd, &name, "OAuth2 key", |c, _mfa, approval| {
                    c.speak_for(target.clone());
                    c.cred_oauth2(&name, approval)
                })?;
                let token = t.access_token.expose();
                if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
                    bail!(
                        "the token for '{name}' holds characters a tool cannot use: not handed on"
                    );
                }
                env.push((var.clone(), zeroize::Zeroizing::new(token.to_owned())));
                if let Some(at) = t.expires_at {
                    env.push((format!("{var}_EXPIRES_AT"), zeroize::Zeroizing::new(at)));
                }
            }
        }
    }
    Ok(Prepared { env, aws, fds })
}

/// Runs `command` with the profiles' credentials; the child's exit status.
pub fn run(
    input_fd: Option<u32>,
    profiles: &[String],
    env_var: Option<String>,
    command: &[OsString],
) -> Result<i32> {
    let Some((program, args)) = command.split_first() else {
        bail!("no command to run: keyward exec PROFILE… -- COMMAND [ARGS…]");
    };
    let specs = profiles
        .iter()
        .map(|p| parse_spec(p))
        .collect::<Result<Vec<_>>>()?;
    // Found before anything is asked for: a command that cannot run gets no credentials.
    let path = match resolve(program) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("keyward: cannot run {}: {e}", program.to_string_lossy());
            return Ok(match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                _ => 126,
            });
        }
    };
    let target = ExecTarget {
        program: path.to_string_lossy().into_owned(),
        args: args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    };
    if specs.iter().any(|s| matches!(s, Spec::Aws(_))) {
        // Said before anything is asked: the user can stop and move the key first.
        match keyward_shell::aws::default_profile_shadows_endpoint() {
            Ok(Some(line)) => eprintln!("keyward: warning: {line}"),
            Ok(None) => {}
            Err(e) => eprintln!("keyward: warning: cannot check the AWS files: {e}"),
        }
    }
    let prepared = prepare(input_fd, specs, env_var, &target)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start keyward exec's runtime")?;
    runtime.block_on(supervise(&path, program, args, profiles, prepared))
}

async fn supervise(
    path: &std::path::Path,
    program: &OsString,
    args: &[OsString],
    profiles: &[String],
    prepared: Prepared,
) -> Result<i32> {
    use rustix::process::Signal;
    use tokio::signal::unix::{signal, SignalKind};
    // The file that was approved, under the name the user gave it.
    let mut cmd = tokio::process::Command::new(path);
    cmd.arg0(program);
    cmd.args(args);
    cmd.env("KEYWARD_EXEC", profiles.join(" "));
    if let Some((source, first)) = prepared.aws {
        let endpoint = Endpoint::bind()
            .await
            .context("cannot open the credentials endpoint on 127.0.0.1")?;
        for var in AWS_SHADOWING {
            cmd.env_remove(var);
        }
        cmd.env("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url());
        cmd.env("AWS_CONTAINER_AUTHORIZATION_TOKEN", endpoint.token());
        let source = Arc::new(source);
        // Ends with the runtime, when the child has.
        tokio::spawn(endpoint.serve(first, source, keyward_agent::cache::min_remaining()));
    }
    if prepared
        .env
        .iter()
        .any(|(v, _)| v.starts_with("ALIBABA_CLOUD_"))
    {
        for var in ALIYUN_SHADOWING {
            cmd.env_remove(var);
        }
    }
    for (var, value) in &prepared.env {
        cmd.env(var, value.as_str());
    }
    // Caught (so they do not end us) before the child exists, so none is missed.
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let shown = program.to_string_lossy();
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                _ => 126,
            };
            eprintln!("keyward: cannot run {shown}: {e}");
            return Ok(code);
        }
    };
    drop(prepared.env);
    // The child has its copies; no other process of ours is to inherit them.
    drop(prepared.fds);
    let pid = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32));
    let forward = |sig: Signal| {
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, sig);
        }
    };
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.context("cannot wait for the child")?;
                return Ok(exit_code(status));
            }
            _ = int.recv() => {}
            _ = quit.recv() => {}
            _ = term.recv() => forward(Signal::TERM),
            _ = hup.recv() => forward(Signal::HUP),
            _ = usr1.recv() => forward(Signal::USR1),
            _ = usr2.recv() => forward(Signal::USR2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_arguments_say_their_kind_and_variable() {
        assert_eq!(
            parse_spec("aws:prod").expect("aws"),
            Spec::Aws("prod".into())
        );
        assert_eq!(
            parse_spec("oauth2:ci=CI_TOKEN").expect("oauth2"),
            Spec::OAuth2 {
                name: "ci".into(),
                var: Some("CI_TOKEN".into())
            }
        );
        assert_eq!(
            parse_spec("prod").expect("bare"),
            Spec::Any {
                name: "prod".into(),
                var: None
            }
        );
        for bad in [
            "aws:prod=X",
            "gcp:x",
            "oauth2:ci=1X",
            "oauth2:ci=A-B",
            "oauth2:ci=AWS_SECRET_ACCESS_KEY",
            "oauth2:ci=LD_PRELOAD",
            "oauth2:ci=",
            "static:gh=LD_PRELOAD",
            "aws:",
        ] {
            let e = parse_spec(bad).expect_err(bad).to_string();
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn a_child_killed_by_a_signal_exits_as_a_shell_would_say() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(15)), 143);
    }
}
