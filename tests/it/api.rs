//! API transports against HTTP servers on loopback that play the factor: OTR (token login,
//! subscription key, 409/204/402, documents), Apex (schedule + schedule number) and TAFS
//! (factord's own mapping). Each server counts *effective* submissions: an invoice is created
//! once per idempotency key and invoice number, whatever the client resends.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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

const USERNAME: &str = "acme";
const PASSWORD: &str = "pw-Hunter2-otr-secret";
const SUBSCRIPTION_KEY: &str = "sub-4f1d9c-apim-secret";
const API_KEY: &str = "key-7a7a7a-api-secret";
const SECRETS: [&str; 3] = [PASSWORD, SUBSCRIPTION_KEY, API_KEY];
/// The servers live under a path, as OTR's does, to prove endpoints are appended to it.
const PREFIX: &str = "/carrier-tms/2";

// ---- Fixtures ---------------------------------------------------------------------------------

fn settings(base_url: &str) -> ApiSettings {
    ApiSettings {
        base_url: base_url.to_string(),
        username: Some(USERNAME.to_string()),
        password: Some(SecretString::from(PASSWORD)),
        subscription_key: Some(SecretString::from(SUBSCRIPTION_KEY)),
        api_key: Some(SecretString::from(API_KEY)),
        client_id: Some("SJ-CLIENT-42".to_string()),
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

/// Serves `routes` under [`PREFIX`] on 127.0.0.1:0; returns the base URL.
async fn serve(routes: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, Router::new().nest(PREFIX, routes)).await });
    format!("http://{address}{PREFIX}")
}

fn lock<T>(shared: &Mutex<T>) -> MutexGuard<'_, T> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
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

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(str::to_string)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

// ---- The OTR server ---------------------------------------------------------------------------

#[derive(Default)]
struct OtrInvoice {
    id: String,
    number: String,
    documents: Vec<u64>,
}

/// What the fake OTR does (knobs) and what it saw (counters).
#[derive(Default)]
struct Otr {
    /// The first token issued is refused once, as an expired token would be.
    expire_first_token: bool,
    /// Every token is refused (credentials revoked).
    refuse_tokens: bool,
    /// This many `POST invoices` answer 500 / 429 (`Retry-After: 1`) first.
    fail_500: u32,
    fail_429: u32,
    /// `POST invoices` for this invoice number never answers.
    hang: Option<String>,
    /// `POST invoices` creates the invoice, then the connection drops without an answer.
    drop_after_commit: bool,
    unknown_mc: Option<String>,
    unapproved_mc: Option<String>,

    logins: u32,
    valid_tokens: Vec<String>,
    requests: u32,
    without_subscription_key: u32,
    invoice_posts: u32,
    document_posts: u32,
    invoices: Vec<OtrInvoice>,
    by_key: HashMap<String, String>,
}

type Shared<T> = Arc<Mutex<T>>;

impl Otr {
    /// Counts a request and whether it carried the subscription key.
    fn saw(&mut self, headers: &HeaderMap) {
        self.requests += 1;
        if headers.get("ocp-apim-subscription-key").and_then(|v| v.to_str().ok()) != Some(SUBSCRIPTION_KEY) {
            self.without_subscription_key += 1;
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        !self.refuse_tokens && bearer(headers).is_some_and(|t| self.valid_tokens.contains(&t))
    }

    fn record(&self, invoice: &OtrInvoice) -> Value {
        json!({
            "id": invoice.id,
            "invoiceNumber": invoice.number,
            "documents": invoice.documents.iter().map(|t| json!({"documentType": t})).collect::<Vec<_>>(),
        })
    }
}

fn otr_routes(state: Shared<Otr>) -> Router {
    Router::new()
        .route("/auth/token", post(otr_login))
        .route("/invoices", post(otr_create).get(otr_search))
        .route("/invoices/{id}", get(otr_get))
        .route("/invoices/{id}/documents", post(otr_document))
        .with_state(state)
}

async fn otr_login(State(state): State<Shared<Otr>>, headers: HeaderMap, body: String) -> Response {
    let mut otr = lock(&state);
    otr.saw(&headers);
    let form: HashMap<String, String> =
        body.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if form.get("username").map(String::as_str) != Some(USERNAME)
        || form.get("password").map(String::as_str) != Some(PASSWORD)
    {
        // Echoes what it got, as careless servers do: the client must scrub it.
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"message": format!("bad login {body} with key {SUBSCRIPTION_KEY}")}),
        );
    }
    otr.logins += 1;
    let token = format!("token-{}", otr.logins);
    if !(otr.expire_first_token && otr.logins == 1) {
        otr.valid_tokens.push(token.clone());
    }
    json_response(StatusCode::OK, json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}))
}

