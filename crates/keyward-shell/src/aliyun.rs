//! Alibaba Cloud: the `External` profile `keyward setup aliyun` writes into
//! `~/.aliyun/config.json` (read by the `aliyun` CLI and the credentials SDKs), and the clean-up
//! of what the SDK writes back into it.
//!
//! The credentials SDK (PyPI `alibabacloud-credentials`), after running an External profile's
//! command, saves what it printed (`access_key_id`, `access_key_secret`, `sts_token`,
//! `sts_expiration`) into that profile, in plain text. Keyward takes them out again: at setup,
//! before each `keyward cred aliyun`, and for a few seconds after it (a detached clean-up run).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::ShellError;

/// The fields the SDK saves into an External profile: what Keyward removes.
pub const SAVED_FIELDS: [&str; 4] = [
    "access_key_id",
    "access_key_secret",
    "sts_token",
    "sts_expiration",
];

/// What marks a profile's command as Keyward's.
const KEYWARD_COMMAND: &str = " cred aliyun --profile ";

/// Where the Alibaba Cloud CLI and SDKs read their profiles: `~/.aliyun/config.json`.
pub fn config_path() -> Result<PathBuf, ShellError> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ShellError::Read {
            path: PathBuf::from("~/.aliyun/config.json"),
            why: std::io::Error::new(std::io::ErrorKind::NotFound, "HOME is not set"),
        })?;
    Ok(PathBuf::from(home).join(".aliyun").join("config.json"))
}

/// `~/.aliyun/config.json`, as read.
pub struct AliyunConfigFile {
    path: PathBuf,
    read_as: Option<Zeroizing<Vec<u8>>>,
    value: Map<String, Value>,
}

impl AliyunConfigFile {
    /// Reads the file at [`config_path`] (a missing one is an empty config).
    pub fn read() -> Result<Self, ShellError> {
        Self::read_at(config_path()?)
    }

