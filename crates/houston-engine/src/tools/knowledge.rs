//! The built-in knowledge tools: `list_knowledge` and `read_knowledge`.
//!
//! Both see only `knowledge/`. A path is resolved with symlinks followed and rejected unless
//! the result is still inside `knowledge/`, so neither `..`, an absolute path nor a symlink
//! reaches `.houston/` or anything else.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{BrokerTool, ToolBroker, ToolContext, ToolOutput};
use crate::folder::list_knowledge;
use crate::providers::ToolSpec;

/// Name of the listing tool.
pub const LIST_TOOL: &str = "list_knowledge";
/// Name of the reading tool.
pub const READ_TOOL: &str = "read_knowledge";
/// Largest part of a file `read_knowledge` returns, in bytes.
pub const MAX_READ_BYTES: usize = 200 * 1024;

/// Lists and reads the files under one `knowledge/` folder.
pub struct KnowledgeBroker {
    dir: PathBuf,
}

impl KnowledgeBroker {
    /// Serves the files under `dir`.
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn list(&self) -> ToolOutput {
        match list_knowledge(&self.dir) {
            Ok(files) if files.is_empty() => ToolOutput::Ok("There are no knowledge files.".into()),
            Ok(files) => {
                let lines: Vec<String> = files.iter().map(|f| format!("{} ({} bytes)", f.relative_path, f.bytes)).collect();
                ToolOutput::Ok(lines.join("\n"))
            }
            Err(error) => ToolOutput::Error(format!("failed to list knowledge files: {error}")),
        }
    }

    fn read(&self, input: &Value) -> ToolOutput {
        let Some(requested) = input["path"].as_str() else {
            return ToolOutput::Error("missing string field `path`: give a path from list_knowledge".into());
        };
        let path = match resolve_inside(&self.dir, requested) {
            Ok(path) => path,
            Err(reason) => return ToolOutput::Error(format!("cannot read {requested:?}: {reason}")),
        };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => return ToolOutput::Error(format!("failed to read {requested:?}: {error}")),
        };
        let truncated = bytes.len() > MAX_READ_BYTES;
        let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_READ_BYTES)]).into_owned();
        if truncated {
            text.push_str(&format!("\n[truncated: the file has {} bytes, only the first {MAX_READ_BYTES} are shown]", bytes.len()));
        }
        ToolOutput::Ok(text)
    }
}

/// The error for a path that does not name a file inside `knowledge/`. A file that exists
/// outside it gets the same text as a missing one, so the tool cannot be used to probe
/// which other files of the agent folder exist.
const NOT_FOUND: &str = "no such file in knowledge/";

/// Resolves `requested` under `root` with symlinks followed, and rejects any result outside
/// `root` or that is not a regular file.
///
/// # Errors
/// Returns the reason as text: a path that climbs out of `root` by `..` is rejected before
/// the file system is touched, and a missing file gets the same [`NOT_FOUND`] text as one
/// that a symlink places outside `root`.
pub fn resolve_inside(root: &Path, requested: &str) -> Result<PathBuf, &'static str> {
    if requested.is_empty() || requested.contains('\0') {
        return Err("the path is empty or contains NUL");
    }
    if Path::new(requested).is_absolute() {
        return Err("absolute paths are not allowed; use a path relative to knowledge/");
    }
    if climbs_out(Path::new(requested)) {
        return Err("the path leaves knowledge/");
    }
    let root = root.canonicalize().map_err(|_| "there is no knowledge folder")?;
    let resolved = root.join(requested).canonicalize().map_err(|_| NOT_FOUND)?;
    if !resolved.starts_with(&root) {
        return Err(NOT_FOUND);
    }
    if !resolved.is_file() {
        return Err("not a regular file");
    }
    Ok(resolved)
}

/// Checks, without the file system, whether a relative path's `..` components go above its
/// starting folder.
fn climbs_out(path: &Path) -> bool {
    let mut depth = 0usize;
    for component in path.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::ParentDir if depth == 0 => return true,
            Component::ParentDir => depth -= 1,
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    false
}

#[async_trait]
impl ToolBroker for KnowledgeBroker {
    fn name(&self) -> &str {
        "knowledge"
    }

