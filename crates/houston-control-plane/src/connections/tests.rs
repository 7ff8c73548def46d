//! Tests of the connection and approval routes against the Composio stand-in, a recording
//! engine on a Unix socket, and the real SQLite store for the store-backed ports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Path as AxumPath, State as AxumState};
use axum::http::HeaderMap;
use houston_protocol::{AgentId, EngineEndpoint, SessionId, TurnId, UserId, WorkspaceId};
use houston_store::{AgentSettings, AuditEntry, AuditFilter, NewAgent};
use houston_testkit::composio::{ComposioStandIn, StandInTool};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::*;
use crate::chat::{
    Acquisition, AgentAccess, Authenticator, Caller, ChatPorts, CreatedTurn, RuntimeLease, Runtimes, SessionSummary,
    TurnRecord, TurnStatus, TurnStore, TurnUsage,
};

const ENGINE_TOKEN: &str = "engine-secret";
const COMPOSIO_KEY: &str = "composio-key";

/// Users `juan` and `ana` may use agent `hr` of workspace `acme`; nobody may use `sales`.
struct Access;

#[async_trait]
impl Authenticator for Access {
    async fn authenticate(&self, token: &str) -> Result<Caller, ChatError> {
        match token {
            "juan" | "ana" => Ok(Caller::new(UserId::parse(token).unwrap())),
            _ => Err(ChatError::Unauthenticated("token signature is invalid".into())),
        }
    }
}

#[async_trait]
impl AgentAccess for Access {
    async fn authorize(&self, _caller: &Caller, agent: &str, _action: &'static str) -> Result<ChatAgent, ChatError> {
        if agent != "hr" {
            return Err(ChatError::AgentNotFound);
        }
        Ok(ChatAgent { agent_id: AgentId::parse("hr").unwrap(), workspace_id: WorkspaceId::parse("acme").unwrap() })
    }

    async fn check_rate_limit(&self, _caller: &Caller, _agent: &ChatAgent) -> Result<(), ChatError> {
        Ok(())
    }
}

struct Runtime(EngineEndpoint);

#[async_trait]
impl Runtimes for Runtime {
    async fn acquire(&self, _agent: &ChatAgent) -> Result<Acquisition, ChatError> {
        let lease = RuntimeLease { endpoint: self.0.clone(), token: SecretString::from(ENGINE_TOKEN), cold_start: None, guard: Box::new(()) };
        Ok(Acquisition::Ready(lease))
    }
}

/// One open turn, `t1` of `juan` in session `s1`.
struct Turns;

#[async_trait]
impl TurnStore for Turns {
    async fn create_turn(&self, record: TurnRecord, _title: &str) -> Result<CreatedTurn, ChatError> {
        Ok(CreatedTurn::New(record))
    }

    async fn get_turn(&self, turn_id: &TurnId) -> Result<Option<TurnRecord>, ChatError> {
        Ok((turn_id.as_str() == "t1").then(|| TurnRecord {
            turn_id: turn_id.clone(),
            session_id: SessionId::parse("s1").unwrap(),
            user_id: UserId::parse("juan").unwrap(),
            agent_id: AgentId::parse("hr").unwrap(),
            workspace_id: WorkspaceId::parse("acme").unwrap(),
            idempotency_key: None,
            prefix_len: Some(1),
            cold_start_ms: None,
            status: TurnStatus::Open,
            created_at: OffsetDateTime::now_utc(),
        }))
    }

    async fn set_prefix(&self, _turn_id: &TurnId, _prefix_len: u64, _cold_start_ms: Option<u64>) -> Result<(), ChatError> {
        Ok(())
    }

    async fn finish_turn(&self, _record: &TurnRecord, _status: TurnStatus, _usage: &TurnUsage) -> Result<(), ChatError> {
        Ok(())
    }

    async fn session_belongs_to(&self, _session_id: &SessionId, _user_id: &UserId, _agent_id: &AgentId) -> Result<bool, ChatError> {
        Ok(true)
    }

    async fn list_sessions(&self, _user_id: &UserId, _agent_id: &AgentId) -> Result<Vec<SessionSummary>, ChatError> {
        Ok(Vec::new())
    }
}

/// Toolkits `slack`, `gmail` and `hubspot`; audit entries kept in memory.
#[derive(Default)]
struct MemoryPorts {
    audit: Mutex<Vec<AuditEntry>>,
}

