//! Who is on the other end of the socket: uid/pid from `SO_PEERCRED` (kernel-verified) and the
//! executable chain read from /proc, for approvals and the audit trail. The pid is for display;
//! authorization rests on the uid alone.

use keyward_core::audit::{Actor, ProcessInfo};

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

/// The actor for a peer with these credentials.
pub fn actor_for(uid: u32, pid: Option<i32>) -> Actor {
    let mut chain = Vec::new();
    let mut next = pid;
    while let Some(p) = next {
        if p <= 1 || chain.len() >= MAX_CHAIN {
            break;
        }
        chain.push(ProcessInfo {
            pid: p,
            exe: exe_of(p),
        });
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
        chain: vec![ProcessInfo {
            pid,
            exe: exe_of(pid),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
