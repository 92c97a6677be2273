//! The security review's attacks on the catalog, made against the real binary and its agent as a
//! same-user process would make them: edit the SQLite file with plain SQL, then use Keyward as
//! usual. Each is refused with one line, and nothing goes where the edit pointed.

use std::net::TcpListener;

use crate::support::{Home, OAuthServer, PASSPHRASE};

/// A loopback port standing for the attacker's server; it only records whether anyone came.
struct Trap {
    listener: TcpListener,
}

impl Trap {
    fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        Trap { listener }
    }
    fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/steal",
            self.listener.local_addr().expect("addr").port()
        )
    }
    fn was_contacted(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

fn sql(home: &Home, statement: &str) {
    let db = rusqlite::Connection::open(home.catalog()).expect("open catalog");
    db.execute_batch(statement)
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

fn oauth_server() -> OAuthServer {
    OAuthServer::start(serde_json::json!([
        {"client_id": "ci-bot", "client_secret": "tamper-Secret-31", "scope": "deploy:read"},
    ]))
}

fn add_client(home: &Home, srv: &OAuthServer) {
    home.kw_input(
        &[
            "add",
            "oauth2",
            "ci",
            "--client-id",
            "ci-bot",
            "--token-url",
            &srv.token_url,
        ],
        &["tamper-Secret-31"],
    )
    .ok();
}

#[test]
fn an_edited_token_url_gets_no_request_and_no_secret() {
    let srv = oauth_server();
    let home = Home::new();
    home.init();
    home.unlock();
    add_client(&home, &srv);
    home.grant_tests("ci");
    let trap = Trap::new();
    sql(
        &home,
        &format!(
            "UPDATE entries SET config = json_set(config, '$.oauth2.token_url', '{}') WHERE name = 'ci'",
            trap.url()
        ),
    );
    for args in [
        &["test", "ci"][..],
        &["cred", "oauth2", "--profile", "ci"][..],
    ] {
        let r = home.kw(args);
        let line = r.one_line_error();
        assert!(
            line.contains(
                "the settings of key 'ci' were changed outside Keyward (oauth2.token_url)"
            ),
            "{args:?}: {line}"
        );
        assert!(r.stdout.is_empty() && !line.contains("tamper-Secret-31"));
    }
    assert!(!trap.was_contacted(), "Keyward connected to the edited URL");
    assert_eq!(srv.tokens_issued(), 0);
    let tail = home.kw(&["audit", "tail", "-n", "20"]).ok().stdout;
    assert!(
        tail.contains("tamper") && tail.contains("refused"),
        "{tail}"
    );
}

#[test]
fn testing_a_key_passes_the_approval_gate() {
    let srv = oauth_server();
    let home = Home::new();
    home.init();
    home.unlock();
    add_client(&home, &srv);
    // No grant and no terminal to ask on: refused before the secret goes anywhere.
    let r = home.kw(&["test", "ci"]);
    let line = r.one_line_error();
    assert!(line.contains("is not approved for key 'ci'"), "{line}");
    assert_eq!(
        srv.tokens_issued(),
        0,
        "nothing was sent to the token endpoint"
    );
    home.grant_tests("ci");
    let out = home.kw(&["test", "ci"]).ok().stdout;
    assert!(out.contains("'ci' works"), "{out}");
    assert_eq!(srv.tokens_issued(), 1);
}

#[test]
fn a_swapped_header_recipient_is_refused_at_unlock() {
    let home = Home::new();
    home.init();
    home.kw(&["agent", "stop"]).ok();
    let thief = age::x25519::Identity::generate().to_public().to_string();
    sql(
        &home,
        &format!("UPDATE vault SET header = json_set(header, '$.recipient', '{thief}')"),
    );
    // The agent that starts now has verified nothing: it does not encrypt to what the file says.
    let line = home
        .kw_input(&["add", "static", "gh"], &["ghp-canary-after-swap"])
        .one_line_error();
    assert!(line.contains("run `keyward unlock` once"), "{line}");
    let code = home.fresh_code();
    let line = home
        .kw_input(&["unlock"], &[PASSPHRASE, &code])
        .one_line_error();
    assert!(
        line.contains("the vault header was tampered with"),
        "{line}"
    );
    assert_eq!(home.status()["locked"], true);
}

#[test]
fn a_deleted_totp_step_does_not_let_a_used_code_in_again() {
    let home = Home::new();
    home.init();
    home.unlock();
    home.kw(&["lock"]).ok();
    let used = home.last_code();
    // The last step is kept in the keychain as well as in the catalog's row.
    sql(&home, "DELETE FROM totp_steps");
    let line = home
        .kw_input(&["unlock"], &[PASSPHRASE, &used])
        .one_line_error();
    assert!(line.contains("that code was already used"), "{line}");
}

#[test]
fn a_rewritten_audit_trail_fails_verification() {
    let home = Home::new();
    home.init();
    for name in ["a", "b", "c"] {
        home.kw_input(&["add", "static", name], &["value-1234"])
            .ok();
    }
    let ok = home.kw(&["audit", "verify"]).ok().stdout;
    assert!(ok.contains("verified"), "{ok}");
    home.kw(&["agent", "stop"]).ok();
    // Cut the newest rows: the chain that is left is intact, the keychain's anchor is not.
    sql(
        &home,
        "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq > (SELECT MAX(seq) - 3 FROM audit)",
    );
    let line = home.kw(&["audit", "verify"]).one_line_error();
    assert!(line.contains("the log was cut short"), "{line}");
}

// Replacing the agent: it must not start with code of another's choosing, nor open a window
// named by its caller, and stopping it is on record.

#[test]
fn the_agent_refuses_loader_variables_and_the_cli_starts_it_without_them() {
    let home = Home::new();
    let mut cmd = home.cmd(&["agent", "run"]);
    cmd.env("LD_LIBRARY_PATH", home.path("lib"));
    let r = crate::support::Run::from_output(cmd.output().expect("run the agent"));
    let line = r.one_line_error();
    assert!(line.contains("LD_LIBRARY_PATH is set"), "{line}");
    // A tool with LD_LIBRARY_PATH of its own still gets an agent: the CLI drops it.
    let mut cmd = home.cmd(&["status", "--json"]);
    cmd.env("LD_LIBRARY_PATH", home.path("lib"));
    let out = crate::support::Run::from_output(cmd.output().expect("status")).ok();
    assert!(out.stdout.contains("\"agent_pid\""), "{}", out.stdout);
    let pid = home.agent_pid();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&environ).contains("LD_LIBRARY_PATH="),
        "the agent inherited LD_LIBRARY_PATH"
    );
}

