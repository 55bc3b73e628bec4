//! The registry of persistable types: every service and protocol factory tag this binary knows.
//!
//! `typetag` keeps its own registry, but does not expose it; snapshots need to know, before they
//! decode anything, which of the types a file names this binary can build (so that a load can
//! list *every* unknown type at once) and at which version each type is. So every type that
//! implements [`Service`](crate::Service) (or another persisted trait, such as the protocol
//! factories of `rtwisted-services`) also registers here, at link time, beside its
//! `#[typetag::serde(name = ...)]` impl. Declaring the tag as a constant keeps it in one place:
//!
//! ```
//! #[derive(Debug, serde::Serialize, serde::Deserialize)]
//! struct Cache {}
//! rtwisted_core::register_type!(service Cache = "example.Cache", version 1);
//!
//! #[typetag::serde(name = Cache::TAG)]
//! impl rtwisted_core::Service for Cache {}
//!
//! rtwisted_core::register_type!(factory "example.Memcache", version 1);
//! assert_eq!(rtwisted_core::registry::lookup("example.Cache").unwrap().version, 1);
//! assert!(rtwisted_core::registry::lookup("example.Memcache").is_some());
//! ```
//!
//! A binary knows the types of every crate it links; a plugin crate whose types are never
//! referenced must still be linked with `use plugin_crate as _;`.

use std::collections::HashMap;
use std::sync::OnceLock;

/// What kind of trait object a tag names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TypeKind {
    /// A [`Service`](crate::Service).
    Service,
    /// A [`ProtocolFactory`](crate::ProtocolFactory) or a
    /// [`DatagramProtocol`](crate::protocols::DatagramProtocol).
    Factory,
    /// A [`TimerTask`](crate::timer::TimerTask).
    Task,
}

/// One registered type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeInfo {
    /// The explicit, namespaced typetag name, e.g. `rtwisted.StreamServer`.
    pub tag: &'static str,
    /// Service or factory.
    pub kind: TypeKind,
    /// The current version of the type's persisted form.
    pub version: u32,
    /// Where it was registered (the Rust type, or the module), to name both sides of a clash.
    pub origin: &'static str,
}

inventory::collect!(TypeInfo);

/// Registers a persistable type.
///
/// - `register_type!(service MyType = "ns.MyType", version N)` declares the constant
///   `MyType::TAG` and registers it; the type's `#[typetag::serde(name = MyType::TAG)]` impl
///   uses the same constant, so the tag is spelled once;
/// - `register_type!(service "ns.Name", version N)` registers a tag spelled as a literal (it
///   must equal the type's typetag name).
///
/// The kind is `service`, `factory` (protocol factories and datagram protocols) or `task`
/// (timer tasks).
#[macro_export]
macro_rules! register_type {
    ($kind:ident $tag:literal, version $version:literal) => {
        $crate::inventory::submit! {
            $crate::registry::TypeInfo {
                tag: $tag,
                kind: $crate::__type_kind!($kind),
                version: $version,
                origin: module_path!(),
            }
        }
    };
    ($kind:ident $ty:ident = $tag:literal, version $version:literal) => {
        impl $ty {
            /// The tag this type is saved under (its typetag name).
            pub const TAG: &'static str = $tag;
        }
        $crate::inventory::submit! {
            $crate::registry::TypeInfo {
                tag: $tag,
                kind: $crate::__type_kind!($kind),
                version: $version,
                origin: concat!(module_path!(), "::", stringify!($ty)),
            }
        }
    };
}

/// The [`TypeKind`] a `register_type!` keyword names.
#[doc(hidden)]
#[macro_export]
macro_rules! __type_kind {
    (service) => {
        $crate::registry::TypeKind::Service
    };
    (factory) => {
        $crate::registry::TypeKind::Factory
    };
    (task) => {
        $crate::registry::TypeKind::Task
    };
}

fn index() -> &'static HashMap<&'static str, &'static TypeInfo> {
    static INDEX: OnceLock<HashMap<&'static str, &'static TypeInfo>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = HashMap::new();
        for info in inventory::iter::<TypeInfo> {
            // The first registration wins here; `check` reports the clash.
            index.entry(info.tag).or_insert(info);
        }
        index
    })
}

/// The registered type with this tag.
pub fn lookup(tag: &str) -> Option<&'static TypeInfo> {
    index().get(tag).copied()
}

/// Every registered type, sorted by tag.
pub fn all() -> Vec<&'static TypeInfo> {
    let mut types: Vec<_> = index().values().copied().collect();
    types.sort_by_key(|info| info.tag);
    types
}

/// Two registrations claim one tag, so snapshots could not tell their types apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the type tag '{tag}' is registered twice, by {first} and by {second}: give one of them another tag"
)]
pub struct DuplicateTag {
    /// The tag.
    pub tag: &'static str,
    /// One registration's origin.
    pub first: &'static str,
    /// The other's.
    pub second: &'static str,
}

/// Checks that no two registrations share a tag (binaries call this at start).
pub fn check() -> Result<(), DuplicateTag> {
    let mut seen: HashMap<&'static str, &'static TypeInfo> = HashMap::new();
    let mut registrations: Vec<&'static TypeInfo> =
        inventory::iter::<TypeInfo>.into_iter().collect();
    registrations.sort_by_key(|info| (info.tag, info.origin));
    for info in registrations {
        if let Some(first) = seen.insert(info.tag, info) {
            return Err(DuplicateTag {
                tag: info.tag,
                first: first.origin,
                second: info.origin,
            });
        }
    }
    Ok(())
}

/// The short name of a tag: what follows its last `.` (`rtwisted.Echo` is `Echo`).
pub fn short_name(tag: &str) -> &str {
    tag.rsplit_once('.').map_or(tag, |(_, short)| short)
}
