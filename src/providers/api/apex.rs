//! Apex Capital: one schedule per batch. docs/design.md §4 knows that Apex matches the customer by
//! MC/DOT and assigns a **schedule number** after submission, which factord looks up and
//! stores as the batch's reference. Apex publishes no API reference, so the wire format here
//! is **factord's own mapping, to be replaced by the partner's spec**; it is all in the mapping
//! section below.
//!
//! The flow: `POST schedules` with every invoice of the batch (`Authorization: Bearer
//! <api key>`, and the batch's external id [`Batch::external_id`], `<batch id>-<uid>`, as both
//! `Idempotency-Key` and `externalId`) → the schedule
//! id and per-invoice results where given; the packets uploaded per invoice; then `GET
//! schedules/{id}` until the schedule number is assigned (bounded). Reconciliation finds the
//! schedule by `externalId`; only when Apex has none is the schedule resent, with the same
//! idempotency key (the mapping assumes Apex dedupes by it, answering 409 or the same schedule).

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde_json::json;
use tracing::Instrument;

use super::http::{self, Reply};
use super::{ApiTransport, IDEMPOTENCY_KEY, read_packet};
use crate::providers::batch::{Batch, BatchInvoice, BatchReceipt, InvoiceOutcome, ProviderError};

// ---- The mapping (replace with the partner's spec) -------------------------------------------

const SCHEDULES: &str = "schedules";
const INVOICES: &str = "invoices";
const DOCUMENTS: &str = "documents";
const EXTERNAL_ID_QUERY: &str = "externalId";

/// Waits before each look for the schedule number (about 8 s in all): Apex assigns it shortly
/// after the schedule is created. If it is still missing, the batch keeps the schedule id.
const NUMBER_POLLS: [Duration; 6] = [
    Duration::ZERO,
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

fn schedule_request(batch: &Batch, invoices: &[&BatchInvoice]) -> serde_json::Value {
    json!({
        "externalId": batch.external_id(),
        "scheduleDate": batch.date,
        "client": {
            "name": batch.seller.name,
            "usdot": batch.seller.usdot,
            "mc": batch.seller.mc,
        },
        "invoices": invoices.iter().map(|i| json!({
            "invoiceNumber": i.invoice_number,
            "invoiceDate": i.invoice_date,
            "amount": i.amount.to_string(),
            "loadNumber": i.load_number,
            "poNumber": i.po_number,
            "debtor": {
                "name": i.customer_name,
                "mc": i.customer_mc,
                "dot": i.customer_dot,
            },
        })).collect::<Vec<_>>(),
    })
}

/// Apex matches the customer by MC or DOT: an invoice with neither cannot be placed.
fn check_invoice(invoice: &BatchInvoice) -> Result<(), String> {
    let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    if present(&invoice.customer_mc) || present(&invoice.customer_dot) {
        Ok(())
    } else {
        Err(format!("Apex matches the customer by MC or DOT; customer {} has neither", invoice.customer_id))
    }
}

fn schedule_id(json: &serde_json::Value) -> Option<String> {
    http::field_id(json, &["id", "scheduleId"])
}

fn schedule_number(json: &serde_json::Value) -> Option<String> {
    http::field_id(json, &["scheduleNumber"])
}

/// What a schedule (creation answer or record) says about one invoice.
struct InvoiceResult {
    rejected: Option<String>,
    id: Option<String>,
    /// Whether Apex shows documents on it; `None` when it does not say.
    has_documents: Option<bool>,
}

fn invoice_result(json: &serde_json::Value, invoice_number: &str) -> Option<InvoiceResult> {
    let entry = json
        .get("invoices")?
        .as_array()?
        .iter()
        .find(|e| e.get("invoiceNumber").and_then(|n| n.as_str()) == Some(invoice_number))?;
    let status = entry.get("status").and_then(|s| s.as_str()).unwrap_or_default().to_ascii_lowercase();
    let rejected = matches!(status.as_str(), "rejected" | "declined" | "error")
        .then(|| http::server_message(entry.to_string().as_bytes()).unwrap_or_else(|| "rejected by Apex".to_string()));
    let has_documents = entry
        .get("documents")
        .and_then(|d| d.as_array().map(|a| !a.is_empty()))
        .or_else(|| entry.get("documentCount").and_then(|c| c.as_u64()).map(|c| c > 0));
    Some(InvoiceResult { rejected, id: http::field_id(entry, &["id", "invoiceId"]), has_documents })
}

/// The schedule created under `external_id` in a search answer (an array, or an object wrapping
/// one under `schedules`, `items` or `data`).
fn search_hit<'j>(json: &'j serde_json::Value, external_id: &str) -> Option<&'j serde_json::Value> {
    let records = match json {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(map) => match ["schedules", "items", "data"].iter().find_map(|k| map.get(*k)) {
            Some(serde_json::Value::Array(items)) => items,
            _ => return Some(json).filter(|j| j.get("externalId").and_then(|e| e.as_str()) == Some(external_id)),
        },
        _ => return None,
    };
    records.iter().find(|r| r.get("externalId").and_then(|e| e.as_str()) == Some(external_id))
}

