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

/// The `credential_process` command line running the `keyward` executable at `exe` for key
/// `name`: an absolute path, in double quotes when it has spaces (the AWS CLI splits on them).
pub fn credential_process_command(exe: &Path, name: &str) -> Result<String, AwsFileError> {
    let exe = exe.to_str().ok_or(AwsFileError::BadValue {
        what: "the keyward executable's path",
        why: "is not UTF-8",
    })?;
    if exe.contains('"') || exe.chars().any(char::is_control) {
        return Err(AwsFileError::BadValue {
            what: "the keyward executable's path",
            why: "has characters credential_process cannot quote",
        });
    }
    Ok(if exe.contains(' ') {
        format!("\"{exe}\" cred aws --profile {name}")
    } else {
        format!("{exe} cred aws --profile {name}")
    })
}

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

/// How the AWS CLI reads one line (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line<'a> {
    /// Empty or whitespace only.
    Blank,
    /// A whole-line `#` or `;` comment.
    Comment,
    /// `[name]`, with the name's inner whitespace collapsed (`[ profile  dev ]` → `profile dev`).
    Header(String),
    /// `key = value` or `key: value`, both trimmed.
    Option { key: &'a str, value: &'a str },
    /// More of the value of the option on line `owner`.
    Continuation { owner: usize },
    /// Anything else (the AWS CLI rejects such a file; we leave the line alone).
    Other,
}

/// Lines with their terminators kept, so joining them gives back the exact text.
fn lines_keep(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Classifies every line as `RawConfigParser._read` does.
fn classify<'a>(lines: &[&'a str]) -> Vec<Line<'a>> {
    let mut out = Vec::with_capacity(lines.len());
    let mut in_section = false;
    let mut option: Option<usize> = None;
    let mut indent_level = 0;
    for (i, line) in lines.iter().enumerate() {
        let s = line.trim();
        if s.is_empty() {
            out.push(Line::Blank);
            continue;
        }
        if s.starts_with('#') || s.starts_with(';') {
            out.push(Line::Comment);
            continue;
        }
        let indent = line.chars().take_while(|c| c.is_whitespace()).count();
        if let Some(owner) = option.filter(|_| indent > indent_level) {
            out.push(Line::Continuation { owner });
            continue;
        }
        indent_level = indent;
        if let Some(name) = header_name(s) {
            in_section = true;
            option = None;
            out.push(Line::Header(name));
        } else if let Some((key, value)) = split_option(s).filter(|_| in_section) {
            option = Some(i);
            out.push(Line::Option { key, value });
        } else {
            out.push(Line::Other);
        }
    }
    out
}

