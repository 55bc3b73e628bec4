//! # The snapshot store: a history of snapshots per application, in one folder
//!
//! A store keeps, for each application name, numbered snapshots `1, 2, 3, ...` (numbers are
//! never reused, even after [`Store::gc`] removed old ones), each the exact bytes a
//! `.tap`, `.tas`, `.etap` or `.etas` file holds, so exporting and importing are plain copies.
//! Beside the bytes it records an [`Entry`]: number, time stored, size, optional tag, producer,
//! and a SHA-256 of the bytes that is checked on every read.
//!
//! Snapshots are addressed as `APP` (the newest), `APP@N` or `APP@TAG` ([`StoreAddress`]).
//! A tag is unique within its application: tagging a second snapshot with a tag already in use
//! is refused ([`StoreError::TagTaken`]) unless the caller asks to move it
//! ([`TagConflict::Move`]). A snapshot has at most one tag; tagging it again replaces its tag.
//!
//! Retention ([`Store::gc`]) keeps the newest N snapshots of an application **and every
//! tagged one**: a tag says "keep this". Removing a tag ([`Store::untag`]) makes a
//! snapshot collectable again.
//!
//! Two implementations of the one [`Store`] trait open a store folder (see [`layout`] for what
//! it holds): [`SledStore`] for writing (it holds the writers' lock; the index is on
//! [sled](https://docs.rs/sled/0.34.7) 0.34.7) and [`ReadStore`] for reading (from the journal
//! and the files: no lock, no write access). Each snapshot is a complete snapshot file of its
//! own, named by its SHA-256, so `rtap inspect` opens one directly; the journal records every
//! change, so the index can always be rebuilt ([`rebuild`]) and nothing the index loses is
//! lost. A writer waits for another writer up to [`DEFAULT_BUSY_TIMEOUT`], then reports
//! [`StoreError::Busy`]; a write on a nearly full disk is refused before it writes anything
//! ([`space`]).
//!
//! ```
//! use rtwisted_core::{Application, Style};
//! use rtwisted_persist::store::{self, Store, SledStore, StoreAddress};
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
mod files;
pub mod held;
mod index;
mod journal;
pub mod layout;
mod migrate;
mod open;
mod reader;
mod repair;
mod sled_store;
pub mod space;
mod writer_lock;

use std::path::Path;

pub use address::{LATEST, MAX_TAG_LEN, Selector, StoreAddress, check_tag};
pub use entry::{AppSummary, Entry};
pub use error::StoreError;
pub use files::SNAPSHOTS_FOLDER;
pub use index::Index;
pub use reader::ReadStore;
pub use repair::{Rebuilt, Verified, rebuild};
pub use sled_store::{DEFAULT_BUSY_TIMEOUT, OnNewer, OpenOptions, STORE_FORMAT_VERSION, SledStore};

/// The former name of [`Store`].
pub use self::Store as SnapshotStore;

/// What [`Store::tag`] does when the tag is already on another snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagConflict {
    /// Refuse with [`StoreError::TagTaken`] (the default).
    #[default]
    Refuse,
    /// Take the tag off the other snapshot and put it on this one.
    Move,
}

/// What [`Store::tag`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    /// The snapshot, now carrying the tag.
    pub entry: Entry,
    /// The snapshot the tag was moved from, if it was on another one.
    pub moved_from: Option<u64>,
    /// The tag this snapshot had before, if it had another one.
    pub replaced: Option<String>,
}

/// How [`Store::save`] stores a snapshot: its tag, the snapshot it was made from, and what to
/// do when the application's newest snapshot is no longer the one the writer knew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveRequest<'a> {
    /// A tag for the new snapshot.
    pub tag: Option<&'a str>,
    /// The snapshot of the same application it was made from.
    pub parent: Option<u64>,
    /// The newest snapshot of the application the writer knew of (the compare of the
    /// compare-and-set on the newest).
    pub since: Option<u64>,
    /// Refuse (an edit) or mark diverged (a daemon's save) when a newer one than `since`
    /// exists.
    pub on_newer: OnNewer,
}

impl Default for SaveRequest<'_> {
    fn default() -> Self {
        SaveRequest {
            tag: None,
            parent: None,
            since: None,
            on_newer: OnNewer::MarkDiverged,
        }
    }
}

