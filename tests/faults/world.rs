//! One fault-suite run's world: a working directory with a config naming three subsidiaries,
//! one per transport (WinFactor over FTP to the libunftp fake, Apex over HTTP to the Apex fake,
//! Capital Depot into the outbox), each submitting on a two-second schedule; real PDFs for
//! PODs and rate confirmations; credentials in files. The world feeds load exports into
//! `inbox/loads/`, purchase reports for the invoiced loads into `inbox/<provider>/purchase/` and
//! payment reports for the financed ones into `inbox/<provider>/payment/` (each payment report
//! twice, under two names; every file written beside the inbox and renamed in), runs `factord run` as child processes with
//! their logs in `logs/`, waits until everything has settled, and then checks the invariants of
//! docs/reliability.md, "The fault tests that prove it" against the database, the fakes and the folders.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::apex::{self, Apex};
use crate::fakes::api::{API_KEY, Shared, lock};
use crate::fakes::ftp::{self as fake_ftp, TestServer};
use crate::harness::loads_csv;
use crate::pdfs;

/// A password in the database config: unused by the trust-authenticated test server, but a
/// secret all the same, which must never reach a log or a file.
pub const DB_PASSWORD: &str = "db-Pw-9c1e-never-logged";

/// (subsidiary, provider, invoice prefix).
pub const SUBSIDIARIES: [(&str, &str, &str); 3] =
    [("ftp-co", "winfactor", "FT-"), ("api-co", "apex", "AX-"), ("depot-co", "capital_depot", "CD-")];

/// The statuses of docs/design.md §2 and the forward moves between them.
const STATUSES: [&str; 6] = ["Delivered", "Released", "Queued", "Invoiced", "Financed", "Completed"];
const MOVES: [(&str, &str); 6] = [
    ("Delivered", "Released"),
    ("Released", "Queued"),
    ("Released", "Invoiced"),
    ("Queued", "Invoiced"),
    ("Invoiced", "Financed"),
    ("Financed", "Completed"),
];

/// A small seeded generator (splitmix64): the suite's random moments, replayable from the seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

