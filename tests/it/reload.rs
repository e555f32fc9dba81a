//! Live reload of `factord run` (issue "Operations", docs/reliability.md rule 12): a changed config
//! file is applied without a restart — a new schedule and a new provider take effect — and a
//! bad one, whether noticed by the file watcher or sent by SIGHUP, is refused with every error
//! while the daemon goes on with the configuration it had.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use factord::domain::LoadStatus;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::harness::{Backend, Running, TestEnv, loads_csv, wait_for};

const DEADLINE: Duration = Duration::from_secs(30);

/// The daemon's JSON log lines so far.
fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn with_message<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["message"] == message).collect()
}

async fn wait_log(path: &Path, what: &str, check: impl Fn(&[Value]) -> bool) {
    wait_for(DEADLINE, what, || {
        let lines = log_lines(path);
        let done = check(&lines);
        async move { done.then_some(()) }
    })
    .await;
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([name, &child.id().to_string()]).status().expect("run kill");
    assert!(status.success(), "kill {name}");
}

async fn queue_loads(env: &TestEnv, numbers: &[&str]) {
    let dir = env.path("documents");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("rc.pdf"), crate::pdfs::rate_confirmation("R", 1)).expect("rc");
    std::fs::write(dir.join("pod.pdf"), crate::pdfs::pod_with_jpeg("R", &crate::pdfs::scanned_jpeg(80, 40, 1)))
        .expect("pod");
    let rows: Vec<String> =
        numbers.iter().map(|n| format!("{n},acme-east,BRK-1,Blue,123456,500.00,,,pod.pdf,rc.pdf,,,")).collect();
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let file = env.write("loads.csv", &loads_csv(&refs));
    factord::intake::import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    factord::invoicing::run_once(&env.store, &env.settings, None, &CancellationToken::new()).await.expect("invoice");
}

async fn status_of(env: &TestEnv, load: &str) -> LoadStatus {
    env.store.load_detail(load).await.expect("detail").expect("load").load.status
}

