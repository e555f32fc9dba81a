//! Store conformance: every store method against SQLite and PostgreSQL, one behaviour.

use factord::domain::{Customer, ExceptionKind, LoadFields, LoadInput, LoadStatus, Money};
use factord::store::{FileRef, ImportRequest, ImportRow, LoadFilter, RowOutcome, Store, StoreError};

use crate::both_backends;

fn input(load_number: &str, subsidiary: &str, cents: i64) -> LoadInput {
    LoadInput {
        load_number: load_number.to_string(),
        customer: Customer {
            id: "BRK-1".into(),
            name: "Blue River Logistics".into(),
            mc: Some("123456".into()),
            dot: None,
        },
        status: LoadStatus::Released,
        fields: LoadFields {
            subsidiary: subsidiary.to_string(),
            customer_id: "BRK-1".into(),
            amount: Money::from_cents(cents),
            delivered_at: Some("2026-11-20".into()),
            pod: None,
            rate_confirmation: Some(format!("{load_number}-rc.pdf")),
            po_number: Some("PO-1".into()),
            factor_reference: None,
            truck: None,
            pickup_city: Some("Dallas".into()),
            pickup_state: Some("TX".into()),
            delivery_city: Some("Memphis".into()),
            delivery_state: Some("TN".into()),
            bill_to_name: None,
            bill_to_address: None,
            pickup_date: None,
            shipper_name: None,
            consignee_name: None,
            bol_number: None,
            terms_days: Some(30),
        },
        extras: Default::default(),
        absent: Default::default(),
    }
}

async fn import(store: &Store, inputs: &[LoadInput]) -> Vec<RowOutcome> {
    let rows: Vec<ImportRow> =
        inputs.iter().enumerate().map(|(i, input)| ImportRow { row: i + 2, input: input.clone() }).collect();
    let result = store
        .import_loads(ImportRequest {
            rows: &rows,
            cause: "import test.csv",
            file: None,
            file_errors: 0,
            progress: None,
        })
        .await
        .expect("import");
    result.rows.into_iter().map(|r| r.outcome).collect()
}

async fn status_of(store: &Store, load: &str) -> LoadStatus {
    store.load_detail(load).await.expect("detail").expect("load exists").load.status
}

/// Moves a load along the graph to `target` through the legal moves.
async fn advance(store: &Store, load: &str, path: &[LoadStatus]) {
    for pair in path.windows(2) {
        store.move_status(load, pair[0], pair[1], "test").await.expect("legal move");
    }
}

both_backends!(import_inserts_updates_and_leaves_unchanged, |env| {
    let store = &env.store;
    assert_eq!(import(store, &[input("L-1", "acme-east", 245_000)]).await, vec![RowOutcome::Imported]);
    // Same content again: nothing changes, no new history.
    assert_eq!(import(store, &[input("L-1", "acme-east", 245_000)]).await, vec![RowOutcome::Unchanged]);
    // The POD arrives later: an update while Released.
    let mut with_pod = input("L-1", "acme-east", 245_000);
    with_pod.fields.pod = Some("L-1-pod.pdf".into());
    let outcome = import(store, &[with_pod]).await;
    assert!(matches!(&outcome[0], RowOutcome::Updated(d) if d.contains("pod")), "{outcome:?}");

    let detail = store.load_detail("L-1").await.expect("detail").expect("exists");
    assert_eq!(detail.load.status, LoadStatus::Released);
    assert_eq!(detail.load.fields.pod.as_deref(), Some("L-1-pod.pdf"));
    assert_eq!(detail.load.fields.amount, Money::from_cents(245_000));
    assert_eq!(detail.load.customer_mc.as_deref(), Some("123456"));
    assert_eq!(detail.history.len(), 1, "only the creation is a status move");
    assert_eq!(detail.history[0].from, None);
    assert_eq!(detail.history[0].to, LoadStatus::Released);
    assert_eq!(detail.history[0].cause, "import test.csv row 2");
});

