//! Load intake: parsing CSV and JSON exports, row-level errors, and the inbox pickup.

use std::time::{Duration, Instant};

use factord::domain::{LoadStatus, Money};
use factord::intake::loads::FileError;
use factord::intake::{InboxOutcome, IntakeError, LoadsInbox, import_load_file};
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::harness::{Backend, TestEnv, loads_csv};

const GOOD_1: &str =
    "L-1,acme-east,BRK-1,Blue River Logistics,123456,\"$2,450.00\",Released,2026-11-20,L-1-pod.pdf,L-1-rc.pdf,PO-1,,";
const GOOD_2: &str = "L-2,acme-west,BRK-2,\"Northstar Brokerage, Inc.\",,1875.5,,11/21/2026,,,,,T-17";

both_backends!(good_rows_import_and_bad_rows_are_reported_by_row, |env| {
    let csv = loads_csv(&[
        GOOD_1,
        "L-3,acme-east,BRK-1,Blue River Logistics,,abc,,,,,,,",
        GOOD_2,
        "L-4,nowhere,BRK-1,Blue River Logistics,,10.00,,,,,,,",
        ",acme-east,BRK-1,,,10.00,,,,,,,",
        "L-5,acme-east,BRK-1,Blue River Logistics,,10.00,Shipped,tomorrow,../../etc/passwd,,,,",
    ]);
    let file = env.write("loads.csv", &csv);
    let report = import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    assert_eq!((report.counts.imported, report.counts.rejected), (2, 4), "{report:#?}");
    let reason = |row: usize| {
        report.rows.iter().find(|r| r.row == row).map(|r| (r.outcome, r.detail.clone())).expect("row reported")
    };
    assert_eq!(reason(2).0, "imported");
    assert!(reason(3).1.contains("amount: `abc` is not an amount"), "{:?}", reason(3));
    assert_eq!(reason(4).0, "imported");
    assert!(reason(5).1.contains("subsidiary: `nowhere` is not configured"), "{:?}", reason(5));
    let row6 = reason(6).1;
    assert!(row6.contains("load_number: required") && row6.contains("customer_name: required"), "{row6}");
    let row7 = reason(7).1;
    for needle in ["status: `Shipped`", "delivered_at: `tomorrow`", "pod: `../../etc/passwd`"] {
        assert!(row7.contains(needle), "{needle} missing in {row7}");
    }

    let l1 = env.store.load_detail("L-1").await.expect("detail").expect("L-1 imported").load;
    assert_eq!(l1.fields.amount, Money::from_cents(245_000));
    assert_eq!(l1.fields.delivered_at.as_deref(), Some("2026-11-20"));
    let l2 = env.store.load_detail("L-2").await.expect("detail").expect("L-2 imported").load;
    assert_eq!(l2.customer_name, "Northstar Brokerage, Inc.");
    assert_eq!(l2.fields.amount, Money::from_cents(187_550));
    assert_eq!(l2.fields.delivered_at.as_deref(), Some("2026-11-21"));
    assert_eq!(l2.fields.truck.as_deref(), Some("T-17"));
    assert_eq!(l2.status, LoadStatus::Released);
    assert!(env.store.load_detail("L-3").await.expect("detail").is_none());

    // Re-importing the same file changes nothing.
    let again = import_load_file(&env.store, &env.settings, &file, None).await.expect("reimport");
    assert_eq!((again.counts.imported, again.counts.updated, again.counts.unchanged), (0, 0, 2));
    let history = env.store.load_detail("L-1").await.expect("detail").expect("exists").history;
    assert_eq!(history.len(), 1);
});

