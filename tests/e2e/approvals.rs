//! Per-client approval: a program the user has not approved gets no credentials until they say
//! so at the terminal (once, for hours, until lock) — or it is refused at once when there is no
//! terminal to ask on. Grants are listed, revocable, cleared on lock and audited, and only the
//! Keyward binary may answer an approval or give a grant over the socket.

use std::os::unix::net::UnixStream;

use crate::aws::{cred_on_a_terminal, on_a_terminal};
use crate::support::{Home, Moto};

fn add_dev_key(home: &Home, moto: &Moto) {
    home.kw_input(
        &[
            "add",
            "aws",
            "dev",
            "--access-key-id",
            &moto.access_key_id,
            "--sts-endpoint",
            &moto.endpoint,
        ],
        &[&moto.secret_access_key],
    )
    .ok();
}

fn grants(home: &Home) -> Vec<serde_json::Value> {
    let out = home.kw(&["grants", "--json"]).ok();
    serde_json::from_str(&out.stdout).expect("grants json")
}

fn approvals_in_audit(home: &Home) -> Vec<String> {
    let tail = home.kw(&["audit", "tail", "-n", "200", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&tail.stdout).expect("json");
    rows.iter()
        .filter(|r| {
            r["action"] == "approval"
                || r["action"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("grant."))
        })
        .map(|r| {
            format!(
                "{} {}",
                r["action"].as_str().unwrap_or(""),
                r["outcome"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn without_a_terminal_an_unapproved_program_is_refused_at_once() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_dev_key(&home, &moto);
    let started = std::time::Instant::now();
    let run = home.kw(&["cred", "aws", "--profile", "dev"]);
    let line = run.one_line_error();
    assert!(
        line.contains("is not approved for AWS profile 'dev'")
            && line.contains(&crate::support::this_test_binary())
            && line.contains("keyward grants allow"),
        "{line}"
    );
    assert!(run.stdout.is_empty());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refused at once"
    );
    assert_eq!(approvals_in_audit(&home), vec!["approval asked"]);
}

#[test]
fn approving_on_the_terminal_for_hours_then_revoking_then_denying() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_dev_key(&home, &moto);

    // Asked on the terminal; "h", then 8 hours.
    let (status, screen) = cred_on_a_terminal(&home, "dev", "h\n8\n", &[]);
    assert_eq!(status, 0, "{screen}");
    assert!(
        screen.contains("asks for AWS profile 'dev' (credentials valid 1 h)"),
        "{screen}"
    );
    assert!(screen.contains("process chain:"), "{screen}");
    assert!(
        screen.contains("{\"Version\":1"),
        "credentials printed: {screen}"
    );
    let g = grants(&home);
    assert_eq!(
        g.len(),
        1,
        "{g:?}\nscreen: {screen}\nstatus: {}\naudit: {}",
        home.status(),
        home.kw(&["audit", "tail", "-n", "20", "--json"]).stdout
    );
    assert_eq!(g[0]["profile"], "dev");
    assert!(
        g[0]["expires"].is_string(),
        "an 8-hour grant has an end: {g:?}"
    );

    // The same program again: no question.
    let (status, screen) = cred_on_a_terminal(&home, "dev", "", &[]);
    assert_eq!(status, 0, "{screen}");
    assert!(!screen.contains("asks for AWS profile"), "{screen}");

    // Revoked: asked again, and this time denied.
    let id = g[0]["id"].as_str().expect("id");
    let out = home.kw(&["grants", "revoke", id]).ok();
    assert!(out.stdout.contains("Revoked"), "{}", out.stdout);
    assert!(grants(&home).is_empty());
    let (status, screen) = cred_on_a_terminal(&home, "dev", "d\n", &[]);
    assert_ne!(status, 0, "{screen}");
    assert!(screen.contains("denied:"), "{screen}");
    assert!(!screen.contains("{\"Version\":1"), "{screen}");
    assert!(grants(&home).is_empty(), "deny stores nothing");

    assert_eq!(
        approvals_in_audit(&home),
        vec![
            "approval asked",
            "approval allowed_hours",
            "grant.revoke ok",
            "approval asked",
            "approval denied"
        ]
    );
    home.kw(&["audit", "verify"]).ok();
}

#[test]
fn a_shell_running_code_from_its_command_line_is_only_offered_once() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_dev_key(&home, &moto);
    // `; true` keeps the shell alive as keyward's parent: the client is `sh -c '…'`.
    let command = format!("{} cred aws --profile dev; true", crate::support::BIN);
    let (_, screen) = on_a_terminal(&home, &command, "h\no\n", &[]);
    assert!(
        screen.contains("Only this request can be allowed"),
        "{screen}"
    );
    assert!(
        screen.contains("Allow it? [o]nce, [d]eny: "),
        "only what can be done is offered: {screen}"
    );
    assert!(!screen.contains("for [h]ours"), "{screen}");
    assert!(
        screen.contains("can only be allowed once: answer o or d"),
        "an answer for hours is refused, not quietly taken as once: {screen}"
    );
    assert!(screen.contains("{\"Version\":1"), "{screen}");
    assert!(grants(&home).is_empty(), "no grant for -c code");
    assert_eq!(
        approvals_in_audit(&home),
        vec!["approval asked", "approval allowed_once"]
    );
}

#[test]
fn allow_once_leaves_no_grant_and_lock_clears_grants() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_dev_key(&home, &moto);
    let (status, screen) = cred_on_a_terminal(&home, "dev", "o\n", &[]);
    assert_eq!(status, 0, "{screen}");
    assert!(grants(&home).is_empty(), "once is not a grant");

    home.grant_tests("dev");
    assert_eq!(grants(&home).len(), 1);
    home.kw(&["cred", "aws", "--profile", "dev"]).ok();
    home.kw(&["lock"]).ok();
    home.unlock_with_recovery();
    assert!(grants(&home).is_empty(), "grants end with the lock");
    let line = home
        .kw(&["cred", "aws", "--profile", "dev"])
        .one_line_error();
    assert!(line.contains("is not approved"), "{line}");
}

#[test]
fn only_keyward_may_answer_approvals_or_give_grants_over_the_socket() {
    use std::io::{BufRead, BufReader, Write};
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_dev_key(&home, &moto);
    // This test binary talks to the socket directly, as any program of the user's could.
    let ask = |req: &str| {
        let mut s = UnixStream::connect(home.socket()).expect("connect");
        s.write_all(format!("{{\"v\":1,\"req\":{req}}}\n").as_bytes())
            .expect("write");
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).expect("read");
        serde_json::from_str::<serde_json::Value>(&line).expect("json")
    };
    let needed = ask(r#"{"op":"cred_aws","profile":"dev"}"#);
    let id = needed["ok"]["approval"]["id"]
        .as_str()
        .expect("approval id")
        .to_owned();
    assert_eq!(needed["ok"]["type"], "approval_needed");
    let self_approved = ask(&format!(
        r#"{{"op":"approve","id":"{id}","decision":"until_lock"}}"#
    ));
    assert_eq!(self_approved["err"]["code"], "forbidden", "{self_approved}");
    let granted = ask(&format!(
        r#"{{"op":"grant_allow","client":{{"exe":"{}"}},"profile":"dev"}}"#,
        crate::support::this_test_binary()
    ));
    assert_eq!(granted["err"]["code"], "forbidden", "{granted}");
    let again = ask(&format!(
        r#"{{"op":"cred_aws","profile":"dev","approval":"{id}"}}"#
    ));
    assert_eq!(
        again["ok"]["type"], "approval_needed",
        "still not approved: {again}"
    );
    assert!(grants(&home).is_empty());
}

#[test]
fn the_program_running_keyward_cannot_answer_its_approval_through_input_fd() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_dev_key(&home, &moto);
    // The parent chose keyward's descriptors: an answer on --input-fd would be its own.
    let r = home.kw_input(&["cred", "aws", "--profile", "dev"], &["l"]);
    let line = r.one_line_error();
    assert!(
        line.contains("is not approved for AWS profile 'dev'"),
        "{line}"
    );
    assert!(r.stdout.is_empty());
    assert!(grants(&home).is_empty(), "no grant was made");
}

