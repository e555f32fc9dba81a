//! API transports against HTTP servers on loopback that play the factor: OTR (its published
//! contract: token login, subscription key, the exact invoice body, 409/204/402/413, documents by
//! type, invoice status; the stand-in is [`crate::fakes::api`], shared with the submission fault
//! tests), Apex (schedule + schedule number) and TAFS (factord's own mapping). Each server counts
//! *effective* submissions: an invoice is created once (OTR: per USDOT and invoice number;
//! the others: per idempotency key and invoice number), whatever the client resends.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use factord::config::ApiSettings;
use factord::domain::{CreditResult, Customer, Money};
use factord::providers::api::ApiTransport;
use factord::providers::batch::{Batch, BatchInvoice, BatchSeller, InvoiceOutcome, ProviderError};
use factord::providers::find_provider;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::fakes::api::{
    API_KEY, BrokerAnswer, Otr, OtrInvoice, PASSWORD, PREFIX, SUBSCRIPTION_KEY, Shared, USERNAME, bearer,
    json_response, lock, otr_server, pkey, serve,
};

const SECRETS: [&str; 3] = [PASSWORD, SUBSCRIPTION_KEY, API_KEY];

// ---- Fixtures ---------------------------------------------------------------------------------

fn settings(base_url: &str) -> ApiSettings {
    ApiSettings {
        base_url: base_url.to_string(),
        username: Some(USERNAME.to_string()),
        password: Some(SecretString::from(PASSWORD)),
        subscription_key: Some(SecretString::from(SUBSCRIPTION_KEY)),
        api_key: Some(SecretString::from(API_KEY)),
        client_id: Some("SJ-CLIENT-42".to_string()),
        timeout: Duration::from_secs(30),
    }
}

/// A batch of `numbers` for `provider`, each with a packet written into `dir`.
fn batch(provider: &str, dir: &Path, numbers: &[&str]) -> Batch {
    let invoices = numbers
        .iter()
        .map(|number| {
            let packet = dir.join(format!("{number}.pdf"));
            std::fs::write(&packet, format!("%PDF-1.4 packet of {number}\n%%EOF\n")).expect("write packet");
            BatchInvoice {
                invoice_number: number.to_string(),
                load_number: format!("L-{number}"),
                idempotency_key: format!("batch-7:{number}"),
                amount: Money::from_cents(245_050),
                invoice_date: "2026-11-20".to_string(),
                customer_id: "BRK-1".to_string(),
                customer_name: "Blue River Logistics".to_string(),
                customer_mc: Some("123456".to_string()),
                customer_dot: Some("7654321".to_string()),
                customer_factoring_id: Some("TAFS-DEBTOR-9".to_string()),
                po_number: Some(format!("PO-{number}")),
                reference_number: None,
                truck: Some("T-12".to_string()),
                pickup: Some("Dallas, TX".to_string()),
                delivery: Some("Tulsa, OK".to_string()),
                pickup_city: Some("Dallas".to_string()),
                pickup_state: Some("TX".to_string()),
                delivery_city: Some("Tulsa".to_string()),
                delivery_state: Some("OK".to_string()),
                delivered_at: Some("2026-11-19".to_string()),
                packet,
                pod: None,
                rate_confirmation: None,
                extra_documents: Vec::new(),
                held_reference: None,
            }
        })
        .collect();
    Batch {
        id: "batch-7".to_string(),
        number: 7,
        date: "2026-11-20".to_string(),
        uid: Some("0123456789abcdef".to_string()),
        seller: BatchSeller {
            id: "acme-east".to_string(),
            name: "ACME Freight East LLC".to_string(),
            usdot: Some("1234567".to_string()),
            mc: Some("765432".to_string()),
        },
        provider: find_provider(provider).expect("provider"),
        invoices,
    }
}

/// The subsidiary's USDOT in [`batch`], as OTR keys invoices by it.
const CLIENT_DOT: u64 = 1_234_567;

fn transport<'a>(provider: &str, settings: &'a ApiSettings) -> ApiTransport<'a> {
    ApiTransport::new(find_provider(provider).expect("provider"), settings).expect("transport")
}

fn outcome<'r>(receipt: &'r factord::providers::batch::BatchReceipt, number: &str) -> &'r InvoiceOutcome {
    &receipt.outcomes.iter().find(|(n, _)| n == number).expect("an outcome per invoice").1
}

fn accepted(reference: &str) -> InvoiceOutcome {
    InvoiceOutcome::Accepted { reference: Some(reference.to_string()) }
}

fn rejection(outcome: &InvoiceOutcome) -> &str {
    match outcome {
        InvoiceOutcome::Rejected { reason } => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "a secret leaked into: {text}");
    }
}

/// A base URL where nothing listens.
fn unreachable_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{address}{PREFIX}")
}

