//! A report file applied as a stream (issue 16 point 6): a reader thread reads, finds the
//! header and parses the rows, a chunk at a time, while the async side plans and writes each
//! chunk inside the file's one transaction and writes its lines of the result file. Memory
//! holds a few chunks, whatever the file's length: never every row, every plan or every
//! outcome at once.
//!
//! The transaction is still all or nothing: a row that cannot be parsed, a limit passed late
//! in the file, or a load another writer moved meanwhile drops it, and nothing of the file is
//! applied. A load named in two chunks sees its earlier row through the database, as the
//! later chunk's loads are read in the same transaction (or, for a purchase report, on a
//! second connection while the transaction writes, and read again in the transaction when an
//! earlier chunk read one of them: `Beside`).

use std::io::Write;
use std::ops::ControlFlow;

use rustc_hash::FxHashSet;
use tokio::sync::mpsc;

use super::ReportKind;
use super::apply::{self, Outcome, RowOutcome};
use super::columns::{self, HEADER_SEARCH_ROWS};
use super::parse::{ParsedReport, RowParser};
use super::read::{self, Format, Limits, SheetRow, Source};
use crate::config::ReportSettings;
use crate::domain::report::{ChunkLoads, ReportPlan};
use crate::files::csv_cell;
use crate::providers::statuses::StatusMap;
use crate::store::{ReportBegin, ReportCounts, ReportFileMeta, ReportKeys, ReportReader, ReportTx, Store, StoreError};

/// Rows per chunk: read, planned and written together. (5,000 measured slower on PostgreSQL:
/// each chunk's key lookups and compare-and-set cost about as much as a larger one's.)
pub const CHUNK_ROWS: usize = 20_000;

/// Chunks the reader may be ahead of the writer.
const CHUNKS_AHEAD: usize = 1;

/// Loads a file's chunks may have read for its next chunks to be read on a second connection
/// ([`Beside`]): their ids are kept to tell which loads the transaction has read. Past it
/// (about 5 MB of ids), the rest of the file is read in the transaction.
const SEEN_MAX: usize = 1 << 18;

/// Rows not applied that a summary keeps for `ingest` and the log; the result file has all.
pub const KEPT_NOT_APPLIED: usize = 10_000;

/// What the reader thread sends, in order: the header, chunks of rows, then the end (or, at
/// any point, why the file is refused).
enum Piece {
    Header { kind: ReportKind, unused: Vec<String> },
    Rows(ParsedReport),
    End,
    Refused(String),
}

/// Where the result file's text goes as it is made.
pub enum ResultOut {
    /// Kept in memory (`ingest_file`, tests).
    Memory(Vec<u8>),
    /// Written to a file (the inbox: a temp file renamed into the archive once committed).
    File(std::io::BufWriter<std::fs::File>),
    /// Not kept (`factord ingest`, which prints the summary; the text is stored with the
    /// file's record).
    Discard,
}

impl ResultOut {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            ResultOut::Memory(text) => text.extend_from_slice(bytes),
            ResultOut::File(file) => file.write_all(bytes)?,
            ResultOut::Discard => {}
        }
        Ok(())
    }

    /// Empties it, for a file applied again from the start.
    fn reset(&mut self) -> std::io::Result<()> {
        match self {
            ResultOut::Memory(text) => text.clear(),
            ResultOut::File(file) => {
                use std::io::Seek;
                file.flush()?;
                file.get_mut().set_len(0)?;
                file.get_mut().rewind()?;
            }
            ResultOut::Discard => {}
        }
        Ok(())
    }
}

/// What one attempt at a file came to.
pub enum Attempt {
    Applied { kind: ReportKind, counts: ReportCounts, not_applied: Vec<RowOutcome> },
    Duplicate { kind: ReportKind, previous: crate::store::ReportFileRecord },
    Refused(String),
}

/// Why an attempt stopped without an outcome.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the result file: {0}")]
    Io(#[from] std::io::Error),
}

/// The file and what applying it needs.
pub struct Job<'a> {
    pub store: &'a Store,
    pub provider: &'a str,
    pub kind: Option<ReportKind>,
    pub file_name: &'a str,
    pub sha256: &'a str,
    pub source: Source,
    pub format: Format,
    pub settings: ReportSettings,
    pub limits: Limits,
    pub statuses: &'a StatusMap,
}

