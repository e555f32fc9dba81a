//! The invoice job: numbering, packets (page count, order, text), direct invoicing, the reasons
//! a load waits and how they clear, and crashes in the middle of a pass.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use factord::config::{Environment, Settings};
use factord::domain::LoadStatus;
use factord::intake::import_load_file;
use factord::invoicing::run_once;
use factord::store::{LoadFilter, Store};
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::harness::{Backend, TestEnv, loads_csv, wait_for};
use crate::pdfs;

/// A third subsidiary for the override and inactive-provider cases.
const NORTH: &str = r#"
[[subsidiary]]
id = "acme-north"
name = "ACME Freight North LLC"
address = "1 Lake Shore Dr, Chicago, IL 60601"
timezone = "America/Chicago"
invoice_prefix = "AN-"
noa = "Remit to Triumph, P.O. Box 610028, Dallas, TX 75261."
customer_overrides = { "BRK-9" = "direct" }

[subsidiary.factoring]
provider = "triumph"
active = false
"#;

/// Writes a rate confirmation of `rc_pages` pages and a one-page POD for `load`.
fn documents(env: &TestEnv, load: &str, rc_pages: usize) {
    let dir = env.path("documents");
    std::fs::create_dir_all(&dir).expect("mkdir documents");
    std::fs::write(dir.join(format!("{load}-rc.pdf")), pdfs::rate_confirmation(load, rc_pages)).expect("rc");
    let jpeg = pdfs::scanned_jpeg(400, 300, 7);
    std::fs::write(dir.join(format!("{load}-pod.pdf")), pdfs::pod_with_jpeg(load, &jpeg)).expect("pod");
}

/// A CSV row for a load with both documents.
fn row(load: &str, subsidiary: &str, customer: &str, amount: &str) -> String {
    format!(
        "{load},{subsidiary},{customer},Blue River Logistics,123456,\"{amount}\",,2026-11-20,{load}-pod.pdf,{load}-rc.pdf,PO-{load},,"
    )
}

async fn import_rows(env: &TestEnv, rows: &[String]) {
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let file = env.write("import.csv", &loads_csv(&refs));
    let report = import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    assert_eq!(report.counts.rejected, 0, "{report:#?}");
}

fn pdftotext(path: &Path, page: Option<usize>) -> String {
    let mut command = Command::new("pdftotext");
    command.arg("-layout");
    if let Some(page) = page {
        command.args(["-f", &page.to_string(), "-l", &page.to_string()]);
    }
    let output = command.arg(path).arg("-").output().expect("pdftotext runs (install poppler-utils)");
    assert!(output.status.success(), "pdftotext failed on {}", path.display());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn page_count(path: &Path) -> usize {
    lopdf::Document::load(path).expect("packet loads").get_pages().len()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".part"))
                .collect()
        })
        .unwrap_or_default()
}

async fn detail(store: &Store, load: &str) -> factord::store::LoadDetail {
    store.load_detail(load).await.expect("detail").expect("load exists")
}

