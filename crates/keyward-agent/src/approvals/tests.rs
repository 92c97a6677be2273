use super::*;

fn client(exe: &str) -> ClientId {
    ClientId {
        exe: exe.into(),
        script: None,
        unvouched: None,
    }
}

#[test]
fn once_allows_one_request_and_leaves_no_grant() {
    let a = Approvals::default();
    let aws = client("/usr/bin/aws");
    let (info, _) = a
        .ask(
            aws.clone(),
            vec![],
            "prod",
            keyward_core::EntryKind::Aws,
            Some(3600),
            None,
        )
        .expect("ask");
    a.decide(&info.id, Decision::Once, Answerer::App)
        .expect("decide");
    assert_eq!(
        a.take_decision(&info.id, &aws, "prod"),
        Some(Decision::Once)
    );
    assert_eq!(a.take_decision(&info.id, &aws, "prod"), None, "used up");
    assert!(!a.granted(&aws, "prod"));
}

#[test]
fn a_decision_does_not_transfer_to_another_client_or_profile() {
    let a = Approvals::default();
    let aws = client("/usr/bin/aws");
    let (info, _) = a
        .ask(
            aws.clone(),
            vec![],
            "prod",
            keyward_core::EntryKind::Aws,
            Some(3600),
            None,
        )
        .expect("ask");
    a.decide(&info.id, Decision::Once, Answerer::App)
        .expect("decide");
    assert_eq!(
        a.take_decision(&info.id, &client("/tmp/evil"), "prod"),
        None
    );
    assert_eq!(a.take_decision(&info.id, &aws, "other"), None);
    assert_eq!(
        a.take_decision(&info.id, &aws, "prod"),
        Some(Decision::Once)
    );
}

#[test]
fn hours_and_until_lock_grant_that_client_and_profile_only_until_lock() {
    let a = Approvals::default();
    let aws = client("/usr/bin/aws");
    let tf = client("/usr/bin/terraform");
    let (i1, _) = a
        .ask(
            aws.clone(),
            vec![],
            "prod",
            keyward_core::EntryKind::Aws,
            Some(3600),
            None,
        )
        .expect("ask");
    a.decide(&i1.id, Decision::Hours(8), Answerer::App)
        .expect("decide");
    let (i2, _) = a
        .ask(
            tf.clone(),
            vec![],
            "dev",
            keyward_core::EntryKind::Aws,
            Some(3600),
            None,
        )
        .expect("ask");
    a.decide(&i2.id, Decision::UntilLock, Answerer::App)
        .expect("decide");
    assert!(a.granted(&aws, "prod") && a.granted(&tf, "dev"));
    assert!(!a.granted(&aws, "dev") && !a.granted(&tf, "prod"));
    let listed = a.list();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|g| g.expires.is_some()));
    assert!(listed.iter().any(|g| g.expires.is_none()));
    a.clear();
    assert!(!a.granted(&aws, "prod") && a.list().is_empty());
}

#[test]
fn deny_grants_nothing_and_a_request_is_answered_once() {
    let a = Approvals::default();
    let aws = client("/usr/bin/aws");
    let (info, _) = a
        .ask(
            aws.clone(),
            vec![],
            "prod",
            keyward_core::EntryKind::Aws,
            Some(3600),
            None,
        )
        .expect("ask");
    a.decide(&info.id, Decision::Deny, Answerer::App)
        .expect("decide");
    assert_eq!(
        a.decide(&info.id, Decision::UntilLock, Answerer::App).err(),
        Some(ApprovalError::NoSuchRequest)
    );
    assert!(!a.granted(&aws, "prod"));
    assert_eq!(
        a.decide("nope", Decision::Once, Answerer::App).err(),
        Some(ApprovalError::NoSuchRequest)
    );
    assert_eq!(
        a.decide(&info.id, Decision::Hours(0), Answerer::App).err(),
        Some(ApprovalError::BadHours)
    );
}

