//! Batch submission through the manual provider (the outbox): batches, outcomes, pre-flight,
//! dry runs, crash reconciliation, concurrent submitters and schedule fires.

use std::path::{Path, PathBuf};

use factord::domain::{ExceptionKind, LoadStatus};
use factord::intake::import_load_file;
use factord::invoicing;
use factord::providers::batch::InvoiceOutcome;
use factord::providers::layout::{batch_files, batch_stem};
use factord::providers::outbox::{MANIFEST, OutboxTransport};
use factord::store::{BatchDraft, DraftItem, LoadFilter, Store};
use factord::submit::{self, run_once};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::harness::{TestEnv, batch_uid, loads_csv};
use crate::pdfs;

/// Imports `count` loads for acme-east with documents and invoices them: all Queued.
async fn queued_loads(env: &TestEnv, count: usize) {
    queued_loads_more(env, 1, count).await;
}

/// As [`queued_loads`], for loads `S-<first>` to `S-<last>`.
async fn queued_loads_more(env: &TestEnv, first: usize, last: usize) {
    let count = last + 1 - first;
    let dir = env.path("documents");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("rc.pdf"), pdfs::rate_confirmation("S", 1)).expect("rc");
    std::fs::write(dir.join("pod.pdf"), pdfs::pod_with_jpeg("S", &pdfs::scanned_jpeg(200, 100, 1))).expect("pod");
    let rows: Vec<String> = (first..=last)
        .map(|i| format!("S-{i:02},acme-east,BRK-1,Blue,123456,{i}00.00,,,pod.pdf,rc.pdf,PO-{i},,"))
        .collect();
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let file = env.write("loads.csv", &loads_csv(&refs));
    import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    let report =
        invoicing::run_once(&env.store, &env.settings, None, &CancellationToken::new()).await.expect("invoice");
    assert_eq!(report.invoiced.len(), count, "{report:#?}");
}

async fn loads_in(store: &Store, status: LoadStatus) -> Vec<factord::store::LoadSummary> {
    store.list_loads(&LoadFilter { status: Some(status), ..LoadFilter::default() }).await.expect("list")
}

fn batch_folders(env: &TestEnv) -> Vec<PathBuf> {
    let dir = env.path("outbox/acme-east/capital_depot");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    folders.sort();
    folders
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

both_backends!(a_manual_batch_goes_to_the_outbox_and_the_loads_to_invoiced, |env| {
    queued_loads(&env, 3).await;
    let report = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches.len(), 1, "{report:#?}");
    let batch = &report.batches[0];
    assert_eq!((batch.status.as_str(), batch.accepted, batch.invoices), ("sent", 3, 3));
    assert_eq!(batch.total, "600.00");

    let folders = batch_folders(&env);
    assert_eq!(folders.len(), 1, "one folder, no temp left: {folders:?}");
    let folder = &folders[0];
    let stem = folder.file_name().expect("name").to_string_lossy().into_owned();
    // `<subsidiary>_<YYYYMMDD>_<number>_<first 8 hex digits of the batch's uid>`.
    let uid = batch_uid(&env, &batch.id).await;
    assert!(stem.starts_with("acme-east_") && stem.ends_with(&format!("_1_{}", &uid[..8])), "{stem}");
    assert_eq!(
        names(folder),
        vec![
            MANIFEST.to_string(),
            format!("AE-1_{}.pdf", &uid[..8]),
            format!("AE-2_{}.pdf", &uid[..8]),
            format!("AE-3_{}.pdf", &uid[..8]),
            format!("{stem}.csv")
        ]
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(folder.join(MANIFEST)).expect("manifest")).expect("json");
    assert_eq!((manifest["batch"].as_str(), manifest["uid"].as_str()), (Some(batch.id.as_str()), Some(uid.as_str())));
    assert_eq!(manifest["files"].as_array().map(Vec::len), Some(4), "{manifest}");
    let csv = std::fs::read_to_string(folder.join(format!("{stem}.csv"))).expect("csv");
    assert!(csv.starts_with("Invoice Number,Invoice Date,Load Number,Debtor Name"), "{csv}");
    assert!(csv.contains("AE-2,") && csv.contains(",S-02,Blue,123456,") && csv.contains("TOTAL 3 invoices"), "{csv}");
    // The packets are the invoice packets, byte for byte.
    assert_eq!(
        std::fs::read(folder.join(format!("AE-1_{}.pdf", &uid[..8]))).expect("copy"),
        std::fs::read(env.path("data/packets/acme-east/AE-1.pdf")).expect("packet")
    );

    let invoiced = loads_in(&env.store, LoadStatus::Invoiced).await;
    assert_eq!(invoiced.len(), 3);
    let detail = env.store.load_detail("S-01").await.expect("detail").expect("load");
    assert_eq!(detail.load.batch_id.as_deref(), Some(batch.id.as_str()));
    assert!(detail.load.submission_reference.is_some());
    let last = detail.history.last().expect("history");
    assert_eq!(
        (last.from, last.to, last.cause.as_str()),
        (Some(LoadStatus::Queued), LoadStatus::Invoiced, "batch acme-east-1")
    );

    // Nothing left: a second submission sends nothing.
    let again = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert!(again.batches.is_empty());
    assert_eq!(batch_folders(&env).len(), 1);
    let recent = env.store.recent_batches(5).await.expect("recent");
    assert_eq!((recent.len(), recent[0].accepted, recent[0].status.as_str()), (1, 3, "sent"));
});

