//! Per-client approval (SECURITY-REQUIREMENTS §14): the first credential request from a program
//! the user has not approved for that profile waits for their decision — allow once, for some
//! hours, until the vault locks, or deny. Grants live in memory only and go with the lock.
//!
//! Who decides: the desktop app's window (with its window token) when an approver is
//! registered; otherwise the `keyward` CLI that made the request, on its terminal. A decision
//! over the socket is accepted only from the Keyward binary itself (the installed executable,
//! by path), and only from the very process the question was put to: one `keyward` process
//! cannot answer another's question.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use keyward_core::audit::{Actor, ProcessInfo};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How long a request waits for a decision before it counts as denied.
pub const APPROVAL_WAIT: Duration = Duration::from_secs(60);
/// Undecided requests kept at most (a flood of requests must not grow memory).
const MAX_PENDING: usize = 32;
/// Undecided requests one program may have at once, so that a flood from one program cannot
/// push another program's question (the user's real one) out.
pub const MAX_PENDING_PER_CLIENT: usize = 4;
/// Longest "allow for N hours".
pub const MAX_GRANT_HOURS: u32 = 24 * 7;

/// The program a grant is for: its executable and, for interpreters, its script.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ClientId {
    /// Executable path.
    pub exe: String,
    /// Script path when the executable is an interpreter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Why the executable and script do not say which code runs (see
    /// [`ProcessInfo::unvouched`]): such a client is allowed one request at a time, never by a
    /// standing grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unvouched: Option<String>,
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.script {
            Some(s) => write!(f, "{s} (run by {})", self.exe),
            None => f.write_str(&self.exe),
        }
    }
}

/// What the user decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// This request only.
    Once,
    /// This client and profile for N hours (or until the vault locks, if sooner).
    Hours(u32),
    /// This client and profile until the vault locks.
    UntilLock,
    /// Refuse this request.
    Deny,
}

impl Decision {
    /// Short name for the audit trail.
    pub fn outcome(self) -> &'static str {
        match self {
            Decision::Once => "allowed_once",
            Decision::Hours(_) => "allowed_hours",
            Decision::UntilLock => "allowed_until_lock",
            Decision::Deny => "denied",
        }
    }
}

/// A request waiting for the user, as shown to them.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ApprovalInfo {
    /// Random id to answer with.
    pub id: String,
    /// The program asking.
    pub client: ClientId,
    /// The whole process chain, nearest first (keyward, the tool, its shell …).
    pub chain: Vec<ProcessInfo>,
    /// Profile asked for.
    pub profile: String,
    /// Kind of key behind the profile (what the program would get: STS session credentials or
    /// an OAuth2 access token).
    pub kind: keyward_core::EntryKind,
    /// Lifetime of the credential it would get; `None` when the server decides (OAuth2).
    pub ttl_secs: Option<u64>,
    /// Seconds left to decide.
    pub expires_in_secs: u64,
    /// An allow for hours or until lock needs a current authenticator code with the answer
    /// (the vault's setting).
    #[serde(default)]
    pub standing_needs_code: bool,
}

/// A standing permission, as listed to the user.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct GrantInfo {
    /// Id to revoke with.
    pub id: String,
    /// Program.
    pub client: ClientId,
    /// Profile.
    pub profile: String,
    /// When it was granted (RFC 3339).
    pub granted: String,
    /// When it ends (RFC 3339); `None`: when the vault locks.
    pub expires: Option<String>,
}

struct Grant {
    info: GrantInfo,
    until: Option<Instant>,
}

