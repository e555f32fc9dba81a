//! Header matching (DESIGN §8): a column is recognised by its header name, ignoring case,
//! spaces, `#`, `_` and punctuation, against the built-in aliases of each field plus the
//! provider's own (`[provider.<id>.reports.purchase]` / `.payment`). The header row is
//! found by matching, so a title or a date line above it does no harm.

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
        }
    }

    /// The built-in aliases (DESIGN §8).
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
            Field::PaymentReference => &["check #", "check number", "reference", "ach reference"],
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
            ],
            ReportKind::Payment => &[
                Field::InvoiceNumber,
                Field::LoadNumber,
                Field::PaidAmount,
                Field::PaymentDate,
                Field::PaymentReference,
            ],
        }
    }
}

/// A header as compared: lower case letters and digits only.
pub fn normalize(header: &str) -> String {
    header.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
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

/// Matches one row as a header for `kind`: each field takes the first column whose header
/// is one of its aliases.
fn match_row(row: &SheetRow, kind: ReportKind, settings: &ReportSettings) -> Columns {
    let extra = match kind {
        ReportKind::Purchase => &settings.purchase_aliases,
        ReportKind::Payment => &settings.payment_aliases,
    };
    let mut fields = BTreeMap::new();
    let mut unused = Vec::new();
    for (column, cell) in row.cells.iter().enumerate() {
        let header = cell.text();
        if header.is_empty() {
            continue;
        }
        let wanted = normalize(&header);
        let found = Field::for_kind(kind).iter().copied().find(|field| {
            let configured = extra.get(field.name()).into_iter().flatten().map(String::as_str);
            field.aliases().iter().copied().chain(configured).any(|alias| normalize(alias) == wanted)
        });
        match found {
            Some(field) if !fields.contains_key(&field) => {
                fields.insert(field, column);
            }
            _ => unused.push(header),
        }
    }
    Columns { kind, header_row: row.number, fields, unused }
}

/// How many rows from the top are searched for the header.
const HEADER_SEARCH_ROWS: usize = 30;

/// Why no usable header was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error(
        "no header row with an invoice or load number column in the first {HEADER_SEARCH_ROWS} rows (looked for: {})",
        Field::InvoiceNumber.aliases().join(", ")
    )]
    NoKeyColumn,
    #[error("a payment report needs a paid amount column (one of: {}); found columns: {found}", Field::PaidAmount.aliases().join(", "))]
    NoPaidAmount { found: String },
    #[error(
        "cannot tell a purchase report from a payment report by its columns ({found}); drop it into purchase/ or payment/, or use --kind"
    )]
    Ambiguous { found: String },
}

/// Finds the header row and, when `kind` is not given, the kind of report from its columns:
/// a paid amount column means payment; advance, fee, reserve or purchase date means
/// purchase; both or neither is ambiguous and refused.
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
                let is_purchase = [Field::Advance, Field::Fee, Field::Reserve, Field::PurchaseDate]
                    .iter()
                    .any(|f| purchase.get(*f).is_some());
                match (is_purchase, is_payment) {
                    (true, false) => purchase,
                    (false, true) => payment,
                    _ => return Err(HeaderError::Ambiguous { found: found() }),
                }
            }
        };
        return Ok((index, columns));
    }
    Err(HeaderError::NoKeyColumn)
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
        assert_eq!(normalize(" Invoice #"), "invoice");
        assert_eq!(normalize("INVOICE_NO."), "invoiceno");
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
        assert_eq!(find_header(&[row(1, &["Customer", "Total"])], None, &settings), Err(HeaderError::NoKeyColumn));
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
}
