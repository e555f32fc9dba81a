//! Keeping secrets out of every text factord writes (docs/reliability.md rule 10), in every form a
//! server, a proxy or a library might echo them back: as written, percent-encoded (`%20` and
//! `+` for a space, upper- or lower-case hex), form-encoded, JSON-escaped and base64 (standard
//! and URL-safe, with and without padding), and a Basic-auth `user:password` pair in base64.
//!
//! A [`Redactor`] is built from the secrets of one connection; every text that came from outside
//! (a factor's error body, a library's error) goes through [`Redactor::redact`] before it is cut
//! to length, logged, stored or shown.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 3986's unreserved characters are kept; everything else is `%XX`.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What a secret becomes in a text.
pub const REDACTED: &str = "[REDACTED]";

/// The forms of a set of secrets, longest first (so that a form containing another is replaced
/// whole).
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for `secrets` (empty ones are ignored) and, when `basic` is given, the
    /// base64 of `user:password` as an `Authorization: Basic` header carries it.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>, basic: Option<(&str, &str)>) -> Redactor {
        let mut needles: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).flat_map(forms).collect();
        if let Some((user, password)) = basic.filter(|(_, p)| !p.is_empty()) {
            needles.extend(base64_forms(format!("{user}:{password}").as_bytes()));
        }
        needles.retain(|n| !n.is_empty());
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    /// `text` with every form of every secret replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut clean = text.to_string();
        for needle in &self.needles {
            if clean.contains(needle.as_str()) {
                clean = clean.replace(needle.as_str(), REDACTED);
            }
        }
        clean
    }
}

/// Every form of one secret.
fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_string()];
    let bytes = secret.as_bytes();
    // Percent-encoded as a URL carries it (upper- and lower-case hex), and form-encoded as
    // reqwest's `.form()` sends it (space as `+`).
    let upper = utf8_percent_encode(secret, URL_COMPONENT).to_string();
    out.push(upper.to_lowercase_hex());
    out.push(upper.replace("%20", "+"));
    out.push(upper.to_lowercase_hex().replace("%20", "+"));
    out.push(upper);
    out.push(form_urlencoded::byte_serialize(bytes).collect());
    // Inside a JSON string.
    if let Ok(quoted) = serde_json::to_string(secret) {
        out.push(quoted.trim_matches('"').to_string());
    }
    out.push(secret.replace('/', "\\/"));
    out.extend(base64_forms(bytes));
    out
}

fn base64_forms(bytes: &[u8]) -> Vec<String> {
    [STANDARD.encode(bytes), STANDARD_NO_PAD.encode(bytes), URL_SAFE.encode(bytes), URL_SAFE_NO_PAD.encode(bytes)]
        .into_iter()
        .collect()
}

/// `%2F` → `%2f`, the rest unchanged.
trait LowercaseHex {
    fn to_lowercase_hex(&self) -> String;
}

impl LowercaseHex for String {
    fn to_lowercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut hex_left = 0;
        for c in self.chars() {
            if c == '%' {
                hex_left = 2;
                out.push(c);
            } else if hex_left > 0 {
                hex_left -= 1;
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "p&s=w/rd+x y\"é";

    #[test]
    fn every_encoded_form_is_redacted() {
        let redactor = Redactor::new([SECRET], Some(("acme", SECRET)));
        let echoes = [
            SECRET.to_string(),
            "p%26s%3Dw%2Frd%2Bx%20y%22%C3%A9".to_string(),
            "p%26s%3Dw%2Frd%2Bx+y%22%C3%A9".to_string(),
            "p%26s%3dw%2frd%2bx%20y%22%c3%a9".to_string(),
            serde_json::to_string(SECRET).expect("json").trim_matches('"').to_string(),
            STANDARD.encode(SECRET),
            URL_SAFE_NO_PAD.encode(SECRET),
            STANDARD.encode(format!("acme:{SECRET}")),
        ];
        for echo in echoes {
            let text = format!("400 Bad Request: you sent password={echo}&user=acme");
            let clean = redactor.redact(&text);
            assert!(!clean.contains(&echo), "{echo} survived: {clean}");
            assert!(clean.contains(REDACTED) && clean.contains("&user=acme"), "{clean}");
        }
    }

    #[test]
    fn what_reqwest_sends_in_a_form_is_redacted() {
        // The form encoder reqwest uses (`form_urlencoded`, through serde_urlencoded).
        let sent: String = form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
        let redactor = Redactor::new([SECRET], None);
        assert_eq!(redactor.redact(&format!("password={sent}")), format!("password={REDACTED}"));
    }

    #[test]
    fn empty_secrets_redact_nothing() {
        let redactor = Redactor::new(["", ""], None);
        assert_eq!(redactor.redact("nothing to hide"), "nothing to hide");
    }
}
