//! Factor status maps (docs/design.md §8a): what a factor's own status words mean, per provider.
//!
//! A factor reports an invoice's state in its own words: a `status` column in a purchase report,
//! or the `Status` of an invoice its API returns to status sync. Those words move money (a load
//! becomes Financed only when the factor bought it), so they are never guessed: each provider has
//! a table from its exact words (trimmed, compared without regard to case, the whole text, never
//! a substring) to one [`StatusOutcome`]. A word the table does not know is *unrecognised*: it
//! moves nothing and raises the `unrecognised_status` exception with the factor's words.
//!
//! The tables shipped are factord's reading: OTR's from its public status vocabulary
//! (`docs/providers/otr.md`, kept in its API file), every other provider's the conservative
//! generic table of words whose meaning is not in doubt. Ops add words or change a shipped word's
//! outcome with `[provider.<id>.statuses]` in the configuration; those entries win.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// What a factor's status word means for the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusOutcome {
    /// The factor bought the invoice: Invoiced → Financed.
    Purchased,
    /// The factor says the invoice is paid in full: → Completed (Financed first if need be).
    Paid,
    /// The factor holds the invoice (waiting on something): the `held` exception.
    Held,
    /// The factor refuses the invoice: the `rejected` exception.
    Rejected,
    /// Still in progress at the factor: nothing to do.
    NoChange,
}

impl StatusOutcome {
    pub const ALL: [Self; 5] = [Self::Purchased, Self::Paid, Self::Held, Self::Rejected, Self::NoChange];

    /// The name used in config (`[provider.<id>.statuses] purchased = [...]`) and output.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Purchased => "purchased",
            Self::Paid => "paid",
            Self::Held => "held",
            Self::Rejected => "rejected",
            Self::NoChange => "no_change",
        }
    }
}

impl fmt::Display for StatusOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StatusOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StatusOutcome::ALL.into_iter().find(|o| o.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = StatusOutcome::ALL.iter().map(|o| o.as_str()).collect();
            format!("`{s}` is not an outcome (one of: {})", names.join(", "))
        })
    }
}

use StatusOutcome::{Held, NoChange, Paid, Purchased, Rejected};

/// The generic table, for factors that publish no vocabulary: only words whose meaning is not
/// in doubt. Words such as "Approved" (the invoice, or the broker's credit?), "Closed" or
/// "Complete" are left out on purpose: ops map them for their factor once they know.
const GENERIC: &[(&str, StatusOutcome)] = &[
    ("Purchased", Purchased),
    ("Funded", Purchased),
    ("Paid", Paid),
    ("Paid in Full", Paid),
    ("Held", Held),
    ("Hold", Held),
    ("On Hold", Held),
    ("Rejected", Rejected),
    ("Declined", Rejected),
    ("Not Purchased", Rejected),
    ("Not Funded", Rejected),
    ("Pending", NoChange),
    ("Submitted", NoChange),
];

/// A shipped table of status words: where it comes from (for the docs and messages) and each
/// word's outcome. Each provider's entry in the catalogue points at its table.
#[derive(Debug, PartialEq, Eq)]
pub struct StatusVocabulary {
    pub source: &'static str,
    pub words: &'static [(&'static str, StatusOutcome)],
}

/// The table of every provider that publishes no vocabulary of its own.
pub static GENERIC_STATUSES: StatusVocabulary = StatusVocabulary { source: "the generic table", words: GENERIC };

