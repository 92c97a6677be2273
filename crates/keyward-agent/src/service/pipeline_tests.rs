//! The issuance pipeline with a fake provider: caching, single flight, failures, a lock during
//! the call, another kind of key and the approval gate, on a real vault (file keystore).

use std::sync::atomic::AtomicUsize;

use keyward_core::audit::ProcessInfo;
use tokio::sync::Semaphore;

use super::*;
use crate::cache::{CredCache, Issued};
use crate::protocol::{KdfChoice, NewVault, OAuth2Token};
use crate::provider::Provider;

const PASS: &str = "orbit-maple-quartz-lantern-7";

fn w(s: &str) -> WireSecret {
    WireSecret::new(s.to_owned())
}

#[derive(Clone, Debug)]
struct FakeCred {
    n: usize,
    cached: bool,
}

impl Issued for FakeCred {
    fn set_cached(&mut self) {
        self.cached = true;
    }
}

/// Issues from static keys: credential n is the n-th upstream call.
#[derive(Default)]
struct Fake {
    cache: CredCache<FakeCred>,
    calls: AtomicUsize,
    /// Calls that fail before the first success.
    failures: AtomicUsize,
    /// Issue credentials without an expiry (not cacheable).
    no_expiry: bool,
    /// When set, each call waits for a permit (so a test can act while it is upstream).
    hold: Option<Semaphore>,
}

impl Provider for Fake {
    type Credential = FakeCred;
    type Error = ErrorReply;
    type Input = ();
    const KIND: EntryKind = EntryKind::Static;

    fn cache(&self) -> &CredCache<FakeCred> {
        &self.cache
    }

    fn ttl_secs(&self, _meta: &EntryMeta) -> Option<u64> {
        Some(3600)
    }

    async fn issue(
        &self,
        _meta: &EntryMeta,
        secret: SecretValue,
        (): (),
    ) -> Result<(FakeCred, Option<time::OffsetDateTime>), ErrorReply> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(
            matches!(&secret, SecretValue::Static { value } if value.expose_secret() == "long-lived"),
            "the provider gets the decrypted secret"
        );
        if let Some(hold) = &self.hold {
            hold.acquire().await.expect("permit").forget();
        }
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
            .is_ok()
        {
            return Err(err(ErrorCode::Upstream, "the fake upstream refused"));
        }
        let expires =
            (!self.no_expiry).then(|| time::OffsetDateTime::now_utc() + time::Duration::hours(1));
        Ok((FakeCred { n, cached: false }, expires))
    }

    fn audit_detail(&self, _meta: &EntryMeta, c: &FakeCred) -> serde_json::Value {
        serde_json::json!({ "kind": "fake", "n": c.n, "cached": c.cached })
    }
}

impl From<FakeCred> for Reply {
    fn from(c: FakeCred) -> Reply {
        Reply::Oauth2Token(OAuth2Token {
            access_token: WireSecret::new(format!("fake-{}", c.n)),
            token_type: "Fake".into(),
            expires_at: None,
            scope: None,
            cached: c.cached,
        })
    }
}

fn calls(f: &Fake) -> usize {
    f.calls.load(Ordering::SeqCst)
}

/// (credential number, from the cache) of a reply.
fn got(r: &Outcome) -> (String, bool) {
    match r {
        Ok(Reply::Oauth2Token(t)) => (t.access_token.expose().to_owned(), t.cached),
        other => panic!("expected a credential, got {other:?}"),
    }
}

