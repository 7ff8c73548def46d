//! End-to-end tests of the egress proxy through a real Unix socket. All traffic goes to a
//! local upstream on 127.0.0.1; other addresses come only from a static test resolver and
//! must be rejected before any connection is opened.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use houston_egress::{AgentEgressPolicy, EgressKind, EgressOutcome};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use support::{ANTHROPIC_KEY, Fixture, METADATA_URL, OPENAI_KEY, ProxyOptions, body_json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn trusted_upstream_gets_credential() {
    let fixture = Fixture::start(ProxyOptions::default()).await;
    let url = format!("{}/v1/messages?beta=tools", fixture.anthropic_origin());
    let request = Request::post(&url)
        .header("x-api-key", "sandbox-chosen-key")
        .header("authorization", "Bearer sandbox-chosen-token")
        .header("proxy-authorization", "Basic c2FuZGJveA==")
        .body(Full::new(Bytes::from_static(b"{\"model\":\"claude\"}")))
        .expect("valid request");

    let response = fixture.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let echo = body_json(response).await;
    assert_eq!(echo["x_api_key"], ANTHROPIC_KEY);
    assert_eq!(echo["authorization"], serde_json::Value::Null);
    assert_eq!(echo["proxy_authorization"], serde_json::Value::Null);
    assert_eq!(echo["uri"], "/v1/messages?beta=tools");
    assert_eq!(echo["body_len"], 18);
}

#[tokio::test]
async fn bearer_upstream_gets_token() {
    let fixture = Fixture::start(ProxyOptions::default()).await;
    let url = format!("http://localhost:{}/echo", fixture.upstream.address.port());
    let request = Request::get(&url)
        .header("authorization", "Bearer sandbox-chosen-token")
        .header("x-api-key", "sandbox-chosen-key")
        .body(Full::new(Bytes::new()))
        .expect("valid request");

    let echo = body_json(fixture.send(request).await).await;
    assert_eq!(echo["authorization"], format!("Bearer {OPENAI_KEY}"));
    assert_eq!(echo["x_api_key"], serde_json::Value::Null);
    assert_eq!(
        echo["host"],
        format!("localhost:{}", fixture.upstream.address.port())
    );
}

#[tokio::test]
async fn log_entry_has_bytes_and_no_secret() {
    let fixture = Fixture::start(ProxyOptions::default()).await;
    let url = format!(
        "{}/v1/messages?api_key=query-secret",
        fixture.anthropic_origin()
    );
    let request = Request::post(&url)
        .body(Full::new(Bytes::from_static(b"0123456789")))
        .expect("valid request");
    let response = fixture.send(request).await;
    let body = support::body_bytes(response).await;

    let entry = fixture.last_log_entry().await;
    assert_eq!(entry.agent_id, fixture.agent);
    assert_eq!(entry.kind, EgressKind::Http);
    assert_eq!(entry.method, "POST");
    assert_eq!(entry.host, "127.0.0.1");
    assert_eq!(entry.port, fixture.upstream.address.port());
    assert_eq!(entry.path.as_deref(), Some("/v1/messages"));
    assert_eq!(entry.upstream.as_deref(), Some("anthropic"));
    assert_eq!(entry.outcome, EgressOutcome::Forwarded);
    assert_eq!(entry.status, 200);
    assert_eq!(entry.bytes_up, 10);
    assert_eq!(entry.bytes_down, body.len() as u64);
    assert!(entry.duration_ms > 0.0, "duration {}", entry.duration_ms);

    let text = fixture.log_text();
    assert!(
        !text.contains(ANTHROPIC_KEY),
        "the log contains the provider key: {text}"
    );
    assert!(
        !text.contains("query-secret"),
        "the log contains the query string: {text}"
    );
}

#[tokio::test]
async fn denied_host_is_rejected_and_logged() {
    let fixture = Fixture::start(ProxyOptions::default()).await;
    let attempts_before = fixture.proxy.upstream_connection_attempts();

    let response = fixture.get("http://denied.test/data?token=abc").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = body_json(response).await;
    assert_eq!(body["error"]["code"], "egress_denied");
    let message = body["error"]["message"]
        .as_str()
        .expect("message is a string");
    assert!(
        message.contains("host denied.test is not in the allowlist of agent hr"),
        "{message}"
    );

    let entry = fixture.last_log_entry().await;
    assert_eq!(entry.outcome, EgressOutcome::Denied);
    assert_eq!(entry.status, 403);
    assert_eq!(entry.host, "denied.test");
    assert_eq!(entry.path.as_deref(), Some("/data"));
    assert!(
        entry
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("allowlist")),
        "{entry:?}"
    );
    assert_eq!(
        fixture.proxy.upstream_connection_attempts(),
        attempts_before
    );
}

