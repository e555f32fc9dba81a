//! `factord run`: the long-running daemon. Components start in order and stop in reverse when
//! the shutdown token is cancelled (SIGTERM or SIGINT in `main`, a token in tests), within a
//! grace period below systemd's `TimeoutStopSec`; a file in hand is finished first.
//!
//! Components: the `inbox/loads/` watcher, the report inboxes watcher (`inbox/<provider>/`),
//! the invoice job, one submission schedule per subsidiary with an active provider, and the
//! credit refresh on `credit.refresh_schedule` (when an active provider offers credit checks);
//! batches left `sending` are reconciled before they start. Each component, and the HTTP server
//! and the systemd reporting beside them, runs under a [`Supervisor`]: it beats a heartbeat each
//! time round its loop, and is restarted with backoff if it panics or stops (see
//! [`crate::supervise`]). On SQLite, only one daemon may use a database: [`DaemonLock`] holds an
//! exclusive lock on `<database>.lock` while it runs.

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
use crate::reload::ReloadState;
use crate::reports::{ReportOutcome, ReportsInbox};
use crate::store::Store;
use crate::supervise::{FaultPlan, Heartbeat, RestartPolicy, Supervisor};

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
            crate::domain::time_for_people(chrono::Utc::now())
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

/// How reloads reach the daemon: `signal` is rung on SIGHUP; the config files are watched too.
/// The outcome of each reload is kept in `state`.
#[derive(Clone, Debug, Default)]
pub struct Reloads {
    pub signal: Arc<Notify>,
    pub state: ReloadState,
}

/// How the daemon is started, beside its configuration: the reload channel, and for tests the
/// restart policy and faults to inject.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub reloads: Reloads,
    /// When a failed component is started again.
    pub restarts: RestartPolicy,
    /// Inert unless a test arms it.
    pub faults: FaultPlan,
}

/// Runs the daemon's components until `shutdown` is cancelled, then stops them within the
/// grace period. Reloads only from the config files (no signal).
pub async fn run_until_stopped(
    settings: Arc<Settings>,
    store: Store,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with_reloads(settings, store, shutdown, Reloads::default()).await
}

/// As [`run_with_options`] with the default restart policy and no faults.
pub async fn run_with_reloads(
    settings: Arc<Settings>,
    store: Store,
    shutdown: CancellationToken,
    reloads: Reloads,
) -> anyhow::Result<()> {
    run_with_options(settings, store, shutdown, RunOptions { reloads, ..RunOptions::default() }).await
}

