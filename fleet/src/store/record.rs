//! What the store keeps in etcd beside the chunks: the record of each snapshot, the head of
//! each application, and its tags; and the [`Entry`] callers see.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::FleetError;

/// The most bytes one chunk holds: under 1 MiB, so each chunk is one request well inside etcd's
/// default request limit (1.5 MiB).
pub const CHUNK_SIZE: usize = 960 * 1024;

/// The most distinct chunks one snapshot may have: the commit transaction checks that each
/// still exists, and etcd allows 128 operations per transaction by default.
pub const MAX_CHUNKS: usize = 120;

/// The largest snapshot the store takes (`MAX_CHUNKS` chunks of `CHUNK_SIZE`, about 112 MiB).
pub const MAX_SNAPSHOT_BYTES: u64 = (CHUNK_SIZE * MAX_CHUNKS) as u64;

/// One stored snapshot, as callers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The application it belongs to.
    pub app: String,
    /// Its number within the application: 1, 2, 3, ... in commit order, never reused.
    pub number: u64,
    /// When it was committed (RFC 3339, UTC, seconds).
    pub saved: String,
    /// The size of its bytes.
    pub size: u64,
    /// Its tag, if it has one (unique within the application).
    pub tag: Option<String>,
    /// `sha256:HEX` of its bytes, checked whenever they are read back.
    pub sha256: String,
    /// The snapshot it was made from: the application's latest when it was committed (`None`
    /// for the first), or what a [`Parent::Diverge`](crate::Parent::Diverge) save named.
    pub parent: Option<u64>,
    /// Set when it was saved from [`parent`](Entry::parent) while a newer snapshot of the
    /// application existed (this one): the history forked.
    pub diverged_from: Option<u64>,
    /// How many chunks its bytes are stored in.
    pub chunks: usize,
    /// What its header said, when the saver recorded it ([`Save::about`](crate::Save::about)).
    pub about: Option<About>,
}

/// What a snapshot's header says (the folder store's entry fields that come from it), recorded
/// beside the snapshot so that listings need not read its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct About {
    /// What wrote it (`rtwisted 0.1.0`), or `encrypted` for bytes that were not opened.
    pub producer: String,
    /// True when the bytes are passphrase-encrypted.
    pub encrypted: bool,
    /// Its style, unknown for encrypted bytes.
    pub style: Option<rtwisted_core::Style>,
    /// When it was written (its header's time), unknown for encrypted bytes.
    pub created: Option<String>,
}

impl Entry {
    /// The entry's address, `APP@N`.
    pub fn address(&self) -> String {
        format!("{}@{}", self.app, self.number)
    }
}

/// One application in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSummary {
    /// The application's name.
    pub app: String,
    /// How many snapshots the store holds for it.
    pub count: usize,
    /// Their total size in bytes.
    pub total_bytes: u64,
    /// The newest one.
    pub latest: Entry,
}

/// The record kept at `apps/APP/snapshots/N`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub number: u64,
    pub saved: String,
    pub size: u64,
    pub sha256: String,
    pub parent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged_from: Option<u64>,
    /// The chunk digests (hex), in order.
    pub chunks: Vec<String>,
    /// Unique per save attempt, so a commit whose reply was lost can be recognised.
    pub save_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<About>,
}

impl Record {
    pub(crate) fn entry(&self, app: &str, tag: Option<String>) -> Entry {
        Entry {
            app: app.to_owned(),
            number: self.number,
            saved: self.saved.clone(),
            size: self.size,
            tag,
            sha256: self.sha256.clone(),
            parent: self.parent,
            diverged_from: self.diverged_from,
            chunks: self.chunks.len(),
            about: self.about.clone(),
        }
    }
}

/// The value kept at `apps/APP/head`: the newest snapshot's number.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Head {
    pub latest: u64,
}

/// The value kept at `apps/APP/tags`: every tag of the application and its snapshot.
pub(crate) type Tags = BTreeMap<String, u64>;

/// Decodes a JSON value read at `key`, or reports the key as damaged.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    key: &[u8],
    value: &[u8],
) -> Result<T, FleetError> {
    serde_json::from_slice(value).map_err(|error| FleetError::Damaged {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: format!("unreadable record ({error})"),
    })
}

/// Encodes a record for etcd.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs and maps cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The tag each snapshot number carries.
pub(crate) fn tags_by_number(tags: &Tags) -> BTreeMap<u64, String> {
    tags.iter().map(|(tag, n)| (*n, tag.clone())).collect()
}

/// `HEX` of the SHA-256 of `bytes`.
pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Splits `bytes` into chunks of at most [`CHUNK_SIZE`], each with its digest.
pub(crate) fn split(bytes: &[u8]) -> Vec<(String, &[u8])> {
    bytes
        .chunks(CHUNK_SIZE)
        .map(|chunk| (hex_sha256(chunk), chunk))
        .collect()
}

/// The key suffix of snapshot `number` of `app` (zero-padded so keys sort by number).
pub(crate) fn snapshot_key(app: &str, number: u64) -> String {
    format!("apps/{app}/snapshots/{number:020}")
}

/// The key suffix of `app`'s head.
pub(crate) fn head_key(app: &str) -> String {
    format!("apps/{app}/head")
}

/// The key suffix of `app`'s tags.
pub(crate) fn tags_key(app: &str) -> String {
    format!("apps/{app}/tags")
}

/// The key suffix of a chunk.
pub(crate) fn chunk_key(digest: &str) -> String {
    format!("chunks/{digest}")
}

/// The key suffix bumped by every commit, so gc can tell whether a commit ran while it looked.
pub(crate) const GENERATION_KEY: &str = "generation";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_bytes_in_order_and_stay_under_a_mebibyte() {
        let bytes: Vec<u8> = (0..(2 * CHUNK_SIZE + 5)).map(|i| (i % 251) as u8).collect();
        let chunks = split(&bytes);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|(_, c)| c.len() < 1024 * 1024));
        let joined: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.iter().copied()).collect();
        assert_eq!(joined, bytes);
        assert_eq!(chunks[2].1.len(), 5);
        assert_eq!(chunks[0].0, hex_sha256(&bytes[..CHUNK_SIZE]));
    }

    #[test]
    fn snapshot_keys_sort_by_number() {
        assert!(snapshot_key("a", 9) < snapshot_key("a", 10));
    }
}
