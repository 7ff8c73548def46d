//! Engine configuration: the agent folder, the engine token, the model provider and limits.
//!
//! The provider comes from `<agent-dir>/.houston/config/config.json`
//! (`{"provider": "anthropic"|"openai"|"offline", "model": …}`), and the environment overrides
//! it: `HOUSTON_PROVIDER`, `HOUSTON_MODEL`, `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`,
//! `OPENAI_API_KEY`, `OPENAI_BASE_URL`. Keys are [`SecretString`]s.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::http::EGRESS_SOCKET_ENV;
use crate::tools::ToolBroker;

/// Default Anthropic model when neither the config file nor `HOUSTON_MODEL` names one.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
/// Default model for OpenAI-compatible servers.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";

/// Everything the engine needs to start.
#[derive(Clone)]
pub struct EngineConfig {
    pub agent_dir: PathBuf,
    /// Bearer token every API call except health must present.
    pub token: SecretString,
    pub provider: ProviderSettings,
    /// Interval of the `: heartbeat` comment on idle event streams.
    pub heartbeat_interval: Duration,
    /// Time open turns get to finish after shutdown begins, before they are cancelled.
    pub shutdown_grace: Duration,
    /// History budget in estimated tokens (4 bytes per token); older turns are dropped first.
    pub history_budget_tokens: usize,
    /// Maximum model calls per turn; the last one is offered no tools.
    pub max_model_rounds: usize,
    /// Number of finished turns whose events stay in memory for replay.
    pub finished_turns_kept: usize,
    /// Tool brokers besides the built-in knowledge tools (Composio, MCP, tests).
    pub tool_brokers: Vec<Arc<dyn ToolBroker>>,
    /// The egress proxy socket every outbound request goes through; `None` connects
    /// directly. The binary takes it from `HOUSTON_EGRESS_SOCKET`.
    pub egress_socket: Option<PathBuf>,
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("agent_dir", &self.agent_dir)
            .field("provider", &self.provider)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("max_model_rounds", &self.max_model_rounds)
            .field("egress_socket", &self.egress_socket)
            .finish_non_exhaustive()
    }
}

impl EngineConfig {
    /// Builds a configuration with the default limits.
    #[must_use]
    pub fn new(agent_dir: impl Into<PathBuf>, token: SecretString, provider: ProviderSettings) -> Self {
        Self {
            agent_dir: agent_dir.into(),
            token,
            provider,
            heartbeat_interval: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(10),
            history_budget_tokens: 60_000,
            max_model_rounds: 8,
            finished_turns_kept: 1024,
            tool_brokers: Vec::new(),
            egress_socket: None,
        }
    }
}

impl EngineConfig {
    /// Builds the configuration of `houston engine`: the provider from the agent's config
    /// file and the environment, the egress socket from `HOUSTON_EGRESS_SOCKET`, and the
    /// Composio and MCP brokers of [`crate::tools::settings`].
    ///
    /// # Errors
    /// Returns every provider and tool configuration problem at once.
    pub fn from_env(agent_dir: impl Into<PathBuf>, token: SecretString) -> Result<Self, ConfigError> {
        let agent_dir = agent_dir.into();
        let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let egress_socket = env(EGRESS_SOCKET_ENV).map(PathBuf::from);
        let client = egress_socket.clone().map_or_else(crate::http::HttpClient::direct, crate::http::HttpClient::egress);
        let (provider, tools) = match (ProviderSettings::load(&agent_dir, env), crate::tools::settings::load(&agent_dir, env, &client)) {
            (Ok(provider), Ok(tools)) => (provider, tools),
            (provider, tools) => {
                let mut problems = provider.err().map(|error| error.problems).unwrap_or_default();
                problems.extend(tools.err().map(|error| error.problems).unwrap_or_default());
                return Err(ConfigError { problems });
            }
        };
        let mut config = Self::new(agent_dir, token, provider);
        config.egress_socket = egress_socket;
        config.tool_brokers = tools.brokers;
        Ok(config)
    }
}

/// The model provider of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
    Offline,
}

impl FromStr for ProviderKind {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "anthropic" => Ok(Self::Anthropic),
            "openai" => Ok(Self::OpenAi),
            "offline" => Ok(Self::Offline),
            other => Err(format!("unknown provider {other:?}: expected anthropic, openai or offline")),
        }
    }
}

/// Retry policy for overloaded (529) and rate-limited (429) responses.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_retries: 3, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(8) }
    }
}

/// The effective provider settings after the config file and the environment.
#[derive(Clone)]
pub struct ProviderSettings {
    pub kind: ProviderKind,
    pub model: String,
    pub base_url: String,
    /// `None` behind the egress proxy (it adds the key) and for keyless OpenAI-compatible servers.
    pub api_key: Option<SecretString>,
    pub max_tokens: u32,
    pub retry: RetryPolicy,
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("kind", &self.kind)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

/// `.houston/config/config.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    provider: Option<ProviderKind>,
    model: Option<String>,
    base_url: Option<String>,
    max_tokens: Option<u32>,
    /// The tool section, read by [`crate::tools::settings`].
    #[serde(default, rename = "tools")]
    _tools: Option<serde::de::IgnoredAny>,
}

