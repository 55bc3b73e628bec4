//! Connecting to a client endpoint: TCP, TLS over TCP, or a UNIX socket, each bounded by the
//! endpoint's timeout, giving the same [`Connection`] a server's protocols get.

use std::net::SocketAddr;

use rustls_pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream, UnixStream};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use super::{Address, Connection, tls};
use crate::strports::{ClientEndpoint, TcpConnect, UnixConnect};

/// A connection attempt failed; the message names the endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The attempt failed or was refused.
    #[error("cannot connect to {endpoint}: {source}")]
    Io {
        /// The endpoint.
        endpoint: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The attempt took longer than the endpoint's timeout.
    #[error("cannot connect to {endpoint}: no answer within {seconds}s")]
    TimedOut {
        /// The endpoint.
        endpoint: String,
        /// The timeout.
        seconds: f64,
    },
    /// TLS could not be set up.
    #[error("cannot connect to {endpoint}: {source}")]
    Tls {
        /// The endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: tls::TlsError,
    },
    /// The host is not a valid name for certificate checks.
    #[error("cannot connect to {endpoint}: '{host}' is not a valid TLS server name")]
    ServerName {
        /// The endpoint.
        endpoint: String,
        /// The host.
        host: String,
    },
    /// `lockfile=1`, and no live server holds the socket's lock file.
    #[error("cannot connect to {endpoint}: no live server holds {lock} (lockfile=1 asks for one)")]
    NoServer {
        /// The endpoint.
        endpoint: String,
        /// The lock file.
        lock: String,
    },
}

/// Connects over TCP; from `bind_address` when there is one (Twisted's `bindAddress`), trying
/// the host's addresses of that family in turn.
async fn tcp(connect: &TcpConnect) -> std::io::Result<TcpStream> {
    let host = connect.ascii_host();
    let stream = match connect.bind_address {
        None => TcpStream::connect((host.as_ref(), connect.port)).await?,
        Some(local) => {
            let mut last = None;
            for address in tokio::net::lookup_host((host.as_ref(), connect.port)).await? {
                if address.is_ipv4() != local.is_ipv4() {
                    continue;
                }
                let socket = if local.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                socket.bind(SocketAddr::new(local, 0))?;
                match socket.connect(address).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        return Ok(stream);
                    }
                    Err(error) => last = Some(error),
                }
            }
            return Err(last.unwrap_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::AddrNotAvailable,
                    format!(
                        "{host} has no {} address to reach from bindAddress {local}",
                        if local.is_ipv4() { "IPv4" } else { "IPv6" }
                    ),
                )
            }));
        }
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// `PATH.lock` of a UNIX socket, as the server's `lockfile` makes it.
fn lock_path(unix: &UnixConnect) -> std::path::PathBuf {
    let mut name = unix.path.as_os_str().to_owned();
    name.push(".lock");
    std::path::PathBuf::from(name)
}

/// True when a live process holds the advisory lock on `PATH.lock` (Twisted's `checkPID`).
fn server_holds_lock(unix: &UnixConnect) -> bool {
    match std::fs::File::open(lock_path(unix)) {
        Ok(file) => matches!(
            file.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        ),
        Err(_) => false,
    }
}

/// Connects to `endpoint`; the connection's `shutdown` token is `shutdown`.
pub async fn connect(
    endpoint: &ClientEndpoint,
    shutdown: CancellationToken,
) -> Result<Connection, ConnectError> {
    let text = endpoint.to_string();
    let io = |source| ConnectError::Io {
        endpoint: text.clone(),
        source,
    };
    let attempt = async {
        match endpoint {
            ClientEndpoint::Tcp(settings) => {
                let stream = tcp(settings).await.map_err(io)?;
                let (peer, local) = inet_addresses(&stream);
                Ok(Connection {
                    stream: Box::new(stream),
                    peer,
                    local,
                    shutdown,
                })
            }
            ClientEndpoint::Tls(settings) => {
                let config = tls::client_config(settings).map_err(|source| ConnectError::Tls {
                    endpoint: text.clone(),
                    source,
                })?;
                let name =
                    ServerName::try_from(settings.tcp.ascii_host().into_owned()).map_err(|_| {
                        ConnectError::ServerName {
                            endpoint: text.clone(),
                            host: settings.tcp.host.clone(),
                        }
                    })?;
                let stream = tcp(&settings.tcp).await.map_err(io)?;
                let (peer, local) = inet_addresses(&stream);
                let stream = TlsConnector::from(config)
                    .connect(name, stream)
                    .await
                    .map_err(io)?;
                Ok(Connection {
                    stream: Box::new(stream),
                    peer,
                    local,
                    shutdown,
                })
            }
            ClientEndpoint::Unix(settings) => {
                if settings.lockfile && !server_holds_lock(settings) {
                    return Err(ConnectError::NoServer {
                        endpoint: text.clone(),
                        lock: lock_path(settings).display().to_string(),
                    });
                }
                let stream = UnixStream::connect(&settings.path).await.map_err(io)?;
                Ok(Connection {
                    stream: Box::new(stream),
                    peer: Address::Unix(settings.path.clone()),
                    local: Address::Unix(Default::default()),
                    shutdown,
                })
            }
        }
    };
    let timeout = endpoint.timeout();
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::TimedOut {
            endpoint: text.clone(),
            seconds: timeout.as_secs_f64(),
        }),
    }
}

fn inet_addresses(stream: &TcpStream) -> (Address, Address) {
    let unspecified = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    (
        Address::Inet(stream.peer_addr().unwrap_or(unspecified)),
        Address::Inet(stream.local_addr().unwrap_or(unspecified)),
    )
}
