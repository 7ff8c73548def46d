//! The egress proxy: state shared by every agent socket, and how to open one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use houston_protocol::AgentId;
use hyper::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use tokio_rustls::TlsConnector;
use tower::Service;

use crate::agent::{self, AgentHandle};
use crate::body::ProxyBody;
use crate::config::{EgressConfig, TrustedUpstream};
use crate::connect::{AddressCheck, tls_client_config};
use crate::log::EgressLog;
use crate::policy::AgentEgressPolicy;
use crate::resolver::{Resolver, SystemResolver};
use crate::target::Origin;

/// How long an idle pooled connection to a trusted upstream is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors from setting up the proxy or opening an agent's socket.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("failed to open the egress log {path}: {source}")]
    OpenLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("agent {0} already has an open egress socket; close its handle first")]
    AgentAlreadyOpen(AgentId),
    #[error("{path} exists and is not a socket; choose another egress socket path")]
    PathInUse { path: PathBuf },
    #[error("failed to bind the egress socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A connector that counts connection attempts, so a test can prove that a refused request
/// opened no connection.
#[derive(Clone)]
pub(crate) struct CountingConnector {
    inner: HttpsConnector<HttpConnector>,
    attempts: Arc<AtomicU64>,
}

impl Service<Uri> for CountingConnector {
    type Response = <HttpsConnector<HttpConnector> as Service<Uri>>::Response;
    type Error = <HttpsConnector<HttpConnector> as Service<Uri>>::Error;
    type Future = <HttpsConnector<HttpConnector> as Service<Uri>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        self.inner.call(uri)
    }
}

/// State shared by every agent socket of one proxy.
pub(crate) struct Shared {
    pub upstreams: Vec<TrustedUpstream>,
    pub check: AddressCheck,
    pub log: Arc<EgressLog>,
    /// Pooled client for trusted upstreams, whose addresses are not checked.
    pub pooled: Client<CountingConnector, ProxyBody>,
    /// TLS for https requests to other hosts, over a connection to a checked address.
    pub tls: TlsConnector,
    pub connect_timeout: Duration,
    pub max_connections_per_agent: usize,
    /// Outbound TCP connection attempts, trusted and direct together.
    pub attempts: Arc<AtomicU64>,
    pub open_agents: Mutex<HashSet<AgentId>>,
}

impl Shared {
    /// Returns the trusted upstream whose origin is exactly `origin`.
    pub fn trusted_upstream(&self, origin: &Origin) -> Option<&TrustedUpstream> {
        self.upstreams
            .iter()
            .find(|upstream| upstream.origin == *origin)
    }
}

/// Builds an [`EgressProxy`] with a non-default resolver or test settings.
pub struct EgressProxyBuilder {
    config: EgressConfig,
    resolver: Arc<dyn Resolver>,
    allow_loopback: bool,
    extra_roots: Vec<CertificateDer<'static>>,
}

impl EgressProxyBuilder {
    /// Replaces the system resolver, for example with a [`crate::StaticResolver`] in tests.
    #[must_use]
    pub fn resolver(mut self, resolver: impl Resolver) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// Lets allowlisted hosts that are not trusted upstreams resolve to 127.0.0.0/8 or
    /// `::1`, so tests can exercise that path against a local server. Every other special
    /// range, IPv4-mapped loopback included, stays refused.
    #[cfg(feature = "test-util")]
    #[must_use]
    pub fn danger_allow_loopback_for_tests(mut self) -> Self {
        self.allow_loopback = true;
        self
    }

    /// Trusts `root` in addition to the Mozilla roots, so tests can serve TLS with a
    /// self-signed certificate.
    #[cfg(feature = "test-util")]
    #[must_use]
    pub fn danger_add_root_certificate_for_tests(mut self, root: CertificateDer<'static>) -> Self {
        self.extra_roots.push(root);
        self
    }

