//! The persisted form of a [`Table`]: what a snapshot of a `kv` server holds.
//!
//! Version 2 (a map, so it suits JSON and MessagePack with named fields alike; items in key
//! order):
//!
//! ```json
//! { "next_cas": 3,
//!   "items": [ { "key": "greeting", "flags": 0, "expires_at": 0, "cas": 1, "value": "hello" },
//!              { "key": {"base64": "/w=="}, "flags": 7, "expires_at": 1900000000, "cas": 2,
//!                "value": {"base64": "/wA="} } ] }
//! ```
//!
//! Keys and values are bytes. In a binary snapshot they are MessagePack `bin`, one byte per
//! byte; in the readable `tas` style a key or value is a string when it is UTF-8, else
//! `{"base64": "…"}`, so snapshots stay readable and every byte round-trips exactly.
//! `expires_at` is absolute unix seconds (0: never), so expiry survives a snapshot. Expired
//! items are never saved. The statistics are not saved: like memcached's, they count from the
//! start of the process.
//!
//! Saving copies the pointers of the items shard by shard ([`Table::snapshot`]), then
//! serializes with no lock held: requests go on while a checkpoint writes.
//!
//! Version 1 kept items in a map by key (keys were UTF-8 only), each value as `text` or as
//! `data`, an array of numbers (one snapshot value per byte): `upgrade_from_v1` turns it into
//! version 2 when an old snapshot loads.

use std::fmt;

use base64::Engine;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::command::MAX_KEY_BYTES;
use super::table::{Data, Item, Meta, Snapshot, Table, unix_now};

/// Bytes as a snapshot holds them: `bin` in a binary snapshot; in a readable one, a string
/// when they are UTF-8, else `{"base64": "…"}`.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return serializer.serialize_bytes(self.0);
        }
        match std::str::from_utf8(self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(
                    BASE64_KEY,
                    &base64::engine::general_purpose::STANDARD.encode(self.0),
                )?;
                map.end()
            }
        }
    }
}

/// The key of the readable form of bytes that are not UTF-8.
const BASE64_KEY: &str = "base64";

/// Reads bytes in any form a snapshot may hold them: `bin`, a string, `{"base64": "…"}`, or an
/// array of numbers (what a binary snapshot's `bin` becomes when it passes through generic
/// data on its way to an upgrade).
struct OwnedBytes(Vec<u8>);

impl<'de> Deserialize<'de> for OwnedBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BytesVisitor).map(OwnedBytes)
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes: a byte string, a string, or {\"base64\": \"...\"}")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(bytes)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
        Ok(text.as_bytes().to_vec())
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Vec<u8>, E> {
        Ok(text.into_bytes())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64 * 1024));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(bytes)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<u8>, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom("bytes as a map need a \"base64\" key"));
        };
        if key != BASE64_KEY {
            return Err(de::Error::unknown_field(&key, &[BASE64_KEY]));
        }
        let text: String = map.next_value()?;
        if map.next_key::<String>()?.is_some() {
            return Err(de::Error::custom("bytes as a map hold only \"base64\""));
        }
        base64_decode(&text).ok_or_else(|| de::Error::custom(format!("'{text}' is not base64")))
    }
}

/// Decodes standard base64, padded or not.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(text).ok()
}

#[derive(Serialize)]
struct ItemOut<'a> {
    key: Bytes<'a>,
    flags: u32,
    expires_at: i64,
    cas: u64,
    value: Bytes<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemIn {
    key: OwnedBytes,
    #[serde(default)]
    flags: u32,
    #[serde(default)]
    expires_at: i64,
    #[serde(default)]
    cas: u64,
    value: OwnedBytes,
}

/// The live items, in key order, as the sequence a snapshot holds.
struct ItemsOut<'a>(&'a Snapshot);

impl Serialize for ItemsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.sorted().map(|item| ItemOut {
            key: Bytes(item.data.key()),
            flags: item.meta.flags,
            expires_at: item.meta.expires_at(),
            cas: item.meta.cas,
            value: Bytes(item.data.value()),
        }))
    }
}

