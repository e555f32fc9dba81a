//! HTTP API transports: a batch goes to the factor's API, one outcome comes back per invoice.
//!
//! [`ApiTransport`] owns what every API factor shares: the reqwest client (connect timeout,
//! per-request timeout, no redirects), retries of transient failures with capped exponential
//! backoff, full jitter and `Retry-After` (docs/reliability.md rule 9), secrets exposed only while a
//! request is built and scrubbed from every reason (rule 10), and the walk over a batch's
//! invoices. Each provider keeps its request/response mapping in its own file, so a partner's
//! spec replaces one file:
//!
//! - [`otr`]: OTR Solutions, on its public contract (`docs/providers/otr.md`): token
//!   login, one invoice per request, POD, rate confirmation and packet uploaded as documents;
//!   dedupes by (ClientDOT, InvoiceNo) with 409 and the existing `invoicePkey`.
//! - [`apex`]: Apex Capital: one schedule per batch, then the schedule number looked up.
//! - [`saint_johns`], [`tafs`], [`trufunding`]: no public API; factord's own mapping of one
//!   request per invoice, shared flow in [`per_invoice`].
//!
//! Credit checks ([`ApiTransport::check_credit`]) go through the same client, retries and
//! scrubbing, for the providers the catalogue lists with `credit_checks`: OTR (`broker-check`,
//! from its public docs) and Saint Johns (factord's own mapping, in its file).
//!
//! Reconciliation (rule 5): after a crash left a batch `sending`, [`ApiTransport::reconcile`]
//! asks the factor what it holds (Apex) and resends only what it does not hold, with the same
//! idempotency keys; where the factor cannot be asked, it resends and relies on the factor
//! deduplicating (OTR by invoice number and USDOT, the others by the keys). Nothing is
//! submitted twice.

mod apex;
mod http;
mod otr;
mod per_invoice;
mod saint_johns;
mod tafs;
mod trufunding;

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{RequestBuilder, Url};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use super::batch::{Batch, BatchInvoice, BatchReceipt, InvoiceOutcome, ProviderError};
use super::{ApiCredential, Provider, Transport};
use crate::config::ApiSettings;
use crate::domain::{CreditResult, Customer};
use http::{Failure, FailureKind, Reply};

/// Per-request timeout (connect, send, and read of one attempt) unless [`ApiTransport::with_timeout`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries after the first attempt of each request.
const DEFAULT_RETRIES: u32 = 3;
/// After this many invoices in a row got no answer, the rest of the batch is not attempted:
/// a factor that hangs would otherwise hold a worker for invoices × attempts × timeout.
const STOP_AFTER_FAILED_IN_A_ROW: usize = 3;
/// Sent on every submission of factord's own mappings (Apex, Saint Johns, TAFS, TruFunding) so
/// that a resend is recognised (Stripe's convention). OTR dedupes by invoice number instead.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Sends batches to one API factor for one subsidiary's [`ApiSettings`].
pub struct ApiTransport<'a> {
    provider: &'static Provider,
    settings: &'a ApiSettings,
    /// `base_url`, parsed once; endpoints are path segments appended to it.
    base: Url,
    /// The provider's mapping, from its catalogue entry.
    api: ApiMapping,
    /// Connection pool with the connect timeout; redirects are off, because a redirect would
    /// carry the subscription key or API key headers to wherever it points.
    client: reqwest::Client,
    /// Whole-attempt timeout, set on every request.
    timeout: Duration,
    retries: u32,
    /// OTR's bearer token, fetched on first use, refreshed once on a 401. Never held across an
    /// await.
    token: Mutex<Option<Token>>,
}

/// Which provider file maps a provider's requests; each API provider's catalogue entry names
/// its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiMapping {
    /// [`otr`]: OTR's public contract.
    Otr,
    /// [`apex`]: schedules.
    Apex,
    /// [`saint_johns`]: one request per invoice, and credit checks.
    SaintJohns,
    /// [`tafs`]: one request per invoice.
    Tafs,
    /// [`trufunding`]: one request per invoice.
    TruFunding,
}

pub(crate) use otr::STATUSES as OTR_STATUSES;

