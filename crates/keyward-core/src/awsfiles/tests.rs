use super::*;

fn set(text: &str, profile: &str) -> String {
    set_credential_process(text, profile, "/bin/kw cred aws --profile x").expect("set")
}

#[test]
fn inserts_into_an_empty_file() {
    assert_eq!(
        set("", "dev"),
        "[profile dev]\ncredential_process = /bin/kw cred aws --profile x\n"
    );
    assert_eq!(
        set("", "default"),
        "[default]\ncredential_process = /bin/kw cred aws --profile x\n"
    );
}

#[test]
fn appends_a_missing_section_after_one_blank_line() {
    let tail = "[profile dev]\ncredential_process = /bin/kw cred aws --profile x\n";
    assert_eq!(
        set("[default]\nregion = x", "dev"),
        format!("[default]\nregion = x\n\n{tail}")
    );
    assert_eq!(
        set("[default]\nregion = x\n", "dev"),
        format!("[default]\nregion = x\n\n{tail}")
    );
    assert_eq!(
        set("[default]\nregion = x\n\n", "dev"),
        format!("[default]\nregion = x\n\n{tail}")
    );
    // A section the AWS CLI does not read as `[profile dev]` is not it.
    assert_eq!(
        set("[dev]\nregion = x\n", "dev"),
        format!("[dev]\nregion = x\n\n{tail}")
    );
}

#[test]
fn inserts_after_the_last_option_of_an_existing_section() {
    let text = "# top\n[profile dev]\n# keys below\nregion = eu-west-1 ; not a comment\noutput=json\n\n# the prod account\n[ profile  prod ]\nregion = us-east-1\n";
    assert_eq!(
        set_credential_process(text, "dev", "c").expect("set"),
        "# top\n[profile dev]\n# keys below\nregion = eu-west-1 ; not a comment\noutput=json\ncredential_process = c\n\n# the prod account\n[ profile  prod ]\nregion = us-east-1\n"
    );
    assert_eq!(
        set_credential_process(text, "prod", "c").expect("set"),
        "# top\n[profile dev]\n# keys below\nregion = eu-west-1 ; not a comment\noutput=json\n\n# the prod account\n[ profile  prod ]\nregion = us-east-1\ncredential_process = c\n"
    );
    // An empty section, the last line unterminated.
    assert_eq!(
        set_credential_process("[profile dev]", "dev", "c").expect("set"),
        "[profile dev]\ncredential_process = c\n"
    );
    // After a nested value's continuation lines, not inside them.
    assert_eq!(
        set_credential_process(
            "[profile dev]\ns3 =\n  max_concurrent_requests = 4\n",
            "dev",
            "c"
        )
        .expect("set"),
        "[profile dev]\ns3 =\n  max_concurrent_requests = 4\ncredential_process = c\n"
    );
}

#[test]
fn replaces_an_existing_line_in_place() {
    let text = "[profile dev]\nregion = x\ncredential_process=old --flag\noutput = json\n[profile other]\ncredential_process = keep\n";
    assert_eq!(
        set_credential_process(text, "dev", "new").expect("set"),
        "[profile dev]\nregion = x\ncredential_process = new\noutput = json\n[profile other]\ncredential_process = keep\n"
    );
    // The AWS CLI reads option names without case and accepts `:`; a second line would make
    // it reject the whole file as a duplicate.
    assert_eq!(
        set_credential_process("[profile dev]\nCredential_Process : old\n", "dev", "new")
            .expect("set"),
        "[profile dev]\ncredential_process = new\n"
    );
    // Indentation and a missing final newline are kept; continuation lines and duplicates go.
    assert_eq!(
        set_credential_process(
            "[profile dev]\n  region = x\n  credential_process = old\n      --more\n  output = json\n  credential_process = dup\n  tail = 1",
            "dev",
            "new"
        )
        .expect("set"),
        "[profile dev]\n  region = x\n  credential_process = new\n  output = json\n  tail = 1"
    );
    assert_eq!(
        set_credential_process("[profile dev]\ncredential_process = old", "dev", "new")
            .expect("set"),
        "[profile dev]\ncredential_process = new"
    );
    // A commented-out line is not the option.
    assert_eq!(
        set_credential_process("[profile dev]\n# credential_process = old\n", "dev", "new")
            .expect("set"),
        "[profile dev]\ncredential_process = new\n# credential_process = old\n"
    );
}

