//! `rtwistd --metrics STRPORT`: the live counters at `/metrics` in the Prometheus text format.
//!
//! The endpoint is rtwistd's, not the application's: it is not in the snapshot, and a hot
//! restart hands its socket to the successor like a service's (under [`HANDOVER_KEY`]). Each
//! scrape asks the main loop for the same status `rtap status` shows (so a scrape during a live
//! apply waits for it), and renders it with [`prometheus::render`].

use std::convert::Infallible;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

use hyper::{Method, Request, Response, StatusCode};
use rtwisted_services::http::{self, Body, HttpSettings};
use rtwisted_services::net::Connection;
use rtwisted_services::net::listener::Bound;
use rtwisted_services::strports::ServerEndpoint;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::control::prometheus;
use crate::control::protocol::Request as ControlRequest;
use crate::control::server::Command;
use crate::control::status::Status;
use crate::error::CliError;

/// The key the metrics socket travels under at a hot restart.
pub(super) const HANDOVER_KEY: &str = "rtwistd --metrics";

/// The bound metrics endpoint; serving once [`MetricsEndpoint::serve`] is called.
pub(super) struct MetricsEndpoint {
    bound: Arc<Bound>,
    accepting: CancellationToken,
    accept: Option<tokio::task::JoinHandle<()>>,
}

impl MetricsEndpoint {
    /// Listens on `description` (a strports server description), or on the descriptors a
    /// predecessor handed over for it.
    pub(super) fn open(
        description: &str,
        inherited: Option<Vec<OwnedFd>>,
    ) -> Result<MetricsEndpoint, CliError> {
        let endpoint: ServerEndpoint = description.parse().map_err(|error| {
            CliError::failed(format!(
                "--metrics '{description}' is not an endpoint: {error}"
            ))
        })?;
        let (bound, how) = match inherited {
            Some(fds) => (Bound::adopt(&endpoint, fds), "took over"),
            None => (Bound::listen(&endpoint), "listening on"),
        };
        let bound = bound
            .map_err(|error| CliError::failed(format!("cannot serve the metrics: {error}")))?;
        if let Some(local) = bound.local_address() {
            tracing::info!("metrics ({description}) {how} {local}, at /metrics");
        }
        Ok(MetricsEndpoint {
            bound: Arc::new(bound),
            accepting: CancellationToken::new(),
            accept: None,
        })
    }

    /// Serves scrapes; each asks the main loop for the status through `commands`.
    pub(super) fn serve(&mut self, commands: mpsc::Sender<Command>) {
        let bound = Arc::clone(&self.bound);
        let accepting = self.accepting.clone();
        self.accept = Some(tokio::spawn(async move {
            let connections = tokio_util::task::TaskTracker::new();
            loop {
                let accepted = tokio::select! {
                    () = accepting.cancelled() => break,
                    accepted = bound.accept() => accepted,
                };
                let accepted = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!("metrics: accept failed: {error}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let commands = commands.clone();
                let drain = accepting.clone();
                connections.spawn(async move {
                    let Ok((stream, peer, local)) = accepted.finish().await else {
                        return;
                    };
                    let connection = Connection {
                        stream,
                        peer,
                        local,
                        shutdown: CancellationToken::new(),
                    };
                    let service = hyper::service::service_fn(move |request| {
                        answer(request, commands.clone())
                    });
                    let _ = http::serve(connection, service, &HttpSettings::default(), drain).await;
                });
            }
            connections.close();
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(2), connections.wait()).await;
        }));
    }

    /// The listener's descriptors, for a successor.
    pub(super) fn handover_fds(&self) -> Vec<BorrowedFd<'_>> {
        self.bound.handover_fds()
    }

    /// Stops serving; after a hand-over the socket (and a UNIX socket's file) stays the
    /// successor's.
    pub(super) async fn stop(mut self, handed_over: bool) {
        if handed_over {
            self.bound.release();
        }
        self.accepting.cancel();
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
    }
}

/// One scrape: `GET /metrics` (or `HEAD`); anything else is 404 or 405.
async fn answer(
    request: Request<hyper::body::Incoming>,
    commands: mpsc::Sender<Command>,
) -> Result<Response<Body>, Infallible> {
    if request.uri().path() != "/metrics" {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "not found: the metrics are at /metrics\n",
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "only GET /metrics\n"));
    }
    let page = match status(&commands).await {
        Ok(status) => prometheus::render(&status),
        Err(error) => {
            return Ok(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("{error}\n"),
            ));
        }
    };
    let mut response = Response::new(if request.method() == Method::HEAD {
        Body::empty()
    } else {
        Body::full(page)
    });
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(prometheus::CONTENT_TYPE),
    );
    Ok(response)
}

async fn status(commands: &mpsc::Sender<Command>) -> Result<Status, String> {
    let (reply, answer) = oneshot::channel();
    commands
        .send(Command {
            request: ControlRequest::Status,
            reply,
        })
        .await
        .map_err(|_| "rtwistd is shutting down".to_owned())?;
    let reply = answer
        .await
        .map_err(|_| "rtwistd is shutting down".to_owned())?;
    let result = reply
        .result
        .ok_or_else(|| reply.error.unwrap_or_else(|| "no status".to_owned()))?;
    serde_json::from_value(result).map_err(|error| format!("the status did not decode: {error}"))
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(Body::full(text.to_owned()));
    *response.status_mut() = status;
    response
}
