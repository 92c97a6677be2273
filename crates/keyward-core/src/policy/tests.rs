use std::os::unix::fs::PermissionsExt;

use super::*;

const FILE: &str = r#"# Rotation for everyone, stricter for production AWS keys.
[defaults]
max_key_age_days = 90
remind_before_days = 14
enforcement = "warn"
max_credential_ttl_secs = 3600
standing_grants = true
allowed_providers = ["aws", "oauth2"]

[[rule]]
name = "prod-aws"
kinds = ["aws"]
tags = ["prod"]
[rule.limits]
max_key_age_days = 30
enforcement = "block"
standing_grants = false

[[rule]]
name = "ci"
tags = ["ci"]
[rule.limits]
max_key_age_days = 60
remind_before_days = 21
"#;

fn policy() -> Policy {
    Policy::parse(Path::new("policy.toml"), FILE).expect("the example parses")
}

fn tags(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_key_gets_the_defaults_and_the_strictest_of_every_rule_that_covers_it() {
    let p = policy();
    let plain = p.for_key(EntryKind::Static, &tags(&[]));
    assert_eq!(
        plain
            .max_key_age_days
            .as_ref()
            .map(|b| (b.value, b.by.as_str())),
        Some((90, "defaults"))
    );
    assert_eq!(
        plain.enforcement.as_ref().map(|b| b.value),
        Some(Enforcement::Warn)
    );

    // Both rules cover it: 30 days (prod-aws) beats 60 (ci); ci's longer reminder window wins.
    let both = p.for_key(EntryKind::Aws, &tags(&["prod", "ci"]));
    let age = both.max_key_age_days.expect("age set");
    assert_eq!((age.value, age.by.as_str()), (30, "rule 'prod-aws'"));
    let remind = both.remind_before_days.expect("reminder set");
    assert_eq!((remind.value, remind.by.as_str()), (21, "rule 'ci'"));
    assert_eq!(both.enforcement.map(|b| b.value), Some(Enforcement::Block));
    assert_eq!(both.standing_grants.map(|b| b.value), Some(false));

    // The prod rule is for AWS keys only.
    let prod_token = p.for_key(EntryKind::Static, &tags(&["prod"]));
    assert_eq!(prod_token.max_key_age_days.map(|b| b.value), Some(90));
}

#[test]
fn a_rule_cannot_loosen_the_defaults() {
    let text = "[defaults]\nmax_key_age_days = 30\nenforcement = \"block\"\n\n[[rule]]\nname = \"lax\"\n[rule.limits]\nmax_key_age_days = 365\nenforcement = \"warn\"\n";
    let p = Policy::parse(Path::new("p.toml"), text).expect("parses");
    let e = p.for_key(EntryKind::Aws, &[]);
    let age = e.max_key_age_days.expect("set");
    assert_eq!((age.value, age.by.as_str()), (30, "defaults"));
    assert_eq!(e.enforcement.map(|b| b.value), Some(Enforcement::Block));
}

#[test]
fn a_user_setting_may_tighten_the_policy_and_is_refused_with_the_rules_name_when_it_loosens() {
    let p = policy();
    let stricter = Limits {
        max_key_age_days: Some(60),
        remind_before_days: Some(30),
        enforcement: Some(Enforcement::Block),
        standing_grants: Some(false),
        allowed_providers: Some(tags(&["oauth2", "aws"])),
        ..Limits::default()
    };
    assert_eq!(p.admit(&stricter), Ok(()));

    let longer = Limits {
        max_key_age_days: Some(120),
        ..Limits::default()
    };
    let err = p.admit(&longer).expect_err("a longer age loosens");
    assert_eq!(
        err.to_string(),
        "max_key_age_days = 120 is looser than the administrator's policy (defaults: 90); a setting can only make it stricter"
    );
    let later = Limits {
        remind_before_days: Some(7),
        ..Limits::default()
    };
    assert!(matches!(
        p.admit(&later),
        Err(PolicyError::Looser {
            field: "remind_before_days",
            ..
        })
    ));
    let more = Limits {
        allowed_providers: Some(tags(&["aws", "aliyun"])),
        ..Limits::default()
    };
    assert!(matches!(
        p.admit(&more),
        Err(PolicyError::Looser {
            field: "allowed_providers",
            ..
        })
    ));
    // Nothing set by the admin: the user may set anything.
    assert_eq!(Policy::default().admit(&longer), Ok(()));
}

#[test]
fn an_invalid_file_is_refused_with_its_line_and_the_reason() {
    let cases = [
        (
            "[defaults]\nmax_key_age_days = 90\nmax_age = 3\n",
            3,
            "unknown field `max_age`",
        ),
        (
            "[defaults]\nenforcement = \"sometimes\"\n",
            2,
            "unknown variant `sometimes`",
        ),
        ("[defaults]\nmax_key_age_days = -1\n", 2, "invalid value"),
        (
            "[defaults]\nmax_key_age_days = 0\n",
            1,
            "max_key_age_days must be at least 1",
        ),
        (
            "[defaults]\nrate_per_minute = 0\n",
            1,
            "rate_per_minute must be at least 1",
        ),
        (
            "[defaults]\nrate_burst = 5\n",
            1,
            "rate_burst = 5: a call to the provider costs 10",
        ),
        (
            "\n[[rule]]\nname = \"a\"\n[rule.limits]\nmax_credential_ttl_secs = 60\n",
            2,
            "nothing shorter than 900",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule]]\nname = \"a\"\n",
            3,
            "rule 2 needs a name of its own",
        ),
        ("[[rule]]\nkinds = [\"aws\"]\n", 1, "missing field `name`"),
        ("[defaults\n", 1, ""),
    ];
    for (text, line, reason) in cases {
        let err = Policy::parse(Path::new("/etc/keyward/policy.toml"), text).expect_err(text);
        let PolicyError::Invalid {
            line: l, reason: r, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*l, line, "{text:?}: {err}");
        assert!(r.contains(reason), "{text:?}: {err}");
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("/etc/keyward/policy.toml line {line}: ")),
            "{shown}"
        );
        assert!(!shown.contains('\n'), "one line: {shown:?}");
    }
}

