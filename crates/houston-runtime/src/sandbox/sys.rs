//! The sandbox's only `unsafe` system calls.
#![allow(unsafe_code)]

use nix::unistd::ForkResult;

/// Forks the calling process.
///
/// # Errors
/// Returns an error when the process has more than one thread, or when `fork` fails.
pub(super) fn fork_single_threaded() -> Result<ForkResult, std::io::Error> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(std::io::Error::other(format!(
            "refusing to fork a process with {threads} threads; the sandbox init must be single-threaded"
        )));
    }
    // SAFETY: the process has exactly one thread (checked above), so no lock can be held by
    // another thread across the fork and the child may allocate and run arbitrary code.
    let result = unsafe { nix::unistd::fork() };
    result.map_err(std::io::Error::from)
}

fn thread_count() -> Result<usize, std::io::Error> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no Threads line in /proc/self/status"))
}
