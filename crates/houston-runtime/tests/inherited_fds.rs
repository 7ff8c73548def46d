//! Tests that a runtime inherits no descriptor of the process that started it.
//!
//! The starting process opens a folder without `O_CLOEXEC`, as a careless library might.
//! Every process of the runtime must be unable to see it in `/proc/<pid>/fd`.

mod common;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use common::{Home, descendants};
use houston_runtime::{NamespaceBackend, ProcessBackend, ResourceLimits, RuntimeBackend};
use nix::fcntl::{FcntlArg, FdFlag, fcntl};

const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Opens a folder holding a canary file and clears the descriptor's close-on-exec flag.
fn open_inheritable_canary(home: &Home) -> (OwnedFd, PathBuf) {
    let canary = home.dir.path().join("canary-folder");
    std::fs::create_dir_all(&canary).unwrap();
    std::fs::write(canary.join("secret.txt"), "another agent's data").unwrap();
    let folder = OwnedFd::from(std::fs::File::open(&canary).unwrap());
    fcntl(&folder, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
    let flags = fcntl(&folder, FcntlArg::F_GETFD).unwrap();
    assert_eq!(flags & nix::libc::FD_CLOEXEC, 0, "the canary descriptor is inheritable");
    (folder, canary)
}

/// Returns each open descriptor of `pid` with the target `/proc` shows for it.
fn open_fds(pid: u32) -> BTreeMap<u32, String> {
    let mut fds = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return fds };
    for entry in entries.flatten() {
        let Some(number) = entry.file_name().to_str().and_then(|name| name.parse().ok()) else { continue };
        let Ok(target) = std::fs::read_link(entry.path()) else { continue };
        fds.insert(number, target.display().to_string());
    }
    fds
}

/// Starts a runtime with the canary descriptor open and checks every process of it.
async fn assert_no_inherited_fds(backend: &dyn RuntimeBackend) {
    let home = Home::new();
    let (canary_fd, canary) = open_inheritable_canary(&home);
    let launch = home.launch("hr");
    let handle = backend.start(&launch).await.unwrap_or_else(|error| panic!("start hr: {error}"));

    let main_pid = handle.instance.pid().expect("the runtime has a pid");
    let mut pids = vec![main_pid];
    pids.extend(descendants(main_pid));
    let canary_text = canary.display().to_string();
    for pid in &pids {
        for (number, target) in open_fds(*pid) {
            assert!(!target.starts_with(&canary_text), "process {pid} inherited fd {number} -> {target}");
            // Descriptors 0-3 are the standard streams and the token pipe; the engine's own
            // descriptors above them are its listening socket.
            assert!(number < 4 || target.starts_with("socket:"), "process {pid} has unexpected fd {number} -> {target}");
        }
    }

    handle.instance.stop(Duration::from_secs(2)).await.unwrap();
    drop(canary_fd);
}

#[tokio::test]
async fn namespace_runtime_inherits_no_fds() {
    let backend = NamespaceBackend::new(common::namespace_config(ResourceLimits::default()));
    tokio::time::timeout(TEST_LIMIT, assert_no_inherited_fds(&backend)).await.expect("test timed out");
}

#[tokio::test]
async fn process_runtime_inherits_no_fds() {
    let backend = ProcessBackend::new();
    tokio::time::timeout(TEST_LIMIT, assert_no_inherited_fds(&backend)).await.expect("test timed out");
}
