//! `/metrics` in the Prometheus text exposition format (version 0.0.4), rendered by hand: the
//! database counts are read at scrape time ([`Store::metric_counts`]), and the figures only
//! the process knows (job durations, the last reload) come from [`Metrics`] and [`Health`],
//! owned by the daemon and passed in — no global registry.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::health::HealthState;
use crate::config::Settings;
use crate::domain::{ExceptionKind, LoadStatus, Money};
use crate::store::MetricCounts;

/// A periodic job of the daemon whose runs are timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Job {
    /// One invoice pass: Released loads → invoices and packets.
    Invoice,
    /// One subsidiary's scheduled submission (pre-flight, batches, transports).
    Submission,
    /// One scan of `inbox/loads/` with the imports it makes.
    LoadsInbox,
    /// One scan of the report inboxes with the ingests it makes.
    ReportsInbox,
}

impl Job {
    pub const ALL: [Job; 4] = [Job::Invoice, Job::Submission, Job::LoadsInbox, Job::ReportsInbox];

    /// The `job` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Job::Invoice => "invoice",
            Job::Submission => "submission",
            Job::LoadsInbox => "loads_inbox",
            Job::ReportsInbox => "reports_inbox",
        }
    }

    const fn index(self) -> usize {
        match self {
            Job::Invoice => 0,
            Job::Submission => 1,
            Job::LoadsInbox => 2,
            Job::ReportsInbox => 3,
        }
    }
}

/// The runs of one job so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JobStats {
    pub runs: u64,
    pub failures: u64,
    pub seconds_total: f64,
    pub last_seconds: f64,
}

/// In-process counters of the daemon, shared (`Arc<Metrics>`) between the jobs that record
/// and the HTTP server that renders.
#[derive(Debug, Default)]
pub struct Metrics {
    jobs: Mutex<[JobStats; 4]>,
    /// Alerts delivered and failed: webhook sent, webhook failed, email sent, email failed.
    alerts: Mutex<[u64; 4]>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    // Plain numbers cannot be left half-written by a panic: a poisoned lock is still good.
    fn lock(&self) -> MutexGuard<'_, [JobStats; 4]> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one run of `job` that took `elapsed`; `ok` is false when it failed.
    pub fn record_job(&self, job: Job, elapsed: Duration, ok: bool) {
        let mut jobs = self.lock();
        let stats = &mut jobs[job.index()];
        stats.runs += 1;
        if !ok {
            stats.failures += 1;
        }
        stats.seconds_total += elapsed.as_secs_f64();
        stats.last_seconds = elapsed.as_secs_f64();
    }

    /// Runs `work` and records its duration under `job`, failed if it returns `Err`.
    pub async fn timed<T, E>(&self, job: Job, work: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let started = Instant::now();
        let result = work.await;
        self.record_job(job, started.elapsed(), result.is_ok());
        result
    }

    /// The runs of `job` so far.
    pub fn job(&self, job: Job) -> JobStats {
        self.lock()[job.index()]
    }

    /// Counts `n` alerts delivered (`sent`) or failed on `channel` (`webhook` or `email`).
    pub fn record_alerts(&self, channel: &str, sent: bool, n: u64) {
        let index = usize::from(channel == "email") * 2 + usize::from(!sent);
        let mut alerts = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
        alerts[index] = alerts[index].saturating_add(n);
    }

    /// Alerts (sent, failed) on `channel` so far.
    pub fn alerts(&self, channel: &str) -> (u64, u64) {
        let alerts = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
        let base = usize::from(channel == "email") * 2;
        (alerts[base], alerts[base + 1])
    }
}

