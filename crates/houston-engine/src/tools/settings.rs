//! Tool configuration: the `tools` section of `.houston/config/config.json` and the
//! environment, turned into policy-wrapped brokers.
//!
//! ```json
//! {"tools": {
//!   "toolkits": ["slack"],
//!   "allow": ["SLACK_*"], "deny": ["*_DELETE_*"],
//!   "require_approval": ["SLACK_SEND_MESSAGE"],
//!   "max_result_bytes": 16384,
//!   "connection_wait_secs": 300,
//!   "composio": {"auth_configs": {"slack": "ac_123"}, "callback_url": "https://houston.example.com/connected"},
//!   "mcp_servers": [{"name": "docs", "url": "https://mcp.example.com/mcp"}]
//! }}
//! ```
//!
//! Environment:
//! - `COMPOSIO_BASE_URL` turns Composio on (for example `https://backend.composio.dev`).
//! - `HOUSTON_WORKSPACE_ID` is then required, because it is half of every Composio user id.
//! - `COMPOSIO_API_KEY` is sent only when set, for set-ups without the egress proxy.
//! - `HOUSTON_TOOL_CONNECTION_WAIT_SECS` overrides `connection_wait_secs`.
//! - `HOUSTON_TOOL_POLICY`, JSON `{"allow": [...], "deny": [...], "require_approval": [...]}`
//!   set by the control plane from the admin's agent settings, replaces those three lists of
//!   the config file. The agent can write its own volume, so only this variable keeps a tool
//!   policy out of the agent's reach.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use houston_protocol::WorkspaceId;
use secrecy::SecretString;
use serde::Deserialize;

use super::ToolBroker;
use super::composio::{ComposioBroker, ComposioSettings};
use super::mcp::{McpBroker, McpServerSettings};
use super::outbound::DEFAULT_MAX_RESULT_BYTES;
use super::policy::{PolicyBroker, ToolPolicy};
use crate::config::ConfigError;
use crate::http::HttpClient;

/// The `tools` section of the agent's config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsFile {
    #[serde(default)]
    pub toolkits: Option<Vec<String>>,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    #[serde(default)]
    pub require_approval: Vec<String>,
    #[serde(default)]
    pub max_result_bytes: Option<usize>,
    #[serde(default)]
    pub connection_wait_secs: Option<u64>,
    #[serde(default)]
    pub composio: ComposioFile,
    #[serde(default)]
    pub mcp_servers: Vec<McpServerFile>,
}

/// `tools.composio`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposioFile {
    #[serde(default)]
    pub auth_configs: HashMap<String, String>,
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// One entry of `tools.mcp_servers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerFile {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigWithTools {
    #[serde(default)]
    tools: Option<ToolsFile>,
}

/// The configured tool brokers, each behind the agent's policy.
pub struct ToolSetup {
    pub brokers: Vec<Arc<dyn ToolBroker>>,
    pub policy: Arc<ToolPolicy>,
}

impl std::fmt::Debug for ToolSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.brokers.iter().map(|broker| broker.name()).collect();
        f.debug_struct("ToolSetup").field("brokers", &names).field("policy", &self.policy).finish()
    }
}

/// Reads the `tools` section of `<agent_dir>/.houston/config/config.json` (absent means no
/// section).
///
/// # Errors
/// Returns the problem with the field path when the file is unreadable or the section is
/// malformed.
pub fn read_tools_file(agent_dir: &Path) -> Result<ToolsFile, String> {
    let path = agent_dir.join(".houston/config/config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(ToolsFile::default()),
        Err(error) => return Err(format!("failed to read {}: {error}", path.display())),
    };
    let deserializer = &mut serde_json::Deserializer::from_str(&text);
    let config: ConfigWithTools = serde_path_to_error::deserialize(deserializer)
        .map_err(|error| format!("{}: field `{}`: {}", path.display(), error.path(), error.inner()))?;
    Ok(config.tools.unwrap_or_default())
}

