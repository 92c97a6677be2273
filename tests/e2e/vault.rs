//! Vault: two-factor unlock, brute-force delays, TOTP replay, recovery codes, the keychain holding
//! only ciphertext, the canary, auto-lock and process hardening.

use std::process::Command;
use std::time::Duration;

use crate::support::{Home, PASSPHRASE};

#[test]
fn init_unlock_lock_cycle_and_status() {
    let home = Home::new();
    let shown = home.init();
    assert!(shown.contains("will not be shown again"));
    let s = home.status();
    assert_eq!(s["vault"], true);
    assert_eq!(s["locked"], true);
    assert_eq!(s["keystore"], "keychain");
    home.unlock();
    assert_eq!(home.status()["locked"], false);
    home.kw(&["lock"]).ok();
    assert_eq!(home.status()["locked"], true);
    let line = home.kw(&["init"]).one_line_error();
    assert!(line.contains("already exists"), "{line}");
}

#[test]
fn weak_passphrase_is_rejected_with_a_reason() {
    let home = Home::new();
    let run = home.kw_input(&["init"], &["password1234", "password1234"]);
    let line = run.one_line_error();
    assert!(line.contains("passphrase too weak"), "{line}");
    assert_eq!(home.status()["vault"], false, "nothing half-written");
}

#[test]
fn wrong_factors_fail_are_counted_persistently_and_delayed() {
    let home = Home::new();
    home.init();
    let code = home.fresh_code();
    let line = home
        .kw_input(&["unlock"], &["wrong-passphrase-entirely", &code])
        .one_line_error();
    assert!(
        line.contains("passphrase or the second factor is wrong"),
        "{line}"
    );
    assert!(line.contains("1 failed attempt"), "{line}");
    let line = home
        .kw_input(&["unlock"], &[PASSPHRASE, "000000"])
        .one_line_error();
    assert!(line.contains("2 failed attempt"), "{line}");
    let line = home
        .kw_input(&["unlock"], &[PASSPHRASE, "111111"])
        .one_line_error();
    assert!(line.contains("next attempt allowed in 1 s"), "{line}");
    // Restarting the agent does not reset the count.
    home.kw(&["agent", "stop"]).ok();
    std::thread::sleep(Duration::from_millis(1100));
    let line = home
        .kw_input(&["unlock"], &[PASSPHRASE, "222222"])
        .one_line_error();
    assert!(line.contains("4 failed attempt"), "{line}");
    assert!(line.contains("next attempt allowed in 2 s"), "{line}");
    let line = home
        .kw_input(&["unlock"], &[PASSPHRASE, "333333"])
        .one_line_error();
    assert!(
        line.contains("try again in"),
        "throttled before any work: {line}"
    );
    std::thread::sleep(Duration::from_millis(2100));
    home.unlock();
    let tail = home.kw(&["audit", "tail", "-n", "50", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&tail.stdout).expect("json");
    let unlocks: Vec<_> = rows
        .iter()
        .filter(|r| r["action"] == "unlock")
        .map(|r| r["outcome"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        unlocks,
        ["failed", "failed", "failed", "failed", "throttled", "ok"],
        "every attempt audited"
    );
}

#[test]
fn a_totp_code_is_never_accepted_twice() {
    let home = Home::new();
    home.init();
    home.unlock();
    home.kw(&["lock"]).ok();
    let used = home.last_code();
    let line = home
        .kw_input(&["unlock"], &[PASSPHRASE, &used])
        .one_line_error();
    assert!(line.contains("already used"), "{line}");
}

#[test]
fn recovery_code_unlocks_once_and_allows_enrolling_a_new_factor() {
    let home = Home::new();
    home.init();
    let code = home.recovery_codes.lock().expect("lock")[3].clone();
    let out = home
        .kw_input(&["unlock", "--recovery"], &[PASSPHRASE, &code])
        .ok();
    assert!(out.stdout.contains("7 left"), "{}", out.stdout);
    home.kw(&["lock"]).ok();
    let line = home
        .kw_input(&["unlock", "--recovery"], &[PASSPHRASE, &code])
        .one_line_error();
    assert!(line.contains("wrong"), "one-time: {line}");
    // Another code opens it; then a new authenticator is enrolled and works.
    std::thread::sleep(Duration::from_millis(10));
    let code2 = home.recovery_codes.lock().expect("lock")[5].clone();
    home.kw_input(&["unlock", "--recovery"], &[PASSPHRASE, &code2])
        .ok();
    let mut child = home.cmd(&[
        "--input-fd",
        "0",
        "factor",
        "add-totp",
        "--label",
        "new phone",
    ]);
    child
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = child.spawn().expect("spawn");
    use std::io::{BufRead, BufReader, Write};
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    let secret = loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).expect("read") > 0,
            "secret shown"
        );
        if let Some(s) = line.trim().strip_prefix("Or enter this secret by hand: ") {
            break s.to_owned();
        }
    };
    let new_app = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::from(
            data_encoding::BASE32_NOPAD
                .decode(secret.as_bytes())
                .expect("b32"),
        ))
        .build()
        .expect("totp");
    let code = new_app.generate(crate::support::now()).to_string();
    {
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{PASSPHRASE}\n{code}").expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let factors = home.kw(&["factor", "list", "--json"]).ok();
    let list: Vec<serde_json::Value> = serde_json::from_str(&factors.stdout).expect("json");
    assert_eq!(list.iter().filter(|f| f["kind"] == "totp").count(), 2);
    assert_eq!(list.iter().filter(|f| f["kind"] == "recovery").count(), 6);
    // The new app's next code unlocks.
    home.kw(&["lock"]).ok();
    let next = new_app.generate(crate::support::now() + 30).to_string();
    home.kw_input(&["unlock"], &[PASSPHRASE, &next]).ok();
}

