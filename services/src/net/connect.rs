//! Connecting to a client endpoint: TCP, TLS over TCP, or a UNIX socket, each bounded by the
//! endpoint's timeout, giving the same [`Connection`] a server's protocols get.

use rustls_pki_types::ServerName;
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use super::{Address, Connection, tls};
use crate::strports::{ClientEndpoint, TcpConnect};

/// A connection attempt failed; the message names the endpoint.
#[derive(Debug, thiserror::Error)]
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
}

async fn tcp(connect: &TcpConnect) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect((connect.host.as_str(), connect.port)).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
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
                let name = ServerName::try_from(settings.tcp.host.clone()).map_err(|_| {
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