/// The section name of a trimmed header line: configparser's `\[(?P<header>.+)\]`, which ends
/// at the last `]` and ignores anything after it.
fn header_name(s: &str) -> Option<String> {
    let rest = s.strip_prefix('[')?;
    let inner = &rest[..rest.rfind(']')?];
    if inner.is_empty() {
        return None;
    }
    Some(inner.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Splits a trimmed option line at its first `=` or `:`.
fn split_option(s: &str) -> Option<(&str, &str)> {
    let at = s.find(['=', ':'])?;
    let key = s[..at].trim_end();
    if key.is_empty() {
        return None;
    }
    Some((key, s[at + 1..].trim()))
}

/// Line range (start, end exclusive) of the last section whose name satisfies `wanted`, header
/// included.
fn last_section(kinds: &[Line], wanted: impl Fn(&str) -> bool) -> Option<(usize, usize)> {
    let start = kinds
        .iter()
        .rposition(|k| matches!(k, Line::Header(n) if wanted(n)))?;
    let end = kinds[start + 1..]
        .iter()
        .position(|k| matches!(k, Line::Header(_)))
        .map_or(kinds.len(), |i| start + 1 + i);
    Some((start, end))
}

/// The config-file section of `profile`: `[default]` (or the also-accepted `[profile default]`)
/// for "default", `[profile NAME]` otherwise. When several sections name the profile (which
/// configparser allows if they are spelled differently, e.g. `[profile  dev]`), botocore's
/// `build_profile_map` keeps the last one, so that is the one returned.
fn config_section(kinds: &[Line], profile: &str) -> Option<(usize, usize)> {
    if profile == "default" {
        last_section(kinds, |n| n == "default" || n == "profile default")
    } else {
        last_section(kinds, |n| n.strip_prefix("profile ") == Some(profile))
    }
}

/// Whether `kind` is an option named `name`; configparser lowercases option names.
fn is_option(kind: &Line, name: &str) -> bool {
    matches!(kind, Line::Option { key, .. } if key.eq_ignore_ascii_case(name))
}

/// The file's line ending: that of its first line, `\n` if it has no complete line.
fn line_ending(lines: &[&str]) -> &'static str {
    match lines.iter().find(|l| l.ends_with('\n')) {
        Some(l) if l.ends_with("\r\n") => "\r\n",
        _ => "\n",
    }
}

/// The terminator a line ends with (`\r\n`, `\n`, or none for an unterminated last line).
fn terminator(line: &str) -> &str {
    if line.ends_with("\r\n") {
        "\r\n"
    } else if line.ends_with('\n') {
        "\n"
    } else {
        ""
    }
}

/// The whitespace a line starts with.
fn leading_space(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

fn check_line(what: &'static str, v: &str) -> Result<(), AwsFileError> {
    if v.contains(['\n', '\r', '\0']) {
        return Err(AwsFileError::BadValue {
            what,
            why: "contains a line break or NUL",
        });
    }
    Ok(())
}

/// Returns `text` with profile `profile`'s `credential_process` set to `command`, every other byte kept.
///
/// An existing `credential_process` option of the section (matched without case, as the AWS CLI
/// does; any `:`/`=` spacing) is replaced in place, keeping its indentation and terminator and
/// dropping its continuation lines and any duplicates. Otherwise the line goes after the
/// section's last option (before trailing blank and comment lines, which usually introduce the
/// next section). A missing section is appended after one blank line. New lines use the file's
/// line ending.
pub fn set_credential_process(
    text: &str,
    profile: &str,
    command: &str,
) -> Result<String, AwsFileError> {
    const PROFILE: &str = "the profile name";
    check_line(PROFILE, profile)?;
    if profile.is_empty() || profile.contains(char::is_whitespace) {
        // botocore shlex-splits `profile NAME` and ignores a section that is not two words.
        return Err(AwsFileError::BadValue {
            what: PROFILE,
            why: "is empty or contains a space",
        });
    }
    check_line("the credential_process command", command)?;
    if command.trim().is_empty() {
        return Err(AwsFileError::BadValue {
            what: "the credential_process command",
            why: "is empty",
        });
    }
    let lines = lines_keep(text);
    let kinds = classify(&lines);
    let eol = line_ending(&lines);
    let Some((start, end)) = config_section(&kinds, profile) else {
        let mut out = text.to_owned();
        if let Some(last) = lines.last() {
            if !last.ends_with('\n') {
                out.push_str(eol);
            }
            if !last.trim().is_empty() {
                out.push_str(eol);
            }
        }
        let header = if profile == "default" {
            "[default]".to_owned()
        } else {
            format!("[profile {profile}]")
        };
        out.push_str(&format!(
            "{header}{eol}{CREDENTIAL_PROCESS} = {command}{eol}"
        ));
        return Ok(out);
    };

    let existing: Vec<usize> = (start + 1..end)
        .filter(|&i| is_option(&kinds[i], CREDENTIAL_PROCESS))
        .collect();
    let mut out = String::with_capacity(text.len() + command.len() + 32);
    if let Some(&first) = existing.first() {
        for (i, line) in lines.iter().enumerate() {
            let owner = match kinds[i] {
                Line::Continuation { owner } => Some(owner),
                _ => None,
            };
            if i == first {
                // The same indentation, so the lines after it keep their meaning.
                out.push_str(leading_space(line));
                out.push_str(&format!("{CREDENTIAL_PROCESS} = {command}"));
                out.push_str(terminator(line));
            } else if !existing.contains(&i) && !owner.is_some_and(|o| existing.contains(&o)) {
                out.push_str(line);
            }
        }
    } else {
        let last = (start..end)
            .rev()
            .find(|&i| !matches!(kinds[i], Line::Blank | Line::Comment))
            .unwrap_or(start);
        // Indented like the next header, so an indented header is not turned into a
        // continuation of the new line (in a file whose headers are not indented this is "").
        let indent = lines.get(end).map_or("", |l| leading_space(l));
        for (i, line) in lines.iter().enumerate() {
            out.push_str(line);
            if i == last {
                if !line.ends_with('\n') {
                    out.push_str(eol);
                }
                out.push_str(&format!("{indent}{CREDENTIAL_PROCESS} = {command}{eol}"));
            }
        }
    }
    Ok(out)
}

/// Keys in a config-file section that would conflict with credential_process — names only.
///
/// Returns each of `aws_access_key_id`, `aws_secret_access_key` and `aws_session_token` found in
/// the profile's section (matched without case), as spelled in the file, once each.
pub fn conflicting_keys(text: &str, profile: &str) -> Vec<String> {
    const CONFLICTS: [&str; 3] = [
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
    ];
    let lines = lines_keep(text);
    let kinds = classify(&lines);
    let Some((start, end)) = config_section(&kinds, profile) else {
        return Vec::new();
    };
    let mut found: Vec<String> = Vec::new();
    for kind in &kinds[start + 1..end] {
        if let Line::Option { key, .. } = kind {
            if CONFLICTS.iter().any(|c| is_option(kind, c)) && !found.iter().any(|f| f == key) {
                found.push((*key).to_owned());
            }
        }
    }
    found
}

/// One profile's long-lived key from the shared credentials file.
pub struct CredentialsProfile {
    /// The profile (section) name.
    pub name: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// Whether the profile also has a session token (so its keys are temporary).
    pub session_token_present: bool,
    /// The region, if the profile sets one.
    pub region: Option<String>,
}

impl std::fmt::Debug for CredentialsProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsProfile")
            .field("name", &self.name)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &format_args!("<redacted>"))
            .field("session_token_present", &self.session_token_present)
            .field("region", &self.region)
            .finish()
    }
}

