//! A [`ToolBroker`] over Composio's v3 REST API.
//!
//! - Listing: `GET /api/v3/tools?toolkit_slug=…&toolkit_versions=latest`, every page, for the
//!   toolkits the agent declares. The catalog is cached for [`CATALOG_TTL`].
//! - Running: `POST /api/v3/tools/execute/{slug}` with `user_id` set to
//!   [`composio_user_id`] of the agent's workspace and the chatting user, so each user acts
//!   with their own connected account.
//! - Not connected (HTTP 4xx code 1803, or an error naming the connected account): the
//!   broker reads `GET /api/v3/connected_accounts` to tell "never connected" from "expired",
//!   creates a connect link with `POST /api/v3/connected_accounts/link` and returns
//!   [`ToolOutput::NeedsConnection`].
//! - A slug the catalog no longer has (HTTP 404, for example a renamed tool) becomes an error
//!   result listing the toolkit's current tools, so the model can pick the new name.
//!
//! The Composio API key is added by the egress proxy on the way out; [`ComposioSettings`]
//! carries a key only for set-ups without the proxy (tests, a developer machine).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use houston_protocol::{ConnectionState, WorkspaceId, composio_user_id};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::outbound::{self, DEFAULT_MAX_RESULT_BYTES, Reply, cap_result};
use super::{BrokerTool, ToolBroker, ToolContext, ToolOutput};
use crate::http::HttpClient;
use crate::providers::ToolSpec;

/// How long a listed catalog is reused before it is fetched again.
pub const CATALOG_TTL: Duration = Duration::from_secs(300);
/// Most catalog pages read per listing, so a misbehaving server cannot loop the broker.
const MAX_CATALOG_PAGES: usize = 20;
/// Composio's error code for "No connected account found".
const NO_CONNECTED_ACCOUNT_CODE: u64 = 1803;

/// Settings of the Composio broker.
#[derive(Clone)]
pub struct ComposioSettings {
    /// Composio's base URL without `/api/v3`, such as `https://backend.composio.dev`.
    pub base_url: String,
    /// Sent as `x-api-key` only when set; behind the egress proxy it stays `None`.
    pub api_key: Option<SecretString>,
    /// The agent's workspace, half of every Composio `user_id`.
    pub workspace_id: WorkspaceId,
    /// Auth config id per toolkit slug; toolkits without one use the first enabled auth
    /// config Composio lists for them.
    pub auth_configs: HashMap<String, String>,
    /// The URL Composio sends the user to after the connect page, if any.
    pub callback_url: Option<String>,
    /// How long a turn waits for a pending connection to turn active.
    pub connection_wait: Duration,
    /// Interval between connection checks while waiting.
    pub poll_interval: Duration,
    /// Time limit of one Composio request, tool execution included.
    pub request_timeout: Duration,
    /// Cap on a tool result sent back to the model, in bytes.
    pub max_result_bytes: usize,
}

impl std::fmt::Debug for ComposioSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComposioSettings")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("workspace_id", &self.workspace_id)
            .field("auth_configs", &self.auth_configs)
            .field("connection_wait", &self.connection_wait)
            .finish_non_exhaustive()
    }
}

impl ComposioSettings {
    /// Settings with the default limits: a 5-minute connection wait polled every 2 s, a
    /// 120 s request limit and a 16 KiB result cap.
    #[must_use]
    pub fn new(base_url: impl Into<String>, workspace_id: WorkspaceId) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: None,
            workspace_id,
            auth_configs: HashMap::new(),
            callback_url: None,
            connection_wait: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
            request_timeout: Duration::from_secs(120),
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
        }
    }
}

#[derive(Debug, Clone)]
struct CatalogEntry {
    toolkit: String,
    version: Option<String>,
}

#[derive(Default)]
struct Catalog {
    /// The toolkits the cached listing was made for, sorted.
    toolkits: Vec<String>,
    fetched: Option<Instant>,
    tools: Vec<BrokerTool>,
    entries: HashMap<String, CatalogEntry>,
}

/// Tools of the agent's Composio toolkits, run as the chatting user.
pub struct ComposioBroker {
    settings: ComposioSettings,
    client: HttpClient,
    catalog: Mutex<Catalog>,
}

impl ComposioBroker {
    /// Builds the broker; nothing is fetched until the first turn.
    #[must_use]
    pub fn new(settings: ComposioSettings, client: HttpClient) -> Self {
        Self { settings, client, catalog: Mutex::new(Catalog::default()) }
    }

    fn user_id(&self, context: &ToolContext) -> String {
        composio_user_id(&self.settings.workspace_id, &context.user_id)
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("{}/api/v3/{path_and_query}", self.settings.base_url)
    }

