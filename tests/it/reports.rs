//! Purchase and payment reports: messy CSV and XLSX files written by the tests, applied by the
//! rules of docs/design.md §8 on both backends, through `ingest` and through the watched inboxes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use factord::domain::{ExceptionKind, LoadStatus};
use factord::reports::{IngestSummary, ReportKind, ReportOutcome, ReportsInbox, ingest_file};
use factord::store::Store;
use rust_xlsxwriter::{Format, Workbook};
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::harness::{Backend, TestEnv};
use crate::seed::{Seed, seed};

const PROVIDER: &str = "capital_depot";

fn invoiced<'a>(prefix: &'a str, count: i64) -> Seed<'a> {
    Seed { subsidiary: "acme-east", provider: PROVIDER, prefix, count, amount_cents: 100_000, status: "Invoiced" }
}

async fn status_of(store: &Store, load: &str) -> LoadStatus {
    store.load_detail(load).await.expect("detail").expect("load exists").load.status
}

async fn exceptions_of(store: &Store, load: &str) -> Vec<(ExceptionKind, String)> {
    let detail = store.load_detail(load).await.expect("detail").expect("load exists");
    detail.exceptions.into_iter().map(|e| (e.kind, e.detail)).collect()
}

async fn history_len(store: &Store, load: &str) -> usize {
    store.load_detail(load).await.expect("detail").expect("load exists").history.len()
}

async fn ingest(env: &TestEnv, path: &Path, kind: Option<ReportKind>) -> IngestSummary {
    ingest_file(&env.store, &env.settings, path, PROVIDER, kind).await.expect("ingest")
}

