//! Supervised components (issue 16 point 3): the daemon, in process with `[http] listen` set,
//! is told through a [`FaultPlan`] to make a component panic. The panic is logged once with the
//! component and its cause; `/readyz` answers 503 naming the component and the metrics show it
//! down while it waits; it is restarted after the backoff, everything is ready again, and the
//! daemon goes on with its work. A component that keeps failing waits longer each time, and a
//! shutdown during a backoff stops the daemon at once.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use factord::config::{Environment, Settings};
use factord::daemon::RunOptions;
use factord::supervise::{Failure, FaultPlan, RestartPolicy};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::harness::{Backend, TestEnv, loads_csv, wait_for};
use crate::http::{get, parse_exposition, try_get, value};

const DEADLINE: Duration = Duration::from_secs(30);

/// The log lines written so far, as text.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A daemon running in this test's runtime, its HTTP address, the fault plan and the failures
/// its supervisor handled.
struct Daemon {
    env: TestEnv,
    addr: SocketAddr,
    faults: FaultPlan,
    failures: mpsc::UnboundedReceiver<Failure>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    /// Starts the daemon on a fresh database with `restarts`; waits until `/readyz` answers 200.
    async fn start(backend: Backend, restarts: RestartPolicy) -> Option<Daemon> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        // A short scheduler lease: the scheduler comes round (and beats) every second.
        let extra = format!("[http]\nlisten = \"127.0.0.1:{port}\"\n\n[submission]\nscheduler_lease = \"3s\"\n");
        let env = TestEnv::with_config(backend, &extra).await?;
        let settings = Arc::new(Settings::load(&env.config_path, &Environment::new()).expect("settings"));
        let (faults, failures) = FaultPlan::new();
        let shutdown = CancellationToken::new();
        let options = RunOptions { restarts, faults: faults.clone(), ..RunOptions::default() };
        let task =
            tokio::spawn(factord::daemon::run_with_options(settings, env.store.clone(), shutdown.clone(), options));
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_for(DEADLINE, "/readyz to answer 200", || async {
            try_get(addr, "/readyz").await.filter(|a| a.status == 200)
        })
        .await;
        Some(Daemon { env, addr, faults, failures, shutdown, task })
    }

    async fn next_failure(&mut self) -> Failure {
        tokio::time::timeout(DEADLINE, self.failures.recv())
            .await
            .expect("a failure within the deadline")
            .expect("the supervisor reports failures")
    }

    async fn metric(&self, name: &str, component: &str) -> Option<f64> {
        value(&parse_exposition(&get(self.addr, "/metrics").await.body), name, &[("component", component)])
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(DEADLINE, self.task).await.expect("the daemon stops in time");
        stopped.expect("daemon task").expect("the daemon stops cleanly");
    }
}

