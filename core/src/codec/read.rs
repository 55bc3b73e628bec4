//! Reading: an application, its tree, and each child from `{type, name, ...fields}`.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, StrDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};

use super::{Catalog, NAME_KEY, TYPE_KEY, Typetag, With, record};
use crate::application::{Application, PersistenceSettings, ProcessSettings};
use crate::child::Child;
use crate::multi::MultiService;
use crate::service::{Service, validate_name};

/// Reads an [`Application`] with catalog `C` (see the [module docs](super)).
pub struct ApplicationSeed<C>(With<C>);

impl<C: Catalog> ApplicationSeed<C> {
    /// A reader that uses `C`'s built-ins.
    pub fn new() -> Self {
        ApplicationSeed(With::new())
    }
}

impl<C: Catalog> Default for ApplicationSeed<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'de, C: Catalog> DeserializeSeed<'de> for ApplicationSeed<C> {
    type Value = Application;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Application, D::Error> {
        const FIELDS: &[&str] = &["name", "process", "persistence", "services"];
        deserializer.deserialize_struct("Application", FIELDS, self)
    }
}

impl<'de, C: Catalog> Visitor<'de> for ApplicationSeed<C> {
    type Value = Application;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an application")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Application, A::Error> {
        let mut name: Option<String> = None;
        let mut process: Option<ProcessSettings> = None;
        let mut persistence: Option<PersistenceSettings> = None;
        let mut services: Option<MultiService> = None;
        while let Some(key) = map.next_key::<Text<'de>>()?.map(Text::into_cow) {
            match &*key {
                "name" => set_once(&mut name, "name", map.next_value()?)?,
                "process" => set_once(&mut process, "process", map.next_value()?)?,
                "persistence" => set_once(&mut persistence, "persistence", map.next_value()?)?,
                "services" => set_once(
                    &mut services,
                    "services",
                    map.next_value_seed(CollectionSeed::<C>(With::new()))?,
                )?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
        Application::from_parts(
            name,
            process.unwrap_or_default(),
            persistence.unwrap_or_default(),
            services.unwrap_or_default(),
        )
        .map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Application {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ApplicationSeed::<Typetag>::new().deserialize(deserializer)
    }
}

fn set_once<T, E: de::Error>(slot: &mut Option<T>, field: &'static str, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(field));
    }
    *slot = Some(value);
    Ok(())
}

/// Reads a collection: `{children: [...]}` (a `name` key, which roots written before names
/// moved out of services carry as `null`, is ignored).
struct CollectionSeed<C>(With<C>);

impl<'de, C: Catalog> DeserializeSeed<'de> for CollectionSeed<C> {
    type Value = MultiService;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<MultiService, D::Error> {
        deserializer.deserialize_struct("MultiService", &["name", "children"], self)
    }
}

impl<'de, C: Catalog> Visitor<'de> for CollectionSeed<C> {
    type Value = MultiService;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a collection of services")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MultiService, A::Error> {
        MultiService::from_children(read_children_of::<C, _>(map)?).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for MultiService {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CollectionSeed::<Typetag>(With::new()).deserialize(deserializer)
    }
}

/// Reads a list of children with catalog `C` (for `deserialize_with` in collection types).
pub fn read_children<'de, C: Catalog, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Child>, D::Error> {
    ChildrenSeed::<C>(With::new()).deserialize(deserializer)
}

struct ChildrenSeed<C>(With<C>);

impl<'de, C: Catalog> DeserializeSeed<'de> for ChildrenSeed<C> {
    type Value = Vec<Child>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Child>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, C: Catalog> Visitor<'de> for ChildrenSeed<C> {
    type Value = Vec<Child>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a sequence of services")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Child>, A::Error> {
        // serde's own cautious preallocation: at most 1 MiB up front, whatever the hint.
        let cap = seq
            .size_hint()
            .unwrap_or(0)
            .min((1024 * 1024) / std::mem::size_of::<Child>().max(1));
        let mut children = Vec::with_capacity(cap);
        while let Some(child) = seq.next_element_seed(ChildSeed::<C>::new())? {
            children.push(child);
        }
        Ok(children)
    }
}

/// Reads one child, `{type, name, ...fields}`, with catalog `C`.
pub struct ChildSeed<C>(With<C>);

impl<C: Catalog> ChildSeed<C> {
    /// A reader that uses `C`'s built-ins.
    pub fn new() -> Self {
        ChildSeed(With::new())
    }
}

impl<C: Catalog> Default for ChildSeed<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'de, C: Catalog> DeserializeSeed<'de> for ChildSeed<C> {
    type Value = Child;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Child, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Deserialize<'de> for Child {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ChildSeed::<Typetag>::new().deserialize(deserializer)
    }
}

