//! What the commands print: the stable JSON of DESIGN §6 and the text for people.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use crate::config::{InvoicingMethod, Settings, packet_mark_provider};
use crate::credit::{RefreshReport, is_stale, provider_with_checks};
use crate::domain::{CreditResult, LoadStatus};
use crate::intake::{FileImport, LOADS_CHANNEL};
use crate::providers::{Provider, find_provider};
use crate::reports::apply::Outcome;
use crate::reports::{IngestSummary, ReportKind};
use crate::store::{
    CreditCheckRecord, ExceptionRecord, HistoryRecord, LoadDetail, LoadRecord, LoadReportRow, LoadSummary,
    ReportFileRecord, Store, StoreError,
};

/// The JSON of one load (DESIGN §6). `history` is present for `loads show` only. Keys beyond
/// the contract may be added; the contract's keys keep their meaning.
pub fn load_json(load: &LoadRecord, exceptions: &[ExceptionRecord], history: Option<&[HistoryRecord]>) -> Value {
    let f = &load.fields;
    let mut value = json!({
        "load_number": load.load_number,
        "subsidiary": f.subsidiary,
        "customer_id": f.customer_id,
        "customer_name": load.customer_name,
        "customer_mc": load.customer_mc,
        "customer_dot": load.customer_dot,
        "status": load.status.as_str(),
        "amount_cents": f.amount.cents(),
        "amount": f.amount.to_string(),
        "invoice_number": load.invoice_number,
        "exceptions": exceptions.iter().map(|e| json!({
            "kind": e.kind.as_str(),
            "detail": e.detail,
            "raised_at": e.raised_at.to_rfc3339(),
        })).collect::<Vec<_>>(),
        "waiting_reason": load.waiting_reason,
        "batch_id": load.batch_id,
        // The provider that holds the invoice (the one its batch went to); `null` before that.
        "factor": load.factor,
        // The provider whose NOA the load's packet carries (factored packets only).
        "packet_built_for": load.packet_noa.as_deref().map(packet_mark_provider),
        // The factor's reference once a batch delivered the invoice, else the provider reference
        // number from the load export.
        "factor_reference": load.submission_reference.clone().or_else(|| f.factor_reference.clone()),
        "reference_number": f.factor_reference,
        "submission_reference": load.submission_reference,
        "delivered_at": f.delivered_at,
        "po_number": f.po_number,
        "truck": f.truck,
        "documents": { "pod": f.pod, "rate_confirmation": f.rate_confirmation },
        "lane": {
            "pickup_city": f.pickup_city, "pickup_state": f.pickup_state,
            "delivery_city": f.delivery_city, "delivery_state": f.delivery_state,
        },
        "updated_at": load.updated_at.to_rfc3339(),
    });
    if let (Some(history), Value::Object(map)) = (history, &mut value) {
        map.insert(
            "history".to_string(),
            Value::Array(
                history
                    .iter()
                    .map(|h| {
                        json!({
                            "from": h.from.map(LoadStatus::as_str),
                            "to": h.to.as_str(),
                            "at": h.at.to_rfc3339(),
                            "cause": h.cause,
                        })
                    })
                    .collect(),
            ),
        );
    }
    value
}

/// A plain-decimal amount from a report (`"2450.00"`) as people read it (`$2,450.00`).
fn for_people(plain: &str) -> String {
    crate::domain::Money::parse(plain).map_or_else(|_| plain.to_string(), |m| m.for_people().to_string())
}

