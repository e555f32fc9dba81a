//! `factord run`: the long-running daemon. Components start in order and stop in reverse when
//! the shutdown token is cancelled (SIGTERM or SIGINT in `main`, a token in tests), within a
//! grace period below systemd's `TimeoutStopSec`; a file in hand is finished first.
//!
//! Components: the `inbox/loads/` watcher, the report inboxes watcher (`inbox/<provider>/`),
//! the invoice job, and one submission schedule per subsidiary with an active provider;
//! batches left `sending` are reconciled before they start. On SQLite, only one daemon may use a
//! database: [`DaemonLock`] holds an exclusive lock on `<database>.lock` while it runs.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::Settings;
use crate::http::{Health, Job, Metrics};
use crate::intake::{InboxOutcome, LoadsInbox};
use crate::reports::{ReportOutcome, ReportsInbox};
use crate::store::Store;

/// How long components get to finish after shutdown is asked (systemd's TimeoutStopSec is 30 s).
pub const GRACE_PERIOD: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another factord daemon is using this SQLite database: {lock} is held by {holder}. \
         SQLite allows one daemon at a time; stop the other one, or use PostgreSQL to run several"
    )]
    Held { lock: String, holder: String },
    #[error("cannot open the lock file {lock}: {source}")]
    Io { lock: String, source: std::io::Error },
}

/// An exclusive lock on `<sqlite file>.lock`, held for the life of the daemon. The file holds
/// the holder's pid and start time so that a second daemon can name it.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
    pub path: PathBuf,
}