/// A one-page PDF whose text is `text`, as a scanned POD or a rate confirmation would carry.
fn pdf_with_text(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            .to_string(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    pdf
}

/// The text of every page of a PDF the fake received.
fn pdf_text(bytes: &[u8]) -> String {
    let document = lopdf::Document::load_mem(bytes).expect("a PDF");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    document.extract_text(&pages).expect("text")
}

// ---- OTR: the invoice ---------------------------------------------------------------------------

#[tokio::test]
async fn otr_happy_path_logs_in_once_and_uploads_the_packets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr::default()).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1", "AE-2"]);

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert_eq!(receipt.outcomes, vec![("AE-1".into(), accepted(&pkey(1))), ("AE-2".into(), accepted(&pkey(2)))]);
    let otr = lock(&state);
    assert_eq!(otr.logins, 1, "one token for the whole batch");
    assert_eq!(otr.without_subscription_key, 0, "subscription key on every one of {} requests", otr.requests);
    assert_eq!(otr.bad_requests, 0, "nothing OTR calls an invalid request");
    assert_eq!(otr.invoices.len(), 2);
    for invoice in &otr.invoices {
        assert_eq!(invoice.documents, vec![1, 3], "no separate files: the packet as POD and as rate confirmation");
        assert!(invoice.files.iter().all(|f| f.starts_with(b"%PDF-1.4 packet of AE-")), "the packet's bytes");
    }
}

#[tokio::test]
async fn otr_receives_exactly_the_documented_fields_and_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr::default()).await;
    let settings = settings(&url);
    let mut batch = batch("otr", dir.path(), &["AE-1"]);
    batch.invoices[0].customer_mc = Some("MC-0123456".to_string());
    batch.invoices[0].po_number = None;

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert_eq!(outcome(&receipt, "AE-1"), &accepted(&pkey(1)));
    let otr = lock(&state);
    let raw = &otr.invoice_bodies[0];
    // The exchange as it went over the wire (`--nocapture` shows it).
    println!("POST {PREFIX}/invoices HTTP/1.1");
    for (name, value) in &otr.invoice_headers[0] {
        println!("{name}: {value}");
    }
    println!("\n{raw}\n\nHTTP/1.1 201 Created\n{}", otr.invoice_answers[0]);
    assert!(raw.contains(r#""InvoiceAmount":2450.50"#), "dollars with cents, as a number: {raw}");
    let body: Value = serde_json::from_str(raw).expect("JSON");
    let mut keys: Vec<&str> = body.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "BrokerMC",
            "ClientDOT",
            "FromCity",
            "FromState",
            "InvoiceAmount",
            "InvoiceDate",
            "InvoiceNo",
            "ToCity",
            "ToState"
        ],
        "no PoNumber when there is none, no TermPkey/Weight/Miles/Notes"
    );
    assert_eq!(
        body,
        json!({
            "InvoiceNo": "AE-1",
            "BrokerMC": 123456,
            "ClientDOT": CLIENT_DOT,
            "InvoiceAmount": 2450.5,
            "InvoiceDate": "2026-11-20",
            "FromCity": "Dallas",
            "FromState": "TX",
            "ToCity": "Tulsa",
            "ToState": "OK",
        })
    );
}

/// A change to a good invoice body that OTR must refuse.
type BodyChange = fn(&mut Value);

/// OTR's answer to names it does not take, checked on the stand-in itself: a camelCase name,
/// an extra field, a number sent as text, a missing lane field.
#[tokio::test]
async fn otr_stand_in_answers_any_other_body_with_a_bare_400() {
    let (url, state) = otr_server(Otr::default()).await;
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{url}/auth/token"))
        .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
        .form(&[("username", USERNAME), ("password", PASSWORD)])
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("token");
    let token = token["access_token"].as_str().expect("access_token").to_string();
    let good = json!({
        "InvoiceNo": "AE-1", "BrokerMC": 123456, "ClientDOT": CLIENT_DOT, "InvoiceAmount": 10.5,
        "InvoiceDate": "2026-11-20", "FromCity": "Dallas", "FromState": "TX", "ToCity": "Tulsa", "ToState": "OK",
    });
    let variants: [(&str, BodyChange); 4] = [
        ("camelCase", |b| {
            let number = b.as_object_mut().expect("object").remove("InvoiceNo");
            b["invoiceNo"] = number.unwrap_or_default();
        }),
        ("extra field", |b| b["CarrierUsdot"] = json!(1)),
        ("number as text", |b| b["BrokerMC"] = json!("123456")),
        ("lane missing", |b| {
            b.as_object_mut().expect("object").remove("ToState");
        }),
    ];
    for (what, change) in variants {
        let mut body = good.clone();
        change(&mut body);
        let reply = client
            .post(format!("{url}/invoices"))
            .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .expect("answer");
        assert_eq!(reply.status().as_u16(), 400, "{what}");
        assert_eq!(reply.text().await.expect("body"), "Invalid Request", "{what}: no field named");
    }
    let query = client
        .get(format!("{url}/broker-check?mcNumber=123456"))
        .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
        .bearer_auth(&token)
        .send()
        .await
        .expect("answer");
    assert_eq!(query.status().as_u16(), 400, "unknown query name");
    let otr = lock(&state);
    assert_eq!((otr.bad_requests, otr.invoices.len()), (5, 0));
}

#[tokio::test]
async fn otr_lane_missing_is_refused_without_a_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr::default()).await;
    let settings = settings(&url);
    let mut batch = batch("otr", dir.path(), &["AE-1"]);
    batch.invoices[0].delivery_state = None;

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert!(rejection(outcome(&receipt, "AE-1")).contains("delivery_state missing"), "{receipt:?}");
    assert_eq!(lock(&state).requests, 0, "OTR saw nothing");
}

