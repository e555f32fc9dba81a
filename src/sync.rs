//! Status sync (docs/design.md §8a): asks an API factor for the status of every invoice it holds
//! (Invoiced or Financed) and applies each answer through the provider's status map with the
//! same rules as a purchase-report row: purchased → Financed, paid → Completed, held and
//! rejected → exceptions with the factor's words, no change → nothing, and a word the map does
//! not know → `unrecognised_status`, nothing moved. One failed lookup does not stop the others.
//!
//! Runs as `factord sync` and on each subsidiary's `factoring.status_sync` schedule. Providers
//! without a status API (every one but OTR today) are named in the output and not asked: their
//! purchase and payment reports are how factord hears from them.

use serde::Serialize;

use crate::config::{Connection, Settings, Subsidiary};
use crate::domain::{ExceptionKind, LoadStatus};
use crate::providers::api::ApiTransport;
use crate::providers::batch::ProviderError;
use crate::providers::find_provider;
use crate::providers::statuses::{StatusMap, StatusOutcome};
use crate::reports::apply::{status_exception, status_moves, unrecognised_reason};
use crate::store::{HeldInvoice, StatusChange, Store, StoreError};

/// Scheduled syncs record their fires under `*status-sync:<subsidiary>` (beside the batch
/// schedule's fires, which are keyed by the subsidiary id alone).
pub const FIRE_KEY_PREFIX: &str = "*status-sync:";

/// What one sync did, per subsidiary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncReport {
    pub subsidiaries: Vec<SubsidiarySync>,
}

impl SyncReport {
    /// Whether any lookup failed or a provider could not be asked at all.
    pub fn any_failed(&self) -> bool {
        self.subsidiaries.iter().any(|s| s.failed > 0)
    }
}

/// One subsidiary's sync (documented keys of `factord sync --json`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct SubsidiarySync {
    pub subsidiary: String,
    /// The subsidiary's provider.
    pub provider: String,
    /// Whether the provider has a status API (only then is anything asked).
    pub supported: bool,
    /// Why nothing (or not everything) was asked, for people.
    pub note: Option<String>,
    /// Invoices asked about.
    pub asked: usize,
    /// Answers that moved a load or raised or cleared a held/rejected flag.
    pub applied: usize,
    /// Answers that changed nothing (already so, or "no change").
    pub unchanged: usize,
    /// Answers whose words are not in the status map (`unrecognised_status` raised).
    pub unrecognised: usize,
    /// Lookups that got no answer, invoices the factor does not know, and invoices without the
    /// factor's reference.
    pub failed: usize,
    pub answers: Vec<SyncAnswer>,
}

/// One invoice's answer.
#[derive(Clone, Debug, Serialize)]
pub struct SyncAnswer {
    pub load_number: String,
    pub invoice_number: Option<String>,
    /// The factor's words, as it wrote them.
    pub factor_status: Option<String>,
    /// `applied`, `unchanged`, `unrecognised` or `failed`.
    pub outcome: &'static str,
    pub detail: String,
}

/// Syncs every subsidiary (or one) now.
pub async fn run_once(store: &Store, settings: &Settings, only: Option<&str>) -> Result<SyncReport, StoreError> {
    let mut report = SyncReport::default();
    for subsidiary in settings.subsidiaries.iter().filter(|s| only.is_none_or(|id| id == s.id)) {
        if subsidiary.factoring.is_some() {
            report.subsidiaries.push(sync_subsidiary(store, settings, subsidiary).await?);
        }
    }
    Ok(report)
}

/// Syncs one subsidiary through its provider's API.
pub async fn sync_subsidiary(
    store: &Store,
    settings: &Settings,
    subsidiary: &Subsidiary,
) -> Result<SubsidiarySync, StoreError> {
    let Some(factoring) = subsidiary.factoring.as_ref() else { return Ok(SubsidiarySync::default()) };
    let provider = factoring.provider;
    let mut sync = SubsidiarySync {
        subsidiary: subsidiary.id.clone(),
        provider: provider.id.to_string(),
        supported: provider.status_api,
        ..SubsidiarySync::default()
    };
    if !provider.status_api {
        sync.note = Some(format!(
            "{} has no invoice status API: its purchase and payment reports are how factord hears from it",
            provider.name
        ));
        return Ok(sync);
    }
    if !factoring.active {
        sync.note = Some(format!("{} is inactive for {}: not asked", provider.name, subsidiary.id));
        return Ok(sync);
    }
    let Connection::Api(api) = &factoring.connection else {
        sync.note = Some(format!("{} has no [factoring.api] connection configured", provider.name));
        return Ok(sync);
    };
    let transport = match ApiTransport::new(provider, api) {
        Ok(transport) => transport,
        Err(error) => {
            sync.note = Some(format!("cannot ask {}: {error}", provider.name));
            sync.failed = 1;
            return Ok(sync);
        }
    };
    let statuses = settings.status_map(provider.id);
    apply_answers(store, subsidiary, &statuses, &mut sync, &transport).await?;
    Ok(sync)
}

