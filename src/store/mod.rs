//! The only module that speaks SQL. A [`Store`] is PostgreSQL or SQLite, chosen once from the
//! database URL; its methods are coarse and transactional (`import_loads`, `move_status`), so
//! callers never see sqlx or a half-done change.
//!
//! Both backends run the same SQL, written in the portable subset (`$n` placeholders,
//! `RETURNING`, `ON CONFLICT`); the [`on_pool!`] macro expands one body for each pool type.
//! Divergences are marked `// DIALECT:`. Migrations live in `migrations/{postgres,sqlite}` and
//! are kept in lockstep.
//!
//! Every status change is a compare-and-set (`WHERE status = $expected`, rows affected
//! checked) written with its history row in one transaction (docs/reliability.md rule 2).

mod types;

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row, SqlitePool};

pub use types::*;

use crate::config::{DatabaseSettings, redact_url};
use crate::domain::{ExceptionKind, LoadFields, LoadStatus, Money};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot open the database {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("load {0} not found")]
    LoadNotFound(String),
    #[error("load {load}: {from} → {to} is not a move of the status graph")]
    IllegalMove { load: String, from: LoadStatus, to: LoadStatus },
    #[error("load {load} is {actual}, not {expected}: someone else moved it first")]
    Conflict { load: String, expected: LoadStatus, actual: LoadStatus },
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("a load of this batch is already in another live batch")]
    AlreadyBatched,
    #[error("cannot draw a batch uid from the OS random generator: {0}")]
    Random(String),
}

/// A connection pool to one of the two backends.
#[derive(Clone, Debug)]
pub enum Store {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Opens a transaction that will write.
trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    // DIALECT: SQLite takes the write lock at BEGIN IMMEDIATE, so a transaction that reads
    // before it writes waits for the busy timeout instead of failing with SQLITE_BUSY when
    // another writer got there first.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

/// Opens a read-only transaction that reads one snapshot of the database throughout.
trait BeginSnapshot {
    type Db: sqlx::Database;
    async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginSnapshot for PgPool {
    type Db = sqlx::Postgres;
    // DIALECT: PostgreSQL's default READ COMMITTED takes a snapshot per statement.
    async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        Ok(tx)
    }
}

impl BeginSnapshot for SqlitePool {
    type Db = sqlx::Sqlite;
    // SQLite (WAL) reads one snapshot for the whole of a read transaction already.
    async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin().await
    }
}

/// Expands `$body` once per backend with `$pool` bound to that backend's pool.
/// The SQL condition of an exception only ops clear (`loads release`): their own hold and a
/// void's notice, whose details start with [`crate::domain::OPS_HOLD`] and
/// [`crate::domain::VOID_NOTICE`]. A factor's report or status never clears or rewords it.
macro_rules! ops_only {
    () => {
        "(load_exceptions.kind = 'held' AND (substr(load_exceptions.detail, 1, 13) = 'held by ops: ' \
         OR substr(load_exceptions.detail, 1, 5) = 'tell '))"
    };
}

macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Postgres($pool) => $body,
            Store::Sqlite($pool) => $body,
        }
    };
}

/// Writes one history row. `$tx` is a transaction of either backend.
macro_rules! insert_history {
    ($tx:expr, $load_id:expr, $from:expr, $to:expr, $at:expr, $cause:expr) => {
        sqlx::query("INSERT INTO load_history (load_id, from_status, to_status, at, cause) VALUES ($1, $2, $3, $4, $5)")
            .bind($load_id)
            .bind($from)
            .bind($to)
            .bind($at)
            .bind($cause)
            .execute(&mut *$tx)
            .await?
    };
}

