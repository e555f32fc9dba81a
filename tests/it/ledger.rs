//! The money ledger (docs/money.md) on both backends: loads driven through a purchase report with
//! reserve, a partial payment, a reserve release with an extra fee and a chargeback; then
//! `reconcile`, `aging`, `export journal` and the money summary (metrics) checked against the
//! source rows and hand-computed figures, through the real binary.

use std::collections::BTreeMap;
use std::process::Command;

use chrono::NaiveDate;
use factord::domain::{ExceptionKind, LoadStatus, Money};
use factord::reports::{ReportKind, ingest_file};
use factord::store::Store;
use serde_json::Value;

use crate::both_backends;
use crate::harness::TestEnv;
use crate::seed::{Seed, seed};

const PROVIDER: &str = "capital_depot";

const PURCHASE_CSV: &str = "Invoice Number,Invoice Amount,Advance,Fee,Reserve,Purchase Date,Schedule #\n\
G-INV000001,\"1,875.50\",1688.00,56.27,131.23,11/02/2026,S-1\n\
G-INV000002,1875.50,1700.00,50.00,125.50,11/02/2026,S-1\n\
G-INV000003,1875.50,1650.00,50.00,100.00,11/03/2026,S-1\n";

const PAYMENT_CSV: &str = "Invoice Number,Amount Paid,Payment Date,Reference,Reserve Released,Fee,Chargeback\n\
G-INV000001,1000.00,11/20/2026,CHK-1,,,\n\
G-INV000002,1875.50,11/21/2026,CHK-2,100.50,25.00,\n\
G-INV000003,,11/25/2026,,,,1875.50\n";

fn day(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

fn cents(text: &str) -> i64 {
    if text.trim().is_empty() { 0 } else { Money::parse(text).expect("amount").cents() }
}

/// A CSV text's rows as maps from header to cell.
fn rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            headers.iter().zip(r.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect()
        })
        .collect()
}

/// The sum of a column of a CSV text, in cents.
fn column_sum(text: &str, column: &str) -> i64 {
    rows(text).iter().map(|r| cents(r.get(column).map_or("", String::as_str))).sum()
}

async fn set_invoice_date(store: &Store, load: &str, date: &str) {
    let sql = "UPDATE loads SET invoice_date = $1 WHERE load_number = $2";
    match store {
        Store::Postgres(pool) => {
            sqlx::query(sql).bind(date).bind(load).execute(pool).await.expect("date");
        }
        Store::Sqlite(pool) => {
            sqlx::query(sql).bind(date).bind(load).execute(pool).await.expect("date");
        }
    }
}

/// G-000004 invoiced again under G-INV000099 after a void, as a release and the next passes
/// would do; with `batch`, sent to the seed's factor.
async fn reinvoice(store: &Store, batch: Option<&str>) {
    let sql = "UPDATE loads SET status = 'Invoiced', invoice_number = 'G-INV000099', invoice_date = '2026-12-01', \
               batch_id = $1 WHERE load_number = 'G-000004'";
    match store {
        Store::Postgres(pool) => {
            sqlx::query(sql).bind(batch).execute(pool).await.expect("reinvoice");
        }
        Store::Sqlite(pool) => {
            sqlx::query(sql).bind(batch).execute(pool).await.expect("reinvoice");
        }
    }
}

async fn exceptions_of(store: &Store, load: &str) -> Vec<(ExceptionKind, String)> {
    let detail = store.load_detail(load).await.expect("detail").expect("load exists");
    detail.exceptions.into_iter().map(|e| (e.kind, e.detail)).collect()
}

