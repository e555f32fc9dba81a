//! The money commands (docs/money.md, docs/cli.md): `reconcile`, `aging` and `export journal`.
//! Each reads the ledger ([`crate::store::Store::ledger`]), computes with
//! [`crate::domain::ledger`] and prints text for people (`$1,875.50`), JSON or CSV (plain
//! decimals, `1875.50`).

use std::fmt::Write as _;

use chrono::{NaiveDate, Utc};

use super::{CommandError, emit, open_store, print_json};
use crate::config::Settings;
use crate::domain::Money;
use crate::domain::ledger::{self, Aging, BUCKETS, JournalLine, Reconciliation};

/// A `--from`/`--to`/`--as-of` date: `YYYY-MM-DD`, else a usage error (exit 2).
pub fn parse_date(option: &str, text: &str) -> Result<NaiveDate, CommandError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| CommandError::Usage(format!("{option} `{text}` is not a date (expected YYYY-MM-DD)")))
}

fn optional_date(option: &str, text: Option<&str>) -> Result<Option<NaiveDate>, CommandError> {
    text.map(|t| parse_date(option, t)).transpose()
}

fn check_subsidiary(settings: &Settings, subsidiary: Option<&str>) -> Result<(), CommandError> {
    match subsidiary {
        Some(id) if settings.subsidiary(id).is_none() => {
            Err(CommandError::Usage(format!("subsidiary `{id}` is not configured")))
        }
        _ => Ok(()),
    }
}

/// How `reconcile` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Csv,
}

/// `factord reconcile [--subsidiary ID] [--from D] [--to D] [--json|--csv]`.
pub async fn reconcile(
    settings: &Settings,
    subsidiary: Option<&str>,
    (from, to): (Option<&str>, Option<&str>),
    format: Format,
) -> Result<(), CommandError> {
    check_subsidiary(settings, subsidiary)?;
    let (from, to) = (optional_date("--from", from)?, optional_date("--to", to)?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(CommandError::Usage(format!("--from {f} is after --to {t}")));
    }
    let store = open_store(settings).await?;
    let book = store.ledger(subsidiary).await?;
    let report = ledger::reconcile(&book.invoices, &book.events, from, to);
    match format {
        Format::Json => print_json(&report),
        Format::Csv => {
            emit(format_args!("{}", reconcile_csv(&report)));
            Ok(())
        }
        Format::Text => {
            emit(format_args!("{}", reconcile_text(&report)));
            Ok(())
        }
    }
}

const RECONCILE_COLUMNS: [&str; 9] =
    ["amount", "advance", "fee", "reserve_held", "reserve_released", "paid", "chargeback", "open_balance", "status"];

fn figures_of(f: &ledger::InvoiceFigures) -> [Money; 8] {
    [f.amount, f.advance, f.fee, f.reserve_held, f.reserve_released, f.paid, f.chargeback, f.open_balance]
}

fn totals_of(t: &ledger::FigureTotals) -> [Money; 8] {
    [t.amount, t.advance, t.fee, t.reserve_held, t.reserve_released, t.paid, t.chargeback, t.open_balance]
}

/// CSV: one row per invoice, then a `TOTAL` row; plain decimals.
pub fn reconcile_csv(report: &Reconciliation) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["invoice_number", "load_number", "subsidiary", "customer_id", "invoice_date"];
    header.extend(RECONCILE_COLUMNS);
    header.push("unreported");
    let _ = writer.write_record(&header);
    for f in &report.invoices {
        let mut record = vec![
            f.invoice_number.clone(),
            f.load_number.clone(),
            f.subsidiary.clone(),
            f.customer_id.clone(),
            f.invoice_date.map(|d| d.to_string()).unwrap_or_default(),
        ];
        record.extend(figures_of(f).iter().map(ToString::to_string));
        record.push(f.status.to_string());
        record.push(f.unreported.join("; "));
        let _ = writer.write_record(&record);
    }
    let mut total = vec!["TOTAL".to_string(), String::new(), String::new(), String::new(), String::new()];
    total.extend(totals_of(&report.totals).iter().map(ToString::to_string));
    total.extend([String::new(), String::new()]);
    let _ = writer.write_record(&total);
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// A table for people: dollars with separators, totals below.
pub fn reconcile_text(report: &Reconciliation) -> String {
    let mut out = String::new();
    let heads = [
        "invoice",
        "load",
        "amount",
        "advance",
        "fee",
        "reserve held",
        "released",
        "paid",
        "chargeback",
        "open",
        "status",
    ];
    let mut rows: Vec<Vec<String>> = vec![heads.iter().map(|h| (*h).to_string()).collect()];
    for f in &report.invoices {
        let mut row = vec![f.invoice_number.clone(), f.load_number.clone()];
        row.extend(figures_of(f).iter().map(|m| m.for_people().to_string()));
        row.push(f.status.to_string());
        rows.push(row);
    }
    let mut total = vec![format!("TOTAL ({} invoices)", report.totals.invoices), String::new()];
    total.extend(totals_of(&report.totals).iter().map(|m| m.for_people().to_string()));
    rows.push(total);
    table(&mut out, &rows);
    // What the factor stated without figures: the columns hold only what was reported.
    for f in report.invoices.iter().filter(|f| !f.unreported.is_empty()) {
        let _ = writeln!(out, "{}: {}", f.invoice_number, f.unreported.join("; "));
    }
    out
}

