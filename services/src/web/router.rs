//! What a running [`Site`](super::Site) is: its resources made ready to answer (open log,
//! proxy pools), the routing of each request to one of them, and the per-response bookkeeping
//! (access log line, counters).

use std::convert::Infallible;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::access_log::{self, Entry, Sink};
use super::files::{Ask, Folder};
use super::proxy::Proxy;
use super::reply;
use super::resource::Resource;
use crate::http::{self, Body, HttpSettings, PolledFrame};
use crate::net::{Address, Connection};
use rtwisted_core::StartContext;
use rtwisted_core::context::Counter;

/// A resource made ready to answer.
enum Handler {
    Folder(Folder),
    Proxy(Box<Proxy>),
    Redirect(StatusCode, HeaderValue),
    Data(Bytes, HeaderValue),
    Health,
}

/// The live counters a site publishes beside its server's (connections, bytes, errors).
struct Counters {
    requests: Counter,
    client_errors: Counter,
    server_errors: Counter,
}

/// A site while its server runs.
pub(super) struct Running {
    /// Mounts, longest first.
    routes: Vec<(String, Handler)>,
    sink: Arc<Sink>,
    counters: Counters,
    stop_flushing: CancellationToken,
    drain: CancellationToken,
    tls: bool,
    max_request_line: usize,
    flusher: Option<JoinHandle<()>>,
}

impl Running {
    /// Makes `site`'s resources ready: opens the access log, checks each folder exists.
    pub(super) fn build(
        site: &super::Site,
        cx: &StartContext,
        tls: bool,
    ) -> Result<Running, String> {
        site.http.validate()?;
        let mut routes = Vec::with_capacity(site.resources.len());
        for (mount, resource) in site.resources.iter() {
            let handler = match resource {
                Resource::Static {
                    path,
                    listing,
                    follow_symlinks,
                    index,
                } => {
                    std::fs::metadata(path).map_err(|error| {
                        format!(
                            "the folder served at {mount}, '{}', cannot be used: {}",
                            path.display(),
                            rtwisted_core::describe_io(&error)
                        )
                    })?;
                    Handler::Folder(Folder::new(
                        path.clone(),
                        *listing,
                        *follow_symlinks,
                        index.clone(),
                    ))
                }
                Resource::Proxy {
                    dest,
                    path,
                    preserve_host,
                } => Handler::Proxy(Box::new(Proxy::new(dest, path, *preserve_host))),
                Resource::Redirect { to, code } => Handler::Redirect(
                    StatusCode::from_u16(*code).map_err(|e| e.to_string())?,
                    HeaderValue::from_str(to).map_err(|e| e.to_string())?,
                ),
                Resource::Data { data, content_type } => Handler::Data(
                    Bytes::from(data.clone()),
                    HeaderValue::from_str(content_type).map_err(|e| e.to_string())?,
                ),
                Resource::Health {} => Handler::Health,
            };
            routes.push((mount.to_owned(), handler));
        }
        routes.sort_by_key(|route| std::cmp::Reverse(route.0.len()));
        let sink = Arc::new(Sink::open(&site.access_log)?);
        let counters = cx.counters();
        let mut running = Running {
            routes,
            sink,
            counters: Counters {
                requests: counters.counter("http_requests_total"),
                client_errors: counters.counter("http_responses_4xx_total"),
                server_errors: counters.counter("http_responses_5xx_total"),
            },
            drain: CancellationToken::new(),
            stop_flushing: CancellationToken::new(),
            tls,
            max_request_line: site.http.max_request_line,
            flusher: None,
        };
        if matches!(*running.sink, Sink::File(_)) && tokio::runtime::Handle::try_current().is_ok() {
            running.flusher = Some(tokio::spawn(flush_every_second(
                Arc::clone(&running.sink),
                running.stop_flushing.clone(),
            )));
        }
        Ok(running)
    }

    /// Closes idle connections and ends the others after their request in flight.
    pub(super) fn drain(&self) {
        self.drain.cancel();
    }

    /// Drains, stops the flusher and flushes the access log.
    pub(super) fn finish(&self) {
        self.drain.cancel();
        self.stop_flushing.cancel();
        self.sink.flush();
    }

    fn route<'p>(&self, path: &'p str) -> Option<(&Handler, &'p str)> {
        self.routes.iter().find_map(|(mount, handler)| {
            if mount == "/" {
                return Some((handler, path));
            }
            let rest = path.strip_prefix(mount.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((handler, rest))
        })
    }
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field(
                "mounts",
                &self
                    .routes
                    .iter()
                    .map(|(mount, _)| mount)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_flushing.cancel();
        self.sink.flush();
    }
}

