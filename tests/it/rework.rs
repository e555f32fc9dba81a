//! Rework (docs/design.md §2 "Rework", §6): `loads hold` / `loads release`, `loads void`, `submit
//! --loads` and `factord exceptions`, through the library and the real binary, on both databases.

use factord::domain::{ExceptionKind, LoadStatus};
use factord::intake::import_load_file;
use factord::invoicing;
use factord::rework::{self, ReworkError};
use factord::store::{LoadFilter, LoadRecord};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::harness::{TestEnv, loads_csv};
use crate::pdfs;

/// Imports loads `S-<n>` (acme-east, factored with Capital Depot's outbox) and, for each
/// `D-<n>` in `direct`, an acme-west load (billed directly), all with documents.
async fn import(env: &TestEnv, factored: &[usize], direct: &[usize]) {
    let dir = env.path("documents");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("rc.pdf"), pdfs::rate_confirmation("S", 1)).expect("rc");
    std::fs::write(dir.join("pod.pdf"), pdfs::pod_with_jpeg("S", &pdfs::scanned_jpeg(200, 100, 1))).expect("pod");
    let mut rows: Vec<String> = factored
        .iter()
        .map(|i| format!("S-{i:02},acme-east,BRK-1,Blue,123456,{i}00.00,,,pod.pdf,rc.pdf,PO-{i},,"))
        .collect();
    rows.extend(direct.iter().map(|i| format!("D-{i:02},acme-west,BRK-2,Green,654321,{i}50.00,,,pod.pdf,rc.pdf,,,")));
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let file = env.write("loads.csv", &loads_csv(&refs));
    import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
}

async fn invoice_pass(env: &TestEnv) -> invoicing::PassReport {
    invoicing::run_once(&env.store, &env.settings, None, &CancellationToken::new()).await.expect("invoice pass")
}

async fn submit(env: &TestEnv) -> factord::submit::SubmitReport {
    factord::submit::run_once(&env.store, &env.settings, None, false, "command").await.expect("submit")
}

async fn load(env: &TestEnv, number: &str) -> factord::store::LoadDetail {
    env.store.load_detail(number).await.expect("detail").unwrap_or_else(|| panic!("load {number}"))
}

fn record(detail: &factord::store::LoadDetail) -> (&LoadRecord, LoadStatus) {
    (&detail.load, detail.load.status)
}

fn held_detail(detail: &factord::store::LoadDetail) -> Option<String> {
    detail.exceptions.iter().find(|e| e.kind == ExceptionKind::Held).map(|e| e.detail.clone())
}

