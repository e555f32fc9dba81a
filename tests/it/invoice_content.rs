//! Invoice content (docs/design.md §7): loads imported from CSV and JSON with the bill-to block,
//! pickup date, shipper and consignee, BOL number, terms, line items and extra documents, invoiced
//! and read back with `pdftotext`; the packet order; amount/lines agreement; a multi-page
//! invoice; the remit-to block of factored and direct invoices; imported documents sent to OTR
//! as their own documents. On both backends.

use std::path::{Path, PathBuf};

use factord::config::{Environment, Settings};
use factord::domain::{LoadStatus, Money};
use factord::intake::{FileImport, import_load_file};
use factord::invoicing;
use factord::store::DocumentKind;
use factord::submit::run_once;
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::fakes::api::{Otr, lock, otr_server};
use crate::harness::TestEnv;
use crate::pdfs;
use crate::submit_faults::{detail, otr_config};

const NOA: &str = "Pay Capital Depot only.";

/// The harness config with acme-east's terms at 45 days and, when `remit_to` is given, Capital
/// Depot's payment address.
fn content_config(env: &TestEnv, remit_to: Option<&str>) -> (PathBuf, Settings) {
    let text = std::fs::read_to_string(&env.config_path).expect("config");
    let noa = format!("noa = \"{NOA}\"\n");
    let factoring = "[subsidiary.factoring]\nprovider = \"capital_depot\"\n";
    assert!(text.contains(&noa) && text.contains(factoring), "the harness config changed:\n{text}");
    let remit = remit_to.map(|r| format!("remit_to = \"\"\"{r}\"\"\"\n")).unwrap_or_default();
    let text = text.replacen(&noa, &format!("{noa}terms_days = 45\n"), 1).replacen(
        factoring,
        &format!("{factoring}{remit}"),
        1,
    );
    let path = env.write("config-content/factord.toml", &text);
    let settings = Settings::load(&path, &Environment::new()).expect("config is valid");
    assert_eq!(settings.subsidiary("acme-east").expect("acme-east").terms_days, 45);
    (path, settings)
}

/// Writes the documents every test load names: a rate confirmation, POD, BOL, lumper receipt
/// and two other documents, each with its own text.
fn write_documents(env: &TestEnv) {
    let dir = env.path("documents");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("rc.pdf"), pdfs::rate_confirmation("RCMARK", 1)).expect("rc");
    std::fs::write(dir.join("pod.pdf"), pdfs::pod_with_jpeg("PODMARK", &pdfs::scanned_jpeg(120, 80, 3))).expect("pod");
    for (name, marker) in
        [("bol.pdf", "BOLMARK"), ("lumper.pdf", "LUMPERMARK"), ("other1.pdf", "OTHERONE"), ("other2.pdf", "OTHERTWO")]
    {
        std::fs::write(dir.join(name), pdfs::rate_confirmation(marker, 1)).expect("document");
    }
}

const CSV_HEADER: &str = "load_number,subsidiary,customer_id,customer_name,customer_mc,amount,status,delivered_at,pod,\
rate_confirmation,po_number,pickup_city,pickup_state,delivery_city,delivery_state,bill_to_name,bill_to_address,\
pickup_date,shipper_name,consignee_name,bol_number,terms_days,linehaul,fuel_surcharge,detention,lumper,layover,tonu,\
other,bol,lumper_receipt,other_documents";

/// A CSV load with every new column: four charges (2,000 + 300 + 75 + 75 = $2,450.00; layover
/// empty, TONU zero), a two-line bill-to address, 15-day terms and every extra document.
fn csv_row(load: &str, amount: &str) -> String {
    format!(
        "{load},acme-east,BRK-1,Blue Brokerage,123456,{amount},Released,2026-11-20,pod.pdf,rc.pdf,PO-5521,Dallas,TX,\
         Memphis,TN,Blue Brokerage AP Dept,\"500 Dodge St\nOmaha, NE 68102\",2026-11-18,Acme Widgets Plant 3,\
         Memphis Cold Storage,BOL-88123,15,2000,300.00,75,$75.00,,0,,bol.pdf,lumper.pdf,other1.pdf;other2.pdf"
    )
}

async fn import(env: &TestEnv, settings: &Settings, name: &str, content: &str) -> FileImport {
    let file = env.write(name, content);
    import_load_file(&env.store, settings, &file, None).await.expect("import")
}

