//! Logging set-up shared by every subcommand: human-readable lines on stderr, filtered by
//! `RUST_LOG` (default `info`), so stdout stays free for machine-read output such as the
//! engine's readiness line.

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber. Call once, first thing in a subcommand.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
