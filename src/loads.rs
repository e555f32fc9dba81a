//! Loads as the commands show them: one load in full (`loads show`), gathered from the store,
//! and the JSON object of a load (docs/design.md §6) that `loads show` and `loads list` print. The
//! command line formats these; nothing here prints.
//!
//! The JSON structs list their fields in alphabetical order: the order of the keys in the
//! output since the first release (the objects were sorted maps then), kept so the output does
//! not change.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{InvoicingMethod, Settings, packet_mark_provider};
use crate::credit::CheckJson;
use crate::domain::{CreditResult, ExceptionKind, LoadStatus, rfc3339};
use crate::providers::Provider;
use crate::store::{
    CreditCheckRecord, DocumentKind, ExceptionRecord, HistoryRecord, LoadDetail, LoadDocument, LoadRecord,
    LoadReportRow, LoadSummary, Store, StoreError, VoidRecord,
};

/// Everything `loads show` tells of one load.
#[derive(Clone, Debug)]
pub struct LoadShow {
    pub detail: LoadDetail,
    /// The purchase and payment report rows recorded for the load.
    pub report_rows: Vec<LoadReportRow>,
    /// The latest credit check of the load's customer with its provider.
    pub credit: LoadCredit,
    /// The load's current BOL, lumper receipt and other documents (`loads docs`).
    pub documents: Vec<LoadDocument>,
    /// The invoice numbers voided on this load (docs/design.md §2 "Rework"), oldest first.
    pub voids: Vec<VoidRecord>,
}

/// One load with its exceptions, history, report rows and credit state; `None` for a load
/// number never imported.
pub async fn show_load(store: &Store, settings: &Settings, load_number: &str) -> Result<Option<LoadShow>, StoreError> {
    let Some(detail) = store.load_detail(load_number).await? else {
        return Ok(None);
    };
    let report_rows = store.load_report_rows(detail.load.id).await?;
    let credit = LoadCredit::gather(store, settings, &detail.load).await?;
    let documents = store.load_documents(detail.load.id).await?;
    let voids = store.void_invoices_of(detail.load.id).await?;
    Ok(Some(LoadShow { detail, report_rows, credit, documents, voids }))
}

impl LoadShow {
    /// `loads show --json`: the load's object with `history`, `report_rows` and `credit`.
    pub fn json(&self) -> LoadJson {
        LoadJson {
            history: Some(self.detail.history.iter().map(HistoryJson::of).collect()),
            report_rows: Some(self.report_rows.iter().map(ReportRowJson::of).collect()),
            credit: Some(self.credit.json(Utc::now())),
            void_invoices: Some(self.voids.iter().map(VoidJson::of).collect()),
            ..LoadJson::of(&self.detail.load, &self.detail.exceptions).with_documents(&self.documents)
        }
    }
}

/// `loads list --json`: the loads' objects, without `history`.
pub fn list_json(loads: &[LoadSummary]) -> Vec<LoadJson> {
    loads.iter().map(|l| LoadJson::of(&l.load, &l.exceptions)).collect()
}

/// The JSON object of one load (docs/design.md §6). `credit`, `history` and `report_rows` are there
/// for `loads show` only. Keys beyond the contract may be added; the contract's keys keep their
/// meaning.
#[derive(Clone, Debug, Serialize)]
pub struct LoadJson {
    /// The amount as a plain decimal (`1875.50`).
    pub amount: String,
    pub amount_cents: i64,
    /// The batch that delivered the invoice.
    pub batch_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit: Option<LoadCreditJson>,
    pub customer_dot: Option<String>,
    pub customer_id: String,
    pub customer_mc: Option<String>,
    pub customer_name: String,
    pub delivered_at: Option<String>,
    pub documents: DocumentsJson,
    pub exceptions: Vec<ExceptionJson>,
    /// The provider that holds the invoice (the one its batch went to); `null` before that.
    pub factor: Option<String>,
    /// The factor's reference once a batch delivered the invoice, else the provider reference
    /// number from the load export.
    pub factor_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryJson>>,
    pub invoice_number: Option<String>,
    pub lane: LaneJson,
    pub load_number: String,
    /// The provider whose NOA the load's packet carries (factored packets only).
    pub packet_built_for: Option<String>,
    pub po_number: Option<String>,
    /// The provider reference number from the load export.
    pub reference_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_rows: Option<Vec<ReportRowJson>>,
    pub status: LoadStatus,
    /// The factor's reference once a batch delivered the invoice.
    pub submission_reference: Option<String>,
    pub subsidiary: String,
    pub truck: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// `loads show` only: the invoice numbers voided on this load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub void_invoices: Option<Vec<VoidJson>>,
    pub waiting_reason: Option<String>,
}

