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

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::{ReportSettings, Settings};
use crate::files::csv_cell;
use crate::intake::inbox::{InboxFolder, StableFiles};
use crate::intake::sha256_hex;
use crate::providers::PROVIDERS;
use crate::store::{Ingested, ReportFileMeta, ReportKeys, Store, StoreError};
use apply::{Outcome, ReportPlan, RowOutcome};
use parse::ParsedReport;
use read::Limits;

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
    /// Every row with its outcome.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<RowOutcome>,
    /// The result file's text, written beside the archived input.
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

/// A report read and parsed, ready to apply.
struct ParsedFile {
    kind: ReportKind,
    report: ParsedReport,
    unused_columns: Vec<String>,
}

/// Reads, finds the header and parses. `Err` is the reason the file is refused whole.
fn parse_file(
    bytes: &[u8],
    settings: &ReportSettings,
    limits: &Limits,
    kind: Option<ReportKind>,
) -> Result<ParsedFile, String> {
    let rows = read::read_rows(bytes, settings, limits).map_err(|e| e.to_string())?;
    let (header, columns) = columns::find_header(&rows, kind, settings).map_err(|e| e.to_string())?;
    let names: Vec<String> = rows[header].cells.iter().map(read::Cell::text).collect();
    let report = parse::parse_rows(rows, header, &columns, &names).map_err(|e| e.to_string())?;
    if report.rows.len() as u64 > limits.max_rows {
        return Err(format!("the file has {} rows, over intake.max_rows ({})", report.rows.len(), limits.max_rows));
    }
    Ok(ParsedFile { kind: columns.kind, report, unused_columns: columns.unused })
}

/// The result file: every row with its outcome and reason, the notes, then totals that add
/// up (`rows` = `applied` + `skipped` + `rejected`). Text is escaped against formula injection.
fn result_csv(plan: &ReportPlan, parsed: &ParsedFile) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut write = |record: [&str; 5]| out.write_record(record.map(csv_cell).iter().map(|c| c.as_bytes()));
    let _ = write(["row", "invoice_number", "load_number", "outcome", "reason"]);
    for o in &plan.outcomes {
        let _ = write([&o.row.to_string(), &o.invoice_number, &o.load_number, o.outcome.as_str(), &o.reason]);
    }
    for (row, said) in &parsed.report.totals {
        let _ = write([&row.to_string(), "", "", "note", &format!("totals line, not applied: {said}")]);
    }
    if !parsed.unused_columns.is_empty() {
        let _ = write(["", "", "", "note", &format!("columns not used: {}", parsed.unused_columns.join(", "))]);
    }
    let _ = write(["total", "", "", "rows", &plan.outcomes.len().to_string()]);
    for outcome in [Outcome::Applied, Outcome::Skipped, Outcome::Rejected] {
        let _ = write(["total", "", "", outcome.as_str(), &plan.count(outcome).to_string()]);
    }
    String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Ingests one report's bytes for `provider`. Returns the summary whether the file was
/// applied, a duplicate or refused; `Err` only when the database failed (nothing applied).
pub async fn ingest_bytes(
    store: &Store,
    settings: &Settings,
    provider: &str,
    kind: Option<ReportKind>,
    file_name: &str,
    bytes: Vec<u8>,
) -> Result<IngestSummary, StoreError> {
    let report_settings = settings.providers.get(provider).map(|p| p.reports.clone()).unwrap_or_default();
    let limits = Limits::from_settings(&settings.intake);
    let sha256 = sha256_hex(&bytes);
    let parsed = match tokio::task::spawn_blocking(move || parse_file(&bytes, &report_settings, &limits, kind)).await {
        Ok(parsed) => parsed,
        Err(error) => Err(format!("the reader failed: {error}")),
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(reason) => return refuse(store, provider, kind, &sha256, file_name, reason).await,
    };
    let mut summary = IngestSummary::nothing_yet(file_name, provider, kind);
    summary.kind = Some(parsed.kind);
    let statuses = settings.status_map(provider);
    let (invoices, load_numbers) = apply::lookup_keys(&parsed.report.rows);
    let meta = ReportFileMeta { provider, kind: parsed.kind.as_str(), sha256: &sha256, file_name };
    let planner = |loads| {
        let plan = apply::plan(parsed.kind, provider, file_name, &parsed.report.rows, loads, &statuses);
        let text = result_csv(&plan, &parsed);
        (plan, text)
    };
    let keys = ReportKeys { invoices: &invoices, load_numbers: &load_numbers };
    match store.ingest_report(meta, keys, &planner).await? {
        Ingested::Applied { plan, outcomes, .. } => {
            summary.rows = plan.outcomes.len();
            summary.applied = plan.count(Outcome::Applied);
            summary.skipped = plan.count(Outcome::Skipped);
            summary.rejected = plan.count(Outcome::Rejected);
            summary.result_csv = outcomes;
            summary.outcomes = plan.outcomes;
        }
        Ingested::Duplicate { previous, outcomes } => {
            let note = format!(
                "same content as {} ingested {}; nothing applied again. Its outcomes were:\n",
                previous.file_name,
                crate::domain::time_for_people(previous.processed_at)
            );
            summary.result_csv = format!("{note}{outcomes}");
            summary.duplicate_of = Some(previous.file_name);
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

/// `factord ingest FILE`: reads the file (size-capped) and ingests it now. The file stays
/// where it is.
pub async fn ingest_file(
    store: &Store,
    settings: &Settings,
    path: &Path,
    provider: &str,
    kind: Option<ReportKind>,
) -> Result<IngestSummary, IngestError> {
    let io = |source| IngestError::Io { path: path.to_path_buf(), source };
    let size = std::fs::metadata(path).map_err(io)?.len();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if size > settings.intake.max_file_bytes {
        let reason = read::ReadError::TooLarge { size, limit: settings.intake.max_file_bytes }.to_string();
        return Ok(refuse(store, provider, kind, "", &name, reason).await?);
    }
    let bytes = std::fs::read(path).map_err(io)?;
    Ok(ingest_bytes(store, settings, provider, kind, &name, bytes).await?)
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
    let summary = ingest_file(store, settings, file, folder.provider, folder.kind).await?;
    if let Some(reason) = &summary.refused {
        tracing::warn!(file = %name, provider = folder.provider, %reason, "report refused; nothing applied");
        let moved_to = folder.folder.fail(file, reason).map_err(io)?;
        return Ok(ReportOutcome::Refused { moved_to, summary });
    }
    let archived = folder.folder.archive(file, "result.csv", summary.result_csv.as_bytes()).map_err(io)?;
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
        ms = took.as_millis() as u64, "report ingested"
    );
}