#[tokio::test]
async fn redirect_to_metadata_is_rejected() {
    let options = ProxyOptions {
        extra_hosts: vec!["169.254.169.254", "metadata.test"],
        allow_loopback: true,
        ..ProxyOptions::default()
    };
    let fixture = Fixture::start(options).await;

    // The proxy hands the 3xx back instead of following it.
    let response = fixture
        .get(&format!("{}/redirect", fixture.anthropic_origin()))
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"]
        .to_str()
        .expect("ASCII location")
        .to_owned();
    assert_eq!(location, METADATA_URL);

    // The engine follows the redirect with a new request, which the address check rejects
    // before any connection is opened, even though the host is on the allowlist.
    let attempts_before = fixture.proxy.upstream_connection_attempts();
    let response = fixture.get(&location).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = body_json(response).await;
    assert_eq!(body["error"]["code"], "egress_denied");
    let message = body["error"]["message"]
        .as_str()
        .expect("message is a string");
    assert!(message.contains("link-local (cloud metadata)"), "{message}");
    assert_eq!(
        fixture.proxy.upstream_connection_attempts(),
        attempts_before
    );

    let entry = fixture.last_log_entry().await;
    assert_eq!(entry.host, "169.254.169.254");
    assert_eq!(entry.outcome, EgressOutcome::Denied);
}

#[tokio::test]
async fn redirect_to_metadata_name_is_rejected() {
    let options = ProxyOptions {
        extra_hosts: vec!["metadata.test"],
        allow_loopback: true,
        ..ProxyOptions::default()
    };
    let fixture = Fixture::start(options).await;

    let response = fixture
        .get(&format!("{}/redirect-name", fixture.anthropic_origin()))
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"]
        .to_str()
        .expect("ASCII location")
        .to_owned();

    let attempts_before = fixture.proxy.upstream_connection_attempts();
    let response = fixture.get(&location).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let message = body_json(response).await["error"]["message"].to_string();
    assert!(
        message.contains("metadata.test resolves to 169.254.169.254"),
        "{message}"
    );
    assert_eq!(
        fixture.proxy.upstream_connection_attempts(),
        attempts_before
    );
}

#[tokio::test]
async fn ipv4_mapped_loopback_is_rejected() {
    // The override lets plain loopback through, to show that the mapped form is rejected on
    // its own merits. The port is the trusted upstream's, which must not matter.
    let options = ProxyOptions {
        extra_hosts: vec!["[::ffff:127.0.0.1]"],
        allow_loopback: true,
        ..ProxyOptions::default()
    };
    let fixture = Fixture::start(options).await;
    let attempts_before = fixture.proxy.upstream_connection_attempts();

    let url = format!(
        "http://[::ffff:127.0.0.1]:{}/v1/messages",
        fixture.upstream.address.port()
    );
    let response = fixture.get(&url).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let message = body_json(response).await["error"]["message"].to_string();
    assert!(message.contains("IPv4-mapped IPv6"), "{message}");
    assert_eq!(
        fixture.proxy.upstream_connection_attempts(),
        attempts_before
    );
}

#[tokio::test]
async fn special_addresses_are_rejected() {
    let options = ProxyOptions {
        extra_hosts: vec!["private.test", "mixed.test", "10.0.0.5", "[::1]"],
        allow_loopback: false,
        ..ProxyOptions::default()
    };
    let fixture = Fixture::start(options).await;
    let port = fixture.upstream.address.port();
    let cases = [
        ("http://private.test/".to_owned(), "private (10.0.0.0/8)"),
        ("http://mixed.test/".to_owned(), "loopback (127.0.0.0/8)"),
        (
            "http://10.0.0.5:8000/v1/messages".to_owned(),
            "private (10.0.0.0/8)",
        ),
        (format!("http://[::1]:{port}/"), "loopback (::1)"),
        // The trusted origin's host with another port is not the trusted origin.
        (
            format!("http://127.0.0.1:{}/", port.wrapping_add(1)),
            "loopback (127.0.0.0/8)",
        ),
    ];
    for (url, range) in cases {
        let response = fixture.get(&url).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{url}");
        let message = body_json(response).await["error"]["message"].to_string();
        assert!(message.contains(range), "{url}: {message}");
    }
    assert_eq!(fixture.proxy.upstream_connection_attempts(), 0);
}