#[test]
fn the_window_the_agent_opens_is_not_named_by_its_caller() {
    let home = Home::new();
    let r = home.kw(&["agent", "start", "--tray", "--app", "/bin/sh"]);
    assert_ne!(r.status, 0);
    assert!(
        r.stderr.contains("unexpected argument '--app'"),
        "{}",
        r.stderr
    );
    assert!(!home.socket().exists(), "no agent was started");
}

#[test]
fn stopping_the_agent_is_audited_with_the_caller() {
    let home = Home::new();
    home.init();
    home.kw(&["agent", "stop"]).ok();
    let out = home.kw(&["audit", "tail", "-n", "5", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("json");
    let stop = rows
        .iter()
        .find(|r| r["action"] == "shutdown")
        .unwrap_or_else(|| panic!("no shutdown row: {}", out.stdout));
    let actor = &stop["actor"];
    assert!(actor["pid"].is_number(), "{actor}");
}

// A hostile endpoint: what it says reaches the terminal without anything a terminal acts on.

/// A small STS stand-in that answers every request with `status` and the body the Python
/// expression `body` makes, for as long as it lives.
struct HostileSts {
    child: std::process::Child,
    endpoint: String,
}

impl HostileSts {
    fn start(status: u16, body: &str) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let server = format!(
            r#"
import http.server
BODY = ({body}).encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length', 0)))
        self.send_response({status})
        self.send_header('Content-Type', 'text/xml')
        self.send_header('Content-Length', str(len(BODY)))
        self.end_headers()
        try:
            self.wfile.write(BODY)
        except OSError:
            pass
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#
        );
        let mut child = Command::new(crate::support::python())
            .args(["-c", &server])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the hostile endpoint");
        let mut port = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut port)
            .expect("port");
        let endpoint = format!("http://127.0.0.1:{}", port.trim());
        HostileSts { child, endpoint }
    }

    /// An unlocked vault with AWS key "prod" pointed at this endpoint, granted to the tests.
    fn home_using_it(&self) -> Home {
        let home = Home::new();
        home.init();
        home.unlock();
        home.kw_input(
            &[
                "add",
                "aws",
                "prod",
                "--access-key-id",
                &format!("AKIA{}", "KEYWARDHOSTILE01"),
                "--sts-endpoint",
                &self.endpoint,
            ],
            &["hostileSecrethostileSecrethostileSecret0"],
        )
        .ok();
        home.grant_tests("prod");
        home
    }
}

