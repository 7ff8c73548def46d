//! Rejections: the reasons the proxy does not forward a request, and the responses the
//! agent gets for them.

use std::io;
use std::net::IpAddr;

use houston_protocol::{AgentId, ErrorBody};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use crate::body::{ProxyBody, full_body};
use crate::log::EgressOutcome;
use crate::target::TargetError;

/// A reason the proxy responds to a request itself instead of forwarding it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Rejection {
    #[error("host {host} is not in the allowlist of agent {agent}")]
    NotAllowed { host: String, agent: AgentId },
    #[error("host {host} resolves to {ip}, a {range} address, which agent {agent} may not reach")]
    ForbiddenAddress {
        host: String,
        ip: IpAddr,
        range: &'static str,
        agent: AgentId,
    },
    #[error("{0}")]
    InvalidTarget(#[from] TargetError),
    #[error("failed to resolve host {host}: {source}")]
    ResolveFailed { host: String, source: io::Error },
    #[error("failed to connect to {host}: {source}")]
    ConnectFailed { host: String, source: io::Error },
    #[error("timed out connecting to {host}")]
    ConnectTimedOut { host: String },
    #[error("the request to {host} failed: {message}")]
    UpstreamFailed { host: String, message: String },
}

impl Rejection {
    /// Returns the status, the stable error code and the log outcome.
    fn classify(&self) -> (StatusCode, &'static str, EgressOutcome) {
        match self {
            Self::NotAllowed { .. } | Self::ForbiddenAddress { .. } => (
                StatusCode::FORBIDDEN,
                "egress_denied",
                EgressOutcome::Denied,
            ),
            Self::InvalidTarget(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                EgressOutcome::Failed,
            ),
            Self::ConnectTimedOut { .. } => (
                StatusCode::GATEWAY_TIMEOUT,
                "egress_upstream_timeout",
                EgressOutcome::Failed,
            ),
            Self::ResolveFailed { .. }
            | Self::ConnectFailed { .. }
            | Self::UpstreamFailed { .. } => (
                StatusCode::BAD_GATEWAY,
                "egress_upstream_failed",
                EgressOutcome::Failed,
            ),
        }
    }

    /// Returns the outcome recorded in the egress log.
    pub fn outcome(&self) -> EgressOutcome {
        self.classify().2
    }

    /// Returns the status the agent receives.
    pub fn status(&self) -> StatusCode {
        self.classify().0
    }

    /// Builds the response with the standard error body.
    pub fn to_response(&self) -> Response<ProxyBody> {
        let (status, code, _) = self.classify();
        let message = match self.outcome() {
            EgressOutcome::Denied => format!("egress denied: {self}"),
            _ => self.to_string(),
        };
        let body = serde_json::to_vec(&ErrorBody::new(code, message))
            .unwrap_or_else(|_| b"{\"error\":{\"code\":\"internal\",\"message\":\"\"}}".to_vec());
        let mut response = Response::new(full_body(body));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}
