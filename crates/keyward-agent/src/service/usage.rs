//! Unusual use: every issuance compared with its key's baseline ([`keyward_core::usage`]) — a
//! program the key never served, a process chain it never came from, or a day at many times
//! its usual rate — recorded as an `unusual` audit row and announced to the desktop agent, which
//! shows a notification. Never a refusal: the approval gate decides who gets credentials.
//!
//! The audit writer thread calls [`Baseline::observe`] after it has answered a batch, so the
//! comparison costs a reply nothing.

use std::collections::{HashMap, HashSet};

use keyward_core::usage::{unusual_rate, HISTORY_DAYS};

use super::*;

/// What made an issuance unusual.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Unusual {
    /// A program the key never served.
    NewProgram,
    /// A known program, started from a chain of processes the key never served.
    NewChain {
        /// The chain, nearest first.
        chain: String,
    },
    /// A program asked faster than the rate limit allows and was refused (once per run of
    /// refusals): a loop gone wrong, or something scraping the key.
    Throttled {
        /// The standing rate, a minute.
        per_minute: u32,
        /// The burst.
        burst: u32,
        /// When it may ask again, in seconds.
        retry_secs: u64,
    },
    /// Today's issuances at many times the key's usual daily number.
    Rate {
        /// Issued today so far.
        today: u64,
        /// The usual day (median of the recent days with use).
        usual: u64,
    },
}

/// One unusual issuance, for the desktop's notification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnusualUse {
    /// The key.
    pub key: String,
    /// The program served.
    pub client: String,
    /// What was unusual.
    pub what: Unusual,
}

impl UnusualUse {
    /// The notification's text.
    pub fn words(&self) -> String {
        match &self.what {
            Unusual::NewProgram => format!(
                "{} got credentials of “{}” for the first time.",
                self.client, self.key
            ),
            Unusual::NewChain { chain } => format!(
                "{} got credentials of “{}” from processes it never came from before ({chain}).",
                self.client, self.key
            ),
            Unusual::Throttled {
                per_minute,
                burst,
                retry_secs,
            } => format!(
                "{} asked for “{}” faster than the rate limit allows ({per_minute} a minute, bursts of {burst}) and is refused for now (retry in {retry_secs} s).",
                self.client, self.key
            ),
            Unusual::Rate { today, usual } => format!(
                "“{}” issued {today} credentials today; its usual day is about {usual}.",
                self.key
            ),
        }
    }
}

/// The processes behind a request, nearest first, without Keyward's own CLI and without pids:
/// how the program was started (`aws ← bash ← sshd`).
fn chain_of(actor: &Actor) -> String {
    actor
        .chain
        .iter()
        .filter_map(|p| p.exe.as_deref())
        .filter(|e| !crate::approvals::is_own_exe(e))
        .take(4)
        .map(|e| e.rsplit('/').next().unwrap_or(e))
        .collect::<Vec<_>>()
        .join(" ← ")
}

/// One issuance, as the baseline sees it.
pub(super) struct Served {
    pub entry_id: String,
    /// The key's name.
    pub key: String,
    pub actor: Actor,
    /// The user asked for (in the app) or approved this request just now: its program is
    /// expected, however new.
    pub answered: bool,
}

/// The keys' baseline as the writer thread holds it (loaded from the catalog once).
#[derive(Default)]
pub(super) struct Baseline {
    /// (entry id, `program` | `chain`, value); `None` until first needed.
    seen: Option<HashSet<(String, &'static str, String)>>,
    /// Keys that have served any program.
    known_keys: HashSet<String>,
    /// The day counted (YYYY-MM-DD, UTC) and each key's issuances on it.
    day: String,
    today: HashMap<String, u64>,
    /// Keys already reported for their rate today.
    rate_told: HashSet<String>,
}

impl Baseline {
    fn load(&mut self, vault: &Mutex<Vault>) {
        if self.seen.is_some() {
            return;
        }
        let rows = lock_vault(vault, |v| v.catalog().usage_seen()).unwrap_or_else(|e| {
            warn!("cannot read the keys' usage baseline (unusual use is not reported): {e}");
            Vec::new()
        });
        let mut seen = HashSet::new();
        for (id, what, value) in rows {
            let what = if what == "chain" { "chain" } else { "program" };
            if what == "program" {
                self.known_keys.insert(id.clone());
            }
            seen.insert((id, what, value));
        }
        self.seen = Some(seen);
    }

