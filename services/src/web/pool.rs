//! The reverse proxy's upstream connections: a pool of idle HTTP/1.1 connections to one
//! destination, each driven by the request that holds it.
//!
//! hyper's client splits a connection in two: a `SendRequest` handle and the `Connection`
//! future that does the I/O. Where a pooled client spawns a task per connection (and so hands
//! every request and every body chunk between tasks, often between threads), here the
//! request's own task polls the connection future: while it waits for the response head, and
//! then from the response body ([`PooledBody`]) until its end, when the connection goes back
//! to the pool. A connection whose body is dropped early is closed, never reused half-read.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as _, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::http::{Body, PolledFrame};
use crate::net::Stream;
use crate::net::connect::connect;
use crate::strports::ClientEndpoint;

/// How long an idle upstream connection is kept for the next request.
const IDLE_FOR: Duration = Duration::from_secs(30);
/// The most idle connections kept per destination.
const MAX_IDLE: usize = 256;

type Driver = http1::Connection<TokioIo<Box<dyn Stream>>, Incoming>;

/// One upstream connection: the handle to send on and the future that drives it.
struct Upstream {
    sender: http1::SendRequest<Incoming>,
    driver: Pin<Box<Driver>>,
    idle_since: Instant,
}

impl Upstream {
    /// Polls the connection's I/O once; true while it is still open.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        matches!(self.driver.as_mut().poll(cx), Poll::Pending)
    }

    /// True when the connection can take a request now (it was idle and is still open).
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.drive(&mut cx) && matches!(self.sender.poll_ready(&mut cx), Poll::Ready(Ok(())))
    }
}

/// Why a request could not be proxied.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made.
    #[error(transparent)]
    Connect(#[from] crate::net::connect::ConnectError),
    /// The HTTP exchange failed.
    #[error("{0}")]
    Http(String),
}

fn describe(error: &hyper::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The idle connections to one destination.
pub struct Pool {
    dest: ClientEndpoint,
    idle: Mutex<VecDeque<Upstream>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("dest", &self.dest.to_string())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// An empty pool for `dest`.
    pub fn new(dest: ClientEndpoint) -> Self {
        Pool {
            dest,
            idle: Mutex::new(VecDeque::new()),
        }
    }

    /// The destination.
    pub fn dest(&self) -> &ClientEndpoint {
        &self.dest
    }

    /// The most recently used idle connection that still works, if any.
    fn take(&self) -> Option<Upstream> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(mut upstream) = idle.pop_back() {
            if upstream.idle_since.elapsed() < IDLE_FOR && upstream.usable() {
                return Some(upstream);
            }
        }
        None
    }

    fn put(&self, mut upstream: Upstream) {
        upstream.idle_since = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() >= MAX_IDLE {
            idle.pop_front();
        }
        idle.push_back(upstream);
    }

    async fn open(&self) -> Result<Upstream, UpstreamError> {
        let connection = connect(&self.dest, CancellationToken::new()).await?;
        let (sender, driver) = http1::handshake(TokioIo::new(connection.stream))
            .await
            .map_err(|error| UpstreamError::Http(describe(&error)))?;
        Ok(Upstream {
            sender,
            driver: Box::pin(driver),
            idle_since: Instant::now(),
        })
    }

    /// Sends `request` on an idle connection (or a new one) and returns the response, whose
    /// body drives the connection and returns it to the pool at its end. A request without a
    /// body that an idle connection failed to send (the upstream closed it meanwhile) is sent
    /// once more on a new connection.
    pub async fn send(
        self: &Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Body>, UpstreamError> {
        let mut request = request;
        let mut reused = self.take();
        loop {
            let fresh = reused.is_none();
            let mut upstream = match reused.take() {
                Some(upstream) => upstream,
                None => self.open().await?,
            };
            let retryable = !fresh && request.body().is_end_stream();
            let sent = upstream.sender.try_send_request(request);
            let mut sent = std::pin::pin!(sent);
            let outcome = std::future::poll_fn(|cx| {
                if let Poll::Ready(outcome) = sent.as_mut().poll(cx) {
                    return Poll::Ready(outcome);
                }
                // Drive the connection; when it ends, the response future resolves with
                // the reason on the next poll.
                if !upstream.drive(cx) {
                    return sent.as_mut().poll(cx);
                }
                Poll::Pending
            })
            .await;
            match outcome {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = PooledBody {
                        body,
                        upstream: Some(upstream),
                        pool: Arc::clone(self),
                    };
                    return Ok(Response::from_parts(parts, Body::stream(body)));
                }
                Err(mut error) => match error.take_message() {
                    Some(unsent) if retryable => request = unsent,
                    _ => return Err(UpstreamError::Http(describe(error.error()))),
                },
            }
        }
    }
}

/// A proxied response body: polls its connection as it is read, and gives the connection back
/// to the pool after the last byte.
struct PooledBody {
    body: Incoming,
    upstream: Option<Upstream>,
    pool: Arc<Pool>,
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> PolledFrame {
        let this = self.get_mut();
        if let Some(upstream) = &mut this.upstream
            && !upstream.drive(cx)
        {
            this.upstream = None;
        }
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                if let Some(upstream) = this.upstream.take() {
                    this.pool.put(upstream);
                }
            }
            Poll::Ready(Some(Err(_))) => this.upstream = None,
            _ => {}
        }
        polled.map_err(|error| io::Error::other(describe(&error)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body read to its end gave its connection back; one dropped early may not be,
        // unless it was already complete (an empty body the server never polled).
        if let Some(upstream) = self.upstream.take()
            && self.body.is_end_stream()
        {
            self.pool.put(upstream);
        }
    }
}