both_backends!(a_held_load_is_skipped_by_invoicing_and_submission_until_released, |env| {
    import(&env, &[1, 2], &[]).await;
    let hold = rework::hold(&env.store, "S-01", "customer disputes the rate").await.expect("hold");
    assert!(!hold.already_held);
    assert_eq!((hold.status, hold.detail.as_str()), (LoadStatus::Released, "held by ops: customer disputes the rate"));

    // The invoice pass takes S-02 and leaves S-01 Released, saying why.
    let pass = invoice_pass(&env).await;
    assert_eq!(pass.invoiced.iter().map(|i| i.load_number.as_str()).collect::<Vec<_>>(), ["S-02"], "{pass:#?}");
    let waiting = pass.waiting.iter().find(|w| w.load_number == "S-01").expect("S-01 waits");
    assert!(waiting.reason.starts_with("held: customer disputes the rate; `factord loads release S-01"), "{waiting:?}");
    let s1 = load(&env, "S-01").await;
    assert_eq!((s1.load.status, s1.load.invoice_number.as_deref()), (LoadStatus::Released, None));
    assert_eq!(
        s1.load.waiting_reason.as_deref(),
        Some("held: customer disputes the rate; `factord loads release S-01 --reason ...` to let it move")
    );

    // Holding twice keeps the first hold.
    let again = rework::hold(&env.store, "S-01", "second thoughts").await.expect("hold again");
    assert!(again.already_held);
    assert_eq!(again.detail, "held by ops: customer disputes the rate");

    let released = rework::release(&env.store, "S-01", "rate confirmed by the broker").await.expect("release");
    assert_eq!(released.detail, "held by ops: customer disputes the rate");
    let s1 = load(&env, "S-01").await;
    assert!(held_detail(&s1).is_none() && s1.load.waiting_reason.is_none(), "{s1:#?}");
    // Released when not held: refused.
    assert!(matches!(rework::release(&env.store, "S-01", "again").await, Err(ReworkError::Refused(_))));

    let pass = invoice_pass(&env).await;
    assert_eq!(pass.invoiced.iter().map(|i| i.load_number.as_str()).collect::<Vec<_>>(), ["S-01"]);

    // Held while Queued: submission leaves it Queued, with why; S-02 goes.
    rework::hold(&env.store, "S-01", "waiting for the lumper receipt").await.expect("hold queued");
    let report = submit(&env).await;
    assert_eq!(report.batches.len(), 1, "{report:#?}");
    assert_eq!(report.batches[0].invoices, 1);
    let waiting = report.waiting.iter().find(|w| w.load_number == "S-01").expect("S-01 waits");
    assert!(waiting.reason.starts_with("held: waiting for the lumper receipt;"), "{waiting:?}");
    assert_eq!(record(&load(&env, "S-01").await).1, LoadStatus::Queued);
    assert_eq!(record(&load(&env, "S-02").await).1, LoadStatus::Invoiced);

    rework::release(&env.store, "S-01", "receipt attached").await.expect("release queued");
    let report = submit(&env).await;
    assert_eq!((report.batches.len(), report.batches[0].accepted), (1, 1), "{report:#?}");
    let s1 = load(&env, "S-01").await;
    assert_eq!(s1.load.status, LoadStatus::Invoiced);

    // Every hold and release is in the history with its reason, and is no status move.
    let rows: Vec<(Option<LoadStatus>, LoadStatus, &str)> =
        s1.history.iter().map(|h| (h.from, h.to, h.cause.as_str())).collect();
    let no_move = |status: LoadStatus, cause: &'static str| (Some(status), status, cause);
    for row in [
        no_move(LoadStatus::Released, "held by ops: customer disputes the rate"),
        no_move(LoadStatus::Released, "released: rate confirmed by the broker"),
        no_move(LoadStatus::Queued, "held by ops: waiting for the lumper receipt"),
        no_move(LoadStatus::Queued, "released: receipt attached"),
    ] {
        assert!(rows.contains(&row), "{row:?} not in {rows:#?}");
    }
    assert!(!rows.iter().any(|r| r.2 == "held by ops: second thoughts"), "a second hold writes nothing");
});

both_backends!(a_completed_load_cannot_be_held_and_an_unknown_one_is_not_found, |env| {
    import(&env, &[1], &[]).await;
    invoice_pass(&env).await;
    for (from, to) in [
        (LoadStatus::Queued, LoadStatus::Invoiced),
        (LoadStatus::Invoiced, LoadStatus::Financed),
        (LoadStatus::Financed, LoadStatus::Completed),
    ] {
        env.store.move_status("S-01", from, to, "test").await.expect("move");
    }
    let Err(ReworkError::Refused(message)) = rework::hold(&env.store, "S-01", "late dispute").await else {
        panic!("a Completed load was held")
    };
    assert!(message.contains("S-01 is Completed"), "{message}");
    assert!(held_detail(&load(&env, "S-01").await).is_none());
    assert!(matches!(rework::hold(&env.store, "NOPE", "x").await, Err(ReworkError::NotFound(_))));
    assert!(matches!(rework::hold(&env.store, "S-01", "  ").await, Err(ReworkError::Usage(_))));
});

/// Every invoice number a load carries now, and every one voided.
async fn all_numbers(env: &TestEnv) -> (Vec<String>, Vec<String>) {
    let loads = env.store.list_loads(&LoadFilter::default()).await.expect("list");
    let current: Vec<String> = loads.iter().filter_map(|l| l.load.invoice_number.clone()).collect();
    let mut void = Vec::new();
    for l in &loads {
        void.extend(env.store.void_invoices_of(l.load.id).await.expect("voids").into_iter().map(|v| v.invoice_number));
    }
    (current, void)
}

