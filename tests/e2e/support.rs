//! Test support: a private home for each test (XDG dirs, runtime dir, AWS files), the real
//! `keyward` binary, TOTP codes computed as an authenticator app would, and a moto server.
//!
//! The keychain is the real gnome-keyring Secret Service that `scripts/with-keyring` starts in a
//! private D-Bus session around the whole test run.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const PASSPHRASE: &str = "orbit-maple-quartz-lantern-7";
pub const BIN: &str = env!("CARGO_BIN_EXE_keyward");

/// Fails loudly when the test run is not inside the private keyring session.
pub fn require_keyring() {
    assert_eq!(
        std::env::var("KEYWARD_TEST_KEYRING").as_deref(),
        Ok("1"),
        "end-to-end tests need the private gnome-keyring session: run them with scripts/test (or scripts/with-keyring cargo test)"
    );
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test, which installs and points at the test tools")
    })
}

/// One test's private world.
pub struct Home {
    pub dir: tempfile::TempDir,
    /// TOTP secret shown at init.
    pub totp_secret: Mutex<Option<String>>,
    /// Last TOTP step used, so the next unlock uses a fresh code.
    last_step: Mutex<u64>,
    pub recovery_codes: Mutex<Vec<String>>,
    extra_env: Vec<(String, String)>,
}

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(o: Output) -> Self {
        Run {
            status: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.status, 0,
            "command failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    /// Asserts a failure reported as exactly one `keyward: …` line; returns that line.
    #[track_caller]
    pub fn one_line_error(&self) -> String {
        assert_ne!(
            self.status, 0,
            "expected failure, got success: {}",
            self.stdout
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one error line, got: {:?}",
            self.stderr
        );
        assert!(lines[0].starts_with("keyward: "), "{}", lines[0]);
        lines[0].to_owned()
    }
}

impl Home {
    pub fn new() -> Self {
        Self::with_env(&[])
    }

    pub fn with_env(extra: &[(&str, &str)]) -> Self {
        require_keyring();
        let dir = tempfile::Builder::new()
            .prefix("kw-e2e-")
            .tempdir()
            .expect("tempdir");
        for sub in ["home", "data", "state", "config", "run", "aws"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        Home {
            dir,
            totp_secret: Mutex::new(None),
            last_step: Mutex::new(0),
            recovery_codes: Mutex::new(Vec::new()),
            extra_env: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn aws_config(&self) -> PathBuf {
        self.path("aws/config")
    }

    pub fn aws_credentials(&self) -> PathBuf {
        self.path("aws/credentials")
    }

    pub fn catalog(&self) -> PathBuf {
        self.path("data/keyward/catalog.sqlite")
    }

    /// The last lines the background agents of this home logged, for a failure's message.
    pub fn agent_log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.path("state/keyward/agent.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Applies this home's environment to a command (any program, not only keyward).
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("KEYWARD_RUNTIME_DIR", self.path("run/keyward"))
            .env("AWS_CONFIG_FILE", self.aws_config())
            .env("AWS_SHARED_CREDENTIALS_FILE", self.aws_credentials())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("KEYWARD_LOG")
            // cargo runs tests with its own LD_LIBRARY_PATH, which the agent refuses.
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("KEYWARD_DATA_DIR")
            // Not this machine's /etc/keyward/policy.toml: a test that wants one sets its own.
            .env("KEYWARD_POLICY", self.path("no-policy.toml"));
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        // `setsid` gives the command no controlling terminal, like a tool run by an IDE or CI.
        let mut c = Command::new("setsid");
        c.arg("--wait").arg(BIN).args(args);
        self.env(&mut c);
        c.stdin(Stdio::null());
        c
    }

    pub fn kw(&self, args: &[&str]) -> Run {
        Run::from_output(self.cmd(args).output().expect("run keyward"))
    }

    /// Runs keyward answering its prompts with `lines` on --input-fd 0.
    pub fn kw_input(&self, args: &[&str], lines: &[&str]) -> Run {
        self.kw_input_env(args, lines, &[])
    }

    /// Like [`Home::kw_input`] with extra environment variables.
    pub fn kw_input_env(&self, args: &[&str], lines: &[&str], env: &[(&str, &Path)]) -> Run {
        let mut all = vec!["--input-fd", "0"];
        all.extend_from_slice(args);
        let mut cmd = self.cmd(&all);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            for l in lines {
                writeln!(stdin, "{l}").expect("write");
            }
        }
        Run::from_output(child.wait_with_output().expect("wait"))
    }

    /// Creates a vault with a TOTP factor, reading the shown secret like a person's app would.
    pub fn init(&self) -> String {
        self.init_with(&["init", "--kdf-memory-mib", "8", "--kdf-iterations", "1"])
    }

    pub fn init_with(&self, args: &[&str]) -> String {
        let mut all = vec!["--input-fd", "0"];
        all.extend_from_slice(args);
        let mut cmd = self.cmd(&all);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn init");
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{PASSPHRASE}\n{PASSPHRASE}").expect("write");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut shown = String::new();
        let mut secret = None;
        let mut line = String::new();
        while stdout.read_line(&mut line).expect("read") > 0 {
            shown.push_str(&line);
            if let Some(s) = line.trim().strip_prefix("Or enter this secret by hand: ") {
                secret = Some(s.to_owned());
                break;
            }
            line.clear();
        }
        let secret = secret.unwrap_or_else(|| {
            let mut err = String::new();
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            panic!("init did not show a TOTP secret: {shown}\nstderr: {err}")
        });
        *self.totp_secret.lock().expect("lock") = Some(secret.clone());
        let code = self.fresh_code();
        writeln!(stdin, "{code}").expect("write code");
        drop(stdin);
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).expect("read rest");
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "init failed: {}{}\n{}",
            shown,
            rest,
            String::from_utf8_lossy(&out.stderr)
        );
        let codes: Vec<String> = rest
            .lines()
            .filter_map(|l| {
                let t = l.trim();
                let (n, code) = t.split_once(". ")?;
                n.parse::<u32>().ok()?;
                Some(code.to_owned())
            })
            .collect();
        assert_eq!(codes.len(), 8, "eight recovery codes shown: {rest}");
        *self.recovery_codes.lock().expect("lock") = codes;
        rest
    }

    fn totp(&self) -> totp_rs::Totp {
        let secret = self
            .totp_secret
            .lock()
            .expect("lock")
            .clone()
            .expect("vault initialised");
        let bytes = data_encoding::BASE32_NOPAD
            .decode(secret.trim_end_matches('=').as_bytes())
            .expect("base32");
        totp_rs::Builder::new()
            .with_secret(totp_rs::Secret::from(bytes))
            .build()
            .expect("totp")
    }

    /// A code for a time step not used before (waits for the next step when needed).
    pub fn fresh_code(&self) -> String {
        let totp = self.totp();
        let mut last = self.last_step.lock().expect("lock");
        loop {
            let now = now();
            let step = now / 30;
            // The agent accepts one step of skew ahead, so the next step's code is usable now
            // (the step behind is not offered: it expires at the next step boundary).
            for candidate in [step, step + 1] {
                if candidate > *last {
                    *last = candidate;
                    return totp.generate(candidate * 30).to_string();
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// A code already used (for the replay test).
    pub fn last_code(&self) -> String {
        let step = *self.last_step.lock().expect("lock");
        self.totp().generate(step * 30).to_string()
    }

    pub fn unlock(&self) {
        let code = self.fresh_code();
        self.kw_input(&["unlock"], &[PASSPHRASE, &code]).ok();
    }

    /// Unlocks with an unused recovery code (no wait for the next TOTP step).
    pub fn unlock_with_recovery(&self) {
        let code = self
            .recovery_codes
            .lock()
            .expect("lock")
            .pop()
            .expect("a recovery code left");
        self.kw_input(&["unlock", "--recovery"], &[PASSPHRASE, &code])
            .ok();
    }

    /// The pid of this home's agent.
    pub fn agent_pid(&self) -> i32 {
        self.status()["agent_pid"].as_i64().expect("pid") as i32
    }

    /// Grants a program a profile ahead of time (`keyward grants allow`), as a CI script would.
    /// Grants a program a profile, with a current code as `keyward grants allow` asks.
    pub fn grant(&self, client: &(String, Option<String>), profile: &str) {
        let mut args = vec!["grants", "allow", "--exe", &client.0, "--profile", profile];
        if let Some(s) = &client.1 {
            args.extend_from_slice(&["--script", s]);
        }
        let code = self.fresh_code();
        self.kw_input(&args, &[&code]).ok();
    }

    /// Grants this test binary (which runs `keyward cred` directly) a profile.
    pub fn grant_tests(&self, profile: &str) {
        self.grant(&(this_test_binary(), None), profile);
    }

    /// `status --json`, which exits 0, 1 or 2 by the keys' states (3 when it fails).
    pub fn status(&self) -> serde_json::Value {
        let s = self.kw(&["status", "--json"]);
        assert!(
            (0..=2).contains(&s.status),
            "status failed ({})\nstdout: {}\nstderr: {}",
            s.status,
            s.stdout,
            s.stderr
        );
        serde_json::from_str(&s.stdout).expect("status json")
    }

    pub fn socket(&self) -> PathBuf {
        self.path("run/keyward/agent.sock")
    }

    /// Every file under this home (what Keyward may have written), recursively.
    pub fn all_files(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path, out);
                    } else if path.is_file() {
                        out.push(path);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let sock = self.socket();
        if sock.exists() {
            let _ = self.cmd(&["agent", "stop"]).output();
        }
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A moto server on 127.0.0.1 with an IAM user, its access key, and a role it may assume.
/// After set-up every request is signature- and policy-checked.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub role_arn: String,
    /// An administrator's key, to look at IAM from outside Keyward.
    auditor: (String, String),
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Moto {
    pub fn start() -> Self {
        let moto = required_env("KEYWARD_TEST_MOTO");
        let port = free_port();
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // The set-up script's nine IAM calls run unauthenticated; everything after is checked.
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "9")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on {endpoint}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut m = Moto {
            child,
            endpoint: endpoint.clone(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            role_arn: String::new(),
            auditor: (String::new(), String::new()),
        };
        let out = Command::new(python())
            .arg(support_script("moto_setup.py"))
            .arg(&endpoint)
            .output()
            .expect("run moto_setup.py");
        assert!(
            out.status.success(),
            "moto set-up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("setup json");
        m.access_key_id = v["access_key_id"].as_str().expect("id").to_owned();
        m.secret_access_key = v["secret_access_key"].as_str().expect("secret").to_owned();
        m.role_arn = v["role_arn"].as_str().expect("role").to_owned();
        m.auditor = (
            v["auditor_key_id"].as_str().expect("auditor").to_owned(),
            v["auditor_secret"].as_str().expect("auditor").to_owned(),
        );
        m
    }

    /// Runs `iam_keys.py` as the auditor: `list USER` or `create USER`.
    fn iam(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new(python())
            .arg(support_script("iam_keys.py"))
            .arg(&self.endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.auditor.0)
            .env("AWS_SECRET_ACCESS_KEY", &self.auditor.1)
            .args(args)
            .output()
            .expect("run iam_keys.py");
        assert!(
            out.status.success(),
            "iam_keys.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("iam_keys json")
    }

    /// The access keys of IAM user `user` as (id, active), as an administrator sees them.
    pub fn access_keys(&self, user: &str) -> Vec<(String, bool)> {
        self.iam(&["list", user])
            .as_array()
            .expect("list")
            .iter()
            .map(|k| {
                (
                    k["id"].as_str().expect("id").to_owned(),
                    k["status"] == "Active",
                )
            })
            .collect()
    }

    /// The service IAM says `key_id` was last used with, as an administrator reads it.
    pub fn last_used_service(&self, key_id: &str) -> String {
        self.iam(&["last-used", key_id])["service"]
            .as_str()
            .expect("service")
            .to_owned()
    }

    /// Creates another access key for `user` (as an administrator would), returning its id.
    pub fn create_access_key(&self, user: &str) -> String {
        self.iam(&["create", user])["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn canonical(p: impl AsRef<Path>) -> String {
    std::fs::canonicalize(p.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
        .to_string_lossy()
        .into_owned()
}

/// The test binary, as the agent sees it in /proc.
pub fn this_test_binary() -> String {
    canonical(std::env::current_exe().expect("current exe"))
}

/// How the agent identifies a program started from `path`: a script with a `#!` line is
/// (interpreter, script); anything else is (executable, none).
pub fn client_of_command(path: &str) -> (String, Option<String>) {
    let text = std::fs::read(path).unwrap_or_default();
    if let Some(rest) = text.strip_prefix(b"#!") {
        let line = String::from_utf8_lossy(rest.split(|b| *b == b'\n').next().unwrap_or(b""))
            .trim()
            .to_owned();
        let interp = line.split_whitespace().next().expect("interpreter");
        return (canonical(interp), Some(canonical(path)));
    }
    (canonical(path), None)
}

/// How the agent identifies `python script`.
pub fn client_of_python_script(script: &Path) -> (String, Option<String>) {
    (canonical(python()), Some(canonical(script)))
}

pub fn python() -> String {
    required_env("KEYWARD_TEST_PYTHON")
}

/// The Python executable as the agent sees it (the venv's link resolved).
pub fn python_exe() -> String {
    canonical(python())
}

pub fn aws_cli() -> String {
    required_env("KEYWARD_TEST_AWS_CLI")
}

pub fn support_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/support")
        .join(name)
}

/// A real OAuth2 authorization server (oidc-provider, `tests/oauth/server.mjs`) on 127.0.0.1:
/// client-credentials grant, client secrets checked, token introspection, and a protected
/// resource (`/api/whoami`) that accepts only live tokens it issued.
pub struct OAuthServer {
    child: Child,
    /// Held open for the server's life: it stops when its stdin closes.
    _stdin: std::process::ChildStdin,
    /// Base URL.
    pub issuer: String,
    pub token_url: String,
    pub introspection_url: String,
}

impl OAuthServer {
    /// Starts the server with these clients:
    /// `[{"client_id","client_secret","scope"?,"auth"?: "basic"|"post","ttl"?: secs}]`.
    pub fn start(clients: serde_json::Value) -> Self {
        let node = required_env("KEYWARD_TEST_NODE");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oauth/server.mjs");
        let mut child = Command::new(node)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the OAuth2 test server (node tests/oauth/server.mjs)");
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{}", serde_json::json!({ "clients": clients })).expect("configure");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the server's address");
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the OAuth2 test server did not start ({e}): {line:?}"));
        let s = |k: &str| v[k].as_str().expect("address field").to_owned();
        OAuthServer {
            child,
            _stdin: stdin,
            issuer: s("issuer"),
            token_url: s("token_url"),
            introspection_url: s("introspection_url"),
        }
    }

    /// How many tokens its token endpoint has issued so far.
    pub fn tokens_issued(&self) -> u64 {
        let v = http_get_json(&format!("{}/test/stats", self.issuer), None).1;
        v["tokens_issued"].as_u64().expect("tokens_issued")
    }

    /// How the client of the last issued token authenticated: "basic" or "post".
    pub fn last_auth(&self) -> String {
        let v = http_get_json(&format!("{}/test/stats", self.issuer), None).1;
        v["last_auth"].as_str().expect("last_auth").to_owned()
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET with the real curl (optionally sending header lines from `header_file`, as
/// `curl -H @file` does): (HTTP status, JSON body).
pub fn http_get_json(url: &str, header_file: Option<&Path>) -> (u16, serde_json::Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}"]);
    if let Some(f) = header_file {
        cmd.arg("-H").arg(format!("@{}", f.display()));
    }
    let out = cmd.arg(url).output().expect("run curl");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (
        code.trim().parse().expect("status"),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// A test server started from `tests/support` (killed when dropped), on the port it printed as
/// its first line (`{"port": N}`).
pub struct ScriptServer {
    child: Child,
    /// Where it listens on 127.0.0.1.
    pub port: u16,
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tests/support/SCRIPT ARGS…` with the test Python and waits for its port.
pub fn serve_script(script: &str, args: &[&std::ffi::OsStr]) -> ScriptServer {
    let mut child = Command::new(python())
        .arg(support_script(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {script}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    let v: serde_json::Value = serde_json::from_str(&line).expect("port json");
    ScriptServer {
        port: v["port"].as_u64().expect("port") as u16,
        child,
    }
}

/// A self-signed certificate for 127.0.0.1 and its key, in the home (for HTTPS test servers).
pub fn self_signed(home: &Home, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        home.path(&format!("{name}.crt")),
        home.path(&format!("{name}.key")),
    );
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(made.success(), "openssl made no certificate");
    (cert, key)
}

/// PATH with `git-credential-keyward` and `docker-credential-keyward` (links to the keyward
/// under test, as scripts/run makes them) in front, from `HOME/bin`.
pub fn path_with_helpers(home: &Home) -> PathBuf {
    let bin = home.path("bin");
    if !bin.exists() {
        std::fs::create_dir_all(&bin).expect("mkdir");
        for helper in ["git-credential-keyward", "docker-credential-keyward"] {
            std::os::unix::fs::symlink(BIN, bin.join(helper)).expect("link");
        }
    }
    PathBuf::from(format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    ))
}