/// Runs the daemon: reconciles batches left `sending`, starts the components on `settings`,
/// and on each reload (SIGHUP via `options.reloads.signal`, or a change under the config
/// folder) validates the new configuration and, if valid, starts a new generation of
/// components on it while the old one finishes the work in hand under the configuration it
/// started with.
#[expect(
    clippy::too_many_lines,
    reason = "the daemon's life in order: reconcile, start, then the reload loop and the shutdown in reverse"
)]
pub async fn run_with_options(
    settings: Arc<Settings>,
    store: Store,
    shutdown: CancellationToken,
    options: RunOptions,
) -> anyhow::Result<()> {
    let RunOptions { reloads, restarts, faults } = options;
    // HTTP is bound first, so that a taken port fails the start with a message naming the key.
    let http = match &settings.http {
        Some(http) => {
            if !http.listen.ip().is_loopback() {
                // The dashboard and /metrics have no login: on another address anyone who can
                // reach it reads the pipeline.
                tracing::warn!(
                    listen = %http.listen,
                    "http.listen is not a loopback address and the dashboard has no login: \
                     put it behind a reverse proxy with authentication (see docs/operations.md, HTTP)"
                );
            }
            Some(crate::http::bind(http.listen).await?)
        }
        None => None,
    };
    let (health, metrics) = (Arc::new(Health::new()), Arc::new(Metrics::new()));
    // Batches a crash left `sending` are settled before anything else runs (docs/reliability.md rule 5).
    match crate::submit::reconcile_in_flight(&store, &settings).await {
        Ok(reports) if !reports.is_empty() => {
            tracing::info!(batches = reports.len(), "reconciled batches left sending")
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "reconciliation failed; it is tried again at the next fire"),
    }
    let holder = holder_id();
    let (stopped_tx, stopped_rx) = mpsc::unbounded_channel();
    let supervisor = Supervisor::new(health.clone(), restarts, faults).with_listener(stopped_tx);
    let mut current = settings;
    let components = Components {
        store: store.clone(),
        supervisor: supervisor.clone(),
        metrics: metrics.clone(),
        holder: holder.clone(),
    };
    let mut generation = Generation::start(current.clone(), &components, &shutdown);
    health.set_components_running(true);
    let mut retired: Vec<Generation> = Vec::new();
    let mut background = tokio::task::JoinSet::new();
    // The dashboard shows the configuration in force: it follows each applied reload.
    let (settings_tx, settings_rx) = tokio::sync::watch::channel(current.clone());
    if let Some(listener) = http {
        let state = crate::http::HttpState::new(store.clone(), settings_rx, health.clone(), metrics.clone());
        tracing::info!(listen = %listener.local_addr()?, "HTTP: dashboard at /, /healthz, /readyz, /metrics");
        // Kept as a std socket so that each (re)start of the server serves a copy of it.
        let listener = listener.into_std()?;
        supervisor.spawn(&mut background, "http", None, shutdown.clone(), move |_, token| {
            let (copy, state) = (listener.try_clone(), state.clone());
            async move {
                match copy.and_then(tokio::net::TcpListener::from_std) {
                    Ok(listener) => crate::http::serve(listener, state, token).await,
                    Err(error) => tracing::error!(%error, "cannot serve HTTP on the listening socket"),
                }
            }
        });
    }
    if let Some(interval) = sd_notify::watchdog_enabled() {
        let every = interval / 2;
        let health = health.clone();
        let silence = allowed_silence(every, QUICK_FLOOR);
        supervisor.spawn(&mut background, "systemd watchdog", silence, shutdown.clone(), move |beat, token| {
            ping_watchdog(every, health.clone(), beat, token)
        });
    }
    let status_now = Arc::new(Notify::new());
    {
        let (store, now) = (store.clone(), status_now.clone());
        let silence = allowed_silence(STATUS_EVERY, QUICK_FLOOR);
        supervisor.spawn(&mut background, "systemd status", silence, shutdown.clone(), move |beat, token| {
            report_status(store.clone(), now.clone(), beat, token)
        });
    }
    background.spawn(crate::alerts::record_stops(
        store.clone(),
        settings_tx.subscribe(),
        holder.clone(),
        stopped_rx,
        shutdown.clone(),
    ));
    let (config_tx, mut config_rx) = mpsc::channel::<()>(1);
    let _config_watcher = start_config_watcher(&current.config_path, config_tx);

    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!(
        database = store.backend(),
        subsidiaries = current.subsidiaries.len(),
        inbox = %current.paths.loads_inbox().display(),
        daemon = %holder,
        "factord running"
    );

    loop {
        let why = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = reloads.signal.notified() => "SIGHUP",
            Some(()) = config_rx.recv() => {
                // Editors write a file in several steps: let them finish, then read once.
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(CONFIG_SETTLE) => {}
                }
                while config_rx.try_recv().is_ok() {}
                "a change under the config folder"
            }
        };
        let now = sd_notify::NotifyState::monotonic_usec_now().ok();
        let mut reloading = vec![sd_notify::NotifyState::Reloading];
        reloading.extend(now);
        let _ = sd_notify::notify(&reloading);
        match crate::reload::load(&current.config_path) {
            Ok(new) => {
                let new = Arc::new(new);
                let changes = crate::reload::changes(&current, &new);
                for kept in crate::reload::needs_restart(&current, &new) {
                    tracing::warn!(section = %kept, "changed in the configuration, but applies only at the next restart");
                }
                if changes.is_empty() {
                    tracing::info!(trigger = why, "configuration reloaded: no changes");
                } else {
                    tracing::info!(trigger = why, changes = %changes.join("; "), "configuration reloaded");
                }
                // The old generation finishes what it has in hand on the old configuration.
                generation.retire();
                retired.push(generation);
                generation = Generation::start(new.clone(), &components, &shutdown);
                settings_tx.send_replace(new.clone());
                current = new;
                reloads.state.succeeded();
                health.set_reload_result(true, Vec::new());
            }
            Err(error) => {
                for issue in &error.issues {
                    tracing::error!(source = %issue.source, key = %issue.key, problem = %issue.message, "configuration error");
                }
                tracing::error!(
                    trigger = why,
                    errors = error.issues.len(),
                    "configuration refused; still running on the previous configuration"
                );
                let errors: Vec<String> = error.issues.iter().map(ToString::to_string).collect();
                reloads.state.refused(errors.clone());
                health.set_reload_result(false, errors);
            }
        }
        retired.retain_mut(|g| !g.finished());
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        status_now.notify_one();
    }

    tracing::info!("shutting down");
    health.set_components_running(false);
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let drained = tokio::time::timeout(GRACE_PERIOD, async {
        for generation in retired.iter_mut().chain(std::iter::once(&mut generation)) {
            generation.join().await;
        }
        while background.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(grace = ?GRACE_PERIOD, "components did not stop within the grace period; aborting them");
        for generation in retired.iter_mut().chain(std::iter::once(&mut generation)) {
            generation.tasks.abort_all();
        }
        background.abort_all();
    }
    if let Err(error) = store.release_lease(crate::store::SCHEDULER_ROLE, &holder).await {
        tracing::warn!(%error, "cannot release the scheduler lease; another daemon takes it when it runs out");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// How long a change under the config folder is left to settle before it is read.
const CONFIG_SETTLE: Duration = Duration::from_millis(500);

/// This daemon's name in leases and logs: host, pid and start time.
fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    format!(
        "{}:{}:{}",
        if host.is_empty() { "localhost" } else { host },
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    )
}

/// The components running on one configuration. A reload retires a generation (its token is
/// cancelled: each component stops after the work in hand) and starts the next.
struct Generation {
    token: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
}

/// What every generation of components shares: the store, the supervisor they run under, the
/// job metrics and this daemon's name in leases.
#[derive(Clone)]
struct Components {
    store: Store,
    supervisor: Supervisor,
    metrics: Arc<Metrics>,
    holder: String,
}

/// The least silence allowed to a component whose rounds are a short database call or a sleep
/// (a database that does not answer holds a call for the pool's acquire timeout).
const QUICK_FLOOR: Duration = Duration::from_secs(120);
/// The least silence allowed to a component whose rounds do file, PDF or transport work: a
/// pass over a very large file or a large batch takes minutes; a deadlock takes forever.
const PASS_FLOOR: Duration = Duration::from_secs(600);
/// The least silence allowed to a schedule: a fire's work (a submission of hundreds of packets
/// over FTP, a status sync of every open invoice, a credit refresh waiting out a factor's
/// backoff) beats only when it is done.
const FIRE_FLOOR: Duration = Duration::from_secs(3600);
/// How often a schedule waiting for its next fire beats its heartbeat.
const SCHEDULE_BEAT: Duration = Duration::from_secs(30);

/// How long a component coming round every `tick` may go without a heartbeat before it is
/// reported stale: three ticks, and at least `floor`.
fn allowed_silence(tick: Duration, floor: Duration) -> Option<Duration> {
    Some(tick.saturating_mul(3).max(floor))
}

impl Generation {
    fn start(settings: Arc<Settings>, c: &Components, shutdown: &CancellationToken) -> Generation {
        let token = shutdown.child_token();
        let mut tasks = tokio::task::JoinSet::new();
        let supervisor = &c.supervisor;
        // Rung by the loads inbox after an import, so new loads are invoiced without waiting.
        let loads_arrived = Arc::new(Notify::new());
        let scan = allowed_silence(settings.intake.scan_interval, PASS_FLOOR);
        let (s, cc, arrived) = (settings.clone(), c.clone(), loads_arrived.clone());
        supervisor.spawn(&mut tasks, "loads inbox", scan, token.clone(), move |beat, token| {
            watch_loads_inbox(s.clone(), cc.clone(), arrived.clone(), beat, token)
        });
        let (s, cc) = (settings.clone(), c.clone());
        let silence = allowed_silence(settings.invoicing.interval, PASS_FLOOR);
        supervisor.spawn(&mut tasks, "invoice job", silence, token.clone(), move |beat, token| {
            invoice_periodically(s.clone(), cc.clone(), loads_arrived.clone(), beat, token)
        });
        let (s, cc) = (settings.clone(), c.clone());
        supervisor.spawn(&mut tasks, "report inboxes", scan, token.clone(), move |beat, token| {
            watch_report_inboxes(s.clone(), cc.clone(), beat, token)
        });
        let silence = allowed_silence(settings.submission.scheduler_lease / 3, QUICK_FLOOR);
        let cc = c.clone();
        if !settings.alerts.channels().is_empty() {
            match crate::alerts::Alerter::new(c.store.clone(), settings.clone(), &c.holder, c.metrics.clone()) {
                Ok(alerter) => {
                    let alerter = Arc::new(alerter);
                    let every = settings.alerts.digest.unwrap_or(settings.alerts.interval);
                    let silence = allowed_silence(every, QUICK_FLOOR);
                    supervisor.spawn(&mut tasks, "alerts", silence, token.clone(), move |beat, token| {
                        crate::alerts::run(alerter.clone(), beat, token)
                    });
                }
                Err(error) => tracing::error!(%error, "alerts are not sent"),
            }
        }
        supervisor.spawn(&mut tasks, "scheduler", silence, token.clone(), move |beat, token| {
            lead_scheduler(settings.clone(), cc.clone(), beat, token)
        });
        Generation { token, tasks }
    }

    fn retire(&self) {
        self.token.cancel();
    }

    /// Whether every component of a retired generation has stopped (reaps them).
    fn finished(&mut self) -> bool {
        while let Some(result) = self.tasks.try_join_next() {
            if let Err(error) = result {
                tracing::error!(%error, "a component ended abnormally");
            }
        }
        self.tasks.is_empty()
    }

    async fn join(&mut self) {
        while let Some(result) = self.tasks.join_next().await {
            if let Err(error) = result {
                tracing::error!(%error, "a component ended abnormally");
            }
        }
    }
}

/// The scheduler: with several daemons on one PostgreSQL, only the holder of the scheduler
/// lease runs the submission schedules and the credit refresh. The lease is renewed every
/// third of `submission.scheduler_lease`; when its holder dies, another daemon takes it once
/// it has run out. Losing the lease stops the schedules at once. (Fires stay single through
/// `schedule_fires` even if two daemons both believe they lead for a moment.)
async fn lead_scheduler(settings: Arc<Settings>, c: Components, heartbeat: Heartbeat, token: CancellationToken) {
    let (store, holder) = (&c.store, &c.holder);
    let ttl = settings.submission.scheduler_lease;
    let mut leading: Option<Generation> = None;
    let mut warned = false;
    loop {
        heartbeat.beat();
        match store.take_lease(crate::store::SCHEDULER_ROLE, holder, ttl).await {
            Ok(true) => {
                warned = false;
                if leading.is_none() {
                    tracing::info!(daemon = %holder, "this daemon runs the schedules");
                    leading = Some(start_schedules(&settings, &c, &token));
                }
            }
            Ok(false) => {
                if let Some(schedules) = leading.take() {
                    tracing::warn!("another daemon holds the scheduler lease now; schedules stopped here");
                    schedules.retire();
                    tokio::spawn(async move {
                        let mut schedules = schedules;
                        schedules.join().await;
                    });
                } else if !warned {
                    tracing::info!("another daemon runs the schedules; this one invoices and ingests");
                }
                warned = true;
            }
            // Without the database the lease cannot be renewed; schedules that run go on (their
            // fires need the database anyway) and the lease is retried.
            Err(error) => tracing::error!(%error, "cannot renew the scheduler lease"),
        }
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(ttl / 3) => {}
        }
    }
    if let Some(mut schedules) = leading {
        schedules.retire();
        schedules.join().await;
    }
}

