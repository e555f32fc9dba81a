//! Reading a report file into rows of cells, bounded (docs/reliability.md rule 7).
//!
//! - **CSV** with the csv crate: UTF-8 with or without BOM, or Windows-1252 when the provider
//!   is configured so (bytes that Windows-1252 leaves undefined refuse the file); CRLF, quoted
//!   fields with commas and newlines, blank lines; the provider's delimiter.
//! - **XLSX** with calamine, streaming the sheet cell by cell (a dense range would allocate
//!   every cell up to the farthest one). Before calamine sees the file, its zip directory is
//!   checked — entry count, declared sizes, compression ratio — and every entry is inflated
//!   into a counting sink that stops at its declared size, so a zip bomb is refused without
//!   being inflated into memory.
//!
//! Cells keep what the file said: text stays text (invoice numbers keep their leading
//! zeros), numbers stay numbers, Excel dates stay dates (1900 and 1904 systems).

use std::io::{Cursor, Read};

use calamine::{DataRef, Reader, Xlsx};
use chrono::NaiveDateTime;

use crate::config::{ReportEncoding, ReportSettings};

/// Bounds on one report file.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_rows: u64,
    pub max_columns: usize,
    pub max_cell_chars: usize,
    /// XLSX: most entries in the zip.
    pub max_zip_entries: usize,
    /// XLSX: most bytes all entries may inflate to.
    pub max_unpacked_bytes: u64,
    /// XLSX: highest inflated/compressed ratio of one entry.
    pub max_ratio: u64,
}

impl Limits {
    pub fn from_settings(intake: &crate::config::IntakeSettings) -> Limits {
        Limits {
            max_bytes: intake.max_file_bytes,
            max_rows: intake.max_rows,
            max_columns: 256,
            max_cell_chars: 4096,
            max_zip_entries: 1_000,
            max_unpacked_bytes: intake.max_unpacked_bytes,
            max_ratio: 200,
        }
    }
}

/// One cell as the file gave it.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    /// An Excel date cell, already converted from its serial in the workbook's date system.
    Date(NaiveDateTime),
}

impl Cell {
    pub fn is_empty(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(text) => text.trim().is_empty(),
            _ => false,
        }
    }

    /// The cell as text, for header names, invoice numbers and messages. Whole numbers print
    /// without a decimal point (an invoice number stored as a number cell).
    /// Empty, or text that says "total" (a totals line's key column).
    pub fn is_blank_or_total(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(text) => text.trim().is_empty() || super::parse::is_total_word(text),
            Cell::Number(_) | Cell::Date(_) => false,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(text) => text.trim().to_string(),
            Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Cell::Number(n) => n.to_string(),
            Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
        }
    }
}

/// One row of the file: its number as ops see it (the line in a CSV, the row in a sheet) and
/// its cells.
#[derive(Clone, Debug)]
pub struct SheetRow {
    pub number: usize,
    pub cells: Vec<Cell>,
}

impl SheetRow {
    pub fn cell(&self, column: usize) -> &Cell {
        self.cells.get(column).unwrap_or(&Cell::Empty)
    }

    pub fn is_blank(&self) -> bool {
        self.cells.iter().all(Cell::is_empty)
    }

    /// A cell's text, trimmed, or `None` when empty; moved out of the row unless `copy`.
    pub fn take_text(&mut self, column: usize, copy: bool) -> Option<String> {
        let text = match self.cells.get_mut(column) {
            Some(Cell::Text(text)) if !copy && text.len() == text.trim().len() => std::mem::take(text),
            Some(cell) => cell.text(),
            None => String::new(),
        };
        (!text.is_empty()).then_some(text)
    }
}