struct Pending {
    info: ApprovalInfo,
    /// Pid of the process the question was put to (the `keyward` CLI that asked), if any.
    asker: Option<i32>,
    created: Instant,
    decision: Option<Decision>,
    decided: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct State {
    grants: Vec<Grant>,
    pending: HashMap<String, Pending>,
    approver: Option<tokio::sync::mpsc::UnboundedSender<ApprovalInfo>>,
    /// What new questions tell the user about standing grants (the agent decides by the
    /// vault's authenticated setting when the answer comes).
    standing_needs_code: bool,
}

/// Errors answering a pending request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApprovalError {
    /// Unknown, expired or already answered.
    #[error("no such approval request (it may have expired): ask again")]
    NoSuchRequest,
    /// Out-of-range hours.
    #[error("grants last 1 to {MAX_GRANT_HOURS} hours")]
    BadHours,
    /// No such grant.
    #[error("no grant with id {0}: see `keyward grants`")]
    NoSuchGrant(String),
    /// The program already has as many questions waiting as it may.
    #[error("{0} already has {MAX_PENDING_PER_CLIENT} questions waiting for an answer: answer or let them expire first")]
    TooManyPending(String),
    /// A standing answer for a program whose name does not say which code it runs.
    #[error("{0} runs code its name does not vouch for ({1}): it can only be allowed once")]
    OnlyOnce(String, String),
}

/// Who answers a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    /// The desktop app's window (its token checked by the caller) or the agent itself.
    App,
    /// A `keyward` process over the socket: it may answer only a question put to it.
    Process(i32),
}

/// Grants and pending requests.
#[derive(Default)]
pub struct Approvals {
    // Read-mostly: every credential request checks grants; only decisions write.
    state: RwLock<State>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// This process's executable, read once (it is on every credential request's path).
pub fn own_exe() -> Option<&'static std::path::Path> {
    static OWN: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    OWN.get_or_init(|| std::env::current_exe().ok()).as_deref()
}

/// This installation's `keyward` command, when the agent is `keyward-agent`: the `keyward`
/// installed beside it (canonical, as /proc names a process's executable), read once.
fn keyward_beside() -> Option<&'static std::path::Path> {
    static BESIDE: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    BESIDE
        .get_or_init(|| {
            let own = own_exe()?;
            (own.file_name()? == "keyward-agent")
                .then(|| std::fs::canonicalize(own.with_file_name("keyward")).ok())
                .flatten()
        })
        .as_deref()
}

/// Whether `exe` is this Keyward installation's own executable: the agent's, or the `keyward`
/// command installed beside `keyward-agent`, which asks on behalf of the tool that ran it. By
/// path, not by name: any program can be called `keyward`.
pub fn is_own_exe(exe: &str) -> bool {
    let exe = std::path::Path::new(exe);
    own_exe().is_some_and(|o| o == exe) || keyward_beside().is_some_and(|k| k == exe)
}

/// The process behind a request: the nearest one in the chain that is not Keyward itself (the
/// `keyward cred` process is only the messenger of the tool that ran it).
pub fn client_process(actor: &Actor) -> Option<&ProcessInfo> {
    let is_keyward = |p: &ProcessInfo| p.exe.as_deref().is_some_and(is_own_exe);
    actor
        .chain
        .iter()
        .find(|p| !is_keyward(p))
        .filter(|p| p.exe.is_some())
}

/// The program behind a request, as grants name it.
pub fn client_of(actor: &Actor) -> Option<ClientId> {
    client_process(actor).and_then(|p| {
        Some(ClientId {
            exe: p.exe.clone()?,
            script: p.script.clone(),
            unvouched: p.unvouched.clone(),
        })
    })
}

impl Approvals {
    fn state(&self) -> RwLockWriteGuard<'_, State> {
        match self.state.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        match self.state.read() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    /// Whether `client` holds a live grant for `profile`.
    pub fn granted(&self, client: &ClientId, profile: &str) -> bool {
        self.granted_to(&client.exe, client.script.as_deref(), profile)
    }

    /// Whether the program (executable, script) holds a live grant for `profile`; allocation-
    /// free, as it runs on every credential request.
    pub fn granted_to(&self, exe: &str, script: Option<&str>, profile: &str) -> bool {
        let now = Instant::now();
        self.read().grants.iter().any(|g| {
            g.until.is_none_or(|u| u > now)
                && g.info.profile == profile
                && g.info.client.exe == exe
                && g.info.client.script.as_deref() == script
        })
    }