#[tokio::test]
async fn connect_to_denied_host_is_rejected() {
    let options = ProxyOptions {
        extra_hosts: vec!["metadata.test"],
        allow_loopback: false,
        ..ProxyOptions::default()
    };
    let fixture = Fixture::start(options).await;

    for (target, expected) in [
        ("denied.test:443", "allowlist"),
        ("metadata.test:80", "cloud metadata"),
    ] {
        let request = Request::connect(target)
            .body(Full::new(Bytes::new()))
            .expect("valid request");
        let response = fixture.send(request).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{target}");
        let message = body_json(response).await["error"]["message"].to_string();
        assert!(message.contains(expected), "{target}: {message}");
    }
    let entry = fixture.last_log_entry().await;
    assert_eq!(entry.kind, EgressKind::Connect);
    assert_eq!(entry.outcome, EgressOutcome::Denied);
    assert_eq!(fixture.proxy.upstream_connection_attempts(), 0);
}

#[tokio::test]
async fn connect_tunnels_to_allowed_host() {
    let options = ProxyOptions {
        extra_hosts: vec!["allowed.test"],
        allow_loopback: true,
        ..ProxyOptions::default()
    };
    let fixture = Fixture::start(options).await;
    let target = format!("allowed.test:{}", fixture.upstream.address.port());
    let request = Request::connect(&target)
        .body(Full::new(Bytes::new()))
        .expect("valid request");

    let response = fixture.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let upgraded = hyper::upgrade::on(response).await.expect("tunnel opened");
    let mut tunnel = TokioIo::new(upgraded);
    let request = b"GET /echo HTTP/1.1\r\nhost: allowed.test\r\nconnection: close\r\n\r\n";
    tunnel
        .write_all(request)
        .await
        .expect("write through tunnel");
    let mut answer = Vec::new();
    tunnel
        .read_to_end(&mut answer)
        .await
        .expect("read through tunnel");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Nothing is added inside a tunnel: the proxy cannot see into it.
    assert!(answer.contains("\"x_api_key\":null"), "{answer}");
    drop(tunnel);

    let entry = fixture.last_log_entry().await;
    assert_eq!(entry.kind, EgressKind::Connect);
    assert_eq!(entry.outcome, EgressOutcome::Forwarded);
    assert_eq!(entry.host, "allowed.test");
    assert_eq!(entry.bytes_up, request.len() as u64);
    assert_eq!(entry.bytes_down, answer.len() as u64);
}

