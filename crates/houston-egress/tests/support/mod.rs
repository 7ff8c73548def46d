//! Test support: a local upstream server, a proxy with one agent socket, and a client that
//! speaks to the socket the way the engine inside a sandbox does.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request as AxumRequest, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::{any, get};
use bytes::Bytes;
use houston_egress::{
    AgentEgressPolicy, AgentHandle, EgressConfig, EgressLogEntry, EgressProxy, StaticResolver,
    TrustedUpstream,
};
use houston_protocol::AgentId;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use secrecy::SecretString;
use tokio::net::{TcpListener, UnixStream};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;

/// The Anthropic key the proxy adds; tests check that it never shows up in the log.
pub const ANTHROPIC_KEY: &str = "sk-ant-test-5f0c7a";
/// The OpenAI key the proxy adds as a bearer token.
pub const OPENAI_KEY: &str = "sk-openai-test-91b2";
/// Where the test upstream redirects to: the cloud metadata address.
pub const METADATA_URL: &str = "http://169.254.169.254/latest/meta-data/";

/// A local HTTP server standing in for a model provider.
pub struct Upstream {
    pub address: SocketAddr,
    /// Lets the SSE response send its second event and finish.
    pub release_sse: Arc<Notify>,
    /// Set once the SSE response has sent its last byte.
    pub sse_finished: Arc<AtomicBool>,
}

#[derive(Clone)]
struct UpstreamState {
    release_sse: Arc<Notify>,
    sse_finished: Arc<AtomicBool>,
}

