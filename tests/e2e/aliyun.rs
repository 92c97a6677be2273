//! Alibaba Cloud: the official credentials SDK reads the `External` profile `keyward setup
//! aliyun` writes, gets the STS token Keyward obtained from an STS stand-in that checks V3
//! signatures with the SDK's own signing code, and the STS SDK signs with it; `keyward exec`
//! hands the same to a child in the `ALIBABA_CLOUD_*` variables. What the SDK saves back into
//! `~/.aliyun/config.json` is taken out again.

use std::process::Command;

use crate::support::{client_of_python_script, python, support_script, Home, Run};

// Generated for the tests: the shape of a RAM user's AccessKey, no real account behind it.
const AK_ID: &str = "LTAI5tKwTestAliyun0001";
const AK_SECRET: &str = "kwAliyunCanary0123456789abcdef";
const ROLE: &str = "acs:ram::1234567890123456:role/deploy";

fn sdk(home: &Home, source: &str, endpoint: &str, extra: &[(&str, &str)]) -> Run {
    let mut c = Command::new(python());
    home.env(&mut c);
    c.arg(support_script("aliyun_sdk.py"))
        .args([source, endpoint])
        .env("ALIBABA_CLOUD_PROFILE", "prod")
        .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true");
    for (k, v) in extra {
        c.env(k, v);
    }
    Run::from_output(c.output().expect("run the SDK client"))
}

fn sts_log(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("log line"))
        .collect()
}

/// The STS stand-in for this test's home: it, its request log and its endpoint.
fn stand_in(home: &Home) -> (crate::support::ScriptServer, std::path::PathBuf, String) {
    let log = home.path("sts.log");
    let sts = crate::support::serve_script(
        "aliyun_sts.py",
        &[AK_ID.as_ref(), AK_SECRET.as_ref(), log.as_os_str()],
    );
    let endpoint = format!("http://127.0.0.1:{}", sts.port);
    (sts, log, endpoint)
}

