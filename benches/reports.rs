//! Purchase report throughput and memory: for N rows (env `REPORTS_N`, a comma list, default
//! `1000,10000,100000`) on SQLite and on PostgreSQL, seeds N Invoiced loads in a `sent` batch
//! of capital_depot and applies a generated N-row purchase CSV end to end with
//! `reports::ingest_file_to` as the inbox does (the file streamed from disk: read, header
//! match, parse, plan and write a chunk at a time in the one transaction that moves the loads,
//! writes history, purchases and the file's record; the result file written as it goes).
//! Timed from the CSV file on disk to the result file written and synced; generating the CSV
//! is not. Reports rows/s, peak RSS during the run (`VmHWM`, reset before it through
//! `/proc/self/clear_refs`) and its growth above the RSS the run started with, and the split: parse (read + header + parse, timed on its own on
//! the same bytes), SQL (every statement of the run, from sqlx's statement log) and the rest
//! (planning, result file).
//!
//! In the same run, on another N loads and the same CSV (another prefix), the hand-written SQL
//! limit: on PostgreSQL one transaction of `COPY` into a temp table, one `UPDATE loads … FROM`
//! and one `INSERT INTO load_history … SELECT`; on SQLite the same with the temp table filled
//! from the parsed CSV as one JSON array (`json_each`). The limit does not write purchases,
//! row outcomes or the file's record, which factord does. Target: factord within 1.2× of the
//! limit at 100k rows, and memory growth under 64 MB there, growing less than the rows.
//!
//! Each size runs in rounds (env `REPORTS_ROUNDS`, default 3), each on fresh loads: factord and
//! the limit once each, the order alternating from round to round (the second run of a round
//! finds the heap the first one grew and the database's pages cached). The table gives the
//! medians and the range of the rounds' ratios: on a shared 2-core machine one run's time
//! varies by a third.
//!
//! PostgreSQL: a database `factord_bench_<pid>` is created from the admin URL in
//! `REPORTS_DATABASE_URL` (else `TEST_DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/postgres`) and dropped at the end; if the server does
//! not answer, PostgreSQL is skipped. `REPORTS_BACKENDS=sqlite` (or `postgres`) runs one
//! backend. `REPORTS_PG_LOG=1` has the server log every statement of that database with its
//! duration (`log_min_duration_statement = 0`), for server-side times (a superuser's admin
//! URL; the log is wherever the server writes it). Run with
//! `cargo bench --bench reports`.

#[path = "../tests/common/seed.rs"]
#[allow(dead_code, reason = "shared test helpers: the bench uses a part of them")]
mod seed;

use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use factord::config::{Environment, Settings};
use factord::reports::read::Limits;
use factord::reports::{ReportKind, ResultOut, columns, ingest_file_to, parse, read};
use factord::store::Store;
use seed::Seed;
use sqlx::Connection;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

type BenchError = Box<dyn Error + Send + Sync>;

const PROVIDER: &str = "capital_depot";
const AMOUNT_CENTS: i64 = 100_000;
const ADVANCE_CENTS: i64 = 97_000;
const FEE_CENTS: i64 = 3_000;
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

const SUBSIDIARY: &str = r#"
[[subsidiary]]
id = "acme-east"
name = "ACME Freight East LLC"
address = "100 Main St, Dallas, TX 75201"
usdot = "1234567"
mc = "765432"
timezone = "America/Chicago"
invoice_prefix = "AE-"
noa = "Pay Capital Depot only."

[subsidiary.factoring]
provider = "capital_depot"
schedule = "0 0 16 * * Mon-Fri"
"#;

// ---- sqlx statement log: every statement's time while recording is on ----

static RECORDING: AtomicBool = AtomicBool::new(false);
static STATEMENTS: Mutex<Vec<Statement>> = Mutex::new(Vec::new());

#[derive(Default, Clone)]
struct Statement {
    sql: String,
    seconds: f64,
    rows: u64,
}