fn or_dash(value: &Option<String>) -> &str {
    value.as_deref().filter(|v| !v.is_empty()).unwrap_or("-")
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
            let _ = writeln!(
                out,
                "    {:<16}{} (since {})",
                e.kind.as_str(),
                e.detail,
                crate::domain::time_for_people(e.raised_at)
            );
        }
    }
    let _ = writeln!(out, "  history");
    for h in &detail.history {
        let from = h.from.map_or("(new)", LoadStatus::as_str);
        let _ = writeln!(out, "    {}  {from} → {}  {}", crate::domain::time_for_people(h.at), h.to, h.cause);
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

/// What `status` shows.
pub struct Status {
    subsidiaries: Vec<SubsidiaryStatus>,
    load_files: Vec<Value>,
    refused_load_files: Vec<crate::store::RefusedFile>,
    /// The daemon running the schedules (several daemons on one PostgreSQL: one at a time).
    scheduler: Option<crate::store::LeaseHolder>,
    batches: Vec<crate::store::BatchSummary>,
    reports: Vec<ReportFileRecord>,
    credit: CreditStatus,
}

struct SubsidiaryStatus {
    id: String,
    name: Option<String>,
    counts: BTreeMap<LoadStatus, i64>,
    exceptions: i64,
    waiting: i64,
    waiting_loads: Vec<(String, String)>,
}

impl Status {
    /// Every configured subsidiary (with zero counts if it has no loads yet), plus any
    /// subsidiary that has loads but is no longer configured.
    pub async fn gather(store: &Store, settings: &Settings) -> Result<Status, StoreError> {
        let mut counts: BTreeMap<String, _> =
            store.status_counts().await?.into_iter().map(|c| (c.subsidiary.clone(), c)).collect();
        let mut subsidiaries = Vec::new();
        let mut ids: Vec<String> = settings.subsidiaries.iter().map(|s| s.id.clone()).collect();
        ids.extend(counts.keys().filter(|k| settings.subsidiary(k).is_none()).cloned());
        for id in ids {
            let c = counts.remove(&id);
            let waiting = c.as_ref().map_or(0, |c| c.waiting);
            let waiting_loads = if waiting > 0 {
                let filter = crate::store::LoadFilter { subsidiary: Some(id.clone()), ..Default::default() };
                store
                    .list_loads(&filter)
                    .await?
                    .into_iter()
                    .filter_map(|l| l.load.waiting_reason.clone().map(|r| (l.load.load_number.clone(), r)))
                    .take(20)
                    .collect()
            } else {
                Vec::new()
            };
            subsidiaries.push(SubsidiaryStatus {
                name: settings.subsidiary(&id).map(|s| s.name.clone()),
                counts: c.as_ref().map(|c| c.counts.clone()).unwrap_or_default(),
                exceptions: c.as_ref().map_or(0, |c| c.exceptions),
                waiting,
                waiting_loads,
                id,
            });
        }
        // Files dropped into inbox/loads and files given to `loads import`, newest first.
        let mut files = store.recent_inbox_files(LOADS_CHANNEL, 5).await?;
        files.extend(store.recent_inbox_files(crate::store::COMMAND_LOADS_CHANNEL, 5).await?);
        files.sort_by_key(|f| std::cmp::Reverse(f.processed_at));
        let load_files = files
            .into_iter()
            .take(5)
            .map(|f| {
                let summary: Value = serde_json::from_str(&f.summary).unwrap_or(Value::Null);
                let source = if f.channel == LOADS_CHANNEL { "inbox" } else { "command" };
                json!({ "file": f.file_name, "source": source, "processed_at": f.processed_at.to_rfc3339(), "summary": summary })
            })
            .collect();
        let refused_load_files = store.recent_refused_files(LOADS_CHANNEL, 5).await?;
        let batches = store.recent_batches(10).await?;
        let reports = store.recent_report_files(REPORTS_PER_PROVIDER).await?;
        let credit = CreditStatus::gather(store, settings).await?;
        let scheduler = store.lease_holder(crate::daemon::SCHEDULER_ROLE).await?;
        Ok(Status { subsidiaries, load_files, refused_load_files, scheduler, batches, reports, credit })
    }

    /// `status --json` (DESIGN §6).
    pub fn json(&self) -> Value {
        json!({
            "subsidiaries": self.subsidiaries.iter().map(|s| {
                let mut counts = serde_json::Map::new();
                for status in LoadStatus::PIPELINE {
                    counts.insert(status.as_str().to_string(), json!(s.counts.get(&status).copied().unwrap_or(0)));
                }
                json!({
                    "id": s.id,
                    "name": s.name,
                    "configured": s.name.is_some(),
                    "counts": counts,
                    "delivered": s.counts.get(&LoadStatus::Delivered).copied().unwrap_or(0),
                    "exceptions": s.exceptions,
                    "waiting": s.waiting,
                    "waiting_loads": s.waiting_loads.iter().map(|(l, r)| json!({"load_number": l, "reason": r})).collect::<Vec<_>>(),
                })
            }).collect::<Vec<_>>(),
            "last_batches": self.batches.iter().map(|b| json!({
                "id": b.id,
                "subsidiary": b.subsidiary,
                "provider": b.provider,
                "status": b.status,
                "invoices": b.invoice_count,
                "total_cents": b.total_cents,
                "reference": b.reference,
                "accepted": b.accepted,
                "rejected": b.rejected,
                "transient": b.transient,
                "error": b.error,
                "created_at": b.created_at.to_rfc3339(),
            })).collect::<Vec<_>>(),
            "last_reports": self.reports.iter().map(report_file_json).collect::<Vec<_>>(),
            "scheduler": self.scheduler.as_ref().map(|s| json!({ "holder": s.holder, "live": s.live })),
            "last_load_files": self.load_files,
            "refused_load_files": self.refused_load_files.iter().map(|f| json!({
                "file": f.file_name,
                "refused_at": f.refused_at.to_rfc3339(),
                "reason": f.reason,
            })).collect::<Vec<_>>(),
            "credit": self.credit.json(),
        })
    }

    /// `status` for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8}",
            "SUBSIDIARY", "Released", "Queued", "Invoiced", "Financed", "Completed", "exceptions", "waiting"
        );
        for s in &self.subsidiaries {
            let n = |status| s.counts.get(&status).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8}{}",
                s.id,
                n(LoadStatus::Released),
                n(LoadStatus::Queued),
                n(LoadStatus::Invoiced),
                n(LoadStatus::Financed),
                n(LoadStatus::Completed),
                s.exceptions,
                s.waiting,
                if s.name.is_none() { "  (not configured)" } else { "" }
            );
        }
        for s in self.subsidiaries.iter().filter(|s| !s.waiting_loads.is_empty()) {
            let _ = writeln!(out, "\nwaiting in {}:", s.id);
            for (load, reason) in &s.waiting_loads {
                let _ = writeln!(out, "  {load}: {reason}");
            }
        }
        if !self.batches.is_empty() {
            let _ = writeln!(out, "\nlast batches:");
            for b in &self.batches {
                let _ = writeln!(
                    out,
                    "  {}  {} → {}: {} invoice(s), {}, {} (accepted {}, rejected {}, transient {}){}",
                    crate::domain::time_for_people(b.created_at),
                    b.id,
                    b.provider,
                    b.invoice_count,
                    crate::domain::Money::from_cents(b.total_cents).for_people(),
                    b.status,
                    b.accepted,
                    b.rejected,
                    b.transient,
                    b.reference.as_deref().or(b.error.as_deref()).map(|r| format!("  {r}")).unwrap_or_default()
                );
            }
        }
        if !self.reports.is_empty() {
            let _ = writeln!(out, "\nlast report files:");
            for f in &self.reports {
                let what = match &f.refused {
                    Some(reason) => format!("REFUSED: {reason}"),
                    None => format!(
                        "{} rows: {} applied, {} skipped, {} rejected",
                        f.rows, f.applied, f.skipped, f.rejected
                    ),
                };
                let _ = writeln!(
                    out,
                    "  {}  {} {} {}: {what}",
                    crate::domain::time_for_people(f.processed_at),
                    f.provider,
                    f.kind.as_deref().unwrap_or("report"),
                    f.file_name
                );
            }
        }
        out.push_str(&self.credit.text());
        match &self.scheduler {
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
        if !self.refused_load_files.is_empty() {
            let _ = writeln!(out, "\nrefused load files (nothing imported; fix and drop them again):");
            for f in &self.refused_load_files {
                let _ = writeln!(
                    out,
                    "  {}  {}: REFUSED: {}",
                    crate::domain::time_for_people(f.refused_at),
                    f.file_name,
                    f.reason
                );
            }
        }
        if !self.load_files.is_empty() {
            let _ = writeln!(out, "\nlast load files:");
            for f in &self.load_files {
                let summary = &f["summary"];
                let _ = writeln!(
                    out,
                    "  {}  {}: {} imported, {} updated, {} unchanged, {} rejected",
                    f["processed_at"].as_str().unwrap_or(""),
                    f["file"].as_str().unwrap_or(""),
                    summary["imported"],
                    summary["updated"],
                    summary["unchanged"],
                    summary["rejected"]
                );
            }
        }
        out
    }
}

