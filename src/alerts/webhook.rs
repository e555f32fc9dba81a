//! The alert webhook: a JSON POST signed with HMAC-SHA256 (docs/operations.md, Alerts).
//!
//! Headers: `X-Factord-Timestamp: <Unix seconds>` and
//! `X-Factord-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>." + raw body)>`. The
//! timestamp is inside the MAC, so a receiver can refuse a replayed old delivery.

use hmac::{KeyInit, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use super::{Failed, WebhookBody};
use crate::config::WebhookSettings;

pub const SIGNATURE_HEADER: &str = "X-Factord-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Factord-Timestamp";

/// `sha256=<hex>`: the signature of `body` sent at `timestamp` under `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length: new_from_slice cannot fail for it.
    let mut mac = match <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts `body`; `Ok` on a 2xx answer. A 4xx other than 408 and 429 is given up (sending the
/// same again will not help); anything else is tried again.
pub async fn post(client: &reqwest::Client, webhook: &WebhookSettings, body: &WebhookBody) -> Result<(), Failed> {
    let bytes =
        serde_json::to_vec(body).map_err(|e| Failed { message: format!("cannot encode: {e}"), give_up: true })?;
    let timestamp = chrono::Utc::now().timestamp();
    let signature = signature(webhook.secret.expose_secret().as_bytes(), timestamp, &bytes);
    let request = client
        .post(&webhook.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature)
        .timeout(webhook.timeout)
        .body(bytes);
    // The client's own timeouts bound the call; this one bounds it whatever they do.
    let answer = tokio::time::timeout(webhook.timeout.saturating_mul(2), request.send()).await;
    let response = match answer {
        Err(_) => return Err(Failed::retry(format!("no answer within {:?}", webhook.timeout))),
        Ok(Err(error)) => return Err(Failed::retry(format!("cannot post to the webhook: {}", error.without_url()))),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let give_up = status.is_client_error()
        && status != reqwest::StatusCode::REQUEST_TIMEOUT
        && status != reqwest::StatusCode::TOO_MANY_REQUESTS;
    Err(Failed { message: format!("the webhook answered {status}"), give_up })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: `printf '1.x' | openssl dgst -sha256 -hmac Jefe`.
        let sig = signature(b"Jefe", 1, b"x");
        assert_eq!(sig, "sha256=2f7ccbd0f043456ad29514b2d24a8aa345ec6673a5db1b44e91c8ac99d1841e3");
        assert_ne!(sig, signature(b"Jefe", 2, b"x"), "the timestamp is in the MAC");
        assert_ne!(sig, signature(b"other", 1, b"x"));
    }
}
