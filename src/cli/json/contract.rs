//! The JSON contract (docs/design.md §6, docs/cli.md "JSON output (stable)"), checked key by key: each
//! `--json` output, serialised from an example with every optional part present, must have
//! exactly the documented keys, nested ones included (`exceptions[].kind`: the key `kind` of the
//! objects in the array `exceptions`; `[]` alone: the top level is an array). A key added to an
//! output is documented in the same change; a key removed breaks the contract.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::IngestJson;
use crate::credit::{CheckJson, CheckedCustomer, CustomerCheck, FailedCheck, RefreshReport};
use crate::domain::{CreditResult, ExceptionKind, LoadFields, LoadStatus, Money};
use crate::intake::{FileImport, ReportRow};
use crate::loads::{LoadCredit, LoadShow, list_json};
use crate::reports::apply::{Outcome, RowOutcome};
use crate::reports::{IngestSummary, ReportKind};
use crate::rework_docs::{DocsReport, ReplacedDocument, RetryReport, StoredDocument};
use crate::status::{
    BatchLine, CreditCounts, CreditCustomer, CreditStatus, LoadFileCounts, LoadFileLine, PipelineCounts,
    RefusedFileLine, ReportFileLine, SchedulerLine, Status, SubsidiaryStatus, WaitingLoadLine,
};
use crate::store::{
    CreditCheckRecord, DocumentKind, ExceptionRecord, HistoryRecord, ImportCounts, LoadDetail, LoadDocument,
    LoadRecord, LoadReportRow, LoadSummary,
};

/// Every key path of `value`: `a`, `a.b` for a nested object, `a[].b` for the objects of an
/// array (the union over its elements).
fn key_paths(value: &Value) -> BTreeSet<String> {
    fn walk(value: &Value, path: &str, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    out.insert(child_path.clone());
                    walk(child, &child_path, out);
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, &format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(value, "", &mut out);
    out
}

/// Fails naming each documented key `output` lacks and each key it has that is not documented.
fn assert_documented(command: &str, output: &impl Serialize, documented: &[&str]) {
    let value = serde_json::to_value(output).expect("serialisable");
    let actual = key_paths(&value);
    let documented: BTreeSet<String> = documented.iter().map(|k| k.to_string()).collect();
    let missing: Vec<_> = documented.difference(&actual).collect();
    let extra: Vec<_> = actual.difference(&documented).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "`{command}`: documented key(s) missing from the output: {missing:?}; key(s) in the output \
         but not documented: {extra:?}"
    );
}

/// The documented keys of one load, under `prefix` (`""` or `[].`), without `loads show`'s own.
fn load_keys(prefix: &str) -> Vec<String> {
    [
        "load_number",
        "subsidiary",
        "customer_id",
        "customer_name",
        "customer_mc",
        "customer_dot",
        "status",
        "amount_cents",
        "amount",
        "invoice_number",
        "exceptions",
        "exceptions[].kind",
        "exceptions[].detail",
        "exceptions[].raised_at",
        "waiting_reason",
        "batch_id",
        "factor",
        "packet_built_for",
        "factor_reference",
        "reference_number",
        "submission_reference",
        "delivered_at",
        "po_number",
        "truck",
        "documents",
        "documents.pod",
        "documents.rate_confirmation",
        "lane",
        "lane.pickup_city",
        "lane.pickup_state",
        "lane.delivery_city",
        "lane.delivery_state",
        "updated_at",
    ]
    .iter()
    .map(|k| format!("{prefix}{k}"))
    .collect()
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-30T14:05:09+00:00").expect("time").with_timezone(&Utc)
}

fn some(text: &str) -> Option<String> {
    Some(text.to_string())
}

