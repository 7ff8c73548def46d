//! The session store: `.houston/sessions/<user-id>/<session-id>.jsonl`, one JSON record per
//! line, append-only.
//!
//! A turn writes two records: the user message when the turn is accepted and the assistant
//! record (completed, failed or cancelled) when it ends, each followed by an fsync. A torn or
//! NUL-damaged line is skipped, copied to `<session-id>.jsonl.damaged` and logged, and a new
//! record always starts on a new line. Ids are validated types, so a path built from them
//! never leaves the sessions folder.

mod record;
mod store;

pub use record::{AssistantRecord, SessionRecord, ToolCallRecord, TurnStatus, UserRecord, now};
pub use store::{LoadMode, PendingSync, SessionStore, SessionSummary, StoreError};
