//! The chat flow of the public API: `POST /v1/chat`, the session routes under
//! `/v1/agents/{agent}/sessions`, and the `GET /v1/ws` WebSocket.
//!
//! A message goes through these steps, in this order: authenticate, authorize, audit,
//! rate-limit, store the turn and emit `turn.accepted` (seq 1), wake the runtime
//! (`agent.waking` and `agent.ready` on a cold start), and forward to the engine. An agent the
//! caller may not use gets the same 404 as an unknown one. The engine's events are renumbered
//! so the client's seqs stay contiguous. The engine's own `turn.accepted` is dropped. How resume maps client seqs
//! onto the engine's is described in [`replay`].
//!
//! Client connections are held here, not at the runtime: a runtime lease lives only while a
//! turn is open, so a browser that stays connected does not keep an agent awake.

pub mod adapters;
pub mod engine_client;
pub mod error;
pub mod ports;
pub mod replay;
pub mod routes;
pub mod service;
pub mod turn_log;
pub mod turn_table;
pub mod validate;
pub mod ws;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use engine_client::{EngineClient, EngineError};
pub use error::ChatError;
pub use ports::{
    Acquisition, AgentAccess, Authenticator, Caller, ChatAgent, CreatedTurn, Runtimes,
    RuntimeLease, SessionSummary, TurnRecord, TurnStatus, TurnStore, TurnUsage,
};
pub use adapters::{AgentSpecSource, ChatLimits, ControlPlaneChat, ManagerRuntimes};
pub use service::{ChatPorts, ChatService};
pub use turn_table::TurnTable;

/// Returns the chat routes, ready to be merged into the control plane's router.
pub fn router(service: Arc<ChatService>) -> Router {
    Router::new()
        .route("/v1/chat", post(routes::post_chat))
        .route("/v1/ws", get(ws::upgrade))
        .route("/v1/agents/{agent}/sessions", get(routes::list_sessions))
        .route("/v1/agents/{agent}/sessions/{session_id}", get(routes::get_session))
        .route(
            "/v1/agents/{agent}/sessions/{session_id}/turns/{turn_id}/events",
            get(routes::turn_events),
        )
        .route(
            "/v1/agents/{agent}/sessions/{session_id}/turns/{turn_id}/cancel",
            post(routes::cancel_turn),
        )
        .with_state(service)
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
