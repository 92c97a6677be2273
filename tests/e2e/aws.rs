//! AWS: STS session credentials through credential_process, seen by the AWS CLI and boto3.

use std::process::Command;

use crate::support::{
    aws_cli, client_of_command, client_of_python_script, python, support_script, Home, Moto,
};

fn add_key(home: &Home, moto: &Moto, name: &str, role: bool) {
    let mut args = vec![
        "add",
        "aws",
        name,
        "--access-key-id",
        &moto.access_key_id,
        "--sts-endpoint",
        &moto.endpoint,
        "--owner",
        "platform-team",
        "--tag",
        "ci",
    ];
    if role {
        args.extend_from_slice(&["--role-arn", &moto.role_arn]);
    }
    home.kw_input(&args, &[&moto.secret_access_key]).ok();
}

fn cred_json(home: &Home, profile: &str) -> serde_json::Value {
    let out = home.kw(&["cred", "aws", "--profile", profile]).ok();
    serde_json::from_str(&out.stdout).expect("credential_process JSON")
}

#[test]
fn aws_cli_and_boto3_get_temporary_credentials_through_keyward() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_key(&home, &moto, "deploy", true);
    let setup = home.kw(&["setup", "aws", "deploy"]).ok();
    assert!(
        setup.stdout.contains("now gets credentials from Keyward"),
        "{}",
        setup.stdout
    );

    let config = std::fs::read_to_string(home.aws_config()).expect("config written");
    assert!(
        config.contains("[profile deploy]\ncredential_process = /"),
        "absolute credential_process line: {config}"
    );
    assert!(!config.contains(&moto.secret_access_key));

    // Not yet approved, and no terminal to ask on: the AWS CLI gets Keyward's one-line refusal.
    let mut aws = Command::new(aws_cli());
    home.env(&mut aws);
    let refused = aws
        .args([
            "sts",
            "get-caller-identity",
            "--profile",
            "deploy",
            "--endpoint-url",
            &moto.endpoint,
            "--region",
            "us-east-1",
        ])
        .output()
        .expect("run aws");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("is not approved for AWS profile 'deploy'") && err.contains("/usr/bin/aws"),
        "{err}"
    );
    home.grant(&client_of_command(&aws_cli()), "deploy");
    home.grant(
        &client_of_python_script(&support_script("boto3_identity.py")),
        "deploy",
    );

    // The real AWS CLI v2, resolving the profile through credential_process.
    let mut aws = Command::new(aws_cli());
    home.env(&mut aws);
    let out = aws
        .args([
            "sts",
            "get-caller-identity",
            "--profile",
            "deploy",
            "--endpoint-url",
            &moto.endpoint,
            "--region",
            "us-east-1",
            "--output",
            "json",
        ])
        .output()
        .expect("run aws");
    assert!(
        out.status.success(),
        "aws sts get-caller-identity failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: serde_json::Value = serde_json::from_slice(&out.stdout).expect("aws json");
    let arn = id["Arn"].as_str().expect("arn");
    assert!(
        arn.starts_with("arn:aws:sts::123456789012:assumed-role/deploy/keyward-deploy"),
        "{arn}"
    );

    // boto3, the way every Python tool resolves credentials.
    let mut py = Command::new(python());
    home.env(&mut py);
    let out = py
        .arg(support_script("boto3_identity.py"))
        .args(["deploy", &moto.endpoint])
        .output()
        .expect("run boto3");
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).expect("boto3 json");
    let key = b["access_key_id"].as_str().expect("key");
    assert!(key.starts_with("ASIA"), "temporary key, got {key}");
    assert_ne!(
        key, moto.access_key_id,
        "the long-lived key never leaves Keyward"
    );
    assert_eq!(b["has_token"], true);
    assert!(b["arn"]
        .as_str()
        .expect("arn")
        .contains(":assumed-role/deploy/"));

    // Every issuance is audited with the client's process chain.
    let tail = home.kw(&["audit", "tail", "-n", "200", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&tail.stdout).expect("audit json");
    let issues: Vec<_> = rows.iter().filter(|r| r["action"] == "issue").collect();
    assert!(
        issues.len() >= 2,
        "aws and boto3 issuances audited: {}",
        tail.stdout
    );
    let fetched = issues
        .iter()
        .filter(|r| r["detail"]["cached"] == false)
        .count();
    assert_eq!(
        fetched, 1,
        "one STS call; the rest served from the agent's cache"
    );
    let actor = issues[0]["actor"].to_string();
    assert!(actor.contains("keyward"), "client chain recorded: {actor}");
    home.kw(&["audit", "verify"]).ok();

    let shown = home.kw(&["show", "deploy", "--json"]).ok();
    let meta: serde_json::Value = serde_json::from_str(&shown.stdout).expect("show json");
    assert!(meta["use_count"].as_u64().expect("count") >= 2);
    assert!(meta["last_used"].is_string());
    assert!(!shown.stdout.contains(&moto.secret_access_key));
    assert!(
        !shown.stdout.contains(&moto.access_key_id),
        "only a hint of the key id is shown"
    );
}

