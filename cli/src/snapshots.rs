//! Loading and saving snapshots in the tools, with the [`Access`] a command line gives:
//! encrypted ones get their passphrase from the [`PassphraseSource`] only when the file turns
//! out to be encrypted, and every load and save keeps the same [`Limits`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rtwisted_core::{Application, Style};
use rtwisted_persist::lineage::Parent;
use rtwisted_persist::store::{DEFAULT_BUSY_TIMEOUT, Entry, OpenOptions, Store, StoreAddress};
use rtwisted_persist::view::Detail;
use rtwisted_persist::{Header, Key, Limits, LoadOptions, RawSnapshot, SaveOptions, Snapshot};

use crate::error::CliError;
use crate::passphrase::PassphraseSource;
use crate::progress::track;
use crate::store_backend::{self, AnyStore};

/// How a snapshot goes into a store: its tag, the snapshot it was made from, and what to do
/// when a newer one exists (the store's own [`SaveRequest`](rtwisted_persist::store::SaveRequest)).
pub use rtwisted_persist::store::SaveRequest as StorePut;

/// What a command line says about reading and writing snapshots.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Where passphrases come from.
    pub passphrase: PassphraseSource,
    /// The limits of every load and save.
    pub limits: Limits,
    /// How long a store write waits for another writer (`--wait SECONDS`; default
    /// [`DEFAULT_BUSY_TIMEOUT`]).
    pub wait: Option<Duration>,
}

impl Access {
    pub(crate) fn load_options(&self, key: Option<&Key>, detail: Detail) -> LoadOptions {
        LoadOptions {
            passphrase: key.map(|key| key.passphrase.clone()),
            limits: self.limits,
            detail,
        }
    }

    /// How to save, with `key` and `parent`.
    pub fn save_options(&self, key: Option<&Key>, parent: Option<Parent>) -> SaveOptions {
        SaveOptions {
            key: key.cloned(),
            limits: self.limits,
            parent,
        }
    }

    /// How to open a store (created if `create`).
    pub fn store_options(&self, create: bool) -> OpenOptions {
        OpenOptions {
            create,
            limits: self.limits,
            busy_timeout: self.wait.unwrap_or(DEFAULT_BUSY_TIMEOUT),
        }
    }

    /// The store at `dir` (a folder or an etcd address), opened for writing with these limits
    /// (a folder is created if `create`).
    pub fn open_store(&self, dir: &Path, create: bool) -> Result<AnyStore, CliError> {
        store_backend::open_writer(dir, &self.store_options(create))
    }

    /// The store at `dir`, opened for reading (a folder needs no lock, no write access).
    pub fn open_reader(&self, dir: &Path) -> Result<AnyStore, CliError> {
        store_backend::open_reader(dir, &self.store_options(false))
    }

    /// Bounds a command on a store location by a deadline (nothing for a file).
    pub fn arm_deadline(&self, location: &Location) {
        if let Location::Store { address, .. } = location {
            crate::deadline::arm(
                "rtap",
                format!("the edit of {address}"),
                self.wait.unwrap_or(DEFAULT_BUSY_TIMEOUT),
            );
        }
    }

    /// The key for bytes that may be encrypted: asked for only when they are.
    pub fn key_for(&self, bytes: &[u8]) -> Result<Option<Key>, CliError> {
        if rtwisted_persist::crypto::looks_encrypted(bytes) {
            Ok(Some(self.passphrase.key(false)?))
        } else {
            Ok(None)
        }
    }
}

/// Loads a snapshot typed; returns the key to write it back with when it was encrypted.
pub fn open(path: &Path, access: &Access) -> Result<(Snapshot, Option<Key>), CliError> {
    let key = key_if_encrypted(path, access)?;
    let options = access.load_options(key.as_ref(), Detail::Summaries);
    let snapshot = track(&loading(path), || rtwisted_persist::load_as(path, &options))
        .map_err(|error| not_a_tac(path, error))?;
    Ok((snapshot, key))
}

