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

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use calamine::{DataRef, Reader, Xlsx};
use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

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

    #[expect(clippy::cast_possible_truncation, reason = "only whole numbers below 1e15 are cast")]
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
    #[error("cannot read the file: {0}")]
    Io(String),
}

/// Where a report's bytes come from: a file, read as a stream (never whole into memory), or
/// bytes already in memory. Either can be opened again: a file is read once to hash it and
/// check its encoding ([`scan`]) and once more to parse it ([`for_each_row`]), and parsed again
/// when its transaction has to start over.
#[derive(Clone, Debug)]
pub enum Source {
    File(PathBuf),
    Bytes(Arc<[u8]>),
}

/// A reader that can also seek (calamine and zip need both).
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

impl Source {
    pub fn open(&self) -> std::io::Result<Box<dyn ReadSeek>> {
        match self {
            Source::File(path) => Ok(Box::new(BufReader::with_capacity(64 * 1024, File::open(path)?))),
            Source::Bytes(bytes) => Ok(Box::new(Cursor::new(bytes.clone()))),
        }
    }
}

/// What the first pass over a file found: its kind and, for text, its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Xlsx,
    /// CSV text: whether it starts with a UTF-8 BOM (skipped), and the encoding it is in.
    Text {
        bom: bool,
        encoding: ReportEncoding,
    },
}

/// The first pass over a file: its sha256 (the dedupe key, `""` when the file is over the size
/// limit) and its format, or why it cannot be read at all. A text file is checked for its
/// encoding here, in one pass that holds a few bytes at a time, so the parse that follows
/// never meets a bad byte.
pub fn scan(source: &Source, settings: &ReportSettings, limits: &Limits) -> (String, Result<Format, ReadError>) {
    if let Source::Bytes(bytes) = source
        && bytes.len() as u64 > limits.max_bytes
    {
        return (String::new(), Err(ReadError::TooLarge { size: bytes.len() as u64, limit: limits.max_bytes }));
    }
    let mut reader = match source.open() {
        Ok(reader) => reader,
        Err(error) => return (String::new(), Err(ReadError::Io(error.to_string()))),
    };
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    let (mut size, mut format, mut check): (u64, Option<Format>, Option<TextCheck>) = (0, None, None);
    let mut error = None;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return (String::new(), Err(ReadError::Io(e.to_string()))),
        };
        let mut chunk = &buffer[..n];
        hasher.update(chunk);
        size += n as u64;
        if size > limits.max_bytes {
            return (String::new(), Err(ReadError::TooLarge { size, limit: limits.max_bytes }));
        }
        if format.is_none() {
            // The first read of a BufReader over a file or a cursor over bytes holds at least
            // the four bytes that tell the format, unless the file is shorter.
            if chunk.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
                error = Some(ReadError::LegacyExcel);
            }
            let found = sniff(chunk, settings.encoding);
            if let Format::Text { bom, encoding } = found {
                chunk = &chunk[if bom { 3 } else { 0 }..];
                check = Some(TextCheck::new(encoding));
            }
            format = Some(found);
        }
        if let (Some(text), None) = (check.as_mut(), &error) {
            error = text.feed(chunk).err();
        }
    }
    let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if let Some(error) = error {
        return (sha256, Err(error));
    }
    let result = match (format, check) {
        (None, _) => Err(ReadError::Empty),
        (Some(format), Some(text)) => text.finish().map(|()| format),
        (Some(format), None) => Ok(format),
    };
    (sha256, result)
}

/// The format the first bytes tell: XLSX by its zip signature (not its name), else text with
/// or without a UTF-8 BOM (which always means UTF-8).
fn sniff(head: &[u8], encoding: ReportEncoding) -> Format {
    if head.starts_with(b"PK\x03\x04") {
        Format::Xlsx
    } else if head.starts_with(b"\xEF\xBB\xBF") {
        Format::Text { bom: true, encoding: ReportEncoding::Utf8 }
    } else {
        Format::Text { bom: false, encoding }
    }
}

/// The encoding check of [`scan`], fed the text's bytes (after any BOM) a buffer at a time.
struct TextCheck {
    encoding: ReportEncoding,
    /// A UTF-8 character cut by the end of the last buffer (at most three bytes).
    carry: Vec<u8>,
    /// Bytes checked so far and the line breaks among them.
    offset: usize,
    lines: usize,
    /// Whether everything so far is white space (a blank file is refused as empty).
    blank: bool,
}

