//! The files of a batch for the providers that take files (manual outbox and FTP): a
//! schedule-of-accounts CSV and the packets, loose or in one zip, under names derived from the
//! batch. No factor publishes its layout; these are factord's, one table per provider in
//! the catalogue ([`crate::providers::Provider::layout`]), documented in docs/providers.md. Text
//! cells are escaped against formula injection (docs/reliability.md rule 13).

use std::io::Write;

use super::batch::{Batch, BatchInvoice};
use crate::files::csv_cell;

/// One file to write or upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchFile {
    /// A name made only of `[A-Za-z0-9._-]`.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A column of the schedule CSV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    InvoiceNumber,
    InvoiceDate,
    LoadNumber,
    CustomerId,
    CustomerName,
    CustomerMc,
    CustomerDot,
    PoNumber,
    ReferenceNumber,
    Amount,
    PacketFile,
}

impl Column {
    fn value(self, batch: &Batch, invoice: &BatchInvoice) -> String {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        match self {
            Column::InvoiceNumber => invoice.invoice_number.clone(),
            Column::InvoiceDate => invoice.invoice_date.clone(),
            Column::LoadNumber => invoice.load_number.clone(),
            Column::CustomerId => invoice.customer_id.clone(),
            Column::CustomerName => invoice.customer_name.clone(),
            Column::CustomerMc => opt(&invoice.customer_mc),
            Column::CustomerDot => opt(&invoice.customer_dot),
            Column::PoNumber => opt(&invoice.po_number),
            Column::ReferenceNumber => opt(&invoice.reference_number),
            Column::Amount => invoice.amount.to_string(),
            Column::PacketFile => packet_name(batch, invoice),
        }
    }
}

/// How the packets travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packaging {
    /// The CSV and one PDF per invoice, side by side.
    Loose,
    /// The CSV and the PDFs in one zip.
    Zip,
}

/// One provider's batch layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub columns: &'static [(&'static str, Column)],
    pub packaging: Packaging,
}

pub(super) const STANDARD_COLUMNS: &[(&str, Column)] = &[
    ("Invoice Number", Column::InvoiceNumber),
    ("Invoice Date", Column::InvoiceDate),
    ("Load Number", Column::LoadNumber),
    ("Debtor Name", Column::CustomerName),
    ("Debtor MC", Column::CustomerMc),
    ("Debtor DOT", Column::CustomerDot),
    ("PO Number", Column::PoNumber),
    ("Amount", Column::Amount),
    ("Document", Column::PacketFile),
];

/// Triumph bills by its customer number: it comes first.
pub(super) const TRIUMPH_COLUMNS: &[(&str, Column)] = &[
    ("Customer Number", Column::CustomerId),
    ("Customer Name", Column::CustomerName),
    ("Invoice Number", Column::InvoiceNumber),
    ("Invoice Date", Column::InvoiceDate),
    ("Load Number", Column::LoadNumber),
    ("Customer MC", Column::CustomerMc),
    ("PO Number", Column::PoNumber),
    ("Amount", Column::Amount),
    ("Document", Column::PacketFile),
];

/// Wex FleetOne needs its reference number on every line.
pub(super) const WEX_COLUMNS: &[(&str, Column)] = &[
    ("Reference Number", Column::ReferenceNumber),
    ("Invoice Number", Column::InvoiceNumber),
    ("Invoice Date", Column::InvoiceDate),
    ("Load Number", Column::LoadNumber),
    ("Debtor Name", Column::CustomerName),
    ("Debtor MC", Column::CustomerMc),
    ("Amount", Column::Amount),
    ("Document", Column::PacketFile),
];

/// How many hex digits of the batch's uid its file names carry.
pub const UID_IN_NAMES: usize = 8;

/// The stem of every file name of the batch: `<subsidiary>_<YYYYMMDD>_<batch number>_<uid8>`,
/// e.g. `acme-east_20261130_7_3f9a0c2e`, where `uid8` is the first 8 hex digits of the batch's
/// unique id. Deterministic, so a resend lands on the same names; the uid keeps the names of a
/// batch apart from those of a batch with the same number from before a database reset or of
/// another installation. A batch written before batches had uids keeps its old stem
/// `<subsidiary>_<YYYYMMDD>_<batch number>`.
pub fn batch_stem(batch: &Batch) -> String {
    let base = format!("{}_{}_{}", batch.seller.id, batch.date.replace('-', ""), batch.number);
    match &batch.uid {
        Some(uid) => format!("{base}_{}", uid.get(..UID_IN_NAMES).unwrap_or(uid)),
        None => base,
    }
}