both_backends!(a_factored_load_gets_a_numbered_packet_in_order, |env| {
    documents(&env, "L-1", 2);
    documents(&env, "L-2", 1);
    import_rows(&env, &[row("L-1", "acme-east", "BRK-1", "$2,450.00"), row("L-2", "acme-east", "BRK-1", "980")]).await;

    let report = run_once(&env.store, &env.settings, None, &CancellationToken::new()).await.expect("pass");
    assert_eq!(report.invoiced.len(), 2, "{report:#?}");
    assert!(report.waiting.is_empty() && report.failed.is_empty(), "{report:#?}");

    let l1 = detail(&env.store, "L-1").await;
    assert_eq!(l1.load.status, LoadStatus::Queued);
    assert_eq!(l1.load.invoice_number.as_deref(), Some("AE-1"));
    assert_eq!(l1.load.waiting_reason, None);
    let last = l1.history.last().expect("history");
    assert_eq!((last.from, last.to), (Some(LoadStatus::Released), LoadStatus::Queued));
    assert_eq!(last.cause, "invoice AE-1 generated");
    let packet = env.path("data/packets/acme-east/AE-1.pdf");
    assert_eq!(l1.load.packet_path.as_deref(), Some(packet.display().to_string().as_str()));

    // Invoice (1 page) + rate confirmation (2) + POD (1), in that order.
    assert_eq!(page_count(&packet), 4);
    let invoice = pdftotext(&packet, Some(1));
    for needle in [
        "AE-1",
        "$2,450.00",
        "Pay Capital Depot only.",
        "ACME Freight East LLC",
        "L-1",
        "PO-L-1",
        "Blue River Logistics",
    ] {
        assert!(invoice.contains(needle), "page 1 lacks {needle:?}:\n{invoice}");
    }
    assert!(pdftotext(&packet, Some(2)).contains("RATE CONFIRMATION page 1 of 2"));
    assert!(pdftotext(&packet, Some(3)).contains("RATE CONFIRMATION page 2 of 2"));
    assert!(pdftotext(&packet, Some(4)).contains("PROOF OF DELIVERY"));
    assert_eq!(page_count(&env.path("data/packets/acme-east/AE-2.pdf")), 3);
    assert_eq!(detail(&env.store, "L-2").await.load.invoice_number.as_deref(), Some("AE-2"));
    assert!(leftovers(&env.path("data/packets/acme-east")).is_empty());

    // Nothing left to do: a second pass changes nothing.
    let again = run_once(&env.store, &env.settings, None, &CancellationToken::new()).await.expect("pass");
    assert!(again.invoiced.is_empty());
    assert_eq!(detail(&env.store, "L-1").await.history.len(), 2);
});

both_backends!(two_concurrent_passes_number_every_load_once_without_gaps, |env| {
    documents(&env, "shared", 1);
    let rows: Vec<String> = (1..=40)
        .map(|i| format!("C-{i:02},acme-east,BRK-1,Blue,123456,{i}00.00,,,shared-pod.pdf,shared-rc.pdf,,,"))
        .collect();
    import_rows(&env, &rows).await;
    let never = CancellationToken::new();
    let (a, b) = tokio::join!(
        run_once(&env.store, &env.settings, None, &never),
        run_once(&env.store, &env.settings, None, &never)
    );
    let (a, b) = (a.expect("pass a"), b.expect("pass b"));
    assert_eq!(a.invoiced.len() + b.invoiced.len(), 40, "each load invoiced by exactly one pass");

    let loads = env.store.list_loads(&LoadFilter::default()).await.expect("list");
    let mut numbers: Vec<u32> = loads
        .iter()
        .map(|l| {
            assert_eq!(l.load.status, LoadStatus::Queued, "{}", l.load.load_number);
            l.load
                .invoice_number
                .as_deref()
                .and_then(|n| n.strip_prefix("AE-"))
                .expect("AE- number")
                .parse()
                .expect("number")
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=40).collect::<Vec<u32>>(), "unique and gap-free");
    for load in &loads {
        let history = detail(&env.store, &load.load.load_number).await.history;
        assert_eq!(history.iter().filter(|h| h.to == LoadStatus::Queued).count(), 1);
    }
    assert!(leftovers(&env.path("data/packets/acme-east")).is_empty());
});

