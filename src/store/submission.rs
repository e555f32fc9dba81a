//! Store methods of batch submission: schedule fires, the write-ahead batch, each invoice's
//! outcome, and what reconciliation needs after a crash.
//!
//! A batch and its items are committed as `sending` before any call to the factor
//! (docs/reliability.md rule 5); the unique index on live items keeps a load in at most one
//! batch at a time, and the unique (subsidiary, fire time) keeps every schedule fire single
//! (rule 4).

// FromStr is used by `load_from_row!`.
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::Row;

// LoadFields and Money are named by `load_from_row!`.
use super::{BeginWrite, LoadRecord, Store, StoreError};
use crate::domain::{ExceptionKind, LoadFields, LoadStatus, Money};
use crate::domain::{InvoiceOutcome, ProviderError, idempotency_key};

/// What happens next to a load the factor did not take this time (its waiting reason ends
/// with it): it stays Queued, and the next submission takes it again.
pub const GOES_AGAIN: &str = "it goes again in the next batch (the next fire, or `factord submit`)";
/// What happens next when the factor refused the credentials: the next batch is sent too, and
/// fails the same way until the configuration changes.
pub const CREDENTIALS_REFUSED: &str =
    "the factor refused the credentials: no retry can succeed until they are fixed in the configuration";

// DIALECT: lease arithmetic on the database clock.
const LEASE_POSTGRES: &str = "UPDATE batches SET lease_until = now() + make_interval(secs => $2) \
    WHERE id = $1 AND status = 'sending'";
const LEASE_SQLITE: &str = "UPDATE batches SET lease_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || $2 || ' seconds') \
    WHERE id = $1 AND status = 'sending'";
const TAKE_POSTGRES: &str = "UPDATE batches SET lease_until = now() + make_interval(secs => $2) \
    WHERE id = $1 AND status = 'sending' AND (lease_until IS NULL OR lease_until <= now())";
const TAKE_SQLITE: &str = "UPDATE batches SET lease_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || $2 || ' seconds') \
    WHERE id = $1 AND status = 'sending' \
    AND (lease_until IS NULL OR lease_until <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))";

/// A batch to write ahead of sending it.
#[derive(Clone, Debug)]
pub struct BatchDraft<'a> {
    pub subsidiary: &'a str,
    pub provider: &'a str,
    /// `YYYY-MM-DD` in the subsidiary's time zone.
    pub batch_date: &'a str,
    /// What started it: `schedule <fire time>` or `command`.
    pub cause: &'a str,
    pub items: Vec<DraftItem>,
    /// The sender's lease on the batch, taken in the same transaction that writes it, so no
    /// other process can take a batch being sent for a crashed one, not even for a moment.
    pub lease: std::time::Duration,
}

#[derive(Clone, Debug)]
pub struct DraftItem {
    pub load_id: i64,
    pub invoice_number: String,
    pub amount_cents: i64,
    /// sha256 of what is sent for this invoice (its packet and fields).
    pub payload_sha256: String,
}

/// A batch as written: its id (`<subsidiary>-<number>`), number and unique id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedBatch {
    pub id: String,
    pub number: i64,
    /// 16 hex digits from the OS random generator: unique across installations and database
    /// resets, where ids and numbers start again. Batch file names carry it.
    pub uid: String,
}

/// A new batch uid: 16 lowercase hex digits from the OS random generator.
fn new_batch_uid() -> Result<String, StoreError> {
    let value = getrandom::u64().map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(format!("{value:016x}"))
}

/// A batch left `sending`, with its loads, for reconciliation.
#[derive(Clone, Debug)]
pub struct PendingBatch {
    pub id: String,
    pub number: i64,
    pub subsidiary: String,
    pub provider: String,
    pub batch_date: String,
    /// `None` for a batch written before batches had uids (migration 0010).
    pub uid: Option<String>,
    pub items: Vec<(LoadRecord, String)>,
    /// The loads' documents beyond POD and rate confirmation (`loads docs`), by load id.
    pub documents: std::collections::HashMap<i64, Vec<super::LoadDocument>>,
}

