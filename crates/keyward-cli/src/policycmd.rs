//! What admins run: `keyward policy check` validates a policy file before it is rolled out, as
//! `visudo -c` or `nginx -t` do, so a typo is found on one machine and not on every laptop;
//! `keyward report` writes the key directory.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Subcommand;
use keyward_core::policy::{Policy, SYSTEM_PATH};

/// `keyward policy …`.
#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Check a policy file's content before installing it (exit 1 with the line at fault).
    Check {
        /// The file (default: /etc/keyward/policy.toml).
        file: Option<std::path::PathBuf>,
    },
}

/// Runs a `keyward policy` command.
pub fn run(cmd: PolicyCmd) -> Result<()> {
    match cmd {
        PolicyCmd::Check { file } => check(&file.unwrap_or_else(|| SYSTEM_PATH.into())),
    }
}

/// Parses `path` as a policy and says what it sets, or fails with the line and the reason.
/// The content only: where it is installed, its owner and mode are checked when it is loaded.
fn check(path: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let policy = Policy::parse(path, &text)?;
    let rules: Vec<&str> = policy.rules.iter().map(|r| r.name.as_str()).collect();
    let rules = match rules.len() {
        0 => "no rules".to_owned(),
        n => format!("{n} rule(s): {}", rules.join(", ")),
    };
    println!("{}: a valid policy (defaults and {rules})", path.display());
    Ok(())
}

/// `keyward report`: the key directory in `format`, to `output` or standard output.
pub fn report(format: keyward_shell::report::Format, output: Option<&Path>) -> Result<()> {
    let mut client = crate::connect::agent()?;
    let keys = client.list()?;
    let policy = client.status()?.policy;
    let now = time::OffsetDateTime::now_utc();
    let at = now
        .replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .context("cannot format the time")?;
    let text = keyward_shell::report::render(&keys, &policy, &at, format)?;
    match output {
        Some(path) => {
            keyward_shell::report::write(path, &text)?;
            eprintln!(
                "Wrote the directory of {} keys to {}",
                keys.len(),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}