/// Builds the exposition text: a family (`# HELP`, `# TYPE`) is written once, before its
/// samples.
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, text)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape_label_value(text));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// A label value as the text format wants it: backslash, double quote and line feed escaped.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The whole `/metrics` page. `counts` is `None` when the database could not be read: the
/// database families are left out and `factord_database_up` says 0, so the process figures
/// still reach the scraper.
pub fn render(settings: &Settings, counts: Option<&MetricCounts>, health: &HealthState, metrics: &Metrics) -> String {
    let mut x = Exposition { out: String::new() };

    x.family("factord_build_info", "gauge", "The running factord version (always 1).");
    x.sample("factord_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);

    x.family("factord_database_up", "gauge", "Whether the database answered this scrape (1) or not (0).");
    x.sample("factord_database_up", &[], u8::from(counts.is_some()));

    if let Some(counts) = counts {
        render_database(&mut x, settings, counts);
    }

    x.family(
        "factord_job_duration_seconds",
        "summary",
        "Time spent in the daemon's job runs since it started (invoice pass, scheduled submission, loads inbox scan, reports inbox scan).",
    );
    for job in Job::ALL {
        let stats = metrics.job(job);
        x.sample("factord_job_duration_seconds_sum", &[("job", job.as_str())], stats.seconds_total);
        x.sample("factord_job_duration_seconds_count", &[("job", job.as_str())], stats.runs);
    }
    x.family("factord_job_last_duration_seconds", "gauge", "How long the last run of each job took.");
    for job in Job::ALL {
        x.sample("factord_job_last_duration_seconds", &[("job", job.as_str())], metrics.job(job).last_seconds);
    }
    x.family("factord_job_failures_total", "counter", "Job runs that ended in an error since the daemon started.");
    for job in Job::ALL {
        x.sample("factord_job_failures_total", &[("job", job.as_str())], metrics.job(job).failures);
    }

    render_alerts(&mut x, metrics);

    x.family(
        "factord_config_last_reload_success",
        "gauge",
        "Whether the last configuration load or reload was applied (1) or refused and the old configuration kept (0).",
    );
    x.sample("factord_config_last_reload_success", &[], u8::from(health.last_reload_ok));
    x.family(
        "factord_config_last_reload_timestamp_seconds",
        "gauge",
        "When the configuration was last loaded or a reload was last attempted (Unix time).",
    );
    x.sample("factord_config_last_reload_timestamp_seconds", &[], unix_seconds(health.last_reload_at));
    x.family("factord_components_running", "gauge", "Whether the daemon's components are running (1) or not (0).");
    x.sample("factord_components_running", &[], u8::from(health.components_running));

    x.family(
        "factord_component_up",
        "gauge",
        "Whether each supervised component runs with a fresh heartbeat (1), or is restarting after a failure or stale (0).",
    );
    for c in &health.components {
        x.sample("factord_component_up", &[("component", &c.name)], u8::from(c.up()));
    }
    x.family(
        "factord_component_restarts_total",
        "counter",
        "How many times the supervisor restarted each component after a panic or an unexpected stop.",
    );
    for c in &health.components {
        x.sample("factord_component_restarts_total", &[("component", &c.name)], c.restarts);
    }
    x.family(
        "factord_component_heartbeat_age_seconds",
        "gauge",
        "Seconds since each component's last heartbeat (components without a heartbeat, such as the HTTP server, are left out).",
    );
    for c in &health.components {
        if let Some(age) = c.heartbeat_age {
            x.sample("factord_component_heartbeat_age_seconds", &[("component", &c.name)], age.as_secs_f64());
        }
    }
    x.out
}

/// The alert deliveries per channel.
fn render_alerts(x: &mut Exposition, metrics: &Metrics) {
    x.family(
        "factord_alerts_sent_total",
        "counter",
        "Alerts delivered per channel (webhook, email) since the daemon started.",
    );
    for channel in ["webhook", "email"] {
        x.sample("factord_alerts_sent_total", &[("channel", channel)], metrics.alerts(channel).0);
    }
    x.family(
        "factord_alerts_failed_total",
        "counter",
        "Alert deliveries that failed per channel since the daemon started (each is tried again with backoff).",
    );
    for channel in ["webhook", "email"] {
        x.sample("factord_alerts_failed_total", &[("channel", channel)], metrics.alerts(channel).1);
    }
}

fn render_database(x: &mut Exposition, settings: &Settings, counts: &MetricCounts) {
    // Configured subsidiaries get a zero for every status, so a series exists before the first
    // load arrives; subsidiaries that have loads but are no longer configured still show.
    let mut subsidiaries: BTreeSet<&str> = settings.subsidiaries.iter().map(|s| s.id.as_str()).collect();
    subsidiaries.extend(counts.loads.iter().map(|(s, _, _)| s.as_str()));
    subsidiaries.extend(counts.exceptions.iter().map(|(s, _, _)| s.as_str()));

    let loads: BTreeMap<(&str, &str), i64> =
        counts.loads.iter().map(|(s, status, n)| ((s.as_str(), status.as_str()), *n)).collect();
    x.family("factord_loads", "gauge", "Loads per subsidiary and status.");
    for subsidiary in &subsidiaries {
        for status in LoadStatus::ALL {
            let n = loads.get(&(*subsidiary, status.as_str())).copied().unwrap_or(0);
            x.sample("factord_loads", &[("subsidiary", subsidiary), ("status", status.as_str())], n);
        }
    }

    let waiting: BTreeMap<&str, i64> = counts.waiting.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    x.family("factord_loads_waiting", "gauge", "Loads per subsidiary that cannot move on, with a recorded reason.");
    for subsidiary in &subsidiaries {
        x.sample("factord_loads_waiting", &[("subsidiary", subsidiary)], waiting.get(subsidiary).copied().unwrap_or(0));
    }

    let exceptions: BTreeMap<(&str, &str), i64> =
        counts.exceptions.iter().map(|(s, kind, n)| ((s.as_str(), kind.as_str()), *n)).collect();
    x.family("factord_exceptions_open", "gauge", "Open exception flags per subsidiary and kind.");
    for subsidiary in &subsidiaries {
        for kind in ExceptionKind::ALL {
            let n = exceptions.get(&(*subsidiary, kind.as_str())).copied().unwrap_or(0);
            x.sample("factord_exceptions_open", &[("subsidiary", subsidiary), ("kind", kind.as_str())], n);
        }
    }

    x.family(
        "factord_batches",
        "gauge",
        "Batches per provider and status (sending: outcome not yet known; sent: the factor answered; failed).",
    );
    for (provider, status, n) in &counts.batches {
        x.sample("factord_batches", &[("provider", provider), ("status", status)], n);
    }
    x.family(
        "factord_invoices_submitted",
        "gauge",
        "Invoices sent in batches per provider and outcome (pending, accepted, rejected, transient).",
    );
    for (provider, outcome, n) in &counts.invoices {
        x.sample("factord_invoices_submitted", &[("provider", provider), ("outcome", outcome)], n);
    }

    x.family(
        "factord_report_rows_total",
        "counter",
        "Report rows per provider and outcome (applied, skipped, rejected).",
    );
    for r in &counts.reports {
        for (outcome, n) in [("applied", r.applied), ("skipped", r.skipped), ("rejected", r.rejected)] {
            x.sample("factord_report_rows_total", &[("provider", &r.provider), ("outcome", outcome)], n);
        }
    }
    x.family(
        "factord_report_files_total",
        "counter",
        "Report files per provider and result (ingested: rows applied; refused: malformed, nothing applied).",
    );
    for r in &counts.reports {
        for (result, n) in [("ingested", r.ingested), ("refused", r.refused)] {
            x.sample("factord_report_files_total", &[("provider", &r.provider), ("result", result)], n);
        }
    }

    render_money(x, counts);

    x.family(
        "factord_load_files_refused_total",
        "counter",
        "Load files refused whole (unreadable, too large, not CSV or JSON), from inbox/loads or `loads import`.",
    );
    x.sample("factord_load_files_refused_total", &[], counts.refused_load_files);

    x.family(
        "factord_schedule_last_fire_timestamp_seconds",
        "gauge",
        "The scheduled time of each subsidiary's last recorded submission fire (Unix time).",
    );
    for (subsidiary, at) in &counts.last_fires {
        x.sample("factord_schedule_last_fire_timestamp_seconds", &[("subsidiary", subsidiary)], at.timestamp());
    }
}

/// The money summary (docs/money.md) in dollars: open receivables per status, financed, reserve
/// held, this month's fees and the age of the oldest open invoice.
fn render_money(x: &mut Exposition, counts: &MetricCounts) {
    let money = &counts.money;
    x.family(
        "factord_money_open_receivables_dollars",
        "gauge",
        "Open balance (amount less payments) of Invoiced and Financed invoices, per status, in dollars.",
    );
    for status in [LoadStatus::Invoiced, LoadStatus::Financed] {
        let open = money.open_by_status.iter().find(|(s, _)| *s == status).map_or(Money::ZERO, |(_, m)| *m);
        x.sample("factord_money_open_receivables_dollars", &[("status", status.as_str())], open);
    }
    x.family("factord_money_financed_dollars", "gauge", "Advances the factors paid on Financed invoices, in dollars.");
    x.sample("factord_money_financed_dollars", &[], money.financed);
    x.family(
        "factord_money_reserve_held_dollars",
        "gauge",
        "Reserve the factors hold (reserve held less reserve released), in dollars.",
    );
    x.sample("factord_money_reserve_held_dollars", &[], money.reserve_held);
    x.family("factord_money_fees_this_month_dollars", "gauge", "Factoring fees dated this month (UTC), in dollars.");
    x.sample("factord_money_fees_this_month_dollars", &[], money.fees_this_month);
    x.family(
        "factord_money_oldest_open_invoice_days",
        "gauge",
        "Days since the invoice date of the oldest Invoiced or Financed invoice (0 when none).",
    );
    x.sample("factord_money_oldest_open_invoice_days", &[], money.oldest_open_days.unwrap_or(0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("two\nlines"), "two\\nlines");
    }

    #[test]
    fn timed_runs_are_counted_with_their_failures() {
        let metrics = Metrics::new();
        metrics.record_job(Job::Invoice, Duration::from_millis(1500), true);
        metrics.record_job(Job::Invoice, Duration::from_millis(500), false);
        let stats = metrics.job(Job::Invoice);
        assert_eq!((stats.runs, stats.failures), (2, 1));
        assert!((stats.seconds_total - 2.0).abs() < 1e-9);
        assert!((stats.last_seconds - 0.5).abs() < 1e-9);
        assert_eq!(metrics.job(Job::Submission), JobStats::default());
    }
}
