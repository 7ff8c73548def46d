//! A [`ToolBroker`] for one MCP server over the streamable HTTP transport.
//!
//! The client speaks MCP revision 2025-06-18: `initialize` then `notifications/initialized`,
//! `tools/list` (following `nextCursor`) and `tools/call`, each a JSON-RPC message in its own
//! POST. The server responds with `application/json` or with a `text/event-stream` whose
//! events carry JSON-RPC messages, and the message with the request's id is the response. The
//! `Mcp-Session-Id` the server assigns at initialization is sent on every later request, and
//! a 404 (the server forgot the session) starts a new session once.
//!
//! NOTE: the client is written here over the engine's [`HttpClient`] instead of the `rmcp`
//! client, because tool traffic must take the egress proxy's Unix socket with absolute-form
//! request URIs, which `rmcp`'s HTTP transports do not send. The tests run it against an
//! `rmcp` server.
//!
//! A server's tools are offered as `<server>__<tool>`, so two servers cannot collide, and
//! the server name is the toolkit shown in labels ("Calling Docs…").

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::composio::is_valid_tool_name;
use super::outbound::{self, Reply, cap_result};
use super::{BrokerTool, ToolBroker, ToolContext, ToolOutput};
use crate::http::HttpClient;
use crate::providers::ToolSpec;

/// The MCP revision this client speaks.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// Separator between the server name and the tool name in offered tool names.
pub const NAME_SEPARATOR: &str = "__";
const SESSION_HEADER: &str = "mcp-session-id";
const MAX_LIST_PAGES: usize = 20;

/// Settings of one MCP server.
#[derive(Debug, Clone)]
pub struct McpServerSettings {
    /// Short name, `[a-z0-9_-]`, used as the toolkit and the tool name prefix.
    pub name: String,
    /// The streamable HTTP endpoint, such as `https://mcp.example.com/mcp`.
    pub url: String,
    /// Time limit of one request, tool calls included.
    pub request_timeout: Duration,
    /// Cap on a tool result sent back to the model, in bytes.
    pub max_result_bytes: usize,
}

/// Failure of an MCP exchange.
#[derive(Debug, thiserror::Error)]
enum McpError {
    #[error("{0}")]
    Transport(String),
    #[error("the MCP server answered HTTP {0}")]
    Status(u16),
    #[error("the MCP server forgot the session")]
    SessionExpired,
    #[error("the MCP server returned error {code}: {message}")]
    Rpc { code: i64, message: String },
    #[error("the MCP server's answer has no response to request {0}")]
    NoResponse(u64),
}

/// The tools of one MCP server.
pub struct McpBroker {
    settings: McpServerSettings,
    client: HttpClient,
    /// `Some(session id or None)` once initialized; `None` before.
    session: tokio::sync::Mutex<Option<Option<String>>>,
    next_id: AtomicU64,
}

impl McpBroker {
    /// Builds the broker; the session starts with the first listing.
    #[must_use]
    pub fn new(settings: McpServerSettings, client: HttpClient) -> Self {
        Self {
            settings,
            client,
            session: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
        }
    }

    async fn post(&self, session: Option<&str>, message: &Value) -> Result<Reply, McpError> {
        let mut headers = vec![
            (hyper::header::ACCEPT, HeaderValue::from_static("application/json, text/event-stream")),
            (HeaderName::from_static("mcp-protocol-version"), HeaderValue::from_static(PROTOCOL_VERSION)),
        ];
        if let Some(session) = session {
            let value = HeaderValue::from_str(session).map_err(|_| McpError::Transport("the MCP session id is not a valid header value".into()))?;
            headers.push((HeaderName::from_static(SESSION_HEADER), value));
        }
        let reply = outbound::send(&self.client, Method::POST, &self.settings.url, &headers, Some(message), self.settings.request_timeout)
            .await
            .map_err(McpError::Transport)?;
        match reply.status {
            StatusCode::NOT_FOUND if session.is_some() => Err(McpError::SessionExpired),
            status if status.is_success() => Ok(reply),
            status => Err(McpError::Status(status.as_u16())),
        }
    }

    /// Sends a request in `session` and returns the `result` of its response.
    async fn rpc(&self, session: Option<&str>, method: &str, params: Value) -> Result<(Value, Reply), McpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let reply = self.post(session, &message).await?;
        let response = find_response(&reply, id).ok_or(McpError::NoResponse(id))?;
        if let Some(error) = response.get("error") {
            let code = error["code"].as_i64().unwrap_or(0);
            let message = error["message"].as_str().unwrap_or("no message").to_owned();
            return Err(McpError::Rpc { code, message });
        }
        Ok((response["result"].clone(), reply))
    }

    async fn initialize(&self) -> Result<Option<String>, McpError> {
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "houston-engine", "version": env!("CARGO_PKG_VERSION")},
        });
        let (result, reply) = self.rpc(None, "initialize", params).await?;
        let session = reply.headers.get(SESSION_HEADER).and_then(|value| value.to_str().ok()).map(str::to_owned);
        let server = result["serverInfo"]["name"].as_str().unwrap_or("unnamed");
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.post(session.as_deref(), &initialized).await?;
        tracing::info!(server = %self.settings.name, server_info = server, "started an MCP session");
        Ok(session)
    }

    /// Runs `method` in the current session, starting one first if needed and once more if
    /// the server forgot it.
    async fn request(&self, method: &str, params: Value) -> Result<Value, McpError> {
        for attempt in 0..2 {
            let session = {
                let mut current = self.session.lock().await;
                if current.is_none() || attempt > 0 {
                    *current = Some(self.initialize().await?);
                }
                current.clone().flatten()
            };
            match self.rpc(session.as_deref(), method, params.clone()).await {
                Err(McpError::SessionExpired) if attempt == 0 => continue,
                result => return result.map(|(result, _)| result),
            }
        }
        Err(McpError::SessionExpired)
    }

    fn offered_name(&self, tool: &str) -> String {
        format!("{}{NAME_SEPARATOR}{tool}", self.settings.name)
    }
}

