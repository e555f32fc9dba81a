//! Batch submission under faults (docs/reliability.md, "The fault tests that prove it"), through the real
//! submit job and the real binary, against the fake factors of [`crate::fakes`]:
//!
//! - FTP and OTR end to end from a config file: Queued → `submit::run_once` → Invoiced, with
//!   what the factor received read back from its side;
//! - faults that leave the loads Queued with the reason visible, then recover: an FTP server
//!   down, a refused rename, OTR answering 500 (and 429 with `Retry-After`), a hung API;
//! - `factord submit` killed with SIGKILL while the factor is stalled at a chosen step, then run
//!   again: every load ends Invoiced exactly once, and the factor holds every invoice once, under
//!   its final name only.
//!
//! The outbox is not here: its crash cases (final folder present or absent) are in `submit.rs`.

use std::net::TcpListener as StdListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use factord::config::{Environment, Settings};
use factord::domain::{CreditResult, ExceptionKind, LoadStatus, Money};
use factord::intake::import_load_file;
use factord::invoicing;
use factord::providers::api::ApiTransport;
use factord::providers::batch::{Batch, BatchInvoice, BatchSeller, ProviderError};
use factord::providers::find_provider;
use factord::store::{BatchSummary, LoadDetail, NewCreditCheck, Store};
use factord::submit::run_once;
use libunftp::notification::DataEvent;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::fakes::api::{self as fake_api, Otr, OtrStall, lock, otr_server, pkey};
use crate::fakes::ftp::{self as fake_ftp, Script, ScriptedServer, Stall, StallPoint, TestServer, base_name};
use crate::harness::{Backend, TestEnv, loads_csv, wait_for};
use crate::pdfs;

/// How long a child `factord submit` (or a fake waiting for it) may take before a test fails.
const DEADLINE: Duration = Duration::from_secs(30);

// ---- Fixtures ---------------------------------------------------------------------------------

/// Imports `count` loads for acme-east (S-01…, customer MC 123456) with their documents and
/// invoices them under `settings`: all Queued, invoices AE-1… in load order.
pub(crate) async fn queue_loads(env: &TestEnv, settings: &Settings, count: usize) {
    let dir = env.path("documents");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("rc.pdf"), pdfs::rate_confirmation("F", 1)).expect("rc");
    std::fs::write(dir.join("pod.pdf"), pdfs::pod_with_jpeg("F", &pdfs::scanned_jpeg(120, 80, 3))).expect("pod");
    // The lane too: OTR requires it.
    let rows: Vec<String> = (1..=count)
        .map(|i| format!("S-{i:02},acme-east,BRK-1,Blue,123456,{i}00.00,,,pod.pdf,rc.pdf,PO-{i},,,Dallas,TX,Tulsa,OK"))
        .collect();
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let csv = loads_csv(&refs).replacen('\n', ",pickup_city,pickup_state,delivery_city,delivery_state\n", 1);
    let file = env.write("loads.csv", &csv);
    import_load_file(&env.store, settings, &file, None).await.expect("import");
    let report = invoicing::run_once(&env.store, settings, None, &CancellationToken::new()).await.expect("invoice");
    assert_eq!(report.invoiced.len(), count, "{report:#?}");
}

fn load_numbers(count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("S-{i:02}")).collect()
}

fn invoice_numbers(count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("AE-{i}")).collect()
}

/// Writes `secrets/<name>` and returns its path.
pub(crate) fn secret(env: &TestEnv, name: &str, value: &str) -> PathBuf {
    env.write(&format!("secrets/{name}"), &format!("{value}\n"))
}

/// Writes `<dir>/factord.toml`: the harness's config with acme-east's `[subsidiary.factoring]`
/// body replaced by `factoring` (provider and connection table), and loads it.
pub(crate) fn provider_config(env: &TestEnv, dir: &str, factoring: &str) -> (PathBuf, Settings) {
    let shipped = "[subsidiary.factoring]\nprovider = \"capital_depot\"\nschedule = \"0 0 16 * * Mon-Fri\"\n";
    let text = std::fs::read_to_string(&env.config_path).expect("config");
    assert!(text.contains(shipped), "the harness config changed:\n{text}");
    let text =
        text.replace(shipped, &format!("[subsidiary.factoring]\nschedule = \"0 0 16 * * Mon-Fri\"\n{factoring}\n"));
    // A short batch lease, so a killed sender's batch can be reconciled a second later.
    let text = format!("[submission]\nlease = \"1s\"\n\n{text}");
    let path = env.write(&format!("{dir}/factord.toml"), &text);
    let settings = Settings::load(&path, &Environment::new()).expect("provider config is valid");
    (path, settings)
}

/// WinFactor over plain FTP on 127.0.0.1:`port`, password from a file.
fn ftp_config(env: &TestEnv, port: u16) -> (PathBuf, Settings) {
    let password = secret(env, "ftp-password", fake_ftp::PASSWORD);
    let factoring = format!(
        "provider = \"winfactor\"\n\n[subsidiary.factoring.ftp]\nhost = \"127.0.0.1\"\nport = {port}\n\
         username = \"{user}\"\npassword_file = \"{password}\"\ndirectory = \"/incoming\"\ntls = \"none\"\n",
        user = fake_ftp::USER,
        password = password.display(),
    );
    provider_config(env, "config-ftp", &factoring)
}

/// OTR at `base_url`, credentials from files; acme-east has a USDOT in the harness config.
pub(crate) fn otr_config(env: &TestEnv, base_url: &str) -> (PathBuf, Settings) {
    let password = secret(env, "otr-password", fake_api::PASSWORD);
    let key = secret(env, "otr-subscription-key", fake_api::SUBSCRIPTION_KEY);
    let factoring = format!(
        "provider = \"otr\"\n\n[subsidiary.factoring.api]\nbase_url = \"{base_url}\"\nusername = \"{user}\"\n\
         password_file = \"{password}\"\nsubscription_key_file = \"{key}\"\n",
        user = fake_api::USERNAME,
        password = password.display(),
        key = key.display(),
    );
    provider_config(env, "config-otr", &factoring)
}

