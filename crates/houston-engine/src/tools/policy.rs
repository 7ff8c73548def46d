//! The tool policy of an agent: which toolkits and tools it may use, and which tools need
//! the user's approval before they run.
//!
//! The toolkits come from `integrations` in the agent's `houston.json`, optionally narrowed
//! by `tools.toolkits` in `.houston/config/config.json`. `allow`, `deny` and
//! `require_approval` hold tool-name patterns where `*` matches any run of characters,
//! compared without regard to case (`SLACK_*`, `*_DELETE_*`). A tool is offered when it
//! matches `allow` (or `allow` is empty) and does not match `deny`.
//!
//! [`PolicyBroker`] applies the policy around another broker, and logs every call with the
//! agent, user, tool, outcome and duration. Arguments are never logged, because they may
//! hold secrets or personal data.
//!
//! The policy is read when the engine starts. `allow`, `deny` and `require_approval` come
//! from `HOUSTON_TOOL_POLICY` when the control plane sets it (the admin API's agent settings),
//! else from the config file on the agent's volume, which the agent itself can write.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use super::outbound::cap_result;
use super::{BrokerTool, ToolBroker, ToolContext, ToolOutput};

/// The policy of one agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolPolicy {
    /// When set, only these toolkits of the agent's integrations are offered.
    pub toolkits: Option<Vec<String>>,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub require_approval: Vec<String>,
    /// Cap on a tool result sent back to the model, in bytes.
    pub max_result_bytes: usize,
}

impl ToolPolicy {
    /// Returns true when the agent may offer and run `tool`.
    #[must_use]
    pub fn allows(&self, tool: &str) -> bool {
        let allowed = self.allow.is_empty() || self.allow.iter().any(|pattern| matches_pattern(pattern, tool));
        allowed && !self.deny.iter().any(|pattern| matches_pattern(pattern, tool))
    }

    /// Returns true when a call of `tool` waits for the user's approval.
    #[must_use]
    pub fn needs_approval(&self, tool: &str) -> bool {
        self.require_approval.iter().any(|pattern| matches_pattern(pattern, tool))
    }

    /// Returns the agent's toolkits that the policy keeps.
    #[must_use]
    pub fn toolkits_of(&self, integrations: &[String]) -> Vec<String> {
        match &self.toolkits {
            None => integrations.to_vec(),
            Some(kept) => integrations.iter().filter(|toolkit| kept.iter().any(|k| k.eq_ignore_ascii_case(toolkit))).cloned().collect(),
        }
    }
}

/// Matches `name` against a pattern where `*` is any run of characters, ignoring case.
#[must_use]
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || !name[first.len()..].ends_with(last) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(index) => rest = &rest[index + middle.len()..],
            None => return false,
        }
    }
    true
}

/// A broker seen through the agent's policy, with one log line per call.
pub struct PolicyBroker {
    inner: Arc<dyn ToolBroker>,
    policy: Arc<ToolPolicy>,
    agent_id: String,
}

impl PolicyBroker {
    /// Wraps `inner`; `agent_id` names the agent in the call log.
    #[must_use]
    pub fn new(inner: Arc<dyn ToolBroker>, policy: Arc<ToolPolicy>, agent_id: impl Into<String>) -> Self {
        Self { inner, policy, agent_id: agent_id.into() }
    }
}

#[async_trait]
impl ToolBroker for PolicyBroker {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn list_tools(&self, context: &ToolContext) -> Result<Vec<BrokerTool>, String> {
        let mut narrowed = context.clone();
        narrowed.toolkits = self.policy.toolkits_of(&context.toolkits);
        let tools = self.inner.list_tools(&narrowed).await?;
        Ok(tools.into_iter().filter(|tool| self.policy.allows(&tool.spec.name)).collect())
    }

    async fn call(&self, context: &ToolContext, tool: &str, input: &Value) -> ToolOutput {
        let started = Instant::now();
        let output = if self.policy.allows(tool) {
            self.inner.call(context, tool, input).await
        } else {
            ToolOutput::Error(format!("the tool {tool} is not allowed for this agent; use another tool or answer without it"))
        };
        let outcome = match &output {
            ToolOutput::Ok(_) => "ok",
            ToolOutput::Error(_) => "error",
            ToolOutput::NeedsConnection { .. } => "needs_connection",
        };
        tracing::info!(
            agent.id = %self.agent_id,
            user.id = %context.user_id,
            turn.id = %context.turn_id,
            broker = self.inner.name(),
            tool,
            outcome,
            duration_ms = started.elapsed().as_millis() as u64,
            "tool call"
        );
        match output {
            ToolOutput::Ok(text) => ToolOutput::Ok(cap_result(text, self.policy.max_result_bytes)),
            ToolOutput::Error(text) => ToolOutput::Error(cap_result(text, self.policy.max_result_bytes)),
            other => other,
        }
    }

    async fn wait_for_connection(&self, context: &ToolContext, toolkit: &str) -> bool {
        self.inner.wait_for_connection(context, toolkit).await
    }

    fn needs_approval(&self, tool: &str) -> bool {
        self.policy.needs_approval(tool) || self.inner.needs_approval(tool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_with_stars_and_ignore_case() {
        assert!(matches_pattern("SLACK_*", "slack_send_message"));
        assert!(matches_pattern("*_DELETE_*", "GMAIL_DELETE_EMAIL"));
        assert!(matches_pattern("slack_send_message", "SLACK_SEND_MESSAGE"));
        assert!(matches_pattern("*", "anything"));
        assert!(!matches_pattern("SLACK_*", "GMAIL_SEND_EMAIL"));
        assert!(!matches_pattern("A*A", "A"));
        assert!(!matches_pattern("*_DELETE_*", "GMAIL_SEND"));
    }

    #[test]
    fn deny_wins_over_allow() {
        let policy = ToolPolicy { allow: vec!["SLACK_*".into()], deny: vec!["SLACK_DELETE_*".into()], ..ToolPolicy::default() };
        assert!(policy.allows("SLACK_SEND_MESSAGE"));
        assert!(!policy.allows("SLACK_DELETE_MESSAGE"));
        assert!(!policy.allows("GMAIL_SEND_EMAIL"));
    }

    #[test]
    fn toolkits_narrow_the_integrations() {
        let policy = ToolPolicy { toolkits: Some(vec!["Slack".into()]), ..ToolPolicy::default() };
        let integrations = vec!["slack".to_owned(), "gmail".to_owned()];
        assert_eq!(policy.toolkits_of(&integrations), vec!["slack".to_owned()]);
        assert_eq!(ToolPolicy::default().toolkits_of(&integrations), integrations);
    }
}
