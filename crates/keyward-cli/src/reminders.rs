//! The desktop agent's reminders: a notification when a key becomes due soon, overdue, expired
//! or unused (once per state, at most once a day per key; see
//! `keyward_core::policy::reminder_due`), which opens the key in the window when clicked and
//! has a "Rotate now" action (a key due, overdue or expired) that opens its rotation, and the
//! tray's badge and
//! tooltip, which say how many keys need action and whose policy is in force; and the agent's
//! reports of unusual use, as urgent notifications.
//!
//! The agent decides and records what is due; this module only shows it. It looks when the
//! agent starts, whenever a key or the policy changes, and every ten minutes (dates pass).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use keyward_agent::protocol::{KeyStates, Listed, PolicyInfo, ShowKey};
use keyward_agent::Agent;
use keyward_core::EntryState;

use crate::notify::Urgency;

/// How often the keys are looked at when nothing changes.
const EVERY: Duration = Duration::from_secs(600);

/// What the tray shows about the keys and the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Keys overdue or expired (the badge is on while any is).
    pub overdue: usize,
    /// Keys due soon or unused.
    pub soon: usize,
    /// The policy file in force, or why none is usable.
    pub policy: Option<String>,
}

impl Summary {
    fn of(k: &KeyStates, p: &PolicyInfo) -> Self {
        let policy = if p.unusable {
            Some(format!(
                "the administrator's policy cannot be used: nothing is issued ({})",
                p.path
            ))
        } else {
            p.sha256
                .as_ref()
                .map(|_| format!("policy set by your administrator ({})", p.path))
        };
        Summary {
            overdue: k.overdue + k.expired,
            soon: k.due_soon + k.unused,
            policy,
        }
    }

    /// The tooltip's lines below its title.
    pub fn lines(&self) -> String {
        let mut out = Vec::new();
        match (self.overdue, self.soon) {
            (0, 0) => out.push("Every key is up to date".to_owned()),
            (o, s) => {
                let mut parts = Vec::new();
                if o > 0 {
                    parts.push(format!("{o} overdue or expired"));
                }
                if s > 0 {
                    parts.push(format!("{s} due soon or unused"));
                }
                out.push(format!("Keys that need action: {}", parts.join(", ")));
            }
        }
        if let Some(p) = &self.policy {
            out.push(p.clone());
        }
        out.join("\n")
    }
}

/// A reminder's title and text.
fn words(l: &Listed) -> (String, String) {
    let name = &l.meta.name;
    let title = match l.standing.state {
        EntryState::DueSoon => format!("Key “{name}” is due soon"),
        EntryState::Overdue => format!("Key “{name}” is overdue for rotation"),
        EntryState::Expired => format!("Key “{name}” has expired"),
        EntryState::Unused => format!("Key “{name}” looks unused"),
        EntryState::Ok => format!("Key “{name}”"),
    };
    let what = match l.standing.state {
        EntryState::Unused => format!("If nothing needs it, remove it: keyward remove {name}"),
        _ if l.standing.blocked => {
            format!("It issues nothing until rotated: keyward rotate {name}")
        }
        _ => format!("Rotate it: keyward rotate {name}"),
    };
    let reason = l.standing.reason.as_deref().unwrap_or("");
    (title, format!("{reason}. {what}"))
}

/// Sends notifications over the session bus and remembers which are Keyward's and which key
/// each is about, so that acting on one opens that key.
struct Notifier {
    bus: zbus::Connection,
    ours: Mutex<HashMap<u32, String>>,
}

/// The action that opens a key's rotation.
const ROTATE: &str = "rotate";

impl Notifier {
    async fn show(&self, l: &Listed) -> zbus::Result<()> {
        let (title, body) = words(l);
        let rotate = matches!(
            l.standing.state,
            EntryState::DueSoon | EntryState::Overdue | EntryState::Expired
        );
        // Normal urgency: it waits in the notification list, it does not take over the screen.
        self.send(&l.meta.name, &title, &body, Urgency::Normal, rotate)
            .await
    }

