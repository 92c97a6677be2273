//! `keyward exec`: the real AWS CLI v2 and a boto3 child getting their session from the exec's
//! container endpoint (moto checking every signature), the session refreshing under a child
//! that outlives it, hostile requests to the endpoint, an OAuth2 token for the real curl, and
//! the child's exit status and signals passing through.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{
    aws_cli, client_of_command, client_of_python_script, python, support_script, Home, Moto,
    OAuthServer,
};

fn add_key(home: &Home, moto: &Moto, name: &str) {
    home.kw_input(
        &[
            "add",
            "aws",
            name,
            "--access-key-id",
            &moto.access_key_id,
            "--sts-endpoint",
            &moto.endpoint,
            "--region",
            "eu-west-1",
            // moto checks signatures made with an assumed role's session, not GetSessionToken's.
            "--role-arn",
            &moto.role_arn,
        ],
        &[&moto.secret_access_key],
    )
    .ok();
}

fn exec_child(args: &[&str]) -> Vec<String> {
    let mut v = vec![
        python(),
        support_script("exec_child.py").display().to_string(),
    ];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

fn exec(home: &Home, profiles: &[&str], command: &[String]) -> crate::support::Run {
    let mut args: Vec<&str> = vec!["exec"];
    args.extend_from_slice(profiles);
    args.push("--");
    args.extend(command.iter().map(String::as_str));
    home.kw(&args)
}

#[test]
fn the_aws_cli_and_a_boto3_child_get_a_session_that_refreshes_and_never_the_long_lived_key() {
    let moto = Moto::start();
    // Sessions of 900 s that count as ending 895 s before their end: a child sees its session
    // replaced within seconds instead of within the hour.
    let home = Home::with_env(&[
        ("KEYWARD_TEST_SESSION_SECS", "900"),
        ("KEYWARD_TEST_MIN_REMAINING_SECS", "895"),
    ]);
    home.init();
    home.unlock();
    add_key(&home, &moto, "deploy");
    home.grant(&client_of_command(&aws_cli()), "deploy");
    home.grant(
        &client_of_python_script(&support_script("exec_child.py")),
        "deploy",
    );

    // The real AWS CLI v2, with stale long-lived variables in the environment that exec must
    // not pass on (with them the CLI would sign with the wrong key and moto would refuse).
    let mut cmd = home.cmd(&[
        "exec",
        "aws:deploy",
        "--",
        &aws_cli(),
        "sts",
        "get-caller-identity",
        "--endpoint-url",
        &moto.endpoint,
        "--output",
        "json",
    ]);
    cmd.env("AWS_ACCESS_KEY_ID", "AKIAOLDEXAMPLE01")
        .env("AWS_SECRET_ACCESS_KEY", "stale-secret-in-the-shell")
        .env("AWS_PROFILE", "nonexistent");
    let out = crate::support::Run::from_output(cmd.output().expect("run exec")).ok();
    let id: serde_json::Value = serde_json::from_str(&out.stdout).expect("aws json");
    assert!(
        id["Arn"]
            .as_str()
            .is_some_and(|a| a.starts_with("arn:aws:sts::123456789012:")),
        "{id}"
    );

    // A boto3 child that runs past its first session: three calls six seconds apart, each
    // signed with what the endpoint gave at the time.
    let out = exec(
        &home,
        &["aws:deploy"],
        &exec_child(&["refresh", &moto.endpoint, "3", "6"]),
    )
    .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("child json");
    let keys: Vec<&str> = v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    assert_eq!(keys.len(), 3, "{v}");
    assert!(keys.iter().all(|k| k.starts_with("ASIA")), "{v}");
    let distinct: std::collections::HashSet<_> = keys.iter().collect();
    assert!(
        distinct.len() >= 2,
        "the child refreshed from the endpoint and got a new session: {v}"
    );
    assert!(!keys.contains(&moto.access_key_id.as_str()));
    let env: Vec<&str> = v["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    for set in [
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "KEYWARD_EXEC",
    ] {
        assert!(
            env.contains(&set),
            "{set} in the child's environment: {env:?}"
        );
    }
    for unset in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        assert!(
            !env.contains(&unset),
            "{unset} not in the child's environment"
        );
    }

    // The whole environment the child sees holds neither half of the long-lived key.
    let out = exec(&home, &["deploy"], &exec_child(&["environ"])).ok();
    assert!(!out.stdout.contains(&moto.secret_access_key));
    assert!(!out.stdout.contains(&moto.access_key_id));
    let environ: serde_json::Value = serde_json::from_str(&out.stdout).expect("environ");
    assert_eq!(environ["AWS_REGION"], "eu-west-1");
    assert!(environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        .as_str()
        .is_some_and(|u| u.starts_with("http://127.0.0.1:")));
    let token = environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        .as_str()
        .expect("token");
    assert!(token.len() >= 64, "≥ 256 bits: {}", token.len());

    // Each STS call is audited; the trail still verifies.
    home.kw(&["audit", "verify"]).ok();
    for f in home.all_files() {
        let bytes = std::fs::read(&f).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&moto.secret_access_key),
            "the secret in {}",
            f.display()
        );
    }
}

