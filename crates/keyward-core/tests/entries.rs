//! Editing and rotating entries, their history, recovery-code renewal and the auto-lock setting,
//! on a file-keystore vault in a temp dir.

use std::time::Duration;

use keyward_core::entry::{
    AwsConfig, ClientAuth, EntryConfig, EntryKind, EntryMeta, OAuth2Config, SecretValue,
};
use keyward_core::vault::{EntryEdit, SecondFactor};
use keyward_core::{Actor, Vault, VaultError};
use secrecy::{ExposeSecret, SecretString};

mod common;

struct Fixture {
    _dir: tempfile::TempDir,
    vault: Vault,
    pass: SecretString,
    codes: Vec<SecretString>,
}

fn vault() -> Fixture {
    let pass = SecretString::from("entry-orbit-maple-quartz-7".to_owned());
    let (dir, vault, codes) = common::new_vault(&pass);
    Fixture {
        _dir: dir,
        vault,
        pass,
        codes,
    }
}

fn aws_meta(name: &str) -> EntryMeta {
    EntryMeta {
        id: String::new(),
        name: name.into(),
        kind: EntryKind::Aws,
        owner: Some("ops".into()),
        purpose: None,
        tags: vec!["prod".into()],
        created: String::new(),
        rotated: None,
        rotation_interval_days: Some(90),
        expires: None,
        last_used: None,
        use_count: 0,
        provider_use: None,
        config: EntryConfig {
            aws: Some(AwsConfig {
                session_duration_secs: 3600,
                ..AwsConfig::default()
            }),
            ..EntryConfig::default()
        },
    }
}

fn aws_secret(id: &str, secret: &str) -> SecretValue {
    SecretValue::Aws {
        access_key_id: id.into(),
        secret_access_key: SecretString::from(secret.to_owned()),
    }
}

/// A made-up access key id of the right shape: AKIA + 16 characters ending in `last4`.
fn fake_key_id(fill: &str, last4: &str) -> String {
    format!("AKIA{}{last4}", fill.repeat(4))
}

#[test]
fn edit_rotate_and_history() {
    let mut f = vault();
    let actor = Actor::default();
    let (old_id, new_id) = (fake_key_id("OLD", "1234"), fake_key_id("NEW", "5678"));
    f.vault
        .add_entry(
            aws_meta("prod"),
            &aws_secret(&old_id, "oldSecretoldSecretoldSecretoldSecret0000"),
            &actor,
        )
        .expect("add");

    // Editing changes only the metadata, and says which fields changed.
    let edited = f
        .vault
        .update_entry(
            "prod",
            EntryEdit::new(
                Some("platform".into()),
                Some("deploys".into()),
                vec!["prod".into(), "deploy".into()],
                Some(30),
                None,
            )
            .expect("valid metadata"),
            &actor,
        )
        .expect("update");
    assert_eq!(edited.owner.as_deref(), Some("platform"));
    assert_eq!(f.vault.get("prod").expect("get"), edited);

    // Rotating replaces the secret, stamps `rotated`, and keeps the name and id. It needs the
    // unlocked key (it checks the settings sealed with the old secret before sealing them again).
    let before = f.vault.get("prod").expect("get");
    assert!(before.rotated.is_none());
    let key = f
        .vault
        .unlock(&f.pass, &SecondFactor::Recovery(f.codes[0].clone()), &actor)
        .expect("unlock")
        .key;
    // Read before: the vault keeps the ciphertext it read, and a rotation must replace it.
    for _ in 0..2 {
        match f.vault.read_secret(&key, &before).expect("read old") {
            SecretValue::Aws { access_key_id, .. } => assert_eq!(access_key_id, old_id),
            other => panic!("wrong kind: {:?}", other.kind()),
        }
    }
    let rotated = f
        .vault
        .replace_secret(
            "prod",
            &aws_secret(&new_id, "newSecretnewSecretnewSecretnewSecret1111"),
            &key,
            &actor,
        )
        .expect("rotate");
    assert_eq!(rotated.id, before.id);
    assert!(rotated.rotated.is_some());
    assert_eq!(
        rotated
            .config
            .aws
            .as_ref()
            .map(|a| a.access_key_hint.as_str()),
        Some("AKIA…5678")
    );
    match f.vault.read_secret(&key, &rotated).expect("read") {
        SecretValue::Aws {
            access_key_id,
            secret_access_key,
        } => {
            assert_eq!(access_key_id, new_id);
            assert_eq!(
                secret_access_key.expose_secret(),
                "newSecretnewSecretnewSecretnewSecret1111"
            );
        }
        other => panic!("wrong kind: {:?}", other.kind()),
    }

    // A secret of another kind is refused and the stored one stays.
    let err = f
        .vault
        .replace_secret(
            "prod",
            &SecretValue::Static {
                value: SecretString::from("tok".to_owned()),
            },
            &key,
            &actor,
        )
        .expect_err("wrong kind");
    assert!(matches!(err, VaultError::WrongKind { .. }), "{err}");
    assert_eq!(f.vault.get("prod").expect("get").rotated, rotated.rotated);

    // History: add, update, rotate — reads of the entry itself are left out; no secret inside.
    let history = f.vault.history("prod", 50).expect("history");
    let actions: Vec<&str> = history.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["add", "update", "rotate"]);
    assert!(history[1].detail.contains("owner") && history[1].detail.contains("tags"));
    assert!(history[2].detail.contains("AKIA…1234") && history[2].detail.contains("AKIA…5678"));
    for row in &history {
        assert!(!row.detail.contains("Secret"), "{}", row.detail);
    }
    assert_eq!(f.vault.history("prod", 1).expect("history").len(), 1);
    assert!(f.vault.history("other", 10).expect("history").is_empty());

    // Unknown names are reported as such.
    assert!(matches!(
        f.vault.update_entry("nope", EntryEdit::default(), &actor),
        Err(VaultError::NotFound(_))
    ));
}