impl CredentialsProfile {
    /// Why this profile cannot be imported into Keyward, if it cannot.
    pub fn import_problem(&self) -> Option<&'static str> {
        if self.session_token_present {
            Some("it holds temporary credentials (a session token), not a long-lived key")
        } else if crate::entry::validate_name(&self.name).is_err() {
            Some("Keyward key names use letters, digits, '.', '_' and '-'")
        } else {
            None
        }
    }
}

/// Parses the shared credentials file; also returns the names of sections without a key pair.
///
/// A section is skipped (and named in the second vec) if its `aws_access_key_id` or
/// `aws_secret_access_key` is missing, empty, or continued over several lines.
pub fn parse_credentials(text: &str) -> (Vec<CredentialsProfile>, Vec<String>) {
    #[derive(Clone, Copy)]
    enum Slot {
        Id,
        Secret,
        Token,
        Region,
        Other,
    }
    struct Partial {
        name: String,
        id: Option<String>,
        secret: Option<SecretString>,
        token: bool,
        region: Option<String>,
        multiline_key: bool,
    }
    let lines = lines_keep(text);
    let kinds = classify(&lines);
    let mut sections: Vec<Partial> = Vec::new();
    let mut slot = Slot::Other;
    for kind in &kinds {
        match kind {
            Line::Header(name) => {
                sections.push(Partial {
                    name: name.clone(),
                    id: None,
                    secret: None,
                    token: false,
                    region: None,
                    multiline_key: false,
                });
                slot = Slot::Other;
            }
            Line::Option { key, value } => {
                let Some(cur) = sections.last_mut() else {
                    continue;
                };
                let key = key.to_ascii_lowercase();
                slot = match key.as_str() {
                    "aws_access_key_id" => {
                        cur.id = Some((*value).to_owned());
                        Slot::Id
                    }
                    "aws_secret_access_key" => {
                        cur.secret = Some(SecretString::from(*value));
                        Slot::Secret
                    }
                    "aws_session_token" => {
                        cur.token = !value.is_empty();
                        Slot::Token
                    }
                    "region" => {
                        cur.region = Some((*value).to_owned()).filter(|r| !r.is_empty());
                        Slot::Region
                    }
                    _ => Slot::Other,
                };
            }
            Line::Continuation { .. } => {
                let Some(cur) = sections.last_mut() else {
                    continue;
                };
                match slot {
                    Slot::Id | Slot::Secret => cur.multiline_key = true,
                    Slot::Token => cur.token = true,
                    Slot::Region => cur.region = None,
                    Slot::Other => {}
                }
            }
            Line::Blank | Line::Comment | Line::Other => {}
        }
    }
    let mut found = Vec::new();
    let mut incomplete = Vec::new();
    for s in sections {
        let id = s.id.filter(|v| !v.is_empty());
        let secret = s.secret.filter(|v| !v.expose_secret().is_empty());
        match (id, secret, s.multiline_key) {
            (Some(access_key_id), Some(secret_access_key), false) => {
                found.push(CredentialsProfile {
                    name: s.name,
                    access_key_id,
                    secret_access_key,
                    session_token_present: s.token,
                    region: s.region,
                })
            }
            _ => incomplete.push(s.name),
        }
    }
    (found, incomplete)
}

/// Returns `text` without the sections of `names` (header through the line before the next header).
pub fn remove_profiles(text: &str, names: &[&str]) -> String {
    let lines = lines_keep(text);
    let kinds = classify(&lines);
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for (line, kind) in lines.iter().zip(&kinds) {
        if let Line::Header(name) = kind {
            skipping = names.contains(&name.as_str());
        }
        if !skipping {
            out.push_str(line);
        }
    }
    out
}

/// The permission bits a rewrite of `path` keeps: the file's own, or 0600 for a new file.
pub fn mode_to_keep(path: &Path) -> u32 {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o600)
}

