//! Rate limits: one token bucket per program and key, so a runaway script in a loop cannot
//! hammer the agent or the provider behind it, while every other program keeps being served.
//!
//! A credential from the cache or a lease costs [`CACHED_COST`], a call to the provider
//! [`UPSTREAM_COST`]; a bucket holds `burst` and refills at `per_minute`. A refused request says
//! when to retry; only the first refusal of a run is reported as `first` (audited once per
//! burst, not per refused request).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::approvals::ClientId;

/// What a credential from the cache, or a lease, costs.
pub const CACHED_COST: f64 = 1.0;
/// What a call to the provider costs.
pub const UPSTREAM_COST: f64 = 10.0;
/// The standing rate without a policy: far above what a tool asks (SDKs cache, kubectl asks a
/// few times per command; a script running kubectl or git in a loop stays under 20 a second),
/// far below a runaway loop (thousands a second).
pub const DEFAULT_PER_MINUTE: u32 = 1200;
/// The bucket without a policy.
pub const DEFAULT_BURST: u32 = 600;
/// Above this many buckets, the full ones (which a new bucket would equal) are dropped.
const MAX_BUCKETS: usize = 4096;

/// The limits that apply to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Standing rate, in cost units per minute.
    pub per_minute: u32,
    /// Bucket size, in cost units.
    pub burst: u32,
}

impl Default for Rate {
    fn default() -> Self {
        Rate {
            per_minute: DEFAULT_PER_MINUTE,
            burst: DEFAULT_BURST,
        }
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Go on.
    Pass,
    /// Over the limit.
    Refused {
        /// When the request would pass.
        retry_after: Duration,
        /// The first refusal since the bucket last let a request through.
        first: bool,
    },
}

struct Bucket {
    tokens: f64,
    at: Instant,
    refusing: bool,
}

/// Every program's buckets.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<(ClientId, String), Bucket>>,
}

impl RateLimiter {
    /// Takes `cost` from `client`'s bucket for `key` at `now`, under `rate`.
    pub fn take(
        &self,
        client: &ClientId,
        key: &str,
        cost: f64,
        rate: Rate,
        now: Instant,
    ) -> Verdict {
        let mut all = match self.buckets.lock() {
            Ok(b) => b,
            Err(p) => p.into_inner(),
        };
        let per_sec = f64::from(rate.per_minute) / 60.0;
        let cap = f64::from(rate.burst);
        let refill = |b: &Bucket| {
            let dt = now.saturating_duration_since(b.at).as_secs_f64();
            (b.tokens + dt * per_sec).min(cap)
        };
        if all.len() >= MAX_BUCKETS {
            all.retain(|_, b| refill(b) < cap);
            // A flood of distinct programs at one instant: start over rather than grow. The
            // limit is against runaway loops; a program that makes thousands of others could
            // as well run them.
            if all.len() >= MAX_BUCKETS {
                all.clear();
            }
        }
        let b = all
            .entry((client.clone(), key.to_owned()))
            .or_insert(Bucket {
                tokens: cap,
                at: now,
                refusing: false,
            });
        b.tokens = refill(b);
        b.at = now;
        if b.tokens >= cost {
            // A run of refusals ends once the whole burst has come back: a loop that keeps
            // going at the standing rate is one run, reported once.
            if b.tokens >= cap {
                b.refusing = false;
            }
            b.tokens -= cost;
            return Verdict::Pass;
        }
        let missing = cost - b.tokens;
        let retry_after = if per_sec > 0.0 {
            Duration::from_secs_f64((missing / per_sec).min(3600.0))
        } else {
            Duration::from_secs(3600)
        };
        let first = !b.refusing;
        b.refusing = true;
        Verdict::Refused { retry_after, first }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(exe: &str) -> ClientId {
        ClientId {
            exe: exe.into(),
            script: None,
            unvouched: None,
        }
    }

    #[test]
    fn a_loop_is_cut_at_the_burst_and_others_are_served() {
        let l = RateLimiter::default();
        let rate = Rate {
            per_minute: 60,
            burst: 20,
        };
        let t0 = Instant::now();
        let (a, b) = (client("/usr/bin/loop"), client("/usr/bin/aws"));
        let passed = (0..10_000)
            .filter(|_| l.take(&a, "prod", CACHED_COST, rate, t0) == Verdict::Pass)
            .count();
        assert_eq!(passed, 20, "cut at the burst");
        // The first refusal only is reported.
        let firsts = (0..100)
            .filter(|_| {
                matches!(
                    l.take(&a, "prod", CACHED_COST, rate, t0),
                    Verdict::Refused { first: true, .. }
                )
            })
            .count();
        assert_eq!(firsts, 0, "reported once per burst");
        // Another program, and the same program for another key, are served.
        assert_eq!(l.take(&b, "prod", CACHED_COST, rate, t0), Verdict::Pass);
        assert_eq!(l.take(&a, "dev", CACHED_COST, rate, t0), Verdict::Pass);
        // It refills at the standing rate (1/s here), and says when.
        match l.take(&a, "prod", UPSTREAM_COST, rate, t0) {
            Verdict::Refused { retry_after, .. } => {
                assert_eq!(retry_after.as_secs(), 10)
            }
            Verdict::Pass => panic!("an empty bucket let a call through"),
        }
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            l.take(&a, "prod", UPSTREAM_COST, rate, later),
            Verdict::Pass
        );
        // A loop going on at the standing rate is the same run: not reported again.
        assert!(matches!(
            l.take(&a, "prod", CACHED_COST, rate, later),
            Verdict::Refused { first: false, .. }
        ));
        // Once the whole burst is back, a new run is reported again.
        let much_later = later + Duration::from_secs(20);
        let verdicts: Vec<Verdict> = (0..100)
            .map(|_| l.take(&a, "prod", CACHED_COST, rate, much_later))
            .collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Pass).count(), 20);
        let firsts = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Refused { first: true, .. }))
            .count();
        assert_eq!(firsts, 1, "the new run reported once");
    }

    #[test]
    fn the_buckets_stay_bounded() {
        let l = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_BUCKETS * 3) {
            l.take(
                &client(&format!("/p/{i}")),
                "k",
                CACHED_COST,
                Rate::default(),
                t0,
            );
        }
        let later = t0 + Duration::from_secs(60);
        l.take(&client("/p/last"), "k", CACHED_COST, Rate::default(), later);
        let n = l.buckets.lock().map(|b| b.len()).unwrap_or(usize::MAX);
        assert!(n <= MAX_BUCKETS, "{n} buckets");
    }
}
