//! The invoice job (`factord invoice`, and a component of the daemon): one pass takes the
//! Released loads, and for each one that can be invoiced assigns its invoice number, renders
//! the invoice, merges invoice + rate confirmation + proof of delivery into one packet
//! (AutoMerge) and moves the load to Queued — or, for a direct customer, writes the invoice to
//! the outbox and moves the load to Invoiced. A load that cannot be invoiced stays Released
//! with the reason recorded, and the reason clears once the cause is fixed. A held load (`factord
//! loads hold`) is not taken at all until ops release it; the pass lists it as waiting.
//!
//! Each load is one unit that a crash cannot leave half done:
//! 1. claim (a lease in the database; a dead pass's claims expire),
//! 2. take the invoice number and write it on the load (one transaction; a retry reuses it),
//! 3. render and merge in memory, write the packet under a temp name `.<invoice>.<claim>.part`,
//! 4. commit Released → Queued/Invoiced with the packet path and a history row,
//! 5. rename the temp file to `<invoice>.pdf`.
//!
//! A kill before 4 leaves the load Released with no packet under its final name; a kill between
//! 4 and 5 leaves a temp file that the next pass renames ([`repair_packet_files`]).
//!
//! A direct invoice never replaces a file: invoice numbers start again after a database reset
//! while `outbox/<subsidiary>/direct/` is kept, so when `<invoice>.pdf` there holds another
//! invoice the new one is written as `<invoice>_2.pdf` (`_3`, … as needed), chosen before step 4
//! so the load records its file, and published in step 5 by a link that fails rather than
//! replace a file that appeared meanwhile.

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::{StreamExt, stream};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::content::{FactorRemit, InvoiceContent};
use super::packet::{DocumentProblem, check_document, merge_packet};
use super::render::render_invoice;
use crate::config::{InvoicingMethod, Settings, Subsidiary};
use crate::credit::{CreditCheck, PassChecks, check_before_queueing};
use crate::domain::{LoadLine, LoadStatus};
use crate::files::{sync_dir, write_synced};
use crate::store::{ClaimError, Completion, DocumentKind, LoadDocument, LoadRecord, Store, StoreError};

/// Most loads one pass takes; the next pass takes the rest.
const LOADS_PER_PASS: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum InvoiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// What one pass did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PassReport {
    /// Loads invoiced: Queued with a packet, or Invoiced directly.
    pub invoiced: Vec<Invoiced>,
    /// Loads that stay Released, with why.
    pub waiting: Vec<Waiting>,
    /// Loads whose invoice could not be made this time (they stay Released and are retried).
    pub failed: Vec<Waiting>,
    /// Queued packets rebuilt for the subsidiary's current factor and NOA (docs/design.md §4).
    pub rebuilt: super::rebuild::RebuildReport,
}

#[derive(Clone, Debug, Serialize)]
pub struct Invoiced {
    pub load_number: String,
    pub invoice_number: String,
    pub status: LoadStatus,
    pub path: String,
    pub pages: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Waiting {
    pub load_number: String,
    pub reason: String,
}

/// A load ready to be invoiced: the documents that go behind the invoice, already checked.
pub(super) struct Plan<'a> {
    subsidiary: &'a Subsidiary,
    pub(super) method: InvoicingMethod,
    /// Rate confirmation, bill of lading, proof of delivery, lumper receipt, other documents
    /// ([`packet_documents`]); empty when AutoMerge is off (direct only).
    pub(super) documents: Vec<lopdf::Document>,
    /// The load's line items (docs/design.md §7), in order.
    pub(super) lines: Vec<LoadLine>,
}

/// What became of one load whose invoice was being made.
enum Outcome {
    Invoiced(Invoiced),
    Failed(Waiting),
    /// Another pass took the load (our lease expired); nothing of ours remains.
    Lost,
}

