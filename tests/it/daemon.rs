//! `factord run` as a child process (docs/design.md §5, §9; docs/reliability.md rules 6, 10 and the fault
//! tests): it picks up load files from `inbox/loads/`, archives them with a result file, takes
//! a file only once it has stopped growing, refuses a second daemon on the same SQLite file,
//! stops cleanly on SIGTERM, and never logs a secret.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{loads_csv, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_factord");

/// How long the daemon gets to do anything asked of it in these tests.
const DEADLINE: Duration = Duration::from_secs(20);

/// A temp working directory with its own config on an SQLite file inside it.
struct Workdir {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Workdir {
    /// `intake` is the body of the `[intake]` section, `log_level` goes to `[log]`, and
    /// `subsidiaries` is appended as is.
    fn new(intake: &str, log_level: &str, subsidiaries: &str) -> Workdir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let p = |name: &str| root.join(name).display().to_string();
        let text = format!(
            r#"
[database]
url = "sqlite://{database}"

[paths]
inbox = "{inbox}"
outbox = "{outbox}"
documents = "{documents}"
archive = "{archive}"
data = "{data}"

[log]
level = "{log_level}"

[intake]
{intake}

{subsidiaries}
"#,
            database = p("data/factord.db"),
            inbox = p("inbox"),
            outbox = p("outbox"),
            documents = p("documents"),
            archive = p("archive"),
            data = p("data"),
        );
        let config = root.join("config/factord.toml");
        std::fs::create_dir_all(config.parent().expect("parent")).expect("mkdir config");
        std::fs::write(&config, text).expect("write config");
        Workdir { dir, config }
    }

    /// The harness's two subsidiaries, a fast scan and a short quiet period.
    fn standard() -> Workdir {
        Workdir::new("scan_interval = \"100ms\"\nquiet_period = \"300ms\"", "info", crate::harness::SUBSIDIARIES)
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
        path
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.current_dir(self.root()).arg("--config").arg(&self.config).args(args);
        for (name, _) in std::env::vars() {
            if name.starts_with("FACTORD") {
                command.env_remove(name);
            }
        }
        command
    }

    /// Starts `factord run` with stdout and stderr going to files named after `name`.
    fn start(&self, name: &str) -> Daemon {
        let stdout = self.path(&format!("{name}.stdout.log"));
        let stderr = self.path(&format!("{name}.stderr.log"));
        let child = self
            .command(&["run"])
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start factord run");
        Daemon { child, stdout, stderr }
    }

    /// `factord ARGS --json` run to completion, or `None` while it fails (polling).
    async fn try_json(&self, args: &[&str]) -> Option<Value> {
        let output = tokio::process::Command::from(self.command(args)).output().await.expect("run factord");
        if !output.status.success() {
            return None;
        }
        serde_json::from_slice(&output.stdout).ok()
    }

    /// Load number → status, from `loads list --json`.
    async fn statuses(&self) -> Option<Vec<(String, String)>> {
        let list = self.try_json(&["loads", "list", "--json"]).await?;
        let mut out: Vec<(String, String)> = list
            .as_array()?
            .iter()
            .map(|l| {
                (l["load_number"].as_str().unwrap_or("").to_string(), l["status"].as_str().unwrap_or("").to_string())
            })
            .collect();
        out.sort();
        Some(out)
    }

    /// Regular files directly in `relative` (none if it does not exist).
    fn files_in(&self, relative: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.path(relative)) else { return Vec::new() };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// A running `factord run`; killed (SIGKILL) and reaped on drop, so a failing assertion never
/// leaves it behind.
struct Daemon {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn logs(&self) -> String {
        format!("--- stdout ---\n{}\n--- stderr ---\n{}", self.stdout(), self.stderr())
    }

    /// Waits until the daemon says it is running (its signal handlers are installed by then).
    async fn wait_running(&mut self) {
        let (stdout, stderr) = (self.stdout.clone(), self.stderr.clone());
        let child = &mut self.child;
        wait_for(DEADLINE, "the daemon to start", || {
            let log = std::fs::read_to_string(&stderr).unwrap_or_default();
            if let Some(status) = child.try_wait().expect("try_wait") {
                let out = std::fs::read_to_string(&stdout).unwrap_or_default();
                panic!("the daemon exited early with {status}:\n--- stdout ---\n{out}\n--- stderr ---\n{log}");
            }
            let running = log.contains("factord running");
            async move { running.then_some(()) }
        })
        .await;
    }