#[tokio::test]
async fn json_array_and_one_object_per_line() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let array = r#"[
      {"load_number": "J-1", "subsidiary": "acme-east", "customer_id": "BRK-1", "customer_name": "Blue", "amount": 2450.5},
      {"load_number": "J-2", "subsidiary": "acme-east", "customer_id": "BRK-1", "customer_name": "Blue", "amount": "1,000.00", "status": "Delivered"},
      {"load_number": "J-3", "subsidiary": "acme-east", "customer_id": "BRK-1", "customer_name": "Blue", "amount": "1.234,56"}
    ]"#;
    let file = env.write("loads.json", array);
    let report = import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    assert_eq!((report.counts.imported, report.counts.rejected), (2, 1));
    assert_eq!(report.rows.iter().find(|r| r.outcome == "rejected").expect("rejected").row, 3, "record number");
    let j2 = env.store.load_detail("J-2").await.expect("detail").expect("J-2").load;
    assert_eq!(j2.status, LoadStatus::Delivered);
    assert_eq!(j2.fields.amount, Money::from_cents(100_000));

    let lines = "{\"load_number\":\"N-1\",\"subsidiary\":\"acme-west\",\"customer_id\":\"C\",\"customer_name\":\"C\",\"amount\":\"12\"}\n\n\
                 {\"load_number\":\"N-2\",\"subsidiary\":\"acme-west\",\"customer_id\":\"C\",\"customer_name\":\"C\",\"amount\":\"-\"}\n";
    let file = env.write("loads.ndjson", lines);
    let report = import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    assert_eq!((report.counts.imported, report.counts.rejected), (1, 1));
    assert_eq!(report.rows.iter().find(|r| r.outcome == "rejected").expect("rejected").row, 3, "line number");
}

#[tokio::test]
async fn csv_with_bom_crlf_quotes_blank_lines_and_any_column_order() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let text = "\u{feff}Amount,LOAD_NUMBER,Customer_Name,customer_id,subsidiary,Notes\r\n\
                \"$1,234.50\",C-1,\"Quote \"\"Q\"\" Co, LLC\",Q,acme-east,\"line one\r\nline two\"\r\n\
                \r\n\
                (12.00),C-2,Neg,N,acme-east,\r\n";
    let file = env.write("export.csv", text);
    let report = import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    assert_eq!(report.counts.imported, 2, "{report:#?}");
    assert_eq!(report.ignored_columns, vec!["Notes".to_string()]);
    let c1 = env.store.load_detail("C-1").await.expect("detail").expect("C-1").load;
    assert_eq!(c1.customer_name, "Quote \"Q\" Co, LLC");
    assert_eq!(c1.fields.amount, Money::from_cents(123_450));
    let c2 = env.store.load_detail("C-2").await.expect("detail").expect("C-2").load;
    assert_eq!(c2.fields.amount, Money::from_cents(-1_200), "stored; the invoice job refuses non-positive amounts");
}

#[tokio::test]
async fn unreadable_files_are_refused_whole() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let cases: [(&str, &[u8]); 4] = [
        ("missing.csv", b"load_number,subsidiary,amount\nL-1,acme-east,10\n"),
        ("latin1.csv", b"load_number,subsidiary,customer_id,customer_name,amount\nL-1,acme-east,C,Caf\xe9,10\n"),
        ("empty.csv", b"   \n"),
        ("broken.json", b"[{\"load_number\": "),
    ];
    for (name, bytes) in cases {
        let path = env.path(name);
        std::fs::write(&path, bytes).expect("write");
        let error = import_load_file(&env.store, &env.settings, &path, None).await.expect_err(name);
        let IntakeError::File { path: reported, source } = &error else { panic!("{name}: {error}") };
        assert_eq!(reported, &path);
        match name {
            "missing.csv" => {
                assert!(matches!(source, FileError::MissingColumns(c) if c == "customer_id, customer_name"))
            }
            "latin1.csv" => assert!(matches!(source, FileError::NotUtf8(_))),
            "empty.csv" => assert!(matches!(source, FileError::Empty)),
            _ => assert!(matches!(source, FileError::Json(_))),
        }
        assert!(error.to_string().contains(name), "the message names the file: {error}");
    }
    assert!(env.store.list_loads(&Default::default()).await.expect("list").is_empty());
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