#[test]
fn oauth2_clients_are_stored_checked_and_rotated() {
    let mut f = vault();
    let actor = Actor::default();
    let meta = |name: &str, cfg: Option<OAuth2Config>| EntryMeta {
        kind: EntryKind::OAuth2,
        config: EntryConfig {
            oauth2: cfg,
            ..EntryConfig::default()
        },
        ..aws_meta(name)
    };
    let cfg = OAuth2Config {
        client_id: "ci-bot".into(),
        token_url: "https://auth.example.com/oauth/token".into(),
        scopes: vec!["deploy:read".into()],
        auth: ClientAuth::Post,
        introspection_url: Some("https://auth.example.com/oauth/introspect".into()),
    };
    let secret = |s: &str| SecretValue::OAuth2 {
        client_secret: SecretString::from(s.to_owned()),
    };
    let added = f
        .vault
        .add_entry(
            meta("ci", Some(cfg.clone())),
            &secret("first-Secret-1"),
            &actor,
        )
        .expect("add");
    assert_eq!(
        f.vault.get("ci").expect("get").config.oauth2,
        Some(cfg.clone())
    );

    // Settings that would send the secret in the clear, or none at all, are refused and nothing
    // is stored.
    let mut plain = cfg.clone();
    plain.token_url = "http://auth.example.com/token".into();
    for (name, bad) in [("plain", Some(plain)), ("bare", None)] {
        let e = f
            .vault
            .add_entry(meta(name, bad), &secret("x-Secret"), &actor)
            .expect_err("refused");
        assert!(matches!(e, VaultError::Entry(_)), "{e}");
        assert!(matches!(f.vault.get(name), Err(VaultError::NotFound(_))));
    }
    let e = f
        .vault
        .add_entry(meta("nl", Some(cfg.clone())), &secret("a\nb"), &actor)
        .expect_err("line break in the secret");
    assert!(e.to_string().contains("client secret"), "{e}");

    let key = f
        .vault
        .unlock(&f.pass, &SecondFactor::Recovery(f.codes[0].clone()), &actor)
        .expect("unlock")
        .key;
    let rotated = f
        .vault
        .replace_secret("ci", &secret("second-Secret-2"), &key, &actor)
        .expect("rotate");
    assert_eq!(rotated.id, added.id);
    assert_eq!(rotated.config.oauth2, Some(cfg));
    match f.vault.read_secret(&key, &rotated).expect("read") {
        SecretValue::OAuth2 { client_secret } => {
            assert_eq!(client_secret.expose_secret(), "second-Secret-2")
        }
        other => panic!("wrong kind: {:?}", other.kind()),
    }
    for row in f.vault.history("ci", 50).expect("history") {
        assert!(!row.detail.contains("Secret-"), "{}", row.detail);
    }
}

#[test]
fn regenerated_recovery_codes_replace_the_old_ones() {
    let mut f = vault();
    let actor = Actor::default();
    let key = f
        .vault
        .unlock(&f.pass, &SecondFactor::Recovery(f.codes[0].clone()), &actor)
        .expect("unlock")
        .key;
    let wrong = SecretString::from("not-the-passphrase-at-all".to_owned());
    assert!(f
        .vault
        .regenerate_recovery_codes(&key, &wrong, &actor)
        .is_err());
    let fresh = f
        .vault
        .regenerate_recovery_codes(&key, &f.pass, &actor)
        .expect("regenerate");
    assert_eq!(fresh.len(), f.codes.len());
    // An old, unused code no longer opens the vault; a new one does.
    let Err(err) = f
        .vault
        .unlock(&f.pass, &SecondFactor::Recovery(f.codes[1].clone()), &actor)
    else {
        panic!("an old recovery code still opens the vault");
    };
    assert!(matches!(err, VaultError::WrongCredentials { .. }), "{err}");
    // Let the growing delay pass (one failure is free).
    f.vault
        .unlock(&f.pass, &SecondFactor::Recovery(fresh[0].clone()), &actor)
        .expect("new code opens");
    let recovery = f
        .vault
        .factors()
        .expect("factors")
        .into_iter()
        .filter(|i| i.kind == keyward_core::vault::SlotKind::Recovery)
        .count();
    assert_eq!(recovery, fresh.len() - 1);
}