both_backends!(after_a_database_reset_a_direct_invoice_of_a_known_number_goes_beside_the_old_file, |env| {
    documents(&env, "D-1", 1);
    import_rows(&env, &[row("D-1", "acme-west", "BRK-1", "1500.00")]).await;
    let report = run_once(&env.store, &env.settings, None, &CancellationToken::new()).await.expect("pass");
    assert_eq!(report.invoiced.len(), 1, "{report:#?}");
    let old = env.path("outbox/acme-west/direct/AW-1.pdf");
    let before = std::fs::read(&old).expect("AW-1.pdf");

    // The README's reset: a new database numbers invoices from 1 again; the outbox is kept.
    let Some(mut fresh) = TestEnv::new(env.backend).await else { return };
    fresh.settings.paths.outbox = env.path("outbox");
    documents(&fresh, "D-7", 1);
    import_rows(&fresh, &[row("D-7", "acme-west", "BRK-1", "2222.00")]).await;
    let report = run_once(&fresh.store, &fresh.settings, None, &CancellationToken::new()).await.expect("pass");
    assert_eq!(report.invoiced.len(), 1, "{report:#?}");

    let d7 = detail(&fresh.store, "D-7").await;
    assert_eq!((d7.load.status, d7.load.invoice_number.as_deref()), (LoadStatus::Invoiced, Some("AW-1")));
    assert_eq!(std::fs::read(&old).expect("AW-1.pdf"), before, "the earlier invoice is not replaced");
    let new = env.path("outbox/acme-west/direct/AW-1_2.pdf");
    assert_eq!(d7.load.packet_path.as_deref(), Some(new.display().to_string().as_str()), "the load records its file");
    let text = pdftotext(&new, Some(1));
    assert!(text.contains("AW-1") && text.contains("$2,222.00") && text.contains("D-7"), "{text}");
    assert!(leftovers(&env.path("outbox/acme-west/direct")).is_empty());

    // A crash between the commit and the rename leaves the temp file: the next pass publishes
    // it under the name the load recorded, not over the earlier AW-1.pdf.
    let temp = env.path("outbox/acme-west/direct/.AW-1.0123abcd.part");
    std::fs::rename(&new, &temp).expect("back to the temp name");
    run_once(&fresh.store, &fresh.settings, None, &CancellationToken::new()).await.expect("pass");
    assert!(pdftotext(&new, Some(1)).contains("$2,222.00"), "published under AW-1_2.pdf");
    assert!(!temp.exists());
    assert_eq!(std::fs::read(&old).expect("AW-1.pdf"), before, "the earlier invoice is not replaced");

    // And the next one of that number after yet another reset: `_3`.
    let Some(mut third) = TestEnv::new(env.backend).await else { return };
    third.settings.paths.outbox = env.path("outbox");
    documents(&third, "D-8", 1);
    import_rows(&third, &[row("D-8", "acme-west", "BRK-1", "333.00")]).await;
    run_once(&third.store, &third.settings, None, &CancellationToken::new()).await.expect("pass");
    let d8 = detail(&third.store, "D-8").await;
    let path = env.path("outbox/acme-west/direct/AW-1_3.pdf").display().to_string();
    assert_eq!(d8.load.packet_path.as_deref(), Some(path.as_str()));
    assert_eq!(std::fs::read(&old).expect("AW-1.pdf"), before);
});

