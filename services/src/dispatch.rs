//! Fast paths past `typetag` for the built-in types that make up most trees.
//!
//! typetag reads and writes every trait object through `erased_serde`: each field of each
//! service goes through virtual calls and boxed intermediate values. For the built-in types
//! listed here ([`MultiService`], [`StreamServer`], [`Echo`]) this module does the same work
//! monomorphically, with adapters that mirror typetag's own, so that the bytes written and the
//! errors reported do not change:
//!
//! - **reading**: the map's first key is read as typetag reads it; when it is `type` and the tag
//!   is built in, the rest of the map goes straight to that type's `Deserialize`, keys read as
//!   strings and errors re-worded through `custom`, exactly as typetag's `MapWithStringKeys` and
//!   `FnApply` do. Any other tag, a map whose first key is not `type`, or an empty map goes to
//!   typetag itself, with what was already read replayed in front of the rest of the map, so
//!   user types (registered only with typetag) load exactly as before;
//! - **writing**: a built-in type is written through a monomorphic copy of typetag's
//!   `InternallyTaggedSerializer` (a struct becomes a map whose first entry is `type`); any
//!   other type goes through typetag.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use serde::de::value::{
    BorrowedStrDeserializer, MapAccessDeserializer, StrDeserializer, StringDeserializer,
};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Impossible, Serialize, SerializeMap, SerializeStruct, Serializer};
use serde::{Deserialize, forward_to_deserialize_any};

use crate::net::{DatagramServer, ReconnectingClient, StreamClient, StreamServer};
use crate::procmon::ProcessMonitor;
use crate::protocols::{
    Chargen, DatagramProtocol, Daytime, Discard, Echo, Kv, PortForward, ProtocolFactory, Qotd, Time,
};
use crate::timer::Checkpoint;
use crate::timer::{LogLine, RunCommand, TimerService, TimerTask, TouchFile};
use rtwisted_core::multi::MultiService;
use rtwisted_core::service::Service;
use rtwisted_core::tree::TYPE_KEY;

/// The typetag name of [`MultiService`].
pub(crate) const MULTI_SERVICE: &str = "rtwisted.MultiService";
/// The typetag name of [`StreamServer`].
pub(crate) const STREAM_SERVER: &str = "rtwisted.StreamServer";
/// The typetag name of [`Echo`] as a protocol factory.
pub(crate) const ECHO: &str = "rtwisted.Echo";

/// The most built-in types one family may list (the size of its table of verdicts).
const MAX_BUILT_IN: usize = 16;

/// One family of typetag'd trait objects: how typetag names it, how typetag reads it, and
/// which of its types are read directly.
trait Family: 'static {
    /// The trait object.
    type Object: ?Sized + 'static;
    /// The trait's name, as typetag words its errors (`dyn Service`).
    const TRAIT: &'static str;
    /// The tags of the types read directly, in the order [`Family::build`] numbers them.
    const BUILT_IN: &'static [&'static str];

    /// For each built-in tag, whether typetag itself resolves it (it does, unless another
    /// type claims the same tag, which typetag refuses); found once per process.
    fn verdicts() -> &'static [OnceLock<bool>];

    /// Builds built-in type number `index` from the rest of its map.
    fn build<'de, A: MapAccess<'de>>(index: usize, map: A) -> Result<Box<Self::Object>, A::Error>;

    /// typetag's own deserialization of the trait object.
    fn typetag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Box<Self::Object>, D::Error>;

    /// Writes `object` through the fast path when its type is built in, else through typetag.
    fn write<S: Serializer>(object: &Self::Object, serializer: S) -> Result<S::Ok, S::Error>;
}