fn bytes_file(env: &TestEnv, name: &str, bytes: &[u8]) -> PathBuf {
    let path = env.path(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

/// Purchase rows recorded for a load: (advance, fee, reserve, purchase date, schedule).
async fn purchase_of(
    store: &Store,
    load: &str,
) -> Option<(Option<i64>, Option<i64>, Option<i64>, Option<String>, Option<String>)> {
    let sql = "SELECT p.advance_cents, p.fee_cents, p.reserve_cents, p.purchase_date, p.schedule_number \
               FROM purchases p JOIN loads l ON l.id = p.load_id WHERE l.load_number = $1";
    match store {
        Store::Postgres(pool) => sqlx::query_as(sql).bind(load).fetch_optional(pool).await.expect("purchase"),
        Store::Sqlite(pool) => sqlx::query_as(sql).bind(load).fetch_optional(pool).await.expect("purchase"),
    }
}

/// The result file's `total` lines, as (label, count).
fn totals(result: &str) -> Vec<(String, usize)> {
    result
        .lines()
        .filter_map(|line| line.strip_prefix("total,,,"))
        .map(|rest| {
            let (label, n) = rest.split_once(',').expect("label,count");
            (label.to_string(), n.parse().expect("count"))
        })
        .collect()
}

/// Status words go through the provider's map: whole words, ops' config on top of the shipped
/// table; a word the map does not know moves nothing, raises `unrecognised_status` with the
/// factor's words and is listed in the result file.
async fn factor_statuses_are_mapped_never_guessed(backend: Backend) {
    let config = "[provider.capital_depot.statuses]\nheld = [\"On Hold - missing BOL\"]\npurchased = [\"Bought\"]\n";
    let Some(env) = TestEnv::with_config(backend, config).await else { return };
    seed(&env.store, &invoiced("S-", 7)).await;
    let csv = "Invoice #,Status\n\
               S-INV000001,Not Funded\n\
               S-INV000002,Not Approved\n\
               S-INV000003,Waiting on broker approval\n\
               S-INV000004,  on hold - MISSING bol \n\
               S-INV000005,Bought\n\
               S-INV000006,Pending\n\
               S-INV000007,Paid\n";
    let path = bytes_file(&env, "statuses.csv", csv.as_bytes());
    let summary = ingest(&env, &path, Some(ReportKind::Purchase)).await;
    assert_eq!(summary.refused, None);
    assert_eq!((summary.rows, summary.applied, summary.skipped, summary.rejected), (7, 4, 1, 2), "{summary:#?}");
    let expected = [
        ("S-000001", LoadStatus::Invoiced, Some(ExceptionKind::Rejected)),
        ("S-000002", LoadStatus::Invoiced, Some(ExceptionKind::UnrecognisedStatus)),
        ("S-000003", LoadStatus::Invoiced, Some(ExceptionKind::UnrecognisedStatus)),
        ("S-000004", LoadStatus::Invoiced, Some(ExceptionKind::Held)),
        ("S-000005", LoadStatus::Financed, None),
        ("S-000006", LoadStatus::Invoiced, None),
        ("S-000007", LoadStatus::Completed, None),
    ];
    for (load, status, exception) in expected {
        assert_eq!(status_of(&env.store, load).await, status, "{load}");
        let exceptions = exceptions_of(&env.store, load).await;
        assert_eq!(
            exceptions.iter().map(|e| e.0).collect::<Vec<_>>(),
            exception.into_iter().collect::<Vec<_>>(),
            "{load}"
        );
    }
    let unrecognised = exceptions_of(&env.store, "S-000002").await;
    assert!(unrecognised[0].1.contains("`Not Approved`"), "the factor's words are kept: {unrecognised:?}");
    assert!(
        summary
            .result_csv
            .lines()
            .any(|l| l.contains("S-INV000003") && l.contains("not in capital_depot's status map")),
        "{}",
        summary.result_csv
    );
    // A later row the map knows clears the flag.
    let later = bytes_file(&env, "statuses-2.csv", b"Invoice #,Status\nS-INV000002,Funded\n");
    let summary = ingest(&env, &later, Some(ReportKind::Purchase)).await;
    assert_eq!(summary.applied, 1, "{summary:#?}");
    assert_eq!(status_of(&env.store, "S-000002").await, LoadStatus::Financed);
    assert!(exceptions_of(&env.store, "S-000002").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factor_statuses_are_mapped_never_guessed_sqlite() {
    factor_statuses_are_mapped_never_guessed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factor_statuses_are_mapped_never_guessed_postgres() {
    factor_statuses_are_mapped_never_guessed(Backend::Postgres).await;
}

both_backends!(a_messy_csv_purchase_report_finances_loads_to_the_cent, |env| {
    seed(&env.store, &invoiced("P-", 4)).await;
    seed(&env.store, &Seed { status: "Queued", ..invoiced("Q-", 1) }).await;
    seed(&env.store, &Seed { provider: "triumph", ..invoiced("T-", 1) }).await;
    // BOM, CRLF, a title line, a quoted field with a comma and a newline, `$1,234.50`,
    // `(12.00)`, a blank line, rows that must be rejected, a held row, and a totals line.
    let csv = "\u{feff}Capital Depot — Purchase Report 11/30/2026\r\n\
               \r\n\
               Invoice #,Load #,Face Value,Funded Amount,Discount Fee,Escrow,Date Funded,Schedule #,Status,Notes\r\n\
               P-INV000001,P-000001,\"$1,000.00\",\"$1,234.50\",(12.00),$0.50,11/30/2026,S-77,Funded,\"late, but\r\nfine\"\r\n\
               P-INV000002,,1000,970,30,0,2026-11-29,S-77,,\r\n\
               ,P-000003,$999.99,900.00,30.00,69.99,11/30/26,S-78,Purchased,matched by load number\r\n\
               P-INV000004,P-000004,1000.00,,,,,,On Hold,missing BOL\r\n\
               \r\n\
               X-INV999999,,500.00,400.00,10.00,90.00,11/30/2026,S-78,Funded,factored outside factord\r\n\
               Q-INV000001,Q-000001,1000.00,900.00,30.00,70.00,11/30/2026,S-78,Funded,still queued\r\n\
               T-INV000001,T-000001,1000.00,900.00,30.00,70.00,11/30/2026,S-78,Funded,another factor\r\n\
               Total,,\"$5,499.99\",,,,,,,\r\n";
    let path = bytes_file(&env, "purchase.csv", csv.as_bytes());
    let summary = ingest(&env, &path, None).await;
    assert_eq!(summary.refused, None);
    assert_eq!(summary.kind, Some(ReportKind::Purchase), "told by its columns");
    assert_eq!((summary.rows, summary.applied, summary.skipped, summary.rejected), (7, 4, 0, 3), "{summary:#?}");

    for load in ["P-000001", "P-000002", "P-000003"] {
        assert_eq!(status_of(&env.store, load).await, LoadStatus::Financed, "{load}");
    }
    assert_eq!(
        purchase_of(&env.store, "P-000001").await,
        Some((Some(123_450), Some(-1200), Some(50), Some("2026-11-30".into()), Some("S-77".into())))
    );
    assert_eq!(
        purchase_of(&env.store, "P-000003").await,
        Some((Some(90_000), Some(3000), Some(6999), Some("2026-11-30".into()), Some("S-78".into())))
    );
    // Held: stays Invoiced with the factor's text.
    assert_eq!(status_of(&env.store, "P-000004").await, LoadStatus::Invoiced);
    let held = exceptions_of(&env.store, "P-000004").await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].0, ExceptionKind::Held);
    assert!(held[0].1.contains("`On Hold`"), "{held:?}");
    // Rejected rows change nothing.
    assert_eq!(status_of(&env.store, "Q-000001").await, LoadStatus::Queued);
    assert_eq!(status_of(&env.store, "T-000001").await, LoadStatus::Invoiced);
    let reasons: Vec<&str> = summary
        .outcomes
        .iter()
        .filter(|o| o.outcome == factord::reports::apply::Outcome::Rejected)
        .map(|o| o.reason.as_ref())
        .collect();
    assert!(reasons[0].contains("unknown invoice X-INV999999"), "{reasons:?}");
    assert!(reasons[1].contains("Queued"), "{reasons:?}");
    assert!(reasons[2].contains("submitted to triumph"), "{reasons:?}");
    // The history names the file and row.
    let detail = env.store.load_detail("P-000001").await.expect("detail").expect("load");
    let last = detail.history.last().expect("history");
    assert_eq!((last.from, last.to), (Some(LoadStatus::Invoiced), LoadStatus::Financed));
    assert_eq!(last.cause, "purchase report purchase.csv row 4");
    // The result file's totals add up and the totals line is a note, not a row.
    assert_eq!(
        totals(&summary.result_csv),
        vec![("rows".into(), 7), ("applied".into(), 4), ("skipped".into(), 0), ("rejected".into(), 3)]
    );
    assert!(summary.result_csv.contains("totals line, not applied"), "{}", summary.result_csv);
    // `loads show` data: the report row that moved the load.
    let id = detail.load.id;
    let rows = env.store.load_report_rows(id).await.expect("report rows");
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].kind.as_str(), rows[0].file_name.as_str(), rows[0].row), ("purchase", "purchase.csv", 4));
    assert!(rows[0].detail.contains("advance 1234.50"), "{:?}", rows[0]);

    // A later purchase row for the held load finances it and clears the flag.
    let later =
        bytes_file(&env, "purchase-2.csv", b"Invoice Number,Advance\nP-INV000004,950.00\nP-INV000001,1234.50\n");
    let summary = ingest(&env, &later, Some(ReportKind::Purchase)).await;
    assert_eq!((summary.applied, summary.skipped), (1, 1), "{summary:#?}");
    assert_eq!(status_of(&env.store, "P-000004").await, LoadStatus::Financed);
    assert!(exceptions_of(&env.store, "P-000004").await.is_empty());
});

