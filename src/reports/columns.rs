//! Header matching (docs/design.md §8): a column is recognised by its header name, ignoring case,
//! spaces, `_` and punctuation, against the built-in aliases of each field plus the
//! provider's own (`[provider.<id>.reports.purchase]` / `.payment`). Common abbreviations
//! (`Inv`, `No`/`Num`/`#`, `Amt`, `Pmt`, `Ref`, `Dt`, …) are read as their words, in headers
//! and aliases alike, in one place ([`tokens`]). The header row is found by matching, so a
//! title or a date line above it does no harm.

use std::collections::BTreeMap;

use super::ReportKind;
use super::read::SheetRow;
use crate::config::ReportSettings;

/// A field of a report row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    InvoiceNumber,
    LoadNumber,
    Amount,
    Advance,
    Fee,
    Reserve,
    PurchaseDate,
    ScheduleNumber,
    FactorStatus,
    PaidAmount,
    PaymentDate,
    PaymentReference,
    /// Reserve paid out to the carrier (docs/money.md).
    ReserveRelease,
    /// The factor sells the invoice back (recourse).
    Chargeback,
}

impl Field {
    /// The field's name in config and messages.
    pub fn name(self) -> &'static str {
        match self {
            Field::InvoiceNumber => "invoice_number",
            Field::LoadNumber => "load_number",
            Field::Amount => "amount",
            Field::Advance => "advance",
            Field::Fee => "fee",
            Field::Reserve => "reserve",
            Field::PurchaseDate => "purchase_date",
            Field::ScheduleNumber => "schedule_number",
            Field::FactorStatus => "factor_status",
            Field::PaidAmount => "paid_amount",
            Field::PaymentDate => "payment_date",
            Field::PaymentReference => "payment_reference",
            Field::ReserveRelease => "reserve_release",
            Field::Chargeback => "chargeback",
        }
    }

    /// The built-in aliases (docs/design.md §8).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::InvoiceNumber => {
                &["invoice number", "invoice #", "invoice no", "inv #", "invoice", "client invoice #", "invoiceno"]
            }
            Field::LoadNumber => &["load number", "load #", "load", "load id"],
            Field::Amount => &["invoice amount", "face amount", "face value", "gross amount", "amount"],
            Field::Advance => &["advance", "advance amount", "funded amount", "amount funded", "purchase amount"],
            Field::Fee => &["fee", "fees", "factoring fee", "discount", "discount fee"],
            Field::Reserve => &["reserve", "reserve amount", "escrow", "rebate"],
            Field::PurchaseDate => &["purchase date", "funded date", "fund date", "date funded"],
            Field::ScheduleNumber => &["schedule", "schedule #", "schedule number", "batch", "batch #"],
            Field::FactorStatus => &["status", "invoice status"],
            Field::PaidAmount => &["paid amount", "amount paid", "payment amount", "payment", "collected"],
            Field::PaymentDate => &["payment date", "paid date", "date paid", "posted date"],
            Field::PaymentReference => {
                &["check #", "check number", "check reference", "reference", "ach reference", "payment reference"]
            }
            Field::ReserveRelease => &[
                "reserve release",
                "reserve released",
                "reserve paid",
                "rebate paid",
                "rebate released",
                "reserve payment",
                "released reserve",
            ],
            Field::Chargeback => {
                &["chargeback", "charge back", "charged back", "chargeback amount", "recourse", "repurchase"]
            }
        }
    }

    pub fn for_kind(kind: ReportKind) -> &'static [Field] {
        match kind {
            ReportKind::Purchase => &[
                Field::InvoiceNumber,
                Field::LoadNumber,
                Field::Amount,
                Field::Advance,
                Field::Fee,
                Field::Reserve,
                Field::PurchaseDate,
                Field::ScheduleNumber,
                Field::FactorStatus,
                Field::ReserveRelease,
                Field::Chargeback,
            ],
            ReportKind::Payment => &[
                Field::InvoiceNumber,
                Field::LoadNumber,
                Field::PaidAmount,
                Field::PaymentDate,
                Field::PaymentReference,
                Field::Fee,
                Field::ReserveRelease,
                Field::Chargeback,
            ],
        }
    }

    /// Fields whose value is an identifier: for these a trailing number word is optional on
    /// either side (`Reference #` is `reference`, `Check` is `check #`), as a number word after
    /// an amount or a date is not (`Payment #` is no payment amount).
    fn is_identifier(self) -> bool {
        matches!(self, Field::InvoiceNumber | Field::LoadNumber | Field::ScheduleNumber | Field::PaymentReference)
    }
}

