//! The load status graph of docs/design.md §2 and the exception flags that sit beside it.
//!
//! Only forward moves exist. `Delivered` is the TMS's "not yet released" state: such a load is
//! stored but never invoiced until a re-import releases it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LoadStatus {
    Delivered,
    Released,
    Queued,
    Invoiced,
    Financed,
    Completed,
}

impl LoadStatus {
    /// Every status, in pipeline order.
    pub const ALL: [LoadStatus; 6] = [
        LoadStatus::Delivered,
        LoadStatus::Released,
        LoadStatus::Queued,
        LoadStatus::Invoiced,
        LoadStatus::Financed,
        LoadStatus::Completed,
    ];

    /// The statuses that `status` counts per subsidiary (docs/design.md §6).
    pub const PIPELINE: [LoadStatus; 5] =
        [LoadStatus::Released, LoadStatus::Queued, LoadStatus::Invoiced, LoadStatus::Financed, LoadStatus::Completed];

    pub const fn as_str(self) -> &'static str {
        match self {
            LoadStatus::Delivered => "Delivered",
            LoadStatus::Released => "Released",
            LoadStatus::Queued => "Queued",
            LoadStatus::Invoiced => "Invoiced",
            LoadStatus::Financed => "Financed",
            LoadStatus::Completed => "Completed",
        }
    }

    /// Whether `self → to` is one of the forward moves of docs/design.md §2:
    /// Delivered → Released (released by the TMS), Released → Queued (invoice generated),
    /// Released → Invoiced (direct customer), Queued → Invoiced (batch submitted),
    /// Invoiced → Financed (purchase report), Financed → Completed (payment report).
    pub const fn can_move_to(self, to: LoadStatus) -> bool {
        use LoadStatus::*;
        matches!(
            (self, to),
            (Delivered, Released)
                | (Released, Queued)
                | (Released, Invoiced)
                | (Queued, Invoiced)
                | (Invoiced, Financed)
                | (Financed, Completed)
        )
    }

    /// Whether the invoice has been generated, after which the fields printed on it are frozen.
    pub fn is_invoiced(self) -> bool {
        self >= LoadStatus::Queued
    }
}

impl fmt::Display for LoadStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{0}` (expected one of Delivered, Released, Queued, Invoiced, Financed, Completed)")]
pub struct UnknownStatus(pub String);

impl FromStr for LoadStatus {
    type Err = UnknownStatus;
    /// Case-insensitive, so `released` in a TMS export or `--status queued` on the command line work.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LoadStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// Flags beside the status (docs/design.md §2): visible in `status` and `loads show`, cleared by the
/// event that resolves them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    Held,
    Rejected,
    ShortPaid,
    CreditDeclined,
    /// The factor said something its status map does not know (docs/design.md §8a); nothing moved.
    UnrecognisedStatus,
    /// A purchase's figures do not add up: amount ≠ advance + fee + reserve held (docs/money.md).
    LedgerMismatch,
    /// The factor sold the invoice back (chargeback / recourse): the carrier collects it again.
    ChargedBack,
}

impl ExceptionKind {
    pub const ALL: [ExceptionKind; 7] = [
        ExceptionKind::Held,
        ExceptionKind::Rejected,
        ExceptionKind::ShortPaid,
        ExceptionKind::CreditDeclined,
        ExceptionKind::UnrecognisedStatus,
        ExceptionKind::LedgerMismatch,
        ExceptionKind::ChargedBack,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::Held => "held",
            ExceptionKind::Rejected => "rejected",
            ExceptionKind::ShortPaid => "short_paid",
            ExceptionKind::CreditDeclined => "credit_declined",
            ExceptionKind::UnrecognisedStatus => "unrecognised_status",
            ExceptionKind::LedgerMismatch => "ledger_mismatch",
            ExceptionKind::ChargedBack => "charged_back",
        }
    }
}

impl fmt::Display for ExceptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExceptionKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExceptionKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("unknown exception kind `{s}`"))
    }
}

/// How an ops hold's exception detail starts (`factord loads hold`).
pub const OPS_HOLD: &str = "held by ops: ";

/// How the `held` exception a void leaves starts ("tell <factor> invoice N is void").
pub const VOID_NOTICE: &str = "tell ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_forward_moves_of_the_graph_are_allowed() {
        use LoadStatus::*;
        let allowed = [
            (Delivered, Released),
            (Released, Queued),
            (Released, Invoiced),
            (Queued, Invoiced),
            (Invoiced, Financed),
            (Financed, Completed),
        ];
        for from in LoadStatus::ALL {
            for to in LoadStatus::ALL {
                assert_eq!(from.can_move_to(to), allowed.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn parses_names_case_insensitively() {
        assert_eq!("queued".parse::<LoadStatus>(), Ok(LoadStatus::Queued));
        assert_eq!("Completed".parse::<LoadStatus>(), Ok(LoadStatus::Completed));
        assert!("Paid".parse::<LoadStatus>().is_err());
    }
}
