//! From rows of cells to report rows with typed values (docs/design.md §8).
//!
//! A row whose amount or date cannot be read makes the whole file malformed: a file that
//! garbles one amount may garble others, so nothing of it is applied. Blank rows are
//! dropped; a totals line (no invoice and no load number, and either a cell saying "total"
//! or the last line of the file) is noted, not applied.

use chrono::{Datelike, NaiveDate, NaiveDateTime};

use super::ReportKind;
use super::columns::{Columns, Field};
use super::read::{Cell, SheetRow};
use crate::domain::Money;

/// One data row of a report, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRow {
    /// Row number in the file (line of a CSV, row of a sheet).
    pub row: usize,
    pub invoice_number: Option<String>,
    pub load_number: Option<String>,
    pub amount: Option<Money>,
    pub advance: Option<Money>,
    pub fee: Option<Money>,
    pub reserve: Option<Money>,
    pub purchase_date: Option<NaiveDate>,
    pub schedule_number: Option<String>,
    pub factor_status: Option<String>,
    pub paid_amount: Option<Money>,
    pub payment_date: Option<NaiveDate>,
    pub payment_reference: Option<String>,
    /// Reserve paid out to the carrier (docs/money.md).
    pub reserve_release: Option<Money>,
    /// The factor sold the invoice back.
    pub chargeback: Option<Money>,
}

/// The rows of a report, and the lines that were not rows.
#[derive(Clone, Debug, Default)]
pub struct ParsedReport {
    pub rows: Vec<ReportRow>,
    /// Totals lines: (row number, what it said), listed in the result file.
    pub totals: Vec<(usize, String)>,
}

/// Why a file is malformed, naming the row and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}, column `{column}`: {reason}")]
pub struct RowError {
    pub row: usize,
    pub column: String,
    pub reason: String,
}

/// Parses the rows below the header. `header` is the header's index in `rows`.
pub fn parse_rows(
    rows: Vec<SheetRow>,
    header: usize,
    columns: &Columns,
    header_names: &[String],
) -> Result<ParsedReport, RowError> {
    let mut parsed = ParsedReport::default();
    parsed.rows.reserve(rows.len().saturating_sub(header + 1));
    let mut parser = RowParser::new(columns.clone(), header_names.to_vec());
    for row in rows.into_iter().skip(header + 1) {
        parser.push(row, &mut parsed)?;
    }
    parser.finish(&mut parsed);
    Ok(parsed)
}

/// Parses the rows below the header one at a time, as they are read, into a [`ParsedReport`]
/// (a chunk of the file). A row with no invoice or load number that does not say "total" is
/// held back until the next row with content: only then is it known whether it was the last
/// line of the file (a totals line) or a row.
pub struct RowParser {
    columns: Columns,
    header_names: Vec<String>,
    /// The text fields' columns, and whether another field shares the column (then the text is
    /// copied, not moved out of the cell).
    text_fields: [(Option<usize>, bool); 5],
    held: Option<SheetRow>,
}

impl RowParser {
    pub fn new(columns: Columns, header_names: Vec<String>) -> RowParser {
        let shared = |field: Field| {
            columns.get(field).is_some_and(|c| columns.fields.iter().filter(|(_, other)| **other == c).count() > 1)
        };
        let text_fields = [
            Field::InvoiceNumber,
            Field::LoadNumber,
            Field::ScheduleNumber,
            Field::FactorStatus,
            Field::PaymentReference,
        ]
        .map(|field| (columns.get(field), shared(field)));
        RowParser { columns, header_names, text_fields, held: None }
    }

    /// Takes the next row of the file; what it (and a row held before it) gives goes to `out`.
    pub fn push(&mut self, row: SheetRow, out: &mut ParsedReport) -> Result<(), RowError> {
        if row.is_blank() {
            return Ok(());
        }
        if let Some(held) = self.held.take() {
            out.rows.push(self.parse(held)?);
        }
        // A totals line has no invoice or load number (or the word "Total" in their place),
        // and says "total" or is the last line. A broker named "Total Quality Logistics" in
        // another column does not make a row with an invoice number a totals line.
        let [invoice_column, load_column, ..] = self.text_fields;
        let no_key =
            [invoice_column.0, load_column.0].iter().all(|c| c.is_none_or(|c| row.cell(c).is_blank_or_total()));
        if !no_key {
            out.rows.push(self.parse(row)?);
            return Ok(());
        }
        let first = row.cells.iter().find(|c| !c.is_empty()).map(Cell::text).unwrap_or_default();
        if is_total_word(&first) {
            out.totals.push(totals_line(&row));
        } else {
            self.held = Some(row);
        }
        Ok(())
    }