#[tokio::test]
async fn batches_split_at_the_maximum_size() {
    let extra = "";
    let env = TestEnv::with_config(crate::harness::Backend::Sqlite, extra).await.expect("env");
    queued_loads(&env, 5).await;
    // The shipped provider limit is large; a subsidiary can lower it.
    let text = std::fs::read_to_string(&env.config_path)
        .expect("config")
        .replace("provider = \"capital_depot\"\n", "provider = \"capital_depot\"\nmax_batch_size = 2\n");
    let config = env.write("config-small/factord.toml", &text);
    let settings = factord::config::Settings::load(&config, &Default::default()).expect("config");
    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches.iter().map(|b| b.invoices).collect::<Vec<_>>(), vec![2, 2, 1]);
    assert_eq!(batch_folders(&env).len(), 3);
    assert_eq!(loads_in(&env.store, LoadStatus::Invoiced).await.len(), 5);
}

both_backends!(a_dry_run_lists_what_would_go_and_why_others_wait, |env| {
    queued_loads(&env, 3).await;
    std::fs::remove_file(env.path("data/packets/acme-east/AE-2.pdf")).expect("remove a packet");
    let report = run_once(&env.store, &env.settings, None, true, "command").await.expect("dry run");
    assert!(report.batches.is_empty());
    assert_eq!(report.would_send.len(), 1);
    assert_eq!(report.would_send[0].invoices, vec!["AE-1".to_string(), "AE-3".to_string()]);
    assert_eq!(report.waiting.len(), 1);
    assert_eq!(report.waiting[0].load_number, "S-02");
    assert!(report.waiting[0].reason.contains("AE-2.pdf is missing"), "{:?}", report.waiting[0]);
    // Nothing changed.
    assert_eq!(loads_in(&env.store, LoadStatus::Queued).await.len(), 3);
    assert!(env.store.recent_batches(5).await.expect("recent").is_empty());
    assert!(batch_folders(&env).is_empty());

    // A real submission sends the two and records why the third waits.
    let report = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches[0].invoices, 2);
    let waiting = env.store.load_detail("S-02").await.expect("detail").expect("load").load;
    assert_eq!(waiting.status, LoadStatus::Queued);
    assert!(
        waiting.waiting_reason.as_deref().is_some_and(|r| r.contains("is missing")),
        "{:?}",
        waiting.waiting_reason
    );
});

/// Writes a batch ahead for all Queued loads, as `send_batch` does before a crash.
async fn write_ahead(env: &TestEnv) -> String {
    write_ahead_holding(env, std::time::Duration::ZERO).await
}

