//! Protocol factories: the serializable objects that serve each connection.
//!
//! A factory is persisted with the server that uses it (as a typetag'd trait object, with an
//! explicit namespaced tag), and called once per connection. It never knows the transport.

pub mod classic;
mod echo;
pub mod kv;
pub mod portforward;

use std::fmt;
use std::io;

use async_trait::async_trait;

use crate::net::Connection;
use crate::strports::ServerEndpoint;
use rtwisted_core::{ServiceError, StartContext};

pub use classic::{Chargen, Daytime, Discard, Qotd, Time};
pub use echo::Echo;
pub use kv::Kv;
pub use portforward::PortForward;

/// Answers datagrams (UDP): each datagram may get one datagram back. The classic small
/// protocols implement this beside [`ProtocolFactory`], under the same type tag.
#[typetag::serde(tag = "type")]
#[async_trait]
pub trait DatagramProtocol: std::any::Any + Send + Sync + fmt::Debug {
    /// The reply to `datagram` from `peer`, if any.
    async fn datagram(&self, datagram: &[u8], peer: std::net::SocketAddr) -> Option<Vec<u8>>;
}

/// What a factory's [`quiesce`](ProtocolFactory::quiesce) held, which decides what becomes of
/// its open connections once a hand-over is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiesced {
    /// Nothing: the factory has no live state, and its connections finish on the old process
    /// until the stop's grace end.
    Nothing,
    /// Writes wait: the connections can change nothing any more, so after the hand-over they
    /// are cut at once and their clients reconnect to the successor.
    Writes,
}

/// Serves connections; one factory serves every connection of a server, concurrently.
///
/// Live state shared by connections (counters, tables) sits behind `Arc<Mutex<_>>` inside the
/// factory, so a snapshot of a running tree reads the current values.
///
/// Every factory is `Any` (as every `'static` type is), so that snapshots can write the
/// built-in factories without going through typetag (so is every [`DatagramProtocol`]).
#[typetag::serde(tag = "type")]
#[async_trait]
pub trait ProtocolFactory: std::any::Any + Send + Sync + fmt::Debug {
    /// Serves one connection until it ends or `connection.shutdown` is cancelled.
    async fn serve(&self, connection: Connection) -> io::Result<()>;

    /// Called by a server in its privileged start, after it bound `endpoint` and before its
    /// first connection: open what the factory needs (log files, folders) and keep the
    /// server's live counters. An error fails the server's start. Does nothing by default.
    async fn prepare(
        &self,
        cx: &StartContext,
        endpoint: &ServerEndpoint,
    ) -> Result<(), ServiceError> {
        let _ = (cx, endpoint);
        Ok(())
    }

    /// Called when the server stops accepting: wind down open connections (an HTTP server
    /// closes idle keep-alive connections and finishes the requests in flight). Connections
    /// still open at the stop's grace end see `connection.shutdown` cancelled as before.
    fn drain(&self) {}

    /// Called once every connection of the stopping server has ended: flush and close what
    /// [`prepare`](ProtocolFactory::prepare) opened.
    async fn finish(&self) {}

    /// The ALPN protocol names a TLS endpoint offers for this factory, most preferred first
    /// (`h2`, `http/1.1` for HTTP); none by default.
    fn alpn_protocols(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }

    /// Called when the server holding the factory starts: a factory with live state of its own
    /// (a table's items, say) registers counters there, for `rtap status` and `/metrics`.
    fn publish(&self, counters: &rtwisted_core::context::Counters) {
        let _ = counters;
    }

    /// A hand-over is coming: stop changing the state a snapshot of this factory saves, and
    /// return once it is final (see `Service::quiesce`). Requests that would change it wait;
    /// they are not refused. The default (a factory without live state) holds nothing, so
    /// its connections finish on the old process.
    async fn quiesce(&self) -> Quiesced {
        Quiesced::Nothing
    }

    /// Undoes [`quiesce`](ProtocolFactory::quiesce).
    async fn resume(&self) {}
}
