//! `StreamServer`: listens on a stream endpoint (TCP, TLS, UNIX, systemd) and hands each
//! connection to a protocol factory (Twisted's `StreamServerEndpointService`, `TCPServer`,
//! `SSLServer`, `UNIXServer`).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::listener::Bound;
use super::{Address, Connection, Counted};
use crate::protocols::{ProtocolFactory, Quiesced};
use crate::strports::ServerEndpoint;
use rtwisted_core::context::{Counter, Counters};
use rtwisted_core::{HandoverSocket, Service, ServiceError, StartContext, StopContext, StopReason};

/// A stream server. Binds its endpoint in the privileged start (so ports below 1024 and keys
/// only root can read work before privileges are dropped), accepts once started.
///
/// Stop is graceful: accepting stops at once; open connections may finish until shortly before
/// the driver's stop deadline; then the rest are cut (each protocol sees its `shutdown` token
/// cancelled) and the number cut is logged and kept ([`StreamServer::last_cut`]).
///
/// Persisted: the endpoint (as its strports string) and the protocol factory.
#[derive(Debug, Serialize, Deserialize)]
pub struct StreamServer {
    endpoint: ServerEndpoint,
    #[serde(with = "crate::codec::factory")]
    factory: Arc<dyn ProtocolFactory>,
    #[serde(skip)]
    live: Live,
    #[serde(skip)]
    last_cut: AtomicUsize,
}

#[derive(Default)]
struct Live {
    /// How logs name the server: its path and endpoint.
    label: String,
    /// Shared with the accept loop, so the sockets can be handed over while it runs.
    bound: Option<Arc<Bound>>,
    /// True between a quiesce that held the factory's writes and its resume.
    quiesced: bool,
    local: Option<Address>,
    accepting: Option<CancellationToken>,
    cut: Option<CancellationToken>,
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
            endpoint,
            factory,
            live: Live::default(),
            last_cut: AtomicUsize::new(0),
        }
    }

    /// The configured endpoint.
    pub fn endpoint(&self) -> &ServerEndpoint {
        &self.endpoint
    }

    /// The protocol factory.
    pub fn factory(&self) -> &Arc<dyn ProtocolFactory> {
        &self.factory
    }

    /// The address actually bound (with the real port when the endpoint asked for port 0),
    /// from the privileged start until the stop.
    pub fn local_address(&self) -> Option<Address> {
        self.live.local.clone()
    }

    /// How many open connections the last stop had to cut.
    pub fn last_cut(&self) -> usize {
        self.last_cut.load(Ordering::Relaxed)
    }
}

/// How logs name a server: `path (endpoint)`, or the endpoint alone when nothing on its path
/// has a name.
fn label(path: &rtwisted_core::ServicePath, endpoint: &ServerEndpoint) -> String {
    match super::named_path(path) {
        Some(path) => format!("{path} ({endpoint})"),
        None => endpoint.to_string(),
    }
}

#[typetag::serde(name = StreamServer::TAG)]
#[async_trait::async_trait]
impl Service for StreamServer {
    async fn privileged_start(&mut self, cx: &mut StartContext) -> Result<(), ServiceError> {
        let key = self.endpoint.to_string();
        let alpn = self.factory.alpn_protocols();
        let (bound, how) = match cx.take_inherited(&key) {
            Some(fds) => (
                Bound::adopt_offering(&self.endpoint, fds, alpn)?,
                "took over",
            ),
            None => (
                Bound::listen_offering(&self.endpoint, alpn)?,
                "listening on",
            ),
        };
        // The factory gets its chance before any connection: a failure leaves nothing bound.
        self.factory.prepare(cx, &self.endpoint).await?;
        let local = bound.local_address();
        self.live.label = label(cx.path(), &self.endpoint);
        if let Some(local) = &local {
            tracing::info!(
                service = %self.live.label,
                address = %local,
                "{} {how} {local}",
                self.live.label
            );
        }
        self.live.local = local;
        self.live.bound = Some(Arc::new(bound));
        Ok(())
    }

    async fn start(&mut self, cx: &mut StartContext) -> Result<(), ServiceError> {
        let Some(bound) = self.live.bound.clone() else {
            return Err("the listening socket is gone; stop the service and start it again".into());
        };
        let counters = cx.counters();
        if let Some(local) = &self.live.local {
            counters.set_fact("address", local.to_string());
        }
        self.factory.publish(counters);
        let stats = ConnectionStats::new(counters, self.live.label.clone());
        let accepting = CancellationToken::new();
        let cut = CancellationToken::new();
        let connections = TaskTracker::new();
        let accept = tokio::spawn(accept_loop(
            bound,
            Arc::clone(&self.factory),
            accepting.clone(),
            cut.clone(),
            connections.clone(),
            stats,
        ));
        self.live.accepting = Some(accepting);
        self.live.cut = Some(cut);
        self.live.connections = Some(connections);
        self.live.accept = Some(accept);
        Ok(())
    }