/// `<invoice number>_<uid8>.pdf`, e.g. `AE-1_3f9a0c2e.pdf`: invoice numbers start again after a
/// database reset, so a packet carries its batch's uid like every other file of the batch (a
/// loose packet in a factor's flat FTP folder sits beside those of earlier batches). A batch
/// written before batches had uids keeps `<invoice number>.pdf`.
pub fn packet_name(batch: &Batch, invoice: &BatchInvoice) -> String {
    match &batch.uid {
        Some(uid) => format!("{}_{}.pdf", invoice.invoice_number, uid.get(..UID_IN_NAMES).unwrap_or(uid)),
        None => format!("{}.pdf", invoice.invoice_number),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("provider {0} takes no batch files")]
    NoLayout(&'static str),
    #[error("cannot read the packet {}: {source}", path.display())]
    Packet { path: std::path::PathBuf, source: std::io::Error },
    #[error("cannot build the batch file: {0}")]
    Build(String),
}

/// The schedule-of-accounts CSV of a batch, with a totals line.
pub fn schedule_csv(batch: &Batch, layout: &Layout) -> Result<Vec<u8>, LayoutError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let build = |e: csv::Error| LayoutError::Build(e.to_string());
    out.write_record(layout.columns.iter().map(|(header, _)| *header)).map_err(build)?;
    for invoice in &batch.invoices {
        let cells: Vec<String> =
            layout.columns.iter().map(|(_, column)| csv_cell(&column.value(batch, invoice)).into_owned()).collect();
        out.write_record(&cells).map_err(build)?;
    }
    let mut totals = vec![String::new(); layout.columns.len()];
    if let Some(first) = totals.first_mut() {
        *first = format!("TOTAL {} invoices", batch.invoices.len());
    }
    if let Some(i) = layout.columns.iter().position(|(_, c)| *c == Column::Amount) {
        totals[i] = batch.total().to_string();
    }
    out.write_record(&totals).map_err(build)?;
    out.into_inner().map_err(|e| LayoutError::Build(e.to_string()))
}