// ---- End of the mapping -----------------------------------------------------------------------

pub(super) async fn send(transport: &ApiTransport<'_>, batch: &Batch) -> Result<BatchReceipt, ProviderError> {
    let mut refused = Vec::new();
    let mut submitted = Vec::new();
    for invoice in &batch.invoices {
        let readable = tokio::fs::metadata(&invoice.packet).await.map(|m| m.is_file());
        let check = match readable {
            Ok(true) => check_invoice(invoice),
            Ok(false) => Err(format!("packet {} is not a file", invoice.packet.display())),
            Err(e) => Err(format!("packet {} unreadable: {e}", invoice.packet.display())),
        };
        match check {
            Ok(()) => submitted.push(invoice),
            Err(reason) => refused.push((invoice.invoice_number.clone(), reason)),
        }
    }
    if submitted.is_empty() {
        let outcomes =
            refused.into_iter().map(|(number, reason)| (number, InvoiceOutcome::Rejected { reason })).collect();
        return Ok(BatchReceipt { reference: None, outcomes });
    }

    let url = transport.url(&[SCHEDULES]);
    let external_id = batch.external_id();
    let body = schedule_request(batch, &submitted);
    let auth = transport.bearer_api_key()?;
    let reply = transport
        .execute("POST /schedules", &|| {
            transport
                .client
                .post(url.clone())
                .header(auth.0.clone(), auth.1.clone())
                .header(IDEMPOTENCY_KEY, external_id.as_str())
                .json(&body)
        })
        .await
        .map_err(|f| ProviderError::Transient(format!("Apex did not answer: {}", f.reason)))?;
    check_auth(transport, &reply)?;
    let created = reply.json();
    let id = match reply.status.as_u16() {
        200..=299 | 409 => match created.as_ref().and_then(schedule_id) {
            Some(id) => id,
            None => match find_schedule(transport, batch).await? {
                Some(found) => found,
                None => {
                    return Err(ProviderError::Rejected(format!(
                        "Apex answered {} but gave no schedule id, and none is found for batch {}",
                        reply.status, batch.id
                    )));
                }
            },
        },
        400..=499 => return refused_schedule(transport, batch, &reply, &refused),
        _ => return Err(ProviderError::Transient(format!("Apex: unexpected {}", transport.status_text(&reply)))),
    };
    tracing::info!(schedule = %id, "Apex schedule created");
    complete(transport, batch, &id, created.as_ref(), &refused).await
}

/// Finds the schedule made for this batch; resends (same idempotency key) only if there is
/// none.
pub(super) async fn reconcile(transport: &ApiTransport<'_>, batch: &Batch) -> Result<BatchReceipt, ProviderError> {
    match find_schedule(transport, batch).await? {
        Some(id) => {
            tracing::info!(schedule = %id, "Apex already holds the schedule");
            complete(transport, batch, &id, None, &[]).await
        }
        None => send(transport, batch).await,
    }
}

