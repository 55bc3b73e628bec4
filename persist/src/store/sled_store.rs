//! [`SledStore`]: the store opened for writing, its index on sled 0.34.7.
//!
//! The index (in `DIR/index`) holds only small records; every key of an application starts
//! with its name and a NUL byte, which names cannot hold, so a prefix scan finds exactly one
//! application; numbers are big-endian `u64`, so iteration order is numeric:
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `meta` | `format` | `{"format": "rtwisted-store", "version": 2}` |
//! | `meta` | `journal` | the journal length the index reflects |
//! | `entries` | `APP\0N` | JSON of the [`Entry`] plus `"version": 2` |
//! | `tags` | `APP\0TAG` | `N` |
//! | `counters` | `APP` | the last number given out (never decreases, so never reused) |
//! | `held` | `APP` | JSON of the [`Hold`](super::held::Hold) of the rtwistd running from it |
//!
//! Every change is made in the same order: free space checked, the snapshot file written
//! (atomically), the change committed to the journal (a synced line), then the index updated
//! and flushed. A failure before the journal line leaves nothing changed (at most an
//! unreferenced file, which gc removes); a failure after it leaves the index behind the
//! journal, and the next open catches it up.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::Tree;
use sled::transaction::TransactionError;

use super::address::{check_app, check_tag};
use super::journal::Record;
use super::writer_lock::WriterLock;
use super::{
    AppSummary, Entry, SaveRequest, Selector, Store, StoreAddress, StoreError, TagConflict, Tagged,
    files, layout, space,
};
use crate::crypto;

/// The store format version this build writes, and the newest it reads.
pub const STORE_FORMAT_VERSION: u32 = 2;

/// How long a writer waits for another writer to finish with the store before it reports
/// [`StoreError::Busy`] (the tools' `--wait SECONDS`).
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) const FORMAT_NAME_V1: &str = "rtwisted-store";
pub(super) const FORMAT_KEY: &[u8] = b"format";
pub(super) const JOURNAL_KEY: &[u8] = b"journal";
pub(super) const META: &str = "meta";
pub(super) const SNAPSHOTS_V1: &str = "snapshots";
pub(super) const ENTRIES: &str = "entries";
pub(super) const TAGS: &str = "tags";
pub(super) const COUNTERS: &str = "counters";
pub(super) const HELD: &str = "held";
/// The producer recorded for encrypted bytes, which the store does not open.
const ENCRYPTED_PRODUCER: &str = "encrypted";
/// What a change beyond its snapshot file needs on disk: its journal line and index records.
const RECORD_NEEDS: u64 = 16 * 1024;

/// How to open a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// Create the store (and its folder, mode 0700) when there is none.
    pub create: bool,
    /// How long a writer waits for another writer to finish.
    pub busy_timeout: Duration,
    /// The limits a snapshot put into the store must keep.
    pub limits: crate::Limits,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            create: false,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            limits: crate::Limits::default(),
        }
    }
}

/// The index's format record.
#[derive(Debug, Serialize, Deserialize)]
struct Format {
    format: String,
    version: u32,
}

/// An entry as the index holds it: the metadata plus the format version it was written at.
#[derive(Debug, Serialize, Deserialize)]
struct IndexRecord {
    version: u32,
    #[serde(flatten)]
    entry: Entry,
}

/// A snapshot store opened for writing. It holds the writers' lock while it lives: drop it as
/// soon as the work is done.
pub struct SledStore {
    pub(super) dir: PathBuf,
    pub(super) limits: crate::Limits,
    pub(super) _lock: WriterLock,
    pub(super) db: sled::Db,
    pub(super) meta: Tree,
    pub(super) entries: Tree,
    pub(super) tags: Tree,
    pub(super) counters: Tree,
    pub(super) held: Tree,
    /// The journal's committed length.
    pub(super) journal_len: AtomicU64,
    /// Set when a change was committed to the journal but the index could not follow: this
    /// handle refuses further changes (the next open catches the index up).
    pub(super) stale: AtomicBool,
    /// Serializes changes made through this handle.
    pub(super) writing: Mutex<()>,
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl SledStore {
    /// Opens the existing store at `dir`; [`StoreError::NoStore`] when there is none.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, &OpenOptions::default())
    }

