//! The Starlark values behind Twisted's Python names: modules, protocol classes and the factory
//! classes (the others are in `system.rs`); and what the Python values are where rtwisted data
//! is wanted.
#![allow(non_snake_case)] // Twisted's method names, as a TAC file from Twisted spells them.

use std::fmt;

use rtwisted_core::registry::TypeKind;
use rtwisted_services::timer::Checkpoint;
use serde_json::{Value as Json, json};
use starlark::environment::{Methods, MethodsBuilder};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::{Heap, StarlarkValue, Value, ValueLike, starlark_value};

use super::super::blueprint::lock;
use super::super::builtins::{blueprint_of, typed};
use super::super::callable::{callable_value, refused};
use super::super::handle::Handle;
use super::super::values::{
    ContextFactory, Endpoint, Environ, FactoryClass, Persistable, PersistableSave, ProtocolClass,
    Reactor, ReactorCall, TwistedModule,
};
use super::system::NO_REACTOR;
use super::{BRING_YOUR_OWN, ProtocolSpec};

starlark_simple_value!(TwistedModule);
starlark_simple_value!(ProtocolClass);
starlark_simple_value!(FactoryClass);
starlark_simple_value!(Environ);
starlark_simple_value!(Reactor);
starlark_simple_value!(ReactorCall);
starlark_simple_value!(Endpoint);
starlark_simple_value!(ContextFactory);
starlark_simple_value!(Persistable);
starlark_simple_value!(PersistableSave);

fn other(error: anyhow::Error) -> starlark::Error {
    starlark::Error::new_other(error)
}

impl fmt::Display for TwistedModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<module '{}'>", self.name)
    }
}

#[starlark_value(type = "module")]
impl<'v> StarlarkValue<'v> for TwistedModule {
    fn get_attr(&self, attribute: &str, _heap: Heap<'v>) -> Option<Value<'v>> {
        self.attributes
            .iter()
            .find(|(name, _)| *name == attribute)
            .map(|(_, value)| value.to_value())
    }

    fn dir_attr(&self) -> Vec<String> {
        self.attributes
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect()
    }
}

impl ProtocolClass {
    /// `wire.Echo`, as a TAC file writes it.
    fn short(&self) -> String {
        let module = self
            .spec
            .module
            .rsplit('.')
            .next()
            .unwrap_or(self.spec.module);
        format!("{module}.{}", self.spec.name)
    }
}

impl fmt::Display for ProtocolClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<class '{}.{}'>", self.spec.module, self.spec.name)
    }
}

callable_value!(
    "protocol_class",
    ProtocolClass,
    |class, _args, _eval| {
        let short = class.short();
        refused(format!(
            "{short}() would make one protocol; a service takes a factory: protocol.Factory.forProtocol({short}), or set factory.protocol = {short}"
        ))
    },
    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other
            .downcast_ref::<ProtocolClass>()
            .is_some_and(|other| std::ptr::eq(self.spec, other.spec)))
    }
);

/// The rtwisted factory fields of a protocol class (its factory type, defaults filled in).
fn factory_fields(spec: &ProtocolSpec) -> anyhow::Result<serde_json::Map<String, Json>> {
    let mut fields: serde_json::Map<String, Json> = serde_json::from_str(spec.fields)?;
    fields.insert("type".into(), json!(spec.tag));
    match typed(TypeKind::Factory, Json::Object(fields)) {
        Ok(Json::Object(fields)) => Ok(fields),
        Ok(_) => anyhow::bail!("internal error: {} is not a record", spec.tag),
        Err(error) => anyhow::bail!("internal error: {}: {error}", spec.tag),
    }
}

/// A new Twisted factory in the blueprint, with its protocol if given.
fn new_factory<'v>(
    label: &str,
    protocol: Option<Value<'v>>,
    eval: &mut Evaluator<'v, '_, '_>,
) -> anyhow::Result<Handle> {
    let blueprint = blueprint_of(eval)?;
    let id = lock(&blueprint)?.add_twisted_factory(label);
    let handle = Handle::new(id, label, blueprint);
    if let Some(protocol) = protocol {
        set_protocol(&handle, protocol)?;
    }
    Ok(handle)
}

