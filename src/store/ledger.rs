//! The ledger's reads (docs/money.md): the invoices and the view `ledger` (purchases, payments
//! and `ledger_events` as one list with their sources), and the money summary as aggregates.

use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::{BeginSnapshot, Store, StoreError};
use crate::domain::ledger::{Invariant, KnownFigures, Ledger, LedgerEvent, LedgerInvoice, LedgerVoid, MoneySummary};
use crate::domain::{LoadStatus, Money};

const INVOICES_SQL: &str = "SELECT l.id, l.load_number, l.invoice_number, l.subsidiary, l.customer_id, c.name, l.status, \
     l.amount_cents, l.invoice_date, l.batch_id IS NOT NULL FROM loads l JOIN customers c ON c.id = l.customer_id \
     WHERE l.invoice_number IS NOT NULL AND l.status IN ('Invoiced', 'Financed', 'Completed') \
     AND ($1 IS NULL OR l.subsidiary = $1) ORDER BY l.invoice_date, l.invoice_number";

const EVENTS_SQL: &str = "SELECT v.load_id, v.kind, v.event_date, v.amount_cents, v.advance_cents, v.fee_cents, \
     v.reserve_cents, v.source, v.field FROM ledger v JOIN loads l ON l.id = v.load_id \
     WHERE l.invoice_number IS NOT NULL AND ($1 IS NULL OR l.subsidiary = $1) \
     AND (v.invoice_number IS NULL OR v.invoice_number = l.invoice_number) \
     ORDER BY v.load_id, v.event_date, v.source";

type InvoiceRow = (i64, String, String, String, String, String, String, i64, Option<String>, bool);
/// (status, open cents, advance cents, first invoice date) per open status.
type OpenRow = (String, i64, i64, Option<String>);
type EventRow =
    (i64, String, Option<String>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, String, Option<String>);
/// (load number, invoice number, subsidiary, amount cents, invoice date, voided at).
type VoidRow = (String, String, String, i64, String, DateTime<Utc>);

/// Invoices voided after delivery (the factor or the customer held them), with what the
/// journal needs; rows voided before their amount was kept are left out.
const VOIDS_SQL: &str = "SELECT l.load_number, v.invoice_number, v.subsidiary, v.amount_cents, v.invoice_date, \
     v.voided_at FROM void_invoices v JOIN loads l ON l.id = v.load_id \
     WHERE v.status = 'Invoiced' AND v.amount_cents IS NOT NULL AND v.invoice_date IS NOT NULL \
     AND ($1 IS NULL OR v.subsidiary = $1) ORDER BY v.id";

/// A stored date (`YYYY-MM-DD`, possibly followed by a time); `None` when empty or unreadable.
fn date(text: Option<&str>) -> Option<NaiveDate> {
    let text = text?.trim();
    NaiveDate::parse_from_str(text.get(..10).unwrap_or(text), "%Y-%m-%d").ok()
}

impl Store {
    /// Every invoice (Invoiced, Financed, Completed) of the subsidiary (all when `None`), with
    /// the ledger events of each, and the invoices voided after delivery.
    pub async fn ledger(&self, subsidiary: Option<&str>) -> Result<Ledger, StoreError> {
        // One snapshot: a void committed between the reads would list an invoice twice.
        let (invoices, events, voids): (Vec<InvoiceRow>, Vec<EventRow>, Vec<VoidRow>) = on_pool!(self, pool => {
            let mut tx = pool.begin_snapshot().await?;
            let invoices = sqlx::query_as(INVOICES_SQL).bind(subsidiary).fetch_all(&mut *tx).await?;
            let events = sqlx::query_as(EVENTS_SQL).bind(subsidiary).fetch_all(&mut *tx).await?;
            let voids = sqlx::query_as(VOIDS_SQL).bind(subsidiary).fetch_all(&mut *tx).await?;
            tx.commit().await?;
            (invoices, events, voids)
        });
        let invoices = invoices
            .into_iter()
            .map(
                |(
                    load_id,
                    load_number,
                    invoice_number,
                    subsidiary,
                    customer_id,
                    customer_name,
                    status,
                    amount,
                    day,
                    factored,
                )| {
                    Ok(LedgerInvoice {
                        load_id,
                        load_number,
                        invoice_number,
                        subsidiary,
                        customer_id,
                        customer_name,
                        status: LoadStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        amount_cents: amount,
                        invoice_date: date(day.as_deref()),
                        factored,
                    })
                },
            )
            .collect::<Result<Vec<_>, StoreError>>()?;
        let events = events
            .into_iter()
            .map(|(load_id, kind, day, amount_cents, advance_cents, fee_cents, reserve_cents, source, field)| {
                LedgerEvent {
                    load_id,
                    kind,
                    date: date(day.as_deref()),
                    amount_cents,
                    advance_cents,
                    fee_cents,
                    reserve_cents,
                    source,
                    field,
                }
            })
            .collect();
        let voids = voids
            .into_iter()
            .filter_map(|(load_number, invoice_number, subsidiary, amount_cents, day, voided_at)| {
                Some(LedgerVoid {
                    load_number,
                    invoice_number,
                    subsidiary,
                    amount_cents,
                    invoice_date: date(Some(&day))?,
                    voided_on: voided_at.date_naive(),
                })
            })
            .collect();
        Ok(Ledger { invoices, events, voids })
    }