#[test]
fn default_profile_uses_its_own_header() {
    let text = "[profile default-ish]\nregion = a\n[default]\nregion = b\n";
    assert_eq!(
        set_credential_process(text, "default", "c").expect("set"),
        "[profile default-ish]\nregion = a\n[default]\nregion = b\ncredential_process = c\n"
    );
    // `[profile default]` also names the default profile.
    assert_eq!(
        set_credential_process("[profile default]\nregion = b\n", "default", "c").expect("set"),
        "[profile default]\nregion = b\ncredential_process = c\n"
    );
    assert_eq!(
        set_credential_process("[default]\nregion = b\n", "dev", "c").expect("set"),
        "[default]\nregion = b\n\n[profile dev]\ncredential_process = c\n"
    );
}

#[test]
fn edits_the_last_of_several_sections_for_a_profile_as_the_aws_cli_reads_it() {
    assert_eq!(
        set_credential_process(
            "[profile dev]\nregion = a\n[profile  dev]\nregion = b\n",
            "dev",
            "c"
        )
        .expect("set"),
        "[profile dev]\nregion = a\n[profile  dev]\nregion = b\ncredential_process = c\n"
    );
    assert_eq!(
        set_credential_process("[profile default]\nregion = a\n[default]\n", "default", "c")
            .expect("set"),
        "[profile default]\nregion = a\n[default]\ncredential_process = c\n"
    );
    assert_eq!(
        conflicting_keys(
            "[profile dev]\naws_access_key_id = A\n[profile  dev]\naws_session_token = T\n",
            "dev"
        ),
        vec!["aws_session_token"]
    );
}

#[test]
fn keeps_crlf_line_endings() {
    assert_eq!(
        set_credential_process(
            "[default]\r\ncredential_process=old\r\noutput = json\r\n",
            "default",
            "new"
        )
        .expect("set"),
        "[default]\r\ncredential_process = new\r\noutput = json\r\n"
    );
    assert_eq!(
        set_credential_process(
            "[profile dev]\r\nregion = x\r\n\r\n[default]\r\n",
            "dev",
            "c"
        )
        .expect("set"),
        "[profile dev]\r\nregion = x\r\ncredential_process = c\r\n\r\n[default]\r\n"
    );
    assert_eq!(
        set_credential_process("[default]\r\nregion = x", "dev", "c").expect("set"),
        "[default]\r\nregion = x\r\n\r\n[profile dev]\r\ncredential_process = c\r\n"
    );
}

#[test]
fn indented_next_header_stays_a_header() {
    assert_eq!(
        set_credential_process(
            "[profile dev]\n  [profile prod]\n  region = x\n",
            "dev",
            "c"
        )
        .expect("set"),
        "[profile dev]\n  credential_process = c\n  [profile prod]\n  region = x\n"
    );
}

#[test]
fn rejects_values_that_would_break_the_file() {
    let bad = |profile: &str, command: &str| match set_credential_process("", profile, command) {
        Err(AwsFileError::BadValue { what, .. }) => what,
        other => panic!("expected BadValue, got {other:?}"),
    };
    assert_eq!(
        bad("dev", "kw\nregion = evil"),
        "the credential_process command"
    );
    assert_eq!(bad("dev", "kw\r"), "the credential_process command");
    assert_eq!(bad("dev", "kw\0"), "the credential_process command");
    assert_eq!(bad("dev", "  "), "the credential_process command");
    assert_eq!(bad("dev]\n[x", "kw"), "the profile name");
    assert_eq!(bad("a\0", "kw"), "the profile name");
    assert_eq!(bad("my dev", "kw"), "the profile name");
    assert_eq!(bad("", "kw"), "the profile name");
    let msg = AwsFileError::BadValue {
        what: "the credential_process command",
        why: "contains a line break or NUL",
    }
    .to_string();
    assert_eq!(
        msg,
        "the credential_process command cannot go in an AWS file: it contains a line break or NUL"
    );
}

