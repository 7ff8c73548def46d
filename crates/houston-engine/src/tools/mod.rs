//! Tools the model may call, behind the [`ToolBroker`] trait.
//!
//! A broker offers tools for the toolkits an agent declares (its `integrations`) and runs
//! them. The built-in [`knowledge::KnowledgeBroker`] is always present; Composio, MCP and test
//! brokers plug in through [`crate::EngineConfig::tool_brokers`] without changes to the tool
//! loop. A tool's display label names its toolkit: a `slack` tool shows "Calling Slack…".

pub mod composio;
pub mod knowledge;
pub mod mcp;
pub mod outbound;
pub mod policy;
pub mod settings;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use houston_protocol::{SessionId, TurnId, UserId};
use serde_json::Value;

use crate::folder::AgentFolder;
use crate::providers::ToolSpec;

/// Who is calling a tool, and which toolkits the agent declares.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub turn_id: TurnId,
    /// The agent's declared integrations, such as `slack`.
    pub toolkits: Vec<String>,
}

/// A tool a broker offers, with the toolkit it belongs to.
#[derive(Debug, Clone)]
pub struct BrokerTool {
    pub spec: ToolSpec,
    /// The toolkit slug (`slack`), or `None` for built-in tools.
    pub toolkit: Option<String>,
}

/// The result of a tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOutput {
    Ok(String),
    /// The tool ran and failed; the text goes back to the model as an error result.
    Error(String),
    /// The user must connect the toolkit first, at `connect_url`.
    NeedsConnection { toolkit: String, connect_url: String },
}

/// A source of tools.
#[async_trait]
pub trait ToolBroker: Send + Sync {
    /// Returns the broker's name for logs.
    fn name(&self) -> &str;

    /// Lists the tools offered for this turn.
    ///
    /// # Errors
    /// Returns a message when the broker cannot list its tools; the turn then goes on
    /// without them.
    async fn list_tools(&self, context: &ToolContext) -> Result<Vec<BrokerTool>, String>;

    /// Runs one tool. Cancellation drops the returned future, so a broker must stop its work
    /// when dropped.
    async fn call(&self, context: &ToolContext, tool: &str, input: &Value) -> ToolOutput;

    /// Waits, within the broker's own bound, until the user's connection to `toolkit` is
    /// active after a [`ToolOutput::NeedsConnection`]. Returns false when it did not land.
    async fn wait_for_connection(&self, _context: &ToolContext, _toolkit: &str) -> bool {
        false
    }

    /// Returns true when the user must approve a call of `tool` before it runs.
    fn needs_approval(&self, _tool: &str) -> bool {
        false
    }
}

/// Every broker of the engine.
#[derive(Clone)]
pub struct Toolbox {
    brokers: Vec<Arc<dyn ToolBroker>>,
}

impl Toolbox {
    /// Builds the toolbox: the knowledge tools of `folder`, then the `extra` brokers.
    #[must_use]
    pub fn new(folder: &AgentFolder, extra: Vec<Arc<dyn ToolBroker>>) -> Self {
        let mut brokers: Vec<Arc<dyn ToolBroker>> = vec![Arc::new(knowledge::KnowledgeBroker::new(folder.knowledge_dir()))];
        brokers.extend(extra);
        Self { brokers }
    }

    /// Collects the tools offered for one turn. A broker that fails to list is skipped and
    /// logged; a name offered twice keeps the first broker's tool.
    pub async fn offer(&self, context: &ToolContext) -> OfferedTools {
        let mut offered = OfferedTools { specs: Vec::new(), routes: HashMap::new() };
        for broker in &self.brokers {
            let tools = match broker.list_tools(context).await {
                Ok(tools) => tools,
                Err(error) => {
                    tracing::warn!(broker = broker.name(), turn.id = %context.turn_id, %error, "failed to list tools");
                    continue;
                }
            };
            for tool in tools {
                if offered.routes.contains_key(&tool.spec.name) {
                    tracing::warn!(broker = broker.name(), tool = %tool.spec.name, "skipped a tool offered twice");
                    continue;
                }
                offered.routes.insert(tool.spec.name.clone(), (broker.clone(), tool.toolkit));
                offered.specs.push(tool.spec);
            }
        }
        offered
    }
}

/// The tools of one turn and the broker behind each.
pub struct OfferedTools {
    pub specs: Vec<ToolSpec>,
    routes: HashMap<String, (Arc<dyn ToolBroker>, Option<String>)>,
}

impl OfferedTools {
    /// Returns the display label of a tool call.
    #[must_use]
    pub fn label(&self, tool: &str) -> String {
        match self.routes.get(tool) {
            Some((_, Some(toolkit))) => format!("Calling {}…", toolkit_display_name(toolkit)),
            _ => match tool {
                knowledge::LIST_TOOL => "Listing knowledge files…".to_owned(),
                knowledge::READ_TOOL => "Reading knowledge files…".to_owned(),
                other => format!("Calling {other}…"),
            },
        }
    }

    /// Returns true when a call of `tool` waits for the user's approval.
    #[must_use]
    pub fn needs_approval(&self, tool: &str) -> bool {
        self.routes.get(tool).is_some_and(|(broker, _)| broker.needs_approval(tool))
    }

    /// Waits, within the broker's bound, for the user's connection to `toolkit`, for the
    /// broker of `tool`. Returns false when it did not land.
    pub async fn wait_for_connection(&self, context: &ToolContext, tool: &str, toolkit: &str) -> bool {
        match self.routes.get(tool) {
            Some((broker, _)) => broker.wait_for_connection(context, toolkit).await,
            None => false,
        }
    }

    /// Runs `tool`; a tool that was not offered is an error result for the model.
    pub async fn call(&self, context: &ToolContext, tool: &str, input: &Value) -> ToolOutput {
        match self.routes.get(tool) {
            Some((broker, _)) => broker.call(context, tool, input).await,
            None => ToolOutput::Error(format!("unknown tool {tool:?}: use one of the tools offered")),
        }
    }
}

/// Returns the product name of a toolkit slug, for labels.
#[must_use]
pub fn toolkit_display_name(slug: &str) -> String {
    let known = match slug {
        "github" => "GitHub",
        "gmail" => "Gmail",
        "googlecalendar" => "Google Calendar",
        "googledocs" => "Google Docs",
        "googledrive" => "Google Drive",
        "googlesheets" => "Google Sheets",
        "hubspot" => "HubSpot",
        "linkedin" => "LinkedIn",
        "quickbooks" => "QuickBooks",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_owned();
    }
    let mut characters = slug.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_of_toolkits() {
        assert_eq!(toolkit_display_name("slack"), "Slack");
        assert_eq!(toolkit_display_name("googlecalendar"), "Google Calendar");
        assert_eq!(toolkit_display_name("hubspot"), "HubSpot");
    }
}