/// How this transport walks a batch: by the provider's own flow, or one request per invoice.
#[derive(Clone, Copy)]
enum Mapping {
    Otr,
    Apex,
    PerInvoice(&'static per_invoice::Mapping),
}

impl From<ApiMapping> for Mapping {
    fn from(mapping: ApiMapping) -> Mapping {
        match mapping {
            ApiMapping::Otr => Mapping::Otr,
            ApiMapping::Apex => Mapping::Apex,
            ApiMapping::SaintJohns => Mapping::PerInvoice(&saint_johns::MAPPING),
            ApiMapping::Tafs => Mapping::PerInvoice(&tafs::MAPPING),
            ApiMapping::TruFunding => Mapping::PerInvoice(&trufunding::MAPPING),
        }
    }
}

/// A factor's answer to a credit check: its decision and its own words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditAnswer {
    pub result: CreditResult,
    /// The factor's text (`APPROVED`, `CALL OFFICE`, `NOT APPROVED: ...`), scrubbed.
    pub text: String,
}

struct Token {
    value: SecretString,
    /// When to fetch a new one without waiting for a 401 (the server's `expires_in`, early).
    renew_at: Option<Instant>,
}

/// Why one invoice's exchange stopped before it had an outcome.
enum Halt {
    /// No usable answer after retries; see [`FailureKind`].
    Failed(Failure),
    /// Nothing else in the batch will work either (credentials refused).
    Batch(ProviderError),
}

impl From<Failure> for Halt {
    fn from(failure: Failure) -> Halt {
        Halt::Failed(failure)
    }
}

impl From<ProviderError> for Halt {
    fn from(error: ProviderError) -> Halt {
        Halt::Batch(error)
    }
}

