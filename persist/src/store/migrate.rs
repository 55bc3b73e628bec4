//! Migration of a format 1 store (everything, bytes included, in a sled database at the store
//! folder) to files, a journal and an index: every snapshot's bytes are written as its file,
//! the journal is written whole (atomically), and only then is the old database removed. A
//! migration cut short anywhere leaves either the old store whole or the new one complete.

use std::path::Path;

use super::journal::{self, Record};
use super::sled_store::{
    COUNTERS, ENTRIES, FORMAT_KEY, FORMAT_NAME_V1, META, OpenOptions, SNAPSHOTS_V1,
    STORE_FORMAT_VERSION, damaged, decode_number, decode_record, sled_error,
};
use super::{Entry, StoreError, files, layout, space};

/// The trees a format 1 store may hold.
const V1_TREES: [&str; 6] = [META, SNAPSHOTS_V1, ENTRIES, "tags", COUNTERS, "held"];
const SLED_DEFAULT_TREE: &[u8] = b"__sled__default";

/// Migrates the format 1 store at `dir` (the writers' lock is held).
pub(super) fn migrate(dir: &Path, options: &OpenOptions) -> Result<(), StoreError> {
    let db = super::open::open_db(dir, options.busy_timeout)?;
    let failed = |error| sled_error(dir, error);
    let names = db.tree_names();
    let has_meta = names.iter().any(|name| name.as_ref() == META.as_bytes());
    let foreign = names.iter().any(|name| {
        let name: &[u8] = name.as_ref();
        name != SLED_DEFAULT_TREE && !V1_TREES.iter().any(|ours| name == ours.as_bytes())
    }) || !db.is_empty();
    if !has_meta {
        if foreign {
            return Err(StoreError::NotAStore {
                dir: dir.to_owned(),
                detail: "it is a sled database that holds other data".to_owned(),
            });
        }
        if !options.create {
            return Err(StoreError::NoStore {
                dir: dir.to_owned(),
            });
        }
    } else {
        let meta = db.open_tree(META).map_err(failed)?;
        check_v1_format(dir, meta.get(FORMAT_KEY).map_err(failed)?.as_deref())?;
    }
    let entries = db.open_tree(ENTRIES).map_err(failed)?;
    let snapshots = db.open_tree(SNAPSHOTS_V1).map_err(failed)?;
    let counters = db.open_tree(COUNTERS).map_err(failed)?;
    let mut records = Vec::new();
    for item in counters.iter() {
        let (key, value) = item.map_err(failed)?;
        records.push(Record::Counter {
            app: String::from_utf8_lossy(&key).into_owned(),
            last: decode_number(&value).unwrap_or(0),
        });
    }
    let mut saves: Vec<Entry> = Vec::new();
    for item in entries.iter() {
        let (key, value) = item.map_err(failed)?;
        let entry = decode_record(dir, &key, &value)?;
        let bytes = snapshots
            .get(&key)
            .map_err(failed)?
            .ok_or_else(|| damaged(dir, format!("the bytes of {} are missing", entry.address())))?;
        space::ensure(dir, bytes.len() as u64)?;
        files::write(dir, &entry, &bytes).map_err(|cause| StoreError::Io {
            dir: dir.to_owned(),
            cause,
        })?;
        saves.push(entry);
    }
    records.extend(saves.into_iter().map(Record::Save));
    let bytes = journal::render(STORE_FORMAT_VERSION, &records);
    space::ensure(dir, bytes.len() as u64)?;
    crate::write_atomic(&layout::journal(dir), &bytes).map_err(|cause| StoreError::Io {
        dir: dir.to_owned(),
        cause,
    })?;
    drop((entries, snapshots, counters, db));
    remove_old_database(dir).map_err(|cause| StoreError::Io {
        dir: dir.to_owned(),
        cause,
    })
}

/// Removes the files of a format 1 store's sled database at `dir` (its journal is complete).
pub(super) fn remove_old_database(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "db" || name == "conf" || name.starts_with("snap.") {
            std::fs::remove_file(entry.path())?;
        } else if name == "blobs" {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
}

fn check_v1_format(dir: &Path, value: Option<&[u8]>) -> Result<(), StoreError> {
    #[derive(serde::Deserialize)]
    struct Format {
        format: String,
        version: u32,
    }
    let Some(value) = value else {
        return Err(StoreError::NotAStore {
            dir: dir.to_owned(),
            detail: "its format record is missing".to_owned(),
        });
    };
    let format: Format = serde_json::from_slice(value)
        .map_err(|error| damaged(dir, format!("its format record does not parse: {error}")))?;
    if format.format != FORMAT_NAME_V1 {
        return Err(StoreError::NotAStore {
            dir: dir.to_owned(),
            detail: format!("its format is '{}'", format.format),
        });
    }
    if format.version > 1 {
        return Err(StoreError::NewerStore {
            dir: dir.to_owned(),
            found: format.version,
            supported: STORE_FORMAT_VERSION,
        });
    }
    Ok(())
}
