//! The sandbox init: the program the namespace backend runs for each runtime.
//!
//! Process tree of one sandbox, as seen from the host:
//!
//! ```text
//! manager ── outer init (host PID namespace, new user namespace)
//!              └── inner init, PID 1 of the new PID namespace: builds the root, drops every
//!                  privilege, then reaps orphans and forwards SIGTERM
//!                    └── engine (exec'd with no capabilities, no_new_privs and seccomp)
//! ```
//!
//! The outer init exists because a process cannot enter the PID namespace it creates; its
//! first child does. It forwards SIGTERM inward and exits with the engine's status. The inner
//! init dies with SIGKILL when the outer one does (`PR_SET_PDEATHSIG`), and the kernel kills
//! every process of a PID namespace when its PID 1 exits, so killing the outer init removes
//! the whole sandbox.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, getgid, getuid};

use super::plan::{SANDBOX_ID, SandboxPlan};
use super::{mounts, seccomp, sys};
use crate::launch::TOKEN_FD;

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
#[must_use]
pub fn init_main(args: &[String]) -> ExitCode {
    let result = match args {
        [flag] if flag == "--check" => check_namespaces(),
        [plan] => match serde_json::from_str::<SandboxPlan>(plan) {
            Ok(plan) => run_outer(&plan),
            Err(error) => Err(InitError(format!("invalid sandbox plan: {error}"))),
        },
        _ => Err(InitError("usage: sandbox-init (--check | PLAN_JSON)".to_owned())),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("houston sandbox: {error}");
            ExitCode::from(SETUP_FAILED)
        }
    }
}

fn namespace_flags() -> CloneFlags {
    CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS
}

/// Creates every namespace and maps the caller's ids to [`SANDBOX_ID`].
fn enter_namespaces() -> Result<(), InitError> {
    let (uid, gid) = (getuid(), getgid());
    unshare(namespace_flags()).map_err(|errno| InitError::sys("create namespaces", errno))?;
    // Without CAP_SETUID in the parent namespace a process may only map its own ids, one
    // line each, and only after denying setgroups.
    let write = |file: &str, text: String| {
        fs::write(format!("/proc/self/{file}"), text).map_err(|error| InitError::io(format!("write {file}"), error))
    };
    write("setgroups", "deny".to_owned())?;
    write("uid_map", format!("{SANDBOX_ID} {uid} 1"))?;
    write("gid_map", format!("{SANDBOX_ID} {gid} 1"))
}

/// Checks that namespaces, id maps, a tmpfs mount and a new PID namespace all work.
fn check_namespaces() -> Result<u8, InitError> {
    enter_namespaces()?;
    match sys::fork_single_threaded().map_err(|error| InitError::io("fork".into(), error))? {
        ForkResult::Child => {
            let is_pid_one = std::process::id() == 1;
            let none: Option<&str> = None;
            let mounted = nix::mount::mount(Some("tmpfs"), "/tmp", Some("tmpfs"), nix::mount::MsFlags::empty(), none);
            let code = if is_pid_one && mounted.is_ok() { 0 } else { 1 };
            std::process::exit(code);
        }
        ForkResult::Parent { child } => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(0),
            other => Err(InitError(format!("the namespace check child failed: {other:?}"))),
        },
    }
}

fn run_outer(plan: &SandboxPlan) -> Result<u8, InitError> {
    for procs in &plan.cgroup_procs {
        fs::write(procs, std::process::id().to_string())
            .map_err(|error| InitError::io(format!("join cgroup {}", procs.display()), error))?;
    }
    enter_namespaces()?;
    let signals = block_signals()?;
    match sys::fork_single_threaded().map_err(|error| InitError::io("fork the sandbox init".into(), error))? {
        ForkResult::Child => {
            let code = match run_inner(plan, &signals) {
                Ok(code) => code,
                Err(error) => {
                    eprintln!("houston sandbox: {error}");
                    SETUP_FAILED
                }
            };
            std::process::exit(i32::from(code));
        }
        ForkResult::Parent { child } => {
            let _ = nix::unistd::close(TOKEN_FD);
            supervise(child, &signals)
        }
    }
}

/// PID 1 of the sandbox: builds the root, drops privileges, starts the engine and reaps.
fn run_inner(plan: &SandboxPlan, signals: &SigSet) -> Result<u8, InitError> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|errno| InitError::sys("set the parent-death signal", errno))?;
    mounts::build_root(plan)?;
    nix::unistd::sethostname("houston-sandbox").map_err(|errno| InitError::sys("set the hostname", errno))?;
    drop_privileges()?;
    seccomp::install().map_err(InitError)?;

    let exec = ExecRequest::new(plan)?;
    match sys::fork_single_threaded().map_err(|error| InitError::io("fork the engine".into(), error))? {
        ForkResult::Child => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            let error = exec.run();
            eprintln!("houston sandbox: failed to execute {}: {error}", plan.program.display());
            std::process::exit(EXEC_FAILED);
        }
        ForkResult::Parent { child } => {
            let _ = nix::unistd::close(TOKEN_FD);
            supervise(child, signals)
        }
    }
}

/// Drops every capability (bounding, ambient, inheritable, effective, permitted) and sets
/// `no_new_privs`, so neither this process nor anything it executes can regain privileges.
fn drop_privileges() -> Result<(), InitError> {
    let fail = |step: &str, error: caps::errors::CapsError| InitError(format!("failed to {step}: {error}"));
    for capability in caps::all() {
        caps::drop(None, caps::CapSet::Bounding, capability).map_err(|error| fail("drop the bounding set", error))?;
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