/// An invoice number voided on a load (`loads show`): kept as void, never issued again.
#[derive(Clone, Debug, Serialize)]
pub struct VoidJson {
    /// The provider id of the factor that held the invoice; `null` when none did.
    pub factor: Option<String>,
    pub invoice_number: String,
    pub reason: String,
    #[serde(serialize_with = "rfc3339")]
    pub voided_at: DateTime<Utc>,
}

impl VoidJson {
    fn of(v: &VoidRecord) -> VoidJson {
        VoidJson {
            factor: v.factor.clone(),
            invoice_number: v.invoice_number.clone(),
            reason: v.reason.clone(),
            voided_at: v.voided_at,
        }
    }
}

impl LoadJson {
    /// A load and its open exceptions, without the parts only `loads show` has.
    pub fn of(load: &LoadRecord, exceptions: &[ExceptionRecord]) -> LoadJson {
        let f = &load.fields;
        LoadJson {
            amount: f.amount.to_string(),
            amount_cents: f.amount.cents(),
            batch_id: load.batch_id.clone(),
            credit: None,
            customer_dot: load.customer_dot.clone(),
            customer_id: f.customer_id.clone(),
            customer_mc: load.customer_mc.clone(),
            customer_name: load.customer_name.clone(),
            delivered_at: f.delivered_at.clone(),
            documents: DocumentsJson {
                bol: None,
                lumper: None,
                other: None,
                pod: f.pod.clone(),
                rate_confirmation: f.rate_confirmation.clone(),
            },
            exceptions: exceptions.iter().map(ExceptionJson::of).collect(),
            factor: load.factor.clone(),
            factor_reference: load.submission_reference.clone().or_else(|| f.factor_reference.clone()),
            history: None,
            invoice_number: load.invoice_number.clone(),
            lane: LaneJson {
                delivery_city: f.delivery_city.clone(),
                delivery_state: f.delivery_state.clone(),
                pickup_city: f.pickup_city.clone(),
                pickup_state: f.pickup_state.clone(),
            },
            load_number: load.load_number.clone(),
            packet_built_for: load.packet_noa.as_deref().map(|mark| packet_mark_provider(mark).to_string()),
            po_number: f.po_number.clone(),
            reference_number: f.factor_reference.clone(),
            report_rows: None,
            status: load.status,
            submission_reference: load.submission_reference.clone(),
            subsidiary: f.subsidiary.clone(),
            truck: f.truck.clone(),
            updated_at: load.updated_at,
            void_invoices: None,
            waiting_reason: load.waiting_reason.clone(),
        }
    }
}

impl LoadJson {
    /// With the load's BOL, lumper receipt and other documents (`loads show` only).
    fn with_documents(mut self, documents: &[LoadDocument]) -> LoadJson {
        let path = |kind: DocumentKind| documents.iter().rev().find(|d| d.kind == kind).map(|d| d.path.clone());
        self.documents.bol = Some(path(DocumentKind::Bol));
        self.documents.lumper = Some(path(DocumentKind::Lumper));
        self.documents.other =
            Some(documents.iter().filter(|d| d.kind == DocumentKind::Other).map(|d| d.path.clone()).collect());
        self
    }
}

/// The load's documents, relative to the documents folder: the POD and rate confirmation (from
/// the load export or `loads docs`), and in `loads show` the BOL, lumper receipt and other
/// documents given with `loads docs`.
#[derive(Clone, Debug, Serialize)]
pub struct DocumentsJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bol: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lumper: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<Vec<String>>,
    pub pod: Option<String>,
    pub rate_confirmation: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LaneJson {
    pub delivery_city: Option<String>,
    pub delivery_state: Option<String>,
    pub pickup_city: Option<String>,
    pub pickup_state: Option<String>,
}

