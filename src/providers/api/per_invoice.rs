//! The flow shared by the factors without a public API (Saint Johns, TAFS, TruFunding), in
//! factord's own shape until a partner spec replaces it: one request per invoice,
//! `POST {base_url}/<path>` as `multipart/form-data` with an `invoice` part (the JSON the
//! provider's [`Mapping`] builds) and a `packet` part (the PDF), carrying
//! `Idempotency-Key: <invoice idempotency key>`.
//!
//! An invoice the factor holds already (accepted, later rejected, then `factord loads retry`)
//! is not submitted again: its rebuilt packet is posted to
//! `<submit_path>/<the factor's reference>/<documents_path>` (factord's reading too).
//!
//! Invoice and packet travel in one request so one key covers both: there is no state where
//! the factor holds an invoice without its documents. The mapping assumes the factor dedupes
//! by that key and answers 409 for an invoice number it already holds; both count as accepted.
//! Reconciliation therefore resends with the same keys.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::multipart::{Form, Part};

use super::http::{self, Reply};
use super::{ApiTransport, Halt, IDEMPOTENCY_KEY, read_packet};
use crate::providers::batch::{Batch, BatchInvoice, BatchReceipt, InvoiceOutcome, ProviderError};

/// Headers that authenticate a request (values marked sensitive).
pub(super) type AuthHeaders = Vec<(HeaderName, HeaderValue)>;

/// What differs between the per-invoice factors: everything about the wire format.
pub(super) struct Mapping {
    /// Path segments of the submission endpoint under `base_url`.
    pub submit_path: &'static [&'static str],
    /// Path segments, after `submit_path` and the factor's reference of an invoice it holds, of
    /// the call that adds documents to that invoice (a retried invoice the factor accepted
    /// before, then rejected): factord's reading, as the rest of the mapping.
    pub documents_path: &'static [&'static str],
    /// The invoice as the factor wants it, or which required field is missing (the invoice is
    /// then rejected without a request).
    pub invoice: fn(&Batch, &BatchInvoice) -> Result<serde_json::Value, String>,
    /// The authentication headers. Secrets are exposed here only, through
    /// [`ApiTransport::secret_header`].
    pub auth: fn(&ApiTransport<'_>) -> Result<AuthHeaders, ProviderError>,
    /// The factor's reference for an accepted (or duplicate) invoice, from the response JSON.
    pub reference: fn(&serde_json::Value) -> Option<String>,
}

pub(super) async fn send(
    transport: &ApiTransport<'_>,
    mapping: &'static Mapping,
    batch: &Batch,
) -> Result<BatchReceipt, ProviderError> {
    transport.each_invoice(batch, |invoice| submit(transport, mapping, batch, invoice)).await
}

