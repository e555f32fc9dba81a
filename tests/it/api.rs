//! API transports against HTTP servers on loopback that play the factor: OTR (token login,
//! subscription key, 409/204/402, documents; the fake is [`crate::fakes::api`], shared with the
//! submission fault tests), Apex (schedule + schedule number) and TAFS (factord's own
//! mapping). Each server counts *effective* submissions: an invoice is created once per
//! idempotency key and invoice number, whatever the client resends.

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
use factord::domain::Money;
use factord::providers::api::ApiTransport;
use factord::providers::batch::{Batch, BatchInvoice, BatchSeller, InvoiceOutcome, ProviderError};
use factord::providers::find_provider;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::fakes::api::{
    API_KEY, Otr, OtrInvoice, PASSWORD, PREFIX, SUBSCRIPTION_KEY, Shared, USERNAME, bearer, json_response, lock,
    otr_server, serve,
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
                delivered_at: Some("2026-11-19".to_string()),
                packet,
            }
        })
        .collect();
    Batch {
        id: "batch-7".to_string(),
        number: 7,
        date: "2026-11-20".to_string(),
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

fn transport<'a>(provider: &str, settings: &'a ApiSettings) -> ApiTransport<'a> {
    ApiTransport::new(find_provider(provider).expect("provider"), settings).expect("transport")
}

fn outcome<'r>(receipt: &'r factord::providers::batch::BatchReceipt, number: &str) -> &'r InvoiceOutcome {
    &receipt.outcomes.iter().find(|(n, _)| n == number).expect("an outcome per invoice").1
}

fn accepted(reference: &str) -> InvoiceOutcome {
    InvoiceOutcome::Accepted { reference: Some(reference.to_string()) }
}

fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "a secret leaked into: {text}");
    }
}

// ---- OTR tests --------------------------------------------------------------------------------

#[tokio::test]
async fn otr_happy_path_logs_in_once_and_uploads_the_packets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr::default()).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1", "AE-2"]);

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert_eq!(receipt.outcomes, vec![("AE-1".into(), accepted("otr-1")), ("AE-2".into(), accepted("otr-2"))]);
    let otr = lock(&state);
    assert_eq!(otr.logins, 1, "one token for the whole batch");
    assert_eq!(otr.without_subscription_key, 0, "subscription key on every one of {} requests", otr.requests);
    assert_eq!(otr.invoices.len(), 2);
    for invoice in &otr.invoices {
        assert_eq!(invoice.documents, vec![1, 3], "packet uploaded as POD and as rate confirmation");
    }
}

#[tokio::test]
async fn otr_expired_token_is_refreshed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr { expire_first_token: true, ..Otr::default() }).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert_eq!(outcome(&receipt, "AE-1"), &accepted("otr-1"));
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
async fn otr_duplicate_is_accepted_with_the_existing_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut otr = Otr::default();
    // Already at OTR (sent by hand), documents and all.
    otr.invoices.push(OtrInvoice { id: "otr-77".into(), number: "AE-1".into(), documents: vec![1, 3] });
    let (url, state) = otr_server(otr).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert_eq!(outcome(&receipt, "AE-1"), &accepted("otr-77"));
    let otr = lock(&state);
    assert_eq!(otr.invoices.len(), 1, "no duplicate");
    assert_eq!(otr.document_posts, 0, "OTR shows both documents already");
}

#[tokio::test]
async fn otr_unknown_broker_mc_is_rejected_naming_the_mc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr { unknown_mc: Some("123456".into()), ..Otr::default() }).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert_eq!(
        outcome(&receipt, "AE-1"),
        &InvoiceOutcome::Rejected { reason: "broker MC 123456 is unknown to OTR".into() }
    );
    let otr = lock(&state);
    assert_eq!((otr.invoices.len(), otr.document_posts), (0, 0));
}

#[tokio::test]
async fn otr_unapproved_broker_is_rejected_with_otrs_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, _state) = otr_server(Otr { unapproved_mc: Some("123456".into()), ..Otr::default() }).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    match outcome(&receipt, "AE-1") {
        InvoiceOutcome::Rejected { reason } => {
            assert!(reason.contains("Broker MC 123456 is not approved for factoring"), "{reason}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn otr_500_is_retried_and_the_invoice_created_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr { fail_500: 1, ..Otr::default() }).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    let receipt = transport("otr", &settings).send(&batch).await.expect("sent");

    assert_eq!(outcome(&receipt, "AE-1"), &accepted("otr-1"));
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
    assert_eq!(outcome(&receipt, "AE-1"), &accepted("otr-1"));
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
    assert_eq!(outcome(&receipt, "AE-2"), &accepted("otr-1"));
    assert!(started.elapsed() < Duration::from_secs(10), "bounded: {:?}", started.elapsed());
    assert_eq!(lock(&state).invoices.len(), 1);
}

#[tokio::test]
async fn otr_unreachable_for_every_invoice_is_a_transient_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let settings = settings(&format!("http://{address}{PREFIX}"));
    let batch = batch("otr", dir.path(), &["AE-1", "AE-2"]);

    let error = transport("otr", &settings).with_retries(1).send(&batch).await.expect_err("unreachable");

    assert!(matches!(error, ProviderError::Transient(_)), "{error:?}");
    assert_no_secret(&error.to_string());
}

#[tokio::test]
async fn otr_reconcile_finds_what_was_committed_before_the_crash() {
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

    assert_eq!(outcome(&receipt, "AE-1"), &accepted("otr-1"));
    let otr = lock(&state);
    assert_eq!(otr.invoices.len(), 1, "one effective submission");
    assert_eq!(otr.invoice_posts, 1, "found by lookup, not resent");
    assert_eq!(otr.invoices[0].documents, vec![1, 3], "the packet the crash cut off was uploaded");
}

#[tokio::test]
async fn otr_reconcile_resends_what_otr_does_not_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, state) = otr_server(Otr::default()).await;
    let settings = settings(&url);
    let batch = batch("otr", dir.path(), &["AE-1"]);

    let receipt = transport("otr", &settings).reconcile(&batch).await.expect("reconciled").expect("can tell");

    assert_eq!(outcome(&receipt, "AE-1"), &accepted("otr-1"));
    let otr = lock(&state);
    assert_eq!(otr.invoices.len(), 1);
    assert_eq!(otr.by_key.get("batch-7:AE-1").map(String::as_str), Some("otr-1"), "sent with the stored key");
}

// ---- Apex -------------------------------------------------------------------------------------

#[derive(Default)]
struct Apex {
    schedule_posts: u32,
    /// externalId → (schedule id, invoice numbers)
    schedules: Vec<(String, String, Vec<String>)>,
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
    if let Some((_, id, _)) = apex.schedules.iter().find(|(e, _, _)| *e == external) {
        return json_response(StatusCode::CONFLICT, json!({"id": id}));
    }
    let id = format!("S{}", apex.schedules.len() + 1);
    apex.schedules.push((external, id.clone(), numbers.clone()));
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

// ---- TAFS (factord's own mapping) -------------------------------------------------------------

#[derive(Default)]
struct Tafs {
    by_key: HashMap<String, String>,
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

async fn tafs_server(tafs: Tafs) -> (String, Shared<Tafs>) {
    let state = Arc::new(Mutex::new(tafs));
    let routes = Router::new().route("/invoices", post(tafs_create)).with_state(state.clone());
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
#[allow(dead_code)]
fn send_is_send<'a>(transport: &'a ApiTransport<'a>, batch: &'a Batch) -> impl Future + Send + 'a {
    transport.send(batch)
}
