//! The sandbox init: the program the namespace backend runs for each runtime.
//!
//! Process tree of one sandbox, as seen from the host:
//!
//! ```text
//! manager
//!  └── outer init (host namespaces): joins the cgroup and writes the id maps.
//!       └── inner init (new namespaces, PID 1): builds the root and starts the engine.
//!           It then switches to uid 1000, drops every privilege, reaps orphans and
//!           forwards SIGTERM.
//!            └── engine: exec'd with no capabilities, no_new_privs and seccomp.
//! ```
//!
//! The outer init stays in the host's user namespace because only a process there can map
//! the sandbox's uid to an unprivileged host uid. It forwards SIGTERM inward and exits with
//! the engine's status. The inner
//! init dies with SIGKILL when the outer one does (`PR_SET_PDEATHSIG`), and the kernel kills
//! every process of a PID namespace when its PID 1 exits, so killing the outer init removes
//! the whole sandbox.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use std::io::Read;
use std::os::fd::AsRawFd;

use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::stat::{Mode, umask};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, getgid, getuid};

use super::plan::{SANDBOX_ID, SandboxPlan};
use super::{mounts, seccomp, sys};
use crate::launch::{FIRST_UNPASSED_FD, TOKEN_FD};

/// Exit status of an init that failed before the engine ran.
const SETUP_FAILED: u8 = 125;
/// Exit status of an engine child whose `execve` failed.
const EXEC_FAILED: i32 = 127;

/// A failed step of the sandbox set-up.
#[derive(Debug)]
pub struct InitError(String);

impl InitError {
    pub(super) fn sys(step: &str, errno: nix::Error) -> Self {
        Self(format!("failed to {step}: {errno}"))
    }

    pub(super) fn io(step: String, error: std::io::Error) -> Self {
        Self(format!("failed to {step}: {error}"))
    }
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs the sandbox init with its arguments: either one JSON sandbox plan, or `--check` to
/// test whether this host can create the sandbox's namespaces.
///
/// Call it from a fresh, single-threaded process: the `houston sandbox-init` subcommand
/// calls it before starting any runtime or thread.
/// Returns the process exit status: the engine's, or 125 when the set-up failed.
#[must_use]
pub fn init_main(args: &[String]) -> u8 {
    let result = match args {
        [flag] if flag == "--check" => check_namespaces(),
        [plan] => match serde_json::from_str::<SandboxPlan>(plan) {
            Ok(plan) => close_inherited().and_then(|()| run_outer(&plan)),
            Err(error) => Err(InitError(format!("invalid sandbox plan: {error}"))),
        },
        _ => Err(InitError("usage: sandbox-init (--check | PLAN_JSON)".to_owned())),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("houston sandbox: {error}");
            SETUP_FAILED
        }
    }
}

/// Closes every descriptor above the token pipe, in case the process that started this
/// init leaked one: the engine could otherwise reach it through `/proc/1/fd`. Nothing in
/// this process owns such a descriptor yet, so closing them is sound.
fn close_inherited() -> Result<(), InitError> {
    sys::close_from(FIRST_UNPASSED_FD).map_err(|error| InitError::io("close inherited descriptors".into(), error))
}

fn namespace_flags() -> CloneFlags {
    CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS
}

/// Starts `inner` as PID 1 of new namespaces, maps its user and group ids, and returns its
/// host pid. `inner` runs only after the id maps are written.
fn spawn_sandbox(host_uid: u32, host_gid: u32, mut inner: impl FnMut() -> u8) -> Result<Pid, InitError> {
    let (gate_read, gate_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|errno| InitError::sys("create a pipe", errno))?;
    let write_raw = gate_write.as_raw_fd();
    let mut gate_read = Some(gate_read);
    let child_main = move || -> isize {
        let _ = nix::unistd::close(write_raw);
        if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() {
            return isize::from(SETUP_FAILED);
        }
        // End of file instead of a byte means the outer init died or failed to map ids.
        let mut byte = [0u8; 1];
        let Some(read_end) = gate_read.take() else { return isize::from(SETUP_FAILED) };
        if std::fs::File::from(read_end).read(&mut byte).ok() != Some(1) {
            return isize::from(SETUP_FAILED);
        }
        isize::from(inner())
    };
    let child = sys::clone_single_threaded(namespace_flags(), Box::new(child_main))
        .map_err(|error| InitError::io("create namespaces".into(), error))?;

    if let Err(error) = write_id_maps(child, host_uid, host_gid) {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        return Err(error);
    }
    nix::unistd::write(&gate_write, b"1").map_err(|errno| InitError::sys("release the sandbox init", errno))?;
    Ok(child)
}

