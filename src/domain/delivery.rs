//! What a factor answered to a batch, in the terms the rest of factord decides by: each
//! invoice's outcome, the batch-wide error, and the key a resend is recognised by. The
//! transports ([`crate::providers`]) produce them; the store records them.

/// The idempotency key of an invoice in a batch: `<batch id>:<batch uid>:<invoice number>`, e.g.
/// `acme-east-7:3f9a0c2e11223344:AE-1`. Stored with the batch item when the batch is written
/// ahead (a batch being reconciled keeps the key it was written with), and sent by API
/// transports. Batch ids and invoice numbers start again after a database reset; the uid keeps a
/// new batch's keys apart from an earlier batch's, which a factor would take as a resend.
pub fn idempotency_key(batch_id: &str, uid: &str, invoice_number: &str) -> String {
    format!("{batch_id}:{uid}:{invoice_number}")
}

/// What the factor said about one invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvoiceOutcome {
    /// Taken; `reference` is the factor's id for it (invoice id, file name), if any.
    Accepted { reference: Option<String> },
    /// Refused for good (e.g. broker not approved); not retried by itself.
    Rejected { reason: String },
    /// Not taken this time (e.g. a timeout); retried at a later fire.
    Transient { reason: String },
}

/// Why a transport could not deliver a batch at all, shaped by what the caller does next.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Connection refused, timeout, 429, 5xx: try again later with the same batch id.
    #[error("transient: {0}")]
    Transient(String),
    /// The factor refused the batch as a whole (4xx other than auth): ops must look.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Credentials refused: nothing will work until config changes.
    #[error("authentication failed: {0}")]
    Auth(String),
}