    /// One notification about `key`: clicking it opens the key ("default"), and "Rotate now"
    /// when `rotate`; remembered as ours.
    async fn send(
        &self,
        key: &str,
        title: &str,
        body: &str,
        urgency: Urgency,
        rotate: bool,
    ) -> zbus::Result<()> {
        let mut actions = vec![("default", "Open"), ("open", "Open key")];
        if rotate {
            actions.push((ROTATE, "Rotate now"));
        }
        let id = crate::notify::send(&self.bus, title, body, urgency, &actions).await?;
        if let Ok(mut ours) = self.ours.lock() {
            ours.insert(id, key.to_owned());
        }
        Ok(())
    }

    /// Says that a key was used in a way it never was (see `keyward_agent::service::usage`).
    async fn unusual(&self, u: &keyward_agent::service::usage::UnusualUse) -> zbus::Result<()> {
        let title = format!("Unusual use of key “{}”", u.key);
        let body = format!(
            "{} If that was not you: lock Keyward, look at Activity, and rotate the key.",
            u.words()
        );
        self.send(&u.key, &title, &body, Urgency::Critical, false)
            .await
    }

    /// Opens the key a notification of ours is about when the user acts on it.
    async fn answer_actions(
        self: Arc<Self>,
        open: impl Fn(Option<ShowKey>) + Send + 'static,
    ) -> zbus::Result<()> {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface("org.freedesktop.Notifications")?
            .member("ActionInvoked")?
            .build();
        let mut stream = zbus::MessageStream::for_match_rule(rule, &self.bus, None).await?;
        while let Some(Ok(msg)) = stream.next().await {
            let Ok((id, action)) = msg.body().deserialize::<(u32, String)>() else {
                continue;
            };
            let key = self.ours.lock().ok().and_then(|o| o.get(&id).cloned());
            if let Some(name) = key {
                open(Some(ShowKey {
                    name,
                    rotate: action == ROTATE,
                }));
            }
        }
        Ok(())
    }
}

/// Looks for reminders and keeps the tray's summary current, for as long as the agent runs.
/// `open` opens the window (at a key, when given); `show` hands the tray each new summary.
pub async fn run(
    agent: Arc<Agent>,
    open: impl Fn(Option<ShowKey>) + Send + Sync + Clone + 'static,
    show: impl Fn(Summary) + Send + 'static,
) {
    let notifier = match zbus::Connection::session().await {
        Ok(bus) => Some(Arc::new(Notifier {
            bus,
            ours: Mutex::new(HashMap::new()),
        })),
        Err(e) => {
            tracing::warn!("no desktop notifications for keys that need action: {e}");
            None
        }
    };
    if let Some(n) = &notifier {
        let (n, open) = (Arc::clone(n), open.clone());
        tokio::spawn(async move {
            if let Err(e) = n.answer_actions(open).await {
                tracing::warn!("reminders' actions are not answered: {e}");
            }
        });
    }
    let mut unusual = agent.unusual.subscribe();
    let mut last = None;
    loop {
        let a = Arc::clone(&agent);
        let looked = tokio::task::spawn_blocking(move || {
            let due = a.reminders_due(time::OffsetDateTime::now_utc());
            (due, a.key_states_now(), a.policy().info())
        })
        .await;
        if let Ok((due, states, policy)) = looked {
            for l in &due {
                let shown = match &notifier {
                    Some(n) => n.show(l).await,
                    None => Ok(()),
                };
                if let Err(e) = shown {
                    tracing::warn!("cannot show a reminder for {}: {e}", l.meta.name);
                }
            }
            let summary = Summary::of(&states, &policy);
            if last.as_ref() != Some(&summary) {
                show(summary.clone());
                last = Some(summary);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = agent.standings_changed.notified() => {}
            told = unusual.recv() => {
                if let (Ok(u), Some(n)) = (told, &notifier) {
                    if let Err(e) = n.unusual(&u).await {
                        tracing::warn!("cannot show unusual use of {}: {e}", u.key);
                    }
                }
                continue;
            }
        }
    }
}
