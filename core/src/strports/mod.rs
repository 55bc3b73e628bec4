//! Strports: endpoints written as strings, the way Twisted's `strports` and
//! `serverFromString` read them.
//!
//! ```
//! use rtwisted_core::strports::ServerEndpoint;
//! let endpoint: ServerEndpoint = "tcp:8080:interface=127.0.0.1".parse().unwrap();
//! assert_eq!(endpoint.to_string(), "tcp:8080:interface=127.0.0.1");
//! let err = "tcp:70000".parse::<ServerEndpoint>().unwrap_err();
//! assert_eq!(err.to_string(), "invalid endpoint 'tcp:70000': port must be 0..65535, got 70000");
//! ```
//!
//! Server endpoints so far:
//! - `tcp:PORT[:interface=ADDR][:backlog=N]` (IPv4; interface defaults to all addresses,
//!   backlog to 50, as in Twisted);
//! - `tcp6:PORT[:interface=ADDR6][:backlog=N]` (IPv6; `interface=[::1]` or `interface=\:\:1`);
//! - `systemd:domain=INET|INET6:index=N` (a socket from systemd socket activation).
//!
//! Every endpoint has one canonical string form (defaults left out), and an endpoint
//! serializes as that string, so snapshots and `rtap inspect` show `tcp:8080`. Endpoint type
//! names are matched case-insensitively (Twisted is case-sensitive for its built-in types only,
//! which surprises people: `TCP:80` fails there, `TCP6:80` works).

mod params;
mod tokenize;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use params::Params;
pub use tokenize::{Description, quote, tokenize};

/// Twisted's default listen backlog.
pub const DEFAULT_BACKLOG: u32 = 50;

/// What was wrong with an endpoint description (without the description itself; see
/// [`InvalidEndpoint`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrportError {
    /// The description was empty.
    #[error("empty endpoint description: write a type and its arguments, like 'tcp:8080'")]
    Empty,
    /// The description does not start with a type.
    #[error("an endpoint description starts with its type, like 'tcp:8080'")]
    NoType,
    /// The first positional segment is not a known type.
    #[error("unknown endpoint type '{found}' (expected one of: {expected})")]
    UnknownType {
        /// The type as written.
        found: String,
        /// The known types.
        expected: String,
    },
    /// A required parameter is missing.
    #[error("{kind} endpoint needs {what}, like '{example}'")]
    Missing {
        /// The endpoint type.
        kind: &'static str,
        /// The missing parameter, with its article ("a port").
        what: &'static str,
        /// A correct description.
        example: &'static str,
    },
    /// A parameter's value does not parse.
    #[error("{param} must be {expected}, got '{value}'")]
    BadValue {
        /// The parameter.
        param: &'static str,
        /// What was written.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A port number out of range.
    #[error("port must be 0..65535, got {0}")]
    PortRange(String),
    /// A keyword the endpoint type does not take.
    #[error("unknown parameter '{param}' for a {kind} endpoint (expected: {expected})")]
    UnknownParam {
        /// The endpoint type.
        kind: &'static str,
        /// The parameter as written.
        param: String,
        /// The parameters the type takes.
        expected: &'static str,
    },
    /// The same parameter given twice (by position and keyword, or twice by keyword).
    #[error("parameter '{0}' is given twice")]
    Duplicate(String),
    /// More positional segments than the type takes.
    #[error("too many positional arguments for a {kind} endpoint: '{extra}'{}", empty_hint(.extra))]
    TooManyPositional {
        /// The endpoint type.
        kind: &'static str,
        /// The first extra segment.
        extra: String,
    },
    /// An address of the wrong family for the type.
    #[error("{kind} listens on {family}; '{address}' is not one (use {instead})")]
    WrongFamily {
        /// The endpoint type.
        kind: &'static str,
        /// The family the type needs.
        family: &'static str,
        /// The address given.
        address: String,
        /// The type to use instead.
        instead: &'static str,
    },
    /// A description ending in a lone backslash.
    #[error("the description ends with a lone backslash; write '\\\\' for a literal backslash")]
    TrailingBackslash,
    /// A `[` with no closing `]`.
    #[error("'[' without a closing ']'")]
    UnclosedBracket,
}

fn empty_hint(extra: &str) -> &'static str {
    if extra.is_empty() {
        " (an unescaped ':'? write IPv6 addresses as [::1], or escape ':' as '\\:')"
    } else {
        ""
    }
}

/// An endpoint description that failed to parse, with the description and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid endpoint '{description}': {reason}")]
pub struct InvalidEndpoint {
    /// The description as written.
    pub description: String,
    /// What was wrong.
    #[source]
    pub reason: StrportError,
}

/// The server endpoint types this build knows, for error messages.
pub const SERVER_TYPES: &str = "tcp, tcp6, systemd";

/// A TCP listener: address family, interface, port and backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpListen {
    /// The interface to bind; its family decides between `tcp` and `tcp6`.
    pub interface: IpAddr,
    /// The port; 0 asks the kernel for a free one.
    pub port: u16,
    /// The listen backlog.
    pub backlog: u32,
}

impl TcpListen {
    /// The socket address to bind.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.interface, self.port)
    }
}

/// Where a stream server listens, parsed from a strports description.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerEndpoint {
    /// `tcp:` or `tcp6:`.
    Tcp(TcpListen),
    /// `systemd:domain=INET|INET6:index=N`: a listening socket passed by systemd socket
    /// activation (`LISTEN_FDS`), adopted instead of bound.
    Systemd(SystemdSocket),
}

/// The address family an adopted systemd socket must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    /// IPv4 (`INET`).
    Inet,
    /// IPv6 (`INET6`).
    Inet6,
}

