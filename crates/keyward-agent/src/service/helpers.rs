//! Tools' credential helpers (git, docker): which key answers for which host comes from the
//! bindings in the authenticated vault header, never from the tool's config file — that file
//! only names Keyward as the helper, and any program of the user can edit it.

use super::*;
use crate::protocol::{BindingInfo, HelperCredential};
use keyward_core::HelperTool;

use super::consent::is_keyward_binary;

/// The name a registry's key gets when `docker login` vaults it: `docker-HOST[-PORT]`.
fn registry_key_name(host: &str) -> String {
    let mut base: String = host
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '-' => Some(c),
            ':' => Some('-'),
            _ => None,
        })
        .collect();
    base.truncate(56);
    format!("docker-{base}")
}

/// `host` as bindings key it (lower case), or a refusal naming it.
fn normal_host(host: &str) -> Result<String, ErrorReply> {
    keyward_core::entry::helper_host(host).map_err(|e| vault_err(e.into()))
}

impl Agent {
    fn keyward_only(actor: &Actor, what: &str) -> Result<(), ErrorReply> {
        if is_keyward_binary(actor) {
            Ok(())
        } else {
            Err(err(
                ErrorCode::Forbidden,
                format!("{what} is done by the keyward command (its credential helpers and `keyward setup`)"),
            ))
        }
    }

    /// The key bound to `tool` for `host`, or a refusal that says how to bind one.
    async fn bound(
        self: &Arc<Self>,
        tool: HelperTool,
        host: &str,
    ) -> Result<keyward_core::BoundKey, ErrorReply> {
        let key = self
            .current_key()
            .ok_or_else(|| vault_err(VaultError::Locked))?;
        let (me, h) = (Arc::clone(self), host.to_owned());
        let found =
            tokio::task::spawn_blocking(move || me.with_vault(|v| v.binding(&key, tool, &h)))
                .await
                .map_err(|_| err(ErrorCode::Internal, "internal error (task failed)"))?
                .map_err(vault_err)?;
        found.ok_or_else(|| {
            err(
                ErrorCode::NotFound,
                format!(
                    "no key answers {} for {host}: keyward setup {} {host} --key NAME",
                    tool.as_str(),
                    tool.as_str()
                ),
            )
        })
    }

    /// A helper's `get`: the bound key's lease (static) or access token (OAuth2), through the
    /// one pipeline with the tool as the client.
    pub(super) async fn helper_get(
        self: &Arc<Self>,
        tool: HelperTool,
        host: String,
        approval: Option<String>,
        actor: Actor,
    ) -> Outcome {
        let host = normal_host(&host)?;
        let b = self.bound(tool, &host).await?;
        let name = b.meta.name.clone();
        // Anything but the credential (the approval question) goes back as it is.
        let (secret, expires_at) = match b.meta.kind {
            EntryKind::Static => match self.lease_out(name.clone(), approval, tool.as_str(), actor).await? {
                Reply::Lease(l) => (l.value, Some(l.expires_at)),
                other => return Ok(other),
            },
            EntryKind::OAuth2 => match self.cred_oauth2(name.clone(), approval, actor, true).await? {
                Reply::Oauth2Token(t) => (t.access_token, t.expires_at),
                other => return Ok(other),
            },
            kind @ (EntryKind::Aws | EntryKind::Aliyun) => {
                return Err(err(
                    ErrorCode::BadRequest,
                    format!("'{name}' is an {} key: a credential helper answers with a static or OAuth2 key", kind.as_str()),
                ))
            }
        };
        Ok(Reply::HelperCredential(HelperCredential {
            key: name,
            username: b.username,
            secret,
            expires_at,
        }))
    }

