//! Saint Johns Capital Factoring. It publishes no API, so this is **factord's own mapping, to
//! be replaced by the partner's spec**: everything it assumes about the wire is in this file,
//! and the flow (one multipart request per invoice, idempotency key, 409 = duplicate) is
//! [`per_invoice`](super::per_invoice).
//!
//! Saint Johns identifies the carrier by a client id per subsidiary (`client_id`, not secret)
//! plus an API key, and matches the debtor by MC number, which is therefore required.
//!
//! Credit checks, also factord's own placeholder mapping: `GET {base_url}/debtors/credit?mcNumber=`
//! (the DOT number when there is no MC) with the same headers; 200 carries `decision`
//! (`approved`, `declined`, anything else is unknown) and an optional `message`; 404 means
//! Saint Johns does not know the debtor (unknown).

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::json;

use reqwest::header::HeaderMap;

use super::http::{self, Failure, FailureKind};
use super::per_invoice::{self, AuthHeaders, Mapping, required};
use super::{ApiTransport, CreditAnswer, Halt};
use crate::domain::{CreditResult, Customer};
use crate::providers::batch::{Batch, BatchInvoice, ProviderError};

// ---- The mapping (replace with the partner's spec) -------------------------------------------

const SUBMIT_PATH: &[&str] = &["invoices"];
/// Adding documents to an invoice the factor holds (a retried invoice it accepted before):
/// `POST {base_url}/invoices/{reference}/documents` with the packet (factord's reading).
const DOCUMENTS_PATH: &[&str] = &["documents"];
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

const CREDIT_PATH: &[&str] = &["debtors", "credit"];

/// The debtor's number to check by: MC, else DOT.
fn credit_query(customer: &Customer) -> Option<(&'static str, &str)> {
    fn present(value: &Option<String>) -> Option<&str> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    present(&customer.mc).map(|mc| ("mcNumber", mc)).or_else(|| present(&customer.dot).map(|dot| ("dotNumber", dot)))
}

fn credit_answer(json: &serde_json::Value) -> Option<CreditAnswer> {
    let decision = json.get("decision")?.as_str()?.trim().to_string();
    let result = match decision.to_ascii_lowercase().as_str() {
        "approved" => CreditResult::Approved,
        "declined" => CreditResult::Declined,
        _ => CreditResult::Unknown,
    };
    let text = match json.get("message").and_then(|m| http::server_message(m.as_str()?.as_bytes())) {
        Some(message) => format!("{decision}: {message}"),
        None => decision,
    };
    Some(CreditAnswer { result, text })
}

// ---- End of the mapping -----------------------------------------------------------------------

pub(super) async fn check_credit(transport: &ApiTransport<'_>, customer: &Customer) -> Result<CreditAnswer, Halt> {
    let Some((query, number)) = credit_query(customer) else {
        return Err(Halt::Batch(ProviderError::Rejected(format!(
            "customer {} has no MC or DOT number; Saint Johns checks debtors by them",
            customer.id
        ))));
    };
    let mut headers = HeaderMap::new();
    for (name, value) in auth(transport)? {
        headers.insert(name, value);
    }
    let url = transport.url(CREDIT_PATH);
    let reply = transport
        .execute("GET /debtors/credit", &|| {
            transport.client.get(url.clone()).headers(headers.clone()).query(&[(query, number)])
        })
        .await?;
    match reply.status.as_u16() {
        404 | 204 => Ok(CreditAnswer {
            result: CreditResult::Unknown,
            text: format!("debtor unknown to Saint Johns ({query} {number})"),
        }),
        200..=299 => reply.json().as_ref().and_then(credit_answer).ok_or_else(|| {
            Halt::Failed(Failure {
                kind: FailureKind::Busy,
                reason: format!("GET /debtors/credit: HTTP {} without a decision", reply.status),
            })
        }),
        401 | 403 => Err(Halt::Batch(ProviderError::Auth(format!(
            "Saint Johns refused the credentials: {}",
            transport.status_text(&reply)
        )))),
        400..=499 => Err(Halt::Batch(ProviderError::Rejected(transport.status_text(&reply)))),
        _ => Err(Halt::Failed(Failure {
            kind: FailureKind::Busy,
            reason: format!("GET /debtors/credit: unexpected {}", transport.status_text(&reply)),
        })),
    }
}

pub(super) static MAPPING: Mapping =
    Mapping { submit_path: SUBMIT_PATH, documents_path: DOCUMENTS_PATH, invoice, auth, reference };
