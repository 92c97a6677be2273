//! git: the real git cloning and pushing over smart HTTP (the real `git http-backend` behind a
//! server that requires the token) with Keyward as its credential helper, a static key's lease
//! as the password; injection attempts refused; the helper answering only for its host.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::Home;

const TOKEN: &str = "ghp_gitLeaseCanary0123456789abcdef";

fn serve(root: &Path) -> crate::support::ScriptServer {
    crate::support::serve_script(
        "git_server.py",
        &[root.as_os_str(), std::ffi::OsStr::new(TOKEN)],
    )
}

fn git(home: &Home, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut c = Command::new("git");
    home.env(&mut c);
    c.current_dir(dir)
        .env("PATH", crate::support::path_with_helpers(home))
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .stdin(Stdio::null())
        .output()
        .expect("run git")
}

/// The program Keyward sees asking: the `git` that runs `git credential-keyward`, the one in
/// git's exec path (git puts it first on PATH for what it runs).
fn git_itself() -> (String, Option<String>) {
    let out = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git");
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let git = std::fs::canonicalize(Path::new(&dir).join("git")).expect("git in its exec path");
    (git.display().to_string(), None)
}

/// Runs the helper as git would, with `input` on stdin.
fn helper(home: &Home, host: &str, action: &str, input: &str) -> crate::support::Run {
    let _ = host;
    let mut cmd = home.cmd(&["git-credential", action]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn helper");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    crate::support::Run::from_output(child.wait_with_output().expect("helper"))
}

#[test]
fn git_clones_and_pushes_with_a_leased_token_and_injections_are_refused() {
    let home = Home::new();
    home.init();
    home.unlock();
    let root = home.path("repos");
    std::fs::create_dir_all(&root).expect("mkdir");
    assert!(git(&home, &root, &["init", "-q", "--bare", "app.git"])
        .status
        .success());
    let srv = serve(&root);
    let host = format!("127.0.0.1:{}", srv.port);
    let url = format!("http://{host}/app.git");

    home.kw_input(&["add", "static", "gh"], &[TOKEN]).ok();
    // Without git-credential-keyward on PATH, setup says how to get it.
    let missing = home.kw(&["setup", "git", &host, "--key", "gh"]);
    assert!(missing
        .one_line_error()
        .contains("git-credential-keyward is not on PATH"));
    let path = crate::support::path_with_helpers(&home);
    let path = path.as_path();
    // Binding a key to a host needs the user: a wrong code binds nothing.
    let wrong = home.kw_input_env(
        &["setup", "git", &host, "--key", "gh"],
        &["000000"],
        &[("PATH", path)],
    );
    assert!(wrong.one_line_error().contains("code"), "{}", wrong.stderr);
    let code = home.fresh_code();
    let set = home
        .kw_input_env(
            &["setup", "git", &host, "--key", "gh"],
            &[&code],
            &[("PATH", path)],
        )
        .ok();
    assert!(
        set.stdout.contains("git now asks Keyward"),
        "{}",
        set.stdout
    );
    let gitconfig = std::fs::read_to_string(home.path("home/.gitconfig")).expect(".gitconfig");
    assert!(gitconfig.contains("helper = keyward\n"), "{gitconfig}");
    assert!(!gitconfig.contains(TOKEN));
    // `show` says where the key may go.
    let shown = home.kw(&["show", "gh", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&shown.stdout).expect("json");
    assert_eq!(
        v["uses"]["bindings"],
        serde_json::json!([{ "tool": "git", "host": host, "key": "gh" }]),
        "{v}"
    );
    assert_eq!(v["uses"]["lease"], serde_json::Value::Null, "{v}");

    // Not approved and no terminal: Keyward's line reaches git's stderr; nothing is cloned.
    let work = home.path("work");
    let refused = git(&home, &home.path(""), &["clone", "-q", &url, "work"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(&format!("is not approved for host '{host}'")),
        "{err}"
    );
    let (git_exe, _) = git_itself();
    assert!(err.contains(&git_exe), "the client is git: {err}");

    home.grant(&git_itself(), "gh");
    let cloned = git(&home, &home.path(""), &["clone", "-q", &url, "work"]);
    assert!(
        cloned.status.success(),
        "{}",
        String::from_utf8_lossy(&cloned.stderr)
    );
    std::fs::write(work.join("README"), "hello\n").expect("write");
    assert!(git(&home, &work, &["add", "README"]).status.success());
    assert!(git(&home, &work, &["commit", "-q", "-m", "first"])
        .status
        .success());
    let pushed = git(&home, &work, &["push", "-q", "origin", "HEAD:main"]);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let log = std::fs::read_to_string(root.join("log")).expect("server log");
    assert!(log.contains("POST /app.git/git-receive-pack"), "{log}");
    assert!(
        log.lines().all(|l| l.starts_with("token ")),
        "user name 'token': {log}"
    );

    // git fill shows what git holds: the lease with its end, so git forgets it in time.
    let mut fill = Command::new(env!("CARGO_BIN_EXE_keyward"));
    home.env(&mut fill);
    // Under another name than git: a program that is not git gets nothing.
    fill.arg0("git-credential-keyward")
        .arg("get")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = fill.spawn().expect("fill");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("protocol=http\nhost={host}\n\n").as_bytes())
        .expect("write");
    let filled = child.wait_with_output().expect("fill");
    let text = String::from_utf8_lossy(&filled.stdout);
    // Run by this test, not by git: this test is not approved, so nothing is given.
    assert!(!filled.status.success());
    assert!(!text.contains(TOKEN), "{text}");

    // Exactly as git calls the helper, from an approved program (this test):
    home.grant_tests("gh");
    let got = helper(
        &home,
        &host,
        "get",
        &format!("capability[]=authtype\ncapability[]=state\nprotocol=http\nhost={host}\n\n"),
    );
    let got = got.ok();
    assert!(
        got.stdout.contains(&format!("password={TOKEN}\n")),
        "{}",
        got.stdout
    );
    let expiry: i64 = got
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("password_expiry_utc="))
        .expect("password_expiry_utc")
        .parse()
        .expect("unix seconds");
    let left = expiry - crate::support::now() as i64;
    assert!((3500..=3600).contains(&left), "{left}");
    assert!(!got.stdout.contains("capability"), "no capability claimed");

    // A host no key is bound to gets nothing, even from an approved program that says
    // `credential.helper = keyward` for it (its config is any program's to edit): the binding
    // is in the vault.
    let other = helper(&home, &host, "get", "protocol=https\nhost=evil.example\n\n").ok();
    assert!(other.stdout.is_empty());
    let elsewhere = helper(&home, &host, "get", "protocol=http\nhost=127.0.0.1:1\n\n").ok();
    assert!(elsewhere.stdout.is_empty(), "{}", elsewhere.stdout);
    // The same host over plain HTTP off this machine: one line.
    let code = home.fresh_code();
    home.kw_input_env(
        &["setup", "git", "git.example", "--key", "gh"],
        &[&code],
        &[("PATH", path)],
    )
    .ok();
    let plain = helper(&home, &host, "get", "protocol=http\nhost=git.example\n\n");
    assert!(
        plain.one_line_error().contains("only over HTTPS"),
        "{}",
        plain.stderr
    );
    assert!(!plain.stdout.contains(TOKEN));
    for injected in [
        format!("protocol=http\nhost={host}\rhost=evil.example\n\n"),
        format!("protocol=http\nhost={host}\nusername=a\rb\n\n"),
        format!("protocol=http\nhost={host}\0evil\n\n"),
    ] {
        let r = helper(&home, &host, "get", &injected);
        let line = r.one_line_error();
        assert!(line.contains("carriage return or NUL"), "{line}");
        assert!(!r.stdout.contains(TOKEN));
    }
    // store writes nothing anywhere; erase has nothing to erase.
    let stored = helper(
        &home,
        &host,
        "store",
        &format!("protocol=http\nhost={host}\nusername=u\npassword=typed-Secret-99\n\n"),
    )
    .ok();
    assert!(stored.stdout.is_empty());
    helper(
        &home,
        &host,
        "erase",
        &format!("protocol=http\nhost={host}\n\n"),
    )
    .ok();
    for f in home.all_files() {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap_or_default()).into_owned();
        assert!(!text.contains(TOKEN), "the token in {}", f.display());
        assert!(
            !text.contains("typed-Secret-99"),
            "a stored password in {}",
            f.display()
        );
    }
    drop(srv);
}

