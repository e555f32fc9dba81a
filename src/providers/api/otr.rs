//! OTR Solutions, on its public Carrier TMS API (`docs/providers/otr.md`): the
//! one factor that publishes its carrier-side contract. Every name OTR defines (path, header,
//! query, form field, JSON field, document type, broker decision) is written once, in the
//! mapping section below; OTR answers any other name with a bare `400 Invalid Request`.
//!
//! The flow of one invoice: the request is built (customer MC, subsidiary USDOT and the lane are
//! required; an invoice without them is refused before any request), the documents are read,
//! then `POST invoices` → `invoicePkey`, then one `POST documents/upload` per document: the POD
//! as type 1 and the rate confirmation as type 3 from their own files, and the merged packet
//! (invoice with the NOA) as type 7; where the load's separate file is not there, the packet
//! stands in for it.
//!
//! An invoice OTR already holds (accepted, later rejected by OTR, then `factord loads retry`)
//! carries OTR's `invoicePkey` in the batch ([`BatchInvoice::held_reference`]): no `POST
//! invoices` is made for it; its documents, rebuilt packet included, are uploaded to that
//! invoice, as OTR's contract adds documents to an invoice (`documents/upload` with its id).
//!
//! Identity and resends: OTR keys an invoice by (ClientDOT, InvoiceNo) and answers a second
//! `POST invoices` with **409**, carrying the existing `invoicePkey`. That makes every resend
//! safe, and it is the only lookup OTR documents (it has no search by invoice number): a batch
//! left `sending` by a crash is settled by sending it again. A 409 *without* an id may mean
//! the same invoice or another one with the same PO number; factord cannot tell which, so that
//! invoice is rejected for a person to check (see [`CONFLICT_WITHOUT_ID`]).

use reqwest::multipart::{Form, Part};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::value::RawValue;
use std::path::Path;
use std::time::{Duration, Instant};

use super::http::{self, Failure, FailureKind, Reply};
use super::{ApiTransport, CreditAnswer, Halt, Token};
use crate::domain::{CreditResult, Customer, Money};
use crate::providers::batch::{Batch, BatchInvoice, BatchReceipt, InvoiceOutcome, ProviderError};
use crate::providers::statuses::StatusOutcome::{Held, NoChange, Paid, Purchased, Rejected};
use crate::providers::statuses::StatusVocabulary;

// ---- The mapping: every OTR name, once ---------------------------------------------------------

/// Header on every request.
const SUBSCRIPTION_KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";

/// `POST {base}/auth/token`, form `username`, `password`; answer `access_token`, `expires_in`.
const LOGIN_PATH: &[&str] = &["auth", "token"];
const LOGIN_USERNAME: &str = "username";
const LOGIN_PASSWORD: &str = "password";
const ACCESS_TOKEN: &str = "access_token";
const EXPIRES_IN: &str = "expires_in";

/// `GET {base}/broker-check?brokerMc=<mc>` (or `brokerDot=<dot>` when there is no MC or OTR
/// does not know it); the decision is the answer's `message`.
const BROKER_CHECK_PATH: &[&str] = &["broker-check"];
const BROKER_MC_QUERY: &str = "brokerMc";
const BROKER_DOT_QUERY: &str = "brokerDot";
const BROKER_DECISION: &str = "message";
const BROKER_APPROVED: &str = "APPROVED";
const BROKER_CALL_OFFICE: &str = "CALL OFFICE";
const BROKER_NOT_APPROVED: &str = "NOT APPROVED";

/// `POST {base}/invoices` ([`InvoiceRequest`]); `GET {base}/invoices/{invoicePkey}`.
const INVOICES_PATH: &str = "invoices";
/// OTR's id of an invoice, in the create and duplicate answers.
const INVOICE_PKEY: &str = "invoicePkey";
/// The invoice's status in `GET invoices/{invoicePkey}` (`Pending`, `Advance Paid`, `Paid`, …).
const INVOICE_STATUS: &str = "Status";

