//! The crate's only `unsafe` system calls: `fork` and `clone`, both for a process that is
//! checked to be single-threaded, and `close_range`, which keeps inherited descriptors out
//! of every runtime.
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

/// Marks every descriptor from `first` upwards close-on-exec, so a program executed next
/// inherits only the descriptors below `first`. Uses `close_range` with
/// `CLOSE_RANGE_CLOEXEC` (Linux 5.11 or later) and makes no allocation, so it may run
/// between `fork` and `exec`.
///
/// # Errors
/// Returns the `close_range` error, for example `ENOSYS` on an older kernel.
pub(crate) fn cloexec_from(first: u32) -> std::io::Result<()> {
    close_range(first, nix::libc::CLOSE_RANGE_CLOEXEC)
}

/// Closes every descriptor from `first` upwards.
///
/// Call it only where nothing in the process owns such a descriptor yet, as the sandbox
/// init does first thing: an `OwnedFd` over a closed number would later close an unrelated
/// file.
pub(crate) fn close_from(first: u32) -> std::io::Result<()> {
    close_range(first, 0)
}

fn close_range(first: u32, flags: u32) -> std::io::Result<()> {
    // SAFETY: close_range reads no memory of this process. Marking descriptors
    // close-on-exec changes no ownership, and `close_from` documents when closing is sound.
    let result = unsafe { nix::libc::syscall(nix::libc::SYS_close_range, first, u32::MAX, flags) };
    if result == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Makes the child of `command` inherit only the descriptors below `first`: after the
/// standard streams and descriptor mappings are set up, every higher descriptor of the
/// child is marked close-on-exec.
pub(crate) fn keep_only_fds_below(command: &mut tokio::process::Command, first: u32) {
    // SAFETY: the hook runs in the forked child before exec and only calls close_range,
    // which is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(move || cloexec_from(first));
    }
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