/// Loads a snapshot as generic data (types need not be linked), large fields summarized
/// unless `detail` asks for everything.
pub fn open_raw(path: &Path, access: &Access, detail: Detail) -> Result<RawSnapshot, CliError> {
    let key = key_if_encrypted(path, access)?;
    let options = access.load_options(key.as_ref(), detail);
    track(&loading(path), || {
        rtwisted_persist::load_raw_as(path, &options)
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

/// Saves over `path` under its folder's edit lock, with a spinner if it takes a while.
pub fn save(
    app: &Application,
    path: &Path,
    style: Style,
    options: &SaveOptions,
) -> Result<Header, CliError> {
    let label = format!("saving {}", path.display());
    Ok(track(&label, || {
        rtwisted_persist::save_as(app, path, style, options)
    })?)
}

/// [`save`] for a caller that holds the folder's edit lock already.
pub fn save_locked(
    app: &Application,
    path: &Path,
    style: Style,
    options: &SaveOptions,
) -> Result<Header, CliError> {
    let label = format!("saving {}", path.display());
    Ok(track(&label, || {
        rtwisted_persist::save_locked(app, path, style, options)
    })?)
}

fn loading(path: &Path) -> String {
    format!("loading {}", path.display())
}

fn key_if_encrypted(path: &Path, access: &Access) -> Result<Option<Key>, CliError> {
    if rtwisted_persist::is_encrypted(path) {
        Ok(Some(access.passphrase.key(false)?))
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

    fn invalid(&self, cause: rtwisted_persist::FormatError) -> CliError {
        CliError::failed(format!("cannot load snapshot '{self}': {cause}"))
    }
}

/// A snapshot read from a store: its entry, and the snapshot.
pub fn decode_stored(
    location: &Location,
    bytes: &[u8],
    access: &Access,
) -> Result<(Snapshot, Option<Key>), CliError> {
    let key = access.key_for(bytes)?;
    let options = access.load_options(key.as_ref(), Detail::Summaries);
    let snapshot =
        rtwisted_persist::decode_as(bytes, &options).map_err(|error| location.invalid(error))?;
    Ok((snapshot, key))
}

/// [`open`] at any location; for a store, also the entry it picked.
pub fn open_at(
    location: &Location,
    access: &Access,
) -> Result<(Snapshot, Option<Key>, Option<Entry>), CliError> {
    match location {
        Location::File(path) => {
            let (snapshot, key) = open(path, access)?;
            Ok((snapshot, key, None))
        }
        Location::Store { dir, address } => {
            let (entry, bytes) = access.open_reader(dir)?.get(address)?;
            let (snapshot, key) = decode_stored(location, &bytes, access)?;
            Ok((snapshot, key, Some(entry)))
        }
    }
}

/// [`open_raw`] at any location.
pub fn open_raw_at(
    location: &Location,
    access: &Access,
    detail: Detail,
) -> Result<RawSnapshot, CliError> {
    match location {
        Location::File(path) => open_raw(path, access, detail),
        Location::Store { dir, address } => {
            let (_, bytes) = access.open_reader(dir)?.get(address)?;
            let key = access.key_for(&bytes)?;
            let options = access.load_options(key.as_ref(), detail);
            rtwisted_persist::decode_raw_as(&bytes, &options)
                .map_err(|error| location.invalid(error))
        }
    }
}

/// Encodes `app` and stores it as the next snapshot of its application in `store`.
pub fn put_into_store(
    store: &dyn Store,
    app: &Application,
    style: Style,
    options: &SaveOptions,
    put: StorePut<'_>,
) -> Result<(Header, Entry), CliError> {
    let (bytes, header) = rtwisted_persist::encode_as(app, style, options)
        .map_err(|cause| CliError::failed(format!("cannot encode '{}': {cause}", app.name())))?;
    let entry = store.save(app.name(), &bytes, &put)?;
    Ok((header, entry))
}

/// Opens (or creates) the store at `dir` and stores `app` in it; returns the header and where
/// it went (`echo@4 in the store 'db'`).
pub fn save_to_store(
    dir: &Path,
    app: &Application,
    style: Style,
    options: &SaveOptions,
    access: &Access,
    put: StorePut<'_>,
) -> Result<(Header, Entry, String), CliError> {
    let store = access.open_store(dir, true)?;
    let (header, entry) = put_into_store(&*store, app, style, options, put)?;
    let written = format!("{} in the store '{}'", entry.address(), dir.display());
    Ok((header, entry, written))
}
