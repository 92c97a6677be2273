//! The shell operations the `keyward` command and the desktop app share, so the two cannot
//! drift: finding the `keyward` binary and starting, finding and stopping the agent
//! ([`launch`]), the FIDO2 security-key ceremonies ([`ceremony`]), and importing AWS keys from
//! the shared credentials file and pointing AWS profiles at Keyward ([`aws`]), and the key
//! directory for admins ([`report`]).
//!
//! Each operation returns what happened as data; the CLI prints it and the app shows it. None
//! prompts: what needs the user (a PIN, "touch your key") is asked through a callback.

#![forbid(unsafe_code)]

pub mod aliyun;

/// Refuses to write `path` when it no longer holds `read_as` (`None`: it did not exist): a
/// tool's config that changed since it was read may hold what the edit would lose.
pub(crate) fn unchanged_since_read(
    path: &std::path::Path,
    read_as: Option<&[u8]>,
) -> Result<(), ShellError> {
    let now = match std::fs::read(path) {
        Ok(b) => Some(zeroize::Zeroizing::new(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(why) => {
            return Err(ShellError::Read {
                path: path.to_owned(),
                why,
            })
        }
    };
    if now.as_ref().map(|b| b.as_slice()) != read_as {
        return Err(ShellError::ChangedMeanwhile(path.to_owned()));
    }
    Ok(())
}
pub mod aws;
pub mod ceremony;
pub mod docker;
pub mod fuzzing;
pub mod gitcred;
pub mod kube;
pub mod launch;
pub mod leases;
pub mod report;
pub mod usage;

use std::path::PathBuf;

use keyward_agent::client::ClientError;
use keyward_authenticator::AuthenticatorError;
use keyward_core::awsfiles::AwsFileError;
use thiserror::Error;

/// What went wrong in a shared operation, each with what to do.
#[derive(Debug, Error)]
pub enum ShellError {
    /// The agent refused or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// An AWS file could not be read, parsed or written.
    #[error(transparent)]
    AwsFile(#[from] AwsFileError),
    /// The security key failed.
    #[error(transparent)]
    Authenticator(#[from] AuthenticatorError),
    /// The agent's socket or runtime directory cannot be found.
    #[error(transparent)]
    Endpoint(#[from] keyward_agent::server::EndpointError),
    /// A file could not be read.
    #[error("cannot read {}: {why}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        why: std::io::Error,
    },
    /// A file could not be written (nothing was: the old one, if any, is as it was).
    #[error("cannot write {}: {why}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        why: std::io::Error,
    },
    /// The key directory could not be rendered.
    #[error("cannot render the key directory: {0}")]
    Report(String),
    /// A file is not UTF-8 text.
    #[error("{} is not UTF-8 text", .0.display())]
    NotText(PathBuf),
    /// No AWS credentials file to import from.
    #[error("no AWS credentials file at {}: nothing to import", .0.display())]
    NoCredentialsFile(PathBuf),
    /// A profile named for import has no key in the file.
    #[error("profile '{name}' has no long-lived key in {}", .path.display())]
    NoSuchProfile {
        /// The profile.
        name: String,
        /// The credentials file.
        path: PathBuf,
    },
    /// The `keyward` command is not installed where it can be found.
    #[error("the keyward command was not found next to this program or on PATH: install Keyward's command-line tool (scripts/run installs it with the app)")]
    NoBinary,
    /// `keyward-agent` is not installed beside the `keyward` command.
    #[error("the Keyward agent is not installed: {} is missing (it is installed beside the keyward command; reinstall Keyward)", .0.display())]
    NoAgentBinary(std::path::PathBuf),
    /// The agent could not be started, or did not come up.
    #[error("the Keyward agent did not start{}", .0.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    AgentDidNotStart(Option<String>),
    /// Starting the agent's process failed.
    #[error("cannot start the Keyward agent ({}): {why}", .exe.display())]
    Spawn {
        /// The command run.
        exe: PathBuf,
        /// Why.
        why: std::io::Error,
    },
    /// The agent was asked to stop and has not.
    #[error("the running Keyward agent was asked to stop but is still running")]
    StillRunning,
    /// The agent's log file cannot be opened.
    #[error("cannot open the agent's log {}: {why}", .path.display())]
    Log {
        /// The log file.
        path: PathBuf,
        /// Why.
        why: std::io::Error,
    },
    /// The credentials file changed between reading it and removing its keys.
    #[error("{} changed since Keyward read it: nothing was removed; import again", .0.display())]
    ChangedMeanwhile(PathBuf),
    /// The Alibaba Cloud config file is not one Keyward can edit.
    #[error("{} is not an Alibaba Cloud config Keyward can edit: {why}", .path.display())]
    AliyunConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A profile of that name exists and is not Keyward's.
    #[error("{} already has a profile '{name}' of mode {mode}: choose another name with --profile, or remove that profile first (it may hold a plain-text key)", .path.display())]
    AliyunProfileTaken {
        /// The file.
        path: PathBuf,
        /// The profile.
        name: String,
        /// Its mode.
        mode: String,
    },
    /// docker's config file is not what docker writes.
    #[error("{} is not a docker config Keyward can edit: {why}", .path.display())]
    DockerConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The kubeconfig was left as it was.
    #[error("{}: {why}", .path.display())]
    KubeConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        why: kube::KubeConfigError,
    },
    /// A key name is not valid.
    #[error(transparent)]
    Name(keyward_core::entry::EntryError),
    /// An AWS profile name is not valid.
    #[error("invalid profile name '{0}'")]
    ProfileName(String),
    /// `setup aws` was given a key of another kind.
    #[error("'{name}' is a {} key, not an AWS key", .kind.as_str())]
    NotAws {
        /// The key.
        name: String,
        /// Its kind.
        kind: keyward_core::EntryKind,
    },
    /// The agent's challenge or the authenticator's answer is not what WebAuthn expects.
    #[error("the agent and the security key disagree on the WebAuthn format (is the agent another version? restart it with `keyward agent stop`)")]
    WebAuthnFormat,
}
