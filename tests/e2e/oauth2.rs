//! OAuth2 clients: access tokens from a real authorization server (oidc-provider) through
//! `keyward cred oauth2`, used by the real curl against an API that checks them.

use std::process::Stdio;

use crate::support::{http_get_json, now, Home, OAuthServer};

/// Characters that must survive form- and Basic-encoding on their way to the server.
const SECRET: &str = "kw+Canary/Secret:1%&= ~-5b3c";

fn server() -> OAuthServer {
    OAuthServer::start(serde_json::json!([
        {"client_id": "ci-bot", "client_secret": SECRET, "scope": "deploy:read deploy:write"},
        {"client_id": "post-bot", "client_secret": "post-Secret-77", "auth": "post", "ttl": 600},
        {"client_id": "admin-bot", "client_secret": "admin-Secret-88", "scope": "admin"},
    ]))
}

fn add(home: &Home, srv: &OAuthServer, name: &str, extra: &[&str], secret: &str) {
    let mut args = vec![
        "add",
        "oauth2",
        name,
        "--token-url",
        &srv.token_url,
        "--owner",
        "platform-team",
    ];
    args.extend_from_slice(extra);
    home.kw_input(&args, &[secret]).ok();
}

fn cred_json(home: &Home, profile: &str) -> serde_json::Value {
    let out = home
        .kw(&["cred", "oauth2", "--profile", profile, "--format", "json"])
        .ok();
    serde_json::from_str(&out.stdout).expect("token JSON")
}

fn secs_left(expires_at: &str) -> i64 {
    let t = time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 expiry");
    t.unix_timestamp() - now() as i64
}

#[test]
fn curl_calls_an_api_with_a_token_keyward_got_and_the_secret_stays_in_the_vault() {
    let srv = server();
    let home = Home::new();
    home.init();
    home.unlock();
    add(
        &home,
        &srv,
        "ci",
        &[
            "--client-id",
            "ci-bot",
            "--scope",
            "deploy:read",
            "--introspection-url",
            &srv.introspection_url,
        ],
        SECRET,
    );
    let show = home.kw(&["show", "ci"]).ok().stdout;
    for want in [
        "oauth2",
        "ci-bot",
        &srv.token_url,
        "deploy:read",
        "client_secret_basic",
    ] {
        assert!(show.contains(want), "{want} missing from:\n{show}");
    }

    // A program without a grant and no terminal to ask on gets a one-line refusal.
    let refused = home.kw(&["cred", "oauth2", "--profile", "ci"]);
    let line = refused.one_line_error();
    assert!(
        line.contains("is not approved for OAuth2 key 'ci'"),
        "{line}"
    );
    assert!(refused.stdout.is_empty());
    home.grant_tests("ci");

    // "Test this key": the server's introspection confirms the client and the scope.
    let tested = home.kw(&["test", "ci"]).ok().stdout;
    assert!(
        tested.contains("client ci-bot (confirmed by introspection)")
            && tested.contains("scope 'deploy:read'")
            && tested.contains("valid until 20"),
        "{tested}"
    );
    assert_eq!(srv.tokens_issued(), 1);
    assert_eq!(srv.last_auth(), "basic", "HTTP Basic by default");

    // The header format, sent by the real curl to an API that checks the token.
    let header = home.path("header.txt");
    let out = home
        .kw(&["cred", "oauth2", "--profile", "ci", "--format", "header"])
        .ok();
    assert!(
        out.stdout.starts_with("Authorization: Bearer "),
        "{}",
        out.stdout
    );
    std::fs::write(&header, &out.stdout).expect("write header file");
    let (status, body) = http_get_json(&format!("{}/api/whoami", srv.issuer), Some(&header));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client_id"], "ci-bot");
    assert_eq!(body["scope"], "deploy:read");
    // Without the token, or with a made-up one, the API says no: the check above means something.
    std::fs::write(&header, "Authorization: Bearer made-up\n").expect("write");
    assert_eq!(
        http_get_json(&format!("{}/api/whoami", srv.issuer), Some(&header)).0,
        401
    );

    // The token Test got is reused from the cache: one upstream call so far.
    let json = cred_json(&home, "ci");
    let token = json["access_token"].as_str().expect("token").to_owned();
    let bare = home.kw(&["cred", "oauth2", "--profile", "ci"]).ok().stdout;
    assert_eq!(bare, format!("{token}\n"));
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["scope"], "deploy:read");
    let left = secs_left(json["expires_at"].as_str().expect("expires_at"));
    assert!((3000..=3600).contains(&left), "{left} s left");
    assert_eq!(srv.tokens_issued(), 1, "cached token reused");

    // Concurrent requests for an uncached profile share one upstream call.
    add(&home, &srv, "ci2", &["--client-id", "ci-bot"], SECRET);
    home.grant_tests("ci2");
    let children: Vec<_> = (0..6)
        .map(|_| {
            home.cmd(&["cred", "oauth2", "--profile", "ci2"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let tokens: Vec<String> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().expect("wait");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).into_owned()
        })
        .collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for all");
    assert_eq!(srv.tokens_issued(), 2, "single flight");

    // Locking wipes cached tokens: the next request goes to the server again.
    home.kw(&["lock"]).ok();
    home.unlock();
    home.grant_tests("ci");
    let fresh = cred_json(&home, "ci");
    assert_ne!(fresh["access_token"], json["access_token"]);
    assert_eq!(srv.tokens_issued(), 3);

    // The audit trail records each issuance without the token.
    let history = home.kw(&["history", "ci", "--json"]).ok().stdout;
    assert!(
        history.contains("\"issue\"") && history.contains("ci-bot"),
        "{history}"
    );
    // Neither the client secret nor any token is anywhere Keyward writes, nor in what it shows.
    let listed = home.kw(&["list", "--json"]).ok().stdout;
    let audit = home
        .kw(&["audit", "tail", "-n", "200", "--json"])
        .ok()
        .stdout;
    let tokens_seen = [token.as_str(), fresh["access_token"].as_str().expect("t")];
    for text in [&show, &tested, &listed, &audit, &history] {
        assert!(!text.contains(SECRET), "client secret shown");
        for t in tokens_seen {
            assert!(!text.contains(t), "token shown");
        }
    }
    for file in home.all_files() {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        if file == header {
            continue;
        }
        assert!(
            !text.contains(SECRET),
            "client secret in {}",
            file.display()
        );
        assert!(
            !text.contains("Canary"),
            "client secret in {}",
            file.display()
        );
        for t in tokens_seen {
            assert!(!text.contains(t), "token in {}", file.display());
        }
    }
}

