//! Credential-helper bindings: which key answers git's or docker's helper for which host. They
//! live in the authenticated header, beside the lease settings: a tool's own config file names
//! Keyward as its helper, but only the vault says which key may go to which host.

use super::*;
use crate::entry::{HelperBinding, HelperTool};

/// A binding as the helpers and `keyward show` see it: the key's catalog entry and the user name.
#[derive(Debug, Clone)]
pub struct BoundKey {
    /// The tool.
    pub tool: HelperTool,
    /// The host (normalised by [`crate::entry::helper_host`]).
    pub host: String,
    /// The entry answering for it.
    pub meta: EntryMeta,
    /// The user name given with the secret.
    pub username: Option<String>,
}

fn slot(tool: HelperTool, host: &str) -> String {
    format!("{}:{host}", tool.as_str())
}

impl Vault {
    /// Every binding whose key is still in the vault, read from the header and checked against
    /// the unlocked identity (a header edited since is refused).
    pub fn bindings(&self, key: &UnlockedKey) -> Result<Vec<BoundKey>, VaultError> {
        let (row, header) = self.header()?;
        self.check_header(&row, &header, key)?;
        let entries = self.list()?;
        let mut out = Vec::new();
        for (at, b) in &header.bindings {
            let Some((tool, host)) = at.split_once(':') else {
                continue;
            };
            let tool = match tool {
                "git" => HelperTool::Git,
                "docker" => HelperTool::Docker,
                _ => continue,
            };
            // A removed key's binding answers nothing (its id is never reused).
            if let Some(meta) = entries.iter().find(|m| m.id == b.entry) {
                out.push(BoundKey {
                    tool,
                    host: host.to_owned(),
                    meta: meta.clone(),
                    username: b.username.clone(),
                });
            }
        }
        Ok(out)
    }

    /// The key bound to `tool` for `host`, if any.
    pub fn binding(
        &self,
        key: &UnlockedKey,
        tool: HelperTool,
        host: &str,
    ) -> Result<Option<BoundKey>, VaultError> {
        let host = crate::entry::helper_host(host)?;
        Ok(self
            .bindings(key)?
            .into_iter()
            .find(|b| b.tool == tool && b.host == host))
    }

    /// Binds key `name` (a static or OAuth2 key) to `tool` for `host` with `username`, or
    /// unbinds the host (`None`); audited. The caller decides who may: a binding sends a key to a
    /// host, so moving one needs the user (a current code), not just any program.
    pub fn set_binding(
        &mut self,
        key: &UnlockedKey,
        tool: HelperTool,
        host: &str,
        to: Option<(&str, Option<&str>)>,
        actor: &Actor,
    ) -> Result<(), VaultError> {
        let host = crate::entry::helper_host(host)?;
        let bound = match to {
            Some((name, username)) => {
                let meta = self.get(name)?;
                if !matches!(meta.kind, EntryKind::Static | EntryKind::OAuth2) {
                    return Err(VaultError::WrongKind {
                        name: meta.name,
                        expected: "static or oauth2",
                        actual: meta.kind.as_str(),
                    });
                }
                if let Some(u) = username {
                    crate::entry::helper_username(u)?;
                }
                Some((
                    meta,
                    HelperBinding {
                        entry: String::new(),
                        username: username.map(str::to_owned),
                    },
                ))
            }
            None => None,
        };
        let (row, mut header) = self.header()?;
        self.check_header(&row, &header, key)?;
        let at = slot(tool, &host);
        let target = match bound {
            Some((meta, mut b)) => {
                b.entry = meta.id.clone();
                header.bindings.insert(at, b);
                Some(meta.name)
            }
            None => {
                header.bindings.remove(&at);
                None
            }
        };
        self.store_header(&header, key)?;
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "settings.binding",
                target: target.clone(),
                outcome: "ok",
                detail: serde_json::json!({
                    "tool": tool.as_str(),
                    "host": host,
                    "bound": target.is_some(),
                }),
            },
        )])
    }
}
