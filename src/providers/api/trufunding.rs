//! TruFunding. It publishes no details at all (docs/design.md §4), so this is **factord's own mapping,
//! to be replaced by the partner's spec**: everything it assumes about the wire is in this
//! file, and the flow (one multipart request per invoice, idempotency key, 409 = duplicate) is
//! [`per_invoice`](super::per_invoice). Authentication is an API key.

use serde_json::json;

use super::ApiTransport;
use super::http;
use super::per_invoice::{self, AuthHeaders, Mapping};
use crate::providers::batch::{Batch, BatchInvoice, ProviderError};

// ---- The mapping (replace with the partner's spec) -------------------------------------------

const SUBMIT_PATH: &[&str] = &["invoices"];
/// Adding documents to an invoice the factor holds (a retried invoice it accepted before):
/// `POST {base_url}/invoices/{reference}/documents` with the packet (factord's reading).
const DOCUMENTS_PATH: &[&str] = &["documents"];

fn invoice(batch: &Batch, invoice: &BatchInvoice) -> Result<serde_json::Value, String> {
    Ok(json!({
        "invoiceNumber": invoice.invoice_number,
        "invoiceDate": invoice.invoice_date,
        "amount": per_invoice::amount(invoice),
        "loadNumber": invoice.load_number,
        "poNumber": invoice.po_number,
        "debtor": {
            "name": invoice.customer_name,
            "mc": invoice.customer_mc,
            "dot": invoice.customer_dot,
        },
        "carrier": {
            "name": batch.seller.name,
            "usdot": batch.seller.usdot,
            "mc": batch.seller.mc,
        },
        "batchReference": batch.id,
    }))
}

fn auth(transport: &ApiTransport<'_>) -> Result<AuthHeaders, ProviderError> {
    Ok(vec![transport.bearer_api_key()?])
}

fn reference(json: &serde_json::Value) -> Option<String> {
    http::field_id(json, &["invoiceId", "id"])
}

// ---- End of the mapping -----------------------------------------------------------------------

pub(super) static MAPPING: Mapping =
    Mapping { submit_path: SUBMIT_PATH, documents_path: DOCUMENTS_PATH, invoice, auth, reference };
