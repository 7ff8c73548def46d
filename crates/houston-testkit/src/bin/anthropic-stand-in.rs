//! Runs the Anthropic stand-in as a process, for end-to-end tests and manual runs.
//!
//! Usage: `anthropic-stand-in [ADDRESS]` (default `127.0.0.1:0`). The first stdout line is
//! `anthropic stand-in listening on http://HOST:PORT`. It answers every request with the
//! default reply, which quotes the last user message, until it is killed.

use std::io::Write;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let stand_in = houston_testkit::anthropic::StandIn::start_on(&address).await;
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "anthropic stand-in listening on {}", stand_in.base_url());
    let _ = stdout.flush();
    std::future::pending::<()>().await;
}
