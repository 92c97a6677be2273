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
}