/// Builds the brokers that the config file and the environment request. The agent's
/// definition id (or the folder name) names the agent in the call log.
///
/// # Errors
/// Returns every problem at once: a malformed `tools` section, Composio without
/// `HOUSTON_WORKSPACE_ID`, an invalid URL, or an MCP server name that is not `[a-z0-9_-]`.
pub fn load(agent_dir: &Path, env: impl Fn(&str) -> Option<String>, client: &HttpClient) -> Result<ToolSetup, ConfigError> {
    let mut problems = Vec::new();
    let agent_id = agent_label(agent_dir);
    let agent_id = agent_id.as_str();
    let file = read_tools_file(agent_dir).unwrap_or_else(|problem| {
        problems.push(problem);
        ToolsFile::default()
    });
    let max_result_bytes = file.max_result_bytes.unwrap_or(DEFAULT_MAX_RESULT_BYTES).max(1024);
    let lists = match env(TOOL_POLICY_VAR) {
        Some(text) => parse_policy_env(&text).unwrap_or_else(|problem| {
            problems.push(problem);
            PolicyLists::default()
        }),
        None => PolicyLists { allow: file.allow.clone(), deny: file.deny.clone(), require_approval: file.require_approval.clone() },
    };
    let policy = Arc::new(ToolPolicy {
        toolkits: file.toolkits.clone(),
        allow: lists.allow,
        deny: lists.deny,
        require_approval: lists.require_approval,
        max_result_bytes,
    });

    let mut inner: Vec<Arc<dyn ToolBroker>> = Vec::new();
    if let Some(settings) = composio_settings(&file, &env, max_result_bytes, &mut problems) {
        inner.push(Arc::new(ComposioBroker::new(settings, client.clone())));
    }
    for server in &file.mcp_servers {
        if let Some(settings) = mcp_settings(server, max_result_bytes, &mut problems) {
            inner.push(Arc::new(McpBroker::new(settings, client.clone())));
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    let brokers = inner
        .into_iter()
        .map(|broker| Arc::new(PolicyBroker::new(broker, policy.clone(), agent_id)) as Arc<dyn ToolBroker>)
        .collect();
    Ok(ToolSetup { brokers, policy })
}

/// Environment variable of the admin's tool policy, which replaces the config file's lists.
pub const TOOL_POLICY_VAR: &str = "HOUSTON_TOOL_POLICY";

/// The `allow`, `deny` and `require_approval` lists of a tool policy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyLists {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    require_approval: Vec<String>,
}

fn parse_policy_env(text: &str) -> Result<PolicyLists, String> {
    let deserializer = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| format!("{TOOL_POLICY_VAR}: field `{}`: {}", error.path(), error.inner()))
}

fn composio_settings(
    file: &ToolsFile,
    env: &impl Fn(&str) -> Option<String>,
    max_result_bytes: usize,
    problems: &mut Vec<String>,
) -> Option<ComposioSettings> {
    let base_url = env("COMPOSIO_BASE_URL").filter(|url| !url.is_empty())?;
    if !is_http_url(&base_url) {
        problems.push(format!("COMPOSIO_BASE_URL: {base_url:?} is not an http:// or https:// URL"));
    }
    let workspace = match env("HOUSTON_WORKSPACE_ID").map(WorkspaceId::parse) {
        Some(Ok(workspace)) => Some(workspace),
        Some(Err(error)) => {
            problems.push(format!("HOUSTON_WORKSPACE_ID: {error}"));
            None
        }
        None => {
            problems.push("HOUSTON_WORKSPACE_ID is missing: Composio user ids are made of the workspace and user ids".into());
            None
        }
    };
    let wait = match env("HOUSTON_TOOL_CONNECTION_WAIT_SECS") {
        Some(text) => text.parse::<u64>().ok().or_else(|| {
            problems.push(format!("HOUSTON_TOOL_CONNECTION_WAIT_SECS: {text:?} is not a whole number of seconds"));
            None
        }),
        None => file.connection_wait_secs,
    };
    let mut settings = ComposioSettings::new(base_url, workspace?);
    settings.api_key = env("COMPOSIO_API_KEY").filter(|key| !key.is_empty()).map(SecretString::from);
    settings.auth_configs = file.composio.auth_configs.clone();
    settings.callback_url = file.composio.callback_url.clone();
    settings.max_result_bytes = max_result_bytes;
    if let Some(wait) = wait {
        settings.connection_wait = Duration::from_secs(wait);
    }
    Some(settings)
}

fn mcp_settings(server: &McpServerFile, max_result_bytes: usize, problems: &mut Vec<String>) -> Option<McpServerSettings> {
    let valid_name = !server.name.is_empty()
        && server.name.len() <= 32
        && server.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid_name {
        problems.push(format!("tools.mcp_servers: name {:?} must be 1 to 32 of a-z, 0-9, '-' and '_'", server.name));
        return None;
    }
    if !is_http_url(&server.url) {
        problems.push(format!("tools.mcp_servers.{}: url {:?} is not an http:// or https:// URL", server.name, server.url));
        return None;
    }
    Some(McpServerSettings {
        name: server.name.clone(),
        url: server.url.clone(),
        request_timeout: Duration::from_secs(120),
        max_result_bytes,
    })
}

