//! Status sync against the OTR stand-in (docs/design.md §8a), and switching a subsidiary from a manual
//! factor to OTR with packets already queued (docs/design.md §4), on both backends.

use std::collections::HashSet;
use std::path::Path;

use factord::config::Settings;
use factord::domain::{ExceptionKind, LoadStatus};
use factord::submit::run_once;

use crate::both_backends;
use crate::fakes::api::{Otr, lock, otr_server, pkey};
use crate::harness::TestEnv;
use crate::submit_faults::{detail, otr_config, queue_loads};

/// The OTR config with acme-east's NOA replaced, as ops would edit it before a reload.
fn with_noa(path: &Path, noa: &str) -> Settings {
    let text = std::fs::read_to_string(path).expect("config");
    assert!(text.contains("noa = \"Pay Capital Depot only.\""), "the harness NOA changed");
    let text = text.replace("noa = \"Pay Capital Depot only.\"", &format!("noa = \"{noa}\""));
    std::fs::write(path, text).expect("write");
    Settings::load(path, &factord::config::Environment::new()).expect("config is valid")
}

fn pdf_text(bytes: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(file.path(), bytes).expect("write");
    let output = std::process::Command::new("pdftotext").arg(file.path()).arg("-").output().expect("pdftotext runs");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn exceptions(env: &TestEnv, load: &str) -> Vec<(ExceptionKind, String)> {
    detail(&env.store, load).await.exceptions.into_iter().map(|e| (e.kind, e.detail)).collect()
}

both_backends!(status_sync_applies_otrs_words_through_the_map_and_goes_on_past_a_failed_lookup, |env| {
    let (url, otr) = otr_server(Otr::default()).await;
    let (_, settings) = otr_config(&env, &url);
    queue_loads(&env, &settings, 7).await;
    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches[0].accepted, 7, "{report:#?}");
    {
        let mut otr = lock(&otr);
        for (n, words) in [(1, "Advance Paid"), (2, " paid "), (3, "Client Request"), (4, "Not Funded"), (5, "Pending")]
        {
            otr.statuses.insert(pkey(n), words.to_string());
        }
        otr.status_unavailable.insert(pkey(6));
        let gone = pkey(7);
        otr.invoices.retain(|i| i.id != gone);
    }

    let sync = factord::sync::run_once(&env.store, &settings, None).await.expect("sync");
    let acme = &sync.subsidiaries[0];
    assert_eq!((acme.subsidiary.as_str(), acme.provider.as_str(), acme.supported), ("acme-east", "otr", true));
    assert_eq!(
        (acme.asked, acme.applied, acme.unchanged, acme.unrecognised, acme.failed),
        (7, 3, 1, 1, 2),
        "{sync:#?}"
    );
    assert!(sync.any_failed());
    let expected = [
        ("S-01", LoadStatus::Financed, None),
        ("S-02", LoadStatus::Completed, None),
        ("S-03", LoadStatus::Invoiced, Some(ExceptionKind::Held)),
        ("S-04", LoadStatus::Invoiced, Some(ExceptionKind::UnrecognisedStatus)),
        ("S-05", LoadStatus::Invoiced, None),
        ("S-06", LoadStatus::Invoiced, None),
        ("S-07", LoadStatus::Invoiced, None),
    ];
    for (load, status, exception) in expected {
        let d = detail(&env.store, load).await;
        assert_eq!(d.load.status, status, "{load}");
        let kinds: Vec<ExceptionKind> = d.exceptions.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, exception.into_iter().collect::<Vec<_>>(), "{load}");
    }
    let unrecognised = exceptions(&env, "S-04").await;
    assert!(unrecognised[0].1.contains("`Not Funded`"), "the factor's words: {unrecognised:?}");
    let history = detail(&env.store, "S-02").await.history;
    let last: Vec<(Option<LoadStatus>, LoadStatus, &str)> =
        history.iter().rev().take(2).map(|h| (h.from, h.to, h.cause.as_str())).collect();
    assert_eq!(
        last,
        vec![
            (Some(LoadStatus::Financed), LoadStatus::Completed, "status sync otr"),
            (Some(LoadStatus::Invoiced), LoadStatus::Financed, "status sync otr"),
        ]
    );
    let failed: Vec<&str> =
        acme.answers.iter().filter(|a| a.outcome == "failed").map(|a| a.load_number.as_str()).collect();
    assert_eq!(failed, ["S-06", "S-07"], "{sync:#?}");

    // Asked again: what is done stays done; OTR later approves S-04, which clears the flag.
    lock(&otr).statuses.insert(pkey(4), "Approved".into());
    lock(&otr).status_unavailable.clear();
    let again = factord::sync::run_once(&env.store, &settings, Some("acme-east")).await.expect("sync");
    let acme = &again.subsidiaries[0];
    assert_eq!(acme.asked, 6, "the Completed load is no longer asked about: {again:#?}");
    assert_eq!((acme.applied, acme.unrecognised), (1, 0), "{again:#?}");
    assert_eq!(detail(&env.store, "S-04").await.load.status, LoadStatus::Financed);
    assert!(exceptions(&env, "S-04").await.is_empty());
    assert_eq!(detail(&env.store, "S-01").await.history.len(), 4, "no second move for S-01");

    // The ledger has each move the factor's words made, with no amount (docs/money.md), once.
    let book = env.store.ledger(None).await.expect("ledger");
    let load_id = |number: &str| book.invoices.iter().find(|i| i.load_number == number).expect("invoice").load_id;
    let stated = |number: &str| -> Vec<(String, Option<i64>, String)> {
        let id = load_id(number);
        let mut events: Vec<(String, Option<i64>, String)> = book
            .events
            .iter()
            .filter(|e| e.load_id == id)
            .map(|e| (e.kind.clone(), e.amount_cents, e.source.clone()))
            .collect();
        events.sort();
        events
    };
    assert_eq!(stated("S-01"), [("status_purchased".to_string(), None, "status sync otr: `Advance Paid`".to_string())]);
    assert_eq!(
        stated("S-02"),
        [
            ("status_paid".to_string(), None, "status sync otr: `paid`".to_string()),
            ("status_purchased".to_string(), None, "status sync otr: `paid`".to_string()),
        ]
    );
    assert_eq!(stated("S-04"), [("status_purchased".to_string(), None, "status sync otr: `Approved`".to_string())]);
    // reconcile shows no invented figures, and says what the factor stated without them.
    let report = factord::domain::ledger::reconcile(&book.invoices, &book.events, None, None);
    let s02 = report.invoices.iter().find(|f| f.load_number == "S-02").expect("S-02");
    assert_eq!((s02.paid.cents(), s02.advance.cents()), (0, 0));
    assert_eq!(s02.unreported.len(), 2, "{:?}", s02.unreported);
    assert!(s02.unreported[0].contains("purchase figures not reported (status sync otr"), "{:?}", s02.unreported);
    assert!(s02.unreported[1].contains("paid per the factor's status, no amount reported"), "{:?}", s02.unreported);
    let s05 = report.invoices.iter().find(|f| f.load_number == "S-05").expect("S-05");
    assert!(s05.unreported.is_empty(), "Invoiced: nothing stated yet");
});