/// Starts the stand-in upstream on 127.0.0.1 with a free port.
pub async fn start_upstream() -> Upstream {
    let state = UpstreamState {
        release_sse: Arc::new(Notify::new()),
        sse_finished: Arc::new(AtomicBool::new(false)),
    };
    let app = Router::new()
        .route("/echo", any(echo))
        .route("/v1/messages", any(echo))
        .route("/redirect", get(|| async { redirect(METADATA_URL) }))
        .route(
            "/redirect-name",
            get(|| async { redirect("http://metadata.test/latest/meta-data/") }),
        )
        .route("/sse", get(sse))
        .with_state(state.clone());
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind upstream");
    let address = listener.local_addr().expect("upstream address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("upstream server") });
    Upstream {
        address,
        release_sse: state.release_sse,
        sse_finished: state.sse_finished,
    }
}

/// Returns what the upstream received, so tests can check the headers the proxy sent.
async fn echo(headers: HeaderMap, request: AxumRequest) -> axum::Json<serde_json::Value> {
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let uri = request.uri().to_string();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    axum::Json(serde_json::json!({
        "x_api_key": header_text("x-api-key"),
        "authorization": header_text("authorization"),
        "host": header_text("host"),
        "proxy_authorization": header_text("proxy-authorization"),
        "uri": uri,
        "body_len": body.len(),
    }))
}

fn redirect(location: &'static str) -> AxumResponse {
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// Sends one SSE event at once and the second only after the test releases it.
async fn sse(State(state): State<UpstreamState>) -> AxumResponse {
    let (sender, receiver) = mpsc::channel::<Result<Bytes, Infallible>>(4);
    tokio::spawn(async move {
        let first = Bytes::from_static(b"event: message.delta\ndata: {\"text\":\"Hel\"}\n\n");
        if sender.send(Ok(first)).await.is_err() {
            return;
        }
        state.release_sse.notified().await;
        let second = Bytes::from_static(b"event: message.delta\ndata: {\"text\":\"lo\"}\n\n");
        let _ = sender.send(Ok(second)).await;
        state.sse_finished.store(true, Ordering::SeqCst);
    });
    let body = Body::from_stream(ReceiverStream::new(receiver));
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

/// How a test proxy is set up.
#[derive(Default)]
pub struct ProxyOptions {
    /// Hosts allowed besides the default policy.
    pub extra_hosts: Vec<&'static str>,
    /// Lets allowlisted hosts resolve to loopback (the test-only override).
    pub allow_loopback: bool,
    /// Replaces the default connection limit per agent.
    pub max_connections: Option<usize>,
}

/// A proxy with the upstream configured as trusted Anthropic (`http://127.0.0.1:PORT`) and
/// trusted OpenAI (`http://localhost:PORT`), and one open socket for agent `hr`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub upstream: Upstream,
    pub proxy: EgressProxy,
    pub handle: AgentHandle,
    pub socket: PathBuf,
    pub agent: AgentId,
}

impl Fixture {
    pub async fn start(options: ProxyOptions) -> Self {
        let upstream = start_upstream().await;
        let port = upstream.address.port();
        let dir = tempfile::tempdir().expect("temp dir");

        let anthropic_url = format!("http://127.0.0.1:{port}");
        let openai_url = format!("http://localhost:{port}/v1");
        let upstreams = vec![
            TrustedUpstream::anthropic(&anthropic_url, SecretString::from(ANTHROPIC_KEY))
                .expect("valid upstream"),
            TrustedUpstream::openai(&openai_url, SecretString::from(OPENAI_KEY))
                .expect("valid upstream"),
        ];
        let mut config =
            EgressConfig::new(upstreams, dir.path().join("egress.jsonl")).expect("valid config");
        if let Some(limit) = options.max_connections {
            config.max_connections_per_agent = limit;
        }
        let resolver = test_resolver();

        // mixed.test has a public address, so with loopback allowed it would pass the check
        // and the proxy would connect off the machine.
        assert!(
            !(options.allow_loopback && options.extra_hosts.contains(&"mixed.test")),
            "mixed.test must not be allowed together with the loopback override"
        );
        let mut builder = EgressProxy::builder(config).resolver(resolver);
        if options.allow_loopback {
            builder = builder.danger_allow_loopback_for_tests();
        }
        let proxy = builder.build().expect("proxy builds");

        let mut hosts = proxy.default_policy().allowed_hosts();
        hosts.extend(options.extra_hosts.iter().map(|h| (*h).to_owned()));
        let policy = AgentEgressPolicy::new(hosts).expect("valid policy");
        let agent = AgentId::parse("hr").expect("valid id");
        let socket = dir.path().join("hr-egress.sock");
        let handle = proxy
            .open_agent(agent.clone(), policy, &socket)
            .expect("open agent socket");
        Self {
            dir,
            upstream,
            proxy,
            handle,
            socket,
            agent,
        }
    }

    /// Returns the trusted Anthropic origin, `http://127.0.0.1:PORT`.
    pub fn anthropic_origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.upstream.address.port())
    }

    /// Sends `request` over a new connection to the agent's socket.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Response<Incoming> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .expect("connect to the egress socket");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection.with_upgrades());
        sender.send_request(request).await.expect("request sent")
    }

    /// Sends a GET request for the absolute `url`.
    pub async fn get(&self, url: &str) -> Response<Incoming> {
        let request = Request::get(url)
            .body(Full::new(Bytes::new()))
            .expect("valid request");
        self.send(request).await
    }

    /// Returns the newest egress log entry of the agent, waiting briefly because an entry is
    /// written when the response body has been dropped.
    pub async fn last_log_entry(&self) -> EgressLogEntry {
        for _ in 0..100 {
            let entries = self
                .proxy
                .log()
                .read(Some(&self.agent), 1)
                .expect("read egress log");
            if let Some(entry) = entries.into_iter().next() {
                return entry;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no egress log entry for agent {}", self.agent);
    }

    /// Returns every entry of the agent, oldest first.
    pub fn log_entries(&self) -> Vec<EgressLogEntry> {
        self.proxy
            .log()
            .read(Some(&self.agent), 1000)
            .expect("read egress log")
    }

    /// Returns the raw text of the egress log file.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.proxy.log().path()).expect("read egress log file")
    }
}

/// Maps the test names: `allowed.test` to loopback, `metadata.test` to the cloud metadata
/// address, `private.test` to a private address, `mixed.test` to a public and a loopback one.
fn test_resolver() -> StaticResolver {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let address = |text: &str| -> IpAddr { text.parse().expect("valid ip") };
    StaticResolver::new()
        .with("allowed.test", [loopback])
        .with("metadata.test", [address("169.254.169.254")])
        .with("private.test", [address("10.0.0.7")])
        .with("mixed.test", [address("93.184.215.14"), loopback])
}

/// Collects a response body into bytes.
pub async fn body_bytes(response: Response<Incoming>) -> Bytes {
    response
        .into_body()
        .collect()
        .await
        .expect("read body")
        .to_bytes()
}

/// Collects a response body and parses it as JSON.
pub async fn body_json(response: Response<Incoming>) -> serde_json::Value {
    serde_json::from_slice(&body_bytes(response).await).expect("JSON body")
}