async fn invoice_pass(env: &TestEnv, settings: &Settings) -> invoicing::PassReport {
    invoicing::run_once(&env.store, settings, None, &CancellationToken::new()).await.expect("invoice pass")
}

fn tool(program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(program).args(args).output().expect("poppler-utils installed");
    assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text of pages `first..=last` of `pdf`, laid out as printed, whitespace squashed.
fn pages_text(pdf: &Path, first: usize, last: usize) -> String {
    let (f, l) = (first.to_string(), last.to_string());
    squash(&tool("pdftotext", &["-layout", "-f", &f, "-l", &l, &pdf.display().to_string(), "-"]))
}

fn page_count(pdf: &Path) -> usize {
    let info = tool("pdfinfo", &[&pdf.display().to_string()]);
    let line = info.lines().find(|l| l.starts_with("Pages:")).expect("Pages:");
    line["Pages:".len()..].trim().parse().expect("count")
}

fn packet_of(report: &invoicing::PassReport, load: &str) -> (String, PathBuf) {
    let invoiced = report.invoiced.iter().find(|i| i.load_number == load).unwrap_or_else(|| panic!("{report:#?}"));
    (invoiced.invoice_number.clone(), PathBuf::from(&invoiced.path))
}

fn readable(date: chrono::NaiveDate) -> String {
    date.format("%B %-d, %Y").to_string()
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&chrono_tz::America::Chicago).date_naive()
}

fn assert_has(text: &str, expected: &[&str]) {
    for e in expected {
        assert!(text.contains(e), "`{e}` missing from the invoice:\n{text}");
    }
}

