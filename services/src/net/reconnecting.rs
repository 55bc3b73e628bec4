//! `ReconnectingClient`: keeps a connection up, reconnecting with exponential backoff (Twisted's
//! `ClientService`).
//!
//! The retry delay follows Twisted's `backoffPolicy`: `min(initial * factor^n, max)` plus up to
//! one second of random jitter, where `n` counts consecutive failures (a lost connection counts
//! as one). Defaults: 1.0 s, x1.5, capped at 60 s. A [`ClientHandle`] lets any task wait until
//! the client is connected, optionally failing after N consecutive failures.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::connect::connect;
use crate::protocols::ProtocolFactory;
use crate::strports::ClientEndpoint;
use rtwisted_core::{Service, ServiceError, StartContext, StopContext};

/// The retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Backoff {
    /// The first delay, in seconds.
    pub initial: f64,
    /// The growth per consecutive failure.
    pub factor: f64,
    /// The longest delay, in seconds (before jitter).
    pub max: f64,
    /// Add up to one second of random delay, so that many clients do not retry in step.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: 1.0,
            factor: 1.5,
            max: 60.0,
            jitter: true,
        }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (Twisted's policy; jitter left out).
    pub fn delay(&self, failures: u32) -> Duration {
        let exponent = i32::try_from(failures.min(100)).unwrap_or(100);
        let seconds = (self.initial * self.factor.powi(exponent)).min(self.max);
        let seconds = if seconds.is_finite() && seconds >= 0.0 {
            seconds
        } else {
            self.max
        };
        Duration::from_secs_f64(seconds.max(0.0))
    }

    fn jittered(&self, failures: u32) -> Duration {
        let base = self.delay(failures);
        if !self.jitter {
            return base;
        }
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(failures);
        let fraction = (hasher.finish() % 1_000_000) as f64 / 1_000_000.0;
        base + Duration::from_secs_f64(fraction)
    }
}

/// What the client is doing, as [`ClientHandle`]s see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientState {
    /// True while a connection is up.
    pub connected: bool,
    /// Failures since the last successful connection.
    pub consecutive_failures: u32,
    /// The last failure, for messages.
    pub last_error: Option<String>,
    /// True once the service stopped.
    pub stopped: bool,
}

/// Waiting for a connection did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The client failed to connect this many times in a row.
    #[error("gave up after {failures} failed attempts: {last_error}")]
    Failed {
        /// The consecutive failures.
        failures: u32,
        /// The last one.
        last_error: String,
    },
    /// The client stopped (or was never started).
    #[error("the client stopped")]
    Cancelled,
}

/// Watches a [`ReconnectingClient`] from anywhere.
#[derive(Debug, Clone)]
pub struct ClientHandle {
    state: watch::Receiver<ClientState>,
}

impl ClientHandle {
    /// The current state.
    pub fn state(&self) -> ClientState {
        self.state.borrow().clone()
    }

    /// Waits until the client is connected. With `fail_after`, gives up once that many
    /// consecutive attempts have failed; a stop ends every wait with [`WaitError::Cancelled`].
    pub async fn wait_connected(&mut self, fail_after: Option<u32>) -> Result<(), WaitError> {
        loop {
            {
                let state = self.state.borrow_and_update();
                if state.connected {
                    return Ok(());
                }
                if state.stopped {
                    return Err(WaitError::Cancelled);
                }
                if let Some(limit) = fail_after
                    && state.consecutive_failures >= limit
                {
                    return Err(WaitError::Failed {
                        failures: state.consecutive_failures,
                        last_error: state.last_error.clone().unwrap_or_default(),
                    });
                }
            }
            if self.state.changed().await.is_err() {
                return Err(WaitError::Cancelled);
            }
        }
    }
}

/// A client that keeps its connection up: it connects on start, serves the connection with
/// the factory, and after a failure or a lost connection waits (with backoff) and connects
/// again, until it is stopped. Stop is prompt in every state: while connecting, connected
/// (the protocol sees its shutdown token cancelled) or waiting.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReconnectingClient {
    endpoint: ClientEndpoint,
    #[serde(with = "crate::codec::factory")]
    factory: Arc<dyn ProtocolFactory>,
    #[serde(default)]
    backoff: Backoff,
    #[serde(skip)]
    live: Live,
}

