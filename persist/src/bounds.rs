//! Bounds on what a snapshot may ask a decoder to do, checked by a linear scan before any
//! decoding: a hostile file gets an error, never an abort, a stack overflow or an out-of-memory
//! kill.
//!
//! - the whole file: at most [`MAX_SNAPSHOT_BYTES`];
//! - nesting: at most [`MAX_DEPTH`] levels of arrays and maps;
//! - elements: at most [`MAX_ELEMENTS`] values in all, and no container may claim more elements
//!   than there are bytes left to hold them (each takes at least one), so a 5-byte array header
//!   claiming four billion elements is refused at once.

use crate::FormatError;

/// The largest snapshot loaded: 512 MiB.
pub const MAX_SNAPSHOT_BYTES: u64 = 512 * 1024 * 1024;
/// The deepest nesting of arrays and maps accepted (serde_json's own limit).
pub const MAX_DEPTH: usize = 128;
/// The most values accepted in one snapshot (100,000 services take about two million).
pub const MAX_ELEMENTS: u64 = 50_000_000;

fn corrupt(detail: String) -> FormatError {
    FormatError::Corrupt { detail }
}

/// Checks the size of a whole snapshot.
pub fn check_size(size: u64) -> Result<(), FormatError> {
    if size > MAX_SNAPSHOT_BYTES {
        return Err(FormatError::TooLarge {
            size,
            limit: MAX_SNAPSHOT_BYTES,
        });
    }
    Ok(())
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
/// container, is the container a map)`.
pub fn walk_msgpack<'a>(
    bytes: &'a [u8],
    mut visit: impl FnMut(Item<'a>, u64, bool),
) -> Result<(), FormatError> {
    let mut position = 0usize;
    // Open containers: (elements left, elements in all, is a map).
    let mut open: Vec<(u64, u64, bool)> = Vec::new();
    let mut top = (1u64, 1u64, false);
    let mut elements: u64 = 0;
    loop {
        if top.0 == 0 {
            match open.pop() {
                Some(outer) => {
                    top = outer;
                    continue;
                }
                None => break,
            }
        }
        let index = top.1 - top.0;
        top.0 -= 1;
        elements += 1;
        if elements > MAX_ELEMENTS {
            return Err(corrupt(format!("more than {MAX_ELEMENTS} values")));
        }
        let item = next_item(bytes, &mut position)?;
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

/// Checks one MessagePack value against the bounds without decoding it.
pub fn scan_msgpack(bytes: &[u8]) -> Result<(), FormatError> {
    walk_msgpack(bytes, |_, _, _| {})
}

/// Counts the values and nesting of a JSON text without decoding it (strings are skipped,
/// escapes included). Syntax is left to the parser.
pub fn scan_json(text: &[u8]) -> Result<(), FormatError> {
    let mut depth = 0usize;
    let mut elements: u64 = 0;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                elements += 1;
                if depth > MAX_DEPTH {
                    return Err(corrupt(format!("nesting deeper than {MAX_DEPTH} levels")));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' | b':' => elements += 1,
            _ => {}
        }
        if elements > MAX_ELEMENTS {
            return Err(corrupt(format!("more than {MAX_ELEMENTS} values")));
        }
    }
    Ok(())
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
    fn trailing_bytes_and_bad_markers_are_refused() {
        assert!(scan_msgpack(&[0xc0, 0xc0]).is_err());
        assert!(scan_msgpack(&[0xc1]).is_err());
        assert!(scan_msgpack(&[]).is_err());
    }
}
