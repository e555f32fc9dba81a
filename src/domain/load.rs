//! A load as factord stores it, and the import rule of docs/design.md §7: what a re-import of a load
//! may change, decided here as a pure function so that both store backends apply the same rule.

use std::collections::BTreeSet;
use std::fmt;

use super::{LoadStatus, Money};

/// The fields of a load that come from the TMS export. Customer name and numbers are not here:
/// they belong to the customer record, which every row of that customer updates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadFields {
    pub subsidiary: String,
    pub customer_id: String,
    pub amount: Money,
    /// `YYYY-MM-DD` or an RFC 3339 date-time, normalised at parse time.
    pub delivered_at: Option<String>,
    /// Paths relative to the documents folder.
    pub pod: Option<String>,
    pub rate_confirmation: Option<String>,
    pub po_number: Option<String>,
    /// The provider's reference number (Wex FleetOne FTP); may arrive after invoicing.
    pub factor_reference: Option<String>,
    /// Truck number (TAFS); may arrive after invoicing.
    pub truck: Option<String>,
    pub pickup_city: Option<String>,
    pub pickup_state: Option<String>,
    pub delivery_city: Option<String>,
    pub delivery_state: Option<String>,
}

/// The customer (the factor's debtor) as named by a load row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub mc: Option<String>,
    pub dot: Option<String>,
}

/// One validated row of a load export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadInput {
    pub load_number: String,
    pub customer: Customer,
    /// `Released` or `Delivered` (not yet released); `Released` when the row says nothing.
    pub status: LoadStatus,
    pub fields: LoadFields,
    /// Optional columns the row does not carry: absent from the CSV header, or keys absent from
    /// the JSON object. On re-import the stored value of each stands (an empty cell or `null`
    /// is carried, and clears the field). `status` here means the stored status stands.
    pub absent: BTreeSet<&'static str>,
}

impl LoadInput {
    /// Whether the row carries `column` (a column absent from the file is not carried).
    pub fn carries(&self, column: &str) -> bool {
        !self.absent.contains(column)
    }

    /// The fields the load has after this row: the row's, with the stored value for every
    /// column the row does not carry.
    pub fn fields_over(&self, stored: &LoadFields) -> LoadFields {
        let new = &self.fields;
        let pick = |column: &str, new: &Option<String>, old: &Option<String>| {
            if self.carries(column) { new.clone() } else { old.clone() }
        };
        LoadFields {
            subsidiary: new.subsidiary.clone(),
            customer_id: new.customer_id.clone(),
            amount: new.amount,
            delivered_at: pick("delivered_at", &new.delivered_at, &stored.delivered_at),
            pod: pick("pod", &new.pod, &stored.pod),
            rate_confirmation: pick("rate_confirmation", &new.rate_confirmation, &stored.rate_confirmation),
            po_number: pick("po_number", &new.po_number, &stored.po_number),
            factor_reference: pick("factor_reference", &new.factor_reference, &stored.factor_reference),
            truck: pick("truck", &new.truck, &stored.truck),
            pickup_city: pick("pickup_city", &new.pickup_city, &stored.pickup_city),
            pickup_state: pick("pickup_state", &new.pickup_state, &stored.pickup_state),
            delivery_city: pick("delivery_city", &new.delivery_city, &stored.delivery_city),
            delivery_state: pick("delivery_state", &new.delivery_state, &stored.delivery_state),
        }
    }
}

/// The changeable part of a stored load, as the import rule needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLoad {
    pub status: LoadStatus,
    pub invoice_number: Option<String>,
    pub fields: LoadFields,
}

/// One field that differs between the stored load and an import row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    pub field: &'static str,
    pub old: String,
    pub new: String,
    /// Printed on the invoice, so frozen once the invoice exists.
    pub invoiced: bool,
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &str| if v.is_empty() { "(empty)".to_string() } else { v.to_string() };
        write!(f, "{} {} → {}", self.field, show(&self.old), show(&self.new))
    }
}

/// What an import row does to the stored state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportDecision {
    /// A new load.
    Insert,
    /// Update the load's fields and, when `release` is set, move it Delivered → Released.
    Update { changes: Vec<FieldChange>, release: bool },
    /// Nothing differs.
    Unchanged,
    /// The row asks for a change the rules forbid; nothing of it is applied.
    Refuse(String),
}

impl LoadFields {
    /// "Dallas, TX", or `None` when the export named no pickup place.
    pub fn pickup(&self) -> Option<String> {
        place(&self.pickup_city, &self.pickup_state)
    }

    /// "Memphis, TN", or `None` when the export named no delivery place.
    pub fn delivery(&self) -> Option<String> {
        place(&self.delivery_city, &self.delivery_state)
    }

