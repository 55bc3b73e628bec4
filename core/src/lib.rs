//! # rtwisted-core: the service tree
//!
//! A daemon is an [`Application`]: a name, process and persistence settings, and a tree of
//! [`Service`]s rooted in a [`MultiService`]. The tree is a plain serde value, so `rtwisted-persist`
//! can freeze it into a snapshot and thaw it again with every service stopped; the
//! [`Lifecycle`] driver starts it (in insertion order), and stops it (in reverse order, each
//! service with a deadline).
//!
//! ```
//! use rtwisted_core::{Application, Lifecycle, MultiService, StopReason};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut app = Application::new("shop").unwrap();
//! app.services_mut().insert_named("web", Box::new(MultiService::new())).unwrap();
//!
//! let lifecycle = Lifecycle::default();
//! lifecycle.start(app.services_mut()).await.unwrap();
//! assert!(app.services().get("web").unwrap().running());
//! lifecycle.stop(app.services_mut(), StopReason::Shutdown).await.unwrap();
//! # });
//! ```
//!
//! Modules: [`service`] (the trait and its metadata), [`multi`] (collections), [`lifecycle`]
//! (the state machine), [`application`], [`path`] (addressing), [`tree`] (views for people and
//! scripts), [`diff`] (what differs between two trees), [`registry`] (persistable types),
//! [`codec`] (the serde form of a tree, with the fast path for built-in types), [`upgrade`]
//! (steps for old data), [`child`] (a service with the framework's metadata beside it),
//! [`context`] (what hooks get from the driver) and [`apply`] (changing a running tree to equal
//! another). The built-in services, protocols and plugins live in `rtwisted-services`. Nothing
//! here does network or file I/O.

pub mod application;
pub mod apply;
pub mod child;
pub mod codec;
pub mod context;
pub mod diff;
pub mod lifecycle;
pub mod multi;
mod name_index;
pub mod path;
pub mod registry;
pub mod service;
pub mod tree;
pub mod upgrade;

pub use application::{Application, PersistenceSettings, ProcessSettings, Style};
pub use child::{Child, ChildMeta, IntoChild};
pub use context::{StartContext, StopContext};
pub use lifecycle::{Lifecycle, StartError, StopError};
pub use multi::{MultiService, TreeError};
pub use path::{PathSegment, ServicePath};
pub use service::{HandoverSocket, LifecycleState, NameError, Service, ServiceError, StopReason};

/// Re-exported so that [`register_type!`] and plugin registration work without a direct
/// dependency on `inventory`.
pub use inventory;

/// An I/O error in words a user recognizes, without Rust's `(os error N)` where a plain phrase
/// says it.
pub fn describe_io(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "it is a directory, not a file".into(),
        std::io::ErrorKind::NotADirectory => "a parent of the path is not a directory".into(),
        _ => error.to_string(),
    }
}
