//! Editing the AWS config and shared credentials files.
//!
//! These are the user's files: every byte we do not mean to change is kept (comments, ordering,
//! spacing, line endings). INI crates re-serialise and drop comments, so edits here are line-based
//! over the sections the AWS CLI itself recognises (`[default]`, `[profile NAME]`, `[NAME]`).
//! Writes are atomic (temp file + fsync + rename) and keep a 0600 backup of the old file.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use thiserror::Error;

/// Errors editing AWS files, each with the path and what the user can do.
#[derive(Debug, Error)]
pub enum AwsFileError {
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing failed; the original is untouched.
    #[error("cannot write {path} (left unchanged): {source}")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// No home directory to find the files in.
    #[error(
        "cannot find the AWS files: set HOME, or AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE"
    )]
    NoHome,
    /// A value would break the file format.
    #[error("{what} contains a line break or NUL, which the AWS files cannot hold")]
    BadValue {
        /// Which value.
        what: &'static str,
    },
}

fn env_or_home(var: &str, rel: &str) -> Result<PathBuf, AwsFileError> {
    if let Some(p) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(rel))
        .ok_or(AwsFileError::NoHome)
}

/// Where the AWS config file is: $AWS_CONFIG_FILE, else $HOME/.aws/config.
pub fn config_path() -> Result<PathBuf, AwsFileError> {
    env_or_home("AWS_CONFIG_FILE", ".aws/config")
}

/// Where the shared credentials file is: $AWS_SHARED_CREDENTIALS_FILE, else $HOME/.aws/credentials.
pub fn credentials_path() -> Result<PathBuf, AwsFileError> {
    env_or_home("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials")
}

/// The section name of a header line (`[ profile  dev ]` → `profile dev`), if it is one.
fn header_name(line: &str) -> Option<String> {
    let t = line.trim();
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The key of a `key = value` line, if it is one.
fn line_key(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with(';') {
        return None;
    }
    let (k, _) = t.split_once('=')?;
    Some(k.trim())
}

fn line_value(line: &str) -> Option<&str> {
    line.split_once('=').map(|(_, v)| v.trim())
}

fn config_section(profile: &str) -> String {
    if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    }
}

/// Lines with their terminators kept, so joining them gives back the exact text.
fn lines_keep(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Line range (start, end exclusive) of the section named `name`, header included.
fn section_range(lines: &[&str], name: &str) -> Option<(usize, usize)> {
    let start = lines
        .iter()
        .position(|l| header_name(l).as_deref() == Some(name))?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| header_name(l).is_some())
        .map(|i| start + 1 + i)
        .unwrap_or(lines.len());
    Some((start, end))
}

fn check_value(what: &'static str, v: &str) -> Result<(), AwsFileError> {
    if v.contains(['\n', '\r', '\0']) {
        return Err(AwsFileError::BadValue { what });
    }
    Ok(())
}

/// Returns `text` with profile `profile`'s `credential_process` set to `command`, every other byte kept.
pub fn set_credential_process(
    text: &str,
    profile: &str,
    command: &str,
) -> Result<String, AwsFileError> {
    check_value("the profile name", profile)?;
    check_value("the credential_process command", command)?;
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let new_line = format!("credential_process = {command}{eol}");
    let lines = lines_keep(text);
    let name = config_section(profile);
    let Some((start, end)) = section_range(&lines, &name) else {
        let mut out = text.to_owned();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(eol);
        }
        if !out.is_empty() && !out.ends_with(&format!("{eol}{eol}")) {
            out.push_str(eol);
        }
        out.push_str(&format!("[{name}]{eol}"));
        out.push_str(&new_line);
        return Ok(out);
    };
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    if let Some(i) = (start + 1..end).find(|&i| line_key(lines[i]) == Some("credential_process")) {
        out[i] = new_line;
    } else {
        // After the section's last non-blank line, so trailing blank lines stay between sections.
        let last = (start..end)
            .rev()
            .find(|&i| !lines[i].trim().is_empty())
            .unwrap_or(start);
        if !out[last].ends_with('\n') {
            out[last].push_str(eol);
        }
        out.insert(last + 1, new_line);
    }
    Ok(out.concat())
}

/// Keys in a config-file section that would override credential_process — names only.
pub fn conflicting_keys(text: &str, profile: &str) -> Vec<String> {
    let lines = lines_keep(text);
    let Some((start, end)) = section_range(&lines, &config_section(profile)) else {
        return Vec::new();
    };
    lines[start + 1..end]
        .iter()
        .filter_map(|l| line_key(l))
        .filter(|k| {
            matches!(
                *k,
                "aws_access_key_id" | "aws_secret_access_key" | "aws_session_token"
            )
        })
        .map(str::to_owned)
        .collect()
}