#[test]
fn a_program_named_keyward_elsewhere_is_a_client_not_the_messenger() {
    use std::process::Command;
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_dev_key(&home, &moto);
    home.grant_tests("dev");
    // A copy of Python called `keyward`, run by this (granted) test binary.
    let python = std::fs::canonicalize(crate::support::python()).expect("python");
    let impostor = home.path("bin/keyward");
    std::fs::create_dir_all(home.path("bin")).expect("mkdir");
    std::fs::copy(&python, &impostor).expect("copy python");
    let code = r#"
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b'{"v":1,"req":{"op":"cred_aws","profile":"dev"}}\n')
print(s.makefile().readline())
"#;
    let out = Command::new(&impostor)
        .args(["-c", code, home.socket().to_str().expect("utf-8")])
        .output()
        .expect("run the impostor");
    let reply: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("a reply from the agent");
    assert_eq!(
        reply["ok"]["type"], "approval_needed",
        "the test binary's grant was used for another program: {reply}"
    );
    assert_eq!(
        reply["ok"]["approval"]["client"]["exe"],
        impostor.to_string_lossy().as_ref()
    );
}

#[test]
fn a_grant_for_a_python_script_covers_that_script_only() {
    use std::process::Command;
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_dev_key(&home, &moto);
    // Two scripts that do the same thing: ask keyward for credentials and print the answer.
    let body = "import os, subprocess\nr = subprocess.run([os.environ['KW_BIN'], 'cred', 'aws', '--profile', 'dev'], capture_output=True, text=True)\nprint(r.stdout or r.stderr)\n";
    let trusted = home.path("trusted.py");
    let evil = home.path("evil.py");
    std::fs::write(&trusted, body).expect("write");
    std::fs::write(&evil, body).expect("write");
    home.grant(&crate::support::client_of_python_script(&trusted), "dev");
    let run = |args: &[&str], stdin: Option<&std::path::Path>| {
        let mut cmd = Command::new(crate::support::python());
        cmd.args(args);
        home.env(&mut cmd);
        cmd.env("KW_BIN", env!("CARGO_BIN_EXE_keyward"));
        if let Some(f) = stdin {
            cmd.stdin(std::fs::File::open(f).expect("open"));
        }
        let out = cmd.output().expect("run python");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let t = trusted.to_str().expect("utf-8");
    let e = evil.to_str().expect("utf-8");
    let granted = run(&[t], None);
    assert!(granted.contains("\"AccessKeyId\""), "control: {granted}");
    // The review's spoofs: each runs other code under the trusted script's name.
    for (args, stdin) in [
        (vec!["-", t], Some(evil.as_path())),
        (vec!["-W", t, e], None),
        (vec!["-X", t, e], None),
    ] {
        let out = run(&args, stdin);
        assert!(
            out.contains("is not approved for AWS profile 'dev'"),
            "python3 {args:?}: {out}"
        );
    }
    // `python3 -c` runs no script file: allowed once at most, never by a standing grant.
    home.grant(&(crate::support::python_exe(), None), "dev");
    let out = run(&["-c", body], None);
    assert!(
        out.contains("is not approved for AWS profile 'dev'"),
        "{out}"
    );
}

#[test]
fn a_standing_grant_from_the_cli_needs_a_current_code() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_dev_key(&home, &moto);
    let exe = crate::support::this_test_binary();
    let args = ["grants", "allow", "--exe", &exe, "--profile", "dev"];
    // A program running `keyward grants allow` has no terminal and no code: nothing is granted.
    let line = home.kw(&args).one_line_error();
    assert!(line.contains("authenticator code"), "{line}");
    let line = home.kw_input(&args, &["000000"]).one_line_error();
    assert!(
        line.contains("does not match your authenticator app"),
        "{line}"
    );
    // A code already used (for the unlock) is refused too.
    let used = home.last_code();
    let line = home.kw_input(&args, &[&used]).one_line_error();
    assert!(line.contains("already used"), "{line}");
    assert!(grants(&home).is_empty());
    let tail = home.kw(&["audit", "tail", "-n", "10"]).ok().stdout;
    assert!(tail.contains("factor.check"), "{tail}");
    home.grant_tests("dev");
    assert_eq!(grants(&home).len(), 1);
}

