//! The machinery behind what a TAC file calls: building any registered type from its fields
//! through serde, servers and clients from strports, plugins from keyword options, and the
//! globals (Starlark's library, Twisted's names from `twisted.rs`, and one constructor per
//! registered type by its short name: `Echo()`, `Kv(max_value_bytes=4096)`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rtwisted_core::registry::{self, TypeKind, short_name};
use rtwisted_core::service::validate_name;
use rtwisted_core::{MultiService, Service};
use rtwisted_services::net::{DatagramServer, ReconnectingClient, StreamClient, StreamServer};
use rtwisted_services::plugin;
use rtwisted_services::protocols::{DatagramProtocol, ProtocolFactory};
use rtwisted_services::strports::{ClientEndpoint, ServerEndpoint};
use rtwisted_services::timer::TimerTask;
use serde_json::{Map, Value as Json, json};
use starlark::collections::SmallMap;
use starlark::environment::{Globals, GlobalsBuilder, LibraryExtension};
use starlark::eval::Evaluator;
use starlark::starlark_simple_value;
use starlark::values::Value;
use starlark::values::none::NoneOr;

use super::blueprint::{Role, Shared, lock};
use super::callable::callable_value;
use super::convert::to_json;
use super::handle::Handle;
use super::python::Imports;

pub use super::values::Context;
use super::values::TypeConstructor;

pub(super) fn blueprint_of(eval: &Evaluator) -> anyhow::Result<Shared> {
    eval.extra
        .and_then(|extra| extra.downcast_ref::<Context>())
        .map(|context| context.blueprint.clone())
        .ok_or_else(|| anyhow::anyhow!("internal error: TAC builtins called outside a TAC file"))
}

/// Types and parts through serde: the JSON is typed as the registered kind (so every field is
/// checked, and defaults filled in) and written back in its canonical form.
pub(super) fn typed(kind: TypeKind, value: Json) -> Result<Json, serde_json::Error> {
    match kind {
        TypeKind::Service => {
            let service: Box<dyn Service> = serde_json::from_value(value)?;
            serde_json::to_value(&service)
        }
        TypeKind::Factory => {
            match serde_json::from_value::<Arc<dyn ProtocolFactory>>(value.clone()) {
                Ok(factory) => serde_json::to_value(&factory),
                Err(first) => match serde_json::from_value::<Arc<dyn DatagramProtocol>>(value) {
                    Ok(protocol) => serde_json::to_value(&protocol),
                    Err(_) => Err(first),
                },
            }
        }
        TypeKind::Task => {
            let task: Arc<dyn TimerTask> = serde_json::from_value(value)?;
            serde_json::to_value(&task)
        }
    }
}

