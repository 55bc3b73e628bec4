//! Strports: endpoints written as strings, the way Twisted's `strports`,
//! `serverFromString` and `clientFromString` read them.
//!
//! ```
//! use rtwisted_services::strports::{ClientEndpoint, ServerEndpoint};
//! let endpoint: ServerEndpoint = "tcp:8080:interface=127.0.0.1".parse().unwrap();
//! assert_eq!(endpoint.to_string(), "tcp:8080:interface=127.0.0.1");
//! let err = "tcp:70000".parse::<ServerEndpoint>().unwrap_err();
//! assert_eq!(err.to_string(), "invalid endpoint 'tcp:70000': port must be 0..65535, got 70000");
//! let client: ClientEndpoint = "tcp:example.org:80".parse().unwrap();
//! assert_eq!(client.to_string(), "tcp:host=example.org:port=80");
//! ```
//!
//! Server endpoints (positional arguments go in the order of Twisted's parsers, shown here):
//! - `tcp:PORT[:INTERFACE[:BACKLOG]]`, or `tcp:PORT:interface=ADDR:backlog=N` (IPv4; all
//!   addresses and backlog 50 by default);
//! - `tcp6:PORT[:BACKLOG[:INTERFACE]]` (IPv6; `interface=\:\:1`, as Twisted writes it, or
//!   `interface=[::1]`);
//! - `unix:PATH[:MODE[:BACKLOG[:LOCKFILE]]]` (mode 666 and lockfile on by default);
//! - `ssl:PORT:privateKey=FILE[:certKey=FILE][:extraCertChain=FILE][:interface=ADDR][:backlog=N]`
//!   (`tls:` is an alias; the certificate defaults to the key's file, as in Twisted;
//!   `sslmethod=` and `dhParameters=` are refused, as rustls has no such settings);
//! - `udp:PORT[:interface=ADDR]` (datagrams; rtwisted's own);
//! - `systemd:domain=INET|INET6|UNIX:index=N` or `:name=NAME` (a socket from systemd socket
//!   activation, by position or by its `FileDescriptorName`).
//!
//! Client endpoints: `tcp:host=H:port=P[:timeout=S][:bindAddress=ADDR]` (or `tcp:H:P`),
//! `unix:path=PATH[:lockfile=1][:timeout=S]` (or `unix:PATH`), and
//! `tls:host=H:port=P[:trustRoots=DIR][:certificate=FILE[:privateKey=FILE]][:bindAddress=ADDR]`
//! (`ssl:` is an alias, and its spellings `caCertsDir=` and `certKey=` are accepted under
//! either prefix). The timeout defaults to 30 seconds. A non-ASCII host name is IDNA-encoded
//! to connect (`bücher.ch` is `xn--bcher-kva.ch`).
//!
//! Every endpoint has one canonical string form (defaults left out), one Twisted reads back
//! (`tls:` with `trustRoots=`, IPv6 addresses with escaped colons), and an endpoint
//! serializes as that string, so snapshots and `rtap inspect` show `tcp:8080`. Endpoint type
//! names are matched case-insensitively (Twisted is case-sensitive for its built-in server
//! types only, which surprises people: `TCP:80` fails there, `TCP6:80` works). A parameter
//! given twice is an error naming it (Twisted keeps the last).

mod client;
mod params;
mod server;
mod tokenize;

use std::net::IpAddr;
use std::time::Duration;

pub use client::{CLIENT_TYPES, ClientEndpoint, TcpConnect, TlsConnect, UnixConnect};
pub use params::Params;
pub use server::{
    DEFAULT_BACKLOG, Descriptor, Domain, SERVER_TYPES, ServerEndpoint, SystemdSocket, TcpListen,
    TlsListen, UdpListen, UnixListen,
};
pub use tokenize::{Description, quote, tokenize};

