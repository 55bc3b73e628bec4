//! # rtwisted fleets on etcd
//!
//! What a fleet of rtwisted daemons on several machines shares, kept in an etcd cluster:
//!
//! - [`EtcdStore`]: the snapshot store on etcd (numbers, tags, parents, gc), with snapshots
//!   written as chunks and committed by one compare-and-swap, so a half-written snapshot is
//!   never visible and two writers never lose a save;
//! - [`members`]: each daemon registered under a lease, so a dead one disappears by itself;
//! - [`Election`]: one leader at a time for singleton services, whose writes carry a
//!   [`Fence`] that etcd checks, so a leader that lost its lease cannot write;
//! - [`TagWatch`]: a stream of tag moves, for daemons that follow `APP@TAG`.
//!
//! `rtap` and `rtwistd` use it through [`EtcdSnapshotStore`], the store behind the folder
//! store's own trait (`rtwisted_persist::store::Store`): `--store etcd://...`, the members a
//! daemon registers, `--follow` on a [`TagWatch`], `--singleton` on an [`Election`]. The store
//! mirrors the folder store's model (the same addresses, numbers, tags and gc rule; [`Entry`]
//! records what a snapshot's header says as [`About`]), and each [`FleetError`] maps to a
//! folder-store error except the etcd-only ones (connection, timeout, fencing, leases).
//! [`BlockingEtcdStore`] gives synchronous callers the same store.
//!
//! Everything lives under the key prefix of an `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`
//! address ([`EtcdAddress`]), and every request is held to the connection's deadline.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rtwisted_fleet::FleetError> {
//! use rtwisted_fleet::{Etcd, EtcdAddress, EtcdStore};
//! let address: EtcdAddress = "etcd://127.0.0.1:2379/rtwisted".parse()?;
//! let store = EtcdStore::new(Etcd::connect(&address).await?);
//! let entry = store.put("echo", b"snapshot bytes", Some("prod")).await?;
//! assert_eq!(entry.address(), "echo@1");
//! let (_, bytes) = store.get(&"echo@prod".parse().unwrap()).await?;
//! assert_eq!(bytes, b"snapshot bytes");
//! # Ok(()) }
//! ```

pub mod address;
pub mod blocking;
mod connection;
pub mod election;
mod error;
mod lease;
pub mod members;
pub mod snapshot_store;
pub mod store;
pub mod watch;

pub use address::{AddressError, EtcdAddress};
pub use blocking::BlockingEtcdStore;
pub use connection::{DEFAULT_DEADLINE, Etcd};
pub use election::{Election, Fence, Leader, LeaderInfo};
pub use error::FleetError;
pub use lease::MIN_TTL;
pub use members::{Member, MemberInfo, Membership};
pub use snapshot_store::EtcdSnapshotStore;
pub use store::{About, Entry, EtcdStore, GcReport, Parent, Save, TagConflict, Tagged};
pub use watch::{TagChange, TagWatch};