#[tokio::test]
async fn otr_separate_pod_and_rate_confirmation_go_as_types_1_and_3_and_the_packet_as_7() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr::default()).await;
    let settings = settings(&url);
    let mut batch = batch("otr", dir.path(), &["AE-1", "AE-2"]);
    let (pod, rc) = (dir.path().join("pod.pdf"), dir.path().join("rc.pdf"));
    std::fs::write(&pod, pdf_with_text("PROOF OF DELIVERY L-1")).expect("pod");
    std::fs::write(&rc, pdf_with_text("RATE CONFIRMATION L-1")).expect("rc");
    batch.invoices[0].pod = Some(pod);
    batch.invoices[0].rate_confirmation = Some(rc);
    // AE-2 names a POD file that has gone: the packet stands in for it.
    batch.invoices[1].pod = Some(dir.path().join("gone.pdf"));
    batch.invoices[1].rate_confirmation = Some(dir.path().join("rc.pdf"));

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert_eq!(outcome(&receipt, "AE-1"), &accepted(&pkey(1)));
    assert_eq!(outcome(&receipt, "AE-2"), &accepted(&pkey(2)));
    let otr = lock(&state);
    let first = &otr.invoices[0];
    assert_eq!(first.documents, [1, 3, 7]);
    assert!(pdf_text(&first.files[0]).contains("PROOF OF DELIVERY L-1"), "type 1 is the POD file");
    assert!(pdf_text(&first.files[1]).contains("RATE CONFIRMATION L-1"), "type 3 is the rate confirmation");
    assert!(first.files[2].starts_with(b"%PDF-1.4 packet of AE-1"), "type 7 is the packet");
    let second = &otr.invoices[1];
    assert_eq!(second.documents, [1, 3]);
    assert!(second.files[0].starts_with(b"%PDF-1.4 packet of AE-2"), "the packet stands in for the POD");
    assert!(pdf_text(&second.files[1]).contains("RATE CONFIRMATION"));
}

#[tokio::test]
async fn otr_expired_token_is_refreshed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr { expire_first_token: true, ..Otr::default() }).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert_eq!(outcome(&receipt, "AE-1"), &accepted(&pkey(1)));
    let otr = lock(&state);
    assert_eq!(otr.logins, 2);
    assert_eq!(otr.invoices.len(), 1);
}

#[tokio::test]
async fn otr_refused_after_a_refresh_is_an_auth_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr { refuse_tokens: true, ..Otr::default() }).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1", "AE-2"]);

    let error = transport("otr", &settings).send(&batch).await.expect_err("credentials refused");

    assert!(matches!(error, ProviderError::Auth(_)), "{error:?}");
    assert_eq!(lock(&state).logins, 2, "one refresh, then give up");
    assert_no_secret(&error.to_string());
}

#[tokio::test]
async fn otr_409_with_the_id_is_accepted_and_the_documents_uploaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut otr = Otr::default();
    // Already at OTR (an earlier attempt whose answer was lost), without documents.
    otr.invoices.push(OtrInvoice {
        id: "7077".into(),
        number: "AE-1".into(),
        client_dot: CLIENT_DOT,
        ..Default::default()
    });
    let (url, state) = otr_server(otr).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert_eq!(outcome(&receipt, "AE-1"), &accepted("7077"));
    let otr = lock(&state);
    assert_eq!(otr.invoices.len(), 1, "no duplicate");
    assert_eq!(otr.invoices[0].documents, [1, 3], "the documents went to the invoice OTR holds");
}

#[tokio::test]
async fn otr_409_without_an_id_is_rejected_for_a_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut otr = Otr { conflict_without_id: true, ..Otr::default() };
    otr.invoices.push(OtrInvoice {
        id: "7077".into(),
        number: "AE-1".into(),
        client_dot: CLIENT_DOT,
        ..Default::default()
    });
    let (url, state) = otr_server(otr).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    let reason = rejection(outcome(&receipt, "AE-1"));
    assert!(reason.contains("409") && reason.contains("invoicePkey"), "{reason}");
    assert_eq!(lock(&state).document_posts, 0);
}

#[tokio::test]
async fn otr_204_unknown_broker_mc_is_rejected_naming_the_mc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr { unknown_mc: Some("123456".into()), ..Otr::default() }).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert_eq!(
        outcome(&receipt, "AE-1"),
        &InvoiceOutcome::Rejected { reason: "broker MC 123456 is unknown to OTR; nothing was created".into() }
    );
    let otr = lock(&state);
    assert_eq!((otr.invoices.len(), otr.document_posts), (0, 0));
}

#[tokio::test]
async fn otr_402_unapproved_broker_is_rejected_with_otrs_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, _state) = otr_server(Otr { unapproved_mc: Some("123456".into()), ..Otr::default() }).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    let reason = rejection(outcome(&receipt, "AE-1"));
    assert!(reason.contains("Broker MC 123456 is not approved for factoring"), "{reason}");
}