#[test]
fn hostile_requests_to_the_endpoint_are_refused_while_it_keeps_serving_its_child() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_key(&home, &moto, "deploy");
    home.grant(
        &client_of_python_script(&support_script("exec_child.py")),
        "deploy",
    );

    // Exec A's child publishes its endpoint and token and waits; exec B's child attacks both.
    let published = home.path("a.json");
    let a_args = exec_child(&["publish", &published.display().to_string()]);
    let mut a_cmd = home.cmd(&["exec", "aws:deploy", "--"]);
    a_cmd
        .args(&a_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let a = a_cmd.spawn().expect("start exec A");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !published.exists() {
        assert!(Instant::now() < deadline, "exec A's child did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = exec(
        &home,
        &["aws:deploy"],
        &exec_child(&["hostile", &published.display().to_string()]),
    );
    std::fs::write(home.path("a.json.done"), b"").expect("done");
    let a = a.wait_with_output().expect("exec A");
    let out = out.ok();
    assert!(
        a.status.success(),
        "exec A: {}",
        String::from_utf8_lossy(&a.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("hostile json");
    let expect = [
        ("no_token", 401),
        ("wrong_token", 403),
        ("other_execs_token", 403),
        ("own_token_at_other", 403),
        ("wrong_host", 403),
        ("localhost_host", 403),
        ("origin", 403),
        ("oversized", 431),
        ("slow", 408),
        ("post", 400),
        ("own", 200),
        ("other_with_its_token", 200),
    ];
    for (what, status) in expect {
        assert_eq!(v[what], status, "{what}: {v}");
    }
    assert!(
        v["own_key"].as_str().is_some_and(|k| k.starts_with("ASIA")),
        "{v}"
    );
}

#[test]
fn exit_status_signals_and_stdin_pass_through_and_nothing_runs_without_credentials() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_key(&home, &moto, "deploy");

    // Not approved, no terminal to ask on: one line naming the command exec was to start (not
    // the program that ran exec), non-zero, and the command never ran.
    let child = support_script("exec_child.sh").display().to_string();
    let run = |args: &[&str]| {
        let mut v = vec![child.clone()];
        v.extend(args.iter().map(|a| a.to_string()));
        v
    };
    let marker = home.path("ran");
    let touch = run(&["touch", &marker.display().to_string()]);
    let refused = exec(&home, &["aws:deploy"], &touch);
    let line = refused.one_line_error();
    let (sh, script) = client_of_command(&child);
    assert!(
        line.contains("is not approved for AWS profile 'deploy'")
            && line.contains(&sh)
            && line.contains(script.as_deref().expect("script")),
        "{line}"
    );
    assert!(!marker.exists(), "the command ran without credentials");
    // A grant to the program that ran exec (this test) is not a grant to the command.
    home.grant_tests("deploy");
    // A long-lived key left in [default] would win over the endpoint in the SDKs' chain: exec
    // says so before anything is asked.
    // Generated test values (no real or published example key in the source).
    let (id, secret) = (
        format!("AKIA{}", "KEYWARDDEFAULT01"),
        "kwTestDefaultSecret0".repeat(2),
    );
    std::fs::write(
        home.aws_credentials(),
        format!("[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
    )
    .expect("credentials");
    let shadowed = exec(&home, &["aws:deploy"], &touch);
    assert_ne!(shadowed.status, 0);
    assert!(
        shadowed.stderr.contains("keyward: warning: ")
            && shadowed
                .stderr
                .contains("holds a long-lived key for [default]")
            && shadowed
                .stderr
                .contains("keyward import aws --profile default --remove-plaintext"),
        "{}",
        shadowed.stderr
    );
    std::fs::remove_file(home.aws_credentials()).expect("rm credentials");
    assert_ne!(exec(&home, &["aws:deploy"], &touch).status, 0);
    assert!(!marker.exists());

    home.grant(&(sh, script), "deploy");
    // Any other program naming that command to borrow its grant is refused: only this
    // installation's keyward may say which command a request is for.
    {
        use std::io::{BufRead, BufReader, Write};
        let mut sock = std::os::unix::net::UnixStream::connect(home.socket()).expect("connect");
        let req = serde_json::json!({"v": 1, "req": {"op": "cred_aws", "profile": "deploy",
            "exec": {"program": child, "args": ["touch", "/dev/null"]}}});
        writeln!(sock, "{req}").expect("write");
        let mut line = String::new();
        BufReader::new(sock).read_line(&mut line).expect("read");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["err"]["code"], "forbidden", "{v}");
    }
    exec(&home, &["aws:deploy"], &touch).ok();
    assert!(marker.exists(), "the approved command ran");
    std::fs::remove_file(&marker).expect("rm");
    assert_eq!(exec(&home, &["aws:deploy"], &run(&["exit", "7"])).status, 7);
    assert_eq!(
        exec(&home, &["aws:deploy"], &run(&["selfterm"])).status,
        143,
        "a child ended by SIGTERM: 128 + 15"
    );
    let missing = exec(&home, &["aws:deploy"], &["/nonexistent/tool".to_owned()]);
    assert_eq!(missing.status, 127);
    assert!(
        missing.stderr.contains("cannot run /nonexistent/tool"),
        "{}",
        missing.stderr
    );

    // stdin reaches the child untouched.
    let mut cat = home.cmd(&["exec", "aws:deploy", "--", &child, "cat"]);
    cat.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut spawned = cat.spawn().expect("spawn");
    {
        use std::io::Write;
        let mut stdin = spawned.stdin.take().expect("stdin");
        stdin.write_all(b"line one\nline two\n").expect("write");
    }
    let out = spawned.wait_with_output().expect("cat");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "line one\nline two\n");

    // SIGTERM to keyward exec goes on to the child, and the exit status is the child's.
    let trapped = home.path("trapped");
    let trapped_arg = trapped.display().to_string();
    let mut long = home.cmd(&["exec", "aws:deploy", "--", &child, "trap", &trapped_arg]);
    let mut spawned = long.spawn().expect("spawn");
    std::thread::sleep(Duration::from_secs(2));
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&spawned),
        rustix::process::Signal::TERM,
    )
    .expect("kill");
    let status = spawned.wait().expect("wait");
    assert_eq!(
        status.code(),
        Some(42),
        "the child's own exit after its trap"
    );
    assert_eq!(
        std::fs::read_to_string(&trapped).unwrap_or_default().trim(),
        "term"
    );

    // Locked and no terminal: fails at once with how to unlock, and the command never runs.
    home.kw(&["lock"]).ok();
    let locked = exec(&home, &["aws:deploy"], &touch);
    assert_ne!(locked.status, 0);
    assert!(
        locked.one_line_error().contains("keyward unlock"),
        "{}",
        locked.stderr
    );
    assert!(!marker.exists());

    // Bad arguments: one line each (clap's own usage error for a missing command).
    home.unlock();
    let usage = home.kw(&["exec", "aws:deploy", "--"]);
    assert_eq!(usage.status, 2);
    assert!(usage.stderr.contains("<COMMAND>"), "{}", usage.stderr);
    for (args, says) in [
        (vec!["exec", "gcp:x", "--", "true"], "unknown kind"),
        (
            vec!["exec", "oauth2:x=1BAD", "--", "true"],
            "not an environment variable",
        ),
        (
            vec!["exec", "aws:deploy", "aws:deploy", "--", "true"],
            "one AWS profile",
        ),
        (vec!["exec", "aws:nokey", "--", "true"], "nokey"),
    ] {
        let r = home.kw(&args);
        let line = r.one_line_error();
        assert!(line.contains(says), "{args:?}: {line}");
    }
}

