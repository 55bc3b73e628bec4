//! Client endpoints: where a client connects.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::params::{self, Params};
use super::tokenize::quote;
use super::{
    DEFAULT_TIMEOUT, InvalidEndpoint, StrportError, format_seconds, parse_flag, parse_ip_param,
    parse_port, parse_timeout, unbracket,
};

/// The client endpoint types this build knows, for error messages.
pub const CLIENT_TYPES: &str = "tcp, unix, tls, ssl";

/// A TCP connection to a host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TcpConnect {
    /// A host name (as written; non-ASCII names are IDNA-encoded to connect) or an IP address.
    pub host: String,
    /// The port.
    pub port: u16,
    /// How long a connection attempt may take.
    pub timeout: Duration,
    /// The local address to connect from (Twisted's `bindAddress`); the kernel picks the port.
    pub bind_address: Option<IpAddr>,
}

impl TcpConnect {
    /// The host as DNS and TLS see it: a non-ASCII name IDNA-encoded (`bücher.example` is
    /// `xn--bcher-kva.example`), anything else as written.
    pub fn ascii_host(&self) -> Cow<'_, str> {
        if self.host.is_ascii() {
            return Cow::Borrowed(&self.host);
        }
        // The parser checked the name encodes; a host set by hand that does not is left as
        // it is, and fails to resolve.
        idna::domain_to_ascii(&self.host).map_or(Cow::Borrowed(self.host.as_str()), Cow::Owned)
    }
}

/// A connection to a UNIX stream socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnixConnect {
    /// The socket file.
    pub path: PathBuf,
    /// How long a connection attempt may take.
    pub timeout: Duration,
    /// Connect only if a live server holds `PATH.lock` (Twisted's `lockfile=1`, `checkPID`).
    pub lockfile: bool,
}

/// A TLS connection over TCP, verifying the server's certificate for `host`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsConnect {
    /// The TCP side; its host is also the name the certificate must carry.
    pub tcp: TcpConnect,
    /// A folder of PEM files with the trusted CA certificates (Twisted's `trustRoots`;
    /// `caCertsDir` is its `ssl:` name); default: the system's roots.
    pub trust_roots: Option<PathBuf>,
    /// A client certificate (PEM) to present (Twisted's `certificate`, `certKey` on `ssl:`).
    pub certificate: Option<PathBuf>,
    /// The client certificate's private key (PEM); default: the certificate's file.
    pub private_key: Option<PathBuf>,
}

/// Where a client connects, parsed from a strports description.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientEndpoint {
    /// `tcp:host=H:port=P`.
    Tcp(TcpConnect),
    /// `unix:path=PATH`.
    Unix(UnixConnect),
    /// `tls:host=H:port=P` (or `ssl:`).
    Tls(TlsConnect),
}

impl ClientEndpoint {
    /// Parses a client description, such as `tcp:host=example.org:port=80`.
    pub fn parse(description: &str) -> Result<Self, InvalidEndpoint> {
        parse_client(description).map_err(|reason| InvalidEndpoint {
            description: description.to_owned(),
            reason,
        })
    }

    /// The connection timeout.
    pub fn timeout(&self) -> Duration {
        match self {
            ClientEndpoint::Tcp(tcp) => tcp.timeout,
            ClientEndpoint::Unix(unix) => unix.timeout,
            ClientEndpoint::Tls(tls) => tls.tcp.timeout,
        }
    }
}

fn parse_client(text: &str) -> Result<ClientEndpoint, StrportError> {
    let (params, kind) = params::read(text)?;
    match kind.as_str() {
        "tcp" => {
            let mut params = params;
            let tcp = take_tcp(&mut params, "tcp", "tcp:host=example.org:port=80")?;
            params.finish("tcp", "host, port, timeout, bindAddress")?;
            Ok(ClientEndpoint::Tcp(tcp))
        }
        "tls" | "ssl" => parse_tls(params),
        "unix" => {
            let mut params = params;
            let path = params::take_unix_path(&mut params, "path", "unix:path=/run/app.sock")?;
            let lockfile = match params.take("lockfile", None)? {
                None => false,
                Some(text) => parse_flag("lockfile", text)?,
            };
            let timeout = take_timeout(&mut params)?;
            params.finish("unix", "path, lockfile, timeout")?;
            Ok(ClientEndpoint::Unix(UnixConnect {
                path: PathBuf::from(path),
                timeout,
                lockfile,
            }))
        }
        _ => Err(params::unknown_type(&params, &kind, CLIENT_TYPES, |port| {
            format!("tcp:host=HOST:port={port}")
        })),
    }
}

/// Takes the first of two names of one parameter (Twisted's `tls:` name, then its `ssl:` one);
/// both given is an error naming both.
fn take_either(
    params: &mut Params,
    name: &'static str,
    alias: &'static str,
) -> Result<Option<String>, StrportError> {
    match (params.take(name, None)?, params.take(alias, None)?) {
        (Some(_), Some(_)) => Err(StrportError::DuplicateAlias { name, alias }),
        (value, None) | (None, value) => Ok(value),
    }
}

