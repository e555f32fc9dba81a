//! What an invoice says: plain data filled from the subsidiary's settings and the stored load,
//! rendered by [`super::render`]. Kept apart so rendering never reaches into config or store.

use chrono::NaiveDate;

use crate::domain::Money;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceContent {
    /// The subsidiary: legal name, address and numbers, printed at the top.
    pub seller_name: String,
    pub seller_address: String,
    pub seller_mc: Option<String>,
    pub seller_usdot: Option<String>,
    /// "Bill to": the customer (the factor's debtor).
    pub customer_id: String,
    pub customer_name: String,
    pub customer_mc: Option<String>,
    pub invoice_number: String,
    /// In the subsidiary's time zone.
    pub invoice_date: NaiveDate,
    pub load_number: String,
    pub po_number: Option<String>,
    /// "Dallas, TX", or `None` when the export had no lane.
    pub pickup: Option<String>,
    pub delivery: Option<String>,
    /// As stored: `YYYY-MM-DD` or an RFC 3339 date-time.
    pub delivered: Option<String>,
    pub amount: Money,
    /// The Notice of Assignment, printed in a framed box; `None` for direct invoices.
    pub noa: Option<String>,
}
