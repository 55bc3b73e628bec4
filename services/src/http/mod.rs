//! Serving HTTP on an accepted rtwisted [`Connection`]: HTTP/1.1, and HTTP/2 when the client
//! opens with its preface (as every client does after choosing `h2` by ALPN over TLS), with
//! limits on the request head and a deadline for it.
//!
//! This is the piece the web service and a metrics endpoint share: give [`serve`] a connection
//! from a [`ProtocolFactory`](crate::ProtocolFactory), a hyper service and the
//! [`HttpSettings`], and it runs the connection to its end:
//!
//! ```no_run
//! use rtwisted_services::http::{self, Body, HttpSettings};
//! # async fn demo(connection: rtwisted_services::net::Connection) -> std::io::Result<()> {
//! let drain = tokio_util::sync::CancellationToken::new();
//! let hello = hyper::service::service_fn(|_request| async {
//!     Ok::<_, std::convert::Infallible>(hyper::Response::new(Body::full("hello\n")))
//! });
//! http::serve(connection, hello, &HttpSettings::default(), drain).await
//! # }
//! ```
//!
//! Two ways to end early: `drain` (cancelled when the server stops accepting) lets the request
//! in flight finish and then closes, and closes an idle keep-alive connection at once; the
//! connection's own `shutdown` token (cancelled at the stop's grace end) drops it where it is.

mod body;
mod rewind;

use std::io;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

pub use body::Body;
pub(crate) use body::PolledFrame;

use crate::net::Connection;
use rewind::Rewind;

/// What every HTTP/2 connection starts with (RFC 9113, section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Limits on what a client may send before its request is answered.
///
/// Persisted with the service that serves HTTP; every field has a default, so an older
/// snapshot without one loads with today's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// The largest request head (request line and headers), in bytes: a larger one gets
    /// `431 Request Header Fields Too Large` (HTTP/2: the header list).
    pub max_header_bytes: usize,
    /// The most header fields in one request: more get `431`.
    pub max_headers: usize,
    /// The longest request target (path and query), in bytes: longer gets `414 URI Too Long`.
    pub max_request_line: usize,
    /// Seconds a client has to send a whole request head, counted from the end of the previous
    /// response (so it is also how long an idle keep-alive connection stays open); a client
    /// that is slower is disconnected.
    pub header_timeout_secs: f64,
    /// HTTP/2: how many requests one connection may have in flight at once.
    pub max_concurrent_streams: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_request_line: 8 * 1024,
            header_timeout_secs: 10.0,
            max_concurrent_streams: 128,
        }
    }
}

/// hyper's own limit on header fields (see `serve`).
const HYPER_MAX_HEADERS: usize = 100;

/// The smallest head limit hyper can enforce (its read buffer's minimum).
const MIN_HEADER_BYTES: usize = 8 * 1024;

impl HttpSettings {
    /// Checks that the settings can be used: each limit at least its minimum, the timeout a
    /// positive number of seconds. The error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(format!(
                "max_header_bytes must be at least {MIN_HEADER_BYTES}, got {}",
                self.max_header_bytes
            ));
        }
        if self.max_headers == 0 || self.max_request_line == 0 || self.max_concurrent_streams == 0 {
            return Err(
                "max_headers, max_request_line and max_concurrent_streams must be at least 1"
                    .into(),
            );
        }
        if !(self.header_timeout_secs.is_finite()
            && self.header_timeout_secs > 0.0
            && self.header_timeout_secs <= 86_400.0)
        {
            return Err(format!(
                "header_timeout_secs must be more than 0 and at most 86400, got {}",
                self.header_timeout_secs
            ));
        }
        Ok(())
    }

    /// The head deadline as a duration.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.header_timeout_secs.clamp(0.001, 86_400.0))
    }
}

/// Serves `connection` with `service` until the client closes, `drain` ends it gracefully, or
/// the connection's `shutdown` token cuts it. Errors of the HTTP exchange itself (a client
/// that vanished, a malformed request hyper already answered) end the connection quietly and
/// are returned for a debug log.
pub async fn serve<S>(
    connection: Connection,
    service: S,
    settings: &HttpSettings,
    drain: CancellationToken,
) -> io::Result<()>
where
    S: hyper::service::Service<
            hyper::Request<Incoming>,
            Response = hyper::Response<Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let (mut stream, shutdown) = connection.into_stream();
    // Which protocol: read until the bytes are (or cannot be) the HTTP/2 preface, within the
    // head deadline, so a client that sends nothing cannot hold the connection.
    let mut start = Vec::with_capacity(H2_PREFACE.len());
    let sniff = async {
        let mut chunk = [0u8; 24];
        while start.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(&start) {
            let wanted = H2_PREFACE.len() - start.len();
            let read = stream.read(&mut chunk[..wanted]).await?;
            if read == 0 {
                return Ok::<bool, io::Error>(false);
            }
            start.extend_from_slice(&chunk[..read]);
        }
        Ok(true)
    };
    let sniffed = tokio::select! {
        () = shutdown.cancelled() => return Ok(()),
        () = drain.cancelled() => return Ok(()),
        sniffed = tokio::time::timeout(settings.header_timeout(), sniff) => sniffed,
    };
    match sniffed {
        Err(_) | Ok(Ok(false)) => return Ok(()),
        Ok(Err(error)) => return Err(error),
        Ok(Ok(true)) => {}
    }
    let is_h2 = start == H2_PREFACE;
    let io = TokioIo::new(Rewind::new(start, stream));
    let result = if is_h2 {
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(settings.max_concurrent_streams)
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(settings.header_timeout());
        let connection = builder.serve_connection(io, service);
        drive(connection, &drain, &shutdown, |c| c.graceful_shutdown()).await
    } else {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_timeout())
            .max_header_size(settings.max_header_bytes)
            .max_buf_size(
                settings
                    .max_header_bytes
                    .max(MIN_HEADER_BYTES)
                    .max(64 * 1024),
            );
        // hyper's default is 100 header fields, parsed on the stack; any other limit moves
        // every request's headers to the heap, so it is set only when it differs.
        if settings.max_headers != HYPER_MAX_HEADERS {
            builder.max_headers(settings.max_headers);
        }
        let connection = builder.serve_connection(io, service);
        drive(connection, &drain, &shutdown, |c| c.graceful_shutdown()).await
    };
    result.map_err(io::Error::other)
}

/// Runs a hyper connection future, starting its graceful shutdown when `drain` is cancelled
/// and dropping it when `shutdown` is.
async fn drive<C, E>(
    connection: C,
    drain: &CancellationToken,
    shutdown: &CancellationToken,
    graceful: impl FnOnce(std::pin::Pin<&mut C>),
) -> Result<(), E>
where
    C: std::future::Future<Output = Result<(), E>>,
{
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => return result,
        () = shutdown.cancelled() => return Ok(()),
        () = drain.cancelled() => graceful(connection.as_mut()),
    }
    tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => Ok(()),
    }
}
