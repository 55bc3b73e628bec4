//! Twisted's names in a TAC file: `Application`, `MultiService`, the `IServiceCollection` /
//! `IService` / `IProcess` adapters, `internet.TCPServer` and its siblings, `strports.service`,
//! `ClientService`, `TimerService`; plus `make`, `plugin` and `env`.
#![allow(non_snake_case)]
// Twisted's constructor names, as a TAC file from Twisted spells them.
// Twisted's constructors take many optional arguments, each a Starlark parameter.
#![allow(clippy::too_many_arguments)]

use rtwisted_core::MultiService;
use rtwisted_core::application::validate_app_name;
use rtwisted_services::strports::{ClientEndpoint, TcpConnect};
use rtwisted_services::timer::TimerService;
use serde_json::{Map, Value as Json, json};
use starlark::collections::SmallMap;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::none::NoneOr;
use starlark::values::{Value, ValueLike};

use super::blueprint::{Role, lock};
use super::builtins::{
    blueprint_of, client, construct, escape, fields, from_plugin, id_of, name_field, server,
};
use super::convert::to_json;
use super::handle::Handle;
use super::python;

#[starlark_module]
pub(super) fn twisted_names(builder: &mut GlobalsBuilder) {
    /// The application: a name (which names its snapshot files), the user and group to run as
    /// (names or numbers), and Twisted's process settings.
    fn Application<'v>(
        #[starlark(require = pos)] name: &str,
        #[starlark(default = NoneOr::None)] uid: NoneOr<Value<'v>>,
        #[starlark(default = NoneOr::None)] gid: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] process_name: NoneOr<&str>,
        #[starlark(require = named, default = NoneOr::None)] umask: NoneOr<i32>,
        #[starlark(require = named, default = "tap")] style: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        validate_app_name(name)?;
        let style: rtwisted_core::Style = style.parse()?;
        let umask = match umask {
            NoneOr::None => Json::Null,
            NoneOr::Other(mask) if (0..=0o777).contains(&mask) => json!(mask),
            NoneOr::Other(mask) => anyhow::bail!("umask {mask:o} is not a mask like 0o022"),
        };
        let id_value = |value: NoneOr<Value<'v>>| match value {
            NoneOr::None => None,
            NoneOr::Other(value) => Some(value),
        };
        let uid = id_value(uid).map_or(Ok(Json::Null), |v| id_of(v, crate::ids::parse_uid))?;
        let gid = id_value(gid).map_or(Ok(Json::Null), |v| id_of(v, crate::ids::parse_gid))?;
        let mut fields = Map::new();
        fields.insert("name".into(), json!(name));
        fields.insert(
            "process".into(),
            json!({
                "uid": uid,
                "gid": gid,
                "process_name": match process_name { NoneOr::None => None, NoneOr::Other(n) => Some(n) },
                "umask": umask,
            }),
        );
        fields.insert(
            "persistence".into(),
            json!({ "style": style, "file_name": null }),
        );
        let blueprint = blueprint_of(eval)?;
        let label = format!("Application '{name}'");
        let id = lock(&blueprint)?.add(Role::Application, label.clone(), fields, None);
        Ok(Handle::new(id, label, blueprint))
    }

    /// A collection of services: children start in order and stop in reverse.
    fn MultiService<'v>(
        #[starlark(require = named, default = NoneOr::None)] name: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        construct(&blueprint_of(eval)?, MultiService::TAG, name_field(name))
    }

    /// Twisted's adapter: the application's service collection (the application itself here).
    fn IServiceCollection<'v>(application: Value<'v>) -> anyhow::Result<Value<'v>> {
        application_itself(application)
    }

    /// Twisted's adapter: the application as a service (the application itself here).
    fn IService<'v>(application: Value<'v>) -> anyhow::Result<Value<'v>> {
        application_itself(application)
    }

    /// Twisted's adapter: the application's process settings (`uid`, `gid`, `processName`,
    /// `umask` attributes).
    fn IProcess<'v>(application: Value<'v>) -> anyhow::Result<Value<'v>> {
        application_itself(application)
    }

    /// `strports.service`: a server listening where the description says
    /// (`tcp:7001:interface=127.0.0.1`, `unix:/run/x.sock`, `ssl:443:privateKey=key.pem`,
    /// `udp:9999`, `systemd:domain=INET:index=0`), or on an endpoint of `endpoints`; Twisted's
    /// `reactor=` is accepted and has no use here.
    fn service<'v>(
        #[starlark(require = pos)] description: Value<'v>,
        #[starlark(require = pos)] factory: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] name: NoneOr<&str>,
        #[starlark(require = named, default = NoneOr::None)] reactor: NoneOr<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        let _ = reactor;
        let description = python::description_of(description, true)?;
        server(&blueprint_of(eval)?, &description, factory, name)
    }

    /// A client connecting where the description says (`tcp:host=H:port=P`,
    /// `unix:path=PATH`, `tls:host=H:port=P`); it fails to start if the connection fails.
    fn client<'v>(
        #[starlark(require = pos)] description: Value<'v>,
        #[starlark(require = pos)] factory: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] name: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        let description = python::description_of(description, false)?;
        client(&blueprint_of(eval)?, &description, factory, name, false)
    }

    /// Twisted's `ClientService(endpoint, factory)`: a client that connects, and reconnects
    /// with backoff. The endpoint is a description or an endpoint of `endpoints`.
    fn ClientService<'v>(
        #[starlark(require = pos)] endpoint: Value<'v>,
        #[starlark(require = pos)] factory: Value<'v>,
        #[starlark(default = NoneOr::None)] retryPolicy: NoneOr<Value<'v>>,
        #[starlark(default = NoneOr::None)] clock: NoneOr<Value<'v>>,
        #[starlark(default = NoneOr::None)] prepareConnection: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] name: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        for (argument, value) in [
            ("retryPolicy", retryPolicy),
            ("clock", clock),
            ("prepareConnection", prepareConnection),
        ] {
            if !value.is_none() {
                anyhow::bail!(
                    "ClientService(): {argument} takes Python code, which rtwistd does not run; it retries with Twisted's default backoff"
                );
            }
        }
        let description = python::description_of(endpoint, false)?;
        client(&blueprint_of(eval)?, &description, factory, name, true)
    }

    /// `internet.TCPServer(port, factory, backlog=50, interface='')`.
    fn TCPServer<'v>(
        #[starlark(require = pos)] port: u32,
        #[starlark(require = pos)] factory: Value<'v>,
        #[starlark(default = 50)] backlog: u32,
        #[starlark(default = "")] interface: &str,
        #[starlark(require = named, default = NoneOr::None)] name: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        let mut description = format!("tcp:{port}:backlog={backlog}");
        if !interface.is_empty() {
            description.push_str(&format!(":interface={}", escape(interface)));
        }
        server(&blueprint_of(eval)?, &description, factory, name)
    }

    /// `internet.UNIXServer(address, factory, backlog=50, mode=0o666, wantPID=...)`; the lock
    /// file (`PATH.lock`) is on unless `wantPID=0` or `lockfile=False`.
    fn UNIXServer<'v>(
        #[starlark(require = pos)] address: &str,
        #[starlark(require = pos)] factory: Value<'v>,
        #[starlark(default = 50)] backlog: u32,
        #[starlark(default = 0o666)] mode: u32,
        #[starlark(default = NoneOr::None)] wantPID: NoneOr<Value<'v>>,
        #[starlark(require = named, default = true)] lockfile: bool,
        #[starlark(require = named, default = NoneOr::None)] name: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        let lockfile = match wantPID {
            NoneOr::None => lockfile,
            NoneOr::Other(flag) => flag.to_bool(),
        };
        let description = format!(
            "unix:{}:mode={mode:o}:lockfile={}:backlog={backlog}",
            escape(address),
            u8::from(lockfile)
        );
        server(&blueprint_of(eval)?, &description, factory, name)
    }

    /// `internet.SSLServer(port, factory, contextFactory, backlog=50, interface='')`, the
    /// context an `ssl.DefaultOpenSSLContextFactory(key, certificate)`; or with the key and
    /// certificate as files (PEM) by keyword: `privateKey=`, `certKey=`, `extraCertChain=`.
    fn SSLServer<'v>(
        #[starlark(require = pos)] port: u32,
        #[starlark(require = pos)] factory: Value<'v>,
        #[starlark(default = NoneOr::None)] contextFactory: NoneOr<Value<'v>>,
        #[starlark(default = 50)] backlog: u32,
        #[starlark(default = "")] interface: &str,
        #[starlark(require = named, default = NoneOr::None)] privateKey: NoneOr<&str>,
        #[starlark(require = named, default = NoneOr::None)] certKey: NoneOr<&str>,
        #[starlark(require = named, default = NoneOr::None)] extraCertChain: NoneOr<&str>,
        #[starlark(require = named, default = NoneOr::None)] name: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        let (key, cert) = match (contextFactory, privateKey) {
            (NoneOr::Other(context), NoneOr::None) => {
                if !certKey.is_none() {
                    anyhow::bail!(
                        "SSLServer(): the certificate comes from the context factory; leave certKey= out"
                    );
                }
                let (key, cert) = python::server_context(context)?;
                (key, Some(cert))
            }
            (NoneOr::None, NoneOr::Other(key)) => {
                (key.to_owned(), certKey.into_option().map(str::to_owned))
            }
            _ => anyhow::bail!(
                "SSLServer() takes a context factory (ssl.DefaultOpenSSLContextFactory(key, certificate)) or privateKey=, one of the two"
            ),
        };
        let mut description = format!("ssl:{port}:privateKey={}:backlog={backlog}", escape(&key));
        if let Some(cert) = cert {
            description.push_str(&format!(":certKey={}", escape(&cert)));
        }
        if let NoneOr::Other(chain) = extraCertChain {
            description.push_str(&format!(":extraCertChain={}", escape(chain)));
        }
        if !interface.is_empty() {
            description.push_str(&format!(":interface={}", escape(interface)));
        }
        server(&blueprint_of(eval)?, &description, factory, name)
    }

    /// `internet.UDPServer(port, protocol, interface='')`.
    fn UDPServer<'v>(
        #[starlark(require = pos)] port: u32,
        #[starlark(require = pos)] protocol: Value<'v>,
        #[starlark(default = "")] interface: &str,
        #[starlark(require = named, default = NoneOr::None)] name: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        let mut description = format!("udp:{port}");
        if !interface.is_empty() {
            description.push_str(&format!(":interface={}", escape(interface)));
        }
        server(&blueprint_of(eval)?, &description, protocol, name)
    }

    /// `internet.TCPClient(host, port, factory, timeout=30, bindAddress=None)`.
    fn TCPClient<'v>(
        #[starlark(require = pos)] host: &str,
        #[starlark(require = pos)] port: u32,
        #[starlark(require = pos)] factory: Value<'v>,
        #[starlark(default = 30)] timeout: Value<'v>,
        #[starlark(default = NoneOr::None)] bindAddress: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] name: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        let port = u16::try_from(port)
            .map_err(|_| anyhow::anyhow!("port must be 0..65535, got {port}"))?;
        let endpoint = ClientEndpoint::Tcp(TcpConnect {
            host: host.to_owned(),
            port,
            timeout: python::timeout_of(timeout)?,
            bind_address: python::bind_address_of(bindAddress)?,
        });
        client(
            &blueprint_of(eval)?,
            &endpoint.to_string(),
            factory,
            name,
            false,
        )
    }

    /// `internet.UNIXClient(address, factory, timeout=30)`.
    fn UNIXClient<'v>(
        #[starlark(require = pos)] address: &str,
        #[starlark(require = pos)] factory: Value<'v>,
        #[starlark(default = 30)] timeout: u32,
        #[starlark(require = named, default = NoneOr::None)] name: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        let description = format!("unix:path={}:timeout={timeout}", escape(address));
        client(&blueprint_of(eval)?, &description, factory, name, false)
    }

    /// `internet.TimerService(step, task)`: runs the task at start, then every `step` seconds.
    fn TimerService<'v>(
        #[starlark(require = pos)] step: Value<'v>,
        #[starlark(require = pos)] task: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] name: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        if task.get_type() == "function" {
            anyhow::bail!(
                "TimerService(): the task is one of rtwisted's (LogLine(message=), RunCommand(program=), TouchFile(path=), Checkpoint(), or IPersistable(application).save), not a function: rtwistd runs no Starlark after the file is read; {}",
                python::BRING_YOUR_OWN
            );
        }
        let period = to_json(step)?;
        if !period
            .as_f64()
            .is_some_and(|seconds| seconds > 0.0 && seconds.is_finite())
        {
            anyhow::bail!(
                "TimerService(): the step must be a positive number of seconds, not {period}"
            );
        }
        let mut arguments = vec![
            ("period".to_owned(), period),
            ("task".to_owned(), to_json(task)?),
        ];
        arguments.extend(name_field(name));
        construct(&blueprint_of(eval)?, TimerService::TAG, arguments)
    }

    /// Any registered type by its full tag: `make("example.Cache", size=10)`.
    fn make<'v>(
        #[starlark(require = pos)] tag: &str,
        #[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        construct(&blueprint_of(eval)?, tag, fields(kwargs)?)
    }

    /// A plugin's service, its options as keyword arguments: `plugin("kv", port="tcp:11211")`
    /// (an underscore in a name stands for a dash: `max_value_size` is `--max-value-size`).
    fn plugin<'v>(
        #[starlark(require = pos)] name: &str,
        #[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        from_plugin(&blueprint_of(eval)?, name, kwargs)
    }

    /// An environment variable, or `default` when it is not set; with no default, an unset
    /// variable is an error. The only way a TAC file reads its environment.
    fn env<'v>(
        #[starlark(require = pos)] name: &str,
        #[starlark(default = NoneOr::None)] default: NoneOr<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        match (python::environment_variable(name)?, default) {
            (Some(value), _) => Ok(eval.heap().alloc(value)),
            (None, NoneOr::Other(default)) => Ok(default),
            (None, NoneOr::None) => anyhow::bail!(
                "the environment variable {name} is not set; set it, or give a default: env(\"{name}\", \"...\")"
            ),
        }
    }
}

fn application_itself(application: Value) -> anyhow::Result<Value> {
    match application.downcast_ref::<Handle>() {
        Some(handle) if lock(handle.blueprint())?.role(handle.id())? == Role::Application => {
            Ok(application)
        }
        _ => anyhow::bail!(
            "expected the application (made by Application(\"name\")), not {application}"
        ),
    }
}
