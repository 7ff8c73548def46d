//! Spawning an engine (directly or through the sandbox init), waiting for its readiness
//! line, and stopping it. Shared by the `process` and `namespace` backends.

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use command_fds::{CommandFdExt, FdMapping};
use futures::future::BoxFuture;
use houston_protocol::{AgentId, EngineEndpoint};
use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::backend::{RuntimeHandle, RuntimeInstance, RuntimeStatus, StartError, StopError};
use crate::cgroup::RuntimeCgroup;

/// The engine's first stdout line starts with this, followed by its listen address.
pub(crate) const READY_PREFIX: &str = "houston-engine listening on ";

/// The file descriptor number the engine reads its token from (`--token-fd 3`).
pub(crate) const TOKEN_FD: i32 = 3;

/// The lowest descriptor a runtime does not inherit: it gets only stdin, stdout, stderr and
/// the token pipe.
pub(crate) const FIRST_UNPASSED_FD: u32 = 4;

/// Lines of engine output kept to explain a failed start.
const OUTPUT_TAIL_LINES: usize = 20;

/// How long to wait for processes to disappear after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Signal routing that reaches every process of a runtime.
pub(crate) enum KillMode {
    /// The engine leads its own process group; signals go to the group.
    ProcessGroup,
    /// The child is the sandbox's outer init, which forwards SIGTERM inward; SIGKILL on it
    /// tears down the PID namespace, and the cgroup (when there is one) is killed as well.
    Sandbox { cgroup: Option<RuntimeCgroup> },
}

/// One engine launch, prepared by a backend.
pub(crate) struct Launch<'a> {
    pub agent_id: &'a AgentId,
    pub command: Command,
    /// The program being run, for error messages.
    pub program: PathBuf,
    /// The address the engine announces, in its own view of the file system.
    pub announced: EngineEndpoint,
    /// The same address as the host reaches it.
    pub host_endpoint: EngineEndpoint,
    pub token: &'a SecretString,
    pub ready_timeout: Duration,
    pub kill_mode: KillMode,
    /// Host uid and gid that must be able to reopen the token pipe through
    /// `/proc/self/fd`, when the engine runs as another user than this process.
    pub token_owner: Option<(u32, u32)>,
}

/// Spawns the launch and waits for the engine's readiness line.
pub(crate) async fn spawn_engine(launch: Launch<'_>) -> Result<RuntimeHandle, StartError> {
    let Launch { agent_id, mut command, program, announced, host_endpoint, token, .. } = launch;
    let token_fd = token_pipe(token, launch.token_owner)?;
    command
        .fd_mappings(vec![FdMapping { parent_fd: token_fd, child_fd: TOKEN_FD }])
        .map_err(|_| setup_error("map the token pipe", std::io::ErrorKind::InvalidInput.into()))?;
    // Registered after the mapping, so the token pipe is already at TOKEN_FD. A descriptor
    // this process has open without O_CLOEXEC (to another agent's folder, say) must not
    // reach the engine, which could use it through /proc/<pid>/fd.
    crate::sandbox::keep_only_fds_below(&mut command, FIRST_UNPASSED_FD);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(source) => {
            if let KillMode::Sandbox { cgroup: Some(cgroup) } = &launch.kill_mode {
                cgroup.remove();
            }
            return Err(StartError::Spawn { program, source });
        }
    };
    let pid = child.id().and_then(|id| i32::try_from(id).ok()).unwrap_or(0);

    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let stderr_task = forward_output(agent_id, child.stderr.take(), Some(tail.clone()));
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();

    let first = tokio::time::timeout(launch.ready_timeout, stdout.next_line()).await;
    let (exit_tx, exit_rx) = watch::channel(None);
    let instance = ChildInstance { pid, exit: exit_rx, kill_mode: launch.kill_mode };
    watch_exit(child, exit_tx);

    let failure = match first {
        Ok(Ok(Some(line))) => check_readiness(&line, &announced).err(),
        Ok(Ok(None) | Err(_)) => {
            let status = instance.wait_exit(KILL_WAIT).await.unwrap_or_else(|| "still running".into());
            let _ = tokio::time::timeout(Duration::from_secs(1), stderr_task).await;
            Some(StartError::Exited { status, output: joined_tail(&tail) })
        }
        Err(_) => Some(StartError::TimedOut { after: launch.ready_timeout }),
    };
    if let Some(error) = failure {
        let _ = instance.kill_and_wait().await;
        return Err(error);
    }

    forward_lines(agent_id, stdout);
    Ok(RuntimeHandle { endpoint: host_endpoint, instance: Box::new(instance) })
}

fn setup_error(step: &str, source: std::io::Error) -> StartError {
    StartError::Setup { step: step.to_owned(), source }
}

/// Writes the token into a new pipe and returns its read end. The pipe buffer takes the whole
/// token, so the write end is closed before the engine starts and the engine reads to EOF.
fn token_pipe(token: &SecretString, owner: Option<(u32, u32)>) -> Result<OwnedFd, StartError> {
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|errno| setup_error("create the token pipe", errno.into()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&read_end, Some(uid), Some(gid))
            .map_err(|source| setup_error("hand the token pipe to the sandbox user", source))?;
    }
    let mut writer = std::fs::File::from(write_end);
    writer
        .write_all(token.expose_secret().as_bytes())
        .map_err(|source| setup_error("write the token pipe", source))?;
    Ok(read_end)
}

