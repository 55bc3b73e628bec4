//! The strports tokenizer: Twisted's endpoint-description grammar.
//!
//! ```text
//! description := segment (':' segment)*
//! segment     := value | key '=' value
//! ```
//! A backslash makes the next character literal. In a value, `=` is literal (only the first
//! `=` of a segment separates key from value). A value that starts with `[` runs to the
//! matching `]` with its colons literal, so IPv6 addresses can be written `[::1]`. Segments
//! without `=` are positional and keep their order; empty segments are kept.

use super::StrportError;

/// A tokenized description: the positional segments (the first is the endpoint type) and the
/// `key=value` segments, each in the order written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description {
    /// Positional segments, in order.
    pub positional: Vec<String>,
    /// Keyword segments, in order, repeats kept.
    pub keywords: Vec<(String, String)>,
}

/// Splits a description into positional and keyword segments.
pub fn tokenize(text: &str) -> Result<Description, StrportError> {
    let mut description = Description::default();
    let mut key: Option<String> = None;
    let mut buffer = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(literal) => buffer.push(literal),
                None => return Err(StrportError::TrailingBackslash),
            },
            '[' if buffer.is_empty() => {
                buffer.push('[');
                loop {
                    match chars.next() {
                        Some(']') => {
                            buffer.push(']');
                            break;
                        }
                        Some(inner) => buffer.push(inner),
                        None => return Err(StrportError::UnclosedBracket),
                    }
                }
            }
            ':' => finish_segment(&mut description, &mut key, &mut buffer),
            '=' if key.is_none() => key = Some(std::mem::take(&mut buffer)),
            other => buffer.push(other),
        }
    }
    finish_segment(&mut description, &mut key, &mut buffer);
    Ok(description)
}

fn finish_segment(description: &mut Description, key: &mut Option<String>, buffer: &mut String) {
    let value = std::mem::take(buffer);
    match key.take() {
        Some(key) => description.keywords.push((key, value)),
        None => description.positional.push(value),
    }
}

/// Escapes a value so that it tokenizes back to itself, as a positional or keyword value:
/// `\`, `:` and `=` get a backslash (Twisted's `quoteStringArgument` leaves `=` alone, which
/// breaks positional values), and so does a leading `[`.
pub fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        if matches!(c, '\\' | ':' | '=') || (i == 0 && c == '[') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn twisted_escape_example() {
        let d = tokenize(r"unix:address=foo\:bar\=baz\:qux\\").unwrap();
        assert_eq!(d.positional, ["unix"]);
        assert_eq!(d.keywords, kw(&[("address", r"foo:bar=baz:qux\")]));
    }

    #[test]
    fn later_equals_signs_are_literal() {
        let d = tokenize("unix:address=foo=bar").unwrap();
        assert_eq!(d.keywords, kw(&[("address", "foo=bar")]));
    }

    #[test]
    fn positional_and_keyword_mix_and_empty_segments_are_kept() {
        let d = tokenize(r"tcp6:8080:backlog=12:interface=\:\:1").unwrap();
        assert_eq!(d.positional, ["tcp6", "8080"]);
        assert_eq!(d.keywords, kw(&[("backlog", "12"), ("interface", "::1")]));
        assert_eq!(tokenize("tcp::80").unwrap().positional, ["tcp", "", "80"]);
    }

    #[test]
    fn brackets_protect_colons() {
        let d = tokenize("tcp6:80:interface=[::1]").unwrap();
        assert_eq!(d.keywords, kw(&[("interface", "[::1]")]));
        assert_eq!(
            tokenize("tcp6:80:interface=[::1"),
            Err(StrportError::UnclosedBracket)
        );
    }

    #[test]
    fn trailing_backslash_is_an_error() {
        assert_eq!(tokenize("tcp:80\\"), Err(StrportError::TrailingBackslash));
    }

    #[test]
    fn quote_round_trips() {
        for value in [r"some : stuff \", "[x]", "plain", "a=b"] {
            let d = tokenize(&format!("t:{}", quote(value))).unwrap();
            assert_eq!(d.positional[1], value);
        }
    }
}