#[test]
fn a_password_typed_into_git_is_offered_to_the_vault_on_the_terminal_and_written_nowhere() {
    const TYPED: &str = "typedIntoGitCanary0123456789";
    let home = Home::new();
    home.init();
    home.unlock();
    let input =
        format!("protocol=https\nhost=git.example.test\nusername=alice\npassword={TYPED}\n\n");
    let keys = |home: &Home| home.kw(&["list", "--json"]).ok().stdout;

    // No terminal (git run by an IDE): nothing offered, nothing kept.
    helper(&home, "git.example.test", "store", &input).ok();
    assert!(!keys(&home).contains("git-git.example.test"));

    // On a terminal: asked; "no" keeps nothing.
    let kw = std::fs::canonicalize(env!("CARGO_BIN_EXE_keyward")).expect("keyward");
    let line = format!(
        "printf '{}' | {} git-credential store",
        input.replace('\n', "\\n"),
        kw.display()
    );
    let (code, screen) = crate::aws::on_a_terminal(&home, &line, "n\n", &[]);
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("keep the password you typed for alice@git.example.test"),
        "{screen}"
    );
    assert!(!keys(&home).contains("git-git.example.test"));

    // A wrong code: not bound, and the password not kept either.
    let (code, screen) = crate::aws::on_a_terminal(&home, &line, "y\n000000\n", &[]);
    assert_ne!(code, 0, "{screen}");
    assert!(!keys(&home).contains("git-git.example.test"), "{screen}");

    // "yes" and a current code: a static key bound to git for that host.
    let (code, screen) =
        crate::aws::on_a_terminal(&home, &line, &format!("y\n{}\n", home.fresh_code()), &[]);
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("kept as 'git-git.example.test', bound to git for git.example.test"),
        "{screen}"
    );
    // git's next get is answered from the vault, with the user name git had.
    home.grant_tests("git-git.example.test");
    let got = helper(
        &home,
        "git.example.test",
        "get",
        "protocol=https\nhost=git.example.test\n\n",
    )
    .ok();
    assert!(
        got.stdout.contains(&format!("password={TYPED}\n")),
        "{}",
        got.stdout
    );
    assert!(got.stdout.contains("username=alice\n"), "{}", got.stdout);
    // Bound now: a second store is not offered again.
    let (code, screen) = crate::aws::on_a_terminal(&home, &line, "", &[]);
    assert_eq!(code, 0);
    assert!(!screen.contains("keep the password"), "{screen}");
    for f in home.all_files() {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap_or_default()).into_owned();
        assert!(
            !text.contains(TYPED),
            "the typed password in {}",
            f.display()
        );
    }
}