#[test]
fn get_session_token_path_prints_credential_process_v1_with_expiration() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_key(&home, &moto, "plain", false);
    home.grant_tests("plain");
    let v = cred_json(&home, "plain");
    assert_eq!(v["Version"], 1);
    for field in [
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    ] {
        assert!(
            v[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} in {v}"
        );
    }
    assert_ne!(v["AccessKeyId"], moto.access_key_id.as_str());
    assert_ne!(v["SecretAccessKey"], moto.secret_access_key.as_str());
    let exp = time::OffsetDateTime::parse(
        v["Expiration"].as_str().expect("exp"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339 expiration");
    let left = exp - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(20),
        "at least 20 minutes left: {left}"
    );
    // Second call: served from the cache, same credentials.
    let again = cred_json(&home, "plain");
    assert_eq!(again["SessionToken"], v["SessionToken"]);
}

#[test]
fn a_wrong_stored_secret_is_refused_by_sts_with_one_line() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    let wrong = "A".repeat(40);
    home.kw_input(
        &[
            "add",
            "aws",
            "wrong",
            "--access-key-id",
            &moto.access_key_id,
            "--sts-endpoint",
            &moto.endpoint,
        ],
        &[&wrong],
    )
    .ok();
    home.grant_tests("wrong");
    let run = home.kw(&["cred", "aws", "--profile", "wrong"]);
    let line = run.one_line_error();
    assert!(line.contains("SignatureDoesNotMatch"), "{line}");
    assert!(run.stdout.is_empty());
    assert!(!line.contains(&wrong));
}

#[test]
fn concurrent_cold_requests_share_one_sts_call() {
    let moto = Moto::start();
    let home = std::sync::Arc::new(Home::new());
    home.init();
    home.unlock();
    add_key(&home, &moto, "burst", true);
    home.grant_tests("burst");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let h = std::sync::Arc::clone(&home);
            std::thread::spawn(move || {
                cred_json(&h, "burst")["AccessKeyId"]
                    .as_str()
                    .map(str::to_owned)
            })
        })
        .collect();
    let keys: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    assert!(
        keys.iter().all(|k| k == &keys[0]),
        "all got the same session: {keys:?}"
    );
    let tail = home.kw(&["audit", "tail", "-n", "100", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&tail.stdout).expect("json");
    let fetched = rows
        .iter()
        .filter(|r| r["action"] == "issue" && r["detail"]["cached"] == false)
        .count();
    assert_eq!(fetched, 1, "single flight: {}", tail.stdout);
}

#[test]
fn locked_vault_without_terminal_fails_at_once_with_how_to_unlock() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_key(&home, &moto, "dev", false);
    home.grant_tests("dev");
    cred_json(&home, "dev");
    home.kw(&["lock"]).ok();
    let started = std::time::Instant::now();
    let run = home.kw(&["cred", "aws", "--profile", "dev"]);
    let line = run.one_line_error();
    assert!(
        line.contains("locked") && line.contains("keyward unlock"),
        "{line}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "fails at once"
    );
    assert!(
        run.stdout.is_empty(),
        "no credentials once locked (cache wiped)"
    );
}

