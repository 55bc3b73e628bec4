//! The table behind a [`Kv`](super::Kv): items, the cas counter, expiry, and their persisted
//! form.
//!
//! Persisted form, version 2 (a map, so it suits JSON and MessagePack with named fields alike;
//! items in key order):
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
//! Version 1 kept items in a map by key (keys were UTF-8 only), each value as `text` or as
//! `data`, an array of numbers (one snapshot value per byte): `upgrade_from_v1` turns it into
//! version 2 when an old snapshot loads.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::command::{Storage, StoreMode};

/// Exptimes up to 30 days are relative seconds; larger ones are absolute unix times.
const RELATIVE_LIMIT: i64 = 60 * 60 * 24 * 30;

/// The `expires_at` of an item that is already expired.
const EXPIRED: i64 = -1;

/// Now, in unix seconds.
pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The absolute expiry (unix seconds, 0 for never) of a memcached exptime given at `now`.
pub(super) fn absolute_expiry(exptime: i64, now: i64) -> i64 {
    match exptime {
        0 => 0,
        exptime if exptime < 0 => EXPIRED,
        exptime if exptime <= RELATIVE_LIMIT => now.saturating_add(exptime),
        absolute => absolute,
    }
}

/// One stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Item {
    pub flags: u32,
    /// Unix seconds; 0 for never.
    pub expires_at: i64,
    pub cas: u64,
    pub value: Vec<u8>,
}

impl Item {
    fn is_live(&self, now: i64) -> bool {
        self.expires_at == 0 || self.expires_at > now
    }
}

/// What a storage command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StoreOutcome {
    Stored,
    NotStored,
    Exists,
    NotFound,
    TooLarge,
}

/// What `incr` or `decr` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arith {
    Value(u64),
    NotFound,
    NonNumeric,
}

/// Counters for `stats`; never persisted.
#[derive(Debug, Default, Clone)]
pub(super) struct Stats {
    pub curr_connections: u64,
    pub total_connections: u64,
    pub cmd_get: u64,
    pub cmd_set: u64,
    pub cmd_touch: u64,
    pub get_hits: u64,
    pub get_misses: u64,
    pub delete_hits: u64,
    pub delete_misses: u64,
    pub incr_hits: u64,
    pub incr_misses: u64,
    pub decr_hits: u64,
    pub decr_misses: u64,
    pub cas_hits: u64,
    pub cas_misses: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
    pub touch_misses: u64,
    pub total_items: u64,
}

/// The items, the next cas unique, and the statistics.
#[derive(Debug, Default)]
pub(super) struct Table {
    next_cas: u64,
    items: BTreeMap<Vec<u8>, Item>,
    pub stats: Stats,
}

/// The live item under `key`; an expired one is removed.
fn live<'a>(items: &'a mut BTreeMap<Vec<u8>, Item>, key: &[u8], now: i64) -> Option<&'a mut Item> {
    if items.get(key).is_some_and(|item| !item.is_live(now)) {
        items.remove(key);
    }
    items.get_mut(key)
}

/// Hands out the next cas unique (never 0).
fn take_cas(next_cas: &mut u64) -> u64 {
    let cas = (*next_cas).max(1);
    *next_cas = cas.wrapping_add(1).max(1);
    cas
}

/// Adds one to a counter.
fn count(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}

impl Table {
    /// Runs a storage command whose data block, `value`, has been read.
    pub fn store(
        &mut self,
        command: &Storage,
        value: Vec<u8>,
        max_value_bytes: usize,
        now: i64,
    ) -> StoreOutcome {
        count(&mut self.stats.cmd_set);
        let key = command.key.as_slice();
        let current = live(&mut self.items, key, now);
        match (command.mode, current) {
            (StoreMode::Set, _) => {}
            (StoreMode::Add, Some(_)) => return StoreOutcome::NotStored,
            (StoreMode::Replace | StoreMode::Append | StoreMode::Prepend, None) => {
                return StoreOutcome::NotStored;
            }
            (StoreMode::Add, None) | (StoreMode::Replace, Some(_)) => {}
            (mode @ (StoreMode::Append | StoreMode::Prepend), Some(item)) => {
                if item.value.len().saturating_add(value.len()) > max_value_bytes {
                    return StoreOutcome::TooLarge;
                }
                if mode == StoreMode::Append {
                    item.value.extend_from_slice(&value);
                } else {
                    item.value.splice(0..0, value);
                }
                item.cas = take_cas(&mut self.next_cas);
                count(&mut self.stats.total_items);
                return StoreOutcome::Stored;
            }
            (StoreMode::Cas(_), None) => {
                count(&mut self.stats.cas_misses);
                return StoreOutcome::NotFound;
            }
            (StoreMode::Cas(unique), Some(item)) if item.cas != unique => {
                count(&mut self.stats.cas_badval);
                return StoreOutcome::Exists;
            }
            (StoreMode::Cas(_), Some(_)) => count(&mut self.stats.cas_hits),
        }
        count(&mut self.stats.total_items);
        let expires_at = absolute_expiry(command.exptime, now);
        if expires_at != 0 && expires_at <= now {
            // Born expired: stored, and at once gone.
            self.items.remove(key);
            return StoreOutcome::Stored;
        }
        let item = Item {
            flags: command.flags,
            expires_at,
            cas: take_cas(&mut self.next_cas),
            value,
        };
        match self.items.get_mut(key) {
            Some(slot) => *slot = item,
            None => {
                self.items.insert(key.to_owned(), item);
            }
        }
        StoreOutcome::Stored
    }