    /// Opens the store at `dir`, creating it (and the folder, mode 0700) when there is none.
    /// A folder that holds other files is refused, never written to.
    pub fn open_or_create(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(
            dir,
            &OpenOptions {
                create: true,
                ..OpenOptions::default()
            },
        )
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `bytes` as the next snapshot of `app_name` ([`Store::put`]).
    pub fn put_snapshot(
        &self,
        app_name: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Entry, StoreError> {
        self.put(app_name, bytes, tag)
    }

    /// The newest snapshot of `app` and its bytes.
    pub fn latest_bytes(&self, app: &str) -> Result<(Entry, Vec<u8>), StoreError> {
        self.get(&StoreAddress::latest(app))
    }

    /// Stores `bytes` as the next snapshot of `app`, made from its snapshot `parent`, by a
    /// writer whose newest known snapshot of `app` is `since` ([`Store::save`]).
    pub fn put_child(
        &self,
        app: &str,
        bytes: &[u8],
        tag: Option<&str>,
        parent: Option<u64>,
        since: Option<u64>,
        on_newer: OnNewer,
    ) -> Result<Entry, StoreError> {
        self.save(
            app,
            bytes,
            &SaveRequest {
                tag,
                parent,
                since,
                on_newer,
            },
        )
    }

    pub(super) fn failed(&self, error: sled::Error) -> StoreError {
        sled_error(&self.dir, error)
    }

    pub(super) fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map(drop)
            .map_err(|error| self.failed(error))
    }

    /// Takes this handle's write turn; refuses when an earlier change left the index behind.
    pub(super) fn begin(&self) -> Result<MutexGuard<'_, ()>, StoreError> {
        let guard = self
            .writing
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if self.stale.load(Ordering::SeqCst) {
            return Err(damaged(
                &self.dir,
                "its index fell behind its journal during this run; open the store again"
                    .to_owned(),
            ));
        }
        Ok(guard)
    }

