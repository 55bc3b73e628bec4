//! Opening a snapshot for an edit and writing it back: loaded typed (so every type must be
//! linked), changed, validated as a whole, and saved atomically in the style it had.
//!
//! An edit is serialized with every other save and edit of the snapshot: it takes the lock
//! (the folder's edit lock for a file, the store itself for a store) before it reads, and keeps
//! it until it has written, so two edits of one file at once both land. A snapshot a running
//! `rtwistd` holds is refused unless the edit is forced. The new snapshot records the one it was
//! made from as its parent.

use rtwisted_core::{Application, PathSegment, ServicePath, Style};
use rtwisted_persist::lineage::Parent;
use rtwisted_persist::lock::{EditLock, check_not_held};
use rtwisted_persist::store::{Entry, OnNewer};
use rtwisted_persist::{Header, Key};
use serde_json::{Map, Value};

use crate::error::CliError;
use crate::snapshots::{self, Access, Location, StorePut};
use crate::store_backend::AnyStore;

/// What an open document holds while it is edited.
#[derive(Debug)]
enum Guard {
    /// Nothing (an interactive edit, between reading and writing).
    Released,
    /// The edit lock of the file's folder (none when the folder is missing), held until the
    /// document is dropped.
    File { _lock: Option<EditLock> },
    /// The store, open (a folder's sled lock keeps every other writer out; etcd's
    /// compare-and-swap on the newest snapshot refuses a save that would revert another).
    Store(AnyStore),
}

/// A snapshot opened for editing.
#[derive(Debug)]
pub struct Document {
    /// Where it came from and goes back to.
    pub location: Location,
    /// The style it is written back in.
    pub style: Style,
    /// The application.
    pub app: Application,
    /// The key it is written back with, when it was encrypted.
    pub key: Option<Key>,
    /// The header it was read with.
    pub header: Header,
    /// For a store: the entry read, and the newest snapshot of the application then.
    stored: Option<(Entry, u64)>,
    guard: Guard,
    access: Access,
    force: bool,
}

impl Document {
    /// Loads the snapshot at `location` for an edit, holding its lock until the document is
    /// written or dropped. A snapshot a running rtwistd holds is refused unless `force`.
    pub fn open(location: &Location, access: &Access, force: bool) -> Result<Self, CliError> {
        match location {
            Location::File(path) => {
                check_not_held(path, force)?;
                let lock = EditLock::acquire(path)?;
                let (snapshot, key) = snapshots::open(path, access)?;
                Ok(Document {
                    location: location.clone(),
                    style: snapshot.header.fields.style,
                    app: snapshot.app,
                    key,
                    header: snapshot.header,
                    stored: None,
                    guard: Guard::File { _lock: lock },
                    access: access.clone(),
                    force,
                })
            }
            Location::Store { dir, address } => {
                let store = access.open_store(dir, false)?;
                store.check_not_held(&address.app, force)?;
                let (entry, bytes) = store.get(address)?;
                let latest = store.resolve(&rtwisted_persist::store::StoreAddress::latest(
                    address.app.clone(),
                ))?;
                let (snapshot, key) = snapshots::decode_stored(location, &bytes, access)?;
                Ok(Document {
                    location: location.clone(),
                    style: snapshot.header.fields.style,
                    app: snapshot.app,
                    key,
                    header: snapshot.header,
                    stored: Some((entry, latest.number)),
                    guard: Guard::Store(store),
                    access: access.clone(),
                    force,
                })
            }
        }
    }

    /// [`Document::open`], then lets go of the lock: for an edit that waits for a person. Take
    /// it again with [`Document::relock`] before writing.
    pub fn open_released(
        location: &Location,
        access: &Access,
        force: bool,
    ) -> Result<Self, CliError> {
        let mut document = Self::open(location, access, force)?;
        document.guard = Guard::Released;
        Ok(document)
    }

