//! Alerts (docs/operations.md, Alerts): events derived from the database state, each claimed
//! once per channel in the `alerts` table, and the sender's leases on the rows due.
//!
//! An event's key comes from the row it is derived from (`exception:<id>`,
//! `batch:<id>:failed`, `stuck:<load id>:<history id>`, …). Each derivation is one
//! `INSERT … SELECT … ON CONFLICT DO NOTHING`, so two daemons on one PostgreSQL, or one daemon
//! before and after a restart, never claim an event twice: the unique `(event_key, channel)`
//! is the guarantee (docs/reliability.md rule 4). Sending is at-least-once: a sender takes due
//! rows under a short lease (database clock, rule 3), and records sent or failed after the call.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError};

/// One alert row as the sender sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRecord {
    pub id: i64,
    pub event_key: String,
    pub channel: String,
    pub kind: String,
    pub subsidiary: Option<String>,
    pub load_number: Option<String>,
    pub detail: String,
    pub event_at: DateTime<Utc>,
    pub attempts: i64,
    pub sent: bool,
    pub given_up: bool,
    pub last_error: Option<String>,
}

/// An event recorded directly (not derived from a table): a component that stopped.
#[derive(Clone, Debug)]
pub struct NewAlert<'a> {
    pub event_key: &'a str,
    pub kind: &'a str,
    pub subsidiary: Option<&'a str>,
    pub load_number: Option<&'a str>,
    pub detail: &'a str,
    pub event_at: DateTime<Utc>,
}

/// Where to look for events: rows since `since`, loads whose last move is older than
/// `stuck_before`.
#[derive(Clone, Copy, Debug)]
pub struct AlertScan<'a> {
    pub channel: &'a str,
    /// This daemon's name, recorded as the claimer.
    pub holder: &'a str,
    pub since: DateTime<Utc>,
    pub stuck_before: DateTime<Utc>,
    /// Whether to look for stuck loads this time (the one derivation that reads every open
    /// load, so it runs less often than the others).
    pub stuck: bool,
}

/// Reads an [`AlertRecord`] (either backend).
macro_rules! alert_from_row {
    ($row:expr) => {{
        let r = $row;
        (|| -> Result<AlertRecord, sqlx::Error> {
            let sent: Option<DateTime<Utc>> = r.try_get("sent_at")?;
            let given_up: Option<DateTime<Utc>> = r.try_get("given_up_at")?;
            Ok(AlertRecord {
                id: r.try_get("id")?,
                event_key: r.try_get("event_key")?,
                channel: r.try_get("channel")?,
                kind: r.try_get("kind")?,
                subsidiary: r.try_get("subsidiary")?,
                load_number: r.try_get("load_number")?,
                detail: r.try_get("detail")?,
                event_at: r.try_get("event_at")?,
                attempts: r.try_get("attempts")?,
                sent: sent.is_some(),
                given_up: given_up.is_some(),
                last_error: r.try_get("last_error")?,
            })
        })()
    }};
}

