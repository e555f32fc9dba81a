//! Store methods of rework (docs/design.md §2 "Rework"): ops holding and releasing a load, voiding
//! an invoice, and the open exceptions as `factord exceptions` lists them.
//!
//! Each command is one transaction that first touches the load's row (`UPDATE … RETURNING`),
//! which takes the row's lock on PostgreSQL (SQLite's `BEGIN IMMEDIATE` already serialises
//! writers), so what it reads of the load cannot change before it commits. A hold or release is
//! not a status move: its history row keeps `from` = `to` = the load's status, with the reason in
//! the cause. A void is the one move back to Released, written like any move (compare-and-set on
//! the status it read, history row in the same transaction).

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;

use super::{BeginWrite, Store, StoreError};
use crate::domain::ledger::{Field, Invariant, KnownFigures};
use crate::domain::{ExceptionKind, LoadStatus, Money};

/// What `hold` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldOutcome {
    /// The load is now held, since `raised_at`; it was (and stays) in this status.
    Held { status: LoadStatus, raised_at: DateTime<Utc> },
    /// A `held` exception was already open: the first one is kept.
    AlreadyHeld { status: LoadStatus, detail: String, raised_at: DateTime<Utc> },
    /// The caller's rule refused a load in this status; nothing was written.
    Refused { status: LoadStatus },
}

/// What `release` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The hold is cleared; `detail` is what it said.
    Released { status: LoadStatus, detail: String },
    /// No `held` exception was open; nothing was written.
    NotHeld { status: LoadStatus },
}

/// A void to write: the load, why, and how its history row and any notice read.
#[derive(Clone, Copy)]
pub struct VoidRequest<'a> {
    pub load_number: &'a str,
    pub reason: &'a str,
    /// The history row's cause for the invoice number being voided.
    pub cause: &'a dyn Fn(&str) -> String,
    /// For an invoice a factor holds: the `held` exception's detail and the load's waiting
    /// reason, from the factor's provider id and the invoice number.
    pub factor_notice: &'a dyn Fn(&str, &str) -> (String, String),
}

/// What `void_invoice` did, or why it did nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoidOutcome {
    /// The number is void; the load went `from` → Released.
    Voided { invoice_number: String, from: LoadStatus, factor: Option<String>, batch_id: Option<String> },
    /// The load is in a status that has no invoice to void (Delivered, Released) or whose
    /// invoice the factor bought (Financed, Completed).
    WrongStatus { status: LoadStatus },
    /// A batch that has not been settled holds the invoice: it may be on its way to the factor.
    InBatch { status: LoadStatus, batch_id: String },
}

/// An invoice number voided, as `loads show` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoidRecord {
    pub invoice_number: String,
    pub status: LoadStatus,
    /// The provider id that held the invoice, if a factor did.
    pub factor: Option<String>,
    pub batch_id: Option<String>,
    pub reason: String,
    pub voided_at: DateTime<Utc>,
}

/// One open exception, as `factord exceptions` lists it.
#[derive(Clone, Debug)]
pub struct OpenExceptionRow {
    pub load_number: String,
    pub subsidiary: String,
    pub customer_id: String,
    pub status: LoadStatus,
    /// The provider id of the batch that delivered the invoice, if one did.
    pub factor: Option<String>,
    pub kind: ExceptionKind,
    pub detail: String,
    pub raised_at: DateTime<Utc>,
}

