//! Times as people read them: one style everywhere (command output, the dashboard, messages),
//! always with its zone. JSON and files carry RFC 3339 instead.

use chrono::{DateTime, Utc};

/// The style of every time shown to people.
pub const FOR_PEOPLE: &str = "%Y-%m-%d %H:%M:%S UTC";

/// `2026-11-30 14:05:09 UTC`.
pub fn time_for_people(at: DateTime<Utc>) -> String {
    at.format(FOR_PEOPLE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_style_with_its_zone() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T08:05:09-06:00").expect("time").with_timezone(&Utc);
        assert_eq!(time_for_people(at), "2026-11-30 14:05:09 UTC");
    }
}