    /// Sends SIGTERM, as systemd does on stop.
    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits for the process to exit within `deadline`.
    async fn wait_exit(&mut self, deadline: Duration, what: &str) -> ExitStatus {
        wait_for(deadline, what, || {
            let status = self.child.try_wait().expect("try_wait");
            async move { status }
        })
        .await
    }

    /// SIGTERM, then the exit status.
    async fn stop(&mut self) -> ExitStatus {
        self.terminate();
        self.wait_exit(DEADLINE, "the daemon to stop after SIGTERM").await
    }
}

fn row(load: &str, subsidiary: &str, amount: &str) -> String {
    format!("{load},{subsidiary},C-1,Broker One,123456,{amount},,2026-11-20,,,,,")
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_load_file_is_imported_and_archived() {
    let wd = Workdir::standard();
    let mut daemon = wd.start("daemon");
    daemon.wait_running().await;

    let csv = loads_csv(&[
        &row("L-1", "acme-east", "100.00"),
        &row("L-2", "acme-east", "200.00"),
        &row("L-3", "acme-west", "300.00"),
    ]);
    // Written beside the inbox and moved in, as a TMS export job would.
    let staged = wd.write("staging/loads.csv", &csv);
    std::fs::create_dir_all(wd.path("inbox/loads")).expect("mkdir inbox");
    std::fs::rename(&staged, wd.path("inbox/loads/loads.csv")).expect("move into the inbox");

    let expected: Vec<(String, String)> =
        ["L-1", "L-2", "L-3"].iter().map(|l| (l.to_string(), "Released".to_string())).collect();
    let (wd_ref, expected_ref) = (&wd, &expected);
    wait_for(DEADLINE, "the loads to appear Released", || async move {
        wd_ref.statuses().await.filter(|s| s == expected_ref)
    })
    .await;

    let archived = wait_for(DEADLINE, "the file to be archived with its result file", || {
        let files = wd.files_in("archive/loads");
        let input = files.iter().find(|f| f.ends_with("-loads.csv")).cloned();
        let result = input.as_ref().filter(|i| files.contains(&format!("{i}.result.csv"))).cloned();
        async move { result }
    })
    .await;
    let result =
        std::fs::read_to_string(wd.path(&format!("archive/loads/{archived}.result.csv"))).expect("result file");
    assert!(result.contains("total,,imported,3"), "{result}");
    assert!(result.contains("total,,rejected,0"), "{result}");
    assert_eq!(std::fs::read_to_string(wd.path(&format!("archive/loads/{archived}"))).expect("archived input"), csv);

    assert!(wd.files_in("inbox/loads").is_empty(), "inbox/loads: {:?}", wd.files_in("inbox/loads"));
    assert!(wd.files_in("inbox/loads/processing").is_empty(), "{:?}", wd.files_in("inbox/loads/processing"));
    assert!(wd.files_in("inbox/loads/failed").is_empty(), "{:?}", wd.files_in("inbox/loads/failed"));

    let status = wd.try_json(&["status", "--json"]).await.expect("status --json");
    let east =
        status["subsidiaries"].as_array().expect("array").iter().find(|s| s["id"] == "acme-east").expect("acme-east");
    assert_eq!(east["counts"]["Released"], 2, "{status:#}");

    let exit = daemon.stop().await;
    assert!(exit.success(), "{exit}:\n{}", daemon.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_sqlite_file_refuses_to_start() {
    let wd = Workdir::standard();
    let mut first = wd.start("first");
    first.wait_running().await;

    let mut second = wd.start("second");
    let status = second.wait_exit(Duration::from_secs(10), "the second daemon to give up").await;
    assert!(!status.success(), "the second daemon must fail: {status}\n{}", second.logs());
    assert_eq!(status.code(), Some(1), "{}", second.logs());
    let message = second.stderr();
    assert!(message.contains("factord.db.lock"), "names the lock file:\n{message}");
    assert!(
        message.contains(&format!("pid {}", first.pid())),
        "names the first daemon's pid {}:\n{message}",
        first.pid()
    );

    assert!(first.child.try_wait().expect("try_wait").is_none(), "the first daemon carries on:\n{}", first.logs());
    let exit = first.stop().await;
    assert!(exit.success(), "{exit}:\n{}", first.logs());

    // Once the first has stopped, the lock is free again.
    let mut third = wd.start("third");
    third.wait_running().await;
    let exit = third.stop().await;
    assert!(exit.success(), "{exit}:\n{}", third.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_with_status_0() {
    let wd = Workdir::standard();
    let mut daemon = wd.start("daemon");
    daemon.wait_running().await;
    daemon.terminate();
    let status = daemon.wait_exit(Duration::from_secs(10), "the daemon to exit after SIGTERM").await;
    assert!(status.success(), "exit status {status}:\n{}", daemon.logs());
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_still_being_written_is_not_taken() {
    let wd = Workdir::new("scan_interval = \"100ms\"\nquiet_period = \"1s\"", "info", crate::harness::SUBSIDIARIES);
    let mut daemon = wd.start("daemon");
    daemon.wait_running().await;

    let inbox_file = wd.path("inbox/loads/slow.csv");
    std::fs::create_dir_all(wd.path("inbox/loads")).expect("mkdir inbox");
    // Half a file: the header, one row, and the start of a second row.
    let first = loads_csv(&[&row("L-1", "acme-east", "10.00")]);
    std::fs::write(&inbox_file, format!("{first}L-2,acme-ea")).expect("write the first half");
    let mut rest: Vec<String> = vec![format!("{}\n", &row("L-2", "acme-east", "20.00")["L-2,acme-ea".len()..])];
    rest.extend((3..=9).map(|n| format!("{}\n", row(&format!("L-{n}"), "acme-east", &format!("{n}0.00")))));

    // The writer: a row every 200 ms for about 1.6 s, well inside the daemon's scan interval
    // but never quiet for the 1 s quiet period. After each write the file must still be
    // waiting in the inbox.
    for chunk in &rest {
        let mut file = OpenOptions::new().append(true).open(&inbox_file).unwrap_or_else(|e| {
            panic!("the daemon took a file that was still being written ({e}):\n{}", daemon.logs())
        });
        file.write_all(chunk.as_bytes()).expect("append");
        file.sync_all().expect("sync");
        drop(file);
        let written = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            inbox_file.exists(),
            "the daemon took a file that was still being written ({:?} after the last write):\n{}",
            written.elapsed(),
            daemon.logs()
        );
        assert!(wd.files_in("archive/loads").is_empty(), "archived too early: {:?}", wd.files_in("archive/loads"));
        assert!(wd.files_in("inbox/loads/processing").is_empty(), "claimed too early");
    }

    // The writer is done: now it is taken, whole.
    let archived = wait_for(DEADLINE, "the finished file to be archived", || {
        let files = wd.files_in("archive/loads");
        let found = files.iter().find(|f| f.ends_with("-slow.csv")).cloned().filter(|_| !inbox_file.exists());
        async move { found }
    })
    .await;
    let expected: Vec<(String, String)> = (1..=9).map(|n| (format!("L-{n}"), "Released".to_string())).collect();
    let wd_ref = &wd;
    let statuses =
        wait_for(DEADLINE, "all nine loads", || async move { wd_ref.statuses().await.filter(|s| s.len() == 9) }).await;
    assert_eq!(statuses, expected);
    let result =
        std::fs::read_to_string(wd.path(&format!("archive/loads/{archived}.result.csv"))).expect("result file");
    assert!(result.contains("total,,imported,9"), "{result}");
    assert!(result.contains("total,,rejected,0"), "{result}");
    let l2 = wd.try_json(&["loads", "show", "L-2", "--json"]).await.expect("L-2");
    assert_eq!(l2["subsidiary"], "acme-east", "the row cut in half was read whole: {l2:#}");
    assert_eq!(l2["amount_cents"], 2000, "{l2:#}");

    let exit = daemon.stop().await;
    assert!(exit.success(), "{exit}:\n{}", daemon.logs());
}

/// Every file under `dir` (recursively), except `skip`, that contains `needle`.
fn files_containing(dir: &Path, needle: &str, skip: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            found.extend(files_containing(&path, needle, skip));
        } else if kind.is_file() && path != skip {
            let bytes = std::fs::read(&path).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs() {
    const SECRET: &str = "TopSecret-123";
    let dir_for_password = tempfile::tempdir().expect("tempdir");
    let password_file = dir_for_password.path().join("triumph-ftp");
    std::fs::write(&password_file, format!("{SECRET}\n")).expect("write password");
    let subsidiaries = format!(
        r#"
[[subsidiary]]
id = "acme-east"
name = "ACME Freight East LLC"
address = "100 Main St, Dallas, TX 75201"
timezone = "America/Chicago"
invoice_prefix = "AE-"
invoicing_method = "direct"

[[subsidiary]]
id = "acme-west"
name = "ACME Freight West LLC"
address = "2200 Camelback Rd, Phoenix, AZ 85016"
timezone = "America/Phoenix"
invoice_prefix = "AW-"
noa = "Notice of assignment: pay Triumph."

[subsidiary.factoring]
provider = "triumph"
active = true
schedule = "0 0 16 * * Mon-Fri"

[subsidiary.factoring.ftp]
host = "ftp.triumph.invalid"
username = "acmewest"
password_file = "{}"
directory = "/incoming"
"#,
        password_file.display()
    );
    // Every library at trace too (whole directives in log.level), so that anything a library
    // might print is printed.
    let wd = Workdir::new("scan_interval = \"100ms\"\nquiet_period = \"300ms\"", "trace,factord=trace", &subsidiaries);

    let check = wd.command(&["check-config"]).output().expect("check-config");
    let check_text = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(check.status.success(), "the config is valid (the password file was read):\n{check_text}");
    assert!(check_text.contains("triumph"), "{check_text}");
    assert!(!check_text.contains(SECRET), "check-config printed the secret:\n{check_text}");

    let mut daemon = wd.start("daemon");
    daemon.wait_running().await;
    wd.write(
        "inbox/loads/west.csv",
        &loads_csv(&[&row("W-1", "acme-west", "500.00"), &row("W-2", "acme-west", "oops")]),
    );
    wait_for(DEADLINE, "the import to finish", || {
        let done = wd.files_in("archive/loads").iter().any(|f| f.ends_with("-west.csv.result.csv"));
        async move { done.then_some(()) }
    })
    .await;
    let exit = daemon.stop().await;
    assert!(exit.success(), "{exit}:\n{}", daemon.logs());

    let (stdout, stderr) = (daemon.stdout(), daemon.stderr());
    assert!(stderr.contains("load file imported"), "trace logging was on and the import was logged:\n{stderr}");
    assert!(stderr.contains("TRACE") || stderr.contains("DEBUG"), "verbose logs were written:\n{stderr}");
    assert!(!stdout.contains(SECRET), "the secret is in stdout:\n{stdout}");
    assert!(!stderr.contains(SECRET), "the secret is in stderr:\n{stderr}");

    // Nor in any file the daemon wrote: database, archive, result files.
    let leaked = files_containing(wd.root(), SECRET, &password_file);
    assert!(leaked.is_empty(), "the secret is in {leaked:?}");
}

/// The daemon end to end on its own: a dropped export is imported, invoiced into packets and,
/// at the next fire of the subsidiary's schedule (every second here), submitted to the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_loads_are_invoiced_and_submitted_on_schedule() {
    let subsidiaries =
        crate::harness::SUBSIDIARIES.replace("schedule = \"0 0 16 * * Mon-Fri\"", "schedule = \"* * * * * *\"");
    let wd = Workdir::new("scan_interval = \"100ms\"\nquiet_period = \"300ms\"", "info", &subsidiaries);
    std::fs::create_dir_all(wd.path("documents")).expect("mkdir");
    std::fs::write(wd.path("documents/rc.pdf"), crate::pdfs::rate_confirmation("D", 1)).expect("rc");
    std::fs::write(
        wd.path("documents/pod.pdf"),
        crate::pdfs::pod_with_jpeg("D", &crate::pdfs::scanned_jpeg(100, 80, 3)),
    )
    .expect("pod");
    let mut daemon = wd.start("daemon");
    daemon.wait_running().await;
    let rows = ["D-1", "D-2"].map(|l| format!("{l},acme-east,C-1,Broker One,123456,150.00,,,pod.pdf,rc.pdf,,,"));
    let staged = wd.write("staging/loads.csv", &loads_csv(&[&rows[0], &rows[1]]));
    std::fs::create_dir_all(wd.path("inbox/loads")).expect("mkdir inbox");
    std::fs::rename(&staged, wd.path("inbox/loads/loads.csv")).expect("move into the inbox");

    let expected: Vec<(String, String)> =
        ["D-1", "D-2"].iter().map(|l| (l.to_string(), "Invoiced".to_string())).collect();
    let (wd_ref, expected_ref) = (&wd, &expected);
    wait_for(
        DEADLINE,
        "the loads to be submitted",
        || async move { wd_ref.statuses().await.filter(|s| s == expected_ref) },
    )
    .await;
    let status = wd.try_json(&["status", "--json"]).await.expect("status --json");
    let batches = status["last_batches"].as_array().expect("batches");
    assert_eq!(batches.len(), 1, "{status:#}");
    assert_eq!((batches[0]["status"].as_str(), batches[0]["accepted"].as_i64()), (Some("sent"), Some(2)));
    // The daemon running the schedules is named while it runs, and gone once it stopped.
    let holder = status["scheduler"]["holder"].as_str().unwrap_or_default().to_string();
    assert!(holder.contains(&format!(":{}:", daemon.pid())), "{status:#}");
    assert_eq!(status["scheduler"]["live"].as_bool(), Some(true));
    let exit = daemon.stop().await;
    assert!(exit.success(), "{exit}:\n{}", daemon.logs());
    let status = wd.try_json(&["status", "--json"]).await.expect("status --json");
    assert!(status["scheduler"].is_null(), "released at stop: {status:#}");
}

/// A Workdir whose acme-east submits once a day at the Chicago wall time of `hours_ago` hours
/// ago, with one earlier fire recorded (the day before), and two Queued loads; `extra` goes
/// before the subsidiaries (e.g. a `[schedule]` section).
async fn missed_fire_workdir(hours_ago: i64, extra: &str) -> Workdir {
    let at = (chrono::Utc::now() - chrono::Duration::hours(hours_ago)).with_timezone(&chrono_tz::America::Chicago);
    use chrono::Timelike;
    let cron = format!("0 {} {} * * *", at.minute(), at.hour());
    let subsidiaries =
        crate::harness::SUBSIDIARIES.replace("schedule = \"0 0 16 * * Mon-Fri\"", &format!("schedule = \"{cron}\""));
    let wd = Workdir::new(
        "scan_interval = \"100ms\"\nquiet_period = \"300ms\"",
        "info",
        &format!("{extra}\n{subsidiaries}"),
    );
    std::fs::create_dir_all(wd.path("documents")).expect("mkdir");
    std::fs::write(wd.path("documents/rc.pdf"), crate::pdfs::rate_confirmation("M", 1)).expect("rc");
    std::fs::write(
        wd.path("documents/pod.pdf"),
        crate::pdfs::pod_with_jpeg("M", &crate::pdfs::scanned_jpeg(90, 60, 2)),
    )
    .expect("pod");
    let rows = ["M-1", "M-2"].map(|l| format!("{l},acme-east,C-1,Broker One,123456,150.00,,,pod.pdf,rc.pdf,,,"));
    let file = wd.write("loads.csv", &loads_csv(&[&rows[0], &rows[1]]));
    for args in [vec!["loads", "import", file.to_str().expect("path")], vec!["invoice"]] {
        let output = wd.command(&args).output().expect("factord");
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    // The fire of the day before was made: the daemon was running then.
    let settings = factord::config::Settings::load(&wd.config, &factord::config::Environment::new()).expect("config");
    let store = factord::store::Store::connect(&settings.database).await.expect("store");
    let yesterday = at.with_second(0).expect("whole minute").with_timezone(&chrono::Utc) - chrono::Duration::days(1);
    assert!(store.record_fire("acme-east", yesterday).await.expect("record"));
    store.close().await;
    wd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_missed_while_down_runs_once_at_start() {
    let wd = missed_fire_workdir(2, "").await;
    let mut daemon = wd.start("daemon");
    daemon.wait_running().await;
    let expected: Vec<(String, String)> = ["M-1", "M-2"].iter().map(|l| (l.to_string(), "Invoiced".into())).collect();
    let (wd_ref, expected_ref) = (&wd, &expected);
    // The next regular fire is some 22 hours away: only the catch-up can submit them.
    wait_for(DEADLINE, "the missed fire to be caught up", || async move {
        wd_ref.statuses().await.filter(|s| s == expected_ref)
    })
    .await;
    let exit = daemon.stop().await;
    assert!(exit.success(), "{exit}:\n{}", daemon.logs());
    assert!(daemon.stderr().contains("catching up a fire missed while no daemon ran"), "{}", daemon.logs());
    // Started again, nothing more is missed: no second batch.
    let mut again = wd.start("again");
    again.wait_running().await;
    let exit = again.stop().await;
    assert!(exit.success());
    assert!(!again.stderr().contains("catching up"), "{}", again.logs());
    let status = wd.try_json(&["status", "--json"]).await.expect("status");
    assert_eq!(status["last_batches"].as_array().map(Vec::len), Some(1), "{status:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_fire_older_than_the_grace_is_logged_and_skipped() {
    let wd = missed_fire_workdir(3, "[schedule]\ncatch_up = \"1h\"\n").await;
    let mut daemon = wd.start("daemon");
    daemon.wait_running().await;
    let daemon_ref = &daemon;
    wait_for(DEADLINE, "the skip to be logged", || async move {
        daemon_ref.stderr().contains("older than schedule.catch_up is skipped").then_some(())
    })
    .await;
    let statuses = wd.statuses().await.expect("statuses");
    assert!(statuses.iter().all(|(_, s)| s == "Queued"), "{statuses:?}");
    let exit = daemon.stop().await;
    assert!(exit.success(), "{exit}:\n{}", daemon.logs());
}

/// The holder of the scheduler lease, read straight from the database at `url`; `None` also
/// while the daemon has not made the database yet.
async fn scheduler_lease_holder(url: &str) -> Option<String> {
    let sql = "SELECT holder FROM leader_leases WHERE role = 'scheduler'";
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.ok()?;
        let holder = sqlx::query_scalar(sql).fetch_optional(&pool).await.ok().flatten();
        pool.close().await;
        holder
    } else {
        let pool = sqlx::PgPool::connect(url).await.ok()?;
        let holder = sqlx::query_scalar(sql).fetch_optional(&pool).await.ok().flatten();
        pool.close().await;
        holder
    }
}

/// `factord run 2>&1 | tee log`, stopped with Ctrl-C: tee is gone first, so the daemon's stdout
/// and stderr are pipes without a reader. It stops cleanly (status 0, not a panic's 101) and
/// gives the scheduler lease up on the way out, so the next daemon takes the schedules at once
/// rather than when the lease runs out (`submission.scheduler_lease` is long here).
/// `database_url`: PostgreSQL, or `None` for the working directory's SQLite file.
async fn a_daemon_whose_pipes_closed_stops_cleanly_and_releases_its_lease(database_url: Option<&str>) {
    let wd = Workdir::standard();
    let config = std::fs::read_to_string(&wd.config).expect("config");
    let sqlite = format!("sqlite://{}", wd.path("data/factord.db").display());
    let database_url = database_url.unwrap_or(&sqlite);
    let config = config
        .replace(&sqlite, database_url)
        .replace("[intake]", "[submission]\nscheduler_lease = \"10m\"\n\n[intake]");
    std::fs::write(&wd.config, config).expect("config");
    let (reader, writer) = std::io::pipe().expect("pipe");
    let mut child = wd
        .command(&["run"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer.try_clone().expect("clone")))
        .stderr(Stdio::from(writer))
        .spawn()
        .expect("start factord run");
    let first = wait_for(DEADLINE, "the daemon to take the scheduler lease", || async {
        scheduler_lease_holder(database_url).await
    })
    .await;
    // Ctrl-C: the reader goes first, then the daemon gets its signal.
    drop(reader);
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().expect("kill").success());
    let status = wait_for(DEADLINE, "the daemon to stop", || {
        let status = child.try_wait().expect("try_wait");
        async move { status }
    })
    .await;
    assert_eq!(status.code(), Some(0), "{status}");
    assert_eq!(scheduler_lease_holder(database_url).await, None, "{first} released the lease on its way out");

    // The next daemon runs the schedules at once.
    let mut second = wd.start("second");
    second.wait_running().await;
    let holder = wait_for(Duration::from_secs(5), "the second daemon to take the lease", || async {
        scheduler_lease_holder(database_url).await.filter(|h| *h != first)
    })
    .await;
    assert!(second.logs().contains("this daemon runs the schedules"), "{holder}:\n{}", second.logs());
    let exit = second.stop().await;
    assert!(exit.success(), "{exit}:\n{}", second.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_whose_pipes_closed_stops_cleanly_and_releases_its_lease_sqlite() {
    a_daemon_whose_pipes_closed_stops_cleanly_and_releases_its_lease(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_whose_pipes_closed_stops_cleanly_and_releases_its_lease_postgres() {
    let Some(database) = crate::harness::PgDatabase::create().await else { return };
    a_daemon_whose_pipes_closed_stops_cleanly_and_releases_its_lease(Some(&database.url)).await;
}