/// An unlocked agent with static key `k` (secret "long-lived") and AWS key `a`.
async fn agent(dir: &std::path::Path) -> Arc<Agent> {
    let vault = Vault::open(keyward_core::VaultPaths {
        data_dir: dir.to_path_buf(),
    })
    .expect("open");
    let agent = Arc::new(Agent::new(vault, Some(Duration::from_secs(900))).expect("agent"));
    let totp = TotpSetup::generate("test").expect("totp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let me = crate::peer::this_process();
    let init = agent
        .handle(
            Request::Init(NewVault {
                passphrase: w(PASS),
                totp_secret: w(totp.secret_base32().expose_secret()),
                totp_code: w(&totp.code_at(now)),
                keystore: KeystoreChoice::File,
                kdf: Some(KdfChoice {
                    memory_mib: 8,
                    iterations: 1,
                }),
                unlock: true,
                window: false,
            }),
            me.clone(),
        )
        .await;
    assert!(init.is_ok(), "init: {init:?}");
    let add = agent
        .handle(
            Request::AddStatic {
                name: "k".into(),
                meta: MetaInput::default(),
                value: w("long-lived"),
            },
            me.clone(),
        )
        .await;
    assert!(add.is_ok(), "add: {add:?}");
    let add = agent
        .handle(
            Request::AddAws {
                name: "a".into(),
                meta: MetaInput::default(),
                aws: AwsKeyInput {
                    // Made up here: 16 characters after AKIA, as the check wants.
                    access_key_id: format!("AKIA{}", "TEST".repeat(4)),
                    secret_access_key: w(&"k".repeat(40)),
                    role_arn: None,
                    mfa_serial: None,
                    region: None,
                    session_duration_secs: None,
                    sts_endpoint: None,
                    iam_endpoint: None,
                },
            },
            me,
        )
        .await;
    assert!(add.is_ok(), "add: {add:?}");
    agent
}

/// The audit trail's rows of `action`: (outcome, detail).
async fn recorded(agent: &Arc<Agent>, action: &str) -> Vec<(String, serde_json::Value)> {
    let tail = agent
        .handle(
            Request::AuditTail { limit: 1000 },
            crate::peer::this_process(),
        )
        .await;
    let Ok(Reply::Audit { rows }) = tail else {
        panic!("audit tail: {tail:?}");
    };
    rows.into_iter()
        .filter(|r| r.action == action)
        .map(|r| (r.outcome, r.detail))
        .collect()
}

/// The issuance rows of the audit trail: (outcome, detail).
async fn issues(agent: &Arc<Agent>) -> Vec<(String, serde_json::Value)> {
    recorded(agent, "issue").await
}

/// The outcomes of the audit trail's rows of `action`.
async fn outcomes(agent: &Arc<Agent>, action: &str) -> Vec<String> {
    recorded(agent, action)
        .await
        .into_iter()
        .map(|(o, _)| o)
        .collect()
}

async fn ask(agent: &Arc<Agent>, fake: &Fake, profile: &str) -> Outcome {
    agent
        .issue_with(
            fake,
            profile.to_owned(),
            (),
            None,
            crate::peer::this_process(),
            true,
        )
        .await
}

#[tokio::test]
async fn a_cached_credential_goes_out_without_a_second_call_and_each_is_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent(dir.path()).await;
    let fake = Fake::default();
    assert_eq!(
        got(&ask(&agent, &fake, "k").await),
        ("fake-1".into(), false)
    );
    assert_eq!(got(&ask(&agent, &fake, "k").await), ("fake-1".into(), true));
    assert_eq!(calls(&fake), 1);
    let rows = issues(&agent).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|(o, _)| o == "ok"));
    assert_eq!(
        rows.iter()
            .map(|(_, d)| d["cached"].clone())
            .collect::<Vec<_>>(),
        vec![serde_json::json!(false), serde_json::json!(true)]
    );
}

#[tokio::test]
async fn concurrent_cold_requests_make_one_upstream_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent(dir.path()).await;
    let fake = Arc::new(Fake {
        hold: Some(Semaphore::new(0)),
        ..Fake::default()
    });
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (agent, fake) = (Arc::clone(&agent), Arc::clone(&fake));
            tokio::spawn(async move { ask(&agent, &fake, "k").await })
        })
        .collect();
    while calls(&fake) == 0 {
        tokio::task::yield_now().await;
    }
    if let Some(hold) = &fake.hold {
        hold.add_permits(8);
    }
    for t in tasks {
        assert_eq!(got(&t.await.expect("task")).0, "fake-1");
    }
    assert_eq!(calls(&fake), 1, "one call for eight requests");
}

#[tokio::test]
async fn a_failed_call_is_audited_as_failed_and_nothing_is_cached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent(dir.path()).await;
    let fake = Fake {
        failures: AtomicUsize::new(1),
        ..Fake::default()
    };
    let e = ask(&agent, &fake, "k").await.expect_err("refused upstream");
    assert_eq!(e.code, ErrorCode::Upstream);
    assert_eq!(e.message, "the fake upstream refused");
    assert_eq!(
        got(&ask(&agent, &fake, "k").await),
        ("fake-2".into(), false)
    );
    let outcomes: Vec<String> = issues(&agent).await.into_iter().map(|(o, _)| o).collect();
    assert_eq!(outcomes, vec!["failed", "ok"]);
}

