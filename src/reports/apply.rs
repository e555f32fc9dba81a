//! The rules of docs/design.md §8, as a pure function from the report's rows and the loads they name
//! to a plan: every row's outcome and the set of changes the store writes in one
//! transaction. Rows are taken in file order against a working copy of the loads, so two rows
//! for one load in the same file see each other (two partial payments add up).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use rustc_hash::FxHashMap;

use super::ReportKind;
use super::parse::ReportRow;
use crate::domain::ledger::{Invariant, KnownFigures};
use crate::domain::report::ChunkLoads;
pub use crate::domain::report::{
    Cause, HistoryRow, LedgerKind, LedgerRecord, Outcome, PaymentKey, PaymentRecord, PurchaseRecord, ReportLoad,
    ReportPlan, RowOutcome, StatusMove,
};
use crate::domain::{ExceptionKind, LoadStatus, Money};
use crate::providers::statuses::{StatusMap, StatusOutcome};

/// The keys a file's rows look loads up by: every invoice number, and each row's load number
/// with the invoice number beside it.
pub fn lookup_keys(rows: &[ReportRow]) -> (Vec<&str>, Vec<(Option<&str>, &str)>) {
    let mut invoices: Vec<&str> = rows.iter().filter_map(|r| r.invoice_number.as_deref()).collect();
    invoices.sort_unstable();
    invoices.dedup();
    let mut loads: Vec<(Option<&str>, &str)> =
        rows.iter().filter_map(|r| Some((r.invoice_number.as_deref(), r.load_number.as_deref()?))).collect();
    loads.sort_unstable();
    loads.dedup();
    (invoices, loads)
}

/// `YYYY-MM-DD` (chrono's `Display` for a date; much cheaper than `format`).
fn date_text(date: Option<NaiveDate>) -> Option<String> {
    date.map(|d| d.to_string())
}

/// The load each row names: by invoice number, else by load number (the second map is built
/// only when some row needs it).
fn find_loads(rows: &[ReportRow], loads: &[ReportLoad], voided: &FxHashMap<&str, &str>) -> Vec<Option<usize>> {
    let by_invoice: FxHashMap<&str, usize> =
        loads.iter().enumerate().filter_map(|(i, l)| Some((l.invoice_number.as_deref()?, i))).collect();
    let mut by_load: Option<FxHashMap<&str, usize>> = None;
    rows.iter()
        .map(|row| {
            if let Some(&i) = row.invoice_number.as_deref().and_then(|n| by_invoice.get(n)) {
                return Some(i);
            }
            // A voided invoice is not the load's invoice any more: never matched by load number.
            if row.invoice_number.as_deref().is_some_and(|n| voided.contains_key(n)) {
                return None;
            }
            let number = row.load_number.as_deref()?;
            let by_load =
                by_load.get_or_insert_with(|| loads.iter().enumerate().map(|(i, l)| (&*l.load_number, i)).collect());
            by_load.get(number).copied()
        })
        .collect()
}

/// The moves a factor's status outcome makes from `status` (docs/design.md §8a), in order: a purchase
/// moves an Invoiced load to Financed; "paid" moves it on to Completed (through Financed). Empty
/// when the load is already there or the outcome moves nothing. Report rows and status sync
/// both go through here.
pub fn status_moves(status: LoadStatus, outcome: StatusOutcome) -> Vec<(LoadStatus, LoadStatus)> {
    let target = match outcome {
        StatusOutcome::Purchased => LoadStatus::Financed,
        StatusOutcome::Paid => LoadStatus::Completed,
        StatusOutcome::Held | StatusOutcome::Rejected | StatusOutcome::NoChange => return Vec::new(),
    };
    [(LoadStatus::Invoiced, LoadStatus::Financed), (LoadStatus::Financed, LoadStatus::Completed)]
        .into_iter()
        .filter(|(from, to)| *from >= status && *to <= target)
        .collect()
}

/// The exception a "held" or "rejected" outcome raises.
pub fn status_exception(outcome: StatusOutcome) -> Option<ExceptionKind> {
    match outcome {
        StatusOutcome::Held => Some(ExceptionKind::Held),
        StatusOutcome::Rejected => Some(ExceptionKind::Rejected),
        _ => None,
    }
}

