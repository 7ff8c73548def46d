//! The `namespace` backend: each runtime in a sandbox of Linux namespaces.
//!
//! A sandboxed engine gets new user, mount, PID, network, IPC and UTS namespaces. Its root
//! is a read-only tmpfs with only the engine binary, the shared libraries it loads and four
//! device nodes (`null`, `zero`, `random`, `urandom`). The agent volume is at `/data`
//! (read-write), next to a private `/tmp`, a `/proc` of its own PID namespace and the
//! runtime folder at `/run/houston` (engine socket and egress socket). The network namespace has only a
//! loopback device, which is down. The engine runs as uid and gid 1000 with no
//! capabilities, `no_new_privs` and a seccomp filter, in its own cgroup when the host has
//! one. See [`init`] for the process tree.

mod init;
mod mounts;
mod plan;
mod seccomp;
mod sys;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use futures::future::BoxFuture;
use houston_protocol::EngineEndpoint;
use tokio::process::Command;

pub use init::{InitError, init_main};
pub(crate) use sys::keep_only_fds_below;

use crate::backend::{BackendKind, LaunchSpec, RuntimeBackend, RuntimeHandle, StartError};
use crate::cgroup::{self, CgroupLayout, ResourceLimits, RuntimeCgroup};
use crate::launch::{KillMode, Launch, TOKEN_FD, spawn_engine};
use crate::process::ENGINE_SOCKET;
use plan::{Bind, DATA_DIR, DEVICES, EGRESS_SOCKET, RUN_DIR, SandboxPlan, host_ids, inside, parse_ldd};

/// Name of the placeholder the egress socket is bound onto, inside the runtime folder.
const EGRESS_PLACEHOLDER: &str = "egress.sock";

/// Settings of the namespace backend.
#[derive(Debug, Clone)]
pub struct NamespaceConfig {
    /// The program that acts as the sandbox init: normally the `houston` binary.
    pub init_program: PathBuf,
    /// Arguments that select the init, before the plan: `["sandbox-init"]` for `houston`.
    pub init_args: Vec<String>,
    /// Limits of each runtime's cgroup.
    pub limits: ResourceLimits,
    /// Size limit of each sandbox's private `/tmp`, in bytes.
    pub tmp_size_bytes: u64,
}

