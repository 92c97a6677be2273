//! The shared credentials file: its long-lived keys, read for import and removed after it.

use super::lines::*;
use super::*;

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
