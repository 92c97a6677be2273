//! Entry points for the fuzz targets in `fuzz/` over the parsers this crate holds (the ones in
//! `keyward_agent::fuzzing` cover the agent's). Each takes raw bytes and must neither panic nor
//! hang; the test below replays the committed corpus on every `scripts/test`.

use crate::gitcred;

/// What git sends the credential helper: parsed, and when it parses, an answer made of what it
/// held never carries a line break, and reads back as what was put in.
pub fn git_credential(data: &[u8]) {
    let Ok(asked) = gitcred::parse(data) else {
        return;
    };
    let username = asked.username.as_deref().unwrap_or("token");
    let password = asked.password.as_deref().unwrap_or("p");
    if let Ok(text) = gitcred::answer(&gitcred::Answer {
        username,
        password,
        expires_unix: Some(1),
    }) {
        assert!(
            !text.contains('\r') && !text.contains('\0'),
            "a control character went out"
        );
        assert_eq!(text.lines().count(), 3, "an answer is three lines");
        let back = gitcred::parse(text.as_bytes()).expect("our own answer parses");
        assert_eq!(back.username.as_deref(), Some(username));
        assert_eq!(back.password.as_deref(), Some(password));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every committed corpus input (seeds, and what fuzz runs kept) still passes.
    #[test]
    fn the_fuzz_corpus_replays_cleanly() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/git_credential");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            git_credential(&std::fs::read(entry.expect("entry").path()).expect("read"));
            n += 1;
        }
        assert!(n > 0, "no corpus for git_credential");
    }
}