/// Why a file cannot be read at all. Each message names the place in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("the file is {size} bytes, over the limit of {limit} bytes (intake.max_file_bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error("the file has more than {0} rows (intake.max_rows)")]
    TooManyRows(u64),
    #[error("row {row} has more than {limit} columns")]
    TooManyColumns { row: usize, limit: usize },
    #[error("row {row}, column {column}: a cell longer than {limit} characters")]
    CellTooLong { row: usize, column: usize, limit: usize },
    #[error(
        "not valid UTF-8 at line {line} (byte {offset}); if the factor sends Windows-1252, set encoding = \"windows-1252\" in its [provider.<id>.reports]"
    )]
    NotUtf8 { line: usize, offset: usize },
    #[error("byte 0x{byte:02X} at line {line} is not a Windows-1252 character")]
    NotWindows1252 { line: usize, byte: u8 },
    #[error("not a CSV file: {0}")]
    Csv(String),
    #[error("an old binary Excel file (.xls): save it as .xlsx or .csv")]
    LegacyExcel,
    #[error("refused as a possible zip bomb: {0}")]
    ZipBomb(String),
    #[error("not a readable XLSX file: {0}")]
    Xlsx(String),
    #[error("the workbook has no sheet named `{0}` (provider.<id>.reports.sheet)")]
    NoSuchSheet(String),
    #[error("the file is empty")]
    Empty,
}

/// Reads a report file's bytes into rows. XLSX is recognised by its content, not its name.
pub fn read_rows(bytes: &[u8], settings: &ReportSettings, limits: &Limits) -> Result<Vec<SheetRow>, ReadError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(ReadError::TooLarge { size: bytes.len() as u64, limit: limits.max_bytes });
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return read_xlsx(bytes, settings, limits);
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(ReadError::LegacyExcel);
    }
    let text = decode(bytes, settings.encoding)?;
    read_csv(&text, settings.delimiter, limits)
}

/// Bytes to text: a UTF-8 BOM always means UTF-8; otherwise the provider's encoding.
fn decode(bytes: &[u8], encoding: ReportEncoding) -> Result<String, ReadError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest);
    }
    match encoding {
        ReportEncoding::Utf8 => utf8(bytes),
        ReportEncoding::Windows1252 => windows_1252(bytes),
    }
}

fn line_at(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

fn utf8(bytes: &[u8]) -> Result<String, ReadError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(error) => {
            let offset = error.valid_up_to();
            Err(ReadError::NotUtf8 { line: line_at(bytes, offset), offset })
        }
    }
}

/// Windows-1252: Latin-1 except 0x80–0x9F, five of which are undefined.
fn windows_1252(bytes: &[u8]) -> Result<String, ReadError> {
    const HIGH: [Option<char>; 32] = [
        Some('€'),
        None,
        Some('‚'),
        Some('ƒ'),
        Some('„'),
        Some('…'),
        Some('†'),
        Some('‡'),
        Some('ˆ'),
        Some('‰'),
        Some('Š'),
        Some('‹'),
        Some('Œ'),
        None,
        Some('Ž'),
        None,
        None,
        Some('\u{2018}'),
        Some('\u{2019}'),
        Some('\u{201C}'),
        Some('\u{201D}'),
        Some('•'),
        Some('–'),
        Some('—'),
        Some('˜'),
        Some('™'),
        Some('š'),
        Some('›'),
        Some('œ'),
        None,
        Some('ž'),
        Some('Ÿ'),
    ];
    let mut text = String::with_capacity(bytes.len());
    for (offset, &byte) in bytes.iter().enumerate() {
        let ch = match byte {
            0x80..=0x9F => HIGH[usize::from(byte - 0x80)]
                .ok_or(ReadError::NotWindows1252 { line: line_at(bytes, offset), byte })?,
            _ => char::from(byte),
        };
        text.push(ch);
    }
    Ok(text)
}