    /// The money summary (docs/money.md) as of `today`, in aggregates: no row is read into
    /// the process.
    pub async fn money_summary(&self, today: NaiveDate) -> Result<MoneySummary, StoreError> {
        let month_start = today.with_day(1).unwrap_or(today).to_string();
        let next_month =
            today.with_day(1).and_then(|d| d.checked_add_months(chrono::Months::new(1))).unwrap_or(today).to_string();
        // Per invoice its open balance (amount − payments, reported and adjusted) and advance;
        // the oldest open invoice is the oldest with something still open.
        let open_sql = "SELECT status, CAST(COALESCE(SUM(open), 0) AS BIGINT), CAST(COALESCE(SUM(advance), 0) AS BIGINT), \
             MIN(CASE WHEN open > 0 THEN invoice_date END) FROM (SELECT l.status AS status, l.invoice_date AS invoice_date, \
             l.amount_cents - COALESCE((SELECT SUM(y.paid_cents) FROM payments y WHERE y.load_id = l.id), 0) \
             - COALESCE((SELECT SUM(e.amount_cents) FROM ledger_events e WHERE e.load_id = l.id \
             AND e.kind = 'adjustment' AND e.field = 'paid' AND e.invoice_number = l.invoice_number), 0) AS open, \
             COALESCE(p.advance_cents, 0) + COALESCE((SELECT SUM(e.amount_cents) FROM ledger_events e \
             WHERE e.load_id = l.id AND e.kind = 'adjustment' AND e.field = 'advance' \
             AND e.invoice_number = l.invoice_number), 0) AS advance \
             FROM loads l LEFT JOIN purchases p ON p.load_id = l.id \
             WHERE l.status IN ('Invoiced', 'Financed') AND l.invoice_number IS NOT NULL) t GROUP BY status";
        // Over the view `ledger`, so that an undated event counts on the day it was recorded,
        // as everywhere else. Reserve held: purchases' reserve, adjusted, less extra fees taken
        // from it and releases.
        let money_sql = "SELECT CAST(COALESCE(SUM(CASE \
             WHEN kind = 'purchase' THEN COALESCE(reserve_cents, 0) \
             WHEN kind = 'adjustment' AND field = 'reserve' THEN amount_cents \
             WHEN kind IN ('fee', 'reserve_released') THEN -amount_cents \
             WHEN kind = 'adjustment' AND field = 'reserve_released' THEN -amount_cents \
             ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN event_date >= $1 AND event_date < $2 THEN CASE \
             WHEN kind = 'purchase' THEN COALESCE(fee_cents, 0) \
             WHEN kind = 'fee' OR (kind = 'adjustment' AND field = 'fee') THEN amount_cents \
             ELSE 0 END ELSE 0 END), 0) AS BIGINT) FROM ledger \
             WHERE invoice_number IS NULL OR invoice_number = (SELECT l.invoice_number FROM loads l WHERE l.id = ledger.load_id)";
        let (open, money): (Vec<OpenRow>, (i64, i64)) = on_pool!(self, pool => {
            let open = sqlx::query_as(open_sql).fetch_all(pool).await?;
            let money = sqlx::query_as(money_sql).bind(&month_start).bind(&next_month).fetch_one(pool).await?;
            (open, money)
        });
        let mut summary = MoneySummary::default();
        let mut oldest: Option<NaiveDate> = None;
        for (status, open_cents, advance_cents, first) in open {
            let status = LoadStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            summary.open_by_status.push((status, Money::from_cents(open_cents)));
            summary.open_receivables = Money::from_cents(summary.open_receivables.cents().saturating_add(open_cents));
            if status == LoadStatus::Financed {
                summary.financed = Money::from_cents(advance_cents);
            }
            if let Some(first) = date(first.as_deref()) {
                oldest = Some(oldest.map_or(first, |o| o.min(first)));
            }
        }
        summary.open_by_status.sort_by_key(|(status, _)| *status);
        summary.reserve_held = Money::from_cents(money.0);
        summary.fees_this_month = Money::from_cents(money.1);
        summary.oldest_open_days = oldest.map(|d| (today - d).num_days().max(0));
        Ok(summary)
    }
}

/// A purchase of a load whose figures ops adjusted before (see `check_adjusted_purchases!`):
/// load id, amount, the purchase's advance, fee, reserve, its file and row, and the adjustments
/// of advance, fee and reserve.
pub(super) type AdjustedPurchase =
    (i64, i64, Option<i64>, Option<i64>, Option<i64>, String, i64, Option<i64>, Option<i64>, Option<i64>);

/// The invariant on the sums, purchase + adjustments, of one [`AdjustedPurchase`].
pub(super) fn adjusted_check(row: &AdjustedPurchase) -> Invariant {
    let &(_, amount, advance, fee, reserve, ref file, line, a_advance, a_fee, a_reserve) = row;
    let reported = KnownFigures { advance, fee, reserve };
    let entered = KnownFigures { advance: a_advance, fee: a_fee, reserve: a_reserve };
    reported.plus(entered).check(
        amount,
        format_args!(
            "purchase report {file} row {line} with ops' adjustments: reverse those the report now covers \
             (`factord loads adjust`)"
        ),
    )
}
