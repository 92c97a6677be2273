//! The agent as the desktop agent runs it: approvals answered by an in-process approver (the
//! tray forwards them to the window), Reveal, and the window's trust (window tokens), on a real
//! vault with the explicit file keystore (no Secret Service).

use std::sync::Arc;
use std::time::Duration;

use keyward_agent::approvals::{Answerer, Decision};
use keyward_agent::protocol::{
    AwsKeyInput, ErrorCode, FactorInput, Initialized, KdfChoice, KeystoreChoice, MetaInput,
    NewVault, Reply, Request, Unlocked, WireSecret,
};
use keyward_agent::Agent;
use keyward_core::audit::{Actor, ProcessInfo};
use keyward_core::factors::TotpSetup;
use keyward_core::{Vault, VaultPaths};
use secrecy::ExposeSecret;

mod common;
use common::{now, w, PASS};

/// Another program on the machine, as the socket would identify it.
fn aws_cli() -> Actor {
    Actor {
        uid: Some(1000),
        pid: Some(999_999),
        chain: vec![ProcessInfo {
            pid: 999_999,
            exe: Some("/usr/bin/aws".into()),
            script: None,
            unvouched: None,
        }],
    }
}

/// The desktop app's window, as the socket would identify it.
const APP: &str = "/opt/keyward/keyward-desktop";

fn window() -> Actor {
    Actor {
        uid: Some(1000),
        pid: Some(888_888),
        chain: vec![ProcessInfo {
            pid: 888_888,
            exe: Some(APP.into()),
            script: None,
            unvouched: None,
        }],
    }
}

async fn unlocked_agent(dir: &std::path::Path) -> (Arc<Agent>, Actor) {
    let (agent, me, _, _) = unlocked_agent_for(dir, None).await;
    (agent, me)
}

/// An unlocked agent serving the desktop app at `app` (if any), the vault's recovery codes
/// (one was spent to unlock, so every later TOTP step is still unused) and its TOTP factor.
async fn unlocked_agent_for(
    dir: &std::path::Path,
    app: Option<&str>,
) -> (Arc<Agent>, Actor, Vec<WireSecret>, TotpSetup) {
    let vault = Vault::open(VaultPaths {
        data_dir: dir.to_path_buf(),
    })
    .expect("open");
    let mut agent = Agent::new(vault, Some(Duration::from_secs(900))).expect("agent");
    agent.desktop = keyward_agent::desktop::Desktop::new(app.map(Into::into));
    let agent = Arc::new(agent);
    let me = keyward_agent::peer::this_process();
    let totp = TotpSetup::generate("test").expect("totp");
    let t = now();
    let init = agent
        .handle(
            Request::Init(NewVault {
                passphrase: w(PASS),
                totp_secret: w(totp.secret_base32().expose_secret()),
                totp_code: w(&totp.code_at(t)),
                keystore: KeystoreChoice::File,
                kdf: Some(KdfChoice {
                    memory_mib: 8,
                    iterations: 1,
                }),
                unlock: false,
                window: false,
            }),
            me.clone(),
        )
        .await;
    let Ok(Reply::Initialized(Initialized {
        mut recovery_codes, ..
    })) = init
    else {
        panic!("init: {init:?}");
    };
    assert!(
        !agent.is_unlocked(),
        "a new vault starts locked unless asked"
    );
    let unlock = agent
        .handle(
            Request::Unlock {
                passphrase: w(PASS),
                factor: FactorInput::Recovery {
                    code: recovery_codes.pop().expect("a recovery code"),
                },
                window: false,
            },
            me.clone(),
        )
        .await;
    assert!(matches!(unlock, Ok(Reply::Unlocked(_))), "{unlock:?}");
    (agent, me, recovery_codes, totp)
}

/// The newest audit records include the reveal of "gh".
async fn assert_reveal_audited(agent: &Arc<Agent>, me: &Actor) {
    let Ok(Reply::Audit { rows }) = agent
        .handle(Request::AuditTail { limit: 5 }, me.clone())
        .await
    else {
        panic!("audit tail");
    };
    assert!(rows
        .iter()
        .any(|r| r.action == "reveal" && r.target.as_deref() == Some("gh")));
}

/// Stores the static key "gh" whose secret the tests reveal.
async fn add_canary(agent: &Arc<Agent>, me: &Actor) {
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
}

