//! What a report file changes, as the store writes it (docs/design.md §8): the loads a report reads,
//! and the plan of one file (or one chunk of it) — row outcomes, status moves, history,
//! purchases, payments and exceptions. The rules that make a plan are in `reports::apply`;
//! the store only writes one, so both depend on these types and neither on the other.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;

use super::{ExceptionKind, LoadStatus};

/// A load as a report sees it, read in the ingest's transaction. Its texts are shared: the
/// row outcomes name the load with them, and many loads have the same subsidiary and provider.
#[derive(Clone, Debug)]
pub struct ReportLoad {
    pub id: i64,
    pub load_number: Arc<str>,
    pub invoice_number: Option<Arc<str>>,
    pub subsidiary: Arc<str>,
    pub status: LoadStatus,
    pub amount_cents: i64,
    /// The provider of the batch that submitted it; `None` if it never went to a factor.
    pub provider: Option<Arc<str>>,
    /// Whether a purchase is recorded for it.
    pub purchased: bool,
    pub paid_cents: i64,
    pub payments: HashSet<PaymentKey>,
    pub open_exceptions: HashSet<ExceptionKind>,
}

/// An invoice number a report names that ops voided (`factord loads void`): its rows are
/// rejected saying so, and not matched by their load number (the load may carry a new invoice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoidedInvoice {
    pub invoice_number: String,
    pub load_number: String,
}

/// What a chunk's keys found: its loads, and the voided invoices among the invoice numbers no
/// load has.
#[derive(Clone, Debug, Default)]
pub struct ChunkLoads {
    pub loads: Vec<ReportLoad>,
    pub voided: Vec<VoidedInvoice>,
}

/// What makes a payment the same payment: amount, date and reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PaymentKey {
    pub paid_cents: i64,
    pub payment_date: String,
    pub payment_reference: String,
}

/// A row's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    Skipped,
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Skipped => "skipped",
            Outcome::Rejected => "rejected",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RowOutcome {
    pub row: usize,
    pub invoice_number: Arc<str>,
    pub load_number: Arc<str>,
    pub outcome: Outcome,
    pub reason: Cow<'static, str>,
}

#[derive(Clone, Debug)]
pub struct StatusMove {
    pub load_id: i64,
    pub from: LoadStatus,
    pub to: LoadStatus,
}

#[derive(Clone, Debug)]
pub struct HistoryRow {
    pub load_id: i64,
    pub from: LoadStatus,
    pub to: LoadStatus,
    pub cause: Cause,
}

/// Why a report moved a load: `{prefix}{row}{suffix}`, e.g. `purchase report march.csv row 12`.
/// The prefix and suffix are shared by the file's rows; the text is written out only as the
/// store binds it, a statement's rows at a time.
#[derive(Clone, Debug)]
pub struct Cause {
    /// `{kind} report {file} row `.
    pub prefix: Arc<str>,
    pub row: usize,
    /// Empty, or a note such as ` (a payment implies the purchase)`.
    pub suffix: Arc<str>,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.prefix, self.row, self.suffix)
    }
}

#[derive(Clone, Debug)]
pub struct PurchaseRecord {
    pub load_id: i64,
    pub row: usize,
    pub amount_cents: Option<i64>,
    pub advance_cents: Option<i64>,
    pub fee_cents: Option<i64>,
    pub reserve_cents: Option<i64>,
    /// Shared with the rows before it when equal: a report's rows mostly repeat them.
    pub purchase_date: Option<Arc<str>>,
    pub schedule_number: Option<Arc<str>>,
    pub factor_status: Option<String>,
}

#[derive(Clone, Debug)]
pub struct PaymentRecord {
    pub load_id: i64,
    pub row: usize,
    pub key: PaymentKey,
}

/// A money event of the ledger that purchases and payments do not already hold
/// (docs/money.md), written only for the report rows that carry one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// Reserve paid out to the carrier (rebate).
    ReserveReleased,
    /// The factor sold the invoice back (recourse).
    Chargeback,
    /// A fee deducted after the purchase (from the reserve).
    Fee,
    /// A correction entered by ops.
    Adjustment,
}

impl LedgerKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            LedgerKind::ReserveReleased => "reserve_released",
            LedgerKind::Chargeback => "chargeback",
            LedgerKind::Fee => "fee",
            LedgerKind::Adjustment => "adjustment",
        }
    }
}

/// A ledger event a report row carries: its kind, amount, date and the row it came from.
#[derive(Clone, Debug)]
pub struct LedgerRecord {
    pub load_id: i64,
    pub row: usize,
    pub kind: LedgerKind,
    pub amount_cents: i64,
    /// `YYYY-MM-DD`, or empty: the day it is recorded.
    pub event_date: String,
    /// `purchase report march.csv row 12`.
    pub source: String,
}

/// Everything one file changes, written by the store in one transaction.
#[derive(Clone, Debug, Default)]
pub struct ReportPlan {
    pub outcomes: Vec<RowOutcome>,
    /// One compare-and-set per load: its status when read → its status after the file.
    pub moves: Vec<StatusMove>,
    pub history: Vec<HistoryRow>,
    pub purchases: Vec<PurchaseRecord>,
    pub payments: Vec<PaymentRecord>,
    /// Reserve released, chargebacks and extra fees (rows that carry none add nothing).
    pub ledger: Vec<LedgerRecord>,
    /// Exceptions to raise (or whose detail to update).
    pub raise: Vec<(i64, ExceptionKind, String)>,
    pub clear: Vec<(i64, ExceptionKind)>,
}

impl ReportPlan {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.outcomes.iter().filter(|o| o.outcome == outcome).count()
    }
}