/// A port on 127.0.0.1 nobody listens on (until a test starts a server there).
fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// The stem of batch `acme-east-<number>`'s file names: date, number and the first 8 hex
/// digits of its uid.
async fn stem(env: &TestEnv, number: i64) -> String {
    let today = chrono::Utc::now().with_timezone(&chrono_tz::America::Chicago).date_naive();
    let uid = crate::harness::batch_uid(env, &format!("acme-east-{number}")).await;
    format!("acme-east_{}_{number}_{}", today.format("%Y%m%d"), &uid[..8])
}

/// The final names of a WinFactor batch of `count` invoices whose schedule is `csv`: the
/// packets `<invoice>_<uid8>.pdf` (the uid8 that ends the schedule's stem) and the schedule.
fn final_names(count: usize, csv: &str) -> Vec<String> {
    let mut names: Vec<String> = invoice_numbers(count).iter().map(|n| packet_name(n, csv)).collect();
    names.push(csv.to_string());
    names.sort();
    names
}

/// The remote name of `invoice`'s packet in the batch whose schedule is `csv`.
fn packet_name(invoice: &str, csv: &str) -> String {
    let uid8 = csv.trim_end_matches(".csv").rsplit('_').next().expect("a uid");
    format!("{invoice}_{uid8}.pdf")
}

/// The invoice numbers a schedule CSV lists, one per data row (the totals line is not one).
fn csv_invoices(csv: &[u8]) -> Vec<String> {
    let mut reader = csv::Reader::from_reader(csv);
    let mut invoices: Vec<String> = reader
        .records()
        .map(|record| record.expect("csv row")[0].to_string())
        .filter(|first| !first.starts_with("TOTAL"))
        .collect();
    invoices.sort();
    invoices
}

pub(crate) fn packet(env: &TestEnv, invoice: &str) -> Vec<u8> {
    std::fs::read(env.path(&format!("data/packets/acme-east/{invoice}.pdf"))).expect("packet")
}

pub(crate) async fn detail(store: &Store, load: &str) -> LoadDetail {
    store.load_detail(load).await.expect("detail").expect("load exists")
}

/// Every load is Invoiced by `batch`, moved there exactly once, forward only, nothing waiting.
async fn assert_invoiced_once(store: &Store, count: usize, batch: &str) {
    for number in load_numbers(count) {
        let detail = detail(store, &number).await;
        assert_eq!(detail.load.status, LoadStatus::Invoiced, "{number}: {detail:#?}");
        assert_eq!(detail.load.batch_id.as_deref(), Some(batch), "{number}");
        assert_eq!(detail.load.waiting_reason, None, "{number}");
        let moves: Vec<(Option<LoadStatus>, LoadStatus)> = detail.history.iter().map(|h| (h.from, h.to)).collect();
        assert_eq!(
            moves[moves.len() - 2..],
            [(Some(LoadStatus::Released), LoadStatus::Queued), (Some(LoadStatus::Queued), LoadStatus::Invoiced)],
            "{number}: Queued once, then Invoiced once: {moves:?}"
        );
        assert_eq!(moves.iter().filter(|(_, to)| *to == LoadStatus::Invoiced).count(), 1, "{number}: {moves:?}");
    }
}

/// Every load is still Queued, waiting with a reason that contains each of `needles`.
async fn assert_waiting(store: &Store, count: usize, needles: &[&str]) {
    for number in load_numbers(count) {
        let load = detail(store, &number).await.load;
        assert_eq!(load.status, LoadStatus::Queued, "{number}");
        let reason = load.waiting_reason.unwrap_or_default();
        for needle in needles {
            assert!(reason.contains(needle), "{number} waits with {needle:?} in its reason: {reason:?}");
        }
    }
}

/// Every batch as `status` shows it, oldest first: (id, status, accepted, rejected, transient)
/// from its items.
async fn batch_items(store: &Store) -> Vec<(String, String, i64, i64, i64)> {
    let mut recent = store.recent_batches(20).await.expect("recent batches");
    recent.reverse();
    recent.into_iter().map(|b| (b.id, b.status, b.accepted, b.rejected, b.transient)).collect()
}

async fn batch_summary(store: &Store, id: &str) -> BatchSummary {
    let recent = store.recent_batches(20).await.expect("recent batches");
    recent.into_iter().find(|b| b.id == id).unwrap_or_else(|| panic!("batch {id} is listed"))
}

// ---- Through the submit job -------------------------------------------------------------------

both_backends!(an_ftp_batch_goes_through_the_submit_job_and_lands_under_final_names, |env| {
    let server = TestServer::start(None);
    let (_, settings) = ftp_config(&env, server.addr.port());
    queue_loads(&env, &settings, 3).await;

    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");

    assert_eq!(report.batches.len(), 1, "{report:#?}");
    let batch = &report.batches[0];
    let csv = format!("{}.csv", stem(&env, 1).await);
    assert_eq!(
        (batch.id.as_str(), batch.provider.as_str(), batch.status.as_str()),
        ("acme-east-1", "winfactor", "sent")
    );
    assert_eq!((batch.accepted, batch.invoices, batch.total.as_str()), (3, 3, "600.00"));
    assert_eq!(batch.reference.as_deref(), Some(csv.as_str()));
    // On the server: the final names only, each packet byte for byte, one CSV row per invoice.
    assert_eq!(server.names(), final_names(3, &csv), "no temp file left");
    for invoice in invoice_numbers(3) {
        assert!(server.read(&packet_name(&invoice, &csv)) == packet(&env, &invoice), "{invoice} arrived intact");
    }
    let schedule = String::from_utf8(server.read(&csv)).expect("utf-8");
    assert!(schedule.contains(&format!(",{}", packet_name("AE-1", &csv))), "the Document column: {schedule}");
    assert!(schedule.starts_with("Invoice Number,Invoice Date,Load Number,Debtor Name,Debtor MC"), "{schedule}");
    assert!(schedule.contains(",S-02,Blue,123456,") && schedule.contains("TOTAL 3 invoices"), "{schedule}");
    assert_eq!(csv_invoices(&server.read(&csv)), invoice_numbers(3));
    assert!(server.stored().iter().all(|name| name.ends_with(".part")), "stored under temp names only");
    assert_invoiced_once(&env.store, 3, "acme-east-1").await;
    let reference = detail(&env.store, "S-01").await.load.submission_reference;
    assert_eq!(reference.as_deref(), Some(csv.as_str()));
});