/// Columns padded to their widest cell; text left, amounts right.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|t| t.chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let width = widths[c];
            if c < 2 || c == 10 {
                let _ = write!(line, "{cell:<width$}  ");
            } else {
                let _ = write!(line, "{cell:>width$}  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// `factord aging [--subsidiary ID] [--by customer] [--as-of D] [--json]`.
pub async fn aging(
    settings: &Settings,
    subsidiary: Option<&str>,
    by: Option<&str>,
    as_of: Option<&str>,
    json: bool,
) -> Result<(), CommandError> {
    check_subsidiary(settings, subsidiary)?;
    let by_customer = match by {
        None => false,
        Some("customer") => true,
        Some(other) => return Err(CommandError::Usage(format!("--by `{other}`: only `customer` is known"))),
    };
    let as_of = optional_date("--as-of", as_of)?.unwrap_or_else(|| Utc::now().date_naive());
    let store = open_store(settings).await?;
    let book = store.ledger(subsidiary).await?;
    let mut report = ledger::aging(&book.invoices, &book.events, as_of);
    if !by_customer {
        report.customers.clear();
    }
    if json {
        print_json(&report)
    } else {
        emit(format_args!("{}", aging_text(&report, by_customer)));
        Ok(())
    }
}

/// Buckets for people: each open invoice (or each customer), then the totals.
pub fn aging_text(report: &Aging, by_customer: bool) -> String {
    let mut out = String::new();
    if let Some(as_of) = report.as_of {
        let _ = writeln!(out, "open invoices as of {as_of}, by days past the invoice date");
    }
    let mut heads = vec![if by_customer { "customer" } else { "invoice" }.to_string(), String::new()];
    heads.extend(BUCKETS.iter().map(|b| (*b).to_string()));
    heads.push("total".into());
    let mut rows = vec![heads];
    if by_customer {
        for c in &report.customers {
            let mut row = vec![c.customer_id.clone(), format!("{} ({})", c.customer_name, c.invoices)];
            row.extend(c.buckets.values().iter().map(|m| m.for_people().to_string()));
            rows.push(row);
        }
    } else {
        for line in &report.invoices {
            let mut row = vec![line.invoice_number.clone(), format!("{} {} days", line.load_number, line.days)];
            for bucket in BUCKETS {
                row.push(if bucket == line.bucket {
                    line.open_balance.for_people().to_string()
                } else {
                    String::new()
                });
            }
            row.push(line.open_balance.for_people().to_string());
            rows.push(row);
        }
    }
    let mut total = vec!["TOTAL".to_string(), String::new()];
    total.extend(report.totals.values().iter().map(|m| m.for_people().to_string()));
    rows.push(total);
    table(&mut out, &rows);
    out
}

/// `factord export journal --from D --to D [--format csv] [--subsidiary ID]`.
pub async fn journal(
    settings: &Settings,
    subsidiary: Option<&str>,
    (from, to): (&str, &str),
    format: &str,
) -> Result<(), CommandError> {
    check_subsidiary(settings, subsidiary)?;
    if format != "csv" {
        return Err(CommandError::Usage(format!("--format `{format}`: only `csv` is known")));
    }
    let (from, to) = (parse_date("--from", from)?, parse_date("--to", to)?);
    if from > to {
        return Err(CommandError::Usage(format!("--from {from} is after --to {to}")));
    }
    let store = open_store(settings).await?;
    let book = store.ledger(subsidiary).await?;
    let lines = ledger::journal(&book, from, to);
    emit(format_args!("{}", journal_csv(&lines)));
    Ok(())
}

/// The journal as CSV: `date,account,debit,credit,invoice,load,source`, plain decimals.
pub fn journal_csv(lines: &[JournalLine]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(["date", "account", "debit", "credit", "invoice", "load", "source"]);
    for l in lines {
        let _ = writer.write_record([
            l.date.to_string(),
            l.account.to_string(),
            l.debit.to_string(),
            l.credit.to_string(),
            l.invoice.clone(),
            l.load.clone(),
            l.source.clone(),
        ]);
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}
