//! Reaching the agent: `keyward_shell::launch` (shared with the desktop app) does the work.

use anyhow::Result;
use keyward_agent::client::Client;

/// Connects to the running agent, or `None` if there is none.
pub fn existing() -> Result<Option<Client>> {
    Ok(keyward_shell::launch::existing()?)
}

/// Connects, starting the agent when needed.
pub fn agent() -> Result<Client> {
    Ok(keyward_shell::launch::agent()?)
}

/// Connects, starting the agent with `args` (after `agent`) when none is running.
pub fn agent_with(args: &[std::ffi::OsString]) -> Result<Client> {
    Ok(keyward_shell::launch::agent_with(args)?)
}
