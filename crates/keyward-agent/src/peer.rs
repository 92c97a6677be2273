//! Who is on the other end of the socket: uid/pid from `SO_PEERCRED` (kernel-verified) and the
//! executable chain read from /proc, for approvals and the audit trail. The pid is for display;
//! authorization rests on the uid alone.

use keyward_core::audit::{Actor, ProcessInfo};

use crate::interp::{self, Lang, Runs};

/// How many ancestors to record (keyward → aws → shell → terminal …).
const MAX_CHAIN: usize = 6;

/// A /proc file in one or two reads: /proc reports no size, so `fs::read` would start with a
/// 32-byte probe and grow from there, a dozen reads per file on every request's path.
fn read_proc(path: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(16 * 1024);
    std::fs::File::open(path).ok()?.read_to_end(&mut buf).ok()?;
    Some(buf)
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = String::from_utf8(read_proc(&format!("/proc/{pid}/stat"))?).ok()?;
    // The command name is in parentheses and may contain spaces or ')': parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn exe_of(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The script an interpreter runs, made absolute and canonical, or why it runs other code.
fn script_of(pid: i32, lang: Lang) -> Result<String, &'static str> {
    let raw =
        read_proc(&format!("/proc/{pid}/cmdline")).ok_or("its command line cannot be read")?;
    let mut args: Vec<String> = raw
        .split(|b| *b == 0)
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // /proc ends the last argument with a NUL, which splits off as one empty argument.
    if args.last().is_some_and(String::is_empty) {
        args.pop();
    }
    let first = match interp::runs(lang, &args) {
        Runs::Script(s) => s,
        Runs::Code(why) => return Err(why),
    };
    let path = std::path::Path::new(&first);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::fs::read_link(format!("/proc/{pid}/cwd"))
            .map_err(|_| "its working directory cannot be read")?
            .join(path)
    };
    if names_a_descriptor(&path) {
        return Err(FROM_A_DESCRIPTOR);
    }
    // One name per file, however it was reached (`..`, symlinks), so grants match.
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    if is_ours(&path) {
        return Err(FROM_A_DESCRIPTOR);
    }
    Ok(path.to_string_lossy().into_owned())
}

/// Why a script named by one of the process's own descriptors is not vouched for.
const FROM_A_DESCRIPTOR: &str = "it reads its script from a file descriptor";

/// Whether `path` names an open file descriptor (`/dev/fd/3`, `/proc/self/fd/0`, `/dev/stdin`,
/// `bash <(…)`): what it reads is a pipe or whatever the process opened, and resolving the
/// path here would name one of the agent's own descriptors instead.
fn names_a_descriptor(path: &std::path::Path) -> bool {
    [
        "/dev/fd",
        "/dev/stdin",
        "/dev/stdout",
        "/dev/stderr",
        "/proc",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// Whether canonical `path` is a file this agent holds open: reached through a symlink to
/// `/proc/self/fd`, a descriptor path resolves to the agent's own files (its lock, its log).
fn is_ours(path: &std::path::Path) -> bool {
    std::fs::read_dir("/proc/self/fd").is_ok_and(|fds| {
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == path))
    })
}

/// The interpreter and its one optional argument on a file's `#!` line, as the kernel reads it
/// (the rest of the line after the interpreter is a single argument).
fn shebang(path: &std::path::Path) -> Option<(String, Option<String>)> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    let line = line.trim_matches(|c| c == ' ' || c == '\t');
    let (interp, arg) = match line.split_once([' ', '\t']) {
        Some((i, a)) => (i, Some(a.trim().to_owned()).filter(|a| !a.is_empty())),
        None => (line, None),
    };
    (!interp.is_empty()).then(|| (interp.to_owned(), arg))
}

/// `name` looked up on process `pid`'s `PATH`, as `env` would.
fn on_path_of(pid: i32, name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let raw = read_proc(&format!("/proc/{pid}/environ"))?;
    let path = raw
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"PATH="))
        .map(|v| String::from_utf8_lossy(v).into_owned())?;
    path.split(':').filter(|d| !d.is_empty()).find_map(|dir| {
        let p = std::path::Path::new(dir).join(name);
        let m = std::fs::metadata(&p).ok()?;
        (m.is_file() && m.permissions().mode() & 0o111 != 0).then_some(p)
    })
}

