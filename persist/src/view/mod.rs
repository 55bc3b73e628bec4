//! A snapshot's data as generic values (`serde_json::Value`) for people and scripts, decoded in
//! bounded memory: what `rtap inspect` and `rtap store diff` show, whether or not this binary
//! links the snapshot's types.
//!
//! With [`Detail::Summaries`] (the default), a large field is not decoded but summarized: an
//! array, string or byte string larger than [`SHOWN_BYTES`] encoded, or a map of more than
//! [`SHOWN_ENTRIES`] entries that large, becomes
//!
//! ```json
//! {"$summarized": {"entries": 1000000, "bytes": 39112204, "sha256": "…"}}
//! ```
//!
//! (`entries` is absent for strings and byte strings; `sha256` is of the encoded value, so two
//! summaries of one style tell whether the values differ). The service tree itself (`children`)
//! is always decoded. [`Detail::Everything`] decodes every value.
//!
//! Byte strings (MessagePack `bin`) read as text when they are UTF-8, else as
//! `{"base64": "…"}`: the form the `tas` style writes them in.

mod json;
mod msgpack;

use serde_json::{Map, Value};

pub use json::from_json;
pub use msgpack::from_msgpack;

/// The key of a summary object.
pub const SUMMARY_KEY: &str = "$summarized";
/// Values larger than this many encoded bytes are summarized (maps only when they also have
/// more than [`SHOWN_ENTRIES`] entries).
pub const SHOWN_BYTES: usize = 64 * 1024;
/// Maps with more entries than this (and larger than [`SHOWN_BYTES`]) are summarized.
pub const SHOWN_ENTRIES: u64 = 256;
/// The key under which collections keep their children: always decoded.
pub(crate) const CHILDREN: &str = "children";
/// Arrays with at most this many elements are decoded without measuring them first.
pub(crate) const MEASURED_ELEMENTS: u64 = 64;

/// How much of the data to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// Large fields become summaries: memory stays bounded by what is shown.
    #[default]
    Summaries,
    /// Every value, however large.
    Everything,
}

/// A summary of a value that was not decoded.
pub fn summary(entries: Option<u64>, bytes: u64, encoded: &[u8]) -> Value {
    let mut inner = Map::new();
    if let Some(entries) = entries {
        inner.insert("entries".into(), entries.into());
    }
    inner.insert("bytes".into(), bytes.into());
    inner.insert(
        "sha256".into(),
        crate::header::checksum(&[encoded])
            .trim_start_matches("sha256:")
            .into(),
    );
    let mut outer = Map::new();
    outer.insert(SUMMARY_KEY.into(), Value::Object(inner));
    Value::Object(outer)
}

/// `1,000,000 entries, 39 MB` for a summary; `None` for any other value.
pub fn describe_summary(value: &Value) -> Option<String> {
    let inner = value.as_object()?.get(SUMMARY_KEY)?.as_object()?;
    let bytes = inner.get("bytes")?.as_u64()?;
    Some(match inner.get("entries").and_then(Value::as_u64) {
        Some(entries) => format!(
            "{} entr{}, {}",
            thousands(entries),
            if entries == 1 { "y" } else { "ies" },
            human_bytes(bytes)
        ),
        None => human_bytes(bytes),
    })
}

/// `1,234,567`.
pub fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `512 B`, `64 kB`, `39 MB`, `1.2 GB` (decimal units).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// Bytes in the readable form: text when they are UTF-8, else `{"base64": "…"}`.
pub fn readable_bytes(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => Value::String(text.to_owned()),
        Err(_) => {
            let mut map = Map::new();
            map.insert("base64".into(), Value::String(base64_encode(bytes)));
            Value::Object(map)
        }
    }
}

/// Standard base64 with padding (RFC 4648).
pub fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64, padded or not; `None` if it is not base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(text).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    // Typed data, as snapshots hold: with serde_json's `arbitrary_precision` (which another
    // crate of the workspace enables) a `Value`'s numbers would not encode as numbers.
    #[derive(serde::Serialize)]
    struct Small {
        name: &'static str,
        n: (u8, i8, f64, Option<u8>, bool),
        m: std::collections::BTreeMap<&'static str, &'static str>,
    }

    #[test]
    fn small_values_read_the_same_from_both_styles() {
        let small = Small {
            name: "a",
            n: (1, -2, 3.5, None, true),
            m: [("k", "v")].into_iter().collect(),
        };
        let value = json!({"name": "a", "n": [1, -2, 3.5, null, true], "m": {"k": "v"}});
        let packed = rmp_serde::to_vec_named(&small).unwrap();
        assert_eq!(from_msgpack(&packed, Detail::Summaries).unwrap(), value);
        let text = serde_json::to_string(&small).unwrap();
        assert_eq!(from_json(&text, Detail::Summaries).unwrap(), value);
    }

    #[derive(serde::Serialize)]
    struct Child {
        name: String,
    }

    #[derive(serde::Serialize)]
    struct Large {
        items: Vec<u64>,
        children: Vec<Child>,
        small: [u8; 2],
    }

    #[test]
    fn large_fields_are_summarized_and_children_are_not() {
        let large = Large {
            items: (0..100_000).collect(),
            children: (0..2000)
                .map(|i| Child {
                    name: format!("s{i}"),
                })
                .collect(),
            small: [1, 2],
        };
        for decoded in [
            from_msgpack(&rmp_serde::to_vec_named(&large).unwrap(), Detail::Summaries).unwrap(),
            from_json(&serde_json::to_string(&large).unwrap(), Detail::Summaries).unwrap(),
        ] {
            let text = describe_summary(&decoded["items"]).unwrap();
            assert!(text.starts_with("100,000 entries, "), "{text}");
            assert_eq!(decoded["children"].as_array().unwrap().len(), 2000);
            assert_eq!(decoded["small"], json!([1, 2]));
        }
        let everything = from_msgpack(
            &rmp_serde::to_vec_named(&large).unwrap(),
            Detail::Everything,
        )
        .unwrap();
        assert_eq!(everything, serde_json::to_value(&large).unwrap());
    }

    #[test]
    fn children_that_are_not_services_are_summarized() {
        #[derive(serde::Serialize)]
        struct Nils {
            children: Vec<Option<u8>>,
        }
        let packed = rmp_serde::to_vec_named(&Nils {
            children: vec![None; 1000],
        })
        .unwrap();
        let decoded = from_msgpack(&packed, Detail::Summaries).unwrap();
        assert!(describe_summary(&decoded["children"]).is_some());
    }

    #[test]
    fn byte_strings_read_as_text_or_base64() {
        assert_eq!(readable_bytes(b"hello"), json!("hello"));
        assert_eq!(readable_bytes(&[0, 255]), json!({"base64": "AP8="}));
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", &[0, 1, 2, 255, 254]] {
            assert_eq!(base64_decode(&base64_encode(bytes)).unwrap(), bytes);
        }
        assert_eq!(base64_decode("AP8").unwrap(), [0, 255]);
        assert_eq!(base64_decode("A"), None);
        assert_eq!(base64_decode("A*=="), None);
    }

    #[test]
    fn sizes_and_counts_read_like_a_person_writes_them() {
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(39_112_204), "39 MB");
        assert_eq!(human_bytes(1_234_000_000), "1.2 GB");
    }
}
