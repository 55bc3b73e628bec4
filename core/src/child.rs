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
    /// True after a successful `privileged_start` or `start` until the matching `stop`: the
    /// service holds resources that a stop must release.
    pub(crate) holds_resources: bool,
    /// What only a child that ran has; kept out of line, so a large thawed tree stays small.
    live: Option<Box<LiveMeta>>,
}

/// The part of a child's metadata that exists once it has been started.
#[derive(Debug, Clone, Default)]
struct LiveMeta {
    /// When the state last changed.
    since: Option<SystemTime>,
    /// Why the last start failed, until the next start.
    last_error: Option<String>,
    counters: Counters,
}

impl ChildMeta {
    pub(crate) fn new(name: Option<String>) -> Self {
        ChildMeta {
            name,
            state: LifecycleState::Stopped,
            holds_resources: false,
            live: None,
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

    /// When the lifecycle state last changed; `None` if it never did.
    pub fn since(&self) -> Option<SystemTime> {
        self.live.as_ref().and_then(|live| live.since)
    }

    /// True only in the `Running` state. Always false in a freshly thawed child.
    pub fn running(&self) -> bool {
        self.state == LifecycleState::Running
    }

    /// Why its last start failed, if it did (cleared by the next start).
    pub fn last_error(&self) -> Option<&str> {
        self.live
            .as_ref()
            .and_then(|live| live.last_error.as_deref())
    }

    /// The live counters the service publishes while it runs (`None` before its first start).
    pub fn counters(&self) -> Option<&Counters> {
        self.live.as_ref().map(|live| &live.counters)
    }

    fn live_mut(&mut self) -> &mut LiveMeta {
        self.live.get_or_insert_with(Box::default)
    }

    /// The counters, made now if the child never started.
    pub(crate) fn counters_or_new(&mut self) -> Counters {
        self.live_mut().counters.clone()
    }

    /// Carries `other`'s counters over (a replaced service keeps counting where it was).
    pub(crate) fn keep_counters_of(&mut self, other: &ChildMeta) {
        if let Some(counters) = other.counters() {
            self.live_mut().counters = counters.clone();
        }
    }

    pub(crate) fn set_last_error(&mut self, error: Option<String>) {
        if error.is_some() || self.live.is_some() {
            self.live_mut().last_error = error;
        }
    }

    pub(crate) fn set_state(&mut self, state: LifecycleState) {
        self.state = state;
        self.live_mut().since = Some(SystemTime::now());
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

    /// A child whose name was already checked.
    pub(crate) fn from_parts(name: Option<String>, service: Box<dyn Service>) -> Self {
        Child {
            meta: ChildMeta::new(name),
            service,
        }
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
