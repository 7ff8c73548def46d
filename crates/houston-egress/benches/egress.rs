//! Added latency of the egress proxy on loopback: the same small GET sent directly to a
//! local upstream and through an agent's egress socket, interleaved in one run.
//!
//! Run with `cargo bench -p houston-egress --bench egress`. Every request goes to 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use houston_egress::{
    AgentEgressPolicy, EgressConfig, EgressProxy, StaticResolver, TrustedUpstream,
};
use houston_protocol::AgentId;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use secrecy::SecretString;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixStream};

/// Requests per path in each round; rounds alternate the paths to spread machine noise.
const REQUESTS_PER_ROUND: usize = 200;
const ROUNDS: usize = 10;
const WARMUP: usize = 200;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let app = Router::new().route("/ping", get(|| async { "pong" }));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind upstream");
    let upstream = listener.local_addr().expect("upstream address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("upstream server") });

    let dir = tempfile::tempdir().expect("temp dir");
    let origin = format!("http://127.0.0.1:{}", upstream.port());
    let trusted = TrustedUpstream::anthropic(&origin, SecretString::from("sk-bench"))
        .expect("valid upstream");
    let config =
        EgressConfig::new(vec![trusted], dir.path().join("egress.jsonl")).expect("valid config");
    let resolver = StaticResolver::new().with("allowed.test", [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    let proxy = EgressProxy::builder(config)
        .resolver(resolver)
        .danger_allow_loopback_for_tests()
        .build()
        .expect("proxy builds");
    let policy = AgentEgressPolicy::new(["127.0.0.1", "allowed.test"]).expect("valid policy");
    let socket = dir.path().join("bench.sock");
    let _handle = proxy
        .open_agent(AgentId::parse("bench").expect("valid id"), policy, &socket)
        .expect("open agent socket");

    let mut direct = client(
        TcpStream::connect(upstream)
            .await
            .expect("connect upstream"),
    )
    .await;
    let mut proxied = client(UnixStream::connect(&socket).await.expect("connect socket")).await;
    let mut allowlisted = client(UnixStream::connect(&socket).await.expect("connect socket")).await;
    let direct_url = "/ping".to_owned();
    let trusted_url = format!("{origin}/ping");
    let allowlisted_url = format!("http://allowed.test:{}/ping", upstream.port());

    for _ in 0..WARMUP {
        send_get(&mut direct, &direct_url).await;
        send_get(&mut proxied, &trusted_url).await;
        send_get(&mut allowlisted, &allowlisted_url).await;
    }
    let (mut direct_times, mut trusted_times, mut allowlisted_times) =
        (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        direct_times.extend(time_requests(&mut direct, &direct_url).await);
        trusted_times.extend(time_requests(&mut proxied, &trusted_url).await);
        allowlisted_times.extend(time_requests(&mut allowlisted, &allowlisted_url).await);
    }

    let direct_median = percentile(&mut direct_times, 50);
    println!(
        "egress latency on loopback, {} requests per path",
        ROUNDS * REQUESTS_PER_ROUND
    );
    report("direct (TCP keep-alive)", &mut direct_times, direct_median);
    report(
        "proxied, trusted upstream (pooled)",
        &mut trusted_times,
        direct_median,
    );
    report(
        "proxied, allowlisted host (new connection)",
        &mut allowlisted_times,
        direct_median,
    );
}

async fn client<I>(io: I) -> SendRequest<Empty<Bytes>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

async fn send_get(sender: &mut SendRequest<Empty<Bytes>>, url: &str) {
    sender.ready().await.expect("connection ready");
    let request = Request::get(url)
        .header("host", "127.0.0.1")
        .body(Empty::new())
        .expect("valid request");
    let response = sender.send_request(request).await.expect("response");
    assert!(
        response.status().is_success(),
        "status {}",
        response.status()
    );
    response.into_body().collect().await.expect("body");
}

async fn time_requests(sender: &mut SendRequest<Empty<Bytes>>, url: &str) -> Vec<Duration> {
    let mut times = Vec::with_capacity(REQUESTS_PER_ROUND);
    for _ in 0..REQUESTS_PER_ROUND {
        let started = Instant::now();
        send_get(sender, url).await;
        times.push(started.elapsed());
    }
    times
}

fn percentile(times: &mut [Duration], percent: usize) -> Duration {
    times.sort_unstable();
    times[(times.len() - 1) * percent / 100]
}

fn report(label: &str, times: &mut [Duration], direct_median: Duration) {
    let median = percentile(times, 50);
    let p90 = percentile(times, 90);
    let added = median.saturating_sub(direct_median);
    println!(
        "{label:<44} median {:>7.1} us  p90 {:>7.1} us  added {:>7.1} us  ratio {:.2}",
        micros(median),
        micros(p90),
        micros(added),
        micros(median) / micros(direct_median)
    );
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
