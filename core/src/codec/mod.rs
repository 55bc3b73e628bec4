//! The codec: how an [`Application`] and its tree become serde data, and back.
//!
//! A snapshot holds each service as one map: `type` (the tag), `name` (the name its parent
//! knows it by, which the framework owns), then the service's own fields. The codec writes and
//! reads that shape around the service's own `Serialize`/`Deserialize`:
//!
//! - **Built-in types** are named by a [`Catalog`]: a plain `match` on the tag that reads and
//!   writes each type through its own serde impl, without typetag's type-erased path. The
//!   catalog of what ships built in is `rtwisted_services::codec::BuiltIns`; a tree written or
//!   read with [`Typetag`] (no built-ins) has the same bytes, only slower.
//! - **Every other type** (a user's crate's) goes through typetag, as `#[typetag::serde]`
//!   promises; the codec adds `name` after the tag typetag writes, and takes it out again before
//!   the type reads its fields.
//! - **The manifest** is what was written: every trait object the codec writes or reads
//!   records its tag while [`recording`] runs ([`record`]), so a snapshot's manifest is never
//!   guessed from the shape of the data.
//!
//! Entry points: [`Encode`] (serializes an application with a catalog) and [`ApplicationSeed`]
//! (deserializes one). `Application`, `MultiService` and [`Child`](crate::Child) implement
//! `Serialize`/`Deserialize` with [`Typetag`], so `serde_json::to_value(&app)` works too.
//!
//! ```
//! use rtwisted_core::{Application, MultiService};
//! use rtwisted_core::codec::{self, ApplicationSeed, Encode, Typetag};
//! use serde::de::DeserializeSeed;
//! let mut app = Application::new("shop").unwrap();
//! app.services_mut().insert_named("web", Box::new(MultiService::new())).unwrap();
//! let (json, tags) = codec::recording(|| serde_json::to_string(&Encode::<Typetag>::new(&app)));
//! let json = json.unwrap();
//! assert!(json.contains(r#""type":"rtwisted.MultiService","name":"web","children":[]"#));
//! assert_eq!(tags, ["rtwisted.MultiService"]);
//! let back = ApplicationSeed::<Typetag>::new()
//!     .deserialize(&mut serde_json::Deserializer::from_str(&json))
//!     .unwrap();
//! assert_eq!(back.services().get("web").unwrap().name(), Some("web"));
//! ```

mod read;
mod tagged;
mod write;

use std::cell::RefCell;
use std::marker::PhantomData;

use serde::de::MapAccess;
use serde::ser::Serializer;

use crate::service::Service;

pub use read::{ApplicationSeed, ChildSeed, read_children};
pub use tagged::{TaggedFamily, TaggedSeed, read_tagged};
pub use write::{ChildWriter, Encode, FieldsAfterTag, write_children};

/// The key that holds a trait object's type tag.
pub const TYPE_KEY: &str = "type";
/// The key that holds a service's name.
pub const NAME_KEY: &str = "name";

/// Built-in service types read and written without typetag: a `match` on the tag.
///
/// Implemented by a marker type. [`MultiService`](crate::MultiService) is handled by the codec
/// itself (its children need the catalog too), so a catalog names the other types.
pub trait Catalog: 'static {
    /// True when this catalog reads and writes services tagged `tag`.
    fn has(tag: &str) -> bool;

    /// True when this catalog writes `service` (by default: when it [`has`](Catalog::has) its
    /// tag; a catalog may answer faster from the type).
    fn writes(service: &dyn Service) -> bool {
        Self::has(service.type_tag())
    }

    /// Reads the service tagged `tag` from the rest of its map (`type` and `name` are already
    /// taken out). Called only when [`has`](Catalog::has) said yes.
    fn read<'de, A: MapAccess<'de>>(tag: &str, map: A) -> Result<Box<dyn Service>, A::Error>;

    /// Writes `service` (which [`writes`](Catalog::writes) said yes to) with its own `Serialize`:
    /// `serializer` is a [`FieldsAfterTag`], which puts `type` and `name` in front of the
    /// struct's fields.
    fn write<S: Serializer>(service: &dyn Service, serializer: S) -> Result<S::Ok, S::Error>;
}

/// The catalog with no built-ins: every type goes through typetag.
#[derive(Debug, Clone, Copy, Default)]
pub struct Typetag;

impl Catalog for Typetag {
    fn has(_tag: &str) -> bool {
        false
    }

    fn read<'de, A: MapAccess<'de>>(tag: &str, _map: A) -> Result<Box<dyn Service>, A::Error> {
        Err(serde::de::Error::custom(format_args!(
            "internal error: the typetag catalog has no built-in '{tag}'"
        )))
    }

    fn write<S: Serializer>(service: &dyn Service, _serializer: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(format_args!(
            "internal error: the typetag catalog has no built-in '{}'",
            service.type_tag()
        )))
    }
}

/// A marker for a catalog in generic code.
pub(crate) struct With<C>(PhantomData<C>);

impl<C> With<C> {
    pub(crate) const fn new() -> Self {
        With(PhantomData)
    }
}

impl<C> Clone for With<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for With<C> {}

/// The tags seen by one [`recording`], in the order first seen. A list, searched from the
/// start: a tree holds a handful of types (only registered tags get this far), so a search is
/// a few length compares, cheaper than hashing the tag.
#[derive(Default)]
struct Recorded {
    tags: Vec<String>,
}

thread_local! {
    /// The tags seen by the [`recording`] running on this thread, if one is.
    static RECORDED: RefCell<Option<Recorded>> = const { RefCell::new(None) };
}

/// Notes that a trait object tagged `tag` was written or read. Every writer and reader of a
/// trait object calls this (the codec for services; `rtwisted-services` for factories, tasks
/// and datagram protocols); outside [`recording`] it does nothing.
///
/// serde gives a `Serialize` impl no way to pass state to the impls it calls, so the recording
/// is per thread, and lasts exactly as long as the [`recording`] call.
pub fn record(tag: &str) {
    RECORDED.with(|recorded| {
        if let Some(recorded) = recorded.borrow_mut().as_mut()
            && !recorded.tags.iter().any(|seen| seen == tag)
        {
            recorded.tags.push(tag.to_owned());
        }
    });
}

/// Runs `work` (a serialization or a deserialization) and returns its result with every tag
/// [`record`]ed meanwhile, sorted. Recordings do not nest: an inner one takes the tags.
pub fn recording<R>(work: impl FnOnce() -> R) -> (R, Vec<String>) {
    struct Reset(Option<Recorded>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let outer = self.0.take();
            RECORDED.with(|recorded| *recorded.borrow_mut() = outer);
        }
    }
    let outer = RECORDED.with(|recorded| recorded.borrow_mut().replace(Recorded::default()));
    let reset = Reset(outer);
    let result = work();
    let tags = RECORDED.with(|recorded| recorded.borrow_mut().take());
    drop(reset);
    let mut tags = tags.unwrap_or_default().tags;
    tags.sort();
    (result, tags)
}