impl DaemonLock {
    /// Takes the lock for the SQLite file `database`, or says who holds it.
    pub fn acquire(database: &Path) -> Result<DaemonLock, LockError> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let lock = path.display().to_string();
        let io = |source| LockError::Io { lock: lock.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { "another process".to_string() } else { holder.to_string() };
                return Err(LockError::Held { lock, holder });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        let holder = format!(
            "factord pid {} started {}",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
        );
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(holder.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(DaemonLock { _file: file, path })
    }
}

/// A timer that skips the ticks it missed rather than firing them in a burst.
fn skipping_interval(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    interval
}

/// Runs the daemon's components until `shutdown` is cancelled, then stops them within the
/// grace period.
pub async fn run_until_stopped(
    settings: Arc<Settings>,
    store: Store,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // HTTP is bound first, so that a taken port fails the start with a message naming the key.
    let http = match &settings.http {
        Some(http) => Some(crate::http::bind(http.listen).await?),
        None => None,
    };
    let (health, metrics) = (Arc::new(Health::new()), Arc::new(Metrics::new()));
    // Batches a crash left `sending` are settled before anything else runs (RELIABILITY rule 5).
    match crate::submit::reconcile_in_flight(&store, &settings).await {
        Ok(reports) if !reports.is_empty() => {
            tracing::info!(batches = reports.len(), "reconciled batches left sending")
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "reconciliation failed; it is tried again at the next fire"),
    }
    let mut tasks = tokio::task::JoinSet::new();
    // Rung by the loads inbox after an import, so new loads are invoiced without waiting.
    let loads_arrived = Arc::new(Notify::new());
    tasks.spawn(watch_loads_inbox(
        settings.clone(),
        store.clone(),
        loads_arrived.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(invoice_periodically(
        settings.clone(),
        store.clone(),
        loads_arrived,
        metrics.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(watch_report_inboxes(settings.clone(), store.clone(), metrics.clone(), shutdown.clone()));
    for subsidiary in &settings.subsidiaries {
        let scheduled = subsidiary.factoring.as_ref().is_some_and(|f| f.active && f.schedule.is_some());
        if scheduled {
            let id = subsidiary.id.clone();
            tasks.spawn(fire_schedule(settings.clone(), store.clone(), id, metrics.clone(), shutdown.clone()));
        }
    }
    health.set_components_running(true);
    if let Some(listener) = http {
        let settings = tokio::sync::watch::channel(settings.clone()).1;
        let state = crate::http::HttpState::new(store.clone(), settings, health.clone(), metrics.clone());
        tracing::info!(listen = %listener.local_addr()?, "HTTP: dashboard at /, /healthz, /readyz, /metrics");
        tasks.spawn(crate::http::serve(listener, state, shutdown.clone()));
    }

    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    if let Some(interval) = sd_notify::watchdog_enabled() {
        tasks.spawn(ping_watchdog(interval / 2, shutdown.clone()));
    }
    tracing::info!(
        database = store.backend(),
        subsidiaries = settings.subsidiaries.len(),
        inbox = %settings.paths.loads_inbox().display(),
        "factord running"
    );

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    health.set_components_running(false);
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let drained = tokio::time::timeout(GRACE_PERIOD, async {
        while let Some(result) = tasks.join_next().await {
            if let Err(error) = result {
                tracing::error!(%error, "a component ended abnormally");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(grace = ?GRACE_PERIOD, "components did not stop within the grace period; aborting them");
        tasks.abort_all();
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn ping_watchdog(every: Duration, shutdown: CancellationToken) {
    let mut interval = skipping_interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => { let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]); }
        }
    }
}

/// One subsidiary's submission schedule: sleeps until the next fire in the subsidiary's time
/// zone, records the fire (once per subsidiary and fire time, whichever daemon gets there
/// first), and submits. A fire already recorded — by another daemon, or before a restart or a
/// clock step back — is not submitted again.
async fn fire_schedule(
    settings: Arc<Settings>,
    store: Store,
    subsidiary_id: String,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let Some(subsidiary) = settings.subsidiary(&subsidiary_id) else { return };
    let Some(schedule) = subsidiary.factoring.as_ref().and_then(|f| f.schedule.as_ref()) else { return };
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let last = loop {
        match store.last_fire(&subsidiary.id).await {
            Ok(last) => break last,
            Err(error) => {
                tracing::error!(subsidiary = %subsidiary.id, %error, "cannot read the last fire");
                if !backoff.sleep(&shutdown).await {
                    return;
                }
            }
        }
    };
    let clock = crate::schedule::SystemClock;
    let after = last.map_or_else(chrono::Utc::now, |last| last.max(chrono::Utc::now()));
    let fire = |next: chrono::DateTime<chrono::Utc>| {
        let (store, settings, metrics) = (&store, &settings, &metrics);
        async move {
            match store.record_fire(&subsidiary.id, next).await {
                Ok(true) => {
                    // Batches whose outcome is still unknown are settled before new ones go.
                    if let Err(error) = crate::submit::reconcile_in_flight(store, settings).await {
                        tracing::error!(%error, "reconciliation failed; it is tried again at the next fire");
                    }
                    let cause = format!("schedule {}", next.to_rfc3339());
                    let mut report = crate::submit::SubmitReport::default();
                    let submission =
                        crate::submit::submit_subsidiary(store, settings, subsidiary, false, &cause, &mut report);
                    let submitted = metrics.timed(Job::Submission, submission).await;
                    match submitted {
                        Ok(()) => tracing::info!(
                            subsidiary = %subsidiary.id, fire = %next, batches = report.batches.len(),
                            waiting = report.waiting.len(), "scheduled submission"
                        ),
                        Err(error) => {
                            tracing::error!(subsidiary = %subsidiary.id, %error, "scheduled submission failed")
                        }
                    }
                }
                Ok(false) => tracing::info!(
                    subsidiary = %subsidiary.id, fire = %next, "fire already taken (another daemon, or before a restart)"
                ),
                Err(error) => {
                    tracing::error!(subsidiary = %subsidiary.id, %error, "cannot record the fire; it is skipped")
                }
            }
        }
    };
    crate::schedule::run_fires(schedule, subsidiary.timezone, after, &clock, &shutdown, fire).await;
    tracing::warn!(subsidiary = %subsidiary.id, "the schedule never fires again");
}

/// The invoice component: a pass every `invoicing.interval`, and one after each load import.
async fn invoice_periodically(
    settings: Arc<Settings>,
    store: Store,
    loads_arrived: Arc<Notify>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut interval = skipping_interval(settings.invoicing.interval);
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
            _ = loads_arrived.notified() => {}
        }
        match metrics.timed(Job::Invoice, crate::invoicing::run_once(&store, &settings, None, &shutdown)).await {
            Ok(report) => {
                backoff.reset();
                if !report.invoiced.is_empty() || !report.failed.is_empty() {
                    tracing::info!(
                        invoiced = report.invoiced.len(),
                        waiting = report.waiting.len(),
                        failed = report.failed.len(),
                        "invoice pass"
                    );
                }
            }
            Err(error) => {
                tracing::error!(%error, "invoice pass failed; retrying with backoff");
                if !backoff.sleep(&shutdown).await {
                    return;
                }
            }
        }
    }
}

/// The `inbox/loads/` component: a timer scan, woken early by inotify.
async fn watch_loads_inbox(
    settings: Arc<Settings>,
    store: Store,
    loads_arrived: Arc<Notify>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut inbox = LoadsInbox::new(&settings);
    if let Err(error) = inbox.folder().create() {
        tracing::error!(folder = %inbox.folder().dir.display(), %error, "cannot create the loads inbox");
    }
    let (wake_tx, mut wake_rx) = mpsc::channel::<()>(1);
    let _watcher = start_watcher(std::slice::from_ref(&inbox.folder().dir), wake_tx);
    let mut interval = skipping_interval(settings.intake.scan_interval);
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
            Some(()) = wake_rx.recv() => {}
        }
        match metrics.timed(Job::LoadsInbox, inbox.run_once(&store, &settings, Instant::now(), &shutdown)).await {
            Ok(outcomes) => {
                backoff.reset();
                for outcome in outcomes {
                    match outcome {
                        InboxOutcome::Failed { moved_to, .. } => {
                            tracing::warn!(file = %moved_to.display(), "load file moved to failed; see its .error.txt");
                        }
                        InboxOutcome::Imported { counts, .. } if counts.imported + counts.updated > 0 => {
                            loads_arrived.notify_one();
                        }
                        _ => {}
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "loads inbox pass failed; the file stays in processing and is retried");
                if !backoff.sleep(&shutdown).await {
                    return;
                }
            }
        }
    }
}

/// The report inboxes of every provider: a timer scan, woken early by inotify.
async fn watch_report_inboxes(
    settings: Arc<Settings>,
    store: Store,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut inbox = ReportsInbox::new(&settings);
    if let Err(error) = inbox.create() {
        tracing::error!(folder = %settings.paths.inbox.display(), %error, "cannot create the report inboxes");
    }
    let (wake_tx, mut wake_rx) = mpsc::channel::<()>(1);
    let _watcher = start_watcher(&inbox.dirs(), wake_tx);
    let mut interval = skipping_interval(settings.intake.scan_interval);
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
            Some(()) = wake_rx.recv() => {}
        }
        match metrics.timed(Job::ReportsInbox, inbox.run_once(&store, &settings, Instant::now(), &shutdown)).await {
            Ok(outcomes) => {
                backoff.reset();
                for outcome in outcomes {
                    if let ReportOutcome::Refused { moved_to, .. } = outcome {
                        tracing::warn!(file = %moved_to.display(), "report moved to failed; see its .error.txt");
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "report inbox pass failed; the file stays in processing and is retried");
                if !backoff.sleep(&shutdown).await {
                    return;
                }
            }
        }
    }
}

/// inotify on the folders, used only to wake the scanner. Failure (e.g. no inotify watches
/// left) is logged; the timer scan carries on without it.
fn start_watcher(dirs: &[PathBuf], wake: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    // Access events are left out: the scan itself opens and reads the folder, and each such
    // event would wake the next scan at once, round and round.
    let handler = move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|event| !event.kind.is_access()) {
            let _ = wake.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "no file notifications; scanning on the timer only");
            return None;
        }
    };
    for dir in dirs {
        if let Err(error) = watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(folder = %dir.display(), %error, "cannot watch the folder; scanning on the timer only");
            return None;
        }
    }
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("factord.db");
        let _first = DaemonLock::acquire(&db).expect("first lock");
        let error = DaemonLock::acquire(&db).expect_err("second lock must fail");
        let message = error.to_string();
        assert!(message.contains("factord.db.lock"), "{message}");
        assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
    }
}