    async fn list_tools(&self, _context: &ToolContext) -> Result<Vec<BrokerTool>, String> {
        let list = ToolSpec {
            name: LIST_TOOL.into(),
            description: "List the agent's knowledge files with their sizes.".into(),
            input_schema: json!({"type": "object", "properties": {}}),
        };
        let read = ToolSpec {
            name: READ_TOOL.into(),
            description: "Read one knowledge file by the path list_knowledge shows.".into(),
            input_schema: json!({
                "type": "object",
                "properties": {"path": {"type": "string", "description": "Path relative to knowledge/"}},
                "required": ["path"],
            }),
        };
        Ok(vec![BrokerTool { spec: list, toolkit: None }, BrokerTool { spec: read, toolkit: None }])
    }

    async fn call(&self, _context: &ToolContext, tool: &str, input: &Value) -> ToolOutput {
        match tool {
            LIST_TOOL => self.list(),
            READ_TOOL => self.read(input),
            other => ToolOutput::Error(format!("unknown tool {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("knowledge/sub")).unwrap();
        std::fs::write(dir.path().join("knowledge/sub/handbook.md"), "20 days").unwrap();
        std::fs::create_dir_all(dir.path().join(".houston/sessions/u1")).unwrap();
        std::fs::write(dir.path().join(".houston/sessions/u1/s1.jsonl"), "secret").unwrap();
        dir
    }

    #[test]
    fn reads_file_inside_knowledge() {
        let dir = folder();
        let broker = KnowledgeBroker::new(dir.path().join("knowledge"));
        assert_eq!(broker.read(&json!({"path": "sub/handbook.md"})), ToolOutput::Ok("20 days".into()));
    }

    #[test]
    fn rejects_escapes() {
        let dir = folder();
        let knowledge = dir.path().join("knowledge");
        std::os::unix::fs::symlink(dir.path().join(".houston"), knowledge.join("link")).unwrap();
        let broker = KnowledgeBroker::new(knowledge);
        for path in ["../.houston/sessions/u1/s1.jsonl", "/etc/passwd", "link/sessions/u1/s1.jsonl", "sub", ""] {
            let output = broker.read(&json!({"path": path}));
            assert!(matches!(output, ToolOutput::Error(_)), "{path}: {output:?}");
        }
    }

    /// Returns the error text of reading `path`, with the path itself replaced, so two
    /// errors can be compared byte for byte.
    fn read_error(broker: &KnowledgeBroker, path: &str) -> String {
        match broker.read(&json!({"path": path})) {
            ToolOutput::Error(text) => text.replace(&format!("{path:?}"), "PATH"),
            other => panic!("{path}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn outside_file_looks_missing() {
        let dir = folder();
        let knowledge = dir.path().join("knowledge");
        std::os::unix::fs::symlink(dir.path().join(".houston"), knowledge.join("link")).unwrap();
        let broker = KnowledgeBroker::new(knowledge);

        let cases = [
            ("link/sessions/u1/s1.jsonl", "link/sessions/u1/s2.jsonl"),
            ("link/sessions/u1", "link/sessions/u2"),
            ("../.houston/sessions/u1/s1.jsonl", "../.houston/sessions/u1/s2.jsonl"),
            ("sub/../../.houston/sessions/u1/s1.jsonl", "sub/../../.houston/sessions/u1/s2.jsonl"),
        ];
        for (existing, missing) in cases {
            assert!(dir.path().join("knowledge").join(existing).exists(), "{existing} exists");
            let existing_error = read_error(&broker, existing);
            let missing_error = read_error(&broker, missing);
            assert_eq!(existing_error, missing_error, "{existing} vs {missing}");
        }
        assert_eq!(read_error(&broker, "no-such.md"), read_error(&broker, "link/sessions/u1/s1.jsonl"));
    }

    #[test]
    fn missing_path_field_is_an_error() {
        let dir = folder();
        let broker = KnowledgeBroker::new(dir.path().join("knowledge"));
        assert!(matches!(broker.read(&json!({})), ToolOutput::Error(_)));
    }

    #[test]
    fn lists_files() {
        let dir = folder();
        let broker = KnowledgeBroker::new(dir.path().join("knowledge"));
        let ToolOutput::Ok(text) = broker.list() else { panic!("listing failed") };
        assert!(text.contains("sub/handbook.md (7 bytes)"), "{text}");
    }
}
