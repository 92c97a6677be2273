use super::*;

pub(super) fn denied(client: &ClientId, profile: &str) -> ErrorReply {
    err(
        ErrorCode::Denied,
        format!("you denied {client} credentials for profile {profile:?}"),
    )
}

/// Whether the peer is this Keyward installation's own executable (the CLI the agent runs
/// from), by path: only it may answer approvals or give grants over the socket.
pub(super) fn is_keyward_binary(actor: &Actor) -> bool {
    actor
        .chain
        .first()
        .and_then(|p| p.exe.as_deref())
        .is_some_and(crate::approvals::is_own_exe)
}

impl Agent {
    /// The actor a request `keyward exec` sends for the command it is about to start: that
    /// command, as it will run, first in the chain (pid 0: not started yet), so the gate, the
    /// question and the audit name it.
    pub(super) fn speaking_for(
        &self,
        actor: Actor,
        exec: Option<crate::protocol::ExecTarget>,
    ) -> Result<Actor, ErrorReply> {
        let Some(target) = exec else {
            return Ok(actor);
        };
        // Anyone else could name a program it has grants for and run something else.
        let (true, Some(pid)) = (is_keyward_binary(&actor), actor.pid) else {
            return Err(err(
                ErrorCode::Forbidden,
                "only keyward exec names the command a request is for",
            ));
        };
        let child =
            crate::peer::prospective(pid, &target).map_err(|m| err(ErrorCode::BadRequest, m))?;
        let mut actor = actor;
        actor.chain.insert(0, child);
        Ok(actor)
    }

    /// The user's answer to an approval question, from the app's window or the asking `keyward`.
    pub(super) async fn approve(
        self: &Arc<Self>,
        id: String,
        decision: Decision,
        token: Option<WireSecret>,
        code: Option<WireSecret>,
        actor: Actor,
    ) -> Outcome {
        let by = if self.is_trusted_window(&actor, token.as_ref()) {
            Answerer::App
        } else if let (true, Some(pid)) = (is_keyward_binary(&actor), actor.pid) {
            Answerer::Process(pid)
        } else {
            return Err(err(
                        ErrorCode::Forbidden,
                        "approvals are answered in the Keyward app or at the terminal of the keyward command that asked",
                    ));
        };
        self.blocking(move |a| {
            a.check_standing_code(decision, code.as_ref(), &actor)?;
            a.decide_approval(&id, decision, by, &actor)
        })
        .await
    }