/// One profile's long-lived key from the shared credentials file.
pub struct CredentialsProfile {
    /// Profile name.
    pub name: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: SecretString,
    /// Whether the profile also has a session token (temporary credentials).
    pub session_token_present: bool,
    /// Region, if set there.
    pub region: Option<String>,
}

impl std::fmt::Debug for CredentialsProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsProfile")
            .field("name", &self.name)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token_present", &self.session_token_present)
            .field("region", &self.region)
            .finish()
    }
}

/// Parses the shared credentials file; also returns names of sections without a key pair.
pub fn parse_credentials(text: &str) -> (Vec<CredentialsProfile>, Vec<String>) {
    struct Partial {
        name: String,
        id: Option<String>,
        secret: Option<SecretString>,
        token: bool,
        region: Option<String>,
    }
    let mut sections: Vec<Partial> = Vec::new();
    for line in text.lines() {
        if let Some(name) = header_name(line) {
            sections.push(Partial {
                name,
                id: None,
                secret: None,
                token: false,
                region: None,
            });
            continue;
        }
        let (Some(cur), Some(key), Some(value)) =
            (sections.last_mut(), line_key(line), line_value(line))
        else {
            continue;
        };
        match key {
            "aws_access_key_id" => cur.id = Some(value.to_owned()),
            "aws_secret_access_key" => cur.secret = Some(SecretString::from(value.to_owned())),
            "aws_session_token" => cur.token = !value.is_empty(),
            "region" => cur.region = Some(value.to_owned()),
            _ => {}
        }
    }
    let mut found = Vec::new();
    let mut incomplete = Vec::new();
    for s in sections {
        match (s.id, s.secret) {
            (Some(id), Some(secret)) if !id.is_empty() => found.push(CredentialsProfile {
                name: s.name,
                access_key_id: id,
                secret_access_key: secret,
                session_token_present: s.token,
                region: s.region,
            }),
            _ => incomplete.push(s.name),
        }
    }
    (found, incomplete)
}

/// Returns `text` without the sections of `names` (header through the line before the next header).
pub fn remove_profiles(text: &str, names: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for line in lines_keep(text) {
        if let Some(name) = header_name(line) {
            skipping = names.contains(&name.as_str());
        }
        if !skipping {
            out.push_str(line);
        }
    }
    out
}

