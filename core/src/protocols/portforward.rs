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

#[typetag::serde(name = "rtwisted.PortForward")]
#[async_trait]
impl ProtocolFactory for PortForward {
    async fn serve(&self, connection: Connection) -> io::Result<()> {
        let Connection {
            stream: mut client,
            peer,
            shutdown,
            ..
        } = connection;
        let upstream = connect(&self.dest, shutdown.clone())
            .await
            .map_err(|error| io::Error::other(error.to_string()))?;
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("relaying {peer} to {}", self.dest);
        let mut server = upstream.stream;
        let relay = tokio::io::copy_bidirectional(&mut client, &mut server);
        tokio::select! {
            copied = relay => {
                let (to_server, to_client) = copied?;
                self.counters.bytes_in.fetch_add(to_server, Ordering::Relaxed);
                self.counters.bytes_out.fetch_add(to_client, Ordering::Relaxed);
                Ok(())
            }
            () = shutdown.cancelled() => Ok(()),
        }
    }
}

crate::register_type!(factory "rtwisted.PortForward", version 1);