#[tokio::test]
async fn a_credential_without_an_expiry_is_handed_out_once_not_cached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent(dir.path()).await;
    let fake = Fake {
        no_expiry: true,
        ..Fake::default()
    };
    assert_eq!(got(&ask(&agent, &fake, "k").await).0, "fake-1");
    assert_eq!(got(&ask(&agent, &fake, "k").await).0, "fake-2");
    assert!(fake.cache.fresh("k").is_none());
}

#[tokio::test]
async fn a_lock_during_the_call_hands_out_nothing_and_caches_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent(dir.path()).await;
    let fake = Arc::new(Fake {
        hold: Some(Semaphore::new(0)),
        ..Fake::default()
    });
    let task = {
        let (agent, fake) = (Arc::clone(&agent), Arc::clone(&fake));
        tokio::spawn(async move { ask(&agent, &fake, "k").await })
    };
    while calls(&fake) == 0 {
        tokio::task::yield_now().await;
    }
    agent.lock(&crate::peer::this_process(), "test");
    if let Some(hold) = &fake.hold {
        hold.add_permits(1);
    }
    let e = task.await.expect("task").expect_err("locked meanwhile");
    assert_eq!(e.code, ErrorCode::Locked);
    assert!(fake.cache.fresh("k").is_none(), "nothing cached");
}

#[tokio::test]
async fn another_kind_of_key_is_refused_before_any_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent(dir.path()).await;
    let fake = Fake::default();
    let e = ask(&agent, &fake, "a").await.expect_err("an AWS key");
    assert_eq!(e.code, ErrorCode::Invalid);
    assert!(e.message.contains("'a'"), "{}", e.message);
    let e = ask(&agent, &fake, "nope").await.expect_err("no such key");
    assert_eq!(e.code, ErrorCode::NotFound);
    assert_eq!(calls(&fake), 0);
}

#[tokio::test]
async fn an_unapproved_program_gets_the_question_not_the_credential() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent(dir.path()).await;
    let fake = Fake::default();
    let tool = Actor {
        uid: Some(1000),
        pid: Some(999_999),
        chain: vec![ProcessInfo {
            pid: 999_999,
            exe: Some("/usr/bin/some-tool".into()),
            script: None,
            unvouched: None,
        }],
    };
    let asked = |r: Outcome| match r {
        Ok(Reply::ApprovalNeeded { approval }) => approval,
        other => panic!("expected the approval question, got {other:?}"),
    };
    let q = asked(
        agent
            .issue_with(&fake, "k".into(), (), None, tool.clone(), true)
            .await,
    );
    assert_eq!(q.client.exe, "/usr/bin/some-tool");
    assert_eq!(q.ttl_secs, Some(3600));
    assert_eq!(calls(&fake), 0, "no call before the answer");
    // A cached credential is gated the same way.
    got(&ask(&agent, &fake, "k").await);
    asked(
        agent
            .issue_with(&fake, "k".into(), (), None, tool, true)
            .await,
    );
    assert_eq!(calls(&fake), 1);
}

/// The audit rows' (action, target) after `seq`.
async fn trail_after(agent: &Arc<Agent>, seq: i64) -> Vec<(String, Option<String>)> {
    let me = crate::peer::this_process();
    match agent.handle(Request::AuditTail { limit: 1000 }, me).await {
        Ok(Reply::Audit { rows }) => rows
            .into_iter()
            .filter(|r| r.seq > seq)
            .map(|r| (r.action, r.target))
            .collect(),
        other => panic!("audit tail: {other:?}"),
    }
}

#[tokio::test]
async fn the_dispatch_records_each_read_once_and_a_failed_one_not_at_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent(dir.path()).await;
    let me = crate::peer::this_process();
    let start = match agent
        .handle(Request::AuditTail { limit: 1 }, me.clone())
        .await
    {
        Ok(Reply::Audit { rows }) => rows.last().map(|r| r.seq).unwrap_or(0),
        other => panic!("{other:?}"),
    };
    for req in [
        Request::Status {},
        Request::List {},
        Request::Show { name: "k".into() },
        Request::History {
            name: "k".into(),
            limit: 5,
        },
        Request::Factors {},
        Request::AuditVerify {},
        // Not recorded: the window's poll and the grants it lists.
        Request::Grants {},
        Request::Ping {},
    ] {
        let r = agent.handle(req, me.clone()).await;
        assert!(r.is_ok(), "{r:?}");
    }
    // A read that fails leaves no record.
    let missing = agent
        .handle(
            Request::Show {
                name: "nope".into(),
            },
            me.clone(),
        )
        .await;
    assert!(missing.is_err());
    let k = Some("k".to_owned());
    let seen = trail_after(&agent, start).await;
    assert_eq!(
        seen,
        [
            // The first tail read (the one that found `start`).
            ("audit.tail".to_owned(), None),
            ("status".to_owned(), None),
            ("list".to_owned(), None),
            ("show".to_owned(), k.clone()),
            ("history".to_owned(), k),
            ("factors".to_owned(), None),
            ("audit.verify".to_owned(), None),
        ]
    );
}