/// The submission schedule of every subsidiary with an active provider, and the credit refresh
/// when an active provider offers credit checks.
fn start_schedules(settings: &Arc<Settings>, c: &Components, parent: &CancellationToken) -> Generation {
    let token = parent.child_token();
    let mut tasks = tokio::task::JoinSet::new();
    // A fire's work (a submission, a sync, a credit refresh) is transport work, with retries.
    let silence = allowed_silence(SCHEDULE_BEAT, FIRE_FLOOR);
    for subsidiary in &settings.subsidiaries {
        let scheduled = subsidiary.factoring.as_ref().is_some_and(|f| f.active && f.schedule.is_some());
        if scheduled {
            let (s, store, id, metrics) = (settings.clone(), c.store.clone(), subsidiary.id.clone(), c.metrics.clone());
            let name = format!("submission {id}");
            c.supervisor.spawn(&mut tasks, name, silence, token.clone(), move |beat, token| {
                fire_schedule(s.clone(), store.clone(), id.clone(), metrics.clone(), beat, token)
            });
        }
        let syncs = subsidiary.factoring.as_ref().is_some_and(|f| f.active && f.provider.status_api);
        if syncs {
            let (s, store, id) = (settings.clone(), c.store.clone(), subsidiary.id.clone());
            let name = format!("status sync {id}");
            c.supervisor.spawn(&mut tasks, name, silence, token.clone(), move |beat, token| {
                sync_statuses(s.clone(), store.clone(), id.clone(), beat, token)
            });
        }
    }
    if settings.subsidiaries.iter().any(|s| crate::credit::provider_with_checks(s).is_some()) {
        let (s, store) = (settings.clone(), c.store.clone());
        c.supervisor.spawn(&mut tasks, "credit refresh", silence, token.clone(), move |beat, token| {
            refresh_credit(s.clone(), store.clone(), beat, token)
        });
    }
    Generation { token, tasks }
}

