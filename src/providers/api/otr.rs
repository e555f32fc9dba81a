//! OTR Solutions, following its public Carrier TMS API as DESIGN §4 summarises it: token login
//! with username and password, the APIM subscription key on every request, one `POST invoices`
//! per invoice, the packet uploaded as documents, `GET invoices` to look an invoice up, and
//! `GET broker-check` for a broker's credit (by MC number, then by DOT number).
//!
//! OTR's answers to `POST invoices`: 200/201 created (with its id); **409** it already holds
//! that invoice number (the body may carry the existing id), which makes every resend safe;
//! **204 with an empty body** the broker MC is unknown to OTR and nothing was created; **402**
//! the broker is not approved. To `GET broker-check`: 200 with the broker's status (`APPROVED`,
//! `CALL OFFICE`, `NOT APPROVED`, ...), **404 or 204** the broker is unknown by that number. The
//! field names below are factord's reading of the docs: check
//! them against OTR's reference when onboarding, and change only the mapping section.

use reqwest::multipart::{Form, Part};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::time::{Duration, Instant};

use super::http::{self, Failure, FailureKind, Reply};
use super::{ApiTransport, CreditAnswer, Halt, IDEMPOTENCY_KEY, Token, read_packet};
use crate::domain::{CreditResult, Customer};
use crate::providers::batch::{Batch, BatchInvoice, BatchReceipt, InvoiceOutcome, ProviderError};

// ---- The mapping ------------------------------------------------------------------------------

const TOKEN_PATH: &[&str] = &["auth", "token"];
const INVOICES: &str = "invoices";
const DOCUMENTS: &str = "documents";
const SUBSCRIPTION_KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";
const INVOICE_NUMBER_QUERY: &str = "invoiceNumber";
const BROKER_CHECK: &str = "broker-check";
/// The broker-check queries, in the order they are tried.
const BROKER_QUERIES: [(&str, &str); 2] = [("mcNumber", "MC"), ("dotNumber", "DOT")];

/// OTR's document types: 1 = proof of delivery, 3 = rate confirmation.
const DOCUMENT_POD: u64 = 1;
const DOCUMENT_RATE_CONFIRMATION: u64 = 3;
/// factord's packet is the invoice, the rate confirmation and the POD merged in one PDF
/// (AutoMerge), so it holds both documents OTR checks for. It is uploaded once under each type,
/// so that OTR's checklist finds a POD *and* a rate confirmation; the cost is one extra upload
/// of the same file per invoice.
const PACKET_AS: [u64; 2] = [DOCUMENT_POD, DOCUMENT_RATE_CONFIRMATION];

/// Token lifetimes are cut short by this much, so a token never expires mid-batch.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InvoiceRequest<'a> {
    invoice_number: &'a str,
    /// Dollars; an f64 prints cents exactly (shortest round-trip form) for any real amount.
    invoice_amount: f64,
    /// `YYYY-MM-DD`.
    invoice_date: &'a str,
    load_number: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    po_number: Option<&'a str>,
    broker_mc: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    broker_dot: Option<&'a str>,
    /// The subsidiary's USDOT: how OTR knows which of its clients submits.
    carrier_usdot: &'a str,
}

/// OTR needs the subsidiary's USDOT and the customer's MC (DESIGN §4).
fn invoice_request<'a>(batch: &'a Batch, invoice: &'a BatchInvoice) -> Result<InvoiceRequest<'a>, String> {
    let broker_mc =
        invoice.customer_mc.as_deref().map(str::trim).filter(|mc| !mc.is_empty()).ok_or_else(|| {
            format!("OTR requires the customer's MC number; customer {} has none", invoice.customer_id)
        })?;
    Ok(InvoiceRequest {
        invoice_number: &invoice.invoice_number,
        invoice_amount: invoice.amount.cents() as f64 / 100.0,
        invoice_date: &invoice.invoice_date,
        load_number: &invoice.load_number,
        po_number: invoice.po_number.as_deref(),
        broker_mc,
        broker_dot: invoice.customer_dot.as_deref(),
        carrier_usdot: batch.seller.usdot.as_deref().unwrap_or_default(),
    })
}

