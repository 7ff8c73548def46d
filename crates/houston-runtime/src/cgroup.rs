//! One cgroup per runtime with memory, pids and CPU limits, on cgroup v2 or v1.
//!
//! The layout is detected once from `/proc/self/mountinfo`. cgroup v2 is used when its
//! hierarchy offers the controllers. Otherwise the v1 hierarchies that exist are used,
//! because some hosts mount v2 without controllers next to a working v1. When neither offers a
//! controller the runtimes run without that limit and a warning is logged.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The controllers a runtime cgroup uses.
const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// Name of the parent cgroup that contains every runtime's cgroup.
const PARENT: &str = "houston";

/// CPU bandwidth period, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// Resource limits for one runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLimits {
    /// Memory limit in bytes (`memory.max`, `memory.limit_in_bytes`).
    pub memory_bytes: u64,
    /// Maximum number of processes and threads (`pids.max`).
    pub pids: u32,
    /// CPU time per wall-clock second in milliseconds; 1000 is one full core.
    pub cpu_millis: u32,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        Self { memory_bytes: 512 * 1024 * 1024, pids: 256, cpu_millis: 1000 }
    }
}

/// The location of the controllers on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupLayout {
    /// A cgroup v2 hierarchy with its enabled controllers.
    V2 { root: PathBuf, controllers: Vec<&'static str> },
    /// cgroup v1 hierarchies, one per controller found.
    V1 { roots: Vec<(&'static str, PathBuf)> },
    /// No usable controller.
    None,
}

impl CgroupLayout {
    /// Detects the layout from `/proc/self/mountinfo` and logs it.
    pub(crate) fn detect() -> Self {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let layout = Self::from_mountinfo(&mountinfo, |root| {
            fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default()
        });
        layout.log();
        layout
    }

    fn from_mountinfo(mountinfo: &str, read_controllers: impl Fn(&Path) -> String) -> Self {
        let mut v2 = None;
        let mut v1 = Vec::new();
        for line in mountinfo.lines() {
            let Some((before, after)) = line.split_once(" - ") else { continue };
            let Some(mount_point) = before.split(' ').nth(4) else { continue };
            let mut fields = after.split(' ');
            let fs_type = fields.next().unwrap_or_default();
            let options = fields.nth(1).unwrap_or_default();
            if fs_type == "cgroup2" && v2.is_none() {
                let available = read_controllers(Path::new(mount_point));
                let controllers: Vec<_> = CONTROLLERS
                    .into_iter()
                    .filter(|name| available.split_whitespace().any(|c| c == *name))
                    .collect();
                v2 = Some((PathBuf::from(mount_point), controllers));
            } else if fs_type == "cgroup" {
                for name in CONTROLLERS {
                    let present = options.split(',').any(|option| option == name);
                    if present && !v1.iter().any(|(known, _)| *known == name) {
                        v1.push((name, PathBuf::from(mount_point)));
                    }
                }
            }
        }
        match v2 {
            Some((root, controllers)) if !controllers.is_empty() && controllers.len() >= v1.len() => {
                Self::V2 { root, controllers }
            }
            _ if !v1.is_empty() => Self::V1 { roots: v1 },
            _ => Self::None,
        }
    }

    fn log(&self) {
        let missing = |present: &[&str]| -> Vec<&str> {
            CONTROLLERS.into_iter().filter(|name| !present.contains(name)).collect()
        };
        let (layout, present): (&str, Vec<&str>) = match self {
            Self::V2 { controllers, .. } => ("v2", controllers.clone()),
            Self::V1 { roots } => ("v1", roots.iter().map(|(name, _)| *name).collect()),
            Self::None => ("none", Vec::new()),
        };
        tracing::info!(cgroup.layout = layout, controllers = ?present, "runtime cgroups detected");
        let missing = missing(&present);
        if !missing.is_empty() {
            tracing::warn!(
                cgroup.layout = layout,
                missing = ?missing,
                "runtimes run without these resource limits because no cgroup hierarchy offers them"
            );
        }
    }

    /// Creates a cgroup named `name` with `limits`, or `Ok(None)` when no controller exists.
    pub(crate) fn create(&self, name: &str, limits: ResourceLimits) -> io::Result<Option<RuntimeCgroup>> {
        match self {
            Self::None => Ok(None),
            Self::V2 { root, controllers } => create_v2(root, controllers, name, limits).map(Some),
            Self::V1 { roots } => create_v1(roots, name, limits).map(Some),
        }
    }
}

/// Returns a cgroup name unique among the runtimes of every manager on this host.
pub(crate) fn unique_name(agent: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{agent}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

// NOTE: only the layout parser's unit tests cover the v2 path. The host these tests ran on
// has no controllers in its v2 hierarchy, so its runtimes use v1.
fn create_v2(root: &Path, controllers: &[&str], name: &str, limits: ResourceLimits) -> io::Result<RuntimeCgroup> {
    let parent = root.join(PARENT);
    fs::create_dir_all(&parent)?;
    let enable: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
    // The root usually has them enabled already; the parent needs them for its children.
    let _ = fs::write(root.join("cgroup.subtree_control"), enable.join(" "));
    fs::write(parent.join("cgroup.subtree_control"), enable.join(" "))?;
    let dir = parent.join(name);
    fs::create_dir(&dir)?;
    let cgroup = RuntimeCgroup { dirs: vec![dir.clone()], v2: true };
    let quota = u64::from(limits.cpu_millis) * CPU_PERIOD_US / 1000;
    let writes = [
        ("memory", "memory.max", limits.memory_bytes.to_string()),
        ("pids", "pids.max", limits.pids.to_string()),
        ("cpu", "cpu.max", format!("{quota} {CPU_PERIOD_US}")),
    ];
    for (controller, file, value) in writes {
        if controllers.contains(&controller) {
            write_limit(&dir, file, &value, &cgroup)?;
        }
    }
    Ok(cgroup)
}

fn create_v1(roots: &[(&str, PathBuf)], name: &str, limits: ResourceLimits) -> io::Result<RuntimeCgroup> {
    let mut cgroup = RuntimeCgroup { dirs: Vec::new(), v2: false };
    for (controller, root) in roots {
        let dir = root.join(PARENT).join(name);
        fs::create_dir_all(&dir)?;
        cgroup.dirs.push(dir.clone());
        let quota = u64::from(limits.cpu_millis) * CPU_PERIOD_US / 1000;
        let writes: Vec<(&str, String)> = match *controller {
            "memory" => vec![("memory.limit_in_bytes", limits.memory_bytes.to_string())],
            "pids" => vec![("pids.max", limits.pids.to_string())],
            _ => vec![
                ("cpu.cfs_period_us", CPU_PERIOD_US.to_string()),
                ("cpu.cfs_quota_us", quota.to_string()),
            ],
        };
        for (file, value) in writes {
            write_limit(&dir, file, &value, &cgroup)?;
        }
    }
    Ok(cgroup)
}

fn write_limit(dir: &Path, file: &str, value: &str, created: &RuntimeCgroup) -> io::Result<()> {
    fs::write(dir.join(file), value).map_err(|error| {
        created.remove();
        io::Error::new(error.kind(), format!("failed to write {value} to {}: {error}", dir.join(file).display()))
    })
}

/// The cgroup (one directory per v1 hierarchy, or one v2 directory) of one runtime.
#[derive(Debug)]
pub(crate) struct RuntimeCgroup {
    dirs: Vec<PathBuf>,
    v2: bool,
}

impl RuntimeCgroup {
    /// Returns the `cgroup.procs` files a process writes its pid to in order to join.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|dir| dir.join("cgroup.procs")).collect()
    }

    /// Returns the host pids of every process in the cgroup.
    pub(crate) fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .dirs
            .iter()
            .filter_map(|dir| fs::read_to_string(dir.join("cgroup.procs")).ok())
            .flat_map(|text| text.lines().filter_map(|line| line.trim().parse().ok()).collect::<Vec<_>>())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Sends SIGKILL to every process in the cgroup (`cgroup.kill` on v2, one by one on v1).
    pub(crate) fn kill_all(&self) {
        if self.v2 && fs::write(self.dirs[0].join("cgroup.kill"), "1").is_ok() {
            return;
        }
        for pid in self.pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// Kills every process until the cgroup is empty, then removes it. Returns false when
    /// processes were still left after `limit`.
    pub(crate) async fn kill_and_remove(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            self.kill_all();
            if self.pids().is_empty() {
                self.remove();
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Blocking variant of [`Self::kill_and_remove`] for callers outside an async runtime.
    pub(crate) fn kill_and_remove_blocking(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            self.kill_all();
            if self.pids().is_empty() {
                self.remove();
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Returns whether the cgroup directories still exist.
    pub(crate) fn exists(&self) -> bool {
        self.dirs.iter().any(|dir| dir.exists())
    }

    /// Removes the cgroup directories; a directory that still has processes stays.
    pub(crate) fn remove(&self) {
        for dir in &self.dirs {
            let _ = fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 1 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn hybrid_without_v2_controllers_uses_v1() {
        let layout = CgroupLayout::from_mountinfo(HYBRID, |_| String::new());
        let CgroupLayout::V1 { roots } = layout else { panic!("expected v1, got {layout:?}") };
        let names: Vec<_> = roots.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["memory", "pids", "cpu"]);
        assert_eq!(roots[2].1, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
    }

    #[test]
    fn v2_with_controllers_wins() {
        let layout = CgroupLayout::from_mountinfo(HYBRID, |_| "cpuset cpu io memory pids".into());
        let CgroupLayout::V2 { root, controllers } = layout else { panic!("expected v2") };
        assert_eq!(root, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(controllers, ["memory", "pids", "cpu"]);
    }

    #[test]
    fn no_cgroup_mounts_means_none() {
        let layout = CgroupLayout::from_mountinfo("22 1 0:5 / /proc rw - proc proc rw\n", |_| String::new());
        assert_eq!(layout, CgroupLayout::None);
    }
}