/// Why an unrecognised status moved nothing, and what ops can do about it.
pub fn unrecognised_reason(text: &str, provider: &str) -> String {
    format!(
        "factor status `{text}` is not in {provider}'s status map: nothing moved (unrecognised_status raised); \
         map it under [provider.{provider}.statuses] or act by hand"
    )
}

/// Applies docs/design.md §8 to the rows. `file_label` names the file in history causes; `statuses` is
/// the provider's status map, for rows that carry the factor's status.
pub fn plan(
    kind: ReportKind,
    provider: &str,
    file_label: &str,
    rows: &[ReportRow],
    found: ChunkLoads,
    statuses: &StatusMap,
) -> ReportPlan {
    let ChunkLoads { mut loads, voided } = found;
    let voided: FxHashMap<&str, &str> =
        voided.iter().map(|v| (v.invoice_number.as_str(), v.load_number.as_str())).collect();
    let initial: Vec<LoadStatus> = loads.iter().map(|l| l.status).collect();
    let found = find_loads(rows, &loads, &voided);
    let mut planner = Planner {
        provider,
        statuses,
        plan: ReportPlan::default(),
        repeated: Repeated::default(),
        exceptions: Vec::new(),
        empty: Arc::from(""),
        prefix: format!("{} report {file_label} row ", kind.as_str()).into(),
        implied: Arc::from(" (a payment implies the purchase)"),
    };
    planner.plan.outcomes.reserve(rows.len());
    for (row, found) in rows.iter().zip(found) {
        let Some(index) = found else {
            planner.record(row, None, Outcome::Rejected, unknown_row(row, &voided).into());
            continue;
        };
        let load = &mut loads[index];
        let (outcome, reason) = match (planner.submitted_here(load), kind) {
            (Err(reason), _) => (Outcome::Rejected, reason.into()),
            (Ok(()), ReportKind::Purchase) => {
                let decision = planner.purchase(row, load);
                planner.ledger_events(kind, row, load, decision)
            }
            (Ok(()), ReportKind::Payment) => {
                let decision = planner.payment(row, load);
                planner.ledger_events(kind, row, load, decision)
            }
        };
        planner.record(row, Some(load), outcome, reason);
    }
    planner.finish(&loads, initial)
}

/// Why a row names no load factord knows (or an invoice ops voided).
fn unknown_row(row: &ReportRow, voided: &FxHashMap<&str, &str>) -> String {
    if let Some((invoice, load)) = row.invoice_number.as_deref().and_then(|n| Some((n, *voided.get(n)?))) {
        return format!(
            "invoice {invoice} of load {load} was voided (`factord loads void`): nothing recorded for it; \
             tell the factor it is void"
        );
    }
    match (&row.invoice_number, &row.load_number) {
        (None, None) => "no invoice number and no load number".to_string(),
        (Some(invoice), _) => format!("unknown invoice {invoice}: not an invoice factord submitted"),
        (None, Some(load)) => format!("unknown load {load}"),
    }
}