    /// Opens the egress log and builds the proxy.
    ///
    /// # Errors
    /// Returns [`EgressError`] when the log cannot be opened or TLS cannot be set up.
    pub fn build(self) -> Result<EgressProxy, EgressError> {
        let config = self.config;
        let log = EgressLog::open(&config.log_path).map_err(|source| EgressError::OpenLog {
            path: config.log_path.clone(),
            source,
        })?;
        let tls_config = tls_client_config(self.extra_roots)?;
        let attempts = Arc::new(AtomicU64::new(0));
        let pooled = pooled_client(&tls_config, config.connect_timeout, attempts.clone());
        let shared = Shared {
            upstreams: config.upstreams,
            check: AddressCheck {
                resolver: self.resolver,
                timeout: config.connect_timeout,
                allow_loopback: self.allow_loopback,
            },
            log: Arc::new(log),
            pooled,
            tls: TlsConnector::from(Arc::new(tls_config)),
            connect_timeout: config.connect_timeout,
            max_connections_per_agent: config.max_connections_per_agent,
            attempts,
            open_agents: Mutex::new(HashSet::new()),
        };
        log_effective_config(&shared);
        Ok(EgressProxy {
            shared: Arc::new(shared),
        })
    }
}

/// Logs what the proxy trusts, without credentials, so an operator can check the setup.
fn log_effective_config(shared: &Shared) {
    let upstreams: Vec<String> = shared
        .upstreams
        .iter()
        .map(|upstream| format!("{} {}", upstream.name, upstream.origin))
        .collect();
    tracing::info!(
        upstreams = ?upstreams,
        log = %shared.log.path().display(),
        connect_timeout_ms = shared.connect_timeout.as_millis(),
        max_connections_per_agent = shared.max_connections_per_agent,
        "egress proxy ready"
    );
    if shared.check.allow_loopback {
        tracing::warn!("egress proxy lets allowlisted hosts resolve to loopback (test override)");
    }
}

fn pooled_client(
    tls_config: &rustls::ClientConfig,
    connect_timeout: Duration,
    attempts: Arc<AtomicU64>,
) -> Client<CountingConnector, ProxyBody> {
    let mut http = HttpConnector::new();
    // The https connector needs the inner connector to accept https URIs.
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls_config.clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(CountingConnector {
            inner: https,
            attempts,
        })
}

/// The host's egress proxy. Cloning it is cheap and shares the state.
#[derive(Clone)]
pub struct EgressProxy {
    shared: Arc<Shared>,
}

impl EgressProxy {
    /// Builds a proxy with the system resolver.
    ///
    /// # Errors
    /// See [`EgressProxyBuilder::build`].
    pub fn new(config: EgressConfig) -> Result<Self, EgressError> {
        Self::builder(config).build()
    }

    /// Starts a builder for a proxy with non-default settings.
    #[must_use]
    pub fn builder(config: EgressConfig) -> EgressProxyBuilder {
        EgressProxyBuilder {
            config,
            resolver: Arc::new(SystemResolver),
            allow_loopback: false,
            extra_roots: Vec::new(),
        }
    }

    /// Returns the default agent policy: the trusted upstreams' hosts and nothing else.
    #[must_use]
    pub fn default_policy(&self) -> AgentEgressPolicy {
        AgentEgressPolicy::from_normalized_hosts(
            self.shared
                .upstreams
                .iter()
                .map(|upstream| upstream.origin.host.clone()),
        )
    }

    /// Opens the agent's egress socket at `socket_path` and serves it until the returned
    /// handle is closed or dropped. The agent's identity is the socket it connects to.
    ///
    /// The socket is created with mode 0600 and owned by the proxy's user. A runtime that
    /// runs the sandbox under another uid gives it to that uid with
    /// [`AgentHandle::set_socket_owner`]. A stale socket at the path is replaced, which
    /// gives it a new inode, so a sandbox must be started (and its bind mount made) after
    /// this call. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// Returns [`EgressError`] when the agent already has a socket or the path cannot be
    /// bound.
    pub fn open_agent(
        &self,
        agent_id: AgentId,
        policy: AgentEgressPolicy,
        socket_path: impl AsRef<Path>,
    ) -> Result<AgentHandle, EgressError> {
        agent::open(self.shared.clone(), agent_id, policy, socket_path.as_ref())
    }

    /// Returns the egress log.
    #[must_use]
    pub fn log(&self) -> &EgressLog {
        &self.shared.log
    }

    /// Returns the trusted upstreams.
    #[must_use]
    pub fn upstreams(&self) -> &[TrustedUpstream] {
        &self.shared.upstreams
    }

    /// Returns how many outbound TCP connections the proxy has tried to open so far.
    #[must_use]
    pub fn upstream_connection_attempts(&self) -> u64 {
        self.shared.attempts.load(Ordering::Relaxed)
    }
}