/// `POST {base}/documents/upload`, `multipart/form-data`.
const UPLOAD_PATH: &[&str] = &["documents", "upload"];
const UPLOAD_FILE: &str = "file";
const UPLOAD_INVOICE_ID: &str = "invoiceid";
const UPLOAD_DOC_TYPE: &str = "InvoiceDocTypes";
const UPLOAD_SEND_EMAIL: &str = "SendEmail";
const UPLOAD_SEND_EMAIL_VALUE: &str = "false";
const UPLOAD_DOCUMENT_TYPE: &str = "DocumentType";
const UPLOAD_DOCUMENT_TYPE_VALUE: &str = "invoice-file-upload";
/// `InvoiceDocTypes` values factord sends (OTR also has 4 NOA, 5 letter of release, 6 carrier
/// packet).
const DOC_POD: u8 = 1;
const DOC_RATE_CONFIRMATION: u8 = 3;
const DOC_OTHER: u8 = 7;

/// The body of `POST invoices`, exactly OTR's names. `TermPkey`, `Weight`, `Miles` and `Notes`
/// are optional and factord does not know them, so they are never sent.
#[derive(Serialize)]
struct InvoiceRequest<'a> {
    #[serde(rename = "InvoiceNo")]
    invoice_no: &'a str,
    /// Digits only, as a number: `MC-012345` → `12345`.
    #[serde(rename = "BrokerMC")]
    broker_mc: u64,
    /// The subsidiary's USDOT, as a number.
    #[serde(rename = "ClientDOT")]
    client_dot: u64,
    /// Dollars with cents as a JSON number, written from the integer cents as decimal text
    /// (`245050` → `2450.50`), so no float ever holds the amount.
    #[serde(rename = "InvoiceAmount")]
    invoice_amount: Box<RawValue>,
    /// `YYYY-MM-DD`.
    #[serde(rename = "InvoiceDate")]
    invoice_date: &'a str,
    #[serde(rename = "PoNumber", skip_serializing_if = "Option::is_none")]
    po_number: Option<&'a str>,
    #[serde(rename = "FromCity")]
    from_city: &'a str,
    /// Two letters, upper case.
    #[serde(rename = "FromState")]
    from_state: String,
    #[serde(rename = "ToCity")]
    to_city: &'a str,
    #[serde(rename = "ToState")]
    to_state: String,
}

/// OTR's status vocabulary and the shipped reading of each word (`GET invoices/{invoicePkey}`
/// answers one of these in `Status`); ops add words or override one in
/// `[provider.otr.statuses]`.
pub(crate) static STATUSES: StatusVocabulary = StatusVocabulary {
    source: "OTR's published vocabulary",
    words: &[
        ("Advance Paid", Purchased),
        ("Approved", Purchased),
        ("Paid", Paid),
        ("Client Request", Held),
        ("OTR Follow-Up", Held),
        ("Duplicate", Rejected),
        ("Pending", NoChange),
        ("Advance Pending", NoChange),
    ],
};

// ---- End of the mapping -----------------------------------------------------------------------

/// Token lifetimes are cut short by this much, so a token never expires mid-batch.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// The reason for a 409 without an `invoicePkey`. Why it is a rejection and not an acceptance:
/// OTR answers 409 for a duplicate invoice number *or a duplicate PO number*, so without the id
/// factord cannot tell whether OTR holds this invoice or another one, and it could not upload the
/// documents anyway. Accepting would mark the load sent with nothing to follow it by; rejecting
/// puts it in front of a person, who checks OTR's portal.
fn conflict_without_id() -> String {
    format!(
        "OTR answered 409 (it already holds this invoice number or PO number) without the invoice's \
         {INVOICE_PKEY}; check the invoice in OTR's portal and attach the POD and rate confirmation there"
    )
}

/// `POST /invoices` and the like, for logs and reasons.
fn label(method: &str, path: &[&str]) -> String {
    format!("{method} /{}", path.join("/"))
}

/// `ClientDOT`: the subsidiary's USDOT as a number, or why there is none.
fn client_dot(batch: &Batch) -> Result<u64, String> {
    let usdot = batch.seller.usdot.as_deref().unwrap_or_default();
    number(usdot).ok_or_else(|| {
        format!(
            "OTR requires the subsidiary's USDOT number; subsidiary {} has none (subsidiary.usdot)",
            batch.seller.id
        )
    })
}

/// The digits of an MC or DOT number as a number (`MC-012345` → `12345`); `None` without digits.
fn number(text: &str) -> Option<u64> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Dollars and cents as a JSON number, from the integer cents.
fn amount(money: Money) -> Result<Box<RawValue>, String> {
    RawValue::from_string(money.to_string()).map_err(|e| format!("amount {money} is not a JSON number: {e}"))
}

/// A city, trimmed, or which lane field is missing.
fn city<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, String> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| format!("{field} missing"))
}

