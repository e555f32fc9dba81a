//! Load exports from the TMS (docs/design.md §7): CSV with a header row or JSON (an array of objects,
//! or one object per line), parsed into validated [`ImportRow`]s.
//!
//! A file as a whole is refused only when it cannot be read at all (not UTF-8, not CSV/JSON,
//! a required column missing, over the size or row cap). Otherwise every row is judged on its
//! own: good rows go on to the store, bad rows are reported by row number and reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::config::MAX_TERMS_DAYS;
use crate::config::Settings;
use crate::domain::{Customer, LoadExtras, LoadFields, LoadInput, LoadLine, LoadStatus, Money, lines_disagree};
use crate::store::ImportRow;

/// Longest text accepted in one field; anything longer is a broken export, not a load.
const MAX_FIELD_CHARS: usize = 500;

/// The columns of docs/design.md §7.
const COLUMNS: &[&str] = &[
    "load_number",
    "subsidiary",
    "customer_id",
    "customer_name",
    "customer_mc",
    "customer_dot",
    "amount",
    "status",
    "delivered_at",
    "pod",
    "rate_confirmation",
    "po_number",
    "factor_reference",
    "truck",
    "pickup_city",
    "pickup_state",
    "delivery_city",
    "delivery_state",
    "bill_to_name",
    "bill_to_address",
    "pickup_date",
    "shipper_name",
    "consignee_name",
    "bol_number",
    "terms_days",
    "lines",
    "linehaul",
    "fuel_surcharge",
    "detention",
    "lumper",
    "layover",
    "tonu",
    "other",
    "bol",
    "lumper_receipt",
    "other_documents",
];
/// The charge columns of a CSV file (JSON files may use them too): each a line with this
/// description when non-empty and non-zero, in this order.
const CHARGE_COLUMNS: &[(&str, &str)] = &[
    ("linehaul", "Linehaul"),
    ("fuel_surcharge", "Fuel surcharge"),
    ("detention", "Detention"),
    ("lumper", "Lumper"),
    ("layover", "Layover"),
    ("tonu", "Truck ordered not used (TONU)"),
    ("other", "Other charges"),
];
/// Most line items one load may have.
const MAX_LINES: usize = 500;
const REQUIRED: &[&str] = &["load_number", "subsidiary", "customer_id", "customer_name", "amount"];
/// The optional columns that, when absent from a file (or a JSON object), leave the stored
/// value of an existing load as it is. The customer's MC and DOT are kept by the customer
/// record whenever a row leaves them empty.
const KEPT_WHEN_ABSENT: &[&str] = &[
    "status",
    "delivered_at",
    "pod",
    "rate_confirmation",
    "po_number",
    "factor_reference",
    "truck",
    "pickup_city",
    "pickup_state",
    "delivery_city",
    "delivery_state",
    "bill_to_name",
    "bill_to_address",
    "pickup_date",
    "shipper_name",
    "consignee_name",
    "bol_number",
    "terms_days",
    "bol",
    "lumper_receipt",
    "other_documents",
];

/// Why a whole file cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("file is {size} bytes, over the limit of {limit} (intake.max_file_bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error("file has more than {limit} rows (intake.max_rows)")]
    TooManyRows { limit: u64 },
    #[error("file is not UTF-8 text (at byte {0})")]
    NotUtf8(usize),
    #[error("file is empty")]
    Empty,
    #[error("missing required column(s): {0}")]
    MissingColumns(String),
    #[error("duplicate column `{0}`")]
    DuplicateColumn(String),
    #[error("not valid CSV: {0}")]
    Csv(String),
    #[error("not valid JSON: {0}")]
    Json(String),
}

/// One row that could not be read into a load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// Line number in a CSV file (header = 1), record number in a JSON array, line number in
    /// a file of one object per line.
    pub row: usize,
    pub load_number: Option<String>,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ParsedLoads {
    pub rows: Vec<ImportRow>,
    pub errors: Vec<RowError>,
    /// Columns in the file that factord does not use (reported, not an error).
    pub ignored_columns: Vec<String>,
}

