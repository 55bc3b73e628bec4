//! The `kv` protocol: a key-value server speaking the memcached text protocol, whose data lives
//! inside the factory and so in every snapshot of the tree that serves it.
//!
//! Freeze a running `kv` server (or stop `rtwistd`, which saves `NAME-shutdown.tap`) and the
//! snapshot holds every live item with its flags, expiry and cas unique, plus the cas counter;
//! run the snapshot again and the clients find their data. Expiry is kept as absolute unix
//! time, so an item expires at the same moment whether or not the daemon was down meanwhile.
//!
//! Commands: `set`, `add`, `replace`, `append`, `prepend`, `cas`, `get`, `gets`, `delete`,
//! `incr`, `decr`, `touch`, `flush_all`, `version`, `stats`, `quit`, with memcached's replies.
//! Command lines end with `\r\n` (a bare `\n` is accepted) and may be up to 2048 bytes; data
//! blocks must end with `\r\n`.
//!
//! Keys and values are bytes, as in memcached: a key is 1 to 250 bytes without whitespace,
//! NUL or line endings, and need not be UTF-8; snapshots keep both compactly: MessagePack `bin` in binary snapshots, text or base64 in
//! readable ones.
//!
//! Where this server differs from memcached on purpose:
//! - `noreply` silences the normal replies, never the `CLIENT_ERROR` and `SERVER_ERROR` ones;
//! - a storage command refused for a bad line still has its data block read and thrown away
//!   when its length could be read, so the data is never taken for commands;
//! - nothing is ever evicted: there is a limit per value, not on the whole table.

mod command;
mod table;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter,
};

use super::ProtocolFactory;
use crate::net::Connection;
use command::{Command, ParseError, Storage};
use table::{Arith, StoreOutcome, Table, unix_now};

/// The default largest value a client may store: 1 MiB, memcached's default item size.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1024 * 1024;

/// The longest command line accepted, not counting its `\r\n`; a longer one closes the
/// connection after `CLIENT_ERROR line too long`.
pub const MAX_LINE_BYTES: usize = 2048;

/// How much of a data block is allocated before its bytes actually arrive.
const READ_AHEAD: usize = 64 * 1024;

/// A memcached (text protocol) key-value server whose table is part of the factory, and so is
/// saved in every snapshot. Every connection of the server shares the one table.
#[derive(Serialize, Deserialize)]
pub struct Kv {
    /// The largest value accepted, in bytes.
    #[serde(default = "default_max_value_bytes")]
    max_value_bytes: usize,
    /// The items and the cas counter, shared by every connection.
    #[serde(default)]
    table: Shared,
    /// For the `uptime` statistic.
    #[serde(skip, default = "Instant::now")]
    started: Instant,
}

fn default_max_value_bytes() -> usize {
    DEFAULT_MAX_VALUE_BYTES
}

impl Kv {
    /// An empty table that accepts values of up to `max_value_bytes` bytes.
    pub fn new(max_value_bytes: usize) -> Self {
        Kv {
            max_value_bytes,
            table: Shared::default(),
            started: Instant::now(),
        }
    }

    /// The largest value accepted, in bytes.
    pub fn max_value_bytes(&self) -> usize {
        self.max_value_bytes
    }

    /// How many items are stored (expired ones do not count).
    pub fn len(&self) -> usize {
        self.table.lock().len(unix_now())
    }

    /// Whether no item is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value stored under `key`, unless there is none or it expired.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        self.table.lock().peek(key.as_ref(), unix_now())
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
            .field("items", &self.len())
            .finish_non_exhaustive()
    }
}

/// The live table: serialized by locking it and writing what it holds at that moment.
#[derive(Default)]
struct Shared(Arc<Mutex<Table>>);

impl Shared {
    /// Locks the table; a panic elsewhere while it was held leaves it usable (every update
    /// leaves the table consistent before anything can panic).
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Serialize for Shared {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.lock().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Shared {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Table::deserialize(deserializer).map(|table| Shared(Arc::new(Mutex::new(table))))
    }
}

/// Counts a connection in the statistics for as long as it lives.
struct Connected<'a>(&'a Shared);

