//! AWS import and setup: move the long-lived keys of the shared credentials file into the
//! vault, point AWS profiles at Keyward (`credential_process`), and remove the plaintext keys
//! (keeping a 0600 backup). The file editing is `keyward_core::awsfiles`; this module composes
//! it with the agent, and says what it did as data for the CLI to print and the app to show.

use std::path::{Path, PathBuf};

use keyward_agent::client::Client;
use keyward_agent::protocol::{AwsKeyInput, MetaInput, WireSecret};
use keyward_core::awsfiles::{self, CredentialsProfile};
use keyward_core::EntryKind;
use secrecy::ExposeSecret;

use crate::ShellError;

/// Why an incomplete profile (no key id and secret pair) is not imported.
const INCOMPLETE: &str = "it has no access key id and secret pair";

fn read_text(path: &Path) -> Result<Option<String>, ShellError> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| ShellError::NotText(path.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(why) => Err(ShellError::Read {
            path: path.to_owned(),
            why,
        }),
    }
}

/// The shared credentials file as read for an import (`AWS_SHARED_CREDENTIALS_FILE` or
/// `~/.aws/credentials`).
pub struct CredentialsFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its text; `None`: there is no such file.
    text: Option<String>,
    /// The profiles holding a key pair.
    profiles: Vec<CredentialsProfile>,
    /// The profiles without a complete pair.
    incomplete: Vec<String>,
}

/// A profile of the credentials file as the import dialog lists it (nothing secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Profile name (and the key's name once imported).
    pub name: String,
    /// The access key id's hint (`AKIA…WXYZ`).
    pub access_key_hint: Option<String>,
    /// Its region, if the file sets one.
    pub region: Option<String>,
    /// Why it cannot be imported, if it cannot.
    pub problem: Option<String>,
}

/// What [`CredentialsFile::import`] did.
#[derive(Debug, Default)]
pub struct Imported {
    /// The profiles now in the vault.
    pub imported: Vec<String>,
    /// (profile, why) for each one not imported.
    pub skipped: Vec<(String, String)>,
}

impl CredentialsFile {
    /// Reads the file (a missing file is an empty one).
    pub fn read() -> Result<Self, ShellError> {
        let path = awsfiles::credentials_path()?;
        let text = read_text(&path)?;
        let (profiles, incomplete) = text
            .as_deref()
            .map(awsfiles::parse_credentials)
            .unwrap_or_default();
        Ok(CredentialsFile {
            path,
            text,
            profiles,
            incomplete,
        })
    }

    /// Whether there is a credentials file at all.
    pub fn exists(&self) -> bool {
        self.text.is_some()
    }

    /// Every profile, with why it cannot be imported when it cannot (`existing`: the names
    /// already in the vault).
    pub fn candidates(&self, existing: &[String]) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = self
            .profiles
            .iter()
            .map(|p| Candidate {
                name: p.name.clone(),
                access_key_hint: Some(keyward_core::entry::access_key_hint(&p.access_key_id)),
                region: p.region.clone(),
                problem: p.import_problem().map(str::to_owned).or_else(|| {
                    existing
                        .contains(&p.name)
                        .then(|| "a key with this name is already in Keyward".to_owned())
                }),
            })
            .collect();
        out.extend(self.incomplete.iter().map(|name| Candidate {
            name: name.clone(),
            access_key_hint: None,
            region: None,
            problem: Some(INCOMPLETE.into()),
        }));
        out
    }

    /// Stores the key of each profile in `names` (empty: every profile) in the vault. A name
    /// with no key in the file fails the whole import before anything is stored.
    pub fn import(
        &self,
        client: &mut Client,
        names: &[String],
        sts_endpoint: Option<String>,
    ) -> Result<Imported, ShellError> {
        if !self.exists() {
            return Err(ShellError::NoCredentialsFile(self.path.clone()));
        }
        if let Some(name) = names
            .iter()
            .find(|n| !self.profiles.iter().any(|p| &&p.name == n))
            .filter(|n| !self.incomplete.contains(n))
        {
            return Err(ShellError::NoSuchProfile {
                name: name.clone(),
                path: self.path.clone(),
            });
        }
        let wanted = |n: &String| names.is_empty() || names.contains(n);
        let mut done = Imported::default();
        for name in self.incomplete.iter().filter(|n| wanted(n)) {
            done.skipped.push((name.clone(), INCOMPLETE.into()));
        }
        for p in self.profiles.iter().filter(|p| wanted(&p.name)) {
            if let Some(why) = p.import_problem() {
                done.skipped.push((p.name.clone(), why.to_owned()));
                continue;
            }
            let (meta, aws) = self.key_input(p, sts_endpoint.clone());
            match client.add_aws(&p.name, meta, aws) {
                Ok(_) => done.imported.push(p.name.clone()),
                Err(e) => done.skipped.push((p.name.clone(), e.to_string())),
            }
        }
        Ok(done)
    }

    /// What the agent stores for profile `p`.
    fn key_input(
        &self,
        p: &CredentialsProfile,
        sts_endpoint: Option<String>,
    ) -> (MetaInput, AwsKeyInput) {
        let meta = MetaInput {
            purpose: Some(format!("imported from {}", self.path.display())),
            ..Default::default()
        };
        let aws = AwsKeyInput {
            access_key_id: p.access_key_id.clone(),
            secret_access_key: WireSecret::new(p.secret_access_key.expose_secret().to_owned()),
            role_arn: None,
            mfa_serial: None,
            region: p.region.clone(),
            session_duration_secs: None,
            sts_endpoint,
            iam_endpoint: None,
        };
        (meta, aws)
    }

    /// Removes the plaintext keys of `names` from the file in one atomic write, keeping the old
    /// file as a 0600 backup (returned). Refused when the file changed since it was read: the
    /// keys there may not be the ones imported.
    pub fn remove_plaintext(&self, names: &[String]) -> Result<Option<PathBuf>, ShellError> {
        let now = read_text(&self.path)?;
        let (Some(text), true) = (&self.text, now == self.text) else {
            return Err(ShellError::ChangedMeanwhile(self.path.clone()));
        };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let new_text = awsfiles::remove_profiles(text, &names);
        Ok(awsfiles::write_atomic_with_backup(
            &self.path, &new_text, 0o600,
        )?)
    }
}

