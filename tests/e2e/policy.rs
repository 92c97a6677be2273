//! `keyward policy check`: what an admin runs on a policy file before rolling it out.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{Home, OAuthServer};

#[test]
fn a_valid_policy_is_described_and_a_broken_one_named_by_line_and_reason() {
    let home = Home::new();
    let good = home.path("policy.toml");
    std::fs::write(
        &good,
        "[defaults]\nmax_key_age_days = 90\nenforcement = \"warn\"\n\n[[rule]]\nname = \"prod-aws\"\nkinds = [\"aws\"]\ntags = [\"prod\"]\n[rule.limits]\nmax_key_age_days = 30\nenforcement = \"block\"\n",
    )
    .expect("write");
    let out = home
        .kw(&["policy", "check", good.to_str().expect("utf-8")])
        .ok();
    assert!(
        out.stdout
            .contains("a valid policy (defaults and 1 rule(s): prod-aws)"),
        "{}",
        out.stdout
    );

    let bad = home.path("typo.toml");
    std::fs::write(
        &bad,
        "[defaults]\nmax_key_age_days = 90\nmax_age_days = 30\n",
    )
    .expect("write");
    let line = home
        .kw(&["policy", "check", bad.to_str().expect("utf-8")])
        .one_line_error();
    assert!(
        line.contains(&format!(
            "{} line 3: unknown field `max_age_days`",
            bad.display()
        )),
        "{line}"
    );

    let missing = home.path("nowhere.toml");
    let line = home
        .kw(&["policy", "check", missing.to_str().expect("utf-8")])
        .one_line_error();
    assert!(
        line.contains("cannot read") && line.contains("nowhere.toml"),
        "{line}"
    );
}