async fn otr_create(State(state): State<Shared<Otr>>, headers: HeaderMap, body: axum::Json<Value>) -> Response {
    let hang = {
        let mut otr = lock(&state);
        otr.saw(&headers);
        if !otr.authorized(&headers) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        otr.invoice_posts += 1;
        if otr.fail_500 > 0 {
            otr.fail_500 -= 1;
            return json_response(StatusCode::INTERNAL_SERVER_ERROR, json!({"message": "database busy"}));
        }
        if otr.fail_429 > 0 {
            otr.fail_429 -= 1;
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down").into_response();
        }
        let number = body["invoiceNumber"].as_str().unwrap_or_default().to_string();
        let mc = body["brokerMc"].as_str().unwrap_or_default().to_string();
        let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string) else {
            return json_response(StatusCode::BAD_REQUEST, json!({"message": "Idempotency-Key required"}));
        };
        if otr.hang.as_deref() == Some(number.as_str()) {
            true
        } else {
            if otr.unknown_mc.as_deref() == Some(mc.as_str()) {
                return StatusCode::NO_CONTENT.into_response();
            }
            if otr.unapproved_mc.as_deref() == Some(mc.as_str()) {
                return json_response(
                    StatusCode::PAYMENT_REQUIRED,
                    json!({"message": format!("Broker MC {mc} is not approved for factoring")}),
                );
            }
            let existing = otr
                .by_key
                .get(&key)
                .cloned()
                .or_else(|| otr.invoices.iter().find(|i| i.number == number).map(|i| i.id.clone()));
            if let Some(id) = existing {
                return json_response(
                    StatusCode::CONFLICT,
                    json!({"message": "Invoice already exists", "existingInvoiceId": id}),
                );
            }
            let id = format!("otr-{}", otr.invoices.len() + 1);
            otr.invoices.push(OtrInvoice { id: id.clone(), number, documents: Vec::new() });
            otr.by_key.insert(key, id.clone());
            if otr.drop_after_commit {
                drop(otr);
                // Committed, and now the connection dies without an answer: the panic ends the
                // connection's task, which closes the socket.
                panic!("simulated crash after commit (expected in this test)");
            }
            return json_response(StatusCode::CREATED, json!({"id": id, "status": "Pending"}));
        }
    };
    if hang {
        std::future::pending::<()>().await;
    }
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

#[derive(serde::Deserialize)]
struct Search {
    #[serde(rename = "invoiceNumber")]
    invoice_number: String,
}

async fn otr_search(State(state): State<Shared<Otr>>, headers: HeaderMap, Query(search): Query<Search>) -> Response {
    let mut otr = lock(&state);
    otr.saw(&headers);
    if !otr.authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let found: Vec<Value> =
        otr.invoices.iter().filter(|i| i.number == search.invoice_number).map(|i| otr.record(i)).collect();
    json_response(StatusCode::OK, Value::Array(found))
}

async fn otr_get(State(state): State<Shared<Otr>>, headers: HeaderMap, UrlPath(id): UrlPath<String>) -> Response {
    let mut otr = lock(&state);
    otr.saw(&headers);
    if !otr.authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match otr.invoices.iter().find(|i| i.id == id) {
        Some(invoice) => json_response(StatusCode::OK, otr.record(invoice)),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The multipart `documentType` field's value.
fn document_type(body: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(body);
    let after = text.split_once("name=\"documentType\"")?.1;
    after.split_once("\r\n\r\n")?.1.lines().next()?.trim().parse().ok()
}

async fn otr_document(
    State(state): State<Shared<Otr>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    let mut otr = lock(&state);
    otr.saw(&headers);
    if !otr.authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    otr.document_posts += 1;
    let Some(kind) = document_type(&body) else {
        return json_response(StatusCode::BAD_REQUEST, json!({"message": "documentType required"}));
    };
    if !String::from_utf8_lossy(&body).contains("%PDF-1.4 packet of") {
        return json_response(StatusCode::BAD_REQUEST, json!({"message": "file required"}));
    }
    match otr.invoices.iter_mut().find(|i| i.id == id) {
        Some(invoice) => {
            invoice.documents.push(kind);
            json_response(StatusCode::CREATED, json!({"documentId": format!("doc-{id}-{kind}")}))
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn otr_server(otr: Otr) -> (String, Shared<Otr>) {
    let state = Arc::new(Mutex::new(otr));
    (serve(otr_routes(state.clone())).await, state)
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