#[tokio::test]
async fn otr_413_is_rejected_with_the_size_and_not_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr { max_file_bytes: Some(10), ..Otr::default() }).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);
    let size = std::fs::metadata(&batch.invoices[0].packet).expect("packet").len();

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    let reason = rejection(outcome(&receipt, "AE-1"));
    assert!(reason.contains(&format!("{size} bytes")) && reason.contains("413"), "{reason}");
    assert_eq!(lock(&state).document_posts, 1, "the same file is not sent again");
}

#[tokio::test]
async fn otr_500_is_retried_and_the_invoice_created_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr { fail_500: 1, ..Otr::default() }).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert_eq!(outcome(&receipt, "AE-1"), &accepted(&pkey(1)));
    let otr = lock(&state);
    assert_eq!(otr.invoice_posts, 2);
    assert_eq!(otr.invoices.len(), 1);
}

#[tokio::test]
async fn otr_429_waits_for_retry_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr { fail_429: 1, ..Otr::default() }).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    // Real time: tokio's paused clock would also advance reqwest's timeouts while the client
    // waits on the socket, so one real second it is.
    let started = Instant::now();
    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert!(started.elapsed() >= Duration::from_millis(950), "waited {:?}", started.elapsed());
    assert_eq!(outcome(&receipt, "AE-1"), &accepted(&pkey(1)));
    assert_eq!(lock(&state).invoices.len(), 1);
}

#[tokio::test]
async fn otr_hanging_request_times_out_as_transient() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr { hang: Some("AE-1".into()), ..Otr::default() }).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1", "AE-2"]);

    let started = Instant::now();
    let receipt = transport("otr", &settings)
        .with_timeout(Duration::from_secs(1))
        .with_retries(1)
        .send(&batch)
        .await
        .expect("sent");

    match outcome(&receipt, "AE-1") {
        InvoiceOutcome::Transient { reason } => assert!(reason.contains("timed out"), "{reason}"),
        other => panic!("expected transient, got {other:?}"),
    }
    assert_eq!(outcome(&receipt, "AE-2"), &accepted(&pkey(1)));
    assert!(started.elapsed() < Duration::from_secs(10), "bounded: {:?}", started.elapsed());
    assert_eq!(lock(&state).invoices.len(), 1);
}

#[tokio::test]
async fn otr_unreachable_for_every_invoice_is_a_transient_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(&unreachable_url());
    let batch = batch("otr", dir.path(), &["AE-1", "AE-2"]);

    let error = transport("otr", &settings).with_retries(1).send(&batch).await.expect_err("unreachable");

    assert!(matches!(error, ProviderError::Transient(_)), "{error:?}");
    assert_no_secret(&error.to_string());
}

#[tokio::test]
async fn otr_reconcile_resends_and_the_409_settles_what_was_committed_before_the_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr { drop_after_commit: true, ..Otr::default() }).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    // The first attempt: OTR commits, the answer never arrives; then the daemon "dies" (the
    // outcome is thrown away, the batch stays `sending`).
    let first = transport("otr", &settings).with_retries(0).send(&batch).await;
    assert!(
        !matches!(&first, Ok(receipt) if matches!(outcome(receipt, "AE-1"), InvoiceOutcome::Accepted { .. })),
        "{first:?}"
    );
    assert_eq!(lock(&state).invoices.len(), 1, "OTR committed");
    lock(&state).drop_after_commit = false;

    // After the restart: a fresh transport reconciles.
    let receipt = transport("otr", &settings).reconcile(&batch).await.expect("reconciled").expect("can tell");

    assert_eq!(outcome(&receipt, "AE-1"), &accepted(&pkey(1)));
    let otr = lock(&state);
    assert_eq!(otr.invoices.len(), 1, "one effective submission");
    assert_eq!(otr.invoice_posts, 2, "resent; OTR answered 409 with its invoicePkey");
    assert_eq!(otr.invoices[0].documents, vec![1, 3], "the documents the crash cut off were uploaded");
}

#[tokio::test]
async fn otr_reconcile_sends_what_otr_does_not_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr::default()).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    let receipt = transport("otr", &settings).reconcile(&batch).await.expect("reconciled").expect("can tell");

    assert_eq!(outcome(&receipt, "AE-1"), &accepted(&pkey(1)));
    let otr = lock(&state);
    assert_eq!(otr.invoices.len(), 1);
    assert_eq!((otr.invoices[0].number.as_str(), otr.invoices[0].client_dot), ("AE-1", CLIENT_DOT));
}

// ---- OTR: broker-check ---------------------------------------------------------------------------