/// One invoice pass over the Released loads (of one subsidiary, or all).
///
/// Loads go through in chunks: their documents are read and checked concurrently, invoice
/// numbers are then taken one by one in load order, and the packets are rendered, merged,
/// written and committed concurrently, one per core.
pub async fn run_once(
    store: &Store,
    settings: &Settings,
    subsidiary: Option<&str>,
    shutdown: &CancellationToken,
) -> Result<PassReport, InvoiceError> {
    repair_packet_files(store, settings).await?;
    let rebuilt = super::rebuild::rebuild_stale_packets(store, settings, subsidiary, shutdown).await?;
    let mut report = PassReport { rebuilt, ..PassReport::default() };
    let token = claim_token();
    let loads = store.claim_released_loads(subsidiary, &token, settings.invoicing.lease, LOADS_PER_PASS).await?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let lease = settings.invoicing.lease;
    let mut renewed = Instant::now();
    let mut credit_checks = PassChecks::new(settings);
    for chunk in loads.chunks(workers * 4) {
        if shutdown.is_cancelled() {
            for load in chunk {
                store.release_claim(load.id, &token, load.waiting_reason.as_deref()).await?;
            }
            continue;
        }
        // Keep the lease on the loads not yet done well ahead of its expiry.
        if renewed.elapsed() > lease / 3 {
            store.renew_claims(&token, lease).await?;
            renewed = Instant::now();
        }
        // The futures are collected before streaming them: a stream over a borrowing closure
        // trips the compiler's higher-ranked lifetime check inside a spawned task.
        let preparing: Vec<_> = chunk.iter().map(|load| prepare(store, settings, load)).collect();
        let plans: Vec<_> = stream::iter(preparing).buffered(workers).collect().await;
        let mut numbered = Vec::new();
        for (load, plan) in chunk.iter().zip(plans) {
            match plan {
                Ok(plan) => {
                    // A credit check of the previous load may have waited on a slow factor.
                    if renewed.elapsed() > lease / 3 {
                        store.renew_claims(&token, lease).await?;
                        renewed = Instant::now();
                    }
                    if let Some(number) =
                        number_invoice(store, settings, load, &token, &plan, &mut credit_checks).await?
                    {
                        numbered.push((load, plan, number));
                    }
                }
                Err(reasons) => {
                    let reason = reasons.join("; ");
                    if load.waiting_reason.as_deref() != Some(reason.as_str()) {
                        tracing::info!(load = %load.load_number, %reason, "load waits");
                    }
                    store.release_claim(load.id, &token, Some(&reason)).await?;
                    report.waiting.push(Waiting { load_number: load.load_number.clone(), reason });
                }
            }
        }
        let finishing: Vec<_> = numbered
            .into_iter()
            .map(|(load, plan, number)| finish_invoice(store, settings, load, &token, plan, number))
            .collect();
        let outcomes: Vec<_> = stream::iter(finishing).buffered(workers).collect().await;
        for outcome in outcomes {
            match outcome? {
                Outcome::Invoiced(done) => report.invoiced.push(done),
                Outcome::Failed(failed) => report.failed.push(failed),
                Outcome::Lost => {}
            }
        }
    }
    // Held loads were not claimed: they wait, and say why (docs/design.md §2 "Rework").
    let mut held: Vec<_> = store.held_loads(subsidiary, LoadStatus::Released).await?.into_values().collect();
    held.sort();
    for (load_number, detail, waiting) in held {
        let reason = crate::rework::held_reason(&load_number, &detail, waiting.as_deref());
        report.waiting.push(Waiting { load_number, reason });
    }
    Ok(report)
}

/// Runs a credit check if one is due (whatever it answers, or if it fails, the load is
/// invoiced: the submission pre-flight acts on the result), then takes the load's invoice
/// number. `None` if the claim was lost.
async fn number_invoice<'s>(
    store: &Store,
    settings: &'s Settings,
    load: &LoadRecord,
    token: &str,
    plan: &Plan<'s>,
    credit_checks: &mut PassChecks<'s>,
) -> Result<Option<String>, InvoiceError> {
    if plan.method == InvoicingMethod::Factoring {
        match check_before_queueing(store, settings, plan.subsidiary, load, credit_checks).await {
            CreditCheck::NotNeeded | CreditCheck::Failed(_) => {}
            CreditCheck::Checked(result) => {
                tracing::info!(load = %load.load_number, %result, "customer's credit checked before queueing")
            }
        }
    }
    match store.assign_invoice_number(load, token, &plan.subsidiary.invoice_prefix).await {
        Ok(number) => Ok(Some(number)),
        Err(ClaimError::Lost(_)) => {
            tracing::warn!(load = %load.load_number, "claim lost before numbering; another pass has the load");
            Ok(None)
        }
        Err(ClaimError::Store(error)) => Err(error.into()),
    }
}

