//! Engine benchmark: start-to-ready time of `houston engine`, and the time the engine adds to
//! the first token and per token against the Anthropic stand-in streaming with no delay.
//!
//! Run after a release build of the binary:
//!
//! ```sh
//! cargo build --release -p houston-cli
//! cargo run --release -p houston-engine --example engine_bench -- target/release/houston
//! ```
//!
//! Start to ready: from spawning the process until its readiness line is read, over 50
//! starts. Added time to first token: per turn, the engine's time from request to the first
//! `message.delta` minus the time from request to the first `text_delta` when the same client
//! calls the stand-in directly. Turns are paired and interleaved over 50 turns, and the median
//! of the differences is reported. Per token: the same for the time between later deltas.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use houston_testkit::anthropic::StandIn;
use serde_json::json;

const STARTS: usize = 50;
const TURNS: usize = 50;
const TOKEN: &str = "bench-token";

fn percentile(values: &mut [f64], fraction: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * fraction).round() as usize;
    values[index]
}

fn engine_command(houston: &str, dir: &std::path::Path, stand_in: &str) -> Command {
    let mut command = Command::new(houston);
    command
        .args(["engine", "--agent-dir"])
        .arg(dir)
        .args(["--listen", "tcp:127.0.0.1:0"])
        .env("HOUSTON_ENGINE_TOKEN", TOKEN)
        .env("HOUSTON_PROVIDER", "anthropic")
        .env("ANTHROPIC_API_KEY", "sk-bench")
        .env("ANTHROPIC_BASE_URL", stand_in)
        .env("RUST_LOG", "warn")
        .env_remove("HOUSTON_EGRESS_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// Spawns the engine and returns it with its readiness line and the time it took.
fn start_engine(houston: &str, dir: &std::path::Path, stand_in: &str) -> (std::process::Child, String, Duration) {
    let started = Instant::now();
    let mut child = engine_command(houston, dir, stand_in).spawn().expect("spawn houston engine");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).expect("read the readiness line");
    (child, line.trim_end().to_owned(), started.elapsed())
}

/// Sends a request and returns the time to the first chunk containing `marker`, the time
/// to the end of the stream and the number of chunks containing `marker`.
async fn time_stream(request: reqwest::RequestBuilder, marker: &str) -> (Duration, Duration, usize) {
    let started = Instant::now();
    let response = request.send().await.expect("send");
    assert!(response.status().is_success(), "status {}", response.status());
    let mut stream = response.bytes_stream();
    let mut first = None;
    let mut count = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("read the stream");
        let hits = String::from_utf8_lossy(&chunk).matches(marker).count();
        if hits > 0 && first.is_none() {
            first = Some(started.elapsed());
        }
        count += hits;
    }
    (first.expect("no token arrived"), started.elapsed(), count)
}

#[tokio::main]
async fn main() {
    let houston = std::env::args().nth(1).unwrap_or_else(|| "target/release/houston".into());
    let stand_in = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("CLAUDE.md"), "You are a benchmark agent.").unwrap();

    let mut ready_ms = Vec::new();
    for _ in 0..STARTS {
        let (mut child, _, elapsed) = start_engine(&houston, dir.path(), &stand_in.base_url());
        ready_ms.push(elapsed.as_secs_f64() * 1000.0);
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let median = percentile(&mut ready_ms, 0.5);
    let p90 = percentile(&mut ready_ms, 0.9);
    println!("start to ready over {STARTS} starts: median {median:.2} ms, p90 {p90:.2} ms (target: median <= 20 ms)");

    let (mut child, line, _) = start_engine(&houston, dir.path(), &stand_in.base_url());
    let base = format!("http://{}", line.rsplit("tcp:").next().unwrap());
    let client = reqwest::Client::new();
    let message = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen";
    let direct_body = json!({"model": "m", "max_tokens": 100, "stream": true, "system": "s",
        "messages": [{"role": "user", "content": [{"type": "text", "text": message}]}]});

    let (mut first_added, mut per_token_added) = (Vec::new(), Vec::new());
    let (mut direct_first, mut engine_first) = (Vec::new(), Vec::new());
    for turn in 0..(TURNS + 5) {
        let direct = client.post(format!("{}/v1/messages", stand_in.base_url())).json(&direct_body);
        let (d_first, d_total, d_count) = time_stream(direct, "text_delta").await;
        let engine = client
            .post(format!("{base}/v1/sessions/bench-{turn}/turns"))
            .bearer_auth(TOKEN)
            .json(&json!({"user_id": "bench", "message": message}));
        let (e_first, e_total, e_count) = time_stream(engine, "event: message.delta").await;
        if turn < 5 {
            continue;
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        direct_first.push(ms(d_first));
        engine_first.push(ms(e_first));
        first_added.push(ms(e_first) - ms(d_first));
        let per_token = |first: Duration, total: Duration, count: usize| ms(total - first) / (count.max(2) - 1) as f64;
        per_token_added.push(per_token(e_first, e_total, e_count) - per_token(d_first, d_total, d_count));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    println!(
        "first token over {TURNS} turns: direct median {:.3} ms, through the engine median {:.3} ms",
        percentile(&mut direct_first, 0.5),
        percentile(&mut engine_first, 0.5)
    );
    println!(
        "added time to first token: median {:.3} ms, p90 {:.3} ms (target: <= 2 ms)",
        percentile(&mut first_added, 0.5),
        percentile(&mut first_added, 0.9)
    );
    println!("added time per token: median {:.4} ms", percentile(&mut per_token_added, 0.5));
}