#[tokio::test]
async fn direct_customers_get_their_invoice_in_the_outbox() {
    let env = TestEnv::with_config(Backend::Sqlite, NORTH).await.expect("env");
    documents(&env, "D-1", 1);
    documents(&env, "D-2", 1);
    documents(&env, "F-1", 1);
    import_rows(
        &env,
        &[
            row("D-1", "acme-west", "BRK-1", "1500.00"), // a direct subsidiary
            row("D-2", "acme-north", "BRK-9", "700.00"), // a direct override in a factoring subsidiary
            row("F-1", "acme-north", "BRK-1", "800.00"), // factored, but the provider is inactive
        ],
    )
    .await;
    let report = run_once(&env.store, &env.settings, None, &CancellationToken::new()).await.expect("pass");
    assert_eq!(report.invoiced.len(), 2, "{report:#?}");

    let d1 = detail(&env.store, "D-1").await;
    assert_eq!(d1.load.status, LoadStatus::Invoiced);
    assert_eq!(d1.load.invoice_number.as_deref(), Some("AW-1"));
    let file = env.path("outbox/acme-west/direct/AW-1.pdf");
    assert_eq!(page_count(&file), 3, "invoice + RC + POD behind it (AutoMerge on)");
    let text = pdftotext(&file, Some(1));
    assert!(text.contains("AW-1") && text.contains("$1,500.00"), "{text}");
    assert!(!text.contains("NOTICE OF ASSIGNMENT"), "a direct invoice carries no NOA:\n{text}");
    let last = d1.history.last().expect("history");
    assert_eq!((last.from, last.to), (Some(LoadStatus::Released), LoadStatus::Invoiced));

    let d2 = detail(&env.store, "D-2").await;
    assert_eq!(d2.load.status, LoadStatus::Invoiced);
    let file = env.path(&format!("outbox/acme-north/direct/{}.pdf", d2.load.invoice_number.expect("number")));
    assert!(!pdftotext(&file, Some(1)).contains("Remit to Triumph"), "the override drops the NOA");

    // The factored load of the same subsidiary waits Released while its provider is inactive:
    // no invoice is made that could carry a stale NOA.
    let f1 = detail(&env.store, "F-1").await;
    assert_eq!(f1.load.status, LoadStatus::Released);
    assert_eq!(f1.load.invoice_number, None, "no number is taken for a load that waits");
    assert!(
        f1.load
            .waiting_reason
            .as_deref()
            .is_some_and(|r| r.contains("factoring provider triumph is inactive for acme-north")),
        "{:?}",
        f1.load.waiting_reason
    );
    assert_eq!(report.waiting.len(), 1);
}