#[test]
fn auto_lock_setting_is_kept_and_bounded() {
    let mut f = vault();
    let actor = Actor::default();
    assert_eq!(f.vault.auto_lock_setting().expect("read"), None);
    f.vault
        .set_auto_lock(Duration::from_secs(300), &actor)
        .expect("set");
    assert_eq!(
        f.vault.auto_lock_setting().expect("read"),
        Some(Duration::from_secs(300))
    );
    for bad in [Duration::from_secs(5), Duration::from_secs(3 * 86_400)] {
        assert!(matches!(
            f.vault.set_auto_lock(bad, &actor),
            Err(VaultError::AutoLockRange)
        ));
    }
    assert_eq!(
        f.vault.auto_lock_setting().expect("read"),
        Some(Duration::from_secs(300))
    );
}

#[test]
fn the_providers_last_use_is_kept_until_the_key_is_replaced_or_removed() {
    use keyward_core::entry::ProviderUse;
    let mut f = vault();
    let actor = Actor::default();
    let id = fake_key_id("USE", "0001");
    f.vault
        .add_entry(
            aws_meta("ci"),
            &aws_secret(&id, "useSecretuseSecretuseSecretuseSecret0001"),
            &actor,
        )
        .expect("add");
    let meta = f.vault.get("ci").expect("get");
    assert_eq!(meta.provider_use, None, "not asked yet");
    let seen = ProviderUse {
        used: Some("2026-11-30T10:00:00Z".into()),
        service: Some("s3".into()),
        region: Some("eu-west-1".into()),
        checked: "2026-12-01T09:00:00Z".into(),
        error: None,
    };
    f.vault
        .record_provider_use(&meta.id, &seen)
        .expect("record");
    assert_eq!(
        f.vault.get("ci").expect("get").provider_use.as_ref(),
        Some(&seen)
    );
    let failed = ProviderUse {
        error: Some("IAM refused: AccessDenied".into()),
        ..seen.clone()
    };
    f.vault
        .record_provider_use(&meta.id, &failed)
        .expect("again");
    assert_eq!(f.vault.list().expect("list")[0].provider_use, Some(failed));

    // A new key: what AWS said was about the old one.
    let key = f
        .vault
        .unlock(&f.pass, &SecondFactor::Recovery(f.codes[0].clone()), &actor)
        .expect("unlock")
        .key;
    let rotated = f
        .vault
        .replace_secret(
            "ci",
            &aws_secret(
                &fake_key_id("USE", "0002"),
                "useSecretuseSecretuseSecretuseSecret0002",
            ),
            &key,
            &actor,
        )
        .expect("rotate");
    assert_eq!(rotated.provider_use, None);
    assert_eq!(f.vault.get("ci").expect("get").provider_use, None);

    // Removed, then added again under the same name: nothing carried over.
    f.vault
        .record_provider_use(&meta.id, &seen)
        .expect("record");
    f.vault.read_secret(&key, &rotated).expect("read");
    f.vault.remove_entry("ci", &actor).expect("remove");
    // Its secret went with it, however recently it was read.
    assert!(matches!(
        f.vault.read_secret(&key, &rotated),
        Err(VaultError::Undecryptable(_))
    ));
    f.vault
        .add_entry(
            aws_meta("ci"),
            &aws_secret(&id, "useSecretuseSecretuseSecretuseSecret0001"),
            &actor,
        )
        .expect("add again");
    assert_eq!(f.vault.get("ci").expect("get").provider_use, None);
    let rows: i64 = f
        .vault
        .catalog()
        .connection()
        .query_row("SELECT count(*) FROM provider_use", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 0, "the removed key's row went with it");
}

#[test]
fn metadata_is_checked_once_in_the_core() {
    let long = "x".repeat(129);
    for (edit, field) in [
        (
            EntryEdit::new(Some(long), None, vec![], None, None),
            "owner",
        ),
        (
            EntryEdit::new(None, Some("a\u{7}b".into()), vec![], None, None),
            "purpose",
        ),
        (
            EntryEdit::new(
                None,
                None,
                (0..33).map(|i| i.to_string()).collect(),
                None,
                None,
            ),
            "too many tags",
        ),
        (
            EntryEdit::new(None, None, vec!["t".repeat(65)], None, None),
            "tag",
        ),
        (
            EntryEdit::new(None, None, vec![], None, Some("next year".into())),
            "expiry",
        ),
    ] {
        let e = edit.expect_err("refused");
        let text = e.to_string();
        assert!(
            text.contains(&format!("invalid {field}")) || text.starts_with(field),
            "{text}"
        );
    }
    assert!(EntryEdit::new(
        None,
        None,
        vec![],
        Some(90),
        Some("2027-01-31T00:00:00Z".into())
    )
    .is_ok());
}