/// Abbreviations read as their word, token by token, in headers and aliases alike.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("#", "number"),
    ("no", "number"),
    ("num", "number"),
    ("nbr", "number"),
    ("nr", "number"),
    ("inv", "invoice"),
    ("invc", "invoice"),
    ("amt", "amount"),
    ("pmt", "payment"),
    ("pymt", "payment"),
    ("ref", "reference"),
    ("dt", "date"),
    ("pd", "paid"),
    ("adv", "advance"),
    ("chk", "check"),
    ("sched", "schedule"),
    ("ld", "load"),
    ("purch", "purchase"),
    ("disc", "discount"),
];

/// The words of a header: split at anything but a letter or digit and where a lower-case
/// letter meets an upper-case one (`InvNo`), with `#` a word of its own; each word in lower
/// case, an abbreviation replaced by its word.
pub fn tokens(header: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in header.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && previous_lower && !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = c.is_lowercase();
            current.extend(c.to_lowercase());
        } else {
            previous_lower = false;
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            if c == '#' {
                words.push("#".to_string());
            }
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
        .into_iter()
        .map(|word| match ABBREVIATIONS.iter().find(|(short, _)| *short == word) {
            Some((_, long)) => (*long).to_string(),
            None => word,
        })
        .collect()
}

/// A header as compared: its words joined, so `Invoice No.`, `invoice_number`, `InvNo` and
/// `Inv #` are all `invoicenumber`.
pub fn normalize(header: &str) -> String {
    tokens(header).concat()
}

/// The compared form without a trailing number word (`Check #` → `check`), for identifier
/// fields; `None` when there is none to drop or nothing would be left.
fn without_number(header: &str) -> Option<String> {
    let mut words = tokens(header);
    (words.len() > 1 && words.last().is_some_and(|w| w == "number")).then(|| {
        words.pop();
        words.concat()
    })
}

/// Which column holds which field, for one kind of report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Columns {
    pub kind: ReportKind,
    /// The header row's number in the file.
    pub header_row: usize,
    pub fields: BTreeMap<Field, usize>,
    /// Header texts that matched no field, or a field already taken by an earlier column.
    pub unused: Vec<String>,
}

impl Columns {
    pub fn get(&self, field: Field) -> Option<usize> {
        self.fields.get(&field).copied()
    }
}

fn configured(kind: ReportKind, settings: &ReportSettings, field: Field) -> impl Iterator<Item = &str> {
    let extra = match kind {
        ReportKind::Purchase => &settings.purchase_aliases,
        ReportKind::Payment => &settings.payment_aliases,
    };
    extra.get(field.name()).into_iter().flatten().map(String::as_str)
}

/// The field a header names for `kind`, or `None` when it names none or could be more than
/// one. Tried in turn, the first that names exactly one field deciding: the provider's own
/// aliases, the built-in ones, then (identifier fields only) both without a trailing number
/// word. Two fields at the same step make the header ambiguous: it is left unused, never
/// given to whichever field comes first.
pub fn field_for(header: &str, kind: ReportKind, settings: &ReportSettings) -> Option<Field> {
    let wanted = normalize(header);
    if wanted.is_empty() {
        return None;
    }
    let fields = Field::for_kind(kind);
    let exact = |aliases: &dyn Fn(Field) -> Vec<String>| -> Vec<Field> {
        fields.iter().copied().filter(|f| aliases(*f).iter().any(|a| normalize(a) == wanted)).collect()
    };
    let steps: [Vec<Field>; 3] = [
        exact(&|f| configured(kind, settings, f).map(str::to_string).collect()),
        exact(&|f| f.aliases().iter().map(|a| (*a).to_string()).collect()),
        {
            let short = without_number(header).unwrap_or_else(|| wanted.clone());
            fields
                .iter()
                .copied()
                .filter(|f| f.is_identifier())
                .filter(|f| {
                    f.aliases().iter().copied().chain(configured(kind, settings, *f)).any(|alias| {
                        let alias_short = without_number(alias).unwrap_or_else(|| normalize(alias));
                        alias_short == short
                    })
                })
                .collect()
        },
    ];
    for found in steps {
        match found.as_slice() {
            [] => continue,
            [field] => return Some(*field),
            _ => return None,
        }
    }
    None
}

