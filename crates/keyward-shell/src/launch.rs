//! Finding the `keyward` command and the agent: connect to the per-user socket, start a
//! background `keyward agent` when none runs (one agent per user; its lock file settles races),
//! and stop one. The CLI and the desktop app both reach the agent through here.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyward_agent::client::{Client, ClientError};

use crate::ShellError;

/// How long to wait for a freshly started agent.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a running agent may take to let go of its lock once asked to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The `keyward` command: this process when it is `keyward`; else the one installed beside this
/// program (the desktop app's package puts it there), or beside the link this program was
/// started through (`scripts/run` links both into `~/.local/bin`, while the builds stay in
/// target directories of their own); else the first on `PATH`. What `credential_process` lines
/// run and what starts the agent.
pub fn keyward_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok();
    let itself = exe
        .clone()
        .filter(|e| e.file_name().is_some_and(|n| n == "keyward"));
    let beside = exe.and_then(|e| e.parent().map(|d| d.join("keyward")));
    let beside_link = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .filter(|a| a.components().count() > 1)
        .and_then(|a| a.parent().map(|d| d.join("keyward")));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("keyward"));
    itself
        .into_iter()
        .chain(beside)
        .chain(beside_link)
        .chain(on_path)
        .find(|p| p.is_file())
        .map(|p| p.canonicalize().unwrap_or(p))
}

/// The agent, `keyward-agent`: installed beside the `keyward` command (this process's real
/// executable when it is `keyward`, else the one [`keyward_binary`] finds). `keyward agent`
/// runs it.
pub fn agent_binary() -> Result<PathBuf, ShellError> {
    let keyward = keyward_binary().ok_or(ShellError::NoBinary)?;
    let agent = keyward.with_file_name("keyward-agent");
    if agent.is_file() {
        Ok(agent)
    } else {
        Err(ShellError::NoAgentBinary(agent))
    }
}

/// The agent's socket.
pub fn socket() -> Result<PathBuf, ShellError> {
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
pub fn existing() -> Result<Option<Client>, ShellError> {
    match Client::connect(&socket()?) {
        Ok(c) => Ok(Some(c)),
        Err(ClientError::NotRunning) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Connects, starting the agent when needed.
pub fn agent() -> Result<Client, ShellError> {
    agent_with(&[])
}

/// Connects, starting the agent with `args` (after `agent`) when none is running, and waits
/// until it answers. When it does not come up, the error carries the last line of its log.
pub fn agent_with(args: &[OsString]) -> Result<Client, ShellError> {
    if let Some(c) = existing()? {
        return Ok(c);
    }
    let mut child = start_background(args)?;
    let mut starts = 1;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(mut c) = existing()? {
            if c.ping().is_ok() {
                return Ok(existing()?.unwrap_or(c));
            }
        }
        let mut exited = matches!(child.try_wait(), Ok(Some(_)));
        if exited && starts < 3 && Instant::now() < deadline {
            // Another client may have started an agent first (ours then exits at once), or a
            // stopping agent still held the lock: look again, then start once more.
            std::thread::sleep(Duration::from_millis(100));
            if existing()?.is_none() {
                child = start_background(args)?;
                starts += 1;
            }
            exited = false;
        }
        if exited || Instant::now() > deadline {
            return Err(ShellError::AgentDidNotStart(last_log_line()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asks the running agent to stop (it locks first) and waits until it has let go of its lock.
/// `false`: no agent was running (no lock held, or no runtime directory at all).
pub fn stop() -> Result<bool, ShellError> {
    let socket = socket()?;
    let dir = keyward_agent::server::runtime_dir()?;
    // Only a lock another process holds means an agent; a lock file that cannot even be
    // opened (no runtime directory yet) means none was ever started.
    let running = || {
        matches!(
            keyward_agent::server::take_instance_lock(&dir),
            Err(keyward_agent::server::EndpointError::AlreadyRunning(_))
        )
    };
    if !running() {
        return Ok(false);
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    let mut asked: Option<Instant> = None;
    while running() {
        if Instant::now() > deadline {
            return Err(ShellError::StillRunning);
        }
        // Asked again now and then: an agent still starting up (its socket not yet listening)
        // holds the lock but missed the first request, and a client may start one meanwhile.
        if asked.is_none_or(|t| t.elapsed() >= Duration::from_millis(500)) {
            if let Ok(mut c) = Client::connect(&socket) {
                let _ = c.shutdown();
            }
            asked = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(true)
}

/// The agent's last log line, without tracing's timestamp and level: why it did not start
/// (corrupt catalog, another agent, …).
fn last_log_line() -> Option<String> {
    let log = std::fs::read_to_string(agent_log_path()?).ok()?;
    log.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| strip_log_prefix(l).to_owned())
}

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

fn open_log(path: &Path) -> Result<std::fs::File, ShellError> {
    use std::os::unix::fs::OpenOptionsExt;
    let log_err = |why| ShellError::Log {
        path: path.to_owned(),
        why,
    };
    if let Some(dir) = path.parent() {
        keyward_core::catalog::create_private_dir(dir).map_err(log_err)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(log_err)
}

fn start_background(args: &[OsString]) -> Result<std::process::Child, ShellError> {
    use std::os::unix::process::CommandExt;
    let exe = keyward_binary().ok_or(ShellError::NoBinary)?;
    let stderr = match agent_log_path() {
        Some(path) => Stdio::from(open_log(&path)?),
        None => Stdio::null(),
    };
    let mut cmd = Command::new(&exe);
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
        .map_err(|why| ShellError::Spawn { exe, why })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopping_when_no_agent_ever_ran_says_so_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::env::set_var("KEYWARD_RUNTIME_DIR", dir.path().join("never-made"));
        let t = Instant::now();
        assert!(!stop().expect("stop"), "no agent was running");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "took {:?}",
            t.elapsed()
        );
        // A runtime directory with a free lock: no agent either.
        std::env::set_var("KEYWARD_RUNTIME_DIR", dir.path());
        assert!(!stop().expect("stop"));
    }

    #[test]
    fn the_reason_in_a_log_line_is_kept_without_its_timestamp_and_level() {
        // The agent's own last words (its `main` prints the error this way) …
        assert_eq!(
            strip_log_prefix("keyward: the catalog was altered outside Keyward\n"),
            "the catalog was altered outside Keyward"
        );
        // … and a tracing line.
        assert_eq!(
            strip_log_prefix("2026-12-01T10:00:00.123456Z  WARN keyward_agent::server: no socket"),
            "keyward_agent::server: no socket"
        );
    }
}
