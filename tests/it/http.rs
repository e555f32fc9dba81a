//! The daemon's HTTP side (issue 7 point 3): `/healthz`, `/readyz` (503 when the database is
//! down, the components are not running or the last reload failed), `/metrics` as strict
//! Prometheus text whose counts are the database's, and the read-only dashboard as headless
//! Chromium renders it. In process against a [`TestEnv`] on both backends, and through a real
//! `factord run` child with `[http] listen` set.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use factord::config::{Environment, Settings};
use factord::domain::{ExceptionKind, LoadStatus};
use factord::http::{Health, HttpState, Job, Metrics};
use factord::reports::{ReportKind, ingest_file};
use factord::store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::harness::{Backend, TestEnv, loads_csv, wait_for};
use crate::seed::{Seed, seed};

const DEADLINE: Duration = Duration::from_secs(30);

// --- an HTTP client and the server in process -------------------------------------------------

/// A GET answered: status code, content type and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: String,
}

/// `GET path` over a fresh connection; `None` when nothing listens (yet).
pub(crate) async fn try_get(addr: SocketAddr, path: &str) -> Option<Answer> {
    try_request(addr, "GET", path).await
}

/// `METHOD path` with an empty body over a fresh connection.
async fn try_request(addr: SocketAddr, method: &str, path: &str) -> Option<Answer> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut raw)).await.ok()?.ok()?;
    let raw = String::from_utf8(raw).expect("the answer is UTF-8");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer has a head and a body");
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.trim().to_string())
        .unwrap_or_default();
    Some(Answer { status, content_type, body: body.to_string() })
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> Answer {
    try_get(addr, path).await.unwrap_or_else(|| panic!("GET {path} on {addr} got no answer"))
}

/// The HTTP server on 127.0.0.1:0 over a test environment, with the daemon's shared state.
struct Server {
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn serve(env: &TestEnv) -> Server {
    serve_with(env, Settings::load(&env.config_path, &Environment::new()).expect("settings")).await
}

/// [`serve`] with other settings than the environment's.
async fn serve_with(env: &TestEnv, settings: Settings) -> Server {
    let listener = factord::http::bind(([127, 0, 0, 1], 0).into()).await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let (health, metrics) = (Arc::new(Health::new()), Arc::new(Metrics::new()));
    let state = HttpState::new(
        env.store.clone(),
        tokio::sync::watch::channel(Arc::new(settings)).1,
        health.clone(),
        metrics.clone(),
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(factord::http::serve(listener, state, shutdown.clone()));
    Server { addr, health, metrics, shutdown }
}

// --- a strict reader of the Prometheus text format --------------------------------------------

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `{a="x",b="y"}` from the start of `text`; returns the labels and the rest.
fn parse_labels(text: &str, line: &str) -> (BTreeMap<String, String>, String) {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    assert_eq!(chars.next(), Some('{'), "labels open with {{: {line}");
    loop {
        if chars.peek() == Some(&'}') {
            chars.next();
            break;
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        assert!(is_label_name(&name), "bad label name `{name}`: {line}");
        assert_eq!(chars.next(), Some('='), "{line}");
        assert_eq!(chars.next(), Some('"'), "label values are quoted: {line}");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => panic!("bad escape \\{other:?} in a label value: {line}"),
                },
                Some('"') => break,
                Some('\n') | None => panic!("unterminated label value: {line}"),
                Some(c) => value.push(c),
            }
        }
        assert!(labels.insert(name.clone(), value).is_none(), "label {name} twice: {line}");
        match chars.next() {
            Some(',') => {}
            Some('}') => break,
            other => panic!("expected , or }} after a label, found {other:?}: {line}"),
        }
    }
    (labels, chars.collect())
}

/// Parses the exposition text strictly: every family has `# HELP` then `# TYPE` before its
/// samples and appears once, its samples are contiguous, every sample is `name{labels} value`
/// with a valid name belonging to the current family, and no series appears twice.
pub(crate) fn parse_exposition(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "the exposition ends with a line feed");
    let mut families: BTreeMap<String, (bool, Option<String>)> = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    let mut closed: BTreeSet<String> = BTreeSet::new();
    let mut samples = Vec::new();
    let mut series = BTreeSet::new();
    for line in text.lines() {
        assert!(!line.is_empty(), "no blank lines");
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(is_metric_name(name), "bad metric name in HELP: {line}");
            assert!(!help.trim().is_empty(), "empty HELP: {line}");
            assert!(!families.contains_key(name), "family {name} declared twice");
            if let Some((open, _)) = current.take() {
                closed.insert(open);
            }
            families.insert(name.to_string(), (true, None));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            let family = families.get_mut(name).unwrap_or_else(|| panic!("TYPE before HELP: {line}"));
            assert!(family.1.is_none(), "TYPE twice: {line}");
            assert!(["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind), "bad type: {line}");
            family.1 = Some(kind.to_string());
            current = Some((name.to_string(), kind.to_string()));
        } else if line.starts_with('#') {
            panic!("unexpected comment line: {line}");
        } else {
            let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("a sample has a value: {line}"));
            let name = &line[..name_end];
            assert!(is_metric_name(name), "bad metric name: {line}");
            let (labels, rest) = if line[name_end..].starts_with('{') {
                parse_labels(&line[name_end..], line)
            } else {
                (BTreeMap::new(), line[name_end..].to_string())
            };
            let rest = rest.strip_prefix(' ').unwrap_or_else(|| panic!("one space before the value: {line}"));
            let mut parts = rest.split(' ');
            let value_text = parts.next().expect("value");
            let value: f64 = match value_text {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value `{v}`: {line}")),
            };
            if let Some(timestamp) = parts.next() {
                timestamp.parse::<i64>().unwrap_or_else(|_| panic!("bad timestamp: {line}"));
            }
            assert!(parts.next().is_none(), "trailing text: {line}");
            let (family, kind) = current.clone().unwrap_or_else(|| panic!("sample before any HELP/TYPE: {line}"));
            let belongs = match kind.as_str() {
                "summary" => {
                    [family.clone(), format!("{family}_sum"), format!("{family}_count")].contains(&name.to_string())
                }
                "histogram" => [format!("{family}_bucket"), format!("{family}_sum"), format!("{family}_count")]
                    .contains(&name.to_string()),
                _ => name == family,
            };
            assert!(belongs, "sample {name} is not of the family {family} ({kind}) whose TYPE precedes it");
            assert!(!closed.contains(&family), "samples of {family} are not contiguous");
            if kind == "counter" {
                assert!(value >= 0.0, "a counter is never negative: {line}");
            }
            assert!(series.insert((name.to_string(), labels.clone())), "series twice: {line}");
            samples.push(Sample { name: name.to_string(), labels, value });
        }
    }
    for (name, (_, kind)) in &families {
        assert!(kind.is_some(), "family {name} has no TYPE");
    }
    samples
}

