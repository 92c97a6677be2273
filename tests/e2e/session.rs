//! Locking on suspend and session lock: systemd-logind's signals, sent on a private bus that
//! stands in for the system bus (there is no logind here), reach the agent through real D-Bus.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Home;

/// A private dbus-daemon, stopped on drop.
struct Bus {
    address: String,
    pid: i32,
}

impl Bus {
    fn start() -> Self {
        let out = Command::new("dbus-daemon")
            .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
            .stderr(Stdio::inherit())
            .output()
            .expect("dbus-daemon");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        let address = lines.next().expect("address").trim().to_owned();
        let pid = lines.next().expect("pid").trim().parse().expect("pid");
        Bus { address, pid }
    }

    fn emit(&self, path: &str, signal: &str, args: &[&str]) {
        // `--session` with this bus as the session bus: with `--address` gdbus would skip the
        // bus handshake and the daemon would drop the signal.
        let status = Command::new("gdbus")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args([
                "emit",
                "--session",
                "--object-path",
                path,
                "--signal",
                signal,
            ])
            .args(args)
            .status()
            .expect("gdbus");
        assert!(status.success(), "gdbus emit {signal}");
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

fn locked_within(home: &Home, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if home.status()["locked"] == true {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn suspend_and_session_lock_lock_the_vault() {
    let bus = Bus::start();
    let home = Home::with_env(&[("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)]);
    home.init();
    home.unlock();
    // Give the agent's watcher a moment to subscribe.
    std::thread::sleep(Duration::from_millis(300));

    // Waking up is not a reason to lock.
    bus.emit(
        "/org/freedesktop/login1",
        "org.freedesktop.login1.Manager.PrepareForSleep",
        &["false"],
    );
    assert!(
        !locked_within(&home, Duration::from_millis(700)),
        "resume keeps it unlocked"
    );

    bus.emit(
        "/org/freedesktop/login1",
        "org.freedesktop.login1.Manager.PrepareForSleep",
        &["true"],
    );
    assert!(
        locked_within(&home, Duration::from_secs(3)),
        "suspend locks: {}",
        std::fs::read_to_string(home.path("state/keyward/agent.log")).unwrap_or_default()
    );

    // Recovery codes: a second TOTP unlock would wait for the next 30-second step.
    home.unlock_with_recovery();
    bus.emit(
        "/org/freedesktop/login1/session/c1",
        "org.freedesktop.login1.Session.Lock",
        &[],
    );
    assert!(
        locked_within(&home, Duration::from_secs(3)),
        "session lock locks"
    );

    // Recovery codes: a second TOTP unlock would wait for the next 30-second step.
    home.unlock_with_recovery();
    bus.emit(
        "/org/freedesktop/login1/session/c1",
        "org.freedesktop.DBus.Properties.PropertiesChanged",
        &[
            "'org.freedesktop.login1.Session'",
            "{'LockedHint': <true>}",
            "@as []",
        ],
    );
    assert!(
        locked_within(&home, Duration::from_secs(3)),
        "a screen locker's LockedHint locks"
    );

    let tail = home.kw(&["audit", "tail", "-n", "50", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&tail.stdout).expect("json");
    let reasons: Vec<String> = rows
        .iter()
        .filter(|r| r["action"] == "lock")
        .map(|r| r["detail"].to_string())
        .collect();
    assert!(reasons.iter().any(|d| d.contains("suspend")), "{reasons:?}");
    assert_eq!(
        reasons
            .iter()
            .filter(|d| d.contains("session locked"))
            .count(),
        2,
        "{reasons:?}"
    );
}