fn seller_usdot(batch: &Batch) -> Result<(), ProviderError> {
    match batch.seller.usdot.as_deref().map(str::trim) {
        Some(usdot) if !usdot.is_empty() => Ok(()),
        _ => Err(ProviderError::Rejected(format!(
            "OTR requires the subsidiary's USDOT number; subsidiary {} has none (subsidiary.usdot)",
            batch.seller.id
        ))),
    }
}

/// The login form (OAuth 2 password grant, as OTR's API gateway takes it).
fn login_form<'f>(username: &'f str, password: &'f SecretString) -> [(&'static str, &'f str); 3] {
    [("grant_type", "password"), ("username", username), ("password", password.expose_secret())]
}

/// The token and its lifetime in seconds from the login answer.
fn token_from(json: &serde_json::Value) -> Option<(String, Option<u64>)> {
    let token = ["access_token", "accessToken", "token"].iter().find_map(|k| json.get(*k)?.as_str())?;
    let lifetime = ["expires_in", "expiresIn"].iter().find_map(|k| json.get(*k)?.as_u64());
    (!token.is_empty()).then(|| (token.to_string(), lifetime))
}

/// OTR's id of an invoice, from a created/duplicate answer or an invoice record.
fn invoice_id(json: &serde_json::Value) -> Option<String> {
    http::field_id(json, &["id", "invoiceId", "existingInvoiceId"])
}

/// The document types an invoice record shows, `None` when the record does not say.
fn document_types(json: &serde_json::Value) -> Option<Vec<u64>> {
    let documents = json.get("documents")?.as_array()?;
    Some(
        documents
            .iter()
            .filter_map(|d| ["documentType", "type", "documentTypeId"].iter().find_map(|k| d.get(*k)?.as_u64()))
            .collect(),
    )
}

/// The record for `invoice_number` in a search answer: an array, an object wrapping one
/// (`invoices`, `items`, `data`, `results`), or the record itself.
fn search_hit<'j>(json: &'j serde_json::Value, invoice_number: &str) -> Option<&'j serde_json::Value> {
    let records = match json {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(map) => {
            match ["invoices", "items", "data", "results"].iter().find_map(|k| map.get(*k)) {
                Some(serde_json::Value::Array(items)) => items,
                _ => return Some(json).filter(|j| record_number(j) == Some(invoice_number)),
            }
        }
        _ => return None,
    };
    records.iter().find(|r| record_number(r) == Some(invoice_number))
}

fn record_number(record: &serde_json::Value) -> Option<&str> {
    record.get("invoiceNumber")?.as_str()
}

/// OTR's decision about a broker from a `broker-check` answer, with OTR's own words: the
/// status (`APPROVED`, `CALL OFFICE`, `NOT APPROVED`), then its message when it adds one.
/// Anything that is neither an approval nor a refusal is `Unknown`. `None` when the answer
/// carries no status at all.
fn broker_decision(json: &serde_json::Value) -> Option<CreditAnswer> {
    let record = match json {
        serde_json::Value::Array(items) => items.first()?,
        other => other,
    };
    let status = ["status", "creditStatus", "brokerStatus", "result", "decision"]
        .iter()
        .find_map(|k| record.get(*k)?.as_str())
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())?;
    let message = ["message", "note", "comments"]
        .iter()
        .find_map(|k| http::server_message(record.get(*k)?.as_str()?.as_bytes()))
        .filter(|m| !m.eq_ignore_ascii_case(&status));
    let normalized = status.to_ascii_uppercase().replace(['_', '-'], " ");
    let result = match normalized.as_str() {
        "APPROVED" | "APPROVE" | "YES" => CreditResult::Approved,
        "NOT APPROVED" | "DECLINED" | "DENIED" | "NO BUY" | "NO" => CreditResult::Declined,
        _ => CreditResult::Unknown,
    };
    let text = match message {
        Some(message) => format!("{status}: {message}"),
        None => status,
    };
    Some(CreditAnswer { result, text })
}

