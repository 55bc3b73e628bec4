//! The registry of persistable types: every service and protocol factory tag this binary knows.
//!
//! `typetag` keeps its own registry, but does not expose it; snapshots need to know, before they
//! decode anything, which of the types a file names this binary can build (so that a load can
//! list *every* unknown type at once) and at which version each type is. So every type that
//! implements [`Service`](crate::Service) or [`ProtocolFactory`](crate::ProtocolFactory) also
//! registers here, at link time, beside its `#[typetag::serde(name = ...)]` impl:
//!
//! ```
//! rtwisted_core::register_type!(service "example.Cache", version 1);
//! rtwisted_core::register_type!(factory "example.Memcache", version 1);
//! assert!(rtwisted_core::registry::lookup("example.Cache").is_some());
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
}

inventory::collect!(TypeInfo);

/// Registers a persistable type: `register_type!(service "ns.Name", version N)`,
/// `register_type!(factory "ns.Name", version N)` or `register_type!(task "ns.Name", version N)`. The tag must equal the type's typetag name.
#[macro_export]
macro_rules! register_type {
    (service $tag:literal, version $version:literal) => {
        $crate::inventory::submit! {
            $crate::registry::TypeInfo {
                tag: $tag,
                kind: $crate::registry::TypeKind::Service,
                version: $version,
            }
        }
    };
    (task $tag:literal, version $version:literal) => {
        $crate::inventory::submit! {
            $crate::registry::TypeInfo {
                tag: $tag,
                kind: $crate::registry::TypeKind::Task,
                version: $version,
            }
        }
    };
    (factory $tag:literal, version $version:literal) => {
        $crate::inventory::submit! {
            $crate::registry::TypeInfo {
                tag: $tag,
                kind: $crate::registry::TypeKind::Factory,
                version: $version,
            }
        }
    };
}

fn index() -> &'static HashMap<&'static str, &'static TypeInfo> {
    static INDEX: OnceLock<HashMap<&'static str, &'static TypeInfo>> = OnceLock::new();
    INDEX.get_or_init(|| {
        inventory::iter::<TypeInfo>
            .into_iter()
            .map(|info| (info.tag, info))
            .collect()
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
