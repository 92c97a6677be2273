//! The audit trail as people and programs read it. The chain stores each row's actor and detail
//! as the JSON text it hashed; here they are parsed once, in the agent, into an
//! [`ActivityRecord`] with a typed actor, structured detail, the program in one line, what kind
//! of event it is, and what happened in words ("Credentials issued to aws for prod"). The CLI
//! and the window show these fields; neither parses JSON out of a string again.

use keyward_core::catalog::AuditRow;
use keyward_core::Actor;
use serde::{Deserialize, Serialize};

/// What kind of event a record is: the Activity view hides `read`s unless asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// Looking, not changing: status, lists, history, the trail itself.
    Read,
    /// The vault opened, closed, or a factor was checked.
    Session,
    /// A credential was issued (or refused at the provider).
    Issue,
    /// A program was asked about, allowed, denied, or its grant changed.
    Approval,
    /// Keys, factors or settings changed; a secret was revealed.
    Change,
    /// Keyward itself: repairs at start-up, tampering found, the agent stopping.
    System,
}

/// One audit record, parsed.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct ActivityRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// RFC 3339 UTC time.
    pub ts: String,
    /// The stored action name (`issue`, `unlock`, `settings.auto_lock`, …).
    pub action: String,
    /// The key or profile concerned, if any.
    pub target: Option<String>,
    /// `ok`, `denied`, `failed`, …
    pub outcome: String,
    /// Who asked.
    pub actor: Actor,
    /// Non-secret details (structured, as stored).
    pub detail: serde_json::Value,
    /// What kind of event.
    pub kind: ActivityKind,
    /// The program that asked, in one line (its script for an interpreter), when known.
    pub client: Option<String>,
    /// What happened, in words.
    pub summary: String,
    /// Hash of the previous record (hex).
    pub prev_hash: String,
    /// Hash of this record (hex).
    pub hash: String,
}

/// The program behind a request: the nearest process that is not Keyward's own CLI (a tool
/// runs `keyward cred …`), with its script when it is an interpreter.
pub fn client_of(actor: &Actor) -> Option<String> {
    let first = actor.chain.first()?;
    let via_cli = actor.chain.len() > 1
        && first
            .exe
            .as_deref()
            .and_then(|e| e.rsplit('/').next())
            .is_some_and(|n| n == "keyward");
    let p = if via_cli { &actor.chain[1] } else { first };
    let exe = p.exe.clone().unwrap_or_else(|| "?".to_owned());
    Some(match &p.script {
        Some(s) => format!("{exe} {s}"),
        None => exe,
    })
}

fn kind_of(action: &str) -> ActivityKind {
    match action {
        "status" | "list" | "show" | "uses" | "history" | "factors" | "grants" | "bindings"
        | "audit.tail" | "audit.query" | "audit.verify" => ActivityKind::Read,
        "unlock" | "lock" | "factor.check" => ActivityKind::Session,
        "issue" => ActivityKind::Issue,
        "approval" | "grant.allow" | "grant.revoke" => ActivityKind::Approval,
        "reconcile" | "tamper" | "shutdown" | "window.open" | "policy.loaded"
        | "policy.removed" | "policy.refused" | "reminder" | "unusual" => ActivityKind::System,
        _ => ActivityKind::Change,
    }
}

/// The short name of a program: the last part of its path (and its script's).
fn short(program: &str) -> String {
    program
        .split(' ')
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .collect::<Vec<_>>()
        .join(" ")
}

