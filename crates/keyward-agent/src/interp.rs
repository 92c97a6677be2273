//! What an interpreter runs, read from its command line the way the interpreter itself reads it.
//!
//! Approvals name an interpreter's client by its script: `python3 /usr/bin/aws` is not
//! `python3 other.py`. That only holds if the script Keyward names is the code that runs. So each
//! interpreter's options are parsed with their real arity (`python3 -W /usr/bin/aws -c CODE`
//! runs CODE: `/usr/bin/aws` is `-W`'s argument), and anything that runs code other than one
//! script file (`-c`, `-e`, `-m`, standard input, a preloaded module, an option this parser does
//! not know) yields [`Runs::Code`]: such a client may be allowed once, never by a standing grant.
//! The same goes for an environment that injects code (`LD_PRELOAD`, `PYTHONPATH`, `NODE_OPTIONS`…).

/// Interpreters whose executable alone does not say which program is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// CPython.
    Python,
    /// Node.js.
    Node,
    /// Perl 5.
    Perl,
    /// Ruby.
    Ruby,
    /// POSIX shells, bash, zsh, fish.
    Shell,
    /// Java.
    Java,
    /// Deno and Bun (`run SCRIPT`).
    JsRuntime,
    /// PHP, Lua: a script first, no options.
    Plain,
}

/// The interpreter an executable is, if any.
pub fn lang_of(exe: &str) -> Option<Lang> {
    let base = exe.rsplit('/').next().unwrap_or(exe);
    // python3.11, ruby3.1, node20 …: compare the name before any version digits.
    let name = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    Some(match name {
        "python" | "pypy" => Lang::Python,
        "node" | "nodejs" => Lang::Node,
        "perl" => Lang::Perl,
        "ruby" => Lang::Ruby,
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "fish" => Lang::Shell,
        "java" => Lang::Java,
        "deno" | "bun" => Lang::JsRuntime,
        "php" | "lua" => Lang::Plain,
        _ => return None,
    })
}

/// What an interpreter's arguments make it run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runs {
    /// One script file, as given on the command line (relative to the process's cwd).
    Script(String),
    /// Code that is not (only) a script file; the reason, for the user.
    Code(&'static str),
}

const STDIN: Runs = Runs::Code("it reads its code from standard input");
const INLINE: Runs = Runs::Code("it runs code given on its command line");
const MODULE: Runs = Runs::Code("it runs a module or loads code before its script");
const UNKNOWN: Runs = Runs::Code("its command line has an option Keyward cannot vouch for");

/// Parses `args` (without argv\[0\]) as interpreter `lang` does.
pub fn runs(lang: Lang, args: &[String]) -> Runs {
    match lang {
        Lang::Python => python(args),
        Lang::Node => node(args),
        Lang::Perl => short_flags_only(args, "wWXTtU", "eEMmIx"),
        Lang::Ruby => short_flags_only(args, "wWvd", "erIxS"),
        Lang::Shell => shell(args),
        Lang::Java => java(args),
        Lang::JsRuntime => match args.split_first() {
            Some((run, rest)) if run == "run" => first_file(rest),
            _ => UNKNOWN,
        },
        Lang::Plain => first_file(args),
    }
}

/// The first argument as the script when it is not an option.
fn first_file(args: &[String]) -> Runs {
    match args.first() {
        Some(a) if a == "-" => STDIN,
        Some(a) if a.starts_with('-') => UNKNOWN,
        Some(a) => Runs::Script(a.clone()),
        None => STDIN,
    }
}

/// CPython's command line (`Modules/main.c`, getopt string `bBc:dEhiIm:OPqsStuvVW:xX:?`).
fn python(args: &[String]) -> Runs {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            return it.next().map_or(STDIN, |s| Runs::Script(s.clone()));
        }
        if a == "-" {
            return STDIN;
        }
        if let Some(long) = a.strip_prefix("--") {
            if long == "check-hash-based-pycs" {
                it.next();
                continue;
            }
            return UNKNOWN;
        }
        let Some(flags) = a.strip_prefix('-') else {
            return Runs::Script(a.clone());
        };
        for (i, c) in flags.char_indices() {
            match c {
                'b' | 'B' | 'd' | 'E' | 'I' | 'O' | 'P' | 'q' | 's' | 'S' | 'u' | 'v' | 'x' => {}
                // -i reads more code from standard input once the script ends.
                'i' => return STDIN,
                'c' => return INLINE,
                'm' => return MODULE,
                // The option's value is the rest of this argument, or the next one.
                'W' | 'X' => {
                    if flags[i + 1..].is_empty() {
                        it.next();
                    }
                    break;
                }
                _ => return UNKNOWN,
            }
        }
    }
    STDIN
}