both_backends!(payments_complete_loads_or_leave_them_short_paid, |env| {
    seed(&env.store, &invoiced("M-", 3)).await;
    let purchase = bytes_file(&env, "p.csv", b"Invoice,Advance\nM-INV000001,900\nM-INV000002,900\n");
    assert_eq!(ingest(&env, &purchase, None).await.applied, 2);

    // M-1 paid in two parts in one file; M-2 short; M-3 still Invoiced: both moves at once.
    let payment = bytes_file(
        &env,
        "pay.csv",
        b"Invoice No,Amount Paid,Date Paid,Check #\r\n\
          M-INV000001,400.00,11/30/2026,1001\r\n\
          M-INV000001,600.00,11/30/2026,1002\r\n\
          M-INV000002,\"$750.25\",2026-11-30,1003\r\n\
          M-INV000003,1000.00,2026-11-30,ACH-9\r\n",
    );
    let summary = ingest(&env, &payment, None).await;
    assert_eq!(summary.kind, Some(ReportKind::Payment));
    assert_eq!((summary.rows, summary.applied, summary.skipped, summary.rejected), (4, 4, 0, 0), "{summary:#?}");
    assert_eq!(status_of(&env.store, "M-000001").await, LoadStatus::Completed);
    assert_eq!(status_of(&env.store, "M-000002").await, LoadStatus::Financed);
    let short = exceptions_of(&env.store, "M-000002").await;
    assert_eq!(short.len(), 1);
    assert_eq!(short[0].0, ExceptionKind::ShortPaid);
    assert!(short[0].1.contains("paid $750.25 of $1,000.00"), "{short:?}");
    assert_eq!(status_of(&env.store, "M-000003").await, LoadStatus::Completed);
    let detail = env.store.load_detail("M-000003").await.expect("detail").expect("load");
    let moves: Vec<_> = detail.history.iter().skip(1).map(|h| (h.from, h.to)).collect();
    assert_eq!(
        moves,
        vec![(Some(LoadStatus::Invoiced), LoadStatus::Financed), (Some(LoadStatus::Financed), LoadStatus::Completed)],
        "a payment for an Invoiced load records both moves"
    );

    // The rest of M-2 arrives in a cumulative report that repeats the first payment.
    let rest = bytes_file(
        &env,
        "pay-2.csv",
        b"Invoice No,Amount Paid,Date Paid,Check #\nM-INV000002,750.25,2026-11-30,1003\nM-INV000002,249.75,2026-12-01,1004\n",
    );
    let summary = ingest(&env, &rest, None).await;
    assert_eq!((summary.applied, summary.skipped), (1, 1), "{summary:#?}");
    assert_eq!(status_of(&env.store, "M-000002").await, LoadStatus::Completed);
    assert!(exceptions_of(&env.store, "M-000002").await.is_empty(), "short_paid cleared");
});

// Abbreviated headers (docs/design.md §8 aliases as factors shorten them) are read as their fields; a
// file with no invoice or load column is refused naming what was looked for.
both_backends!(abbreviated_report_headers_are_recognised, |env| {
    seed(&env.store, &invoiced("AB-", 2)).await;
    let purchase = bytes_file(
        &env,
        "abbreviated-purchase.csv",
        b"Inv. #,Ld No,Inv Amt,Adv Amt,Disc Fee,Reserve Amt,Fund Dt,Sched #
          AB-INV000001,AB-000001,1000.00,900.00,30.00,70.00,11/30/2026,S-9
          AB-INV000002,AB-000002,1000.00,900.00,30.00,70.00,11/30/2026,S-9
",
    );
    let summary = ingest(&env, &purchase, None).await;
    assert_eq!(summary.refused, None);
    assert_eq!(summary.kind, Some(ReportKind::Purchase), "told by its abbreviated columns");
    assert_eq!(summary.applied, 2, "{summary:#?}");
    assert!(!summary.result_csv.contains("columns not used"), "every column is recognised: {}", summary.result_csv);
    assert_eq!(
        purchase_of(&env.store, "AB-000001").await,
        Some((Some(90_000), Some(3000), Some(7000), Some("2026-11-30".into()), Some("S-9".into())))
    );

    let payment = bytes_file(
        &env,
        "abbreviated-payment.csv",
        b"Invoice Num,Pmt Amt,Pmt Dt,Check Ref
AB-INV000001,1000.00,12/01/2026,CHK-1
AB-INV000002,400.00,12/01/2026,CHK-2
",
    );
    let summary = ingest(&env, &payment, None).await;
    assert_eq!(summary.kind, Some(ReportKind::Payment));
    assert_eq!(summary.applied, 2, "{summary:#?}");
    assert_eq!(status_of(&env.store, "AB-000001").await, LoadStatus::Completed);
    assert_eq!(status_of(&env.store, "AB-000002").await, LoadStatus::Financed);

    let no_key = bytes_file(
        &env,
        "no-key.csv",
        b"Debtor,Adv Amt
Blue,900.00
",
    );
    let reason = ingest(&env, &no_key, None).await.refused.expect("refused");
    for needle in ["invoice_number: invoice number, invoice #", "load_number: load number, load #", "Inv, No, Num"] {
        assert!(reason.contains(needle), "{needle} missing in {reason}");
    }
});

/// An XLSX report as factors send them: a title row and a date line above the header,
/// invoice numbers with leading zeros as text and as numbers, amounts as numbers, dates as
/// date cells, as serial numbers and as text.
fn purchase_workbook(path: &Path, date_1904: bool) {
    let mut workbook = Workbook::new();
    let date = Format::new().set_num_format("mm/dd/yyyy");
    let sheet = workbook.add_worksheet();
    sheet.set_name("Purchases").expect("name");
    sheet.write_string(0, 0, "Capital Depot Purchase Report").expect("title");
    sheet.write_string(1, 0, "Run 11/30/2026").expect("run line");
    for (col, header) in
        ["Invoice Number", "Face Amount", "Advance", "Fee", "Reserve", "Purchase Date", "Batch #"].iter().enumerate()
    {
        sheet.write_string(3, u16::try_from(col).expect("a column"), *header).expect("header");
    }
    // 2026-11-30 is serial 46356 in the 1900 system and 44894 in the 1904 system.
    let serial = if date_1904 { 44_894.0 } else { 46_356.0 };
    sheet.write_string(4, 0, "000042").expect("text invoice");
    sheet.write_number(4, 1, 1000.0).expect("amount");
    sheet.write_number(4, 2, 970.5).expect("advance");
    sheet.write_number(4, 3, 29.5).expect("fee");
    sheet.write_number(4, 4, 0.0).expect("reserve");
    sheet.write_number_with_format(4, 5, serial, &date).expect("date cell");
    sheet.write_number(4, 6, 17.0).expect("batch");
    sheet.write_string(5, 0, "000043").expect("text invoice");
    sheet.write_number(5, 2, 900.0).expect("advance");
    sheet.write_string(5, 5, "11/29/2026").expect("text date");
    sheet.write_number(6, 0, 44.0).expect("numeric invoice loses nothing it had");
    sheet.write_number(6, 2, 800.0).expect("advance");
    if !date_1904 {
        sheet.write_number(6, 5, 46_355.0).expect("bare serial");
    }
    sheet.write_string(8, 0, "Total").expect("totals");
    sheet.write_number(8, 2, 2670.5).expect("total");
    workbook.save(path).expect("save xlsx");
    if date_1904 {
        set_1904_epoch(path);
    }
}

