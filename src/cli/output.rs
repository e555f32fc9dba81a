//! What the commands print for people. The `--json` outputs are the library's serialisable
//! results (docs/design.md §6), printed as they are; see [`super::json`].

use std::fmt::Write;

use crate::config::{Settings, packet_mark_provider};
use crate::credit::{CustomerCheck, CustomerChecks, RefreshReport, is_stale};
use crate::domain::{CreditResult, LoadStatus, time_for_people};
use crate::intake::FileImport;
use crate::loads::{LoadCredit, LoadShow};
use crate::providers::find_provider;
use crate::reports::apply::Outcome;
use crate::reports::{IngestSummary, ReportKind};
use crate::status::{CreditStatus, Status};
use crate::store::{LoadDetail, LoadReportRow, LoadSummary};

/// A plain-decimal amount from a report (`"2450.00"`) as people read it (`$2,450.00`).
fn for_people(plain: &str) -> String {
    crate::domain::Money::parse(plain).map_or_else(|_| plain.to_string(), |m| m.for_people().to_string())
}

fn or_dash(value: &Option<String>) -> &str {
    value.as_deref().filter(|v| !v.is_empty()).unwrap_or("-")
}

/// `loads show` for people: the load, its credit state, then the report rows.
pub fn load_show_text(show: &LoadShow, settings: &Settings) -> String {
    let mut out = load_text(&show.detail, settings);
    for document in &show.documents {
        let _ = writeln!(out, "  {:<18}{} (loads docs: {})", document.kind.label(), document.path, document.reason);
    }
    if !show.voids.is_empty() {
        let _ = writeln!(out, "  void invoices");
        for v in &show.voids {
            let factor = v
                .factor
                .as_deref()
                .map(|f| format!(", held by {}", find_provider(f).map_or(f, |p| p.name)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    {}  voided {}{factor}: {}",
                v.invoice_number,
                time_for_people(v.voided_at),
                v.reason
            );
        }
    }
    out.push_str(&load_credit_text(&show.credit));
    out.push_str(&report_rows_text(&show.report_rows));
    out
}

/// `loads show` for people.
pub fn load_text(detail: &LoadDetail, settings: &Settings) -> String {
    let load = &detail.load;
    let f = &load.fields;
    let mut out = String::new();
    let _ = writeln!(out, "Load {}  [{}]", load.load_number, load.status);
    let subsidiary_name = settings.subsidiary(&f.subsidiary).map_or("not configured", |s| s.name.as_str());
    let _ = writeln!(out, "  subsidiary        {} ({subsidiary_name})", f.subsidiary);
    let numbers = [("MC", &load.customer_mc), ("DOT", &load.customer_dot)]
        .iter()
        .filter_map(|(label, v)| v.as_deref().map(|v| format!("{label} {v}")))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "  customer          {} {} {}",
        f.customer_id,
        load.customer_name,
        if numbers.is_empty() { String::new() } else { format!("({numbers})") }
    );
    let _ = writeln!(out, "  amount            {}", f.amount.for_people());
    let _ = writeln!(out, "  invoice           {}", or_dash(&load.invoice_number));
    let _ = writeln!(out, "  delivered         {}", or_dash(&f.delivered_at));
    let _ = writeln!(out, "  po number         {}", or_dash(&f.po_number));
    let (from, to) = (f.pickup().unwrap_or_default(), f.delivery().unwrap_or_default());
    if !from.is_empty() || !to.is_empty() {
        let _ = writeln!(
            out,
            "  lane              {} → {}",
            if from.is_empty() { "?" } else { &from },
            if to.is_empty() { "?" } else { &to }
        );
    }
    let _ = writeln!(out, "  proof of delivery {}", or_dash(&f.pod));
    let _ = writeln!(out, "  rate confirmation {}", or_dash(&f.rate_confirmation));
    if f.truck.is_some() {
        let _ = writeln!(out, "  truck             {}", or_dash(&f.truck));
    }
    if f.factor_reference.is_some() {
        let _ = writeln!(out, "  factor reference  {}", or_dash(&f.factor_reference));
    }
    if let Some(factor) = &load.factor {
        let name = find_provider(factor).map_or(factor.as_str(), |p| p.name);
        let _ = writeln!(out, "  held by factor    {name} ({factor})");
    }
    if let Some(batch) = &load.batch_id {
        let reference =
            load.submission_reference.as_deref().map(|r| format!(", factor reference {r}")).unwrap_or_default();
        let _ = writeln!(out, "  batch             {batch}{reference}");
    }
    if let (LoadStatus::Queued, Some(mark)) = (load.status, &load.packet_noa) {
        let _ = writeln!(out, "  packet built for  {}'s NOA", packet_mark_provider(mark));
    }
    if let Some(reason) = &load.waiting_reason {
        let _ = writeln!(out, "  waiting because   {reason}");
    }
    if detail.exceptions.is_empty() {
        let _ = writeln!(out, "  exceptions        none");
    } else {
        let _ = writeln!(out, "  exceptions");
        for e in &detail.exceptions {
            let _ = writeln!(out, "    {:<16}{} (since {})", e.kind.as_str(), e.detail, time_for_people(e.raised_at));
        }
    }
    let _ = writeln!(out, "  history");
    for h in &detail.history {
        let _ = match h.from {
            // A hold or a release: no move.
            Some(from) if from == h.to => writeln!(out, "    {}  {from}  {}", time_for_people(h.at), h.cause),
            from => {
                let from = from.map_or("(new)", LoadStatus::as_str);
                writeln!(out, "    {}  {from} → {}  {}", time_for_people(h.at), h.to, h.cause)
            }
        };
    }
    out
}

