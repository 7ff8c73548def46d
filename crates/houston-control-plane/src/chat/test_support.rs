//! In-memory ports and a scripted engine for the chat module's own tests. The end-to-end
//! tests of the `houston` binary run the real store, runtime manager and engine instead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use houston_protocol::{
    AgentId, EngineEndpoint, EngineTurnRequest, EventKind, SessionId, StreamEvent, TurnId, Usage,
    UserId, WorkspaceId,
};
use secrecy::SecretString;
use tokio::sync::watch;

use super::error::ChatError;
use super::ports::{
    Acquisition, AgentAccess, Authenticator, Caller, ChatAgent, CreatedTurn, Runtimes,
    RuntimeLease, SessionSummary, TurnRecord, TurnStatus, TurnStore, TurnUsage,
};
use super::service::ChatPorts;

pub const ENGINE_TOKEN: &str = "engine-secret";

/// Tokens `juan` and `ana` are users; agent `hr` is granted to both, `sales` to no user.
pub struct MemoryAccess {
    pub audit: Mutex<Vec<(String, String, bool)>>,
    pub limit: Mutex<Option<u32>>,
}

#[async_trait]
impl Authenticator for MemoryAccess {
    async fn authenticate(&self, token: &str) -> Result<Caller, ChatError> {
        match token {
            "juan" | "ana" => Ok(Caller::new(UserId::parse(token).unwrap())),
            _ => Err(ChatError::Unauthenticated("token signature is invalid".into())),
        }
    }
}

#[async_trait]
impl AgentAccess for MemoryAccess {
    async fn authorize(&self, caller: &Caller, agent: &str, action: &'static str) -> Result<ChatAgent, ChatError> {
        let allowed = agent == "hr";
        self.audit.lock().unwrap().push((caller.user_id.to_string(), action.to_owned(), allowed));
        if !allowed {
            return Err(ChatError::AgentNotFound);
        }
        Ok(ChatAgent { agent_id: AgentId::parse("hr").unwrap(), workspace_id: WorkspaceId::parse("acme").unwrap() })
    }

    async fn check_rate_limit(&self, _caller: &Caller, _agent: &ChatAgent) -> Result<(), ChatError> {
        let mut limit = self.limit.lock().unwrap();
        match limit.as_mut() {
            Some(0) => Err(ChatError::RateLimited { retry_after_secs: 7 }),
            Some(left) => {
                *left -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// A runtime whose first acquisition is a cold start.
pub struct MemoryRuntimes {
    pub endpoint: EngineEndpoint,
    /// When set, every start fails with this reason.
    pub start_failure: Mutex<Option<String>>,
    pub awake: Mutex<bool>,
    pub leases: Arc<Mutex<u32>>,
}

struct LeaseGuard(Arc<Mutex<u32>>);

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        *self.0.lock().unwrap() -= 1;
    }
}

impl MemoryRuntimes {
    fn lease(&self, cold_start: Option<Duration>) -> RuntimeLease {
        *self.leases.lock().unwrap() += 1;
        RuntimeLease {
            endpoint: self.endpoint.clone(),
            token: SecretString::from(ENGINE_TOKEN),
            cold_start,
            guard: Box::new(LeaseGuard(Arc::clone(&self.leases))),
        }
    }
}

#[async_trait]
impl Runtimes for MemoryRuntimes {
    async fn acquire(&self, _agent: &ChatAgent) -> Result<Acquisition, ChatError> {
        let mut awake = self.awake.lock().unwrap();
        if *awake {
            return Ok(Acquisition::Ready(self.lease(None)));
        }
        if let Some(reason) = self.start_failure.lock().unwrap().clone() {
            return Ok(Acquisition::Starting(Box::pin(async move {
                Err(ChatError::RuntimeUnavailable { agent: "hr".into(), reason, retry_after_secs: 3 })
            })));
        }
        *awake = true;
        let lease = self.lease(Some(Duration::from_millis(42)));
        Ok(Acquisition::Starting(Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(lease)
        })))
    }
}

#[derive(Default)]
pub struct MemoryTurns {
    pub turns: Mutex<HashMap<TurnId, TurnRecord>>,
    pub usage: Mutex<Vec<(TurnId, TurnStatus, TurnUsage)>>,
    pub sessions: Mutex<HashMap<SessionId, (UserId, AgentId, String)>>,
}