/// Four loads of $1,875.50 invoiced on 2026-08-01, 09-20, 10-25 and 11-20; the purchase and the
/// payment report above applied.
async fn drive(env: &TestEnv) {
    let loads = Seed {
        subsidiary: "acme-east",
        provider: PROVIDER,
        prefix: "G-",
        count: 4,
        amount_cents: 187_550,
        status: "Invoiced",
    };
    seed(&env.store, &loads).await;
    for (load, date) in
        [("G-000001", "2026-08-01"), ("G-000002", "2026-09-20"), ("G-000003", "2026-10-25"), ("G-000004", "2026-11-20")]
    {
        set_invoice_date(&env.store, load, date).await;
    }
    let purchase = env.write("purchase.csv", PURCHASE_CSV);
    let summary = ingest_file(&env.store, &env.settings, &purchase, PROVIDER, Some(ReportKind::Purchase))
        .await
        .expect("purchase ingest");
    assert_eq!((summary.applied, summary.rejected), (3, 0), "{summary:#?}");
    let payment = env.write("payment.csv", PAYMENT_CSV);
    let summary = ingest_file(&env.store, &env.settings, &payment, PROVIDER, None).await.expect("payment ingest");
    assert_eq!(summary.refused, None, "{summary:#?}");
    assert_eq!((summary.applied, summary.rejected), (3, 0), "{summary:#?}");
}

