//! Logging, set up once per process: readable text on a terminal, JSON when `log.format =
//! "json"` (for journald or a log shipper). Logs go to stderr; command output goes to stdout.
//! Secrets never reach a log: settings holding them print `[REDACTED]`. A closed stderr
//! (`factord run 2>&1 | tee log`, stopped with Ctrl-C) loses the log lines, never the process:
//! write errors are not reported on stderr again (which would panic).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Caps on libraries that log what they send at trace level: suppaftp writes `PASS <password>`,
/// HTTP clients may write headers. Appended after the configured level so no setting lifts them.
const SECRET_SAFE_CAPS: &str = "suppaftp=debug,reqwest=debug,hyper=debug,hyper_util=debug,h2=debug,rustls=debug";

/// The filter for a configured level, with [`SECRET_SAFE_CAPS`] last.
pub fn filter_directives(level: &str) -> String {
    format!("{level},{SECRET_SAFE_CAPS}")
}

/// Installs the global subscriber. A second call (tests, or a reload) leaves the first one.
pub fn init(log: &LogSettings) {
    let filter = EnvFilter::try_new(filter_directives(&log.level)).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).log_internal_errors(false);
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
        .log_internal_errors(false)
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged_at(level: &str) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::try_new(filter_directives(level)).expect("filter"))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "suppaftp::async_ftp", "CC OUT: PASS s3cret");
            tracing::trace!(target: "factord::submit", "our own trace");
        });
        let bytes = captured.0.lock().expect("lock").clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn no_level_lifts_the_caps_on_chatty_libraries() {
        for level in ["trace", "suppaftp=trace", "trace,suppaftp=trace"] {
            let logged = logged_at(level);
            assert!(!logged.contains("s3cret"), "{level}: {logged}");
        }
        assert!(logged_at("trace").contains("our own trace"));
    }
}
