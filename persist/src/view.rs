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

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

use crate::FormatError;
use crate::bounds::{Item, next_item};

/// The key of a summary object.
pub const SUMMARY_KEY: &str = "$summarized";
/// Values larger than this many encoded bytes are summarized (maps only when they also have
/// more than [`SHOWN_ENTRIES`] entries).
pub const SHOWN_BYTES: usize = 64 * 1024;
/// Maps with more entries than this (and larger than [`SHOWN_BYTES`]) are summarized.
pub const SHOWN_ENTRIES: u64 = 256;
/// The key under which collections keep their children: always decoded.
const CHILDREN: &str = "children";
/// Arrays with at most this many elements are decoded without measuring them first.
const MEASURED_ELEMENTS: u64 = 64;

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

fn damaged(detail: &str) -> FormatError {
    FormatError::Corrupt {
        detail: detail.to_owned(),
    }
}

/// The generic value of one MessagePack value (a verified, bounds-checked payload).
pub fn from_msgpack(bytes: &[u8], detail: Detail) -> Result<Value, FormatError> {
    let mut reader = Reader {
        bytes,
        position: 0,
        detail,
    };
    let value = reader.value(None)?;
    if reader.position != bytes.len() {
        return Err(damaged("unexpected bytes after the payload"));
    }
    Ok(value)
}

struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
    detail: Detail,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], FormatError> {
        let end = self
            .position
            .checked_add(count)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| damaged("the data ends inside a value"))?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn number(&mut self, width: usize) -> Result<u64, FormatError> {
        Ok(self
            .take(width)?
            .iter()
            .fold(0u64, |n, b| (n << 8) | u64::from(*b)))
    }

    /// The end of the value that starts at `start`, without decoding it.
    fn end_of(&self, start: usize) -> Result<usize, FormatError> {
        let mut position = start;
        let mut left: u64 = 1;
        while left > 0 {
            left -= 1;
            match next_item(self.bytes, &mut position)? {
                Item::Map(pairs) => left = left.saturating_add(pairs.saturating_mul(2)),
                Item::Array(count) => left = left.saturating_add(count),
                _ => {}
            }
        }
        Ok(position)
    }

    fn summarized(&mut self, start: usize, entries: Option<u64>) -> Result<Value, FormatError> {
        let end = self.end_of(start)?;
        let encoded = &self.bytes[start..end];
        self.position = end;
        Ok(summary(entries, encoded.len() as u64, encoded))
    }

    /// True if every element of the array whose elements start at `position` is a map.
    fn all_maps(&self, mut position: usize, count: u64) -> Result<bool, FormatError> {
        for _ in 0..count {
            let marker = *self
                .bytes
                .get(position)
                .ok_or_else(|| damaged("the data ends inside a value"))?;
            if !matches!(marker, 0x80..=0x8f | 0xde | 0xdf) {
                return Ok(false);
            }
            position = self.end_of(position)?;
        }
        Ok(true)
    }

    fn value(&mut self, key: Option<&str>) -> Result<Value, FormatError> {
        let start = self.position;
        let marker = self.take(1)?[0];
        let summaries = self.detail == Detail::Summaries;
        Ok(match marker {
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0x00..=0x7f => Value::from(marker),
            0xe0..=0xff => Value::from(i64::from(marker as i8)),
            0xcc => Value::from(self.number(1)?),
            0xcd => Value::from(self.number(2)?),
            0xce => Value::from(self.number(4)?),
            0xcf => Value::from(self.number(8)?),
            0xd0 => Value::from(i64::from(self.number(1)? as u8 as i8)),
            0xd1 => Value::from(i64::from(self.number(2)? as u16 as i16)),
            0xd2 => Value::from(i64::from(self.number(4)? as u32 as i32)),
            0xd3 => Value::from(self.number(8)? as i64),
            0xca => {
                let bits = self.number(4)? as u32;
                float(f64::from(f32::from_bits(bits)))
            }
            0xcb => float(f64::from_bits(self.number(8)?)),
            0xa0..=0xbf | 0xd9 | 0xda | 0xdb => {
                let len = match marker {
                    0xd9 => self.number(1)?,
                    0xda => self.number(2)?,
                    0xdb => self.number(4)?,
                    _ => u64::from(marker & 0x1f),
                } as usize;
                if summaries && len > SHOWN_BYTES {
                    self.position = start;
                    return self.summarized(start, None);
                }
                let bytes = self.take(len)?;
                Value::String(String::from_utf8_lossy(bytes).into_owned())
            }
            0xc4..=0xc6 => {
                let len = self.number(1 << (marker - 0xc4))? as usize;
                if summaries && len > SHOWN_BYTES {
                    self.position = start;
                    return self.summarized(start, None);
                }
                readable_bytes(self.take(len)?)
            }
            0xd4..=0xd8 | 0xc7..=0xc9 => {
                let len = match marker {
                    0xd4 => 1,
                    0xd5 => 2,
                    0xd6 => 4,
                    0xd7 => 8,
                    0xd8 => 16,
                    0xc7 => self.number(1)? as usize,
                    0xc8 => self.number(2)? as usize,
                    _ => self.number(4)? as usize,
                };
                let kind = self.take(1)?[0] as i8;
                let data = self.take(len)?;
                let mut map = Map::new();
                map.insert("ext".into(), Value::from(kind));
                map.insert("data".into(), readable_bytes(data));
                Value::Object(map)
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                let count = match marker {
                    0xdc => self.number(2)?,
                    0xdd => self.number(4)?,
                    _ => u64::from(marker & 0x0f),
                };
                if summaries && count > MEASURED_ELEMENTS {
                    let summarize = if key == Some(CHILDREN) {
                        !self.all_maps(self.position, count)?
                    } else {
                        self.end_of(start)? - start > SHOWN_BYTES
                    };
                    if summarize {
                        self.position = start;
                        return self.summarized(start, Some(count));
                    }
                }
                let mut items = Vec::with_capacity(count.min(1024) as usize);
                for _ in 0..count {
                    items.push(self.value(None)?);
                }
                Value::Array(items)
            }
            0x80..=0x8f | 0xde | 0xdf => {
                let pairs = match marker {
                    0xde => self.number(2)?,
                    0xdf => self.number(4)?,
                    _ => u64::from(marker & 0x0f),
                };
                if summaries && pairs > SHOWN_ENTRIES && self.end_of(start)? - start > SHOWN_BYTES {
                    self.position = start;
                    return self.summarized(start, Some(pairs));
                }
                let mut map = Map::new();
                for _ in 0..pairs {
                    let name = self.key()?;
                    let item = self.value(Some(&name))?;
                    map.insert(name, item);
                }
                Value::Object(map)
            }
            0xc1 => return Err(damaged("an invalid MessagePack marker (0xc1)")),
        })
    }

    /// A map key as text: strings as they are, numbers in decimal, anything else in its
    /// readable form.
    fn key(&mut self) -> Result<String, FormatError> {
        let everything = Reader {
            bytes: self.bytes,
            position: self.position,
            detail: Detail::Everything,
        };
        let mut reader = everything;
        let key = reader.value(None)?;
        self.position = reader.position;
        Ok(match key {
            Value::String(text) => text,
            other => other.to_string(),
        })
    }
}