/// Parses a load file. `name` decides the format by extension (`.csv`, `.json`, `.jsonl`,
/// `.ndjson`); anything else is sniffed (`[` or `{` first means JSON).
pub fn parse_load_file(name: &Path, bytes: &[u8], settings: &Settings) -> Result<ParsedLoads, FileError> {
    let limit = settings.intake.max_file_bytes;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge { size: bytes.len() as u64, limit });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| FileError::NotUtf8(e.valid_up_to()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(FileError::Empty);
    }
    let extension = name.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let json = match extension.as_deref() {
        Some("json" | "jsonl" | "ndjson") => true,
        Some("csv") => false,
        _ => text.trim_start().starts_with(['[', '{']),
    };
    let records = if json { json_records(text)? } else { csv_records(text)? };
    if records.records.len() as u64 > settings.intake.max_rows {
        return Err(FileError::TooManyRows { limit: settings.intake.max_rows });
    }
    let mut parsed = ParsedLoads { ignored_columns: records.ignored, ..ParsedLoads::default() };
    for (row, record) in records.records {
        match validate_row(&record, settings) {
            Ok(input) => parsed.rows.push(ImportRow { row, input }),
            Err(reason) => parsed.errors.push(RowError {
                row,
                load_number: record.get("load_number").filter(|v| !v.is_empty()).map(|n| crate::domain::bounded(n)),
                reason,
            }),
        }
    }
    Ok(parsed)
}

/// Records as column → text, with their row numbers.
struct Records {
    records: Vec<(usize, BTreeMap<String, String>)>,
    ignored: Vec<String>,
}

fn normalise_column(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

fn check_columns<'a>(columns: impl Iterator<Item = &'a str>) -> Result<Vec<String>, FileError> {
    let mut seen = Vec::new();
    let mut ignored = Vec::new();
    for column in columns {
        let normal = normalise_column(column);
        if seen.contains(&normal) {
            return Err(FileError::DuplicateColumn(column.trim().to_string()));
        }
        if !COLUMNS.contains(&normal.as_str()) && !normal.is_empty() {
            ignored.push(column.trim().to_string());
        }
        seen.push(normal);
    }
    // With line items (a `lines` key or a charge column) the amount may be left out: it is their sum.
    let has_lines = seen.iter().any(|s| s == "lines" || CHARGE_COLUMNS.iter().any(|(c, _)| s == c));
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|c| !seen.iter().any(|s| s == c))
        .filter(|c| !(*c == "amount" && has_lines))
        .collect();
    if !missing.is_empty() {
        return Err(FileError::MissingColumns(missing.join(", ")));
    }
    Ok(ignored)
}

fn csv_records(text: &str) -> Result<Records, FileError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| FileError::Csv(e.to_string()))?.clone();
    if let Some(separator) = [';', '\t', '|'].into_iter().find(|c| headers.len() == 1 && headers[0].contains(*c)) {
        return Err(FileError::Csv(format!(
            "the header is a single column `{}`: the file seems separated by `{}`, but load files use commas",
            headers[0].escape_default(),
            separator.escape_default()
        )));
    }
    let ignored = check_columns(headers.iter())?;
    let names: Vec<String> = headers.iter().map(normalise_column).collect();
    let mut records = Vec::new();
    for result in reader.records() {
        let record = result.map_err(|e| FileError::Csv(e.to_string()))?;
        // Blank lines are skipped by the reader; a row of empty cells is skipped here too.
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        let line = record.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
        let map = names.iter().cloned().zip(record.iter().map(|v| v.trim().to_string())).collect();
        records.push((line, map));
    }
    Ok(Records { records, ignored })
}