impl TextCheck {
    fn new(encoding: ReportEncoding) -> TextCheck {
        TextCheck { encoding, carry: Vec::new(), offset: 0, lines: 0, blank: true }
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), ReadError> {
        match self.encoding {
            ReportEncoding::Utf8 => self.feed_utf8(chunk),
            ReportEncoding::Windows1252 => {
                for (i, &byte) in chunk.iter().enumerate() {
                    let ch = decode_1252(byte).ok_or_else(|| ReadError::NotWindows1252 {
                        line: self.lines + count_lines(&chunk[..i]) + 1,
                        byte,
                    })?;
                    self.blank = self.blank && ch.is_whitespace();
                }
                self.lines += count_lines(chunk);
                self.offset += chunk.len();
                Ok(())
            }
        }
    }

    fn feed_utf8(&mut self, chunk: &[u8]) -> Result<(), ReadError> {
        let joined;
        let data = if self.carry.is_empty() {
            chunk
        } else {
            joined = [std::mem::take(&mut self.carry).as_slice(), chunk].concat();
            &joined[..]
        };
        let valid = match std::str::from_utf8(data) {
            Ok(text) => text,
            Err(error) if error.error_len().is_none() => {
                self.carry = data[error.valid_up_to()..].to_vec();
                // Checked: the bytes up to `valid_up_to` are UTF-8.
                std::str::from_utf8(&data[..error.valid_up_to()]).unwrap_or_default()
            }
            Err(error) => {
                let at = error.valid_up_to();
                return Err(ReadError::NotUtf8 {
                    line: self.lines + count_lines(&data[..at]) + 1,
                    offset: self.offset + at,
                });
            }
        };
        self.blank = self.blank && valid.chars().all(char::is_whitespace);
        self.lines += count_lines(valid.as_bytes());
        self.offset += valid.len();
        Ok(())
    }

    fn finish(self) -> Result<(), ReadError> {
        if !self.carry.is_empty() {
            return Err(ReadError::NotUtf8 { line: self.lines + 1, offset: self.offset });
        }
        if self.blank {
            return Err(ReadError::Empty);
        }
        Ok(())
    }
}

fn count_lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Windows-1252: Latin-1 except 0x80–0x9F, five of which are undefined.
fn decode_1252(byte: u8) -> Option<char> {
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
    match byte {
        0x80..=0x9F => HIGH[usize::from(byte - 0x80)],
        _ => Some(char::from(byte)),
    }
}

/// Reads a report file's bytes into rows, all at once (for tests and the benchmark; ingest
/// streams them through [`for_each_row`]).
pub fn read_rows(bytes: &[u8], settings: &ReportSettings, limits: &Limits) -> Result<Vec<SheetRow>, ReadError> {
    let source = Source::Bytes(bytes.into());
    let format = scan(&source, settings, limits).1?;
    let mut rows = Vec::new();
    for_each_row(&source, format, settings, limits, |row| {
        rows.push(row);
        ControlFlow::Continue(())
    })?;
    Ok(rows)
}

/// Reads the file row by row, in order, handing each to `row` (which may stop the reading by
/// returning `Break`). `format` is what [`scan`] found; a file that fails a limit is refused
/// at the row that fails it.
pub fn for_each_row(
    source: &Source,
    format: Format,
    settings: &ReportSettings,
    limits: &Limits,
    row: impl FnMut(SheetRow) -> ControlFlow<()>,
) -> Result<(), ReadError> {
    let reader = source.open().map_err(|e| ReadError::Io(e.to_string()))?;
    match format {
        Format::Xlsx => read_xlsx(reader, source, settings, limits, row),
        Format::Text { bom, encoding } => read_csv(reader, bom, encoding, settings.delimiter, limits, row),
    }
}

/// A reader that notes where its line breaks are, so a CSV record's line can be told from the
/// byte the csv reader gives for it. Marks behind the records already read are dropped (only
/// counted), so it holds no more than the csv reader's read-ahead.
struct Breaks<R> {
    inner: R,
    offset: u64,
    /// (offset, is `\n`) of each `\r` and `\n` not yet behind the last record.
    marks: VecDeque<(u64, bool)>,
    /// `\n`s already dropped from `marks`.
    lines_before: usize,
}