    /// Compares one batch of issuances with the baseline, adds them to it, and returns what was
    /// unusual with its audit event.
    pub(super) fn observe(
        &mut self,
        vault: &Mutex<Vault>,
        batch: &[Served],
        now: time::OffsetDateTime,
    ) -> Vec<(Actor, AuditEvent, UnusualUse)> {
        self.load(vault);
        let day = now.date().to_string();
        if day != self.day {
            self.day = day.clone();
            self.today.clear();
            self.rate_told.clear();
        }
        let mut out = Vec::new();
        let mut new_seen: Vec<(String, &'static str, String)> = Vec::new();
        let mut counts: HashMap<String, u64> = HashMap::new();
        for served in batch {
            let (id, key, actor) = (&served.entry_id, &served.key, &served.actor);
            *counts.entry(id.clone()).or_default() += 1;
            let Some(client) = crate::activity::client_of(actor) else {
                continue;
            };
            let chain = chain_of(actor);
            let seen = self.seen.get_or_insert_with(HashSet::new);
            let learning = !self.known_keys.contains(id);
            let new_program = seen.insert((id.clone(), "program", client.clone()));
            let new_chain = seen.insert((id.clone(), "chain", chain.clone()));
            if new_program {
                new_seen.push((id.clone(), "program", client.clone()));
            }
            if new_chain {
                new_seen.push((id.clone(), "chain", chain.clone()));
            }
            self.known_keys.insert(id.clone());
            // The first program is the baseline; one the user just approved is expected.
            let what = match (learning || served.answered, new_program, new_chain) {
                (true, _, _) => None,
                (false, true, _) => Some(Unusual::NewProgram),
                (false, false, true) => Some(Unusual::NewChain { chain }),
                _ => None,
            };
            if let Some(what) = what {
                out.push(self.event(actor, key, client, what));
            }
        }
        let days: Vec<(String, String, u64)> = counts
            .iter()
            .map(|(id, n)| (id.clone(), day.clone(), *n))
            .collect();
        // Today's number, from the catalog the first time a key is seen today (an agent started
        // mid-day), then counted here.
        for (id, n) in &counts {
            let before = match self.today.get(id) {
                Some(t) => *t,
                None => lock_vault(vault, |v| v.catalog().usage_on(id, &day)).unwrap_or(0),
            };
            let today = before + n;
            self.today.insert(id.clone(), today);
            if today < keyward_core::usage::RATE_FLOOR || self.rate_told.contains(id) {
                continue;
            }
            let history = lock_vault(vault, |v| v.catalog().usage_history(id, &day, HISTORY_DAYS))
                .unwrap_or_default();
            if let Some(usual) = unusual_rate(today, &history) {
                self.rate_told.insert(id.clone());
                if let Some(s) = batch.iter().rev().find(|s| &s.entry_id == id) {
                    let client = crate::activity::client_of(&s.actor).unwrap_or_default();
                    let what = Unusual::Rate { today, usual };
                    out.push(self.event(&s.actor, &s.key, client, what));
                }
            }
        }
        if let Err(e) = lock_vault(vault, |v| v.record_usage(&new_seen, &days)) {
            warn!("cannot record the keys' usage baseline: {e}");
        }
        out
    }

    fn event(
        &self,
        actor: &Actor,
        key: &str,
        client: String,
        what: Unusual,
    ) -> (Actor, AuditEvent, UnusualUse) {
        let outcome = match what {
            Unusual::NewProgram => "new_program",
            Unusual::NewChain { .. } => "new_chain",
            Unusual::Rate { .. } => "rate",
            // Audited as `issue`/`throttled` where it is refused; not the baseline's.
            Unusual::Throttled { .. } => "throttled",
        };
        let detail = serde_json::json!({ "client": client, "what": what });
        let event = AuditEvent {
            action: "unusual",
            target: Some(key.to_owned()),
            outcome,
            detail,
        };
        let told = UnusualUse {
            key: key.to_owned(),
            client,
            what,
        };
        (actor.clone(), event, told)
    }
}
