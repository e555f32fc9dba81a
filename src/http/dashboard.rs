//! The read-only dashboard at `/`: plain HTML made on the server, no script, no form, no
//! secret. First what needs ops: the open exceptions and held loads, oldest first, with their
//! age and the command that resolves each (the list of `factord exceptions`); the load and report
//! files refused; the subsidiaries whose provider is inactive. Then each schedule with its next
//! fire, in its time zone. Then per subsidiary the pipeline (loads per status), the loads waiting
//! with their reasons, its last batches and the last report files of its provider with their
//! results; then the report files of providers no subsidiary uses any more.
//!
//! Everything that comes from the database or the configuration is HTML-escaped. The texts
//! written for the command line mark commands and values with Markdown's backticks
//! (`` `factord loads release L --reason ...` ``): [`prose`] shows them as `<code>`, so no
//! Markdown is left on the page. One gather of bounded lists per page.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::{Schedule, Settings};
use crate::domain::ledger::MoneySummary;
use crate::domain::{LoadStatus, Money, span_for_people, time_for_people, zoned_time_for_people};
use crate::rework::ExceptionLine;
use crate::store::{BatchSummary, RefusedFile, ReportFileRecord, Store, StoreError, SubsidiaryCounts, WaitingLoad};

/// How many waiting loads are listed per subsidiary.
const LISTED_PER_SUBSIDIARY: i64 = 50;
/// How many open exceptions (held loads included) are listed, oldest first.
const LISTED_EXCEPTIONS: i64 = 100;
/// How many batches are listed per subsidiary.
const BATCHES_PER_SUBSIDIARY: i64 = 5;
/// How many report files are listed per provider.
const REPORTS_PER_PROVIDER: i64 = 5;
/// How many refused files (load and report files together) are listed, newest first.
const REFUSED_FILES: usize = 10;
/// The page reloads itself this often (seconds), with a meta tag: no script needed.
const REFRESH_SECONDS: u32 = 30;

/// What the page shows, read from the database.
pub struct Dashboard {
    counts: Vec<SubsidiaryCounts>,
    waiting: Vec<WaitingLoad>,
    /// The oldest open exceptions, with the command that resolves each.
    exceptions: Vec<ExceptionLine>,
    batches: Vec<BatchSummary>,
    reports: Vec<ReportFileRecord>,
    /// The newest refused files of both kinds, one more than listed (to tell that more exist).
    refused: Vec<Refused>,
    /// Money per status, reserve, fees this month, the oldest open invoice (docs/money.md).
    money: MoneySummary,
}

/// A file refused whole: a load file (the refused_files table) or a report file.
struct Refused {
    at: DateTime<Utc>,
    file_name: String,
    /// `load file`, or the provider and kind of a report file.
    what: String,
    /// Where a fixed file goes.
    inbox: String,
    reason: String,
}

impl Refused {
    fn load_file(f: RefusedFile) -> Refused {
        Refused {
            at: f.refused_at,
            file_name: f.file_name,
            what: "load file".to_string(),
            inbox: "inbox/loads/".to_string(),
            reason: f.reason,
        }
    }

    fn report_file(f: ReportFileRecord) -> Refused {
        Refused {
            at: f.processed_at,
            what: format!("{} report from {}", f.kind.as_deref().unwrap_or("a"), f.provider),
            inbox: format!("inbox/{}/", f.provider),
            file_name: f.file_name,
            reason: f.refused.unwrap_or_default(),
        }
    }
}