impl<'a> ApiTransport<'a> {
    /// Checks that `provider` is an API provider with a mapping, that `settings` holds the
    /// credentials it needs, and that they would not travel in plain text.
    ///
    /// Errors: [`ProviderError::Rejected`] for a provider without an API mapping or an unusable
    /// `base_url`; [`ProviderError::Auth`] for a missing credential or a plain `http://`
    /// address that is not loopback (credentials would be sent in clear).
    pub fn new(provider: &'static Provider, settings: &'a ApiSettings) -> Result<Self, ProviderError> {
        let Some(api) = provider.api else {
            return Err(ProviderError::Rejected(format!("{} has no API mapping in factord", provider.name)));
        };
        if provider.transport != Transport::Api {
            return Err(ProviderError::Rejected(format!("{} is not an API provider", provider.name)));
        }
        for credential in provider.api_credentials {
            let missing = match credential {
                ApiCredential::UsernamePassword => {
                    if settings.username.as_deref().is_none_or(|u| u.trim().is_empty()) {
                        Some("username")
                    } else if settings.password.is_none() {
                        Some("password_file or password_env")
                    } else {
                        None
                    }
                }
                ApiCredential::SubscriptionKey => {
                    settings.subscription_key.is_none().then_some("subscription_key_file or subscription_key_env")
                }
                ApiCredential::ApiKey => settings.api_key.is_none().then_some("api_key_file or api_key_env"),
                ApiCredential::ClientId => {
                    settings.client_id.as_deref().is_none_or(|c| c.trim().is_empty()).then_some("client_id")
                }
            };
            if let Some(key) = missing {
                return Err(ProviderError::Auth(format!("{}: factoring.api.{key} is not configured", provider.name)));
            }
        }
        let base = parse_base_url(provider, &settings.base_url)?;
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(DEFAULT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("factord/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Transient(format!("HTTP client: {}", http::describe_error(e))))?;
        Ok(ApiTransport {
            provider,
            settings,
            base,
            api,
            client,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            token: Mutex::new(None),
        })
    }

    /// The timeout of each request attempt (default 30 s); the connect timeout stays 10 s or
    /// this, whichever is shorter.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a request is retried after a transient failure (default 3).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Submits every invoice of the batch and returns one outcome per invoice, in batch order:
    /// a per-invoice refusal is that invoice's `Rejected`; an invoice still failing after its
    /// retries is `Transient`.
    ///
    /// Errors: [`ProviderError::Auth`] when the credentials are refused (a 401 after one token
    /// refresh, or a 403) before any invoice was accepted (after one, the rest come back
    /// `Transient` so the accepted ones are not lost); [`ProviderError::Transient`] when no
    /// invoice got an answer (server down, every request timing out or busy);
    /// [`ProviderError::Rejected`] when the factor refuses the batch as a whole (Apex's schedule).
    #[tracing::instrument(skip_all, fields(provider = self.provider.id, batch = %batch.id))]
    pub async fn send(&self, batch: &Batch) -> Result<BatchReceipt, ProviderError> {
        tracing::info!(invoices = batch.invoices.len(), "sending batch");
        let receipt = match Mapping::from(self.api) {
            Mapping::Otr => otr::send(self, batch).await,
            Mapping::Apex => apex::send(self, batch).await,
            Mapping::PerInvoice(mapping) => per_invoice::send(self, mapping, batch).await,
        }?;
        log_receipt(&receipt);
        Ok(receipt)
    }

    /// Settles a batch left `sending` by a crash: the outcome of the first attempt is unknown.
    ///
    /// - OTR: resends each invoice; OTR keys invoices by (ClientDOT, InvoiceNo) and answers one
    ///   it holds with 409 and its `invoicePkey`, which counts as created (the documents are
    ///   uploaded again). OTR documents no search by invoice number, so this is the lookup.
    /// - Apex: looks the schedule up by the external id it was created with (`<batch id>-<uid>`,
    ///   [`Batch::external_id`]); found → its schedule number and invoices; not found → resent
    ///   with the same idempotency key.
    /// - Saint Johns, TAFS, TruFunding: no lookup in factord's mapping; resent with the same
    ///   idempotency keys, which the mapping assumes the factor dedupes (a 409 counts as
    ///   accepted).
    ///
    /// `Ok(None)` means the factor could neither be asked nor safely resent to, so ops must
    /// check by hand; none of the current mappings needs it. Errors as for [`Self::send`].
    #[tracing::instrument(skip_all, fields(provider = self.provider.id, batch = %batch.id))]
    pub async fn reconcile(&self, batch: &Batch) -> Result<Option<BatchReceipt>, ProviderError> {
        tracing::info!(invoices = batch.invoices.len(), "reconciling batch left sending");
        let receipt = match Mapping::from(self.api) {
            Mapping::Otr => otr::reconcile(self, batch).await,
            Mapping::Apex => apex::reconcile(self, batch).await,
            Mapping::PerInvoice(mapping) => per_invoice::send(self, mapping, batch).await,
        }?;
        log_receipt(&receipt);
        Ok(Some(receipt))
    }

    /// The factor's status of one invoice, by the reference it gave when it took the invoice
    /// (OTR: `GET invoices/{invoicePkey}`, its `Status` as OTR wrote it, trimmed and scrubbed:
    /// `Pending`, `Advance Paid`, `Paid`, …). `Ok(None)` when the factor does not know the
    /// reference (404). Only providers with `status_api` in the catalogue answer.
    ///
    /// Errors: [`ProviderError::Transient`] when the factor did not answer (after the retries);
    /// [`ProviderError::Auth`] when the credentials are refused; [`ProviderError::Rejected`] for
    /// a provider without a status API or an answer without a status.
    #[tracing::instrument(skip_all, fields(provider = self.provider.id, reference))]
    pub async fn invoice_status(&self, reference: &str) -> Result<Option<String>, ProviderError> {
        let status = match Mapping::from(self.api) {
            Mapping::Otr => otr::invoice_status(self, reference).await,
            _ => return Err(ProviderError::Rejected(format!("{} offers no invoice status API", self.provider.name))),
        };
        match status {
            Ok(status) => Ok(status.map(|s| self.scrub(&s).trim().to_string())),
            Err(Halt::Failed(failure)) => Err(ProviderError::Transient(failure.reason)),
            Err(Halt::Batch(error)) => Err(error),
        }
    }

    /// Proves the connection and credentials without sending or changing anything, for
    /// `factord providers test`; returns what worked, in a few words.
    ///
    /// - OTR: a fresh login (`POST auth/token`), then `GET broker-check?brokerMc=<seller_mc>`
    ///   (the subsidiary's own MC; read-only) when there is one.
    /// - Apex: `GET schedules?externalId=…` for a batch id no batch has (read-only).
    /// - Saint Johns, TAFS, TruFunding: `GET base_url` with the credentials; any answer but
    ///   401/403 and 5xx counts.
    ///
    /// Errors carry the factor's own words, scrubbed: [`ProviderError::Auth`] when the
    /// credentials are refused, [`ProviderError::Transient`] when the factor cannot be reached or
    /// does not answer, [`ProviderError::Rejected`] for another refusal.
    #[tracing::instrument(skip_all, fields(provider = self.provider.id))]
    pub async fn probe(&self, seller_mc: Option<&str>) -> Result<String, ProviderError> {
        let answer = match Mapping::from(self.api) {
            Mapping::Otr => otr::probe(self, seller_mc).await,
            Mapping::Apex => apex::probe(self).await.map_err(Halt::Batch),
            Mapping::PerInvoice(mapping) => per_invoice::probe(self, mapping).await,
        };
        match answer {
            Ok(text) => Ok(self.scrub(&text)),
            Err(Halt::Failed(failure)) => Err(ProviderError::Transient(failure.reason)),
            Err(Halt::Batch(error)) => Err(error),
        }
    }

    /// Asks the factor about a customer's credit (the debtor).
    ///
    /// - OTR: `GET broker-check` by MC, then by DOT; a broker unknown by both is `Unknown`.
    /// - Saint Johns: factord's own mapping (see its file).
    ///
    /// Errors: [`ProviderError::Transient`] when the factor did not answer (down, 5xx, timeout,
    /// after the retries); [`ProviderError::Auth`] when the credentials are refused;
    /// [`ProviderError::Rejected`] for a provider without credit checks, a customer without the
    /// numbers the factor checks by, or a request the factor refuses.
    #[tracing::instrument(skip_all, fields(provider = self.provider.id, customer = %customer.id))]
    pub async fn check_credit(&self, customer: &Customer) -> Result<CreditAnswer, ProviderError> {
        let answer = match self.api {
            ApiMapping::Otr => otr::check_broker(self, customer).await,
            ApiMapping::SaintJohns => saint_johns::check_credit(self, customer).await,
            _ => return Err(ProviderError::Rejected(format!("{} offers no credit checks", self.provider.name))),
        };
        match answer {
            Ok(answer) => {
                let answer = CreditAnswer { text: self.scrub(&answer.text), ..answer };
                tracing::info!(result = %answer.result, text = %answer.text, "credit checked");
                Ok(answer)
            }
            Err(Halt::Failed(failure)) => Err(ProviderError::Transient(failure.reason)),
            Err(Halt::Batch(error)) => Err(error),
        }
    }

    /// `base_url` plus path segments (each percent-encoded as needed).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // `parse_base_url` refused cannot-be-a-base URLs, so this always succeeds.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A header carrying a secret, marked sensitive so that no `Debug` of the request shows it.
    /// The secret is exposed here only, while a request is being built.
    fn secret_header(&self, name: &'static str, secret: Option<&SecretString>) -> Result<HeaderValue, ProviderError> {
        let missing = || ProviderError::Auth(format!("{}: no credential for the {name} header", self.provider.name));
        let mut value = HeaderValue::from_str(secret.ok_or_else(missing)?.expose_secret()).map_err(|_| {
            ProviderError::Auth(format!(
                "{}: the credential for the {name} header has characters HTTP forbids",
                self.provider.name
            ))
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// `Authorization: Bearer <api_key>`, sensitive.
    fn bearer_api_key(&self) -> Result<(HeaderName, HeaderValue), ProviderError> {
        let key = self.settings.api_key.as_ref().map(|k| SecretString::from(format!("Bearer {}", k.expose_secret())));
        Ok((reqwest::header::AUTHORIZATION, self.secret_header("Authorization", key.as_ref())?))
    }

    /// Removes every configured secret (and the current token) from a text that may have come
    /// from a server or a library, before it goes into an error, an outcome or a log.
    /// Every form of them (percent-, form- and JSON-encoded, base64: [`crate::secrets`]).
    fn scrub(&self, text: &str) -> String {
        let token = self.token.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|t| t.value.clone());
        let secrets = [&self.settings.password, &self.settings.subscription_key, &self.settings.api_key, &token];
        let exposed = secrets.into_iter().flatten().map(|s| s.expose_secret());
        let basic = match (&self.settings.username, &self.settings.password) {
            (Some(user), Some(password)) => Some((user.as_str(), password.expose_secret())),
            _ => None,
        };
        crate::secrets::Redactor::new(exposed, basic).redact(text)
    }

    /// A server's body, scrubbed whole before anything is taken from it: a message cut to
    /// length or folded onto one line could otherwise keep part of an echoed secret.
    fn scrubbed_body(&self, body: &[u8]) -> Vec<u8> {
        self.scrub(&String::from_utf8_lossy(body)).into_bytes()
    }

    /// `HTTP <status>: <server message>`, scrubbed.
    fn status_text(&self, reply: &Reply) -> String {
        http::status_text(reply.status, &self.scrubbed_body(&reply.body))
    }

    /// The server's message from an error body, scrubbed.
    fn server_message(&self, reply: &Reply) -> Option<String> {
        http::server_message(&self.scrubbed_body(&reply.body))
    }

    /// One request, retried on transient failures. `build` makes a fresh request for every
    /// attempt (a multipart body cannot be replayed). Returns the first non-transient answer,
    /// or why there was none.
    async fn execute(&self, label: &str, build: &(dyn Fn() -> RequestBuilder + Sync)) -> Result<Reply, Failure> {
        let mut retry = 0u32;
        loop {
            let (failure, wait) = match build().timeout(self.timeout).send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = http::retry_after(response.headers(), chrono::Utc::now());
                    match http::read_body(response).await {
                        Ok(body) if !http::is_transient_status(status) => return Ok(Reply { status, body }),
                        Ok(body) => {
                            let reason = format!("{label}: {}", http::status_text(status, &self.scrubbed_body(&body)));
                            if let Some(wait) = retry_after.filter(|w| *w > http::RETRY_AFTER_CAP) {
                                let reason = format!("{reason}; asked to retry after {} s", wait.as_secs());
                                return Err(Failure { kind: FailureKind::Busy, reason });
                            }
                            (Failure { kind: FailureKind::Busy, reason }, retry_after)
                        }
                        Err(e) => {
                            let reason =
                                format!("{label}: HTTP {status}, then {}", self.scrub(&http::describe_error(e)));
                            (Failure { kind: FailureKind::NoAnswer, reason }, None)
                        }
                    }
                }
                Err(e) => {
                    let kind = if e.is_connect() { FailureKind::Refused } else { FailureKind::NoAnswer };
                    let transient = http::is_transient_error(&e);
                    let reason = format!("{label}: {}", self.scrub(&http::describe_error(e)));
                    if !transient {
                        return Err(Failure { kind, reason });
                    }
                    (Failure { kind, reason }, None)
                }
            };
            if retry >= self.retries {
                let attempts = retry + 1;
                let reason = format!("{} ({attempts} attempt{})", failure.reason, if attempts == 1 { "" } else { "s" });
                return Err(Failure { reason, ..failure });
            }
            let wait = wait.unwrap_or_else(|| http::backoff(retry));
            tracing::warn!(attempt = retry + 1, retry_in = ?wait, reason = %failure.reason, "transient failure; retrying");
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    /// Runs `submit` for each invoice in order and gathers the outcomes into a receipt, with
    /// the batch-level rules of [`Self::send`]: after a connection is refused, or after
    /// [`STOP_AFTER_FAILED_IN_A_ROW`] invoices without an answer, the rest are not attempted;
    /// no answer for any invoice is the batch's `Transient`.
    async fn each_invoice<'b, F, Fut>(&self, batch: &'b Batch, mut submit: F) -> Result<BatchReceipt, ProviderError>
    where
        F: FnMut(&'b BatchInvoice) -> Fut,
        Fut: Future<Output = Result<InvoiceOutcome, Halt>>,
    {
        let mut outcomes = Vec::with_capacity(batch.invoices.len());
        let mut unanswered = 0usize;
        let mut failed_in_a_row = 0usize;
        let mut first_failure: Option<String> = None;
        let mut stop: Option<String> = None;
        for invoice in &batch.invoices {
            let number = invoice.invoice_number.clone();
            if let Some(reason) = &stop {
                unanswered += 1;
                outcomes.push((number, InvoiceOutcome::Transient { reason: format!("not attempted: {reason}") }));
                continue;
            }
            let span = tracing::info_span!("invoice", invoice = %invoice.invoice_number);
            match submit(invoice).instrument(span.clone()).await {
                Ok(outcome) => {
                    failed_in_a_row = 0;
                    span.in_scope(|| log_outcome(&outcome));
                    outcomes.push((number, outcome));
                }
                Err(Halt::Failed(failure)) => {
                    unanswered += 1;
                    failed_in_a_row += 1;
                    span.in_scope(|| tracing::warn!(reason = %failure.reason, "no answer from the factor"));
                    if failure.kind == FailureKind::Refused || failed_in_a_row >= STOP_AFTER_FAILED_IN_A_ROW {
                        stop = Some(failure.reason.clone());
                    }
                    first_failure.get_or_insert_with(|| failure.reason.clone());
                    outcomes.push((number, InvoiceOutcome::Transient { reason: failure.reason }));
                }
                Err(Halt::Batch(error)) => {
                    if !outcomes.iter().any(|(_, o)| matches!(o, InvoiceOutcome::Accepted { .. })) {
                        return Err(error);
                    }
                    // Some invoices are already with the factor: keep their outcomes and give
                    // the rest back as transient rather than lose what was accepted.
                    tracing::error!(%error, "credentials refused part-way through the batch");
                    let reason = error.to_string();
                    outcomes.push((number, InvoiceOutcome::Transient { reason: reason.clone() }));
                    stop = Some(reason);
                }
            }
        }
        if !batch.invoices.is_empty() && unanswered == batch.invoices.len() {
            let reason = first_failure.unwrap_or_default();
            return Err(ProviderError::Transient(format!("{} did not answer: {reason}", self.provider.name)));
        }
        Ok(BatchReceipt { reference: None, outcomes })
    }

    /// The cached OTR token, or `None` when one must be fetched.
    fn cached_token(&self) -> Option<SecretString> {
        let guard = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().filter(|t| t.renew_at.is_none_or(|at| Instant::now() < at)).map(|t| t.value.clone())
    }

    fn store_token(&self, token: Option<Token>) {
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = token;
    }
}

fn log_outcome(outcome: &InvoiceOutcome) {
    match outcome {
        InvoiceOutcome::Accepted { reference } => {
            tracing::info!(reference = reference.as_deref().unwrap_or(""), "invoice accepted")
        }
        InvoiceOutcome::Rejected { reason } => tracing::warn!(%reason, "invoice rejected"),
        InvoiceOutcome::Transient { reason } => tracing::warn!(%reason, "invoice not taken this time"),
    }
}

fn log_receipt(receipt: &BatchReceipt) {
    let count = |f: fn(&InvoiceOutcome) -> bool| receipt.outcomes.iter().filter(|(_, o)| f(o)).count();
    tracing::info!(
        reference = receipt.reference.as_deref().unwrap_or(""),
        accepted = count(|o| matches!(o, InvoiceOutcome::Accepted { .. })),
        rejected = count(|o| matches!(o, InvoiceOutcome::Rejected { .. })),
        transient = count(|o| matches!(o, InvoiceOutcome::Transient { .. })),
        "batch answered"
    );
}

/// Parses `base_url`; plain `http://` only to a loopback address (tests, a local proxy), since
/// the credentials ride on every request (docs/reliability.md rule 10: no plaintext fallback).
fn parse_base_url(provider: &Provider, text: &str) -> Result<Url, ProviderError> {
    let url = Url::parse(text.trim())
        .map_err(|e| ProviderError::Rejected(format!("{}: factoring.api.base_url is not a URL: {e}", provider.name)))?;
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(ProviderError::Rejected(format!("{}: factoring.api.base_url has no host", provider.name)));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ProviderError::Auth(format!(
            "{}: factoring.api.base_url must not carry credentials; use the credential keys",
            provider.name
        )));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(ProviderError::Auth(format!(
            "{}: refusing to send credentials over plain http to {}; use https://",
            provider.name,
            url.host_str().unwrap_or_default()
        ))),
        other => Err(ProviderError::Rejected(format!(
            "{}: factoring.api.base_url scheme {other} is not http(s)",
            provider.name
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        // An IPv6 host comes bracketed: `[::1]`.
        Some(host) => {
            host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// Reads an invoice's packet, or says why it cannot be sent (a `Rejected` reason: the file is
/// factord's own and will not reappear by waiting).
async fn read_packet(invoice: &BatchInvoice) -> Result<Vec<u8>, String> {
    tokio::fs::read(&invoice.packet).await.map_err(|e| format!("packet {} unreadable: {e}", invoice.packet.display()))
}

impl fmt::Debug for ApiTransport<'_> {
    /// Names the provider and address only: no credential, no token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiTransport")
            .field("provider", &self.provider.id)
            .field("base_url", &self.base.as_str())
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}