#[test]
fn keychain_holds_only_age_ciphertext_and_no_file_holds_the_canary() {
    let home = Home::new();
    home.init();
    home.unlock();
    let canary = format!("CANARY{}x", uuid_like());
    home.kw_input(
        &["add", "static", "canary-token", "--purpose", "canary"],
        &[&canary],
    )
    .ok();
    let aws_canary: String = format!("Cn{}", canary)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(40)
        .collect();
    let aws_canary = format!("{aws_canary:0<40}");
    home.kw_input(
        &[
            "add",
            "aws",
            "canary-aws",
            "--access-key-id",
            "AKIAKEYWARDCANARY1",
        ],
        &[&aws_canary],
    )
    .ok();
    // Exercise the read paths too.
    home.kw(&["list"]).ok();
    home.kw(&["show", "canary-token"]).ok();
    home.kw(&["audit", "tail"]).ok();
    home.kw(&["lock"]).ok();

    // Independent check of the Secret Service contents with secret-tool.
    let out = Command::new("secret-tool")
        .args(["search", "--all", "--unlock", "service", "keyward"])
        .output()
        .expect("secret-tool");
    let listing =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !listing.contains(&canary) && !listing.contains(&aws_canary),
        "canary in the keychain"
    );
    let vault_items: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with("secret = age-encryption.org/v1"))
        .collect();
    assert!(
        vault_items.len() >= 2,
        "entries stored as age ciphertext: {listing}"
    );

    let mut scanned = 0;
    for f in home.all_files() {
        let bytes = std::fs::read(&f).expect("read");
        scanned += 1;
        for needle in [&canary, &aws_canary] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "canary found in {}",
                f.display()
            );
        }
    }
    assert!(scanned >= 3, "catalog, WAL and log scanned: {scanned}");
}

fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        crate::support::now() ^ 0x5eed_cafe
    )
}

#[test]
fn agent_auto_locks_when_idle() {
    let home = Home::with_env(&[("KEYWARD_AUTO_LOCK", "2s")]);
    home.init();
    home.unlock();
    assert_eq!(home.status()["locked"], false);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(home.status()["locked"], true);
    let tail = home.kw(&["audit", "tail", "-n", "20"]).ok();
    assert!(tail.stdout.contains("lock"), "{}", tail.stdout);
}