both_backends!(frozen_fields_after_queued_are_refused_whole, |env| {
    let store = &env.store;
    import(store, &[input("L-2", "acme-east", 100_000)]).await;
    store.move_status("L-2", LoadStatus::Released, LoadStatus::Queued, "invoice").await.expect("queue");
    let mut changed = input("L-2", "acme-east", 120_000);
    changed.fields.truck = Some("T-9".into());
    let outcome = import(store, &[changed]).await;
    assert!(matches!(&outcome[0], RowOutcome::Rejected(r) if r.contains("amount 1000.00 → 1200.00")), "{outcome:?}");
    let load = store.load_detail("L-2").await.expect("detail").expect("exists").load;
    // Nothing half-applied: the truck did not slip through with the refused amount.
    assert_eq!(load.fields.amount, Money::from_cents(100_000));
    assert_eq!(load.fields.truck, None);

    // A reference number alone may still arrive while Queued.
    let mut reference = input("L-2", "acme-east", 100_000);
    reference.fields.factor_reference = Some("WEX-77".into());
    assert!(matches!(&import(store, &[reference]).await[0], RowOutcome::Updated(_)));
});

both_backends!(customer_details_are_kept_when_a_row_omits_them, |env| {
    let store = &env.store;
    import(store, &[input("L-3", "acme-east", 5_000)]).await;
    let mut other = input("L-4", "acme-east", 6_000);
    other.customer.mc = None;
    other.customer.name = "Blue River Logistics LLC".into();
    import(store, &[other]).await;
    let load = store.load_detail("L-3").await.expect("detail").expect("exists").load;
    assert_eq!(load.customer_name, "Blue River Logistics LLC", "the customer record is shared and updated");
    assert_eq!(load.customer_mc.as_deref(), Some("123456"), "a row without MC keeps the known MC");
});

both_backends!(delivered_loads_are_released_by_reimport_never_back, |env| {
    let store = &env.store;
    let mut delivered = input("L-5", "acme-east", 5_000);
    delivered.status = LoadStatus::Delivered;
    import(store, &[delivered.clone()]).await;
    assert_eq!(status_of(store, "L-5").await, LoadStatus::Delivered);
    let released = input("L-5", "acme-east", 5_000);
    assert!(
        matches!(&import(store, &[released]).await[0], RowOutcome::Updated(d) if d.contains("Delivered → Released"))
    );
    assert_eq!(status_of(store, "L-5").await, LoadStatus::Released);
    assert!(matches!(&import(store, &[delivered]).await[0], RowOutcome::Rejected(_)));
    let history = store.load_detail("L-5").await.expect("detail").expect("exists").history;
    assert_eq!(
        history.iter().map(|h| (h.from, h.to)).collect::<Vec<_>>(),
        vec![(None, LoadStatus::Delivered), (Some(LoadStatus::Delivered), LoadStatus::Released)]
    );
});

both_backends!(every_move_outside_the_graph_is_refused, |env| {
    let store = &env.store;
    let path =
        [LoadStatus::Released, LoadStatus::Queued, LoadStatus::Invoiced, LoadStatus::Financed, LoadStatus::Completed];
    for from in LoadStatus::ALL {
        for to in LoadStatus::ALL {
            if from.can_move_to(to) {
                continue;
            }
            let result = store.move_status("L-any", from, to, "test").await;
            assert!(matches!(result, Err(StoreError::IllegalMove { .. })), "{from} -> {to}: {result:?}");
        }
    }
    // The legal path works, each step recorded, and a stale expectation is a conflict.
    import(store, &[input("L-6", "acme-east", 5_000)]).await;
    advance(store, "L-6", &path).await;
    assert_eq!(status_of(store, "L-6").await, LoadStatus::Completed);
    let conflict = store.move_status("L-6", LoadStatus::Released, LoadStatus::Queued, "late").await;
    assert!(matches!(conflict, Err(StoreError::Conflict { actual: LoadStatus::Completed, .. })), "{conflict:?}");
    let missing = store.move_status("L-none", LoadStatus::Released, LoadStatus::Queued, "x").await;
    assert!(matches!(missing, Err(StoreError::LoadNotFound(_))), "{missing:?}");
    let history = store.load_detail("L-6").await.expect("detail").expect("exists").history;
    assert_eq!(history.len(), 5);
    assert!(history.windows(2).all(|w| w[0].to < w[1].to), "history only moves forward");
});