#[tokio::test]
async fn each_reason_to_wait_is_shown_and_clears_when_fixed() {
    let env = TestEnv::with_config(Backend::Sqlite, NORTH).await.expect("env");
    let docs = env.path("documents");
    for load in ["W-1", "W-2", "W-3", "W-4", "W-5", "W-6", "W-7"] {
        documents(&env, load, 1);
    }
    std::fs::remove_file(docs.join("W-2-rc.pdf")).expect("remove rc");
    std::fs::write(docs.join("W-3-pod.pdf"), "this is a scanned note, not a PDF").expect("not a pdf");
    std::fs::write(docs.join("W-4-pod.pdf"), pdfs::encrypted_pdf()).expect("encrypted");
    let whole = pdfs::rate_confirmation("W-5", 3);
    std::fs::write(docs.join("W-5-pod.pdf"), &whole[..whole.len() / 3]).expect("damaged");
    let mut no_pod = row("W-1", "acme-east", "BRK-1", "100.00");
    no_pod = no_pod.replace("W-1-pod.pdf", "");
    import_rows(
        &env,
        &[
            no_pod,
            row("W-2", "acme-east", "BRK-1", "100.00"),
            row("W-3", "acme-east", "BRK-1", "100.00"),
            row("W-4", "acme-east", "BRK-1", "100.00"),
            row("W-5", "acme-east", "BRK-1", "100.00"),
            row("W-6", "acme-east", "BRK-1", "0.00"),
            row("W-7", "acme-north", "BRK-1", "100.00"),
        ],
    )
    .await;
    // W-7's subsidiary is then removed from the configuration.
    let without_north = std::fs::read_to_string(&env.config_path).expect("config").replace(NORTH, "");
    let other_config = env.write("config-without-north/factord.toml", &without_north);
    let settings = Settings::load(&other_config, &Environment::new()).expect("config without acme-north");

    let report = run_once(&env.store, &settings, None, &CancellationToken::new())
        .await
        .expect("pass never fails on bad documents");
    assert!(report.invoiced.is_empty(), "{report:#?}");
    let expected = [
        ("W-1", "missing POD"),
        ("W-2", "W-2-rc.pdf not found"),
        ("W-3", "is not a PDF"),
        ("W-4", "is encrypted"),
        ("W-5", "is damaged"),
        ("W-6", "amount is not positive (0.00)"),
        ("W-7", "subsidiary `acme-north` is not configured"),
    ];
    for (load, reason) in expected {
        let d = detail(&env.store, load).await;
        assert_eq!(d.load.status, LoadStatus::Released, "{load}");
        let waiting = d.load.waiting_reason.unwrap_or_default();
        assert!(waiting.contains(reason), "{load}: expected {reason:?} in {waiting:?}");
        assert!(report.waiting.iter().any(|w| w.load_number == load), "{load} reported as waiting");
    }
    let counts = env.store.status_counts().await.expect("counts");
    assert_eq!(counts.iter().find(|c| c.subsidiary == "acme-east").expect("east").waiting, 6);

    // Fixing the cause clears the reason: the POD arrives with a re-import, the RC is copied in.
    documents(&env, "W-1", 1);
    import_rows(&env, &[row("W-1", "acme-east", "BRK-1", "100.00")]).await;
    documents(&env, "W-2", 1);
    let report = run_once(&env.store, &settings, None, &CancellationToken::new()).await.expect("pass");
    assert_eq!(report.invoiced.iter().map(|i| i.load_number.as_str()).collect::<Vec<_>>(), vec!["W-1", "W-2"]);
    for load in ["W-1", "W-2"] {
        let d = detail(&env.store, load).await;
        assert_eq!(d.load.status, LoadStatus::Queued);
        assert_eq!(d.load.waiting_reason, None, "{load}: the reason clears");
    }
    // With its subsidiary configured again, W-7 waits for its inactive provider…
    let report = run_once(&env.store, &env.settings, None, &CancellationToken::new()).await.expect("pass");
    assert!(report.invoiced.is_empty(), "{report:#?}");
    let waiting = detail(&env.store, "W-7").await.load.waiting_reason.unwrap_or_default();
    assert!(waiting.contains("factoring provider triumph is inactive for acme-north"), "{waiting}");
    // …and is invoiced once a provider is active.
    let active = std::fs::read_to_string(&env.config_path).expect("config").replace(
        "provider = \"triumph\"\nactive = false",
        "provider = \"capital_depot\"\nschedule = \"0 0 16 * * Mon-Fri\"",
    );
    let active_config = env.write("config-active/factord.toml", &active);
    let settings = Settings::load(&active_config, &Environment::new()).expect("config with an active provider");
    let report = run_once(&env.store, &settings, None, &CancellationToken::new()).await.expect("pass");
    assert_eq!(report.invoiced.iter().map(|i| i.load_number.as_str()).collect::<Vec<_>>(), vec!["W-7"]);
    assert_eq!(detail(&env.store, "W-7").await.load.waiting_reason, None);
}

