//! Types that parse, so the rest of factord can trust them: money in cents, the load status
//! graph and its exceptions, the load import rule, credit check results, what a factor answered
//! to a batch, and how money and times are shown to people.

mod credit;
mod delivery;
pub mod ledger;
mod load;
mod money;
pub mod report;
mod status;
mod text;
mod time;

pub use credit::CreditResult;
pub use delivery::{InvoiceOutcome, ProviderError, idempotency_key};
pub use load::{
    Customer, FieldChange, ImportDecision, LoadExtras, LoadFields, LoadInput, LoadLine, StoredLoad, decide_import,
    lines_disagree,
};
pub use money::{Money, MoneyError};
pub use status::{ExceptionKind, LoadStatus, OPS_HOLD, UnknownStatus, VOID_NOTICE};
pub use text::{bounded, bounded_to};
pub use time::{rfc3339, rfc3339_option, span_for_people, time_for_people, zoned_time_for_people};

/// Whether `id` is usable as a name in paths and files (docs/reliability.md rule 14): 1 to 64 of
/// `[A-Za-z0-9_-]`. Subsidiary and provider ids are held to this.
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