both_backends!(csv_and_json_loads_print_every_field_and_their_documents_join_the_packet_in_order, |env| {
    let (_, settings) = content_config(&env, Some("Capital Depot Payments\nPO Box 4455\nHouston, TX 77210"));
    write_documents(&env);
    let csv = format!("{CSV_HEADER}\n{}\n", csv_row("L-CSV", "\"$2,450.00\""));
    let imported = import(&env, &settings, "loads.csv", &csv).await;
    assert_eq!(imported.counts.imported, 1, "{imported:#?}");
    // JSON: lines with the amount left out (their sum is the amount), terms from the subsidiary.
    let json = r#"[{"load_number": "L-JSON", "subsidiary": "acme-east", "customer_id": "BRK-2",
        "customer_name": "Green Logistics", "delivered_at": "2026-11-21", "pod": "pod.pdf", "rate_confirmation": "rc.pdf",
        "po_number": "PO-9", "pickup_city": "Houston", "pickup_state": "TX", "delivery_city": "Atlanta",
        "delivery_state": "GA", "pickup_date": "11/19/2026", "shipper_name": "Gulf Chemicals", "consignee_name": "Peach Retail DC",
        "bol_number": "BOL-4242", "lines": [{"description": "Linehaul Houston to Atlanta", "amount": 1800},
        {"description": "Fuel surcharge", "amount": "250.50"}], "bol": "bol.pdf", "other_documents": "other2.pdf"}]"#;
    let imported = import(&env, &settings, "loads.json", json).await;
    assert_eq!(imported.counts.imported, 1, "{imported:#?}");
    let stored = detail(&env.store, "L-JSON").await;
    assert_eq!(stored.load.fields.amount, Money::from_cents(205_050), "the amount is the lines' sum");
    assert_eq!(stored.load.fields.terms_days, Some(45));

    let report = invoice_pass(&env, &settings).await;
    assert_eq!(report.invoiced.len(), 2, "{report:#?}");
    let date = today();

    // The CSV load: every field of the invoice, each asserted.
    let (number, packet) = packet_of(&report, "L-CSV");
    assert_eq!(page_count(&packet), 7, "invoice, RC, BOL, POD, lumper receipt, two other documents");
    let invoice = pages_text(&packet, 1, 1);
    let invoice_date = format!("Invoice date {}", readable(date));
    let due = format!("Due date {}", readable(date + chrono::Days::new(15)));
    assert_has(
        &invoice,
        &[
            "ACME Freight East LLC",
            "100 Main St, Dallas, TX 75201",
            "MC 765432",
            "USDOT 1234567",
            "Bill to",
            "Blue Brokerage AP Dept",
            "500 Dodge St",
            "Omaha, NE 68102",
            &format!("Invoice number {number}"),
            &invoice_date,
            "Terms Net 15 days",
            &due,
            "Load number L-CSV",
            "PO number PO-5521",
            "BOL number BOL-88123",
            "Pickup Dallas, TX · November 18, 2026",
            "Delivery Memphis, TN · November 20, 2026",
            "Shipper Acme Widgets Plant 3",
            "Consignee Memphis Cold Storage",
            "Linehaul $2,000.00",
            "Fuel surcharge $300.00",
            "Detention $75.00",
            "Lumper $75.00",
            "Total due $2,450.00",
            "Remit to Capital Depot",
            "Capital Depot Payments",
            "PO Box 4455",
            "Houston, TX 77210",
        ],
    );
    assert!(!invoice.contains("Layover") && !invoice.contains("TONU"), "empty and zero charges print no line");
    assert!(!invoice.contains("Freight charges"), "{invoice}");
    let whole = pages_text(&packet, 1, 7);
    assert_eq!(whole.matches("NOTICE OF ASSIGNMENT").count(), 1, "{whole}");
    assert_eq!(whole.matches(NOA).count(), 1, "{whole}");
    // Packet order: invoice, RC, BOL, POD, lumper receipt, other documents.
    let markers = ["INVOICE", "RCMARK", "BOLMARK", "PODMARK", "LUMPERMARK", "OTHERONE", "OTHERTWO"];
    for (page, marker) in markers.iter().enumerate() {
        assert!(pages_text(&packet, page + 1, page + 1).contains(marker), "page {} is not {marker}", page + 1);
    }

    // The JSON load: its lines and total, the subsidiary's terms, customer name as bill-to.
    let (number, packet) = packet_of(&report, "L-JSON");
    assert_eq!(page_count(&packet), 5, "invoice, RC, BOL, POD, the other document");
    let invoice = pages_text(&packet, 1, 1);
    let due = format!("Due date {}", readable(date + chrono::Days::new(45)));
    assert_has(
        &invoice,
        &[
            &format!("Invoice number {number}"),
            "Bill to Green Logistics",
            "Terms Net 45 days",
            &due,
            "BOL number BOL-4242",
            "Pickup Houston, TX · November 19, 2026",
            "Delivery Atlanta, GA · November 21, 2026",
            "Shipper Gulf Chemicals",
            "Consignee Peach Retail DC",
            "Linehaul Houston to Atlanta $1,800.00",
            "Fuel surcharge $250.50",
            "Total due $2,050.50",
        ],
    );
    for (page, marker) in ["INVOICE", "RCMARK", "BOLMARK", "PODMARK", "OTHERTWO"].iter().enumerate() {
        assert!(pages_text(&packet, page + 1, page + 1).contains(marker), "page {} is not {marker}", page + 1);
    }
});

both_backends!(an_amount_that_disagrees_with_its_lines_is_refused_naming_both_figures, |env| {
    let (_, settings) = content_config(&env, None);
    let csv = format!("{CSV_HEADER}\n{}\n", csv_row("L-BAD", "2400"));
    let imported = import(&env, &settings, "bad.csv", &csv).await;
    assert_eq!(imported.counts.imported, 0, "{imported:#?}");
    let row = &imported.rows[0];
    assert_eq!(row.outcome, "rejected");
    assert!(row.detail.contains("amount $2,400.00 but the lines add up to $2,450.00"), "{row:#?}");

    // Omitted (the column absent), the amount is the lines' sum; given and equal, it stands.
    let header = CSV_HEADER.replace(",amount,", ",");
    let row = csv_row("L-SUM", "X").replace(",X,", ",");
    let imported = import(&env, &settings, "sum.csv", &format!("{header}\n{row}\n")).await;
    assert_eq!(imported.counts.imported, 1, "{imported:#?}");
    assert_eq!(detail(&env.store, "L-SUM").await.load.fields.amount, Money::from_cents(245_000));
    // An empty amount cell without lines is still required.
    let json = r#"{"load_number": "L-NONE", "subsidiary": "acme-east", "customer_id": "BRK-1", "customer_name": "Blue", "amount": ""}"#;
    let imported = import(&env, &settings, "none.jsonl", json).await;
    assert!(imported.rows[0].detail.contains("amount: required"), "{imported:#?}");
});

