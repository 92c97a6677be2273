//! The admin side at scale: an audit trail of 1,000,000 rows (filtered queries through the
//! agent's query, and a full `verify`) and a catalog of 10,000 keys (`keyward list --json` and
//! `keyward status`, whole process, against a running agent). Not a test: `bench/run` prints
//! the figures beside their targets (filtered query ≤ 50 ms, verify ≤ 5 s, each command
//! ≤ 50 ms).
//!
//! The vault uses the explicit file keystore, so 10,000 keys need no Secret Service; the trail
//! is written through the vault's own audit path (keyed chain, batches of 10,000 rows).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyward_core::audit::{AuditEvent, ProcessInfo};
use keyward_core::catalog::AuditFilter;
use keyward_core::factors::TotpSetup;
use keyward_core::kdf::KdfParams;
use keyward_core::vault::CreateOptions;
use keyward_core::{
    Actor, EntryConfig, EntryKind, EntryMeta, KeystoreKind, SecretValue, Vault, VaultPaths,
};
use secrecy::SecretString;

const KEYS: usize = 10_000;
const ROWS: usize = 1_000_000;

fn median(mut t: Vec<Duration>) -> (f64, f64) {
    t.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (
        ms(t[t.len() / 2]),
        ms(t[(t.len() * 95 / 100).min(t.len() - 1)]),
    )
}

