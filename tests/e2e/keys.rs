//! Key metadata edits and vault settings through the CLI: edit, history, auto-lock, new recovery
//! codes.

use std::time::Duration;

use crate::support::{Home, PASSPHRASE};

fn show(home: &Home, name: &str) -> serde_json::Value {
    let out = home.kw(&["show", name, "--json"]).ok();
    serde_json::from_str(&out.stdout).expect("show json")
}

#[test]
fn edit_changes_only_what_is_asked_and_is_in_the_history() {
    let home = Home::new();
    home.init();
    home.kw_input(
        &[
            "add",
            "static",
            "gh",
            "--owner",
            "me",
            "--tag",
            "ci",
            "--purpose",
            "releases",
        ],
        &["ghp_exampletokenvalue"],
    )
    .ok();
    home.kw(&[
        "edit",
        "gh",
        "--owner",
        "platform",
        "--tag",
        "ci",
        "--tag",
        "github",
        "--rotate-every",
        "30d",
    ])
    .ok();
    let v = show(&home, "gh");
    assert_eq!(v["owner"], "platform");
    assert_eq!(v["purpose"], "releases", "untouched fields stay");
    assert_eq!(v["tags"], serde_json::json!(["ci", "github"]));
    assert_eq!(v["rotation_interval_days"], 30);
    home.kw(&[
        "edit",
        "gh",
        "--clear",
        "purpose",
        "--clear",
        "rotate-every",
    ])
    .ok();
    let v = show(&home, "gh");
    assert!(
        v["purpose"].is_null() && v["rotation_interval_days"].is_null(),
        "{v}"
    );
    assert_eq!(v["owner"], "platform");

    let line = home
        .kw(&["edit", "gh", "--expires", "next tuesday"])
        .one_line_error();
    assert!(line.contains("RFC 3339"), "{line}");
    let line = home.kw(&["edit", "gh", "--clear", "name"]).one_line_error();
    assert!(line.contains("cannot clear 'name'"), "{line}");
    assert_eq!(
        show(&home, "gh")["owner"],
        "platform",
        "nothing half-written"
    );

    let out = home.kw(&["history", "gh", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("json");
    let actions: Vec<&str> = rows.iter().filter_map(|r| r["action"].as_str()).collect();
    assert_eq!(actions, ["add", "update", "update"], "{}", out.stdout);
    assert!(rows[1]["detail"].to_string().contains("owner"));
    assert!(!out.stdout.contains("ghp_exampletokenvalue"));
}

#[test]
fn auto_lock_setting_applies_now_and_after_a_restart() {
    let home = Home::new();
    home.init();
    let line = home.kw(&["settings", "auto-lock", "5m"]).one_line_error();
    assert!(line.contains("locked"), "needs the vault open: {line}");
    home.unlock_with_recovery();
    let line = home.kw(&["settings", "auto-lock", "10s"]).one_line_error();
    assert!(line.contains("between 1 minute and 24 hours"), "{line}");
    let out = home.kw(&["settings", "auto-lock", "5m"]).ok();
    assert!(out.stdout.contains("5m"), "{}", out.stdout);
    assert_eq!(home.status()["auto_lock_secs"], 300);
    // Kept in the vault: a new agent (no --auto-lock given) uses it.
    home.kw(&["agent", "stop"]).ok();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(home.status()["auto_lock_secs"], 300);
}

#[test]
fn new_recovery_codes_replace_the_old_ones() {
    let home = Home::new();
    home.init();
    home.unlock_with_recovery();
    let old = home.recovery_codes.lock().expect("lock")[0].clone();
    let line = home
        .kw_input(
            &["factor", "new-recovery-codes"],
            &["wrong-passphrase-entirely"],
        )
        .one_line_error();
    assert!(line.contains("wrong"), "{line}");
    let out = home
        .kw_input(&["factor", "new-recovery-codes"], &[PASSPHRASE])
        .ok();
    let fresh: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| l.trim().to_owned())
        .collect();
    assert_eq!(fresh.len(), 8, "{}", out.stdout);
    home.kw(&["lock"]).ok();
    let line = home
        .kw_input(&["unlock", "--recovery"], &[PASSPHRASE, &old])
        .one_line_error();
    assert!(
        line.contains("wrong"),
        "an old code no longer works: {line}"
    );
    std::thread::sleep(Duration::from_millis(10));
    let out = home
        .kw_input(&["unlock", "--recovery"], &[PASSPHRASE, &fresh[2]])
        .ok();
    assert!(out.stdout.contains("7 left"), "{}", out.stdout);
}

#[test]
fn answers_on_input_fd_0_may_come_through_a_socket_as_node_and_python_pass_them() {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    let home = Home::new();
    home.init();
    home.unlock();
    // A child's stdin made by Node's spawn (or Python's socketpair) is a socket, not a pipe:
    // /dev/fd/0 cannot be opened on one.
    let (mine, theirs) = UnixStream::pair().expect("socketpair");
    let mut cmd = home.cmd(&["--input-fd", "0", "add", "static", "via-socket"]);
    cmd.stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
        theirs,
    )));
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    (&mine).write_all(b"socket-Value-1\n").expect("write");
    drop(mine);
    let out = crate::support::Run::from_output(child.wait_with_output().expect("wait"));
    out.ok();
    assert!(home.kw(&["list"]).ok().stdout.contains("via-socket"));
}