fn canonical(path: &std::path::Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// The process `keyward exec` (process `pid`) is about to start for `target`, as the agent will
/// see it once it runs: a `#!` file is its interpreter running it (through `env` too), an
/// interpreter is named with its script, and the environment it inherits from exec is checked
/// for injected code. Its pid is 0: it has none yet.
pub fn prospective(pid: i32, target: &crate::protocol::ExecTarget) -> Result<ProcessInfo, String> {
    let given = std::path::Path::new(&target.program);
    if !given.is_absolute() {
        return Err(format!(
            "the command to start must be an absolute path, not {:?}",
            target.program
        ));
    }
    let program =
        std::fs::canonicalize(given).map_err(|e| format!("cannot run {}: {e}", target.program))?;
    let mut exe = program.to_string_lossy().into_owned();
    let mut args = target.args.clone();
    let mut unvouched = None;
    if let Some((interp, arg)) = shebang(&program) {
        let mut run = Vec::new();
        let is_env = std::path::Path::new(&interp).file_name() == Some("env".as_ref());
        match arg {
            Some(name) if is_env && !name.starts_with('-') && !name.contains([' ', '\t']) => {
                exe = on_path_of(pid, &name)
                    .map(|p| canonical(&p))
                    .ok_or_else(|| {
                        format!(
                            "{}: its #! line runs {name}, which is not on PATH",
                            target.program
                        )
                    })?;
            }
            Some(_) if is_env => {
                exe = canonical(std::path::Path::new(&interp));
                unvouched = Some("its #! line gives env options".to_owned());
            }
            arg => {
                exe = canonical(std::path::Path::new(&interp));
                run.extend(arg);
            }
        }
        run.push(target.program.clone());
        run.append(&mut args);
        args = run;
    }
    let lang = interp::lang_of(&exe);
    let script = match lang.map(|l| interp::runs(l, &args)) {
        Some(Runs::Script(s)) => {
            let path = std::path::Path::new(&s);
            let path = if path.is_absolute() {
                path.to_path_buf()
            } else {
                std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .map_err(|_| "the working directory cannot be read".to_owned())?
                    .join(path)
            };
            let resolved = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if names_a_descriptor(&path) || is_ours(&resolved) {
                unvouched.get_or_insert(FROM_A_DESCRIPTOR.to_owned());
                None
            } else {
                Some(resolved.to_string_lossy().into_owned())
            }
        }
        Some(Runs::Code(why)) => {
            unvouched.get_or_insert(why.to_owned());
            None
        }
        None => None,
    };
    if let Some(var) = injected(pid, lang) {
        unvouched.get_or_insert(var);
    }
    Ok(ProcessInfo {
        pid: 0,
        exe: Some(exe),
        script,
        unvouched,
    })
}

/// The first variable in the process's environment that injects code, if any.
fn injected(pid: i32, lang: Option<Lang>) -> Option<String> {
    let raw = read_proc(&format!("/proc/{pid}/environ"))?;
    raw.split(|b| *b == 0).find_map(|kv| {
        let eq = kv.iter().position(|b| *b == b'=')?;
        let (name, value) = (std::str::from_utf8(&kv[..eq]).ok()?, &kv[eq + 1..]);
        (!value.is_empty() && interp::injecting_variable(lang, name))
            .then(|| format!("{name} is set in its environment"))
    })
}

fn process(pid: i32) -> ProcessInfo {
    let exe = exe_of(pid);
    let lang = exe.as_deref().and_then(interp::lang_of);
    let (script, mut unvouched) = match lang {
        Some(l) => match script_of(pid, l) {
            Ok(s) => (Some(s), None),
            Err(why) => (None, Some(why.to_owned())),
        },
        None => (None, None),
    };
    if let Some(var) = injected(pid, lang) {
        unvouched.get_or_insert(var);
    }
    ProcessInfo {
        pid,
        exe,
        script,
        unvouched,
    }
}

/// The actor for a peer with these credentials.
pub fn actor_for(uid: u32, pid: Option<i32>) -> Actor {
    let mut chain = Vec::new();
    let mut next = pid;
    while let Some(p) = next {
        if p <= 1 || chain.len() >= MAX_CHAIN {
            break;
        }
        chain.push(process(p));
        next = parent_of(p);
    }
    Actor {
        uid: Some(uid),
        pid,
        chain,
    }
}

/// The actor for this process itself (in-process actions such as auto-lock).
pub fn this_process() -> Actor {
    let uid = rustix::process::getuid().as_raw();
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    Actor {
        uid: Some(uid),
        pid: Some(pid),
        chain: vec![process(pid)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interpreters_script_is_part_of_its_identity() {
        let dir = tempfile::tempdir().expect("dir");
        let script = dir.path().join("tool.sh");
        std::fs::write(&script, "sleep 5\n").expect("write");
        let mut child = std::process::Command::new("/bin/sh")
            .arg("tool.sh")
            .current_dir(dir.path())
            .spawn()
            .expect("spawn sh");
        let pid = child.id() as i32;
        // The shell may not have exec'd yet; give it a moment.
        let mut info = process(pid);
        for _ in 0..50 {
            if info.script.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            info = process(pid);
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            info.script.as_deref(),
            Some(script.to_string_lossy().as_ref())
        );
    }

    #[test]
    fn a_script_read_from_a_file_descriptor_is_not_vouched_for() {
        // `bash /dev/fd/3` (process substitution, `bash <(curl …)`) names a descriptor of its
        // own: resolved in the agent, the path would name one of the agent's files instead.
        let dir = tempfile::tempdir().expect("dir");
        let script = dir.path().join("tool.sh");
        std::fs::write(&script, "sleep 5\n").expect("write");
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("exec /bin/sh /dev/fd/3 3<tool.sh")
            .current_dir(dir.path())
            .spawn()
            .expect("spawn sh");
        let pid = child.id() as i32;
        // Until the shell has exec'd the one reading the descriptor.
        for _ in 0..50 {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline == b"/bin/sh\0/dev/fd/3\0" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let info = process(pid);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(info.script, None);
        assert!(
            info.unvouched
                .as_deref()
                .is_some_and(|w| w.contains("file descriptor")),
            "{info:?}"
        );

        // Through a symlink to /proc/self/fd, the path resolves here to one of our own files.
        let own = std::fs::File::open(&script).expect("open");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&own);
        std::os::unix::fs::symlink("/proc/self/fd", dir.path().join("fds")).expect("symlink");
        let me = std::process::id() as i32;
        let target = crate::protocol::ExecTarget {
            program: "/bin/sh".into(),
            args: vec![format!("{}/fds/{fd}", dir.path().display())],
        };
        let p = prospective(me, &target).expect("sh through the link");
        assert_eq!(p.script, None, "{p:?}");
        drop(own);

        // The same for the command `keyward exec` is about to start.
        let target = crate::protocol::ExecTarget {
            program: "/bin/sh".into(),
            args: vec!["/proc/self/fd/0".into()],
        };
        let p = prospective(me, &target).expect("sh /proc/self/fd/0");
        assert_eq!(p.script, None);
        assert!(p.unvouched.is_some_and(|w| w.contains("file descriptor")));
    }

    #[test]
    fn the_command_exec_will_start_is_named_as_it_will_run() {
        use crate::protocol::ExecTarget;
        let me = std::process::id() as i32;
        let dir = tempfile::tempdir().expect("dir");
        let target = |program: &std::path::Path, args: &[&str]| ExecTarget {
            program: program.to_string_lossy().into_owned(),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        let sh = canonical(std::path::Path::new("/bin/sh"));

        // A plain executable is itself.
        let p = prospective(me, &target(std::path::Path::new("/bin/true"), &[])).expect("true");
        assert_eq!(
            p.exe.as_deref(),
            Some(canonical(std::path::Path::new("/bin/true")).as_str())
        );
        assert_eq!((p.pid, p.script, p.unvouched), (0, None, None));

        // A #! script is its interpreter running it, as the kernel starts it.
        let script = dir.path().join("deploy.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write");
        let p = prospective(me, &target(&script, &["--fast"])).expect("script");
        assert_eq!(p.exe.as_deref(), Some(sh.as_str()));
        assert_eq!(p.script.as_deref(), Some(canonical(&script).as_str()));

        // Through env: the program env finds on PATH.
        let env_script = dir.path().join("tool");
        std::fs::write(&env_script, "#!/usr/bin/env sh\nexit 0\n").expect("write");
        let p = prospective(me, &target(&env_script, &[])).expect("env script");
        assert_eq!(p.exe.as_deref(), Some(sh.as_str()));
        assert_eq!(p.script.as_deref(), Some(canonical(&env_script).as_str()));
        std::fs::write(&env_script, "#!/usr/bin/env -S sh -e\nexit 0\n").expect("write");
        let p = prospective(me, &target(&env_script, &[])).expect("env -S");
        assert!(p.unvouched.is_some_and(|w| w.contains("env options")));

        // An interpreter given code on its command line is not vouched for.
        let p = prospective(
            me,
            &target(std::path::Path::new("/bin/sh"), &["-c", "exit 0"]),
        )
        .expect("sh -c");
        assert_eq!(p.script, None);
        assert!(p.unvouched.is_some());

        // Not absolute, or not there: refused with why.
        assert!(prospective(me, &target(std::path::Path::new("sh"), &[])).is_err());
        let gone = prospective(me, &target(&dir.path().join("gone"), &[])).expect_err("gone");
        assert!(gone.contains("cannot run"), "{gone}");
    }

    #[test]
    fn chain_starts_with_us_and_follows_parents() {
        let me = std::process::id() as i32;
        let actor = actor_for(0, Some(me));
        assert_eq!(actor.chain.first().map(|p| p.pid), Some(me));
        let exe = std::env::current_exe().expect("exe");
        assert_eq!(
            actor.chain[0].exe.as_deref(),
            Some(exe.to_string_lossy().as_ref())
        );
        if actor.chain.len() > 1 {
            assert_eq!(Some(actor.chain[1].pid), parent_of(me));
        }
    }
}