    /// Runs the index half of a committed change; if it fails, the change stands (the journal
    /// has it) and this handle is marked stale.
    fn follow<T>(&self, change: impl FnOnce() -> Result<T, StoreError>) -> Result<(), StoreError> {
        match change().and_then(|_| self.flush()) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.stale.store(true, Ordering::SeqCst);
                Ok(())
            }
        }
    }

    fn mark_journal(&self, length: u64) -> Result<(), StoreError> {
        self.meta
            .insert(JOURNAL_KEY, &length.to_be_bytes())
            .map(drop)
            .map_err(|error| self.failed(error))
    }

    fn read_entry(&self, key: &[u8], value: &[u8]) -> Result<Entry, StoreError> {
        decode_record(&self.dir, key, value)
    }

    fn entry_at(&self, app: &str, number: u64) -> Result<Option<Entry>, StoreError> {
        let key = snapshot_key(app, number);
        match self.entries.get(&key).map_err(|error| self.failed(error))? {
            Some(value) => self.read_entry(&key, &value).map(Some),
            None => Ok(None),
        }
    }

    fn has_app(&self, app: &str) -> Result<bool, StoreError> {
        match self.entries.scan_prefix(app_prefix(app)).next() {
            None => Ok(false),
            Some(item) => item.map(|_| true).map_err(|error| self.failed(error)),
        }
    }

    fn last_number(&self, app: &str) -> Result<u64, StoreError> {
        match self
            .counters
            .get(app.as_bytes())
            .map_err(|error| self.failed(error))?
        {
            Some(value) => decode_number(&value).ok_or_else(|| {
                damaged(&self.dir, format!("the counter of '{app}' is not a number"))
            }),
            None => Ok(0),
        }
    }

    fn numbers_hint(&self, app: &str) -> Result<String, StoreError> {
        let numbers: Vec<u64> = self
            .log(app)?
            .into_iter()
            .map(|entry| entry.number)
            .collect();
        Ok(super::numbers_hint(app, &numbers))
    }

    fn tags_hint(&self, app: &str) -> Result<String, StoreError> {
        let log = self.log(app)?;
        Ok(super::tags_hint(
            app,
            log.iter().filter_map(|e| e.tag.as_deref()),
        ))
    }

    fn transaction_error(&self, error: TransactionError<StoreError>) -> StoreError {
        match error {
            TransactionError::Abort(error) => error,
            TransactionError::Storage(error) => self.failed(error),
        }
    }

    /// Every snapshot of every application, as the index holds them.
    pub(super) fn all_entries(&self) -> Result<Vec<Entry>, StoreError> {
        self.entries
            .iter()
            .map(|item| {
                let (key, value) = item.map_err(|error| self.failed(error))?;
                self.read_entry(&key, &value)
            })
            .collect()
    }

    /// Removes the snapshot files no entry names; returns how many.
    fn remove_unreferenced_files(&self) -> Result<usize, StoreError> {
        let referenced: BTreeSet<String> = self
            .all_entries()?
            .into_iter()
            .map(|entry| entry.sha256)
            .collect();
        let io_error = |cause| StoreError::Io {
            dir: self.dir.clone(),
            cause,
        };
        let doomed: Vec<PathBuf> = files::list(&self.dir)
            .map_err(io_error)?
            .into_iter()
            .filter(|(_, sha256)| !referenced.contains(sha256))
            .map(|(path, _)| path)
            .collect();
        files::remove_all(&doomed).map_err(io_error)?;
        Ok(doomed.len())
    }

    /// Rewrites the journal as the index now stands (the records of removed snapshots
    /// dropped), when there is room; a journal that cannot be compacted is left as it is.
    fn compact_journal(&self) -> Result<(), StoreError> {
        let path = layout::journal(&self.dir);
        let replay = super::journal::replay(&path).map_err(|cause| StoreError::Io {
            dir: self.dir.clone(),
            cause,
        })?;
        let (index, _) = super::index::Index::from_records(replay.records);
        let bytes =
            super::journal::render(STORE_FORMAT_VERSION, &super::journal::compacted(&index));
        if (bytes.len() as u64) >= replay.committed
            || space::ensure(&self.dir, bytes.len() as u64).is_err()
        {
            return Ok(());
        }
        crate::write_atomic(&path, &bytes).map_err(|cause| StoreError::Io {
            dir: self.dir.clone(),
            cause,
        })?;
        self.journal_len.store(bytes.len() as u64, Ordering::SeqCst);
        self.follow(|| self.mark_journal(bytes.len() as u64))
    }
}

/// What [`Store::save`] does when a snapshot newer than the writer's `since` exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNewer {
    /// Refuse with [`StoreError::Changed`] (an edit, which must not revert another).
    Refuse,
    /// Store it anyway, marked diverged (a daemon's save, which must not be lost).
    MarkDiverged,
}

