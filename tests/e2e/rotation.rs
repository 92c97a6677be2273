//! Rotating an AWS key at IAM (moto's IAM and STS, signatures checked), looked at from outside
//! Keyward with an administrator's key: the happy path, IAM's two-key limit, and a kill -9 of
//! the agent between every pair of steps. Also IAM's record of a key's last use.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

const USER: &str = "deployer";

fn add_rotatable(home: &Home, moto: &Moto) {
    home.kw_input(
        &[
            "add",
            "aws",
            "deploy",
            "--access-key-id",
            &moto.access_key_id,
            "--sts-endpoint",
            &moto.endpoint,
            "--iam-endpoint",
            &moto.endpoint,
            // moto checks a session's own requests only for an assumed role's credentials.
            "--role-arn",
            &moto.role_arn,
        ],
        &[&moto.secret_access_key],
    )
    .ok();
}

/// The access key id `deploy` holds, as its hint shows it (`AKIA…WXYZ`).
fn held_hint(home: &Home) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&home.kw(&["show", "deploy", "--json"]).ok().stdout).expect("json");
    v["config"]["aws"]["access_key_hint"]
        .as_str()
        .expect("hint")
        .to_owned()
}

fn hint(id: &str) -> String {
    format!("{}…{}", &id[..4], &id[id.len() - 4..])
}

/// `keyward test deploy` signs with the stored key at moto: only a key IAM has passes.
fn assert_works(home: &Home) {
    let out = home.kw(&["test", "deploy"]).ok();
    assert!(out.stdout.contains("'deploy' works"), "{}", out.stdout);
}

fn history_rotations(home: &Home) -> Vec<(String, serde_json::Value)> {
    let out = home.kw(&["history", "deploy", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("json");
    rows.into_iter()
        .filter(|r| r["action"] == "rotate.aws")
        .map(|r| (r["outcome"].as_str().unwrap_or("").to_owned(), r))
        .collect()
}

#[test]
fn rotate_creates_checks_and_stores_a_new_key_and_retires_the_old_one() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_rotatable(&home, &moto);
    home.grant_tests("deploy");
    let first = moto.access_key_id.clone();

    // Default grace: the old key stays, inactive, for a day.
    let out = home.kw(&["rotate", "deploy"]).ok();
    let keys = moto.access_keys(USER);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let (new, _) = keys
        .iter()
        .find(|(id, _)| *id != first)
        .cloned()
        .expect("a new key");
    assert_eq!(
        keys.iter()
            .filter(|(_, active)| *active)
            .collect::<Vec<_>>(),
        [&(new.clone(), true)],
        "only the new key is active: {keys:?}"
    );
    assert!(
        out.stdout.contains(&format!(
            "Rotated 'deploy' at AWS (IAM user {USER}): {new} is stored and works"
        )) && out.stdout.contains(&format!(
            "The old key {first} is inactive and will be deleted after"
        )),
        "{}",
        out.stdout
    );
    assert_eq!(held_hint(&home), hint(&new));
    assert_works(&home);
    // No secret anywhere in what the user sees.
    assert!(!out.stdout.contains(&moto.secret_access_key));

    // Rotating again inside the grace period: the previous key goes first (IAM allows two).
    let out = home.kw(&["rotate", "deploy", "--grace", "0"]).ok();
    assert!(
        out.stdout.contains(&format!(
            "Before rotating: deleted the previous key {first}, inactive since the last rotation, early to make room."
        )) && out.stdout.contains(&format!("The old key {new} is deleted.")),
        "{}",
        out.stdout
    );
    let keys = moto.access_keys(USER);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].1 && keys[0].0 != new && keys[0].0 != first,
        "{keys:?}"
    );
    assert_eq!(held_hint(&home), hint(&keys[0].0));
    assert_works(&home);

    // History: who, when, which keys, what became of the old ones.
    let rows = history_rotations(&home);
    let outcomes: Vec<&str> = rows.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(outcomes, ["ok", "deleted", "ok", "deleted"], "{rows:?}");
    assert_eq!(rows[0].1["detail"]["old_key_id"], first.as_str());
    assert_eq!(rows[0].1["detail"]["new_key_id"], new.as_str());
    assert!(rows[0].1["summary"]
        .as_str()
        .is_some_and(|s| s.contains(&format!("{new} replaces {first}"))));
    let text = home.kw(&["history", "deploy"]).ok().stdout;
    assert!(
        text.contains(&format!("Old key {first} of deploy deleted at AWS")),
        "{text}"
    );
}

