//! Picking an endpoint's parameters out of a tokenized description, by position or keyword.

use super::StrportError;
use super::tokenize::{Description, tokenize};

/// The parameters of one description: its type, then positional and keyword arguments that
/// each endpoint parser takes one by one. Whatever is left at the end is an error.
#[derive(Debug, Clone)]
pub struct Params {
    kind: String,
    positional: Vec<Option<String>>,
    keywords: Vec<(String, String)>,
}

impl Params {
    /// Splits off the endpoint type (the first positional segment). A keyword given twice is an
    /// error naming it (Twisted silently keeps the last one). An empty positional segment is an
    /// error too (it is almost always an unescaped `:`, as in `interface=::1`), except a lone
    /// one (`tcp:`), which counts as nothing given, so the message says what is missing.
    pub fn new(description: Description) -> Result<Self, StrportError> {
        let mut positional = description.positional.into_iter();
        let kind = positional.next().ok_or(StrportError::NoType)?;
        if kind.is_empty() {
            return Err(StrportError::NoType);
        }
        let mut positional: Vec<String> = positional.collect();
        if positional.len() == 1 && positional[0].is_empty() {
            positional.clear();
        }
        if positional.iter().any(String::is_empty) {
            return Err(StrportError::EmptyArgument);
        }
        let keywords = description.keywords;
        for (i, (key, _)) in keywords.iter().enumerate() {
            if keywords[..i].iter().any(|(earlier, _)| earlier == key) {
                return Err(StrportError::Duplicate(key.clone()));
            }
        }
        Ok(Params {
            kind,
            positional: positional.into_iter().map(Some).collect(),
            keywords,
        })
    }

    /// The endpoint type as written.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Takes parameter `name`, from keyword `name` or from positional slot `position`
    /// (counted after the type). Given both ways, it is an error naming it.
    pub fn take(
        &mut self,
        name: &str,
        position: Option<usize>,
    ) -> Result<Option<String>, StrportError> {
        let by_position = position
            .and_then(|index| self.positional.get_mut(index))
            .and_then(Option::take);
        let by_keyword = self
            .keywords
            .iter()
            .position(|(key, _)| key == name)
            .map(|index| self.keywords.remove(index).1);
        match (by_position, by_keyword) {
            (Some(_), Some(_)) => Err(StrportError::Duplicate(name.to_owned())),
            (value, None) | (None, value) => Ok(value),
        }
    }

    /// Fails if any argument was not taken.
    pub fn finish(self, kind: &'static str, expected: &'static str) -> Result<(), StrportError> {
        if let Some((param, _)) = self.keywords.into_iter().next() {
            return Err(StrportError::UnknownParam {
                kind,
                param,
                expected,
            });
        }
        if let Some(extra) = self.positional.into_iter().flatten().next() {
            return Err(StrportError::TooManyPositional { kind, extra });
        }
        Ok(())
    }
}

/// Reads a description's parameters, and its type in lower case (the types are
/// case-insensitive, as in Twisted).
pub fn read(text: &str) -> Result<(Params, String), StrportError> {
    if text.trim().is_empty() {
        return Err(StrportError::Empty);
    }
    let params = Params::new(tokenize(text)?)?;
    let kind = params.kind().to_ascii_lowercase();
    Ok((params, kind))
}

/// The error for a description whose type (`kind`, in lower case) is none of `expected`: a
/// bare port is told what to write instead (`suggest` makes that from the port), anything
/// else that the type is unknown.
pub fn unknown_type(
    params: &Params,
    kind: &str,
    expected: &str,
    suggest: impl FnOnce(&str) -> String,
) -> StrportError {
    if !kind.is_empty() && kind.bytes().all(|byte| byte.is_ascii_digit()) {
        return StrportError::BarePort {
            suggestion: suggest(kind),
        };
    }
    StrportError::UnknownType {
        found: params.kind().to_owned(),
        expected: expected.to_owned(),
    }
}

/// Takes a `unix:` endpoint's path (parameter `name`, or positional slot 0), which must be
/// given and not empty; `example` shows how, in the error.
pub fn take_unix_path(
    params: &mut Params,
    name: &str,
    example: &'static str,
) -> Result<String, StrportError> {
    params
        .take(name, Some(0))?
        .filter(|path| !path.is_empty())
        .ok_or(StrportError::Missing {
            kind: "unix",
            what: "a path",
            example,
        })
}