/// A socket handed over by systemd: its expected family and its index among `LISTEN_FDS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SystemdSocket {
    /// The family the socket must have (checked when it is adopted).
    pub domain: Domain,
    /// The offset into the inherited descriptors (fd 3 + index).
    pub index: usize,
}

impl ServerEndpoint {
    /// Parses a server description, such as `tcp:8080:interface=127.0.0.1`.
    pub fn parse(description: &str) -> Result<Self, InvalidEndpoint> {
        parse_server(description).map_err(|reason| InvalidEndpoint {
            description: description.to_owned(),
            reason,
        })
    }
}

fn parse_server(text: &str) -> Result<ServerEndpoint, StrportError> {
    if text.trim().is_empty() {
        return Err(StrportError::Empty);
    }
    let params = Params::new(tokenize(text)?)?;
    let kind = params.kind().to_ascii_lowercase();
    match kind.as_str() {
        "tcp" => parse_tcp(params, false),
        "tcp6" => parse_tcp(params, true),
        "systemd" => parse_systemd(params),
        _ => Err(StrportError::UnknownType {
            found: params.kind().to_owned(),
            expected: SERVER_TYPES.to_owned(),
        }),
    }
}

fn parse_tcp(mut params: Params, v6: bool) -> Result<ServerEndpoint, StrportError> {
    let (kind, example, expected) = if v6 {
        ("tcp6", "tcp6:8080", "port, interface, backlog")
    } else {
        ("tcp", "tcp:8080", "port, interface, backlog")
    };
    let port = params.take("port", Some(0))?.ok_or(StrportError::Missing {
        kind,
        what: "a port",
        example,
    })?;
    let port = parse_port(&port)?;
    let interface = match params.take("interface", None)? {
        None => None,
        Some(text) if text.is_empty() => None,
        Some(text) => Some(parse_ip(&text)?),
    };
    let backlog = match params.take("backlog", None)? {
        None => DEFAULT_BACKLOG,
        Some(text) => text.parse::<u32>().map_err(|_| StrportError::BadValue {
            param: "backlog",
            value: text,
            expected: "a whole number",
        })?,
    };
    params.finish(kind, expected)?;
    let interface = match (interface, v6) {
        (None, false) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (None, true) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        (Some(ip @ IpAddr::V4(_)), false) | (Some(ip @ IpAddr::V6(_)), true) => ip,
        (Some(ip), false) => {
            return Err(StrportError::WrongFamily {
                kind,
                family: "IPv4",
                address: ip.to_string(),
                instead: "tcp6",
            });
        }
        (Some(ip), true) => {
            return Err(StrportError::WrongFamily {
                kind,
                family: "IPv6",
                address: ip.to_string(),
                instead: "tcp",
            });
        }
    };
    Ok(ServerEndpoint::Tcp(TcpListen {
        interface,
        port,
        backlog,
    }))
}

fn parse_systemd(mut params: Params) -> Result<ServerEndpoint, StrportError> {
    const EXAMPLE: &str = "systemd:domain=INET:index=0";
    let domain = params.take("domain", None)?.ok_or(StrportError::Missing {
        kind: "systemd",
        what: "a domain",
        example: EXAMPLE,
    })?;
    let domain = match domain.to_ascii_uppercase().as_str() {
        "INET" => Domain::Inet,
        "INET6" => Domain::Inet6,
        _ => {
            return Err(StrportError::BadValue {
                param: "domain",
                value: domain,
                expected: "INET or INET6 (UNIX sockets come later)",
            });
        }
    };
    let index = params.take("index", None)?.ok_or(StrportError::Missing {
        kind: "systemd",
        what: "an index",
        example: EXAMPLE,
    })?;
    let index = index.parse::<usize>().map_err(|_| StrportError::BadValue {
        param: "index",
        value: index,
        expected: "a number from 0",
    })?;
    params.finish("systemd", "domain, index")?;
    Ok(ServerEndpoint::Systemd(SystemdSocket { domain, index }))
}

/// Parses a port number, 0..=65535.
pub fn parse_port(text: &str) -> Result<u16, StrportError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StrportError::BadValue {
            param: "port",
            value: text.to_owned(),
            expected: "a number 0..65535",
        });
    }
    text.parse::<u16>()
        .map_err(|_| StrportError::PortRange(text.to_owned()))
}

/// Parses an IP address, with or without `[...]` around an IPv6 one.
pub fn parse_ip(text: &str) -> Result<IpAddr, StrportError> {
    let bare = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse::<IpAddr>().map_err(|_| StrportError::BadValue {
        param: "interface",
        value: text.to_owned(),
        expected: "an IP address",
    })
}

impl fmt::Display for ServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerEndpoint::Tcp(tcp) => {
                let v6 = tcp.interface.is_ipv6();
                write!(f, "{}:{}", if v6 { "tcp6" } else { "tcp" }, tcp.port)?;
                if !tcp.interface.is_unspecified() {
                    match tcp.interface {
                        IpAddr::V4(ip) => write!(f, ":interface={ip}")?,
                        IpAddr::V6(ip) => write!(f, ":interface=[{ip}]")?,
                    }
                }
                if tcp.backlog != DEFAULT_BACKLOG {
                    write!(f, ":backlog={}", tcp.backlog)?;
                }
                Ok(())
            }
            ServerEndpoint::Systemd(socket) => {
                let domain = match socket.domain {
                    Domain::Inet => "INET",
                    Domain::Inet6 => "INET6",
                };
                write!(f, "systemd:domain={domain}:index={}", socket.index)
            }
        }
    }
}

impl FromStr for ServerEndpoint {
    type Err = InvalidEndpoint;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ServerEndpoint::parse(text)
    }
}

impl Serialize for ServerEndpoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ServerEndpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