/// Every problem found in the provider configuration, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid provider configuration: {}", problems.join("; "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ProviderSettings {
    /// Settings for the offline provider, which needs no network and no key.
    #[must_use]
    pub fn offline() -> Self {
        Self {
            kind: ProviderKind::Offline,
            model: "offline".into(),
            base_url: String::new(),
            api_key: None,
            max_tokens: 4096,
            retry: RetryPolicy::default(),
        }
    }

    /// Reads the agent's config file and applies the environment from `env`.
    ///
    /// # Errors
    /// Returns every problem at once: an unreadable or malformed config file, an unknown
    /// provider, or a missing `ANTHROPIC_API_KEY` when no egress proxy is configured.
    pub fn load(agent_dir: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let file = read_config_file(agent_dir).unwrap_or_else(|problem| {
            problems.push(problem);
            ConfigFile::default()
        });

        let kind = match env("HOUSTON_PROVIDER") {
            Some(value) => value.parse().unwrap_or_else(|problem| {
                problems.push(format!("HOUSTON_PROVIDER: {problem}"));
                ProviderKind::Anthropic
            }),
            None => file.provider.unwrap_or(ProviderKind::Anthropic),
        };
        let behind_egress = env(EGRESS_SOCKET_ENV).is_some();
        let (key_var, url_var, default_url, default_model) = match kind {
            ProviderKind::Anthropic => {
                ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com", DEFAULT_ANTHROPIC_MODEL)
            }
            ProviderKind::OpenAi => {
                ("OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1", DEFAULT_OPENAI_MODEL)
            }
            ProviderKind::Offline => ("", "", "", "offline"),
        };
        let api_key = env(key_var).filter(|key| !key.is_empty() && !key_var.is_empty());
        if kind == ProviderKind::Anthropic && api_key.is_none() && !behind_egress {
            problems.push(format!(
                "ANTHROPIC_API_KEY is missing: set it, set {EGRESS_SOCKET_ENV} to use the egress proxy, \
                 or choose the offline provider with HOUSTON_PROVIDER=offline"
            ));
        }
        // A key with control or non-ASCII characters cannot travel in an HTTP header, so it is
        // reported here instead of failing every model call with an authentication error.
        if api_key.as_deref().is_some_and(|key| !key.bytes().all(|byte| byte.is_ascii_graphic())) {
            problems.push(format!("{key_var} is invalid: it may contain only visible ASCII characters"));
        }
        let base_url = env(url_var).or(file.base_url).unwrap_or_else(|| default_url.to_owned());
        if kind != ProviderKind::Offline && !base_url.starts_with("http://") && !base_url.starts_with("https://") {
            problems.push(format!("{url_var}: {base_url:?} is not an http:// or https:// URL"));
        }
        let model = env("HOUSTON_MODEL").or(file.model).unwrap_or_else(|| default_model.to_owned());

        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Self {
            kind,
            model,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.map(SecretString::from),
            max_tokens: file.max_tokens.unwrap_or(4096),
            retry: RetryPolicy::default(),
        })
    }
}

fn read_config_file(agent_dir: &Path) -> Result<ConfigFile, String> {
    let path = agent_dir.join(".houston/config/config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(error) => return Err(format!("failed to read {}: {error}", path.display())),
    };
    let deserializer = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        format!("{}: field `{}`: {}", path.display(), error.path(), error.inner())
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn load(dir: &Path, vars: &[(&str, &str)]) -> Result<ProviderSettings, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ProviderSettings::load(dir, |name| vars.get(name).cloned())
    }

    fn write_config(dir: &Path, text: &str) {
        std::fs::create_dir_all(dir.join(".houston/config")).unwrap();
        std::fs::write(dir.join(".houston/config/config.json"), text).unwrap();
    }

    #[test]
    fn key_with_control_characters_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let error = load(dir.path(), &[("ANTHROPIC_API_KEY", "sk-ant\nx")]).unwrap_err();
        assert!(error.problems.iter().any(|problem| problem.starts_with("ANTHROPIC_API_KEY is invalid")));
        assert!(error.problems.iter().all(|problem| !problem.contains("sk-ant")));
    }

    #[test]
    fn config_file_chooses_provider() {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), r#"{"provider": "offline"}"#);
        let settings = load(dir.path(), &[]).unwrap();
        assert_eq!(settings.kind, ProviderKind::Offline);
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), r#"{"provider": "offline", "model": "m1"}"#);
        let settings = load(
            dir.path(),
            &[
                ("HOUSTON_PROVIDER", "anthropic"),
                ("ANTHROPIC_API_KEY", "sk-test"),
                ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/"),
            ],
        )
        .unwrap();
        assert_eq!(settings.kind, ProviderKind::Anthropic);
        assert_eq!(settings.model, "m1");
        assert_eq!(settings.base_url, "http://127.0.0.1:9");
        assert_eq!(settings.api_key.unwrap().expose_secret(), "sk-test");
    }

    #[test]
    fn anthropic_without_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let error = load(dir.path(), &[]).unwrap_err();
        assert!(error.to_string().contains("ANTHROPIC_API_KEY is missing"), "{error}");
    }

    #[test]
    fn egress_socket_makes_key_optional() {
        let dir = tempfile::tempdir().unwrap();
        let settings = load(dir.path(), &[(EGRESS_SOCKET_ENV, "/run/egress.sock")]).unwrap();
        assert!(settings.api_key.is_none());
    }

    #[test]
    fn unknown_key_and_provider_reported_together() {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), r#"{"provider": "offline", "colour": "red"}"#);
        let vars = [("HOUSTON_PROVIDER", "gemini"), ("ANTHROPIC_API_KEY", "sk-test")];
        let error = load(dir.path(), &vars).unwrap_err();
        assert_eq!(error.problems.len(), 2, "{error}");
        assert!(error.problems[0].contains("colour"), "{error}");
        assert!(error.problems[1].contains("gemini"), "{error}");
    }

    #[test]
    fn debug_output_redacts_key() {
        let dir = tempfile::tempdir().unwrap();
        let settings = load(dir.path(), &[("ANTHROPIC_API_KEY", "sk-secret-value")]).unwrap();
        let text = format!("{settings:?}");
        assert!(!text.contains("sk-secret-value"));
        assert!(text.contains("[redacted]"));
    }
}