/// Renders and merges the packet, writes it under its temp name, moves the load, and gives
/// the packet its final name.
/// Writes an invoice file: a direct invoice in the outbox is for ops to read (0640, whatever
/// the umask); a packet stays under the umask.
fn write_invoice(method: InvoicingMethod, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match method {
        InvoicingMethod::Factoring => write_synced(path, bytes),
        InvoicingMethod::Direct => crate::files::write_shared(path, bytes),
    }
}

#[tracing::instrument(skip_all, fields(load = %load.load_number, invoice = %invoice_number))]
async fn finish_invoice(
    store: &Store,
    settings: &Settings,
    load: &LoadRecord,
    token: &str,
    plan: Plan<'_>,
    invoice_number: String,
) -> Result<Outcome, InvoiceError> {
    let (status, dir) = match plan.method {
        InvoicingMethod::Factoring => {
            (LoadStatus::Queued, settings.paths.data.join("packets").join(&plan.subsidiary.id))
        }
        InvoicingMethod::Direct => {
            (LoadStatus::Invoiced, settings.paths.outbox.join(&plan.subsidiary.id).join("direct"))
        }
    };
    let temp_path = dir.join(format!(".{invoice_number}.{token}.part"));
    let invoice_date = chrono::Utc::now().with_timezone(&plan.subsidiary.timezone).date_naive();
    let mark = plan.subsidiary.packet_mark();
    let content = invoice_content(plan.subsidiary, load, &plan.lines, &invoice_number, invoice_date, plan.method);
    let documents = plan.documents;
    let temp = temp_path.clone();
    let (method, number) = (plan.method, invoice_number.clone());
    // Rendering, merging, the fsync and the look at existing files are blocking work: off the
    // async threads.
    let made = tokio::task::spawn_blocking(move || -> Result<(usize, PathBuf), String> {
        let (bytes, pages) = make_packet(&content, &documents)?;
        let final_path = match method {
            InvoicingMethod::Factoring => dir.join(format!("{number}.pdf")),
            InvoicingMethod::Direct => free_direct_name(&dir, &number, &bytes)?,
        };
        write_invoice(method, &temp, &bytes).map_err(|e| format!("cannot write {}: {e}", temp.display()))?;
        Ok((pages, final_path))
    })
    .await;
    let (pages, final_path) = match made {
        Ok(Ok(made)) => made,
        Ok(Err(message)) => {
            let _ = std::fs::remove_file(&temp_path);
            return fail(store, load, token, format!("invoice {invoice_number} could not be made: {message}")).await;
        }
        Err(join_error) => {
            let _ = std::fs::remove_file(&temp_path);
            return fail(store, load, token, format!("invoice {invoice_number} could not be made: {join_error}")).await;
        }
    };

    let cause = match status {
        LoadStatus::Queued => format!("invoice {invoice_number} generated"),
        _ => format!("direct invoice {invoice_number} written to the outbox"),
    };
    let final_text = final_path.display().to_string();
    let completion = Completion {
        to: status,
        invoice_date: &invoice_date.to_string(),
        packet_path: &final_text,
        packet_noa: match plan.method {
            InvoicingMethod::Factoring => mark.as_deref(),
            InvoicingMethod::Direct => None,
        },
        waiting_reason: None,
        cause: &cause,
    };
    match store.complete_invoicing(load, token, completion).await {
        Ok(()) => {}
        Err(ClaimError::Lost(_)) => {
            let _ = std::fs::remove_file(&temp_path);
            tracing::warn!("claim lost before the move; another pass has the load");
            return Ok(Outcome::Lost);
        }
        Err(ClaimError::Store(error)) => {
            let _ = std::fs::remove_file(&temp_path);
            return Err(error.into());
        }
    }
    let published = match plan.method {
        InvoicingMethod::Factoring => publish(&temp_path, &final_path),
        InvoicingMethod::Direct => publish_new(&temp_path, &final_path),
    };
    published.map_err(|source| InvoiceError::Io { path: final_path.clone(), source })?;
    tracing::info!(%status, path = %final_text, pages, "load invoiced");
    Ok(Outcome::Invoiced(Invoiced {
        load_number: load.load_number.clone(),
        invoice_number,
        status,
        path: final_text,
        pages,
    }))
}

async fn fail(store: &Store, load: &LoadRecord, token: &str, reason: String) -> Result<Outcome, InvoiceError> {
    tracing::error!(%reason, "invoice failed; the load stays Released and is retried");
    store.release_claim(load.id, token, Some(&reason)).await?;
    Ok(Outcome::Failed(Waiting { load_number: load.load_number.clone(), reason }))
}