/// `loads list` for people: one line per load.
pub fn list_text(loads: &[LoadSummary]) -> String {
    let mut out = String::new();
    if loads.is_empty() {
        let _ = writeln!(out, "no loads");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<14} {:<14} {:<10} {:>12}  {:<12} {:<14} note",
        "LOAD", "SUBSIDIARY", "STATUS", "AMOUNT", "CUSTOMER", "INVOICE"
    );
    for l in loads {
        let load = &l.load;
        let mut note: Vec<String> = l.exceptions.iter().map(|e| e.kind.as_str().to_string()).collect();
        if let Some(reason) = &load.waiting_reason {
            note.push(reason.clone());
        }
        let _ = writeln!(
            out,
            "{:<14} {:<14} {:<10} {:>12}  {:<12} {:<14} {}",
            load.load_number,
            load.fields.subsidiary,
            load.status.as_str(),
            load.fields.amount.for_people().to_string(),
            load.fields.customer_id,
            or_dash(&load.invoice_number),
            note.join("; ")
        );
    }
    out
}

/// `loads import` for people: the counts, then every row that was not a plain success.
pub fn import_text(report: &FileImport) -> String {
    let mut out = String::new();
    let c = report.counts;
    let _ = writeln!(
        out,
        "{}: {} imported, {} updated, {} unchanged, {} rejected",
        report.file, c.imported, c.updated, c.unchanged, c.rejected
    );
    for row in report.rows.iter().filter(|r| r.outcome == "rejected" || r.outcome == "updated") {
        let _ = writeln!(
            out,
            "  row {}: {} {}: {}",
            row.row,
            row.load_number.as_deref().unwrap_or("?"),
            row.outcome,
            row.detail
        );
    }
    if !report.ignored_columns.is_empty() {
        let _ = writeln!(out, "  columns not used: {}", report.ignored_columns.join(", "));
    }
    out
}

/// `invoice` for people: each load invoiced, each load waiting with why, then the counts.
pub fn invoice_text(report: &crate::invoicing::PassReport) -> String {
    let mut out = String::new();
    for done in &report.invoiced {
        let _ = writeln!(
            out,
            "{} → {}  invoice {}  {} ({} pages)",
            done.load_number, done.status, done.invoice_number, done.path, done.pages
        );
    }
    for waiting in &report.waiting {
        let _ = writeln!(out, "{} waits: {}", waiting.load_number, waiting.reason);
    }
    for failed in &report.failed {
        let _ = writeln!(out, "{} FAILED: {}", failed.load_number, failed.reason);
    }
    for rebuilt in &report.rebuilt.rebuilt {
        let _ = writeln!(
            out,
            "{}  invoice {}: packet rebuilt with {}'s NOA",
            rebuilt.load_number, rebuilt.invoice_number, rebuilt.to
        );
    }
    for failed in &report.rebuilt.failed {
        let _ = writeln!(out, "{} packet NOT rebuilt: {}", failed.load_number, failed.reason);
    }
    let _ = writeln!(
        out,
        "{} invoiced, {} waiting, {} failed",
        report.invoiced.len(),
        report.waiting.len(),
        report.failed.len()
    );
    out
}

