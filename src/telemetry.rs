//! Logging, set up once per process: readable text on a terminal, JSON when `log.format =
//! "json"` (for journald or a log shipper). Logs go to stderr; command output goes to stdout.
//! Secrets never reach a log: settings holding them print `[REDACTED]`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. A second call (tests, or a reload) leaves the first one.
pub fn init(log: &LogSettings) {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.with_ansi(std::io::stderr().is_terminal()).with_target(false).try_init(),
    };
}

/// Logging for commands run before or without valid settings: warnings and errors only.
pub fn init_fallback() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
