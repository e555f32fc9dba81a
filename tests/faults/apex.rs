//! Apex Capital played on loopback for the fault suite: schedules created with `POST schedules`,
//! found by `externalId`, read back with their invoices and documents, packets uploaded per
//! invoice. It honours idempotency keys (a key seen before gets 409 with the schedule it made,
//! as does an `externalId` seen before) and counts *effective* submissions: how many schedules
//! hold each invoice number. It never dedupes by invoice number, so an invoice that went out in
//! two batches shows up here as two schedules.
//!
//! With [`Apex::flaky`] it also misbehaves on a fixed rhythm of `POST schedules`: some answer
//! 503 before taking anything, some take the schedule and then cut the connection before the
//! answer's body (the client cannot tell whether it was taken).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::fakes::api::{API_KEY, Shared, bearer, json_response, lock, serve};

/// One schedule Apex holds.
pub struct Schedule {
    pub id: String,
    pub external_id: String,
    pub idempotency_key: String,
    pub invoices: Vec<String>,
}

#[derive(Default)]
pub struct Apex {
    /// Every `POST schedules`, effective or not.
    pub posts: u32,
    /// Posts answered from an idempotency key or external id seen before (nothing created).
    pub replays: u32,
    pub schedules: Vec<Schedule>,
    /// (schedule id, invoice number) of every packet upload.
    pub documents: Vec<(String, String)>,
    pub unauthorized: u32,
    /// Misbehave on some posts (see the module doc).
    pub flaky: bool,
    /// Posts answered 503, and posts taken whose answer was dropped.
    pub refused: u32,
    pub dropped: u32,
}

impl Apex {
    /// Invoice number → how many schedules hold it (its effective submissions).
    pub fn effective(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for schedule in &self.schedules {
            for invoice in &schedule.invoices {
                *counts.entry(invoice.clone()).or_insert(0) += 1;
            }
        }
        counts
    }

    fn authorized(&mut self, headers: &HeaderMap) -> bool {
        let ok = bearer(headers).as_deref() == Some(API_KEY);
        if !ok {
            self.unauthorized += 1;
        }
        ok
    }

    fn record(&self, schedule: &Schedule) -> Value {
        let invoices: Vec<Value> = schedule
            .invoices
            .iter()
            .map(|n| {
                let documents: Vec<&String> =
                    self.documents.iter().filter(|(s, i)| *s == schedule.id && i == n).map(|(_, i)| i).collect();
                json!({"invoiceNumber": n, "status": "accepted", "id": format!("AX-{n}"), "documents": documents})
            })
            .collect();
        json!({
            "id": schedule.id,
            "externalId": schedule.external_id,
            "scheduleNumber": format!("SCH-{}", schedule.id),
            "invoices": invoices,
        })
    }
}

/// Starts the fake; returns its base URL and its state.
pub async fn start() -> (String, Shared<Apex>) {
    let state = Shared::default();
    let routes = Router::new()
        .route("/schedules", post(create).get(search))
        .route("/schedules/{id}", get(read))
        .route("/schedules/{id}/invoices/{number}/documents", post(document))
        .with_state(state.clone());
    (serve(routes).await, state)
}

async fn create(State(state): State<Shared<Apex>>, headers: HeaderMap, body: axum::Json<Value>) -> Response {
    let mut apex = lock(&state);
    if !apex.authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    apex.posts += 1;
    if apex.flaky && apex.posts % 5 == 2 {
        apex.refused += 1;
        return json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"message": "try again"}));
    }
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string) else {
        return json_response(StatusCode::BAD_REQUEST, json!({"message": "Idempotency-Key required"}));
    };
    let external_id = body["externalId"].as_str().unwrap_or_default().to_string();
    let known = apex.schedules.iter().find(|s| s.idempotency_key == key || s.external_id == external_id);
    if let Some(schedule) = known {
        let record = apex.record(schedule);
        apex.replays += 1;
        return json_response(StatusCode::CONFLICT, record);
    }
    let invoices: Vec<String> = body["invoices"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["invoiceNumber"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let id = format!("S{}", apex.schedules.len() + 1);
    let schedule = Schedule { id, external_id, idempotency_key: key, invoices };
    let record = apex.record(&schedule);
    apex.schedules.push(schedule);
    if apex.flaky && apex.posts % 7 == 3 {
        apex.dropped += 1;
        // Taken, and the answer breaks off after its status line: the body fails, the
        // connection is cut, and the client cannot read what was created.
        let broken = futures_util::stream::once(async { Err::<Bytes, _>(std::io::Error::other("answer dropped")) });
        return (StatusCode::CREATED, axum::body::Body::from_stream(broken)).into_response();
    }
    json_response(StatusCode::CREATED, record)
}

async fn read(State(state): State<Shared<Apex>>, headers: HeaderMap, UrlPath(id): UrlPath<String>) -> Response {
    let mut apex = lock(&state);
    if !apex.authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match apex.schedules.iter().find(|s| s.id == id) {
        Some(schedule) => json_response(StatusCode::OK, apex.record(schedule)),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn search(
    State(state): State<Shared<Apex>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut apex = lock(&state);
    if !apex.authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let external = query.get("externalId").cloned().unwrap_or_default();
    let found: Vec<Value> = apex
        .schedules
        .iter()
        .filter(|s| s.external_id == external)
        .map(|s| json!({"id": s.id, "externalId": s.external_id}))
        .collect();
    json_response(StatusCode::OK, json!({"schedules": found}))
}

async fn document(
    State(state): State<Shared<Apex>>,
    headers: HeaderMap,
    UrlPath((id, number)): UrlPath<(String, String)>,
    body: Bytes,
) -> Response {
    let mut apex = lock(&state);
    if !apex.authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if !String::from_utf8_lossy(&body).contains("%PDF-") {
        return json_response(StatusCode::BAD_REQUEST, json!({"message": "a PDF is required"}));
    }
    if !apex.schedules.iter().any(|s| s.id == id && s.invoices.contains(&number)) {
        return StatusCode::NOT_FOUND.into_response();
    }
    apex.documents.push((id, number));
    StatusCode::CREATED.into_response()
}