    /// Takes the lock again after [`Document::open_released`], and refuses when the snapshot
    /// changed meanwhile (another save or edit landed): writing would revert it.
    pub fn relock(&mut self) -> Result<(), CliError> {
        match &self.location {
            Location::File(path) => {
                check_not_held(path, self.force)?;
                let lock = EditLock::acquire(path)?;
                let passphrase = self.key.as_ref().map(|key| &key.passphrase);
                let now = rtwisted_persist::peek::peek(path, passphrase)?;
                if now.checksum != self.header.checksum {
                    return Err(CliError::failed(format!(
                        "{} changed while it was being edited (another save or edit landed); nothing was written",
                        path.display()
                    )));
                }
                self.guard = Guard::File { _lock: lock };
            }
            Location::Store { dir, address } => {
                let store = self.access.open_store(dir, false)?;
                store.check_not_held(&address.app, self.force)?;
                let latest = store.resolve(&rtwisted_persist::store::StoreAddress::latest(
                    address.app.clone(),
                ))?;
                if let Some((_, read_latest)) = &self.stored
                    && latest.number != *read_latest
                {
                    return Err(rtwisted_persist::store::StoreError::Changed {
                        app: address.app.clone(),
                        read: *read_latest,
                        latest: latest.number,
                    }
                    .into());
                }
                self.guard = Guard::Store(store);
            }
        }
        Ok(())
    }

    /// Writes the application back, atomically, in its style (encrypted again if it was): over
    /// the file, or as a new snapshot in the store. Returns the header and where it went.
    pub fn write(&self) -> Result<(Header, String), CliError> {
        let number = self.stored.as_ref().map(|(entry, _)| entry.number);
        let parent = Parent::of(&self.header, number);
        let options = self.access.save_options(self.key.as_ref(), Some(parent));
        match (&self.location, &self.guard) {
            (Location::File(path), Guard::File { .. }) => {
                let header = snapshots::save_locked(&self.app, path, self.style, &options)?;
                Ok((header, path.display().to_string()))
            }
            (Location::Store { dir, .. }, Guard::Store(store)) => {
                let put = StorePut {
                    tag: None,
                    parent: number,
                    since: self.stored.as_ref().map(|(_, latest)| *latest),
                    on_newer: OnNewer::Refuse,
                };
                let (header, entry) =
                    snapshots::put_into_store(&**store, &self.app, self.style, &options, put)?;
                Ok((
                    header,
                    format!("{} in the store '{}'", entry.address(), dir.display()),
                ))
            }
            _ => Err(CliError::failed(
                "the edit lost its lock before writing; nothing was written",
            )),
        }
    }

    /// The application as generic data, to change fields by name.
    pub fn to_value(&self) -> Result<Value, CliError> {
        serde_json::to_value(&self.app).map_err(|error| CliError::failed(error.to_string()))
    }

    /// Replaces the application with `value`, which must be a valid application as a whole
    /// (types, fields, endpoint strings, unique names); otherwise nothing changes.
    pub fn replace_with(&mut self, value: Value) -> Result<(), CliError> {
        self.app = validate(value)?;
        Ok(())
    }
}

/// Types the generic data of an application, with an error that says the change is invalid.
pub fn validate(value: Value) -> Result<Application, CliError> {
    serde_json::from_value(value)
        .map_err(|error| CliError::failed(format!("the change is not valid: {error}")))
}

/// The generic data of the service at `path` in an application value.
pub fn node_mut<'a>(
    application: &'a mut Value,
    path: &ServicePath,
) -> Result<&'a mut Map<String, Value>, CliError> {
    let mut node = application
        .get_mut("services")
        .ok_or_else(|| CliError::failed("the snapshot has no service tree"))?;
    let mut walked = ServicePath::root();
    for segment in path.segments() {
        let here = walked.clone();
        walked = walked.join(segment.clone());
        let children = node
            .get_mut("children")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| CliError::failed(format!("service '{here}' has no children")))?;
        let index = match segment {
            PathSegment::Index(index) => Some(*index),
            PathSegment::Name(name) => children
                .iter()
                .position(|child| child.get("name").and_then(Value::as_str) == Some(name)),
        };
        node = index
            .and_then(|index| children.get_mut(index))
            .ok_or_else(|| CliError::failed(format!("no service at '{walked}'")))?;
    }
    node.as_object_mut()
        .ok_or_else(|| CliError::failed(format!("service '{path}' is not an object")))
}

/// Parses the path argument of `rtap SUBCOMMAND`; a malformed one is a usage error.
pub fn parse_path(subcommand: &str, text: &str) -> Result<ServicePath, CliError> {
    text.parse()
        .map_err(|error: rtwisted_core::path::PathError| {
            super::usage(subcommand, &error.to_string())
        })
}