fn factord(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_factord"))
        .current_dir(env.dir.path())
        .arg("--config")
        .arg(&env.config_path)
        .args(args)
        .output()
        .expect("run factord");
    (
        output.status.code().expect("exited"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(env: &TestEnv, args: &[&str]) -> String {
    let (code, stdout, stderr) = factord(env, args);
    assert_eq!(code, 0, "factord {args:?}: {stdout}\n{stderr}");
    stdout
}

both_backends!(a_mismatching_purchase_and_a_chargeback_raise_exceptions_with_their_figures, |env| {
    drive(&env).await;
    let mismatch = exceptions_of(&env.store, "G-000003").await;
    let kinds: Vec<ExceptionKind> = mismatch.iter().map(|e| e.0).collect();
    assert!(kinds.contains(&ExceptionKind::LedgerMismatch), "{mismatch:?}");
    assert!(kinds.contains(&ExceptionKind::ChargedBack), "{mismatch:?}");
    let detail = &mismatch.iter().find(|e| e.0 == ExceptionKind::LedgerMismatch).expect("mismatch").1;
    for figure in ["$1,875.50", "$1,650.00", "$50.00", "$100.00", "$1,800.00", "$75.50", "purchase.csv row 4"] {
        assert!(detail.contains(figure), "{figure} in {detail}");
    }
    let charged = &mismatch.iter().find(|e| e.0 == ExceptionKind::ChargedBack).expect("chargeback").1;
    assert!(charged.contains("$1,875.50") && charged.contains("payment.csv row 4"), "{charged}");
    // Purchases that add up raise nothing; the partial payment is short_paid.
    assert_eq!(exceptions_of(&env.store, "G-000002").await, vec![]);
    let first: Vec<ExceptionKind> = exceptions_of(&env.store, "G-000001").await.into_iter().map(|e| e.0).collect();
    assert_eq!(first, vec![ExceptionKind::ShortPaid]);
    let status = |load: &'static str| {
        let store = env.store.clone();
        async move { store.load_detail(load).await.expect("detail").expect("load").load.status }
    };
    assert_eq!(status("G-000002").await, LoadStatus::Completed);
    assert_eq!(status("G-000003").await, LoadStatus::Financed, "a chargeback moves nothing back");
    // The exceptions list names the new kinds with what resolves them.
    let list: Value = serde_json::from_str(&ok(&env, &["exceptions", "--json"])).expect("json");
    let kinds: Vec<&str> = list.as_array().expect("array").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"ledger_mismatch") && kinds.contains(&"charged_back"), "{list}");
    let resolve = list.as_array().expect("array").iter().find(|e| e["kind"] == "charged_back").expect("charged_back");
    assert!(resolve["resolve"].as_str().expect("resolve").contains("factord loads settle G-000003"), "{resolve}");
    // Settled by ops: both cleared, with the reason in the history; a second settle has nothing to do.
    let settled: Value = serde_json::from_str(&ok(
        &env,
        &["loads", "settle", "G-000003", "--reason", "factor corrected the reserve", "--json"],
    ))
    .expect("json");
    assert_eq!(settled["cleared"], serde_json::json!(["charged_back", "ledger_mismatch"]), "{settled}");
    assert_eq!(exceptions_of(&env.store, "G-000003").await, vec![]);
    let history = env.store.load_detail("G-000003").await.expect("detail").expect("load").history;
    assert!(history.iter().any(|h| h.cause.contains("settled: factor corrected the reserve")), "{history:?}");
    let (code, _, stderr) = factord(&env, &["loads", "settle", "G-000003", "--reason", "again"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("nothing to settle"), "{stderr}");
});

both_backends!(reconcile_totals_equal_the_source_rows_to_the_cent, |env| {
    drive(&env).await;
    let csv = ok(&env, &["reconcile", "--csv"]);
    let lines = rows(&csv);
    assert_eq!(lines.len(), 5, "four invoices and the totals: {csv}");
    let total = lines.last().expect("total");
    assert_eq!(total["invoice_number"], "TOTAL");
    let figure = |column: &str| cents(&total[column]);
    // Independently from the report texts: the invoices' amounts, then each column's source.
    let extra_fees = column_sum(PAYMENT_CSV, "Fee");
    assert_eq!(figure("amount"), 4 * 187_550);
    assert_eq!(figure("advance"), column_sum(PURCHASE_CSV, "Advance"));
    assert_eq!(figure("fee"), column_sum(PURCHASE_CSV, "Fee") + extra_fees);
    assert_eq!(figure("reserve_held"), column_sum(PURCHASE_CSV, "Reserve") - extra_fees);
    assert_eq!(figure("reserve_released"), column_sum(PAYMENT_CSV, "Reserve Released"));
    assert_eq!(figure("paid"), column_sum(PAYMENT_CSV, "Amount Paid"));
    assert_eq!(figure("chargeback"), column_sum(PAYMENT_CSV, "Chargeback"));
    assert_eq!(figure("open_balance"), figure("amount") - figure("paid"));
    // And by hand.
    let by_hand = [
        ("amount", "7502.00"),
        ("advance", "5038.00"),
        ("fee", "181.27"),
        ("reserve_held", "331.73"),
        ("reserve_released", "100.50"),
        ("paid", "2875.50"),
        ("chargeback", "1875.50"),
        ("open_balance", "4626.50"),
    ];
    for (column, value) in by_hand {
        assert_eq!(total[column], value, "{column}");
    }
    // Each column's total is the sum of its invoices.
    for (column, _) in by_hand {
        let sum: i64 = lines[..4].iter().map(|r| cents(&r[column])).sum();
        assert_eq!(sum, figure(column), "{column}");
    }
    let second = lines.iter().find(|r| r["invoice_number"] == "G-INV000002").expect("second");
    assert_eq!(
        (second["fee"].as_str(), second["reserve_held"].as_str(), second["open_balance"].as_str()),
        ("75.00", "100.50", "0.00")
    );
    assert_eq!(second["status"], "Completed");

    let json: Value = serde_json::from_str(&ok(&env, &["reconcile", "--json"])).expect("json");
    assert_eq!(json["totals"]["open_balance"], "4626.50");
    assert_eq!(json["totals"]["invoices"], 4);
    assert_eq!(json["invoices"].as_array().expect("invoices").len(), 4);
    let text = ok(&env, &["reconcile"]);
    assert!(text.contains("$7,502.00") && text.contains("$4,626.50"), "{text}");
    // Dated and per subsidiary.
    let json: Value =
        serde_json::from_str(&ok(&env, &["reconcile", "--from", "2026-09-01", "--to", "2026-10-31", "--json"]))
            .expect("json");
    assert_eq!(json["totals"]["invoices"], 2);
    assert_eq!(json["totals"]["amount"], "3751.00");
    let json: Value =
        serde_json::from_str(&ok(&env, &["reconcile", "--subsidiary", "acme-west", "--json"])).expect("json");
    assert_eq!(json["totals"]["invoices"], 0);
});

both_backends!(aging_buckets_open_invoices_by_days_past_the_invoice_date, |env| {
    drive(&env).await;
    let json: Value = serde_json::from_str(&ok(&env, &["aging", "--as-of", "2026-12-01", "--json"])).expect("json");
    // G1: 122 days, $875.50 open; G3: 37 days, $1,875.50; G4: 11 days, $1,875.50; G2 is paid.
    let totals = &json["totals"];
    assert_eq!(
        [&totals["0-30"], &totals["31-60"], &totals["61-90"], &totals["90+"], &totals["total"]],
        ["1875.50", "1875.50", "0.00", "875.50", "4626.50"]
    );
    let days: Vec<(String, i64, String)> = json["invoices"]
        .as_array()
        .expect("invoices")
        .iter()
        .map(|i| {
            (
                i["load_number"].as_str().expect("load").to_string(),
                i["days"].as_i64().expect("days"),
                i["bucket"].as_str().expect("bucket").to_string(),
            )
        })
        .collect();
    assert_eq!(
        days,
        vec![
            ("G-000001".to_string(), 122, "90+".to_string()),
            ("G-000003".to_string(), 37, "31-60".to_string()),
            ("G-000004".to_string(), 11, "0-30".to_string()),
        ]
    );
    let by_customer: Value =
        serde_json::from_str(&ok(&env, &["aging", "--as-of", "2026-12-01", "--by", "customer", "--json"]))
            .expect("json");
    let customers = by_customer["customers"].as_array().expect("customers");
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0]["customer_id"], "BRK-1");
    assert_eq!(customers[0]["invoices"], 3);
    assert_eq!(customers[0]["buckets"]["total"], "4626.50");
    let text = ok(&env, &["aging", "--as-of", "2026-12-01", "--by", "customer"]);
    assert!(text.contains("BRK-1") && text.contains("$4,626.50") && text.contains("$875.50"), "{text}");
});