// DIALECT: "now" on the database clock, in each backend's stored form.
const NOW_POSTGRES: &str = "now()";
const NOW_SQLITE: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// Each derivation: the key, the rest of the SELECT list (kind, subsidiary, load_number,
/// detail, event_at) and its FROM/WHERE, with `$3` = since and `$4` = stuck_before. The key expression
/// is repeated in the NOT EXISTS, so a known event does not even try the insert (an identity
/// value is burnt by every conflicting insert on PostgreSQL).
const DERIVATIONS: &[(&str, &str, &str)] = &[
    // A batch that delivered nothing.
    (
        "'batch:' || b.id || ':failed'",
        "'batch_failed', b.subsidiary, NULL, \
         'batch ' || b.id || ' (' || b.provider || ', ' || CAST(b.invoice_count AS TEXT) || ' invoices) failed: ' \
         || COALESCE(b.error, 'no error recorded'), b.created_at",
        "FROM batches b WHERE b.status = 'failed' AND b.created_at >= $3",
    ),
    // A batch the factor took in part.
    (
        "'batch:' || b.id || ':rejected'",
        "'batch_rejected', b.subsidiary, NULL, \
         'batch ' || b.id || ' (' || b.provider || '): ' || CAST((SELECT COUNT(*) FROM batch_items i \
         WHERE i.batch_id = b.id AND i.outcome = 'rejected') AS TEXT) || ' of ' || CAST(b.invoice_count AS TEXT) \
         || ' invoices rejected', b.created_at",
        "FROM batches b WHERE b.status = 'sent' AND b.created_at >= $3 \
         AND EXISTS (SELECT 1 FROM batch_items i WHERE i.batch_id = b.id AND i.outcome = 'rejected')",
    ),
    // A report file refused whole.
    (
        "'report:' || CAST(r.id AS TEXT) || ':refused'",
        "'report_refused', NULL, NULL, \
         r.provider || ' report ' || r.file_name || ' refused: ' || r.refused, r.processed_at",
        "FROM report_files r WHERE r.refused IS NOT NULL AND r.processed_at >= $3",
    ),
    // Rows of an applied report rejected.
    (
        "'report:' || CAST(r.id AS TEXT) || ':rejected'",
        "'report_rows_rejected', NULL, NULL, \
         r.provider || ' report ' || r.file_name || ': ' || CAST(r.rejected AS TEXT) || ' of ' \
         || CAST(r.rows_total AS TEXT) || ' rows rejected (see its result file)', r.processed_at",
        "FROM report_files r WHERE r.refused IS NULL AND r.rejected > 0 AND r.processed_at >= $3",
    ),
    // A load file refused whole.
    (
        "'refused:' || CAST(f.id AS TEXT)",
        "'load_file_refused', NULL, NULL, \
         'load file ' || f.file_name || ' refused: ' || f.reason, f.refused_at",
        "FROM refused_files f WHERE f.refused_at >= $3",
    ),
    // An exception raised on a load (any kind).
    (
        "'exception:' || CAST(e.id AS TEXT)",
        "'exception', l.subsidiary, l.load_number, \
         e.kind || ': ' || e.detail, e.raised_at",
        "FROM load_exceptions e JOIN loads l ON l.id = e.load_id WHERE e.raised_at >= $3",
    ),
    // A load that has not moved since its last status change, older than stuck_after: keyed by
    // that history row, so a load that moves and sticks again alerts again.
    (
        "'stuck:' || CAST(l.id AS TEXT) || ':' || CAST(h.id AS TEXT)",
        "'load_stuck', l.subsidiary, l.load_number, \
         l.status || ' since ' || CAST(h.at AS TEXT) || COALESCE(': ' || l.waiting_reason, ''), h.at",
        "FROM loads l JOIN load_history h ON h.id = (SELECT MAX(h2.id) FROM load_history h2 WHERE h2.load_id = l.id) \
         WHERE l.status IN ('Released', 'Queued', 'Invoiced') AND h.at < $4",
    ),
];

/// Every parameter appears in every derivation (SQLite refuses a statement given more
/// arguments than it names).
fn derivation_sql(key: &str, select: &str, from: &str, now: &str) -> String {
    format!(
        "INSERT INTO alerts (event_key, channel, kind, subsidiary, load_number, detail, event_at, claimed_at, \
         claimed_by, next_attempt) \
         SELECT {key}, $1, {select}, {now}, $2, {now} {from} \
         AND $3 IS NOT NULL AND $4 IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.event_key = {key} AND a.channel = $1) \
         ON CONFLICT (event_key, channel) DO NOTHING"
    )
}

const RECORD_SQL: &str = "INSERT INTO alerts (event_key, channel, kind, subsidiary, load_number, detail, event_at, \
    claimed_at, claimed_by, next_attempt) VALUES ($1, $2, $3, $4, $5, $6, $7, {now}, $8, {now}) \
    ON CONFLICT (event_key, channel) DO NOTHING";

// The rows due on a channel, leased to one sender. PostgreSQL skips rows another sender has
// locked; SQLite has one writer at a time.
const CLAIM_SQL: &str = "UPDATE alerts SET lease_until = {lease}, lease_token = $2 \
    WHERE id IN (SELECT id FROM alerts WHERE channel = $1 AND sent_at IS NULL AND given_up_at IS NULL \
    AND next_attempt <= {now} AND (lease_until IS NULL OR lease_until <= {now}) ORDER BY id LIMIT $4 {lock}) \
    AND sent_at IS NULL AND given_up_at IS NULL AND (lease_until IS NULL OR lease_until <= {now}) \
    RETURNING id, event_key, channel, kind, subsidiary, load_number, detail, event_at, attempts, sent_at, \
    given_up_at, last_error";