#[tokio::test]
async fn a_key_the_policy_blocks_issues_nothing_cached_or_not_and_the_refusal_is_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent(dir.path()).await;
    let fake = Fake::default();
    let me = crate::peer::this_process();
    let expired = MetaInput {
        tags: vec!["prod".into()],
        expires: Some("2026-01-01T00:00:00Z".into()),
        ..MetaInput::default()
    };
    let edit = agent
        .handle(
            Request::Update {
                name: "k".into(),
                meta: expired,
            },
            me,
        )
        .await;
    assert!(edit.is_ok(), "{edit:?}");
    // Expired but no policy: issued (and cached).
    got(&ask(&agent, &fake, "k").await);
    let policy = |text: &str| {
        keyward_core::policy::Policy::parse(std::path::Path::new("p.toml"), text).expect("policy")
    };
    agent.hold_policy(policy(
        "[[rule]]\nname = \"prod\"\ntags = [\"prod\"]\n[rule.limits]\nenforcement = \"block\"\n",
    ));
    let refused = ask(&agent, &fake, "k").await.expect_err("blocked");
    assert_eq!(refused.code, ErrorCode::Policy);
    assert!(
        refused.message.contains("expired on 2026-01-01")
            && refused.message.contains("rule 'prod'")
            && refused.message.contains("keyward rotate k"),
        "{}",
        refused.message
    );
    assert_eq!(calls(&fake), 1, "the cached credential is withheld too");
    // A provider the policy does not allow: refused before any call.
    agent.hold_policy(policy("[defaults]\nallowed_providers = [\"aws\"]\n"));
    let refused = ask(&agent, &fake, "k").await.expect_err("provider");
    assert!(
        refused.message.contains("allows only aws keys"),
        "{}",
        refused.message
    );
    agent.hold_policy(policy("[defaults]\nenforcement = \"warn\"\n"));
    assert_eq!(got(&ask(&agent, &fake, "k").await), ("fake-1".into(), true));
    let outcomes: Vec<String> = issues(&agent).await.into_iter().map(|(o, _)| o).collect();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "refused").count(),
        2,
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn reminders_come_once_per_state_and_at_most_once_a_day_on_an_injected_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent(dir.path()).await;
    let me = crate::peer::this_process();
    let update = |meta: MetaInput| {
        let agent = Arc::clone(&agent);
        let me = me.clone();
        async move {
            let r = agent
                .handle(
                    Request::Update {
                        name: "k".into(),
                        meta,
                    },
                    me,
                )
                .await;
            assert!(r.is_ok(), "{r:?}");
        }
    };
    update(MetaInput {
        expires: Some("2026-01-01T00:00:00Z".into()),
        ..MetaInput::default()
    })
    .await;
    let t0 = time::OffsetDateTime::now_utc();
    let names = |due: Vec<crate::protocol::Listed>| {
        due.into_iter()
            .map(|l| (l.meta.name, l.standing.state))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(agent.reminders_due(t0)),
        [("k".into(), EntryState::Expired)]
    );
    assert!(agent.reminders_due(t0).is_empty(), "recorded: not again");
    // Renewed, with a one-day rotation interval: overdue tomorrow. Not again within a day…
    update(MetaInput {
        rotation_interval_days: Some(1),
        ..MetaInput::default()
    })
    .await;
    assert!(agent
        .reminders_due(t0 + time::Duration::hours(2))
        .is_empty());
    // …and then once, for the new state.
    let later = t0 + time::Duration::hours(25);
    assert_eq!(
        names(agent.reminders_due(later)),
        [("k".into(), EntryState::Overdue)]
    );
    assert!(agent
        .reminders_due(later + time::Duration::days(3))
        .is_empty());
    let reminded = outcomes(&agent, "reminder").await;
    assert_eq!(reminded, ["expired", "overdue"]);
}