/// `submit` for people: each batch, each load that waits, or (dry run) what would go.
pub fn submit_text(report: &crate::submit::SubmitReport, dry_run: bool) -> String {
    let mut out = String::new();
    for planned in &report.would_send {
        let _ = writeln!(
            out,
            "would send {} → {}: {} invoice(s), {}: {}",
            planned.subsidiary,
            planned.provider,
            planned.invoices.len(),
            for_people(&planned.total),
            planned.invoices.join(", ")
        );
    }
    for batch in &report.batches {
        let _ = writeln!(
            out,
            "batch {} → {}: {} invoice(s), {}, {} (accepted {}, rejected {}, transient {}){}{}{}",
            batch.id,
            batch.provider,
            batch.invoices,
            for_people(&batch.total),
            batch.status,
            batch.accepted,
            batch.rejected,
            batch.transient,
            batch.reference.as_deref().map(|r| format!(", reference {r}")).unwrap_or_default(),
            batch.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default(),
            batch.next.as_deref().map(|n| format!("; {n}")).unwrap_or_default(),
        );
    }
    for waiting in &report.waiting {
        let _ = writeln!(out, "{} waits: {}", waiting.load_number, waiting.reason);
    }
    if dry_run {
        let _ = writeln!(out, "dry run: nothing was sent");
    } else if report.batches.is_empty() {
        let _ = writeln!(out, "nothing to send");
    }
    out
}

/// `status` for people.
#[expect(clippy::too_many_lines, reason = "the status page top to bottom, one block per part")]
pub fn status_text(status: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8}",
        "SUBSIDIARY", "Released", "Queued", "Invoiced", "Financed", "Completed", "exceptions", "waiting"
    );
    for s in &status.subsidiaries {
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8}{}",
            s.id,
            s.counts.released,
            s.counts.queued,
            s.counts.invoiced,
            s.counts.financed,
            s.counts.completed,
            s.exceptions,
            s.waiting,
            if s.configured { "" } else { "  (not configured)" }
        );
    }
    for s in status.subsidiaries.iter().filter(|s| !s.waiting_loads.is_empty()) {
        let _ = writeln!(out, "\nwaiting in {}:", s.id);
        for w in &s.waiting_loads {
            let _ = writeln!(out, "  {}: {}", w.load_number, w.reason);
        }
    }
    if !status.last_batches.is_empty() {
        let _ = writeln!(out, "\nlast batches:");
        for b in &status.last_batches {
            let _ = writeln!(
                out,
                "  {}  {} → {}: {} invoice(s), {}, {} (accepted {}, rejected {}, transient {}){}",
                time_for_people(b.created_at),
                b.id,
                b.provider,
                b.invoices,
                crate::domain::Money::from_cents(b.total_cents).for_people(),
                b.status,
                b.accepted,
                b.rejected,
                b.transient,
                b.reference.as_deref().or(b.error.as_deref()).map(|r| format!("  {r}")).unwrap_or_default()
            );
        }
    }
    if !status.last_reports.is_empty() {
        let _ = writeln!(out, "\nlast report files:");
        for f in &status.last_reports {
            let what = match &f.refused {
                Some(reason) => format!("REFUSED: {reason}"),
                None => {
                    format!("{} rows: {} applied, {} skipped, {} rejected", f.rows, f.applied, f.skipped, f.rejected)
                }
            };
            let _ = writeln!(
                out,
                "  {}  {} {} {}: {what}",
                time_for_people(f.processed_at),
                f.provider,
                f.kind.as_deref().unwrap_or("report"),
                f.file
            );
        }
    }
    out.push_str(&credit_status_text(&status.credit));
    match &status.scheduler {
        Some(s) if s.live => {
            let _ = writeln!(out, "\nschedules run by daemon {}", s.holder);
        }
        Some(s) => {
            let _ = writeln!(out, "\nschedules: no daemon running them (last: {}, lease run out)", s.holder);
        }
        None => {
            let _ = writeln!(out, "\nschedules: no daemon has run them yet");
        }
    }
    if !status.refused_load_files.is_empty() {
        let _ = writeln!(out, "\nrefused load files (nothing imported; fix and drop them again):");
        for f in &status.refused_load_files {
            let _ = writeln!(out, "  {}  {}: REFUSED: {}", time_for_people(f.refused_at), f.file, f.reason);
        }
    }
    if !status.last_load_files.is_empty() {
        let _ = writeln!(out, "\nlast load files:");
        for f in &status.last_load_files {
            // A file still being imported has no counts yet.
            let count = |n: fn(&crate::status::LoadFileCounts) -> usize| {
                f.summary.as_ref().map_or_else(|| "null".to_string(), |s| n(s).to_string())
            };
            let _ = writeln!(
                out,
                "  {}  {}: {} imported, {} updated, {} unchanged, {} rejected",
                f.processed_at.to_rfc3339(),
                f.file,
                count(|s| s.imported),
                count(|s| s.updated),
                count(|s| s.unchanged),
                count(|s| s.rejected)
            );
        }
    }
    out
}