/// Acts on the invariant's verdict (a `&Invariant`, docs/money.md) for load `$id` inside `$tx`: clears an open
/// `ledger_mismatch` when it holds (true when one was open), raises it or updates its detail
/// when it is broken, leaves it when nothing could be checked.
macro_rules! ledger_mismatch {
    ($tx:expr, $id:expr, $invariant:expr, $now:expr) => {{
        match $invariant {
            crate::domain::ledger::Invariant::Unknown => false,
            crate::domain::ledger::Invariant::Holds => {
                sqlx::query(
                    "UPDATE load_exceptions SET cleared_at = $1 WHERE load_id = $2 \
                     AND kind = 'ledger_mismatch' AND cleared_at IS NULL",
                )
                .bind($now)
                .bind($id)
                .execute(&mut *$tx)
                .await?
                .rows_affected()
                    > 0
            }
            crate::domain::ledger::Invariant::Broken(detail) => {
                sqlx::query(
                    "INSERT INTO load_exceptions (load_id, kind, detail, raised_at) \
                     VALUES ($1, 'ledger_mismatch', $2, $3) ON CONFLICT (load_id, kind) \
                     WHERE cleared_at IS NULL DO UPDATE SET detail = excluded.detail",
                )
                .bind($id)
                .bind(detail.as_str())
                .bind($now)
                .execute(&mut *$tx)
                .await?;
                false
            }
        }
    }};
}

/// A report file's purchases of loads ops had already adjusted the figures of (docs/money.md
/// "Adjustments"): the invariant is checked again on the sums, purchase + adjustments, so a
/// figure entered by hand and then reported does not count twice unseen. Clears or raises
/// `ledger_mismatch` with both figures; inside the file's transaction `$tx`.
macro_rules! check_adjusted_purchases {
    ($tx:expr, $file_id:expr) => {{
        let rows: Vec<crate::store::ledger::AdjustedPurchase> = sqlx::query_as(
            "SELECT l.id, l.amount_cents, p.advance_cents, p.fee_cents, p.reserve_cents, f.file_name, p.row_number, \
             CAST(SUM(CASE WHEN e.field = 'advance' THEN e.amount_cents END) AS BIGINT), \
             CAST(SUM(CASE WHEN e.field = 'fee' THEN e.amount_cents END) AS BIGINT), \
             CAST(SUM(CASE WHEN e.field = 'reserve' THEN e.amount_cents END) AS BIGINT) \
             FROM ledger_events e JOIN loads l ON l.id = e.load_id AND e.invoice_number = l.invoice_number \
             JOIN purchases p ON p.load_id = e.load_id AND p.report_file_id = $1 \
             JOIN report_files f ON f.id = p.report_file_id \
             WHERE e.kind = 'adjustment' AND e.field IN ('advance', 'fee', 'reserve') \
             GROUP BY l.id, l.amount_cents, p.advance_cents, p.fee_cents, p.reserve_cents, f.file_name, p.row_number",
        )
        .bind($file_id)
        .fetch_all(&mut *$tx)
        .await?;
        let now = chrono::Utc::now();
        for row in rows {
            let id = row.0;
            ledger_mismatch!($tx, id, &crate::store::ledger::adjusted_check(&row), now);
        }
    }};
}

/// Reads an [`InboxFileRecord`] from a row of `inbox_files` (either backend).
macro_rules! inbox_file_from_row {
    ($row:expr) => {{
        let row = $row;
        InboxFileRecord {
            channel: row.try_get("channel")?,
            sha256: row.try_get("sha256")?,
            file_name: row.try_get("file_name")?,
            processed_at: row.try_get("processed_at")?,
            summary: row.try_get("summary")?,
        }
    }};
}

/// The columns `batch_summary_from_row!` reads, from `batches b`, as a literal.
macro_rules! batch_summary_columns {
    () => {
        "b.id, b.subsidiary, b.provider, b.status, b.invoice_count, b.total_cents, b.reference, b.error, \
         b.created_at, \
         (SELECT COUNT(*) FROM batch_items i WHERE i.batch_id = b.id AND i.outcome IN ('accepted', 'void')) AS accepted, \
         (SELECT COUNT(*) FROM batch_items i WHERE i.batch_id = b.id AND i.outcome = 'rejected') AS rejected, \
         (SELECT COUNT(*) FROM batch_items i WHERE i.batch_id = b.id AND i.outcome = 'transient') AS transient"
    };
}

/// Reads a [`BatchSummary`] from a row selected with `batch_summary_columns!()` (either backend).
macro_rules! batch_summary_from_row {
    ($row:expr) => {{
        let r = $row;
        BatchSummary {
            id: r.try_get("id")?,
            subsidiary: r.try_get("subsidiary")?,
            provider: r.try_get("provider")?,
            status: r.try_get("status")?,
            invoice_count: r.try_get("invoice_count")?,
            total_cents: r.try_get("total_cents")?,
            reference: r.try_get("reference")?,
            error: r.try_get("error")?,
            created_at: r.try_get("created_at")?,
            accepted: r.try_get("accepted")?,
            rejected: r.try_get("rejected")?,
            transient: r.try_get("transient")?,
        }
    }};
}

