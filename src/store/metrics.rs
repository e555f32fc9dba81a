//! Read-only queries for `/metrics` and the dashboard (src/http): counts grouped by subsidiary,
//! provider and status, taken at scrape time so that every figure is the database's own, and
//! the waiting loads and latest batches the dashboard lists per subsidiary (its open exceptions
//! are `factord exceptions`' list: src/store/rework.rs).
//!
//! The counts are read in one read-only transaction, so they come from one snapshot
//! (REPEATABLE READ on PostgreSQL; SQLite's WAL gives a read transaction one snapshot).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{BatchSummary, BeginSnapshot, Store, StoreError};
use crate::domain::ledger::MoneySummary;

/// Everything `/metrics` reads from the database, each as (labels…, value).
#[derive(Clone, Debug, Default)]
pub struct MetricCounts {
    /// (subsidiary, status, loads).
    pub loads: Vec<(String, String, i64)>,
    /// (subsidiary, loads with a waiting reason).
    pub waiting: Vec<(String, i64)>,
    /// (subsidiary, exception kind, open flags).
    pub exceptions: Vec<(String, String, i64)>,
    /// (provider, batch status, batches).
    pub batches: Vec<(String, String, i64)>,
    /// (provider, item outcome, invoices): one per invoice sent in a batch.
    pub invoices: Vec<(String, String, i64)>,
    /// Report files and their rows, per provider.
    pub reports: Vec<ReportTotals>,
    /// (subsidiary, latest recorded schedule fire).
    pub last_fires: Vec<(String, DateTime<Utc>)>,
    /// Load files refused whole (inbox or `loads import`).
    pub refused_load_files: i64,
    /// The money summary of docs/money.md, as of the scrape's day (UTC).
    pub money: MoneySummary,
}

/// The report files of one provider, summed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportTotals {
    pub provider: String,
    /// Files whose rows were applied (each content once).
    pub ingested: i64,
    /// Files refused whole, nothing applied.
    pub refused: i64,
    pub applied: i64,
    pub skipped: i64,
    pub rejected: i64,
}

/// A load that cannot move on, with the reason recorded.
#[derive(Clone, Debug)]
pub struct WaitingLoad {
    pub load_number: String,
    pub subsidiary: String,
    pub status: String,
    pub customer_name: String,
    pub reason: String,
}

