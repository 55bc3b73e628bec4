//! The members of Twisted's modules that the plain TAC names do not already provide (besides
//! the endpoints of `endpoints.rs`): `internet.SSLClient` and
//! `StreamServerEndpointService`, the context factories of `twisted.internet.ssl`,
//! `portforward.ProxyFactory`, `sob.IPersistable` and `os.getenv` (natives), and the values
//! (protocol classes, factory classes, the reactor, `os.environ`) under qualified names.
#![allow(non_snake_case)] // Twisted's names, as a TAC file from Twisted spells them.
#![allow(clippy::too_many_arguments)] // Twisted's constructors take many optional arguments.

use rtwisted_services::protocols::PortForward;
use rtwisted_services::strports::DEFAULT_TIMEOUT;
use serde_json::json;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::none::NoneOr;
use starlark::values::tuple::AllocTuple;
use starlark::values::{Value, ValueLike};

use super::super::blueprint::{Role, lock};
use super::super::builtins::{blueprint_of, client, construct, server};
use super::super::handle::Handle;
use super::super::values::{
    Context, ContextFactory, Environ, FactoryClass, Persistable, ProtocolClass, Reactor,
};
use super::PROTOCOLS;
use super::endpoints::{tcp_client, tcp_connect, tls_client};
use super::objects::description_of;
use super::system::environment_variable;

/// The values among the members, each under its qualified name.
pub fn python_values(builder: &mut GlobalsBuilder) {
    for name in ["Factory", "ServerFactory", "ClientFactory"] {
        builder.set(
            &format!("twisted.internet.protocol.{name}"),
            FactoryClass { name },
        );
    }
    for spec in PROTOCOLS {
        builder.set(
            &format!("{}.{}", spec.module, spec.name),
            ProtocolClass { spec },
        );
    }
    builder.set("twisted.internet.reactor", Reactor);
    builder.set("os.environ", Environ);
}

#[starlark_module]
pub(super) fn python_members(builder: &mut GlobalsBuilder) {
    /// `internet.SSLClient(host, port, factory, contextFactory, timeout=30, bindAddress=None)`.
    fn SSLClient<'v>(
        #[starlark(require = pos)] host: &str,
        #[starlark(require = pos)] port: u32,
        #[starlark(require = pos)] factory: Value<'v>,
        #[starlark(require = pos)] contextFactory: Value<'v>,
        #[starlark(default = 30)] timeout: Value<'v>,
        #[starlark(default = NoneOr::None)] bindAddress: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] name: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        let tcp = tcp_client(host, port, timeout, bindAddress)?;
        let description = tls_client(tcp, contextFactory)?;
        client(&blueprint_of(eval)?, &description, factory, name, false)
    }

    /// `internet.StreamServerEndpointService(endpoint, factory)`.
    fn StreamServerEndpointService<'v>(
        #[starlark(require = pos)] endpoint: Value<'v>,
        #[starlark(require = pos)] factory: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] name: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        let description = description_of(endpoint, true)?;
        server(&blueprint_of(eval)?, &description, factory, name)
    }

    /// `ssl.DefaultOpenSSLContextFactory(privateKeyFileName, certificateFileName)`: the key
    /// and certificate files of an SSL server (PEM).
    fn DefaultOpenSSLContextFactory<'v>(
        #[starlark(require = pos)] privateKeyFileName: &str,
        #[starlark(require = pos)] certificateFileName: &str,
        #[starlark(default = NoneOr::None)] sslmethod: NoneOr<Value<'v>>,
    ) -> anyhow::Result<ContextFactory> {
        if !sslmethod.is_none() {
            anyhow::bail!(
                "sslmethod has no meaning here: rustls always negotiates TLS 1.3 or 1.2 and has no older protocol to pick; leave it out"
            );
        }
        Ok(ContextFactory {
            server: Some((
                privateKeyFileName.to_owned(),
                certificateFileName.to_owned(),
            )),
        })
    }

    /// `ssl.ClientContextFactory()`: a TLS client (which rtwisted always verifies).
    fn ClientContextFactory() -> anyhow::Result<ContextFactory> {
        Ok(ContextFactory { server: None })
    }

    /// `portforward.ProxyFactory(host, port)`: relays each connection to host:port.
    fn ProxyFactory<'v>(
        #[starlark(require = pos)] host: &str,
        #[starlark(require = pos)] port: u32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        let dest = tcp_connect(host, port, DEFAULT_TIMEOUT, None)?;
        construct(
            &blueprint_of(eval)?,
            PortForward::TAG,
            vec![("dest".to_owned(), json!(dest.to_string()))],
        )
    }

    /// `sob.IPersistable(application)`: its `save` is the checkpoint task
    /// (`TimerService(60, IPersistable(application).save)`).
    fn IPersistable<'v>(
        #[starlark(require = pos)] application: Value<'v>,
    ) -> anyhow::Result<Persistable> {
        match application.downcast_ref::<Handle>() {
            Some(handle) if lock(handle.blueprint())?.role(handle.id())? == Role::Application => {
                Ok(Persistable)
            }
            _ => anyhow::bail!(
                "IPersistable takes the application (made by service.Application(\"name\")), not {application}"
            ),
        }
    }

    /// `os.getenv(name, default=None)`.
    fn getenv<'v>(
        #[starlark(require = pos)] key: &str,
        #[starlark(default = NoneOr::None)] default: NoneOr<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        Ok(match (environment_variable(key)?, default) {
            (Some(value), _) => eval.heap().alloc(value),
            (None, NoneOr::Other(default)) => default,
            (None, NoneOr::None) => Value::new_none(),
        })
    }
}

#[starlark_module]
pub fn import_builtin(builder: &mut GlobalsBuilder) {
    /// What the import line number `index` binds (import lines are rewritten to call this).
    fn _rtwisted_import<'v>(
        #[starlark(require = pos)] index: u32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let imports = eval
            .extra
            .and_then(|extra| extra.downcast_ref::<Context>())
            .map(|context| context.imports.clone())
            .ok_or_else(|| anyhow::anyhow!("internal error: an import outside a TAC file"))?;
        let values = imports.resolve(usize::try_from(index)?)?;
        Ok(match values.as_slice() {
            [one] => one.to_value(),
            _ => eval
                .heap()
                .alloc(AllocTuple(values.iter().map(|value| value.to_value()))),
        })
    }
}
