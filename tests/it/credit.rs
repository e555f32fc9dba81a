//! Broker credit checks against an HTTP server on loopback playing OTR's `broker-check` (the fake
//! of [`crate::fakes::api`]): approved, CALL OFFICE (unknown), NOT APPROVED (declined), a broker
//! unknown by MC and DOT (404), one unknown by MC (204) but known by DOT, 503, and a hang past
//! the timeout. Through the real jobs on both backends: the refresh job, the invoice job, the
//! submission pre-flight; then the commands through the binary, the daemon's refresh schedule,
//! and Saint Johns' placeholder mapping.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use factord::config::{ApiSettings, Environment, Settings};
use factord::credit::{self, CheckedCustomer, RefreshReport};
use factord::domain::{CreditResult, Customer, ExceptionKind, LoadStatus};
use factord::intake::import_load_file;
use factord::invoicing;
use factord::providers::api::ApiTransport;
use factord::providers::find_provider;
use factord::store::{CreditCheckRecord, LoadDetail, NewCreditCheck};
use factord::submit;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::fakes::api::{self as fake_api, BrokerAnswer, Otr, Shared, json_response, lock, otr_server, serve};
use crate::harness::{Backend, TestEnv, wait_for};
use crate::pdfs;

const DEADLINE: Duration = Duration::from_secs(30);

/// The brokers of these tests: customer id, name, MC, DOT.
const BROKERS: [(&str, &str, &str, &str); 7] = [
    ("BRK-1", "Approved Logistics", "100001", ""),
    ("BRK-2", "Call Office Freight", "100002", ""),
    ("BRK-3", "Declined Brokerage", "100003", ""),
    ("BRK-4", "Nobody Knows LLC", "100004", "200004"),
    ("BRK-5", "Maintenance Freight", "100005", ""),
    ("BRK-6", "Hanging Lines", "100006", ""),
    ("BRK-7", "Known By Dot Inc", "100007", "200007"),
];

