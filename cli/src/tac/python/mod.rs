//! Twisted's Python spelling of TAC files: `from twisted.application import service, internet`,
//! `service.Application("echo")`, `protocol.ServerFactory()` with `f.protocol = wire.Echo`,
//! `internet.TCPServer(7001, f)`, `os.environ["PORT"]`, still run as sandboxed Starlark.
//!
//! [`MODULES`] is the one list of what a TAC file can import: each module's dotted name and
//! its members. A member is found in the pool of values a module can hold: first under its
//! qualified name (`twisted.protocols.wire.Echo`, the values `members.rs` sets), then under
//! its own name among the TAC builtins (`Application`, `TCPServer`) and the natives of
//! `members.rs` (`ProxyFactory`, `serverFromString`). To add a module, add its line here and
//! its new members to `members.rs`. Packages (`twisted`, `twisted.application`) are made from
//! the dotted names; a module's submodules are its attributes too.
//!
//! The import lines themselves are rewritten before Starlark parses the file (`translate.rs`);
//! the modules are Starlark values (`objects.rs`).

mod endpoints;
mod import_line;
mod lexer;
mod members;
mod objects;
mod system;
mod translate;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::collections::HashMap;

use starlark::environment::{Globals, GlobalsBuilder};
use starlark::values::{FrozenHeap, FrozenHeapRef, FrozenValue, ValueLike};

pub use endpoints::{bind_address_of, server_context, timeout_of};
pub use members::import_builtin;
pub use objects::{description_of, python_json, set_protocol};
pub use system::environment_variable;
pub use translate::translate;

use super::values::TwistedModule;

/// How a refusal points to the way to run code of one's own.
pub const BRING_YOUR_OWN: &str = "to run a protocol of your own, write it as a Rust type linked into your own rtwistd (see cli/examples/custom_rtwistd.rs) and make it in the TAC file by name";

/// One module a TAC file can import, and the names it has.
#[derive(Debug)]
pub struct ModuleSpec {
    /// The dotted name.
    pub name: &'static str,
    /// Its members (its submodules come from the other modules' names).
    pub members: &'static [&'static str],
}

/// Everything a TAC file can import.
pub const MODULES: &[ModuleSpec] = &[
    ModuleSpec {
        name: "twisted.application.service",
        members: &[
            "Application",
            "MultiService",
            "IService",
            "IServiceCollection",
            "IProcess",
        ],
    },
    ModuleSpec {
        name: "twisted.application.internet",
        members: &[
            "TCPServer",
            "UDPServer",
            "UNIXServer",
            "SSLServer",
            "TCPClient",
            "UNIXClient",
            "SSLClient",
            "TimerService",
            "ClientService",
            "StreamServerEndpointService",
        ],
    },
    ModuleSpec {
        name: "twisted.application.strports",
        members: &["service"],
    },
    ModuleSpec {
        name: "twisted.internet",
        members: &["reactor"],
    },
    ModuleSpec {
        name: "twisted.internet.protocol",
        members: &["Factory", "ServerFactory", "ClientFactory"],
    },
    ModuleSpec {
        name: "twisted.internet.endpoints",
        members: &[
            "serverFromString",
            "clientFromString",
            "TCP4ServerEndpoint",
            "TCP6ServerEndpoint",
            "UNIXServerEndpoint",
            "SSL4ServerEndpoint",
            "TCP4ClientEndpoint",
            "TCP6ClientEndpoint",
            "HostnameEndpoint",
            "UNIXClientEndpoint",
            "SSL4ClientEndpoint",
            "quoteStringArgument",
        ],
    },
    ModuleSpec {
        name: "twisted.internet.ssl",
        members: &["DefaultOpenSSLContextFactory", "ClientContextFactory"],
    },
    ModuleSpec {
        name: "twisted.protocols.wire",
        members: &["Echo", "Discard", "Chargen", "QOTD", "Daytime", "Time"],
    },
    ModuleSpec {
        name: "twisted.protocols.portforward",
        members: &["ProxyFactory"],
    },
    ModuleSpec {
        name: "twisted.persisted.sob",
        members: &["IPersistable"],
    },
    ModuleSpec {
        name: "os",
        members: &["environ", "getenv"],
    },
];

