//! The rework commands on the command line (docs/design.md §2 "Rework", §6): `loads hold`,
//! `loads release`, `loads void`, `submit --loads` and `exceptions`. Each calls
//! [`crate::rework`] and formats its report as text or JSON.

use std::fmt::Write as _;

use super::{CommandError, emit, open_store, output, print_json};
use crate::config::Settings;
use crate::domain::ledger::Field;
use crate::domain::{Money, span_for_people, time_for_people};
use crate::rework::{
    AdjustReport, ExceptionLine, HoldReport, PickedSubmit, ReleaseReport, ReworkError, SettleReport, VoidReport, signed,
};

impl From<ReworkError> for CommandError {
    fn from(error: ReworkError) -> Self {
        match error {
            ReworkError::Usage(message) => CommandError::Usage(message),
            other => CommandError::Failed(other.to_string()),
        }
    }
}

/// Which rework command on one load.
#[derive(Clone, Copy, Debug)]
pub enum LoadRework {
    Hold,
    Release,
    Settle,
    Void,
}

/// `factord loads hold|release|void LOAD --reason TEXT [--json]`.
pub async fn load_rework(
    settings: &Settings,
    which: LoadRework,
    load: &str,
    reason: &str,
    json: bool,
) -> Result<(), CommandError> {
    let store = open_store(settings).await?;
    match which {
        LoadRework::Hold => {
            let report = crate::rework::hold(&store, load, reason).await?;
            if json { print_json(&report) } else { text(&hold_text(&report)) }
        }
        LoadRework::Release => {
            let report = crate::rework::release(&store, load, reason).await?;
            if json { print_json(&report) } else { text(&release_text(&report)) }
        }
        LoadRework::Settle => {
            let report = crate::rework::settle(&store, load, reason).await?;
            if json { print_json(&report) } else { text(&settle_text(&report)) }
        }
        LoadRework::Void => {
            let report = crate::rework::void(&store, load, reason).await?;
            if json { print_json(&report) } else { text(&void_text(&report)) }
        }
    }
}

/// `factord loads adjust LOAD [--advance D] ... --reason TEXT [--date D] [--json]`.
pub async fn adjust(settings: &Settings, a: &super::AdjustArgs) -> Result<(), CommandError> {
    let given = [
        (Field::Advance, &a.advance),
        (Field::Fee, &a.fee),
        (Field::Reserve, &a.reserve),
        (Field::ReserveReleased, &a.reserve_released),
        (Field::Paid, &a.paid),
        (Field::Chargeback, &a.chargeback),
    ];
    let mut adjustments = Vec::new();
    for (field, text) in given {
        let Some(text) = text else { continue };
        let money = Money::parse(text).map_err(|e| CommandError::Usage(format!("{} `{text}`: {e}", field.option())))?;
        adjustments.push((field, money));
    }
    let date = a.date.as_deref().map(|d| super::money::parse_date("--date", d)).transpose()?;
    let store = open_store(settings).await?;
    let report = crate::rework::adjust(&store, &a.load, &adjustments, date, &a.reason).await?;
    if a.json { print_json(&report) } else { text(&adjust_text(&report)) }
}

fn adjust_text(r: &AdjustReport) -> String {
    let said: Vec<String> = r.adjustments.iter().map(|l| format!("{} {}", l.field, signed(l.amount))).collect();
    let mut out = format!(
        "{} ({}, invoice {}): adjusted {} dated {} ({})\n",
        r.load_number,
        r.status,
        r.invoice_number,
        said.join(", "),
        r.date,
        r.reason
    );
    let check = match (r.figures, &r.detail) {
        ("mismatch", Some(detail)) => format!("  figures do not add up: ledger_mismatch {detail}\n"),
        ("holds", Some(detail)) => format!("  figures add up; {detail}\n"),
        ("holds", None) => "  figures add up\n".to_string(),
        _ => String::new(),
    };
    out.push_str(&check);
    out
}

fn text(text: &str) -> Result<(), CommandError> {
    out!("{text}");
    Ok(())
}

fn hold_text(r: &HoldReport) -> String {
    if r.already_held {
        format!(
            "{} ({}): already held since {} ({}); the first hold is kept\n",
            r.load_number,
            r.status,
            time_for_people(r.raised_at),
            r.detail
        )
    } else {
        format!("{} ({}): {}\n  waiting because {}\n", r.load_number, r.status, r.detail, r.waiting_reason)
    }
}

fn release_text(r: &ReleaseReport) -> String {
    format!("{} ({}): released ({}); was {}\n", r.load_number, r.status, r.reason, r.detail)
}

fn settle_text(r: &SettleReport) -> String {
    let kinds: Vec<&str> = r.cleared.iter().map(|k| k.as_str()).collect();
    format!("{} ({}): settled ({}); cleared {}\n", r.load_number, r.status, r.reason, kinds.join(", "))
}

fn void_text(r: &VoidReport) -> String {
    let mut out = format!("{}: invoice {} is void; {} → {}\n", r.load_number, r.invoice_number, r.from, r.status);
    if let Some(notice) = &r.notice {
        let _ = writeln!(out, "  held: {notice}");
    }
    let _ = writeln!(out, "  next: {}", r.next);
    out
}

/// `factord exceptions [--subsidiary ID] [--json]`.
pub async fn exceptions(settings: &Settings, subsidiary: Option<&str>, json: bool) -> Result<(), CommandError> {
    let store = open_store(settings).await?;
    let lines = crate::rework::exceptions(&store, settings, subsidiary).await?;
    if json { print_json(&lines) } else { text(&exceptions_text(&lines)) }
}

fn exceptions_text(lines: &[ExceptionLine]) -> String {
    if lines.is_empty() {
        return "no open exceptions\n".to_string();
    }
    let mut out = String::new();
    let now = chrono::Utc::now();
    for e in lines {
        let _ = writeln!(
            out,
            "{} ({} ago)  {} ({}, {})  {}: {}\n    resolve: {}",
            time_for_people(e.raised_at),
            span_for_people(now - e.raised_at),
            e.load_number,
            e.subsidiary,
            e.status,
            e.kind.as_str(),
            e.detail,
            e.resolve
        );
    }
    out
}

/// `factord submit --loads L1,L2 [--subsidiary ID] [--dry-run] [--json]`: exit 1 when a picked
/// load did not go (refused, or waiting after pre-flight) or a batch was not delivered.
pub async fn submit_picked(
    settings: &Settings,
    loads: &[String],
    subsidiary: Option<&str>,
    dry_run: bool,
    json: bool,
) -> Result<(), CommandError> {
    let store = open_store(settings).await?;
    let picked = crate::rework::submit_picked(&store, settings, loads, subsidiary, (dry_run, "command")).await?;
    if json {
        print_json(&picked)?;
    } else {
        out!("{}", picked_text(&picked, dry_run));
    }
    let failed = picked.report.batches.iter().filter(|b| b.status == "failed" && !b.reconciled).count();
    if failed > 0 {
        return Err(CommandError::Failed(format!(
            "{failed} batch(es) were not delivered (see above for what happens next)"
        )));
    }
    match picked.not_sent() {
        0 => Ok(()),
        n => Err(CommandError::Failed(format!("{n} picked load(s) did not go (see above)"))),
    }
}

fn picked_text(picked: &PickedSubmit, dry_run: bool) -> String {
    let mut out = String::new();
    for r in &picked.refused {
        let _ = writeln!(out, "refused {} ({}): {}", r.load_number, r.subsidiary, r.reason);
    }
    out.push_str(&output::submit_text(&picked.report, dry_run));
    out
}
