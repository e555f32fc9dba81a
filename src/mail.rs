//! Email through the configured `[smtp]` server, for alerts and for manual providers' batches:
//! STARTTLS always (no plaintext fallback, docs/reliability.md rule 10), certificates verified
//! against the system roots or `smtp.ca_file`, credentials from a file or the environment, and
//! one timeout over the whole exchange of a message (docs/crates.md, lettre).

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, Message, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::SmtpSettings;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The configuration cannot make a transport (a bad CA file, an address).
    #[error("{0}")]
    Setup(String),
    /// The server refused for good (a 5xx answer): sending the same again will not help.
    #[error("the SMTP server refused the message: {0}")]
    Refused(String),
    /// Connection, TLS, timeout or a 4xx answer: worth trying again later.
    #[error("cannot send by SMTP: {0}")]
    Transient(String),
}

/// A file to attach.
#[derive(Clone, Debug)]
pub struct MailAttachment {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// A message to send, before the sender's address is put on it.
#[derive(Clone, Debug)]
pub struct Mail {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    /// A stable Message-ID (without angle brackets), so a receiver can tell a resend.
    pub message_id: Option<String>,
    pub attachments: Vec<MailAttachment>,
}

/// The SMTP transport built from `[smtp]`.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
    host: String,
    /// Credentials are configured: the server is logged in to.
    logs_in: bool,
    /// Takes the password out of the server's words before they are recorded anywhere.
    redactor: crate::secrets::Redactor,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("host", &self.host).field("from", &self.from.to_string()).finish()
    }
}

impl Mailer {
    pub fn new(smtp: &SmtpSettings) -> Result<Mailer, MailError> {
        let mut tls = TlsParameters::builder(smtp.host.clone());
        if let Some(ca) = &smtp.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| MailError::Setup(format!("smtp.ca_file: cannot read {}: {e}", ca.display())))?;
            let certificate = Certificate::from_pem(&pem).map_err(|e| {
                MailError::Setup(format!("smtp.ca_file: {} is not a PEM certificate: {e}", ca.display()))
            })?;
            tls = tls.certificate_store(CertificateStore::None).add_root_certificate(certificate);
        }
        let tls = tls.build_rustls().map_err(|e| MailError::Setup(format!("smtp: TLS setup failed: {e}")))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
            .port(smtp.port)
            .tls(Tls::Required(tls))
            .timeout(Some(smtp.timeout));
        if let (Some(username), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(username.clone(), password.expose_secret().to_string()));
        }
        let from = smtp
            .from
            .parse::<Mailbox>()
            .map_err(|e| MailError::Setup(format!("smtp.from: `{}` is not an email address: {e}", smtp.from)))?;
        let password = smtp.password.as_ref().map(|p| p.expose_secret().to_string()).unwrap_or_default();
        let redactor = crate::secrets::Redactor::new([password.as_str()], None);
        let logs_in = smtp.username.is_some() && smtp.password.is_some();
        Ok(Mailer {
            transport: builder.build(),
            from,
            timeout: smtp.timeout,
            host: smtp.host.clone(),
            logs_in,
            redactor,
        })
    }

    /// Checks the server without sending anything (`providers test`): connects, upgrades with
    /// STARTTLS, logs in when credentials are configured, asks NOOP and quits. Returns what
    /// worked, for people.
    pub async fn probe(&self) -> Result<String, MailError> {
        match tokio::time::timeout(self.timeout, self.transport.test_connection()).await {
            Err(_) => Err(MailError::Transient(format!("no answer from {} within {:?}", self.host, self.timeout))),
            Ok(Ok(true)) => Ok(format!(
                "SMTP {}: connected, STARTTLS{}, NOOP answered (nothing sent)",
                self.host,
                if self.logs_in { ", logged in" } else { "" }
            )),
            Ok(Ok(false)) => Err(MailError::Transient(format!("{} did not answer NOOP", self.host))),
            Ok(Err(error)) if error.is_permanent() => Err(MailError::Refused(self.redactor.redact(&error.to_string()))),
            Ok(Err(error)) => Err(MailError::Transient(self.redactor.redact(&error.to_string()))),
        }
    }

    /// Sends `mail`; `Ok` once the server accepted it (its answer to the end of DATA).
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = self.build(mail)?;
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Err(_) => Err(MailError::Transient(format!("no answer from {} within {:?}", self.host, self.timeout))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) if error.is_permanent() => Err(MailError::Refused(self.redactor.redact(&error.to_string()))),
            Ok(Err(error)) => Err(MailError::Transient(self.redactor.redact(&error.to_string()))),
        }
    }

    fn build(&self, mail: &Mail) -> Result<Message, MailError> {
        let mut builder = Message::builder().from(self.from.clone()).subject(mail.subject.clone()).date_now();
        for to in &mail.to {
            let mailbox =
                to.parse::<Mailbox>().map_err(|e| MailError::Setup(format!("`{to}` is not an email address: {e}")))?;
            builder = builder.to(mailbox);
        }
        if let Some(id) = &mail.message_id {
            builder = builder.message_id(Some(format!("<{id}>")));
        }
        let text = SinglePart::plain(mail.text.clone());
        let built = if mail.attachments.is_empty() {
            builder.singlepart(text)
        } else {
            let mut parts = MultiPart::mixed().singlepart(text);
            for file in &mail.attachments {
                let content_type = ContentType::parse(file.content_type)
                    .map_err(|e| MailError::Setup(format!("content type {}: {e}", file.content_type)))?;
                parts = parts.singlepart(Attachment::new(file.name.clone()).body(file.bytes.clone(), content_type));
            }
            builder.multipart(parts)
        };
        built.map_err(|e| MailError::Setup(format!("cannot build the message: {e}")))
    }
}