fn parse_status(text: &str) -> Result<LoadStatus, StoreError> {
    LoadStatus::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Touches a load's row by number, locking it until the transaction ends; evaluates to its id
/// and status, or returns [`StoreError::LoadNotFound`].
macro_rules! lock_load {
    ($tx:expr, $load_number:expr, $now:expr) => {{
        let row = sqlx::query("UPDATE loads SET updated_at = $1 WHERE load_number = $2 RETURNING id, status")
            .bind($now)
            .bind($load_number)
            .fetch_optional(&mut *$tx)
            .await?;
        let Some(row) = row else {
            $tx.rollback().await?;
            return Err(StoreError::LoadNotFound($load_number.to_string()));
        };
        let id: i64 = row.try_get("id")?;
        let status: String = row.try_get("status")?;
        (id, parse_status(&status)?)
    }};
}

impl Store {
    /// Holds a load for ops: raises `held` with `detail`, sets the waiting reason and writes a
    /// history row (`from` = `to` = its status) with `cause`, in one transaction. `refuse` says
    /// which statuses cannot be held. A hold already open is kept as it is.
    pub async fn hold_load(
        &self,
        load_number: &str,
        refuse: fn(LoadStatus) -> bool,
        detail: &str,
        waiting_reason: &str,
        cause: &str,
    ) -> Result<HoldOutcome, StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (id, status) = lock_load!(tx, load_number, now);
            if refuse(status) {
                tx.rollback().await?;
                return Ok(HoldOutcome::Refused { status });
            }
            let open = sqlx::query(
                "SELECT detail, raised_at FROM load_exceptions WHERE load_id = $1 AND kind = 'held' AND cleared_at IS NULL",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(open) = open {
                tx.rollback().await?;
                return Ok(HoldOutcome::AlreadyHeld {
                    status,
                    detail: open.try_get("detail")?,
                    raised_at: open.try_get("raised_at")?,
                });
            }
            sqlx::query("INSERT INTO load_exceptions (load_id, kind, detail, raised_at) VALUES ($1, 'held', $2, $3)")
                .bind(id)
                .bind(detail)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE loads SET waiting_reason = $1 WHERE id = $2")
                .bind(waiting_reason)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            insert_history!(tx, id, Some(status.as_str()), status.as_str(), now, cause);
            tx.commit().await?;
            Ok(HoldOutcome::Held { status, raised_at: now })
        })
    }

    /// Clears a load's open money exceptions (`ledger_mismatch`, `charged_back`) and writes a
    /// history row (`from` = `to` = its status) with `cause`, in one transaction. Returns the
    /// load's status and the (kind, detail) of each cleared; none cleared writes nothing.
    pub async fn settle_load(
        &self,
        load_number: &str,
        cause: &str,
    ) -> Result<(LoadStatus, Vec<(ExceptionKind, String)>), StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (id, status) = lock_load!(tx, load_number, now);
            let rows = sqlx::query(
                "UPDATE load_exceptions SET cleared_at = $1 WHERE load_id = $2 \
                 AND kind IN ('ledger_mismatch', 'charged_back') AND cleared_at IS NULL RETURNING kind, detail",
            )
            .bind(now)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                tx.rollback().await?;
                return Ok((status, Vec::new()));
            }
            let mut cleared = Vec::new();
            for row in rows {
                let kind: String = row.try_get("kind")?;
                cleared.push((ExceptionKind::from_str(&kind).map_err(StoreError::Corrupt)?, row.try_get("detail")?));
            }
            cleared.sort_by_key(|(kind, _)| kind.as_str());
            insert_history!(tx, id, Some(status.as_str()), status.as_str(), now, cause);
            tx.commit().await?;
            Ok((status, cleared))
        })
    }

    /// Clears a load's open `held` exception (raised by ops, by a void or by the factor), clears
    /// a waiting reason that was the hold's, and writes a history row (`from` = `to` = its
    /// status) with `cause`, in one transaction. `NotHeld`, writing nothing, if none was open.
    pub async fn release_load(&self, load_number: &str, cause: &str) -> Result<ReleaseOutcome, StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (id, status) = lock_load!(tx, load_number, now);
            let cleared = sqlx::query(
                "UPDATE load_exceptions SET cleared_at = $1 WHERE load_id = $2 AND kind = 'held' AND cleared_at IS NULL \
                 RETURNING detail",
            )
            .bind(now)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(cleared) = cleared else {
                tx.rollback().await?;
                return Ok(ReleaseOutcome::NotHeld { status });
            };
            sqlx::query("UPDATE loads SET waiting_reason = NULL WHERE id = $1 AND waiting_reason LIKE 'held:%'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            insert_history!(tx, id, Some(status.as_str()), status.as_str(), now, cause);
            tx.commit().await?;
            Ok(ReleaseOutcome::Released { status, detail: cleared.try_get("detail")? })
        })
    }

    /// Voids a Queued or Invoiced load's invoice in one transaction: the number goes to
    /// `void_invoices` for good, a batch item the factor accepted becomes `void`, the load goes
    /// back to Released without invoice number, packet or batch (so the next pass issues a new
    /// number), its `rejected` and `unrecognised_status` exceptions (about the void invoice) are
    /// cleared, and the history row written. For an invoice a factor holds (its batch went to
    /// one), a `held` exception tells ops to tell the factor.
    #[expect(
        clippy::too_many_lines,
        reason = "one transaction, written once for both backends inside on_pool!: read, check, then each table's write"
    )]
    pub async fn void_invoice(&self, request: VoidRequest<'_>) -> Result<VoidOutcome, StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (id, status) = lock_load!(tx, request.load_number, now);
            let row = sqlx::query(
                "SELECT l.subsidiary, l.invoice_number, l.batch_id, l.amount_cents, l.invoice_date, b.provider FROM loads l \
                 LEFT JOIN batches b ON b.id = l.batch_id WHERE l.id = $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let invoice: Option<String> = row.try_get("invoice_number")?;
            let (Some(invoice), LoadStatus::Queued | LoadStatus::Invoiced) = (invoice, status) else {
                tx.rollback().await?;
                return Ok(VoidOutcome::WrongStatus { status });
            };
            let pending: Option<String> =
                sqlx::query_scalar("SELECT batch_id FROM batch_items WHERE load_id = $1 AND outcome = 'pending'")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(batch_id) = pending {
                tx.rollback().await?;
                return Ok(VoidOutcome::InBatch { status, batch_id });
            }
            let subsidiary: String = row.try_get("subsidiary")?;
            let batch_id: Option<String> = row.try_get("batch_id")?;
            // Only an invoice a batch delivered is held by a factor; a direct invoice has none.
            let factor: Option<String> =
                if status == LoadStatus::Invoiced { row.try_get("provider")? } else { None };
            sqlx::query(
                "INSERT INTO void_invoices (invoice_number, load_id, subsidiary, status, factor, batch_id, reason, voided_at, \
                 amount_cents, invoice_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&invoice)
            .bind(id)
            .bind(&subsidiary)
            .bind(status.as_str())
            .bind(&factor)
            .bind(&batch_id)
            .bind(request.reason)
            .bind(now)
            .bind(row.try_get::<i64, _>("amount_cents")?)
            .bind(row.try_get::<Option<String>, _>("invoice_date")?)
            .execute(&mut *tx)
            .await?;
            // The figures belonged to the voided invoice: its mismatch goes with it.
            sqlx::query(
                "UPDATE load_exceptions SET cleared_at = $1 WHERE load_id = $2 AND kind = 'ledger_mismatch' \
                 AND cleared_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE batch_items SET outcome = 'void' WHERE load_id = $1 AND outcome = 'accepted'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let notice = factor.as_deref().map(|f| (request.factor_notice)(f, &invoice));
            let moved = sqlx::query(
                "UPDATE loads SET status = 'Released', invoice_number = NULL, invoice_date = NULL, packet_path = NULL, \
                 packet_noa = NULL, batch_id = NULL, submission_reference = NULL, claim_token = NULL, \
                 claimed_until = NULL, waiting_reason = $1, updated_at = $2 WHERE id = $3 AND status = $4",
            )
            .bind(notice.as_ref().map(|(_, waiting)| waiting.as_str()))
            .bind(now)
            .bind(id)
            .bind(status.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved == 0 {
                tx.rollback().await?;
                return Err(StoreError::Conflict {
                    load: request.load_number.to_string(),
                    expected: status,
                    actual: LoadStatus::Released,
                });
            }
            sqlx::query(
                "UPDATE load_exceptions SET cleared_at = $1 WHERE load_id = $2 AND cleared_at IS NULL \
                 AND kind IN ('rejected', 'unrecognised_status')",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if let Some((detail, _)) = &notice {
                // A hold already open (by ops or the factor) keeps its time and gains the notice.
                sqlx::query(
                    "INSERT INTO load_exceptions (load_id, kind, detail, raised_at) VALUES ($1, 'held', $2, $3) \
                     ON CONFLICT (load_id, kind) WHERE cleared_at IS NULL \
                     DO UPDATE SET detail = load_exceptions.detail || '; ' || excluded.detail",
                )
                .bind(id)
                .bind(detail)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            let cause = (request.cause)(&invoice);
            insert_history!(tx, id, Some(status.as_str()), LoadStatus::Released.as_str(), now, &cause);
            tx.commit().await?;
            Ok(VoidOutcome::Voided { invoice_number: invoice, from: status, factor, batch_id })
        })
    }

    /// The invoice numbers voided on one load, oldest first.
    pub async fn void_invoices_of(&self, load_id: i64) -> Result<Vec<VoidRecord>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT invoice_number, status, factor, batch_id, reason, voided_at FROM void_invoices \
                 WHERE load_id = $1 ORDER BY id",
            )
            .bind(load_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let status: String = r.try_get("status")?;
                    Ok(VoidRecord {
                        invoice_number: r.try_get("invoice_number")?,
                        status: parse_status(&status)?,
                        factor: r.try_get("factor")?,
                        batch_id: r.try_get("batch_id")?,
                        reason: r.try_get("reason")?,
                        voided_at: r.try_get("voided_at")?,
                    })
                })
                .collect()
        })
    }

    /// Whether an invoice number was ever voided.
    pub async fn is_void_invoice(&self, invoice_number: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool => {
            let found: Option<i64> = sqlx::query_scalar("SELECT id FROM void_invoices WHERE invoice_number = $1")
                .bind(invoice_number)
                .fetch_optional(pool)
                .await?;
            Ok(found.is_some())
        })
    }

    /// The open `held` exceptions of a subsidiary's loads in `status`, by load id: (load
    /// number, detail, waiting reason).
    pub async fn held_loads(
        &self,
        subsidiary: Option<&str>,
        status: LoadStatus,
    ) -> Result<HashMap<i64, (String, String, Option<String>)>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT l.id, l.load_number, e.detail, l.waiting_reason FROM load_exceptions e JOIN loads l ON l.id = e.load_id \
                 WHERE ($1 IS NULL OR l.subsidiary = $1) AND l.status = $2 AND e.kind = 'held' AND e.cleared_at IS NULL",
            )
            .bind(subsidiary)
            .bind(status.as_str())
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((r.try_get("id")?, (r.try_get("load_number")?, r.try_get("detail")?, r.try_get("waiting_reason")?)))
                })
                .collect()
        })
    }

    /// Every open exception (of one subsidiary, or all) with its load, oldest first; the first
    /// `limit` of them when given (the dashboard's bounded list).
    pub async fn exception_list(
        &self,
        subsidiary: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<OpenExceptionRow>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT l.load_number, l.subsidiary, l.customer_id, l.status, e.kind, e.detail, e.raised_at, \
                 (SELECT b.provider FROM batches b WHERE b.id = l.batch_id) AS factor FROM load_exceptions e JOIN loads l ON l.id = e.load_id \
                 WHERE e.cleared_at IS NULL AND ($1 IS NULL OR l.subsidiary = $1) ORDER BY e.raised_at, e.id LIMIT $2",
            )
            .bind(subsidiary)
            .bind(limit.unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let status: String = r.try_get("status")?;
                    let kind: String = r.try_get("kind")?;
                    Ok(OpenExceptionRow {
                        load_number: r.try_get("load_number")?,
                        subsidiary: r.try_get("subsidiary")?,
                        customer_id: r.try_get("customer_id")?,
                        status: parse_status(&status)?,
                        factor: r.try_get("factor")?,
                        kind: ExceptionKind::from_str(&kind).map_err(StoreError::Corrupt)?,
                        detail: r.try_get("detail")?,
                        raised_at: r.try_get("raised_at")?,
                    })
                })
                .collect()
        })
    }
}

