//! `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`: which etcd cluster holds a store, and under which
//! key prefix.

use std::fmt;
use std::str::FromStr;

/// The scheme every etcd store address starts with.
pub const SCHEME: &str = "etcd://";

/// Why an `etcd://` address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The text does not start with `etcd://`.
    #[error("'{text}' is not an etcd address: write etcd://HOST:PORT[,HOST:PORT...]/PREFIX")]
    NotEtcd {
        /// The text given.
        text: String,
    },
    /// No `HOST:PORT` before the prefix.
    #[error("'{text}' names no etcd endpoint: write etcd://HOST:PORT[,HOST:PORT...]/PREFIX")]
    NoEndpoint {
        /// The text given.
        text: String,
    },
    /// One endpoint is not `HOST:PORT`.
    #[error("'{text}': endpoint '{endpoint}' {reason} (write HOST:PORT, e.g. 127.0.0.1:2379)")]
    BadEndpoint {
        /// The text given.
        text: String,
        /// The endpoint at fault.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No `/PREFIX` after the endpoints.
    #[error(
        "'{text}' has no key prefix: add one after the endpoints, e.g. etcd://127.0.0.1:2379/rtwisted"
    )]
    NoPrefix {
        /// The text given.
        text: String,
    },
    /// The prefix holds something a key prefix cannot.
    #[error("'{text}': prefix '{prefix}' {reason}")]
    BadPrefix {
        /// The text given.
        text: String,
        /// The prefix at fault.
        prefix: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A parsed `etcd://` address: the cluster's client endpoints and the key prefix under which
/// the store keeps everything.
///
/// ```
/// use rtwisted_fleet::EtcdAddress;
/// let address: EtcdAddress = "etcd://127.0.0.1:2379,10.0.0.2:2379/prod/web".parse().unwrap();
/// assert_eq!(address.endpoints, ["127.0.0.1:2379", "10.0.0.2:2379"]);
/// assert_eq!(address.prefix, "prod/web");
/// assert_eq!(address.to_string(), "etcd://127.0.0.1:2379,10.0.0.2:2379/prod/web");
/// assert!("etcd://127.0.0.1/prod".parse::<EtcdAddress>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EtcdAddress {
    /// The client endpoints, `HOST:PORT` each, in the order given.
    pub endpoints: Vec<String>,
    /// The key prefix, without leading or trailing `/` (`prod/web`).
    pub prefix: String,
}

impl EtcdAddress {
    /// True when `text` is meant as an etcd address (starts with `etcd://`), so a caller can
    /// tell it from a store folder before parsing.
    pub fn is_etcd(text: &str) -> bool {
        text.get(..SCHEME.len())
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case(SCHEME))
    }

    /// The endpoints as URLs for the client (`http://HOST:PORT`).
    pub fn urls(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .map(|endpoint| format!("http://{endpoint}"))
            .collect()
    }
}

impl fmt::Display for EtcdAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.endpoints.join(","), self.prefix)
    }
}

impl FromStr for EtcdAddress {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, AddressError> {
        if !EtcdAddress::is_etcd(text) {
            return Err(AddressError::NotEtcd {
                text: text.to_owned(),
            });
        }
        let rest = &text[SCHEME.len()..];
        let (hosts, prefix) = match rest.split_once('/') {
            Some((hosts, prefix)) => (hosts, prefix),
            None => (rest, ""),
        };
        if hosts.is_empty() {
            return Err(AddressError::NoEndpoint {
                text: text.to_owned(),
            });
        }
        let endpoints = hosts
            .split(',')
            .map(|endpoint| {
                check_endpoint(endpoint)
                    .map(|()| endpoint.to_owned())
                    .map_err(|reason| AddressError::BadEndpoint {
                        text: text.to_owned(),
                        endpoint: endpoint.to_owned(),
                        reason,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let prefix = prefix.trim_end_matches('/');
        if prefix.is_empty() {
            return Err(AddressError::NoPrefix {
                text: text.to_owned(),
            });
        }
        check_prefix(prefix).map_err(|reason| AddressError::BadPrefix {
            text: text.to_owned(),
            prefix: prefix.to_owned(),
            reason,
        })?;
        Ok(EtcdAddress {
            endpoints,
            prefix: prefix.to_owned(),
        })
    }
}

/// Checks one `HOST:PORT` (the host a name, an IPv4 address or a bracketed IPv6 address).
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    if endpoint.is_empty() {
        return Err("is empty".to_owned());
    }
    let Some((host, port)) = endpoint.rsplit_once(':') else {
        return Err("has no port".to_owned());
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    if !host_ok {
        return Err(format!("has no valid host ('{host}')"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("has no valid port ('{port}', 1 to 65535)")),
        Ok(_) => Ok(()),
    }
}

/// Checks a key prefix: printable ASCII without spaces, no empty or dot-only segments.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if let Some(bad) = prefix.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("holds {bad:?}: use printable ASCII without spaces"));
    }
    if prefix
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err("has an empty, '.' or '..' segment".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EtcdAddress, AddressError> {
        text.parse()
    }

    #[test]
    fn a_single_endpoint_and_a_prefix_parse() {
        let address = parse("etcd://localhost:2379/rtwisted/").unwrap();
        assert_eq!(address.endpoints, ["localhost:2379"]);
        assert_eq!(address.prefix, "rtwisted");
        assert_eq!(address.urls(), ["http://localhost:2379"]);
    }

    #[test]
    fn ipv6_endpoints_are_bracketed() {
        let address = parse("etcd://[::1]:2379,[fe80::1]:2380/p").unwrap();
        assert_eq!(address.endpoints, ["[::1]:2379", "[fe80::1]:2380"]);
        assert!(matches!(
            parse("etcd://::1:2379/p"),
            Err(AddressError::BadEndpoint { .. })
        ));
    }

    #[test]
    fn each_mistake_has_its_own_error() {
        assert!(matches!(
            parse("/var/lib/store"),
            Err(AddressError::NotEtcd { .. })
        ));
        assert!(matches!(
            parse("etcd:///prefix"),
            Err(AddressError::NoEndpoint { .. })
        ));
        assert!(matches!(
            parse("etcd://127.0.0.1:2379"),
            Err(AddressError::NoPrefix { .. })
        ));
        assert!(matches!(
            parse("etcd://127.0.0.1:2379,/p"),
            Err(AddressError::BadEndpoint { .. })
        ));
        assert!(matches!(
            parse("etcd://127.0.0.1:0/p"),
            Err(AddressError::BadEndpoint { .. })
        ));
        assert!(matches!(
            parse("etcd://127.0.0.1:99999/p"),
            Err(AddressError::BadEndpoint { .. })
        ));
        assert!(matches!(
            parse("etcd://127.0.0.1:2379/a//b"),
            Err(AddressError::BadPrefix { .. })
        ));
        assert!(matches!(
            parse("etcd://127.0.0.1:2379/a b"),
            Err(AddressError::BadPrefix { .. })
        ));
    }

    #[test]
    fn the_message_names_the_endpoint_and_the_fix() {
        let message = parse("etcd://db1:2379,db2/p").unwrap_err().to_string();
        assert_eq!(
            message,
            "'etcd://db1:2379,db2/p': endpoint 'db2' has no port (write HOST:PORT, e.g. 127.0.0.1:2379)"
        );
    }

    #[test]
    fn the_scheme_is_recognised_in_any_case() {
        assert!(EtcdAddress::is_etcd("ETCD://h:1/p"));
        assert!(!EtcdAddress::is_etcd("./etcd"));
        assert_eq!(parse("Etcd://h:1/p").unwrap().endpoints, ["h:1"]);
    }
}