/// The default connection timeout of client endpoints (Twisted's).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What was wrong with an endpoint description (without the description itself; see
/// [`InvalidEndpoint`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// A bare port number where a description goes (Twisted's old strports read `7001` as
    /// TCP; its endpoints, and rtwisted, do not).
    #[error("a port alone is not an endpoint: write '{suggestion}'")]
    BarePort {
        /// The description to write instead.
        suggestion: String,
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
    /// One parameter given under both of its names.
    #[error("parameter '{name}' is given twice (once as '{alias}', its other name)")]
    DuplicateAlias {
        /// The parameter's name.
        name: &'static str,
        /// Its other name.
        alias: &'static str,
    },
    /// More positional segments than the type takes.
    #[error("too many positional arguments for a {kind} endpoint: '{extra}'")]
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
    /// An empty positional segment: `::`, or a trailing `:`.
    #[error(
        "an empty argument between two ':' (an unescaped ':'? write IPv6 addresses as [::1], or escape ':' as '\\:')"
    )]
    EmptyArgument,
    /// A Twisted parameter that configures OpenSSL and has no meaning with rustls.
    #[error("{param}= has no meaning here: {why}; leave it out")]
    NoRustlsMeaning {
        /// The parameter.
        param: &'static str,
        /// What rustls does instead.
        why: &'static str,
    },
    /// Two parameters that exclude each other, or neither of two that one is needed from.
    #[error("{kind} endpoint takes {what}, like '{example}'")]
    OneOf {
        /// The endpoint type.
        kind: &'static str,
        /// The choice, in words ("exactly one of index= or name=").
        what: &'static str,
        /// A correct description.
        example: &'static str,
    },
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

/// Parses an `interface=` IP address, with or without `[...]` around an IPv6 one.
pub fn parse_ip(text: &str) -> Result<IpAddr, StrportError> {
    parse_ip_param("interface", text)
}

/// Parses an IP address given as parameter `param`, with or without `[...]` around an IPv6 one.
pub fn parse_ip_param(param: &'static str, text: &str) -> Result<IpAddr, StrportError> {
    unbracket(text)
        .parse::<IpAddr>()
        .map_err(|_| StrportError::BadValue {
            param,
            value: text.to_owned(),
            expected: "an IP address",
        })
}

/// `text` without the `[...]` around it, if it has them.
pub fn unbracket(text: &str) -> &str {
    text.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text)
}

/// Parses a whole number parameter.
pub fn parse_u32(param: &'static str, text: String) -> Result<u32, StrportError> {
    text.parse::<u32>().map_err(|_| StrportError::BadValue {
        param,
        value: text,
        expected: "a whole number",
    })
}

/// Parses `0` or `1`.
pub fn parse_flag(param: &'static str, text: String) -> Result<bool, StrportError> {
    match text.as_str() {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(StrportError::BadValue {
            param,
            value: text,
            expected: "0 or 1",
        }),
    }
}

/// Parses an octal file mode such as `660`.
pub fn parse_mode(text: String) -> Result<u32, StrportError> {
    match u32::from_str_radix(&text, 8) {
        Ok(mode) if mode <= 0o7777 && !text.is_empty() => Ok(mode),
        _ => Err(StrportError::BadValue {
            param: "mode",
            value: text,
            expected: "an octal file mode like 660",
        }),
    }
}

/// Parses a positive number of seconds (`30`, `2.5`).
pub fn parse_timeout(text: String) -> Result<Duration, StrportError> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() && seconds < 1e9 => {
            Ok(Duration::from_secs_f64(seconds))
        }
        _ => Err(StrportError::BadValue {
            param: "timeout",
            value: text,
            expected: "a positive number of seconds",
        }),
    }
}

/// A duration as the shortest number of seconds that reads back the same.
pub fn format_seconds(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if duration.subsec_nanos() == 0 {
        duration.as_secs().to_string()
    } else {
        format!("{seconds}")
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod twisted_tests;