fn float(number: f64) -> Value {
    Number::from_f64(number).map_or(Value::Null, Value::Number)
}

/// The generic value of a JSON text (a verified, bounds-checked `tas` application).
pub fn from_json(text: &str, detail: Detail) -> Result<Value, FormatError> {
    if detail == Detail::Everything {
        return serde_json::from_str(text).map_err(FormatError::BadJson);
    }
    let raw: &RawValue = serde_json::from_str(text).map_err(FormatError::BadJson)?;
    json_value(raw, None)
}

fn json_value(raw: &RawValue, key: Option<&str>) -> Result<Value, FormatError> {
    let text = raw.get();
    let large = text.len() > SHOWN_BYTES;
    let first = text.as_bytes().first().copied().unwrap_or(b'n');
    if !large && key != Some(CHILDREN) {
        return serde_json::from_str(text).map_err(FormatError::BadJson);
    }
    match first {
        b'{' => {
            let entries = count_entries(text);
            if large && entries > SHOWN_ENTRIES {
                return Ok(summary(Some(entries), text.len() as u64, text.as_bytes()));
            }
            let fields: Ordered<'_> = serde_json::from_str(text).map_err(FormatError::BadJson)?;
            let mut map = Map::new();
            for (name, value) in fields.0 {
                let value = json_value(value, Some(&name))?;
                map.insert(name.into_owned(), value);
            }
            Ok(Value::Object(map))
        }
        b'[' => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(FormatError::BadJson)?;
            let summarize = if key == Some(CHILDREN) {
                items.len() as u64 > MEASURED_ELEMENTS
                    && items.iter().any(|item| !item.get().starts_with('{'))
            } else {
                large
            };
            if summarize {
                return Ok(summary(
                    Some(items.len() as u64),
                    text.len() as u64,
                    text.as_bytes(),
                ));
            }
            items
                .into_iter()
                .map(|item| json_value(item, None))
                .collect::<Result<Vec<Value>, FormatError>>()
                .map(Value::Array)
        }
        b'"' if large => Ok(summary(None, text.len() as u64, text.as_bytes())),
        _ => serde_json::from_str(text).map_err(FormatError::BadJson),
    }
}

/// How many entries the JSON array or object `text` holds (its top-level commas, plus one).
fn count_entries(text: &str) -> u64 {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut commas = 0u64;
    let mut any = false;
    for &byte in text.as_bytes() {
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
            b'"' => {
                in_string = true;
                any |= depth == 1;
            }
            b'[' | b'{' => {
                any |= depth == 1;
                depth += 1;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => commas += 1,
            byte if depth == 1 && !byte.is_ascii_whitespace() => any = true,
            _ => {}
        }
    }
    if any { commas + 1 } else { 0 }
}

/// An object's fields in their order, each still raw.
struct Ordered<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Ordered<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Ordered<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some((name, value)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    fields.push((name, value));
                }
                Ok(Ordered(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
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