/// What pointing profiles at Keyward did to the AWS config file.
#[derive(Debug)]
pub struct Pointed {
    /// The config file (`AWS_CONFIG_FILE` or `~/.aws/config`).
    pub config: PathBuf,
    /// Whether it changed (`false`: it already pointed these profiles at Keyward).
    pub changed: bool,
    /// The previous config, kept when it changed.
    pub backup: Option<PathBuf>,
    /// What still keeps the AWS CLI from using Keyward for these profiles, one line each.
    pub warnings: Vec<String>,
}

/// Sets `credential_process` for each (profile, key name) in the AWS config file, in one atomic
/// write, and says what else in the file would still win over it.
pub fn point_profiles(pairs: &[(String, String)]) -> Result<Pointed, ShellError> {
    let exe = crate::launch::keyward_binary().ok_or(ShellError::NoBinary)?;
    let config = awsfiles::config_path()?;
    let old = read_text(&config)?.unwrap_or_default();
    let mut text = old.clone();
    for (profile, name) in pairs {
        let command = awsfiles::credential_process_command(&exe, name)?;
        text = awsfiles::set_credential_process(&text, profile, &command)?;
    }
    let changed = text != old;
    let backup = match changed {
        true => {
            awsfiles::write_atomic_with_backup(&config, &text, awsfiles::mode_to_keep(&config))?
        }
        false => None,
    };
    let warnings = pairs
        .iter()
        .filter_map(|(profile, _)| {
            let conflicts = awsfiles::conflicting_keys(&text, profile);
            (!conflicts.is_empty()).then(|| {
                format!(
                    "profile '{profile}' in {} also sets {}; remove them so the AWS CLI uses Keyward",
                    config.display(),
                    conflicts.join(", ")
                )
            })
        })
        .collect();
    Ok(Pointed {
        config,
        changed,
        backup,
        warnings,
    })
}

/// Under `keyward exec`, what would still win over its credentials endpoint in the AWS SDKs'
/// chain: a long-lived key for the `default` profile in the credentials or config file (exec
/// removes `AWS_PROFILE`, so the SDKs look at `default` before the endpoint). One line, or none.
pub fn default_profile_shadows_endpoint() -> Result<Option<String>, ShellError> {
    let creds = CredentialsFile::read()?;
    if creds.profiles.iter().any(|p| p.name == "default") {
        return Ok(Some(format!(
            "{} holds a long-lived key for [default], which the AWS SDKs use before keyward exec's credentials endpoint: the command may run with that key; `keyward import aws --profile default --remove-plaintext` moves it into the vault",
            creds.path.display()
        )));
    }
    let config = awsfiles::config_path()?;
    let text = read_text(&config)?.unwrap_or_default();
    let conflicts = awsfiles::conflicting_keys(&text, "default");
    Ok((!conflicts.is_empty()).then(|| {
        format!(
            "{} sets {} for [default], which the AWS SDKs use before keyward exec's credentials endpoint: remove them",
            config.display(),
            conflicts.join(", ")
        )
    }))
}

/// `setup aws`: points AWS profile `profile` (default: the key's name) at AWS key `name`, and
/// warns when the credentials file still holds a plaintext key the AWS CLI would prefer.
pub fn setup(
    client: &mut Client,
    name: &str,
    profile: Option<&str>,
) -> Result<Pointed, ShellError> {
    keyward_core::entry::validate_name(name).map_err(ShellError::Name)?;
    let profile = profile.unwrap_or(name);
    keyward_core::entry::validate_name(profile)
        .map_err(|_| ShellError::ProfileName(profile.escape_default().to_string()))?;
    let entry = client.show(name)?.meta;
    if entry.kind != EntryKind::Aws {
        return Err(ShellError::NotAws {
            name: name.to_owned(),
            kind: entry.kind,
        });
    }
    let mut pointed = point_profiles(&[(profile.to_owned(), name.to_owned())])?;
    let creds = CredentialsFile::read()?;
    if creds.profiles.iter().any(|p| p.name == profile) {
        pointed.warnings.push(format!(
            "{} still holds a plaintext key for profile '{profile}', which the AWS CLI prefers over Keyward: run `keyward import aws --profile {profile} --remove-plaintext`",
            creds.path.display()
        ));
    }
    Ok(pointed)
}
