//! The `kv` protocol: a memcached-compatible key-value server whose data lives inside the
//! factory and so in every snapshot of the tree that serves it.
//!
//! Freeze a running `kv` server (or stop `rtwistd`, which saves `NAME-shutdown.tap`) and the
//! snapshot holds every live item with its flags, expiry and cas unique, plus the cas counter;
//! run the snapshot again and the clients find their data. Expiry is kept as absolute unix
//! time, so an item expires at the same moment whether or not the daemon was down meanwhile.
//!
//! Each connection speaks the text protocol ([`text`], with the meta commands of [`meta`]) or
//! the binary protocol ([`binary`]), chosen by its first byte as memcached does. Keys and
//! values are bytes.
//!
//! Memory is bounded: the items are held under a limit (`--memory-limit`, memcached's `-m`)
//! with least-recently-used eviction ([`table`]), the bytes of requests still arriving are
//! held under a cap across all connections ([`Budget`]), and connections under a count
//! (`--max-connections`, memcached's `-c`).
//!
//! Where this server differs from memcached on purpose:
//! - a storage command refused for a bad line still has its data block read and thrown away
//!   when its length could be read, so the data is never taken for commands;
//! - there are no slab classes: `stats slabs` and `stats items` show one class;
//! - SASL authentication is not offered.

mod binary;
mod budget;
mod command;
mod meta;
mod persist;
mod stats;
mod table;
#[cfg(test)]
mod tests;
mod text;

use std::fmt;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{OwnedRwLockWriteGuard, RwLock, RwLockReadGuard};

use super::{ProtocolFactory, Quiesced};
use crate::net::Connection;
use budget::Budget;
use rtwisted_core::context::{Counter, Counters};
use stats::Wire;
use table::{Table, unix_now};

/// The default largest value a client may store: 1 MiB, memcached's default item size.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1024 * 1024;

/// The default memory limit for items, in MiB (memcached's `-m` default).
pub const DEFAULT_MEMORY_LIMIT_MB: u64 = 64;

/// The default most connections open at once (memcached's `-c` default).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The version the server reports (`version`, `stats`): the memcached release whose protocol
/// it speaks, in the shape every client parses. `stats` also shows `rtwisted_version`.
pub const VERSION: &str = "1.6.18";

/// A memcached key-value server whose table is part of the factory, and so is saved in every
/// snapshot. Every connection of the server shares the one table.
#[derive(Serialize, Deserialize)]
pub struct Kv {
    /// The largest value accepted, in bytes.
    #[serde(default = "default_max_value_bytes")]
    max_value_bytes: usize,
    /// The items and the cas counter, shared by every connection.
    #[serde(default)]
    table: Arc<Table>,
    /// The memory limit for items, in MiB; left out of snapshots at its default.
    #[serde(
        default = "default_memory_limit_mb",
        skip_serializing_if = "is_default_memory_limit"
    )]
    memory_limit_mb: u64,
    /// The most connections open at once; left out of snapshots at its default.
    #[serde(
        default = "default_max_connections",
        skip_serializing_if = "is_default_max_connections"
    )]
    max_connections: usize,
    /// What only the running process has: statistics, the request budget, the write gate.
    #[serde(skip)]
    live: Live,
}

/// The part of a [`Kv`] that is never saved.
#[derive(Default)]
struct Live {
    wire: Wire,
    budget: Budget,
    /// Writes hold it shared while they change the table; [`ProtocolFactory::quiesce`] holds
    /// it exclusively, so writes wait (they are not refused) until the hand-over or resume.
    gate: Arc<RwLock<()>>,
    held: Mutex<Option<OwnedRwLockWriteGuard<()>>>,
    published: OnceLock<Published>,
}

/// The gauges registered by [`ProtocolFactory::publish`], for `rtap status` and `/metrics`.
struct Published {
    items: Counter,
    bytes: Counter,
    evictions: Counter,
    connections: Counter,
}

fn default_max_value_bytes() -> usize {
    DEFAULT_MAX_VALUE_BYTES
}

fn default_memory_limit_mb() -> u64 {
    DEFAULT_MEMORY_LIMIT_MB
}

fn is_default_memory_limit(mb: &u64) -> bool {
    *mb == DEFAULT_MEMORY_LIMIT_MB
}

fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}

fn is_default_max_connections(count: &usize) -> bool {
    *count == DEFAULT_MAX_CONNECTIONS
}

/// Bytes in `mb` MiB, saturating on a small machine.
fn mib(mb: u64) -> usize {
    usize::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
}

impl Kv {
    /// An empty table that accepts values of up to `max_value_bytes` bytes, with the default
    /// memory limit and connection limit.
    pub fn new(max_value_bytes: usize) -> Self {
        let kv = Kv {
            max_value_bytes,
            table: Arc::default(),
            memory_limit_mb: DEFAULT_MEMORY_LIMIT_MB,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            live: Live::default(),
        };
        kv.apply_limits();
        kv
    }

    /// Sets the memory limit for items, in MiB (at least 1).
    pub fn with_memory_limit_mb(mut self, mb: u64) -> Self {
        self.memory_limit_mb = mb.max(1);
        self.apply_limits();
        self
    }

    /// Sets the most connections open at once (at least 1).
    pub fn with_max_connections(mut self, count: usize) -> Self {
        self.max_connections = count.max(1);
        self
    }

    /// The largest value accepted, in bytes.
    pub fn max_value_bytes(&self) -> usize {
        self.max_value_bytes
    }