/// Node's options that run or load code other than the main script.
const NODE_CODE: &[&str] = &[
    "-e",
    "--eval",
    "-p",
    "--print",
    "-r",
    "--require",
    "--import",
    "--loader",
    "--experimental-loader",
    "-i",
    "--interactive",
    "--inspect",
    "--inspect-brk",
    "--env-file",
];
/// Node's options known to take no value and to load nothing.
const NODE_FLAGS: &[&str] = &[
    "--no-warnings",
    "--no-deprecation",
    "--trace-warnings",
    "--trace-deprecation",
    "--throw-deprecation",
    "--pending-deprecation",
    "--enable-source-maps",
    "--preserve-symlinks",
    "--preserve-symlinks-main",
    "--experimental-vm-modules",
    "--abort-on-uncaught-exception",
    "--trace-uncaught",
    "--unhandled-rejections=strict",
    // The built-in test runner runs the files named (a file must be named, else it is stdin's
    // case: no script, no standing grant).
    "--test",
    "--test-only",
];

fn node(args: &[String]) -> Runs {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            return it.next().map_or(STDIN, |s| Runs::Script(s.clone()));
        }
        if a == "-" {
            return STDIN;
        }
        if !a.starts_with('-') {
            return Runs::Script(a.clone());
        }
        let name = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
        if NODE_CODE.contains(&name) {
            return MODULE;
        }
        // `--name=value` carries its value; a bare unknown option may take the next argument,
        // which would then be mistaken for the script.
        if !(a.contains('=') || NODE_FLAGS.contains(&a.as_str())) {
            return UNKNOWN;
        }
    }
    STDIN
}

/// Interpreters whose options are single letters: `ok` take no value, `code` run or load code.
fn short_flags_only(args: &[String], ok: &str, code: &str) -> Runs {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            return it.next().map_or(STDIN, |s| Runs::Script(s.clone()));
        }
        if a == "-" {
            return STDIN;
        }
        let Some(flags) = a.strip_prefix('-') else {
            return Runs::Script(a.clone());
        };
        for c in flags.chars() {
            if code.contains(c) {
                return MODULE;
            }
            if !ok.contains(c) {
                return UNKNOWN;
            }
        }
    }
    STDIN
}

/// POSIX sh and bash (`-o NAME` and `-O NAME` take a value; `+` turns options off).
fn shell(args: &[String]) -> Runs {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" || a == "-" {
            return it.next().map_or(STDIN, |s| Runs::Script(s.clone()));
        }
        if let Some(long) = a.strip_prefix("--") {
            match long {
                "norc" | "noprofile" | "posix" | "noediting" | "login" | "restricted" => continue,
                // A startup file runs before the script.
                _ => return UNKNOWN,
            }
        }
        let Some(flags) = a.strip_prefix('-').or_else(|| a.strip_prefix('+')) else {
            return Runs::Script(a.clone());
        };
        for c in flags.chars() {
            match c {
                'c' => return INLINE,
                's' | 'i' => return STDIN,
                'o' | 'O' => {
                    it.next();
                }
                'a' | 'b' | 'e' | 'f' | 'h' | 'k' | 'm' | 'n' | 'p' | 't' | 'u' | 'v' | 'x'
                | 'B' | 'C' | 'E' | 'H' | 'P' | 'T' | 'l' | 'r' => {}
                _ => return UNKNOWN,
            }
        }
    }
    STDIN
}

/// Java: only `java -jar FILE` names one program; a class path can be anything.
fn java(args: &[String]) -> Runs {
    match args {
        [jar, file, ..] if jar == "-jar" => Runs::Script(file.clone()),
        _ => UNKNOWN,
    }
}

