//! Alerts by webhook and email (docs/operations.md, Alerts).
//!
//! Events are derived from the database state, not from the code paths that caused them: a
//! batch failed or partly rejected, a report or load file refused, report rows rejected, an
//! exception raised, a load waiting longer than `alerts.stuck_after`. Each is claimed once per
//! channel in the `alerts` table under a key taken from its row ([`crate::store::AlertScan`]),
//! so a restart or a second daemon on the same PostgreSQL never alerts twice. A component that
//! stopped is recorded into the same table by the daemon when the supervisor reports it
//! ([`record_component_stopped`]).
//!
//! The sender ([`run`]) is a supervised component of its own: each round records new events and
//! delivers the alerts due, each call bounded by a timeout, so a dead endpoint never holds up
//! the pipeline. A failed delivery is tried again after a capped backoff
//! ([`crate::backoff::full_jitter`]); a webhook answering 4xx (other than 408 and 429) or an SMTP
//! server refusing for good is given up, with the reason kept in the table. With
//! `alerts.digest`, the due alerts of a channel go as one message per interval.

pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::http::Metrics;
use crate::mail::{Mail, MailError, Mailer};
use crate::store::{AlertRecord, AlertScan, NewAlert, Store, StoreError};
use crate::supervise::{Failure, Heartbeat};

/// How far back events are looked for: older ones (a database from before alerts were
/// configured) are not alerted.
pub const HORIZON: Duration = Duration::from_secs(7 * 86_400);
/// The longest time between two looks for stuck loads.
const STUCK_SCAN_CAP: Duration = Duration::from_secs(300);
/// How long a sender holds the alerts it took.
const LEASE: Duration = Duration::from_secs(300);
/// The longest wait before a failed alert is tried again.
const RETRY_CAP: Duration = Duration::from_secs(3600);
/// Alerts sent per channel per round (without a digest), and in one digest.
const PER_ROUND: i64 = 50;
const PER_DIGEST: i64 = 500;

/// One event as the webhook body and the email carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventBody {
    /// When it happened (RFC 3339, UTC).
    pub at: String,
    pub detail: String,
    /// The event's stable key: the same event never comes with two keys.
    pub key: String,
    pub kind: String,
    pub load: Option<String>,
    pub subsidiary: Option<String>,
    /// One line for people.
    pub summary: String,
}

impl EventBody {
    pub fn of(alert: &AlertRecord) -> EventBody {
        EventBody {
            at: alert.event_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            detail: alert.detail.clone(),
            key: alert.event_key.clone(),
            kind: alert.kind.clone(),
            load: alert.load_number.clone(),
            subsidiary: alert.subsidiary.clone(),
            summary: summary(alert),
        }
    }
}

/// The webhook's JSON body: the events of one delivery (one, or a digest's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WebhookBody {
    pub events: Vec<EventBody>,
    /// When this delivery was made (RFC 3339, UTC).
    pub sent_at: String,
    pub summary: String,
}

/// `Exception at acme-east load L100: rejected: missing POD`.
pub fn summary(alert: &AlertRecord) -> String {
    let what = match alert.kind.as_str() {
        "batch_failed" => "Batch failed",
        "batch_rejected" => "Batch partly rejected",
        "report_refused" => "Report file refused",
        "report_rows_rejected" => "Report rows rejected",
        "load_file_refused" => "Load file refused",
        "exception" => "Exception",
        "load_stuck" => "Load waiting too long",
        "component_stopped" => "Daemon component stopped",
        other => other,
    };
    let place = match (&alert.subsidiary, &alert.load_number) {
        (Some(s), Some(l)) => format!(" at {s} load {l}"),
        (Some(s), None) => format!(" at {s}"),
        (None, Some(l)) => format!(" load {l}"),
        (None, None) => String::new(),
    };
    format!("{what}{place}: {}", alert.detail)
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Events newly recorded (per channel).
    pub recorded: u64,
    /// Alerts delivered.
    pub sent: u64,
    /// Alerts whose delivery failed this round.
    pub failed: u64,
}

/// The sender of one daemon: what it needs to record and deliver alerts.
pub struct Alerter {
    /// When stuck loads were last looked for.
    stuck_scanned: std::sync::Mutex<Option<tokio::time::Instant>>,
    store: Store,
    settings: Arc<Settings>,
    holder: String,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
    mailer: Option<Mailer>,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("alerts: {0}")]
    Setup(String),
}