/// Rewrites a workbook to the 1904 date system (`<workbookPr date1904="1">`), as Excel for
/// Mac used to save them; the cells keep their serials.
fn set_1904_epoch(path: &Path) {
    use std::io::{Read, Write};
    let bytes = std::fs::read(path).expect("read xlsx");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).expect("entry");
        let name = entry.name().expect("name").to_string();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("inflate");
        if name == "xl/workbook.xml" {
            let text =
                String::from_utf8(content).expect("xml").replacen("<workbookPr", "<workbookPr date1904=\"1\"", 1);
            assert!(text.contains("date1904"), "{text}");
            content = text.into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default()).expect("start");
        out.write_all(&content).expect("write");
    }
    let bytes = out.finish().expect("finish").into_inner();
    std::fs::write(path, bytes).expect("write xlsx");
}

both_backends!(an_xlsx_report_with_a_title_row_serial_dates_and_leading_zeros, |env| {
    // Invoice numbers that are numeric with leading zeros, as some factors print them.
    for (number, load) in [("000042", "X-42"), ("000043", "X-43"), ("44", "X-44")] {
        seed(&env.store, &Seed { count: 1, ..invoiced(load, 1) }).await;
        rename_invoice(&env.store, &format!("{load}INV000001"), number).await;
    }
    let path = env.path("purchases.xlsx");
    purchase_workbook(&path, false);
    let summary = ingest(&env, &path, None).await;
    assert_eq!(summary.refused, None, "{summary:#?}");
    assert_eq!((summary.rows, summary.applied, summary.rejected), (3, 3, 0), "{summary:#?}");
    assert_eq!(
        purchase_of(&env.store, "X-42000001").await,
        Some((Some(97_050), Some(2950), Some(0), Some("2026-11-30".into()), Some("17".into())))
    );
    assert_eq!(purchase_of(&env.store, "X-43000001").await.and_then(|p| p.3), Some("2026-11-29".into()));
    assert_eq!(purchase_of(&env.store, "X-44000001").await.and_then(|p| p.3), Some("2026-11-29".into()));
});

/// Gives a seeded load another invoice number.
async fn rename_invoice(store: &Store, from: &str, to: &str) {
    let sql = "UPDATE loads SET invoice_number = $2 WHERE invoice_number = $1";
    let affected = match store {
        Store::Postgres(pool) => {
            sqlx::query(sql).bind(from).bind(to).execute(pool).await.expect("rename").rows_affected()
        }
        Store::Sqlite(pool) => {
            sqlx::query(sql).bind(from).bind(to).execute(pool).await.expect("rename").rows_affected()
        }
    };
    assert_eq!(affected, 1, "{from} → {to}");
}

#[tokio::test]
async fn an_xlsx_workbook_in_the_1904_date_system_gives_the_same_dates() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    seed(&env.store, &invoiced("D-", 1)).await;
    rename_invoice(&env.store, "D-INV000001", "000042").await;
    let path = env.path("mac.xlsx");
    purchase_workbook(&path, true);
    let summary = ingest(&env, &path, None).await;
    assert_eq!(summary.applied, 1, "{summary:#?}");
    assert_eq!(purchase_of(&env.store, "D-000001").await.and_then(|p| p.3), Some("2026-11-30".into()));
}

both_backends!(a_malformed_file_is_refused_whole_and_nothing_changes, |env| {
    seed(&env.store, &invoiced("B-", 3)).await;
    let path = bytes_file(
        &env,
        "bad.csv",
        b"Invoice Number,Advance,Purchase Date\nB-INV000001,900.00,11/30/2026\nB-INV000002,9OO.00,11/30/2026\nB-INV000003,900.00,11/30/2026\n",
    );
    let summary = ingest(&env, &path, None).await;
    let reason = summary.refused.clone().expect("refused");
    assert!(reason.contains("row 3") && reason.contains("`Advance`") && reason.contains("9OO.00"), "{reason}");
    for load in ["B-000001", "B-000002", "B-000003"] {
        assert_eq!(status_of(&env.store, load).await, LoadStatus::Invoiced);
        assert_eq!(history_len(&env.store, load).await, 1);
    }
    // An unparseable date refuses too; so does a file with no invoice or load column.
    let bad_date =
        bytes_file(&env, "date.csv", b"Invoice Number,Advance,Purchase Date\nB-INV000001,900.00,31/11/2026\n");
    assert!(ingest(&env, &bad_date, None).await.refused.expect("refused").contains("31/11/2026"));
    let no_key = bytes_file(&env, "nokey.csv", b"Customer,Advance\nBlue,900.00\n");
    assert!(ingest(&env, &no_key, None).await.refused.expect("refused").contains("no header row"));
    let ambiguous = bytes_file(&env, "both.csv", b"Invoice,Advance,Amount Paid\nB-INV000001,900,900\n");
    assert!(ingest(&env, &ambiguous, None).await.refused.expect("refused").contains("cannot tell"));
    assert_eq!(status_of(&env.store, "B-000001").await, LoadStatus::Invoiced);
    // `status` lists the refused files.
    let files = env.store.recent_report_files(10).await.expect("files");
    assert_eq!(files.iter().filter(|f| f.refused.is_some()).count(), 4, "{files:#?}");
});

#[tokio::test]
async fn windows_1252_reports_when_configured_and_bad_bytes_refused() {
    let extra = "[provider.capital_depot.reports]\nencoding = \"windows-1252\"\ndelimiter = \";\"\n";
    let env = TestEnv::with_config(Backend::Sqlite, extra).await.expect("env");
    seed(&env.store, &invoiced("W-", 2)).await;
    // "Café Frères" and "€" in Windows-1252, semicolon-delimited.
    let good = b"Invoice Number;Advance;Notes\r\nW-INV000001;900,00 ;x\r\n";
    let path = bytes_file(&env, "w-bad-amount.csv", good);
    assert!(ingest(&env, &path, None).await.refused.is_some(), "`900,00` is not an amount");
    let good = b"Invoice Number;Advance;Notes\r\nW-INV000001;900.00;Caf\xe9 Fr\xe8res \x80\r\n";
    let summary = ingest(&env, &bytes_file(&env, "w.csv", good), None).await;
    assert_eq!((summary.applied, summary.refused.as_deref()), (1, None), "{summary:#?}");
    assert_eq!(status_of(&env.store, "W-000001").await, LoadStatus::Financed);
    // 0x81 is not a Windows-1252 character: the file is refused, naming the line.
    let bad = b"Invoice Number;Advance\r\nW-INV000002;900.00\r\nW-INV000003;\x81\r\n";
    let summary = ingest(&env, &bytes_file(&env, "w2.csv", bad), None).await;
    let reason = summary.refused.expect("refused");
    assert!(reason.contains("0x81") && reason.contains("line 3"), "{reason}");
    assert_eq!(status_of(&env.store, "W-000002").await, LoadStatus::Invoiced);
}