/// How long a component may go without a heartbeat before the watchdog stops being fed and
/// systemd restarts the daemon; a component allowed a longer silence (a schedule in a fire,
/// a slow scan interval) is judged by its own. `/readyz` reports a stale component first.
const STUCK_AFTER: Duration = Duration::from_secs(600);

async fn ping_watchdog(every: Duration, health: Arc<Health>, heartbeat: Heartbeat, shutdown: CancellationToken) {
    let mut interval = skipping_interval(every);
    loop {
        heartbeat.beat();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {
                let stuck = health.silent_longer_than(STUCK_AFTER);
                if stuck.is_empty() {
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                } else {
                    tracing::error!(components = ?stuck, "components stuck; the watchdog is not fed, systemd restarts the daemon");
                }
            }
        }
    }
}

/// Keeps systemd's STATUS= line current: queued and waiting loads and the last batch.
async fn report_status(store: Store, now: Arc<Notify>, heartbeat: Heartbeat, shutdown: CancellationToken) {
    let mut interval = skipping_interval(STATUS_EVERY);
    loop {
        heartbeat.beat();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
            _ = now.notified() => {}
        }
        if let Some(line) = status_line(&store).await {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&line)]);
        }
    }
}

const STATUS_EVERY: Duration = Duration::from_secs(15);