    /// The memory limit for items, in MiB.
    pub fn memory_limit_mb(&self) -> u64 {
        self.memory_limit_mb
    }

    /// The most connections open at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// How many items are stored (expired ones do not count).
    pub fn len(&self) -> usize {
        self.table.live_len(unix_now())
    }

    /// Whether no item is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value stored under `key`, unless there is none or it expired.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        self.table
            .peek(key.as_ref(), unix_now())
            .map(|item| item.data.value().to_vec())
    }

    /// Gives the table its memory limit and the request budget its cap (the larger of the
    /// memory limit and two of the largest values).
    fn apply_limits(&self) {
        let limit = mib(self.memory_limit_mb);
        self.table.set_limit(limit);
        self.live
            .budget
            .set_cap(limit.max(self.max_value_bytes.saturating_mul(2)));
    }

    /// Waits until writes may change the table (not while quiesced); hold the guard while
    /// changing it.
    async fn writing(&self) -> RwLockReadGuard<'_, ()> {
        self.live.gate.read().await
    }

    /// Brings the published gauges up to date.
    fn update_gauges(&self) {
        if let Some(published) = self.live.published.get() {
            published.items.set(self.table.count() as u64);
            published.bytes.set(self.table.used() as u64);
            published.evictions.set(self.table.evictions());
            published
                .connections
                .set(stats::load(&self.live.wire.curr_connections));
        }
    }

    /// Brings the item gauges up to date after a write.
    fn after_write(&self) {
        if let Some(published) = self.live.published.get() {
            published.items.set(self.table.count() as u64);
            published.bytes.set(self.table.used() as u64);
            published.evictions.set(self.table.evictions());
        }
    }
}

impl Default for Kv {
    /// An empty table with the default value limit of 1 MiB.
    fn default() -> Self {
        Kv::new(DEFAULT_MAX_VALUE_BYTES)
    }
}

impl fmt::Debug for Kv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kv")
            .field("max_value_bytes", &self.max_value_bytes)
            .field("memory_limit_mb", &self.memory_limit_mb)
            .field("max_connections", &self.max_connections)
            .field("items", &self.table.count())
            .finish_non_exhaustive()
    }
}

/// Counts a connection in the statistics for as long as it lives.
struct Connected<'a>(&'a Kv);

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        self.0
            .live
            .wire
            .curr_connections
            .fetch_sub(1, Ordering::Relaxed);
        self.0.update_gauges();
    }
}

/// What the session does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

impl Kv {
    /// Answers requests, in the binary protocol or the text one, until one ends the session;
    /// then sends what is left and closes the writing half.
    async fn session<R: text::Input + text::Pending>(
        &self,
        binary: bool,
        reader: &mut R,
        writer: &mut impl text::Output,
    ) -> io::Result<()> {
        let mut line = Vec::new();
        loop {
            let flow = if binary {
                self.binary_request(reader, writer).await?
            } else {
                self.text_request(&mut line, reader, writer).await?
            };
            if flow == Flow::Close {
                break;
            }
            text::flush_unless_pending(reader, writer).await?;
        }
        writer.flush().await?;
        writer.shutdown().await
    }
}

/// The first byte of a binary protocol request.
const BINARY_MAGIC: u8 = 0x80;

#[typetag::serde(name = Kv::TAG)]
#[async_trait]
impl ProtocolFactory for Kv {
    async fn serve(&self, connection: Connection) -> io::Result<()> {
        let (stream, shutdown) = connection.into_stream();
        self.apply_limits();
        let wire = &self.live.wire;
        let open = wire.curr_connections.fetch_add(1, Ordering::Relaxed);
        let _connected = Connected(self);
        stats::bump(&wire.total_connections, 1);
        self.update_gauges();
        let stream = crate::net::Counted::new(stream, &wire.bytes_read, &wire.bytes_written);
        let (reader, writer) = tokio::io::split(stream);
        let mut reader = BufReader::with_capacity(16 * 1024, reader);
        let mut writer = BufWriter::with_capacity(16 * 1024, writer);
        if usize::try_from(open).unwrap_or(usize::MAX) >= self.max_connections {
            stats::bump(&wire.rejected_connections, 1);
            return text::refuse(&mut writer).await;
        }
        tokio::select! {
            result = async {
                let first = reader.fill_buf().await?.first().copied();
                match first {
                    None => Ok(()),
                    Some(first) => {
                        let binary = first == BINARY_MAGIC;
                        self.session(binary, &mut reader, &mut writer).await
                    }
                }
            } => result,
            () = shutdown.cancelled() => Ok(()),
        }
    }

    fn publish(&self, counters: &Counters) {
        let published = self.live.published.get_or_init(|| Published {
            items: counters.counter("kv_items"),
            bytes: counters.counter("kv_bytes"),
            evictions: counters.counter("kv_evictions_total"),
            connections: counters.counter("kv_connections"),
        });
        let _ = published;
        self.update_gauges();
    }

    async fn quiesce(&self) -> Quiesced {
        let guard = Arc::clone(&self.live.gate).write_owned().await;
        *self
            .live
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(guard);
        Quiesced::Writes
    }

    async fn resume(&self) {
        self.live
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

// Version 2: keys and values are bytes, `bin` in binary snapshots (persist::upgrade_from_v1).
rtwisted_core::register_type!(factory Kv = "rtwisted.Kv", version 2);

/// Bumps the meta command count.
fn count_meta(kv: &Kv) {
    kv.live.wire.cmd_meta.fetch_add(1, Ordering::Relaxed);
}

/// How many worker threads may answer at once (for `stats threads`).
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