/// What [`Store::adjust_ledger`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdjustOutcome {
    /// The load has no invoice the ledger lists (not Invoiced, Financed or Completed): nothing
    /// was written.
    WrongStatus {
        status: LoadStatus,
    },
    Adjusted {
        status: LoadStatus,
        invoice_number: String,
        check: FiguresCheck,
    },
}

/// The invariant amount = advance + fee + reserve held after an adjustment (docs/money.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FiguresCheck {
    /// No advance, fee or reserve was adjusted, or they are not all known yet.
    NotChecked,
    /// It holds; `cleared` when an open `ledger_mismatch` was cleared by it.
    Holds { cleared: bool },
    /// It does not: `ledger_mismatch` is raised (or its detail updated) with this detail.
    Mismatch(String),
}

impl Store {
    /// Records ops' adjustments of one invoice's figures (`factord loads adjust`, docs/money.md)
    /// dated `date`, with `source` on each event and `cause` in the load's history, in one
    /// transaction. When an advance, fee or reserve is adjusted and the advance and a fee or
    /// reserve are known (reported or entered), the invariant is checked on the sums: it
    /// clears `ledger_mismatch` when it holds and raises it when it does not.
    pub async fn adjust_ledger(
        &self,
        load_number: &str,
        adjustments: &[(Field, Money)],
        date: NaiveDate,
        (source, cause): (&str, &str),
    ) -> Result<AdjustOutcome, StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (id, status) = lock_load!(tx, load_number, now);
            let (invoice, amount): (Option<String>, i64) =
                sqlx::query_as("SELECT invoice_number, amount_cents FROM loads WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            let (Some(invoice_number), LoadStatus::Invoiced | LoadStatus::Financed | LoadStatus::Completed) =
                (invoice, status)
            else {
                tx.rollback().await?;
                return Ok(AdjustOutcome::WrongStatus { status });
            };
            for (field, money) in adjustments {
                sqlx::query(
                    "INSERT INTO ledger_events (load_id, kind, amount_cents, event_date, source, recorded_at, field, \
                     invoice_number) VALUES ($1, 'adjustment', $2, $3, $4, $5, $6, $7)",
                )
                .bind(id)
                .bind(money.cents())
                .bind(date.to_string())
                .bind(source)
                .bind(now)
                .bind(field.as_str())
                .bind(&invoice_number)
                .execute(&mut *tx)
                .await?;
            }
            let figures_adjusted =
                adjustments.iter().any(|(f, _)| matches!(f, Field::Advance | Field::Fee | Field::Reserve));
            let mut check = FiguresCheck::NotChecked;
            if figures_adjusted {
                let (advance, fee, reserve): (Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
                    "SELECT CAST(SUM(advance_cents) AS BIGINT), CAST(SUM(fee_cents) AS BIGINT), \
                     CAST(SUM(reserve_cents) AS BIGINT) FROM purchases WHERE load_id = $1",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                let entered: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT field, CAST(SUM(amount_cents) AS BIGINT) FROM ledger_events WHERE load_id = $1 \
                     AND kind = 'adjustment' AND invoice_number = $2 AND field IN ('advance', 'fee', 'reserve') \
                     GROUP BY field",
                )
                .bind(id)
                .bind(&invoice_number)
                .fetch_all(&mut *tx)
                .await?;
                let of = |name: &str| entered.iter().find(|(f, _)| f == name).map(|(_, c)| *c);
                let entered = KnownFigures { advance: of("advance"), fee: of("fee"), reserve: of("reserve") };
                let invariant = KnownFigures { advance, fee, reserve }.plus(entered).check(amount, source);
                let cleared = ledger_mismatch!(tx, id, &invariant, now);
                check = match invariant {
                    Invariant::Unknown => FiguresCheck::NotChecked,
                    Invariant::Holds => FiguresCheck::Holds { cleared },
                    Invariant::Broken(detail) => FiguresCheck::Mismatch(detail),
                };
            }
            insert_history!(tx, id, Some(status.as_str()), status.as_str(), now, cause);
            tx.commit().await?;
            Ok(AdjustOutcome::Adjusted { status, invoice_number, check })
        })
    }
}