#[test]
fn an_oauth2_token_in_a_named_variable_calls_an_api_with_the_real_curl() {
    let srv = OAuthServer::start(serde_json::json!([
        {"client_id": "ci-bot", "client_secret": "exec-Secret-42", "scope": "deploy:read"},
    ]));
    let home = Home::new();
    home.init();
    home.unlock();
    home.kw_input(
        &[
            "add",
            "oauth2",
            "ci",
            "--token-url",
            &srv.token_url,
            "--client-id",
            "ci-bot",
        ],
        &["exec-Secret-42"],
    )
    .ok();
    home.grant(
        &client_of_python_script(&support_script("exec_child.py")),
        "ci",
    );
    let api = format!("{}/api/whoami", srv.issuer);
    let out = exec(
        &home,
        &["oauth2:ci=CI_TOKEN"],
        &exec_child(&["curl", &api, "CI_TOKEN"]),
    )
    .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("child json");
    assert_eq!(v["whoami"]["client_id"], "ci-bot", "{v}");
    let expires = v["expires_at"].as_str().unwrap_or_default();
    assert!(
        time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "CI_TOKEN_EXPIRES_AT is RFC 3339: {v}"
    );
    assert!(!out.stdout.contains("exec-Secret-42"));

    // --env names the variable of the one OAuth2 profile.
    let mut args = vec!["exec", "--env", "TOKEN", "oauth2:ci", "--"];
    let child = exec_child(&["curl", &api, "TOKEN"]);
    args.extend(child.iter().map(String::as_str));
    let out = home.kw(&args).ok();
    assert!(out.stdout.contains("ci-bot"), "{}", out.stdout);
    let no_var = home.kw(&["exec", "oauth2:ci", "--", "true"]);
    assert!(
        no_var.one_line_error().contains("needs a variable"),
        "{}",
        no_var.stderr
    );

    // The parent keeps no copy in its own environment: only the child has the token.
    let mut args = vec!["exec", "oauth2:ci=CI_TOKEN", "--"];
    let child = exec_child(&["sleep", "4"]);
    args.extend(child.iter().map(String::as_str));
    let mut spawned = home.cmd(&args).spawn().expect("spawn");
    std::thread::sleep(Duration::from_secs(2));
    let environ = std::fs::read(format!("/proc/{}/environ", spawned.id())).unwrap_or_default();
    let status = spawned.wait().expect("wait");
    assert!(status.success());
    assert!(!environ.is_empty());
    assert!(
        !String::from_utf8_lossy(&environ).contains("CI_TOKEN="),
        "the exec process's own environment has no token"
    );
}