    /// The end of the file: a row still held was its last line, a totals line.
    pub fn finish(&mut self, out: &mut ParsedReport) {
        if let Some(held) = self.held.take() {
            out.totals.push(totals_line(&held));
        }
    }

    fn parse(&self, mut row: SheetRow) -> Result<ReportRow, RowError> {
        let columns = &self.columns;
        let name =
            |column: usize| self.header_names.get(column).cloned().unwrap_or_else(|| format!("column {}", column + 1));
        let money = |row: &SheetRow, field: Field| -> Result<Option<Money>, RowError> {
            let Some(column) = columns.get(field) else { return Ok(None) };
            cell_money(row.cell(column)).map_err(|reason| RowError { row: row.number, column: name(column), reason })
        };
        let date = |row: &SheetRow, field: Field| -> Result<Option<NaiveDate>, RowError> {
            let Some(column) = columns.get(field) else { return Ok(None) };
            cell_date(row.cell(column)).map_err(|reason| RowError { row: row.number, column: name(column), reason })
        };
        let (amount, advance, fee, reserve) = (
            money(&row, Field::Amount)?,
            money(&row, Field::Advance)?,
            money(&row, Field::Fee)?,
            money(&row, Field::Reserve)?,
        );
        let (purchase_date, paid_amount, payment_date) =
            (date(&row, Field::PurchaseDate)?, money(&row, Field::PaidAmount)?, date(&row, Field::PaymentDate)?);
        let (reserve_release, chargeback) = (money(&row, Field::ReserveRelease)?, money(&row, Field::Chargeback)?);
        // A payment row may carry only a reserve release, a chargeback or a fee.
        let carries_other = [reserve_release, chargeback, fee].iter().any(Option::is_some);
        if columns.kind == ReportKind::Payment
            && paid_amount.is_none()
            && !carries_other
            && let Some(column) = columns.get(Field::PaidAmount)
        {
            return Err(RowError { row: row.number, column: name(column), reason: "paid amount is empty".into() });
        }
        let [invoice_number, load_number, schedule_number, factor_status, payment_reference] =
            self.text_fields.map(|(column, shared)| column.and_then(|c| row.take_text(c, shared)));
        Ok(ReportRow {
            row: row.number,
            invoice_number,
            load_number,
            amount,
            advance,
            fee,
            reserve,
            purchase_date,
            schedule_number,
            factor_status,
            paid_amount,
            payment_date,
            payment_reference,
            reserve_release,
            chargeback,
        })
    }
}

/// A totals line as the result file notes it: its row and what it said.
fn totals_line(row: &SheetRow) -> (usize, String) {
    let said = row.cells.iter().map(Cell::text).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(" ");
    (row.number, said)
}

/// "Total", "Totals", "Grand Total", "Report total:" and the like.
pub(super) fn is_total_word(text: &str) -> bool {
    let t = text.trim().trim_end_matches(':').to_ascii_lowercase();
    t.starts_with("total") || t.ends_with("total") || t.ends_with("totals")
}

/// An amount cell: text in the forms of docs/design.md §2, or a number cell rounded to the cent
/// (Excel keeps 15 significant digits; anything finer than a cent is refused).
pub fn cell_money(cell: &Cell) -> Result<Option<Money>, String> {
    match cell {
        Cell::Empty => Ok(None),
        Cell::Text(text) if text.trim().is_empty() => Ok(None),
        Cell::Text(text) => Money::parse(text).map(Some).map_err(|e| e.to_string()),
        Cell::Number(n) => number_to_money(*n).map(Some),
        Cell::Date(d) => Err(format!("a date ({}) where an amount belongs", d.format("%Y-%m-%d"))),
    }
}

#[expect(clippy::cast_possible_truncation, reason = "checked above: |n| < 1e13, so the cents fit in an i64")]
fn number_to_money(n: f64) -> Result<Money, String> {
    if !n.is_finite() || n.abs() >= 1e13 {
        return Err(format!("`{n}` is not an amount"));
    }
    let cents = (n * 100.0).round();
    if ((n * 100.0) - cents).abs() > 1e-6 * cents.abs().max(1.0) {
        return Err(format!("`{n}` has fractions of a cent"));
    }
    Ok(Money::from_cents(cents as i64))
}

