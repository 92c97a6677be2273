//! docker: its credential-helper protocol (what `docker-credential-keyward` reads and writes)
//! and the edit of `~/.docker/config.json` that `keyward setup docker` makes.
//!
//! The helper protocol: `get` and `erase` read a server URL, `store` reads
//! `{"ServerURL","Username","Secret"}`, `get` answers the same object, `list` a map of server URL
//! to user name; a miss is the exact text docker looks for, on stdout, with a failing exit.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ShellError;

/// What docker matches to tell a miss from a failure (`credentials.errCredentialsNotFound`).
pub const NOT_FOUND: &str = "credentials not found in native keychain";

/// The most a helper request may be: a server URL or one credential.
pub const MAX_INPUT: usize = 64 * 1024;

/// The helper name in `credHelpers` (docker runs `docker-credential-<name>`).
pub const HELPER: &str = "keyward";

/// Why a helper request cannot be answered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DockerCredError {
    /// Not a registry docker could have sent.
    #[error(
        "'{0}' is not a registry address (host or host:port, optionally with https:// and a path)"
    )]
    ServerUrl(String),
    /// `store` input that is not docker's credential object.
    #[error("docker sent a credential Keyward cannot read: {0}")]
    Store(String),
}

/// The registry host a server URL names, as a helper binding keys it: `https://index.docker.io/v1/`
/// → `index.docker.io`, `127.0.0.1:5000` → `127.0.0.1:5000`.
pub fn registry_host(server_url: &str) -> Result<String, DockerCredError> {
    let bad = || DockerCredError::ServerUrl(server_url.escape_default().to_string());
    let s = server_url.trim();
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = rest.split('/').next().unwrap_or_default();
    if host.contains('@') {
        return Err(bad());
    }
    keyward_core::entry::helper_host(host).map_err(|_| bad())
}

/// What `store` hands the helper.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stored {
    /// The registry as docker names it.
    #[serde(rename = "ServerURL")]
    pub server_url: String,
    /// The user name (`<token>` for an identity token).
    pub username: String,
    /// The password or token.
    pub secret: Zeroizing<String>,
}

/// Parses `store`'s input.
pub fn parse_store(input: &[u8]) -> Result<Stored, DockerCredError> {
    let s: Stored =
        serde_json::from_slice(input).map_err(|e| DockerCredError::Store(e.to_string()))?;
    if s.secret.is_empty() {
        return Err(DockerCredError::Store("the secret is empty".into()));
    }
    Ok(s)
}

/// `get`'s answer.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Answer<'a> {
    /// The registry as docker asked for it.
    #[serde(rename = "ServerURL")]
    pub server_url: &'a str,
    /// The user name.
    pub username: &'a str,
    /// The password or token.
    pub secret: &'a str,
}

/// `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`), as read: edits keep every other
/// setting, and writing is refused when the file changed since.
pub struct DockerConfig {
    path: PathBuf,
    read_as: Option<Zeroizing<String>>,
    value: serde_json::Map<String, serde_json::Value>,
}

impl Drop for DockerConfig {
    fn drop(&mut self) {
        // `auths` may hold base64 passwords.
        if let Some(serde_json::Value::Object(a)) = self.value.get_mut("auths") {
            a.clear();
        }
    }
}

/// Where docker reads its config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path() -> Result<PathBuf, ShellError> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("config.json"));
    }
    let home = std::env::var_os("HOME").ok_or_else(|| ShellError::Read {
        path: PathBuf::from("~/.docker/config.json"),
        why: std::io::Error::new(std::io::ErrorKind::NotFound, "HOME is not set"),
    })?;
    Ok(PathBuf::from(home).join(".docker").join("config.json"))
}