    async fn request(&self, method: Method, path_and_query: &str, body: Option<&Value>) -> Result<Reply, String> {
        let mut headers = Vec::new();
        if let Some(key) = &self.settings.api_key {
            let value = HeaderValue::from_str(key.expose_secret()).map_err(|_| "the Composio API key is not a valid header value".to_owned())?;
            headers.push((HeaderName::from_static("x-api-key"), value));
        }
        let url = self.url(path_and_query);
        outbound::send(&self.client, method, &url, &headers, body, self.settings.request_timeout).await
    }

    /// Fetches every page of the catalog of `toolkits`.
    async fn fetch_catalog(&self, toolkits: &[String]) -> Result<(Vec<BrokerTool>, HashMap<String, CatalogEntry>), String> {
        let mut tools = Vec::new();
        let mut entries = HashMap::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_CATALOG_PAGES {
            let mut query = format!("tools?toolkit_slug={}&toolkit_versions=latest&limit=100", toolkits.join(","));
            if let Some(cursor) = &cursor {
                query.push_str(&format!("&cursor={}", encode_query_value(cursor)));
            }
            let reply = self.request(Method::GET, &query, None).await?;
            if !reply.status.is_success() {
                return Err(format!("Composio answered HTTP {} to the tool listing: {}", reply.status.as_u16(), error_message(&reply.json())));
            }
            let page = reply.json();
            for item in page["items"].as_array().into_iter().flatten() {
                if let Some((tool, entry)) = catalog_item(item) {
                    entries.insert(tool.spec.name.clone(), entry);
                    tools.push(tool);
                }
            }
            cursor = page["next_cursor"].as_str().filter(|next| !next.is_empty()).map(str::to_owned);
            if cursor.is_none() {
                return Ok((tools, entries));
            }
        }
        tracing::warn!(pages = MAX_CATALOG_PAGES, "stopped reading the Composio tool listing after the page limit");
        Ok((tools, entries))
    }

    /// Returns the cached catalog of `toolkits`, fetching it when stale or when `refresh`.
    async fn catalog(&self, toolkits: &[String], refresh: bool) -> Result<Vec<BrokerTool>, String> {
        let mut wanted = toolkits.to_vec();
        wanted.sort();
        {
            let catalog = self.catalog.lock().expect("catalog lock poisoned");
            let fresh = catalog.fetched.is_some_and(|at| at.elapsed() < CATALOG_TTL);
            if fresh && !refresh && catalog.toolkits == wanted {
                return Ok(catalog.tools.clone());
            }
        }
        let (tools, entries) = self.fetch_catalog(&wanted).await?;
        let mut catalog = self.catalog.lock().expect("catalog lock poisoned");
        *catalog = Catalog { toolkits: wanted, fetched: Some(Instant::now()), tools: tools.clone(), entries };
        Ok(tools)
    }

    fn catalog_entry(&self, tool: &str) -> Option<CatalogEntry> {
        self.catalog.lock().expect("catalog lock poisoned").entries.get(tool).cloned()
    }

    /// Runs the tool once and classifies Composio's response.
    async fn execute(&self, context: &ToolContext, tool: &str, input: &Value) -> Execution {
        let entry = self.catalog_entry(tool);
        let mut body = json!({"user_id": self.user_id(context), "arguments": input});
        body["version"] = json!(entry.as_ref().and_then(|entry| entry.version.clone()).unwrap_or_else(|| "latest".into()));
        let reply = match self.request(Method::POST, &format!("tools/execute/{tool}"), Some(&body)).await {
            Ok(reply) => reply,
            Err(error) => return Execution::Failed(format!("failed to reach Composio, so {tool} may not have run: {error}")),
        };
        let answer = reply.json();
        match reply.status {
            status if status.is_success() => execution_result(tool, &answer),
            StatusCode::NOT_FOUND => Execution::UnknownTool,
            StatusCode::UNAUTHORIZED => {
                tracing::error!(tool, "Composio rejected the API key; check the key the egress proxy adds for the tool broker");
                Execution::Failed("Composio rejected Houston's credentials; an administrator must fix the Composio API key".into())
            }
            status if status.is_client_error() && names_missing_account(&answer) => Execution::NotConnected,
            status => Execution::Failed(format!("Composio answered HTTP {} to {tool}: {}", status.as_u16(), error_message(&answer))),
        }
    }