impl Store for SledStore {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn save(
        &self,
        app: &str,
        bytes: &[u8],
        request: &SaveRequest<'_>,
    ) -> Result<Entry, StoreError> {
        check_app(app).map_err(|reason| StoreError::InvalidApp { reason })?;
        if let Some(tag) = request.tag {
            check_tag(tag).map_err(|reason| StoreError::InvalidTag { reason })?;
        }
        let mut entry = describe(app, bytes, &self.limits)?;
        entry.saved = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        entry.tag = request.tag.map(str::to_owned);
        entry.parent = request.parent;
        let _turn = self.begin()?;
        let last = self.last_number(app)?;
        entry.number = last
            .checked_add(1)
            .ok_or_else(|| damaged(&self.dir, format!("the counter of '{app}' is exhausted")))?;
        if let Some(tag) = request.tag
            && let Some(holder) = self
                .tags
                .get(tag_key(app, tag))
                .map_err(|error| self.failed(error))?
        {
            return Err(StoreError::TagTaken {
                app: app.to_owned(),
                tag: tag.to_owned(),
                number: decode_number(&holder).unwrap_or(0),
            });
        }
        if let Some(since) = request.since
            && last > since
        {
            match request.on_newer {
                OnNewer::Refuse => {
                    return Err(StoreError::Changed {
                        app: app.to_owned(),
                        read: since,
                        latest: last,
                    });
                }
                OnNewer::MarkDiverged => entry.diverged_from = Some(last),
            }
        }
        space::ensure(&self.dir, bytes.len() as u64 + RECORD_NEEDS)?;
        files::write(&self.dir, &entry, bytes).map_err(|cause| StoreError::Io {
            dir: self.dir.clone(),
            cause,
        })?;
        let length = self.commit(&[Record::Save(entry.clone())])?;
        let key = snapshot_key(app, entry.number);
        self.follow(|| {
            let record = encode_record(&self.dir, &entry)?;
            let number = entry.number.to_be_bytes();
            (&self.entries, &self.counters, &self.tags, &self.meta)
                .transaction(|(entries, counters, tags, meta)| {
                    counters.insert(app.as_bytes(), &number)?;
                    entries.insert(key.as_slice(), record.as_slice())?;
                    if let Some(tag) = request.tag {
                        tags.insert(tag_key(app, tag), &number)?;
                    }
                    meta.insert(JOURNAL_KEY, &length.to_be_bytes())?;
                    Ok(())
                })
                .map_err(|error: TransactionError<StoreError>| self.transaction_error(error))
        })?;
        Ok(entry)
    }

    fn resolve(&self, address: &StoreAddress) -> Result<Entry, StoreError> {
        let app = address.app.as_str();
        let no_app = || StoreError::NoApp {
            app: app.to_owned(),
        };
        match &address.selector {
            Selector::Latest => match self.entries.scan_prefix(app_prefix(app)).next_back() {
                None => Err(no_app()),
                Some(item) => {
                    let (key, value) = item.map_err(|error| self.failed(error))?;
                    self.read_entry(&key, &value)
                }
            },
            Selector::Number(number) => match self.entry_at(app, *number)? {
                Some(entry) => Ok(entry),
                None if !self.has_app(app)? => Err(no_app()),
                None => Err(StoreError::NoSnapshot {
                    address: address.to_string(),
                    hint: self.numbers_hint(app)?,
                }),
            },
            Selector::Tag(tag) => {
                let holder = self
                    .tags
                    .get(tag_key(app, tag))
                    .map_err(|error| self.failed(error))?;
                match holder {
                    Some(value) => {
                        let number = decode_number(&value).ok_or_else(|| {
                            damaged(&self.dir, format!("tag '{address}' is not a number"))
                        })?;
                        self.entry_at(app, number)?.ok_or_else(|| {
                            damaged(
                                &self.dir,
                                format!("tag '{address}' names {app}@{number}, which is missing"),
                            )
                        })
                    }
                    None if !self.has_app(app)? => Err(no_app()),
                    None => Err(StoreError::NoSnapshot {
                        address: address.to_string(),
                        hint: self.tags_hint(app)?,
                    }),
                }
            }
        }
    }

    fn get(&self, address: &StoreAddress) -> Result<(Entry, Vec<u8>), StoreError> {
        let entry = self.resolve(address)?;
        let bytes = read_file(&self.dir, &entry)?;
        Ok((entry, bytes))
    }

