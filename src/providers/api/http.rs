//! The HTTP plumbing every API provider shares, kept apart from the request/response mappings:
//! which failures are transient (docs/reliability.md rule 9), the backoff between attempts, the
//! `Retry-After` header, bounded response bodies, and turning a reqwest error or a server's
//! error body into a short, secret-free reason.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The first backoff ceiling; each retry doubles it up to [`BACKOFF_CAP`].
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(8);
/// The longest `Retry-After` waited for inside one send. A factor asking for longer gets the
/// invoice back as transient, to be retried at a later fire, rather than a worker asleep.
pub(super) const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// Factor replies are small JSON documents; anything past this is cut off (rule 7).
const MAX_BODY: usize = 1 << 20;
/// Longest server message carried into an outcome's reason.
const MAX_MESSAGE_CHARS: usize = 300;

/// An HTTP answer whose status is not transient (transient ones are retried, then reported
/// as a [`Failure`]).
#[derive(Debug)]
pub(super) struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Why a request got no usable answer after its retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FailureKind {
    /// The connection could not be made (refused, DNS, connect timeout): the server is down
    /// for every request, so the rest of the batch is not attempted.
    Refused,
    /// Sent, but no complete answer: a timeout or a dropped connection. The factor may or may
    /// not have acted on it; only a resend with the same idempotency key or a lookup can tell.
    NoAnswer,
    /// Answered with a transient status (429, 500, 502–504) every time, or asked to wait longer
    /// than [`RETRY_AFTER_CAP`].
    Busy,
}

#[derive(Clone, Debug)]
pub(super) struct Failure {
    pub kind: FailureKind,
    /// Already free of secrets.
    pub reason: String,
}

/// Statuses retried: docs/reliability.md rule 9's 429 and 502–504, plus 500. Retrying a 500 is safe here
/// because every submission carries an idempotency key (and OTR refuses a known invoice number
/// with 409), and a 500 is how an overloaded application server most often answers.
pub(super) fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502..=504)
}

/// Whether a transport error is worth another attempt: connect errors, timeouts and dropped
/// connections are; a request that could not even be built is not.
pub(super) fn is_transient_error(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

/// The wait before retry number `retry` (0-based): full jitter, uniform in
/// `[0, min(cap, base × 2^retry)]` (AWS "Exponential Backoff and Jitter").
pub(super) fn backoff(retry: u32) -> Duration {
    crate::backoff::full_jitter(BACKOFF_BASE, BACKOFF_CAP, retry)
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3); a date in the past is
/// zero. `None` when absent or unreadable (then the normal backoff applies).
pub(super) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is valid RFC 2822.
    let when = DateTime::parse_from_rfc2822(text).ok()?.with_timezone(&Utc);
    Some((when - now).to_std().unwrap_or(Duration::ZERO))
}

/// Reads at most [`MAX_BODY`] bytes of a response body.
pub(super) async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY {
            break;
        }
    }
    Ok(body)
}

/// A reqwest error as one line: its kind and the chain of causes ("error sending request:
/// client error (Connect): tcp connect error: Connection refused"), without the URL.
pub(super) fn describe_error(error: reqwest::Error) -> String {
    let timed_out = error.is_timeout();
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if timed_out && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

/// The human part of an error body: the first of the usual message fields of a JSON body
/// (`message`, `error_description`, `error`, `detail`, `title`, `errors`), else the text
/// itself; one line, at most [`MAX_MESSAGE_CHARS`] characters. `None` for an empty body.
pub(super) fn server_message(body: &[u8]) -> Option<String> {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => first_message(&json)?,
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cleaned: String = one_line.chars().filter(|c| !c.is_control()).collect();
    (!cleaned.is_empty()).then(|| crate::domain::bounded_to(&cleaned, MAX_MESSAGE_CHARS))
}

fn first_message(json: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match json {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items.iter().find_map(first_message),
        Value::Object(map) => ["message", "error_description", "error", "detail", "title", "errors", "Message"]
            .iter()
            .find_map(|key| map.get(*key).and_then(first_message)),
        _ => None,
    }
}

/// `HTTP 402 Payment Required: broker not approved`, or just the status when the body says
/// nothing.
pub(super) fn status_text(status: StatusCode, body: &[u8]) -> String {
    match server_message(body) {
        Some(message) => format!("HTTP {status}: {message}"),
        None => format!("HTTP {status}"),
    }
}

/// A JSON value that identifies something (an id, a schedule number), as text: factors send
/// ids as strings or numbers.
pub(super) fn id_text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The first of `keys` present in a JSON object, as an id.
pub(super) fn field_id(json: &serde_json::Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| id_text(json.get(*key)))
}

/// A file name for a multipart part, from an invoice number, safe for any server.
pub(super) fn part_file_name(invoice_number: &str) -> String {
    let stem: String = invoice_number
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    format!("{stem}.pdf")
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("header value"));
        map
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc2822("Sun, 06 Nov 1994 08:49:37 GMT").expect("date").with_timezone(&Utc);
        assert_eq!(retry_after(&headers("7"), now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&headers("Sun, 06 Nov 1994 08:50:07 GMT"), now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(&headers("Sun, 06 Nov 1994 08:00:00 GMT"), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        for retry in 0..40 {
            assert!(backoff(retry) <= BACKOFF_CAP);
        }
        assert!(backoff(0) <= BACKOFF_BASE);
        let draws: Vec<Duration> = (0..20).map(|_| backoff(3)).collect();
        assert!(draws.iter().any(|d| *d != draws[0]), "jitter varies: {draws:?}");
    }

    #[test]
    fn transient_statuses_are_the_retryable_ones() {
        for code in [429u16, 500, 502, 503, 504] {
            assert!(is_transient_status(StatusCode::from_u16(code).expect("status")), "{code}");
        }
        for code in [200u16, 400, 401, 402, 403, 404, 408, 409, 422, 501, 505] {
            assert!(!is_transient_status(StatusCode::from_u16(code).expect("status")), "{code}");
        }
    }

    #[test]
    fn server_messages_are_short_single_lines() {
        assert_eq!(server_message(br#"{"message":"broker not\napproved"}"#).as_deref(), Some("broker not approved"));
        assert_eq!(server_message(br#"{"errors":[{"detail":"bad MC"}]}"#).as_deref(), Some("bad MC"));
        assert_eq!(server_message(b"plain text").as_deref(), Some("plain text"));
        assert_eq!(server_message(b"").as_deref(), None);
        assert_eq!(
            server_message("x".repeat(1000).as_bytes()),
            Some(format!("{}… (1000 characters)", "x".repeat(MAX_MESSAGE_CHARS))),
            "cut, with its size"
        );
        assert_eq!(part_file_name("AE-10/7 x"), "AE-10_7_x.pdf");
    }
}
