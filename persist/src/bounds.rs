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

/// Walks one MessagePack value (and nothing after it) without decoding it.
pub fn scan_msgpack(bytes: &[u8]) -> Result<(), FormatError> {
    let mut position = 0usize;
    // Elements still expected in each open container.
    let mut open: Vec<u64> = Vec::new();
    let mut elements: u64 = 0;
    let mut expected: u64 = 1;
    while expected > 0 || !open.is_empty() {
        if expected == 0 {
            expected = open.pop().unwrap_or(0);
            continue;
        }
        expected -= 1;
        elements += 1;
        if elements > MAX_ELEMENTS {
            return Err(corrupt(format!("more than {MAX_ELEMENTS} values")));
        }
        let marker = *bytes
            .get(position)
            .ok_or_else(|| corrupt("the data ends inside a value".into()))?;
        position += 1;
        let read_len = |position: &mut usize, width: usize| -> Result<u64, FormatError> {
            let field = bytes
                .get(*position..*position + width)
                .ok_or_else(|| corrupt("the data ends inside a length".into()))?;
            *position += width;
            Ok(field.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
        };
        let (skip, children) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (u64::from(marker & 0x1f), 0),
            0xc4 | 0xd9 => (read_len(&mut position, 1)?, 0),
            0xc5 | 0xda => (read_len(&mut position, 2)?, 0),
            0xc6 | 0xdb => (read_len(&mut position, 4)?, 0),
            0xc7 => (read_len(&mut position, 1)? + 1, 0),
            0xc8 => (read_len(&mut position, 2)? + 1, 0),
            0xc9 => (read_len(&mut position, 4)? + 1, 0),
            0xca => (4, 0),
            0xcb => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 => (4, 0),
            0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (0, read_len(&mut position, 2)?),
            0xdd => (0, read_len(&mut position, 4)?),
            0xde => (0, 2 * read_len(&mut position, 2)?),
            0xdf => (0, 2 * read_len(&mut position, 4)?),
            0xc1 => return Err(corrupt("an invalid MessagePack marker (0xc1)".into())),
        };
        let left = (bytes.len() - position) as u64;
        if skip > left {
            return Err(corrupt(format!(
                "a value claims {skip} bytes but only {left} remain"
            )));
        }
        position += skip as usize;
        if children > 0 {
            if children > left {
                return Err(corrupt(format!(
                    "a container claims {children} elements but only {left} bytes remain"
                )));
            }
            if open.len() >= MAX_DEPTH {
                return Err(corrupt(format!("nesting deeper than {MAX_DEPTH} levels")));
            }
            open.push(expected);
            expected = children;
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