both_backends!(a_voided_number_is_kept_and_never_issued_again, |env| {
    import(&env, &[1, 2], &[]).await;
    invoice_pass(&env).await;
    assert_eq!(load(&env, "S-01").await.load.invoice_number.as_deref(), Some("AE-1"));

    // The factor's rejection was of the invoice being voided: the void clears it.
    env.store.raise_exception("S-01", ExceptionKind::Rejected, "batch acme-east-1: amount wrong").await.expect("rej");
    let void = rework::void(&env.store, "S-01", "amount was wrong").await.expect("void");
    assert_eq!((void.invoice_number.as_str(), void.from, void.factor.as_deref()), ("AE-1", LoadStatus::Queued, None));
    let s1 = load(&env, "S-01").await;
    assert_eq!((s1.load.status, s1.load.invoice_number.as_deref()), (LoadStatus::Released, None));
    assert!(s1.load.packet_path.is_none() && s1.exceptions.is_empty(), "{s1:#?}");
    let last = s1.history.last().expect("history");
    assert_eq!(
        (last.from, last.to, last.cause.as_str()),
        (Some(LoadStatus::Queued), LoadStatus::Released, "invoice AE-1 voided by ops: amount was wrong")
    );
    assert!(env.store.is_void_invoice("AE-1").await.expect("void?"));

    // Released now: the amount can be corrected by a re-import, and the next pass issues a new
    // number; the sequence only goes up, so AE-1 never comes back.
    let pass = invoice_pass(&env).await;
    assert_eq!(pass.invoiced.len(), 1, "{pass:#?}");
    assert_eq!(load(&env, "S-01").await.load.invoice_number.as_deref(), Some("AE-3"));
    for round in 0..3 {
        rework::void(&env.store, "S-01", &format!("round {round}")).await.expect("void again");
        invoice_pass(&env).await;
    }
    let (current, void) = all_numbers(&env).await;
    assert_eq!(void, ["AE-1", "AE-3", "AE-4", "AE-5"]);
    assert_eq!(load(&env, "S-01").await.load.invoice_number.as_deref(), Some("AE-6"));
    assert!(current.iter().all(|n| !void.contains(n)), "{current:?} reuses one of {void:?}");
    // A new load after all that still gets the next number, not a void one.
    import(&env, &[3], &[]).await;
    invoice_pass(&env).await;
    assert_eq!(load(&env, "S-03").await.load.invoice_number.as_deref(), Some("AE-7"));

    // Even a sequence set back (a subsidiary renamed, keeping its prefix) never gives a number
    // issued before, void or live: AE-1 to AE-7 are passed over.
    // The record of void numbers is append-only.
    let reset = "UPDATE invoice_sequences SET last_number = 0 WHERE subsidiary = 'acme-east'";
    let (erase, rewrite) = ("DELETE FROM void_invoices", "UPDATE void_invoices SET invoice_number = 'AE-99'");
    match env.backend {
        crate::harness::Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&env.database_url).await.expect("connect");
            assert!(sqlx::query(erase).execute(&pool).await.is_err(), "void numbers cannot be deleted");
            assert!(sqlx::query(rewrite).execute(&pool).await.is_err(), "void numbers cannot be changed");
            sqlx::query(reset).execute(&pool).await.expect("reset");
        }
        crate::harness::Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&env.database_url).await.expect("connect");
            assert!(sqlx::query(erase).execute(&pool).await.is_err(), "void numbers cannot be deleted");
            assert!(sqlx::query(rewrite).execute(&pool).await.is_err(), "void numbers cannot be changed");
            sqlx::query(reset).execute(&pool).await.expect("reset");
        }
    }
    import(&env, &[4], &[]).await;
    invoice_pass(&env).await;
    assert_eq!(load(&env, "S-04").await.load.invoice_number.as_deref(), Some("AE-8"));

    // `loads show` lists the void numbers.
    let show = factord::loads::show_load(&env.store, &env.settings, "S-01").await.expect("show").expect("load");
    let json = serde_json::to_value(show.json()).expect("json");
    let listed: Vec<&str> = json["void_invoices"]
        .as_array()
        .expect("void_invoices")
        .iter()
        .filter_map(|v| v["invoice_number"].as_str())
        .collect();
    assert_eq!(listed, ["AE-1", "AE-3", "AE-4", "AE-5"]);
    assert_eq!(json["void_invoices"][0]["reason"], "amount was wrong");
    assert_eq!(json["void_invoices"][0]["factor"], Value::Null);
});