/// What planning one row decided: its outcome and why.
type Decision = (Outcome, Cow<'static, str>);

/// The plan being made, row by row, with what the rows share.
struct Planner<'p, 'r> {
    provider: &'p str,
    statuses: &'p StatusMap,
    plan: ReportPlan,
    repeated: Repeated<'r>,
    /// Exceptions in file order: `Some(detail)` raises or updates, `None` clears.
    exceptions: Vec<((i64, ExceptionKind), Option<String>)>,
    empty: Arc<str>,
    /// `<kind> report <file> row `: every history cause starts so.
    prefix: Arc<str>,
    implied: Arc<str>,
}

impl<'r> Planner<'_, 'r> {
    fn cause(&self, row: &ReportRow) -> Cause {
        Cause { prefix: self.prefix.clone(), row: row.row, suffix: self.empty.clone() }
    }

    /// Records the row's outcome, with the invoice and load numbers as written (the load's,
    /// shared, when the same).
    fn record(&mut self, row: &ReportRow, load: Option<&ReportLoad>, outcome: Outcome, reason: Cow<'static, str>) {
        let known = load.and_then(|l| l.invoice_number.as_ref());
        let empty = &self.empty;
        self.plan.outcomes.push(RowOutcome {
            row: row.row,
            invoice_number: match (row.invoice_number.as_deref(), known) {
                (Some(text), Some(known)) if text == &**known => known.clone(),
                (Some(text), _) => text.into(),
                (None, Some(known)) => known.clone(),
                (None, None) => empty.clone(),
            },
            load_number: match (load, row.load_number.as_deref()) {
                (Some(load), _) => load.load_number.clone(),
                (None, Some(text)) => text.into(),
                (None, None) => empty.clone(),
            },
            outcome,
            reason,
        });
    }

    fn raise(&mut self, load: &mut ReportLoad, kind: ExceptionKind, detail: String) {
        load.open_exceptions.insert(kind);
        self.exceptions.push(((load.id, kind), Some(detail)));
    }

    fn clear(&mut self, load: &mut ReportLoad, kind: ExceptionKind) {
        if load.open_exceptions.remove(&kind) {
            self.exceptions.push(((load.id, kind), None));
        }
    }

    /// A report of this provider applies only to loads submitted to it.
    fn submitted_here(&self, load: &ReportLoad) -> Result<(), String> {
        if load.status < LoadStatus::Invoiced {
            return Err(format!("load {} is {}: not submitted to the factor yet", load.load_number, load.status));
        }
        match load.provider.as_deref() {
            Some(p) if p == self.provider => Ok(()),
            Some(other) => Err(format!(
                "load {} ({}) was submitted to {other}, not {}",
                load.load_number, load.subsidiary, self.provider
            )),
            None => {
                Err(format!("load {} ({}) was not factored (invoiced directly)", load.load_number, load.subsidiary))
            }
        }
    }

    /// A purchase report row: the factor's status word (purchased when there is none) read by
    /// the status map, then the purchase recorded and the load moved on.
    fn purchase(&mut self, row: &'r ReportRow, load: &mut ReportLoad) -> Decision {
        // No status column, or an empty cell: the row is in a purchase report.
        let text = row.factor_status.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let Some(status) = text.map_or(Some(StatusOutcome::Purchased), |t| self.statuses.lookup(t)) else {
            let text = text.unwrap_or_default();
            let detail = format!("{}: factor status `{text}`", self.cause(row));
            self.raise(load, ExceptionKind::UnrecognisedStatus, detail);
            return (Outcome::Rejected, unrecognised_reason(text, self.provider).into());
        };
        self.clear(load, ExceptionKind::UnrecognisedStatus);
        if let Some(kind) = status_exception(status) {
            if load.open_exceptions.contains(&kind) {
                let reason = format!("already applied: load {} is already {}", load.load_number, kind.as_str());
                return (Outcome::Skipped, reason.into());
            }
            let text = text.unwrap_or_default();
            self.raise(load, kind, format!("{}: factor status `{text}`", self.cause(row)));
            return (Outcome::Applied, format!("{} by the factor: {text}", kind.as_str()).into());
        }
        let said = text.map(|t| format!(" (factor status `{t}`)")).unwrap_or_default();
        if status == StatusOutcome::NoChange {
            return (Outcome::Skipped, format!("no change{said}: the status map reads it as still in progress").into());
        }
        let steps = status_moves(load.status, status);
        if steps.is_empty() && load.purchased {
            return (Outcome::Skipped, format!("already applied: load {} is {}", load.load_number, load.status).into());
        }
        if !load.purchased {
            self.plan.purchases.push(purchase_record(load.id, row, &mut self.repeated));
            load.purchased = true;
            self.check_figures(row, load);
        }
        let Some(&(_, last)) = steps.last() else {
            return (Outcome::Applied, format!("purchase details recorded; load already {}", load.status).into());
        };
        for &(from, to) in &steps {
            self.plan.history.push(HistoryRow { load_id: load.id, from, to, cause: self.cause(row) });
        }
        load.status = last;
        self.clear(load, ExceptionKind::Held);
        self.clear(load, ExceptionKind::Rejected);
        let path: Vec<String> =
            std::iter::once(steps[0].0).chain(steps.iter().map(|s| s.1)).map(|s| s.to_string()).collect();
        let amount = Money::from_cents(load.amount_cents);
        let reason = match row.amount.filter(|a| *a != amount) {
            None => format!("{}{said}", path.join(" → ")),
            Some(face) => format!(
                "{}{said} (the factor's amount {} differs from the invoice's {})",
                path.join(" → "),
                face.for_people(),
                amount.for_people()
            ),
        };
        (Outcome::Applied, reason.into())
    }

    /// A payment report row: the payment recorded once (by amount, date and reference), the
    /// load financed if it was not yet, and Completed once paid in full (else `short_paid`).
    fn payment(&mut self, row: &ReportRow, load: &mut ReportLoad) -> Decision {
        let amount = Money::from_cents(load.amount_cents);
        // A row with only a reserve release, a chargeback or a fee (docs/money.md).
        let Some(paid) = row.paid_amount else {
            return (Outcome::Skipped, NO_PAYMENT.into());
        };
        let key = PaymentKey {
            paid_cents: paid.cents(),
            payment_date: date_text(row.payment_date).unwrap_or_default(),
            payment_reference: row.payment_reference.clone().unwrap_or_default(),
        };
        if load.payments.contains(&key) {
            let reason =
                format!("already applied: this payment of {} is recorded for {}", paid.for_people(), load.load_number);
            return (Outcome::Skipped, reason.into());
        }
        if !paid.is_positive() {
            let reason = format!("payment of {} is not positive: reversals are handled by hand", paid.for_people());
            return (Outcome::Rejected, reason.into());
        }
        if load.status == LoadStatus::Completed {
            let reason = format!(
                "load {} is already Completed (paid {} of {}); payment not recorded",
                load.load_number,
                Money::from_cents(load.paid_cents).for_people(),
                amount.for_people()
            );
            return (Outcome::Skipped, reason.into());
        }
        let mut moves = Vec::new();
        if load.status == LoadStatus::Invoiced {
            let cause = Cause { suffix: self.implied.clone(), ..self.cause(row) };
            self.plan.history.push(HistoryRow {
                load_id: load.id,
                from: LoadStatus::Invoiced,
                to: LoadStatus::Financed,
                cause,
            });
            load.status = LoadStatus::Financed;
            moves.push("Invoiced → Financed");
            self.clear(load, ExceptionKind::Held);
            self.clear(load, ExceptionKind::Rejected);
        }
        load.paid_cents += paid.cents();
        load.payments.insert(key.clone());
        self.plan.payments.push(PaymentRecord { load_id: load.id, row: row.row, key });
        let (total, amount) = (Money::from_cents(load.paid_cents).for_people(), amount.for_people());
        if load.paid_cents >= load.amount_cents {
            let cause = self.cause(row);
            self.plan.history.push(HistoryRow {
                load_id: load.id,
                from: LoadStatus::Financed,
                to: LoadStatus::Completed,
                cause,
            });
            load.status = LoadStatus::Completed;
            moves.push("Financed → Completed");
            self.clear(load, ExceptionKind::ShortPaid);
        } else {
            let detail = format!("paid {total} of {amount} (last: {})", self.cause(row));
            self.raise(load, ExceptionKind::ShortPaid, detail);
            moves.push("short_paid");
        }
        (Outcome::Applied, format!("{} (paid {total} of {amount})", moves.join(", ")).into())
    }

    /// The plan: each load's move from its status before the file to its status after, and the
    /// last word per (load, exception kind) — a flag raised and cleared in one file is cleared.
    fn finish(mut self, loads: &[ReportLoad], initial: Vec<LoadStatus>) -> ReportPlan {
        for (load, from) in loads.iter().zip(initial) {
            if load.status != from {
                self.plan.moves.push(StatusMove { load_id: load.id, from, to: load.status });
            }
        }
        let mut last: HashMap<(i64, ExceptionKind), Option<String>> = HashMap::new();
        let mut order = Vec::new();
        for (key, detail) in self.exceptions {
            if last.insert(key, detail).is_none() {
                order.push(key);
            }
        }
        let mut seen = HashSet::new();
        for key in order {
            if !seen.insert(key) {
                continue;
            }
            match last.remove(&key) {
                Some(Some(detail)) => self.plan.raise.push((key.0, key.1, detail)),
                Some(None) => self.plan.clear.push(key),
                None => {}
            }
        }
        self.plan
    }
}