/// A component that panics: logged once, not ready while it waits, restarted, ready again, and
/// the daemon still imports the loads dropped afterwards.
async fn a_panicking_component_is_restarted(backend: Backend) {
    // The log lines of this test's runtime: on a current-thread runtime every task of the
    // daemon logs on this thread.
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // The first delay is 1.5 to 3 s: time enough to look at it while it is down.
    let policy = RestartPolicy { base: Duration::from_secs(3), ..RestartPolicy::default() };
    let Some(mut daemon) = Daemon::start(backend, policy).await else { return };
    assert_eq!(daemon.metric("factord_component_up", "loads inbox").await, Some(1.0));

    daemon.faults.panic("loads inbox", 1);
    let failure = daemon.next_failure().await;
    assert_eq!(failure.component, "loads inbox");
    assert_eq!(failure.cause, "panicked: fault injected into loads inbox");
    let answer = get(daemon.addr, "/readyz").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(
        answer.body.contains("component loads inbox: panicked: fault injected into loads inbox; restarting in "),
        "{}",
        answer.body
    );
    assert!(!answer.body.contains("invoice job"), "only the failed component is named: {}", answer.body);
    assert_eq!(daemon.metric("factord_component_up", "loads inbox").await, Some(0.0));
    assert_eq!(daemon.metric("factord_component_up", "invoice job").await, Some(1.0));
    assert_eq!(daemon.metric("factord_component_restarts_total", "loads inbox").await, Some(0.0));
    let logged: Vec<String> =
        logs.text().lines().filter(|l| l.contains("component stopped")).map(str::to_string).collect();
    assert_eq!(logged.len(), 1, "logged once: {logged:?}");
    assert!(logged[0].contains("ERROR") && logged[0].contains("loads inbox"), "{logged:?}");
    assert!(logged[0].contains("fault injected into loads inbox"), "the cause: {logged:?}");

    let addr = daemon.addr;
    wait_for(DEADLINE, "/readyz to answer 200 again", || async {
        try_get(addr, "/readyz").await.filter(|a| a.status == 200)
    })
    .await;
    assert_eq!(daemon.metric("factord_component_up", "loads inbox").await, Some(1.0));
    assert_eq!(daemon.metric("factord_component_restarts_total", "loads inbox").await, Some(1.0));
    assert!(logs.text().contains("component restarted"), "{}", logs.text());

    // The restarted inbox takes a file dropped now.
    let csv = loads_csv(&["SV-1,acme-east,C-1,Broker One,123456,1250.00,,2026-11-20,,,,,"]);
    let staged = daemon.env.write("loads.csv.tmp", &csv);
    std::fs::create_dir_all(daemon.env.path("inbox/loads")).expect("inbox");
    std::fs::rename(staged, daemon.env.path("inbox/loads/loads.csv")).expect("drop the file");
    let store = daemon.env.store.clone();
    wait_for(DEADLINE, "the load dropped after the restart to be imported", || {
        let store = store.clone();
        async move { store.load_detail("SV-1").await.ok().flatten() }
    })
    .await;
    daemon.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_panicking_component_is_logged_shown_not_ready_and_restarted_sqlite() {
    a_panicking_component_is_restarted(Backend::Sqlite).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_panicking_component_is_logged_shown_not_ready_and_restarted_postgres() {
    a_panicking_component_is_restarted(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_that_keeps_failing_waits_longer_each_time() {
    let policy = RestartPolicy { base: Duration::from_millis(200), ..RestartPolicy::default() };
    let mut daemon = Daemon::start(Backend::Sqlite, policy).await.expect("daemon");
    daemon.faults.panic("invoice job", 4);
    let mut failures = Vec::new();
    for _ in 0..4 {
        failures.push(daemon.next_failure().await);
    }
    // Attempt n waits between 100 × 2^n and 200 × 2^n ms: each wait at least the one before.
    for (n, failure) in failures.iter().enumerate() {
        assert_eq!(failure.component, "invoice job");
        let ceiling = Duration::from_millis(200 << n);
        assert!(failure.restart_in >= ceiling / 2 && failure.restart_in <= ceiling, "attempt {n}: {failure:?}");
    }
    assert!(failures[3].restart_in > failures[1].restart_in, "{failures:?}");
    // And it did wait that long before each new start (which failed again at once).
    for pair in failures.windows(2) {
        assert!(pair[1].at - pair[0].at >= pair[0].restart_in, "{pair:?}");
    }
    let addr = daemon.addr;
    wait_for(DEADLINE, "/readyz to answer 200 again", || async {
        try_get(addr, "/readyz").await.filter(|a| a.status == 200)
    })
    .await;
    assert_eq!(daemon.metric("factord_component_restarts_total", "invoice job").await, Some(4.0));

    // The scheduler too: its schedules stop with it and come back with it.
    daemon.faults.panic("scheduler", 1);
    assert_eq!(daemon.next_failure().await.component, "scheduler");
    wait_for(DEADLINE, "the scheduler and its schedule to be back", || async {
        let samples = parse_exposition(&try_get(addr, "/metrics").await?.body);
        let up = |c| value(&samples, "factord_component_up", &[("component", c)]);
        (up("scheduler") == Some(1.0) && up("submission acme-east") == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(daemon.metric("factord_component_restarts_total", "scheduler").await, Some(1.0));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_a_backoff_stops_the_daemon_at_once() {
    let policy = RestartPolicy { base: Duration::from_secs(60), ..RestartPolicy::default() };
    let mut daemon = Daemon::start(Backend::Sqlite, policy).await.expect("daemon");
    daemon.faults.panic("report inboxes", 1);
    let failure = daemon.next_failure().await;
    assert!(failure.restart_in >= Duration::from_secs(30), "{failure:?}");
    let asked = std::time::Instant::now();
    daemon.stop().await;
    assert!(asked.elapsed() < Duration::from_secs(5), "stopped in {:?}", asked.elapsed());
}