    /// `docker login`'s `store`: vaults the password as a static key bound to the registry — a
    /// new key for a registry not bound yet, the bound static key's new value otherwise (as
    /// `keyward rotate --manual` would). Moving a binding to another key is `keyward setup`'s,
    /// with a code.
    pub(super) async fn helper_store(
        self: &Arc<Self>,
        tool: HelperTool,
        host: String,
        username: String,
        secret: WireSecret,
        actor: Actor,
    ) -> Outcome {
        Self::keyward_only(&actor, "storing a tool's credentials")?;
        let host = normal_host(&host)?;
        if tool != HelperTool::Docker {
            return Err(err(
                ErrorCode::BadRequest,
                "only docker's helper stores credentials: git's password stays where it came from",
            ));
        }
        keyward_core::entry::helper_username(&username).map_err(|e| vault_err(e.into()))?;
        let bound = match self.bound(tool, &host).await {
            Ok(b) => Some(b),
            Err(e) if e.code == ErrorCode::NotFound => None,
            Err(e) => return Err(e),
        };
        self.blocking(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            let value = SecretValue::Static {
                value: (&secret).into(),
            };
            let name = match bound {
                Some(b) if b.meta.kind == EntryKind::Static => {
                    a.with_vault(|v| v.replace_secret(&b.meta.name, &value, &key, &actor))
                        .map_err(vault_err)?;
                    a.clear_caches();
                    b.meta.name
                }
                Some(b) => {
                    return Err(err(
                        ErrorCode::Invalid,
                        format!("{host} is answered by '{}', which is not a static key: `keyward setup docker {host} --key NAME` to bind another", b.meta.name),
                    ))
                }
                None => {
                    // The registry's key from an earlier login (`docker logout` unbinds, and
                    // keeps it): its new value. Else a new key.
                    let name = registry_key_name(&host);
                    match a.with_vault(|v| v.get(&name)) {
                        Ok(m) if m.kind == EntryKind::Static => {
                            a.with_vault(|v| v.replace_secret(&name, &value, &key, &actor))
                                .map_err(vault_err)?;
                            a.clear_caches();
                        }
                        Ok(m) => {
                            return Err(err(
                                ErrorCode::Invalid,
                                format!("'{name}' is a {} key: rename it, or `keyward setup docker {host} --key NAME` with a static key", m.kind.as_str()),
                            ))
                        }
                        Err(_) => {
                            let meta = MetaInput {
                                purpose: Some(format!("docker login to {host}")),
                                tags: vec!["docker".to_owned()],
                                ..MetaInput::default()
                            };
                            a.add(
                                name.clone(),
                                EntryKind::Static,
                                meta,
                                EntryConfig::default(),
                                value,
                                &actor,
                            )?;
                        }
                    }
                    name
                }
            };
            a.with_vault(|v| {
                v.set_binding(&key, tool, &host, Some((&name, Some(&username))), &actor)
            })
            .map_err(vault_err)?;
            Ok(Reply::Done)
        })
        .await
    }

    /// `docker logout`'s `erase`: the registry is no longer bound; the key stays.
    pub(super) async fn helper_erase(
        self: &Arc<Self>,
        tool: HelperTool,
        host: String,
        actor: Actor,
    ) -> Outcome {
        Self::keyward_only(&actor, "erasing a tool's credentials")?;
        let host = normal_host(&host)?;
        match self.bound(tool, &host).await {
            Ok(_) => {}
            // Nothing bound: nothing to erase. Locked: say so, the binding stays.
            Err(e) if e.code == ErrorCode::NotFound => return Ok(Reply::Done),
            Err(e) => return Err(e),
        }
        self.blocking(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            a.with_vault(|v| v.set_binding(&key, tool, &host, None, &actor))
                .map_err(vault_err)?;
            Ok(Reply::Done)
        })
        .await
    }

    /// `keyward setup git|docker HOST --key NAME`: binds the key, with a current code.
    pub(super) async fn bind(
        self: &Arc<Self>,
        tool: HelperTool,
        host: String,
        name: String,
        username: Option<String>,
        code: Option<WireSecret>,
        actor: Actor,
    ) -> Outcome {
        Self::keyward_only(&actor, "binding a key to a tool")?;
        let host = normal_host(&host)?;
        self.blocking(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            let Some(code) = code else {
                return Err(err(
                    ErrorCode::FactorNeeded,
                    "binding a key to a tool's helper needs a current code from your authenticator app",
                ));
            };
            a.with_vault(|v| v.check_code(&key, code.expose(), "settings.binding", &actor))
                .map_err(vault_err)?;
            a.with_vault(|v| {
                v.set_binding(&key, tool, &host, Some((&name, username.as_deref())), &actor)
            })
            .map_err(vault_err)?;
            Ok(Reply::Done)
        })
        .await
    }

    /// How tools may get key `name`: its lease setting and the hosts bound to it.
    pub(super) async fn key_uses(self: &Arc<Self>, name: String) -> Outcome {
        self.blocking(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            let meta = a.with_vault(|v| v.get(&name)).map_err(vault_err)?;
            let lease = match meta.kind {
                EntryKind::Static => a
                    .with_vault(|v| v.lease_mode(&key, &meta))
                    .map_err(vault_err)?,
                _ => None,
            };
            let all = a.with_vault(|v| v.bindings(&key)).map_err(vault_err)?;
            Ok(Reply::KeyUses(crate::protocol::KeyUses {
                lease,
                bindings: all
                    .into_iter()
                    .filter(|b| b.meta.id == meta.id)
                    .map(|b| BindingInfo {
                        tool: b.tool,
                        host: b.host,
                        key: b.meta.name,
                        username: b.username,
                    })
                    .collect(),
            }))
        })
        .await
    }

    /// Every binding, without secrets.
    pub(super) async fn list_bindings(self: &Arc<Self>) -> Outcome {
        self.blocking(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            let all = a.with_vault(|v| v.bindings(&key)).map_err(vault_err)?;
            Ok(Reply::Bindings {
                bindings: all
                    .into_iter()
                    .map(|b| BindingInfo {
                        tool: b.tool,
                        host: b.host,
                        key: b.meta.name,
                        username: b.username,
                    })
                    .collect(),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::registry_key_name;

    #[test]
    fn a_registry_key_is_named_after_the_registry() {
        assert_eq!(registry_key_name("127.0.0.1:5000"), "docker-127.0.0.1-5000");
        assert_eq!(registry_key_name("ghcr.io"), "docker-ghcr.io");
        assert_eq!(registry_key_name("[::1]:443"), "docker---1-443");
        keyward_core::entry::validate_name(&registry_key_name(&"a".repeat(255)))
            .expect("a valid name");
    }
}