// ---- End of the mapping -----------------------------------------------------------------------

/// An invoice OTR already holds.
struct Existing {
    id: String,
    /// Document types it shows; `None` when not known yet.
    documents: Option<Vec<u64>>,
}

pub(super) async fn send(transport: &ApiTransport<'_>, batch: &Batch) -> Result<BatchReceipt, ProviderError> {
    seller_usdot(batch)?;
    transport.each_invoice(batch, |invoice| submit(transport, batch, invoice)).await
}

/// Looks every invoice up by number; submits (same idempotency key) only those OTR does not
/// hold. A lookup that cannot tell also submits: OTR answers 409 for a number it holds, so a
/// resend never creates a second invoice.
pub(super) async fn reconcile(transport: &ApiTransport<'_>, batch: &Batch) -> Result<BatchReceipt, ProviderError> {
    seller_usdot(batch)?;
    transport
        .each_invoice(batch, |invoice| async move {
            match look_up(transport, &invoice.invoice_number).await? {
                Some(existing) => {
                    tracing::info!(reference = %existing.id, "OTR already holds the invoice");
                    finish_existing(transport, invoice, existing, None).await
                }
                None => submit(transport, batch, invoice).await,
            }
        })
        .await
}

async fn submit(transport: &ApiTransport<'_>, batch: &Batch, invoice: &BatchInvoice) -> Result<InvoiceOutcome, Halt> {
    let request = match invoice_request(batch, invoice) {
        Ok(request) => request,
        Err(reason) => return Ok(InvoiceOutcome::Rejected { reason }),
    };
    // Read before anything is created, so OTR never gets an invoice factord cannot document.
    let packet = match read_packet(invoice).await {
        Ok(packet) => packet,
        Err(reason) => return Ok(InvoiceOutcome::Rejected { reason }),
    };
    let url = transport.url(&[INVOICES]);
    let reply = authorized(transport, "POST /invoices", &|token| {
        transport
            .client
            .post(url.clone())
            .bearer_auth(token)
            .header(IDEMPOTENCY_KEY, invoice.idempotency_key.as_str())
            .json(&request)
    })
    .await?;
    match reply.status.as_u16() {
        204 => Ok(InvoiceOutcome::Rejected { reason: format!("broker MC {} is unknown to OTR", request.broker_mc) }),
        200..=299 => {
            let id = match reply.json().as_ref().and_then(invoice_id) {
                Some(id) => Some(id),
                None => look_up(transport, &invoice.invoice_number).await?.map(|e| e.id),
            };
            match id {
                Some(id) => upload_packet(transport, invoice, &id, &packet, &PACKET_AS).await,
                None => Ok(InvoiceOutcome::Rejected {
                    reason: "OTR took the invoice but gave no id and does not find it by number; \
                             attach the packet by hand"
                        .to_string(),
                }),
            }
        }
        409 => {
            let existing = match reply.json().as_ref().and_then(invoice_id) {
                Some(id) => Some(Existing { id, documents: None }),
                None => look_up(transport, &invoice.invoice_number).await?,
            };
            match existing {
                Some(existing) => {
                    tracing::info!(reference = %existing.id, "OTR already holds the invoice (409)");
                    finish_existing(transport, invoice, existing, Some(&packet)).await
                }
                // OTR says it holds the number; without its id there is nothing more to do.
                None => Ok(InvoiceOutcome::Accepted { reference: None }),
            }
        }
        402 => Ok(InvoiceOutcome::Rejected {
            reason: match transport.server_message(&reply) {
                Some(message) => format!("broker not approved by OTR: {message}"),
                None => format!("broker MC {} is not approved by OTR", request.broker_mc),
            },
        }),
        400..=499 => Ok(InvoiceOutcome::Rejected { reason: transport.status_text(&reply) }),
        _ => Ok(InvoiceOutcome::Transient { reason: format!("unexpected answer: {}", transport.status_text(&reply)) }),
    }
}