impl Store {
    /// The counts `/metrics` exposes, from one snapshot of the database.
    #[expect(
        clippy::too_many_lines,
        reason = "one read transaction (one snapshot) of several small queries, written once for both backends inside on_pool!"
    )]
    pub async fn metric_counts(&self) -> Result<MetricCounts, StoreError> {
        let mut counts = MetricCounts::default();
        on_pool!(self, pool => {
            let mut tx = pool.begin_snapshot().await?;
            for row in sqlx::query(
                "SELECT subsidiary, status, COUNT(*) AS n, \
                 SUM(CASE WHEN waiting_reason IS NULL THEN 0 ELSE 1 END) AS waiting \
                 FROM loads GROUP BY subsidiary, status ORDER BY subsidiary, status",
            )
            .fetch_all(&mut *tx)
            .await?
            {
                let subsidiary: String = row.try_get("subsidiary")?;
                let waiting: i64 = row.try_get("waiting")?;
                match counts.waiting.last_mut() {
                    Some((last, n)) if *last == subsidiary => *n += waiting,
                    _ => counts.waiting.push((subsidiary.clone(), waiting)),
                }
                counts.loads.push((subsidiary, row.try_get("status")?, row.try_get("n")?));
            }
            for row in sqlx::query(
                "SELECT l.subsidiary, e.kind, COUNT(*) AS n FROM load_exceptions e JOIN loads l ON l.id = e.load_id \
                 WHERE e.cleared_at IS NULL GROUP BY l.subsidiary, e.kind ORDER BY l.subsidiary, e.kind",
            )
            .fetch_all(&mut *tx)
            .await?
            {
                counts.exceptions.push((row.try_get("subsidiary")?, row.try_get("kind")?, row.try_get("n")?));
            }
            for row in sqlx::query(
                "SELECT provider, status, COUNT(*) AS n FROM batches GROUP BY provider, status ORDER BY provider, status",
            )
            .fetch_all(&mut *tx)
            .await?
            {
                counts.batches.push((row.try_get("provider")?, row.try_get("status")?, row.try_get("n")?));
            }
            for row in sqlx::query(
                "SELECT b.provider, i.outcome, COUNT(*) AS n FROM batch_items i JOIN batches b ON b.id = i.batch_id \
                 GROUP BY b.provider, i.outcome ORDER BY b.provider, i.outcome",
            )
            .fetch_all(&mut *tx)
            .await?
            {
                counts.invoices.push((row.try_get("provider")?, row.try_get("outcome")?, row.try_get("n")?));
            }
            // DIALECT: SUM of a BIGINT is NUMERIC on PostgreSQL; the casts keep it an integer.
            for row in sqlx::query(
                "SELECT provider, \
                 CAST(SUM(CASE WHEN refused IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS ingested, \
                 CAST(SUM(CASE WHEN refused IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS refused, \
                 CAST(COALESCE(SUM(applied), 0) AS BIGINT) AS applied, \
                 CAST(COALESCE(SUM(skipped), 0) AS BIGINT) AS skipped, \
                 CAST(COALESCE(SUM(rejected), 0) AS BIGINT) AS rejected \
                 FROM report_files GROUP BY provider ORDER BY provider",
            )
            .fetch_all(&mut *tx)
            .await?
            {
                counts.reports.push(ReportTotals {
                    provider: row.try_get("provider")?,
                    ingested: row.try_get("ingested")?,
                    refused: row.try_get("refused")?,
                    applied: row.try_get("applied")?,
                    skipped: row.try_get("skipped")?,
                    rejected: row.try_get("rejected")?,
                });
            }
            counts.refused_load_files =
                sqlx::query_scalar("SELECT COUNT(*) FROM refused_files WHERE channel = 'loads'").fetch_one(&mut *tx).await?;
            for row in sqlx::query(
                "SELECT subsidiary, MAX(fire_time) AS last FROM schedule_fires GROUP BY subsidiary ORDER BY subsidiary",
            )
            .fetch_all(&mut *tx)
            .await?
            {
                counts.last_fires.push((row.try_get("subsidiary")?, row.try_get("last")?));
            }
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        counts.money = self.money_summary(Utc::now().date_naive()).await?;
        Ok(counts)
    }

    /// Loads with a waiting reason, at most `per_subsidiary` of each subsidiary, by subsidiary
    /// and load number.
    pub async fn waiting_loads(&self, per_subsidiary: i64) -> Result<Vec<WaitingLoad>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT load_number, subsidiary, status, customer_name, waiting_reason FROM ( \
                 SELECT l.load_number, l.subsidiary, l.status, c.name AS customer_name, l.waiting_reason, \
                 ROW_NUMBER() OVER (PARTITION BY l.subsidiary ORDER BY l.load_number) AS n \
                 FROM loads l JOIN customers c ON c.id = l.customer_id WHERE l.waiting_reason IS NOT NULL) AS w \
                 WHERE n <= $1 ORDER BY subsidiary, load_number",
            )
            .bind(per_subsidiary)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(WaitingLoad {
                        load_number: row.try_get("load_number")?,
                        subsidiary: row.try_get("subsidiary")?,
                        status: row.try_get("status")?,
                        customer_name: row.try_get("customer_name")?,
                        reason: row.try_get("waiting_reason")?,
                    })
                })
                .collect()
        })
    }

    /// The latest `per_subsidiary` batches of each subsidiary, newest first, with their item
    /// counts.
    pub async fn recent_batches_per_subsidiary(&self, per_subsidiary: i64) -> Result<Vec<BatchSummary>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                concat!(
                "SELECT ", batch_summary_columns!(),
                " FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY subsidiary ORDER BY created_at DESC, id DESC) AS n \
                 FROM batches) AS b WHERE b.n <= $1 ORDER BY b.subsidiary, b.created_at DESC, b.id DESC"
            ),
            )
            .bind(per_subsidiary)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok(batch_summary_from_row!(r))).collect()
        })
    }
}