/// Drops `bytes` as `name` into `folder` and runs inbox passes until it is taken.
async fn drop_and_process(
    env: &TestEnv,
    inbox: &mut ReportsInbox,
    folder: &str,
    name: &str,
    bytes: &[u8],
) -> ReportOutcome {
    let dir = env.path(folder);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(name), bytes).expect("drop");
    let shutdown = CancellationToken::new();
    let t0 = Instant::now();
    let mut outcomes = inbox.run_once(&env.store, &env.settings, t0, &shutdown).await.expect("first pass");
    if outcomes.is_empty() {
        let later = t0 + env.settings.intake.quiet_period + Duration::from_millis(1);
        outcomes = inbox.run_once(&env.store, &env.settings, later, &shutdown).await.expect("second pass");
    }
    assert_eq!(outcomes.len(), 1, "{outcomes:#?}");
    outcomes.remove(0)
}

both_backends!(the_same_report_dropped_again_or_renamed_changes_nothing, |env| {
    seed(&env.store, &invoiced("R-", 2)).await;
    let mut inbox = ReportsInbox::new(&env.settings);
    let report = b"Invoice Number,Advance\nR-INV000001,900.00\nR-INV000002,800.00\nR-INV000404,1.00\n";
    let first = drop_and_process(&env, &mut inbox, "inbox/capital_depot/purchase", "p.csv", report).await;
    let ReportOutcome::Archived { archived, summary } = first else { panic!("archived: {first:?}") };
    assert_eq!((summary.applied, summary.rejected), (2, 1), "unknown invoices are rejected rows, not a refused file");
    let result = std::fs::read_to_string(format!("{}.result.csv", archived.display())).expect("result file");
    assert!(result.contains("R-INV000404") && result.contains("unknown invoice"), "{result}");

    for (folder, name) in [("inbox/capital_depot/purchase", "p.csv"), ("inbox/capital_depot", "renamed.csv")] {
        let again = drop_and_process(&env, &mut inbox, folder, name, report).await;
        let ReportOutcome::Archived { summary, archived } = again else { panic!("archived: {again:?}") };
        assert_eq!(summary.duplicate_of.as_deref(), Some("p.csv"));
        assert_eq!(summary.applied, 0);
        let result = std::fs::read_to_string(format!("{}.result.csv", archived.display())).expect("result file");
        assert!(result.starts_with("same content as p.csv"), "{result}");
    }
    for load in ["R-000001", "R-000002"] {
        assert_eq!(status_of(&env.store, load).await, LoadStatus::Financed);
        assert_eq!(history_len(&env.store, load).await, 2, "one move, never two");
    }
    assert!(std::fs::read_dir(env.path("inbox/capital_depot/purchase/processing")).expect("dir").next().is_none());
});

both_backends!(a_report_still_being_written_is_not_read_until_it_holds_still, |env| {
    seed(&env.store, &invoiced("S-", 2)).await;
    let mut inbox = ReportsInbox::new(&env.settings);
    let shutdown = CancellationToken::new();
    let dir = env.path("inbox/capital_depot/payment");
    inbox.run_once(&env.store, &env.settings, Instant::now(), &shutdown).await.expect("creates folders");
    let file = dir.join("pay.csv");
    std::fs::write(&file, "Invoice Number,Amount Paid\nS-INV000001,1000.00\n").expect("first part");
    let t0 = Instant::now();
    let quiet = env.settings.intake.quiet_period;
    assert!(inbox.run_once(&env.store, &env.settings, t0, &shutdown).await.expect("pass").is_empty());
    // The writer goes on: the quiet period starts again.
    let mut handle = std::fs::OpenOptions::new().append(true).open(&file).expect("open");
    std::io::Write::write_all(&mut handle, b"S-INV000002,1000.00\n").expect("second part");
    drop(handle);
    let outcomes = inbox.run_once(&env.store, &env.settings, t0 + quiet, &shutdown).await.expect("pass");
    assert!(outcomes.is_empty(), "taken while still growing: {outcomes:#?}");
    let outcomes = inbox
        .run_once(&env.store, &env.settings, t0 + quiet * 2 + Duration::from_millis(1), &shutdown)
        .await
        .expect("pass");
    assert_eq!(outcomes.len(), 1);
    let ReportOutcome::Archived { summary, .. } = &outcomes[0] else { panic!("{outcomes:?}") };
    assert_eq!(summary.applied, 2, "both rows were read: {summary:#?}");
    assert_eq!(status_of(&env.store, "S-000002").await, LoadStatus::Completed);
});

both_backends!(a_refused_inbox_file_goes_to_failed_with_its_reason, |env| {
    let mut inbox = ReportsInbox::new(&env.settings);
    let outcome = drop_and_process(&env, &mut inbox, "inbox/capital_depot", "what.csv", b"Invoice,Amount\nX,1\n").await;
    let ReportOutcome::Refused { moved_to, summary } = outcome else { panic!("refused: {outcome:?}") };
    assert!(summary.refused.as_deref().is_some_and(|r| r.contains("cannot tell")));
    assert_eq!(moved_to, env.path("inbox/capital_depot/failed/what.csv"));
    let error = std::fs::read_to_string(env.path("inbox/capital_depot/failed/what.csv.error.txt")).expect("error file");
    assert!(error.contains("cannot tell a purchase report from a payment report"), "{error}");
});

// --- the process: `factord ingest`, zip bombs, kill -9 during an ingest ----------------------

const BIN: &str = env!("CARGO_BIN_EXE_factord");

fn factord(env: &TestEnv, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    command.current_dir(env.dir.path()).arg("--config").arg(&env.config_path).args(args);
    command
}

