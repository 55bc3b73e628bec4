//! JSON (a tas application) to generic values, summarizing large fields as it goes.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{CHILDREN, Detail, MEASURED_ELEMENTS, SHOWN_BYTES, SHOWN_ENTRIES, summary};
use crate::FormatError;
use crate::bounds::{JsonByte, JsonStrings};

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
    let mut strings = JsonStrings::default();
    let mut commas = 0u64;
    let mut any = false;
    for &byte in text.as_bytes() {
        if strings.next(byte) != JsonByte::Outside {
            continue;
        }
        match byte {
            b'"' => any |= depth == 1,
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
