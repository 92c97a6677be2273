//! The agent as the desktop app embeds it: in-process calls (Reveal, approvals answered by an
//! in-process approver) on a real vault with the explicit file keystore (no Secret Service).

use std::sync::Arc;
use std::time::Duration;

use keyward_agent::approvals::Decision;
use keyward_agent::protocol::{
    AwsKeyInput, ErrorCode, FactorInput, KdfChoice, KeystoreChoice, MetaInput, Reply, Request,
    WireSecret,
};
use keyward_agent::Agent;
use keyward_core::audit::{Actor, ProcessInfo};
use keyward_core::factors::TotpSetup;
use keyward_core::{Vault, VaultPaths};
use secrecy::ExposeSecret;

const PASS: &str = "orbit-maple-quartz-lantern-7";

fn w(s: &str) -> WireSecret {
    WireSecret::new(s.to_owned())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Another program on the machine, as the socket would identify it.
fn aws_cli() -> Actor {
    Actor {
        uid: Some(1000),
        pid: Some(999_999),
        chain: vec![ProcessInfo {
            pid: 999_999,
            exe: Some("/usr/bin/aws".into()),
            script: None,
        }],
    }
}

async fn unlocked_agent(dir: &std::path::Path) -> (Arc<Agent>, Actor) {
    let vault = Vault::open(VaultPaths {
        data_dir: dir.to_path_buf(),
    })
    .expect("open");
    let agent = Arc::new(Agent::new(vault, Some(Duration::from_secs(900))).expect("agent"));
    let me = keyward_agent::peer::this_process();
    let totp = TotpSetup::generate("test").expect("totp");
    let t = now();
    let init = agent
        .handle(
            Request::Init {
                passphrase: w(PASS),
                totp_secret: w(totp.secret_base32().expose_secret()),
                totp_code: w(&totp.code_at(t)),
                keystore: KeystoreChoice::File,
                kdf: Some(KdfChoice {
                    memory_mib: 8,
                    iterations: 1,
                }),
                unlock: false,
            },
            me.clone(),
        )
        .await;
    assert!(matches!(init, Ok(Reply::Initialized { .. })), "{init:?}");
    assert!(
        !agent.is_unlocked(),
        "a new vault starts locked unless asked"
    );
    let unlock = agent
        .handle(
            Request::Unlock {
                passphrase: w(PASS),
                factor: FactorInput::Totp {
                    code: w(&totp.code_at(t + 30)),
                },
            },
            me.clone(),
        )
        .await;
    assert!(matches!(unlock, Ok(Reply::Unlocked { .. })), "{unlock:?}");
    (agent, me)
}

#[tokio::test]
async fn reveal_gives_the_app_the_secret_and_is_audited_and_refused_when_locked() {
    let dir = tempfile::tempdir().expect("dir");
    let (agent, me) = unlocked_agent(dir.path()).await;
    let added = agent
        .handle(
            Request::AddStatic {
                name: "gh".into(),
                meta: MetaInput::default(),
                value: w("ghp_canary_value_42"),
            },
            me.clone(),
        )
        .await;
    assert!(added.is_ok(), "{added:?}");
    let secret = agent
        .reveal_secret("gh".into(), me.clone())
        .await
        .expect("reveal");
    assert_eq!(secret.expose_secret(), "ghp_canary_value_42");
    let Ok(Reply::Audit { rows }) = agent
        .handle(Request::AuditTail { limit: 5 }, me.clone())
        .await
    else {
        panic!("audit tail");
    };
    assert!(rows
        .iter()
        .any(|r| r.action == "reveal" && r.target.as_deref() == Some("gh")));
    agent.lock(&me, "test");
    let locked = agent.reveal_secret("gh".into(), me).await;
    assert_eq!(locked.err().map(|e| e.code), Some(ErrorCode::Locked));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_approver_is_asked_and_its_answer_is_applied() {
    let dir = tempfile::tempdir().expect("dir");
    let (agent, me) = unlocked_agent(dir.path()).await;
    // An AWS key whose STS endpoint is closed: a request that gets past approval fails upstream.
    let added = agent
        .handle(
            Request::AddAws {
                name: "prod".into(),
                meta: MetaInput::default(),
                aws: AwsKeyInput {
                    access_key_id: "AKIAKEYWARDTEST00001".into(),
                    secret_access_key: w("notArealSecretKey0000000000000000000000+"),
                    role_arn: None,
                    mfa_serial: None,
                    region: None,
                    session_duration_secs: None,
                    sts_endpoint: Some("http://127.0.0.1:9".into()),
                },
            },
            me.clone(),
        )
        .await;
    assert!(added.is_ok(), "{added:?}");
    let mut asked = agent.approvals.subscribe();

    let ask = |agent: Arc<Agent>| {
        tokio::spawn(async move {
            agent
                .handle(
                    Request::CredAws {
                        profile: "prod".into(),
                        mfa_code: None,
                        approval: None,
                    },
                    aws_cli(),
                )
                .await
        })
    };

    // Denied in the app: the tool gets a one-line refusal.
    let pending = ask(Arc::clone(&agent));
    let info = tokio::time::timeout(Duration::from_secs(5), asked.recv())
        .await
        .expect("the app is asked")
        .expect("request");
    assert_eq!(info.client.exe, "/usr/bin/aws");
    assert_eq!(info.profile, "prod");
    assert_eq!(info.ttl_secs, 3600);
    agent
        .decide_approval(&info.id, Decision::Deny, &me)
        .expect("decide");
    let denied = pending.await.expect("join");
    assert_eq!(
        denied.as_ref().err().map(|e| e.code),
        Some(ErrorCode::Denied),
        "{denied:?}"
    );

    // Allowed for 1 hour: past approval (STS is unreachable here, so it fails upstream), and a
    // grant is listed.
    let pending = ask(Arc::clone(&agent));
    let info = asked.recv().await.expect("asked again");
    agent
        .decide_approval(&info.id, Decision::Hours(1), &me)
        .expect("decide");
    let passed = pending.await.expect("join");
    assert_eq!(
        passed.as_ref().err().map(|e| e.code),
        Some(ErrorCode::Upstream),
        "{passed:?}"
    );
    let grants = agent.approvals.list();
    assert_eq!(grants.len(), 1);
    assert!(grants[0].expires.is_some());

    // With the grant, the next request is not asked about.
    let third = ask(Arc::clone(&agent)).await.expect("join");
    assert_eq!(
        third.as_ref().err().map(|e| e.code),
        Some(ErrorCode::Upstream)
    );
    assert!(
        asked.try_recv().is_err(),
        "no question while the grant lasts"
    );
}