/// An invoice OTR holds is accepted once its packet is there: uploads the document types the
/// record does not show (all of them when it does not say: a second copy of a document is
/// harmless, a missing POD stops funding).
async fn finish_existing(
    transport: &ApiTransport<'_>,
    invoice: &BatchInvoice,
    existing: Existing,
    packet: Option<&[u8]>,
) -> Result<InvoiceOutcome, Halt> {
    let documents = match existing.documents {
        Some(documents) => Some(documents),
        None => match fetch_invoice(transport, &existing.id).await {
            Ok(record) => record.as_ref().and_then(document_types),
            Err(Halt::Failed(_)) => None,
            Err(halt) => return Err(halt),
        },
    };
    let missing: Vec<u64> =
        PACKET_AS.iter().copied().filter(|t| documents.as_ref().is_none_or(|present| !present.contains(t))).collect();
    if missing.is_empty() {
        return Ok(InvoiceOutcome::Accepted { reference: Some(existing.id) });
    }
    let read;
    let packet = match packet {
        Some(packet) => packet,
        None => match read_packet(invoice).await {
            Ok(bytes) => {
                read = bytes;
                &read
            }
            Err(reason) => {
                return Ok(InvoiceOutcome::Rejected {
                    reason: format!("OTR holds invoice {} without its packet, and {reason}", existing.id),
                });
            }
        },
    };
    upload_packet(transport, invoice, &existing.id, packet, &missing).await
}

/// Uploads the packet under each of `types`; the invoice is accepted once all are in.
async fn upload_packet(
    transport: &ApiTransport<'_>,
    invoice: &BatchInvoice,
    id: &str,
    packet: &[u8],
    types: &[u64],
) -> Result<InvoiceOutcome, Halt> {
    let url = transport.url(&[INVOICES, id, DOCUMENTS]);
    let file_name = http::part_file_name(&invoice.invoice_number);
    for &document_type in types {
        let key = format!("{}:document:{document_type}", invoice.idempotency_key);
        let label = format!("POST /invoices/{id}/documents");
        let answer = authorized(transport, &label, &|token| {
            let mut request =
                transport.client.post(url.clone()).bearer_auth(token).header(IDEMPOTENCY_KEY, key.as_str());
            if let Ok(file) = Part::bytes(packet.to_vec()).file_name(file_name.clone()).mime_str("application/pdf") {
                request =
                    request.multipart(Form::new().text("documentType", document_type.to_string()).part("file", file));
            }
            request
        })
        .await;
        let reply = match answer {
            Ok(reply) => reply,
            Err(Halt::Failed(failure)) => {
                return Ok(InvoiceOutcome::Transient {
                    reason: format!(
                        "OTR holds invoice {id} but the packet upload failed ({}); the next attempt finds it and \
                         uploads again",
                        failure.reason
                    ),
                });
            }
            Err(halt) => return Err(halt),
        };
        match reply.status.as_u16() {
            200..=299 | 409 => {}
            400..=499 => {
                return Ok(InvoiceOutcome::Rejected {
                    reason: format!(
                        "OTR holds invoice {id} but refused its packet as document type {document_type}: {}",
                        transport.status_text(&reply)
                    ),
                });
            }
            _ => {
                return Ok(InvoiceOutcome::Transient {
                    reason: format!(
                        "OTR holds invoice {id} but the packet upload got {}; the next attempt uploads again",
                        transport.status_text(&reply)
                    ),
                });
            }
        }
    }
    Ok(InvoiceOutcome::Accepted { reference: Some(id.to_string()) })
}

