//! Logging, set up once per process: readable text on a terminal, JSON when `log.format =
//! "json"` (for journald or a log shipper). Logs go to stderr; command output goes to stdout.
//! Secrets never reach a log: settings holding them print `[REDACTED]`. A closed stderr
//! (`factord run 2>&1 | tee log`, stopped with Ctrl-C) loses the log lines, never the process:
//! write errors are not reported on stderr again (which would panic).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Libraries that log what they send at trace level: suppaftp writes `PASS <password>`, HTTP
/// clients may write headers. Whatever the settings ask, they never log below debug.
const SECRET_SAFE_CAPS: [&str; 6] = ["suppaftp", "reqwest", "hyper", "hyper_util", "h2", "rustls"];

/// What dependencies log unless `log.filter` raises them: warnings and errors.
const DEPENDENCIES: &str = "warn";

/// The `EnvFilter` directives for `log.level` and `log.filter`: dependencies at `warn`, factord
/// at `level` (a bare level), then `filter`; last, a cap at `debug` for each library of
/// [`SECRET_SAFE_CAPS`] that the directives would let log at trace. A `level` with `=` in it is
/// taken as whole directives, as earlier versions documented.
pub fn filter_directives(level: &str, filter: Option<&str>) -> String {
    let mut directives = if level.contains('=') || level.contains(',') {
        level.to_string()
    } else {
        format!("{DEPENDENCIES},factord={level}")
    };
    if let Some(filter) = filter.map(str::trim).filter(|f| !f.is_empty()) {
        directives.push(',');
        directives.push_str(filter);
    }
    let parsed: Vec<(Option<&str>, &str)> = directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.rsplit_once('=') {
            Some((target, level)) => (Some(target), level),
            None => (None, d),
        })
        .collect();
    let mut caps = String::new();
    for library in SECRET_SAFE_CAPS {
        // The last directive that applies to the library: one naming it (or a parent), else a
        // bare level.
        let applies = |target: Option<&str>| {
            target.is_none_or(|t| library == t || library.starts_with(&format!("{t}::")) || t.starts_with(library))
        };
        let level = parsed.iter().rev().find(|(target, _)| target.is_some() && applies(*target));
        let level = level.or_else(|| parsed.iter().rev().find(|(target, _)| target.is_none()));
        if level.is_some_and(|(_, l)| l.eq_ignore_ascii_case("trace")) {
            caps.push_str(&format!(",{library}=debug"));
        }
    }
    directives + &caps
}

/// Installs the global subscriber. A second call (tests, or a reload) leaves the first one.
pub fn init(log: &LogSettings) {
    let directives = filter_directives(&log.level, log.filter.as_deref());
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("warn,factord=info"));
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

    fn logged_with(level: &str, filter: Option<&str>) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::try_new(filter_directives(level, filter)).expect("filter"))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "suppaftp::async_ftp", "CC OUT: PASS s3cret");
            tracing::debug!(target: "suppaftp::async_ftp", "suppaftp debug line");
            tracing::debug!(target: "sqlx::query", "sqlx debug line");
            tracing::debug!(target: "hyper_util::client", "hyper debug line");
            tracing::warn!(target: "sqlx::pool", "sqlx warning");
            tracing::trace!(target: "factord::submit", "our own trace");
            tracing::debug!(target: "factord::submit", "our own debug");
            tracing::info!(target: "factord::daemon", "our own info");
        });
        let bytes = captured.0.lock().expect("lock").clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn logged_at(level: &str) -> String {
        logged_with(level, None)
    }

    #[test]
    fn no_level_lifts_the_caps_on_chatty_libraries() {
        for level in ["trace", "suppaftp=trace", "trace,suppaftp=trace"] {
            let logged = logged_at(level);
            assert!(!logged.contains("s3cret"), "{level}: {logged}");
        }
        assert!(logged_at("trace").contains("our own trace"));
        let raised = logged_with("info", Some("suppaftp=trace"));
        assert!(!raised.contains("s3cret") && raised.contains("suppaftp debug line"), "{raised}");
    }

    #[test]
    fn the_level_is_factords_and_dependencies_stay_at_warn() {
        let info = logged_at("info");
        assert!(info.contains("our own info") && !info.contains("our own debug"), "{info}");
        for line in ["suppaftp debug line", "sqlx debug line", "hyper debug line"] {
            assert!(!info.contains(line), "info must not print a dependency's debug: {info}");
        }
        assert!(info.contains("sqlx warning"), "{info}");
        let debug = logged_at("debug");
        assert!(debug.contains("our own debug") && !debug.contains("sqlx debug line"), "{debug}");
    }

    #[test]
    fn log_filter_raises_one_dependency() {
        let logged = logged_with("info", Some("sqlx=debug"));
        assert!(logged.contains("sqlx debug line"), "{logged}");
        assert!(!logged.contains("hyper debug line") && !logged.contains("our own debug"), "{logged}");
    }
}