impl<R: Read> Read for Breaks<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, &byte) in buf[..n].iter().enumerate() {
            if matches!(byte, b'\r' | b'\n') {
                self.marks.push_back((self.offset + i as u64, byte == b'\n'));
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> Breaks<R> {
    /// The line of the first character at or after `start` that is not a line break: the csv
    /// reader's position of a record points at the line break before it (and any blank lines).
    fn line_at(&mut self, start: u64) -> usize {
        while let Some(&(at, is_lf)) = self.marks.front() {
            if at >= start {
                break;
            }
            self.lines_before += usize::from(is_lf);
            self.marks.pop_front();
        }
        let run = self
            .marks
            .iter()
            .zip(start..)
            .take_while(|((at, _), expected)| at == expected)
            .filter(|((_, is_lf), _)| *is_lf)
            .count();
        self.lines_before + run + 1
    }
}

fn read_csv(
    mut reader: Box<dyn ReadSeek>,
    bom: bool,
    encoding: ReportEncoding,
    delimiter: u8,
    limits: &Limits,
    mut each: impl FnMut(SheetRow) -> ControlFlow<()>,
) -> Result<(), ReadError> {
    if bom {
        reader.seek(SeekFrom::Start(3)).map_err(|e| ReadError::Io(e.to_string()))?;
    }
    let breaks = Breaks { inner: reader, offset: 0, marks: VecDeque::new(), lines_before: 0 };
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(breaks);
    let mut record = csv::ByteRecord::new();
    let mut count: u64 = 0;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(error) => {
                let line = error.position().map(|p| p.line()).unwrap_or(0);
                return Err(ReadError::Csv(format!("line {line}: {error}")));
            }
        }
        let start = record.position().map_or(0, |p| p.byte());
        let number = reader.get_mut().line_at(start);
        if count >= limits.max_rows.saturating_add(10) {
            return Err(ReadError::TooManyRows(limits.max_rows));
        }
        count += 1;
        if record.len() > limits.max_columns {
            return Err(ReadError::TooManyColumns { row: number, limit: limits.max_columns });
        }
        let mut cells = Vec::with_capacity(record.len());
        for (index, raw) in record.iter().enumerate() {
            let field = decode_field(raw, encoding)?;
            if field.len() > limits.max_cell_chars && field.chars().count() > limits.max_cell_chars {
                return Err(ReadError::CellTooLong { row: number, column: index + 1, limit: limits.max_cell_chars });
            }
            cells.push(if field.trim().is_empty() { Cell::Empty } else { Cell::Text(field.into_owned()) });
        }
        if each(SheetRow { number, cells }).is_break() {
            return Ok(());
        }
    }
}

/// A field's text. [`scan`] has checked the encoding of every byte already.
fn decode_field(raw: &[u8], encoding: ReportEncoding) -> Result<Cow<'_, str>, ReadError> {
    match encoding {
        ReportEncoding::Utf8 => {
            std::str::from_utf8(raw).map(Cow::Borrowed).map_err(|e| ReadError::Csv(format!("not valid UTF-8: {e}")))
        }
        ReportEncoding::Windows1252 if raw.is_ascii() => {
            Ok(Cow::Borrowed(std::str::from_utf8(raw).unwrap_or_default()))
        }
        ReportEncoding::Windows1252 => raw
            .iter()
            .map(|&b| decode_1252(b))
            .collect::<Option<String>>()
            .map(Cow::Owned)
            .ok_or_else(|| ReadError::Csv("a byte Windows-1252 does not define".into())),
    }
}

/// Checks an XLSX zip before anything inflates it into memory: the number of entries, each
/// entry's declared size and compression ratio, the declared total, and then each entry's
/// real inflated size (a zip may lie about sizes), counted into a sink.
pub fn check_zip(reader: impl Read + Seek, limits: &Limits) -> Result<(), ReadError> {
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| ReadError::Xlsx(e.to_string()))?;
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