impl Job<'_> {
    /// One attempt: reads the file from its start and applies it in one transaction. A
    /// `Conflict` error means another writer moved a load meanwhile: nothing was applied and
    /// the caller may try again.
    pub async fn attempt(&self, out: &mut ResultOut) -> Result<Attempt, AttemptError> {
        out.reset()?;
        let mut pieces = self.start_reader();
        let (kind, unused) = match pieces.recv().await {
            Some(Piece::Header { kind, unused }) => (kind, unused),
            Some(Piece::Refused(reason)) => return Ok(Attempt::Refused(reason)),
            Some(Piece::Rows(_) | Piece::End) | None => return Ok(Attempt::Refused(reader_failed())),
        };
        let meta = ReportFileMeta {
            provider: self.provider,
            kind: kind.as_str(),
            sha256: self.sha256,
            file_name: self.file_name,
        };
        let mut tx = match self.store.begin_report(meta).await? {
            ReportBegin::Open(tx) => tx,
            ReportBegin::Duplicate { previous, outcomes } => {
                let note = format!(
                    "same content as {} ingested {}; nothing applied again. Its outcomes were:\n",
                    previous.file_name,
                    crate::domain::time_for_people(previous.processed_at)
                );
                out.write(note.as_bytes())?;
                out.write(outcomes.as_bytes())?;
                return Ok(Attempt::Duplicate { kind, previous });
            }
        };
        let mut applied = Applied::default();
        applied.line(["row", "invoice_number", "load_number", "outcome", "reason"]);
        // A payment report's reads lock its loads in the transaction: never beside it.
        let mut beside = if kind == ReportKind::Purchase { Beside::NotYet } else { Beside::Off };
        let mut current = match next_chunk(&mut pieces).await {
            Next::Chunk(chunk) => Some(self.read_and_plan(&mut tx, kind, chunk).await?),
            Next::End => None,
            Next::Refused(reason) => return Ok(Attempt::Refused(reason)),
        };
        while let Some(this) = current.take() {
            let next = match next_chunk(&mut pieces).await {
                Next::Chunk(chunk) => Some(chunk),
                Next::End => None,
                Next::Refused(reason) => return Ok(Attempt::Refused(reason)),
            };
            current = self.write_and_plan_next(&mut tx, kind, this, next, &mut beside, &mut applied, out).await?;
        }
        applied.tail(&unused);
        let text = applied.take_text();
        out.write(text.as_bytes())?;
        tx.add_outcomes(&text).await?;
        tx.commit(applied.counts).await?;
        Ok(Attempt::Applied { kind, counts: applied.counts, not_applied: applied.not_applied })
    }

    /// Reads the loads a chunk names (as this transaction sees them) and plans it.
    async fn read_and_plan(
        &self,
        tx: &mut ReportTx,
        kind: ReportKind,
        chunk: ParsedReport,
    ) -> Result<Planned, AttemptError> {
        let loads = read_loads(tx, &chunk).await?;
        Ok(self.plan(kind, chunk, loads))
    }

    fn plan(&self, kind: ReportKind, chunk: ParsedReport, found: ChunkLoads) -> Planned {
        let ids = found.loads.iter().map(|l| l.id).collect();
        let plan = apply::plan(kind, self.provider, self.file_name, &chunk.rows, found, self.statuses);
        Planned { totals: chunk.totals, plan, ids }
    }

    /// Writes a planned chunk and, while the database works on it, makes its lines of the
    /// result file and plans the next chunk. The next chunk's loads are read on a second
    /// connection while this one is written ([`Beside`]), or else in the transaction before
    /// this one is written; either reading is stale for a load an earlier chunk read (for the
    /// reading in the transaction: this chunk), and then the next chunk is read again in the
    /// transaction once this one is written. So each chunk still sees the loads as the chunks
    /// before it left them.
    #[expect(clippy::too_many_arguments, reason = "one step of `attempt`, on its state")]
    async fn write_and_plan_next(
        &self,
        tx: &mut ReportTx,
        kind: ReportKind,
        mut this: Planned,
        next: Option<ParsedReport>,
        beside: &mut Beside,
        applied: &mut Applied,
        out: &mut ResultOut,
    ) -> Result<Option<Planned>, AttemptError> {
        if next.is_some() {
            beside.note(self.store, &this.ids).await;
        }
        let next = match next {
            Some(chunk) if beside.is_ready() => Some(Upcoming::Beside(chunk)),
            Some(chunk) => {
                let loads = read_loads(tx, &chunk).await?;
                let stale = loads.loads.iter().any(|l| this.ids.contains(&l.id));
                Some(Upcoming::Read { chunk, loads, stale })
            }
            None => None,
        };
        let outcomes = std::mem::take(&mut this.plan.outcomes);
        let totals = std::mem::take(&mut this.totals);
        let (written, (text, next)) = tokio::join!(tx.write(&this.plan), async {
            let text = applied.record(outcomes, totals);
            let next = match next {
                Some(Upcoming::Read { chunk, stale: true, .. }) => Some(Err(chunk)),
                Some(Upcoming::Read { chunk, loads, stale: false }) => Some(Ok(self.plan(kind, chunk, loads))),
                Some(Upcoming::Beside(chunk)) => Some(match beside.read(&chunk).await {
                    Some(loads) => Ok(self.plan(kind, chunk, loads)),
                    None => Err(chunk),
                }),
                None => None,
            };
            (text, next)
        });
        written?;
        out.write(text.as_bytes())?;
        tx.add_outcomes(&text).await?;
        match next {
            Some(Ok(planned)) => Ok(Some(planned)),
            Some(Err(chunk)) => Ok(Some(self.read_and_plan(tx, kind, chunk).await?)),
            None => Ok(None),
        }
    }

    /// Starts the reader thread; its pieces arrive on the returned channel. Dropping the
    /// channel stops it at its next chunk.
    fn start_reader(&self) -> mpsc::Receiver<Piece> {
        let (send, receive) = mpsc::channel(CHUNKS_AHEAD);
        let reader = Reader {
            source: self.source.clone(),
            format: self.format,
            settings: self.settings.clone(),
            limits: self.limits,
            kind: self.kind,
            send,
        };
        tokio::task::spawn_blocking(move || reader.run());
        receive
    }
}

