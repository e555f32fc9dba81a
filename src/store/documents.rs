//! Store methods of rework (docs/design.md §2): the documents `factord loads docs` gives a load,
//! and `factord loads retry`, the one move back the status graph allows (Invoiced → Queued, for
//! an invoice the factor rejected).
//!
//! The POD and the rate confirmation stay in `loads.pod` and `loads.rate_confirmation`; a bill
//! of lading, a lumper receipt and other documents are rows of `load_documents` (a new BOL or
//! lumper receipt replaces the one before, other documents add up). Each change is one
//! transaction with its history row (from = to = the load's status, cause naming the change and
//! ops' reason). A Queued load's packet is marked stale in the same transaction (`packet_noa`
//! cleared, any claim on the load dropped), so the rebuild of `crate` `invoicing::rebuild` makes
//! it again before any batch can take it, even after a crash right after the commit.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{BeginWrite, Store, StoreError};
use crate::domain::{ExceptionKind, LoadStatus};

/// The kinds of document a load can carry, in the order they follow the invoice in its packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    RateConfirmation,
    Bol,
    Pod,
    Lumper,
    Other,
}

impl DocumentKind {
    /// The kinds kept in `load_documents` (the POD and rate confirmation are on the load).
    pub const EXTRA: [DocumentKind; 3] = [DocumentKind::Bol, DocumentKind::Lumper, DocumentKind::Other];

    /// The name in the database and in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            DocumentKind::RateConfirmation => "rate_confirmation",
            DocumentKind::Bol => "bol",
            DocumentKind::Pod => "pod",
            DocumentKind::Lumper => "lumper",
            DocumentKind::Other => "other",
        }
    }

    /// How people call it, in messages.
    pub const fn label(self) -> &'static str {
        match self {
            DocumentKind::RateConfirmation => "rate confirmation",
            DocumentKind::Bol => "BOL",
            DocumentKind::Pod => "POD",
            DocumentKind::Lumper => "lumper receipt",
            DocumentKind::Other => "other document",
        }
    }
}

impl FromStr for DocumentKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            DocumentKind::RateConfirmation,
            DocumentKind::Bol,
            DocumentKind::Pod,
            DocumentKind::Lumper,
            DocumentKind::Other,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| format!("unknown document kind `{s}`"))
    }
}

/// A current document of a load kept in `load_documents`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoadDocument {
    pub kind: DocumentKind,
    /// Relative to the documents folder.
    pub path: String,
    pub added_at: DateTime<Utc>,
    pub reason: String,
}

/// One `loads docs` change: the new documents (paths relative to the documents folder, already
/// copied there and checked), each kind at most once except `other`.
#[derive(Clone, Debug)]
pub struct DocumentChange<'a> {
    pub load_number: &'a str,
    pub documents: Vec<(DocumentKind, String)>,
    pub reason: &'a str,
}

/// What a recorded `loads docs` change did.
#[derive(Clone, Debug)]
pub struct DocumentsRecorded {
    /// The load's status (unchanged by the change).
    pub status: LoadStatus,
    pub subsidiary: String,
    pub invoice_number: Option<String>,
    /// The documents replaced: (kind, old path).
    pub replaced: Vec<(DocumentKind, String)>,
    /// The load is Queued: its packet was marked for a rebuild.
    pub packet_stale: bool,
}

/// Why a change or a retry was not recorded (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ReworkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The load cannot take this now; the message says why and what to do.
    #[error("{0}")]
    Refused(String),
}

impl From<sqlx::Error> for ReworkError {
    fn from(error: sqlx::Error) -> Self {
        ReworkError::Store(StoreError::Database(error))
    }
}

/// What a recorded retry did.
#[derive(Clone, Debug)]
pub struct RetryRecorded {
    /// The status the load was in: Queued (rejected at submission) or Invoiced (rejected in a
    /// report or by status sync). It is Queued now.
    pub from: LoadStatus,
    pub subsidiary: String,
    pub invoice_number: Option<String>,
    /// The factor's words of the rejection just cleared.
    pub rejection: String,
    /// The factor that holds the invoice already and its reference for it (OTR's
    /// `invoicePkey`), when a batch had delivered it: the next batch adds the documents to that
    /// invoice where the factor's API allows it.
    pub held_by: Option<(String, Option<String>)>,
}

/// The load row a rework change starts from.
struct Current {
    id: i64,
    status: LoadStatus,
    subsidiary: String,
    invoice_number: Option<String>,
    pod: Option<String>,
    rate_confirmation: Option<String>,
}

/// Reads the load (in the transaction), or `LoadNotFound`.
/// A row of `load_documents` as (load id, document).
macro_rules! document_from_row {
    ($r:expr) => {{
        let r = $r;
        let kind: String = r.try_get("kind")?;
        Ok::<_, StoreError>((
            r.try_get::<i64, _>("load_id")?,
            LoadDocument {
                kind: DocumentKind::from_str(&kind).map_err(StoreError::Corrupt)?,
                path: r.try_get("path")?,
                added_at: r.try_get("added_at")?,
                reason: r.try_get("reason")?,
            },
        ))
    }};
}

