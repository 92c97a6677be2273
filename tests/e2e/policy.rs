//! `keyward policy check`: what an admin runs on a policy file before rolling it out.

use crate::support::Home;

#[test]
fn a_valid_policy_is_described_and_a_broken_one_named_by_line_and_reason() {
    let home = Home::new();
    let good = home.path("policy.toml");
    std::fs::write(
        &good,
        "[defaults]\nmax_key_age_days = 90\nenforcement = \"warn\"\n\n[[rule]]\nname = \"prod-aws\"\nkinds = [\"aws\"]\ntags = [\"prod\"]\n[rule.limits]\nmax_key_age_days = 30\nenforcement = \"block\"\n",
    )
    .expect("write");
    let out = home
        .kw(&["policy", "check", good.to_str().expect("utf-8")])
        .ok();
    assert!(
        out.stdout
            .contains("a valid policy (defaults and 1 rule(s): prod-aws)"),
        "{}",
        out.stdout
    );

    let bad = home.path("typo.toml");
    std::fs::write(
        &bad,
        "[defaults]\nmax_key_age_days = 90\nmax_age_days = 30\n",
    )
    .expect("write");
    let line = home
        .kw(&["policy", "check", bad.to_str().expect("utf-8")])
        .one_line_error();
    assert!(
        line.contains(&format!(
            "{} line 3: unknown field `max_age_days`",
            bad.display()
        )),
        "{line}"
    );

    let missing = home.path("nowhere.toml");
    let line = home
        .kw(&["policy", "check", missing.to_str().expect("utf-8")])
        .one_line_error();
    assert!(
        line.contains("cannot read") && line.contains("nowhere.toml"),
        "{line}"
    );
}
