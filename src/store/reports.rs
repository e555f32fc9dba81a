//! Report files (docs/design.md §8): one transaction per file holds its record (the dedupe by
//! sha256), the loads its rows name, every change its rows make and the row outcomes. The
//! file is applied a chunk of rows at a time inside that transaction ([`ReportTx`]), so
//! neither memory nor any statement grows with the file; a later chunk reads the loads as the
//! earlier ones left them.
//!
//! Set-based: a chunk is a handful of statements whatever its length. PostgreSQL takes each
//! column as an array (`UNNEST`). SQLite takes a list of keys or ids as one JSON array
//! (`json_each`) and writes rows as multi-row `VALUES`, a thousand rows per statement.
//! Every status change is still a compare-and-set: the statement moves only loads still in
//! the status the plan read, and a count that differs drops the whole file's transaction so
//! the caller applies it again against fresh data.
//!
//! The store knows the plan's types (`domain::report`), not the rules that make one.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{BeginWrite, Store, StoreError};
use crate::domain::report::{ChunkLoads, Outcome, PaymentKey, ReportLoad, ReportPlan, VoidedInvoice};
use crate::domain::{ExceptionKind, LoadStatus};

/// Inserts the file's record unless the same content was ingested before; evaluates to
/// `Some(id)` or `None`. `$tx` is a transaction of either backend.
macro_rules! claim_file {
    ($tx:expr, $meta:expr, $now:expr) => {{
        let row = sqlx::query(
            "INSERT INTO report_files (provider, kind, sha256, file_name, processed_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (provider, sha256) WHERE refused IS NULL DO NOTHING RETURNING id",
        )
        .bind($meta.provider)
        .bind($meta.kind)
        .bind($meta.sha256)
        .bind($meta.file_name)
        .bind($now)
        .fetch_optional(&mut *$tx)
        .await?;
        match row {
            Some(row) => Some(row.try_get::<i64, _>(0)?),
            None => None,
        }
    }};
}

/// Writes the file's counts into its record.
macro_rules! finish_file {
    ($tx:expr, $file_id:expr, $counts:expr) => {{
        let counts: ReportCounts = $counts;
        sqlx::query("UPDATE report_files SET rows_total = $1, applied = $2, skipped = $3, rejected = $4 WHERE id = $5")
            .bind(counts.rows)
            .bind(counts.applied)
            .bind(counts.skipped)
            .bind(counts.rejected)
            .bind($file_id)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// Stores the next piece of the file's result text.
macro_rules! add_outcomes {
    ($tx:expr, $file_id:expr, $chunk:expr, $text:expr) => {{
        sqlx::query("INSERT INTO report_file_outcomes (report_file_id, chunk, text) VALUES ($1, $2, $3)")
            .bind($file_id)
            .bind($chunk)
            .bind($text)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// A report file as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct ReportFileRecord {
    pub id: i64,
    pub provider: String,
    pub kind: Option<String>,
    pub file_name: String,
    pub sha256: String,
    pub processed_at: DateTime<Utc>,
    pub rows: i64,
    pub applied: i64,
    pub skipped: i64,
    pub rejected: i64,
    /// Why the file was refused whole; `None` when its rows were applied.
    pub refused: Option<String>,
}

/// The file being ingested.
#[derive(Clone, Copy, Debug)]
pub struct ReportFileMeta<'a> {
    pub provider: &'a str,
    pub kind: &'a str,
    pub sha256: &'a str,
    pub file_name: &'a str,
}

/// What opening a report file's transaction found.
pub enum ReportBegin {
    /// The file is new: its record is claimed in the open transaction.
    Open(ReportTx),
    /// The same content was ingested before: nothing is applied. Carries the earlier record and
    /// its stored outcomes (the result file of the first ingest).
    Duplicate { previous: ReportFileRecord, outcomes: String },
}

/// A report file's rows counted by outcome, for its record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportCounts {
    pub rows: i64,
    pub applied: i64,
    pub skipped: i64,
    pub rejected: i64,
}

impl ReportCounts {
    /// Counts one row's outcome.
    pub fn add_outcome(&mut self, outcome: Outcome) {
        self.rows += 1;
        match outcome {
            Outcome::Applied => self.applied += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Rejected => self.rejected += 1,
        }
    }
}

/// The open transaction of one report file (docs/design.md §8: all of a file or nothing). Its rows are
/// applied a chunk at a time: [`ReportTx::loads`] reads the loads a chunk names — seeing what
/// the chunks before it wrote, so a load named twice in a file sees its first row — and
/// [`ReportTx::write`] writes the chunk's plan. [`ReportTx::commit`] writes the counts and
/// commits; dropping it instead rolls everything back, the file's record included.
pub struct ReportTx {
    tx: Tx,
    file_id: i64,
    now: DateTime<Utc>,
    payment: bool,
    file_name: String,
    /// Pieces of the result text stored so far.
    pieces: i64,
}

enum Tx {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

/// A report row that changed a load, for `loads show`.
#[derive(Clone, Debug, Serialize)]
pub struct LoadReportRow {
    pub kind: String,
    pub file_name: String,
    pub row: i64,
    pub processed_at: DateTime<Utc>,
    /// What it recorded, e.g. `advance 1900.00, fee 60.00` or `paid 500.00`.
    pub detail: String,
}

macro_rules! report_file_from_row {
    ($row:expr) => {{
        let row = $row;
        ReportFileRecord {
            id: row.try_get("id")?,
            provider: row.try_get("provider")?,
            kind: row.try_get("kind")?,
            file_name: row.try_get("file_name")?,
            sha256: row.try_get("sha256")?,
            processed_at: row.try_get("processed_at")?,
            rows: row.try_get("rows_total")?,
            applied: row.try_get("applied")?,
            skipped: row.try_get("skipped")?,
            rejected: row.try_get("rejected")?,
            refused: row.try_get("refused")?,
        }
    }};
}

macro_rules! report_file_columns {
    () => {
        "id, provider, kind, file_name, sha256, processed_at, rows_total, applied, skipped, rejected, refused"
    };
}

/// Decodes the loads of a PostgreSQL snapshot query (SQLite returns them as JSON: `loads_from_json`).
macro_rules! report_loads_from_rows {
    ($rows:expr) => {{
        let mut shared = Shared::default();
        let mut loads = Vec::new();
        for row in $rows {
            let text = |column: &str| -> Result<Option<Text<'_>>, sqlx::Error> {
                Ok(row.try_get::<Option<&str>, _>(column)?.map(|t| Text(Cow::Borrowed(t))))
            };
            let required = |column: &str| -> Result<Text<'_>, sqlx::Error> {
                Ok(Text(Cow::Borrowed(row.try_get::<&str, _>(column)?)))
            };
            let load = SnapshotLoad {
                id: row.try_get("id")?,
                load_number: required("load_number")?,
                invoice_number: text("invoice_number")?,
                subsidiary: required("subsidiary")?,
                status: required("status")?,
                amount_cents: row.try_get("amount_cents")?,
                batch_id: text("batch_id")?,
            };
            loads.push(load.into_load(&mut shared)?);
        }
        loads
    }};
}

/// A text column of a snapshot: borrowed from the row or the JSON where it can be (a JSON
/// string with escapes is decoded into an owned one).
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(text.to_string())))
            }
            fn visit_string<E>(self, text: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(Visit(std::marker::PhantomData))
    }
}