/// What was read of a map before the rest went to the type.
pub(crate) enum Pending<'de> {
    Nothing,
    Tag(Cow<'de, str>),
    Key(Cow<'de, str>),
}

impl<'de, C: Catalog> Visitor<'de> for ChildSeed<C> {
    type Value = Child;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("dyn Service")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Child, A::Error> {
        let mut name = NameSlot::default();
        let pending = loop {
            match map.next_key::<Text<'de>>()?.map(Text::into_cow) {
                None => break Pending::Nothing,
                Some(key) if key == NAME_KEY => name.fill(&mut map)?,
                Some(key) if key == TYPE_KEY => {
                    break Pending::Tag(map.next_value::<Text<'de>>()?.into_cow());
                }
                Some(key) => break Pending::Key(key),
            }
        };
        let service: Box<dyn Service> = match &pending {
            Pending::Tag(tag) if tag == MultiService::TAG => {
                record(MultiService::TAG);
                let children = read_children_of::<C, _>(WithoutName::new(map, &mut name))?;
                Box::new(MultiService::from_children(children).map_err(de::Error::custom)?)
            }
            Pending::Tag(tag) if C::has(tag) => {
                record(tag);
                C::read(tag, WithoutName::new(map, &mut name))?
            }
            _ => {
                if let Pending::Tag(tag) = &pending {
                    record(tag);
                }
                let rest = Replay {
                    pending,
                    map: WithoutName::new(map, &mut name),
                };
                <Box<dyn Service>>::deserialize(MapAccessDeserializer::new(rest))?
            }
        };
        // The name was checked as it was read.
        Ok(Child::from_parts(name.take(), service))
    }
}

/// Reads a collection's map (or, in a child, the rest of it after `type`): its children;
/// other keys are skipped.
fn read_children_of<'de, C: Catalog, A: MapAccess<'de>>(
    mut map: A,
) -> Result<Vec<Child>, A::Error> {
    let mut children: Option<Vec<Child>> = None;
    while let Some(key) = map.next_key::<Text<'de>>()?.map(Text::into_cow) {
        if key == "children" {
            let read = map.next_value_seed(ChildrenSeed::<C>(With::new()))?;
            set_once(&mut children, "children", read)?;
        } else {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(children.unwrap_or_default())
}

/// The `name` of a child, wherever in its map it comes.
#[derive(Default)]
struct NameSlot {
    seen: bool,
    name: Option<String>,
}

impl NameSlot {
    fn fill<'de, A: MapAccess<'de>>(&mut self, map: &mut A) -> Result<(), A::Error> {
        if self.seen {
            return Err(de::Error::duplicate_field(NAME_KEY));
        }
        self.seen = true;
        self.name = map.next_value::<Option<String>>()?;
        if let Some(name) = &self.name {
            validate_name(name).map_err(de::Error::custom)?;
        }
        Ok(())
    }

    fn take(&mut self) -> Option<String> {
        self.name.take()
    }
}

/// The rest of a child's map with its `name` entry taken out (into the slot), so the type reads
/// only its own fields. Keys reach the type as strings.
pub(crate) struct WithoutName<'s, A> {
    map: A,
    name: &'s mut NameSlot,
}

impl<'s, A> WithoutName<'s, A> {
    fn new(map: A, name: &'s mut NameSlot) -> Self {
        WithoutName { map, name }
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutName<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let mut seed = Some(seed);
        loop {
            match self.map.next_key_seed(KeyOrName { seed: &mut seed })? {
                None => return Ok(None),
                Some(Some(key)) => return Ok(Some(key)),
                Some(None) => self.name.fill(&mut self.map)?,
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for WithoutName<'_, A> {
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

/// Reads a key as a string: `name` comes back as `None` (for the slot), any other key is
/// handed to the type's own key seed.
struct KeyOrName<'a, K> {
    seed: &'a mut Option<K>,
}

impl<'de, K: DeserializeSeed<'de>> KeyOrName<'_, K> {
    /// `None` for `name`; any other `key` goes to the type's key seed, read from `text`.
    fn key<E: de::Error>(
        self,
        key: &str,
        text: impl Deserializer<'de, Error = E>,
    ) -> Result<Option<K::Value>, E> {
        if key == NAME_KEY {
            return Ok(None);
        }
        let seed = self
            .seed
            .take()
            .ok_or_else(|| E::custom("a key was read twice"))?;
        seed.deserialize(text).map(Some)
    }
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for KeyOrName<'_, K> {
    type Value = Option<K::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, K: DeserializeSeed<'de>> Visitor<'de> for KeyOrName<'_, K> {
    type Value = Option<K::Value>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a field name")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
        self.key(key, BorrowedStrDeserializer::new(key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        self.key(key, StrDeserializer::new(key))
    }
}

/// A map with what was already read of it put back in front, for typetag.
pub(crate) struct Replay<'de, M> {
    pending: Pending<'de>,
    map: M,
}

impl<'de, M> Replay<'de, M> {
    pub(crate) fn new(pending: Pending<'de>, map: M) -> Self {
        Replay { pending, map }
    }
}

impl<'de, M: MapAccess<'de>> MapAccess<'de> for Replay<'de, M> {
    type Error = M::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, M::Error> {
        match &self.pending {
            Pending::Nothing => self.map.next_key_seed(seed),
            Pending::Tag(_) => seed
                .deserialize(BorrowedStrDeserializer::new(TYPE_KEY))
                .map(Some),
            Pending::Key(key) => cow_str(key.clone(), seed).map(Some),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, M::Error> {
        match std::mem::replace(&mut self.pending, Pending::Nothing) {
            Pending::Tag(tag) => cow_str(tag, seed),
            Pending::Nothing | Pending::Key(_) => self.map.next_value_seed(seed),
        }
    }
}

pub(crate) fn cow_str<'de, S: DeserializeSeed<'de>, E: de::Error>(
    text: Cow<'de, str>,
    seed: S,
) -> Result<S::Value, E> {
    match text {
        Cow::Borrowed(text) => seed.deserialize(BorrowedStrDeserializer::new(text)),
        Cow::Owned(text) => seed.deserialize(serde::de::value::StringDeserializer::new(text)),
    }
}

/// A string borrowed from the input when the input allows it (serde's own `Cow<str>` always
/// copies).
pub(crate) struct Text<'de>(pub(crate) Cow<'de, str>);

impl<'de> Text<'de> {
    pub(crate) fn into_cow(self) -> Cow<'de, str> {
        self.0
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}
