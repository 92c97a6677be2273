//! Kubernetes: the real kubectl with a kubeconfig whose exec user is `keyward cred kube`, against
//! an HTTPS API stub that checks the bearer token; a rotated (revoked) token fails.

use std::process::{Command, Stdio};

use crate::support::Home;

const TOKEN: &str = "kubeLeaseCanary0123456789abcdef";

fn kubectl(home: &Home, kubeconfig: &std::path::Path) -> crate::support::Run {
    let mut c = Command::new("kubectl");
    home.env(&mut c);
    c.env("KUBECONFIG", kubeconfig)
        .args(["get", "pods", "--request-timeout=20s"])
        .stdin(Stdio::null());
    crate::support::Run::from_output(c.output().expect("run kubectl"))
}

#[test]
fn kubectl_lists_pods_with_the_token_keyward_gives_and_fails_once_it_is_revoked() {
    let home = Home::new();
    home.init();
    home.unlock();
    home.kw_input(&["add", "static", "kube"], &[TOKEN]).ok();
    let code = home.fresh_code();
    home.kw_input(&["edit", "kube", "--allow-lease", "env"], &[&code])
        .ok();

    // A self-signed certificate for 127.0.0.1, the API stub serving with it.
    let (cert, key) = crate::support::self_signed(&home, "api");
    let api = crate::support::serve_script(
        "kube_api.py",
        &[
            cert.as_os_str(),
            key.as_os_str(),
            std::ffi::OsStr::new(TOKEN),
        ],
    );
    let ca = data_encoding::BASE64.encode(&std::fs::read(&cert).expect("cert"));
    let kubeconfig = home.path("kubeconfig");
    // The user's own kubeconfig, comments, another user and all: `keyward setup kube` adds its
    // user and keeps every other byte.
    let head = format!(
        "# the lab cluster\napiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority-data: {ca}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: keyward-kube   # set up below\ncurrent-context: test\nusers:\n",
        api.port
    );
    let tail = "- name: someone-else\n  user:\n    username: admin\n";
    std::fs::write(&kubeconfig, format!("{head}{tail}")).expect("kubeconfig");
    let setup = || {
        home.kw_input_env(
            &["setup", "kube", "--key", "kube"],
            &[],
            &[("KUBECONFIG", &kubeconfig)],
        )
        .ok()
    };
    let set = setup();
    assert!(
        set.stdout.contains("Added the user 'keyward-kube'"),
        "{}",
        set.stdout
    );
    let edited = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
    assert!(
        edited.starts_with(&head) && edited.ends_with(tail),
        "{edited}"
    );
    assert!(edited.contains("interactiveMode: Never"), "{edited}");
    assert!(
        edited.contains(&format!(
            "command: \"{}\"",
            std::fs::canonicalize(env!("CARGO_BIN_EXE_keyward"))
                .expect("keyward")
                .display()
        )),
        "{edited}"
    );
    let backups: Vec<_> = std::fs::read_dir(home.path(""))
        .expect("home")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("kubeconfig.keyward-backup")
        })
        .collect();
    assert_eq!(backups.len(), 1, "one backup");
    // Again: nothing to do, nothing rewritten.
    let again = setup();
    assert!(
        again.stdout.contains("already has the user"),
        "{}",
        again.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&kubeconfig).expect("kubeconfig"),
        edited
    );

    // Not approved, no terminal: kubectl fails with Keyward's line, which names kubectl.
    let refused = kubectl(&home, &kubeconfig);
    assert_ne!(refused.status, 0);
    // The Cloud SDK's kubectl is a dispatcher: once it may ask (it fetches /version first), it
    // runs the kubectl for the server's version, another client to approve.
    let clients_in = |run: &crate::support::Run| -> Vec<String> {
        let mut c: Vec<String> = run
            .stderr
            .lines()
            .filter_map(|l| l.split("keyward: ").nth(1))
            .filter_map(|l| {
                l.split(" is not approved for key 'kube'")
                    .next()
                    .filter(|c| *c != l)
            })
            .map(str::to_owned)
            .collect();
        c.sort();
        c.dedup();
        c
    };
    let mut granted = Vec::new();
    let mut run = refused;
    for _ in 0..3 {
        let asking = clients_in(&run);
        if run.status == 0 || asking.is_empty() {
            break;
        }
        for client in asking {
            assert!(
                client.contains("kubectl"),
                "the client is kubectl: {client}"
            );
            assert!(
                !granted.contains(&client),
                "{client} asked again after its grant"
            );
            home.grant(&(client.clone(), None), "kube");
            granted.push(client);
        }
        run = kubectl(&home, &kubeconfig);
    }
    let ok = run;
    assert!(!granted.is_empty(), "kubectl was approved before it asked");
    assert_eq!(ok.status, 0, "{}", ok.stderr);
    assert!(
        format!("{}{}", ok.stdout, ok.stderr).contains("No resources found"),
        "{} {}",
        ok.stdout,
        ok.stderr
    );
    let log = std::fs::read_to_string(format!("{}.log", cert.display())).expect("api log");
    assert!(log.contains("200 /api/v1/namespaces/default/pods"), "{log}");

    // The ExecCredential itself, as kubectl reads it.
    home.grant_tests("kube");
    let mut cred = home.cmd(&["cred", "kube", "--profile", "kube"]);
    cred.env(
        "KUBERNETES_EXEC_INFO",
        r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#,
    );
    let out = crate::support::Run::from_output(cred.output().expect("cred kube")).ok();
    let ec: serde_json::Value = serde_json::from_str(&out.stdout).expect("ExecCredential");
    assert_eq!(ec["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(ec["kind"], "ExecCredential");
    assert_eq!(ec["status"]["token"], TOKEN);
    assert!(time::OffsetDateTime::parse(
        ec["status"]["expirationTimestamp"]
            .as_str()
            .expect("expiry"),
        &time::format_description::well_known::Rfc3339
    )
    .is_ok());
    let mut old = home.cmd(&["cred", "kube", "--profile", "kube"]);
    old.env(
        "KUBERNETES_EXEC_INFO",
        r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1"}"#,
    );
    let line = crate::support::Run::from_output(old.output().expect("cred kube")).one_line_error();
    assert!(line.contains("v1beta1"), "{line}");

    // Rotated at the provider (the old token revoked there): kubectl is refused by the API.
    home.kw_input(
        &["rotate", "kube", "--manual"],
        &["kubeRotatedToken-not-accepted-1"],
    )
    .ok();
    let revoked = kubectl(&home, &kubeconfig);
    assert_ne!(revoked.status, 0);
    let log = std::fs::read_to_string(format!("{}.log", cert.display())).expect("api log");
    assert!(log.contains("401 "), "{log}");
    for f in home.all_files() {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap_or_default()).into_owned();
        assert!(!text.contains(TOKEN), "the token in {}", f.display());
    }
}
