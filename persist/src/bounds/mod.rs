//! Bounds on what a snapshot may ask a decoder to do, checked by a linear scan before any
//! decoding: a hostile file gets an error, never an abort, a stack overflow or an out-of-memory
//! kill.
//!
//! - the whole file: at most [`Limits::max_bytes`](crate::Limits);
//! - nesting: at most [`MAX_DEPTH`] levels of arrays and maps;
//! - values: at most [`Limits::max_values`](crate::Limits) in all, and no container may claim
//!   more elements than there are bytes left to hold them (each takes at least one), so a
//!   5-byte array header claiming four billion elements is refused at once;
//! - keys: no map holds the same key twice (a decoder would keep one of them silently, and
//!   `rtap inspect` could show another tree than the one `rtwistd` runs).
//!
//! The functions without `_with` apply the default [`Limits`].

mod keys;

use keys::{KeyStack, fingerprint};

use crate::{FormatError, Limits};

/// The largest snapshot loaded by default: 512 MiB.
pub const MAX_SNAPSHOT_BYTES: u64 = crate::limits::DEFAULT_MAX_BYTES;
/// The deepest nesting of arrays and maps accepted (serde_json's own limit).
pub const MAX_DEPTH: usize = crate::limits::MAX_DEPTH;
/// The most values accepted in one snapshot by default (100,000 services take about two
/// million).
pub const MAX_ELEMENTS: u64 = crate::limits::DEFAULT_MAX_VALUES;

#[cold]
fn corrupt(detail: String) -> FormatError {
    FormatError::Corrupt { detail }
}

/// Checks the size of a whole snapshot against the default limits.
pub fn check_size(size: u64) -> Result<(), FormatError> {
    Limits::default().check_size(size)
}

/// One MessagePack item, read without decoding its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// A string's bytes.
    Str(&'a [u8]),
    /// A map with this many key/value pairs.
    Map(u64),
    /// An array with this many elements.
    Array(u64),
    /// Anything else (numbers, nil, booleans, binary, extensions).
    Scalar,
}

/// Reads the item at `*position` and moves past it (past a container's header only), checking
/// that its lengths fit in the bytes left.
#[inline]
pub fn next_item<'a>(bytes: &'a [u8], position: &mut usize) -> Result<Item<'a>, FormatError> {
    let marker = *bytes
        .get(*position)
        .ok_or_else(|| corrupt("the data ends inside a value".into()))?;
    *position += 1;
    let read_len = |position: &mut usize, width: usize| -> Result<u64, FormatError> {
        let field = bytes
            .get(*position..*position + width)
            .ok_or_else(|| corrupt("the data ends inside a length".into()))?;
        *position += width;
        Ok(field.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
    };
    let (skip, item) = match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, Item::Scalar),
        0x80..=0x8f => (0, Item::Map(u64::from(marker & 0x0f))),
        0x90..=0x9f => (0, Item::Array(u64::from(marker & 0x0f))),
        0xa0..=0xbf => (u64::from(marker & 0x1f), Item::Str(&[])),
        0xd9 => (read_len(position, 1)?, Item::Str(&[])),
        0xda => (read_len(position, 2)?, Item::Str(&[])),
        0xdb => (read_len(position, 4)?, Item::Str(&[])),
        0xc4 => (read_len(position, 1)?, Item::Scalar),
        0xc5 => (read_len(position, 2)?, Item::Scalar),
        0xc6 => (read_len(position, 4)?, Item::Scalar),
        0xc7 => (read_len(position, 1)? + 1, Item::Scalar),
        0xc8 => (read_len(position, 2)? + 1, Item::Scalar),
        0xc9 => (read_len(position, 4)? + 1, Item::Scalar),
        0xca => (4, Item::Scalar),
        0xcb => (8, Item::Scalar),
        0xcc | 0xd0 => (1, Item::Scalar),
        0xcd | 0xd1 => (2, Item::Scalar),
        0xce | 0xd2 => (4, Item::Scalar),
        0xcf | 0xd3 => (8, Item::Scalar),
        0xd4 => (2, Item::Scalar),
        0xd5 => (3, Item::Scalar),
        0xd6 => (5, Item::Scalar),
        0xd7 => (9, Item::Scalar),
        0xd8 => (17, Item::Scalar),
        0xdc => (0, Item::Array(read_len(position, 2)?)),
        0xdd => (0, Item::Array(read_len(position, 4)?)),
        0xde => (0, Item::Map(read_len(position, 2)?)),
        0xdf => (0, Item::Map(read_len(position, 4)?)),
        0xc1 => return Err(corrupt("an invalid MessagePack marker (0xc1)".into())),
    };
    let left = (bytes.len() - *position) as u64;
    if skip > left {
        return Err(corrupt(format!(
            "a value claims {skip} bytes but only {left} remain"
        )));
    }
    let start = *position;
    *position += skip as usize;
    Ok(match item {
        Item::Str(_) => Item::Str(&bytes[start..*position]),
        other => other,
    })
}

