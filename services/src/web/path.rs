//! Turning a request's path into file-system segments that cannot leave the served folder.
//!
//! Each segment is percent-decoded on its own, after the path is split on `/`, and refused when
//! the result could mean something to the file system: `.` and `..` (also spelled `%2e%2E`),
//! a `/` or `\0` inside a segment (`%2f`, `%00`), or bytes that are not UTF-8. Empty segments
//! (`//`) are skipped. The folder itself is then opened so that no symbolic link leads out
//! either (see `files`).

/// Why a request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A `.` or `..` segment, plain or percent-encoded.
    DotSegment,
    /// A `/` or NUL inside a segment, or a bad percent escape, or bytes that are not UTF-8.
    BadSegment,
}

/// The decoded segments of `path` (the part of the request path under the mount), and whether
/// it ended with `/`.
pub fn segments(path: &str) -> Result<(Vec<String>, bool), Refused> {
    let trailing = path.ends_with('/');
    let mut out = Vec::new();
    for raw in path.split('/') {
        if raw.is_empty() {
            continue;
        }
        let decoded = decode(raw).ok_or(Refused::BadSegment)?;
        if decoded == "." || decoded == ".." {
            return Err(Refused::DotSegment);
        }
        if decoded.contains(['/', '\0']) {
            return Err(Refused::BadSegment);
        }
        out.push(decoded);
    }
    Ok((out, trailing))
}

/// Percent-decodes one segment; `None` for a bad escape or a result that is not UTF-8.
pub fn decode(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return Some(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let high = (hex[0] as char).to_digit(16)?;
            let low = (hex[1] as char).to_digit(16)?;
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes a file name for a link in a listing (everything but unreserved bytes).
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_split_into_decoded_segments() {
        assert_eq!(
            segments("/a/b%20c.txt"),
            Ok((vec!["a".into(), "b c.txt".into()], false))
        );
        assert_eq!(segments("/a//b/"), Ok((vec!["a".into(), "b".into()], true)));
        assert_eq!(segments(""), Ok((vec![], false)));
        assert_eq!(segments("/"), Ok((vec![], true)));
        assert_eq!(segments("/..a/a..").map(|s| s.0.len()), Ok(2));
    }

    #[test]
    fn every_spelling_of_a_way_out_is_refused() {
        for dots in [
            "/..",
            "/a/../b",
            "/%2e%2e/x",
            "/%2E%2e",
            "/.%2e",
            "/./a",
            "/%2e",
        ] {
            assert_eq!(segments(dots), Err(Refused::DotSegment), "{dots}");
        }
        for bad in ["/a%2fb", "/a%2F..%2Fb", "/a%00b", "/%zz", "/%2", "/%ff"] {
            assert_eq!(segments(bad), Err(Refused::BadSegment), "{bad}");
        }
    }

    #[test]
    fn names_are_encoded_for_links() {
        assert_eq!(encode("a b&<c>.txt"), "a%20b%26%3Cc%3E.txt");
        assert_eq!(decode(&encode("ü/%")), Some("ü/%".into()));
    }
}
