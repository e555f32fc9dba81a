//! Purchase and payment reports (docs/design.md §5 and §8, docs/reliability.md rules 6–7): the factor's
//! files that ops drop into `inbox/<provider>/purchase/`, `inbox/<provider>/payment/` or
//! `inbox/<provider>/` (kind told by the columns), or give to `factord ingest`.
//!
//! A file goes: [`read`] (bounded CSV or XLSX into cells) → [`columns`] (find the header row,
//! match the aliases) → [`parse`] (typed rows; one unreadable amount or date refuses the
//! whole file) → [`apply`] (the rules, as a plan) → the store, which writes the plan, the
//! file's record and its row outcomes in one transaction. A file whose content was ingested
//! before (same provider, same sha256) changes nothing.

pub mod apply;
pub mod columns;
pub mod parse;
pub mod read;
pub mod stream;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::intake::inbox::{InboxFolder, StableFiles};
use crate::providers::PROVIDERS;
use crate::store::{Store, StoreError};
use apply::{Outcome, RowOutcome};
use read::Limits;
pub use stream::ResultOut;
use stream::{Attempt, AttemptError, Job};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    Purchase,
    Payment,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Purchase => "purchase",
            ReportKind::Payment => "payment",
        }
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "purchase" => Ok(ReportKind::Purchase),
            "payment" => Ok(ReportKind::Payment),
            other => Err(format!("`{other}` is not a report kind (purchase or payment)")),
        }
    }
}

/// What ingesting one file did: the `ingest --json` object of docs/design.md §6.
#[derive(Clone, Debug, Serialize)]
pub struct IngestSummary {
    pub file: String,
    pub provider: String,
    pub kind: Option<ReportKind>,
    pub rows: usize,
    pub applied: usize,
    pub skipped: usize,
    pub rejected: usize,
    /// Why the whole file was refused (nothing applied); `null` otherwise.
    pub refused: Option<String>,
    /// The earlier file with the same content, when nothing was applied again.
    pub duplicate_of: Option<String>,
    /// The rows not applied (skipped or rejected) with their outcome, in file order: the first
    /// [`stream::KEPT_NOT_APPLIED`] of them (the result file lists every row).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<RowOutcome>,
    /// The result file's text when it was kept in memory ([`ingest_file`], [`ingest_bytes`]);
    /// empty when it went to a file or nowhere ([`ingest_file_to`]).
    #[serde(skip)]
    pub result_csv: String,
}

impl IngestSummary {
    /// A summary of a file nothing has been done with yet.
    fn nothing_yet(file: &str, provider: &str, kind: Option<ReportKind>) -> IngestSummary {
        IngestSummary {
            file: file.to_string(),
            provider: provider.to_string(),
            kind,
            rows: 0,
            applied: 0,
            skipped: 0,
            rejected: 0,
            refused: None,
            duplicate_of: None,
            outcomes: Vec::new(),
            result_csv: String::new(),
        }
    }
}

/// Records a file refused whole (for `status`) and returns its summary.
async fn refuse(
    store: &Store,
    provider: &str,
    kind: Option<ReportKind>,
    sha256: &str,
    file_name: &str,
    reason: String,
) -> Result<IngestSummary, StoreError> {
    store.record_refused_report(provider, kind.map(ReportKind::as_str), sha256, file_name, &reason).await?;
    Ok(IngestSummary { refused: Some(reason), ..IngestSummary::nothing_yet(file_name, provider, kind) })
}

/// How often a file is applied again when another writer moved one of its loads meanwhile.
const CONFLICT_RETRIES: usize = 5;