#[test]
fn a_program_running_unvouched_code_is_allowed_once_never_for_longer() {
    let a = Approvals::default();
    let sh = ClientId {
        unvouched: Some("it runs code given on its command line".into()),
        ..client("/usr/bin/dash")
    };
    let (info, _) = a
        .ask(
            sh.clone(),
            vec![],
            "prod",
            keyward_core::EntryKind::Aws,
            Some(3600),
            None,
        )
        .expect("ask");
    for standing in [Decision::Hours(8), Decision::UntilLock] {
        assert!(matches!(
            a.decide(&info.id, standing, Answerer::App),
            Err(ApprovalError::OnlyOnce(..))
        ));
    }
    // Still open: the user can answer again with what is possible.
    a.decide(&info.id, Decision::Once, Answerer::App)
        .expect("once");
    assert_eq!(a.take_decision(&info.id, &sh, "prod"), Some(Decision::Once));
    assert!(!a.granted(&sh, "prod") && a.list().is_empty());
}

#[test]
fn revoke_removes_the_grant() {
    let a = Approvals::default();
    let aws = client("/usr/bin/aws");
    let g = a.allow(aws.clone(), "prod", Some(1)).expect("allow");
    assert!(a.granted(&aws, "prod"));
    a.revoke(&g.id).expect("revoke");
    assert!(!a.granted(&aws, "prod"));
    assert!(matches!(
        a.revoke(&g.id),
        Err(ApprovalError::NoSuchGrant(_))
    ));
}

#[test]
fn pending_requests_are_bounded() {
    let a = Approvals::default();
    let first = a
        .ask(
            client("/a"),
            vec![],
            "p",
            keyward_core::EntryKind::Aws,
            Some(1),
            None,
        )
        .expect("ask")
        .0;
    for i in 0..100 {
        a.ask(
            client(&format!("/x{i}")),
            vec![],
            "p",
            keyward_core::EntryKind::Aws,
            Some(1),
            None,
        )
        .expect("ask");
    }
    assert_eq!(a.pending().len(), MAX_PENDING, "bounded");
    a.decide(&first.id, Decision::Once, Answerer::App)
        .expect("the first question was not pushed out");
}

#[test]
fn the_client_is_the_nearest_process_that_is_not_keyward() {
    let p = |pid, exe: &str| ProcessInfo {
        pid,
        exe: Some(exe.into()),
        script: None,
        unvouched: None,
    };
    let own = own_exe().expect("own exe").to_string_lossy().into_owned();
    let actor = Actor {
        uid: Some(1000),
        pid: Some(10),
        chain: vec![p(10, &own), p(9, "/usr/bin/terraform"), p(8, "/bin/bash")],
    };
    assert_eq!(client_of(&actor), Some(client("/usr/bin/terraform")));
    // Any other program called `keyward` is a client like the rest, not a messenger.
    let impostor = Actor {
        chain: vec![p(10, "/tmp/x/keyward"), p(9, "/usr/bin/terraform")],
        ..actor
    };
    assert_eq!(client_of(&impostor), Some(client("/tmp/x/keyward")));
}

#[test]
fn a_process_answers_only_the_question_put_to_it() {
    let a = Approvals::default();
    let (info, _) = a
        .ask(
            client("/usr/bin/aws"),
            vec![],
            "prod",
            keyward_core::EntryKind::Aws,
            Some(1),
            Some(10),
        )
        .expect("ask");
    assert_eq!(
        a.decide(&info.id, Decision::UntilLock, Answerer::Process(11))
            .err(),
        Some(ApprovalError::NoSuchRequest),
        "another keyward process"
    );
    assert!(!a.granted(&client("/usr/bin/aws"), "prod"));
    a.decide(&info.id, Decision::Once, Answerer::Process(10))
        .expect("the asker answers");
}

#[test]
fn a_flood_from_one_program_does_not_push_out_anothers_question() {
    let a = Approvals::default();
    let ask = |c: &str| {
        a.ask(
            client(c),
            vec![],
            "p",
            keyward_core::EntryKind::Aws,
            Some(1),
            None,
        )
    };
    let real = ask("/usr/bin/aws").expect("ask").0;
    for _ in 0..MAX_PENDING_PER_CLIENT {
        ask("/tmp/flood").expect("within the cap");
    }
    assert!(matches!(
        ask("/tmp/flood"),
        Err(ApprovalError::TooManyPending(_))
    ));
    for i in 0..(MAX_PENDING * 2) {
        let _ = ask(&format!("/tmp/flood{i}"));
    }
    a.decide(&real.id, Decision::Once, Answerer::App)
        .expect("the real question is still there");
}