/// After the schedule exists: its number, each invoice's outcome, the packets Apex lacks.
async fn complete(
    transport: &ApiTransport<'_>,
    batch: &Batch,
    id: &str,
    created: Option<&serde_json::Value>,
    refused: &[(String, String)],
) -> Result<BatchReceipt, ProviderError> {
    let (number, record) = look_up_number(transport, id, created.and_then(schedule_number)).await?;
    let reference = match number {
        Some(number) => number,
        None => {
            tracing::warn!(schedule = %id, "Apex assigned no schedule number in time; keeping the schedule id");
            format!("schedule-id:{id}")
        }
    };
    let mut outcomes = Vec::with_capacity(batch.invoices.len());
    for invoice in &batch.invoices {
        let number = invoice.invoice_number.clone();
        if let Some(reason) = reason_for(refused, &number) {
            outcomes.push((number, InvoiceOutcome::Rejected { reason }));
            continue;
        }
        let result = record
            .as_ref()
            .and_then(|r| invoice_result(r, &number))
            .or_else(|| created.and_then(|c| invoice_result(c, &number)));
        let outcome = match result {
            Some(InvoiceResult { rejected: Some(reason), .. }) => InvoiceOutcome::Rejected { reason },
            Some(InvoiceResult { id: invoice_id, has_documents: Some(true), .. }) => {
                InvoiceOutcome::Accepted { reference: invoice_id }
            }
            // Listed without documents, or not listed (the schedule as a whole was taken).
            Some(InvoiceResult { id: invoice_id, .. }) => {
                upload_packet(transport, id, invoice, invoice_id)
                    .instrument(tracing::info_span!("invoice", invoice = %invoice.invoice_number))
                    .await?
            }
            None => {
                upload_packet(transport, id, invoice, None)
                    .instrument(tracing::info_span!("invoice", invoice = %invoice.invoice_number))
                    .await?
            }
        };
        outcomes.push((number, outcome));
    }
    Ok(BatchReceipt { reference: Some(reference), outcomes })
}

/// The schedule number, from the creation answer or by polling `GET schedules/{id}`; also the
/// last schedule record seen (for per-invoice results).
async fn look_up_number(
    transport: &ApiTransport<'_>,
    id: &str,
    known: Option<String>,
) -> Result<(Option<String>, Option<serde_json::Value>), ProviderError> {
    let url = transport.url(&[SCHEDULES, id]);
    let auth = transport.bearer_api_key()?;
    let mut record = None;
    for wait in NUMBER_POLLS {
        tokio::time::sleep(wait).await;
        let answer = transport
            .execute("GET /schedules/{id}", &|| {
                transport.client.get(url.clone()).header(auth.0.clone(), auth.1.clone())
            })
            .await;
        let reply = match answer {
            Ok(reply) => reply,
            Err(failure) => {
                tracing::warn!(reason = %failure.reason, "Apex schedule lookup failed");
                break;
            }
        };
        check_auth(transport, &reply)?;
        if !reply.status.is_success() {
            tracing::warn!(answer = %transport.status_text(&reply), "Apex schedule lookup refused");
            break;
        }
        record = reply.json();
        if let Some(number) = record.as_ref().and_then(schedule_number) {
            return Ok((Some(number), record));
        }
        if known.is_some() {
            break;
        }
    }
    Ok((known, record))
}

/// `GET schedules?externalId=<batch id>-<uid>`: the id of the schedule made for this batch (a
/// batch written before batches had uids is looked up by its batch id, as it was sent).
async fn find_schedule(transport: &ApiTransport<'_>, batch: &Batch) -> Result<Option<String>, ProviderError> {
    let url = transport.url(&[SCHEDULES]);
    let external_id = batch.external_id();
    let auth = transport.bearer_api_key()?;
    let reply = transport
        .execute("GET /schedules", &|| {
            transport
                .client
                .get(url.clone())
                .header(auth.0.clone(), auth.1.clone())
                .query(&[(EXTERNAL_ID_QUERY, external_id.as_str())])
        })
        .await
        .map_err(|f| ProviderError::Transient(format!("Apex did not answer: {}", f.reason)))?;
    check_auth(transport, &reply)?;
    if !reply.status.is_success() {
        if reply.status.as_u16() != 404 {
            tracing::warn!(answer = %transport.status_text(&reply), "Apex schedule search did not answer");
        }
        return Ok(None);
    }
    Ok(reply.json().as_ref().and_then(|json| search_hit(json, &external_id)).and_then(schedule_id))
}

/// For `factord providers test`: `GET schedules?externalId=<a batch id no batch has>`, the
/// read-only search reconciliation uses; any answer but 401/403 shows the API key is taken.
pub(super) async fn probe(transport: &ApiTransport<'_>) -> Result<String, ProviderError> {
    let url = transport.url(&[SCHEDULES]);
    let auth = transport.bearer_api_key()?;
    let reply = transport
        .execute("GET /schedules", &|| {
            transport
                .client
                .get(url.clone())
                .header(auth.0.clone(), auth.1.clone())
                .query(&[(EXTERNAL_ID_QUERY, "factord-providers-test")])
        })
        .await
        .map_err(|f| ProviderError::Transient(format!("Apex did not answer: {}", f.reason)))?;
    check_auth(transport, &reply)?;
    if reply.status.is_server_error() {
        return Err(ProviderError::Transient(format!("Apex answered {}", transport.status_text(&reply))));
    }
    Ok(format!("API key taken; schedule search answered HTTP {}", reply.status.as_u16()))
}

