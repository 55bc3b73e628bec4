//! [`SledStore`]: the snapshot store on sled 0.34.7.
//!
//! Layout (every key of an application starts with its name and a NUL byte, which names cannot
//! hold, so a prefix scan finds exactly one application; numbers are big-endian `u64`, so
//! iteration order is numeric):
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `meta` | `format` | `{"format": "rtwisted-store", "version": 1}` |
//! | `snapshots` | `APP\0N` | the snapshot's bytes, exactly |
//! | `entries` | `APP\0N` | JSON of the [`Entry`] plus `"version": 1` |
//! | `tags` | `APP\0TAG` | `N` |
//! | `counters` | `APP` | the last number given out (never decreases, so never reused) |
//! | `held` | `APP` | JSON of the [`Hold`](super::held::Hold) of the rtwistd running from it |

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use super::address::{check_app, check_tag};
use super::{
    AppSummary, Entry, Selector, SnapshotStore, StoreAddress, StoreError, TagConflict, Tagged,
};
use crate::crypto;

/// The store format version this build writes, and the newest it reads.
pub const STORE_FORMAT_VERSION: u32 = 1;

/// How long an open waits for another process to close the store before it reports
/// [`StoreError::Busy`].
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(2);

const FORMAT_NAME: &str = "rtwisted-store";
const FORMAT_KEY: &[u8] = b"format";
const META: &str = "meta";
const SNAPSHOTS: &str = "snapshots";
const ENTRIES: &str = "entries";
const TAGS: &str = "tags";
const COUNTERS: &str = "counters";
const HELD: &str = "held";
const SLED_DEFAULT_TREE: &[u8] = b"__sled__default";
/// The producer recorded for encrypted bytes, which the store does not open.
const ENCRYPTED_PRODUCER: &str = "encrypted";

/// How to open a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// Create the store (and its folder, mode 0700) when there is none.
    pub create: bool,
    /// How long to retry while another process holds the store open.
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

/// The store's format record.
#[derive(Debug, Serialize, Deserialize)]
struct Format {
    format: String,
    version: u32,
}

/// An entry as stored: the metadata plus the format version it was written at.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    version: u32,
    #[serde(flatten)]
    entry: Entry,
}

/// A snapshot store in a folder, on sled. It holds the folder's lock while it lives: drop it
/// as soon as the work is done.
pub struct SledStore {
    dir: PathBuf,
    limits: crate::Limits,
    db: sled::Db,
    pub(super) snapshots: Tree,
    entries: Tree,
    tags: Tree,
    counters: Tree,
    pub(super) held: Tree,
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// What the folder holds before sled opens it.
enum Found {
    /// A sled database (or what looks like one).
    Database,
    /// Nothing yet: a store may be created here.
    Nothing,
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

