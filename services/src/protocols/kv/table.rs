//! The table behind a [`Kv`](super::Kv): items, the cas counter, expiry, and their persisted
//! form.
//!
//! Persisted form (a map, so it suits JSON and MessagePack with named fields alike):
//!
//! ```json
//! { "next_cas": 3,
//!   "items": { "greeting": { "flags": 0, "expires_at": 0, "cas": 1, "text": "hello" },
//!              "blob":     { "flags": 7, "expires_at": 1900000000, "cas": 2, "data": [255, 0] } } }
//! ```
//!
//! A value that is valid UTF-8 is saved as `text`, any other as `data` (an array of bytes), so
//! snapshots stay readable and every value round-trips exactly. `expires_at` is absolute unix
//! seconds (0: never), so expiry survives a snapshot. Expired items are never saved. The
//! statistics are not saved: like memcached's, they count from the start of the process.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    items: BTreeMap<String, Item>,
    pub stats: Stats,
}

/// The live item under `key`; an expired one is removed.
fn live<'a>(items: &'a mut BTreeMap<String, Item>, key: &str, now: i64) -> Option<&'a mut Item> {
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
        let key = command.key.as_str();
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
    pub fn get(&mut self, key: &str, now: i64) -> Option<Item> {
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
    pub fn peek(&mut self, key: &str, now: i64) -> Option<Vec<u8>> {
        live(&mut self.items, key, now).map(|item| item.value.clone())
    }

    /// Removes the live item under `key`; whether there was one.
    pub fn delete(&mut self, key: &str, now: i64) -> bool {
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
    pub fn arith(&mut self, key: &str, delta: u64, incr: bool, now: i64) -> Arith {
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
    pub fn touch(&mut self, key: &str, exptime: i64, now: i64) -> bool {
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

#[derive(Serialize)]
struct ItemOut<'a> {
    flags: u32,
    expires_at: i64,
    cas: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a [u8]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemIn {
    #[serde(default)]
    flags: u32,
    #[serde(default)]
    expires_at: i64,
    #[serde(default)]
    cas: u64,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    data: Option<Vec<u8>>,
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = std::str::from_utf8(&self.value).ok();
        ItemOut {
            flags: self.flags,
            expires_at: self.expires_at,
            cas: self.cas,
            text,
            data: text.is_none().then_some(self.value.as_slice()),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let item = ItemIn::deserialize(deserializer)?;
        let value = match (item.text, item.data) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(data)) => data,
            (Some(_), Some(_)) => {
                return Err(serde::de::Error::custom(
                    "an item has either `text` or `data`, not both",
                ));
            }
            (None, None) => {
                return Err(serde::de::Error::custom(
                    "an item needs its value, as `text` or `data`",
                ));
            }
        };
        Ok(Item {
            flags: item.flags,
            expires_at: item.expires_at,
            cas: item.cas,
            value,
        })
    }
}

#[derive(Serialize)]
struct TableOut<'a> {
    next_cas: u64,
    items: BTreeMap<&'a str, &'a Item>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableIn {
    #[serde(default)]
    next_cas: u64,
    #[serde(default)]
    items: BTreeMap<String, Item>,
}

impl Serialize for Table {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let now = unix_now();
        TableOut {
            next_cas: self.next_cas.max(1),
            items: self
                .items
                .iter()
                .filter(|(_, item)| item.is_live(now))
                .map(|(key, item)| (key.as_str(), item))
                .collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Table {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = TableIn::deserialize(deserializer)?;
        // Never hand out a cas unique an item already has, even from an edited snapshot.
        let highest = table.items.values().map(|item| item.cas).max().unwrap_or(0);
        Ok(Table {
            next_cas: table.next_cas.max(highest.saturating_add(1)).max(1),
            items: table.items,
            stats: Stats::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, exptime: i64) -> Storage {
        Storage {
            mode: StoreMode::Set,
            key: key.into(),
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
        assert_eq!(table.peek("k", now + 9), Some(b"v".to_vec()));
        assert_eq!(table.peek("k", now + 10), None);
        assert_eq!(table.len(now + 10), 0);
    }

    #[test]
    fn delayed_flush_expires_current_items_later() {
        let mut table = Table::default();
        let now = 1_800_000_000;
        table.store(&set("a", 0), b"1".to_vec(), 10, now);
        table.store(&set("b", 5), b"2".to_vec(), 10, now);
        table.flush(60, now);
        assert_eq!(table.peek("a", now + 59), Some(b"1".to_vec()));
        assert_eq!(table.peek("b", now + 5), None);
        assert_eq!(table.peek("a", now + 60), None);
    }

    #[test]
    fn a_loaded_table_never_reuses_a_cas_unique() {
        let table: Table =
            serde_json::from_str(r#"{"next_cas": 1, "items": {"k": {"cas": 41, "text": "v"}}}"#)
                .unwrap();
        assert_eq!(table.next_cas, 42);
    }

    #[test]
    fn an_item_needs_exactly_one_value() {
        for json in [r#"{"cas": 1}"#, r#"{"cas": 1, "text": "a", "data": [98]}"#] {
            assert!(serde_json::from_str::<Item>(json).is_err(), "{json}");
        }
        assert!(serde_json::from_str::<Item>(r#"{"text": "a", "colour": 1}"#).is_err());
    }
}