both_backends!(a_load_without_invoice_or_bought_by_the_factor_cannot_be_voided, |env| {
    import(&env, &[1, 2], &[]).await;
    let Err(ReworkError::Refused(message)) = rework::void(&env.store, "S-01", "x").await else {
        panic!("a Released load was voided")
    };
    assert!(message.contains("S-01 is Released: it has no invoice to void"), "{message}");
    invoice_pass(&env).await;
    // In a batch whose outcome is not recorded yet: it may be on its way to the factor.
    let draft = factord::store::BatchDraft {
        subsidiary: "acme-east",
        provider: "capital_depot",
        batch_date: "2026-12-07",
        cause: "test",
        items: vec![factord::store::DraftItem {
            load_id: load(&env, "S-01").await.load.id,
            invoice_number: "AE-1".into(),
            amount_cents: 100,
            payload_sha256: String::new(),
        }],
        lease: std::time::Duration::from_secs(60),
    };
    let created = env.store.create_batch(&draft).await.expect("batch");
    let Err(ReworkError::Refused(message)) = rework::void(&env.store, "S-01", "x").await else {
        panic!("a load in a batch being sent was voided")
    };
    assert!(message.contains(&format!("in batch {}", created.id)), "{message}");
    assert!(!env.store.is_void_invoice("AE-1").await.expect("void?"));
    env.store
        .fail_batch(&created.id, &factord::providers::batch::ProviderError::Transient("test".into()))
        .await
        .expect("fail");
    submit(&env).await;
    env.store.move_status("S-02", LoadStatus::Invoiced, LoadStatus::Financed, "purchase report").await.expect("fin");
    let Err(ReworkError::Refused(message)) = rework::void(&env.store, "S-02", "x").await else {
        panic!("a Financed load was voided")
    };
    assert!(message.contains("S-02 is Financed") && message.contains("chargeback"), "{message}");
    assert_eq!(load(&env, "S-02").await.load.invoice_number.as_deref(), Some("AE-2"));
    assert!(!env.store.is_void_invoice("AE-2").await.expect("void?"));
});

both_backends!(voiding_an_invoice_the_factor_holds_holds_the_load_until_ops_have_told_it, |env| {
    import(&env, &[1], &[]).await;
    invoice_pass(&env).await;
    let report = submit(&env).await;
    assert_eq!(report.batches[0].accepted, 1, "{report:#?}");
    let s1 = load(&env, "S-01").await;
    assert_eq!((s1.load.status, s1.load.factor.as_deref()), (LoadStatus::Invoiced, Some("capital_depot")));

    let void = rework::void(&env.store, "S-01", "billed the wrong customer").await.expect("void");
    assert_eq!(void.factor.as_deref(), Some("capital_depot"));
    assert_eq!(void.notice.as_deref(), Some("tell Capital Depot invoice AE-1 is void"));
    let s1 = load(&env, "S-01").await;
    assert_eq!((s1.load.status, s1.load.batch_id.as_deref()), (LoadStatus::Released, None));
    assert_eq!(held_detail(&s1).as_deref(), Some("tell Capital Depot invoice AE-1 is void"));
    assert!(s1.load.waiting_reason.as_deref().is_some_and(|w| w.starts_with("held: tell Capital Depot")), "{s1:#?}");

    let listed = rework::exceptions(&env.store, &env.settings, None).await.expect("exceptions");
    assert_eq!(listed[0].resolve, "`factord loads release S-01 --reason ...`");

    // Not re-invoiced, and so not re-sent, before ops release it.
    let pass = invoice_pass(&env).await;
    assert!(pass.invoiced.is_empty(), "{pass:#?}");
    assert!(submit(&env).await.batches.is_empty());
    assert_eq!(load(&env, "S-01").await.load.status, LoadStatus::Released);

    rework::release(&env.store, "S-01", "Capital Depot told by phone").await.expect("release");
    invoice_pass(&env).await;
    assert_eq!(load(&env, "S-01").await.load.invoice_number.as_deref(), Some("AE-2"));
    let report = submit(&env).await;
    assert_eq!(report.batches.len(), 1, "{report:#?}");
    assert_eq!((report.batches[0].id.as_str(), report.batches[0].accepted), ("acme-east-2", 1));
    let s1 = load(&env, "S-01").await;
    assert_eq!((s1.load.status, s1.load.batch_id.as_deref()), (LoadStatus::Invoiced, Some("acme-east-2")));
    // The first batch still says what the factor took.
    let batches = env.store.recent_batches(5).await.expect("batches");
    let first = batches.iter().find(|b| b.id == "acme-east-1").expect("first batch");
    assert_eq!(first.accepted, 1);
    let voids = env.store.void_invoices_of(s1.load.id).await.expect("voids");
    assert_eq!(
        (voids[0].invoice_number.as_str(), voids[0].factor.as_deref(), voids[0].batch_id.as_deref()),
        ("AE-1", Some("capital_depot"), Some("acme-east-1"))
    );
});