both_backends!(direct_invoicing_move_is_legal, |env| {
    let store = &env.store;
    import(store, &[input("L-7", "acme-west", 5_000)]).await;
    store.move_status("L-7", LoadStatus::Released, LoadStatus::Invoiced, "direct invoice").await.expect("direct");
    assert_eq!(status_of(store, "L-7").await, LoadStatus::Invoiced);
});

both_backends!(concurrent_compare_and_set_has_exactly_one_winner, |env| {
    let store = env.store.clone();
    let loads: Vec<LoadInput> = (0..20).map(|i| input(&format!("R-{i}"), "acme-east", 1_000 + i)).collect();
    import(&store, &loads).await;
    for i in 0..20 {
        let load = format!("R-{i}");
        let (a, b) = tokio::join!(
            {
                let store = store.clone();
                let load = load.clone();
                tokio::spawn(async move {
                    store.move_status(&load, LoadStatus::Released, LoadStatus::Queued, "racer a").await
                })
            },
            {
                let store = store.clone();
                let load = load.clone();
                tokio::spawn(async move {
                    store.move_status(&load, LoadStatus::Released, LoadStatus::Queued, "racer b").await
                })
            }
        );
        let results = [a.expect("join a"), b.expect("join b")];
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{load}: {results:?}");
        assert!(results.iter().any(|r| matches!(r, Err(StoreError::Conflict { actual: LoadStatus::Queued, .. }))));
        let history = store.load_detail(&load).await.expect("detail").expect("exists").history;
        assert_eq!(history.len(), 2, "exactly one move recorded for {load}");
    }
});

both_backends!(exceptions_are_flags_raised_once_and_cleared, |env| {
    let store = &env.store;
    import(store, &[input("L-8", "acme-east", 5_000)]).await;
    store.raise_exception("L-8", ExceptionKind::Held, "factor holds: missing BOL").await.expect("raise");
    store.raise_exception("L-8", ExceptionKind::Held, "second note").await.expect("raise again");
    store.raise_exception("L-8", ExceptionKind::ShortPaid, "paid 40.00 of 50.00").await.expect("raise");
    let detail = store.load_detail("L-8").await.expect("detail").expect("exists");
    assert_eq!(detail.exceptions.len(), 2);
    assert_eq!(detail.exceptions[0].kind, ExceptionKind::Held);
    assert_eq!(detail.exceptions[0].detail, "factor holds: missing BOL");
    assert_eq!(detail.load.status, LoadStatus::Released, "an exception is not a status");

    let counts = store.status_counts().await.expect("counts");
    let east = counts.iter().find(|c| c.subsidiary == "acme-east").expect("east counted");
    assert_eq!(east.exceptions, 2);

    assert!(store.clear_exception("L-8", ExceptionKind::Held).await.expect("clear"));
    assert!(!store.clear_exception("L-8", ExceptionKind::Held).await.expect("clear twice"));
    let detail = store.load_detail("L-8").await.expect("detail").expect("exists");
    assert_eq!(detail.exceptions.iter().map(|e| e.kind).collect::<Vec<_>>(), vec![ExceptionKind::ShortPaid]);
    // A new hold after the clear is a new flag.
    store.raise_exception("L-8", ExceptionKind::Held, "held again").await.expect("raise after clear");
    let listed = store.list_loads(&LoadFilter::default()).await.expect("list");
    assert_eq!(listed[0].exceptions.len(), 2);
    assert!(matches!(
        store.raise_exception("L-none", ExceptionKind::Held, "x").await,
        Err(StoreError::LoadNotFound(_))
    ));
});