#[test]
fn the_alibaba_cloud_sdk_gets_an_sts_token_through_the_external_profile_and_keeps_none_on_disk() {
    let home = Home::new();
    home.init();
    home.unlock();
    let (_sts, log, endpoint) = stand_in(&home);
    let add = |name: &str, secret: &str, role: bool| {
        let mut args = vec!["add", "aliyun", name, "--access-key-id", AK_ID];
        args.extend_from_slice(&["--region", "cn-hangzhou", "--sts-endpoint", &endpoint]);
        if role {
            args.extend_from_slice(&["--role-arn", ROLE]);
        }
        home.kw_input(&args, &[secret]).ok()
    };
    add("prod", AK_SECRET, true);
    // Bad input: one line each, nothing stored.
    let bad = home.kw_input(
        &[
            "add",
            "aliyun",
            "bad",
            "--access-key-id",
            "AKIAKEYWARDTEST001",
        ],
        &[AK_SECRET],
    );
    assert!(bad.one_line_error().contains("LTAI"), "{}", bad.stderr);
    let bad = home.kw_input(
        &[
            "add",
            "aliyun",
            "bad",
            "--access-key-id",
            AK_ID,
            "--role-arn",
            "arn:aws:iam::123456789012:role/x",
        ],
        &[AK_SECRET],
    );
    assert!(bad.one_line_error().contains("acs:ram::"), "{}", bad.stderr);

    // A wrong secret: the stand-in refuses the signature; Keyward says so in one line.
    add("wrong", "kwWrongSecret0123456789abcdefg", true);
    home.grant_tests("wrong");
    let refused = home.kw(&["cred", "aliyun", "--profile", "wrong"]);
    let line = refused.one_line_error();
    assert!(line.contains("SignatureDoesNotMatch"), "{line}");
    assert!(refused.stdout.is_empty());

    // setup aliyun: the External profile, beside a profile the user already had.
    let config = home.path("home/.aliyun/config.json");
    std::fs::create_dir_all(config.parent().expect("dir")).expect("mkdir");
    std::fs::write(
        &config,
        r#"{"current":"","profiles":[{"name":"other","mode":"OAuth","region_id":"cn-beijing"}],"meta_path":""}"#,
    )
    .expect("config");
    let set = home.kw(&["setup", "aliyun", "prod"]).ok();
    assert!(
        set.stdout.contains("profile 'prod' now runs"),
        "{}",
        set.stdout
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).expect("read")).expect("json");
    let keyward = std::fs::canonicalize(env!("CARGO_BIN_EXE_keyward")).expect("keyward");
    let prod = &written["profiles"][1];
    assert_eq!(prod["mode"], "External");
    assert_eq!(
        prod["process_command"],
        format!("{} cred aliyun --profile prod", keyward.display())
    );
    assert_eq!(prod["region_id"], "cn-hangzhou");
    assert_eq!(written["profiles"][0]["name"], "other");
    assert_eq!(written["current"], "prod");

    // The SDK runs keyward; not approved, no terminal: it fails, with Keyward's line.
    let first = sdk(&home, "profile", &endpoint, &[]);
    assert_ne!(first.status, 0);
    assert!(
        first
            .stderr
            .contains("is not approved for Alibaba Cloud key 'prod'"),
        "{}",
        first.stderr
    );
    home.grant(
        &client_of_python_script(&support_script("aliyun_sdk.py")),
        "prod",
    );
    let ok = sdk(&home, "profile", &endpoint, &[]).ok();
    let got: serde_json::Value = serde_json::from_str(ok.stdout.trim()).expect("json");
    let sts_id = got["access_key_id"].as_str().expect("id").to_owned();
    assert!(sts_id.starts_with("STS."), "{got}");
    assert_eq!(got["security_token"], true);
    assert_eq!(got["arn"], ROLE, "STS knew the token the SDK signed with");
    let calls = sts_log(&log);
    let issued: Vec<_> = calls
        .iter()
        .filter(|c| c["action"] == "AssumeRole" && c["ok"] == true)
        .collect();
    assert_eq!(issued.len(), 1, "{calls:?}");
    assert_eq!(issued[0]["access_key_id"], sts_id.as_str());
    assert_eq!(issued[0]["session"], "keyward-prod");
    let sts_secret = issued[0]["secret"].as_str().expect("secret").to_owned();
    let sts_token = issued[0]["token"].as_str().expect("token").to_owned();
    assert!(calls.iter().any(|c| c["action"] == "GetCallerIdentity"
        && c["ok"] == true
        && c["access_key_id"] == sts_id.as_str()));

    // The SDK saved the token into the profile; Keyward's clean-up takes it out again.
    let mut clean = false;
    for _ in 0..50 {
        let text = std::fs::read_to_string(&config).expect("config");
        if !text.contains(&sts_token) && !text.contains("sts_token") {
            clean = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        clean,
        "{}",
        std::fs::read_to_string(&config).unwrap_or_default()
    );

    // Again: the same token, from the agent's cache; STS is not asked again.
    let again = sdk(&home, "profile", &endpoint, &[]).ok();
    let got: serde_json::Value = serde_json::from_str(again.stdout.trim()).expect("json");
    assert_eq!(got["access_key_id"], sts_id.as_str());

    // exec: the child's SDK reads the variables, a stale token in the shell is not passed on.
    let (py, script) = (
        python(),
        support_script("aliyun_sdk.py").display().to_string(),
    );
    let mut cmd = home.cmd(&["exec", "aliyun:prod", "--", &py, &script, "env", &endpoint]);
    cmd.env("ALIBABA_CLOUD_SECURITY_TOKEN", "stale-token-from-the-shell")
        .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true");
    let child = Run::from_output(cmd.output().expect("exec")).ok();
    let got: serde_json::Value = serde_json::from_str(child.stdout.trim()).expect("json");
    assert_eq!(got["access_key_id"], sts_id.as_str());
    assert_eq!(got["arn"], ROLE);
    let assumed = sts_log(&log)
        .iter()
        .filter(|c| c["action"] == "AssumeRole" && c["ok"] == true)
        .count();
    assert_eq!(assumed, 1, "every answer came from the one token");

    // A key without a role: AK mode for cred and exec, no External profile for it.
    add("ak", AK_SECRET, false);
    home.grant_tests("ak");
    let out = home.kw(&["cred", "aliyun", "--profile", "ak"]).ok();
    let ak: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(ak["mode"], "AK");
    assert_eq!(ak["access_key_id"], AK_ID);
    assert!(ak.get("sts_token").is_none(), "{ak}");
    let refused = home.kw(&["setup", "aliyun", "ak"]).one_line_error();
    assert!(refused.contains("no RAM role"), "{refused}");

    // `keyward test`: STS says whose the credentials are (the role for a token, the RAM user
    // for an AccessKey), checked with a request signed by what was issued.
    home.grant_tests("prod");
    let tested = home.kw(&["test", "prod"]).ok();
    assert!(tested.stdout.contains(ROLE), "{}", tested.stdout);
    let tested = home.kw(&["test", "ak"]).ok();
    assert!(
        tested
            .stdout
            .contains("acs:ram::1234567890123456:user/keyward-test"),
        "{}",
        tested.stdout
    );

    // Nothing long-lived and no token in any file (config, logs, catalog, backups).
    for f in home.all_files() {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap_or_default()).into_owned();
        assert!(
            !text.contains(AK_SECRET),
            "the AccessKey secret in {}",
            f.display()
        );
        if f != log {
            assert!(
                !text.contains(&sts_secret) && !text.contains(&sts_token),
                "the STS token in {}",
                f.display()
            );
        }
    }
}

