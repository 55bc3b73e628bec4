//! The keys of the maps a scan is inside, so that a key seen twice in one map is caught.
//!
//! One list holds the keys of every open map, each map's keys a run at its end, so entering a
//! map allocates nothing (a snapshot of 100,000 services has hundreds of thousands of small
//! maps). Each listed key carries a [`fingerprint`] of its bytes, so telling two keys apart is
//! one compare of integers. A map that grows past [`SEARCHED`] keys moves its run into a hashed
//! set of its own.

use std::collections::HashSet;
use std::hash::Hash;

/// The keys of a large map, hashed with foldhash: seeded per process (a hostile file cannot
/// pick colliding keys ahead of time) and several times faster than SipHash.
type KeySet<K> = HashSet<K, foldhash::fast::RandomState>;

/// Up to this many keys a map's keys are searched in a list; past it they are hashed.
const SEARCHED: usize = 16;

/// A word that equal keys share and most different keys do not: the length and first eight
/// bytes of a key's bytes.
#[inline]
pub(super) fn fingerprint(bytes: &[u8]) -> u64 {
    let head = match bytes.first_chunk::<8>() {
        Some(head) => u64::from_le_bytes(*head),
        None => bytes
            .iter()
            .rev()
            .fold(0u64, |word, byte| (word << 8) | u64::from(*byte)),
    };
    head ^ (bytes.len() as u64).rotate_right(8)
}

/// The keys of every open container of a scan (arrays hold none), innermost last.
#[derive(Debug)]
pub(super) struct KeyStack<K> {
    /// The listed keys of every open map, outermost first, each with its fingerprint.
    keys: Vec<(u64, K)>,
    open: Vec<OpenMap<K>>,
}

impl<K> Default for KeyStack<K> {
    fn default() -> Self {
        KeyStack {
            keys: Vec::new(),
            open: Vec::new(),
        }
    }
}

/// One open container: where its run of keys begins, or its set once it is large.
#[derive(Debug)]
struct OpenMap<K> {
    start: usize,
    set: Option<Box<KeySet<K>>>,
}

impl<K: Eq + Hash> KeyStack<K> {
    /// Enters a container.
    #[inline]
    pub(super) fn open(&mut self) {
        self.open.push(OpenMap {
            start: self.keys.len(),
            set: None,
        });
    }

    /// Leaves the innermost container, forgetting its keys.
    #[inline]
    pub(super) fn close(&mut self) {
        if let Some(map) = self.open.pop() {
            self.keys.truncate(map.start);
        }
    }

    /// Adds `key`, whose [`fingerprint`] is `print` (equal keys must have equal prints), to
    /// the innermost container; gives it back if that container holds it already.
    #[inline]
    pub(super) fn insert(&mut self, key: K, print: u64) -> Result<(), K> {
        let Some(map) = self.open.last() else {
            return Ok(());
        };
        let run = &self.keys[map.start..];
        if map.set.is_none() && run.len() < SEARCHED {
            if run
                .iter()
                .any(|(seen, other)| *seen == print && *other == key)
            {
                return Err(key);
            }
            self.keys.push((print, key));
            return Ok(());
        }
        self.insert_hashed(key)
    }

    /// [`insert`](Self::insert) into a large map: its keys move to a set first.
    #[inline(never)]
    fn insert_hashed(&mut self, key: K) -> Result<(), K> {
        let Some(map) = self.open.last_mut() else {
            return Ok(());
        };
        let set = map.set.get_or_insert_with(|| {
            let run = self.keys.len() - map.start;
            let mut set = KeySet::with_capacity_and_hasher(run * 2, Default::default());
            set.extend(self.keys.drain(map.start..).map(|(_, key)| key));
            Box::new(set)
        });
        match set.replace(key) {
            Some(old) => Err(old),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_bytes_have_equal_fingerprints_and_lengths_tell_prefixes_apart() {
        let keys: [&[u8]; 7] = [
            b"",
            b"a",
            b"a\0",
            b"name",
            b"type",
            b"endpoint",
            b"endpoint2",
        ];
        for (i, a) in keys.iter().enumerate() {
            let copy = a.to_vec();
            assert_eq!(fingerprint(a), fingerprint(&copy));
            for b in &keys[i + 1..] {
                assert_ne!(fingerprint(a), fingerprint(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn a_key_repeated_in_the_same_map_is_caught_at_any_size_and_depth() {
        for size in [1, SEARCHED - 1, SEARCHED, SEARCHED + 1, 500] {
            let mut stack = KeyStack::default();
            stack.open();
            for key in 0..size {
                stack.insert(key, key as u64).unwrap();
                // The same key in a nested map is no clash, and leaves nothing behind.
                stack.open();
                stack.insert(key, key as u64).unwrap();
                stack.close();
            }
            for key in 0..size {
                assert_eq!(stack.insert(key, key as u64), Err(key), "size {size}");
            }
            stack.close();
            // A new map at the same depth starts empty.
            stack.open();
            stack.insert(0, 0).unwrap();
        }
    }
}