/// The reason of a payment-report row that carries no payment (only other ledger events).
const NO_PAYMENT: &str = "no payment on this row";

impl Planner<'_, '_> {
    /// The invariant of docs/money.md on a purchase: amount = advance + fee + reserve held. Checked
    /// when the row gives an advance and a fee or a reserve (the one it does not give counts as
    /// zero; an advance alone leaves fee and reserve unknown); a difference raises
    /// `ledger_mismatch` with both figures.
    fn check_figures(&mut self, row: &ReportRow, load: &mut ReportLoad) {
        let figures = KnownFigures {
            advance: row.advance.map(Money::cents),
            fee: row.fee.map(Money::cents),
            reserve: row.reserve.map(Money::cents),
        };
        match figures.check(load.amount_cents, self.cause(row)) {
            Invariant::Unknown => {}
            Invariant::Holds => self.clear(load, ExceptionKind::LedgerMismatch),
            Invariant::Broken(detail) => self.raise(load, ExceptionKind::LedgerMismatch, detail),
        }
    }

    /// The ledger events a row carries besides its purchase or payment (docs/money.md): a reserve
    /// released, a chargeback, and in a payment report a fee deducted. Recorded unless the row
    /// was rejected; a chargeback also raises `charged_back` (the load keeps its status: the
    /// pipeline moves forward only, docs/design.md §2).
    fn ledger_events(
        &mut self,
        kind: ReportKind,
        row: &ReportRow,
        load: &mut ReportLoad,
        decision: Decision,
    ) -> Decision {
        let fee = if kind == ReportKind::Payment { row.fee } else { None };
        let events = [
            (LedgerKind::ReserveReleased, row.reserve_release),
            (LedgerKind::Chargeback, row.chargeback),
            (LedgerKind::Fee, fee),
        ];
        if decision.0 == Outcome::Rejected || events.iter().all(|(_, a)| a.is_none_or(|a| a.cents() == 0)) {
            return decision;
        }
        let date = match kind {
            ReportKind::Purchase => row.purchase_date,
            ReportKind::Payment => row.payment_date,
        };
        let event_date = date_text(date).unwrap_or_default();
        let source = self.cause(row).to_string();
        let mut said = Vec::new();
        for (ledger_kind, amount) in events {
            let Some(amount) = amount.filter(|a| a.cents() != 0) else { continue };
            self.plan.ledger.push(LedgerRecord {
                load_id: load.id,
                row: row.row,
                kind: ledger_kind,
                amount_cents: amount.cents(),
                event_date: event_date.clone(),
                source: source.clone(),
            });
            said.push(format!("{} {}", ledger_kind.as_str().replace('_', " "), amount.for_people()));
            if ledger_kind == LedgerKind::Chargeback {
                let detail = format!(
                    "the factor charged back {} ({source}): the invoice is the carrier's to collect again",
                    amount.for_people()
                );
                self.raise(load, ExceptionKind::ChargedBack, detail);
            }
        }
        let said = said.join(", ");
        let reason = match decision {
            (Outcome::Skipped, reason) if reason == NO_PAYMENT => format!("recorded {said}"),
            (_, reason) => format!("{reason}; recorded {said}"),
        };
        (Outcome::Applied, reason.into())
    }
}