/// What the fake OTR says about each broker of [`BROKERS`]: BRK-4 is unknown by both numbers
/// (404), BRK-7 unknown by MC (204) and approved by DOT.
fn brokers() -> HashMap<String, BrokerAnswer> {
    [
        ("mc:100001", BrokerAnswer::message("APPROVED")),
        ("mc:100002", BrokerAnswer::message("CALL OFFICE")),
        ("mc:100003", BrokerAnswer::message("NOT APPROVED")),
        ("mc:100005", BrokerAnswer::Unavailable),
        ("mc:100006", BrokerAnswer::Hang),
        ("mc:100007", BrokerAnswer::NoContent),
        ("dot:200007", BrokerAnswer::message("APPROVED")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

async fn otr() -> (String, Shared<Otr>) {
    otr_server(Otr { brokers: brokers(), ..Otr::default() }).await
}

fn set_broker(otr: &Shared<Otr>, key: &str, answer: BrokerAnswer) {
    lock(otr).brokers.insert(key.to_string(), answer);
}

/// Writes a config where acme-east factors with OTR at `base_url` (1 s API timeout) under
/// `policy` (extra `[subsidiary.factoring]` keys), checks last 24 h, and the refresh job does
/// not pace itself (`request_interval`, `retry_cap` 0: the tests call it directly). Returns the
/// file and its settings.
fn otr_config(env: &TestEnv, base_url: &str, policy: &str, credit: &str) -> (PathBuf, Settings) {
    let password = env.write("secrets/otr-password", &format!("{}\n", fake_api::PASSWORD));
    let key = env.write("secrets/otr-subscription-key", &format!("{}\n", fake_api::SUBSCRIPTION_KEY));
    let shipped = "[subsidiary.factoring]\nprovider = \"capital_depot\"\nschedule = \"0 0 16 * * Mon-Fri\"\n";
    let text = std::fs::read_to_string(&env.config_path).expect("config");
    assert!(text.contains(shipped), "the harness config changed:\n{text}");
    let factoring = format!(
        "[subsidiary.factoring]\nprovider = \"otr\"\nschedule = \"0 0 16 * * Mon-Fri\"\n{policy}\n\n\
         [subsidiary.factoring.api]\nbase_url = \"{base_url}\"\nusername = \"{user}\"\n\
         password_file = \"{password}\"\nsubscription_key_file = \"{key}\"\ntimeout = \"1s\"\n",
        user = fake_api::USERNAME,
        password = password.display(),
        key = key.display(),
    );
    let credit = if credit.is_empty() {
        "max_age = \"24h\"\nrequest_interval = \"0s\"\nretry_cap = \"0s\"\n".to_string()
    } else {
        credit.to_string()
    };
    let text = format!("[credit]\n{credit}\n{}", text.replace(shipped, &factoring));
    let path = env.write("config-credit/factord.toml", &text);
    let settings = Settings::load(&path, &Environment::new()).expect("credit config is valid");
    (path, settings)
}

/// Imports one acme-east load per `(load number, broker index)`, with its POD and rate
/// confirmation when `documents` (then it can be invoiced), else without (it stays Released).
async fn import(env: &TestEnv, settings: &Settings, loads: &[(&str, usize)], documents: bool) {
    let dir = env.path("documents");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("rc.pdf"), pdfs::rate_confirmation("F", 1)).expect("rc");
    std::fs::write(dir.join("pod.pdf"), pdfs::pod_with_jpeg("F", &pdfs::scanned_jpeg(120, 80, 3))).expect("pod");
    let mut csv = String::from(
        "load_number,subsidiary,customer_id,customer_name,customer_mc,customer_dot,amount,pod,rate_confirmation,\
         pickup_city,pickup_state,delivery_city,delivery_state\n",
    );
    for (load, broker) in loads {
        let (id, name, mc, dot) = BROKERS[*broker];
        let docs = if documents { "pod.pdf,rc.pdf" } else { "," };
        csv.push_str(&format!("{load},acme-east,{id},{name},{mc},{dot},1200.00,{docs},Dallas,TX,Tulsa,OK\n"));
    }
    let file = env.write(&format!("loads-{}.csv", loads[0].0), &csv);
    let report = import_load_file(&env.store, settings, &file, None).await.expect("import");
    assert_eq!(report.counts.imported, loads.len(), "{report:#?}");
}

/// One invoice pass, which must queue `count` loads.
async fn invoice(env: &TestEnv, settings: &Settings, count: usize) {
    let report = invoicing::run_once(&env.store, settings, None, &CancellationToken::new()).await.expect("invoice");
    assert_eq!(report.invoiced.len(), count, "{report:#?}");
    assert!(report.invoiced.iter().all(|i| i.status == LoadStatus::Queued), "{report:#?}");
}

/// Imports the loads with documents and invoices them: all Queued.
async fn queue(env: &TestEnv, settings: &Settings, loads: &[(&str, usize)]) {
    import(env, settings, loads, true).await;
    invoice(env, settings, loads.len()).await;
}

/// Records a check of `customer` with OTR made `hours` ago, as an earlier run would have.
async fn record_check(env: &TestEnv, customer: &str, result: CreditResult, text: &str, hours: i64) {
    let check = NewCreditCheck {
        customer_id: customer,
        provider: "otr",
        subsidiary: "acme-east",
        result,
        factor_text: text,
        checked_at: Utc::now() - chrono::Duration::hours(hours),
        cause: "earlier",
    };
    env.store.record_credit_check(&check, &[]).await.expect("record check");
}

async fn latest(env: &TestEnv, customer: &str) -> Option<CreditCheckRecord> {
    env.store.latest_credit_check(customer, "otr").await.expect("latest check")
}

async fn detail(env: &TestEnv, load: &str) -> LoadDetail {
    env.store.load_detail(load).await.expect("detail").expect("load exists")
}

async fn refresh(env: &TestEnv, settings: &Settings, force: bool) -> RefreshReport {
    credit::refresh(&env.store, settings, force, &CancellationToken::new()).await.expect("refresh")
}

fn entry<'r>(report: &'r RefreshReport, customer: &str) -> &'r CheckedCustomer {
    report
        .checked
        .iter()
        .find(|c| c.customer_id == customer)
        .unwrap_or_else(|| panic!("{customer} checked: {report:#?}"))
}

