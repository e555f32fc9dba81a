//! Rework of a load's documents and of a rejected invoice (docs/design.md §2): `factord loads
//! docs` and `factord loads retry`. The command line only formats what these return.
//!
//! `loads docs`: each file given is checked as the invoicing checks a POD (a readable,
//! unencrypted PDF with pages, under `invoicing.max_document_bytes`); one that is not refuses
//! the whole command, naming the file, before anything is copied or stored. The files are then
//! copied into `documents/rework/` under names that cannot clash with a file already there
//! (temp name, fsync, then a hard link that fails rather than replace), the store records the
//! change with its history row ([`Store::record_documents`]), and a Queued load's packet is
//! rebuilt at once under the same invoice number and date, with the packet order invoice, rate
//! confirmation, BOL, POD, lumper receipt, other documents. A load past Queued keeps its
//! documents for its next pass (`loads retry`).
//!
//! `loads retry`: the store moves the rejected load back to Queued ([`Store::retry_rejected_load`]),
//! then the packet is rebuilt from today's data and documents, and the next batch to the
//! subsidiary's provider takes it under the same invoice number. A crash between the commit and
//! the rebuild leaves the packet marked stale: the next invoice pass or submission rebuilds it
//! before any batch may take the load (the submission pre-flight holds it back until then).

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::files::{safe_file_name, sync_dir, write_synced};
use crate::invoicing::packet::check_document;
use crate::invoicing::rebuild::rebuild_stale_packets;
use crate::providers::{Transport, find_provider};
use crate::store::{DocumentChange, DocumentKind, ReworkError, Store, StoreError};