    /// Records a request for the user, put to process `asker` (the `keyward` CLI relaying it);
    /// tells the embedded approver, if any.
    pub fn ask(
        &self,
        client: ClientId,
        chain: Vec<ProcessInfo>,
        profile: &str,
        kind: keyward_core::EntryKind,
        ttl_secs: Option<u64>,
        asker: Option<i32>,
    ) -> Result<(ApprovalInfo, Arc<tokio::sync::Notify>), ApprovalError> {
        let mut st = self.state();
        st.pending
            .retain(|_, p| p.created.elapsed() < APPROVAL_WAIT * 2);
        let waiting = |st: &State, c: &ClientId| {
            st.pending
                .values()
                .filter(|p| p.decision.is_none() && p.info.client == *c)
                .count()
        };
        if waiting(&st, &client) >= MAX_PENDING_PER_CLIENT {
            return Err(ApprovalError::TooManyPending(client.to_string()));
        }
        while st.pending.len() >= MAX_PENDING {
            // Make room at the expense of the programs with the most questions waiting, and
            // among theirs the newest: a question already shown is not pushed out by a flood.
            let most = st
                .pending
                .values()
                .map(|p| waiting(&st, &p.info.client))
                .max()
                .unwrap_or(0);
            let oldest = st
                .pending
                .iter()
                .filter(|(_, p)| waiting(&st, &p.info.client) == most)
                .max_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => st.pending.remove(&k),
                None => break,
            };
        }
        let info = ApprovalInfo {
            id: uuid::Uuid::new_v4().simple().to_string(),
            client,
            chain,
            profile: profile.to_owned(),
            kind,
            ttl_secs,
            expires_in_secs: APPROVAL_WAIT.as_secs(),
            standing_needs_code: st.standing_needs_code,
        };
        let decided = Arc::new(tokio::sync::Notify::new());
        st.pending.insert(
            info.id.clone(),
            Pending {
                info: info.clone(),
                asker,
                created: Instant::now(),
                decision: None,
                decided: Arc::clone(&decided),
            },
        );
        if let Some(tx) = &st.approver {
            if tx.send(info.clone()).is_err() {
                st.approver = None;
            }
        }
        Ok((info, decided))
    }

    /// Whether questions from now on say that standing grants need a code.
    pub fn set_standing_needs_code(&self, on: bool) {
        self.state().standing_needs_code = on;
    }

    /// Whether an embedded approver (the desktop app) is listening.
    pub fn has_approver(&self) -> bool {
        self.state()
            .approver
            .as_ref()
            .is_some_and(|tx| !tx.is_closed())
    }

    /// Makes the caller the approver: new requests arrive on the returned channel.
    pub fn subscribe(&self) -> tokio::sync::mpsc::UnboundedReceiver<ApprovalInfo> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.state().approver = Some(tx);
        rx
    }

    /// The requests still waiting for an answer, with the seconds each has left.
    pub fn pending(&self) -> Vec<ApprovalInfo> {
        let mut list: Vec<_> = self
            .read()
            .pending
            .values()
            .filter(|p| p.decision.is_none() && p.created.elapsed() < APPROVAL_WAIT)
            .map(|p| {
                let mut info = p.info.clone();
                info.expires_in_secs = APPROVAL_WAIT.saturating_sub(p.created.elapsed()).as_secs();
                (p.created, info)
            })
            .collect();
        list.sort_by_key(|(created, _)| *created);
        list.into_iter().map(|(_, i)| i).collect()
    }

    /// Answers a pending request; an allow for hours or until lock also stores a grant. A
    /// process may answer only a question put to it (anything else reads as no such request).
    pub fn decide(
        &self,
        id: &str,
        decision: Decision,
        by: Answerer,
    ) -> Result<ApprovalInfo, ApprovalError> {
        if let Decision::Hours(h) = decision {
            if h == 0 || h > MAX_GRANT_HOURS {
                return Err(ApprovalError::BadHours);
            }
        }
        let mut st = self.state();
        let p = st
            .pending
            .get_mut(id)
            .filter(|p| p.decision.is_none() && p.created.elapsed() < APPROVAL_WAIT)
            .filter(|p| match by {
                Answerer::App => true,
                Answerer::Process(pid) => p.asker == Some(pid),
            })
            .ok_or(ApprovalError::NoSuchRequest)?;
        // Refused, not quietly taken as once: the user sees that the answer was not what they
        // chose, and the question stays open for one that can be.
        if let (Some(why), Decision::Hours(_) | Decision::UntilLock) =
            (&p.info.client.unvouched, decision)
        {
            return Err(ApprovalError::OnlyOnce(
                p.info.client.to_string(),
                why.clone(),
            ));
        }
        p.decision = Some(decision);
        p.decided.notify_one();
        let info = p.info.clone();
        let until = match decision {
            Decision::Hours(h) => Some(Duration::from_secs(u64::from(h) * 3600)),
            Decision::UntilLock => None,
            Decision::Once | Decision::Deny => return Ok(info),
        };
        Self::store(&mut st, info.client.clone(), &info.profile, until);
        Ok(info)
    }

    /// The decision on request `id` if it was made for this client and profile; consumes it.
    pub fn take_decision(&self, id: &str, client: &ClientId, profile: &str) -> Option<Decision> {
        let mut st = self.state();
        let matches = st.pending.get(id).is_some_and(|p| {
            p.decision.is_some() && p.info.client == *client && p.info.profile == profile
        });
        if !matches {
            return None;
        }
        st.pending.remove(id).and_then(|p| p.decision)
    }

    /// Forgets an undecided request (its wait ran out).
    pub fn expire(&self, id: &str) {
        let mut st = self.state();
        if st.pending.get(id).is_some_and(|p| p.decision.is_none()) {
            st.pending.remove(id);
        }
    }

    /// Adds a grant directly (`keyward grants allow`).
    pub fn allow(
        &self,
        client: ClientId,
        profile: &str,
        hours: Option<u32>,
    ) -> Result<GrantInfo, ApprovalError> {
        let until = match hours {
            Some(h) if h == 0 || h > MAX_GRANT_HOURS => return Err(ApprovalError::BadHours),
            Some(h) => Some(Duration::from_secs(u64::from(h) * 3600)),
            None => None,
        };
        Ok(Self::store(&mut self.state(), client, profile, until))
    }

    fn store(
        st: &mut State,
        client: ClientId,
        profile: &str,
        until: Option<Duration>,
    ) -> GrantInfo {
        st.grants
            .retain(|g| !(g.info.client == client && g.info.profile == profile));
        let now = OffsetDateTime::now_utc();
        let info = GrantInfo {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            client,
            profile: profile.to_owned(),
            granted: rfc3339(now),
            expires: until.map(|d| rfc3339(now + d)),
        };
        st.grants.push(Grant {
            info: info.clone(),
            until: until.map(|d| Instant::now() + d),
        });
        info
    }

    /// Live grants.
    pub fn list(&self) -> Vec<GrantInfo> {
        let mut st = self.state();
        let now = Instant::now();
        st.grants.retain(|g| g.until.is_none_or(|u| u > now));
        st.grants.iter().map(|g| g.info.clone()).collect()
    }

    /// Revokes a grant.
    pub fn revoke(&self, id: &str) -> Result<GrantInfo, ApprovalError> {
        let mut st = self.state();
        let pos = st
            .grants
            .iter()
            .position(|g| g.info.id == id)
            .ok_or_else(|| ApprovalError::NoSuchGrant(id.to_owned()))?;
        Ok(st.grants.remove(pos).info)
    }

    /// Forgets every grant and pending request (the vault locked).
    pub fn clear(&self) {
        let mut st = self.state();
        st.grants.clear();
        for p in st.pending.values() {
            p.decided.notify_one();
        }
        st.pending.clear();
    }
}

#[cfg(test)]
mod tests;