/// As [`write_ahead`], with the sender's lease taken for `lease` in the same transaction.
async fn write_ahead_holding(env: &TestEnv, lease: std::time::Duration) -> String {
    let loads = env.store.loads_to_submit("acme-east").await.expect("loads");
    let items = loads
        .iter()
        .map(|l| DraftItem {
            load_id: l.id,
            invoice_number: l.invoice_number.clone().expect("number"),
            amount_cents: l.fields.amount.cents(),
            payload_sha256: "hash".into(),
        })
        .collect();
    let today = chrono::Utc::now().with_timezone(&chrono_tz::America::Chicago).date_naive().to_string();
    let draft = BatchDraft {
        subsidiary: "acme-east",
        provider: "capital_depot",
        batch_date: &today,
        cause: "test",
        items,
        lease,
    };
    env.store.create_batch(&draft).await.expect("write-ahead").id
}

both_backends!(a_batch_left_sending_that_never_arrived_is_failed_and_resent_in_a_new_batch, |env| {
    queued_loads(&env, 2).await;
    let crashed = write_ahead(&env).await;
    // While it is in flight its loads are in no other batch.
    assert!(env.store.loads_to_submit("acme-east").await.expect("loads").is_empty());
    let reports = submit::reconcile_in_flight(&env.store, &env.settings).await.expect("reconcile");
    assert_eq!(reports.len(), 1);
    assert_eq!((reports[0].id.as_str(), reports[0].status.as_str()), (crashed.as_str(), "failed"));
    assert_eq!(loads_in(&env.store, LoadStatus::Queued).await.len(), 2, "not delivered: still Queued");
    let report = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches.len(), 1);
    assert_ne!(report.batches[0].id, crashed);
    assert_eq!(loads_in(&env.store, LoadStatus::Invoiced).await.len(), 2);
    assert_eq!(batch_folders(&env).len(), 1, "one delivery only");
});

both_backends!(a_batch_left_sending_that_did_arrive_is_recorded_not_resent, |env| {
    queued_loads(&env, 2).await;
    let crashed = write_ahead(&env).await;
    // The crash came after the folder was published, before the outcome was recorded: the
    // folder is there, written by the transport itself.
    publish_in_flight(&env).await;
    let reports = submit::reconcile_in_flight(&env.store, &env.settings).await.expect("reconcile");
    assert_eq!(
        (reports[0].id.as_str(), reports[0].status.as_str(), reports[0].accepted),
        (crashed.as_str(), "sent", 2)
    );
    assert_eq!(loads_in(&env.store, LoadStatus::Invoiced).await.len(), 2);
    let report = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert!(report.batches.is_empty(), "nothing resent: {report:#?}");
    assert_eq!(batch_folders(&env).len(), 1);
});

/// The outbox transport of acme-east's provider.
fn outbox(env: &TestEnv) -> OutboxTransport {
    OutboxTransport::new(env.path("outbox/acme-east/capital_depot"))
}

/// Publishes the only batch left `sending` through the outbox transport (what a sender did
/// just before it crashed); returns its final folder.
async fn publish_in_flight(env: &TestEnv) -> PathBuf {
    let pending = env.store.batches_in_flight().await.expect("in flight");
    assert_eq!(pending.len(), 1);
    let batch = submit::pending_batch(&env.settings, &pending[0]).expect("batch");
    let receipt = outbox(env).send(&batch, &batch_files(&batch).expect("files")).expect("publish");
    PathBuf::from(receipt.reference.expect("reference"))
}