#[test]
fn unknown_profile_is_one_line_error() {
    let home = Home::new();
    home.init();
    home.unlock();
    let line = home
        .kw(&["cred", "aws", "--profile", "nope"])
        .one_line_error();
    assert!(line.contains("no key named 'nope'"), "{line}");
}

#[test]
fn setup_keeps_every_other_byte_and_makes_a_backup() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    add_key(&home, &moto, "deploy", true); // adding works while locked
    let original = "# my settings\n[default]\nregion = eu-west-1\n\n[profile deploy]\nregion = eu-central-1 # keep\noutput = json\n\n[profile other]\nregion = us-west-2\n";
    std::fs::write(home.aws_config(), original).expect("write");
    home.kw(&["setup", "aws", "deploy"]).ok();
    let after = std::fs::read_to_string(home.aws_config()).expect("read");
    let line = after
        .lines()
        .find(|l| l.starts_with("credential_process = "))
        .expect("line added");
    assert_eq!(
        after.replace(&format!("{line}\n"), ""),
        original,
        "only one line added"
    );
    let backups: Vec<_> = std::fs::read_dir(home.path("aws"))
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("keyward-backup"))
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(
        std::fs::read_to_string(backups[0].path()).expect("backup"),
        original
    );
}

#[test]
fn unwritable_aws_config_is_one_line_error_and_nothing_changes() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    add_key(&home, &moto, "deploy", false);
    // The config's directory is a file: the write must fail cleanly.
    let blocker = home.path("aws/blocked");
    std::fs::write(&blocker, "not a dir").expect("write");
    let mut cmd = home.cmd(&["setup", "aws", "deploy"]);
    cmd.env("AWS_CONFIG_FILE", blocker.join("config"));
    let out = cmd.output().expect("run");
    let run = crate::support::Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    let line = run.one_line_error();
    assert!(line.contains("blocked"), "names the path: {line}");
    assert_eq!(
        std::fs::read_to_string(&blocker).expect("read"),
        "not a dir"
    );
}

#[test]
fn import_moves_plaintext_keys_into_the_vault() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    let creds = format!(
        "# work keys\n[ci]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\nregion = us-east-1\n\n[temp]\naws_access_key_id = ASIAKEYWARDTEMP01\naws_secret_access_key = {secret}\naws_session_token = abc\n",
        id = moto.access_key_id,
        secret = moto.secret_access_key
    );
    std::fs::write(home.aws_credentials(), &creds).expect("write");
    let out = home
        .kw(&[
            "import",
            "aws",
            "--remove-plaintext",
            "--sts-endpoint",
            &moto.endpoint,
        ])
        .ok();
    assert!(out.stdout.contains("Imported 'ci'"), "{}", out.stdout);
    assert!(out.stdout.contains("Skipped 'temp'"), "{}", out.stdout);
    let left = std::fs::read_to_string(home.aws_credentials()).expect("read");
    assert!(
        !left.contains(&format!("aws_access_key_id = {}", moto.access_key_id)),
        "{left}"
    );
    assert!(left.contains("[temp]"), "other profiles kept: {left}");
    let backup = std::fs::read_dir(home.path("aws"))
        .expect("dir")
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("credentials.keyward-backup")
        })
        .expect("backup kept");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        backup.metadata().expect("meta").permissions().mode() & 0o777,
        0o600
    );
    assert!(
        out.stdout.contains(&backup.path().display().to_string()),
        "backup path printed"
    );
    // The imported key works end to end through credential_process.
    home.grant(&client_of_command(&aws_cli()), "ci");
    let mut aws = Command::new(aws_cli());
    home.env(&mut aws);
    let res = aws
        .args([
            "sts",
            "get-caller-identity",
            "--profile",
            "ci",
            "--endpoint-url",
            &moto.endpoint,
            "--region",
            "us-east-1",
        ])
        .output()
        .expect("aws");
    // GetSessionToken credentials from moto are fixed example keys it does not recognise for
    // signing, so the identity call itself is refused upstream — but the CLI must have run
    // credential_process: its error is an auth error from the endpoint, not a missing-credentials one.
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!err.contains("Unable to locate credentials"), "{err}");
    let list = home.kw(&["list", "--json"]).ok();
    assert!(list.stdout.contains("\"name\": \"ci\""), "{}", list.stdout);
}

