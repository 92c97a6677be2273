//! Reaching the agent: connect to the per-user socket, starting a headless `keyward agent` in the
//! background when none is running (one agent per user; the agent's lock file settles races).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use keyward_agent::client::{Client, ClientError};
use keyward_agent::protocol::{Reply, Request};

/// How long to wait for a freshly started agent.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket path.
pub fn socket() -> Result<PathBuf> {
    Ok(keyward_agent::server::socket_path()?)
}

/// Where a background agent writes its log.
pub fn agent_log_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("keyward/agent.log"))
}

/// Connects to the running agent, or `None` if there is none.
pub fn existing() -> Result<Option<Client>> {
    match Client::connect(&socket()?) {
        Ok(c) => Ok(Some(c)),
        Err(ClientError::NotRunning) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Connects, starting the agent when needed.
pub fn agent() -> Result<Client> {
    agent_with(&[])
}

/// Connects, starting the agent with `args` (after `agent`) when none is running.
pub fn agent_with(args: &[std::ffi::OsString]) -> Result<Client> {
    if let Some(c) = existing()? {
        return Ok(c);
    }
    let mut child = start_background(args)?;
    let mut starts = 1;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(mut c) = existing()? {
            if matches!(c.call(Request::Ping {}), Ok(Reply::Pong { .. })) {
                return Ok(existing()?.unwrap_or(c));
            }
        }
        let mut exited = child_exited(&mut child);
        if exited && starts < 3 && Instant::now() < deadline {
            // Another CLI may have started an agent first (ours then exits at once), or a
            // stopping agent still held the lock: look again, then start once more.
            std::thread::sleep(Duration::from_millis(100));
            if existing()?.is_none() {
                child = start_background(args)?;
                starts += 1;
            }
            exited = false;
        }
        if exited || Instant::now() > deadline {
            // The agent's last log line says why (corrupt catalog, another agent, …).
            let reason = agent_log_path()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|log| {
                    log.lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .map(|l| strip_log_prefix(l).to_owned())
                });
            return Err(match reason {
                Some(r) => anyhow!("the Keyward agent did not start: {r}"),
                None => anyhow!("the Keyward agent did not start"),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn child_exited(child: &mut std::process::Child) -> bool {
    matches!(child.try_wait(), Ok(Some(_)))
}

/// Drops tracing's timestamp and level from a log line.
fn strip_log_prefix(line: &str) -> &str {
    let line = line.trim();
    let line = line.strip_prefix("keyward: ").unwrap_or(line);
    for level in [" ERROR ", " WARN ", " INFO "] {
        if let Some(i) = line.find(level) {
            return line[i + level.len()..].trim();
        }
    }
    line
}

fn start_background(args: &[std::ffi::OsString]) -> Result<std::process::Child> {
    let exe = std::env::current_exe().context("cannot find the keyward executable")?;
    let stderr = match agent_log_path() {
        Some(path) => {
            if let Some(dir) = path.parent() {
                keyward_core::catalog::create_private_dir(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            Stdio::from(f)
        }
        None => Stdio::null(),
    };
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(exe);
    // The agent refuses loader variables; a tool's LD_LIBRARY_PATH is no business of its.
    for var in keyward_agent::LOADER_VARIABLES {
        cmd.env_remove(var);
    }
    cmd.arg("agent")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        // Its own process group: a Ctrl-C meant for the calling tool must not stop the agent.
        .process_group(0)
        .spawn()
        .context("cannot start the Keyward agent")
}