/// A two-letter state, upper case, or why it is not one.
fn state(value: &Option<String>, field: &str) -> Result<String, String> {
    let text = value.as_deref().map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Err(format!("{field} missing"));
    }
    if text.len() == 2 && text.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err(format!("{field} `{text}` is not a two-letter state"))
    }
}

/// The `POST invoices` body, or why OTR cannot take this invoice (said without a request).
fn invoice_request<'a>(batch: &Batch, invoice: &'a BatchInvoice) -> Result<InvoiceRequest<'a>, String> {
    let client_dot = client_dot(batch)?;
    let broker_mc = invoice.customer_mc.as_deref().and_then(number).ok_or_else(|| {
        format!("OTR requires the customer's MC number; customer {} has none (customer_mc)", invoice.customer_id)
    })?;
    let lane = (
        city(&invoice.pickup_city, "pickup_city"),
        state(&invoice.pickup_state, "pickup_state"),
        city(&invoice.delivery_city, "delivery_city"),
        state(&invoice.delivery_state, "delivery_state"),
    );
    let (from_city, from_state, to_city, to_state) = match lane {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        (a, b, c, d) => {
            let problems: Vec<String> = [a.err(), b.err(), c.err(), d.err()].into_iter().flatten().collect();
            return Err(format!("OTR requires the lane: {} (load {})", problems.join(", "), invoice.load_number));
        }
    };
    Ok(InvoiceRequest {
        invoice_no: &invoice.invoice_number,
        broker_mc,
        client_dot,
        invoice_amount: amount(invoice.amount)?,
        invoice_date: &invoice.invoice_date,
        po_number: invoice.po_number.as_deref().map(str::trim).filter(|p| !p.is_empty()),
        from_city,
        from_state,
        to_city,
        to_state,
    })
}

/// OTR's decision from a `broker-check` answer: its `message` matched after trimming and
/// upper-casing; anything else is `Unknown`, kept in OTR's words. `None` without a message.
fn broker_decision(json: &serde_json::Value) -> Option<CreditAnswer> {
    let words = json.get(BROKER_DECISION)?.as_str()?.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.is_empty() {
        return None;
    }
    let result = match words.to_ascii_uppercase().as_str() {
        BROKER_APPROVED => CreditResult::Approved,
        BROKER_NOT_APPROVED => CreditResult::Declined,
        BROKER_CALL_OFFICE => CreditResult::Unknown,
        _ => CreditResult::Unknown,
    };
    Some(CreditAnswer { result, text: words })
}

/// OTR's id of an invoice in a create or duplicate answer.
fn invoice_pkey(reply: &Reply) -> Option<String> {
    reply.json().as_ref().and_then(|json| http::field_id(json, &[INVOICE_PKEY]))
}

/// One document to upload: its OTR type, what it is (for reasons), and its bytes.
struct Document {
    doc_type: u8,
    label: String,
    bytes: Vec<u8>,
}

/// Reads what goes to OTR with an invoice, before anything is created there: the POD (type 1)
/// and the rate confirmation (type 3) from their own files, the load's BOL, lumper receipt and
/// other documents (type 7, OTR's type for them), the packet (type 7) for the invoice page and
/// NOA. A separate file that is not there is replaced by the packet, which holds it merged; the
/// packet is then not sent a second time as 7.
async fn read_documents(invoice: &BatchInvoice) -> Result<Vec<Document>, String> {
    let packet = read(&invoice.packet, "packet")
        .await?
        .ok_or_else(|| format!("packet {} unreadable: not found", invoice.packet.display()))?;
    let packet_label = format!("packet {}", invoice.packet.display());
    let mut documents = Vec::new();
    let mut packet_sent = false;
    for (doc_type, label, path) in
        [(DOC_POD, "POD", &invoice.pod), (DOC_RATE_CONFIRMATION, "rate confirmation", &invoice.rate_confirmation)]
    {
        let own = match path {
            Some(path) => read(path, label).await?.map(|bytes| (format!("{label} {}", path.display()), bytes)),
            None => None,
        };
        match own {
            Some((label, bytes)) => documents.push(Document { doc_type, label, bytes }),
            None => {
                packet_sent = true;
                documents.push(Document { doc_type, label: packet_label.clone(), bytes: packet.clone() });
            }
        }
    }
    for path in &invoice.extra_documents {
        // A BOL, lumper receipt or other document from `factord loads docs`: OTR's type for
        // them is "other". One that went missing is in the packet, which goes too.
        if let Some(bytes) = read(path, "document").await? {
            documents.push(Document { doc_type: DOC_OTHER, label: format!("document {}", path.display()), bytes });
        }
    }
    if !packet_sent {
        documents.push(Document { doc_type: DOC_OTHER, label: packet_label, bytes: packet });
    }
    Ok(documents)
}

