//! The money ledger (docs/design.md §11, docs/money.md) as pure functions: from the invoices and
//! their ledger events (purchases, payments, reserve released, chargebacks, extra fees, each
//! with its source) to the figures of `reconcile`, the buckets of `aging` and the double-entry
//! lines of `export journal`. All sums are integer cents.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::{LoadStatus, Money};

/// An invoice as the ledger sees it (a load Invoiced, Financed or Completed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerInvoice {
    pub load_id: i64,
    pub load_number: String,
    pub invoice_number: String,
    pub subsidiary: String,
    pub customer_id: String,
    pub customer_name: String,
    pub status: LoadStatus,
    pub amount_cents: i64,
    pub invoice_date: Option<NaiveDate>,
}

/// One row of the view `ledger`: a purchase (with its advance, fee and reserve), a payment, a
/// reserve released, a chargeback, an extra fee or an adjustment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEvent {
    pub load_id: i64,
    /// `purchase`, `payment`, `reserve_released`, `chargeback`, `fee`, `adjustment`.
    pub kind: String,
    pub date: Option<NaiveDate>,
    /// The purchase's face amount as the factor reported it, or the event's amount.
    pub amount_cents: Option<i64>,
    pub advance_cents: Option<i64>,
    pub fee_cents: Option<i64>,
    pub reserve_cents: Option<i64>,
    /// `purchase report march.csv row 12`.
    pub source: String,
}

/// One invoice's figures in `reconcile` (formulas in docs/money.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvoiceFigures {
    pub advance: Money,
    pub amount: Money,
    pub chargeback: Money,
    pub customer_id: String,
    pub fee: Money,
    pub invoice_date: Option<NaiveDate>,
    pub invoice_number: String,
    pub load_number: String,
    pub open_balance: Money,
    pub paid: Money,
    pub reserve_held: Money,
    pub reserve_released: Money,
    pub status: LoadStatus,
    pub subsidiary: String,
}

/// The column totals of `reconcile`: each the sum of its column.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FigureTotals {
    pub advance: Money,
    pub amount: Money,
    pub chargeback: Money,
    pub fee: Money,
    pub invoices: usize,
    pub open_balance: Money,
    pub paid: Money,
    pub reserve_held: Money,
    pub reserve_released: Money,
}

/// `factord reconcile`: every invoice with its figures, and the totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    pub invoices: Vec<InvoiceFigures>,
    pub totals: FigureTotals,
}

fn add(a: Money, cents: i64) -> Money {
    Money::from_cents(a.cents().saturating_add(cents))
}

/// One invoice's figures from its events.
pub fn figures(invoice: &LedgerInvoice, events: &[&LedgerEvent]) -> InvoiceFigures {
    let mut f = InvoiceFigures {
        advance: Money::ZERO,
        amount: Money::from_cents(invoice.amount_cents),
        chargeback: Money::ZERO,
        customer_id: invoice.customer_id.clone(),
        fee: Money::ZERO,
        invoice_date: invoice.invoice_date,
        invoice_number: invoice.invoice_number.clone(),
        load_number: invoice.load_number.clone(),
        open_balance: Money::ZERO,
        paid: Money::ZERO,
        reserve_held: Money::ZERO,
        reserve_released: Money::ZERO,
        status: invoice.status,
        subsidiary: invoice.subsidiary.clone(),
    };
    for e in events {
        let amount = e.amount_cents.unwrap_or(0);
        match e.kind.as_str() {
            "purchase" => {
                f.advance = add(f.advance, e.advance_cents.unwrap_or(0));
                f.fee = add(f.fee, e.fee_cents.unwrap_or(0));
                f.reserve_held = add(f.reserve_held, e.reserve_cents.unwrap_or(0));
            }
            "payment" => f.paid = add(f.paid, amount),
            "reserve_released" => f.reserve_released = add(f.reserve_released, amount),
            "chargeback" => f.chargeback = add(f.chargeback, amount),
            // An extra fee is taken from the reserve: the sum advance + fee + reserve held stays.
            "fee" => {
                f.fee = add(f.fee, amount);
                f.reserve_held = add(f.reserve_held, -amount);
            }
            _ => {}
        }
    }
    f.open_balance = Money::from_cents(f.amount.cents().saturating_sub(f.paid.cents()));
    f
}

