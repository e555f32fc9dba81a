//! Store methods of the invoice job: claim Released loads with a lease, hand out invoice
//! numbers, and move a load to Queued (or Invoiced for direct customers) with its packet.
//!
//! Claims are leases measured on the database's clock (docs/reliability.md rule 3); a job that dies
//! leaves its claims to expire. No transaction stays open while PDFs are made.

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use sqlx::Row;

// LoadFields and Money are named by `load_from_row!`.
use super::{BeginWrite, LoadRecord, Store, StoreError};
use crate::domain::{LoadFields, LoadStatus, Money};

/// Claims up to `$4` Released loads (of subsidiary `$3`, or all when NULL) that nobody holds,
/// for `$2` seconds, marking them with token `$1`. A load with an open `held` exception is not
/// taken (docs/design.md §2 "Rework").
// DIALECT: time arithmetic on the database clock, and SKIP LOCKED on PostgreSQL so two passes
// never wait on each other's rows.
const CLAIM_POSTGRES: &str = "UPDATE loads SET claim_token = $1, claimed_until = now() + make_interval(secs => $2) \
    WHERE id IN (SELECT id FROM loads WHERE status = 'Released' AND ($3::text IS NULL OR subsidiary = $3) \
    AND (claimed_until IS NULL OR claimed_until < now()) AND id NOT IN (SELECT load_id FROM load_exceptions \
    WHERE kind = 'held' AND cleared_at IS NULL) ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)";
const CLAIM_SQLITE: &str = "UPDATE loads SET claim_token = $1, \
    claimed_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || $2 || ' seconds') \
    WHERE id IN (SELECT id FROM loads WHERE status = 'Released' AND ($3 IS NULL OR subsidiary = $3) \
    AND (claimed_until IS NULL OR claimed_until < strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) AND id NOT IN \
    (SELECT load_id FROM load_exceptions WHERE kind = 'held' AND cleared_at IS NULL) ORDER BY id LIMIT $4)";

// DIALECT: as above.
const RENEW_POSTGRES: &str =
    "UPDATE loads SET claimed_until = now() + make_interval(secs => $2) WHERE claim_token = $1 AND status = 'Released'";
const RENEW_SQLITE: &str = "UPDATE loads SET claimed_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || $2 || ' seconds') \
    WHERE claim_token = $1 AND status = 'Released'";

/// Claims up to `$5` Queued loads of subsidiary `$3` whose packet was built for something other
/// than `$4` (another factor or another NOA), that no live batch holds and nobody has claimed.
// DIALECT: as above.
const CLAIM_STALE_POSTGRES: &str = "UPDATE loads SET claim_token = $1, claimed_until = now() + make_interval(secs => $2) \
    WHERE id IN (SELECT l.id FROM loads l WHERE l.status = 'Queued' AND l.subsidiary = $3 \
    AND (l.packet_noa IS NULL OR l.packet_noa <> $4) AND (l.claimed_until IS NULL OR l.claimed_until < now()) \
    AND NOT EXISTS (SELECT 1 FROM batch_items b WHERE b.load_id = l.id AND b.outcome IN ('pending', 'accepted') AND b.retried_at IS NULL) \
    ORDER BY l.id LIMIT $5 FOR UPDATE SKIP LOCKED)";
const CLAIM_STALE_SQLITE: &str = "UPDATE loads SET claim_token = $1, \
    claimed_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || $2 || ' seconds') \
    WHERE id IN (SELECT l.id FROM loads l WHERE l.status = 'Queued' AND l.subsidiary = $3 \
    AND (l.packet_noa IS NULL OR l.packet_noa <> $4) \
    AND (l.claimed_until IS NULL OR l.claimed_until < strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
    AND NOT EXISTS (SELECT 1 FROM batch_items b WHERE b.load_id = l.id AND b.outcome IN ('pending', 'accepted') AND b.retried_at IS NULL) \
    ORDER BY l.id LIMIT $5)";

/// Most numbers already issued that taking one invoice number skips before it gives up.
const MAX_SKIPPED_NUMBERS: i64 = 10_000;