#[test]
fn the_two_key_limit_is_named_with_the_stale_key_and_how_to_remove_it() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_rotatable(&home, &moto);
    home.grant_tests("deploy");
    let stale = moto.create_access_key(USER);
    let line = home.kw(&["rotate", "deploy"]).one_line_error();
    assert!(
        line.contains("IAM allows two access keys per user")
            && line.contains(&format!("{stale} (active"))
            && line.contains(&format!(
                "aws iam delete-access-key --user-name {USER} --access-key-id {stale}"
            )),
        "{line}"
    );
    // Nothing changed at AWS or here.
    let mut keys = moto.access_keys(USER);
    keys.sort();
    let mut before = vec![(moto.access_key_id.clone(), true), (stale, true)];
    before.sort();
    assert_eq!(keys, before);
    assert_eq!(held_hint(&home), hint(&moto.access_key_id));
    assert_works(&home);
    // A static token is not rotated at a provider: it says how to store a new value.
    home.kw_input(&["add", "static", "gh"], &["tok-1"]).ok();
    let out = home.kw_input(&["rotate", "gh"], &["tok-2"]).ok();
    assert!(
        out.stdout.contains("Stored the new token for 'gh'"),
        "{}",
        out.stdout
    );
}

/// The state letter of process `pid` (`T` when stopped), if it is alive.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

/// Every step boundary of a rotation, in order (see the agent's `rotation` module).
const POINTS: [&str; 8] = [
    "begun",
    "created-at-aws",
    "created",
    "stored-entry",
    "stored",
    "deactivated-at-aws",
    "deactivated",
    "deleted-at-aws",
];

