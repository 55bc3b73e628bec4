//! What a Twisted program reaches outside its application, as a TAC file may: `os.environ`
//! (read through the one door), the reactor (which refuses to be driven), endpoints and TLS
//! context factories (which stand for strports), and `sob.IPersistable` (whose `save` is the
//! checkpoint task).
#![allow(non_snake_case)] // Twisted's method names, as a TAC file from Twisted spells them.

use std::fmt;

use starlark::environment::{Methods, MethodsBuilder};
use starlark::starlark_module;
use starlark::values::none::NoneOr;
use starlark::values::{Heap, StarlarkValue, Value, starlark_value};

use super::super::callable::{callable_value, refused};
use super::super::values::{
    ContextFactory, Endpoint, Environ, Persistable, PersistableSave, Reactor, ReactorCall,
};
use super::BRING_YOUR_OWN;

fn other(error: anyhow::Error) -> starlark::Error {
    starlark::Error::new_other(error)
}

/// `Display` for a value that always shows as the same text.
macro_rules! shown_as {
    ($ty:ident, $text:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($text)
            }
        }
    };
}

/// `os.environ[name]`, `os.environ.get`, `os.getenv` and `env()`: the one way a TAC file reads
/// its environment. `None` when the variable is not set.
pub fn environment_variable(name: &str) -> anyhow::Result<Option<String>> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("the environment variable {name} is not valid UTF-8")
        }
    }
}

shown_as!(Environ, "<os.environ>");

starlark::methods_static!(ENVIRON_METHODS = environ_methods);

#[starlark_module]
fn environ_methods(builder: &mut MethodsBuilder) {
    /// `os.environ.get(name, default=None)`.
    fn get<'v>(
        this: &Environ,
        #[starlark(require = pos)] name: &str,
        #[starlark(require = pos, default = NoneOr::None)] default: NoneOr<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let _ = this;
        Ok(match (environment_variable(name)?, default) {
            (Some(value), _) => heap.alloc(value),
            (None, NoneOr::Other(default)) => default,
            (None, NoneOr::None) => Value::new_none(),
        })
    }
}

#[starlark_value(type = "environ")]
impl<'v> StarlarkValue<'v> for Environ {
    fn get_methods() -> Option<&'static Methods> {
        Some(ENVIRON_METHODS.methods())
    }

    fn at(&self, index: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let Some(name) = index.unpack_str() else {
            return Err(other(anyhow::anyhow!(
                "os.environ takes a variable name, not {}",
                index.get_type()
            )));
        };
        match environment_variable(name).map_err(other)? {
            Some(value) => Ok(heap.alloc(value)),
            None => Err(other(anyhow::anyhow!(
                "the environment variable {name} is not set (os.environ[\"{name}\"]); set it, or give a default: os.environ.get(\"{name}\", \"...\")"
            ))),
        }
    }

    fn is_in(&self, other_value: Value<'v>) -> starlark::Result<bool> {
        match other_value.unpack_str() {
            Some(name) => Ok(environment_variable(name).map_err(other)?.is_some()),
            None => Ok(false),
        }
    }
}

/// Why a TAC file does not drive the reactor.
pub const NO_REACTOR: &str = "a TAC file builds the application and rtwistd runs the reactor: add a service instead (internet.TCPServer, strports.service, internet.TimerService)";

shown_as!(Reactor, "<reactor>");

#[starlark_value(type = "reactor")]
impl<'v> StarlarkValue<'v> for Reactor {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        Some(heap.alloc(ReactorCall {
            name: attribute.to_owned(),
        }))
    }
}

impl fmt::Display for ReactorCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<reactor.{}>", self.name)
    }
}

callable_value!("reactor_call", ReactorCall, |call, _args, _eval| {
    refused(format!(
        "reactor.{}() cannot run in a TAC file: {NO_REACTOR}; {BRING_YOUR_OWN}",
        call.name
    ))
});

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = if self.server { "server" } else { "client" };
        write!(f, "<{side} endpoint '{}'>", self.description)
    }
}

#[starlark_value(type = "endpoint")]
impl<'v> StarlarkValue<'v> for Endpoint {}

impl fmt::Display for ContextFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.server {
            Some((key, certificate)) => write!(
                f,
                "<DefaultOpenSSLContextFactory key='{key}' certificate='{certificate}'>"
            ),
            None => f.write_str("<ClientContextFactory>"),
        }
    }
}

#[starlark_value(type = "context_factory")]
impl<'v> StarlarkValue<'v> for ContextFactory {}

shown_as!(Persistable, "<IPersistable>");

#[starlark_value(type = "persistable")]
impl<'v> StarlarkValue<'v> for Persistable {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        (attribute == "save").then(|| heap.alloc(PersistableSave))
    }

    fn dir_attr(&self) -> Vec<String> {
        vec!["save".to_owned()]
    }
}

shown_as!(PersistableSave, "<IPersistable.save>");

callable_value!(
    "persistable_save",
    PersistableSave,
    |_save, _args, _eval| {
        refused(
            "IPersistable(application).save() cannot run in a TAC file: rtwistd saves the running tree (at shutdown, on SIGUSR2, and on a timer with TimerService(60, IPersistable(application).save))",
        )
    }
);
