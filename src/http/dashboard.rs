//! The read-only dashboard at `/`: plain HTML made on the server, no script, no form, no
//! secret. Per subsidiary the pipeline (loads per status), the loads waiting with their
//! reasons, the open exceptions, its last batches and the last report files of its provider
//! with their results; then the report files of providers no subsidiary uses any more.
//! Everything that comes from the database or the configuration is HTML-escaped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::config::Settings;
use crate::domain::{LoadStatus, Money};
use crate::store::{
    BatchSummary, OpenException, RefusedFile, ReportFileRecord, Store, StoreError, SubsidiaryCounts, WaitingLoad,
};

/// How many waiting loads and open exceptions are listed per subsidiary.
const LISTED_PER_SUBSIDIARY: i64 = 50;
/// How many batches are listed per subsidiary.
const BATCHES_PER_SUBSIDIARY: i64 = 5;
/// How many report files are listed per provider.
const REPORTS_PER_PROVIDER: i64 = 5;
/// How many refused load files are listed.
const REFUSED_LOAD_FILES: i64 = 10;
/// The page reloads itself this often (seconds), with a meta tag: no script needed.
const REFRESH_SECONDS: u32 = 30;

/// What the page shows, read from the database.
pub struct Dashboard {
    counts: Vec<SubsidiaryCounts>,
    waiting: Vec<WaitingLoad>,
    exceptions: Vec<OpenException>,
    batches: Vec<BatchSummary>,
    reports: Vec<ReportFileRecord>,
    refused_load_files: Vec<RefusedFile>,
}

impl Dashboard {
    pub async fn gather(store: &Store) -> Result<Dashboard, StoreError> {
        Ok(Dashboard {
            counts: store.status_counts().await?,
            waiting: store.waiting_loads(LISTED_PER_SUBSIDIARY).await?,
            exceptions: store.open_exceptions(LISTED_PER_SUBSIDIARY).await?,
            batches: store.recent_batches_per_subsidiary(BATCHES_PER_SUBSIDIARY).await?,
            reports: store.recent_report_files(REPORTS_PER_PROVIDER).await?,
            refused_load_files: store.recent_refused_files(crate::intake::LOADS_CHANNEL, REFUSED_LOAD_FILES).await?,
        })
    }