fn read_csv(text: &str, delimiter: u8, limits: &Limits) -> Result<Vec<SheetRow>, ReadError> {
    if text.trim().is_empty() {
        return Err(ReadError::Empty);
    }
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    let bytes = text.as_bytes();
    let (mut line, mut counted) = (1, 0);
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                let line = error.position().map(|p| p.line()).unwrap_or(0);
                return Err(ReadError::Csv(format!("line {line}: {error}")));
            }
        }
        // The record's position points at the line break before it (and any blank lines):
        // its line is that of its first character.
        let mut start = record.position().map_or(0, |p| p.byte() as usize).min(bytes.len());
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        line += bytes[counted..start].iter().filter(|&&b| b == b'\n').count();
        counted = start;
        let number = line;
        if rows.len() as u64 >= limits.max_rows.saturating_add(10) {
            return Err(ReadError::TooManyRows(limits.max_rows));
        }
        if record.len() > limits.max_columns {
            return Err(ReadError::TooManyColumns { row: number, limit: limits.max_columns });
        }
        let mut cells = Vec::with_capacity(record.len());
        for (index, field) in record.iter().enumerate() {
            if field.len() > limits.max_cell_chars && field.chars().count() > limits.max_cell_chars {
                return Err(ReadError::CellTooLong { row: number, column: index + 1, limit: limits.max_cell_chars });
            }
            cells.push(if field.trim().is_empty() { Cell::Empty } else { Cell::Text(field.to_string()) });
        }
        rows.push(SheetRow { number, cells });
    }
    Ok(rows)
}

/// Checks an XLSX zip before anything inflates it into memory: the number of entries, each
/// entry's declared size and compression ratio, the declared total, and then each entry's
/// real inflated size (a zip may lie about sizes), counted into a sink.
pub fn check_zip(bytes: &[u8], limits: &Limits) -> Result<(), ReadError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ReadError::Xlsx(e.to_string()))?;
    if archive.len() > limits.max_zip_entries {
        return Err(ReadError::ZipBomb(format!(
            "{} entries in the zip (at most {})",
            archive.len(),
            limits.max_zip_entries
        )));
    }
    let mut declared_total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(|e| ReadError::Xlsx(e.to_string()))?;
        let (size, compressed) = (entry.size(), entry.compressed_size());
        declared_total = declared_total.saturating_add(size);
        if size > 1024 * 1024 && size / compressed.max(1) > limits.max_ratio {
            return Err(ReadError::ZipBomb(format!(
                "entry {} inflates {} bytes to {size} (ratio over {})",
                entry.name().unwrap_or_default(),
                compressed,
                limits.max_ratio
            )));
        }
    }
    if declared_total > limits.max_unpacked_bytes {
        return Err(ReadError::ZipBomb(format!(
            "the entries inflate to {declared_total} bytes (intake.max_unpacked_bytes is {})",
            limits.max_unpacked_bytes
        )));
    }
    let mut inflated_total: u64 = 0;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| ReadError::Xlsx(e.to_string()))?;
        let declared = entry.size();
        let name = entry.name().unwrap_or_default().to_string();
        let mut counted = (&mut entry).take(declared.saturating_add(1));
        let inflated =
            std::io::copy(&mut counted, &mut std::io::sink()).map_err(|e| ReadError::Xlsx(format!("{name}: {e}")))?;
        if inflated > declared {
            return Err(ReadError::ZipBomb(format!(
                "entry {name} inflates past its declared size of {declared} bytes"
            )));
        }
        inflated_total += inflated;
    }
    if inflated_total > limits.max_unpacked_bytes {
        return Err(ReadError::ZipBomb(format!(
            "the entries inflate to more than {} bytes",
            limits.max_unpacked_bytes
        )));
    }
    Ok(())
}