/// A directory for a policy file that the agent trusts: root's, under the build directory
/// (not /tmp, which everyone may write, so a file under it is refused).
pub(crate) fn policy_dir() -> tempfile::TempDir {
    assert!(
        rustix::process::getuid().is_root(),
        "the policy tests run as root: an admin policy must be root's file"
    );
    tempfile::Builder::new()
        .prefix("kw-policy-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("policy dir")
}

/// Writes `text` as the policy the way a config-management tool does: to a temporary file in
/// the same directory, then renamed over it.
pub(crate) fn install(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write policy");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::rename(&tmp, path).expect("rename policy");
}

/// Waits until `status --json` satisfies `done` (a reload is due within a second; this allows
/// a slow machine ten), and returns it.
pub(crate) fn status_until(
    home: &Home,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    status_within(home, std::time::Duration::from_secs(10), what, done)
}

/// Waits up to `limit` until `status --json` satisfies `done`, and returns it.
pub(crate) fn status_within(
    home: &Home,
    limit: std::time::Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let s = home.status();
        if done(&s) {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {s:#}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(text.as_bytes()))
}

const BLOCK_PROD: &str = "[defaults]\nenforcement = \"warn\"\n\n[[rule]]\nname = \"prod-keys\"\ntags = [\"prod\"]\n[rule.limits]\nenforcement = \"block\"\n";

#[test]
fn a_policy_change_takes_effect_is_audited_and_blocks_an_expired_prod_key_by_name() {
    let dir = policy_dir();
    let path = dir.path().join("policy.toml");
    let home = Home::with_env(&[("KEYWARD_POLICY", path.to_str().expect("utf-8"))]);
    let srv = OAuthServer::start(serde_json::json!([
        {"client_id": "deploy-bot", "client_secret": "deploy-Secret-41"},
    ]));
    home.init();
    home.unlock();
    home.kw_input(
        &[
            "add",
            "oauth2",
            "deploy",
            "--token-url",
            &srv.token_url,
            "--client-id",
            "deploy-bot",
            "--tag",
            "prod",
            "--expires",
            "2026-01-01T00:00:00Z",
        ],
        &["deploy-Secret-41"],
    )
    .ok();
    home.grant_tests("deploy");
    // No policy file: no policy, and an expired key still issues (the user's own expiry warns).
    let s = home.status();
    assert_eq!(s["policy"]["sha256"], serde_json::Value::Null, "{s:#}");
    home.kw(&["cred", "oauth2", "--profile", "deploy"]).ok();
    let text = home.kw(&["status"]).stdout;
    assert!(
        text.contains("Policy:   none set by an administrator"),
        "{text}"
    );

    // The admin installs a policy: in force without a restart, with the file's hash.
    install(&path, BLOCK_PROD);
    let want = sha256_hex(BLOCK_PROD);
    let s = status_until(&home, "the policy was not picked up", |s| {
        s["policy"]["sha256"] == want.as_str()
    });
    assert_eq!(s["policy"]["rules"][0]["name"], "prod-keys");
    assert_eq!(s["keys"]["expired"], 1);
    assert_eq!(s["keys"]["attention"][0]["standing"]["blocked"], true);
    // Cached or not, the key issues nothing, and the refusal says what to do.
    let line = home
        .kw(&["cred", "oauth2", "--profile", "deploy"])
        .one_line_error();
    assert!(
        line.contains("'deploy' issues no credentials: expired on 2026-01-01")
            && line.contains("rule 'prod-keys': enforcement = \"block\"")
            && line.contains("rotate it: keyward rotate deploy"),
        "{line}"
    );
    let status = home.kw(&["status"]);
    assert_eq!(
        status.status, 2,
        "an expired key: exit 2\n{}",
        status.stdout
    );
    assert!(
        status
            .stdout
            .contains("BLOCKED: rotate it: keyward rotate deploy")
            && status.stdout.contains(&format!("sha256 {}", &want[..16])),
        "{}",
        status.stdout
    );

    // Back to warn: issues again.
    let warn = BLOCK_PROD.replace("\"block\"", "\"warn\"");
    install(&path, &warn);
    let want_warn = sha256_hex(&warn);
    status_until(&home, "the second change was not picked up", |s| {
        s["policy"]["sha256"] == want_warn.as_str()
    });
    home.kw(&["cred", "oauth2", "--profile", "deploy"]).ok();

    // Every change is in the audit trail with the file's hash; the refusal too.
    let tail = home.kw(&["audit", "tail", "-n", "100", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&tail.stdout).expect("json");
    let loaded: Vec<&str> = rows
        .iter()
        .filter(|r| r["action"] == "policy.loaded")
        .filter_map(|r| r["detail"]["sha256"].as_str())
        .collect();
    assert!(
        loaded.contains(&want.as_str()) && loaded.contains(&want_warn.as_str()),
        "{rows:#?}"
    );
    assert!(
        rows.iter().any(|r| r["action"] == "issue"
            && r["outcome"] == "refused"
            && r["detail"]["reason"]
                .as_str()
                .is_some_and(|m| m.contains("prod-keys"))),
        "the refusal is audited: {rows:#?}"
    );
}

#[test]
fn a_broken_or_writable_policy_keeps_the_last_good_one_and_says_why() {
    let dir = policy_dir();
    let path = dir.path().join("policy.toml");
    install(&path, BLOCK_PROD);
    let home = Home::with_env(&[("KEYWARD_POLICY", path.to_str().expect("utf-8"))]);
    home.init();
    let good = sha256_hex(BLOCK_PROD);
    let s = home.status();
    assert_eq!(s["policy"]["sha256"], good.as_str(), "read at start: {s:#}");

    // A typo: refused with the line and the reason; the last good policy stays.
    install(
        &path,
        "[defaults]\nenforcement = \"warn\"\nmax_age_days = 3\n",
    );
    let s = status_until(&home, "the broken file was not noticed", |s| {
        !s["policy"]["refused"].is_null()
    });
    let refused = s["policy"]["refused"].as_str().expect("reason");
    assert!(
        refused.contains("line 3: unknown field `max_age_days`"),
        "{refused}"
    );
    assert_eq!(s["policy"]["sha256"], good.as_str(), "last good kept");
    let text = home.kw(&["status"]).stdout;
    assert!(
        text.contains("refused:") && text.contains("the last good policy stays in force"),
        "{text}"
    );

    // Fixed, but left writable by everyone: refused, and the message says how to fix it.
    install(&path, BLOCK_PROD);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let s = status_until(&home, "the writable file was not refused", |s| {
        s["policy"]["refused"]
            .as_str()
            .is_some_and(|r| r.contains("not trusted"))
    });
    let refused = s["policy"]["refused"].as_str().expect("reason");
    assert!(
        refused.contains("everyone may write it") && refused.contains("chmod 644"),
        "{refused}"
    );
    assert_eq!(s["policy"]["sha256"], good.as_str());

    // An agent that starts on a broken file has no good policy: it issues nothing, and says so.
    home.kw(&["agent", "stop"]).ok();
    let s = home.status();
    assert_eq!(s["policy"]["unusable"], true, "{s:#}");
    home.unlock();
    home.kw_input(
        &[
            "add",
            "oauth2",
            "ci",
            "--token-url",
            "http://127.0.0.1:9/token",
            "--client-id",
            "ci",
        ],
        &["ci-Secret-1"],
    )
    .ok();
    let line = home
        .kw(&["cred", "oauth2", "--profile", "ci"])
        .one_line_error();
    assert!(
        line.contains("nothing is issued while the administrator's policy cannot be used"),
        "{line}"
    );
    let tail = home
        .kw(&["audit", "tail", "-n", "100", "--json"])
        .ok()
        .stdout;
    assert!(tail.contains("policy.refused"), "{tail}");
}

#[test]
fn status_exits_by_the_worst_key_state() {
    let home = Home::new();
    home.init();
    home.unlock();
    let code = |home: &Home| home.kw(&["status"]).status;
    assert_eq!(code(&home), 0, "no keys: all ok");
    home.kw_input(&["add", "static", "calm"], &["tok-value-1"])
        .ok();
    assert_eq!(code(&home), 0);
    home.kw_input(
        &["add", "static", "soon", "--rotate-every", "7d"],
        &["tok-value-2"],
    )
    .ok();
    assert_eq!(code(&home), 1, "due soon");
    home.kw_input(
        &["add", "static", "gone", "--expires", "2020-01-01T00:00:00Z"],
        &["tok-value-3"],
    )
    .ok();
    let out = home.kw(&["status"]);
    assert_eq!(out.status, 2, "expired");
    assert!(
        out.stdout
            .contains("Keys:     3 (1 ok, 1 due soon, 1 expired)")
            && out.stdout.contains("gone")
            && out.stdout.contains("expired on 2020-01-01"),
        "{}",
        out.stdout
    );
    let at = |needle: &str| out.stdout.find(needle).unwrap_or(usize::MAX);
    assert!(
        at("  gone ") < at("  soon "),
        "worst first:\n{}",
        out.stdout
    );
    // Its own failure is 3, not a key state.
    home.kw(&["agent", "stop"]).ok();
    std::fs::write(home.catalog(), vec![0x42u8; 16384]).expect("spoil");
    for side in ["-wal", "-shm"] {
        let mut p = home.catalog().into_os_string();
        p.push(side);
        let _ = std::fs::remove_file(p);
    }
    let out = home.kw(&["status"]);
    assert_eq!(out.status, 3, "{}{}", out.stdout, out.stderr);
}

#[test]
fn the_policy_caps_auto_lock_and_standing_grants_and_a_looser_setting_is_refused_by_name() {
    let dir = policy_dir();
    let path = dir.path().join("policy.toml");
    let home = Home::with_env(&[("KEYWARD_POLICY", path.to_str().expect("utf-8"))]);
    let srv = OAuthServer::start(serde_json::json!([
        {"client_id": "ci-bot", "client_secret": "ci-Secret-52"},
    ]));
    home.init();
    home.unlock();
    home.kw(&["settings", "auto-lock", "2h"]).ok();
    home.kw_input(
        &[
            "add",
            "oauth2",
            "ci",
            "--token-url",
            &srv.token_url,
            "--client-id",
            "ci-bot",
            "--tag",
            "prod",
        ],
        &["ci-Secret-52"],
    )
    .ok();
    // A grant given before the admin forbade them.
    home.grant_tests("ci");
    home.kw(&["cred", "oauth2", "--profile", "ci"]).ok();

    let text = "[defaults]\nauto_lock_max_secs = 1800\n\n[[rule]]\nname = \"prod-no-standing\"\ntags = [\"prod\"]\n[rule.limits]\nstanding_grants = false\n";
    install(&path, text);
    let want = sha256_hex(text);
    let s = status_until(&home, "the policy was not picked up", |s| {
        s["policy"]["sha256"] == want.as_str()
    });
    // The user's 2 h gives way to the admin's 30 min at once.
    assert_eq!(s["auto_lock_secs"], 1800, "{s:#}");
    let line = home.kw(&["settings", "auto-lock", "1h"]).one_line_error();
    assert!(
        line.contains(
            "auto_lock_max_secs = 3600 is looser than the administrator's policy (defaults: 1800)"
        ),
        "{line}"
    );
    home.kw(&["settings", "auto-lock", "10m"]).ok();
    assert_eq!(home.status()["auto_lock_secs"], 600, "stricter is taken");

    // The old grant no longer counts: the program is asked again (no terminal here: refused).
    let line = home
        .kw(&["cred", "oauth2", "--profile", "ci"])
        .one_line_error();
    assert!(
        !line.contains("issues no credentials"),
        "not a block: {line}"
    );
    assert!(line.contains("approv") || line.contains("allow"), "{line}");
    // And no new one is given, with the rule named.
    let code = home.fresh_code();
    let me = crate::support::this_test_binary();
    let out = home.kw_input(
        &["grants", "allow", "--exe", &me, "--profile", "ci"],
        &[&code],
    );
    let line = out.one_line_error();
    assert!(
        line.contains(
            "allows no standing grants for 'ci' (rule 'prod-no-standing': standing_grants = false)"
        ),
        "{line}"
    );
}

#[test]
fn the_policy_shortens_aws_sessions_and_allows_only_its_sts_endpoints() {
    let moto = crate::support::Moto::start();
    let dir = policy_dir();
    let path = dir.path().join("policy.toml");
    let home = Home::with_env(&[("KEYWARD_POLICY", path.to_str().expect("utf-8"))]);
    home.init();
    home.unlock();
    home.kw_input(
        &[
            "add",
            "aws",
            "deploy",
            "--access-key-id",
            &moto.access_key_id,
            "--sts-endpoint",
            &moto.endpoint,
        ],
        &[&moto.secret_access_key],
    )
    .ok();
    home.grant_tests("deploy");
    let left = |home: &Home| {
        let out = home.kw(&["cred", "aws", "--profile", "deploy"]).ok();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
        let exp = time::OffsetDateTime::parse(
            v["Expiration"].as_str().expect("exp"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("rfc 3339");
        (exp - time::OffsetDateTime::now_utc()).whole_seconds()
    };
    assert!(left(&home) > 3000, "the key's own hour");

    // Only AWS's own endpoint allowed: this key's (moto's) is refused, before any STS call.
    let only_aws = "[defaults]\nallowed_sts_endpoints = [\"aws\"]\n";
    install(&path, only_aws);
    let want = sha256_hex(only_aws);
    status_until(&home, "the policy was not picked up", |s| {
        s["policy"]["sha256"] == want.as_str()
    });
    let line = home
        .kw(&["cred", "aws", "--profile", "deploy"])
        .one_line_error();
    assert!(
        line.contains(&format!("its STS endpoint {} is not one the administrator's policy allows (defaults: allowed_sts_endpoints = [aws])", moto.endpoint)),
        "{line}"
    );

    // Allowed, and sessions at most 30 minutes: the cached hour-long one is dropped, the next
    // is asked for 1800 s.
    let capped = format!(
        "[defaults]\nallowed_sts_endpoints = [\"{}\"]\nmax_credential_ttl_secs = 1800\n",
        moto.endpoint
    );
    install(&path, &capped);
    let want = sha256_hex(&capped);
    status_until(&home, "the second policy was not picked up", |s| {
        s["policy"]["sha256"] == want.as_str()
    });
    let secs = left(&home);
    assert!(
        (1200..=1800).contains(&secs),
        "a session of at most 30 min: {secs} s left"
    );
}

#[test]
fn the_key_directory_exports_as_json_csv_and_one_page_without_a_secret() {
    let home = Home::new();
    home.init();
    home.unlock();
    home.kw_input(
        &[
            "add",
            "static",
            "gh-token",
            "--owner",
            "platform",
            "--purpose",
            "CI pushes",
            "--tag",
            "ci",
            "--rotate-every",
            "7d",
        ],
        &["ghp_SecretValue1234567890"],
    )
    .ok();
    home.kw_input(
        &[
            "add",
            "static",
            "old",
            "--purpose",
            "=cmd|' /C calc'!A0",
            "--expires",
            "2020-01-01T00:00:00Z",
        ],
        &["old-SecretValue-0987"],
    )
    .ok();
    let json = home.kw(&["report"]).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let keys = v["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    let gh = keys
        .iter()
        .find(|k| k["name"] == "gh-token")
        .expect("gh-token");
    assert_eq!(gh["owner"], "platform");
    assert_eq!(gh["state"], "due_soon");
    let csv_path = home.path("reports/keys.csv");
    std::fs::create_dir_all(home.path("reports")).expect("mkdir");
    home.kw(&[
        "report",
        "--format",
        "csv",
        "-o",
        csv_path.to_str().expect("utf-8"),
    ])
    .ok();
    let csv = std::fs::read_to_string(&csv_path).expect("csv written");
    assert!(
        csv.starts_with("name,kind,owner,purpose,tags,created,rotated"),
        "{csv}"
    );
    assert!(csv.contains("'=cmd|"), "a formula is defused: {csv}");
    let html_path = home.path("reports/keys.html");
    home.kw(&[
        "report",
        "--format",
        "html",
        "--output",
        html_path.to_str().expect("utf-8"),
    ])
    .ok();
    let html = std::fs::read_to_string(&html_path).expect("html written");
    assert!(html.contains("<tr class=\"expired\">") && html.contains("default-src 'none'"));
    for out in [&json, &csv, &html] {
        assert!(!out.contains("SecretValue"), "no secret in the directory");
    }
    // The page in a real browser (Debian's Chromium, headless): the rows are there once its
    // script ran, and a screenshot to look at (reports/keys.png in the test's home).
    let chromium = |args: &[&str]| {
        let out = std::process::Command::new("/usr/bin/chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .arg(format!(
                "--user-data-dir={}",
                home.path("chromium").display()
            ))
            .args(args)
            .arg(format!("file://{}", html_path.display()))
            .output()
            .expect("run chromium (scripts/deps installs it)");
        assert!(
            out.status.success(),
            "chromium {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = chromium(&["--dump-dom"]);
    assert!(
        dom.contains("<td>gh-token</td>") && dom.contains("<td>old</td>"),
        "{dom}"
    );
    assert!(dom.contains("Keyward key directory"));
    assert!(
        !dom.contains("SecretValue"),
        "no secret in what the browser shows"
    );
    let shot = home.path("reports/keys.png");
    chromium(&[
        "--window-size=1500,420",
        &format!("--screenshot={}", shot.display()),
    ]);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real picture"
    );
    if let Some(dir) = std::env::var_os("KEYWARD_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, dir).expect("copy the screenshot");
    }
    // Nowhere to write: one line, nothing left behind.
    let line = home
        .kw(&[
            "report",
            "-o",
            home.path("no/such/dir/keys.json").to_str().expect("utf-8"),
        ])
        .one_line_error();
    assert!(
        line.contains("cannot write") && line.contains("no/such/dir"),
        "{line}"
    );
    assert!(!home.path("no").exists());
}

#[test]
fn a_loop_of_ten_thousand_requests_is_cut_at_the_burst_while_another_program_is_served() {
    let dir = policy_dir();
    let path = dir.path().join("policy.toml");
    install(&path, "[defaults]\nrate_per_minute = 60\nrate_burst = 50\n");
    let home = Home::with_env(&[("KEYWARD_POLICY", path.to_str().expect("utf-8"))]);
    let srv = OAuthServer::start(serde_json::json!([
        {"client_id": "deploy-bot", "client_secret": "deploy-Secret-41"},
    ]));
    home.init();
    home.unlock();
    home.kw_input(
        &[
            "add",
            "oauth2",
            "deploy",
            "--token-url",
            &srv.token_url,
            "--client-id",
            "deploy-bot",
        ],
        &["deploy-Secret-41"],
    )
    .ok();
    let hammer = crate::support::support_script("hammer.py");
    home.grant(&crate::support::client_of_python_script(&hammer), "deploy");
    home.grant_tests("deploy");

    let out = std::process::Command::new(crate::support::python())
        .arg(&hammer)
        .arg(home.socket())
        .args(["deploy", "10000"])
        .output()
        .expect("run hammer.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("counts");
    let (ok, throttled) = (
        v["ok"].as_u64().expect("ok"),
        v["throttled"].as_u64().expect("n"),
    );
    let secs = v["secs"].as_f64().expect("secs");
    // The first token is a call to the provider (10), then 40 from the cache (1 each), then one
    // a second at the standing rate.
    assert!(
        ok >= 41 && (ok as f64) <= 41.0 + secs + 2.0,
        "{ok} passed in {secs:.1} s: {v}"
    );
    assert_eq!(ok + throttled, 10_000, "{v}");
    let message = v["message"].as_str().expect("message");
    assert!(
        message.contains("rate limit:")
            && message.contains("hammer.py")
            && message.contains("'deploy'")
            && message.contains("60 a minute")
            && message.contains("retry in"),
        "{message}"
    );
    // The provider was called a bounded number of times (the cache answered the rest).
    assert!(srv.tokens_issued() <= 2, "{} tokens", srv.tokens_issued());
    // Another program is served all along.
    home.kw(&["cred", "oauth2", "--profile", "deploy"]).ok();
    // Audited once for the whole run, not per refused request.
    let tail = home.kw(&["audit", "tail", "-n", "200", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&tail.stdout).expect("json");
    let throttled_rows = rows
        .iter()
        .filter(|r| r["action"] == "issue" && r["outcome"] == "throttled")
        .count();
    assert_eq!(throttled_rows, 1, "{}", tail.stdout.len());
    // `status` shows the limits in force.
    let s = home.status();
    assert!(
        s["policy"]["defaults"]
            .as_array()
            .expect("defaults")
            .iter()
            .any(|l| l["name"] == "rate_per_minute" && l["value"] == "60"),
        "{s:#}"
    );
}