    /// The page. `now` is printed as the time of the figures.
    pub fn html(&self, settings: &Settings, now: DateTime<Utc>) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\n\
             <title>factord</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
             <h1>factord</h1>\n<p class=\"meta\">Figures of {} · version {} · read-only, refreshes every {REFRESH_SECONDS} s</p>\n",
            crate::domain::time_for_people(now),
            env!("CARGO_PKG_VERSION"),
        );

        // Configured subsidiaries in config order, then any that have loads but are no longer
        // configured.
        let counts: BTreeMap<&str, &SubsidiaryCounts> =
            self.counts.iter().map(|c| (c.subsidiary.as_str(), c)).collect();
        let mut ids: Vec<&str> = settings.subsidiaries.iter().map(|s| s.id.as_str()).collect();
        let configured: BTreeSet<&str> = ids.iter().copied().collect();
        ids.extend(counts.keys().copied().filter(|id| !configured.contains(id)));
        if !self.refused_load_files.is_empty() {
            out.push_str(
                "<section id=\"refused-load-files\">\n<h2>Refused load files</h2>\n\
                 <p class=\"meta\">Nothing of these was imported: fix each and drop it into inbox/loads again.</p>\n\
                 <table class=\"refused\">\n<tr><th>refused</th><th>file</th><th>why</th></tr>\n",
            );
            for f in &self.refused_load_files {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td class=\"reason\">{}</td></tr>",
                    crate::domain::time_for_people(f.refused_at),
                    escape(&f.file_name),
                    escape(&f.reason)
                );
            }
            out.push_str("</table>\n</section>\n");
        }
        for id in &ids {
            self.subsidiary(&mut out, settings, id, counts.get(id).copied());
        }
        // Report files of a provider no listed subsidiary uses (e.g. after a switch of factor).
        let in_use: BTreeSet<&str> =
            ids.iter().filter_map(|id| settings.subsidiary(id)?.factoring.as_ref().map(|f| f.provider.id)).collect();
        let others: Vec<&ReportFileRecord> =
            self.reports.iter().filter(|f| !in_use.contains(f.provider.as_str())).collect();
        if !others.is_empty() {
            out.push_str("<section id=\"other-reports\">\n<h2>Report files of other providers</h2>\n");
            reports_table(&mut out, &others);
            out.push_str("</section>\n");
        }
        out.push_str("</body>\n</html>\n");
        out
    }

    #[expect(clippy::too_many_lines, reason = "one subsidiary's card, written top to bottom as it appears on the page")]
    fn subsidiary(&self, out: &mut String, settings: &Settings, id: &str, counts: Option<&SubsidiaryCounts>) {
        let name = settings.subsidiary(id).map_or("not configured", |s| s.name.as_str());
        let id_attr = escape(id);
        let _ = write!(
            out,
            "<section class=\"subsidiary\" id=\"subsidiary-{id_attr}\">\n<h2>{} <small>{id_attr}</small></h2>\n",
            escape(name)
        );
        out.push_str("<table class=\"pipeline\">\n<tr>");
        for status in LoadStatus::ALL {
            let _ = write!(out, "<th>{}</th>", status.as_str());
        }
        out.push_str("<th>exceptions</th><th>waiting</th></tr>\n<tr>");
        for status in LoadStatus::ALL {
            let n = counts.and_then(|c| c.counts.get(&status)).copied().unwrap_or(0);
            let _ = write!(
                out,
                "<td data-subsidiary=\"{id_attr}\" data-status=\"{status}\">{n}</td>",
                status = status.as_str()
            );
        }
        let _ = write!(
            out,
            "<td data-subsidiary=\"{id_attr}\" data-count=\"exceptions\">{}</td>\
             <td data-subsidiary=\"{id_attr}\" data-count=\"waiting\">{}</td></tr>\n</table>\n",
            counts.map_or(0, |c| c.exceptions),
            counts.map_or(0, |c| c.waiting)
        );

        let waiting: Vec<&WaitingLoad> = self.waiting.iter().filter(|w| w.subsidiary == id).collect();
        if !waiting.is_empty() {
            let total = counts.map_or(0, |c| c.waiting);
            let _ = write!(out, "<h3>Waiting ({})</h3>\n<table class=\"waiting\">\n", shown(waiting.len(), total));
            out.push_str("<tr><th>load</th><th>status</th><th>customer</th><th>why it waits</th></tr>\n");
            for w in waiting {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"reason\">{}</td></tr>",
                    escape(&w.load_number),
                    escape(&w.status),
                    escape(&w.customer_name),
                    escape(&w.reason)
                );
            }
            out.push_str("</table>\n");
        }

        let exceptions: Vec<&OpenException> = self.exceptions.iter().filter(|e| e.subsidiary == id).collect();
        if !exceptions.is_empty() {
            let total = counts.map_or(0, |c| c.exceptions);
            let _ =
                write!(out, "<h3>Exceptions ({})</h3>\n<table class=\"exceptions\">\n", shown(exceptions.len(), total));
            out.push_str("<tr><th>load</th><th>status</th><th>flag</th><th>detail</th><th>since</th></tr>\n");
            for e in exceptions {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&e.load_number),
                    escape(&e.status),
                    escape(&e.kind),
                    escape(&e.detail),
                    crate::domain::time_for_people(e.raised_at)
                );
            }
            out.push_str("</table>\n");
        }

        let batches: Vec<&BatchSummary> = self.batches.iter().filter(|b| b.subsidiary == id).collect();
        if batches.is_empty() {
            out.push_str("<h3>Last batches</h3>\n<p>No batch yet.</p>\n");
        } else {
            out.push_str("<h3>Last batches</h3>\n");
            batches_table(out, &batches);
        }
        if let Some(factoring) = settings.subsidiary(id).and_then(|s| s.factoring.as_ref()) {
            let provider = factoring.provider.id;
            let reports: Vec<&ReportFileRecord> = self.reports.iter().filter(|f| f.provider == provider).collect();
            let _ = writeln!(out, "<h3>Last report files from {}</h3>", escape(provider));
            if reports.is_empty() {
                out.push_str("<p>No report file yet.</p>\n");
            } else {
                reports_table(out, &reports);
            }
        }
        out.push_str("</section>\n");
    }
}

fn batches_table(out: &mut String, batches: &[&BatchSummary]) {
    out.push_str(
        "<table class=\"batches\">\n<tr><th>created</th><th>batch</th><th>provider</th>\
         <th>status</th><th>invoices</th><th>total</th><th>accepted</th><th>rejected</th><th>transient</th>\
         <th>reference or error</th></tr>\n",
    );
    for b in batches {
        let note = b.reference.as_deref().or(b.error.as_deref()).unwrap_or("");
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            crate::domain::time_for_people(b.created_at),
            escape(&b.id),
            escape(&b.provider),
            escape(&b.status),
            b.invoice_count,
            Money::from_cents(b.total_cents).for_people(),
            b.accepted,
            b.rejected,
            b.transient,
            escape(note)
        );
    }
    out.push_str("</table>\n");
}

fn reports_table(out: &mut String, reports: &[&ReportFileRecord]) {
    out.push_str(
        "<table class=\"reports\">\n<tr><th>processed</th><th>provider</th><th>kind</th><th>file</th>\
         <th>rows</th><th>applied</th><th>skipped</th><th>rejected</th><th>refused because</th></tr>\n",
    );
    for f in reports {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            crate::domain::time_for_people(f.processed_at),
            escape(&f.provider),
            escape(f.kind.as_deref().unwrap_or("report")),
            escape(&f.file_name),
            f.rows,
            f.applied,
            f.skipped,
            f.rejected,
            escape(f.refused.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table>\n");
}

/// "12" when all are listed, "50 of 73 shown" when the list is cut.
fn shown(listed: usize, total: i64) -> String {
    if i64::try_from(listed).is_ok_and(|listed| listed < total) {
        format!("{listed} of {total} shown")
    } else {
        total.to_string()
    }
}

/// Text for HTML content or a quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1em}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}\
.pipeline td{text-align:right;min-width:5em}\
.meta,small{color:#666;font-weight:normal}\
td.reason{color:#a40}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(escape(r#"<b>"x" & 'y'</b>"#), "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;");
    }

    #[test]
    fn a_cut_list_says_so() {
        assert_eq!(shown(3, 3), "3");
        assert_eq!(shown(50, 73), "50 of 73 shown");
    }
}
