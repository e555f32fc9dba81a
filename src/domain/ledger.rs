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
    /// Sent to a factor in a batch (else a direct invoice: the carrier collects it itself).
    pub factored: bool,
}

/// An invoice voided after it was delivered (`factord loads void` on an Invoiced load): the
/// journal books it on its date and reverses it on the day it was voided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerVoid {
    pub load_number: String,
    pub invoice_number: String,
    pub subsidiary: String,
    pub amount_cents: i64,
    pub invoice_date: NaiveDate,
    pub voided_on: NaiveDate,
}

/// Everything the money commands read: the invoices, their events, and the voided invoices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    pub invoices: Vec<LedgerInvoice>,
    pub events: Vec<LedgerEvent>,
    pub voids: Vec<LedgerVoid>,
}

/// One row of the view `ledger`: a purchase (with its advance, fee and reserve), a payment, a
/// reserve released, a chargeback, an extra fee or an adjustment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEvent {
    pub load_id: i64,
    /// `purchase`, `payment`, `reserve_released`, `chargeback`, `fee`, `adjustment`,
    /// `status_purchased`, `status_paid`.
    pub kind: String,
    pub date: Option<NaiveDate>,
    /// The purchase's face amount as the factor reported it, or the event's amount.
    pub amount_cents: Option<i64>,
    pub advance_cents: Option<i64>,
    pub fee_cents: Option<i64>,
    pub reserve_cents: Option<i64>,
    /// `purchase report march.csv row 12`.
    pub source: String,
    /// For an adjustment: the figure it corrects ([`Field`]).
    pub field: Option<String>,
}

/// The figure an adjustment (`factord loads adjust`) corrects, by a signed amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Advance,
    Fee,
    Reserve,
    ReserveReleased,
    Paid,
    Chargeback,
}

impl Field {
    pub const ALL: [Self; 6] =
        [Self::Advance, Self::Fee, Self::Reserve, Self::ReserveReleased, Self::Paid, Self::Chargeback];

    /// The stored name (`ledger_events.field`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Advance => "advance",
            Self::Fee => "fee",
            Self::Reserve => "reserve",
            Self::ReserveReleased => "reserve_released",
            Self::Paid => "paid",
            Self::Chargeback => "chargeback",
        }
    }

    /// Its option of `factord loads adjust`: `--reserve-released`.
    pub fn option(self) -> String {
        format!("--{}", self.as_str().replace('_', "-"))
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str().replace('_', " "))
    }
}

/// A purchase's advance, fee and reserve held as far as they are known (in cents): each `None`
/// when nothing (no report row, no adjustment) gives it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KnownFigures {
    pub advance: Option<i64>,
    pub fee: Option<i64>,
    pub reserve: Option<i64>,
}

/// The invariant amount = advance + fee + reserve held (docs/money.md) on what is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invariant {
    /// No advance, or neither fee nor reserve, is known: nothing to check.
    Unknown,
    Holds,
    /// The `ledger_mismatch` detail, with both figures and `source`.
    Broken(String),
}

impl KnownFigures {
    /// These (as reported) plus `entered` (ops' adjustments): known when either gives it.
    pub fn plus(self, entered: KnownFigures) -> KnownFigures {
        let sum = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        KnownFigures {
            advance: sum(self.advance, entered.advance),
            fee: sum(self.fee, entered.fee),
            reserve: sum(self.reserve, entered.reserve),
        }
    }