/// The events of each load, in date order.
fn by_load(events: &[LedgerEvent]) -> BTreeMap<i64, Vec<&LedgerEvent>> {
    let mut map: BTreeMap<i64, Vec<&LedgerEvent>> = BTreeMap::new();
    for e in events {
        map.entry(e.load_id).or_default().push(e);
    }
    map
}

/// `reconcile`: the invoices dated within `from..=to` (either bound optional; an invoice without
/// a date is kept only when no bound is given), with their figures and totals.
pub fn reconcile(
    invoices: &[LedgerInvoice],
    events: &[LedgerEvent],
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Reconciliation {
    let events = by_load(events);
    let mut out = Reconciliation::default();
    for invoice in invoices {
        let within = match invoice.invoice_date {
            Some(d) => from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t),
            None => from.is_none() && to.is_none(),
        };
        if !within {
            continue;
        }
        let f = figures(invoice, events.get(&invoice.load_id).map_or(&[][..], Vec::as_slice));
        let t = &mut out.totals;
        t.invoices += 1;
        t.amount = add(t.amount, f.amount.cents());
        t.advance = add(t.advance, f.advance.cents());
        t.fee = add(t.fee, f.fee.cents());
        t.reserve_held = add(t.reserve_held, f.reserve_held.cents());
        t.reserve_released = add(t.reserve_released, f.reserve_released.cents());
        t.paid = add(t.paid, f.paid.cents());
        t.chargeback = add(t.chargeback, f.chargeback.cents());
        t.open_balance = add(t.open_balance, f.open_balance.cents());
        out.invoices.push(f);
    }
    out
}

/// The aging buckets, by days past the invoice date.
pub const BUCKETS: [&str; 4] = ["0-30", "31-60", "61-90", "90+"];

/// The bucket of an invoice `days` past its date (a future date counts as 0).
pub fn bucket(days: i64) -> usize {
    match days {
        ..=30 => 0,
        31..=60 => 1,
        61..=90 => 2,
        _ => 3,
    }
}

/// One open invoice in `aging`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgingLine {
    pub bucket: &'static str,
    pub customer_id: String,
    pub customer_name: String,
    pub days: i64,
    pub invoice_date: Option<NaiveDate>,
    pub invoice_number: String,
    pub load_number: String,
    pub open_balance: Money,
    pub status: LoadStatus,
    pub subsidiary: String,
}

/// The open balance per bucket, and their sum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BucketTotals {
    #[serde(rename = "0-30")]
    pub days_0_30: Money,
    #[serde(rename = "31-60")]
    pub days_31_60: Money,
    #[serde(rename = "61-90")]
    pub days_61_90: Money,
    #[serde(rename = "90+")]
    pub days_over_90: Money,
    pub total: Money,
}

impl BucketTotals {
    fn add(&mut self, index: usize, cents: i64) {
        let slot = match index {
            0 => &mut self.days_0_30,
            1 => &mut self.days_31_60,
            2 => &mut self.days_61_90,
            _ => &mut self.days_over_90,
        };
        *slot = add(*slot, cents);
        self.total = add(self.total, cents);
    }

    /// The buckets in order, then the total.
    pub fn values(&self) -> [Money; 5] {
        [self.days_0_30, self.days_31_60, self.days_61_90, self.days_over_90, self.total]
    }
}

/// One customer's buckets in `aging --by customer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CustomerAging {
    pub buckets: BucketTotals,
    pub customer_id: String,
    pub customer_name: String,
    pub invoices: usize,
}

/// `factord aging`: open invoices (not Completed, open balance above zero) by days past their
/// invoice date as of `as_of`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Aging {
    pub as_of: Option<NaiveDate>,
    pub customers: Vec<CustomerAging>,
    pub invoices: Vec<AgingLine>,
    pub totals: BucketTotals,
}