both_backends!(an_otr_batch_goes_through_the_submit_job_and_each_invoice_is_created_once, |env| {
    let (url, otr) = otr_server(Otr::default()).await;
    let (_, settings) = otr_config(&env, &url);
    queue_loads(&env, &settings, 3).await;

    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");

    assert_eq!(report.batches.len(), 1, "{report:#?}");
    assert_eq!(
        (report.batches[0].status.as_str(), report.batches[0].accepted),
        ("sent", 3),
        "{report:#?} {:#?}",
        detail(&env.store, "S-01").await
    );
    assert_invoiced_once(&env.store, 3, "acme-east-1").await;
    for (n, load) in load_numbers(3).iter().enumerate() {
        let reference = detail(&env.store, load).await.load.submission_reference;
        assert_eq!(reference, Some(pkey(n + 1)), "{load}: OTR's invoicePkey");
    }
    let otr = lock(&otr);
    let numbers: Vec<&str> = otr.invoices.iter().map(|i| i.number.as_str()).collect();
    assert_eq!(numbers, ["AE-1", "AE-2", "AE-3"], "each invoice created once");
    assert!(
        otr.invoices.iter().all(|i| i.documents == [1, 3, 7]),
        "the POD file as 1, the rate confirmation file as 3, the packet as 7"
    );
    for invoice in &otr.invoices {
        assert!(invoice.files[0] == pdfs::pod_with_jpeg("F", &pdfs::scanned_jpeg(120, 80, 3)), "the POD file itself");
        assert!(invoice.files[1] == pdfs::rate_confirmation("F", 1), "the rate confirmation file itself");
        assert!(invoice.files[2] == packet(&env, &invoice.number), "the packet");
    }
    assert_eq!(otr.invoice_posts, 3);
    let lane = &otr.invoices[1].body;
    assert_eq!(
        (&lane["FromCity"], &lane["FromState"], &lane["ToCity"], &lane["ToState"], &lane["ClientDOT"]),
        (&json!("Dallas"), &json!("TX"), &json!("Tulsa"), &json!("OK"), &json!(1_234_567)),
        "the lane from the load export, the subsidiary's USDOT"
    );
    // One login for the credit check at invoice time (OTR offers checks), one for the batch.
    assert_eq!((otr.logins, otr.without_subscription_key), (2, 0));
    assert_eq!(otr.broker_checks, ["mc:123456"], "the customer checked once, before queueing");
});

both_backends!(an_otr_load_without_its_lane_waits_with_the_reason_and_otr_sees_no_invoice, |env| {
    let (url, otr) = otr_server(Otr::default()).await;
    let (_, settings) = otr_config(&env, &url);
    let dir = env.path("documents");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("rc.pdf"), pdfs::rate_confirmation("F", 1)).expect("rc");
    std::fs::write(dir.join("pod.pdf"), pdfs::pod_with_jpeg("F", &pdfs::scanned_jpeg(120, 80, 3))).expect("pod");
    // S-01 has no delivery state; S-02 has its whole lane.
    let csv = loads_csv(&[
        "S-01,acme-east,BRK-1,Blue,123456,100.00,,,pod.pdf,rc.pdf,PO-1,,,Dallas,TX,Tulsa,",
        "S-02,acme-east,BRK-1,Blue,123456,200.00,,,pod.pdf,rc.pdf,PO-2,,,Dallas,TX,Tulsa,OK",
    ])
    .replacen('\n', ",pickup_city,pickup_state,delivery_city,delivery_state\n", 1);
    import_load_file(&env.store, &settings, &env.write("loads.csv", &csv), None).await.expect("import");
    let invoiced = invoicing::run_once(&env.store, &settings, None, &CancellationToken::new()).await.expect("invoice");
    assert_eq!(invoiced.invoiced.len(), 2, "{invoiced:#?}");

    run_once(&env.store, &settings, None, false, "command").await.expect("submit");

    let waiting = detail(&env.store, "S-01").await.load;
    assert_eq!(waiting.status, LoadStatus::Queued);
    let reason = waiting.waiting_reason.unwrap_or_default();
    assert!(reason.contains("lane missing (pickup/delivery city and state)"), "{reason}");
    assert_eq!(detail(&env.store, "S-02").await.load.status, LoadStatus::Invoiced);
    let otr = lock(&otr);
    assert_eq!((otr.invoice_posts, otr.bad_requests), (1, 0), "only S-02's invoice reached OTR");
    assert_eq!(otr.invoices.iter().map(|i| i.number.as_str()).collect::<Vec<_>>(), ["AE-2"]);
});

// ---- Faults that leave the loads Queued, then recover -----------------------------------------

