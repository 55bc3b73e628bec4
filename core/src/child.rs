//! A child of a collection: the user's service with the framework's metadata beside it.
//!
//! The name a child goes by and its lifecycle state belong to the framework, not to the
//! service: a [`Child`] holds them next to the boxed service, and only the collection (names)
//! and the lifecycle driver (states) change them. A service's own code gets `&mut` to its own
//! fields and nothing else, so it can neither rename itself under its parent nor claim to run.
//!
//! ```
//! use rtwisted_core::{Child, MultiService};
//! let web = Child::named("web", Box::new(MultiService::new())).unwrap();
//! assert_eq!(web.name(), Some("web"));
//! assert!(!web.running());
//! assert!(Child::named("a/b", Box::new(MultiService::new())).is_err());
//! ```

use std::time::SystemTime;

use crate::context::Counters;
use crate::service::{LifecycleState, NameError, Service, validate_name};

/// The framework-owned part of a child: its name (persisted) and its lifecycle (never
/// persisted, so a thawed child is always stopped).
#[derive(Debug, Clone)]
pub struct ChildMeta {
    name: Option<String>,
    pub(crate) state: LifecycleState,
    /// When the state last changed.
    pub(crate) since: SystemTime,
    /// True after a successful `privileged_start` or `start` until the matching `stop`: the
    /// service holds resources that a stop must release.
    pub(crate) holds_resources: bool,
    /// Why the last start failed, until the next start.
    pub(crate) last_error: Option<String>,
    pub(crate) counters: Counters,
}

impl ChildMeta {
    fn new(name: Option<String>) -> Self {
        ChildMeta {
            name,
            state: LifecycleState::Stopped,
            since: SystemTime::now(),
            holds_resources: false,
            last_error: None,
            counters: Counters::default(),
        }
    }

    /// The child's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.state
    }

    /// When the lifecycle state last changed (or the child was made).
    pub fn since(&self) -> SystemTime {
        self.since
    }

    /// True only in the `Running` state. Always false in a freshly thawed child.
    pub fn running(&self) -> bool {
        self.state == LifecycleState::Running
    }

    /// Why its last start failed, if it did (cleared by the next start).
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The live counters the service publishes while it runs.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub(crate) fn set_state(&mut self, state: LifecycleState) {
        self.state = state;
        self.since = SystemTime::now();
    }
}

/// A service in a collection, with its metadata.
#[derive(Debug)]
pub struct Child {
    pub(crate) meta: ChildMeta,
    pub(crate) service: Box<dyn Service>,
}

impl Child {
    /// An unnamed child.
    pub fn unnamed(service: Box<dyn Service>) -> Self {
        Child {
            meta: ChildMeta::new(None),
            service,
        }
    }

    /// A named child; fails if the name is not valid (see [`validate_name`]).
    pub fn named(name: impl Into<String>, service: Box<dyn Service>) -> Result<Self, NameError> {
        let name = name.into();
        validate_name(&name)?;
        Ok(Child {
            meta: ChildMeta::new(Some(name)),
            service,
        })
    }

    /// A child named `name`, or unnamed with `None`.
    pub fn new(name: Option<String>, service: Box<dyn Service>) -> Result<Self, NameError> {
        match name {
            Some(name) => Self::named(name, service),
            None => Ok(Self::unnamed(service)),
        }
    }

    /// The child's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.meta.name()
    }

    /// The framework's metadata.
    pub fn meta(&self) -> &ChildMeta {
        &self.meta
    }

    /// True only while the child is `Running`.
    pub fn running(&self) -> bool {
        self.meta.running()
    }

    /// The service.
    pub fn service(&self) -> &dyn Service {
        &*self.service
    }

    /// The service, mutably: its own fields, never its name or state.
    pub fn service_mut(&mut self) -> &mut (dyn Service + 'static) {
        &mut *self.service
    }

    /// The service and a fresh name for it (a stopped, detached child only makes sense to
    /// rename: see [`MultiService::insert`](crate::MultiService::insert)).
    pub fn renamed(self, name: Option<String>) -> Result<Self, NameError> {
        Child::new(name, self.service)
    }

    /// Takes the service out, leaving the metadata behind.
    pub fn into_service(self) -> Box<dyn Service> {
        self.service
    }
}

/// Turns any service into a [`Child`] ready to insert: `root.insert(server.named("web")?)`.
pub trait IntoChild: Service + Sized {
    /// This service as a child named `name`.
    fn named(self, name: impl Into<String>) -> Result<Child, NameError> {
        Child::named(name, Box::new(self))
    }

    /// This service as an unnamed child.
    fn unnamed(self) -> Child {
        Child::unnamed(Box::new(self))
    }
}

impl<S: Service> IntoChild for S {}