    fn list(&self) -> Result<Vec<AppSummary>, StoreError> {
        let mut summaries: Vec<AppSummary> = Vec::new();
        for entry in self.all_entries()? {
            match summaries.last_mut() {
                Some(summary) if summary.app == entry.app => {
                    summary.count += 1;
                    summary.total_bytes += entry.size;
                    summary.latest = entry;
                }
                _ => summaries.push(AppSummary {
                    app: entry.app.clone(),
                    count: 1,
                    total_bytes: entry.size,
                    latest: entry,
                }),
            }
        }
        Ok(summaries)
    }

    fn log(&self, app: &str) -> Result<Vec<Entry>, StoreError> {
        let entries = self
            .entries
            .scan_prefix(app_prefix(app))
            .map(|item| {
                let (key, value) = item.map_err(|error| self.failed(error))?;
                self.read_entry(&key, &value)
            })
            .collect::<Result<Vec<Entry>, StoreError>>()?;
        if entries.is_empty() {
            return Err(StoreError::NoApp {
                app: app.to_owned(),
            });
        }
        Ok(entries)
    }

    fn tag(
        &self,
        address: &StoreAddress,
        tag: &str,
        conflict: TagConflict,
    ) -> Result<Tagged, StoreError> {
        check_tag(tag).map_err(|reason| StoreError::InvalidTag { reason })?;
        let _turn = self.begin()?;
        let mut entry = self.resolve(address)?;
        let app = entry.app.clone();
        let mut moved_from = None;
        let mut previous = None;
        if let Some(holder) = self
            .tags
            .get(tag_key(&app, tag))
            .map_err(|error| self.failed(error))?
        {
            let holder = decode_number(&holder)
                .ok_or_else(|| damaged(&self.dir, format!("tag '{app}@{tag}' is not a number")))?;
            if holder == entry.number {
                return Ok(Tagged {
                    entry,
                    moved_from: None,
                    replaced: None,
                });
            }
            if conflict == TagConflict::Refuse {
                return Err(StoreError::TagTaken {
                    app,
                    tag: tag.to_owned(),
                    number: holder,
                });
            }
            previous = self.entry_at(&app, holder)?;
            moved_from = Some(holder);
        }
        space::ensure(&self.dir, RECORD_NEEDS)?;
        let length = self.commit(&[Record::Tag {
            app: app.clone(),
            number: entry.number,
            tag: tag.to_owned(),
        }])?;
        let replaced = entry.tag.replace(tag.to_owned());
        if let Some(previous) = &mut previous {
            previous.tag = None;
        }
        let (dir, tagged) = (&self.dir, &entry);
        self.follow(|| {
            let record = encode_record(dir, tagged)?;
            let previous_record = match &previous {
                Some(previous) => Some((
                    snapshot_key(&app, previous.number),
                    encode_record(dir, previous)?,
                )),
                None => None,
            };
            (&self.entries, &self.tags, &self.meta)
                .transaction(|(entries, tags, meta)| {
                    if let Some((key, record)) = &previous_record {
                        entries.insert(key.as_slice(), record.as_slice())?;
                    }
                    if let Some(old) = &replaced {
                        tags.remove(tag_key(&app, old))?;
                    }
                    entries.insert(snapshot_key(&app, tagged.number), record.as_slice())?;
                    tags.insert(tag_key(&app, tag), &tagged.number.to_be_bytes())?;
                    meta.insert(JOURNAL_KEY, &length.to_be_bytes())?;
                    Ok(())
                })
                .map_err(|error: TransactionError<StoreError>| self.transaction_error(error))
        })?;
        Ok(Tagged {
            entry,
            moved_from,
            replaced,
        })
    }

