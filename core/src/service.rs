//! The `Service` trait: one node of an application's service tree.
//!
//! A service is a state-aware object that is told when the application starts and stops. It
//! holds only its own fields: what the framework owns about it — its name among its siblings
//! and its lifecycle state — sits beside it in its parent collection (see [`crate::child`]),
//! so no service can rename itself under its parent or claim to be running.
//!
//! Services are trait objects serialized with `typetag`. Give every implementation an explicit,
//! namespaced tag, so that renaming the Rust type never breaks old snapshots, and register it
//! with [`register_type!`](crate::register_type) so that snapshots can list it in their manifest:
//!
//! ```
//! use rtwisted_core::{register_type, Service, ServiceError, StartContext};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! struct Greeter {
//!     greeting: String,
//! }
//!
//! #[typetag::serde(name = "example.Greeter")]
//! #[async_trait::async_trait]
//! impl Service for Greeter {
//!     async fn start(&mut self, cx: &mut StartContext) -> Result<(), ServiceError> {
//!         println!("{} from {}", self.greeting, cx.path());
//!         Ok(())
//!     }
//! }
//! register_type!(service "example.Greeter", version 1);
//! ```
//!
//! A snapshot writes a service as one map: `type` (its tag), `name` (the framework's), then the
//! service's own fields. `name` is therefore a reserved field name.

use std::any::Any;
use std::fmt;

use async_trait::async_trait;

use crate::context::{StartContext, StopContext};
use crate::multi::MultiService;

/// The error a service's own lifecycle hook returns.
///
/// It is a boxed error so that services can return whatever their I/O produces; the lifecycle
/// driver wraps it with the service's path before it reaches a user.
pub type ServiceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where a service is in its lifecycle.
///
/// Only the lifecycle driver ([`crate::lifecycle`]) moves a service between states:
///
/// ```text
///  Stopped --start--> Starting --ok--> Running --stop--> Stopping --> Stopped
///                         \--error--> (rollback) --> Stopped
/// ```
///
/// Starting a `Running` or `Starting` service and stopping a `Stopped` one are no-ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleState {
    /// Not running: freshly built, freshly thawed, or stopped.
    #[default]
    Stopped,
    /// Its start hook (or its children's) is running.
    Starting,
    /// Started successfully and not yet stopped.
    Running,
    /// Its stop hook (or its children's) is running.
    Stopping,
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LifecycleState::Stopped => "stopped",
            LifecycleState::Starting => "starting",
            LifecycleState::Running => "running",
            LifecycleState::Stopping => "stopping",
        })
    }
}

/// Why a service is being stopped; see [`StopContext::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The application is shutting down (a signal, or a call to stop the tree).
    Shutdown,
    /// The service was removed from a running parent.
    Removed,
    /// A start failed elsewhere in the tree and what had started is being undone.
    Rollback,
    /// A live change replaces the service with a new version of itself.
    Replaced,
    /// A hot restart handed the service's sockets and state to a successor process: release
    /// what the successor now owns without undoing it (a UNIX socket's file stays).
    HandedOver,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Shutdown => "shutdown",
            StopReason::Removed => "removed",
            StopReason::Rollback => "rollback",
            StopReason::Replaced => "replaced",
            StopReason::HandedOver => "handed over",
        })
    }
}

/// A service name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Names address services in paths, so some names cannot be allowed.
    #[error(
        "invalid service name '{0}': a name must be non-empty, must not contain '/' and must not start with '#'"
    )]
    Invalid(String),
}

/// Checks that `name` can be used as a service name: non-empty, no `/` (the path separator),
/// and not starting with `#` (the index form, `#2`).
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.contains('/') || name.starts_with('#') {
        return Err(NameError::Invalid(name.to_owned()));
    }
    Ok(())
}