async fn submit(
    transport: &ApiTransport<'_>,
    mapping: &Mapping,
    batch: &Batch,
    invoice: &BatchInvoice,
) -> Result<InvoiceOutcome, Halt> {
    let json = match (mapping.invoice)(batch, invoice) {
        Ok(json) => json.to_string(),
        Err(reason) => return Ok(InvoiceOutcome::Rejected { reason }),
    };
    let packet = match read_packet(invoice).await {
        Ok(packet) => packet,
        Err(reason) => return Ok(InvoiceOutcome::Rejected { reason }),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in (mapping.auth)(transport)? {
        headers.insert(name, value);
    }
    if let Some(reference) = &invoice.held_reference {
        return add_documents(transport, mapping, invoice, reference, &headers, packet).await;
    }
    let url = transport.url(mapping.submit_path);
    let label = format!("POST /{}", mapping.submit_path.join("/"));
    let file_name = http::part_file_name(&invoice.invoice_number);
    let reply = transport
        .execute(&label, &|| {
            let invoice_part = Part::text(json.clone()).mime_str("application/json");
            let packet_part = Part::bytes(packet.clone()).file_name(file_name.clone()).mime_str("application/pdf");
            let mut request = transport
                .client
                .post(url.clone())
                .headers(headers.clone())
                .header(IDEMPOTENCY_KEY, invoice.idempotency_key.as_str());
            // `mime_str` only fails on a malformed literal above; then the server says 4xx.
            if let (Ok(invoice_part), Ok(packet_part)) = (invoice_part, packet_part) {
                request = request.multipart(Form::new().part("invoice", invoice_part).part("packet", packet_part));
            }
            request
        })
        .await?;
    outcome(transport, mapping, &reply).map_err(Halt::from)
}

/// An invoice the factor holds already: its rebuilt packet goes to
/// `<submit_path>/<reference>/<documents_path>` (multipart, one `packet` part, the invoice's
/// idempotency key), instead of a second invoice. The factor's reference stays the one it gave.
async fn add_documents(
    transport: &ApiTransport<'_>,
    mapping: &Mapping,
    invoice: &BatchInvoice,
    reference: &str,
    headers: &HeaderMap,
    packet: Vec<u8>,
) -> Result<InvoiceOutcome, Halt> {
    let mut segments: Vec<&str> = mapping.submit_path.to_vec();
    segments.push(reference);
    segments.extend(mapping.documents_path);
    let url = transport.url(&segments);
    let label = format!("POST /{}", segments.join("/"));
    let file_name = http::part_file_name(&invoice.invoice_number);
    tracing::info!(%reference, "the factor holds the invoice; adding its documents to it");
    let reply = transport
        .execute(&label, &|| {
            let mut request = transport
                .client
                .post(url.clone())
                .headers(headers.clone())
                .header(IDEMPOTENCY_KEY, invoice.idempotency_key.as_str());
            // `mime_str` only fails on a malformed literal; then the server says 4xx.
            if let Ok(part) = Part::bytes(packet.clone()).file_name(file_name.clone()).mime_str("application/pdf") {
                request = request.multipart(Form::new().part("packet", part));
            }
            request
        })
        .await?;
    match outcome(transport, mapping, &reply)? {
        InvoiceOutcome::Accepted { reference: answered } => {
            Ok(InvoiceOutcome::Accepted { reference: answered.or_else(|| Some(reference.to_string())) })
        }
        other => Ok(other),
    }
}

fn outcome(transport: &ApiTransport<'_>, mapping: &Mapping, reply: &Reply) -> Result<InvoiceOutcome, ProviderError> {
    let status = reply.status.as_u16();
    match status {
        200..=299 | 409 => {
            let reference = reply.json().as_ref().and_then(mapping.reference);
            Ok(InvoiceOutcome::Accepted { reference })
        }
        401 | 403 => Err(ProviderError::Auth(format!(
            "{} refused the credentials: {}",
            transport.provider.name,
            transport.status_text(reply)
        ))),
        400..=499 => Ok(InvoiceOutcome::Rejected { reason: transport.status_text(reply) }),
        _ => Ok(InvoiceOutcome::Transient { reason: format!("unexpected answer: {}", transport.status_text(reply)) }),
    }
}

/// For `factord providers test`: `GET base_url` with the mapping's credentials. These factors
/// publish no read endpoint, so any answer but 401/403 and 5xx counts as reaching them with
/// credentials they did not refuse.
pub(super) async fn probe(transport: &ApiTransport<'_>, mapping: &Mapping) -> Result<String, Halt> {
    let mut headers = HeaderMap::new();
    for (name, value) in (mapping.auth)(transport)? {
        headers.insert(name, value);
    }
    let url = transport.url(&[]);
    let reply = transport.execute("GET /", &|| transport.client.get(url.clone()).headers(headers.clone())).await?;
    match reply.status.as_u16() {
        401 | 403 => Err(Halt::Batch(ProviderError::Auth(format!(
            "{} refused the credentials: {}",
            transport.provider.name,
            transport.status_text(&reply)
        )))),
        500..=599 => Err(Halt::Batch(ProviderError::Transient(format!(
            "{} answered {}",
            transport.provider.name,
            transport.status_text(&reply)
        )))),
        status => Ok(format!("credentials not refused; GET {} answered HTTP {status}", transport.base.path())),
    }
}

/// Money as the per-invoice mappings send it: a decimal string (`"2450.00"`), never a float.
pub(super) fn amount(invoice: &BatchInvoice) -> String {
    invoice.amount.to_string()
}

/// A required text field, or the rejection reason naming it.
pub(super) fn required<'v>(value: &'v Option<String>, field: &str, provider: &str) -> Result<&'v str, String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{provider} requires `{field}` on every invoice; this load has none"))
}
