use super::*;
use crate::provider::Provider;

/// One issuance waiting to be audited.
pub(super) struct IssueRecord {
    actor: Actor,
    event: AuditEvent,
    entry_id: String,
    /// The user approved this request just now.
    answered: bool,
    done: tokio::sync::oneshot::Sender<Result<(), ErrorReply>>,
}

/// How long the keychain's audit anchor may trail the issuance rows.
const ANCHOR_EVERY: Duration = Duration::from_millis(100);

/// Writes issuance records in batches: under load, one transaction covers every request that
/// arrived meanwhile (group commit). Each request is answered only after its row is committed.
/// The keychain's audit anchor (a D-Bus round trip, most of a warm request's time if it were on
/// the reply path) moves after the answers, at most every [`ANCHOR_EVERY`] and never later than
/// that after the last row. If that write fails, the next batch retries it and is refused
/// while it keeps failing.
pub(super) fn issue_writer(
    vault: &Mutex<Vault>,
    rx: &std::sync::mpsc::Receiver<IssueRecord>,
    unusual: &tokio::sync::broadcast::Sender<super::usage::UnusualUse>,
) {
    let mut baseline = super::usage::Baseline::default();
    use std::sync::mpsc::RecvTimeoutError;
    const MAX_BATCH: usize = 1024;
    let anchor = || {
        if let Err(e) = lock_vault(vault, Vault::anchor_head) {
            warn!("the audit anchor could not be moved (the next issuance retries it): {e}");
        }
    };
    let mut anchored_at = Instant::now();
    let mut unanchored = false;
    loop {
        let first = if unanchored {
            match rx.recv_timeout(ANCHOR_EVERY.saturating_sub(anchored_at.elapsed())) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => {
                    anchor();
                    (anchored_at, unanchored) = (Instant::now(), false);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return anchor(),
            }
        } else {
            match rx.recv() {
                Ok(r) => r,
                Err(_) => return,
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let mut uses: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        let mut events = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        let mut served = Vec::with_capacity(batch.len());
        for r in batch {
            *uses.entry(r.entry_id.clone()).or_default() += 1;
            let key = r.event.target.clone().unwrap_or_default();
            served.push(super::usage::Served {
                entry_id: r.entry_id,
                key,
                actor: r.actor.clone(),
                answered: r.answered,
            });
            events.push((r.actor, r.event));
            waiters.push(r.done);
        }
        let uses: Vec<(String, u64)> = uses.into_iter().collect();
        let result = lock_vault(vault, |v| v.audit_issued(&events, &uses)).map_err(vault_err);
        if let Err(e) = &result {
            warn!("issuance audit failed, credentials withheld: {}", e.message);
        }
        let issued = result.is_ok();
        for w in waiters {
            let _ = w.send(result.clone());
        }
        // After the answers: the baseline costs a reply nothing.
        if issued {
            let found = baseline.observe(vault, &served, time::OffsetDateTime::now_utc());
            if !found.is_empty() {
                let rows: Vec<(Actor, AuditEvent)> = found
                    .iter()
                    .map(|(a, e, _)| (a.clone(), e.clone()))
                    .collect();
                if let Err(e) = lock_vault(vault, |v| v.audit_unanchored(&rows)) {
                    warn!("unusual use was not audited: {e}");
                }
                for (_, _, told) in found {
                    let _ = unusual.send(told);
                }
            }
        }
        unanchored = true;
        if anchored_at.elapsed() >= ANCHOR_EVERY {
            anchor();
            (anchored_at, unanchored) = (Instant::now(), false);
        }
    }
}

impl Agent {
    /// Wipes every cached credential (lock, removal, rotation).
    pub(super) fn clear_caches(&self) {
        self.sts.cache().clear();
        self.oauth.cache().clear();
        self.aliyun.cache().clear();
    }

    /// Entry `name`'s metadata, read off the async threads.
    pub(super) async fn entry(self: &Arc<Self>, name: &str) -> Result<EntryMeta, ErrorReply> {
        let me = Arc::clone(self);
        let n = name.to_owned();
        tokio::task::spawn_blocking(move || me.with_vault(|v| v.get(&n)))
            .await
            .map_err(|_| err(ErrorCode::Internal, "internal error (task failed)"))?
            .map_err(vault_err)
    }

    /// Entry `meta`'s decrypted secret, read off the async threads.
    pub(super) async fn secret(
        self: &Arc<Self>,
        key: &Arc<UnlockedKey>,
        meta: &EntryMeta,
    ) -> Result<SecretValue, ErrorReply> {
        let me = Arc::clone(self);
        let m = meta.clone();
        let k = Arc::clone(key);
        tokio::task::spawn_blocking(move || me.with_vault(|v| v.read_secret(&k, &m)))
            .await
            .map_err(|_| err(ErrorCode::Internal, "internal error (task failed)"))?
            .map_err(vault_err)
    }

    /// `test_key`: issues a credential for `name` (as `cred_aws` / `cred_oauth2` would, cached
    /// the same way, behind the same approval gate) and reports only whose it is and until
    /// when. It is gated because issuing sends the long-lived secret to the key's endpoint.
    pub(super) async fn test_key(
        self: &Arc<Self>,
        name: String,
        mfa_code: Option<WireSecret>,
        approval: Option<String>,
        gated: bool,
        actor: Actor,
    ) -> Outcome {
        let meta = self.entry(&name).await?;
        if let (EntryKind::Aliyun, Some(cfg)) = (meta.kind, &meta.config.aliyun) {
            let c = match self
                .cred_aliyun(name.clone(), approval, actor, gated)
                .await?
            {
                Reply::AliyunCredentials(c) => c,
                ask @ Reply::ApprovalNeeded { .. } => return Ok(ask),
                _ => return Err(err(ErrorCode::Internal, "no credentials were issued")),
            };
            let signer = crate::aliyun::Signer {
                access_key_id: &c.access_key_id,
                secret: c.access_key_secret.expose(),
                security_token: c.security_token.as_ref().map(|t| t.expose()),
            };
            let identity =
                crate::aliyun::caller_identity(self.aliyun.http()?, &name, cfg, &signer).await?;
            return Ok(Reply::KeyTested(KeyTested {
                kind: EntryKind::Aliyun,
                identity,
                expiration: c.expiration.clone(),
                scope: None,
            }));
        }
        match (meta.kind, meta.config.aws, meta.config.oauth2) {
            (EntryKind::Aws, Some(cfg), _) => {
                let creds = match self
                    .cred_aws(name.clone(), mfa_code, approval, actor, gated)
                    .await?
                {
                    Reply::AwsCredentials(creds) => creds,
                    ask @ Reply::ApprovalNeeded { .. } => return Ok(ask),
                    _ => return Err(err(ErrorCode::Internal, "no credentials were issued")),
                };
                let identity = aws::caller_identity(
                    &name,
                    &cfg,
                    &creds.access_key_id,
                    creds.secret_access_key.expose(),
                    Some(creds.session_token.expose()),
                )
                    .await
                    .map_err(|e| err(ErrorCode::Upstream, e.to_string()))?;
                Ok(Reply::KeyTested(KeyTested {
                    kind: EntryKind::Aws,
                    identity,
                    expiration: Some(creds.expiration.clone()),
                    scope: None,
                }))
            }
            (EntryKind::OAuth2, _, Some(cfg)) => {
                let token = match self
                    .cred_oauth2(name.clone(), approval, actor, gated)
                    .await?
                {
                    Reply::Oauth2Token(token) => token,
                    ask @ Reply::ApprovalNeeded { .. } => return Ok(ask),
                    _ => return Err(err(ErrorCode::Internal, "no token was issued")),
                };
                if cfg.introspection_url.is_none() {
                    return Ok(Reply::KeyTested(KeyTested {
                        kind: EntryKind::OAuth2,
                        identity: format!("client {} (no introspection URL to confirm it)", cfg.client_id),
                        expiration: token.expires_at.clone(),
                        scope: token.scope.clone(),
                    }));
                }
                let key = self
                    .current_key()
                    .ok_or_else(|| vault_err(VaultError::Locked))?;
                let meta = self.entry(&name).await?;
                let SecretValue::OAuth2 { client_secret } = self.secret(&key, &meta).await? else {
                    return Err(err(ErrorCode::Internal, "stored secret is not an OAuth2 client"));
                };
                let http = self.oauth.http()?;
                let access = SecretString::from(token.access_token.expose().to_owned());
                let seen = oauth::introspect(http, &name, &cfg, &client_secret, &access)
                    .await
                    .map_err(|e| err(ErrorCode::Upstream, e.to_string()))?;
                let mut identity = format!(
                    "client {} (confirmed by introspection)",
                    seen.client_id.as_deref().unwrap_or(&cfg.client_id)
                );
                if let Some(sub) = seen.sub.as_deref().filter(|s| *s != cfg.client_id) {
                    identity = format!("{identity}, subject {sub}");
                }
                Ok(Reply::KeyTested(KeyTested {
                    kind: EntryKind::OAuth2,
                    identity,
                    expiration: seen.expires_at.or_else(|| token.expires_at.clone()),
                    scope: seen.scope.or_else(|| token.scope.clone()),
                }))
            }
            (kind, _, _) => Err(err(
                ErrorCode::Invalid,
                format!(
                    "'{name}' is a {} key: only AWS, OAuth2 and Alibaba Cloud keys issue short-lived credentials to test",
                    kind.as_str()
                ),
            )),
        }
    }

    /// Session credentials for AWS entry `profile`, from the cache or STS.
    pub(super) async fn cred_aws(
        self: &Arc<Self>,
        profile: String,
        mfa_code: Option<WireSecret>,
        approval: Option<String>,
        actor: Actor,
        gated: bool,
    ) -> Outcome {
        let mfa_code = mfa_code.map(|c| SecretString::from(c.expose().to_owned()));
        self.issue_with(&self.sts, profile, mfa_code, approval, actor, gated)
            .await
    }

    /// An access token for OAuth2 entry `profile`, from the cache or the token endpoint.
    pub(super) async fn cred_oauth2(
        self: &Arc<Self>,
        profile: String,
        approval: Option<String>,
        actor: Actor,
        gated: bool,
    ) -> Outcome {
        self.issue_with(&self.oauth, profile, (), approval, actor, gated)
            .await
    }

    /// Alibaba Cloud credentials for entry `profile`: an STS token from the cache or STS, or
    /// (a key without a role) the AccessKey itself.
    pub(super) async fn cred_aliyun(
        self: &Arc<Self>,
        profile: String,
        approval: Option<String>,
        actor: Actor,
        gated: bool,
    ) -> Outcome {
        self.issue_with(&self.aliyun, profile, (), approval, actor, gated)
            .await
    }

    /// kubectl's credential for `profile`: an OAuth2 key's token or a static key's lease (in a
    /// variable's form: kubectl reads it from the adapter's output), for the tool that ran the
    /// adapter. Keys kubectl cannot use say what to use instead.
    pub(super) async fn cred_kube(
        self: &Arc<Self>,
        profile: String,
        approval: Option<String>,
        actor: Actor,
    ) -> Outcome {
        match self.entry(&profile).await?.kind {
            EntryKind::OAuth2 => self.cred_oauth2(profile, approval, actor, true).await,
            EntryKind::Static => {
                let form = keyward_core::entry::LeaseMode::Env;
                self.lease_static(profile, form, approval, "helper", actor)
                    .await
            }
            EntryKind::Aws => Err(err(
                ErrorCode::Invalid,
                format!("'{profile}' is an AWS key: for EKS use `aws eks get-token` under keyward exec aws:{profile}"),
            )),
            EntryKind::Aliyun => Err(err(
                ErrorCode::Invalid,
                format!("'{profile}' is an Alibaba Cloud key: for ACK use `aliyun cs` under keyward exec aliyun:{profile}"),
            )),
        }
    }

    /// A lease of static key `profile`, if the user allowed it to be leased (read from the
    /// authenticated header, so a catalog edit cannot allow it), for at most the policy's
    /// credential lifetime.
    pub(super) async fn lease_static(
        self: &Arc<Self>,
        profile: String,
        form: keyward_core::entry::LeaseMode,
        approval: Option<String>,
        via: &'static str,
        actor: Actor,
    ) -> Outcome {
        let key = self
            .current_key()
            .ok_or_else(|| vault_err(VaultError::Locked))?;
        let meta = self.entry(&profile).await?;
        if meta.kind == EntryKind::Static {
            let (me, k, m) = (Arc::clone(self), Arc::clone(&key), meta.clone());
            let mode = tokio::task::spawn_blocking(move || me.with_vault(|v| v.lease_mode(&k, &m)))
                .await
                .map_err(|_| err(ErrorCode::Internal, "internal error (task failed)"))?
                .map_err(vault_err)?;
            let why = match mode {
                None => Some(format!("'{profile}' is not allowed to be leased: allow it with `keyward edit {profile} --allow-lease {}` (asks for an authenticator code)", form.as_str())),
                Some(m) if !m.allows(form) => Some(format!("'{profile}' may be leased only in a file descriptor (static:{profile}=fd:VAR), not in a variable: `keyward edit {profile} --allow-lease env` allows both (asks for an authenticator code)")),
                Some(_) => None,
            };
            if let Some(why) = why {
                let why = err(ErrorCode::Forbidden, why);
                return Err(self.not_issued(&actor, &profile, "refused", why).await);
            }
        }
        self.lease_out(profile, approval, via, actor).await
    }

    /// A lease of static key `profile` the caller found allowed to go out (a lease setting, or a
    /// helper's binding), for at most the policy's longest credential life.
    pub(super) async fn lease_out(
        self: &Arc<Self>,
        profile: String,
        approval: Option<String>,
        via: &'static str,
        actor: Actor,
    ) -> Outcome {
        let meta = self.entry(&profile).await?;
        // issue_with refuses a key the policy refuses; here only its lifetime is wanted.
        let secs = self
            .policy_admits(&meta)
            .ok()
            .and_then(|a| a.max_ttl_secs)
            .map_or(crate::lease::LEASE_SECS, |max| {
                max.min(crate::lease::LEASE_SECS)
            });
        self.issue_with(&self.leases, profile, (secs, via), approval, actor, true)
            .await
    }

    /// The one issuance pipeline, whatever the provider: the entry (from a cache hit, else the
    /// catalog) is checked and the approval gate asked, once; a fresh cached credential then
    /// goes out, or one request per profile at a time (single flight) decrypts the long-lived
    /// secret and calls the provider, caches what it issued and records it. Every credential is
    /// audited before it is handed out.
    pub(crate) async fn issue_with<P: Provider>(
        self: &Arc<Self>,
        provider: &P,
        profile: String,
        input: P::Input,
        approval: Option<String>,
        actor: Actor,
        gated: bool,
    ) -> Outcome {
        let key = self
            .current_key()
            .ok_or_else(|| vault_err(VaultError::Locked))?;
        // A hit needs no catalog read: the cache keeps the entry it was issued from.
        let hit = provider.cache().fresh(&profile);
        let meta = match &hit {
            Some((_, meta)) => meta.clone(),
            None => self.entry(&profile).await?,
        };
        if meta.kind != P::KIND {
            return Err(vault_err(VaultError::WrongKind {
                name: profile,
                expected: P::KIND.as_str(),
                actual: meta.kind.as_str(),
            }));
        }
        // Before the gate: a key the policy refuses is not worth the user's answer.
        let admitted = match self.policy_admits(&meta) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                return Err(self.not_issued(&actor, &profile, "refused", refusal).await)
            }
        };
        // Before the gate too: a program in a loop must not flood the user with questions.
        let cost = if hit.is_some() || P::KIND == EntryKind::Static {
            crate::ratelimit::CACHED_COST
        } else {
            crate::ratelimit::UPSTREAM_COST
        };
        self.within_rate(&actor, &profile, cost, admitted.rate)
            .await?;
        // What is asked for upstream (and named in the question), within the policy's lifetime.
        let asked = match admitted.max_ttl_secs {
            Some(max) => provider.capped(&meta, max),
            None => meta.clone(),
        };
        let ttl = provider.ttl_secs(&asked);
        let passage = self
            .gate(
                &actor,
                &profile,
                P::KIND,
                ttl,
                approval.as_deref(),
                gated,
                admitted.standing_grants,
            )
            .await?;
        let answered = match passage {
            super::consent::Passage::Ask(ask) => return Ok(ask),
            super::consent::Passage::Through => false,
            super::consent::Passage::ByTheUser => true,
        };
        if let Some((c, meta)) = hit {
            return self.issued(provider, actor, meta, c, answered).await;
        }
        let flight = provider.cache().flight(&profile);
        let _guard = flight.lock().await;
        if let Some((c, meta)) = provider.cache().fresh(&profile) {
            return self.issued(provider, actor, meta, c, answered).await;
        }
        // The secret is checked against the settings sealed with it, as stored; the call then
        // asks for no longer than the policy allows.
        let secret = self.secret(&key, &meta).await?;
        let (c, expires) = match provider.issue(&asked, secret, input).await {
            Ok(v) => v,
            Err(e) => return Err(self.not_issued(&actor, &profile, "failed", e.into()).await),
        };
        // Locked in the meantime: do not cache or hand out.
        if !self.is_unlocked() {
            return Err(vault_err(VaultError::Locked));
        }
        if let Some(expires) = expires {
            provider.cache().store(&profile, &meta, &c, expires);
        }
        self.issued(provider, actor, meta, c, answered).await
    }

    /// Takes `cost` from the asking program's bucket for `profile`; over the limit, a
    /// `throttled` refusal saying which limit, for whom, and when to retry — audited once per
    /// run of refusals.
    async fn within_rate(
        self: &Arc<Self>,
        actor: &Actor,
        profile: &str,
        cost: f64,
        rate: crate::ratelimit::Rate,
    ) -> Result<(), ErrorReply> {
        let client = client_of(actor).unwrap_or_else(|| ClientId {
            exe: "an unknown program".into(),
            script: None,
            unvouched: None,
        });
        match self
            .rates
            .take(&client, profile, cost, rate, Instant::now())
        {
            crate::ratelimit::Verdict::Pass => Ok(()),
            crate::ratelimit::Verdict::Refused { retry_after, first } => {
                let secs = retry_after.as_secs().max(1);
                let reply = err(
                    ErrorCode::Throttled,
                    format!(
                        "rate limit: {client} asked for '{profile}' faster than {} a minute (bursts of {}; a call to the provider counts 10): retry in {secs} s",
                        rate.per_minute, rate.burst
                    ),
                );
                if first {
                    // Told once per run, as it is audited: the desktop shows a notification.
                    let _ = self.unusual.send(super::usage::UnusualUse {
                        key: profile.to_owned(),
                        client: client.to_string(),
                        what: super::usage::Unusual::Throttled {
                            per_minute: rate.per_minute,
                            burst: rate.burst,
                            retry_secs: secs,
                        },
                    });
                    return Err(self.not_issued(actor, profile, "throttled", reply).await);
                }
                Err(reply)
            }
        }
    }

    /// Records that nothing was issued for `profile` — the policy `refused`, the provider
    /// `failed` — (best effort: the request fails either way) and returns `reply` for the
    /// client, whose message the row keeps.
    pub(super) async fn not_issued(
        self: &Arc<Self>,
        actor: &Actor,
        profile: &str,
        outcome: &'static str,
        reply: ErrorReply,
    ) -> ErrorReply {
        let me = Arc::clone(self);
        let target = Some(profile.to_owned());
        let a = actor.clone();
        let detail = match outcome {
            "refused" | "throttled" => serde_json::json!({ "reason": reply.message }),
            _ => serde_json::json!({}),
        };
        let _ = tokio::task::spawn_blocking(move || {
            me.audited_with(&a, "issue", target, outcome, detail)
        })
        .await;
        reply
    }

    /// Records the issuance (fail closed) and hands the credentials out. `answered`: the user
    /// asked for or approved this very request (so its program is expected, not unusual).
    async fn issued<P: Provider>(
        self: &Arc<Self>,
        provider: &P,
        actor: Actor,
        meta: EntryMeta,
        credential: P::Credential,
        answered: bool,
    ) -> Outcome {
        let detail = provider.audit_detail(&meta, &credential);
        let (done, wait) = tokio::sync::oneshot::channel();
        let record = IssueRecord {
            actor,
            event: AuditEvent {
                action: "issue",
                target: Some(meta.name.clone()),
                outcome: "ok",
                detail,
            },
            entry_id: meta.id,
            answered,
            done,
        };
        let refused = || {
            err(
                ErrorCode::Audit,
                "the audit writer is not running, so the credentials were withheld",
            )
        };
        self.issues.send(record).map_err(|_| refused())?;
        wait.await.map_err(|_| refused())??;
        Ok(credential.into())
    }
}
