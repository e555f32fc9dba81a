//! The daemon's HTTP server on `http.listen` (off when the `[http]` section is absent):
//!
//! - `/healthz`: 200 `ok` while the process is alive.
//! - `/readyz`: 200 when the database answers, the components are running (none restarting
//!   after a failure, none stale) and the last configuration reload was applied; else 503 with
//!   one line per thing not ready.
//! - `/metrics`: Prometheus text ([`metrics`]): database counts read at scrape time, job
//!   durations, the supervised components and reload status from the daemon.
//! - `/`: the read-only dashboard ([`dashboard`]).
//!
//! Everything is read-only: GET only, no write action, no secret in any answer. The daemon
//! owns the shared [`Health`] and [`Metrics`] and updates them; the handlers only read them
//! and the database.

pub mod dashboard;
mod health;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use health::{ComponentHealth, ComponentPhase, Health, HealthState};
pub use metrics::{Job, JobStats, Metrics};

use crate::config::Settings;
use crate::store::Store;

/// How long `/readyz` waits for the database to answer.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `/metrics` and the dashboard wait for their queries.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers read. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpState {
    pub store: Store,
    /// The configuration in force: subsidiary names and the subsidiaries to list. A reload
    /// sends the new settings on the matching `watch::Sender`; with the sender dropped the
    /// settings stay those given at start.
    pub settings: watch::Receiver<Arc<Settings>>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
}

impl HttpState {
    pub fn new(
        store: Store,
        settings: watch::Receiver<Arc<Settings>>,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
    ) -> HttpState {
        HttpState { store, settings, health, metrics }
    }

    fn settings(&self) -> Arc<Settings> {
        self.settings.borrow().clone()
    }
}

/// Binds `http.listen`. The error names the key, for the daemon's start-up message.
pub async fn bind(listen: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(listen).await.map_err(|cause| BindError { listen, cause })
}

/// The message carries the cause itself; the cause is deliberately not the error's `source`,
/// so that a printer of error chains (`{:#}`) does not say it twice.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on http.listen = {listen}: {cause}")]
pub struct BindError {
    pub listen: SocketAddr,
    pub cause: std::io::Error,
}

/// Serves until `shutdown` is cancelled, then finishes the requests in hand.
pub async fn serve(listener: TcpListener, state: HttpState, shutdown: CancellationToken) {
    let app = router(state);
    if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
        tracing::error!(%error, "the HTTP server stopped");
    }
}

/// The routes; GET only (other methods get 405, other paths 404).
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(dashboard_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .with_state(state)
}

fn text(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".to_string())
}

/// What is not ready, one line each; empty when ready.
async fn not_ready(state: &HttpState) -> Vec<String> {
    let mut problems = Vec::new();
    match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => problems.push(format!("database: {error}")),
        Err(_) => problems.push(format!("database: no answer within {} s", PING_TIMEOUT.as_secs())),
    }
    let health = state.health.snapshot();
    if !health.components_running {
        problems.push("components: not running".to_string());
    }
    problems.extend(health.components.iter().filter_map(ComponentHealth::problem));
    if !health.last_reload_ok {
        problems.push("config: the last reload was refused; the previous configuration is still in force".to_string());
        problems.extend(health.last_reload_errors.iter().map(|e| format!("config: {e}")));
    }
    problems
}

async fn readyz(State(state): State<HttpState>) -> Response {
    let problems = not_ready(&state).await;
    if problems.is_empty() {
        text(StatusCode::OK, "ready\n".to_string())
    } else {
        let mut body = String::from("not ready\n");
        for problem in problems {
            body.push_str(&problem);
            body.push('\n');
        }
        text(StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

async fn metrics_page(State(state): State<HttpState>) -> Response {
    let counts = match tokio::time::timeout(QUERY_TIMEOUT, state.store.metric_counts()).await {
        Ok(Ok(counts)) => Some(counts),
        Ok(Err(error)) => {
            tracing::warn!(%error, "metrics: cannot read the database counts");
            None
        }
        Err(_) => {
            tracing::warn!(timeout = ?QUERY_TIMEOUT, "metrics: the database counts took too long");
            None
        }
    };
    let body = metrics::render(&state.settings(), counts.as_ref(), &state.health.snapshot(), &state.metrics);
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

async fn dashboard_page(State(state): State<HttpState>) -> Response {
    let settings = state.settings();
    let gathered = tokio::time::timeout(QUERY_TIMEOUT, dashboard::Dashboard::gather(&state.store, &settings)).await;
    let (status, body) = match gathered {
        Ok(Ok(page)) => (StatusCode::OK, page.html(&settings, chrono::Utc::now())),
        Ok(Err(error)) => {
            tracing::warn!(%error, "dashboard: cannot read the database");
            (StatusCode::SERVICE_UNAVAILABLE, unavailable_page(&error.to_string()))
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, unavailable_page("the database did not answer in time")),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // No script, no form, nothing from elsewhere: the browser is told so.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn unavailable_page(reason: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"30\">\
         <title>factord</title></head><body><h1>factord</h1><p>The database cannot be read: {}</p></body></html>\n",
        dashboard::escape(reason)
    )
}