/// Ages the open invoices as of `as_of`. An invoice without a date counts as dated `as_of`.
pub fn aging(invoices: &[LedgerInvoice], events: &[LedgerEvent], as_of: NaiveDate) -> Aging {
    let events = by_load(events);
    let mut out = Aging { as_of: Some(as_of), ..Aging::default() };
    let mut customers: BTreeMap<String, CustomerAging> = BTreeMap::new();
    for invoice in invoices {
        let f = figures(invoice, events.get(&invoice.load_id).map_or(&[][..], Vec::as_slice));
        if invoice.status == LoadStatus::Completed || !f.open_balance.is_positive() {
            continue;
        }
        let days = invoice.invoice_date.map_or(0, |d| (as_of - d).num_days()).max(0);
        let index = bucket(days);
        out.totals.add(index, f.open_balance.cents());
        let customer = customers.entry(invoice.customer_id.clone()).or_insert_with(|| CustomerAging {
            buckets: BucketTotals::default(),
            customer_id: invoice.customer_id.clone(),
            customer_name: invoice.customer_name.clone(),
            invoices: 0,
        });
        customer.buckets.add(index, f.open_balance.cents());
        customer.invoices += 1;
        out.invoices.push(AgingLine {
            bucket: BUCKETS[index],
            customer_id: invoice.customer_id.clone(),
            customer_name: invoice.customer_name.clone(),
            days,
            invoice_date: invoice.invoice_date,
            invoice_number: invoice.invoice_number.clone(),
            load_number: invoice.load_number.clone(),
            open_balance: f.open_balance,
            status: invoice.status,
            subsidiary: invoice.subsidiary.clone(),
        });
    }
    out.invoices.sort_by(|a, b| b.days.cmp(&a.days).then_with(|| a.invoice_number.cmp(&b.invoice_number)));
    out.customers = customers.into_values().collect();
    out
}

/// The accounts of the journal (docs/money.md).
pub const ACCOUNTS_RECEIVABLE: &str = "accounts receivable";
pub const FREIGHT_REVENUE: &str = "freight revenue";
pub const FACTORING_FEES: &str = "factoring fees";
pub const RESERVE_RECEIVABLE: &str = "reserve receivable";
pub const CASH: &str = "cash";

/// One double-entry line of `export journal`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JournalLine {
    pub date: NaiveDate,
    pub account: &'static str,
    pub debit: Money,
    pub credit: Money,
    pub invoice: String,
    pub load: String,
    pub source: String,
}