both_backends!(waiting_reasons_are_recorded_counted_and_cleared, |env| {
    let store = &env.store;
    import(store, &[input("L-9", "acme-east", 5_000), input("L-10", "acme-east", 5_000)]).await;
    store.set_waiting_reason("L-9", Some("missing POD")).await.expect("set");
    let counts = store.status_counts().await.expect("counts");
    assert_eq!(counts.iter().find(|c| c.subsidiary == "acme-east").expect("east").waiting, 1);
    let load = store.load_detail("L-9").await.expect("detail").expect("exists").load;
    assert_eq!(load.waiting_reason.as_deref(), Some("missing POD"));
    store.set_waiting_reason("L-9", None).await.expect("clear");
    let counts = store.status_counts().await.expect("counts");
    assert_eq!(counts.iter().find(|c| c.subsidiary == "acme-east").expect("east").waiting, 0);
    assert!(matches!(store.set_waiting_reason("nope", None).await, Err(StoreError::LoadNotFound(_))));
});

both_backends!(list_filters_and_counts, |env| {
    let store = &env.store;
    import(store, &[input("A-1", "acme-east", 100), input("A-2", "acme-east", 200), input("B-1", "acme-west", 300)])
        .await;
    store.move_status("A-2", LoadStatus::Released, LoadStatus::Queued, "t").await.expect("queue");

    let all = store.list_loads(&LoadFilter::default()).await.expect("list");
    assert_eq!(all.iter().map(|l| l.load.load_number.as_str()).collect::<Vec<_>>(), vec!["A-1", "A-2", "B-1"]);
    let released_east = store
        .list_loads(&LoadFilter {
            status: Some(LoadStatus::Released),
            subsidiary: Some("acme-east".into()),
            limit: None,
        })
        .await
        .expect("list");
    assert_eq!(released_east.len(), 1);
    assert_eq!(released_east[0].load.load_number, "A-1");
    let limited = store.list_loads(&LoadFilter { limit: Some(2), ..LoadFilter::default() }).await.expect("list");
    assert_eq!(limited.len(), 2);

    let counts = store.status_counts().await.expect("counts");
    let east = counts.iter().find(|c| c.subsidiary == "acme-east").expect("east");
    assert_eq!(east.counts.get(&LoadStatus::Released), Some(&1));
    assert_eq!(east.counts.get(&LoadStatus::Queued), Some(&1));
    let west = counts.iter().find(|c| c.subsidiary == "acme-west").expect("west");
    assert_eq!(west.counts.get(&LoadStatus::Released), Some(&1));
});

both_backends!(an_inbox_file_is_applied_once_per_content, |env| {
    let store = &env.store;
    let rows = vec![ImportRow { row: 2, input: input("F-1", "acme-east", 100) }];
    let file = FileRef { channel: "loads", sha256: "abc123", file_name: "monday.csv" };
    let first = store
        .import_loads(ImportRequest {
            rows: &rows,
            cause: "import monday.csv",
            file: Some(file),
            file_errors: 1,
            progress: None,
        })
        .await
        .expect("first");
    assert!(first.duplicate_of.is_none());
    assert_eq!(first.rows.len(), 1);
    let recorded = store.find_inbox_file("loads", "abc123").await.expect("find").expect("recorded");
    assert_eq!(recorded.file_name, "monday.csv");
    let summary: serde_json::Value = serde_json::from_str(&recorded.summary).expect("summary json");
    assert_eq!(summary["imported"], 1);
    assert_eq!(summary["rejected"], 1);

    // The same content under another name: nothing applied, the first file named.
    let mut changed = input("F-1", "acme-east", 999);
    changed.fields.po_number = Some("changed".into());
    let rows = vec![ImportRow { row: 2, input: changed }];
    let again = FileRef { channel: "loads", sha256: "abc123", file_name: "monday (copy).csv" };
    let second = store
        .import_loads(ImportRequest {
            rows: &rows,
            cause: "import copy",
            file: Some(again),
            file_errors: 0,
            progress: None,
        })
        .await
        .expect("second");
    assert_eq!(second.duplicate_of.expect("duplicate").file_name, "monday.csv");
    assert!(second.rows.is_empty());
    let load = store.load_detail("F-1").await.expect("detail").expect("exists").load;
    assert_eq!(load.fields.amount, Money::from_cents(100));
    assert_eq!(store.recent_inbox_files("loads", 10).await.expect("recent").len(), 1);
});

