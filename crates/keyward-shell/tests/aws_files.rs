//! The file side of AWS import and setup, as both the CLI and the app see it. One test: it
//! points the process's AWS file variables and PATH at a temporary home.

use std::fs;

use keyward_shell::aws::{point_profiles, CredentialsFile};
use keyward_shell::ShellError;

#[test]
fn the_credentials_and_config_files_as_both_shells_see_them() {
    let home = tempfile::tempdir().expect("tempdir");
    let creds = home.path().join("credentials");
    let config = home.path().join("config");
    let bin = home.path().join("bin");
    fs::create_dir(&bin).expect("bin");
    fs::write(bin.join("keyward"), "#!/bin/sh\n").expect("keyward");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &creds);
    std::env::set_var("AWS_CONFIG_FILE", &config);
    std::env::set_var("PATH", &bin);

    // No credentials file: nothing to list, and an import says so.
    let none = CredentialsFile::read().expect("read");
    assert!(!none.exists());
    assert!(none.candidates(&[]).is_empty());

    // A key id made up at run time (never a literal that looks like a real one).
    let id = format!("AKIA{}", "Q".repeat(16));
    let secret = "s".repeat(40);
    fs::write(
        &creds,
        format!(
            "[ci]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\nregion = eu-west-1\n\n\
             [half]\naws_access_key_id = {id}\n\n\
             [taken]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
        ),
    )
    .expect("write");
    let file = CredentialsFile::read().expect("read");
    let c = file.candidates(&["taken".to_owned()]);
    let by = |n: &str| c.iter().find(|c| c.name == n).expect(n).clone();
    assert_eq!(by("ci").problem, None);
    assert_eq!(by("ci").region.as_deref(), Some("eu-west-1"));
    let hint = by("ci").access_key_hint.expect("hint");
    assert!(
        !hint.contains(&id),
        "only a hint of the key id is shown: {hint}"
    );
    assert_eq!(
        by("taken").problem.as_deref(),
        Some("a key with this name is already in Keyward")
    );
    assert!(by("half").problem.is_some());
    assert!(
        !format!("{c:?}").contains(&secret),
        "no secret in what is listed"
    );

    // Pointing a profile at Keyward names what in the config would still win over it.
    fs::write(&config, "[profile ci]\naws_secret_access_key = old\n").expect("config");
    let p = point_profiles(&[("ci".into(), "ci".into())]).expect("point");
    assert!(p.changed);
    assert!(p.backup.is_some(), "the previous config is kept");
    let text = fs::read_to_string(&config).expect("config");
    assert!(text.contains("credential_process = "), "{text}");
    assert!(text.contains("keyward cred aws --profile ci"), "{text}");
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(
        p.warnings[0].contains("profile 'ci'")
            && p.warnings[0].contains("also sets aws_secret_access_key"),
        "{}",
        p.warnings[0]
    );
    // A second time changes nothing and still warns.
    let again = point_profiles(&[("ci".into(), "ci".into())]).expect("point");
    assert!(!again.changed && again.backup.is_none());
    assert_eq!(again.warnings, p.warnings);

    // The plaintext keys go, with a 0600 backup …
    let backup = file
        .remove_plaintext(&["ci".to_owned()])
        .expect("remove")
        .expect("backup");
    let left = fs::read_to_string(&creds).expect("creds");
    assert!(!left.contains("[ci]") && left.contains("[taken]"), "{left}");
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&backup).expect("backup").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // … but not when the file changed since it was read: the keys there may not be the ones
    // imported. Nothing is written.
    let file = CredentialsFile::read().expect("read");
    let changed =
        format!("{left}\n[new]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n");
    fs::write(&creds, &changed).expect("edit");
    let err = file.remove_plaintext(&["taken".to_owned()]);
    assert!(
        matches!(err, Err(ShellError::ChangedMeanwhile(_))),
        "{err:?}"
    );
    assert_eq!(fs::read_to_string(&creds).expect("creds"), changed);
}
