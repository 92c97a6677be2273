//! A key's standing under the limits in force: ok, due soon, overdue, expired or unused, when,
//! and which setting decided it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Effective, Enforcement};
use crate::entry::{EntryMeta, EntryState, DUE_SOON_DAYS};

/// A key's state with the reason a person (or a script) can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Standing {
    /// The state.
    pub state: EntryState,
    /// What makes it so, in words ("rotation overdue since 2026-11-01 (max_key_age_days = 30,
    /// rule 'prod-aws')"); `None` when the key is ok.
    pub reason: Option<String>,
    /// The part of the admin policy that decided (`defaults` or `rule 'NAME'`); `None` when the
    /// key's own settings did, or nothing is due.
    pub rule: Option<String>,
    /// Whether the policy withholds credentials from it in this state (`enforcement = "block"`,
    /// overdue or expired).
    pub blocked: bool,
}

fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

fn day(t: OffsetDateTime) -> String {
    t.date().to_string()
}

/// One date the key runs into, and what set it.
struct Limit {
    at: Option<OffsetDateTime>,
    /// "max_key_age_days = 30, rule 'prod-aws'" or "its rotation interval of 90 days".
    why: String,
    rule: Option<String>,
}

/// `l` when it falls at or before `t` (`unreadable`: whether an unreadable date does).
fn by(l: &Option<Limit>, t: OffsetDateTime, unreadable: bool) -> Option<&Limit> {
    l.as_ref().filter(|l| l.at.map_or(unreadable, |at| at <= t))
}

impl Effective {
    /// `meta`'s standing at `now` under these limits and its own rotation interval and expiry.
    /// An unreadable date counts as passed, so the key is looked at rather than let through.
    /// Expired outranks overdue, overdue outranks unused, unused outranks due soon.
    pub fn standing(&self, meta: &EntryMeta, now: OffsetDateTime) -> Standing {
        let enforce = self.enforcement.as_ref().map(|b| b.value) == Some(Enforcement::Block);
        let remind = self
            .remind_before_days
            .as_ref()
            .map_or(DUE_SOON_DAYS, |b| i64::from(b.value));
        let soon = now + time::Duration::days(remind);
        let expiry = meta.expires.as_deref().map(|e| Limit {
            at: parse(e),
            why: "its expiry date".into(),
            rule: None,
        });
        let base = parse(meta.rotated.as_deref().unwrap_or(&meta.created));
        let after = |days: u32| base.map(|t| t + time::Duration::days(i64::from(days)));
        let own = meta.rotation_interval_days.map(|d| Limit {
            at: after(d),
            why: format!("its rotation interval of {d} days"),
            rule: None,
        });
        let admin = self.max_key_age_days.as_ref().map(|b| Limit {
            at: after(b.value),
            why: format!("max_key_age_days = {}, {}", b.value, b.by),
            rule: Some(b.by.clone()),
        });
        // The earlier due date decides; on the same date the admin's rule is named.
        let rotation = match (own, admin) {
            (Some(o), Some(a)) if o.at < a.at => Some(o),
            (o, a) => a.or(o),
        };
        // Keyward's own last issue or the provider's last sight of the key, whichever is later;
        // a key neither has seen used counts from when it was rotated or added.
        let keyward = meta.last_used.as_deref().map(parse);
        let provider = meta.provider_use.as_ref().and_then(|p| p.used_at());
        let last_use = match (keyward, provider) {
            (Some(Some(k)), Some(p)) => Some(k.max(p)),
            (Some(k), None) => k,
            (None | Some(None), Some(p)) => Some(p),
            (None, None) => parse(meta.rotated.as_deref().unwrap_or(&meta.created)),
        };
        let idle = self.max_idle_days.as_ref().map(|b| Limit {
            at: last_use.map(|t| t + time::Duration::days(i64::from(b.value))),
            why: format!("max_idle_days = {}, {}", b.value, b.by),
            rule: Some(b.by.clone()),
        });
        let date = |t: Option<OffsetDateTime>| t.map_or_else(|| "an unreadable date".into(), day);
        let out = |state, l: &Limit, words: String| Standing {
            state,
            reason: Some(format!("{words} ({})", l.why)),
            rule: l.rule.clone(),
            blocked: enforce && matches!(state, EntryState::Overdue | EntryState::Expired),
        };
        if let Some(l) = by(&expiry, now, true) {
            return out(EntryState::Expired, l, format!("expired on {}", date(l.at)));
        }
        if let Some(l) = by(&rotation, now, true) {
            let words = format!("rotation overdue since {}", date(l.at));
            return out(EntryState::Overdue, l, words);
        }
        if let Some(l) = by(&idle, now, true) {
            return out(
                EntryState::Unused,
                l,
                format!("unused since {}", date(last_use)),
            );
        }
        // Both near: the sooner is named.
        match (by(&rotation, soon, false), by(&expiry, soon, false)) {
            (Some(r), Some(e)) if e.at < r.at => {
                out(EntryState::DueSoon, e, format!("expires on {}", date(e.at)))
            }
            (Some(r), _) => out(
                EntryState::DueSoon,
                r,
                format!("rotation due on {}", date(r.at)),
            ),
            (None, Some(e)) => out(EntryState::DueSoon, e, format!("expires on {}", date(e.at))),
            (None, None) => Standing {
                state: EntryState::Ok,
                reason: None,
                rule: None,
                blocked: false,
            },
        }
    }
}

/// The last reminder shown for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reminded {
    /// The key's state it was about.
    pub state: EntryState,
    /// When it was shown.
    pub at: OffsetDateTime,
}

/// A key is reminded at most this often.
pub const REMIND_AT_MOST_EVERY: time::Duration = time::Duration::days(1);

/// Whether a key now in `state` is reminded at `now`: it needs action, it was not reminded of
/// this state yet (due soon, then again when overdue or expired, or when unused), and not of
/// anything within the last [`REMIND_AT_MOST_EVERY`].
pub fn reminder_due(state: EntryState, last: Option<&Reminded>, now: OffsetDateTime) -> bool {
    if state == EntryState::Ok {
        return false;
    }
    match last {
        None => true,
        Some(l) => l.state != state && now - l.at >= REMIND_AT_MOST_EVERY,
    }
}