/// Declares a family: its trait object, the name typetag gives the trait, and its built-in
/// types with their tags (each must be the type's typetag name; the tests check every one).
macro_rules! family {
    ($family:ident, $object:ty, $trait_name:literal, [$($ty:ty => $tag:expr),+ $(,)?]) => {
        struct $family;

        impl Family for $family {
            type Object = $object;
            const TRAIT: &'static str = $trait_name;
            const BUILT_IN: &'static [&'static str] = &[$($tag),+];

            fn verdicts() -> &'static [OnceLock<bool>] {
                static VERDICTS: [OnceLock<bool>; MAX_BUILT_IN] =
                    [const { OnceLock::new() }; MAX_BUILT_IN];
                &VERDICTS
            }

            fn build<'de, A: MapAccess<'de>>(
                index: usize,
                map: A,
            ) -> Result<Box<$object>, A::Error> {
                let mut position = 0usize;
                $(
                    if index == position {
                        return Ok(Box::new(direct::<$ty, A>(map)?));
                    }
                    position += 1;
                )+
                Err(de::Error::custom(format_args!(
                    "internal error: no built-in type number {index} of {position}"
                )))
            }

            fn typetag<'de, D: Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Box<$object>, D::Error> {
                <Box<$object>>::deserialize(deserializer)
            }

            fn write<S: Serializer>(object: &$object, serializer: S) -> Result<S::Ok, S::Error> {
                let any: &dyn std::any::Any = object;
                $(
                    if let Some(value) = any.downcast_ref::<$ty>() {
                        return value.serialize(Tagger::new($tag, serializer));
                    }
                )+
                object.serialize(serializer)
            }
        }
    };
}

family!(Services, dyn Service, "Service", [
    StreamServer => STREAM_SERVER,
    MultiService => MULTI_SERVICE,
    DatagramServer => "rtwisted.DatagramServer",
    StreamClient => "rtwisted.StreamClient",
    ReconnectingClient => "rtwisted.ReconnectingClient",
    TimerService => "rtwisted.TimerService",
    ProcessMonitor => "rtwisted.ProcessMonitor",
]);

family!(Factories, dyn ProtocolFactory, "ProtocolFactory", [
    Echo => ECHO,
    Kv => "rtwisted.Kv",
    PortForward => "rtwisted.PortForward",
    Discard => "rtwisted.Discard",
    Chargen => "rtwisted.Chargen",
    Qotd => "rtwisted.Qotd",
    Daytime => "rtwisted.Daytime",
    Time => "rtwisted.Time",
]);

family!(Datagrams, dyn DatagramProtocol, "DatagramProtocol", [
    Echo => ECHO,
    Discard => "rtwisted.Discard",
    Chargen => "rtwisted.Chargen",
    Qotd => "rtwisted.Qotd",
    Daytime => "rtwisted.Daytime",
    Time => "rtwisted.Time",
]);

family!(Tasks, dyn TimerTask, "TimerTask", [
    LogLine => "rtwisted.LogLine",
    RunCommand => "rtwisted.RunCommand",
    TouchFile => "rtwisted.TouchFile",
    Checkpoint => "rtwisted.Checkpoint",
]);

/// Reads a built-in type from the rest of its map as typetag would: through
/// [`RestOfMap`], with an error re-worded through `custom` (typetag's `FnApply` does that).
fn direct<'de, T: Deserialize<'de>, A: MapAccess<'de>>(map: A) -> Result<T, A::Error> {
    T::deserialize(RestOfMap { map }).map_err(de::Error::custom)
}

/// `serde_with`-style reader for a `Vec<Box<dyn Service>>` field: what `Vec`'s own
/// `Deserialize` does, each element read through the fast path.
pub(crate) fn deserialize_services<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Box<dyn Service>>, D::Error> {
    deserializer.deserialize_seq(ObjectsVisitor::<Services>(PhantomData))
}

/// `serde_with`-style writer for a `Vec<Box<dyn Service>>` field.
pub(crate) fn serialize_services<S: Serializer>(
    children: &[Box<dyn Service>],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(children.iter().map(|child| Fast::<Services>(&**child)))
}

/// Declares the `serde_with`-style reader and writer of an `Arc<dyn Trait>` field.
macro_rules! arc_field {
    ($family:ident, $object:ty, $read:ident, $write:ident) => {
        #[doc = concat!("`serde_with`-style reader for an `Arc<", stringify!($object), ">` field.")]
        pub(crate) fn $read<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Arc<$object>, D::Error> {
            ObjectSeed::<$family>(PhantomData)
                .deserialize(deserializer)
                .map(Arc::from)
        }

        #[doc = concat!("`serde_with`-style writer for an `Arc<", stringify!($object), ">` field.")]
        pub(crate) fn $write<S: Serializer>(
            object: &Arc<$object>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            $family::write(&**object, serializer)
        }
    };
}

