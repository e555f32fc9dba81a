//! Times as people read them: one style everywhere (command output, the dashboard, messages),
//! always with its zone. JSON and files carry RFC 3339 instead.

use chrono::{DateTime, Utc};

/// The style of every time shown to people.
pub const FOR_PEOPLE: &str = "%Y-%m-%d %H:%M:%S UTC";

/// `2026-11-30 14:05:09 UTC`.
pub fn time_for_people(at: DateTime<Utc>) -> String {
    at.format(FOR_PEOPLE).to_string()
}

/// Serde: a time as RFC 3339 with its offset (`2026-11-30T14:05:09.123+00:00`), the form of
/// every time in the commands' JSON (`#[serde(serialize_with = "rfc3339")]`). chrono's own
/// `Serialize` writes `Z` instead, which is not what the JSON contract shows.
pub fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339())
}

/// [`rfc3339`] for an optional time: `null` when absent.
pub fn rfc3339_option<S: serde::Serializer>(at: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_style_with_its_zone() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T08:05:09-06:00").expect("time").with_timezone(&Utc);
        assert_eq!(time_for_people(at), "2026-11-30 14:05:09 UTC");
    }

    #[test]
    fn json_times_are_rfc3339_with_an_offset() {
        #[derive(serde::Serialize)]
        struct Times {
            #[serde(serialize_with = "rfc3339")]
            at: DateTime<Utc>,
            #[serde(serialize_with = "rfc3339_option")]
            maybe: Option<DateTime<Utc>>,
            #[serde(serialize_with = "rfc3339_option")]
            never: Option<DateTime<Utc>>,
        }
        let at = DateTime::parse_from_rfc3339("2026-11-30T08:05:09.5-06:00").expect("time").with_timezone(&Utc);
        let json = serde_json::to_string(&Times { at, maybe: Some(at), never: None }).expect("json");
        assert_eq!(
            json,
            r#"{"at":"2026-11-30T14:05:09.500+00:00","maybe":"2026-11-30T14:05:09.500+00:00","never":null}"#
        );
    }
}