#[derive(Serialize)]
struct TableOut<'a> {
    next_cas: u64,
    items: ItemsOut<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableIn {
    #[serde(default)]
    next_cas: u64,
    #[serde(default)]
    items: Vec<ItemIn>,
}

impl Serialize for Table {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let snapshot = self.snapshot(unix_now());
        TableOut {
            next_cas: snapshot.next_cas,
            items: ItemsOut(&snapshot),
        }
        .serialize(serializer)
    }
}

/// Why `key` cannot be a stored key: empty, or longer than memcached's 250 bytes. Any byte may
/// be in a key (the binary protocol can store spaces and line endings).
pub(super) fn check_stored_key(key: &[u8]) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("a key cannot be empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return Err("a key is at most 250 bytes");
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Table {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = TableIn::deserialize(deserializer)?;
        let mut items = Vec::with_capacity(table.items.len());
        let mut seen = std::collections::HashSet::with_capacity(table.items.len());
        for item in table.items {
            let key = item.key.0;
            if let Err(reason) = check_stored_key(&key) {
                return Err(de::Error::custom(format!(
                    "item key {}: {reason}",
                    key.escape_ascii()
                )));
            }
            let data = Data::new(&key, &item.value.0);
            if !seen.insert(key) {
                return Err(de::Error::custom("two items have the same key"));
            }
            items.push(Item {
                data,
                meta: Meta::new(item.flags, item.expires_at, item.cas),
            });
        }
        // Never hand out a cas unique an item already has, even from an edited snapshot.
        Ok(Table::from_items(items, table.next_cas))
    }
}

