//! Server endpoints: where a service listens.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::params::Params;
use super::tokenize::{quote, tokenize};
use super::{
    InvalidEndpoint, StrportError, parse_flag, parse_ip, parse_mode, parse_port, parse_u32,
};

/// Twisted's default listen backlog.
pub const DEFAULT_BACKLOG: u32 = 50;

/// The server endpoint types this build knows, for error messages.
pub const SERVER_TYPES: &str = "tcp, tcp6, unix, ssl, tls, udp, systemd";

/// Twisted's default UNIX socket mode.
const DEFAULT_MODE: u32 = 0o666;

/// Twisted's default key file for `ssl:`.
const DEFAULT_KEY: &str = "server.pem";

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

/// A UNIX stream socket listener.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnixListen {
    /// The socket file.
    pub path: PathBuf,
    /// The socket file's mode (default 666).
    pub mode: u32,
    /// Guard the socket with `PATH.lock`, so a stale socket file is removed only when no live
    /// process owns it (default on).
    pub lockfile: bool,
    /// The listen backlog.
    pub backlog: u32,
}

/// A TLS listener on TCP.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsListen {
    /// The TCP side.
    pub tcp: TcpListen,
    /// The PEM file with the private key.
    pub private_key: PathBuf,
    /// The PEM file with the certificate (default: the key's file).
    pub cert_key: Option<PathBuf>,
    /// A PEM file of intermediate certificates sent after the certificate.
    pub extra_cert_chain: Option<PathBuf>,
}

impl TlsListen {
    /// The certificate file: `certKey`, else the key's file.
    pub fn certificate(&self) -> &PathBuf {
        self.cert_key.as_ref().unwrap_or(&self.private_key)
    }
}

/// A UDP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpListen {
    /// The interface to bind.
    pub interface: IpAddr,
    /// The port; 0 asks the kernel for a free one.
    pub port: u16,
}

impl UdpListen {
    /// The socket address to bind.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.interface, self.port)
    }
}

/// The address family an adopted systemd socket must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    /// IPv4 (`INET`).
    Inet,
    /// IPv6 (`INET6`).
    Inet6,
    /// A UNIX stream socket (`UNIX`).
    Unix,
}

/// A socket handed over by systemd: its expected family and its index among `LISTEN_FDS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SystemdSocket {
    /// The family the socket must have (checked when it is adopted).
    pub domain: Domain,
    /// The offset into the inherited descriptors (fd 3 + index).
    pub index: usize,
}

/// Where a server listens, parsed from a strports description.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerEndpoint {
    /// `tcp:` or `tcp6:`.
    Tcp(TcpListen),
    /// `unix:`.
    Unix(UnixListen),
    /// `ssl:` / `tls:`.
    Tls(TlsListen),
    /// `udp:` (datagrams, for datagram servers).
    Udp(UdpListen),
    /// `systemd:domain=INET|INET6:index=N`: a listening socket passed by systemd socket
    /// activation (`LISTEN_FDS`), adopted instead of bound.
    Systemd(SystemdSocket),
}

impl ServerEndpoint {
    /// Parses a server description, such as `tcp:8080:interface=127.0.0.1`.
    pub fn parse(description: &str) -> Result<Self, InvalidEndpoint> {
        parse_server(description).map_err(|reason| InvalidEndpoint {
            description: description.to_owned(),
            reason,
        })
    }

    /// True for stream endpoints (everything but `udp:`).
    pub fn is_stream(&self) -> bool {
        !matches!(self, ServerEndpoint::Udp(_))
    }
}

fn parse_server(text: &str) -> Result<ServerEndpoint, StrportError> {
    if text.trim().is_empty() {
        return Err(StrportError::Empty);
    }
    let params = Params::new(tokenize(text)?)?;
    let kind = params.kind().to_ascii_lowercase();
    match kind.as_str() {
        "tcp" => parse_tcp(params, "tcp", false).map(ServerEndpoint::Tcp),
        "tcp6" => parse_tcp(params, "tcp6", true).map(ServerEndpoint::Tcp),
        "unix" => parse_unix(params),
        "ssl" | "tls" => parse_tls(params),
        "udp" => parse_udp(params),
        "systemd" => parse_systemd(params),
        _ => Err(StrportError::UnknownType {
            found: params.kind().to_owned(),
            expected: SERVER_TYPES.to_owned(),
        }),
    }
}

/// The port, interface and backlog of a TCP-based listener; leaves other parameters alone.
fn take_tcp(
    params: &mut Params,
    kind: &'static str,
    example: &'static str,
    v6: Option<bool>,
) -> Result<TcpListen, StrportError> {
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
        Some(text) => parse_u32("backlog", text)?,
    };
    let interface = match (interface, v6) {
        (None, Some(true)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        (None, _) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (Some(ip), None) => ip,
        (Some(ip @ IpAddr::V4(_)), Some(false)) | (Some(ip @ IpAddr::V6(_)), Some(true)) => ip,
        (Some(ip), Some(false)) => {
            return Err(StrportError::WrongFamily {
                kind,
                family: "IPv4",
                address: ip.to_string(),
                instead: "tcp6",
            });
        }
        (Some(ip), Some(true)) => {
            return Err(StrportError::WrongFamily {
                kind,
                family: "IPv6",
                address: ip.to_string(),
                instead: "tcp",
            });
        }
    };
    Ok(TcpListen {
        interface,
        port,
        backlog,
    })
}

