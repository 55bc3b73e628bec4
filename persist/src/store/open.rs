//! Opening a store for writing: the folder's lock, creation, migration of a format 1 store, and
//! an index that agrees with the journal (recreated from it when it is behind, missing or
//! damaged: the index is never trusted with anything the journal does not also hold).

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use super::index::Index;
use super::journal::{self, Record};
use super::layout::{self, Found};
use super::sled_store::{
    COUNTERS, ENTRIES, FORMAT_KEY, HELD, JOURNAL_KEY, META, OpenOptions, STORE_FORMAT_VERSION,
    SledStore, TAGS, damaged, decode_number, sled_error, snapshot_key, tag_key, write_format,
};
use super::writer_lock::{WriterLock, retry_while_busy};
use super::{StoreError, space};

/// The room creating a store needs (its journal and a fresh index).
const CREATE_NEEDS: u64 = 64 * 1024;

impl SledStore {
    /// Opens the store at `dir` for writing as `options` say: waits for the writers' lock,
    /// creates the store if asked, migrates a format 1 store, and brings the index up to date
    /// with the journal.
    pub fn open_with(dir: &Path, options: &OpenOptions) -> Result<Self, StoreError> {
        let io_error = |cause| StoreError::Io {
            dir: dir.to_owned(),
            cause,
        };
        if !layout::folder_exists(dir)? {
            if !options.create {
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
        }
        let lock = WriterLock::acquire(dir, options.busy_timeout)?;
        let journal_path = layout::journal(dir);
        match layout::examine(dir)? {
            Found::Nothing if !options.create => {
                return Err(StoreError::NoStore {
                    dir: dir.to_owned(),
                });
            }
            Found::Nothing => {
                space::ensure(dir, CREATE_NEEDS)?;
                crate::write_atomic(&journal_path, &journal::format_line(STORE_FORMAT_VERSION))
                    .map_err(io_error)?;
            }
            Found::AllInSled => super::migrate::migrate(dir, options)?,
            Found::Files => {}
        }
        if !journal_path.is_file() {
            return Err(damaged(
                dir,
                "its journal is missing (run `rtap store rebuild`)".to_owned(),
            ));
        }
        if layout::has_sled(dir) {
            // A migration that was cut short after its journal was complete.
            super::migrate::remove_old_database(dir).map_err(io_error)?;
        }
        let length = std::fs::metadata(&journal_path).map_err(io_error)?.len();
        let index_dir = layout::index(dir);
        let db = match open_db(&index_dir, options.busy_timeout) {
            Ok(db) => db,
            Err(StoreError::Io { cause, .. }) => return Err(io_error(cause)),
            Err(StoreError::Busy { .. }) => {
                return Err(StoreError::Busy {
                    dir: dir.to_owned(),
                });
            }
            Err(_) => {
                // The index is damaged: it holds nothing the journal does not, so it is
                // recreated from the journal.
                std::fs::remove_dir_all(&index_dir).map_err(io_error)?;
                open_db(&index_dir, options.busy_timeout)?
            }
        };
        let failed = |error| sled_error(dir, error);
        let store = SledStore {
            dir: dir.to_owned(),
            limits: options.limits,
            _lock: lock,
            meta: db.open_tree(META).map_err(failed)?,
            entries: db.open_tree(ENTRIES).map_err(failed)?,
            tags: db.open_tree(TAGS).map_err(failed)?,
            counters: db.open_tree(COUNTERS).map_err(failed)?,
            held: db.open_tree(HELD).map_err(failed)?,
            db,
            journal_len: AtomicU64::new(length),
            stale: AtomicBool::new(false),
            writing: Mutex::new(()),
        };
        let indexed = store
            .meta
            .get(JOURNAL_KEY)
            .map_err(failed)?
            .and_then(|value| decode_number(&value));
        let format_ok = store.meta.get(FORMAT_KEY).map_err(failed)?.is_some();
        if indexed != Some(length) || !format_ok {
            let replay = journal::replay(&journal_path).map_err(io_error)?;
            if replay.version > STORE_FORMAT_VERSION {
                return Err(StoreError::NewerStore {
                    dir: dir.to_owned(),
                    found: replay.version,
                    supported: STORE_FORMAT_VERSION,
                });
            }
            store
                .journal_len
                .store(replay.committed, std::sync::atomic::Ordering::SeqCst);
            if indexed != Some(replay.committed) || !format_ok {
                let (index, _) = Index::from_records(replay.records);
                store.reindex(&index, replay.committed)?;
            }
        }
        Ok(store)
    }

    /// Makes the index hold exactly `index`, as of journal length `committed`.
    pub(super) fn reindex(&self, index: &Index, committed: u64) -> Result<(), StoreError> {
        let failed = |error| sled_error(&self.dir, error);
        space::ensure(&self.dir, CREATE_NEEDS)?;
        self.meta.remove(JOURNAL_KEY).map_err(failed)?;
        self.flush()?;
        for tree in [&self.entries, &self.tags, &self.counters] {
            tree.clear().map_err(failed)?;
        }
        for (app, state) in index.apps() {
            self.counters
                .insert(app.as_bytes(), &state.last.to_be_bytes())
                .map_err(failed)?;
            for (tag, number) in &state.tags {
                self.tags
                    .insert(tag_key(app, tag), &number.to_be_bytes())
                    .map_err(failed)?;
            }
            for entry in state.entries.values() {
                let key = snapshot_key(app, entry.number);
                self.entries
                    .insert(key, super::sled_store::encode_record(&self.dir, entry)?)
                    .map_err(failed)?;
            }
        }
        write_format(&self.dir, &self.meta)?;
        self.meta
            .insert(JOURNAL_KEY, &committed.to_be_bytes())
            .map_err(failed)?;
        self.flush()
    }

    /// Appends `records` to the journal: the moment a change is committed.
    pub(super) fn commit(&self, records: &[Record]) -> Result<u64, StoreError> {
        use std::sync::atomic::Ordering;
        let committed = self.journal_len.load(Ordering::SeqCst);
        let length =
            journal::append(&layout::journal(&self.dir), committed, records).map_err(|cause| {
                StoreError::Io {
                    dir: self.dir.clone(),
                    cause,
                }
            })?;
        self.journal_len.store(length, Ordering::SeqCst);
        Ok(length)
    }
}

/// Opens sled at `dir` (the index folder), retrying while another process holds its lock
/// (only an rtwisted from before the writers' lock would).
pub(super) fn open_db(dir: &Path, busy_timeout: Duration) -> Result<sled::Db, StoreError> {
    let pauses = (Duration::from_millis(10), Duration::from_millis(200));
    retry_while_busy(dir, busy_timeout, pauses, || {
        // No background flusher: every write flushes before it reports success, and a store
        // without threads of its own releases its lock as soon as it is dropped.
        match sled::Config::new().path(dir).flush_every_ms(None).open() {
            Ok(db) => Ok(Some(db)),
            Err(error) if is_lock_error(&error) => Ok(None),
            Err(error) => Err(sled_error(dir, error)),
        }
    })
}

/// sled 0.34.7 reports a lock held elsewhere as an `Io` error of kind `Other` with this text.
fn is_lock_error(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}