fn actor(i: usize) -> Actor {
    let exe = [
        "/usr/bin/aws",
        "/usr/bin/terraform",
        "/usr/bin/kubectl",
        "/usr/bin/git",
    ][i % 4];
    // A program met a few times, all in the oldest rows (the keys' own come first).
    let exe = if i < KEYS + 3000 && i % 100 == 0 {
        "/usr/local/bin/rare-tool"
    } else {
        exe
    };
    Actor {
        uid: Some(1000),
        pid: Some(4000 + (i % 1000) as i32),
        chain: vec![
            ProcessInfo {
                pid: 4000 + (i % 1000) as i32,
                exe: Some("/usr/bin/keyward".into()),
                script: None,
                unvouched: None,
            },
            ProcessInfo {
                pid: 3000,
                exe: Some(exe.into()),
                script: None,
                unvouched: None,
            },
        ],
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let root = root.as_path();
    for d in ["home", "data", "state", "config", "run"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    let mut vault = Vault::open(VaultPaths {
        data_dir: root.join("data/keyward"),
    })
    .expect("open");
    let totp = TotpSetup::generate("bench").expect("totp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let code = totp.code_at(now);
    vault
        .create(
            CreateOptions {
                passphrase: SecretString::from("bench-passphrase-correct-horse".to_owned()),
                keystore: KeystoreKind::File,
                kdf: KdfParams {
                    memory_kib: 8 * 1024,
                    iterations: 1,
                    parallelism: 1,
                },
                totp,
                totp_code: code,
                totp_label: "bench".into(),
            },
            &Actor::default(),
        )
        .expect("create");

    let t = Instant::now();
    for i in 0..KEYS {
        let meta = EntryMeta {
            id: String::new(),
            name: format!("key-{i:05}"),
            kind: EntryKind::Static,
            owner: Some(["platform", "data", "payments"][i % 3].into()),
            purpose: Some("bench".into()),
            tags: vec![["prod", "ci", "dev"][i % 3].into()],
            created: String::new(),
            rotated: None,
            rotation_interval_days: Some(90),
            expires: None,
            last_used: None,
            use_count: 0,
            provider_use: None,
            config: EntryConfig::default(),
        };
        let secret = SecretValue::Static {
            value: SecretString::from(format!("bench-token-{i}")),
        };
        vault
            .add_entry(meta, &secret, &Actor::default())
            .expect("add");
    }
    println!("set-up: {KEYS} keys in {:.1} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let actions = [
        "issue",
        "issue",
        "issue",
        "issue",
        "status",
        "list",
        "approval",
        "grant.allow",
    ];
    let head = vault
        .catalog()
        .audit_head()
        .expect("head")
        .map_or(0, |(seq, _)| seq);
    let mut written = usize::try_from(head).expect("seq");
    while written < ROWS {
        let n = (ROWS - written).min(10_000);
        let events: Vec<(Actor, AuditEvent)> = (written..written + n)
            .map(|i| {
                (
                    actor(i),
                    AuditEvent {
                        action: actions[i % actions.len()],
                        target: Some(format!("key-{:05}", i % KEYS)),
                        outcome: "ok",
                        detail: serde_json::json!({ "kind": "aws-sts", "cached": i % 3 == 0 }),
                    },
                )
            })
            .collect();
        vault.audit_unanchored(&events).expect("audit");
        written += n;
    }
    vault.anchor_head().expect("anchor");
    println!(
        "set-up: {ROWS} audit rows in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Filtered queries, as `keyward audit list` asks them (the newest 100 that match).
    let filters = [
        (
            "one key",
            AuditFilter {
                target: Some("key-04242".into()),
                ..Default::default()
            },
        ),
        (
            "an event family",
            AuditFilter {
                action: Some("grant".into()),
                ..Default::default()
            },
        ),
        (
            "a client",
            AuditFilter {
                client: Some("terraform".into()),
                ..Default::default()
            },
        ),
        (
            "key + event",
            AuditFilter {
                target: Some("key-00042".into()),
                action: Some("issue".into()),
                ..Default::default()
            },
        ),
        (
            "the last hour",
            AuditFilter {
                since: Some(hour_ago()),
                ..Default::default()
            },
        ),
        (
            "a client seen only in the oldest rows",
            AuditFilter {
                client: Some("rare-tool".into()),
                ..Default::default()
            },
        ),
        (
            "a client never seen",
            AuditFilter {
                client: Some("no-such-program".into()),
                ..Default::default()
            },
        ),
    ];
    for (what, f) in filters {
        let f = AuditFilter { limit: 100, ..f };
        let times: Vec<Duration> = (0..30)
            .map(|_| {
                let t = Instant::now();
                let rows = vault.catalog().audit_query(&f).expect("query");
                assert!(
                    rows.is_empty() == what.contains("never"),
                    "{what}: {} rows",
                    rows.len()
                );
                t.elapsed()
            })
            .collect();
        let (med, p95) = median(times);
        println!("audit query, {what}: median {med:.2} ms, p95 {p95:.2} ms (target <= 50 ms)");
    }
    let t = Instant::now();
    let rows = vault.verify_audit().expect("verify");
    println!(
        "audit verify: {rows} rows in {:.2} s (target <= 5 s)",
        t.elapsed().as_secs_f64()
    );
    drop(vault);

    // The CLI against a running agent, whole process, as a script or a prompt runs it.
    let kw = env!("CARGO_BIN_EXE_keyward");
    let cmd = |args: &[&str]| {
        let mut c = Command::new(kw);
        c.args(args)
            .env("HOME", root.join("home"))
            .env("XDG_DATA_HOME", root.join("data"))
            .env("XDG_STATE_HOME", root.join("state"))
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("KEYWARD_RUNTIME_DIR", root.join("run/keyward"))
            .env("KEYWARD_POLICY", root.join("no-policy.toml"))
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("KEYWARD_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let started = cmd(&["agent", "start"]).status().expect("agent start");
    assert!(started.success(), "the agent did not start");
    for args in [&["list", "--json"][..], &["list"][..], &["status"][..]] {
        let times: Vec<Duration> = (0..30)
            .map(|_| {
                let t = Instant::now();
                let s = cmd(args).status().expect("run");
                // `status` exits 0, 1 or 2 by the keys' states; 3 or more is a failure.
                assert!(
                    s.code().is_some_and(|c| c <= 2),
                    "keyward {args:?} failed: {s}"
                );
                t.elapsed()
            })
            .collect();
        let (med, p95) = median(times);
        println!(
            "keyward {} with {KEYS} keys (whole process): median {med:.1} ms, p95 {p95:.1} ms (target <= 50 ms)",
            args.join(" ")
        );
    }
    let _ = cmd(&["agent", "stop"]).status();
    // KEYWARD_BENCH_KEEP=1 leaves the vault behind, to look at a slow figure by hand.
    if std::env::var_os("KEYWARD_BENCH_KEEP").is_some() {
        println!("the vault stays in {}", dir.keep().display());
    }
}

fn hour_ago() -> String {
    (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}
