use super::*;

impl Agent {
    /// Verifies the whole audit trail against its chain key and anchor.
    pub(super) async fn audit_verify(self: &Arc<Self>) -> Outcome {
        self.blocking(move |a| {
            let rows = a
                .with_vault(|v| v.verify_audit())
                .map_err(|e| err(ErrorCode::Audit, e.to_string()))?;
            Ok(Reply::AuditVerified { rows })
        })
        .await
    }

    /// The last rows of the audit trail.
    pub(super) async fn audit_tail(self: &Arc<Self>, limit: u32) -> Outcome {
        self.blocking(move |a| {
            let rows = a
                .with_vault(|v| v.catalog().audit_rows(Some(limit.min(10_000))))
                .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
            Ok(Reply::Audit {
                rows: rows.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    /// The rows a filter selects, newest `limit`, oldest first.
    pub(super) async fn audit_query(self: &Arc<Self>, q: crate::protocol::AuditQuery) -> Outcome {
        let filter = keyward_core::catalog::AuditFilter::try_from(q)
            .map_err(|e| err(ErrorCode::Invalid, e))?;
        self.blocking(move |a| {
            let rows = a
                .with_vault(|v| v.catalog().audit_query(&filter))
                .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
            Ok(Reply::Audit {
                rows: rows.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    /// Writes one audit row; a failure refuses the operation (fail closed).
    pub(super) fn audited(
        &self,
        actor: &Actor,
        action: &'static str,
        target: Option<String>,
        outcome: &'static str,
    ) -> Result<(), ErrorReply> {
        self.audited_with(actor, action, target, outcome, serde_json::json!({}))
    }

    /// Writes one audit row with details.
    pub(super) fn audited_with(
        &self,
        actor: &Actor,
        action: &'static str,
        target: Option<String>,
        outcome: &'static str,
        detail: serde_json::Value,
    ) -> Result<(), ErrorReply> {
        self.with_vault(|v| {
            v.audit(&[(
                actor.clone(),
                AuditEvent {
                    action,
                    target,
                    outcome,
                    detail,
                },
            )])
        })
        .map_err(vault_err)
    }

    /// The records after `seq` (oldest first, at most `limit`), for the forwarder.
    pub fn audit_rows_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> Result<Vec<crate::activity::ActivityRecord>, VaultError> {
        let f = crate::forward::after(seq, limit);
        let rows = self.with_vault(|v| v.catalog().audit_query(&f))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// A catalog setting the agent keeps for itself (how far forwarding got).
    pub fn read_setting(&self, name: &str) -> Option<String> {
        self.with_vault(|v| v.catalog().setting(name))
            .ok()
            .flatten()
    }

    /// Records one of the agent's own settings.
    pub fn write_setting(&self, name: &str, value: &str) -> Result<(), VaultError> {
        Ok(self.with_vault(|v| v.catalog().set_setting(name, value))?)
    }

    /// What the forwarder of `sink` reports, for `status`.
    pub fn set_forwarding(
        &self,
        sink: crate::forward::Sink,
        f: Option<crate::forward::Forwarding>,
    ) {
        if let Ok(mut g) = self.forwarding.lock() {
            match f {
                Some(f) => g.insert(sink, f),
                None => g.remove(&sink),
            };
        }
    }

    /// How far forwarding has got, per receiver configured (syslog first).
    pub(super) fn forwarding(&self) -> Vec<crate::forward::Forwarding> {
        self.forwarding
            .lock()
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }
}
