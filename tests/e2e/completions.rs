//! Shell completions and manual pages, generated from the command definitions: bash completes
//! what the commands take, and `man` renders every page.

use std::process::Command;

use crate::support::Home;

/// What bash offers for the last word of `line`, with `keyward completions bash` loaded.
fn bash_offers(script: &std::path::Path, line: &[&str]) -> Vec<String> {
    let words = line.join(" ");
    let out = Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(format!(
            r#"source "$0"; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE="{words}"; COMP_POINT=${{#COMP_LINE}}; _keyward keyward "{cur}" "{prev}"; printf '%s\n' "${{COMPREPLY[@]}}""#,
            cword = line.len() - 1,
            cur = line[line.len() - 1],
            prev = line[line.len() - 2],
        ))
        .arg(script)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_commands_and_kinds_and_man_renders_every_page() {
    let home = Home::new();
    let script = home.path("keyward.bash");
    std::fs::write(&script, home.kw(&["completions", "bash"]).ok().stdout).expect("write");
    let mut kinds = bash_offers(&script, &["keyward", "cred", "a"]);
    kinds.sort();
    assert_eq!(kinds, ["aliyun", "aws"]);
    let r = bash_offers(&script, &["keyward", "r"]);
    for want in ["remove", "report", "rotate"] {
        assert!(r.iter().any(|w| w == want), "keyward r<TAB>: {r:?}");
    }
    assert!(bash_offers(&script, &["keyward", "rotate", "--g"]).contains(&"--grace".to_owned()));
    for shell in ["zsh", "fish"] {
        assert!(
            home.kw(&["completions", shell])
                .ok()
                .stdout
                .contains("rotate"),
            "{shell}"
        );
    }

    let pages = home.path("man1");
    home.kw(&["man", "--out", pages.to_str().expect("utf-8")])
        .ok();
    let mut names: Vec<String> = std::fs::read_dir(&pages)
        .expect("pages")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for want in [
        "keyward.1",
        "keyward-cred-aws.1",
        "keyward-rotate.1",
        "keyward-report.1",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    for name in &names {
        let out = Command::new("man")
            .arg("-l")
            .arg(pages.join(name))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .expect("run man");
        let text = String::from_utf8_lossy(&out.stdout);
        let page = name.trim_end_matches(".1");
        assert!(
            out.status.success() && text.contains(&format!("{page}(1)")),
            "man -l {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rotate = Command::new("man")
        .arg("-l")
        .arg(pages.join("keyward-rotate.1"))
        .env("MANPAGER", "cat")
        .output()
        .expect("man");
    assert!(String::from_utf8_lossy(&rotate.stdout).contains("--grace"));

    // Somewhere it cannot write: one line, non-zero.
    let line = home
        .kw(&["man", "--out", "/proc/no-such/dir"])
        .one_line_error();
    assert!(line.contains("cannot create /proc/no-such/dir"), "{line}");
}