/// `queued 5, waiting 1, last batch acme-east-3 sent 2026-11-30 16:00 UTC`.
pub async fn status_line(store: &Store) -> Option<String> {
    let counts = store.status_counts().await.ok()?;
    let queued: i64 =
        counts.iter().map(|c| c.counts.get(&crate::domain::LoadStatus::Queued).copied().unwrap_or(0)).sum();
    let waiting: i64 = counts.iter().map(|c| c.waiting).sum();
    let last = store.recent_batches(1).await.ok()?.into_iter().next();
    let last = last.map_or_else(
        || "no batch yet".to_string(),
        |b| format!("last batch {} {} {}", b.id, b.status, crate::domain::time_for_people(b.created_at)),
    );
    Some(format!("queued {queued}, waiting {waiting}, {last}"))
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
    heartbeat: Heartbeat,
    shutdown: CancellationToken,
) {
    let Some(subsidiary) = settings.subsidiary(&subsidiary_id) else {
        return wait_beating(&heartbeat, &shutdown).await;
    };
    let Some(schedule) = subsidiary.factoring.as_ref().and_then(|f| f.schedule.as_ref()) else {
        return wait_beating(&heartbeat, &shutdown).await;
    };
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let last = loop {
        heartbeat.beat();
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
    let fire = |next: chrono::DateTime<chrono::Utc>| {
        let (store, settings, metrics) = (&store, &settings, &metrics);
        async move {
            let started = Instant::now();
            match fire_once(store, settings, subsidiary, next).await {
                Fired::Submitted => metrics.record_job(Job::Submission, started.elapsed(), true),
                Fired::SubmitFailed => metrics.record_job(Job::Submission, started.elapsed(), false),
                Fired::AlreadyTaken | Fired::Skipped => {}
            }
        }
    };
    let now = chrono::Utc::now();
    let missed = missed_fire(&settings, schedule, subsidiary.timezone, last, now, "submission", &subsidiary.id);
    if let Some(at) = missed {
        fire(at).await;
    }
    let after = last.map_or(now, |last| last.max(now));
    let beat = || heartbeat.beat();
    crate::schedule::run_fires(schedule, subsidiary.timezone, after, &clock, &shutdown, SCHEDULE_BEAT, beat, fire)
        .await;
    if !shutdown.is_cancelled() {
        tracing::warn!(subsidiary = %subsidiary.id, "the schedule never fires again");
        // Done for good, not failed: it waits for shutdown, beating, so it is not restarted.
        wait_beating(&heartbeat, &shutdown).await;
    }
}

/// Beats `heartbeat` every [`SCHEDULE_BEAT`] until shutdown: a component with nothing left to
/// do, which must not look failed (returned) or stale.
async fn wait_beating(heartbeat: &Heartbeat, shutdown: &CancellationToken) {
    loop {
        heartbeat.beat();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SCHEDULE_BEAT) => {}
        }
    }
}

/// The fire to catch up at start, if any: the latest one missed since `last` (the last fire
/// recorded for this schedule) while no daemon ran it, when it is at most `schedule.catch_up`
/// old. Several missed fires make one; an older one is logged as skipped. The caller fires it
/// through the usual path, so the fire's record keeps it to one daemon.
pub fn missed_fire(
    settings: &Settings,
    schedule: &crate::config::Schedule,
    zone: chrono_tz::Tz,
    last: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
    what: &str,
    key: &str,
) -> Option<chrono::DateTime<chrono::Utc>> {
    use crate::schedule::Missed;
    match crate::schedule::missed_fire(schedule, zone, last, now, settings.schedule.catch_up) {
        Missed::Nothing => None,
        Missed::CatchUp(at) => {
            tracing::info!(schedule = what, key, fire = %at, "catching up a fire missed while no daemon ran");
            Some(at)
        }
        Missed::TooOld(at) => {
            tracing::warn!(
                schedule = what, key, fire = %at, catch_up = ?settings.schedule.catch_up,
                "a missed fire older than schedule.catch_up is skipped"
            );
            None
        }
    }
}