both_backends!(the_ingest_command_prints_its_summary_as_json, |env| {
    seed(&env.store, &invoiced("J-", 2)).await;
    let path = bytes_file(&env, "pay.csv", b"Invoice Number,Payment Amount\nJ-INV000001,1000.00\nJ-INV000404,5.00\n");
    let output = factord(&env, &["ingest", path.to_str().expect("path"), "--provider", PROVIDER, "--json"])
        .output()
        .expect("run ingest");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["file"], "pay.csv");
    assert_eq!(json["provider"], PROVIDER);
    assert_eq!(json["kind"], "payment");
    assert_eq!((json["rows"].as_u64(), json["applied"].as_u64()), (Some(2), Some(1)));
    assert_eq!((json["skipped"].as_u64(), json["rejected"].as_u64()), (Some(0), Some(1)));
    assert!(json["refused"].is_null());
    assert_eq!(status_of(&env.store, "J-000001").await, LoadStatus::Completed);

    // `status --json` lists it; `loads show --json` shows the row that moved the load.
    let output = factord(&env, &["status", "--json"]).output().expect("status");
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).expect("status json");
    let reports = status["last_reports"].as_array().expect("last_reports");
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert_eq!((reports[0]["file"].as_str(), reports[0]["applied"].as_u64()), (Some("pay.csv"), Some(1)));
    let output = factord(&env, &["loads", "show", "J-000001", "--json"]).output().expect("show");
    let load: serde_json::Value = serde_json::from_slice(&output.stdout).expect("show json");
    assert_eq!(load["report_rows"][0]["file"], "pay.csv");
    assert_eq!(load["report_rows"][0]["row"], 2);

    // A refused file: exit 1, the reason in the JSON; a wrong provider or kind: exit 2.
    let bad = bytes_file(&env, "bad.csv", b"Invoice Number,Payment Amount\nJ-INV000002,ten dollars\n");
    let output = factord(&env, &["ingest", bad.to_str().expect("path"), "--provider", PROVIDER, "--json"])
        .output()
        .expect("run ingest");
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(json["refused"].as_str().is_some_and(|r| r.contains("ten dollars")), "{json}");
    let output = factord(&env, &["ingest", bad.to_str().expect("path"), "--provider", "nobody"]).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    let output = factord(&env, &["ingest", bad.to_str().expect("path"), "--provider", PROVIDER, "--kind", "refund"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
});

/// An XLSX whose shared strings inflate to `inflated` bytes of one letter: calamine would
/// hold them all in memory.
fn zip_bomb(path: &Path, inflated: usize) {
    use std::io::Write;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().large_file(inflated > u32::MAX as usize / 2);
    let small = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#,
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0"?><workbook><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
    ];
    for (name, text) in small {
        out.start_file(name, options).expect("start");
        out.write_all(text.as_bytes()).expect("write");
    }
    out.start_file("xl/sharedStrings.xml", options).expect("start");
    out.write_all(b"<sst><si><t>").expect("write");
    let chunk = vec![b'A'; 1 << 20];
    for _ in 0..inflated / chunk.len() {
        out.write_all(&chunk).expect("write");
    }
    out.write_all(b"</t></si></sst>").expect("write");
    let bytes = out.finish().expect("finish").into_inner();
    std::fs::write(path, bytes).expect("write bomb");
}

#[tokio::test]
async fn a_zip_bomb_is_refused_without_the_process_growing() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let bomb = env.path("bomb.xlsx");
    zip_bomb(&bomb, 512 << 20);
    let size = std::fs::metadata(&bomb).expect("bomb").len();
    assert!(size < 2 << 20, "the bomb is small on disk: {size} bytes");
    // GNU time reports the child's peak resident memory in KiB.
    let output = std::process::Command::new("/usr/bin/time")
        .args(["-f", "peak-kib %M", BIN, "--config"])
        .arg(&env.config_path)
        .args(["ingest", bomb.to_str().expect("path"), "--provider", PROVIDER, "--json"])
        .current_dir(env.dir.path())
        .output()
        .expect("run /usr/bin/time factord ingest (GNU time: apt-get install time)");
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(json["refused"].as_str().is_some_and(|r| r.contains("zip bomb")), "{json}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let peak_kib: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak-kib "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in {stderr}"));
    assert!(peak_kib < 100 * 1024, "peak resident memory {peak_kib} KiB for a refused bomb");
}

/// A purchase report for the seed's loads, every row funded.
fn purchase_csv(seed: &Seed<'_>) -> String {
    let mut csv = String::from("Invoice Number,Advance,Fee,Reserve,Purchase Date,Schedule #\n");
    for i in 1..=seed.count {
        csv.push_str(&format!("{},970.00,30.00,0.00,11/30/2026,S-{}\n", seed.invoice_number(i), i / 1000));
    }
    csv
}

async fn count(store: &Store, sql: &'static str) -> i64 {
    match store {
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.expect("count"),
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.expect("count"),
    }
}

both_backends!(a_daemon_killed_during_an_ingest_applies_every_row_exactly_once_after_restart, |env| {
    let loads = invoiced("K-", 20_000);
    seed(&env.store, &loads).await;
    let inbox = env.path("inbox/capital_depot/purchase");
    std::fs::create_dir_all(&inbox).expect("mkdir");
    let temp = inbox.join("big.csv.part");
    std::fs::write(&temp, purchase_csv(&loads)).expect("write");
    std::fs::rename(&temp, inbox.join("big.csv")).expect("drop");

    let log = |name: &str| std::fs::File::create(env.path(name)).expect("log file");
    let start = |name: &str| {
        factord(&env, &["run"])
            .stdin(std::process::Stdio::null())
            .stdout(log(&format!("{name}.out")))
            .stderr(log(&format!("{name}.err")))
            .spawn()
            .expect("start factord run")
    };
    let mut first = crate::harness::Running(start("first"));
    // Kill it the moment the file is taken, while the ingest is under way.
    let processing = inbox.join("processing/big.csv");
    crate::harness::wait_for(Duration::from_secs(30), "the file to be taken", || {
        let taken = processing.exists() || !inbox.join("big.csv").exists();
        async move { taken.then_some(()) }
    })
    .await;
    first.0.kill().expect("kill -9");
    first.0.wait().expect("reap");
    let financed = count(&env.store, "SELECT COUNT(*) FROM loads WHERE status = 'Financed'").await;
    assert!(financed == 0 || financed == 20_000, "all or nothing, not {financed}");
    eprintln!("killed with {financed} loads Financed");

    let mut second = crate::harness::Running(start("second"));
    let archive = env.path("archive/capital_depot");
    // The result file is written first, then the input moves: wait for the input itself.
    crate::harness::wait_for(Duration::from_secs(60), "the report to be archived", || {
        let done = std::fs::read_dir(&archive)
            .map(|d| d.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().ends_with("-big.csv")))
            .unwrap_or(false);
        async move { done.then_some(()) }
    })
    .await;
    second.0.kill().expect("stop");
    second.0.wait().expect("reap");

    assert_eq!(count(&env.store, "SELECT COUNT(*) FROM loads WHERE status = 'Financed'").await, 20_000);
    assert_eq!(
        count(
            &env.store,
            "SELECT COUNT(*) FROM load_history WHERE from_status = 'Invoiced' AND to_status = 'Financed'"
        )
        .await,
        20_000,
        "one move per load, never two"
    );
    assert_eq!(count(&env.store, "SELECT COUNT(*) FROM purchases").await, 20_000);
    assert_eq!(count(&env.store, "SELECT COUNT(*) FROM report_files WHERE refused IS NULL").await, 1);
    assert!(std::fs::read_dir(inbox.join("processing")).expect("dir").next().is_none(), "nothing left in processing");
});