    /// Returns the best state among the user's accounts for `toolkit`.
    async fn connection_state(&self, context: &ToolContext, toolkit: &str) -> Result<ConnectionState, String> {
        let query = format!(
            "connected_accounts?user_ids={}&toolkit_slugs={}",
            encode_query_value(&self.user_id(context)),
            encode_query_value(toolkit)
        );
        let reply = self.request(Method::GET, &query, None).await?;
        if !reply.status.is_success() {
            return Err(format!("Composio answered HTTP {} to the account listing", reply.status.as_u16()));
        }
        let answer = reply.json();
        let best = answer["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|account| ConnectionState::from_composio_status(account["status"].as_str().unwrap_or_default()))
            .max_by_key(|state| state.rank())
            .unwrap_or(ConnectionState::NotConnected);
        Ok(best)
    }

    async fn auth_config_id(&self, toolkit: &str) -> Result<String, String> {
        if let Some(id) = self.settings.auth_configs.get(toolkit) {
            return Ok(id.clone());
        }
        let reply = self.request(Method::GET, &format!("auth_configs?toolkit_slug={}", encode_query_value(toolkit)), None).await?;
        let answer = reply.json();
        answer["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|config| config["status"].as_str().is_none_or(|status| status.eq_ignore_ascii_case("ENABLED")))
            .and_then(|config| config["id"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("{toolkit} has no enabled auth config in Composio; an administrator must set one up"))
    }

    /// Creates a connect link for the user and `toolkit`.
    async fn create_link(&self, context: &ToolContext, toolkit: &str) -> Result<String, String> {
        let auth_config_id = self.auth_config_id(toolkit).await?;
        let mut body = json!({"auth_config_id": auth_config_id, "user_id": self.user_id(context)});
        if let Some(callback) = &self.settings.callback_url {
            body["callback_url"] = json!(callback);
        }
        let reply = self.request(Method::POST, "connected_accounts/link", Some(&body)).await?;
        let answer = reply.json();
        if !reply.status.is_success() {
            return Err(format!("Composio answered HTTP {} to the connect link request: {}", reply.status.as_u16(), error_message(&answer)));
        }
        answer["redirect_url"].as_str().map(str::to_owned).ok_or_else(|| "Composio's connect link answer has no redirect_url".to_owned())
    }

    async fn needs_connection(&self, context: &ToolContext, tool: &str) -> ToolOutput {
        let toolkit = self.toolkit_of(tool);
        let state = self.connection_state(context, &toolkit).await.unwrap_or_else(|error| {
            tracing::warn!(%error, toolkit, "failed to read the connection state");
            ConnectionState::NotConnected
        });
        tracing::info!(toolkit, state = ?state, user.id = %context.user_id, "the user must connect a toolkit");
        match self.create_link(context, &toolkit).await {
            Ok(connect_url) => ToolOutput::NeedsConnection { toolkit, connect_url },
            Err(error) => ToolOutput::Error(format!("{tool} needs a {toolkit} connection, but no connect link could be made: {error}")),
        }
    }

    async fn unknown_tool(&self, context: &ToolContext, tool: &str) -> ToolOutput {
        let toolkit = self.toolkit_of(tool);
        tracing::warn!(tool, toolkit, "Composio no longer knows a listed tool; refreshing the catalog");
        let current = match self.catalog(&context.toolkits, true).await {
            Ok(tools) => tools
                .iter()
                .filter(|candidate| candidate.toolkit.as_deref() == Some(toolkit.as_str()))
                .map(|candidate| candidate.spec.name.clone())
                .collect::<Vec<_>>(),
            Err(_) => Vec::new(),
        };
        let choices = if current.is_empty() { "none are offered right now".to_owned() } else { current.join(", ") };
        ToolOutput::Error(format!(
            "the tool {tool} no longer exists in Composio (it was renamed or removed), so nothing ran. \
             The {toolkit} tools available now are: {choices}. Call the one that does the same job."
        ))
    }

    fn toolkit_of(&self, tool: &str) -> String {
        self.catalog_entry(tool).map_or_else(|| toolkit_from_slug(tool), |entry| entry.toolkit)
    }
}

enum Execution {
    Done(ToolOutput),
    NotConnected,
    UnknownTool,
    Failed(String),
}

#[async_trait]
impl ToolBroker for ComposioBroker {
    fn name(&self) -> &str {
        "composio"
    }

    async fn list_tools(&self, context: &ToolContext) -> Result<Vec<BrokerTool>, String> {
        if context.toolkits.is_empty() {
            return Ok(Vec::new());
        }
        self.catalog(&context.toolkits, false).await
    }

    async fn call(&self, context: &ToolContext, tool: &str, input: &Value) -> ToolOutput {
        match self.execute(context, tool, input).await {
            Execution::Done(ToolOutput::Ok(text)) => ToolOutput::Ok(cap_result(text, self.settings.max_result_bytes)),
            Execution::Done(other) => other,
            Execution::NotConnected => self.needs_connection(context, tool).await,
            Execution::UnknownTool => self.unknown_tool(context, tool).await,
            Execution::Failed(message) => ToolOutput::Error(message),
        }
    }

    async fn wait_for_connection(&self, context: &ToolContext, toolkit: &str) -> bool {
        let deadline = Instant::now() + self.settings.connection_wait;
        loop {
            match self.connection_state(context, toolkit).await {
                Ok(ConnectionState::Active) => return true,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, toolkit, "failed to check a pending connection"),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            tokio::time::sleep(self.settings.poll_interval.min(left)).await;
        }
    }
}

/// Converts one item of the tool listing. Items without a slug or toolkit are skipped, and
/// so are slugs that a model provider would reject as a tool name.
fn catalog_item(item: &Value) -> Option<(BrokerTool, CatalogEntry)> {
    let slug = item["slug"].as_str()?;
    let toolkit = item["toolkit"]["slug"].as_str()?;
    if !is_valid_tool_name(slug) {
        tracing::warn!(tool = slug, "skipped a Composio tool whose slug is not a valid tool name");
        return None;
    }
    let mut schema = item["input_parameters"].clone();
    if !schema.is_object() {
        schema = json!({"type": "object", "properties": {}});
    }
    let description = item["description"].as_str().or_else(|| item["name"].as_str()).unwrap_or(slug);
    let spec = ToolSpec { name: slug.to_owned(), description: description.to_owned(), input_schema: schema };
    let entry = CatalogEntry { toolkit: toolkit.to_lowercase(), version: item["version"].as_str().map(str::to_owned) };
    Some((BrokerTool { spec, toolkit: Some(toolkit.to_lowercase()) }, entry))
}

/// Tool names accepted by the model providers: 1 to 64 of `[A-Za-z0-9_-]`.
#[must_use]
pub fn is_valid_tool_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn execution_result(tool: &str, answer: &Value) -> Execution {
    if answer["successful"].as_bool() == Some(true) {
        let data = &answer["data"];
        let text = match data {
            Value::String(text) => text.clone(),
            Value::Null => "done".to_owned(),
            other => other.to_string(),
        };
        return Execution::Done(ToolOutput::Ok(text));
    }
    let error = answer["error"].as_str().unwrap_or("the tool reported a failure without a message");
    if names_missing_account(answer) {
        return Execution::NotConnected;
    }
    Execution::Done(ToolOutput::Error(format!("{tool} failed: {error}")))
}

/// Returns true when a Composio error reports that the user has no usable connected account.
fn names_missing_account(answer: &Value) -> bool {
    let error = &answer["error"];
    if error["code"].as_u64() == Some(NO_CONNECTED_ACCOUNT_CODE) {
        return true;
    }
    let message = error["message"].as_str().or_else(|| error.as_str()).unwrap_or_default().to_lowercase();
    message.contains("connected account") && (message.contains("no ") || message.contains("not found") || message.contains("expired") || message.contains("inactive"))
}

fn error_message(answer: &Value) -> String {
    let error = &answer["error"];
    error["message"].as_str().or_else(|| error.as_str()).unwrap_or("no error message").chars().take(300).collect()
}

/// Guesses the toolkit of a slug that is not in the catalog: `SLACK_SEND_MESSAGE` → `slack`.
fn toolkit_from_slug(slug: &str) -> String {
    slug.split('_').next().unwrap_or(slug).to_lowercase()
}

/// Percent-encodes a query value; Composio user ids contain `:`.
fn encode_query_value(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b',') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_account_recognised_by_code_and_message() {
        assert!(names_missing_account(&json!({"error": {"code": 1803, "message": "x"}})));
        assert!(names_missing_account(&json!({"error": {"message": "No connected account found"}})));
        assert!(names_missing_account(&json!({"error": "Connected account is expired"})));
        assert!(!names_missing_account(&json!({"error": {"code": 1100, "message": "Tool X not found"}})));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_query_value("acme:juan"), "acme%3Ajuan");
        assert_eq!(encode_query_value("slack,gmail"), "slack,gmail");
    }

    #[test]
    fn tool_names_follow_the_provider_pattern() {
        assert!(is_valid_tool_name("SLACK_SEND_MESSAGE"));
        assert!(!is_valid_tool_name("slack.send"));
        assert!(!is_valid_tool_name(&"A".repeat(65)));
    }
}