#[test]
fn conflicting_keys_are_named_not_valued() {
    let text = "[profile dev]\naws_access_key_id = AKIAKEYWARDTEST001\nregion = x\nAWS_Secret_Access_Key: s3cr3t\n# aws_session_token = commented\ns3 =\n  aws_session_token = nested\naws_access_key_id = again\n[profile other]\naws_session_token = t\n";
    assert_eq!(
        conflicting_keys(text, "dev"),
        vec!["aws_access_key_id", "AWS_Secret_Access_Key"]
    );
    assert_eq!(conflicting_keys(text, "other"), vec!["aws_session_token"]);
    assert!(conflicting_keys(text, "missing").is_empty());
    assert!(conflicting_keys("[default]\nregion = x\n", "default").is_empty());
}

#[test]
fn parses_credentials_with_comments_odd_spacing_and_missing_keys() {
    let text = "region = before-any-section\n; keys\n[ci]\n\taws_access_key_id=AKIAKEYWARDTEST001\naws_secret_access_key =  s3cr3t  \n\n# half a pair\n[half]\naws_access_key_id = AKIAHALF\n[ tmp ]\nAWS_ACCESS_KEY_ID: ASIA1\naws_secret_access_key:t\naws_session_token = tok\nregion = eu-west-1\n[empty]\naws_access_key_id =\naws_secret_access_key = x\n[split]\naws_access_key_id = AKIASPLIT\naws_secret_access_key = abc\n    def\n[regiononly]\nregion = us-east-1\n";
    let (found, incomplete) = parse_credentials(text);
    assert_eq!(incomplete, vec!["half", "empty", "split", "regiononly"]);
    let names: Vec<&str> = found.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["ci", "tmp"]);
    assert_eq!(found[0].access_key_id, "AKIAKEYWARDTEST001");
    assert_eq!(found[0].secret_access_key.expose_secret(), "s3cr3t");
    assert!(!found[0].session_token_present);
    assert_eq!(found[0].region, None);
    assert_eq!(found[1].access_key_id, "ASIA1");
    assert_eq!(found[1].secret_access_key.expose_secret(), "t");
    assert!(found[1].session_token_present);
    assert_eq!(found[1].region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        format!("{:?}", found[0]),
        "CredentialsProfile { name: \"ci\", access_key_id: \"AKIAKEYWARDTEST001\", secret_access_key: <redacted>, session_token_present: false, region: None }"
    );
    assert_eq!(parse_credentials("").0.len(), 0);
}

#[test]
fn remove_profiles_keeps_everything_else_byte_exact() {
    let text = "; keys\n[ci]\naws_access_key_id=A\r\n  [half]\n\n# prod\n[prod]\naws_access_key_id = B\n[last]\nx = 1";
    // `  [half]` continues ci's value: it is not a header, so it goes with ci.
    assert_eq!(
        remove_profiles(text, &["ci"]),
        "; keys\n[prod]\naws_access_key_id = B\n[last]\nx = 1"
    );
    assert_eq!(
        remove_profiles(text, &["prod", "last"]),
        "; keys\n[ci]\naws_access_key_id=A\r\n  [half]\n\n# prod\n"
    );
    assert_eq!(remove_profiles(text, &["half", "none"]), text);
    assert_eq!(remove_profiles(text, &[]), text);
    assert_eq!(
        remove_profiles("[ a ]\r\nk = v\r\n[b]\r\nk = w\r\n", &["a"]),
        "[b]\r\nk = w\r\n"
    );
}

