//! `factord providers test` (docs/design.md §4): checks each subsidiary's connection to its factor
//! without sending an invoice, and the outbox folders it writes to.
//!
//! Per subsidiary, in this order, stopping at the first failure:
//! - direct invoicing (the subsidiary's method, or any customer's override):
//!   `outbox/<subsidiary>/direct` is created if missing, and a probe file is written there and
//!   deleted;
//! - a manual provider: the same for `outbox/<subsidiary>/<provider>`; when its batches go by
//!   email, the SMTP server is also reached (STARTTLS, login, NOOP; nothing is sent);
//! - FTP / FTPS / SFTP: connect (TLS or the pinned host key), log in, list the directory, write
//!   a probe file `.factord-probe-<random>.tmp` there and delete it, each step under the
//!   transport's timeouts ([`super::ftp::FtpTransport::probe`]);
//! - an API: [`super::api::ApiTransport::probe`] (log in, or an authenticated read).
//!
//! An inactive provider is not contacted and is not a failure. The result says what worked
//! and the first failure in the factor's own words, secrets scrubbed by the transports.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::api::ApiTransport;
use super::batch::ProviderError;
use super::ftp::FtpTransport;
use super::remote::{PROBE_CONTENT, probe_name};
use super::{Provider, Transport};
use crate::config::{Connection, FtpProtocol, FtpTls, InvoicingMethod, Settings, Subsidiary};

/// One subsidiary's check. Serialized as is for `--json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    pub subsidiary: String,
    /// The provider id, or `none` for a subsidiary that does not factor.
    pub provider: String,
    /// `outbox`, `ftp` (plain), `ftps` (explicit TLS), `ftps-implicit`, `sftp`, `api`, or
    /// `none`.
    pub transport: String,
    /// False for an inactive provider, which is not contacted.
    pub active: bool,
    /// Every step worked (an inactive provider is ok).
    pub ok: bool,
    /// What worked, in order.
    pub steps: Vec<String>,
    /// The first failure, in the factor's words.
    pub error: Option<String>,
}

/// Checks every configured subsidiary (or only `only`), all at once; results in config order.
/// An unknown `only` gives no result.
pub async fn test_connections(settings: &Settings, only: Option<&str>) -> Vec<ProbeResult> {
    let checks = settings.subsidiaries.iter().filter(|s| only.is_none_or(|id| id == s.id)).map(|s| check(settings, s));
    futures_util::future::join_all(checks).await
}

async fn check(settings: &Settings, subsidiary: &Subsidiary) -> ProbeResult {
    let factoring = subsidiary.factoring.as_ref();
    let direct = subsidiary.invoicing_method == InvoicingMethod::Direct
        || subsidiary.customer_overrides.values().any(|m| *m == InvoicingMethod::Direct);
    let mut result = ProbeResult {
        subsidiary: subsidiary.id.clone(),
        provider: factoring.map_or("none", |f| f.provider.id).to_string(),
        transport: factoring
            .map_or(if direct { "outbox" } else { "none" }, |f| transport_name(f.provider, &f.connection))
            .to_string(),
        active: factoring.is_none_or(|f| f.active),
        ok: true,
        steps: Vec::new(),
        error: None,
    };
    let outbox = settings.paths.outbox.join(&subsidiary.id);
    let mut outcome = Ok(());
    if direct {
        outcome = outbox_writable(&outbox.join("direct"), &mut result.steps).await;
    }
    if let (Ok(()), Some(factoring)) = (&outcome, factoring.filter(|f| f.active)) {
        outcome = match (factoring.provider.transport, &factoring.connection) {
            (Transport::Manual, _) => {
                match outbox_writable(&outbox.join(factoring.provider.id), &mut result.steps).await {
                    Ok(()) => match (&factoring.email_to, &settings.smtp) {
                        (Some(_), Some(smtp)) => smtp_reachable(smtp, &mut result.steps).await,
                        _ => Ok(()),
                    },
                    Err(error) => Err(error),
                }
            }
            (Transport::Ftp, Connection::Ftp(ftp)) => FtpTransport::new(ftp).probe(&mut result.steps).await,
            (Transport::Api, Connection::Api(api)) => match ApiTransport::new(factoring.provider, api) {
                Ok(transport) => transport
                    .with_timeout(api.timeout)
                    .probe(subsidiary.mc.as_deref())
                    .await
                    .map(|step| result.steps.push(step)),
                Err(error) => Err(error),
            },
            _ => Err(ProviderError::Rejected(format!("{} has no connection configured", factoring.provider.name))),
        };
    }
    if let Err(error) = outcome {
        tracing::warn!(subsidiary = %subsidiary.id, %error, "connection test failed");
        result.ok = false;
        result.error = Some(error.to_string());
    }
    result
}

fn transport_name(provider: &Provider, connection: &Connection) -> &'static str {
    match (provider.transport, connection) {
        (Transport::Manual, _) => "outbox",
        (Transport::Api, _) => "api",
        (Transport::Ftp, Connection::Ftp(ftp)) => match (ftp.protocol, ftp.tls) {
            (FtpProtocol::Sftp, _) => "sftp",
            (FtpProtocol::Ftp, FtpTls::None) => "ftp",
            (FtpProtocol::Ftp, FtpTls::Explicit) => "ftps",
            (FtpProtocol::Ftp, FtpTls::Implicit) => "ftps-implicit",
        },
        (Transport::Ftp, _) => "ftp",
    }
}

/// Creates `dir` if missing, writes a probe file there and deletes it.
async fn outbox_writable(dir: &Path, steps: &mut Vec<String>) -> Result<(), ProviderError> {
    let dir = dir.to_path_buf();
    let probe: PathBuf = dir.join(probe_name());
    let io = |what: &str, path: &Path, e: std::io::Error| {
        ProviderError::Rejected(format!("cannot {what} {}: {e}", path.display()))
    };
    tokio::fs::create_dir_all(&dir).await.map_err(|e| io("create", &dir, e))?;
    tokio::fs::write(&probe, PROBE_CONTENT).await.map_err(|e| io("write", &probe, e))?;
    tokio::fs::remove_file(&probe).await.map_err(|e| io("delete", &probe, e))?;
    steps.push(format!("{} writable (wrote and deleted probe file)", dir.display()));
    Ok(())
}

/// A manual provider whose batches go by email: the SMTP server is reached, upgraded, logged in
/// to and asked NOOP; nothing is sent.
async fn smtp_reachable(smtp: &crate::config::SmtpSettings, steps: &mut Vec<String>) -> Result<(), ProviderError> {
    let mailer = crate::mail::Mailer::new(smtp).map_err(|e| ProviderError::Rejected(e.to_string()))?;
    let step = mailer.probe().await.map_err(|e| match e {
        crate::mail::MailError::Transient(words) => ProviderError::Transient(format!("SMTP {}: {words}", smtp.host)),
        other => ProviderError::Rejected(format!("SMTP {}: {other}", smtp.host)),
    })?;
    steps.push(step);
    Ok(())
}