/// What one scheduled fire did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fired {
    /// This daemon recorded the fire and submitted (a factor may still have refused a batch).
    Submitted,
    /// This daemon recorded the fire but the submission failed (the database, say); the loads
    /// stay Queued for the next fire.
    SubmitFailed,
    /// The fire was already recorded (another daemon, or before a restart): nothing sent.
    AlreadyTaken,
    /// The fire could not be recorded (database down): skipped.
    Skipped,
}

/// One fire of a subsidiary's schedule at `next`: recorded once per subsidiary and fire time
/// whichever daemon gets there first (the `schedule_fires` primary key), then batches
/// left unknown are reconciled and the Queued invoices submitted.
pub async fn fire_once(
    store: &Store,
    settings: &Settings,
    subsidiary: &crate::config::Subsidiary,
    next: chrono::DateTime<chrono::Utc>,
) -> Fired {
    match store.record_fire(&subsidiary.id, next).await {
        Ok(true) => {
            // Batches whose outcome is still unknown are settled before new ones go.
            if let Err(error) = crate::submit::reconcile_in_flight(store, settings).await {
                tracing::error!(%error, "reconciliation failed; it is tried again at the next fire");
            }
            let cause = format!("schedule {}", next.to_rfc3339());
            let mut report = crate::submit::SubmitReport::default();
            let submitted =
                crate::submit::submit_subsidiary(store, settings, subsidiary, false, &cause, &mut report).await;
            match submitted {
                Ok(()) => {
                    tracing::info!(
                        subsidiary = %subsidiary.id, fire = %next, batches = report.batches.len(),
                        waiting = report.waiting.len(), "scheduled submission"
                    );
                    Fired::Submitted
                }
                Err(error) => {
                    tracing::error!(subsidiary = %subsidiary.id, %error, "scheduled submission failed");
                    Fired::SubmitFailed
                }
            }
        }
        Ok(false) => {
            tracing::info!(
                subsidiary = %subsidiary.id, fire = %next, "fire already taken (another daemon, or before a restart)"
            );
            Fired::AlreadyTaken
        }
        Err(error) => {
            tracing::error!(subsidiary = %subsidiary.id, %error, "cannot record the fire; it is skipped");
            Fired::Skipped
        }
    }
}

/// Status sync on the subsidiary's `factoring.status_sync` schedule (in its time zone), each fire
/// recorded once in the store whichever daemon gets there first.
async fn sync_statuses(
    settings: Arc<Settings>,
    store: Store,
    subsidiary_id: String,
    heartbeat: Heartbeat,
    shutdown: CancellationToken,
) {
    let Some(subsidiary) = settings.subsidiary(&subsidiary_id) else {
        return wait_beating(&heartbeat, &shutdown).await;
    };
    let Some(schedule) = subsidiary.factoring.as_ref().and_then(|f| f.status_sync.as_ref()) else {
        return wait_beating(&heartbeat, &shutdown).await;
    };
    let key = format!("{}{subsidiary_id}", crate::sync::FIRE_KEY_PREFIX);
    let clock = crate::schedule::SystemClock;
    let fire = |next: chrono::DateTime<chrono::Utc>| {
        let (store, settings, key) = (&store, &settings, &key);
        async move {
            match store.record_fire(key, next).await {
                Ok(true) => match crate::sync::sync_subsidiary(store, settings, subsidiary).await {
                    Ok(done) => tracing::info!(
                        subsidiary = %subsidiary.id, asked = done.asked, applied = done.applied,
                        unchanged = done.unchanged, unrecognised = done.unrecognised, failed = done.failed,
                        note = done.note.as_deref().unwrap_or(""), "status sync"
                    ),
                    Err(error) => tracing::error!(subsidiary = %subsidiary.id, %error, "status sync failed"),
                },
                Ok(false) => tracing::info!(fire = %next, "status sync fire already taken (another daemon)"),
                Err(error) => tracing::error!(%error, "cannot record the status sync fire; it is skipped"),
            }
        }
    };
    let now = chrono::Utc::now();
    let last = last_fire_or_none(&store, &key).await;
    if let Some(at) = missed_fire(&settings, schedule, subsidiary.timezone, last, now, "status sync", &key) {
        fire(at).await;
    }
    let beat = || heartbeat.beat();
    crate::schedule::run_fires(schedule, subsidiary.timezone, now, &clock, &shutdown, SCHEDULE_BEAT, beat, fire).await;
    wait_beating(&heartbeat, &shutdown).await;
}