fn json_records(text: &str) -> Result<Records, FileError> {
    let trimmed = text.trim_start();
    let objects: Vec<(usize, serde_json::Value)> = if trimmed.starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| FileError::Json(e.to_string()))?;
        values.into_iter().enumerate().map(|(i, v)| (i + 1, v)).collect()
    } else {
        let mut out = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str(line).map_err(|e| FileError::Json(format!("line {}: {e}", index + 1)))?;
            out.push((index + 1, value));
        }
        out
    };
    let mut columns: Vec<String> = Vec::new();
    let mut records = Vec::new();
    for (row, value) in objects {
        let serde_json::Value::Object(object) = value else {
            return Err(FileError::Json(format!("record {row} is not an object")));
        };
        let mut map = BTreeMap::new();
        for (key, value) in object {
            let text = match value {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.trim().to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => other.to_string(),
            };
            if !columns.contains(&key) {
                columns.push(key.clone());
            }
            map.insert(normalise_column(&key), text);
        }
        records.push((row, map));
    }
    // JSON records may omit optional keys (an omitted key keeps the stored value, `null`
    // clears it); only the required ones must appear somewhere.
    let ignored = if records.is_empty() { Vec::new() } else { check_columns(columns.iter().map(String::as_str))? };
    Ok(Records { records, ignored })
}

/// Turns one record into a load, or says what is wrong with it (every problem, not the first).
fn validate_row(record: &BTreeMap<String, String>, settings: &Settings) -> Result<LoadInput, String> {
    let mut problems = check_texts(record);
    let get = |column: &str| record.get(column).map(String::as_str).unwrap_or("");
    let optional = |column: &str| Some(get(column).to_string()).filter(|v| !v.is_empty());
    let lines = line_items(record).unwrap_or_else(|problem| {
        problems.push(problem);
        Vec::new()
    });
    for column in REQUIRED {
        // With lines, the amount may be left out: it is their sum.
        if get(column).is_empty() && (*column != "amount" || lines.is_empty()) {
            problems.push(format!("{column}: required"));
        }
    }
    let subsidiary = get("subsidiary");
    let configured = settings.subsidiary(subsidiary);
    if !subsidiary.is_empty() && configured.is_none() {
        problems.push(format!("subsidiary: `{}` is not configured", crate::domain::bounded(subsidiary)));
    }
    let extras = row_extras(record, lines);
    let amount = row_amount(get("amount"), &extras).unwrap_or_else(|problem| {
        problems.extend(problem);
        Money::ZERO
    });
    let status = import_status(get("status")).unwrap_or_else(|problem| {
        problems.push(problem);
        LoadStatus::Released
    });
    let [delivered_at, pickup_date] = ["delivered_at", "pickup_date"].map(|column| {
        date_column(column, get(column)).unwrap_or_else(|problem| {
            problems.push(problem);
            None
        })
    });
    let terms_days = terms_days(get("terms_days"), configured.map(|s| s.terms_days)).unwrap_or_else(|problem| {
        problems.push(problem);
        None
    });
    problems.extend(document_problems(get("pod"), get("rate_confirmation"), &extras));
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(LoadInput {
        load_number: get("load_number").to_string(),
        customer: Customer {
            id: get("customer_id").to_string(),
            name: get("customer_name").to_string(),
            mc: optional("customer_mc"),
            dot: optional("customer_dot"),
        },
        status,
        fields: LoadFields {
            subsidiary: subsidiary.to_string(),
            customer_id: get("customer_id").to_string(),
            amount,
            delivered_at,
            pod: optional("pod"),
            rate_confirmation: optional("rate_confirmation"),
            po_number: optional("po_number"),
            factor_reference: optional("factor_reference"),
            truck: optional("truck"),
            pickup_city: optional("pickup_city"),
            pickup_state: optional("pickup_state"),
            delivery_city: optional("delivery_city"),
            delivery_state: optional("delivery_state"),
            bill_to_name: optional("bill_to_name"),
            bill_to_address: optional("bill_to_address").map(|a| a.replace("\r\n", "\n")),
            pickup_date,
            shipper_name: optional("shipper_name"),
            consignee_name: optional("consignee_name"),
            bol_number: optional("bol_number"),
            terms_days,
        },
        extras,
        absent: absent_columns(record),
    })
}