fn summary(r: &AuditRow, client: Option<&str>, detail: &serde_json::Value) -> String {
    let key = r.target.as_deref().unwrap_or("-");
    let who = client.map(short).unwrap_or_else(|| "a program".to_owned());
    let granted = detail
        .get("client")
        .and_then(|c| c.get("exe"))
        .and_then(|e| e.as_str())
        .map(short)
        .unwrap_or_else(|| who.clone());
    let ok = r.outcome == "ok";
    let failed = |what: &str| format!("{what} ({})", r.outcome);
    match r.action.as_str() {
        "issue" if ok && detail.get("cached").and_then(|c| c.as_bool()) == Some(true) => {
            format!("Credentials for {key} handed to {who} (from the cache)")
        }
        "issue" if ok => format!("Credentials issued to {who} for {key}"),
        "issue" if r.outcome == "refused" => {
            format!("Credentials for {key} refused to {who} by the administrator's policy")
        }
        "issue" => failed(&format!("Credentials for {key} not issued to {who}")),
        "unlock" if ok => "Vault unlocked".to_owned(),
        "unlock" => failed("Unlock refused"),
        "lock" => "Vault locked".to_owned(),
        "init" => "Vault created".to_owned(),
        "add" => format!("Key {key} added"),
        "update" => format!("Details of {key} changed"),
        "rotate" => format!("Secret of {key} replaced (rotated)"),
        "rotate.aws" => {
            let field = |f: &str| detail.get(f).and_then(|v| v.as_str()).unwrap_or("?");
            let (old, new, user) = (field("old_key_id"), field("new_key_id"), field("user"));
            match r.outcome.as_str() {
                "ok" => format!(
                    "{key} rotated at AWS (IAM user {user}): {new} replaces {old}, now inactive"
                ),
                "deleted" => format!("Old key {old} of {key} deleted at AWS"),
                "undone" => {
                    let deleted = detail
                        .get("deleted")
                        .and_then(|d| d.as_array())
                        .map(|d| d.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>())
                        .unwrap_or_default();
                    if deleted.is_empty() {
                        format!("An interrupted rotation of {key} undone; {old} kept")
                    } else {
                        format!(
                            "An interrupted rotation of {key} undone: {} deleted at AWS, {old} kept",
                            deleted.join(", ")
                        )
                    }
                }
                "refused" => format!(
                    "Rotation of {key} refused: IAM user {user} already has two keys ({} is not Keyward's)",
                    field("other_key_id")
                ),
                _ => format!(
                    "Rotation of {key} failed at step {} ({}); {old} kept",
                    field("step"),
                    field("reason")
                ),
            }
        }
        "remove" => format!("Key {key} removed"),
        "reveal" if ok => format!("Secret of {key} revealed in the app"),
        "reveal" => failed(&format!("Reveal of {key} refused")),
        "approval" => match r.outcome.as_str() {
            "asked" => format!("{granted} asked for {key}: waiting for the user"),
            "expired" => format!("{granted} asked for {key}: nobody answered"),
            "denied" => format!("{key} denied to {granted}"),
            "allowed_once" => format!("{key} allowed to {granted} once"),
            "allowed_until_lock" => format!("{key} allowed to {granted} until the vault locks"),
            _ => match detail
                .get("decision")
                .and_then(|d| d.get("hours"))
                .and_then(|h| h.as_u64())
            {
                Some(h) => format!("{key} allowed to {granted} for {h} h"),
                None => format!("{key} allowed to {granted} ({})", r.outcome),
            },
        },
        "grant.allow" => format!("{key} granted to {granted} ahead of time"),
        "grant.revoke" => format!("Grant of {key} to {granted} revoked"),
        "factor.add" => "Second factor enrolled".to_owned(),
        "factor.remove" => "Second factor removed".to_owned(),
        "factor.check" if ok => "Authenticator code confirmed".to_owned(),
        "factor.check" => failed("Authenticator code refused"),
        "recovery.regenerate" => {
            "New recovery codes made (the old ones stopped working)".to_owned()
        }
        "settings.auto_lock" => "Auto-lock time changed".to_owned(),
        "settings.grants_need_code" => "Whether standing grants need a code changed".to_owned(),
        "settings.lease" => match detail.get("mode").and_then(|m| m.as_str()) {
            Some(m) => format!("{key} may be leased ({m})"),
            None => format!("{key} may no longer be leased"),
        },
        "settings.binding" => {
            let (tool, host) = (
                detail.get("tool").and_then(|t| t.as_str()).unwrap_or("?"),
                detail.get("host").and_then(|h| h.as_str()).unwrap_or("?"),
            );
            if detail.get("bound").and_then(|b| b.as_bool()) == Some(true) {
                format!("{key} answers {tool} for {host}")
            } else {
                format!("{tool} no longer gets a key for {host}")
            }
        }
        "reconcile" => format!("Repaired at start-up: {key}"),
        "tamper" => format!("Tampering found: {key}"),
        "shutdown" => "Agent stopped".to_owned(),
        "window.open" => "Window opened".to_owned(),
        "status" => format!("Status read by {who}"),
        "list" => format!("Key list read by {who}"),
        "show" => format!("Details of {key} read by {who}"),
        "uses" => format!("How tools may get {key} read by {who}"),
        "bindings" => format!("Helper bindings read by {who}"),
        "history" => format!("History of {key} read by {who}"),
        "factors" => format!("Factors listed by {who}"),
        "audit.tail" | "audit.query" => format!("Activity read by {who}"),
        "policy.loaded" => "Administrator's policy taken into force".to_owned(),
        "policy.removed" => "Administrator's policy removed: none in force".to_owned(),
        "policy.refused" => "A change to the administrator's policy was refused".to_owned(),
        "reminder" => format!("Reminder shown: {key} is {}", r.outcome.replace('_', " ")),
        "unusual" => match r.outcome.as_str() {
            "new_program" => format!("Unusual: {who} got {key} for the first time"),
            "new_chain" => format!("Unusual: {who} got {key} from a new chain of processes"),
            _ => format!("Unusual: {key} issued many times its usual number today"),
        },
        "audit.verify" => format!("Audit trail verified by {who}"),
        other => match r.target.as_deref() {
            Some(t) => format!("{other} {t} ({})", r.outcome),
            None => format!("{other} ({})", r.outcome),
        },
    }
}