/// Atomically replaces `path` with `contents` (mode `mode`), keeping a 0600 backup of the old file.
///
/// The backup is `<path>.keyward-backup-<unix-seconds>` (with `-N` added if taken); its path is
/// returned. A symlinked `path` is written where it points, so dotfile managers keep their link.
/// A missing parent directory is created with mode 0700. On error the original is untouched and
/// neither the temp file nor the backup is left behind.
pub fn write_atomic_with_backup(
    path: &Path,
    contents: &str,
    mode: u32,
) -> Result<Option<PathBuf>, AwsFileError> {
    let werr = |source| AwsFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let rerr = |source| AwsFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(rerr)?,
        _ => path.to_path_buf(),
    };
    let Some(file_name) = target.file_name().map(OsStr::to_owned) else {
        return Err(werr(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path does not name a file",
        )));
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Zeroized on drop: the credentials file holds secret keys.
    let old = match std::fs::read(&target) {
        Ok(bytes) => Some(Zeroizing::new(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(rerr(e)),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(werr)?;
    let backup = match &old {
        Some(bytes) => Some(write_backup(dir, &file_name, bytes).map_err(werr)?),
        None => None,
    };
    let replaced = write_temp(dir, &file_name, contents.as_bytes(), mode & 0o777).and_then(|tmp| {
        std::fs::rename(&tmp, &target).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    });
    if let Err(e) = replaced {
        if let Some(b) = &backup {
            let _ = std::fs::remove_file(b);
        }
        return Err(werr(e));
    }
    // Makes the rename durable. Best effort: the new file is already in place, so an error here
    // must not be reported as a write that left the original unchanged.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(backup)
}

fn unix_time() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// `dir/<file_name><suffix>` without going through a lossy string.
fn sibling(dir: &Path, file_name: &OsStr, suffix: &str) -> PathBuf {
    let mut name = file_name.to_owned();
    name.push(suffix);
    dir.join(name)
}

/// Writes `bytes` to a new file `dir/<file_name>.keyward-backup-<unix-seconds>[-N]`, mode 0600.
fn write_backup(dir: &Path, file_name: &OsStr, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let stamp = unix_time().as_secs();
    for n in 0..1000 {
        let suffix = if n == 0 {
            format!(".keyward-backup-{stamp}")
        } else {
            format!(".keyward-backup-{stamp}-{n}")
        };
        let path = sibling(dir, file_name, &suffix);
        match create_new(&path) {
            Ok(file) => {
                return fill(file, bytes, 0o600)
                    .map(|()| path.clone())
                    .inspect_err(|_| {
                        let _ = std::fs::remove_file(&path);
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "no free backup file name",
    ))
}

/// Writes `bytes` to a new hidden temp file beside the target and returns its path.
fn write_temp(dir: &Path, file_name: &OsStr, bytes: &[u8], mode: u32) -> std::io::Result<PathBuf> {
    for attempt in 0..16 {
        let suffix = format!(
            ".keyward-tmp-{:010}-{:09}-{attempt}",
            std::process::id(),
            unix_time().subsec_nanos()
        );
        let mut name = OsString::from(".");
        name.push(file_name);
        name.push(&suffix);
        let path = dir.join(name);
        match create_new(&path) {
            Ok(file) => {
                return fill(file, bytes, mode)
                    .map(|()| path.clone())
                    .inspect_err(|_| {
                        let _ = std::fs::remove_file(&path);
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "no free temporary file name",
    ))
}

/// Creates a file that must not exist yet, readable by its owner only until `fill` sets its mode.
fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Sets the file's mode exactly (the umask does not apply), writes `bytes` and fsyncs.
fn fill(mut file: std::fs::File, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str, profile: &str) -> String {
        set_credential_process(text, profile, "/bin/kw cred aws --profile x").expect("set")
    }

    #[test]
    fn inserts_into_an_empty_file() {
        assert_eq!(
            set("", "dev"),
            "[profile dev]\ncredential_process = /bin/kw cred aws --profile x\n"
        );
        assert_eq!(
            set("", "default"),
            "[default]\ncredential_process = /bin/kw cred aws --profile x\n"
        );
    }

    #[test]
    fn appends_a_missing_section_after_one_blank_line() {
        let tail = "[profile dev]\ncredential_process = /bin/kw cred aws --profile x\n";
        assert_eq!(
            set("[default]\nregion = x", "dev"),
            format!("[default]\nregion = x\n\n{tail}")
        );
        assert_eq!(
            set("[default]\nregion = x\n", "dev"),
            format!("[default]\nregion = x\n\n{tail}")
        );
        assert_eq!(
            set("[default]\nregion = x\n\n", "dev"),
            format!("[default]\nregion = x\n\n{tail}")
        );
        // A section the AWS CLI does not read as `[profile dev]` is not it.
        assert_eq!(
            set("[dev]\nregion = x\n", "dev"),
            format!("[dev]\nregion = x\n\n{tail}")
        );
    }

    #[test]
    fn inserts_after_the_last_option_of_an_existing_section() {
        let text = "# top\n[profile dev]\n# keys below\nregion = eu-west-1 ; not a comment\noutput=json\n\n# the prod account\n[ profile  prod ]\nregion = us-east-1\n";
        assert_eq!(
            set_credential_process(text, "dev", "c").expect("set"),
            "# top\n[profile dev]\n# keys below\nregion = eu-west-1 ; not a comment\noutput=json\ncredential_process = c\n\n# the prod account\n[ profile  prod ]\nregion = us-east-1\n"
        );
        assert_eq!(
            set_credential_process(text, "prod", "c").expect("set"),
            "# top\n[profile dev]\n# keys below\nregion = eu-west-1 ; not a comment\noutput=json\n\n# the prod account\n[ profile  prod ]\nregion = us-east-1\ncredential_process = c\n"
        );
        // An empty section, the last line unterminated.
        assert_eq!(
            set_credential_process("[profile dev]", "dev", "c").expect("set"),
            "[profile dev]\ncredential_process = c\n"
        );
        // After a nested value's continuation lines, not inside them.
        assert_eq!(
            set_credential_process(
                "[profile dev]\ns3 =\n  max_concurrent_requests = 4\n",
                "dev",
                "c"
            )
            .expect("set"),
            "[profile dev]\ns3 =\n  max_concurrent_requests = 4\ncredential_process = c\n"
        );
    }

    #[test]
    fn replaces_an_existing_line_in_place() {
        let text = "[profile dev]\nregion = x\ncredential_process=old --flag\noutput = json\n[profile other]\ncredential_process = keep\n";
        assert_eq!(
            set_credential_process(text, "dev", "new").expect("set"),
            "[profile dev]\nregion = x\ncredential_process = new\noutput = json\n[profile other]\ncredential_process = keep\n"
        );
        // The AWS CLI reads option names without case and accepts `:`; a second line would make
        // it reject the whole file as a duplicate.
        assert_eq!(
            set_credential_process("[profile dev]\nCredential_Process : old\n", "dev", "new")
                .expect("set"),
            "[profile dev]\ncredential_process = new\n"
        );
        // Indentation and a missing final newline are kept; continuation lines and duplicates go.
        assert_eq!(
            set_credential_process(
                "[profile dev]\n  region = x\n  credential_process = old\n      --more\n  output = json\n  credential_process = dup\n  tail = 1",
                "dev",
                "new"
            )
            .expect("set"),
            "[profile dev]\n  region = x\n  credential_process = new\n  output = json\n  tail = 1"
        );
        assert_eq!(
            set_credential_process("[profile dev]\ncredential_process = old", "dev", "new")
                .expect("set"),
            "[profile dev]\ncredential_process = new"
        );
        // A commented-out line is not the option.
        assert_eq!(
            set_credential_process("[profile dev]\n# credential_process = old\n", "dev", "new")
                .expect("set"),
            "[profile dev]\ncredential_process = new\n# credential_process = old\n"
        );
    }

    #[test]
    fn default_profile_uses_its_own_header() {
        let text = "[profile default-ish]\nregion = a\n[default]\nregion = b\n";
        assert_eq!(
            set_credential_process(text, "default", "c").expect("set"),
            "[profile default-ish]\nregion = a\n[default]\nregion = b\ncredential_process = c\n"
        );
        // `[profile default]` also names the default profile.
        assert_eq!(
            set_credential_process("[profile default]\nregion = b\n", "default", "c").expect("set"),
            "[profile default]\nregion = b\ncredential_process = c\n"
        );
        assert_eq!(
            set_credential_process("[default]\nregion = b\n", "dev", "c").expect("set"),
            "[default]\nregion = b\n\n[profile dev]\ncredential_process = c\n"
        );
    }

    #[test]
    fn edits_the_last_of_several_sections_for_a_profile_as_the_aws_cli_reads_it() {
        assert_eq!(
            set_credential_process(
                "[profile dev]\nregion = a\n[profile  dev]\nregion = b\n",
                "dev",
                "c"
            )
            .expect("set"),
            "[profile dev]\nregion = a\n[profile  dev]\nregion = b\ncredential_process = c\n"
        );
        assert_eq!(
            set_credential_process("[profile default]\nregion = a\n[default]\n", "default", "c")
                .expect("set"),
            "[profile default]\nregion = a\n[default]\ncredential_process = c\n"
        );
        assert_eq!(
            conflicting_keys(
                "[profile dev]\naws_access_key_id = A\n[profile  dev]\naws_session_token = T\n",
                "dev"
            ),
            vec!["aws_session_token"]
        );
    }

    #[test]
    fn keeps_crlf_line_endings() {
        assert_eq!(
            set_credential_process(
                "[default]\r\ncredential_process=old\r\noutput = json\r\n",
                "default",
                "new"
            )
            .expect("set"),
            "[default]\r\ncredential_process = new\r\noutput = json\r\n"
        );
        assert_eq!(
            set_credential_process(
                "[profile dev]\r\nregion = x\r\n\r\n[default]\r\n",
                "dev",
                "c"
            )
            .expect("set"),
            "[profile dev]\r\nregion = x\r\ncredential_process = c\r\n\r\n[default]\r\n"
        );
        assert_eq!(
            set_credential_process("[default]\r\nregion = x", "dev", "c").expect("set"),
            "[default]\r\nregion = x\r\n\r\n[profile dev]\r\ncredential_process = c\r\n"
        );
    }

    #[test]
    fn indented_next_header_stays_a_header() {
        assert_eq!(
            set_credential_process(
                "[profile dev]\n  [profile prod]\n  region = x\n",
                "dev",
                "c"
            )
            .expect("set"),
            "[profile dev]\n  credential_process = c\n  [profile prod]\n  region = x\n"
        );
    }

    #[test]
    fn rejects_values_that_would_break_the_file() {
        let bad = |profile: &str, command: &str| match set_credential_process("", profile, command)
        {
            Err(AwsFileError::BadValue { what, .. }) => what,
            other => panic!("expected BadValue, got {other:?}"),
        };
        assert_eq!(
            bad("dev", "kw\nregion = evil"),
            "the credential_process command"
        );
        assert_eq!(bad("dev", "kw\r"), "the credential_process command");
        assert_eq!(bad("dev", "kw\0"), "the credential_process command");
        assert_eq!(bad("dev", "  "), "the credential_process command");
        assert_eq!(bad("dev]\n[x", "kw"), "the profile name");
        assert_eq!(bad("a\0", "kw"), "the profile name");
        assert_eq!(bad("my dev", "kw"), "the profile name");
        assert_eq!(bad("", "kw"), "the profile name");
        let msg = AwsFileError::BadValue {
            what: "the credential_process command",
            why: "contains a line break or NUL",
        }
        .to_string();
        assert_eq!(
            msg,
            "the credential_process command cannot go in an AWS file: it contains a line break or NUL"
        );
    }

    #[test]
    fn conflicting_keys_are_named_not_valued() {
        let text = "[profile dev]\naws_access_key_id = AKIAKEYWARDTEST001\nregion = x\nAWS_Secret_Access_Key: s3cr3t\n# aws_session_token = commented\ns3 =\n  aws_session_token = nested\naws_access_key_id = again\n[profile other]\naws_session_token = t\n";
        assert_eq!(
            conflicting_keys(text, "dev"),
            vec!["aws_access_key_id", "AWS_Secret_Access_Key"]
        );
        assert_eq!(conflicting_keys(text, "other"), vec!["aws_session_token"]);
        assert!(conflicting_keys(text, "missing").is_empty());
        assert!(conflicting_keys("[default]\nregion = x\n", "default").is_empty());
    }

    #[test]
    fn parses_credentials_with_comments_odd_spacing_and_missing_keys() {
        let text = "region = before-any-section\n; keys\n[ci]\n\taws_access_key_id=AKIAKEYWARDTEST001\naws_secret_access_key =  s3cr3t  \n\n# half a pair\n[half]\naws_access_key_id = AKIAHALF\n[ tmp ]\nAWS_ACCESS_KEY_ID: ASIA1\naws_secret_access_key:t\naws_session_token = tok\nregion = eu-west-1\n[empty]\naws_access_key_id =\naws_secret_access_key = x\n[split]\naws_access_key_id = AKIASPLIT\naws_secret_access_key = abc\n    def\n[regiononly]\nregion = us-east-1\n";
        let (found, incomplete) = parse_credentials(text);
        assert_eq!(incomplete, vec!["half", "empty", "split", "regiononly"]);
        let names: Vec<&str> = found.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["ci", "tmp"]);
        assert_eq!(found[0].access_key_id, "AKIAKEYWARDTEST001");
        assert_eq!(found[0].secret_access_key.expose_secret(), "s3cr3t");
        assert!(!found[0].session_token_present);
        assert_eq!(found[0].region, None);
        assert_eq!(found[1].access_key_id, "ASIA1");
        assert_eq!(found[1].secret_access_key.expose_secret(), "t");
        assert!(found[1].session_token_present);
        assert_eq!(found[1].region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            format!("{:?}", found[0]),
            "CredentialsProfile { name: \"ci\", access_key_id: \"AKIAKEYWARDTEST001\", secret_access_key: <redacted>, session_token_present: false, region: None }"
        );
        assert_eq!(parse_credentials("").0.len(), 0);
    }

    #[test]
    fn remove_profiles_keeps_everything_else_byte_exact() {
        let text = "; keys\n[ci]\naws_access_key_id=A\r\n  [half]\n\n# prod\n[prod]\naws_access_key_id = B\n[last]\nx = 1";
        // `  [half]` continues ci's value: it is not a header, so it goes with ci.
        assert_eq!(
            remove_profiles(text, &["ci"]),
            "; keys\n[prod]\naws_access_key_id = B\n[last]\nx = 1"
        );
        assert_eq!(
            remove_profiles(text, &["prod", "last"]),
            "; keys\n[ci]\naws_access_key_id=A\r\n  [half]\n\n# prod\n"
        );
        assert_eq!(remove_profiles(text, &["half", "none"]), text);
        assert_eq!(remove_profiles(text, &[]), text);
        assert_eq!(
            remove_profiles("[ a ]\r\nk = v\r\n[b]\r\nk = w\r\n", &["a"]),
            "[b]\r\nk = w\r\n"
        );
    }

    #[test]
    fn resolves_paths_from_the_environment() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            resolve_path(os("/etc/aws"), os("/home/u"), ".aws/config").expect("path"),
            PathBuf::from("/etc/aws")
        );
        assert_eq!(
            resolve_path(os("~/cfg/aws"), os("/home/u"), ".aws/config").expect("path"),
            PathBuf::from("/home/u/cfg/aws")
        );
        assert_eq!(
            resolve_path(os(""), os("/home/u"), ".aws/config").expect("path"),
            PathBuf::from("/home/u/.aws/config")
        );
        assert_eq!(
            resolve_path(None, os("/home/u"), ".aws/credentials").expect("path"),
            PathBuf::from("/home/u/.aws/credentials")
        );
        assert!(matches!(
            resolve_path(None, os(""), ".aws/config"),
            Err(AwsFileError::NoHome)
        ));
        assert!(matches!(
            resolve_path(os("~/x"), None, ".aws/config"),
            Err(AwsFileError::NoHome)
        ));
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn atomic_write_creates_the_directory_and_keeps_a_private_backup() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("aws");
        let path = dir.join("config");
        assert_eq!(
            write_atomic_with_backup(&path, "one\n", 0o640).expect("write"),
            None
        );
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "one\n");
        assert_eq!(mode(&path), 0o640);
        assert_eq!(entries(&dir), vec!["config"]);

        let backup = write_atomic_with_backup(&path, "two\n", 0o644)
            .expect("write")
            .expect("a backup");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two\n");
        assert_eq!(mode(&path), 0o644);
        assert_eq!(std::fs::read_to_string(&backup).expect("read"), "one\n");
        assert_eq!(mode(&backup), 0o600);
        let backup_name = backup
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let stamp = backup_name
            .strip_prefix("config.keyward-backup-")
            .expect("backup name");
        assert!(stamp.parse::<u64>().is_ok(), "{backup_name}");
        assert_eq!(backup.parent(), Some(dir.as_path()));

        // A second backup in the same second gets its own name; no temp file is left.
        let second = write_atomic_with_backup(&path, "three\n", 0o600)
            .expect("write")
            .expect("a backup");
        assert_ne!(second, backup);
        assert_eq!(std::fs::read_to_string(&second).expect("read"), "two\n");
        assert_eq!(std::fs::read_to_string(&backup).expect("read"), "one\n");
        assert_eq!(entries(&dir).len(), 3);
        assert!(entries(&dir).iter().all(|n| !n.contains("tmp")));
    }

    #[test]
    fn atomic_write_follows_a_symlink() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let real = tmp.path().join("dotfiles-config");
        std::fs::write(&real, "old\n").expect("write");
        let link = tmp.path().join("config");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let backup = write_atomic_with_backup(&link, "new\n", 0o600)
            .expect("write")
            .expect("a backup");
        assert!(std::fs::symlink_metadata(&link)
            .expect("metadata")
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).expect("read"), "new\n");
        assert_eq!(std::fs::read_to_string(&backup).expect("read"), "old\n");
    }

    #[test]
    fn atomic_write_failure_leaves_everything_as_it_was() {
        // Tests run as root, so permissions cannot stop a write; a parent that is a file can.
        let tmp = tempfile::tempdir().expect("tempdir");
        let blocker = tmp.path().join("blocker");
        std::fs::write(&blocker, "x").expect("write");
        let err = write_atomic_with_backup(&blocker.join("config"), "y", 0o600)
            .expect_err("a file cannot be a directory");
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read {}", blocker.join("config").display())),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&blocker).expect("read"), "x");
        assert_eq!(entries(tmp.path()), vec!["blocker"]);

        // A directory in the way: reading it fails before anything is written.
        let dir = tmp.path().join("aws");
        std::fs::create_dir(&dir).expect("mkdir");
        let target = dir.join("config");
        std::fs::create_dir(&target).expect("mkdir");
        assert!(matches!(
            write_atomic_with_backup(&target, "y", 0o600),
            Err(AwsFileError::Read { .. })
        ));
        assert_eq!(entries(&dir), vec!["config"]);

        // The temp file fails after the backup was made: the backup goes too. A 229-byte name
        // leaves room for the 26-byte backup suffix (255 in all) but not for the 36-byte temp one.
        let long = dir.join("c".repeat(229));
        std::fs::write(&long, "old").expect("write");
        let err = write_atomic_with_backup(&long, "new", 0o600).expect_err("name too long");
        assert!(matches!(err, AwsFileError::Write { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&long).expect("read"), "old");
        assert_eq!(entries(&dir), vec!["c".repeat(229), "config".to_owned()]);
    }

    /// The value the AWS CLI would read for `key` in `profile`'s config section, if exactly one
    /// line sets it and nothing continues it.
    fn sole_value(text: &str, profile: &str, key: &str) -> Option<String> {
        let lines = lines_keep(text);
        let kinds = classify(&lines);
        let (start, end) = config_section(&kinds, profile)?;
        let hits: Vec<usize> = (start + 1..end)
            .filter(|&i| is_option(&kinds[i], key))
            .collect();
        let [at] = hits[..] else { return None };
        if kinds.contains(&Line::Continuation { owner: at }) {
            return None;
        }
        match kinds[at] {
            Line::Option { value, .. } => Some(value.to_owned()),
            _ => None,
        }
    }

    /// Config files built from tricky lines; with `with_process` false, none mentions
    /// credential_process.
    fn config_file(with_process: bool) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let mut lines = vec![
            "[profile dev]",
            "[ profile  dev ]",
            "[default]",
            "[profile default]",
            "[profile other]",
            "  [profile other]",
            "[dev]",
            "region = eu-west-1",
            "output: json",
            "s3 =",
            "  max_concurrent_requests = 4",
            "; comment",
            "",
            "   ",
            "stray line",
        ];
        if with_process {
            lines.extend([
                "    credential_process = nested",
                "credential_process = old",
                "Credential_Process: older",
                "# credential_process = commented",
            ]);
        }
        let line = prop::sample::select(lines);
        (
            prop::collection::vec(line, 0..14),
            prop::bool::ANY,
            prop::bool::ANY,
        )
            .prop_map(|(lines, crlf, terminated)| {
                let eol = if crlf { "\r\n" } else { "\n" };
                let mut text = lines.join(eol);
                if terminated && !text.is_empty() {
                    text.push_str(eol);
                }
                text
            })
    }

    proptest::proptest! {
        /// After setting, the AWS CLI reads exactly our command for the profile, and setting it
        /// again changes nothing.
        #[test]
        fn set_gives_the_command_and_is_idempotent(
            text in config_file(true),
            profile in proptest::sample::select(vec!["dev", "default", "other", "new"]),
        ) {
            let cmd = "/bin/kw cred aws --profile x";
            let out = set_credential_process(&text, profile, cmd).expect("set");
            proptest::prop_assert_eq!(sole_value(&out, profile, "credential_process"), Some(cmd.to_owned()));
            proptest::prop_assert_eq!(set_credential_process(&out, profile, cmd).expect("set"), out.clone());
            // Other sections read the same as before.
            for other in ["dev", "default", "other", "new"].into_iter().filter(|p| *p != profile) {
                proptest::prop_assert_eq!(
                    sole_value(&out, other, "credential_process"),
                    sole_value(&text, other, "credential_process")
                );
            }
        }

        /// Inserting changes nothing but the one line: removing it gives back the original text
        /// (plus a final line ending if the file had none and the line went at the end).
        #[test]
        fn insert_keeps_every_other_byte(
            text in config_file(false),
            profile in proptest::sample::select(vec!["dev", "default", "other", "new"]),
        ) {
            let out = set_credential_process(&text, profile, "CMD").expect("set");
            let kinds_before = classify(&lines_keep(&text));
            let without: String = out
                .split_inclusive('\n')
                .filter(|l| l.trim() != "credential_process = CMD")
                .collect();
            proptest::prop_assert_eq!(out.split_inclusive('\n').count(), without.split_inclusive('\n').count() + 1);
            if config_section(&kinds_before, profile).is_some() {
                let eol = line_ending(&lines_keep(&text));
                proptest::prop_assert!(
                    without == text || (!text.ends_with('\n') && without == format!("{text}{eol}")),
                    "{:?} -> {:?}", text, out
                );
            } else {
                proptest::prop_assert!(out.starts_with(&text));
            }
        }

        /// Removing sections drops whole lines only, and only theirs.
        #[test]
        fn remove_drops_only_whole_sections(text in config_file(true)) {
            proptest::prop_assert_eq!(remove_profiles(&text, &[]), text.clone());
            let out = remove_profiles(&text, &["dev", "profile dev"]);
            let kinds = classify(&lines_keep(&out));
            proptest::prop_assert!(!kinds.iter().any(|k| matches!(k, Line::Header(n) if n == "dev" || n == "profile dev")));
            let mut rest = lines_keep(&text).into_iter();
            for line in lines_keep(&out) {
                proptest::prop_assert!(rest.any(|l| l == line));
            }
        }

        /// Nothing panics on arbitrary text.
        #[test]
        fn arbitrary_text_never_panics(text in "(?s).{0,200}") {
            let _ = set_credential_process(&text, "dev", "c");
            let _ = conflicting_keys(&text, "dev");
            let _ = parse_credentials(&text);
            let _ = remove_profiles(&text, &["dev"]);
        }
    }
}