    /// A copy of the live item under `key`, counted as a get.
    pub fn get(&mut self, key: &[u8], now: i64) -> Option<Item> {
        count(&mut self.stats.cmd_get);
        let item = live(&mut self.items, key, now).cloned();
        if item.is_some() {
            count(&mut self.stats.get_hits);
        } else {
            count(&mut self.stats.get_misses);
        }
        item
    }

    /// A copy of the live value under `key`, not counted.
    pub fn peek(&mut self, key: &[u8], now: i64) -> Option<Vec<u8>> {
        live(&mut self.items, key, now).map(|item| item.value.clone())
    }

    /// Removes the live item under `key`; whether there was one.
    pub fn delete(&mut self, key: &[u8], now: i64) -> bool {
        let found = live(&mut self.items, key, now).is_some();
        if found {
            self.items.remove(key);
            count(&mut self.stats.delete_hits);
        } else {
            count(&mut self.stats.delete_misses);
        }
        found
    }

    /// `incr` (wrapping at 2^64) or `decr` (flooring at 0) of a decimal value.
    pub fn arith(&mut self, key: &[u8], delta: u64, incr: bool, now: i64) -> Arith {
        let (hits, misses) = if incr {
            (&mut self.stats.incr_hits, &mut self.stats.incr_misses)
        } else {
            (&mut self.stats.decr_hits, &mut self.stats.decr_misses)
        };
        let Some(item) = live(&mut self.items, key, now) else {
            count(misses);
            return Arith::NotFound;
        };
        // Tolerate the space padding memcached itself may leave after a decr.
        let digits = item.value.trim_ascii_end();
        let current = (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
            .then(|| std::str::from_utf8(digits).ok()?.parse::<u64>().ok())
            .flatten();
        let Some(current) = current else {
            return Arith::NonNumeric;
        };
        let value = if incr {
            current.wrapping_add(delta)
        } else {
            current.saturating_sub(delta)
        };
        item.value = value.to_string().into_bytes();
        item.cas = take_cas(&mut self.next_cas);
        count(hits);
        Arith::Value(value)
    }

    /// Gives the live item under `key` a new exptime; whether there was one.
    pub fn touch(&mut self, key: &[u8], exptime: i64, now: i64) -> bool {
        count(&mut self.stats.cmd_touch);
        let expires_at = absolute_expiry(exptime, now);
        let found = match live(&mut self.items, key, now) {
            Some(item) => {
                item.expires_at = expires_at;
                true
            }
            None => false,
        };
        if found {
            count(&mut self.stats.touch_hits);
            // Drop it now if the new exptime is already past.
            live(&mut self.items, key, now);
        } else {
            count(&mut self.stats.touch_misses);
        }
        found
    }

    /// `flush_all`: every current item expires after `delay` (an exptime; 0 is now).
    pub fn flush(&mut self, delay: i64, now: i64) {
        let deadline = absolute_expiry(delay, now);
        if deadline == 0 || deadline <= now {
            self.items.clear();
            return;
        }
        for item in self.items.values_mut() {
            if item.expires_at == 0 || item.expires_at > deadline {
                item.expires_at = deadline;
            }
        }
    }

    /// Removes every expired item.
    pub fn purge(&mut self, now: i64) {
        self.items.retain(|_, item| item.is_live(now));
    }

    /// How many live items there are.
    pub fn len(&self, now: i64) -> usize {
        self.items.values().filter(|item| item.is_live(now)).count()
    }

    /// The bytes held by live values.
    pub fn bytes(&self, now: i64) -> usize {
        self.items
            .values()
            .filter(|item| item.is_live(now))
            .map(|item| item.value.len())
            .sum()
    }
}

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
struct ItemsOut<'a> {
    items: &'a BTreeMap<Vec<u8>, Item>,
    now: i64,
}