/// `GET invoices?invoiceNumber=`: the invoice OTR holds under this number, if any. An answer
/// that says neither yes nor no counts as no: the resend that follows is safe (409).
async fn look_up(transport: &ApiTransport<'_>, invoice_number: &str) -> Result<Option<Existing>, Halt> {
    let url = transport.url(&[INVOICES]);
    let reply = authorized(transport, "GET /invoices", &|token| {
        transport.client.get(url.clone()).bearer_auth(token).query(&[(INVOICE_NUMBER_QUERY, invoice_number)])
    })
    .await?;
    if !reply.status.is_success() || reply.status.as_u16() == 204 {
        if reply.status.as_u16() != 404 && reply.status.as_u16() != 204 {
            tracing::warn!(answer = %transport.status_text(&reply), "OTR invoice search did not answer; resending");
        }
        return Ok(None);
    }
    let Some(json) = reply.json() else { return Ok(None) };
    Ok(search_hit(&json, invoice_number)
        .and_then(|record| Some(Existing { id: invoice_id(record)?, documents: document_types(record) })))
}

/// `GET invoices/{id}`: the record, if OTR answers with one.
async fn fetch_invoice(transport: &ApiTransport<'_>, id: &str) -> Result<Option<serde_json::Value>, Halt> {
    let url = transport.url(&[INVOICES, id]);
    let reply =
        authorized(transport, "GET /invoices/{id}", &|token| transport.client.get(url.clone()).bearer_auth(token))
            .await?;
    Ok(if reply.status.is_success() { reply.json() } else { None })
}

/// `GET broker-check` by the customer's MC number, then by its DOT number when OTR does not
/// know the MC (or there is none). A broker OTR knows by neither is `Unknown`.
pub(super) async fn check_broker(transport: &ApiTransport<'_>, customer: &Customer) -> Result<CreditAnswer, Halt> {
    let url = transport.url(&[BROKER_CHECK]);
    let mut tried = Vec::new();
    for ((query, label), number) in BROKER_QUERIES.into_iter().zip([&customer.mc, &customer.dot]) {
        let Some(number) = number.as_deref().map(str::trim).filter(|n| !n.is_empty()) else { continue };
        let reply = authorized(transport, "GET /broker-check", &|token| {
            transport.client.get(url.clone()).bearer_auth(token).query(&[(query, number)])
        })
        .await?;
        match reply.status.as_u16() {
            204 | 404 => tried.push(format!("{label} {number}")),
            200..=299 => {
                return match reply.json().as_ref().and_then(broker_decision) {
                    Some(answer) => Ok(answer),
                    None => Err(Halt::Failed(Failure {
                        kind: FailureKind::Busy,
                        reason: format!("GET /broker-check: HTTP {} without a broker status", reply.status),
                    })),
                };
            }
            400..=499 => {
                return Err(Halt::Batch(ProviderError::Rejected(format!(
                    "OTR refused the broker check by {label} {number}: {}",
                    transport.status_text(&reply)
                ))));
            }
            _ => {
                return Err(Halt::Failed(Failure {
                    kind: FailureKind::Busy,
                    reason: format!("GET /broker-check: unexpected {}", transport.status_text(&reply)),
                }));
            }
        }
    }
    if tried.is_empty() {
        return Err(Halt::Batch(ProviderError::Rejected(format!(
            "customer {} has no MC or DOT number; OTR checks brokers by them",
            customer.id
        ))));
    }
    Ok(CreditAnswer { result: CreditResult::Unknown, text: format!("broker unknown to OTR ({})", tried.join(", ")) })
}

/// One request with the bearer token and the subscription key. A 401 drops the token and
/// retries once with a fresh one; a second 401, or a 403, is the batch's `Auth` error.
async fn authorized(
    transport: &ApiTransport<'_>,
    label: &str,
    build: &(dyn Fn(&str) -> reqwest::RequestBuilder + Sync),
) -> Result<Reply, Halt> {
    let subscription_key =
        transport.secret_header(SUBSCRIPTION_KEY_HEADER, transport.settings.subscription_key.as_ref())?;
    let mut refreshed = false;
    loop {
        let token = match transport.cached_token() {
            Some(token) => token,
            None => log_in(transport).await?,
        };
        let reply = transport
            .execute(label, &|| build(token.expose_secret()).header(SUBSCRIPTION_KEY_HEADER, subscription_key.clone()))
            .await?;
        match reply.status.as_u16() {
            401 if !refreshed => {
                tracing::info!("OTR refused the token (401); logging in again");
                transport.store_token(None);
                refreshed = true;
            }
            401 | 403 => {
                return Err(Halt::Batch(ProviderError::Auth(format!(
                    "OTR refused the credentials on {label}: {}",
                    transport.status_text(&reply)
                ))));
            }
            _ => return Ok(reply),
        }
    }
}

