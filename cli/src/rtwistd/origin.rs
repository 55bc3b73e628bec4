//! What a run starts from, and `--resume`.
//!
//! A run from `-f NAME.tap` may find newer state of the same application beside it: the
//! `NAME-checkpoint.tap` and `NAME-shutdown.tap` an earlier run saved in the run folder. The
//! newest of them that *descends from* `NAME.tap` as it is now (its lineage, recorded in every
//! header, reaches `NAME.tap`'s checksum) is the application's newest state. With `--resume`
//! the run starts from it; without, the run starts from `NAME.tap` and warns that newer state
//! exists. A file that does not descend from `NAME.tap` (saved before `NAME.tap` was edited,
//! say) is never chosen. In the store, the candidates are the snapshots of the application
//! saved after the one addressed, whose recorded parents lead back to it.

use std::path::{Path, PathBuf};

use rtwisted_core::{Application, Style};
use rtwisted_persist::lineage::Parent;
use rtwisted_persist::peek::{Identity, peek};
use rtwisted_persist::store::{Entry, StoreAddress};
use rtwisted_persist::{Header, Key};

use super::options::Source;
use crate::error::CliError;
use crate::plugins;
use crate::snapshots::{self, Access, Location};

/// What a run was loaded from: where its saves' lineage starts, and what it holds.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Built from a plugin or a TAC file: no snapshot.
    Program,
    /// A snapshot file.
    File {
        /// The file given with `-f` (or `-s`).
        base: PathBuf,
        /// Its checksum, which every save of the run keeps in its lineage.
        base_checksum: String,
        /// The file loaded: `base`, or with `--resume` a newer file descending from it.
        loaded: PathBuf,
        /// The loaded snapshot's header.
        header: Header,
    },
    /// A snapshot in the store.
    Store {
        /// The store.
        dir: PathBuf,
        /// The snapshot loaded.
        entry: Entry,
        /// Its header.
        header: Header,
    },
}

impl Origin {
    /// Where the run's tree came from, for `rtap status`.
    pub fn describe(&self) -> crate::control::status::SnapshotOrigin {
        let (source, header) = match self {
            Origin::Program => ("a plugin or a TAC file".to_owned(), None),
            Origin::File { loaded, header, .. } => (loaded.display().to_string(), Some(header)),
            Origin::Store { dir, entry, header } => (
                format!("{} in the store '{}'", entry.address(), dir.display()),
                Some(header),
            ),
        };
        crate::control::status::SnapshotOrigin {
            source,
            checksum: header.map(|header| header.checksum.clone()),
            parent: header
                .and_then(|header| header.fields.parent.as_ref())
                .map(|parent| parent.checksum.clone()),
            changes: 0,
        }
    }

    /// The parent every save of the run records.
    pub fn parent(&self) -> Option<Parent> {
        match self {
            Origin::Program => None,
            Origin::File {
                base_checksum,
                header,
                ..
            } => {
                let mut parent = Parent::of(header, None);
                parent.pin(base_checksum);
                Some(parent)
            }
            Origin::Store { entry, header, .. } => Some(Parent::of(header, Some(entry.number))),
        }
    }
}

/// A loaded application and where it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The application, every service stopped.
    pub app: Application,
    /// The key its saves are encrypted with.
    pub key: Option<Key>,
    /// What it was loaded from.
    pub origin: Origin,
}

/// Loads the application `source` names. `save_folder` is where the run's shutdown and
/// checkpoint snapshots go (for `--resume` and the newer-state warning).
pub fn load(
    source: &Source,
    store: Option<&Path>,
    access: &Access,
    resume: bool,
    save_folder: &Path,
) -> Result<Loaded, CliError> {
    match source {
        Source::Plugin { maker, options } => {
            tracing::info!("Building {} from the '{}' plugin", maker.name, maker.name);
            Ok(Loaded {
                app: plugins::application_from(maker, options, maker.name)?,
                key: None,
                origin: Origin::Program,
            })
        }
        Source::Tac { path } => {
            tracing::info!("Loading {}...", path.display());
            let app = crate::tac_source::evaluate(path)?;
            tracing::info!("Loaded.");
            Ok(Loaded {
                app,
                key: None,
                origin: Origin::Program,
            })
        }
        Source::File {
            path,
            source_style,
            defaulted,
        } => {
            if *defaulted && store.is_none() && std::fs::symlink_metadata(path).is_err() {
                return Err(CliError::failed(format!(
                    "no snapshot given, and the default, '{}', is not in this folder: give a snapshot with -f FILE, a TAC file with -y FILE, or a plugin (see rtap plugins)",
                    path.display()
                )));
            }
            let loaded = match store {
                None => load_file(path, access, resume, save_folder)?,
                Some(dir) => load_stored(dir, path, access, resume)?,
            };
            if *source_style && loaded.app.persistence().style != Style::Tas {
                return Err(CliError::failed(format!(
                    "'{}' is a binary (tap) snapshot; run it with -f, not -s",
                    path.display()
                )));
            }
            tracing::info!("Loaded.");
            Ok(loaded)
        }
    }
}