impl Drop for HostileSts {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_sts_error_with_terminal_escapes_is_shown_without_them() {
    let sts = HostileSts::start(
        403,
        r#"'<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>'
        '<Message>denied\x1b]0;owned\x07\x1b[2J\x9b31m\u202etxt.exe</Message></Error>'
        '<RequestId>1</RequestId></ErrorResponse>'"#,
    );
    let home = sts.home_using_it();
    let r = home.kw(&["cred", "aws", "--profile", "prod"]);
    let line = r.one_line_error();
    assert!(line.contains("AccessDenied: denied"), "{line:?}");
    assert!(
        !line
            .chars()
            .any(|c| c.is_control() || ('\u{202A}'..='\u{202E}').contains(&c)),
        "control characters reached the terminal: {line:?}"
    );
}

#[test]
fn an_oversized_sts_response_is_cut_off_not_buffered() {
    // A valid GetSessionToken answer padded to 8 MiB: read in full, it would be accepted.
    let sts = HostileSts::start(
        200,
        r#"'<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        '<GetSessionTokenResult><Credentials>'
        '<AccessKeyId>ASIAKEYWARDPADDED01</AccessKeyId>'
        '<SecretAccessKey>paddedSecretpaddedSecretpaddedSecret0000</SecretAccessKey>'
        '<SessionToken>padded-session-token</SessionToken>'
        '<Expiration>2099-01-01T00:00:00Z</Expiration>'
        '</Credentials></GetSessionTokenResult>' + ' ' * (8 * 1024 * 1024) +
        '<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>'
        '</GetSessionTokenResponse>'"#,
    );
    let home = sts.home_using_it();
    let r = home.kw(&["cred", "aws", "--profile", "prod"]);
    assert!(
        r.stdout.is_empty(),
        "credentials from an 8 MiB answer: {}",
        r.stdout
    );
    let line = r.one_line_error();
    assert!(
        line.contains("AWS STS refused the request for profile 'prod'"),
        "{line}"
    );
    assert_eq!(home.status()["locked"], false, "the agent keeps serving");
}

// Denial of service: a program holding connections open does not lock the user out.

#[test]
fn held_open_connections_do_not_stop_keyward_answering() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    let home = Home::new();
    home.init();
    // 300 connections from this one process, each kept alive with a ping every 2 s (inside the
    // agent's 10 s idle limit), for as long as the check below runs.
    let held: Vec<UnixStream> = (0..300)
        .filter_map(|_| UnixStream::connect(home.socket()).ok())
        .collect();
    assert!(held.len() >= 250, "connected {}", held.len());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pinger = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut conns: Vec<BufReader<UnixStream>> =
                held.into_iter().map(BufReader::new).collect();
            let round = |conns: &mut Vec<BufReader<UnixStream>>| {
                conns.retain_mut(|c| {
                    let mut line = String::new();
                    c.get_mut()
                        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
                        .is_ok()
                        && c.get_mut()
                            .write_all(b"{\"v\":1,\"req\":{\"op\":\"ping\"}}\n")
                            .is_ok()
                        // Alive means answered: a refused or evicted connection gets an
                        // error frame or the end of the stream.
                        && c.read_line(&mut line).is_ok_and(|n| n > 0)
                        && line.contains("\"pong\"")
                });
            };
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                round(&mut conns);
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
            // One more round once nothing new connects: a connection evicted while it was
            // answering a ping has closed by now.
            round(&mut conns);
            conns.len()
        })
    };
    std::thread::sleep(std::time::Duration::from_secs(1));
    // Answered (the client gives up with a one-line error if the agent does not answer).
    let s = home.status();
    assert_eq!(s["vault"], true);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let kept = pinger.join().expect("pinger");
    assert!(
        kept <= keyward_agent::server::MAX_CONNECTIONS_PER_PROCESS,
        "one process kept {kept} connections"
    );
}
