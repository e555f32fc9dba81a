//! Load intake (docs/design.md §7): `factord loads import FILE...` and the `inbox/loads/` folder that
//! the daemon watches. Both parse with [`loads`] and apply through the store; the inbox adds
//! the pickup of [`inbox`] and records each file's sha256 so the same content is never
//! applied twice.

pub mod inbox;
pub mod loads;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::files::csv_cell;
use crate::store::{COMMAND_LOADS_CHANNEL, FileRef, ImportCounts, ImportRequest, InboxFileRecord, Store, StoreError};
use inbox::{InboxFolder, StableFiles};
use loads::{FileError, parse_load_file};

/// The `inbox_files` channel of load exports.
pub const LOADS_CHANNEL: &str = "loads";

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    File { path: PathBuf, source: FileError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntakeError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IntakeError + '_ {
        move |source| IntakeError::Io { path: path.to_path_buf(), source }
    }
}

/// One row of an import's report.
#[derive(Clone, Debug, Serialize)]
pub struct ReportRow {
    pub row: usize,
    pub load_number: Option<String>,
    /// `imported`, `updated`, `unchanged` or `rejected`.
    pub outcome: &'static str,
    pub detail: String,
}

/// What importing one file did.
#[derive(Clone, Debug, Serialize)]
pub struct FileImport {
    pub file: String,
    #[serde(flatten)]
    pub counts: ImportCounts,
    pub ignored_columns: Vec<String>,
    pub rows: Vec<ReportRow>,
    /// For inbox files: the earlier file with the same content, when nothing was applied.
    #[serde(skip)]
    pub duplicate_of: Option<InboxFileRecord>,
}

impl FileImport {
    /// The result file written beside the archived input: every row with its outcome, then
    /// the totals. Text cells are escaped against formula injection.
    pub fn result_csv(&self) -> Vec<u8> {
        let mut out = csv::Writer::from_writer(Vec::new());
        let mut write = |record: [&str; 4]| out.write_record(record.map(|c| csv_cell(c).into_owned()));
        let _ = write(["row", "load_number", "outcome", "detail"]);
        if let Some(previous) = &self.duplicate_of {
            let note = format!(
                "same content as {} processed {}; nothing applied again",
                previous.file_name,
                crate::domain::time_for_people(previous.processed_at)
            );
            let _ = write(["", "", "duplicate", &note]);
        }
        for row in &self.rows {
            let _ = write([&row.row.to_string(), row.load_number.as_deref().unwrap_or(""), row.outcome, &row.detail]);
        }
        if !self.ignored_columns.is_empty() {
            let _ = write(["", "", "note", &format!("columns not used: {}", self.ignored_columns.join(", "))]);
        }
        let c = self.counts;
        for (label, n) in
            [("imported", c.imported), ("updated", c.updated), ("unchanged", c.unchanged), ("rejected", c.rejected)]
        {
            let _ = write(["total", "", label, &n.to_string()]);
        }
        out.into_inner().unwrap_or_default()
    }
}

pub use crate::files::sha256_hex;

/// Reads, parses and imports one load file (the `loads import` command). The file is recorded
/// so that `status` lists it (importing the same content again applies it again: rows already
/// so are `unchanged`), and a file refused whole is recorded with why.
/// `progress` is told how many rows are done.
pub async fn import_load_file(
    store: &Store,
    settings: &Settings,
    path: &Path,
    progress: Option<&(dyn Fn(usize) + Send + Sync)>,
) -> Result<FileImport, IntakeError> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let bytes = match read_capped(path, settings) {
        Ok(bytes) => bytes,
        Err(IntakeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            // A mistyped path is the command's usage, not a refused file.
            return Err(IntakeError::Io { path: path.to_path_buf(), source });
        }
        Err(error) => {
            store.record_refused_file(LOADS_CHANNEL, &file_name, None, &refusal_reason(&error)).await?;
            return Err(error);
        }
    };
    let sha256 = sha256_hex(&bytes);
    let file_ref = FileRef { channel: COMMAND_LOADS_CHANNEL, sha256: &sha256, file_name: &file_name };
    match import_bytes(store, settings, path, &bytes, Some(file_ref), progress).await {
        Err(error @ IntakeError::File { .. }) => {
            store.record_refused_file(LOADS_CHANNEL, &file_name, Some(&sha256), &refusal_reason(&error)).await?;
            Err(error)
        }
        other => other,
    }
}