/// Dates before this are not factoring dates (and keep clear of Excel's fake 1900-02-29).
const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(1990, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
const LATEST: NaiveDate = match NaiveDate::from_ymd_opt(2100, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

/// A date cell: an Excel date, a bare serial number (1900 system), or text in the common US
/// and ISO forms. Anything else, or a date outside 1990–2099, is refused.
pub fn cell_date(cell: &Cell) -> Result<Option<NaiveDate>, String> {
    let date = match cell {
        Cell::Empty => return Ok(None),
        Cell::Text(text) if text.trim().is_empty() => return Ok(None),
        Cell::Date(d) => d.date(),
        Cell::Number(n) => serial_date(*n)?,
        Cell::Text(text) => {
            let text = text.trim();
            match text.parse::<f64>() {
                Ok(n) if !text.contains(['-', '/']) => serial_date(n)?,
                _ => text_date(text).ok_or_else(|| {
                    format!(
                        "`{}` is not a date (expected forms like 2026-11-30, 11/30/2026 or 11/30/26)",
                        crate::domain::bounded(text)
                    )
                })?,
            }
        }
    };
    if !(EARLIEST..LATEST).contains(&date) {
        return Err(format!("{} is not a plausible date", date.format("%Y-%m-%d")));
    }
    Ok(Some(date))
}

/// The two forms nearly every report uses, `MM/DD/YYYY` and `YYYY-MM-DD`, read without
/// chrono's format parser (a report has a date on every row).
fn common_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    match (b.len(), b.get(2), b.get(4)) {
        (10, Some(b'/'), _) if b[5] == b'/' => NaiveDate::from_ymd_opt(num(6..10)? as i32, num(0..2)?, num(3..5)?),
        (10, _, Some(b'-')) if b[7] == b'-' => NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?),
        _ => None,
    }
}

/// An Excel serial in the 1900 system (serials past 60 are past the fake leap day).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "checked above: a finite serial from 61 to 2,958,465"
)]
fn serial_date(n: f64) -> Result<NaiveDate, String> {
    if !n.is_finite() || !(61.0..=2_958_465.0).contains(&n) {
        return Err(format!("`{n}` is not a date serial"));
    }
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30).ok_or("no epoch")?;
    epoch.checked_add_days(chrono::Days::new(n.floor() as u64)).ok_or_else(|| format!("`{n}` is not a date serial"))
}

fn text_date(text: &str) -> Option<NaiveDate> {
    if let Some(date) = common_date(text) {
        return Some(date);
    }
    const DATES: &[&str] = &["%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%Y/%m/%d", "%m/%d/%y", "%d-%b-%Y", "%b %d, %Y"];
    const DATE_TIMES: &[&str] = &["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M"];
    for format in DATES {
        match NaiveDate::parse_from_str(text, format) {
            // `%Y` also takes `26`: a two-digit year is left for `%y`.
            Ok(date) if format.contains("%Y") && date.year() < 100 => continue,
            Ok(date) => return Some(date),
            Err(_) => {}
        }
    }
    let without_fraction = text.split('.').next().unwrap_or(text).trim_end_matches('Z');
    for format in DATE_TIMES {
        if let Ok(date_time) = NaiveDateTime::parse_from_str(without_fraction, format) {
            return Some(date_time.date());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn amounts_from_text_and_numbers() {
        assert_eq!(cell_money(&Cell::Text("$1,234.50".into())), Ok(Some(Money::from_cents(123_450))));
        assert_eq!(cell_money(&Cell::Text("(12.00)".into())), Ok(Some(Money::from_cents(-1200))));
        assert_eq!(cell_money(&Cell::Number(1234.5)), Ok(Some(Money::from_cents(123_450))));
        assert_eq!(cell_money(&Cell::Number(0.1 + 0.2)), Ok(Some(Money::from_cents(30))));
        assert!(cell_money(&Cell::Number(12.345)).is_err());
        assert!(cell_money(&Cell::Text("12,34".into())).is_err());
        assert_eq!(cell_money(&Cell::Empty), Ok(None));
    }

    #[test]
    fn dates_from_serials_and_text() {
        assert_eq!(cell_date(&Cell::Number(46_000.0)), Ok(Some(date(2025, 12, 9))));
        assert_eq!(cell_date(&Cell::Text("46000".into())), Ok(Some(date(2025, 12, 9))));
        assert_eq!(cell_date(&Cell::Text("11/30/2026".into())), Ok(Some(date(2026, 11, 30))));
        assert_eq!(cell_date(&Cell::Text("11/30/26".into())), Ok(Some(date(2026, 11, 30))));
        assert_eq!(cell_date(&Cell::Text("2026-11-30T10:00:00".into())), Ok(Some(date(2026, 11, 30))));
        assert!(cell_date(&Cell::Number(60.0)).is_err(), "the fake 1900-02-29");
        assert!(cell_date(&Cell::Text("31/11/2026".into())).is_err());
        assert!(cell_date(&Cell::Text("1/1/1901".into())).is_err());
    }
}