const FAIL_SQL: &str = "UPDATE alerts SET attempts = attempts + 1, last_error = $3, lease_until = NULL, \
    lease_token = NULL, next_attempt = {retry}, given_up_at = CASE WHEN $5 THEN {now} ELSE NULL END \
    WHERE id = $1 AND lease_token = $2";

impl Store {
    /// Records every event on `scan.channel` not yet recorded; the number recorded.
    pub async fn record_alert_events(&self, scan: &AlertScan<'_>) -> Result<u64, StoreError> {
        let now = self.now_sql();
        let mut recorded = 0;
        for (key, select, from) in DERIVATIONS {
            if key.starts_with("'stuck:'") && !scan.stuck {
                continue;
            }
            let sql = derivation_sql(key, select, from, now);
            recorded += on_pool!(self, pool => {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(scan.channel)
                    .bind(scan.holder)
                    .bind(scan.since)
                    .bind(scan.stuck_before)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
        }
        Ok(recorded)
    }

    /// Records one event on each of `channels` (once: a key already there is left alone).
    pub async fn record_alert(&self, alert: &NewAlert<'_>, channels: &[&str], holder: &str) -> Result<u64, StoreError> {
        let sql = RECORD_SQL.replace("{now}", self.now_sql());
        let mut recorded = 0;
        for channel in channels {
            recorded += on_pool!(self, pool => {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(alert.event_key)
                    .bind(*channel)
                    .bind(alert.kind)
                    .bind(alert.subsidiary)
                    .bind(alert.load_number)
                    .bind(alert.detail)
                    .bind(alert.event_at)
                    .bind(holder)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
        }
        Ok(recorded)
    }

    /// Leases up to `limit` alerts due on `channel` to `token` for `lease`.
    pub async fn claim_alerts(
        &self,
        channel: &str,
        token: &str,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let (lease_sql, lock) = match self {
            Store::Postgres(_) => ("now() + make_interval(secs => $3)", "FOR UPDATE SKIP LOCKED"),
            Store::Sqlite(_) => ("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || $3 || ' seconds')", ""),
        };
        let sql = CLAIM_SQL.replace("{lease}", lease_sql).replace("{lock}", lock).replace("{now}", self.now_sql());
        let mut alerts = on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(channel)
                .bind(token)
                .bind(lease.as_secs_f64())
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter().map(|r| alert_from_row!(r)).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        alerts.sort_by_key(|a| a.id);
        Ok(alerts)
    }

    /// Records alerts sent under `token`.
    pub async fn alerts_sent(&self, ids: &[i64], token: &str) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE alerts SET sent_at = {now}, attempts = attempts + 1, last_error = NULL, lease_until = NULL, \
             lease_token = NULL WHERE id = $1 AND lease_token = $2",
            now = self.now_sql()
        );
        for id in ids {
            on_pool!(self, pool => {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(id).bind(token).execute(pool).await?;
            });
        }
        Ok(())
    }

    /// Records a failed send of alerts under `token`: tried again after `retry_in`, or never
    /// again when `give_up`.
    pub async fn alerts_failed(
        &self,
        ids: &[i64],
        token: &str,
        error: &str,
        retry_in: Duration,
        give_up: bool,
    ) -> Result<(), StoreError> {
        let retry = match self {
            Store::Postgres(_) => "now() + make_interval(secs => $4)",
            Store::Sqlite(_) => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || $4 || ' seconds')",
        };
        let sql = FAIL_SQL.replace("{retry}", retry).replace("{now}", self.now_sql());
        for id in ids {
            on_pool!(self, pool => {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(id)
                    .bind(token)
                    .bind(error)
                    .bind(retry_in.as_secs_f64())
                    .bind(give_up)
                    .execute(pool)
                    .await?;
            });
        }
        Ok(())
    }

    /// Every alert recorded, oldest first (for `status` and tests).
    pub async fn all_alerts(&self) -> Result<Vec<AlertRecord>, StoreError> {
        let sql = "SELECT id, event_key, channel, kind, subsidiary, load_number, detail, event_at, attempts, \
                   sent_at, given_up_at, last_error FROM alerts ORDER BY id";
        Ok(on_pool!(self, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter().map(|r| alert_from_row!(r)).collect::<Result<Vec<_>, sqlx::Error>>()?
        }))
    }

    fn now_sql(&self) -> &'static str {
        match self {
            Store::Postgres(_) => NOW_POSTGRES,
            Store::Sqlite(_) => NOW_SQLITE,
        }
    }
}
