//! `StreamServer`: listens on a stream endpoint and hands each connection to a protocol
//! factory (Twisted's `StreamServerEndpointService`, `TCPServer`).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Address, Connection, activation};
use crate::protocols::ProtocolFactory;
use crate::service::{NameError, Service, ServiceError, ServiceMeta, StopReason};
use crate::strports::{ServerEndpoint, TcpListen};

/// A network error from a server, naming the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The endpoint could not be bound.
    #[error("cannot listen on {endpoint} ({address}): {source}")]
    Bind {
        /// The endpoint as configured.
        endpoint: String,
        /// The socket address that was tried.
        address: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// A stream server: binds its endpoint in the privileged start (so ports below 1024 work before
/// privileges are dropped), accepts connections once started, and on stop stops accepting at
/// once and closes open connections (each protocol sees its `shutdown` token cancelled).
///
/// Persisted: the name, the endpoint (as its strports string) and the protocol factory. The
/// listening socket and the connections are not.
#[derive(Debug, Serialize, Deserialize)]
pub struct StreamServer {
    #[serde(rename = "name", default)]
    meta: ServiceMeta,
    endpoint: ServerEndpoint,
    factory: Arc<dyn ProtocolFactory>,
    #[serde(skip)]
    live: Live,
}

#[derive(Default)]
struct Live {
    listener: Option<TcpListener>,
    local: Option<SocketAddr>,
    shutdown: Option<CancellationToken>,
    connections: Option<TaskTracker>,
    accept: Option<JoinHandle<()>>,
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("local", &self.local)
            .field("accepting", &self.accept.is_some())
            .finish()
    }
}

impl StreamServer {
    /// An unnamed server for `endpoint` that serves each connection with `factory`.
    pub fn new(endpoint: ServerEndpoint, factory: Arc<dyn ProtocolFactory>) -> Self {
        StreamServer {
            meta: ServiceMeta::unnamed(),
            endpoint,
            factory,
            live: Live::default(),
        }
    }

    /// The same server with a name.
    pub fn named(mut self, name: impl Into<String>) -> Result<Self, NameError> {
        self.meta = ServiceMeta::named(name)?;
        Ok(self)
    }

    /// The configured endpoint.
    pub fn endpoint(&self) -> &ServerEndpoint {
        &self.endpoint
    }

    /// The address actually bound (with the real port when the endpoint asked for port 0),
    /// from the privileged start until the stop.
    pub fn local_address(&self) -> Option<Address> {
        self.live.local.map(Address::Inet)
    }

    fn label(&self) -> String {
        match self.meta.name() {
            Some(name) => format!("{name} ({})", self.endpoint),
            None => self.endpoint.to_string(),
        }
    }

    fn bind(&self, tcp: &TcpListen) -> Result<TcpListener, NetError> {
        let address = tcp.socket_addr();
        let fail = |source| NetError::Bind {
            endpoint: self.endpoint.to_string(),
            address,
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
}

#[typetag::serde(name = "rtwisted.StreamServer")]
#[async_trait::async_trait]
impl Service for StreamServer {
    fn meta(&self) -> &ServiceMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ServiceMeta {
        &mut self.meta
    }

    async fn privileged_start(&mut self) -> Result<(), ServiceError> {
        let listener = match &self.endpoint {
            ServerEndpoint::Tcp(tcp) => self.bind(tcp)?,
            ServerEndpoint::Systemd(socket) => {
                let listener = activation::adopt(socket)?;
                listener.set_nonblocking(true)?;
                TcpListener::from_std(listener)?
            }
        };
        let local = listener.local_addr()?;
        tracing::info!("{} listening on {local}", self.label());
        self.live.local = Some(local);
        self.live.listener = Some(listener);
        Ok(())
    }

    async fn start(&mut self) -> Result<(), ServiceError> {
        let Some(listener) = self.live.listener.take() else {
            return Err("the listening socket is gone; stop the service and start it again".into());
        };
        let shutdown = CancellationToken::new();
        let connections = TaskTracker::new();
        let accept = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&self.factory),
            shutdown.clone(),
            connections.clone(),
        ));
        self.live.shutdown = Some(shutdown);
        self.live.connections = Some(connections);
        self.live.accept = Some(accept);
        Ok(())
    }

    async fn stop(&mut self, reason: StopReason) -> Result<(), ServiceError> {
        let live = std::mem::take(&mut self.live);
        drop(live.listener);
        if let Some(shutdown) = &live.shutdown {
            shutdown.cancel();
        }
        if let Some(accept) = live.accept {
            // The accept loop only ends by cancellation; a panic inside it is reported.
            accept.await?;
        }
        if let Some(connections) = live.connections {
            connections.close();
            connections.wait().await;
        }
        if let Some(local) = live.local {
            tracing::info!("{} stopped listening on {local} ({reason})", self.label());
        }
        Ok(())
    }

    fn summary(&self) -> Option<String> {
        Some(self.endpoint.to_string())
    }
}

crate::register_type!(service "rtwisted.StreamServer", version 1);

async fn accept_loop(
    listener: TcpListener,
    factory: Arc<dyn ProtocolFactory>,
    shutdown: CancellationToken,
    connections: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let local = stream
                    .local_addr()
                    .map_or(Address::Inet(peer), Address::Inet);
                let connection = Connection {
                    stream: Box::new(stream),
                    peer: Address::Inet(peer),
                    local,
                    shutdown: shutdown.child_token(),
                };
                let factory = Arc::clone(&factory);
                connections.spawn(async move {
                    if let Err(error) = factory.serve(connection).await {
                        tracing::debug!("connection from {peer} ended with an error: {error}");
                    }
                });
            }
            Err(error) => {
                // Out of descriptors and the like: back off briefly instead of spinning.
                tracing::warn!("accept failed: {error}");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
}