#[test]
fn a_kill_9_between_any_two_steps_leaves_one_working_key_that_keyward_holds() {
    for point in POINTS {
        let moto = Moto::start();
        let mark = tempfile::tempdir().expect("tempdir");
        let mark_file = mark.path().join("paused");
        let home = Home::with_env(&[
            ("KEYWARD_TEST_ROTATION_PAUSE", point),
            (
                "KEYWARD_TEST_ROTATION_PAUSE_MARK",
                mark_file.to_str().expect("utf-8"),
            ),
        ]);
        home.init();
        home.unlock();
        add_rotatable(&home, &moto);
        let pid = home.agent_pid();
        let rotate = home
            .cmd(&["rotate", "deploy", "--grace", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rotate");
        let deadline = Instant::now() + Duration::from_secs(60);
        while process_state(pid) != Some('T') {
            assert!(
                Instant::now() < deadline,
                "{point}: the agent never reached the point"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let killed = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        // Its socket closed (the last of its threads gone), so the next command does not reach
        // a dying agent.
        while std::os::unix::net::UnixStream::connect(home.socket()).is_ok() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = rotate.wait_with_output().expect("rotate");
        assert!(
            !out.status.success(),
            "{point}: rotate succeeded though its agent was killed"
        );

        // A new agent, unlocked: it finishes or undoes the journal by itself.
        home.unlock_with_recovery();
        let deadline = Instant::now() + Duration::from_secs(60);
        let key = loop {
            let keys = moto.access_keys(USER);
            if let [(id, true)] = keys.as_slice() {
                if held_hint(&home) == hint(id) {
                    break id.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "{point}: not settled to one active key Keyward holds: {keys:?}, holds {}",
                held_hint(&home)
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let undone = matches!(point, "begun" | "created-at-aws");
        assert_eq!(
            key == moto.access_key_id,
            undone,
            "{point}: holds {key}; history {:?}; agent log: {}",
            history_rotations(&home),
            home.agent_log_tail()
        );
        let rows = history_rotations(&home);
        let last = rows.last().map(|(o, _)| o.as_str());
        assert_eq!(
            last,
            Some(if undone { "undone" } else { "deleted" }),
            "{point}: {rows:?}"
        );
        // The journal is closed and the key works: a new rotation signs its IAM calls with the
        // held key (moto checks the signature) and its new key passes STS.
        home.kw(&["rotate", "deploy", "--grace", "0"]).ok();
        let keys = moto.access_keys(USER);
        assert!(
            matches!(keys.as_slice(), [(id, true)] if *id != key),
            "{point}: {keys:?}"
        );
    }
}

/// `show deploy --json` once the agent has asked AWS about the key (it does after an add).
fn provider_use_after_ask(home: &Home) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: serde_json::Value =
            serde_json::from_str(&home.kw(&["show", "deploy", "--json"]).ok().stdout)
                .expect("json");
        if !v["provider_use"].is_null() {
            return v["provider_use"].clone();
        }
        assert!(Instant::now() < deadline, "AWS never asked: {v:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn aws_is_asked_when_a_key_was_last_used_and_keywards_own_question_is_not_a_use() {
    let dir = crate::policy::policy_dir();
    let path = dir.path().join("policy.toml");
    crate::policy::install(&path, "[defaults]\nmax_idle_days = 30\n");
    let home = Home::with_env(&[("KEYWARD_POLICY", path.to_str().expect("utf-8"))]);
    let moto = Moto::start();
    home.init();
    home.unlock();
    add_rotatable(&home, &moto);

    // Asked at once after the add; IAM's record is then Keyward's own question, which is no use.
    let seen = provider_use_after_ask(&home);
    assert_eq!(
        moto.last_used_service(&moto.access_key_id),
        "iam",
        "IAM records the question itself as the key's last use"
    );
    assert_eq!(seen["used"], serde_json::Value::Null, "{seen}");
    assert_eq!(seen["error"], serde_json::Value::Null, "{seen}");
    let text = home.kw(&["show", "deploy"]).ok().stdout;
    assert!(
        text.contains("Last used at AWS: nothing on record but Keyward's own checks; asked 20"),
        "{text}"
    );

    // Added long ago and never used: unused, Keyward's daily question notwithstanding.
    let db = rusqlite::Connection::open(home.catalog()).expect("open");
    db.execute(
        "UPDATE entries SET created = '2026-01-05T00:00:00Z' WHERE name = 'deploy'",
        [],
    )
    .expect("backdate");
    drop(db);
    let s = home.status();
    assert_eq!(s["keys"]["unused"], 1, "{s:#}");
    assert_eq!(
        s["keys"]["attention"][0]["standing"]["reason"],
        "unused since 2026-01-05 (max_idle_days = 30, defaults)"
    );

    // A key whose IAM cannot be reached: the failure is shown, nothing else changes.
    home.kw_input(
        &[
            "add",
            "aws",
            "lost",
            "--access-key-id",
            &moto.access_key_id,
            "--sts-endpoint",
            &moto.endpoint,
            "--iam-endpoint",
            "http://127.0.0.1:9",
        ],
        &[&moto.secret_access_key],
    )
    .ok();
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = home.kw(&["show", "lost"]).ok().stdout;
        if text.contains("Last used at AWS: not known; asking failed at")
            || Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        text.contains("Last used at AWS: not known; asking failed at"),
        "{text}"
    );
    assert!(!text.contains(&moto.secret_access_key));

    // Rotating it fails before anything changes at AWS, in one line, and is on record.
    let out = home.kw(&["rotate", "lost"]);
    assert_ne!(out.status, 0);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("lost"), "{}", out.stderr);
    let h: Vec<serde_json::Value> =
        serde_json::from_str(&home.kw(&["history", "lost", "--json"]).ok().stdout).expect("json");
    let failed = h
        .iter()
        .find(|r| r["action"] == "rotate.aws")
        .expect("the failed rotation is in the history");
    assert_eq!(failed["outcome"], "failed");
    assert_eq!(failed["detail"]["step"], "look-up");
    assert!(failed["summary"]
        .as_str()
        .is_some_and(|s| s.starts_with("Rotation of lost failed at step look-up")));
}