/// Decides whether the load can be invoiced now, and reads its documents. Every reason it
/// cannot is returned, so ops fix them all at once.
pub(super) async fn prepare<'a>(
    store: &Store,
    settings: &'a Settings,
    load: &LoadRecord,
) -> Result<Plan<'a>, Vec<String>> {
    let f = &load.fields;
    let Some(subsidiary) = settings.subsidiary(&f.subsidiary) else {
        return Err(vec![format!("subsidiary `{}` is not configured", f.subsidiary)]);
    };
    let method = subsidiary.method_for(&f.customer_id);
    let mut reasons = Vec::new();
    if method == InvoicingMethod::Factoring {
        // The NOA names the factor that gets paid: while the provider is inactive (being set up,
        // or being replaced) no factored invoice is made, so none carries a stale NOA.
        match &subsidiary.factoring {
            None => reasons.push(format!("subsidiary {} has no factoring provider configured", subsidiary.id)),
            Some(factoring) if !factoring.active => {
                reasons.push(format!("factoring provider {} is inactive for {}", factoring.provider.id, subsidiary.id));
            }
            Some(_) => {}
        }
        if subsidiary.noa.is_none() {
            reasons.push(format!("no NOA configured for {}", subsidiary.id));
        }
    }
    if !f.amount.is_positive() {
        reasons.push(format!("amount is not positive ({})", f.amount));
    }
    let mut documents = Vec::new();
    if subsidiary.automerge {
        let root = settings.paths.documents.clone();
        let limit = settings.invoicing.max_document_bytes;
        let wanted = match store.load_documents(load.id).await {
            Ok(extras) => packet_documents(load, &extras),
            Err(error) => return Err(vec![format!("the load's documents could not be listed: {error}")]),
        };
        let checked = tokio::task::spawn_blocking(move || {
            wanted
                .into_iter()
                .map(|(label, path)| read_document(&root, label, path.as_deref(), limit))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|error| vec![Err(format!("documents could not be read: {error}"))]);
        for result in checked {
            match result {
                Ok(document) => documents.push(document),
                Err(reason) => reasons.push(reason),
            }
        }
    }
    let lines = match store.load_lines(load.id).await {
        Ok(lines) => lines,
        Err(error) => return Err(vec![format!("the load's line items could not be read: {error}")]),
    };
    if reasons.is_empty() { Ok(Plan { subsidiary, method, documents, lines }) } else { Err(reasons) }
}

/// The documents behind the invoice, in packet order: rate confirmation, bill of lading, POD,
/// lumper receipt, other documents (docs/design.md §2; `extras` are the load's current
/// `loads docs` documents beyond its POD and rate confirmation). A POD and a rate confirmation
/// are required (`None` makes the load wait); the others go in when the load has them.
pub(super) fn packet_documents(load: &LoadRecord, extras: &[LoadDocument]) -> Vec<(&'static str, Option<String>)> {
    let of = |kind: DocumentKind| {
        extras.iter().filter(move |d| d.kind == kind).map(move |d| (kind.label(), Some(d.path.clone())))
    };
    let f = &load.fields;
    let mut wanted = vec![(DocumentKind::RateConfirmation.label(), f.rate_confirmation.clone())];
    wanted.extend(of(DocumentKind::Bol));
    wanted.push((DocumentKind::Pod.label(), f.pod.clone()));
    wanted.extend(of(DocumentKind::Lumper));
    wanted.extend(of(DocumentKind::Other));
    wanted
}

/// Reads and checks one document under the documents folder. Paths were checked at import to
/// stay inside it; a symlink pointing out of it is refused here too (docs/reliability.md rule 14).
fn read_document(root: &Path, label: &str, relative: Option<&str>, limit: u64) -> Result<lopdf::Document, String> {
    let Some(relative) = relative else {
        return Err(format!("missing {label}"));
    };
    let path = root.join(relative);
    let shown = path.display();
    let real = match path.canonicalize() {
        Ok(real) => real,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(format!("{label} {shown} not found")),
        Err(error) => return Err(format!("{label} {shown} is unreadable: {error}")),
    };
    if root.canonicalize().map(|r| !real.starts_with(r)).unwrap_or(true) {
        return Err(format!("{label} {shown} points outside the documents folder"));
    }
    let size = std::fs::metadata(&real).map_err(|e| format!("{label} {shown} is unreadable: {e}"))?.len();
    if size > limit {
        return Err(format!("{label} {shown} is {size} bytes, over invoicing.max_document_bytes ({limit})"));
    }
    let bytes = std::fs::read(&real).map_err(|e| format!("{label} {shown} is unreadable: {e}"))?;
    check_document(&bytes).map_err(|problem: DocumentProblem| format!("{label} {shown} {problem}"))
}