/// The credit part of `status`: a summary line, then every customer that is not approved on a
/// fresh check.
fn credit_status_text(credit: &CreditStatus) -> String {
    let mut out = String::new();
    if credit.customers.is_empty() {
        return out;
    }
    let counts = &credit.counts;
    let _ = writeln!(
        out,
        "\ncredit checks: {} approved, {} declined, {} unknown, {} not checked, {} older than max age",
        counts.approved, counts.declined, counts.unknown, counts.unchecked, counts.stale
    );
    for c in &credit.customers {
        if c.result == Some(CreditResult::Approved) && !c.stale {
            continue;
        }
        let state = match (c.result, c.checked_at) {
            (Some(result), Some(at)) => {
                format!("{result} ({}), checked {}", c.text.as_deref().unwrap_or(""), time_for_people(at))
            }
            _ => "not checked yet".to_string(),
        };
        let _ = writeln!(out, "  {} {} [{}]: {state}", c.customer_id, c.customer_name, c.provider);
    }
    out
}

/// The report rows section of `loads show`.
pub fn report_rows_text(rows: &[LoadReportRow]) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let _ = writeln!(out, "  report rows");
    for r in rows {
        let _ = writeln!(
            out,
            "    {}  {} report {} row {}: {}",
            time_for_people(r.processed_at),
            r.kind,
            r.file_name,
            r.row,
            r.detail
        );
    }
    out
}

/// How many rows not applied `ingest` lists; the result file (or `--json`) has them all.
const LISTED_ROWS: usize = 50;

/// `ingest` for people.
pub fn ingest_text(summary: &IngestSummary) -> String {
    let mut out = String::new();
    let kind = summary.kind.map_or("report", ReportKind::as_str);
    if let Some(reason) = &summary.refused {
        let _ = writeln!(out, "{}: {} {kind} refused, nothing applied: {reason}", summary.file, summary.provider);
        return out;
    }
    if let Some(first) = &summary.duplicate_of {
        let _ = writeln!(out, "{}: same content as {first}, already ingested; nothing applied again", summary.file);
        return out;
    }
    let _ = writeln!(
        out,
        "{}: {} {kind} report, {} rows: {} applied, {} skipped, {} rejected",
        summary.file, summary.provider, summary.rows, summary.applied, summary.skipped, summary.rejected
    );
    let not_applied: Vec<_> = summary.outcomes.iter().filter(|o| o.outcome != Outcome::Applied).collect();
    for o in not_applied.iter().take(LISTED_ROWS) {
        let _ = writeln!(out, "  row {:<6} {:<16} {:<8} {}", o.row, o.invoice_number, o.outcome.as_str(), o.reason);
    }
    let all = summary.skipped + summary.rejected;
    if all > LISTED_ROWS {
        let _ = writeln!(out, "  … and {} more (see --json)", all - LISTED_ROWS);
    }
    out
}

// ---- Credit checks ----------------------------------------------------------------------------

/// `credit check` for people: one line per provider asked.
pub fn credit_check_text(checks: &CustomerChecks) -> String {
    let mut out = String::new();
    let name = &checks.customer.name;
    for check in &checks.checks {
        let _ = match check {
            CustomerCheck::Checked(c) => writeln!(
                out,
                "{} {name}: {} by {} ({}), checked {}",
                c.customer_id,
                c.result,
                c.provider,
                c.text,
                time_for_people(c.checked_at)
            ),
            CustomerCheck::Failed(f) => {
                writeln!(out, "{} {name}: check with {} FAILED: {}", f.customer_id, f.provider, f.error)
            }
        };
    }
    out
}

