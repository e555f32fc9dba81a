//! JSON views the command line prints of a library result that has no JSON shape of its own:
//! `ingest --json` (docs/design.md §6) of [`IngestSummary`]. The other `--json` outputs are the
//! library's own serialisable results ([`crate::status::Status`], [`crate::loads::LoadJson`],
//! [`crate::submit::SubmitReport`], …).
//!
//! Fields in alphabetical order: the order of the keys in the output since the first release
//! (the objects were sorted maps then), kept so the output does not change.

use serde::Serialize;

use crate::reports::apply::{Outcome, RowOutcome};
use crate::reports::{IngestSummary, ReportKind};

/// `ingest --json`: the summary without the per-row list, plus the rows that were not applied.
#[derive(Clone, Debug, Serialize)]
pub struct IngestJson<'a> {
    pub applied: usize,
    /// The earlier file with the same content, when nothing was applied again.
    pub duplicate_of: Option<&'a str>,
    pub file: &'a str,
    pub kind: Option<ReportKind>,
    /// Every row skipped or rejected, in file order.
    pub not_applied: Vec<NotAppliedJson<'a>>,
    pub provider: &'a str,
    /// Why the whole file was refused (nothing applied); `null` otherwise.
    pub refused: Option<&'a str>,
    pub rejected: usize,
    /// `applied` + `skipped` + `rejected`.
    pub rows: usize,
    pub skipped: usize,
}

/// A report row that was not applied, and why.
#[derive(Clone, Debug, Serialize)]
pub struct NotAppliedJson<'a> {
    pub invoice_number: &'a str,
    pub load_number: &'a str,
    pub outcome: Outcome,
    pub reason: &'a str,
    pub row: usize,
}

impl<'a> IngestJson<'a> {
    pub fn of(summary: &'a IngestSummary) -> IngestJson<'a> {
        IngestJson {
            applied: summary.applied,
            duplicate_of: summary.duplicate_of.as_deref(),
            file: &summary.file,
            kind: summary.kind,
            not_applied: summary
                .outcomes
                .iter()
                .filter(|o| o.outcome != Outcome::Applied)
                .map(NotAppliedJson::of)
                .collect(),
            provider: &summary.provider,
            refused: summary.refused.as_deref(),
            rejected: summary.rejected,
            rows: summary.rows,
            skipped: summary.skipped,
        }
    }
}

impl<'a> NotAppliedJson<'a> {
    fn of(o: &'a RowOutcome) -> NotAppliedJson<'a> {
        NotAppliedJson {
            invoice_number: &o.invoice_number,
            load_number: &o.load_number,
            outcome: o.outcome,
            reason: &o.reason,
            row: o.row,
        }
    }
}

/// Every `--json` output against its documented keys.
#[cfg(test)]
mod contract;