both_backends!(loads_submitted_by_a_real_batch_are_financed_by_the_factors_report, |env| {
    let dir = env.path("documents");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("rc.pdf"), crate::pdfs::rate_confirmation("R", 1)).expect("rc");
    std::fs::write(dir.join("pod.pdf"), crate::pdfs::pod_with_jpeg("R", &crate::pdfs::scanned_jpeg(80, 40, 1)))
        .expect("pod");
    let rows = [
        "E-1,acme-east,BRK-1,Blue,123456,1250.00,,,pod.pdf,rc.pdf,PO-1,,",
        "E-2,acme-east,BRK-1,Blue,123456,800.00,,,pod.pdf,rc.pdf,PO-2,,",
    ];
    let file = env.write("loads.csv", &crate::harness::loads_csv(&rows));
    factord::intake::import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    factord::invoicing::run_once(&env.store, &env.settings, None, &CancellationToken::new()).await.expect("invoice");
    let report = factord::submit::run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches.len(), 1, "{report:#?}");
    let invoice = |load: &str| {
        let store = env.store.clone();
        let load = load.to_string();
        async move { store.load_detail(&load).await.expect("detail").expect("load").load.invoice_number.expect("invoice") }
    };
    let (first, second) = (invoice("E-1").await, invoice("E-2").await);
    let csv = format!("Invoice Number,Advance,Fee\n{first},1212.50,37.50\n");
    let summary = ingest(&env, &bytes_file(&env, "p.csv", csv.as_bytes()), None).await;
    assert_eq!(summary.applied, 1, "{summary:#?}");
    let csv = "Load #,Amount Paid,Reference\nE-1,1250.00,ACH-1\nE-2,800.00,ACH-2\n";
    let summary = ingest(&env, &bytes_file(&env, "pay.csv", csv.as_bytes()), None).await;
    assert_eq!(summary.applied, 2, "{summary:#?}");
    assert_eq!(status_of(&env.store, "E-1").await, LoadStatus::Completed);
    assert_eq!(status_of(&env.store, "E-2").await, LoadStatus::Completed, "{second} paid while Invoiced");
});

both_backends!(a_report_longer_than_one_statement_is_written_whole_and_in_file_order, |env| {
    // SQLite writes 1,000 rows per statement: 1,200 first payments and 1,100 second ones cross
    // two full statements and a shorter last one, for payments, history and exceptions alike.
    let loads = invoiced("W-", 1_200);
    seed(&env.store, &loads).await;
    let mut csv = String::from("Invoice No,Amount Paid,Date Paid,Check #\n");
    for i in 1..=1_200 {
        csv.push_str(&format!("{},400.00,11/30/2026,A-{i}\n", loads.invoice_number(i)));
    }
    for i in 1..=1_100 {
        csv.push_str(&format!("{},600.00,12/01/2026,B-{i}\n", loads.invoice_number(i)));
    }
    csv.push_str("W-INV999999,5.00,12/01/2026,Z-1\n");
    let summary = ingest(&env, &bytes_file(&env, "long.csv", csv.as_bytes()), None).await;
    assert_eq!((summary.rows, summary.applied, summary.rejected), (2_301, 2_300, 1));

    let scalar = |sql: &'static str| count(&env.store, sql);
    assert_eq!(scalar("SELECT COUNT(*) FROM loads WHERE status = 'Completed'").await, 1_100);
    assert_eq!(scalar("SELECT COUNT(*) FROM loads WHERE status = 'Financed'").await, 100);
    assert_eq!(scalar("SELECT COUNT(*) FROM payments").await, 2_300);
    assert_eq!(scalar("SELECT CAST(SUM(paid_cents) AS BIGINT) FROM payments").await, 1_200 * 40_000 + 1_100 * 60_000);
    assert_eq!(
        scalar("SELECT COUNT(*) FROM load_exceptions WHERE kind = 'short_paid' AND cleared_at IS NULL").await,
        100,
        "short_paid stays only on the loads paid once"
    );
    assert_eq!(scalar("SELECT COUNT(*) FROM load_history WHERE to_status IN ('Financed', 'Completed')").await, 2_300);
    // Each payment row records its own line of the file, across the statement boundaries.
    assert_eq!(
        scalar(
            "SELECT COUNT(*) FROM payments y JOIN loads l ON l.id = y.load_id \
             WHERE y.row_number = CAST(SUBSTR(l.load_number, 3) AS INTEGER) + \
             CASE WHEN y.payment_reference LIKE 'A-%' THEN 1 ELSE 1201 END"
        )
        .await,
        2_300
    );
    // History in file order: no load's Completed comes before its Financed.
    assert_eq!(
        scalar(
            "SELECT COUNT(*) FROM load_history f JOIN load_history c ON c.load_id = f.load_id \
             WHERE f.to_status = 'Financed' AND c.to_status = 'Completed' AND c.id < f.id"
        )
        .await,
        0
    );
    let detail = env.store.load_detail("W-001001").await.expect("detail").expect("load");
    let causes: Vec<&str> = detail.history.iter().map(|h| h.cause.as_str()).collect();
    assert!(causes.iter().any(|c| c.contains("long.csv row 1002")), "{causes:?}");
    assert!(causes.iter().any(|c| c.contains("long.csv row 2202")), "{causes:?}");
});