/// Every file under `dir` (relative path → bytes).
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("list").filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under").display().to_string();
                out.insert(relative, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

both_backends!(after_a_database_reset_a_new_batch_1_gets_its_own_folder_and_the_old_one_is_untouched, |env| {
    queued_loads(&env, 2).await;
    let first = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert_eq!((first.batches[0].id.as_str(), first.batches[0].accepted), ("acme-east-1", 2));
    let before = tree(&env.path("outbox"));

    // The README's reset: the database goes, the outbox stays. A new database numbers its
    // batches from 1 again, on the same date, into the same outbox.
    let Some(mut fresh) = TestEnv::new(env.backend).await else { return };
    fresh.settings.paths.outbox = env.path("outbox");
    queued_loads(&fresh, 3).await;
    let second = run_once(&fresh.store, &fresh.settings, None, false, "command").await.expect("submit");
    assert_eq!(second.batches.len(), 1, "{second:#?}");
    let batch = &second.batches[0];
    assert_eq!((batch.id.as_str(), batch.status.as_str(), batch.accepted), ("acme-east-1", "sent", 3), "{batch:#?}");

    // Two folders: the old one byte for byte as it was, the new one holding the new batch.
    let folders = batch_folders(&env);
    assert_eq!(folders.len(), 2, "{folders:?}");
    let after = tree(&env.path("outbox"));
    for (file, bytes) in &before {
        assert_eq!(after.get(file), Some(bytes), "{file} of the earlier batch was changed");
    }
    let reference = PathBuf::from(batch.reference.clone().expect("reference"));
    assert!(folders.contains(&reference), "{reference:?} in {folders:?}");
    let pdfs: Vec<String> = names(&reference).into_iter().filter(|n| n.ends_with(".pdf")).collect();
    let uid8 = batch_uid(&fresh, &batch.id).await[..8].to_string();
    assert_eq!(pdfs, ["AE-1", "AE-2", "AE-3"].map(|n| format!("{n}_{uid8}.pdf")));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(reference.join(MANIFEST)).expect("manifest")).expect("json");
    assert_eq!(manifest["uid"].as_str(), Some(batch_uid(&fresh, &batch.id).await.as_str()));
    assert_ne!(batch_uid(&fresh, &batch.id).await, batch_uid(&env, "acme-east-1").await);
});

both_backends!(idempotency_keys_carry_the_batch_uid_so_a_reset_never_repeats_one, |env| {
    queued_loads(&env, 2).await;
    let id = write_ahead(&env).await;
    let uid = batch_uid(&env, &id).await;
    let pending = env.store.batches_in_flight().await.expect("in flight");
    let keys: Vec<&str> = pending[0].items.iter().map(|(_, key)| key.as_str()).collect();
    assert_eq!(keys, [format!("{id}:{uid}:AE-1"), format!("{id}:{uid}:AE-2")]);
    let batch = submit::pending_batch(&env.settings, &pending[0]).expect("batch");
    assert_eq!(batch.invoices[0].idempotency_key, format!("{id}:{uid}:AE-1"), "the transports send the stored key");
    assert_eq!(batch.external_id(), format!("{id}-{uid}"));

    // After a reset the same batch id and invoice numbers come again, under other keys.
    let Some(fresh) = TestEnv::new(env.backend).await else { return };
    queued_loads(&fresh, 2).await;
    assert_eq!(write_ahead(&fresh).await, id);
    let again = fresh.store.batches_in_flight().await.expect("in flight");
    assert_ne!(again[0].items[0].1, pending[0].items[0].1);
});

both_backends!(a_folder_with_the_batch_name_but_other_content_fails_the_batch_and_is_not_overwritten, |env| {
    queued_loads(&env, 2).await;
    let crashed = write_ahead(&env).await;
    let pending = env.store.batches_in_flight().await.expect("in flight");
    let batch = submit::pending_batch(&env.settings, &pending[0]).expect("batch");
    // Someone else's folder under this batch's exact final name: no manifest, other files.
    let planted = env.path(&format!("outbox/acme-east/capital_depot/{}", batch_stem(&batch)));
    std::fs::create_dir_all(&planted).expect("mkdir");
    std::fs::write(planted.join("AE-1.pdf"), b"an older invoice").expect("plant");
    let before = tree(&planted);

    // The transport refuses to take it for this batch, naming the folder and the batch.
    let files = batch_files(&batch).expect("files");
    let error = outbox(&env).send(&batch, &files).expect_err("a clash");
    let text = error.to_string();
    assert!(text.contains(&planted.display().to_string()) && text.contains(&crashed), "{text}");
    assert!(text.contains("no .factord-manifest.json"), "{text}");

    // Reconciliation: the batch was not delivered; it fails with the same words, and its loads
    // go in a new batch under a new name. The planted folder is never touched.
    let report = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    let settled = report.batches.iter().find(|b| b.id == crashed).expect("the crashed batch is settled");
    assert_eq!((settled.status.as_str(), settled.accepted, settled.reconciled), ("failed", 0, true), "{settled:#?}");
    let error = settled.error.clone().unwrap_or_default();
    assert!(error.contains(&planted.display().to_string()) && error.contains(&crashed), "{error}");
    let resent = report.batches.iter().find(|b| b.id != crashed).expect("a new batch");
    assert_eq!((resent.status.as_str(), resent.accepted), ("sent", 2), "{report:#?}");
    assert_ne!(resent.reference.as_deref(), Some(planted.display().to_string().as_str()));
    assert_eq!(tree(&planted), before, "the planted folder is as it was");
    assert_eq!(batch_folders(&env).len(), 2);

    // Another batch's manifest under the name: the error names that batch too.
    let other = env.path(&format!("outbox/acme-east/capital_depot/{}_other", batch_stem(&batch)));
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join(MANIFEST), br#"{"batch":"acme-east-1","uid":"00000000deadbeef","files":[]}"#)
        .expect("manifest");
    std::fs::rename(&other, &planted).expect_err("a non-empty folder is never replaced by a rename");
    std::fs::remove_dir_all(&planted).expect("clear");
    std::fs::rename(&other, &planted).expect("swap");
    let error = outbox(&env).send(&batch, &files).expect_err("a clash").to_string();
    assert!(error.contains("holds batch acme-east-1 (uid 00000000deadbeef)") && error.contains(&crashed), "{error}");
});