macro_rules! current_load {
    ($tx:expr, $load_number:expr) => {{
        let row = sqlx::query(
            "SELECT id, status, subsidiary, invoice_number, pod, rate_confirmation FROM loads WHERE load_number = $1",
        )
        .bind($load_number)
        .fetch_optional(&mut *$tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::LoadNotFound($load_number.to_string()).into());
        };
        let status: String = row.try_get("status")?;
        Current {
            id: row.try_get("id")?,
            status: LoadStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            subsidiary: row.try_get("subsidiary")?,
            invoice_number: row.try_get("invoice_number")?,
            pod: row.try_get("pod")?,
            rate_confirmation: row.try_get("rate_confirmation")?,
        }
    }};
}

/// The batch being sent with this load right now, if any (its outcome not known yet).
macro_rules! sending_batch {
    ($tx:expr, $load_id:expr) => {{
        let batch: Option<String> =
            sqlx::query_scalar("SELECT batch_id FROM batch_items WHERE load_id = $1 AND outcome = 'pending'")
                .bind($load_id)
                .fetch_optional(&mut *$tx)
                .await?;
        batch
    }};
}

impl Store {
    /// The current BOL, lumper receipt and other documents of a load, in the order added.
    pub async fn load_documents(&self, load_id: i64) -> Result<Vec<LoadDocument>, StoreError> {
        Ok(self.documents_of(&[load_id]).await?.remove(&load_id).unwrap_or_default())
    }

