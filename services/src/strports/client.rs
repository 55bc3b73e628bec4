//! Client endpoints: where a client connects.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::params::Params;
use super::tokenize::{quote, tokenize};
use super::{
    DEFAULT_TIMEOUT, InvalidEndpoint, StrportError, format_seconds, parse_port, parse_timeout,
    unbracket,
};

/// The client endpoint types this build knows, for error messages.
pub const CLIENT_TYPES: &str = "tcp, unix, tls, ssl";

/// A TCP connection to a host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TcpConnect {
    /// A host name or an IP address.
    pub host: String,
    /// The port.
    pub port: u16,
    /// How long a connection attempt may take.
    pub timeout: Duration,
}

/// A connection to a UNIX stream socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnixConnect {
    /// The socket file.
    pub path: PathBuf,
    /// How long a connection attempt may take.
    pub timeout: Duration,
}

/// A TLS connection over TCP, verifying the server's certificate for `host`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsConnect {
    /// The TCP side; its host is also the name the certificate must carry.
    pub tcp: TcpConnect,
    /// A folder of PEM files with the trusted CA certificates (default: the system's).
    pub ca_certs_dir: Option<PathBuf>,
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
    if text.trim().is_empty() {
        return Err(StrportError::Empty);
    }
    let params = Params::new(tokenize(text)?)?;
    let kind = params.kind().to_ascii_lowercase();
    match kind.as_str() {
        "tcp" => {
            let mut params = params;
            let tcp = take_tcp(&mut params, "tcp", "tcp:host=example.org:port=80")?;
            params.finish("tcp", "host, port, timeout")?;
            Ok(ClientEndpoint::Tcp(tcp))
        }
        "tls" | "ssl" => {
            let mut params = params;
            let tcp = take_tcp(&mut params, "tls", "tls:host=example.org:port=443")?;
            let ca_certs_dir = params.take("caCertsDir", None)?.map(PathBuf::from);
            params.finish("tls", "host, port, timeout, caCertsDir")?;
            Ok(ClientEndpoint::Tls(TlsConnect { tcp, ca_certs_dir }))
        }
        "unix" => {
            let mut params = params;
            let path = params
                .take("path", Some(0))?
                .filter(|path| !path.is_empty())
                .ok_or(StrportError::Missing {
                    kind: "unix",
                    what: "a path",
                    example: "unix:path=/run/app.sock",
                })?;
            let timeout = take_timeout(&mut params)?;
            params.finish("unix", "path, timeout")?;
            Ok(ClientEndpoint::Unix(UnixConnect {
                path: PathBuf::from(path),
                timeout,
            }))
        }
        _ => Err(StrportError::UnknownType {
            found: params.kind().to_owned(),
            expected: CLIENT_TYPES.to_owned(),
        }),
    }
}

fn take_timeout(params: &mut Params) -> Result<Duration, StrportError> {
    match params.take("timeout", None)? {
        None => Ok(DEFAULT_TIMEOUT),
        Some(text) => parse_timeout(text),
    }
}

/// Host and port, by keyword or position as Twisted reads them: two positionals are host and
/// port; one positional is the port when `host=` is given, else the host.
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
            if inner != host && inner.parse::<std::net::Ipv6Addr>().is_ok() {
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
    let port = port.ok_or(StrportError::Missing {
        kind,
        what: "a port",
        example,
    })?;
    let port = parse_port(&port)?;
    let timeout = take_timeout(params)?;
    Ok(TcpConnect {
        host,
        port,
        timeout,
    })
}

fn write_tcp(f: &mut fmt::Formatter<'_>, kind: &str, tcp: &TcpConnect) -> fmt::Result {
    if tcp.host.parse::<std::net::Ipv6Addr>().is_ok() {
        write!(f, "{kind}:host=[{}]:port={}", tcp.host, tcp.port)?;
    } else {
        write!(f, "{kind}:host={}:port={}", quote(&tcp.host), tcp.port)?;
    }
    write_timeout(f, tcp.timeout)
}

fn write_timeout(f: &mut fmt::Formatter<'_>, timeout: Duration) -> fmt::Result {
    if timeout != DEFAULT_TIMEOUT {
        write!(f, ":timeout={}", format_seconds(timeout))?;
    }
    Ok(())
}

impl fmt::Display for ClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientEndpoint::Tcp(tcp) => write_tcp(f, "tcp", tcp),
            ClientEndpoint::Tls(tls) => {
                write_tcp(f, "tls", &tls.tcp)?;
                if let Some(dir) = &tls.ca_certs_dir {
                    write!(f, ":caCertsDir={}", quote(&dir.to_string_lossy()))?;
                }
                Ok(())
            }
            ClientEndpoint::Unix(unix) => {
                write!(f, "unix:path={}", quote(&unix.path.to_string_lossy()))?;
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