/// The credit refresh: at each fire of `credit.refresh_schedule` (in UTC), recorded once in the
/// store whichever daemon gets there first, re-checks the customers whose check is older than
/// `credit.max_age`; checks that fail are retried with backoff until the next fire.
async fn refresh_credit(settings: Arc<Settings>, store: Store, heartbeat: Heartbeat, shutdown: CancellationToken) {
    let schedule = &settings.credit.refresh_schedule;
    let clock = crate::schedule::SystemClock;
    let beat = || heartbeat.beat();
    let fire = |next: chrono::DateTime<chrono::Utc>| {
        let (store, settings, shutdown, beat) = (&store, &settings, &shutdown, &beat);
        async move {
            match store.record_fire(crate::credit::REFRESH_FIRE_KEY, next).await {
                Ok(true) => {
                    let until = crate::schedule::next_fire(schedule, chrono_tz::UTC, next);
                    crate::credit::refresh_with_retries(store, settings, until, beat, shutdown).await;
                }
                Ok(false) => tracing::info!(fire = %next, "credit refresh fire already taken (another daemon)"),
                Err(error) => tracing::error!(%error, "cannot record the credit refresh fire; it is skipped"),
            }
        }
    };
    let now = chrono::Utc::now();
    let last = last_fire_or_none(&store, crate::credit::REFRESH_FIRE_KEY).await;
    if let Some(at) = missed_fire(&settings, schedule, chrono_tz::UTC, last, now, "credit refresh", "credit") {
        fire(at).await;
    }
    crate::schedule::run_fires(schedule, chrono_tz::UTC, now, &clock, &shutdown, SCHEDULE_BEAT, beat, fire).await;
    wait_beating(&heartbeat, &shutdown).await;
}

/// The last recorded fire under `key`; `None` (nothing to catch up) when the database cannot
/// say, which is logged.
async fn last_fire_or_none(store: &Store, key: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    match store.last_fire(key).await {
        Ok(last) => last,
        Err(error) => {
            tracing::error!(key, %error, "cannot read the last fire; a missed fire is not caught up");
            None
        }
    }
}

/// The invoice component: a pass every `invoicing.interval`, and one after each load import.
async fn invoice_periodically(
    settings: Arc<Settings>,
    c: Components,
    loads_arrived: Arc<Notify>,
    heartbeat: Heartbeat,
    shutdown: CancellationToken,
) {
    let Components { store, metrics, .. } = c;
    let mut interval = skipping_interval(settings.invoicing.interval);
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        heartbeat.beat();
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
    c: Components,
    loads_arrived: Arc<Notify>,
    heartbeat: Heartbeat,
    shutdown: CancellationToken,
) {
    let inbox = LoadsInbox::new(&settings);
    if let Err(error) = inbox.folder().create() {
        tracing::error!(folder = %inbox.folder().dir.display(), %error, "cannot create the loads inbox");
    }
    let dirs = vec![inbox.folder().dir.clone()];
    let pass = LoadsPass { inbox, settings, store: c.store, metrics: c.metrics, loads_arrived };
    scan_on_timer_and_events("loads inbox", &dirs, &heartbeat, &shutdown, pass).await;
}

/// The report inboxes of every provider: a timer scan, woken early by inotify.
async fn watch_report_inboxes(
    settings: Arc<Settings>,
    c: Components,
    heartbeat: Heartbeat,
    shutdown: CancellationToken,
) {
    let inbox = ReportsInbox::new(&settings);
    if let Err(error) = inbox.create() {
        tracing::error!(folder = %settings.paths.inbox.display(), %error, "cannot create the report inboxes");
    }
    let dirs = inbox.dirs();
    let pass = ReportsPass { inbox, settings, store: c.store, metrics: c.metrics };
    scan_on_timer_and_events("report inboxes", &dirs, &heartbeat, &shutdown, pass).await;
}

/// One pass over a watched inbox. `Err` (the database) leaves the file in hand in
/// `processing/` for the next pass.
trait InboxPass: Send {
    fn settings(&self) -> &Settings;
    /// When a file seen but not yet taken will have held still for the quiet period.
    fn next_due(&self) -> Option<Instant>;
    fn pass(&mut self, shutdown: &CancellationToken) -> impl Future<Output = Result<(), String>> + Send;
}

struct LoadsPass {
    inbox: LoadsInbox,
    settings: Arc<Settings>,
    store: Store,
    metrics: Arc<Metrics>,
    loads_arrived: Arc<Notify>,
}