impl Dashboard {
    pub async fn gather(store: &Store, settings: &Settings) -> Result<Dashboard, StoreError> {
        let more = i64::try_from(REFUSED_FILES + 1).unwrap_or(i64::MAX);
        let mut refused: Vec<Refused> = store
            .recent_refused_files(crate::intake::LOADS_CHANNEL, more)
            .await?
            .into_iter()
            .map(Refused::load_file)
            .chain(store.recent_refused_report_files(more).await?.into_iter().map(Refused::report_file))
            .collect();
        refused.sort_by_key(|f| std::cmp::Reverse(f.at));
        refused.truncate(REFUSED_FILES + 1);
        Ok(Dashboard {
            counts: store.status_counts().await?,
            waiting: store.waiting_loads(LISTED_PER_SUBSIDIARY).await?,
            exceptions: crate::rework::oldest_exceptions(store, settings, LISTED_EXCEPTIONS).await?,
            batches: store.recent_batches_per_subsidiary(BATCHES_PER_SUBSIDIARY).await?,
            reports: store.recent_report_files(REPORTS_PER_PROVIDER).await?,
            refused,
            money: store.money_summary(Utc::now().date_naive()).await?,
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
            time_for_people(now),
            env!("CARGO_PKG_VERSION"),
        );

        money(&mut out, &self.money);
        self.exceptions(&mut out, now);
        self.refused(&mut out);
        inactive_providers(&mut out, settings);
        schedules(&mut out, settings, now);

        // Configured subsidiaries in config order, then any that have loads but are no longer
        // configured.
        let counts: BTreeMap<&str, &SubsidiaryCounts> =
            self.counts.iter().map(|c| (c.subsidiary.as_str(), c)).collect();
        let mut ids: Vec<&str> = settings.subsidiaries.iter().map(|s| s.id.as_str()).collect();
        let configured: BTreeSet<&str> = ids.iter().copied().collect();
        ids.extend(counts.keys().copied().filter(|id| !configured.contains(id)));
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

    /// The open exceptions and held loads, oldest first, with their age at `now`.
    fn exceptions(&self, out: &mut String, now: DateTime<Utc>) {
        let total: i64 = self.counts.iter().map(|c| c.exceptions).sum();
        let _ = write!(
            out,
            "<section id=\"exceptions\">\n<h2>Exceptions and held loads ({})</h2>\n",
            shown(self.exceptions.len(), total)
        );
        if self.exceptions.is_empty() {
            out.push_str("<p>None open.</p>\n</section>\n");
            return;
        }
        out.push_str(
            "<p class=\"meta\">Oldest first; <code>factord exceptions</code> lists them all.</p>\n\
             <table class=\"exceptions\">\n<tr><th>since</th><th>age</th><th>load</th><th>subsidiary</th>\
             <th>status</th><th>kind</th><th>what it says</th><th>to resolve</th></tr>\n",
        );
        for e in &self.exceptions {
            let _ = writeln!(
                out,
                "<tr data-load=\"{load}\" data-kind=\"{kind}\"><td>{}</td><td class=\"age\">{}</td><td>{load}</td>\
                 <td>{}</td><td>{}</td><td>{kind}</td><td class=\"reason\">{}</td><td>{}</td></tr>",
                time_for_people(e.raised_at),
                span_for_people(now - e.raised_at),
                escape(&e.subsidiary),
                e.status.as_str(),
                prose(&e.detail),
                prose(&e.resolve),
                load = escape(&e.load_number),
                kind = e.kind.as_str(),
            );
        }
        out.push_str("</table>\n</section>\n");
    }

    /// The load and report files refused whole, newest first.
    fn refused(&self, out: &mut String) {
        out.push_str("<section id=\"refused-files\">\n<h2>Refused files</h2>\n");
        if self.refused.is_empty() {
            out.push_str("<p>None refused.</p>\n</section>\n");
            return;
        }
        let listed = self.refused.len().min(REFUSED_FILES);
        let cut = if self.refused.len() > REFUSED_FILES {
            format!(" The {listed} newest are listed; <code>factord status</code> shows the load files.")
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<p class=\"meta\">Nothing of these was imported or applied: fix each and drop it into its inbox \
             again.{cut}</p>\n<table class=\"refused\">\n<tr><th>refused</th><th>file</th><th>what</th>\
             <th>why</th><th>drop it again into</th></tr>\n"
        );
        for f in self.refused.iter().take(listed) {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"reason\">{}</td><td><code>{}</code></td></tr>",
                time_for_people(f.at),
                escape(&f.file_name),
                escape(&f.what),
                prose(&f.reason),
                escape(&f.inbox)
            );
        }
        out.push_str("</table>\n</section>\n");
    }

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
                    prose(&w.reason)
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

/// The subsidiaries whose provider is configured with `active = false`, and what that means.
/// The money section: what customers still owe per status, the advances on financed invoices,
/// the reserve the factors hold, this month's fees and the oldest open invoice (the same figures
/// as the `factord_money_*` metrics; formulas in docs/money.md).
fn money(out: &mut String, money: &MoneySummary) {
    out.push_str(
        "<section id=\"money\">\n<h2>Money</h2>\n<table class=\"money\">\n<tr><th>figure</th><th>amount</th></tr>\n",
    );
    let mut row = |name: &str, key: &str, value: String| {
        let _ = writeln!(out, "<tr data-figure=\"{key}\"><td>{name}</td><td class=\"n\">{}</td></tr>", escape(&value));
    };
    for (status, open) in &money.open_by_status {
        row(
            &format!("open, {status}"),
            &format!("open-{}", status.as_str().to_lowercase()),
            open.for_people().to_string(),
        );
    }
    row("open receivables", "open", money.open_receivables.for_people().to_string());
    row("advanced on Financed invoices", "financed", money.financed.for_people().to_string());
    row("reserve held by factors", "reserve", money.reserve_held.for_people().to_string());
    row("fees this month", "fees", money.fees_this_month.for_people().to_string());
    let oldest = money.oldest_open_days.map_or_else(|| "none open".to_string(), |d| format!("{d} days"));
    row("oldest open invoice", "oldest", oldest);
    out.push_str("</table>\n</section>\n");
}

fn inactive_providers(out: &mut String, settings: &Settings) {
    let inactive: Vec<_> = settings
        .subsidiaries
        .iter()
        .filter_map(|s| s.factoring.as_ref().filter(|f| !f.active).map(|f| (s, f.provider)))
        .collect();
    if inactive.is_empty() {
        return;
    }
    out.push_str(
        "<section id=\"inactive-providers\">\n<h2>Inactive providers</h2>\n\
         <p class=\"meta\">Configured with <code>active = false</code> under <code>[subsidiary.factoring]</code>: \
         nothing is sent to the factor (no batch, no status sync, no credit check), and loads to factor \
         wait Released without an invoice until the provider is made active; direct customers are still \
         invoiced.</p>\n<table class=\"inactive\">\n<tr><th>subsidiary</th><th>provider</th><th>what it means</th></tr>\n",
    );
    for (subsidiary, provider) in inactive {
        let _ = writeln!(
            out,
            "<tr data-subsidiary=\"{id}\"><td>{} <small>{id}</small></td><td>{} <small>{}</small></td>\
             <td class=\"reason\">inactive: nothing is sent to {}</td></tr>",
            escape(&subsidiary.name),
            escape(provider.name),
            escape(provider.id),
            escape(provider.name),
            id = escape(&subsidiary.id),
        );
    }
    out.push_str("</table>\n</section>\n");
}

/// One schedule as the daemon runs it: its cron in its zone, or why it does not run.
struct ScheduleRow<'a> {
    name: String,
    schedule: &'a Schedule,
    zone: Tz,
    /// Why the daemon does not run it; `None` when it does.
    not_run: Option<String>,
}

/// Each subsidiary's submission schedule (and status sync, for a provider that has one) in its
/// time zone, then the credit refresh (in UTC), with the next fire after `now`. Which of them
/// run follows the daemon (src/daemon.rs `start_schedules`): an active provider's.
fn schedules(out: &mut String, settings: &Settings, now: DateTime<Utc>) {
    let mut rows = Vec::new();
    for subsidiary in &settings.subsidiaries {
        let Some(factoring) = &subsidiary.factoring else { continue };
        let not_run = (!factoring.active).then(|| format!("not run: {} is inactive", factoring.provider.id));
        let zone = subsidiary.timezone;
        if let Some(schedule) = &factoring.schedule {
            let name = format!("submission {} ({})", subsidiary.id, factoring.provider.id);
            rows.push(ScheduleRow { name, schedule, zone, not_run: not_run.clone() });
        }
        if let Some(schedule) = factoring.status_sync.as_ref().filter(|_| factoring.provider.status_api) {
            let name = format!("status sync {} ({})", subsidiary.id, factoring.provider.id);
            rows.push(ScheduleRow { name, schedule, zone, not_run });
        }
    }
    let checks = settings.subsidiaries.iter().any(|s| crate::credit::provider_with_checks(s).is_some());
    rows.push(ScheduleRow {
        name: "credit refresh".to_string(),
        schedule: &settings.credit.refresh_schedule,
        zone: chrono_tz::UTC,
        not_run: (!checks).then(|| "not run: no active provider offers credit checks".to_string()),
    });
    out.push_str(
        "<section id=\"schedules\">\n<h2>Schedules</h2>\n<table class=\"schedules\">\n\
         <tr><th>schedule</th><th>cron</th><th>time zone</th><th>next fire</th><th>in UTC</th><th>in</th></tr>\n",
    );
    for row in rows {
        let _ = write!(
            out,
            "<tr data-schedule=\"{name}\"><td>{name}</td><td><code>{}</code></td><td>{}</td>",
            escape(&row.schedule.expression),
            row.zone.name(),
            name = escape(&row.name),
        );
        let next = crate::schedule::next_fire(row.schedule, row.zone, now);
        match (row.not_run, next) {
            (Some(why), _) => {
                let _ = writeln!(out, "<td colspan=\"3\" class=\"reason\">{}</td></tr>", escape(&why));
            }
            (None, None) => out.push_str("<td colspan=\"3\" class=\"reason\">never fires again</td></tr>\n"),
            (None, Some(next)) => {
                let _ = writeln!(
                    out,
                    "<td class=\"next\">{}</td><td>{}</td><td>{}</td></tr>",
                    zoned_time_for_people(next, row.zone),
                    time_for_people(next),
                    span_for_people(next - now)
                );
            }
        }
    }
    out.push_str("</table>\n</section>\n");
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
            time_for_people(b.created_at),
            escape(&b.id),
            escape(&b.provider),
            escape(&b.status),
            b.invoice_count,
            Money::from_cents(b.total_cents).for_people(),
            b.accepted,
            b.rejected,
            b.transient,
            prose(note)
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
            time_for_people(f.processed_at),
            escape(&f.provider),
            escape(f.kind.as_deref().unwrap_or("report")),
            escape(&f.file_name),
            f.rows,
            f.applied,
            f.skipped,
            f.rejected,
            prose(f.refused.as_deref().unwrap_or(""))
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

/// A text written for the command line as HTML content: escaped, with Markdown's code spans
/// (`` `factord loads retry L` ``) as `<code>` and its strong spans (`**…**`) as `<strong>`. A
/// backtick or `**` left without its pair is dropped: the page shows no Markdown.
pub fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(open) = rest.find('`') {
        out.push_str(&strong(&rest[..open]));
        let after = &rest[open + 1..];
        let Some(close) = after.find('`') else {
            rest = after;
            break;
        };
        let _ = write!(out, "<code>{}</code>", escape(&after[..close]));
        rest = &after[close + 1..];
    }
    out.push_str(&strong(rest));
    out
}

/// Escaped text with `**…**` as `<strong>`; a `**` without its pair dropped.
fn strong(text: &str) -> String {
    let parts: Vec<&str> = text.split("**").collect();
    let mut out = String::with_capacity(text.len());
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 1 && i + 1 < parts.len() {
            let _ = write!(out, "<strong>{}</strong>", escape(part));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// Text for HTML content or a quoted attribute value./// Text for HTML content or a quoted attribute value.
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
td.reason{color:#a40}\
code{font-family:monospace;background:#f3f3f3;padding:0 .2em}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(escape(r#"<b>"x" & 'y'</b>"#), "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;");
    }

    #[test]
    fn backtick_spans_become_code_and_no_markdown_is_left() {
        assert_eq!(
            prose("held: verify; `factord loads release L-1 --reason ...` to let it move"),
            "held: verify; <code>factord loads release L-1 --reason ...</code> to let it move"
        );
        assert_eq!(prose("`a` and `b`"), "<code>a</code> and <code>b</code>");
        assert_eq!(prose("factor status `<Not & Funded>`"), "factor status <code>&lt;Not &amp; Funded&gt;</code>");
        assert_eq!(prose("**POD** missing"), "<strong>POD</strong> missing");
        assert_eq!(prose("a ** b"), "a  b", "a lone ** is dropped");
        assert_eq!(prose("a `b"), "a b", "a lone backtick is dropped");
        assert_eq!(prose("`**x**`"), "<code>**x**</code>", "a code span is shown as it is");
        assert_eq!(prose("<b>x</b> & 'y'"), "&lt;b&gt;x&lt;/b&gt; &amp; &#39;y&#39;");
        assert_eq!(prose("plain"), "plain");
        for text in ["``", "`a`b`", "x`y`z`", "**a**b**", "***"] {
            let html = prose(text);
            let shown = html.replace("<code>", "").replace("</code>", "");
            assert!(!shown.contains('`') && !shown.contains("**"), "{text:?} → {html:?}");
        }
    }

    #[test]
    fn a_cut_list_says_so() {
        assert_eq!(shown(3, 3), "3");
        assert_eq!(shown(50, 73), "50 of 73 shown");
    }
}
