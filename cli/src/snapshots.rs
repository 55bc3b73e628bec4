//! Loading snapshots in the tools: encrypted ones get their passphrase from the
//! [`PassphraseSource`] only when the file turns out to be encrypted.

use std::fmt;
use std::path::{Path, PathBuf};

use rtwisted_core::{Application, Style};
use rtwisted_persist::store::StoreAddress;
use rtwisted_persist::{Header, Key, RawSnapshot, Snapshot};

use crate::error::CliError;
use crate::passphrase::PassphraseSource;
use crate::progress::track;

/// Loads a snapshot typed; returns the key to write it back with when it was encrypted.
pub fn open(path: &Path, source: &PassphraseSource) -> Result<(Snapshot, Option<Key>), CliError> {
    let key = key_if_encrypted(path, source)?;
    let snapshot = track(&loading(path), || {
        rtwisted_persist::load_with(path, key.as_ref().map(|key| &key.passphrase))
    })
    .map_err(|error| not_a_tac(path, error))?;
    Ok((snapshot, key))
}

/// Loads a snapshot as generic data (types need not be linked).
pub fn open_raw(path: &Path, source: &PassphraseSource) -> Result<RawSnapshot, CliError> {
    let key = key_if_encrypted(path, source)?;
    track(&loading(path), || {
        rtwisted_persist::load_raw_with(path, key.as_ref().map(|key| &key.passphrase))
    })
    .map_err(|error| not_a_tac(path, error))
}

/// A load error, with the way out when the file is a TAC program given where a snapshot goes.
fn not_a_tac(path: &Path, error: rtwisted_persist::SnapshotError) -> CliError {
    if crate::tac_source::is_tac(path) {
        CliError::failed(format!(
            "{error}; '{}' is a TAC file: run it with rtwistd -y, or freeze it with rtap save -y",
            path.display()
        ))
    } else {
        error.into()
    }
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

/// Where a snapshot is read from or written to: a file, or an address in a store.
#[derive(Debug, Clone)]
pub enum Location {
    /// A snapshot file.
    File(PathBuf),
    /// `APP`, `APP@N` or `APP@TAG` in the store at `dir`.
    Store {
        /// The store's folder.
        dir: PathBuf,
        /// The address.
        address: StoreAddress,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Store { dir, address } => {
                write!(f, "{address} in the store '{}'", dir.display())
            }
        }
    }
}

impl Location {
    /// The location `text` names: a file, or with a store folder a store address.
    pub fn new(text: &str, store: Option<&Path>) -> Result<Self, CliError> {
        match store {
            None => Ok(Location::File(PathBuf::from(text))),
            Some(dir) => Ok(Location::Store {
                dir: dir.to_owned(),
                address: text.parse()?,
            }),
        }
    }

    fn store_bytes(dir: &Path, address: &StoreAddress) -> Result<Vec<u8>, CliError> {
        let (_, bytes) = rtwisted_persist::store::load_from(dir, address)
            .map_err(|error| CliError::failed(error.to_string()))?;
        Ok(bytes)
    }

    fn invalid(&self, error: rtwisted_persist::FormatError) -> CliError {
        CliError::failed(format!("cannot load snapshot '{self}': {error}"))
    }
}

/// [`open`] at any location.
pub fn open_at(
    location: &Location,
    source: &PassphraseSource,
) -> Result<(Snapshot, Option<Key>), CliError> {
    match location {
        Location::File(path) => open(path, source),
        Location::Store { dir, address } => {
            let bytes = Location::store_bytes(dir, address)?;
            let key = if rtwisted_persist::crypto::looks_encrypted(&bytes) {
                Some(source.key(false)?)
            } else {
                None
            };
            let snapshot =
                rtwisted_persist::decode_with(&bytes, key.as_ref().map(|k| &k.passphrase))
                    .map_err(|error| location.invalid(error))?;
            Ok((snapshot, key))
        }
    }
}

/// [`open_raw`] at any location.
pub fn open_raw_at(
    location: &Location,
    source: &PassphraseSource,
) -> Result<RawSnapshot, CliError> {
    match location {
        Location::File(path) => open_raw(path, source),
        Location::Store { dir, address } => {
            let bytes = Location::store_bytes(dir, address)?;
            let passphrase = if rtwisted_persist::crypto::looks_encrypted(&bytes) {
                Some(source.obtain(false)?)
            } else {
                None
            };
            rtwisted_persist::decode_raw_with(&bytes, passphrase.as_ref())
                .map_err(|error| location.invalid(error))
        }
    }
}

/// Saves at a location: over the file, or as the next snapshot of the application in the
/// store (optionally tagged). Returns the header and where it went (`echo@4` for a store).
pub fn save_at(
    location: &Location,
    app: &Application,
    style: Style,
    key: Option<&Key>,
    tag: Option<&str>,
) -> Result<(Header, String), CliError> {
    match location {
        Location::File(path) => Ok((save(app, path, style, key)?, path.display().to_string())),
        Location::Store { dir, .. } => save_to_store(dir, app, style, key, tag),
    }
}

/// Encodes `app` and stores it as the next snapshot of its application in the store at `dir`.
pub fn save_to_store(
    dir: &Path,
    app: &Application,
    style: Style,
    key: Option<&Key>,
    tag: Option<&str>,
) -> Result<(Header, String), CliError> {
    let (bytes, header) = rtwisted_persist::encode_with(app, style, key)
        .map_err(|error| CliError::failed(format!("cannot encode '{}': {error}", app.name())))?;
    let entry = rtwisted_persist::store::save_to(dir, app.name(), &bytes, tag)
        .map_err(|error| CliError::failed(error.to_string()))?;
    Ok((
        header,
        format!("{} in the store '{}'", entry.address(), dir.display()),
    ))
}