// A file is applied a chunk of rows at a time inside its one transaction: a load named on both
// sides of a chunk boundary sees its earlier row (the two payments add up, once each), and the
// counts and result file cover every row.
both_backends!(a_load_named_on_both_sides_of_a_chunk_boundary_sees_its_earlier_row, |env| {
    use factord::reports::stream::CHUNK_ROWS;
    seed(&env.store, &invoiced("C-", 1)).await;
    let mut text = String::from("Invoice No,Amount Paid,Date Paid,Check #\n");
    text.push_str("C-INV000001,400.00,2026-11-30,1001\n");
    // Rows for invoices factord never sent fill the first chunk and spill into the second.
    for i in 0..CHUNK_ROWS {
        text.push_str(&format!("X-{i:06},1.00,2026-11-30,X{i}\n"));
    }
    text.push_str("C-INV000001,600.00,2026-12-01,1002\n");
    text.push_str("C-INV000001,400.00,2026-11-30,1001\n");
    let file = bytes_file(&env, "pay-chunks.csv", text.as_bytes());
    let summary = ingest(&env, &file, Some(ReportKind::Payment)).await;
    let rows = CHUNK_ROWS + 3;
    assert_eq!((summary.rows, summary.applied, summary.skipped, summary.rejected), (rows, 2, 1, CHUNK_ROWS));
    assert_eq!(status_of(&env.store, "C-000001").await, LoadStatus::Completed, "400 + 600 across the boundary");
    assert!(exceptions_of(&env.store, "C-000001").await.is_empty(), "no short_paid left");
    let recorded = count(&env.store, "SELECT COUNT(*) FROM payments").await;
    assert_eq!(recorded, 2, "each payment once, the repeat skipped");
});

// A purchase report's later chunks are read beside its transaction on PostgreSQL (a second
// connection, which sees only what is committed): a load an earlier chunk read, named again
// chunks later, is read again in the transaction. So a purchase repeated two chunks on is
// skipped as already applied, and a factor's hold raised in the first chunk (no status moved)
// is cleared by its purchase in the third, on both backends.
both_backends!(a_load_named_again_chunks_later_sees_what_the_earlier_chunk_did, |env| {
    use factord::reports::stream::CHUNK_ROWS;
    seed(&env.store, &invoiced("B-", 3)).await;
    let mut text = String::from("Invoice #,Status\nB-INV000001,Purchased\nB-INV000003,On Hold\n");
    // Invoices factord never sent fill the first two chunks.
    for i in 0..2 * CHUNK_ROWS - 2 {
        text.push_str(&format!("X-{i:06},Purchased\n"));
    }
    text.push_str("B-INV000002,Purchased\nB-INV000001,Purchased\nB-INV000003,Purchased\n");
    let file = bytes_file(&env, "purchase-chunks.csv", text.as_bytes());
    let summary = ingest(&env, &file, Some(ReportKind::Purchase)).await;
    assert_eq!(summary.refused, None, "{summary:#?}");
    let rows = 2 * CHUNK_ROWS + 3;
    assert_eq!((summary.rows, summary.rejected), (rows, 2 * CHUNK_ROWS - 2));
    assert_eq!(
        (summary.applied, summary.skipped),
        (4, 1),
        "{:#?}",
        summary.outcomes.iter().take(3).collect::<Vec<_>>()
    );
    for load in ["B-000001", "B-000002", "B-000003"] {
        assert_eq!(status_of(&env.store, load).await, LoadStatus::Financed, "{load}");
    }
    assert!(exceptions_of(&env.store, "B-000003").await.is_empty(), "the factor's hold cleared by its purchase");
    assert_eq!(count(&env.store, "SELECT COUNT(*) FROM purchases").await, 3, "each purchase once");
});

// Texts a report brings (its file name, a schedule number) are stored as they
// are, backslashes, tabs, line breaks and all: PostgreSQL receives history and purchases in
// `COPY`'s text format, where those characters must be escaped.
both_backends!(report_texts_are_stored_byte_for_byte, |env| {
    seed(&env.store, &invoiced("T-", 1)).await;
    let schedule = "SCH\\7\t8\r\n9 \\N ü";
    let csv = format!("Invoice #,Schedule #,Status\nT-INV000001,\"{schedule}\",Funded\n");
    let name = "odd \\ name\t.csv";
    let path = bytes_file(&env, name, csv.as_bytes());
    let summary = ingest(&env, &path, Some(ReportKind::Purchase)).await;
    assert_eq!((summary.rows, summary.applied), (1, 1), "{summary:#?}");
    let (.., stored_schedule) = purchase_of(&env.store, "T-000001").await.expect("a purchase");
    assert_eq!(stored_schedule.as_deref(), Some(schedule));
    let detail = env.store.load_detail("T-000001").await.expect("detail").expect("load");
    let last = detail.history.last().expect("history");
    assert_eq!(last.cause, format!("purchase report {name} row 2"), "{:?}", detail.history);
});

// An ops hold is cleared only by ops (`loads release`): a factor's report that buys the load, or
// that holds it in its own words, leaves ops' hold and its reason as they were.
both_backends!(a_factors_report_never_clears_or_rewords_an_ops_hold, |env| {
    seed(&env.store, &invoiced("H-", 2)).await;
    for load in ["H-000001", "H-000002"] {
        factord::rework::hold(&env.store, load, "broker disputes the rate").await.expect("hold");
    }
    let csv = "Invoice #,Status\nH-INV000001,Purchased\nH-INV000002,On Hold\n";
    let path = bytes_file(&env, "ops-holds.csv", csv.as_bytes());
    let summary = ingest(&env, &path, Some(ReportKind::Purchase)).await;
    assert_eq!(summary.refused, None, "{summary:#?}");
    assert_eq!(status_of(&env.store, "H-000001").await, LoadStatus::Financed);
    for load in ["H-000001", "H-000002"] {
        assert_eq!(
            exceptions_of(&env.store, load).await,
            [(ExceptionKind::Held, "held by ops: broker disputes the rate".to_string())],
            "{load}"
        );
    }
    // The factor's own hold, with nothing of ops', is cleared by its next status as before.
    seed(&env.store, &invoiced("F-", 1)).await;
    let held = bytes_file(&env, "factor-hold.csv", b"Invoice #,Status\nF-INV000001,On Hold\n");
    ingest(&env, &held, Some(ReportKind::Purchase)).await;
    assert_eq!(exceptions_of(&env.store, "F-000001").await.len(), 1);
    let bought = bytes_file(&env, "factor-bought.csv", b"Invoice #,Status\nF-INV000001,Purchased\n");
    ingest(&env, &bought, Some(ReportKind::Purchase)).await;
    assert!(exceptions_of(&env.store, "F-000001").await.is_empty());
});