both_backends!(inbox_takes_stable_files_archives_them_and_skips_duplicates, |env| {
    let mut inbox = LoadsInbox::new(&env.settings);
    let never = CancellationToken::new();
    let quiet = env.settings.intake.quiet_period;
    let t0 = Instant::now();
    let csv = loads_csv(&[GOOD_1, GOOD_2, "L-9,acme-east,BRK-1,Blue,,x,,,,,,,"]);
    env.write("inbox/loads/monday.csv", &csv[..csv.len() / 2]);
    env.write("inbox/loads/~$monday.csv", "lock file");
    env.write("inbox/loads/upload.csv.part", "partial");

    // First sight: never taken, however old the file.
    assert!(inbox.run_once(&env.store, &env.settings, t0, &never).await.expect("pass").is_empty());
    // Still being written: the change restarts the quiet period.
    env.write("inbox/loads/monday.csv", &csv);
    let t1 = t0 + quiet;
    assert!(inbox.run_once(&env.store, &env.settings, t1, &never).await.expect("pass").is_empty());
    assert!(env.store.list_loads(&Default::default()).await.expect("list").is_empty());
    // Held still for the quiet period: taken, imported, archived with its result file.
    let outcomes = inbox.run_once(&env.store, &env.settings, t1 + quiet, &never).await.expect("pass");
    let [InboxOutcome::Imported { counts, archived, .. }] = outcomes.as_slice() else { panic!("{outcomes:?}") };
    assert_eq!((counts.imported, counts.rejected), (2, 1));
    let result = std::fs::read_to_string(format!("{}.result.csv", archived.display())).expect("result file");
    assert!(result.contains("4,L-9,rejected,\"amount: `x` is not an amount"), "{result}");
    assert!(result.contains("total,,imported,2"), "{result}");
    assert_eq!(files_in(&env.path("inbox/loads")), vec!["upload.csv.part".to_string(), "~$monday.csv".to_string()]);
    assert!(files_in(&env.path("inbox/loads/processing")).is_empty());

    // The same content under another name: archived as a duplicate, nothing applied.
    env.write("inbox/loads/monday-copy.csv", &csv);
    let t2 = t1 + quiet * 2;
    inbox.run_once(&env.store, &env.settings, t2, &never).await.expect("pass");
    let outcomes = inbox.run_once(&env.store, &env.settings, t2 + quiet, &never).await.expect("pass");
    assert!(matches!(outcomes.as_slice(), [InboxOutcome::Duplicate { .. }]), "{outcomes:?}");
    let history = env.store.load_detail("L-1").await.expect("detail").expect("L-1").history;
    assert_eq!(history.len(), 1);
    assert_eq!(files_in(&env.path("archive/loads")).len(), 4, "two inputs, two result files");
});

#[tokio::test]
async fn unreadable_inbox_file_goes_to_failed_with_its_reason() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let mut inbox = LoadsInbox::new(&env.settings);
    let never = CancellationToken::new();
    std::fs::create_dir_all(env.path("inbox/loads")).expect("mkdir");
    std::fs::write(env.path("inbox/loads/bad.csv"), b"load_number;amount\nL-1;10\n").expect("write");
    let t0 = Instant::now();
    inbox.run_once(&env.store, &env.settings, t0, &never).await.expect("pass");
    let outcomes = inbox.run_once(&env.store, &env.settings, t0 + Duration::from_secs(5), &never).await.expect("pass");
    let [InboxOutcome::Failed { reason, .. }] = outcomes.as_slice() else { panic!("{outcomes:?}") };
    assert!(reason.contains("seems separated by `;`"), "{reason}");
    assert_eq!(files_in(&env.path("inbox/loads/failed")), vec!["bad.csv".to_string(), "bad.csv.error.txt".to_string()]);
    let error = std::fs::read_to_string(env.path("inbox/loads/failed/bad.csv.error.txt")).expect("error file");
    assert!(error.contains("bad.csv") && error.contains("load files use commas"), "{error}");
}

#[tokio::test]
async fn a_file_left_in_processing_by_a_crash_is_finished_at_start() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    env.write("inbox/loads/processing/tuesday.csv", &loads_csv(&[GOOD_1]));
    let mut inbox = LoadsInbox::new(&env.settings);
    let outcomes =
        inbox.run_once(&env.store, &env.settings, Instant::now(), &CancellationToken::new()).await.expect("pass");
    assert!(matches!(outcomes.as_slice(), [InboxOutcome::Imported { .. }]), "{outcomes:?}");
    assert!(env.store.load_detail("L-1").await.expect("detail").is_some());
    assert!(files_in(&env.path("inbox/loads/processing")).is_empty());
}