    /// Checked when the advance and a fee or a reserve are known (the one not known counts as
    /// zero: a factor without a reserve lists none); `source` ends the detail.
    pub fn check(self, amount: i64, source: impl std::fmt::Display) -> Invariant {
        let Some(advance) = self.advance else { return Invariant::Unknown };
        if self.fee.is_none() && self.reserve.is_none() {
            return Invariant::Unknown;
        }
        let (fee, reserve) = (self.fee.unwrap_or(0), self.reserve.unwrap_or(0));
        let total = advance.saturating_add(fee).saturating_add(reserve);
        if total == amount {
            return Invariant::Holds;
        }
        let people = |cents: i64| Money::from_cents(cents).for_people().to_string();
        Invariant::Broken(format!(
            "amount {} ≠ advance {} + fee {} + reserve held {} = {} (difference {}; {source})",
            people(amount),
            people(advance),
            people(fee),
            people(reserve),
            people(total),
            people(amount.saturating_sub(total)),
        ))
    }
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
    /// What the factor stated without figures (its status words alone, or a purchase row
    /// without an advance): the columns above hold only what was reported or entered.
    pub unreported: Vec<String>,
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
        unreported: Vec::new(),
    };
    let (mut advance_known, mut payments) = (false, 0_usize);
    let mut stated: Vec<&LedgerEvent> = Vec::new();
    for e in events {
        let amount = e.amount_cents.unwrap_or(0);
        match e.kind.as_str() {
            "purchase" => {
                advance_known |= e.advance_cents.is_some();
                f.advance = add(f.advance, e.advance_cents.unwrap_or(0));
                f.fee = add(f.fee, e.fee_cents.unwrap_or(0));
                f.reserve_held = add(f.reserve_held, e.reserve_cents.unwrap_or(0));
            }
            "adjustment" => match e.field.as_deref().and_then(Field::parse) {
                Some(Field::Advance) => {
                    advance_known = true;
                    f.advance = add(f.advance, amount);
                }
                Some(Field::Fee) => f.fee = add(f.fee, amount),
                Some(Field::Reserve) => f.reserve_held = add(f.reserve_held, amount),
                Some(Field::ReserveReleased) => f.reserve_released = add(f.reserve_released, amount),
                Some(Field::Paid) => {
                    payments += 1;
                    f.paid = add(f.paid, amount);
                }
                Some(Field::Chargeback) => f.chargeback = add(f.chargeback, amount),
                None => {}
            },
            "status_purchased" | "status_paid" => stated.push(e),
            "payment" => {
                payments += 1;
                f.paid = add(f.paid, amount);
            }
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
    let said = |kind: &str| {
        stated.iter().find(|e| e.kind == kind).map(|e| match e.date {
            Some(d) => format!(" ({}, {d})", e.source),
            None => format!(" ({})", e.source),
        })
    };
    if matches!(f.status, LoadStatus::Financed | LoadStatus::Completed) && !advance_known {
        let by = said("status_purchased").unwrap_or_default();
        f.unreported.push(format!("purchase figures not reported{by}"));
    }
    if f.status == LoadStatus::Completed
        && payments == 0
        && let Some(by) = said("status_paid")
    {
        f.unreported.push(format!("paid per the factor's status, no amount reported{by}"));
    }
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

/// Ages the open invoices as of `as_of`: invoices dated after it are left out, and only the
/// events dated on or before it count. An invoice without a date counts as dated `as_of`.
/// Whether an invoice is Completed is today's status (a past `as_of` does not reopen it).
pub fn aging(invoices: &[LedgerInvoice], events: &[LedgerEvent], as_of: NaiveDate) -> Aging {
    let mut events = by_load(events);
    for list in events.values_mut() {
        list.retain(|e| e.date.is_none_or(|d| d <= as_of));
    }
    let mut out = Aging { as_of: Some(as_of), ..Aging::default() };
    let mut customers: BTreeMap<String, CustomerAging> = BTreeMap::new();
    for invoice in invoices.iter().filter(|i| i.invoice_date.is_none_or(|d| d <= as_of)) {
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

/// The lines of one event: debits first, each balanced by its credits. A negative amount (a
/// report's `(12.00)`, an adjustment down) goes on the other side as a positive one, so no
/// line carries a negative figure.
fn entry(
    date: NaiveDate,
    (invoice, load): (&str, &str),
    source: &str,
    debits: &[(&'static str, i64)],
    credits: &[(&'static str, i64)],
) -> Vec<JournalLine> {
    let line = |account, debit: i64, credit: i64| JournalLine {
        date,
        account,
        debit: Money::from_cents(debit),
        credit: Money::from_cents(credit),
        invoice: invoice.to_string(),
        load: load.to_string(),
        source: source.to_string(),
    };
    let side = |lines: &[(&'static str, i64)], positive: bool| -> Vec<(&'static str, i64)> {
        lines.iter().filter(|(_, c)| (*c > 0) == positive && *c != 0).map(|&(a, c)| (a, c.saturating_abs())).collect()
    };
    let mut debit_side = side(debits, true);
    debit_side.extend(side(credits, false));
    let mut credit_side = side(credits, true);
    credit_side.extend(side(debits, false));
    let mut lines: Vec<JournalLine> = debit_side.into_iter().map(|(account, cents)| line(account, cents, 0)).collect();
    lines.extend(credit_side.into_iter().map(|(account, cents)| line(account, 0, cents)));
    lines
}

/// An invoice issued (accounts receivable against freight revenue), or its reversal when voided.
fn issued(date: NaiveDate, id: (&str, &str), amount: i64, voided: bool) -> Vec<JournalLine> {
    let (receivable, revenue) = ([(ACCOUNTS_RECEIVABLE, amount)], [(FREIGHT_REVENUE, amount)]);
    if voided {
        entry(date, id, &format!("invoice {} voided", id.0), &revenue, &receivable)
    } else {
        entry(date, id, &format!("invoice {} issued", id.0), &receivable, &revenue)
    }
}

/// The accounts an adjustment of `field` by a positive amount debits and credits
/// (docs/money.md "The journal"); `None` when it moves nothing on the carrier's books.
fn adjustment_accounts(field: Field, carriers: bool) -> Option<(&'static str, &'static str)> {
    match field {
        Field::Advance => Some((CASH, ACCOUNTS_RECEIVABLE)),
        Field::Fee => Some((FACTORING_FEES, ACCOUNTS_RECEIVABLE)),
        Field::Reserve => Some((RESERVE_RECEIVABLE, ACCOUNTS_RECEIVABLE)),
        Field::ReserveReleased => Some((CASH, RESERVE_RECEIVABLE)),
        Field::Chargeback => Some((ACCOUNTS_RECEIVABLE, CASH)),
        // A payment the carrier collected (a direct invoice, or one charged back to it).
        Field::Paid if carriers => Some((CASH, ACCOUNTS_RECEIVABLE)),
        Field::Paid => None,
    }
}

/// The double-entry lines of the events dated within `from..=to` (docs/money.md "Journal"), in
/// date order. Every event's debits equal its credits.
pub fn journal(ledger: &Ledger, from: NaiveDate, to: NaiveDate) -> Vec<JournalLine> {
    let by_id: BTreeMap<i64, &LedgerInvoice> = ledger.invoices.iter().map(|i| (i.load_id, i)).collect();
    let within = |d: NaiveDate| d >= from && d <= to;
    let mut lines = Vec::new();
    for invoice in &ledger.invoices {
        if let Some(date) = invoice.invoice_date.filter(|d| within(*d)) {
            let id = (invoice.invoice_number.as_str(), invoice.load_number.as_str());
            lines.extend(issued(date, id, invoice.amount_cents, false));
        }
    }
    // A voided invoice was issued on its date and is reversed on the day it was voided.
    for void in &ledger.voids {
        let id = (void.invoice_number.as_str(), void.load_number.as_str());
        if within(void.invoice_date) {
            lines.extend(issued(void.invoice_date, id, void.amount_cents, false));
        }
        if within(void.voided_on) {
            lines.extend(issued(void.voided_on, id, void.amount_cents, true));
        }
    }
    // Chargebacks per load, dated: a payment after one (net above zero) is the carrier's to
    // collect.
    let mut chargebacks: BTreeMap<i64, Vec<(Option<NaiveDate>, i64)>> = BTreeMap::new();
    for e in ledger
        .events
        .iter()
        .filter(|e| e.kind == "chargeback" || (e.kind == "adjustment" && e.field.as_deref() == Some("chargeback")))
    {
        chargebacks.entry(e.load_id).or_default().push((e.date, e.amount_cents.unwrap_or(0)));
    }
    let charged_back_by = |load_id: i64, day: NaiveDate| {
        chargebacks.get(&load_id).is_some_and(|list| {
            list.iter().filter(|(d, _)| d.is_none_or(|d| d <= day)).map(|(_, c)| *c).sum::<i64>() > 0
        })
    };
    for e in &ledger.events {
        let (Some(invoice), Some(date)) = (by_id.get(&e.load_id), e.date.filter(|d| within(*d))) else { continue };
        let invoice = (invoice.invoice_number.as_str(), invoice.load_number.as_str());
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
            "adjustment" => {
                let carriers = by_id.get(&e.load_id).is_some_and(|i| !i.factored) || charged_back_by(e.load_id, date);
                match e.field.as_deref().and_then(Field::parse).and_then(|f| adjustment_accounts(f, carriers)) {
                    Some((debit, credit)) => entry(date, invoice, &e.source, &[(debit, amount)], &[(credit, amount)]),
                    None => Vec::new(),
                }
            }
            "fee" => entry(date, invoice, &e.source, &[(FACTORING_FEES, amount)], &[(RESERVE_RECEIVABLE, amount)]),
            "reserve_released" => entry(date, invoice, &e.source, &[(CASH, amount)], &[(RESERVE_RECEIVABLE, amount)]),
            "chargeback" => entry(date, invoice, &e.source, &[(ACCOUNTS_RECEIVABLE, amount)], &[(CASH, amount)]),
            // A customer's payment to the factor of an invoice the factor bought: the receivable
            // was sold at the purchase; the carrier's books do not move (reconcile shows it).
            // A status-sync event carries no amount.
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

    fn invoice(factored: bool) -> LedgerInvoice {
        LedgerInvoice {
            load_id: 1,
            load_number: "L-1".into(),
            invoice_number: "INV-1".into(),
            subsidiary: "acme".into(),
            customer_id: "C1".into(),
            customer_name: "Customer".into(),
            status: LoadStatus::Financed,
            amount_cents: 100_000,
            invoice_date: Some(day("2026-11-01")),
            factored,
        }
    }

    fn event(kind: &str, amount: i64) -> LedgerEvent {
        LedgerEvent {
            load_id: 1,
            kind: kind.into(),
            date: Some(day("2026-11-05")),
            amount_cents: Some(amount),
            advance_cents: (kind == "purchase").then_some(90_000),
            fee_cents: (kind == "purchase").then_some(3_000),
            reserve_cents: (kind == "purchase").then_some(7_000),
            source: format!("{kind} row"),
            field: None,
        }
    }

    fn adjust(field: Field, amount: i64) -> LedgerEvent {
        LedgerEvent { field: Some(field.as_str().into()), ..event("adjustment", amount) }
    }

    fn balance(lines: &[JournalLine]) -> (i64, i64) {
        let sum = |f: fn(&JournalLine) -> i64| lines.iter().map(f).sum::<i64>();
        (sum(|l| l.debit.cents()), sum(|l| l.credit.cents()))
    }

    #[test]
    fn every_journal_event_balances() {
        let events = vec![
            event("purchase", 100_000),
            event("fee", 500),
            event("reserve_released", 6_500),
            event("chargeback", 100),
        ];
        let ledger = Ledger { invoices: vec![invoice(true)], events, voids: Vec::new() };
        let lines = journal(&ledger, day("2026-11-01"), day("2026-11-30"));
        let (debits, credits) = balance(&lines);
        assert_eq!(debits, credits);
        assert_eq!(debits, 100_000 + 100_000 + 500 + 6_500 + 100);
    }

    #[test]
    fn a_negative_amount_goes_on_the_other_side() {
        let ledger = Ledger { invoices: vec![invoice(true)], events: vec![event("fee", -1_200)], voids: Vec::new() };
        let lines = journal(&ledger, day("2026-11-02"), day("2026-11-30"));
        let got: Vec<(&str, i64, i64)> = lines.iter().map(|l| (l.account, l.debit.cents(), l.credit.cents())).collect();
        assert_eq!(got, [(RESERVE_RECEIVABLE, 1_200, 0), (FACTORING_FEES, 0, 1_200)]);
    }

    #[test]
    fn adjustments_add_to_their_column_and_book_their_entry() {
        let events = [
            event("purchase", 100_000),
            adjust(Field::Fee, 2_500),
            adjust(Field::Reserve, -2_500),
            adjust(Field::Paid, 40_000),
            adjust(Field::ReserveReleased, 4_500),
        ];
        let f = figures(&invoice(true), &events.iter().collect::<Vec<_>>());
        assert_eq!(
            (f.advance.cents(), f.fee.cents(), f.reserve_held.cents(), f.reserve_released.cents(), f.paid.cents()),
            (90_000, 5_500, 4_500, 4_500, 40_000)
        );
        assert_eq!(f.open_balance.cents(), 60_000);
        let ledger = Ledger { invoices: vec![invoice(true)], events: events[1..].to_vec(), voids: Vec::new() };
        let lines = journal(&ledger, day("2026-11-02"), day("2026-11-30"));
        let got: Vec<(&str, i64, i64)> = lines.iter().map(|l| (l.account, l.debit.cents(), l.credit.cents())).collect();
        // Fee up from the receivable, reserve down to it, the payment to the factor books
        // nothing, the release is cash.
        assert_eq!(got.len(), 6, "{got:?}");
        assert!(got.contains(&(FACTORING_FEES, 2_500, 0)) && got.contains(&(ACCOUNTS_RECEIVABLE, 2_500, 0)));
        assert!(got.contains(&(RESERVE_RECEIVABLE, 0, 2_500)) && got.contains(&(ACCOUNTS_RECEIVABLE, 0, 2_500)));
        assert!(got.contains(&(CASH, 4_500, 0)) && got.contains(&(RESERVE_RECEIVABLE, 0, 4_500)));
        // On a direct invoice the carrier collects the payment itself.
        let direct =
            Ledger { invoices: vec![invoice(false)], events: vec![adjust(Field::Paid, 40_000)], voids: Vec::new() };
        let lines = journal(&direct, day("2026-11-02"), day("2026-11-30"));
        let got: Vec<(&str, i64, i64)> = lines.iter().map(|l| (l.account, l.debit.cents(), l.credit.cents())).collect();
        assert_eq!(got, [(CASH, 40_000, 0), (ACCOUNTS_RECEIVABLE, 0, 40_000)]);
    }

    #[test]
    fn a_payment_is_the_carriers_only_after_a_chargeback() {
        let mut chargeback = event("chargeback", 100_000);
        chargeback.date = Some(day("2026-11-10"));
        let (mut before, mut after) = (adjust(Field::Paid, 30_000), adjust(Field::Paid, 20_000));
        before.date = Some(day("2026-11-08"));
        after.date = Some(day("2026-11-12"));
        let ledger =
            Ledger { invoices: vec![invoice(true)], events: vec![before, chargeback, after], voids: Vec::new() };
        let lines = journal(&ledger, day("2026-11-01"), day("2026-11-30"));
        let cash: Vec<(NaiveDate, i64)> = lines
            .iter()
            .filter(|l| l.account == CASH && l.debit.cents() > 0)
            .map(|l| (l.date, l.debit.cents()))
            .collect();
        assert_eq!(cash, [(day("2026-11-12"), 20_000)], "the payment before the chargeback was the factor's");
    }

    #[test]
    fn a_voided_invoice_is_booked_and_reversed() {
        let void = LedgerVoid {
            load_number: "L-1".into(),
            invoice_number: "INV-0".into(),
            subsidiary: "acme".into(),
            amount_cents: 70_000,
            invoice_date: day("2026-10-30"),
            voided_on: day("2026-11-03"),
        };
        let ledger = Ledger { invoices: Vec::new(), events: Vec::new(), voids: vec![void] };
        let october = journal(&ledger, day("2026-10-01"), day("2026-10-31"));
        let november = journal(&ledger, day("2026-11-01"), day("2026-11-30"));
        assert_eq!(
            october.iter().map(|l| (l.account, l.debit.cents())).collect::<Vec<_>>(),
            [(ACCOUNTS_RECEIVABLE, 70_000), (FREIGHT_REVENUE, 0)]
        );
        assert_eq!(
            november.iter().map(|l| (l.account, l.debit.cents())).collect::<Vec<_>>(),
            [(FREIGHT_REVENUE, 70_000), (ACCOUNTS_RECEIVABLE, 0)]
        );
        assert_eq!(november[0].source, "invoice INV-0 voided");
    }

    #[test]
    fn aging_as_of_a_past_day_counts_only_what_was_known_then() {
        let mut later = invoice(true);
        later.load_id = 2;
        later.invoice_date = Some(day("2026-11-20"));
        let mut payment = event("payment", 30_000);
        payment.date = Some(day("2026-11-10"));
        let report = aging(&[invoice(true), later], &[payment], day("2026-11-08"));
        assert_eq!(report.invoices.len(), 1, "the invoice dated after as-of is left out");
        assert_eq!(report.totals.total.cents(), 100_000, "the payment after as-of does not count");
    }

    #[test]
    fn a_status_without_figures_is_noted_not_guessed() {
        let mut completed = invoice(true);
        completed.status = LoadStatus::Completed;
        let stated = |kind: &str| LedgerEvent {
            amount_cents: None,
            advance_cents: None,
            fee_cents: None,
            reserve_cents: None,
            source: "status sync otr: `Paid`".into(),
            ..event(kind, 0)
        };
        let events = [stated("status_purchased"), stated("status_paid")];
        let f = figures(&completed, &events.iter().collect::<Vec<_>>());
        assert_eq!((f.paid.cents(), f.open_balance.cents()), (0, 100_000));
        assert_eq!(f.unreported.len(), 2, "{:?}", f.unreported);
        assert!(f.unreported[1].starts_with("paid per the factor's status, no amount reported"));
    }
}
