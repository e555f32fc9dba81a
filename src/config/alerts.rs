//! `[smtp]`, `[alerts]` and `[subsidiary.factoring.email]`: the raw sections as written, and
//! their validation (docs/configuration.md, Alerts and email). Every problem names its key.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::settings::{SecretRef, duration_setting, read_secret};
use super::{Environment, Issues};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSmtp {
    pub host: Option<String>,
    #[serde(deserialize_with = "super::raw::lenient_opt_u16")]
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub from: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawAlerts {
    pub stuck_after: Option<String>,
    pub digest: Option<String>,
    pub interval: Option<String>,
    pub webhook: Option<RawWebhook>,
    pub email: Option<RawAlertEmail>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawWebhook {
    pub url: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub secret_env: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawAlertEmail {
    pub to: Vec<String>,
}

/// `[subsidiary.factoring.email]`: a manual provider's batches by email.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawFactoringEmail {
    pub to: Option<String>,
}

/// The SMTP server that alerts and manual-provider batches go through. Always STARTTLS with
/// verification; no plaintext fallback.
#[derive(Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from: String,
    /// A PEM file of the CA(s) to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Longest wait for the whole SMTP exchange of one message.
    pub timeout: Duration,
}

#[derive(Debug)]
pub struct WebhookSettings {
    pub url: String,
    pub secret: SecretString,
    pub timeout: Duration,
}

#[derive(Debug)]
pub struct AlertSettings {
    /// A load in Released, Queued or Invoiced that has not moved for this long alerts.
    pub stuck_after: Duration,
    /// When set, due alerts go as one message per channel per interval.
    pub digest: Option<Duration>,
    /// How often events are looked for and due alerts sent (without a digest).
    pub interval: Duration,
    pub webhook: Option<WebhookSettings>,
    /// Recipients of alert emails.
    pub email: Option<Vec<String>>,
}

impl AlertSettings {
    /// The channels configured, by their name in the `alerts` table.
    pub fn channels(&self) -> Vec<&'static str> {
        let mut channels = Vec::new();
        if self.webhook.is_some() {
            channels.push("webhook");
        }
        if self.email.is_some() {
            channels.push("email");
        }
        channels
    }
}

/// An email address as `lettre` takes it (`ops@example.com` or `Ops <ops@example.com>`).
fn check_address(text: &str, source: &str, key: &str, issues: &mut Issues) {
    if text.parse::<lettre::message::Mailbox>().is_err() {
        issues.push(source, key, format!("`{text}` is not an email address"));
    }
}

/// Validates `[smtp]`.
pub(crate) fn validate_smtp(
    raw: &RawSmtp,
    src: &dyn Fn(&str) -> String,
    env: &Environment,
    issues: &mut Issues,
) -> Option<SmtpSettings> {
    let before = issues.0.len();
    let host = raw.host.as_deref().map(str::trim).unwrap_or_default().to_string();
    if host.is_empty() {
        issues.push(src("smtp.host"), "smtp.host", "required (the SMTP server's name, e.g. smtp.example.com)");
    }
    let from = raw.from.as_deref().map(str::trim).unwrap_or_default().to_string();
    if from.is_empty() {
        issues.push(src("smtp.from"), "smtp.from", "required (e.g. factord@example.com)");
    } else {
        check_address(&from, &src("smtp.from"), "smtp.from", issues);
    }
    let password = read_secret(
        SecretRef {
            file: raw.password_file.as_deref(),
            env_name: raw.password_env.as_deref(),
            file_key: "smtp.password_file",
            env_key: "smtp.password_env",
            required: raw.username.is_some(),
        },
        &src("smtp.password_file"),
        env,
        issues,
    );
    if password.is_some() && raw.username.is_none() {
        issues.push(src("smtp.username"), "smtp.username", "required with a password");
    }
    if let Some(ca) = &raw.ca_file
        && let Err(error) = std::fs::read(ca)
    {
        issues.push(src("smtp.ca_file"), "smtp.ca_file", format!("cannot read {}: {error}", ca.display()));
    }
    let timeout = duration_setting(
        raw.timeout.as_deref(),
        Duration::from_secs(60),
        Duration::from_secs(1),
        &src("smtp.timeout"),
        "smtp.timeout",
        issues,
    );
    if issues.0.len() > before {
        return None;
    }
    Some(SmtpSettings {
        host,
        port: raw.port.unwrap_or(587),
        username: raw.username.clone(),
        password,
        from,
        ca_file: raw.ca_file.clone(),
        timeout,
    })
}