/// `POST auth/token`: a fresh token, cached on the transport.
pub(super) async fn log_in(transport: &ApiTransport<'_>) -> Result<SecretString, Halt> {
    let username = transport.settings.username.as_deref().unwrap_or_default();
    let Some(password) = transport.settings.password.as_ref() else {
        return Err(Halt::Batch(ProviderError::Auth("OTR: no password configured".to_string())));
    };
    let subscription_key =
        transport.secret_header(SUBSCRIPTION_KEY_HEADER, transport.settings.subscription_key.as_ref())?;
    let url = transport.url(TOKEN_PATH);
    let reply = transport
        .execute("POST /auth/token", &|| {
            transport
                .client
                .post(url.clone())
                .header(SUBSCRIPTION_KEY_HEADER, subscription_key.clone())
                .form(&login_form(username, password))
        })
        .await?;
    match reply.status.as_u16() {
        200..=299 => {
            let Some((value, lifetime)) = reply.json().as_ref().and_then(token_from) else {
                return Err(Halt::Batch(ProviderError::Auth(format!(
                    "OTR login for user {username} answered {} without a token",
                    reply.status
                ))));
            };
            let value = SecretString::from(value);
            let renew_at = lifetime.map(|s| Instant::now() + Duration::from_secs(s).saturating_sub(TOKEN_MARGIN));
            transport.store_token(Some(Token { value: value.clone(), renew_at }));
            tracing::debug!("logged in to OTR");
            Ok(value)
        }
        400..=499 => Err(Halt::Batch(ProviderError::Auth(format!(
            "OTR refused the login of user {username}: {}",
            transport.status_text(&reply)
        )))),
        _ => Err(Halt::Failed(Failure {
            kind: FailureKind::Busy,
            reason: format!("POST /auth/token: unexpected {}", transport.status_text(&reply)),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn search_answers_in_any_usual_shape_find_the_number() {
        let record = json!({"id": 77, "invoiceNumber": "AE-1", "documents": [{"documentType": 1}]});
        for answer in [json!([record.clone()]), json!({"items": [record.clone()]}), record.clone()] {
            let hit = search_hit(&answer, "AE-1").expect("found");
            assert_eq!(invoice_id(hit).as_deref(), Some("77"));
            assert_eq!(document_types(hit), Some(vec![1]));
        }
        assert!(search_hit(&json!([]), "AE-1").is_none());
        assert!(search_hit(&json!({"items": [record]}), "AE-2").is_none());
    }

    #[test]
    fn broker_statuses_map_to_results_with_otrs_words() {
        let decide = |json: serde_json::Value| broker_decision(&json).map(|a| (a.result, a.text));
        assert_eq!(decide(json!({"status": "APPROVED"})), Some((CreditResult::Approved, "APPROVED".into())));
        assert_eq!(decide(json!({"status": "CALL OFFICE"})), Some((CreditResult::Unknown, "CALL OFFICE".into())));
        assert_eq!(
            decide(json!([{"creditStatus": "NOT APPROVED", "message": "slow payer"}])),
            Some((CreditResult::Declined, "NOT APPROVED: slow payer".into()))
        );
        assert_eq!(decide(json!({"message": "nothing"})), None);
    }

    #[test]
    fn tokens_are_read_from_the_usual_fields() {
        assert_eq!(token_from(&json!({"access_token": "t", "expires_in": 3600})), Some(("t".into(), Some(3600))));
        assert_eq!(token_from(&json!({"token": "t"})), Some(("t".into(), None)));
        assert_eq!(token_from(&json!({"token": ""})), None);
    }
}