both_backends!(a_direct_invoice_can_be_voided_without_telling_a_factor, |env| {
    import(&env, &[], &[1]).await;
    invoice_pass(&env).await;
    let d1 = load(&env, "D-01").await;
    assert_eq!((d1.load.status, d1.load.invoice_number.as_deref()), (LoadStatus::Invoiced, Some("AW-1")));
    let void = rework::void(&env.store, "D-01", "customer asked for a new one").await.expect("void");
    assert_eq!((void.from, void.factor.as_deref(), void.notice.as_deref()), (LoadStatus::Invoiced, None, None));
    let d1 = load(&env, "D-01").await;
    assert_eq!((d1.load.status, d1.exceptions.len()), (LoadStatus::Released, 0));
    invoice_pass(&env).await;
    let d1 = load(&env, "D-01").await;
    assert_eq!((d1.load.status, d1.load.invoice_number.as_deref()), (LoadStatus::Invoiced, Some("AW-2")));
});

both_backends!(exceptions_are_listed_oldest_first_with_the_command_that_resolves_each, |env| {
    import(&env, &[1, 2, 3], &[1]).await;
    invoice_pass(&env).await;
    rework::hold(&env.store, "S-02", "check the POD").await.expect("hold");
    env.store.raise_exception("S-01", ExceptionKind::Rejected, "batch acme-east-1: POD unreadable").await.expect("r");
    env.store.raise_exception("D-01", ExceptionKind::ShortPaid, "paid 100.00 of 150.00").await.expect("sp");
    env.store.raise_exception("S-03", ExceptionKind::CreditDeclined, "NOT APPROVED").await.expect("cd");
    env.store.raise_exception("S-03", ExceptionKind::UnrecognisedStatus, "factor status `Limbo`").await.expect("u");

    let all = rework::exceptions(&env.store, &env.settings, None).await.expect("exceptions");
    let listed: Vec<(&str, ExceptionKind)> = all.iter().map(|e| (e.load_number.as_str(), e.kind)).collect();
    assert_eq!(
        listed,
        [
            ("S-02", ExceptionKind::Held),
            ("S-01", ExceptionKind::Rejected),
            ("D-01", ExceptionKind::ShortPaid),
            ("S-03", ExceptionKind::CreditDeclined),
            ("S-03", ExceptionKind::UnrecognisedStatus),
        ]
    );
    assert!(all.windows(2).all(|w| w[0].raised_at <= w[1].raised_at));
    assert_eq!(all[0].resolve, "`factord loads release S-02 --reason ...`");
    assert_eq!(all[0].detail, "held by ops: check the POD");
    assert!(all[1].resolve.contains("`factord loads retry S-01 --reason ...`"), "{}", all[1].resolve);
    assert!(all[2].resolve.contains("factord ingest FILE --provider"), "{}", all[2].resolve);
    assert!(all[3].resolve.contains("factord credit refresh --force") && all[3].resolve.contains("BRK-1"));
    assert!(all[4].resolve.contains("[provider.capital_depot.statuses]") && all[4].resolve.contains("factord sync"));
    assert_eq!((all[1].subsidiary.as_str(), all[1].status), ("acme-east", LoadStatus::Queued));

    let east = rework::exceptions(&env.store, &env.settings, Some("acme-east")).await.expect("east");
    assert_eq!(east.len(), 4);
    assert!(east.iter().all(|e| e.subsidiary == "acme-east"));
    assert!(matches!(rework::exceptions(&env.store, &env.settings, Some("nope")).await, Err(ReworkError::Usage(_))));

    // Released: gone from the list.
    rework::release(&env.store, "S-02", "POD fine").await.expect("release");
    let all = rework::exceptions(&env.store, &env.settings, None).await.expect("exceptions");
    assert!(all.iter().all(|e| e.kind != ExceptionKind::Held), "{all:#?}");
});