/// Why a rework command did nothing (nothing was copied or stored).
#[derive(Debug, thiserror::Error)]
pub enum ReworkCommandError {
    /// The command was given wrongly (no document, an empty reason).
    #[error("{0}")]
    Usage(String),
    /// The load or a file cannot take this change; the message names the file or the cause.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rebuilding the packet: {0}")]
    Rebuild(#[from] crate::invoicing::job::InvoiceError),
}

impl From<ReworkError> for ReworkCommandError {
    fn from(error: ReworkError) -> Self {
        match error {
            ReworkError::Store(error) => ReworkCommandError::Store(error),
            ReworkError::Refused(message) => ReworkCommandError::Refused(message),
        }
    }
}

/// The files given to `loads docs`, by kind.
#[derive(Clone, Debug, Default)]
pub struct DocumentFiles {
    pub pod: Option<PathBuf>,
    pub rate_confirmation: Option<PathBuf>,
    pub bol: Option<PathBuf>,
    pub lumper: Option<PathBuf>,
    pub other: Vec<PathBuf>,
}

impl DocumentFiles {
    /// Every file with its kind, in packet order.
    fn listed(&self) -> Vec<(DocumentKind, &Path)> {
        let singles = [
            (DocumentKind::RateConfirmation, &self.rate_confirmation),
            (DocumentKind::Bol, &self.bol),
            (DocumentKind::Pod, &self.pod),
            (DocumentKind::Lumper, &self.lumper),
        ];
        let mut out: Vec<(DocumentKind, &Path)> =
            singles.into_iter().filter_map(|(kind, path)| path.as_deref().map(|p| (kind, p))).collect();
        out.extend(self.other.iter().map(|p| (DocumentKind::Other, p.as_path())));
        out
    }
}

/// What `loads docs` did (`--json`).
#[derive(Clone, Debug, Serialize)]
pub struct DocsReport {
    /// The documents stored: kind, the file given, and its copy under `documents/`.
    pub documents: Vec<StoredDocument>,
    pub invoice_number: Option<String>,
    pub load_number: String,
    /// What happens next with the documents.
    pub next: String,
    /// The packet file, when it was rebuilt now.
    pub packet: Option<String>,
    /// The load is Queued and its packet was rebuilt now.
    pub packet_rebuilt: bool,
    /// The documents these replaced (POD, rate confirmation, BOL, lumper receipt).
    pub replaced: Vec<ReplacedDocument>,
    pub status: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct StoredDocument {
    pub kind: DocumentKind,
    /// Relative to the documents folder, as `loads show` names documents.
    pub path: String,
    /// The file as given on the command line.
    pub source: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReplacedDocument {
    pub kind: DocumentKind,
    pub path: String,
}

/// What `loads retry` did (`--json`).
#[derive(Clone, Debug, Serialize)]
pub struct RetryReport {
    /// The factor that holds the invoice already, when a batch had delivered it.
    pub factor: Option<String>,
    /// That factor's reference for the invoice (OTR's `invoicePkey`).
    pub factor_reference: Option<String>,
    /// The status the load came from: `Queued` or `Invoiced`.
    pub from: String,
    pub invoice_number: Option<String>,
    pub load_number: String,
    /// What happens next.
    pub next: String,
    pub packet: Option<String>,
    /// The packet was rebuilt now from today's data and documents.
    pub packet_rebuilt: bool,
    /// The factor's rejection that was cleared.
    pub rejection: String,
    /// `Queued`.
    pub status: String,
}

/// `factord loads docs`: checks, copies and records the documents, and rebuilds a Queued
/// load's packet at once.
pub async fn attach_documents(
    store: &Store,
    settings: &Settings,
    load_number: &str,
    files: &DocumentFiles,
    reason: &str,
) -> Result<DocsReport, ReworkCommandError> {
    let listed = files.listed();
    if listed.is_empty() {
        return Err(ReworkCommandError::Usage(
            "give at least one document: --pod, --rc, --bol, --lumper or --other".to_string(),
        ));
    }
    let reason = required_reason(reason)?;
    if store.load_detail(load_number).await?.is_none() {
        return Err(StoreError::LoadNotFound(load_number.to_string()).into());
    }
    // Every file is checked before any is copied: a broken one changes nothing.
    let limit = settings.invoicing.max_document_bytes;
    let mut checked = Vec::with_capacity(listed.len());
    for (kind, path) in &listed {
        let owned = path.to_path_buf();
        let bytes = tokio::task::spawn_blocking(move || read_checked(&owned, limit))
            .await
            .unwrap_or_else(|e| Err(format!("{} could not be checked: {e}", path.display())))
            .map_err(|problem| ReworkCommandError::Refused(format!("{} {problem}", kind.label())))?;
        checked.push((*kind, *path, bytes));
    }
    let mut copied: Vec<(DocumentKind, String, String, PathBuf)> = Vec::new();
    for (kind, source, bytes) in checked {
        match copy_into_documents(&settings.paths.documents, load_number, kind, &bytes) {
            Ok((relative, absolute)) => copied.push((kind, source.display().to_string(), relative, absolute)),
            Err(error) => {
                remove_copies(&copied);
                return Err(ReworkCommandError::Refused(format!(
                    "{} {} could not be copied into {}: {error}",
                    kind.label(),
                    source.display(),
                    settings.paths.documents.display()
                )));
            }
        }
    }
    let change = DocumentChange {
        load_number,
        documents: copied.iter().map(|(kind, _, relative, _)| (*kind, relative.clone())).collect(),
        reason,
    };
    let recorded = match store.record_documents(&change).await {
        Ok(recorded) => recorded,
        Err(error) => {
            remove_copies(&copied);
            return Err(error.into());
        }
    };
    tracing::info!(load = %load_number, documents = copied.len(), status = %recorded.status, "documents recorded");
    let (packet, packet_rebuilt, next) = if recorded.packet_stale {
        let rebuilt = rebuild_now(store, settings, &recorded.subsidiary, load_number).await?;
        let next = match &rebuilt {
            Ok(_) => "the packet was rebuilt with the new documents; the next batch takes it".to_string(),
            Err(reason) => format!("the packet could not be rebuilt yet ({reason}); the next pass tries again"),
        };
        let ok = rebuilt.is_ok();
        (rebuilt.ok().flatten(), ok, next)
    } else {
        (None, false, next_for_status(recorded.status))
    };
    Ok(DocsReport {
        documents: copied.into_iter().map(|(kind, source, path, _)| StoredDocument { kind, path, source }).collect(),
        invoice_number: recorded.invoice_number,
        load_number: load_number.to_string(),
        next,
        packet,
        packet_rebuilt,
        replaced: recorded.replaced.into_iter().map(|(kind, path)| ReplacedDocument { kind, path }).collect(),
        status: recorded.status.to_string(),
    })
}

/// `factord loads retry`: a rejected load back to Queued with a rebuilt packet.
pub async fn retry_load(
    store: &Store,
    settings: &Settings,
    load_number: &str,
    reason: &str,
) -> Result<RetryReport, ReworkCommandError> {
    let reason = required_reason(reason)?;
    let recorded = store.retry_rejected_load(load_number, reason).await?;
    tracing::info!(load = %load_number, from = %recorded.from, "rejected load back to Queued");
    let rebuilt = rebuild_now(store, settings, &recorded.subsidiary, load_number).await?;
    let invoice = recorded.invoice_number.clone().unwrap_or_default();
    let provider = settings
        .subsidiary(&recorded.subsidiary)
        .and_then(|s| s.factoring.as_ref())
        .map_or_else(|| "its factor".to_string(), |f| f.provider.name.to_string());
    let mut next = format!("the next batch to {provider} takes it again under invoice {invoice}");
    // An API factor keeps the invoice under its own id: the documents go to that invoice.
    if let Some((factor, Some(reference))) = &recorded.held_by
        && find_provider(factor).is_some_and(|p| p.transport == Transport::Api)
    {
        next.push_str(&format!(
            "; {factor} holds it as {reference}: the documents are added to that invoice, not sent as a new one"
        ));
    }
    if let Err(reason) = &rebuilt {
        next = format!("{next}; the packet could not be rebuilt yet ({reason}): the next pass tries again");
    }
    let (factor, factor_reference) = match recorded.held_by {
        Some((factor, reference)) => (Some(factor), reference),
        None => (None, None),
    };
    Ok(RetryReport {
        factor,
        factor_reference,
        from: recorded.from.to_string(),
        invoice_number: recorded.invoice_number,
        load_number: load_number.to_string(),
        next,
        packet_rebuilt: rebuilt.is_ok(),
        packet: rebuilt.ok().flatten(),
        rejection: recorded.rejection,
        status: crate::domain::LoadStatus::Queued.to_string(),
    })
}

fn required_reason(reason: &str) -> Result<&str, ReworkCommandError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ReworkCommandError::Usage("--reason must say why (it is written to the load's history)".into()));
    }
    Ok(reason)
}

