//! Rework (docs/design.md §2 "Rework", §6): the ops commands that hold, release and void a load,
//! `submit --loads` (ops picking which Queued loads go), and `factord exceptions`, every open
//! exception with the command that resolves it. One library function per command, each
//! returning a serialisable report; the command line only formats it.
//!
//! - **hold** raises the `held` exception ("held by ops: <reason>"); the invoice pass and
//!   submission skip a held load, and its waiting reason says why and how to let it move.
//! - **release** clears it (whoever raised it: ops, a void, or the factor).
//! - **void** keeps the invoice number as void for good and sends the load back to Released,
//!   so the next invoice pass issues a new number. An invoice a factor holds leaves a `held`
//!   exception "tell <factor> invoice N is void" until ops release the load.
//!
//! Each writes a history row with its reason. Holds and releases are not status moves: their
//! rows keep `from` = `to`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::config::Settings;
use crate::domain::ledger::Field;
use crate::domain::{ExceptionKind, LoadStatus, Money, rfc3339};
use crate::providers::find_provider;
use crate::store::{
    AdjustOutcome, FiguresCheck, HoldOutcome, OpenExceptionRow, ReleaseOutcome, Store, StoreError, VoidOutcome,
    VoidRequest,
};
use crate::submit::{SubmitError, SubmitReport, WaitingLoad};

pub use crate::domain::{OPS_HOLD, VOID_NOTICE};

/// Why a rework command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReworkError {
    /// Bad input: an empty reason, an unknown subsidiary, unknown loads (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The load is not known (exit 1).
    #[error("load {0} not found")]
    NotFound(String),
    /// The command does not apply to the load as it is (exit 1), with why.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

impl From<StoreError> for ReworkError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::LoadNotFound(load) => ReworkError::NotFound(load),
            other => ReworkError::Store(other),
        }
    }
}

/// The waiting reason of a held load: `held: <what>; <command> to let it move`. `waiting` is the
/// reason recorded on the load: kept when it is already a hold's.
pub fn held_reason(load_number: &str, detail: &str, waiting: Option<&str>) -> String {
    if let Some(waiting) = waiting.filter(|w| w.starts_with("held:")) {
        return waiting.to_string();
    }
    let what = detail.strip_prefix(OPS_HOLD).unwrap_or(detail);
    format!("held: {what}; `factord loads release {load_number} --reason ...` to let it move")
}

fn reason_given(reason: &str) -> Result<&str, ReworkError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ReworkError::Usage("--reason must say why (it is written to the load's history)".to_string()));
    }
    Ok(reason)
}

/// What `loads hold` did.
#[derive(Clone, Debug, Serialize)]
pub struct HoldReport {
    /// True when the load was already held: the first hold is kept, this one wrote nothing.
    pub already_held: bool,
    /// The open `held` exception's detail (the first one's, when already held).
    pub detail: String,
    pub load_number: String,
    /// Since when the load is held.
    #[serde(serialize_with = "rfc3339")]
    pub raised_at: DateTime<Utc>,
    /// The load's status, which a hold does not change.
    pub status: LoadStatus,
    pub waiting_reason: String,
}

/// `factord loads hold LOAD --reason TEXT`: the load waits until released. A Completed load
/// cannot be held (nothing is left to do with it).
pub async fn hold(store: &Store, load_number: &str, reason: &str) -> Result<HoldReport, ReworkError> {
    let reason = reason_given(reason)?;
    let detail = format!("{OPS_HOLD}{reason}");
    let waiting = held_reason(load_number, &detail, None);
    let refuse = |status: LoadStatus| status == LoadStatus::Completed;
    match store.hold_load(load_number, refuse, &detail, &waiting, &detail).await? {
        HoldOutcome::Held { status, raised_at } => Ok(HoldReport {
            already_held: false,
            detail,
            load_number: load_number.to_string(),
            raised_at,
            status,
            waiting_reason: waiting,
        }),
        HoldOutcome::AlreadyHeld { status, detail, raised_at } => Ok(HoldReport {
            already_held: true,
            waiting_reason: held_reason(load_number, &detail, None),
            detail,
            load_number: load_number.to_string(),
            raised_at,
            status,
        }),
        HoldOutcome::Refused { status } => Err(ReworkError::Refused(format!(
            "load {load_number} is {status}: the factor was paid in full, there is nothing left to hold"
        ))),
    }
}