/// The value of one series, matched on all the labels given.
pub(crate) fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
}

/// Samples of `name` as (label values in `keys` order) → value.
#[expect(clippy::cast_possible_truncation, reason = "the series read here are counts: whole numbers")]
fn series(samples: &[Sample], name: &str, keys: &[&str]) -> BTreeMap<Vec<String>, i64> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| {
            let key = keys.iter().map(|k| s.labels.get(*k).cloned().unwrap_or_default()).collect();
            (key, s.value as i64)
        })
        .collect()
}

/// Rows of a grouping query `SELECT a, b, COUNT(*)` (or one label column) as key → count.
async fn grouped(store: &Store, sql: &'static str, keys: usize) -> BTreeMap<Vec<String>, i64> {
    use sqlx::Row;
    let rows: Vec<(Vec<String>, i64)> = match store {
        Store::Postgres(pool) => sqlx::query(sql)
            .fetch_all(pool)
            .await
            .expect("query")
            .iter()
            .map(|r| ((0..keys).map(|i| r.get::<String, _>(i)).collect(), r.get::<i64, _>(keys)))
            .collect(),
        Store::Sqlite(pool) => sqlx::query(sql)
            .fetch_all(pool)
            .await
            .expect("query")
            .iter()
            .map(|r| ((0..keys).map(|i| r.get::<String, _>(i)).collect(), r.get::<i64, _>(keys)))
            .collect(),
    };
    rows.into_iter().collect()
}

/// `expected` (from the database) equals `exposed` (from /metrics), where `/metrics` may also
/// hold zero series the database has no row for.
fn assert_counts_match(what: &str, exposed: &BTreeMap<Vec<String>, i64>, expected: &BTreeMap<Vec<String>, i64>) {
    for (key, n) in expected {
        assert_eq!(exposed.get(key), Some(n), "{what} {key:?}: /metrics {exposed:?}, database {expected:?}");
    }
    for (key, n) in exposed {
        if !expected.contains_key(key) {
            assert_eq!(*n, 0, "{what} {key:?} is {n} in /metrics but absent from the database");
        }
    }
}

async fn execute(store: &Store, sql: &'static str) {
    match store {
        Store::Postgres(pool) => {
            sqlx::query(sql).execute(pool).await.expect("execute");
        }
        Store::Sqlite(pool) => {
            sqlx::query(sql).execute(pool).await.expect("execute");
        }
    }
}

// --- in process -------------------------------------------------------------------------------

both_backends!(healthz_and_readyz_follow_the_components_the_reload_and_the_database, |env| {
    let server = serve(&env).await;
    let health = get(server.addr, "/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    // Before the daemon says its components run, it is alive but not ready.
    let answer = get(server.addr, "/readyz").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.contains("components: not running"), "{}", answer.body);
    server.health.set_components_running(true);
    let answer = get(server.addr, "/readyz").await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "ready\n"));

    // A refused reload: not ready, with every error, until a reload is applied.
    let errors = vec![
        "config/factord.toml: subsidiary[acme-east].factoring.schedule: `0 0 16 * *` needs 6 fields".to_string(),
        "config/factord.toml: log.colour: unknown key".to_string(),
    ];
    server.health.set_reload_result(false, errors.clone());
    let answer = get(server.addr, "/readyz").await;
    assert_eq!(answer.status, 503);
    for error in &errors {
        assert!(answer.body.contains(error), "{}", answer.body);
    }
    let samples = parse_exposition(&get(server.addr, "/metrics").await.body);
    assert_eq!(value(&samples, "factord_config_last_reload_success", &[]), Some(0.0));
    server.health.set_reload_result(true, Vec::new());
    assert_eq!(get(server.addr, "/readyz").await.status, 200);
    let samples = parse_exposition(&get(server.addr, "/metrics").await.body);
    assert_eq!(value(&samples, "factord_config_last_reload_success", &[]), Some(1.0));
    let reloaded = value(&samples, "factord_config_last_reload_timestamp_seconds", &[]).expect("reload time");
    assert!((reloaded - chrono::Utc::now().timestamp() as f64).abs() < 60.0, "{reloaded}");

    // The database goes away: PostgreSQL's database is dropped under the pool (its connections
    // terminated); SQLite's pool is closed.
    match env.backend {
        Backend::Postgres => {
            use sqlx::Connection;
            let admin_url = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
            let name = env.database_url.rsplit('/').next().expect("name").split('?').next().expect("name");
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("admin connection");
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
                .execute(&mut admin)
                .await
                .expect("drop the database");
        }
        Backend::Sqlite => env.store.close().await,
    }
    let answer = get(server.addr, "/readyz").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.contains("database: "), "{}", answer.body);
    assert!(!answer.body.contains("components"), "only the database is down: {}", answer.body);
    assert_eq!(get(server.addr, "/healthz").await.status, 200, "alive all the same");
    // /metrics still answers with the process figures and says the database is down.
    let metrics = get(server.addr, "/metrics").await;
    assert_eq!(metrics.status, 200);
    let samples = parse_exposition(&metrics.body);
    assert_eq!(value(&samples, "factord_database_up", &[]), Some(0.0));
    assert_eq!(value(&samples, "factord_loads", &[]), None);
    assert_eq!(get(server.addr, "/").await.status, 503);
});