#[test]
fn import_vaults_the_plain_text_access_keys_and_takes_them_out_of_the_config() {
    let home = Home::new();
    home.init();
    home.unlock();
    let (_sts, log, endpoint) = stand_in(&home);
    let config = home.path("home/.aliyun/config.json");
    std::fs::create_dir_all(config.parent().expect("dir")).expect("mkdir");
    std::fs::write(
        &config,
        format!(
            r#"{{"current":"legacy","profiles":[
  {{"name":"legacy","mode":"AK","access_key_id":"{AK_ID}","access_key_secret":"{AK_SECRET}","region_id":"cn-hangzhou"}},
  {{"name":"deploy","mode":"RamRoleArn","access_key_id":"{AK_ID}","access_key_secret":"{AK_SECRET}","ram_role_arn":"{ROLE}","expired_seconds":1800,"region_id":"cn-shanghai"}},
  {{"name":"temp","mode":"StsToken","access_key_id":"STS.temporary","access_key_secret":"x","sts_token":"y"}}],"meta_path":""}}"#
        ),
    )
    .expect("config");

    // Without a terminal and without --remove-plaintext: imported, the file left as it was.
    let kept = home
        .kw(&[
            "import",
            "aliyun",
            "--profile",
            "legacy",
            "--sts-endpoint",
            &endpoint,
        ])
        .ok();
    assert!(kept.stdout.contains("Imported 'legacy'"), "{}", kept.stdout);
    assert!(kept.stdout.contains("stay in"), "{}", kept.stdout);
    assert!(std::fs::read_to_string(&config)
        .expect("config")
        .contains(AK_SECRET));
    home.kw(&["remove", "legacy", "--yes"]).ok();

    let out = home
        .kw(&[
            "import",
            "aliyun",
            "--remove-plaintext",
            "--sts-endpoint",
            &endpoint,
        ])
        .ok();
    for want in [
        "Imported 'legacy'",
        "Imported 'deploy'",
        "Skipped 'temp': it holds a temporary STS token",
        "Profile 'deploy' now gets STS tokens from Keyward",
        "Profile 'legacy' removed",
    ] {
        assert!(out.stdout.contains(want), "{want}: {}", out.stdout);
    }
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(!text.contains(AK_SECRET), "{text}");
    let written: serde_json::Value = serde_json::from_str(&text).expect("json");
    let names: Vec<&str> = written["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["deploy", "temp"]);
    assert_eq!(written["profiles"][0]["mode"], "External");
    assert_eq!(written["current"], "");
    // The backup is the old file, 0600; the command said where it is.
    let backup = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Backup (mode 0600, still holds the plaintext keys): "))
        .and_then(|l| l.split(" — ").next())
        .expect("backup line");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(backup)
        .expect("backup")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // What was imported works: the role and session length came along.
    let shown = home.kw(&["show", "deploy"]).ok();
    assert!(
        shown.stdout.contains(ROLE) && shown.stdout.contains("30m"),
        "{}",
        shown.stdout
    );
    home.grant_tests("deploy");
    let cred = home.kw(&["cred", "aliyun", "--profile", "deploy"]).ok();
    let c: serde_json::Value = serde_json::from_str(cred.stdout.trim()).expect("json");
    assert_eq!(c["mode"], "StsToken");
    let issued = sts_log(&log);
    assert_eq!(issued.last().expect("a call")["duration"], 1800);
}

#[test]
fn the_policy_refuses_an_access_key_without_a_role_caps_tokens_and_names_endpoints() {
    use crate::policy::{install, policy_dir, status_until};
    let dir = policy_dir();
    let path = dir.path().join("policy.toml");
    let home = Home::with_env(&[("KEYWARD_POLICY", path.to_str().expect("utf-8"))]);
    home.init();
    home.unlock();
    let (_sts, log, endpoint) = stand_in(&home);
    for (name, role) in [("prod", Some(ROLE)), ("ak", None)] {
        let mut args = vec!["add", "aliyun", name, "--access-key-id", AK_ID];
        args.extend_from_slice(&["--sts-endpoint", &endpoint]);
        if let Some(r) = role {
            args.extend_from_slice(&["--role-arn", r]);
        }
        home.kw_input(&args, &[AK_SECRET]).ok();
        home.grant_tests(name);
    }
    let policy = format!(
        "[defaults]\nstatic_leases = false\nmax_credential_ttl_secs = 900\nallowed_sts_endpoints = [\"{endpoint}\"]\n"
    );
    install(&path, &policy);
    status_until(&home, "the policy was not picked up", |s| {
        !s["policy"]["sha256"].is_null()
    });
    let line = home
        .kw(&["cred", "aliyun", "--profile", "ak"])
        .one_line_error();
    assert!(
        line.contains("no RAM role") && line.contains("defaults: static_leases = false"),
        "{line}"
    );
    home.kw(&["cred", "aliyun", "--profile", "prod"]).ok();
    let asked = sts_log(&log);
    assert_eq!(
        asked.len(),
        1,
        "the AccessKey refused before any call: {asked:?}"
    );
    assert_eq!(asked[0]["duration"], 900, "the policy's longest life");

    // Only Alibaba Cloud's own endpoint: this key's is refused, naming it.
    install(&path, "[defaults]\nallowed_sts_endpoints = [\"aliyun\"]\n");
    status_until(&home, "the second policy was not picked up", |s| {
        s["policy"]["defaults"]
            .as_array()
            .is_some_and(|d| d.len() == 1)
    });
    let line = home
        .kw(&["cred", "aliyun", "--profile", "prod"])
        .one_line_error();
    assert!(
        line.contains(&format!("its STS endpoint {endpoint} is not one"))
            && line.contains("allowed_sts_endpoints = [aliyun]"),
        "{line}"
    );
}
