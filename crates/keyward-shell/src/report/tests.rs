use keyward_core::policy::Standing;
use keyward_core::{EntryConfig, EntryKind, EntryMeta, EntryState};

use super::*;

fn listed(name: &str, purpose: &str, state: EntryState) -> Listed {
    Listed {
        meta: EntryMeta {
            id: format!("id-{name}"),
            name: name.into(),
            kind: EntryKind::Aws,
            owner: Some("platform".into()),
            purpose: Some(purpose.into()),
            tags: vec!["prod".into(), "eu".into()],
            created: "2026-01-01T00:00:00Z".into(),
            rotated: None,
            rotation_interval_days: Some(90),
            expires: None,
            last_used: Some("2026-11-30T10:00:00Z".into()),
            use_count: 7,
            provider_use: None,
            config: EntryConfig::default(),
        },
        standing: Standing {
            state,
            reason: (state != EntryState::Ok).then(|| {
                "rotation overdue since 2026-04-01 (its rotation interval of 90 days)".into()
            }),
            rule: None,
            blocked: false,
        },
    }
}

fn seen_at_aws(mut l: Listed) -> Listed {
    l.meta.provider_use = Some(keyward_core::ProviderUse {
        used: Some("2026-11-29T08:00:00Z".into()),
        service: Some("s3".into()),
        region: Some("eu-west-1".into()),
        checked: "2026-12-01T09:00:00Z".into(),
        error: None,
    });
    l
}

fn policy() -> PolicyInfo {
    PolicyInfo {
        path: "/etc/keyward/policy.toml".into(),
        sha256: Some("ab".repeat(32)),
        ..PolicyInfo::default()
    }
}

#[test]
fn csv_has_a_header_a_row_per_key_and_defuses_formulas() {
    let keys = [
        listed("deploy", "CI deploys", EntryState::Overdue),
        seen_at_aws(listed(
            "evil",
            "=HYPERLINK(\"http://x\",\"click\")",
            EntryState::Ok,
        )),
    ];
    let out = render(&keys, &policy(), "2026-12-02T12:00:00Z", Format::Csv).expect("csv");
    let mut r = csv::Reader::from_reader(out.as_bytes());
    let header: Vec<String> = r
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, COLUMNS);
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.expect("row")).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][0], "deploy");
    assert_eq!(&rows[0][4], "prod eu");
    assert_eq!(&rows[0][12], "overdue");
    assert!(rows[0][13].contains("rotation overdue"));
    assert_eq!(&rows[0][10], "", "AWS not asked yet");
    assert_eq!(
        &rows[1][10], "2026-11-29T08:00:00Z",
        "the provider's last use"
    );
    assert_eq!(
        &rows[1][16],
        "2026-11-29T08:00:00Z (s3, eu-west-1); asked 2026-12-01T09:00:00Z"
    );
    assert_eq!(
        &rows[1][3], "'=HYPERLINK(\"http://x\",\"click\")",
        "a formula is text"
    );
}

#[test]
fn the_page_escapes_what_keys_say_and_can_load_nothing() {
    let keys = [listed(
        "x",
        "<script>alert(1)</script> & \"quotes\"",
        EntryState::Expired,
    )];
    let page = render(&keys, &policy(), "2026-12-02T12:00:00Z", Format::Html).expect("html");
    assert!(!page.contains("<script>alert"), "escaped");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"));
    assert!(
        page.contains("default-src 'none'"),
        "no network, by its own policy"
    );
    for fetches in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!page.contains(fetches), "nothing to fetch: {fetches}");
    }
    assert!(page.contains("<tr class=\"expired\">"), "state colour");
    let seen = render(
        &[seen_at_aws(listed("y", "z", EntryState::Ok))],
        &policy(),
        "2026-12-02T12:00:00Z",
        Format::Html,
    )
    .expect("html");
    assert!(seen.contains(
        "<td class=\"date\" title=\"2026-11-29T08:00:00Z (s3, eu-west-1); asked 2026-12-01T09:00:00Z\">2026-11-29</td>"
    ));
    assert!(seen.contains("<th data-col=\"10\" tabindex=\"0\">Last used at provider</th>"));
    assert!(page.contains("1 keys") && page.contains("sha256 abababababababab"));
}

#[test]
fn json_carries_the_policy_and_every_field() {
    let keys = [listed("deploy", "CI", EntryState::DueSoon)];
    let out = render(&keys, &policy(), "2026-12-02T12:00:00Z", Format::Json).expect("json");
    let v: serde_json::Value = serde_json::from_str(&out).expect("parse");
    assert_eq!(v["generated"], "2026-12-02T12:00:00Z");
    assert_eq!(v["policy"]["path"], "/etc/keyward/policy.toml");
    assert_eq!(v["keys"][0]["state"], "due_soon");
    assert_eq!(v["keys"][0]["rotate_every_days"], 90);
    assert_eq!(v["keys"][0]["uses"], 7);
    assert_eq!(v["keys"][0]["provider_last_used"], serde_json::Value::Null);
}
