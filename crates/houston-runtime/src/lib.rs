//! Runtime manager, activator and sandbox backends.
//!
//! An agent's runtime is one `houston engine` process serving the agent's volume. This crate
//! owns when that process runs and what it can reach:
//!
//! - [`RuntimeManager`] keeps each registered agent asleep, starting, ready, draining or
//!   failed, starts a runtime on the first request ([`RuntimeManager::activate`]), shares one
//!   start among concurrent requests, stops it after its idle timeout and never while a
//!   [`RuntimeLease`] is held.
//! - [`RuntimeBackend`] starts and stops one runtime. The `process` backend runs the engine as
//!   a plain child process and is for development only. The `namespace` backend runs it in a
//!   sandbox made of Linux namespaces, a minimal root, seccomp, no capabilities and a cgroup.
//!
//! Invariants: a sleeping agent has no process. The engine token is generated per launch,
//! handed over through a pipe and never written to disk or logged. The only ways in and out
//! of a namespace sandbox are the engine socket and the egress socket in the runtime folder.

mod backend;
mod cgroup;
mod launch;
mod manager;
mod process;
pub mod sandbox;
mod spec;

pub use backend::{
    BackendKind, LaunchSpec, RuntimeBackend, RuntimeHandle, RuntimeInstance, RuntimeStatus,
    StartError, StopError, UnknownBackend, create_backend,
};
pub use cgroup::ResourceLimits;
pub use manager::{
    Activation, AcquireError, AgentState, ManagerConfig, RegisterError, RuntimeLease,
    RuntimeManager, Waking,
};
pub use process::ProcessBackend;
pub use sandbox::{
    NamespaceBackend, NamespaceConfig, NamespaceUnavailable, namespace_supported, sandbox_host_ids,
};
pub use spec::{AgentSpec, EngineCommand, SpecError};