both_backends!(an_ftp_server_that_is_down_leaves_the_batch_unsettled_visibly_and_the_next_run_delivers, |env| {
    let port = free_port();
    let (_, settings) = ftp_config(&env, port);
    queue_loads(&env, &settings, 2).await;

    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");

    // The factor cannot be asked whether anything arrived: the outcome stays unknown, the batch
    // `sending` (its lease given up), the loads Queued in it, and all of it visible.
    let endpoint = format!("127.0.0.1:{port}");
    let unknown = &report.batches[0];
    assert_eq!((unknown.status.as_str(), unknown.accepted), ("sending", 0), "{report:#?}");
    assert!(unknown.error.as_deref().is_some_and(|e| e.contains(&endpoint) && e.contains("connect")), "{unknown:?}");
    assert_waiting(&env.store, 2, &["outcome unknown", &endpoint]).await;
    // What `factord status` shows.
    let summary = batch_summary(&env.store, "acme-east-1").await;
    assert_eq!(summary.status.as_str(), "sending");
    assert!(summary.error.as_deref().is_some_and(|e| e.contains(&endpoint)), "{summary:?}");
    // Nothing is resent while the outcome is unknown.
    assert!(env.store.loads_to_submit("acme-east").await.expect("loads").is_empty());

    // The server comes up where the config points: the next run asks it first, finds nothing
    // of batch 1, settles it as not delivered, and sends the loads in batch 2.
    let server = TestServer::start_on(None, port);
    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");

    let settled: Vec<(&str, &str, bool)> =
        report.batches.iter().map(|b| (b.id.as_str(), b.status.as_str(), b.reconciled)).collect();
    assert_eq!(settled, [("acme-east-1", "failed", true), ("acme-east-2", "sent", false)], "{report:#?}");
    assert_invoiced_once(&env.store, 2, "acme-east-2").await;
    let csv = format!("{}.csv", stem(&env, 2).await);
    assert_eq!(server.names(), final_names(2, &csv));
    assert_eq!(csv_invoices(&server.read(&csv)), invoice_numbers(2));
});

both_backends!(after_a_database_reset_an_ftp_batch_1_lands_beside_the_earlier_one_and_replaces_nothing, |env| {
    let server = TestServer::start(None);
    let (_, settings) = ftp_config(&env, server.addr.port());
    queue_loads(&env, &settings, 2).await;
    let first = run_once(&env.store, &settings, None, false, "command").await.expect("submit");
    assert_eq!((first.batches[0].id.as_str(), first.batches[0].accepted), ("acme-east-1", 2));
    let before: Vec<(String, Vec<u8>)> = server.names().into_iter().map(|n| (n.clone(), server.read(&n))).collect();

    // The README's reset: a new database numbers batches and invoices from 1 again, and sends
    // to the same FTP directory.
    let Some(fresh) = TestEnv::new(env.backend).await else { return };
    let (_, fresh_settings) = ftp_config(&fresh, server.addr.port());
    queue_loads(&fresh, &fresh_settings, 3).await;
    let second = run_once(&fresh.store, &fresh_settings, None, false, "command").await.expect("submit");
    let batch = &second.batches[0];
    assert_eq!((batch.id.as_str(), batch.status.as_str(), batch.accepted), ("acme-east-1", "sent", 3), "{second:#?}");

    // The earlier batch's files as they were, and every file of the new one beside them.
    let renamed_onto: Vec<String> = server
        .events()
        .iter()
        .filter_map(|e| match e {
            DataEvent::Renamed { to, .. } => Some(base_name(to)),
            _ => None,
        })
        .collect();
    for (name, bytes) in &before {
        assert!(server.read(name) == *bytes, "{name} of the earlier batch was changed");
        assert_eq!(renamed_onto.iter().filter(|n| *n == name).count(), 1, "{name} written once");
    }
    let csv = format!("{}.csv", stem(&fresh, 1).await);
    let mut expected: Vec<String> = before.iter().map(|(n, _)| n.clone()).chain(final_names(3, &csv)).collect();
    expected.sort();
    assert_eq!(server.names(), expected);
});

both_backends!(a_refused_rename_leaves_the_loads_queued_with_the_reason_until_retried, |env| {
    let server = ScriptedServer::start(Script::default()).await;
    let (_, settings) = ftp_config(&env, server.port);
    queue_loads(&env, &settings, 2).await;
    // The server refuses the rename of the first file of the batch (`AE-1_<uid8>.pdf`: every
    // name of the batch carries its uid, unknown before the batch is made) with a 550.
    let blocked = "AE-1_".to_string();
    server.refuse_renames_to(Some("AE-1_"));

    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");

    let failed = &report.batches[0];
    assert_eq!((failed.status.as_str(), failed.rejected), ("failed", 2), "{report:#?}");
    assert!(failed.error.as_deref().is_some_and(|e| e.contains("550") && e.contains(&blocked)), "{failed:?}");
    assert_waiting(&env.store, 2, &["rejected by the factor", "550", &blocked]).await;
    let load = detail(&env.store, "S-01").await;
    assert_eq!(load.exceptions.iter().map(|e| e.kind).collect::<Vec<_>>(), [ExceptionKind::Rejected]);
    let summary = batch_summary(&env.store, "acme-east-1").await;
    assert_eq!((summary.status.as_str(), summary.rejected), ("failed", 2));
    assert!(summary.error.as_deref().is_some_and(|e| e.contains("550")), "{summary:?}");
    assert!(
        !server.file_names().iter().any(|n| n.ends_with(".part")),
        "the temp file was deleted: {:?}",
        server.file_names()
    );

    // A refusal is not retried by itself…
    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");
    assert!(report.batches.is_empty(), "{report:#?}");
    assert!(report.waiting.iter().all(|w| w.reason.contains("factord loads retry")), "{report:#?}");

    // …until ops fix the server and retry the loads.
    server.refuse_renames_to(None);
    for load in load_numbers(2) {
        assert!(env.store.retry_rejected(&load).await.expect("retry"), "{load}");
    }
    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");

    assert_eq!((report.batches[0].id.as_str(), report.batches[0].accepted), ("acme-east-2", 2), "{report:#?}");
    assert_invoiced_once(&env.store, 2, "acme-east-2").await;
    assert!(detail(&env.store, "S-01").await.exceptions.is_empty());
    let csv = format!("{}.csv", stem(&env, 2).await);
    assert_eq!(server.file_names(), final_names(2, &csv), "the first schedule never landed");
    assert_eq!(csv_invoices(&server.file(&csv).expect("schedule")), invoice_numbers(2));
});

