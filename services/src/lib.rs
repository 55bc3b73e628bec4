//! # rtwisted-services: what ships built in
//!
//! The services, protocols and plugins every rtwisted binary links, built on the model in
//! [`rtwisted_core`]: [`strports`] (Twisted's endpoint strings), [`net`] (stream and datagram
//! servers and clients on TCP, UNIX sockets, TLS, UDP and systemd sockets), [`protocols`] (echo
//! and the classic services, port forwarding, the memcached-speaking `kv`), [`timer`] (periodic
//! tasks), [`procmon`] (supervised child processes), `web` (static folders and a reverse proxy over
//! HTTP/1.1 and HTTP/2, behind the default feature `web`; `http` is the piece it shares) and [`plugin`] (service makers for `rtap
//! save PLUGIN` and `rtwistd PLUGIN`), and [`codec`] (the fast path that reads and writes the
//! built-in types in snapshots).

mod calendar;
pub mod codec;
#[cfg(feature = "http")]
pub mod http;
pub mod net;
pub mod plugin;
pub mod procmon;
pub mod protocols;
pub mod strports;
pub mod timer;
#[cfg(feature = "web")]
pub mod web;

pub use protocols::ProtocolFactory;
