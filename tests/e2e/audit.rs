//! `keyward audit list`: the trail filtered by key, event, client and time, exported as JSON
//! lines and CSV.

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

/// A real rsyslog listening on 127.0.0.1 (imtcp), writing what it receives to `received`.
struct Rsyslog {
    child: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Rsyslog {
    fn start(dir: &std::path::Path, port: u16) -> Self {
        let work = dir.join("work");
        std::fs::create_dir_all(&work).expect("mkdir");
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\")\n\
                 module(load=\"imtcp\")\n\
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
            s["forwarding"]["sent_seq"] == s["audit_head"] && s["forwarding"]["error"].is_null()
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
        s["forwarding"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach"))
    });
    assert!(
        s["forwarding"]["sent_seq"].as_i64() < s["audit_head"].as_i64(),
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
