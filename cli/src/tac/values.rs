//! The Rust types a TAC evaluation hands to Starlark, as bare data definitions.
//!
//! Starlark needs `ProvidesStaticType` on them, an `unsafe` marker trait; its derive is sound
//! for types without lifetime parameters, as these are. The workspace denies unsafe code, and a
//! derive cannot be excused item by item, so the exception is this file, which holds no code:
//! the behaviour of these types lives in `handle.rs` and `builtins.rs`.
#![allow(unsafe_code)]

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::values::NoSerialize;

use super::blueprint::Shared;

/// What builtins find in `Evaluator::extra`: the blueprint they add to.
#[derive(ProvidesStaticType)]
pub struct Context {
    /// The blueprint of this evaluation.
    pub blueprint: Shared,
}

/// A TAC object: the application, a service, a factory or a timer task; a handle naming a
/// node of the blueprint.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Handle {
    /// The node.
    pub(super) id: usize,
    /// What it is, for messages when the blueprint cannot be read.
    pub(super) label: String,
    /// The blueprint the node lives in.
    #[allocative(skip)]
    pub(super) blueprint: Shared,
}

/// A registered type's constructor: `Echo()`, `StreamServer(endpoint=..., factory=...)`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct TypeConstructor {
    /// The type's tag.
    pub(super) tag: &'static str,
}

/// A `twisted.web` resource in a TAC file (`File(path)`, `ReverseProxyResource(...)`,
/// `Data(...)`, `Resource()`): what it serves and the children `putChild` gave it. Its
/// behaviour lives in `web.rs`.
#[cfg(feature = "web")]
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct WebResource {
    /// The resource and its children, shared by every value that names it.
    #[allocative(skip)]
    pub(super) node: std::sync::Arc<std::sync::Mutex<super::web::ResourceNode>>,
}