/// The lines of one event: debits first, each balanced by its credits.
fn entry(
    date: NaiveDate,
    invoice: &LedgerInvoice,
    source: &str,
    debits: &[(&'static str, i64)],
    credits: &[(&'static str, i64)],
) -> Vec<JournalLine> {
    let line = |account, debit: i64, credit: i64| JournalLine {
        date,
        account,
        debit: Money::from_cents(debit),
        credit: Money::from_cents(credit),
        invoice: invoice.invoice_number.clone(),
        load: invoice.load_number.clone(),
        source: source.to_string(),
    };
    let mut lines: Vec<JournalLine> =
        debits.iter().filter(|(_, c)| *c != 0).map(|&(account, cents)| line(account, cents, 0)).collect();
    lines.extend(credits.iter().filter(|(_, c)| *c != 0).map(|&(account, cents)| line(account, 0, cents)));
    lines
}

/// The double-entry lines of the events dated within `from..=to` (docs/money.md "Journal"), in
/// date order. Every event's debits equal its credits.
pub fn journal(invoices: &[LedgerInvoice], events: &[LedgerEvent], from: NaiveDate, to: NaiveDate) -> Vec<JournalLine> {
    let by_id: BTreeMap<i64, &LedgerInvoice> = invoices.iter().map(|i| (i.load_id, i)).collect();
    let within = |d: NaiveDate| d >= from && d <= to;
    let mut lines = Vec::new();
    for invoice in invoices {
        if let Some(date) = invoice.invoice_date.filter(|d| within(*d)) {
            let source = format!("invoice {} issued", invoice.invoice_number);
            let amount = invoice.amount_cents;
            lines.extend(entry(date, invoice, &source, &[(ACCOUNTS_RECEIVABLE, amount)], &[(FREIGHT_REVENUE, amount)]));
        }
    }
    for e in events {
        let (Some(invoice), Some(date)) = (by_id.get(&e.load_id), e.date.filter(|d| within(*d))) else { continue };
        let amount = e.amount_cents.unwrap_or(0);
        let event = match e.kind.as_str() {
            "purchase" if e.advance_cents.is_some() => {
                let (advance, fee, reserve) =
                    (e.advance_cents.unwrap_or(0), e.fee_cents.unwrap_or(0), e.reserve_cents.unwrap_or(0));
                let sold = advance.saturating_add(fee).saturating_add(reserve);
                entry(
                    date,
                    invoice,
                    &e.source,
                    &[(CASH, advance), (FACTORING_FEES, fee), (RESERVE_RECEIVABLE, reserve)],
                    &[(ACCOUNTS_RECEIVABLE, sold)],
                )
            }
            "fee" => entry(date, invoice, &e.source, &[(FACTORING_FEES, amount)], &[(RESERVE_RECEIVABLE, amount)]),
            "reserve_released" => entry(date, invoice, &e.source, &[(CASH, amount)], &[(RESERVE_RECEIVABLE, amount)]),
            "chargeback" => entry(date, invoice, &e.source, &[(ACCOUNTS_RECEIVABLE, amount)], &[(CASH, amount)]),
            // A customer's payment to the factor of an invoice the factor bought: the receivable
            // was sold at the purchase; the carrier's books do not move (reconcile shows it).
            _ => Vec::new(),
        };
        lines.extend(event);
    }
    lines.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.invoice.cmp(&b.invoice)));
    lines
}

/// The money at a glance (metrics and the dashboard): open receivables, what the factors
/// advanced on invoices not yet paid, the reserve they hold, this month's fees and the oldest
/// open invoice. Formulas in docs/money.md.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MoneySummary {
    /// Open balance (amount − paid) of Invoiced and Financed invoices, per status.
    pub open_by_status: Vec<(LoadStatus, Money)>,
    /// The sum of `open_by_status`.
    pub open_receivables: Money,
    /// Advances on Financed invoices.
    pub financed: Money,
    /// Reserve held less reserve released, over every purchased invoice.
    pub reserve_held: Money,
    /// Fees (at purchase and extra) dated in the month of the day asked for.
    pub fees_this_month: Money,
    /// Days since the invoice date of the oldest Invoiced or Financed invoice.
    pub oldest_open_days: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    #[test]
    fn buckets_have_their_documented_edges() {
        assert_eq!([0, 30, 31, 60, 61, 90, 91, 400].map(bucket), [0, 0, 1, 1, 2, 2, 3, 3]);
    }

    #[test]
    fn every_journal_event_balances() {
        let invoice = LedgerInvoice {
            load_id: 1,
            load_number: "L-1".into(),
            invoice_number: "INV-1".into(),
            subsidiary: "acme".into(),
            customer_id: "C1".into(),
            customer_name: "Customer".into(),
            status: LoadStatus::Financed,
            amount_cents: 100_000,
            invoice_date: Some(day("2026-11-01")),
        };
        let event = |kind: &str, amount: i64| LedgerEvent {
            load_id: 1,
            kind: kind.into(),
            date: Some(day("2026-11-05")),
            amount_cents: Some(amount),
            advance_cents: (kind == "purchase").then_some(90_000),
            fee_cents: (kind == "purchase").then_some(3_000),
            reserve_cents: (kind == "purchase").then_some(7_000),
            source: format!("{kind} row"),
        };
        let events =
            [event("purchase", 100_000), event("fee", 500), event("reserve_released", 6_500), event("chargeback", 100)];
        let lines = journal(&[invoice], &events, day("2026-11-01"), day("2026-11-30"));
        let sum = |f: fn(&JournalLine) -> i64| lines.iter().map(f).sum::<i64>();
        assert_eq!(sum(|l| l.debit.cents()), sum(|l| l.credit.cents()));
        assert_eq!(sum(|l| l.debit.cents()), 100_000 + 100_000 + 500 + 6_500 + 100);
    }
}
