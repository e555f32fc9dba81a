//! Batch submission (docs/design.md §4, docs/reliability.md rules 1–5): the Queued factored loads of a
//! subsidiary go to its factor in batches — as a folder in the outbox, by FTP, or by API.
//!
//! For each subsidiary whose provider is active:
//! 1. **Pre-flight**: every Queued load that is in no live batch is checked against what the
//!    provider needs (packet on disk, customer MC, USDOT, truck, reference number) and, for a
//!    provider with credit checks, against its customer's latest check (refreshed first when
//!    older than `credit.max_age`; see [`crate::credit`]). A load that fails waits in Queued
//!    with the reason recorded (a blocking credit answer also raises `credit_declined`); one
//!    the factor rejected waits until ops retry it (`factord loads retry`), and a held one until
//!    ops release it (`factord loads release`).
//! 2. **Write-ahead**: the batch (split at the provider's maximum size) and one item per invoice,
//!    with its idempotency key and a hash of what is sent, are committed as `sending` before any
//!    call. No transaction is open during the call.
//! 3. **Send**, then record each invoice's outcome in one transaction: accepted → Invoiced with
//!    the batch id and the factor's reference; rejected → the `rejected` exception; transient →
//!    stays Queued for a later batch.
//! 4. **Reconcile** (at start-up, before anything else): a batch left `sending` by a crash has an
//!    unknown outcome; the transport looks at the factor's side (outbox folder, remote file
//!    names, the API's records) and the outcome is recorded, never blindly resent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{Connection, Settings, Subsidiary, packet_mark_provider};
use crate::credit::{self, Gate};
use crate::domain::ExceptionKind;
use crate::providers::api::ApiTransport;
use crate::providers::batch::{
    Batch, BatchInvoice, BatchReceipt, BatchSeller, InvoiceOutcome, ProviderError, idempotency_key,
};
use crate::providers::ftp::FtpTransport;
use crate::providers::layout::batch_files;
use crate::providers::outbox::{Found, OutboxTransport};
use crate::providers::{Provider, Requirement, Transport, find_provider};
use crate::store::{BatchDraft, DraftItem, LoadDocument, LoadRecord, PendingBatch, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rebuilding packets for the current factor's NOA: {0}")]
    Rebuild(#[from] crate::invoicing::job::InvoiceError),
}

/// What one submission did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SubmitReport {
    pub batches: Vec<BatchReport>,
    /// Queued loads that did not go, with why.
    pub waiting: Vec<WaitingLoad>,
    /// `--dry-run`: what would go, per subsidiary, in batches.
    pub would_send: Vec<PlannedBatch>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BatchReport {
    pub id: String,
    pub subsidiary: String,
    pub provider: String,
    pub invoices: usize,
    pub total: String,
    /// `sent` or `failed`.
    pub status: String,
    pub reference: Option<String>,
    pub accepted: usize,
    pub rejected: usize,
    pub transient: usize,
    pub error: Option<String>,
    /// What happens next to the loads not taken, when some were not: they go again in the
    /// next batch, wait for `factord loads retry`, wait for the credentials to be fixed, or
    /// wait until the factor can be asked about a batch whose outcome is unknown.
    pub next: Option<String>,
    /// Settled by reconciliation after a crash rather than sent by this run.
    pub reconciled: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct WaitingLoad {
    pub subsidiary: String,
    pub load_number: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlannedBatch {
    pub subsidiary: String,
    pub provider: String,
    pub invoices: Vec<String>,
    pub total: String,
}

/// Submits the Queued loads of every active subsidiary (or one), now.
pub async fn run_once(
    store: &Store,
    settings: &Settings,
    only: Option<&str>,
    dry_run: bool,
    cause: &str,
) -> Result<SubmitReport, SubmitError> {
    let mut report = SubmitReport::default();
    if !dry_run {
        report.batches.extend(reconcile_in_flight(store, settings).await?);
    }
    for subsidiary in settings.subsidiaries.iter().filter(|s| only.is_none_or(|id| id == s.id)) {
        submit_subsidiary(store, settings, subsidiary, dry_run, cause, &mut report).await?;
    }
    Ok(report)
}

/// One subsidiary's submission: pre-flight, batches, outcomes.
pub async fn submit_subsidiary(
    store: &Store,
    settings: &Settings,
    subsidiary: &Subsidiary,
    dry_run: bool,
    cause: &str,
    report: &mut SubmitReport,
) -> Result<(), SubmitError> {
    submit_subsidiary_loads(store, settings, subsidiary, (dry_run, cause), None, report).await
}

/// [`submit_subsidiary`], of only the loads named in `only` when given (`submit --loads`).
/// A held load does not go (docs/design.md §2 "Rework"): it waits with why.
pub async fn submit_subsidiary_loads(
    store: &Store,
    settings: &Settings,
    subsidiary: &Subsidiary,
    (dry_run, cause): (bool, &str),
    only: Option<&std::collections::BTreeSet<String>>,
    report: &mut SubmitReport,
) -> Result<(), SubmitError> {
    let Some(factoring) = subsidiary.factoring.as_ref() else { return Ok(()) };
    if !dry_run {
        // A packet built for another factor or NOA is rebuilt before a batch may take it.
        let never = tokio_util::sync::CancellationToken::new();
        crate::invoicing::rebuild::rebuild_stale_packets(store, settings, Some(&subsidiary.id), &never).await?;
    }
    let mut loads = store.loads_to_submit(&subsidiary.id).await?;
    if let Some(only) = only {
        loads.retain(|l| only.contains(&l.load_number));
    }
    let held = store.held_loads(Some(&subsidiary.id), crate::domain::LoadStatus::Queued).await?;
    let mut loads_not_held = Vec::with_capacity(loads.len());
    for load in loads {
        let Some((_, detail, waiting)) = held.get(&load.id) else {
            loads_not_held.push(load);
            continue;
        };
        let reason = crate::rework::held_reason(&load.load_number, detail, waiting.as_deref());
        if !dry_run && waiting.as_deref() != Some(reason.as_str()) {
            store.set_waiting_reason(&load.load_number, Some(&reason)).await?;
        }
        report.waiting.push(WaitingLoad { subsidiary: subsidiary.id.clone(), load_number: load.load_number, reason });
    }
    let loads = loads_not_held;
    if loads.is_empty() {
        return Ok(());
    }
    let rejected = store.rejected_loads(&subsidiary.id).await?;
    // Credit checks older than max age are refreshed here, before any batch is written.
    let gates = credit::gates_for_submission(store, settings, subsidiary, &loads, dry_run).await?;
    let mut ready = Vec::new();
    for load in loads {
        let gate = gates.as_ref().and_then(|g| g.get(&load.fields.customer_id));
        if !dry_run {
            match gate {
                Some(Gate::Blocked(detail)) => store.flag_credit_declined(load.id, detail).await?,
                // No fresh answer, or an inactive provider: the last word stands.
                Some(Gate::Waiting(_)) => {}
                None if factoring.provider.credit_checks => {}
                // Cleared by an answer the policy lets through, or by a provider without checks.
                Some(Gate::Clear) | None => {
                    store.clear_exception(&load.load_number, ExceptionKind::CreditDeclined).await?;
                }
            }
        }
        match preflight(subsidiary, factoring.provider, factoring.active, &load, rejected.get(&load.id), gate) {
            Ok(()) => ready.push(load),
            Err(reason) => {
                if !dry_run && load.waiting_reason.as_deref() != Some(reason.as_str()) {
                    store.set_waiting_reason(&load.load_number, Some(&reason)).await?;
                }
                report.waiting.push(WaitingLoad {
                    subsidiary: subsidiary.id.clone(),
                    load_number: load.load_number.clone(),
                    reason,
                });
            }
        }
    }
    let size = factoring.max_batch_size.max(1) as usize;
    for chunk in ready.chunks(size) {
        if dry_run {
            report.would_send.push(PlannedBatch {
                subsidiary: subsidiary.id.clone(),
                provider: factoring.provider.id.to_string(),
                invoices: chunk.iter().filter_map(|l| l.invoice_number.clone()).collect(),
                total: sum(chunk).to_string(),
            });
            continue;
        }
        if let Some(batch) = send_batch(store, settings, subsidiary, factoring.provider, chunk, cause).await? {
            report.batches.push(batch);
        }
    }
    Ok(())
}

fn sum(loads: &[LoadRecord]) -> crate::domain::Money {
    loads.iter().fold(crate::domain::Money::ZERO, |s, l| s.checked_add(l.fields.amount).unwrap_or(s))
}

/// Why a Queued load cannot join a batch now, if anything. `rejected` is the factor's
/// rejection still open on the load; `credit` what the customer's latest credit check says
/// under the subsidiary's policy (`None` when the provider offers no checks).
fn preflight(
    subsidiary: &Subsidiary,
    provider: &'static Provider,
    active: bool,
    load: &LoadRecord,
    rejected: Option<&String>,
    credit: Option<&Gate>,
) -> Result<(), String> {
    if !active {
        return Err(format!("factoring provider {} is inactive for {}", provider.id, subsidiary.id));
    }
    let mark = subsidiary.packet_mark();
    if load.packet_noa != mark {
        let built_for = load.packet_noa.as_deref().map_or("an earlier configuration", packet_mark_provider);
        let now_for = mark.as_deref().map_or("no factor", packet_mark_provider);
        return Err(format!(
            "packet was built for {built_for}'s NOA; the subsidiary now factors with {now_for}: \
             it is rebuilt with the current NOA before it can go"
        ));
    }
    if let Some(detail) = rejected {
        return Err(format!(
            "rejected by the factor ({detail}); fix the cause, then `factord loads retry {} --reason TEXT`",
            load.load_number
        ));
    }
    let mut reasons = Vec::new();
    match credit {
        Some(Gate::Blocked(detail)) => reasons.push(detail.clone()),
        Some(Gate::Waiting(reason)) => reasons.push(reason.clone()),
        Some(Gate::Clear) | None => {}
    }
    match &load.packet_path {
        Some(path) if PathBuf::from(path).is_file() => {}
        Some(path) => reasons.push(format!("packet {path} is missing")),
        None => reasons.push("no packet".to_string()),
    }
    if load.invoice_number.is_none() {
        reasons.push("no invoice number".to_string());
    }
    for requirement in provider.requires {
        let present = match requirement {
            Requirement::CustomerMc => load.customer_mc.as_deref().is_some_and(|v| !v.is_empty()),
            Requirement::SellerUsdot => subsidiary.usdot.is_some(),
            Requirement::Truck => load.fields.truck.is_some(),
            Requirement::ReferenceNumber => load.fields.factor_reference.is_some(),
            Requirement::CustomerFactoringId => {
                subsidiary.factoring.as_ref().is_some_and(|f| f.customer_ids.contains_key(&load.fields.customer_id))
            }
            Requirement::Lane => {
                let f = &load.fields;
                [&f.pickup_city, &f.pickup_state, &f.delivery_city, &f.delivery_state]
                    .iter()
                    .all(|v| v.as_deref().is_some_and(|v| !v.trim().is_empty()))
            }
        };
        if !present {
            reasons.push(format!("{} ({} needs it)", requirement.missing(), provider.name));
        }
    }
    if reasons.is_empty() { Ok(()) } else { Err(reasons.join("; ")) }
}

/// The transport for a subsidiary's provider.
enum Sender<'a> {
    Outbox(OutboxTransport),
    /// A manual provider with `[subsidiary.factoring.email]`.
    Email(crate::providers::email::EmailTransport),
    Ftp(FtpTransport<'a>),
    Api(ApiTransport<'a>),
}

impl<'a> Sender<'a> {
    fn for_subsidiary(
        settings: &Settings,
        subsidiary: &'a Subsidiary,
        provider: &'static Provider,
    ) -> Result<Sender<'a>, ProviderError> {
        let connection = subsidiary.factoring.as_ref().map(|f| &f.connection);
        match (provider.transport, connection) {
            (Transport::Manual, _) => {
                let outbox = OutboxTransport::new(settings.paths.outbox.join(&subsidiary.id).join(provider.id));
                let email_to = subsidiary.factoring.as_ref().and_then(|f| f.email_to.clone());
                match (email_to, &settings.smtp) {
                    (Some(to), Some(smtp)) => {
                        let mailer =
                            crate::mail::Mailer::new(smtp).map_err(|e| ProviderError::Transient(e.to_string()))?;
                        Ok(Sender::Email(crate::providers::email::EmailTransport::new(outbox, mailer, to)))
                    }
                    _ => Ok(Sender::Outbox(outbox)),
                }
            }
            (Transport::Ftp, Some(Connection::Ftp(ftp))) => Ok(Sender::Ftp(FtpTransport::new(ftp))),
            (Transport::Api, Some(Connection::Api(api))) => {
                Ok(Sender::Api(ApiTransport::new(provider, api)?.with_timeout(api.timeout)))
            }
            _ => Err(ProviderError::Rejected(format!("{} has no connection configured", provider.name))),
        }
    }

    async fn send(&self, batch: &Batch) -> Result<BatchReceipt, ProviderError> {
        match self {
            Sender::Outbox(outbox) => outbox.send(batch, &files(batch)?),
            Sender::Email(email) => email.send(batch, &files(batch)?).await,
            Sender::Ftp(ftp) => ftp.send(batch, &files(batch)?).await,
            Sender::Api(api) => api.send(batch).await,
        }
    }

    /// What the factor's side holds of the batch: delivered, absent, or (the outbox, FTP and
    /// SFTP) a final name of the batch holding something else.
    async fn reconcile(&self, batch: &Batch) -> Result<Found, ProviderError> {
        let found = |receipt: Option<BatchReceipt>| receipt.map_or(Found::Absent, Found::Delivered);
        match self {
            Sender::Outbox(outbox) => outbox.reconcile(batch, &files(batch)?),
            Sender::Email(email) => email.reconcile(batch, &files(batch)?),
            Sender::Ftp(ftp) => ftp.reconcile(batch, &files(batch)?).await,
            Sender::Api(api) => api.reconcile(batch).await.map(found),
        }
    }
}

fn files(batch: &Batch) -> Result<Vec<crate::providers::layout::BatchFile>, ProviderError> {
    // A packet that vanished since pre-flight is not the factor's fault: try again later.
    batch_files(batch).map_err(|e| ProviderError::Transient(e.to_string()))
}

/// Writes one batch ahead, sends it, records the outcome.
#[tracing::instrument(skip_all, fields(subsidiary = %subsidiary.id, provider = provider.id))]
async fn send_batch(
    store: &Store,
    settings: &Settings,
    subsidiary: &Subsidiary,
    provider: &'static Provider,
    loads: &[LoadRecord],
    cause: &str,
) -> Result<Option<BatchReport>, SubmitError> {
    let date = chrono::Utc::now().with_timezone(&subsidiary.timezone).date_naive().to_string();
    // Hashing reads every packet: blocking work, off the async threads.
    let owned = loads.to_vec();
    let hashes = tokio::task::spawn_blocking(move || owned.iter().map(payload_hash).collect::<Vec<_>>())
        .await
        .unwrap_or_default();
    let items: Vec<DraftItem> = loads
        .iter()
        .zip(hashes.into_iter().chain(std::iter::repeat(String::new())))
        .map(|(load, payload_sha256)| DraftItem {
            load_id: load.id,
            invoice_number: load.invoice_number.clone().unwrap_or_default(),
            amount_cents: load.fields.amount.cents(),
            payload_sha256,
        })
        .collect();
    let lease = settings.submission.lease;
    let draft =
        BatchDraft { subsidiary: &subsidiary.id, provider: provider.id, batch_date: &date, cause, items, lease };
    let created = match store.create_batch(&draft).await {
        Ok(created) => created,
        Err(StoreError::AlreadyBatched) => {
            tracing::info!("another submitter batched these loads first");
            return Ok(None);
        }
        Err(error) => return Err(error.into()),
    };
    let keys: Vec<String> = loads
        .iter()
        .map(|l| idempotency_key(&created.id, &created.uid, l.invoice_number.as_deref().unwrap_or("")))
        .collect();
    let load_ids: Vec<i64> = loads.iter().map(|l| l.id).collect();
    let documents = match store.documents_of(&load_ids).await {
        Ok(documents) => documents,
        Err(error) => {
            // Written ahead but not sent: the batch fails whole and its loads go again.
            let failure = ProviderError::Transient(format!("the loads' documents could not be listed: {error}"));
            store.fail_batch(&created.id, &failure).await?;
            return Err(error.into());
        }
    };
    let batch = build_batch(
        &settings.paths.documents,
        subsidiary,
        provider,
        (&created.id, created.number, Some(created.uid.clone())),
        &date,
        loads.iter().zip(keys),
        &documents,
    );
    tracing::info!(batch = %batch.id, invoices = batch.invoices.len(), total = %batch.total(), "sending batch");
    let sender = match Sender::for_subsidiary(settings, subsidiary, provider) {
        Ok(sender) => sender,
        Err(error) => return finish(store, &batch, Err(error)).await.map(Some),
    };
    let result = holding_lease(store, &batch.id, lease, sender.send(&batch)).await;
    let result = match result {
        // A transient failure may have come after the factor took (part of) the batch: a
        // dropped answer, a lost reply to the last rename. Ask the factor before anything is
        // resent in a new batch; if it cannot be asked, the outcome stays unknown.
        Err(ProviderError::Transient(error)) => {
            match holding_lease(store, &batch.id, lease, sender.reconcile(&batch)).await {
                Ok(Found::Delivered(receipt)) => Ok(receipt),
                Ok(Found::Absent | Found::Clash(_)) => Err(ProviderError::Transient(error)),
                Err(_) => {
                    tracing::warn!(batch = %batch.id, %error, "outcome unknown; the batch is settled when the factor can be asked");
                    store.park_batch(&batch.id, &error).await?;
                    return Ok(Some(unknown_report(&batch, error)));
                }
            }
        }
        other => other,
    };
    finish(store, &batch, result).await.map(Some)
}

/// The report of a batch whose outcome is not known yet.
fn unknown_report(batch: &Batch, error: String) -> BatchReport {
    BatchReport {
        id: batch.id.clone(),
        subsidiary: batch.seller.id.clone(),
        provider: batch.provider.id.to_string(),
        invoices: batch.invoices.len(),
        total: batch.total().to_string(),
        status: "sending".to_string(),
        reference: None,
        accepted: 0,
        rejected: 0,
        transient: 0,
        error: Some(error),
        next: Some("outcome unknown: nothing is resent until the factor can be asked".to_string()),
        reconciled: false,
    }
}

/// Records a transport's answer and reports it.
async fn finish(
    store: &Store,
    batch: &Batch,
    result: Result<BatchReceipt, ProviderError>,
) -> Result<BatchReport, SubmitError> {
    let mut report = BatchReport {
        id: batch.id.clone(),
        subsidiary: batch.seller.id.clone(),
        provider: batch.provider.id.to_string(),
        invoices: batch.invoices.len(),
        total: batch.total().to_string(),
        status: "sent".to_string(),
        reference: None,
        accepted: 0,
        rejected: 0,
        transient: 0,
        error: None,
        next: None,
        reconciled: false,
    };
    match result {
        Ok(receipt) => {
            store.record_batch_outcome(&batch.id, receipt.reference.as_deref(), &receipt.outcomes).await?;
            for (_, outcome) in &receipt.outcomes {
                match outcome {
                    InvoiceOutcome::Accepted { .. } => report.accepted += 1,
                    InvoiceOutcome::Rejected { .. } => report.rejected += 1,
                    InvoiceOutcome::Transient { .. } => report.transient += 1,
                }
            }
            if report.accepted + report.rejected == 0 {
                report.status = "failed".to_string();
            }
            report.next = next_step(report.rejected, report.transient, crate::store::GOES_AGAIN);
            report.reference = receipt.reference;
            tracing::info!(
                batch = %batch.id, accepted = report.accepted, rejected = report.rejected, transient = report.transient,
                reference = report.reference.as_deref().unwrap_or(""), "batch recorded"
            );
        }
        Err(error) => {
            tracing::error!(batch = %batch.id, %error, "batch not delivered");
            store.fail_batch(&batch.id, &error).await?;
            report.status = "failed".to_string();
            let then = match error {
                ProviderError::Rejected(_) => {
                    report.rejected = batch.invoices.len();
                    crate::store::GOES_AGAIN
                }
                ProviderError::Auth(_) => {
                    report.transient = batch.invoices.len();
                    crate::store::CREDENTIALS_REFUSED
                }
                ProviderError::Transient(_) => {
                    report.transient = batch.invoices.len();
                    crate::store::GOES_AGAIN
                }
            };
            report.next = next_step(report.rejected, report.transient, then);
            report.error = Some(error.to_string());
        }
    }
    Ok(report)
}

/// What happens to a batch's loads that were not taken: `transient` ones as `then` says,
/// rejected ones wait for ops.
fn next_step(rejected: usize, transient: usize, then: &str) -> Option<String> {
    let mut parts = Vec::new();
    if transient > 0 {
        parts.push(format!("{transient} not taken: {then}"));
    }
    if rejected > 0 {
        parts.push(format!("{rejected} rejected: fix the cause, then `factord loads retry LOAD --reason TEXT`"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Finishes every batch a crash left `sending`: asks the transport what the factor has, and
/// records it; a batch that never arrived is marked failed, its loads free for a later batch.
pub async fn reconcile_in_flight(store: &Store, settings: &Settings) -> Result<Vec<BatchReport>, SubmitError> {
    let mut reports = Vec::new();
    for pending in store.batches_in_flight().await? {
        let Some(subsidiary) = settings.subsidiary(&pending.subsidiary) else {
            tracing::warn!(batch = %pending.id, subsidiary = %pending.subsidiary, "batch left sending for a subsidiary no longer configured");
            continue;
        };
        let Some(batch) = pending_batch(settings, &pending) else { continue };
        let provider = batch.provider;
        let lease = settings.submission.lease;
        // A batch whose sender still renews its lease is being sent right now, by this daemon
        // or another: it is not a crashed one.
        if !store.take_stale_batch(&pending.id, lease).await? {
            continue;
        }
        tracing::info!(batch = %batch.id, "reconciling a batch left sending by an earlier run");
        let result = match Sender::for_subsidiary(settings, subsidiary, provider) {
            Ok(sender) => holding_lease(store, &batch.id, lease, sender.reconcile(&batch)).await,
            Err(error) => Err(error),
        };
        let report = match result {
            Ok(Found::Delivered(receipt)) => finish(store, &batch, Ok(receipt)).await?,
            // A final name of the batch (outbox folder, remote file) holds something else: this
            // batch was not delivered.
            Ok(Found::Clash(error)) => finish(store, &batch, Err(ProviderError::Transient(error))).await?,
            Ok(Found::Absent) => {
                let error = ProviderError::Transient(
                    "not delivered before the daemon stopped; the loads go in a later batch".to_string(),
                );
                finish(store, &batch, Err(error)).await?
            }
            // The factor cannot be asked now: the outcome stays unknown until it can.
            Err(error) => {
                tracing::warn!(batch = %batch.id, %error, "cannot reconcile yet; the batch stays sending");
                continue;
            }
        };
        reports.push(BatchReport { reconciled: true, ..report });
    }
    Ok(reports)
}

/// Runs `work` while renewing the batch's lease every third of it, so no other process takes
/// the batch for a crashed one however long the transport takes.
async fn holding_lease<T>(
    store: &Store,
    batch_id: &str,
    lease: std::time::Duration,
    work: impl Future<Output = T>,
) -> T {
    let renew = async {
        loop {
            tokio::time::sleep(lease / 3).await;
            if let Err(error) = store.renew_batch_lease(batch_id, lease).await {
                tracing::warn!(batch = %batch_id, %error, "cannot renew the batch's lease");
            }
        }
    };
    tokio::select! {
        done = work => done,
        never = renew => never,
    }
}

/// A batch left `sending` as its transport sees it (the same files, names and keys as when it
/// was sent); `None` when its subsidiary or provider is no longer known.
pub fn pending_batch(settings: &Settings, pending: &PendingBatch) -> Option<Batch> {
    let subsidiary = settings.subsidiary(&pending.subsidiary)?;
    let provider = find_provider(&pending.provider)?;
    Some(build_batch(
        &settings.paths.documents,
        subsidiary,
        provider,
        (&pending.id, pending.number, pending.uid.clone()),
        &pending.batch_date,
        pending.items.iter().map(|(load, key)| (load, key.clone())),
        &pending.documents,
    ))
}

/// The batch as transports see it; `documents` is the documents folder the loads' document
/// paths are relative to, `extras` the loads' documents beyond POD and rate confirmation.
fn build_batch<'l>(
    documents: &Path,
    subsidiary: &Subsidiary,
    provider: &'static Provider,
    (id, number, uid): (&str, i64, Option<String>),
    date: &str,
    loads: impl Iterator<Item = (&'l LoadRecord, String)>,
    extras: &HashMap<i64, Vec<LoadDocument>>,
) -> Batch {
    Batch {
        id: id.to_string(),
        number,
        date: date.to_string(),
        uid,
        seller: BatchSeller {
            id: subsidiary.id.clone(),
            name: subsidiary.name.clone(),
            usdot: subsidiary.usdot.clone(),
            mc: subsidiary.mc.clone(),
        },
        provider,
        invoices: loads
            .map(|(load, key)| {
                let f = &load.fields;
                BatchInvoice {
                    invoice_number: load.invoice_number.clone().unwrap_or_default(),
                    load_number: load.load_number.clone(),
                    idempotency_key: key,
                    amount: f.amount,
                    invoice_date: load.invoice_date.clone().unwrap_or_else(|| date.to_string()),
                    customer_id: f.customer_id.clone(),
                    customer_name: load.customer_name.clone(),
                    customer_mc: load.customer_mc.clone(),
                    customer_dot: load.customer_dot.clone(),
                    customer_factoring_id: subsidiary
                        .factoring
                        .as_ref()
                        .and_then(|factoring| factoring.customer_ids.get(&f.customer_id).cloned()),
                    po_number: f.po_number.clone(),
                    reference_number: f.factor_reference.clone(),
                    truck: f.truck.clone(),
                    pickup: f.pickup(),
                    delivery: f.delivery(),
                    pickup_city: f.pickup_city.clone(),
                    pickup_state: f.pickup_state.clone(),
                    delivery_city: f.delivery_city.clone(),
                    delivery_state: f.delivery_state.clone(),
                    delivered_at: f.delivered_at.clone(),
                    packet: PathBuf::from(load.packet_path.clone().unwrap_or_default()),
                    pod: f.pod.as_ref().map(|p| documents.join(p)),
                    rate_confirmation: f.rate_confirmation.as_ref().map(|p| documents.join(p)),
                    extra_documents: extra_documents(documents, extras.get(&load.id)),
                    // A load this provider accepted before (then rejected, then retried): the
                    // factor's id of the invoice it holds.
                    held_reference: load.submission_reference.clone().filter(|_| {
                        provider.transport == Transport::Api && load.factor.as_deref() == Some(provider.id)
                    }),
                }
            })
            .collect(),
    }
}

/// A load's BOL, lumper receipt and other documents under `documents`, in packet order.
fn extra_documents(documents: &Path, extras: Option<&Vec<LoadDocument>>) -> Vec<PathBuf> {
    let mut extras: Vec<&LoadDocument> = extras.map(|e| e.iter().collect()).unwrap_or_default();
    // Stable: documents of one kind keep the order they were added in.
    extras.sort_by_key(|d| d.kind);
    extras.into_iter().map(|d| documents.join(&d.path)).collect()
}

/// sha256 over what is sent for one invoice: its fields and its packet's bytes.
fn payload_hash(load: &LoadRecord) -> String {
    let mut hasher = Sha256::new();
    for part in [
        load.invoice_number.as_deref().unwrap_or(""),
        &load.load_number,
        &load.fields.amount.cents().to_string(),
        &load.fields.customer_id,
        load.customer_mc.as_deref().unwrap_or(""),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    if let Some(bytes) = load.packet_path.as_ref().and_then(|p| std::fs::read(p).ok()) {
        hasher.update(&bytes);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
