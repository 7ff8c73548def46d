//! One agent's egress socket: the listener, its connections and its policy.

use std::convert::Infallible;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use houston_protocol::AgentId;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::body::{LogRecord, ProxyBody};
use crate::log::{EgressKind, EgressOutcome};
use crate::policy::AgentEgressPolicy;
use crate::proxy::{EgressError, Shared};
use crate::rejection::Rejection;
use crate::{forward, tunnel};

/// Rejections logged per agent and minute; the rest are counted and reported once.
const REJECTION_LOGS_PER_MINUTE: u32 = 20;
/// Pause after a failed accept, so a persistent error (such as EMFILE) does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// An agent's open egress socket. Dropping it (or [`AgentHandle::close`]) stops the
/// listener, closes every connection and tunnel of the agent and removes the socket file.
pub struct AgentHandle {
    context: Arc<AgentContext>,
    socket_path: PathBuf,
}

impl AgentHandle {
    /// Returns the agent this socket belongs to.
    #[must_use]
    pub fn agent_id(&self) -> &AgentId {
        &self.context.agent_id
    }

    /// Returns the socket's path on the host.
    #[must_use]
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// Returns the policy in force.
    #[must_use]
    pub fn policy(&self) -> Arc<AgentEgressPolicy> {
        self.context.policy()
    }

    /// Gives the socket file to `uid` and `gid`, so that a sandbox running as that
    /// unprivileged host user can connect to it (the socket's mode is 0600).
    ///
    /// # Errors
    /// Returns the I/O error of `chown`, for example when the proxy is not root.
    pub fn set_socket_owner(&self, uid: u32, gid: u32) -> std::io::Result<()> {
        std::os::unix::fs::chown(&self.socket_path, Some(uid), Some(gid))
    }

    /// Replaces the policy; requests that arrive afterwards use the new one, open tunnels
    /// stay open.
    pub fn set_policy(&self, policy: AgentEgressPolicy) {
        *self
            .context
            .policy
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
        tracing::info!(agent.id = %self.context.agent_id, "egress policy updated");
    }

    /// Closes the socket; the same as dropping the handle.
    pub fn close(self) {}
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        self.context.cancel.cancel();
        if let Err(error) = std::fs::remove_file(&self.socket_path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.socket_path.display(), %error, "failed to remove egress socket");
        }
        let shared = &self.context.shared;
        shared
            .open_agents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.context.agent_id);
        tracing::info!(agent.id = %self.context.agent_id, "egress socket closed");
    }
}

/// A connection's place in its agent's connection limit; a tunnel takes it over.
pub(crate) type ConnectionPermit = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

/// State shared by every connection on one agent's socket.
pub(crate) struct AgentContext {
    pub agent_id: AgentId,
    policy: RwLock<Arc<AgentEgressPolicy>>,
    pub shared: Arc<Shared>,
    pub cancel: CancellationToken,
    connections: Arc<Semaphore>,
    rejection_logs: Mutex<RejectionLogWindow>,
}

struct RejectionLogWindow {
    started: Instant,
    logged: u32,
    suppressed: u32,
}