both_backends!(providers_without_a_status_api_say_so_and_nothing_is_asked, |env| {
    let sync = factord::sync::run_once(&env.store, &env.settings, None).await.expect("sync");
    assert_eq!(sync.subsidiaries.len(), 1, "acme-west invoices directly: {sync:#?}");
    let acme = &sync.subsidiaries[0];
    assert_eq!((acme.provider.as_str(), acme.supported, acme.asked), ("capital_depot", false, 0));
    assert!(acme.note.as_deref().is_some_and(|n| n.contains("no invoice status API")), "{acme:#?}");
    assert!(!sync.any_failed());
});

both_backends!(switching_from_capital_depot_to_otr_sends_queued_packets_with_otrs_noa, |env| {
    // Queued under Capital Depot, with its NOA.
    let (url, otr) = otr_server(Otr::default()).await;
    let (path, otr_settings) = otr_config(&env, &url);
    queue_loads(&env, &env.settings, 2).await;
    let _ = otr_settings;
    let old = pdf_text(&std::fs::read(env.path("data/packets/acme-east/AE-1.pdf")).expect("packet"));
    assert!(old.contains("Pay Capital Depot only."), "{old}");

    // Ops switch acme-east to OTR and put OTR's NOA in.
    let settings = with_noa(&path, "Pay OTR Solutions only, P.O. Box 1111.");
    let report = run_once(&env.store, &settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches.len(), 1, "{report:#?}");
    assert_eq!(report.batches[0].accepted, 2, "{report:#?}");
    {
        let otr = lock(&otr);
        let numbers: HashSet<&str> = otr.invoices.iter().map(|i| i.number.as_str()).collect();
        assert_eq!(numbers, HashSet::from(["AE-1", "AE-2"]), "the invoice numbers stay");
        for invoice in &otr.invoices {
            let sent = pdf_text(&invoice.files[2]);
            assert!(sent.contains("Pay OTR Solutions only, P.O. Box 1111."), "{sent}");
            assert!(!sent.contains("Capital Depot"), "no trace of the old NOA: {sent}");
        }
    }
    let d = detail(&env.store, "S-01").await;
    assert_eq!((d.load.status, d.load.factor.as_deref()), (LoadStatus::Invoiced, Some("otr")));
});

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

