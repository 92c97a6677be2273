use super::*;

impl Agent {
    /// Stores a new AWS key pair with its STS settings.
    pub(super) async fn add_aws(
        self: &Arc<Self>,
        name: String,
        meta: MetaInput,
        aws: AwsKeyInput,
        actor: Actor,
    ) -> Outcome {
        self.blocking(move |a| {
            let (config, secret) = aws.into();
            a.add(name, EntryKind::Aws, meta, config, secret, &actor)
        })
        .await
    }

    /// Stores a new static token.
    pub(super) async fn add_static(
        self: &Arc<Self>,
        name: String,
        meta: MetaInput,
        value: WireSecret,
        actor: Actor,
    ) -> Outcome {
        self.blocking(move |a| {
            let secret = SecretValue::Static {
                value: (&value).into(),
            };
            a.add(
                name,
                EntryKind::Static,
                meta,
                EntryConfig::default(),
                secret,
                &actor,
            )
        })
        .await
    }

    /// Stores a new OAuth2 client with its token endpoint settings.
    pub(super) async fn add_oauth2(
        self: &Arc<Self>,
        name: String,
        meta: MetaInput,
        oauth2: OAuth2KeyInput,
        actor: Actor,
    ) -> Outcome {
        self.blocking(move |a| {
            let (config, secret) = oauth2.into();
            a.add(name, EntryKind::OAuth2, meta, config, secret, &actor)
        })
        .await
    }

    /// Stores a new Alibaba Cloud AccessKey with its STS settings.
    pub(super) async fn add_aliyun(
        self: &Arc<Self>,
        name: String,
        meta: MetaInput,
        aliyun: AliyunKeyInput,
        actor: Actor,
    ) -> Outcome {
        self.blocking(move |a| {
            let (config, secret) = aliyun.into();
            a.add(name, EntryKind::Aliyun, meta, config, secret, &actor)
        })
        .await
    }

    /// Every key's metadata, never a secret.
    pub(super) async fn list_keys(self: &Arc<Self>) -> Outcome {
        self.blocking(move |a| {
            let entries = a.with_vault(|v| v.list()).map_err(vault_err)?;
            Ok(Reply::Entries {
                entries: a.listed(entries),
            })
        })
        .await
    }

    /// One key's metadata.
    pub(super) async fn show_key(self: &Arc<Self>, name: String) -> Outcome {
        self.blocking(move |a| {
            let entry = a.with_vault(|v| v.get(&name)).map_err(vault_err)?;
            Ok(a.entry_reply(entry))
        })
        .await
    }

    /// Removes a key (keychain item and catalog row) and drops what was cached from it.
    pub(super) async fn remove_key(self: &Arc<Self>, name: String, actor: Actor) -> Outcome {
        self.blocking(move |a| {
            a.with_vault(|v| {
                let meta = v.get(&name)?;
                v.clear_rotation_journal(&meta)?;
                v.remove_entry(&name, &actor)
            })
            .map_err(vault_err)?;
            a.clear_caches();
            Ok(Reply::Done)
        })
        .await
    }

    /// Changes a key's metadata only.
    pub(super) async fn update_key(
        self: &Arc<Self>,
        name: String,
        meta: MetaInput,
        actor: Actor,
    ) -> Outcome {
        self.blocking(move |a| {
            let edit = EntryEdit::try_from(meta).map_err(|e| vault_err(e.into()))?;
            let entry = a
                .with_vault(|v| v.update_entry(&name, edit, &actor))
                .map_err(vault_err)?;
            Ok(a.entry_reply(entry))
        })
        .await
    }

    /// Replaces a key's secret; sessions cached from the old one are dropped.
    pub(super) async fn rotate_key(
        self: &Arc<Self>,
        name: String,
        secret: NewSecret,
        actor: Actor,
    ) -> Outcome {
        self.blocking(move |a| {
            let secret: SecretValue = secret.into();
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            // A key stored by hand ends any rotation at IAM in progress: the user took over.
            let entry = a
                .with_vault(|v| {
                    let entry = v.replace_secret(&name, &secret, &key, &actor)?;
                    v.clear_rotation_journal(&entry)?;
                    Ok::<_, VaultError>(entry)
                })
                .map_err(vault_err)?;
            // Sessions cached from the old key would outlive the rotation.
            a.clear_caches();
            Ok(a.entry_reply(entry))
        })
        .await
    }

    /// A key's audit rows (its history).
    pub(super) async fn key_history(self: &Arc<Self>, name: String, limit: u32) -> Outcome {
        self.blocking(move |a| {
            let rows = a
                .with_vault(|v| v.history(&name, limit.min(10_000)))
                .map_err(vault_err)?;
            Ok(Reply::Audit {
                rows: rows.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    /// A stored secret, for the app's window only, on a fresh factor (Reveal and Copy).
    pub(super) async fn reveal(
        self: &Arc<Self>,
        name: String,
        token: WireSecret,
        actor: Actor,
    ) -> Outcome {
        if !self.desktop.is_app(&actor) {
            return Err(err(
                ErrorCode::Forbidden,
                "secrets are revealed only in the Keyward app, and only when you click Reveal",
            ));
        }
        if !self.is_trusted_window(&actor, Some(&token)) {
            return Err(err(
                        ErrorCode::Forbidden,
                        "this window was not unlocked: lock Keyward and unlock it in this window (or open Keyward from its tray icon) to reveal or copy a key",
                    ));
        }
        // The window's token proves which window asks, not that the user is at it.
        if !self.desktop.is_fresh(&token) {
            return Err(err(
                ErrorCode::FactorNeeded,
                "enter a current code from your authenticator app to reveal or copy a stored key",
            ));
        }
        let secret = self.reveal_secret(name, actor).await?;
        Ok(Reply::Revealed {
            secret: WireSecret::new(secret.expose_secret().to_owned()),
        })
    }

    pub(super) fn add(
        &self,
        name: String,
        kind: EntryKind,
        meta: MetaInput,
        config: EntryConfig,
        secret: SecretValue,
        actor: &Actor,
    ) -> Outcome {
        let entry = EntryMeta {
            id: String::new(),
            name,
            kind,
            owner: meta.owner,
            purpose: meta.purpose,
            tags: meta.tags,
            created: String::new(),
            rotated: None,
            rotation_interval_days: meta.rotation_interval_days,
            expires: meta.expires,
            last_used: None,
            use_count: 0,
            provider_use: None,
            config,
        };
        let entry = self
            .with_vault(|v| v.add_entry(entry, &secret, actor))
            .map_err(vault_err)?;
        Ok(self.entry_reply(entry))
    }

    /// The secret of entry `name`, for the desktop app's Reveal and Copy only (the `reveal`
    /// request is refused to every other program), audited.
    pub async fn reveal_secret(
        self: &Arc<Self>,
        name: String,
        actor: Actor,
    ) -> Result<SecretString, ErrorReply> {
        self.touch();
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let key = me
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            let meta = me.with_vault(|v| v.get(&name)).map_err(vault_err)?;
            let secret = me
                .with_vault(|v| v.read_secret(&key, &meta))
                .map_err(vault_err)?;
            me.audited(&actor, "reveal", Some(name), "ok")?;
            Ok(match secret {
                SecretValue::Aws {
                    secret_access_key, ..
                } => secret_access_key,
                SecretValue::Static { value } => value,
                SecretValue::OAuth2 { client_secret } => client_secret,
                SecretValue::Aliyun {
                    access_key_secret, ..
                } => access_key_secret,
            })
        })
        .await
        .map_err(|_| err(ErrorCode::Internal, "internal error (task failed)"))?
    }
}
