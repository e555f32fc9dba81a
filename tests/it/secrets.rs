//! A factor (or a proxy in front of it) that echoes the request in its error body: the API key
//! must not come back out in any form (as written, percent- or form-encoded, JSON-escaped,
//! base64) in the command's output, its logs, the database, `status`, `loads show` or the
//! dashboard.

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::both_backends;
use crate::fakes::api::serve;
use crate::harness::TestEnv;
use crate::submit_faults::{provider_config, queue_loads, secret};

/// URL-special characters, a quote and a backslash: every encoding changes it.
const KEY: &str = "k\"e\\y/&=+ z-Sentinel42";

/// `text` percent-encoded as a URL carries it (RFC 3986's unreserved characters kept).
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every form of the key an echo might carry.
fn forms() -> Vec<String> {
    let percent = percent_encoded(KEY);
    let form: String = form_urlencoded::byte_serialize(KEY.as_bytes()).collect();
    let json = serde_json::to_string(KEY).expect("json").trim_matches('"').to_string();
    vec![
        KEY.to_string(),
        percent.clone(),
        percent.replace("%20", "+"),
        form,
        json,
        STANDARD.encode(KEY),
        URL_SAFE_NO_PAD.encode(KEY),
    ]
}

/// Answers every request 400 with what it was sent, in every form, as careless servers and
/// proxies do.
async fn echo(headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let key = auth.strip_prefix("Bearer ").unwrap_or(&auth).to_string();
    let percent = percent_encoded(&key);
    let form: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
    let message = format!(
        "rejected request with authorization {auth} (url {percent}, form {form}, b64 {}, {}) and a body of {} bytes",
        STANDARD.encode(&key),
        URL_SAFE_NO_PAD.encode(&key),
        body.len()
    );
    (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({ "message": message }))).into_response()
}

async fn text_of_database(env: &TestEnv) -> String {
    match &env.store {
        factord::store::Store::Sqlite(pool) => {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await.expect("checkpoint");
            let path = env.path("data/factord.db");
            String::from_utf8_lossy(&std::fs::read(path).expect("database file")).into_owned()
        }
        factord::store::Store::Postgres(pool) => {
            let sql = "SELECT COALESCE(string_agg(t, ' '), '') FROM ( \
                       SELECT COALESCE(waiting_reason, '') AS t FROM loads \
                       UNION ALL SELECT detail FROM load_exceptions \
                       UNION ALL SELECT COALESCE(error, '') FROM batches \
                       UNION ALL SELECT COALESCE(message, '') FROM batch_items \
                       UNION ALL SELECT cause FROM load_history) x";
            sqlx::query_scalar(sql).fetch_one(pool).await.expect("dump")
        }
    }
}

both_backends!(an_echoed_api_key_never_comes_back_out_in_any_form, |env| {
    let url = serve(Router::new().fallback(echo)).await;
    let key_file = secret(&env, "trufunding-key", KEY);
    let factoring = format!(
        "provider = \"trufunding\"\n\n[subsidiary.factoring.api]\nbase_url = \"{url}\"\napi_key_file = \"{}\"\n",
        key_file.display()
    );
    let (path, settings) = provider_config(&env, "config-echo", &factoring);
    queue_loads(&env, &settings, 1).await;

    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_factord"))
            .arg("--config")
            .arg(&path)
            .args(args)
            .env("FACTORD__LOG__LEVEL", "debug")
            .output()
            .expect("factord");
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    };
    let submitted = run(&["submit"]);
    assert!(submitted.contains("rejected request with authorization"), "the factor's words are kept: {submitted}");
    let mut seen = vec![("submit", submitted)];
    seen.push(("status", run(&["status", "--json"])));
    seen.push(("loads show", run(&["loads", "show", "S-01"])));
    seen.push(("loads show --json", run(&["loads", "show", "S-01", "--json"])));
    let dashboard = factord::http::dashboard::Dashboard::gather(&env.store, &settings).await.expect("dashboard");
    seen.push(("dashboard", dashboard.html(&settings, chrono::Utc::now())));
    seen.push(("database", text_of_database(&env).await));
    assert!(seen[2].1.contains("[REDACTED]"), "the redaction shows: {}", seen[2].1);
    for (place, text) in &seen {
        for form in forms() {
            assert!(!text.contains(&form), "{place} holds the key as `{form}`:\n{text}");
        }
    }
});