impl<'a> Connected<'a> {
    fn new(table: &'a Shared) -> Self {
        {
            let mut table = table.lock();
            table.stats.curr_connections = table.stats.curr_connections.saturating_add(1);
            table.stats.total_connections = table.stats.total_connections.saturating_add(1);
        }
        Connected(table)
    }
}

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        let mut table = self.0.lock();
        table.stats.curr_connections = table.stats.curr_connections.saturating_sub(1);
    }
}

/// What the session does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// The outcome of reading one command line.
enum Line {
    Complete,
    TooLong,
    Eof,
}

#[typetag::serde(name = Kv::TAG)]
#[async_trait]
impl ProtocolFactory for Kv {
    async fn serve(&self, connection: Connection) -> io::Result<()> {
        let Connection {
            stream, shutdown, ..
        } = connection;
        let (reader, writer) = tokio::io::split(stream);
        let mut reader = BufReader::new(reader);
        let mut writer = BufWriter::new(writer);
        let _connected = Connected::new(&self.table);
        tokio::select! {
            result = self.session(&mut reader, &mut writer) => result,
            () = shutdown.cancelled() => Ok(()),
        }
    }
}

// Version 2: keys and values are bytes, `bin` in binary snapshots (table::upgrade_from_v1).
rtwisted_core::register_type!(factory Kv = "rtwisted.Kv", version 2);

impl Kv {
    /// Answers commands until the peer closes, quits, or breaks the protocol beyond repair.
    async fn session<R, W>(&self, reader: &mut R, writer: &mut W) -> io::Result<()>
    where
        R: AsyncBufRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
    {
        let mut line = Vec::new();
        loop {
            match read_line(reader, &mut line).await? {
                Line::Complete => {}
                Line::Eof => break,
                Line::TooLong => {
                    writer.write_all(b"CLIENT_ERROR line too long\r\n").await?;
                    break;
                }
            }
            let flow = self.execute(&line, reader, writer).await?;
            writer.flush().await?;
            if flow == Flow::Close {
                break;
            }
        }
        writer.flush().await?;
        writer.shutdown().await
    }

    /// Runs one command line (reading its data block, for a storage command).
    async fn execute<R, W>(&self, line: &[u8], reader: &mut R, writer: &mut W) -> io::Result<Flow>
    where
        R: AsyncBufRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
    {
        let command = match command::parse(line) {
            Ok(command) => command,
            Err(ParseError::Unknown) => {
                writer.write_all(b"ERROR\r\n").await?;
                return Ok(Flow::Continue);
            }
            Err(ParseError::Client { reason, swallow }) => {
                client_error(writer, reason).await?;
                // Answer before swallowing, for a client that waits for it.
                writer.flush().await?;
                return match swallow {
                    Some(bytes) => discard(reader, bytes).await,
                    None => Ok(Flow::Continue),
                };
            }
        };
        let now = unix_now();
        match command {
            Command::Store(storage) => self.store(&storage, reader, writer).await,
            Command::Get { keys, with_cas } => self.get_many(&keys, with_cas, now, writer).await,
            Command::Delete { key, noreply } => {
                let deleted = self.table.lock().delete(&key, now);
                let text: &[u8] = if deleted {
                    b"DELETED\r\n"
                } else {
                    b"NOT_FOUND\r\n"
                };
                reply(writer, noreply, text).await
            }
            Command::Arith {
                key,
                delta,
                incr,
                noreply,
            } => {
                let outcome = self.table.lock().arith(&key, delta, incr, now);
                match outcome {
                    Arith::Value(value) => {
                        reply(writer, noreply, format!("{value}\r\n").as_bytes()).await
                    }
                    Arith::NotFound => reply(writer, noreply, b"NOT_FOUND\r\n").await,
                    Arith::NonNumeric => {
                        client_error(writer, "cannot increment or decrement non-numeric value")
                            .await?;
                        Ok(Flow::Continue)
                    }
                }
            }
            Command::Touch {
                key,
                exptime,
                noreply,
            } => {
                let touched = self.table.lock().touch(&key, exptime, now);
                let text: &[u8] = if touched {
                    b"TOUCHED\r\n"
                } else {
                    b"NOT_FOUND\r\n"
                };
                reply(writer, noreply, text).await
            }
            Command::FlushAll { delay, noreply } => {
                self.table.lock().flush(delay, now);
                reply(writer, noreply, b"OK\r\n").await
            }
            Command::Version => {
                let version = concat!("VERSION rtwisted-", env!("CARGO_PKG_VERSION"), "\r\n");
                reply(writer, false, version.as_bytes()).await
            }
            Command::Stats => {
                let stats = self.stats(now);
                reply(writer, false, stats.as_bytes()).await
            }
            Command::Quit => Ok(Flow::Close),
        }
    }

