//! Rotating an AWS key at IAM: create a new access key, check it signs, store it, deactivate the
//! old one, delete it after a grace period.
//!
//! Every step is recorded in the key's journal (see [`keyward_core::vault::RotationJournal`])
//! before the next one starts, and [`Agent::advance`] takes a journal from whatever step it
//! records to the end, so a crash or kill between any two steps is finished by the next agent
//! at unlock. The invariant a user relies on: the entry always holds a key that is active at
//! AWS, and every key at AWS for that user was there before or is in the journal. The one step
//! that cannot be journaled first is IAM's answer to CreateAccessKey (its secret is shown
//! once): a crash there leaves a key whose secret is lost, which the `Begun` step finds (a key
//! created since the rotation began that is not the old one) and deletes.

use std::sync::Arc;

use keyward_core::vault::{RotationJournal, RotationStep};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::*;
use crate::iam::Iam;
use crate::protocol::AwsRotated;

/// Grace before a deactivated old key is deleted, when the user names none: a day to switch it
/// back on (`aws iam update-access-key --status Active`) if something still needed it.
pub const DEFAULT_GRACE_SECS: u64 = 24 * 3600;
/// The longest grace accepted.
pub const MAX_GRACE_SECS: u64 = 90 * 24 * 3600;
/// A key IAM lists as created up to this long before the journal began still counts as the
/// rotation's (the clocks here and at AWS differ a little).
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);
/// How long a new key gets to start working: IAM is eventually consistent, and a key created a
/// moment ago may be refused by STS for some seconds.
const VERIFY_TRIES: u32 = 8;

/// A point where an end-to-end test may stop the agent (SIGSTOP) to kill it with SIGKILL.
/// Once: the file `KEYWARD_TEST_ROTATION_PAUSE_MARK` names is created on the way, and the
/// agent restarted after the kill (same environment) goes past.
#[cfg(feature = "test-crash-points")]
fn crash_point(name: &str) {
    if std::env::var("KEYWARD_TEST_ROTATION_PAUSE").ok().as_deref() != Some(name) {
        return;
    }
    let first = std::env::var_os("KEYWARD_TEST_ROTATION_PAUSE_MARK").is_some_and(|mark| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(mark)
            .is_ok()
    });
    if first {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::STOP);
    }
}

#[cfg(not(feature = "test-crash-points"))]
fn crash_point(_: &str) {}

/// Where [`Agent::advance`] left a journal.
enum Advanced {
    /// The old key is inactive and kept until then.
    Waiting(OffsetDateTime),
    /// The old key is deleted; the journal is closed.
    Deleted,
    /// The rotation had not got its new key stored: undone, these keys deleted at AWS.
    Undone(Vec<String>),
}

/// An entry's AWS settings and the key it holds now.
pub(super) struct Held {
    pub(super) meta: EntryMeta,
    pub(super) cfg: keyward_core::AwsConfig,
    pub(super) id: String,
    pub(super) secret: SecretString,
}

