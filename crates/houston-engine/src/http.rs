//! Outbound HTTP for model providers and tools, direct or through the egress proxy.
//!
//! With an egress socket configured (`HOUSTON_EGRESS_SOCKET` for the binary), every request
//! connects to that Unix socket. It is sent in plain text as an HTTP/1.1 proxy request with the
//! absolute-form URI of the real URL (`POST https://api.anthropic.com/v1/messages HTTP/1.1`),
//! because the egress proxy does TLS upstream and adds the provider credential. Without it, the client connects to the
//! URL's host itself, with TLS (webpki roots) for `https`.
//!
//! Each request uses a fresh HTTP/1.1 connection. Model calls are long streams, so a
//! connection pool would save little, and a fresh connection keeps cancellation simple:
//! dropping the response body closes the connection.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

/// The environment variable that routes outbound HTTP through the egress proxy socket.
pub const EGRESS_SOCKET_ENV: &str = "HOUSTON_EGRESS_SOCKET";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Error of an outbound request that failed before a response arrived.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URL {0}: expected http:// or https:// with a host")]
    InvalidUrl(String),
    #[error("failed to connect to {target}: {source}")]
    Connect { target: String, source: std::io::Error },
    #[error("timed out connecting to {0}")]
    ConnectTimeout(String),
    #[error("TLS handshake with {host} failed: {source}")]
    Tls { host: String, source: std::io::Error },
    #[error("HTTP exchange with {target} failed: {source}")]
    Exchange { target: String, source: hyper::Error },
}

#[derive(Clone)]
enum Route {
    Direct { tls: tokio_rustls::TlsConnector },
    Egress { socket: PathBuf },
}

/// An HTTP/1.1 client that honours `HOUSTON_EGRESS_SOCKET`.
#[derive(Clone)]
pub struct HttpClient {
    route: Route,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.route {
            Route::Direct { .. } => f.write_str("HttpClient(direct)"),
            Route::Egress { socket } => write!(f, "HttpClient(egress via {})", socket.display()),
        }
    }
}

impl HttpClient {
    /// Creates a client that connects to each URL's host itself.
    #[must_use]
    pub fn direct() -> Self {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the aws-lc-rs provider supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self { route: Route::Direct { tls: tokio_rustls::TlsConnector::from(Arc::new(config)) } }
    }

    /// Creates a client that sends every request through the egress proxy at `socket`.
    #[must_use]
    pub fn egress(socket: PathBuf) -> Self {
        Self { route: Route::Egress { socket } }
    }

    /// Returns true when requests go through the egress proxy (which adds credentials).
    #[must_use]
    pub fn behind_egress(&self) -> bool {
        matches!(self.route, Route::Egress { .. })
    }

    /// Sends `request`, whose URI must be absolute, and returns the response head with its
    /// streaming body.
    ///
    /// # Errors
    /// Returns [`HttpError`] when the URL is invalid, the connection or TLS handshake fails,
    /// or the exchange fails before the response head.
    pub async fn send(&self, mut request: Request<Full<Bytes>>) -> Result<Response<Incoming>, HttpError> {
        let uri = request.uri().clone();
        let target = Target::parse(&uri)?;
        let host_header = hyper::header::HeaderValue::from_str(&target.authority)
            .map_err(|_| HttpError::InvalidUrl(uri.to_string()))?;
        request.headers_mut().insert(hyper::header::HOST, host_header);

        match &self.route {
            Route::Egress { socket } => {
                let display = format!("egress proxy {}", socket.display());
                let stream = connect(&display, UnixStream::connect(socket)).await?;
                exchange(stream, request, display).await
            }
            Route::Direct { tls } => {
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                *request.uri_mut() = path.parse().expect("a path taken from a valid URI parses");
                let address = format!("{}:{}", target.host, target.port);
                let stream = connect(&address, TcpStream::connect(address.as_str())).await?;
                // The request body is one write, but TLS records and later writes must not wait
                // for acknowledgements.
                let _ = stream.set_nodelay(true);
                if !target.tls {
                    return exchange(stream, request, address).await;
                }
                let server_name = rustls::pki_types::ServerName::try_from(target.host.clone())
                    .map_err(|_| HttpError::InvalidUrl(uri.to_string()))?;
                let stream = tls
                    .connect(server_name, stream)
                    .await
                    .map_err(|source| HttpError::Tls { host: target.host.clone(), source })?;
                exchange(stream, request, address).await
            }
        }
    }
}

struct Target {
    host: String,
    port: u16,
    authority: String,
    tls: bool,
}

impl Target {
    fn parse(uri: &Uri) -> Result<Self, HttpError> {
        let invalid = || HttpError::InvalidUrl(uri.to_string());
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(invalid()),
        };
        let authority = uri.authority().ok_or_else(invalid)?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Self { host, port, authority: authority.as_str().to_owned(), tls })
    }
}

async fn connect<S>(target: &str, connecting: impl Future<Output = std::io::Result<S>>) -> Result<S, HttpError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(HttpError::Connect { target: target.to_owned(), source }),
        Err(_) => Err(HttpError::ConnectTimeout(target.to_owned())),
    }
}

async fn exchange<S>(stream: S, request: Request<Full<Bytes>>, target: String) -> Result<Response<Incoming>, HttpError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let failed = |source| HttpError::Exchange { target: target.clone(), source };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(failed)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "outbound connection ended with an error");
        }
    });
    sender.send_request(request).await.map_err(failed)
}
