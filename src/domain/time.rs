//! Times as people read them: one style everywhere (command output, the dashboard, messages),
//! always with its zone. JSON and files carry RFC 3339 instead.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

/// The style of every time shown to people.
pub const FOR_PEOPLE: &str = "%Y-%m-%d %H:%M:%S UTC";

/// `2026-11-30 14:05:09 UTC`.
pub fn time_for_people(at: DateTime<Utc>) -> String {
    at.format(FOR_PEOPLE).to_string()
}

/// A time on the wall clock of `zone`, in the same style with the zone's abbreviation:
/// `2026-12-07 16:00:00 CST`.
pub fn zoned_time_for_people(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %Z").to_string()
}

/// A span of time as people read it, to the unit that matters: `3 d 4 h`, `5 h 12 min`,
/// `7 min`, `< 1 min` (also for a negative span, a clock a little behind).
pub fn span_for_people(span: TimeDelta) -> String {
    let minutes = span.num_minutes();
    let (days, hours, minutes) = (minutes / (24 * 60), minutes / 60 % 24, minutes % 60);
    match (days, hours, minutes) {
        (d, h, _) if d > 0 => format!("{d} d {h} h"),
        (_, h, m) if h > 0 => format!("{h} h {m} min"),
        (_, _, m) if m > 0 => format!("{m} min"),
        _ => "< 1 min".to_string(),
    }
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
    fn a_zoned_time_says_its_zone_summer_and_winter() {
        let winter = DateTime::parse_from_rfc3339("2026-12-07T22:00:00Z").expect("time").with_timezone(&Utc);
        assert_eq!(zoned_time_for_people(winter, chrono_tz::America::Chicago), "2026-12-07 16:00:00 CST");
        let summer = DateTime::parse_from_rfc3339("2026-07-07T21:00:00Z").expect("time").with_timezone(&Utc);
        assert_eq!(zoned_time_for_people(summer, chrono_tz::America::Chicago), "2026-07-07 16:00:00 CDT");
        assert_eq!(zoned_time_for_people(summer, chrono_tz::America::Phoenix), "2026-07-07 14:00:00 MST");
    }

    #[test]
    fn a_span_is_shown_to_the_unit_that_matters() {
        let span = |d: i64, h: i64, m: i64, s: i64| {
            TimeDelta::days(d) + TimeDelta::hours(h) + TimeDelta::minutes(m) + TimeDelta::seconds(s)
        };
        assert_eq!(span_for_people(span(3, 4, 10, 59)), "3 d 4 h");
        assert_eq!(span_for_people(span(1, 0, 0, 0)), "1 d 0 h");
        assert_eq!(span_for_people(span(0, 23, 59, 59)), "23 h 59 min");
        assert_eq!(span_for_people(span(0, 5, 0, 0)), "5 h 0 min");
        assert_eq!(span_for_people(span(0, 0, 7, 30)), "7 min");
        assert_eq!(span_for_people(span(0, 0, 0, 59)), "< 1 min");
        assert_eq!(span_for_people(TimeDelta::zero()), "< 1 min");
        assert_eq!(span_for_people(-span(0, 2, 0, 0)), "< 1 min", "a clock a little behind");
        assert_eq!(span_for_people(span(400, 1, 0, 0)), "400 d 1 h");
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