/// Texts repeated from row to row (a purchase date, a schedule number), kept once.
#[derive(Default)]
struct Repeated<'r> {
    date: Option<(NaiveDate, Arc<str>)>,
    schedule: Option<(&'r str, Arc<str>)>,
}

/// The text for `key`: the last one again when `key` is the last key, else a new one.
fn reuse<K: PartialEq + Copy>(last: &mut Option<(K, Arc<str>)>, key: K, text: impl FnOnce(K) -> Arc<str>) -> Arc<str> {
    match last {
        Some((known, shared)) if *known == key => shared.clone(),
        _ => last.insert((key, text(key))).1.clone(),
    }
}

fn purchase_record<'r>(load_id: i64, row: &'r ReportRow, repeated: &mut Repeated<'r>) -> PurchaseRecord {
    PurchaseRecord {
        load_id,
        row: row.row,
        amount_cents: row.amount.map(Money::cents),
        advance_cents: row.advance.map(Money::cents),
        fee_cents: row.fee.map(Money::cents),
        reserve_cents: row.reserve.map(Money::cents),
        purchase_date: row.purchase_date.map(|d| reuse(&mut repeated.date, d, |d| d.to_string().into())),
        schedule_number: row.schedule_number.as_deref().map(|n| reuse(&mut repeated.schedule, n, Arc::from)),
        factor_status: row.factor_status.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(id: i64, status: LoadStatus, provider: Option<&str>) -> ReportLoad {
        ReportLoad {
            id,
            load_number: format!("L-{id}").into(),
            invoice_number: Some(format!("INV-{id:04}").into()),
            subsidiary: "acme".into(),
            status,
            amount_cents: 100_000,
            provider: provider.map(Arc::from),
            purchased: false,
            paid_cents: 0,
            payments: HashSet::new(),
            open_exceptions: HashSet::new(),
        }
    }

    fn row(n: usize, invoice: &str) -> ReportRow {
        ReportRow {
            row: n,
            invoice_number: Some(invoice.into()),
            load_number: None,
            amount: None,
            advance: None,
            fee: None,
            reserve: None,
            purchase_date: None,
            schedule_number: None,
            factor_status: None,
            paid_amount: None,
            payment_date: None,
            payment_reference: None,
            reserve_release: None,
            chargeback: None,
        }
    }

    fn otr() -> StatusMap {
        StatusMap::new("otr", &Default::default())
    }

    #[test]
    fn status_outcomes_move_loads_forward_only() {
        use LoadStatus::*;
        assert_eq!(status_moves(Invoiced, StatusOutcome::Purchased), vec![(Invoiced, Financed)]);
        assert_eq!(status_moves(Invoiced, StatusOutcome::Paid), vec![(Invoiced, Financed), (Financed, Completed)]);
        assert_eq!(status_moves(Financed, StatusOutcome::Paid), vec![(Financed, Completed)]);
        assert!(status_moves(Financed, StatusOutcome::Purchased).is_empty());
        assert!(status_moves(Completed, StatusOutcome::Paid).is_empty());
        assert!(status_moves(Invoiced, StatusOutcome::Held).is_empty());
        assert!(status_moves(Invoiced, StatusOutcome::NoChange).is_empty());
    }

    #[test]
    fn a_row_naming_a_voided_invoice_is_rejected_and_not_matched_by_its_load_number() {
        let mut current = load(1, LoadStatus::Invoiced, Some("otr"));
        current.invoice_number = Some(Arc::from("INV-0009"));
        let mut r = row(2, "INV-0001");
        r.load_number = Some(current.load_number.to_string());
        let voided = vec![crate::domain::report::VoidedInvoice {
            invoice_number: "INV-0001".into(),
            load_number: current.load_number.to_string(),
        }];
        let plan =
            plan(ReportKind::Purchase, "otr", "p.csv", &[r], ChunkLoads { loads: vec![current], voided }, &otr());
        assert_eq!(plan.outcomes[0].outcome, Outcome::Rejected);
        assert!(plan.outcomes[0].reason.contains("invoice INV-0001 of load"), "{}", plan.outcomes[0].reason);
        assert!(plan.outcomes[0].reason.contains("was voided"), "{}", plan.outcomes[0].reason);
        assert!(plan.moves.is_empty(), "the load's new invoice is not moved by a row about the void one");
    }

    #[test]
    fn purchase_rows_read_the_factor_status_through_the_map() {
        let loads: Vec<ReportLoad> = (1..=6).map(|id| load(id, LoadStatus::Invoiced, Some("otr"))).collect();
        let words = ["Not Funded", "Approved", "Pending", "Paid", "OTR Follow-Up", "Waiting on broker approval"];
        let rows: Vec<ReportRow> = words
            .iter()
            .enumerate()
            .map(|(i, word)| {
                let mut r = row(i + 2, &format!("INV-{:04}", i + 1));
                r.factor_status = Some(word.to_string());
                r
            })
            .collect();
        let plan = plan(ReportKind::Purchase, "otr", "p.csv", &rows, ChunkLoads { loads, voided: Vec::new() }, &otr());
        let outcomes: Vec<Outcome> = plan.outcomes.iter().map(|o| o.outcome).collect();
        use Outcome::*;
        assert_eq!(outcomes, vec![Rejected, Applied, Skipped, Applied, Applied, Rejected]);
        let moves: Vec<(i64, LoadStatus)> = plan.moves.iter().map(|m| (m.load_id, m.to)).collect();
        assert_eq!(moves, vec![(2, LoadStatus::Financed), (4, LoadStatus::Completed)]);
        let raised: Vec<(i64, ExceptionKind)> = plan.raise.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(
            raised,
            vec![
                (1, ExceptionKind::UnrecognisedStatus),
                (5, ExceptionKind::Held),
                (6, ExceptionKind::UnrecognisedStatus)
            ]
        );
        assert!(plan.raise[0].2.contains("`Not Funded`"), "{}", plan.raise[0].2);
        assert!(plan.outcomes[0].reason.contains("not in otr's status map"), "{}", plan.outcomes[0].reason);
        assert_eq!(plan.purchases.len(), 2, "a purchase is recorded only where the factor bought the invoice");
    }

    #[test]
    fn purchase_rows_follow_the_rules() {
        let loads = vec![
            load(1, LoadStatus::Invoiced, Some("triumph")),
            load(2, LoadStatus::Queued, None),
            load(3, LoadStatus::Invoiced, Some("rts")),
            load(4, LoadStatus::Invoiced, Some("triumph")),
        ];
        let mut held = row(5, "INV-0004");
        held.factor_status = Some("Hold".into());
        let rows = vec![
            row(2, "INV-0001"),
            row(3, "INV-0002"),
            row(4, "INV-0003"),
            held,
            row(6, "INV-9999"),
            row(7, "INV-0001"),
        ];
        let plan = plan(
            ReportKind::Purchase,
            "triumph",
            "p.csv",
            &rows,
            ChunkLoads { loads, voided: Vec::new() },
            &StatusMap::new("triumph", &Default::default()),
        );
        let outcomes: Vec<Outcome> = plan.outcomes.iter().map(|o| o.outcome).collect();
        use Outcome::*;
        assert_eq!(outcomes, vec![Applied, Rejected, Rejected, Applied, Rejected, Skipped]);
        assert_eq!(plan.moves.len(), 1);
        assert_eq!((plan.moves[0].load_id, plan.moves[0].to), (1, LoadStatus::Financed));
        assert_eq!(plan.raise.len(), 1);
        assert_eq!(plan.raise[0].1, ExceptionKind::Held);
        assert!(plan.outcomes[2].reason.contains("submitted to rts"), "{}", plan.outcomes[2].reason);
    }

    #[test]
    fn payments_add_up_and_an_invoiced_load_moves_twice() {
        let loads = vec![load(1, LoadStatus::Invoiced, Some("rts"))];
        let mut first = row(2, "INV-0001");
        first.paid_amount = Some(Money::from_cents(40_000));
        first.payment_reference = Some("CHK-1".into());
        let mut second = first.clone();
        second.row = 3;
        second.paid_amount = Some(Money::from_cents(60_000));
        second.payment_reference = Some("CHK-2".into());
        let mut again = first.clone();
        again.row = 4;
        let plan = plan(
            ReportKind::Payment,
            "rts",
            "pay.csv",
            &[first, second, again],
            ChunkLoads { loads, voided: Vec::new() },
            &StatusMap::new("rts", &Default::default()),
        );
        let outcomes: Vec<Outcome> = plan.outcomes.iter().map(|o| o.outcome).collect();
        assert_eq!(outcomes, vec![Outcome::Applied, Outcome::Applied, Outcome::Skipped]);
        assert_eq!(plan.history.len(), 2);
        assert_eq!(plan.moves.len(), 1);
        assert_eq!((plan.moves[0].from, plan.moves[0].to), (LoadStatus::Invoiced, LoadStatus::Completed));
        assert_eq!(plan.payments.len(), 2);
        assert!(plan.raise.is_empty(), "short_paid raised then cleared in the same file: {:?}", plan.raise);
    }
}
