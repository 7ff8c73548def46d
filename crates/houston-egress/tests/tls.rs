//! TLS towards upstreams: the engine sends an `https://` URI in plain text over its socket,
//! and the proxy opens TLS to the upstream and verifies its certificate. The upstream is a
//! local server with a self-signed certificate that the test proxy trusts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use houston_egress::{
    AgentEgressPolicy, AgentHandle, EgressConfig, EgressProxy, StaticResolver, TrustedUpstream,
};
use houston_protocol::AgentId;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use secrecy::SecretString;
use tokio::net::{TcpListener, UnixStream};
use tokio_rustls::TlsAcceptor;

const KEY: &str = "sk-ant-tls-test-77d1";

/// Starts an HTTPS server on 127.0.0.1 whose certificate names `localhost` and `tls.test`,
/// and returns its address and the certificate to trust.
async fn start_tls_upstream() -> (SocketAddr, CertificateDer<'static>) {
    let names = vec!["localhost".to_owned(), "tls.test".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).expect("certificate generated");
    let certificate = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![certificate.clone()], key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind upstream");
    let address = listener.local_addr().expect("upstream address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(echo);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (address, certificate)
}

async fn echo(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let body = serde_json::json!({ "x_api_key": header("x-api-key"), "host": header("host") });
    Ok(Response::new(Full::new(Bytes::from(body.to_string()))))
}

/// Starts a proxy that trusts `https://localhost:PORT` as Anthropic and the test certificate,
/// with one socket for agent `hr` that may also reach `tls.test` and `other.test`.
async fn start_proxy(
    dir: &tempfile::TempDir,
    upstream: SocketAddr,
    certificate: CertificateDer<'static>,
) -> (EgressProxy, AgentHandle) {
    let origin = format!("https://localhost:{}", upstream.port());
    let trusted =
        TrustedUpstream::anthropic(&origin, SecretString::from(KEY)).expect("valid upstream");
    let config =
        EgressConfig::new(vec![trusted], dir.path().join("egress.jsonl")).expect("valid config");
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let resolver = StaticResolver::new()
        .with("tls.test", [loopback])
        .with("other.test", [loopback]);
    let proxy = EgressProxy::builder(config)
        .resolver(resolver)
        .danger_allow_loopback_for_tests()
        .danger_add_root_certificate_for_tests(certificate)
        .build()
        .expect("proxy builds");
    let policy =
        AgentEgressPolicy::new(["localhost", "tls.test", "other.test"]).expect("valid policy");
    let agent = AgentId::parse("hr").expect("valid id");
    let handle = proxy
        .open_agent(agent, policy, dir.path().join("hr.sock"))
        .expect("open agent socket");
    (proxy, handle)
}

async fn get(handle: &AgentHandle, url: &str) -> (StatusCode, serde_json::Value) {
    let stream = UnixStream::connect(handle.socket_path())
        .await
        .expect("connect to the egress socket");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let request = Request::get(url)
        .header("x-api-key", "sandbox-chosen-key")
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&body).expect("JSON body"))
}

#[tokio::test]
async fn https_trusted_upstream_gets_credential() {
    let (upstream, certificate) = start_tls_upstream().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (_proxy, handle) = start_proxy(&dir, upstream, certificate).await;

    let url = format!("https://localhost:{}/v1/messages", upstream.port());
    let (status, echo) = get(&handle, &url).await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo["x_api_key"], KEY);
    assert_eq!(echo["host"], format!("localhost:{}", upstream.port()));
}

#[tokio::test]
async fn https_allowlisted_host_is_verified() {
    let (upstream, certificate) = start_tls_upstream().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (_proxy, handle) = start_proxy(&dir, upstream, certificate).await;

    let url = format!("https://tls.test:{}/echo", upstream.port());
    let (status, echo) = get(&handle, &url).await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo["x_api_key"], "sandbox-chosen-key");
    assert_eq!(echo["host"], format!("tls.test:{}", upstream.port()));
}

#[tokio::test]
async fn https_wrong_certificate_name_fails() {
    let (upstream, certificate) = start_tls_upstream().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (_proxy, handle) = start_proxy(&dir, upstream, certificate).await;

    let url = format!("https://other.test:{}/echo", upstream.port());
    let (status, body) = get(&handle, &url).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["error"]["code"], "egress_upstream_failed");
    let message = body["error"]["message"].to_string();
    assert!(message.contains("other.test"), "{message}");
}