both_backends!(two_submitters_at_once_send_every_invoice_once, |env| {
    queued_loads(&env, 12).await;
    let (a, b) = tokio::join!(
        run_once(&env.store, &env.settings, None, false, "a"),
        run_once(&env.store, &env.settings, None, false, "b")
    );
    let (a, b) = (a.expect("a"), b.expect("b"));
    let accepted: usize = a.batches.iter().chain(&b.batches).map(|b| b.accepted).sum();
    assert_eq!(accepted, 12, "{a:#?}\n{b:#?}");
    // `<invoice>_<uid8>.pdf`: the invoice numbers, without the batches' uids.
    let mut delivered: Vec<String> = batch_folders(&env)
        .iter()
        .flat_map(|f| names(f).into_iter().filter(|n| n.ends_with(".pdf")))
        .map(|n| format!("{}.pdf", n.rsplit_once('_').expect("a uid").0))
        .collect();
    delivered.sort();
    let mut expected: Vec<String> = (1..=12).map(|i| format!("AE-{i}.pdf")).collect();
    expected.sort();
    assert_eq!(delivered, expected, "every invoice delivered exactly once");
    for load in loads_in(&env.store, LoadStatus::Invoiced).await {
        let history = env.store.load_detail(&load.load.load_number).await.expect("detail").expect("load").history;
        assert_eq!(history.iter().filter(|h| h.to == LoadStatus::Invoiced).count(), 1);
    }
});

both_backends!(rejected_invoices_wait_until_retried, |env| {
    queued_loads(&env, 2).await;
    let id = write_ahead(&env).await;
    env.store
        .record_batch_outcome(
            &id,
            Some("ref"),
            &[
                ("AE-1".to_string(), InvoiceOutcome::Accepted { reference: Some("F-1".into()) }),
                ("AE-2".to_string(), InvoiceOutcome::Rejected { reason: "broker not approved".into() }),
            ],
        )
        .await
        .expect("record");
    let rejected = env.store.load_detail("S-02").await.expect("detail").expect("load");
    assert_eq!(rejected.load.status, LoadStatus::Queued);
    assert_eq!(rejected.exceptions[0].kind, ExceptionKind::Rejected);
    assert!(rejected.exceptions[0].detail.contains("broker not approved"));
    // Not retried by itself…
    let report = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert!(report.batches.is_empty());
    assert!(report.waiting[0].reason.contains("factord loads retry S-02"), "{report:#?}");
    // …until ops retry it; the next batch takes it and the exception is gone.
    assert!(env.store.retry_rejected("S-02").await.expect("retry"));
    let report = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches[0].accepted, 1);
    let done = env.store.load_detail("S-02").await.expect("detail").expect("load");
    assert_eq!(done.load.status, LoadStatus::Invoiced);
    assert!(done.exceptions.is_empty());
});