#[test]
fn a_static_key_is_leased_to_one_command_only_where_allowed_approved_and_audited() {
    use crate::policy::{install, policy_dir, status_until};
    const VALUE: &str = "ghp_execLeaseCanary0123456789abcdef";
    let dir = policy_dir();
    let policy = dir.path().join("policy.toml");
    let home = Home::with_env(&[("KEYWARD_POLICY", policy.to_str().expect("utf-8"))]);
    home.init();
    home.unlock();
    home.kw_input(&["add", "static", "gh", "--tag", "ci"], &[VALUE])
        .ok();
    let child = exec_child(&["environ"]);
    let lease = |home: &Home| exec(home, &["static:gh=GITHUB_TOKEN"], &child);

    // Off by default: one line saying how to allow it, and the command never runs.
    let off = lease(&home);
    let line = off.one_line_error();
    assert!(line.contains("--allow-lease env"), "{line}");
    assert!(!off.stdout.contains(VALUE));

    // Allowing asks for a current code; another program cannot allow it over the socket.
    {
        use std::io::{BufRead, BufReader, Write};
        // The code first: the agent closes a connection that sends nothing for 10 s.
        let code = home.fresh_code();
        let mut sock = std::os::unix::net::UnixStream::connect(home.socket()).expect("connect");
        let req = serde_json::json!({"v": 1, "req": {"op": "set_lease", "name": "gh",
            "mode": "env", "code": code}});
        writeln!(sock, "{req}").expect("write");
        let mut line = String::new();
        BufReader::new(sock).read_line(&mut line).expect("read");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["err"]["code"], "forbidden", "{v}");
    }
    let wrong = home.kw_input(&["edit", "gh", "--allow-lease", "env"], &["000000"]);
    assert_ne!(wrong.status, 0);
    assert!(lease(&home).one_line_error().contains("--allow-lease env"));
    let code = home.fresh_code();
    home.kw_input(&["edit", "gh", "--allow-lease", "env"], &[&code])
        .ok();

    // Allowed, but the command is not approved: the question names it.
    let script = support_script("exec_child.py");
    let refused = lease(&home).one_line_error();
    assert!(
        refused.contains("is not approved for static key 'gh'")
            && refused.contains(&script.canonicalize().expect("canon").display().to_string()),
        "{refused}"
    );
    home.grant(&client_of_python_script(&script), "gh");

    // The child has the value and the lease's end; the parent's environment has neither.
    let out = lease(&home).ok();
    let environ: serde_json::Value = serde_json::from_str(&out.stdout).expect("environ");
    assert_eq!(environ["GITHUB_TOKEN"], VALUE);
    let ends = environ["GITHUB_TOKEN_EXPIRES_AT"].as_str().expect("expiry");
    let ends = time::OffsetDateTime::parse(ends, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    let left = (ends - time::OffsetDateTime::now_utc()).whole_seconds();
    assert!((3500..=3600).contains(&left), "a lease of an hour: {left}");
    let mut args = vec!["exec", "static:gh=GITHUB_TOKEN", "--"];
    let sleeper = exec_child(&["sleep", "4"]);
    args.extend(sleeper.iter().map(String::as_str));
    let mut spawned = home.cmd(&args).spawn().expect("spawn");
    std::thread::sleep(Duration::from_secs(2));
    let parent = std::fs::read(format!("/proc/{}/environ", spawned.id())).unwrap_or_default();
    assert!(spawned.wait().expect("wait").success());
    assert!(!parent.is_empty());
    assert!(!String::from_utf8_lossy(&parent).contains(VALUE));

    // Audited as a lease, with the command as the client.
    let tail = home.kw(&["audit", "tail", "-n", "50", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&tail.stdout).expect("audit json");
    let issued: Vec<_> = rows
        .iter()
        .filter(|r| r["action"] == "issue" && r["target"] == "gh" && r["outcome"] == "ok")
        .collect();
    assert_eq!(issued.len(), 2, "{}", tail.stdout);
    assert_eq!(issued[0]["detail"]["lease"], "exec");
    let first = &issued[0]["actor"]["chain"][0];
    assert_eq!(first["pid"], 0, "{first}");
    assert_eq!(
        first["script"],
        script.canonicalize().expect("canon").display().to_string()
    );
    assert!(!tail.stdout.contains(VALUE));

    // The admin's policy can forbid leases outright.
    install(
        &policy,
        "[[rule]]\nname = \"no-leases\"\nkinds = [\"static\"]\n[rule.limits]\nstatic_leases = false\n",
    );
    status_until(&home, "the policy was not picked up", |s| {
        s["policy"]["sha256"].is_string()
    });
    let line = lease(&home).one_line_error();
    assert!(
        line.contains("no-leases") && line.contains("static_leases"),
        "{line}"
    );

    // Turning it off needs no code.
    std::fs::remove_file(&policy).expect("rm policy");
    home.kw(&["edit", "gh", "--allow-lease", "off"]).ok();
    assert!(lease(&home).one_line_error().contains("--allow-lease env"));
    for f in home.all_files() {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap_or_default()).into_owned();
        assert!(!text.contains(VALUE), "the value in {}", f.display());
    }
}

