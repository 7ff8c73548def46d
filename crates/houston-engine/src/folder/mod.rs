//! The agent folder: `houston.json`, `CLAUDE.md`, skills and `knowledge/`.
//!
//! [`AgentFolder::load`] reads what the prompt needs once at start. Knowledge files are only
//! listed here; their text is read on demand by the knowledge tools and the offline provider.

mod skills;
pub mod transfer;

use std::path::{Path, PathBuf};

use houston_protocol::{AgentDefinition, DefinitionError};

pub use skills::Skill;

/// Largest knowledge file the engine reads, in bytes.
pub const MAX_KNOWLEDGE_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Why an agent folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("agent folder {0} does not exist or is not a directory")]
    NotADirectory(PathBuf),
    #[error("failed to read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Definition { path: PathBuf, source: DefinitionError },
}

/// One file under `knowledge/`, by its path relative to that folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeFile {
    pub relative_path: String,
    pub bytes: u64,
}

/// A loaded agent folder.
#[derive(Debug, Clone)]
pub struct AgentFolder {
    pub root: PathBuf,
    /// `None` when the folder has no `houston.json` (a bare folder run by hand).
    pub definition: Option<AgentDefinition>,
    /// The text of `CLAUDE.md`, empty when the file is absent.
    pub instructions: String,
    pub skills: Vec<Skill>,
    pub knowledge: Vec<KnowledgeFile>,
}

impl AgentFolder {
    /// Loads the folder at `root`.
    ///
    /// # Errors
    /// Returns [`FolderError`] when `root` is not a directory, a file cannot be read, or
    /// `houston.json` is malformed (the error names the file, the field and the problem).
    pub fn load(root: &Path) -> Result<Self, FolderError> {
        if !root.is_dir() {
            return Err(FolderError::NotADirectory(root.to_owned()));
        }
        let definition = load_definition(root)?;
        let instructions = read_optional(&root.join("CLAUDE.md"))?.unwrap_or_default();
        let skills = skills::load_skills(&root.join(".agents/skills"))?;
        let knowledge = list_knowledge(&root.join("knowledge"))?;
        Ok(Self { root: root.to_owned(), definition, instructions, skills, knowledge })
    }

    /// Returns the `knowledge/` directory.
    #[must_use]
    pub fn knowledge_dir(&self) -> PathBuf {
        self.root.join("knowledge")
    }

    /// Returns the declared integrations (toolkit slugs), empty without a definition.
    #[must_use]
    pub fn integrations(&self) -> Vec<String> {
        self.definition.as_ref().map(|d| d.integrations.clone()).unwrap_or_default()
    }
}

fn load_definition(root: &Path) -> Result<Option<AgentDefinition>, FolderError> {
    let path = root.join("houston.json");
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    AgentDefinition::parse(&text)
        .map(Some)
        .map_err(|source| FolderError::Definition { path, source })
}

/// Reads a UTF-8 file, returning `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, FolderError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FolderError::Read { path: path.to_owned(), source }),
    }
}

/// Lists the regular files under `dir` recursively, sorted by path. Symlinks are listed
/// only when they resolve to a file inside `dir`.
pub fn list_knowledge(dir: &Path) -> Result<Vec<KnowledgeFile>, FolderError> {
    let Ok(canonical_root) = dir.canonicalize() else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    let mut pending = vec![canonical_root.clone()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(|source| FolderError::Read { path: current.clone(), source })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(resolved) = path.canonicalize() else { continue };
            if !resolved.starts_with(&canonical_root) {
                continue;
            }
            let Ok(metadata) = resolved.metadata() else { continue };
            if metadata.is_dir() {
                if resolved == path {
                    pending.push(path);
                }
            } else if metadata.is_file() {
                let relative = path.strip_prefix(&canonical_root).unwrap_or(&path);
                files.push(KnowledgeFile {
                    relative_path: relative.to_string_lossy().into_owned(),
                    bytes: metadata.len(),
                });
            }
        }
    }
    files.sort_by(|a, b| a.relative_path.cmp(&b.relative_path));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_folder_loads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let folder = AgentFolder::load(dir.path()).unwrap();
        assert!(folder.definition.is_none());
        assert!(folder.instructions.is_empty());
        assert!(folder.skills.is_empty());
        assert!(folder.knowledge.is_empty());
    }

    #[test]
    fn malformed_definition_names_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("houston.json"), r#"{"id": "a", "name": 5}"#).unwrap();
        let error = AgentFolder::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("houston.json"), "{error}");
        assert!(error.contains("`name`"), "{error}");
        assert!(error.contains("invalid type"), "{error}");
    }

    #[test]
    fn knowledge_listing_skips_escaping_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let knowledge = dir.path().join("knowledge");
        std::fs::create_dir_all(knowledge.join("policies")).unwrap();
        std::fs::write(knowledge.join("policies/leave.md"), "leave").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), knowledge.join("link.txt")).unwrap();
        let files = list_knowledge(&knowledge).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.relative_path.as_str()).collect();
        assert_eq!(names, ["policies/leave.md"]);
    }
}