/// The shipped table of a provider (the generic one for an id the catalogue does not know),
/// with its name for the docs and messages.
pub fn shipped(provider_id: &str) -> (&'static str, &'static [(&'static str, StatusOutcome)]) {
    let vocabulary = super::find_provider(provider_id).map_or(&GENERIC_STATUSES, |p| p.statuses);
    (vocabulary.source, vocabulary.words)
}

/// How a word is compared: trimmed, case folded; the whole text.
pub fn status_key(text: &str) -> String {
    text.trim().to_lowercase()
}

/// One provider's table: the shipped words with ops' additions and overrides on top.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusMap {
    provider: String,
    /// By [`status_key`]: the word as written (shipped or in config) and its outcome.
    words: BTreeMap<String, (String, StatusOutcome)>,
}

impl StatusMap {
    /// The shipped table of `provider_id` with `configured` (word → outcome, from
    /// `[provider.<id>.statuses]`) on top.
    pub fn new(provider_id: &str, configured: &BTreeMap<String, (String, StatusOutcome)>) -> StatusMap {
        let mut words: BTreeMap<String, (String, StatusOutcome)> = shipped(provider_id)
            .1
            .iter()
            .map(|(word, outcome)| (status_key(word), (word.to_string(), *outcome)))
            .collect();
        words.extend(configured.iter().map(|(key, entry)| (key.clone(), entry.clone())));
        StatusMap { provider: provider_id.to_string(), words }
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The outcome of a factor's status text, or `None` when the table does not know it.
    pub fn lookup(&self, text: &str) -> Option<StatusOutcome> {
        self.words.get(&status_key(text)).map(|(_, outcome)| *outcome)
    }

    /// Every word with its outcome, as written, in outcome order.
    pub fn entries(&self) -> Vec<(&str, StatusOutcome)> {
        let mut entries: Vec<(&str, StatusOutcome)> =
            self.words.values().map(|(word, outcome)| (word.as_str(), *outcome)).collect();
        entries.sort_by_key(|(word, outcome)| (*outcome, word.to_lowercase()));
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(provider: &str, configured: &[(&str, StatusOutcome)]) -> StatusMap {
        let configured =
            configured.iter().map(|(w, o)| (status_key(w), (w.to_string(), *o))).collect::<BTreeMap<_, _>>();
        StatusMap::new(provider, &configured)
    }

    #[test]
    fn otr_words_map_as_its_vocabulary_says() {
        let otr = map("otr", &[]);
        let expected = [
            ("Advance Paid", Some(Purchased)),
            ("approved", Some(Purchased)),
            ("  PAID ", Some(Paid)),
            ("Client Request", Some(Held)),
            ("OTR Follow-Up", Some(Held)),
            ("Duplicate", Some(Rejected)),
            ("Pending", Some(NoChange)),
            ("Advance Pending", Some(NoChange)),
            ("Not Funded", None),
        ];
        for (word, outcome) in expected {
            assert_eq!(otr.lookup(word), outcome, "{word}");
        }
    }

    #[test]
    fn whole_words_only_never_a_substring() {
        let generic = map("triumph", &[]);
        for word in ["Not Approved", "Waiting on broker approval", "Funded?", "Paid partially", "Unpaid", "Approved"] {
            assert_eq!(generic.lookup(word), None, "{word}");
        }
        assert_eq!(generic.lookup("Not Funded"), Some(Rejected));
        assert_eq!(generic.lookup("funded"), Some(Purchased));
    }

    #[test]
    fn configured_words_add_to_and_override_the_shipped_table() {
        let otr = map("otr", &[("Funded", Purchased), ("Pending", Held)]);
        assert_eq!(otr.lookup("funded"), Some(Purchased));
        assert_eq!(otr.lookup("Pending"), Some(Held));
        assert_eq!(otr.lookup("Advance Pending"), Some(NoChange));
        assert!(otr.entries().contains(&("Funded", Purchased)));
    }

    /// The table of shipped maps in docs/providers.md is the shipped tables, word for word.
    #[test]
    fn the_providers_page_lists_the_shipped_maps() {
        let page = include_str!("../../docs/providers.md");
        let section =
            page.split("## Factor statuses and status sync").nth(1).expect("docs/providers.md has the section");
        for (row, provider) in [("| `otr` |", "otr"), ("| every other provider |", "triumph")] {
            let line = section.lines().find(|l| l.starts_with(row)).expect("the section has the row");
            let cells: Vec<&str> = line.split('|').map(str::trim).filter(|c| !c.is_empty()).skip(1).collect();
            assert_eq!(cells.len(), StatusOutcome::ALL.len(), "{line}");
            for (cell, outcome) in cells.iter().zip(StatusOutcome::ALL) {
                let mut documented: Vec<&str> = cell.split(", ").filter(|w| !w.is_empty()).collect();
                let mut shipped: Vec<&str> =
                    shipped(provider).1.iter().filter(|(_, o)| *o == outcome).map(|(w, _)| *w).collect();
                documented.sort_unstable();
                shipped.sort_unstable();
                assert_eq!(documented, shipped, "{provider} {outcome}");
            }
        }
    }

    #[test]
    fn outcome_names_round_trip() {
        for outcome in StatusOutcome::ALL {
            assert_eq!(outcome.as_str().parse::<StatusOutcome>(), Ok(outcome));
        }
        assert!("funded".parse::<StatusOutcome>().is_err());
    }
}