/// Ingests one report's bytes for `provider`, keeping the result file's text in the summary.
/// Returns the summary whether the file was applied, a duplicate or refused; `Err` only when
/// the database failed (nothing applied).
pub async fn ingest_bytes(
    store: &Store,
    settings: &Settings,
    provider: &str,
    kind: Option<ReportKind>,
    file_name: &str,
    bytes: Vec<u8>,
) -> Result<IngestSummary, StoreError> {
    let mut out = ResultOut::Memory(Vec::new());
    let source = read::Source::Bytes(bytes.into());
    let summary = ingest_source(store, settings, provider, kind, file_name, source, &mut out).await;
    with_text(summary, out).map_err(|error| match error {
        IngestError::Store(error) => error,
        IngestError::Io { source, .. } => StoreError::Corrupt(source.to_string()),
    })
}

/// A summary with the result text kept in memory.
fn with_text(summary: Result<IngestSummary, IngestError>, out: ResultOut) -> Result<IngestSummary, IngestError> {
    let mut summary = summary?;
    if let ResultOut::Memory(text) = out {
        summary.result_csv = String::from_utf8(text).unwrap_or_default();
    }
    Ok(summary)
}

/// Ingests a report from `source`, streaming: the file is hashed, then read, parsed, planned
/// and written a chunk at a time in its one transaction, and the result file's text goes to
/// `out` as it is made.
async fn ingest_source(
    store: &Store,
    settings: &Settings,
    provider: &str,
    kind: Option<ReportKind>,
    file_name: &str,
    source: read::Source,
    out: &mut ResultOut,
) -> Result<IngestSummary, IngestError> {
    let report_settings = settings.providers.get(provider).map(|p| p.reports.clone()).unwrap_or_default();
    let limits = Limits::from_settings(&settings.intake);
    let scanned = {
        let (source, report_settings) = (source.clone(), report_settings.clone());
        tokio::task::spawn_blocking(move || read::scan(&source, &report_settings, &limits)).await
    };
    let (sha256, format) = match scanned {
        Ok((sha256, Ok(format))) => (sha256, format),
        Ok((sha256, Err(error))) => {
            return Ok(refuse(store, provider, kind, &sha256, file_name, error.to_string()).await?);
        }
        Err(error) => {
            let reason = format!("the reader failed: {error}");
            return Ok(refuse(store, provider, kind, "", file_name, reason).await?);
        }
    };
    let statuses = settings.status_map(provider);
    let job = Job {
        store,
        provider,
        kind,
        file_name,
        sha256: &sha256,
        source,
        format,
        settings: report_settings,
        limits,
        statuses: &statuses,
    };
    let io = |source| IngestError::Io { path: PathBuf::from(file_name), source };
    let mut attempt = 0;
    let outcome = loop {
        attempt += 1;
        match job.attempt(out).await {
            Err(AttemptError::Store(StoreError::Conflict { .. })) if attempt < CONFLICT_RETRIES => {
                tracing::info!(
                    file = file_name,
                    attempt,
                    "a load moved while the report was applied; applying it again"
                );
            }
            Err(AttemptError::Store(error)) => return Err(error.into()),
            Err(AttemptError::Io(error)) => return Err(io(error)),
            Ok(outcome) => break outcome,
        }
    };
    let mut summary = IngestSummary::nothing_yet(file_name, provider, kind);
    match outcome {
        Attempt::Refused(reason) => return Ok(refuse(store, provider, kind, &sha256, file_name, reason).await?),
        Attempt::Duplicate { kind, previous } => {
            summary.kind = Some(kind);
            summary.duplicate_of = Some(previous.file_name);
        }
        Attempt::Applied { kind, counts, not_applied } => {
            summary.kind = Some(kind);
            let count = |n: i64| usize::try_from(n).unwrap_or(0);
            summary.rows = count(counts.rows);
            summary.applied = count(counts.applied);
            summary.skipped = count(counts.skipped);
            summary.rejected = count(counts.rejected);
            summary.outcomes = not_applied;
        }
    }
    Ok(summary)
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Ingests a report file now, keeping the result file's text in the summary. The file stays
/// where it is.
pub async fn ingest_file(
    store: &Store,
    settings: &Settings,
    path: &Path,
    provider: &str,
    kind: Option<ReportKind>,
) -> Result<IngestSummary, IngestError> {
    let mut out = ResultOut::Memory(Vec::new());
    let summary = ingest_file_to(store, settings, path, provider, kind, &mut out).await;
    with_text(summary, out)
}

/// `factord ingest FILE` and the inbox: ingests a report file now (size-capped, streamed),
/// the result file's text going to `out`. The file stays where it is.
pub async fn ingest_file_to(
    store: &Store,
    settings: &Settings,
    path: &Path,
    provider: &str,
    kind: Option<ReportKind>,
    out: &mut ResultOut,
) -> Result<IngestSummary, IngestError> {
    let io = |source| IngestError::Io { path: path.to_path_buf(), source };
    let size = std::fs::metadata(path).map_err(io)?.len();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if size > settings.intake.max_file_bytes {
        let reason = read::ReadError::TooLarge { size, limit: settings.intake.max_file_bytes }.to_string();
        return Ok(refuse(store, provider, kind, "", &name, reason).await?);
    }
    let source = read::Source::File(path.to_path_buf());
    ingest_source(store, settings, provider, kind, &name, source, out).await
}

/// What happened to one inbox file.
#[derive(Clone, Debug)]
pub enum ReportOutcome {
    /// Applied or a duplicate; archived with its result file.
    Archived { archived: PathBuf, summary: IngestSummary },
    /// Refused whole: moved to `failed/` with its `.error.txt`.
    Refused { moved_to: PathBuf, summary: IngestSummary },
}

/// One watched report folder.
struct ReportFolder {
    provider: &'static str,
    kind: Option<ReportKind>,
    folder: InboxFolder,
    stable: StableFiles,
}

/// The report inboxes of every provider of the catalogue: `inbox/<provider>/`,
/// `inbox/<provider>/purchase/` and `inbox/<provider>/payment/`, archived to
/// `archive/<provider>/`.
pub struct ReportsInbox {
    folders: Vec<ReportFolder>,
    recovered: bool,
}

impl ReportsInbox {
    pub fn new(settings: &Settings) -> ReportsInbox {
        let quiet = settings.intake.quiet_period;
        let mut folders = Vec::new();
        for provider in PROVIDERS.iter() {
            let root = settings.paths.reports_inbox(provider.id);
            let archive = settings.paths.archive.join(provider.id);
            for (kind, dir) in [
                (None, root.clone()),
                (Some(ReportKind::Purchase), root.join("purchase")),
                (Some(ReportKind::Payment), root.join("payment")),
            ] {
                folders.push(ReportFolder {
                    provider: provider.id,
                    kind,
                    folder: InboxFolder { dir, archive: archive.clone() },
                    stable: StableFiles::new(quiet),
                });
            }
        }
        ReportsInbox { folders, recovered: false }
    }

    /// When a report seen in any folder will be ready, if one is waiting.
    pub fn next_due(&self) -> Option<Instant> {
        self.folders.iter().filter_map(|f| f.stable.next_due()).min()
    }

    /// Every folder ops may drop reports into.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.folders.iter().map(|f| f.folder.dir.clone()).collect()
    }

    /// Creates every folder.
    pub fn create(&self) -> std::io::Result<()> {
        self.folders.iter().try_for_each(|f| f.folder.create())
    }

    /// One pass at time `now`: first (once) whatever a crash left in a `processing/` folder,
    /// then every file that has held still for the quiet period. A database error leaves the
    /// file in `processing/` for the next pass and is returned.
    pub async fn run_once(
        &mut self,
        store: &Store,
        settings: &Settings,
        now: Instant,
        shutdown: &CancellationToken,
    ) -> Result<Vec<ReportOutcome>, IngestError> {
        let mut outcomes = Vec::new();
        if !self.recovered {
            for folder in &self.folders {
                folder.folder.create().map_err(|source| IngestError::Io { path: folder.folder.dir.clone(), source })?;
                let leftovers = folder
                    .folder
                    .leftovers()
                    .map_err(|source| IngestError::Io { path: folder.folder.processing(), source })?;
                for file in leftovers {
                    tracing::info!(file = %file.display(), "finishing a report left in processing by an earlier run");
                    outcomes.push(process(folder, store, settings, &file).await?);
                    if shutdown.is_cancelled() {
                        return Ok(outcomes);
                    }
                }
            }
            self.recovered = true;
        }
        for index in 0..self.folders.len() {
            let folder = &mut self.folders[index];
            let dir = folder.folder.dir.clone();
            let ready =
                folder.stable.scan(&dir, now).map_err(|source| IngestError::Io { path: dir.clone(), source })?;
            for file in ready {
                if shutdown.is_cancelled() {
                    return Ok(outcomes);
                }
                let folder = &self.folders[index];
                let Some(claimed) =
                    folder.folder.claim(&file).map_err(|source| IngestError::Io { path: file.clone(), source })?
                else {
                    continue;
                };
                match process(folder, store, settings, &claimed).await {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(error) => {
                        self.recovered = false;
                        return Err(error);
                    }
                }
            }
        }
        Ok(outcomes)
    }
}