/// Upgrades a `rtwisted.Kv` factory's data from version 1 to 2: the items map by key becomes
/// the sorted sequence of items, each with its `key`, and `text` or `data` becomes `value`.
pub(super) fn upgrade_from_v1(factory: &mut Map<String, Value>) -> Result<(), String> {
    let Some(table) = factory.get_mut("table") else {
        return Ok(()); // an empty table, by default
    };
    let table = table
        .as_object_mut()
        .ok_or("the table is not a map of next_cas and items")?;
    let items = match table.remove("items") {
        None => return Ok(()),
        Some(Value::Object(items)) => items,
        Some(other) => return Err(format!("the items are not a map by key: {other}")),
    };
    let mut upgraded = Vec::with_capacity(items.len());
    for (key, item) in items {
        let Value::Object(mut item) = item else {
            return Err(format!("item '{key}' is not a map"));
        };
        let value = match (item.remove("text"), item.remove("data")) {
            (Some(text @ Value::String(_)), None) => text,
            (None, Some(Value::Array(data))) => {
                let bytes = data
                    .iter()
                    .map(|byte| byte.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or(format!("item '{key}' has data that is not bytes"))?;
                serde_json::to_value(Bytes(&bytes)).map_err(|error| error.to_string())?
            }
            _ => return Err(format!("item '{key}' needs its value, as text or data")),
        };
        let sort_key = key.as_bytes().to_vec();
        let mut out = Map::new();
        out.insert("key".into(), Value::String(key));
        out.extend(item);
        out.insert("value".into(), value);
        upgraded.push((sort_key, Value::Object(out)));
    }
    upgraded.sort_by(|a, b| a.0.cmp(&b.0));
    table.insert(
        "items".into(),
        Value::Array(upgraded.into_iter().map(|(_, item)| item).collect()),
    );
    Ok(())
}

rtwisted_core::register_upgrade!("rtwisted.Kv", from 1, upgrade_from_v1);

#[cfg(test)]
mod tests {
    use super::super::table::{Mode, Write};
    use super::*;

    /// Every item, as (key, flags, expires_at, cas, value).
    fn contents(table: &Table) -> Vec<(Vec<u8>, Meta, Vec<u8>)> {
        table
            .snapshot(unix_now())
            .sorted()
            .map(|item| {
                (
                    item.data.key().to_vec(),
                    item.meta,
                    item.data.value().to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn a_loaded_table_never_reuses_a_cas_unique() {
        let table: Table = serde_json::from_str(
            r#"{"next_cas": 1, "items": [{"key": "k", "cas": 41, "value": "v"}]}"#,
        )
        .unwrap();
        assert_eq!(table.next_cas(), 42);
    }

    #[test]
    fn an_item_needs_a_key_and_a_value_and_no_other_field() {
        for json in [
            r#"{"items": [{"cas": 1, "value": "a"}]}"#,
            r#"{"items": [{"key": "k", "cas": 1}]}"#,
            r#"{"items": [{"key": "k", "value": "a", "colour": 1}]}"#,
            r#"{"items": [{"key": "k", "value": {"base64": "%%"}}]}"#,
            r#"{"items": [{"key": "", "value": "v"}]}"#,
            r#"{"items": [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]}"#,
        ] {
            assert!(serde_json::from_str::<Table>(json).is_err(), "{json}");
        }
        let long = format!(
            r#"{{"items": [{{"key": "{}", "value": "v"}}]}}"#,
            "k".repeat(251)
        );
        assert!(serde_json::from_str::<Table>(&long).is_err());
    }

    fn binary_table() -> Table {
        let table = Table::default();
        let now = unix_now();
        let mut write = Write {
            mode: Mode::Set,
            key: b"text",
            value: b"hello",
            flags: 0,
            exptime: 0,
            compare: None,
        };
        table.store(&write, 100, now);
        write.key = &[0xff, 0x01, b'k'];
        write.value = &[0, 159, 146, 150, 255];
        table.store(&write, 100, now);
        table
    }

    #[test]
    fn binary_keys_and_values_are_bin_in_messagepack_one_byte_each() {
        let table = binary_table();
        let packed = rmp_serde::to_vec_named(&table).unwrap();
        // bin 8 headers (0xc4 LEN) for the binary key and value; strings for field names.
        assert!(
            packed
                .windows(7)
                .any(|w| w == [0xc4, 5, 0, 159, 146, 150, 255]),
            "{packed:?}"
        );
        assert!(packed.windows(5).any(|w| w == [0xc4, 3, 0xff, 0x01, b'k']));
        let back: Table = rmp_serde::from_slice(&packed).unwrap();
        assert_eq!(contents(&back), contents(&table));
    }

    #[test]
    fn the_readable_form_is_text_when_utf8_else_base64_and_round_trips() {
        let table = binary_table();
        let json = serde_json::to_value(&table).unwrap();
        assert_eq!(
            json["items"],
            serde_json::json!([
                {"key": "text", "flags": 0, "expires_at": 0, "cas": 1, "value": "hello"},
                {"key": {"base64": "/wFr"}, "flags": 0, "expires_at": 0, "cas": 2,
                 "value": {"base64": "AJ+Slv8="}},
            ])
        );
        let back: Table = serde_json::from_value(json).unwrap();
        assert_eq!(contents(&back), contents(&table));
    }

    #[test]
    fn version_1_data_upgrades_to_the_sequence_of_items() {
        let mut factory = serde_json::json!({"max_value_bytes": 10, "table": {"next_cas": 3, "items": {
            "z": {"flags": 1, "expires_at": 0, "cas": 1, "text": "last"},
            "a": {"flags": 0, "expires_at": 0, "cas": 2, "data": [0, 255]},
        }}});
        upgrade_from_v1(factory.as_object_mut().unwrap()).unwrap();
        let table: Table = serde_json::from_value(factory["table"].clone()).unwrap();
        let items = contents(&table);
        let keys: Vec<&[u8]> = items.iter().map(|item| item.0.as_slice()).collect();
        assert_eq!(keys, [&b"a"[..], b"z"]);
        assert_eq!(items[0].2, [0, 255]);
        assert_eq!(items[1].1.flags, 1);
        let mut broken = serde_json::json!({"table": {"items": {"k": {"flags": 0}}}});
        assert!(upgrade_from_v1(broken.as_object_mut().unwrap()).is_err());
    }
}