/// Flushes the access log every [`FLUSH_EVERY`] (and reopens a rotated file) until `stop`.
async fn flush_every_second(sink: Arc<Sink>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(FLUSH_EVERY) => sink.flush(),
        }
    }
}

/// Per-connection facts every response of the connection needs.
struct Peer {
    ip: Option<IpAddr>,
    shown: String,
}

/// Serves one connection of a running site.
pub(super) async fn serve(
    running: Arc<Running>,
    connection: Connection,
    settings: &HttpSettings,
) -> io::Result<()> {
    let peer = Arc::new(match &connection.peer {
        Address::Inet(address) => Peer {
            ip: Some(address.ip()),
            shown: address.ip().to_string(),
        },
        Address::Unix(_) => Peer {
            ip: None,
            shown: "unix".to_owned(),
        },
    });
    let drain = running.drain.clone();
    let service = {
        let running = Arc::clone(&running);
        hyper::service::service_fn(move |request| {
            let running = Arc::clone(&running);
            let peer = Arc::clone(&peer);
            async move { Ok::<_, Infallible>(handle(running, peer, request).await) }
        })
    };
    http::serve(connection, service, settings, drain).await
}

async fn handle(
    running: Arc<Running>,
    peer: Arc<Peer>,
    request: Request<Incoming>,
) -> Response<Body> {
    running.counters.requests.add(1);
    let entry = running.sink.is_on().then(|| {
        let uri = request.uri();
        let whole;
        let target = match uri.path_and_query() {
            Some(target) => target.as_str(),
            None => {
                whole = uri.to_string();
                &whole
            }
        };
        let headers = request.headers();
        Entry::new(
            &access_log::Request {
                client: &peer.shown,
                method: request.method().as_str(),
                target,
                version: match request.version() {
                    Version::HTTP_2 => "HTTP/2.0",
                    Version::HTTP_10 => "HTTP/1.0",
                    Version::HTTP_09 => "HTTP/0.9",
                    _ => "HTTP/1.1",
                },
                referer: headers.get(header::REFERER).map(HeaderValue::as_bytes),
                agent: headers.get(header::USER_AGENT).map(HeaderValue::as_bytes),
            },
            SystemTime::now(),
        )
    });
    let mut response = dispatch(&running, &peer, request).await;
    response
        .headers_mut()
        .insert(header::SERVER, HeaderValue::from_static("rtwisted"));
    let status = response.status().as_u16();
    match status {
        400..=499 => running.counters.client_errors.add(1),
        500..=599 => running.counters.server_errors.add(1),
        _ => {}
    }
    let (parts, body) = response.into_parts();
    let body = Logged {
        inner: body,
        sent: 0,
        entry,
        status,
        running,
    };
    Response::from_parts(parts, Body::stream(body))
}

async fn dispatch(running: &Running, peer: &Peer, request: Request<Incoming>) -> Response<Body> {
    let target_len = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target_len > running.max_request_line {
        return reply::status(StatusCode::URI_TOO_LONG);
    }
    let path = request.uri().path().to_owned();
    let Some((handler, rest)) = running.route(&path) else {
        return reply::status(StatusCode::NOT_FOUND);
    };
    match handler {
        Handler::Folder(folder) => folder.serve(&Ask {
            method: request.method(),
            headers: request.headers(),
            rest,
            full_path: &path,
            query: request.uri().query(),
        }),
        Handler::Proxy(proxy) => {
            let rest = rest.to_owned();
            proxy.forward(request, &rest, peer.ip, running.tls).await
        }
        Handler::Redirect(code, location) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = *code;
            response
                .headers_mut()
                .insert(header::LOCATION, location.clone());
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            response
        }
        Handler::Data(bytes, content_type) => {
            if request.method() != Method::GET && request.method() != Method::HEAD {
                return reply::method_not_allowed("GET, HEAD");
            }
            let head = request.method() == Method::HEAD;
            let mut response = Response::new(if head {
                Body::empty()
            } else {
                Body::full(bytes.clone())
            });
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type.clone());
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            response
        }
        Handler::Health => {
            if request.method() != Method::GET && request.method() != Method::HEAD {
                return reply::method_not_allowed("GET, HEAD");
            }
            reply::text(StatusCode::OK, "ok\n")
        }
    }
}

/// A response body that counts what it sends and writes the access log line when it is done
/// (or dropped: a client that went away is logged with what it got).
struct Logged {
    inner: Body,
    sent: u64,
    entry: Option<Entry>,
    status: u16,
    running: Arc<Running>,
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> PolledFrame {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.sent += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(entry) = &self.entry {
            self.running.sink.write(entry, self.status, self.sent);
        }
    }
}

/// How often a file access log is flushed.
pub(super) const FLUSH_EVERY: Duration = Duration::from_secs(1);
