//! The static-key leases still out: what the Clients screen and `keyward grants` list. A lease
//! is not held by the agent (it is never cached, and cannot be taken back), so the audit trail
//! is where they are found: each issuance row of a lease names its key, its client and its end.

use keyward_agent::activity::ActivityRecord;
use keyward_agent::client::{Client, ClientError};
use keyward_agent::protocol::AuditQuery;
use time::OffsetDateTime;

/// One lease that has not ended yet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseOut {
    /// The key leased.
    pub key: String,
    /// The program it went to.
    pub client: String,
    /// How: `exec` (a variable), `exec-fd` (a file descriptor), `git`, `docker`, `helper`.
    pub via: String,
    /// When it went out (RFC 3339).
    pub issued: String,
    /// When Keyward counts it as ended (RFC 3339).
    pub expires_at: String,
}

/// The leases among `rows` that end after `now`, newest first.
pub fn still_out(rows: &[ActivityRecord], now: OffsetDateTime) -> Vec<LeaseOut> {
    let rfc = &time::format_description::well_known::Rfc3339;
    let mut out: Vec<LeaseOut> = rows
        .iter()
        .filter(|r| r.action == "issue" && r.outcome == "ok")
        .filter_map(|r| {
            let via = r.detail.get("lease")?.as_str()?;
            let ends = r.detail.get("expires_at")?.as_str()?;
            let end = OffsetDateTime::parse(ends, rfc).ok()?;
            (end > now).then(|| LeaseOut {
                key: r.target.clone().unwrap_or_default(),
                client: r
                    .client
                    .clone()
                    .unwrap_or_else(|| "an unknown program".into()),
                via: via.to_owned(),
                issued: r.ts.clone(),
                expires_at: ends.to_owned(),
            })
        })
        .collect();
    out.sort_by(|a, b| b.issued.cmp(&a.issued));
    out
}

/// The leases still out, from the issuances of the longest a lease lives.
pub fn leases_out(client: &mut Client) -> Result<Vec<LeaseOut>, ClientError> {
    let now = OffsetDateTime::now_utc();
    let since = now - time::Duration::seconds(i64::from(keyward_agent::lease::LEASE_SECS));
    let rows = client.audit_query(AuditQuery {
        key: None,
        action: Some("issue".into()),
        client: None,
        since: since
            .format(&time::format_description::well_known::Rfc3339)
            .ok(),
        until: None,
        after_seq: None,
        limit: 10_000,
    })?;
    Ok(still_out(&rows, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: &str, outcome: &str, detail: serde_json::Value, ts: &str) -> ActivityRecord {
        serde_json::from_value(serde_json::json!({
            "seq": 1, "ts": ts, "action": "issue", "target": target, "outcome": outcome,
            "actor": {"uid": 0, "chain": []}, "detail": detail, "kind": "issue",
            "client": "/usr/bin/git", "summary": "", "prev_hash": "", "hash": ""
        }))
        .expect("a record")
    }

    #[test]
    fn only_leases_that_have_not_ended_are_out() {
        let now = OffsetDateTime::parse(
            "2026-12-04T12:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .expect("date");
        let rows = [
            row(
                "gh",
                "ok",
                serde_json::json!({"lease": "git", "expires_at": "2026-12-04T12:30:00Z"}),
                "2026-12-04T11:30:00Z",
            ),
            row(
                "old",
                "ok",
                serde_json::json!({"lease": "exec", "expires_at": "2026-12-04T11:59:00Z"}),
                "2026-12-04T10:59:00Z",
            ),
            row(
                "no",
                "refused",
                serde_json::json!({"reason": "x"}),
                "2026-12-04T11:50:00Z",
            ),
            row(
                "aws",
                "ok",
                serde_json::json!({"kind": "aws-sts", "expiration": "2026-12-04T13:00:00Z"}),
                "2026-12-04T11:55:00Z",
            ),
            row(
                "fd",
                "ok",
                serde_json::json!({"lease": "exec-fd", "expires_at": "2026-12-04T12:50:00Z"}),
                "2026-12-04T11:50:00Z",
            ),
        ];
        let out = still_out(&rows, now);
        let keys: Vec<&str> = out.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(
            keys,
            ["fd", "gh"],
            "newest first; ended, refused and STS rows left out"
        );
        assert_eq!(out[1].via, "git");
        assert_eq!(out[1].client, "/usr/bin/git");
    }
}
