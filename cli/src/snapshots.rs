//! Loading snapshots in the tools: encrypted ones get their passphrase from the
//! [`PassphraseSource`] only when the file turns out to be encrypted.

use std::path::Path;

use rtwisted_core::{Application, Style};
use rtwisted_persist::{Header, Key, RawSnapshot, Snapshot};

use crate::error::CliError;
use crate::passphrase::PassphraseSource;
use crate::progress::track;

/// Loads a snapshot typed; returns the key to write it back with when it was encrypted.
pub fn open(path: &Path, source: &PassphraseSource) -> Result<(Snapshot, Option<Key>), CliError> {
    let key = key_if_encrypted(path, source)?;
    let snapshot = track(&loading(path), || {
        rtwisted_persist::load_with(path, key.as_ref().map(|key| &key.passphrase))
    })?;
    Ok((snapshot, key))
}

/// Loads a snapshot as generic data (types need not be linked).
pub fn open_raw(path: &Path, source: &PassphraseSource) -> Result<RawSnapshot, CliError> {
    let key = key_if_encrypted(path, source)?;
    Ok(track(&loading(path), || {
        rtwisted_persist::load_raw_with(path, key.as_ref().map(|key| &key.passphrase))
    })?)
}

/// Saves like [`rtwisted_persist::save_with`], with a spinner if it takes a while.
pub fn save(
    app: &Application,
    path: &Path,
    style: Style,
    key: Option<&Key>,
) -> Result<Header, CliError> {
    let label = format!("saving {}", path.display());
    Ok(track(&label, || {
        rtwisted_persist::save_with(app, path, style, key)
    })?)
}

fn loading(path: &Path) -> String {
    format!("loading {}", path.display())
}

fn key_if_encrypted(path: &Path, source: &PassphraseSource) -> Result<Option<Key>, CliError> {
    if rtwisted_persist::is_encrypted(path) {
        Ok(Some(source.key(false)?))
    } else {
        Ok(None)
    }
}
