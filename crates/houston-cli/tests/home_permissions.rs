//! Access to the home folder of `houston up --demo`: the database contains the private key that
//! signs access tokens, so no other local user may read it.

mod flow_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use flow_support::Houston;
use houston_testkit::anthropic::{Script, StandIn};
use serde_json::json;

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Returns every regular file below `dir`.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let file_type = entry.file_type().unwrap();
            if file_type.is_dir() {
                folders.push(entry.path());
            } else if file_type.is_file() {
                files.push(entry.path());
            }
        }
    }
    files
}

/// Creates a folder that every user may enter, so only the home folder's own mode keeps
/// other users out.
fn open_parent() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

async fn start_demo(home: &Path) -> (Houston, StandIn) {
    let stand_in = StandIn::start().await;
    let env = [("ANTHROPIC_API_KEY", "test-key".to_owned()), ("ANTHROPIC_BASE_URL", stand_in.base_url())];
    (Houston::start(home, &["--demo"], &env), stand_in)
}

#[tokio::test]
async fn fresh_home_is_private() {
    let dir = open_parent();
    let home = dir.path().join("home");
    let (houston, stand_in) = start_demo(&home).await;
    let juan = houston.login("juan@acme.test").await;
    // A turn makes the sandboxed engine write its session into the volume, under the mask
    // it inherits.
    stand_in.push(Script::new().text(&["Hello."]).end_turn(1).build());
    let events = houston.chat(&juan, json!({"agent_id": "hr", "message": "hi"})).await;
    assert_eq!(flow_support::types(&events).last(), Some(&"turn.completed"), "{events:?}");

    assert_eq!(mode_of(&home), 0o700, "the home folder is for its owner only");
    let databases: Vec<PathBuf> = files_below(&home)
        .into_iter()
        .filter(|path| path.file_name().unwrap().to_string_lossy().starts_with("houston.db"))
        .collect();
    assert!(databases.iter().any(|path| path.ends_with("houston.db")), "houston.db exists: {databases:?}");
    for database in &databases {
        assert_eq!(mode_of(database), 0o600, "{}", database.display());
    }
    for file in files_below(&home) {
        assert_eq!(mode_of(&file) & 0o077, 0, "{} is open to other users", file.display());
    }

    if nix::unistd::geteuid().is_root() {
        let read = Command::new("runuser")
            .args(["-u", "nobody", "--", "cat"])
            .arg(home.join("houston.db"))
            .output()
            .expect("run runuser");
        assert!(!read.status.success(), "nobody read the database");
        assert!(read.stdout.is_empty(), "nobody got {} bytes of the database", read.stdout.len());
    } else {
        eprintln!("skipped the read as nobody: runuser needs root");
    }
}

#[tokio::test]
async fn open_home_is_tightened() {
    let dir = open_parent();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();

    let (houston, _stand_in) = start_demo(&home).await;

    assert_eq!(mode_of(&home), 0o700);
    let log = houston.log();
    assert!(log.contains("changed the home folder's mode to 0700"), "the change is logged: {log}");
}