both_backends!(the_journal_balances_and_matches_the_hand_computed_entries, |env| {
    drive(&env).await;
    let csv = ok(&env, &["export", "journal", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "csv"]);
    assert!(csv.starts_with("date,account,debit,credit,invoice,load,source\n"), "{csv}");
    let lines = rows(&csv);
    assert_eq!(lines.len(), 20, "{csv}");
    let total = |column: &str| lines.iter().map(|l| cents(&l[column])).sum::<i64>();
    assert_eq!(total("debit"), total("credit"));
    assert_eq!(total("debit"), 942_750, "{csv}");
    // Every event (one source) balances.
    let mut by_source: BTreeMap<&str, i64> = BTreeMap::new();
    for l in &lines {
        *by_source.entry(l["source"].as_str()).or_default() += cents(&l["debit"]) - cents(&l["credit"]);
    }
    assert!(by_source.values().all(|v| *v == 0), "{by_source:?}");
    let account =
        |name: &str, side: &str| lines.iter().filter(|l| l["account"] == name).map(|l| cents(&l[side])).sum::<i64>();
    assert_eq!(account("cash", "debit"), 168_800 + 170_000 + 165_000 + 10_050);
    assert_eq!(account("cash", "credit"), 187_550, "the chargeback");
    assert_eq!(account("factoring fees", "debit"), 5_627 + 5_000 + 5_000 + 2_500);
    assert_eq!(account("reserve receivable", "debit"), 13_123 + 12_550 + 10_000);
    assert_eq!(account("reserve receivable", "credit"), 2_500 + 10_050);
    assert_eq!(account("accounts receivable", "debit"), 187_550 + 187_550, "G-4 issued, G-3 sold back");
    assert_eq!(account("accounts receivable", "credit"), 187_550 + 187_550 + 180_000);
    assert_eq!(account("freight revenue", "credit"), 187_550);
    let purchase = lines.iter().find(|l| l["source"] == "purchase report purchase.csv row 2").expect("purchase");
    assert_eq!((purchase["date"].as_str(), purchase["invoice"].as_str()), ("2026-11-02", "G-INV000001"));
    assert_eq!(purchase["load"], "G-000001");
});