/// A file's bytes; `None` when it is not there, a reason when it cannot be read.
async fn read(path: &Path, label: &str) -> Result<Option<Vec<u8>>, String> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{label} {} unreadable: {e}", path.display())),
    }
}

/// Every invoice of the batch, one `POST invoices` each, then its documents.
pub(super) async fn send(transport: &ApiTransport<'_>, batch: &Batch) -> Result<BatchReceipt, ProviderError> {
    if let Err(reason) = client_dot(batch) {
        return Err(ProviderError::Rejected(reason));
    }
    transport.each_invoice(batch, |invoice| submit(transport, batch, invoice)).await
}

/// A batch a crash left `sending` is sent again: OTR documents no search by invoice number, and
/// its answer to an invoice it already holds (409 with the `invoicePkey`) is the lookup; the
/// documents are then uploaded again, since OTR's invoice record does not say which it has (a
/// second copy of a document is harmless; a missing POD stops funding).
pub(super) async fn reconcile(transport: &ApiTransport<'_>, batch: &Batch) -> Result<BatchReceipt, ProviderError> {
    send(transport, batch).await
}

async fn submit(transport: &ApiTransport<'_>, batch: &Batch, invoice: &BatchInvoice) -> Result<InvoiceOutcome, Halt> {
    let request = match invoice_request(batch, invoice) {
        Ok(request) => request,
        Err(reason) => return Ok(InvoiceOutcome::Rejected { reason }),
    };
    // Read before anything is created, so OTR never gets an invoice factord cannot document.
    let documents = match read_documents(invoice).await {
        Ok(documents) => documents,
        Err(reason) => return Ok(InvoiceOutcome::Rejected { reason }),
    };
    if let Some(pkey) = &invoice.held_reference {
        // OTR holds this invoice already (accepted, later rejected, retried by ops): its
        // documents go to that invoice; a second `POST invoices` would only answer 409.
        tracing::info!(reference = %pkey, "OTR holds the invoice; adding its documents to it");
        return upload(transport, invoice, pkey, &documents).await;
    }
    let url = transport.url(&[INVOICES_PATH]);
    let reply = authorized(transport, &label("POST", &[INVOICES_PATH]), &|token| {
        transport.client.post(url.clone()).bearer_auth(token).json(&request)
    })
    .await?;
    let pkey = match reply.status.as_u16() {
        // Checked before the other 2xx: a 204's body is empty and not read.
        204 => {
            return Ok(InvoiceOutcome::Rejected {
                reason: format!("broker MC {} is unknown to OTR; nothing was created", request.broker_mc),
            });
        }
        200..=299 => match invoice_pkey(&reply) {
            Some(pkey) => pkey,
            None => {
                return Ok(InvoiceOutcome::Rejected {
                    reason: format!(
                        "OTR took the invoice (HTTP {}) but its answer has no {INVOICE_PKEY}; attach the POD and \
                         rate confirmation in OTR's portal",
                        reply.status
                    ),
                });
            }
        },
        409 => match invoice_pkey(&reply) {
            Some(pkey) => {
                tracing::info!(reference = %pkey, "OTR already holds the invoice (409); uploading its documents");
                pkey
            }
            None => return Ok(InvoiceOutcome::Rejected { reason: conflict_without_id() }),
        },
        402 => {
            return Ok(InvoiceOutcome::Rejected {
                reason: match transport.server_message(&reply) {
                    Some(message) => format!("broker not approved by OTR: {message}"),
                    None => format!("broker MC {} is not approved by OTR (HTTP 402)", request.broker_mc),
                },
            });
        }
        400 => {
            return Ok(InvoiceOutcome::Rejected {
                reason: format!("OTR refused the invoice as an invalid request: {}", transport.status_text(&reply)),
            });
        }
        401..=499 => return Ok(InvoiceOutcome::Rejected { reason: transport.status_text(&reply) }),
        _ => {
            return Ok(InvoiceOutcome::Transient {
                reason: format!("unexpected answer: {}", transport.status_text(&reply)),
            });
        }
    };
    upload(transport, invoice, &pkey, &documents).await
}