both_backends!(reimports_keep_absent_lines_replace_imported_documents_and_freeze_once_queued, |env| {
    let (_, settings) = content_config(&env, None);
    write_documents(&env);
    let csv = format!("{CSV_HEADER}\n{}\n", csv_row("L-RE", "2450"));
    import(&env, &settings, "first.csv", &csv).await;
    let id = detail(&env.store, "L-RE").await.load.id;
    let others = |docs: &[factord::store::LoadDocument]| {
        docs.iter().filter(|d| d.kind == DocumentKind::Other).map(|d| d.path.clone()).collect::<Vec<_>>()
    };
    assert_eq!(others(&env.store.load_documents(id).await.expect("docs")), ["other1.pdf", "other2.pdf"]);

    // A row without line or document columns keeps them; one naming other documents replaces
    // the import's list.
    let json = r#"[{"load_number": "L-RE", "subsidiary": "acme-east", "customer_id": "BRK-1", "customer_name": "Blue Brokerage",
        "amount": "2,450.00", "other_documents": "other2.pdf"}]"#;
    let imported = import(&env, &settings, "second.json", json).await;
    assert_eq!(imported.rows[0].outcome, "updated", "{imported:#?}");
    assert!(imported.rows[0].detail.contains("other_documents other1.pdf;other2.pdf → other2.pdf"), "{imported:#?}");
    let documents = env.store.load_documents(id).await.expect("docs");
    assert_eq!(others(&documents), ["other2.pdf"]);
    assert!(documents.iter().any(|d| d.kind == DocumentKind::Bol && d.path == "bol.pdf"), "{documents:#?}");
    assert_eq!(env.store.load_lines(id).await.expect("lines").len(), 4, "absent line columns keep the lines");

    // Queued: the lines are printed on the invoice, so a change is refused.
    let report = invoice_pass(&env, &settings).await;
    assert_eq!(report.invoiced.len(), 1, "{report:#?}");
    assert_eq!(detail(&env.store, "L-RE").await.load.status, LoadStatus::Queued);
    let json = r#"[{"load_number": "L-RE", "subsidiary": "acme-east", "customer_id": "BRK-1", "customer_name": "Blue Brokerage",
        "lines": [{"description": "Linehaul", "amount": 2450}]}]"#;
    let imported = import(&env, &settings, "third.json", json).await;
    assert_eq!(imported.rows[0].outcome, "rejected", "{imported:#?}");
    assert!(imported.rows[0].detail.contains("can no longer change (lines"), "{imported:#?}");
    assert_eq!(env.store.load_lines(id).await.expect("lines").len(), 4);
});

both_backends!(eighty_lines_make_a_multi_page_invoice_with_the_total_on_the_last_page_and_the_noa_once, |env| {
    let (_, settings) = content_config(&env, None);
    write_documents(&env);
    let lines: Vec<String> =
        (1..=80).map(|i| format!(r#"{{"description": "Stop charge number {i}", "amount": "10.00"}}"#)).collect();
    let json = format!(
        r#"[{{"load_number": "L-LONG", "subsidiary": "acme-east", "customer_id": "BRK-1", "customer_name": "Blue",
        "pod": "pod.pdf", "rate_confirmation": "rc.pdf", "lines": [{}]}}]"#,
        lines.join(",")
    );
    let imported = import(&env, &settings, "long.json", &json).await;
    assert_eq!(imported.counts.imported, 1, "{imported:#?}");
    let report = invoice_pass(&env, &settings).await;
    let (_, packet) = packet_of(&report, "L-LONG");
    let invoice_pages = page_count(&packet) - 2;
    assert!(invoice_pages >= 2, "80 lines take more than one page, got {invoice_pages}");
    let invoice = pages_text(&packet, 1, invoice_pages);
    for i in 1..=80 {
        assert!(invoice.contains(&format!("Stop charge number {i} $10.00")), "line {i} missing:\n{invoice}");
    }
    assert_eq!(invoice.matches("NOTICE OF ASSIGNMENT").count(), 1, "{invoice}");
    assert!(pages_text(&packet, 1, 1).contains("NOTICE OF ASSIGNMENT"), "the NOA is on the first page");
    assert_eq!(invoice.matches("Total due").count(), 1);
    assert!(pages_text(&packet, invoice_pages, invoice_pages).contains("Total due $800.00"));
    assert!(pages_text(&packet, 2, 2).contains("(continued)"));
    assert!(pages_text(&packet, invoice_pages + 1, invoice_pages + 1).contains("RCMARK"));
});