/// One node of the service tree.
///
/// # Contract
/// - **Hooks.** [`privileged_start`](Service::privileged_start) runs while the process may still
///   hold root: bind privileged ports, open protected files. [`start`](Service::start) runs after
///   privileges are dropped. [`stop`](Service::stop) releases everything either of them acquired.
///   The hooks are called only by [`crate::lifecycle`], which guarantees: a hook never runs twice
///   without a stop in between; `stop` runs exactly once after any successful `privileged_start`
///   or `start`, and never for a service that was not touched; a service whose own hook failed
///   must clean up what that hook did before returning the error.
/// - **Contexts.** Each hook gets a context from the driver: the service's path, a way to ask
///   the runner for a checkpoint and a place to publish live counters ([`StartContext`]), and
///   the stop's reason and deadline ([`StopContext`]). There are no globals to reach for.
/// - **Collections.** A service that holds children returns them from
///   [`collection`](Service::collection); the driver then starts them, in insertion order, after
///   the service's own `start`, and stops them, in reverse order, before its own `stop`.
/// - **Persistence.** Everything serde serializes is persisted. Live resources (sockets, tasks)
///   are `#[serde(skip)]`; live state that handlers mutate sits behind `Arc<Mutex<_>>` so that a
///   snapshot of a running tree reads the current values. Do not name a field `name`: the
///   framework writes the service's name under that key.
#[typetag::serde(tag = "type")]
#[async_trait]
pub trait Service: Any + Send + Sync + fmt::Debug {
    /// The children, if this service is a collection.
    fn collection(&self) -> Option<&MultiService> {
        None
    }

    /// Mutable access to the children, if this service is a collection.
    fn collection_mut(&mut self) -> Option<&mut MultiService> {
        None
    }

    /// Acquire what needs privileges (bind ports below 1024, open protected files).
    async fn privileged_start(&mut self, cx: &mut StartContext) -> Result<(), ServiceError> {
        let _ = cx;
        Ok(())
    }

    /// Start working. Called after `privileged_start` (the driver calls that first if it has not
    /// run yet).
    async fn start(&mut self, cx: &mut StartContext) -> Result<(), ServiceError> {
        let _ = cx;
        Ok(())
    }

    /// Stop working and release every resource. The driver bounds it with the context's
    /// deadline and drops the future when the deadline passes, so it must be cancellation-safe.
    async fn stop(&mut self, cx: &StopContext) -> Result<(), ServiceError> {
        let _ = cx;
        Ok(())
    }

    /// A hand-over is coming (a hot restart): stop changing what a snapshot of this service
    /// saves, and return once the state is final. New work that would change it waits (it is
    /// not refused), work under way finishes. Either [`resume`](Service::resume) follows (the
    /// hand-over failed: carry on) or the service is snapshotted and stopped. Called only on a
    /// running service; a service without live state keeps the default, which does nothing.
    async fn quiesce(&mut self) -> Result<(), ServiceError> {
        Ok(())
    }

    /// Undoes [`quiesce`](Service::quiesce): the waiting work goes on.
    async fn resume(&mut self) {}

    /// The listening sockets a successor process takes over at a hot restart, each under a
    /// key its new self asks for in [`StartContext::take_inherited`] (a server uses its
    /// endpoint's canonical string). Valid while the service runs; the default has none.
    fn handover_sockets(&self) -> Vec<HandoverSocket<'_>> {
        Vec::new()
    }

    /// A one-line summary for people, such as the endpoint a server listens on.
    fn summary(&self) -> Option<String> {
        None
    }
}

/// One listening socket a service hands to a successor: its key and its descriptors (the
/// socket, and whatever else keeps it, such as a UNIX socket's lock file).
#[derive(Debug)]
pub struct HandoverSocket<'a> {
    /// What the successor's service asks for (the endpoint's canonical string).
    pub key: String,
    /// The descriptors, borrowed from the running service.
    pub fds: Vec<std::os::fd::BorrowedFd<'a>>,
}

impl dyn Service + '_ {
    /// The explicit type tag this service is serialized with, e.g. `rtwisted.StreamServer`.
    pub fn type_tag(&self) -> &'static str {
        self.typetag_name()
    }
}

impl dyn Service {
    /// The concrete service, if it is a `T`.
    pub fn downcast_ref<T: Service>(&self) -> Option<&T> {
        (self as &dyn Any).downcast_ref::<T>()
    }

    /// The concrete service, mutably, if it is a `T`.
    pub fn downcast_mut<T: Service>(&mut self) -> Option<&mut T> {
        (self as &mut dyn Any).downcast_mut::<T>()
    }
}