pub(super) fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn format_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl Agent {
    /// Runs `f` on the blocking pool (vault and keychain calls) from async code.
    pub(super) async fn on_vault<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Agent) -> Result<T, ErrorReply> + Send + 'static,
    ) -> Result<T, ErrorReply> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .unwrap_or_else(|_| Err(err(ErrorCode::Internal, "internal error (task failed)")))
    }

    /// The entry named `name` and the AWS key it holds; the unlocked key is needed.
    pub(super) async fn held(
        self: &Arc<Self>,
        name: String,
    ) -> Result<(Held, Arc<UnlockedKey>), ErrorReply> {
        self.on_vault(move |a| {
            let key = a
                .current_key()
                .ok_or_else(|| vault_err(VaultError::Locked))?;
            let meta = a.with_vault(|v| v.get(&name)).map_err(vault_err)?;
            let not_aws = || {
                err(
                    ErrorCode::Invalid,
                    format!("'{name}' is a {} key: only AWS keys are rotated at their provider; store its new value with `keyward rotate {name} --manual`", meta.kind.as_str()),
                )
            };
            let cfg = meta.config.aws.clone().ok_or_else(not_aws)?;
            match a
                .with_vault(|v| v.read_secret(&key, &meta))
                .map_err(vault_err)?
            {
                SecretValue::Aws {
                    access_key_id,
                    secret_access_key,
                } => Ok((
                    Held {
                        meta,
                        cfg,
                        id: access_key_id,
                        secret: secret_access_key,
                    },
                    key,
                )),
                _ => Err(not_aws()),
            }
        })
        .await
    }

    async fn put_journal(
        self: &Arc<Self>,
        key: &Arc<UnlockedKey>,
        meta: &EntryMeta,
        j: &RotationJournal,
    ) -> Result<(), ErrorReply> {
        let (key, meta, j) = (Arc::clone(key), meta.clone(), j.clone());
        self.on_vault(move |a| {
            a.with_vault(|v| v.put_rotation_journal(&key, &meta, &j))
                .map_err(vault_err)
        })
        .await
    }

    async fn close_journal(self: &Arc<Self>, meta: &EntryMeta) -> Result<(), ErrorReply> {
        let meta = meta.clone();
        self.on_vault(move |a| {
            a.with_vault(|v| v.clear_rotation_journal(&meta))
                .map_err(vault_err)
        })
        .await
    }

    async fn journal_of(
        self: &Arc<Self>,
        key: &Arc<UnlockedKey>,
        meta: &EntryMeta,
    ) -> Result<Option<RotationJournal>, ErrorReply> {
        let (key, meta) = (Arc::clone(key), meta.clone());
        self.on_vault(move |a| {
            a.with_vault(|v| v.rotation_journal(&key, &meta))
                .map_err(vault_err)
        })
        .await
    }

    async fn audit_rotation(
        self: &Arc<Self>,
        actor: &Actor,
        name: &str,
        outcome: &'static str,
        detail: serde_json::Value,
    ) -> Result<(), ErrorReply> {
        let (actor, name) = (actor.clone(), name.to_owned());
        self.on_vault(move |a| a.audited_with(&actor, "rotate.aws", Some(name), outcome, detail))
            .await
    }

    /// `rotate_aws`: rotates `name`'s access key at IAM (see the module doc). An open journal
    /// is taken care of first: an interrupted rotation is finished (and that is the answer), an
    /// old key still in its grace period is deleted early to make room under IAM's two keys.
    pub(super) async fn rotate_aws(
        self: &Arc<Self>,
        name: String,
        grace_secs: Option<u64>,
        actor: Actor,
    ) -> Outcome {
        let grace = grace_secs.unwrap_or(DEFAULT_GRACE_SECS);
        if grace > MAX_GRACE_SECS {
            return Err(err(
                ErrorCode::Invalid,
                "the grace period before the old key is deleted can be at most 90 days",
            ));
        }
        let _one = self.rotating.lock().await;
        let (held, key) = self.held(name.clone()).await?;
        let mut notes = Vec::new();
        if let Some(j) = self.journal_of(&key, &held.meta).await? {
            let was = j.step;
            let old = j.old_key_id.clone();
            let new = j.new_key_id.clone();
            let user = j.user_name.clone();
            match self
                .advance(&held.meta, &key, j, &actor, was == RotationStep::Deactivated)
                .await?
            {
                Advanced::Deleted if was == RotationStep::Deactivated => notes.push(format!(
                    "deleted the previous key {old}, inactive since the last rotation, early to make room"
                )),
                Advanced::Undone(deleted) => {
                    for id in deleted {
                        notes.push(format!("deleted {id}, created by an interrupted rotation before its secret was stored"));
                    }
                }
                finished => {
                    let (old_deleted, delete_after) = match finished {
                        Advanced::Waiting(until) => (false, Some(format_time(until))),
                        _ => (true, None),
                    };
                    return Ok(Reply::Rotated(AwsRotated {
                        name,
                        user_name: user,
                        old_key_id: old,
                        new_key_id: new.unwrap_or_default(),
                        old_deleted,
                        delete_after,
                        notes: vec![format!(
                            "finished the rotation that was interrupted after step '{}'",
                            was.as_str()
                        )],
                    }));
                }
            }
        }
        let (held, key) = self.held(name.clone()).await?;
        let iam = Iam::new(&name, &held.cfg, &held.id, &held.secret);
        let looked = async {
            let user = iam.user_name().await?;
            let keys = iam.keys(&user).await?;
            Ok::<_, aws::AwsError>((user, keys))
        }
        .await;
        let (user, keys) = match looked {
            Ok(found) => found,
            Err(e) => {
                // Nothing changed at AWS; the attempt is on record all the same.
                self.audit_rotation(
                    &actor,
                    &name,
                    "failed",
                    serde_json::json!({"old_key_id": held.id, "step": "look-up", "reason": e.to_string()}),
                )
                .await?;
                return Err(e.into());
            }
        };
        if let Some(other) = keys.iter().find(|k| k.id != held.id) {
            let state = if other.active { "active" } else { "inactive" };
            let created = other
                .created
                .map(|c| format!(", created {}", format_time(c)))
                .unwrap_or_default();
            let message = format!(
                "cannot rotate '{name}': IAM allows two access keys per user and '{user}' has two, {} (the one '{name}' holds) and {} ({state}{created}), which Keyward does not hold. If nothing uses {} any more, delete it (aws iam delete-access-key --user-name {user} --access-key-id {}) and rotate again",
                held.id, other.id, other.id, other.id
            );
            self.audit_rotation(
                &actor,
                &name,
                "refused",
                serde_json::json!({"user": user, "old_key_id": held.id, "reason": "two-key limit", "other_key_id": other.id}),
            )
            .await?;
            return Err(err(ErrorCode::Upstream, message));
        }
        let mut j = RotationJournal {
            user_name: user.clone(),
            old_key_id: held.id.clone(),
            new_key_id: None,
            new_secret: None,
            step: RotationStep::Begun,
            begun: now_rfc3339(),
            deactivated: None,
            grace_secs: grace,
        };
        self.put_journal(&key, &held.meta, &j).await?;
        crash_point("begun");
        let (new_id, new_secret) = match iam.create(&user).await {
            Ok(k) => k,
            Err(e) => {
                // The answer may have been lost after IAM made the key: the Begun step looks.
                let _ = self.advance(&held.meta, &key, j, &actor, false).await;
                self.audit_rotation(
                    &actor,
                    &name,
                    "failed",
                    serde_json::json!({"user": user, "old_key_id": held.id, "step": "create", "reason": e.to_string()}),
                )
                .await?;
                return Err(e.into());
            }
        };
        crash_point("created-at-aws");
        j.new_key_id = Some(new_id.clone());
        j.new_secret = Some(new_secret);
        j.step = RotationStep::Created;
        self.put_journal(&key, &held.meta, &j).await?;
        crash_point("created");
        let advanced = self.advance(&held.meta, &key, j, &actor, false).await?;
        let (old_deleted, delete_after) = match advanced {
            Advanced::Waiting(until) => (false, Some(format_time(until))),
            Advanced::Deleted => (true, None),
            Advanced::Undone(_) => {
                return Err(err(
                    ErrorCode::Internal,
                    "the rotation was undone before its new key was stored",
                ))
            }
        };
        Ok(Reply::Rotated(AwsRotated {
            name,
            user_name: user,
            old_key_id: held.id,
            new_key_id: new_id,
            old_deleted,
            delete_after,
            notes,
        }))
    }

    /// Takes `j` from the step it records to the end, or to waiting out the grace period
    /// (`early` deletes the old key without waiting). Each step is idempotent, so a journal
    /// whose next step was done but not yet recorded is safe to advance again.
    async fn advance(
        self: &Arc<Self>,
        meta: &EntryMeta,
        key: &Arc<UnlockedKey>,
        mut j: RotationJournal,
        actor: &Actor,
        early: bool,
    ) -> Result<Advanced, ErrorReply> {
        let name = meta.name.clone();
        loop {
            let (held, _) = self.held(name.clone()).await?;
            let iam = Iam::new(&name, &held.cfg, &held.id, &held.secret);
            match j.step {
                RotationStep::Begun => {
                    // The new key's secret never reached the journal: a key IAM has now that is
                    // not the old one and was created since the rotation began is this
                    // rotation's, and nobody can use it.
                    let since = parse_time(&j.begun)
                        .map(|t| t - CLOCK_SKEW)
                        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                    let mut deleted = Vec::new();
                    for k in iam.keys(&j.user_name).await? {
                        let ours = k.created.is_some_and(|c| c >= since);
                        if k.id != j.old_key_id && k.id != held.id && ours {
                            iam.delete(&j.user_name, &k.id).await?;
                            deleted.push(k.id);
                        }
                    }
                    self.close_journal(meta).await?;
                    self.audit_rotation(
                        actor,
                        &name,
                        "undone",
                        serde_json::json!({"user": j.user_name, "old_key_id": j.old_key_id, "deleted": deleted}),
                    )
                    .await?;
                    return Ok(Advanced::Undone(deleted));
                }
                RotationStep::Created => {
                    let (Some(new_id), Some(new_secret)) =
                        (j.new_key_id.clone(), j.new_secret.clone())
                    else {
                        return Err(err(
                            ErrorCode::Internal,
                            "a rotation journal at step 'created' holds no new key",
                        ));
                    };
                    if held.id != new_id {
                        if let Err(e) = self
                            .verify_new(&name, &held.cfg, &new_id, &new_secret)
                            .await
                        {
                            // The new key does not sign: take it back and keep the old one.
                            iam.delete(&j.user_name, &new_id).await?;
                            self.close_journal(meta).await?;
                            self.audit_rotation(
                                actor,
                                &name,
                                "failed",
                                serde_json::json!({"user": j.user_name, "old_key_id": j.old_key_id, "new_key_id": new_id, "step": "verify", "reason": e.to_string()}),
                            )
                            .await?;
                            return Err(err(
                                ErrorCode::Upstream,
                                format!("the new key {new_id} did not work ({e}), so Keyward deleted it at AWS; '{name}' keeps {}", j.old_key_id),
                            ));
                        }
                        let secret = SecretValue::Aws {
                            access_key_id: new_id.clone(),
                            secret_access_key: new_secret,
                        };
                        let (k, n, who) = (Arc::clone(key), name.clone(), actor.clone());
                        self.on_vault(move |a| {
                            a.with_vault(|v| v.replace_secret(&n, &secret, &k, &who))
                                .map_err(vault_err)?;
                            // Sessions cached from the old key would outlive its deactivation.
                            a.clear_caches();
                            Ok(())
                        })
                        .await?;
                        crash_point("stored-entry");
                    }
                    j.step = RotationStep::Stored;
                    j.new_secret = None;
                    self.put_journal(key, meta, &j).await?;
                    crash_point("stored");
                }
                RotationStep::Stored => {
                    if held.id != j.old_key_id {
                        iam.deactivate(&j.user_name, &j.old_key_id).await?;
                    }
                    crash_point("deactivated-at-aws");
                    j.step = RotationStep::Deactivated;
                    j.deactivated = Some(now_rfc3339());
                    self.put_journal(key, meta, &j).await?;
                    let delete_after = parse_time(j.deactivated.as_deref().unwrap_or_default())
                        .map(|t| {
                            t + time::Duration::seconds(
                                i64::try_from(j.grace_secs).unwrap_or(i64::MAX / 2),
                            )
                        })
                        .map(format_time);
                    self.audit_rotation(
                        actor,
                        &name,
                        "ok",
                        serde_json::json!({
                            "user": j.user_name,
                            "old_key_id": j.old_key_id,
                            "new_key_id": j.new_key_id,
                            "old_key": "inactive",
                            "delete_after": delete_after,
                        }),
                    )
                    .await?;
                    crash_point("deactivated");
                }
                RotationStep::Deactivated => {
                    let since = j
                        .deactivated
                        .as_deref()
                        .and_then(parse_time)
                        .unwrap_or_else(OffsetDateTime::now_utc);
                    let due = since
                        + time::Duration::seconds(
                            i64::try_from(j.grace_secs).unwrap_or(i64::MAX / 2),
                        );
                    if !early && OffsetDateTime::now_utc() < due {
                        return Ok(Advanced::Waiting(due));
                    }
                    // Never the key the entry holds (it was stored again by hand, say).
                    let existed = if held.id == j.old_key_id {
                        false
                    } else {
                        iam.delete(&j.user_name, &j.old_key_id).await?
                    };
                    crash_point("deleted-at-aws");
                    self.close_journal(meta).await?;
                    self.audit_rotation(
                        actor,
                        &name,
                        "deleted",
                        serde_json::json!({"user": j.user_name, "old_key_id": j.old_key_id, "was_at_aws": existed}),
                    )
                    .await?;
                    return Ok(Advanced::Deleted);
                }
            }
        }
    }

    /// Checks a new long-lived key signs (STS GetCallerIdentity), giving IAM a few seconds to
    /// make it known everywhere.
    async fn verify_new(
        &self,
        name: &str,
        cfg: &keyward_core::AwsConfig,
        id: &str,
        secret: &SecretString,
    ) -> Result<String, aws::AwsError> {
        let mut wait = Duration::from_millis(500);
        let mut tries = 0;
        loop {
            tries += 1;
            match aws::caller_identity(name, cfg, id, secret.expose_secret(), None).await {
                Ok(arn) => return Ok(arn),
                Err(e)
                    if tries < VERIFY_TRIES && e.to_string().contains("InvalidClientTokenId") =>
                {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(4));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The keys, for a task of the agent's own: `None` (logged) when they cannot be read.
    pub(super) async fn keys_in_background(self: &Arc<Self>) -> Option<Vec<EntryMeta>> {
        match self
            .on_vault(|a| a.with_vault(|v| v.list()).map_err(vault_err))
            .await
        {
            Ok(e) => Some(e),
            Err(e) => {
                warn!("cannot list the keys: {}", e.message);
                None
            }
        }
    }

    /// Finishes every open rotation journal as far as it can go now (after an unlock, and from
    /// time to time while unlocked: an old key's grace period ends). Failures are logged and
    /// left for the next time; the journal stays.
    pub async fn finish_rotations(self: &Arc<Self>) {
        if !self.is_unlocked() {
            return;
        }
        let _one = self.rotating.lock().await;
        let open = match self
            .on_vault(|a| a.with_vault(|v| v.open_rotations()).map_err(vault_err))
            .await
        {
            Ok(open) => open,
            Err(e) => {
                warn!("cannot read the open rotations: {}", e.message);
                return;
            }
        };
        if open.is_empty() {
            return;
        }
        let Some(entries) = self.keys_in_background().await else {
            return;
        };
        let me = crate::peer::this_process();
        for (id, _) in open {
            let Some(meta) = entries.iter().find(|m| m.id == id) else {
                continue;
            };
            let Some(key) = self.current_key() else {
                return;
            };
            let step = match self.journal_of(&key, meta).await {
                Ok(Some(j)) => j,
                Ok(None) => {
                    let _ = self.close_journal(meta).await;
                    continue;
                }
                Err(e) => {
                    warn!(entry = %meta.name, "rotation journal refused: {}", e.message);
                    continue;
                }
            };
            let was = step.step;
            match self.advance(meta, &key, step, &me, false).await {
                Ok(_) => {
                    info!(entry = %meta.name, "rotation journal taken on from step '{}'", was.as_str());
                    self.standings_changed.notify_one();
                }
                Err(e) => {
                    warn!(entry = %meta.name, "an open rotation could not go on: {}", e.message)
                }
            }
        }
    }
}