/// One load of a snapshot query, as its columns (on SQLite, a JSON array of them).
#[derive(Deserialize)]
struct SnapshotLoad<'a> {
    id: i64,
    #[serde(borrow)]
    load_number: Text<'a>,
    #[serde(borrow)]
    invoice_number: Option<Text<'a>>,
    #[serde(borrow)]
    subsidiary: Text<'a>,
    #[serde(borrow)]
    status: Text<'a>,
    amount_cents: i64,
    #[serde(borrow)]
    batch_id: Option<Text<'a>>,
}

/// Texts many loads share (their subsidiary, their batch), kept once.
#[derive(Default)]
struct Shared(FxHashSet<Arc<str>>);

impl Shared {
    fn get(&mut self, text: &str) -> Arc<str> {
        if let Some(known) = self.0.get(text) {
            return known.clone();
        }
        let text: Arc<str> = text.into();
        self.0.insert(text.clone());
        text
    }
}

impl SnapshotLoad<'_> {
    fn into_load(self, shared: &mut Shared) -> Result<ReportLoad, StoreError> {
        Ok(ReportLoad {
            id: self.id,
            load_number: self.load_number.0.as_ref().into(),
            invoice_number: self.invoice_number.map(|t| t.0.as_ref().into()),
            subsidiary: shared.get(&self.subsidiary.0),
            status: LoadStatus::from_str(&self.status.0).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            amount_cents: self.amount_cents,
            // The batch id for now: `resolve_loads` puts the batch's provider here.
            provider: self.batch_id.map(|b| shared.get(&b.0)),
            purchased: false,
            paid_cents: 0,
            payments: HashSet::new(),
            open_exceptions: HashSet::new(),
        })
    }
}

const SNAPSHOT_COLUMNS: &str =
    "l.id, l.load_number, l.invoice_number, l.subsidiary, l.status, l.amount_cents, l.batch_id";

/// The loads a report's rows name, looked up from the list of keys (each one an index probe),
/// not by scanning loads. DIALECT: PostgreSQL takes the keys as an array. The probe is a
/// `LATERAL` subquery the planner cannot flatten (`LIMIT 1`: both keys are unique), so it
/// runs once per key on the key's unique index: as a plain join, a chunk of 20,000 keys made
/// the planner hash the whole loads table (a seq scan that grows with the table, spilling to
/// disk at the default `work_mem`): 0.44 s against 0.08 s at 400k loads in `EXPLAIN ANALYZE`.
/// `lock` locks the rows found.
fn snapshot_sql(column: &str, lock: &str) -> String {
    format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM UNNEST($1::text[]) AS k(key) \
         CROSS JOIN LATERAL (SELECT * FROM loads WHERE loads.{column} = k.key LIMIT 1{lock}) AS l"
    )
}

/// As [`snapshot_sql`] for SQLite: the keys as a JSON array driven as the outer loop
/// (`CROSS JOIN`), the loads back as one JSON array of arrays.
fn sqlite_snapshot_sql(column: &str) -> String {
    format!(
        "SELECT json_group_array(json_array(l.id, l.load_number, l.invoice_number, l.subsidiary, l.status, \
         l.amount_cents, l.batch_id)) \
         FROM json_each($1) AS k CROSS JOIN loads l ON l.{column} = k.value"
    )
}

fn loads_from_json(text: Option<String>) -> Result<Vec<ReportLoad>, StoreError> {
    let Some(text) = text else { return Ok(Vec::new()) };
    let loads: Vec<SnapshotLoad<'_>> = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut shared = Shared::default();
    loads.into_iter().map(|load| load.into_load(&mut shared)).collect()
}

/// The keys of a report: every invoice number, and the load number of each row with the
/// invoice number on that row (rows are matched by invoice number, else by load number).
pub struct ReportKeys<'a> {
    /// Sorted: the lookups then walk the index in order.
    pub invoices: &'a [&'a str],
    pub load_numbers: &'a [(Option<&'a str>, &'a str)],
}

/// The voided invoices among the invoice numbers of `$keys` no load in `$loads` has (usually
/// none: then nothing is asked).
macro_rules! voided {
    ($tx:expr, $unmatched:expr, $filter:literal, $bound:expr) => {{
        if $unmatched.is_empty() {
            Vec::new()
        } else {
            let rows: Vec<(String, String)> = sqlx::query_as(concat!(
                "SELECT v.invoice_number, l.load_number FROM void_invoices v JOIN loads l ON l.id = v.load_id WHERE ",
                $filter
            ))
            .bind($bound)
            .fetch_all($tx)
            .await?;
            rows.into_iter()
                .map(|(invoice_number, load_number)| VoidedInvoice { invoice_number, load_number })
                .collect()
        }
    }};
}