    fn untag(&self, address: &StoreAddress) -> Result<(Entry, String), StoreError> {
        let _turn = self.begin()?;
        let mut entry = self.resolve(address)?;
        let Some(tag) = entry.tag.take() else {
            return Err(StoreError::NotTagged {
                address: entry.address(),
            });
        };
        space::ensure(&self.dir, RECORD_NEEDS)?;
        let length = self.commit(&[Record::Untag {
            app: entry.app.clone(),
            number: entry.number,
        }])?;
        let untagged = &entry;
        self.follow(|| {
            let record = encode_record(&self.dir, untagged)?;
            let app = untagged.app.as_str();
            (&self.entries, &self.tags, &self.meta)
                .transaction(|(entries, tags, meta)| {
                    entries.insert(snapshot_key(app, untagged.number), record.as_slice())?;
                    tags.remove(tag_key(app, &tag))?;
                    meta.insert(JOURNAL_KEY, &length.to_be_bytes())?;
                    Ok(())
                })
                .map_err(|error: TransactionError<StoreError>| self.transaction_error(error))
        })?;
        Ok((entry, tag))
    }

    fn gc(&self, app: &str, keep: usize) -> Result<Vec<Entry>, StoreError> {
        if keep == 0 {
            return Err(StoreError::KeepNothing);
        }
        let _turn = self.begin()?;
        let entries = self.log(app)?;
        let newest: BTreeSet<u64> = entries
            .iter()
            .rev()
            .take(keep)
            .map(|entry| entry.number)
            .collect();
        let doomed: Vec<Entry> = entries
            .into_iter()
            .filter(|entry| entry.tag.is_none() && !newest.contains(&entry.number))
            .collect();
        if !doomed.is_empty() {
            let length = self.commit(&[Record::Remove {
                app: app.to_owned(),
                numbers: doomed.iter().map(|entry| entry.number).collect(),
            }])?;
            self.follow(|| {
                (&self.entries, &self.meta)
                    .transaction(|(entries, meta)| {
                        for entry in &doomed {
                            entries.remove(snapshot_key(app, entry.number))?;
                        }
                        meta.insert(JOURNAL_KEY, &length.to_be_bytes())?;
                        Ok(())
                    })
                    .map_err(|error: TransactionError<StoreError>| self.transaction_error(error))
            })?;
        }
        if !self.stale.load(Ordering::SeqCst) {
            self.remove_unreferenced_files()?;
            self.compact_journal()?;
        }
        Ok(doomed)
    }

    fn hold(&self, app: &str, number: Option<u64>) -> Result<super::held::Hold, StoreError> {
        SledStore::hold(self, app, number)
    }

    fn release(&self, app: &str) -> Result<(), StoreError> {
        SledStore::release(self, app)
    }

    fn holder(&self, app: &str) -> Result<Option<super::held::Hold>, StoreError> {
        SledStore::holder(self, app)
    }

    fn verify(&self) -> Result<super::Verified, StoreError> {
        super::repair::verify_writer(self)
    }

    fn take_over_hold(
        &self,
        app: &str,
        number: Option<u64>,
        from: u32,
    ) -> Result<super::held::Hold, StoreError> {
        SledStore::take_over_hold(self, app, number, from)
    }
}

/// The bytes of `entry`'s file in the store at `dir`, checked against its size and SHA-256.
pub(super) fn read_file(dir: &Path, entry: &Entry) -> Result<Vec<u8>, StoreError> {
    let path = files::path_for(dir, entry);
    files::read_checked(&path, entry).map_err(|problem| match problem {
        files::FileProblem::Unreadable(cause) => StoreError::Io {
            dir: dir.to_owned(),
            cause,
        },
        problem => damaged(
            dir,
            format!(
                "{} (run `rtap store verify`)",
                problem.describe(entry, &path)
            ),
        ),
    })
}

pub(super) fn write_format(dir: &Path, meta: &Tree) -> Result<(), StoreError> {
    let record = serde_json::to_vec(&Format {
        format: FORMAT_NAME_V1.to_owned(),
        version: STORE_FORMAT_VERSION,
    })
    .map_err(|error| damaged(dir, error.to_string()))?;
    meta.insert(FORMAT_KEY, record)
        .map(drop)
        .map_err(|error| sled_error(dir, error))
}