both_backends!(submit_loads_sends_only_the_picked_ones, |env| {
    import(&env, &[1, 2, 3, 4, 5], &[]).await;
    invoice_pass(&env).await;
    rework::hold(&env.store, "S-04", "ops hold").await.expect("hold");
    env.store.move_status("S-05", LoadStatus::Queued, LoadStatus::Invoiced, "test").await.expect("move");
    let picked = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // An unknown load refuses the whole command: nothing is sent.
    let with_unknown = picked(&["S-01", "NOPE"]);
    let unknown = rework::submit_picked(&env.store, &env.settings, &with_unknown, None, (false, "command"));
    let Err(ReworkError::Usage(message)) = unknown.await else { panic!("unknown load accepted") };
    assert!(message.contains("NOPE"), "{message}");
    assert_eq!(load(&env, "S-01").await.load.status, LoadStatus::Queued);

    // A dry run lists what would go.
    let dry = rework::submit_picked(&env.store, &env.settings, &picked(&["S-01", "S-03"]), None, (true, "command"))
        .await
        .expect("dry run");
    assert_eq!(dry.report.would_send[0].invoices, ["AE-1", "AE-3"]);
    assert!(dry.report.batches.is_empty());

    let list = picked(&["S-01", "S-03", "S-04", "S-05"]);
    let done = rework::submit_picked(&env.store, &env.settings, &list, None, (false, "command")).await.expect("submit");
    assert_eq!(done.report.batches.len(), 1, "{done:#?}");
    assert_eq!((done.report.batches[0].invoices, done.report.batches[0].accepted), (2, 2));
    let refused: Vec<(&str, &str)> = done.refused.iter().map(|r| (r.load_number.as_str(), r.reason.as_str())).collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused[0].0 == "S-04" && refused[0].1.starts_with("held: ops hold;"), "{refused:?}");
    assert!(refused[1].0 == "S-05" && refused[1].1.starts_with("Invoiced, not Queued"), "{refused:?}");
    assert_eq!(done.not_sent(), 2);
    for (number, status) in [
        ("S-01", LoadStatus::Invoiced),
        ("S-02", LoadStatus::Queued),
        ("S-03", LoadStatus::Invoiced),
        ("S-04", LoadStatus::Queued),
    ] {
        assert_eq!(load(&env, number).await.load.status, status, "{number}");
    }

    // Another subsidiary's load, picked under --subsidiary, is refused.
    let other =
        rework::submit_picked(&env.store, &env.settings, &picked(&["S-02"]), Some("acme-west"), (false, "command"))
            .await
            .expect("other");
    assert_eq!(other.refused[0].reason, "of subsidiary acme-east, not acme-west");
    assert!(other.report.batches.is_empty());
    assert_eq!(load(&env, "S-02").await.load.status, LoadStatus::Queued);
});