arc_field!(
    Factories,
    dyn ProtocolFactory,
    deserialize_factory,
    serialize_factory
);
arc_field!(
    Datagrams,
    dyn DatagramProtocol,
    deserialize_datagram,
    serialize_datagram
);
arc_field!(Tasks, dyn TimerTask, deserialize_task, serialize_task);

/// A trait object written through the fast path when its type is built in.
struct Fast<'a, F: Family>(&'a F::Object);

impl<F: Family> Serialize for Fast<'_, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        F::write(self.0, serializer)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Reads a sequence of trait objects, as `Vec`'s `Deserialize` does.
struct ObjectsVisitor<F>(PhantomData<F>);

impl<'de, F: Family> Visitor<'de> for ObjectsVisitor<F> {
    type Value = Vec<Box<F::Object>>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // serde's own cautious preallocation: at most 1 MiB up front, whatever the hint.
        let cap = seq
            .size_hint()
            .unwrap_or(0)
            .min((1024 * 1024) / std::mem::size_of::<Box<F::Object>>().max(1));
        let mut values = Vec::with_capacity(cap);
        while let Some(value) = seq.next_element_seed(ObjectSeed::<F>(PhantomData))? {
            values.push(value);
        }
        Ok(values)
    }
}

/// Reads one trait object.
struct ObjectSeed<F>(PhantomData<F>);

impl<'de, F: Family> DeserializeSeed<'de> for ObjectSeed<F> {
    type Value = Box<F::Object>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        // typetag asks for a map too, so a non-map is refused with the same words.
        deserializer.deserialize_map(ObjectVisitor::<F>(PhantomData))
    }
}

struct ObjectVisitor<F>(PhantomData<F>);

impl<'de, F: Family> Visitor<'de> for ObjectVisitor<F> {
    type Value = Box<F::Object>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "dyn {}", F::TRAIT)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let pending = match map.next_key_seed(KeySeed::<F>(PhantomData))? {
            None => Pending::Nothing,
            Some(Key::Other(key)) => Pending::Key(key),
            Some(Key::Tag) => {
                let (tag, built_in) = map.next_value_seed(TagSeed::<F>(PhantomData))?;
                if let Some(index) = built_in {
                    return F::build(index, map);
                }
                Pending::Tag(tag)
            }
        };
        F::typetag(MapAccessDeserializer::new(Replay { pending, map }))
    }
}

/// The first key of a map, read as typetag's `KeyVisitor` reads it (as a string).
enum Key {
    Tag,
    Other(String),
}

struct KeySeed<F>(PhantomData<F>);

impl<'de, F: Family> DeserializeSeed<'de> for KeySeed<F> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, F: Family> Visitor<'de> for KeySeed<F> {
    type Value = Key;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "a key in dyn {}", F::TRAIT)
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        if key == TYPE_KEY {
            Ok(Key::Tag)
        } else {
            Ok(Key::Other(key.to_owned()))
        }
    }
}

/// A type tag as read: borrowed from the input when the input allows it.
enum Tag<'de> {
    Borrowed(&'de str),
    Owned(String),
}

/// Reads the tag's value as typetag's `MapLookupVisitor` does: a string (anything else is
/// refused with the same words) that typetag resolves (an unknown or ambiguous tag is refused
/// here, with typetag's own words, so that a parser that marks errors with a position marks
/// the same one). Returns the tag and, when it is built in, its number.
struct TagSeed<F>(PhantomData<F>);

impl<F: Family> TagSeed<F> {
    fn check<E: de::Error>(tag: &str) -> Result<Option<usize>, E> {
        if let Some(index) = F::BUILT_IN.iter().position(|built_in| *built_in == tag)
            && F::verdicts()
                .get(index)
                .is_some_and(|verdict| *verdict.get_or_init(|| probe::<F>(tag).is_ok()))
        {
            return Ok(Some(index));
        }
        match probe::<F>(tag) {
            Ok(()) | Err(Probe::Known) => Ok(None),
            Err(Probe::Unknown(expected)) => Err(E::unknown_variant(tag, expected)),
            Err(Probe::Other(message)) => Err(E::custom(message)),
        }
    }
}