/// `tls:` (Twisted's `_parseClientTLS`: `trustRoots`, `certificate`, `privateKey`) and `ssl:`
/// (Twisted's `_parseClientSSL`: `caCertsDir`, `certKey`, `privateKey`): one endpoint, each
/// spelling accepted under either prefix. Both always verify the server.
fn parse_tls(mut params: Params) -> Result<ClientEndpoint, StrportError> {
    let tcp = take_tcp(&mut params, "tls", "tls:host=example.org:port=443")?;
    let trust_roots = take_either(&mut params, "trustRoots", "caCertsDir")?.map(PathBuf::from);
    let certificate = take_either(&mut params, "certificate", "certKey")?.map(PathBuf::from);
    let private_key = params.take("privateKey", None)?.map(PathBuf::from);
    params.finish(
        "tls",
        "host, port, timeout, bindAddress, trustRoots, certificate, privateKey",
    )?;
    if certificate.is_none() && private_key.is_some() {
        return Err(StrportError::OneOf {
            kind: "tls",
            what: "privateKey= only together with certificate= (the client certificate)",
            example: "tls:example.org:443:certificate=client.pem:privateKey=client-key.pem",
        });
    }
    // A key in the certificate's own file is the default: left out, so the form is canonical.
    let private_key = private_key.filter(|key| Some(key) != certificate.as_ref());
    Ok(ClientEndpoint::Tls(TlsConnect {
        tcp,
        trust_roots,
        certificate,
        private_key,
    }))
}

fn take_timeout(params: &mut Params) -> Result<Duration, StrportError> {
    match params.take("timeout", None)? {
        None => Ok(DEFAULT_TIMEOUT),
        Some(text) => parse_timeout(text),
    }
}

/// Host and port, by keyword or position as Twisted reads them: two positionals are host and
/// port; one positional is the port when `host=` is given, else the host. Also the timeout and
/// `bindAddress`.
fn take_tcp(
    params: &mut Params,
    kind: &'static str,
    example: &'static str,
) -> Result<TcpConnect, StrportError> {
    let host_keyword = params.take("host", None)?;
    let (host, port) = match host_keyword {
        Some(host) => (Some(host), params.take("port", Some(0))?),
        None => {
            let host = params.take("host", Some(0))?;
            (host, params.take("port", Some(1))?)
        }
    };
    // Brackets are IPv6 syntax only: `[::1]` is the host `::1`, while `[a]` stays `[a]`, so the
    // canonical form always parses back (the strports fuzz target found hosts that did not).
    let host = host
        .map(|host| {
            let inner = unbracket(&host);
            if inner != host && inner.parse::<Ipv6Addr>().is_ok() {
                inner.to_owned()
            } else {
                host
            }
        })
        .filter(|host| !host.is_empty())
        .ok_or(StrportError::Missing {
            kind,
            what: "a host",
            example,
        })?;
    // Twisted IDNA-encodes a host name to connect (`_idnaBytes`); one that cannot be encoded
    // is refused here rather than at the first connection.
    if !host.is_ascii() && idna::domain_to_ascii(&host).is_err() {
        return Err(StrportError::BadValue {
            param: "host",
            value: host,
            expected: "a host name that IDNA can encode, or an IP address",
        });
    }
    let port = port.ok_or(StrportError::Missing {
        kind,
        what: "a port",
        example,
    })?;
    let port = parse_port(&port)?;
    let timeout = take_timeout(params)?;
    let bind_address = params
        .take("bindAddress", None)?
        .map(|text| parse_ip_param("bindAddress", &text))
        .transpose()?;
    Ok(TcpConnect {
        host,
        port,
        timeout,
        bind_address,
    })
}

/// An IP address as Twisted reads it back: IPv6 colons escaped (`\:\:1`), not bracketed.
fn ip_text(ip: IpAddr) -> String {
    quote(&ip.to_string())
}

fn write_tcp(f: &mut fmt::Formatter<'_>, kind: &str, tcp: &TcpConnect) -> fmt::Result {
    write!(f, "{kind}:host={}:port={}", quote(&tcp.host), tcp.port)?;
    write_timeout(f, tcp.timeout)?;
    if let Some(local) = tcp.bind_address {
        write!(f, ":bindAddress={}", ip_text(local))?;
    }
    Ok(())
}

fn write_timeout(f: &mut fmt::Formatter<'_>, timeout: Duration) -> fmt::Result {
    if timeout != DEFAULT_TIMEOUT {
        write!(f, ":timeout={}", format_seconds(timeout))?;
    }
    Ok(())
}

fn write_path(f: &mut fmt::Formatter<'_>, key: &str, path: Option<&PathBuf>) -> fmt::Result {
    match path {
        Some(path) => write!(f, ":{key}={}", quote(&path.to_string_lossy())),
        None => Ok(()),
    }
}

impl fmt::Display for ClientEndpoint {
    /// The canonical form, in Twisted's `tls:` spelling for TLS (`trustRoots=`, `certificate=`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientEndpoint::Tcp(tcp) => write_tcp(f, "tcp", tcp),
            ClientEndpoint::Tls(tls) => {
                write_tcp(f, "tls", &tls.tcp)?;
                write_path(f, "trustRoots", tls.trust_roots.as_ref())?;
                write_path(f, "certificate", tls.certificate.as_ref())?;
                write_path(f, "privateKey", tls.private_key.as_ref())
            }
            ClientEndpoint::Unix(unix) => {
                write!(f, "unix:path={}", quote(&unix.path.to_string_lossy()))?;
                if unix.lockfile {
                    f.write_str(":lockfile=1")?;
                }
                write_timeout(f, unix.timeout)
            }
        }
    }
}

impl FromStr for ClientEndpoint {
    type Err = InvalidEndpoint;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ClientEndpoint::parse(text)
    }
}

impl Serialize for ClientEndpoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClientEndpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