/// The row's lines and extra documents (`other_documents` is a list separated by `;`).
fn row_extras(record: &BTreeMap<String, String>, lines: Vec<LoadLine>) -> LoadExtras {
    let get = |column: &str| record.get(column).filter(|v| !v.is_empty()).cloned();
    LoadExtras {
        lines,
        bol: get("bol"),
        lumper_receipt: get("lumper_receipt"),
        other_documents: get("other_documents")
            .unwrap_or_default()
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
    }
}

/// Every document path of the row that leaves the documents folder, by column.
fn document_problems(pod: &str, rate_confirmation: &str, extras: &LoadExtras) -> Vec<String> {
    let mut named: Vec<(&str, &str)> =
        [("pod", pod), ("rate_confirmation", rate_confirmation)].into_iter().filter(|(_, p)| !p.is_empty()).collect();
    named.extend(extras.bol.iter().map(|p| ("bol", p.as_str())));
    named.extend(extras.lumper_receipt.iter().map(|p| ("lumper_receipt", p.as_str())));
    named.extend(extras.other_documents.iter().map(|p| ("other_documents", p.as_str())));
    named
        .into_iter()
        .filter_map(|(column, path)| check_document_path(path).err().map(|reason| format!("{column}: {reason}")))
        .collect()
}

/// Columns the record does not carry. CSV records hold every column of the header; JSON
/// records only the keys they name (`null` is a key, and clears). The lines are carried by a
/// `lines` key or any charge column.
fn absent_columns(record: &BTreeMap<String, String>) -> BTreeSet<&'static str> {
    let mut absent: BTreeSet<&'static str> =
        KEPT_WHEN_ABSENT.iter().copied().filter(|column| !record.contains_key(*column)).collect();
    let lines_carried = record.contains_key("lines") || CHARGE_COLUMNS.iter().any(|(c, _)| record.contains_key(*c));
    if !lines_carried {
        absent.insert("lines");
    }
    absent
}

/// Length and character checks of the columns factord uses (others are reported as ignored,
/// never read). The bill-to address may have line breaks; the `lines` key is checked line by
/// line by [`line_items`].
fn check_texts(record: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    for (column, value) in record.iter().filter(|(column, _)| COLUMNS.contains(&column.as_str()) && *column != "lines")
    {
        let breaks_allowed = column == "bill_to_address";
        if value.chars().count() > MAX_FIELD_CHARS {
            problems.push(format!("{column}: longer than {MAX_FIELD_CHARS} characters"));
        } else if value.chars().any(|c| c.is_control() && !(breaks_allowed && matches!(c, '\n' | '\r'))) {
            problems.push(format!("{column}: contains control characters (a line break or tab inside the value)"));
        }
    }
    problems
}

/// The line items: the JSON `lines` array (`[{"description": …, "amount": …}]`) or the charge
/// columns (a line for each non-empty, non-zero one). Giving both is refused.
fn line_items(record: &BTreeMap<String, String>) -> Result<Vec<LoadLine>, String> {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for (column, description) in CHARGE_COLUMNS {
        let text = record.get(*column).map(String::as_str).unwrap_or("");
        if text.is_empty() {
            continue;
        }
        match Money::parse(text) {
            Ok(amount) if amount == Money::ZERO => {}
            Ok(amount) => lines.push(LoadLine { description: (*description).to_string(), amount }),
            Err(error) => problems.push(format!("{column}: {error}")),
        }
    }
    let json = record.get("lines").map(String::as_str).unwrap_or("");
    if !json.is_empty() {
        if !lines.is_empty() {
            problems.push("lines: given both as `lines` and as charge columns (linehaul, …); give one".to_string());
        }
        match json_lines(json) {
            Ok(json_lines) => lines = json_lines,
            Err(problem) => problems.push(format!("lines: {problem}")),
        }
    }
    if lines.len() > MAX_LINES {
        problems.push(format!("lines: more than {MAX_LINES}"));
    }
    if problems.is_empty() { Ok(lines) } else { Err(problems.join("; ")) }
}