#[test]
fn mfa_profiles_ask_for_a_code_once_then_use_the_cached_session() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    home.kw_input(
        &[
            "add",
            "aws",
            "mfa",
            "--access-key-id",
            &moto.access_key_id,
            "--sts-endpoint",
            &moto.endpoint,
            "--mfa-serial",
            "arn:aws:iam::123456789012:mfa/deployer",
        ],
        &[&moto.secret_access_key],
    )
    .ok();
    home.grant_tests("mfa");
    let line = home
        .kw(&["cred", "aws", "--profile", "mfa"])
        .one_line_error();
    assert!(line.contains("needs an MFA code"), "{line}");
    let out = home
        .kw_input(&["cred", "aws", "--profile", "mfa"], &["123456"])
        .ok();
    let first: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(first["Version"], 1);
    // The session is cached: no code needed until it nears expiry.
    let again = cred_json(&home, "mfa");
    assert_eq!(again["SessionToken"], first["SessionToken"]);
}

/// Runs `keyward cred aws` under `script`, which gives it a controlling terminal (a pty) the way
/// an engineer's shell does; each line of `input` is typed into that terminal once a prompt
/// (text ending in ": " with no line break after it) has appeared, as a person would.
pub fn cred_on_a_terminal(
    home: &Home,
    profile: &str,
    input: &str,
    extra_env: &[(&str, &str)],
) -> (i32, String) {
    // `exec`: whichever shell `script` starts, keyward's parent is `script` itself (a shell
    // that stayed in between would be the client, and one running `-c` code is only ever
    // allowed once).
    on_a_terminal(
        home,
        &format!("exec {} cred aws --profile {profile}", crate::support::BIN),
        input,
        extra_env,
    )
}

/// Runs the shell command line `command` on a pseudo-terminal (`script`, with `/bin/sh` as
/// the shell), typing each line of `input` once a prompt is on the screen; returns the exit
/// code and everything the terminal showed.
pub fn on_a_terminal(
    home: &Home,
    command: &str,
    input: &str,
    extra_env: &[(&str, &str)],
) -> (i32, String) {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let mut c = Command::new("script");
    c.args(["-qec", command, "/dev/null"]);
    home.env(&mut c);
    c.env("SHELL", "/bin/sh");
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("script");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let screen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let screen = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.lock().expect("screen").extend_from_slice(&buf[..n]);
            }
        })
    };
    let mut seen = 0;
    for line in input.split_inclusive('\n') {
        // Wait for the next prompt after what was on screen when the last answer was typed.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let now = screen.lock().expect("screen").clone();
            let fresh = String::from_utf8_lossy(&now[seen.min(now.len())..]).into_owned();
            if fresh.trim_end_matches(' ').ends_with(':') && fresh.ends_with(' ') {
                seen = now.len();
                break;
            }
            if reader.is_finished() || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if stdin.write_all(line.as_bytes()).is_err() {
            break;
        }
    }
    let status = child.wait().expect("wait");
    drop(stdin);
    let _ = reader.join();
    let screen = String::from_utf8_lossy(&screen.lock().expect("screen")).into_owned();
    (status.code().unwrap_or(-1), screen)
}

