//! # The store on etcd behind the folder store's trait
//!
//! `rtap` and `rtwistd` use every store through [`rtwisted_persist::store::Store`];
//! [`EtcdSnapshotStore`] is the [`EtcdStore`](crate::EtcdStore) behind that trait, so
//! `--store etcd://HOST:PORT/PREFIX` works wherever `--store DIR` does: the same addresses,
//! numbers, tags, parents, gc rule and error messages. Where it differs from a folder:
//!
//! - its [`dir`](Store::dir) is the address as written (it names the store in messages);
//! - bytes are checked as the folder store checks them (a whole snapshot of the application,
//!   by its header; encrypted bytes as they are) before anything is sent, and what the header
//!   says is recorded beside them, so listings show producer, style and time without reading
//!   the bytes;
//! - holds are not recorded: many daemons run one application in a fleet, and an edit becomes
//!   a new snapshot that they take up when its tag moves, so [`Store::hold`] never refuses and
//!   [`Store::holder`] is always none;
//! - [`Store::verify`] reads every snapshot back (each read checks its SHA-256).
//!
//! ```no_run
//! use rtwisted_persist::store::Store;
//! let store = rtwisted_fleet::EtcdSnapshotStore::open(
//!     "etcd://127.0.0.1:2379/rtwisted",
//!     rtwisted_persist::Limits::default(),
//!     rtwisted_fleet::DEFAULT_DEADLINE,
//! )?;
//! for app in store.list()? {
//!     println!("{} has {} snapshots", app.app, app.count);
//! }
//! # Ok::<(), rtwisted_persist::store::StoreError>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use rtwisted_persist::Limits;
use rtwisted_persist::store::held::Hold;
use rtwisted_persist::store::{
    self as folder, OnNewer, SaveRequest, Store, StoreAddress, StoreError, TagConflict, Verified,
};

use crate::address::EtcdAddress;
use crate::blocking::BlockingEtcdStore;
use crate::election::Fence;
use crate::error::FleetError;
use crate::store::{About, AppSummary, Entry, Parent, Save, Tagged};

/// The snapshot store on etcd, as a [`Store`]. See the [module documentation](self).
pub struct EtcdSnapshotStore {
    store: BlockingEtcdStore,
    name: PathBuf,
    limits: Limits,
    fence: Option<Fence>,
}

impl EtcdSnapshotStore {
    /// Connects to the store `text` (`etcd://HOST:PORT[,HOST:PORT...]/PREFIX`) names; every
    /// operation is held to `deadline`, and saves to `limits`.
    pub fn open(text: &str, limits: Limits, deadline: Duration) -> Result<Self, StoreError> {
        let name = PathBuf::from(text);
        let address: EtcdAddress = text.parse().map_err(|error: crate::AddressError| {
            let reason = error.to_string();
            let quoted = format!("'{text}': ");
            StoreError::InvalidAddress {
                text: text.to_owned(),
                reason: reason.strip_prefix(&quoted).unwrap_or(&reason).to_owned(),
            }
        })?;
        let store = BlockingEtcdStore::connect(&address, deadline)
            .map_err(|error| store_error(&name, error))?;
        Ok(EtcdSnapshotStore {
            store,
            name,
            limits,
            fence: None,
        })
    }

    /// The same store, whose saves are made under `fence`: etcd refuses them once that
    /// leadership is gone ([`StoreError::Remote`], "no longer the leader").
    pub fn with_fence(mut self, fence: Option<Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// The etcd store underneath, for what the trait does not say (watches, members).
    pub fn etcd_store(&self) -> &BlockingEtcdStore {
        &self.store
    }

    fn failed(&self, error: FleetError) -> StoreError {
        store_error(&self.name, error)
    }
}

impl Store for EtcdSnapshotStore {
    fn dir(&self) -> &Path {
        &self.name
    }

    fn save(
        &self,
        app: &str,
        bytes: &[u8],
        request: &SaveRequest<'_>,
    ) -> Result<folder::Entry, StoreError> {
        let described = folder::describe_snapshot(app, bytes, &self.limits)?;
        let about = About {
            producer: described.producer,
            encrypted: described.encrypted,
            style: described.style,
            created: described.created,
        };
        let parent = match (request.since, request.on_newer) {
            (Some(since), OnNewer::MarkDiverged) => Parent::Diverge {
                made_from: request.parent,
                since: Some(since),
            },
            (since, _) => Parent::Given {
                parent: request.parent,
                since,
            },
        };
        let save = Save {
            parent,
            tag: request.tag,
            fence: self.fence.as_ref(),
            about: Some(&about),
        };
        self.store
            .save(app, bytes, &save)
            .map(folder_entry)
            .map_err(|error| self.failed(error))
    }

    fn resolve(&self, address: &StoreAddress) -> Result<folder::Entry, StoreError> {
        self.store
            .resolve(address)
            .map(folder_entry)
            .map_err(|error| self.failed(error))
    }

    fn get(&self, address: &StoreAddress) -> Result<(folder::Entry, Vec<u8>), StoreError> {
        self.store
            .get(address)
            .map(|(entry, bytes)| (folder_entry(entry), bytes))
            .map_err(|error| self.failed(error))
    }