both_backends!(metrics_parse_as_prometheus_text_and_count_what_the_database_holds, |env| {
    let store = &env.store;
    let seeds = [
        Seed {
            subsidiary: "acme-east",
            provider: "capital_depot",
            prefix: "R",
            count: 3,
            amount_cents: 10000,
            status: "Released",
        },
        Seed {
            subsidiary: "acme-east",
            provider: "capital_depot",
            prefix: "Q",
            count: 4,
            amount_cents: 20000,
            status: "Queued",
        },
        Seed {
            subsidiary: "acme-east",
            provider: "capital_depot",
            prefix: "I",
            count: 5,
            amount_cents: 30000,
            status: "Invoiced",
        },
        Seed {
            subsidiary: "acme-west",
            provider: "triumph",
            prefix: "W",
            count: 2,
            amount_cents: 40000,
            status: "Invoiced",
        },
        // A subsidiary no longer configured still counts.
        Seed {
            subsidiary: "old \"gone\" sub",
            provider: "rts",
            prefix: "G",
            count: 1,
            amount_cents: 1,
            status: "Completed",
        },
    ];
    for s in &seeds {
        seed(store, s).await;
    }
    // One item per invoice in its seeded batch: accepted, and one rejected by the factor.
    execute(
        store,
        "INSERT INTO batch_items (batch_id, load_id, invoice_number, idempotency_key, payload_sha256, outcome) \
         SELECT batch_id, id, invoice_number, 'key-' || load_number, 'sha', \
         CASE WHEN load_number = 'W000002' THEN 'rejected' ELSE 'accepted' END FROM loads WHERE batch_id IS NOT NULL",
    )
    .await;
    store.raise_exception("I000001", ExceptionKind::Held, "held by the factor").await.expect("held");
    store.raise_exception("W000002", ExceptionKind::Rejected, "no NOA on file").await.expect("rejected");
    store.raise_exception("W000001", ExceptionKind::ShortPaid, "paid 10.00 of 400.00").await.expect("short");
    store.clear_exception("W000001", ExceptionKind::ShortPaid).await.expect("cleared");
    store.set_waiting_reason("R000002", Some("missing proof of delivery (POD)")).await.expect("waiting");
    let fire = chrono::DateTime::parse_from_rfc3339("2026-11-27T22:00:00Z").expect("time").to_utc();
    assert!(store.record_fire("acme-east", fire).await.expect("fire"));
    // Reports: rows applied and rejected, the same file again (nothing new), a file refused.
    let report =
        env.write("purchase.csv", "Invoice Number,Advance\nIINV000002,270.00\nIINV000003,270.00\nNOPE-1,1.00\n");
    let first =
        ingest_file(store, &env.settings, &report, "capital_depot", Some(ReportKind::Purchase)).await.expect("ingest");
    assert_eq!((first.applied, first.rejected), (2, 1));
    ingest_file(store, &env.settings, &report, "capital_depot", Some(ReportKind::Purchase)).await.expect("again");
    let refused = env.write("refused.csv", "Customer,Advance\nBlue,1.00\n");
    let summary = ingest_file(store, &env.settings, &refused, "capital_depot", Some(ReportKind::Purchase)).await;
    assert!(summary.expect("refusal is recorded").refused.is_some());

    let server = serve(&env).await;
    server.metrics.record_job(Job::Invoice, Duration::from_millis(1500), true);
    server.metrics.record_job(Job::Invoice, Duration::from_millis(250), false);

    let answer = get(server.addr, "/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(answer.content_type.starts_with("text/plain; version=0.0.4"), "{}", answer.content_type);
    let samples = parse_exposition(&answer.body);
    assert_eq!(value(&samples, "factord_database_up", &[]), Some(1.0));

    let loads = series(&samples, "factord_loads", &["subsidiary", "status"]);
    let expected =
        grouped(store, "SELECT subsidiary, status, COUNT(*) FROM loads GROUP BY subsidiary, status", 2).await;
    assert_counts_match("loads", &loads, &expected);
    assert_eq!(loads.values().sum::<i64>(), 15);
    assert_eq!(loads[&vec!["acme-east".to_string(), "Financed".to_string()]], 2, "the purchase report moved two");
    assert_eq!(loads[&vec!["old \"gone\" sub".to_string(), "Completed".to_string()]], 1, "escaped label value");
    // Every configured subsidiary × status has a series, zero or not.
    for status in LoadStatus::ALL {
        assert!(loads.contains_key(&vec!["acme-west".to_string(), status.as_str().to_string()]));
    }
    assert_eq!(value(&samples, "factord_loads_waiting", &[("subsidiary", "acme-east")]), Some(1.0));

    let exceptions = series(&samples, "factord_exceptions_open", &["subsidiary", "kind"]);
    let expected = grouped(
        store,
        "SELECT l.subsidiary, e.kind, COUNT(*) FROM load_exceptions e JOIN loads l ON l.id = e.load_id \
         WHERE e.cleared_at IS NULL GROUP BY l.subsidiary, e.kind",
        2,
    )
    .await;
    assert_counts_match("exceptions", &exceptions, &expected);
    assert_eq!(exceptions.values().sum::<i64>(), 2, "the cleared flag is not open");

    let batches = series(&samples, "factord_batches", &["provider", "status"]);
    let expected = grouped(store, "SELECT provider, status, COUNT(*) FROM batches GROUP BY provider, status", 2).await;
    assert_counts_match("batches", &batches, &expected);
    assert_eq!(batches.len(), 3, "{batches:?}");

    let invoices = series(&samples, "factord_invoices_submitted", &["provider", "outcome"]);
    let expected = grouped(
        store,
        "SELECT b.provider, i.outcome, COUNT(*) FROM batch_items i JOIN batches b ON b.id = i.batch_id \
         GROUP BY b.provider, i.outcome",
        2,
    )
    .await;
    assert_counts_match("invoices", &invoices, &expected);
    assert_eq!(invoices[&vec!["triumph".to_string(), "rejected".to_string()]], 1);

    let rows = series(&samples, "factord_report_rows_total", &["provider", "outcome"]);
    for (outcome, sql) in [
        ("applied", "SELECT provider, CAST(SUM(applied) AS BIGINT) FROM report_files GROUP BY provider"),
        ("skipped", "SELECT provider, CAST(SUM(skipped) AS BIGINT) FROM report_files GROUP BY provider"),
        ("rejected", "SELECT provider, CAST(SUM(rejected) AS BIGINT) FROM report_files GROUP BY provider"),
    ] {
        for (key, n) in grouped(store, sql, 1).await {
            assert_eq!(rows[&vec![key[0].clone(), outcome.to_string()]], n, "{outcome} rows of {key:?}");
        }
    }
    assert_eq!(rows[&vec!["capital_depot".to_string(), "applied".to_string()]], 2);
    assert_eq!(rows[&vec!["capital_depot".to_string(), "rejected".to_string()]], 1);
    let files = series(&samples, "factord_report_files_total", &["provider", "result"]);
    let refused =
        grouped(store, "SELECT provider, COUNT(*) FROM report_files WHERE refused IS NOT NULL GROUP BY provider", 1)
            .await;
    let ingested =
        grouped(store, "SELECT provider, COUNT(*) FROM report_files WHERE refused IS NULL GROUP BY provider", 1).await;
    assert_eq!(
        files[&vec!["capital_depot".to_string(), "refused".to_string()]],
        refused[&vec!["capital_depot".to_string()]]
    );
    assert_eq!(
        files[&vec!["capital_depot".to_string(), "ingested".to_string()]],
        ingested[&vec!["capital_depot".to_string()]]
    );
    assert_eq!(
        files[&vec!["capital_depot".to_string(), "ingested".to_string()]],
        1,
        "the same file twice is one ingest"
    );

    assert_eq!(
        value(&samples, "factord_schedule_last_fire_timestamp_seconds", &[("subsidiary", "acme-east")]),
        Some(fire.timestamp() as f64)
    );
    assert_eq!(value(&samples, "factord_schedule_last_fire_timestamp_seconds", &[("subsidiary", "acme-west")]), None);

    assert_eq!(value(&samples, "factord_job_duration_seconds_count", &[("job", "invoice")]), Some(2.0));
    assert_eq!(value(&samples, "factord_job_duration_seconds_sum", &[("job", "invoice")]), Some(1.75));
    assert_eq!(value(&samples, "factord_job_last_duration_seconds", &[("job", "invoice")]), Some(0.25));
    assert_eq!(value(&samples, "factord_job_failures_total", &[("job", "invoice")]), Some(1.0));
    assert_eq!(value(&samples, "factord_job_duration_seconds_count", &[("job", "submission")]), Some(0.0));

    // Counts are read at scrape time.
    store.move_status("R000001", LoadStatus::Released, LoadStatus::Queued, "test").await.expect("move");
    let samples = parse_exposition(&get(server.addr, "/metrics").await.body);
    assert_eq!(value(&samples, "factord_loads", &[("subsidiary", "acme-east"), ("status", "Released")]), Some(2.0));
    assert_eq!(value(&samples, "factord_loads", &[("subsidiary", "acme-east"), ("status", "Queued")]), Some(5.0));
});

/// The text a reader sees in a DOM dump: tags dropped, the usual entities decoded.
fn dom_text(dom: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'");
    let text = text.replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The DOM of `url` after headless Chromium loaded it (Debian's `chromium`; scripts/test
/// installs it).
async fn chromium_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let run = tokio::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("chromium finished within 120 s")
        .expect("chromium runs (scripts/test installs Debian's chromium package)");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    let dom = String::from_utf8(output.stdout).expect("UTF-8 DOM");
    assert!(dom.contains("<html"), "no DOM from chromium: {dom}\n{}", String::from_utf8_lossy(&output.stderr));
    dom
}

/// A third subsidiary whose provider is not active yet (it has a schedule all the same).
const NORTH_INACTIVE: &str = r#"
[[subsidiary]]
id = "acme-north"
name = "ACME Freight North LLC"
address = "1 Lake Shore Dr, Chicago, IL 60601"
timezone = "America/Chicago"
invoice_prefix = "AN-"
noa = "Remit to Triumph, P.O. Box 610028, Dallas, TX 75261."

[subsidiary.factoring]
provider = "triumph"
schedule = "0 30 9 * * *"
active = false
"#;

/// The text of the element that carries `marker` (an attribute), up to its closing `close`.
fn element_text(dom: &str, marker: &str, close: &str) -> String {
    let start = dom.find(marker).unwrap_or_else(|| panic!("{marker} in: {dom}"));
    let end = dom[start..].find(close).map_or(dom.len(), |end| start + end);
    dom_text(&dom[start..end])
}

/// The next weekday 16:00 in Chicago after `after` (acme-east's `0 0 16 * * Mon-Fri`), in
/// Chicago's time and in UTC, worked out here without the scheduler's code.
fn next_weekday_four_pm_in_chicago(after: chrono::DateTime<chrono::Utc>) -> (String, String) {
    use chrono::{Datelike, TimeZone, Weekday};
    let zone = chrono_tz::America::Chicago;
    let today = after.with_timezone(&zone).date_naive();
    let fire = (0..8)
        .map(|d| today + chrono::Days::new(d))
        .filter(|day| !matches!(day.weekday(), Weekday::Sat | Weekday::Sun))
        .filter_map(|day| zone.from_local_datetime(&day.and_hms_opt(16, 0, 0).expect("16:00")).single())
        .find(|fire| *fire > after)
        .expect("a weekday within 8 days");
    (fire.format("%Y-%m-%d %H:%M:%S %Z").to_string(), fire.to_utc().format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// Sets when an open exception of `load` was raised.
async fn backdate_exception(store: &Store, load: &str, at: chrono::DateTime<chrono::Utc>) {
    let sql = "UPDATE load_exceptions SET raised_at = $1 WHERE cleared_at IS NULL \
               AND load_id = (SELECT id FROM loads WHERE load_number = $2)";
    let updated = match store {
        Store::Postgres(pool) => sqlx::query(sql).bind(at).bind(load).execute(pool).await.map(|r| r.rows_affected()),
        Store::Sqlite(pool) => sqlx::query(sql).bind(at).bind(load).execute(pool).await.map(|r| r.rows_affected()),
    };
    assert!(updated.expect("backdate") >= 1, "no open exception on {load}");
}

/// The count cell of one subsidiary and status in the dashboard's DOM.
fn pipeline_cell(dom: &str, subsidiary: &str, status: &str) -> Option<i64> {
    let marker = format!("data-subsidiary=\"{subsidiary}\" data-status=\"{status}\">");
    let start = dom.find(&marker)? + marker.len();
    dom[start..].split('<').next()?.trim().parse().ok()
}

both_backends!(the_dashboard_in_headless_chromium_shows_the_pipeline_waiting_reasons_and_results, |env| {
    let store = &env.store;
    for s in [
        Seed {
            subsidiary: "acme-east",
            provider: "capital_depot",
            prefix: "R",
            count: 3,
            amount_cents: 10000,
            status: "Released",
        },
        Seed {
            subsidiary: "acme-east",
            provider: "capital_depot",
            prefix: "I",
            count: 4,
            amount_cents: 30000,
            status: "Invoiced",
        },
        Seed {
            subsidiary: "acme-west",
            provider: "triumph",
            prefix: "C",
            count: 2,
            amount_cents: 5000,
            status: "Completed",
        },
    ] {
        seed(store, &s).await;
    }
    store.set_waiting_reason("R000002", Some("missing proof of delivery (POD)")).await.expect("waiting");
    // Markup in stored text is shown as text, never run.
    store.set_waiting_reason("R000003", Some("<b>bold?</b> & <script>alert(1)</script>")).await.expect("waiting");
    store.raise_exception("I000004", ExceptionKind::Held, "held: verify the POD").await.expect("held");
    // A rejection three days old, and a load ops hold now: oldest first, each with its age and
    // the command that resolves it.
    let detail = "rejected by the factor (POD unreadable)";
    store.raise_exception("I000002", ExceptionKind::Rejected, detail).await.expect("rejected");
    let raised = chrono::Utc::now() - chrono::TimeDelta::days(3) - chrono::TimeDelta::minutes(4 * 60 + 10);
    backdate_exception(store, "I000002", raised).await;
    backdate_exception(store, "I000004", raised + chrono::TimeDelta::hours(1)).await;
    factord::rework::hold(store, "R000001", "customer disputes the rate").await.expect("hold");
    // A load file refused whole (before the report file below).
    let bad = env.write("bad-loads.csv", "load_number;subsidiary\nL-9;acme-east\n");
    factord::intake::import_load_file(store, &env.settings, &bad, None).await.expect_err("refused");
    let report = env.write("purchase-nov.csv", "Invoice Number,Advance\nIINV000001,270.00\nNOPE-1,1.00\n");
    ingest_file(store, &env.settings, &report, "capital_depot", Some(ReportKind::Purchase)).await.expect("ingest");
    // A provider no subsidiary uses any more still has its files shown.
    let old = env.write("rts-old.csv", "Customer,Advance\nBlue,1.00\n");
    ingest_file(store, &env.settings, &old, "rts", Some(ReportKind::Purchase)).await.expect("ingest");

    // acme-north's provider is inactive.
    let config = std::fs::read_to_string(&env.config_path).expect("config") + NORTH_INACTIVE;
    let config = env.write("config-north/factord.toml", &config);
    let settings = Settings::load(&config, &Environment::new()).expect("settings with acme-north");
    let credit_refresh = settings.credit.refresh_schedule.expression.clone();
    let server = serve_with(&env, settings).await;
    server.health.set_components_running(true);
    let before = chrono::Utc::now();
    let page = get(server.addr, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"), "{}", page.content_type);
    assert!(!page.body.contains("<script"), "no script on the page, not even from stored text");
    assert!(!page.body.contains("<form") && !page.body.contains("method=\"post\""), "read-only: no forms");
    for (method, path) in [("POST", "/"), ("PUT", "/metrics"), ("DELETE", "/readyz"), ("POST", "/healthz")] {
        let answer = try_request(server.addr, method, path).await.expect("an answer");
        assert_eq!(answer.status, 405, "{method} {path} is refused: {answer:?}");
    }
    assert_eq!(get(server.addr, "/loads/R000001").await.status, 404);

    let dom = chromium_dom(&format!("http://{}/", server.addr)).await;
    let after = chrono::Utc::now();
    let text = dom_text(&dom);
    // No Markdown is left: commands and values are <code>.
    assert!(!text.contains('`') && !text.contains("**"), "Markdown on the page: {text}");
    let counts = [
        ("acme-east", "Released", 3),
        ("acme-east", "Invoiced", 3),
        ("acme-east", "Financed", 1),
        ("acme-east", "Queued", 0),
        ("acme-west", "Completed", 2),
        ("acme-west", "Released", 0),
    ];
    for (subsidiary, status, n) in counts {
        assert_eq!(pipeline_cell(&dom, subsidiary, status), Some(n), "{subsidiary} {status}: {dom}");
    }
    assert!(text.contains("ACME Freight East LLC"), "{text}");
    assert!(text.contains("R000002 Released Blue Brokerage missing proof of delivery (POD)"), "{text}");
    assert!(text.contains("<b>bold?</b> & <script>alert(1)</script>"), "markup shown as text: {text}");
    assert!(!dom.contains("<b>bold?</b>") && !dom.contains("<script>"), "markup not made into elements: {dom}");
    // R000001's waiting reason names the command that releases it, as code.
    assert!(
        text.contains(
            "R000001 Released Blue Brokerage held: customer disputes the rate; factord loads release R000001"
        ),
        "{text}"
    );
    assert!(dom.contains("<code>factord loads release R000001 --reason ...</code>"), "{dom}");

    // The open exceptions and held loads, oldest first, with age and command.
    let exceptions = element_text(&dom, "id=\"exceptions\"", "</section>");
    assert!(exceptions.contains("Exceptions and held loads (3)"), "{exceptions}");
    let rejected = format!(
        "{} 3 d 4 h I000002 acme-east Invoiced rejected {detail} fix the cause (documents: factord loads docs I000002 --pod F ... ), then factord loads retry I000002 --reason ...",
        factord::domain::time_for_people(raised)
    );
    assert!(exceptions.contains(&rejected), "{rejected} in: {exceptions}");
    assert!(
        exceptions.contains("3 d 3 h I000004 acme-east Invoiced held held: verify the POD cleared when"),
        "{exceptions}"
    );
    let held = "< 1 min R000001 acme-east Released held held by ops: customer disputes the rate factord loads release R000001 --reason ...";
    assert!(exceptions.contains(held), "{held} in: {exceptions}");
    let at = |load: &str| exceptions.find(load).unwrap_or_else(|| panic!("{load} in: {exceptions}"));
    assert!(at("I000002") < at("I000004") && at("I000004") < at("R000001"), "oldest first: {exceptions}");
    assert!(dom.contains("<code>factord loads retry I000002 --reason ...</code>"), "{dom}");

    // The refused files, load and report, newest first.
    let refused = element_text(&dom, "id=\"refused-files\"", "</section>");
    let load_file = refused.find("bad-loads.csv load file").unwrap_or_else(|| panic!("{refused}"));
    let report_file = refused.find("rts-old.csv purchase report from rts").unwrap_or_else(|| panic!("{refused}"));
    assert!(report_file < load_file, "newest first (the report file came after): {refused}");
    assert!(refused.contains("inbox/loads/") && refused.contains("inbox/rts/"), "{refused}");

    // Money: the store's summary (the figures the metrics give), as people read it.
    let summary = store.money_summary(chrono::Utc::now().date_naive()).await.expect("money summary");
    assert_ne!(summary.open_receivables, factord::domain::Money::ZERO, "the test has open invoices: {summary:?}");
    let money = element_text(&dom, "id=\"money\"", "</section>");
    for figure in [
        format!("open receivables {}", summary.open_receivables.for_people()),
        format!("reserve held by factors {}", summary.reserve_held.for_people()),
        format!("fees this month {}", summary.fees_this_month.for_people()),
    ] {
        assert!(money.contains(&figure), "{figure} in: {money}");
    }
    let oldest = summary.oldest_open_days.map_or_else(|| "none open".to_string(), |d| format!("{d} days"));
    assert!(money.contains(&format!("oldest open invoice {oldest}")), "{money}");
    let files = store.recent_report_files(5).await.expect("report files");
    let reason = files.iter().find_map(|f| f.refused.clone()).expect("the rts file was refused");
    assert!(refused.contains(reason.trim()), "the refusal's reason {reason:?}: {refused}");

    // The inactive provider, said plainly.
    let inactive = element_text(&dom, "id=\"inactive-providers\"", "</section>");
    assert!(inactive.contains("ACME Freight North LLC acme-north Triumph"), "{inactive}");
    assert!(inactive.contains("nothing is sent to the factor"), "{inactive}");
    assert!(!inactive.contains("acme-east"), "capital_depot is active: {inactive}");

    // Each schedule's next fire, in its own time zone.
    let east = element_text(&dom, "data-schedule=\"submission acme-east (capital_depot)\"", "</tr>");
    let (early, late) = (next_weekday_four_pm_in_chicago(before), next_weekday_four_pm_in_chicago(after));
    assert!(
        [early, late].iter().any(|(chicago, utc)| east.contains(&format!("America/Chicago {chicago} {utc}"))),
        "the next weekday 16:00 in Chicago: {east}"
    );
    assert!(east.contains("0 0 16 * * Mon-Fri"), "{east}");
    let north = element_text(&dom, "data-schedule=\"submission acme-north (triumph)\"", "</tr>");
    assert!(north.contains("not run: triumph is inactive"), "{north}");
    let credit = element_text(&dom, "data-schedule=\"credit refresh\"", "</tr>");
    assert!(credit.contains(&format!("{credit_refresh} UTC")), "{credit}");
    // Each subsidiary's section holds its batches and its provider's report files.
    let section = |id: &str| {
        let start = dom.find(&format!("id=\"subsidiary-{id}\"")).unwrap_or_else(|| panic!("section {id}: {dom}"));
        let end = dom[start..].find("</section>").map_or(dom.len(), |end| start + end);
        dom_text(&dom[start..end])
    };
    let east = section("acme-east");
    assert!(east.contains("seed-capital_depot-I capital_depot sent 4 $1,200.00"), "the last batches: {east}");
    assert!(east.contains("capital_depot purchase purchase-nov.csv 2 1 0 1"), "the report file's results: {east}");
    let west = section("acme-west");
    assert!(west.contains("seed-triumph-C triumph sent 2 $100.00"), "{west}");
    assert!(!west.contains("purchase-nov.csv"), "{west}");
    let others = dom_text(&dom[dom.find("id=\"other-reports\"").expect("other providers' files")..]);
    assert!(others.contains("rts purchase rts-old.csv 0 0 0 0"), "{others}");
    assert!(others.contains(reason.trim()), "the refusal's reason {reason:?}: {others}");
});

// --- the real daemon --------------------------------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_factord");

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// `factord run` in a temp working directory on SQLite with `[http] listen` on `port`;
/// killed on drop.
struct Daemon {
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    fn configure(port: u16) -> Daemon {
        Daemon::configure_at(&format!("127.0.0.1:{port}"))
    }

    fn configure_at(listen: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("data/factord.db").display());
        let config = crate::harness::write_config(dir.path(), &url, &format!("[http]\nlisten = \"{listen}\"\n"));
        Daemon { dir, config, child: None }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.current_dir(self.dir.path()).arg("--config").arg(&self.config).args(args);
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("FACTORD")) {
            command.env_remove(name);
        }
        command
    }

    fn start(&mut self) {
        let log = |name: &str| std::fs::File::create(self.dir.path().join(name)).expect("log file");
        let child = self
            .command(&["run"])
            .stdin(Stdio::null())
            .stdout(log("daemon.stdout.log"))
            .stderr(log("daemon.stderr.log"))
            .spawn()
            .expect("start factord run");
        self.child = Some(child);
    }

    fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("--- stdout ---\n{}\n--- stderr ---\n{}", read("daemon.stdout.log"), read("daemon.stderr.log"))
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Waits for the process to exit.
    async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("started");
        wait_for(DEADLINE, "the daemon to exit", || {
            let status = child.try_wait().expect("try_wait");
            async move { status }
        })
        .await
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factord_run_serves_health_metrics_and_the_dashboard_on_http_listen() {
    let port = free_port();
    let mut daemon = Daemon::configure(port);
    let started = std::time::Instant::now();
    daemon.start();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let ready = wait_for(DEADLINE, "/readyz to answer 200", || async {
        try_get(addr, "/readyz").await.filter(|a| a.status == 200)
    })
    .await;
    assert_eq!(ready.body, "ready\n", "{}", daemon.logs());
    assert_eq!(get(addr, "/healthz").await.body, "ok\n");
    assert!(daemon.logs().contains(&format!("127.0.0.1:{port}")), "the address is logged: {}", daemon.logs());

    // Loads arrive without their documents: the invoice pass records why they wait.
    let row =
        |load: &str, subsidiary: &str| format!("{load},{subsidiary},C-1,Broker One,123456,1250.00,,2026-11-20,,,,,");
    let csv = loads_csv(&[&row("L-1", "acme-east"), &row("L-2", "acme-east"), &row("L-3", "acme-west")]);
    let inbox = daemon.root().join("inbox/loads");
    std::fs::create_dir_all(&inbox).expect("inbox");
    std::fs::write(daemon.root().join("loads.csv.tmp"), csv).expect("write");
    std::fs::rename(daemon.root().join("loads.csv.tmp"), inbox.join("loads.csv")).expect("drop the file");
    let samples = wait_for(DEADLINE, "three waiting loads in /metrics", || async {
        let samples = parse_exposition(&try_get(addr, "/metrics").await?.body);
        let waiting: f64 = samples.iter().filter(|s| s.name == "factord_loads_waiting").map(|s| s.value).sum();
        ((waiting - 3.0).abs() < 0.5).then_some(samples)
    })
    .await;

    // /metrics says what `factord status --json` (the database, read by another process) says.
    let output = daemon.command(&["status", "--json"]).output().expect("factord status");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).expect("status json");
    for subsidiary in status["subsidiaries"].as_array().expect("subsidiaries") {
        let id = subsidiary["id"].as_str().expect("id");
        for (name, n) in subsidiary["counts"].as_object().expect("counts") {
            let exposed = value(&samples, "factord_loads", &[("subsidiary", id), ("status", name)]);
            assert_eq!(exposed, Some(n.as_f64().expect("count")), "{id} {name}");
        }
        let waiting = value(&samples, "factord_loads_waiting", &[("subsidiary", id)]);
        assert_eq!(waiting, subsidiary["waiting"].as_f64(), "{id} waiting");
    }
    assert_eq!(value(&samples, "factord_loads", &[("subsidiary", "acme-east"), ("status", "Released")]), Some(2.0));
    // The daemon's jobs are timed. The inboxes are scanned every 100 ms and when a file event
    // wakes them; a scan must not wake itself (it reads the folder), which would spin.
    let ceiling = 30.0 * started.elapsed().as_secs_f64() + 20.0;
    for job in ["invoice", "loads_inbox", "reports_inbox"] {
        let runs = value(&samples, "factord_job_duration_seconds_count", &[("job", job)]).expect("job series");
        assert!(runs >= 1.0, "{job} ran: {runs}");
        assert!(runs <= ceiling, "{job} ran {runs} times in {:?}: it spins", started.elapsed());
    }
    assert_eq!(value(&samples, "factord_config_last_reload_success", &[]), Some(1.0));
    assert_eq!(value(&samples, "factord_components_running", &[]), Some(1.0));
    // Every component runs under the supervisor, up, none restarted.
    for component in ["loads inbox", "report inboxes", "invoice job", "scheduler", "http", "submission acme-east"] {
        assert_eq!(value(&samples, "factord_component_up", &[("component", component)]), Some(1.0), "{component}");
        let restarts = value(&samples, "factord_component_restarts_total", &[("component", component)]);
        assert_eq!(restarts, Some(0.0), "{component}");
    }
    let age = value(&samples, "factord_component_heartbeat_age_seconds", &[("component", "loads inbox")]);
    assert!(age.is_some_and(|a| a < 5.0), "the loads inbox beats every scan: {age:?}");
    assert_eq!(value(&samples, "factord_component_heartbeat_age_seconds", &[("component", "http")]), None);

    // The dashboard, as a browser shows it.
    let dom = chromium_dom(&format!("http://{addr}/")).await;
    let text = dom_text(&dom);
    assert_eq!(pipeline_cell(&dom, "acme-east", "Released"), Some(2), "{dom}");
    assert_eq!(pipeline_cell(&dom, "acme-west", "Released"), Some(1), "{dom}");
    assert_eq!(pipeline_cell(&dom, "acme-east", "Queued"), Some(0), "{dom}");
    let reason = status["subsidiaries"][0]["waiting_loads"][0]["reason"].as_str().expect("a waiting reason");
    assert!(reason.contains("missing"), "{reason}");
    assert!(text.contains(&format!("L-1 Released Broker One {reason}")), "{reason} in: {text}");
    assert!(!text.contains('`') && !text.contains("**"), "no Markdown on the page: {text}");
    let east = element_text(&dom, "data-schedule=\"submission acme-east (capital_depot)\"", "</tr>");
    assert!(east.contains("America/Chicago") && east.contains("16:00:00 C"), "{east}");

    // SIGTERM stops the server with the daemon.
    let pid = daemon.child.as_ref().expect("child").id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let exit = daemon.wait_exit().await;
    assert!(exit.success(), "{exit}: {}", daemon.logs());
    assert!(try_get(addr, "/healthz").await.is_none(), "nothing listens after the stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_http_listen_address_stops_the_start_with_a_message_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let mut daemon = Daemon::configure(port);
    daemon.start();
    let exit = daemon.wait_exit().await;
    assert_eq!(exit.code(), Some(1), "{}", daemon.logs());
    let logs = daemon.logs();
    assert!(logs.contains(&format!("cannot listen on http.listen = 127.0.0.1:{port}")), "{logs}");
    assert_eq!(logs.matches("Address already in use").count(), 1, "the cause, once: {logs}");
    assert!(!logs.contains("factord running"), "{logs}");
    assert!(!logs.contains("not a loopback address"), "loopback needs no warning: {logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_http_listen_address_is_warned_about() {
    // Taken, so that the daemon stops right after the warning: nothing is served anywhere.
    let taken = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let mut daemon = Daemon::configure_at(&format!("0.0.0.0:{port}"));
    daemon.start();
    let exit = daemon.wait_exit().await;
    assert_eq!(exit.code(), Some(1), "{}", daemon.logs());
    let logs = daemon.logs();
    assert!(logs.contains("http.listen is not a loopback address and the dashboard has no login"), "{logs}");
}