/// What happens to documents given to a load that is not Queued.
fn next_for_status(status: crate::domain::LoadStatus) -> String {
    use crate::domain::LoadStatus;
    match status {
        LoadStatus::Delivered | LoadStatus::Released => {
            "the documents go into the packet when the load is invoiced".to_string()
        }
        _ => format!(
            "the load is {status}: the documents are kept, and join its packet if the load is retried \
             (`factord loads retry`)"
        ),
    }
}

/// Rebuilds the subsidiary's stale packets now and says how this load's went: `Ok(path)` (the
/// packet path, `None` when the provider is inactive and nothing was rebuilt yet) or why not.
async fn rebuild_now(
    store: &Store,
    settings: &Settings,
    subsidiary: &str,
    load_number: &str,
) -> Result<Result<Option<String>, String>, ReworkCommandError> {
    let report = rebuild_stale_packets(store, settings, Some(subsidiary), &CancellationToken::new()).await?;
    if let Some(failed) = report.failed.iter().find(|w| w.load_number == load_number) {
        return Ok(Err(failed.reason.clone()));
    }
    let detail = store.load_detail(load_number).await?;
    let load = detail.map(|d| d.load);
    match load {
        Some(load) if report.rebuilt.iter().any(|r| r.load_number == load_number) => Ok(Ok(load.packet_path)),
        Some(load) => Ok(Err(load.waiting_reason.unwrap_or_else(|| {
            format!("subsidiary {subsidiary}'s provider is not active; the packet is rebuilt once it is")
        }))),
        None => Err(StoreError::LoadNotFound(load_number.to_string()).into()),
    }
}

/// Reads a file given on the command line and checks it as a packet document; the error
/// completes a sentence starting with the document's kind.
fn read_checked(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let size = std::fs::metadata(path).map_err(|e| format!("{shown} is unreadable: {e}"))?.len();
    if size > limit {
        return Err(format!("{shown} is {size} bytes, over invoicing.max_document_bytes ({limit})"));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{shown} is unreadable: {e}"))?;
    check_document(&bytes).map_err(|problem| format!("{shown} {problem}"))?;
    Ok(bytes)
}

/// Copies a checked document into `documents/rework/` under a new name:
/// `<load>-<kind>-<UTC time>-<random>.pdf`, written under a temp name and linked to its final
/// name (a link fails rather than replace a file), then the folder synced. Returns the path
/// relative to the documents folder and the absolute one.
fn copy_into_documents(
    documents: &Path,
    load_number: &str,
    kind: DocumentKind,
    bytes: &[u8],
) -> std::io::Result<(String, PathBuf)> {
    let dir = documents.join("rework");
    std::fs::create_dir_all(&dir)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
    for _ in 0..8 {
        let random = getrandom::u32().map_err(|e| std::io::Error::other(e.to_string()))?;
        let name = safe_file_name(&format!("{load_number}-{}-{stamp}-{random:08x}.pdf", kind.as_str()));
        let temp = dir.join(format!(".{name}.part"));
        let target = dir.join(&name);
        write_synced(&temp, bytes)?;
        let linked = std::fs::hard_link(&temp, &target);
        let _ = std::fs::remove_file(&temp);
        match linked {
            Ok(()) => {
                sync_dir(&dir)?;
                return Ok((format!("rework/{name}"), target));
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
    }
    Err(std::io::Error::other("no free name after 8 tries"))
}

/// Removes copies made before a later step failed (they are referenced by nothing).
fn remove_copies(copied: &[(DocumentKind, String, String, PathBuf)]) {
    for (_, _, _, path) in copied {
        let _ = std::fs::remove_file(path);
    }
}