/// `credit refresh` for people: each customer checked and its result, then the counts.
pub fn credit_refresh_text(report: &RefreshReport) -> String {
    let mut out = String::new();
    for c in &report.checked {
        match (&c.result, &c.error) {
            (Some(result), _) => {
                let _ = writeln!(
                    out,
                    "{} {}: {result} by {} ({})",
                    c.customer_id,
                    c.customer_name,
                    c.provider,
                    c.text.as_deref().unwrap_or("")
                );
            }
            (None, error) => {
                let _ = writeln!(
                    out,
                    "{} {}: check with {} FAILED: {}",
                    c.customer_id,
                    c.customer_name,
                    c.provider,
                    error.as_deref().unwrap_or("no answer")
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "{} checked, {} failed, {} still fresh",
        report.checked.len() - report.failed(),
        report.failed(),
        report.fresh
    );
    out
}

/// The credit line of `loads show`; nothing when no checks apply.
fn load_credit_text(credit: &LoadCredit) -> String {
    match (credit.provider, &credit.latest) {
        (None, _) => String::new(),
        (Some(provider), None) => format!("  credit            not checked yet by {}\n", provider.name),
        (Some(provider), Some(check)) => format!(
            "  credit            {} by {} ({}), checked {}{}\n",
            check.result,
            provider.name,
            check.factor_text,
            time_for_people(check.checked_at),
            if is_stale(check, credit.max_age, chrono::Utc::now()) { ", older than credit.max_age" } else { "" }
        ),
    }
}

/// `factord sync` for people: one line per subsidiary, then each answer that did something or
/// needs a person.
pub fn sync_text(report: &crate::sync::SyncReport) -> String {
    let mut out = String::new();
    if report.subsidiaries.is_empty() {
        out.push_str("no subsidiary factors its invoices\n");
    }
    for s in &report.subsidiaries {
        if s.supported {
            let _ = writeln!(
                out,
                "{}  {}: asked {}, applied {}, unchanged {}, unrecognised {}, failed {}",
                s.subsidiary, s.provider, s.asked, s.applied, s.unchanged, s.unrecognised, s.failed
            );
        } else {
            let _ = writeln!(out, "{}  {}: not asked", s.subsidiary, s.provider);
        }
        if let Some(note) = &s.note {
            let _ = writeln!(out, "  {note}");
        }
        for a in s.answers.iter().filter(|a| a.outcome != "unchanged") {
            let words = a.factor_status.as_deref().map(|w| format!(" `{w}`")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<12} {} ({}){words}: {}",
                a.outcome,
                a.load_number,
                a.invoice_number.as_deref().unwrap_or("-"),
                a.detail
            );
        }
    }
    out
}

/// `factord providers test`: one line per subsidiary, aligned on the subsidiary column.
pub fn probe_text(results: &[crate::providers::probe::ProbeResult]) -> String {
    let width = results.iter().map(|r| r.subsidiary.len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in results {
        let verdict = match (&r.error, r.active, r.steps.is_empty()) {
            (Some(error), _, true) => format!("FAILED: {error}"),
            (Some(error), _, false) => format!("{}; FAILED: {error}", r.steps.join(", ")),
            (None, false, true) => "inactive (not checked)".to_string(),
            (None, false, false) => format!("inactive (not checked); {}", r.steps.join(", ")),
            (None, true, true) => "ok: nothing to check".to_string(),
            (None, true, false) => format!("ok: {}", r.steps.join(", ")),
        };
        out.push_str(&format!("{:<width$}  {} ({})  {verdict}\n", r.subsidiary, r.provider, r.transport));
    }
    out
}

/// `loads docs` for people: each document stored, what it replaced, the packet, what next.
pub fn docs_text(report: &crate::rework_docs::DocsReport) -> String {
    let mut out = String::new();
    let invoice = report.invoice_number.as_deref().map(|n| format!(", invoice {n}")).unwrap_or_default();
    let _ = writeln!(out, "{} [{}{invoice}]", report.load_number, report.status);
    for document in &report.documents {
        let _ = writeln!(out, "  {:<18}{} → documents/{}", document.kind.label(), document.source, document.path);
    }
    for replaced in &report.replaced {
        let _ = writeln!(out, "  replaced {:<9}documents/{}", replaced.kind.label(), replaced.path);
    }
    if let Some(packet) = &report.packet {
        let _ = writeln!(out, "  packet rebuilt    {packet}");
    }
    let _ = writeln!(out, "  next              {}", report.next);
    out
}

/// `loads retry` for people: the move, the rejection cleared, the packet, what next.
pub fn retry_text(report: &crate::rework_docs::RetryReport) -> String {
    let mut out = String::new();
    let invoice = report.invoice_number.as_deref().unwrap_or("-");
    let _ = writeln!(out, "{}: {} → {}  invoice {invoice}", report.load_number, report.from, report.status);
    let _ = writeln!(out, "  rejection cleared {}", report.rejection);
    if let Some(packet) = &report.packet {
        let _ = writeln!(out, "  packet rebuilt    {packet}");
    }
    let _ = writeln!(out, "  next              {}", report.next);
    out
}