/// The columns `load_from_row!` reads, as a literal so queries stay `&'static str`.
macro_rules! load_columns {
    () => {
        "l.id, l.load_number, l.subsidiary, l.customer_id, c.name AS customer_name, \
         c.mc AS customer_mc, c.dot AS customer_dot, l.amount_cents, l.status, l.delivered_at, l.pod, \
         l.rate_confirmation, l.po_number, l.factor_reference, l.truck, l.pickup_city, l.pickup_state, \
         l.delivery_city, l.delivery_state, l.bill_to_name, l.bill_to_address, l.pickup_date, l.shipper_name, \
         l.consignee_name, l.bol_number, l.terms_days, l.invoice_number, l.batch_id, l.waiting_reason, l.created_at, l.updated_at, \
         l.invoice_date, l.packet_path, l.submission_reference, l.packet_noa, \
         (SELECT b.provider FROM batches b WHERE b.id = l.batch_id) AS factor"
    };
}

/// Reads a [`LoadRecord`] from a row selected with `load_columns!()` (either backend).
macro_rules! load_from_row {
    ($row:expr) => {{
        let row = $row;
        let status: String = row.try_get("status")?;
        LoadRecord {
            id: row.try_get("id")?,
            load_number: row.try_get("load_number")?,
            customer_name: row.try_get("customer_name")?,
            customer_mc: row.try_get("customer_mc")?,
            customer_dot: row.try_get("customer_dot")?,
            status: LoadStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            invoice_number: row.try_get("invoice_number")?,
            invoice_date: row.try_get("invoice_date")?,
            packet_path: row.try_get("packet_path")?,
            submission_reference: row.try_get("submission_reference")?,
            packet_noa: row.try_get("packet_noa")?,
            factor: row.try_get("factor")?,
            batch_id: row.try_get("batch_id")?,
            waiting_reason: row.try_get("waiting_reason")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            fields: LoadFields {
                subsidiary: row.try_get("subsidiary")?,
                customer_id: row.try_get("customer_id")?,
                amount: Money::from_cents(row.try_get("amount_cents")?),
                delivered_at: row.try_get("delivered_at")?,
                pod: row.try_get("pod")?,
                rate_confirmation: row.try_get("rate_confirmation")?,
                po_number: row.try_get("po_number")?,
                factor_reference: row.try_get("factor_reference")?,
                truck: row.try_get("truck")?,
                pickup_city: row.try_get("pickup_city")?,
                pickup_state: row.try_get("pickup_state")?,
                delivery_city: row.try_get("delivery_city")?,
                delivery_state: row.try_get("delivery_state")?,
                bill_to_name: row.try_get("bill_to_name")?,
                bill_to_address: row.try_get("bill_to_address")?,
                pickup_date: row.try_get("pickup_date")?,
                shipper_name: row.try_get("shipper_name")?,
                consignee_name: row.try_get("consignee_name")?,
                bol_number: row.try_get("bol_number")?,
                terms_days: row.try_get("terms_days")?,
            },
        }
    }};
}

/// The file of an `sqlite:` URL, or `None` for PostgreSQL.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    SqliteConnectOptions::from_str(url).ok().map(|o| o.get_filename().to_path_buf())
}

mod loads;

mod invoicing;

pub use invoicing::{ClaimError, Completion, InvoiceHolder};

mod leader;

pub use leader::{LeaseHolder, SCHEDULER_ROLE};

mod metrics;

pub use metrics::{MetricCounts, ReportTotals, WaitingLoad};

mod reports;

pub use reports::{
    LoadReportRow, ReportBegin, ReportCounts, ReportFileMeta, ReportFileRecord, ReportKeys, ReportReader, ReportTx,
};

mod submission;

pub use submission::{
    BatchDraft, BatchSummary, CREDENTIALS_REFUSED, CreatedBatch, DraftItem, GOES_AGAIN, PendingBatch,
};

mod credit;

pub use credit::{CreditCandidate, CreditCheckRecord, NewCreditCheck};

mod status_sync;

pub use status_sync::{HeldInvoice, StatusChange};

mod documents;

pub use documents::{DocumentChange, DocumentKind, DocumentsRecorded, LoadDocument, RetryRecorded, ReworkError};
mod rework;