fn batch_folders(env: &TestEnv, provider: &str) -> usize {
    std::fs::read_dir(env.path(&format!("outbox/acme-east/{provider}"))).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_is_applied_live_and_a_bad_one_is_refused() {
    let env = TestEnv::with_config(Backend::Sqlite, "[log]\nformat = \"json\"\n").await.expect("env");
    queue_loads(&env, &["RL-1", "RL-2"]).await;
    let log = env.path("daemon.log");
    let daemon = Command::new(env!("CARGO_BIN_EXE_factord"))
        .current_dir(env.dir.path())
        .arg("--config")
        .arg(&env.config_path)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start factord run");
    let mut daemon = Running(daemon);
    wait_log(&log, "the daemon to run", |l| !with_message(l, "factord running").is_empty()).await;
    assert_eq!(status_of(&env, "RL-1").await, LoadStatus::Queued, "the shipped schedule fires at 16:00 on weekdays");

    // A new schedule (every second) and a new provider, noticed by the file watcher.
    let config = std::fs::read_to_string(&env.config_path).expect("config");
    let changed = config
        .replace("provider = \"capital_depot\"", "provider = \"wex_fleetone\"")
        .replace("schedule = \"0 0 16 * * Mon-Fri\"", "schedule = \"* * * * * *\"");
    assert_ne!(changed, config);
    std::fs::write(&env.config_path, &changed).expect("rewrite config");
    wait_log(&log, "the reload", |l| !with_message(l, "configuration reloaded").is_empty()).await;
    let lines = log_lines(&log);
    let reloaded = with_message(&lines, "configuration reloaded")[0];
    let changes = reloaded["changes"].as_str().expect("changes");
    assert!(changes.contains("provider capital_depot → wex_fleetone"), "{changes}");
    assert!(changes.contains("schedule `0 0 16 * * Mon-Fri` → `* * * * * *`"), "{changes}");
    assert_eq!(reloaded["trigger"], "a change under the config folder");
    wait_for(DEADLINE, "the loads to be submitted to the new provider", || async {
        (status_of(&env, "RL-1").await == LoadStatus::Invoiced).then_some(())
    })
    .await;
    assert!(batch_folders(&env, "wex_fleetone") > 0, "the batch is in Wex FleetOne's outbox folder");
    assert_eq!(batch_folders(&env, "capital_depot"), 0, "nothing went to the old provider");

    // A bad config: refused with every error, by the watcher and again on SIGHUP.
    let bad = changed
        .replace("schedule = \"* * * * * *\"", "schedule = \"every day at noon\"")
        .replace("[intake]", "[intake]\nscan_intervall = \"1s\"");
    std::fs::write(&env.config_path, &bad).expect("write bad config");
    wait_log(&log, "the bad config to be refused", |l| {
        !with_message(l, "configuration refused; still running on the previous configuration").is_empty()
    })
    .await;
    signal(&daemon.0, "-HUP");
    wait_log(&log, "the SIGHUP reload to be refused too", |l| {
        with_message(l, "configuration refused; still running on the previous configuration")
            .iter()
            .any(|line| line["trigger"] == "SIGHUP")
    })
    .await;
    let lines = log_lines(&log);
    let errors = with_message(&lines, "configuration error");
    let config_file = env.config_path.display().to_string();
    for key in ["intake.scan_intervall", "subsidiary[acme-east].factoring.schedule"] {
        assert!(
            errors.iter().any(|e| e["key"] == key && e["source"] == config_file.as_str() && e["problem"].is_string()),
            "no error for {key} in {config_file}: {errors:#?}"
        );
    }
    assert!(daemon.0.try_wait().expect("try_wait").is_none(), "the daemon keeps running");

    // Still on the last good configuration: a new load goes every second to Wex FleetOne.
    queue_loads(&env, &["RL-3"]).await;
    wait_for(DEADLINE, "RL-3 to be submitted on the kept configuration", || async {
        (status_of(&env, "RL-3").await == LoadStatus::Invoiced).then_some(())
    })
    .await;

    // A good config again (the schedule back to 16:00): applied.
    std::fs::write(
        &env.config_path,
        changed.replace("schedule = \"* * * * * *\"", "schedule = \"0 0 16 * * Mon-Fri\""),
    )
    .expect("fix config");
    wait_log(&log, "the fixed config to be applied", |l| with_message(l, "configuration reloaded").len() >= 2).await;

    signal(&daemon.0, "-TERM");
    let status = wait_for(DEADLINE, "the daemon to stop", || {
        let status = daemon.0.try_wait().expect("try_wait");
        async move { status }
    })
    .await;
    assert!(status.success(), "{status}");
}

/// Reads every datagram that has arrived on the notify socket.
fn drain(socket: &std::os::unix::net::UnixDatagram, into: &mut Vec<String>) {
    let mut buffer = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buffer) {
        into.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_status_reloading_watchdog_and_stopping() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let socket_path = env.path("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket.set_nonblocking(true).expect("nonblocking");
    let daemon = Command::new(env!("CARGO_BIN_EXE_factord"))
        .current_dir(env.dir.path())
        .arg("--config")
        .arg(&env.config_path)
        .arg("run")
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.path("daemon.log")).expect("log"))
        .spawn()
        .expect("start factord run");
    let mut daemon = Running(daemon);
    let mut messages = Vec::new();
    let mut wait_message = async |what: &str, check: &dyn Fn(&str) -> bool| {
        wait_for(DEADLINE, what, || {
            drain(&socket, &mut messages);
            let found = messages.iter().any(|m| check(m));
            async move { found.then_some(()) }
        })
        .await;
    };
    wait_message("READY=1", &|m| m.contains("READY=1")).await;
    wait_message("a STATUS= summary", &|m| m.starts_with("STATUS=queued 0, waiting 0, no batch yet")).await;
    wait_message("watchdog pings", &|m| m.contains("WATCHDOG=1")).await;
    signal(&daemon.0, "-HUP");
    wait_message("RELOADING=1 with the monotonic time", &|m| {
        m.contains("RELOADING=1") && m.contains("MONOTONIC_USEC=")
    })
    .await;
    signal(&daemon.0, "-TERM");
    wait_message("STOPPING=1", &|m| m.contains("STOPPING=1")).await;
    let status = wait_for(DEADLINE, "the daemon to stop", || {
        let status = daemon.0.try_wait().expect("try_wait");
        async move { status }
    })
    .await;
    assert!(status.success(), "{status}");
    // After the reload the daemon said READY again.
    let reloading = messages.iter().position(|m| m.contains("RELOADING=1")).expect("reloading");
    assert!(messages[reloading..].iter().any(|m| m.contains("READY=1")), "{messages:#?}");
}