#[async_trait]
impl ConnectionPorts for MemoryPorts {
    async fn toolkits(&self, _agent: &ChatAgent) -> Result<Vec<String>, ChatError> {
        Ok(vec!["slack".into(), "gmail".into(), "hubspot".into()])
    }

    async fn audit(&self, entry: AuditEntry) -> Result<(), ChatError> {
        self.audit.lock().unwrap().push(entry);
        Ok(())
    }
}

/// Decisions the recording engine received: (session, turn, call, body).
type Decisions = Arc<Mutex<Vec<(String, String, String, Value)>>>;

/// Starts an engine that records approval decisions. Call id `missing` returns 404.
async fn start_engine(dir: &std::path::Path) -> (Decisions, EngineEndpoint) {
    let decisions: Decisions = Arc::default();
    let path = dir.join("engine.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let app = axum::Router::new()
        .route("/v1/sessions/{session}/turns/{turn}/approvals/{call}", post(engine_approval))
        .with_state(decisions.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (decisions, EngineEndpoint::Unix(path))
}

async fn engine_approval(
    AxumState(decisions): AxumState<Decisions>,
    headers: HeaderMap,
    AxumPath((session, turn, call)): AxumPath<(String, String, String)>,
    body: Bytes,
) -> Response {
    assert_eq!(headers["authorization"], format!("Bearer {ENGINE_TOKEN}"));
    if call == "missing" {
        let body = json!({"error": {"code": "approval_not_found", "message": "no tool call missing is waiting for approval"}});
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    let body: Value = serde_json::from_slice(&body).unwrap();
    let approved = body["approve"].as_bool().unwrap();
    decisions.lock().unwrap().push((session, turn.clone(), call.clone(), body));
    Json(json!({"turn_id": turn, "call_id": call, "approved": approved, "tool": "SLACK_SEND_MESSAGE"})).into_response()
}

struct Fixture {
    url: String,
    http: reqwest::Client,
    ports: Arc<MemoryPorts>,
    decisions: Decisions,
    composio: ComposioStandIn,
    stopping: crate::ShutdownSignal,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    fixture_with(true).await
}

async fn fixture_with(composio_configured: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (decisions, endpoint) = start_engine(dir.path()).await;
    let composio = ComposioStandIn::start(COMPOSIO_KEY).await.unwrap();
    for (slug, toolkit) in [("SLACK_SEND_MESSAGE", "slack"), ("GMAIL_SEND_EMAIL", "gmail"), ("HUBSPOT_GET_DEAL", "hubspot")] {
        composio.add_tool(StandInTool::new(slug, toolkit, &[]));
    }
    let chat = ChatService::new(ChatPorts {
        auth: Arc::new(Access),
        access: Arc::new(Access),
        runtimes: Arc::new(Runtime(endpoint)),
        turns: Arc::new(Turns),
    });
    let ports = Arc::new(MemoryPorts::default());
    let accounts = ComposioAccounts::new(composio.base_url(), SecretString::from(COMPOSIO_KEY)).unwrap();
    let composio_accounts = composio_configured.then_some(accounts);
    let service = ConnectionsService { chat, ports: ports.clone(), composio: composio_accounts, poll_interval: Duration::from_millis(20) };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stopping = crate::ShutdownSignal::default();
    let app = router(Arc::new(service)).layer(axum::Extension(stopping.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Fixture { url, http: reqwest::Client::new(), ports, decisions, composio, stopping, _dir: dir }
}

impl Fixture {
    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self.http.get(format!("{}{path}", self.url)).bearer_auth(token).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, token: &str, path: &str, body: &str) -> (u16, Value) {
        let request = self.http.post(format!("{}{path}", self.url)).bearer_auth(token).header("content-type", "application/json");
        let response = request.body(body.to_owned()).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }
}

fn states(body: &Value) -> HashMap<String, String> {
    body["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| (item["toolkit"].as_str().unwrap().to_owned(), item["state"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn connections_report_each_toolkit_state() {
    let fixture = fixture().await;
    fixture.composio.add_account("acme:juan", "slack", "ACTIVE");
    fixture.composio.add_account("acme:juan", "gmail", "EXPIRED");
    fixture.composio.add_account("acme:juan", "gmail", "INITIATED");
    fixture.composio.add_account("acme:ana", "hubspot", "EXPIRED");

    let (status, body) = fixture.get("juan", "/v1/agents/hr/connections").await;
    assert_eq!(status, 200, "{body}");
    let juan = states(&body);
    assert_eq!(juan["slack"], "active");
    assert_eq!(juan["gmail"], "pending", "pending wins over expired");
    assert_eq!(juan["hubspot"], "not_connected");
    assert_eq!(body["composio_configured"], true);

    let (_, body) = fixture.get("ana", "/v1/agents/hr/connections").await;
    let ana = states(&body);
    assert_eq!(ana["slack"], "not_connected", "ana never sees juan's accounts");
    assert_eq!(ana["hubspot"], "expired");
}

#[tokio::test]
async fn connections_without_composio_read_not_connected() {
    let fixture = fixture_with(false).await;
    fixture.composio.add_account("acme:juan", "slack", "ACTIVE");
    let (status, body) = fixture.get("juan", "/v1/agents/hr/connections").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["composio_configured"], false);
    assert_eq!(states(&body)["slack"], "not_connected");
}

#[tokio::test]
async fn connections_of_hidden_agent_are_not_found() {
    let fixture = fixture().await;
    let (status, body) = fixture.get("juan", "/v1/agents/sales/connections").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "agent_not_found");
    let (status, _) = fixture.get("mallory", "/v1/agents/hr/connections").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn waiting_listing_returns_when_connection_lands() {
    let fixture = fixture().await;
    fixture.composio.add_account("acme:juan", "slack", "INITIATED");
    let started = std::time::Instant::now();
    let waiting = fixture.get("juan", "/v1/agents/hr/connections?wait_for=slack&timeout_secs=20");
    let completing = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(fixture.composio.complete_link("acme:juan", "slack"));
    };
    let ((status, body), ()) = tokio::join!(waiting, completing);
    assert_eq!(status, 200, "{body}");
    assert_eq!(states(&body)["slack"], "active");
    assert!(started.elapsed() < Duration::from_secs(10), "returned after {:?}", started.elapsed());
}

#[tokio::test]
async fn waiting_listing_times_out_with_current_state() {
    let fixture = fixture().await;
    fixture.composio.add_account("acme:juan", "slack", "INITIATED");
    let (status, body) = fixture.get("juan", "/v1/agents/hr/connections?wait_for=slack&timeout_secs=1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(states(&body)["slack"], "pending");
}

#[tokio::test]
async fn waiting_for_unknown_toolkit_is_rejected() {
    let fixture = fixture().await;
    let (status, body) = fixture.get("juan", "/v1/agents/hr/connections?wait_for=jira").await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "wait_for");
}

#[tokio::test]
async fn approval_is_forwarded_and_audited() {
    let fixture = fixture().await;
    let path = "/v1/agents/hr/sessions/s1/turns/t1/approvals/toolu_01";
    let (status, body) = fixture.post("juan", path, r#"{"approve": true}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["approved"], true);
    assert_eq!(body["call_id"], "toolu_01");

    let decisions = fixture.decisions.lock().unwrap().clone();
    assert_eq!(decisions.len(), 1);
    assert_eq!((decisions[0].0.as_str(), decisions[0].1.as_str(), decisions[0].2.as_str()), ("s1", "t1", "toolu_01"));
    assert_eq!(decisions[0].3, json!({"approve": true}));

    let audit = fixture.ports.audit.lock().unwrap().clone();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "tool.approval");
    assert_eq!(audit[0].decision.as_deref(), Some("approved"));
    assert_eq!(audit[0].target.as_deref(), Some("toolu_01"));
    assert_eq!(audit[0].actor_user_id.as_ref().map(UserId::as_str), Some("juan"));
    assert_eq!(audit[0].details["tool"], "SLACK_SEND_MESSAGE");
}

#[tokio::test]
async fn rejection_is_audited_as_rejected() {
    let fixture = fixture().await;
    let (status, body) = fixture.post("juan", "/v1/agents/hr/sessions/s1/turns/t1/approvals/toolu_02", r#"{"approve": false}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["approved"], false);
    assert_eq!(fixture.ports.audit.lock().unwrap()[0].decision.as_deref(), Some("rejected"));
}

#[tokio::test]
async fn invalid_approval_rejected_before_side_effects() {
    let fixture = fixture().await;
    let (status, body) = fixture.post("juan", "/v1/agents/hr/sessions/s1/turns/t1/approvals/bad.id", r#"{"approve": "yes"}"#).await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["call_id", "approve"]);
    assert!(fixture.decisions.lock().unwrap().is_empty());
    assert!(fixture.ports.audit.lock().unwrap().is_empty());
}

#[tokio::test]
async fn approval_unknown_call_not_found() {
    let fixture = fixture().await;
    let (status, body) = fixture.post("juan", "/v1/agents/hr/sessions/s1/turns/t1/approvals/missing", r#"{"approve": true}"#).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "approval_not_found");
    let (status, _) = fixture.post("juan", "/v1/agents/hr/sessions/s1/turns/t9/approvals/toolu_01", r#"{"approve": true}"#).await;
    assert_eq!(status, 404);
    let (status, _) = fixture.post("ana", "/v1/agents/hr/sessions/s1/turns/t1/approvals/toolu_01", r#"{"approve": true}"#).await;
    assert_eq!(status, 404, "another user's turn answers like an unknown one");
    assert!(fixture.ports.audit.lock().unwrap().is_empty());
}

#[tokio::test]
async fn store_ports_read_integrations_and_write_audit() {
    let test_store = houston_store::testing::sqlite_store(2).await.unwrap();
    let store = test_store.store.clone();
    let workspace = store.create_workspace("acme", "Acme").await.unwrap();
    let agent = store
        .create_agent(NewAgent {
            workspace_id: workspace.id.clone(),
            slug: "hr".into(),
            name: "HR".into(),
            description: String::new(),
            icon: None,
            category: None,
            definition: json!({"id": "hr", "name": "HR", "integrations": ["Slack", "gmail"]}),
            instructions: String::new(),
            settings: AgentSettings::default(),
        })
        .await
        .unwrap();
    let ports = StorePorts(store.clone());
    let chat_agent = ChatAgent { agent_id: agent.id.clone(), workspace_id: workspace.id.clone() };
    assert_eq!(ports.toolkits(&chat_agent).await.unwrap(), vec!["slack".to_owned(), "gmail".to_owned()]);

    let entry = AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at: OffsetDateTime::now_utc(),
        workspace_id: Some(workspace.id.clone()),
        actor_user_id: None,
        action: "tool.approval".into(),
        agent_id: Some(agent.id.clone()),
        target: Some("toolu_01".into()),
        decision: Some("approved".into()),
        details: json!({"tool": "SLACK_SEND_MESSAGE"}),
    };
    ports.audit(entry).await.unwrap();
    let filter = AuditFilter { action: Some("tool.approval".into()), user_id: None, agent_id: None, before: None, limit: 10 };
    let listed = store.list_audit_entries(&workspace.id, &filter).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].decision.as_deref(), Some("approved"));
}

#[tokio::test]
async fn invalid_query_uses_error_format() {
    let fixture = fixture().await;
    let response = fixture.http.get(format!("{}/v1/agents/hr/connections?wait_for=slack&timeout_secs=abc", fixture.url)).bearer_auth("juan").send().await.unwrap();

    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_query", "{body}");
    assert_eq!(body["error"]["details"]["parameter"], "timeout_secs", "{body}");
}

#[tokio::test]
async fn waiting_without_composio_answers_at_once() {
    let fixture = fixture_with(false).await;

    // A held request would take the full wait (60 s); 10 s leaves room for a slow machine.
    let request = fixture.get("juan", "/v1/agents/hr/connections?wait_for=slack&timeout_secs=9999");
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), request).await.expect("the listing answered at once");

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["composio_configured"], false);
    assert_eq!(states(&body)["slack"], "not_connected");
}

#[tokio::test]
async fn shutdown_ends_waiting_listing() {
    let fixture = fixture().await;
    fixture.composio.add_account("acme:juan", "slack", "INITIATED");
    let url = format!("{}/v1/agents/hr/connections?wait_for=slack&timeout_secs=60", fixture.url);
    let request = fixture.http.get(url).bearer_auth("juan").send();
    let waiting = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "the listing waits while the connection is pending");

    fixture.stopping.0.cancel();

    let response = tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("the listing ended on shutdown").unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(states(&body)["slack"], "pending");
}