#[test]
fn a_connection_handed_to_a_child_before_exec_speaks_for_the_child() {
    use std::process::Command;
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_dev_key(&home, &moto);
    // This test binary may have the profile's credentials; the program below may not.
    home.grant_tests("dev");
    // The review's attack: connect, fork, and `exec` keyward in the parent (which now passes as
    // the messenger, speaking for this granted test binary), while the child asks for
    // credentials on the connection the parent opened.
    let code = r#"
import json, os, socket, sys, time
sock, kw = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX); s.connect(sock)
r, w = os.pipe()
parent = os.getpid()
if os.fork() == 0:
    os.close(r)
    deadline = time.time() + 20
    while os.readlink(f"/proc/{parent}/exe") != kw and time.time() < deadline:
        time.sleep(0.02)
    s.sendall(b'{"v":1,"req":{"op":"cred_aws","profile":"dev"}}\n')
    print(s.makefile().readline(), flush=True)
    os.close(w)
    os._exit(0)
os.close(w)
os.dup2(r, 0)
os.execv(kw, [kw, "--input-fd", "0", "add", "static", "probe"])
"#;
    let kw = std::fs::canonicalize(crate::support::BIN).expect("keyward");
    let mut cmd = Command::new(crate::support::python());
    cmd.args([
        "-c",
        code,
        home.socket().to_str().expect("utf-8"),
        kw.to_str().expect("utf-8"),
    ]);
    home.env(&mut cmd);
    let out = cmd.output().expect("run the attack");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reply: serde_json::Value = stdout
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "a reply from the agent: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        reply["ok"].is_null(),
        "the child got an answer meant for keyward: {reply}"
    );
    assert_eq!(reply["err"]["code"], "forbidden", "{reply}");
    let message = reply["err"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("not by the process that opened the connection"),
        "{message}"
    );
    // Nothing was issued, and the keyward the parent became stored nothing either.
    let issued = home.kw(&["audit", "tail", "-n", "50", "--json"]).ok();
    assert!(!issued.stdout.contains("\"issue\""), "{}", issued.stdout);
    assert!(!home.kw(&["list"]).ok().stdout.contains("probe"));
}