#[tokio::test]
async fn reveal_gives_the_app_the_secret_and_is_audited_and_refused_when_locked() {
    let dir = tempfile::tempdir().expect("dir");
    let (agent, me) = unlocked_agent(dir.path()).await;
    add_canary(&agent, &me).await;
    let secret = agent
        .reveal_secret("gh".into(), me.clone())
        .await
        .expect("reveal");
    assert_eq!(secret.expose_secret(), "ghp_canary_value_42");
    assert_reveal_audited(&agent, &me).await;
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
                    iam_endpoint: None,
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
                        exec: None,
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
    assert_eq!(info.ttl_secs, Some(3600));
    agent
        .decide_approval(&info.id, Decision::Deny, Answerer::App, &me)
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
        .decide_approval(&info.id, Decision::Hours(1), Answerer::App, &me)
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

fn code(r: &Result<Reply, keyward_agent::protocol::ErrorReply>) -> Option<ErrorCode> {
    r.as_ref().err().map(|e| e.code)
}

async fn reveal(agent: &Arc<Agent>, who: Actor, token: &str) -> Result<Reply, ErrorCode> {
    agent
        .handle(
            Request::Reveal {
                name: "gh".into(),
                token: w(token),
            },
            who,
        )
        .await
        .map_err(|e| e.code)
}

async fn confirm(agent: &Arc<Agent>, who: Actor, token: &str, code: &str) -> Result<(), ErrorCode> {
    match agent
        .handle(
            Request::ConfirmFactor {
                token: w(token),
                code: w(code),
            },
            who,
        )
        .await
    {
        Ok(Reply::Done) => Ok(()),
        Ok(other) => panic!("confirm: {other:?}"),
        Err(e) => Err(e.code),
    }
}

async fn unlock_through(agent: &Arc<Agent>, who: Actor, recovery: &WireSecret) -> Option<String> {
    let r = agent
        .handle(
            Request::Unlock {
                passphrase: w(PASS),
                factor: FactorInput::Recovery {
                    code: recovery.clone(),
                },
                window: true,
            },
            who,
        )
        .await;
    match r {
        Ok(Reply::Unlocked(Unlocked { window_token, .. })) => {
            window_token.map(|t| t.expose().to_owned())
        }
        other => panic!("unlock: {other:?}"),
    }
}

#[tokio::test]
async fn only_a_window_holding_a_token_reveals_keys_or_answers_approvals() {
    let dir = tempfile::tempdir().expect("dir");
    let (agent, me, mut recovery, totp) = unlocked_agent_for(dir.path(), Some(APP)).await;
    add_canary(&agent, &me).await;

    // The vault was unlocked elsewhere (the CLI): the app's executable alone reveals nothing,
    // nor does any other program, whatever token it makes up.
    let guess = "0".repeat(64);
    assert_eq!(
        reveal(&agent, window(), &guess).await.err(),
        Some(ErrorCode::Forbidden)
    );
    assert_eq!(
        reveal(&agent, aws_cli(), &guess).await.err(),
        Some(ErrorCode::Forbidden)
    );

    // Unlocked through the window: it gets a token, and with it the secret (audited).
    agent.lock(&me, "test");
    let token = unlock_through(&agent, window(), &recovery.pop().expect("code"))
        .await
        .expect("the window gets a token");
    match reveal(&agent, window(), &token).await {
        Ok(Reply::Revealed { secret }) => assert_eq!(secret.expose(), "ghp_canary_value_42"),
        other => panic!("reveal: {other:?}"),
    }
    assert_reveal_audited(&agent, &me).await;

    // The token is the window's: another program presenting it is still refused.
    assert_eq!(
        reveal(&agent, aws_cli(), &token).await.err(),
        Some(ErrorCode::Forbidden)
    );

    // Approvals: the window with its token passes the check (the id is unknown, so the answer
    // is "invalid"), without it the window is refused.
    let approve = |token: Option<&str>| Request::Approve {
        id: "no-such-request".into(),
        decision: Decision::Once,
        token: token.map(w),
        code: None,
    };
    let with = agent.handle(approve(Some(&token)), window()).await;
    assert_eq!(code(&with), Some(ErrorCode::Invalid), "{with:?}");
    let without = agent.handle(approve(None), window()).await;
    assert_eq!(code(&without), Some(ErrorCode::Forbidden), "{without:?}");
    let other = agent.handle(approve(Some(&token)), aws_cli()).await;
    assert_eq!(code(&other), Some(ErrorCode::Forbidden), "{other:?}");

    // Locking ends every token.
    agent.lock(&me, "test");
    let token = unlock_through(&agent, window(), &recovery.pop().expect("code"))
        .await
        .expect("token");
    let other_program = unlock_through(&agent, aws_cli(), &recovery.pop().expect("code")).await;
    assert!(
        other_program.is_none(),
        "only the app's window gets a token"
    );
    assert!(reveal(&agent, window(), &token).await.is_ok());
    agent.lock(&me, "test");
    assert_eq!(
        reveal(&agent, window(), &token).await.err(),
        Some(ErrorCode::Forbidden)
    );

    // A window the agent starts gets a token of its own (the tray hands it over on a pipe);
    // it reveals once a factor is confirmed in it; when that window closes, its token ends.
    let _ = unlock_through(&agent, aws_cli(), &recovery.pop().expect("code")).await;
    let started = agent.desktop.issue_token(false);
    // (init spent this step's code: the next step's is the fresh one)
    let _ = confirm(
        &agent,
        window(),
        started.expose(),
        &totp.code_at(now() + 30),
    )
    .await;
    assert!(reveal(&agent, window(), started.expose()).await.is_ok());
    let closed = agent
        .handle(
            Request::Window {
                closed: true,
                token: Some(started.clone()),
            },
            window(),
        )
        .await;
    assert!(matches!(closed, Ok(Reply::Window(_))), "{closed:?}");
    assert_eq!(
        reveal(&agent, window(), started.expose()).await.err(),
        Some(ErrorCode::Forbidden)
    );
}

#[tokio::test]
async fn a_headless_agent_opens_no_window_and_trusts_no_app() {
    let dir = tempfile::tempdir().expect("dir");
    let (agent, _me) = unlocked_agent(dir.path()).await;
    let open = agent.handle(Request::OpenWindow {}, aws_cli()).await;
    assert_eq!(code(&open), Some(ErrorCode::Invalid), "{open:?}");
    let poll = agent
        .handle(
            Request::Window {
                closed: false,
                token: None,
            },
            window(),
        )
        .await;
    assert_eq!(code(&poll), Some(ErrorCode::Forbidden), "{poll:?}");
}

#[tokio::test]
async fn a_window_reveals_only_within_a_minute_of_a_factor_given_in_it() {
    let dir = tempfile::tempdir().expect("dir");
    let (agent, me, _, totp) = unlocked_agent_for(dir.path(), Some(APP)).await;
    add_canary(&agent, &me).await;
    // The window the tray opens on an unlocked vault: trusted, but nobody typed anything in it.
    let token = agent.desktop.issue_token(false);
    let token = token.expose();
    assert_eq!(
        reveal(&agent, window(), token).await.err(),
        Some(ErrorCode::FactorNeeded),
        "a window token alone reveals nothing"
    );

    // A wrong code is refused (and counted); another program cannot confirm for the window.
    // Init spent this step's code: the next step's is the current unused one.
    let code = totp.code_at(now() + 30);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        confirm(&agent, window(), token, wrong).await.err(),
        Some(ErrorCode::WrongCredentials)
    );
    assert_eq!(
        confirm(&agent, aws_cli(), token, &code).await.err(),
        Some(ErrorCode::Forbidden)
    );
    assert_eq!(
        confirm(&agent, window(), &"0".repeat(64), &code)
            .await
            .err(),
        Some(ErrorCode::Forbidden),
        "no such window"
    );
    assert_eq!(
        reveal(&agent, window(), token).await.err(),
        Some(ErrorCode::FactorNeeded)
    );

    // A current code: this window reveals (and copies) for the next minute.
    assert_eq!(confirm(&agent, window(), token, &code).await, Ok(()));
    match reveal(&agent, window(), token).await {
        Ok(Reply::Revealed { secret }) => assert_eq!(secret.expose(), "ghp_canary_value_42"),
        other => panic!("reveal: {other:?}"),
    }
    assert!(
        reveal(&agent, window(), token).await.is_ok(),
        "Copy after Reveal asks nothing more"
    );
    // The code is spent: it does not confirm a second time.
    assert_eq!(
        confirm(&agent, window(), token, &code).await.err(),
        Some(ErrorCode::WrongCredentials)
    );

    // Each check is audited, the wrong one as failed.
    let Ok(Reply::Audit { rows }) = agent
        .handle(Request::AuditTail { limit: 30 }, me.clone())
        .await
    else {
        panic!("audit tail");
    };
    let checks: Vec<&str> = rows
        .iter()
        .filter(|r| r.action == "factor.check")
        .map(|r| r.outcome.as_str())
        .collect();
    assert_eq!(checks, ["failed", "ok", "failed"], "{rows:?}");
}