both_backends!(the_money_summary_and_its_metrics, |env| {
    drive(&env).await;
    let summary = env.store.money_summary(day("2026-11-15")).await.expect("summary");
    assert_eq!(
        summary.open_by_status,
        vec![(LoadStatus::Invoiced, Money::from_cents(187_550)), (LoadStatus::Financed, Money::from_cents(275_100))]
    );
    assert_eq!(summary.open_receivables, Money::from_cents(462_650));
    assert_eq!(summary.financed, Money::from_cents(168_800 + 165_000));
    assert_eq!(summary.reserve_held, Money::from_cents(13_123 + 12_550 + 10_000 - 2_500 - 10_050));
    assert_eq!(summary.fees_this_month, Money::from_cents(5_627 + 5_000 + 5_000 + 2_500));
    assert_eq!(summary.oldest_open_days, Some(106));
    assert_eq!(env.store.money_summary(day("2026-12-15")).await.expect("summary").fees_this_month, Money::ZERO);
    let counts = env.store.metric_counts().await.expect("counts");
    assert_eq!(counts.money.open_receivables, Money::from_cents(462_650));
    let page = factord::http::metrics::render(
        &env.settings,
        Some(&counts),
        &factord::http::Health::new().snapshot(),
        &factord::http::Metrics::new(),
    );
    for sample in [
        "factord_money_open_receivables_dollars{status=\"Invoiced\"} 1875.50",
        "factord_money_open_receivables_dollars{status=\"Financed\"} 2751.00",
        "factord_money_financed_dollars 3338.00",
        "factord_money_reserve_held_dollars 231.23",
    ] {
        assert!(page.contains(sample), "{sample} in\n{page}");
    }
    assert!(page.contains("factord_money_fees_this_month_dollars "), "{page}");
    assert!(page.contains("factord_money_oldest_open_invoice_days "), "{page}");
    // Ops' adjustments count too: G-3 (Financed) gets its missing reserve, a fee taken from it
    // and a payment; the open balance, reserve held and fees move by them.
    ok(
        &env,
        &[
            "loads",
            "adjust",
            "G-000003",
            "--reserve",
            "75.50",
            "--fee",
            "5",
            "--paid",
            "100",
            "--date",
            "2026-11-10",
            "--reason",
            "statement",
        ],
    );
    let adjusted = env.store.money_summary(day("2026-11-15")).await.expect("summary");
    assert_eq!(adjusted.open_by_status[1], (LoadStatus::Financed, Money::from_cents(275_100 - 10_000)));
    assert_eq!(adjusted.reserve_held, Money::from_cents(summary.reserve_held.cents() + 7_550));
    assert_eq!(adjusted.fees_this_month, Money::from_cents(summary.fees_this_month.cents() + 500));
    // G-1 paid in full by hand: the oldest invoice still open is now G-3 (2026-10-25).
    ok(&env, &["loads", "adjust", "G-000001", "--paid", "875.50", "--date", "2026-11-12", "--reason", "check 4410"]);
    let paid = env.store.money_summary(day("2026-11-15")).await.expect("summary");
    assert_eq!(paid.oldest_open_days, Some(21));
});