#[test]
fn resolves_paths_from_the_environment() {
    let os = |s: &str| Some(OsString::from(s));
    assert_eq!(
        resolve_path(os("/etc/aws"), os("/home/u"), ".aws/config").expect("path"),
        PathBuf::from("/etc/aws")
    );
    assert_eq!(
        resolve_path(os("~/cfg/aws"), os("/home/u"), ".aws/config").expect("path"),
        PathBuf::from("/home/u/cfg/aws")
    );
    assert_eq!(
        resolve_path(os(""), os("/home/u"), ".aws/config").expect("path"),
        PathBuf::from("/home/u/.aws/config")
    );
    assert_eq!(
        resolve_path(None, os("/home/u"), ".aws/credentials").expect("path"),
        PathBuf::from("/home/u/.aws/credentials")
    );
    assert!(matches!(
        resolve_path(None, os(""), ".aws/config"),
        Err(AwsFileError::NoHome)
    ));
    assert!(matches!(
        resolve_path(os("~/x"), None, ".aws/config"),
        Err(AwsFileError::NoHome)
    ));
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn atomic_write_creates_the_directory_and_keeps_a_private_backup() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("aws");
    let path = dir.join("config");
    assert_eq!(
        write_atomic_with_backup(&path, "one\n", 0o640).expect("write"),
        None
    );
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "one\n");
    assert_eq!(mode(&path), 0o640);
    assert_eq!(entries(&dir), vec!["config"]);

    let backup = write_atomic_with_backup(&path, "two\n", 0o644)
        .expect("write")
        .expect("a backup");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "two\n");
    assert_eq!(mode(&path), 0o644);
    assert_eq!(std::fs::read_to_string(&backup).expect("read"), "one\n");
    assert_eq!(mode(&backup), 0o600);
    let backup_name = backup
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let stamp = backup_name
        .strip_prefix("config.keyward-backup-")
        .expect("backup name");
    assert!(stamp.parse::<u64>().is_ok(), "{backup_name}");
    assert_eq!(backup.parent(), Some(dir.as_path()));

    // A second backup in the same second gets its own name; no temp file is left.
    let second = write_atomic_with_backup(&path, "three\n", 0o600)
        .expect("write")
        .expect("a backup");
    assert_ne!(second, backup);
    assert_eq!(std::fs::read_to_string(&second).expect("read"), "two\n");
    assert_eq!(std::fs::read_to_string(&backup).expect("read"), "one\n");
    assert_eq!(entries(&dir).len(), 3);
    assert!(entries(&dir).iter().all(|n| !n.contains("tmp")));
}

#[test]
fn atomic_write_follows_a_symlink() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let real = tmp.path().join("dotfiles-config");
    std::fs::write(&real, "old\n").expect("write");
    let link = tmp.path().join("config");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let backup = write_atomic_with_backup(&link, "new\n", 0o600)
        .expect("write")
        .expect("a backup");
    assert!(std::fs::symlink_metadata(&link)
        .expect("metadata")
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&real).expect("read"), "new\n");
    assert_eq!(std::fs::read_to_string(&backup).expect("read"), "old\n");
}

#[test]
fn atomic_write_failure_leaves_everything_as_it_was() {
    // Tests run as root, so permissions cannot stop a write; a parent that is a file can.
    let tmp = tempfile::tempdir().expect("tempdir");
    let blocker = tmp.path().join("blocker");
    std::fs::write(&blocker, "x").expect("write");
    let err = write_atomic_with_backup(&blocker.join("config"), "y", 0o600)
        .expect_err("a file cannot be a directory");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read {}", blocker.join("config").display())),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&blocker).expect("read"), "x");
    assert_eq!(entries(tmp.path()), vec!["blocker"]);

    // A directory in the way: reading it fails before anything is written.
    let dir = tmp.path().join("aws");
    std::fs::create_dir(&dir).expect("mkdir");
    let target = dir.join("config");
    std::fs::create_dir(&target).expect("mkdir");
    assert!(matches!(
        write_atomic_with_backup(&target, "y", 0o600),
        Err(AwsFileError::Read { .. })
    ));
    assert_eq!(entries(&dir), vec!["config"]);

    // The temp file fails after the backup was made: the backup goes too. A 229-byte name
    // leaves room for the 26-byte backup suffix (255 in all) but not for the 36-byte temp one.
    let long = dir.join("c".repeat(229));
    std::fs::write(&long, "old").expect("write");
    let err = write_atomic_with_backup(&long, "new", 0o600).expect_err("name too long");
    assert!(matches!(err, AwsFileError::Write { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&long).expect("read"), "old");
    assert_eq!(entries(&dir), vec!["c".repeat(229), "config".to_owned()]);
}

/// The value the AWS CLI would read for `key` in `profile`'s config section, if exactly one
/// line sets it and nothing continues it.
fn sole_value(text: &str, profile: &str, key: &str) -> Option<String> {
    let lines = lines_keep(text);
    let kinds = classify(&lines);
    let (start, end) = config_section(&kinds, profile)?;
    let hits: Vec<usize> = (start + 1..end)
        .filter(|&i| is_option(&kinds[i], key))
        .collect();
    let [at] = hits[..] else { return None };
    if kinds.contains(&Line::Continuation { owner: at }) {
        return None;
    }
    match kinds[at] {
        Line::Option { value, .. } => Some(value.to_owned()),
        _ => None,
    }
}

/// Config files built from tricky lines; with `with_process` false, none mentions
/// credential_process.
fn config_file(with_process: bool) -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let mut lines = vec![
        "[profile dev]",
        "[ profile  dev ]",
        "[default]",
        "[profile default]",
        "[profile other]",
        "  [profile other]",
        "[dev]",
        "region = eu-west-1",
        "output: json",
        "s3 =",
        "  max_concurrent_requests = 4",
        "; comment",
        "",
        "   ",
        "stray line",
    ];
    if with_process {
        lines.extend([
            "    credential_process = nested",
            "credential_process = old",
            "Credential_Process: older",
            "# credential_process = commented",
        ]);
    }
    let line = prop::sample::select(lines);
    (
        prop::collection::vec(line, 0..14),
        prop::bool::ANY,
        prop::bool::ANY,
    )
        .prop_map(|(lines, crlf, terminated)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = lines.join(eol);
            if terminated && !text.is_empty() {
                text.push_str(eol);
            }
            text
        })
}

