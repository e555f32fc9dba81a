//! Store methods of status sync (docs/design.md §8a): the invoices a factor holds, and the answers
//! applied in one transaction with the same rules as a report row: every move a compare-and-set
//! with its history row, exceptions raised and cleared beside it.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use chrono::Utc;
use sqlx::Row;

use super::{BeginWrite, Store, StoreError};
use crate::domain::{ExceptionKind, LoadStatus};

/// An invoice a factor holds: an Invoiced or Financed load whose delivering batch went to it.
#[derive(Clone, Debug)]
pub struct HeldInvoice {
    pub load_id: i64,
    pub load_number: String,
    pub invoice_number: Option<String>,
    pub status: LoadStatus,
    /// The provider of the batch that delivered it.
    pub provider: String,
    /// The factor's id of the invoice (OTR's `invoicePkey`), if it gave one.
    pub reference: Option<String>,
    pub open_exceptions: HashSet<ExceptionKind>,
}

/// What one factor answer changes on one load.
#[derive(Clone, Debug)]
pub struct StatusChange {
    pub load_id: i64,
    /// The status the answer was judged against; the change applies only if it still is.
    pub expected: LoadStatus,
    /// Moves, in order.
    pub moves: Vec<(LoadStatus, LoadStatus)>,
    /// Exceptions to raise (or whose detail to update).
    pub raise: Vec<(ExceptionKind, String)>,
    pub clear: Vec<ExceptionKind>,
    /// The factor's words, for the ledger event of a move into Financed or Completed.
    pub factor_status: String,
}

/// The ledger event of a move the factor's words made (docs/money.md): `status_purchased` into
/// Financed, `status_paid` into Completed, with no amount; once per load and kind.
macro_rules! status_event {
    ($tx:expr, $change:expr, $to:expr, $now:expr, $cause:expr) => {
        let kind = match $to {
            LoadStatus::Financed => Some("status_purchased"),
            LoadStatus::Completed => Some("status_paid"),
            _ => None,
        };
        if let Some(kind) = kind {
            sqlx::query(
                "INSERT INTO ledger_events (load_id, kind, amount_cents, event_date, source, recorded_at, invoice_number) \
                 VALUES ($1, $2, NULL, $3, $4, $5, (SELECT invoice_number FROM loads WHERE id = $1)) \
                 ON CONFLICT DO NOTHING",
            )
            .bind($change.load_id)
            .bind(kind)
            .bind($now.date_naive().to_string())
            .bind(format!("{}: `{}`", $cause, $change.factor_status))
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
    };
}

impl Store {
    /// The Invoiced and Financed loads of `subsidiary` that a factor holds, with the provider
    /// of their batch and its reference, in load order.
    pub async fn held_invoices(&self, subsidiary: &str) -> Result<Vec<HeldInvoice>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT l.id, l.load_number, l.invoice_number, l.status, b.provider, l.submission_reference \
                 FROM loads l JOIN batches b ON b.id = l.batch_id \
                 WHERE l.subsidiary = $1 AND l.status IN ('Invoiced', 'Financed') ORDER BY l.id",
            )
            .bind(subsidiary)
            .fetch_all(pool)
            .await?;
            let mut held = rows
                .iter()
                .map(|r| {
                    let status: String = r.try_get("status")?;
                    Ok(HeldInvoice {
                        load_id: r.try_get("id")?,
                        load_number: r.try_get("load_number")?,
                        invoice_number: r.try_get("invoice_number")?,
                        status: LoadStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        provider: r.try_get("provider")?,
                        reference: r.try_get("submission_reference")?,
                        open_exceptions: HashSet::new(),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let exceptions: Vec<(i64, String)> = sqlx::query_as(
                "SELECT e.load_id, e.kind FROM load_exceptions e JOIN loads l ON l.id = e.load_id \
                 WHERE l.subsidiary = $1 AND e.cleared_at IS NULL",
            )
            .bind(subsidiary)
            .fetch_all(pool)
            .await?;
            let mut by_load: HashMap<i64, HashSet<ExceptionKind>> = HashMap::new();
            for (load_id, kind) in exceptions {
                by_load.entry(load_id).or_default().insert(ExceptionKind::from_str(&kind).map_err(StoreError::Corrupt)?);
            }
            for invoice in &mut held {
                invoice.open_exceptions = by_load.remove(&invoice.load_id).unwrap_or_default();
            }
            Ok(held)
        })
    }

    /// Applies status answers in one transaction. A change whose load is no longer in its
    /// `expected` status (a report moved it meanwhile) is left out; its id comes back in the
    /// second list, to be asked again at the next sync.
    pub async fn apply_status_changes(&self, cause: &str, changes: &[StatusChange]) -> Result<Vec<i64>, StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut moved_meanwhile = Vec::new();
            for change in changes {
                let mut current = change.expected;
                let mut lost = false;
                for &(from, to) in &change.moves {
                    let moved = sqlx::query("UPDATE loads SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4")
                        .bind(to.as_str())
                        .bind(now)
                        .bind(change.load_id)
                        .bind(from.as_str())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if moved != 1 {
                        lost = true;
                        break;
                    }
                    insert_history!(tx, change.load_id, Some(from.as_str()), to.as_str(), now, cause);
                    status_event!(tx, change, to, now, cause);
                    current = to;
                }
                if change.moves.is_empty() {
                    let status: Option<String> = sqlx::query_scalar("SELECT status FROM loads WHERE id = $1")
                        .bind(change.load_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    lost = status.as_deref() != Some(current.as_str());
                }
                if lost {
                    // Only the first move can miss (each later one follows it in this
                    // transaction), so nothing of this change was written.
                    moved_meanwhile.push(change.load_id);
                    continue;
                }
                for (kind, detail) in &change.raise {
                    sqlx::query(concat!(
                        "INSERT INTO load_exceptions (load_id, kind, detail, raised_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (load_id, kind) WHERE cleared_at IS NULL DO UPDATE SET detail = excluded.detail \
                         WHERE NOT ",
                        ops_only!()
                    ))
                    .bind(change.load_id)
                    .bind(kind.as_str())
                    .bind(detail)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                for kind in &change.clear {
                    sqlx::query(concat!(
                        "UPDATE load_exceptions SET cleared_at = $1 WHERE load_id = $2 AND kind = $3 \
                         AND cleared_at IS NULL AND NOT ",
                        ops_only!()
                    ))
                    .bind(now)
                    .bind(change.load_id)
                    .bind(kind.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(moved_meanwhile)
        })
    }
}
