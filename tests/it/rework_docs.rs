//! Rework (docs/design.md §2): `loads docs` and `loads retry` for rejections at submission, in a
//! purchase report and by status sync, against the OTR stand-in and the outbox, on both backends.

use std::path::{Path, PathBuf};

use factord::domain::{ExceptionKind, LoadStatus};
use factord::reports::{ReportKind, ingest_file};
use factord::rework_docs::{DocumentFiles, ReworkCommandError, attach_documents, retry_load};
use factord::submit::run_once;

use crate::both_backends;
use crate::fakes::api::{Otr, lock, otr_server, pkey};
use crate::harness::TestEnv;
use crate::pdfs;
use crate::submit_faults::{detail, otr_config, queue_loads};

fn pdf_text(bytes: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(file.path(), bytes).expect("write");
    let output = std::process::Command::new("pdftotext").arg(file.path()).arg("-").output().expect("pdftotext runs");
    assert!(output.status.success(), "pdftotext: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A one-page PDF whose text says `marker` (a rate-confirmation-like page).
fn document(env: &TestEnv, name: &str, marker: &str) -> PathBuf {
    let path = env.path(&format!("incoming/{name}"));
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, pdfs::rate_confirmation(marker, 1)).expect("write");
    path
}

fn packet_text(env: &TestEnv, invoice: &str) -> String {
    pdf_text(&std::fs::read(env.path(&format!("data/packets/acme-east/{invoice}.pdf"))).expect("packet"))
}

/// Where each needle first appears in `text`, failing on one that does not.
fn positions(text: &str, needles: &[&str]) -> Vec<usize> {
    needles.iter().map(|n| text.find(n).unwrap_or_else(|| panic!("{n:?} not in:\n{text}"))).collect()
}

/// Runs the factord binary with `config`; (exit code, stdout, stderr).
fn factord(config: &Path, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_factord"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("factord runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

fn exception_kinds(d: &factord::store::LoadDetail) -> Vec<ExceptionKind> {
    d.exceptions.iter().map(|e| e.kind).collect()
}

both_backends!(rejected_at_submission_then_docs_and_retry_is_resubmitted_under_its_number_and_purchased, |env| {
    let (url, otr) = otr_server(Otr { unapproved_mc: Some("123456".into()), ..Otr::default() }).await;
    let (_, settings) = otr_config(&env, &url);
    queue_loads(&env, &settings, 1).await;
    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches[0].rejected, 1, "{report:#?}");
    let before = detail(&env.store, "S-01").await;
    assert_eq!((before.load.status, exception_kinds(&before)), (LoadStatus::Queued, vec![ExceptionKind::Rejected]));

    // Ops replace the POD; the Queued packet is rebuilt at once, same number and date.
    let pod = document(&env, "new-pod.pdf", "NEWPOD-REWORK");
    let files = DocumentFiles { pod: Some(pod), ..DocumentFiles::default() };
    let docs = attach_documents(&env.store, &settings, "S-01", &files, "OTR wants a readable POD").await.expect("docs");
    assert!(docs.packet_rebuilt, "{docs:#?}");
    assert_eq!(docs.invoice_number.as_deref(), Some("AE-1"));
    assert!(packet_text(&env, "AE-1").contains("Load NEWPOD-REWORK"));
    // The rejection stays open until ops retry: nothing goes meanwhile.
    let posts = lock(&otr).invoice_posts;
    let waiting = run_once(&env.store, &settings, None, false, "command").await.expect("submit");
    assert!(waiting.batches.is_empty(), "{waiting:#?}");
    assert_eq!(lock(&otr).invoice_posts, posts);

    lock(&otr).unapproved_mc = None;
    let retry = retry_load(&env.store, &settings, "S-01", "broker approved by OTR now").await.expect("retry");
    assert_eq!((retry.from.as_str(), retry.status.as_str(), retry.factor.as_deref()), ("Queued", "Queued", None));
    assert!(retry.rejection.contains("not approved"), "{retry:#?}");
    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches[0].accepted, 1, "{report:#?}");
    {
        let otr = lock(&otr);
        assert_eq!(otr.invoices.len(), 1);
        let invoice = &otr.invoices[0];
        assert_eq!(invoice.number, "AE-1", "the same invoice number");
        let pod_at = invoice.documents.iter().position(|t| *t == 1).expect("a POD upload");
        assert!(pdf_text(&invoice.files[pod_at]).contains("Load NEWPOD-REWORK"));
        let packet = invoice.files.last().expect("the packet");
        assert!(pdf_text(packet).contains("Load NEWPOD-REWORK"), "the packet carries the new POD");
    }
    let after = detail(&env.store, "S-01").await;
    assert_eq!(
        (after.load.status, after.load.invoice_number.as_deref(), after.load.invoice_date.clone()),
        (LoadStatus::Invoiced, Some("AE-1"), before.load.invoice_date.clone())
    );
    assert!(after.exceptions.is_empty(), "{after:#?}");

    let purchase = env.write("otr-purchase.csv", "Invoice #,Advance\nAE-1,90.00\n");
    let summary =
        ingest_file(&env.store, &settings, &purchase, "otr", Some(ReportKind::Purchase)).await.expect("ingest");
    assert_eq!(summary.applied, 1, "{summary:#?}");
    let financed = detail(&env.store, "S-01").await;
    assert_eq!(financed.load.status, LoadStatus::Financed);
    let causes: Vec<&str> = financed.history.iter().map(|h| h.cause.as_str()).collect();
    assert!(causes.iter().any(|c| c.starts_with("loads docs: POD rework/") && c.ends_with("OTR wants a readable POD")));
    assert!(causes.contains(&"loads retry: broker approved by OTR now"), "{causes:?}");
});