#[test]
fn with_the_setting_on_a_standing_grant_at_the_terminal_needs_a_current_code() {
    let moto = Moto::start();
    let home = Home::new();
    home.init();
    home.unlock();
    add_dev_key(&home, &moto);
    let on = home.kw(&["settings", "grants-need-code", "on"]).ok();
    assert!(
        on.stdout.contains("asks for an authenticator code"),
        "{}",
        on.stdout
    );
    assert_eq!(home.status()["grants_need_code"], true);

    // "Until lock" with a wrong code: refused, nothing issued, nothing granted.
    let (status, screen) = cred_on_a_terminal(&home, "dev", "l\n000000\n", &[]);
    assert_ne!(status, 0, "{screen}");
    assert!(screen.contains("Standing grants need a code"), "{screen}");
    assert!(
        screen.contains("does not match your authenticator app"),
        "{screen}"
    );
    assert!(!screen.contains("{\"Version\":1"), "{screen}");
    assert!(grants(&home).is_empty());

    // Once needs no code; hours with a current code give the grant.
    let (status, screen) = cred_on_a_terminal(&home, "dev", "o\n", &[]);
    assert_eq!(status, 0, "{screen}");
    assert!(!screen.contains("Standing grants need a code"), "{screen}");
    assert!(grants(&home).is_empty(), "once leaves no grant");
    let code = home.fresh_code();
    let (status, screen) = cred_on_a_terminal(&home, "dev", &format!("h\n8\n{code}\n"), &[]);
    assert_eq!(status, 0, "{screen}");
    assert!(screen.contains("{\"Version\":1"), "{screen}");
    assert_eq!(grants(&home).len(), 1);

    // A program cannot lift the setting: over the socket without a code, or with a wrong one.
    let mut s = UnixStream::connect(home.socket()).expect("connect");
    std::io::Write::write_all(
        &mut s,
        b"{\"v\":1,\"req\":{\"op\":\"set_grants_need_code\",\"on\":false}}\n",
    )
    .expect("send");
    let mut reply = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&s), &mut reply).expect("reply");
    assert!(reply.contains("factor_needed"), "{reply}");
    let off = ["settings", "grants-need-code", "off"];
    let line = home.kw_input(&off, &["000000"]).one_line_error();
    assert!(
        line.contains("does not match your authenticator app"),
        "{line}"
    );
    assert_eq!(home.status()["grants_need_code"], true);
    let out = home.kw_input(&off, &[&home.fresh_code()]).ok();
    assert!(
        out.stdout.contains("no longer asks for a code"),
        "{}",
        out.stdout
    );
    assert_eq!(home.status()["grants_need_code"], false);

    let tail = home
        .kw(&["audit", "tail", "-n", "40", "--json"])
        .ok()
        .stdout;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&tail).expect("json");
    let changes: Vec<String> = rows
        .iter()
        .filter(|r| r["action"] == "settings.grants_need_code")
        .map(|r| r["detail"].to_string())
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
}
