//! Starlark values to the JSON a snapshot holds, so any registered type can be built through
//! serde from what a TAC file wrote, with no bindings per type.

use serde_json::{Map, Value as Json};
use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::tuple::TupleRef;
use starlark::values::{Value, ValueLike};

use super::blueprint::lock;
use super::handle::Handle;

/// The JSON of a Starlark value: None, bools, numbers, strings, lists, tuples, dicts with string
/// keys, and TAC objects (a factory given to a service is copied into it).
pub fn to_json(value: Value) -> anyhow::Result<Json> {
    if let Some(handle) = value.downcast_ref::<Handle>() {
        let mut blueprint = lock(handle.blueprint())?;
        let json = blueprint.to_json(handle.id())?;
        blueprint.mark_given(handle.id())?;
        return Ok(json);
    }
    if let Some(json) = super::python::python_json(value) {
        return json;
    }
    let items = ListRef::from_value(value)
        .map(|list| list.content())
        .or_else(|| TupleRef::from_value(value).map(|tuple| tuple.content()));
    if let Some(items) = items {
        return items
            .iter()
            .map(|item| to_json(*item))
            .collect::<anyhow::Result<_>>()
            .map(Json::Array);
    }
    if let Some(dict) = DictRef::from_value(value) {
        let mut object = Map::new();
        for (key, item) in dict.iter() {
            let Some(key) = key.unpack_str() else {
                anyhow::bail!(
                    "dict keys given to rtwisted must be strings, not {}",
                    key.get_type()
                );
            };
            object.insert(key.to_owned(), to_json(item)?);
        }
        return Ok(Json::Object(object));
    }
    match value.get_type() {
        "NoneType" | "bool" | "int" | "float" | "string" => value.to_json_value(),
        "function" => anyhow::bail!(
            "a function cannot be stored in a snapshot: rtwistd runs no Starlark after the file is read; {}",
            super::python::BRING_YOUR_OWN
        ),
        other => anyhow::bail!("a {other} cannot be stored in a snapshot"),
    }
}
