//! Where things are in a store folder, and what a folder holds before a store opens it.
//!
//! ```text
//! DIR/journal                     the journal: every change to the index, one JSON line each
//! DIR/snapshots/ab/abcd….tap      the snapshot files, named by the SHA-256 of their bytes
//! DIR/index/                      the sled 0.34.7 index: entries, tags, counters, holds
//! ```
//!
//! A store written by rtwisted before the files existed (format version 1) is a sled database
//! at `DIR` itself holding the bytes too; it is migrated when first opened for writing.

use std::io;
use std::path::{Path, PathBuf};

use super::StoreError;

/// The journal's file name.
pub const JOURNAL: &str = "journal";
/// The index's folder name.
pub const INDEX: &str = "index";

/// The journal of the store at `dir`.
pub fn journal(dir: &Path) -> PathBuf {
    dir.join(JOURNAL)
}

/// The index folder of the store at `dir`.
pub fn index(dir: &Path) -> PathBuf {
    dir.join(INDEX)
}

/// What a store folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// A store of files and a journal (format version 2).
    Files,
    /// A store of format version 1: everything in a sled database at the folder itself.
    AllInSled,
    /// An empty folder: a store may be created here.
    Nothing,
}

/// True if `dir` holds a sled database's own files.
pub(super) fn has_sled(dir: &Path) -> bool {
    dir.join("db").is_file() && dir.join("conf").is_file()
}

/// Whether `dir` exists; a path that is there and is not a folder is not a store.
pub(super) fn folder_exists(dir: &Path) -> Result<bool, StoreError> {
    match std::fs::metadata(dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(cause) => Err(StoreError::Io {
            dir: dir.to_owned(),
            cause,
        }),
        Ok(metadata) if !metadata.is_dir() => Err(StoreError::NotAStore {
            dir: dir.to_owned(),
            detail: "it is not a folder".to_owned(),
        }),
        Ok(_) => Ok(true),
    }
}

/// What is at `dir` (which must exist and be a folder).
pub(super) fn examine(dir: &Path) -> Result<Found, StoreError> {
    let io_error = |cause: io::Error| StoreError::Io {
        dir: dir.to_owned(),
        cause,
    };
    if !folder_exists(dir)? {
        return Err(StoreError::NoStore {
            dir: dir.to_owned(),
        });
    }
    if journal(dir).is_file() {
        return Ok(Found::Files);
    }
    if dir.join(super::files::SNAPSHOTS_FOLDER).is_dir() || index(dir).is_dir() {
        // Files without a journal: a store whose journal was lost (`rtap store rebuild`).
        return Ok(Found::Files);
    }
    if has_sled(dir) {
        return Ok(Found::AllInSled);
    }
    let mut names = std::fs::read_dir(dir).map_err(io_error)?;
    match names.next() {
        None => Ok(Found::Nothing),
        Some(_) => Err(StoreError::NotAStore {
            dir: dir.to_owned(),
            detail: "the folder holds other files and no store".to_owned(),
        }),
    }
}
