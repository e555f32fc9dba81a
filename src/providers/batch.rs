//! What a transport sends and what it answers: a batch (the factor's "schedule of accounts")
//! of one subsidiary's invoices, and each invoice's outcome. Plain data: transports never see
//! the store or the config files.

use std::path::PathBuf;

use crate::domain::Money;
pub use crate::domain::{InvoiceOutcome, ProviderError, idempotency_key};

/// One invoice in a batch, as sent to the factor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchInvoice {
    pub invoice_number: String,
    pub load_number: String,
    /// Stable across retries of this invoice in this batch: `<batch id>:<batch uid>:<invoice
    /// number>` (`<batch id>:<invoice number>` for a batch written before batches had uids). API
    /// providers send it as the idempotency key so a resend is recognised.
    pub idempotency_key: String,
    pub amount: Money,
    /// `YYYY-MM-DD`.
    pub invoice_date: String,
    pub customer_id: String,
    pub customer_name: String,
    pub customer_mc: Option<String>,
    pub customer_dot: Option<String>,
    /// The factor's own id for the customer (TAFS), when known.
    pub customer_factoring_id: Option<String>,
    pub po_number: Option<String>,
    /// The provider's reference number from the TMS (Wex FleetOne FTP).
    pub reference_number: Option<String>,
    pub truck: Option<String>,
    /// "Dallas, TX": pickup city and state joined, for the factors that print a place.
    pub pickup: Option<String>,
    pub delivery: Option<String>,
    /// The lane as the load export gave it, field by field (OTR takes each on its own).
    pub pickup_city: Option<String>,
    pub pickup_state: Option<String>,
    pub delivery_city: Option<String>,
    pub delivery_state: Option<String>,
    pub delivered_at: Option<String>,
    /// The merged packet (invoice + rate confirmation + POD).
    pub packet: PathBuf,
    /// The POD and the rate confirmation as the load names them, resolved under the documents
    /// folder: for the factors that take each document on its own (OTR). `None` when the load
    /// names none; the file may since have gone, which the transport checks.
    pub pod: Option<PathBuf>,
    pub rate_confirmation: Option<PathBuf>,
    /// The load's other documents given with `factord loads docs` (bill of lading, lumper
    /// receipt, others), resolved under the documents folder, in packet order: for the factors
    /// that take each document on its own (OTR). They are in the packet too.
    pub extra_documents: Vec<PathBuf>,
    /// The factor's own id of this invoice when it already holds it: an invoice it accepted and
    /// later rejected, sent again after `factord loads retry`. A factor whose API can add
    /// documents to an invoice it holds (OTR) gets them there instead of a second invoice.
    pub held_reference: Option<String>,
}

/// The subsidiary a batch belongs to, as the factor knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchSeller {
    pub id: String,
    pub name: String,
    pub usdot: Option<String>,
    pub mc: Option<String>,
}

/// A batch to send. Its id is safe in file names (`[A-Za-z0-9_-]`) and deterministic remote
/// names derive from it and its uid, so a resend after a crash lands on the same names, and a
/// batch of another installation (or of the same one before a reset) never does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub id: String,
    /// A short per-subsidiary number (1, 2, …) for file names factors expect.
    pub number: i64,
    /// `YYYY-MM-DD` in the subsidiary's time zone.
    pub date: String,
    /// The batch's unique id (16 hex digits), unique across database resets and installations
    /// where ids and numbers start again: file names carry it and the outbox manifest names it.
    /// `None` for a batch written before batches had uids.
    pub uid: Option<String>,
    pub seller: BatchSeller,
    pub provider: &'static super::Provider,
    pub invoices: Vec<BatchInvoice>,
}

impl Batch {
    /// The batch's name on the factor's side, for factors that look a batch up by a reference
    /// of ours (Apex's `externalId` and idempotency key): `<batch id>-<uid>`, e.g.
    /// `acme-east-7-3f9a0c2e11223344`, unique across database resets where batch ids start
    /// again. A batch written before batches had uids keeps its batch id.
    pub fn external_id(&self) -> String {
        match &self.uid {
            Some(uid) => format!("{}-{uid}", self.id),
            None => self.id.clone(),
        }
    }

    pub fn total(&self) -> Money {
        self.invoices.iter().fold(Money::ZERO, |sum, i| sum.checked_add(i.amount).unwrap_or(sum))
    }
}

/// The answer to a whole batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchReceipt {
    /// The factor's reference for the batch: remote file name, schedule number.
    pub reference: Option<String>,
    /// One outcome per invoice number of the batch.
    pub outcomes: Vec<(String, InvoiceOutcome)>,
}

impl BatchReceipt {
    /// Every invoice of `batch` with the same outcome (file transports take a batch whole).
    pub fn all(batch: &Batch, reference: Option<String>, outcome: InvoiceOutcome) -> BatchReceipt {
        BatchReceipt {
            reference,
            outcomes: batch.invoices.iter().map(|i| (i.invoice_number.clone(), outcome.clone())).collect(),
        }
    }
}
