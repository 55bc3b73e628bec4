//! `twisted.internet.endpoints`: endpoints made from Twisted's arguments, held as canonical
//! strports descriptions; and the argument rules they share with `internet.TCPClient` and
//! `SSLClient` (timeouts, `bindAddress`, context factories).
#![allow(non_snake_case)] // Twisted's names, as a TAC file from Twisted spells them.

use std::time::Duration;

use rtwisted_services::strports::{
    ClientEndpoint, ServerEndpoint, TcpConnect, parse_ip_param, quote,
};
use starlark::environment::GlobalsBuilder;
use starlark::starlark_module;
use starlark::values::none::NoneOr;
use starlark::values::tuple::TupleRef;
use starlark::values::{Value, ValueLike};

use super::super::values::{ContextFactory, Endpoint};

/// `timeout=` as Twisted takes it: a positive number of seconds.
pub fn timeout_of(value: Value) -> anyhow::Result<Duration> {
    let seconds = value.unpack_i32().map(f64::from).or_else(|| {
        value
            .downcast_ref::<starlark::values::float::StarlarkFloat>()
            .map(|f| f.0)
    });
    match seconds {
        Some(seconds) if seconds > 0.0 && seconds < 1e9 => Ok(Duration::from_secs_f64(seconds)),
        _ => anyhow::bail!("timeout must be a positive number of seconds, not {value}"),
    }
}

/// `bindAddress=` as Twisted takes it: an address, or an `(address, port)` pair whose port is
/// 0 (the kernel picks the port; rtwisted binds no fixed client port, nor does Twisted's
/// `clientFromString`).
pub fn bind_address_of(value: NoneOr<Value>) -> anyhow::Result<Option<std::net::IpAddr>> {
    let value = match value {
        NoneOr::None => return Ok(None),
        NoneOr::Other(value) => value,
    };
    let address = match TupleRef::from_value(value) {
        Some(pair) => match pair.content() {
            [host, port] if port.unpack_i32() == Some(0) => *host,
            [_, port] => anyhow::bail!(
                "bindAddress: a client binds only its address; the port is the kernel's (give 0, not {port})"
            ),
            _ => anyhow::bail!("bindAddress is an address or an (address, 0) pair, not {value}"),
        },
        None => value,
    };
    let Some(text) = address.unpack_str() else {
        anyhow::bail!("bindAddress is an IP address, not {address}");
    };
    Ok(Some(parse_ip_param("bindAddress", text)?))
}

/// A TCP client endpoint from Twisted's arguments.
pub fn tcp_client(
    host: &str,
    port: u32,
    timeout: Value,
    bind_address: NoneOr<Value>,
) -> anyhow::Result<ClientEndpoint> {
    tcp_connect(
        host,
        port,
        timeout_of(timeout)?,
        bind_address_of(bind_address)?,
    )
}

/// A TCP client endpoint, through the parser so the host is checked as any description's is.
pub fn tcp_connect(
    host: &str,
    port: u32,
    timeout: Duration,
    bind_address: Option<std::net::IpAddr>,
) -> anyhow::Result<ClientEndpoint> {
    let port =
        u16::try_from(port).map_err(|_| anyhow::anyhow!("port must be 0..65535, got {port}"))?;
    let text = ClientEndpoint::Tcp(TcpConnect {
        host: host.to_owned(),
        port,
        timeout,
        bind_address,
    })
    .to_string();
    Ok(ClientEndpoint::parse(&text)?)
}

/// A TLS client description over `tcp`, with what a context factory adds (nothing: rtwisted's
/// TLS clients always verify, against the system's roots).
pub fn tls_client(tcp: ClientEndpoint, context: Value) -> anyhow::Result<String> {
    match context.downcast_ref::<ContextFactory>() {
        Some(ContextFactory { server: None }) => {}
        _ => anyhow::bail!(
            "an SSL client takes ssl.ClientContextFactory(), not {context}; for trust roots or a client certificate use a tls: client description"
        ),
    }
    Ok(format!("tls{}", tcp.to_string().trim_start_matches("tcp")))
}

/// The key and certificate of a server context factory.
pub fn server_context(context: Value) -> anyhow::Result<(String, String)> {
    match context.downcast_ref::<ContextFactory>() {
        Some(ContextFactory {
            server: Some(files),
        }) => Ok(files.clone()),
        _ => anyhow::bail!(
            "an SSL server takes ssl.DefaultOpenSSLContextFactory(privateKeyFileName, certificateFileName), not {context}"
        ),
    }
}