fn me() -> u32 {
    std::fs::metadata("/proc/self").expect("proc").uid()
}

#[test]
fn a_policy_file_others_can_write_is_refused_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The file is checked before the directories above it, so the world-writable /tmp above
    // does not hide the file's own fault.
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, FILE).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let err = Policy::load(&path, me()).expect_err("world-writable");
    let PolicyError::Untrusted { path: at, why } = &err else {
        panic!("{err:?}")
    };
    assert!(at.ends_with("policy.toml"), "{err}");
    assert!(why.contains("everyone may write it"), "{err}");
    assert!(err.to_string().contains("must be owned by root"), "{err}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).expect("chmod");
    let err = Policy::load(&path, me()).expect_err("group-writable");
    assert!(err.to_string().contains("its group may write it"), "{err}");

    // Owned by someone other than the admin: refused whatever its mode.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = Policy::load(&path, me().wrapping_add(1)).expect_err("another owner");
    assert!(
        err.to_string().contains(&format!("owned by uid {}", me())),
        "{err}"
    );
}

#[test]
fn a_sound_file_in_a_sound_directory_loads_and_a_missing_one_is_no_policy() {
    let missing = Path::new("/etc/keyward-test-no-such-dir/policy.toml");
    assert_eq!(Policy::load(missing, me()), Ok(Loaded::default()));
    // A sound file must be root's in root's directories: the test writes one under /etc, which
    // only root can (CI runs the tests as root, as scripts/test's keychain set-up does).
    assert_eq!(
        me(),
        0,
        "this test needs root, to put a root-owned file under /etc"
    );
    let dir = tempfile::Builder::new()
        .prefix("keyward-policy-")
        .tempdir_in("/etc")
        .expect("dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, FILE).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let loaded = Policy::load(&path, 0).expect("loads");
    assert_eq!(loaded.policy, policy());
    // The hash names the file's version, as `sha256sum` would.
    let sha = data_encoding::HEXLOWER.encode(&Sha256::digest(FILE.as_bytes()));
    assert_eq!(loaded.sha256.as_deref(), Some(sha.as_str()));
    // The same file under a directory others may write is refused at the directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let err = Policy::load(&path, 0).expect_err("dir world-writable");
    let PolicyError::Untrusted { path: at, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        Path::new(at),
        std::fs::canonicalize(dir.path()).expect("canon")
    );
}

fn key(kind: EntryKind, tags: &[&str], created: &str) -> crate::EntryMeta {
    crate::EntryMeta {
        id: "id".into(),
        name: "prod".into(),
        kind,
        owner: None,
        purpose: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        created: created.into(),
        rotated: None,
        rotation_interval_days: None,
        expires: None,
        last_used: None,
        use_count: 0,
        provider_use: None,
        config: crate::EntryConfig::default(),
    }
}

#[test]
fn a_keys_standing_follows_the_rule_that_covers_it_and_names_it() {
    use crate::EntryState;
    use time::macros::datetime;
    let now = datetime!(2026-12-02 12:00 UTC);
    let p = policy();
    // 40 days old: past prod-aws's 30 (block), within the defaults' 90.
    let mut prod = key(EntryKind::Aws, &["prod"], "2026-10-23T00:00:00Z");
    let s = p.for_key(prod.kind, &prod.tags).standing(&prod, now);
    assert_eq!(s.state, EntryState::Overdue);
    assert!(s.blocked, "prod-aws blocks");
    assert_eq!(s.rule.as_deref(), Some("rule 'prod-aws'"));
    assert_eq!(
        s.reason.as_deref(),
        Some("rotation overdue since 2026-11-22 (max_key_age_days = 30, rule 'prod-aws')")
    );
    // The same key untagged: the defaults' 90 days, due in 40 days, reminders at 14: ok.
    let plain = key(EntryKind::Aws, &[], "2026-10-23T00:00:00Z");
    let s = p.for_key(plain.kind, &plain.tags).standing(&plain, now);
    assert_eq!(
        (s.state, s.blocked, s.reason),
        (EntryState::Ok, false, None)
    );
    // A key's own shorter interval wins over the policy's age, and is named as its own.
    prod.rotation_interval_days = Some(20);
    let s = p.for_key(prod.kind, &prod.tags).standing(&prod, now);
    assert_eq!(s.rule, None);
    assert!(
        s.reason
            .as_deref()
            .is_some_and(|r| r.contains("its rotation interval of 20 days")),
        "{s:?}"
    );
    // Rotation resets the clock: rotated 10 days ago, due in 20, ci's 21-day reminder is not
    // for AWS prod keys, the defaults' 14 is: ok; under ci's window it is due soon.
    prod.rotation_interval_days = None;
    prod.rotated = Some("2026-11-22T00:00:00Z".into());
    let s = p.for_key(prod.kind, &prod.tags).standing(&prod, now);
    assert_eq!(s.state, EntryState::Ok);
    prod.tags.push("ci".into());
    let s = p.for_key(prod.kind, &prod.tags).standing(&prod, now);
    assert_eq!(s.state, EntryState::DueSoon);
    assert_eq!(
        s.reason.as_deref(),
        Some("rotation due on 2026-12-22 (max_key_age_days = 30, rule 'prod-aws')")
    );
    assert!(!s.blocked, "due soon never blocks");
}

#[test]
fn a_use_the_provider_saw_keeps_a_key_from_counting_as_unused() {
    use crate::entry::ProviderUse;
    use crate::EntryState;
    use time::macros::datetime;
    let now = datetime!(2026-12-02 12:00 UTC);
    let p = Policy::parse(Path::new("p.toml"), "[defaults]\nmax_idle_days = 30\n").expect("parse");
    let mut k = key(EntryKind::Aws, &[], "2026-06-01T00:00:00Z");
    k.last_used = Some("2026-07-01T00:00:00Z".into());
    let eff = p.for_key(k.kind, &k.tags);
    let seen = |used: Option<&str>| ProviderUse {
        used: used.map(Into::into),
        service: used.map(|_| "s3".into()),
        region: None,
        checked: "2026-12-02T09:00:00Z".into(),
        error: None,
    };
    // Asked, and AWS saw nothing but Keyward's own question: still unused since July.
    k.provider_use = Some(seen(None));
    let s = eff.standing(&k, now);
    assert_eq!(s.state, EntryState::Unused);
    assert_eq!(
        s.reason.as_deref(),
        Some("unused since 2026-07-01 (max_idle_days = 30, defaults)")
    );
    // A copy of the key used S3 last week: in use, though Keyward issued nothing since July.
    k.provider_use = Some(seen(Some("2026-11-25T10:00:00Z")));
    assert_eq!(eff.standing(&k, now).state, EntryState::Ok);
    // AWS's last sight older than Keyward's: Keyward's decides.
    k.provider_use = Some(seen(Some("2026-06-15T10:00:00Z")));
    k.last_used = Some("2026-11-01T00:00:00Z".into());
    let s = eff.standing(&k, now);
    assert_eq!(
        s.reason.as_deref(),
        Some("unused since 2026-11-01 (max_idle_days = 30, defaults)")
    );
    // Never issued by Keyward, seen by AWS: AWS's date counts, not the date it was added.
    k.last_used = None;
    k.provider_use = Some(seen(Some("2026-10-01T10:00:00Z")));
    assert_eq!(
        eff.standing(&k, now).reason.as_deref(),
        Some("unused since 2026-10-01 (max_idle_days = 30, defaults)")
    );
}

#[test]
fn expiry_outranks_overdue_and_an_idle_key_counts_as_unused() {
    use crate::EntryState;
    use time::macros::datetime;
    let now = datetime!(2026-12-02 12:00 UTC);
    let p = Policy::parse(
        Path::new("p.toml"),
        "[defaults]\nmax_idle_days = 30\nmax_key_age_days = 365\nenforcement = \"block\"\n",
    )
    .expect("parse");
    let mut k = key(EntryKind::Static, &[], "2026-06-01T00:00:00Z");
    let eff = p.for_key(k.kind, &k.tags);
    // Never used since it was added six months ago.
    let s = eff.standing(&k, now);
    assert_eq!(s.state, EntryState::Unused);
    assert!(!s.blocked, "unused keys are reminded, not blocked");
    assert_eq!(
        s.reason.as_deref(),
        Some("unused since 2026-06-01 (max_idle_days = 30, defaults)")
    );
    k.last_used = Some("2026-11-30T08:00:00Z".into());
    assert_eq!(eff.standing(&k, now).state, EntryState::Ok);
    k.expires = Some("2026-12-01T00:00:00Z".into());
    let s = eff.standing(&k, now);
    assert_eq!(s.state, EntryState::Expired);
    assert!(s.blocked);
    assert_eq!(
        s.reason.as_deref(),
        Some("expired on 2026-12-01 (its expiry date)")
    );
    // An unreadable date is treated as passed, so the key is looked at.
    k.expires = Some("soon".into());
    let s = eff.standing(&k, now);
    assert_eq!(s.state, EntryState::Expired);
    assert!(s.reason.is_some_and(|r| r.contains("an unreadable date")));
}

#[test]
fn a_key_is_reminded_when_due_again_when_overdue_and_at_most_once_a_day() {
    use crate::EntryState::*;
    use time::macros::datetime;
    let day1 = datetime!(2026-12-01 09:00 UTC);
    let r = |state, at| Reminded { state, at };
    assert!(!reminder_due(Ok, None, day1), "nothing to say");
    assert!(reminder_due(DueSoon, None, day1), "first time due soon");
    let shown = r(DueSoon, day1);
    // The same state again: no new reminder, however long after.
    assert!(!reminder_due(
        DueSoon,
        Some(&shown),
        day1 + time::Duration::days(5)
    ));
    // Overdue is news, but not within a day of the last reminder.
    assert!(!reminder_due(
        Overdue,
        Some(&shown),
        day1 + time::Duration::hours(23)
    ));
    assert!(reminder_due(
        Overdue,
        Some(&shown),
        day1 + time::Duration::hours(24)
    ));
    assert!(reminder_due(
        Unused,
        Some(&r(Overdue, day1)),
        day1 + time::Duration::days(2)
    ));
}

#[test]
fn the_audit_section_names_a_syslog_receiver_as_host_and_port() {
    let p = Policy::parse(
        Path::new("p.toml"),
        "[audit]\nsyslog_tcp = \"logs.example.com:6514\"\n",
    )
    .expect("parse");
    assert_eq!(p.audit.syslog_tcp.as_deref(), Some("logs.example.com:6514"));
    let err = Policy::parse(
        Path::new("p.toml"),
        "[defaults]\n\n[audit]\nsyslog_tcp = \"logs.example.com\"\n",
    )
    .expect_err("no port");
    assert_eq!(
        err.to_string(),
        "p.toml line 4: syslog_tcp = \"logs.example.com\": give the receiver as host:port"
    );
    let err =
        Policy::parse(Path::new("p.toml"), "[audit]\nsyslog = \"x:1\"\n").expect_err("unknown");
    assert!(err.to_string().contains("unknown field `syslog`"), "{err}");
}

#[test]
fn a_tls_receiver_may_name_its_ca_and_is_one_or_the_other_with_plain_tcp() {
    let p = Policy::parse(
        Path::new("p.toml"),
        "[audit]\nsyslog_tls = \"logs.example.com:6514\"\nsyslog_ca = \"/etc/keyward/logs-ca.pem\"\n",
    )
    .expect("parse");
    assert_eq!(p.audit.syslog_tls.as_deref(), Some("logs.example.com:6514"));
    assert_eq!(
        p.audit.syslog_ca.as_deref(),
        Some(Path::new("/etc/keyward/logs-ca.pem"))
    );
    let refused = |text: &str| {
        Policy::parse(Path::new("p.toml"), text)
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(
        refused("[audit]\nsyslog_tcp = \"a:514\"\nsyslog_tls = \"a:6514\"\n"),
        "p.toml line 3: give one receiver: syslog_tcp or syslog_tls, not both"
    );
    assert_eq!(
        refused("[audit]\nsyslog_tls = \"a\"\n"),
        "p.toml line 2: syslog_tls = \"a\": give the receiver as host:port"
    );
    assert_eq!(
        refused("[audit]\nsyslog_ca = \"/etc/ca.pem\"\n"),
        "p.toml line 2: syslog_ca is the trust for syslog_tls: set syslog_tls too"
    );
    assert_eq!(
        refused("[audit]\nsyslog_tls = \"a:6514\"\nsyslog_ca = \"ca.pem\"\n"),
        "p.toml line 3: syslog_ca = \"ca.pem\": give an absolute path"
    );
}

#[test]
fn the_journal_is_on_or_names_its_namespace() {
    let p = Policy::parse(
        Path::new("p.toml"),
        "[audit]\njournal = true\nsyslog_tls = \"a:6514\"\n",
    )
    .expect("parse");
    assert!(p.audit.journal && p.audit.journal_namespace.is_none());
    let p = Policy::parse(
        Path::new("p.toml"),
        "[audit]\njournal_namespace = \"keyward-audit\"\n",
    )
    .expect("parse");
    assert_eq!(p.audit.journal_namespace.as_deref(), Some("keyward-audit"));
    let err = Policy::parse(
        Path::new("p.toml"),
        "[audit]\njournal_namespace = \"../x\"\n",
    )
    .expect_err("a path");
    assert_eq!(
        err.to_string(),
        "p.toml line 2: journal_namespace = \"../x\": a namespace is 1 to 64 letters, digits, '-', '_' or '.'"
    );
}
