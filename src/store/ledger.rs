//! The ledger's reads (docs/money.md): the invoices and the view `ledger` (purchases, payments
//! and `ledger_events` as one list with their sources), and the money summary as aggregates.

use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

use super::{Store, StoreError};
use crate::domain::ledger::{LedgerEvent, LedgerInvoice, MoneySummary};
use crate::domain::{LoadStatus, Money};

const INVOICES_SQL: &str = "SELECT l.id, l.load_number, l.invoice_number, l.subsidiary, l.customer_id, c.name, l.status, \
     l.amount_cents, l.invoice_date FROM loads l JOIN customers c ON c.id = l.customer_id \
     WHERE l.invoice_number IS NOT NULL AND l.status IN ('Invoiced', 'Financed', 'Completed') \
     AND ($1 IS NULL OR l.subsidiary = $1) ORDER BY l.invoice_date, l.invoice_number";

const EVENTS_SQL: &str = "SELECT v.load_id, v.kind, v.event_date, v.amount_cents, v.advance_cents, v.fee_cents, \
     v.reserve_cents, v.source FROM ledger v JOIN loads l ON l.id = v.load_id \
     WHERE l.invoice_number IS NOT NULL AND ($1 IS NULL OR l.subsidiary = $1) \
     ORDER BY v.load_id, v.event_date, v.source";

type InvoiceRow = (i64, String, String, String, String, String, String, i64, Option<String>);
/// (status, open cents, advance cents, first invoice date) per open status.
type OpenRow = (String, i64, i64, Option<String>);
type EventRow = (i64, String, Option<String>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, String);

/// A stored date (`YYYY-MM-DD`, possibly followed by a time); `None` when empty or unreadable.
fn date(text: Option<&str>) -> Option<NaiveDate> {
    let text = text?.trim();
    NaiveDate::parse_from_str(text.get(..10).unwrap_or(text), "%Y-%m-%d").ok()
}

impl Store {
    /// Every invoice (Invoiced, Financed, Completed) of the subsidiary (all when `None`), with
    /// the ledger events of each.
    pub async fn ledger(&self, subsidiary: Option<&str>) -> Result<(Vec<LedgerInvoice>, Vec<LedgerEvent>), StoreError> {
        let (invoices, events): (Vec<InvoiceRow>, Vec<EventRow>) = on_pool!(self, pool => {
            let invoices = sqlx::query_as(INVOICES_SQL).bind(subsidiary).fetch_all(pool).await?;
            let events = sqlx::query_as(EVENTS_SQL).bind(subsidiary).fetch_all(pool).await?;
            (invoices, events)
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
                    })
                },
            )
            .collect::<Result<Vec<_>, StoreError>>()?;
        let events = events
            .into_iter()
            .map(|(load_id, kind, day, amount_cents, advance_cents, fee_cents, reserve_cents, source)| LedgerEvent {
                load_id,
                kind,
                date: date(day.as_deref()),
                amount_cents,
                advance_cents,
                fee_cents,
                reserve_cents,
                source,
            })
            .collect();
        Ok((invoices, events))
    }

    /// The money summary (docs/money.md) as of `today`, in aggregates: no row is read into
    /// the process.
    pub async fn money_summary(&self, today: NaiveDate) -> Result<MoneySummary, StoreError> {
        let month_start = today.with_day(1).unwrap_or(today).to_string();
        let next_month =
            today.with_day(1).and_then(|d| d.checked_add_months(chrono::Months::new(1))).unwrap_or(today).to_string();
        let open_sql = "SELECT l.status, \
             CAST(COALESCE(SUM(l.amount_cents - COALESCE((SELECT SUM(y.paid_cents) FROM payments y \
             WHERE y.load_id = l.id), 0)), 0) AS BIGINT), \
             CAST(COALESCE(SUM(COALESCE(p.advance_cents, 0)), 0) AS BIGINT), MIN(l.invoice_date) \
             FROM loads l LEFT JOIN purchases p ON p.load_id = l.id \
             WHERE l.status IN ('Invoiced', 'Financed') AND l.invoice_number IS NOT NULL GROUP BY l.status";
        let purchases_sql = "SELECT CAST(COALESCE(SUM(reserve_cents), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN purchase_date >= $1 AND purchase_date < $2 THEN fee_cents ELSE 0 END), 0) \
             AS BIGINT) FROM purchases";
        let events_sql = "SELECT \
             CAST(COALESCE(SUM(CASE WHEN kind IN ('fee', 'reserve_released') THEN amount_cents ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN kind = 'fee' AND event_date >= $1 AND event_date < $2 THEN amount_cents \
             ELSE 0 END), 0) AS BIGINT) FROM ledger_events";
        let (open, purchases, events): (Vec<OpenRow>, (i64, i64), (i64, i64)) = on_pool!(self, pool => {
            let open = sqlx::query_as(open_sql).fetch_all(pool).await?;
            let purchases =
                sqlx::query_as(purchases_sql).bind(&month_start).bind(&next_month).fetch_one(pool).await?;
            let events = sqlx::query_as(events_sql).bind(&month_start).bind(&next_month).fetch_one(pool).await?;
            (open, purchases, events)
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
        summary.reserve_held = Money::from_cents(purchases.0.saturating_sub(events.0));
        summary.fees_this_month = Money::from_cents(purchases.1.saturating_add(events.1));
        summary.oldest_open_days = oldest.map(|d| (today - d).num_days().max(0));
        Ok(summary)
    }
}