/// An open exception flag.
#[derive(Clone, Debug, Serialize)]
pub struct ExceptionJson {
    pub detail: String,
    pub kind: ExceptionKind,
    #[serde(serialize_with = "rfc3339")]
    pub raised_at: DateTime<Utc>,
}

impl ExceptionJson {
    fn of(e: &ExceptionRecord) -> ExceptionJson {
        ExceptionJson { detail: e.detail.clone(), kind: e.kind, raised_at: e.raised_at }
    }
}

/// One status change; `from` is `null` on the row that created the load.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryJson {
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    pub cause: String,
    pub from: Option<LoadStatus>,
    pub to: LoadStatus,
}

impl HistoryJson {
    fn of(h: &HistoryRecord) -> HistoryJson {
        HistoryJson { at: h.at, cause: h.cause.clone(), from: h.from, to: h.to }
    }
}

/// A purchase or payment report row that changed the load.
#[derive(Clone, Debug, Serialize)]
pub struct ReportRowJson {
    pub detail: String,
    pub file: String,
    pub kind: String,
    #[serde(serialize_with = "rfc3339")]
    pub processed_at: DateTime<Utc>,
    pub row: i64,
}

impl ReportRowJson {
    fn of(r: &LoadReportRow) -> ReportRowJson {
        ReportRowJson {
            detail: r.detail.clone(),
            file: r.file_name.clone(),
            kind: r.kind.clone(),
            processed_at: r.processed_at,
            row: r.row,
        }
    }
}

/// The credit state of one load's customer with its subsidiary's provider (`loads show`).
#[derive(Clone, Debug)]
pub struct LoadCredit {
    /// `None` when the load's provider offers no checks (or the customer is invoiced directly).
    pub provider: Option<&'static Provider>,
    pub latest: Option<CreditCheckRecord>,
    /// `credit.max_age`: an older check is stale.
    pub max_age: std::time::Duration,
}

impl LoadCredit {
    pub async fn gather(store: &Store, settings: &Settings, load: &LoadRecord) -> Result<LoadCredit, StoreError> {
        let provider = settings
            .subsidiary(&load.fields.subsidiary)
            .filter(|s| s.method_for(&load.fields.customer_id) == InvoicingMethod::Factoring)
            .and_then(|s| s.factoring.as_ref())
            .map(|f| f.provider)
            .filter(|p| p.credit_checks);
        let latest = match provider {
            Some(provider) => store.latest_credit_check(&load.fields.customer_id, provider.id).await?,
            None => None,
        };
        Ok(LoadCredit { provider, latest, max_age: settings.credit.max_age })
    }

    /// The `credit` of `loads show --json`, stale as of `now`.
    pub fn json(&self, now: DateTime<Utc>) -> LoadCreditJson {
        match (self.provider, &self.latest) {
            (None, _) => LoadCreditJson::NotOffered,
            (Some(_), Some(check)) => LoadCreditJson::Checked(CheckJson::of(check, self.max_age, now)),
            (Some(provider), None) => LoadCreditJson::NotChecked(NotCheckedJson {
                checked_at: None,
                provider: provider.id,
                result: None,
                stale: true,
                text: None,
            }),
        }
    }
}

/// `credit` in `loads show --json`: `null` when no checks apply, else the latest check.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum LoadCreditJson {
    /// The load's provider offers no checks, or its customer is billed directly: `null`.
    NotOffered,
    NotChecked(NotCheckedJson),
    Checked(CheckJson),
}

/// A provider with checks that has not been asked about the customer yet: `result`, `text`
/// and `checked_at` are `null`, and the (missing) check counts as stale.
#[derive(Clone, Debug, Serialize)]
pub struct NotCheckedJson {
    pub checked_at: Option<String>,
    pub provider: &'static str,
    pub result: Option<CreditResult>,
    pub stale: bool,
    pub text: Option<String>,
}
