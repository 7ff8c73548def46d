//! The agent definition: Houston's `houston.json`.
//!
//! A definition names the agent (`id`, `name`, `description`, `icon`, `category`, …) and the
//! integrations it uses, each of which becomes a toolkit offered to the model. Its
//! `agentSeeds` are files, keyed by a path relative to the agent folder, that an import writes
//! once.
//!
//! Parsing checks every field and reports the first problem with the JSON path of the field.
//! Seed paths are checked so that an import can never write outside the agent folder.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, validate_id};

/// A parsed and validated `houston.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentDefinition {
    /// The definition's own id, for example `people`. It is a valid [`AgentId`] pattern.
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Files written into the agent folder on import, path to content.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agent_seeds: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Toolkit slugs such as `slack` or `googlecalendar`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrations: Vec<String>,
    /// Fields this version does not interpret, kept so that an export round-trips.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Rejection of a `houston.json`. `field` is the JSON path of the offending value (`.` for
/// the document itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct DefinitionError {
    pub field: String,
    pub reason: String,
}

impl AgentDefinition {
    /// Parses and validates the text of a `houston.json`.
    ///
    /// # Errors
    /// Returns a [`DefinitionError`] naming the field and the problem when the JSON is
    /// malformed, a field has the wrong type, a required field is missing, `id` does not match
    /// the id pattern, an integration slug is invalid, or a seed path is not a plain relative
    /// path inside the agent folder.
    pub fn parse(text: &str) -> Result<Self, DefinitionError> {
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        let definition: Self = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let path = error.path().to_string();
            DefinitionError { field: path, reason: error.into_inner().to_string() }
        })?;
        definition.validate()?;
        Ok(definition)
    }

    /// Returns the definition's id as an [`AgentId`].
    #[must_use]
    pub fn agent_id(&self) -> AgentId {
        AgentId::parse(self.id.clone()).expect("validated at parse time")
    }

    fn validate(&self) -> Result<(), DefinitionError> {
        let invalid = |field: String, reason: String| Err(DefinitionError { field, reason });
        if let Err(error) = validate_id(&self.id) {
            return invalid("id".into(), format!("{:?} is not a valid agent id: {error}", self.id));
        }
        if self.name.trim().is_empty() {
            return invalid("name".into(), "must not be empty".into());
        }
        for (index, slug) in self.integrations.iter().enumerate() {
            if let Err(error) = validate_id(slug) {
                return invalid(
                    format!("integrations[{index}]"),
                    format!("{slug:?} is not a valid toolkit slug: {error}"),
                );
            }
        }
        for path in self.agent_seeds.keys() {
            if let Err(reason) = check_seed_path(path) {
                return invalid(format!("agentSeeds.{path}"), reason.into());
            }
        }
        Ok(())
    }
}

/// Checks that a seed path stays inside the agent folder: relative, no `..`, no NUL, and not
/// under `.houston/sessions` (sessions belong to users, never to a definition).
fn check_seed_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the seed path is empty");
    }
    if path.contains('\0') || path.contains('\\') {
        return Err("the seed path contains NUL or a backslash");
    }
    let parsed = Path::new(path);
    for component in parsed.components() {
        if !matches!(component, Component::Normal(_)) {
            return Err("the seed path must be relative and must not contain `.` or `..`");
        }
    }
    if parsed.starts_with(".houston/sessions") || parsed == Path::new("houston.json") {
        return Err("a seed may not write sessions or houston.json");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"id": "people", "name": "Head of Talent"}"#;

    #[test]
    fn parses_minimal_definition() {
        let definition = AgentDefinition::parse(MINIMAL).unwrap();
        assert_eq!(definition.agent_id().as_str(), "people");
        assert!(definition.integrations.is_empty());
    }

    #[test]
    fn keeps_unknown_fields_for_export() {
        let text = r#"{"id": "a", "name": "A", "futureField": {"x": 1}}"#;
        let definition = AgentDefinition::parse(text).unwrap();
        let again = serde_json::to_value(&definition).unwrap();
        assert_eq!(again["futureField"]["x"], 1);
    }

    #[test]
    fn wrong_type_names_field() {
        let text = r#"{"id": "a", "name": "A", "integrations": ["slack", 7]}"#;
        let error = AgentDefinition::parse(text).unwrap_err();
        assert_eq!(error.field, "integrations[1]");
        assert!(error.reason.contains("invalid type"), "{error}");
    }

    #[test]
    fn missing_name_is_reported() {
        let error = AgentDefinition::parse(r#"{"id": "a"}"#).unwrap_err();
        assert!(error.reason.contains("missing field `name`"), "{error}");
    }

    #[test]
    fn invalid_id_is_rejected() {
        let error = AgentDefinition::parse(r#"{"id": "../x", "name": "A"}"#).unwrap_err();
        assert_eq!(error.field, "id");
    }

    #[test]
    fn escaping_seed_paths_are_rejected() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "./a", ".houston/sessions/u/s.jsonl"] {
            let text = format!(r#"{{"id": "a", "name": "A", "agentSeeds": {{"{bad}": "x"}}}}"#);
            let error = AgentDefinition::parse(&text).unwrap_err();
            assert_eq!(error.field, format!("agentSeeds.{bad}"), "{bad}");
        }
    }

    #[test]
    fn nested_seed_paths_are_accepted() {
        let text = r#"{"id": "a", "name": "A", "agentSeeds": {"config/x.json": "{}"}}"#;
        assert!(AgentDefinition::parse(text).is_ok());
    }
}