struct Live {
    state: watch::Sender<ClientState>,
    stop: Option<CancellationToken>,
    task: Option<JoinHandle<()>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            state: watch::Sender::new(ClientState::default()),
            stop: None,
            task: None,
        }
    }
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("state", &*self.state.borrow())
            .finish()
    }
}

impl ReconnectingClient {
    /// An unnamed client for `endpoint`, with Twisted's default backoff.
    pub fn new(endpoint: ClientEndpoint, factory: Arc<dyn ProtocolFactory>) -> Self {
        ReconnectingClient {
            endpoint,
            factory,
            backoff: Backoff::default(),
            live: Live::default(),
        }
    }

    /// The same client with another retry schedule.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// A handle to watch the client and wait for its connection.
    pub fn handle(&self) -> ClientHandle {
        ClientHandle {
            state: self.live.state.subscribe(),
        }
    }
}

#[typetag::serde(name = ReconnectingClient::TAG)]
#[async_trait::async_trait]
impl Service for ReconnectingClient {
    async fn start(&mut self, _cx: &mut StartContext) -> Result<(), ServiceError> {
        let stop = CancellationToken::new();
        self.live.state.send_replace(ClientState::default());
        self.live.task = Some(tokio::spawn(keep_connected(
            self.endpoint.clone(),
            Arc::clone(&self.factory),
            self.backoff,
            self.live.state.clone(),
            stop.clone(),
        )));
        self.live.stop = Some(stop);
        Ok(())
    }

    async fn stop(&mut self, _cx: &StopContext) -> Result<(), ServiceError> {
        if let Some(stop) = self.live.stop.take() {
            stop.cancel();
        }
        let task = self.live.task.take();
        if let Some(task) = task {
            task.await?;
        }
        self.live.state.send_modify(|state| {
            state.connected = false;
            state.stopped = true;
        });
        Ok(())
    }

    fn summary(&self) -> Option<String> {
        Some(self.endpoint.to_string())
    }
}

rtwisted_core::register_type!(service ReconnectingClient = "rtwisted.ReconnectingClient", version 1);

async fn keep_connected(
    endpoint: ClientEndpoint,
    factory: Arc<dyn ProtocolFactory>,
    backoff: Backoff,
    state: watch::Sender<ClientState>,
    stop: CancellationToken,
) {
    let mut failures: u32 = 0;
    loop {
        let attempt = tokio::select! {
            () = stop.cancelled() => return,
            attempt = connect(&endpoint, stop.child_token()) => attempt,
        };
        match attempt {
            Ok(connection) => {
                tracing::info!("connected to {endpoint} ({})", connection.peer);
                failures = 0;
                state.send_modify(|s| {
                    s.connected = true;
                    s.consecutive_failures = 0;
                    s.last_error = None;
                });
                if let Err(error) = factory.serve(connection).await {
                    tracing::debug!("the connection to {endpoint} ended with an error: {error}");
                }
                if stop.is_cancelled() {
                    return;
                }
                failures = failures.saturating_add(1);
                tracing::info!("lost the connection to {endpoint}; reconnecting");
                state.send_modify(|s| {
                    s.connected = false;
                    s.consecutive_failures = failures;
                    s.last_error = Some("the connection was lost".into());
                });
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::info!("{error} (attempt {failures}); retrying");
                state.send_modify(|s| {
                    s.connected = false;
                    s.consecutive_failures = failures;
                    s.last_error = Some(error.to_string());
                });
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff.jittered(failures)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delays_follow_twisteds_policy() {
        let policy = Backoff {
            jitter: false,
            ..Backoff::default()
        };
        let seconds = |n| policy.delay(n).as_secs_f64();
        assert_eq!(seconds(0), 1.0);
        assert_eq!(seconds(1), 1.5);
        assert_eq!(seconds(2), 2.25);
        assert_eq!(seconds(3), 3.375);
        assert!((seconds(10) - 57.665).abs() < 0.001);
        assert_eq!(seconds(11), 60.0);
        assert_eq!(seconds(u32::MAX), 60.0);
    }

    #[test]
    fn jitter_adds_less_than_a_second() {
        let policy = Backoff::default();
        for n in 0..20 {
            let extra = policy.jittered(n) - policy.delay(n);
            assert!(extra < Duration::from_secs(1));
        }
    }
}