/// Walks one MessagePack value (and nothing after it) without decoding it, calling `visit`
/// for every item with the items of the map it is a key or value in: `(item, index in its
/// container, is the container a map)`. Applies the default [`Limits`].
pub fn walk_msgpack<'a>(
    bytes: &'a [u8],
    visit: impl FnMut(Item<'a>, u64, bool),
) -> Result<(), FormatError> {
    walk_msgpack_with(bytes, &Limits::default(), visit)
}

/// [`walk_msgpack`] under `limits`.
pub fn walk_msgpack_with<'a>(
    bytes: &'a [u8],
    limits: &Limits,
    mut visit: impl FnMut(Item<'a>, u64, bool),
) -> Result<(), FormatError> {
    let mut position = 0usize;
    // Open containers: (elements left, elements in all, is a map); and the keys seen in each.
    let mut open: Vec<(u64, u64, bool)> = Vec::new();
    let mut top = (1u64, 1u64, false);
    let mut keys = KeyStack::default();
    let mut elements: u64 = 0;
    loop {
        if top.0 == 0 {
            match open.pop() {
                Some(outer) => {
                    top = outer;
                    keys.close();
                    continue;
                }
                None => break,
            }
        }
        let index = top.1 - top.0;
        top.0 -= 1;
        elements += 1;
        if elements > limits.max_values {
            return Err(FormatError::TooManyValues {
                limit: limits.max_values,
            });
        }
        let start = position;
        let item = next_item(bytes, &mut position)?;
        if top.2 && index.is_multiple_of(2) {
            let key = match item {
                // Nearly every key is a field name: its bytes are the key.
                Item::Str(text) => Some(Key::Text(text)),
                // A container as a key is not compared.
                Item::Map(_) | Item::Array(_) => None,
                Item::Scalar => Some(scalar_key(&bytes[start..position])),
            };
            if let Some(key) = key {
                let print = match key {
                    Key::Text(bytes) | Key::Bytes(bytes) | Key::Other(bytes) => fingerprint(bytes),
                    Key::Unsigned(number) => number,
                    Key::Negative(number) => number as u64,
                };
                keys.insert(key, print)
                    .map_err(|key| FormatError::DuplicateKey {
                        key: describe_key(key),
                    })?;
            }
        }
        visit(item, index, top.2);
        let (children, is_map) = match item {
            Item::Map(pairs) => (pairs.saturating_mul(2), true),
            Item::Array(count) => (count, false),
            _ => (0, false),
        };
        if children > 0 {
            let left = (bytes.len() - position) as u64;
            if children > left {
                return Err(corrupt(format!(
                    "a container claims {children} elements but only {left} bytes remain"
                )));
            }
            if open.len() >= MAX_DEPTH {
                return Err(corrupt(format!("nesting deeper than {MAX_DEPTH} levels")));
            }
            open.push(top);
            keys.open();
            top = (children, children, is_map);
        }
    }
    if position != bytes.len() {
        return Err(corrupt(format!(
            "{} unexpected bytes after the value",
            bytes.len() - position
        )));
    }
    Ok(())
}