/// An endpoint value from a description.
fn endpoint(server: bool, description: &str) -> anyhow::Result<Endpoint> {
    let description = if server {
        ServerEndpoint::parse(description)?.to_string()
    } else {
        ClientEndpoint::parse(description)?.to_string()
    };
    Ok(Endpoint {
        server,
        description,
    })
}

/// An SSL server description.
fn ssl_server(port: u32, context: Value, backlog: u32, interface: &str) -> anyhow::Result<String> {
    let (key, certificate) = server_context(context)?;
    Ok(format!(
        "ssl:{port}:privateKey={}:certKey={}:backlog={backlog}:interface={}",
        quote(&key),
        quote(&certificate),
        quote(interface)
    ))
}

/// `wantPID` / `checkPID` as a strports flag: unset keeps rtwisted's default.
fn flag_of(value: NoneOr<Value>, name: &str) -> anyhow::Result<Option<bool>> {
    match value {
        NoneOr::None => Ok(None),
        NoneOr::Other(value) => match (value.unpack_bool(), value.unpack_i32()) {
            (Some(flag), _) => Ok(Some(flag)),
            (_, Some(0)) => Ok(Some(false)),
            (_, Some(1)) => Ok(Some(true)),
            _ => anyhow::bail!("{name} is 0 or 1, not {value}"),
        },
    }
}