    /// Opens the store at `dir` as `options` say.
    pub fn open_with(dir: &Path, options: &OpenOptions) -> Result<Self, StoreError> {
        let found = examine(dir, options.create)?;
        let db = open_db(dir, options.busy_timeout)?;
        let failed = |error| sled_error(dir, error);
        let names = db.tree_names();
        let ours = [META, SNAPSHOTS, ENTRIES, TAGS, COUNTERS, HELD];
        let foreign = names.iter().any(|name| {
            let name: &[u8] = name.as_ref();
            name != SLED_DEFAULT_TREE && !ours.iter().any(|ours| name == ours.as_bytes())
        }) || !db.is_empty();
        if names
            .iter()
            .any(|name| AsRef::<[u8]>::as_ref(name) == META.as_bytes())
        {
            let meta = db.open_tree(META).map_err(failed)?;
            check_format(dir, meta.get(FORMAT_KEY).map_err(failed)?.as_deref())?;
        } else if foreign {
            return Err(StoreError::NotAStore {
                dir: dir.to_owned(),
                detail: "it is a sled database that holds other data".to_owned(),
            });
        } else {
            // A new store (or one whose creation was cut short before it held anything).
            if matches!(found, Found::Database) && !options.create {
                return Err(StoreError::NoStore {
                    dir: dir.to_owned(),
                });
            }
            let meta = db.open_tree(META).map_err(failed)?;
            let record = serde_json::to_vec(&Format {
                format: FORMAT_NAME.to_owned(),
                version: STORE_FORMAT_VERSION,
            })
            .map_err(|error| damaged(dir, error.to_string()))?;
            meta.insert(FORMAT_KEY, record).map_err(failed)?;
            db.flush().map_err(failed)?;
        }
        Ok(SledStore {
            dir: dir.to_owned(),
            limits: options.limits,
            snapshots: db.open_tree(SNAPSHOTS).map_err(failed)?,
            entries: db.open_tree(ENTRIES).map_err(failed)?,
            tags: db.open_tree(TAGS).map_err(failed)?,
            counters: db.open_tree(COUNTERS).map_err(failed)?,
            held: db.open_tree(HELD).map_err(failed)?,
            db,
        })
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `bytes` as the next snapshot of `app_name` ([`SnapshotStore::put`]).
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

    pub(super) fn failed(&self, error: sled::Error) -> StoreError {
        sled_error(&self.dir, error)
    }

    pub(super) fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush()
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

    fn numbers_hint(&self, app: &str) -> Result<String, StoreError> {
        let numbers: Vec<u64> = self
            .log(app)?
            .into_iter()
            .map(|entry| entry.number)
            .collect();
        Ok(format!("{app} has {}", ranges(&numbers)))
    }

    fn tags_hint(&self, app: &str) -> Result<String, StoreError> {
        let tags: Vec<String> = self.log(app)?.into_iter().filter_map(|e| e.tag).collect();
        Ok(if tags.is_empty() {
            format!("{app} has no tags")
        } else {
            format!("{app}'s tags: {}", tags.join(", "))
        })
    }

    fn transaction_error(&self, error: TransactionError<StoreError>) -> StoreError {
        match error {
            TransactionError::Abort(error) => error,
            TransactionError::Storage(error) => self.failed(error),
        }
    }
}

impl SledStore {
    /// Stores `bytes` as the next snapshot of `app`, made from its snapshot `parent`, by a
    /// writer whose newest known snapshot of `app` is `since`. When a newer snapshot than
    /// `since` exists, `on_newer` decides: an edit refuses ([`StoreError::Changed`]), a
    /// daemon's save is stored marked [`diverged_from`](Entry::diverged_from) the newest. All of
    /// it happens in one transaction, so a concurrent save cannot slip between the check and the
    /// write.
    pub fn put_child(
        &self,
        app: &str,
        bytes: &[u8],
        tag: Option<&str>,
        parent: Option<u64>,
        since: Option<u64>,
        on_newer: OnNewer,
    ) -> Result<Entry, StoreError> {
        self.put_entry(app, bytes, tag, parent, since, on_newer)
    }

    fn put_entry(
        &self,
        app: &str,
        bytes: &[u8],
        tag: Option<&str>,
        parent: Option<u64>,
        since: Option<u64>,
        on_newer: OnNewer,
    ) -> Result<Entry, StoreError> {
        check_app(app).map_err(|reason| StoreError::InvalidApp { reason })?;
        if let Some(tag) = tag {
            check_tag(tag).map_err(|reason| StoreError::InvalidTag { reason })?;
        }
        let mut template = describe(app, bytes, &self.limits)?;
        template.saved = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        template.tag = tag.map(str::to_owned);
        let dir = &self.dir;
        let entry = (&self.snapshots, &self.entries, &self.tags, &self.counters)
            .transaction(|(snapshots, entries, tags, counters)| {
                let last = match counters.get(app.as_bytes())? {
                    Some(value) => decode_number(&value).ok_or_else(|| {
                        abort(damaged(
                            dir,
                            format!("the counter of '{app}' is not a number"),
                        ))
                    })?,
                    None => 0,
                };
                let number = last.checked_add(1).ok_or_else(|| {
                    abort(damaged(dir, format!("the counter of '{app}' is exhausted")))
                })?;
                if let Some(tag) = tag
                    && let Some(holder) = tags.get(tag_key(app, tag))?
                {
                    return Err(abort(StoreError::TagTaken {
                        app: app.to_owned(),
                        tag: tag.to_owned(),
                        number: decode_number(&holder).unwrap_or(0),
                    }));
                }
                let mut entry = template.clone();
                entry.number = number;
                entry.parent = parent;
                if let Some(since) = since
                    && last > since
                {
                    match on_newer {
                        OnNewer::Refuse => {
                            return Err(abort(StoreError::Changed {
                                app: app.to_owned(),
                                read: since,
                                latest: last,
                            }));
                        }
                        OnNewer::MarkDiverged => entry.diverged_from = Some(last),
                    }
                }
                let key = snapshot_key(app, number);
                counters.insert(app.as_bytes(), &number.to_be_bytes())?;
                snapshots.insert(key.as_slice(), bytes)?;
                write_record(dir, entries, &key, &entry)?;
                if let Some(tag) = tag {
                    tags.insert(tag_key(app, tag), &number.to_be_bytes())?;
                }
                Ok(entry)
            })
            .map_err(|error| self.transaction_error(error))?;
        self.flush()?;
        Ok(entry)
    }
}

/// What [`SledStore::put_child`] does when a snapshot newer than the parent exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNewer {
    /// Refuse with [`StoreError::Changed`] (an edit, which must not revert another).
    Refuse,
    /// Store it anyway, marked diverged (a daemon's save, which must not be lost).
    MarkDiverged,
}

impl SnapshotStore for SledStore {
    fn put(&self, app: &str, bytes: &[u8], tag: Option<&str>) -> Result<Entry, StoreError> {
        self.put_entry(app, bytes, tag, None, None, OnNewer::MarkDiverged)
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
        let bytes = self
            .snapshots
            .get(snapshot_key(&entry.app, entry.number))
            .map_err(|error| self.failed(error))?
            .ok_or_else(|| {
                damaged(
                    &self.dir,
                    format!("the bytes of {} are missing", entry.address()),
                )
            })?;
        if bytes.len() as u64 != entry.size || crate::header::checksum(&[&bytes]) != entry.sha256 {
            return Err(damaged(
                &self.dir,
                format!(
                    "the bytes of {} do not match their recorded SHA-256",
                    entry.address()
                ),
            ));
        }
        Ok((entry, bytes.to_vec()))
    }

