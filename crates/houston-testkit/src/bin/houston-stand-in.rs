//! Runs the Anthropic stand-in for the browser end-to-end tests, which point
//! `houston up` at it with `ANTHROPIC_BASE_URL`.
//!
//! Usage: `houston-stand-in [--listen ADDRESS] [--token-delay-ms MS]`. `ADDRESS` defaults to
//! `127.0.0.1:0`. `--token-delay-ms` pauses between the pieces of every reply, so a test can
//! act while an answer is still streaming. The first stdout line is the base URL
//! (`http://127.0.0.1:PORT`). Every request gets the stand-in's default reply, which quotes
//! the last user message, until the process is killed.

use std::io::Write;
use std::time::Duration;

use houston_testkit::anthropic::StandIn;

const USAGE: &str = "usage: houston-stand-in [--listen ADDRESS] [--token-delay-ms MS]";

#[derive(Debug, PartialEq)]
struct Options {
    listen: String,
    token_delay: Option<Duration>,
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options { listen: "127.0.0.1:0".to_owned(), token_delay: None };
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            return Err(format!("missing value for {flag}\n{USAGE}"));
        };
        match flag.as_str() {
            "--listen" => options.listen = value,
            "--token-delay-ms" => {
                let millis: u64 = value
                    .parse()
                    .map_err(|_| format!("invalid --token-delay-ms {value:?}: expected milliseconds"))?;
                options.token_delay = Some(Duration::from_millis(millis));
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(options)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::from(2);
        }
    };
    let stand_in = StandIn::start_on(&options.listen).await;
    stand_in.set_default_token_delay(options.token_delay);

    let mut stdout = std::io::stdout();
    // A test harness reads this line to learn the port, so it must not sit in a buffer.
    let _ = writeln!(stdout, "{}", stand_in.base_url());
    let _ = stdout.flush();

    std::future::pending::<()>().await;
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_options(args.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn defaults_to_loopback_any_port() {
        let options = parse(&[]).unwrap();
        assert_eq!(options.listen, "127.0.0.1:0");
        assert_eq!(options.token_delay, None);
    }

    #[test]
    fn reads_listen_and_delay() {
        let options = parse(&["--listen", "127.0.0.1:4010", "--token-delay-ms", "250"]).unwrap();
        assert_eq!(options.listen, "127.0.0.1:4010");
        assert_eq!(options.token_delay, Some(Duration::from_millis(250)));
    }

    #[test]
    fn rejects_bad_delay() {
        let error = parse(&["--token-delay-ms", "soon"]).unwrap_err();
        assert!(error.contains("invalid --token-delay-ms"), "{error}");
    }

    #[test]
    fn rejects_unknown_option() {
        let error = parse(&["--port", "1"]).unwrap_err();
        assert!(error.contains("unknown option --port"), "{error}");
    }

    #[test]
    fn rejects_missing_value() {
        let error = parse(&["--listen"]).unwrap_err();
        assert!(error.contains("missing value for --listen"), "{error}");
    }
}
