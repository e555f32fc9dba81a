//! What the store's methods take and return: plain data, no sqlx types.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{ExceptionKind, LoadFields, LoadInput, LoadStatus};

/// One validated row of a load file, with its row number in the file (header = row 1).
#[derive(Clone, Debug)]
pub struct ImportRow {
    pub row: usize,
    pub input: LoadInput,
}

/// The channel of load files given to `factord loads import`: recorded for `status`, but never
/// deduplicated (importing a file again applies it again; rows already so are `unchanged`).
pub const COMMAND_LOADS_CHANNEL: &str = "loads:command";

/// An inbox file whose content is recorded with the import, so it is never applied twice
/// (except on [`COMMAND_LOADS_CHANNEL`]).
#[derive(Clone, Copy, Debug)]
pub struct FileRef<'a> {
    /// `loads`, or a provider id for reports.
    pub channel: &'a str,
    pub sha256: &'a str,
    pub file_name: &'a str,
}

#[derive(Clone, Copy)]
pub struct ImportRequest<'a> {
    pub rows: &'a [ImportRow],
    /// The start of each history row's cause, e.g. `import loads.csv`; ` row N` is appended.
    pub cause: &'a str,
    pub file: Option<FileRef<'a>>,
    /// Rows of the file that were rejected before reaching the store (parse errors), counted
    /// in the file's recorded summary.
    pub file_errors: usize,
    /// Called with the number of rows done so far, for a progress bar.
    pub progress: Option<&'a (dyn Fn(usize) + Send + Sync)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowOutcome {
    Imported,
    /// With a description of what changed.
    Updated(String),
    Unchanged,
    Rejected(String),
}

impl RowOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            RowOutcome::Imported => "imported",
            RowOutcome::Updated(_) => "updated",
            RowOutcome::Unchanged => "unchanged",
            RowOutcome::Rejected(_) => "rejected",
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            RowOutcome::Updated(detail) | RowOutcome::Rejected(detail) => detail,
            RowOutcome::Imported | RowOutcome::Unchanged => "",
        }
    }
}

#[derive(Clone, Debug)]
pub struct RowResult {
    pub row: usize,
    pub load_number: String,
    pub outcome: RowOutcome,
}

#[derive(Clone, Debug)]
pub struct ImportResult {
    pub rows: Vec<RowResult>,
    /// Set when the file's content had been processed before; then nothing was applied.
    pub duplicate_of: Option<InboxFileRecord>,
}

/// Row counts of one import, as recorded with an inbox file and printed by `loads import`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ImportCounts {
    pub imported: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub rejected: usize,
}

impl ImportCounts {
    /// Counts the store's results plus `file_errors` rows rejected before the store.
    pub fn of(rows: &[RowResult], file_errors: usize) -> ImportCounts {
        let mut counts = ImportCounts { rejected: file_errors, ..ImportCounts::default() };
        for row in rows {
            match row.outcome {
                RowOutcome::Imported => counts.imported += 1,
                RowOutcome::Updated(_) => counts.updated += 1,
                RowOutcome::Unchanged => counts.unchanged += 1,
                RowOutcome::Rejected(_) => counts.rejected += 1,
            }
        }
        counts
    }

    pub fn total(&self) -> usize {
        self.imported + self.updated + self.unchanged + self.rejected
    }
}

#[derive(Clone, Debug)]
pub struct InboxFileRecord {
    pub channel: String,
    pub sha256: String,
    pub file_name: String,
    pub processed_at: DateTime<Utc>,
    /// JSON counts of what the file did.
    pub summary: String,
}

/// A load file refused whole.
#[derive(Clone, Debug)]
pub struct RefusedFile {
    pub file_name: String,
    pub refused_at: DateTime<Utc>,
    pub reason: String,
}

/// A stored load with its customer's details.
#[derive(Clone, Debug)]
pub struct LoadRecord {
    pub id: i64,
    pub load_number: String,
    pub customer_name: String,
    pub customer_mc: Option<String>,
    pub customer_dot: Option<String>,
    pub status: LoadStatus,
    pub invoice_number: Option<String>,
    /// `YYYY-MM-DD` in the subsidiary's time zone, set when the invoice was generated.
    pub invoice_date: Option<String>,
    /// The packet (or direct invoice) file written for the load.
    pub packet_path: Option<String>,
    /// The factor's reference for the invoice once a batch delivered it.
    pub submission_reference: Option<String>,
    /// What the packet was built for: `<provider>:<NOA digest>` (`Subsidiary::packet_mark`);
    /// `None` for direct invoices and for packets built before factord recorded it.
    pub packet_noa: Option<String>,
    /// The provider that holds the invoice: the one the delivering batch went to.
    pub factor: Option<String>,
    pub batch_id: Option<String>,
    pub waiting_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub fields: LoadFields,
}

#[derive(Clone, Debug)]
pub struct ExceptionRecord {
    pub kind: ExceptionKind,
    pub detail: String,
    pub raised_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct HistoryRecord {
    /// `None` for the row that created the load.
    pub from: Option<LoadStatus>,
    pub to: LoadStatus,
    pub at: DateTime<Utc>,
    pub cause: String,
}

#[derive(Clone, Debug)]
pub struct LoadDetail {
    pub load: LoadRecord,
    pub exceptions: Vec<ExceptionRecord>,
    pub history: Vec<HistoryRecord>,
}

#[derive(Clone, Debug)]
pub struct LoadSummary {
    pub load: LoadRecord,
    pub exceptions: Vec<ExceptionRecord>,
}

#[derive(Clone, Debug, Default)]
pub struct LoadFilter {
    pub status: Option<LoadStatus>,
    pub subsidiary: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct SubsidiaryCounts {
    pub subsidiary: String,
    pub counts: BTreeMap<LoadStatus, i64>,
    /// Open exception flags.
    pub exceptions: i64,
    /// Loads with a recorded reason why they cannot move on.
    pub waiting: i64,
}

impl SubsidiaryCounts {
    pub fn new(subsidiary: String) -> SubsidiaryCounts {
        SubsidiaryCounts { subsidiary, counts: BTreeMap::new(), exceptions: 0, waiting: 0 }
    }
}