impl Alerter {
    pub fn new(
        store: Store,
        settings: Arc<Settings>,
        holder: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Alerter, AlertError> {
        let timeout = settings.alerts.webhook.as_ref().map_or(Duration::from_secs(10), |w| w.timeout);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AlertError::Setup(format!("cannot build the HTTP client: {e}")))?;
        let mailer = match (&settings.alerts.email, &settings.smtp) {
            (Some(_), Some(smtp)) => Some(Mailer::new(smtp).map_err(|e| AlertError::Setup(e.to_string()))?),
            _ => None,
        };
        Ok(Alerter {
            stuck_scanned: std::sync::Mutex::new(None),
            store,
            settings,
            holder: holder.to_string(),
            metrics,
            http,
            mailer,
        })
    }

    /// One round: records the events not yet recorded, then delivers the alerts due on each
    /// channel. Errors of the database end the round (the next one tries again); delivery
    /// failures are recorded on the alerts.
    pub async fn round(&self) -> Result<Round, AlertError> {
        let mut round = Round::default();
        let now = chrono::Utc::now();
        let since = now - chrono::Duration::from_std(HORIZON).unwrap_or_default();
        let stuck_before = now - chrono::Duration::from_std(self.settings.alerts.stuck_after).unwrap_or_default();
        let stuck = self.stuck_due();
        for channel in self.settings.alerts.channels() {
            let scan = AlertScan { channel, holder: &self.holder, since, stuck_before, stuck };
            round.recorded += self.store.record_alert_events(&scan).await?;
        }
        for channel in self.settings.alerts.channels() {
            let (sent, failed) = self.deliver(channel).await?;
            round.sent += sent;
            round.failed += failed;
        }
        Ok(round)
    }

    /// Whether stuck loads are looked for this round: every tenth of `alerts.stuck_after`, at
    /// least every `alerts.interval` and at most every [`STUCK_SCAN_CAP`] (a load alerts at
    /// most that late; the scan reads every open load).
    fn stuck_due(&self) -> bool {
        let every = (self.settings.alerts.stuck_after / 10).max(self.settings.alerts.interval).min(STUCK_SCAN_CAP);
        let now = tokio::time::Instant::now();
        let mut last = self.stuck_scanned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = last.is_none_or(|at| now.duration_since(at) >= every);
        if due {
            *last = Some(now);
        }
        due
    }

    /// Delivers the alerts due on `channel`: one by one, or as one digest.
    async fn deliver(&self, channel: &str) -> Result<(u64, u64), AlertError> {
        let token = format!("{}:{}", self.holder, crate::backoff::random());
        let digest = self.settings.alerts.digest.is_some();
        let limit = if digest { PER_DIGEST } else { PER_ROUND };
        let due = self.store.claim_alerts(channel, &token, LEASE, limit).await?;
        if due.is_empty() {
            return Ok((0, 0));
        }
        let groups: Vec<Vec<AlertRecord>> = if digest { vec![due] } else { due.into_iter().map(|a| vec![a]).collect() };
        let (mut sent, mut failed) = (0, 0);
        for group in groups {
            let ids: Vec<i64> = group.iter().map(|a| a.id).collect();
            let count = u64::try_from(ids.len()).unwrap_or(u64::MAX);
            match self.send(channel, &group).await {
                Ok(()) => {
                    self.store.alerts_sent(&ids, &token).await?;
                    self.metrics.record_alerts(channel, true, count);
                    sent += count;
                }
                Err(failure) => {
                    let attempts = group.iter().map(|a| a.attempts).max().unwrap_or(0);
                    let attempt = u32::try_from(attempts).unwrap_or(u32::MAX);
                    let retry_in = crate::backoff::full_jitter(self.settings.alerts.interval, RETRY_CAP, attempt);
                    tracing::warn!(
                        channel, alerts = count, error = %failure.message, give_up = failure.give_up, retry_in = ?retry_in,
                        "alert not delivered"
                    );
                    self.store.alerts_failed(&ids, &token, &failure.message, retry_in, failure.give_up).await?;
                    self.metrics.record_alerts(channel, false, count);
                    failed += count;
                }
            }
        }
        Ok((sent, failed))
    }