/// Maps [`SANDBOX_ID`] to the host ids. As root the map also contains `0 → 0`, because the
/// inner init builds the root as root before it switches to [`SANDBOX_ID`] for good. Without
/// root a process may only map its own ids, one line each, after denying setgroups.
fn write_id_maps(child: Pid, host_uid: u32, host_gid: u32) -> Result<(), InitError> {
    let write = |file: &str, text: String| {
        fs::write(format!("/proc/{child}/{file}"), text).map_err(|error| InitError::io(format!("write {file}"), error))
    };
    if nix::unistd::geteuid().is_root() {
        write("uid_map", format!("0 0 1\n{SANDBOX_ID} {host_uid} 1\n"))?;
        write("gid_map", format!("0 0 1\n{SANDBOX_ID} {host_gid} 1\n"))
    } else {
        write("setgroups", "deny".to_owned())?;
        write("uid_map", format!("{SANDBOX_ID} {} 1", getuid()))?;
        write("gid_map", format!("{SANDBOX_ID} {} 1", getgid()))
    }
}

/// Checks that namespaces, id maps, a tmpfs mount and a new PID namespace all work.
fn check_namespaces() -> Result<u8, InitError> {
    let (uid, gid) = super::plan::host_ids("namespace-check");
    let child = spawn_sandbox(uid, gid, || {
        let none: Option<&str> = None;
        let mounted = nix::mount::mount(Some("tmpfs"), "/tmp", Some("tmpfs"), MsFlags::empty(), none);
        u8::from(!(std::process::id() == 1 && mounted.is_ok()))
    })?;
    match waitpid(child, None) {
        Ok(WaitStatus::Exited(_, 0)) => Ok(0),
        other => Err(InitError(format!("the namespace check child failed: {other:?}"))),
    }
}

fn run_outer(plan: &SandboxPlan) -> Result<u8, InitError> {
    for procs in &plan.cgroup_procs {
        fs::write(procs, std::process::id().to_string())
            .map_err(|error| InitError::io(format!("join cgroup {}", procs.display()), error))?;
    }
    let signals = block_signals()?;
    let child = spawn_sandbox(plan.host_uid, plan.host_gid, || match run_inner(plan, &signals) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("houston sandbox: {error}");
            SETUP_FAILED
        }
    })?;
    let _ = nix::unistd::close(TOKEN_FD);
    supervise(child, &signals)
}

/// PID 1 of the sandbox: builds the root, starts the engine, detaches the host's root while
/// the engine starts, drops its own privileges and reaps.
fn run_inner(plan: &SandboxPlan, signals: &SigSet) -> Result<u8, InitError> {
    // The root's folders and mount points must be searchable by the engine's uid, whatever
    // mask the manager runs with (houston runs with 077). The engine gets the manager's
    // mask back.
    let manager_mask = umask(Mode::from_bits_truncate(0o022));
    mounts::build_root(plan)?;
    umask(manager_mask);
    nix::unistd::sethostname("houston-sandbox").map_err(|errno| InitError::sys("set the hostname", errno))?;

    let exec = ExecRequest::new(plan)?;
    match sys::fork_single_threaded().map_err(|error| InitError::io("fork the engine".into(), error))? {
        ForkResult::Child => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            let error = match confine_engine() {
                Ok(()) => exec.run().to_string(),
                Err(error) => error.to_string(),
            };
            eprintln!("houston sandbox: failed to execute {}: {error}", plan.program.display());
            std::process::exit(EXEC_FAILED);
        }
        ForkResult::Parent { child } => {
            let _ = nix::unistd::close(TOKEN_FD);
            // Returning an error ends PID 1, and the kernel then kills the engine too.
            mounts::detach_host_root()?;
            confine()?;
            supervise(child, signals)
        }
    }
}