/// The JSON `lines` array; each amount a number or a text, parsed as the `amount` column is.
fn json_lines(text: &str) -> Result<Vec<LoadLine>, String> {
    let values: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|_| "expected an array of {\"description\", \"amount\"}".to_string())?;
    let mut lines = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let number = index + 1;
        let description = match value.get("description") {
            Some(serde_json::Value::String(d)) if !d.trim().is_empty() => d.trim().to_string(),
            _ => return Err(format!("line {number}: a description is required")),
        };
        if description.chars().count() > MAX_FIELD_CHARS || description.chars().any(char::is_control) {
            return Err(format!(
                "line {number}: the description is over {MAX_FIELD_CHARS} characters or has control characters"
            ));
        }
        let amount_text = match value.get("amount") {
            Some(serde_json::Value::String(a)) => a.trim().to_string(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => return Err(format!("line {number}: an amount is required")),
        };
        let amount = Money::parse(&amount_text).map_err(|e| format!("line {number}: amount: {e}"))?;
        lines.push(LoadLine { description, amount });
    }
    Ok(lines)
}

/// The load's amount: the `amount` column, or the lines' sum when it is empty; both given must
/// agree to the cent.
fn row_amount(text: &str, extras: &LoadExtras) -> Result<Money, Vec<String>> {
    if text.is_empty() {
        // An empty amount without lines is reported as required.
        return extras.lines_total().ok_or_else(|| vec!["lines: the sum is too large".to_string()]);
    }
    let amount = Money::parse(text).map_err(|error| vec![format!("amount: {error}")])?;
    match lines_disagree(amount, extras) {
        Some(problem) => Err(vec![problem]),
        None => Ok(amount),
    }
}

/// The `terms_days` column: whole days from 0 to 365; empty takes the subsidiary's terms.
fn terms_days(text: &str, default: Option<u32>) -> Result<Option<i32>, String> {
    if text.is_empty() {
        return Ok(default.and_then(|d| i32::try_from(d).ok()));
    }
    match text.parse::<u32>() {
        Ok(days) if days <= MAX_TERMS_DAYS => Ok(i32::try_from(days).ok()),
        _ => Err(format!(
            "terms_days: `{}` is not a whole number of days from 0 to {MAX_TERMS_DAYS}",
            crate::domain::bounded(text)
        )),
    }
}

/// The `status` column: Released when empty; a load file may only say Released or Delivered.
fn import_status(text: &str) -> Result<LoadStatus, String> {
    match text {
        "" => Ok(LoadStatus::Released),
        text => match text.parse::<LoadStatus>() {
            Ok(status @ (LoadStatus::Released | LoadStatus::Delivered)) => Ok(status),
            _ => Err(format!("status: `{}` is not Released or Delivered", crate::domain::bounded(text))),
        },
    }
}

/// A date column (`delivered_at`, `pickup_date`), normalised; `None` when empty.
fn date_column(column: &str, text: &str) -> Result<Option<String>, String> {
    match text {
        "" => Ok(None),
        text => parse_date_or_time(text).map(Some).ok_or_else(|| {
            format!(
                "{column}: `{}` is not a date (2026-11-20, 11/20/2026) or date-time (2026-11-20T15:40:00-06:00)",
                crate::domain::bounded(text)
            )
        }),
    }
}

