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

/// What builtins find in `Evaluator::extra`: the blueprint they add to, and what the import
/// lines of every file bind.
#[derive(ProvidesStaticType)]
pub struct Context {
    /// The blueprint of this evaluation.
    pub blueprint: Shared,
    /// The modules, and the bindings of the import lines translated so far.
    pub imports: std::rc::Rc<super::python::Imports>,
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

/// A Python module (or package) a TAC file imports: `twisted.application.service`, `os`. Its
/// attributes are its members and its submodules.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct TwistedModule {
    /// The dotted name.
    pub(super) name: &'static str,
    /// Members and submodules, by name.
    #[allocative(skip)]
    pub(super) attributes: Vec<(&'static str, starlark::values::FrozenValue)>,
}

/// A Twisted protocol class, such as `wire.Echo`: what a factory's `protocol` is set to.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct ProtocolClass {
    /// Which one.
    #[allocative(skip)]
    pub(super) spec: &'static super::python::ProtocolSpec,
}

/// One of Twisted's factory classes (`protocol.Factory`, `ServerFactory`, `ClientFactory`):
/// calling it makes a factory whose `protocol` is set afterwards.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct FactoryClass {
    /// `Factory`, `ServerFactory` or `ClientFactory`.
    pub(super) name: &'static str,
}

/// `os.environ`: environment variables read one by one through the TAC file's one door.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Environ;

/// `twisted.internet.reactor`: it can be passed where Twisted wants it
/// (`serverFromString(reactor, ...)`), and refuses to be driven.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Reactor;

/// `reactor.NAME`: calling it fails, naming it.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct ReactorCall {
    /// The attribute.
    pub(super) name: String,
}

/// An endpoint made by `twisted.internet.endpoints`: a server's or a client's, held as its
/// canonical strports description.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Endpoint {
    /// True for a server endpoint.
    pub(super) server: bool,
    /// The canonical description.
    pub(super) description: String,
}

/// A context factory of `twisted.internet.ssl`: the TLS side of `SSLServer` or `SSLClient`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct ContextFactory {
    /// `DefaultOpenSSLContextFactory(key, certificate)`: the server's key and certificate
    /// files; `None` for `ClientContextFactory()`.
    pub(super) server: Option<(String, String)>,
}

/// `sob.IPersistable(application)`: its `save` is the checkpoint task.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Persistable;

/// `sob.IPersistable(application).save`: given to `TimerService`, a checkpoint.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct PersistableSave;

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
