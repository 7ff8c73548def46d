//! The sandbox plan: everything the sandbox init needs, computed on the host and passed to
//! the init as one JSON argument.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Path of the runtime folder inside the sandbox.
pub(crate) const RUN_DIR: &str = "/run/houston";
/// Path of the agent volume inside the sandbox.
pub(crate) const DATA_DIR: &str = "/data";
/// The in-sandbox path of the egress socket.
pub(crate) const EGRESS_SOCKET: &str = "/run/houston/egress.sock";
/// The user and group id the engine runs as inside the sandbox.
pub(crate) const SANDBOX_ID: u32 = 1000;

/// First host id of the range sandbox ids are taken from when the manager runs as root.
const HOST_ID_BASE: u32 = 100_000;
/// Size of that range.
const HOST_ID_RANGE: u32 = 65_536;

/// Returns the host uid and gid an agent's sandbox runs as.
///
/// As root, each agent gets an unprivileged id derived from its id (FNV-1a hash into
/// 100000..165535), so a sandbox never acts as host root. Two ids can hash to the same
/// uid, and the runtime manager rejects the second of such agents at registration.
/// Otherwise the sandbox runs as the caller, the only id it may map.
pub(crate) fn host_ids(agent: &str) -> (u32, u32) {
    let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    if uid != 0 {
        return (uid, gid);
    }
    let hash = agent.bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    let id = HOST_ID_BASE + hash % HOST_ID_RANGE;
    (id, id)
}

/// Device nodes bound into the sandbox's `/dev`.
pub(crate) const DEVICES: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"];

/// The complete description of one sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SandboxPlan {
    /// An empty host directory on which the sandbox mounts its own tmpfs root.
    pub mount_point: PathBuf,
    /// Host paths bound into the new root, in order.
    pub binds: Vec<Bind>,
    /// Size limit of the private `/tmp`, in bytes.
    pub tmp_size_bytes: u64,
    /// `cgroup.procs` files the sandbox joins before creating namespaces.
    pub cgroup_procs: Vec<PathBuf>,
    /// The host user id that [`SANDBOX_ID`] maps to.
    pub host_uid: u32,
    /// The host group id that [`SANDBOX_ID`] maps to.
    pub host_gid: u32,
    /// The engine's path inside the sandbox.
    pub program: PathBuf,
    /// The engine's arguments, without the program name.
    pub args: Vec<String>,
    /// The engine's complete environment.
    pub env: Vec<(String, String)>,
}

/// One bind mount from the host into the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Bind {
    pub source: PathBuf,
    /// Absolute path inside the sandbox.
    pub target: PathBuf,
    pub writable: bool,
    /// Device nodes need the mount without `nodev`.
    pub device: bool,
}

impl Bind {
    pub(crate) fn read_only(source: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        Self { source: source.into(), target: target.into(), writable: false, device: false }
    }

    pub(crate) fn writable(source: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        Self { source: source.into(), target: target.into(), writable: true, device: false }
    }
}

/// Parses `ldd` output into the paths the dynamic loader opens: the interpreter and every
/// resolved library. The virtual `linux-vdso` has no file and is skipped.
///
/// # Errors
/// Returns the library name that `ldd` could not resolve.
pub(crate) fn parse_ldd(output: &str) -> Result<Vec<PathBuf>, String> {
    let mut paths = Vec::new();
    for line in output.lines().map(str::trim) {
        if line.is_empty() || line.contains("statically linked") || line.contains("not a dynamic executable") {
            continue;
        }
        let location = match line.split_once("=>") {
            Some((name, resolved)) => {
                let resolved = resolved.trim();
                if resolved.starts_with("not found") {
                    return Err(format!("library {} was not found", name.trim()));
                }
                resolved
            }
            None => line,
        };
        let path = location.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') {
            paths.push(PathBuf::from(path));
        }
    }
    Ok(paths)
}

/// Returns `path` inside `root`, treating `path` as absolute within it.
pub(crate) fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_parsed() {
        let output = "\tlinux-vdso.so.1 (0x00007ffd2d3f2000)\n\
            \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f3e)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f3d)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f3f)\n";
        let paths = parse_ldd(output).unwrap();
        let expected: Vec<PathBuf> = [
            "/lib/x86_64-linux-gnu/libgcc_s.so.1",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(paths, expected);
    }

    #[test]
    fn ldd_missing_library_rejected() {
        let error = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert!(error.contains("libfoo.so.1"), "{error}");
    }

    #[test]
    fn host_ids_stable_and_unprivileged() {
        let (uid, gid) = host_ids("hr");
        assert_eq!(host_ids("hr"), (uid, gid), "the same agent always gets the same ids");
        if nix::unistd::geteuid().is_root() {
            assert!((HOST_ID_BASE..HOST_ID_BASE + HOST_ID_RANGE).contains(&uid), "{uid}");
            assert_ne!(host_ids("hr"), host_ids("sales"));
        }
    }

    #[test]
    fn static_binary_needs_nothing() {
        assert_eq!(parse_ldd("\tstatically linked\n").unwrap(), Vec::<PathBuf>::new());
    }
}
