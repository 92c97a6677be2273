//! Finds the agent this window talks to, starting it when needed. The app's agent is the same
//! agent as `keyward agent`, run by the `keyward` command in desktop mode (`keyward agent
//! --tray --app <this app>`): it owns the tray icon and outlives the window, so closing the
//! window ends this process and Keyward in the tray costs only the agent's memory. One agent per
//! user: a headless agent already running is asked to stop (it locks first), and the desktop
//! agent takes over.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use keyward_agent::client::{Client, ClientError};
use keyward_agent::desktop::TOKEN_ON_STDIN;
use keyward_agent::protocol::{ErrorCode, WindowState, WireSecret};

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
        match Client::connect(&socket).and_then(|mut c| c.open_window()) {
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
            take_over()?;
        }
        // An agent of an older version does not know the window's requests: replace it too.
        Err(ClientError::Agent(e)) if e.code == ErrorCode::BadRequest => take_over()?,
        Err(e) => return Err(e.into()),
    }
    start_agent()?;
    poll(&socket).context("the Keyward agent started but does not answer the app")?;
    Ok(Connected::Window(socket))
}

/// One poll: tells the agent the window is open, and returns what the window must show.
pub fn poll(socket: &Path) -> Result<WindowState, ClientError> {
    Client::connect(socket)?.window(None)
}

fn is_desktop_agent(socket: &Path) -> bool {
    Client::connect(socket)
        .and_then(|mut c| c.status())
        .is_ok_and(|s| s.desktop)
}

/// Asks the headless agent to stop (it locks before it exits) and waits until it has.
fn take_over() -> anyhow::Result<()> {
    tracing::info!("a headless agent is running: asking it to stop so the app can take over");
    keyward_shell::launch::stop()?;
    Ok(())
}

/// Starts the desktop agent in the background (it logs where `keyward agent start` logs) and
/// waits until it answers.
fn start_agent() -> anyhow::Result<()> {
    keyward_shell::launch::agent_with(&["--tray".into()])?;
    Ok(())
}
