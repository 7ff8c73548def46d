//! Egress proxy: per-agent hostname allowlist, credential injection and egress log.
//!
//! One [`EgressProxy`] runs per host, outside every sandbox. It opens one Unix socket per
//! agent ([`EgressProxy::open_agent`]), so the proxy identifies the agent by the socket a
//! request arrives on, never from anything the sandbox sends. The engine inside a sandbox
//! sends every outbound request over its socket as a plain HTTP/1.1 proxy request with an
//! absolute-form URI, or opens a `CONNECT` tunnel.
//!
//! Invariants:
//! - A request whose scheme, host and port exactly match a [`TrustedUpstream`] gets that
//!   upstream's credential, replacing any credential header the sandbox sent. No other
//!   request ever gets a credential, so no key has to exist inside a sandbox.
//! - Every other host must be on the agent's allowlist, and every address it resolves to
//!   must be a global unicast address ([`forbidden_range`]). The proxy connects to an
//!   address it checked and never resolves the name again.
//! - The proxy never follows redirects; the engine's next request passes the same checks.
//! - Response bodies stream through frame by frame, with no total timeout.
//! - Every request and tunnel gets one [`EgressLogEntry`] without query strings, headers or
//!   bodies.

mod address;
mod agent;
mod body;
mod config;
mod connect;
mod forward;
mod log;
mod policy;
mod proxy;
mod rejection;
mod resolver;
mod target;
mod tunnel;

pub use address::forbidden_range;
pub use agent::AgentHandle;
pub use config::{
    ANTHROPIC_DEFAULT_BASE_URL, COMPOSIO_DEFAULT_BASE_URL, ConfigError, CredentialHeader,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CONNECTIONS_PER_AGENT, EgressConfig,
    OPENAI_DEFAULT_BASE_URL, TrustedUpstream,
};
pub use log::{EgressKind, EgressLog, EgressLogEntry, EgressOutcome};
pub use policy::{AgentEgressPolicy, PolicyError};
pub use proxy::{EgressError, EgressProxy, EgressProxyBuilder};
pub use resolver::{ResolveFuture, Resolver, StaticResolver, SystemResolver};
pub use target::{Origin, Scheme, TargetError};

/// Path of the egress socket inside a sandbox.
pub const SANDBOX_SOCKET_PATH: &str = "/run/houston/egress.sock";