both_backends!(remit_to_names_the_factor_for_factored_invoices_and_the_seller_for_direct_ones, |env| {
    // No remit_to configured: the factor's name and a pointer to the NOA.
    let settings = &env.settings;
    write_documents(&env);
    let rows = "load_number,subsidiary,customer_id,customer_name,amount,pod,rate_confirmation\n\
                L-F,acme-east,BRK-1,Blue,100.00,pod.pdf,rc.pdf\nL-D,acme-west,BRK-1,Blue,200.00,pod.pdf,rc.pdf\n";
    import(&env, settings, "loads.csv", rows).await;
    let report = invoice_pass(&env, settings).await;
    let (_, factored) = packet_of(&report, "L-F");
    let text = pages_text(&factored, 1, 1);
    assert_has(
        &text,
        &[
            "Remit to Capital Depot",
            "see the Notice of Assignment",
            "NOTICE OF ASSIGNMENT",
            "Terms Net 30 days",
            "Freight charges $100.00",
        ],
    );
    assert!(!text.contains("Please remit payment to ACME"), "{text}");
    let (_, direct) = packet_of(&report, "L-D");
    assert!(direct.starts_with(env.path("outbox")), "{direct:?}");
    let text = pages_text(&direct, 1, 1);
    assert_has(
        &text,
        &["Remit to Please remit payment to ACME Freight West LLC, 2200 Camelback Rd, Phoenix, AZ 85016."],
    );
    assert!(!text.contains("NOTICE OF ASSIGNMENT") && !text.contains("Capital Depot"), "{text}");

    // With remit_to, the factor's payment address.
    let (_, settings) = content_config(&env, Some("Capital Depot Lockbox 88\nDallas, TX 75201"));
    let rows = "load_number,subsidiary,customer_id,customer_name,amount,pod,rate_confirmation\n\
                L-F2,acme-east,BRK-1,Blue,100.00,pod.pdf,rc.pdf\n";
    import(&env, &settings, "more.csv", rows).await;
    let report = invoice_pass(&env, &settings).await;
    let (_, factored) = packet_of(&report, "L-F2");
    let text = pages_text(&factored, 1, 1);
    assert_has(&text, &["Remit to Capital Depot", "Capital Depot Lockbox 88", "Dallas, TX 75201", "Terms Net 45 days"]);
    assert!(!text.contains("see the Notice of Assignment"), "{text}");
});

both_backends!(imported_bol_lumper_and_other_documents_go_to_otr_as_their_own_documents, |env| {
    let (url, otr) = otr_server(Otr::default()).await;
    let (_, settings) = otr_config(&env, &url);
    write_documents(&env);
    let csv = "load_number,subsidiary,customer_id,customer_name,customer_mc,amount,pod,rate_confirmation,pickup_city,\
               pickup_state,delivery_city,delivery_state,bol,lumper_receipt,other_documents\n\
               S-01,acme-east,BRK-1,Blue,123456,100.00,pod.pdf,rc.pdf,Dallas,TX,Tulsa,OK,bol.pdf,lumper.pdf,other1.pdf\n";
    import(&env, &settings, "loads.csv", csv).await;
    assert_eq!(invoice_pass(&env, &settings).await.invoiced.len(), 1);
    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches[0].accepted, 1, "{report:#?}");
    let otr = lock(&otr);
    let invoice = &otr.invoices[0];
    let text = |i: usize| {
        let file = tempfile::NamedTempFile::new().expect("temp");
        std::fs::write(file.path(), &invoice.files[i]).expect("write");
        pages_text(file.path(), 1, 1)
    };
    let sevens: Vec<String> = (0..invoice.documents.len()).filter(|i| invoice.documents[*i] == 7).map(text).collect();
    for marker in ["BOLMARK", "LUMPERMARK", "OTHERONE"] {
        assert!(
            sevens.iter().any(|t| t.contains(marker) && !t.contains("INVOICE")),
            "{marker} not sent as its own document: {:?}",
            invoice.documents
        );
    }
});
