//! Import and export between a Houston agent definition folder and an agent folder.
//!
//! A definition folder is what the Houston agent store ships: `houston.json`, `CLAUDE.md`,
//! skills and other files. Importing copies it, writes its `agentSeeds` files (never
//! overwriting), creates `knowledge/` and the instance metadata `.houston/agent.json`.
//! Exporting copies an agent folder back without `.houston/`, so no session, config or
//! instance metadata leaves the agent.

use std::path::{Path, PathBuf};

use houston_protocol::AgentDefinition;

use super::{AgentFolder, FolderError, load_definition};

/// Error of an import, export or listing.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{0} has no houston.json, so it is not a Houston agent definition folder")]
    MissingDefinition(PathBuf),
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error("destination {0} already exists and is not empty; choose a new folder")]
    DestinationNotEmpty(PathBuf),
    #[error("knowledge file {0} is not a readable regular file")]
    BadKnowledgeFile(PathBuf),
    #[error("failed to write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Summary of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub agent_id: String,
    pub name: String,
    pub files_copied: usize,
    pub seeds_written: usize,
    pub knowledge_files: usize,
}

/// Imports the definition folder `source` into the new agent folder `destination`, adding
/// `knowledge` files under `knowledge/`.
///
/// # Errors
/// Returns [`TransferError`] before writing anything when `source` has no valid
/// `houston.json`, `destination` is not empty, or a knowledge file is not a regular file.
pub fn import(source: &Path, destination: &Path, knowledge: &[PathBuf]) -> Result<ImportReport, TransferError> {
    let definition = require_definition(source)?;
    ensure_empty_destination(destination)?;
    for file in knowledge {
        if !file.is_file() {
            return Err(TransferError::BadKnowledgeFile(file.clone()));
        }
    }

    let files_copied = copy_tree(source, destination, &|relative| {
        relative.starts_with(".git") || relative.starts_with(".houston/sessions")
    })?;
    let mut seeds_written = 0;
    for (relative, content) in &definition.agent_seeds {
        let target = destination.join(relative);
        if target.exists() {
            continue;
        }
        write_file(&target, content.as_bytes())?;
        seeds_written += 1;
    }
    let knowledge_dir = destination.join("knowledge");
    create_dir(&knowledge_dir)?;
    for file in knowledge {
        let name = file.file_name().expect("checked to be a regular file");
        let target = knowledge_dir.join(name);
        std::fs::copy(file, &target).map_err(|source| TransferError::Write { path: target, source })?;
    }
    write_instance_metadata(destination, &definition)?;

    Ok(ImportReport {
        agent_id: definition.id.clone(),
        name: definition.name.clone(),
        files_copied,
        seeds_written,
        knowledge_files: knowledge.len(),
    })
}

/// Exports the agent folder `agent_dir` as a definition folder at `destination`, leaving out
/// `.houston/` (sessions, config and instance metadata). Returns the number of files copied.
///
/// # Errors
/// Returns [`TransferError`] when `agent_dir` has no valid `houston.json` or `destination`
/// is not empty.
pub fn export(agent_dir: &Path, destination: &Path) -> Result<usize, TransferError> {
    require_definition(agent_dir)?;
    ensure_empty_destination(destination)?;
    copy_tree(agent_dir, destination, &|relative| {
        relative.starts_with(".houston") || relative.starts_with(".git")
    })
}

/// One agent folder found by [`list`].
#[derive(Debug)]
pub struct ListedAgent {
    pub dir: PathBuf,
    pub folder: Result<AgentFolder, FolderError>,
}

/// Lists the agent folders directly under `dir` (sub-folders with a `houston.json`),
/// sorted by path. A folder that fails to load is listed with its error.
///
/// # Errors
/// Returns [`TransferError`] when `dir` cannot be read.
pub fn list(dir: &Path) -> Result<Vec<ListedAgent>, TransferError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|source| FolderError::Read { path: dir.to_owned(), source })?;
    let mut agents: Vec<ListedAgent> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.join("houston.json").is_file())
        .map(|dir| ListedAgent { folder: AgentFolder::load(&dir), dir })
        .collect();
    agents.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(agents)
}

fn require_definition(dir: &Path) -> Result<AgentDefinition, TransferError> {
    load_definition(dir)?.ok_or_else(|| TransferError::MissingDefinition(dir.to_owned()))
}