/// Validates `[alerts]`; `smtp` says whether `[smtp]` is configured (alert emails need it).
pub(crate) fn validate_alerts(
    raw: Option<&RawAlerts>,
    smtp: bool,
    src: &dyn Fn(&str) -> String,
    env: &Environment,
    issues: &mut Issues,
) -> AlertSettings {
    let empty = RawAlerts::default();
    let raw = raw.unwrap_or(&empty);
    let mut duration = |value: &Option<String>, key: &str, default: Duration, min: Duration| {
        duration_setting(value.as_deref(), default, min, &src(key), key, issues)
    };
    let stuck_after = duration(&raw.stuck_after, "alerts.stuck_after", Duration::from_secs(86_400), Duration::ZERO);
    let interval = duration(&raw.interval, "alerts.interval", Duration::from_secs(10), Duration::from_millis(100));
    let digest = raw
        .digest
        .as_ref()
        .map(|_| duration(&raw.digest, "alerts.digest", Duration::from_secs(3600), Duration::from_secs(1)));
    let webhook = raw.webhook.as_ref().and_then(|webhook| validate_webhook(webhook, src, env, issues));
    let email = raw.email.as_ref().and_then(|email| {
        let key = "alerts.email.to";
        if email.to.is_empty() {
            issues.push(src(key), key, "required: at least one address");
            return None;
        }
        for to in &email.to {
            check_address(to, &src(key), key, issues);
        }
        if !smtp {
            issues.push(src(key), key, "alert emails need an [smtp] section");
        }
        Some(email.to.clone())
    });
    AlertSettings { stuck_after, digest, interval, webhook, email }
}

fn validate_webhook(
    raw: &RawWebhook,
    src: &dyn Fn(&str) -> String,
    env: &Environment,
    issues: &mut Issues,
) -> Option<WebhookSettings> {
    let key = "alerts.webhook.url";
    let url = raw.url.as_deref().map(str::trim).unwrap_or_default().to_string();
    let loopback_http =
        ["http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:", "http://localhost/", "http://[::1]:"]
            .iter()
            .any(|prefix| url.starts_with(prefix));
    if url.is_empty() {
        issues.push(src(key), key, "required (https://…)");
    } else if !(url.starts_with("https://") || loopback_http) {
        issues.push(src(key), key, format!("`{url}` must be https:// (plain http:// only to a loopback address)"));
    } else if reqwest::Url::parse(&url).is_err() {
        issues.push(src(key), key, format!("`{url}` is not a URL"));
    }
    let secret = read_secret(
        SecretRef {
            file: raw.secret_file.as_deref(),
            env_name: raw.secret_env.as_deref(),
            file_key: "alerts.webhook.secret_file",
            env_key: "alerts.webhook.secret_env",
            required: true,
        },
        &src("alerts.webhook.secret_file"),
        env,
        issues,
    );
    let timeout = duration_setting(
        raw.timeout.as_deref(),
        Duration::from_secs(10),
        Duration::from_millis(100),
        &src("alerts.webhook.timeout"),
        "alerts.webhook.timeout",
        issues,
    );
    Some(WebhookSettings { url, secret: secret?, timeout })
}

/// Validates `[subsidiary.factoring.email]`; `not_manual` names the provider when it is not a
/// manual one (an error); `key` is the dotted key of the section.
pub(crate) fn validate_factoring_email(
    raw: &RawFactoringEmail,
    not_manual: Option<&str>,
    source: &str,
    key: &str,
    issues: &mut Issues,
) -> Option<String> {
    if let Some(provider) = not_manual {
        issues.push(
            source,
            key,
            format!("{provider} is not a manual provider: batches by email are for manual providers only"),
        );
        return None;
    }
    let to_key = format!("{key}.to");
    match raw.to.as_deref().map(str::trim) {
        Some(to) if !to.is_empty() => {
            let before = issues.0.len();
            check_address(to, source, &to_key, issues);
            (issues.0.len() == before).then(|| to.to_string())
        }
        _ => {
            issues.push(source, to_key, "required: the factor's address for batches");
            None
        }
    }
}