#[tokio::test]
async fn a_database_failure_leaves_the_file_in_processing_for_the_next_pass() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let mut inbox = LoadsInbox::new(&env.settings);
    let never = CancellationToken::new();
    env.write("inbox/loads/wed.csv", &loads_csv(&[GOOD_1]));
    let t0 = Instant::now();
    inbox.run_once(&env.store, &env.settings, t0, &never).await.expect("pass");
    env.store.close().await;
    let failed = inbox.run_once(&env.store, &env.settings, t0 + Duration::from_secs(5), &never).await;
    assert!(matches!(failed, Err(IntakeError::Store(_))), "{failed:?}");
    assert_eq!(files_in(&env.path("inbox/loads/processing")), vec!["wed.csv".to_string()]);
    assert!(files_in(&env.path("inbox/loads/failed")).is_empty(), "a database outage is not the file's fault");

    // A new store (the database is back) and a new daemon start: the file is finished.
    let store = factord::store::Store::connect(&env.settings.database).await.expect("reconnect");
    let mut restarted = LoadsInbox::new(&env.settings);
    let outcomes = restarted.run_once(&store, &env.settings, Instant::now(), &never).await.expect("pass");
    assert!(matches!(outcomes.as_slice(), [InboxOutcome::Imported { .. }]), "{outcomes:?}");
    assert!(store.load_detail("L-1").await.expect("detail").is_some());
}

#[tokio::test]
async fn the_same_daemon_retries_a_file_after_the_database_comes_back() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let mut inbox = LoadsInbox::new(&env.settings);
    let never = CancellationToken::new();
    env.write("inbox/loads/thu.csv", &loads_csv(&[GOOD_1]));
    // Make the loads table unwritable for a moment: the pass fails, the file waits in processing.
    let factord::store::Store::Sqlite(pool) = &env.store else { unreachable!() };
    sqlx::query(
        "CREATE TRIGGER block_loads BEFORE INSERT ON loads BEGIN SELECT RAISE(ABORT, 'database unavailable'); END",
    )
    .execute(pool)
    .await
    .expect("trigger");
    let t0 = Instant::now();
    inbox.run_once(&env.store, &env.settings, t0, &never).await.expect("pass");
    let failed = inbox.run_once(&env.store, &env.settings, t0 + Duration::from_secs(5), &never).await;
    assert!(matches!(failed, Err(IntakeError::Store(_))), "{failed:?}");
    assert_eq!(files_in(&env.path("inbox/loads/processing")), vec!["thu.csv".to_string()]);
    sqlx::query("DROP TRIGGER block_loads").execute(pool).await.expect("drop trigger");
    let outcomes = inbox.run_once(&env.store, &env.settings, t0 + Duration::from_secs(6), &never).await.expect("pass");
    assert!(matches!(outcomes.as_slice(), [InboxOutcome::Imported { .. }]), "{outcomes:?}");
    assert!(files_in(&env.path("inbox/loads/processing")).is_empty());
}

/// `factord status --json` for the test environment's config.
fn status_json(env: &TestEnv) -> serde_json::Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_factord"))
        .arg("--config")
        .arg(&env.config_path)
        .args(["status", "--json"])
        .output()
        .expect("factord status");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("json")
}