/// Atomically replaces `path` with `contents`, keeping a 0600 backup of the previous file.
pub fn write_atomic_with_backup(
    path: &Path,
    contents: &str,
    mode: u32,
) -> Result<Option<PathBuf>, AwsFileError> {
    let werr = |source| AwsFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(werr)?;
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let backup = match std::fs::read(path) {
        Ok(old) => {
            let mut b = dir.join(format!("{file_name}.keyward-backup-{stamp}"));
            let mut n = 1;
            while b.exists() {
                b = dir.join(format!("{file_name}.keyward-backup-{stamp}-{n}"));
                n += 1;
            }
            write_new(&b, &old, 0o600).map_err(werr)?;
            Some(b)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(AwsFileError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let tmp = dir.join(format!(".{file_name}.keyward-tmp-{}", std::process::id()));
    let result = write_new(&tmp, contents.as_bytes(), mode)
        .and_then(|()| std::fs::rename(&tmp, path))
        .and_then(|()| std::fs::File::open(dir).and_then(|d| d.sync_all()));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(werr(e));
    }
    Ok(backup)
}

/// Creates `path` (which must not exist) with `mode`, writes and fsyncs it.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    // The umask may have narrowed the mode; state it exactly.
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn appends_a_new_profile_section() {
        assert_eq!(
            set_credential_process("", "dev", "/bin/kw cred").expect("ok"),
            "[profile dev]\ncredential_process = /bin/kw cred\n"
        );
        assert_eq!(
            set_credential_process("[default]\nregion = x", "dev", "c").expect("ok"),
            "[default]\nregion = x\n\n[profile dev]\ncredential_process = c\n"
        );
    }

    #[test]
    fn inserts_into_existing_section_after_its_last_line() {
        let text = "# top\n[profile dev]\nregion = eu-west-1 ; note\n\n[ profile  other ]\nx=1\n";
        assert_eq!(
            set_credential_process(text, "dev", "c").expect("ok"),
            "# top\n[profile dev]\nregion = eu-west-1 ; note\ncredential_process = c\n\n[ profile  other ]\nx=1\n"
        );
        assert_eq!(
            set_credential_process(text, "other", "c").expect("ok"),
            "# top\n[profile dev]\nregion = eu-west-1 ; note\n\n[ profile  other ]\nx=1\ncredential_process = c\n"
        );
    }

    #[test]
    fn replaces_an_existing_line_and_handles_default_and_crlf() {
        let text = "[default]\r\ncredential_process=old\r\noutput = json\r\n";
        assert_eq!(
            set_credential_process(text, "default", "new").expect("ok"),
            "[default]\r\ncredential_process = new\r\noutput = json\r\n"
        );
        assert!(matches!(
            set_credential_process("", "dev", "a\nb"),
            Err(AwsFileError::BadValue { .. })
        ));
    }

    #[test]
    fn conflicts_are_named_not_valued() {
        let text = "[profile dev]\naws_access_key_id = AKIAKEYWARDTEST001\nregion = x\n";
        assert_eq!(conflicting_keys(text, "dev"), vec!["aws_access_key_id"]);
        assert!(conflicting_keys(text, "other").is_empty());
    }

    #[test]
    fn parses_credentials_and_removes_sections_byte_exact() {
        let text = "; keys\n[ci]\naws_access_key_id=AKIAKEYWARDTEST001\n  aws_secret_access_key =  s3cr3t  \n\n[half]\naws_access_key_id = X\n[tmp]\naws_access_key_id = ASIA1\naws_secret_access_key = t\naws_session_token = tok\nregion = eu-west-1\n";
        let (found, incomplete) = parse_credentials(text);
        assert_eq!(incomplete, vec!["half"]);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "ci");
        assert_eq!(found[0].secret_access_key.expose_secret(), "s3cr3t");
        assert!(!found[0].session_token_present);
        assert!(found[1].session_token_present);
        assert_eq!(found[1].region.as_deref(), Some("eu-west-1"));
        assert!(!format!("{found:?}").contains("s3cr3t"));
        assert_eq!(
            remove_profiles(text, &["ci"]),
            "; keys\n[half]\naws_access_key_id = X\n[tmp]\naws_access_key_id = ASIA1\naws_secret_access_key = t\naws_session_token = tok\nregion = eu-west-1\n"
        );
    }

    #[test]
    fn atomic_write_keeps_a_private_backup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("aws/config");
        assert_eq!(
            write_atomic_with_backup(&path, "one\n", 0o644).expect("w"),
            None
        );
        let backup = write_atomic_with_backup(&path, "two\n", 0o644)
            .expect("w")
            .expect("backup made");
        assert_eq!(std::fs::read_to_string(&path).expect("r"), "two\n");
        assert_eq!(std::fs::read_to_string(&backup).expect("r"), "one\n");
        let mode = |p: &Path| std::fs::metadata(p).expect("m").permissions().mode() & 0o777;
        assert_eq!(mode(&backup), 0o600);
        assert_eq!(mode(&path), 0o644);
        // A parent that is a file: error, nothing else touched, no temp file left.
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, "x").expect("w");
        assert!(write_atomic_with_backup(&blocker.join("config"), "y", 0o600).is_err());
        assert_eq!(std::fs::read_to_string(&blocker).expect("r"), "x");
    }

    proptest::proptest! {
        /// Setting credential_process changes nothing but that one line: removing the line we
        /// wrote gives back the original text, whatever the file held.
        #[test]
        fn only_the_credential_process_line_changes(
            body in "([a-z_\\[\\] =#;]{0,20}\n){0,12}",
            profile in "[a-z][a-z0-9-]{0,10}",
        ) {
            proptest::prop_assume!(!body.contains("credential_process"));
            let out = set_credential_process(&body, &profile, "/bin/kw cred").expect("set");
            let line = "credential_process = /bin/kw cred\n";
            proptest::prop_assert_eq!(out.matches(line).count(), 1);
            let without = out.replacen(line, "", 1);
            let header = if profile == "default" { "[default]".to_owned() } else { format!("[profile {profile}]") };
            if section_range(&lines_keep(&body), &config_section(&profile)).is_some() {
                proptest::prop_assert_eq!(without, body);
            } else {
                proptest::prop_assert!(without.starts_with(body.as_str()));
                proptest::prop_assert!(without.trim_end().ends_with(&header));
            }
        }
    }
}
