//! Skills: `.agents/skills/<name>/SKILL.md`, a front matter block followed by a body.
//!
//! The front matter is the YAML subset Houston skills use: one `key: value` per line, values
//! optionally quoted. Nested YAML is kept as raw text, since the prompt needs only `name` and
//! `description`.

use std::collections::BTreeMap;
use std::path::Path;

use super::{FolderError, read_optional};

/// One skill of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skill {
    /// The folder name under `.agents/skills/`.
    pub folder: String,
    /// `name` from the front matter, or the folder name.
    pub name: String,
    pub description: String,
    /// Every top-level front matter key with its raw value.
    pub front_matter: BTreeMap<String, String>,
    pub body: String,
}

/// Loads every `<dir>/<name>/SKILL.md`, sorted by folder name. A missing `dir` means no skills.
pub(super) fn load_skills(dir: &Path) -> Result<Vec<Skill>, FolderError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(FolderError::Read { path: dir.to_owned(), source }),
    };
    let mut skills = Vec::new();
    for entry in entries.flatten() {
        let folder = entry.file_name().to_string_lossy().into_owned();
        let Some(text) = read_optional(&entry.path().join("SKILL.md"))? else {
            continue;
        };
        skills.push(parse_skill(folder, &text));
    }
    skills.sort_by(|a, b| a.folder.cmp(&b.folder));
    Ok(skills)
}

/// Splits a SKILL.md into front matter and body.
pub(super) fn parse_skill(folder: String, text: &str) -> Skill {
    let (front_matter, body) = split_front_matter(text);
    let name = front_matter.get("name").cloned().unwrap_or_else(|| folder.clone());
    let description = front_matter.get("description").cloned().unwrap_or_default();
    Skill { folder, name, description, front_matter, body: body.trim().to_owned() }
}

fn split_front_matter(text: &str) -> (BTreeMap<String, String>, &str) {
    let mut fields = BTreeMap::new();
    let Some(rest) = text.strip_prefix("---\n").or_else(|| text.strip_prefix("---\r\n")) else {
        return (fields, text);
    };
    let Some(end) = rest.find("\n---") else {
        return (fields, text);
    };
    let header = &rest[..end];
    let body = rest[end + 4..].trim_start_matches(['-', '\r']).strip_prefix('\n').unwrap_or("");
    for line in header.lines() {
        if line.starts_with([' ', '\t', '#']) {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            fields.insert(key.trim().to_owned(), unquote(value.trim()));
        }
    }
    (fields, body)
}

fn unquote(value: &str) -> String {
    let quoted = value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')));
    if quoted { value[1..value.len() - 1].to_owned() } else { value.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_front_matter_and_body() {
        let text = "---\nname: answer-a-policy-question\ndescription: \"Answer a policy question: fast.\"\nintegrations: [slack]\n---\n\n# Body\n\nText.\n";
        let skill = parse_skill("folder".into(), text);
        assert_eq!(skill.name, "answer-a-policy-question");
        assert_eq!(skill.description, "Answer a policy question: fast.");
        assert_eq!(skill.front_matter["integrations"], "[slack]");
        assert_eq!(skill.body, "# Body\n\nText.");
    }

    #[test]
    fn file_without_front_matter_uses_folder_name() {
        let skill = parse_skill("plain".into(), "Just a body");
        assert_eq!(skill.name, "plain");
        assert_eq!(skill.body, "Just a body");
    }
}
