//! The fast path for what ships built in: a `match` on the tag for every built-in type.
//!
//! [`BuiltIns`] is the [`Catalog`] of built-in services that snapshot reads and writes use (the
//! codec of `rtwisted-core` asks it before it falls back to typetag); the modules [`factory`],
//! [`datagram`] and [`task`] do the same for the trait objects that built-in services hold, as
//! `#[serde(with = ...)]` helpers. Your own types that hold one of these trait objects can use
//! them too, so that the objects' tags are in the snapshot's manifest:
//!
//! ```
//! use std::sync::Arc;
//! use rtwisted_services::protocols::{Echo, ProtocolFactory};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Holder {
//!     #[serde(with = "rtwisted_services::codec::factory")]
//!     factory: Arc<dyn ProtocolFactory>,
//! }
//! let json = serde_json::to_string(&Holder { factory: Arc::new(Echo::default()) }).unwrap();
//! assert_eq!(json, r#"{"factory":{"type":"rtwisted.Echo"}}"#);
//! ```
//!
//! Every type listed here writes exactly the bytes typetag would write for it (the tests compare
//! the two for every type), so a snapshot does not depend on which path wrote it.

use std::sync::Arc;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess};
use serde::ser::{self, Serialize, Serializer};

use rtwisted_core::Service;
use rtwisted_core::codec::{Catalog, FieldsAfterTag, TaggedFamily, TaggedSeed, record};

use crate::net::{DatagramServer, ReconnectingClient, StreamClient, StreamServer};
use crate::procmon::ProcessMonitor;
use crate::protocols::{
    Chargen, DatagramProtocol, Daytime, Discard, Echo, Kv, PortForward, ProtocolFactory, Qotd, Time,
};
use crate::timer::{Checkpoint, LogLine, RunCommand, TimerService, TimerTask, TouchFile};
#[cfg(feature = "web")]
use crate::web::Site;

/// The built-in services, for the codec of `rtwisted-core`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltIns;

/// Declares a catalog or family's `match`es over a list of types, each with its `TAG`.
macro_rules! built_in_services {
    ([$($ty:ident),+ $(,)?]) => {
        impl Catalog for BuiltIns {
            fn has(tag: &str) -> bool {
                matches!(tag, $($ty::TAG)|+)
            }

            fn read<'de, A: MapAccess<'de>>(
                tag: &str,
                map: A,
            ) -> Result<Box<dyn Service>, A::Error> {
                let fields = MapAccessDeserializer::new(map);
                match tag {
                    $($ty::TAG => Ok(Box::new($ty::deserialize(fields)?)),)+
                    other => Err(de::Error::custom(format_args!(
                        "internal error: '{other}' is not a built-in service"
                    ))),
                }
            }

            fn writes(service: &dyn Service) -> bool {
                let id = (service as &dyn std::any::Any).type_id();
                $(id == std::any::TypeId::of::<$ty>())||+
            }

            fn write<S: Serializer>(service: &dyn Service, serializer: S) -> Result<S::Ok, S::Error> {
                $(
                    if let Some(value) = service.downcast_ref::<$ty>() {
                        return value.serialize(serializer);
                    }
                )+
                Err(ser::Error::custom(format_args!(
                    "internal error: '{}' is not a built-in service",
                    service.type_tag()
                )))
            }
        }
    };
}

built_in_services!([
    StreamServer,
    DatagramServer,
    StreamClient,
    ReconnectingClient,
    TimerService,
    ProcessMonitor,
]);

/// Declares a family of trait objects: its built-in members and its `with` module.
macro_rules! family {
    (
        $(#[$doc:meta])*
        $module:ident, $family:ident, $object:ident, [$($ty:ident),+ $(,)?]
    ) => {
        #[doc = concat!("The built-in members of `dyn ", stringify!($object), "`.")]
        pub struct $family;

        impl TaggedFamily for $family {
            type Object = dyn $object;
            const EXPECTING: &'static str = concat!("dyn ", stringify!($object));

            fn has(tag: &str) -> bool {
                matches!(tag, $($ty::TAG)|+)
            }

            fn read<'de, A: MapAccess<'de>>(
                tag: &str,
                map: A,
            ) -> Result<Box<dyn $object>, A::Error> {
                let fields = MapAccessDeserializer::new(map);
                match tag {
                    $($ty::TAG => Ok(Box::new($ty::deserialize(fields)?)),)+
                    other => Err(de::Error::custom(format_args!(
                        concat!("internal error: '{}' is not a built-in ", stringify!($object)),
                        other
                    ))),
                }
            }

            fn typetag<'de, D: Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Box<dyn $object>, D::Error> {
                <Box<dyn $object>>::deserialize(deserializer)
            }
        }

        $(#[$doc])*
        pub mod $module {
            use super::*;

            /// Writes the trait object: built-ins directly, any other type through typetag.
            pub fn serialize<S: Serializer>(
                object: &Arc<dyn $object>,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                write(&**object, serializer)
            }

            /// Reads the trait object: built-ins directly, any other type through typetag.
            pub fn deserialize<'de, D: Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Arc<dyn $object>, D::Error> {
                use serde::de::DeserializeSeed;
                TaggedSeed::<$family>::new()
                    .deserialize(deserializer)
                    .map(Arc::from)
            }

            /// Writes one object (a built-in with [`FieldsAfterTag`], else typetag).
            pub fn write<S: Serializer>(
                object: &dyn $object,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                let any: &dyn std::any::Any = object;
                $(
                    if let Some(value) = any.downcast_ref::<$ty>() {
                        record($ty::TAG);
                        return value.serialize(FieldsAfterTag::new($ty::TAG, None, serializer));
                    }
                )+
                record(object.typetag_name());
                object.serialize(serializer)
            }
        }
    };
}

#[cfg(not(feature = "web"))]
family!(
    /// `#[serde(with = "rtwisted_services::codec::factory")]` for an `Arc<dyn ProtocolFactory>`.
    factory,
    Factories,
    ProtocolFactory,
    [Echo, Kv, PortForward, Discard, Chargen, Qotd, Daytime, Time]
);

#[cfg(feature = "web")]
family!(
    /// `#[serde(with = "rtwisted_services::codec::factory")]` for an `Arc<dyn ProtocolFactory>`.
    factory,
    Factories,
    ProtocolFactory,
    [Echo, Kv, PortForward, Discard, Chargen, Qotd, Daytime, Time, Site]
);

family!(
    /// `#[serde(with = "rtwisted_services::codec::datagram")]` for an `Arc<dyn DatagramProtocol>`.
    datagram,
    Datagrams,
    DatagramProtocol,
    [Echo, Discard, Chargen, Qotd, Daytime, Time]
);

family!(
    /// `#[serde(with = "rtwisted_services::codec::task")]` for an `Arc<dyn TimerTask>`.
    task,
    Tasks,
    TimerTask,
    [LogLine, RunCommand, TouchFile, Checkpoint]
);

#[cfg(test)]
mod tests;