/// What `loads release` did.
#[derive(Clone, Debug, Serialize)]
pub struct ReleaseReport {
    /// What the cleared hold said.
    pub detail: String,
    pub load_number: String,
    pub reason: String,
    pub status: LoadStatus,
}

/// `factord loads release LOAD --reason TEXT`: clears the load's `held` exception, so the next
/// invoice pass or batch takes it. Refused when the load is not held.
pub async fn release(store: &Store, load_number: &str, reason: &str) -> Result<ReleaseReport, ReworkError> {
    let reason = reason_given(reason)?;
    match store.release_load(load_number, &format!("released: {reason}")).await? {
        ReleaseOutcome::Released { status, detail } => {
            Ok(ReleaseReport { detail, load_number: load_number.to_string(), reason: reason.to_string(), status })
        }
        ReleaseOutcome::NotHeld { status } => {
            Err(ReworkError::Refused(format!("load {load_number} ({status}) is not held: nothing to release")))
        }
    }
}

/// What `loads settle` did.
#[derive(Clone, Debug, Serialize)]
pub struct SettleReport {
    /// The exceptions cleared: `ledger_mismatch`, `charged_back`.
    pub cleared: Vec<ExceptionKind>,
    pub load_number: String,
    pub reason: String,
    pub status: LoadStatus,
}

/// `factord loads settle LOAD --reason TEXT`: ops settled the load's money with the factor
/// (docs/money.md): its `ledger_mismatch` and `charged_back` exceptions are cleared, with the
/// reason in its history. Refused when it has neither.
pub async fn settle(store: &Store, load_number: &str, reason: &str) -> Result<SettleReport, ReworkError> {
    let reason = reason_given(reason)?;
    let (status, cleared) = store.settle_load(load_number, &format!("settled: {reason}")).await?;
    if cleared.is_empty() {
        return Err(ReworkError::Refused(format!(
            "load {load_number} ({status}) has no ledger_mismatch or charged_back exception: nothing to settle"
        )));
    }
    Ok(SettleReport {
        cleared: cleared.into_iter().map(|(kind, _)| kind).collect(),
        load_number: load_number.to_string(),
        reason: reason.to_string(),
        status,
    })
}

/// One adjustment in `loads adjust`'s report.
#[derive(Clone, Debug, Serialize)]
pub struct AdjustmentLine {
    pub amount: Money,
    pub field: Field,
}

/// What `loads adjust` did.
#[derive(Clone, Debug, Serialize)]
pub struct AdjustReport {
    pub adjustments: Vec<AdjustmentLine>,
    /// The events' date.
    pub date: NaiveDate,
    /// `holds`, `mismatch` or `not_checked`: the invariant amount = advance + fee + reserve
    /// held after the adjustment (docs/money.md).
    pub figures: &'static str,
    /// The `ledger_mismatch` detail when `figures` is `mismatch`; what was cleared, if anything,
    /// when it `holds`.
    pub detail: Option<String>,
    pub invoice_number: String,
    pub load_number: String,
    pub reason: String,
    pub status: LoadStatus,
}

