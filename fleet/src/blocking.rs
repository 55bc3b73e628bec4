//! # The store for code that does not run async
//!
//! `rtap` and the folder store's `SnapshotStore` trait are synchronous; [`BlockingEtcdStore`]
//! gives them the [`EtcdStore`] with plain blocking calls. It runs its own small tokio runtime
//! on a thread of its own, so it works from `main`, from a plain thread, and from inside
//! another tokio runtime (where it blocks the calling thread, as any blocking call does: call
//! it there through `spawn_blocking`).

use std::future::Future;
use std::time::Duration;

use rtwisted_persist::store::StoreAddress;
use tokio::runtime::Runtime;

use crate::address::EtcdAddress;
use crate::connection::Etcd;
use crate::error::FleetError;
use crate::store::{AppSummary, Entry, EtcdStore, GcReport, Save, TagConflict, Tagged};

/// An [`EtcdStore`] with blocking methods. See the [module documentation](self).
///
/// Dropping it shuts its runtime down without waiting (no request is half-committed by that:
/// every write is one transaction).
pub struct BlockingEtcdStore {
    store: EtcdStore,
    runtime: Option<Runtime>,
}

impl BlockingEtcdStore {
    /// Connects to the cluster `address` names; every operation is held to `deadline`.
    pub fn connect(address: &EtcdAddress, deadline: Duration) -> Result<Self, FleetError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rtwisted-etcd")
            .enable_all()
            .build()
            .map_err(|error| FleetError::Connect {
                endpoints: address.endpoints.join(","),
                detail: format!("cannot start the etcd client's runtime ({error})"),
            })?;
        let owned = address.clone();
        let connected = run_on(&runtime, async move {
            Etcd::connect_with_deadline(&owned, deadline).await
        });
        match connected {
            Ok(etcd) => Ok(BlockingEtcdStore {
                store: EtcdStore::new(etcd),
                runtime: Some(runtime),
            }),
            Err(error) => {
                runtime.shutdown_background();
                Err(error)
            }
        }
    }

    /// The async store underneath, usable from any runtime while this value lives (its
    /// connection's tasks run on this value's runtime).
    pub fn store(&self) -> &EtcdStore {
        &self.store
    }

    /// Runs `future` on the store's runtime and waits for it.
    fn wait<T, F>(&self, future: F) -> Result<T, FleetError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, FleetError>> + Send + 'static,
    {
        match self.runtime.as_ref() {
            Some(runtime) => run_on(runtime, future),
            None => Err(stopped()),
        }
    }

    /// [`EtcdStore::put`].
    pub fn put(&self, app: &str, bytes: &[u8], tag: Option<&str>) -> Result<Entry, FleetError> {
        let (store, app, bytes, tag) = (
            self.store.clone(),
            app.to_owned(),
            bytes.to_vec(),
            tag.map(str::to_owned),
        );
        self.wait(async move { store.put(&app, &bytes, tag.as_deref()).await })
    }

    /// [`EtcdStore::save`], with the options' tag and fence.
    pub fn save(&self, app: &str, bytes: &[u8], options: &Save<'_>) -> Result<Entry, FleetError> {
        let (store, app, bytes) = (self.store.clone(), app.to_owned(), bytes.to_vec());
        let (parent, tag, fence, about) = (
            options.parent,
            options.tag.map(str::to_owned),
            options.fence.cloned(),
            options.about.cloned(),
        );
        self.wait(async move {
            let options = Save {
                parent,
                tag: tag.as_deref(),
                fence: fence.as_ref(),
                about: about.as_ref(),
            };
            store.save(&app, &bytes, &options).await
        })
    }

    /// [`EtcdStore::resolve`].
    pub fn resolve(&self, address: &StoreAddress) -> Result<Entry, FleetError> {
        let (store, address) = (self.store.clone(), address.clone());
        self.wait(async move { store.resolve(&address).await })
    }

    /// [`EtcdStore::get`].
    pub fn get(&self, address: &StoreAddress) -> Result<(Entry, Vec<u8>), FleetError> {
        let (store, address) = (self.store.clone(), address.clone());
        self.wait(async move { store.get(&address).await })
    }

    /// [`EtcdStore::list`].
    pub fn list(&self) -> Result<Vec<AppSummary>, FleetError> {
        let store = self.store.clone();
        self.wait(async move { store.list().await })
    }

    /// [`EtcdStore::log`].
    pub fn log(&self, app: &str) -> Result<Vec<Entry>, FleetError> {
        let (store, app) = (self.store.clone(), app.to_owned());
        self.wait(async move { store.log(&app).await })
    }

    /// [`EtcdStore::tag`].
    pub fn tag(
        &self,
        address: &StoreAddress,
        tag: &str,
        conflict: TagConflict,
    ) -> Result<Tagged, FleetError> {
        let (store, address, tag) = (self.store.clone(), address.clone(), tag.to_owned());
        self.wait(async move { store.tag(&address, &tag, conflict).await })
    }

    /// [`EtcdStore::untag`].
    pub fn untag(&self, address: &StoreAddress) -> Result<(Entry, String), FleetError> {
        let (store, address) = (self.store.clone(), address.clone());
        self.wait(async move { store.untag(&address).await })
    }

    /// The members of `app`'s fleet ([`members::list`](crate::members::list)).
    pub fn members(&self, app: &str) -> Result<Vec<crate::Member>, FleetError> {
        let (etcd, app) = (self.store.etcd().clone(), app.to_owned());
        self.wait(async move { crate::members::list(&etcd, &app).await })
    }

    /// [`EtcdStore::gc`].
    pub fn gc(&self, app: &str, keep: usize) -> Result<GcReport, FleetError> {
        let (store, app) = (self.store.clone(), app.to_owned());
        self.wait(async move { store.gc(&app, keep).await })
    }
}

impl Drop for BlockingEtcdStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `future` on `runtime`'s own thread and waits for its answer: unlike `block_on`, safe
/// to call from inside another runtime.
fn run_on<T, F>(runtime: &Runtime, future: F) -> Result<T, FleetError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, FleetError>> + Send + 'static,
{
    let (tell, answer) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tell.send(future.await);
    });
    answer.recv().unwrap_or_else(|_| Err(stopped()))
}

fn stopped() -> FleetError {
    FleetError::Etcd {
        op: "use the store".to_owned(),
        detail: "the etcd client's runtime has stopped".to_owned(),
    }
}
