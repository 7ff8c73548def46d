//! The `[runtime]` section: where and how `houston serve` runs agent runtimes for chat.
//!
//! Provider API keys are not configuration. They are read only from `ANTHROPIC_API_KEY`,
//! `OPENAI_API_KEY` and `COMPOSIO_API_KEY` and go only to the egress proxy, so a config file
//! never contains a key and a sandbox never receives one.

use std::path::PathBuf;
use std::time::Duration;

use houston_runtime::{BackendKind, StartError};
use toml::Table;

use super::Reader;

/// Runtime settings of `houston serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Sandbox backend; only `namespace` and `process` are in this build.
    pub backend: BackendKind,
    /// Folder for agent volumes (`agents/`), runtime sockets (`run/`), egress sockets
    /// (`egress/`), `egress.log` and, unless `outbox_dir` is set, the audit and usage spool.
    pub home: PathBuf,
    /// Idle time after which every agent's runtime stops, replacing each agent's own setting;
    /// `None` keeps the agent's setting.
    pub idle_timeout: Option<Duration>,
    /// Chat messages allowed per user and minute.
    pub chat_per_user_per_minute: u32,
    /// Model for every agent (`HOUSTON_MODEL` for the engines); `None` keeps each agent's model.
    pub model: Option<String>,
    /// Anthropic endpoint, used when `ANTHROPIC_API_KEY` is set (`ANTHROPIC_BASE_URL` otherwise).
    pub anthropic_base_url: Option<String>,
    /// OpenAI-compatible endpoint, used when `OPENAI_API_KEY` is set (`OPENAI_BASE_URL` otherwise).
    pub openai_base_url: Option<String>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            backend: BackendKind::Namespace,
            home: PathBuf::from("./houston-data"),
            idle_timeout: None,
            chat_per_user_per_minute: 60,
            model: None,
            anthropic_base_url: None,
            openai_base_url: None,
        }
    }
}

impl RuntimeConfig {
    /// Returns the settings for the start-up log; none of them is secret.
    #[must_use]
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "backend": self.backend.as_str(),
            "home": self.home.display().to_string(),
            "idle_timeout_secs": self.idle_timeout.map(|timeout| timeout.as_secs()),
            "chat_per_user_per_minute": self.chat_per_user_per_minute,
            "model": self.model,
            "anthropic_base_url": self.anthropic_base_url,
            "openai_base_url": self.openai_base_url,
        })
    }
}

/// Reads `[runtime]`, rejecting unknown keys and backends this build does not contain.
pub(super) fn read_runtime(reader: &mut Reader, table: &mut Table) -> RuntimeConfig {
    let mut runtime = RuntimeConfig::default();
    let Some(mut section) = reader.table(table, "", "runtime") else {
        return runtime;
    };
    let prefix = "runtime.";
    if let Some(backend) = reader.parse::<BackendKind>(&mut section, prefix, "backend") {
        match houston_runtime::create_backend(backend, houston_runtime::NamespaceConfig::default()) {
            Ok(_) => runtime.backend = backend,
            Err(error @ StartError::NotAvailable { .. }) => reader.problem("runtime.backend", &error.to_string()),
            Err(error) => reader.problem("runtime.backend", &format!("{backend} cannot be used: {error}")),
        }
    }
    if let Some(home) = reader.string(&mut section, prefix, "home") {
        if home.trim().is_empty() {
            reader.problem("runtime.home", "must not be empty");
        } else {
            runtime.home = PathBuf::from(home);
        }
    }
    if let Some(timeout) = reader.duration(&mut section, prefix, "idle_timeout") {
        if timeout < Duration::from_secs(1) {
            reader.problem("runtime.idle_timeout", "must be at least 1s");
        } else {
            runtime.idle_timeout = Some(timeout);
        }
    }
    if let Some(limit) = reader.parse::<u32>(&mut section, prefix, "chat_per_user_per_minute") {
        if limit == 0 {
            reader.problem("runtime.chat_per_user_per_minute", "must be at least 1");
        } else {
            runtime.chat_per_user_per_minute = limit;
        }
    }
    runtime.model = reader.string(&mut section, prefix, "model").filter(|model| !model.is_empty());
    runtime.anthropic_base_url = read_base_url(reader, &mut section, "anthropic_base_url");
    runtime.openai_base_url = read_base_url(reader, &mut section, "openai_base_url");
    for key in ["anthropic_api_key", "openai_api_key", "composio_api_key"] {
        if section.remove(key).is_some() {
            let variable = key.to_uppercase();
            reader.problem(&format!("runtime.{key}"), &format!("keys are not read from the configuration: set {variable} in the environment"));
        }
    }
    reader.unknown_keys(section, prefix);
    runtime
}

fn read_base_url(reader: &mut Reader, section: &mut Table, key: &str) -> Option<String> {
    let url = reader.string(section, "runtime.", key)?;
    if url.starts_with("http://") || url.starts_with("https://") {
        return Some(url.trim_end_matches('/').to_owned());
    }
    reader.problem(&format!("runtime.{key}"), &format!("invalid URL {url:?}: it must start with http:// or https://"));
    None
}