impl<'de, F: Family> DeserializeSeed<'de> for TagSeed<F> {
    type Value = (Tag<'de>, Option<usize>);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, F: Family> Visitor<'de> for TagSeed<F> {
    type Value = (Tag<'de>, Option<usize>);

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "dyn {}", F::TRAIT)
    }

    fn visit_borrowed_str<E: de::Error>(self, tag: &'de str) -> Result<Self::Value, E> {
        Ok((Tag::Borrowed(tag), Self::check(tag)?))
    }

    fn visit_str<E: de::Error>(self, tag: &str) -> Result<Self::Value, E> {
        Ok((Tag::Owned(tag.to_owned()), Self::check(tag)?))
    }

    fn visit_string<E: de::Error>(self, tag: String) -> Result<Self::Value, E> {
        let built_in = Self::check(&tag)?;
        Ok((Tag::Owned(tag), built_in))
    }
}

/// Why typetag would not resolve a tag.
#[derive(Debug)]
enum Probe {
    /// typetag resolved it (the probe stops there, before any type's code runs).
    Known,
    /// No type has the tag; these are the tags there are.
    Unknown(&'static [&'static str]),
    /// Anything else typetag said (an ambiguous tag).
    Other(String),
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Known => f.write_str("the tag is known"),
            Probe::Unknown(_) => f.write_str("unknown tag"),
            Probe::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Probe {}

impl de::Error for Probe {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Probe::Other(message.to_string())
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        Probe::Unknown(expected)
    }
}

/// Asks typetag whether it resolves `tag`, by giving it the map `{"type": tag}` and stopping
/// it as soon as it has looked the tag up. `Ok` when it does.
fn probe<F: Family>(tag: &str) -> Result<(), Probe> {
    match F::typetag(ProbeMap {
        tag,
        key_given: false,
    }) {
        Ok(_) | Err(Probe::Known) => Ok(()),
        Err(refused) => Err(refused),
    }
}

/// The map `{"type": tag}`, which ends the read with [`Probe::Known`] once its tag resolved.
struct ProbeMap<'a> {
    tag: &'a str,
    key_given: bool,
}