/// Confines the engine child before its `execve`: descriptors the init opened while
/// building the root stay out of the engine, then [`confine`].
fn confine_engine() -> Result<(), InitError> {
    sys::cloexec_from(FIRST_UNPASSED_FD).map_err(|error| InitError::io("mark descriptors close-on-exec".into(), error))?;
    confine()
}

/// Drops every privilege and installs the seccomp filter.
fn confine() -> Result<(), InitError> {
    drop_privileges()?;
    seccomp::install().map_err(InitError)
}

/// Switches to [`SANDBOX_ID`] with no supplementary groups and drops every capability
/// (bounding, ambient, inheritable, effective, permitted), then sets `no_new_privs`, so
/// neither this process nor anything it executes can regain privileges.
fn drop_privileges() -> Result<(), InitError> {
    let fail = |step: &str, error: caps::errors::CapsError| InitError(format!("failed to {step}: {error}"));
    // Dropping the bounding set needs CAP_SETPCAP, which the id switch below removes.
    for capability in caps::all() {
        caps::drop(None, caps::CapSet::Bounding, capability).map_err(|error| fail("drop the bounding set", error))?;
    }
    if getuid().is_root() {
        let id = Uid::from_raw(SANDBOX_ID);
        let group = Gid::from_raw(SANDBOX_ID);
        nix::unistd::setgroups(&[]).map_err(|errno| InitError::sys("clear supplementary groups", errno))?;
        nix::unistd::setresgid(group, group, group).map_err(|errno| InitError::sys("switch group", errno))?;
        nix::unistd::setresuid(id, id, id).map_err(|errno| InitError::sys("switch user", errno))?;
    }
    for set in [caps::CapSet::Ambient, caps::CapSet::Inheritable, caps::CapSet::Effective, caps::CapSet::Permitted] {
        caps::clear(None, set).map_err(|error| fail("clear capabilities", error))?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(|errno| InitError::sys("set no_new_privs", errno))
}

/// The engine's `execve` arguments, converted before forking.
struct ExecRequest {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    workdir: PathBuf,
}

impl ExecRequest {
    fn new(plan: &SandboxPlan) -> Result<Self, InitError> {
        let c_string = |bytes: &[u8]| CString::new(bytes).map_err(|_| InitError("a NUL byte in the engine command".to_owned()));
        let program = c_string(plan.program.as_os_str().as_bytes())?;
        let mut argv = vec![program.clone()];
        for arg in &plan.args {
            argv.push(c_string(arg.as_bytes())?);
        }
        let envp = plan
            .env
            .iter()
            .map(|(name, value)| c_string(format!("{name}={value}").as_bytes()))
            .collect::<Result<_, _>>()?;
        Ok(Self { program, argv, envp, workdir: PathBuf::from(super::plan::DATA_DIR) })
    }

    fn run(&self) -> nix::Error {
        if let Err(errno) = nix::unistd::chdir(&self.workdir) {
            return errno;
        }
        match nix::unistd::execve(&self.program, &self.argv, &self.envp) {
            Err(errno) => errno,
            Ok(never) => match never {},
        }
    }
}

/// Blocks the signals the init handles, so they queue for [`supervise`]. A PID 1 ignores
/// signals it has no handler for unless they are blocked and waited for.
fn block_signals() -> Result<SigSet, InitError> {
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(signal);
    }
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None).map_err(|errno| InitError::sys("block signals", errno))?;
    Ok(signals)
}

/// Forwards termination signals to `main`, reaps every child (orphans included) and returns
/// `main`'s exit status once it has exited.
fn supervise(main: Pid, signals: &SigSet) -> Result<u8, InitError> {
    loop {
        let signal = signals.wait().map_err(|errno| InitError::sys("wait for signals", errno))?;
        if signal != Signal::SIGCHLD {
            let _ = kill(main, signal);
            continue;
        }
        if let Some(code) = reap(main) {
            return Ok(code);
        }
    }
}

/// Reaps every exited child; returns `main`'s status when it is among them.
fn reap(main: Pid) -> Option<u8> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => return Some(u8::try_from(code).unwrap_or(1)),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == main => {
                return Some(128u8.saturating_add(signal as u8));
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}
