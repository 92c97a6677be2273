//! Who is on the other end of the socket: uid/pid from `SO_PEERCRED` (kernel-verified) and the
//! executable chain read from /proc, for approvals and the audit trail. The pid is for display;
//! authorization rests on the uid alone.

use keyward_core::audit::{Actor, ProcessInfo};

use crate::interp::{self, Lang, Runs};

/// How many ancestors to record (keyward → aws → shell → terminal …).
const MAX_CHAIN: usize = 6;

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
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
    let raw = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map_err(|_| "its command line cannot be read")?;
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
    // One name per file, however it was reached (`..`, symlinks), so grants match.
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    Ok(path.to_string_lossy().into_owned())
}

/// The first variable in the process's environment that injects code, if any.
fn injected(pid: i32, lang: Option<Lang>) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    raw.split(|b| *b == 0).find_map(|kv| {
        let kv = String::from_utf8_lossy(kv);
        let (name, value) = kv.split_once('=')?;
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