impl Serialize for ItemsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.items
                .iter()
                .filter(|(_, item)| item.is_live(self.now))
                .map(|(key, item)| ItemOut {
                    key: Bytes(key),
                    flags: item.flags,
                    expires_at: item.expires_at,
                    cas: item.cas,
                    value: Bytes(&item.value),
                }),
        )
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
        TableOut {
            next_cas: self.next_cas.max(1),
            items: ItemsOut {
                items: &self.items,
                now: unix_now(),
            },
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Table {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = TableIn::deserialize(deserializer)?;
        let mut items = BTreeMap::new();
        for item in table.items {
            let key = item.key.0;
            if let Err(reason) = super::command::check_key(&key) {
                return Err(de::Error::custom(format!(
                    "item key {}: {reason}",
                    key.escape_ascii()
                )));
            }
            let previous = items.insert(
                key,
                Item {
                    flags: item.flags,
                    expires_at: item.expires_at,
                    cas: item.cas,
                    value: item.value.0,
                },
            );
            if previous.is_some() {
                return Err(de::Error::custom("two items have the same key"));
            }
        }
        // Never hand out a cas unique an item already has, even from an edited snapshot.
        let highest = items.values().map(|item| item.cas).max().unwrap_or(0);
        Ok(Table {
            next_cas: table.next_cas.max(highest.saturating_add(1)).max(1),
            items,
            stats: Stats::default(),
        })
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
    use super::*;

    fn set(key: &str, exptime: i64) -> Storage {
        Storage {
            mode: StoreMode::Set,
            key: key.as_bytes().to_vec(),
            flags: 0,
            exptime,
            bytes: 1,
            noreply: false,
        }
    }

    #[test]
    fn exptimes_follow_memcached() {
        let now = 1_800_000_000;
        assert_eq!(absolute_expiry(0, now), 0);
        assert_eq!(absolute_expiry(-5, now), EXPIRED);
        assert_eq!(absolute_expiry(100, now), now + 100);
        assert_eq!(absolute_expiry(RELATIVE_LIMIT, now), now + RELATIVE_LIMIT);
        assert_eq!(absolute_expiry(RELATIVE_LIMIT + 1, now), RELATIVE_LIMIT + 1);
        assert_eq!(absolute_expiry(1_900_000_000, now), 1_900_000_000);
        assert_eq!(absolute_expiry(i64::MAX - 1, i64::MAX), i64::MAX - 1);
    }

    #[test]
    fn relative_expiry_passes_with_time() {
        let mut table = Table::default();
        let now = 1_800_000_000;
        let stored = table.store(&set("k", 10), b"v".to_vec(), 10, now);
        assert_eq!(stored, StoreOutcome::Stored);
        assert_eq!(table.peek(b"k", now + 9), Some(b"v".to_vec()));
        assert_eq!(table.peek(b"k", now + 10), None);
        assert_eq!(table.len(now + 10), 0);
    }

    #[test]
    fn delayed_flush_expires_current_items_later() {
        let mut table = Table::default();
        let now = 1_800_000_000;
        table.store(&set("a", 0), b"1".to_vec(), 10, now);
        table.store(&set("b", 5), b"2".to_vec(), 10, now);
        table.flush(60, now);
        assert_eq!(table.peek(b"a", now + 59), Some(b"1".to_vec()));
        assert_eq!(table.peek(b"b", now + 5), None);
        assert_eq!(table.peek(b"a", now + 60), None);
    }

    #[test]
    fn a_loaded_table_never_reuses_a_cas_unique() {
        let table: Table = serde_json::from_str(
            r#"{"next_cas": 1, "items": [{"key": "k", "cas": 41, "value": "v"}]}"#,
        )
        .unwrap();
        assert_eq!(table.next_cas, 42);
    }

    #[test]
    fn an_item_needs_a_key_and_a_value_and_no_other_field() {
        for json in [
            r#"{"items": [{"cas": 1, "value": "a"}]}"#,
            r#"{"items": [{"key": "k", "cas": 1}]}"#,
            r#"{"items": [{"key": "k", "value": "a", "colour": 1}]}"#,
            r#"{"items": [{"key": "k", "value": {"base64": "%%"}}]}"#,
            r#"{"items": [{"key": "a b", "value": "v"}]}"#,
            r#"{"items": [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]}"#,
        ] {
            assert!(serde_json::from_str::<Table>(json).is_err(), "{json}");
        }
    }

    fn binary_table() -> Table {
        let mut table = Table::default();
        let now = unix_now();
        let mut command = set("text", 0);
        table.store(&command, b"hello".to_vec(), 100, now);
        command.key = vec![0xff, 0x01, b'k'];
        table.store(&command, vec![0, 159, 146, 150, 255], 100, now);
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
        assert_eq!(back.items, table.items);
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
        assert_eq!(back.items, table.items);
    }

    #[test]
    fn version_1_data_upgrades_to_the_sequence_of_items() {
        let mut factory = serde_json::json!({"max_value_bytes": 10, "table": {"next_cas": 3, "items": {
            "z": {"flags": 1, "expires_at": 0, "cas": 1, "text": "last"},
            "a": {"flags": 0, "expires_at": 0, "cas": 2, "data": [0, 255]},
        }}});
        upgrade_from_v1(factory.as_object_mut().unwrap()).unwrap();
        let table: Table = serde_json::from_value(factory["table"].clone()).unwrap();
        let keys: Vec<&[u8]> = table.items.keys().map(Vec::as_slice).collect();
        assert_eq!(keys, [&b"a"[..], b"z"]);
        assert_eq!(table.items[&b"a"[..]].value, [0, 255]);
        assert_eq!(table.items[&b"z"[..]].flags, 1);
        let mut broken = serde_json::json!({"table": {"items": {"k": {"flags": 0}}}});
        assert!(upgrade_from_v1(broken.as_object_mut().unwrap()).is_err());
    }
}