    fn list(&self) -> Result<Vec<AppSummary>, StoreError> {
        let mut summaries: Vec<AppSummary> = Vec::new();
        for item in self.entries.iter() {
            let (key, value) = item.map_err(|error| self.failed(error))?;
            let entry = self.read_entry(&key, &value)?;
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
        let target = self.resolve(address)?;
        let app = target.app.as_str();
        let dir = &self.dir;
        let tagged = (&self.entries, &self.tags)
            .transaction(|(entries, tags)| {
                let key = snapshot_key(app, target.number);
                let mut entry = read_record(dir, entries, &key)?;
                let mut moved_from = None;
                if let Some(holder) = tags.get(tag_key(app, tag))? {
                    let holder = decode_number(&holder).ok_or_else(|| {
                        abort(damaged(dir, format!("tag '{app}@{tag}' is not a number")))
                    })?;
                    if holder == entry.number {
                        return Ok(Tagged {
                            entry,
                            moved_from: None,
                            replaced: None,
                        });
                    }
                    if conflict == TagConflict::Refuse {
                        return Err(abort(StoreError::TagTaken {
                            app: app.to_owned(),
                            tag: tag.to_owned(),
                            number: holder,
                        }));
                    }
                    let holder_key = snapshot_key(app, holder);
                    let mut previous = read_record(dir, entries, &holder_key)?;
                    previous.tag = None;
                    write_record(dir, entries, &holder_key, &previous)?;
                    moved_from = Some(holder);
                }
                let replaced = entry.tag.take();
                if let Some(old) = &replaced {
                    tags.remove(tag_key(app, old))?;
                }
                entry.tag = Some(tag.to_owned());
                write_record(dir, entries, &key, &entry)?;
                tags.insert(tag_key(app, tag), &entry.number.to_be_bytes())?;
                Ok(Tagged {
                    entry,
                    moved_from,
                    replaced,
                })
            })
            .map_err(|error| self.transaction_error(error))?;
        self.flush()?;
        Ok(tagged)
    }

    fn untag(&self, address: &StoreAddress) -> Result<(Entry, String), StoreError> {
        let target = self.resolve(address)?;
        let Some(tag) = target.tag.clone() else {
            return Err(StoreError::NotTagged {
                address: target.address(),
            });
        };
        let app = target.app.as_str();
        let dir = &self.dir;
        let entry = (&self.entries, &self.tags)
            .transaction(|(entries, tags)| {
                let key = snapshot_key(app, target.number);
                let mut entry = read_record(dir, entries, &key)?;
                entry.tag = None;
                write_record(dir, entries, &key, &entry)?;
                tags.remove(tag_key(app, &tag))?;
                Ok(entry)
            })
            .map_err(|error| self.transaction_error(error))?;
        self.flush()?;
        Ok((entry, tag))
    }

    fn gc(&self, app: &str, keep: usize) -> Result<Vec<Entry>, StoreError> {
        if keep == 0 {
            return Err(StoreError::KeepNothing);
        }
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
        if doomed.is_empty() {
            return Ok(doomed);
        }
        (&self.snapshots, &self.entries)
            .transaction(|(snapshots, entries)| {
                for entry in &doomed {
                    let key = snapshot_key(app, entry.number);
                    snapshots.remove(key.as_slice())?;
                    entries.remove(key.as_slice())?;
                }
                Ok(())
            })
            .map_err(|error: TransactionError<StoreError>| self.transaction_error(error))?;
        self.flush()?;
        Ok(doomed)
    }
}

/// Checks what is at `dir` before sled opens it (sled would create its files anywhere).
fn examine(dir: &Path, create: bool) -> Result<Found, StoreError> {
    let io_error = |cause: io::Error| StoreError::Io {
        dir: dir.to_owned(),
        cause,
    };
    match std::fs::metadata(dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            if !create {
                return Err(StoreError::NoStore {
                    dir: dir.to_owned(),
                });
            }
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_error)?;
            Ok(Found::Nothing)
        }
        Err(error) => Err(io_error(error)),
        Ok(metadata) if !metadata.is_dir() => Err(StoreError::NotAStore {
            dir: dir.to_owned(),
            detail: "it is not a folder".to_owned(),
        }),
        Ok(_) => {
            if dir.join("db").is_file() && dir.join("conf").is_file() {
                return Ok(Found::Database);
            }
            let empty = std::fs::read_dir(dir).map_err(io_error)?.next().is_none();
            match (empty, create) {
                (true, true) => Ok(Found::Nothing),
                (true, false) => Err(StoreError::NoStore {
                    dir: dir.to_owned(),
                }),
                (false, _) => Err(StoreError::NotAStore {
                    dir: dir.to_owned(),
                    detail: "the folder holds other files and no store database".to_owned(),
                }),
            }
        }
    }
}

