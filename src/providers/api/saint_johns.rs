//! Saint Johns Capital Factoring. It publishes no API, so this is **factord's own mapping, to
//! be replaced by the partner's spec**: everything it assumes about the wire is in this file,
//! and the flow (one multipart request per invoice, idempotency key, 409 = duplicate) is
//! [`per_invoice`](super::per_invoice).
//!
//! Saint Johns identifies the carrier by a client id per subsidiary (`client_id`, not secret)
//! plus an API key, and matches the debtor by MC number, which is therefore required.

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::json;

use super::ApiTransport;
use super::http;
use super::per_invoice::{self, AuthHeaders, Mapping, required};
use crate::providers::batch::{Batch, BatchInvoice, ProviderError};

// ---- The mapping (replace with the partner's spec) -------------------------------------------

const SUBMIT_PATH: &[&str] = &["invoices"];
/// Header names in lower case (HTTP/1 header names are case-insensitive).
const CLIENT_ID_HEADER: &str = "x-client-id";
const API_KEY_HEADER: &str = "x-api-key";

fn invoice(batch: &Batch, invoice: &BatchInvoice) -> Result<serde_json::Value, String> {
    let customer_mc = required(&invoice.customer_mc, "customer_mc", "Saint Johns")?;
    Ok(json!({
        "invoiceNumber": invoice.invoice_number,
        "invoiceDate": invoice.invoice_date,
        "amount": per_invoice::amount(invoice),
        "loadNumber": invoice.load_number,
        "poNumber": invoice.po_number,
        "scheduleReference": batch.id,
        "debtor": {
            "name": invoice.customer_name,
            "mcNumber": customer_mc,
            "dotNumber": invoice.customer_dot,
        },
        "carrier": {
            "name": batch.seller.name,
            "usdot": batch.seller.usdot,
            "mc": batch.seller.mc,
        },
    }))
}

fn auth(transport: &ApiTransport<'_>) -> Result<AuthHeaders, ProviderError> {
    let client_id = transport.settings.client_id.as_deref().unwrap_or_default().trim();
    let client_id = HeaderValue::from_str(client_id)
        .map_err(|_| ProviderError::Auth("Saint Johns: client_id has characters HTTP forbids".to_string()))?;
    Ok(vec![
        (HeaderName::from_static(CLIENT_ID_HEADER), client_id),
        (
            HeaderName::from_static(API_KEY_HEADER),
            transport.secret_header(API_KEY_HEADER, transport.settings.api_key.as_ref())?,
        ),
    ])
}

fn reference(json: &serde_json::Value) -> Option<String> {
    http::field_id(json, &["invoiceId", "id"])
}

// ---- End of the mapping -----------------------------------------------------------------------

pub(super) static MAPPING: Mapping = Mapping { submit_path: SUBMIT_PATH, invoice, auth, reference };
