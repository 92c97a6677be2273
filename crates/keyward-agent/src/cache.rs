//! The per-profile credential cache every provider shares, with single-flight fetching.
//!
//! Tools run their credential command on every invocation and SDKs refresh shortly before
//! expiry, so a hit is only ever handed out with at least [`MIN_REMAINING`] left, and concurrent
//! requests for one profile share one upstream call (a per-profile async mutex: the first caller
//! fetches, the rest find the cache).

use std::collections::HashMap;
use std::sync::Arc;

use keyward_core::EntryMeta;
use time::OffsetDateTime;
use tokio::sync::Mutex;

/// Cached credentials are never handed out with less than this left.
pub const MIN_REMAINING: time::Duration = time::Duration::minutes(20);

/// What a credential must have left to be handed out: [`MIN_REMAINING`]. Test builds (feature
/// `test-short-sessions`, never a release) take `KEYWARD_TEST_MIN_REMAINING_SECS`, so an
/// end-to-end test sees a session come to its end in seconds rather than in an hour.
pub fn min_remaining() -> time::Duration {
    #[cfg(feature = "test-short-sessions")]
    if let Some(secs) = std::env::var("KEYWARD_TEST_MIN_REMAINING_SECS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    {
        return time::Duration::seconds(secs);
    }
    MIN_REMAINING
}

/// Issued credentials that can say they came from the cache.
pub trait Issued: Clone {
    /// Marks a copy handed out from the cache.
    fn set_cached(&mut self);
}

struct Cached<C> {
    creds: C,
    expires: OffsetDateTime,
    entry: EntryMeta,
}

/// Credentials of one kind, per profile.
pub struct CredCache<C> {
    cached: std::sync::Mutex<HashMap<String, Cached<C>>>,
    flights: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// What a hit must have left; [`min_remaining`] when `None`.
    floor: Option<time::Duration>,
}

impl<C> Default for CredCache<C> {
    fn default() -> Self {
        CredCache {
            cached: std::sync::Mutex::new(HashMap::new()),
            flights: std::sync::Mutex::new(HashMap::new()),
            floor: None,
        }
    }
}

impl<C> CredCache<C> {
    /// A cache whose hits need only `floor` left: for tools that ask again well before the end
    /// (Alibaba Cloud's SDK: 3 minutes), where AWS's 20 minutes would waste a short session.
    pub fn keeping(floor: time::Duration) -> Self {
        CredCache {
            floor: Some(floor),
            ..Self::default()
        }
    }
}

impl<C: Issued> CredCache<C> {
    /// Fresh cached credentials for `profile`, with the entry they were issued from. Removing
    /// or rotating an entry clears the cache, so a hit always belongs to the live entry.
    pub fn fresh(&self, profile: &str) -> Option<(C, EntryMeta)> {
        let cached = self.cached.lock().ok()?;
        let c = cached.get(profile)?;
        (c.expires - OffsetDateTime::now_utc() >= self.floor.unwrap_or_else(min_remaining)).then(
            || {
                let mut creds = c.creds.clone();
                creds.set_cached();
                (creds, c.entry.clone())
            },
        )
    }

    /// The lock that serializes upstream fetches for `profile`.
    pub fn flight(&self, profile: &str) -> Arc<Mutex<()>> {
        let mut f = match self.flights.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        f.entry(profile.to_owned()).or_default().clone()
    }

    /// Stores freshly issued credentials that are good until `expires`.
    pub fn store(&self, profile: &str, entry: &EntryMeta, creds: &C, expires: OffsetDateTime) {
        if let Ok(mut cached) = self.cached.lock() {
            cached.insert(
                profile.to_owned(),
                Cached {
                    creds: creds.clone(),
                    expires,
                    entry: entry.clone(),
                },
            );
        }
    }

    /// Drops everything (on lock, removal or rotation).
    pub fn clear(&self) {
        if let Ok(mut cached) = self.cached.lock() {
            cached.clear();
        }
    }
}
