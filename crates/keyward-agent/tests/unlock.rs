//! Unlocking while other requests arrive: the seconds of Argon2id must not stop the agent
//! answering, and splitting the unlock so the vault stays free must not let attempts overlap
//! (each attempt sees the failures counted before it). A real vault with the file keystore.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keyward_agent::protocol::{
    ErrorCode, FactorInput, KdfChoice, KeystoreChoice, NewVault, Reply, Request,
};
use keyward_agent::Agent;
use keyward_core::audit::Actor;
use keyward_core::factors::TotpSetup;
use keyward_core::{Vault, VaultPaths};
use secrecy::ExposeSecret;

mod common;
use common::{now, w, PASS};

/// A locked vault whose passphrase is stretched with `kdf`, its agent and its TOTP factor.
async fn locked_agent(dir: &std::path::Path, kdf: KdfChoice) -> (Arc<Agent>, Actor, TotpSetup) {
    let vault = Vault::open(VaultPaths {
        data_dir: dir.to_path_buf(),
    })
    .expect("open");
    let agent = Arc::new(Agent::new(vault, Some(Duration::from_secs(900))).expect("agent"));
    let me = keyward_agent::peer::this_process();
    let totp = TotpSetup::generate("test").expect("totp");
    let init = agent
        .handle(
            Request::Init(NewVault {
                passphrase: w(PASS),
                totp_secret: w(totp.secret_base32().expose_secret()),
                totp_code: w(&totp.code_at(now())),
                keystore: KeystoreChoice::File,
                kdf: Some(kdf),
                unlock: false,
                window: false,
            }),
            me.clone(),
        )
        .await;
    assert!(matches!(init, Ok(Reply::Initialized(_))), "{init:?}");
    (agent, me, totp)
}

fn unlock_request(passphrase: &str, code: &str) -> Request {
    Request::Unlock {
        passphrase: w(passphrase),
        factor: FactorInput::Totp { code: w(code) },
        window: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_answers_status_while_an_unlock_stretches_the_passphrase() {
    let dir = tempfile::tempdir().expect("dir");
    // 256 MiB × 8 passes: a second or more of Argon2id on this machine.
    let kdf = KdfChoice {
        memory_mib: 256,
        iterations: 8,
    };
    let (agent, me, totp) = locked_agent(dir.path(), kdf).await;

    let done = Arc::new(AtomicBool::new(false));
    let unlocking = {
        let (agent, me, done) = (Arc::clone(&agent), me.clone(), Arc::clone(&done));
        let code = totp.code_at(now() + 30);
        tokio::spawn(async move {
            let r = agent.handle(unlock_request(PASS, &code), me).await;
            done.store(true, Ordering::SeqCst);
            r
        })
    };
    // One status after another for as long as the unlock runs. Holding the vault through the
    // stretching would answer none of them until the unlock is over (one at most, racing its
    // end).
    let mut answered_meanwhile = 0;
    while !done.load(Ordering::SeqCst) {
        let status = agent.handle(Request::Status {}, me.clone()).await;
        let Ok(Reply::Status(s)) = status else {
            panic!("status: {status:?}");
        };
        if !done.load(Ordering::SeqCst) {
            assert!(s.vault, "status names the vault");
            answered_meanwhile += 1;
        }
    }
    let unlocked = unlocking.await.expect("task");
    assert!(matches!(unlocked, Ok(Reply::Unlocked(_))), "{unlocked:?}");
    assert!(agent.is_unlocked());
    assert!(
        answered_meanwhile >= 5,
        "status answered {answered_meanwhile} times while the unlock ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_unlocks_sent_at_once_are_counted_one_after_another() {
    let dir = tempfile::tempdir().expect("dir");
    let kdf = KdfChoice {
        memory_mib: 64,
        iterations: 3,
    };
    let (agent, me, totp) = locked_agent(dir.path(), kdf).await;

    // Seven guesses at once. Two failures are free, the third brings a delay: checked one at
    // a time, later guesses are refused unheard; all checked side by side, every one would be
    // heard.
    const GUESSES: usize = 7;
    let code = totp.code_at(now());
    let tasks: Vec<_> = (0..GUESSES)
        .map(|i| {
            let (agent, me) = (Arc::clone(&agent), me.clone());
            let guess = format!("wrong-guess-{i}-quartz");
            let code = code.clone();
            tokio::spawn(async move { agent.handle(unlock_request(&guess, &code), me).await })
        })
        .collect();
    let (mut wrong, mut throttled) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Err(e) if e.code == ErrorCode::WrongCredentials => wrong += 1,
            Err(e) if e.code == ErrorCode::Throttled => throttled += 1,
            other => panic!("a wrong passphrase: {other:?}"),
        }
    }
    assert!(!agent.is_unlocked());
    assert!(
        throttled >= 2 && wrong + throttled == GUESSES,
        "{wrong} guesses heard, {throttled} refused by the delay"
    );

    let Ok(Reply::Audit { rows }) = agent
        .handle(Request::AuditTail { limit: 20 }, me.clone())
        .await
    else {
        panic!("audit tail");
    };
    let failed = rows
        .iter()
        .filter(|r| r.action == "unlock" && r.outcome == "failed")
        .count();
    let refused = rows
        .iter()
        .filter(|r| r.action == "unlock" && r.outcome == "throttled")
        .count();
    assert_eq!((failed, refused), (wrong, throttled), "every guess audited");
}