impl<'de> Deserializer<'de> for ProbeMap<'_> {
    type Error = Probe;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Probe> {
        visitor.visit_map(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> MapAccess<'de> for ProbeMap<'_> {
    type Error = Probe;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Probe> {
        if self.key_given {
            return Ok(None);
        }
        self.key_given = true;
        seed.deserialize(BorrowedStrDeserializer::new(TYPE_KEY))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Probe> {
        seed.deserialize(StrDeserializer::new(self.tag))?;
        Err(Probe::Known)
    }
}

/// What was read of a map before it went to typetag.
enum Pending<'de> {
    /// Nothing: the map was empty.
    Nothing,
    /// A first key other than `type` (its value is still unread).
    Key(String),
    /// The `type` key and its value.
    Tag(Tag<'de>),
    /// The value of the `type` key, whose key was replayed already.
    TagValue(Tag<'de>),
}

/// A map with what was already read of it put back in front.
struct Replay<'de, A> {
    pending: Pending<'de>,
    map: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Replay<'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match std::mem::replace(&mut self.pending, Pending::Nothing) {
            Pending::Key(key) => seed.deserialize(StringDeserializer::new(key)).map(Some),
            Pending::Tag(tag) => {
                self.pending = Pending::TagValue(tag);
                seed.deserialize(BorrowedStrDeserializer::new(TYPE_KEY))
                    .map(Some)
            }
            pending @ Pending::TagValue(_) => {
                // A key asked for before the pending value: keep the value for its turn.
                self.pending = pending;
                self.map.next_key_seed(seed)
            }
            Pending::Nothing => self.map.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        match std::mem::replace(&mut self.pending, Pending::Nothing) {
            Pending::TagValue(Tag::Borrowed(tag)) => {
                seed.deserialize(BorrowedStrDeserializer::new(tag))
            }
            Pending::TagValue(Tag::Owned(tag)) => seed.deserialize(StringDeserializer::new(tag)),
            pending => {
                self.pending = pending;
                self.map.next_value_seed(seed)
            }
        }
    }
}

/// The rest of a tagged map as the deserializer of a built-in struct, as typetag's
/// `MapWithStringKeys` presents it to a struct: keys are read as strings. (Only struct types
/// are read through it.)
struct RestOfMap<A> {
    map: A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for RestOfMap<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for RestOfMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.map.next_key_seed(StringKeySeed { seed })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// Reads a key as a string, whatever the key's own type asks for.
struct StringKeySeed<K> {
    seed: K,
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for StringKeySeed<K> {
    type Value = K::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<K::Value, D::Error> {
        self.seed.deserialize(StringKeyDeserializer {
            delegate: deserializer,
        })
    }
}

struct StringKeyDeserializer<D> {
    delegate: D,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for StringKeyDeserializer<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.delegate.deserialize_str(visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// typetag's internally tagged serializer for struct-shaped types: a struct (or map) becomes a
/// map whose first entry is `type`. Built-in types are all structs, so the other shapes are
/// refused (they are never reached).
struct Tagger<S> {
    variant: &'static str,
    delegate: S,
}

impl<S> Tagger<S> {
    fn new(variant: &'static str, delegate: S) -> Self {
        Tagger { variant, delegate }
    }

    fn not_a_struct<E: ser::Error>(&self) -> E {
        E::custom(format_args!(
            "the built-in type {} did not serialize as a struct",
            self.variant
        ))
    }
}

/// A struct's fields as map entries, after the `type` entry.
struct StructAsMap<M> {
    map: M,
}

impl<M: SerializeMap> SerializeStruct for StructAsMap<M> {
    type Ok = M::Ok;
    type Error = M::Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), M::Error> {
        self.map.serialize_entry(key, value)
    }

    fn end(self) -> Result<M::Ok, M::Error> {
        self.map.end()
    }
}

macro_rules! refuse {
    ($($method:ident($($arg:ty),*);)*) => {
        $(
            fn $method(self, $(_: $arg),*) -> Result<S::Ok, S::Error> {
                Err(self.not_a_struct())
            }
        )*
    };
}

impl<S: Serializer> Serializer for Tagger<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
    type SerializeMap = S::SerializeMap;
    type SerializeStruct = StructAsMap<S::SerializeMap>;
    type SerializeStructVariant = Impossible<S::Ok, S::Error>;

    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let mut map = self.delegate.serialize_map(Some(len + 1))?;
        map.serialize_entry(TYPE_KEY, self.variant)?;
        Ok(StructAsMap { map })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<S::SerializeMap, S::Error> {
        let mut map = self.delegate.serialize_map(len.map(|len| len + 1))?;
        map.serialize_entry(TYPE_KEY, self.variant)?;
        Ok(map)
    }

    refuse! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<S::Ok, S::Error> {
        Err(self.not_a_struct())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(self.not_a_struct())
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(self.not_a_struct())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Err(self.not_a_struct())
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, S::Error> {
        Err(self.not_a_struct())
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        Err(self.not_a_struct())
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        Err(self.not_a_struct())
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        Err(self.not_a_struct())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, factory: Arc<dyn ProtocolFactory>) -> Box<dyn Service> {
        let endpoint = "tcp:7001:interface=127.0.0.1".parse().unwrap();
        Box::new(StreamServer::new(endpoint, factory).named(name).unwrap())
    }

    /// A tree holding one of every built-in type of every family, nested as snapshots nest
    /// them, plus collections at two levels.
    fn tree() -> MultiService {
        let tcp = || "tcp:7001:interface=127.0.0.1".parse().unwrap();
        let udp = || "udp:7001:interface=127.0.0.1".parse().unwrap();
        let to = || "tcp:host=127.0.0.1:port=7001".parse().unwrap();
        let factories: Vec<Arc<dyn ProtocolFactory>> = vec![
            Arc::new(Echo::default()),
            Arc::new(Kv::new(64)),
            Arc::new(PortForward::new(to())),
            Arc::new(Discard::default()),
            Arc::new(Chargen::default()),
            Arc::new(Qotd::new(vec!["q".into()])),
            Arc::new(Daytime::default()),
            Arc::new(Time::default()),
        ];
        let datagrams: Vec<Arc<dyn DatagramProtocol>> = vec![
            Arc::new(Echo::default()),
            Arc::new(Discard::default()),
            Arc::new(Chargen::default()),
            Arc::new(Qotd::new(vec!["q".into()])),
            Arc::new(Daytime::default()),
            Arc::new(Time::default()),
        ];
        let tasks: Vec<Arc<dyn TimerTask>> = vec![
            Arc::new(LogLine {
                message: "m".into(),
            }),
            Arc::new(RunCommand {
                program: "true".into(),
                args: vec!["x".into()],
            }),
            Arc::new(TouchFile { path: "f".into() }),
            Arc::new(Checkpoint {}),
        ];
        let mut web = MultiService::named("web").unwrap();
        for (i, factory) in factories.into_iter().enumerate() {
            web.insert(Box::new(
                StreamServer::new(tcp(), factory)
                    .named(format!("s{i}"))
                    .unwrap(),
            ))
            .unwrap();
        }
        for (i, protocol) in datagrams.into_iter().enumerate() {
            web.insert(Box::new(
                DatagramServer::new(udp(), protocol)
                    .named(format!("d{i}"))
                    .unwrap(),
            ))
            .unwrap();
        }
        for (i, task) in tasks.into_iter().enumerate() {
            web.insert(Box::new(
                TimerService::new(1.5, task)
                    .unwrap()
                    .named(format!("t{i}"))
                    .unwrap(),
            ))
            .unwrap();
        }
        web.insert(Box::new(
            StreamClient::new(to(), Arc::new(Echo::default()))
                .named("client")
                .unwrap(),
        ))
        .unwrap();
        web.insert(Box::new(
            ReconnectingClient::new(to(), Arc::new(Kv::new(8)))
                .named("again")
                .unwrap(),
        ))
        .unwrap();
        web.insert(Box::new(
            ProcessMonitor::named("procmon")
                .unwrap()
                .with_process(crate::procmon::ProcessSpec::new("p", "true"))
                .unwrap(),
        ))
        .unwrap();
        web.insert(Box::new(MultiService::new())).unwrap();
        let mut root = MultiService::new();
        root.insert(Box::new(web)).unwrap();
        root.insert(server("c", Arc::new(Echo::default()))).unwrap();
        root
    }

    #[test]
    fn the_built_in_tags_are_the_typetag_names() {
        let multi: Box<dyn Service> = Box::new(MultiService::new());
        assert_eq!(multi.type_tag(), MULTI_SERVICE);
        assert_eq!(
            server("s", Arc::new(Echo::default())).type_tag(),
            STREAM_SERVER
        );
        assert_eq!(ProtocolFactory::typetag_name(&Echo::default()), ECHO);
        // Every service of the tree is written with its own tag by typetag and by the fast
        // path (compared byte for byte below), and each family's list fits its table.
        let root = tree();
        let web = root.child_at(0).unwrap().collection().unwrap();
        let tags: std::collections::BTreeSet<&str> =
            web.iter().map(|service| service.type_tag()).collect();
        for tag in Services::BUILT_IN {
            assert!(tags.contains(tag), "the test tree lacks {tag}");
        }
        for family in [
            Services::BUILT_IN,
            Factories::BUILT_IN,
            Datagrams::BUILT_IN,
            Tasks::BUILT_IN,
        ] {
            assert!(family.len() <= MAX_BUILT_IN);
            for tag in family {
                assert!(
                    rtwisted_core::registry::lookup(tag).is_some(),
                    "{tag} is not registered"
                );
            }
        }
    }

    #[test]
    fn the_fast_path_writes_what_typetag_writes() {
        let root = tree();
        let web = root.child_at(0).unwrap();
        let mut services = vec![web, root.child_at(1).unwrap()];
        services.extend(web.collection().unwrap().iter());
        for service in services {
            // Each service written both ways (its own level through typetag or not), in each
            // format the project uses.
            let fast = Fast::<Services>(service);
            assert_eq!(
                rmp_serde::to_vec_named(&fast).unwrap(),
                rmp_serde::to_vec_named(service).unwrap(),
                "{}",
                service.type_tag()
            );
            assert_eq!(
                serde_json::to_string_pretty(&fast).unwrap(),
                serde_json::to_string_pretty(service).unwrap()
            );
            assert_eq!(
                serde_json::to_value(&fast).unwrap(),
                serde_json::to_value(service).unwrap()
            );
        }
        let echo: Arc<dyn ProtocolFactory> = Arc::new(Echo::default());
        let mut fast = Vec::new();
        serialize_factory(
            &echo,
            &mut rmp_serde::Serializer::new(&mut fast).with_struct_map(),
        )
        .unwrap();
        assert_eq!(fast, rmp_serde::to_vec_named(&*echo).unwrap());
    }

    #[test]
    fn the_fast_path_reads_every_built_in_type_as_typetag_does() {
        let root: Box<dyn Service> = Box::new(tree());
        for json in [
            serde_json::to_string(&*root).unwrap(),
            serde_json::to_string_pretty(&*root).unwrap(),
        ] {
            let (fast, slow) = both(&json);
            assert_eq!(fast, slow);
            assert_eq!(fast.unwrap(), serde_json::to_string(&*root).unwrap());
        }
        let bytes = rmp_serde::to_vec_named(&*root).unwrap();
        let fast = ObjectSeed::<Services>(PhantomData)
            .deserialize(&mut rmp_serde::Deserializer::new(&bytes[..]))
            .unwrap();
        assert_eq!(rmp_serde::to_vec_named(&*fast).unwrap(), bytes);
    }

    fn both(json: &str) -> (Result<String, String>, Result<String, String>) {
        let show = |service: Box<dyn Service>| serde_json::to_string(&*service).unwrap();
        let fast = ObjectSeed::<Services>(PhantomData)
            .deserialize(&mut serde_json::Deserializer::from_str(json))
            .map(show)
            .map_err(|error| error.to_string());
        let slow = serde_json::from_str::<Box<dyn Service>>(json)
            .map(show)
            .map_err(|error| error.to_string());
        (fast, slow)
    }

    #[test]
    fn the_fast_path_reads_and_refuses_what_typetag_does() {
        for json in [
            r#"{"type": "rtwisted.MultiService", "name": "x", "children": []}"#,
            r#"{"name": "x", "type": "rtwisted.MultiService", "children": []}"#,
            r#"{"type": "rtwisted.StreamServer", "endpoint": "tcp:1", "factory": {"type": "rtwisted.Echo"}}"#,
            r#"{"type": "rtwisted.StreamServer", "endpoint": "tcp:1", "factory": {"type": "rtwisted.Discard"}}"#,
            r#"{"type": "rtwisted.StreamServer", "endpoint": "tcp:99999", "factory": {"type": "rtwisted.Echo"}}"#,
            r#"{"type": "rtwisted.StreamServer", "endpoint": 5, "factory": {"type": "rtwisted.Echo"}}"#,
            r#"{"type": "rtwisted.StreamServer", "endpoint": "tcp:1"}"#,
            r#"{"type": "rtwisted.StreamServer", "endpoint": "tcp:1", "factory": {"type": "acme.Nope"}}"#,
            r#"{"type": "rtwisted.MultiService", "children": [{"type": "acme.Nope"}]}"#,
            r#"{"type": "rtwisted.MultiService", "children": [{"name": "a"}, 3]}"#,
            r#"{"type": "acme.Nope" , "name": "x"}"#,
            r#"{"type": 5}"#,
            r#"{}"#,
            r#"[]"#,
            r#"{"type": "rtwisted.MultiService", "name": "a/b"}"#,
        ] {
            let (fast, slow) = both(json);
            assert_eq!(fast, slow, "{json}");
        }
    }
}
