//! Bad input: hostile socket clients, an unreachable keychain, a corrupt catalog, interrupted
//! writes. Each gets a clear one-line error and leaves nothing half-written; the agent keeps serving.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::support::Home;

fn send(home: &Home, payload: &[u8]) -> String {
    let mut s = UnixStream::connect(home.socket()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(payload).expect("write");
    let mut line = String::new();
    let _ = BufReader::new(s).read_line(&mut line);
    line
}

#[test]
fn malformed_oversized_and_slow_requests_are_refused_and_the_agent_keeps_serving() {
    let home = Home::new();
    home.kw(&["agent", "start"]).ok();

    let r = send(&home, b"this is not json\n");
    assert!(
        r.contains("\"code\":\"bad_request\"") && r.contains("malformed request"),
        "{r}"
    );
    let r = send(&home, b"{\"v\":1,\"req\":{\"op\":\"list\",\"evil\":1}}\n");
    assert!(r.contains("unknown field"), "{r}");
    let r = send(&home, b"{\"v\":99,\"req\":{\"op\":\"ping\"}}\n");
    assert!(r.contains("\"code\":\"version\""), "{r}");

    let mut big = vec![b'x'; 200 * 1024];
    big.push(b'\n');
    let mut s = UnixStream::connect(home.socket()).expect("connect");
    let _ = s.write_all(&big);
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.contains("request too large"), "{resp}");

    // A slow client is cut off, and meanwhile others are served.
    let started = Instant::now();
    let mut slow = UnixStream::connect(home.socket()).expect("connect");
    slow.write_all(b"{\"v\":1,").expect("partial");
    home.kw(&["status"]).ok();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not blocked by the slow client"
    );
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut resp = String::new();
    let _ = BufReader::new(slow).read_line(&mut resp);
    assert!(resp.contains("timed out"), "{resp}");

    let s = home.status();
    assert_eq!(s["vault"], false, "agent alive and answering");
}

#[test]
fn unreachable_keychain_names_cause_and_fix_and_file_keystore_is_explicit() {
    let home = Home::with_env(&[(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/keyward-bus",
    )]);
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        home.init_with(&["init", "--kdf-memory-mib", "8", "--kdf-iterations", "1"])
    }));
    let msg = match out {
        Ok(_) => panic!("init must fail without a keychain"),
        Err(e) => e.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(msg.contains("no OS keychain is reachable"), "{msg}");
    assert!(msg.contains("--keystore file"), "names the fix: {msg}");
    assert_eq!(home.status()["vault"], false, "nothing half-written");

    home.kw(&["agent", "stop"]).ok();
    home.init_with(&[
        "init",
        "--keystore",
        "file",
        "--kdf-memory-mib",
        "8",
        "--kdf-iterations",
        "1",
    ]);
    let s = home.status();
    assert_eq!(s["keystore"], "file");
    home.unlock();
    home.kw_input(&["add", "static", "tok"], &["file-keystore-token-value"])
        .ok();
    let text = home.kw(&["status"]).ok().stdout;
    assert!(text.contains("explicit fallback"), "status says so: {text}");
}

#[test]
fn corrupt_catalog_is_one_line_error() {
    let home = Home::new();
    std::fs::create_dir_all(home.path("data/keyward")).expect("mkdir");
    std::fs::write(home.catalog(), vec![0x42u8; 16384]).expect("write");
    let line = home.kw(&["status"]).one_line_error();
    assert!(line.contains("not a readable SQLite database"), "{line}");
    assert_eq!(
        std::fs::read(home.catalog()).expect("read"),
        vec![0x42u8; 16384],
        "left as it was"
    );
}

#[test]
fn interrupted_writes_are_reconciled_at_start_up() {
    let home = Home::new();
    home.init();
    home.kw_input(&["add", "static", "kept"], &["value-one-1234"])
        .ok();
    home.kw_input(&["add", "static", "half-removed"], &["value-two-1234"])
        .ok();
    home.kw(&["agent", "stop"]).ok();
    // Simulate crashes between the two stores: a row whose keychain write never happened, and a
    // removal that stopped after marking the row.
    let db = rusqlite::Connection::open(home.catalog()).expect("open");
    let vault_id: String = db
        .query_row("SELECT vault_id FROM vault", [], |r| r.get(0))
        .expect("vault id");
    let id_of = |name: &str| -> String {
        db.query_row("SELECT id FROM entries WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .expect("entry id")
    };
    let kept_item = format!("{vault_id}/entry/{}", id_of("kept"));
    let removed_item = format!("{vault_id}/entry/{}", id_of("half-removed"));
    db.execute(
        "INSERT INTO entries (id, name, kind, state, tags, created, config) VALUES ('deadbeef', 'never-stored', 'static', 'pending', '[]', '2026-01-01T00:00:00Z', '{}')",
        [],
    )
    .expect("insert");
    db.execute(
        "UPDATE entries SET state = 'deleting' WHERE name = 'half-removed'",
        [],
    )
    .expect("mark");
    drop(db);
    let status = home.kw(&["status"]).ok();
    assert!(
        status
            .stdout
            .contains("never-stored: an interrupted add was rolled back"),
        "{}",
        status.stdout
    );
    assert!(
        status
            .stdout
            .contains("half-removed: an interrupted removal was completed"),
        "{}",
        status.stdout
    );
    let list = home.kw(&["list", "--json"]).ok();
    assert!(list.stdout.contains("\"kept\""));
    assert!(!list.stdout.contains("never-stored") && !list.stdout.contains("half-removed"));
    // The keychain item of the removed entry is gone too (checked independently with secret-tool).
    let lookup = |user: &str| {
        std::process::Command::new("secret-tool")
            .args(["lookup", "service", "keyward", "username", user])
            .output()
            .expect("secret-tool")
            .status
            .success()
    };
    assert!(lookup(&kept_item), "control: a live item is found");
    assert!(
        !lookup(&removed_item),
        "removed entry's keychain item deleted"
    );
    let tail = home.kw(&["audit", "tail", "-n", "10"]).ok();
    assert!(tail.stdout.contains("reconcile"), "{}", tail.stdout);
}

#[test]
fn bad_cli_input_is_one_line_error() {
    let home = Home::new();
    home.init();
    for (args, needle) in [
        (
            vec![
                "add",
                "aws",
                "bad name",
                "--access-key-id",
                "AKIAKEYWARDTEST001",
            ],
            "invalid name",
        ),
        (vec!["show", "missing"], "no key named"),
        (vec!["remove", "missing", "--yes"], "no key named"),
        (vec!["remove", "missing"], "needs confirmation"),
        (vec!["setup", "aws", "missing"], "no key named"),
    ] {
        let line = home.kw(&args).one_line_error();
        assert!(line.contains(needle), "{args:?}: {line}");
    }
    let line = home
        .kw_input(
            &["add", "aws", "x", "--access-key-id", "AKIAKEYWARDTEST001"],
            &["short"],
        )
        .one_line_error();
    assert!(line.contains("invalid AWS secret access key"), "{line}");
    let line = home
        .kw_input(
            &[
                "add",
                "aws",
                "x",
                "--access-key-id",
                "AKIAKEYWARDTEST001",
                "--duration",
                "10m",
            ],
            &["wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12"],
        )
        .one_line_error();
    assert!(
        line.contains("session duration 600s is out of range"),
        "{line}"
    );
    assert!(
        home.kw(&["list", "--json"]).ok().stdout.trim() == "[]",
        "nothing half-written"
    );
}
