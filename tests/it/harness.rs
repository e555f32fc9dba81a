//! Test environments: a temp folder laid out like a working directory (config, inbox, archive,
//! documents, data), settings loaded from a real config file, and a store on a fresh database.

#![allow(dead_code, reason = "shared test helpers: each test binary uses a part of them")]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use factord::config::{Environment, Settings};
use factord::store::Store;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The shipped example's two subsidiaries, with paths made absolute by the caller.
pub const SUBSIDIARIES: &str = r#"
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

[[subsidiary]]
id = "acme-west"
name = "ACME Freight West LLC"
address = "2200 Camelback Rd, Phoenix, AZ 85016"
timezone = "America/Phoenix"
invoice_prefix = "AW-"
invoicing_method = "direct"
"#;

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub settings: Settings,
    pub store: Store,
    pub backend: Backend,
    pub database_url: String,
    _pg: Option<PgDatabase>,
}

impl TestEnv {
    /// A fresh environment on `backend`, or `None` (with a note on stderr) when PostgreSQL is
    /// asked for but `TEST_DATABASE_URL` is not set.
    pub async fn new(backend: Backend) -> Option<TestEnv> {
        TestEnv::with_config(backend, "").await
    }

    /// As [`TestEnv::new`], with `extra` appended to the config's top-level sections.
    pub async fn with_config(backend: Backend, extra: &str) -> Option<TestEnv> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (database_url, pg) = match backend {
            Backend::Sqlite => (format!("sqlite://{}", dir.path().join("data/factord.db").display()), None),
            Backend::Postgres => {
                let pg = PgDatabase::create().await?;
                (pg.url.clone(), Some(pg))
            }
        };
        let config_path = write_config(dir.path(), &database_url, extra);
        let settings = Settings::load(&config_path, &Environment::new()).expect("test config is valid");
        let store = Store::connect(&settings.database).await.expect("connect");
        store.migrate().await.expect("migrate");
        Some(TestEnv { dir, config_path, settings, store, backend, database_url, _pg: pg })
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes `content` to `relative` under the environment's folder.
    pub fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
        path
    }
}

/// Writes `config/factord.toml` under `root` with every path inside `root`.
/// The uid stored with a batch (read straight from its database).
pub async fn batch_uid(env: &TestEnv, batch_id: &str) -> String {
    let sql = "SELECT uid FROM batches WHERE id = $1";
    let uid: Option<String> = match env.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&env.database_url).await.expect("connect");
            sqlx::query_scalar(sql).bind(batch_id).fetch_one(&pool).await.expect("uid")
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&env.database_url).await.expect("connect");
            sqlx::query_scalar(sql).bind(batch_id).fetch_one(&pool).await.expect("uid")
        }
    };
    uid.unwrap_or_else(|| panic!("batch {batch_id} has no uid"))
}

pub fn write_config(root: &Path, database_url: &str, extra: &str) -> PathBuf {
    let config_dir = root.join("config");
    std::fs::create_dir_all(&config_dir).expect("mkdir config");
    let path = config_dir.join("factord.toml");
    let p = |name: &str| root.join(name).display().to_string();
    let text = format!(
        r#"
[database]
url = "{database_url}"

[paths]
inbox = "{inbox}"
outbox = "{outbox}"
documents = "{documents}"
archive = "{archive}"
data = "{data}"

[intake]
scan_interval = "100ms"
quiet_period = "300ms"

{extra}
{SUBSIDIARIES}
"#,
        inbox = p("inbox"),
        outbox = p("outbox"),
        documents = p("documents"),
        archive = p("archive"),
        data = p("data"),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// A PostgreSQL database created for one test from `TEST_DATABASE_URL` and dropped after it.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

static PG_COUNTER: AtomicU32 = AtomicU32::new(0);

impl PgDatabase {
    pub async fn create() -> Option<PgDatabase> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            // In CI a skipped PostgreSQL test would pass green while testing nothing.
            assert!(
                std::env::var_os("CI").is_none(),
                "TEST_DATABASE_URL is not set, and CI must test PostgreSQL (scripts/test starts it)"
            );
            eprintln!("SKIPPED on PostgreSQL: TEST_DATABASE_URL is not set");
            return None;
        };
        let name = format!(
            "factord_test_{}_{}_{}",
            std::process::id(),
            PG_COUNTER.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros() % 1_000_000
        );
        let mut admin = connect_admin(&admin_url).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let url = replace_database(&admin_url, &name);
        Some(PgDatabase { admin_url, name, url })
    }
}

async fn connect_admin(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.expect("connect to TEST_DATABASE_URL")
}

fn replace_database(url: &str, name: &str) -> String {
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

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside async; a small runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                let mut admin = connect_admin(&admin_url).await;
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut admin)
                    .await;
            });
        })
        .join();
    }
}

/// Runs a test body against SQLite and PostgreSQL: `both_backends!(name, |env| { ... });`
/// makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$env:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports, reason = "not every test module uses everything of its parent")]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $env = $crate::harness::TestEnv::new($crate::harness::Backend::Sqlite).await.expect("sqlite env");
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($env) = $crate::harness::TestEnv::new($crate::harness::Backend::Postgres).await else {
                    return;
                };
                $body
            }
        }
    };
}

/// Polls `check` until it returns `Some` or `deadline` passes (no bare sleeps in tests).
pub async fn wait_for<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A CSV load export with the given data rows under the standard header.
pub fn loads_csv(rows: &[&str]) -> String {
    let mut text = String::from(
        "load_number,subsidiary,customer_id,customer_name,customer_mc,amount,status,delivered_at,pod,rate_confirmation,po_number,factor_reference,truck\n",
    );
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text
}

/// A child process (a daemon) killed when the test ends, also when it ends early on a failed
/// assertion, so none is left running.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
