//! `StreamClient`: connects on start, serves the connection with a protocol factory, and
//! disconnects on stop (Twisted's `TCPClient`, `SSLClient`, `UNIXClient`, with the guaranteed
//! disconnection Twisted's documentation still promises).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::connect::connect;
use crate::protocols::ProtocolFactory;
use crate::strports::ClientEndpoint;
use rtwisted_core::{Service, ServiceError, StartContext, StopContext};

/// A client that holds one connection while it runs. A failed connection is a start error
/// naming the endpoint; for a client that keeps retrying, use
/// [`ReconnectingClient`](super::ReconnectingClient).
#[derive(Debug, Serialize, Deserialize)]
pub struct StreamClient {
    endpoint: ClientEndpoint,
    #[serde(with = "crate::codec::factory")]
    factory: Arc<dyn ProtocolFactory>,
    #[serde(skip)]
    live: Live,
}

#[derive(Default)]
struct Live {
    shutdown: Option<CancellationToken>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("connected", &self.task.is_some())
            .finish()
    }
}

impl StreamClient {
    /// An unnamed client for `endpoint` whose connection `factory` serves.
    pub fn new(endpoint: ClientEndpoint, factory: Arc<dyn ProtocolFactory>) -> Self {
        StreamClient {
            endpoint,
            factory,
            live: Live::default(),
        }
    }

    /// True while the connection is being served.
    pub fn connected(&self) -> bool {
        self.live
            .task
            .as_ref()
            .is_some_and(|task| !task.is_finished())
    }
}

#[typetag::serde(name = StreamClient::TAG)]
#[async_trait::async_trait]
impl Service for StreamClient {
    async fn start(&mut self, _cx: &mut StartContext) -> Result<(), ServiceError> {
        let shutdown = CancellationToken::new();
        let connection = connect(&self.endpoint, shutdown.clone()).await?;
        tracing::info!("connected to {} ({})", self.endpoint, connection.peer);
        let factory = Arc::clone(&self.factory);
        let endpoint = self.endpoint.to_string();
        self.live.task = Some(tokio::spawn(async move {
            if let Err(error) = factory.serve(connection).await {
                tracing::debug!("the connection to {endpoint} ended with an error: {error}");
            }
        }));
        self.live.shutdown = Some(shutdown);
        Ok(())
    }

    async fn stop(&mut self, _cx: &StopContext) -> Result<(), ServiceError> {
        let (shutdown, task) = (self.live.shutdown.take(), self.live.task.take());
        Ok(super::end_task(shutdown, task).await?)
    }

    fn summary(&self) -> Option<String> {
        Some(self.endpoint.to_string())
    }
}

rtwisted_core::register_type!(service StreamClient = "rtwisted.StreamClient", version 1);
