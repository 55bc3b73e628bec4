//! The Starlark value of every object a TAC file makes: a handle naming a node of the
//! [`Blueprint`](super::blueprint::Blueprint), with Twisted's methods in both spellings
//! (`setServiceParent` and `set_service_parent`).
#![allow(non_snake_case)] // Twisted's method names, as a TAC file from Twisted spells them.

use std::fmt;

use starlark::environment::{Methods, MethodsBuilder};
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::none::{NoneOr, NoneType};
use starlark::values::{Heap, StarlarkValue, Value, ValueLike, starlark_value};

use super::blueprint::{Role, Shared, lock};
use super::convert;

/// A TAC object: the application, a service, a factory or a timer task.
pub use super::values::Handle;

starlark_simple_value!(Handle);

impl Handle {
    /// A handle on node `id`.
    pub fn new(id: usize, label: impl Into<String>, blueprint: Shared) -> Self {
        Handle {
            id,
            label: label.into(),
            blueprint,
        }
    }

    /// The node this handle names.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The blueprint the node lives in.
    pub fn blueprint(&self) -> &Shared {
        &self.blueprint
    }

    fn same(&self, other: &Handle) -> anyhow::Result<()> {
        if std::sync::Arc::ptr_eq(&self.blueprint, &other.blueprint) {
            Ok(())
        } else {
            anyhow::bail!("internal error: objects from two different TAC evaluations")
        }
    }

    fn sibling(&self, id: usize, label: String) -> Handle {
        Handle::new(id, label, self.blueprint.clone())
    }

    /// The application's settings a TAC file may read and write as attributes.
    fn setting_of(attribute: &str) -> Option<(&'static str, &'static str)> {
        Some(match attribute {
            "uid" => ("process", "uid"),
            "gid" => ("process", "gid"),
            "processName" | "process_name" => ("process", "process_name"),
            "umask" => ("process", "umask"),
            _ => return None,
        })
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match lock(&self.blueprint).and_then(|blueprint| blueprint.describe(self.id)) {
            Ok(description) => write!(f, "<{description}>"),
            Err(_) => write!(f, "<{}>", self.label),
        }
    }
}

starlark::methods_static!(HANDLE_METHODS = handle_methods);

#[starlark_value(type = "rtwisted_object")]
impl<'v> StarlarkValue<'v> for Handle {
    fn get_methods() -> Option<&'static Methods> {
        Some(HANDLE_METHODS.methods())
    }

    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let blueprint = lock(&self.blueprint).ok()?;
        if attribute == "protocol" {
            return match blueprint.twisted_protocol(self.id).ok()?? {
                Some(spec) => Some(heap.alloc(super::values::ProtocolClass { spec })),
                None => Some(Value::new_none()),
            };
        }
        let (section, key) = Handle::setting_of(attribute)?;
        if blueprint.role(self.id).ok()? != Role::Application {
            return None;
        }
        Some(match blueprint.setting(self.id, section, key).ok()? {
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(n) => heap.alloc(n),
                None => Value::new_none(),
            },
            serde_json::Value::String(text) => heap.alloc(text),
            _ => Value::new_none(),
        })
    }

    fn set_attr(&self, attribute: &str, new_value: Value<'v>) -> starlark::Result<()> {
        if attribute == "protocol" {
            return super::python::set_protocol(self, new_value)
                .map_err(starlark::Error::new_other);
        }
        let result = (|| {
            let mut blueprint = lock(&self.blueprint)?;
            if blueprint.role(self.id)? != Role::Application {
                anyhow::bail!(
                    "{} has no settable attribute '{attribute}'",
                    blueprint.describe(self.id)?
                );
            }
            let Some((section, key)) = Handle::setting_of(attribute) else {
                anyhow::bail!(
                    "an application has no setting '{attribute}' (settable: uid, gid, processName, umask)"
                );
            };
            let value = convert::to_json(new_value)?;
            blueprint.set_setting(self.id, section, key, value)
        })();
        result.map_err(starlark::Error::new_other)
    }
}

fn handle_of<'v>(value: Value<'v>, what: &str) -> anyhow::Result<&'v Handle> {
    value.downcast_ref::<Handle>().ok_or_else(|| {
        anyhow::anyhow!(
            "{what} must be a service, the application or a MultiService, not a {}",
            value.get_type()
        )
    })
}

