//! Local stand-ins for third-party services, for tests and benchmarks.
//!
//! Each stand-in listens on `127.0.0.1:0` in-process, speaks the documented wire protocol of
//! the service it replaces, replies from per-test scripts (or a default reply) and records the
//! requests it received so tests can assert on headers and bodies.
//!
//! - [`anthropic`]: the Anthropic Messages API with server-sent events.
//! - [`composio`]: the Composio v3 REST endpoints for tools, connected accounts and links.
//! - [`openai`]: OpenAI-compatible Chat Completions with server-sent events.
//! - [`proxy`]: a recording forward proxy on a Unix socket, standing in for the egress proxy.

pub mod anthropic;
pub mod composio;
pub mod openai;
pub mod proxy;
mod recorded;

pub use recorded::RecordedRequest;
