//! Which store a `--store` names, and opening it: a folder (the sled store), or, in a build
//! with the `etcd` feature, `etcd://HOST:PORT[,HOST:PORT...]/PREFIX` (the store on an etcd
//! cluster, `rtwisted_fleet::EtcdSnapshotStore`). Every command then uses the store through
//! the one [`Store`] trait, so both kinds take the same commands.

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use rtwisted_persist::store::{OpenOptions, ReadStore, SledStore, Store};

use crate::error::CliError;

/// How a store on etcd is written on the command line.
pub const ETCD_SCHEME: &str = "etcd://";

/// An open store of either kind.
pub struct AnyStore(Box<dyn Store>);

impl Deref for AnyStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnyStore({})", self.0.dir().display())
    }
}

/// True when `dir` names a store on etcd rather than a folder.
pub fn is_remote(dir: &Path) -> bool {
    dir.to_str()
        .is_some_and(|text| text.starts_with(ETCD_SCHEME))
}

/// `dir` made absolute when it is a folder (a daemon changes its working folder); an etcd
/// address as it is.
pub fn absolute(dir: &Path) -> Result<PathBuf, CliError> {
    if is_remote(dir) {
        return Ok(dir.to_owned());
    }
    std::path::absolute(dir).map_err(|error| {
        CliError::failed(format!(
            "cannot resolve the path '{}': {error}",
            dir.display()
        ))
    })
}

/// Opens the store `dir` names for writing (a folder is created if `options.create`).
pub fn open_writer(dir: &Path, options: &OpenOptions) -> Result<AnyStore, CliError> {
    if is_remote(dir) {
        return open_remote(dir, options);
    }
    Ok(AnyStore(Box::new(SledStore::open_with(dir, options)?)))
}

/// Opens the store `dir` names for reading (a folder needs no lock and no write access).
pub fn open_reader(dir: &Path, options: &OpenOptions) -> Result<AnyStore, CliError> {
    if is_remote(dir) {
        return open_remote(dir, options);
    }
    Ok(AnyStore(Box::new(ReadStore::open_with(dir, options)?)))
}

/// The leadership this process writes under, once it leads its application's singleton
/// (`rtwistd --singleton`): every save it makes into etcd from then on is fenced by it.
#[cfg(feature = "etcd")]
static FENCE: std::sync::OnceLock<rtwisted_fleet::Fence> = std::sync::OnceLock::new();

/// Makes every later save of this process into etcd carry `fence`.
#[cfg(feature = "etcd")]
pub fn write_under(fence: rtwisted_fleet::Fence) {
    let _ = FENCE.set(fence);
}

#[cfg(feature = "etcd")]
fn open_remote(dir: &Path, options: &OpenOptions) -> Result<AnyStore, CliError> {
    let text = dir.to_string_lossy();
    let store =
        rtwisted_fleet::EtcdSnapshotStore::open(&text, options.limits, options.busy_timeout)?
            .with_fence(FENCE.get().cloned());
    Ok(AnyStore(Box::new(store)))
}

#[cfg(not(feature = "etcd"))]
fn open_remote(dir: &Path, _: &OpenOptions) -> Result<AnyStore, CliError> {
    Err(CliError::failed(format!(
        "cannot use the store '{}': this build has no etcd support (build rtwisted-cli with the `etcd` feature, or give a store folder)",
        dir.display()
    )))
}