#[tokio::test]
async fn allowlisted_host_gets_no_credential() {
    let options = ProxyOptions {
        extra_hosts: vec!["allowed.test"],
        allow_loopback: true,
        ..ProxyOptions::default()
    };
    let fixture = Fixture::start(options).await;
    let port = fixture.upstream.address.port();

    let response = fixture
        .get(&format!("http://allowed.test:{port}/echo?q=1"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let echo = body_json(response).await;
    assert_eq!(echo["x_api_key"], serde_json::Value::Null);
    assert_eq!(echo["authorization"], serde_json::Value::Null);
    assert_eq!(echo["host"], format!("allowed.test:{port}"));
    assert_eq!(echo["uri"], "/echo?q=1");

    let entry = fixture.last_log_entry().await;
    assert_eq!(entry.upstream, None);
    assert_eq!(entry.outcome, EgressOutcome::Forwarded);
}

#[tokio::test]
async fn sse_streams_without_buffering() {
    let fixture = Fixture::start(ProxyOptions::default()).await;
    let response = fixture
        .get(&format!("{}/sse", fixture.anthropic_origin()))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();

    // The upstream sends its second event only after this test releases it, so a proxy
    // that buffered the body would never deliver the first one: the timeout fails the test.
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("first event arrives while the upstream is still open")
        .expect("a frame")
        .expect("a valid frame");
    let first = first.into_data().expect("a data frame");
    assert!(
        first.starts_with(b"event: message.delta\ndata: {\"text\":\"Hel\"}"),
        "{first:?}"
    );
    assert!(!fixture.upstream.sse_finished.load(Ordering::SeqCst));

    fixture.upstream.release_sse.notify_one();
    let rest = body.collect().await.expect("rest of the stream").to_bytes();
    assert!(rest.ends_with(b"data: {\"text\":\"lo\"}\n\n"), "{rest:?}");
    assert!(fixture.upstream.sse_finished.load(Ordering::SeqCst));
}

#[tokio::test]
async fn trusted_host_left_out_is_denied() {
    let fixture = Fixture::start(ProxyOptions::default()).await;
    fixture
        .handle
        .set_policy(AgentEgressPolicy::new(["localhost"]).expect("valid policy"));

    let response = fixture
        .get(&format!("{}/v1/messages", fixture.anthropic_origin()))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(fixture.proxy.upstream_connection_attempts(), 0);
}

#[tokio::test]
async fn origin_form_request_is_rejected() {
    let fixture = Fixture::start(ProxyOptions::default()).await;
    let response = fixture.get("/v1/messages").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = body_json(response).await;
    assert_eq!(body["error"]["code"], "invalid_request");
    let message = body["error"]["message"].to_string();
    assert!(message.contains("absolute form"), "{message}");
}

#[tokio::test]
async fn closing_handle_removes_socket() {
    let fixture = Fixture::start(ProxyOptions::default()).await;
    let agent = fixture.agent.clone();
    let socket = fixture.socket.clone();
    assert!(socket.exists());

    // A second socket for the same agent would let two sandboxes share one identity.
    let second = fixture.proxy.open_agent(
        agent.clone(),
        fixture.proxy.default_policy(),
        fixture.dir.path().join("other.sock"),
    );
    assert!(second.is_err());

    let Fixture {
        proxy, handle, dir, ..
    } = fixture;
    handle.close();
    assert!(!socket.exists());
    assert!(tokio::net::UnixStream::connect(&socket).await.is_err());
    let reopened = proxy.open_agent(agent, proxy.default_policy(), &socket);
    assert!(reopened.is_ok(), "{:?}", reopened.err());
    drop(dir);
}

#[tokio::test]
async fn socket_is_private_to_its_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    let fixture = Fixture::start(ProxyOptions::default()).await;
    let metadata = std::fs::metadata(&fixture.socket).expect("socket metadata");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);

    // Changing the owner needs root; the tests of this project run as root.
    if running_as_root() {
        fixture
            .handle
            .set_socket_owner(64_123, 64_123)
            .expect("chown socket");
        let metadata = std::fs::metadata(&fixture.socket).expect("socket metadata");
        assert_eq!(metadata.uid(), 64_123);
        assert_eq!(metadata.gid(), 64_123);
    } else {
        eprintln!("not root: skipping the socket owner check");
    }
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // The owner of a file this process just created is its effective uid.
    let probe = tempfile::NamedTempFile::new().expect("temp file");
    probe.as_file().metadata().expect("metadata").uid() == 0
}

#[tokio::test]
async fn closing_handle_ends_open_tunnel() {
    let options = ProxyOptions {
        extra_hosts: vec!["allowed.test"],
        allow_loopback: true,
        ..ProxyOptions::default()
    };
    let fixture = Fixture::start(options).await;
    let target = format!("allowed.test:{}", fixture.upstream.address.port());
    let request = Request::connect(&target)
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    let response = fixture.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut tunnel = TokioIo::new(hyper::upgrade::on(response).await.expect("tunnel opened"));

    let Fixture { handle, .. } = fixture;
    handle.close();

    // The upstream keeps its side open, so only the proxy closing the tunnel ends the read.
    let mut buffer = [0_u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), tunnel.read(&mut buffer))
        .await
        .expect("the tunnel closes when the handle is closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn tunnel_counts_against_connection_limit() {
    let options = ProxyOptions {
        extra_hosts: vec!["allowed.test"],
        allow_loopback: true,
        max_connections: Some(1),
    };
    let fixture = Fixture::start(options).await;
    let target = format!("allowed.test:{}", fixture.upstream.address.port());
    let request = Request::connect(&target)
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    let response = fixture.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tunnel = TokioIo::new(hyper::upgrade::on(response).await.expect("tunnel opened"));

    // The open tunnel takes the agent's only place, so a new connection is closed at once.
    assert!(try_get(&fixture).await.is_err());

    drop(tunnel);
    let mut reopened = false;
    for _ in 0..100 {
        if try_get(&fixture).await.is_ok() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened, "the place is free again once the tunnel closed");
}

/// Sends one request to the trusted upstream, returning an error when the proxy closes the
/// connection instead of responding.
async fn try_get(fixture: &Fixture) -> Result<StatusCode, hyper::Error> {
    let stream = tokio::net::UnixStream::connect(&fixture.socket)
        .await
        .expect("connect to the egress socket");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let url = format!("{}/echo", fixture.anthropic_origin());
    let request = Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    Ok(sender.send_request(request).await?.status())
}