pub use rework::{
    AdjustOutcome, FiguresCheck, HoldOutcome, OpenExceptionRow, ReleaseOutcome, VoidOutcome, VoidRecord, VoidRequest,
};
mod alerts;
mod ledger;

pub use alerts::{AlertRecord, AlertScan, NewAlert};

impl Store {
    /// Opens the database named by the settings. SQLite files (and their folder) are created
    /// on first use, with WAL, a busy timeout and foreign keys on.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        let open_error = |reason: String| StoreError::Open { url: redact_url(&settings.url), reason };
        if settings.is_postgres() {
            let mut options = PgConnectOptions::from_str(&settings.url).map_err(|e| open_error(e.to_string()))?;
            if let Some(password) = &settings.password {
                options = options.password(password.expose_secret());
            }
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|e| open_error(e.to_string()))?;
            Ok(Store::Postgres(pool))
        } else {
            let options = SqliteConnectOptions::from_str(&settings.url)
                .map_err(|e| open_error(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // A report of 100k rows touches some 30 MB of pages in one transaction; with
                // SQLite's default 2 MB cache it reads them again and spills them to the log
                // midway. 32 MiB per connection, taken only as pages are used.
                .pragma("cache_size", "-32768")
                // Statement journals and sorts in memory, not in temporary files.
                .pragma("temp_store", "memory");
            if let Some(parent) = options.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| open_error(format!("cannot create {}: {e}", parent.display())))?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|e| open_error(e.to_string()))?;
            Ok(Store::Sqlite(pool))
        }
    }

    /// Which backend this is, for messages.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "postgres",
            Store::Sqlite(_) => "sqlite",
        }
    }

    /// Creates or upgrades the schema.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await?,
            Store::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => { sqlx::query("SELECT 1").execute(pool).await?; });
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// The record of an inbox file already processed with this content, if any.
    pub async fn find_inbox_file(&self, channel: &str, sha256: &str) -> Result<Option<InboxFileRecord>, StoreError> {
        on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT channel, sha256, file_name, processed_at, summary FROM inbox_files WHERE channel = $1 AND sha256 = $2",
            )
            .bind(channel)
            .bind(sha256)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(inbox_file_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Records a load file refused whole, with why (for `status`, the dashboard and metrics).
    pub async fn record_refused_file(
        &self,
        channel: &str,
        file_name: &str,
        sha256: Option<&str>,
        reason: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("INSERT INTO refused_files (channel, file_name, sha256, refused_at, reason) VALUES ($1, $2, $3, $4, $5)")
                .bind(channel)
                .bind(file_name)
                .bind(sha256)
                .bind(Utc::now())
                .bind(reason)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The most recent refused files of a channel, newest first.
    pub async fn recent_refused_files(&self, channel: &str, limit: i64) -> Result<Vec<RefusedFile>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT file_name, refused_at, reason FROM refused_files WHERE channel = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(channel)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(RefusedFile {
                        file_name: r.try_get("file_name")?,
                        refused_at: r.try_get("refused_at")?,
                        reason: r.try_get("reason")?,
                    })
                })
                .collect()
        })
    }

    /// The most recent inbox files of a channel, newest first.
    pub async fn recent_inbox_files(&self, channel: &str, limit: i64) -> Result<Vec<InboxFileRecord>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT channel, sha256, file_name, processed_at, summary FROM inbox_files WHERE channel = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(channel)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(inbox_file_from_row!(row))).collect()
        })
    }

    /// Moves a load `from → to` if it is still `from` (compare-and-set), with its history row,
    /// in one transaction. Moves outside the graph of docs/design.md §2 are refused before any SQL.
    pub async fn move_status(
        &self,
        load_number: &str,
        from: LoadStatus,
        to: LoadStatus,
        cause: &str,
    ) -> Result<(), StoreError> {
        if !from.can_move_to(to) {
            return Err(StoreError::IllegalMove { load: load_number.to_string(), from, to });
        }
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let moved = sqlx::query(
                "UPDATE loads SET status = $1, updated_at = $2 WHERE load_number = $3 AND status = $4 RETURNING id",
            )
            .bind(to.as_str())
            .bind(now)
            .bind(load_number)
            .bind(from.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(moved) = moved else {
                tx.rollback().await?;
                let actual: Option<String> = sqlx::query_scalar("SELECT status FROM loads WHERE load_number = $1")
                    .bind(load_number)
                    .fetch_optional(pool)
                    .await?;
                return match actual {
                    None => Err(StoreError::LoadNotFound(load_number.to_string())),
                    Some(actual) => Err(StoreError::Conflict {
                        load: load_number.to_string(),
                        expected: from,
                        actual: LoadStatus::from_str(&actual).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    }),
                };
            };
            let id: i64 = moved.try_get("id")?;
            insert_history!(tx, id, Some(from.as_str()), to.as_str(), now, cause);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Raises an exception flag on a load; a flag of that kind already open keeps its first
    /// detail and time.
    pub async fn raise_exception(
        &self,
        load_number: &str,
        kind: ExceptionKind,
        detail: &str,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let inserted = sqlx::query(
                "INSERT INTO load_exceptions (load_id, kind, detail, raised_at) \
                 SELECT id, $2, $3, $4 FROM loads WHERE load_number = $1 \
                 ON CONFLICT (load_id, kind) WHERE cleared_at IS NULL DO NOTHING",
            )
            .bind(load_number)
            .bind(kind.as_str())
            .bind(detail)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
            if inserted == 0 && !self.load_exists(load_number).await? {
                return Err(StoreError::LoadNotFound(load_number.to_string()));
            }
            Ok(())
        })
    }

    /// Clears the open exception of this kind, if any. Returns whether one was open.
    pub async fn clear_exception(&self, load_number: &str, kind: ExceptionKind) -> Result<bool, StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let cleared = sqlx::query(
                "UPDATE load_exceptions SET cleared_at = $1 WHERE cleared_at IS NULL AND kind = $2 \
                 AND load_id = (SELECT id FROM loads WHERE load_number = $3)",
            )
            .bind(now)
            .bind(kind.as_str())
            .bind(load_number)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(cleared > 0)
        })
    }

    /// Clears a load's open `rejected` exception and its waiting reason, so the next batch
    /// takes it again. `false` if it had none.
    pub async fn retry_rejected(&self, load_number: &str) -> Result<bool, StoreError> {
        let cleared = self.clear_exception(load_number, ExceptionKind::Rejected).await?;
        if cleared {
            self.set_waiting_reason(load_number, None).await?;
        }
        Ok(cleared)
    }

    /// Records why a load cannot move on (or clears it with `None`).
    pub async fn set_waiting_reason(&self, load_number: &str, reason: Option<&str>) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let updated = sqlx::query("UPDATE loads SET waiting_reason = $1 WHERE load_number = $2")
                .bind(reason)
                .bind(load_number)
                .execute(pool)
                .await?
                .rows_affected();
            if updated == 0 {
                return Err(StoreError::LoadNotFound(load_number.to_string()));
            }
            Ok(())
        })
    }

    async fn load_exists(&self, load_number: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool => {
            let found: Option<i64> = sqlx::query_scalar("SELECT id FROM loads WHERE load_number = $1")
                .bind(load_number)
                .fetch_optional(pool)
                .await?;
            Ok(found.is_some())
        })
    }

    /// One load with its customer, open exceptions and full history.
    pub async fn load_detail(&self, load_number: &str) -> Result<Option<LoadDetail>, StoreError> {
        on_pool!(self, pool => {
            let row = sqlx::query(concat!(
                "SELECT ", load_columns!(), " FROM loads l JOIN customers c ON c.id = l.customer_id WHERE l.load_number = $1"
            ))
            .bind(load_number)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let load = load_from_row!(&row);
            let exceptions = sqlx::query(
                "SELECT kind, detail, raised_at FROM load_exceptions WHERE load_id = $1 AND cleared_at IS NULL ORDER BY id",
            )
            .bind(load.id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(ExceptionRecord {
                    kind: ExceptionKind::from_str(&kind).map_err(StoreError::Corrupt)?,
                    detail: r.try_get("detail")?,
                    raised_at: r.try_get("raised_at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
            let history = sqlx::query("SELECT from_status, to_status, at, cause FROM load_history WHERE load_id = $1 ORDER BY id")
                .bind(load.id)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    let parse = |s: String| LoadStatus::from_str(&s).map_err(|e| StoreError::Corrupt(e.to_string()));
                    let from: Option<String> = r.try_get("from_status")?;
                    Ok(HistoryRecord {
                        from: from.map(parse).transpose()?,
                        to: parse(r.try_get("to_status")?)?,
                        at: r.try_get("at")?,
                        cause: r.try_get("cause")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Some(LoadDetail { load, exceptions, history }))
        })
    }

    /// Loads matching the filter, in load-number order, with their open exceptions.
    pub async fn list_loads(&self, filter: &LoadFilter) -> Result<Vec<LoadSummary>, StoreError> {
        let status = filter.status.map(LoadStatus::as_str);
        on_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", load_columns!(), " FROM loads l JOIN customers c ON c.id = l.customer_id \
                 WHERE ($1 IS NULL OR l.status = $1) AND ($2 IS NULL OR l.subsidiary = $2) \
                 ORDER BY l.load_number LIMIT $3"
            ))
            .bind(status)
            .bind(filter.subsidiary.as_deref())
            .bind(filter.limit.unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?;
            let exceptions = sqlx::query(
                "SELECT l.load_number, e.kind, e.detail, e.raised_at FROM load_exceptions e JOIN loads l ON l.id = e.load_id \
                 WHERE e.cleared_at IS NULL AND ($1 IS NULL OR l.status = $1) AND ($2 IS NULL OR l.subsidiary = $2) ORDER BY e.id",
            )
            .bind(status)
            .bind(filter.subsidiary.as_deref())
            .fetch_all(pool)
            .await?;
            let mut by_load: std::collections::HashMap<String, Vec<ExceptionRecord>> = std::collections::HashMap::new();
            for r in &exceptions {
                let kind: String = r.try_get("kind")?;
                by_load.entry(r.try_get("load_number")?).or_default().push(ExceptionRecord {
                    kind: ExceptionKind::from_str(&kind).map_err(StoreError::Corrupt)?,
                    detail: r.try_get("detail")?,
                    raised_at: r.try_get("raised_at")?,
                });
            }
            rows.iter()
                .map(|row| {
                    let load = load_from_row!(row);
                    let exceptions = by_load.remove(&load.load_number).unwrap_or_default();
                    Ok(LoadSummary { load, exceptions })
                })
                .collect()
        })
    }

    /// Counts per subsidiary × status, open exceptions and waiting loads per subsidiary.
    pub async fn status_counts(&self) -> Result<Vec<SubsidiaryCounts>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT subsidiary, status, COUNT(*) AS n, \
                 SUM(CASE WHEN waiting_reason IS NULL THEN 0 ELSE 1 END) AS waiting FROM loads GROUP BY subsidiary, status",
            )
            .fetch_all(pool)
            .await?;
            let exceptions = sqlx::query(
                "SELECT l.subsidiary, COUNT(*) AS n FROM load_exceptions e JOIN loads l ON l.id = e.load_id \
                 WHERE e.cleared_at IS NULL GROUP BY l.subsidiary",
            )
            .fetch_all(pool)
            .await?;
            let mut out: std::collections::BTreeMap<String, SubsidiaryCounts> = std::collections::BTreeMap::new();
            for r in &rows {
                let subsidiary: String = r.try_get("subsidiary")?;
                let status: String = r.try_get("status")?;
                let status = LoadStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let entry = out.entry(subsidiary.clone()).or_insert_with(|| SubsidiaryCounts::new(subsidiary));
                entry.counts.insert(status, r.try_get::<i64, _>("n")?);
                entry.waiting += r.try_get::<i64, _>("waiting")?;
            }
            for r in &exceptions {
                let subsidiary: String = r.try_get("subsidiary")?;
                let entry = out.entry(subsidiary.clone()).or_insert_with(|| SubsidiaryCounts::new(subsidiary));
                entry.exceptions = r.try_get("n")?;
            }
            Ok(out.into_values().collect())
        })
    }
}

#[cfg(test)]
mod ops_only_tests {
    /// The SQL condition names the very prefixes the rework commands write.
    #[test]
    fn the_ops_only_condition_matches_the_details_rework_writes() {
        let sql = ops_only!();
        for prefix in [crate::domain::OPS_HOLD, crate::domain::VOID_NOTICE] {
            let condition = format!("substr(load_exceptions.detail, 1, {}) = '{prefix}'", prefix.len());
            assert!(sql.contains(&condition), "{sql} lacks {condition}");
        }
    }
}
