//! Logging set-up shared by every subcommand: human-readable lines on stderr, filtered by
//! `RUST_LOG` (default `info`), so stdout stays free for machine-read output such as the
//! engine's readiness line.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber. Call once, first thing in a subcommand.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = use_ansi(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

/// Decides whether log lines carry colour escapes. They do only on a terminal and only while
/// `NO_COLOR` is unset or empty, because `houston up` relays an engine's piped stderr and
/// would otherwise show the escape sequences as text.
fn use_ansi(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    let no_color = no_color.is_some_and(|value| !value.is_empty());
    stderr_is_terminal && !no_color
}

#[cfg(test)]
mod tests {
    use super::use_ansi;
    use std::ffi::OsStr;

    #[test]
    fn ansi_only_on_terminal_without_no_color() {
        assert!(use_ansi(true, None));
        assert!(use_ansi(true, Some(OsStr::new(""))));
        assert!(!use_ansi(false, None));
        assert!(!use_ansi(true, Some(OsStr::new("1"))));
        assert!(!use_ansi(false, Some(OsStr::new("1"))));
    }
}