both_backends!(refused_load_files_show_in_status_the_dashboard_and_metrics_and_are_retried_after_a_fix, |env| {
    let mut inbox = LoadsInbox::new(&env.settings);
    let never = CancellationToken::new();
    let quiet = env.settings.intake.quiet_period;
    // Dropped in the inbox: semicolons, refused whole.
    env.write("inbox/loads/monday.csv", "load_number;amount\nL-1;10\n");
    let t0 = Instant::now();
    inbox.run_once(&env.store, &env.settings, t0, &never).await.expect("pass");
    let outcomes = inbox.run_once(&env.store, &env.settings, t0 + quiet, &never).await.expect("pass");
    assert!(matches!(outcomes.as_slice(), [InboxOutcome::Failed { .. }]), "{outcomes:?}");
    // Given to `loads import`: not JSON.
    let broken = env.write("tuesday.json", "[{\"load_number\": ");
    import_load_file(&env.store, &env.settings, &broken, None).await.expect_err("refused");
    // A good file given to `loads import` is listed too.
    let good = env.write("wednesday.csv", &loads_csv(&[GOOD_1]));
    import_load_file(&env.store, &env.settings, &good, None).await.expect("imported");

    let status = status_json(&env);
    let refused = status["refused_load_files"].as_array().expect("refused_load_files");
    let files: Vec<&str> = refused.iter().filter_map(|f| f["file"].as_str()).collect();
    assert_eq!(files, ["tuesday.json", "monday.csv"], "newest first: {status:#}");
    assert!(refused[1]["reason"].as_str().is_some_and(|r| r.contains("`;`")), "{status:#}");
    let imported: Vec<&str> =
        status["last_load_files"].as_array().expect("files").iter().filter_map(|f| f["file"].as_str()).collect();
    assert_eq!(imported, ["wednesday.csv"], "{status:#}");

    let dashboard = factord::http::dashboard::Dashboard::gather(&env.store, &env.settings).await.expect("dashboard");
    let html = dashboard.html(&env.settings, chrono::Utc::now());
    assert!(html.contains("Refused files") && html.contains("monday.csv") && html.contains("tuesday.json"));
    assert!(html.contains("seems separated by <code>;</code>"), "the reason, its backticks as code");
    let counts = env.store.metric_counts().await.expect("metrics");
    assert_eq!(counts.refused_load_files, 2);

    // Fixed and dropped again under the same name: taken and imported.
    env.write("inbox/loads/monday.csv", &loads_csv(&[GOOD_2]));
    let t1 = t0 + quiet * 3;
    inbox.run_once(&env.store, &env.settings, t1, &never).await.expect("pass");
    let outcomes = inbox.run_once(&env.store, &env.settings, t1 + quiet, &never).await.expect("pass");
    assert!(matches!(outcomes.as_slice(), [InboxOutcome::Imported { .. }]), "{outcomes:?}");
});

