//! `keyward audit list`: the trail filtered by key, event, client and time, exported as JSON
//! lines and CSV; and the trail forwarded to a real rsyslog, over TCP and over TLS.

use crate::support::Home;

fn jsonl(home: &Home, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["audit", "list", "--format", "jsonl"];
    all.extend_from_slice(args);
    home.kw(&all)
        .ok()
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn the_trail_filters_by_key_event_client_and_time_and_exports() {
    let home = Home::new();
    home.init();
    home.unlock();
    home.kw_input(&["add", "static", "alpha"], &["alpha-Value-1"])
        .ok();
    home.kw_input(&["add", "static", "beta"], &["beta-Value-2"])
        .ok();
    home.kw(&["edit", "alpha", "--owner", "data-team"]).ok();

    let alpha = jsonl(&home, &["--key", "alpha"]);
    let actions: Vec<&str> = alpha.iter().filter_map(|r| r["action"].as_str()).collect();
    assert!(
        actions.contains(&"add") && actions.contains(&"update"),
        "{actions:?}"
    );
    assert!(alpha.iter().all(|r| r["target"] == "alpha"), "{alpha:#?}");
    let adds = jsonl(&home, &["--action", "add"]);
    assert_eq!(adds.len(), 2, "{adds:#?}");
    // Every record carries its place in the chain.
    assert!(adds
        .iter()
        .all(|r| r["seq"].is_i64() && r["hash"].as_str().is_some_and(|h| h.len() == 64)));
    assert_eq!(
        jsonl(&home, &["--action", "add", "--client", "keyward"]).len(),
        2
    );
    assert!(jsonl(&home, &["--action", "add", "--client", "terraform"]).is_empty());
    assert_eq!(jsonl(&home, &["--action", "add", "--since", "1h"]).len(), 2);
    assert!(jsonl(&home, &["--until", "2000-01-01"]).is_empty());

    // Everything, page by page, is the same as the newest n when n covers it (each listing
    // is itself recorded, so compare a filter the listings do not match).
    let all = jsonl(&home, &["--all", "--action", "add"]);
    let newest = jsonl(&home, &["-n", "10000", "--action", "add"]);
    assert_eq!(all, newest);
    let all = jsonl(&home, &["--all"]);
    let seqs: Vec<i64> = all.iter().filter_map(|r| r["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first");

    let csv = home
        .kw(&["audit", "list", "--action", "add", "--format", "csv"])
        .ok()
        .stdout;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("seq,ts,action,target,outcome,client,summary,detail,hash")
    );
    assert_eq!(lines.count(), 2, "{csv}");
    assert!(!csv.contains("Value-"), "no secret");

    let line = home
        .kw(&["audit", "list", "--since", "last tuesday"])
        .one_line_error();
    assert!(
        line.contains("--since \"last tuesday\": give an RFC 3339 time"),
        "{line}"
    );
}

/// A real rsyslog listening on 127.0.0.1 (imtcp), writing what it receives to `received`; over
/// TLS (GnuTLS) with `server.pem`/`server.key` of `dir` when `tls`.
struct Rsyslog {
    child: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Rsyslog {
    fn start(dir: &std::path::Path, port: u16) -> Self {
        Self::start_with(dir, port, false)
    }

    fn start_with(dir: &std::path::Path, port: u16, tls: bool) -> Self {
        let work = dir.join("work");
        std::fs::create_dir_all(&work).expect("mkdir");
        let conf = dir.join("rsyslog.conf");
        let (global, module) = if tls {
            (
                format!(
                    " DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{d}/ca.pem\" DefaultNetstreamDriverCertFile=\"{d}/server.pem\" DefaultNetstreamDriverKeyFile=\"{d}/server.key\"",
                    d = dir.display()
                ),
                " StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\"",
            )
        } else {
            (String::new(), "")
        };
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\"{global})\n\
                 module(load=\"imtcp\"{module})\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
                 template(name=\"sd\" type=\"string\" string=\"%structured-data%\\n\")\n\
                 *.* action(type=\"omfile\" file=\"{out}\" template=\"sd\")\n",
                work = work.display(),
                out = dir.join("received").display(),
            ),
        )
        .expect("conf");
        let child = std::process::Command::new("/usr/sbin/rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start rsyslogd (scripts/deps installs rsyslog)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "rsyslogd did not listen on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Rsyslog {
            child,
            dir: dir.to_owned(),
            port,
        }
    }

    /// Stops it as an admin would (SIGTERM), and waits.
    fn stop(mut self) -> (std::path::PathBuf, u16) {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        (self.dir.clone(), self.port)
    }

    /// The sequence numbers received, in the order they arrived.
    fn seqs(dir: &std::path::Path) -> Vec<i64> {
        std::fs::read_to_string(dir.join("received"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let at = l.find("seq=\"")? + 5;
                l[at..].split('"').next()?.parse().ok()
            })
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_trail_reaches_a_real_rsyslog_once_and_in_order_across_its_restart() {
    let policy = crate::policy::policy_dir();
    let path = policy.path().join("policy.toml");
    let logs = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let receiver = Rsyslog::start(logs.path(), port);
    crate::policy::install(
        &path,
        &format!("[audit]\nsyslog_tcp = \"127.0.0.1:{port}\"\n"),
    );
    let home = Home::with_env(&[("KEYWARD_POLICY", path.to_str().expect("utf-8"))]);
    home.init();
    home.unlock();
    for i in 0..5 {
        home.kw_input(&["add", "static", &format!("k{i}")], &["tok-Value-1"])
            .ok();
    }
    let caught_up = |what: &str| {
        crate::policy::status_until(&home, what, |s| {
            s["forwarding"][0]["sent_seq"] == s["audit_head"]
                && s["forwarding"][0]["error"].is_null()
        })
    };
    caught_up("forwarding did not catch up");

    // The receiver goes away; records keep coming, and wait.
    let (dir, port) = receiver.stop();
    for i in 5..10 {
        home.kw_input(&["add", "static", &format!("k{i}")], &["tok-Value-1"])
            .ok();
    }
    let s = crate::policy::status_until(&home, "the outage was not noticed", |s| {
        s["forwarding"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach"))
    });
    assert!(
        s["forwarding"][0]["sent_seq"].as_i64() < s["audit_head"].as_i64(),
        "{s:#}"
    );
    let text = home.kw(&["status"]).stdout;
    assert!(
        text.contains("record(s) waiting: cannot reach 127.0.0.1"),
        "{text}"
    );

    // Back: what it missed arrives, from where it stopped.
    let _receiver = Rsyslog::start(&dir, port);
    let s = caught_up("forwarding did not resume");
    let head = s["audit_head"].as_i64().expect("head");
    // rsyslog writes asynchronously: wait for the file to hold the head.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Rsyslog::seqs(&dir).last() != Some(&head) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let got = Rsyslog::seqs(&dir);
    let want: Vec<i64> = (1..=head).collect();
    assert_eq!(got, want, "every record once, in order");
}

/// A CA and a certificate for 127.0.0.1 it signed, made with the openssl command, in `dir`.
fn test_pki(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=Keyward test logs CA",
    ];
    ca.extend_from_slice(&ec);
    ca.extend_from_slice(&["-keyout", "ca.key", "-out", "ca.pem"]);
    ca.extend_from_slice(&["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend_from_slice(&["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(&ca);
    let mut csr = vec!["req", "-subj", "/CN=127.0.0.1"];
    csr.extend_from_slice(&ec);
    csr.extend_from_slice(&["-keyout", "server.key", "-out", "server.csr"]);
    openssl(&csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
}

/// Waits up to 30 s (a failing receiver is retried with a back-off of up to 10 s) until
/// `status --json` satisfies `done`.
fn status_within_30s(
    home: &Home,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    crate::policy::status_within(home, std::time::Duration::from_secs(30), what, done)
}

#[test]
fn over_tls_the_trail_reaches_rsyslog_only_with_a_certificate_the_policy_trusts() {
    use std::os::unix::fs::PermissionsExt;
    let policy = crate::policy::policy_dir();
    let path = policy.path().join("policy.toml");
    let logs = tempfile::tempdir().expect("tempdir");
    test_pki(logs.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let receiver = Rsyslog::start_with(logs.path(), port, true);
    let target = format!("tls://127.0.0.1:{port}");

    // The system's roots do not know the test CA: nothing is sent, and status says why.
    crate::policy::install(
        &path,
        &format!("[audit]\nsyslog_tls = \"127.0.0.1:{port}\"\n"),
    );
    let home = Home::with_env(&[("KEYWARD_POLICY", path.to_str().expect("utf-8"))]);
    home.init();
    home.unlock();
    home.kw_input(&["add", "static", "k0"], &["tok-Value-1"])
        .ok();
    let s = status_within_30s(&home, "an untrusted receiver is refused", |s| {
        s["forwarding"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("UnknownIssuer"))
    });
    assert_eq!(s["forwarding"][0]["target"], target.as_str(), "{s:#}");
    assert_eq!(s["forwarding"][0]["sent_seq"], 0, "{s:#}");
    assert!(Rsyslog::seqs(logs.path()).is_empty());

    // The CA named in the policy, but a file its group could replace: refused, and why.
    let ca = policy.path().join("logs-ca.pem");
    std::fs::copy(logs.path().join("ca.pem"), &ca).expect("copy ca");
    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o664)).expect("chmod");
    crate::policy::install(
        &path,
        &format!(
            "[audit]\nsyslog_tls = \"127.0.0.1:{port}\"\nsyslog_ca = \"{}\"\n",
            ca.display()
        ),
    );
    status_within_30s(&home, "a CA file others may write is refused", |s| {
        s["forwarding"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("logs-ca.pem is not trusted: its group may write it"))
    });

    // Root's own CA file: every record arrives, once and in order, across a receiver restart.
    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let caught_up = |what: &str| {
        status_within_30s(&home, what, |s| {
            s["forwarding"][0]["sent_seq"] == s["audit_head"]
                && s["forwarding"][0]["error"].is_null()
        })
    };
    caught_up("forwarding over TLS did not catch up");
    let (dir, port) = receiver.stop();
    for i in 1..4 {
        home.kw_input(&["add", "static", &format!("k{i}")], &["tok-Value-1"])
            .ok();
    }
    status_within_30s(&home, "the outage was not noticed", |s| {
        s["forwarding"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach"))
    });
    let _receiver = Rsyslog::start_with(&dir, port, true);
    let s = caught_up("forwarding over TLS did not resume");
    let head = s["audit_head"].as_i64().expect("head");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Rsyslog::seqs(&dir).last() != Some(&head) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let want: Vec<i64> = (1..=head).collect();
    assert_eq!(Rsyslog::seqs(&dir), want, "every record once, in order");
}

/// A real systemd-journald in a namespace of its own (`systemd-journald NAMESPACE`, as the
/// `systemd-journald@.service` template runs it), read back with journalctl; its files are
/// removed when the test ends.
struct Journald {
    child: std::process::Child,
}

impl Journald {
    fn start(namespace: &str) -> Self {
        let child = std::process::Command::new("/lib/systemd/systemd-journald")
            .arg(namespace)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start systemd-journald");
        let socket = format!("/run/systemd/journal.{namespace}/socket");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let probe = std::os::unix::net::UnixDatagram::unbound().expect("socket");
            if probe.connect(&socket).is_ok() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "systemd-journald did not listen on {socket}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Journald { child }
    }

    /// Stops it as systemd would (SIGTERM), and waits.
    fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// Keyward's entries in `namespace`, as journalctl shows them: (sequence, hash, message).
    fn entries(namespace: &str) -> Vec<(i64, String, String)> {
        let out = std::process::Command::new("journalctl")
            .args(["--namespace", namespace, "-o", "json", "--no-pager"])
            .arg("SYSLOG_IDENTIFIER=keyward")
            .output()
            .expect("run journalctl");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| {
                Some((
                    v["KEYWARD_SEQ"].as_str()?.parse().ok()?,
                    v["KEYWARD_HASH"].as_str()?.to_owned(),
                    v["MESSAGE"].as_str()?.to_owned(),
                ))
            })
            .collect()
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes a test namespace's socket directory and journal files.
struct JournalFiles(String);

impl Drop for JournalFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(format!("/run/systemd/journal.{}", self.0));
        for root in ["/var/log/journal", "/run/log/journal"] {
            for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .ends_with(&format!(".{}", self.0))
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

#[test]
fn the_trail_reaches_a_real_journald_once_and_in_order_across_its_restart() {
    let namespace = format!("kw-e2e-{}", std::process::id());
    let _files = JournalFiles(namespace.clone());
    let journald = Journald::start(&namespace);
    let policy = crate::policy::policy_dir();
    let path = policy.path().join("policy.toml");
    crate::policy::install(
        &path,
        &format!("[audit]\njournal_namespace = \"{namespace}\"\n"),
    );
    let home = Home::with_env(&[("KEYWARD_POLICY", path.to_str().expect("utf-8"))]);
    home.init();
    home.unlock();
    home.kw_input(&["add", "static", "k0"], &["tok-Value-1"])
        .ok();
    let target = format!("journal:{namespace}");
    let caught_up = |what: &str| {
        status_within_30s(&home, what, |s| {
            s["forwarding"][0]["target"] == target.as_str()
                && s["forwarding"][0]["sent_seq"] == s["audit_head"]
                && s["forwarding"][0]["error"].is_null()
        })
    };
    caught_up("forwarding to the journal did not catch up");

    // journald stops; records wait, and status says why.
    journald.stop();
    for i in 1..4 {
        home.kw_input(&["add", "static", &format!("k{i}")], &["tok-Value-1"])
            .ok();
    }
    status_within_30s(&home, "the journal's absence was not noticed", |s| {
        s["forwarding"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach journal:"))
    });
    let _journald = Journald::start(&namespace);
    let s = caught_up("forwarding to the journal did not resume");
    let head = s["audit_head"].as_i64().expect("head");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut got = Journald::entries(&namespace);
    while got.last().map(|e| e.0) != Some(head) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        got = Journald::entries(&namespace);
    }
    let seqs: Vec<i64> = got.iter().map(|e| e.0).collect();
    assert_eq!(
        seqs,
        (1..=head).collect::<Vec<_>>(),
        "every record once, in order"
    );
    // The journal's copy carries the chain: the hashes are the trail's own.
    let trail: Vec<serde_json::Value> = home
        .kw(&["audit", "list", "--all", "--format", "jsonl"])
        .ok()
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    for (seq, hash, message) in &got {
        let row = trail
            .iter()
            .find(|r| r["seq"] == *seq)
            .expect("a record of the trail");
        assert_eq!(row["hash"], hash.as_str(), "#{seq}");
        assert_eq!(row["summary"], message.as_str(), "#{seq}");
    }
}
