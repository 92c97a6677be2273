//! Asking AWS when each stored access key was last used (`GetAccessKeyLastUsed`), so that "last
//! used", the unused rule and the key directory see uses outside Keyward too.
//!
//! Once a day per key (an hour after a failure), at unlock and on the agent's ten-minute timer;
//! signed with the key itself, which is why [`keyward_core::ProviderUse`] tells Keyward's own
//! questions apart. Only keys whose IAM is known are asked: AWS's own (no STS endpoint set) or
//! the key's sealed IAM endpoint; a key for some other STS is never sent to AWS.

use std::sync::Arc;

use keyward_core::ProviderUse;
use time::OffsetDateTime;

use super::*;
use crate::iam::Iam;

impl Agent {
    /// Asks IAM about every AWS key not asked within the day; failures are kept with the key
    /// (shown by `show`) and logged, and asked again an hour later.
    pub async fn check_provider_use(self: &Arc<Self>) {
        if !self.is_unlocked() {
            return;
        }
        // One round at a time; one under way covers this call. Not the rotation lock: a round
        // waits on the network, a rotation the user asked for must not wait on it. A key
        // replaced meanwhile is told by its rotation date below.
        let Ok(_one) = self.checking_use.try_lock() else {
            return;
        };
        let Some(entries) = self.keys_in_background().await else {
            return;
        };
        for meta in entries {
            let Some(cfg) = &meta.config.aws else {
                continue;
            };
            if cfg.iam_endpoint.is_none() && cfg.sts_endpoint.is_some() {
                continue;
            }
            let now = OffsetDateTime::now_utc();
            if !ProviderUse::due(meta.provider_use.as_ref(), now) {
                continue;
            }
            let held = match self.held(meta.name.clone()).await {
                Ok((held, _)) => held,
                Err(e) if e.code == ErrorCode::Locked => return,
                Err(e) => {
                    warn!(entry = %meta.name, "cannot read the key to ask AWS about it: {}", e.message);
                    continue;
                }
            };
            let iam = Iam::new(&meta.name, &held.cfg, &held.id, &held.secret);
            let prev = meta.provider_use.as_ref();
            let record = match iam.last_used(&held.id).await {
                Ok(reported) => ProviderUse::after_check(prev, &reported, now),
                Err(e) => {
                    let e = ErrorReply::from(e);
                    warn!(entry = %meta.name, "AWS did not say when the key was last used: {}", e.message);
                    ProviderUse::after_failure(prev, &e.message, now)
                }
            };
            let id = meta.id.clone();
            let kept = self
                .on_vault(move |a| {
                    // The key may have been rotated or removed while IAM answered: the record is
                    // only for the key that was asked about.
                    let still = a.with_vault(|v| v.get(&meta.name)).map_err(vault_err)?;
                    let hint = |m: &keyward_core::EntryMeta| {
                        m.config.aws.as_ref().map(|a| a.access_key_hint.clone())
                    };
                    if still.id != id
                        || still.rotated != meta.rotated
                        || hint(&still) != hint(&meta)
                    {
                        return Ok(false);
                    }
                    a.with_vault(|v| v.record_provider_use(&id, &record))
                        .map_err(vault_err)?;
                    Ok(true)
                })
                .await;
            match kept {
                Ok(true) => self.standings_changed.notify_one(),
                Ok(false) => {}
                Err(e) => warn!("cannot keep what AWS said: {}", e.message),
            }
        }
    }
}