impl Default for NamespaceConfig {
    /// Uses the running binary as the init, as `houston up` does.
    fn default() -> Self {
        Self {
            init_program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
            init_args: vec!["sandbox-init".to_owned()],
            limits: ResourceLimits::default(),
            tmp_size_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Error: this host cannot run namespace sandboxes.
#[derive(Debug, Clone, thiserror::Error)]
#[error("namespace sandboxes are not available on this host: {reason}")]
pub struct NamespaceUnavailable {
    /// The failure, as the check reported it.
    pub reason: String,
}

/// Checks whether this host can create the sandbox's namespaces, by running the init's
/// `--check` mode (it creates every namespace, maps ids, mounts a tmpfs and checks that its
/// child is PID 1). Takes a few milliseconds.
///
/// # Errors
/// Returns [`NamespaceUnavailable`] with the check's output when it fails.
pub fn namespace_supported(config: &NamespaceConfig) -> Result<(), NamespaceUnavailable> {
    let output = std::process::Command::new(&config.init_program)
        .args(&config.init_args)
        .arg("--check")
        .env_clear()
        .output()
        .map_err(|error| NamespaceUnavailable {
            reason: format!("failed to run {}: {error}", config.init_program.display()),
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Err(NamespaceUnavailable { reason: format!("{} ({stderr})", output.status) })
}

/// Runs each engine in a namespace sandbox.
pub struct NamespaceBackend {
    config: NamespaceConfig,
    cgroups: OnceLock<CgroupLayout>,
    /// Shared libraries per engine program, resolved once with `ldd`.
    libraries: Mutex<HashMap<PathBuf, Arc<Vec<PathBuf>>>>,
}

impl NamespaceBackend {
    /// Creates the backend. The cgroup layout is detected (and logged) at the first start.
    #[must_use]
    pub fn new(config: NamespaceConfig) -> Self {
        Self { config, cgroups: OnceLock::new(), libraries: Mutex::new(HashMap::new()) }
    }

    async fn libraries(&self, program: &Path) -> Result<Arc<Vec<PathBuf>>, StartError> {
        if let Some(known) = self.libraries.lock().expect("library cache lock").get(program) {
            return Ok(known.clone());
        }
        let step = || format!("list the shared libraries of {}", program.display());
        let output = Command::new("ldd")
            .arg(program)
            .output()
            .await
            .map_err(|source| StartError::Setup { step: step(), source })?;
        let text = String::from_utf8_lossy(&output.stdout);
        let paths = parse_ldd(&text).map_err(|reason| StartError::Setup { step: step(), source: std::io::Error::other(reason) })?;
        let paths = Arc::new(paths);
        self.libraries.lock().expect("library cache lock").insert(program.to_owned(), paths.clone());
        Ok(paths)
    }

    fn create_cgroup(&self, spec: &LaunchSpec) -> Result<Option<RuntimeCgroup>, StartError> {
        let layout = self.cgroups.get_or_init(CgroupLayout::detect);
        layout
            .create(&cgroup::unique_name(spec.agent_id.as_str()), self.config.limits)
            .map_err(|source| StartError::Setup { step: "create the runtime cgroup".to_owned(), source })
    }

    fn plan(&self, spec: &LaunchSpec, libraries: &[PathBuf], cgroup: Option<&RuntimeCgroup>, host: (u32, u32)) -> Result<SandboxPlan, StartError> {
        let setup = |step: String| move |source| StartError::Setup { step, source };
        let program_name = spec.engine.program.file_name().unwrap_or_default();
        let program = Path::new("/bin").join(program_name);
        let mount_point = spec.runtime_dir.parent().unwrap_or(Path::new("/")).join(".sandbox-root");
        std::fs::create_dir_all(&mount_point).map_err(setup(format!("create {}", mount_point.display())))?;

        let mut binds = vec![Bind::read_only(&spec.engine.program, &program)];
        for library in libraries {
            let source = std::fs::canonicalize(library).map_err(setup(format!("resolve {}", library.display())))?;
            binds.push(Bind::read_only(source, library));
        }
        for device in DEVICES {
            binds.push(Bind { device: true, ..Bind::writable(device, device) });
        }
        binds.push(Bind::writable(&spec.volume_dir, DATA_DIR));
        binds.push(Bind::writable(&spec.runtime_dir, RUN_DIR));
        if let Some(egress) = &spec.egress_socket {
            let placeholder = spec.runtime_dir.join(EGRESS_PLACEHOLDER);
            if egress != &placeholder {
                if !placeholder.exists() {
                    std::fs::File::create(&placeholder).map_err(setup(format!("create {}", placeholder.display())))?;
                }
                binds.push(Bind::writable(egress, EGRESS_SOCKET));
            }
        }

        let mut args = spec.engine.args.clone();
        let listen = format!("unix:{RUN_DIR}/{ENGINE_SOCKET}");
        args.extend(["--agent-dir", DATA_DIR, "--listen", &listen, "--token-fd"].map(str::to_owned));
        args.push(TOKEN_FD.to_string());

        Ok(SandboxPlan {
            mount_point,
            binds,
            tmp_size_bytes: self.config.tmp_size_bytes,
            cgroup_procs: cgroup.map(RuntimeCgroup::procs_files).unwrap_or_default(),
            host_uid: host.0,
            host_gid: host.1,
            program,
            args,
            env: sandbox_env(&spec.env, spec.egress_socket.is_some()),
        })
    }

    async fn start_sandbox(&self, spec: &LaunchSpec) -> Result<RuntimeHandle, StartError> {
        let libraries = self.libraries(&spec.engine.program).await?;
        let _ = std::fs::remove_file(spec.runtime_dir.join(ENGINE_SOCKET));
        let host = host_ids(spec.agent_id.as_str());
        if nix::unistd::geteuid().is_root() {
            hand_over(spec, host).await?;
        }
        let cgroup = self.create_cgroup(spec)?;
        let plan = match self.plan(spec, &libraries, cgroup.as_ref(), host) {
            Ok(plan) => plan,
            Err(error) => {
                if let Some(cgroup) = &cgroup {
                    cgroup.remove();
                }
                return Err(error);
            }
        };
        let plan_json = serde_json::to_string(&plan).expect("a sandbox plan serializes");

        let mut command = Command::new(&self.config.init_program);
        command.args(&self.config.init_args).arg(plan_json).env_clear().process_group(0);
        let announced = EngineEndpoint::Unix(inside(Path::new(RUN_DIR), Path::new(ENGINE_SOCKET)));
        let launch = Launch {
            agent_id: &spec.agent_id,
            command,
            program: self.config.init_program.clone(),
            announced,
            host_endpoint: EngineEndpoint::Unix(spec.runtime_dir.join(ENGINE_SOCKET)),
            token: &spec.token,
            ready_timeout: spec.ready_timeout,
            kill_mode: KillMode::Sandbox { cgroup },
            token_owner: Some(host),
        };
        spawn_engine(launch).await
    }
}

impl RuntimeBackend for NamespaceBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Namespace
    }

    fn start<'a>(&'a self, spec: &'a LaunchSpec) -> BoxFuture<'a, Result<RuntimeHandle, StartError>> {
        Box::pin(self.start_sandbox(spec))
    }
}

/// Returns the host uid and gid the sandbox of `agent` runs as: an unprivileged id derived
/// from the agent id when this process is root, otherwise this process's own ids.
#[must_use]
pub fn sandbox_host_ids(agent: &houston_protocol::AgentId) -> (u32, u32) {
    host_ids(agent.as_str())
}

/// Gives the sandbox's host user the runtime folder, the egress socket and the volume. The volume is walked
/// only when its top folder belongs to someone else, which normally happens once, at the
/// agent's first start.
// NOTE: files a host tool adds later to a volume that was handed over already keep their
// owner. The engine can read them if their mode allows it, but cannot replace them.
async fn hand_over(spec: &LaunchSpec, (uid, gid): (u32, u32)) -> Result<(), StartError> {
    let runtime_dir = spec.runtime_dir.clone();
    let volume = spec.volume_dir.clone();
    let egress = spec.egress_socket.clone();
    let result = tokio::task::spawn_blocking(move || {
        std::os::unix::fs::lchown(&runtime_dir, Some(uid), Some(gid))?;
        // The egress proxy creates each agent's socket with mode 0600 for its own user.
        if let Some(egress) = &egress {
            std::os::unix::fs::lchown(egress, Some(uid), Some(gid))?;
        }
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&volume)?);
        if owner != uid {
            tracing::info!(volume = %volume.display(), uid, "handing the agent volume to its sandbox user");
            chown_tree(&volume, uid, gid)?;
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|join| Err(std::io::Error::other(join)));
    result.map_err(|source| StartError::Setup { step: format!("give the sandbox user {uid} its folders"), source })
}

/// Changes the owner of `dir` and everything below it, without following symbolic links.
fn chown_tree(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            chown_tree(&entry.path(), uid, gid)?;
        } else {
            std::os::unix::fs::lchown(entry.path(), Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

/// Builds the engine's whole environment inside the sandbox; nothing is inherited from the
/// host.
fn sandbox_env(extra: &BTreeMap<String, String>, egress: bool) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = BTreeMap::from([
        ("PATH".to_owned(), "/bin".to_owned()),
        ("HOME".to_owned(), DATA_DIR.to_owned()),
        ("TMPDIR".to_owned(), "/tmp".to_owned()),
    ]);
    if let Ok(filter) = std::env::var("RUST_LOG") {
        env.insert("RUST_LOG".to_owned(), filter);
    }
    if egress {
        env.insert("HOUSTON_EGRESS_SOCKET".to_owned(), EGRESS_SOCKET.to_owned());
    }
    env.extend(extra.iter().map(|(name, value)| (name.clone(), value.clone())));
    env.into_iter().collect()
}