both_backends!(history_is_append_only_in_the_schema, |env| {
    let store = &env.store;
    import(store, &[input("H-1", "acme-east", 100)]).await;
    let result = match store {
        Store::Sqlite(pool) => {
            sqlx::query("UPDATE load_history SET cause = 'rewritten'").execute(pool).await.map(|_| ())
        }
        Store::Postgres(pool) => {
            sqlx::query("UPDATE load_history SET cause = 'rewritten'").execute(pool).await.map(|_| ())
        }
    };
    assert!(result.is_err(), "history rows cannot be rewritten");
    let result = match store {
        Store::Sqlite(pool) => sqlx::query("DELETE FROM load_history").execute(pool).await.map(|_| ()),
        Store::Postgres(pool) => sqlx::query("DELETE FROM load_history").execute(pool).await.map(|_| ()),
    };
    assert!(result.is_err(), "history rows cannot be deleted");
    assert_eq!(
        store.load_detail("H-1").await.expect("detail").expect("exists").history[0].cause,
        "import test.csv row 2"
    );
});

both_backends!(migrations_are_idempotent_and_the_database_answers, |env| {
    env.store.migrate().await.expect("second migrate is a no-op");
    env.store.ping().await.expect("ping");
});

/// Migration 0008 on a SQLite database holding purchases from 0006's table: every purchase is
/// kept, column for column, and `load_id` becomes the rowid (no second index of load ids).
#[tokio::test]
async fn sqlite_purchases_keep_their_rows_when_load_id_becomes_the_rowid() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("upgrade.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.expect("open");
    let all = sqlx::migrate::Migrator::new(std::path::Path::new("migrations/sqlite")).await.expect("migrations");
    let mut before = sqlx::migrate::Migrator::new(std::path::Path::new("migrations/sqlite")).await.expect("migrations");
    before.migrations = before.migrations.iter().filter(|m| m.version < 8).cloned().collect::<Vec<_>>().into();
    before.run(&mut db).await.expect("migrations 1-7");
    for (load_id, schedule) in [(41_i64, Some("S-9")), (7, None)] {
        sqlx::query(
            "INSERT INTO purchases (load_id, report_file_id, row_number, amount_cents, advance_cents, fee_cents, \
             reserve_cents, purchase_date, schedule_number, factor_status, recorded_at) \
             VALUES (?, 3, 12, 150000, 145500, 4500, NULL, '2026-11-30', ?, 'Funded', '2026-11-30T16:00:00+00:00')",
        )
        .bind(load_id)
        .bind(schedule)
        .execute(&mut db)
        .await
        .expect("purchase");
    }
    all.run(&mut db).await.expect("migration 8");
    type Purchase = (i64, i64, i64, i64, i64, i64, Option<i64>, String, Option<String>, String, String);
    let rows: Vec<Purchase> = sqlx::query_as(
        "SELECT load_id, report_file_id, row_number, amount_cents, advance_cents, fee_cents, reserve_cents, \
         purchase_date, schedule_number, factor_status, recorded_at FROM purchases ORDER BY rowid",
    )
    .fetch_all(&mut db)
    .await
    .expect("purchases");
    let row = |load_id: i64, schedule: Option<&str>| -> Purchase {
        let schedule = schedule.map(str::to_string);
        let (date, status, at) = ("2026-11-30".into(), "Funded".into(), "2026-11-30T16:00:00+00:00".into());
        (load_id, 3, 12, 150_000, 145_500, 4_500, None, date, schedule, status, at)
    };
    assert_eq!(rows, vec![row(7, None), row(41, Some("S-9"))], "kept, and in load order: load_id is the rowid");
    let indexes: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_index_list('purchases')")
        .fetch_all(&mut db)
        .await
        .expect("indexes");
    assert!(indexes.is_empty(), "no second index of load ids: {indexes:?}");
    let duplicate = sqlx::query(
        "INSERT INTO purchases (load_id, report_file_id, row_number, recorded_at) VALUES (41, 4, 1, '2026-12-01')",
    )
    .execute(&mut db)
    .await;
    assert!(duplicate.is_err(), "one purchase per load still");
}
