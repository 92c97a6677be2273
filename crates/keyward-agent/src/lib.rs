//! Keyward's agent: the only process that holds an unlocked vault. It serves the local socket,
//! issues short-lived credentials, auto-locks when idle and records every request.
//!
//! The headless `keyward agent` and the desktop app run the same [`run`]; the CLI talks to it
//! through [`client::Client`].

#![forbid(unsafe_code)]

pub mod activity;
pub mod aliyun;
pub mod approvals;
pub mod aws;
pub mod cache;
pub mod client;
pub mod desktop;
pub mod forward;
pub mod fuzzing;

pub mod hardening;
pub mod iam;
pub mod interp;
pub mod lease;
pub mod oauth;
pub mod peer;
pub mod policywatch;
pub mod protocol;
pub mod provider;
pub mod ratelimit;
pub mod server;
pub mod service;
pub mod sessionwatch;
pub mod text;

use std::sync::Arc;
use std::time::Duration;

use keyward_core::{Vault, VaultPaths};
use thiserror::Error;
use tracing::info;

pub use service::{Agent, DEFAULT_AUTO_LOCK};

/// Errors that stop the agent from starting.
#[derive(Debug, Error)]
pub enum AgentError {
    /// Hardening failed: refuse to hold secrets in a dumpable process.
    #[error("refusing to start: {0}")]
    Hardening(String),
    /// No data directory could be found.
    #[error("cannot find a data directory: set XDG_DATA_HOME or HOME")]
    NoDataDir,
    /// Socket set-up failed.
    #[error(transparent)]
    Endpoint(#[from] server::EndpointError),
    /// The vault could not be opened.
    #[error(transparent)]
    Vault(#[from] keyward_core::VaultError),
    /// The catalog could not be opened.
    #[error(transparent)]
    Catalog(#[from] keyward_core::catalog::CatalogError),
    /// The async runtime could not start.
    #[error("cannot start the agent runtime: {0}")]
    Runtime(std::io::Error),
    /// Started with a variable that makes the dynamic loader load other code.
    #[error("refusing to start: {0} is set, and would load code of its choosing into the process that holds your keys: unset it (the keyward command does so when it starts the agent)")]
    LoaderVariable(&'static str),
}

/// Variables that make the dynamic loader load code into a process; the agent does not start
/// with any of them set.
pub const LOADER_VARIABLES: &[&str] = &["LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH"];

/// Agent settings.
#[derive(Debug, Clone, Default)]
pub struct AgentOptions {
    /// Idle time before auto-lock, when given on the command line; `None` uses the time the
    /// user chose in the vault's settings, else [`DEFAULT_AUTO_LOCK`].
    pub auto_lock: Option<Duration>,
    /// The desktop app this agent serves (its executable): trusted with the window's requests
    /// and started to show approval questions. `None`: a headless agent.
    pub app: Option<std::path::PathBuf>,
}

/// Runs the agent until asked to stop (Shutdown request, SIGTERM or SIGINT).
/// `ready` is called once the socket accepts connections, with the agent an embedding app
/// (the desktop shell) calls [`Agent::handle`] on directly.
pub fn run(
    opts: AgentOptions,
    ready: impl FnOnce(&std::path::Path, &Arc<Agent>),
) -> Result<(), AgentError> {
    if let Some(var) = LOADER_VARIABLES
        .iter()
        .find(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
    {
        return Err(AgentError::LoaderVariable(var));
    }
    hardening::harden_process().map_err(AgentError::Hardening)?;
    let dir = server::runtime_dir()?;
    server::prepare_runtime_dir(&dir)?;
    let _lock = server::take_instance_lock(&dir)?;
    let paths = VaultPaths::from_env().ok_or(AgentError::NoDataDir)?;
    let vault = Vault::open(paths.clone())?;
    // Checkpoints run on their own connection and thread, so commits on the request path never
    // wait for the WAL to be copied back and fsynced.
    vault.catalog().disable_autocheckpoint()?;
    let checkpointer = keyward_core::catalog::Catalog::open(&paths.catalog())?;
    std::thread::Builder::new()
        .name("keyward-checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(2));
            if let Err(e) = checkpointer.checkpoint() {
                tracing::warn!("catalog checkpoint failed: {e}");
            }
        })
        .map_err(AgentError::Runtime)?;
    let mut agent = Agent::new(vault, opts.auto_lock)?;
    agent.desktop = desktop::Desktop::new(opts.app);
    let policy = keyward_core::policy::path();
    agent.start_policy(&policy);
    let agent = Arc::new(agent);
    sessionwatch::spawn(Arc::clone(&agent));
    policywatch::spawn(Arc::clone(&agent), policy);
    forward::spawn(Arc::clone(&agent));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(AgentError::Runtime)?;
    let socket = dir.join("agent.sock");
    rt.block_on(async {
        let listener = server::bind(&socket)?;
        info!(socket = %socket.display(), "agent listening");
        ready(&socket, &agent);
        let ticker = {
            let agent = Arc::clone(&agent);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(1));
                let mut ticks: u64 = 0;
                loop {
                    every.tick().await;
                    agent.auto_lock_tick();
                    ticks += 1;
                    // An old key's grace period ends while the agent runs; a day since AWS
                    // was asked about a key passes.
                    if ticks % 600 == 0 {
                        let agent = Arc::clone(&agent);
                        tokio::spawn(async move {
                            agent.finish_rotations().await;
                            agent.check_provider_use().await;
                        });
                    }
                }
            })
        };
        let signals = {
            let agent = Arc::clone(&agent);
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
                agent.lock(&peer::this_process(), "agent stopped");
                agent.shutdown.notify_one();
            })
        };
        server::serve(Arc::clone(&agent), listener).await;
        ticker.abort();
        signals.abort();
        Ok::<(), AgentError>(())
    })?;
    agent.lock(&peer::this_process(), "agent stopped");
    let _ = std::fs::remove_file(&socket);
    info!("agent stopped");
    Ok(())
}
