//! Attacks on what the catalog holds outside the sealed secrets, as someone who can write the
//! SQLite file would make them (a same-user process, a tampered backup that gets restored):
//! each test makes the edit with plain SQL and checks that Keyward refuses, detects or repairs.

use keyward_core::entry::{
    AwsConfig, EntryConfig, EntryKind, EntryMeta, OAuth2Config, SecretValue,
};
use keyward_core::factors::TotpSetup;
use keyward_core::kdf::{KdfParams, MIN_MEMORY_KIB};
use keyward_core::vault::{CreateOptions, SecondFactor};
use keyward_core::{Actor, KeystoreKind, UnlockedKey, Vault, VaultError, VaultPaths};
use secrecy::{ExposeSecret, SecretString};

mod common;

const PASS: &str = "tamper-orbit-maple-quartz-7";

fn pass() -> SecretString {
    SecretString::from(PASS.to_owned())
}

fn reopen(dir: &tempfile::TempDir) -> Vault {
    Vault::open(VaultPaths {
        data_dir: dir.path().to_path_buf(),
    })
    .expect("reopen")
}

fn meta(name: &str, kind: EntryKind, config: EntryConfig) -> EntryMeta {
    EntryMeta {
        id: String::new(),
        name: name.into(),
        kind,
        owner: None,
        purpose: None,
        tags: vec![],
        created: String::new(),
        rotated: None,
        rotation_interval_days: None,
        expires: None,
        last_used: None,
        use_count: 0,
        provider_use: None,
        config,
    }
}

fn static_secret(v: &str) -> SecretValue {
    SecretValue::Static {
        value: SecretString::from(v.to_owned()),
    }
}

/// A made-up access key id of the right shape: AKIA + 16 characters (built at run time, so no
/// key-shaped literal stands in the source).
fn fake_key_id(rest16: &str) -> String {
    format!("AKIA{rest16}")
}

fn aws_secret(id: &str, secret: &str) -> SecretValue {
    SecretValue::Aws {
        access_key_id: id.into(),
        secret_access_key: SecretString::from(secret.to_owned()),
    }
}

fn unlock_with(vault: &mut Vault, code: &SecretString) -> Result<UnlockedKey, VaultError> {
    vault
        .unlock(
            &pass(),
            &SecondFactor::Recovery(code.clone()),
            &Actor::default(),
        )
        .map(|u| u.key)
}