fn ids(report: &RefreshReport) -> Vec<&str> {
    report.checked.iter().map(|c| c.customer_id.as_str()).collect()
}

async fn submit(env: &TestEnv, settings: &Settings) -> submit::SubmitReport {
    submit::run_once(&env.store, settings, None, false, "test").await.expect("submit")
}

fn credit_flag(detail: &LoadDetail) -> Option<&str> {
    detail.exceptions.iter().find(|e| e.kind == ExceptionKind::CreditDeclined).map(|e| e.detail.as_str())
}

// ---- What OTR answers, stored ------------------------------------------------------------------

both_backends!(every_answer_of_otrs_broker_check_is_stored_with_its_text, |env| {
    let (url, otr) = otr().await;
    let (_, settings) = otr_config(&env, &url, "", "");
    let loads: Vec<(String, usize)> = (0..BROKERS.len()).map(|i| (format!("R-{}", i + 1), i)).collect();
    let loads: Vec<(&str, usize)> = loads.iter().map(|(l, i)| (l.as_str(), *i)).collect();
    import(&env, &settings, &loads, false).await;

    let report = refresh(&env, &settings, false).await;

    // One customer at a time, in order: the 503 and the hang (BRK-5, BRK-6) do not stop BRK-7.
    assert_eq!(ids(&report), ["BRK-1", "BRK-2", "BRK-3", "BRK-4", "BRK-5", "BRK-6", "BRK-7"]);
    assert_eq!(report.failed(), 2, "{report:#?}");
    let expect = [
        ("BRK-1", CreditResult::Approved, "APPROVED"),
        ("BRK-2", CreditResult::Unknown, "CALL OFFICE"),
        ("BRK-3", CreditResult::Declined, "NOT APPROVED"),
        ("BRK-4", CreditResult::Unknown, "broker unknown to OTR (MC 100004, DOT 200004)"),
        ("BRK-7", CreditResult::Approved, "APPROVED"),
    ];
    for (customer, result, text) in expect {
        let stored = latest(&env, customer).await.unwrap_or_else(|| panic!("{customer} has a check"));
        assert_eq!((stored.result, stored.factor_text.as_str()), (result, text), "{customer}");
        assert_eq!((stored.provider.as_str(), stored.subsidiary.as_str()), ("otr", "acme-east"));
        assert_eq!(stored.cause, "refresh");
        assert!((Utc::now() - stored.checked_at).num_seconds() < 60, "checked just now: {stored:?}");
        assert_eq!(entry(&report, customer).result, Some(result));
    }
    let unavailable = entry(&report, "BRK-5").error.as_deref().expect("503 is a failure");
    assert!(unavailable.contains("503"), "{unavailable}");
    let hung = entry(&report, "BRK-6").error.as_deref().expect("a hang is a failure");
    assert!(hung.contains("timed out"), "{hung}");
    assert_eq!(latest(&env, "BRK-5").await, None, "no answer, nothing stored");
    assert_eq!(latest(&env, "BRK-6").await, None);

    let otr = lock(&otr);
    let queries = &otr.broker_checks;
    for query in ["mc:100004", "dot:200004", "mc:100007", "dot:200007"] {
        assert!(queries.contains(&query.to_string()), "MC first, then DOT: {queries:?}");
    }
    assert_eq!(queries.iter().filter(|q| *q == "mc:100001").count(), 1, "{queries:?}");
    assert_eq!(queries.iter().filter(|q| q.starts_with("dot:")).count(), 2, "DOT only when MC is unknown");
    assert_eq!(otr.without_subscription_key, 0);
});

// ---- The refresh job ---------------------------------------------------------------------------