both_backends!(the_sync_command_prints_each_answer_and_exits_1_when_a_lookup_failed, |env| {
    let (url, otr) = otr_server(Otr::default()).await;
    let (path, settings) = otr_config(&env, &url);
    queue_loads(&env, &settings, 2).await;
    run_once(&env.store, &settings, None, false, "command").await.expect("submit");
    lock(&otr).statuses.insert(pkey(1), "Advance Paid".into());
    lock(&otr).statuses.insert(pkey(2), "Waiting on broker approval".into());

    let (code, stdout, stderr) = factord(&path, &["sync", "--json"]);
    assert_eq!(code, 0, "an unrecognised word is not a failed lookup: {stdout}{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let acme = &json["subsidiaries"][0];
    for key in
        ["subsidiary", "provider", "supported", "note", "asked", "applied", "unchanged", "unrecognised", "failed"]
    {
        assert!(acme.get(key).is_some(), "{key} in {acme:#}");
    }
    assert_eq!((acme["applied"].as_u64(), acme["unrecognised"].as_u64()), (Some(1), Some(1)), "{acme:#}");
    let answer = &acme["answers"][1];
    for key in ["load_number", "invoice_number", "factor_status", "outcome", "detail"] {
        assert!(answer.get(key).is_some(), "{key} in {answer:#}");
    }
    assert_eq!(
        (answer["factor_status"].as_str(), answer["outcome"].as_str()),
        (Some("Waiting on broker approval"), Some("unrecognised"))
    );

    let (code, stdout, _) = factord(&path, &["loads", "show", "S-01", "--json"]);
    assert_eq!(code, 0);
    let shown: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!((shown["status"].as_str(), shown["factor"].as_str()), (Some("Financed"), Some("otr")), "{shown:#}");
    assert_eq!(shown["exceptions"].as_array().map(Vec::len), Some(0));
    let (_, text, _) = factord(&path, &["loads", "show", "S-02"]);
    assert!(text.contains("held by factor    OTR Solutions (otr)") && text.contains("unrecognised_status"), "{text}");

    let gone = pkey(2);
    lock(&otr).invoices.retain(|i| i.id != gone);
    let (code, stdout, stderr) = factord(&path, &["sync"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("acme-east  otr: asked 2, applied 0, unchanged 1, unrecognised 0, failed 1"), "{stdout}");
    assert!(stdout.contains("failed       S-02 (AE-2): OTR Solutions does not know invoice reference"), "{stdout}");

    let (code, _, stderr) = factord(&path, &["sync", "--subsidiary", "nope"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`nope`"), "{stderr}");
});

both_backends!(the_daemon_syncs_on_the_status_sync_schedule, |env| {
    let (url, otr) = otr_server(Otr::default()).await;
    let (path, settings) = otr_config(&env, &url);
    queue_loads(&env, &settings, 1).await;
    run_once(&env.store, &settings, None, false, "command").await.expect("submit");
    lock(&otr).statuses.insert(pkey(1), "Advance Paid".into());
    // Every second, in acme-east's time zone.
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text.replacen("provider = \"otr\"\n", "provider = \"otr\"\nstatus_sync = \"* * * * * *\"\n", 1);
    std::fs::write(&path, text).expect("write");

    let stderr = env.path("daemon.stderr.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_factord"))
        .arg("--config")
        .arg(&path)
        .arg("run")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("log file"))
        .spawn()
        .expect("factord run");
    let store = &env.store;
    crate::harness::wait_for(std::time::Duration::from_secs(30), "the scheduled sync to finance S-01", || async move {
        (detail(store, "S-01").await.load.status == LoadStatus::Financed).then_some(())
    })
    .await;
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let exit = child.wait().expect("wait");
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(exit.success(), "{exit}: {log}");
    assert!(log.contains("status sync") && log.contains("applied=1"), "{log}");
    let history = detail(store, "S-01").await.history;
    assert_eq!(history.last().map(|h| h.cause.as_str()), Some("status sync otr"));
});