#[test]
fn post_auth_short_tokens_and_every_refusal_is_one_line() {
    let srv = server();
    let home = Home::new();
    home.init();
    home.unlock();

    // client_secret_post, and a server that issues 10-minute tokens: handed out, never cached
    // (a cached credential always has 20 minutes left).
    add(
        &home,
        &srv,
        "post",
        &["--client-id", "post-bot", "--auth", "post"],
        "post-Secret-77",
    );
    home.grant_tests("post");
    let a = cred_json(&home, "post");
    assert_eq!(srv.last_auth(), "post", "id and secret sent in the body");
    let left = secs_left(a["expires_at"].as_str().expect("expires_at"));
    assert!((500..=600).contains(&left), "{left} s left");
    assert!(a["scope"].is_null(), "the server named no scope: {a}");
    let b = cred_json(&home, "post");
    assert_ne!(a["access_token"], b["access_token"]);
    assert_eq!(srv.tokens_issued(), 2);

    // The server's refusals reach the tool as one line naming the cause; nothing on stdout.
    let refusals: [(&str, &[&str], &str, &str); 2] = [
        (
            "wrong-secret",
            &["--client-id", "ci-bot"],
            "not-the-secret",
            "invalid_client",
        ),
        (
            "wrong-scope",
            &["--client-id", "ci-bot", "--scope", "admin"],
            SECRET,
            "invalid_scope",
        ),
    ];
    for (name, extra, secret, code) in refusals {
        add(&home, &srv, name, extra, secret);
        home.grant_tests(name);
        let r = home.kw(&["cred", "oauth2", "--profile", name]);
        let line = r.one_line_error();
        assert!(
            line.contains(&format!(
                "the token endpoint refused client 'ci-bot' (key '{name}')"
            )) && line.contains(code),
            "{line}"
        );
        assert!(r.stdout.is_empty());
        assert!(!line.contains(SECRET) && !line.contains(secret));
    }
    assert_eq!(srv.tokens_issued(), 2, "refused requests issue nothing");

    // Rotating in the right secret fixes the key.
    home.kw_input(&["rotate", "wrong-secret"], &[SECRET]).ok();
    assert!(cred_json(&home, "wrong-secret")["access_token"].is_string());
    let shown = home.kw(&["show", "wrong-secret"]).ok().stdout;
    assert!(!shown.contains("Rotated:          never"), "{shown}");

    // A token endpoint that redirects is not followed: the secret would go where it points.
    let moved = format!("{}/test/redirect", srv.issuer);
    home.kw_input(
        &[
            "add",
            "oauth2",
            "moved",
            "--client-id",
            "ci-bot",
            "--token-url",
            &moved,
        ],
        &[SECRET],
    )
    .ok();
    home.grant_tests("moved");
    let before = srv.tokens_issued();
    let line = home
        .kw(&["cred", "oauth2", "--profile", "moved"])
        .one_line_error();
    assert!(
        line.contains("the server redirects (HTTP 307) to http://127.0.0.1:")
            && line.contains("not followed"),
        "{line}"
    );
    assert_eq!(srv.tokens_issued(), before, "the redirect was not followed");

    // An unreachable server.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{closed}/token");
    home.kw_input(
        &[
            "add",
            "oauth2",
            "down",
            "--client-id",
            "x",
            "--token-url",
            &url,
        ],
        &["s"],
    )
    .ok();
    home.grant_tests("down");
    let line = home
        .kw(&["cred", "oauth2", "--profile", "down"])
        .one_line_error();
    assert!(line.contains("cannot connect"), "{line}");

    // Bad settings are refused before anything is stored.
    for (args, want) in [
        (
            vec![
                "--client-id",
                "x",
                "--token-url",
                "http://auth.example.com/token",
            ],
            "use https://",
        ),
        (
            vec![
                "--client-id",
                "x",
                "--token-url",
                "https://u:p@auth.example.com/t",
            ],
            "no user name, password",
        ),
        (
            vec![
                "--client-id",
                "x",
                "--token-url",
                "https://a.example/t",
                "--scope",
                "a\"b",
            ],
            "invalid scope",
        ),
    ] {
        let mut all = vec!["add", "oauth2", "bad"];
        all.extend(args);
        let line = home.kw_input(&all, &["s3cret"]).one_line_error();
        assert!(line.contains(want), "{line}");
    }
    // Secrets OAuth2 does not allow: empty, or not printable ASCII.
    for (secret, want) in [
        ("", "client secret"),
        ("caf\u{e9}-secret", "printable ASCII"),
    ] {
        let line = home
            .kw_input(
                &[
                    "add",
                    "oauth2",
                    "bad",
                    "--client-id",
                    "x",
                    "--token-url",
                    &srv.token_url,
                ],
                &[secret],
            )
            .one_line_error();
        assert!(line.contains(want), "{line}");
    }
    assert!(!home.kw(&["list"]).ok().stdout.contains("bad"));

    // Asking for the wrong kind of credential, or testing a plain token, says what to do.
    let line = home
        .kw(&["cred", "aws", "--profile", "post"])
        .one_line_error();
    assert!(line.contains("oauth2"), "{line}");
    home.kw_input(&["add", "static", "tok"], &["static-value"])
        .ok();
    let line = home.kw(&["test", "tok"]).one_line_error();
    assert!(
        line.contains("only AWS, OAuth2 and Alibaba Cloud keys"),
        "{line}"
    );
    let line = home
        .kw(&["cred", "oauth2", "--profile", "tok"])
        .one_line_error();
    assert!(line.contains("static"), "{line}");
}

#[test]
fn without_introspection_test_names_the_configured_client() {
    let srv = server();
    let home = Home::new();
    home.init();
    home.unlock();
    add(&home, &srv, "plain", &["--client-id", "ci-bot"], SECRET);
    home.grant_tests("plain");
    let out = home.kw(&["test", "plain"]).ok().stdout;
    assert!(
        out.contains("client ci-bot (no introspection URL to confirm it)")
            && out.contains("valid until"),
        "{out}"
    );
    // Introspection pointed at the wrong endpoint is reported, not passed.
    let bogus = format!("{}/api/whoami", srv.issuer);
    add(
        &home,
        &srv,
        "bogus",
        &["--client-id", "ci-bot", "--introspection-url", &bogus],
        SECRET,
    );
    home.grant_tests("bogus");
    let line = home.kw(&["test", "bogus"]).one_line_error();
    assert!(line.contains("introspection for 'bogus'"), "{line}");
}
