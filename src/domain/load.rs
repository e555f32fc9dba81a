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
    /// The bill-to block when it is not the customer's name: name and (multi-line) address.
    pub bill_to_name: Option<String>,
    pub bill_to_address: Option<String>,
    /// `YYYY-MM-DD` or an RFC 3339 date-time, normalised at parse time.
    pub pickup_date: Option<String>,
    pub shipper_name: Option<String>,
    pub consignee_name: Option<String>,
    pub bol_number: Option<String>,
    /// Payment terms in days (the due date is the invoice date plus these); set at import from
    /// the row or the subsidiary's `terms_days`. `None` for loads imported before terms existed:
    /// the subsidiary's terms apply.
    pub terms_days: Option<i32>,
}

/// One line item of an invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadLine {
    pub description: String,
    pub amount: Money,
}

/// What an import row says beyond the load's own fields: its line items and the documents
/// recorded in `load_documents` (docs/design.md §7). Printed on the invoice or merged into the
/// packet, so frozen once Queued like the invoiced fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadExtras {
    /// In order; empty means one line "Freight charges" of the amount.
    pub lines: Vec<LoadLine>,
    /// Paths relative to the documents folder.
    pub bol: Option<String>,
    pub lumper_receipt: Option<String>,
    /// The other documents an import recorded (those of `loads docs` are not the import's to
    /// change).
    pub other_documents: Vec<String>,
}

impl LoadExtras {
    /// The lines' sum, or `None` if it overflows.
    pub fn lines_total(&self) -> Option<Money> {
        self.lines.iter().try_fold(Money::ZERO, |sum, line| sum.checked_add(line.amount))
    }

    /// Every part that differs, old and new as text (all frozen once Queued).
    pub fn changes_to(&self, new: &LoadExtras) -> Vec<FieldChange> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let lines = |l: &[LoadLine]| {
            l.iter().map(|line| format!("{} {}", line.description, line.amount)).collect::<Vec<_>>().join("; ")
        };
        let candidates = [
            ("lines", lines(&self.lines), lines(&new.lines)),
            ("bol", opt(&self.bol), opt(&new.bol)),
            ("lumper_receipt", opt(&self.lumper_receipt), opt(&new.lumper_receipt)),
            ("other_documents", self.other_documents.join(";"), new.other_documents.join(";")),
        ];
        candidates
            .into_iter()
            .filter(|(_, old, new)| old != new)
            .map(|(field, old, new)| FieldChange { field, old, new, invoiced: true })
            .collect()
    }
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
    pub extras: LoadExtras,
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
            bill_to_name: pick("bill_to_name", &new.bill_to_name, &stored.bill_to_name),
            bill_to_address: pick("bill_to_address", &new.bill_to_address, &stored.bill_to_address),
            pickup_date: pick("pickup_date", &new.pickup_date, &stored.pickup_date),
            shipper_name: pick("shipper_name", &new.shipper_name, &stored.shipper_name),
            consignee_name: pick("consignee_name", &new.consignee_name, &stored.consignee_name),
            bol_number: pick("bol_number", &new.bol_number, &stored.bol_number),
            terms_days: if self.carries("terms_days") { new.terms_days } else { stored.terms_days },
        }
    }

    /// The lines and documents the load has after this row, as [`Self::fields_over`].
    pub fn extras_over(&self, stored: &LoadExtras) -> LoadExtras {
        let new = &self.extras;
        LoadExtras {
            lines: if self.carries("lines") { new.lines.clone() } else { stored.lines.clone() },
            bol: if self.carries("bol") { new.bol.clone() } else { stored.bol.clone() },
            lumper_receipt: if self.carries("lumper_receipt") {
                new.lumper_receipt.clone()
            } else {
                stored.lumper_receipt.clone()
            },
            other_documents: if self.carries("other_documents") {
                new.other_documents.clone()
            } else {
                stored.other_documents.clone()
            },
        }
    }
}