impl tracing::field::Visit for Statement {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        // The first words are enough to name a statement (a multi-row VALUES runs to 40 kB).
        let head: String = value.chars().take(200).collect();
        let text = head.split_whitespace().collect::<Vec<_>>().join(" ");
        match field.name() {
            "db.statement" if !text.is_empty() => self.sql = text,
            "summary" if self.sql.is_empty() => self.sql = text,
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.seconds = value;
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if matches!(field.name(), "rows_affected" | "rows_returned") {
            self.rows = self.rows.max(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if matches!(field.name(), "summary" | "db.statement") {
            let text = format!("{value:?}");
            self.record_str(field, text.trim_matches('"'));
        }
    }
}

struct StatementLog;

impl<S: tracing::Subscriber> Layer<S> for StatementLog {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" || !RECORDING.load(Ordering::Relaxed) {
            return;
        }
        let mut statement = Statement::default();
        event.record(&mut statement);
        if let Ok(mut log) = STATEMENTS.lock() {
            log.push(statement);
        }
    }
}

fn start_recording() {
    if let Ok(mut log) = STATEMENTS.lock() {
        log.clear();
    }
    RECORDING.store(true, Ordering::Relaxed);
}

fn stop_recording() -> Vec<Statement> {
    RECORDING.store(false, Ordering::Relaxed);
    STATEMENTS.lock().map(|mut log| std::mem::take(&mut *log)).unwrap_or_default()
}

// ---- memory ----

/// A line of /proc/self/status in MiB (`VmRSS`, `VmHWM`), or 0 off Linux.
fn memory_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Resets the peak (`VmHWM`) to the current RSS. `false` when the kernel does not allow it.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

// ---- data ----

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// An N-row purchase report for the seed's loads, as a factor sends it.
fn purchase_csv(seed: &Seed<'_>) -> Vec<u8> {
    let mut out = String::with_capacity(96 * (usize::try_from(seed.count).unwrap_or(0) + 1));
    out.push_str("Invoice Number,Load Number,Invoice Amount,Advance Amount,Fee,Reserve,Purchase Date,Schedule #\n");
    for i in 1..=seed.count {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},11/30/2026,S-{}",
            seed.invoice_number(i),
            seed.load_number(i),
            money(seed.amount_cents),
            money(ADVANCE_CENTS),
            money(FEE_CENTS),
            money(AMOUNT_CENTS - ADVANCE_CENTS - FEE_CENTS),
            1 + i / 500
        );
    }
    out.into_bytes()
}

fn seed_for<'a>(prefix: &'a str, count: i64) -> Seed<'a> {
    Seed { subsidiary: "acme-east", provider: PROVIDER, prefix, count, amount_cents: AMOUNT_CENTS, status: "Invoiced" }
}

// ---- the hand-written limits ----