    /// Reads `path` (a missing file is an empty config).
    pub fn read_at(path: PathBuf) -> Result<Self, ShellError> {
        let read_as = match std::fs::read(&path) {
            Ok(b) => Some(Zeroizing::new(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(why) => return Err(ShellError::Read { path, why }),
        };
        let bad = |why: String| ShellError::AliyunConfig {
            path: path.clone(),
            why,
        };
        let value = match read_as.as_deref() {
            None => Map::new(),
            Some(b) if b.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Some(b) => match serde_json::from_slice(b) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(bad("not a JSON object".into())),
                Err(e) => return Err(bad(e.to_string())),
            },
        };
        if !matches!(value.get("profiles"), None | Some(Value::Array(_))) {
            return Err(bad("\"profiles\" is not a list".into()));
        }
        Ok(AliyunConfigFile {
            path,
            read_as,
            value,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn profiles_mut(&mut self) -> &mut Vec<Value> {
        let p = self
            .value
            .entry("profiles")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !p.is_array() {
            *p = Value::Array(Vec::new());
        }
        match p {
            Value::Array(a) => a,
            _ => unreachable!("made an array just above"),
        }
    }

    /// The mode of profile `name`, if there is one.
    pub fn mode_of(&self, name: &str) -> Option<String> {
        self.value
            .get("profiles")?
            .as_array()?
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
            .map(|p| {
                p.get("mode")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            })
    }

    /// Makes profile `name` an `External` one that runs `command` (and names `region`); the
    /// profile becomes the current one when none is. A profile of that name of another mode is
    /// refused (it may hold a key: import it first). Returns whether anything changed.
    pub fn set_external(
        &mut self,
        name: &str,
        command: &str,
        region: Option<&str>,
    ) -> Result<bool, ShellError> {
        if let Some(mode) = self.mode_of(name).filter(|m| m != "External") {
            return Err(ShellError::AliyunProfileTaken {
                path: self.path.clone(),
                name: name.to_owned(),
                mode,
            });
        }
        let mut profile = Map::new();
        profile.insert("name".into(), Value::String(name.to_owned()));
        profile.insert("mode".into(), Value::String("External".into()));
        profile.insert("process_command".into(), Value::String(command.to_owned()));
        if let Some(r) = region {
            profile.insert("region_id".into(), Value::String(r.to_owned()));
        }
        let profile = Value::Object(profile);
        let profiles = self.profiles_mut();
        let mut changed = true;
        match profiles
            .iter_mut()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
        {
            Some(p) if *p == profile => changed = false,
            Some(p) => *p = profile,
            None => profiles.push(profile),
        }
        let no_current = self
            .value
            .get("current")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if no_current {
            self.value
                .insert("current".into(), Value::String(name.to_owned()));
            changed = true;
        }
        Ok(changed)
    }

    /// Takes out of every External profile that runs Keyward what the SDK saved into it
    /// ([`SAVED_FIELDS`]). Returns the profiles it cleaned.
    pub fn scrub(&mut self) -> Vec<String> {
        let mut cleaned = Vec::new();
        let Some(Value::Array(profiles)) = self.value.get_mut("profiles") else {
            return cleaned;
        };
        for p in profiles.iter_mut() {
            let ours = p.get("mode").and_then(Value::as_str) == Some("External")
                && p.get("process_command")
                    .and_then(Value::as_str)
                    .is_some_and(|c| c.contains(KEYWARD_COMMAND));
            let Some(obj) = p.as_object_mut().filter(|_| ours) else {
                continue;
            };
            let mut any = false;
            for f in SAVED_FIELDS {
                any |= obj.remove(f).is_some();
            }
            if any {
                cleaned.push(
                    obj.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
        cleaned
    }

    fn text(&self) -> Result<Zeroizing<String>, ShellError> {
        let mut out =
            serde_json::to_string_pretty(&self.value).map_err(|e| ShellError::AliyunConfig {
                path: self.path.clone(),
                why: e.to_string(),
            })?;
        out.push('\n');
        Ok(Zeroizing::new(out))
    }

    fn unchanged_since_read(&self) -> Result<(), ShellError> {
        crate::unchanged_since_read(&self.path, self.read_as.as_deref().map(Vec::as_slice))
    }

    /// Writes the file atomically (0600 for a new one), keeping a 0600 backup of the old file
    /// (returned); refused when the file changed since it was read.
    pub fn write(&self) -> Result<Option<PathBuf>, ShellError> {
        self.unchanged_since_read()?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|why| ShellError::Write {
                path: dir.to_owned(),
                why,
            })?;
        }
        let mode = keyward_core::awsfiles::mode_to_keep(&self.path);
        Ok(keyward_core::awsfiles::write_atomic_with_backup(
            &self.path,
            &self.text()?,
            mode,
        )?)
    }

    /// Writes the cleaned file in place of the old one with no backup (a backup would keep what
    /// was cleaned out); refused when the file changed since it was read.
    pub fn write_scrubbed(&self) -> Result<(), ShellError> {
        self.unchanged_since_read()?;
        let mode = keyward_core::awsfiles::mode_to_keep(&self.path);
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let failed = |why: std::io::Error| ShellError::Write {
            path: self.path.clone(),
            why,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(failed)?;
        tmp.write_all(self.text()?.as_bytes()).map_err(failed)?;
        tmp.as_file().sync_all().map_err(failed)?;
        tmp.persist(&self.path).map_err(|e| failed(e.error))?;
        Ok(())
    }
}

/// A profile of the config file that holds a long-lived AccessKey in plain text (mode `AK`, or
/// `RamRoleArn` with its role).
pub struct Candidate {
    /// The profile's name (the key's name in the vault).
    pub name: String,
    /// LTAI… id.
    pub access_key_id: String,
    /// The secret, as the file holds it.
    pub access_key_secret: Zeroizing<String>,
    /// The role a `RamRoleArn` profile assumes.
    pub role_arn: Option<String>,
    /// `region_id`.
    pub region: Option<String>,
    /// A `RamRoleArn` profile's session length (`expired_seconds`).
    pub duration: Option<u32>,
}

impl AliyunConfigFile {
    /// The profiles holding a long-lived key, and the others named with why they are not (a
    /// temporary token, another mode, a key missing its secret).
    pub fn candidates(&self) -> (Vec<Candidate>, Vec<(String, String)>) {
        let (mut found, mut other) = (Vec::new(), Vec::new());
        let profiles = self
            .value
            .get("profiles")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for p in &profiles {
            let text = |k: &str| {
                p.get(k)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            };
            let Some(name) = text("name") else { continue };
            let mode = text("mode").unwrap_or_default();
            let pair = text("access_key_id").zip(text("access_key_secret"));
            match (mode.as_str(), pair) {
                ("AK" | "RamRoleArn", Some((id, secret))) => found.push(Candidate {
                    name,
                    access_key_id: id,
                    access_key_secret: Zeroizing::new(secret),
                    role_arn: text("ram_role_arn").filter(|_| mode == "RamRoleArn"),
                    region: text("region_id"),
                    duration: p
                        .get("expired_seconds")
                        .and_then(Value::as_u64)
                        .and_then(|d| u32::try_from(d).ok())
                        .filter(|_| mode == "RamRoleArn"),
                }),
                ("AK" | "RamRoleArn", None) => {
                    other.push((name, "its AccessKey ID or secret is missing".into()))
                }
                ("StsToken", _) => other.push((
                    name,
                    "it holds a temporary STS token, not a long-lived key".into(),
                )),
                ("External", _) => {}
                (m, _) => other.push((name, format!("mode {m} holds no AccessKey to import"))),
            }
        }
        (found, other)
    }

    /// After an import: each imported profile with a role becomes Keyward's `External` one
    /// (`command_for(name)` runs); one without a role is removed (its only form is the
    /// AccessKey, which the SDK would save back into the file: `keyward exec aliyun:NAME` gives
    /// it to a command instead). Returns the profiles removed.
    pub fn replace_imported(
        &mut self,
        imported: &[Candidate],
        command_for: impl Fn(&str) -> String,
    ) -> Vec<String> {
        let mut removed = Vec::new();
        let profiles = self.profiles_mut();
        profiles.retain(|p| {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let drop = imported
                .iter()
                .any(|c| c.name == name && c.role_arn.is_none());
            if drop {
                removed.push(name.to_owned());
            }
            !drop
        });
        for c in imported.iter().filter(|c| c.role_arn.is_some()) {
            let Some(p) = profiles
                .iter_mut()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(c.name.as_str()))
            else {
                continue;
            };
            let mut external = Map::new();
            external.insert("name".into(), Value::String(c.name.clone()));
            external.insert("mode".into(), Value::String("External".into()));
            external.insert(
                "process_command".into(),
                Value::String(command_for(&c.name)),
            );
            if let Some(r) = &c.region {
                external.insert("region_id".into(), Value::String(r.clone()));
            }
            *p = Value::Object(external);
        }
        let current = self.value.get("current").and_then(Value::as_str);
        if current.is_some_and(|c| removed.iter().any(|r| r == c)) {
            self.value
                .insert("current".into(), Value::String(String::new()));
        }
        removed
    }
}

/// Reads the config and, when the SDK saved credentials into a Keyward profile, writes it back
/// without them. Returns the profiles cleaned (none: nothing was written). A file that changed
/// while it was cleaned is read again, a few times.
pub fn scrub_saved_credentials() -> Result<Vec<String>, ShellError> {
    let path = config_path()?;
    let mut tries = 0;
    loop {
        let mut file = AliyunConfigFile::read_at(path.clone())?;
        let cleaned = file.scrub();
        if cleaned.is_empty() {
            return Ok(cleaned);
        }
        match file.write_scrubbed() {
            Err(ShellError::ChangedMeanwhile(_)) if tries < 5 => tries += 1,
            Err(e) => return Err(e),
            Ok(()) => return Ok(cleaned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, AliyunConfigFile) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, text).expect("write");
        let f = AliyunConfigFile::read_at(path).expect("reads");
        (dir, f)
    }

    const CMD: &str = "/usr/bin/keyward cred aliyun --profile prod";

    #[test]
    fn setup_adds_an_external_profile_and_keeps_the_others() {
        let (_d, mut f) = file(
            r#"{"current":"old","profiles":[{"name":"old","mode":"StsToken","x":1}],"meta_path":""}"#,
        );
        assert!(f
            .set_external("prod", CMD, Some("cn-hangzhou"))
            .expect("set"));
        f.write().expect("writes");
        let back: Value =
            serde_json::from_slice(&std::fs::read(f.path()).expect("read")).expect("json");
        assert_eq!(back["current"], "old");
        assert_eq!(back["meta_path"], "");
        assert_eq!(back["profiles"][0]["x"], 1);
        assert_eq!(back["profiles"][1]["mode"], "External");
        assert_eq!(back["profiles"][1]["process_command"], CMD);
        assert_eq!(back["profiles"][1]["region_id"], "cn-hangzhou");
        // A second run changes nothing.
        let mut again = AliyunConfigFile::read_at(f.path().to_owned()).expect("reads");
        assert!(!again
            .set_external("prod", CMD, Some("cn-hangzhou"))
            .expect("set"));
    }

    #[test]
    fn a_profile_of_another_mode_is_not_overwritten() {
        let (_d, mut f) = file(r#"{"profiles":[{"name":"prod","mode":"AK"}]}"#);
        assert!(matches!(
            f.set_external("prod", CMD, None),
            Err(ShellError::AliyunProfileTaken { .. })
        ));
    }

    #[test]
    fn what_the_sdk_saved_into_a_keyward_profile_is_taken_out_and_nothing_else() {
        let (_d, mut f) = file(&format!(
            r#"{{"current":"prod","profiles":[
                {{"name":"prod","mode":"External","process_command":"{CMD}","access_key_id":"STS.x","access_key_secret":"s","sts_token":"t","sts_expiration":1}},
                {{"name":"other","mode":"External","process_command":"/bin/other","access_key_id":"keep"}}]}}"#
        ));
        assert_eq!(f.scrub(), vec!["prod".to_owned()]);
        f.write_scrubbed().expect("writes");
        let text = std::fs::read_to_string(f.path()).expect("read");
        assert!(
            !text.contains("STS.x") && !text.contains("sts_token"),
            "{text}"
        );
        assert!(
            text.contains("keep"),
            "another tool's profile is left alone"
        );
        assert_eq!(
            std::fs::read_dir(f.path().parent().expect("dir"))
                .expect("dir")
                .count(),
            1,
            "no backup and no temporary file is left"
        );
    }

    #[test]
    fn profiles_with_long_lived_keys_are_found_and_replaced_after_an_import() {
        let (_d, mut f) = file(
            r#"{"current":"legacy","profiles":[
                {"name":"legacy","mode":"AK","access_key_id":"LTAI1","access_key_secret":"s1","region_id":"cn-hangzhou"},
                {"name":"deploy","mode":"RamRoleArn","access_key_id":"LTAI2","access_key_secret":"s2","ram_role_arn":"acs:ram::1:role/d","expired_seconds":900},
                {"name":"temp","mode":"StsToken","access_key_id":"STS.x","access_key_secret":"s","sts_token":"t"},
                {"name":"half","mode":"AK","access_key_id":"LTAI3"}]}"#,
        );
        let (found, other) = f.candidates();
        let names: Vec<&str> = found.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["legacy", "deploy"]);
        assert_eq!(found[1].role_arn.as_deref(), Some("acs:ram::1:role/d"));
        assert_eq!(found[1].duration, Some(900));
        assert_eq!(found[0].region.as_deref(), Some("cn-hangzhou"));
        assert_eq!(other.len(), 2, "{other:?}");
        let removed = f.replace_imported(&found, |n| format!("/k cred aliyun --profile {n}"));
        assert_eq!(removed, ["legacy"]);
        f.write().expect("writes");
        let text = std::fs::read_to_string(f.path()).expect("read");
        assert!(!text.contains("s1") && !text.contains("\"s2\""), "{text}");
        assert!(text.contains("/k cred aliyun --profile deploy"), "{text}");
        assert!(
            text.contains("STS.x"),
            "a profile not imported is left alone"
        );
        let back: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            back["current"], "",
            "the removed profile is not current any more"
        );
    }

    #[test]
    fn a_file_that_changed_since_it_was_read_is_not_overwritten() {
        let (_d, mut f) = file("{}");
        f.set_external("prod", CMD, None).expect("set");
        std::fs::write(f.path(), "{\"current\":\"x\"}").expect("write");
        assert!(matches!(f.write(), Err(ShellError::ChangedMeanwhile(_))));
    }

    #[test]
    fn a_broken_file_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{\"profiles\": 3}").expect("write");
        let e = AliyunConfigFile::read_at(path).err().expect("refused");
        assert!(e.to_string().contains("not a list"), "{e}");
    }
}
