//! The `Service` trait: one node of an application's service tree.
//!
//! A service is a state-aware object that is told when the application starts and stops.
//! Every service embeds a [`ServiceMeta`], the framework-owned part of its state: its name and
//! its lifecycle state. The name is persisted; the lifecycle state never is, so a service thawed
//! from a snapshot is always stopped.
//!
//! Services are trait objects serialized with `typetag`. Give every implementation an explicit,
//! namespaced tag, so that renaming the Rust type never breaks old snapshots, and register it
//! with [`register_type!`](crate::register_type) so that snapshots can list it in their manifest:
//!
//! ```
//! use rtwisted_core::{register_type, Service, ServiceMeta, ServiceError, StopReason};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! struct Greeter {
//!     #[serde(rename = "name", default)]
//!     meta: ServiceMeta,
//!     greeting: String,
//! }
//!
//! #[typetag::serde(name = "example.Greeter")]
//! #[async_trait::async_trait]
//! impl Service for Greeter {
//!     fn meta(&self) -> &ServiceMeta { &self.meta }
//!     fn meta_mut(&mut self) -> &mut ServiceMeta { &mut self.meta }
//!     async fn start(&mut self) -> Result<(), ServiceError> {
//!         println!("{}", self.greeting);
//!         Ok(())
//!     }
//! }
//! register_type!(service "example.Greeter", version 1);
//! ```

use std::any::Any;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

/// Why a service is being stopped; passed to [`Service::stop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The application is shutting down (a signal, or a call to stop the tree).
    Shutdown,
    /// The service was removed from a running parent.
    Removed,
    /// A start failed elsewhere in the tree and what had started is being undone.
    Rollback,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Shutdown => "shutdown",
            StopReason::Removed => "removed",
            StopReason::Rollback => "rollback",
        })
    }
}

/// A service name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Names address services in paths, so some names cannot be allowed.
    #[error(
        "invalid service name '{0}': a name must be non-empty, must not contain '/' and must not start with '#'"
    )]
    Invalid(String),
    /// Twisted's rule: a service cannot be renamed while it has a parent.
    #[error("cannot rename service '{old}' to '{new}' while it has a parent; remove it first")]
    HasParent {
        /// The current name (empty when the service was unnamed).
        old: String,
        /// The name that was asked for.
        new: String,
    },
}

/// Checks that `name` can be used as a service name: non-empty, no `/` (the path separator),
/// and not starting with `#` (the index form, `#2`).
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.contains('/') || name.starts_with('#') {
        return Err(NameError::Invalid(name.to_owned()));
    }
    Ok(())
}

/// The framework-owned state that every service embeds: its name and its lifecycle state.
///
/// Only the name is persisted. In a service struct, declare the field as
/// `#[serde(rename = "name", default)] meta: ServiceMeta`, so a snapshot shows `"name": "web"`.
/// The lifecycle state can be read by anyone but changed only by [`crate::lifecycle`]; a service's
/// own code never sets `running`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServiceMeta {
    name: Option<String>,
    state: LifecycleState,
    /// True after a successful `privileged_start` or `start` until the matching `stop`: the
    /// service holds resources that a stop must release.
    pub(crate) holds_resources: bool,
    pub(crate) has_parent: bool,
}

impl ServiceMeta {
    /// Metadata for an unnamed service.
    pub fn unnamed() -> Self {
        Self::default()
    }

    /// Metadata for a named service; fails if the name is not valid (see [`validate_name`]).
    pub fn named(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        validate_name(&name)?;
        Ok(ServiceMeta {
            name: Some(name),
            ..Self::default()
        })
    }

    /// The service's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Renames the service (or makes it unnamed with `None`).
    ///
    /// Fails while the service has a parent, as in Twisted: the parent indexes its children by
    /// name, so a rename must go through removing and re-adding.
    pub fn set_name(&mut self, name: Option<String>) -> Result<(), NameError> {
        if let Some(new) = &name {
            validate_name(new)?;
        }
        if self.has_parent {
            return Err(NameError::HasParent {
                old: self.name.clone().unwrap_or_default(),
                new: name.unwrap_or_default(),
            });
        }
        self.name = name;
        Ok(())
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.state
    }

    /// True only in the `Running` state. Always false in a freshly thawed service.
    pub fn running(&self) -> bool {
        self.state == LifecycleState::Running
    }

    /// True while the service sits in a parent collection.
    pub fn has_parent(&self) -> bool {
        self.has_parent
    }

    pub(crate) fn set_state(&mut self, state: LifecycleState) {
        self.state = state;
    }
}

impl Serialize for ServiceMeta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.name.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ServiceMeta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = Option::<String>::deserialize(deserializer)?;
        if let Some(name) = &name {
            validate_name(name).map_err(serde::de::Error::custom)?;
        }
        Ok(ServiceMeta {
            name,
            ..Self::default()
        })
    }
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
/// - **Collections.** A service that holds children returns them from
///   [`collection`](Service::collection); the driver then starts them, in insertion order, after
///   the service's own `start`, and stops them, in reverse order, before its own `stop`.
/// - **Persistence.** Everything serde serializes is persisted. Live resources (sockets, tasks)
///   are `#[serde(skip)]`; live state that handlers mutate sits behind `Arc<Mutex<_>>` so that a
///   snapshot of a running tree reads the current values.
#[typetag::serde(tag = "type")]
#[async_trait]
pub trait Service: Any + Send + Sync + fmt::Debug {
    /// The framework-owned metadata (name, lifecycle state).
    fn meta(&self) -> &ServiceMeta;

    /// Mutable access to the metadata; its lifecycle state can only be changed by the driver.
    fn meta_mut(&mut self) -> &mut ServiceMeta;

    /// The children, if this service is a collection.
    fn collection(&self) -> Option<&MultiService> {
        None
    }

    /// Mutable access to the children, if this service is a collection.
    fn collection_mut(&mut self) -> Option<&mut MultiService> {
        None
    }

    /// Acquire what needs privileges (bind ports below 1024, open protected files).
    async fn privileged_start(&mut self) -> Result<(), ServiceError> {
        Ok(())
    }

    /// Start working. Called after `privileged_start` (the driver calls that first if it has not
    /// run yet).
    async fn start(&mut self) -> Result<(), ServiceError> {
        Ok(())
    }

    /// Stop working and release every resource. The driver bounds it with a deadline and drops
    /// the future when the deadline passes, so it must be cancellation-safe.
    async fn stop(&mut self, reason: StopReason) -> Result<(), ServiceError> {
        let _ = reason;
        Ok(())
    }

    /// A one-line summary for people, such as the endpoint a server listens on.
    fn summary(&self) -> Option<String> {
        None
    }
}

impl dyn Service + '_ {
    /// The service's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.meta().name()
    }

    /// True only while the service is `Running`.
    pub fn running(&self) -> bool {
        self.meta().running()
    }

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
