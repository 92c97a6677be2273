//! docker: the real docker CLI with Keyward as its credential helper (`credHelpers`), against an
//! HTTPS registry stub speaking the v2 token handshake: `keyward setup docker` vaults the login
//! docker kept in plain text, `docker manifest inspect` gets it through the approval gate,
//! `docker logout` unbinds, `docker login` vaults a new password; the helper protocol exactly as
//! docker speaks it; a registry no key is bound to gets nothing.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{path_with_helpers, self_signed, serve_script, Home, Run};

const PASSWORD: &str = "dockerLoginCanary0123456789";
const NEW_PASSWORD: &str = "dockerLoginCanaryRotated9876";

fn docker(home: &Home, args: &[&str], stdin: &str) -> Run {
    let mut c = Command::new("docker");
    home.env(&mut c);
    c.env("PATH", path_with_helpers(home))
        .env("DOCKER_CONFIG", home.path("docker"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run docker");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    Run::from_output(child.wait_with_output().expect("docker"))
}

/// The helper exactly as docker runs it: by its name, the request on stdin.
fn helper(home: &Home, action: &str, input: &str) -> Run {
    let mut c = Command::new(Path::new(&home.path("bin")).join("docker-credential-keyward"));
    home.env(&mut c);
    c.arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run helper");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    Run::from_output(child.wait_with_output().expect("helper"))
}

fn config(home: &Home) -> serde_json::Value {
    let text = std::fs::read_to_string(home.path("docker/config.json")).expect("config.json");
    serde_json::from_str(&text).expect("config.json is JSON")
}

fn registry_log(cert: &Path) -> String {
    std::fs::read_to_string(format!("{}.log", cert.display())).unwrap_or_default()
}

#[test]
fn docker_logs_in_and_pulls_through_keyward_and_a_registry_gets_only_its_own_key() {
    let home = Home::new();
    home.init();
    home.unlock();
    let (cert, key) = self_signed(&home, "registry");
    let reg = serve_script(
        "registry.py",
        &[
            cert.as_os_str(),
            key.as_os_str(),
            OsStr::new("alice"),
            OsStr::new(PASSWORD),
        ],
    );
    let host = format!("127.0.0.1:{}", reg.port);
    let image = format!("{host}/app:latest");

    // docker kept a login in plain text (as `docker login` does with no helper), beside other
    // settings.
    std::fs::create_dir_all(home.path("docker")).expect("mkdir");
    let auth = data_encoding::BASE64.encode(format!("alice:{PASSWORD}").as_bytes());
    std::fs::write(
        home.path("docker/config.json"),
        format!(
            "{{\n\t\"auths\": {{\n\t\t\"{host}\": {{\n\t\t\t\"auth\": \"{auth}\"\n\t\t}}\n\t}},\n\t\"psFormat\": \"table {{{{.ID}}}}\"\n}}"
        ),
    )
    .expect("config.json");

    // Without docker-credential-keyward on PATH, setup says how to get it and changes nothing.
    let docker_dir = home.path("docker");
    let env: [(&str, &Path); 1] = [("DOCKER_CONFIG", &docker_dir)];
    let missing = home.kw_input_env(&["setup", "docker", &host], &[], &env);
    assert!(
        missing
            .one_line_error()
            .contains("docker-credential-keyward is not on PATH"),
        "{}",
        missing.stderr
    );
    let path = path_with_helpers(&home);
    let env: [(&str, &Path); 2] = [("DOCKER_CONFIG", &docker_dir), ("PATH", &path)];
    let set = home
        .kw_input_env(&["setup", "docker", &host], &[], &env)
        .ok();
    assert!(set.stdout.contains("in the vault now"), "{}", set.stdout);
    let c = config(&home);
    assert_eq!(c["credHelpers"][&host], "keyward", "{c}");
    assert_eq!(c["psFormat"], "table {{.ID}}", "other settings kept: {c}");
    assert!(
        c["auths"].get(&host).is_none(),
        "plain-text login gone: {c}"
    );
    let backup = set
        .stdout
        .lines()
        .find_map(|l| l.split("kept as ").nth(1))
        .and_then(|l| l.split(' ').next())
        .expect("backup named");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(backup)
        .expect("backup")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "backup {backup}");
    let name = format!("docker-127.0.0.1-{}", reg.port);
    let listed = home.kw(&["list"]).ok();
    assert!(listed.stdout.contains(&name), "{}", listed.stdout);
    let shown = home.kw(&["show", &name]).ok();
    assert!(
        shown
            .stdout
            .contains(&format!("Helper:     docker for {host} (user alice)")),
        "{}",
        shown.stdout
    );

    // docker asks Keyward: not approved, no terminal → Keyward's line, naming docker.
    let refused = docker(&home, &["manifest", "inspect", &image], "");
    assert_ne!(refused.status, 0);
    assert!(
        !refused.stdout.contains("schemaVersion"),
        "{}",
        refused.stdout
    );
    let docker_exe = std::fs::canonicalize(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join("docker"))
            .find(|p| p.exists())
            .expect("docker on PATH"),
    )
    .expect("docker")
    .display()
    .to_string();
    // docker shows the registry's refusal, not the helper's line (it goes on without
    // credentials): the question waits in the app and the trail names docker.
    let trail = home.kw(&["audit", "tail", "-n", "20"]).ok();
    assert!(
        trail.stdout.contains(&format!(
            "docker asked for {name}: waiting for the user ({docker_exe})"
        )),
        "{}",
        trail.stdout
    );
    assert!(
        trail
            .stdout
            .contains(&format!("{name} answers docker for {host}")),
        "{}",
        trail.stdout
    );
    home.grant(&(docker_exe.clone(), None), &name);
    let pulled = docker(&home, &["manifest", "inspect", &image], "");
    assert_eq!(pulled.status, 0, "{}", pulled.stderr);
    assert!(pulled.stdout.contains("schemaVersion"), "{}", pulled.stdout);
    assert!(registry_log(&cert).contains("200 /token alice"));

    // The helper protocol as docker speaks it (from an approved program: this test).
    home.grant_tests(&name);
    let got = helper(&home, "get", &host).ok();
    let v: serde_json::Value = serde_json::from_str(&got.stdout).expect("get answers JSON");
    assert_eq!(v["ServerURL"], host.as_str());
    assert_eq!(v["Username"], "alice");
    assert_eq!(v["Secret"], PASSWORD);
    let listed = helper(&home, "list", "").ok();
    let v: serde_json::Value = serde_json::from_str(&listed.stdout).expect("list answers JSON");
    assert_eq!(v, serde_json::json!({ host.as_str(): "alice" }));
    assert!(helper(&home, "version", "")
        .ok()
        .stdout
        .starts_with("docker-credential-keyward"));
    // A registry no key is bound to gets the miss docker expects — even from an approved
    // program, whatever docker's config says: the binding is in the vault.
    let miss = helper(&home, "get", "https://evil.example/v2/");
    assert_eq!(miss.status, 1);
    assert_eq!(miss.stdout, "credentials not found in native keychain\n");
    let bad = helper(&home, "get", "user@evil.example");
    assert_ne!(bad.status, 0);
    assert!(
        bad.stdout.contains("not a registry address"),
        "{}",
        bad.stdout
    );
    assert!(!bad.stdout.contains(PASSWORD));

    // docker logout unbinds (docker calls erase for each spelling); the key stays.
    let out = docker(&home, &["logout", &host], "");
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(
        helper(&home, "get", &host).stdout,
        "credentials not found in native keychain\n"
    );
    assert!(home.kw(&["list"]).ok().stdout.contains(&name));

    // A wrong password: the registry refuses it, nothing is stored.
    let wrong = docker(
        &home,
        &["login", &host, "-u", "alice", "--password-stdin"],
        "not-the-password\n",
    );
    assert_ne!(wrong.status, 0);
    assert_eq!(
        helper(&home, "get", &host).stdout,
        "credentials not found in native keychain\n"
    );

    // docker login vaults the password (into the registry's key) and binds it again; the
    // config keeps no password.
    let login = docker(
        &home,
        &["login", &host, "-u", "alice", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(login.status, 0, "{}", login.stderr);
    assert!(login.stdout.contains("Login Succeeded"), "{}", login.stdout);
    assert!(!login.stderr.contains("unencrypted"), "{}", login.stderr);
    let pulled = docker(&home, &["manifest", "inspect", &image], "");
    assert_eq!(pulled.status, 0, "{}", pulled.stderr);
    // A new password from another login lands in the same key.
    helper(
        &home,
        "store",
        &format!(r#"{{"ServerURL":"{host}","Username":"alice","Secret":"{NEW_PASSWORD}"}}"#),
    )
    .ok();
    let got = helper(&home, "get", &format!("https://{host}")).ok();
    assert!(got.stdout.contains(NEW_PASSWORD), "{}", got.stdout);
    let listed = home.kw(&["list"]).ok();
    assert_eq!(
        listed.stdout.matches("docker-127.0.0.1").count(),
        1,
        "{}",
        listed.stdout
    );

    // Only the backup setup kept (0600, named when it was made) holds the old plain-text login;
    // no file holds a password in the clear.
    for f in home.all_files() {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap_or_default()).into_owned();
        assert!(!text.contains(PASSWORD), "the password in {}", f.display());
        assert!(
            !text.contains(NEW_PASSWORD),
            "the password in {}",
            f.display()
        );
        if f.to_string_lossy() != backup {
            assert!(!text.contains(&auth), "a docker login in {}", f.display());
        }
    }
    drop(reg);
}
