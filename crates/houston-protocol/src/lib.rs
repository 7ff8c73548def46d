//! Wire types shared by every Houston Cloud component.
//!
//! This crate owns the shapes that cross a process boundary: validated ids, the stream
//! events a turn produces, the chat and turn request bodies, the error body, the engine
//! endpoint notation and the server-sent events framing. It does no I/O.
//!
//! Invariant: an id type can only be built by parsing, so any value of one is safe to use
//! as a single path component.

pub mod connection;
pub mod definition;
pub mod endpoint;
pub mod error;
pub mod event;
pub mod ids;
pub mod request;
pub mod sse;

pub use connection::{ConnectionState, composio_user_id};
pub use definition::{AgentDefinition, DefinitionError};
pub use endpoint::EngineEndpoint;
pub use error::{ErrorBody, ErrorDetail};
pub use event::{EventKind, StreamEvent, ToolOutcome, TurnError, Usage};
pub use ids::{AgentId, IdError, SessionId, TurnId, UserId, WorkspaceId};
pub use request::{ChatRequest, EngineTurnRequest};
