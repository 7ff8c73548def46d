//! Plain HTTP proxy requests: decide, add the credential for trusted upstreams, forward,
//! and stream the response back.

use std::error::Error;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONNECTION, HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, Uri, Version};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::agent::AgentContext;
use crate::body::{CountedBody, LogRecord, ProxyBody};
use crate::config::TrustedUpstream;
use crate::connect::{connect_checked, tls_connect};
use crate::log::{EgressKind, EgressOutcome, loggable_path};
use crate::rejection::Rejection;
use crate::target::{Origin, Scheme};

/// Headers that describe one connection, not the message, so a proxy must not forward them
/// (RFC 9110, section 7.6.1), plus the proxy's own authentication headers.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Headers that carry a credential to an upstream. The proxy removes the sandbox's values
/// before it adds the configured credential, so a sandbox cannot choose the credential.
const CREDENTIAL_HEADERS: [HeaderName; 2] = [AUTHORIZATION, HeaderName::from_static("x-api-key")];

/// Handles one absolute-form HTTP request from an agent.
pub(crate) async fn forward_http(
    context: Arc<AgentContext>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let mut record = context.start_record(EgressKind::Http, request.method().as_str());
    let origin = match Origin::from_uri(request.uri()) {
        Ok(origin) => origin,
        Err(error) => return context.reject(record, error.into()),
    };
    record.entry.scheme = Some(origin.scheme.as_str().to_owned());
    record.entry.host.clone_from(&origin.host);
    record.entry.port = origin.port;
    record.entry.path = Some(loggable_path(request.uri().path()));

    if !context.policy().allows(&origin.host) {
        let rejection = Rejection::NotAllowed {
            host: origin.host,
            agent: context.agent_id.clone(),
        };
        return context.reject(record, rejection);
    }

    let sent = match context.shared.trusted_upstream(&origin) {
        Some(upstream) => {
            record.entry.upstream = Some(upstream.name.clone());
            send_trusted(&context, upstream, request, &record).await
        }
        None => send_direct(&context, &origin, request, &record).await,
    };
    match sent {
        Ok(response) => relay_response(response, record),
        Err(rejection) => context.reject(record, rejection),
    }
}

/// Sends a request to a trusted upstream over the pooled client, with the configured
/// credential in place of any credential header the sandbox sent.
async fn send_trusted(
    context: &AgentContext,
    upstream: &TrustedUpstream,
    request: Request<Incoming>,
    record: &LogRecord,
) -> Result<Response<Incoming>, Rejection> {
    let (mut parts, body) = request.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    for name in &CREDENTIAL_HEADERS {
        parts.headers.remove(name);
    }
    if let Some((name, value)) = upstream.credential_header.header(&upstream.credential) {
        parts.headers.insert(name, value);
    }
    // The pooled client sets Host from the URI, which is rebuilt from the configured origin.
    parts.headers.remove(HOST);
    parts.uri = absolute_uri(&upstream.origin, &parts.uri)?;
    parts.version = Version::HTTP_11;

    let body = CountedBody::new(body, record.bytes_up.clone(), None).boxed_unsync();
    let outbound = Request::from_parts(parts, body);
    context
        .shared
        .pooled
        .request(outbound)
        .await
        .map_err(|error| Rejection::UpstreamFailed {
            host: upstream.origin.host.clone(),
            message: error_chain(&error),
        })
}

/// Sends a request to an allowlisted host over a new connection to an address that passed
/// the address check.
// NOTE: no pool on this path, so each request pays a TCP (and for https a TLS) handshake.
async fn send_direct(
    context: &AgentContext,
    origin: &Origin,
    request: Request<Incoming>,
    record: &LogRecord,
) -> Result<Response<Incoming>, Rejection> {
    let shared = &context.shared;
    let addresses = shared
        .check
        .checked_addresses(&origin.host, origin.port, &context.agent_id)
        .await?;
    let stream = connect_checked(
        &origin.host,
        &addresses,
        shared.connect_timeout,
        &shared.attempts,
    )
    .await?;

    let (mut parts, body) = request.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(HOST, host_header(origin)?);
    parts.uri = origin_form(&parts.uri);
    parts.version = Version::HTTP_11;
    let body = CountedBody::new(body, record.bytes_up.clone(), None).boxed_unsync();
    let outbound = Request::from_parts(parts, body);

    match origin.scheme {
        Scheme::Http => send_on(stream, outbound, &origin.host).await,
        Scheme::Https => {
            let tls = tls_connect(&shared.tls, &origin.host, stream).await?;
            send_on(tls, outbound, &origin.host).await
        }
    }
}

/// Sends one request on a fresh HTTP/1.1 connection; the connection closes after the
/// response body ends.
async fn send_on<I>(
    io: I,
    request: Request<ProxyBody>,
    host: &str,
) -> Result<Response<Incoming>, Rejection>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let failed = |error: hyper::Error| Rejection::UpstreamFailed {
        host: host.to_owned(),
        message: error_chain(&error),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(failed)?;
    let host_for_log = host.to_owned();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(host = %host_for_log, %error, "upstream connection ended with an error");
        }
    });
    sender.send_request(request).await.map_err(failed)
}

/// Streams the upstream response back and hands the log record to the body, which writes
/// it when the body ends.
fn relay_response(response: Response<Incoming>, mut record: LogRecord) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    record.entry.outcome = EgressOutcome::Forwarded;
    record.entry.status = parts.status.as_u16();
    let counter = record.bytes_down.clone();
    Response::from_parts(
        parts,
        CountedBody::new(body, counter, Some(record)).boxed_unsync(),
    )
}

/// Removes hop-by-hop headers, including those that the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn origin_form(uri: &Uri) -> Uri {
    uri.path_and_query()
        .map_or_else(|| Uri::from_static("/"), |path| Uri::from(path.clone()))
}

fn absolute_uri(origin: &Origin, uri: &Uri) -> Result<Uri, Rejection> {
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    format!("{origin}{path}")
        .parse()
        .map_err(
            |error: hyper::http::uri::InvalidUri| Rejection::UpstreamFailed {
                host: origin.host.clone(),
                message: error.to_string(),
            },
        )
}

fn host_header(origin: &Origin) -> Result<HeaderValue, Rejection> {
    let host = if origin.port == origin.scheme.default_port() {
        origin.uri_host()
    } else {
        format!("{}:{}", origin.uri_host(), origin.port)
    };
    HeaderValue::from_str(&host).map_err(|error| Rejection::UpstreamFailed {
        host: origin.host.clone(),
        message: error.to_string(),
    })
}

/// Joins an error and its sources, because hyper's top-level messages ("client error
/// (Connect)") hide the cause.
fn error_chain(error: &dyn Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