both_backends!(money_commands_refuse_bad_dates_with_exit_2, |env| {
    for args in [
        &["reconcile", "--from", "2026-13-01"][..],
        &["reconcile", "--to", "yesterday"][..],
        &["reconcile", "--from", "2026-12-01", "--to", "2026-11-01"][..],
        &["aging", "--as-of", "12/01/2026"][..],
        &["aging", "--by", "invoice"][..],
        &["export", "journal", "--from", "2026-11-01", "--to", "2026-11-31"][..],
        &["export", "journal", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "xlsx"][..],
        &["reconcile", "--subsidiary", "nowhere"][..],
    ] {
        let (code, stdout, stderr) = factord(&env, args);
        assert_eq!(code, 2, "factord {args:?}: {stdout}\n{stderr}");
        assert!(!stderr.trim().is_empty(), "factord {args:?} says why");
    }
    let (code, _, stderr) = factord(&env, &["reconcile", "--from", "2026-13-01"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("2026-13-01") && stderr.contains("YYYY-MM-DD"), "{stderr}");
    // An empty ledger is fine: totals of zero.
    let csv = ok(&env, &["reconcile", "--csv"]);
    assert_eq!(csv.lines().last(), Some("TOTAL,,,,,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00,,"));
});

fn json_of(env: &TestEnv, args: &[&str]) -> Value {
    serde_json::from_str(&ok(env, args)).expect("json")
}

fn reconcile_row(env: &TestEnv, invoice: &str) -> BTreeMap<String, String> {
    let csv = ok(env, &["reconcile", "--csv"]);
    rows(&csv).into_iter().find(|r| r["invoice_number"] == invoice).expect("invoice in reconcile")
}

both_backends!(adjustments_correct_the_figures_and_check_the_invariant_again, |env| {
    drive(&env).await;
    // G-3's purchase is $75.50 short of its amount: ops enter the reserve the report left out.
    let report = json_of(
        &env,
        &[
            "loads",
            "adjust",
            "G-000003",
            "--reserve",
            "75.50",
            "--date",
            "2026-11-28",
            "--reason",
            "factor statement 11/28",
            "--json",
        ],
    );
    assert_eq!(report["figures"], "holds", "{report}");
    assert_eq!(report["adjustments"], serde_json::json!([{"amount": "75.50", "field": "reserve"}]));
    let kinds: Vec<ExceptionKind> = exceptions_of(&env.store, "G-000003").await.into_iter().map(|e| e.0).collect();
    assert_eq!(kinds, vec![ExceptionKind::ChargedBack], "ledger_mismatch cleared, the chargeback stays");
    let row = reconcile_row(&env, "G-INV000003");
    assert_eq!(row["reserve_held"], "175.50");
    // A fee entered alone no longer adds up: ledger_mismatch again, with the figures and the source.
    let (code, stdout, stderr) =
        factord(&env, &["loads", "adjust", "G-000003", "--fee", "10", "--date", "2026-11-29", "--reason", "wire fee"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("fee +$10.00") && stdout.contains("do not add up"), "{stdout}");
    let mismatch = exceptions_of(&env.store, "G-000003").await;
    let detail = &mismatch.iter().find(|e| e.0 == ExceptionKind::LedgerMismatch).expect("mismatch").1;
    for figure in ["$1,875.50", "$1,650.00", "$60.00", "$175.50", "$1,885.50", "adjusted by ops (wire fee)"] {
        assert!(detail.contains(figure), "{figure} in {detail}");
    }
    // Taken back from the reserve: it adds up again.
    let report = json_of(
        &env,
        &[
            "loads",
            "adjust",
            "G-000003",
            "--reserve",
            "-10.00",
            "--date",
            "2026-11-29",
            "--reason",
            "wire fee from reserve",
            "--json",
        ],
    );
    assert_eq!(report["figures"], "holds", "{report}");
    let row = reconcile_row(&env, "G-INV000003");
    assert_eq!((row["fee"].as_str(), row["reserve_held"].as_str()), ("60.00", "165.50"));
    // Each adjustment is in the load's history and the ledger with its source and date.
    let history = env.store.load_detail("G-000003").await.expect("detail").expect("load").history;
    assert!(history.iter().any(|h| h.cause == "adjusted: fee +$10.00 dated 2026-11-29: wire fee"), "{history:?}");
    // A load with no purchase figures: the advance alone is not checked; with the fee and reserve it is.
    let report =
        json_of(&env, &["loads", "adjust", "G-000004", "--advance", "1500", "--reason", "advance wired", "--json"]);
    assert_eq!(report["figures"], "not_checked", "{report}");
    let report = json_of(
        &env,
        &["loads", "adjust", "G-000004", "--fee", "75.50", "--reserve", "300", "--reason", "schedule S-2", "--json"],
    );
    assert_eq!(report["figures"], "holds", "{report}");
    assert_eq!(exceptions_of(&env.store, "G-000004").await, vec![]);
    // The journal books each adjustment: fee and reserve against the receivable, every entry balanced.
    let csv = ok(&env, &["export", "journal", "--from", "2026-11-28", "--to", "2026-11-29", "--format", "csv"]);
    let lines = rows(&csv);
    let got: Vec<(&str, &str, &str)> =
        lines.iter().map(|l| (l["account"].as_str(), l["debit"].as_str(), l["credit"].as_str())).collect();
    assert_eq!(
        got,
        [
            ("reserve receivable", "75.50", "0.00"),
            ("accounts receivable", "0.00", "75.50"),
            // Same day: in the order of their sources ("…(wire fee from reserve)" first).
            ("accounts receivable", "10.00", "0.00"),
            ("reserve receivable", "0.00", "10.00"),
            ("factoring fees", "10.00", "0.00"),
            ("accounts receivable", "0.00", "10.00"),
        ],
        "{csv}"
    );
    assert!(lines.iter().all(|l| l["source"].starts_with("adjusted by ops (")), "{csv}");
});

both_backends!(adjust_refuses_what_it_cannot_record, |env| {
    drive(&env).await;
    for args in [
        &["loads", "adjust", "G-000001", "--reason", "nothing said"][..],
        &["loads", "adjust", "G-000001", "--fee", "0", "--reason", "zero"][..],
        &["loads", "adjust", "G-000001", "--fee", "12,3x", "--reason", "bad amount"][..],
        &["loads", "adjust", "G-000001", "--fee", "5", "--date", "2999-01-01", "--reason", "future"][..],
        &["loads", "adjust", "G-000001", "--fee", "5", "--reason", " "][..],
    ] {
        let (code, stdout, stderr) = factord(&env, args);
        assert_eq!(code, 2, "factord {args:?}: {stdout}\n{stderr}");
        assert!(!stderr.trim().is_empty(), "factord {args:?} says why");
    }
    let (code, _, stderr) = factord(&env, &["loads", "adjust", "NOPE", "--fee", "5", "--reason", "unknown"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("NOPE"), "{stderr}");
    let released = Seed {
        subsidiary: "acme-east",
        provider: PROVIDER,
        prefix: "R-",
        count: 1,
        amount_cents: 10_000,
        status: "Released",
    };
    seed(&env.store, &released).await;
    let (code, _, stderr) = factord(&env, &["loads", "adjust", "R-000001", "--fee", "5", "--reason", "too early"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Released") && stderr.contains("only an invoice"), "{stderr}");
    // Nothing was written by any of them.
    let csv = ok(&env, &["reconcile", "--csv"]);
    assert_eq!(rows(&csv).last().expect("total")["fee"], "181.27", "{csv}");
});

both_backends!(a_voided_invoice_is_booked_then_reversed_in_the_journal, |env| {
    drive(&env).await;
    // G-4 (invoiced 2026-11-20) is voided today; its invoice leaves reconcile.
    let voided = json_of(&env, &["loads", "void", "G-000004", "--reason", "wrong rate", "--json"]);
    assert_eq!(voided["invoice_number"], "G-INV000004", "{voided}");
    let today = chrono::Utc::now().date_naive().to_string();
    let csv = ok(&env, &["export", "journal", "--from", "2026-11-20", "--to", &today, "--format", "csv"]);
    let lines: Vec<BTreeMap<String, String>> =
        rows(&csv).into_iter().filter(|l| l["invoice"] == "G-INV000004").collect();
    let got: Vec<(&str, &str, &str, &str)> = lines
        .iter()
        .map(|l| (l["date"].as_str(), l["account"].as_str(), l["debit"].as_str(), l["source"].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("2026-11-20", "accounts receivable", "1875.50", "invoice G-INV000004 issued"),
            ("2026-11-20", "freight revenue", "0.00", "invoice G-INV000004 issued"),
            (today.as_str(), "freight revenue", "1875.50", "invoice G-INV000004 voided"),
            (today.as_str(), "accounts receivable", "0.00", "invoice G-INV000004 voided"),
        ],
        "{csv}"
    );
    let total = |column: &str| rows(&csv).iter().map(|l| cents(&l[column])).sum::<i64>();
    assert_eq!(total("debit"), total("credit"));
});

both_backends!(a_void_takes_the_invoices_adjustments_and_mismatch_with_it, |env| {
    drive(&env).await;
    // Ops entered figures for G-4 that do not add up: ledger_mismatch.
    let report =
        json_of(&env, &["loads", "adjust", "G-000004", "--advance", "1500", "--fee", "50", "--reason", "x", "--json"]);
    assert_eq!(report["figures"], "mismatch", "{report}");
    ok(&env, &["loads", "void", "G-000004", "--reason", "wrong rate"]);
    let kinds: Vec<ExceptionKind> = exceptions_of(&env.store, "G-000004").await.into_iter().map(|e| e.0).collect();
    assert!(!kinds.contains(&ExceptionKind::LedgerMismatch), "the mismatch went with the invoice: {kinds:?}");
    // Invoiced again under a new number: the old invoice's adjustments stay with the old invoice.
    reinvoice(&env.store, None).await;
    let row = reconcile_row(&env, "G-INV000099");
    assert_eq!((row["advance"].as_str(), row["fee"].as_str()), ("0.00", "0.00"), "{row:?}");
});

both_backends!(a_purchase_reported_after_ops_entered_its_figures_is_not_counted_twice_unseen, |env| {
    drive(&env).await;
    // G-4 has no purchase yet; ops enter the figures from the factor's statement.
    let report = json_of(
        &env,
        &[
            "loads",
            "adjust",
            "G-000004",
            "--advance",
            "1500",
            "--fee",
            "75.50",
            "--reserve",
            "300",
            "--reason",
            "statement",
            "--json",
        ],
    );
    assert_eq!(report["figures"], "holds", "{report}");
    // Then the factor's purchase report lists the same figures: the sums are twice the amount.
    let late = env.write(
        "late.csv",
        "Invoice Number,Invoice Amount,Advance,Fee,Reserve,Purchase Date,Schedule #\n\
         G-INV000004,1875.50,1500.00,75.50,300.00,11/28/2026,S-2\n",
    );
    let summary = ingest_file(&env.store, &env.settings, &late, PROVIDER, Some(ReportKind::Purchase))
        .await
        .expect("purchase ingest");
    assert_eq!(summary.applied, 1, "{summary:#?}");
    let mismatch = exceptions_of(&env.store, "G-000004").await;
    let detail = &mismatch.iter().find(|e| e.0 == ExceptionKind::LedgerMismatch).expect("ledger_mismatch").1;
    for figure in ["$3,000.00", "$151.00", "$600.00", "$3,751.00", "late.csv row 2 with ops' adjustments"] {
        assert!(detail.contains(figure), "{figure} in {detail}");
    }
    // Ops take their entries back: the sums add up and the exception clears.
    let report = json_of(
        &env,
        &[
            "loads",
            "adjust",
            "G-000004",
            "--advance",
            "-1500",
            "--fee",
            "-75.50",
            "--reserve",
            "-300",
            "--reason",
            "the report covers them",
            "--json",
        ],
    );
    assert_eq!(report["figures"], "holds", "{report}");
    assert_eq!(exceptions_of(&env.store, "G-000004").await, vec![]);
    let row = reconcile_row(&env, "G-INV000004");
    assert_eq!(
        (row["advance"].as_str(), row["fee"].as_str(), row["reserve_held"].as_str()),
        ("1500.00", "75.50", "300.00")
    );
});

both_backends!(a_report_row_naming_a_voided_invoice_is_rejected_saying_so, |env| {
    drive(&env).await;
    ok(&env, &["loads", "void", "G-000004", "--reason", "wrong rate"]);
    // Invoiced again under a new number and sent to the same factor (as a release and the next
    // passes would do).
    reinvoice(&env.store, Some("seed-capital_depot-G-")).await;
    // The factor's report still lists the void invoice, with the load number beside it.
    let late = env.write(
        "void.csv",
        "Invoice Number,Load Number,Invoice Amount,Advance,Purchase Date\n\
         G-INV000004,G-000004,1875.50,1500.00,11/28/2026\n",
    );
    let summary = ingest_file(&env.store, &env.settings, &late, PROVIDER, Some(ReportKind::Purchase))
        .await
        .expect("purchase ingest");
    assert_eq!((summary.applied, summary.rejected), (0, 1), "{summary:#?}");
    let detail = env.store.load_detail("G-000004").await.expect("detail").expect("load");
    assert_eq!(
        detail.load.status,
        LoadStatus::Invoiced,
        "the new invoice is not purchased by a row about the void one"
    );
    let text = &summary.result_csv;
    assert!(text.contains("invoice G-INV000004 of load G-000004 was voided"), "{text}");
});