impl InboxPass for LoadsPass {
    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn next_due(&self) -> Option<Instant> {
        self.inbox.next_due()
    }

    async fn pass(&mut self, shutdown: &CancellationToken) -> Result<(), String> {
        let pass = self.inbox.run_once(&self.store, &self.settings, Instant::now(), shutdown);
        for outcome in self.metrics.timed(Job::LoadsInbox, pass).await.map_err(|e| e.to_string())? {
            match outcome {
                InboxOutcome::Failed { moved_to, .. } => {
                    tracing::warn!(file = %moved_to.display(), "load file moved to failed; see its .error.txt");
                }
                InboxOutcome::Imported { counts, .. } if counts.imported + counts.updated > 0 => {
                    self.loads_arrived.notify_one();
                }
                _ => {}
            }
        }
        Ok(())
    }
}

struct ReportsPass {
    inbox: ReportsInbox,
    settings: Arc<Settings>,
    store: Store,
    metrics: Arc<Metrics>,
}

impl InboxPass for ReportsPass {
    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn next_due(&self) -> Option<Instant> {
        self.inbox.next_due()
    }

    async fn pass(&mut self, shutdown: &CancellationToken) -> Result<(), String> {
        let pass = self.inbox.run_once(&self.store, &self.settings, Instant::now(), shutdown);
        for outcome in self.metrics.timed(Job::ReportsInbox, pass).await.map_err(|e| e.to_string())? {
            if let ReportOutcome::Refused { moved_to, .. } = outcome {
                tracing::warn!(file = %moved_to.display(), "report moved to failed; see its .error.txt");
            }
        }
        Ok(())
    }
}

/// Runs `inbox`'s pass every `intake.scan_interval`, and early when a file in `dirs` changes
/// (inotify only wakes the scanner: network shares send no events). A failed pass is retried
/// with capped backoff. Returns on shutdown.
async fn scan_on_timer_and_events(
    component: &'static str,
    dirs: &[PathBuf],
    heartbeat: &Heartbeat,
    shutdown: &CancellationToken,
    mut inbox: impl InboxPass,
) {
    let (wake_tx, mut wake_rx) = mpsc::channel::<()>(1);
    let _watcher = start_watcher(dirs, wake_tx);
    let mut interval = skipping_interval(inbox.settings().intake.scan_interval);
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        heartbeat.beat();
        // A file seen but not yet still long enough is taken when its own quiet period ends.
        let due = inbox.next_due();
        let file_due = async move {
            match due {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
            Some(()) = wake_rx.recv() => {}
            _ = file_due => {}
        }
        match inbox.pass(shutdown).await {
            Ok(()) => backoff.reset(),
            Err(error) => {
                tracing::error!(component, %error, "inbox pass failed; the file stays in processing and is retried");
                if !backoff.sleep(shutdown).await {
                    return;
                }
            }
        }
    }
}

/// inotify on the config folders: a change to a `.toml` file there asks for a reload.
fn start_config_watcher(main_file: &Path, wake: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = matches!(
            event.kind,
            notify::EventKind::Create(_) | notify::EventKind::Modify(_) | notify::EventKind::Remove(_)
        ) && event.paths.iter().any(|p| crate::reload::is_config_file(p));
        if relevant {
            let _ = wake.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "no file notifications; the configuration reloads on SIGHUP only");
            return None;
        }
    };
    for dir in crate::reload::config_dirs(main_file) {
        if let Err(error) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(folder = %dir.display(), %error, "cannot watch the config folder; reload with SIGHUP");
        }
    }
    Some(watcher)
}

/// inotify on the folders, used only to wake the scanner. Failure (e.g. no inotify watches
/// left) is logged; the timer scan carries on without it.
fn start_watcher(dirs: &[PathBuf], wake: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let handler = move |event: notify::Result<notify::Event>| {
        // Access events (a directory opened for reading) come from the scanner itself: waking
        // on them would make it scan in a loop.
        if event.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
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
    fn allowed_silence_is_three_ticks_with_a_floor() {
        assert_eq!(allowed_silence(Duration::from_millis(100), PASS_FLOOR), Some(PASS_FLOOR));
        assert_eq!(allowed_silence(Duration::from_secs(300), QUICK_FLOOR), Some(Duration::from_secs(900)));
        assert_eq!(allowed_silence(SCHEDULE_BEAT, FIRE_FLOOR), Some(FIRE_FLOOR));
        assert!(
            allowed_silence(Duration::from_secs(1), PASS_FLOOR) <= Some(STUCK_AFTER),
            "readyz tells before the watchdog"
        );
    }

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