/// Uploads each document to the invoice `pkey`; accepted once all are in. A failure after OTR
/// created the invoice is `Transient` (the next attempt gets 409 with the id and uploads again)
/// unless OTR refused the file itself.
async fn upload(
    transport: &ApiTransport<'_>,
    invoice: &BatchInvoice,
    pkey: &str,
    documents: &[Document],
) -> Result<InvoiceOutcome, Halt> {
    let url = transport.url(UPLOAD_PATH);
    let upload_label = label("POST", UPLOAD_PATH);
    let file_name = http::part_file_name(&invoice.invoice_number);
    for document in documents {
        let answer = authorized(transport, &upload_label, &|token| {
            let mut request = transport.client.post(url.clone()).bearer_auth(token);
            // `mime_str` only fails on a malformed literal; then OTR answers 400, said below.
            if let Ok(file) =
                Part::bytes(document.bytes.clone()).file_name(file_name.clone()).mime_str("application/pdf")
            {
                let form = Form::new()
                    .part(UPLOAD_FILE, file)
                    .text(UPLOAD_INVOICE_ID, pkey.to_string())
                    .text(UPLOAD_DOC_TYPE, document.doc_type.to_string())
                    .text(UPLOAD_SEND_EMAIL, UPLOAD_SEND_EMAIL_VALUE)
                    .text(UPLOAD_DOCUMENT_TYPE, UPLOAD_DOCUMENT_TYPE_VALUE);
                request = request.multipart(form);
            }
            request
        })
        .await;
        let reply = match answer {
            Ok(reply) => reply,
            Err(Halt::Failed(failure)) => {
                return Ok(InvoiceOutcome::Transient {
                    reason: format!(
                        "OTR holds invoice {pkey} but the upload of the {} failed ({}); the next attempt uploads it \
                         again",
                        document.label, failure.reason
                    ),
                });
            }
            Err(halt) => return Err(halt),
        };
        match reply.status.as_u16() {
            200..=299 => {}
            413 => {
                return Ok(InvoiceOutcome::Rejected {
                    reason: format!(
                        "OTR holds invoice {pkey} but refused the {} as too large ({} bytes, HTTP 413); make the file \
                         smaller, then retry the load",
                        document.label,
                        document.bytes.len()
                    ),
                });
            }
            400..=499 => {
                return Ok(InvoiceOutcome::Rejected {
                    reason: format!(
                        "OTR holds invoice {pkey} but refused the {} as document type {}: {}",
                        document.label,
                        document.doc_type,
                        transport.status_text(&reply)
                    ),
                });
            }
            _ => {
                return Ok(InvoiceOutcome::Transient {
                    reason: format!(
                        "OTR holds invoice {pkey} but the upload of the {} got {}; the next attempt uploads it again",
                        document.label,
                        transport.status_text(&reply)
                    ),
                });
            }
        }
    }
    Ok(InvoiceOutcome::Accepted { reference: Some(pkey.to_string()) })
}