/// The loads a chunk names, as the transaction sees them.
async fn read_loads(tx: &mut ReportTx, chunk: &ParsedReport) -> Result<ChunkLoads, AttemptError> {
    let (invoices, load_numbers) = apply::lookup_keys(&chunk.rows);
    Ok(tx.loads(&ReportKeys { invoices: &invoices, load_numbers: &load_numbers }).await?)
}

/// The next chunk, read in the transaction before the current one is written (`stale` when it
/// read a load the current one read), or to be read beside it.
enum Upcoming {
    Read { chunk: ParsedReport, loads: ChunkLoads, stale: bool },
    Beside(ParsedReport),
}

/// The second connection a purchase report's next chunk is read on while the transaction
/// writes the current one ([`ReportReader`]), and the ids of every load the file's chunks have
/// read so far: a reading beside the transaction is used only if it names none of them.
enum Beside {
    /// Not asked for yet (a file of one chunk never needs it).
    NotYet,
    Ready {
        reader: ReportReader,
        seen: FxHashSet<i64>,
    },
    /// A payment report, no connection to spare, a failed reading, or past
    /// [`SEEN_MAX`] loads: chunks are read in the transaction.
    Off,
}

impl Beside {
    fn is_ready(&self) -> bool {
        matches!(self, Beside::Ready { .. })
    }

    /// Notes the loads a chunk read, before the next chunk is read; the first time, asks for
    /// the connection.
    async fn note(&mut self, store: &Store, ids: &FxHashSet<i64>) {
        if matches!(self, Beside::NotYet) {
            *self = match store.report_reader().await {
                Some(reader) => Beside::Ready { reader, seen: FxHashSet::default() },
                None => Beside::Off,
            };
        }
        if let Beside::Ready { seen, .. } = self {
            if seen.len() + ids.len() > SEEN_MAX {
                *self = Beside::Off;
            } else {
                seen.extend(ids.iter().copied());
            }
        }
    }

