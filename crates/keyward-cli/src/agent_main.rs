//! `keyward-agent`: the Keyward agent, the one process per user that holds the unlocked vault
//! and issues credentials; the `keyward` command and the desktop app talk to it over its socket
//! (`keyward agent` runs it). A program of its own so that the `keyward` command, which tools
//! start on every credential request, does not carry the agent (the AWS SDK, the Secret Service
//! client, the tray): a smaller program starts faster.

#![forbid(unsafe_code)]

mod duration_arg;
mod notify;
mod reminders;
mod tray;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;

/// The Keyward agent (`keyward agent` runs it; `keyward agent start` in the background).
#[derive(Parser)]
#[command(name = "keyward-agent", version, about)]
struct Args {
    /// Lock after this much idle time, e.g. 15m.
    #[arg(long, env = "KEYWARD_AUTO_LOCK", value_parser = duration_arg::parse)]
    auto_lock: Option<Duration>,
    /// Run for the desktop app: a tray icon, notifications, and the app's window opened when a
    /// program asks for credentials. The app is the `keyward-desktop` installed beside this
    /// executable, and no other: the agent hands its window a token that reveals keys.
    #[arg(long)]
    tray: bool,
}

fn main() -> ExitCode {
    // Before anything is read: a crash while a passphrase is in memory writes no core file.
    if let Err(e) = keyward_agent::hardening::no_core_dumps() {
        eprintln!("keyward-agent: {e}");
        return ExitCode::FAILURE;
    }
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYWARD_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("keyward=info,keyward_agent=info,keyward_core=info,warn")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = e
                .chain()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            eprintln!(
                "keyward: {}",
                keyward_agent::text::terminal_safe(&line, 2000)
            );
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    if args.auto_lock.is_some_and(|d| d < Duration::from_secs(1)) {
        bail!("--auto-lock must be at least 1s");
    }
    let app = match args.tray {
        true => Some(tray::app_path()?),
        false => None,
    };
    let opts = keyward_agent::AgentOptions {
        auto_lock: args.auto_lock,
        app,
    };
    if args.tray {
        return tray::run(opts);
    }
    keyward_agent::run(opts, |socket, _| {
        tracing::info!("ready on {}", socket.display());
    })?;
    Ok(())
}