/// Builds a registered type from named fields (already JSON) and adds it to the blueprint.
pub(super) fn construct(
    blueprint: &Shared,
    tag: &str,
    arguments: Vec<(String, Json)>,
) -> anyhow::Result<Handle> {
    let label = short_name(tag).to_owned();
    let info = registry::lookup(tag).ok_or_else(|| {
        anyhow::anyhow!(
            "no type '{tag}' is linked into this binary (known: {})",
            registry::all()
                .iter()
                .map(|info| info.tag)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let mut fields = Map::new();
    fields.insert("type".into(), json!(tag));
    let mut name = None;
    let mut given = Vec::new();
    for (key, value) in arguments {
        if key == "type" {
            anyhow::bail!("{label}(): 'type' is set by the constructor, not an argument");
        }
        if key == "name" && info.kind == TypeKind::Service {
            match value {
                Json::Null => {}
                Json::String(text) => {
                    validate_name(&text)?;
                    name = Some(text);
                }
                other => anyhow::bail!("{label}(): name must be a string, not {other}"),
            }
            continue;
        }
        given.push((key.clone(), value.is_null()));
        fields.insert(key, value);
    }
    let mut canonical = match typed(info.kind, Json::Object(fields)) {
        Ok(Json::Object(canonical)) => canonical,
        Ok(_) => anyhow::bail!("{label}() does not take fields"),
        Err(error) => anyhow::bail!("{label}(): {error}"),
    };
    // Types without `deny_unknown_fields` would drop a misspelt argument silently: anything
    // given that the typed value does not write back was not a field.
    let unknown: Vec<&str> = given
        .iter()
        .filter(|(key, null)| !canonical.contains_key(key) && !null)
        .map(|(key, _)| key.as_str())
        .collect();
    if !unknown.is_empty() {
        let mut known: Vec<&str> = canonical
            .keys()
            .map(String::as_str)
            .filter(|key| *key != "type")
            .collect();
        if info.kind == TypeKind::Service && !known.contains(&"name") {
            // The framework's field: every service can be named.
            known.insert(0, "name");
        }
        anyhow::bail!(
            "{label}() has no field {} (its fields: {})",
            unknown.join(", "),
            known.join(", ")
        );
    }
    canonical.remove("name");
    let role = if tag == MultiService::TAG {
        canonical.remove("children");
        Role::Collection
    } else if info.kind == TypeKind::Service {
        Role::Service
    } else {
        Role::Part
    };
    let id = lock(blueprint)?.add(role, label.clone(), canonical, name);
    Ok(Handle::new(id, label, blueprint.clone()))
}

/// Keyword arguments as JSON fields, in the order written.
pub(super) fn fields(kwargs: SmallMap<String, Value>) -> anyhow::Result<Vec<(String, Json)>> {
    kwargs
        .into_iter()
        .map(|(key, value)| Ok((key, to_json(value)?)))
        .collect()
}

/// The `name` argument as a field, when given.
pub(super) fn name_field(name: NoneOr<&str>) -> Vec<(String, Json)> {
    match name {
        NoneOr::None => Vec::new(),
        NoneOr::Other(name) => vec![("name".to_owned(), json!(name))],
    }
}

/// A server for a strports description: a stream server, or a datagram server for `udp:`.
pub(super) fn server(
    blueprint: &Shared,
    description: &str,
    factory: Value,
    name: NoneOr<&str>,
) -> anyhow::Result<Handle> {
    let endpoint = ServerEndpoint::parse(description)?;
    let (tag, field) = if endpoint.is_stream() {
        (StreamServer::TAG, "factory")
    } else {
        (DatagramServer::TAG, "protocol")
    };
    let mut arguments = vec![
        ("endpoint".to_owned(), json!(endpoint.to_string())),
        (field.to_owned(), to_json(factory)?),
    ];
    arguments.extend(name_field(name));
    construct(blueprint, tag, arguments)
}

/// A client for a strports description; `reconnect` makes it Twisted's `ClientService`.
pub(super) fn client(
    blueprint: &Shared,
    description: &str,
    factory: Value,
    name: NoneOr<&str>,
    reconnect: bool,
) -> anyhow::Result<Handle> {
    let endpoint: ClientEndpoint = description.parse()?;
    let tag = if reconnect {
        ReconnectingClient::TAG
    } else {
        StreamClient::TAG
    };
    let mut arguments = vec![
        ("endpoint".to_owned(), json!(endpoint.to_string())),
        ("factory".to_owned(), to_json(factory)?),
    ];
    arguments.extend(name_field(name));
    construct(blueprint, tag, arguments)
}

/// Escapes a path for a strports description (`\` and `:`).
pub(super) fn escape(path: &str) -> String {
    path.replace('\\', "\\\\").replace(':', "\\:")
}

/// A user or group id from a number or a name looked up on this system.
pub(super) fn id_of(value: Value, lookup: fn(&str) -> Result<u32, String>) -> anyhow::Result<Json> {
    if value.is_none() {
        return Ok(Json::Null);
    }
    if let Some(text) = value.unpack_str() {
        return Ok(json!(lookup(text).map_err(anyhow::Error::msg)?));
    }
    match value.unpack_i32().and_then(|n| u32::try_from(n).ok()) {
        Some(id) => Ok(json!(id)),
        None => anyhow::bail!(
            "a user or group is a name or a number, not {}",
            value.get_type()
        ),
    }
}

/// One line of a plugin's clap error, without its `error: ` prefix.
fn first_line(error: &clap::Error) -> String {
    let text = error.to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// Builds a plugin's service from keyword options, as `rtap save PLUGIN --option value` would.
pub(super) fn from_plugin(
    blueprint: &Shared,
    name: &str,
    kwargs: SmallMap<String, Value>,
) -> anyhow::Result<Handle> {
    let Some(maker) = plugin::find(name) else {
        let known: Vec<&str> = plugin::plugins().iter().map(|maker| maker.name).collect();
        anyhow::bail!("no plugin named '{name}' (plugins: {})", known.join(", "));
    };
    let mut argv = vec![name.to_owned()];
    for (key, value) in kwargs {
        let flag = format!("--{}", key.replace('_', "-"));
        let values: Vec<Value> = match value.unpack_bool() {
            Some(true) => {
                argv.push(flag);
                continue;
            }
            Some(false) => continue,
            None => match starlark::values::list::ListRef::from_value(value) {
                Some(list) => list.iter().collect(),
                None => vec![value],
            },
        };
        for value in values {
            argv.push(flag.clone());
            argv.push(match value.unpack_str() {
                Some(text) => text.to_owned(),
                None => value.to_str(),
            });
        }
    }
    let matches = maker
        .command()
        .try_get_matches_from(&argv)
        .map_err(|error| anyhow::anyhow!("plugin '{name}': {}", first_line(&error)))?;
    let service = (maker.make_service)(&matches)
        .map_err(|error| anyhow::anyhow!("plugin '{name}': {error}"))?;
    let Json::Object(mut fields) = serde_json::to_value(&service)? else {
        anyhow::bail!("plugin '{name}' made a service that is not a record");
    };
    let service_name = fields
        .remove("name")
        .and_then(|name| name.as_str().map(str::to_owned));
    let label = fields
        .get("type")
        .and_then(Json::as_str)
        .map_or("service", short_name)
        .to_owned();
    let id = lock(blueprint)?.add(Role::Service, label.clone(), fields, service_name);
    Ok(Handle::new(id, label, blueprint.clone()))
}

starlark_simple_value!(TypeConstructor);

impl fmt::Display for TypeConstructor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<constructor of {}>", self.tag)
    }
}

callable_value!(
    "rtwisted_constructor",
    TypeConstructor,
    |constructor, args, eval| {
        let label = short_name(constructor.tag);
        if args.positional::<0>(eval.heap()).is_err() {
            return Err(starlark::Error::new_other(anyhow::anyhow!(
                "{label}() takes keyword arguments only, named after its fields"
            )));
        }
        let named = args.names_map()?;
        let result = (|| {
            let blueprint = blueprint_of(eval)?;
            let arguments = named
                .into_iter()
                .map(|(key, value)| Ok((key.as_str().to_owned(), to_json(value)?)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            construct(&blueprint, constructor.tag, arguments)
        })();
        match result {
            Ok(handle) => Ok(eval.heap().alloc(handle)),
            Err(error) => Err(starlark::Error::new_other(error)),
        }
    }
);

/// Twisted's constructors that share a name with a registered type, and win.
const TWISTED_NAMES: &[&str] = &["MultiService", "TimerService", "Site"];

/// The globals of a TAC file: Starlark's standard library (with `struct`, `set`, `map`,
/// `filter`, `partial`, `print` to stderr, `json` and type annotations), Twisted's names, one
/// constructor per registered type not already named, and the modules import lines bind
/// (returned beside the globals, whose heap holds them).
pub fn globals() -> (Globals, Imports) {
    let mut builder = GlobalsBuilder::extended_by(&[
        LibraryExtension::StructType,
        LibraryExtension::SetType,
        LibraryExtension::Map,
        LibraryExtension::Filter,
        LibraryExtension::Partial,
        LibraryExtension::Print,
        LibraryExtension::Json,
        LibraryExtension::Typing,
    ])
    .with(super::twisted::twisted_names)
    .with(super::python::import_builtin);
    #[cfg(feature = "web")]
    {
        builder = builder.with(super::web::web_names);
    }
    let pool = GlobalsBuilder::new().with(super::twisted::twisted_names);
    // twisted.web's names are members of its modules too (python/mod.rs lists them).
    #[cfg(feature = "web")]
    let pool = pool.with(super::web::web_names);
    let pool = pool.build();
    let imports = super::python::build(&mut builder, &pool);
    let mut short_names: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
    for info in registry::all() {
        short_names
            .entry(short_name(info.tag))
            .or_default()
            .push(info.tag);
    }
    for (short, tags) in short_names {
        // Twisted's own constructors keep their names; a short name two tags share is reached
        // through make("ns.Type").
        if let [tag] = tags[..]
            && !TWISTED_NAMES.contains(&short)
        {
            builder.set(short, TypeConstructor { tag });
        }
    }
    (builder.build(), imports)
}
