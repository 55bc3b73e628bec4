//! Writing: an application, its tree, and each child as `{type, name, ...fields}`.

use std::marker::PhantomData;

use serde::ser::{Error as _, Impossible, Serialize, SerializeMap, SerializeStruct, Serializer};

use super::{Catalog, NAME_KEY, TYPE_KEY, Typetag, record};
use crate::application::Application;
use crate::child::Child;
use crate::multi::MultiService;

/// An application to serialize with catalog `C` (see the [module docs](super)).
pub struct Encode<'a, C> {
    app: &'a Application,
    catalog: PhantomData<C>,
}

impl<'a, C: Catalog> Encode<'a, C> {
    /// `app`, to be written with `C`'s built-ins.
    pub fn new(app: &'a Application) -> Self {
        Encode {
            app,
            catalog: PhantomData,
        }
    }
}

impl<C: Catalog> Serialize for Encode<'_, C> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("Application", 4)?;
        state.serialize_field("name", self.app.name())?;
        state.serialize_field("process", self.app.process())?;
        state.serialize_field("persistence", self.app.persistence())?;
        state.serialize_field("services", &Root::<C>::new(self.app.services()))?;
        state.end()
    }
}

impl Serialize for Application {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Encode::<Typetag>::new(self).serialize(serializer)
    }
}

/// The root collection: `{name: null, children: [...]}` (the root has no name; the key stays
/// for the snapshots written before names moved out of services).
struct Root<'a, C> {
    root: &'a MultiService,
    catalog: PhantomData<C>,
}

impl<'a, C> Root<'a, C> {
    fn new(root: &'a MultiService) -> Self {
        Root {
            root,
            catalog: PhantomData,
        }
    }
}

impl<C: Catalog> Serialize for Root<'_, C> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        record(MultiService::TAG);
        let mut state = serializer.serialize_struct("MultiService", 2)?;
        state.serialize_field(NAME_KEY, &None::<&str>)?;
        state.serialize_field("children", &Children::<C>::new(self.root.children()))?;
        state.end()
    }
}

struct Children<'a, C> {
    children: &'a [Child],
    catalog: PhantomData<C>,
}

impl<'a, C> Children<'a, C> {
    fn new(children: &'a [Child]) -> Self {
        Children {
            children,
            catalog: PhantomData,
        }
    }
}

impl<C: Catalog> Serialize for Children<'_, C> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        write_children::<C, S>(self.children, serializer)
    }
}

/// Writes a list of children with catalog `C` (for `serialize_with` in collection types).
pub fn write_children<C: Catalog, S: Serializer>(
    children: &[Child],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(children.iter().map(ChildWriter::<C>::new))
}

impl Serialize for MultiService {
    /// A collection on its own (inside a user's type, say) is `{children: [...]}`; its name is
    /// its parent's business.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("MultiService", 1)?;
        state.serialize_field("children", &Children::<Typetag>::new(self.children()))?;
        state.end()
    }
}

/// One child, written as `{type, name, ...fields}` with catalog `C`.
pub struct ChildWriter<'a, C> {
    child: &'a Child,
    catalog: PhantomData<C>,
}

impl<'a, C> ChildWriter<'a, C> {
    /// `child`, to be written with `C`'s built-ins.
    pub fn new(child: &'a Child) -> Self {
        ChildWriter {
            child,
            catalog: PhantomData,
        }
    }
}

impl<C: Catalog> Serialize for ChildWriter<'_, C> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let service = self.child.service();
        let name = self.child.name();
        let tag = service.type_tag();
        record(tag);
        if let Some(collection) = service.downcast_ref::<MultiService>() {
            let mut map = serializer.serialize_map(Some(3))?;
            map.serialize_entry(TYPE_KEY, MultiService::TAG)?;
            map.serialize_entry(NAME_KEY, &name)?;
            map.serialize_entry("children", &Children::<C>::new(collection.children()))?;
            return map.end();
        }
        if C::writes(service) {
            return C::write(service, FieldsAfterTag::new(tag, Some(name), serializer));
        }
        // typetag writes `type` first; the name goes right after it.
        service.serialize(NameAfterTag { name, serializer })
    }
}

impl Serialize for Child {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ChildWriter::<Typetag>::new(self).serialize(serializer)
    }
}

/// Methods of a serializer that refuse their shape with the message `$what`: each line names
/// a method, its arguments (ignored) and which associated type its `Ok` value has; `<T>`
/// marks a method generic over the value it would write.
macro_rules! refuse {
    ($what:literal: $($name:ident $(<$t:ident>)? ($($arg:ty),*) -> $ok:ident;)*) => {
        $(
            fn $name $(<$t: ?Sized + Serialize>)? (self, $(_: $arg),*)
                -> Result<Self::$ok, Self::Error> {
                Err(Self::Error::custom($what))
            }
        )*
    };
}

