//! Money as integer cents, and the parser for the amount forms found in load exports and
//! factor reports (docs/design.md §2): `2450`, `2450.5`, `2,450.00`, `$2,450.00`, `(12.00)`, `-12.00`.
//!
//! Anything ambiguous is refused rather than guessed: European forms such as `1.234,56`,
//! a dot followed by three digits (`12.345`, a thousands separator or a third decimal?),
//! misplaced commas, letters, and empty text.

use std::fmt;
use std::str::FromStr;

/// An amount of US dollars in integer cents. Never a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

/// Why a piece of text is not an amount. The message quotes the text so that an error
/// about row 17 of a file can say exactly what was there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount is empty")]
    Empty,
    #[error("`{0}` is not an amount (expected forms like 2450, 2,450.00, $2,450.00 or (12.00))")]
    Invalid(String),
    #[error("`{0}` is too large to be an amount")]
    Overflow(String),
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_cents(cents: i64) -> Self {
        Money(cents)
    }

    pub const fn cents(self) -> i64 {
        self.0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// Parses the amount forms of docs/design.md §2. See the module documentation for what is refused.
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(MoneyError::Empty);
        }
        let invalid = || MoneyError::Invalid(super::bounded(trimmed));

        // Sign: parentheses (accounting negative) or a leading minus, before or after the `$`.
        let (negative, body) = match trimmed.strip_prefix('(') {
            Some(inner) => (true, inner.strip_suffix(')').ok_or_else(invalid)?.trim()),
            None => match trimmed.strip_prefix('-') {
                Some(rest) => (true, rest.trim_start()),
                None => (false, trimmed),
            },
        };
        let body = body.strip_prefix('$').unwrap_or(body).trim_start();
        let (negative, body) = match body.strip_prefix('-') {
            Some(rest) if !negative => (true, rest),
            Some(_) => return Err(invalid()),
            None => (negative, body),
        };

        let (whole, fraction) = match body.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (body, None),
        };
        if whole.is_empty() && fraction.is_none() {
            return Err(invalid());
        }
        let whole_digits = parse_grouped_digits(whole).ok_or_else(invalid)?;
        let fraction_cents = match fraction {
            None => 0,
            Some(f) if f.is_empty() || f.len() > 2 || !f.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(invalid());
            }
            Some(f) if f.len() == 1 => i64::from(f.as_bytes()[0] - b'0') * 10,
            Some(f) => i64::from(f.as_bytes()[0] - b'0') * 10 + i64::from(f.as_bytes()[1] - b'0'),
        };

        let overflow = || MoneyError::Overflow(super::bounded(trimmed));
        let mut dollars: i64 = 0;
        for digit in whole_digits.bytes() {
            dollars =
                dollars.checked_mul(10).and_then(|d| d.checked_add(i64::from(digit - b'0'))).ok_or_else(overflow)?;
        }
        let cents = dollars.checked_mul(100).and_then(|c| c.checked_add(fraction_cents)).ok_or_else(overflow)?;
        Ok(Money(if negative { -cents } else { cents }))
    }
}

/// Accepts `1234` or `1,234,567` (groups of exactly three after the first) and returns the
/// digits without commas; an empty whole part (`.50`) is allowed and gives "".
fn parse_grouped_digits(whole: &str) -> Option<String> {
    if whole.is_empty() {
        return Some(String::new());
    }
    let groups: Vec<&str> = whole.split(',').collect();
    let all_digits = |g: &str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit());
    if !groups.iter().all(|g| all_digits(g)) {
        return None;
    }
    if groups.len() > 1 && (groups[0].len() > 3 || groups[1..].iter().any(|g| g.len() != 3)) {
        return None;
    }
    Some(groups.concat())
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s)
    }
}

/// Formats as `2450.00` / `-12.00`, the form used in generated files and command output.
/// Plain decimals, as files and JSON carry them: `1875.50`, `-12.00`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// In JSON, a plain decimal string as files carry it: `"1875.50"`.
impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Money {
    /// The amount as people read it (docs/design.md §2): `$1,875.50`, `-$12.00`. Files and JSON carry
    /// plain decimals ([`Display`](fmt::Display)) instead.
    pub fn for_people(self) -> ForPeople {
        ForPeople(self)
    }
}

/// [`Money::for_people`]: a dollar sign and thousands separators.
#[derive(Clone, Copy, Debug)]
pub struct ForPeople(Money);

impl fmt::Display for ForPeople {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = self.0.0;
        let sign = if cents < 0 { "-" } else { "" };
        let abs = cents.unsigned_abs();
        let whole = (abs / 100).to_string();
        let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
        for (i, digit) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        write!(f, "{sign}${grouped}.{:02}", abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_see_dollars_with_thousands_separators() {
        let shown = |cents: i64| Money::from_cents(cents).for_people().to_string();
        assert_eq!(shown(187_550), "$1,875.50");
        assert_eq!(shown(5), "$0.05");
        assert_eq!(shown(99_999), "$999.99");
        assert_eq!(shown(100_000), "$1,000.00");
        assert_eq!(shown(12_345_678_900), "$123,456,789.00");
        assert_eq!(shown(-1_200), "-$12.00");
        assert_eq!(shown(-12_345_678), "-$123,456.78");
        assert_eq!(Money::from_cents(187_550).to_string(), "1875.50", "files keep plain decimals");
    }

    #[test]
    fn accepts_the_documented_forms() {
        let cases = [
            ("2450", 245_000),
            ("2450.5", 245_050),
            ("2,450.00", 245_000),
            ("$2,450.00", 245_000),
            (" $1,234,567.89 ", 123_456_789),
            ("(12.00)", -1_200),
            ("($12.00)", -1_200),
            ("-12.00", -1_200),
            ("$-12.00", -1_200),
            ("0.07", 7),
            (".5", 50),
            ("1234.5", 123_450),
        ];
        for (text, cents) in cases {
            assert_eq!(Money::parse(text), Ok(Money::from_cents(cents)), "{text}");
        }
    }

    #[test]
    fn refuses_ambiguous_and_garbage() {
        for text in [
            "1.234,56",
            "12.345",
            "abc",
            "",
            "   ",
            "1,23",
            "12,3456.00",
            "$",
            "(12.00",
            "1.2.3",
            "--5",
            "12.",
            "1 000",
            "1e5",
            "12.3a",
            "(-5)",
        ] {
            assert!(Money::parse(text).is_err(), "`{text}` should be refused");
        }
        assert_eq!(Money::parse(""), Err(MoneyError::Empty));
    }

    #[test]
    fn refuses_overflow() {
        assert!(matches!(Money::parse("99999999999999999999"), Err(MoneyError::Overflow(_))));
    }

    #[test]
    fn displays_two_decimals() {
        assert_eq!(Money::from_cents(245_050).to_string(), "2450.50");
        assert_eq!(Money::from_cents(-7).to_string(), "-0.07");
    }
}