both_backends!(a_purchase_report_rejection_goes_back_to_queued_and_the_next_batch_file_has_it, |env| {
    queue_loads(&env, &env.settings, 2).await;
    let first = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert_eq!(first.batches[0].accepted, 2, "{first:#?}");
    let report = env.write("rejections.csv", "Invoice #,Status\nAE-1,Not Funded\n");
    let summary = ingest_file(&env.store, &env.settings, &report, "capital_depot", Some(ReportKind::Purchase))
        .await
        .expect("ingest");
    assert_eq!(summary.applied + summary.rejected, 1, "{summary:#?}");
    let rejected = detail(&env.store, "S-01").await;
    assert_eq!(
        (rejected.load.status, exception_kinds(&rejected)),
        (LoadStatus::Invoiced, vec![ExceptionKind::Rejected])
    );
    // Invoiced, it is in no batch until ops retry it.
    assert!(run_once(&env.store, &env.settings, None, false, "command").await.expect("submit").batches.is_empty());

    let (code, stdout, stderr) =
        factord(&env.config_path, &["loads", "retry", "S-01", "--reason", "rate con re-signed", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!((json["from"].as_str(), json["status"].as_str()), (Some("Invoiced"), Some("Queued")), "{json:#}");
    assert_eq!((json["invoice_number"].as_str(), json["packet_rebuilt"].as_bool()), (Some("AE-1"), Some(true)));
    let queued = detail(&env.store, "S-01").await;
    assert_eq!(queued.load.status, LoadStatus::Queued);
    assert!(queued.exceptions.is_empty(), "{queued:#?}");
    let last = queued.history.last().expect("history");
    assert_eq!(
        (last.from, last.to, last.cause.as_str()),
        (Some(LoadStatus::Invoiced), LoadStatus::Queued, "loads retry: rate con re-signed")
    );

    let second = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert_eq!((second.batches.len(), second.batches[0].accepted), (1, 1), "{second:#?}");
    let batch = &second.batches[0].id;
    assert_eq!(batch, "acme-east-2");
    let folder = std::fs::read_dir(env.path("outbox/acme-east/capital_depot"))
        .expect("outbox")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains("_2_")))
        .expect("batch 2's folder");
    let csv_path = std::fs::read_dir(&folder)
        .expect("folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "csv"))
        .expect("batch file");
    let csv = std::fs::read_to_string(csv_path).expect("csv");
    assert!(csv.contains("AE-1,") && csv.contains(",S-01,") && !csv.contains("AE-2,"), "{csv}");
    let resent = detail(&env.store, "S-01").await;
    assert_eq!((resent.load.status, resent.load.batch_id.as_deref()), (LoadStatus::Invoiced, Some("acme-east-2")));
    assert_eq!(resent.load.invoice_number.as_deref(), Some("AE-1"));
    // Sent once more, not twice: a later submission sends nothing.
    assert!(run_once(&env.store, &env.settings, None, false, "command").await.expect("submit").batches.is_empty());

    // No open rejection: exit 1 with a clear message; no reason: a usage error.
    let (code, _, stderr) = factord(&env.config_path, &["loads", "retry", "S-02", "--reason", "again"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("S-02 (Invoiced) has no open rejection"), "{stderr}");
    let (code, _, stderr) = factord(&env.config_path, &["loads", "retry", "S-01"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--reason"), "{stderr}");
});

both_backends!(a_status_sync_rejection_on_otr_gets_its_documents_added_to_the_invoice_otr_holds, |env| {
    let (url, otr) = otr_server(Otr::default()).await;
    let (_, settings) = otr_config(&env, &url);
    queue_loads(&env, &settings, 1).await;
    assert_eq!(run_once(&env.store, &settings, None, false, "command").await.expect("submit").batches[0].accepted, 1);
    lock(&otr).statuses.insert(pkey(1), "Duplicate".into());
    factord::sync::run_once(&env.store, &settings, None).await.expect("sync");
    let rejected = detail(&env.store, "S-01").await;
    assert_eq!(
        (rejected.load.status, exception_kinds(&rejected)),
        (LoadStatus::Invoiced, vec![ExceptionKind::Rejected])
    );

    // Documents for an Invoiced load are kept for its retry; the packet is not touched yet.
    let files = DocumentFiles {
        pod: Some(document(&env, "pod-2.pdf", "NEWPOD-SYNC")),
        lumper: Some(document(&env, "lumper.pdf", "LUMPER-RECEIPT-9")),
        ..DocumentFiles::default()
    };
    let docs =
        attach_documents(&env.store, &settings, "S-01", &files, "OTR asks for the lumper receipt").await.expect("docs");
    assert!(!docs.packet_rebuilt && docs.next.contains("loads retry"), "{docs:#?}");
    assert!(!packet_text(&env, "AE-1").contains("NEWPOD-SYNC"));

    let retry = retry_load(&env.store, &settings, "S-01", "documents added").await.expect("retry");
    assert_eq!((retry.from.as_str(), retry.factor.as_deref()), ("Invoiced", Some("otr")));
    assert_eq!(retry.factor_reference, Some(pkey(1)));
    // Packet order: invoice, rate confirmation, POD, lumper receipt.
    let text = packet_text(&env, "AE-1");
    let at = positions(&text, &["INVOICE", "Load F", "Load NEWPOD-SYNC", "Load LUMPER-RECEIPT-9"]);
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}\n{text}");

    let (posts, uploads) = {
        let otr = lock(&otr);
        (otr.invoice_posts, otr.invoices[0].documents.len())
    };
    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches[0].accepted, 1, "{report:#?}");
    {
        let otr = lock(&otr);
        assert_eq!(otr.invoice_posts, posts, "no second invoice is created at OTR");
        assert_eq!(otr.invoices.len(), 1);
        let invoice = &otr.invoices[0];
        assert_eq!(invoice.documents[uploads..], [1, 3, 7, 7], "POD, rate confirmation, lumper receipt, packet");
        assert!(pdf_text(&invoice.files[uploads]).contains("Load NEWPOD-SYNC"));
        assert!(pdf_text(&invoice.files[uploads + 2]).contains("Load LUMPER-RECEIPT-9"));
        assert!(pdf_text(&invoice.files[uploads + 3]).contains("Load LUMPER-RECEIPT-9"), "the rebuilt packet");
    }
    let resent = detail(&env.store, "S-01").await;
    assert_eq!(
        (resent.load.status, resent.load.batch_id.as_deref(), resent.load.submission_reference.clone()),
        (LoadStatus::Invoiced, Some("acme-east-2"), Some(pkey(1)))
    );
    assert!(resent.exceptions.is_empty(), "{resent:#?}");
});

both_backends!(docs_on_a_queued_load_rebuild_its_packet_at_once_with_the_same_number_and_date, |env| {
    queue_loads(&env, &env.settings, 1).await;
    let before = detail(&env.store, "S-01").await;
    let pod = document(&env, "pod.pdf", "NEWPOD-QUEUED");
    let bol = document(&env, "bol.pdf", "BOL-7731");
    let other_a = document(&env, "scale.pdf", "SCALE-TICKET-1");
    let other_b = document(&env, "note.pdf", "DETENTION-NOTE-2");
    let arg = |p: &PathBuf| p.display().to_string();
    let (code, stdout, stderr) = factord(
        &env.config_path,
        &[
            "loads",
            "docs",
            "S-01",
            "--pod",
            &arg(&pod),
            "--bol",
            &arg(&bol),
            "--other",
            &arg(&other_a),
            "--other",
            &arg(&other_b),
            "--reason",
            "factor asked for BOL and scale ticket",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!((json["packet_rebuilt"].as_bool(), json["invoice_number"].as_str()), (Some(true), Some("AE-1")));
    assert_eq!(json["documents"].as_array().map(Vec::len), Some(4), "{json:#}");
    assert_eq!(json["replaced"][0]["kind"].as_str(), Some("pod"), "{json:#}");

    // Invoice, rate confirmation, BOL, POD, other documents in the order given.
    let text = packet_text(&env, "AE-1");
    let at = positions(
        &text,
        &["AE-1", "Load F", "Load BOL-7731", "Load NEWPOD-QUEUED", "Load SCALE-TICKET-1", "Load DETENTION-NOTE-2"],
    );
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}\n{text}");
    let after = detail(&env.store, "S-01").await;
    assert_eq!(
        (after.load.status, after.load.invoice_number.clone(), after.load.invoice_date.clone()),
        (LoadStatus::Queued, before.load.invoice_number.clone(), before.load.invoice_date.clone())
    );
    assert!(after.load.packet_noa.is_some(), "rebuilt for the current NOA");
    assert!(after.load.fields.pod.as_deref().is_some_and(|p| p.starts_with("rework/S-01-pod-")));
    let last = after.history.last().expect("history");
    assert_eq!((last.from, last.to), (Some(LoadStatus::Queued), LoadStatus::Queued));
    assert!(last.cause.ends_with("factor asked for BOL and scale ticket"), "{}", last.cause);
    let (code, stdout, _) = factord(&env.config_path, &["loads", "show", "S-01", "--json"]);
    assert_eq!(code, 0);
    let shown: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let documents = &shown["documents"];
    assert!(documents["bol"].as_str().is_some_and(|p| p.starts_with("rework/S-01-bol-")), "{documents:#}");
    assert_eq!(documents["other"].as_array().map(Vec::len), Some(2), "{documents:#}");

    // The next batch sends the rebuilt packet.
    let report = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches[0].accepted, 1, "{report:#?}");
});

both_backends!(a_broken_pdf_is_refused_naming_the_file_and_nothing_changes, |env| {
    queue_loads(&env, &env.settings, 1).await;
    let before = detail(&env.store, "S-01").await;
    let packet = std::fs::read(env.path("data/packets/acme-east/AE-1.pdf")).expect("packet");
    let good = document(&env, "good.pdf", "GOOD-POD");
    let broken = env.path("incoming/broken-bol.pdf");
    let mut cut = pdfs::rate_confirmation("CUT", 1);
    cut.truncate(cut.len() / 2);
    std::fs::write(&broken, cut).expect("write");
    let (code, stdout, stderr) = factord(
        &env.config_path,
        &["loads", "docs", "S-01", "--pod", &good.display().to_string(), "--bol", &broken.display().to_string()],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("BOL") && stderr.contains("broken-bol.pdf"), "{stderr}");

    let encrypted = env.path("incoming/locked.pdf");
    std::fs::write(&encrypted, pdfs::encrypted_pdf()).expect("write");
    let files = DocumentFiles { other: vec![encrypted], ..DocumentFiles::default() };
    match attach_documents(&env.store, &env.settings, "S-01", &files, "extra").await {
        Err(ReworkCommandError::Refused(message)) => {
            assert!(message.contains("locked.pdf") && message.contains("encrypted"), "{message}")
        }
        other => panic!("refused expected: {other:?}"),
    }

    let after = detail(&env.store, "S-01").await;
    assert_eq!(after.load.fields.pod, before.load.fields.pod);
    assert_eq!(after.history.len(), before.history.len());
    assert_eq!(after.load.packet_noa, before.load.packet_noa);
    assert!(env.store.load_documents(after.load.id).await.expect("documents").is_empty());
    let copies = std::fs::read_dir(env.path("documents/rework")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(copies, 0, "nothing copied into documents/");
    assert_eq!(std::fs::read(env.path("data/packets/acme-east/AE-1.pdf")).expect("packet"), packet);
});

both_backends!(a_retry_cut_off_before_its_rebuild_is_finished_by_the_next_submission_and_sent_once, |env| {
    queue_loads(&env, &env.settings, 1).await;
    run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    let report = env.write("rejections.csv", "Invoice #,Status\nAE-1,Not Funded\n");
    ingest_file(&env.store, &env.settings, &report, "capital_depot", Some(ReportKind::Purchase)).await.expect("ingest");
    // The store's step only, as if the process died before the packet was rebuilt.
    let recorded = env.store.retry_rejected_load("S-01", "cut off").await.expect("retry recorded");
    assert_eq!(recorded.from, LoadStatus::Invoiced);
    // A second retry finds no open rejection and changes nothing.
    match env.store.retry_rejected_load("S-01", "again").await {
        Err(factord::store::ReworkError::Refused(message)) => {
            assert!(message.contains("no open rejection"), "{message}")
        }
        other => panic!("refused expected: {other:?}"),
    }
    // The stale packet holds the load back until it is rebuilt.
    let dry = run_once(&env.store, &env.settings, None, true, "command").await.expect("dry run");
    assert!(dry.would_send.is_empty(), "{dry:#?}");
    assert!(dry.waiting[0].reason.contains("rebuilt"), "{dry:#?}");

    let sent = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert_eq!((sent.batches.len(), sent.batches[0].accepted, sent.batches[0].id.as_str()), (1, 1, "acme-east-2"));
    assert!(run_once(&env.store, &env.settings, None, false, "command").await.expect("submit").batches.is_empty());
    let d = detail(&env.store, "S-01").await;
    let moves: Vec<(Option<LoadStatus>, LoadStatus)> = d.history.iter().map(|h| (h.from, h.to)).collect();
    assert_eq!(
        moves[moves.len() - 3..],
        [
            (Some(LoadStatus::Queued), LoadStatus::Invoiced),
            (Some(LoadStatus::Invoiced), LoadStatus::Queued),
            (Some(LoadStatus::Queued), LoadStatus::Invoiced)
        ]
    );
});