fn load() -> LoadRecord {
    LoadRecord {
        id: 1,
        load_number: "L-1002".into(),
        customer_name: "Northstar Brokerage, Inc.".into(),
        customer_mc: some("654321"),
        customer_dot: None,
        status: LoadStatus::Invoiced,
        invoice_number: some("AE-2"),
        invoice_date: some("2026-11-30"),
        packet_path: some("data/packets/acme-east/AE-2.pdf"),
        submission_reference: some("INV-77"),
        packet_noa: some("otr:abc"),
        factor: some("otr"),
        batch_id: some("acme-east-1"),
        waiting_reason: None,
        created_at: at(),
        updated_at: at(),
        fields: LoadFields {
            subsidiary: "acme-east".into(),
            customer_id: "BRK-2".into(),
            amount: Money::from_cents(187_550),
            delivered_at: some("2026-11-21"),
            pod: some("L-1002-pod.pdf"),
            rate_confirmation: some("L-1002-rc.pdf"),
            po_number: some("NS-55012"),
            factor_reference: None,
            truck: None,
            pickup_city: some("Houston"),
            pickup_state: some("TX"),
            delivery_city: some("Atlanta"),
            delivery_state: some("GA"),
            bill_to_name: None,
            bill_to_address: None,
            pickup_date: None,
            shipper_name: None,
            consignee_name: None,
            bol_number: None,
            terms_days: Some(30),
        },
    }
}

fn exception() -> ExceptionRecord {
    ExceptionRecord { kind: ExceptionKind::Held, detail: "held by the factor".into(), raised_at: at() }
}

fn check() -> CreditCheckRecord {
    CreditCheckRecord {
        id: 1,
        customer_id: "BRK-2".into(),
        provider: "otr".into(),
        subsidiary: "acme-east".into(),
        result: CreditResult::Approved,
        factor_text: "APPROVED".into(),
        checked_at: at(),
        cause: "invoice L-1002".into(),
    }
}

#[test]
fn loads_show() {
    let show = LoadShow {
        detail: LoadDetail {
            load: load(),
            exceptions: vec![exception()],
            history: vec![HistoryRecord { from: None, to: LoadStatus::Released, at: at(), cause: "import".into() }],
        },
        report_rows: vec![LoadReportRow {
            kind: "purchase".into(),
            file_name: "purchase-1130.csv".into(),
            row: 4,
            processed_at: at(),
            detail: "advance 1212.50".into(),
        }],
        credit: LoadCredit {
            provider: crate::providers::find_provider("otr"),
            latest: Some(check()),
            max_age: std::time::Duration::from_secs(86_400),
        },
        documents: vec![LoadDocument {
            kind: DocumentKind::Bol,
            path: "rework/L-1001-bol.pdf".into(),
            added_at: at(),
            reason: "factor asked for the BOL".into(),
        }],
        voids: vec![crate::store::VoidRecord {
            invoice_number: "AE-1".into(),
            status: LoadStatus::Invoiced,
            factor: some("capital_depot"),
            batch_id: some("acme-east-1"),
            reason: "wrong amount".into(),
            voided_at: at(),
        }],
    };
    let mut documented = load_keys("");
    documented.extend(
        [
            "documents.bol",
            "documents.lumper",
            "documents.other",
            "history",
            "history[].from",
            "history[].to",
            "history[].at",
            "history[].cause",
            "credit",
            "credit.customer_id",
            "credit.provider",
            "credit.subsidiary",
            "credit.result",
            "credit.text",
            "credit.checked_at",
            "credit.cause",
            "credit.stale",
            "report_rows",
            "report_rows[].kind",
            "report_rows[].file",
            "report_rows[].row",
            "report_rows[].processed_at",
            "report_rows[].detail",
            "void_invoices",
            "void_invoices[].invoice_number",
            "void_invoices[].factor",
            "void_invoices[].reason",
            "void_invoices[].voided_at",
        ]
        .map(String::from),
    );
    assert_documented("loads show --json", &show.json(), &documented.iter().map(String::as_str).collect::<Vec<_>>());

    // Before the first check: `result`, `text` and `checked_at` are null, the rest as documented.
    let unchecked = LoadShow { credit: LoadCredit { latest: None, ..show.credit.clone() }, ..show.clone() };
    let value = serde_json::to_value(unchecked.json()).expect("json");
    assert_eq!(
        value["credit"],
        serde_json::json!({"provider": "otr", "result": null, "text": null, "checked_at": null, "stale": true})
    );
    // No checks apply: `credit` is null.
    let none = LoadShow { credit: LoadCredit { provider: None, ..show.credit.clone() }, ..show };
    assert_eq!(serde_json::to_value(none.json()).expect("json")["credit"], Value::Null);
}