both_backends!(otr_answering_500_is_retried_and_what_stays_transient_goes_in_a_later_batch, |env| {
    // AE-1 gets a 500 on all four attempts of the first run; AE-2 a 500 once, then its 201.
    let (url, otr) = otr_server(Otr { fail_500: 5, ..Otr::default() }).await;
    let (_, settings) = otr_config(&env, &url);
    queue_loads(&env, &settings, 2).await;

    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");

    let batch = &report.batches[0];
    assert_eq!((batch.status.as_str(), batch.accepted, batch.transient), ("sent", 1, 1), "{report:#?}");
    assert_eq!(detail(&env.store, "S-02").await.load.status, LoadStatus::Invoiced, "500 then 201: delivered");
    let waiting = detail(&env.store, "S-01").await.load;
    assert_eq!(waiting.status, LoadStatus::Queued);
    let reason = waiting.waiting_reason.unwrap_or_default();
    assert!(
        reason.contains("HTTP 500") && reason.contains("database busy") && reason.contains("4 attempts"),
        "{reason}"
    );
    // What happens next, said as what will happen: no claim of a retry that has not happened.
    assert!(reason.ends_with(factord::store::GOES_AGAIN) && !reason.contains("retried"), "{reason}");
    assert_eq!(batch.next.as_deref(), Some(format!("1 not taken: {}", factord::store::GOES_AGAIN).as_str()));
    let summary = batch_summary(&env.store, "acme-east-1").await;
    assert_eq!((summary.accepted, summary.transient), (1, 1));
    assert_eq!(lock(&otr).invoices.len(), 1);

    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");

    assert_eq!((report.batches[0].id.as_str(), report.batches[0].accepted), ("acme-east-2", 1), "{report:#?}");
    let s1 = detail(&env.store, "S-01").await.load;
    assert_eq!(
        (s1.status, s1.batch_id.as_deref(), s1.waiting_reason),
        (LoadStatus::Invoiced, Some("acme-east-2"), None)
    );
    let otr = lock(&otr);
    let mut numbers: Vec<&str> = otr.invoices.iter().map(|i| i.number.as_str()).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, ["AE-1", "AE-2"], "each invoice created once");
    assert_eq!(otr.invoice_posts, 4 + 2 + 1, "four 500s for AE-1, a 500 and a 201 for AE-2, then AE-1 once");
});

both_backends!(refused_credentials_say_no_retry_can_succeed_until_the_config_is_fixed, |env| {
    let (url, otr) = otr_server(Otr::default()).await;
    let (_, good) = otr_config(&env, &url);
    queue_loads(&env, &good, 2).await;
    // The same config with a password OTR refuses.
    let wrong = secret(&env, "otr-password-wrong", "not-the-otr-password");
    let text = std::fs::read_to_string(env.path("config-otr/factord.toml")).expect("config");
    let text = text.replace(&env.path("secrets/otr-password").display().to_string(), &wrong.display().to_string());
    let path = env.write("config-wrong/factord.toml", &text);
    let settings = Settings::load(&path, &Environment::new()).expect("config is valid");

    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");

    let batch = &report.batches[0];
    assert_eq!((batch.status.as_str(), batch.transient), ("failed", 2), "{report:#?}");
    assert!(batch.error.as_deref().is_some_and(|e| e.starts_with("authentication failed")), "{report:#?}");
    assert_eq!(batch.next.as_deref(), Some(format!("2 not taken: {}", factord::store::CREDENTIALS_REFUSED).as_str()));
    assert_waiting(&env.store, 2, &["OTR refused the login", factord::store::CREDENTIALS_REFUSED]).await;
    for number in load_numbers(2) {
        let reason = detail(&env.store, &number).await.load.waiting_reason.unwrap_or_default();
        assert!(!reason.contains("retried") && !reason.contains(factord::store::GOES_AGAIN), "{reason}");
    }
    assert_eq!(lock(&otr).invoice_posts, 0);

    // Fixed: the next submission takes them.
    let report = run_once(&env.store, &good, None, false, "command").await.expect("submit");
    assert_eq!((report.batches[0].accepted, report.batches[0].next.as_deref()), (2, None), "{report:#?}");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otr_answering_429_is_waited_for_as_retry_after_says() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let (url, otr) = otr_server(Otr { fail_429: 1, ..Otr::default() }).await;
    let (_, settings) = otr_config(&env, &url);
    queue_loads(&env, &settings, 1).await;

    // Real time: the fake asks for one second, more than the first backoff (at most 0.5 s).
    let started = Instant::now();
    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");

    assert!(started.elapsed() >= Duration::from_millis(950), "waited {:?}", started.elapsed());
    assert_eq!((report.batches[0].status.as_str(), report.batches[0].accepted), ("sent", 1), "{report:#?}");
    assert_invoiced_once(&env.store, 1, "acme-east-1").await;
    let otr = lock(&otr);
    assert_eq!((otr.invoice_posts, otr.invoices.len()), (2, 1));
}

/// The config has no API timeout, and the default (30 s per attempt, 4 attempts) is far too
/// long for a test of the job: the hang is proven at the transport, with what the job gets back.
/// The job's handling of a transient batch (loads Queued, the reason on each) is the FTP-down test
/// above; a client hung inside a request and killed there is in the kill tests below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_api_is_a_transient_batch_within_the_timeout_and_stops_after_three_invoices() {
    // Accepts connections and never answers a byte.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            open.push(stream);
        }
    });
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let (_, settings) = otr_config(&env, &format!("http://{address}{}", fake_api::PREFIX));
    let api = match &settings.subsidiary("acme-east").and_then(|s| s.factoring.as_ref()).expect("factoring").connection
    {
        factord::config::Connection::Api(api) => api,
        other => panic!("an API connection: {other:?}"),
    };
    let otr = find_provider("otr").expect("otr");
    let batch = hand_made_batch(&env, otr, 5);
    let timeout = Duration::from_millis(300);
    let started = Instant::now();

    let transport = ApiTransport::new(otr, api).expect("transport").with_timeout(timeout).with_retries(0);
    let sent = tokio::time::timeout(Duration::from_secs(10), transport.send(&batch)).await;
    let error = sent.expect("gave up on its own").expect_err("hung");

    let elapsed = started.elapsed();
    assert!(matches!(&error, ProviderError::Transient(text) if text.contains("timed out")), "{error:?}");
    assert!(!error.to_string().contains(fake_api::PASSWORD), "{error}");
    assert!(elapsed >= timeout * 3 && elapsed < Duration::from_secs(3), "three hung invoices, then stop: {elapsed:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "the fourth and fifth invoices were not attempted");
    held.abort();
}