    /// [`Self::load_documents`] of several loads, by load id (loads without any are left out),
    /// in one query.
    pub async fn documents_of(&self, load_ids: &[i64]) -> Result<HashMap<i64, Vec<LoadDocument>>, StoreError> {
        let mut out: HashMap<i64, Vec<LoadDocument>> = HashMap::new();
        if load_ids.is_empty() {
            return Ok(out);
        }
        let select = "SELECT load_id, kind, path, added_at, reason FROM load_documents WHERE replaced_at IS NULL AND";
        let order = "ORDER BY load_id, id";
        let documents = match self {
            Store::Postgres(pool) => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{select} load_id = ANY($1) {order}")))
                    .bind(load_ids)
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(|r| document_from_row!(r)).collect::<Result<Vec<_>, StoreError>>()?
            }
            Store::Sqlite(pool) => {
                let ids = serde_json::to_string(load_ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{select} load_id IN (SELECT value FROM json_each($1)) {order}"
                )))
                .bind(ids)
                .fetch_all(pool)
                .await?;
                rows.iter().map(|r| document_from_row!(r)).collect::<Result<Vec<_>, StoreError>>()?
            }
        };
        for (load_id, document) in documents {
            out.entry(load_id).or_default().push(document);
        }
        Ok(out)
    }

    /// Records a `loads docs` change in one transaction: the POD and rate confirmation replaced
    /// on the load, a BOL or lumper receipt replacing the current one, other documents added,
    /// a history row, and for a Queued load its packet marked stale (and any claim dropped, so a
    /// rebuild already running with the old documents cannot record its packet). Refused, with
    /// nothing written, while a batch is sending the load.
    #[expect(
        clippy::too_many_lines,
        reason = "one transaction, written once for both backends inside on_pool!: read, compare-and-set, documents, history"
    )]
    pub async fn record_documents(&self, change: &DocumentChange<'_>) -> Result<DocumentsRecorded, ReworkError> {
        let now = Utc::now();
        let find = |kind: DocumentKind| change.documents.iter().find(|(k, _)| *k == kind).map(|(_, p)| p.as_str());
        let (pod, rate_confirmation) = (find(DocumentKind::Pod), find(DocumentKind::RateConfirmation));
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let load = current_load!(tx, change.load_number);
            if let Some(batch) = sending_batch!(tx, load.id) {
                tx.rollback().await?;
                return Err(ReworkError::Refused(format!(
                    "load {} is being sent in batch {batch}; change its documents once that batch is settled",
                    change.load_number
                )));
            }
            let updated = sqlx::query(
                "UPDATE loads SET pod = COALESCE($1, pod), rate_confirmation = COALESCE($2, rate_confirmation), \
                 packet_noa = CASE WHEN status = 'Queued' THEN NULL ELSE packet_noa END, \
                 claim_token = CASE WHEN status IN ('Released', 'Queued') THEN NULL ELSE claim_token END, \
                 claimed_until = CASE WHEN status IN ('Released', 'Queued') THEN NULL ELSE claimed_until END, \
                 updated_at = $3 WHERE id = $4 AND status = $5",
            )
            .bind(pod)
            .bind(rate_confirmation)
            .bind(now)
            .bind(load.id)
            .bind(load.status.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                tx.rollback().await?;
                return Err(ReworkError::Refused(format!(
                    "load {} moved while its documents were changed; run the command again",
                    change.load_number
                )));
            }
            let mut replaced = Vec::new();
            if let (Some(_), Some(old)) = (pod, &load.pod) {
                replaced.push((DocumentKind::Pod, old.clone()));
            }
            if let (Some(_), Some(old)) = (rate_confirmation, &load.rate_confirmation) {
                replaced.push((DocumentKind::RateConfirmation, old.clone()));
            }
            for (kind, path) in change.documents.iter().filter(|(k, _)| DocumentKind::EXTRA.contains(k)) {
                if *kind != DocumentKind::Other {
                    let old: Vec<String> = sqlx::query_scalar(
                        "UPDATE load_documents SET replaced_at = $1 WHERE load_id = $2 AND kind = $3 \
                         AND replaced_at IS NULL RETURNING path",
                    )
                    .bind(now)
                    .bind(load.id)
                    .bind(kind.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                    replaced.extend(old.into_iter().map(|p| (*kind, p)));
                }
                sqlx::query(
                    "INSERT INTO load_documents (load_id, kind, path, added_at, reason) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(load.id)
                .bind(kind.as_str())
                .bind(path)
                .bind(now)
                .bind(change.reason)
                .execute(&mut *tx)
                .await?;
            }
            let listed: Vec<String> =
                change.documents.iter().map(|(kind, path)| format!("{} {path}", kind.label())).collect();
            let cause = format!("loads docs: {}: {}", listed.join(", "), change.reason);
            insert_history!(tx, load.id, Some(load.status.as_str()), load.status.as_str(), now, &cause);
            tx.commit().await?;
            Ok(DocumentsRecorded {
                status: load.status,
                subsidiary: load.subsidiary,
                invoice_number: load.invoice_number,
                replaced,
                packet_stale: load.status == LoadStatus::Queued,
            })
        })
    }

    /// `loads retry`: a load with an open `rejected` exception goes back to Queued (from
    /// Invoiced: the one move back of docs/design.md §2; a Queued load stays), in one
    /// transaction with its history row carrying `reason`: the rejection cleared, the waiting
    /// reason cleared, the packet marked stale so it is rebuilt from today's data and documents,
    /// and an accepted batch item of the load marked retried so the next batch may take it under
    /// the same invoice number. Refused, with nothing written, for a load with no open
    /// rejection, one past Invoiced, or one a batch is sending.
    pub async fn retry_rejected_load(&self, load_number: &str, reason: &str) -> Result<RetryRecorded, ReworkError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let load = current_load!(tx, load_number);
            let rejection: Option<String> = sqlx::query_scalar(
                "SELECT detail FROM load_exceptions WHERE load_id = $1 AND kind = 'rejected' AND cleared_at IS NULL",
            )
            .bind(load.id)
            .fetch_optional(&mut *tx)
            .await?;
            let refuse = match (&rejection, load.status) {
                (None, status) => Some(format!("load {load_number} ({status}) has no open rejection: nothing to retry")),
                (Some(_), LoadStatus::Queued | LoadStatus::Invoiced) => None,
                (Some(_), status) => Some(format!(
                    "load {load_number} is {status}: the factor has bought it, so it cannot go back to Queued; \
                     settle the rejection with the factor"
                )),
            };
            if let Some(message) = refuse {
                tx.rollback().await?;
                return Err(ReworkError::Refused(message));
            }
            if let Some(batch) = sending_batch!(tx, load.id) {
                tx.rollback().await?;
                return Err(ReworkError::Refused(format!(
                    "load {load_number} is being sent in batch {batch}; retry it once that batch is settled"
                )));
            }
            let held_by = sqlx::query(
                "SELECT b.provider, l.submission_reference FROM loads l JOIN batches b ON b.id = l.batch_id \
                 WHERE l.id = $1",
            )
            .bind(load.id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| Ok::<(String, Option<String>), sqlx::Error>((r.try_get("provider")?, r.try_get("submission_reference")?)))
            .transpose()?;
            let moved = sqlx::query(
                "UPDATE loads SET status = 'Queued', packet_noa = NULL, waiting_reason = NULL, claim_token = NULL, \
                 claimed_until = NULL, updated_at = $1 WHERE id = $2 AND status = $3",
            )
            .bind(now)
            .bind(load.id)
            .bind(load.status.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved == 0 {
                tx.rollback().await?;
                return Err(ReworkError::Refused(format!("load {load_number} moved meanwhile; run the command again")));
            }
            sqlx::query(
                "UPDATE batch_items SET retried_at = $1 WHERE load_id = $2 AND outcome = 'accepted' AND retried_at IS NULL",
            )
            .bind(now)
            .bind(load.id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE load_exceptions SET cleared_at = $1 WHERE load_id = $2 AND kind = $3 AND cleared_at IS NULL")
                .bind(now)
                .bind(load.id)
                .bind(ExceptionKind::Rejected.as_str())
                .execute(&mut *tx)
                .await?;
            let cause = format!("loads retry: {reason}");
            insert_history!(tx, load.id, Some(load.status.as_str()), LoadStatus::Queued.as_str(), now, &cause);
            tx.commit().await?;
            Ok(RetryRecorded {
                from: load.status,
                subsidiary: load.subsidiary,
                invoice_number: load.invoice_number,
                rejection: rejection.unwrap_or_default(),
                held_by: held_by.filter(|_| load.status == LoadStatus::Invoiced),
            })
        })
    }
}