/// `factord loads adjust LOAD [--advance D] [--fee D] ... --reason TEXT [--date D]`: ops enter
/// corrections of an invoice's figures (docs/money.md "Adjustments"), each a signed amount added
/// to its figure, dated `date` (today, UTC, when not given; a day in the future is refused).
/// Refused for a load without an invoice the ledger lists (not Invoiced, Financed or Completed).
pub async fn adjust(
    store: &Store,
    load_number: &str,
    adjustments: &[(Field, Money)],
    date: Option<NaiveDate>,
    reason: &str,
) -> Result<AdjustReport, ReworkError> {
    let reason = reason_given(reason)?;
    if adjustments.is_empty() {
        return Err(ReworkError::Usage(format!(
            "say what to adjust: {}",
            Field::ALL.iter().map(|f| f.option()).collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some((field, _)) = adjustments.iter().find(|(_, m)| m.cents() == 0) {
        return Err(ReworkError::Usage(format!("{}: an adjustment of 0.00 changes nothing", field.option())));
    }
    let today = Utc::now().date_naive();
    let date = date.unwrap_or(today);
    if date > today {
        return Err(ReworkError::Usage(format!("--date {date} is in the future (today is {today}, UTC)")));
    }
    let said: Vec<String> = adjustments.iter().map(|(f, m)| format!("{f} {}", signed(*m))).collect();
    let source = format!("adjusted by ops ({reason})");
    let cause = format!("adjusted: {} dated {date}: {reason}", said.join(", "));
    match store.adjust_ledger(load_number, adjustments, date, (&source, &cause)).await? {
        AdjustOutcome::WrongStatus { status } => Err(ReworkError::Refused(format!(
            "load {load_number} is {status}: only an invoice (Invoiced, Financed or Completed) has a ledger to adjust"
        ))),
        AdjustOutcome::Adjusted { status, invoice_number, check } => {
            let (figures, detail) = match check {
                FiguresCheck::NotChecked => ("not_checked", None),
                FiguresCheck::Holds { cleared } => {
                    ("holds", cleared.then(|| "cleared ledger_mismatch: the figures add up".to_string()))
                }
                FiguresCheck::Mismatch(detail) => ("mismatch", Some(detail)),
            };
            Ok(AdjustReport {
                adjustments: adjustments.iter().map(|&(field, amount)| AdjustmentLine { amount, field }).collect(),
                date,
                figures,
                detail,
                invoice_number,
                load_number: load_number.to_string(),
                reason: reason.to_string(),
                status,
            })
        }
    }
}

/// `+$25.00` / `-$25.00`, for people.
pub fn signed(money: Money) -> String {
    let plus = if money.cents() < 0 { "" } else { "+" };
    format!("{plus}{}", money.for_people())
}

/// What `loads void` did.
#[derive(Clone, Debug, Serialize)]
pub struct VoidReport {
    /// The provider id of the factor that held the invoice; `null` when none did (a Queued or
    /// a direct invoice).
    pub factor: Option<String>,
    /// The status the load left.
    pub from: LoadStatus,
    /// The invoice number now void, never to be issued again.
    pub invoice_number: String,
    pub load_number: String,
    /// What happens next.
    pub next: String,
    /// The `held` exception left on the load ("tell <factor> invoice N is void"), when a factor
    /// held the invoice.
    pub notice: Option<String>,
    pub reason: String,
    /// Released.
    pub status: LoadStatus,
}

fn factor_name(provider: &str) -> &str {
    find_provider(provider).map_or(provider, |p| p.name)
}

/// `factord loads void LOAD --reason TEXT`: voids the invoice of a Queued or Invoiced load. Refused
/// for a load without an invoice (Delivered, Released), for one the factor bought (Financed,
/// Completed: that is a chargeback) and for one in a batch still being sent.
pub async fn void(store: &Store, load_number: &str, reason: &str) -> Result<VoidReport, ReworkError> {
    let reason = reason_given(reason)?;
    let notice = |provider: &str, invoice: &str| {
        let detail = format!("{VOID_NOTICE}{} invoice {invoice} is void", factor_name(provider));
        let waiting = held_reason(load_number, &detail, None);
        (detail, waiting)
    };
    let cause = |invoice: &str| format!("invoice {invoice} voided by ops: {reason}");
    let request = VoidRequest { load_number, reason, cause: &cause, factor_notice: &notice };
    match store.void_invoice(request).await? {
        VoidOutcome::Voided { invoice_number, from, factor, .. } => {
            let notice = factor.as_deref().map(|f| notice(f, &invoice_number).0);
            let next = match factor.as_deref() {
                Some(f) => format!(
                    "held until {} is told invoice {invoice_number} is void: then `factord loads release \
                     {load_number} --reason ...`, and the next invoice pass issues a new number",
                    factor_name(f)
                ),
                None => "the next invoice pass issues a new invoice number".to_string(),
            };
            Ok(VoidReport {
                factor,
                from,
                invoice_number,
                load_number: load_number.to_string(),
                next,
                notice,
                reason: reason.to_string(),
                status: LoadStatus::Released,
            })
        }
        VoidOutcome::WrongStatus { status: status @ (LoadStatus::Financed | LoadStatus::Completed) } => {
            Err(ReworkError::Refused(format!(
                "load {load_number} is {status}: the factor bought its invoice, so it cannot be voided \
                 (that is a chargeback, settled with the factor)"
            )))
        }
        VoidOutcome::WrongStatus { status } => {
            Err(ReworkError::Refused(format!("load {load_number} is {status}: it has no invoice to void")))
        }
        VoidOutcome::InBatch { status, batch_id } => Err(ReworkError::Refused(format!(
            "load {load_number} ({status}) is in batch {batch_id}, whose outcome is not recorded yet: \
             void it once the batch is settled (`factord submit` settles it)"
        ))),
    }
}

/// One open exception, as `factord exceptions` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct ExceptionLine {
    /// The words of whoever raised it: the factor's, or ops'.
    pub detail: String,
    pub kind: ExceptionKind,
    pub load_number: String,
    /// Since when it is open.
    #[serde(serialize_with = "rfc3339")]
    pub raised_at: DateTime<Utc>,
    /// The command (or step) that resolves it.
    pub resolve: String,
    pub status: LoadStatus,
    pub subsidiary: String,
}

/// `factord exceptions [--subsidiary ID]`: every open exception, oldest first.
pub async fn exceptions(
    store: &Store,
    settings: &Settings,
    subsidiary: Option<&str>,
) -> Result<Vec<ExceptionLine>, ReworkError> {
    if let Some(id) = subsidiary.filter(|id| settings.subsidiary(id).is_none()) {
        return Err(ReworkError::Usage(format!("subsidiary `{id}` is not configured")));
    }
    let rows = store.exception_list(subsidiary, None).await?;
    Ok(lines(settings, rows))
}

/// The `limit` oldest open exceptions of every subsidiary, as [`exceptions`] lists them (the
/// dashboard's list).
pub async fn oldest_exceptions(
    store: &Store,
    settings: &Settings,
    limit: i64,
) -> Result<Vec<ExceptionLine>, StoreError> {
    let rows = store.exception_list(None, Some(limit)).await?;
    Ok(lines(settings, rows))
}

fn lines(settings: &Settings, rows: Vec<OpenExceptionRow>) -> Vec<ExceptionLine> {
    rows.into_iter()
        .map(|row| ExceptionLine {
            resolve: resolve(settings, &row),
            detail: row.detail,
            kind: row.kind,
            load_number: row.load_number,
            raised_at: row.raised_at,
            status: row.status,
            subsidiary: row.subsidiary,
        })
        .collect()
}

/// The command that resolves an open exception.
fn resolve(settings: &Settings, row: &OpenExceptionRow) -> String {
    let load = &row.load_number;
    // The factor that holds the invoice, else the subsidiary's.
    let provider = row.factor.clone().or_else(|| {
        settings.subsidiary(&row.subsidiary).and_then(|s| s.factoring.as_ref()).map(|f| f.provider.id.to_string())
    });
    let provider = provider.as_deref().unwrap_or("P");
    match row.kind {
        // Ops' own hold, or a void's notice: ops release it.
        ExceptionKind::Held if row.detail.starts_with(OPS_HOLD) || row.detail.starts_with(VOID_NOTICE) => {
            format!("`factord loads release {load} --reason ...`")
        }
        // The factor's hold: its next status clears it, or ops once settled with the factor.
        ExceptionKind::Held => format!(
            "cleared when the factor's status moves on (its next report, or `factord sync`); or `factord loads \
             release {load} --reason ...` once settled with the factor"
        ),
        ExceptionKind::Rejected => {
            format!(
                "fix the cause (documents: `factord loads docs {load} --pod F ...`), then `factord loads retry {load} --reason ...`"
            )
        }
        ExceptionKind::CreditDeclined => format!(
            "once the factor approves customer {}: `factord credit refresh --force` (the next submission clears it)",
            row.customer_id
        ),
        ExceptionKind::ShortPaid => format!(
            "cleared by the payment report that brings it to the full amount: `factord ingest FILE --provider \
             {provider} --kind payment`"
        ),
        ExceptionKind::UnrecognisedStatus => format!(
            "map the factor's word under `[provider.{provider}.statuses]` in the config, then `factord sync \
             --subsidiary {}`",
            row.subsidiary
        ),
        ExceptionKind::LedgerMismatch => format!(
            "ask {provider} for the purchase's corrected advance, fee and reserve and enter them: `factord loads \
             adjust {load} --fee D --reserve D ... --reason ...` (clears it once they add up); or, once settled: \
             `factord loads settle {load} --reason ...`"
        ),
        ExceptionKind::ChargedBack => format!(
            "collect load {load} from customer {} yourself ({provider} sold the invoice back); once settled: \
             `factord loads settle {load} --reason ...`",
            row.customer_id
        ),
    }
}

/// What `submit --loads` did: the submission of the picked loads, and those refused before it.
#[derive(Clone, Debug, Serialize)]
pub struct PickedSubmit {
    #[serde(flatten)]
    pub report: SubmitReport,
    /// Picked loads that could not go at all, with why (not Queued, held, of another
    /// subsidiary, already in a batch being sent).
    pub refused: Vec<WaitingLoad>,
}

impl PickedSubmit {
    /// Picked loads that did not go (refused, or waiting after pre-flight).
    pub fn not_sent(&self) -> usize {
        self.refused.len() + self.report.waiting.len()
    }
}

/// `factord submit --loads L1,L2 [--subsidiary ID] [--dry-run]`: submits only the picked loads.
/// A load number that is not known refuses the whole command ([`ReworkError::Usage`]); a known
/// load that cannot go is refused with its reason, and the others go.
pub async fn submit_picked(
    store: &Store,
    settings: &Settings,
    picked: &[String],
    subsidiary: Option<&str>,
    (dry_run, cause): (bool, &str),
) -> Result<PickedSubmit, ReworkError> {
    if let Some(id) = subsidiary.filter(|id| settings.subsidiary(id).is_none()) {
        return Err(ReworkError::Usage(format!("subsidiary `{id}` is not configured")));
    }
    let picked: BTreeSet<String> = picked.iter().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    if picked.is_empty() {
        return Err(ReworkError::Usage("--loads names no load".to_string()));
    }
    let mut refused = Vec::new();
    let mut unknown = Vec::new();
    let mut by_subsidiary: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for load_number in &picked {
        let Some(detail) = store.load_detail(load_number).await? else {
            unknown.push(load_number.clone());
            continue;
        };
        let load = &detail.load;
        let sub = &load.fields.subsidiary;
        let held = detail.exceptions.iter().find(|e| e.kind == ExceptionKind::Held);
        let reason = if let Some(only) = subsidiary.filter(|only| *only != sub) {
            Some(format!("of subsidiary {sub}, not {only}"))
        } else if load.status != LoadStatus::Queued {
            Some(format!("{}, not Queued: only a Queued invoice can be submitted", load.status))
        } else if let Some(held) = held {
            Some(held_reason(load_number, &held.detail, load.waiting_reason.as_deref()))
        } else if settings.subsidiary(sub).and_then(|s| s.factoring.as_ref()).is_none() {
            Some(format!("subsidiary {sub} has no factoring provider configured"))
        } else {
            None
        };
        match reason {
            Some(reason) => {
                refused.push(WaitingLoad { subsidiary: sub.clone(), load_number: load_number.clone(), reason })
            }
            None => {
                by_subsidiary.entry(sub.clone()).or_default().insert(load_number.clone());
            }
        }
    }
    if !unknown.is_empty() {
        return Err(ReworkError::Usage(format!("unknown load(s): {}; nothing was submitted", unknown.join(", "))));
    }
    let mut report = SubmitReport::default();
    if !dry_run && !by_subsidiary.is_empty() {
        report.batches.extend(crate::submit::reconcile_in_flight(store, settings).await?);
    }
    for (id, loads) in &by_subsidiary {
        // A Queued load already in a live batch is not among those to submit.
        let free: BTreeSet<String> = store.loads_to_submit(id).await?.into_iter().map(|l| l.load_number).collect();
        for load_number in loads.difference(&free) {
            refused.push(WaitingLoad {
                subsidiary: id.clone(),
                load_number: load_number.clone(),
                reason: "already in a batch being sent: its outcome is recorded first".to_string(),
            });
        }
        let Some(sub) = settings.subsidiary(id) else { continue };
        let only: BTreeSet<String> = loads.intersection(&free).cloned().collect();
        if !only.is_empty() {
            crate::submit::submit_subsidiary_loads(store, settings, sub, (dry_run, cause), Some(&only), &mut report)
                .await?;
        }
    }
    Ok(PickedSubmit { report, refused })
}
