//! The web: [`Site`], a protocol factory that serves HTTP/1.1 (and HTTP/2 over TLS, by ALPN)
//! from a tree of [`Resource`]s mounted by path — static folders, reverse proxies, redirects,
//! fixed data and a health check — as Twisted's `server.Site` serves its resources.
//!
//! A site is a plain value, saved in the snapshot with the server that runs it:
//!
//! ```
//! use std::sync::Arc;
//! use rtwisted_services::net::StreamServer;
//! use rtwisted_services::web::{Resource, Site};
//!
//! let mut site = Site::new();
//! site.mount("/", Resource::folder("/srv/www")).unwrap();
//! site.mount("/api", Resource::proxy("tcp:127.0.0.1:8000".parse().unwrap())).unwrap();
//! let server = StreamServer::new("tcp:8080".parse().unwrap(), Arc::new(site));
//! # let _ = server;
//! ```
//!
//! A request goes to the resource of the longest mount path that is its path or a
//! whole-segment prefix of it. Every response is written to the access log in the combined log
//! format, and counted in the server's live counters (`http_requests_total`,
//! `http_responses_4xx_total`, `http_responses_5xx_total`, beside the server's own connection
//! and byte counters).

mod access_log;
mod files;
mod listing;
mod mime;
mod path;
mod pool;
mod proxy;
mod range;
mod reply;
mod resource;
mod router;
mod send;

use std::io;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize};

pub use access_log::AccessLog;
pub use resource::{MountError, Mounts, Resource, default_index, validate_mount};

use crate::http::HttpSettings;
use crate::net::Connection;
use crate::protocols::ProtocolFactory;
use crate::strports::ServerEndpoint;
use router::Running;
use rtwisted_core::{ServiceError, StartContext};

/// An HTTP site: resources by mount path, the HTTP limits, and where the access log goes.
///
/// Persisted: `resources`, `http` and `access_log`. What runs (the open log, the proxies'
/// connection pools) is built in the server's privileged start.
#[derive(Debug, Serialize)]
pub struct Site {
    /// The resources, by mount path.
    pub resources: Mounts,
    /// Limits on requests and the head deadline.
    pub http: HttpSettings,
    /// Where the access log goes.
    pub access_log: AccessLog,
    #[serde(skip)]
    live: RwLock<Option<Arc<Running>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteFields {
    resources: Mounts,
    #[serde(default)]
    http: HttpSettings,
    #[serde(default)]
    access_log: AccessLog,
}

impl<'de> Deserialize<'de> for Site {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = SiteFields::deserialize(deserializer)?;
        fields.http.validate().map_err(serde::de::Error::custom)?;
        Ok(Site {
            resources: fields.resources,
            http: fields.http,
            access_log: fields.access_log,
            live: RwLock::default(),
        })
    }
}

impl Default for Site {
    fn default() -> Self {
        Site::new()
    }
}

impl Site {
    /// A site with nothing mounted (every request is `404`), default limits, and the access
    /// log in the daemon's log.
    pub fn new() -> Self {
        Site {
            resources: Mounts::new(),
            http: HttpSettings::default(),
            access_log: AccessLog::default(),
            live: RwLock::default(),
        }
    }

    /// Mounts `resource` at `path` (`/`, `/api`), replacing what was there. The error names a
    /// bad path or resource.
    pub fn mount(&mut self, path: &str, resource: Resource) -> Result<(), String> {
        self.resources.insert(path, resource).map(drop)
    }

    fn running(&self) -> Option<Arc<Running>> {
        self.live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[typetag::serde(name = Site::TAG)]
#[async_trait]
impl ProtocolFactory for Site {
    async fn serve(&self, connection: Connection) -> io::Result<()> {
        // A site used without a server's start (a client, a test) builds what it needs now.
        let running = match self.running() {
            Some(running) => running,
            None => {
                let running = Arc::new(
                    Running::build(
                        self,
                        &StartContext::new(
                            rtwisted_core::ServicePath::root(),
                            Default::default(),
                            Default::default(),
                        ),
                        false,
                    )
                    .map_err(io::Error::other)?,
                );
                *self.live.write().unwrap_or_else(PoisonError::into_inner) =
                    Some(Arc::clone(&running));
                running
            }
        };
        router::serve(running, connection, &self.http).await
    }

    async fn prepare(
        &self,
        cx: &StartContext,
        endpoint: &ServerEndpoint,
    ) -> Result<(), ServiceError> {
        let tls = matches!(endpoint, ServerEndpoint::Tls(_));
        let running = Running::build(self, cx, tls)?;
        let old = self
            .live
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(Arc::new(running));
        if let Some(old) = old {
            old.finish();
        }
        Ok(())
    }

    fn drain(&self) {
        if let Some(running) = self.running() {
            running.drain();
        }
    }

    async fn finish(&self) {
        let running = self
            .live
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(running) = running {
            running.finish();
        }
    }

    fn alpn_protocols(&self) -> Vec<Vec<u8>> {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    }
}

rtwisted_core::register_type!(factory Site = "rtwisted.Site", version 1);