/// `GET broker-check` by the customer's MC number, then by its DOT number when OTR does not
/// know the MC (404, or 204) or there is none. A broker OTR knows by neither is `Unknown`.
pub(super) async fn check_broker(transport: &ApiTransport<'_>, customer: &Customer) -> Result<CreditAnswer, Halt> {
    let mut tried = Vec::new();
    let queries = [(BROKER_MC_QUERY, "MC", &customer.mc), (BROKER_DOT_QUERY, "DOT", &customer.dot)];
    for (query, kind, value) in queries {
        let Some(number) = value.as_deref().and_then(number) else { continue };
        let reply = broker_check(transport, query, number).await?;
        match reply.status.as_u16() {
            204 | 404 => tried.push(format!("{kind} {number}")),
            200..=299 => {
                return match reply.json().as_ref().and_then(broker_decision) {
                    Some(answer) => Ok(answer),
                    None => Err(Halt::Failed(Failure {
                        kind: FailureKind::Busy,
                        reason: format!(
                            "{}: HTTP {} without a {BROKER_DECISION}",
                            label("GET", BROKER_CHECK_PATH),
                            reply.status
                        ),
                    })),
                };
            }
            400..=499 => {
                return Err(Halt::Batch(ProviderError::Rejected(format!(
                    "OTR refused the broker check by {kind} {number}: {}",
                    transport.status_text(&reply)
                ))));
            }
            _ => {
                return Err(Halt::Failed(Failure {
                    kind: FailureKind::Busy,
                    reason: format!(
                        "{}: unexpected {}",
                        label("GET", BROKER_CHECK_PATH),
                        transport.status_text(&reply)
                    ),
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

async fn broker_check(transport: &ApiTransport<'_>, query: &str, number: u64) -> Result<Reply, Halt> {
    let url = transport.url(BROKER_CHECK_PATH);
    let number = number.to_string();
    authorized(transport, &label("GET", BROKER_CHECK_PATH), &|token| {
        transport.client.get(url.clone()).bearer_auth(token).query(&[(query, number.as_str())])
    })
    .await
}

/// `GET invoices/{invoicePkey}`: OTR's `Status` of the invoice as OTR wrote it (trimmed);
/// `None` when OTR does not know the id (404).
pub(super) async fn invoice_status(transport: &ApiTransport<'_>, pkey: &str) -> Result<Option<String>, Halt> {
    let url = transport.url(&[INVOICES_PATH, pkey]);
    let reply = authorized(transport, &label("GET", &[INVOICES_PATH, pkey]), &|token| {
        transport.client.get(url.clone()).bearer_auth(token)
    })
    .await?;
    match reply.status.as_u16() {
        404 => Ok(None),
        200..=299 => {
            let status =
                reply.json().and_then(|json| json.get(INVOICE_STATUS)?.as_str().map(str::trim).map(String::from));
            match status.filter(|s| !s.is_empty()) {
                Some(status) => Ok(Some(status)),
                None => Err(Halt::Batch(ProviderError::Rejected(format!(
                    "OTR's record of invoice {pkey} has no {INVOICE_STATUS}"
                )))),
            }
        }
        400..=499 => Err(Halt::Batch(ProviderError::Rejected(format!(
            "OTR refused the status request for invoice {pkey}: {}",
            transport.status_text(&reply)
        )))),
        _ => Err(Halt::Failed(Failure {
            kind: FailureKind::Busy,
            reason: format!("{}: unexpected {}", label("GET", &[INVOICES_PATH, pkey]), transport.status_text(&reply)),
        })),
    }
}

/// Proves the credentials without changing anything: a fresh login (`POST auth/token`, which
/// checks the username, the password and the subscription key), then, when the subsidiary has
/// an MC number, `GET broker-check?brokerMc=<its own MC>`, a read-only question any answer of
/// which (200, 204, 404) shows the token is taken.
pub(super) async fn probe(transport: &ApiTransport<'_>, seller_mc: Option<&str>) -> Result<String, Halt> {
    transport.store_token(None);
    log_in(transport).await?;
    let username = transport.settings.username.as_deref().unwrap_or_default();
    let Some(mc) = seller_mc.and_then(number) else {
        return Ok(format!("logged in as {username}; no MC number to ask {} with", label("GET", BROKER_CHECK_PATH)));
    };
    let reply = broker_check(transport, BROKER_MC_QUERY, mc).await?;
    match reply.status.as_u16() {
        200..=299 | 404 => Ok(format!(
            "logged in as {username}; {} answered HTTP {}",
            label("GET", BROKER_CHECK_PATH),
            reply.status.as_u16()
        )),
        _ => Err(Halt::Batch(ProviderError::Rejected(format!(
            "logged in as {username}, but {} answered {}",
            label("GET", BROKER_CHECK_PATH),
            transport.status_text(&reply)
        )))),
    }
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
    let url = transport.url(LOGIN_PATH);
    let login_label = label("POST", LOGIN_PATH);
    let reply = transport
        .execute(&login_label, &|| {
            transport
                .client
                .post(url.clone())
                .header(SUBSCRIPTION_KEY_HEADER, subscription_key.clone())
                .form(&[(LOGIN_USERNAME, username), (LOGIN_PASSWORD, password.expose_secret())])
        })
        .await?;
    match reply.status.as_u16() {
        200..=299 => {
            let json = reply.json();
            let token = json.as_ref().and_then(|j| j.get(ACCESS_TOKEN)?.as_str()).filter(|t| !t.is_empty());
            let Some(value) = token else {
                return Err(Halt::Batch(ProviderError::Auth(format!(
                    "OTR login for user {username} answered {} without an {ACCESS_TOKEN}",
                    reply.status
                ))));
            };
            let lifetime = json.as_ref().and_then(|j| j.get(EXPIRES_IN)?.as_u64());
            let value = SecretString::from(value.to_string());
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
            reason: format!("{login_label}: unexpected {}", transport.status_text(&reply)),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::batch::BatchSeller;
    use serde_json::json;
    use std::path::PathBuf;

    fn batch(invoice: BatchInvoice) -> Batch {
        Batch {
            id: "b-1".into(),
            number: 1,
            date: "2026-11-20".into(),
            uid: Some("0123456789abcdef".into()),
            seller: BatchSeller { id: "acme".into(), name: "ACME".into(), usdot: Some("1234567".into()), mc: None },
            provider: crate::providers::find_provider("otr").expect("otr"),
            invoices: vec![invoice],
        }
    }

    fn invoice() -> BatchInvoice {
        BatchInvoice {
            invoice_number: "AE-1".into(),
            load_number: "L-1".into(),
            idempotency_key: "b-1:AE-1".into(),
            amount: Money::from_cents(245_050),
            invoice_date: "2026-11-20".into(),
            customer_id: "BRK-1".into(),
            customer_name: "Blue".into(),
            customer_mc: Some("MC-012345".into()),
            customer_dot: None,
            customer_factoring_id: None,
            po_number: Some("PO-9".into()),
            reference_number: None,
            truck: None,
            pickup: None,
            delivery: None,
            pickup_city: Some("Dallas".into()),
            pickup_state: Some("tx".into()),
            delivery_city: Some("Tulsa".into()),
            delivery_state: Some("OK".into()),
            delivered_at: None,
            packet: PathBuf::from("/nonexistent/packet.pdf"),
            pod: None,
            rate_confirmation: None,
            extra_documents: Vec::new(),
            held_reference: None,
        }
    }

    #[test]
    fn the_invoice_body_has_exactly_otrs_names_and_types() {
        let invoice = invoice();
        let batch = batch(invoice.clone());
        let body = serde_json::to_string(&invoice_request(&batch, &invoice).expect("request")).expect("json");
        assert_eq!(
            body,
            r#"{"InvoiceNo":"AE-1","BrokerMC":12345,"ClientDOT":1234567,"InvoiceAmount":2450.50,"InvoiceDate":"2026-11-20","PoNumber":"PO-9","FromCity":"Dallas","FromState":"TX","ToCity":"Tulsa","ToState":"OK"}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(parsed["InvoiceAmount"].as_f64(), Some(2450.5));
    }

    #[test]
    fn a_missing_lane_mc_or_usdot_is_refused_naming_it() {
        let mut no_lane = invoice();
        no_lane.delivery_city = None;
        no_lane.pickup_state = Some("Texas".into());
        let reason = invoice_request(&batch(no_lane.clone()), &no_lane).err().expect("refused");
        assert!(reason.contains("delivery_city missing") && reason.contains("pickup_state `Texas`"), "{reason}");
        let mut no_mc = invoice();
        no_mc.customer_mc = Some("MC-".into());
        assert!(invoice_request(&batch(no_mc.clone()), &no_mc).err().expect("refused").contains("customer_mc"));
        let mut without_usdot = batch(invoice());
        without_usdot.seller.usdot = None;
        let invoice = invoice();
        assert!(invoice_request(&without_usdot, &invoice).err().expect("refused").contains("subsidiary.usdot"));
    }

    #[test]
    fn broker_messages_map_to_results_with_otrs_words() {
        let decide = |json: serde_json::Value| broker_decision(&json).map(|a| (a.result, a.text));
        assert_eq!(decide(json!({"message": " approved "})), Some((CreditResult::Approved, "approved".into())));
        assert_eq!(decide(json!({"message": "CALL OFFICE"})), Some((CreditResult::Unknown, "CALL OFFICE".into())));
        assert_eq!(decide(json!({"message": "Not  Approved"})), Some((CreditResult::Declined, "Not Approved".into())));
        assert_eq!(
            decide(json!({"message": "APPROVED with limit"})),
            Some((CreditResult::Unknown, "APPROVED with limit".into()))
        );
        assert_eq!(decide(json!({"status": "APPROVED"})), None);
    }

    #[test]
    fn mc_numbers_keep_their_digits_only() {
        assert_eq!(number("MC-012345"), Some(12345));
        assert_eq!(number(" 123456 "), Some(123456));
        assert_eq!(number("none"), None);
    }
}