/// The changeable part of a stored load, as the import rule needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLoad {
    pub status: LoadStatus,
    pub invoice_number: Option<String>,
    pub fields: LoadFields,
    pub extras: LoadExtras,
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
        let terms = |v: Option<i32>| v.map(|d| d.to_string()).unwrap_or_default();
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
            ("bill_to_name", opt(&self.bill_to_name), opt(&new.bill_to_name), true),
            ("bill_to_address", opt(&self.bill_to_address), opt(&new.bill_to_address), true),
            ("pickup_date", opt(&self.pickup_date), opt(&new.pickup_date), true),
            ("shipper_name", opt(&self.shipper_name), opt(&new.shipper_name), true),
            ("consignee_name", opt(&self.consignee_name), opt(&new.consignee_name), true),
            ("bol_number", opt(&self.bol_number), opt(&new.bol_number), true),
            ("terms_days", terms(self.terms_days), terms(new.terms_days), true),
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
    let new_fields = input.fields_over(&existing.fields);
    let new_extras = input.extras_over(&existing.extras);
    let mut changes = existing.fields.changes_to(&new_fields);
    changes.extend(existing.extras.changes_to(&new_extras));
    if let Some(refusal) = lines_disagree(new_fields.amount, &new_extras) {
        return ImportDecision::Refuse(refusal);
    }
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

/// Why an amount and its lines cannot stand together ("amount $2,450.00 but the lines add up to
/// $2,400.00"), or `None` when there are no lines or they add up to the amount to the cent.
pub fn lines_disagree(amount: Money, extras: &LoadExtras) -> Option<String> {
    if extras.lines.is_empty() {
        return None;
    }
    match extras.lines_total() {
        Some(total) if total == amount => None,
        Some(total) => Some(format!("amount {} but the lines add up to {}", amount.for_people(), total.for_people())),
        None => Some("the lines add up to more than an amount can hold".to_string()),
    }
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
            bill_to_name: None,
            bill_to_address: None,
            pickup_date: None,
            shipper_name: None,
            consignee_name: None,
            bol_number: None,
            terms_days: Some(30),
        }
    }

    fn input(fields: LoadFields, status: LoadStatus) -> LoadInput {
        LoadInput {
            load_number: "L-1".into(),
            customer: Customer { id: "BRK-1".into(), name: "Blue".into(), mc: None, dot: None },
            status,
            fields,
            extras: LoadExtras::default(),
            absent: BTreeSet::new(),
        }
    }

    fn stored(status: LoadStatus, fields: LoadFields) -> StoredLoad {
        StoredLoad { status, invoice_number: Some("AE-7".into()), fields, extras: LoadExtras::default() }
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

    #[test]
    fn lines_are_an_invoiced_field_and_must_agree_with_the_amount() {
        let lines = |cents: &[i64]| LoadExtras {
            lines: cents
                .iter()
                .map(|c| LoadLine { description: "Linehaul".into(), amount: Money::from_cents(*c) })
                .collect(),
            ..LoadExtras::default()
        };
        let mut stored_load = stored(LoadStatus::Released, fields());
        stored_load.extras = lines(&[200_000, 45_000]);
        // A row without lines keeps the stored ones, so its amount must match them.
        let mut row = input(fields(), LoadStatus::Released);
        row.absent.insert("lines");
        assert_eq!(decide_import(Some(&stored_load), &row), ImportDecision::Unchanged);
        row.fields.amount = Money::from_cents(250_000);
        let ImportDecision::Refuse(reason) = decide_import(Some(&stored_load), &row) else { panic!("refused") };
        assert_eq!(reason, "amount $2,500.00 but the lines add up to $2,450.00");
        // New lines while Queued are refused like any invoiced field.
        stored_load.status = LoadStatus::Queued;
        let mut row = input(fields(), LoadStatus::Released);
        row.extras = lines(&[245_000]);
        let ImportDecision::Refuse(reason) = decide_import(Some(&stored_load), &row) else { panic!("refused") };
        assert!(reason.contains("can no longer change (lines"), "{reason}");
    }
}