impl<'a> ReportKeys<'a> {
    /// The invoice numbers no load found has.
    fn unmatched(&self, found: &[ReportLoad]) -> Vec<&'a str> {
        let invoices: FxHashSet<&str> = found.iter().filter_map(|l| l.invoice_number.as_deref()).collect();
        self.invoices.iter().copied().filter(|i| !invoices.contains(i)).collect()
    }

    /// The load numbers still to look up once the invoices found are known.
    fn fallback(&self, found: &[ReportLoad]) -> Vec<&'a str> {
        if self.load_numbers.is_empty() {
            return Vec::new();
        }
        let invoices: FxHashSet<&str> = found.iter().filter_map(|l| l.invoice_number.as_deref()).collect();
        let loads: FxHashSet<&str> = found.iter().map(|l| &*l.load_number).collect();
        let mut wanted: Vec<&'a str> = self
            .load_numbers
            .iter()
            .filter(|(invoice, load)| invoice.is_none_or(|i| !invoices.contains(i)) && !loads.contains(load))
            .map(|(_, load)| *load)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        wanted
    }
}

/// Every open exception (of any load): few, and read from the partial index of open ones
/// faster than probed per load of a large report.
const OPEN_EXCEPTIONS: &str = "SELECT load_id, kind FROM load_exceptions WHERE cleared_at IS NULL";

