//! Server endpoints: where a service listens.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::params::{self, Params};
use super::tokenize::quote;
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

/// Which of the descriptors systemd passed a `systemd:` endpoint adopts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Descriptor {
    /// The offset into the inherited descriptors (fd 3 + index).
    Index(usize),
    /// The descriptor's name in `LISTEN_FDNAMES` (a socket unit's `FileDescriptorName=`).
    Name(String),
}

impl fmt::Display for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Descriptor::Index(index) => write!(f, "at index {index}"),
            Descriptor::Name(name) => write!(f, "named '{name}'"),
        }
    }
}

/// A socket handed over by systemd: its expected family, and its index or name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SystemdSocket {
    /// The family the socket must have (checked when it is adopted).
    pub domain: Domain,
    /// Which inherited descriptor it is.
    pub descriptor: Descriptor,
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
    /// `systemd:domain=INET|INET6|UNIX:index=N` (or `:name=NAME`): a listening socket passed
    /// by systemd socket activation (`LISTEN_FDS`, `LISTEN_FDNAMES`), adopted instead of bound.
    Systemd(SystemdSocket),
}

impl ServerEndpoint {
    /// Parses a server description, such as `tcp:8080:interface=127.0.0.1`.
    pub fn parse(description: &str) -> Result<Self, InvalidEndpoint> {
        if let Some(endpoint) = parse_canonical_tcp(description) {
            return Ok(endpoint);
        }
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

/// The canonical IPv4 TCP form, `tcp:PORT[:interface=IPV4][:backlog=N]` (what snapshots hold
/// for most servers), read byte by byte without the tokenizer and without allocating. It
/// accepts only plain digits (no signs, no leading zeros in an address) and each keyword at
/// most once; anything else, including anything invalid, is `None` and goes to the full
/// parser, which gives the same endpoint for every description this accepts.
fn parse_canonical_tcp(text: &str) -> Option<ServerEndpoint> {
    let mut rest = text.as_bytes().strip_prefix(b"tcp:")?;
    let port = u16::try_from(take_digits(&mut rest, u32::from(u16::MAX))?).ok()?;
    let mut interface = None;
    let mut backlog = None;
    while let Some(segment) = rest.strip_prefix(b":") {
        rest = segment;
        if let Some(value) = rest.strip_prefix(b"interface=") {
            rest = value;
            if interface.is_some() {
                return None;
            }
            let mut octets = [0u8; 4];
            for (i, octet) in octets.iter_mut().enumerate() {
                if i > 0 {
                    rest = rest.strip_prefix(b".")?;
                }
                if rest.len() > 1 && rest[0] == b'0' && rest[1].is_ascii_digit() {
                    return None;
                }
                *octet = u8::try_from(take_digits(&mut rest, 255)?).ok()?;
            }
            interface = Some(Ipv4Addr::from(octets));
        } else if let Some(value) = rest.strip_prefix(b"backlog=") {
            rest = value;
            if backlog.is_some() {
                return None;
            }
            backlog = Some(take_digits(&mut rest, u32::MAX)?);
        } else {
            return None;
        }
    }
    if !rest.is_empty() {
        return None;
    }
    Some(ServerEndpoint::Tcp(TcpListen {
        interface: IpAddr::V4(interface.unwrap_or(Ipv4Addr::UNSPECIFIED)),
        port,
        backlog: backlog.unwrap_or(DEFAULT_BACKLOG),
    }))
}

/// Reads one or more ASCII digits off the front of `rest` as a number no greater than `max`.
fn take_digits(rest: &mut &[u8], max: u32) -> Option<u32> {
    let digits = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let (number, after) = rest.split_at(digits);
    let mut value: u32 = 0;
    for digit in number {
        value = value
            .checked_mul(10)?
            .checked_add(u32::from(digit - b'0'))
            .filter(|value| *value <= max)?;
    }
    *rest = after;
    Some(value)
}

fn parse_server(text: &str) -> Result<ServerEndpoint, StrportError> {
    let (params, kind) = params::read(text)?;
    match kind.as_str() {
        "tcp" => parse_tcp(params, "tcp", false).map(ServerEndpoint::Tcp),
        "tcp6" => parse_tcp(params, "tcp6", true).map(ServerEndpoint::Tcp),
        "unix" => parse_unix(params),
        "ssl" | "tls" => parse_tls(params),
        "udp" => parse_udp(params),
        "systemd" => parse_systemd(params),
        _ => Err(params::unknown_type(&params, &kind, SERVER_TYPES, |port| {
            format!("tcp:{port}")
        })),
    }
}

/// Where a TCP-based listener's positional arguments go (Twisted's parsers take them in their
/// signature's order, which differs between `tcp:` and `tcp6:`).
struct TcpPositions {
    interface: usize,
    backlog: usize,
}

/// `tcp:PORT:INTERFACE:BACKLOG` (Twisted's `_parseTCP(factory, port, interface, backlog)`).
const TCP_POSITIONS: TcpPositions = TcpPositions {
    interface: 1,
    backlog: 2,
};

/// `tcp6:PORT:BACKLOG:INTERFACE` (Twisted's `_TCP6ServerParser._parseServer(reactor, port,
/// backlog, interface)`).
const TCP6_POSITIONS: TcpPositions = TcpPositions {
    backlog: 1,
    interface: 2,
};

/// `ssl:PORT:PRIVATEKEY:CERTKEY:SSLMETHOD:INTERFACE:BACKLOG:EXTRACERTCHAIN:DHPARAMETERS`
/// (Twisted's `_parseSSL`).
const SSL_POSITIONS: TcpPositions = TcpPositions {
    interface: 4,
    backlog: 5,
};

/// The port, interface and backlog of a TCP-based listener; leaves other parameters alone.
fn take_tcp(
    params: &mut Params,
    kind: &'static str,
    example: &'static str,
    v6: Option<bool>,
    positions: &TcpPositions,
) -> Result<TcpListen, StrportError> {
    let port = params.take("port", Some(0))?.ok_or(StrportError::Missing {
        kind,
        what: "a port",
        example,
    })?;
    let port = parse_port(&port)?;
    let interface = match params.take("interface", Some(positions.interface))? {
        None => None,
        Some(text) if text.is_empty() => None,
        Some(text) => Some(parse_ip(&text)?),
    };
    let backlog = match params.take("backlog", Some(positions.backlog))? {
        None => DEFAULT_BACKLOG,
        Some(text) => parse_u32("backlog", text)?,
    };
    let interface = match (interface, v6) {
        (None, Some(true)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        (None, _) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (Some(ip), None) => ip,
        (Some(ip @ IpAddr::V4(_)), Some(false)) | (Some(ip @ IpAddr::V6(_)), Some(true)) => ip,
        (Some(ip), Some(v6)) => {
            return Err(StrportError::WrongFamily {
                kind,
                family: if v6 { "IPv6" } else { "IPv4" },
                address: ip.to_string(),
                instead: if v6 { "tcp" } else { "tcp6" },
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
    let (example, positions) = if v6 {
        ("tcp6:8080", &TCP6_POSITIONS)
    } else {
        ("tcp:8080", &TCP_POSITIONS)
    };
    let tcp = take_tcp(&mut params, kind, example, Some(v6), positions)?;
    params.finish(kind, "port, interface, backlog")?;
    Ok(tcp)
}

/// `unix:ADDRESS:MODE:BACKLOG:LOCKFILE` (Twisted's `_parseUNIX(factory, address, mode,
/// backlog, lockfile)`).
fn parse_unix(mut params: Params) -> Result<ServerEndpoint, StrportError> {
    let path = params::take_unix_path(&mut params, "address", "unix:/run/app.sock")?;
    let mode = match params.take("mode", Some(1))? {
        None => DEFAULT_MODE,
        Some(text) => parse_mode(text)?,
    };
    let backlog = match params.take("backlog", Some(2))? {
        None => DEFAULT_BACKLOG,
        Some(text) => parse_u32("backlog", text)?,
    };
    let lockfile = match params.take("lockfile", Some(3))? {
        None => true,
        Some(text) => parse_flag("lockfile", text)?,
    };
    params.finish("unix", "address, mode, backlog, lockfile")?;
    Ok(ServerEndpoint::Unix(UnixListen {
        path: PathBuf::from(path),
        mode,
        lockfile,
        backlog,
    }))
}

/// Why a Twisted TLS parameter has no rustls counterpart.
const NO_SSLMETHOD: &str =
    "rustls always negotiates TLS 1.3 or 1.2 and has no older protocol to pick";
const NO_DH_PARAMETERS: &str = "rustls uses only elliptic-curve key exchange (ECDHE), which needs no Diffie-Hellman parameters file";

fn parse_tls(mut params: Params) -> Result<ServerEndpoint, StrportError> {
    let tcp = take_tcp(
        &mut params,
        "ssl",
        "ssl:443:privateKey=key.pem:certKey=cert.pem",
        None,
        &SSL_POSITIONS,
    )?;
    let private_key = params
        .take("privateKey", Some(1))?
        .map_or_else(|| PathBuf::from(DEFAULT_KEY), PathBuf::from);
    let cert_key = params.take("certKey", Some(2))?.map(PathBuf::from);
    if params.take("sslmethod", Some(3))?.is_some() {
        return Err(StrportError::NoRustlsMeaning {
            param: "sslmethod",
            why: NO_SSLMETHOD,
        });
    }
    let extra_cert_chain = params.take("extraCertChain", Some(6))?.map(PathBuf::from);
    if params.take("dhParameters", Some(7))?.is_some() {
        return Err(StrportError::NoRustlsMeaning {
            param: "dhParameters",
            why: NO_DH_PARAMETERS,
        });
    }
    params.finish(
        "ssl",
        "port, privateKey, certKey, interface, backlog, extraCertChain",
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

/// `udp:PORT:INTERFACE` (rtwisted's own; Twisted has no datagram strports).
fn parse_udp(mut params: Params) -> Result<ServerEndpoint, StrportError> {
    let port = params.take("port", Some(0))?.ok_or(StrportError::Missing {
        kind: "udp",
        what: "a port",
        example: "udp:8080",
    })?;
    let port = parse_port(&port)?;
    let interface = match params.take("interface", Some(1))? {
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(text) if text.is_empty() => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(text) => parse_ip(&text)?,
    };
    params.finish("udp", "port, interface")?;
    Ok(ServerEndpoint::Udp(UdpListen { interface, port }))
}

/// `systemd:DOMAIN:INDEX:NAME` (Twisted's `_SystemdParser._parseServer(reactor, domain, index,
/// name)`): exactly one of the index and the name.
fn parse_systemd(mut params: Params) -> Result<ServerEndpoint, StrportError> {
    const EXAMPLE: &str = "systemd:domain=INET:index=0";
    let domain = params
        .take("domain", Some(0))?
        .ok_or(StrportError::Missing {
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
    let index = params.take("index", Some(1))?;
    let name = params.take("name", Some(2))?;
    params.finish("systemd", "domain, index, name")?;
    let descriptor = match (index, name) {
        (Some(index), None) => {
            Descriptor::Index(index.parse::<usize>().map_err(|_| StrportError::BadValue {
                param: "index",
                value: index,
                expected: "a number from 0",
            })?)
        }
        (None, Some(name)) => Descriptor::Name(parse_fd_name(name)?),
        _ => {
            return Err(StrportError::OneOf {
                kind: "systemd",
                what: "exactly one of index= or name=",
                example: "systemd:domain=INET:name=web",
            });
        }
    };
    Ok(ServerEndpoint::Systemd(SystemdSocket {
        domain,
        descriptor,
    }))
}

/// A systemd `FileDescriptorName`: 1 to 255 printable ASCII characters, no `:` (the separator
/// of `LISTEN_FDNAMES`).
fn parse_fd_name(name: String) -> Result<String, StrportError> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && byte != b':');
    if valid {
        Ok(name)
    } else {
        Err(StrportError::BadValue {
            param: "name",
            value: name,
            expected: "a systemd FileDescriptorName (printable ASCII, no ':', at most 255)",
        })
    }
}

/// `:interface=ADDR` unless it is the default. An IPv6 address has its colons escaped
/// (`interface=\:\:1`), the one form Twisted reads back: it takes `[::1]` for a host name.
fn write_interface(f: &mut fmt::Formatter<'_>, interface: IpAddr, default: IpAddr) -> fmt::Result {
    if interface == default {
        return Ok(());
    }
    match interface {
        IpAddr::V4(ip) => write!(f, ":interface={ip}"),
        IpAddr::V6(ip) => write!(f, ":interface={}", quote(&ip.to_string())),
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
                match &socket.descriptor {
                    Descriptor::Index(index) => write!(f, "systemd:domain={domain}:index={index}"),
                    Descriptor::Name(name) => {
                        write!(f, "systemd:domain={domain}:name={}", quote(name))
                    }
                }
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
        // The common IPv4 TCP form is written without the formatting machinery or a heap
        // string; it is byte for byte what `Display` writes.
        let mut text = ShortText::default();
        if let ServerEndpoint::Tcp(tcp) = self
            && let IpAddr::V4(interface) = tcp.interface
            && text.write_tcp_v4(tcp, interface).is_some()
        {
            return serializer.serialize_str(text.as_str());
        }
        serializer.collect_str(self)
    }
}

/// A short ASCII text on the stack: room for the longest IPv4 TCP description
/// (`tcp:65535:interface=255.255.255.255:backlog=4294967295`, 54 bytes).
struct ShortText {
    bytes: [u8; 64],
    len: usize,
}

impl Default for ShortText {
    fn default() -> Self {
        ShortText {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl ShortText {
    fn push(&mut self, text: &[u8]) -> Option<()> {
        let end = self.len.checked_add(text.len())?;
        self.bytes.get_mut(self.len..end)?.copy_from_slice(text);
        self.len = end;
        Some(())
    }

    fn push_number(&mut self, mut number: u32) -> Option<()> {
        let mut digits = [0u8; 10];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (number % 10) as u8;
            number /= 10;
            if number == 0 {
                break;
            }
        }
        self.push(&digits[start..])
    }

    /// What `Display` writes for an IPv4 TCP listener.
    fn write_tcp_v4(&mut self, tcp: &TcpListen, interface: Ipv4Addr) -> Option<()> {
        self.push(b"tcp:")?;
        self.push_number(u32::from(tcp.port))?;
        if interface != Ipv4Addr::UNSPECIFIED {
            self.push(b":interface=")?;
            for (i, octet) in interface.octets().into_iter().enumerate() {
                if i > 0 {
                    self.push(b".")?;
                }
                self.push_number(u32::from(octet))?;
            }
        }
        if tcp.backlog != DEFAULT_BACKLOG {
            self.push(b":backlog=")?;
            self.push_number(tcp.backlog)?;
        }
        Some(())
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever pushed, so this never falls back.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for ServerEndpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_string(EndpointVisitor)
    }
}

/// Reads an endpoint from a string without copying it first; accepts what `String` accepts
/// (a string, or bytes that are UTF-8) and words its errors the same way.
struct EndpointVisitor;

impl serde::de::Visitor<'_> for EndpointVisitor {
    type Value = ServerEndpoint;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        text.parse().map_err(E::custom)
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.visit_str(text),
            Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(bytes), &self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_canonical_tcp_shortcut_takes_only_what_the_parser_reads_the_same() {
        for text in [
            "tcp:80",
            "tcp:00080",
            "tcp:0:interface=0.0.0.0",
            "tcp:65535:interface=255.255.255.255:backlog=4294967295",
            "tcp:7:backlog=0:interface=10.0.0.1",
        ] {
            let fast = parse_canonical_tcp(text);
            assert!(fast.is_some(), "{text}");
            assert_eq!(fast, parse_server(text).ok(), "{text}");
        }
        for text in [
            "tcp:",
            "tcp:65536",
            "tcp:80:",
            "tcp::80",
            "TCP:80",
            "tcp:+80",
            "tcp:80:interface=01.2.3.4",
            "tcp:80:interface=1.2.3",
            "tcp:80:interface=1.2.3.4.5",
            "tcp:80:interface=256.1.1.1",
            "tcp:80:interface=",
            "tcp:80:interface=1.2.3.4:interface=1.2.3.4",
            "tcp:80:backlog=+5",
            "tcp:80:backlog=4294967296",
            "tcp:80:backlog=1:backlog=2",
            "tcp:80:port=80",
            r"tcp:80:interface=1.2.3.4\:",
            "tcp:80:interface=[::1]",
            "tcp:80:90",
        ] {
            assert_eq!(parse_canonical_tcp(text), None, "{text}");
        }
    }

    proptest! {
        #[test]
        fn the_canonical_tcp_shortcut_agrees_with_the_parser(
            text in "tcp:[0-9]{0,6}(:(interface=[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}|backlog=[+0-9]{0,11}|port=[0-9]{1,3}|interface=[0-9.]{0,9})){0,3}:?"
        ) {
            if let Some(fast) = parse_canonical_tcp(&text) {
                prop_assert_eq!(Some(fast), parse_server(&text).ok());
            }
        }

        #[test]
        fn the_short_text_of_a_tcp_endpoint_is_its_display(
            octets in any::<[u8; 4]>(),
            unspecified in any::<bool>(),
            port in any::<u16>(),
            backlog in prop_oneof![Just(DEFAULT_BACKLOG), any::<u32>()],
        ) {
            let interface = if unspecified { Ipv4Addr::UNSPECIFIED } else { Ipv4Addr::from(octets) };
            let tcp = TcpListen { interface: IpAddr::V4(interface), port, backlog };
            let mut text = ShortText::default();
            prop_assert!(text.write_tcp_v4(&tcp, interface).is_some());
            prop_assert_eq!(text.as_str(), ServerEndpoint::Tcp(tcp).to_string());
            let json = serde_json::to_string(&ServerEndpoint::Tcp(tcp)).unwrap_or_default();
            prop_assert_eq!(json, format!("\"{}\"", ServerEndpoint::Tcp(tcp)));
        }
    }
}
