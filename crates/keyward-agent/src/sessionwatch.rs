//! Locks the vault when the machine suspends or the user's session is locked
//! (SECURITY-REQUIREMENTS §10), from systemd-logind's signals on the system bus:
//! `Manager.PrepareForSleep(true)`, `Session.Lock`, and `LockedHint` turning true (what desktop
//! screen lockers set). Without a system bus (containers, CI) the agent keeps its idle lock
//! and says so in its log.

use std::sync::Arc;

use tracing::{info, warn};
use zbus::blocking::{Connection, MessageIterator};
use zbus::message::Type;
use zbus::MatchRule;

use crate::service::Agent;

const LOGIN1: &str = "org.freedesktop.login1";

/// What a signal means for the vault.
fn lock_reason(msg: &zbus::Message) -> Option<&'static str> {
    let header = msg.header();
    let iface = header.interface()?.as_str();
    let member = header.member()?.as_str();
    match (iface, member) {
        ("org.freedesktop.login1.Manager", "PrepareForSleep") => {
            msg.body().deserialize::<bool>().ok()?.then_some("suspend")
        }
        ("org.freedesktop.login1.Session", "Lock") => Some("session locked"),
        ("org.freedesktop.DBus.Properties", "PropertiesChanged") => {
            let (iface, changed, _): (
                String,
                std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
                Vec<String>,
            ) = msg.body().deserialize().ok()?;
            let locked = changed
                .get("LockedHint")
                .and_then(|v| bool::try_from(v).ok());
            (iface == "org.freedesktop.login1.Session" && locked == Some(true))
                .then_some("session locked")
        }
        _ => None,
    }
}

fn rules() -> zbus::Result<Vec<MatchRule<'static>>> {
    Ok(vec![
        MatchRule::builder()
            .msg_type(Type::Signal)
            .interface("org.freedesktop.login1.Manager")?
            .member("PrepareForSleep")?
            .build(),
        MatchRule::builder()
            .msg_type(Type::Signal)
            .interface("org.freedesktop.login1.Session")?
            .member("Lock")?
            .build(),
        MatchRule::builder()
            .msg_type(Type::Signal)
            .interface("org.freedesktop.DBus.Properties")?
            .member("PropertiesChanged")?
            .arg(0, "org.freedesktop.login1.Session")?
            .build(),
    ])
}

/// The login session this agent belongs to, if logind knows it: only its lock counts.
fn own_session(conn: &Connection) -> Option<zbus::zvariant::OwnedObjectPath> {
    let reply = conn
        .call_method(
            Some(LOGIN1),
            "/org/freedesktop/login1",
            Some("org.freedesktop.login1.Manager"),
            "GetSessionByPID",
            &(std::process::id()),
        )
        .ok()?;
    reply.body().deserialize().ok()
}

/// Starts watching in the background; returns at once.
pub fn spawn(agent: Arc<Agent>) {
    let started = std::thread::Builder::new()
        .name("keyward-session-watch".into())
        .spawn(move || {
            if let Err(e) = watch(&agent) {
                info!("not locking on suspend or session lock: no system bus ({e})");
            }
        });
    if let Err(e) = started {
        warn!("cannot watch for suspend and session lock: {e}");
    }
}

fn watch(agent: &Arc<Agent>) -> zbus::Result<()> {
    let conn = Connection::system()?;
    let session = own_session(&conn);
    info!(session = ?session.as_deref().map(|s| s.as_str()), "locking on suspend and session lock");
    let mut threads = Vec::new();
    for rule in rules()? {
        // Each rule gets its own iterator (which adds the match on the bus) and thread.
        let it = MessageIterator::for_match_rule(rule, &conn, Some(16))?;
        let agent = Arc::clone(agent);
        let session = session.clone();
        threads.push(std::thread::spawn(move || {
            for msg in it {
                let Ok(msg) = msg else { continue };
                if from_other_session(&msg, session.as_ref()) {
                    continue;
                }
                if let Some(reason) = lock_reason(&msg) {
                    if agent.lock(&crate::peer::this_process(), reason) {
                        info!(reason, "vault locked by the session");
                    }
                }
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// A session signal about another user's (or another seat's) session is not ours to act on.
fn from_other_session(msg: &zbus::Message, own: Option<&zbus::zvariant::OwnedObjectPath>) -> bool {
    let header = msg.header();
    let is_session_signal = header
        .interface()
        .is_some_and(|i| i.as_str() != "org.freedesktop.login1.Manager");
    match (own, header.path()) {
        (Some(own), Some(path)) if is_session_signal => path.as_str() != own.as_str(),
        _ => false,
    }
}
