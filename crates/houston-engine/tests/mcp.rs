//! The MCP broker against a small `rmcp` server that the test starts, in both response modes
//! of the streamable HTTP transport (`application/json` and `text/event-stream`).

use std::sync::Arc;
use std::time::Duration;

use houston_engine::http::HttpClient;
use houston_engine::tools::mcp::{McpBroker, McpServerSettings};
use houston_engine::tools::{ToolBroker, ToolContext, ToolOutput};
use houston_protocol::{SessionId, TurnId, UserId};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

/// A documentation search server with one working and one failing tool.
#[derive(Clone)]
struct DocsServer;

impl ServerHandler for DocsServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]});
        let Value::Object(schema) = schema else { unreachable!() };
        let schema = Arc::new(schema);
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new("search", "Search the documentation", schema.clone()),
            Tool::new("fail", "Always fails", schema),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let query = request.arguments.as_ref().and_then(|arguments| arguments.get("query")).and_then(Value::as_str).unwrap_or("");
        match request.name.as_ref() {
            "search" => Ok(CallToolResult::success(vec![ContentBlock::text(format!("found: {query}"))]).into()),
            "fail" => Ok(CallToolResult::error(vec![ContentBlock::text("the index is offline")]).into()),
            other => Err(ErrorData::invalid_params(format!("unknown tool {other}"), None)),
        }
    }
}

/// Starts the server: with sessions and event-stream responses, or stateless with JSON
/// responses (`rmcp` sends JSON only in stateless mode).
async fn start_server(json_response: bool) -> String {
    let config = StreamableHttpServerConfig::default().with_legacy_session_mode(!json_response).with_json_response(json_response);
    let service: StreamableHttpService<DocsServer, LocalSessionManager> =
        StreamableHttpService::new(|| Ok(DocsServer), Default::default(), config);
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}/mcp")
}

fn broker(url: String) -> McpBroker {
    let settings = McpServerSettings { name: "docs".into(), url, request_timeout: Duration::from_secs(10), max_result_bytes: 16_384 };
    McpBroker::new(settings, HttpClient::direct())
}

fn context() -> ToolContext {
    ToolContext {
        user_id: UserId::parse("juan").unwrap(),
        session_id: SessionId::parse("s1").unwrap(),
        turn_id: TurnId::generate(),
        toolkits: Vec::new(),
    }
}

async fn check_server(json_response: bool) {
    let broker = broker(start_server(json_response).await);
    let context = context();

    let tools = broker.list_tools(&context).await.unwrap();
    let names: Vec<&str> = tools.iter().map(|tool| tool.spec.name.as_str()).collect();
    assert_eq!(names, vec!["docs__search", "docs__fail"]);
    assert_eq!(tools[0].toolkit.as_deref(), Some("docs"));
    assert_eq!(tools[0].spec.input_schema["required"][0], "query");

    let found = broker.call(&context, "docs__search", &json!({"query": "vacation"})).await;
    assert_eq!(found, ToolOutput::Ok("found: vacation".into()));

    let failed = broker.call(&context, "docs__fail", &json!({"query": "x"})).await;
    assert_eq!(failed, ToolOutput::Error("the index is offline".into()));

    let unknown = broker.call(&context, "docs__missing", &json!({})).await;
    assert!(matches!(unknown, ToolOutput::Error(ref message) if message.contains("unknown tool missing")), "{unknown:?}");
}

#[tokio::test]
async fn mcp_server_with_event_stream_responses() {
    check_server(false).await;
}

#[tokio::test]
async fn mcp_server_with_json_responses() {
    check_server(true).await;
}

#[tokio::test]
async fn unreachable_mcp_server_fails_listing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    drop(listener);
    let error = broker(url).list_tools(&context()).await.unwrap_err();
    assert!(error.contains("failed to connect"), "{error}");
}