#[tokio::test]
async fn otr_broker_check_asks_by_broker_mc_then_broker_dot_and_reads_the_decision_in_message() {
    let brokers = [
        ("mc:100001", BrokerAnswer::message(" approved ")),
        ("mc:100002", BrokerAnswer::message("CALL OFFICE")),
        ("mc:100003", BrokerAnswer::message("Not Approved")),
        ("mc:100004", BrokerAnswer::message("APPROVED - limit $5,000")),
        ("mc:100005", BrokerAnswer::NoContent),
        ("dot:200005", BrokerAnswer::message("NOT APPROVED")),
        ("dot:200006", BrokerAnswer::message("APPROVED")),
    ];
    let otr = Otr { brokers: brokers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), ..Otr::default() };
    let (url, state) = otr_server(otr).await;
    let settings = settings(&url);
    let transport = transport("otr", &settings);
    let ask = |mc: Option<&str>, dot: Option<&str>| {
        let customer = Customer {
            id: "BRK".to_string(),
            name: "Broker".to_string(),
            mc: mc.map(str::to_string),
            dot: dot.map(str::to_string),
        };
        let transport = &transport;
        async move { transport.check_credit(&customer).await.map(|a| (a.result, a.text)) }
    };

    let answers = [
        (ask(Some("MC-100001"), Some("200001")).await, (CreditResult::Approved, "approved")),
        (ask(Some("100002"), None).await, (CreditResult::Unknown, "CALL OFFICE")),
        (ask(Some("100003"), None).await, (CreditResult::Declined, "Not Approved")),
        (ask(Some("100004"), None).await, (CreditResult::Unknown, "APPROVED - limit $5,000")),
        (ask(Some("100005"), Some("200005")).await, (CreditResult::Declined, "NOT APPROVED")),
        (ask(None, Some("200006")).await, (CreditResult::Approved, "APPROVED")),
    ];
    for (answer, (result, text)) in answers {
        assert_eq!(answer.expect("answered"), (result, text.to_string()));
    }
    let unknown = ask(Some("100009"), Some("200009")).await.expect("answered");
    assert_eq!(unknown, (CreditResult::Unknown, "broker unknown to OTR (MC 100009, DOT 200009)".to_string()));

    let otr = lock(&state);
    assert_eq!(
        otr.broker_checks,
        [
            "mc:100001",
            "mc:100002",
            "mc:100003",
            "mc:100004",
            "mc:100005",
            "dot:200005",
            "dot:200006",
            "mc:100009",
            "dot:200009"
        ],
        "MC first, DOT only when OTR does not know the MC or there is none"
    );
    assert_eq!(otr.bad_requests, 0);
}

// ---- OTR: invoice status and the probe ----------------------------------------------------------

#[tokio::test]
async fn otr_invoice_status_is_otrs_word_for_a_known_pkey_and_none_for_an_unknown_one() {
    let mut otr = Otr::default();
    otr.invoices.push(OtrInvoice {
        id: "1001".into(),
        number: "AE-1".into(),
        client_dot: CLIENT_DOT,
        ..Default::default()
    });
    otr.invoices.push(OtrInvoice {
        id: "1002".into(),
        number: "AE-2".into(),
        client_dot: CLIENT_DOT,
        ..Default::default()
    });
    otr.statuses.insert("1002".into(), " Advance Paid ".into());
    let (url, state) = otr_server(otr).await;
    let settings = settings(&url);
    let transport = transport("otr", &settings);

    assert_eq!(transport.invoice_status("1001").await.expect("status").as_deref(), Some("Pending"));
    assert_eq!(transport.invoice_status("1002").await.expect("status").as_deref(), Some("Advance Paid"));
    assert_eq!(transport.invoice_status("9999").await.expect("answered"), None);
    assert_eq!(lock(&state).status_reads, 3);

    let apex = self::transport("apex", &settings);
    let error = apex.invoice_status("1001").await.expect_err("no status API");
    assert_eq!(error, ProviderError::Rejected("Apex Capital offers no invoice status API".into()));
}

#[tokio::test]
async fn otr_invoice_status_unreachable_is_transient_and_refused_tokens_are_auth() {
    let settings = settings(&unreachable_url());
    let error = transport("otr", &settings).with_retries(0).invoice_status("1001").await.expect_err("down");
    assert!(matches!(error, ProviderError::Transient(_)), "{error:?}");

    let (url, _state) = otr_server(Otr { refuse_tokens: true, ..Otr::default() }).await;
    let settings = self::settings(&url);
    let error = transport("otr", &settings).invoice_status("1001").await.expect_err("refused");
    assert!(matches!(error, ProviderError::Auth(_)), "{error:?}");
}

#[tokio::test]
async fn otr_probe_logs_in_and_asks_broker_check_with_the_subsidiarys_mc() {
    let (url, state) = otr_server(Otr::default()).await;
    let settings = settings(&url);

    let text = transport("otr", &settings).probe(Some("MC-765432")).await.expect("probe");

    assert_eq!(text, "logged in as acme; GET /broker-check answered HTTP 404");
    let otr = lock(&state);
    assert_eq!((otr.logins, otr.broker_checks.as_slice()), (1, ["mc:765432".to_string()].as_slice()));
    assert_eq!((otr.invoice_posts, otr.document_posts), (0, 0), "nothing sent");
}

#[tokio::test]
async fn otr_probe_with_a_wrong_password_is_auth_with_otrs_words_scrubbed() {
    let (url, _state) = otr_server(Otr::default()).await;
    let mut settings = settings(&url);
    settings.username = Some("someone-else".into());

    let error = transport("otr", &settings).probe(None).await.expect_err("refused");

    assert!(matches!(error, ProviderError::Auth(_)), "{error:?}");
    assert!(error.to_string().contains("bad login") && error.to_string().contains("[REDACTED]"), "{error}");
    assert_no_secret(&error.to_string());
}

