//! Runtime registrations for `houston up` and `houston serve`: an agent's volume under the home folder, its
//! egress socket, and the engine command and environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use houston_control_plane::chat::{AgentSpecSource, ChatAgent, ChatError};
use houston_egress::{AgentEgressPolicy, AgentHandle, EgressProxy};
use houston_protocol::AgentId;
use houston_runtime::{AgentSpec, EngineCommand};
use houston_store::{Agent, Store};

use super::provider::ProviderChoice;

/// Builds runtime specs from the store, opening each agent's egress socket once.
pub struct UpSpecs {
    store: Arc<dyn Store>,
    home: PathBuf,
    engine: EngineCommand,
    egress: EgressProxy,
    provider: ProviderChoice,
    model_override: Option<String>,
    idle_override: Option<Duration>,
    egress_handles: Mutex<HashMap<AgentId, AgentHandle>>,
}

impl UpSpecs {
    /// Creates the spec source.
    pub fn new(
        store: Arc<dyn Store>,
        home: PathBuf,
        engine: EngineCommand,
        egress: EgressProxy,
        provider: ProviderChoice,
        model_override: Option<String>,
        idle_override: Option<Duration>,
    ) -> Arc<Self> {
        Arc::new(Self { store, home, engine, egress, provider, model_override, idle_override, egress_handles: Mutex::default() })
    }

    fn unavailable(agent: &AgentId, reason: String) -> ChatError {
        tracing::error!(agent.id = %agent, %reason, "failed to prepare an agent runtime");
        ChatError::RuntimeUnavailable { agent: agent.to_string(), reason, retry_after_secs: 5 }
    }

    /// Opens the agent's egress socket unless it is open already, and returns its path.
    fn egress_socket(&self, agent: &Agent) -> Result<PathBuf, ChatError> {
        let path = self.home.join("egress").join(format!("{}.sock", agent.id));
        let mut handles = self.egress_handles.lock().expect("egress handle lock");
        if handles.contains_key(&agent.id) {
            return Ok(path);
        }
        let default_hosts = self.egress.default_policy().allowed_hosts();
        let hosts = default_hosts.into_iter().chain(agent.settings.allowed_hosts.iter().cloned());
        let policy = AgentEgressPolicy::new(hosts).map_err(|e| Self::unavailable(&agent.id, format!("invalid allowed hosts: {e}")))?;
        let handle = self
            .egress
            .open_agent(agent.id.clone(), policy, &path)
            .map_err(|e| Self::unavailable(&agent.id, format!("failed to open the egress socket: {e}")))?;
        handles.insert(agent.id.clone(), handle);
        Ok(path)
    }
}

#[async_trait]
impl AgentSpecSource for UpSpecs {
    async fn spec_for(&self, chat_agent: &ChatAgent) -> Result<AgentSpec, ChatError> {
        let agent_id = &chat_agent.agent_id;
        let agent = self
            .store
            .get_agent(agent_id)
            .await
            .map_err(|e| Self::unavailable(agent_id, format!("failed to read the agent: {e}")))?
            .ok_or(ChatError::AgentNotFound)?;
        let volume = volume_dir(&self.home, agent_id);
        ensure_volume(&volume, &agent).map_err(|e| Self::unavailable(agent_id, format!("failed to prepare the volume: {e}")))?;
        let egress_socket = self.egress_socket(&agent)?;

        let mut spec = AgentSpec::new(agent_id.clone(), volume, self.engine.clone());
        let own_timeout = Duration::from_secs(u64::try_from(agent.settings.idle_timeout_secs).unwrap_or(120).max(1));
        spec.idle_timeout = self.idle_override.unwrap_or(own_timeout);
        spec.keep_warm = agent.settings.keep_warm;
        spec.env = self.provider.engine_env(&agent.settings, self.model_override.as_deref());
        // Composio user ids are made of the workspace and user ids. The egress proxy adds the
        // Composio key, so the engine gets only the URL.
        spec.env.insert("HOUSTON_WORKSPACE_ID".to_owned(), chat_agent.workspace_id.to_string());
        // The admin's tool policy replaces the one in the volume's config file, which the agent can write.
        if let Some(policy) = agent.settings.tools.as_ref().and_then(|policy| serde_json::to_string(policy).ok()) {
            spec.env.insert("HOUSTON_TOOL_POLICY".to_owned(), policy);
        }
        if let Some(base_url) = houston_control_plane::connections::composio::base_url_from_env() {
            spec.env.insert("COMPOSIO_BASE_URL".to_owned(), base_url);
        }
        spec.egress_socket = Some(egress_socket);
        Ok(spec)
    }
}

/// Returns the volume folder of an agent.
pub fn volume_dir(home: &Path, agent: &AgentId) -> PathBuf {
    home.join("agents").join(agent.as_str())
}

/// Writes `houston.json` and `CLAUDE.md` from the stored agent when the volume lacks them,
/// so an agent created through the admin API can start. Existing files are kept.
fn ensure_volume(volume: &Path, agent: &Agent) -> std::io::Result<()> {
    std::fs::create_dir_all(volume.join("knowledge"))?;
    let definition = volume.join("houston.json");
    if !definition.exists() {
        let text = serde_json::to_string_pretty(&agent.definition).map_err(std::io::Error::other)?;
        std::fs::write(&definition, text)?;
    }
    let instructions = volume.join("CLAUDE.md");
    if !instructions.exists() && !agent.instructions.is_empty() {
        std::fs::write(&instructions, &agent.instructions)?;
    }
    Ok(())
}
