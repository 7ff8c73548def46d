//! HTTP client for engines, over a Unix socket or TCP, with pooled keep-alive connections.
//!
//! One client serves every runtime: hyper's pool keys connections by authority, and a Unix
//! socket path is encoded into the authority, so a warm agent's next turn reuses an idle
//! connection to its engine instead of connecting again.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use houston_protocol::sse::{SseDecoder, SseFrame};
use houston_protocol::{
    EngineEndpoint, EngineTurnRequest, ErrorBody, SessionId, StreamEvent, TurnId, UserId,
};
use secrecy::{ExposeSecret, SecretString};

/// An error of a call to an engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("failed to reach engine at {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("engine answered {status}: {code}: {message}")]
    Status { status: u16, code: String, message: String },
    #[error("engine stream broke: {0}")]
    Stream(String),
    #[error("engine sent an invalid event: {0}")]
    InvalidEvent(String),
}

/// Pooled client for every engine this control plane talks to.
#[derive(Clone)]
pub struct EngineClient {
    unix: Client<hyperlocal::UnixConnector, Full<Bytes>>,
    tcp: Client<HttpConnector, Full<Bytes>>,
}

impl Default for EngineClient {
    fn default() -> Self {
        Self::new()
    }
}

impl EngineClient {
    /// Creates a client whose idle connections live for 90 s.
    #[must_use]
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let idle = Duration::from_secs(90);
        Self {
            unix: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(idle)
                .build(hyperlocal::UnixConnector),
            tcp: Client::builder(TokioExecutor::new()).pool_idle_timeout(idle).build(connector),
        }
    }

    /// Starts a turn and returns the engine's event stream.
    ///
    /// # Errors
    /// [`EngineError`] when the engine cannot be reached or returns an error status.
    pub async fn start_turn(
        &self,
        endpoint: &EngineEndpoint,
        token: &SecretString,
        session_id: &SessionId,
        request: &EngineTurnRequest,
    ) -> Result<EngineEventStream, EngineError> {
        let body = serde_json::to_vec(request).expect("turn requests always serialize");
        let path = format!("/v1/sessions/{session_id}/turns");
        let response = self.send(endpoint, token, Method::POST, &path, Some(body), None).await?;
        Ok(EngineEventStream::new(response.into_body()))
    }

    /// Replays a turn's events with engine `seq > after`, then follows it live.
    ///
    /// # Errors
    /// [`EngineError`] when the engine cannot be reached or returns an error status.
    pub async fn turn_events(
        &self,
        endpoint: &EngineEndpoint,
        token: &SecretString,
        session_id: &SessionId,
        turn_id: &TurnId,
        after: u64,
    ) -> Result<EngineEventStream, EngineError> {
        let path = format!("/v1/sessions/{session_id}/turns/{turn_id}/events?after={after}");
        let response = self.send(endpoint, token, Method::GET, &path, None, None).await?;
        Ok(EngineEventStream::new(response.into_body()))
    }

    /// Asks the engine to cancel a turn.
    ///
    /// # Errors
    /// [`EngineError`] when the engine cannot be reached or returns an error status.
    pub async fn cancel_turn(
        &self,
        endpoint: &EngineEndpoint,
        token: &SecretString,
        session_id: &SessionId,
        turn_id: &TurnId,
    ) -> Result<(), EngineError> {
        let path = format!("/v1/sessions/{session_id}/turns/{turn_id}/cancel");
        let response =
            self.send(endpoint, token, Method::POST, &path, Some(b"{}".to_vec()), None).await?;
        drop(response.into_body().collect().await);
        Ok(())
    }

    /// Delivers the user's decision on a tool call waiting for approval and returns the
    /// engine's response body.
    ///
    /// # Errors
    /// [`EngineError`] when the engine cannot be reached or returns an error status (404
    /// when no call with `call_id` is waiting).
    pub async fn decide_approval(
        &self,
        endpoint: &EngineEndpoint,
        token: &SecretString,
        session_id: &SessionId,
        turn_id: &TurnId,
        call_id: &str,
        approve: bool,
    ) -> Result<serde_json::Value, EngineError> {
        let path = format!("/v1/sessions/{session_id}/turns/{turn_id}/approvals/{call_id}");
        let body = serde_json::json!({ "approve": approve }).to_string().into_bytes();
        let response = self.send(endpoint, token, Method::POST, &path, Some(body), None).await?;
        let bytes = collect_body(response.into_body()).await?;
        serde_json::from_slice(&bytes).map_err(|e| EngineError::InvalidEvent(e.to_string()))
    }

    /// Returns one session's history as the engine stores it, for its owner.
    ///
    /// # Errors
    /// [`EngineError`] when the engine cannot be reached or returns an error status.
    pub async fn get_session(
        &self,
        endpoint: &EngineEndpoint,
        token: &SecretString,
        session_id: &SessionId,
        user_id: &UserId,
    ) -> Result<serde_json::Value, EngineError> {
        let path = format!("/v1/sessions/{session_id}?user_id={user_id}");
        let response = self.send(endpoint, token, Method::GET, &path, None, None).await?;
        let bytes = collect_body(response.into_body()).await?;
        serde_json::from_slice(&bytes).map_err(|e| EngineError::InvalidEvent(e.to_string()))
    }

    async fn send(
        &self,
        endpoint: &EngineEndpoint,
        token: &SecretString,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        last_event_id: Option<u64>,
    ) -> Result<Response<Incoming>, EngineError> {
        let uri = engine_uri(endpoint, path_and_query);
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", token.expose_secret()));
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        if let Some(id) = last_event_id {
            builder = builder.header("last-event-id", id);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("engine request parts are valid");
        let result = match endpoint {
            EngineEndpoint::Unix(_) => self.unix.request(request).await,
            EngineEndpoint::Tcp(_) => self.tcp.request(request).await,
        };
        let response = result.map_err(|error| EngineError::Connect {
            endpoint: endpoint.to_string(),
            reason: error_chain(&error),
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(status_error(response).await)
    }
}

fn engine_uri(endpoint: &EngineEndpoint, path_and_query: &str) -> Uri {
    match endpoint {
        EngineEndpoint::Unix(path) => hyperlocal::Uri::new(path, path_and_query).into(),
        EngineEndpoint::Tcp(address) => format!("http://{address}{path_and_query}")
            .parse()
            .expect("a validated tcp endpoint forms a valid URI"),
    }
}

async fn status_error(response: Response<Incoming>) -> EngineError {
    let status = response.status();
    let bytes = collect_body(response.into_body()).await.unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => EngineError::Status {
            status: status.as_u16(),
            code: body.error.code,
            message: body.error.message,
        },
        Err(_) => EngineError::Status {
            status: status.as_u16(),
            code: status_code_name(status).to_owned(),
            message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        },
    }
}

fn status_code_name(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("error")
}

async fn collect_body(body: Incoming) -> Result<Bytes, EngineError> {
    body.collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| EngineError::Stream(error_chain(&e)))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An engine's `text/event-stream` answer, parsed incrementally into stream events.
pub struct EngineEventStream {
    body: Incoming,
    decoder: SseDecoder,
    pending: VecDeque<SseFrame>,
}

impl EngineEventStream {
    fn new(body: Incoming) -> Self {
        Self { body, decoder: SseDecoder::new(), pending: VecDeque::new() }
    }

    /// Returns the next event, or `None` when the engine closed the stream.
    ///
    /// # Errors
    /// [`EngineError::Stream`] when the connection breaks, [`EngineError::InvalidEvent`] when
    /// a frame is not a stream event.
    pub async fn next_event(&mut self) -> Option<Result<StreamEvent, EngineError>> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame.to_event().map_err(|e| EngineError::InvalidEvent(e.to_string())));
            }
            let frame = match self.body.frame().await? {
                Ok(frame) => frame,
                Err(error) => return Some(Err(EngineError::Stream(error_chain(&error)))),
            };
            if let Ok(data) = frame.into_data() {
                self.pending.extend(self.decoder.feed(&data));
            }
        }
    }
}