/// `twisted.web`'s modules: the names of `cli/src/tac/web.rs`, in a build with the `web`
/// feature.
#[cfg(feature = "web")]
pub const WEB_MODULES: &[ModuleSpec] = &[
    ModuleSpec {
        name: "twisted.web.server",
        members: &["Site"],
    },
    ModuleSpec {
        name: "twisted.web.static",
        members: &["File", "Data"],
    },
    ModuleSpec {
        name: "twisted.web.proxy",
        members: &["ReverseProxyResource"],
    },
    ModuleSpec {
        name: "twisted.web.util",
        members: &["Redirect"],
    },
    ModuleSpec {
        name: "twisted.web.resource",
        members: &["Resource"],
    },
];

/// `twisted.web`'s modules: none without the `web` feature.
#[cfg(not(feature = "web"))]
pub const WEB_MODULES: &[ModuleSpec] = &[];

/// Every module a TAC file can import: [`MODULES`] and [`WEB_MODULES`].
pub fn modules() -> impl Iterator<Item = &'static ModuleSpec> {
    MODULES.iter().chain(WEB_MODULES)
}

/// A Twisted protocol class (a member of [`MODULES`]) and the factory type that serves it.
#[derive(Debug)]
pub struct ProtocolSpec {
    /// Its module.
    pub module: &'static str,
    /// Its name there.
    pub name: &'static str,
    /// The tag of the rtwisted factory that speaks it.
    pub tag: &'static str,
    /// The factory's fields, as JSON, that make it speak as Twisted's class does.
    pub fields: &'static str,
}

/// Twisted's protocol classes a factory's `protocol` can be.
pub static PROTOCOLS: &[ProtocolSpec] = &[
    wire("Echo", rtwisted_services::protocols::Echo::TAG),
    wire("Discard", rtwisted_services::protocols::Discard::TAG),
    wire("Chargen", rtwisted_services::protocols::Chargen::TAG),
    // Twisted's QOTD says "An apple a day keeps the doctor away.", as Qotd with no quotes.
    ProtocolSpec {
        fields: r#"{"quotes": []}"#,
        ..wire("QOTD", rtwisted_services::protocols::Qotd::TAG)
    },
    wire("Daytime", rtwisted_services::protocols::Daytime::TAG),
    wire("Time", rtwisted_services::protocols::Time::TAG),
];

const fn wire(name: &'static str, tag: &'static str) -> ProtocolSpec {
    ProtocolSpec {
        module: "twisted.protocols.wire",
        name,
        tag,
        fields: "{}",
    }
}

/// Every module and package name, each once: the names in [`MODULES`] and their prefixes.
fn all_names() -> BTreeSet<&'static str> {
    let mut names = BTreeSet::new();
    for module in modules() {
        let name = module.name;
        names.insert(name);
        for (index, _) in name.match_indices('.') {
            names.insert(&name[..index]);
        }
    }
    names
}

/// The module or package with this dotted name.
pub fn module_named(name: &str) -> Option<&'static str> {
    all_names().into_iter().find(|known| *known == name)
}

/// A module's own members (none for a package made from the names).
pub fn members_of(module: &str) -> &'static [&'static str] {
    modules()
        .find(|spec| spec.name == module)
        .map_or(&[], |spec| spec.members)
}

/// `name` in `module`: one of its members, or a submodule.
pub fn member_of(module: &'static str, name: &str) -> Option<Binding> {
    if let Some(member) = members_of(module).iter().find(|member| **member == name) {
        return Some(Binding::Member(module, member));
    }
    module_named(&format!("{module}.{name}")).map(Binding::Module)
}

/// The short names of a module's members and submodules, for messages.
pub fn names_in(module: &str) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = members_of(module).to_vec();
    let prefix = format!("{module}.");
    for name in all_names() {
        if let Some(rest) = name.strip_prefix(&prefix)
            && !rest.contains('.')
        {
            names.push(&name[prefix.len()..]);
        }
    }
    names
}

