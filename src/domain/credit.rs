//! What a factor says about a customer's credit: the three answers factord acts on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A factor's credit decision about a customer (the debtor). `Unknown` is an answer that is
/// neither yes nor no, such as OTR's "CALL OFFICE", or a broker the factor does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditResult {
    Approved,
    Declined,
    Unknown,
}

impl CreditResult {
    pub const ALL: [CreditResult; 3] = [CreditResult::Approved, CreditResult::Declined, CreditResult::Unknown];

    pub const fn as_str(self) -> &'static str {
        match self {
            CreditResult::Approved => "approved",
            CreditResult::Declined => "declined",
            CreditResult::Unknown => "unknown",
        }
    }
}

impl fmt::Display for CreditResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CreditResult {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CreditResult::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| format!("unknown credit result `{s}`"))
    }
}