fn ensure_empty_destination(destination: &Path) -> Result<(), TransferError> {
    match std::fs::read_dir(destination) {
        Ok(mut entries) => match entries.next() {
            Some(_) => Err(TransferError::DestinationNotEmpty(destination.to_owned())),
            None => Ok(()),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => create_dir(destination),
        Err(_) => Err(TransferError::DestinationNotEmpty(destination.to_owned())),
    }
}

/// Copies regular files and directories from `source` to `destination`, skipping symlinks
/// (a definition must not smuggle in links out of the folder) and every path for which
/// `skip` returns true. Returns the number of files copied.
fn copy_tree(source: &Path, destination: &Path, skip: &dyn Fn(&Path) -> bool) -> Result<usize, TransferError> {
    let mut copied = 0;
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let current = source.join(&relative);
        let entries = std::fs::read_dir(&current)
            .map_err(|source| FolderError::Read { path: current.clone(), source })?;
        for entry in entries.flatten() {
            let child = relative.join(entry.file_name());
            let Ok(file_type) = entry.file_type() else { continue };
            if skip(&child) || file_type.is_symlink() {
                continue;
            }
            let target = destination.join(&child);
            if file_type.is_dir() {
                create_dir(&target)?;
                pending.push(child);
            } else if file_type.is_file() {
                std::fs::copy(entry.path(), &target)
                    .map_err(|source| TransferError::Write { path: target, source })?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}

fn write_instance_metadata(destination: &Path, definition: &AgentDefinition) -> Result<(), TransferError> {
    let imported_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let metadata = serde_json::json!({
        "id": definition.id,
        "name": definition.name,
        "version": definition.version,
        "imported_at": imported_at,
    });
    let text = serde_json::to_string_pretty(&metadata).expect("JSON values always serialize");
    write_file(&destination.join(".houston/agent.json"), text.as_bytes())
}

fn create_dir(path: &Path) -> Result<(), TransferError> {
    std::fs::create_dir_all(path).map_err(|source| TransferError::Write { path: path.to_owned(), source })
}

fn write_file(path: &Path, content: &[u8]) -> Result<(), TransferError> {
    if let Some(parent) = path.parent() {
        create_dir(parent)?;
    }
    std::fs::write(path, content).map_err(|source| TransferError::Write { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition_folder(json: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("houston.json"), json).unwrap();
        std::fs::write(dir.path().join("CLAUDE.md"), "You are helpful.").unwrap();
        dir
    }

    #[test]
    fn import_writes_seeds_and_metadata() {
        let source = definition_folder(
            r#"{"id": "hr", "name": "HR", "agentSeeds": {"outputs.json": "[]", "config/a.json": "{}"}}"#,
        );
        let target = tempfile::tempdir().unwrap();
        let destination = target.path().join("hr");
        let report = import(source.path(), &destination, &[]).unwrap();
        assert_eq!(report.seeds_written, 2);
        assert_eq!(std::fs::read_to_string(destination.join("config/a.json")).unwrap(), "{}");
        assert!(destination.join(".houston/agent.json").is_file());
        assert!(destination.join("knowledge").is_dir());
        assert!(AgentFolder::load(&destination).unwrap().definition.is_some());
    }

    #[test]
    fn import_rejects_non_empty_destination() {
        let source = definition_folder(r#"{"id": "hr", "name": "HR"}"#);
        let destination = tempfile::tempdir().unwrap();
        std::fs::write(destination.path().join("x"), "x").unwrap();
        let error = import(source.path(), destination.path(), &[]).unwrap_err();
        assert!(matches!(error, TransferError::DestinationNotEmpty(_)), "{error}");
    }

    #[test]
    fn import_skips_symlinks() {
        let source = definition_folder(r#"{"id": "hr", "name": "HR"}"#);
        std::os::unix::fs::symlink("/etc/passwd", source.path().join("passwd")).unwrap();
        let target = tempfile::tempdir().unwrap();
        import(source.path(), &target.path().join("hr"), &[]).unwrap();
        assert!(!target.path().join("hr/passwd").exists());
    }

    #[test]
    fn export_leaves_out_houston_folder() {
        let source = definition_folder(r#"{"id": "hr", "name": "HR"}"#);
        let target = tempfile::tempdir().unwrap();
        let agent = target.path().join("agent");
        import(source.path(), &agent, &[]).unwrap();
        std::fs::create_dir_all(agent.join(".houston/sessions/u1")).unwrap();
        std::fs::write(agent.join(".houston/sessions/u1/s1.jsonl"), "{}\n").unwrap();
        let exported = target.path().join("out");
        export(&agent, &exported).unwrap();
        assert!(exported.join("houston.json").is_file());
        assert!(!exported.join(".houston").exists());
    }
}