pub(super) fn sled_error(dir: &Path, error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(cause) => StoreError::Io {
            dir: dir.to_owned(),
            cause,
        },
        sled::Error::Corruption { .. } => damaged(dir, "sled found corrupted data".to_owned()),
        sled::Error::Unsupported(detail) => StoreError::NotAStore {
            dir: dir.to_owned(),
            detail: format!("sled cannot open it: {detail}"),
        },
        other => damaged(dir, format!("sled: {other}")),
    }
}

pub(super) fn damaged(dir: &Path, detail: String) -> StoreError {
    StoreError::Damaged {
        dir: dir.to_owned(),
        detail,
    }
}

/// The entry for `bytes` stored under `app`, without its number, time and tag: what their
/// header says, or only that they are encrypted.
pub(super) fn describe(
    app: &str,
    bytes: &[u8],
    limits: &crate::Limits,
) -> Result<Entry, StoreError> {
    let mut entry = Entry {
        app: app.to_owned(),
        number: 0,
        saved: String::new(),
        size: bytes.len() as u64,
        tag: None,
        producer: ENCRYPTED_PRODUCER.to_owned(),
        encrypted: true,
        style: None,
        created: None,
        sha256: crate::header::checksum(&[bytes]),
        parent: None,
        diverged_from: None,
    };
    if crypto::looks_encrypted(bytes) {
        return Ok(entry);
    }
    // The header is all an entry needs: the payload is verified by its checksum, not decoded.
    let header = crate::verify(bytes, limits).map_err(StoreError::NotASnapshot)?;
    let fields = header.fields;
    if fields.app != app {
        return Err(StoreError::AppMismatch {
            expected: app.to_owned(),
            found: fields.app,
        });
    }
    entry.producer = fields.producer;
    entry.encrypted = false;
    entry.style = Some(fields.style);
    entry.created = Some(fields.created);
    Ok(entry)
}

pub(super) fn decode_record(dir: &Path, key: &[u8], value: &[u8]) -> Result<Entry, StoreError> {
    let record: IndexRecord = serde_json::from_slice(value).map_err(|error| {
        damaged(
            dir,
            format!(
                "the record {} does not parse: {error}",
                String::from_utf8_lossy(key).replace('\0', "@")
            ),
        )
    })?;
    if record.version > STORE_FORMAT_VERSION {
        return Err(StoreError::NewerStore {
            dir: dir.to_owned(),
            found: record.version,
            supported: STORE_FORMAT_VERSION,
        });
    }
    Ok(record.entry)
}

pub(super) fn encode_record(dir: &Path, entry: &Entry) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&IndexRecord {
        version: STORE_FORMAT_VERSION,
        entry: entry.clone(),
    })
    .map_err(|error| damaged(dir, format!("cannot encode a record: {error}")))
}

fn app_prefix(app: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(app.len() + 9);
    key.extend_from_slice(app.as_bytes());
    key.push(0);
    key
}

pub(super) fn snapshot_key(app: &str, number: u64) -> Vec<u8> {
    let mut key = app_prefix(app);
    key.extend_from_slice(&number.to_be_bytes());
    key
}

pub(super) fn tag_key(app: &str, tag: &str) -> Vec<u8> {
    let mut key = app_prefix(app);
    key.extend_from_slice(tag.as_bytes());
    key
}

pub(super) fn decode_number(value: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(value).ok().map(u64::from_be_bytes)
}

/// Numbers as ranges: `1..3, 5, 7..8`.
pub(crate) fn ranges(numbers: &[u64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut index = 0;
    while index < numbers.len() {
        let start = numbers[index];
        let mut end = start;
        while index + 1 < numbers.len() && numbers[index + 1] == end + 1 {
            index += 1;
            end = numbers[index];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}..{end}")
        });
        index += 1;
    }
    parts.join(", ")
}
