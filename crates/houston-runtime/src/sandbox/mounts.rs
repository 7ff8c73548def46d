//! Building the sandbox's root file system inside its new mount namespace.
//!
//! The root is a fresh tmpfs holding only the plan's bind mounts, a private `/tmp` and a
//! `/proc` of the sandbox's own PID namespace. After `pivot_root` the host's root is
//! detached, so no path inside the sandbox leads back to it.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::statvfs::{FsFlags, statvfs};

use super::init::InitError;
use super::plan::{Bind, SandboxPlan, inside};

/// A directory with mode 000 that shields [`OLD_ROOT`]. The mount point itself cannot shield
/// it: path lookup checks the permissions of the mounted root (the host's `/`), not of the
/// directory underneath.
const OLD_ROOT_PARENT: &str = "/.host";
/// Mount point of the host's root between `pivot_root` and [`detach_host_root`].
const OLD_ROOT: &str = "/.host/root";

/// Options of the root tmpfs, which contains only directories and mount points.
const ROOT_TMPFS_OPTIONS: &str = "mode=0755,size=1m";

/// Builds the root described by `plan` and makes it the process's root.
pub(super) fn build_root(plan: &SandboxPlan) -> Result<(), InitError> {
    let root = plan.mount_point.as_path();
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(|errno| InitError::sys("make the host mounts private", errno))?;
    mount(Some("tmpfs"), root, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(ROOT_TMPFS_OPTIONS))
        .map_err(|errno| InitError::sys("mount the root tmpfs", errno))?;

    for bind in &plan.binds {
        bind_mount(root, bind)?;
    }

    let tmp = inside(root, Path::new("/tmp"));
    create_dir(&tmp)?;
    let tmp_options = format!("mode=1777,size={}", plan.tmp_size_bytes);
    mount(Some("tmpfs"), &tmp, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(tmp_options.as_str()))
        .map_err(|errno| InitError::sys("mount /tmp", errno))?;

    let proc_dir = inside(root, Path::new("/proc"));
    create_dir(&proc_dir)?;
    let proc_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), &proc_dir, Some("proc"), proc_flags, none)
        .map_err(|errno| InitError::sys("mount /proc", errno))?;

    pivot_into(root)
}

/// Detaches the host's root (parked at [`OLD_ROOT`] by [`build_root`]), removes its mount
/// point and makes the new root read-only.
///
/// Detaching waits for an RCU grace period, several milliseconds, so the init does it while
/// the engine already starts. Until then the old root is out of the engine's reach: the
/// directory above its mount point has mode 000 and belongs to the sandbox's root, and the
/// engine runs as uid 1000 without capabilities.
pub(super) fn detach_host_root() -> Result<(), InitError> {
    umount2(OLD_ROOT, MntFlags::MNT_DETACH).map_err(|errno| InitError::sys("detach the host root", errno))?;
    fs::remove_dir(OLD_ROOT).map_err(|error| InitError::io(format!("remove {OLD_ROOT}"), error))?;
    fs::remove_dir(OLD_ROOT_PARENT).map_err(|error| InitError::io(format!("remove {OLD_ROOT_PARENT}"), error))?;
    let none: Option<&str> = None;
    let read_only = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(none, "/", none, read_only, none).map_err(|errno| InitError::sys("make the root read-only", errno))
}

/// Makes `root` the root and parks the old one at [`OLD_ROOT`] inside it.
fn pivot_into(root: &Path) -> Result<(), InitError> {
    nix::unistd::chdir(root).map_err(|errno| InitError::sys("enter the new root", errno))?;
    let parked = &OLD_ROOT[1..];
    fs::DirBuilder::new()
        .mode(0o000)
        .recursive(true)
        .create(parked)
        .map_err(|error| InitError::io(format!("create {OLD_ROOT}"), error))?;
    nix::unistd::pivot_root(".", parked).map_err(|errno| InitError::sys("pivot_root", errno))?;
    nix::unistd::chdir("/").map_err(|errno| InitError::sys("enter /", errno))
}

fn create_dir(path: &Path) -> Result<(), InitError> {
    fs::create_dir_all(path).map_err(|error| InitError::io(format!("create {}", path.display()), error))
}

fn bind_mount(root: &Path, bind: &Bind) -> Result<(), InitError> {
    let target = inside(root, &bind.target);
    let description = || format!("bind {} at {}", bind.source.display(), bind.target.display());
    let metadata = fs::metadata(&bind.source).map_err(|error| InitError::io(description(), error))?;
    if metadata.is_dir() {
        create_dir(&target)?;
    } else {
        if let Some(parent) = target.parent() {
            create_dir(parent)?;
        }
        if !target.exists() {
            fs::File::create(&target).map_err(|error| InitError::io(description(), error))?;
        }
    }

    let none: Option<&str> = None;
    mount(Some(&bind.source), &target, none, MsFlags::MS_BIND, none)
        .map_err(|errno| InitError::sys(&description(), errno))?;
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NOSUID | locked_flags(&target)?;
    if !bind.writable {
        flags |= MsFlags::MS_RDONLY;
    }
    if !bind.device {
        flags |= MsFlags::MS_NODEV;
    }
    mount(none, &target, none, flags, none).map_err(|errno| InitError::sys(&format!("restrict {}", bind.target.display()), errno))
}

/// Returns the flags the source mount already has. Inside a user namespace a remount must
/// keep them (the kernel locks them), or it fails with `EPERM`.
fn locked_flags(target: &Path) -> Result<MsFlags, InitError> {
    let stats = statvfs(target).map_err(|errno| InitError::sys("statvfs", errno))?;
    let pairs = [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    let flags = stats.flags();
    Ok(pairs.iter().filter(|(fs, _)| flags.contains(*fs)).fold(MsFlags::empty(), |all, (_, ms)| all | *ms))
}
