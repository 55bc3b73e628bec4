//! The few lexical rules the translation of import lines needs: blanks, comments, string
//! literals (so an import in a docstring stays text), names; and a problem at a byte range,
//! turned into a Starlark error that points at the user's line and column.

use starlark::codemap::{CodeMap, Pos, Span};

/// A problem at a byte range of the file.
pub struct Problem {
    pub start: usize,
    pub end: usize,
    pub message: String,
}

impl Problem {
    pub fn new(start: usize, end: usize, message: impl Into<String>) -> Self {
        Problem {
            start,
            end,
            message: message.into(),
        }
    }

    pub fn into_error(self, file: &str, source: &str) -> starlark::Error {
        let codemap = CodeMap::new(file.to_owned(), source.to_owned());
        let span = Span::new(Pos::new(offset(self.start)), Pos::new(offset(self.end)));
        let mut error = starlark::Error::new_other(anyhow::anyhow!("{}", self.message));
        error.set_span(span, &codemap);
        error
    }
}

fn offset(position: usize) -> u32 {
    u32::try_from(position).unwrap_or(u32::MAX)
}

/// A position in the file's bytes, with the few lexical rules the translation needs.
pub struct Scanner<'a> {
    /// The file.
    pub bytes: &'a [u8],
    /// The position.
    pub at: usize,
}

pub fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

impl Scanner<'_> {
    pub fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Spaces and tabs.
    pub fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\x0c')) {
            self.at += 1;
        }
    }

    pub fn skip_comment(&mut self) {
        while !matches!(self.peek(), None | Some(b'\n')) {
            self.at += 1;
        }
    }

    /// A string literal from its opening quote: single or triple quoted, escapes skipped; a
    /// single-quoted one ends at the end of its line at the latest.
    pub fn skip_string(&mut self) {
        let quote = self.bytes[self.at];
        let triple = self.bytes.get(self.at..self.at + 3) == Some(&[quote, quote, quote][..]);
        self.at += if triple { 3 } else { 1 };
        while let Some(byte) = self.peek() {
            match byte {
                b'\\' => self.at += 2,
                b'\n' if !triple => return,
                _ if byte == quote => {
                    if !triple {
                        self.at += 1;
                        return;
                    }
                    if self.bytes.get(self.at..self.at + 3) == Some(&[quote, quote, quote][..]) {
                        self.at += 3;
                        return;
                    }
                    self.at += 1;
                }
                _ => self.at += 1,
            }
        }
    }

    /// `import`, `from` or `class` at the position, followed by a blank, without moving.
    pub fn keyword(&self) -> Option<&'static str> {
        ["import", "from", "class"].into_iter().find(|word| {
            self.bytes[self.at..].starts_with(word.as_bytes())
                && matches!(
                    self.bytes.get(self.at + word.len()),
                    Some(b' ' | b'\t' | b'\\')
                )
        })
    }

    /// The name after `class` (for the message), or `...`.
    pub fn name_after_keyword(&self, mut at: usize) -> String {
        while matches!(self.bytes.get(at), Some(b' ' | b'\t')) {
            at += 1;
        }
        let start = at;
        while self.bytes.get(at).is_some_and(|byte| is_name_byte(*byte)) {
            at += 1;
        }
        match std::str::from_utf8(&self.bytes[start..at]) {
            Ok(name) if !name.is_empty() => name.to_owned(),
            _ => "...".to_owned(),
        }
    }
}