fn json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The keys of the second lookups: the distinct batch ids the loads carry (in `provider` until
/// resolved), and the loads past Invoiced, which may have a purchase recorded.
fn second_keys(loads: &[ReportLoad]) -> (Vec<String>, Vec<i64>) {
    let batches: FxHashSet<&str> = loads.iter().filter_map(|l| l.provider.as_deref()).collect();
    let later = loads.iter().filter(|l| l.status >= LoadStatus::Financed).map(|l| l.id).collect();
    (batches.into_iter().map(str::to_string).collect(), later)
}

/// Replaces each load's batch id by its batch's provider and marks the purchased ones. (Two
/// small lookups instead of joining every row of a large report to batches and purchases.)
fn resolve_loads(loads: &mut [ReportLoad], providers: Vec<(String, String)>, purchased: Vec<i64>) {
    let providers: FxHashMap<String, Arc<str>> = providers.into_iter().map(|(b, p)| (b, p.into())).collect();
    let purchased: FxHashSet<i64> = purchased.into_iter().collect();
    for load in loads {
        load.provider = load.provider.take().and_then(|batch| providers.get(&*batch).cloned());
        load.purchased = purchased.contains(&load.id);
    }
}

/// Fills in payments and open exceptions of the snapshot's loads. (`exceptions` may name
/// other loads: every open exception is read, as there are few.)
fn attach(
    loads: &mut [ReportLoad],
    payments: Vec<(i64, i64, String, String)>,
    exceptions: Vec<(i64, String)>,
) -> Result<(), StoreError> {
    if payments.is_empty() && exceptions.is_empty() {
        return Ok(());
    }
    let index: FxHashMap<i64, usize> = loads.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
    for (load_id, paid_cents, payment_date, payment_reference) in payments {
        if let Some(&i) = index.get(&load_id) {
            loads[i].paid_cents += paid_cents;
            loads[i].payments.insert(PaymentKey { paid_cents, payment_date, payment_reference });
        }
    }
    for (load_id, kind) in exceptions {
        if let Some(&i) = index.get(&load_id) {
            loads[i].open_exceptions.insert(ExceptionKind::from_str(&kind).map_err(StoreError::Corrupt)?);
        }
    }
    Ok(())
}

impl Store {
    /// Opens a report file's transaction and claims the file's record in it, or finds the same
    /// content was ingested before (then nothing is opened).
    pub async fn begin_report(&self, meta: ReportFileMeta<'_>) -> Result<ReportBegin, StoreError> {
        let now = Utc::now();
        let (tx, file_id) = match self {
            Store::Postgres(pool) => {
                let mut tx = pool.begin_write().await?;
                // A chunk's statements are index probes and writes, never long enough to repay
                // compiling them: JIT (on by default above a plan cost a 20,000-key lookup
                // reaches) spent 10–20 ms on each.
                sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
                let file_id = claim_file!(tx, meta, now);
                (Tx::Postgres(tx), file_id)
            }
            Store::Sqlite(pool) => {
                let mut tx = pool.begin_write().await?;
                let file_id = claim_file!(tx, meta, now);
                (Tx::Sqlite(tx), file_id)
            }
        };
        let Some(file_id) = file_id else {
            drop(tx);
            return self.duplicate(meta).await;
        };
        Ok(ReportBegin::Open(ReportTx {
            tx,
            file_id,
            now,
            payment: meta.kind == "payment",
            file_name: meta.file_name.to_string(),
            pieces: 0,
        }))
    }
}

impl ReportTx {
    /// The loads the keys name, as this transaction sees them (the chunks written before
    /// included), with their provider, purchase, payments and open exceptions.
    pub async fn loads(&mut self, keys: &ReportKeys<'_>) -> Result<ChunkLoads, StoreError> {
        let payment = self.payment;
        match &mut self.tx {
            Tx::Postgres(tx) => pg_chunk(tx, keys, payment).await,
            Tx::Sqlite(tx) => sqlite_chunk(tx, keys, payment).await,
        }
    }

    /// Writes a chunk's plan: every status move a compare-and-set (a load another writer moved
    /// meanwhile is a `Conflict`: the file must start over), then history, purchases, payments
    /// and exceptions.
    pub async fn write(&mut self, plan: &ReportPlan) -> Result<(), StoreError> {
        let (file_id, now) = (self.file_id, self.now);
        let conflict = || StoreError::Conflict {
            load: format!("a load of {}", self.file_name),
            expected: LoadStatus::Invoiced,
            actual: LoadStatus::Invoiced,
        };
        match &mut self.tx {
            Tx::Postgres(tx) => {
                if !pg_moves(tx, plan, now).await? {
                    return Err(conflict());
                }
                pg_rows(tx, plan, file_id, now).await?;
                pg_exceptions(tx, plan, now).await
            }
            Tx::Sqlite(tx) => {
                if !sqlite_moves(tx, plan, now).await? {
                    return Err(conflict());
                }
                sqlite_rows(tx, plan, file_id, now).await?;
                sqlite_exceptions(tx, plan, now).await
            }
        }
    }

    /// Stores the next piece of the file's result text with its record.
    pub async fn add_outcomes(&mut self, text: &str) -> Result<(), StoreError> {
        if text.is_empty() {
            return Ok(());
        }
        let (file_id, piece) = (self.file_id, self.pieces);
        match &mut self.tx {
            Tx::Postgres(tx) => add_outcomes!(&mut **tx, file_id, piece, text),
            Tx::Sqlite(tx) => add_outcomes!(&mut **tx, file_id, piece, text),
        }
        self.pieces += 1;
        Ok(())
    }

    /// Writes the file's counts and commits all of it. Returns the file's record id.
    pub async fn commit(self, counts: ReportCounts) -> Result<i64, StoreError> {
        let file_id = self.file_id;
        match self.tx {
            Tx::Postgres(mut tx) => {
                check_adjusted_purchases!(tx, file_id);
                finish_file!(tx, file_id, counts);
                tx.commit().await?;
            }
            Tx::Sqlite(mut tx) => {
                check_adjusted_purchases!(tx, file_id);
                finish_file!(tx, file_id, counts);
                tx.commit().await?;
            }
        }
        Ok(file_id)
    }
}

/// How long a report waits for a second connection to read on ([`Store::report_reader`]);
/// without one, every chunk is read in the file's transaction, as on SQLite.
const READER_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// A second connection that reads a purchase report's next chunk of loads while the file's
/// transaction writes the current one (the two statements then run at once: on two server
/// processes on PostgreSQL, on two connection threads over SQLite's write-ahead log). It reads
/// outside that transaction, so it sees what is committed and not what the file's earlier
/// chunks wrote: its loads stand for what the transaction would read only for loads no earlier
/// chunk of the file read. The caller checks that, and reads the chunk again in the
/// transaction when it is not so. Every other writer's change is seen as a read in the
/// transaction (`READ COMMITTED`) would see it (on SQLite no other writer can commit while the
/// file's transaction holds the write lock), and the status compare-and-set still catches a
/// load moved after either read. Not for payment reports, whose reads lock their loads in the
/// transaction.
pub enum ReportReader {
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
}

impl Store {
    /// A second connection for [`ReportReader`], only if the pool has one to spare soon (a
    /// report does not wait on a busy pool for it).
    pub async fn report_reader(&self) -> Option<ReportReader> {
        match self {
            Store::Postgres(pool) => spare(pool).await.map(ReportReader::Postgres),
            Store::Sqlite(pool) => spare(pool).await.map(ReportReader::Sqlite),
        }
    }
}

/// A connection of `pool` now, or within [`READER_WAIT`].
async fn spare<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> Option<sqlx::pool::PoolConnection<DB>> {
    if let Some(connection) = pool.try_acquire() {
        return Some(connection);
    }
    tokio::time::timeout(READER_WAIT, pool.acquire()).await.ok()?.ok()
}

impl ReportReader {
    /// The loads the keys name, as committed, with their provider, purchase and open
    /// exceptions (as [`ReportTx::loads`] for a purchase report, outside its transaction).
    pub async fn loads(&mut self, keys: &ReportKeys<'_>) -> Result<ChunkLoads, StoreError> {
        match self {
            ReportReader::Postgres(connection) => {
                let mut tx = sqlx::Connection::begin(&mut **connection).await?;
                // As in the file's transaction (`begin_report`): no JIT for index probes.
                sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
                let found = pg_chunk(&mut tx, keys, false).await?;
                tx.commit().await?;
                Ok(found)
            }
            ReportReader::Sqlite(connection) => {
                // A deferred transaction: one read snapshot, no lock on writers.
                let mut tx = sqlx::Connection::begin(&mut **connection).await?;
                let found = sqlite_chunk(&mut tx, keys, false).await?;
                tx.commit().await?;
                Ok(found)
            }
        }
    }
}

/// A chunk's loads on PostgreSQL ([`pg_loads`]) and the voided invoices among its keys.
async fn pg_chunk(tx: &mut sqlx::PgConnection, keys: &ReportKeys<'_>, payment: bool) -> Result<ChunkLoads, StoreError> {
    let loads = pg_loads(tx, keys, payment).await?;
    let unmatched = keys.unmatched(&loads);
    let voided = voided!(&mut *tx, unmatched, "v.invoice_number = ANY($1)", &unmatched);
    Ok(ChunkLoads { loads, voided })
}

/// A chunk's loads on SQLite ([`sqlite_loads`]) and the voided invoices among its keys.
async fn sqlite_chunk(
    tx: &mut sqlx::SqliteConnection,
    keys: &ReportKeys<'_>,
    payment: bool,
) -> Result<ChunkLoads, StoreError> {
    let loads = sqlite_loads(tx, keys, payment).await?;
    let unmatched = keys.unmatched(&loads);
    let voided =
        voided!(&mut *tx, unmatched, "v.invoice_number IN (SELECT value FROM json_each($1))", json(&unmatched)?);
    Ok(ChunkLoads { loads, voided })
}

/// [`ReportTx::loads`] on PostgreSQL: the keys as arrays. A payment report locks its loads: the
/// payments already recorded decide the move, so two files paying the same load at once (two
/// daemons) must not both read the old total. (SQLite has one writer at a time.)
async fn pg_loads(
    tx: &mut sqlx::PgConnection,
    keys: &ReportKeys<'_>,
    payment: bool,
) -> Result<Vec<ReportLoad>, StoreError> {
    let lock = if payment { " FOR UPDATE" } else { "" };
    let rows = sqlx::query(sqlx::AssertSqlSafe(snapshot_sql("invoice_number", lock)))
        .bind(keys.invoices)
        .fetch_all(&mut *tx)
        .await?;
    let mut loads = report_loads_from_rows!(&rows);
    let fallback = keys.fallback(&loads);
    if !fallback.is_empty() {
        let rows = sqlx::query(sqlx::AssertSqlSafe(snapshot_sql("load_number", lock)))
            .bind(&fallback)
            .fetch_all(&mut *tx)
            .await?;
        let known: HashSet<i64> = loads.iter().map(|l| l.id).collect();
        loads.extend(report_loads_from_rows!(&rows).into_iter().filter(|l| !known.contains(&l.id)));
    }
    let (batches, later) = second_keys(&loads);
    let providers: Vec<(String, String)> = sqlx::query_as("SELECT id, provider FROM batches WHERE id = ANY($1)")
        .bind(&batches)
        .fetch_all(&mut *tx)
        .await?;
    let purchased: Vec<i64> = sqlx::query_scalar("SELECT load_id FROM purchases WHERE load_id = ANY($1)")
        .bind(&later)
        .fetch_all(&mut *tx)
        .await?;
    resolve_loads(&mut loads, providers, purchased);
    let payments = if payment {
        sqlx::query_as::<_, (i64, i64, String, String)>(
            "SELECT load_id, paid_cents, payment_date, payment_reference FROM payments WHERE load_id = ANY($1)",
        )
        .bind(loads.iter().map(|l| l.id).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?
    } else {
        Vec::new()
    };
    let exceptions = sqlx::query_as::<_, (i64, String)>(OPEN_EXCEPTIONS).fetch_all(&mut *tx).await?;
    attach(&mut loads, payments, exceptions)?;
    Ok(loads)
}

/// The plan's status moves on PostgreSQL, one compare-and-set statement per step. `false`
/// when a load was not in the status the plan read.
async fn pg_moves(tx: &mut sqlx::PgConnection, plan: &ReportPlan, now: DateTime<Utc>) -> Result<bool, StoreError> {
    for ((from, to), ids) in moves_by_step(plan) {
        let moved = sqlx::query("UPDATE loads SET status = $2, updated_at = $3 WHERE id = ANY($1) AND status = $4")
            .bind(&ids)
            .bind(to.as_str())
            .bind(now)
            .bind(from.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if moved != ids.len() as u64 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// History, purchases and payments on PostgreSQL. History and purchases, a row per report row,
/// go by `COPY … FROM STDIN` (text format): PostgreSQL then inserts them in batches, which an
/// `INSERT … SELECT` does not. Payments (a payment report's rows) are bound as arrays.
async fn pg_rows(
    tx: &mut sqlx::PgConnection,
    plan: &ReportPlan,
    file_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let at = copy_time(now);
    if !plan.history.is_empty() {
        let mut data = CopyText::with_capacity(plan.history.len() * 96);
        for h in &plan.history {
            data.int(h.load_id).text(h.from.as_str()).text(h.to.as_str()).raw(&at);
            data.begin().escaped(&h.cause.prefix).display(h.cause.row).escaped(&h.cause.suffix).end_row();
        }
        copy_in(tx, "COPY load_history (load_id, from_status, to_status, at, cause) FROM STDIN", data).await?;
    }
    if !plan.purchases.is_empty() {
        let (file, at) = (file_id.to_string(), at.as_str());
        let mut data = CopyText::with_capacity(plan.purchases.len() * 96);
        for p in &plan.purchases {
            data.int(p.load_id).raw(&file).begin().display(p.row);
            for cents in [p.amount_cents, p.advance_cents, p.fee_cents, p.reserve_cents] {
                data.opt_int(cents);
            }
            data.opt_text(p.purchase_date.as_deref())
                .opt_text(p.schedule_number.as_deref())
                .opt_text(p.factor_status.as_deref())
                .raw(at)
                .end_row();
        }
        copy_in(
            tx,
            "COPY purchases (load_id, report_file_id, row_number, amount_cents, advance_cents, fee_cents, \
             reserve_cents, purchase_date, schedule_number, factor_status, recorded_at) FROM STDIN",
            data,
        )
        .await?;
    }
    let pay = &plan.payments;
    if !pay.is_empty() {
        sqlx::query(
            "INSERT INTO payments (load_id, report_file_id, row_number, paid_cents, payment_date, \
             payment_reference, recorded_at) \
             SELECT u.load_id, $1, u.row_number, u.paid, u.payment_date, u.payment_reference, $2 \
             FROM UNNEST($3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[]) \
             AS u(load_id, row_number, paid, payment_date, payment_reference)",
        )
        .bind(file_id)
        .bind(now)
        .bind(pay.iter().map(|r| r.load_id).collect::<Vec<_>>())
        .bind(pay.iter().map(|r| r.row as i64).collect::<Vec<_>>())
        .bind(pay.iter().map(|r| r.key.paid_cents).collect::<Vec<_>>())
        .bind(pay.iter().map(|r| r.key.payment_date.as_str()).collect::<Vec<_>>())
        .bind(pay.iter().map(|r| r.key.payment_reference.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    pg_ledger(tx, plan, file_id, now).await
}

/// Ledger events (reserve released, chargebacks, extra fees) on PostgreSQL, bound as arrays:
/// only the rows that carry one write here. The same event again is recorded once.
async fn pg_ledger(
    tx: &mut sqlx::PgConnection,
    plan: &ReportPlan,
    file_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let events = &plan.ledger;
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO ledger_events (load_id, kind, amount_cents, event_date, source, report_file_id, row_number, \
         recorded_at) \
         SELECT u.load_id, u.kind, u.amount_cents, u.event_date, u.source, $1, u.row_number, $2 \
         FROM UNNEST($3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::bigint[]) \
         AS u(load_id, kind, amount_cents, event_date, source, row_number) \
         ON CONFLICT DO NOTHING",
    )
    .bind(file_id)
    .bind(now)
    .bind(events.iter().map(|e| e.load_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.amount_cents).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.event_date.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.source.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.row as i64).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// `now` as a `COPY` text field: microseconds, in UTC (what binding it sends).
fn copy_time(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

/// Sends rows in `COPY`'s text format and finishes the copy.
async fn copy_in(tx: &mut sqlx::PgConnection, statement: &'static str, data: CopyText) -> Result<(), StoreError> {
    let mut copy = tx.copy_in_raw(statement).await?;
    if let Err(error) = copy.send(data.bytes).await {
        // The copy must be ended before the connection is used again; the error is the news.
        let _ = copy.abort(error.to_string()).await;
        return Err(error.into());
    }
    copy.finish().await?;
    Ok(())
}

/// Rows in `COPY`'s text format: fields separated by tabs, rows ended by a newline, `\N` for
/// NULL, and a backslash, tab, newline or carriage return in a text escaped with a backslash.
struct CopyText {
    bytes: Vec<u8>,
    /// Whether the row has a field yet (the next one is preceded by a tab).
    open: bool,
}

impl CopyText {
    fn with_capacity(capacity: usize) -> Self {
        CopyText { bytes: Vec::with_capacity(capacity), open: false }
    }

    /// Starts a field whose parts follow.
    fn begin(&mut self) -> &mut Self {
        if self.open {
            self.bytes.push(b'\t');
        }
        self.open = true;
        self
    }

    fn raw(&mut self, text: &str) -> &mut Self {
        self.begin().bytes.extend_from_slice(text.as_bytes());
        self
    }

    fn text(&mut self, text: &str) -> &mut Self {
        self.begin().escaped(text)
    }

    fn int(&mut self, n: i64) -> &mut Self {
        self.begin().display(n)
    }

    fn opt_int(&mut self, n: Option<i64>) -> &mut Self {
        match n {
            Some(n) => self.int(n),
            None => self.raw("\\N"),
        }
    }

    fn opt_text(&mut self, text: Option<&str>) -> &mut Self {
        match text {
            Some(text) => self.text(text),
            None => self.raw("\\N"),
        }
    }

    /// A part of the current field, written as it is (numbers).
    fn display(&mut self, value: impl std::fmt::Display) -> &mut Self {
        use std::io::Write as _;
        let _ = write!(self.bytes, "{value}");
        self
    }

    /// A part of the current field, escaped.
    fn escaped(&mut self, text: &str) -> &mut Self {
        for &b in text.as_bytes() {
            match b {
                b'\\' => self.bytes.extend_from_slice(b"\\\\"),
                b'\t' => self.bytes.extend_from_slice(b"\\t"),
                b'\n' => self.bytes.extend_from_slice(b"\\n"),
                b'\r' => self.bytes.extend_from_slice(b"\\r"),
                _ => self.bytes.push(b),
            }
        }
        self
    }

    fn end_row(&mut self) {
        self.bytes.push(b'\n');
        self.open = false;
    }
}

/// Exceptions raised (or their detail updated) and cleared, on PostgreSQL.
async fn pg_exceptions(tx: &mut sqlx::PgConnection, plan: &ReportPlan, now: DateTime<Utc>) -> Result<(), StoreError> {
    if !plan.raise.is_empty() {
        sqlx::query(concat!(
            "INSERT INTO load_exceptions (load_id, kind, detail, raised_at) \
             SELECT u.id, u.kind, u.detail, $4 FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS u(id, kind, detail) \
             ON CONFLICT (load_id, kind) WHERE cleared_at IS NULL DO UPDATE SET detail = excluded.detail WHERE NOT ",
            ops_only!()
        ))
        .bind(plan.raise.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(plan.raise.iter().map(|r| r.1.as_str()).collect::<Vec<_>>())
        .bind(plan.raise.iter().map(|r| r.2.as_str()).collect::<Vec<_>>())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    if !plan.clear.is_empty() {
        sqlx::query(concat!(
            "UPDATE load_exceptions SET cleared_at = $3 FROM UNNEST($1::bigint[], $2::text[]) AS u(id, kind) \
             WHERE load_exceptions.load_id = u.id AND load_exceptions.kind = u.kind \
             AND load_exceptions.cleared_at IS NULL AND NOT ",
            ops_only!()
        ))
        .bind(plan.clear.iter().map(|c| c.0).collect::<Vec<_>>())
        .bind(plan.clear.iter().map(|c| c.1.as_str()).collect::<Vec<_>>())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// [`ReportTx::loads`] on SQLite: the keys as JSON arrays, the loads back as one JSON array
/// (one row, not one per load through the driver).
async fn sqlite_loads(
    tx: &mut sqlx::SqliteConnection,
    keys: &ReportKeys<'_>,
    payment: bool,
) -> Result<Vec<ReportLoad>, StoreError> {
    let text: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sqlite_snapshot_sql("invoice_number")))
        .bind(json(&keys.invoices)?)
        .fetch_one(&mut *tx)
        .await?;
    let mut loads = loads_from_json(text)?;
    let fallback = keys.fallback(&loads);
    if !fallback.is_empty() {
        let text: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sqlite_snapshot_sql("load_number")))
            .bind(json(&fallback)?)
            .fetch_one(&mut *tx)
            .await?;
        let known: HashSet<i64> = loads.iter().map(|l| l.id).collect();
        loads.extend(loads_from_json(text)?.into_iter().filter(|l| !known.contains(&l.id)));
    }
    let (batches, later) = second_keys(&loads);
    let providers: Vec<(String, String)> =
        sqlx::query_as("SELECT id, provider FROM batches WHERE id IN (SELECT value FROM json_each($1))")
            .bind(json(&batches)?)
            .fetch_all(&mut *tx)
            .await?;
    let purchased: Vec<i64> =
        sqlx::query_scalar("SELECT load_id FROM purchases WHERE load_id IN (SELECT value FROM json_each($1))")
            .bind(json(&later)?)
            .fetch_all(&mut *tx)
            .await?;
    resolve_loads(&mut loads, providers, purchased);
    let payments = if payment {
        sqlx::query_as::<_, (i64, i64, String, String)>(
            "SELECT load_id, paid_cents, payment_date, payment_reference FROM payments \
             WHERE load_id IN (SELECT value FROM json_each($1))",
        )
        .bind(json(&loads.iter().map(|l| l.id).collect::<Vec<_>>())?)
        .fetch_all(&mut *tx)
        .await?
    } else {
        Vec::new()
    };
    let exceptions = sqlx::query_as::<_, (i64, String)>(OPEN_EXCEPTIONS).fetch_all(&mut *tx).await?;
    attach(&mut loads, payments, exceptions)?;
    Ok(loads)
}

/// The plan's status moves on SQLite, one compare-and-set statement per step. `false` when a
/// load was not in the status the plan read.
async fn sqlite_moves(
    tx: &mut sqlx::SqliteConnection,
    plan: &ReportPlan,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    for ((from, to), ids) in moves_by_step(plan) {
        // `+status`: the file's ids drive the update (a rowid seek each, in order), not a
        // scan of every load in the status through its index, which grows with all the
        // subsidiaries' loads and measured slower.
        let moved = sqlx::query(
            "UPDATE loads SET status = $2, updated_at = $3 \
             WHERE id IN (SELECT value FROM json_each($1)) AND +status = $4",
        )
        .bind(json(&ids)?)
        .bind(to.as_str())
        .bind(now)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != ids.len() as u64 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// History, purchases and payments on SQLite, as multi-row `VALUES` ([`sqlite_insert`]).
async fn sqlite_rows(
    tx: &mut sqlx::SqliteConnection,
    plan: &ReportPlan,
    file_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // Values many rows share are bound as one `Arc<str>` each: no copy per row.
    let at: Arc<str> = sqlite_time(now).into();
    let statuses: Vec<(LoadStatus, Arc<str>)> = LoadStatus::ALL.iter().map(|&s| (s, Arc::from(s.as_str()))).collect();
    let status = |s: LoadStatus| -> Arc<str> {
        statuses.iter().find(|(known, _)| *known == s).map_or_else(|| s.as_str().into(), |(_, t)| t.clone())
    };
    sqlite_insert(
        &mut *tx,
        // The cause is written out here, a chunk at a time, and moved into the statement's
        // values. (Joining its parts in SQL measured slower.)
        ("INSERT INTO load_history (load_id, from_status, to_status, at, cause)", "(?, ?, ?, ?, ?)", ""),
        &plan.history,
        |q, h| q.bind(h.load_id).bind(status(h.from)).bind(status(h.to)).bind(at.clone()).bind(h.cause.to_string()),
    )
    .await?;
    sqlite_insert(
        &mut *tx,
        (
            "INSERT INTO purchases (load_id, report_file_id, row_number, amount_cents, advance_cents, \
             fee_cents, reserve_cents, purchase_date, schedule_number, factor_status, recorded_at)",
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            "",
        ),
        &plan.purchases,
        |q, r| {
            q.bind(r.load_id)
                .bind(file_id)
                .bind(r.row as i64)
                .bind(r.amount_cents)
                .bind(r.advance_cents)
                .bind(r.fee_cents)
                .bind(r.reserve_cents)
                .bind(r.purchase_date.clone())
                .bind(r.schedule_number.clone())
                .bind(r.factor_status.as_deref())
                .bind(at.clone())
        },
    )
    .await?;
    sqlite_insert(
        &mut *tx,
        (
            "INSERT INTO payments (load_id, report_file_id, row_number, paid_cents, payment_date, \
             payment_reference, recorded_at)",
            "(?, ?, ?, ?, ?, ?, ?)",
            "",
        ),
        &plan.payments,
        |q, r| {
            q.bind(r.load_id)
                .bind(file_id)
                .bind(r.row as i64)
                .bind(r.key.paid_cents)
                .bind(r.key.payment_date.as_str())
                .bind(r.key.payment_reference.as_str())
                .bind(at.clone())
        },
    )
    .await?;
    // Ledger events: only the rows that carry one; the same event again is recorded once.
    sqlite_insert(
        &mut *tx,
        (
            "INSERT INTO ledger_events (load_id, kind, amount_cents, event_date, source, report_file_id, \
             row_number, recorded_at)",
            "(?, ?, ?, ?, ?, ?, ?, ?)",
            "ON CONFLICT DO NOTHING",
        ),
        &plan.ledger,
        |q, e| {
            q.bind(e.load_id)
                .bind(e.kind.as_str())
                .bind(e.amount_cents)
                .bind(e.event_date.as_str())
                .bind(e.source.as_str())
                .bind(file_id)
                .bind(e.row as i64)
                .bind(at.clone())
        },
    )
    .await?;
    Ok(())
}

/// Exceptions raised (or their detail updated) and cleared, on SQLite.
async fn sqlite_exceptions(
    tx: &mut sqlx::SqliteConnection,
    plan: &ReportPlan,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let at = sqlite_time(now);
    sqlite_insert(
        &mut *tx,
        (
            "INSERT INTO load_exceptions (load_id, kind, detail, raised_at)",
            "(?, ?, ?, ?)",
            concat!(
                "ON CONFLICT (load_id, kind) WHERE cleared_at IS NULL DO UPDATE SET detail = excluded.detail WHERE NOT ",
                ops_only!()
            ),
        ),
        &plan.raise,
        |q, r| q.bind(r.0).bind(r.1.as_str()).bind(r.2.as_str()).bind(at.as_str()),
    )
    .await?;
    if !plan.clear.is_empty() {
        let clear: Vec<(i64, &str)> = plan.clear.iter().map(|c| (c.0, c.1.as_str())).collect();
        sqlx::query(concat!(
            "UPDATE load_exceptions SET cleared_at = $2 FROM \
             (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS kind FROM json_each($1)) AS u \
             WHERE load_exceptions.load_id = u.id AND load_exceptions.kind = u.kind \
             AND load_exceptions.cleared_at IS NULL AND NOT ",
            ops_only!()
        ))
        .bind(json(&clear)?)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// The earlier record of the same content and its stored result text.
    async fn duplicate(&self, meta: ReportFileMeta<'_>) -> Result<ReportBegin, StoreError> {
        on_pool!(self, pool => {
            let row = sqlx::query(concat!(
                "SELECT ", report_file_columns!(), ", outcomes FROM report_files ",
                "WHERE provider = $1 AND sha256 = $2 AND refused IS NULL"
            ))
            .bind(meta.provider)
            .bind(meta.sha256)
            .fetch_one(pool)
            .await?;
            let previous = report_file_from_row!(&row);
            let mut outcomes: String = row.try_get("outcomes")?;
            let pieces: Vec<String> = sqlx::query_scalar(
                "SELECT text FROM report_file_outcomes WHERE report_file_id = $1 ORDER BY chunk",
            )
            .bind(previous.id)
            .fetch_all(pool)
            .await?;
            outcomes.extend(pieces);
            Ok(ReportBegin::Duplicate { previous, outcomes })
        })
    }

    /// Records a file refused whole (nothing of it applied), for `status`.
    pub async fn record_refused_report(
        &self,
        provider: &str,
        kind: Option<&str>,
        sha256: &str,
        file_name: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO report_files (provider, kind, sha256, file_name, processed_at, refused) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(provider)
            .bind(kind)
            .bind(sha256)
            .bind(file_name)
            .bind(Utc::now())
            .bind(reason)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The report files refused whole (nothing applied), newest first, at most `limit`.
    pub async fn recent_refused_report_files(&self, limit: i64) -> Result<Vec<ReportFileRecord>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", report_file_columns!(), " FROM report_files WHERE refused IS NOT NULL ORDER BY id DESC LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(report_file_from_row!(row))).collect()
        })
    }

    /// The last `per_provider` report files of each provider, newest first.
    pub async fn recent_report_files(&self, per_provider: i64) -> Result<Vec<ReportFileRecord>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", report_file_columns!(), " FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY provider ORDER BY id DESC) AS n ",
                "FROM report_files) AS r WHERE n <= $1 ORDER BY provider, id DESC"
            ))
            .bind(per_provider)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(report_file_from_row!(row))).collect()
        })
    }

    /// The purchase and payment rows recorded for a load, oldest first.
    pub async fn load_report_rows(&self, load_id: i64) -> Result<Vec<LoadReportRow>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT 'purchase' AS kind, f.file_name, p.row_number, f.processed_at, f.id AS file_id, \
                 p.advance_cents AS a, p.fee_cents AS b, p.reserve_cents AS c, p.schedule_number AS t \
                 FROM purchases p JOIN report_files f ON f.id = p.report_file_id WHERE p.load_id = $1 \
                 UNION ALL \
                 SELECT 'payment', f.file_name, y.row_number, f.processed_at, f.id, y.paid_cents, NULL, NULL, \
                 y.payment_reference FROM payments y JOIN report_files f ON f.id = y.report_file_id WHERE y.load_id = $1 \
                 ORDER BY file_id, row_number",
            )
            .bind(load_id)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::new();
            for row in &rows {
                let kind: String = row.try_get("kind")?;
                let money = |name: &str| -> Result<Option<crate::domain::Money>, sqlx::Error> {
                    Ok(row.try_get::<Option<i64>, _>(name)?.map(crate::domain::Money::from_cents))
                };
                let text: Option<String> = row.try_get("t")?;
                let detail = if kind == "purchase" {
                    let mut parts = Vec::new();
                    for (label, value) in [("advance", money("a")?), ("fee", money("b")?), ("reserve", money("c")?)] {
                        if let Some(value) = value {
                            parts.push(format!("{label} {value}"));
                        }
                    }
                    if let Some(schedule) = text.filter(|s| !s.is_empty()) {
                        parts.push(format!("schedule {schedule}"));
                    }
                    parts.join(", ")
                } else {
                    let mut detail = format!("paid {}", money("a")?.unwrap_or_default());
                    if let Some(reference) = text.filter(|s| !s.is_empty()) {
                        detail.push_str(&format!(", reference {reference}"));
                    }
                    detail
                };
                out.push(LoadReportRow {
                    kind,
                    file_name: row.try_get("file_name")?,
                    row: row.try_get("row_number")?,
                    processed_at: row.try_get("processed_at")?,
                    detail,
                });
            }
            Ok(out)
        })
    }
}