both_backends!(stale_checks_are_refreshed_and_fresh_ones_are_not, |env| {
    let (url, otr) = otr().await;
    let (_, settings) = otr_config(&env, &url, "", "");
    import(&env, &settings, &[("R-1", 0), ("R-2", 1), ("R-3", 2)], false).await;
    record_check(&env, "BRK-1", CreditResult::Approved, "APPROVED", 1).await;
    record_check(&env, "BRK-2", CreditResult::Approved, "APPROVED", 25).await;

    let report = refresh(&env, &settings, false).await;

    assert_eq!(ids(&report), ["BRK-2", "BRK-3"], "BRK-1's check is an hour old");
    assert_eq!((report.fresh, report.failed()), (1, 0));
    assert_eq!(lock(&otr).broker_checks, ["mc:100002", "mc:100003"]);
    // History is kept: BRK-2's old approval and today's CALL OFFICE.
    let history = env.store.credit_history("BRK-2", "otr", 10).await.expect("history");
    let texts: Vec<&str> = history.iter().map(|c| c.factor_text.as_str()).collect();
    assert_eq!(texts, ["CALL OFFICE", "APPROVED"], "newest first");
    assert_eq!(latest(&env, "BRK-1").await.map(|c| c.cause), Some("earlier".to_string()));

    // Nothing is stale any more; --force asks again anyway.
    assert!(refresh(&env, &settings, false).await.checked.is_empty());
    let forced = refresh(&env, &settings, true).await;
    assert_eq!(ids(&forced), ["BRK-1", "BRK-2", "BRK-3"]);
    assert_eq!(latest(&env, "BRK-1").await.map(|c| c.cause), Some("refresh".to_string()));
});

// ---- At invoice time ---------------------------------------------------------------------------

both_backends!(invoicing_checks_credit_first_and_goes_on_when_the_check_fails, |env| {
    let (url, otr) = otr().await;
    let (_, settings) = otr_config(&env, &url, "", "");
    import(&env, &settings, &[("S-01", 0), ("S-02", 4), ("S-03", 2)], true).await;
    record_check(&env, "BRK-3", CreditResult::Declined, "NOT APPROVED", 2).await;

    // BRK-1 was never checked, BRK-5's check answers 503, BRK-3's is two hours old.
    invoice(&env, &settings, 3).await;

    let checked = latest(&env, "BRK-1").await.expect("checked before queueing");
    assert_eq!((checked.result, checked.cause.as_str()), (CreditResult::Approved, "invoice S-01"));
    assert_eq!(latest(&env, "BRK-5").await, None, "the 503 stopped nothing; the refresh job retries");
    assert_eq!(latest(&env, "BRK-3").await.map(|c| c.cause), Some("earlier".to_string()));
    let queries = lock(&otr).broker_checks.clone();
    assert!(!queries.contains(&"mc:100003".to_string()), "a fresh check is not repeated: {queries:?}");

    // The refresh job then retries the one that failed, once OTR answers again.
    set_broker(&otr, "mc:100005", BrokerAnswer::message("APPROVED"));
    let report = refresh(&env, &settings, false).await;
    assert_eq!(ids(&report), ["BRK-5"]);
    assert_eq!(latest(&env, "BRK-5").await.map(|c| c.result), Some(CreditResult::Approved));
});

// ---- At submission -----------------------------------------------------------------------------

both_backends!(no_submission_goes_out_on_a_check_older_than_max_age, |env| {
    let (url, otr) = otr().await;
    let (_, settings) = otr_config(&env, &url, "", "");
    queue(&env, &settings, &[("S-01", 0)]).await;
    // The last check is now a day and an hour old, and OTR's broker check is down.
    record_check(&env, "BRK-1", CreditResult::Approved, "APPROVED", 25).await;
    set_broker(&otr, "mc:100001", BrokerAnswer::Unavailable);

    let report = submit(&env, &settings).await;

    assert!(report.batches.is_empty(), "{report:#?}");
    assert_eq!(lock(&otr).invoice_posts, 0, "nothing went to OTR on a stale check");
    let waiting = detail(&env, "S-01").await;
    assert_eq!(waiting.load.status, LoadStatus::Queued);
    let reason = waiting.load.waiting_reason.as_deref().expect("waiting reason");
    assert!(reason.contains("credit check needed before submission") && reason.contains("503"), "{reason}");
    assert_eq!(report.waiting.len(), 1);

    // OTR answers again: the check is refreshed first, then the batch goes.
    set_broker(&otr, "mc:100001", BrokerAnswer::message("APPROVED"));
    let before = Utc::now();
    let report = submit(&env, &settings).await;

    assert_eq!(report.batches.len(), 1, "{report:#?}");
    let sent = detail(&env, "S-01").await;
    assert_eq!(sent.load.status, LoadStatus::Invoiced);
    let check = latest(&env, "BRK-1").await.expect("check");
    assert_eq!(check.cause, "submit");
    assert!(check.checked_at >= before - chrono::Duration::seconds(1), "refreshed by this submission: {check:?}");
    assert_eq!(lock(&otr).invoice_posts, 1);
});