/// Runs the real binary on the test environment's config.
fn factord(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_factord"));
    command.current_dir(env.dir.path()).arg("--config").arg(&env.config_path).args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("FACTORD") {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("run factord");
    (
        output.status.code().expect("exit code"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

both_backends!(the_commands_give_exit_codes_clear_messages_and_json, |env| {
    import(&env, &[1, 2], &[]).await;

    // Missing --reason: a usage error.
    let (code, _, stderr) = factord(&env, &["loads", "hold", "S-01"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--reason"), "{stderr}");
    // Unknown load: exit 1, named.
    let (code, _, stderr) = factord(&env, &["loads", "hold", "NOPE", "--reason", "x"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("load NOPE not found"), "{stderr}");
    // Nothing to void on a Released load; nothing to release on a load not held.
    let (code, _, stderr) = factord(&env, &["loads", "void", "S-01", "--reason", "x"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("S-01 is Released: it has no invoice to void"), "{stderr}");
    let (code, _, stderr) = factord(&env, &["loads", "release", "S-01", "--reason", "x"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("S-01 (Released) is not held"), "{stderr}");

    let (code, stdout, stderr) = factord(&env, &["loads", "hold", "S-01", "--reason", "broker dispute", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let hold: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!((hold["already_held"].as_bool(), hold["status"].as_str()), (Some(false), Some("Released")));
    let (code, stdout, _) = factord(&env, &["loads", "hold", "S-01", "--reason", "again"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("already held since") && stdout.contains("the first hold is kept"), "{stdout}");

    let (code, stdout, stderr) = factord(&env, &["loads", "show", "S-01"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("waiting because   held: broker dispute;"), "{stdout}");
    assert!(stdout.contains("Released  held by ops: broker dispute"), "{stdout}");

    let (code, stdout, stderr) = factord(&env, &["exceptions", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(listed[0]["load_number"], "S-01");
    assert_eq!(listed[0]["resolve"], "`factord loads release S-01 --reason ...`");
    let (code, stdout, _) = factord(&env, &["exceptions"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("S-01 (acme-east, Released)  held: held by ops: broker dispute"), "{stdout}");
    assert!(stdout.contains(" ago)  S-01"), "the age of each exception: {stdout}");
    let (code, _, stderr) = factord(&env, &["exceptions", "--subsidiary", "nope"]);
    assert_eq!(code, 2, "{stderr}");

    let (code, stdout, stderr) = factord(&env, &["invoice"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, _, stderr) = factord(&env, &["submit", "--loads", "S-02,NOPE"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("unknown load(s): NOPE"), "{stderr}");
    // A held load picked: refused, so exit 1; S-02 goes.
    let (code, stdout, stderr) = factord(&env, &["submit", "--loads", "S-01,S-02", "--json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let picked: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(picked["refused"][0]["load_number"], "S-01");
    assert_eq!(picked["batches"][0]["accepted"], 1);

    let (code, stdout, stderr) = factord(&env, &["loads", "void", "S-02", "--reason", "wrong amount"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("invoice AE-1 is void") && stdout.contains("tell Capital Depot invoice AE-1 is void"));
    let (code, stdout, _) = factord(&env, &["loads", "show", "S-02", "--json"]);
    assert_eq!(code, 0);
    let show: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(show["void_invoices"][0]["invoice_number"], "AE-1");
    assert_eq!(show["void_invoices"][0]["factor"], "capital_depot");
    assert_eq!(show["exceptions"][0]["detail"], "tell Capital Depot invoice AE-1 is void");
    let (code, _, stderr) = factord(&env, &["loads", "void", "S-02", "--reason", "again"]);
    assert_eq!(code, 1, "{stderr}");
});

/// Migration 0014 on a SQLite database holding batch items: the table is rebuilt to take the
/// `void` outcome with every row kept, column for column, and one live batch per load still
/// enforced.
#[tokio::test]
async fn sqlite_batch_items_keep_their_rows_when_the_void_outcome_is_added() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("upgrade.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.expect("open");
    let all = sqlx::migrate::Migrator::new(std::path::Path::new("migrations/sqlite")).await.expect("migrations");
    let mut before = sqlx::migrate::Migrator::new(std::path::Path::new("migrations/sqlite")).await.expect("migrations");
    before.migrations = before.migrations.iter().filter(|m| m.version < 14).cloned().collect::<Vec<_>>().into();
    before.run(&mut db).await.expect("migrations 1-13");
    for sql in [
        "INSERT INTO customers (id, name, created_at, updated_at) VALUES ('BRK-1', 'Blue', 'x', 'x')",
        "INSERT INTO loads (id, load_number, subsidiary, customer_id, amount_cents, status, invoice_number, created_at, \
         updated_at) VALUES (1, 'S-01', 'acme-east', 'BRK-1', 100, 'Invoiced', 'AE-1', 'x', 'x')",
        "INSERT INTO loads (id, load_number, subsidiary, customer_id, amount_cents, status, invoice_number, created_at, \
         updated_at) VALUES (2, 'S-02', 'acme-east', 'BRK-1', 200, 'Queued', 'AE-2', 'x', 'x')",
        "INSERT INTO batches (id, subsidiary, provider, number, batch_date, status, invoice_count, total_cents, cause, \
         created_at) VALUES ('acme-east-1', 'acme-east', 'capital_depot', 1, '2026-11-30', 'sent', 2, 300, 'command', 'x')",
        "INSERT INTO batch_items (batch_id, load_id, invoice_number, idempotency_key, payload_sha256, outcome, \
         factor_reference, message) VALUES ('acme-east-1', 1, 'AE-1', 'k1', 'h1', 'accepted', 'REF-1', NULL)",
        "INSERT INTO batch_items (batch_id, load_id, invoice_number, idempotency_key, payload_sha256, outcome, \
         factor_reference, message) VALUES ('acme-east-1', 2, 'AE-2', 'k2', 'h2', 'rejected', NULL, 'no POD')",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut db).await.expect(sql);
    }
    all.run(&mut db).await.expect("migration 14");
    type Item = (String, i64, String, String, String, String, Option<String>, Option<String>);
    let items: Vec<Item> = sqlx::query_as(
        "SELECT batch_id, load_id, invoice_number, idempotency_key, payload_sha256, outcome, factor_reference, message \
         FROM batch_items ORDER BY load_id",
    )
    .fetch_all(&mut db)
    .await
    .expect("items");
    let item =
        |load: i64, n: &str, key: &str, hash: &str, outcome: &str, reference: Option<&str>, message: Option<&str>| {
            let text = |v: Option<&str>| v.map(str::to_string);
            (
                "acme-east-1".to_string(),
                load,
                n.to_string(),
                key.to_string(),
                hash.to_string(),
                outcome.to_string(),
                text(reference),
                text(message),
            )
        };
    assert_eq!(
        items,
        vec![
            item(1, "AE-1", "k1", "h1", "accepted", Some("REF-1"), None),
            item(2, "AE-2", "k2", "h2", "rejected", None, Some("no POD")),
        ]
    );
    // Still one live batch per load; `void` is an outcome now, and frees the load.
    let second_live = "INSERT INTO batch_items (batch_id, load_id, invoice_number, idempotency_key, payload_sha256, \
                       outcome) VALUES ('acme-east-1', 2, 'AE-9', 'k9', 'h9', 'pending')";
    let clash = sqlx::query(
        "INSERT INTO batches (id, subsidiary, provider, number, batch_date, status, invoice_count, total_cents, cause, \
         created_at) VALUES ('acme-east-2', 'acme-east', 'capital_depot', 2, '2026-12-01', 'sending', 1, 100, 'command', 'x')",
    );
    clash.execute(&mut db).await.expect("batch 2");
    let again = "INSERT INTO batch_items (batch_id, load_id, invoice_number, idempotency_key, payload_sha256, outcome) \
                 VALUES ('acme-east-2', 1, 'AE-3', 'k3', 'h3', 'pending')";
    assert!(sqlx::query(sqlx::AssertSqlSafe(again)).execute(&mut db).await.is_err(), "load 1 is in a live batch");
    sqlx::query("UPDATE batch_items SET outcome = 'void' WHERE load_id = 1").execute(&mut db).await.expect("void");
    sqlx::query(sqlx::AssertSqlSafe(again)).execute(&mut db).await.expect("a voided item frees its load");
    assert!(sqlx::query(sqlx::AssertSqlSafe(second_live)).execute(&mut db).await.is_err(), "same batch and load twice");
}

both_backends!(a_held_queued_load_keeps_its_reason_when_its_packet_is_rebuilt_for_a_new_noa, |env| {
    import(&env, &[1], &[]).await;
    invoice_pass(&env).await;
    rework::hold(&env.store, "S-01", "broker disputes the rate").await.expect("hold");
    let switched =
        crate::submit::switched_settings(&env, "provider = \"capital_depot\"", "Pay Capital Depot, new box.");
    let pass = invoicing::run_once(&env.store, &switched, None, &CancellationToken::new()).await.expect("pass");
    assert_eq!(pass.rebuilt.rebuilt.len(), 1, "{pass:#?}");
    let s1 = load(&env, "S-01").await;
    assert_eq!(s1.load.status, LoadStatus::Queued);
    assert!(
        s1.load.waiting_reason.as_deref().is_some_and(|w| w.starts_with("held: broker disputes the rate;")),
        "{s1:#?}"
    );
    let report = factord::submit::run_once(&env.store, &switched, None, false, "command").await.expect("submit");
    assert!(report.batches.is_empty(), "{report:#?}");
});
