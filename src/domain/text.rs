//! Text from outside quoted in a message (a cell of a file, a factor's answer): cut to a
//! readable length, saying how long it was, so that one 5,000-character value cannot flood a
//! line of output, a log or a result file.

/// The most characters of a value a message quotes.
pub const MAX_QUOTED_CHARS: usize = 100;

/// `text` itself when short; else its first [`MAX_QUOTED_CHARS`] characters, `…` and its size:
/// `LLLL… (5000 characters)`.
pub fn bounded(text: &str) -> String {
    bounded_to(text, MAX_QUOTED_CHARS)
}

/// [`bounded`] with another limit.
pub fn bounded_to(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}… ({} characters)", &text[..cut], text.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_with_their_size() {
        assert_eq!(bounded("L-1"), "L-1");
        let exact = "x".repeat(MAX_QUOTED_CHARS);
        assert_eq!(bounded(&exact), exact);
        let long = "é".repeat(5000);
        let shown = bounded(&long);
        assert!(shown.ends_with("… (5000 characters)"), "{shown}");
        assert_eq!(shown.chars().count(), MAX_QUOTED_CHARS + "… (5000 characters)".chars().count());
    }
}