both_backends!(each_schedule_fire_is_recorded_once, |env| {
    let fire = chrono::DateTime::parse_from_rfc3339("2026-11-30T22:00:00Z").expect("time").with_timezone(&chrono::Utc);
    let store = env.store.clone();
    let (a, b) = tokio::join!(store.record_fire("acme-east", fire), env.store.record_fire("acme-east", fire));
    assert_eq!(
        [a.expect("a"), b.expect("b")].iter().filter(|won| **won).count(),
        1,
        "exactly one daemon takes the fire"
    );
    assert!(!env.store.record_fire("acme-east", fire).await.expect("again"), "a restart does not fire it again");
    assert!(env.store.record_fire("acme-west", fire).await.expect("other subsidiary"));
    assert_eq!(env.store.last_fire("acme-east").await.expect("last"), Some(fire));
});

both_backends!(a_batch_another_process_is_sending_is_not_taken_for_a_crashed_one, |env| {
    queued_loads(&env, 2).await;
    // Its sender holds the lease from the moment the batch is written (renewed while the
    // transport works): there is no instant at which another process could take it.
    let sending = write_ahead_holding(&env, std::time::Duration::from_secs(60)).await;
    let reports = submit::reconcile_in_flight(&env.store, &env.settings).await.expect("reconcile");
    assert!(reports.is_empty(), "a live batch is left alone: {reports:#?}");
    let report = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert!(report.batches.is_empty(), "its loads are not sent again: {report:#?}");
    assert_eq!(env.store.batches_in_flight().await.expect("in flight").len(), 1);

    // Once the lease runs out (its sender died), reconciliation takes it.
    env.store.renew_batch_lease(&sending, std::time::Duration::from_millis(1)).await.expect("short lease");
    let store = env.store.clone();
    let settings = &env.settings;
    let reports = crate::harness::wait_for(std::time::Duration::from_secs(10), "the lease to expire", || {
        let store = store.clone();
        async move { submit::reconcile_in_flight(&store, settings).await.ok().filter(|r| !r.is_empty()) }
    })
    .await;
    assert_eq!((reports[0].id.as_str(), reports[0].reconciled), (sending.as_str(), true));
});