    /// Turns the vault's "standing grants need a code" setting on, or off with a code.
    pub(super) async fn set_grants_need_code(
        self: &Arc<Self>,
        on: bool,
        code: Option<WireSecret>,
        actor: Actor,
    ) -> Outcome {
        self.blocking(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            if !on {
                // Lifting it is what a program running as the user would want to do.
                let Some(code) = code else {
                    return Err(err(
                        ErrorCode::FactorNeeded,
                        "turning this off needs a current code from your authenticator app",
                    ));
                };
                a.with_vault(|v| {
                    v.check_code(&key, code.expose(), "settings.grants_need_code", &actor)
                })
                .map_err(vault_err)?;
            }
            a.with_vault(|v| v.set_grants_need_code(&key, on, &actor))
                .map_err(vault_err)?;
            a.approvals.set_standing_needs_code(on);
            Ok(Reply::Done)
        })
        .await
    }

    /// Allows static key `name` to be leased, with a current code (letting a key out is what a
    /// program running as the user would want to do), or no longer. Only from the keyward
    /// command.
    pub(super) async fn set_lease(
        self: &Arc<Self>,
        name: String,
        mode: Option<keyward_core::entry::LeaseMode>,
        code: Option<WireSecret>,
        actor: Actor,
    ) -> Outcome {
        if !is_keyward_binary(&actor) {
            return Err(err(
                ErrorCode::Forbidden,
                "leases are allowed with the keyward command: keyward edit NAME --allow-lease env",
            ));
        }
        self.blocking(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            if mode.is_some() {
                let Some(code) = code else {
                    return Err(err(
                        ErrorCode::FactorNeeded,
                        "allowing a static key to be leased needs a current code from your authenticator app",
                    ));
                };
                a.with_vault(|v| v.check_code(&key, code.expose(), "settings.lease", &actor))
                    .map_err(vault_err)?;
            }
            a.with_vault(|v| v.set_lease(&key, &name, mode, &actor))
                .map_err(vault_err)?;
            Ok(Reply::Done)
        })
        .await
    }

    /// Ends a grant before its time.
    pub(super) async fn grant_revoke(self: &Arc<Self>, id: String, actor: Actor) -> Outcome {
        self.blocking(move |a| {
            let g = a
                .approvals
                .revoke(&id)
                .map_err(|e| err(ErrorCode::NotFound, e.to_string()))?;
            a.audited_with(
                &actor,
                "grant.revoke",
                Some(g.profile),
                "ok",
                serde_json::json!({ "client": g.client }),
            )?;
            Ok(Reply::Done)
        })
        .await
    }

    /// Gives a standing grant ahead of time (`keyward grants allow`), with a current code.
    pub(super) async fn grant_allow(
        self: &Arc<Self>,
        client: ClientId,
        profile: String,
        hours: Option<u32>,
        code: Option<WireSecret>,
        actor: Actor,
    ) -> Outcome {
        if !is_keyward_binary(&actor) {
            return Err(err(
                ErrorCode::Forbidden,
                "grants are given in the Keyward app or with the keyward command",
            ));
        }
        self.blocking(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            a.with_vault(|v| v.get(&profile)).map_err(vault_err)?;
            let decision = hours.map_or(Decision::UntilLock, Decision::Hours);
            a.policy_allows_standing(decision, &profile)?;
            let Some(code) = code else {
                return Err(err(
                    ErrorCode::Invalid,
                    "a standing grant needs a current code from your authenticator app",
                ));
            };
            a.with_vault(|v| v.check_code(&key, code.expose(), "grant.allow", &actor))
                .map_err(vault_err)?;
            let g = a
                .approvals
                .allow(client, &profile, hours)
                .map_err(|e| err(ErrorCode::Invalid, e.to_string()))?;
            a.audited_with(
                &actor,
                "grant.allow",
                Some(profile),
                "ok",
                serde_json::json!({ "client": g.client, "expires": g.expires }),
            )?;
            Ok(Reply::Grants { grants: vec![g] })
        })
        .await
    }

    /// When the vault's setting says so, an allow for hours or until lock comes with a current
    /// authenticator code (checked once, throttled, audited); a header edited since the unlock
    /// refuses every standing grant.
    pub fn check_standing_code(
        &self,
        decision: Decision,
        code: Option<&WireSecret>,
        actor: &Actor,
    ) -> Result<(), ErrorReply> {
        if !matches!(decision, Decision::Hours(_) | Decision::UntilLock) {
            return Ok(());
        }
        let key = self
            .current_key()
            .ok_or_else(|| vault_err(VaultError::Locked))?;
        let needed = self
            .with_vault(|v| v.grants_need_code(&key))
            .map_err(vault_err)?;
        if !needed {
            return Ok(());
        }
        let Some(code) = code else {
            return Err(err(
                ErrorCode::FactorNeeded,
                "allowing a program for hours or until lock needs a current code from your authenticator app (the vault's setting); allow it once instead, or give the code",
            ));
        };
        self.with_vault(|v| v.check_code(&key, code.expose(), "grant", actor))
            .map_err(vault_err)
    }

    /// Records the user's answer to approval request `id` (from the app, in-process, or from
    /// the keyward CLI's terminal).
    pub fn decide_approval(
        &self,
        id: &str,
        decision: Decision,
        by: Answerer,
        actor: &Actor,
    ) -> Outcome {
        if let Some(asked) = self.approvals.pending().into_iter().find(|p| p.id == id) {
            self.policy_allows_standing(decision, &asked.profile)?;
        }
        let info = self
            .approvals
            .decide(id, decision, by)
            .map_err(|e| err(ErrorCode::Invalid, e.to_string()))?;
        self.audited_with(
            actor,
            "approval",
            Some(info.profile),
            decision.outcome(),
            serde_json::json!({ "client": info.client, "decision": decision }),
        )?;
        Ok(Reply::Done)
    }
}