/// Matches one row as a header for `kind`: each field takes the first column whose header
/// names it (see [`field_for`]).
fn match_row(row: &SheetRow, kind: ReportKind, settings: &ReportSettings) -> Columns {
    let mut fields = BTreeMap::new();
    let mut unused = Vec::new();
    for (column, cell) in row.cells.iter().enumerate() {
        let header = cell.text();
        if header.is_empty() {
            continue;
        }
        match field_for(&header, kind, settings) {
            Some(field) if !fields.contains_key(&field) => {
                fields.insert(field, column);
            }
            _ => unused.push(header),
        }
    }
    Columns { kind, header_row: row.number, fields, unused }
}

/// How many rows from the top are searched for the header.
pub const HEADER_SEARCH_ROWS: usize = 30;

/// Why no usable header was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error(
        "no header row with an invoice or load number column in the first {HEADER_SEARCH_ROWS} rows \
         (looked for {looked_for}; abbreviations such as Inv, No, Num and # are understood, and a \
         factor's own names can be added under [provider.<id>.reports])"
    )]
    NoKeyColumn { looked_for: String },
    #[error("a payment report needs a paid amount column (one of: {}); found columns: {found}", Field::PaidAmount.aliases().join(", "))]
    NoPaidAmount { found: String },
    #[error(
        "cannot tell a purchase report from a payment report by its columns ({found}); drop it into purchase/ or payment/, or use --kind"
    )]
    Ambiguous { found: String },
}