fn read_xlsx(bytes: &[u8], settings: &ReportSettings, limits: &Limits) -> Result<Vec<SheetRow>, ReadError> {
    check_zip(bytes, limits)?;
    let mut workbook = Xlsx::new(Cursor::new(bytes)).map_err(|e| ReadError::Xlsx(e.to_string()))?;
    let sheet = match &settings.sheet {
        Some(name) => {
            if !workbook.sheet_names().iter().any(|n| n == name) {
                return Err(ReadError::NoSuchSheet(name.clone()));
            }
            name.clone()
        }
        None => workbook.sheet_names().first().cloned().ok_or(ReadError::Empty)?,
    };
    let mut reader = workbook.worksheet_cells_reader(&sheet).map_err(|e| ReadError::Xlsx(e.to_string()))?;
    let mut rows: Vec<SheetRow> = Vec::new();
    while let Some(cell) = reader.next_cell().map_err(|e| ReadError::Xlsx(e.to_string()))? {
        let (row, column) = cell.get_position();
        let (row, column) = (row as usize, column as usize);
        let number = row + 1;
        if row as u64 >= limits.max_rows.saturating_add(10) {
            return Err(ReadError::TooManyRows(limits.max_rows));
        }
        if column >= limits.max_columns {
            return Err(ReadError::TooManyColumns { row: number, limit: limits.max_columns });
        }
        let value = match cell.get_value() {
            DataRef::Empty => continue,
            DataRef::Int(i) => Cell::Number(*i as f64),
            DataRef::Float(f) => Cell::Number(*f),
            DataRef::String(s) => Cell::Text(s.clone()),
            DataRef::SharedString(s) => Cell::Text((*s).to_string()),
            DataRef::Bool(b) => Cell::Text(b.to_string()),
            DataRef::DateTime(d) if d.is_datetime() => match d.as_datetime() {
                Some(date) => Cell::Date(date),
                None => Cell::Number(d.as_f64()),
            },
            DataRef::DateTime(d) => Cell::Number(d.as_f64()),
            DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::Text(s.clone()),
            DataRef::Error(e) => Cell::Text(format!("#{e}")),
        };
        if let Cell::Text(text) = &value
            && text.chars().count() > limits.max_cell_chars
        {
            return Err(ReadError::CellTooLong { row: number, column: column + 1, limit: limits.max_cell_chars });
        }
        // Rows arrive in order; a gap in the sheet stays a gap (no blank rows are invented).
        if rows.last().is_none_or(|last| last.number != number) {
            rows.push(SheetRow { number, cells: Vec::new() });
        }
        if let Some(last) = rows.last_mut() {
            if last.cells.len() <= column {
                last.cells.resize(column + 1, Cell::Empty);
            }
            last.cells[column] = value;
        }
    }
    if rows.is_empty() {
        return Err(ReadError::Empty);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_bytes: 1 << 20,
            max_rows: 1000,
            max_columns: 50,
            max_cell_chars: 100,
            max_zip_entries: 100,
            max_unpacked_bytes: 1 << 20,
            max_ratio: 100,
        }
    }

    #[test]
    fn windows_1252_decodes_and_refuses_undefined_bytes() {
        assert_eq!(windows_1252(b"Caf\xe9 \x80 \x93x\x94").expect("decodes"), "Café € \u{201C}x\u{201D}");
        assert_eq!(windows_1252(b"a\nb\x81").expect_err("0x81"), ReadError::NotWindows1252 { line: 2, byte: 0x81 });
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let error = decode(b"a,b\nc,\xe9\n", ReportEncoding::Utf8).expect_err("not utf-8");
        assert_eq!(error, ReadError::NotUtf8 { line: 2, offset: 6 });
        assert_eq!(decode(b"\xEF\xBB\xBFa", ReportEncoding::Windows1252).expect("bom"), "a");
    }

    #[test]
    fn csv_rows_keep_their_line_numbers() {
        let rows = read_csv("a,b\r\n\r\n\"x,1\",\"two\nlines\"\r\n3,4\r\n", b',', &limits()).expect("reads");
        let numbers: Vec<usize> = rows.iter().map(|r| r.number).collect();
        assert_eq!(numbers, vec![1, 3, 5]);
        assert_eq!(rows[1].cells, vec![Cell::Text("x,1".into()), Cell::Text("two\nlines".into())]);
    }

    #[test]
    fn caps_refuse_with_the_place() {
        let wide = vec!["x"; 51].join(",");
        assert_eq!(
            read_csv(&wide, b',', &limits()).expect_err("wide"),
            ReadError::TooManyColumns { row: 1, limit: 50 }
        );
        let long = format!("a\n{}", "y".repeat(101));
        assert_eq!(
            read_csv(&long, b',', &limits()).expect_err("long"),
            ReadError::CellTooLong { row: 2, column: 1, limit: 100 }
        );
    }

    #[test]
    fn numbers_print_as_text_without_losing_digits() {
        assert_eq!(Cell::Number(123.0).text(), "123");
        assert_eq!(Cell::Text(" 00123 ".into()).text(), "00123");
    }
}