fn set_parent(this: &Handle, parent: Value) -> anyhow::Result<NoneType> {
    let parent = handle_of(parent, "the parent")?;
    this.same(parent)?;
    lock(&this.blueprint)?.set_parent(this.id, parent.id)?;
    Ok(NoneType)
}

fn disown(this: &Handle) -> anyhow::Result<NoneType> {
    lock(&this.blueprint)?.disown(this.id)?;
    Ok(NoneType)
}

fn set_name(this: &Handle, name: &str) -> anyhow::Result<NoneType> {
    lock(&this.blueprint)?.set_name(this.id, name)?;
    Ok(NoneType)
}

fn named(this: &Handle, name: &str) -> anyhow::Result<Handle> {
    let blueprint = lock(&this.blueprint)?;
    let child = blueprint.child_named(this.id, name)?;
    let label = blueprint.describe(child)?;
    Ok(this.sibling(child, label))
}

fn add(this: &Handle, child: Value) -> anyhow::Result<NoneType> {
    let child = handle_of(child, "the service")?;
    this.same(child)?;
    lock(&this.blueprint)?.set_parent(child.id, this.id)?;
    Ok(NoneType)
}

fn remove(this: &Handle, child: Value) -> anyhow::Result<NoneType> {
    let child = handle_of(child, "the service")?;
    this.same(child)?;
    let mut blueprint = lock(&this.blueprint)?;
    if !blueprint.children(this.id)?.contains(&child.id) {
        anyhow::bail!(
            "{} is not in {}",
            blueprint.describe(child.id)?,
            blueprint.describe(this.id)?
        );
    }
    blueprint.disown(child.id)?;
    Ok(NoneType)
}

#[starlark_module]
fn handle_methods(builder: &mut MethodsBuilder) {
    /// Makes this service a child of `parent` (the application or a MultiService), leaving any
    /// parent it had.
    fn setServiceParent<'v>(this: &Handle, parent: Value<'v>) -> anyhow::Result<NoneType> {
        set_parent(this, parent)
    }

    /// Snake-case spelling of `setServiceParent`.
    fn set_service_parent<'v>(this: &Handle, parent: Value<'v>) -> anyhow::Result<NoneType> {
        set_parent(this, parent)
    }

    /// Takes this service out of its parent.
    fn disownServiceParent(this: &Handle) -> anyhow::Result<NoneType> {
        disown(this)
    }

    /// Snake-case spelling of `disownServiceParent`.
    fn disown_service_parent(this: &Handle) -> anyhow::Result<NoneType> {
        disown(this)
    }

    /// Names this service; not allowed once it has a parent.
    fn setName(this: &Handle, name: &str) -> anyhow::Result<NoneType> {
        set_name(this, name)
    }

    /// Snake-case spelling of `setName`.
    fn set_name(this: &Handle, name: &str) -> anyhow::Result<NoneType> {
        set_name(this, name)
    }

    /// The child of this collection with this name.
    fn getServiceNamed(this: &Handle, name: &str) -> anyhow::Result<Handle> {
        named(this, name)
    }

    /// Snake-case spelling of `getServiceNamed`.
    fn get_service_named(this: &Handle, name: &str) -> anyhow::Result<Handle> {
        named(this, name)
    }

    /// Adds a service to this collection.
    fn addService<'v>(this: &Handle, service: Value<'v>) -> anyhow::Result<NoneType> {
        add(this, service)
    }

    /// Snake-case spelling of `addService`.
    fn add_service<'v>(this: &Handle, service: Value<'v>) -> anyhow::Result<NoneType> {
        add(this, service)
    }

    /// Removes a service from this collection.
    fn removeService<'v>(this: &Handle, service: Value<'v>) -> anyhow::Result<NoneType> {
        remove(this, service)
    }

    /// Snake-case spelling of `removeService`.
    fn remove_service<'v>(this: &Handle, service: Value<'v>) -> anyhow::Result<NoneType> {
        remove(this, service)
    }

    /// The service's name, or None.
    #[starlark(attribute)]
    fn name(this: &Handle) -> anyhow::Result<NoneOr<String>> {
        Ok(match lock(&this.blueprint)?.name(this.id)? {
            Some(name) => NoneOr::Other(name),
            None => NoneOr::None,
        })
    }
}