    /// Every field that differs, old and new as text.
    pub fn changes_to(&self, new: &LoadFields) -> Vec<FieldChange> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let candidates = [
            ("subsidiary", self.subsidiary.clone(), new.subsidiary.clone(), true),
            ("customer_id", self.customer_id.clone(), new.customer_id.clone(), true),
            ("amount", self.amount.to_string(), new.amount.to_string(), true),
            ("delivered_at", opt(&self.delivered_at), opt(&new.delivered_at), true),
            ("pod", opt(&self.pod), opt(&new.pod), true),
            ("rate_confirmation", opt(&self.rate_confirmation), opt(&new.rate_confirmation), true),
            ("po_number", opt(&self.po_number), opt(&new.po_number), true),
            ("pickup_city", opt(&self.pickup_city), opt(&new.pickup_city), true),
            ("pickup_state", opt(&self.pickup_state), opt(&new.pickup_state), true),
            ("delivery_city", opt(&self.delivery_city), opt(&new.delivery_city), true),
            ("delivery_state", opt(&self.delivery_state), opt(&new.delivery_state), true),
            ("factor_reference", opt(&self.factor_reference), opt(&new.factor_reference), false),
            ("truck", opt(&self.truck), opt(&new.truck), false),
        ];
        candidates
            .into_iter()
            .filter(|(_, old, new, _)| old != new)
            .map(|(field, old, new, invoiced)| FieldChange { field, old, new, invoiced })
            .collect()
    }
}

fn place(city: &Option<String>, state: &Option<String>) -> Option<String> {
    let parts: Vec<&str> = [city.as_deref(), state.as_deref()].into_iter().flatten().collect();
    if parts.is_empty() { None } else { Some(parts.join(", ")) }
}