/// `POST schedules/{id}/invoices/{number}/documents` with the packet. Apex holds the invoice
/// already, so a failure here is `Rejected` (ops attach the packet): a `Transient` would put
/// the invoice into a later batch and a second schedule.
async fn upload_packet(
    transport: &ApiTransport<'_>,
    schedule: &str,
    invoice: &BatchInvoice,
    invoice_id: Option<String>,
) -> Result<InvoiceOutcome, ProviderError> {
    let held = |why: String| InvoiceOutcome::Rejected {
        reason: format!("Apex schedule {schedule} holds this invoice but {why}; attach the packet by hand"),
    };
    let packet = match read_packet(invoice).await {
        Ok(packet) => packet,
        Err(reason) => return Ok(held(reason)),
    };
    let url = transport.url(&[SCHEDULES, schedule, INVOICES, &invoice.invoice_number, DOCUMENTS]);
    let auth = transport.bearer_api_key()?;
    let file_name = http::part_file_name(&invoice.invoice_number);
    let key = format!("{}:packet", invoice.idempotency_key);
    let answer = transport
        .execute("POST /schedules/{id}/invoices/{number}/documents", &|| {
            let mut request = transport
                .client
                .post(url.clone())
                .header(auth.0.clone(), auth.1.clone())
                .header(IDEMPOTENCY_KEY, key.as_str());
            if let Ok(file) = Part::bytes(packet.clone()).file_name(file_name.clone()).mime_str("application/pdf") {
                request = request.multipart(Form::new().part("file", file));
            }
            request
        })
        .await;
    let reply = match answer {
        Ok(reply) => reply,
        Err(failure) => return Ok(held(format!("the packet upload failed: {}", failure.reason))),
    };
    check_auth(transport, &reply)?;
    Ok(match reply.status.as_u16() {
        200..=299 | 409 => InvoiceOutcome::Accepted { reference: invoice_id },
        _ => held(format!("the packet upload got {}", transport.status_text(&reply))),
    })
}

/// A 4xx to the schedule: per-invoice refusals when the body lists them (the others go back as
/// transient, for a later batch), else the batch's `Rejected`.
fn refused_schedule(
    transport: &ApiTransport<'_>,
    batch: &Batch,
    reply: &Reply,
    refused: &[(String, String)],
) -> Result<BatchReceipt, ProviderError> {
    let json = reply.json();
    let listed: Vec<(String, String)> = batch
        .invoices
        .iter()
        .filter_map(|i| {
            let result = invoice_result(json.as_ref()?, &i.invoice_number)?;
            Some((i.invoice_number.clone(), transport.scrub(&result.rejected?)))
        })
        .collect();
    if listed.is_empty() {
        return Err(ProviderError::Rejected(format!("Apex refused the schedule: {}", transport.status_text(reply))));
    }
    let outcomes = batch
        .invoices
        .iter()
        .map(|i| {
            let number = i.invoice_number.clone();
            let outcome = match reason_for(refused, &number).or_else(|| reason_for(&listed, &number)) {
                Some(reason) => InvoiceOutcome::Rejected { reason },
                None => InvoiceOutcome::Transient {
                    reason: "not placed: Apex refused the schedule because of other invoices".to_string(),
                },
            };
            (number, outcome)
        })
        .collect();
    Ok(BatchReceipt { reference: None, outcomes })
}

fn reason_for(list: &[(String, String)], number: &str) -> Option<String> {
    list.iter().find(|(n, _)| n == number).map(|(_, reason)| reason.clone())
}

fn check_auth(transport: &ApiTransport<'_>, reply: &Reply) -> Result<(), ProviderError> {
    match reply.status.as_u16() {
        401 | 403 => Err(ProviderError::Auth(format!("Apex refused the API key: {}", transport.status_text(reply)))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoice_results_read_status_id_and_documents() {
        let answer = json!({"invoices": [
            {"invoiceNumber": "AE-1", "status": "accepted", "id": 5, "documents": []},
            {"invoiceNumber": "AE-2", "status": "Rejected", "message": "debtor not found"},
        ]});
        let first = invoice_result(&answer, "AE-1").expect("listed");
        assert_eq!((first.rejected, first.id.as_deref(), first.has_documents), (None, Some("5"), Some(false)));
        assert_eq!(invoice_result(&answer, "AE-2").expect("listed").rejected.as_deref(), Some("debtor not found"));
        assert!(invoice_result(&answer, "AE-3").is_none());
    }
}