#[starlark_module]
pub(super) fn endpoint_members(builder: &mut GlobalsBuilder) {
    /// `endpoints.serverFromString(reactor, "tcp:80")`.
    fn serverFromString<'v>(
        #[starlark(require = pos)] reactor: Value<'v>,
        #[starlark(require = pos)] description: &str,
    ) -> anyhow::Result<Endpoint> {
        let _ = reactor;
        endpoint(true, description)
    }

    /// `endpoints.clientFromString(reactor, "tcp:host=example.org:port=80")`.
    fn clientFromString<'v>(
        #[starlark(require = pos)] reactor: Value<'v>,
        #[starlark(require = pos)] description: &str,
    ) -> anyhow::Result<Endpoint> {
        let _ = reactor;
        endpoint(false, description)
    }

    /// `endpoints.TCP4ServerEndpoint(reactor, port, backlog=50, interface='')`.
    fn TCP4ServerEndpoint<'v>(
        #[starlark(require = pos)] reactor: Value<'v>,
        #[starlark(require = pos)] port: u32,
        #[starlark(default = 50)] backlog: u32,
        #[starlark(default = "")] interface: &str,
    ) -> anyhow::Result<Endpoint> {
        let _ = reactor;
        endpoint(
            true,
            &format!(
                "tcp:{port}:backlog={backlog}:interface={}",
                quote(interface)
            ),
        )
    }

    /// `endpoints.TCP6ServerEndpoint(reactor, port, backlog=50, interface='::')`.
    fn TCP6ServerEndpoint<'v>(
        #[starlark(require = pos)] reactor: Value<'v>,
        #[starlark(require = pos)] port: u32,
        #[starlark(default = 50)] backlog: u32,
        #[starlark(default = "::")] interface: &str,
    ) -> anyhow::Result<Endpoint> {
        let _ = reactor;
        endpoint(
            true,
            &format!(
                "tcp6:{port}:backlog={backlog}:interface={}",
                quote(interface)
            ),
        )
    }

    /// `endpoints.UNIXServerEndpoint(reactor, address, backlog=50, mode=0o666, wantPID=...)`;
    /// the lock file is on unless `wantPID=0`.
    fn UNIXServerEndpoint<'v>(
        #[starlark(require = pos)] reactor: Value<'v>,
        #[starlark(require = pos)] address: &str,
        #[starlark(default = 50)] backlog: u32,
        #[starlark(default = 0o666)] mode: u32,
        #[starlark(default = NoneOr::None)] wantPID: NoneOr<Value<'v>>,
    ) -> anyhow::Result<Endpoint> {
        let _ = reactor;
        let lockfile = flag_of(wantPID, "wantPID")?.unwrap_or(true);
        endpoint(
            true,
            &format!(
                "unix:{}:backlog={backlog}:mode={mode:o}:lockfile={}",
                quote(address),
                u8::from(lockfile)
            ),
        )
    }

    /// `endpoints.SSL4ServerEndpoint(reactor, port, sslContextFactory, backlog=50,
    /// interface='')`.
    fn SSL4ServerEndpoint<'v>(
        #[starlark(require = pos)] reactor: Value<'v>,
        #[starlark(require = pos)] port: u32,
        #[starlark(require = pos)] sslContextFactory: Value<'v>,
        #[starlark(default = 50)] backlog: u32,
        #[starlark(default = "")] interface: &str,
    ) -> anyhow::Result<Endpoint> {
        let _ = reactor;
        endpoint(
            true,
            &ssl_server(port, sslContextFactory, backlog, interface)?,
        )
    }

    /// `endpoints.TCP4ClientEndpoint(reactor, host, port, timeout=30, bindAddress=None)`.
    fn TCP4ClientEndpoint<'v>(
        #[starlark(require = pos)] reactor: Value<'v>,
        #[starlark(require = pos)] host: &str,
        #[starlark(require = pos)] port: u32,
        #[starlark(default = 30)] timeout: Value<'v>,
        #[starlark(default = NoneOr::None)] bindAddress: NoneOr<Value<'v>>,
    ) -> anyhow::Result<Endpoint> {
        let _ = reactor;
        endpoint(
            false,
            &tcp_client(host, port, timeout, bindAddress)?.to_string(),
        )
    }

    /// `endpoints.TCP6ClientEndpoint(reactor, host, port, timeout=30, bindAddress=None)`.
    fn TCP6ClientEndpoint<'v>(
        #[starlark(require = pos)] reactor: Value<'v>,
        #[starlark(require = pos)] host: &str,
        #[starlark(require = pos)] port: u32,
        #[starlark(default = 30)] timeout: Value<'v>,
        #[starlark(default = NoneOr::None)] bindAddress: NoneOr<Value<'v>>,
    ) -> anyhow::Result<Endpoint> {
        let _ = reactor;
        endpoint(
            false,
            &tcp_client(host, port, timeout, bindAddress)?.to_string(),
        )
    }

    /// `endpoints.HostnameEndpoint(reactor, host, port, timeout=30, bindAddress=None)`.
    fn HostnameEndpoint<'v>(
        #[starlark(require = pos)] reactor: Value<'v>,
        #[starlark(require = pos)] host: &str,
        #[starlark(require = pos)] port: u32,
        #[starlark(default = 30)] timeout: Value<'v>,
        #[starlark(default = NoneOr::None)] bindAddress: NoneOr<Value<'v>>,
    ) -> anyhow::Result<Endpoint> {
        let _ = reactor;
        endpoint(
            false,
            &tcp_client(host, port, timeout, bindAddress)?.to_string(),
        )
    }

    /// `endpoints.UNIXClientEndpoint(reactor, path, timeout=30, checkPID=0)`.
    fn UNIXClientEndpoint<'v>(
        #[starlark(require = pos)] reactor: Value<'v>,
        #[starlark(require = pos)] path: &str,
        #[starlark(default = 30)] timeout: Value<'v>,
        #[starlark(default = NoneOr::None)] checkPID: NoneOr<Value<'v>>,
    ) -> anyhow::Result<Endpoint> {
        let _ = reactor;
        let seconds = timeout_of(timeout)?.as_secs_f64();
        let lockfile = flag_of(checkPID, "checkPID")?.unwrap_or(false);
        endpoint(
            false,
            &format!(
                "unix:path={}:timeout={seconds}:lockfile={}",
                quote(path),
                u8::from(lockfile)
            ),
        )
    }

    /// `endpoints.SSL4ClientEndpoint(reactor, host, port, sslContextFactory, timeout=30,
    /// bindAddress=None)`.
    fn SSL4ClientEndpoint<'v>(
        #[starlark(require = pos)] reactor: Value<'v>,
        #[starlark(require = pos)] host: &str,
        #[starlark(require = pos)] port: u32,
        #[starlark(require = pos)] sslContextFactory: Value<'v>,
        #[starlark(default = 30)] timeout: Value<'v>,
        #[starlark(default = NoneOr::None)] bindAddress: NoneOr<Value<'v>>,
    ) -> anyhow::Result<Endpoint> {
        let _ = reactor;
        let tcp = tcp_client(host, port, timeout, bindAddress)?;
        endpoint(false, &tls_client(tcp, sslContextFactory)?)
    }

    /// `endpoints.quoteStringArgument(text)`: backslashes and colons escaped, as Twisted does.
    fn quoteStringArgument(#[starlark(require = pos)] argument: &str) -> anyhow::Result<String> {
        Ok(argument.replace('\\', "\\\\").replace(':', "\\:"))
    }
}
