//! FIDO2 security key through the CLI and agent, with the software authenticator compiled in by
//! the test-only `test-authenticator` feature (never in release builds).

use crate::support::{Home, PASSPHRASE};

// The e2e suite drives the software security key; without it the FIDO2 path would go untested.
#[cfg(not(feature = "test-authenticator"))]
compile_error!(
    "run the end-to-end tests with scripts/test, which enables keyward-cli/test-authenticator"
);

#[test]
fn security_key_enrolls_and_unlocks_and_a_foreign_key_does_not() {
    let home = Home::new();
    home.init();
    home.unlock();
    let token = home.path("soft-key.cbor");
    let env = [("KEYWARD_TEST_AUTHENTICATOR", token.as_path())];
    let out = home
        .kw_input_env(
            &["factor", "add-fido2", "--label", "yubi"],
            &[PASSPHRASE],
            &env,
        )
        .ok();
    assert!(
        out.stdout.contains("Enrolled fido2 factor"),
        "{}",
        out.stdout
    );
    let factors = home.kw(&["factor", "list", "--json"]).ok();
    assert!(
        factors.stdout.contains("\"kind\": \"fido2\""),
        "{}",
        factors.stdout
    );

    home.kw(&["lock"]).ok();
    home.kw_input_env(&["unlock", "--fido2"], &[PASSPHRASE], &env)
        .ok();
    assert_eq!(home.status()["locked"], false);

    home.kw(&["lock"]).ok();
    let line = home
        .kw_input_env(&["unlock", "--fido2"], &["wrong-passphrase-here-x"], &env)
        .one_line_error();
    assert!(
        line.contains("passphrase or the second factor is wrong"),
        "{line}"
    );

    let other = home.path("other-key.cbor");
    let line = home
        .kw_input_env(
            &["unlock", "--fido2"],
            &[PASSPHRASE],
            &[("KEYWARD_TEST_AUTHENTICATOR", other.as_path())],
        )
        .one_line_error();
    assert!(line.contains("not enrolled"), "{line}");
    assert_eq!(home.status()["locked"], true);

    // Without the software key the CLI goes to USB: no key is plugged in here, so it says so
    // in one line, and a named device that is not there is named.
    let line = home
        .kw_input(&["unlock", "--fido2"], &[PASSPHRASE])
        .one_line_error();
    assert!(
        line.contains("no security key found: plug one in"),
        "{line}"
    );
    let line = home
        .kw_input_env(
            &["unlock", "--fido2"],
            &[PASSPHRASE],
            &[(
                "KEYWARD_FIDO2_DEVICE",
                std::path::Path::new("/dev/hidraw-not-here"),
            )],
        )
        .one_line_error();
    assert!(
        line.contains("cannot open the security key at /dev/hidraw-not-here"),
        "{line}"
    );
    assert_eq!(home.status()["locked"], true);

    let tail = home.kw(&["audit", "tail", "-n", "30"]).ok();
    assert!(tail.stdout.contains("factor.add"), "{}", tail.stdout);
}