#[async_trait]
impl TurnStore for MemoryTurns {
    async fn create_turn(&self, record: TurnRecord, title: &str) -> Result<CreatedTurn, ChatError> {
        let mut sessions = self.sessions.lock().unwrap();
        if let Some((user, agent, _)) = sessions.get(&record.session_id) {
            if *user != record.user_id || *agent != record.agent_id {
                return Err(ChatError::SessionNotFound);
            }
        }
        let mut turns = self.turns.lock().unwrap();
        if let Some(key) = &record.idempotency_key {
            let existing = turns.values().find(|t| {
                t.idempotency_key.as_ref() == Some(key) && t.user_id == record.user_id && t.agent_id == record.agent_id
            });
            if let Some(existing) = existing {
                return Ok(CreatedTurn::Existing(existing.clone()));
            }
        }
        sessions
            .entry(record.session_id.clone())
            .or_insert((record.user_id.clone(), record.agent_id.clone(), title.to_owned()));
        turns.insert(record.turn_id.clone(), record.clone());
        Ok(CreatedTurn::New(record))
    }

    async fn get_turn(&self, turn_id: &TurnId) -> Result<Option<TurnRecord>, ChatError> {
        Ok(self.turns.lock().unwrap().get(turn_id).cloned())
    }

    async fn set_prefix(&self, turn_id: &TurnId, prefix_len: u64, cold_start_ms: Option<u64>) -> Result<(), ChatError> {
        let mut turns = self.turns.lock().unwrap();
        let turn = turns.get_mut(turn_id).unwrap();
        turn.prefix_len = Some(prefix_len);
        turn.cold_start_ms = cold_start_ms;
        Ok(())
    }

    async fn finish_turn(&self, record: &TurnRecord, status: TurnStatus, usage: &TurnUsage) -> Result<(), ChatError> {
        self.turns.lock().unwrap().get_mut(&record.turn_id).unwrap().status = status;
        self.usage.lock().unwrap().push((record.turn_id.clone(), status, usage.clone()));
        Ok(())
    }

    async fn session_belongs_to(&self, session_id: &SessionId, user_id: &UserId, agent_id: &AgentId) -> Result<bool, ChatError> {
        let sessions = self.sessions.lock().unwrap();
        Ok(sessions.get(session_id).is_some_and(|(u, a, _)| u == user_id && a == agent_id))
    }

    async fn list_sessions(&self, user_id: &UserId, agent_id: &AgentId) -> Result<Vec<SessionSummary>, ChatError> {
        let sessions = self.sessions.lock().unwrap();
        let now = time::OffsetDateTime::now_utc();
        Ok(sessions
            .iter()
            .filter(|(_, (u, a, _))| u == user_id && a == agent_id)
            .map(|(id, (_, _, title))| SessionSummary { session_id: id.clone(), title: title.clone(), created_at: now, updated_at: now })
            .collect())
    }
}

/// A scripted engine on a Unix socket: streams "Hel", "lo" then `turn.completed`, or, for the
/// message `slow`, streams deltas every 20 ms until cancelled.
#[derive(Default)]
pub struct ScriptedEngine {
    pub turns: Mutex<HashMap<TurnId, (Vec<StreamEvent>, bool)>>,
    pub started: Mutex<u32>,
    pub cancelled: Mutex<Vec<TurnId>>,
    /// Connections accepted on the engine socket.
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    changed: Mutex<Option<watch::Sender<()>>>,
}

impl ScriptedEngine {
    fn notify(&self) {
        if let Some(sender) = self.changed.lock().unwrap().as_ref() {
            sender.send_replace(());
        }
    }

    fn push(&self, turn_id: &TurnId, kind: EventKind) {
        let mut turns = self.turns.lock().unwrap();
        let (events, done) = turns.entry(turn_id.clone()).or_default();
        let seq = events.len() as u64 + 1;
        *done |= kind.is_terminal();
        events.push(StreamEvent { seq, turn_id: turn_id.clone(), kind });
        drop(turns);
        self.notify();
    }
}