    /// A storage command: reads the data block, stores it, replies.
    async fn store<R, W>(
        &self,
        storage: &Storage,
        reader: &mut R,
        writer: &mut W,
    ) -> io::Result<Flow>
    where
        R: AsyncBufRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
    {
        if storage.bytes > self.max_value_bytes {
            writer
                .write_all(b"SERVER_ERROR object too large for cache\r\n")
                .await?;
            writer.flush().await?;
            return discard(reader, storage.bytes).await;
        }
        let mut value = Vec::with_capacity(storage.bytes.min(READ_AHEAD));
        let read = (&mut *reader)
            .take(storage.bytes as u64)
            .read_to_end(&mut value)
            .await?;
        if read < storage.bytes {
            return Ok(Flow::Close);
        }
        // The terminator: exactly "\r\n". Anything else is a bad chunk; the rest of that line is
        // skipped, so that the next command is read as one.
        let bad_chunk = match next_byte(reader).await? {
            None => return Ok(Flow::Close),
            Some(b'\r') => match next_byte(reader).await? {
                None => return Ok(Flow::Close),
                Some(b'\n') => None,
                Some(_) => Some(true),
            },
            Some(b'\n') => Some(false),
            Some(_) => Some(true),
        };
        if let Some(skip_line) = bad_chunk {
            client_error(writer, "bad data chunk").await?;
            if skip_line {
                let mut rest = Vec::new();
                if !matches!(read_line(reader, &mut rest).await?, Line::Complete) {
                    return Ok(Flow::Close);
                }
            }
            return Ok(Flow::Continue);
        }
        let stored = self
            .table
            .lock()
            .store(storage, value, self.max_value_bytes, unix_now());
        let text: &[u8] = match stored {
            StoreOutcome::Stored => b"STORED\r\n",
            StoreOutcome::NotStored => b"NOT_STORED\r\n",
            StoreOutcome::Exists => b"EXISTS\r\n",
            StoreOutcome::NotFound => b"NOT_FOUND\r\n",
            StoreOutcome::TooLarge => {
                writer
                    .write_all(b"SERVER_ERROR object too large for cache\r\n")
                    .await?;
                return Ok(Flow::Continue);
            }
        };
        reply(writer, storage.noreply, text).await
    }

    /// `get` and `gets`: one `VALUE` block per live key (copied out one at a time, so the table
    /// is never locked while writing), then `END`.
    async fn get_many<W>(
        &self,
        keys: &[Vec<u8>],
        with_cas: bool,
        now: i64,
        writer: &mut W,
    ) -> io::Result<Flow>
    where
        W: AsyncWrite + Unpin + Send,
    {
        for key in keys {
            let item = self.table.lock().get(key, now);
            let Some(item) = item else {
                continue;
            };
            let header = if with_cas {
                format!(" {} {} {}\r\n", item.flags, item.value.len(), item.cas)
            } else {
                format!(" {} {}\r\n", item.flags, item.value.len())
            };
            writer.write_all(b"VALUE ").await?;
            writer.write_all(key).await?;
            writer.write_all(header.as_bytes()).await?;
            writer.write_all(&item.value).await?;
            writer.write_all(b"\r\n").await?;
        }
        writer.write_all(b"END\r\n").await?;
        Ok(Flow::Continue)
    }