    fn list(&self) -> Result<Vec<folder::AppSummary>, StoreError> {
        let apps = self.store.list().map_err(|error| self.failed(error))?;
        Ok(apps.into_iter().map(folder_summary).collect())
    }

    fn log(&self, app: &str) -> Result<Vec<folder::Entry>, StoreError> {
        let entries = self.store.log(app).map_err(|error| self.failed(error))?;
        Ok(entries.into_iter().map(folder_entry).collect())
    }

    fn tag(
        &self,
        address: &StoreAddress,
        tag: &str,
        conflict: TagConflict,
    ) -> Result<folder::Tagged, StoreError> {
        let Tagged {
            entry,
            moved_from,
            replaced,
        } = self
            .store
            .tag(address, tag, conflict)
            .map_err(|error| self.failed(error))?;
        Ok(folder::Tagged {
            entry: folder_entry(entry),
            moved_from,
            replaced,
        })
    }

    fn untag(&self, address: &StoreAddress) -> Result<(folder::Entry, String), StoreError> {
        self.store
            .untag(address)
            .map(|(entry, tag)| (folder_entry(entry), tag))
            .map_err(|error| self.failed(error))
    }

    fn gc(&self, app: &str, keep: usize) -> Result<Vec<folder::Entry>, StoreError> {
        let report = self
            .store
            .gc(app, keep)
            .map_err(|error| self.failed(error))?;
        Ok(report.removed.into_iter().map(folder_entry).collect())
    }

    fn hold(&self, _app: &str, number: Option<u64>) -> Result<Hold, StoreError> {
        Ok(Hold::by_this_process(number))
    }

    fn release(&self, _app: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn holder(&self, _app: &str) -> Result<Option<Hold>, StoreError> {
        Ok(None)
    }

    fn verify(&self) -> Result<Verified, StoreError> {
        let mut verified = Verified::default();
        for app in self.list()? {
            for entry in self.log(&app.app)? {
                verified.snapshots += 1;
                let address = StoreAddress::number(app.app.clone(), entry.number);
                match self.store.get(&address) {
                    Ok(_) => verified.files += 1,
                    Err(error) => verified
                        .problems
                        .push(format!("{}: {error}", entry.address())),
                }
            }
        }
        Ok(verified)
    }
}

/// The folder store's entry for an etcd store's entry (a snapshot saved without its header's
/// words, by a caller other than this adapter, shows producer `unknown`).
fn folder_entry(entry: Entry) -> folder::Entry {
    let about = entry.about.unwrap_or(About {
        producer: "unknown".to_owned(),
        encrypted: false,
        style: None,
        created: None,
    });
    folder::Entry {
        app: entry.app,
        number: entry.number,
        saved: entry.saved,
        size: entry.size,
        tag: entry.tag,
        producer: about.producer,
        encrypted: about.encrypted,
        style: about.style,
        created: about.created,
        sha256: entry.sha256,
        parent: entry.parent,
        diverged_from: entry.diverged_from,
    }
}

fn folder_summary(summary: AppSummary) -> folder::AppSummary {
    folder::AppSummary {
        app: summary.app,
        count: summary.count,
        total_bytes: summary.total_bytes,
        latest: folder_entry(summary.latest),
    }
}

/// The folder store's error for a fleet error: the same words where both stores have the
/// case, the fleet's own words (as [`StoreError::Remote`]) where only etcd has it.
fn store_error(dir: &Path, error: FleetError) -> StoreError {
    let dir = dir.to_owned();
    match error {
        FleetError::InvalidApp { reason } => StoreError::InvalidApp { reason },
        FleetError::InvalidTag { reason } => StoreError::InvalidTag { reason },
        FleetError::NoApp { app } => StoreError::NoApp { app },
        FleetError::NoSnapshot { address, hint } => StoreError::NoSnapshot { address, hint },
        FleetError::TagTaken { app, tag, number } => StoreError::TagTaken { app, tag, number },
        FleetError::NotTagged { address } => StoreError::NotTagged { address },
        FleetError::KeepNothing => StoreError::KeepNothing,
        FleetError::NotLatest {
            app,
            parent,
            latest,
        } => StoreError::Changed {
            app,
            read: parent.unwrap_or(0),
            latest: latest.unwrap_or(0),
        },
        FleetError::Timeout { op, after } => StoreError::TimedOut {
            dir,
            what: op,
            seconds: after.as_secs().max(1),
        },
        FleetError::Damaged { key, detail } => StoreError::Damaged {
            dir,
            detail: format!("{key}: {detail}"),
        },
        FleetError::Address(error) => StoreError::InvalidAddress {
            text: dir.display().to_string(),
            reason: error.to_string(),
        },
        unreachable @ (FleetError::Connect { .. } | FleetError::Etcd { .. }) => {
            StoreError::Remote {
                dir,
                detail: format!("{unreachable} (check that the etcd cluster is up and reachable)"),
            }
        }
        other => StoreError::Remote {
            dir,
            detail: other.to_string(),
        },
    }
}