/// Starts the scripted engine on a socket in `dir`.
pub async fn start_engine(dir: &std::path::Path) -> (Arc<ScriptedEngine>, EngineEndpoint) {
    let engine = Arc::new(ScriptedEngine::default());
    *engine.changed.lock().unwrap() = Some(watch::channel(()).0);
    let path: PathBuf = dir.join("engine.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let app = Router::new()
        .route("/v1/sessions/{session}/turns", post(engine_turn))
        .route("/v1/sessions/{session}/turns/{turn}/events", get(engine_events))
        .route("/v1/sessions/{session}/turns/{turn}/cancel", post(engine_cancel))
        .with_state(Arc::clone(&engine));
    let connections = Arc::clone(&engine.connections);
    let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
        connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (engine, EngineEndpoint::Unix(path))
}

fn check_token(headers: &HeaderMap) {
    let expected = format!("Bearer {ENGINE_TOKEN}");
    assert_eq!(headers.get("authorization").unwrap().to_str().unwrap(), expected);
}

async fn engine_turn(
    State(engine): State<Arc<ScriptedEngine>>,
    headers: HeaderMap,
    Path(session): Path<String>,
    axum::Json(request): axum::Json<EngineTurnRequest>,
) -> Response {
    check_token(&headers);
    let turn_id = request.turn_id.clone().unwrap();
    *engine.started.lock().unwrap() += 1;
    engine.push(&turn_id, EventKind::TurnAccepted { session_id: SessionId::parse(session).unwrap() });
    let writer = Arc::clone(&engine);
    let id = turn_id.clone();
    tokio::spawn(async move {
        if request.message == "slow" {
            for _ in 0..500 {
                if writer.cancelled.lock().unwrap().contains(&id) {
                    writer.push(&id, EventKind::TurnCancelled {});
                    return;
                }
                writer.push(&id, EventKind::MessageDelta { text: "x".into() });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        for text in ["Hel", "lo"] {
            tokio::time::sleep(Duration::from_millis(5)).await;
            writer.push(&id, EventKind::MessageDelta { text: text.into() });
        }
        let usage = Usage { input_tokens: 11, output_tokens: 2 };
        writer.push(&id, EventKind::TurnCompleted { usage, stop_reason: "end_turn".into() });
    });
    stream_events(engine, turn_id, 0)
}

#[derive(serde::Deserialize)]
struct After {
    after: u64,
}

async fn engine_events(
    State(engine): State<Arc<ScriptedEngine>>,
    headers: HeaderMap,
    Path((_session, turn)): Path<(String, String)>,
    Query(after): Query<After>,
) -> Response {
    check_token(&headers);
    stream_events(engine, TurnId::parse(turn).unwrap(), after.after)
}

async fn engine_cancel(
    State(engine): State<Arc<ScriptedEngine>>,
    headers: HeaderMap,
    Path((_session, turn)): Path<(String, String)>,
) -> &'static str {
    check_token(&headers);
    engine.cancelled.lock().unwrap().push(TurnId::parse(turn).unwrap());
    "{}"
}

fn stream_events(engine: Arc<ScriptedEngine>, turn_id: TurnId, after: u64) -> Response {
    let changed = engine.changed.lock().unwrap().as_ref().unwrap().subscribe();
    let stream = futures::stream::unfold((engine, changed, after), move |(engine, mut changed, sent)| {
        let turn_id = turn_id.clone();
        async move {
            loop {
                changed.borrow_and_update();
                let (next, done) = {
                    let turns = engine.turns.lock().unwrap();
                    let (events, done) = turns.get(&turn_id)?;
                    (events.get(sent as usize).cloned(), *done)
                };
                if let Some(event) = next {
                    let frame = Bytes::from(houston_protocol::sse::encode(&event));
                    return Some((Ok::<_, std::convert::Infallible>(frame), (engine, changed, sent + 1)));
                }
                if done {
                    return None;
                }
                changed.changed().await.ok()?;
            }
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// Everything a chat test needs: ports over memory and a scripted engine.
pub struct Fixture {
    pub access: Arc<MemoryAccess>,
    pub runtimes: Arc<MemoryRuntimes>,
    pub turns: Arc<MemoryTurns>,
    pub engine: Arc<ScriptedEngine>,
    pub _dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (engine, endpoint) = start_engine(dir.path()).await;
        Self {
            access: Arc::new(MemoryAccess { audit: Mutex::default(), limit: Mutex::default() }),
            runtimes: Arc::new(MemoryRuntimes {
                endpoint,
                start_failure: Mutex::default(),
                awake: Mutex::new(false),
                leases: Arc::default(),
            }),
            turns: Arc::new(MemoryTurns::default()),
            engine,
            _dir: dir,
        }
    }

    pub fn ports(&self) -> ChatPorts {
        ChatPorts {
            auth: self.access.clone(),
            access: self.access.clone(),
            runtimes: self.runtimes.clone(),
            turns: self.turns.clone(),
        }
    }
}