#[async_trait]
impl ToolBroker for McpBroker {
    fn name(&self) -> &str {
        &self.settings.name
    }

    async fn list_tools(&self, _context: &ToolContext) -> Result<Vec<BrokerTool>, String> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let params = cursor.as_ref().map_or_else(|| json!({}), |cursor| json!({"cursor": cursor}));
            let result = self.request("tools/list", params).await.map_err(|error| error.to_string())?;
            for tool in result["tools"].as_array().into_iter().flatten() {
                let Some(name) = tool["name"].as_str() else { continue };
                let offered = self.offered_name(name);
                if !is_valid_tool_name(&offered) {
                    tracing::warn!(server = %self.settings.name, tool = name, "skipped an MCP tool whose name is not a valid tool name");
                    continue;
                }
                let schema = if tool["inputSchema"].is_object() { tool["inputSchema"].clone() } else { json!({"type": "object"}) };
                let description = tool["description"].as_str().or_else(|| tool["title"].as_str()).unwrap_or(name).to_owned();
                let spec = ToolSpec { name: offered, description, input_schema: schema };
                tools.push(BrokerTool { spec, toolkit: Some(self.settings.name.clone()) });
            }
            cursor = result["nextCursor"].as_str().filter(|next| !next.is_empty()).map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(tools)
    }

    async fn call(&self, _context: &ToolContext, tool: &str, input: &Value) -> ToolOutput {
        let prefix = format!("{}{NAME_SEPARATOR}", self.settings.name);
        let Some(name) = tool.strip_prefix(&prefix) else {
            return ToolOutput::Error(format!("unknown tool {tool:?} for the MCP server {}", self.settings.name));
        };
        let arguments = if input.is_object() { input.clone() } else { json!({}) };
        let result = match self.request("tools/call", json!({"name": name, "arguments": arguments})).await {
            Ok(result) => result,
            Err(McpError::Rpc { code: -32602, message }) => {
                return ToolOutput::Error(format!("{tool} rejected its arguments or is no longer offered: {message}"));
            }
            Err(error) => return ToolOutput::Error(format!("{tool} failed: {error}")),
        };
        let text = result_text(&result);
        let text = cap_result(text, self.settings.max_result_bytes);
        if result["isError"].as_bool() == Some(true) {
            ToolOutput::Error(text)
        } else {
            ToolOutput::Ok(text)
        }
    }
}

/// Joins the text of a `tools/call` result; other content types are named, not inlined.
fn result_text(result: &Value) -> String {
    let mut pieces = Vec::new();
    for item in result["content"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some("text") => pieces.push(item["text"].as_str().unwrap_or_default().to_owned()),
            Some(other) => pieces.push(format!("[{other} content left out]")),
            None => {}
        }
    }
    if pieces.is_empty() && !result["structuredContent"].is_null() {
        return result["structuredContent"].to_string();
    }
    pieces.join("\n")
}

/// Finds the JSON-RPC response with `id` in a JSON or event-stream body.
fn find_response(reply: &Reply, id: u64) -> Option<Value> {
    let is_stream = reply
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    let messages: Vec<Value> = if is_stream {
        sse_data(&String::from_utf8_lossy(&reply.body)).iter().filter_map(|data| serde_json::from_str(data).ok()).collect()
    } else {
        match reply.json() {
            Value::Array(batch) => batch,
            single => vec![single],
        }
    };
    messages.into_iter().find(|message| message["id"].as_u64() == Some(id) && (message.get("result").is_some() || message.get("error").is_some()))
}

/// Returns the `data` of each event in an event-stream body, multi-line data joined.
fn sse_data(body: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in body.lines() {
        if line.is_empty() {
            if !current.is_empty() {
                events.push(current.join("\n"));
                current.clear();
            }
            continue;
        }
        if let Some(data) = line.strip_prefix("data:") {
            current.push(data.strip_prefix(' ').unwrap_or(data));
        }
    }
    if !current.is_empty() {
        events.push(current.join("\n"));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_stream_data_is_split_per_event() {
        let body = "event: message\ndata: {\"a\":1}\n\n: comment\ndata: line1\ndata: line2\n\n";
        assert_eq!(sse_data(body), vec!["{\"a\":1}".to_owned(), "line1\nline2".to_owned()]);
    }

    #[test]
    fn result_text_joins_text_items() {
        let result = json!({"content": [{"type": "text", "text": "a"}, {"type": "image", "data": "…"}, {"type": "text", "text": "b"}]});
        assert_eq!(result_text(&result), "a\n[image content left out]\nb");
    }
}