fn sql(vault: &Vault, statement: &str) {
    vault
        .catalog()
        .connection()
        .execute_batch(statement)
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// The age ciphertext stored for entry `name` (file keystore: a row of `file_secrets`).
fn stored_ciphertext(vault: &Vault, name: &str) -> Vec<u8> {
    let id = vault.get(name).expect("entry").id;
    vault
        .catalog()
        .connection()
        .query_row(
            "SELECT value FROM file_secrets WHERE item LIKE ?1",
            [format!("%/entry/{id}")],
            |r| r.get(0),
        )
        .expect("ciphertext")
}

fn attacker() -> (age::x25519::Identity, String) {
    let id = age::x25519::Identity::generate();
    let r = id.to_public().to_string();
    (id, r)
}

// Finding 1: the header's recipient is authenticated.

#[test]
fn swapped_header_recipient_is_refused_at_unlock_and_never_used_for_an_add() {
    let (dir, vault, codes) = common::new_vault(&pass());
    drop(vault);
    let (thief, thief_recipient) = attacker();
    // A restarted agent: a fresh `Vault` over the edited file, still locked.
    let mut vault = reopen(&dir);
    sql(
        &vault,
        &format!("UPDATE vault SET header = json_set(header, '$.recipient', '{thief_recipient}')"),
    );
    let added = vault.add_entry(
        meta("gh", EntryKind::Static, EntryConfig::default()),
        &static_secret("ghp_canary_after_swap"),
        &Actor::default(),
    );
    if added.is_ok() {
        let ct = stored_ciphertext(&vault, "gh");
        let stolen = age::decrypt(&thief, &ct).is_ok();
        panic!("an add while locked used the header's recipient as read from SQLite (the attacker can decrypt it: {stolen})");
    }
    let err = added.expect_err("refused");
    assert!(err.to_string().contains("keyward unlock"), "{err}");

    let err = unlock_with(&mut vault, &codes[0]).expect_err("a swapped recipient must be refused");
    assert!(matches!(err, VaultError::HeaderTampered(_)), "{err}");
    assert!(err.to_string().contains("tampered"), "{err}");
    let last = vault.catalog().audit_rows(Some(1)).expect("audit");
    assert_eq!(
        (last[0].action.as_str(), last[0].outcome.as_str()),
        ("unlock", "tampered"),
        "{last:?}"
    );
}

#[test]
fn adds_after_an_unlock_use_the_verified_recipient_not_a_swapped_one() {
    let (dir, vault, codes) = common::new_vault(&pass());
    drop(vault);
    let mut vault = reopen(&dir);
    let key = unlock_with(&mut vault, &codes[0]).expect("unlock");
    let (thief, thief_recipient) = attacker();
    sql(
        &vault,
        &format!("UPDATE vault SET header = json_set(header, '$.recipient', '{thief_recipient}')"),
    );
    vault
        .add_entry(
            meta("gh", EntryKind::Static, EntryConfig::default()),
            &static_secret("ghp_canary_verified"),
            &Actor::default(),
        )
        .expect("add with the verified recipient");
    let ct = stored_ciphertext(&vault, "gh");
    assert!(
        age::decrypt(&thief, &ct).is_err(),
        "the swapped recipient was used"
    );
    let m = vault.get("gh").expect("get");
    match vault
        .read_secret(&key, &m)
        .expect("the vault's own key reads it")
    {
        SecretValue::Static { value } => assert_eq!(value.expose_secret(), "ghp_canary_verified"),
        other => panic!("wrong kind {:?}", other.kind()),
    }
}

#[test]
fn an_edited_slot_list_is_detected_at_unlock() {
    let (dir, vault, codes) = common::new_vault(&pass());
    drop(vault);
    let mut vault = reopen(&dir);
    // Dropping a recovery slot (the last of 1 TOTP + 8 recovery slots) changes the
    // authenticated header; so does clearing its MAC to pass it off as an old vault's.
    sql(
        &vault,
        "UPDATE vault SET header = json_remove(header, '$.slots[8]')",
    );
    let err = unlock_with(&mut vault, &codes[0]).expect_err("edited header");
    assert!(matches!(err, VaultError::HeaderTampered(_)), "{err}");
    sql(&vault, "UPDATE vault SET header_mac = NULL");
    let err = unlock_with(&mut vault, &codes[1]).expect_err("MAC removed");
    assert!(matches!(err, VaultError::HeaderTampered(_)), "{err}");
}

#[test]
fn the_code_for_standing_grants_cannot_be_turned_off_by_editing_the_catalog() {
    let (dir, vault, codes) = common::new_vault(&pass());
    drop(vault);
    let mut vault = reopen(&dir);
    let key = unlock_with(&mut vault, &codes[0]).expect("unlock");
    assert!(
        !vault.grants_need_code(&key).expect("read"),
        "off by default"
    );
    vault
        .set_grants_need_code(&key, true, &Actor::default())
        .expect("turn on");
    assert!(vault.grants_need_code(&key).expect("read"));
    // Kept in the authenticated header: flipping it back with SQL is noticed while unlocked,
    // and the next unlock is refused.
    sql(
        &vault,
        "UPDATE vault SET header = json_remove(header, '$.grants_need_code')",
    );
    let err = vault.grants_need_code(&key).expect_err("edited header");
    assert!(matches!(err, VaultError::HeaderTampered(_)), "{err}");
    let err = unlock_with(&mut vault, &codes[1]).expect_err("edited header");
    assert!(matches!(err, VaultError::HeaderTampered(_)), "{err}");
}

#[test]
fn a_static_key_cannot_be_let_out_as_a_lease_by_editing_the_catalog() {
    use keyward_core::entry::LeaseMode;
    let (dir, vault, codes) = common::new_vault(&pass());
    drop(vault);
    let mut vault = reopen(&dir);
    let key = unlock_with(&mut vault, &codes[0]).expect("unlock");
    let gh = vault
        .add_entry(
            meta("gh", EntryKind::Static, EntryConfig::default()),
            &static_secret("ghp_canary"),
            &Actor::default(),
        )
        .expect("add");
    assert_eq!(
        vault.lease_mode(&key, &gh).expect("read"),
        None,
        "off by default"
    );
    // Only static keys are leased.
    let aws = vault
        .add_entry(
            meta(
                "cloud",
                EntryKind::Aws,
                EntryConfig {
                    aws: Some(AwsConfig {
                        session_duration_secs: 3600,
                        ..AwsConfig::default()
                    }),
                    ..EntryConfig::default()
                },
            ),
            &aws_secret(
                &fake_key_id("LEASEEXAMPLE0001"),
                "leaseSecretleaseSecretleaseSecret0000000",
            ),
            &Actor::default(),
        )
        .expect("add aws");
    let err = vault
        .set_lease(&key, &aws.name, Some(LeaseMode::Env), &Actor::default())
        .expect_err("aws");
    assert!(matches!(err, VaultError::WrongKind { .. }), "{err}");

    // Turned on through the vault, read back; turned on by SQL, refused.
    vault
        .set_lease(&key, "gh", Some(LeaseMode::Env), &Actor::default())
        .expect("allow");
    assert_eq!(
        vault.lease_mode(&key, &gh).expect("read"),
        Some(LeaseMode::Env)
    );
    vault
        .set_lease(&key, "gh", None, &Actor::default())
        .expect("off");
    assert_eq!(vault.lease_mode(&key, &gh).expect("read"), None);
    sql(
        &vault,
        &format!(
            "UPDATE vault SET header = json_set(header, '$.leases', json('{{\"{}\":\"env\"}}'))",
            gh.id
        ),
    );
    let err = vault.lease_mode(&key, &gh).expect_err("edited header");
    assert!(matches!(err, VaultError::HeaderTampered(_)), "{err}");
}

#[test]
fn a_key_goes_only_to_the_host_it_is_bound_to_and_a_binding_cannot_be_edited_in() {
    use keyward_core::HelperTool;
    let (dir, vault, codes) = common::new_vault(&pass());
    drop(vault);
    let mut vault = reopen(&dir);
    let key = unlock_with(&mut vault, &codes[0]).expect("unlock");
    let gh = vault
        .add_entry(
            meta("gh", EntryKind::Static, EntryConfig::default()),
            &static_secret("ghp_canary"),
            &Actor::default(),
        )
        .expect("add");
    let none = vault
        .binding(&key, HelperTool::Git, "github.com")
        .expect("read");
    assert!(none.is_none(), "nothing bound by default");
    vault
        .set_binding(
            &key,
            HelperTool::Git,
            "GitHub.com",
            Some(("gh", Some("octo"))),
            &Actor::default(),
        )
        .expect("bind");
    let b = vault
        .binding(&key, HelperTool::Git, "github.com")
        .expect("read")
        .expect("bound");
    assert_eq!(
        (b.meta.id.as_str(), b.username.as_deref()),
        (gh.id.as_str(), Some("octo"))
    );
    // Per tool and per host.
    assert!(vault
        .binding(&key, HelperTool::Docker, "github.com")
        .expect("read")
        .is_none());
    assert!(vault
        .binding(&key, HelperTool::Git, "github.com.evil.example")
        .expect("read")
        .is_none());
    assert!(vault
        .set_binding(
            &key,
            HelperTool::Git,
            "evil.example/x",
            Some(("gh", None)),
            &Actor::default()
        )
        .is_err());
    // Sending the key to another host by SQL: refused.
    sql(
        &vault,
        &format!(
            "UPDATE vault SET header = json_set(header, '$.bindings', json('{{\"git:evil.example\":{{\"entry\":\"{}\"}}}}'))",
            gh.id
        ),
    );
    let err = vault
        .binding(&key, HelperTool::Git, "evil.example")
        .expect_err("edited header");
    assert!(matches!(err, VaultError::HeaderTampered(_)), "{err}");
}

#[test]
fn an_older_authentic_header_put_back_is_refused() {
    let (dir, vault, codes) = common::new_vault(&pass());
    drop(vault);
    let mut vault = reopen(&dir);
    // Spending a recovery code removes its slot; keep the header from before, MAC and all.
    let key = unlock_with(&mut vault, &codes[0]).expect("unlock");
    let saved: (String, String) = vault
        .catalog()
        .connection()
        .query_row("SELECT header, header_mac FROM vault", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("header");
    unlock_with(&mut vault, &codes[1]).expect("the second code");
    vault
        .set_grants_need_code(&key, true, &Actor::default())
        .expect("turn on");
    // Put the older header back: it has code 1's slot and the setting off, and a valid MAC.
    vault
        .catalog()
        .connection()
        .execute(
            "UPDATE vault SET header = ?1, header_mac = ?2",
            [&saved.0, &saved.1],
        )
        .expect("restore");
    let err = vault.grants_need_code(&key).expect_err("rolled back");
    assert!(
        matches!(&err, VaultError::HeaderTampered(why) if why.contains("older copy")),
        "{err}"
    );
    let err = unlock_with(&mut vault, &codes[1]).expect_err("a spent code revived");
    assert!(matches!(err, VaultError::HeaderTampered(_)), "{err}");
}

// Finding 2: the settings that decide where a secret goes are bound to it.

fn oauth2_config(token_url: &str) -> EntryConfig {
    EntryConfig {
        oauth2: Some(OAuth2Config {
            client_id: "ci-bot".into(),
            token_url: token_url.into(),
            scopes: vec!["deploy:read".into()],
            ..OAuth2Config::default()
        }),
        ..EntryConfig::default()
    }
}

#[test]
fn an_edited_token_url_is_refused_on_use_and_audited() {
    let (_dir, mut vault, codes) = common::new_vault(&pass());
    vault
        .add_entry(
            meta(
                "ci",
                EntryKind::OAuth2,
                oauth2_config("https://auth.example.com/oauth/token"),
            ),
            &SecretValue::OAuth2 {
                client_secret: SecretString::from("client-Secret-9".to_owned()),
            },
            &Actor::default(),
        )
        .expect("add");
    let key = unlock_with(&mut vault, &codes[0]).expect("unlock");
    sql(
        &vault,
        "UPDATE entries SET config = json_set(config, '$.oauth2.token_url', 'http://0.0.0.0:9/steal') WHERE name = 'ci'",
    );
    let m = vault.get("ci").expect("get");
    let err = vault
        .read_secret(&key, &m)
        .expect_err("the secret must not be handed out with edited settings");
    assert!(matches!(err, VaultError::SettingsTampered { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("'ci'") && text.contains("token_url"),
        "{text}"
    );
    assert!(!text.contains("client-Secret-9"), "{text}");
    let last = vault.catalog().audit_rows(Some(1)).expect("audit");
    assert_eq!(
        (last[0].action.as_str(), last[0].outcome.as_str()),
        ("tamper", "refused"),
        "{last:?}"
    );
}

#[test]
fn edited_aws_settings_are_refused_on_use() {
    let edits = [
        ("$.aws.sts_endpoint", "'http://127.0.0.1:9'"),
        // Where rotation sends the key's IAM calls (and takes the new key from).
        ("$.aws.iam_endpoint", "'http://127.0.0.1:9'"),
        ("$.aws.role_arn", "'arn:aws:iam::999999999999:role/thief'"),
        ("$.aws.session_duration_secs", "129600"),
        ("$.aws.mfa_serial", "NULL"),
    ];
    for (path, value) in edits {
        let (_dir, mut vault, codes) = common::new_vault(&pass());
        let cfg = EntryConfig {
            aws: Some(AwsConfig {
                role_arn: Some("arn:aws:iam::123456789012:role/deploy".into()),
                mfa_serial: Some("arn:aws:iam::123456789012:mfa/me".into()),
                sts_endpoint: Some("https://sts.eu-west-1.amazonaws.com".into()),
                session_duration_secs: 3600,
                ..AwsConfig::default()
            }),
            ..EntryConfig::default()
        };
        vault
            .add_entry(
                meta("prod", EntryKind::Aws, cfg),
                &aws_secret(
                    &fake_key_id("KEYWARDTAMPER001"),
                    "tamperSecrettamperSecrettamperSecret0000",
                ),
                &Actor::default(),
            )
            .expect("add");
        let key = unlock_with(&mut vault, &codes[0]).expect("unlock");
        let m = vault.get("prod").expect("get");
        vault
            .read_secret(&key, &m)
            .expect("untouched settings work");
        sql(
            &vault,
            &format!("UPDATE entries SET config = json_set(config, '{path}', {value}) WHERE name = 'prod'"),
        );
        let m = vault.get("prod").expect("get");
        let err = vault.read_secret(&key, &m).expect_err(path);
        assert!(
            matches!(err, VaultError::SettingsTampered { .. }),
            "{path}: {err}"
        );
    }
}

/// An Alibaba Cloud key's role is what keeps its AccessKey inside the agent: dropped from the
/// catalog, the key would hand out the AccessKey itself (AK mode). Its endpoint decides where the
/// signature goes. Both are sealed with the secret.
#[test]
fn edited_alibaba_cloud_settings_are_refused_on_use() {
    let edits = [
        ("$.aliyun.role_arn", "NULL"),
        ("$.aliyun.sts_endpoint", "'http://127.0.0.1:9'"),
        ("$.aliyun.session_duration_secs", "43200"),
    ];
    for (path, value) in edits {
        let (_dir, mut vault, codes) = common::new_vault(&pass());
        let cfg = EntryConfig {
            aliyun: Some(keyward_core::AliyunConfig {
                role_arn: Some("acs:ram::1234567890123456:role/deploy".into()),
                sts_endpoint: Some("https://sts.cn-hangzhou.aliyuncs.com".into()),
                session_duration_secs: 3600,
                ..Default::default()
            }),
            ..EntryConfig::default()
        };
        vault
            .add_entry(
                meta("ali", EntryKind::Aliyun, cfg),
                &SecretValue::Aliyun {
                    access_key_id: "LTAI5tKwTamperTest0001".into(),
                    access_key_secret: "kwTamperAliyun0123456789abcdef".to_owned().into(),
                },
                &Actor::default(),
            )
            .expect("add");
        let key = unlock_with(&mut vault, &codes[0]).expect("unlock");
        let m = vault.get("ali").expect("get");
        vault
            .read_secret(&key, &m)
            .expect("untouched settings work");
        sql(
            &vault,
            &format!("UPDATE entries SET config = json_set(config, '{path}', {value}) WHERE name = 'ali'"),
        );
        let m = vault.get("ali").expect("get");
        let err = vault.read_secret(&key, &m).expect_err(path);
        assert!(
            matches!(&err, VaultError::SettingsTampered { fields, .. } if fields.contains("aliyun.")),
            "{path}: {err}"
        );
    }
}

#[test]
fn a_secret_moved_to_another_entry_is_refused() {
    let (_dir, mut vault, codes) = common::new_vault(&pass());
    for name in ["a", "b"] {
        vault
            .add_entry(
                meta(name, EntryKind::Static, EntryConfig::default()),
                &static_secret(&format!("value-of-{name}")),
                &Actor::default(),
            )
            .expect("add");
    }
    let key = unlock_with(&mut vault, &codes[0]).expect("unlock");
    let (a, b) = (vault.get("a").expect("a").id, vault.get("b").expect("b").id);
    sql(
        &vault,
        &format!(
            "UPDATE file_secrets SET value = (SELECT value FROM file_secrets WHERE item LIKE '%/entry/{a}') WHERE item LIKE '%/entry/{b}'"
        ),
    );
    let m = vault.get("b").expect("b");
    let err = vault
        .read_secret(&key, &m)
        .expect_err("a's secret under b's name");
    assert!(matches!(err, VaultError::SettingsTampered { .. }), "{err}");
}

// Finding 5: the audit trail cannot be rewritten unseen.

/// The unkeyed chain rule the catalog's rows used before they were keyed: what an attacker
/// who read the source would recompute.
fn sha256_chain_row(prev: &str, r: &keyward_core::catalog::AuditRow) -> String {
    use sha2::Digest;
    let canonical =
        serde_json::json!([prev, r.seq, r.ts, r.action, r.target, r.outcome, r.actor, r.detail]);
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(canonical.to_string().as_bytes()))
}

fn rows_for_audit(vault: &mut Vault) {
    rows_for_audit_named(vault, "k");
}

fn rows_for_audit_named(vault: &mut Vault, prefix: &str) {
    for i in 0..4 {
        vault
            .add_entry(
                meta(
                    &format!("{prefix}{i}"),
                    EntryKind::Static,
                    EntryConfig::default(),
                ),
                &static_secret("v"),
                &Actor::default(),
            )
            .expect("add");
    }
}

#[test]
fn a_recomputed_audit_chain_with_rows_deleted_is_detected() {
    let (_dir, mut vault, _codes) = common::new_vault(&pass());
    rows_for_audit(&mut vault);
    let before = vault.verify_audit().expect("intact");
    assert!(before >= 5, "{before}");
    // Drop the triggers, delete two rows in the middle, renumber and recompute the chain.
    sql(
        &vault,
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq IN (2, 3);",
    );
    let rows = vault.catalog().audit_rows(None).expect("rows");
    let mut prev = keyward_core::audit::GENESIS.to_owned();
    let conn = vault.catalog().connection();
    for (i, r) in rows.iter().enumerate() {
        let mut r = r.clone();
        let old_seq = r.seq;
        r.seq = i as i64 + 1;
        let hash = sha256_chain_row(&prev, &r);
        conn.execute(
            "UPDATE audit SET seq = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![r.seq, prev, hash, old_seq],
        )
        .expect("rewrite");
        prev = hash;
    }
    let err = vault
        .verify_audit()
        .expect_err("rewritten history must be found");
    assert!(err.to_string().contains("row 1"), "{err}");
}

#[test]
fn a_truncated_audit_tail_is_detected() {
    let (_dir, mut vault, _codes) = common::new_vault(&pass());
    rows_for_audit(&mut vault);
    let n = vault.verify_audit().expect("intact") as i64;
    sql(
        &vault,
        &format!(
            "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq >= {}",
            n - 1
        ),
    );
    let err = vault.verify_audit().expect_err("truncation must be found");
    let text = err.to_string();
    assert!(text.contains(&format!("row {}", n - 1)), "{text}");
    // Rows written after the cut do not paper over it: the row the anchor names is now another.
    rows_for_audit_named(&mut vault, "later");
    let err = vault
        .verify_audit()
        .expect_err("still found after more rows");
    assert!(err.to_string().contains(&format!("row {n}")), "{err}");
}

fn issuance() -> Vec<(Actor, keyward_core::AuditEvent)> {
    vec![(
        Actor::default(),
        keyward_core::AuditEvent {
            action: "issue",
            target: Some("k0".into()),
            outcome: "ok",
            detail: serde_json::json!({}),
        },
    )]
}

#[test]
fn a_cut_before_the_anchor_moved_is_still_found() {
    let (_dir, mut vault, _codes) = common::new_vault(&pass());
    rows_for_audit(&mut vault);
    // The issuance path: rows committed, anchor not yet moved.
    vault.audit_unanchored(&issuance()).expect("row");
    vault.audit_unanchored(&issuance()).expect("row");
    let n = vault.catalog().audit_rows(None).expect("rows").len() as i64;
    sql(
        &vault,
        &format!("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq >= {n}"),
    );
    let err = vault
        .verify_audit()
        .expect_err("the cut issuance row must be found");
    assert!(err.to_string().contains(&format!("row {n}")), "{err}");
}

#[test]
fn while_the_anchor_cannot_be_written_issuances_are_refused() {
    let (_dir, mut vault, _codes) = common::new_vault(&pass());
    // The keychain goes away (the file keystore stands in for it here).
    sql(
        &vault,
        "CREATE TRIGGER no_anchor_u BEFORE UPDATE ON file_secrets WHEN old.item LIKE '%audit-anchor%' BEGIN SELECT RAISE(ABORT, 'keychain gone'); END;
         CREATE TRIGGER no_anchor_i BEFORE INSERT ON file_secrets WHEN new.item LIKE '%audit-anchor%' BEGIN SELECT RAISE(ABORT, 'keychain gone'); END;",
    );
    // The row is committed (the request it records was answered), the anchor write fails...
    vault.audit_unanchored(&issuance()).expect("row");
    let rows = vault.catalog().audit_rows(None).expect("rows").len();
    let err = vault.anchor_head().expect_err("anchor write fails");
    assert!(err.to_string().contains("anchor"), "{err}");
    // ...so the next issuance is refused and records nothing.
    let err = vault
        .audit_unanchored(&issuance())
        .expect_err("fail closed while the anchor lags");
    assert!(err.to_string().contains("anchor"), "{err}");
    assert_eq!(vault.catalog().audit_rows(None).expect("rows").len(), rows);
    // The keychain is back: the next issuance goes through and the trail verifies.
    sql(
        &vault,
        "DROP TRIGGER no_anchor_u; DROP TRIGGER no_anchor_i;",
    );
    vault.audit_unanchored(&issuance()).expect("row");
    vault.anchor_head().expect("anchored");
    assert_eq!(vault.verify_audit().expect("intact") as usize, rows + 1);
}

#[test]
fn a_failed_add_is_audited_as_failed_not_ok() {
    let (_dir, mut vault, _codes) = common::new_vault(&pass());
    // The keystore write fails (a full disk, a keychain that went away).
    sql(
        &vault,
        "CREATE TRIGGER no_space BEFORE INSERT ON file_secrets BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    );
    vault
        .add_entry(
            meta("gh", EntryKind::Static, EntryConfig::default()),
            &static_secret("v"),
            &Actor::default(),
        )
        .expect_err("keystore write fails");
    let rows = vault.history("gh", 10).expect("history");
    let outcomes: Vec<&str> = rows.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["failed"], "{rows:?}");
}

// Finding 9: a rotation interrupted between the two stores is repaired.

#[test]
fn a_rotation_interrupted_after_the_keychain_write_is_completed_by_reconcile() {
    let (dir, mut vault, _codes) = common::new_vault(&pass());
    let cfg = EntryConfig {
        aws: Some(AwsConfig {
            session_duration_secs: 3600,
            ..AwsConfig::default()
        }),
        ..EntryConfig::default()
    };
    vault
        .add_entry(
            meta("prod", EntryKind::Aws, cfg),
            &aws_secret(
                &fake_key_id("OLDOLDOLDOLD1234"),
                "oldSecretoldSecretoldSecretoldSecret0000",
            ),
            &Actor::default(),
        )
        .expect("add");
    // A kill right after the keychain write: the catalog update never happens.
    sql(
        &vault,
        "CREATE TRIGGER killed BEFORE UPDATE OF config ON entries BEGIN SELECT RAISE(ABORT, 'killed'); END;",
    );
    let codes = _codes;
    let key = unlock_with(&mut vault, &codes[0]).expect("unlock");
    let _ = vault.replace_secret(
        "prod",
        &aws_secret(
            &fake_key_id("NEWNEWNEWNEW5678"),
            "newSecretnewSecretnewSecretnewSecret1111",
        ),
        &key,
        &Actor::default(),
    );
    sql(&vault, "DROP TRIGGER killed;");
    drop(vault);
    let mut vault = reopen(&dir);
    let notes = vault.reconcile(&Actor::default()).expect("reconcile");
    assert!(
        notes
            .iter()
            .any(|n| n.name == "prod" && n.action.contains("rotation")),
        "{notes:?}"
    );
    let hint = vault
        .get("prod")
        .expect("get")
        .config
        .aws
        .expect("aws")
        .access_key_hint;
    assert_eq!(
        hint, "AKIA…5678",
        "the catalog names the key that is stored"
    );
    assert!(vault.get("prod").expect("get").rotated.is_some());
}

// Finding 6: brute-force state cannot be reset by editing rows.

fn totp_vault() -> (tempfile::TempDir, Vault, TotpSetup, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vault = reopen(&dir);
    let totp = TotpSetup::generate("t").expect("totp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let secret = totp.secret_base32();
    vault
        .create(
            CreateOptions {
                passphrase: pass(),
                keystore: KeystoreKind::File,
                kdf: KdfParams {
                    memory_kib: MIN_MEMORY_KIB,
                    iterations: 1,
                    parallelism: 1,
                },
                totp_code: totp.code_at(now - 30),
                totp: TotpSetup::from_base32(secret.expose_secret(), "t").expect("totp"),
                totp_label: "app".into(),
            },
            &Actor::default(),
        )
        .expect("create");
    (dir, vault, totp, now)
}

#[test]
fn a_deleted_totp_step_does_not_let_a_used_code_in_again() {
    let (_dir, mut vault, totp, now) = totp_vault();
    let code = totp.code_at(now);
    vault
        .unlock(
            &pass(),
            &SecondFactor::Totp(code.clone()),
            &Actor::default(),
        )
        .expect("first use");
    sql(&vault, "DELETE FROM totp_steps;");
    let err = vault
        .unlock(&pass(), &SecondFactor::Totp(code), &Actor::default())
        .expect_err("a used code must stay used");
    assert!(matches!(err, VaultError::CodeReused), "{err}");
}

#[test]
fn a_reset_throttle_row_counts_as_the_worst_case() {
    let (_dir, mut vault, _totp, _now) = totp_vault();
    let wrong = SecretString::from("not-the-passphrase-at-all".to_owned());
    for _ in 0..3 {
        let _ = vault.unlock(
            &wrong,
            &SecondFactor::Totp("000000".into()),
            &Actor::default(),
        );
    }
    assert!(
        vault.unlock_wait().expect("wait") > 0,
        "three failures delay"
    );
    sql(
        &vault,
        "UPDATE unlock_throttle SET failures = 0, next_allowed_at = 0;",
    );
    assert!(
        vault.unlock_wait().expect("wait") > 0,
        "an edited throttle row must not lift the delay"
    );
}

#[test]
fn passphrase_checks_while_unlocked_are_throttled_and_audited() {
    let (_dir, mut vault, codes) = common::new_vault(&pass());
    let key = unlock_with(&mut vault, &codes[0]).expect("unlock");
    let wrong = SecretString::from("not-the-passphrase-at-all".to_owned());
    let mut refusals = Vec::new();
    for _ in 0..4 {
        refusals.push(
            vault
                .regenerate_recovery_codes(&key, &wrong, &Actor::default())
                .expect_err("wrong passphrase"),
        );
    }
    assert!(
        refusals
            .iter()
            .any(|e| matches!(e, VaultError::Throttled(_))),
        "{refusals:?}"
    );
    let failed = vault
        .catalog()
        .audit_rows(None)
        .expect("audit")
        .into_iter()
        .filter(|r| r.action == "passphrase" && r.outcome != "ok")
        .count();
    assert!(failed >= 3, "each wrong passphrase leaves a row ({failed})");
}

// The rotation journal decides which keys the agent deletes at AWS: only this vault can write one.

fn journal(old: &str) -> keyward_core::vault::RotationJournal {
    keyward_core::vault::RotationJournal {
        user_name: "deployer".into(),
        old_key_id: old.into(),
        new_key_id: Some(fake_key_id("NEWNEWNEWNEWNEW2")),
        new_secret: Some(SecretString::from("n".repeat(40))),
        step: keyward_core::vault::RotationStep::Created,
        begun: "2026-12-01T10:00:00Z".into(),
        deactivated: None,
        grace_secs: 86_400,
    }
}

#[test]
fn a_rotation_journal_reads_back_and_a_forged_or_moved_one_is_refused() {
    let (_dir, mut vault, codes) = common::new_vault(&pass());
    let old = fake_key_id("OLDOLDOLDOLDOLD1");
    for name in ["a", "b"] {
        vault
            .add_entry(
                meta(
                    name,
                    EntryKind::Aws,
                    EntryConfig {
                        aws: Some(AwsConfig {
                            session_duration_secs: 3600,
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ),
                &aws_secret(&old, &"s".repeat(40)),
                &Actor::default(),
            )
            .expect("add");
    }
    let key = unlock_with(&mut vault, &codes[0]).expect("unlock");
    let a = vault.get("a").expect("a");
    let b = vault.get("b").expect("b");
    assert!(vault.rotation_journal(&key, &a).expect("read").is_none());
    vault
        .put_rotation_journal(&key, &a, &journal(&old))
        .expect("write");
    let back = vault
        .rotation_journal(&key, &a)
        .expect("read")
        .expect("open");
    assert_eq!(back.old_key_id, old);
    assert_eq!(
        back.new_secret
            .as_ref()
            .map(|s| s.expose_secret().to_owned()),
        Some("n".repeat(40))
    );
    assert_eq!(
        vault.open_rotations().expect("index"),
        [(a.id.clone(), "created".to_owned())]
    );
    // The secret in it is not in the catalog in the clear.
    let raw: Vec<u8> = vault
        .catalog()
        .connection()
        .query_row(
            "SELECT value FROM file_secrets WHERE item LIKE '%/rotation/%'",
            [],
            |r| r.get(0),
        )
        .expect("journal row");
    assert!(!raw.windows(40).any(|w| w == "n".repeat(40).as_bytes()));

    // Moved to another entry: refused.
    sql(
        &vault,
        &format!(
            "INSERT INTO file_secrets (item, value) SELECT replace(item, '{}', '{}'), value FROM file_secrets WHERE item LIKE '%/rotation/%'",
            a.id, b.id
        ),
    );
    let err = vault.rotation_journal(&key, &b).expect_err("moved");
    assert!(matches!(err, VaultError::JournalForged(_)), "{err}");

    // Forged: encrypted to the vault's public recipient, as anyone can, with any tag.
    let recipient: age::x25519::Recipient = vault
        .catalog()
        .connection()
        .query_row("SELECT header FROM vault", [], |r| r.get::<_, String>(0))
        .ok()
        .and_then(|h| {
            h.split(|c: char| !c.is_ascii_alphanumeric())
                .find(|w| w.starts_with("age1"))
                .map(str::to_owned)
        })
        .and_then(|r| r.parse().ok())
        .expect("the header names the recipient");
    let plain = format!(
        r#"{{"entry_id":"{}","user_name":"deployer","old_key_id":"{}","step":"deactivated","begun":"2026-01-01T00:00:00Z","deactivated":"2026-01-01T00:00:00Z","grace_secs":0}}"#,
        a.id, old
    );
    let mut forged = vec![0u8; 32];
    forged.extend(age::encrypt(&recipient, plain.as_bytes()).expect("encrypt"));
    let conn = vault.catalog().connection();
    conn.execute(
        "UPDATE file_secrets SET value = ?1 WHERE item LIKE ?2",
        rusqlite::params![forged, format!("%/rotation/{}", a.id)],
    )
    .expect("forge");
    let err = vault.rotation_journal(&key, &a).expect_err("forged");
    assert!(matches!(err, VaultError::JournalForged(_)), "{err}");
    assert!(
        err.to_string().contains("keyward rotate a --manual"),
        "{err}"
    );

    vault.clear_rotation_journal(&a).expect("clear");
    assert!(vault.rotation_journal(&key, &a).expect("read").is_none());
    assert!(vault.open_rotations().expect("index").is_empty());
}
