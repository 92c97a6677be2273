//! The desktop app's window, as the agent sees it. The window is a separate process
//! (`keyward-desktop`) that lives only while it is open, so a Keyward closed to the tray costs
//! only the agent's memory.
//!
//! Two levels of trust. Requests only the window makes (its polls, "I closed") are accepted from
//! the app's executable, named when the agent starts. The window's powers over secrets (Reveal,
//! Copy, answering approvals) need more than an executable path, which any program of the user
//! can run with a preloaded library: a **window token**, a random value the agent hands only to
//! a window the vault was unlocked through (in the `unlock` reply) or to a window the agent
//! itself started (on its standard input). Tokens end when the vault locks or the window closes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keyward_core::audit::Actor;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::protocol::WireSecret;

/// A window that has not polled for this long is taken to be closed (it polls every 400 ms).
const WINDOW_GONE_AFTER: Duration = Duration::from_secs(3);

/// How long a factor given in a window lets it reveal or copy stored secrets: a window left
/// open and unlocked (or driven by another program) must ask for the factor again.
pub const FRESH_FACTOR: Duration = Duration::from_secs(60);

/// Set by the agent on a window it starts: `stdin` (read the window token, one line, from
/// standard input) or `none` (the vault was locked: no token). A window without it was started
/// by hand and asks the running agent to open the window instead (one window at a time).
pub const TOKEN_ON_STDIN: &str = "KEYWARD_WINDOW_TOKEN";

/// The app this agent serves, whether its window is open, and the windows' tokens.
#[derive(Default)]
pub struct Desktop {
    app: Option<PathBuf>,
    last_poll: Mutex<Option<Instant>>,
    focus: AtomicBool,
    /// Each live token (by its SHA-256; the tokens themselves are not kept) and until when a
    /// factor given in its window counts as fresh.
    tokens: Mutex<Vec<WindowToken>>,
    open: tokio::sync::Notify,
    /// A key the window should show at its next poll.
    show_key: Mutex<Option<crate::protocol::ShowKey>>,
}

impl Desktop {
    /// The agent of the desktop app at `app` (canonical path); `None`: a headless agent.
    pub fn new(app: Option<PathBuf>) -> Self {
        Desktop {
            app,
            ..Default::default()
        }
    }

    /// The app's executable, when this agent runs for the desktop app.
    pub fn app(&self) -> Option<&Path> {
        self.app.as_deref()
    }

    /// Whether the request comes straight from the app's executable (not through a script or
    /// another program: the peer itself must be it).
    pub fn is_app(&self, actor: &Actor) -> bool {
        let (Some(app), Some(peer)) = (
            self.app.as_deref(),
            actor.chain.first().and_then(|p| p.exe.as_deref()),
        ) else {
            return false;
        };
        Path::new(peer) == app
    }

    /// A new window token (32 random bytes, hex), valid until [`Desktop::clear_tokens`].
    /// `fresh`: the passphrase and a factor were just given in that window (it unlocked), so
    /// it may reveal for [`FRESH_FACTOR`] without asking again.
    pub fn issue_token(&self, fresh: bool) -> WireSecret {
        let mut raw = zeroize::Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(raw.as_mut());
        let token = WireSecret::new(data_encoding::HEXLOWER.encode(raw.as_ref()));
        if let Ok(mut t) = self.tokens.lock() {
            t.push(WindowToken {
                digest: digest(&token),
                fresh_until: fresh.then(|| Instant::now() + FRESH_FACTOR),
            });
        }
        token
    }

    /// Runs `f` on the live token equal to `token` (compared in constant time), if any.
    fn with_token<T>(
        &self,
        token: Option<&WireSecret>,
        f: impl FnOnce(&mut WindowToken) -> T,
    ) -> Option<T> {
        let want = digest(token?);
        let mut tokens = self.tokens.lock().ok()?;
        let mut found = None;
        for (i, t) in tokens.iter().enumerate() {
            if bool::from(t.digest.ct_eq(&want)) {
                found = Some(i);
            }
        }
        found.map(|i| f(&mut tokens[i]))
    }

    /// Whether `token` is a live window token.
    pub fn token_valid(&self, token: Option<&WireSecret>) -> bool {
        self.with_token(token, |_| ()).is_some()
    }

    /// Records that a factor was just checked for the window holding `token`; false if the
    /// token is not live.
    pub fn mark_fresh(&self, token: &WireSecret) -> bool {
        self.with_token(Some(token), |t| {
            t.fresh_until = Some(Instant::now() + FRESH_FACTOR)
        })
        .is_some()
    }