    async fn send(&self, channel: &str, alerts: &[AlertRecord]) -> Result<(), Failed> {
        let events: Vec<EventBody> = alerts.iter().map(EventBody::of).collect();
        let summary = match events.as_slice() {
            [one] => one.summary.clone(),
            many => format!("{} factord alerts", many.len()),
        };
        match channel {
            "webhook" => {
                let Some(webhook) = &self.settings.alerts.webhook else {
                    return Err(Failed::retry("alerts.webhook is no longer configured"));
                };
                let body = WebhookBody {
                    events,
                    sent_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    summary,
                };
                webhook::post(&self.http, webhook, &body).await
            }
            "email" => {
                let (Some(mailer), Some(to)) = (&self.mailer, &self.settings.alerts.email) else {
                    return Err(Failed::retry("alerts.email is no longer configured"));
                };
                let mut text = String::new();
                for event in &events {
                    text.push_str(&format!(
                        "{}\n  kind: {}\n  key: {}\n  at: {}\n\n",
                        event.summary, event.kind, event.key, event.at
                    ));
                }
                let mail = Mail {
                    to: to.clone(),
                    subject: format!("[factord] {summary}"),
                    text,
                    message_id: None,
                    attachments: Vec::new(),
                };
                mailer.send(&mail).await.map_err(|error| Failed {
                    give_up: matches!(error, MailError::Refused(_) | MailError::Setup(_)),
                    message: error.to_string(),
                })
            }
            other => Err(Failed { message: format!("unknown channel {other}"), give_up: true }),
        }
    }
}

/// A delivery that failed, and whether trying again can help.
#[derive(Debug)]
pub struct Failed {
    pub message: String,
    pub give_up: bool,
}

impl Failed {
    pub fn retry(message: impl Into<String>) -> Failed {
        Failed { message: message.into(), give_up: false }
    }
}

/// The alert sender component: a round every `alerts.interval` (or every `alerts.digest`),
/// beating its heartbeat each time round. Idle when no channel is configured.
pub async fn run(alerter: Arc<Alerter>, heartbeat: Heartbeat, shutdown: CancellationToken) {
    let every = alerter.settings.alerts.digest.unwrap_or(alerter.settings.alerts.interval);
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        heartbeat.beat();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        if alerter.settings.alerts.channels().is_empty() {
            continue;
        }
        match alerter.round().await {
            Ok(round) if round.recorded + round.sent + round.failed > 0 => {
                tracing::info!(recorded = round.recorded, sent = round.sent, failed = round.failed, "alerts round")
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "alerts round failed; tried again at the next round"),
        }
    }
}

/// Records a component's stop (reported by the supervisor) as an alert on every configured
/// channel, keyed by this daemon, the component and the moment: once, however many times it
/// is recorded.
pub async fn record_component_stopped(
    store: &Store,
    settings: &Settings,
    holder: &str,
    failure: &Failure,
) -> Result<u64, StoreError> {
    let channels = settings.alerts.channels();
    if channels.is_empty() {
        return Ok(0);
    }
    let now = chrono::Utc::now();
    let key = format!("component:{holder}:{}:{}", failure.component, now.timestamp_millis());
    let detail = format!("{} {}; restarted in {:?}", failure.component, failure.cause, failure.restart_in);
    let alert = NewAlert {
        event_key: &key,
        kind: "component_stopped",
        subsidiary: None,
        load_number: None,
        detail: &detail,
        event_at: now,
    };
    store.record_alert(&alert, &channels, holder).await
}

/// Records each component stop the supervisor reports as an alert, on the channels of the
/// configuration in force, until shutdown.
pub async fn record_stops(
    store: Store,
    settings: tokio::sync::watch::Receiver<Arc<Settings>>,
    holder: String,
    mut stops: tokio::sync::mpsc::UnboundedReceiver<Failure>,
    shutdown: CancellationToken,
) {
    loop {
        let failure = tokio::select! {
            _ = shutdown.cancelled() => return,
            failure = stops.recv() => match failure {
                Some(failure) => failure,
                None => return,
            },
        };
        let current = settings.borrow().clone();
        let recorded = tokio::time::timeout(
            Duration::from_secs(30),
            record_component_stopped(&store, &current, &holder, &failure),
        )
        .await;
        match recorded {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::error!(component = %failure.component, %error, "cannot record the stop as an alert")
            }
            Err(_) => tracing::error!(component = %failure.component, "recording the stop as an alert timed out"),
        }
    }
}