#[tokio::test]
async fn otr_probe_of_an_unreachable_host_is_transient() {
    let settings = settings(&unreachable_url());

    let error = transport("otr", &settings).with_retries(0).probe(Some("765432")).await.expect_err("down");

    assert!(matches!(error, ProviderError::Transient(_)), "{error:?}");
    assert!(error.to_string().contains("POST /auth/token"), "{error}");
}

// ---- Apex -------------------------------------------------------------------------------------

#[derive(Default)]
struct Apex {
    schedule_posts: u32,
    /// externalId → (schedule id, invoice numbers)
    schedules: Vec<(String, String, Vec<String>)>,
    /// Idempotency-Key of each schedule created, in order: a POST with a known key answers 409
    /// with that key's schedule, whatever its body says.
    keys: Vec<(String, String)>,
    number_lookups: u32,
    documents: Vec<String>,
    unauthorized: u32,
}

fn apex_routes(state: Shared<Apex>) -> Router {
    Router::new()
        .route("/schedules", post(apex_create).get(apex_search))
        .route("/schedules/{id}", get(apex_get))
        .route("/schedules/{id}/invoices/{number}/documents", post(apex_document))
        .with_state(state)
}

fn apex_authorized(apex: &mut Apex, headers: &HeaderMap) -> bool {
    let ok = bearer(headers).as_deref() == Some(API_KEY);
    if !ok {
        apex.unauthorized += 1;
    }
    ok
}