pub(super) fn invoice_content(
    subsidiary: &Subsidiary,
    load: &LoadRecord,
    lines: &[LoadLine],
    invoice_number: &str,
    invoice_date: chrono::NaiveDate,
    method: InvoicingMethod,
) -> InvoiceContent {
    let f = &load.fields;
    let factored = method == InvoicingMethod::Factoring;
    InvoiceContent {
        seller_name: subsidiary.name.clone(),
        seller_address: subsidiary.address.clone(),
        seller_mc: subsidiary.mc.clone(),
        seller_usdot: subsidiary.usdot.clone(),
        customer_id: f.customer_id.clone(),
        customer_name: load.customer_name.clone(),
        customer_mc: load.customer_mc.clone(),
        bill_to_name: f.bill_to_name.clone(),
        bill_to_address: f.bill_to_address.clone(),
        invoice_number: invoice_number.to_string(),
        invoice_date,
        // Loads imported before terms existed carry none: the subsidiary's apply.
        terms_days: f.terms_days.and_then(|d| u32::try_from(d).ok()).unwrap_or(subsidiary.terms_days),
        load_number: load.load_number.clone(),
        po_number: f.po_number.clone(),
        bol_number: f.bol_number.clone(),
        pickup: f.pickup(),
        delivery: f.delivery(),
        picked_up: f.pickup_date.clone(),
        delivered: f.delivered_at.clone(),
        shipper: f.shipper_name.clone(),
        consignee: f.consignee_name.clone(),
        lines: lines.to_vec(),
        amount: f.amount,
        remit_to_factor: subsidiary
            .factoring
            .as_ref()
            .filter(|_| factored)
            .map(|f| FactorRemit { name: f.provider.name.to_string(), address: f.remit_to.clone() }),
        noa: if factored { subsidiary.noa.clone() } else { None },
    }
}

/// Renders the invoice and merges the documents behind it; returns the bytes and page count.
pub(super) fn make_packet(content: &InvoiceContent, documents: &[lopdf::Document]) -> Result<(Vec<u8>, usize), String> {
    let invoice = render_invoice(content).map_err(|e| e.to_string())?;
    if documents.is_empty() {
        let pages = check_document(&invoice).map_err(|e| e.to_string())?.get_pages().len();
        return Ok((invoice, pages));
    }
    let invoice = check_document(&invoice).map_err(|e| format!("the rendered invoice {e}"))?;
    let mut parts: Vec<&lopdf::Document> = vec![&invoice];
    parts.extend(documents.iter());
    let pages = parts.iter().map(|d| d.get_pages().len()).sum();
    let bytes = merge_packet(&parts).map_err(|e| e.to_string())?;
    Ok((bytes, pages))
}

/// Renames the temp file to its final name and fsyncs the folder. If the temp file is gone
/// but the final file exists, a repair pass already published it.
fn publish(temp: &Path, final_path: &Path) -> std::io::Result<()> {
    match std::fs::rename(temp, final_path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && final_path.exists() => {}
        Err(error) => return Err(error),
    }
    sync_dir(final_path.parent().unwrap_or(Path::new(".")))
}

/// Most names [`free_direct_name`] tries for one invoice before it gives up.
const DIRECT_NAME_TRIES: u32 = 100;

/// The file a direct invoice goes to in `dir`: `<invoice>.pdf` when free (or already holding
/// exactly `bytes`), else the first free `<invoice>_<n>.pdf` from n = 2. A file of the invoice's
/// name holding another invoice (one made before a database reset, where numbers start again)
/// is never replaced.
fn free_direct_name(dir: &Path, invoice_number: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    let first = dir.join(format!("{invoice_number}.pdf"));
    for n in 1..=DIRECT_NAME_TRIES {
        let path = if n == 1 { first.clone() } else { dir.join(format!("{invoice_number}_{n}.pdf")) };
        match std::fs::read(&path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(path),
            Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
            Ok(held) if held == bytes => return Ok(path),
            Ok(_) => {
                if n == 1 {
                    tracing::warn!(file = %path.display(), "holds another invoice of this number: kept, the new one goes beside it");
                }
            }
        }
    }
    Err(format!(
        "{} and {} more files named after invoice {invoice_number} (up to {invoice_number}_{DIRECT_NAME_TRIES}.pdf) hold other invoices; move them out of {}",
        first.display(),
        DIRECT_NAME_TRIES - 1,
        dir.display()
    ))
}