fn parse_tcp(mut params: Params, kind: &'static str, v6: bool) -> Result<TcpListen, StrportError> {
    let example = if v6 { "tcp6:8080" } else { "tcp:8080" };
    let tcp = take_tcp(&mut params, kind, example, Some(v6))?;
    params.finish(kind, "port, interface, backlog")?;
    Ok(tcp)
}

fn parse_unix(mut params: Params) -> Result<ServerEndpoint, StrportError> {
    let path = params
        .take("address", Some(0))?
        .filter(|path| !path.is_empty())
        .ok_or(StrportError::Missing {
            kind: "unix",
            what: "a path",
            example: "unix:/run/app.sock",
        })?;
    let mode = match params.take("mode", None)? {
        None => DEFAULT_MODE,
        Some(text) => parse_mode(text)?,
    };
    let lockfile = match params.take("lockfile", None)? {
        None => true,
        Some(text) => parse_flag("lockfile", text)?,
    };
    let backlog = match params.take("backlog", None)? {
        None => DEFAULT_BACKLOG,
        Some(text) => parse_u32("backlog", text)?,
    };
    params.finish("unix", "address, mode, lockfile, backlog")?;
    Ok(ServerEndpoint::Unix(UnixListen {
        path: PathBuf::from(path),
        mode,
        lockfile,
        backlog,
    }))
}

fn parse_tls(mut params: Params) -> Result<ServerEndpoint, StrportError> {
    let tcp = take_tcp(
        &mut params,
        "ssl",
        "ssl:443:privateKey=key.pem:certKey=cert.pem",
        None,
    )?;
    let private_key = params
        .take("privateKey", None)?
        .map_or_else(|| PathBuf::from(DEFAULT_KEY), PathBuf::from);
    let cert_key = params.take("certKey", None)?.map(PathBuf::from);
    let extra_cert_chain = params.take("extraCertChain", None)?.map(PathBuf::from);
    params.finish(
        "ssl",
        "port, privateKey, certKey, extraCertChain, interface, backlog",
    )?;
    // certKey equal to privateKey is the default: left out, so the form is canonical.
    let cert_key = cert_key.filter(|cert| *cert != private_key);
    Ok(ServerEndpoint::Tls(TlsListen {
        tcp,
        private_key,
        cert_key,
        extra_cert_chain,
    }))
}

fn parse_udp(mut params: Params) -> Result<ServerEndpoint, StrportError> {
    let port = params.take("port", Some(0))?.ok_or(StrportError::Missing {
        kind: "udp",
        what: "a port",
        example: "udp:8080",
    })?;
    let port = parse_port(&port)?;
    let interface = match params.take("interface", None)? {
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(text) if text.is_empty() => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(text) => parse_ip(&text)?,
    };
    params.finish("udp", "port, interface")?;
    Ok(ServerEndpoint::Udp(UdpListen { interface, port }))
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
        "UNIX" => Domain::Unix,
        _ => {
            return Err(StrportError::BadValue {
                param: "domain",
                value: domain,
                expected: "INET, INET6 or UNIX",
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

fn write_interface(f: &mut fmt::Formatter<'_>, interface: IpAddr, default: IpAddr) -> fmt::Result {
    if interface == default {
        return Ok(());
    }
    match interface {
        IpAddr::V4(ip) => write!(f, ":interface={ip}"),
        IpAddr::V6(ip) => write!(f, ":interface=[{ip}]"),
    }
}

fn write_backlog(f: &mut fmt::Formatter<'_>, backlog: u32) -> fmt::Result {
    if backlog != DEFAULT_BACKLOG {
        write!(f, ":backlog={backlog}")?;
    }
    Ok(())
}

fn path_text(path: &std::path::Path) -> String {
    quote(&path.to_string_lossy())
}

impl fmt::Display for ServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerEndpoint::Tcp(tcp) => {
                let v6 = tcp.interface.is_ipv6();
                write!(f, "{}:{}", if v6 { "tcp6" } else { "tcp" }, tcp.port)?;
                let default = if v6 {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                };
                write_interface(f, tcp.interface, default)?;
                write_backlog(f, tcp.backlog)
            }
            ServerEndpoint::Unix(unix) => {
                write!(f, "unix:{}", path_text(&unix.path))?;
                if unix.mode != DEFAULT_MODE {
                    write!(f, ":mode={:o}", unix.mode)?;
                }
                if !unix.lockfile {
                    f.write_str(":lockfile=0")?;
                }
                write_backlog(f, unix.backlog)
            }
            ServerEndpoint::Tls(tls) => {
                write!(
                    f,
                    "ssl:{}:privateKey={}",
                    tls.tcp.port,
                    path_text(&tls.private_key)
                )?;
                if let Some(cert) = &tls.cert_key {
                    write!(f, ":certKey={}", path_text(cert))?;
                }
                if let Some(chain) = &tls.extra_cert_chain {
                    write!(f, ":extraCertChain={}", path_text(chain))?;
                }
                write_interface(f, tls.tcp.interface, IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
                write_backlog(f, tls.tcp.backlog)
            }
            ServerEndpoint::Udp(udp) => {
                write!(f, "udp:{}", udp.port)?;
                write_interface(f, udp.interface, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            }
            ServerEndpoint::Systemd(socket) => {
                let domain = match socket.domain {
                    Domain::Inet => "INET",
                    Domain::Inet6 => "INET6",
                    Domain::Unix => "UNIX",
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
