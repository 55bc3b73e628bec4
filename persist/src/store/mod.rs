//! # The snapshot store: a history of snapshots per application, in one folder
//!
//! A store keeps, for each application name, numbered snapshots `1, 2, 3, ...` (numbers are
//! never reused, even after [`SnapshotStore::gc`] removed old ones), each the exact bytes a
//! `.tap`, `.tas`, `.etap` or `.etas` file holds, so exporting and importing are plain copies.
//! Beside the bytes it records an [`Entry`]: number, time stored, size, optional tag, producer,
//! and a SHA-256 of the bytes that is checked on every read.
//!
//! Snapshots are addressed as `APP` (the newest), `APP@N` or `APP@TAG` ([`StoreAddress`]).
//! A tag is unique within its application: tagging a second snapshot with a tag already in use
//! is refused ([`StoreError::TagTaken`]) unless the caller asks to move it
//! ([`TagConflict::Move`]). A snapshot has at most one tag; tagging it again replaces its tag.
//!
//! Retention ([`SnapshotStore::gc`]) keeps the newest N snapshots of an application **and every
//! tagged one**: a tag says "keep this". Removing a tag ([`SnapshotStore::untag`]) makes a
//! snapshot collectable again.
//!
//! [`SledStore`] is the implementation, on [sled](https://docs.rs/sled/0.34.7) 0.34.7. Every
//! write is one sled transaction across the trees it touches, flushed to disk before it returns.
//! sled holds an exclusive lock on the folder while a store is open, so open it only while
//! needed ([`save_to`] and [`load_from`] do exactly that); an open that finds the lock taken
//! retries for up to [`DEFAULT_BUSY_TIMEOUT`], then reports [`StoreError::Busy`].
//!
//! ```
//! use rtwisted_core::{Application, Style};
//! use rtwisted_persist::store::{self, SnapshotStore, SledStore, StoreAddress};
//! let folder = tempfile::tempdir().unwrap();
//! let dir = folder.path().join("store");
//! let app = Application::new("demo").unwrap();
//! let (bytes, _) = rtwisted_persist::encode(&app, Style::Tap).unwrap();
//! let first = store::save_to(&dir, "demo", &bytes, None).unwrap();
//! assert_eq!(first.address(), "demo@1");
//! let (entry, read) = store::load_from(&dir, &"demo".parse().unwrap()).unwrap();
//! assert_eq!((entry.number, read), (1, bytes));
//! ```
//!
//! A folder of `.tap` files stays the rescue path: `rtap store export` writes any stored
//! snapshot back out as a file, byte for byte.

mod address;
mod entry;
mod error;
pub mod held;
mod sled_store;

use std::path::Path;

pub use address::{LATEST, MAX_TAG_LEN, Selector, StoreAddress, check_tag};
pub use entry::{AppSummary, Entry};
pub use error::StoreError;
pub use sled_store::{DEFAULT_BUSY_TIMEOUT, OnNewer, OpenOptions, STORE_FORMAT_VERSION, SledStore};

/// What [`SnapshotStore::tag`] does when the tag is already on another snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagConflict {
    /// Refuse with [`StoreError::TagTaken`] (the default).
    #[default]
    Refuse,
    /// Take the tag off the other snapshot and put it on this one.
    Move,
}

/// What [`SnapshotStore::tag`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    /// The snapshot, now carrying the tag.
    pub entry: Entry,
    /// The snapshot the tag was moved from, if it was on another one.
    pub moved_from: Option<u64>,
    /// The tag this snapshot had before, if it had another one.
    pub replaced: Option<String>,
}

/// A history of snapshots per application. See the [module documentation](self).
pub trait SnapshotStore {
    /// Stores `bytes` as the next snapshot of `app`, tagged `tag` if given, and returns its
    /// entry once it is on disk. Plain bytes must be a valid snapshot of `app` (its checksum is
    /// verified; its types need not be linked); encrypted bytes are stored as they are.
    fn put(&self, app: &str, bytes: &[u8], tag: Option<&str>) -> Result<Entry, StoreError>;

    /// The entry an address picks.
    fn resolve(&self, address: &StoreAddress) -> Result<Entry, StoreError>;

    /// The entry an address picks and its bytes, checked against the recorded SHA-256.
    fn get(&self, address: &StoreAddress) -> Result<(Entry, Vec<u8>), StoreError>;

    /// Every application in the store, by name.
    fn list(&self) -> Result<Vec<AppSummary>, StoreError>;

    /// Every snapshot of `app`, oldest first.
    fn log(&self, app: &str) -> Result<Vec<Entry>, StoreError>;

    /// Puts `tag` on the snapshot `address` picks (replacing a tag it had).
    fn tag(
        &self,
        address: &StoreAddress,
        tag: &str,
        conflict: TagConflict,
    ) -> Result<Tagged, StoreError>;

    /// Takes the tag off the snapshot `address` picks; returns the entry and the tag removed.
    fn untag(&self, address: &StoreAddress) -> Result<(Entry, String), StoreError>;

    /// Removes the snapshots of `app` other than the newest `keep` and the tagged ones; returns
    /// those removed, oldest first. `keep` must be at least 1. Numbers are never reused.
    fn gc(&self, app: &str, keep: usize) -> Result<Vec<Entry>, StoreError>;
}

/// Opens the store at `dir` (creating it if needed), stores `bytes` as the next snapshot of
/// `app`, and closes the store again: what a tool that saves into a store calls.
pub fn save_to(
    dir: &Path,
    app: &str,
    bytes: &[u8],
    tag: Option<&str>,
) -> Result<Entry, StoreError> {
    SledStore::open_or_create(dir)?.put(app, bytes, tag)
}

/// Opens the existing store at `dir`, reads the snapshot `address` picks, and closes the store
/// again: what a tool that loads from a store calls.
pub fn load_from(dir: &Path, address: &StoreAddress) -> Result<(Entry, Vec<u8>), StoreError> {
    SledStore::open(dir)?.get(address)
}

#[cfg(test)]
mod tests;