/// `factord invoice` killed with SIGKILL at several moments of a pass over many loads; after
/// the restarts every load is Queued exactly once, numbers are gap-free, every packet is whole
/// and no temp file is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_killed_midway_is_completed_by_the_next_one() {
    let env = TestEnv::with_config(Backend::Sqlite, "[invoicing]\nlease = \"1s\"\n").await.expect("env");
    documents(&env, "shared", 2);
    let count = 60;
    let rows: Vec<String> = (1..=count)
        .map(|i| format!("K-{i:03},acme-east,BRK-1,Blue,123456,{i}.00,,,shared-pod.pdf,shared-rc.pdf,,,"))
        .collect();
    import_rows(&env, &rows).await;
    let binary = env!("CARGO_BIN_EXE_factord");
    let invoice = || {
        let mut command = Command::new(binary);
        command.arg("--config").arg(&env.config_path).arg("invoice").current_dir(env.dir.path());
        command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        command
    };
    // Five passes, each killed right after it has queued its first load (in the middle of the
    // pass: the next load's number may be taken, its packet half written), whatever the speed
    // of the machine. Claims of killed passes expire after the 1 s lease.
    let queued = || async {
        env.store
            .list_loads(&LoadFilter { status: Some(LoadStatus::Queued), ..LoadFilter::default() })
            .await
            .expect("list")
            .len()
    };
    for round in 0..5 {
        let before = queued().await;
        // A pass started while the killed one's claims are still leased finds nothing to do
        // and ends: start another until one gets to work, then kill it.
        let child = std::sync::Mutex::new(invoice().spawn().expect("spawn factord invoice"));
        wait_for(Duration::from_secs(60), "a pass to queue a load", || async {
            if queued().await > before {
                return Some(());
            }
            let mut running = child.lock().expect("child");
            if running.try_wait().expect("child status").is_some() {
                *running = invoice().spawn().expect("respawn factord invoice");
            }
            None
        })
        .await;
        let mut child = child.into_inner().expect("child");
        let _ = child.kill();
        let _ = child.wait();
        assert!(queued().await < count, "round {round}: killed mid-pass, before every load was done");
    }
    // The kills really landed mid-pass: some loads are done, some are not.
    let released = env
        .store
        .list_loads(&LoadFilter { status: Some(LoadStatus::Released), ..LoadFilter::default() })
        .await
        .expect("list");
    assert!(
        !released.is_empty() && released.len() < count,
        "{} of {count} still Released after the kills",
        released.len()
    );
    // Restart until everything is done.
    wait_for(Duration::from_secs(60), "every load to be Queued", || async {
        let status = invoice().status().expect("run factord invoice");
        assert!(status.success() || status.code() == Some(1), "{status:?}");
        let loads = env
            .store
            .list_loads(&LoadFilter { status: Some(LoadStatus::Released), ..LoadFilter::default() })
            .await
            .expect("list");
        loads.is_empty().then_some(())
    })
    .await;

    let loads = env.store.list_loads(&LoadFilter::default()).await.expect("list");
    assert_eq!(loads.len(), count);
    let mut numbers: Vec<usize> = Vec::new();
    for load in &loads {
        assert_eq!(load.load.status, LoadStatus::Queued);
        let number = load.load.invoice_number.clone().expect("numbered");
        numbers.push(number.trim_start_matches("AE-").parse().expect("number"));
        let history = detail(&env.store, &load.load.load_number).await.history;
        assert_eq!(history.iter().filter(|h| h.to == LoadStatus::Queued).count(), 1, "{}", load.load.load_number);
        let packet = env.path(&format!("data/packets/acme-east/{number}.pdf"));
        assert_eq!(page_count(&packet), 1 + 2 + 1, "{} is whole", packet.display());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=count).collect::<Vec<_>>(), "gap-free: a kill never burns a number");
    assert!(leftovers(&env.path("data/packets/acme-east")).is_empty(), "no temp file left");
}

/// A load re-imported while an invoice pass holds it (say its amount was corrected) loses that
/// pass's claim: the pass cannot queue a packet made from the old fields.
#[tokio::test]
async fn a_reimport_during_a_pass_takes_the_load_from_that_pass() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    documents(&env, "R-1", 1);
    import_rows(&env, &[row("R-1", "acme-east", "BRK-1", "100.00")]).await;
    let claimed = env.store.claim_released_loads(None, "pass-a", Duration::from_secs(60), 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    import_rows(&env, &[row("R-1", "acme-east", "BRK-1", "120.00")]).await;
    let number = env.store.assign_invoice_number(&claimed[0], "pass-a", "AE-").await;
    assert!(matches!(number, Err(factord::store::ClaimError::Lost(_))), "{number:?}");
    // The next pass makes the invoice from the corrected amount.
    let report = run_once(&env.store, &env.settings, None, &CancellationToken::new()).await.expect("pass");
    assert_eq!(report.invoiced.len(), 1);
    let packet = env.path("data/packets/acme-east/AE-1.pdf");
    assert!(pdftotext(&packet, Some(1)).contains("$120.00"));
}