    async fn stop(&mut self, cx: &StopContext) -> Result<(), ServiceError> {
        let reason = cx.reason();
        let live = std::mem::take(&mut self.live);
        let handed_over = reason == StopReason::HandedOver;
        if let Some(bound) = &live.bound
            && handed_over
        {
            bound.release();
        }
        drop(live.bound);
        if let Some(accepting) = &live.accepting {
            accepting.cancel();
        }
        if let Some(accept) = live.accept {
            // The accept loop ends on cancellation and drops the listener (and a UNIX socket
            // file); a panic inside it is reported.
            accept.await?;
        }
        self.factory.drain();
        let mut cut = 0;
        if let Some(connections) = live.connections {
            connections.close();
            // After a hand-over a quiesced factory's connections can change nothing any more:
            // they are cut at once, so their clients reconnect to the successor.
            let grace_end = if handed_over && live.quiesced {
                Instant::now()
            } else {
                grace_end(cx.deadline())
            };
            if tokio::time::timeout_at(grace_end, connections.wait())
                .await
                .is_err()
            {
                cut = connections.len();
                if let Some(token) = &live.cut {
                    token.cancel();
                }
                connections.wait().await;
            }
        }
        self.factory.finish().await;
        self.last_cut.store(cut, Ordering::Relaxed);
        if let Some(local) = live.local {
            if cut > 0 {
                tracing::info!(
                    service = %live.label,
                    address = %local,
                    %reason,
                    cut,
                    "{} stopped listening on {local} ({reason}); cut {cut} open connection{}",
                    live.label,
                    if cut == 1 { "" } else { "s" }
                );
            } else {
                tracing::info!(
                    service = %live.label,
                    address = %local,
                    %reason,
                    "{} stopped listening on {local} ({reason})",
                    live.label
                );
            }
        }
        Ok(())
    }

    async fn quiesce(&mut self) -> Result<(), ServiceError> {
        self.live.quiesced = self.factory.quiesce().await == Quiesced::Writes;
        Ok(())
    }

    async fn resume(&mut self) {
        self.factory.resume().await;
        self.live.quiesced = false;
    }

    fn handover_sockets(&self) -> Vec<HandoverSocket<'_>> {
        match &self.live.bound {
            Some(bound) => vec![HandoverSocket {
                key: self.endpoint.to_string(),
                fds: bound.handover_fds(),
            }],
            None => Vec::new(),
        }
    }

    fn summary(&self) -> Option<String> {
        Some(self.endpoint.to_string())
    }
}

rtwisted_core::register_type!(service StreamServer = "rtwisted.StreamServer", version 1);

/// When open connections stop being waited for: a tenth of the remaining stop time (at most
/// half a second) before the driver's deadline, so the cut connections can still close.
fn grace_end(deadline: Instant) -> Instant {
    let now = Instant::now();
    let left = deadline.saturating_duration_since(now);
    let margin = (left / 10).min(Duration::from_millis(500));
    deadline - margin
}

/// The live counters of a server's connections, shared with `rtap status` and `/metrics`.
#[derive(Clone)]
struct ConnectionStats {
    label: Arc<str>,
    open: Counter,
    total: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    errors: Counter,
}

impl ConnectionStats {
    fn new(counters: &Counters, label: String) -> Self {
        ConnectionStats {
            label: label.into(),
            open: counters.counter("connections_open"),
            total: counters.counter("connections_total"),
            bytes_in: counters.counter("bytes_in_total"),
            bytes_out: counters.counter("bytes_out_total"),
            errors: counters.counter("errors_total"),
        }
    }

    /// Serves one connection with `factory`, counting it, and logs it at debug level.
    async fn serve(
        &self,
        factory: &dyn ProtocolFactory,
        stream: Box<dyn super::Stream>,
        peer: Address,
        local: Address,
        shutdown: CancellationToken,
    ) {
        let began = Instant::now();
        self.open.add(1);
        self.total.add(1);
        let (read, written) = (Counter::default(), Counter::default());
        let stream = Counted::new(
            stream,
            [read.clone(), self.bytes_in.clone()],
            [written.clone(), self.bytes_out.clone()],
        );
        let connection = Connection {
            stream: Box::new(stream),
            peer: peer.clone(),
            local,
            shutdown,
        };
        let outcome = factory.serve(connection).await;
        self.open.sub(1);
        let elapsed = began.elapsed().as_secs_f64() * 1000.0;
        if outcome.is_err() {
            self.errors.add(1);
        }
        tracing::debug!(
            service = %self.label,
            peer = %peer,
            bytes_in = read.get(),
            bytes_out = written.get(),
            duration_ms = elapsed,
            "{}",
            Ended(&outcome)
        );
    }
}

async fn accept_loop(
    bound: Arc<Bound>,
    factory: Arc<dyn ProtocolFactory>,
    accepting: CancellationToken,
    cut: CancellationToken,
    connections: TaskTracker,
    stats: ConnectionStats,
) {
    loop {
        let accepted = tokio::select! {
            () = accepting.cancelled() => break,
            accepted = bound.accept() => accepted,
        };
        match accepted {
            Ok(accepted) => {
                let factory = Arc::clone(&factory);
                let shutdown = cut.child_token();
                let stats = stats.clone();
                connections.spawn(async move {
                    let (stream, peer, local) = tokio::select! {
                        () = shutdown.cancelled() => return,
                        finished = accepted.finish() => match finished {
                            Ok(parts) => parts,
                            Err(error) => {
                                stats.errors.add(1);
                                tracing::debug!(
                                    service = %stats.label,
                                    "a connection failed its TLS handshake: {error}"
                                );
                                return;
                            }
                        },
                    };
                    stats.serve(&*factory, stream, peer, local, shutdown).await;
                });
            }
            Err(error) => {
                // Out of descriptors and the like: back off briefly instead of spinning.
                tracing::warn!("accept failed: {error}");
                tokio::select! {
                    () = accepting.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
}

/// How a connection ended, as its log line says it.
struct Ended<'a>(&'a io::Result<()>);

impl fmt::Display for Ended<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(()) => f.write_str("connection closed"),
            Err(error) => write!(f, "connection ended with an error: {error}"),
        }
    }
}