    /// Whether the window holding `token` gave a factor within the last [`FRESH_FACTOR`].
    pub fn is_fresh(&self, token: &WireSecret) -> bool {
        self.fresh_at(token, Instant::now())
    }

    fn fresh_at(&self, token: &WireSecret, at: Instant) -> bool {
        self.with_token(Some(token), |t| t.fresh_until.is_some_and(|u| at < u))
            .unwrap_or(false)
    }

    /// Ends one token (its window closed).
    pub fn revoke_token(&self, token: &WireSecret) {
        let gone = digest(token);
        if let Ok(mut t) = self.tokens.lock() {
            t.retain(|d| !bool::from(d.digest.ct_eq(&gone)));
        }
    }

    /// Ends every token (the vault locked).
    pub fn clear_tokens(&self) {
        if let Ok(mut t) = self.tokens.lock() {
            t.clear();
        }
    }

    /// Records a poll from the window; returns (and clears) a pending request to come to front.
    pub fn polled(&self) -> bool {
        if let Ok(mut t) = self.last_poll.lock() {
            *t = Some(Instant::now());
        }
        self.focus.swap(false, Ordering::Relaxed)
    }

    /// Whether a window is open (it polled recently).
    pub fn window_open(&self) -> bool {
        self.last_poll
            .lock()
            .ok()
            .and_then(|t| *t)
            .is_some_and(|t| t.elapsed() < WINDOW_GONE_AFTER)
    }

    /// Asks the open window to come to the front at its next poll.
    pub fn request_focus(&self) {
        self.focus.store(true, Ordering::Relaxed);
    }

    /// Marks the window closed (it said so when it closed).
    pub fn closed(&self) {
        if let Ok(mut t) = self.last_poll.lock() {
            *t = None;
        }
    }

    /// Asks the window to show `key` at its next poll (the window that opens next, if none is
    /// open); a later request replaces an earlier one.
    pub fn request_key(&self, key: crate::protocol::ShowKey) {
        if let Ok(mut k) = self.show_key.lock() {
            *k = Some(key);
        }
    }

    /// Takes the key the window should show, if one was asked for.
    pub fn take_key(&self) -> Option<crate::protocol::ShowKey> {
        self.show_key.lock().ok().and_then(|mut k| k.take())
    }

    /// Asks whoever opens windows (the tray) to open one, or bring it to the front.
    pub fn request_open(&self) {
        self.open.notify_one();
    }

    /// Waits for the next [`Desktop::request_open`].
    pub async fn open_requested(&self) {
        self.open.notified().await;
    }
}

/// A live window token.
struct WindowToken {
    digest: [u8; 32],
    fresh_until: Option<Instant>,
}

fn digest(token: &WireSecret) -> [u8; 32] {
    Sha256::digest(token.expose().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_revoked_and_cleared() {
        let d = Desktop::new(None);
        assert!(!d.token_valid(None));
        let a = d.issue_token(false);
        let b = d.issue_token(false);
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a, b, "every token is fresh");
        assert!(d.token_valid(Some(&a)) && d.token_valid(Some(&b)));
        assert!(!d.token_valid(Some(&WireSecret::new("0".repeat(64)))));
        d.revoke_token(&a);
        assert!(!d.token_valid(Some(&a)) && d.token_valid(Some(&b)));
        d.clear_tokens();
        assert!(!d.token_valid(Some(&b)));
    }

    #[test]
    fn a_factor_counts_as_fresh_for_a_minute_in_its_own_window_only() {
        let d = Desktop::new(None);
        let started = d.issue_token(false);
        let unlocked = d.issue_token(true);
        assert!(
            !d.is_fresh(&started),
            "a window the agent opened gave no factor"
        );
        assert!(
            d.is_fresh(&unlocked),
            "the window the vault was just unlocked in"
        );
        let later = Instant::now() + FRESH_FACTOR + Duration::from_secs(1);
        assert!(
            !d.fresh_at(&unlocked, later),
            "a minute later it must ask again"
        );

        assert!(d.mark_fresh(&started));
        assert!(d.is_fresh(&started) && !d.fresh_at(&started, later));
        let other = WireSecret::new("0".repeat(64));
        assert!(
            !d.mark_fresh(&other) && !d.is_fresh(&other),
            "no such window"
        );
        d.revoke_token(&started);
        assert!(
            !d.is_fresh(&started),
            "a closed window's factor ends with it"
        );
        d.clear_tokens();
        assert!(!d.is_fresh(&unlocked), "locking ends it");
    }
}