/// `factory.protocol = wire.Echo`.
pub fn set_protocol(handle: &Handle, protocol: Value) -> anyhow::Result<()> {
    let Some(class) = protocol.downcast_ref::<ProtocolClass>() else {
        anyhow::bail!(
            "a factory's protocol must be one of Twisted's protocol classes ({}), not {}; {BRING_YOUR_OWN}",
            super::PROTOCOLS
                .iter()
                .map(|spec| format!("wire.{}", spec.name))
                .collect::<Vec<_>>()
                .join(", "),
            protocol
        );
    };
    let fields = factory_fields(class.spec)?;
    lock(handle.blueprint())?.set_protocol(handle.id(), class.spec, fields)
}

impl fmt::Display for FactoryClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<class 'twisted.internet.protocol.{}'>", self.name)
    }
}

starlark::methods_static!(FACTORY_CLASS_METHODS = factory_class_methods);

#[starlark_module]
fn factory_class_methods(builder: &mut MethodsBuilder) {
    /// `Factory.forProtocol(wire.Echo)`: a factory of that protocol.
    fn forProtocol<'v>(
        this: &FactoryClass,
        #[starlark(require = pos)] protocol: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        new_factory(this.name, Some(protocol), eval)
    }
}

callable_value!(
    "factory_class",
    FactoryClass,
    |class, args, eval| {
        args.no_named_args()?;
        args.no_positional_args(eval.heap())?;
        let handle = new_factory(class.name, None, eval).map_err(other)?;
        Ok(eval.heap().alloc(handle))
    },
    fn get_methods() -> Option<&'static Methods> {
        Some(FACTORY_CLASS_METHODS.methods())
    }
);

/// The JSON of the Python values that stand for rtwisted data: an endpoint is its description,
/// `IPersistable(app).save` the checkpoint task; the others say where they go instead.
/// `None` for values that are not Python ones.
pub fn python_json(value: Value) -> Option<anyhow::Result<Json>> {
    if let Some(endpoint) = value.downcast_ref::<Endpoint>() {
        return Some(Ok(Json::String(endpoint.description.clone())));
    }
    if value.downcast_ref::<PersistableSave>().is_some() {
        return Some(Ok(json!({ "type": Checkpoint::TAG })));
    }
    if let Some(class) = value.downcast_ref::<ProtocolClass>() {
        let short = class.short();
        return Some(Err(anyhow::anyhow!(
            "{short} is a protocol, not a factory: give protocol.Factory.forProtocol({short})"
        )));
    }
    let refusal = if value.downcast_ref::<Reactor>().is_some()
        || value.downcast_ref::<ReactorCall>().is_some()
    {
        format!("the reactor cannot be stored in a snapshot: {NO_REACTOR}")
    } else if value.downcast_ref::<ContextFactory>().is_some() {
        format!("{value} goes to internet.SSLServer or internet.SSLClient")
    } else if value.downcast_ref::<TwistedModule>().is_some()
        || value.downcast_ref::<FactoryClass>().is_some()
        || value.downcast_ref::<Environ>().is_some()
        || value.downcast_ref::<Persistable>().is_some()
    {
        format!("{value} cannot be stored in a snapshot")
    } else {
        return None;
    };
    Some(Err(anyhow::anyhow!("{refusal}")))
}

/// A strports description given as text, or as an endpoint of `endpoints`; `server` says which
/// kind is wanted.
pub fn description_of(value: Value, server: bool) -> anyhow::Result<String> {
    if let Some(text) = value.unpack_str() {
        return Ok(text.to_owned());
    }
    match value.downcast_ref::<Endpoint>() {
        Some(endpoint) if endpoint.server == server => Ok(endpoint.description.clone()),
        Some(endpoint) => anyhow::bail!(
            "{endpoint} is a {} endpoint; this needs a {} endpoint ({})",
            if endpoint.server { "server" } else { "client" },
            if server { "server" } else { "client" },
            if server {
                "endpoints.serverFromString(reactor, \"tcp:80\")"
            } else {
                "endpoints.clientFromString(reactor, \"tcp:host=example.org:port=80\")"
            }
        ),
        None => anyhow::bail!(
            "an endpoint is a strports description like \"tcp:80\", or made by twisted.internet.endpoints, not {}",
            value.get_type()
        ),
    }
}
