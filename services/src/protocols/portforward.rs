//! `PortForward`: relays every connection to a client endpoint (Twisted's `portforward`), and
//! counts the bytes and connections it relayed. The counters are persisted, so a snapshot of a
//! running forwarder shows its traffic so far.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ProtocolFactory;
use crate::net::Connection;
use crate::net::connect::connect;
use crate::strports::ClientEndpoint;

/// Live traffic counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections relayed.
    pub connections: AtomicU64,
    /// Bytes from clients to the destination.
    pub bytes_in: AtomicU64,
    /// Bytes from the destination back to clients.
    pub bytes_out: AtomicU64,
}

/// The counters as persisted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterValues {
    /// Connections relayed.
    pub connections: u64,
    /// Bytes from clients to the destination.
    pub bytes_in: u64,
    /// Bytes from the destination back to clients.
    pub bytes_out: u64,
}

impl Counters {
    /// The current values.
    pub fn values(&self) -> CounterValues {
        CounterValues {
            connections: self.connections.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}

fn serialize_counters<S: Serializer>(
    counters: &Arc<Counters>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    counters.values().serialize(serializer)
}

fn deserialize_counters<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Arc<Counters>, D::Error> {
    let values = CounterValues::deserialize(deserializer)?;
    Ok(Arc::new(Counters {
        connections: AtomicU64::new(values.connections),
        bytes_in: AtomicU64::new(values.bytes_in),
        bytes_out: AtomicU64::new(values.bytes_out),
    }))
}

/// Relays each connection to `dest`; the counters are live and persisted.
#[derive(Debug, Serialize, Deserialize)]
pub struct PortForward {
    /// Where connections are relayed to.
    pub dest: ClientEndpoint,
    #[serde(
        default,
        serialize_with = "serialize_counters",
        deserialize_with = "deserialize_counters"
    )]
    counters: Arc<Counters>,
}

impl PortForward {
    /// A forwarder to `dest`, its counters at zero.
    pub fn new(dest: ClientEndpoint) -> Self {
        PortForward {
            dest,
            counters: Arc::default(),
        }
    }

    /// The traffic relayed so far.
    pub fn counters(&self) -> CounterValues {
        self.counters.values()
    }
}

#[typetag::serde(name = PortForward::TAG)]
#[async_trait]
impl ProtocolFactory for PortForward {
    async fn serve(&self, connection: Connection) -> io::Result<()> {
        let Connection {
            stream: client,
            peer,
            shutdown,
            ..
        } = connection;
        let upstream = connect(&self.dest, shutdown.clone())
            .await
            .map_err(|error| io::Error::other(error.to_string()))?;
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("relaying {peer} to {}", self.dest);
        let (client_read, client_write) = tokio::io::split(client);
        let (server_read, server_write) = tokio::io::split(upstream.stream);
        // Each direction counts as it goes, so a snapshot of a running forwarder shows the
        // traffic of connections still open too.
        let inbound = pump(client_read, server_write, &self.counters.bytes_in);
        let outbound = pump(server_read, client_write, &self.counters.bytes_out);
        tokio::select! {
            relayed = async { tokio::try_join!(inbound, outbound) } => relayed.map(drop),
            () = shutdown.cancelled() => Ok(()),
        }
    }
}

rtwisted_core::register_type!(factory PortForward = "rtwisted.PortForward", version 1);

/// Copies `from` to `to` until `from` ends, adding every chunk to `counter`; then closes the
/// write side, so the other end sees the end of the stream.
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    counter: &AtomicU64,
) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buffer[..read]).await?;
        counter.fetch_add(read as u64, Ordering::Relaxed);
    }
}