/// As [`publish`], but never replaces a file: the temp file is linked to its final name (which
/// fails if the name exists) and then removed. A final file holding the same bytes counts as
/// published; one holding other bytes is an error naming it, and the temp file is kept.
fn publish_new(temp: &Path, final_path: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(temp, final_path) {
        Ok(()) => std::fs::remove_file(temp)?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && final_path.exists() => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            if std::fs::read(temp)? != std::fs::read(final_path)? {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!(
                        "{} appeared meanwhile holding another invoice; not replaced, the invoice stays in {}",
                        final_path.display(),
                        temp.display()
                    ),
                ));
            }
            std::fs::remove_file(temp)?;
        }
        // A file system without hard links: look, then rename.
        Err(_) if !final_path.exists() => std::fs::rename(temp, final_path)?,
        Err(error) => return Err(error),
    }
    sync_dir(final_path.parent().unwrap_or(Path::new(".")))
}

/// Finishes what a crash left between the commit and the rename: a temp packet whose load was
/// moved on is renamed to its final name; one whose load is still Released and no longer
/// claimed by the pass that wrote it is deleted. Temp files of a pass still holding its lease
/// are left alone.
pub async fn repair_packet_files(store: &Store, settings: &Settings) -> Result<(), InvoiceError> {
    for dir in packet_folders(settings) {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(InvoiceError::Io { path: dir, source }),
        };
        let direct = dir.ends_with("direct");
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((invoice, token)) = parse_temp_name(&name) else { continue };
            let temp = entry.path();
            match store.invoice_holder(invoice).await? {
                Some(holder) if holder.status > LoadStatus::Released => {
                    // The name the load recorded (a direct invoice may be `<invoice>_2.pdf`).
                    let final_path = holder
                        .packet_path
                        .map(PathBuf::from)
                        .filter(|p| p.parent() == Some(dir.as_path()))
                        .unwrap_or_else(|| dir.join(format!("{invoice}.pdf")));
                    if !final_path.exists() {
                        tracing::info!(file = %final_path.display(), "publishing a packet left unrenamed by a crash");
                        let published =
                            if direct { publish_new(&temp, &final_path) } else { publish(&temp, &final_path) };
                        published.map_err(|source| InvoiceError::Io { path: final_path.clone(), source })?;
                    } else if direct && std::fs::read(&temp).ok() != std::fs::read(&final_path).ok() {
                        tracing::error!(
                            file = %final_path.display(), temp = %temp.display(),
                            "the direct invoice's file holds another invoice: not replaced, the temp file is kept"
                        );
                    } else {
                        let _ = std::fs::remove_file(&temp);
                    }
                }
                Some(holder) if holder.claim_live && holder.claim_token.as_deref() == Some(token) => {}
                _ => {
                    tracing::info!(file = %temp.display(), "removing a packet left by an interrupted pass");
                    let _ = std::fs::remove_file(&temp);
                }
            }
        }
    }
    Ok(())
}

/// `data/packets/<subsidiary>/` and `outbox/<subsidiary>/direct/` of every configured subsidiary.
fn packet_folders(settings: &Settings) -> Vec<PathBuf> {
    settings
        .subsidiaries
        .iter()
        .flat_map(|s| {
            [settings.paths.data.join("packets").join(&s.id), settings.paths.outbox.join(&s.id).join("direct")]
        })
        .collect()
}

/// `.<invoice>.<token>.part` → (invoice, token).
fn parse_temp_name(name: &str) -> Option<(&str, &str)> {
    let inner = name.strip_prefix('.')?.strip_suffix(".part")?;
    inner.rsplit_once('.')
}

/// A random claim token: which pass holds a load, and the temp files it wrote.
pub(super) fn claim_token() -> String {
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("{:x}{:016x}", std::process::id(), random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_round_trip() {
        assert_eq!(parse_temp_name(".AE-12.abc123.part"), Some(("AE-12", "abc123")));
        assert_eq!(parse_temp_name("AE-12.pdf"), None);
        assert_eq!(parse_temp_name(".AE-12.pdf.tmp"), None);
    }
}