    /// The `stats` reply.
    fn stats(&self, now: i64) -> String {
        let (stats, items, bytes) = {
            let mut table = self.table.lock();
            table.purge(now);
            (table.stats.clone(), table.len(now), table.bytes(now))
        };
        let lines: [(&str, String); 27] = [
            ("pid", std::process::id().to_string()),
            ("uptime", self.started.elapsed().as_secs().to_string()),
            ("time", now.to_string()),
            ("version", format!("rtwisted-{}", env!("CARGO_PKG_VERSION"))),
            ("pointer_size", (usize::BITS).to_string()),
            ("curr_connections", stats.curr_connections.to_string()),
            ("total_connections", stats.total_connections.to_string()),
            ("cmd_get", stats.cmd_get.to_string()),
            ("cmd_set", stats.cmd_set.to_string()),
            ("cmd_touch", stats.cmd_touch.to_string()),
            ("get_hits", stats.get_hits.to_string()),
            ("get_misses", stats.get_misses.to_string()),
            ("delete_misses", stats.delete_misses.to_string()),
            ("delete_hits", stats.delete_hits.to_string()),
            ("incr_misses", stats.incr_misses.to_string()),
            ("incr_hits", stats.incr_hits.to_string()),
            ("decr_misses", stats.decr_misses.to_string()),
            ("decr_hits", stats.decr_hits.to_string()),
            ("cas_misses", stats.cas_misses.to_string()),
            ("cas_hits", stats.cas_hits.to_string()),
            ("cas_badval", stats.cas_badval.to_string()),
            ("touch_hits", stats.touch_hits.to_string()),
            ("touch_misses", stats.touch_misses.to_string()),
            ("item_size_max", self.max_value_bytes.to_string()),
            ("curr_items", items.to_string()),
            ("total_items", stats.total_items.to_string()),
            ("bytes", bytes.to_string()),
        ];
        let mut out = String::new();
        for (name, value) in lines {
            out.push_str(&format!("STAT {name} {value}\r\n"));
        }
        out.push_str("END\r\n");
        out
    }
}

/// Reads one command line into `line`, without its `\r\n` (or bare `\n`), reading at most
/// [`MAX_LINE_BYTES`] and the terminator.
async fn read_line<R>(reader: &mut R, line: &mut Vec<u8>) -> io::Result<Line>
where
    R: AsyncBufRead + Unpin + Send,
{
    line.clear();
    let limit = MAX_LINE_BYTES + 2;
    (&mut *reader)
        .take(limit as u64)
        .read_until(b'\n', line)
        .await?;
    if line.last() != Some(&b'\n') {
        // Either the limit cut the line, or the peer closed in the middle of one.
        return Ok(if line.len() >= limit {
            Line::TooLong
        } else {
            Line::Eof
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(if line.len() > MAX_LINE_BYTES {
        Line::TooLong
    } else {
        Line::Complete
    })
}

/// One byte, or `None` at the end of the stream.
async fn next_byte<R>(reader: &mut R) -> io::Result<Option<u8>>
where
    R: AsyncBufRead + Unpin + Send,
{
    match reader.read_u8().await {
        Ok(byte) => Ok(Some(byte)),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(error) => Err(error),
    }
}

/// Reads and throws away a data block of `bytes` bytes and its terminator, without storing it.
async fn discard<R>(reader: &mut R, bytes: usize) -> io::Result<Flow>
where
    R: AsyncBufRead + Unpin + Send,
{
    let wanted = (bytes as u64).saturating_add(2);
    let skipped =
        tokio::io::copy_buf(&mut (&mut *reader).take(wanted), &mut tokio::io::sink()).await?;
    Ok(if skipped < wanted {
        Flow::Close
    } else {
        Flow::Continue
    })
}

/// Writes a normal reply unless the client asked for none.
async fn reply<W>(writer: &mut W, noreply: bool, text: &[u8]) -> io::Result<Flow>
where
    W: AsyncWrite + Unpin + Send,
{
    if !noreply {
        writer.write_all(text).await?;
    }
    Ok(Flow::Continue)
}

/// Writes `CLIENT_ERROR <reason>` (sent even under `noreply`).
async fn client_error<W>(writer: &mut W, reason: &str) -> io::Result<()>
where
    W: AsyncWrite + Unpin + Send,
{
    writer
        .write_all(format!("CLIENT_ERROR {reason}\r\n").as_bytes())
        .await
}