/// Ingests one claimed file and moves it to the archive or to `failed/`.
async fn process(
    folder: &ReportFolder,
    store: &Store,
    settings: &Settings,
    file: &Path,
) -> Result<ReportOutcome, IngestError> {
    let io = |source| IngestError::Io { path: file.to_path_buf(), source };
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let started = Instant::now();
    // The result file is written as the rows are applied, to a temp file in the archive that
    // is renamed beside the archived input once the file is done.
    folder.folder.create().map_err(io)?;
    let temp = folder.folder.archive.join(format!(".{name}.result.{}.tmp", std::process::id()));
    let created = std::fs::File::create(&temp).map_err(io)?;
    let mut out = ResultOut::File(std::io::BufWriter::new(created));
    let summary = ingest_file_to(store, settings, file, folder.provider, folder.kind, &mut out).await;
    let summary = match summary {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            return Err(error);
        }
    };
    if let Some(reason) = &summary.refused {
        let _ = std::fs::remove_file(&temp);
        tracing::warn!(file = %name, provider = folder.provider, %reason, "report refused; nothing applied");
        let moved_to = folder.folder.fail(file, reason).map_err(io)?;
        return Ok(ReportOutcome::Refused { moved_to, summary });
    }
    let archived = match out {
        ResultOut::File(written) => {
            let written = written.into_inner().map_err(|e| io(e.into_error()))?;
            written.sync_all().map_err(io)?;
            folder.folder.archive_with(file, "result.csv", &temp).map_err(io)?
        }
        ResultOut::Memory(_) | ResultOut::Discard => folder.folder.archive(file, "result.csv", b"").map_err(io)?,
    };
    log_summary(&summary, started.elapsed());
    Ok(ReportOutcome::Archived { archived, summary })
}

/// How many rejected rows are logged one by one; the result file lists them all.
const LOGGED_REJECTIONS: usize = 20;

fn log_summary(summary: &IngestSummary, took: Duration) {
    if let Some(first) = &summary.duplicate_of {
        tracing::info!(file = %summary.file, provider = %summary.provider, %first, "same content as an earlier report; nothing applied");
        return;
    }
    for row in summary.outcomes.iter().filter(|o| o.outcome == Outcome::Rejected).take(LOGGED_REJECTIONS) {
        tracing::warn!(file = %summary.file, row = row.row, invoice = %row.invoice_number, reason = %row.reason, "report row rejected");
    }
    tracing::info!(
        file = %summary.file, provider = %summary.provider, kind = summary.kind.map(ReportKind::as_str).unwrap_or(""),
        rows = summary.rows, applied = summary.applied, skipped = summary.skipped, rejected = summary.rejected,
        ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX), "report ingested"
    );
}
