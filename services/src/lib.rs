//! # rtwisted-services: what ships built in
//!
//! The services, protocols and plugins every rtwisted binary links, built on the model in
//! [`rtwisted_core`]: [`strports`] (Twisted's endpoint strings), [`net`] (stream and datagram
//! servers and clients on TCP, UNIX sockets, TLS, UDP and systemd sockets), [`protocols`] (echo
//! and the classic services, port forwarding, the memcached-speaking `kv`), [`timer`] (periodic
//! tasks), [`procmon`] (supervised child processes) and [`plugin`] (service makers for `rtap
//! save PLUGIN` and `rtwistd PLUGIN`), and [`codec`] (the fast path that reads and writes the
//! built-in types in snapshots).

pub mod codec;
pub mod net;
pub mod plugin;
pub mod procmon;
pub mod protocols;
pub mod strports;
pub mod timer;

pub use protocols::ProtocolFactory;