fn read_xlsx(
    reader: Box<dyn ReadSeek>,
    source: &Source,
    settings: &ReportSettings,
    limits: &Limits,
    mut each: impl FnMut(SheetRow) -> ControlFlow<()>,
) -> Result<(), ReadError> {
    check_zip(reader, limits)?;
    let reader = source.open().map_err(|e| ReadError::Io(e.to_string()))?;
    let mut workbook = Xlsx::new(reader).map_err(|e| ReadError::Xlsx(e.to_string()))?;
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
    let mut current: Option<SheetRow> = None;
    let mut any = false;
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
        if current.as_ref().is_some_and(|row| row.number != number)
            && let Some(done) = current.take()
            && each(done).is_break()
        {
            return Ok(());
        }
        let row = current.get_or_insert_with(|| SheetRow { number, cells: Vec::new() });
        any = true;
        if row.cells.len() <= column {
            row.cells.resize(column + 1, Cell::Empty);
        }
        row.cells[column] = value;
    }
    if !any {
        return Err(ReadError::Empty);
    }
    if let Some(done) = current {
        let _ = each(done);
    }
    Ok(())
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

    fn settings(encoding: ReportEncoding, delimiter: u8) -> ReportSettings {
        ReportSettings { encoding, delimiter, ..ReportSettings::default() }
    }

    fn scan_bytes(bytes: &[u8], encoding: ReportEncoding) -> Result<Format, ReadError> {
        scan(&Source::Bytes(bytes.into()), &settings(encoding, b','), &limits()).1
    }

    fn read_csv(text: &str, delimiter: u8, limits: &Limits) -> Result<Vec<SheetRow>, ReadError> {
        read_rows(text.as_bytes(), &settings(ReportEncoding::Utf8, delimiter), limits)
    }

    #[test]
    fn windows_1252_decodes_and_refuses_undefined_bytes() {
        let rows = read_rows(b"Caf\xe9 \x80 \x93x\x94", &settings(ReportEncoding::Windows1252, b','), &limits());
        assert_eq!(rows.expect("decodes")[0].cells, vec![Cell::Text("Café € \u{201C}x\u{201D}".into())]);
        let error = scan_bytes(b"a\nb\x81", ReportEncoding::Windows1252).expect_err("0x81");
        assert_eq!(error, ReadError::NotWindows1252 { line: 2, byte: 0x81 });
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let error = scan_bytes(b"a,b\nc,\xe9\n", ReportEncoding::Utf8).expect_err("not utf-8");
        assert_eq!(error, ReadError::NotUtf8 { line: 2, offset: 6 });
        let format = scan_bytes(b"\xEF\xBB\xBFa", ReportEncoding::Windows1252).expect("bom");
        assert_eq!(format, Format::Text { bom: true, encoding: ReportEncoding::Utf8 });
        // A character cut by the end of a read buffer is whole, and a cut one at the end is not.
        let mut long = "x".repeat(64 * 1024 - 1).into_bytes();
        long.extend_from_slice("é\n".as_bytes());
        assert!(scan_bytes(&long, ReportEncoding::Utf8).is_ok());
        long.extend_from_slice(b"\xC3");
        assert_eq!(
            scan_bytes(&long, ReportEncoding::Utf8).expect_err("cut"),
            ReadError::NotUtf8 { line: 2, offset: 64 * 1024 + 2 }
        );
        assert_eq!(scan_bytes(b" \r\n\t", ReportEncoding::Utf8).expect_err("blank"), ReadError::Empty);
    }

    #[test]
    fn csv_rows_keep_their_line_numbers() {
        let rows = read_csv("a,b\r\n\r\n\"x,1\",\"two\nlines\"\r\n3,4\r\n", b',', &limits()).expect("reads");
        let numbers: Vec<usize> = rows.iter().map(|r| r.number).collect();
        assert_eq!(numbers, vec![1, 3, 5]);
        assert_eq!(rows[1].cells, vec![Cell::Text("x,1".into()), Cell::Text("two\nlines".into())]);
        let rows = read_rows(b"\xEF\xBB\xBFa\n\n\nb\n", &settings(ReportEncoding::Utf8, b','), &limits());
        assert_eq!(rows.expect("reads").iter().map(|r| r.number).collect::<Vec<_>>(), vec![1, 4]);
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