    /// The chunk's loads as committed, or `None` when they must be read in the transaction:
    /// an earlier chunk read one of them (the transaction may have changed it), or the
    /// reading failed (then the connection is let go).
    async fn read(&mut self, chunk: &ParsedReport) -> Option<ChunkLoads> {
        let Beside::Ready { reader, seen } = self else { return None };
        let (invoices, load_numbers) = apply::lookup_keys(&chunk.rows);
        match reader.loads(&ReportKeys { invoices: &invoices, load_numbers: &load_numbers }).await {
            Ok(found) if found.loads.iter().all(|l| !seen.contains(&l.id)) => Some(found),
            Ok(_) => None,
            Err(error) => {
                tracing::debug!(%error, "reading a report's loads beside its transaction failed; reading them in it");
                *self = Beside::Off;
                None
            }
        }
    }
}

/// A planned chunk: its plan, its totals lines and the ids of the loads it read.
struct Planned {
    plan: ReportPlan,
    totals: Vec<(usize, String)>,
    ids: FxHashSet<i64>,
}

/// The next piece after the header.
enum Next {
    Chunk(ParsedReport),
    End,
    Refused(String),
}

async fn next_chunk(pieces: &mut mpsc::Receiver<Piece>) -> Next {
    match pieces.recv().await {
        Some(Piece::Rows(chunk)) => Next::Chunk(chunk),
        Some(Piece::End) => Next::End,
        Some(Piece::Refused(reason)) => Next::Refused(reason),
        Some(Piece::Header { .. }) | None => Next::Refused(reader_failed()),
    }
}

fn reader_failed() -> String {
    "the reader stopped before the end of the file".to_string()
}

/// A file's result text as it is made, and its counts.
struct Applied {
    writer: csv::Writer<Vec<u8>>,
    counts: ReportCounts,
    not_applied: Vec<RowOutcome>,
    /// Totals lines: (row, what it said), noted after the rows.
    totals: Vec<(usize, String)>,
}

impl Default for Applied {
    fn default() -> Self {
        Applied {
            writer: csv::Writer::from_writer(Vec::new()),
            counts: ReportCounts::default(),
            not_applied: Vec::new(),
            totals: Vec::new(),
        }
    }
}

impl Applied {
    /// One line of the result file; text is escaped against formula injection.
    fn line(&mut self, record: [&str; 5]) {
        let _ = self.writer.write_record(record.map(csv_cell).iter().map(|c| c.as_bytes()));
    }

    /// The lines after the rows: the notes, then totals that add up (`rows` = `applied` +
    /// `skipped` + `rejected`).
    fn tail(&mut self, unused: &[String]) {
        for (row, said) in std::mem::take(&mut self.totals) {
            self.line([&row.to_string(), "", "", "note", &format!("totals line, not applied: {said}")]);
        }
        if !unused.is_empty() {
            self.line(["", "", "", "note", &format!("columns not used: {}", unused.join(", "))]);
        }
        let counts = self.counts;
        for (label, n) in [
            ("rows", counts.rows),
            (Outcome::Applied.as_str(), counts.applied),
            (Outcome::Skipped.as_str(), counts.skipped),
            (Outcome::Rejected.as_str(), counts.rejected),
        ] {
            self.line(["total", "", "", label, &n.to_string()]);
        }
    }

    /// Counts a chunk's outcomes and makes their lines; returns the lines.
    fn record(&mut self, outcomes: Vec<RowOutcome>, totals: Vec<(usize, String)>) -> String {
        for o in outcomes {
            self.counts.add_outcome(o.outcome);
            self.line([&o.row.to_string(), &o.invoice_number, &o.load_number, o.outcome.as_str(), &o.reason]);
            if o.outcome != Outcome::Applied && self.not_applied.len() < KEPT_NOT_APPLIED {
                self.not_applied.push(o);
            }
        }
        self.totals.extend(totals);
        self.take_text()
    }