/// Rows per statement of [`sqlite_insert`]: at most 11 values a row, well under SQLite's
/// limit of 32,766 bound values per statement.
const SQLITE_ROWS_PER_STATEMENT: usize = 1_000;

type SqliteQuery<'a> = sqlx::query::Query<'a, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// DIALECT: SQLite writes a report's rows as multi-row `VALUES`, [`SQLITE_ROWS_PER_STATEMENT`]
/// rows per statement: `{head} VALUES {row}, {row}, … {tail}`, with `bind` binding one row's
/// values in the order of `row`'s placeholders. Binding values is about 2.5 times faster than
/// unpacking one JSON array in SQL (SQLite runs in-process: a statement is not a round trip).
/// Full chunks share one cached prepared statement; the last, shorter one is not cached.
/// (Placeholders stay bare `?`: numbered ones cost SQLite a linear lookup each.)
async fn sqlite_insert<'a, T>(
    tx: &mut sqlx::SqliteConnection,
    (head, row, tail): (&str, &str, &str),
    rows: &'a [T],
    bind: impl Fn(SqliteQuery<'a>, &'a T) -> SqliteQuery<'a>,
) -> Result<u64, StoreError> {
    let mut affected = 0;
    for chunk in rows.chunks(SQLITE_ROWS_PER_STATEMENT) {
        let sql = format!("{head} VALUES {} {tail}", vec![row; chunk.len()].join(", "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(chunk.len() == SQLITE_ROWS_PER_STATEMENT);
        for item in chunk {
            query = bind(query, item);
        }
        affected += query.execute(&mut *tx).await?.rows_affected();
    }
    Ok(affected)
}

/// A time as sqlx writes a `DateTime<Utc>` to SQLite, formatted once for the many rows that
/// share it (formatting it per row costs more than inserting the row).
fn sqlite_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// The plan's status moves grouped by step (from → to): one compare-and-set statement per
/// step, each moving only loads still in the status the plan read. A file has one or two steps.
fn moves_by_step(plan: &ReportPlan) -> BTreeMap<(LoadStatus, LoadStatus), Vec<i64>> {
    let mut steps: BTreeMap<(LoadStatus, LoadStatus), Vec<i64>> = BTreeMap::new();
    for m in &plan.moves {
        steps.entry((m.from, m.to)).or_default().push(m.load_id);
    }
    for ids in steps.values_mut() {
        ids.sort_unstable();
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's snapshot as `json_group_array` writes it: texts are borrowed from the JSON where
    /// they can be, and a text with escapes (a quote, a backslash, a non-ASCII escape) is
    /// decoded whole; subsidiaries and batches come out shared.
    #[test]
    fn snapshot_json_decodes_escaped_texts_and_shares_repeated_ones() {
        let json = r#"[[7,"L-7","INV-\"7\"\\A","acme-east","Invoiced",150000,"b-1"],
                       [8,"L-8",null,"acme-east","Financed",99,null],
                       [9,"L-\u00e99","0042","acme-east","Invoiced",1,"b-1"]]"#;
        let loads = loads_from_json(Some(json.to_string())).expect("decodes");
        assert_eq!(loads.len(), 3);
        assert_eq!(loads[0].invoice_number.as_deref(), Some(r#"INV-"7"\A"#));
        assert_eq!(&*loads[2].load_number, "L-é9");
        assert_eq!(loads[2].invoice_number.as_deref(), Some("0042"));
        assert_eq!(loads[1].invoice_number, None);
        assert_eq!(loads[1].provider, None);
        assert_eq!((loads[1].status, loads[1].amount_cents), (LoadStatus::Financed, 99));
        assert!(Arc::ptr_eq(&loads[0].subsidiary, &loads[2].subsidiary));
        let batch = |i: usize| loads[i].provider.clone().expect("batch");
        assert!(Arc::ptr_eq(&batch(0), &batch(2)));
        assert!(loads_from_json(Some(r#"[[1,"L-1",null,"acme","Lost",1,null]]"#.into())).is_err());
        assert!(loads_from_json(None).expect("no loads").is_empty());
    }
}
