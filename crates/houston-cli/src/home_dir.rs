//! Access to the home folder: only the user running houston may enter it, because it
//! contains the database (with the private key that signs access tokens), the agent
//! volumes, the egress log and the outbox.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use nix::sys::stat::Mode;

/// Mode of the home folder: read, write and search for the owner only.
const HOME_MODE: u32 = 0o700;

/// Sets the process's file mode creation mask to 0o077, so every file houston creates
/// (database, write-ahead log, egress log, outbox, stored credentials) is 0600 and every
/// folder 0700. Child processes, runtimes included, inherit the mask.
// NOTE: as root with the namespace backend, a file that houston (`houston agent import`,
// say) writes into a volume already handed to the agent's sandbox uid stays root-owned
// with mode 0600. The sandboxed engine cannot read it, because the runtime re-owns a
// volume only when the volume's top folder has another owner.
pub fn restrict_umask() {
    nix::sys::stat::umask(Mode::from_bits_truncate(0o077));
}

/// Creates `home` with mode 0700, or changes an existing one whose group or others have
/// any access to 0700.
///
/// # Errors
/// A folder that cannot be created, read or changed.
pub fn secure_home(home: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(HOME_MODE)
        .create(home)
        .with_context(|| format!("failed to create {}", home.display()))?;
    let metadata = std::fs::metadata(home).with_context(|| format!("failed to read {}", home.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(HOME_MODE))
        .with_context(|| format!("failed to change the mode of {} to 0700", home.display()))?;
    tracing::info!(home = %home.display(), old_mode = format!("{mode:o}"), "changed the home folder's mode to 0700");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_home_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("a/home");
        secure_home(&home).unwrap();
        assert_eq!(mode_of(&home), 0o700);
    }

    #[test]
    fn open_home_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        secure_home(&home).unwrap();
        assert_eq!(mode_of(&home), 0o700);
    }
}