/// The rule of docs/design.md §7: a load may be updated freely until it is Queued; from then on the
/// fields printed on the invoice are frozen (only the provider reference and the truck, which
/// a factor may need before the batch goes, can still arrive); once Invoiced nothing changes.
/// Statuses only move forward: an import can release a Delivered load, never take one back.
pub fn decide_import(existing: Option<&StoredLoad>, input: &LoadInput) -> ImportDecision {
    let Some(existing) = existing else {
        return ImportDecision::Insert;
    };
    // A column the row does not carry is no change: its stored value stands.
    let changes = existing.fields.changes_to(&input.fields_over(&existing.fields));
    let describe = |changes: &[&FieldChange]| changes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let invoice = existing.invoice_number.as_deref().map(|n| format!(", invoice {n}")).unwrap_or_default();

    if existing.status >= LoadStatus::Invoiced && !changes.is_empty() {
        let all: Vec<&FieldChange> = changes.iter().collect();
        return ImportDecision::Refuse(format!(
            "load is {}{invoice}; it can no longer change ({})",
            existing.status,
            describe(&all)
        ));
    }
    if existing.status == LoadStatus::Queued {
        let frozen: Vec<&FieldChange> = changes.iter().filter(|c| c.invoiced).collect();
        if !frozen.is_empty() {
            return ImportDecision::Refuse(format!(
                "load is Queued{invoice}; fields printed on the invoice can no longer change ({})",
                describe(&frozen)
            ));
        }
    }
    // Without a status column the stored status stands.
    let status_given = input.carries("status");
    if status_given && existing.status == LoadStatus::Released && input.status == LoadStatus::Delivered {
        return ImportDecision::Refuse(
            "load is already Released; an import cannot move it back to Delivered".to_string(),
        );
    }
    let release = status_given && existing.status == LoadStatus::Delivered && input.status == LoadStatus::Released;
    if changes.is_empty() && !release { ImportDecision::Unchanged } else { ImportDecision::Update { changes, release } }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> LoadFields {
        LoadFields {
            subsidiary: "acme-east".into(),
            customer_id: "BRK-1".into(),
            amount: Money::from_cents(245_000),
            delivered_at: Some("2026-11-20".into()),
            pod: None,
            rate_confirmation: Some("rc.pdf".into()),
            po_number: None,
            factor_reference: None,
            truck: None,
            pickup_city: None,
            pickup_state: None,
            delivery_city: None,
            delivery_state: None,
        }
    }

    fn input(fields: LoadFields, status: LoadStatus) -> LoadInput {
        LoadInput {
            load_number: "L-1".into(),
            customer: Customer { id: "BRK-1".into(), name: "Blue".into(), mc: None, dot: None },
            status,
            fields,
            absent: BTreeSet::new(),
        }
    }

    fn stored(status: LoadStatus, fields: LoadFields) -> StoredLoad {
        StoredLoad { status, invoice_number: Some("AE-7".into()), fields }
    }

    #[test]
    fn new_load_is_inserted_and_same_content_is_unchanged() {
        let row = input(fields(), LoadStatus::Released);
        assert_eq!(decide_import(None, &row), ImportDecision::Insert);
        let same = stored(LoadStatus::Released, fields());
        assert_eq!(decide_import(Some(&same), &row), ImportDecision::Unchanged);
    }

    #[test]
    fn released_load_takes_a_late_pod() {
        let mut newer = fields();
        newer.pod = Some("pod.pdf".into());
        let decision =
            decide_import(Some(&stored(LoadStatus::Released, fields())), &input(newer, LoadStatus::Released));
        let ImportDecision::Update { changes, release } = decision else {
            panic!("expected an update, got {decision:?}");
        };
        assert!(!release);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "pod");
    }

    #[test]
    fn queued_load_refuses_invoiced_fields_but_takes_a_reference() {
        let mut newer = fields();
        newer.amount = Money::from_cents(250_000);
        let decision = decide_import(Some(&stored(LoadStatus::Queued, fields())), &input(newer, LoadStatus::Released));
        let ImportDecision::Refuse(reason) = decision else { panic!("expected refusal") };
        assert!(reason.contains("amount 2450.00 → 2500.00"), "{reason}");
        assert!(reason.contains("AE-7"), "{reason}");

        let mut newer = fields();
        newer.factor_reference = Some("WEX-1".into());
        assert!(matches!(
            decide_import(Some(&stored(LoadStatus::Queued, fields())), &input(newer.clone(), LoadStatus::Released)),
            ImportDecision::Update { .. }
        ));
        assert!(matches!(
            decide_import(Some(&stored(LoadStatus::Invoiced, fields())), &input(newer, LoadStatus::Released)),
            ImportDecision::Refuse(_)
        ));
    }

    #[test]
    fn statuses_only_move_forward_by_import() {
        let release =
            decide_import(Some(&stored(LoadStatus::Delivered, fields())), &input(fields(), LoadStatus::Released));
        assert_eq!(release, ImportDecision::Update { changes: vec![], release: true });
        assert!(matches!(
            decide_import(Some(&stored(LoadStatus::Released, fields())), &input(fields(), LoadStatus::Delivered)),
            ImportDecision::Refuse(_)
        ));
        // A TMS knows nothing of factoring states: its "Released" on a Financed load is no change.
        assert_eq!(
            decide_import(Some(&stored(LoadStatus::Financed, fields())), &input(fields(), LoadStatus::Released)),
            ImportDecision::Unchanged
        );
    }

    #[test]
    fn a_column_the_row_does_not_carry_keeps_the_stored_value() {
        let mut stored_fields = fields();
        stored_fields.po_number = Some("PO-1".into());
        stored_fields.pickup_city = Some("Dallas".into());
        let mut row_fields = fields();
        row_fields.pod = Some("pod.pdf".into());
        let mut row = input(row_fields, LoadStatus::Released);
        row.absent = ["po_number", "pickup_city"].into_iter().collect();
        // The absent fields are no change, the new POD is one.
        let decision = decide_import(Some(&stored(LoadStatus::Released, stored_fields.clone())), &row);
        let ImportDecision::Update { changes, .. } = decision else { panic!("expected an update, got {decision:?}") };
        assert_eq!(changes.iter().map(|c| c.field).collect::<Vec<_>>(), ["pod"]);
        assert_eq!(row.fields_over(&stored_fields).po_number.as_deref(), Some("PO-1"));
        // Once Queued, absent invoiced fields are still no change.
        row.fields.pod = None;
        let decision = decide_import(Some(&stored(LoadStatus::Queued, stored_fields.clone())), &row);
        assert_eq!(decision, ImportDecision::Unchanged);

        // Carried and empty clears: refused once Queued, as any change to an invoiced field.
        row.absent.clear();
        row.fields.pod = None;
        let decision = decide_import(Some(&stored(LoadStatus::Queued, stored_fields.clone())), &row);
        let ImportDecision::Refuse(reason) = decision else { panic!("expected refusal, got {decision:?}") };
        assert!(reason.contains("po_number PO-1 → (empty)"), "{reason}");

        // No status column: a Delivered load stays Delivered, a Released one is not refused.
        let mut row = input(fields(), LoadStatus::Released);
        row.absent.insert("status");
        assert_eq!(decide_import(Some(&stored(LoadStatus::Delivered, fields())), &row), ImportDecision::Unchanged);
        row.status = LoadStatus::Delivered;
        assert_eq!(decide_import(Some(&stored(LoadStatus::Released, fields())), &row), ImportDecision::Unchanged);
    }
}