/// Environment variables that make a process run code it was not started with.
///
/// `LD_LIBRARY_PATH` is left out on purpose: build tools (cargo runs every test with it), CUDA
/// and conda set it routinely, so flagging it would take standing grants from ordinary tools.
/// docs/SECURITY.md says so.
pub fn injecting_variable(lang: Option<Lang>, name: &str) -> bool {
    const ANY: &[&str] = &["LD_PRELOAD", "LD_AUDIT"];
    let by_lang: &[&str] = match lang {
        Some(Lang::Python) => &[
            "PYTHONPATH",
            "PYTHONHOME",
            "PYTHONSTARTUP",
            "PYTHONINSPECT",
            "PYTHONUSERBASE",
        ],
        Some(Lang::Node | Lang::JsRuntime) => &["NODE_OPTIONS", "NODE_PATH"],
        Some(Lang::Perl) => &["PERL5OPT", "PERL5LIB", "PERLLIB"],
        Some(Lang::Ruby) => &["RUBYOPT", "RUBYLIB"],
        Some(Lang::Shell) => &["BASH_ENV", "ENV"],
        Some(Lang::Java) => &["JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "CLASSPATH"],
        Some(Lang::Plain) | None => &[],
    };
    ANY.contains(&name) || by_lang.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| (*a).to_owned()).collect()
    }

    fn script(s: &str) -> Runs {
        Runs::Script(s.to_owned())
    }

    #[test]
    fn python_is_read_as_python_reads_it() {
        let cases: &[(&[&str], Runs)] = &[
            (&["/usr/bin/aws", "s3", "ls"], script("/usr/bin/aws")),
            (&["-u", "-B", "/usr/bin/aws"], script("/usr/bin/aws")),
            (&["-Wignore", "tool.py"], script("tool.py")),
            (&["-X", "importtime", "tool.py"], script("tool.py")),
            (&["--", "-odd-name.py"], script("-odd-name.py")),
            // The review's attacks: each runs code that is not the named script.
            (&["-", "trusted.py"], STDIN),
            (&["-W", "/usr/bin/aws", "-c", "CODE"], INLINE),
            (&["-X", "/usr/bin/aws", "evil.py"], script("evil.py")),
            (&["-c", "print(1)"], INLINE),
            (&["-uc", "print(1)"], INLINE),
            (&["-m", "http.server"], MODULE),
            (&["-i", "tool.py"], STDIN),
            (&["--some-new-option", "tool.py"], UNKNOWN),
            (&["-Z", "tool.py"], UNKNOWN),
            (&[], STDIN),
        ];
        for (a, want) in cases {
            assert_eq!(&runs(Lang::Python, &args(a)), want, "python3 {a:?}");
        }
    }

    #[test]
    fn node_preloads_and_unknown_options_are_not_vouched_for() {
        let cases: &[(&[&str], Runs)] = &[
            (&["app.js"], script("app.js")),
            (&["--no-warnings", "app.js"], script("app.js")),
            (&["--max-old-space-size=4096", "app.js"], script("app.js")),
            (&["--require=x", "app.js"], MODULE),
            (&["-r", "x", "app.js"], MODULE),
            (&["--import", "x", "app.js"], MODULE),
            (&["-e", "code"], MODULE),
            (&["--inspect", "app.js"], MODULE),
            (&["--title", "app.js"], UNKNOWN),
            (
                &["--test", "--test-concurrency=1", "e2e.test.mjs"],
                script("e2e.test.mjs"),
            ),
            (&["--test"], STDIN),
            (&["-"], STDIN),
        ];
        for (a, want) in cases {
            assert_eq!(&runs(Lang::Node, &args(a)), want, "node {a:?}");
        }
    }

    #[test]
    fn shells_perl_ruby_java() {
        assert_eq!(runs(Lang::Shell, &args(&["tool.sh"])), script("tool.sh"));
        assert_eq!(
            runs(Lang::Shell, &args(&["-e", "-o", "pipefail", "tool.sh"])),
            script("tool.sh")
        );
        assert_eq!(runs(Lang::Shell, &args(&["-c", "echo"])), INLINE);
        assert_eq!(runs(Lang::Shell, &args(&["-s"])), STDIN);
        assert_eq!(
            runs(Lang::Shell, &args(&["--rcfile", "x", "tool.sh"])),
            UNKNOWN
        );
        assert_eq!(runs(Lang::Perl, &args(&["-w", "t.pl"])), script("t.pl"));
        assert_eq!(runs(Lang::Perl, &args(&["-Mevil", "t.pl"])), MODULE);
        assert_eq!(runs(Lang::Perl, &args(&["-e", "1"])), MODULE);
        assert_eq!(runs(Lang::Ruby, &args(&["-rx", "t.rb"])), MODULE);
        assert_eq!(runs(Lang::Java, &args(&["-jar", "a.jar"])), script("a.jar"));
        assert_eq!(runs(Lang::Java, &args(&["-cp", "x", "Main"])), UNKNOWN);
        assert_eq!(
            runs(Lang::JsRuntime, &args(&["run", "main.ts"])),
            script("main.ts")
        );
    }

    #[test]
    fn interpreters_are_recognised_with_or_without_versions() {
        for (exe, lang) in [
            ("/usr/bin/python3.11", Lang::Python),
            ("/usr/bin/python3", Lang::Python),
            ("/bin/bash", Lang::Shell),
            ("/usr/bin/node20", Lang::Node),
        ] {
            assert_eq!(lang_of(exe), Some(lang), "{exe}");
        }
        for exe in [
            "/usr/bin/aws",
            "/usr/local/bin/terraform",
            "/usr/bin/kubectl",
        ] {
            assert_eq!(lang_of(exe), None, "{exe}");
        }
    }

    #[test]
    fn code_injecting_variables() {
        assert!(injecting_variable(None, "LD_PRELOAD"));
        assert!(injecting_variable(Some(Lang::Python), "PYTHONPATH"));
        assert!(injecting_variable(Some(Lang::Node), "NODE_OPTIONS"));
        assert!(
            !injecting_variable(None, "PYTHONPATH"),
            "not for a non-Python program"
        );
        assert!(!injecting_variable(Some(Lang::Python), "HOME"));
    }
}