fn check_readiness(line: &str, announced: &EngineEndpoint) -> Result<(), StartError> {
    let expected = announced.to_string();
    let matches = line
        .strip_prefix(READY_PREFIX)
        .and_then(|rest| rest.trim().parse::<EngineEndpoint>().ok())
        .is_some_and(|endpoint| &endpoint == announced);
    if matches { Ok(()) } else { Err(StartError::BadReadiness { line: line.to_owned(), expected }) }
}

fn joined_tail(tail: &Mutex<VecDeque<String>>) -> String {
    let lines = tail.lock().expect("output tail lock");
    if lines.is_empty() {
        return "(no output)".to_owned();
    }
    lines.iter().cloned().collect::<Vec<_>>().join(" | ")
}

/// Logs each line of the engine's stderr with the agent id and keeps the last lines in `tail`.
fn forward_output<R>(
    agent_id: &AgentId,
    stream: Option<R>,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
) -> tokio::task::JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let agent_id = agent_id.clone();
    tokio::spawn(async move {
        let Some(stream) = stream else { return };
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(agent.id = %agent_id, "engine: {line}");
            if let Some(tail) = &tail {
                let mut tail = tail.lock().expect("output tail lock");
                if tail.len() == OUTPUT_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
    })
}

fn forward_lines<R>(agent_id: &AgentId, mut lines: tokio::io::Lines<BufReader<R>>)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let agent_id = agent_id.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(agent.id = %agent_id, "engine stdout: {line}");
        }
    });
}

fn watch_exit(mut child: Child, exit_tx: watch::Sender<Option<String>>) {
    tokio::spawn(async move {
        let description = match child.wait().await {
            Ok(status) => status.to_string(),
            Err(error) => format!("wait failed: {error}"),
        };
        let _ = exit_tx.send(Some(description));
    });
}

/// A runtime whose main process is a child of this process.
pub(crate) struct ChildInstance {
    pid: i32,
    exit: watch::Receiver<Option<String>>,
    kill_mode: KillMode,
}

impl ChildInstance {
    fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    async fn wait_exit(&self, limit: Duration) -> Option<String> {
        let mut exit = self.exit.clone();
        let waited = tokio::time::timeout(limit, exit.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(value)) => value.clone(),
            _ => None,
        }
    }

    fn signal(&self, signal: Signal) -> Result<(), StopError> {
        if self.pid <= 0 || self.has_exited() {
            return Ok(());
        }
        let pid = Pid::from_raw(self.pid);
        let result = match self.kill_mode {
            KillMode::ProcessGroup => killpg(pid, signal),
            KillMode::Sandbox { .. } => kill(pid, signal),
        };
        match result {
            Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
            Err(source) => Err(StopError::Signal { signal: signal.as_str(), pid: self.pid, source }),
        }
    }

    /// Sends SIGKILL to everything the runtime started and waits until it is gone.
    async fn kill_and_wait(&self) -> Result<(), StopError> {
        self.signal(Signal::SIGKILL)?;
        if let KillMode::Sandbox { cgroup: Some(cgroup) } = &self.kill_mode {
            cgroup.kill_all();
        }
        if self.wait_exit(KILL_WAIT).await.is_none() {
            return Err(StopError::StillRunning { after: KILL_WAIT });
        }
        self.sweep().await
    }

    /// Kills what the main process left behind: the rest of its process group, or the rest
    /// of its cgroup, then removes the cgroup.
    async fn sweep(&self) -> Result<(), StopError> {
        match &self.kill_mode {
            KillMode::ProcessGroup => {
                let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
                Ok(())
            }
            KillMode::Sandbox { cgroup: None } => Ok(()),
            KillMode::Sandbox { cgroup: Some(cgroup) } => {
                if cgroup.kill_and_remove(KILL_WAIT).await {
                    Ok(())
                } else {
                    Err(StopError::StillRunning { after: KILL_WAIT })
                }
            }
        }
    }
}

impl RuntimeInstance for ChildInstance {
    fn status(&self) -> RuntimeStatus {
        match &*self.exit.borrow() {
            None => RuntimeStatus::Running,
            Some(description) => RuntimeStatus::Exited(description.clone()),
        }
    }

    fn exited(&self) -> BoxFuture<'static, String> {
        let mut exit = self.exit.clone();
        Box::pin(async move {
            match exit.wait_for(Option::is_some).await {
                Ok(value) => value.clone().unwrap_or_default(),
                Err(_) => "the exit watcher stopped".to_owned(),
            }
        })
    }

    fn stop(&self, grace: Duration) -> BoxFuture<'_, Result<(), StopError>> {
        Box::pin(async move {
            self.signal(Signal::SIGTERM)?;
            if self.wait_exit(grace).await.is_some() {
                return self.sweep().await;
            }
            self.kill_and_wait().await
        })
    }

    fn pid(&self) -> Option<u32> {
        u32::try_from(self.pid).ok()
    }
}

impl Drop for ChildInstance {
    /// Kills a runtime that was dropped without being stopped, so no engine outlives the
    /// manager that started it.
    fn drop(&mut self) {
        if !self.has_exited() {
            let _ = self.signal(Signal::SIGKILL);
        }
        if let KillMode::Sandbox { cgroup } = &mut self.kill_mode
            && let Some(cgroup) = cgroup.take()
            && cgroup.exists()
        {
            // Drop cannot wait, so a thread removes the cgroup once its processes are gone.
            std::thread::spawn(move || cgroup.kill_and_remove_blocking(KILL_WAIT));
        }
    }
}