both_backends!(declined_blocks_by_default_and_a_later_approval_unblocks, |env| {
    let (url, otr) = otr().await;
    let (_, settings) = otr_config(&env, &url, "", "");
    queue(&env, &settings, &[("S-01", 0), ("S-02", 1), ("S-03", 2)]).await;

    let report = submit(&env, &settings).await;

    assert_eq!(report.batches.len(), 1, "{report:#?}");
    assert_eq!(detail(&env, "S-01").await.load.status, LoadStatus::Invoiced);
    assert_eq!(detail(&env, "S-02").await.load.status, LoadStatus::Invoiced, "unknown does not block by default");
    let blocked = detail(&env, "S-03").await;
    assert_eq!(blocked.load.status, LoadStatus::Queued);
    let flag = credit_flag(&blocked).expect("credit_declined raised");
    let today = Utc::now().format("%Y-%m-%d").to_string();
    assert!(flag.contains("NOT APPROVED") && flag.contains(&today), "the factor's text and the date: {flag}");
    assert!(blocked.load.waiting_reason.as_deref().is_some_and(|r| r.contains("declined")));
    let posted: Vec<String> = lock(&otr).invoices.iter().map(|i| i.number.clone()).collect();
    assert_eq!(posted.len(), 2, "{posted:?}");

    // The broker is approved later: the check that says so clears the flag.
    set_broker(&otr, "mc:100003", BrokerAnswer::message("APPROVED"));
    let report = refresh(&env, &settings, true).await;
    assert_eq!(ids(&report), ["BRK-3"], "only customers with Released or Queued loads");
    let cleared = detail(&env, "S-03").await;
    assert_eq!(credit_flag(&cleared), None);
    assert_eq!(cleared.load.waiting_reason, None);

    submit(&env, &settings).await;
    assert_eq!(detail(&env, "S-03").await.load.status, LoadStatus::Invoiced);
    assert_eq!(lock(&otr).invoices.len(), 3);
});

both_backends!(each_policy_blocks_only_what_it_is_configured_to, |env| {
    let (url, otr) = otr().await;
    let policy = "block_on_declined_credit = false\nblock_on_unknown_credit = true";
    let (_, settings) = otr_config(&env, &url, policy, "");
    queue(&env, &settings, &[("S-01", 1), ("S-02", 2)]).await;

    submit(&env, &settings).await;

    let unknown = detail(&env, "S-01").await;
    assert_eq!(unknown.load.status, LoadStatus::Queued, "CALL OFFICE blocks under block_on_unknown_credit");
    assert!(credit_flag(&unknown).is_some_and(|d| d.contains("CALL OFFICE")), "{:?}", unknown.exceptions);
    assert_eq!(detail(&env, "S-02").await.load.status, LoadStatus::Invoiced, "declined lets it go when told to");
    assert_eq!(lock(&otr).invoices.len(), 1);

    // A later answer that no longer blocks clears the flag at the next submission.
    set_broker(&otr, "mc:100002", BrokerAnswer::message("NOT APPROVED"));
    refresh(&env, &settings, true).await;
    submit(&env, &settings).await;
    let now_declined = detail(&env, "S-01").await;
    assert_eq!(now_declined.load.status, LoadStatus::Invoiced);
    assert_eq!(credit_flag(&now_declined), None);
});