async fn apex_create(State(state): State<Shared<Apex>>, headers: HeaderMap, body: axum::Json<Value>) -> Response {
    let mut apex = lock(&state);
    if !apex_authorized(&mut apex, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    apex.schedule_posts += 1;
    let external = body["externalId"].as_str().unwrap_or_default().to_string();
    let numbers: Vec<String> = body["invoices"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["invoiceNumber"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    if let Some((_, id)) = apex.keys.iter().find(|(k, _)| *k == key) {
        return json_response(StatusCode::CONFLICT, json!({"id": id}));
    }
    if let Some((_, id, _)) = apex.schedules.iter().find(|(e, _, _)| *e == external) {
        return json_response(StatusCode::CONFLICT, json!({"id": id}));
    }
    let id = format!("S{}", apex.schedules.len() + 1);
    apex.schedules.push((external, id.clone(), numbers.clone()));
    apex.keys.push((key, id.clone()));
    let invoices: Vec<Value> =
        numbers.iter().map(|n| json!({"invoiceNumber": n, "status": "accepted", "id": format!("AX-{n}")})).collect();
    json_response(StatusCode::CREATED, json!({"id": id, "scheduleNumber": null, "invoices": invoices}))
}

async fn apex_get(State(state): State<Shared<Apex>>, headers: HeaderMap, UrlPath(id): UrlPath<String>) -> Response {
    let mut apex = lock(&state);
    if !apex_authorized(&mut apex, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    apex.number_lookups += 1;
    // The number is assigned a moment after creation: the first look finds none.
    let number = (apex.number_lookups > 1).then(|| "SCH-1001".to_string());
    match apex.schedules.iter().find(|(_, i, _)| *i == id) {
        Some((external, _, numbers)) => {
            let invoices: Vec<Value> = numbers
                .iter()
                .map(|n| {
                    let documents: Vec<&String> = apex.documents.iter().filter(|d| *d == n).collect();
                    json!({"invoiceNumber": n, "status": "accepted", "id": format!("AX-{n}"), "documents": documents})
                })
                .collect();
            let record = json!({"id": id, "externalId": external, "scheduleNumber": number, "invoices": invoices});
            json_response(StatusCode::OK, record)
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn apex_search(
    State(state): State<Shared<Apex>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut apex = lock(&state);
    if !apex_authorized(&mut apex, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let external = query.get("externalId").cloned().unwrap_or_default();
    let found: Vec<Value> = apex
        .schedules
        .iter()
        .filter(|(e, _, _)| *e == external)
        .map(|(e, id, _)| json!({"id": id, "externalId": e}))
        .collect();
    json_response(StatusCode::OK, json!({"schedules": found}))
}

async fn apex_document(
    State(state): State<Shared<Apex>>,
    headers: HeaderMap,
    UrlPath((_id, number)): UrlPath<(String, String)>,
    body: Bytes,
) -> Response {
    let mut apex = lock(&state);
    if !apex_authorized(&mut apex, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if !String::from_utf8_lossy(&body).contains(&format!("%PDF-1.4 packet of {number}")) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    apex.documents.push(number);
    StatusCode::CREATED.into_response()
}

#[tokio::test]
async fn apex_schedule_number_becomes_the_batch_reference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = Arc::new(Mutex::new(Apex::default()));
    let url = serve(apex_routes(state.clone())).await;
    let settings = settings(&url);
    let batch = batch("apex", dir.path(), &["AE-1", "AE-2"]);

    let receipt = transport("apex", &settings).send(&batch).await.expect("sent");

    assert_eq!(receipt.reference.as_deref(), Some("SCH-1001"));
    assert_eq!(outcome(&receipt, "AE-1"), &accepted("AX-AE-1"));
    assert_eq!(outcome(&receipt, "AE-2"), &accepted("AX-AE-2"));
    let apex = lock(&state);
    assert_eq!(apex.schedule_posts, 1);
    assert!(apex.number_lookups >= 2, "polled until assigned");
    assert_eq!(apex.documents, vec!["AE-1".to_string(), "AE-2".to_string()]);
    assert_eq!(apex.unauthorized, 0);
}

#[tokio::test]
async fn apex_reconcile_finds_the_schedule_instead_of_resending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = Arc::new(Mutex::new(Apex::default()));
    let url = serve(apex_routes(state.clone())).await;
    let settings = settings(&url);
    let batch = batch("apex", dir.path(), &["AE-1"]);
    transport("apex", &settings).send(&batch).await.expect("sent");

    let receipt = transport("apex", &settings).reconcile(&batch).await.expect("reconciled").expect("can tell");

    assert_eq!(receipt.reference.as_deref(), Some("SCH-1001"));
    assert_eq!(outcome(&receipt, "AE-1"), &accepted("AX-AE-1"));
    let apex = lock(&state);
    assert_eq!(apex.schedule_posts, 1, "found by externalId, not resent");
    assert_eq!(apex.documents, vec!["AE-1".to_string()], "Apex shows the packet; not uploaded again");
}

#[tokio::test]
async fn apex_a_batch_after_a_database_reset_gets_its_own_schedule_and_an_old_batch_keeps_its_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = Arc::new(Mutex::new(Apex::default()));
    let url = serve(apex_routes(state.clone())).await;
    let settings = settings(&url);
    let before = batch("apex", dir.path(), &["AE-1"]);
    transport("apex", &settings).send(&before).await.expect("sent");
    // The database is replaced: the next batch is `batch-7` again, with a new uid.
    let mut after = batch("apex", dir.path(), &["AE-1", "AE-2"]);
    after.uid = Some("fedcba9876543210".to_string());

    let receipt = transport("apex", &settings).send(&after).await.expect("sent");

    {
        let apex = lock(&state);
        assert_eq!(apex.schedule_posts, 2);
        let externals: Vec<&str> = apex.schedules.iter().map(|(e, _, _)| e.as_str()).collect();
        assert_eq!(externals, ["batch-7-0123456789abcdef", "batch-7-fedcba9876543210"]);
        let keys: Vec<&str> = apex.keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, externals, "the idempotency key is the external id");
        assert_eq!(apex.schedules[1].2, ["AE-1", "AE-2"], "a schedule of its own, not the earlier one");
    }
    assert_eq!(outcome(&receipt, "AE-2"), &accepted("AX-AE-2"));
    let reconciled = transport("apex", &settings).reconcile(&after).await.expect("reconciled").expect("can tell");
    assert_eq!(reconciled.outcomes.len(), 2);
    assert_eq!(lock(&state).schedule_posts, 2, "the new batch is found under its own external id");

    // A batch written before batches had uids was sent as `batch-3`: reconciliation finds it so.
    lock(&state).schedules.push(("batch-3".into(), "S9".into(), vec!["AE-9".into()]));
    let mut old = batch("apex", dir.path(), &["AE-9"]);
    old.id = "batch-3".to_string();
    old.uid = None;
    assert_eq!(old.external_id(), "batch-3");
    transport("apex", &settings).reconcile(&old).await.expect("reconciled").expect("can tell");
    assert_eq!(lock(&state).schedule_posts, 2, "found by its batch id, not resent");
}

#[tokio::test]
async fn apex_probe_searches_schedules_and_a_wrong_key_is_auth() {
    let state = Arc::new(Mutex::new(Apex::default()));
    let url = serve(apex_routes(state.clone())).await;
    let settings = settings(&url);

    let text = transport("apex", &settings).probe(None).await.expect("probe");

    assert_eq!(text, "API key taken; schedule search answered HTTP 200");
    assert_eq!(lock(&state).schedule_posts, 0, "nothing sent");
    let mut wrong = self::settings(&url);
    wrong.api_key = Some(SecretString::from("not-the-key"));
    let error = transport("apex", &wrong).probe(None).await.expect_err("refused");
    assert!(matches!(error, ProviderError::Auth(_)), "{error:?}");
}

// ---- TAFS (factord's own mapping) -------------------------------------------------------------

#[derive(Default)]
struct Tafs {
    by_key: HashMap<String, String>,
    /// Invoice ids documents were added to, one per `POST invoices/{id}/documents`.
    documents: Vec<String>,
    /// Echo the Authorization header in a 400, as a careless server might.
    echo_credentials: bool,
}

async fn tafs_create(State(state): State<Shared<Tafs>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut tafs = lock(&state);
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    if tafs.echo_credentials {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"message": format!("unexpected header {authorization}")}),
        );
    }
    if bearer(&headers).as_deref() != Some(API_KEY) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let text = String::from_utf8_lossy(&body);
    if !(text.contains("name=\"invoice\"") && text.contains("\"truckNumber\":\"T-12\"") && text.contains("%PDF-1.4")) {
        return json_response(StatusCode::BAD_REQUEST, json!({"message": "invoice JSON and packet required"}));
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let next = format!("T-{}", tafs.by_key.len() + 1);
    let id = tafs.by_key.entry(key).or_insert(next).clone();
    json_response(StatusCode::CREATED, json!({"invoiceId": id}))
}

/// `POST invoices/{id}/documents`: a packet added to an invoice TAFS holds.
async fn tafs_documents(
    State(state): State<Shared<Tafs>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    let mut tafs = lock(&state);
    if bearer(&headers).as_deref() != Some(API_KEY) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if !tafs.by_key.values().any(|known| *known == id) {
        return json_response(StatusCode::NOT_FOUND, json!({"message": "no such invoice"}));
    }
    let text = String::from_utf8_lossy(&body);
    if !(text.contains("name=\"packet\"") && text.contains("%PDF-1.4")) {
        return json_response(StatusCode::BAD_REQUEST, json!({"message": "packet required"}));
    }
    tafs.documents.push(id);
    json_response(StatusCode::OK, json!({"message": "documents added"}))
}

async fn tafs_server(tafs: Tafs) -> (String, Shared<Tafs>) {
    let state = Arc::new(Mutex::new(tafs));
    let routes = Router::new()
        .route("/invoices", post(tafs_create))
        .route("/invoices/{id}/documents", post(tafs_documents))
        .with_state(state.clone());
    (serve(routes).await, state)
}

#[tokio::test]
async fn tafs_load_without_truck_is_rejected_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = tafs_server(Tafs::default()).await;
    let settings = settings(&url);
    let mut batch = batch("tafs", dir.path(), &["AE-1", "AE-2"]);
    batch.invoices[0].truck = None;

    let receipt = transport("tafs", &settings).send(&batch).await.expect("sent");

    match outcome(&receipt, "AE-1") {
        InvoiceOutcome::Rejected { reason } => assert!(reason.contains("`truck`"), "{reason}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(outcome(&receipt, "AE-2"), &accepted("T-1"));
    assert_eq!(lock(&state).by_key.len(), 1);
}

#[tokio::test]
async fn tafs_gets_the_documents_of_a_retried_invoice_it_holds_not_a_second_invoice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = tafs_server(Tafs::default()).await;
    let settings = settings(&url);
    let first = batch("tafs", dir.path(), &["AE-1"]);
    let receipt = transport("tafs", &settings).send(&first).await.expect("sent");
    assert_eq!(outcome(&receipt, "AE-1"), &accepted("T-1"));

    // Retried after TAFS rejected it: a new batch (new idempotency key), TAFS's id known.
    let mut again = batch("tafs", dir.path(), &["AE-1"]);
    again.id = "b-2".into();
    again.invoices[0].idempotency_key = "b-2:AE-1".into();
    again.invoices[0].held_reference = Some("T-1".into());
    let receipt = transport("tafs", &settings).send(&again).await.expect("sent");

    assert_eq!(outcome(&receipt, "AE-1"), &accepted("T-1"));
    let tafs = lock(&state);
    assert_eq!(tafs.by_key.len(), 1, "no second invoice");
    assert_eq!(tafs.documents, ["T-1"]);
}

// ---- Secrets ----------------------------------------------------------------------------------

#[tokio::test]
async fn secrets_never_appear_in_debug_or_errors() {
    let dir = tempfile::tempdir().expect("tempdir");

    // Debug of the transport and of the settings.
    let settings = settings("https://factor.example.com/api");
    for provider in ["otr", "apex", "saint_johns", "tafs", "trufunding"] {
        let transport = transport(provider, &settings);
        assert_no_secret(&format!("{transport:?}"));
    }
    assert_no_secret(&format!("{settings:?}"));

    // A login refused by a server that echoes the password and key back.
    let (url, _state) = otr_server(Otr::default()).await;
    let mut wrong = self::settings(&url);
    wrong.username = Some("someone-else".into());
    let error = transport("otr", &wrong).send(&batch("otr", dir.path(), &["AE-1"])).await.expect_err("refused");
    assert!(matches!(error, ProviderError::Auth(_)), "{error:?}");
    assert!(error.to_string().contains("[REDACTED]"), "the echo was scrubbed: {error}");
    assert_no_secret(&error.to_string());
    assert_no_secret(&format!("{error:?}"));

    // A per-invoice refusal echoing the Authorization header.
    let (url, _state) = tafs_server(Tafs { echo_credentials: true, ..Tafs::default() }).await;
    let settings = self::settings(&url);
    let receipt = transport("tafs", &settings).send(&batch("tafs", dir.path(), &["AE-1"])).await.expect("sent");
    assert!(matches!(outcome(&receipt, "AE-1"), InvoiceOutcome::Rejected { .. }));
    assert_no_secret(&format!("{receipt:?}"));

    // Configuration errors.
    let plain = self::settings("http://factor.example.com/api");
    let error = ApiTransport::new(find_provider("otr").expect("otr"), &plain).expect_err("plain http refused");
    assert!(matches!(error, ProviderError::Auth(_)), "{error:?}");
    let mut missing = self::settings("https://factor.example.com/api");
    missing.subscription_key = None;
    let error = ApiTransport::new(find_provider("otr").expect("otr"), &missing).expect_err("key missing");
    assert!(error.to_string().contains("subscription_key"), "{error}");
}

/// Keeps the helper signature honest for futures used across awaits (the daemon spawns sends).
#[allow(dead_code, reason = "compiled, never called: the check is that it type-checks")]
fn send_is_send<'a>(transport: &'a ApiTransport<'a>, batch: &'a Batch) -> impl Future + Send + 'a {
    transport.send(batch)
}