impl From<AuditRow> for ActivityRecord {
    fn from(r: AuditRow) -> Self {
        // The stored JSON was written by the agent; an unreadable one (an older format) shows
        // as an unknown actor and its text, never as an error that hides the row.
        let actor: Actor = serde_json::from_str(&r.actor).unwrap_or_default();
        let detail = serde_json::from_str(&r.detail)
            .unwrap_or_else(|_| serde_json::Value::String(r.detail.clone()));
        let client = client_of(&actor);
        ActivityRecord {
            kind: kind_of(&r.action),
            summary: summary(&r, client.as_deref(), &detail),
            client,
            actor,
            detail,
            seq: r.seq,
            ts: r.ts,
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_core::audit::ProcessInfo;

    fn row(
        action: &str,
        target: Option<&str>,
        outcome: &str,
        actor: &Actor,
        detail: &str,
    ) -> AuditRow {
        AuditRow {
            seq: 7,
            ts: "2026-12-02T10:00:00Z".into(),
            action: action.into(),
            target: target.map(str::to_owned),
            outcome: outcome.into(),
            actor: serde_json::to_string(actor).expect("json"),
            detail: detail.into(),
            prev_hash: "00".into(),
            hash: "11".into(),
        }
    }

    fn via_cli(tool: &str) -> Actor {
        let p = |pid, exe: &str| ProcessInfo {
            pid,
            exe: Some(exe.into()),
            script: None,
            unvouched: None,
        };
        Actor {
            uid: Some(1000),
            pid: Some(10),
            chain: vec![p(10, "/usr/bin/keyward"), p(9, tool), p(1, "/usr/bin/bash")],
        }
    }

    #[test]
    fn a_record_says_in_words_who_got_what_and_is_parsed_once() {
        let aws = via_cli("/usr/local/bin/aws");
        let r: ActivityRecord = row(
            "issue",
            Some("prod"),
            "ok",
            &aws,
            r#"{"kind":"aws-sts","cached":false}"#,
        )
        .into();
        assert_eq!(r.summary, "Credentials issued to aws for prod");
        assert_eq!(r.kind, ActivityKind::Issue);
        assert_eq!(r.client.as_deref(), Some("/usr/local/bin/aws"));
        assert_eq!(r.actor, aws);
        assert_eq!(r.detail["kind"], "aws-sts");

        let cached: ActivityRecord =
            row("issue", Some("prod"), "ok", &aws, r#"{"cached":true}"#).into();
        assert_eq!(
            cached.summary,
            "Credentials for prod handed to aws (from the cache)"
        );
        let failed: ActivityRecord = row("issue", Some("prod"), "failed", &aws, "{}").into();
        assert_eq!(
            failed.summary,
            "Credentials for prod not issued to aws (failed)"
        );
        // An answer names who was allowed what, for how long.
        let hours: ActivityRecord = row(
            "approval",
            Some("prod"),
            "allowed_hours",
            &via_cli("/usr/bin/keyward-desktop"),
            r#"{"client":{"exe":"/usr/bin/terraform"},"decision":{"hours":8}}"#,
        )
        .into();
        assert_eq!(hours.summary, "prod allowed to terraform for 8 h");
        assert_eq!(hours.kind, ActivityKind::Approval);
        let setting: ActivityRecord = row("settings.auto_lock", None, "ok", &aws, "{}").into();
        assert_eq!(setting.summary, "Auto-lock time changed");
        assert_eq!(setting.kind, ActivityKind::Change);
        // Where a key may go is said in words: a lease setting, a helper's binding.
        let lease: ActivityRecord = row(
            "settings.lease",
            Some("gh"),
            "ok",
            &aws,
            r#"{"mode":"env"}"#,
        )
        .into();
        assert_eq!(lease.summary, "gh may be leased (env)");
        let bound: ActivityRecord = row(
            "settings.binding",
            Some("gh"),
            "ok",
            &aws,
            r#"{"tool":"git","host":"github.com","bound":true}"#,
        )
        .into();
        assert_eq!(bound.summary, "gh answers git for github.com");
        assert_eq!(bound.kind, ActivityKind::Change);
        let unbound: ActivityRecord = row(
            "settings.binding",
            None,
            "ok",
            &aws,
            r#"{"tool":"docker","host":"ghcr.io","bound":false}"#,
        )
        .into();
        assert_eq!(unbound.summary, "docker no longer gets a key for ghcr.io");
    }

    #[test]
    fn what_the_window_polls_is_a_read() {
        let me = via_cli("/usr/bin/keyward-desktop");
        for action in [
            "status",
            "list",
            "factors",
            "show",
            "uses",
            "bindings",
            "history",
            "audit.tail",
        ] {
            let r: ActivityRecord = row(action, Some("prod"), "ok", &me, "{}").into();
            assert_eq!(r.kind, ActivityKind::Read, "{action}");
        }
        for action in ["unlock", "issue", "approval", "add", "reveal", "rotate"] {
            let r: ActivityRecord = row(action, Some("prod"), "ok", &me, "{}").into();
            assert_ne!(r.kind, ActivityKind::Read, "{action}");
        }
    }

    #[test]
    fn an_unreadable_stored_actor_or_detail_still_shows_the_row() {
        let mut r = row("add", Some("k"), "ok", &Actor::default(), "not json");
        r.actor = "{broken".into();
        let a: ActivityRecord = r.into();
        assert_eq!(a.actor, Actor::default());
        assert_eq!(a.client, None);
        assert_eq!(a.detail, serde_json::Value::String("not json".into()));
        assert_eq!(a.summary, "Key k added");
    }
}