/// Every file of the batch, in upload order: the packets first, the schedule CSV last, so a
/// factor's watcher that starts on the CSV finds the PDFs already there. Zip layouts give one
/// file.
pub fn batch_files(batch: &Batch) -> Result<Vec<BatchFile>, LayoutError> {
    let layout = batch.provider.layout.ok_or(LayoutError::NoLayout(batch.provider.id))?;
    let stem = batch_stem(batch);
    let csv = BatchFile { name: format!("{stem}.csv"), bytes: schedule_csv(batch, &layout)? };
    let mut packets = Vec::with_capacity(batch.invoices.len());
    for invoice in &batch.invoices {
        let bytes = std::fs::read(&invoice.packet)
            .map_err(|source| LayoutError::Packet { path: invoice.packet.clone(), source })?;
        packets.push(BatchFile { name: packet_name(batch, invoice), bytes });
    }
    match layout.packaging {
        Packaging::Loose => {
            packets.push(csv);
            Ok(packets)
        }
        Packaging::Zip => {
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            // PDFs are compressed already: stored, not deflated.
            let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            let deflated = zip::write::SimpleFileOptions::default();
            let build = |e: zip::result::ZipError| LayoutError::Build(e.to_string());
            for file in packets {
                zip.start_file(file.name.as_str(), stored).map_err(build)?;
                zip.write_all(&file.bytes).map_err(|e| LayoutError::Build(e.to_string()))?;
            }
            zip.start_file(csv.name.as_str(), deflated).map_err(build)?;
            zip.write_all(&csv.bytes).map_err(|e| LayoutError::Build(e.to_string()))?;
            let bytes = zip.finish().map_err(build)?.into_inner();
            Ok(vec![BatchFile { name: format!("{stem}.zip"), bytes }])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Money;
    use crate::providers::batch::BatchSeller;
    use crate::providers::find_provider;

    fn batch(provider: &str, packet: std::path::PathBuf) -> Batch {
        let invoice = |n: &str, cents: i64, name: &str| BatchInvoice {
            invoice_number: n.to_string(),
            load_number: format!("L-{n}"),
            idempotency_key: format!("b1:{n}"),
            amount: Money::from_cents(cents),
            invoice_date: "2026-11-30".into(),
            customer_id: "BRK-1".into(),
            customer_name: name.into(),
            customer_mc: Some("123456".into()),
            customer_dot: None,
            customer_factoring_id: None,
            po_number: None,
            reference_number: Some("WEX-9".into()),
            truck: None,
            pickup: None,
            delivery: None,
            pickup_city: None,
            pickup_state: None,
            delivery_city: None,
            delivery_state: None,
            delivered_at: None,
            packet: packet.clone(),
            pod: None,
            rate_confirmation: None,
            extra_documents: Vec::new(),
            held_reference: None,
        };
        Batch {
            id: "acme-east-b1".into(),
            number: 7,
            date: "2026-11-30".into(),
            uid: Some("3f9a0c2e11223344".into()),
            seller: BatchSeller { id: "acme-east".into(), name: "ACME".into(), usdot: None, mc: None },
            provider: find_provider(provider).expect("provider"),
            invoices: vec![invoice("AE-1", 245_000, "=HYPERLINK(\"x\")"), invoice("AE-2", 100_050, "Blue, Inc.")],
        }
    }

    #[test]
    fn csv_escapes_formulas_and_totals_add_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let packet = dir.path().join("p.pdf");
        std::fs::write(&packet, b"%PDF-1.7").expect("write");
        let b = batch("capital_depot", packet);
        let files = batch_files(&b).expect("files");
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["AE-1_3f9a0c2e.pdf", "AE-2_3f9a0c2e.pdf", "acme-east_20261130_7_3f9a0c2e.csv"]);
        let csv = String::from_utf8(files[2].bytes.clone()).expect("utf-8");
        assert!(csv.contains(",2450.00,AE-1_3f9a0c2e.pdf"), "the document column names the packet: {csv}");
        assert!(csv.contains("'=HYPERLINK"), "{csv}");
        assert!(csv.contains("\"Blue, Inc.\""), "{csv}");
        assert!(csv.contains("TOTAL 2 invoices,,,,,,,3450.50,"), "{csv}");
    }

    #[test]
    fn zip_layouts_hold_the_packets_and_the_csv() {
        let dir = tempfile::tempdir().expect("tempdir");
        let packet = dir.path().join("p.pdf");
        std::fs::write(&packet, b"%PDF-1.7 packet").expect("write");
        let files = batch_files(&batch("wex_fleetone_ftp", packet)).expect("files");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].name, "acme-east_20261130_7_3f9a0c2e.zip");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(files[0].bytes.clone())).expect("zip");
        let mut names: Vec<String> =
            (0..archive.len()).map(|i| archive.by_index(i).expect("entry").name().expect("name").to_string()).collect();
        names.sort();
        assert_eq!(names, ["AE-1_3f9a0c2e.pdf", "AE-2_3f9a0c2e.pdf", "acme-east_20261130_7_3f9a0c2e.csv"]);
        let mut csv = String::new();
        std::io::Read::read_to_string(
            &mut archive.by_name("acme-east_20261130_7_3f9a0c2e.csv").expect("csv"),
            &mut csv,
        )
        .expect("read");
        assert!(csv.starts_with("Reference Number,"), "{csv}");
        assert!(csv.contains("WEX-9,AE-1"), "{csv}");
    }

    #[test]
    fn stems_and_packets_carry_the_uid_and_batches_without_one_keep_the_old_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut b = batch("capital_depot", dir.path().join("p.pdf"));
        assert_eq!(batch_stem(&b), "acme-east_20261130_7_3f9a0c2e");
        assert_eq!(packet_name(&b, &b.invoices[0]), "AE-1_3f9a0c2e.pdf");
        b.uid = None;
        assert_eq!(batch_stem(&b), "acme-east_20261130_7");
        assert_eq!(packet_name(&b, &b.invoices[0]), "AE-1.pdf");
    }
}