/// A batch of `count` invoices of acme-east, with packets, as the submit job builds it.
fn hand_made_batch(env: &TestEnv, provider: &'static factord::providers::Provider, count: usize) -> Batch {
    let invoices = invoice_numbers(count)
        .into_iter()
        .map(|number| {
            let packet = env.write(&format!("hand/{number}.pdf"), "%PDF-1.4 packet\n%%EOF\n");
            BatchInvoice {
                load_number: format!("L-{number}"),
                idempotency_key: format!("acme-east-9:{number}"),
                amount: Money::from_cents(10_000),
                invoice_date: "2026-11-20".into(),
                customer_id: "BRK-1".into(),
                customer_name: "Blue".into(),
                customer_mc: Some("123456".into()),
                customer_dot: None,
                customer_factoring_id: None,
                po_number: None,
                reference_number: None,
                truck: None,
                pickup: None,
                delivery: None,
                pickup_city: Some("Dallas".into()),
                pickup_state: Some("TX".into()),
                delivery_city: Some("Tulsa".into()),
                delivery_state: Some("OK".into()),
                delivered_at: None,
                packet,
                pod: None,
                rate_confirmation: None,
                extra_documents: Vec::new(),
                held_reference: None,
                invoice_number: number,
            }
        })
        .collect();
    Batch {
        id: "acme-east-9".into(),
        number: 9,
        date: "2026-11-20".into(),
        uid: Some("9a9a9a9a00000009".into()),
        seller: BatchSeller {
            id: "acme-east".into(),
            name: "ACME Freight East LLC".into(),
            usdot: Some("1234567".into()),
            mc: None,
        },
        provider,
        invoices,
    }
}

// ---- kill -9 at each step of a submission -----------------------------------------------------

/// `factord --config <config> submit --json` as a child process of the test's runtime (the fakes
/// run in it too), its stderr in `<name>.stderr.log`.
fn submit_command(env: &TestEnv, config: &Path, name: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_factord"));
    command.current_dir(env.dir.path()).arg("--config").arg(config).args(["submit", "--json"]);
    for (variable, _) in std::env::vars() {
        if variable.starts_with("FACTORD") {
            command.env_remove(variable);
        }
    }
    let log = std::fs::File::create(env.path(&format!("{name}.stderr.log"))).expect("log file");
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log).kill_on_drop(true);
    command
}

fn log(env: &TestEnv, name: &str) -> String {
    std::fs::read_to_string(env.path(&format!("{name}.stderr.log"))).unwrap_or_default()
}

/// Starts `factord submit`, waits until `stalled` says the fake holds it at the chosen step,
/// checks the batch was written ahead, and kills the process with SIGKILL there.
async fn submit_killed_while<F: Fn() -> bool>(env: &TestEnv, config: &Path, count: usize, stalled: F) {
    let mut child = submit_command(env, config, "killed").spawn().expect("start factord submit");
    wait_for(DEADLINE, "the fake factor to hold factord at the chosen step", || {
        let ready = stalled();
        let exited = child.try_wait().expect("child status");
        assert!(exited.is_none(), "factord ended before the stall ({exited:?}):\n{}", log(env, "killed"));
        std::future::ready(ready.then_some(()))
    })
    .await;
    let pending = env.store.batches_in_flight().await.expect("in flight");
    assert_eq!(pending.len(), 1, "the batch is written ahead, as sending, before the call");
    assert_eq!((pending[0].id.as_str(), pending[0].items.len()), ("acme-east-1", count));

    child.start_kill().expect("SIGKILL");
    let status = child.wait().await.expect("wait");
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    // Nothing moved: the outcome is unknown, the batch stays sending.
    assert_eq!(env.store.batches_in_flight().await.expect("in flight").len(), 1);
    assert_waiting(&env.store, count, &[]).await;
}

/// `factord submit --json` run again, to the end: its exit status and report. While the killed
/// sender's lease (1 s) has not expired its batch is left alone and nothing is sent, so this
/// runs again until a run settles something.
async fn submit_again(env: &TestEnv, config: &Path) -> (std::process::ExitStatus, Value) {
    wait_for(DEADLINE, "the killed batch's lease to expire and a run to settle it", || async {
        let output = submit_command(env, config, "restarted").output().await.expect("run factord submit");
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&output.stdout), log(env, "restarted")));
        let settled = report["batches"].as_array().is_some_and(|b| !b.is_empty());
        settled.then_some((output.status, report))
    })
    .await
}