impl AgentContext {
    /// Returns the policy in force.
    pub fn policy(&self) -> Arc<AgentEgressPolicy> {
        self.policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Starts the egress log record of a request on this socket.
    pub fn start_record(&self, kind: EgressKind, method: &str) -> LogRecord {
        LogRecord::start(self.shared.log.clone(), self.agent_id.clone(), kind, method)
    }

    /// Completes `record` with the rejection and returns the response for the agent; the
    /// record is written when it goes out of scope here.
    pub fn reject(&self, mut record: LogRecord, rejection: Rejection) -> Response<ProxyBody> {
        self.log_rejection(&record, &rejection);
        record.entry.outcome = rejection.outcome();
        record.entry.status = rejection.status().as_u16();
        record.entry.reason = Some(rejection.to_string());
        rejection.to_response()
    }

    /// Logs a rejection at info level (a security decision), rate-limited per agent
    /// because an agent can trigger rejections as fast as it likes.
    fn log_rejection(&self, record: &LogRecord, rejection: &Rejection) {
        let mut window = self
            .rejection_logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if window.started.elapsed() >= Duration::from_secs(60) {
            if window.suppressed > 0 {
                tracing::info!(agent.id = %self.agent_id, suppressed = window.suppressed, "egress rejections not logged in the last minute");
            }
            *window = RejectionLogWindow {
                started: Instant::now(),
                logged: 0,
                suppressed: 0,
            };
        }
        if window.logged >= REJECTION_LOGS_PER_MINUTE {
            window.suppressed += 1;
            return;
        }
        window.logged += 1;
        let denied = rejection.outcome() == EgressOutcome::Denied;
        let decision = if denied {
            "egress denied"
        } else {
            "egress failed"
        };
        tracing::info!(agent.id = %self.agent_id, host = %record.entry.host, reason = %rejection, "{decision}");
    }
}

/// Binds the agent's socket and starts serving it.
pub(crate) fn open(
    shared: Arc<Shared>,
    agent_id: AgentId,
    policy: AgentEgressPolicy,
    socket_path: &Path,
) -> Result<AgentHandle, EgressError> {
    {
        let mut open_agents = shared
            .open_agents
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !open_agents.insert(agent_id.clone()) {
            return Err(EgressError::AgentAlreadyOpen(agent_id));
        }
    }
    let listener = match bind_socket(socket_path) {
        Ok(listener) => listener,
        Err(error) => {
            shared
                .open_agents
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&agent_id);
            return Err(error);
        }
    };
    let max_connections = shared.max_connections_per_agent;
    let context = Arc::new(AgentContext {
        agent_id,
        policy: RwLock::new(Arc::new(policy)),
        shared,
        cancel: CancellationToken::new(),
        connections: Arc::new(Semaphore::new(max_connections)),
        rejection_logs: Mutex::new(RejectionLogWindow {
            started: Instant::now(),
            logged: 0,
            suppressed: 0,
        }),
    });
    tracing::info!(agent.id = %context.agent_id, path = %socket_path.display(), "egress socket opened");
    tokio::spawn(accept_loop(listener, context.clone()));
    Ok(AgentHandle {
        context,
        socket_path: socket_path.to_owned(),
    })
}

fn bind_socket(path: &Path) -> Result<UnixListener, EgressError> {
    let bind_error = |source| EgressError::Bind {
        path: path.to_owned(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(bind_error)?
        }
        Ok(_) => {
            return Err(EgressError::PathInUse {
                path: path.to_owned(),
            });
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(bind_error(error)),
    }
    let listener = UnixListener::bind(path).map_err(bind_error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_error)?;
    Ok(listener)
}

async fn accept_loop(listener: UnixListener, context: Arc<AgentContext>) {
    loop {
        let accepted = tokio::select! {
            () = context.cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(agent.id = %context.agent_id, %error, "failed to accept an egress connection");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Ok(permit) = context.connections.clone().try_acquire_owned() else {
            tracing::debug!(agent.id = %context.agent_id, "egress connection limit reached, closing a new connection");
            continue;
        };
        tokio::spawn(serve_connection(context.clone(), stream, permit));
    }
}

async fn serve_connection(
    context: Arc<AgentContext>,
    stream: UnixStream,
    permit: OwnedSemaphorePermit,
) {
    let permit: ConnectionPermit = Arc::new(Mutex::new(Some(permit)));
    let service_context = context.clone();
    let service =
        service_fn(move |request| handle(service_context.clone(), permit.clone(), request));
    let connection = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(agent.id = %context.agent_id, %error, "egress connection ended with an error");
            }
        }
        () = context.cancel.cancelled() => {}
    }
}

async fn handle(
    context: Arc<AgentContext>,
    permit: ConnectionPermit,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    if request.method() == Method::CONNECT {
        return Ok(tunnel::open_tunnel(context, permit, request).await);
    }
    Ok(forward::forward_http(context, request).await)
}