/// Returns the `id` of the agent's `houston.json`, or the folder name without one.
fn agent_label(agent_dir: &Path) -> String {
    let from_definition = std::fs::read_to_string(agent_dir.join("houston.json"))
        .ok()
        .and_then(|text| houston_protocol::AgentDefinition::parse(&text).ok())
        .map(|definition| definition.id);
    from_definition.unwrap_or_else(|| agent_dir.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default())
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(dir: &Path, text: &str) {
        std::fs::create_dir_all(dir.join(".houston/config")).unwrap();
        std::fs::write(dir.join(".houston/config/config.json"), text).unwrap();
    }

    fn load_with(dir: &Path, vars: &[(&str, &str)]) -> Result<ToolSetup, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        load(dir, |name| vars.get(name).cloned(), &HttpClient::direct())
    }

    #[test]
    fn no_config_means_no_brokers() {
        let dir = tempfile::tempdir().unwrap();
        let setup = load_with(dir.path(), &[]).unwrap();
        assert!(setup.brokers.is_empty());
    }

    #[test]
    fn composio_and_mcp_brokers_from_config() {
        let dir = tempfile::tempdir().unwrap();
        write_config(
            dir.path(),
            r#"{"provider": "offline", "tools": {"require_approval": ["SLACK_SEND_*"], "mcp_servers": [{"name": "docs", "url": "http://127.0.0.1:9/mcp"}]}}"#,
        );
        let setup = load_with(dir.path(), &[("COMPOSIO_BASE_URL", "http://127.0.0.1:9"), ("HOUSTON_WORKSPACE_ID", "acme")]).unwrap();
        assert_eq!(setup.brokers.len(), 2);
        assert!(setup.brokers[0].needs_approval("SLACK_SEND_MESSAGE"));
        assert!(!setup.brokers[0].needs_approval("SLACK_LIST_CHANNELS"));
    }

    #[test]
    fn every_problem_is_reported_together() {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), r#"{"tools": {"mcp_servers": [{"name": "Bad Name", "url": "http://x/mcp"}]}}"#);
        let error = load_with(dir.path(), &[("COMPOSIO_BASE_URL", "ftp://x")]).unwrap_err();
        assert_eq!(error.problems.len(), 3, "{error}");
        assert!(error.problems.iter().any(|p| p.contains("COMPOSIO_BASE_URL")), "{error}");
        assert!(error.problems.iter().any(|p| p.contains("HOUSTON_WORKSPACE_ID is missing")), "{error}");
        assert!(error.problems.iter().any(|p| p.contains("Bad Name")), "{error}");
    }

    #[test]
    fn policy_env_overrides_config_file() {
        let dir = tempfile::tempdir().unwrap();
        write_config(
            dir.path(),
            r#"{"tools": {"allow": ["*"], "require_approval": [], "mcp_servers": [{"name": "docs", "url": "http://127.0.0.1:9/mcp"}]}}"#,
        );
        let policy = r#"{"allow": ["SLACK_*"], "deny": ["*_DELETE_*"], "require_approval": ["SLACK_SEND_MESSAGE"]}"#;
        let setup = load_with(dir.path(), &[(TOOL_POLICY_VAR, policy)]).unwrap();
        assert_eq!(setup.policy.allow, ["SLACK_*"]);
        assert_eq!(setup.policy.deny, ["*_DELETE_*"]);
        assert!(setup.policy.allows("SLACK_LIST_CHANNELS"));
        assert!(!setup.policy.allows("SLACK_DELETE_MESSAGE"));
        assert!(!setup.policy.allows("GITHUB_CREATE_ISSUE"), "the file's allow-all no longer applies");
        assert!(setup.brokers[0].needs_approval("SLACK_SEND_MESSAGE"), "the broker uses the variable's policy");
    }

    #[test]
    fn config_file_policy_without_env() {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), r#"{"tools": {"deny": ["GITHUB_*"], "require_approval": ["SLACK_*"]}}"#);
        let setup = load_with(dir.path(), &[]).unwrap();
        assert!(!setup.policy.allows("GITHUB_CREATE_ISSUE"));
        assert!(setup.policy.needs_approval("SLACK_SEND_MESSAGE"));
    }

    #[test]
    fn invalid_policy_env_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let error = load_with(dir.path(), &[(TOOL_POLICY_VAR, r#"{"allow": "SLACK_*"}"#)]).unwrap_err();
        assert_eq!(error.problems.len(), 1, "{error}");
        assert!(error.problems[0].starts_with("HOUSTON_TOOL_POLICY: field `allow`"), "{error}");
        let unknown = load_with(dir.path(), &[(TOOL_POLICY_VAR, r#"{"alow": []}"#)]).unwrap_err();
        assert!(unknown.problems[0].contains("alow"), "{unknown}");
    }

    #[test]
    fn unknown_tools_key_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), r#"{"tools": {"alow": ["x"]}}"#);
        let error = load_with(dir.path(), &[]).unwrap_err();
        assert!(error.problems[0].contains("tools"), "{error}");
        assert!(error.problems[0].contains("alow"), "{error}");
    }
}