/// The candidates beside a base file: its application's checkpoint and shutdown files, in
/// either style, plain or encrypted (named from the current folder when they are in it, as a
/// user would name them).
fn candidates(folder: &Path, app: &str, base: &Path) -> Vec<PathBuf> {
    let here = std::env::current_dir().ok();
    let folder = match here
        .as_deref()
        .and_then(|here| folder.strip_prefix(here).ok())
    {
        Some(inside) => inside.to_owned(),
        None => folder.to_owned(),
    };
    let folder = folder.as_path();
    let mut found = Vec::new();
    for tag in ["checkpoint", "shutdown"] {
        for style in [Style::Tap, Style::Tas] {
            for encrypted in [false, true] {
                let path = folder.join(rtwisted_persist::file_name(
                    app,
                    Some(tag),
                    style,
                    encrypted,
                ));
                let same = std::fs::canonicalize(&path).ok() == std::fs::canonicalize(base).ok();
                if path.is_file() && !same {
                    found.push(path);
                }
            }
        }
    }
    found
}

/// The newest state descending from `base`: a candidate newer than it, if any.
fn newest_descendant(
    base: &Identity,
    folder: &Path,
    base_path: &Path,
    key: Option<&Key>,
) -> Option<(PathBuf, Identity)> {
    let mut newest: Option<(PathBuf, Identity)> = None;
    for path in candidates(folder, &base.fields.app, base_path) {
        let identity = match peek(&path, key.map(|key| &key.passphrase)) {
            Ok(identity) => identity,
            Err(error) => {
                tracing::warn!("{error}; it is not considered as newer state");
                continue;
            }
        };
        if identity.fields.app != base.fields.app || !identity.descends_from(&base.checksum) {
            continue;
        }
        let order = |id: &Identity| (id.fields.created.clone(), id.modified);
        let better = match &newest {
            None => order(&identity) > order(base),
            Some((_, best)) => order(&identity) > order(best),
        };
        if better {
            newest = Some((path, identity));
        }
    }
    newest
}

fn load_file(
    path: &Path,
    access: &Access,
    resume: bool,
    save_folder: &Path,
) -> Result<Loaded, CliError> {
    let key = if rtwisted_persist::is_encrypted(path) {
        Some(access.passphrase.key(false)?)
    } else {
        None
    };
    // A base whose header does not read is loaded as it is, for the load's own error.
    let base = peek(path, key.as_ref().map(|key| &key.passphrase)).ok();
    let newer = base
        .as_ref()
        .and_then(|base| newest_descendant(base, save_folder, path, key.as_ref()));
    let chosen = match (&newer, resume) {
        (Some((newer, identity)), true) => {
            tracing::info!(
                "Resuming from {} (saved {}), the newest state descending from {}",
                newer.display(),
                identity.fields.created,
                path.display()
            );
            newer.clone()
        }
        (Some((newer, identity)), false) => {
            tracing::warn!(
                "{} holds newer state of {} than {} (saved {}): this run starts from {}; run with --resume to continue from the newer state",
                newer.display(),
                identity.fields.app,
                path.display(),
                identity.fields.created,
                path.display()
            );
            path.to_owned()
        }
        (None, _) => path.to_owned(),
    };
    tracing::info!("Loading {}...", chosen.display());
    let (snapshot, loaded_key) = snapshots::open(&chosen, access)?;
    let key = loaded_key.or(key);
    let base_checksum = base.map_or_else(|| snapshot.header.checksum.clone(), |base| base.checksum);
    Ok(Loaded {
        app: snapshot.app,
        key,
        origin: Origin::File {
            base: path.to_owned(),
            base_checksum,
            loaded: chosen,
            header: snapshot.header,
        },
    })
}

/// True if `entry` descends from snapshot `base` through the parents the store records.
fn descends(entry: &Entry, base: u64, log: &[Entry]) -> bool {
    let mut at = Some(entry.number);
    // Parents are always older, so the walk ends; the bound guards against a damaged index.
    for _ in 0..=log.len() {
        match at {
            Some(number) if number == base => return true,
            Some(number) if number < base => return false,
            Some(number) => {
                at = log
                    .iter()
                    .find(|e| e.number == number)
                    .and_then(|e| e.parent);
            }
            None => return false,
        }
    }
    false
}

fn load_stored(dir: &Path, text: &Path, access: &Access, resume: bool) -> Result<Loaded, CliError> {
    let address: StoreAddress = text.to_string_lossy().parse()?;
    let store = access.open_reader(dir)?;
    let entry = store.resolve(&address)?;
    let log = store.log(&address.app)?;
    let newer = log
        .iter()
        .filter(|e| e.number > entry.number && descends(e, entry.number, &log))
        .max_by_key(|e| e.number)
        .cloned();
    drop(store);
    let chosen = match (&newer, resume) {
        (Some(newer), true) => {
            tracing::info!(
                "Resuming from {}, the newest state descending from {}",
                newer.address(),
                entry.address()
            );
            StoreAddress::number(address.app.clone(), newer.number)
        }
        (Some(newer), false) => {
            tracing::warn!(
                "{} holds newer state of {} than {}: this run starts from {}; run with --resume to continue from the newer state",
                newer.address(),
                address.app,
                entry.address(),
                entry.address()
            );
            StoreAddress::number(address.app.clone(), entry.number)
        }
        // As the user wrote it (the log says `Loading kv in the store ...`).
        (None, _) => address.clone(),
    };
    let location = Location::Store {
        dir: dir.to_owned(),
        address: chosen,
    };
    tracing::info!("Loading {location}...");
    let (snapshot, key, loaded) = snapshots::open_at(&location, access)?;
    let entry = loaded.ok_or_else(|| CliError::failed("the store returned no entry"))?;
    Ok(Loaded {
        app: snapshot.app,
        key,
        origin: Origin::Store {
            dir: dir.to_owned(),
            entry,
            header: snapshot.header,
        },
    })
}