/// PostgreSQL: COPY into a temp table, one UPDATE, one history INSERT, in one transaction.
async fn limit_postgres(store: &Store, csv: &[u8]) -> Result<(u64, u64), BenchError> {
    let Store::Postgres(pool) = store else { return Err("not PostgreSQL".into()) };
    let mut tx = pool.begin().await?;
    sqlx::query(
        "CREATE TEMP TABLE purchase_tmp (invoice_number TEXT, load_number TEXT, amount NUMERIC(14, 2), \
         advance NUMERIC(14, 2), fee NUMERIC(14, 2), reserve NUMERIC(14, 2), purchase_date DATE, schedule TEXT) \
         ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("SET LOCAL DateStyle = 'ISO, MDY'").execute(&mut *tx).await?;
    let mut copy = tx.copy_in_raw("COPY purchase_tmp FROM STDIN (FORMAT csv, HEADER true)").await?;
    copy.send(csv).await?;
    let copied = copy.finish().await?;
    let moved = sqlx::query(
        "UPDATE loads SET status = 'Financed', updated_at = now() FROM purchase_tmp t \
         WHERE loads.invoice_number = t.invoice_number AND loads.status = 'Invoiced'",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let history = sqlx::query(
        "INSERT INTO load_history (load_id, from_status, to_status, at, cause) \
         SELECT l.id, 'Invoiced', 'Financed', now(), 'limit' FROM loads l JOIN purchase_tmp t \
         ON l.invoice_number = t.invoice_number",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if copied != moved {
        return Err(format!("limit: copied {copied} rows but moved {moved}").into());
    }
    Ok((moved, history))
}

/// SQLite: the CSV parsed into one JSON array, a temp table filled from it with `json_each`,
/// one UPDATE, one history INSERT, in one transaction.
async fn limit_sqlite(store: &Store, csv: &[u8]) -> Result<(u64, u64), BenchError> {
    let Store::Sqlite(pool) = store else { return Err("not SQLite".into()) };
    let mut reader = csv::Reader::from_reader(csv);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record?;
        let field = |i: usize| record.get(i).unwrap_or_default().to_string();
        rows.push([field(0), field(1), field(2), field(3), field(4), field(5), field(6), field(7)]);
    }
    let json = serde_json::to_string(&rows)?;
    let now = Utc::now();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(
        "CREATE TEMP TABLE purchase_tmp (invoice_number TEXT, load_number TEXT, amount TEXT, advance TEXT, \
         fee TEXT, reserve TEXT, purchase_date TEXT, schedule TEXT)",
    )
    .execute(&mut *tx)
    .await?;
    let filled = sqlx::query(
        "INSERT INTO purchase_tmp SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
         value ->> 5, value ->> 6, value ->> 7 FROM json_each($1)",
    )
    .bind(&json)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let moved = sqlx::query(
        "UPDATE loads SET status = 'Financed', updated_at = $1 FROM purchase_tmp t \
         WHERE loads.invoice_number = t.invoice_number AND loads.status = 'Invoiced'",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let history = sqlx::query(
        "INSERT INTO load_history (load_id, from_status, to_status, at, cause) \
         SELECT l.id, 'Invoiced', 'Financed', $1, 'limit' FROM loads l JOIN purchase_tmp t \
         ON l.invoice_number = t.invoice_number",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DROP TABLE temp.purchase_tmp").execute(&mut *tx).await?;
    tx.commit().await?;
    if filled != moved {
        return Err(format!("limit: filled {filled} rows but moved {moved}").into());
    }
    Ok((moved, history))
}

// ---- one backend ----

/// One timed run: factord's or the limit's.
struct Run {
    time: Duration,
    /// Peak RSS during the run (VmHWM after a reset), and the RSS when it started.
    peak_mib: f64,
    base_mib: f64,
    statements: Vec<Statement>,
}

/// One size's rounds: factord and the limit once each per round, on fresh loads.
struct Figures {
    backend: &'static str,
    rows: usize,
    parse: Duration,
    factord: Vec<Run>,
    limit: Vec<Run>,
}

impl Figures {
    /// factord's time over the limit's in one round.
    fn ratio(&self, round: usize) -> f64 {
        self.factord[round].time.as_secs_f64() / self.limit[round].time.as_secs_f64().max(f64::EPSILON)
    }

    /// The rounds' ratios, sorted.
    fn ratios(&self) -> Vec<f64> {
        let mut ratios: Vec<f64> = (0..self.factord.len()).map(|round| self.ratio(round)).collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    }

    /// The round whose ratio is the median one (its statements are printed).
    fn median_round(&self) -> usize {
        let median = median(&self.ratios());
        (0..self.factord.len())
            .min_by(|&a, &b| (self.ratio(a) - median).abs().total_cmp(&(self.ratio(b) - median).abs()))
            .unwrap_or(0)
    }
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn median_time(runs: &[Run]) -> Duration {
    let mut seconds: Vec<f64> = runs.iter().map(|r| r.time.as_secs_f64()).collect();
    seconds.sort_by(f64::total_cmp);
    Duration::from_secs_f64(median(&seconds))
}

/// Times `work`, with its statements and its peak RSS.
async fn timed<T, F: Future<Output = Result<T, BenchError>>>(work: F) -> Result<(T, Run), BenchError> {
    let resettable = reset_peak();
    let base_mib = memory_mib("VmRSS");
    start_recording();
    let started = Instant::now();
    let out = work.await?;
    let time = started.elapsed();
    let statements = stop_recording();
    let peak_mib = if resettable { memory_mib("VmHWM") } else { f64::NAN };
    Ok((out, Run { time, peak_mib, base_mib, statements }))
}

fn write_config(root: &Path, database_url: &str) -> Result<std::path::PathBuf, BenchError> {
    let config_dir = root.join("config");
    std::fs::create_dir_all(&config_dir)?;
    let path = config_dir.join("factord.toml");
    let p = |name: &str| root.join(name).display().to_string();
    let text = format!(
        "[database]\nurl = \"{database_url}\"\n\n[paths]\ninbox = \"{}\"\noutbox = \"{}\"\ndocuments = \"{}\"\n\
         archive = \"{}\"\ndata = \"{}\"\n\n\
         # A 1M-row report is about 82 MB: above the default limits.\n\
         [intake]\nmax_file_bytes = 268435456\nmax_rows = 2000000\n{SUBSIDIARY}",
        p("inbox"),
        p("outbox"),
        p("documents"),
        p("archive"),
        p("data"),
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Read + header match + parse of the bytes, as `ingest_bytes` does them, on their own.
fn parse_only(settings: &Settings, bytes: &[u8], n: usize) -> Result<Duration, BenchError> {
    let report_settings = settings.providers.get(PROVIDER).map(|p| p.reports.clone()).unwrap_or_default();
    let limits = Limits::from_settings(&settings.intake);
    let started = Instant::now();
    let rows = read::read_rows(bytes, &report_settings, &limits)?;
    let (header, found) = columns::find_header(&rows, Some(ReportKind::Purchase), &report_settings)?;
    let names: Vec<String> = rows[header].cells.iter().map(read::Cell::text).collect();
    let report = parse::parse_rows(rows, header, &found, &names)?;
    let elapsed = started.elapsed();
    if report.rows.len() != n {
        return Err(format!("parsed {} rows, expected {n}", report.rows.len()).into());
    }
    Ok(elapsed)
}

#[expect(clippy::too_many_lines, reason = "the rounds of one backend in order: seed, run both, check, print")]
async fn run_backend(
    backend: &'static str,
    database_url: Option<String>,
    sizes: Vec<usize>,
    rounds: usize,
) -> Result<Vec<Figures>, BenchError> {
    let temp = tempfile::tempdir()?;
    let database_url =
        database_url.unwrap_or_else(|| format!("sqlite://{}", temp.path().join("data/factord.db").display()));
    let config_path = write_config(temp.path(), &database_url)?;
    let settings = Settings::load(&config_path, &Environment::new()).map_err(|e| format!("{e:?}"))?;
    let store = Store::connect(&settings.database).await?;
    store.migrate().await?;
    let mut figures = Vec::new();
    for n in sizes {
        let count = i64::try_from(n)?;
        let mut size = Figures { backend, rows: n, parse: Duration::ZERO, factord: Vec::new(), limit: Vec::new() };
        for round in 0..rounds {
            let (ours_prefix, limit_prefix) = (format!("R{n}.{round}-"), format!("L{n}.{round}-"));
            let ours = seed_for(&ours_prefix, count);
            let limit = seed_for(&limit_prefix, count);
            seed::seed(&store, &ours).await;
            seed::seed(&store, &limit).await;
            match &store {
                // As autovacuum would have by the time a factor's report arrives.
                Store::Postgres(pool) => {
                    sqlx::query("ANALYZE").execute(pool).await?;
                }
                // As SQLite's automatic checkpoints would have: the seeded loads in the
                // database file, not still in the write-ahead log.
                Store::Sqlite(pool) => {
                    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await?;
                }
            }
            let csv = purchase_csv(&ours);
            let limit_csv = purchase_csv(&limit);
            if round == 0 {
                size.parse = parse_only(&settings, &csv, n)?;
            }
            // The order alternates: the second run of a round finds the heap the first one
            // grew, and the database's files warm.
            let factord_first = round % 2 == 0;
            let file_name = format!("purchase-{n}-{round}.csv");
            let result_path = temp.path().join(format!("purchase-{n}-{round}.result.csv"));
            let report_path = temp.path().join(&file_name);
            std::fs::write(&report_path, &csv)?;
            drop(csv);
            let factord_run = || {
                timed(async {
                    // As the inbox does: the file streamed from disk, the result file written
                    // as the rows are applied.
                    let result = std::fs::File::create(&result_path)?;
                    let mut out = ResultOut::File(std::io::BufWriter::new(result));
                    let summary =
                        ingest_file_to(&store, &settings, &report_path, PROVIDER, Some(ReportKind::Purchase), &mut out)
                            .await?;
                    if let ResultOut::File(file) = out {
                        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                    }
                    Ok(summary)
                })
            };
            let limit_run = || {
                timed(async {
                    match backend {
                        "postgres" => limit_postgres(&store, &limit_csv).await,
                        _ => limit_sqlite(&store, &limit_csv).await,
                    }
                })
            };
            let ((summary, factord), ((moved, history), limit)) = if factord_first {
                let f = factord_run().await?;
                (f, limit_run().await?)
            } else {
                let l = limit_run().await?;
                (factord_run().await?, l)
            };
            std::fs::remove_file(&report_path)?;
            if let Some(reason) = &summary.refused {
                return Err(format!("{backend} {n}: the file was refused: {reason}").into());
            }
            if summary.applied != n || summary.rows != n {
                return Err(format!(
                    "{backend} {n}: {} rows, {} applied, {} skipped, {} rejected",
                    summary.rows, summary.applied, summary.skipped, summary.rejected
                )
                .into());
            }
            if u64::try_from(count).ok() != Some(moved) || u64::try_from(count).ok() != Some(history) {
                return Err(
                    format!("{backend} {n}: the limit moved {moved} loads, wrote {history} history rows").into()
                );
            }
            println!(
                "  {backend:<8} {n:>7} rows, round {}: factord {:.3} s, limit {:.3} s ({} first)",
                round + 1,
                factord.time.as_secs_f64(),
                limit.time.as_secs_f64(),
                if factord_first { "factord" } else { "limit" }
            );
            size.factord.push(factord);
            size.limit.push(limit);
        }
        figures.push(size);
    }
    store.close().await;
    Ok(figures)
}

fn admin_url() -> String {
    std::env::var("REPORTS_DATABASE_URL")
        .or_else(|_| std::env::var("TEST_DATABASE_URL"))
        .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string())
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    match base[scheme_end..].find('/') {
        Some(slash) => format!("{}/{name}{query}", &base[..scheme_end + slash]),
        None => format!("{base}/{name}{query}"),
    }
}

/// Runs PostgreSQL in a database of its own, dropped afterwards even when the run failed.
async fn run_postgres(sizes: Vec<usize>, rounds: usize) -> Result<Vec<Figures>, BenchError> {
    let admin_url = admin_url();
    let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(admin) => admin,
        Err(error) => {
            println!("PostgreSQL skipped: cannot connect to the admin URL: {error}");
            return Ok(Vec::new());
        }
    };
    let name = format!("factord_bench_{}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
    if std::env::var("REPORTS_PG_LOG").is_ok() {
        // Every statement's time as the server measured it, in the server's log: a figure the
        // load of a shared machine distorts less than the client's. Not the bound values: a
        // chunk's row outcomes are some 700 kB of text.
        for setting in ["log_min_duration_statement = 0", "log_parameter_max_length = 0"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE {name} SET {setting}")))
                .execute(&mut admin)
                .await?;
        }
        println!("PostgreSQL: every statement of database {name} is logged with its duration");
    }
    let url = with_database(&admin_url, &name);
    let outcome = tokio::spawn(run_backend("postgres", Some(url), sizes, rounds)).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await?;
    match outcome {
        Ok(result) => result,
        Err(error) => Err(format!("the PostgreSQL run failed: {error}").into()),
    }
}

// ---- output ----

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

/// Prints the statements, consecutive runs of the same statement (a multi-row insert's chunks)
/// as one line with their count.
fn print_statements(title: &str, total: Duration, statements: &[Statement]) {
    println!("  {title} ({:.3} s in all):", total.as_secs_f64());
    let mut i = 0;
    while i < statements.len() {
        let same = statements[i..].iter().take_while(|s| s.sql == statements[i].sql).count();
        let group = &statements[i..i + same];
        let seconds: f64 = group.iter().map(|s| s.seconds).sum();
        let rows: u64 = group.iter().map(|s| s.rows).sum();
        let mut sql = statements[i].sql.clone();
        if sql.chars().count() > 90 {
            sql = sql.chars().take(89).collect::<String>() + "…";
        }
        let times = if same > 1 { format!("{same}×") } else { String::new() };
        println!("    {seconds:>8.3} s {rows:>8} rows {times:>5} {sql}");
        i += same;
    }
}

fn print_table(figures: &[Figures]) {
    println!();
    println!(
        "{:<9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9} {:>9} {:>7} {:>13}",
        "backend",
        "rows",
        "factord s",
        "rows/s",
        "peak MB",
        "(+base)",
        "parse s",
        "SQL s",
        "other s",
        "limit s",
        "limit r/s",
        "ratio",
        "ratio range"
    );
    for f in figures {
        let (factord, limit) = (median_time(&f.factord), median_time(&f.limit));
        let median_run = &f.factord[f.median_round()];
        let sql: Duration = median_run.statements.iter().map(|s| Duration::from_secs_f64(s.seconds)).sum();
        let other = median_run.time.saturating_sub(f.parse + sql);
        // Memory from the first round, where factord ran first: later rounds find the heap grown.
        let (peak, growth) = f.factord.first().map_or((f64::NAN, f64::NAN), |r| (r.peak_mib, r.peak_mib - r.base_mib));
        let ratios = f.ratios();
        println!(
            "{:<9} {:>7} {:>10.3} {:>9.0} {:>9.1} {:>9.1} {:>8.3} {:>8.3} {:>8.3} {:>9.3} {:>9.0} {:>6.2}x {:>6.2}-{:.2}x",
            f.backend,
            f.rows,
            factord.as_secs_f64(),
            per_second(f.rows, factord),
            peak,
            growth,
            f.parse.as_secs_f64(),
            sql.as_secs_f64(),
            other.as_secs_f64(),
            limit.as_secs_f64(),
            per_second(f.rows, limit),
            median(&ratios),
            ratios.first().copied().unwrap_or(f64::NAN),
            ratios.last().copied().unwrap_or(f64::NAN),
        );
    }
    println!();
    println!("Each size runs in rounds on fresh loads, factord and the limit once each per round, the order");
    println!("alternating. factord s, limit s: the median of the rounds; ratio: the median of the rounds'");
    println!("ratios (ratio range: the lowest and highest). peak MB: the process's peak RSS during the first");
    println!("round's factord run (VmHWM after a reset); (+base): above the RSS when it started.");
    println!("parse s: read + header + parse of the same bytes, timed on their own. SQL s: the statements of");
    println!("the median round (sqlx's statement log). other s: the rest (planning, result file, commit).");
    for target in figures.iter().filter(|f| f.rows == 100_000) {
        let ratio = median(&target.ratios());
        println!(
            "target (within 1.2x of the limit at 100k rows) on {}: {ratio:.2}x, {}",
            target.backend,
            if ratio <= 1.2 { "met" } else { "NOT met" }
        );
    }
}

fn main() -> Result<(), BenchError> {
    let sizes: Vec<usize> = match std::env::var("REPORTS_N") {
        Ok(text) => text.split(',').map(|s| s.trim().parse::<usize>()).collect::<Result<_, _>>()?,
        Err(_) => vec![1_000, 10_000, 100_000],
    };
    let rounds: usize = match std::env::var("REPORTS_ROUNDS") {
        Ok(text) => text.trim().parse::<usize>()?.max(1),
        Err(_) => 3,
    };
    let backends = std::env::var("REPORTS_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_string());
    tracing_subscriber::registry()
        .with(
            StatementLog.with_filter(
                tracing_subscriber::filter::Targets::new().with_target("sqlx::query", tracing::Level::DEBUG),
            ),
        )
        .init();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "purchase reports, end to end vs the hand-written SQL limit; nproc {cores}; rows {sizes:?}; {rounds} rounds"
    );
    if !reset_peak() {
        println!("note: /proc/self/clear_refs is not writable: peak RSS is not measured");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut figures = Vec::new();
    runtime.block_on(async {
        if backends.contains("sqlite") {
            figures.extend(run_backend("sqlite", None, sizes.clone(), rounds).await?);
        }
        if backends.contains("postgres") {
            figures.extend(run_postgres(sizes.clone(), rounds).await?);
        }
        Ok::<_, BenchError>(())
    })?;
    print_table(&figures);
    for f in figures.iter().filter(|f| Some(f.rows) == sizes.iter().max().copied()) {
        println!();
        let median_round = f.median_round();
        let rounds: Vec<usize> = if std::env::var("REPORTS_ALL_ROUNDS").is_ok() {
            (0..f.factord.len()).collect()
        } else {
            vec![median_round]
        };
        for round in rounds {
            let why = if round == median_round { ", the median ratio" } else { "" };
            println!("{} at {} rows, statement by statement (round {}{why}):", f.backend, f.rows, round + 1);
            for (title, run) in [("factord", &f.factord[round]), ("limit", &f.limit[round])] {
                let sql = run.statements.iter().map(|s| Duration::from_secs_f64(s.seconds)).sum();
                print_statements(title, sql, &run.statements);
            }
        }
    }
    Ok(())
}