#[test]
fn locked_vault_on_a_terminal_asks_to_unlock_there_then_answers() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    add_key(&home, &moto, "dev", false);
    let code = home.fresh_code();
    let (status, screen) = cred_on_a_terminal(
        &home,
        "dev",
        // Passphrase and code to unlock, then "once" at the approval question that follows.
        &format!("{}\n{code}\no\n", crate::support::PASSPHRASE),
        &[],
    );
    assert_eq!(status, 0, "{screen}");
    assert!(
        screen.contains("the vault is locked. Unlock to continue"),
        "{screen}"
    );
    assert!(screen.contains("asks for AWS profile 'dev'"), "{screen}");
    // Answers typed ahead are not echoed, so the JSON may follow the last prompt on its line.
    let json = screen
        .lines()
        .find_map(|l| l.find("{\"Version\":1").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("credential_process JSON on stdout: {screen}"));
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("json");
    assert!(v["SessionToken"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(home.status()["locked"], false);
}

#[test]
fn locked_vault_on_a_terminal_gives_up_after_the_wait_with_a_clear_message() {
    let home = Home::new();
    home.init();
    let (status, screen) = cred_on_a_terminal(&home, "dev", "", &[("KEYWARD_UNLOCK_WAIT", "2")]);
    assert_ne!(status, 0);
    assert!(screen.contains("no unlock within 2 s"), "{screen}");
}

#[test]
fn test_shows_whose_session_a_key_gets_and_no_secret() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_key(&home, &moto, "deploy", true);
    // Testing sends the long-lived key to STS, so it is approved like `cred`.
    home.grant_tests("deploy");
    let out = home.kw(&["test", "deploy"]).ok();
    assert!(
        out.stdout
            .contains("'deploy' works: STS issued a session for arn:aws:sts::")
            && out.stdout.contains(":assumed-role/deploy/keyward-deploy")
            && out.stdout.contains("valid until"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("ASIA") && !out.stdout.contains(&moto.secret_access_key));
    let line = home.kw(&["test", "nope"]).one_line_error();
    assert!(line.contains("nope"), "{line}");
}

#[test]
fn rotate_stores_the_new_key_and_history_shows_it() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    // A key whose secret was replaced at AWS: the stored one no longer signs.
    let stale = "A".repeat(40);
    home.kw_input(
        &[
            "add",
            "aws",
            "deploy",
            "--access-key-id",
            &moto.access_key_id,
            "--sts-endpoint",
            &moto.endpoint,
            "--role-arn",
            &moto.role_arn,
        ],
        &[&stale],
    )
    .ok();
    home.grant_tests("deploy");
    let line = home.kw(&["test", "deploy"]).one_line_error();
    assert!(line.contains("SignatureDoesNotMatch"), "{line}");
    // `rotate` stores the current key; it works at once.
    let out = home
        .kw_input(
            &["rotate", "deploy", "--manual"],
            &[&moto.access_key_id, &moto.secret_access_key],
        )
        .ok();
    assert!(
        out.stdout.contains("Stored the new key for 'deploy'"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains(&moto.secret_access_key));
    let out = home.kw(&["test", "deploy"]).ok();
    assert!(out.stdout.contains("'deploy' works"), "{}", out.stdout);
    let show = home.kw(&["show", "deploy", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&show.stdout).expect("json");
    assert!(v["rotated"].is_string(), "{v}");
    // History, oldest first: added, granted to the tests, failed test, rotation, good test.
    let out = home.kw(&["history", "deploy", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("json");
    let seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or_default().to_owned(),
                r["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let seen: Vec<(&str, &str)> = seen.iter().map(|(a, o)| (a.as_str(), o.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("add", "ok"),
            ("grant.allow", "ok"),
            ("issue", "failed"),
            ("rotate", "ok"),
            ("issue", "ok")
        ],
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains(&moto.secret_access_key) && !out.stdout.contains(&stale));
    // A token is not an AWS key: one line, and the stored key stays.
    let line = home.kw_input(&["rotate", "nope"], &["x"]).one_line_error();
    assert!(line.contains("no key named 'nope'"), "{line}");
}