    /// The lines written since the last call.
    fn take_text(&mut self) -> String {
        let writer = std::mem::replace(&mut self.writer, csv::Writer::from_writer(Vec::new()));
        String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

/// The reader thread: reads rows, finds the header among the first ones, parses the rest into
/// chunks and sends them.
struct Reader {
    source: Source,
    format: Format,
    settings: ReportSettings,
    limits: Limits,
    kind: Option<ReportKind>,
    send: mpsc::Sender<Piece>,
}

/// Where the reader is in the file.
enum Stage {
    /// Before the header: the first rows, kept to search.
    Head(Vec<SheetRow>),
    Rows {
        parser: Box<RowParser>,
        chunk: ParsedReport,
    },
    /// The file is refused (or the receiver gone): the rest is read only to find a read error,
    /// which is reported in its place (a file unreadable further down is refused as unreadable).
    Draining(Option<String>),
}

impl Reader {
    fn run(self) {
        let mut stage = Stage::Head(Vec::new());
        let mut rows: u64 = 0;
        let read = read::for_each_row(&self.source, self.format, &self.settings, &self.limits, |row| {
            self.take(&mut stage, row, &mut rows);
            if matches!(stage, Stage::Draining(None)) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        });
        if let Err(error) = read {
            let _ = self.send.blocking_send(Piece::Refused(error.to_string()));
            return;
        }
        if let Stage::Head(head) = stage {
            stage = self.header(head, &mut rows).unwrap_or_else(|reason| Stage::Draining(Some(reason)));
        }
        let end = match stage {
            Stage::Head(_) | Stage::Draining(None) => return,
            Stage::Draining(Some(reason)) => Piece::Refused(reason),
            Stage::Rows { mut parser, mut chunk } => {
                parser.finish(&mut chunk);
                self.last(chunk, rows)
            }
        };
        let _ = self.send.blocking_send(end);
    }

    /// The last chunk and the end, or the refusal of a file over the row limit.
    fn last(&self, chunk: ParsedReport, rows: u64) -> Piece {
        let rows = rows + chunk.rows.len() as u64;
        if rows > self.limits.max_rows {
            return Piece::Refused(format!(
                "the file has {rows} rows, over intake.max_rows ({})",
                self.limits.max_rows
            ));
        }
        if !chunk.rows.is_empty() || !chunk.totals.is_empty() {
            let _ = self.send.blocking_send(Piece::Rows(chunk));
        }
        Piece::End
    }

    fn take(&self, stage: &mut Stage, row: SheetRow, rows: &mut u64) {
        match stage {
            Stage::Draining(_) => {}
            Stage::Head(head) => {
                head.push(row);
                if head.len() >= HEADER_SEARCH_ROWS {
                    let head = std::mem::take(head);
                    *stage = self.header(head, rows).unwrap_or_else(|reason| Stage::Draining(Some(reason)));
                }
            }
            Stage::Rows { parser, chunk } => {
                if let Err(error) = parser.push(row, chunk) {
                    *stage = Stage::Draining(Some(error.to_string()));
                    return;
                }
                if chunk.rows.len() >= CHUNK_ROWS {
                    *rows += chunk.rows.len() as u64;
                    let full = std::mem::take(chunk);
                    if self.send.blocking_send(Piece::Rows(full)).is_err() {
                        *stage = Stage::Draining(None);
                    }
                }
            }
        }
    }

    /// Finds the header among the first rows, sends it, and parses the rows below it.
    fn header(&self, head: Vec<SheetRow>, rows: &mut u64) -> Result<Stage, String> {
        let (index, columns) = columns::find_header(&head, self.kind, &self.settings).map_err(|e| e.to_string())?;
        let names: Vec<String> = head[index].cells.iter().map(read::Cell::text).collect();
        let header = Piece::Header { kind: columns.kind, unused: columns.unused.clone() };
        if self.send.blocking_send(header).is_err() {
            return Ok(Stage::Draining(None));
        }
        let mut stage =
            Stage::Rows { parser: Box::new(RowParser::new(columns, names)), chunk: ParsedReport::default() };
        for row in head.into_iter().skip(index + 1) {
            self.take(&mut stage, row, rows);
        }
        Ok(stage)
    }
}