impl DockerConfig {
    /// Reads the config (a missing file is an empty config).
    pub fn read() -> Result<Self, ShellError> {
        let path = config_path()?;
        let read_as = match std::fs::read(&path) {
            Ok(b) => Some(Zeroizing::new(
                String::from_utf8(b).map_err(|_| ShellError::NotText(path.clone()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(why) => return Err(ShellError::Read { path, why }),
        };
        let value = match read_as.as_ref().map(|t| t.trim()) {
            None | Some("") => serde_json::Map::new(),
            Some(t) => match serde_json::from_str(t) {
                Ok(serde_json::Value::Object(m)) => m,
                Ok(_) => {
                    return Err(ShellError::DockerConfig {
                        path,
                        why: "not a JSON object".into(),
                    })
                }
                Err(e) => {
                    return Err(ShellError::DockerConfig {
                        path,
                        why: e.to_string(),
                    })
                }
            },
        };
        Ok(DockerConfig {
            path,
            read_as,
            value,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn auth_keys(&self, host: &str) -> Vec<String> {
        match self.value.get("auths") {
            Some(serde_json::Value::Object(a)) => a
                .keys()
                .filter(|k| registry_host(k).is_ok_and(|h| h == host))
                .cloned()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A login docker kept in plain text (base64 `user:password` in `auths`) for `host`.
    pub fn plaintext_login(&self, host: &str) -> Option<(String, Zeroizing<String>)> {
        let auths = self.value.get("auths")?.as_object()?;
        self.auth_keys(host).iter().find_map(|k| {
            let b64 = auths.get(k)?.get("auth")?.as_str()?;
            let raw = Zeroizing::new(data_encoding::BASE64.decode(b64.as_bytes()).ok()?);
            let text = std::str::from_utf8(&raw).ok()?;
            let (user, pass) = text.split_once(':')?;
            (!pass.is_empty()).then(|| (user.to_owned(), Zeroizing::new(pass.to_owned())))
        })
    }

    /// The helper docker runs for `host`, if one is named for it.
    pub fn helper_for(&self, host: &str) -> Option<&str> {
        self.value
            .get("credHelpers")?
            .as_object()?
            .iter()
            .find(|(k, _)| registry_host(k).is_ok_and(|h| h == host))
            .and_then(|(_, v)| v.as_str())
    }

    /// Makes docker ask Keyward for `host` (`credHelpers`), and drops any plain-text login kept
    /// for it in `auths`.
    pub fn point_at_keyward(&mut self, host: &str) {
        for k in self.auth_keys(host) {
            if let Some(serde_json::Value::Object(a)) = self.value.get_mut("auths") {
                a.remove(&k);
            }
        }
        let helpers = self
            .value
            .entry("credHelpers")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if !helpers.is_object() {
            *helpers = serde_json::Value::Object(Default::default());
        }
        if let Some(h) = helpers.as_object_mut() {
            h.retain(|k, _| registry_host(k).map_or(true, |x| x != host));
            h.insert(
                host.to_owned(),
                serde_json::Value::String(HELPER.to_owned()),
            );
        }
    }

    /// Writes the config atomically (as docker does: tab-indented), keeping a 0600 backup of
    /// the old file (returned); refused when the file changed since it was read.
    pub fn write(&self) -> Result<Option<PathBuf>, ShellError> {
        crate::unchanged_since_read(&self.path, self.read_as.as_ref().map(|t| t.as_bytes()))?;
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        serde::Serialize::serialize(&self.value, &mut ser).map_err(|e| {
            ShellError::DockerConfig {
                path: self.path.clone(),
                why: e.to_string(),
            }
        })?;
        out.push(b'\n');
        let text = Zeroizing::new(String::from_utf8(out).unwrap_or_default());
        let mode = keyward_core::awsfiles::mode_to_keep(&self.path);
        Ok(keyward_core::awsfiles::write_atomic_with_backup(
            &self.path, &text, mode,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_names_its_registry_host() {
        assert_eq!(
            registry_host("https://index.docker.io/v1/").expect("parses"),
            "index.docker.io"
        );
        assert_eq!(
            registry_host("127.0.0.1:5000").expect("parses"),
            "127.0.0.1:5000"
        );
        assert_eq!(
            registry_host("http://Reg.Example:443").expect("parses"),
            "reg.example:443"
        );
        for bad in [
            "",
            "https://",
            "user@evil.example",
            "a b",
            "reg\n.example",
            "-x",
        ] {
            assert!(registry_host(bad).is_err(), "{bad:?} refused");
        }
    }

    #[test]
    fn store_input_is_docker_s_object() {
        let s = parse_store(br#"{"ServerURL":"r.example","Username":"u","Secret":"p"}"#)
            .expect("parses");
        assert_eq!(
            (
                s.server_url.as_str(),
                s.username.as_str(),
                s.secret.as_str()
            ),
            ("r.example", "u", "p")
        );
        assert!(parse_store(br#"{"ServerURL":"r","Username":"u","Secret":""}"#).is_err());
        assert!(parse_store(b"r.example").is_err());
    }
}