/// Why a load file was refused whole, without its path (the record names the file).
fn refusal_reason(error: &IntakeError) -> String {
    match error {
        IntakeError::File { source, .. } => source.to_string(),
        IntakeError::Io { source, .. } => format!("cannot read the file: {source}"),
        IntakeError::Store(error) => error.to_string(),
    }
}

fn read_capped(path: &Path, settings: &Settings) -> Result<Vec<u8>, IntakeError> {
    let size = std::fs::metadata(path).map_err(IntakeError::io(path))?.len();
    let limit = settings.intake.max_file_bytes;
    if size > limit {
        return Err(IntakeError::File { path: path.to_path_buf(), source: FileError::TooLarge { size, limit } });
    }
    std::fs::read(path).map_err(IntakeError::io(path))
}

async fn import_bytes(
    store: &Store,
    settings: &Settings,
    path: &Path,
    bytes: &[u8],
    file: Option<FileRef<'_>>,
    progress: Option<&(dyn Fn(usize) + Send + Sync)>,
) -> Result<FileImport, IntakeError> {
    let file_label = path.display().to_string();
    let parsed = parse_load_file(path, bytes, settings)
        .map_err(|source| IntakeError::File { path: path.to_path_buf(), source })?;
    let cause = format!("import {}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    let result = store
        .import_loads(ImportRequest {
            rows: &parsed.rows,
            cause: &cause,
            file,
            file_errors: parsed.errors.len(),
            progress,
        })
        .await?;

    let mut rows: Vec<ReportRow> = parsed
        .errors
        .iter()
        .map(|e| ReportRow {
            row: e.row,
            load_number: e.load_number.clone(),
            outcome: "rejected",
            detail: e.reason.clone(),
        })
        .collect();
    let counts = if result.duplicate_of.is_some() {
        ImportCounts::default()
    } else {
        rows.extend(result.rows.iter().map(|r| ReportRow {
            row: r.row,
            load_number: Some(crate::domain::bounded(&r.load_number)),
            outcome: r.outcome.label(),
            detail: r.outcome.detail().to_string(),
        }));
        ImportCounts::of(&result.rows, parsed.errors.len())
    };
    if result.duplicate_of.is_some() {
        rows.clear();
    }
    rows.sort_by_key(|r| r.row);
    for row in rows.iter().filter(|r| r.outcome == "rejected") {
        tracing::warn!(file = %file_label, row = row.row, load = row.load_number.as_deref().unwrap_or(""), reason = %row.detail, "row rejected");
    }
    Ok(FileImport {
        file: file_label,
        counts,
        ignored_columns: parsed.ignored_columns,
        rows,
        duplicate_of: result.duplicate_of,
    })
}

/// What happened to one inbox file.
#[derive(Clone, Debug)]
pub enum InboxOutcome {
    /// Imported (possibly with rejected rows); archived with its result file.
    Imported { file: PathBuf, archived: PathBuf, counts: ImportCounts },
    /// Same content as an earlier file: archived, nothing applied.
    Duplicate { file: PathBuf, archived: PathBuf },
    /// Unreadable as a whole: moved to `failed/` with its `.error.txt`.
    Failed { file: PathBuf, moved_to: PathBuf, reason: String },
}

/// The `inbox/loads/` job: one call scans once and processes what is ready.
pub struct LoadsInbox {
    folder: InboxFolder,
    stable: StableFiles,
    recovered: bool,
}

impl LoadsInbox {
    pub fn new(settings: &Settings) -> LoadsInbox {
        LoadsInbox {
            folder: InboxFolder { dir: settings.paths.loads_inbox(), archive: settings.paths.archive.join("loads") },
            stable: StableFiles::new(settings.intake.quiet_period),
            recovered: false,
        }
    }

    pub fn folder(&self) -> &InboxFolder {
        &self.folder
    }

    /// When a file seen in the inbox will be ready, if one is waiting ([`StableFiles::next_due`]).
    pub fn next_due(&self) -> Option<Instant> {
        self.stable.next_due()
    }

    /// One pass at time `now`: first (once) whatever a crash left in `processing/`, then every
    /// file that has held still for the quiet period. Stops after the file in hand when
    /// `shutdown` is cancelled. A database error leaves the file in `processing/` for the
    /// next pass and is returned.
    pub async fn run_once(
        &mut self,
        store: &Store,
        settings: &Settings,
        now: Instant,
        shutdown: &CancellationToken,
    ) -> Result<Vec<InboxOutcome>, IntakeError> {
        self.folder.create().map_err(IntakeError::io(&self.folder.dir))?;
        let mut outcomes = Vec::new();
        if !self.recovered {
            for file in self.folder.leftovers().map_err(IntakeError::io(&self.folder.processing()))? {
                tracing::info!(file = %file.display(), "finishing a file left in processing by an earlier run");
                outcomes.push(self.process(store, settings, &file).await?);
                if shutdown.is_cancelled() {
                    return Ok(outcomes);
                }
            }
            self.recovered = true;
        }
        let ready = self.stable.scan(&self.folder.dir, now).map_err(IntakeError::io(&self.folder.dir))?;
        for file in ready {
            if shutdown.is_cancelled() {
                break;
            }
            let Some(claimed) = self.folder.claim(&file).map_err(IntakeError::io(&file))? else { continue };
            match self.process(store, settings, &claimed).await {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) => {
                    // The claimed file stays in processing/; the next pass picks it up there.
                    self.recovered = false;
                    return Err(error);
                }
            }
        }
        Ok(outcomes)
    }

    async fn process(&self, store: &Store, settings: &Settings, file: &Path) -> Result<InboxOutcome, IntakeError> {
        let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let fail = async |reason: String, sha256: Option<&str>| -> Result<InboxOutcome, IntakeError> {
            tracing::warn!(file = %file.display(), %reason, "load file refused");
            // Recorded first: a crash between the two leaves the file in processing/, to be
            // refused (and recorded) again, never moved away unrecorded.
            store.record_refused_file(LOADS_CHANNEL, &file_name, sha256, &reason).await?;
            let moved_to = self.folder.fail(file, &reason).map_err(IntakeError::io(file))?;
            Ok(InboxOutcome::Failed { file: file.to_path_buf(), moved_to, reason })
        };
        let bytes = match read_capped(file, settings) {
            Ok(bytes) => bytes,
            Err(error @ (IntakeError::File { .. } | IntakeError::Io { .. })) => {
                return fail(refusal_reason(&error), None).await;
            }
            Err(other) => return Err(other),
        };
        let sha256 = sha256_hex(&bytes);
        let file_ref = FileRef { channel: LOADS_CHANNEL, sha256: &sha256, file_name: &file_name };
        let import = match import_bytes(store, settings, file, &bytes, Some(file_ref), None).await {
            Ok(import) => import,
            Err(error @ IntakeError::File { .. }) => return fail(refusal_reason(&error), Some(&sha256)).await,
            Err(other) => return Err(other),
        };
        let archived = self.folder.archive(file, "result.csv", &import.result_csv()).map_err(IntakeError::io(file))?;
        if let Some(previous) = &import.duplicate_of {
            tracing::info!(file = %file_name, first = %previous.file_name, "same content as an earlier file; nothing applied");
            return Ok(InboxOutcome::Duplicate { file: file.to_path_buf(), archived });
        }
        let c = import.counts;
        tracing::info!(
            file = %file_name, imported = c.imported, updated = c.updated, unchanged = c.unchanged, rejected = c.rejected,
            "load file imported"
        );
        Ok(InboxOutcome::Imported { file: file.to_path_buf(), archived, counts: c })
    }
}