proptest::proptest! {
    /// After setting, the AWS CLI reads exactly our command for the profile, and setting it
    /// again changes nothing.
    #[test]
    fn set_gives_the_command_and_is_idempotent(
        text in config_file(true),
        profile in proptest::sample::select(vec!["dev", "default", "other", "new"]),
    ) {
        let cmd = "/bin/kw cred aws --profile x";
        let out = set_credential_process(&text, profile, cmd).expect("set");
        proptest::prop_assert_eq!(sole_value(&out, profile, "credential_process"), Some(cmd.to_owned()));
        proptest::prop_assert_eq!(set_credential_process(&out, profile, cmd).expect("set"), out.clone());
        // Other sections read the same as before.
        for other in ["dev", "default", "other", "new"].into_iter().filter(|p| *p != profile) {
            proptest::prop_assert_eq!(
                sole_value(&out, other, "credential_process"),
                sole_value(&text, other, "credential_process")
            );
        }
    }

    /// Inserting changes nothing but the one line: removing it gives back the original text
    /// (plus a final line ending if the file had none and the line went at the end).
    #[test]
    fn insert_keeps_every_other_byte(
        text in config_file(false),
        profile in proptest::sample::select(vec!["dev", "default", "other", "new"]),
    ) {
        let out = set_credential_process(&text, profile, "CMD").expect("set");
        let kinds_before = classify(&lines_keep(&text));
        let without: String = out
            .split_inclusive('\n')
            .filter(|l| l.trim() != "credential_process = CMD")
            .collect();
        proptest::prop_assert_eq!(out.split_inclusive('\n').count(), without.split_inclusive('\n').count() + 1);
        if config_section(&kinds_before, profile).is_some() {
            let eol = line_ending(&lines_keep(&text));
            proptest::prop_assert!(
                without == text || (!text.ends_with('\n') && without == format!("{text}{eol}")),
                "{:?} -> {:?}", text, out
            );
        } else {
            proptest::prop_assert!(out.starts_with(&text));
        }
    }

    /// Removing sections drops whole lines only, and only theirs.
    #[test]
    fn remove_drops_only_whole_sections(text in config_file(true)) {
        proptest::prop_assert_eq!(remove_profiles(&text, &[]), text.clone());
        let out = remove_profiles(&text, &["dev", "profile dev"]);
        let kinds = classify(&lines_keep(&out));
        proptest::prop_assert!(!kinds.iter().any(|k| matches!(k, Line::Header(n) if n == "dev" || n == "profile dev")));
        let mut rest = lines_keep(&text).into_iter();
        for line in lines_keep(&out) {
            proptest::prop_assert!(rest.any(|l| l == line));
        }
    }

    /// Nothing panics on arbitrary text.
    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,200}") {
        let _ = set_credential_process(&text, "dev", "c");
        let _ = conflicting_keys(&text, "dev");
        let _ = parse_credentials(&text);
        let _ = remove_profiles(&text, &["dev"]);
    }
}
