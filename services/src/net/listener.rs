//! Listening on any stream endpoint: TCP, TLS over TCP, UNIX sockets, or a socket adopted from
//! systemd. What a protocol gets is the same [`Connection`](super::Connection) for all of them.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};
use tokio_rustls::TlsAcceptor;

use super::unix::{self, BoundUnix};
use super::{Address, Stream, activation, tls};
use crate::strports::{ServerEndpoint, TcpListen, TlsListen};

/// A stream server could not listen; the message names the endpoint and the cause.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Binding failed.
    #[error("cannot listen on {endpoint} ({address}): {source}")]
    Bind {
        /// The endpoint as configured.
        endpoint: String,
        /// What was tried.
        address: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error("cannot listen on {endpoint}: {source}")]
    Tls {
        /// The endpoint as configured.
        endpoint: String,
        /// What was wrong with the key or certificate.
        #[source]
        source: tls::TlsError,
    },
    /// A systemd socket could not be adopted.
    #[error("cannot listen on {endpoint}: {source}")]
    Activation {
        /// The endpoint as configured.
        endpoint: String,
        /// Why.
        #[source]
        source: activation::ActivationError,
    },
    /// A datagram endpoint given to a stream server.
    #[error("{0} is a datagram endpoint; a stream server needs tcp, tcp6, unix, ssl or systemd")]
    NotAStream(String),
}

/// A bound listening socket.
pub enum Bound {
    /// Plain TCP.
    Tcp(TcpListener),
    /// TLS over TCP: the handshake runs per connection.
    Tls(TcpListener, TlsAcceptor),
    /// A UNIX socket (its file goes away with it).
    Unix(BoundUnix),
    /// A UNIX socket adopted from systemd (its file stays: systemd owns it).
    AdoptedUnix(tokio::net::UnixListener),
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Tcp(listener) => f.debug_tuple("Tcp").field(listener).finish(),
            Bound::Tls(listener, _) => f.debug_tuple("Tls").field(listener).finish(),
            Bound::Unix(unix) => f.debug_tuple("Unix").field(unix).finish(),
            Bound::AdoptedUnix(unix) => f.debug_tuple("AdoptedUnix").field(unix).finish(),
        }
    }
}

/// An accepted connection before any TLS handshake.
pub enum Accepted {
    /// Ready to use.
    Ready(Box<dyn Stream>, Address, Address),
    /// A TCP stream that must complete a TLS handshake first.
    Handshake(tokio::net::TcpStream, TlsAcceptor, Address, Address),
}

/// The TLS acceptor for `settings`, offering the `alpn` protocols; a failure names the
/// endpoint `text`.
fn tls_acceptor(
    text: &str,
    settings: &TlsListen,
    alpn: Vec<Vec<u8>>,
) -> Result<TlsAcceptor, ListenError> {
    let config =
        tls::server_config_offering(settings, alpn).map_err(|source| ListenError::Tls {
            endpoint: text.to_owned(),
            source,
        })?;
    Ok(TlsAcceptor::from(config))
}

fn bind_tcp(endpoint: &str, tcp: &TcpListen) -> Result<TcpListener, ListenError> {
    let address = tcp.socket_addr();
    let fail = |source| ListenError::Bind {
        endpoint: endpoint.to_owned(),
        address: address.to_string(),
        source,
    };
    let socket = if address.is_ipv6() {
        TcpSocket::new_v6()
    } else {
        TcpSocket::new_v4()
    }
    .map_err(fail)?;
    socket.set_reuseaddr(true).map_err(fail)?;
    socket.bind(address).map_err(fail)?;
    socket.listen(tcp.backlog).map_err(fail)
}

impl Bound {
    /// Binds (or adopts) the endpoint. Runs in the privileged start.
    pub fn listen(endpoint: &ServerEndpoint) -> Result<Bound, ListenError> {
        Self::listen_offering(endpoint, Vec::new())
    }

    /// [`listen`](Bound::listen), a TLS endpoint offering the `alpn` protocols (see
    /// [`ProtocolFactory::alpn_protocols`](crate::ProtocolFactory::alpn_protocols)).
    pub fn listen_offering(
        endpoint: &ServerEndpoint,
        alpn: Vec<Vec<u8>>,
    ) -> Result<Bound, ListenError> {
        let text = endpoint.to_string();
        match endpoint {
            ServerEndpoint::Tcp(tcp) => Ok(Bound::Tcp(bind_tcp(&text, tcp)?)),
            ServerEndpoint::Tls(settings) => {
                let acceptor = tls_acceptor(&text, settings, alpn)?;
                let listener = bind_tcp(&text, &settings.tcp)?;
                Ok(Bound::Tls(listener, acceptor))
            }
            ServerEndpoint::Unix(settings) => {
                unix::bind(settings)
                    .map(Bound::Unix)
                    .map_err(|source| ListenError::Bind {
                        endpoint: text.clone(),
                        address: settings.path.display().to_string(),
                        source,
                    })
            }
            ServerEndpoint::Systemd(socket) => {
                let activation = |source| ListenError::Activation {
                    endpoint: text.clone(),
                    source,
                };
                let io = |source| ListenError::Bind {
                    endpoint: text.clone(),
                    address: format!("systemd socket {}", socket.descriptor),
                    source,
                };
                match activation::adopt(socket).map_err(activation)? {
                    activation::Adopted::Tcp(listener) => {
                        listener.set_nonblocking(true).map_err(io)?;
                        Ok(Bound::Tcp(TcpListener::from_std(listener).map_err(io)?))
                    }
                    activation::Adopted::Unix(listener) => {
                        listener.set_nonblocking(true).map_err(io)?;
                        Ok(Bound::AdoptedUnix(
                            tokio::net::UnixListener::from_std(listener).map_err(io)?,
                        ))
                    }
                }
            }
            ServerEndpoint::Udp(_) => Err(ListenError::NotAStream(text)),
        }
    }

