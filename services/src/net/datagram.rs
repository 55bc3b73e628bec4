//! `DatagramServer`: a UDP socket whose datagrams a [`DatagramProtocol`] answers (Twisted's
//! `UDPServer`).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::protocols::DatagramProtocol;
use crate::strports::ServerEndpoint;
use rtwisted_core::{HandoverSocket, Service, ServiceError, StartContext, StopContext};

/// The largest datagram read (the UDP maximum).
const MAX_DATAGRAM: usize = 65_535;

/// A UDP server: binds in the privileged start, answers datagrams once started, stops reading
/// at once on stop (a reply being computed is finished first).
///
/// Persisted: the endpoint (`udp:PORT[:interface=ADDR]`) and the protocol.
#[derive(Debug, Serialize, Deserialize)]
pub struct DatagramServer {
    endpoint: ServerEndpoint,
    #[serde(with = "crate::codec::datagram")]
    protocol: Arc<dyn DatagramProtocol>,
    #[serde(skip)]
    live: Live,
}

#[derive(Default)]
struct Live {
    /// Shared with the receiving task, so the socket can be handed over while it runs.
    socket: Option<Arc<UdpSocket>>,
    local: Option<SocketAddr>,
    stop: Option<CancellationToken>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live").field("local", &self.local).finish()
    }
}

impl DatagramServer {
    /// An unnamed server for a `udp:` endpoint.
    pub fn new(endpoint: ServerEndpoint, protocol: Arc<dyn DatagramProtocol>) -> Self {
        DatagramServer {
            endpoint,
            protocol,
            live: Live::default(),
        }
    }

    /// The bound address, from the privileged start until the stop.
    pub fn local_address(&self) -> Option<SocketAddr> {
        self.live.local
    }
}

#[typetag::serde(name = DatagramServer::TAG)]
#[async_trait::async_trait]
impl Service for DatagramServer {
    async fn privileged_start(&mut self, cx: &mut StartContext) -> Result<(), ServiceError> {
        let ServerEndpoint::Udp(udp) = &self.endpoint else {
            return Err(format!(
                "{} is a stream endpoint; a datagram server needs udp:PORT",
                self.endpoint
            )
            .into());
        };
        let address = udp.socket_addr();
        let socket = match cx.take_inherited(&self.endpoint.to_string()) {
            Some(fds) => {
                let fd = fds
                    .into_iter()
                    .next()
                    .ok_or("no descriptor was handed over")?;
                let socket = std::net::UdpSocket::from(fd);
                socket.set_nonblocking(true)?;
                UdpSocket::from_std(socket)?
            }
            None => UdpSocket::bind(address).await.map_err(|error| {
                format!("cannot listen on {} ({address}): {error}", self.endpoint)
            })?,
        };
        let local = socket.local_addr()?;
        let name = super::log_label(cx.path(), "udp");
        tracing::info!("{name} ({}) listening on {local}", self.endpoint);
        self.live.local = Some(local);
        self.live.socket = Some(Arc::new(socket));
        Ok(())
    }

    async fn start(&mut self, cx: &mut StartContext) -> Result<(), ServiceError> {
        let Some(socket) = self.live.socket.clone() else {
            return Err("the socket is gone; stop the service and start it again".into());
        };
        let counters = cx.counters();
        if let Some(local) = self.live.local {
            counters.set_fact("address", local.to_string());
        }
        let received_total = counters.counter("datagrams_in_total");
        let sent_total = counters.counter("datagrams_out_total");
        let bytes_in = counters.counter("bytes_in_total");
        let bytes_out = counters.counter("bytes_out_total");
        let errors = counters.counter("errors_total");
        let stop = CancellationToken::new();
        let protocol = Arc::clone(&self.protocol);
        let token = stop.clone();
        self.live.task = Some(tokio::spawn(async move {
            let mut buffer = vec![0u8; MAX_DATAGRAM];
            loop {
                let received = tokio::select! {
                    () = token.cancelled() => break,
                    received = socket.recv_from(&mut buffer) => received,
                };
                match received {
                    Ok((length, peer)) => {
                        received_total.add(1);
                        bytes_in.add(length as u64);
                        if let Some(reply) = protocol.datagram(&buffer[..length], peer).await {
                            match socket.send_to(&reply, peer).await {
                                Ok(sent) => {
                                    sent_total.add(1);
                                    bytes_out.add(sent as u64);
                                }
                                Err(error) => {
                                    errors.add(1);
                                    tracing::debug!("cannot answer {peer}: {error}");
                                }
                            }
                        }
                    }
                    Err(error) => {
                        errors.add(1);
                        tracing::debug!("udp receive failed: {error}");
                    }
                }
            }
        }));
        self.live.stop = Some(stop);
        Ok(())
    }

    async fn stop(&mut self, _cx: &StopContext) -> Result<(), ServiceError> {
        let live = std::mem::take(&mut self.live);
        Ok(super::end_task(live.stop, live.task).await?)
    }

    fn handover_sockets(&self) -> Vec<HandoverSocket<'_>> {
        use std::os::fd::AsFd;
        match &self.live.socket {
            Some(socket) => vec![HandoverSocket {
                key: self.endpoint.to_string(),
                fds: vec![socket.as_fd()],
            }],
            None => Vec::new(),
        }
    }

    fn summary(&self) -> Option<String> {
        Some(self.endpoint.to_string())
    }
}

rtwisted_core::register_type!(service DatagramServer = "rtwisted.DatagramServer", version 1);