/// Opens sled at `dir`, retrying with a bounded backoff while another process holds its lock.
fn open_db(dir: &Path, busy_timeout: Duration) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + busy_timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        // No background flusher: every write flushes before it reports success, and a store
        // without threads of its own releases its lock as soon as it is dropped.
        match sled::Config::new().path(dir).flush_every_ms(None).open() {
            Ok(db) => return Ok(db),
            Err(error) if is_lock_error(&error) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(StoreError::Busy {
                        dir: dir.to_owned(),
                    });
                }
                std::thread::sleep(pause.min(deadline - now));
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(error) => return Err(sled_error(dir, error)),
        }
    }
}

/// sled 0.34.7 reports a lock held elsewhere as an `Io` error of kind `Other` with this text.
fn is_lock_error(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

fn check_format(dir: &Path, value: Option<&[u8]>) -> Result<(), StoreError> {
    let Some(value) = value else {
        return Err(StoreError::NotAStore {
            dir: dir.to_owned(),
            detail: "its format record is missing".to_owned(),
        });
    };
    let format: Format = serde_json::from_slice(value)
        .map_err(|error| damaged(dir, format!("its format record does not parse: {error}")))?;
    if format.format != FORMAT_NAME {
        return Err(StoreError::NotAStore {
            dir: dir.to_owned(),
            detail: format!("its format is '{}'", format.format),
        });
    }
    if format.version > STORE_FORMAT_VERSION {
        return Err(StoreError::NewerStore {
            dir: dir.to_owned(),
            found: format.version,
            supported: STORE_FORMAT_VERSION,
        });
    }
    Ok(())
}

fn sled_error(dir: &Path, error: sled::Error) -> StoreError {
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

fn damaged(dir: &Path, detail: String) -> StoreError {
    StoreError::Damaged {
        dir: dir.to_owned(),
        detail,
    }
}

fn abort(error: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(error)
}

/// The entry for `bytes` stored under `app`, without its number, time and tag: what their
/// header says, or only that they are encrypted.
fn describe(app: &str, bytes: &[u8], limits: &crate::Limits) -> Result<Entry, StoreError> {
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

fn decode_record(dir: &Path, key: &[u8], value: &[u8]) -> Result<Entry, StoreError> {
    let record: Record = serde_json::from_slice(value).map_err(|error| {
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

fn read_record(
    dir: &Path,
    entries: &TransactionalTree,
    key: &[u8],
) -> Result<Entry, ConflictableTransactionError<StoreError>> {
    let value = entries.get(key)?.ok_or_else(|| {
        abort(damaged(
            dir,
            "a snapshot's record vanished during an update".to_owned(),
        ))
    })?;
    decode_record(dir, key, &value).map_err(abort)
}

fn write_record(
    dir: &Path,
    entries: &TransactionalTree,
    key: &[u8],
    entry: &Entry,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let record = serde_json::to_vec(&Record {
        version: STORE_FORMAT_VERSION,
        entry: entry.clone(),
    })
    .map_err(|error| abort(damaged(dir, format!("cannot encode a record: {error}"))))?;
    entries.insert(key, record)?;
    Ok(())
}

fn app_prefix(app: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(app.len() + 9);
    key.extend_from_slice(app.as_bytes());
    key.push(0);
    key
}

fn snapshot_key(app: &str, number: u64) -> Vec<u8> {
    let mut key = app_prefix(app);
    key.extend_from_slice(&number.to_be_bytes());
    key
}

fn tag_key(app: &str, tag: &str) -> Vec<u8> {
    let mut key = app_prefix(app);
    key.extend_from_slice(tag.as_bytes());
    key
}

fn decode_number(value: &[u8]) -> Option<u64> {
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