/// `FAULTS_SEED` when set (to replay a run), else the clock.
pub fn seed() -> u64 {
    match std::env::var("FAULTS_SEED") {
        Ok(text) => text.trim().parse().expect("FAULTS_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_nanos() % u128::from(u64::MAX)).expect("below u64::MAX")),
    }
}

/// A `factord run` child process; SIGKILLed when dropped.
pub struct Daemon {
    child: Child,
    pub name: String,
}

impl Daemon {
    /// SIGKILL (what `Child::kill` sends on Unix), then reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running (it never exits by itself).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub pool: PgPool,
    pub ftp: TestServer,
    pub apex: Shared<Apex>,
    pub secrets: Vec<String>,
    /// Every file dropped into an inbox: (inbox folder relative to the root, file name).
    pub dropped: Vec<(String, String)>,
    /// Every load number fed, in order.
    pub loads: Vec<String>,
    /// Load exports not dropped yet: (file name, content, load numbers).
    pending: Vec<(String, String, Vec<String>)>,
    /// Invoice numbers already put in a purchase report, and in a payment report.
    reported: BTreeSet<String>,
    paid: BTreeSet<String>,
    /// How many daemons were started (their logs are `logs/<name>.log`).
    pub starts: u32,
    started: Instant,
}

/// What a run did and what the invariant check found: printed at the end of every test.
#[derive(Debug, Default)]
pub struct Figures {
    pub loads: usize,
    pub completed: usize,
    pub stuck_with_reason: usize,
    pub batches: i64,
    pub files: usize,
    pub lost: usize,
    pub doubled: usize,
    pub violations: Vec<String>,
}

impl World {
    /// A world on the PostgreSQL database at `database_url` (migrated here with `factord
    /// migrate`), with `loads` loads split into exports of `per_file`.
    #[expect(clippy::too_many_lines, reason = "the world's config file is one literal")]
    pub async fn new(database_url: &str, loads: usize, per_file: usize) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        for folder in ["secrets", "documents", "logs", "staging", "config"] {
            std::fs::create_dir_all(root.join(folder)).expect("mkdir");
        }
        let secret = |name: &str, value: &str| {
            let path = root.join("secrets").join(name);
            std::fs::write(&path, format!("{value}\n")).expect("write secret");
            path.display().to_string()
        };
        let (ftp_password, api_key, db_password) = (
            secret("ftp-password", fake_ftp::PASSWORD),
            secret("apex-key", API_KEY),
            secret("db-password", DB_PASSWORD),
        );
        std::fs::write(root.join("documents/rc.pdf"), pdfs::rate_confirmation("FAULTS", 1)).expect("rc");
        std::fs::write(root.join("documents/pod.pdf"), pdfs::pod_with_jpeg("FAULTS", &pdfs::scanned_jpeg(120, 80, 7)))
            .expect("pod");

        let ftp = TestServer::start(None);
        let (apex_url, apex) = apex::start().await;
        let p = |name: &str| root.join(name).display().to_string();
        let text = format!(
            r#"# The fault suite's config: three subsidiaries, one per transport, firing every two seconds.
[database]
url = "{database_url}"
password_file = "{db_password}"

[paths]
inbox = "{inbox}"
outbox = "{outbox}"
documents = "{documents}"
archive = "{archive}"
data = "{data}"

[log]
format = "json"
level = "info"

[intake]
scan_interval = "200ms"
quiet_period = "300ms"

[invoicing]
interval = "1s"
lease = "5s"

[submission]
lease = "5s"
# A killed daemon's schedules pass to the next one within seconds, so kills keep landing
# while batches are in flight.
scheduler_lease = "3s"

[[subsidiary]]
id = "ftp-co"
name = "Fault FTP Freight LLC"
address = "1 Test Rd, Dallas, TX 75201"
usdot = "1000001"
mc = "2000001"
timezone = "America/Chicago"
invoice_prefix = "FT-"
noa = "Pay WinFactor only."

[subsidiary.factoring]
provider = "winfactor"
schedule = "*/2 * * * * *"

[subsidiary.factoring.ftp]
host = "127.0.0.1"
port = {ftp_port}
username = "{ftp_user}"
password_file = "{ftp_password}"
directory = "/incoming"
tls = "none"

[[subsidiary]]
id = "api-co"
name = "Fault API Freight LLC"
address = "2 Test Rd, Phoenix, AZ 85016"
usdot = "1000002"
mc = "2000002"
timezone = "America/Phoenix"
invoice_prefix = "AX-"
noa = "Pay Apex Capital only."

[subsidiary.factoring]
provider = "apex"
schedule = "*/2 * * * * *"

[subsidiary.factoring.api]
base_url = "{apex_url}"
api_key_file = "{api_key}"

[[subsidiary]]
id = "depot-co"
name = "Fault Depot Freight LLC"
address = "3 Test Rd, Atlanta, GA 30303"
usdot = "1000003"
mc = "2000003"
timezone = "America/New_York"
invoice_prefix = "CD-"
noa = "Pay Capital Depot only."

[subsidiary.factoring]
provider = "capital_depot"
schedule = "*/2 * * * * *"
"#,
            inbox = p("inbox"),
            outbox = p("outbox"),
            documents = p("documents"),
            archive = p("archive"),
            data = p("data"),
            ftp_port = ftp.addr.port(),
            ftp_user = fake_ftp::USER,
        );
        let config = root.join("config/factord.toml");
        std::fs::write(&config, text).expect("write config");

        let migrate = Command::new(env!("CARGO_BIN_EXE_factord"))
            .current_dir(&root)
            .arg("--config")
            .arg(&config)
            .arg("migrate")
            .output()
            .expect("run factord migrate");
        assert!(migrate.status.success(), "factord migrate: {}", String::from_utf8_lossy(&migrate.stderr));
        let pool = PgPool::connect(database_url).await.expect("connect to the test database");

        // Load exports: loads spread over the subsidiaries and five customers, amounts varied.
        let mut pending = Vec::new();
        for (file, chunk) in (0..loads).collect::<Vec<_>>().chunks(per_file).enumerate() {
            let mut rows = Vec::new();
            let mut in_file = Vec::new();
            for &i in chunk {
                let (subsidiary, _, _) = SUBSIDIARIES[i % SUBSIDIARIES.len()];
                let number = format!("L-{i:04}");
                let customer = i % 5;
                rows.push(format!(
                    "{number},{subsidiary},BRK-{customer},Broker {customer},{mc},{dollars}.{cents:02},,,pod.pdf,rc.pdf,PO-{i},,",
                    mc = 300_000 + customer,
                    dollars = 500 + i * 7,
                    cents = i % 100,
                ));
                in_file.push(number.clone());
            }
            let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
            pending.push((format!("loads-{file:03}.csv"), loads_csv(&refs), in_file));
        }
        pending.reverse();
        World {
            dir,
            config,
            pool,
            ftp,
            apex,
            secrets: vec![fake_ftp::PASSWORD.to_string(), API_KEY.to_string(), DB_PASSWORD.to_string()],
            dropped: Vec::new(),
            loads: Vec::new(),
            pending,
            reported: BTreeSet::new(),
            paid: BTreeSet::new(),
            starts: 0,
            started: Instant::now(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `factord --config … run`, its output in `logs/<n>.log`.
    pub fn start(&mut self) -> Daemon {
        let name = format!("daemon-{:03}", self.starts);
        self.starts += 1;
        let log = std::fs::File::create(self.root().join(format!("logs/{name}.log"))).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_factord"))
            .current_dir(self.root())
            .env_remove("RUST_LOG")
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start factord");
        Daemon { child, name }
    }

    /// Writes `content` beside the inbox, then renames it into `folder` (relative to the root),
    /// so no scanner sees half a file.
    fn drop_file(&mut self, folder: &str, name: &str, content: &str) {
        let staged = self.root().join("staging").join(name);
        std::fs::write(&staged, content).expect("stage file");
        let target = self.root().join(folder);
        std::fs::create_dir_all(&target).expect("mkdir inbox");
        std::fs::rename(&staged, target.join(name)).expect("drop file");
        self.dropped.push((folder.to_string(), name.to_string()));
    }

    /// Drops the next load export, if any is left; says whether it did.
    pub fn drop_next_loads(&mut self) -> bool {
        let Some((name, content, numbers)) = self.pending.pop() else { return false };
        self.drop_file("inbox/loads", &name, &content);
        self.loads.extend(numbers);
        true
    }

    /// The factor's reports: per provider, a purchase report for the loads now Invoiced and a
    /// payment report (dropped twice, under two names) for the loads now Financed that no report
    /// named yet. Database errors (a server restarting) just mean "not this time".
    pub async fn drop_reports(&mut self) {
        let rows: Vec<(String, String, String, i64)> = match sqlx::query_as(
            "SELECT invoice_number, status, subsidiary, amount_cents FROM loads \
             WHERE status IN ('Invoiced', 'Financed') AND invoice_number IS NOT NULL ORDER BY invoice_number",
        )
        .fetch_all(&self.pool)
        .await
        {
            Ok(rows) => rows,
            Err(_) => return,
        };
        let mut files: BTreeMap<(&str, &str), String> = BTreeMap::new();
        let money = |cents: i64| format!("{}.{:02}", cents / 100, cents % 100);
        for (invoice, status, subsidiary, cents) in rows {
            let Some((_, provider, _)) = SUBSIDIARIES.iter().find(|(s, _, _)| *s == subsidiary) else { continue };
            if status == "Invoiced" && self.reported.insert(invoice.clone()) {
                let text =
                    files.entry((*provider, "purchase")).or_insert_with(|| "Invoice Number,Advance\n".to_string());
                text.push_str(&format!("{invoice},{}\n", money(cents * 9 / 10)));
            }
            if status == "Financed" && self.paid.insert(invoice.clone()) {
                let text = files
                    .entry((*provider, "payment"))
                    .or_insert_with(|| "Invoice Number,Paid Amount,Payment Date,Check #\n".to_string());
                text.push_str(&format!("{invoice},{},2026-11-30,CHK-{invoice}\n", money(cents)));
            }
        }
        for ((provider, kind), text) in files {
            let name = format!("{kind}-{:03}.csv", self.dropped.len());
            self.drop_file(&format!("inbox/{provider}/{kind}"), &name, &text);
            if kind == "payment" {
                self.drop_file(&format!("inbox/{provider}/{kind}"), &format!("copy-of-{name}"), &text);
            }
        }
    }

    /// Counts of loads per status (for progress messages and the settle check).
    pub async fn counts(&self) -> Option<BTreeMap<String, i64>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM loads GROUP BY status").fetch_all(&self.pool).await.ok()?;
        Some(rows.into_iter().collect())
    }

    /// Settled: every load fed is in the database, and each is Completed (financed and paid)
    /// or stopped with a recorded reason (an open exception); no file is left in an inbox.
    async fn settled(&self) -> Option<()> {
        if !self.pending.is_empty() || !self.inbox_leftovers().is_empty() {
            return None;
        }
        let (total, open): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE status <> 'Completed' AND NOT EXISTS \
             (SELECT 1 FROM load_exceptions e WHERE e.load_id = loads.id AND e.cleared_at IS NULL)) FROM loads",
        )
        .fetch_one(&self.pool)
        .await
        .ok()?;
        (total == self.loads.len() as i64 && open == 0).then_some(())
    }

    /// Feeds reports and polls until [`Self::settled`], failing after `deadline` or as
    /// soon as every daemon has exited (a daemon never exits by itself).
    pub async fn settle(&mut self, daemons: &mut [&mut Daemon], deadline: Duration) {
        let start = Instant::now();
        loop {
            self.drop_reports().await;
            if self.settled().await.is_some() {
                return;
            }
            assert!(
                daemons.iter_mut().any(|d| d.alive()),
                "every daemon exited; see {}",
                self.root().join("logs").display()
            );
            assert!(
                start.elapsed() < deadline,
                "not settled after {deadline:?}: {:?}; inbox left: {:?}; logs in {}",
                self.counts().await,
                self.inbox_leftovers(),
                self.root().join("logs").display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Regular files still in an inbox folder or its `processing/` (not in `failed/`).
    fn inbox_leftovers(&self) -> Vec<PathBuf> {
        files_under(&self.root().join("inbox"))
            .into_iter()
            .filter(|f| !f.components().any(|c| c.as_os_str() == "failed"))
            .collect()
    }

    /// What was in flight when a daemon died: batches left `sending` and files left in a
    /// `processing/` folder.
    pub async fn in_flight(&self) -> (i64, usize) {
        let sending: i64 = sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM batches WHERE status = 'sending'")
            .fetch_one(&self.pool)
            .await
            .map_or(0, |r| r.0);
        let processing = files_under(&self.root().join("inbox"))
            .iter()
            .filter(|f| f.components().any(|c| c.as_os_str() == "processing"))
            .count();
        (sending, processing)
    }

    /// Waits until a daemon holds a file: one in a `processing/` folder (taken from an inbox and
    /// not yet finished). Polls every 2 ms, because a small file is in hand for only tens of
    /// milliseconds; says whether one was seen before `deadline`.
    pub async fn file_in_hand(&self, deadline: Duration) -> bool {
        let start = Instant::now();
        let inbox = self.root().join("inbox");
        while start.elapsed() < deadline {
            if files_under(&inbox).iter().any(|f| f.components().any(|c| c.as_os_str() == "processing")) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        false
    }

    /// How many scheduled submissions the daemons logged, over all subsidiaries.
    pub fn fires(&self) -> usize {
        self.logged_fires().values().sum()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Checks every invariant; returns the figures with every violation found (the caller
    /// prints them, then asserts there is none).
    #[expect(clippy::too_many_lines, reason = "one invariant after another, each commented, all reported together")]
    pub async fn check(&self) -> Figures {
        let mut figures = Figures { loads: self.loads.len(), files: self.dropped.len(), ..Figures::default() };
        let v = &mut figures.violations;

        // 1. Every load exists once, in one of the statuses.
        let loads: Vec<(i64, String, String, Option<String>, String)> = sqlx::query_as(
            "SELECT id, load_number, status, invoice_number, subsidiary FROM loads ORDER BY load_number",
        )
        .fetch_all(&self.pool)
        .await
        .expect("loads");
        let by_number: BTreeMap<&str, &(i64, String, String, Option<String>, String)> =
            loads.iter().map(|l| (l.1.as_str(), l)).collect();
        for number in &self.loads {
            if !by_number.contains_key(number.as_str()) {
                figures.lost += 1;
                v.push(format!("load {number} was fed but is not in the database"));
            }
        }
        let fed: BTreeSet<&str> = self.loads.iter().map(String::as_str).collect();
        for (_, number, status, _, _) in &loads {
            if !fed.contains(number.as_str()) {
                v.push(format!("load {number} is in the database but was never fed"));
            }
            if !STATUSES.contains(&status.as_str()) {
                v.push(format!("load {number} has the unknown status {status:?}"));
            }
        }
        let open: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT l.load_number FROM loads l JOIN load_exceptions e ON e.load_id = l.id \
             WHERE e.cleared_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await
        .expect("exceptions");
        let stuck: BTreeSet<String> = open.into_iter().map(|(n,)| n).collect();
        figures.completed = loads.iter().filter(|l| l.2 == "Completed").count();
        figures.stuck_with_reason = loads.iter().filter(|l| l.2 != "Completed" && stuck.contains(&l.1)).count();

        // 2. History moves forward only: a chain from nothing to the current status.
        let history: Vec<(i64, Option<String>, String)> =
            sqlx::query_as("SELECT load_id, from_status, to_status FROM load_history ORDER BY load_id, id")
                .fetch_all(&self.pool)
                .await
                .expect("history");
        let mut chains: BTreeMap<i64, Vec<(Option<String>, String)>> = BTreeMap::new();
        for (load, from, to) in history {
            chains.entry(load).or_default().push((from, to));
        }
        for (id, number, status, _, _) in &loads {
            let chain = chains.remove(id).unwrap_or_default();
            let mut at: Option<&str> = None;
            for (step, (from, to)) in chain.iter().enumerate() {
                let ok = match (step, from.as_deref(), at) {
                    (0, None, None) => matches!(to.as_str(), "Released" | "Delivered"),
                    (_, Some(from), Some(at)) => from == at && MOVES.contains(&(from, to.as_str())),
                    _ => false,
                };
                if !ok {
                    v.push(format!("load {number}: history step {step} {from:?} → {to} breaks the chain {chain:?}"));
                    break;
                }
                at = Some(to.as_str());
            }
            if at != Some(status.as_str()) {
                v.push(format!("load {number}: history ends at {at:?} but the load is {status}"));
            }
        }
        if !chains.is_empty() {
            v.push(format!("history rows for loads that do not exist: {:?}", chains.keys().collect::<Vec<_>>()));
        }

        // 3. At most one effective submission per invoice, at the factor's side; one for every
        //    invoice the database says was submitted.
        let mut effective: BTreeMap<String, usize> = BTreeMap::new();
        let (ftp_counts, ftp_violations) = self.ftp_submissions();
        v.extend(ftp_violations);
        let apex_counts = lock(&self.apex).effective();
        for (invoice, count) in ftp_counts.iter().chain(apex_counts.iter()).chain(self.outbox_submissions().iter()) {
            *effective.entry(invoice.clone()).or_insert(0) += count;
        }
        {
            let apex = lock(&self.apex);
            if apex.unauthorized > 0 {
                v.push(format!("Apex saw {} requests without the API key", apex.unauthorized));
            }
        }
        for (_, number, status, invoice, _) in &loads {
            let submitted = matches!(status.as_str(), "Invoiced" | "Financed" | "Completed");
            let count = invoice.as_ref().map_or(0, |i| effective.remove(i).unwrap_or(0));
            if count > 1 {
                figures.doubled += count - 1;
                v.push(format!("load {number} ({invoice:?}) reached its factor {count} times"));
            }
            if submitted && count == 0 {
                figures.lost += 1;
                v.push(format!("load {number} ({invoice:?}) is {status} but its factor never received it"));
            }
            if !submitted && count > 0 && !stuck.contains(number) {
                v.push(format!("load {number} ({invoice:?}) is at its factor but still {status} with no reason"));
            }
        }
        for (invoice, count) in effective {
            v.push(format!("invoice {invoice} reached a factor {count} times but no load has it"));
        }
        let twice: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT load_id, COUNT(*) FROM batch_items WHERE outcome = 'accepted' GROUP BY load_id HAVING COUNT(*) > 1",
        )
        .fetch_all(&self.pool)
        .await
        .expect("batch items");
        for (load, count) in twice {
            v.push(format!("load id {load} is accepted in {count} batches"));
        }
        // One batch per (subsidiary, fire): a fire taken twice would show as two batches (the
        // loads fed here never exceed a batch's size limit within one fire).
        let fires: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT subsidiary, cause, COUNT(*) FROM batches WHERE cause LIKE 'schedule %' \
             GROUP BY subsidiary, cause HAVING COUNT(*) > 1",
        )
        .fetch_all(&self.pool)
        .await
        .expect("batches per fire");
        for (subsidiary, cause, count) in fires {
            v.push(format!("{subsidiary}: {count} batches for one {cause}"));
        }
        figures.batches =
            sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM batches").fetch_one(&self.pool).await.expect("batches").0;
        for ((subsidiary, fire), count) in self.logged_fires() {
            if count > 1 {
                v.push(format!("{subsidiary}: the fire at {fire} was submitted {count} times (daemon logs)"));
            }
        }

        // Each purchase and payment applied once: one purchase per financed load, payments
        // adding up to the amount of a completed one.
        let money: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT l.load_number, l.status, l.amount_cents, \
             (SELECT COUNT(*) FROM purchases p WHERE p.load_id = l.id), \
             (SELECT COALESCE(SUM(paid_cents), 0)::BIGINT FROM payments y WHERE y.load_id = l.id) FROM loads l",
        )
        .fetch_all(&self.pool)
        .await
        .expect("purchases and payments");
        for (number, status, amount, purchases, paid) in money {
            let (want_purchases, want_paid) = match status.as_str() {
                "Financed" => (1, 0),
                "Completed" => (1, amount),
                _ => (0, 0),
            };
            if (purchases, paid) != (want_purchases, want_paid) {
                figures.doubled += usize::from(purchases > 1 || paid > amount);
                v.push(format!(
                    "load {number} is {status} with {purchases} purchases and {paid} cents paid of {amount}"
                ));
            }
        }

        // 4. Every dropped file ends in exactly one of archive/ and failed/; none processed twice.
        v.extend(self.file_violations());
        for table in ["inbox_files", "report_files"] {
            let sql = match table {
                "inbox_files" => "SELECT file_name, COUNT(*) FROM inbox_files GROUP BY file_name HAVING COUNT(*) > 1",
                _ => {
                    "SELECT file_name, COUNT(*) FROM report_files WHERE refused IS NULL \
                     GROUP BY file_name HAVING COUNT(*) > 1"
                }
            };
            let twice: Vec<(String, i64)> = sqlx::query_as(sql).fetch_all(&self.pool).await.expect(table);
            for (name, count) in twice {
                v.push(format!("{name} was processed {count} times ({table})"));
            }
        }

        // 5. No secret in any log or generated file.
        let mut scanned = files_under(self.root());
        scanned.extend(files_under(self.ftp.root.path()));
        for file in scanned {
            let relative = file.strip_prefix(self.root()).unwrap_or(&file);
            if relative.starts_with("secrets") || relative.starts_with("config") {
                continue;
            }
            let bytes = std::fs::read(&file).unwrap_or_default();
            for secret in &self.secrets {
                if contains(&bytes, secret.as_bytes()) {
                    v.push(format!("{} holds a secret ({}…)", file.display(), &secret[..4]));
                }
            }
        }
        figures
    }

    /// Per invoice, how many batch schedules on the FTP server list it (each final CSV is one
    /// effective submission of its invoices), and what is wrong there: a schedule renamed into
    /// place twice (the factor would read it twice), an invoice listed without its packet.
    fn ftp_submissions(&self) -> (BTreeMap<String, usize>, Vec<String>) {
        let mut counts = BTreeMap::new();
        let mut violations = Vec::new();
        let mut renamed: BTreeMap<String, usize> = BTreeMap::new();
        for event in self.ftp.events() {
            if let libunftp::notification::DataEvent::Renamed { to, .. } = event {
                *renamed.entry(fake_ftp::base_name(&to)).or_insert(0) += 1;
            }
        }
        for (name, count) in &renamed {
            if name.ends_with(".csv") && *count > 1 {
                violations.push(format!("FTP: schedule {name} was renamed into place {count} times"));
            }
        }
        let names: BTreeSet<String> = self.ftp.names().into_iter().collect();
        for name in names.iter().filter(|n| n.ends_with(".csv") && !n.starts_with('.')) {
            // `<subsidiary>_<date>_<number>_<uid8>.csv`: the batch's packets are `<invoice>_<uid8>.pdf`.
            let uid = batch_uid(name.trim_end_matches(".csv"));
            for invoice in schedule_invoices(&self.ftp.read(name)) {
                if !names.contains(&format!("{invoice}_{uid}.pdf")) {
                    violations.push(format!("FTP: {name} lists {invoice} but its packet is not there"));
                }
                *counts.entry(invoice).or_insert(0) += 1;
            }
        }
        (counts, violations)
    }

    /// Per invoice, how many published outbox batch folders hold its packet (packets are
    /// `<invoice>_<uid8>.pdf`, the uid8 also ending the folder's name).
    fn outbox_submissions(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        let dir = self.root().join("outbox/depot-co/capital_depot");
        for folder in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = folder.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let uid = batch_uid(&name);
            for file in std::fs::read_dir(folder.path()).into_iter().flatten().flatten() {
                let file = file.file_name().to_string_lossy().into_owned();
                if let Some(packet) = file.strip_suffix(".pdf") {
                    let invoice = packet.strip_suffix(&format!("_{uid}")).unwrap_or(packet);
                    *counts.entry(invoice.to_string()).or_insert(0) += 1;
                }
            }
        }
        counts
    }

    /// (subsidiary, fire) → how many daemons logged a scheduled submission for it.
    fn logged_fires(&self) -> BTreeMap<(String, String), usize> {
        let mut fires = BTreeMap::new();
        for log in files_under(&self.root().join("logs")) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            for line in text.lines() {
                let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else { continue };
                if event["message"] == "scheduled submission" {
                    let field = |k: &str| event[k].as_str().unwrap_or_default().to_string();
                    *fires.entry((field("subsidiary"), field("fire"))).or_insert(0) += 1;
                }
            }
        }
        fires
    }

    /// Counts how many log lines across every daemon log contain `needle`.
    pub fn log_lines(&self, needle: &str) -> usize {
        files_under(&self.root().join("logs"))
            .iter()
            .map(|log| std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| l.contains(needle)).count())
            .sum()
    }

    fn file_violations(&self) -> Vec<String> {
        let mut violations = Vec::new();
        for left in self.inbox_leftovers() {
            violations.push(format!("{} is left in the inbox", left.display()));
        }
        // Archived inputs are `<YYYYMMDDTHHMMSSZ>-<name>` (`.<n>` when taken); result files
        // beside them carry a further suffix. Failed inputs keep their name in `failed/`.
        let archived: Vec<String> = files_under(&self.root().join("archive"))
            .iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .filter_map(|n| n.get(17..).filter(|_| n.as_bytes().get(16) == Some(&b'-')).map(str::to_string))
            .collect();
        let failed: Vec<String> = files_under(&self.root().join("inbox"))
            .iter()
            .filter(|f| f.components().any(|c| c.as_os_str() == "failed"))
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        let is = |candidate: &str, name: &str| {
            candidate == name
                || candidate
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        for (folder, name) in &self.dropped {
            let in_archive = archived.iter().filter(|a| is(a, name)).count();
            let in_failed = failed.iter().filter(|f| is(f, name)).count();
            if in_archive + in_failed != 1 {
                violations.push(format!("{folder}/{name}: {in_archive} in archive/, {in_failed} in failed/"));
            } else if in_failed == 1 {
                violations.push(format!("{folder}/{name}: a valid file ended in failed/"));
            }
        }
        violations
    }
}

impl Figures {
    /// Prints the figures and every violation, then fails if there is any.
    pub fn assert_clean(&self, test: &str, extra: &str) {
        eprintln!(
            "faults[{test}]: {extra}, loads={}, completed={}, stuck_with_reason={}, batches={}, files={}, lost={}, doubled={}",
            self.loads, self.completed, self.stuck_with_reason, self.batches, self.files, self.lost, self.doubled
        );
        assert!(
            self.violations.is_empty() && self.lost == 0 && self.doubled == 0,
            "{} invariant violations:\n{}",
            self.violations.len(),
            self.violations.join("\n")
        );
    }
}

/// The invoice numbers a WinFactor schedule lists (the totals line is not one).
fn schedule_invoices(csv: &[u8]) -> Vec<String> {
    csv::Reader::from_reader(csv)
        .records()
        .filter_map(|r| r.ok())
        .filter_map(|r| r.get(0).map(str::to_string))
        .filter(|first| !first.is_empty() && !first.starts_with("TOTAL"))
        .collect()
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else { return true };
    haystack.iter().enumerate().any(|(i, &b)| b == first && haystack[i + 1..].starts_with(rest))
}

/// The batch's short uid at the end of a stem `<subsidiary>_<date>_<number>_<uid8>`.
fn batch_uid(stem: &str) -> &str {
    stem.rsplit_once('_').map_or("", |(_, uid)| uid)
}