/// A history of snapshots per application: what every store backend provides. See the
/// [module documentation](self).
pub trait Store {
    /// The store's folder (or, for a remote backend, the name it was opened by).
    fn dir(&self) -> &Path;

    /// Stores `bytes` as the next snapshot of `app` as `request` says, and returns its entry
    /// once it is durable. Plain bytes must be a valid snapshot of `app` (its checksum is
    /// verified; its types need not be linked); encrypted bytes are stored as they are. The
    /// check of `request.since` against the newest snapshot and the save are one atomic step.
    fn save(&self, app: &str, bytes: &[u8], request: &SaveRequest<'_>)
    -> Result<Entry, StoreError>;

    /// [`Store::save`] with only a tag: the next snapshot of `app`, from no parent.
    fn put(&self, app: &str, bytes: &[u8], tag: Option<&str>) -> Result<Entry, StoreError> {
        self.save(
            app,
            bytes,
            &SaveRequest {
                tag,
                ..SaveRequest::default()
            },
        )
    }

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

    /// Removes the snapshots of `app` other than the newest `keep` and the tagged ones, and
    /// the bytes no snapshot needs any more; returns those removed, oldest first. `keep` must
    /// be at least 1. Numbers are never reused.
    fn gc(&self, app: &str, keep: usize) -> Result<Vec<Entry>, StoreError>;

    /// Records that this process (an rtwistd) runs from `app`; refuses while a live process
    /// holds it.
    fn hold(&self, app: &str, number: Option<u64>) -> Result<held::Hold, StoreError>;

    /// Removes this process's hold on `app`.
    fn release(&self, app: &str) -> Result<(), StoreError>;

    /// The live hold on `app`, if there is one.
    fn holder(&self, app: &str) -> Result<Option<held::Hold>, StoreError>;

    /// Checks every entry against its bytes and the backend's own records against each other.
    fn verify(&self) -> Result<Verified, StoreError>;

    /// Refuses with [`StoreError::Held`] when another live process holds `app`, unless
    /// `force`. A backend that records no holds has nothing to refuse.
    fn check_not_held(&self, app: &str, force: bool) -> Result<(), StoreError> {
        match self.holder(app)? {
            Some(hold) if !force && hold.pid != std::process::id() => Err(StoreError::Held {
                app: app.to_owned(),
                pid: hold.pid,
            }),
            _ => Ok(()),
        }
    }

    /// Records that this process now holds `app` in place of the process `from` (a hot
    /// restart's predecessor); refuses while a third live process holds it. A backend whose
    /// [`Store::hold`] never refuses can keep this default.
    fn take_over_hold(
        &self,
        app: &str,
        number: Option<u64>,
        from: u32,
    ) -> Result<held::Hold, StoreError> {
        let _ = from;
        self.hold(app, number)
    }
}

/// What a [`StoreError::NoSnapshot`] for a number says there is instead: `echo has 1..5, 8`
/// (`numbers` in ascending order). Every backend says it in these words.
pub fn numbers_hint(app: &str, numbers: &[u64]) -> String {
    format!("{app} has {}", sled_store::ranges(numbers))
}

/// What a [`StoreError::NoSnapshot`] for a tag says there is instead: `echo's tags: prod,
/// canary` (`tags` in the order of their snapshots), or `echo has no tags`.
pub fn tags_hint<'a>(app: &str, tags: impl IntoIterator<Item = &'a str>) -> String {
    let tags: Vec<&str> = tags.into_iter().collect();
    if tags.is_empty() {
        format!("{app} has no tags")
    } else {
        format!("{app}'s tags: {}", tags.join(", "))
    }
}

/// The entry for `bytes` to be stored under `app`, from their header alone (number, time and
/// tag left empty): refuses bytes that are not a snapshot of `app`. Encrypted bytes are taken
/// as they are. What a backend checks before it stores anything.
pub fn describe_snapshot(
    app: &str,
    bytes: &[u8],
    limits: &crate::Limits,
) -> Result<Entry, StoreError> {
    sled_store::describe(app, bytes, limits)
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
    ReadStore::open(dir)?.get(address)
}

/// Opens the store at `dir` for reading: [`ReadStore`].
pub fn open_reader(dir: &Path, options: &OpenOptions) -> Result<ReadStore, StoreError> {
    ReadStore::open_with(dir, options)
}

#[cfg(test)]
mod tests;