/// Why an invoicing step did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("the claim on load {0} was lost (its lease expired and another job took it)")]
    Lost(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ClaimError {
    fn from(error: sqlx::Error) -> Self {
        ClaimError::Store(StoreError::Database(error))
    }
}

impl Store {
    /// Claims Released loads for one invoice pass and returns them with their customers.
    pub async fn claim_released_loads(
        &self,
        subsidiary: Option<&str>,
        token: &str,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<LoadRecord>, StoreError> {
        let seconds = lease.as_secs_f64();
        let sql = match self {
            Store::Postgres(_) => CLAIM_POSTGRES,
            Store::Sqlite(_) => CLAIM_SQLITE,
        };
        on_pool!(self, pool => {
            sqlx::query(sql).bind(token).bind(seconds).bind(subsidiary).bind(limit).execute(pool).await?;
        });
        self.claimed_loads(token, LoadStatus::Released).await
    }

    /// Claims Queued loads of `subsidiary` whose packet was built for another factor or NOA than
    /// `mark` (see `Subsidiary::packet_mark`), so that their packets are rebuilt before any batch
    /// takes them. Loads in a live batch are left alone: that batch is already on its way.
    pub async fn claim_stale_packets(
        &self,
        subsidiary: &str,
        mark: &str,
        token: &str,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<LoadRecord>, StoreError> {
        let sql = match self {
            Store::Postgres(_) => CLAIM_STALE_POSTGRES,
            Store::Sqlite(_) => CLAIM_STALE_SQLITE,
        };
        on_pool!(self, pool => {
            sqlx::query(sql).bind(token).bind(lease.as_secs_f64()).bind(subsidiary).bind(mark).bind(limit).execute(pool).await?;
        });
        self.claimed_loads(token, LoadStatus::Queued).await
    }

    /// The loads in `status` marked with claim `token`, with their customers, in load order.
    async fn claimed_loads(&self, token: &str, status: LoadStatus) -> Result<Vec<LoadRecord>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", load_columns!(), " FROM loads l JOIN customers c ON c.id = l.customer_id \
                 WHERE l.claim_token = $1 AND l.status = $2 ORDER BY l.id"
            ))
            .bind(token)
            .bind(status.as_str())
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(load_from_row!(row))).collect()
        })
    }

    /// Records a rebuilt packet: its path and what it was built for, and frees the claim. The
    /// load keeps its status and invoice number. `Lost` if the claim is no longer ours.
    pub async fn record_rebuilt_packet(
        &self,
        load: &LoadRecord,
        token: &str,
        mark: &str,
        packet_path: &str,
    ) -> Result<(), ClaimError> {
        on_pool!(self, pool => {
            let updated = sqlx::query(
                // A hold's waiting reason stays: the load still waits for ops to release it.
                "UPDATE loads SET packet_noa = $1, packet_path = $2, claim_token = NULL, claimed_until = NULL, \
                 waiting_reason = CASE WHEN waiting_reason LIKE 'held:%' THEN waiting_reason ELSE NULL END, \
                 updated_at = $3 WHERE id = $4 AND status = 'Queued' AND claim_token = $5",
            )
            .bind(mark)
            .bind(packet_path)
            .bind(Utc::now())
            .bind(load.id)
            .bind(token)
            .execute(pool)
            .await?
            .rows_affected();
            if updated == 0 {
                return Err(ClaimError::Lost(load.load_number.clone()));
            }
            Ok(())
        })
    }

    /// Extends the lease on every load still claimed with `token`.
    pub async fn renew_claims(&self, token: &str, lease: Duration) -> Result<(), StoreError> {
        let sql = match self {
            Store::Postgres(_) => RENEW_POSTGRES,
            Store::Sqlite(_) => RENEW_SQLITE,
        };
        on_pool!(self, pool => {
            sqlx::query(sql).bind(token).bind(lease.as_secs_f64()).execute(pool).await?;
            Ok(())
        })
    }

    /// Gives up a claim, recording why the load waits (or clearing the reason with `None`).
    pub async fn release_claim(
        &self,
        load_id: i64,
        token: &str,
        waiting_reason: Option<&str>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE loads SET claim_token = NULL, claimed_until = NULL, waiting_reason = $1 \
                 WHERE id = $2 AND claim_token = $3",
            )
            .bind(waiting_reason)
            .bind(load_id)
            .bind(token)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The load's invoice number: the one it already has (from an earlier attempt), or the
    /// subsidiary's next, written on the load in the same transaction. If the claim was lost
    /// the transaction is rolled back, so no number is ever lost or given twice; a number
    /// issued before (on a load, or voided) is passed over, never given again.
    pub async fn assign_invoice_number(
        &self,
        load: &LoadRecord,
        token: &str,
        prefix: &str,
    ) -> Result<String, ClaimError> {
        if let Some(number) = &load.invoice_number {
            return Ok(number.clone());
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut skipped = 0;
            let number = loop {
                // The upsert takes the sequence row's lock: concurrent passes queue here.
                let next: i64 = sqlx::query_scalar(
                    "INSERT INTO invoice_sequences (subsidiary, last_number) VALUES ($1, 1) \
                     ON CONFLICT (subsidiary) DO UPDATE SET last_number = invoice_sequences.last_number + 1 \
                     RETURNING last_number",
                )
                .bind(&load.fields.subsidiary)
                .fetch_one(&mut *tx)
                .await?;
                let number = format!("{prefix}{next}");
                // The sequence only goes up, so a number is new unless the sequence was set back
                // (a subsidiary renamed, keeping its prefix): a number ever issued, voided ones
                // included (docs/design.md §2 "Rework"), is skipped, never given again.
                let issued: Option<String> = sqlx::query_scalar(
                    "SELECT invoice_number FROM void_invoices WHERE invoice_number = $1 \
                     UNION ALL SELECT invoice_number FROM loads WHERE invoice_number = $1",
                )
                .bind(&number)
                .fetch_optional(&mut *tx)
                .await?;
                if issued.is_none() {
                    break number;
                }
                skipped += 1;
                if skipped > MAX_SKIPPED_NUMBERS {
                    tx.rollback().await?;
                    return Err(StoreError::Corrupt(format!(
                        "subsidiary {}: the next {MAX_SKIPPED_NUMBERS} invoice numbers after {number} were all \
                         issued before; invoice_sequences is behind the numbers in use",
                        load.fields.subsidiary
                    ))
                    .into());
                }
            };
            let set = sqlx::query(
                "UPDATE loads SET invoice_number = $1 WHERE id = $2 AND claim_token = $3 \
                 AND invoice_number IS NULL AND status = 'Released'",
            )
            .bind(&number)
            .bind(load.id)
            .bind(token)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if set == 0 {
                tx.rollback().await?;
                return Err(ClaimError::Lost(load.load_number.clone()));
            }
            tx.commit().await?;
            Ok(number)
        })
    }

    /// Moves a claimed Released load to Queued (factoring) or Invoiced (direct) with its
    /// invoice date and packet, sets or clears its waiting reason, frees the claim, and writes
    /// the history row, in one transaction.
    pub async fn complete_invoicing(
        &self,
        load: &LoadRecord,
        token: &str,
        done: Completion<'_>,
    ) -> Result<(), ClaimError> {
        if !LoadStatus::Released.can_move_to(done.to) {
            return Err(StoreError::IllegalMove {
                load: load.load_number.clone(),
                from: LoadStatus::Released,
                to: done.to,
            }
            .into());
        }
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let moved = sqlx::query(
                "UPDATE loads SET status = $1, invoice_date = $2, packet_path = $3, waiting_reason = $4, \
                 claim_token = NULL, claimed_until = NULL, updated_at = $5, packet_noa = $8 \
                 WHERE id = $6 AND status = 'Released' AND claim_token = $7",
            )
            .bind(done.to.as_str())
            .bind(done.invoice_date)
            .bind(done.packet_path)
            .bind(done.waiting_reason)
            .bind(now)
            .bind(load.id)
            .bind(token)
            .bind(done.packet_noa)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved == 0 {
                tx.rollback().await?;
                return Err(ClaimError::Lost(load.load_number.clone()));
            }
            insert_history!(tx, load.id, Some(LoadStatus::Released.as_str()), done.to.as_str(), now, done.cause);
            tx.commit().await?;
            Ok(())
        })
    }

    /// The load holding an invoice number, as a packet file left by a crash needs it.
    pub async fn invoice_holder(&self, invoice_number: &str) -> Result<Option<InvoiceHolder>, StoreError> {
        // DIALECT: the lease is judged on the database clock.
        let sql = match self {
            Store::Postgres(_) => {
                "SELECT status, packet_path, claim_token, (claimed_until IS NOT NULL AND claimed_until > now()) AS live \
                 FROM loads WHERE invoice_number = $1"
            }
            Store::Sqlite(_) => {
                "SELECT status, packet_path, claim_token, \
                 (claimed_until IS NOT NULL AND claimed_until > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) AS live \
                 FROM loads WHERE invoice_number = $1"
            }
        };
        on_pool!(self, pool => {
            let row = sqlx::query(sql).bind(invoice_number).fetch_optional(pool).await?;
            match row {
                Some(row) => {
                    let status: String = row.try_get("status")?;
                    Ok(Some(InvoiceHolder {
                        status: LoadStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        packet_path: row.try_get("packet_path")?,
                        claim_token: row.try_get("claim_token")?,
                        claim_live: row.try_get("live")?,
                    }))
                }
                None => Ok(None),
            }
        })
    }
}

/// The state of the load that holds an invoice number.
#[derive(Clone, Debug)]
pub struct InvoiceHolder {
    pub status: LoadStatus,
    pub packet_path: Option<String>,
    pub claim_token: Option<String>,
    /// Whether `claim_token`'s lease has not yet expired.
    pub claim_live: bool,
}

/// What an invoiced load becomes.
#[derive(Clone, Copy, Debug)]
pub struct Completion<'a> {
    /// Queued (factoring) or Invoiced (direct).
    pub to: LoadStatus,
    /// `YYYY-MM-DD`.
    pub invoice_date: &'a str,
    pub packet_path: &'a str,
    /// What a factored packet was built for (`Subsidiary::packet_mark`); `None` for direct.
    pub packet_noa: Option<&'a str>,
    /// Why the load still cannot move on, if anything (e.g. an inactive provider).
    pub waiting_reason: Option<&'a str>,
    /// The history row's cause.
    pub cause: &'a str,
}