/// What a TAC file can import, in words: `os, twisted.application.{internet,service},
/// ...`.
pub fn supported() -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut leaves: Vec<&str> = Vec::new();
    for module in modules() {
        let is_package = all_names()
            .iter()
            .any(|name| name.starts_with(&format!("{}.", module.name)));
        if !is_package {
            leaves.push(module.name);
        } else if module.name == "twisted.internet" {
            // A package whose member is itself a module in Python.
            leaves.extend(["twisted.internet.reactor"]);
        }
    }
    leaves.sort_unstable();
    for leaf in leaves {
        let (parent, name) = leaf.rsplit_once('.').unwrap_or(("", leaf));
        match groups.iter_mut().find(|(known, _)| *known == parent) {
            Some((_, names)) => names.push(name),
            None => groups.push((parent, vec![name])),
        }
    }
    groups
        .into_iter()
        .map(|(parent, names)| match (parent, names.as_slice()) {
            ("", _) => names.join(", "),
            (_, [one]) => format!("{parent}.{one}"),
            _ => format!("{parent}.{{{}}}", names.join(",")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one name of an import line binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// A module or package.
    Module(&'static str),
    /// A member of a module.
    Member(&'static str, &'static str),
}

/// The module values of one evaluation, and what each translated import line binds (shared by
/// every file the evaluation loads, so a function that imports runs the same anywhere).
pub struct Imports {
    /// The heap the module values live in (the globals reference it too).
    _heap: FrozenHeapRef,
    modules: HashMap<&'static str, FrozenValue>,
    lines: RefCell<Vec<Vec<Binding>>>,
}

impl Imports {
    /// Records the bindings of one import line; returns its number.
    pub fn record(&self, bindings: Vec<Binding>) -> usize {
        let mut lines = self.lines.borrow_mut();
        lines.push(bindings);
        lines.len() - 1
    }

    /// The values line `index` binds.
    pub fn resolve(&self, index: usize) -> anyhow::Result<Vec<FrozenValue>> {
        let lines = self.lines.borrow();
        let Some(bindings) = lines.get(index) else {
            anyhow::bail!("_rtwisted_import({index}) is not an import line of this TAC file");
        };
        bindings
            .iter()
            .map(|binding| self.value(*binding))
            .collect()
    }

    fn value(&self, binding: Binding) -> anyhow::Result<FrozenValue> {
        let missing = || anyhow::anyhow!("internal error: no value for {binding:?}");
        match binding {
            Binding::Module(name) => self.modules.get(name).copied().ok_or_else(missing),
            Binding::Member(module, member) => {
                let value = self.modules.get(module).ok_or_else(missing)?;
                let value = value.to_value();
                let module = value.downcast_ref::<TwistedModule>().ok_or_else(missing)?;
                module
                    .attributes
                    .iter()
                    .find(|(name, _)| *name == member)
                    .map(|(_, value)| *value)
                    .ok_or_else(missing)
            }
        }
    }
}

/// Makes every module of [`MODULES`] (and every package) as a value: members from the pool of
/// `builtins` (the TAC builtins) and `members.rs`, packages holding their submodules. Their
/// heap is kept by the result and by `builder`'s globals, whose heap every evaluation keeps.
pub fn build(builder: &mut GlobalsBuilder, builtins: &Globals) -> Imports {
    let pool_globals = GlobalsBuilder::new()
        .with(members::python_members)
        .with(endpoints::endpoint_members)
        .with(members::python_values)
        .build();
    let heap = FrozenHeap::new();
    heap.add_reference(pool_globals.heap());
    heap.add_reference(builtins.heap());
    let mut pool: HashMap<&str, FrozenValue> = builtins.iter().collect();
    pool.extend(pool_globals.iter());
    let mut modules: HashMap<&'static str, FrozenValue> = HashMap::new();
    // The deepest first, so a package finds its submodules made.
    let mut names: Vec<&'static str> = all_names().into_iter().collect();
    names.sort_by_key(|name| std::cmp::Reverse(name.matches('.').count()));
    for name in names {
        let mut attributes: Vec<(&'static str, FrozenValue)> = Vec::new();
        for member in members_of(name) {
            let qualified = format!("{name}.{member}");
            if let Some(value) = pool.get(qualified.as_str()).or_else(|| pool.get(member)) {
                attributes.push((member, *value));
            }
        }
        let prefix = format!("{name}.");
        for (child, value) in &modules {
            if let Some(rest) = child.strip_prefix(&prefix)
                && !rest.contains('.')
            {
                attributes.push((&child[prefix.len()..], *value));
            }
        }
        attributes.sort_by_key(|(attribute, _)| *attribute);
        let value = heap.alloc_simple(TwistedModule { name, attributes });
        modules.insert(name, value);
    }
    let heap = heap.into_ref();
    builder.frozen_heap().add_reference(&heap);
    Imports {
        _heap: heap,
        modules,
        lines: RefCell::new(Vec::new()),
    }
}

#[cfg(test)]
mod tests;