/// Document paths are relative to the documents folder and may not leave it
/// (docs/reliability.md rule 14).
fn check_document_path(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if p.is_absolute() || path.starts_with('\\') || path.contains(':') {
        return Err(format!("`{}` must be relative to the documents folder", crate::domain::bounded(path)));
    }
    if p.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(format!("`{}` may not contain `..` or `.`", crate::domain::bounded(path)));
    }
    Ok(())
}

/// Accepts `2026-11-20`, `11/20/2026`, `2026-11-20 15:40[:00]` and RFC 3339; returns
/// `YYYY-MM-DD` for dates and RFC 3339 for date-times (local times without an offset are
/// kept as written, `YYYY-MM-DDTHH:MM:SS`).
pub fn parse_date_or_time(text: &str) -> Option<String> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date.format("%Y-%m-%d").to_string());
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%m/%d/%Y") {
        return Some(date.format("%Y-%m-%d").to_string());
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.to_rfc3339());
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%m/%d/%Y %H:%M"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(time.format("%Y-%m-%dT%H:%M:%S").to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date_or_time("2026-11-20").as_deref(), Some("2026-11-20"));
        assert_eq!(parse_date_or_time("11/20/2026").as_deref(), Some("2026-11-20"));
        assert_eq!(parse_date_or_time("2026-11-21T15:40:00-06:00").as_deref(), Some("2026-11-21T15:40:00-06:00"));
        assert_eq!(parse_date_or_time("2026-11-21 15:40").as_deref(), Some("2026-11-21T15:40:00"));
        assert_eq!(parse_date_or_time("2026-13-01"), None);
        assert_eq!(parse_date_or_time("yesterday"), None);
    }

    fn record(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn charge_columns_make_lines_and_skip_empty_and_zero() {
        let lines =
            line_items(&record(&[("linehaul", "2,000"), ("fuel_surcharge", "0.00"), ("tonu", ""), ("other", "$12.5")]))
                .expect("lines");
        let shown: Vec<(String, i64)> = lines.iter().map(|l| (l.description.clone(), l.amount.cents())).collect();
        assert_eq!(shown, [("Linehaul".to_string(), 200_000), ("Other charges".to_string(), 1_250)]);
        let both = line_items(&record(&[("linehaul", "10"), ("lines", r#"[{"description": "X", "amount": 10}]"#)]));
        assert!(both.expect_err("refused").contains("give one"));
        let bad = line_items(&record(&[("lines", r#"[{"amount": 10}]"#)]));
        assert!(bad.expect_err("refused").contains("line 1: a description is required"));
    }

    #[test]
    fn amount_and_lines_must_agree() {
        let extras = LoadExtras {
            lines: vec![LoadLine { description: "Linehaul".into(), amount: Money::from_cents(240_000) }],
            ..LoadExtras::default()
        };
        assert_eq!(row_amount("", &extras), Ok(Money::from_cents(240_000)));
        assert_eq!(row_amount("2400", &extras), Ok(Money::from_cents(240_000)));
        assert_eq!(
            row_amount("$2,450.00", &extras),
            Err(vec!["amount $2,450.00 but the lines add up to $2,400.00".to_string()])
        );
    }

    #[test]
    fn terms_are_whole_days_up_to_a_year() {
        assert_eq!(terms_days("", Some(30)), Ok(Some(30)));
        assert_eq!(terms_days("0", Some(30)), Ok(Some(0)));
        assert_eq!(terms_days("365", None), Ok(Some(365)));
        assert!(terms_days("366", None).is_err());
        assert!(terms_days("-1", None).is_err());
        assert!(terms_days("net 30", None).is_err());
    }

    #[test]
    fn document_paths_stay_inside() {
        assert!(check_document_path("L-1/pod.pdf").is_ok());
        assert!(check_document_path("/etc/passwd").is_err());
        assert!(check_document_path("../secret.pdf").is_err());
        assert!(check_document_path("C:\\x.pdf").is_err());
    }
}