/// What the approval gate decided about one request.
pub(super) enum Passage {
    /// Not yet: the question the CLI must put on its terminal.
    Ask(Reply),
    /// Through on a standing grant, without a question.
    Through,
    /// Through because the user asked for it (a click in the app) or answered this request's
    /// question just now.
    ByTheUser,
}

impl Agent {
    /// Lets the request through if its program may have `profile`'s credentials; otherwise
    /// asks the embedded approver and waits, or returns what the CLI must ask on its terminal.
    /// `standing`: whether the policy lets a standing grant count for this key (a grant given
    /// before the policy said otherwise is not honoured).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn gate(
        self: &Arc<Self>,
        actor: &Actor,
        profile: &str,
        kind: EntryKind,
        ttl_secs: Option<u64>,
        approval: Option<&str>,
        gated: bool,
        standing: bool,
    ) -> Result<Passage, ErrorReply> {
        // The app's own requests (its window's, or in-process) are the user's own clicks.
        if !gated || actor.chain.first().map(|p| p.pid) == Some(std::process::id() as i32) {
            return Ok(Passage::ByTheUser);
        }
        let Some(proc_) = client_process(actor) else {
            return Err(err(
                ErrorCode::Denied,
                "cannot tell which program is asking (its executable is unreadable), so it cannot be approved",
            ));
        };
        // A program whose name does not say which code it runs holds no standing grant.
        if let (Some(exe), None, true) = (proc_.exe.as_deref(), &proc_.unvouched, standing) {
            if self
                .approvals
                .granted_to(exe, proc_.script.as_deref(), profile)
            {
                return Ok(Passage::Through);
            }
        }
        let Some(client) = client_of(actor) else {
            return Err(err(ErrorCode::Internal, "client identity changed"));
        };
        if let Some(id) = approval {
            match self.approvals.take_decision(id, &client, profile) {
                Some(Decision::Deny) => return Err(denied(&client, profile)),
                Some(_) => return Ok(Passage::ByTheUser),
                None => {}
            }
        }
        let (info, decided) = self
            .approvals
            .ask(
                client.clone(),
                actor.chain.clone(),
                profile,
                kind,
                ttl_secs,
                actor.pid,
            )
            .map_err(|e| err(ErrorCode::Denied, e.to_string()))?;
        {
            let me = Arc::clone(self);
            let a = actor.clone();
            let target = Some(profile.to_owned());
            let detail = serde_json::json!({ "client": client, "ttl_secs": ttl_secs });
            tokio::task::spawn_blocking(move || {
                me.audited_with(&a, "approval", target, "asked", detail)
            })
            .await
            .map_err(|_| err(ErrorCode::Internal, "internal error (task failed)"))??;
        }
        if !self.approvals.has_approver() {
            return Ok(Passage::Ask(Reply::ApprovalNeeded { approval: info }));
        }
        let _ = tokio::time::timeout(APPROVAL_WAIT, decided.notified()).await;
        match self.approvals.take_decision(&info.id, &client, profile) {
            Some(Decision::Deny) => Err(denied(&client, profile)),
            Some(_) => Ok(Passage::ByTheUser),
            None => {
                self.approvals.expire(&info.id);
                let me = Arc::clone(self);
                let a = actor.clone();
                let target = Some(profile.to_owned());
                let detail = serde_json::json!({ "client": client });
                let _ = tokio::task::spawn_blocking(move || {
                    me.audited_with(&a, "approval", target, "expired", detail)
                })
                .await;
                Err(err(
                    ErrorCode::Denied,
                    format!("nobody approved {client} for profile {profile:?} in time"),
                ))
            }
        }
    }
}
