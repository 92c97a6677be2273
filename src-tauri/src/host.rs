//! Runs the agent inside the app: the same `keyward_agent::run` as `keyward agent`, on its own
//! thread, serving the socket CLI tools use. One agent per user: a headless agent already
//! running is asked to stop (it locks first), and the app takes over.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyward_agent::protocol::Request;
use keyward_agent::server::EndpointError;
use keyward_agent::{Agent, AgentError, AgentOptions};

/// How long to wait for a headless agent to let go of the socket.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

/// The running agent, and word of its end (SIGTERM, `keyward agent stop`, Quit).
pub struct Running {
    /// The agent.
    pub agent: Arc<Agent>,
    /// Receives once the agent has stopped.
    pub stopped: mpsc::Receiver<Result<(), AgentError>>,
}

/// Starts the embedded agent and returns it once its socket accepts connections.
pub fn start() -> anyhow::Result<Running> {
    let deadline = Instant::now() + TAKEOVER_WAIT;
    let mut asked_to_stop = false;
    loop {
        match try_start() {
            Ok(agent) => return Ok(agent),
            Err(AgentError::Endpoint(EndpointError::AlreadyRunning(_)))
                if Instant::now() < deadline =>
            {
                if !asked_to_stop {
                    stop_headless();
                    asked_to_stop = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn try_start() -> Result<Running, AgentError> {
    let (tx, rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("keyward-agent".into())
        .spawn(move || {
            let res = keyward_agent::run(agent_options(), |_, agent| {
                let _ = tx.send(Arc::clone(agent));
            });
            let _ = done_tx.send(res);
        })
        .map_err(AgentError::Runtime)?;
    loop {
        if let Ok(agent) = rx.recv_timeout(Duration::from_millis(50)) {
            return Ok(Running {
                agent,
                stopped: done_rx,
            });
        }
        match done_rx.try_recv() {
            Ok(Err(e)) => return Err(e),
            Ok(Ok(())) => {
                return Err(AgentError::Runtime(std::io::Error::other(
                    "the agent stopped before it was ready",
                )))
            }
            Err(_) => {}
        }
    }
}

fn agent_options() -> AgentOptions {
    let mut opts = AgentOptions::default();
    if let Some(d) = std::env::var("KEYWARD_AUTO_LOCK")
        .ok()
        .and_then(|v| humantime::parse_duration(&v).ok())
    {
        opts.auto_lock = Some(d);
    }
    opts
}

/// Asks the headless agent on the socket to stop; it locks before it exits.
fn stop_headless() {
    let Ok(dir) = keyward_agent::server::runtime_dir() else {
        return;
    };
    if let Ok(mut c) = keyward_agent::client::Client::connect(&dir.join("agent.sock")) {
        tracing::info!("a headless agent is running: asking it to stop so the app can take over");
        let _ = c.call(Request::Shutdown {});
    }
}