/// Checks one MessagePack value against the default bounds without decoding it.
pub fn scan_msgpack(bytes: &[u8]) -> Result<(), FormatError> {
    scan_msgpack_with(bytes, &Limits::default())
}

/// Checks one MessagePack value against `limits` without decoding it.
pub fn scan_msgpack_with(bytes: &[u8], limits: &Limits) -> Result<(), FormatError> {
    walk_msgpack_with(bytes, limits, |_, _, _| {})
}

/// A map key as decoders compare it: its text or bytes, or its number, whatever the encoding
/// width chosen for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key<'a> {
    Text(&'a [u8]),
    Bytes(&'a [u8]),
    /// A non-negative integer, however it was encoded (signed or not).
    Unsigned(u64),
    /// A negative integer.
    Negative(i64),
    Other(&'a [u8]),
}

/// The key a scalar stands for, from its encoded bytes `raw`.
fn scalar_key(raw: &[u8]) -> Key<'_> {
    let be = |bytes: &[u8]| bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
    let signed = |number: i64| match u64::try_from(number) {
        Ok(unsigned) => Key::Unsigned(unsigned),
        Err(_) => Key::Negative(number),
    };
    match raw {
        [marker @ 0x00..=0x7f] => Key::Unsigned(u64::from(*marker)),
        [marker @ 0xe0..=0xff] => Key::Negative(i64::from(*marker as i8)),
        [0xcc..=0xcf, rest @ ..] => Key::Unsigned(be(rest)),
        [0xd0, b] => signed(i64::from(*b as i8)),
        [0xd1, a, b] => signed(i64::from(i16::from_be_bytes([*a, *b]))),
        [0xd2, rest @ ..] => signed(i64::from(be(rest) as u32 as i32)),
        [0xd3, rest @ ..] => signed(be(rest) as i64),
        [0xc4, _, rest @ ..] => Key::Bytes(rest),
        [0xc5, _, _, rest @ ..] => Key::Bytes(rest),
        [0xc6, _, _, _, _, rest @ ..] => Key::Bytes(rest),
        other => Key::Other(other),
    }
}

fn describe_key(key: Key<'_>) -> String {
    match key {
        Key::Text(text) => String::from_utf8_lossy(text).into_owned(),
        Key::Bytes(bytes) => format!("{} bytes", bytes.len()),
        Key::Unsigned(number) => number.to_string(),
        Key::Negative(number) => number.to_string(),
        Key::Other(_) => "(a value)".to_owned(),
    }
}

/// Counts the values and nesting of a JSON text without decoding it (strings are skipped,
/// escapes included), and checks that no object holds a key twice, under the default limits.
/// Syntax is left to the parser.
pub fn scan_json(text: &[u8]) -> Result<(), FormatError> {
    scan_json_with(text, &Limits::default())
}

/// [`scan_json`] under `limits`.
pub fn scan_json_with(text: &[u8], limits: &Limits) -> Result<(), FormatError> {
    // Open containers: is an object; and the keys seen in each.
    let mut open: Vec<bool> = Vec::new();
    let mut keys = KeyStack::default();
    let mut elements: u64 = 0;
    // The string that just ended, which is a key if a ':' follows.
    let mut last_string: Option<&[u8]> = None;
    let mut at = 0;
    while let Some(&byte) = text.get(at) {
        at += 1;
        match byte {
            b'"' => {
                // Strings are most of the text: jump to their end rather than step through.
                let Some(end) = string_end(text, at) else {
                    break; // unterminated: the parser says so
                };
                last_string = Some(&text[at - 1..=end]);
                at = end + 1;
                continue;
            }
            // Whitespace (a pretty file's indentation) keeps the string before it a key; a
            // run of it is stepped over in one tight loop.
            b' ' | b'\n' | b'\r' | b'\t' => {
                at += text[at..]
                    .iter()
                    .take_while(|byte| matches!(byte, b' ' | b'\n' | b'\r' | b'\t'))
                    .count();
                continue;
            }
            b'[' | b'{' => {
                count_value(&mut elements, limits)?;
                if open.len() >= MAX_DEPTH {
                    return Err(corrupt(format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                open.push(byte == b'{');
                keys.open();
            }
            b']' | b'}' if open.pop().is_some() => keys.close(),
            b':' => {
                count_value(&mut elements, limits)?;
                if let (Some(true), Some(quoted)) = (open.last(), last_string) {
                    insert_json_key(&mut keys, quoted)?;
                }
            }
            b',' => count_value(&mut elements, limits)?,
            _ => {}
        }
        last_string = None;
    }
    Ok(())
}

/// Counts one more value, refusing past the limit.
fn count_value(elements: &mut u64, limits: &Limits) -> Result<(), FormatError> {
    *elements += 1;
    if *elements > limits.max_values {
        return Err(FormatError::TooManyValues {
            limit: limits.max_values,
        });
    }
    Ok(())
}

/// Where the JSON string whose text starts at `from` (after its opening quote) ends: the index
/// of its closing quote, escapes skipped; none when the text ends first.
fn string_end(text: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let found = at + memchr::memchr2(b'"', b'\\', text.get(at..)?)?;
        if text[found] == b'"' {
            return Some(found);
        }
        at = found + 2; // the backslash and the character it escapes
    }
}

/// What one byte of JSON text is to a scan of its structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonByte {
    /// Outside any string (an opening quote included).
    Outside,
    /// Inside a string, escapes included.
    InString,
    /// The quote that closes a string.
    StringEnd,
}

/// Follows the strings of JSON text byte by byte, so a scan of its structure can skip them.
#[derive(Debug, Default)]
pub(crate) struct JsonStrings {
    in_string: bool,
    escaped: bool,
}

impl JsonStrings {
    /// Takes the next byte of the text and says what it is.
    pub(crate) fn next(&mut self, byte: u8) -> JsonByte {
        if !self.in_string {
            self.in_string = byte == b'"';
            return JsonByte::Outside;
        }
        if self.escaped {
            self.escaped = false;
        } else if byte == b'\\' {
            self.escaped = true;
        } else if byte == b'"' {
            self.in_string = false;
            return JsonByte::StringEnd;
        }
        JsonByte::InString
    }
}

/// Adds the key `quoted` (its quotes included) to the innermost open object, compared by the
/// text it stands for (escapes decoded).
fn insert_json_key<'a>(
    keys: &mut KeyStack<std::borrow::Cow<'a, [u8]>>,
    quoted: &'a [u8],
) -> Result<(), FormatError> {
    let key: std::borrow::Cow<'a, [u8]> = if quoted.contains(&b'\\') {
        match serde_json::from_slice::<String>(quoted) {
            Ok(text) => std::borrow::Cow::Owned(text.into_bytes()),
            // Bad escapes are the parser's to report.
            Err(_) => return Ok(()),
        }
    } else {
        std::borrow::Cow::Borrowed(&quoted[1..quoted.len() - 1])
    };
    let print = fingerprint(&key);
    keys.insert(key, print).map_err(|_| {
        let text = serde_json::from_slice::<String>(quoted)
            .unwrap_or_else(|_| String::from_utf8_lossy(quoted).into_owned());
        FormatError::DuplicateKey { key: text }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_msgpack_passes() {
        let value = serde_json::json!({"a": [1, 2.5, "x", null, true, {"b": [[], {}]}], "c": -7});
        scan_msgpack(&rmp_serde::to_vec_named(&value).unwrap()).unwrap();
    }

    #[test]
    fn a_huge_claimed_array_is_refused_at_once() {
        let err = scan_msgpack(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]).unwrap_err();
        assert!(
            err.to_string()
                .contains("claims 4294967295 elements but only 1 bytes remain"),
            "{err}"
        );
        let err = scan_msgpack(&[0xdb, 0xff, 0xff, 0xff, 0xff]).unwrap_err();
        assert!(err.to_string().contains("claims 4294967295 bytes"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = vec![0x91; MAX_DEPTH + 2];
        let err = scan_msgpack(&deep).unwrap_err();
        assert!(err.to_string().contains("nesting deeper than 128"), "{err}");
        let json = "[".repeat(MAX_DEPTH + 1);
        assert!(scan_json(json.as_bytes()).is_err());
        let fine = format!("{}{}", "[".repeat(10), "]".repeat(10));
        scan_json(fine.as_bytes()).unwrap();
    }

    #[test]
    fn json_brackets_inside_strings_do_not_count() {
        let text = format!("{{\"a\": \"{}\\\"\"}}", "[".repeat(500));
        scan_json(text.as_bytes()).unwrap();
    }

    #[test]
    fn json_keys_are_compared_whole_across_escapes() {
        // An escaped quote or backslash does not end a key; equal keys are found either way.
        assert!(scan_json(br#"{"a\"b": 1, "a\"b": 2}"#).is_err());
        scan_json(br#"{"a\\": 1, "a": 2, "\\": [":", "{"]}"#).unwrap();
        assert!(scan_json(br#"{"k": {"x\\": 1, "x\\": 2}}"#).is_err());
        // Unterminated strings are left to the parser, whatever follows the last escape.
        scan_json(br#"{"a": "open\"#).unwrap();
        scan_json(br#"{"a": "open"#).unwrap();
        let too_many = Limits {
            max_values: 3,
            ..Limits::default()
        };
        assert!(scan_json_with(br#"[1, "a,b", 2, 3, 4]"#, &too_many).is_err());
        scan_json_with(br#"["a,b,c,d,e,f"]"#, &too_many).unwrap();
    }

    #[test]
    fn a_msgpack_key_seen_twice_in_one_map_is_refused_whatever_its_encoding() {
        let dup = |bytes: &[u8]| scan_msgpack(bytes).unwrap_err().to_string();
        // {1: nil, 1: nil}, the second 1 written in a wider encoding.
        assert!(dup(&[0x82, 0x01, 0xc0, 0xcc, 0x01, 0xc0]).contains("key '1' twice"));
        assert!(dup(&[0x82, 0xd0, 0x05, 0xc0, 0x05, 0xc0]).contains("key '5' twice"));
        assert!(dup(&[0x82, 0xff, 0xc0, 0xd1, 0xff, 0xff, 0xc0]).contains("key '-1' twice"));
        scan_msgpack(&[
            0x82, 0xff, 0xc0, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc0,
        ])
        .unwrap();
        // {"a": {"a": nil}} is fine: the keys are in different maps.
        scan_msgpack(&[0x81, 0xa1, b'a', 0x81, 0xa1, b'a', 0xc0]).unwrap();
        // A large map (hashed keys) with its first key again at the end.
        let mut large = serde_json::Map::new();
        for n in 0..40 {
            large.insert(format!("k{n}"), serde_json::json!({"k0": n}));
        }
        let mut bytes = rmp_serde::to_vec_named(&large).unwrap();
        scan_msgpack(&bytes).unwrap();
        bytes[2] = 41; // the map16 header: one more pair than written, added below
        bytes.extend_from_slice(&[0xa2, b'k', b'0', 0xc0]);
        assert_eq!(bytes[0], 0xde, "a map16 header");
        assert!(dup(&bytes).contains("key 'k0' twice"));
    }

    #[test]
    fn trailing_bytes_and_bad_markers_are_refused() {
        assert!(scan_msgpack(&[0xc0, 0xc0]).is_err());
        assert!(scan_msgpack(&[0xc1]).is_err());
        assert!(scan_msgpack(&[]).is_err());
    }
}