#[test]
fn agent_disables_core_dumps_and_ptrace() {
    let home = Home::new();
    home.init();
    let pid = home.agent_pid();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core line");
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(status.contains("TracerPid:\t0"));
    // /proc shows no dumpable flag; the agent reports its own PR_GET_DUMPABLE.
    assert_eq!(
        home.status()["dumpable"],
        false,
        "agent reports PR_GET_DUMPABLE = 0"
    );
}

#[test]
fn only_one_agent_per_user() {
    let home = Home::new();
    home.kw(&["agent", "start"]).ok();
    let run = home.kw(&["agent"]);
    let line = run.stderr.lines().last().unwrap_or("").to_owned();
    assert_ne!(run.status, 0);
    assert!(line.contains("already running"), "{}", run.stderr);
}

#[test]
fn audit_verify_detects_tampering() {
    let home = Home::new();
    home.init();
    home.unlock();
    home.kw(&["audit", "verify"]).ok();
    home.kw(&["agent", "stop"]).ok();
    let db = rusqlite::Connection::open(home.catalog()).expect("open");
    db.execute_batch("DROP TRIGGER audit_no_update; UPDATE audit SET outcome = 'failed' WHERE action = 'unlock';")
        .expect("tamper");
    drop(db);
    let line = home.kw(&["audit", "verify"]).one_line_error();
    assert!(line.contains("verification failed at row"), "{line}");
}

#[test]
fn list_shows_each_keys_rotation_state() {
    let home = Home::new();
    home.init();
    home.unlock();
    for (name, extra) in [
        ("calm", vec![]),
        ("rotate-soon", vec!["--rotate-every", "7d"]),
        ("gone", vec!["--expires", "2020-01-01T00:00:00Z"]),
    ] {
        let mut args = vec!["add", "static", name];
        args.extend(extra);
        home.kw_input(&args, &["tok-value-123"]).ok();
    }
    let out = home.kw(&["list", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("json");
    let state = |n: &str| {
        rows.iter()
            .find(|r| r["name"] == n)
            .map(|r| r["state"].clone())
            .expect(n)
    };
    assert_eq!(state("calm"), "ok");
    assert_eq!(state("rotate-soon"), "due_soon");
    assert_eq!(state("gone"), "expired");
    let table = home.kw(&["list"]).ok().stdout;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("gone") && l.contains("EXPIRED")),
        "{table}"
    );
}

#[test]
fn the_cli_that_reads_a_passphrase_writes_no_core_file() {
    use std::io::Write;
    let home = Home::new();
    home.init();
    // `keyward unlock` waiting for its passphrase on a pipe this test holds.
    let mut cmd = home.cmd(&["--input-fd", "0", "unlock"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    // `setsid` execs keyward in place (or forks it when it must): find the keyward process.
    let setsid = child.id();
    let is_keyward = |pid: &str| {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|e| e.file_name() == Some("keyward".as_ref()))
    };
    let mut limits = String::new();
    for _ in 0..100 {
        let kids = std::fs::read_to_string(format!("/proc/{setsid}/task/{setsid}/children"))
            .unwrap_or_default();
        let me = setsid.to_string();
        let found = std::iter::once(me.as_str())
            .chain(kids.split_whitespace())
            .find(|p| is_keyward(p))
            .map(str::to_owned);
        // Read until keyward has run far enough to set its limit (it does so first thing), or
        // give up after 2 s and let the assertion below report what it saw.
        if let Some(pid) = found {
            limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
            let core_off = limits.lines().any(|l| {
                l.starts_with("Max core file size") && l.split_whitespace().nth(5) == Some("0")
            });
            if core_off {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = writeln!(child.stdin.take().expect("stdin"), "x\nx");
    let _ = child.wait();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_else(|| panic!("no limits read: {limits:?}"));
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
}
