//! The reverse proxy (Twisted's `ReverseProxyResource(host, port, path)`): each request is
//! sent to a client endpoint over a pool of kept-alive HTTP/1.1 connections, its body streamed
//! up and the response's body streamed back as they arrive.
//!
//! Upstream sees `X-Forwarded-For` (the client's address appended to any it sent),
//! `X-Forwarded-Host` (the `Host` the client asked for) and `X-Forwarded-Proto`, and the
//! `Host` of the destination, as Twisted sends it (`preserve_host` sends the client's
//! instead). Hop-by-hop headers (`Connection` and the ones it names, `Keep-Alive`,
//! `Transfer-Encoding`, `TE`, `Upgrade`, `Proxy-*`) are not passed on in either direction.
//!
//! An upstream connection has no task of its own: whichever request holds it drives it, from
//! sending the request until the response body's last byte, and then puts it back in the pool
//! (see `pool.rs`). A proxied request is so handled by one task from end to end, with no
//! hand-off between threads.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri, Version};

use super::pool::Pool;
use super::reply;
use crate::http::Body;
use crate::strports::ClientEndpoint;

/// One proxied destination and its connection pool.
pub struct Proxy {
    pool: Arc<Pool>,
    prefix: String,
    host: HeaderValue,
    preserve_host: bool,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// The `Host` Twisted's proxy sends: the host, and the port unless it is 80.
fn dest_host(dest: &ClientEndpoint) -> String {
    match dest {
        ClientEndpoint::Tcp(tcp) => host_port(&tcp.host, tcp.port),
        ClientEndpoint::Tls(tls) => host_port(&tls.tcp.host, tls.tcp.port),
        _ => "localhost".to_owned(),
    }
}

fn host_port(host: &str, port: u16) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    if port == 80 {
        host
    } else {
        format!("{host}:{port}")
    }
}

impl Proxy {
    /// A proxy to `dest` that puts `prefix` before the path under its mount.
    pub fn new(dest: &ClientEndpoint, prefix: &str, preserve_host: bool) -> Self {
        Proxy {
            pool: Arc::new(Pool::new(dest.clone())),
            host: HeaderValue::from_str(&dest_host(dest))
                .unwrap_or_else(|_| HeaderValue::from_static("localhost")),
            prefix: prefix.to_owned(),
            preserve_host,
        }
    }

    /// Forwards `request`, whose path under the mount is `rest`, for a client at `peer`.
    pub async fn forward(
        &self,
        request: Request<Incoming>,
        rest: &str,
        peer: Option<IpAddr>,
        tls: bool,
    ) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let mut target = String::with_capacity(self.prefix.len() + rest.len() + 16);
        target.push_str(&self.prefix);
        target.push_str(rest);
        if self.prefix.is_empty() && rest.is_empty() {
            target.push('/');
        }
        if let Some(query) = parts.uri.query() {
            target.push('?');
            target.push_str(query);
        }
        let Ok(uri) = target.parse::<Uri>() else {
            return reply::status(StatusCode::BAD_REQUEST);
        };
        let asked_host = parts.headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        let host = match (&asked_host, self.preserve_host) {
            (Some(asked), true) => asked.clone(),
            _ => self.host.clone(),
        };
        headers.insert(header::HOST, host);
        if let Some(asked) = asked_host {
            headers.insert(HeaderName::from_static("x-forwarded-host"), asked);
        }
        if let Some(peer) = peer {
            let forwarded = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
                Some(earlier) => format!("{earlier}, {peer}"),
                None => peer.to_string(),
            };
            if let Ok(value) = HeaderValue::from_str(&forwarded) {
                headers.insert(HeaderName::from_static("x-forwarded-for"), value);
            }
        }
        headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static(if tls { "https" } else { "http" }),
        );
        let mut upstream = Request::new(body);
        *upstream.method_mut() = parts.method;
        *upstream.uri_mut() = uri;
        *upstream.version_mut() = Version::HTTP_11;
        *upstream.headers_mut() = headers;
        match self.pool.send(upstream).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                parts.version = Version::HTTP_11;
                Response::from_parts(parts, body)
            }
            Err(error) => {
                tracing::warn!("proxy to {}: {error}", self.pool.dest());
                reply::text(
                    StatusCode::BAD_GATEWAY,
                    "Bad Gateway: the upstream server did not answer\n",
                )
            }
        }
    }
}

/// Removes the headers that belong to one connection only (RFC 9110, section 7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::ACCEPT));
    }

    #[test]
    fn the_host_sent_upstream_is_twisteds() {
        let dest: ClientEndpoint = "tcp:host=example.org:port=80".parse().unwrap();
        assert_eq!(dest_host(&dest), "example.org");
        let dest: ClientEndpoint = "tcp:host=127.0.0.1:port=8000".parse().unwrap();
        assert_eq!(dest_host(&dest), "127.0.0.1:8000");
    }
}