/// Asks the factor about each invoice the subsidiary's provider holds and applies the answers in one
/// transaction. Invoices held by another factor (the subsidiary switched providers since) are
/// counted in the note and not asked: that factor's reports still apply to them.
#[expect(
    clippy::too_many_lines,
    reason = "the lookups, then the one transaction applying them; split further, the counts would travel through every step"
)]
async fn apply_answers(
    store: &Store,
    subsidiary: &Subsidiary,
    statuses: &StatusMap,
    sync: &mut SubsidiarySync,
    transport: &ApiTransport<'_>,
) -> Result<(), StoreError> {
    let provider = statuses.provider().to_string();
    let held = store.held_invoices(&subsidiary.id).await?;
    let (ours, others): (Vec<HeldInvoice>, Vec<HeldInvoice>) = held.into_iter().partition(|h| h.provider == provider);
    if !others.is_empty() {
        let mut names: Vec<&str> = others.iter().map(|h| h.provider.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        sync.note = Some(format!(
            "{} invoice(s) held by {} (an earlier provider) were not asked; its reports still apply",
            others.len(),
            names.join(", ")
        ));
    }
    let cause = format!("status sync {provider}");
    let name = find_provider(&provider).map_or(provider.as_str(), |p| p.name);
    let mut changes = Vec::new();
    let mut answered = Vec::new();
    for invoice in &ours {
        let answer = |outcome: &'static str, factor_status: Option<String>, detail: String| SyncAnswer {
            load_number: invoice.load_number.clone(),
            invoice_number: invoice.invoice_number.clone(),
            factor_status,
            outcome,
            detail,
        };
        let Some(reference) = invoice.reference.as_deref() else {
            sync.failed += 1;
            let detail = format!("no {name} reference stored for this invoice: it cannot be asked");
            sync.answers.push(answer("failed", None, detail));
            continue;
        };
        sync.asked += 1;
        let words = match transport.invoice_status(reference).await {
            Ok(Some(words)) => words,
            Ok(None) => {
                sync.failed += 1;
                let detail = format!("{name} does not know invoice reference {reference}");
                sync.answers.push(answer("failed", None, detail));
                continue;
            }
            Err(ProviderError::Auth(message)) => {
                // Every other lookup would be refused the same way.
                sync.failed += 1;
                sync.answers.push(answer("failed", None, message.clone()));
                sync.note = Some(format!("stopped: {message}"));
                break;
            }
            Err(error) => {
                sync.failed += 1;
                sync.answers.push(answer("failed", None, error.to_string()));
                continue;
            }
        };
        let (outcome, change, detail) = decide(invoice, &words, statuses, &cause);
        if let Some(change) = change {
            changes.push(change);
            answered.push(sync.answers.len());
        }
        match outcome {
            "applied" => sync.applied += 1,
            "unrecognised" => sync.unrecognised += 1,
            _ => sync.unchanged += 1,
        }
        sync.answers.push(answer(outcome, Some(words), detail));
    }
    if changes.is_empty() {
        return Ok(());
    }
    let moved_meanwhile = store.apply_status_changes(&cause, &changes).await?;
    for (change, index) in changes.iter().zip(answered) {
        if moved_meanwhile.contains(&change.load_id) {
            let entry = &mut sync.answers[index];
            match entry.outcome {
                "applied" => sync.applied -= 1,
                "unrecognised" => sync.unrecognised -= 1,
                _ => sync.unchanged -= 1,
            }
            sync.unchanged += 1;
            entry.outcome = "unchanged";
            entry.detail = "the load moved meanwhile (a report was applied); asked again at the next sync".into();
        }
    }
    Ok(())
}

/// One answer → its outcome, the change to write (if any), and what happened, for people.
fn decide(
    invoice: &HeldInvoice,
    words: &str,
    statuses: &StatusMap,
    cause: &str,
) -> (&'static str, Option<StatusChange>, String) {
    let mut change = StatusChange {
        load_id: invoice.load_id,
        expected: invoice.status,
        moves: Vec::new(),
        raise: Vec::new(),
        clear: Vec::new(),
        factor_status: words.to_string(),
    };
    let open = |kind| invoice.open_exceptions.contains(&kind);
    let Some(outcome) = statuses.lookup(words) else {
        change.raise.push((ExceptionKind::UnrecognisedStatus, format!("{cause}: factor status `{words}`")));
        return ("unrecognised", Some(change), unrecognised_reason(words, statuses.provider()));
    };
    if open(ExceptionKind::UnrecognisedStatus) {
        change.clear.push(ExceptionKind::UnrecognisedStatus);
    }
    if let Some(kind) = status_exception(outcome) {
        if open(kind) {
            return ("unchanged", Some(change).filter(|c| !c.clear.is_empty()), format!("already {kind}"));
        }
        change.raise.push((kind, format!("{cause}: factor status `{words}`")));
        return ("applied", Some(change), format!("{kind} by the factor: {words}"));
    }
    change.moves = status_moves(invoice.status, outcome);
    if change.moves.is_empty() {
        let detail = match outcome {
            StatusOutcome::NoChange => "no change: still in progress at the factor".to_string(),
            _ => format!("already {}", invoice.status),
        };
        return ("unchanged", Some(change).filter(|c| !c.clear.is_empty()), detail);
    }
    for kind in [ExceptionKind::Held, ExceptionKind::Rejected] {
        if open(kind) {
            change.clear.push(kind);
        }
    }
    let path: Vec<&str> =
        std::iter::once(change.moves[0].0).chain(change.moves.iter().map(|m| m.1)).map(LoadStatus::as_str).collect();
    let detail = format!("{} ({outcome})", path.join(" → "));
    ("applied", Some(change), detail)
}