#[test]
fn a_static_key_allowed_only_in_a_file_descriptor_reaches_the_child_there_and_nowhere_else() {
    const VALUE: &str = "ghp_fdLeaseCanary0123456789abcdef";
    let home = Home::new();
    home.init();
    home.unlock();
    home.kw_input(&["add", "static", "gh"], &[VALUE]).ok();
    let code = home.fresh_code();
    let allowed = home
        .kw_input(&["edit", "gh", "--allow-lease", "file"], &[&code])
        .ok();
    assert!(
        allowed.stdout.contains("static:gh=fd:VAR"),
        "{}",
        allowed.stdout
    );
    let script = support_script("exec_child.py");
    home.grant(&client_of_python_script(&script), "gh");

    // A variable is refused for a key allowed only in a file descriptor, naming both ways.
    let refused = exec(
        &home,
        &["static:gh=GITHUB_TOKEN"],
        &exec_child(&["environ"]),
    )
    .one_line_error();
    assert!(
        refused.contains("only in a file descriptor") && refused.contains("--allow-lease env"),
        "{refused}"
    );
    // fd: is for static keys only.
    let line = exec(&home, &["oauth2:gh=fd:T"], &exec_child(&["environ"])).one_line_error();
    assert!(line.contains("static:NAME=fd:VAR"), "{line}");

    let out = exec(
        &home,
        &["static:gh=fd:TOKEN_FILE"],
        &exec_child(&["readfile", "TOKEN_FILE"]),
    )
    .ok();
    let got: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let path = got["path"].as_str().expect("path");
    assert!(path.starts_with("/dev/fd/"), "{got}");
    assert_eq!(
        got["reads"],
        serde_json::json!([VALUE, VALUE]),
        "read twice, whole"
    );
    assert_eq!(got["writable"], false, "the child cannot change it");
    let environ = got["environ"].to_string();
    assert!(
        !environ.contains(VALUE),
        "the value is in no variable: {environ}"
    );
    assert!(got["environ"]["TOKEN_FILE_EXPIRES_AT"].is_string());
    // Audited as a lease in a file descriptor, with the command as the client.
    let trail = home
        .kw(&["audit", "tail", "-n", "20", "--json"])
        .ok()
        .stdout;
    assert!(trail.contains("exec-fd"), "{trail}");
    for f in home.all_files() {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap_or_default()).into_owned();
        assert!(!text.contains(VALUE), "the value in {}", f.display());
    }
}
