//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, `scripts/fuzz`), one per parser of
//! untrusted input (SECURITY-REQUIREMENTS §20). Each takes raw bytes and must neither panic nor
//! hang on any of them. The test below replays the committed corpus (`fuzz/corpus/*`), including
//! every input a run once found, on every `scripts/test`.

use keyward_core::awsfiles;

use crate::interp::{self, Lang};
use crate::protocol::RequestFrame;

/// The socket's request frame, as the server parses one line.
pub fn request_frame(data: &[u8]) {
    if let Ok(frame) = serde_json::from_slice::<RequestFrame>(data) {
        // A parsed frame must name its operation (the audit key) without panicking.
        let _ = frame.req.op();
    }
}

/// The vault header, as every read checks it before any work.
pub fn vault_header(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = keyward_core::vault::validate_header(text);
    }
}

/// The AWS shared credentials and config files: parsing, the import's removal of profiles, and
/// the byte-preserving `credential_process` edit.
pub fn aws_files(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (profiles, _) = awsfiles::parse_credentials(text);
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    let rest = awsfiles::remove_profiles(text, &names);
    // Whatever was removed is gone from a re-parse.
    let (left, _) = awsfiles::parse_credentials(&rest);
    assert!(
        left.iter().all(|p| !names.contains(&p.name.as_str())),
        "a removed profile is still there"
    );
    let _ = awsfiles::conflicting_keys(text, "default");
    if let Ok(edited) =
        awsfiles::set_credential_process(text, "fuzz", "/usr/bin/keyward cred aws --profile fuzz")
    {
        assert!(
            edited.contains("credential_process"),
            "the edit lost its line"
        );
    }
}

/// An interpreter's command line (first byte: which interpreter; then NUL-separated arguments)
/// and the text filter for endpoint messages.
pub fn interpreter_args(data: &[u8]) {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    const LANGS: [Lang; 8] = [
        Lang::Python,
        Lang::Node,
        Lang::Perl,
        Lang::Ruby,
        Lang::Shell,
        Lang::Java,
        Lang::JsRuntime,
        Lang::Plain,
    ];
    let lang = LANGS[usize::from(*first) % LANGS.len()];
    let args: Vec<String> = rest
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if let interp::Runs::Script(s) = interp::runs(lang, &args) {
        assert!(
            args.contains(&s),
            "the script named is one of the arguments"
        );
    }
    let shown = crate::text::terminal_safe(&String::from_utf8_lossy(rest), 200);
    assert!(!shown.chars().any(char::is_control));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every committed corpus input (seeds, and what fuzz runs kept) still passes.
    #[test]
    fn the_fuzz_corpus_replays_cleanly() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        type Target = fn(&[u8]);
        let targets: [(&str, Target); 4] = [
            ("request_frame", request_frame),
            ("vault_header", vault_header),
            ("aws_files", aws_files),
            ("interpreter_args", interpreter_args),
        ];
        for (name, target) in targets {
            let dir = root.join(name);
            let mut n = 0;
            for entry in
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            {
                let path = entry.expect("entry").path();
                target(&std::fs::read(&path).expect("read"));
                n += 1;
            }
            assert!(n > 0, "no corpus for {name}");
        }
    }
}