/// How reconciliation settled the batch a kill left `sending`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Settled {
    /// From what the factor holds: the first batch is `sent`, its loads Invoiced by it.
    Recorded,
    /// Nothing of it reached the factor: it is `failed` (its items transient) and a second batch
    /// carries the loads.
    Resent,
}

impl Settled {
    /// The batch that invoiced the loads.
    fn invoiced_by(self) -> &'static str {
        match self {
            Settled::Recorded => "acme-east-1",
            Settled::Resent => "acme-east-2",
        }
    }

    /// Every batch of the store, as [`batch_items`] lists them.
    fn batches(self, count: i64) -> Vec<(String, String, i64, i64, i64)> {
        let batch = |id: &str, status: &str, accepted, transient| (id.into(), status.into(), accepted, 0, transient);
        match self {
            Settled::Recorded => vec![batch("acme-east-1", "sent", count, 0)],
            Settled::Resent => vec![batch("acme-east-1", "failed", 0, count), batch("acme-east-2", "sent", count, 0)],
        }
    }
}

/// After the kill and the second run: the loads are Invoiced once by the batch `settled` says,
/// the second run's report and the store's batches agree, and a batch resent says why.
async fn assert_settled(env: &TestEnv, report: &Value, settled: Settled, count: usize) {
    assert_invoiced_once(&env.store, count, settled.invoiced_by()).await;
    let expected = settled.batches(count as i64);
    assert_eq!(batch_items(&env.store).await, expected);
    let reported: Vec<(String, String, i64, i64, i64)> = report["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| {
            let text = |key: &str| b[key].as_str().unwrap_or_default().to_string();
            let number = |key: &str| b[key].as_i64().unwrap_or_default();
            (text("id"), text("status"), number("accepted"), number("rejected"), number("transient"))
        })
        .collect();
    assert_eq!(reported, expected, "{report:#}");
    if settled == Settled::Resent {
        let error = report["batches"][0]["error"].as_str().unwrap_or_default();
        assert!(error.contains("not delivered before the daemon stopped"), "{report:#}");
    }
}