/// Finds the header row and, when `kind` is not given, the kind of report from its columns:
/// a paid amount column means payment; advance, reserve or purchase date (or a fee without a
/// paid amount) means purchase; both or neither is ambiguous and refused.
pub fn find_header(
    rows: &[SheetRow],
    kind: Option<ReportKind>,
    settings: &ReportSettings,
) -> Result<(usize, Columns), HeaderError> {
    for (index, row) in rows.iter().take(HEADER_SEARCH_ROWS).enumerate() {
        let purchase = match_row(row, ReportKind::Purchase, settings);
        let payment = match_row(row, ReportKind::Payment, settings);
        let has_key = |c: &Columns| c.get(Field::InvoiceNumber).is_some() || c.get(Field::LoadNumber).is_some();
        if !has_key(&purchase) && !has_key(&payment) {
            continue;
        }
        let found = || row.cells.iter().map(|c| c.text()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(", ");
        let columns = match kind {
            Some(ReportKind::Purchase) => purchase,
            Some(ReportKind::Payment) => {
                if payment.get(Field::PaidAmount).is_none() {
                    return Err(HeaderError::NoPaidAmount { found: found() });
                }
                payment
            }
            None => {
                let is_payment = payment.get(Field::PaidAmount).is_some();
                // A fee column alone does not make a payment report a purchase report: payment
                // reports may list an extra fee deducted.
                let is_purchase =
                    [Field::Advance, Field::Reserve, Field::PurchaseDate].iter().any(|f| purchase.get(*f).is_some())
                        || (!is_payment && purchase.get(Field::Fee).is_some());
                match (is_purchase, is_payment) {
                    (true, false) => purchase,
                    (false, true) => payment,
                    _ => return Err(HeaderError::Ambiguous { found: found() }),
                }
            }
        };
        return Ok((index, columns));
    }
    Err(HeaderError::NoKeyColumn { looked_for: looked_for(kind, settings) })
}

/// The names tried for the invoice and load number columns, the provider's own included:
/// `invoice_number: invoice number, invoice #, …; load_number: load number, …`.
fn looked_for(kind: Option<ReportKind>, settings: &ReportSettings) -> String {
    let kinds: &[ReportKind] = match kind {
        Some(kind) => &[kind][..],
        None => &[ReportKind::Purchase, ReportKind::Payment],
    };
    [Field::InvoiceNumber, Field::LoadNumber]
        .into_iter()
        .map(|field| {
            let mut names: Vec<&str> = field.aliases().to_vec();
            for kind in kinds {
                for alias in configured(*kind, settings, field) {
                    if !names.contains(&alias) {
                        names.push(alias);
                    }
                }
            }
            format!("{}: {}", field.name(), names.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::read::Cell;

    fn row(number: usize, cells: &[&str]) -> SheetRow {
        SheetRow { number, cells: cells.iter().map(|c| Cell::Text((*c).to_string())).collect() }
    }

    #[test]
    fn headers_match_ignoring_case_spaces_and_punctuation() {
        assert_eq!(normalize(" Invoice #"), "invoicenumber");
        assert_eq!(normalize("INVOICE_NO."), "invoicenumber");
        assert_eq!(normalize("InvNo"), "invoicenumber");
        assert_eq!(normalize("Inv#"), "invoicenumber");
        assert_eq!(normalize("invoiceno"), "invoiceno");
        let rows = [
            row(1, &["ACME Factoring — Purchase Report"]),
            row(2, &[""]),
            row(
                3,
                &["Inv #", "Face Value", "Funded Amount", "Discount Fee", "Escrow", "Date Funded", "Batch #", "Notes"],
            ),
        ];
        let (index, columns) = find_header(&rows, None, &ReportSettings::default()).expect("found");
        assert_eq!(index, 2);
        assert_eq!(columns.kind, ReportKind::Purchase);
        assert_eq!(columns.header_row, 3);
        assert_eq!(columns.get(Field::InvoiceNumber), Some(0));
        assert_eq!(columns.get(Field::Advance), Some(2));
        assert_eq!(columns.get(Field::ScheduleNumber), Some(6));
        assert_eq!(columns.unused, vec!["Notes".to_string()]);
    }

    #[test]
    fn ledger_columns_are_read_in_both_kinds_and_a_fee_beside_a_payment_is_an_extra_fee() {
        let settings = ReportSettings::default();
        let payment = [row(1, &["Invoice #", "Amount Paid", "Rebate Paid", "Fee", "Charge Back"])];
        let (_, columns) = find_header(&payment, None, &settings).expect("payment");
        assert_eq!(columns.kind, ReportKind::Payment, "a fee column alone does not make a purchase report");
        assert_eq!(
            (columns.get(Field::ReserveRelease), columns.get(Field::Fee), columns.get(Field::Chargeback)),
            (Some(2), Some(3), Some(4))
        );
        let purchase = [row(1, &["Invoice #", "Advance", "Reserve", "Reserve Released", "Recourse"])];
        let (_, columns) = find_header(&purchase, None, &settings).expect("purchase");
        assert_eq!(columns.kind, ReportKind::Purchase);
        assert_eq!(
            (columns.get(Field::Reserve), columns.get(Field::ReserveRelease), columns.get(Field::Chargeback)),
            (Some(2), Some(3), Some(4))
        );
        let fees_only = [row(1, &["Invoice #", "Fee"])];
        assert_eq!(find_header(&fees_only, None, &settings).expect("purchase").1.kind, ReportKind::Purchase);
    }

    #[test]
    fn the_kind_comes_from_the_columns_or_is_refused() {
        let settings = ReportSettings::default();
        let payment = [row(1, &["Load #", "Amount Paid", "Check #"])];
        assert_eq!(find_header(&payment, None, &settings).expect("payment").1.kind, ReportKind::Payment);
        let both = [row(1, &["Invoice", "Advance", "Amount Paid"])];
        assert!(matches!(find_header(&both, None, &settings), Err(HeaderError::Ambiguous { .. })));
        let neither = [row(1, &["Invoice", "Amount"])];
        assert!(matches!(find_header(&neither, None, &settings), Err(HeaderError::Ambiguous { .. })));
        assert!(find_header(&neither, Some(ReportKind::Purchase), &settings).is_ok());
        assert!(matches!(
            find_header(&neither, Some(ReportKind::Payment), &settings),
            Err(HeaderError::NoPaidAmount { .. })
        ));
        assert!(matches!(
            find_header(&[row(1, &["Customer", "Total"])], None, &settings),
            Err(HeaderError::NoKeyColumn { .. })
        ));
    }

    #[test]
    fn provider_aliases_add_to_the_built_in_ones() {
        let mut settings = ReportSettings::default();
        settings.purchase_aliases.insert("invoice_number".into(), vec!["Client Ref".into()]);
        settings.purchase_aliases.insert("advance".into(), vec!["Net Funds".into()]);
        let rows = [row(1, &["client ref", "NET FUNDS"])];
        let (_, columns) = find_header(&rows, None, &settings).expect("found");
        assert_eq!(columns.get(Field::InvoiceNumber), Some(0));
        assert_eq!(columns.get(Field::Advance), Some(1));
    }

    /// Real-looking headers from factors' exports, and the field each names (or none).
    #[test]
    #[expect(clippy::too_many_lines, reason = "one table of real headers, one line each")]
    fn abbreviated_headers_name_their_field() {
        use Field::*;
        let settings = ReportSettings::default();
        let purchase: &[(&str, Option<Field>)] = &[
            ("Invoice Number", Some(InvoiceNumber)),
            ("Inv No", Some(InvoiceNumber)),
            ("Inv. #", Some(InvoiceNumber)),
            ("INV#", Some(InvoiceNumber)),
            ("Invoice Num", Some(InvoiceNumber)),
            ("Invoice Nbr", Some(InvoiceNumber)),
            ("InvoiceNo", Some(InvoiceNumber)),
            ("invoice_no", Some(InvoiceNumber)),
            ("Inv", Some(InvoiceNumber)),
            ("Client Inv #", Some(InvoiceNumber)),
            ("Client Invoice", Some(InvoiceNumber)),
            ("Load No.", Some(LoadNumber)),
            ("Ld #", Some(LoadNumber)),
            ("Load Num", Some(LoadNumber)),
            ("LoadID", Some(LoadNumber)),
            ("Inv Amt", Some(Amount)),
            ("Invoice Amt", Some(Amount)),
            ("Face Amt", Some(Amount)),
            ("Gross Amt", Some(Amount)),
            ("Amt", Some(Amount)),
            ("Adv Amt", Some(Advance)),
            ("Amt Funded", Some(Advance)),
            ("Funded Amt", Some(Advance)),
            ("Purch Amt", Some(Advance)),
            ("Disc Fee", Some(Fee)),
            ("Disc", Some(Fee)),
            ("Reserve Amt", Some(Reserve)),
            ("Purch Date", Some(PurchaseDate)),
            ("Funded Dt", Some(PurchaseDate)),
            ("Fund Dt", Some(PurchaseDate)),
            ("Sched #", Some(ScheduleNumber)),
            ("Schedule No", Some(ScheduleNumber)),
            ("Batch Num", Some(ScheduleNumber)),
            ("Batch", Some(ScheduleNumber)),
            ("Inv Status", Some(FactorStatus)),
            ("Status", Some(FactorStatus)),
            // Not an invoice number: a date or an amount of the invoice, or nothing known.
            ("Invoice Date", None),
            ("Inv Dt", None),
            ("Debtor", None),
            ("Notes", None),
            ("#", None),
            ("No.", None),
        ];
        let payment: &[(&str, Option<Field>)] = &[
            ("Inv #", Some(InvoiceNumber)),
            ("Invoice No.", Some(InvoiceNumber)),
            ("Load #", Some(LoadNumber)),
            ("Pmt Amt", Some(PaidAmount)),
            ("Pymt Amount", Some(PaidAmount)),
            ("Amt Paid", Some(PaidAmount)),
            ("Paid Amt", Some(PaidAmount)),
            ("Pd Amt", Some(PaidAmount)),
            ("Payment", Some(PaidAmount)),
            ("Pmt", Some(PaidAmount)),
            ("Collected", Some(PaidAmount)),
            ("Pmt Date", Some(PaymentDate)),
            ("Pmt Dt", Some(PaymentDate)),
            ("Date Pd", Some(PaymentDate)),
            ("Paid Dt", Some(PaymentDate)),
            ("Posted Dt", Some(PaymentDate)),
            ("Check Ref", Some(PaymentReference)),
            ("Chk #", Some(PaymentReference)),
            ("Check No", Some(PaymentReference)),
            ("Check", Some(PaymentReference)),
            ("CheckNumber", Some(PaymentReference)),
            ("ACH Ref", Some(PaymentReference)),
            ("ACH Ref #", Some(PaymentReference)),
            ("Ref #", Some(PaymentReference)),
            ("Ref No", Some(PaymentReference)),
            ("Reference", Some(PaymentReference)),
            ("Pmt Ref", Some(PaymentReference)),
            // A payment's number is no payment amount; an invoice amount is no paid amount.
            ("Pmt #", None),
            ("Payment No", None),
            ("Inv Amt", None),
            ("Amt", None),
        ];
        let mut wrong = Vec::new();
        for (kind, table) in [(ReportKind::Purchase, purchase), (ReportKind::Payment, payment)] {
            for (header, want) in table {
                let got = field_for(header, kind, &settings);
                if got != *want {
                    wrong.push(format!("{kind:?} {header:?}: got {got:?}, want {want:?}"));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// No compared form of a built-in alias belongs to two fields of one kind, with or without
    /// its trailing number word, so no header can be taken by the order of the fields.
    #[test]
    fn no_alias_names_two_fields() {
        for kind in [ReportKind::Purchase, ReportKind::Payment] {
            let mut seen: BTreeMap<String, Field> = BTreeMap::new();
            let mut short: BTreeMap<String, Field> = BTreeMap::new();
            for field in Field::for_kind(kind) {
                for alias in field.aliases() {
                    let form = normalize(alias);
                    if let Some(other) = seen.insert(form.clone(), *field) {
                        assert_eq!(other, *field, "{kind:?}: `{alias}` ({form}) names {other:?} and {field:?}");
                    }
                    if field.is_identifier() {
                        let form = without_number(alias).unwrap_or(form);
                        if let Some(other) = short.insert(form.clone(), *field) {
                            assert_eq!(other, *field, "{kind:?}: `{alias}` ({form}) names {other:?} and {field:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_header_two_fields_claim_is_left_unused() {
        let mut settings = ReportSettings::default();
        settings.purchase_aliases.insert("advance".into(), vec!["Net".into()]);
        settings.purchase_aliases.insert("fee".into(), vec!["NET".into()]);
        assert_eq!(field_for("Net", ReportKind::Purchase, &settings), None);
        let rows = [row(1, &["Inv #", "Net", "Fund Dt"])];
        let (_, columns) = find_header(&rows, None, &settings).expect("found");
        assert_eq!(columns.get(Field::Advance), None);
        assert_eq!(columns.get(Field::Fee), None);
        assert_eq!(columns.unused, vec!["Net".to_string()]);
        // A provider's own name beats a built-in one of another field.
        settings.purchase_aliases.insert("reserve".into(), vec!["Amt".into()]);
        assert_eq!(field_for("Amount", ReportKind::Purchase, &settings), Some(Field::Reserve));
    }

    #[test]
    fn the_refusal_of_a_file_without_a_key_column_names_what_was_looked_for() {
        let mut settings = ReportSettings::default();
        settings.payment_aliases.insert("invoice_number".into(), vec!["Client Ref".into()]);
        let error = find_header(&[row(1, &["Customer", "Total"])], None, &settings).expect_err("no key column");
        let message = error.to_string();
        for needle in
            ["invoice_number: invoice number, invoice #", "load_number: load number, load #", "Client Ref", "Inv"]
        {
            assert!(message.contains(needle), "{needle} missing in {message}");
        }
    }
}
