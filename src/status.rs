//! What `factord status` shows, gathered from the store: counts per subsidiary and status,
//! loads waiting and why, the last batches, report files and load files, refused load files,
//! the customers' credit, and the daemon running the schedules. [`Status`] is also the
//! `status --json` object of docs/design.md §6; the command line formats it as text.
//!
//! The structs list their fields in alphabetical order: the order of the keys in the output
//! since the first release (the objects were sorted maps then), kept so the output does not
//! change.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{InvoicingMethod, Settings};
use crate::credit::{is_stale, provider_with_checks};
use crate::domain::{CreditResult, LoadStatus, rfc3339, rfc3339_option};
use crate::intake::LOADS_CHANNEL;
use crate::store::{
    BatchSummary, COMMAND_LOADS_CHANNEL, CreditCheckRecord, LoadFilter, ReportFileRecord, Store, StoreError,
};

/// How many report files per provider `status` shows.
const REPORTS_PER_PROVIDER: i64 = 5;
/// How many batches `status` shows.
const LAST_BATCHES: i64 = 10;
/// How many load files (and refused load files) `status` shows.
const LAST_LOAD_FILES: i64 = 5;
/// How many waiting loads `status` lists per subsidiary.
const WAITING_LOADS_LISTED: usize = 20;

/// `factord status` (`status --json`).
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub credit: CreditStatus,
    /// Newest first.
    pub last_batches: Vec<BatchLine>,
    /// Files dropped into inbox/loads and files given to `loads import`, newest first.
    pub last_load_files: Vec<LoadFileLine>,
    /// The last files of each provider.
    pub last_reports: Vec<ReportFileLine>,
    /// Load files refused whole, newest first.
    pub refused_load_files: Vec<RefusedFileLine>,
    /// The daemon running the schedules (several daemons on one PostgreSQL: one at a time);
    /// `null` when none holds the lease.
    pub scheduler: Option<SchedulerLine>,
    /// Every configured subsidiary, then any subsidiary with loads that is no longer configured.
    pub subsidiaries: Vec<SubsidiaryStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SubsidiaryStatus {
    /// False for a subsidiary that has loads but is no longer configured.
    pub configured: bool,
    pub counts: PipelineCounts,
    /// Loads not yet released by the TMS.
    pub delivered: i64,
    /// Open exception flags.
    pub exceptions: i64,
    pub id: String,
    /// `null` when not configured.
    pub name: Option<String>,
    /// Loads with a recorded reason why they cannot move on.
    pub waiting: i64,
    /// The first of them, with why.
    pub waiting_loads: Vec<WaitingLoadLine>,
}

/// Loads per status of the pipeline (docs/design.md §2), keyed by the status names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PipelineCounts {
    #[serde(rename = "Completed")]
    pub completed: i64,
    #[serde(rename = "Financed")]
    pub financed: i64,
    #[serde(rename = "Invoiced")]
    pub invoiced: i64,
    #[serde(rename = "Queued")]
    pub queued: i64,
    #[serde(rename = "Released")]
    pub released: i64,
}

