//! Every configuration key factord accepts, as dotted paths (`subsidiary.factoring.ftp.host`),
//! read from the serde structs of [`super::raw`]: the same structs whose unknown keys
//! `check-config` reports. docs/configuration.md lists the same keys; a test holds the two
//! together, both ways.
//!
//! The structs are walked with a probing [`Deserializer`] that follows one route of fields at a
//! time and records what it finds at the end: a table (the struct's field names, as serde
//! derives them), a map, or a value. Tables whose keys are names the user picks (a provider id,
//! a status outcome, a report field) appear with a placeholder in their place (`<id>`,
//! `<outcome>`, `<field>`); tables whose keys are data (customer ids in `customer_overrides`)
//! are one key.

use std::cell::Cell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::raw::RawConfig;

/// The placeholder written for the keys of a user-named table, by the table's path.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("provider", "<id>"),
    ("provider.<id>.statuses", "<outcome>"),
    ("provider.<id>.reports.purchase", "<field>"),
    ("provider.<id>.reports.payment", "<field>"),
];

/// Every key the configuration files (and `FACTORD__…` variables) accept, in the structs'
/// order. `[[subsidiary]]` keys start with `subsidiary.`; in a file of its own under
/// `subsidiaries/` a subsidiary's keys are the same without that prefix.
pub fn accepted_keys() -> Vec<String> {
    let mut keys = Vec::new();
    walk(&mut Vec::new(), "", &mut keys);
    keys
}

/// One step of a route into the structs.
#[derive(Clone, Copy)]
enum Step {
    /// The field of a struct with this name.
    Field(&'static str),
    /// The one entry of a map.
    Entry,
}

/// What a route ends on.
#[derive(Clone, Copy)]
enum Found {
    /// A struct: a table with these keys.
    Table(&'static [&'static str]),
    /// A map: a table with keys of the user's choosing.
    Map,
}

fn walk(route: &mut Vec<Step>, path: &str, keys: &mut Vec<String>) {
    let join = |name: &str| if path.is_empty() { name.to_string() } else { format!("{path}.{name}") };
    match probe(route) {
        None => keys.push(path.to_string()),
        Some(Found::Table(fields)) => {
            for &field in fields {
                route.push(Step::Field(field));
                walk(route, &join(field), keys);
                route.pop();
            }
        }
        Some(Found::Map) => match PLACEHOLDERS.iter().find(|(table, _)| *table == path) {
            Some((_, placeholder)) => {
                route.push(Step::Entry);
                walk(route, &join(placeholder), keys);
                route.pop();
            }
            None => keys.push(path.to_string()),
        },
    }
}

/// What the configuration holds at the end of `route`: a table, a map, or (`None`) a value.
fn probe(route: &[Step]) -> Option<Found> {
    let found = Cell::new(None);
    // The probe always ends in an error: it stops where the route does, having noted what it
    // found there.
    let _ = RawConfig::deserialize(Probe { route, found: &found });
    found.get()
}

/// Why a probe stopped; never shown to anyone.
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe stopped")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
    }
}

#[derive(Clone, Copy)]
struct Probe<'a> {
    route: &'a [Step],
    found: &'a Cell<Option<Found>>,
}

impl<'a> Probe<'a> {
    fn rest(self) -> Probe<'a> {
        Probe { route: &self.route[1..], found: self.found }
    }
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    /// A plain value (text, number, boolean, path): the route cannot go further.
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_newtype_struct(self)
    }

    /// An array (`[[subsidiary]]`, or a list of words): its element has the same keys.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_seq(OneElement(Some(self)))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        match self.route.first() {
            None => {
                self.found.set(Some(Found::Map));
                Err(Stop)
            }
            Some(&Step::Entry) => visitor.visit_map(OneEntry { key: Some("key"), value: Some(self.rest()) }),
            Some(&Step::Field(_)) => Err(Stop),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        match self.route.first() {
            None => {
                self.found.set(Some(Found::Table(fields)));
                Err(Stop)
            }
            Some(&Step::Field(field)) => visitor.visit_map(OneEntry { key: Some(field), value: Some(self.rest()) }),
            Some(&Step::Entry) => Err(Stop),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct tuple tuple_struct enum identifier ignored_any
    }
}

/// A table with one key, whose value the probe goes on into.
struct OneEntry<'a> {
    key: Option<&'static str>,
    value: Option<Probe<'a>>,
}

impl<'de> MapAccess<'de> for OneEntry<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Stop> {
        match self.key.take() {
            Some(key) => seed.deserialize(key.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Stop> {
        match self.value.take() {
            Some(probe) => seed.deserialize(probe),
            None => Err(Stop),
        }
    }
}

/// An array with one element, which the probe goes on into.
struct OneElement<'a>(Option<Probe<'a>>);

impl<'de> SeqAccess<'de> for OneElement<'_> {
    type Error = Stop;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, Stop> {
        match self.0.take() {
            Some(probe) => seed.deserialize(probe).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_from_the_structs_with_placeholders_for_named_tables() {
        let keys = accepted_keys();
        for key in [
            "database.url",
            "http.listen",
            "schedule.catch_up",
            "subsidiary.id",
            "subsidiary.customer_overrides",
            "subsidiary.factoring.customer_ids",
            "subsidiary.factoring.ftp.host_key_sha256",
            "subsidiary.factoring.api.subscription_key_env",
            "provider.<id>.reports.purchase.<field>",
            "provider.<id>.reports.payment.<field>",
            "provider.<id>.statuses.<outcome>",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} in {keys:#?}");
        }
        // Tables are not keys themselves, and no key is listed twice.
        for table in ["database", "subsidiary", "subsidiary.factoring", "provider.<id>.reports"] {
            assert!(!keys.iter().any(|k| k == table), "{table} is a table");
        }
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len());
    }
}