#[tokio::test]
async fn a_program_or_chain_a_key_never_served_is_reported_as_unusual_and_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent(dir.path()).await;
    let fake = Fake::default();
    let mut told = agent.unusual.subscribe();
    let program = |exe: &str, parent: &str| Actor {
        uid: Some(1000),
        pid: Some(77),
        chain: vec![
            ProcessInfo {
                pid: 77,
                exe: Some(exe.into()),
                script: None,
                unvouched: None,
            },
            ProcessInfo {
                pid: 70,
                exe: Some(parent.into()),
                script: None,
                unvouched: None,
            },
        ],
    };
    // Each program on a standing grant (given ahead, as `keyward grants allow` does), so the
    // gate lets it through without a question.
    let ask_as = |actor: Actor| {
        let agent = Arc::clone(&agent);
        let fake = &fake;
        async move {
            let client = crate::approvals::client_of(&actor).expect("a client");
            agent.approvals.allow(client, "k", None).expect("grant");
            let r = agent
                .issue_with(fake, "k".to_owned(), (), None, actor, true)
                .await;
            got(&r);
        }
    };
    // The first program a key serves is its baseline, not news; the same again is usual.
    ask_as(program("/usr/bin/aws", "/usr/bin/bash")).await;
    ask_as(program("/usr/bin/aws", "/usr/bin/bash")).await;
    // Another program; then the known one from another parent.
    ask_as(program("/usr/bin/curl", "/usr/bin/bash")).await;
    ask_as(program("/usr/bin/aws", "/usr/sbin/cron")).await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let u = tokio::time::timeout(Duration::from_secs(5), told.recv())
            .await
            .expect("told in time")
            .expect("told");
        seen.push((u.client, u.what));
    }
    assert_eq!(
        seen[0],
        ("/usr/bin/curl".to_owned(), usage::Unusual::NewProgram)
    );
    assert_eq!(
        seen[1],
        (
            "/usr/bin/aws".to_owned(),
            usage::Unusual::NewChain {
                chain: "aws ← cron".into()
            }
        )
    );
    assert!(told.try_recv().is_err(), "nothing else was unusual");
    // A program the user approves for this very request is expected: the approval is its record.
    let wget = program("/usr/bin/wget", "/usr/bin/bash");
    let asked = agent
        .issue_with(&fake, "k".to_owned(), (), None, wget.clone(), true)
        .await;
    let Ok(Reply::ApprovalNeeded { approval }) = asked else {
        panic!("the gate asks: {asked:?}")
    };
    let me = crate::peer::this_process();
    agent
        .decide_approval(&approval.id, Decision::Once, Answerer::App, &me)
        .expect("answered");
    let r = agent
        .issue_with(
            &fake,
            "k".to_owned(),
            (),
            Some(approval.id.clone()),
            wget,
            true,
        )
        .await;
    got(&r);
    // Nor is the app's own request (its Test button: not gated, the user's click).
    let app = program("/usr/bin/keyward-desktop", "/usr/lib/systemd/systemd");
    got(&agent
        .issue_with(&fake, "k".to_owned(), (), None, app, false)
        .await);
    // The writer compares after it answers: give it the time it would take.
    let later = tokio::time::timeout(Duration::from_millis(500), told.recv()).await;
    assert!(
        later.is_err(),
        "no notification for the approved one: {later:?}"
    );
    let unusual = outcomes(&agent, "unusual").await;
    assert_eq!(unusual, ["new_program", "new_chain"], "and no row");
}

#[tokio::test]
async fn a_program_over_the_rate_limit_is_refused_and_the_desktop_told_once_per_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent(dir.path()).await;
    let fake = Fake::default();
    let mut told = agent.unusual.subscribe();
    let burst = crate::ratelimit::DEFAULT_BURST as usize;
    let mut refused = 0;
    for _ in 0..burst + 200 {
        match ask(&agent, &fake, "k").await {
            Err(e) if e.code == ErrorCode::Throttled => refused += 1,
            other => {
                got(&other);
            }
        }
    }
    assert!(refused >= 100, "{refused} refused");
    assert_eq!(calls(&fake), 1, "the cache answered the rest");
    let notice = told.try_recv().expect("the desktop is told");
    assert_eq!(notice.key, "k");
    assert!(
        matches!(notice.what, super::usage::Unusual::Throttled { burst: b, .. } if b as usize == burst),
        "{notice:?}"
    );
    assert!(notice.words().contains("faster than the rate limit allows"));
    assert!(
        told.try_recv().is_err(),
        "once per run of refusals, not once per refusal"
    );
}
