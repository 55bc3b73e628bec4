//! Which catalog of built-in types snapshots are read and written with.
//!
//! The codec of `rtwisted-core` writes and reads a tree with a [`Catalog`]: a fast `match` on
//! the tags of the built-in types, typetag for every other type. A binary chooses its catalog
//! once, at link time, by registering it (the `rtwisted-cli` crate registers the built-ins of
//! `rtwisted-services`, so `rtap`, `rtwistd` and every binary built on them use it):
//!
//! ```
//! use rtwisted_core::codec::Typetag;
//! use rtwisted_persist::codec::{CatalogCodec, Registered};
//! rtwisted_core::inventory::submit! { Registered(&CatalogCodec::<Typetag>::NEW) }
//! ```
//!
//! With none registered, snapshots go through typetag alone: the same bytes, only slower.

use std::marker::PhantomData;

use rtwisted_core::Application;
use rtwisted_core::codec::{ApplicationSeed, Catalog, Encode, Typetag};
use serde::de::DeserializeSeed;

/// Encodes and decodes applications in the formats snapshots use.
pub trait SnapshotCodec: Sync {
    /// MessagePack with named fields (the tap payload).
    fn encode_msgpack(&self, app: &Application) -> Result<Vec<u8>, rmp_serde::encode::Error>;
    /// Reads a tap payload.
    fn decode_msgpack(&self, bytes: &[u8]) -> Result<Application, rmp_serde::decode::Error>;
    /// Pretty JSON (the tas payload).
    fn encode_json_pretty(&self, app: &Application) -> Result<String, serde_json::Error>;
    /// Reads a tas payload.
    fn decode_json(&self, text: &str) -> Result<Application, serde_json::Error>;
    /// Reads an application from generic data (after upgrade steps rewrote it).
    fn decode_value(&self, value: serde_json::Value) -> Result<Application, serde_json::Error>;
}

/// The [`SnapshotCodec`] of catalog `C`.
pub struct CatalogCodec<C>(PhantomData<fn() -> C>);

impl<C> CatalogCodec<C> {
    /// The codec, as a constant (for [`Registered`]).
    pub const NEW: Self = CatalogCodec(PhantomData);
}

impl<C: Catalog> SnapshotCodec for CatalogCodec<C> {
    fn encode_msgpack(&self, app: &Application) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec_named(&Encode::<C>::new(app))
    }

    fn decode_msgpack(&self, bytes: &[u8]) -> Result<Application, rmp_serde::decode::Error> {
        let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes);
        ApplicationSeed::<C>::new().deserialize(&mut deserializer)
    }

    fn encode_json_pretty(&self, app: &Application) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(&Encode::<C>::new(app))
    }

    fn decode_json(&self, text: &str) -> Result<Application, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let app = ApplicationSeed::<C>::new().deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(app)
    }

    fn decode_value(&self, value: serde_json::Value) -> Result<Application, serde_json::Error> {
        ApplicationSeed::<C>::new().deserialize(value)
    }
}

/// A binary's choice of codec, registered with `inventory::submit!`.
pub struct Registered(pub &'static dyn SnapshotCodec);

rtwisted_core::inventory::collect!(Registered);

/// The registered codec (the first one, if several are), else typetag alone.
pub fn codec() -> &'static dyn SnapshotCodec {
    static TYPETAG: CatalogCodec<Typetag> = CatalogCodec::NEW;
    rtwisted_core::inventory::iter::<Registered>
        .into_iter()
        .next()
        .map_or(&TYPETAG as &dyn SnapshotCodec, |registered| registered.0)
}