#[test]
fn loads_list() {
    let loads = vec![LoadSummary { load: load(), exceptions: vec![exception()] }];
    let documented = load_keys("[].");
    assert_documented(
        "loads list --json",
        &list_json(&loads),
        &documented.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

#[test]
#[expect(clippy::too_many_lines, reason = "an example status with every optional part, then its documented keys")]
fn status() {
    let status = Status {
        subsidiaries: vec![SubsidiaryStatus {
            configured: true,
            counts: PipelineCounts { released: 3, ..PipelineCounts::default() },
            delivered: 0,
            exceptions: 1,
            id: "acme-east".into(),
            name: some("ACME Freight East LLC"),
            waiting: 1,
            waiting_loads: vec![WaitingLoadLine { load_number: "L-1002".into(), reason: "missing POD".into() }],
        }],
        last_batches: vec![BatchLine {
            accepted: 5,
            created_at: at(),
            error: None,
            id: "acme-east-1".into(),
            invoices: 5,
            provider: "capital_depot".into(),
            reference: some("outbox/acme-east/capital_depot/x"),
            rejected: 0,
            status: "sent".into(),
            subsidiary: "acme-east".into(),
            total_cents: 978_050,
            transient: 0,
        }],
        last_reports: vec![ReportFileLine {
            applied: 4,
            file: "purchase-1130.csv".into(),
            kind: some("purchase"),
            processed_at: at(),
            provider: "capital_depot".into(),
            refused: None,
            rejected: 1,
            rows: 5,
            skipped: 0,
        }],
        last_load_files: vec![LoadFileLine {
            file: "loads.csv".into(),
            processed_at: at(),
            source: "inbox",
            summary: Some(LoadFileCounts { imported: 3, rejected: 0, unchanged: 0, updated: 0 }),
        }],
        scheduler: Some(SchedulerLine { holder: "host:4242:x".into(), live: true }),
        refused_load_files: vec![RefusedFileLine {
            file: "tuesday.csv".into(),
            reason: "separated by `;`".into(),
            refused_at: at(),
        }],
        credit: CreditStatus {
            counts: CreditCounts { approved: 1, ..CreditCounts::default() },
            customers: vec![CreditCustomer {
                checked_at: Some(at()),
                customer_id: "BRK-2".into(),
                customer_name: "Northstar".into(),
                provider: "otr",
                result: Some(CreditResult::Approved),
                stale: false,
                text: some("APPROVED"),
            }],
            max_age_seconds: 86_400,
            refresh_schedule: "0 0 * * * *".into(),
        },
    };
    assert_documented(
        "status --json",
        &status,
        &[
            "subsidiaries",
            "subsidiaries[].id",
            "subsidiaries[].name",
            "subsidiaries[].configured",
            "subsidiaries[].counts",
            "subsidiaries[].counts.Released",
            "subsidiaries[].counts.Queued",
            "subsidiaries[].counts.Invoiced",
            "subsidiaries[].counts.Financed",
            "subsidiaries[].counts.Completed",
            "subsidiaries[].delivered",
            "subsidiaries[].exceptions",
            "subsidiaries[].waiting",
            "subsidiaries[].waiting_loads",
            "subsidiaries[].waiting_loads[].load_number",
            "subsidiaries[].waiting_loads[].reason",
            "last_batches",
            "last_batches[].id",
            "last_batches[].subsidiary",
            "last_batches[].provider",
            "last_batches[].status",
            "last_batches[].invoices",
            "last_batches[].total_cents",
            "last_batches[].reference",
            "last_batches[].accepted",
            "last_batches[].rejected",
            "last_batches[].transient",
            "last_batches[].error",
            "last_batches[].created_at",
            "last_reports",
            "last_reports[].file",
            "last_reports[].provider",
            "last_reports[].kind",
            "last_reports[].processed_at",
            "last_reports[].rows",
            "last_reports[].applied",
            "last_reports[].skipped",
            "last_reports[].rejected",
            "last_reports[].refused",
            "last_load_files",
            "last_load_files[].file",
            "last_load_files[].source",
            "last_load_files[].processed_at",
            "last_load_files[].summary",
            "last_load_files[].summary.imported",
            "last_load_files[].summary.updated",
            "last_load_files[].summary.unchanged",
            "last_load_files[].summary.rejected",
            "scheduler",
            "scheduler.holder",
            "scheduler.live",
            "refused_load_files",
            "refused_load_files[].file",
            "refused_load_files[].refused_at",
            "refused_load_files[].reason",
            "credit",
            "credit.max_age_seconds",
            "credit.refresh_schedule",
            "credit.counts",
            "credit.counts.approved",
            "credit.counts.declined",
            "credit.counts.unknown",
            "credit.counts.unchecked",
            "credit.counts.stale",
            "credit.customers",
            "credit.customers[].customer_id",
            "credit.customers[].customer_name",
            "credit.customers[].provider",
            "credit.customers[].result",
            "credit.customers[].text",
            "credit.customers[].checked_at",
            "credit.customers[].stale",
        ],
    );
}

#[test]
fn ingest() {
    let summary = IngestSummary {
        file: "purchase-1130.csv".into(),
        provider: "capital_depot".into(),
        kind: Some(ReportKind::Purchase),
        rows: 2,
        applied: 1,
        skipped: 0,
        rejected: 1,
        refused: None,
        duplicate_of: None,
        outcomes: vec![
            RowOutcome {
                row: 2,
                invoice_number: "AE-1".into(),
                load_number: "L-1001".into(),
                outcome: Outcome::Applied,
                reason: "".into(),
            },
            RowOutcome {
                row: 3,
                invoice_number: "AE-9".into(),
                load_number: "".into(),
                outcome: Outcome::Rejected,
                reason: "unknown invoice".into(),
            },
        ],
        result_csv: String::new(),
    };
    let json = IngestJson::of(&summary);
    assert_eq!(json.not_applied.len(), 1, "only the rows not applied are listed");
    assert_documented(
        "ingest --json",
        &json,
        &[
            "file",
            "provider",
            "kind",
            "rows",
            "applied",
            "skipped",
            "rejected",
            "refused",
            "duplicate_of",
            "not_applied",
            "not_applied[].row",
            "not_applied[].invoice_number",
            "not_applied[].load_number",
            "not_applied[].outcome",
            "not_applied[].reason",
        ],
    );
}

#[test]
fn credit_refresh() {
    let report = RefreshReport {
        checked: vec![CheckedCustomer {
            customer_id: "BRK-2".into(),
            customer_name: "Northstar".into(),
            provider: "otr".into(),
            subsidiary: "acme-east".into(),
            result: Some(CreditResult::Declined),
            text: some("NOT APPROVED"),
            checked_at: Some(at()),
            error: None,
        }],
        fresh: 2,
    };
    assert_documented(
        "credit refresh --json",
        &report,
        &[
            "checked",
            "checked[].customer_id",
            "checked[].customer_name",
            "checked[].provider",
            "checked[].subsidiary",
            "checked[].result",
            "checked[].text",
            "checked[].checked_at",
            "checked[].error",
            "fresh",
        ],
    );
}

#[test]
fn credit_check() {
    let checks = vec![
        CustomerCheck::Checked(CheckJson::of(&check(), std::time::Duration::from_secs(86_400), at())),
        CustomerCheck::Failed(FailedCheck {
            customer_id: "BRK-2".into(),
            error: "timed out".into(),
            provider: "saint_johns",
            subsidiary: "acme-west".into(),
        }),
    ];
    // As `credit` in `loads show`, or `error` for a check that failed.
    assert_documented(
        "credit check --json",
        &checks,
        &[
            "[].customer_id",
            "[].provider",
            "[].subsidiary",
            "[].result",
            "[].text",
            "[].checked_at",
            "[].cause",
            "[].stale",
            "[].error",
        ],
    );
    let failed = serde_json::to_value(&checks[1]).expect("json");
    assert_eq!(key_paths(&failed), ["customer_id", "error", "provider", "subsidiary"].map(String::from).into());
}

/// A submission with every optional part.
fn submit_report() -> crate::submit::SubmitReport {
    crate::submit::SubmitReport {
        batches: vec![crate::submit::BatchReport {
            id: "acme-east-1".into(),
            subsidiary: "acme-east".into(),
            provider: "capital_depot".into(),
            invoices: 1,
            total: "1875.50".into(),
            status: "sent".into(),
            reference: some("x"),
            accepted: 1,
            rejected: 0,
            transient: 0,
            error: None,
            next: None,
            reconciled: false,
        }],
        waiting: vec![crate::submit::WaitingLoad {
            subsidiary: "acme-east".into(),
            load_number: "L-1003".into(),
            reason: "credit declined".into(),
        }],
        would_send: vec![crate::submit::PlannedBatch {
            subsidiary: "acme-east".into(),
            provider: "capital_depot".into(),
            invoices: vec!["AE-1".into()],
            total: "1875.50".into(),
        }],
    }
}

/// The documented keys of `submit --json`.
const SUBMIT_KEYS: &[&str] = &[
    "batches",
    "batches[].id",
    "batches[].subsidiary",
    "batches[].provider",
    "batches[].invoices",
    "batches[].total",
    "batches[].status",
    "batches[].reference",
    "batches[].accepted",
    "batches[].rejected",
    "batches[].transient",
    "batches[].error",
    "batches[].next",
    "batches[].reconciled",
    "waiting",
    "waiting[].subsidiary",
    "waiting[].load_number",
    "waiting[].reason",
    "would_send",
    "would_send[].subsidiary",
    "would_send[].provider",
    "would_send[].invoices",
    "would_send[].total",
];

#[test]
fn submit() {
    assert_documented("submit --json", &submit_report(), SUBMIT_KEYS);
}

#[test]
fn submit_loads() {
    let picked = crate::rework::PickedSubmit {
        report: submit_report(),
        refused: vec![crate::submit::WaitingLoad {
            subsidiary: "acme-east".into(),
            load_number: "L-1004".into(),
            reason: "Invoiced, not Queued".into(),
        }],
    };
    let mut documented = SUBMIT_KEYS.to_vec();
    documented.extend(["refused", "refused[].subsidiary", "refused[].load_number", "refused[].reason"]);
    assert_documented("submit --loads --json", &picked, &documented);
}

#[test]
fn loads_hold_release_void() {
    let hold = crate::rework::HoldReport {
        already_held: false,
        detail: "held by ops: customer disputes the rate".into(),
        load_number: "L-1002".into(),
        raised_at: at(),
        status: LoadStatus::Queued,
        waiting_reason: "held: customer disputes the rate; ...".into(),
    };
    assert_documented(
        "loads hold --json",
        &hold,
        &["already_held", "detail", "load_number", "raised_at", "status", "waiting_reason"],
    );
    let release = crate::rework::ReleaseReport {
        detail: "held by ops: customer disputes the rate".into(),
        load_number: "L-1002".into(),
        reason: "rate confirmed".into(),
        status: LoadStatus::Queued,
    };
    assert_documented("loads release --json", &release, &["detail", "load_number", "reason", "status"]);
    let settle = crate::rework::SettleReport {
        cleared: vec![ExceptionKind::LedgerMismatch, ExceptionKind::ChargedBack],
        load_number: "L-1002".into(),
        reason: "factor corrected the reserve".into(),
        status: LoadStatus::Financed,
    };
    assert_documented("loads settle --json", &settle, &["cleared", "load_number", "reason", "status"]);
    let adjust = crate::rework::AdjustReport {
        adjustments: vec![crate::rework::AdjustmentLine {
            amount: Money::from_cents(7_550),
            field: crate::domain::ledger::Field::Reserve,
        }],
        date: chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap_or_default(),
        figures: "holds",
        detail: some("cleared ledger_mismatch: the figures add up"),
        invoice_number: "AE-2".into(),
        load_number: "L-1002".into(),
        reason: "factor statement".into(),
        status: LoadStatus::Financed,
    };
    assert_documented(
        "loads adjust --json",
        &adjust,
        &[
            "adjustments",
            "adjustments[].amount",
            "adjustments[].field",
            "date",
            "detail",
            "figures",
            "invoice_number",
            "load_number",
            "reason",
            "status",
        ],
    );
    let void = crate::rework::VoidReport {
        factor: some("capital_depot"),
        from: LoadStatus::Invoiced,
        invoice_number: "AE-2".into(),
        load_number: "L-1002".into(),
        next: "held until Capital Depot is told".into(),
        notice: some("tell Capital Depot invoice AE-2 is void"),
        reason: "wrong amount".into(),
        status: LoadStatus::Released,
    };
    assert_documented(
        "loads void --json",
        &void,
        &["factor", "from", "invoice_number", "load_number", "next", "notice", "reason", "status"],
    );
}

#[test]
fn exceptions() {
    let lines = vec![crate::rework::ExceptionLine {
        detail: "held by ops: customer disputes the rate".into(),
        kind: ExceptionKind::Held,
        load_number: "L-1002".into(),
        raised_at: at(),
        resolve: "`factord loads release L-1002 --reason ...`".into(),
        status: LoadStatus::Queued,
        subsidiary: "acme-east".into(),
    }];
    assert_documented(
        "exceptions --json",
        &lines,
        &["[].load_number", "[].subsidiary", "[].status", "[].kind", "[].detail", "[].raised_at", "[].resolve"],
    );
}

#[test]
fn providers_test() {
    let results = vec![crate::providers::probe::ProbeResult {
        subsidiary: "acme-east".into(),
        provider: "capital_depot".into(),
        transport: "outbox".into(),
        active: true,
        ok: true,
        steps: vec!["outbox/acme-east/capital_depot writable".into()],
        error: None,
    }];
    assert_documented(
        "providers test --json",
        &results,
        &["[].subsidiary", "[].provider", "[].transport", "[].active", "[].ok", "[].steps", "[].error"],
    );
}

#[test]
fn loads_import() {
    let reports = vec![FileImport {
        file: "loads.csv".into(),
        counts: ImportCounts { imported: 1, updated: 0, unchanged: 0, rejected: 1 },
        ignored_columns: vec!["notes".into()],
        rows: vec![ReportRow {
            row: 3,
            load_number: some("L-1003"),
            outcome: "rejected",
            detail: "amount is not a number".into(),
        }],
        duplicate_of: None,
    }];
    assert_documented(
        "loads import --json",
        &reports,
        &[
            "[].file",
            "[].imported",
            "[].updated",
            "[].unchanged",
            "[].rejected",
            "[].ignored_columns",
            "[].rows",
            "[].rows[].row",
            "[].rows[].load_number",
            "[].rows[].outcome",
            "[].rows[].detail",
        ],
    );
}

#[test]
fn sync() {
    let report = crate::sync::SyncReport {
        subsidiaries: vec![crate::sync::SubsidiarySync {
            subsidiary: "acme-east".into(),
            provider: "otr".into(),
            supported: true,
            note: None,
            asked: 1,
            applied: 1,
            answers: vec![crate::sync::SyncAnswer {
                load_number: "S-01".into(),
                invoice_number: some("AE-1"),
                factor_status: some("Advance Paid"),
                outcome: "applied",
                detail: "Invoiced → Financed".into(),
            }],
            ..Default::default()
        }],
    };
    assert_documented(
        "sync --json",
        &report,
        &[
            "subsidiaries",
            "subsidiaries[].subsidiary",
            "subsidiaries[].provider",
            "subsidiaries[].supported",
            "subsidiaries[].note",
            "subsidiaries[].asked",
            "subsidiaries[].applied",
            "subsidiaries[].unchanged",
            "subsidiaries[].unrecognised",
            "subsidiaries[].failed",
            "subsidiaries[].answers",
            "subsidiaries[].answers[].load_number",
            "subsidiaries[].answers[].invoice_number",
            "subsidiaries[].answers[].factor_status",
            "subsidiaries[].answers[].outcome",
            "subsidiaries[].answers[].detail",
        ],
    );
}

#[test]
fn invoice() {
    use crate::invoicing::job::{Invoiced, Waiting};
    use crate::invoicing::rebuild::{RebuildReport, Rebuilt};
    let waiting = || Waiting { load_number: "L-1002".into(), reason: "missing POD".into() };
    let report = crate::invoicing::PassReport {
        invoiced: vec![Invoiced {
            load_number: "L-1001".into(),
            invoice_number: "AE-1".into(),
            status: LoadStatus::Queued,
            path: "data/packets/acme-east/AE-1.pdf".into(),
            pages: 3,
        }],
        waiting: vec![waiting()],
        failed: vec![waiting()],
        rebuilt: RebuildReport {
            rebuilt: vec![Rebuilt {
                load_number: "L-1001".into(),
                invoice_number: "AE-1".into(),
                from: some("triumph"),
                to: "otr".into(),
            }],
            failed: vec![waiting()],
        },
    };
    assert_documented(
        "invoice --json",
        &report,
        &[
            "invoiced",
            "invoiced[].load_number",
            "invoiced[].invoice_number",
            "invoiced[].status",
            "invoiced[].path",
            "invoiced[].pages",
            "waiting",
            "waiting[].load_number",
            "waiting[].reason",
            "failed",
            "failed[].load_number",
            "failed[].reason",
            "rebuilt",
            "rebuilt.rebuilt",
            "rebuilt.rebuilt[].load_number",
            "rebuilt.rebuilt[].invoice_number",
            "rebuilt.rebuilt[].from",
            "rebuilt.rebuilt[].to",
            "rebuilt.failed",
            "rebuilt.failed[].load_number",
            "rebuilt.failed[].reason",
        ],
    );
}

#[test]
fn the_check_names_what_is_missing_and_what_is_extra() {
    #[derive(Serialize)]
    struct Output {
        kept: u8,
        added: u8,
    }
    let failure =
        std::panic::catch_unwind(|| assert_documented("example", &Output { kept: 1, added: 2 }, &["kept", "gone"]))
            .expect_err("keys differ");
    let message = failure.downcast_ref::<String>().expect("a message");
    assert!(message.contains(r#"missing from the output: ["gone"]"#), "{message}");
    assert!(message.contains(r#"not documented: ["added"]"#), "{message}");
}

#[test]
fn loads_docs() {
    let report = DocsReport {
        documents: vec![StoredDocument {
            kind: DocumentKind::Pod,
            path: "rework/L-1001-pod-20261207T101500.000000Z-1a2b3c4d.pdf".into(),
            source: "/tmp/new-pod.pdf".into(),
        }],
        invoice_number: some("AE-7"),
        load_number: "L-1001".into(),
        next: "the packet was rebuilt with the new documents; the next batch takes it".into(),
        packet: some("data/packets/acme-east/AE-7.pdf"),
        packet_rebuilt: true,
        replaced: vec![ReplacedDocument { kind: DocumentKind::Pod, path: "L-1001-pod.pdf".into() }],
        status: "Queued".into(),
    };
    assert_documented(
        "loads docs --json",
        &report,
        &[
            "documents",
            "documents[].kind",
            "documents[].path",
            "documents[].source",
            "invoice_number",
            "load_number",
            "next",
            "packet",
            "packet_rebuilt",
            "replaced",
            "replaced[].kind",
            "replaced[].path",
            "status",
        ],
    );
}

#[test]
fn loads_retry() {
    let report = RetryReport {
        factor: some("otr"),
        factor_reference: some("1001"),
        from: "Invoiced".into(),
        invoice_number: some("AE-7"),
        load_number: "L-1001".into(),
        next: "the next batch to OTR Solutions takes it again under invoice AE-7".into(),
        packet: some("data/packets/acme-east/AE-7.pdf"),
        packet_rebuilt: true,
        rejection: "status sync otr: Duplicate".into(),
        status: "Queued".into(),
    };
    assert_documented(
        "loads retry --json",
        &report,
        &[
            "factor",
            "factor_reference",
            "from",
            "invoice_number",
            "load_number",
            "next",
            "packet",
            "packet_rebuilt",
            "rejection",
            "status",
        ],
    );
}

#[test]
fn reconcile() {
    use crate::domain::ledger::{FigureTotals, InvoiceFigures, Reconciliation};
    let cents = Money::from_cents;
    let report = Reconciliation {
        invoices: vec![InvoiceFigures {
            advance: cents(168_800),
            amount: cents(187_550),
            chargeback: cents(0),
            customer_id: "BRK-1".into(),
            fee: cents(5_627),
            invoice_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 2),
            invoice_number: "AE-1002".into(),
            load_number: "L-1002".into(),
            open_balance: cents(87_550),
            paid: cents(100_000),
            reserve_held: cents(13_123),
            reserve_released: cents(0),
            status: LoadStatus::Financed,
            subsidiary: "acme-east".into(),
            unreported: vec!["purchase figures not reported".into()],
        }],
        totals: FigureTotals { invoices: 1, ..FigureTotals::default() },
    };
    assert_documented(
        "reconcile --json",
        &report,
        &[
            "invoices",
            "invoices[].invoice_number",
            "invoices[].load_number",
            "invoices[].subsidiary",
            "invoices[].customer_id",
            "invoices[].invoice_date",
            "invoices[].status",
            "invoices[].amount",
            "invoices[].advance",
            "invoices[].fee",
            "invoices[].reserve_held",
            "invoices[].reserve_released",
            "invoices[].paid",
            "invoices[].chargeback",
            "invoices[].open_balance",
            "invoices[].unreported",
            "totals",
            "totals.invoices",
            "totals.amount",
            "totals.advance",
            "totals.fee",
            "totals.reserve_held",
            "totals.reserve_released",
            "totals.paid",
            "totals.chargeback",
            "totals.open_balance",
        ],
    );
    let value = serde_json::to_value(&report).expect("serialisable");
    assert_eq!(value["invoices"][0]["amount"], "1875.50", "amounts are plain decimal strings");
}

#[test]
fn aging() {
    use crate::domain::ledger::{Aging, AgingLine, BucketTotals, CustomerAging};
    let report = Aging {
        as_of: chrono::NaiveDate::from_ymd_opt(2026, 12, 1),
        customers: vec![CustomerAging {
            buckets: BucketTotals::default(),
            customer_id: "BRK-1".into(),
            customer_name: "Blue Brokerage".into(),
            invoices: 1,
        }],
        invoices: vec![AgingLine {
            bucket: "31-60",
            customer_id: "BRK-1".into(),
            customer_name: "Blue Brokerage".into(),
            days: 37,
            invoice_date: chrono::NaiveDate::from_ymd_opt(2026, 10, 25),
            invoice_number: "AE-1002".into(),
            load_number: "L-1002".into(),
            open_balance: Money::from_cents(187_550),
            status: LoadStatus::Financed,
            subsidiary: "acme-east".into(),
        }],
        totals: BucketTotals::default(),
    };
    let buckets = ["0-30", "31-60", "61-90", "90+", "total"];
    let mut keys: Vec<String> = [
        "as_of",
        "invoices",
        "invoices[].invoice_number",
        "invoices[].load_number",
        "invoices[].subsidiary",
        "invoices[].customer_id",
        "invoices[].customer_name",
        "invoices[].invoice_date",
        "invoices[].days",
        "invoices[].bucket",
        "invoices[].open_balance",
        "invoices[].status",
        "customers",
        "customers[].customer_id",
        "customers[].customer_name",
        "customers[].invoices",
        "customers[].buckets",
        "totals",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    keys.extend(buckets.iter().map(|b| format!("totals.{b}")));
    keys.extend(buckets.iter().map(|b| format!("customers[].buckets.{b}")));
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_documented("aging --json", &report, &keys);
}
