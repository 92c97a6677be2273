//! Editing the AWS config and shared credentials files.
//!
//! These are the user's files: every byte we do not mean to change is kept (comments, ordering,
//! spacing, line endings). INI crates re-serialise what they parse and drop comments and
//! formatting, so the edits here are line-based instead: the text is split into lines that keep
//! their terminators, each line is classified the way the AWS CLI reads it, and an edit replaces,
//! inserts or drops only the lines it is about. Joining the lines gives back every other byte.
//!
//! The classification follows botocore, which reads both files with Python's
//! `configparser.RawConfigParser` (botocore `configloader.raw_config_parse`): whole-line `#` and
//! `;` comments, `key = value` or `key: value` split at the first delimiter, option names compared
//! without case, and a line indented deeper than the option above it continuing that option's
//! value rather than starting a new one.
//!
//! Writes are atomic (temp file, fsync, rename, fsync of the directory) and keep a 0600 backup of
//! the previous file, which for the credentials file still holds plaintext keys.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use zeroize::Zeroizing;

/// The option this module writes (AWS CLI "Sourcing credentials with an external process").
const CREDENTIAL_PROCESS: &str = "credential_process";

/// Errors editing AWS files, each with the path and what the user can do.
#[derive(Debug, Error)]
pub enum AwsFileError {
    /// Reading an existing file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing failed; the original file is untouched.
    #[error("cannot write {path} (it was left unchanged): {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// There is no home directory to find the files in.
    #[error(
        "cannot find the AWS files: set HOME, or AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE"
    )]
    NoHome,
    /// A value would break the file format.
    #[error("{what} cannot go in an AWS file: it {why}")]
    BadValue {
        /// Which value, e.g. "the profile name".
        what: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
}

mod config;
mod credentials;
mod lines;
mod write;

pub use config::{conflicting_keys, credential_process_command, set_credential_process};
pub use credentials::{parse_credentials, remove_profiles, CredentialsProfile};
pub use write::{mode_to_keep, write_atomic_with_backup};

#[cfg(test)]
use lines::*;

/// Where the AWS config file is: $AWS_CONFIG_FILE, else $HOME/.aws/config.
pub fn config_path() -> Result<PathBuf, AwsFileError> {
    resolve_path(
        std::env::var_os("AWS_CONFIG_FILE"),
        std::env::var_os("HOME"),
        ".aws/config",
    )
}

/// Where the shared credentials file is: $AWS_SHARED_CREDENTIALS_FILE, else $HOME/.aws/credentials.
pub fn credentials_path() -> Result<PathBuf, AwsFileError> {
    resolve_path(
        std::env::var_os("AWS_SHARED_CREDENTIALS_FILE"),
        std::env::var_os("HOME"),
        ".aws/credentials",
    )
}

/// The file named by `set` (an environment variable's value), else `home/rel`.
fn resolve_path(
    set: Option<OsString>,
    home: Option<OsString>,
    rel: &str,
) -> Result<PathBuf, AwsFileError> {
    let home = home.filter(|h| !h.is_empty()).map(PathBuf::from);
    let Some(set) = set.filter(|v| !v.is_empty()).map(PathBuf::from) else {
        return home.map(|h| h.join(rel)).ok_or(AwsFileError::NoHome);
    };
    // botocore and the SDKs expand a leading `~` (os.path.expanduser); without this a quoted
    // `~/.aws/config` would name a directory called `~` under the current one.
    match set.strip_prefix("~") {
        Ok(rest) => home.map(|h| h.join(rest)).ok_or(AwsFileError::NoHome),
        Err(_) => Ok(set),
    }
}

#[cfg(test)]
mod tests;
