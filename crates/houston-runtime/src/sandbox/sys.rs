//! The sandbox's only `unsafe` system calls: `fork` and `clone`, both for a process that is
//! checked to be single-threaded.
#![allow(unsafe_code)]

use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Pid};

/// Stack size for the child of [`clone_single_threaded`]. The memory is mapped lazily, so
/// only the pages the child touches cost anything.
const CHILD_STACK_BYTES: usize = 8 * 1024 * 1024;

/// Forks the calling process.
///
/// # Errors
/// Returns an error when the process has more than one thread, or when `fork` fails.
pub(super) fn fork_single_threaded() -> Result<ForkResult, std::io::Error> {
    ensure_single_threaded()?;
    // SAFETY: the process has exactly one thread (checked above), so no lock can be held by
    // another thread across the fork and the child may allocate and run arbitrary code.
    let result = unsafe { nix::unistd::fork() };
    result.map_err(std::io::Error::from)
}

/// Starts `child` in a new process created with `flags` (namespace flags) and returns its
/// pid. The child exits with the value `child` returns.
///
/// # Errors
/// Returns an error when the process has more than one thread, or when `clone` fails.
pub(super) fn clone_single_threaded(
    flags: CloneFlags,
    child: Box<dyn FnMut() -> isize + '_>,
) -> Result<Pid, std::io::Error> {
    ensure_single_threaded()?;
    let mut stack = vec![0u8; CHILD_STACK_BYTES];
    // SAFETY: without CLONE_VM the child gets a copy of this address space, as with fork,
    // and runs `child` on its copy of `stack`. The process has exactly one thread (checked
    // above), so the child may allocate and run arbitrary code. SIGCHLD makes the child
    // reapable with waitpid like a forked one.
    let result = unsafe { nix::sched::clone(child, &mut stack, flags, Some(nix::libc::SIGCHLD)) };
    result.map_err(std::io::Error::from)
}

fn ensure_single_threaded() -> Result<(), std::io::Error> {
    let threads = thread_count()?;
    if threads == 1 {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "refusing to fork a process with {threads} threads; the sandbox init must be single-threaded"
    )))
}

fn thread_count() -> Result<usize, std::io::Error> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no Threads line in /proc/self/status"))
}