/// The part every adapter serializer shares: its associated types (`Impossible` but for the
/// map and struct serializers given), a newtype struct written as what it wraps, and every
/// shape but maps and structs (and unit structs) refused with the message `$what`.
macro_rules! adapter_serializer {
    ($what:literal, map = $map:ty, struct = $fields:ty) => {
        type Ok = S::Ok;
        type Error = S::Error;
        type SerializeSeq = Impossible<S::Ok, S::Error>;
        type SerializeTuple = Impossible<S::Ok, S::Error>;
        type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
        type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
        type SerializeMap = $map;
        type SerializeStruct = $fields;
        type SerializeStructVariant = Impossible<S::Ok, S::Error>;

        fn serialize_newtype_struct<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            value: &T,
        ) -> Result<S::Ok, S::Error> {
            value.serialize(self)
        }

        refuse! { $what:
            serialize_bool(bool) -> Ok;
            serialize_i8(i8) -> Ok;
            serialize_i16(i16) -> Ok;
            serialize_i32(i32) -> Ok;
            serialize_i64(i64) -> Ok;
            serialize_u8(u8) -> Ok;
            serialize_u16(u16) -> Ok;
            serialize_u32(u32) -> Ok;
            serialize_u64(u64) -> Ok;
            serialize_f32(f32) -> Ok;
            serialize_f64(f64) -> Ok;
            serialize_char(char) -> Ok;
            serialize_str(&str) -> Ok;
            serialize_bytes(&[u8]) -> Ok;
            serialize_none() -> Ok;
            serialize_some<T>(&T) -> Ok;
            serialize_unit() -> Ok;
            serialize_unit_variant(&'static str, u32, &'static str) -> Ok;
            serialize_newtype_variant<T>(&'static str, u32, &'static str, &T) -> Ok;
            serialize_seq(Option<usize>) -> SerializeSeq;
            serialize_tuple(usize) -> SerializeTuple;
            serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct;
            serialize_tuple_variant(&'static str, u32, &'static str, usize)
                -> SerializeTupleVariant;
            serialize_struct_variant(&'static str, u32, &'static str, usize)
                -> SerializeStructVariant;
        }
    };
}

/// Writes a built-in struct as a map: `type`, then (for services) `name`, then the struct's
/// fields, so the bytes are those of an internally tagged trait object. Only struct (and unit
/// struct) shapes are accepted; every built-in type is one.
pub struct FieldsAfterTag<'a, S> {
    tag: &'static str,
    name: Option<Option<&'a str>>,
    serializer: S,
}

impl<'a, S> FieldsAfterTag<'a, S> {
    /// `tag` first, then `name` (when `Some`: services always write it, `null` when unnamed;
    /// factories and tasks pass `None` and have no name key).
    pub fn new(tag: &'static str, name: Option<Option<&'a str>>, serializer: S) -> Self {
        FieldsAfterTag {
            tag,
            name,
            serializer,
        }
    }

    fn prefix(&self) -> usize {
        1 + usize::from(self.name.is_some())
    }
}

impl<S: Serializer> Serializer for FieldsAfterTag<'_, S> {
    adapter_serializer!(
        "a built-in type must serialize as a struct",
        map = Impossible<S::Ok, S::Error>,
        struct = StructAsMap<S::SerializeMap>
    );

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Err(S::Error::custom(
            "a built-in type must serialize as a struct",
        ))
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<S::Ok, S::Error> {
        let prefix = self.prefix();
        let mut map = self.serializer.serialize_map(Some(prefix))?;
        map.serialize_entry(TYPE_KEY, self.tag)?;
        if let Some(name) = self.name {
            map.serialize_entry(NAME_KEY, &name)?;
        }
        map.end()
    }

    fn serialize_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let prefix = self.prefix();
        let mut map = self.serializer.serialize_map(Some(len + prefix))?;
        map.serialize_entry(TYPE_KEY, self.tag)?;
        if let Some(name) = self.name {
            map.serialize_entry(NAME_KEY, &name)?;
        }
        Ok(StructAsMap { map })
    }
}

/// The fields of a struct, written as entries of a map.
pub struct StructAsMap<M> {
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

/// Under typetag's internally tagged serializer: typetag asks for a map one longer than the
/// type's fields and writes `type` as its first entry; this adds `name` right after it.
struct NameAfterTag<'a, S> {
    name: Option<&'a str>,
    serializer: S,
}

impl<'a, S: Serializer> Serializer for NameAfterTag<'a, S> {
    adapter_serializer!(
        "a service must serialize as a map through typetag",
        map = NameAfterFirst<'a, S::SerializeMap>,
        struct = Impossible<S::Ok, S::Error>
    );

    fn serialize_unit_struct(self, _: &'static str) -> Result<S::Ok, S::Error> {
        Err(S::Error::custom(
            "a service must serialize as a map through typetag",
        ))
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        Err(S::Error::custom(
            "a service must serialize as a map through typetag",
        ))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        let map = self.serializer.serialize_map(len.map(|len| len + 1))?;
        Ok(NameAfterFirst {
            map,
            name: Some(self.name),
            entries: 0,
        })
    }
}

/// A map that gets `name` after its first entry.
struct NameAfterFirst<'a, M> {
    map: M,
    /// The name still to write.
    name: Option<Option<&'a str>>,
    entries: usize,
}

impl<M: SerializeMap> NameAfterFirst<'_, M> {
    fn after_entry(&mut self) -> Result<(), M::Error> {
        self.entries += 1;
        if self.entries == 1
            && let Some(name) = self.name.take()
        {
            self.map.serialize_entry(NAME_KEY, &name)?;
        }
        Ok(())
    }
}

impl<M: SerializeMap> SerializeMap for NameAfterFirst<'_, M> {
    type Ok = M::Ok;
    type Error = M::Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), M::Error> {
        self.map.serialize_key(key)
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), M::Error> {
        self.map.serialize_value(value)?;
        self.after_entry()
    }

    fn serialize_entry<K: ?Sized + Serialize, V: ?Sized + Serialize>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), M::Error> {
        self.map.serialize_entry(key, value)?;
        self.after_entry()
    }

    fn end(mut self) -> Result<M::Ok, M::Error> {
        if let Some(name) = self.name.take() {
            self.map.serialize_entry(NAME_KEY, &name)?;
        }
        self.map.end()
    }
}