/// The text of a PDF, from poppler's pdftotext (the test oracle scripts/test installs).
fn pdf_text(path: &Path) -> String {
    let output = std::process::Command::new("pdftotext").arg(path).arg("-").output().expect("pdftotext runs");
    assert!(output.status.success(), "pdftotext failed on {}", path.display());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The test config with the subsidiary's provider and NOA replaced, loaded as a reload would.
pub fn switched_settings(env: &TestEnv, provider_line: &str, noa: &str) -> factord::config::Settings {
    let text = std::fs::read_to_string(&env.config_path).expect("config");
    let text = text
        .replace("provider = \"capital_depot\"", provider_line)
        .replace("noa = \"Pay Capital Depot only.\"", &format!("noa = \"{noa}\""));
    let path = env.path("config/switched.toml");
    std::fs::write(&path, text).expect("write");
    factord::config::Settings::load(&path, &factord::config::Environment::new()).expect("switched config is valid")
}

both_backends!(switching_the_factor_rebuilds_unsent_packets_with_the_new_noa, |env| {
    queued_loads(&env, 3).await;
    // One invoice goes to Capital Depot before the switch and stays with it.
    let first = run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert_eq!(first.batches.len(), 1);
    queued_loads_more(&env, 4, 5).await;
    let before = env.store.load_detail("S-04").await.expect("detail").expect("load");
    let invoice = before.load.invoice_number.clone().expect("numbered");
    let packet = PathBuf::from(before.load.packet_path.clone().expect("packet"));
    assert!(pdf_text(&packet).contains("Pay Capital Depot only."));

    let switched = switched_settings(&env, "provider = \"wex_fleetone\"", "Pay Wex FleetOne only, remit to Wex.");
    let report = run_once(&env.store, &switched, None, false, "command").await.expect("submit");
    assert_eq!(report.batches.len(), 1, "{report:#?}");
    assert_eq!(report.batches[0].invoices, 2, "only the loads not yet sent: {report:#?}");
    let folder = std::fs::read_dir(env.path("outbox/acme-east/wex_fleetone"))
        .expect("wex outbox")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("batch folder");
    let uid8 = folder.file_name().expect("name").to_string_lossy().rsplit_once('_').expect("a uid").1.to_string();
    let sent = pdf_text(&folder.join(format!("{invoice}_{uid8}.pdf")));
    assert!(sent.contains("Pay Wex FleetOne only, remit to Wex."), "{sent}");
    assert!(!sent.contains("Capital Depot"), "the old NOA is gone: {sent}");
    let after = env.store.load_detail("S-04").await.expect("detail").expect("load");
    assert_eq!(after.load.invoice_number.as_deref(), Some(invoice.as_str()), "the invoice number stays");
    assert_eq!(after.load.factor.as_deref(), Some("wex_fleetone"));
    // Sent before the switch: Capital Depot holds it, and its reports still apply.
    let old = env.store.load_detail("S-01").await.expect("detail").expect("load");
    assert_eq!((old.load.status, old.load.factor.as_deref()), (LoadStatus::Invoiced, Some("capital_depot")));
    let report = env.path("capital.csv");
    std::fs::write(&report, "Invoice #,Advance\nAE-1,90.00\n").expect("write");
    let summary =
        factord::reports::ingest_file(&env.store, &switched, &report, "capital_depot", None).await.expect("ingest");
    assert_eq!(summary.applied, 1, "{summary:#?}");
});

both_backends!(a_queued_packet_for_an_old_noa_waits_until_it_is_rebuilt, |env| {
    queued_loads(&env, 2).await;
    let switched = switched_settings(&env, "provider = \"capital_depot\"", "Pay Capital Depot at its new bank only.");
    // The pre-flight holds the stale packets back and says why (a dry run rebuilds nothing).
    let dry = run_once(&env.store, &switched, None, true, "command").await.expect("dry run");
    assert!(dry.would_send.is_empty(), "{dry:#?}");
    assert_eq!(dry.waiting.len(), 2, "{dry:#?}");
    assert!(dry.waiting[0].reason.contains("rebuilt with the current NOA"), "{dry:#?}");
    // The invoice pass rebuilds them under the same numbers; then they go.
    let pass = invoicing::run_once(&env.store, &switched, None, &CancellationToken::new()).await.expect("invoice");
    let rebuilt: Vec<&str> = pass.rebuilt.rebuilt.iter().map(|r| r.invoice_number.as_str()).collect();
    assert_eq!(rebuilt, vec!["AE-1", "AE-2"], "{pass:#?}");
    let packet = env.path("data/packets/acme-east/AE-1.pdf");
    assert!(pdf_text(&packet).contains("new bank"));
    let again = invoicing::run_once(&env.store, &switched, None, &CancellationToken::new()).await.expect("invoice");
    assert!(again.rebuilt.rebuilt.is_empty(), "built once: {again:#?}");
    let dry = run_once(&env.store, &switched, None, true, "command").await.expect("dry run");
    assert_eq!(dry.would_send.len(), 1, "{dry:#?}");
    let leftovers: Vec<_> = std::fs::read_dir(env.path("data/packets/acme-east"))
        .expect("packets")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temp file left: {leftovers:?}");
});

both_backends!(a_packet_that_cannot_be_rebuilt_waits_with_the_reason_and_the_pass_ends, |env| {
    queued_loads(&env, 2).await;
    std::fs::remove_file(env.path("documents/pod.pdf")).expect("remove the POD");
    let switched = switched_settings(&env, "provider = \"wex_fleetone\"", "Pay Wex FleetOne only.");
    let pass = invoicing::run_once(&env.store, &switched, None, &CancellationToken::new()).await.expect("invoice");
    assert!(pass.rebuilt.rebuilt.is_empty(), "{pass:#?}");
    assert_eq!(pass.rebuilt.failed.len(), 2, "each tried once: {pass:#?}");
    let detail = env.store.load_detail("S-01").await.expect("detail").expect("load");
    let reason = detail.load.waiting_reason.unwrap_or_default();
    assert!(reason.contains("wex_fleetone's NOA") && reason.contains("POD"), "{reason}");
    let report = run_once(&env.store, &switched, None, false, "command").await.expect("submit");
    assert!(report.batches.is_empty(), "nothing goes with the old NOA: {report:#?}");
    assert!(std::fs::read_dir(env.path("outbox/acme-east")).map(|d| d.count()).unwrap_or(0) == 0);
});