// docs/design.md §7: a column absent from the file (a key absent from a JSON object) leaves the field
// as stored; an empty cell (`null`) clears it. Once Queued, an absent invoiced column is no
// change, an emptied one is refused.
both_backends!(a_reimport_keeps_what_the_file_does_not_carry_and_clears_what_it_empties, |env| {
    let outcome = |report: &factord::intake::FileImport| {
        assert_eq!(report.rows.len(), 1, "{report:#?}");
        (report.rows[0].outcome, report.rows[0].detail.clone())
    };
    let full = "load_number,subsidiary,customer_id,customer_name,amount,status,delivered_at,po_number,truck,\
                pickup_city,pickup_state,delivery_city,delivery_state\n\
                K-1,acme-east,BRK-1,Blue River Logistics,2450.00,Delivered,2026-11-20,PO-1,T-9,Dallas,TX,Memphis,TN\n";
    let file = env.write("full.csv", full);
    let report = import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    assert_eq!(outcome(&report).0, "imported");

    // No status, date, PO, truck or lane columns: only the POD arrives; the rest stays.
    let narrow = "load_number,subsidiary,customer_id,customer_name,amount,pod\n\
                  K-1,acme-east,BRK-1,Blue River Logistics,2450.00,K-1-pod.pdf\n";
    let file = env.write("narrow.csv", narrow);
    let report = import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    assert_eq!(outcome(&report), ("updated", "pod (empty) → K-1-pod.pdf".to_string()));
    let k1 = env.store.load_detail("K-1").await.expect("detail").expect("K-1").load;
    assert_eq!(k1.status, LoadStatus::Delivered, "no status column: the stored status stands");
    assert_eq!(k1.fields.delivered_at.as_deref(), Some("2026-11-20"));
    assert_eq!(k1.fields.po_number.as_deref(), Some("PO-1"));
    assert_eq!(k1.fields.truck.as_deref(), Some("T-9"));
    assert_eq!(k1.fields.pickup().as_deref(), Some("Dallas, TX"));
    assert_eq!(k1.fields.delivery().as_deref(), Some("Memphis, TN"));
    assert_eq!(k1.fields.pod.as_deref(), Some("K-1-pod.pdf"));

    // A present column with an empty cell clears; the status column releases the load.
    let emptied = "load_number,subsidiary,customer_id,customer_name,amount,status,truck\n\
                   K-1,acme-east,BRK-1,Blue River Logistics,2450.00,Released,\n";
    let file = env.write("emptied.csv", emptied);
    let report = import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    assert_eq!(outcome(&report), ("updated", "truck T-9 → (empty), status Delivered → Released".to_string()));
    let k1 = env.store.load_detail("K-1").await.expect("detail").expect("K-1").load;
    assert_eq!(k1.status, LoadStatus::Released);
    assert_eq!(k1.fields.truck, None);
    assert_eq!(k1.fields.po_number.as_deref(), Some("PO-1"));

    // JSON: an absent key keeps, `null` clears.
    let json = r#"[{"load_number": "K-1", "subsidiary": "acme-east", "customer_id": "BRK-1",
                    "customer_name": "Blue River Logistics", "amount": "2450.00", "pickup_city": null,
                    "pickup_state": null}]"#;
    let file = env.write("lane.json", json);
    let report = import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    assert_eq!(outcome(&report), ("updated", "pickup_city Dallas → (empty), pickup_state TX → (empty)".to_string()));
    let k1 = env.store.load_detail("K-1").await.expect("detail").expect("K-1").load;
    assert_eq!(k1.fields.pickup(), None);
    assert_eq!(k1.fields.delivery().as_deref(), Some("Memphis, TN"));
    assert_eq!(k1.fields.po_number.as_deref(), Some("PO-1"));
    assert_eq!(k1.fields.delivered_at.as_deref(), Some("2026-11-20"));
    assert_eq!(k1.fields.pod.as_deref(), Some("K-1-pod.pdf"));

    // Queued: a file without the invoiced columns is no change; one that empties PO is refused.
    env.store.move_status("K-1", LoadStatus::Released, LoadStatus::Queued, "test").await.expect("queue");
    let file = env.write("queued-narrow.csv", narrow);
    let report = import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    assert_eq!(outcome(&report).0, "unchanged", "{report:#?}");
    let cleared = "load_number,subsidiary,customer_id,customer_name,amount,po_number\n\
                   K-1,acme-east,BRK-1,Blue River Logistics,2450.00,\n";
    let file = env.write("queued-cleared.csv", cleared);
    let report = import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    let (kind, detail) = outcome(&report);
    assert_eq!(kind, "rejected");
    assert!(detail.contains("po_number PO-1 → (empty)"), "{detail}");
    let k1 = env.store.load_detail("K-1").await.expect("detail").expect("K-1").load;
    assert_eq!(k1.fields.po_number.as_deref(), Some("PO-1"), "nothing of a refused row is applied");
});

#[tokio::test]
async fn a_huge_value_is_quoted_cut_to_a_readable_length_with_its_size() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let long_load = "L".repeat(5000);
    let long_amount = format!("abc{}", "9".repeat(3000));
    let csv = format!(
        "load_number,subsidiary,customer_id,customer_name,amount,status\n\
         {long_load},acme-east,C-1,Cust,10.00,\n\
         L-2,acme-east,C-1,Cust,{long_amount},\n\
         L-3,acme-east,C-1,Cust,10.00,{}\n",
        "S".repeat(2000)
    );
    let file = env.write("huge.csv", &csv);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_factord"))
        .arg("--config")
        .arg(&env.config_path)
        .args(["loads", "import"])
        .arg(&file)
        .output()
        .expect("factord");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    for line in text.lines() {
        assert!(line.chars().count() < 700, "a line of {} characters:\n{line}", line.chars().count());
    }
    assert!(text.contains("(5000 characters)"), "the load number, cut with its size:\n{text}");
    assert!(text.contains("(3003 characters)"), "the amount, cut with its size:\n{text}");
    assert!(text.contains("(2000 characters)"), "the status, cut with its size:\n{text}");
}
