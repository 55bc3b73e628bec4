//! `Range: bytes=...` (RFC 9110, section 14): which parts of a representation to send.

/// The most ranges one request may ask for; more, or overlapping ones, and the whole
/// representation is sent instead (as the RFC allows), so a request cannot multiply the work.
pub const MAX_RANGES: usize = 16;

/// What a `Range` header asks of a representation of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// Send the whole representation (no header, another unit, a malformed or abusive one).
    Whole,
    /// Send these byte ranges (inclusive bounds), in the order asked.
    Parts(Vec<(u64, u64)>),
    /// No range overlaps the representation: `416` with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Parses a `Range` header value for a representation of `size` bytes.
pub fn parse(header: &str, size: u64) -> Ranges {
    let Some(specs) = header.trim().strip_prefix("bytes=") else {
        return Ranges::Whole;
    };
    let mut parts = Vec::new();
    let mut any_valid = false;
    for spec in specs.split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return Ranges::Whole;
        };
        let (first, last) = (first.trim(), last.trim());
        let range = if first.is_empty() {
            // A suffix: the last N bytes.
            let Ok(suffix) = last.parse::<u64>() else {
                return Ranges::Whole;
            };
            any_valid = true;
            if suffix == 0 || size == 0 {
                None
            } else {
                Some((size.saturating_sub(suffix), size - 1))
            }
        } else {
            let Ok(start) = first.parse::<u64>() else {
                return Ranges::Whole;
            };
            let end = if last.is_empty() {
                None
            } else {
                match last.parse::<u64>() {
                    Ok(end) if end >= start => Some(end),
                    _ => return Ranges::Whole,
                }
            };
            any_valid = true;
            if start >= size {
                None
            } else {
                Some((start, end.map_or(size - 1, |end| end.min(size - 1))))
            }
        };
        if let Some(range) = range {
            parts.push(range);
            if parts.len() > MAX_RANGES {
                return Ranges::Whole;
            }
        }
    }
    if !any_valid {
        return Ranges::Whole;
    }
    if parts.is_empty() {
        return Ranges::Unsatisfiable;
    }
    let mut sorted = parts.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|pair| pair[1].0 <= pair[0].1) {
        return Ranges::Whole;
    }
    Ranges::Parts(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_of_the_rfc() {
        assert_eq!(parse("bytes=0-499", 1000), Ranges::Parts(vec![(0, 499)]));
        assert_eq!(parse("bytes=500-", 1000), Ranges::Parts(vec![(500, 999)]));
        assert_eq!(parse("bytes=-100", 1000), Ranges::Parts(vec![(900, 999)]));
        assert_eq!(parse("bytes=-5000", 1000), Ranges::Parts(vec![(0, 999)]));
        assert_eq!(
            parse("bytes=990-2000", 1000),
            Ranges::Parts(vec![(990, 999)])
        );
        assert_eq!(
            parse("bytes=0-0, 10-19", 1000),
            Ranges::Parts(vec![(0, 0), (10, 19)])
        );
    }

    #[test]
    fn out_of_bounds_is_unsatisfiable_and_nonsense_is_ignored() {
        assert_eq!(parse("bytes=1000-", 1000), Ranges::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 1000), Ranges::Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0), Ranges::Unsatisfiable);
        assert_eq!(parse("bytes=5-1", 1000), Ranges::Whole);
        assert_eq!(parse("items=0-1", 1000), Ranges::Whole);
        assert_eq!(parse("bytes=a-b", 1000), Ranges::Whole);
        assert_eq!(parse("bytes=0-10,5-20", 1000), Ranges::Whole);
        let many: Vec<String> = (0..20)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect();
        assert_eq!(
            parse(&format!("bytes={}", many.join(",")), 1000),
            Ranges::Whole
        );
    }
}
