//! Network services and the transport-agnostic connection their protocols see.
//!
//! A [`Connection`] is a boxed byte stream plus the peer and local addresses and a shutdown
//! signal, so a [`ProtocolFactory`](crate::ProtocolFactory) never cares whether it sits on TCP,
//! TLS or a UNIX socket.

pub mod activation;
pub mod connect;
mod constructors;
pub mod counted;
mod datagram;
pub mod listener;
mod reconnecting;
mod stream_client;
mod stream_server;
pub mod tls;
pub mod unix;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

pub use constructors::{ssl_server, tcp_client, tcp_server, udp_server, unix_client, unix_server};
pub use counted::Counted;
pub use datagram::DatagramServer;
pub use reconnecting::{Backoff, ClientHandle, ClientState, ReconnectingClient, WaitError};
pub use stream_client::StreamClient;
pub use stream_server::StreamServer;

/// A byte stream a protocol reads and writes: any `AsyncRead + AsyncWrite` transport.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// The address of one end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A TCP (or UDP) address.
    Inet(SocketAddr),
    /// A UNIX socket path (empty for an unnamed socket).
    Unix(PathBuf),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Inet(addr) => write!(f, "{addr}"),
            Address::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// One accepted (or established) connection, handed to a protocol factory.
///
/// Dropping it closes the stream. When the owning service stops, `shutdown` is cancelled: a
/// protocol should finish what it is doing and return.
pub struct Connection {
    /// The byte stream.
    pub stream: Box<dyn Stream>,
    /// The remote end.
    pub peer: Address,
    /// The local end.
    pub local: Address,
    /// Cancelled when the service that owns the connection stops.
    pub shutdown: CancellationToken,
}

impl Connection {
    /// The stream and the shutdown token, for a protocol that needs neither address.
    pub fn into_stream(self) -> (Box<dyn Stream>, CancellationToken) {
        (self.stream, self.shutdown)
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// The path of a service for log lines, when anything on it has a name (`web/http`, `kv`);
/// `None` for a path of indexes only (`#0`), which says nothing to a reader.
pub(crate) fn named_path(path: &rtwisted_core::ServicePath) -> Option<String> {
    path.segments()
        .iter()
        .any(|segment| matches!(segment, rtwisted_core::PathSegment::Name(_)))
        .then(|| path.to_string())
}

/// Ends a service's task: cancels `stop` (the token the task watches), then waits for `task`
/// to return. Either may be missing (a service that never started).
pub(crate) async fn end_task(
    stop: Option<CancellationToken>,
    task: Option<tokio::task::JoinHandle<()>>,
) -> Result<(), tokio::task::JoinError> {
    if let Some(stop) = stop {
        stop.cancel();
    }
    if let Some(task) = task {
        task.await?;
    }
    Ok(())
}

/// How a service names itself in log lines: its path (see [`named_path`]), else `default`.
pub(crate) fn log_label(path: &rtwisted_core::ServicePath, default: &str) -> String {
    named_path(path).unwrap_or_else(|| default.to_owned())
}
