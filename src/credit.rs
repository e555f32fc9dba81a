//! Broker credit checks. For now only the hook the invoice job calls before it queues a
//! factored load; checks themselves, their refresh and the submission policy come with the
//! credit work (DESIGN §1 issue "Broker credit checks").

use crate::config::Subsidiary;
use crate::store::LoadRecord;

/// What the credit module says about a load about to be queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreditCheck {
    /// No check is due: queue the load.
    NotNeeded,
}

/// Asks whether a credit check is due before `load` is queued for `subsidiary`'s factor.
pub async fn check_before_queueing(_subsidiary: &Subsidiary, _load: &LoadRecord) -> CreditCheck {
    CreditCheck::NotNeeded
}
