//! Finds the agent this window talks to, starting it when needed. The app's agent is the same
//! agent as `keyward agent`, run by the `keyward` command in desktop mode (`keyward agent
//! --tray --app <this app>`): it owns the tray icon and outlives the window, so closing the
//! window ends this process and Keyward in the tray costs only the agent's memory. One agent per
//! user: a headless agent already running is asked to stop (it locks first), and the desktop
//! agent takes over.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use keyward_agent::client::{Client, ClientError};
use keyward_agent::desktop::TOKEN_ON_STDIN;
use keyward_agent::protocol::{ErrorCode, Reply, Request, WindowState, WireSecret};

/// How long to wait for a headless agent to let go of the socket.
const TAKEOVER_WAIT: Duration = Duration::from_secs(10);

/// How this process goes on after [`connect`].
pub enum Connected {
    /// It is the window, talking to the agent at this socket.
    Window(PathBuf),
    /// The desktop agent already running opens its window (or brings it to the front).
    HandedOver,
}

/// Whether the agent started this window, and the window token it handed over (on standard
/// input, see `keyward_agent::desktop::TOKEN_ON_STDIN`); `None`: started by hand.
pub fn started_by_agent() -> Option<Option<WireSecret>> {
    use std::io::{BufRead, Read};
    let how = std::env::var_os(TOKEN_ON_STDIN)?;
    // WebKit's helper processes and anything the window starts must not take it for theirs.
    std::env::remove_var(TOKEN_ON_STDIN);
    if how != "stdin" {
        return Some(None);
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    let read = std::io::stdin().lock().take(256).read_line(&mut line);
    let token = line.trim();
    Some((read.is_ok() && !token.is_empty()).then(|| WireSecret::new(token.to_owned())))
}

/// Connects to the desktop agent (starting it, or taking over from a headless one) and returns
/// its socket once it answers this window's polls. Started by hand while the desktop agent
/// runs, it asks that agent to open the window instead, so there is one window at a time and
/// it is one the agent knows.
pub fn connect(started_by_agent: bool) -> anyhow::Result<Connected> {
    let socket = keyward_agent::server::socket_path()?;
    if !started_by_agent {
        match Client::connect(&socket).and_then(|mut c| c.call(Request::OpenWindow {})) {
            Ok(_) => return Ok(Connected::HandedOver),
            Err(ClientError::NotRunning) => {}
            // A headless agent (or one of an older version): the app takes over below.
            Err(ClientError::Agent(e))
                if matches!(e.code, ErrorCode::Invalid | ErrorCode::BadRequest) => {}
            Err(e) => return Err(e.into()),
        }
    }
    match poll(&socket) {
        Ok(_) => return Ok(Connected::Window(socket)),
        Err(ClientError::NotRunning) => {}
        Err(ClientError::Agent(e)) if e.code == ErrorCode::Forbidden => {
            if is_desktop_agent(&socket) {
                bail!(
                    "a Keyward agent for another copy of the app is running: quit it from its tray icon (or run `keyward agent stop`) and start Keyward again"
                );
            }
            take_over(&socket)?;
        }
        // An agent of an older version does not know the window's requests: replace it too.
        Err(ClientError::Agent(e)) if e.code == ErrorCode::BadRequest => take_over(&socket)?,
        Err(e) => return Err(e.into()),
    }
    start_agent()?;
    poll(&socket).context("the Keyward agent started but does not answer the app")?;
    Ok(Connected::Window(socket))
}

/// One poll: tells the agent the window is open, and returns what the window must show.
pub fn poll(socket: &Path) -> Result<WindowState, ClientError> {
    match Client::connect(socket)?.call(Request::Window {
        closed: false,
        token: None,
    })? {
        Reply::Window(w) => Ok(w),
        _ => Err(ClientError::Protocol),
    }
}

fn is_desktop_agent(socket: &Path) -> bool {
    Client::connect(socket)
        .and_then(|mut c| c.call(Request::Status {}))
        .is_ok_and(|r| matches!(r, Reply::Status(s) if s.desktop))
}

/// Asks the headless agent to stop (it locks before it exits) and waits until it has.
fn take_over(socket: &Path) -> anyhow::Result<()> {
    tracing::info!("a headless agent is running: asking it to stop so the app can take over");
    let dir = keyward_agent::server::runtime_dir()?;
    let deadline = Instant::now() + TAKEOVER_WAIT;
    let mut asked = Instant::now() - Duration::from_secs(1);
    while keyward_agent::server::take_instance_lock(&dir).is_err() {
        if Instant::now() > deadline {
            bail!("the running Keyward agent was asked to stop but is still running");
        }
        // Asked again now and then: an agent still starting up (its socket not yet listening)
        // holds the lock but missed the first request, and a CLI may start one meanwhile.
        if asked.elapsed() >= Duration::from_millis(500) {
            if let Ok(mut c) = Client::connect(socket) {
                let _ = c.call(Request::Shutdown {});
            }
            asked = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The `keyward` command: installed beside the app, else found on PATH.
fn keyward_command() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("keyward"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("keyward"))
}

/// Starts the desktop agent in the background (it logs where `keyward agent start` logs).
fn start_agent() -> anyhow::Result<()> {
    let keyward = keyward_command();
    let out = Command::new(&keyward)
        .args(["agent", "start", "--tray"])
        .output()
        .with_context(|| {
            format!(
                "cannot run {} to start the agent (is the keyward command installed?)",
                keyward.display()
            )
        })?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(anyhow!(
            "{}",
            why.trim().trim_start_matches("keyward: ").to_owned()
        ));
    }
    Ok(())
}
