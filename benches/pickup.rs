//! How long a load file dropped into `inbox/loads/` takes to be imported by a running daemon:
//! from the rename into the inbox to its result file in the archive. A file is taken when its
//! own quiet period ends (a timer per waiting file), so the figure should be about
//! `intake.quiet_period` plus the import itself, not up to one `intake.scan_interval` more.
//!
//! `cargo bench --bench pickup` (environment: `PICKUP_DROPS`, default 10; `PICKUP_QUIET`,
//! default `2s`; `PICKUP_SCAN`, default `2s`). It starts `factord run` on a temporary SQLite
//! database, drops the files one after another, and prints each latency and the median.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_factord");

#[expect(clippy::too_many_lines, reason = "the benchmark's steps in order: set up, drop, wait, report")]
fn main() {
    let drops: usize = std::env::var("PICKUP_DROPS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let quiet = std::env::var("PICKUP_QUIET").unwrap_or_else(|_| "2s".into());
    let scan = std::env::var("PICKUP_SCAN").unwrap_or_else(|_| "2s".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let p = |name: &str| root.join(name).display().to_string();
    let config = root.join("factord.toml");
    std::fs::write(
        &config,
        format!(
            r#"[database]
url = "sqlite://{db}"

[paths]
inbox = "{inbox}"
outbox = "{outbox}"
documents = "{documents}"
archive = "{archive}"
data = "{data}"

[log]
level = "warn"

[intake]
quiet_period = "{quiet}"
scan_interval = "{scan}"

[invoicing]
interval = "1h"

[[subsidiary]]
id = "acme-west"
name = "ACME Freight West LLC"
address = "2200 Camelback Rd, Phoenix, AZ 85016"
timezone = "America/Phoenix"
invoice_prefix = "AW-"
invoicing_method = "direct"
"#,
            db = p("data/factord.db"),
            inbox = p("inbox"),
            outbox = p("outbox"),
            documents = p("documents"),
            archive = p("archive"),
            data = p("data"),
        ),
    )
    .expect("config");
    let mut daemon = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("factord run");
    let inbox = root.join("inbox/loads");
    wait(Duration::from_secs(30), || inbox.is_dir()).expect("the daemon made its inbox");
    // Let its first scan pass, so every drop meets a daemon in its steady state.
    std::thread::sleep(Duration::from_millis(500));

    let staging = root.join("staging");
    std::fs::create_dir_all(&staging).expect("staging");
    let mut latencies = Vec::new();
    for i in 0..drops {
        let name = format!("drop-{i:03}.csv");
        let staged = staging.join(&name);
        std::fs::write(
            &staged,
            format!("load_number,subsidiary,customer_id,customer_name,amount\nP-{i},acme-west,C-1,Broker One,100.00\n"),
        )
        .expect("write");
        std::fs::rename(&staged, inbox.join(&name)).expect("drop");
        let archive = root.join("archive/loads");
        let done = wait(Duration::from_secs(60), || archived(&archive, &name));
        match done {
            Some(elapsed) => {
                println!("drop {i:>3}: {:>6} ms", elapsed.as_millis());
                latencies.push(elapsed);
            }
            None => println!("drop {i:>3}: not imported within 60 s"),
        }
    }
    let _ = Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status();
    let _ = daemon.wait();
    latencies.sort();
    if let (Some(min), Some(max)) = (latencies.first(), latencies.last()) {
        let median = latencies[latencies.len() / 2];
        println!(
            "\nquiet period {quiet}, scan interval {scan}: drop → imported median {} ms (min {} ms, max {} ms) over {} drops",
            median.as_millis(),
            min.as_millis(),
            max.as_millis(),
            latencies.len()
        );
    }
}

/// Polls `done` every 5 ms until it holds or `deadline` passes; the time it took.
fn wait(deadline: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if done() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// Whether the archive holds the result file of the input `name` (archived as `<stamp>-<name>`).
fn archived(archive: &Path, name: &str) -> bool {
    let suffix = format!("{name}.result.csv");
    std::fs::read_dir(archive)
        .map(|entries| entries.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().ends_with(&suffix)))
        .unwrap_or(false)
}
