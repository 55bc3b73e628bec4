//! Trait objects other than services (protocol factories, timer tasks, ...): `{type, ...fields}`
//! with a fast path for a family's built-in types.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::read::{Pending, Replay, Text};
use super::{TYPE_KEY, record};

/// A family of typetag'd trait objects with built-in members read by a `match` on the tag.
pub trait TaggedFamily: 'static {
    /// The trait object, e.g. `dyn ProtocolFactory`.
    type Object: ?Sized + 'static;

    /// How errors name the trait (`dyn ProtocolFactory`).
    const EXPECTING: &'static str;

    /// True when the family reads `tag` itself.
    fn has(tag: &str) -> bool;

    /// Reads the built-in member tagged `tag` from the rest of its map.
    fn read<'de, A: MapAccess<'de>>(tag: &str, map: A) -> Result<Box<Self::Object>, A::Error>;

    /// typetag's own reading of the trait object (for every other member).
    fn typetag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Box<Self::Object>, D::Error>;
}

/// Reads one member of family `F`: built-ins through [`TaggedFamily::read`], the rest through
/// typetag, recording the tag either way.
pub struct TaggedSeed<F>(PhantomData<F>);

impl<F> TaggedSeed<F> {
    /// A reader for family `F`.
    pub fn new() -> Self {
        TaggedSeed(PhantomData)
    }
}

impl<F> Default for TaggedSeed<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'de, F: TaggedFamily> DeserializeSeed<'de> for TaggedSeed<F> {
    type Value = Box<F::Object>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: TaggedFamily> Visitor<'de> for TaggedSeed<F> {
    type Value = Box<F::Object>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(F::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let pending = match map.next_key::<Text<'de>>()?.map(Text::into_cow) {
            None => Pending::Nothing,
            Some(key) if key == TYPE_KEY => Pending::Tag(map.next_value::<Text<'de>>()?.into_cow()),
            Some(key) => Pending::Key(key),
        };
        if let Pending::Tag(tag) = &pending {
            record(tag);
            if F::has(tag) {
                return F::read(tag, StringKeys(map));
            }
        }
        F::typetag(MapAccessDeserializer::new(Replay::new(
            pending,
            StringKeys(map),
        )))
    }
}

/// A map whose keys reach the type as strings (what typetag hands its types too).
pub(crate) struct StringKeys<A>(pub(crate) A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for StringKeys<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.0.next_key::<Text<'de>>()? {
            None => Ok(None),
            Some(key) => super::read::cow_str(key.into_cow(), seed).map(Some),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// Reads a family member from any deserializer (for `deserialize_with`).
pub fn read_tagged<'de, F: TaggedFamily, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Box<F::Object>, D::Error> {
    TaggedSeed::<F>::new().deserialize(deserializer)
}