/// An FTP submission of three loads killed at `stall`, then run again; reconciliation settles
/// it as `settled` says. Returns the server and how many STORs the second run made.
async fn ftp_killed_at(env: &TestEnv, stall: Stall, settled: Settled) -> (ScriptedServer, usize) {
    let server = ScriptedServer::start(Script { stall: Some(stall), ..Script::default() }).await;
    let (config, settings) = ftp_config(env, server.port);
    queue_loads(env, &settings, 3).await;

    submit_killed_while(env, &config, 3, || server.stalls() == 1).await;
    let before = server.commands().len();
    let (_, report) = submit_again(env, &config).await;

    assert_settled(env, &report, settled, 3).await;
    let stors = server.commands()[before..].iter().filter(|c| c.starts_with("STOR")).count();
    // Final names only (no temp file left): the packets and the schedule of the batch that
    // invoiced the loads, which lists each invoice once; the packets byte for byte.
    let number = if settled == Settled::Recorded { 1 } else { 2 };
    let csv = format!("{}.csv", stem(env, number).await);
    assert_eq!(server.file_names(), final_names(3, &csv));
    assert_eq!(csv_invoices(&server.file(&csv).expect("schedule")), invoice_numbers(3));
    for invoice in invoice_numbers(3) {
        assert!(server.file(&packet_name(&invoice, &csv)) == Some(packet(env, &invoice)), "{invoice} intact");
    }
    (server, stors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_write_ahead_before_the_ftp_greeting_the_batch_goes_again() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    // Connected, nothing sent yet.
    let stall = Stall { point: StallPoint::Greeting, suffix: "" };

    let (_, stors) = ftp_killed_at(&env, stall, Settled::Resent).await;

    assert_eq!(stors, 4, "the second batch, whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_the_first_ftp_stor_the_leftover_is_cleared_and_the_batch_goes_again() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    // The first packet's bytes are on the server under its temp name; the 226 never comes.
    let stall = Stall { point: StallPoint::Stored, suffix: ".pdf.part" };

    let (server, stors) = ftp_killed_at(&env, stall, Settled::Resent).await;

    let leftover = |c: &String| c.starts_with("DELE .AE-1_") && c.ends_with(".pdf.part");
    assert!(server.commands().iter().any(leftover), "the leftover was deleted");
    assert_eq!(stors, 4, "the second batch, whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_the_schedule_is_renamed_the_upload_is_finished_not_repeated() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    // The packets are final; the schedule is complete under its temp name, its RNTO unanswered.
    let stall = Stall { point: StallPoint::BeforeRename, suffix: ".csv" };

    let (server, stors) = ftp_killed_at(&env, stall, Settled::Recorded).await;

    assert!(server.commands().iter().any(|c| c.starts_with("DELE .acme-east_")), "the temp schedule was deleted");
    assert_eq!(stors, 1, "only the schedule went up again, not the packets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_last_rename_before_the_answer_the_batch_is_recorded_not_resent() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    // The factor has the whole batch under its final names; factord never heard so.
    let stall = Stall { point: StallPoint::AfterRename, suffix: ".csv" };

    let (_, stors) = ftp_killed_at(&env, stall, Settled::Recorded).await;

    assert_eq!(stors, 0, "nothing uploaded again");
}

/// An OTR submission of three loads killed while OTR holds `POST invoices` for AE-2 at `point`,
/// then run again: reconciliation resends the first batch, and OTR's 409 with the invoicePkey
/// settles what it already holds. Returns the fake's state and the second run's exit status.
async fn otr_killed_at(env: &TestEnv, point: OtrStall) -> (fake_api::Shared<Otr>, std::process::ExitStatus) {
    let (url, otr) = otr_server(Otr { stall: Some(("AE-2".into(), point)), ..Otr::default() }).await;
    let (config, settings) = otr_config(env, &url);
    queue_loads(env, &settings, 3).await;

    submit_killed_while(env, &config, 3, || lock(&otr).stalled == 1).await;
    let (status, report) = submit_again(env, &config).await;

    assert_settled(env, &report, Settled::Recorded, 3).await;
    for (n, load) in load_numbers(3).iter().enumerate() {
        assert_eq!(detail(&env.store, load).await.load.submission_reference, Some(pkey(n + 1)), "{load}");
    }
    {
        let otr = lock(&otr);
        let numbers: Vec<(&str, String)> = otr.invoices.iter().map(|i| (i.number.as_str(), i.id.clone())).collect();
        assert_eq!(numbers, [("AE-1", pkey(1)), ("AE-2", pkey(2)), ("AE-3", pkey(3))], "one effective submission each");
        for invoice in &otr.invoices {
            // A resend uploads the documents again: OTR's record does not say which it has.
            for doc_type in [1, 3, 7] {
                assert!(invoice.documents.contains(&doc_type), "{}: {:?}", invoice.number, invoice.documents);
            }
        }
    }
    (otr, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_otr_holds_an_uncommitted_invoice_it_is_sent_again_with_its_key() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");

    let (otr, status) = otr_killed_at(&env, OtrStall::BeforeCommit).await;

    assert!(status.success(), "{}", log(&env, "restarted"));
    // AE-1 and the stalled AE-2 in the first run; after the restart all three are posted: AE-1
    // is answered 409 with its invoicePkey, AE-2 and AE-3 are created.
    assert_eq!(lock(&otr).invoice_posts, 5);
    assert_eq!(lock(&otr).invoices[0].documents, [1, 3, 7, 1, 3, 7], "AE-1's documents again after the 409");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_otr_committed_before_the_answer_the_resend_is_settled_by_otrs_409() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");

    let (otr, status) = otr_killed_at(&env, OtrStall::AfterCommit).await;

    assert!(status.success(), "{}", log(&env, "restarted"));
    // AE-1 and AE-2 (committed, unanswered) in the first run; after the restart all three are
    // posted: AE-1 and AE-2 answered 409 with their invoicePkey (AE-2's documents uploaded then),
    // only AE-3 created.
    let otr = lock(&otr);
    assert_eq!(otr.invoice_posts, 5);
    assert_eq!(otr.invoices[1].documents, [1, 3, 7], "AE-2's documents, uploaded after the 409");
}

/// A hung API through the real job: with `factoring.api.timeout` short, the outcome is unknown,
/// the loads stay Queued with the timeout as their reason, and the batch is settled (never
/// resent blindly) once OTR answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_api_leaves_the_loads_queued_with_the_reason_and_they_go_once_it_answers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let password = secret(&env, "otr-password", fake_api::PASSWORD);
    let key = secret(&env, "otr-subscription-key", fake_api::SUBSCRIPTION_KEY);
    let api = |base_url: &str| {
        format!(
            "provider = \"otr\"\n\n[subsidiary.factoring.api]\nbase_url = \"{base_url}\"\nusername = \"{user}\"\n\
             password_file = \"{password}\"\nsubscription_key_file = \"{key}\"\ntimeout = \"300ms\"\n",
            user = fake_api::USERNAME,
            password = password.display(),
            key = key.display(),
        )
    };
    let (_, hung) = provider_config(&env, "config-hung", &api(&format!("http://{address}{}", fake_api::PREFIX)));
    queue_loads(&env, &hung, 2).await;
    // OTR offers credit checks, and its hung broker check stopped nothing at invoice time; this
    // test is about the batch, so the customer's check is made here, as if OTR had answered it.
    let check = NewCreditCheck {
        customer_id: "BRK-1",
        provider: "otr",
        subsidiary: "acme-east",
        result: CreditResult::Approved,
        factor_text: "APPROVED",
        checked_at: chrono::Utc::now(),
        cause: "test",
    };
    env.store.record_credit_check(&check, &[]).await.expect("credit check");

    let started = Instant::now();
    let report = run_once(&env.store, &hung, None, false, "command").await.expect("submit");
    assert!(started.elapsed() < Duration::from_secs(20), "the timeout bounds the wait: {:?}", started.elapsed());
    // The requests may have reached OTR: the outcome is unknown until OTR can be asked.
    assert_eq!(report.batches[0].status, "sending", "{report:#?}");
    for load in load_numbers(2) {
        let waiting = detail(&env.store, &load).await.load;
        assert_eq!(waiting.status, LoadStatus::Queued);
        let reason = waiting.waiting_reason.unwrap_or_default();
        assert!(reason.contains("timed out") || reason.contains("no answer"), "{load}: {reason}");
    }
    held.abort();

    // OTR answers again: the next run resends batch 1 first; OTR holds nothing and creates
    // both.
    let (url, otr) = otr_server(Otr::default()).await;
    let (_, answering) = provider_config(&env, "config-answering", &api(&url));
    let report = run_once(&env.store, &answering, None, false, "command").await.expect("submit");
    let settled = &report.batches[0];
    assert_eq!((settled.id.as_str(), settled.accepted, settled.reconciled), ("acme-east-1", 2, true), "{report:#?}");
    assert_invoiced_once(&env.store, 2, "acme-east-1").await;
    let otr = lock(&otr);
    assert_eq!(otr.invoices.len(), 2);
    let numbers: Vec<&str> = otr.invoices.iter().map(|i| i.number.as_str()).collect();
    assert_eq!(numbers, ["AE-1", "AE-2"]);
}
