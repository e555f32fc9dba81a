//! What an invoice says: plain data filled from the subsidiary's settings and the stored load,
//! rendered by [`super::render`]. Kept apart so rendering never reaches into config or store.

use chrono::NaiveDate;

use crate::domain::{LoadLine, Money};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceContent {
    /// The subsidiary: legal name, address and numbers, printed at the top.
    pub seller_name: String,
    pub seller_address: String,
    pub seller_mc: Option<String>,
    pub seller_usdot: Option<String>,
    /// The customer (the factor's debtor).
    pub customer_id: String,
    pub customer_name: String,
    pub customer_mc: Option<String>,
    /// "Bill to" when the load names it; else the customer's name, without an address.
    pub bill_to_name: Option<String>,
    pub bill_to_address: Option<String>,
    pub invoice_number: String,
    /// In the subsidiary's time zone.
    pub invoice_date: NaiveDate,
    /// Payment terms: the due date is the invoice date plus these days.
    pub terms_days: u32,
    pub load_number: String,
    pub po_number: Option<String>,
    pub bol_number: Option<String>,
    /// "Dallas, TX", or `None` when the export had no lane.
    pub pickup: Option<String>,
    pub delivery: Option<String>,
    /// As stored: `YYYY-MM-DD` or an RFC 3339 date-time.
    pub picked_up: Option<String>,
    pub delivered: Option<String>,
    pub shipper: Option<String>,
    pub consignee: Option<String>,
    /// The line items; empty prints one line "Freight charges" of `amount`.
    pub lines: Vec<LoadLine>,
    /// The total (the lines' sum when there are lines).
    pub amount: Money,
    /// Where payment goes for a factored invoice; `None` for a direct one (the seller).
    pub remit_to_factor: Option<FactorRemit>,
    /// The Notice of Assignment, printed once in a framed box; `None` for direct invoices.
    pub noa: Option<String>,
}

/// The remit-to block of a factored invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactorRemit {
    /// The factor's name (the provider's, from the catalogue).
    pub name: String,
    /// The factor's payment address (`[subsidiary.factoring] remit_to`), when configured.
    pub address: Option<String>,
}

impl InvoiceContent {
    /// The invoice date plus the terms.
    pub fn due_date(&self) -> NaiveDate {
        self.invoice_date.checked_add_days(chrono::Days::new(u64::from(self.terms_days))).unwrap_or(self.invoice_date)
    }

    /// The lines as printed: the load's, or one "Freight charges" line of the amount.
    pub fn printed_lines(&self) -> Vec<LoadLine> {
        if self.lines.is_empty() {
            vec![LoadLine { description: "Freight charges".to_string(), amount: self.amount }]
        } else {
            self.lines.clone()
        }
    }
}