/// One recent batch, for `status`.
#[derive(Clone, Debug)]
pub struct BatchSummary {
    pub id: String,
    pub subsidiary: String,
    pub provider: String,
    pub status: String,
    pub invoice_count: i64,
    pub total_cents: i64,
    pub reference: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub accepted: i64,
    pub rejected: i64,
    pub transient: i64,
}

impl Store {
    /// Records a schedule fire; `false` if this (subsidiary, fire time) was fired before, by this
    /// daemon or another.
    pub async fn record_fire(&self, subsidiary: &str, fire_time: DateTime<Utc>) -> Result<bool, StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let inserted = sqlx::query(
                "INSERT INTO schedule_fires (subsidiary, fire_time, fired_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (subsidiary, fire_time) DO NOTHING",
            )
            .bind(subsidiary)
            .bind(fire_time)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(inserted == 1)
        })
    }

    /// The latest recorded fire of a subsidiary's schedule.
    pub async fn last_fire(&self, subsidiary: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        on_pool!(self, pool => {
            let last: Option<DateTime<Utc>> =
                sqlx::query_scalar("SELECT MAX(fire_time) FROM schedule_fires WHERE subsidiary = $1")
                    .bind(subsidiary)
                    .fetch_one(pool)
                    .await?;
            Ok(last)
        })
    }

    /// Queued loads of a subsidiary that are in no live batch, in load order.
    pub async fn loads_to_submit(&self, subsidiary: &str) -> Result<Vec<LoadRecord>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", load_columns!(), " FROM loads l JOIN customers c ON c.id = l.customer_id \
                 WHERE l.status = 'Queued' AND l.subsidiary = $1 AND NOT EXISTS (SELECT 1 FROM batch_items b \
                 WHERE b.load_id = l.id AND b.outcome IN ('pending', 'accepted') AND b.retried_at IS NULL) ORDER BY l.id"
            ))
            .bind(subsidiary)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(load_from_row!(row))).collect()
        })
    }

    /// The open `rejected` exceptions of a subsidiary's loads, by load id, in one query.
    pub async fn rejected_loads(&self, subsidiary: &str) -> Result<std::collections::HashMap<i64, String>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT e.load_id, e.detail FROM load_exceptions e JOIN loads l ON l.id = e.load_id \
                 WHERE l.subsidiary = $1 AND e.kind = 'rejected' AND e.cleared_at IS NULL",
            )
            .bind(subsidiary)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok((r.try_get("load_id")?, r.try_get("detail")?))).collect()
        })
    }

    /// Writes a batch and its items as `sending`, in one transaction, before anything is sent.
    /// The caller then takes the batch's lease with [`Self::renew_batch_lease`] before sending.
    /// Fails with [`StoreError::AlreadyBatched`], writing nothing, if a load is already in a
    /// live batch (the unique index: another submitter was first).
    pub async fn create_batch(&self, draft: &BatchDraft<'_>) -> Result<CreatedBatch, StoreError> {
        let now = Utc::now();
        let total: i64 = draft.items.iter().map(|i| i.amount_cents).sum();
        let uid = new_batch_uid()?;
        let lease_sql = match self {
            Store::Postgres(_) => LEASE_POSTGRES,
            Store::Sqlite(_) => LEASE_SQLITE,
        };
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let number: i64 = sqlx::query_scalar(
                "INSERT INTO batch_sequences (subsidiary, last_number) VALUES ($1, 1) \
                 ON CONFLICT (subsidiary) DO UPDATE SET last_number = batch_sequences.last_number + 1 \
                 RETURNING last_number",
            )
            .bind(draft.subsidiary)
            .fetch_one(&mut *tx)
            .await?;
            let id = format!("{}-{number}", draft.subsidiary);
            sqlx::query(
                "INSERT INTO batches (id, subsidiary, provider, number, batch_date, status, invoice_count, total_cents, \
                 cause, created_at, uid) VALUES ($1, $2, $3, $4, $5, 'sending', $6, $7, $8, $9, $10)",
            )
            .bind(&id)
            .bind(draft.subsidiary)
            .bind(draft.provider)
            .bind(number)
            .bind(draft.batch_date)
            .bind(draft.items.len() as i64)
            .bind(total)
            .bind(draft.cause)
            .bind(now)
            .bind(&uid)
            .execute(&mut *tx)
            .await?;
            sqlx::query(lease_sql).bind(&id).bind(draft.lease.as_secs_f64()).execute(&mut *tx).await?;
            for item in &draft.items {
                let inserted = sqlx::query(
                    "INSERT INTO batch_items (batch_id, load_id, invoice_number, idempotency_key, payload_sha256, outcome) \
                     VALUES ($1, $2, $3, $4, $5, 'pending')",
                )
                .bind(&id)
                .bind(item.load_id)
                .bind(&item.invoice_number)
                .bind(idempotency_key(&id, &uid, &item.invoice_number))
                .bind(&item.payload_sha256)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    // Another submitter batched this load first: nothing of this batch is kept.
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        tx.rollback().await?;
                        return Err(StoreError::AlreadyBatched);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            tx.commit().await?;
            Ok(CreatedBatch { id, number, uid })
        })
    }

    /// Extends the lease of a batch this process is sending (`lease` from now).
    pub async fn renew_batch_lease(&self, batch_id: &str, lease: std::time::Duration) -> Result<(), StoreError> {
        let sql = match self {
            Store::Postgres(_) => LEASE_POSTGRES,
            Store::Sqlite(_) => LEASE_SQLITE,
        };
        on_pool!(self, pool => {
            sqlx::query(sql).bind(batch_id).bind(lease.as_secs_f64()).execute(pool).await?;
            Ok(())
        })
    }

    /// Leaves a batch whose outcome is unknown (the factor could not be asked) `sending`, its
    /// lease given up so the next reconciliation settles it, and says so on its loads.
    pub async fn park_batch(&self, batch_id: &str, reason: &str) -> Result<(), StoreError> {
        self.renew_batch_lease(batch_id, std::time::Duration::ZERO).await?;
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE batches SET error = $1 WHERE id = $2 AND status = 'sending'")
                .bind(reason)
                .bind(batch_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE loads SET waiting_reason = $1 WHERE id IN \
                 (SELECT load_id FROM batch_items WHERE batch_id = $2 AND outcome = 'pending')",
            )
            .bind(format!("batch {batch_id}: outcome unknown ({reason}); settled once the factor can be asked"))
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Takes a batch left `sending` for reconciliation: only if its lease has expired (its
    /// sender is gone), and then this process holds the lease. `false` if someone holds it.
    pub async fn take_stale_batch(&self, batch_id: &str, lease: std::time::Duration) -> Result<bool, StoreError> {
        let sql = match self {
            Store::Postgres(_) => TAKE_POSTGRES,
            Store::Sqlite(_) => TAKE_SQLITE,
        };
        on_pool!(self, pool => {
            let taken = sqlx::query(sql).bind(batch_id).bind(lease.as_secs_f64()).execute(pool).await?.rows_affected();
            Ok(taken == 1)
        })
    }

    /// Records what the factor said, in one transaction: accepted invoices move Queued →
    /// Invoiced with the batch id and the factor's reference; rejected ones get the `rejected`
    /// exception with the factor's message and stay Queued; transient ones stay Queued, free
    /// for a later batch. The batch becomes `sent` (the factor answered) or `failed` (nothing
    /// was taken).
    pub async fn record_batch_outcome(
        &self,
        batch_id: &str,
        reference: Option<&str>,
        outcomes: &[(String, InvoiceOutcome)],
    ) -> Result<(), StoreError> {
        self.settle_batch(batch_id, reference, outcomes, None, GOES_AGAIN).await
    }

    /// [`Self::record_batch_outcome`], or with `failure` the batch as a whole was not delivered:
    /// it becomes `failed` with that error whatever the outcomes say, in the same transaction.
    /// `next` (after the reason) tells what happens to the loads of transient outcomes.
    #[expect(
        clippy::too_many_lines,
        reason = "one transaction, written once for both backends inside on_pool!: the batch, then each outcome's item, load move and history"
    )]
    async fn settle_batch(
        &self,
        batch_id: &str,
        reference: Option<&str>,
        outcomes: &[(String, InvoiceOutcome)],
        failure: Option<&str>,
        next: &str,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let delivered =
            failure.is_none() && outcomes.iter().any(|(_, o)| !matches!(o, InvoiceOutcome::Transient { .. }));
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for (invoice, outcome) in outcomes {
                let item = sqlx::query(
                    "SELECT i.load_id, l.load_number, l.status FROM batch_items i JOIN loads l ON l.id = i.load_id \
                     WHERE i.batch_id = $1 AND i.invoice_number = $2 AND i.outcome = 'pending'",
                )
                .bind(batch_id)
                .bind(invoice)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(item) = item else { continue };
                let load_id: i64 = item.try_get("load_id")?;
                let (label, factor_reference, message) = match outcome {
                    InvoiceOutcome::Accepted { reference } => ("accepted", reference.as_deref(), None),
                    InvoiceOutcome::Rejected { reason } => ("rejected", None, Some(reason.as_str())),
                    InvoiceOutcome::Transient { reason } => ("transient", None, Some(reason.as_str())),
                };
                sqlx::query(
                    "UPDATE batch_items SET outcome = $1, factor_reference = $2, message = $3 \
                     WHERE batch_id = $4 AND load_id = $5",
                )
                .bind(label)
                .bind(factor_reference)
                .bind(message)
                .bind(batch_id)
                .bind(load_id)
                .execute(&mut *tx)
                .await?;
                match outcome {
                    InvoiceOutcome::Accepted { reference } => {
                        let moved = sqlx::query(
                            "UPDATE loads SET status = 'Invoiced', batch_id = $1, submission_reference = $2, \
                             waiting_reason = NULL, updated_at = $3 WHERE id = $4 AND status = 'Queued'",
                        )
                        .bind(batch_id)
                        .bind(reference.as_deref())
                        .bind(now)
                        .bind(load_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if moved == 1 {
                            let cause = format!("batch {batch_id}");
                            insert_history!(tx, load_id, Some(LoadStatus::Queued.as_str()), LoadStatus::Invoiced.as_str(), now, &cause);
                            sqlx::query(
                                "UPDATE load_exceptions SET cleared_at = $1 WHERE load_id = $2 AND kind = 'rejected' \
                                 AND cleared_at IS NULL",
                            )
                            .bind(now)
                            .bind(load_id)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                    InvoiceOutcome::Rejected { reason } => {
                        sqlx::query(
                            "INSERT INTO load_exceptions (load_id, kind, detail, raised_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (load_id, kind) WHERE cleared_at IS NULL DO UPDATE SET detail = excluded.detail",
                        )
                        .bind(load_id)
                        .bind(ExceptionKind::Rejected.as_str())
                        .bind(format!("batch {batch_id}: {reason}"))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query("UPDATE loads SET waiting_reason = $1 WHERE id = $2")
                            .bind(format!("rejected by the factor: {reason}"))
                            .bind(load_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    InvoiceOutcome::Transient { reason } => {
                        sqlx::query("UPDATE loads SET waiting_reason = $1 WHERE id = $2")
                            .bind(format!("submission failed: {reason}; {next}"))
                            .bind(load_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            // An invoice the answer did not mention is not left pending (which would hold its
            // load in this batch for good): it goes in a later batch.
            sqlx::query(
                "UPDATE batch_items SET outcome = 'transient', message = 'not in the factor''s answer' \
                 WHERE batch_id = $1 AND outcome = 'pending'",
            )
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE batches SET status = $1, reference = $2, error = $3, finished_at = $4 \
                 WHERE id = $5 AND status = 'sending'",
            )
            .bind(if delivered { "sent" } else { "failed" })
            .bind(reference)
            .bind(failure)
            .bind(now)
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Marks a batch that could not be delivered at all: every pending item becomes `rejected`
    /// for [`ProviderError::Rejected`], else `transient` (its load waits with [`GOES_AGAIN`], or
    /// [`CREDENTIALS_REFUSED`] for [`ProviderError::Auth`]), and the batch `failed` with the
    /// error, all in one transaction. A batch refused whole is `failed` too: nothing was taken.
    pub async fn fail_batch(&self, batch_id: &str, error: &ProviderError) -> Result<(), StoreError> {
        let rejected = matches!(error, ProviderError::Rejected(_));
        let next = if matches!(error, ProviderError::Auth(_)) { CREDENTIALS_REFUSED } else { GOES_AGAIN };
        let error = error.to_string();
        let error = error.as_str();
        let invoices: Vec<String> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT invoice_number FROM batch_items WHERE batch_id = $1 AND outcome = 'pending'")
                .bind(batch_id)
                .fetch_all(pool)
                .await?
        });
        let outcome = if rejected {
            InvoiceOutcome::Rejected { reason: error.to_string() }
        } else {
            InvoiceOutcome::Transient { reason: error.to_string() }
        };
        let outcomes: Vec<(String, InvoiceOutcome)> = invoices.into_iter().map(|i| (i, outcome.clone())).collect();
        self.settle_batch(batch_id, None, &outcomes, Some(error), next).await
    }

    /// Batches left `sending` (by a crash), with their loads, oldest first.
    pub async fn batches_in_flight(&self) -> Result<Vec<PendingBatch>, StoreError> {
        on_pool!(self, pool => {
            let batches = sqlx::query(
                "SELECT id, number, subsidiary, provider, batch_date, uid FROM batches WHERE status = 'sending' ORDER BY created_at",
            )
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(batches.len());
            for b in &batches {
                let id: String = b.try_get("id")?;
                let rows = sqlx::query(concat!(
                    "SELECT ", load_columns!(), ", i.idempotency_key FROM batch_items i JOIN loads l ON l.id = i.load_id \
                     JOIN customers c ON c.id = l.customer_id WHERE i.batch_id = $1 AND i.outcome = 'pending' ORDER BY l.id"
                ))
                .bind(&id)
                .fetch_all(pool)
                .await?;
                let mut items = Vec::with_capacity(rows.len());
                for row in &rows {
                    let key: String = row.try_get("idempotency_key")?;
                    items.push((load_from_row!(row), key));
                }
                let load_ids: Vec<i64> = items.iter().map(|(load, _)| load.id).collect();
                let documents = self.documents_of(&load_ids).await?;
                out.push(PendingBatch {
                    documents,
                    id,
                    number: b.try_get("number")?,
                    subsidiary: b.try_get("subsidiary")?,
                    provider: b.try_get("provider")?,
                    batch_date: b.try_get("batch_date")?,
                    uid: b.try_get("uid")?,
                    items,
                });
            }
            Ok(out)
        })
    }

    /// The latest batches, newest first, with their item counts.
    pub async fn recent_batches(&self, limit: i64) -> Result<Vec<BatchSummary>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                concat!(
                "SELECT ", batch_summary_columns!(),
                " FROM batches b ORDER BY b.created_at DESC, b.id DESC LIMIT $1"
            ),
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok(batch_summary_from_row!(r))).collect()
        })
    }
}
