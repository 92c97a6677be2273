//! Process hardening for anything that holds an unlocked vault: no core dumps, no ptrace attach
//! by same-user processes (`PR_SET_DUMPABLE=0` also makes /proc/<pid>/mem unreadable to them),
//! and best-effort locking of memory so secrets are not swapped out.

use tracing::{debug, warn};

/// Applies the hardening; returns which steps failed (each is logged, none is fatal except the
/// first two, which the caller treats as fatal).
pub fn harden_process() -> Result<(), String> {
    no_core_dumps()?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| format!("cannot disable ptrace attach: {e}"))?;
    // With a finite RLIMIT_MEMLOCK, MCL_FUTURE would make later allocations (the 64 MiB KDF)
    // fail, so lock only when the limit allows it; secrets are zeroized on drop either way.
    let memlock = rustix::process::getrlimit(rustix::process::Resource::Memlock);
    if memlock.current.is_none() {
        if let Err(e) = rustix::mm::mlockall(
            rustix::mm::MlockAllFlags::CURRENT | rustix::mm::MlockAllFlags::FUTURE,
        ) {
            warn!("memory could not be locked (secrets may be swapped): {e}");
        }
    } else {
        debug!("RLIMIT_MEMLOCK is finite: memory not locked");
    }
    Ok(())
}

/// Turns core dumps off for this process: what the CLI does, since it reads passphrases and
/// secrets being stored. (It stays ptrace-able by your other programs: the agent identifies
/// the CLI through its /proc entries, which a non-dumpable process hides from them.)
pub fn no_core_dumps() -> Result<(), String> {
    rustix::process::setrlimit(
        rustix::process::Resource::Core,
        rustix::process::Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| format!("cannot disable core dumps: {e}"))
}

/// Whether this process is dumpable (ptrace-attachable by same-user processes).
pub fn is_dumpable() -> bool {
    !matches!(
        rustix::process::dumpable_behavior(),
        Ok(rustix::process::DumpableBehavior::NotDumpable)
    )
}
