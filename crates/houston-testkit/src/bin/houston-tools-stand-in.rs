//! Runs the Anthropic and Composio stand-ins for the browser test of the tool flow.
//!
//! Usage: `houston-tools-stand-in COMPOSIO_KEY`. The Composio stand-in offers
//! `SLACK_SEND_MESSAGE` and accepts requests with `x-api-key: COMPOSIO_KEY`. The Anthropic
//! stand-in replies to its first request by calling that tool to post the vacation policy to
//! #general, to its second with "Posted our vacation policy to #general.", and to later ones
//! with its default reply. The first stdout line is `anthropic=URL composio=URL`.

use std::io::Write;

use houston_testkit::anthropic::{Script, StandIn};
use houston_testkit::composio::{ComposioStandIn, StandInTool};

const POST_INPUT: &str = r##"{"channel": "#general", "text": "Vacation policy: 20 days of paid vacation a year."}"##;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let Some(key) = std::env::args().nth(1).filter(|key| !key.is_empty()) else {
        eprintln!("usage: houston-tools-stand-in COMPOSIO_KEY");
        return std::process::ExitCode::from(2);
    };
    let composio = match ComposioStandIn::start(&key).await {
        Ok(composio) => composio,
        Err(error) => {
            eprintln!("failed to start the Composio stand-in: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    composio.add_tool(StandInTool::new("SLACK_SEND_MESSAGE", "slack", &["channel", "text"]));
    let model = StandIn::start().await;
    model.push(Script::new().text(&["I'll post it.\n\n"]).tool_use("toolu_1", "SLACK_SEND_MESSAGE", &[POST_INPUT]).end_tool_use(12).build());
    model.push(Script::new().text(&["Posted our vacation policy to #general."]).end_turn(9).build());

    let mut stdout = std::io::stdout();
    // The test reads this line to learn the ports, so it must not sit in a buffer.
    let _ = writeln!(stdout, "anthropic={} composio={}", model.base_url(), composio.base_url());
    let _ = stdout.flush();
    std::future::pending::<()>().await;
    std::process::ExitCode::SUCCESS
}
