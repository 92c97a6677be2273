//! Notices changes to the administrator's policy file and has the agent read it again.
//!
//! The watch is on the directory that holds the file (so an editor's or a config-management
//! tool's write-to-temp-and-rename is seen as well as an edit in place), or, while that
//! directory does not exist, on the nearest one above it that does. Each burst of events is
//! let settle briefly, so a file written in several pieces is read once, whole. A slow poll
//! backs the watch up (a file reached through a symlink, a missed event).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tracing::warn;

use crate::Agent;

/// How long a burst of events must be quiet before the file is read.
const SETTLE: Duration = Duration::from_millis(150);

/// How often the file is read even when no event came.
const POLL: Duration = Duration::from_secs(30);

/// The nearest existing directory that holds, or would hold, `path`.
fn watch_point(path: &Path) -> Option<PathBuf> {
    path.parent()?
        .ancestors()
        .find(|d| d.is_dir())
        .map(Path::to_owned)
}

/// Starts the watch on `agent`'s policy file; it runs as long as the agent does.
pub fn spawn(agent: Arc<Agent>, path: PathBuf) {
    let started = std::thread::Builder::new()
        .name("keyward-policy".into())
        .spawn(move || watch(&agent, &path));
    if let Err(e) = started {
        warn!("the policy file is not watched (changes are read when the agent restarts): {e}");
    }
}

fn watch(agent: &Agent, path: &Path) {
    let (tx, rx) = channel();
    let mut watcher = match notify::recommended_watcher(move |_| {
        let _ = tx.send(());
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            warn!(
                "cannot watch the policy file, reading it every {} s instead: {e}",
                POLL.as_secs()
            );
            None
        }
    };
    let mut watching: Option<PathBuf> = None;
    loop {
        // The directory may have come (or gone) since: watch where the file would appear.
        let point = watch_point(path);
        if let Some(w) = watcher.as_mut().filter(|_| point != watching) {
            if let Some(old) = watching.take() {
                let _ = w.unwatch(&old);
            }
            if let Some(p) = &point {
                match w.watch(p, RecursiveMode::NonRecursive) {
                    Ok(()) => watching = point.clone(),
                    Err(e) => warn!("cannot watch {} for policy changes: {e}", p.display()),
                }
            }
        }
        match rx.recv_timeout(POLL) {
            Ok(()) => while rx.recv_timeout(SETTLE).is_ok() {},
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(POLL),
        }
        agent.reload_policy();
    }
}