    /// Listens on sockets a predecessor process handed over for `endpoint` (the listener, and
    /// a UNIX socket's lock file), instead of binding: the kernel's accept queue was never
    /// closed. TLS keys and certificates are read again.
    pub fn adopt(
        endpoint: &ServerEndpoint,
        fds: Vec<std::os::fd::OwnedFd>,
    ) -> Result<Bound, ListenError> {
        Self::adopt_offering(endpoint, fds, Vec::new())
    }

    /// [`adopt`](Bound::adopt), a TLS endpoint offering the `alpn` protocols.
    pub fn adopt_offering(
        endpoint: &ServerEndpoint,
        fds: Vec<std::os::fd::OwnedFd>,
        alpn: Vec<Vec<u8>>,
    ) -> Result<Bound, ListenError> {
        let text = endpoint.to_string();
        let io = |source| ListenError::Bind {
            endpoint: text.clone(),
            address: "the socket handed over".to_owned(),
            source,
        };
        let mut fds = fds.into_iter();
        let Some(listener) = fds.next() else {
            return Err(io(std::io::Error::other("no descriptor was handed over")));
        };
        let tcp = |fd: std::os::fd::OwnedFd| -> std::io::Result<TcpListener> {
            let listener = std::net::TcpListener::from(fd);
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)
        };
        match endpoint {
            ServerEndpoint::Tcp(_) => Ok(Bound::Tcp(tcp(listener).map_err(io)?)),
            ServerEndpoint::Tls(settings) => {
                let acceptor = tls_acceptor(&text, settings, alpn)?;
                Ok(Bound::Tls(tcp(listener).map_err(io)?, acceptor))
            }
            ServerEndpoint::Unix(settings) => BoundUnix::adopt(settings, listener, fds.next())
                .map(Bound::Unix)
                .map_err(io),
            ServerEndpoint::Systemd(_) => {
                // Which family it is shows in the socket itself.
                let probe = socket2::SockRef::from(&listener);
                let unix = probe
                    .local_addr()
                    .map(|address| address.is_unix())
                    .unwrap_or(false);
                if unix {
                    let listener = std::os::unix::net::UnixListener::from(listener);
                    listener.set_nonblocking(true).map_err(io)?;
                    Ok(Bound::AdoptedUnix(
                        tokio::net::UnixListener::from_std(listener).map_err(io)?,
                    ))
                } else {
                    Ok(Bound::Tcp(tcp(listener).map_err(io)?))
                }
            }
            ServerEndpoint::Udp(_) => Err(ListenError::NotAStream(text)),
        }
    }

    /// The descriptors a successor needs to go on listening: the listener, and a UNIX socket's
    /// lock file.
    pub fn handover_fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        match self {
            Bound::Tcp(listener) | Bound::Tls(listener, _) => vec![listener.as_fd()],
            Bound::Unix(unix) => std::iter::once(unix.listener.as_fd())
                .chain(unix.lock_fd())
                .collect(),
            Bound::AdoptedUnix(listener) => vec![listener.as_fd()],
        }
    }

    /// A successor listens on this socket now: dropping it must leave its files alone.
    pub fn release(&self) {
        if let Bound::Unix(unix) = self {
            unix.release();
        }
    }

    /// The bound address, with the real port when port 0 was asked for.
    pub fn local_address(&self) -> Option<Address> {
        match self {
            Bound::Tcp(listener) | Bound::Tls(listener, _) => {
                listener.local_addr().ok().map(Address::Inet)
            }
            Bound::Unix(BoundUnix { listener, .. }) | Bound::AdoptedUnix(listener) => listener
                .local_addr()
                .ok()
                .and_then(|addr| addr.as_pathname().map(|p| Address::Unix(p.to_owned()))),
        }
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Bound::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                let local = local_of(&stream, peer);
                let _ = stream.set_nodelay(true);
                Ok(Accepted::Ready(
                    Box::new(stream),
                    Address::Inet(peer),
                    local,
                ))
            }
            Bound::Tls(listener, acceptor) => {
                let (stream, peer) = listener.accept().await?;
                let local = local_of(&stream, peer);
                let _ = stream.set_nodelay(true);
                Ok(Accepted::Handshake(
                    stream,
                    acceptor.clone(),
                    Address::Inet(peer),
                    local,
                ))
            }
            Bound::Unix(BoundUnix { listener, .. }) | Bound::AdoptedUnix(listener) => {
                let (stream, peer) = listener.accept().await?;
                let peer = Address::Unix(
                    peer.as_pathname()
                        .map(ToOwned::to_owned)
                        .unwrap_or_default(),
                );
                let local = listener
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(ToOwned::to_owned))
                    .map_or_else(|| Address::Unix(Default::default()), Address::Unix);
                Ok(Accepted::Ready(Box::new(stream), peer, local))
            }
        }
    }
}

fn local_of(stream: &tokio::net::TcpStream, fallback: SocketAddr) -> Address {
    Address::Inet(stream.local_addr().unwrap_or(fallback))
}

impl Accepted {
    /// Completes the TLS handshake if there is one; returns the stream and its addresses.
    pub async fn finish(self) -> std::io::Result<(Box<dyn Stream>, Address, Address)> {
        match self {
            Accepted::Ready(stream, peer, local) => Ok((stream, peer, local)),
            Accepted::Handshake(stream, acceptor, peer, local) => {
                let stream = acceptor.accept(stream).await?;
                Ok((Box::new(stream), peer, local))
            }
        }
    }
}