impl PipelineCounts {
    fn of(counts: &BTreeMap<LoadStatus, i64>) -> PipelineCounts {
        let n = |status| counts.get(&status).copied().unwrap_or(0);
        PipelineCounts {
            completed: n(LoadStatus::Completed),
            financed: n(LoadStatus::Financed),
            invoiced: n(LoadStatus::Invoiced),
            queued: n(LoadStatus::Queued),
            released: n(LoadStatus::Released),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct WaitingLoadLine {
    pub load_number: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct BatchLine {
    pub accepted: i64,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    pub error: Option<String>,
    pub id: String,
    /// How many invoices the batch carried.
    pub invoices: i64,
    pub provider: String,
    pub reference: Option<String>,
    pub rejected: i64,
    pub status: String,
    pub subsidiary: String,
    pub total_cents: i64,
    pub transient: i64,
}

impl BatchLine {
    fn of(b: BatchSummary) -> BatchLine {
        BatchLine {
            accepted: b.accepted,
            created_at: b.created_at,
            error: b.error,
            id: b.id,
            invoices: b.invoice_count,
            provider: b.provider,
            reference: b.reference,
            rejected: b.rejected,
            status: b.status,
            subsidiary: b.subsidiary,
            total_cents: b.total_cents,
            transient: b.transient,
        }
    }
}

/// A purchase or payment report file, as ingested.
#[derive(Clone, Debug, Serialize)]
pub struct ReportFileLine {
    pub applied: i64,
    pub file: String,
    pub kind: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub processed_at: DateTime<Utc>,
    pub provider: String,
    /// Why the file was refused whole; `null` when its rows were applied.
    pub refused: Option<String>,
    pub rejected: i64,
    pub rows: i64,
    pub skipped: i64,
}

impl ReportFileLine {
    fn of(f: ReportFileRecord) -> ReportFileLine {
        ReportFileLine {
            applied: f.applied,
            file: f.file_name,
            kind: f.kind,
            processed_at: f.processed_at,
            provider: f.provider,
            refused: f.refused,
            rejected: f.rejected,
            rows: f.rows,
            skipped: f.skipped,
        }
    }
}

/// A load file imported from the inbox or by `loads import`.
#[derive(Clone, Debug, Serialize)]
pub struct LoadFileLine {
    pub file: String,
    #[serde(serialize_with = "rfc3339")]
    pub processed_at: DateTime<Utc>,
    /// `inbox` or `command`.
    pub source: &'static str,
    /// The row counts recorded with the file; `null` while it is being imported.
    pub summary: Option<LoadFileCounts>,
}

/// The row counts recorded with a load file (the store's `ImportCounts`, keys sorted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadFileCounts {
    pub imported: usize,
    pub rejected: usize,
    pub unchanged: usize,
    pub updated: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct RefusedFileLine {
    pub file: String,
    pub reason: String,
    #[serde(serialize_with = "rfc3339")]
    pub refused_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SchedulerLine {
    /// The daemon's id (`host:pid:…`).
    pub holder: String,
    /// False when its lease ran out (e.g. it was killed).
    pub live: bool,
}

/// Credit in `status`: the latest check of each customer with loads in Released or Queued
/// under a provider with checks.
#[derive(Clone, Debug, Serialize)]
pub struct CreditStatus {
    pub counts: CreditCounts,
    pub customers: Vec<CreditCustomer>,
    /// `credit.max_age`.
    pub max_age_seconds: u64,
    /// `credit.refresh_schedule`.
    pub refresh_schedule: String,
}

/// Customers per latest answer; `stale` counts the checked ones whose check is older than
/// `credit.max_age`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CreditCounts {
    pub approved: usize,
    pub declined: usize,
    pub stale: usize,
    pub unchecked: usize,
    pub unknown: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct CreditCustomer {
    /// `null` (with `result` and `text`) when not checked yet.
    #[serde(serialize_with = "rfc3339_option")]
    pub checked_at: Option<DateTime<Utc>>,
    pub customer_id: String,
    pub customer_name: String,
    pub provider: &'static str,
    pub result: Option<CreditResult>,
    /// Not checked yet, or the check is older than `credit.max_age`.
    pub stale: bool,
    /// The factor's own text.
    pub text: Option<String>,
}

impl Status {
    /// Every configured subsidiary (with zero counts if it has no loads yet), plus any
    /// subsidiary that has loads but is no longer configured.
    pub async fn gather(store: &Store, settings: &Settings) -> Result<Status, StoreError> {
        let mut counts: BTreeMap<String, _> =
            store.status_counts().await?.into_iter().map(|c| (c.subsidiary.clone(), c)).collect();
        let mut subsidiaries = Vec::new();
        let mut ids: Vec<String> = settings.subsidiaries.iter().map(|s| s.id.clone()).collect();
        ids.extend(counts.keys().filter(|k| settings.subsidiary(k).is_none()).cloned());
        for id in ids {
            let c = counts.remove(&id);
            let waiting = c.as_ref().map_or(0, |c| c.waiting);
            let waiting_loads = if waiting > 0 {
                let filter = LoadFilter { subsidiary: Some(id.clone()), ..Default::default() };
                store
                    .list_loads(&filter)
                    .await?
                    .into_iter()
                    .filter_map(|l| {
                        let reason = l.load.waiting_reason?;
                        Some(WaitingLoadLine { load_number: l.load.load_number, reason })
                    })
                    .take(WAITING_LOADS_LISTED)
                    .collect()
            } else {
                Vec::new()
            };
            let name = settings.subsidiary(&id).map(|s| s.name.clone());
            let by_status = c.as_ref().map(|c| c.counts.clone()).unwrap_or_default();
            subsidiaries.push(SubsidiaryStatus {
                configured: name.is_some(),
                counts: PipelineCounts::of(&by_status),
                delivered: by_status.get(&LoadStatus::Delivered).copied().unwrap_or(0),
                exceptions: c.as_ref().map_or(0, |c| c.exceptions),
                id,
                name,
                waiting,
                waiting_loads,
            });
        }
        // Files dropped into inbox/loads and files given to `loads import`, newest first.
        let mut files = store.recent_inbox_files(LOADS_CHANNEL, LAST_LOAD_FILES).await?;
        files.extend(store.recent_inbox_files(COMMAND_LOADS_CHANNEL, LAST_LOAD_FILES).await?);
        files.sort_by_key(|f| std::cmp::Reverse(f.processed_at));
        let last_load_files = files
            .into_iter()
            .take(usize::try_from(LAST_LOAD_FILES).unwrap_or(usize::MAX))
            .map(|f| LoadFileLine {
                // An empty summary: the file is being imported.
                summary: serde_json::from_str(&f.summary).ok(),
                source: if f.channel == LOADS_CHANNEL { "inbox" } else { "command" },
                processed_at: f.processed_at,
                file: f.file_name,
            })
            .collect();
        let refused_load_files = store
            .recent_refused_files(LOADS_CHANNEL, LAST_LOAD_FILES)
            .await?
            .into_iter()
            .map(|f| RefusedFileLine { file: f.file_name, reason: f.reason, refused_at: f.refused_at })
            .collect();
        let last_batches = store.recent_batches(LAST_BATCHES).await?.into_iter().map(BatchLine::of).collect();
        let last_reports =
            store.recent_report_files(REPORTS_PER_PROVIDER).await?.into_iter().map(ReportFileLine::of).collect();
        let credit = CreditStatus::gather(store, settings, Utc::now()).await?;
        let scheduler = store
            .lease_holder(crate::store::SCHEDULER_ROLE)
            .await?
            .map(|s| SchedulerLine { holder: s.holder, live: s.live });
        Ok(Status { credit, last_batches, last_load_files, last_reports, refused_load_files, scheduler, subsidiaries })
    }
}

impl CreditStatus {
    /// Stale as of `now`.
    async fn gather(store: &Store, settings: &Settings, now: DateTime<Utc>) -> Result<CreditStatus, StoreError> {
        let max_age = settings.credit.max_age;
        let mut latest: BTreeMap<(String, String), CreditCheckRecord> = store
            .latest_credit_checks()
            .await?
            .into_iter()
            .map(|c| ((c.customer_id.clone(), c.provider.clone()), c))
            .collect();
        let mut customers: Vec<CreditCustomer> = Vec::new();
        let mut counts = CreditCounts::default();
        for candidate in store.credit_candidates().await? {
            let Some(subsidiary) = settings.subsidiary(&candidate.subsidiary) else { continue };
            if subsidiary.method_for(&candidate.customer.id) == InvoicingMethod::Direct {
                continue;
            }
            let Some(provider) = provider_with_checks(subsidiary) else { continue };
            if customers.iter().any(|c| c.customer_id == candidate.customer.id && c.provider == provider.id) {
                continue;
            }
            let check = latest.remove(&(candidate.customer.id.clone(), provider.id.to_string()));
            let stale = check.as_ref().is_none_or(|c| is_stale(c, max_age, now));
            match &check {
                None => counts.unchecked += 1,
                Some(check) => {
                    match check.result {
                        CreditResult::Approved => counts.approved += 1,
                        CreditResult::Declined => counts.declined += 1,
                        CreditResult::Unknown => counts.unknown += 1,
                    }
                    if stale {
                        counts.stale += 1;
                    }
                }
            }
            customers.push(CreditCustomer {
                checked_at: check.as_ref().map(|c| c.checked_at),
                customer_id: candidate.customer.id,
                customer_name: candidate.customer.name,
                provider: provider.id,
                result: check.as_ref().map(|c| c.result),
                stale,
                text: check.map(|c| c.factor_text),
            });
        }
        Ok(CreditStatus {
            counts,
            customers,
            max_age_seconds: max_age.as_secs(),
            refresh_schedule: settings.credit.refresh_schedule.expression.clone(),
        })
    }
}