// ---- Commands ----------------------------------------------------------------------------------

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn factord(config: &std::path::Path, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_factord"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("FACTORD_CONFIG")
        .output()
        .await
        .expect("run factord");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn factord_json(config: &std::path::Path, args: &[&str]) -> Value {
    let run = factord(config, args).await;
    assert_eq!(run.code, 0, "factord {args:?}:\n{}\n{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{}", run.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_commands_print_each_check_and_show_the_state() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let (url, _otr) = otr().await;
    let (config, settings) = otr_config(&env, &url, "", "");
    import(&env, &settings, &[("S-01", 0), ("S-02", 2)], false).await;

    let run = factord(&config, &["credit", "refresh"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("BRK-1 Approved Logistics: approved by otr (APPROVED)"), "{}", run.stdout);
    assert!(run.stdout.contains("BRK-3 Declined Brokerage: declined by otr (NOT APPROVED)"), "{}", run.stdout);
    assert!(run.stdout.contains("2 checked, 0 failed, 0 still fresh"), "{}", run.stdout);
    let again = factord(&config, &["credit", "refresh"]).await;
    assert!(again.stdout.contains("0 checked, 0 failed, 2 still fresh"), "{}", again.stdout);
    let forced = factord_json(&config, &["credit", "refresh", "--force", "--json"]).await;
    assert_eq!(forced["checked"].as_array().map(Vec::len), Some(2), "{forced}");

    let check = factord(&config, &["credit", "check", "BRK-3"]).await;
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains("BRK-3 Declined Brokerage: declined by otr (NOT APPROVED), checked "),
        "{}",
        check.stdout
    );
    let check = factord_json(&config, &["credit", "check", "BRK-1", "--subsidiary", "acme-east", "--json"]).await;
    assert_eq!((check[0]["result"].as_str(), check[0]["text"].as_str()), (Some("approved"), Some("APPROVED")));
    assert_eq!(factord(&config, &["credit", "check", "NOBODY"]).await.code, 1);
    assert_eq!(factord(&config, &["credit", "check", "BRK-1", "--subsidiary", "acme-west"]).await.code, 2);

    // loads show: the contract's keys are all there, plus `credit`.
    let shown = factord_json(&config, &["loads", "show", "S-02", "--json"]).await;
    for key in ["load_number", "subsidiary", "customer_id", "status", "amount_cents", "exceptions", "history"] {
        assert!(shown.get(key).is_some(), "{key} missing: {shown}");
    }
    assert_eq!(shown["credit"]["result"], json!("declined"), "{shown}");
    assert_eq!(shown["credit"]["text"], json!("NOT APPROVED"));
    assert_eq!(shown["credit"]["provider"], json!("otr"));
    assert_eq!(shown["credit"]["stale"], json!(false));
    let text = factord(&config, &["loads", "show", "S-02"]).await.stdout;
    assert!(text.contains("credit            declined by OTR Solutions (NOT APPROVED), checked "), "{text}");

    // status: counts and the customers that are not plainly approved.
    let status = factord_json(&config, &["status", "--json"]).await;
    assert!(status["subsidiaries"].is_array() && status["last_batches"].is_array(), "{status}");
    assert_eq!(status["credit"]["counts"]["approved"], json!(1), "{status}");
    assert_eq!(status["credit"]["counts"]["declined"], json!(1));
    let customers = status["credit"]["customers"].as_array().expect("customers");
    assert_eq!(customers.len(), 2);
    let text = factord(&config, &["status"]).await.stdout;
    assert!(text.contains("credit checks: 1 approved, 1 declined, 0 unknown, 0 not checked"), "{text}");
    assert!(text.contains("BRK-3 Declined Brokerage [otr]: declined (NOT APPROVED)"), "{text}");

    // A customer whose check fails: printed, and the command fails.
    import(&env, &settings, &[("S-03", 4)], false).await;
    let failing = factord(&config, &["credit", "refresh"]).await;
    assert_eq!(failing.code, 1, "{}", failing.stdout);
    assert!(failing.stdout.contains("BRK-5 Maintenance Freight: check with otr FAILED: "), "{}", failing.stdout);
}

// ---- The daemon --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_refreshes_credit_on_its_schedule() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("env");
    let (url, _otr) = otr().await;
    let credit =
        "max_age = \"24h\"\nrefresh_schedule = \"* * * * * *\"\nrequest_interval = \"0s\"\nretry_cap = \"0s\"\n";
    let (config, settings) = otr_config(&env, &url, "", credit);
    // No documents: the invoice job leaves the load Released without asking for credit.
    import(&env, &settings, &[("R-1", 2)], false).await;
    record_check(&env, "BRK-3", CreditResult::Approved, "APPROVED", 30).await;

    let shutdown = CancellationToken::new();
    let settings = Arc::new(Settings::load(&config, &Environment::new()).expect("settings"));
    let daemon = tokio::spawn(factord::daemon::run_until_stopped(settings, env.store.clone(), shutdown.clone()));

    let env_ref = &env;
    let check = wait_for(DEADLINE, "the scheduled credit refresh", move || async move {
        latest(env_ref, "BRK-3").await.filter(|c| c.cause == "refresh")
    })
    .await;
    assert_eq!((check.result, check.factor_text.as_str()), (CreditResult::Declined, "NOT APPROVED"));
    shutdown.cancel();
    daemon.await.expect("daemon task").expect("daemon stops cleanly");
}

// ---- Saint Johns -------------------------------------------------------------------------------

#[tokio::test]
async fn saint_johns_credit_checks_follow_the_placeholder_mapping() {
    async fn decision(headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
        if headers.get("x-client-id").and_then(|v| v.to_str().ok()) != Some("SJ-CLIENT-42")
            || headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(fake_api::API_KEY)
        {
            return json_response(StatusCode::UNAUTHORIZED, json!({"message": "who are you"}));
        }
        let number = query.get("mcNumber").or_else(|| query.get("dotNumber")).cloned().unwrap_or_default();
        match number.as_str() {
            "1" => json_response(StatusCode::OK, json!({"decision": "approved"})),
            "2" => json_response(StatusCode::OK, json!({"decision": "declined", "message": "over limit"})),
            "3" => json_response(StatusCode::OK, json!({"decision": "review"})),
            _ => json_response(StatusCode::NOT_FOUND, json!({"message": "no such debtor"})),
        }
    }
    let url = serve(Router::new().route("/debtors/credit", get(decision))).await;
    let settings = ApiSettings {
        base_url: url,
        username: None,
        password: None,
        subscription_key: None,
        api_key: Some(SecretString::from(fake_api::API_KEY)),
        client_id: Some("SJ-CLIENT-42".to_string()),
        timeout: Duration::from_secs(5),
    };
    let transport = ApiTransport::new(find_provider("saint_johns").expect("provider"), &settings).expect("transport");
    let customer = |mc: Option<&str>, dot: Option<&str>| Customer {
        id: "C".to_string(),
        name: "Debtor".to_string(),
        mc: mc.map(str::to_string),
        dot: dot.map(str::to_string),
    };
    let ask = |c: Customer| {
        let transport = &transport;
        async move { transport.check_credit(&c).await.map(|a| (a.result, a.text)) }
    };
    assert_eq!(ask(customer(Some("1"), None)).await.expect("1"), (CreditResult::Approved, "approved".to_string()));
    assert_eq!(
        ask(customer(Some("2"), None)).await.expect("2"),
        (CreditResult::Declined, "declined: over limit".to_string())
    );
    assert_eq!(ask(customer(None, Some("3"))).await.expect("3"), (CreditResult::Unknown, "review".to_string()));
    let unknown = ask(customer(Some("9"), None)).await.expect("9");
    assert_eq!(unknown.0, CreditResult::Unknown, "{unknown:?}");
    assert!(ask(customer(None, None)).await.is_err(), "no number to check by");
    // Providers without checks say so.
    let apex = ApiTransport::new(find_provider("apex").expect("apex"), &settings).expect("apex transport");
    assert!(apex.check_credit(&customer(Some("1"), None)).await.is_err());
}