/// How many report files per provider `status` shows.
const REPORTS_PER_PROVIDER: i64 = 5;

fn report_file_json(f: &ReportFileRecord) -> Value {
    json!({
        "file": f.file_name,
        "provider": f.provider,
        "kind": f.kind,
        "processed_at": f.processed_at.to_rfc3339(),
        "rows": f.rows,
        "applied": f.applied,
        "skipped": f.skipped,
        "rejected": f.rejected,
        "refused": f.refused,
    })
}

/// Adds the report rows that changed a load to its `loads show --json` object.
pub fn add_report_rows(value: &mut Value, rows: &[LoadReportRow]) {
    if let Value::Object(map) = value {
        let rows = rows
            .iter()
            .map(|r| {
                json!({
                    "kind": r.kind,
                    "file": r.file_name,
                    "row": r.row,
                    "processed_at": r.processed_at.to_rfc3339(),
                    "detail": r.detail,
                })
            })
            .collect();
        map.insert("report_rows".to_string(), Value::Array(rows));
    }
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
            crate::domain::time_for_people(r.processed_at),
            r.kind,
            r.file_name,
            r.row,
            r.detail
        );
    }
    out
}

/// `ingest --json` (DESIGN §6): the summary without the per-row list, plus the rows that
/// were not applied (the first 10,000 of them; the result file has every row).
pub fn ingest_json(summary: &IngestSummary) -> Value {
    json!({
        "file": summary.file,
        "provider": summary.provider,
        "kind": summary.kind,
        "rows": summary.rows,
        "applied": summary.applied,
        "skipped": summary.skipped,
        "rejected": summary.rejected,
        "refused": summary.refused,
        "duplicate_of": summary.duplicate_of,
        "not_applied": summary.outcomes.iter().filter(|o| o.outcome != Outcome::Applied).collect::<Vec<_>>(),
    })
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

fn check_date(check: &CreditCheckRecord) -> String {
    crate::domain::time_for_people(check.checked_at)
}

/// One recorded check as JSON (`credit check --json`, `loads show --json`'s `credit`).
pub fn credit_json(check: &CreditCheckRecord, max_age: std::time::Duration) -> Value {
    json!({
        "customer_id": check.customer_id,
        "provider": check.provider,
        "subsidiary": check.subsidiary,
        "result": check.result.as_str(),
        "text": check.factor_text,
        "checked_at": check.checked_at.to_rfc3339(),
        "cause": check.cause,
        "stale": is_stale(check, max_age, chrono::Utc::now()),
    })
}

/// `credit check` for people: one line per check.
pub fn credit_check_line(customer_name: &str, check: &CreditCheckRecord) -> String {
    format!(
        "{} {}: {} by {} ({}), checked {}",
        check.customer_id,
        customer_name,
        check.result,
        check.provider,
        check.factor_text,
        check_date(check)
    )
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

/// The credit state of one load's customer with its subsidiary's provider (`loads show`).
pub struct LoadCredit {
    /// `None` when the load's provider offers no checks (or the customer is invoiced directly).
    provider: Option<&'static Provider>,
    latest: Option<CreditCheckRecord>,
    max_age: std::time::Duration,
}

impl LoadCredit {
    pub async fn gather(store: &Store, settings: &Settings, load: &LoadRecord) -> Result<LoadCredit, StoreError> {
        let provider = settings
            .subsidiary(&load.fields.subsidiary)
            .filter(|s| s.method_for(&load.fields.customer_id) == InvoicingMethod::Factoring)
            .and_then(|s| s.factoring.as_ref())
            .map(|f| f.provider)
            .filter(|p| p.credit_checks);
        let latest = match provider {
            Some(provider) => store.latest_credit_check(&load.fields.customer_id, provider.id).await?,
            None => None,
        };
        Ok(LoadCredit { provider, latest, max_age: settings.credit.max_age })
    }

    /// `null` when no checks apply; else the latest check (`result` null when none yet).
    pub fn json(&self) -> Value {
        match (self.provider, &self.latest) {
            (None, _) => Value::Null,
            (Some(_), Some(check)) => credit_json(check, self.max_age),
            (Some(provider), None) => json!({
                "provider": provider.id, "result": null, "text": null, "checked_at": null, "stale": true,
            }),
        }
    }

    pub fn text(&self) -> String {
        match (self.provider, &self.latest) {
            (None, _) => String::new(),
            (Some(provider), None) => format!("  credit            not checked yet by {}\n", provider.name),
            (Some(provider), Some(check)) => format!(
                "  credit            {} by {} ({}), checked {}{}\n",
                check.result,
                provider.name,
                check.factor_text,
                check_date(check),
                if is_stale(check, self.max_age, chrono::Utc::now()) { ", older than credit.max_age" } else { "" }
            ),
        }
    }
}

/// Credit state in `status`: the latest check of each customer with loads in Released or
/// Queued under a provider with checks.
struct CreditStatus {
    max_age: std::time::Duration,
    schedule: String,
    customers: Vec<CreditLine>,
}

struct CreditLine {
    customer_id: String,
    customer_name: String,
    provider: &'static str,
    latest: Option<CreditCheckRecord>,
}

impl CreditStatus {
    async fn gather(store: &Store, settings: &Settings) -> Result<CreditStatus, StoreError> {
        let mut latest: BTreeMap<(String, String), CreditCheckRecord> = store
            .latest_credit_checks()
            .await?
            .into_iter()
            .map(|c| ((c.customer_id.clone(), c.provider.clone()), c))
            .collect();
        let mut customers = Vec::new();
        for candidate in store.credit_candidates().await? {
            let Some(subsidiary) = settings.subsidiary(&candidate.subsidiary) else { continue };
            if subsidiary.method_for(&candidate.customer.id) == InvoicingMethod::Direct {
                continue;
            }
            let Some(provider) = provider_with_checks(subsidiary) else { continue };
            if customers
                .iter()
                .any(|c: &CreditLine| c.customer_id == candidate.customer.id && c.provider == provider.id)
            {
                continue;
            }
            customers.push(CreditLine {
                latest: latest.remove(&(candidate.customer.id.clone(), provider.id.to_string())),
                customer_id: candidate.customer.id,
                customer_name: candidate.customer.name,
                provider: provider.id,
            });
        }
        Ok(CreditStatus {
            max_age: settings.credit.max_age,
            schedule: settings.credit.refresh_schedule.expression.clone(),
            customers,
        })
    }

    fn stale(&self, line: &CreditLine) -> bool {
        line.latest.as_ref().is_none_or(|c| is_stale(c, self.max_age, chrono::Utc::now()))
    }

    /// `{approved, declined, unknown, unchecked, stale}` counts.
    fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts: BTreeMap<&'static str, usize> =
            ["approved", "declined", "unknown", "unchecked", "stale"].into_iter().map(|k| (k, 0)).collect();
        for line in &self.customers {
            let key = line.latest.as_ref().map_or("unchecked", |c| c.result.as_str());
            *counts.entry(key).or_default() += 1;
            if line.latest.is_some() && self.stale(line) {
                *counts.entry("stale").or_default() += 1;
            }
        }
        counts
    }

    fn json(&self) -> Value {
        json!({
            "max_age_seconds": self.max_age.as_secs(),
            "refresh_schedule": self.schedule,
            "counts": self.counts(),
            "customers": self.customers.iter().map(|line| json!({
                "customer_id": line.customer_id,
                "customer_name": line.customer_name,
                "provider": line.provider,
                "result": line.latest.as_ref().map(|c| c.result.as_str()),
                "text": line.latest.as_ref().map(|c| c.factor_text.clone()),
                "checked_at": line.latest.as_ref().map(|c| c.checked_at.to_rfc3339()),
                "stale": self.stale(line),
            })).collect::<Vec<_>>(),
        })
    }

    /// A summary line, then every customer that is not approved on a fresh check.
    fn text(&self) -> String {
        let mut out = String::new();
        if self.customers.is_empty() {
            return out;
        }
        let counts = self.counts();
        let _ = writeln!(
            out,
            "\ncredit checks: {} approved, {} declined, {} unknown, {} not checked, {} older than max age",
            counts["approved"], counts["declined"], counts["unknown"], counts["unchecked"], counts["stale"]
        );
        for line in &self.customers {
            let approved = line.latest.as_ref().is_some_and(|c| c.result == CreditResult::Approved);
            if approved && !self.stale(line) {
                continue;
            }
            let state = match &line.latest {
                Some(check) => format!("{} ({}), checked {}", check.result, check.factor_text, check_date(check)),
                None => "not checked yet".to_string(),
            };
            let _ = writeln!(out, "  {} {} [{}]: {state}", line.customer_id, line.customer_name, line.provider);
        }
        out
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
