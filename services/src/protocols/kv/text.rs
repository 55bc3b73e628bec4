//! The memcached text protocol session: reads command lines (and data blocks), runs them on
//! the table, writes memcached's replies.
//!
//! Command lines end with `\r\n` (a bare `\n` is accepted). A line may be up to
//! [`MAX_LINE_BYTES`]; a retrieval line (`get`, `gets`, `gat`, `gats`) may go on to
//! [`MAX_GET_LINE_BYTES`], as memcached accepts multi-gets of any number of keys. Replies are
//! flushed when no more pipelined requests are waiting.

use std::io;
use std::sync::atomic::Ordering;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};

use super::command::{self, Command, ParseError, Storage, StoreMode};
use super::stats;
use super::table::{Arith, DeleteOutcome, Delta, Mode, StoreOutcome, Write, unix_now};
use super::{Flow, Kv, VERSION, budget};

/// The longest command line accepted, not counting its `\r\n` (memcached's 2048); a longer
/// one closes the connection after `CLIENT_ERROR line too long`.
pub const MAX_LINE_BYTES: usize = 2048;

/// The longest retrieval line accepted: 4 MiB, some 16,000 keys of 250 bytes.
pub const MAX_GET_LINE_BYTES: usize = 4 * 1024 * 1024;

/// How much of a data block is allocated before its bytes actually arrive.
const READ_AHEAD: usize = 64 * 1024;

/// How much a long line reserves from the budget at a time.
const LINE_STEP: usize = 64 * 1024;

/// What the protocols read requests from: a buffered reader that can move between tasks.
pub(super) trait Input: AsyncBufRead + Unpin + Send {}

impl<T: AsyncBufRead + Unpin + Send + ?Sized> Input for T {}

/// What the protocols write replies to.
pub(super) trait Output: AsyncWrite + Unpin + Send {}

impl<T: AsyncWrite + Unpin + Send + ?Sized> Output for T {}

/// A reader that can tell whether requests are already waiting in its buffer (so replies can
/// wait for them and go out together).
pub(super) trait Pending {
    /// Whether bytes are buffered, unread.
    fn has_pending(&self) -> bool;
}

impl<T: AsyncRead> Pending for tokio::io::BufReader<T> {
    fn has_pending(&self) -> bool {
        !self.buffer().is_empty()
    }
}

/// Turns a connection away as memcached does when it has too many.
pub(super) async fn refuse(writer: &mut impl Output) -> io::Result<()> {
    writer
        .write_all(b"SERVER_ERROR too many open connections\r\n")
        .await?;
    writer.flush().await?;
    writer.shutdown().await
}

/// The outcome of reading one command line.
pub(super) enum Line {
    Complete,
    TooLong,
    /// A long line that the request budget has no room for.
    OutOfMemory,
    Eof,
}

/// Whether a line that is already long may go on: a retrieval command (after spaces).
fn may_be_long(line: &[u8]) -> bool {
    let start = line.iter().position(|&byte| byte != b' ').unwrap_or(0);
    let rest = &line[start..];
    start <= 100
        && [&b"get "[..], b"gets ", b"gat ", b"gats "]
            .iter()
            .any(|prefix| rest.starts_with(prefix))
}

/// Reads one command line into `line`, without its `\r\n` (or bare `\n`).
pub(super) async fn read_line(
    kv: &Kv,
    reader: &mut impl Input,
    line: &mut Vec<u8>,
) -> io::Result<Line> {
    line.clear();
    let mut reserved = None;
    let mut held = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Eof);
        }
        if let Some(end) = available.iter().position(|&byte| byte == b'\n') {
            line.extend_from_slice(&available[..end]);
            reader.consume(end + 1);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let limit = if may_be_long(line) {
                MAX_GET_LINE_BYTES
            } else {
                MAX_LINE_BYTES
            };
            return Ok(if line.len() > limit {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
        let taken = available.len();
        line.extend_from_slice(available);
        reader.consume(taken);
        if line.len() > MAX_LINE_BYTES {
            if !may_be_long(line) || line.len() > MAX_GET_LINE_BYTES {
                return Ok(Line::TooLong);
            }
            // A long multi-get: hold its bytes under the budget, a step at a time.
            while line.len() > held {
                let more = match &mut reserved {
                    None => {
                        reserved = kv.live.budget.reserve(LINE_STEP);
                        reserved.is_some()
                    }
                    Some(reservation) => reservation.grow(LINE_STEP),
                };
                if !more {
                    return Ok(Line::OutOfMemory);
                }
                held += LINE_STEP;
            }
        }
    }
}

/// One byte, or `None` at the end of the stream.
async fn next_byte(reader: &mut impl Input) -> io::Result<Option<u8>> {
    match reader.read_u8().await {
        Ok(byte) => Ok(Some(byte)),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(error) => Err(error),
    }
}

/// Reads and throws away a data block of `bytes` bytes and its terminator, without storing it.
pub(super) async fn discard(reader: &mut impl Input, bytes: usize) -> io::Result<Flow> {
    let wanted = (bytes as u64).saturating_add(2);
    let skipped =
        tokio::io::copy_buf(&mut (&mut *reader).take(wanted), &mut tokio::io::sink()).await?;
    Ok(if skipped < wanted {
        Flow::Close
    } else {
        Flow::Continue
    })
}

/// How a data block ended.
pub(super) enum Block {
    /// Read, with its `\r\n`.
    Data(Vec<u8>),
    /// Not ended by `\r\n`: `CLIENT_ERROR bad data chunk` was sent and the rest of the line
    /// skipped.
    Bad,
    /// The peer went away.
    Closed,
}

/// Reads a data block of `bytes` bytes and its `\r\n`.
pub(super) async fn read_block(
    reader: &mut impl Input,
    writer: &mut impl Output,
    bytes: usize,
) -> io::Result<Block> {
    let mut value = Vec::with_capacity(bytes.min(READ_AHEAD));
    let read = (&mut *reader)
        .take(bytes as u64)
        .read_to_end(&mut value)
        .await?;
    if read < bytes {
        return Ok(Block::Closed);
    }
    // The terminator: exactly "\r\n". Anything else is a bad chunk; the rest of that line is
    // skipped, so that the next command is read as one.
    let skip_line = match next_byte(reader).await? {
        None => return Ok(Block::Closed),
        Some(b'\r') => match next_byte(reader).await? {
            None => return Ok(Block::Closed),
            Some(b'\n') => return Ok(Block::Data(value)),
            Some(_) => true,
        },
        Some(b'\n') => false,
        Some(_) => true,
    };
    client_error(writer, "bad data chunk").await?;
    if skip_line {
        let mut rest = Vec::new();
        (&mut *reader)
            .take(super::text::MAX_LINE_BYTES as u64 + 2)
            .read_until(b'\n', &mut rest)
            .await?;
        if rest.last() != Some(&b'\n') {
            return Ok(Block::Closed);
        }
    }
    Ok(Block::Bad)
}

/// Writes a normal reply unless the client asked for none.
pub(super) async fn reply(
    writer: &mut impl Output,
    noreply: bool,
    text: &[u8],
) -> io::Result<Flow> {
    if !noreply {
        writer.write_all(text).await?;
    }
    Ok(Flow::Continue)
}

/// Writes `CLIENT_ERROR <reason>` (sent even under `noreply`, as memcached does).
pub(super) async fn client_error(writer: &mut impl Output, reason: &str) -> io::Result<()> {
    writer
        .write_all(format!("CLIENT_ERROR {reason}\r\n").as_bytes())
        .await
}

/// Sends the replies written so far, unless more pipelined requests are already buffered:
/// their replies then go out together.
pub(super) async fn flush_unless_pending(
    reader: &mut impl Pending,
    writer: &mut impl Output,
) -> io::Result<()> {
    if reader.has_pending() {
        return Ok(());
    }
    writer.flush().await
}

/// Answers `line` to a storage command refused before its data block was read, then reads
/// the block and throws it away.
pub(super) async fn refuse_block(
    reader: &mut impl Input,
    writer: &mut impl Output,
    bytes: usize,
    line: &[u8],
) -> io::Result<Flow> {
    writer.write_all(line).await?;
    writer.flush().await?;
    discard(reader, bytes).await
}

impl Kv {
    /// Takes room in the request budget for a data block of `bytes`; or, when the block is
    /// larger than a value may be or the budget has no room, the `SERVER_ERROR` line to
    /// answer.
    pub(super) fn admit(&self, bytes: usize) -> Result<budget::Reserved<'_>, &'static [u8]> {
        if bytes > self.max_value_bytes {
            return Err(b"SERVER_ERROR object too large for cache\r\n");
        }
        self.live
            .budget
            .reserve(bytes)
            .ok_or(b"SERVER_ERROR out of memory storing object\r\n")
    }

    /// Reads one text command line and runs it; `Close` when the peer closed, or sent a line
    /// too long or one the request budget has no room for (the last two are answered).
    pub(super) async fn text_request(
        &self,
        line: &mut Vec<u8>,
        reader: &mut impl Input,
        writer: &mut impl Output,
    ) -> io::Result<Flow> {
        match read_line(self, reader, line).await? {
            Line::Complete => self.execute(line, reader, writer).await,
            Line::Eof => Ok(Flow::Close),
            Line::TooLong => {
                writer.write_all(b"CLIENT_ERROR line too long\r\n").await?;
                Ok(Flow::Close)
            }
            Line::OutOfMemory => {
                writer
                    .write_all(b"SERVER_ERROR out of memory reading request\r\n")
                    .await?;
                Ok(Flow::Close)
            }
        }
    }

    /// Runs one command line (reading its data block, for a storage command).
    async fn execute(
        &self,
        line: &[u8],
        reader: &mut impl Input,
        writer: &mut impl Output,
    ) -> io::Result<Flow> {
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
            Command::Get {
                keys,
                with_cas,
                touch,
            } => {
                if touch.is_some() {
                    let _writing = self.writing().await;
                    self.get_many(&keys, with_cas, touch, now, writer).await
                } else {
                    self.get_many(&keys, with_cas, None, now, writer).await
                }
            }
            Command::Delete { key, noreply } => {
                let deleted = {
                    let _writing = self.writing().await;
                    self.table.delete(&key, None, now)
                };
                self.after_write();
                let text: &[u8] = match deleted {
                    DeleteOutcome::Deleted => b"DELETED\r\n",
                    _ => b"NOT_FOUND\r\n",
                };
                reply(writer, noreply, text).await
            }
            Command::Arith {
                key,
                delta,
                incr,
                noreply,
            } => {
                let delta = Delta {
                    delta,
                    incr,
                    compare: None,
                    initial: None,
                };
                let outcome = {
                    let _writing = self.writing().await;
                    self.table.arith(&key, &delta, now)
                };
                match outcome {
                    Arith::Value(value, _) => {
                        reply(writer, noreply, format!("{value}\r\n").as_bytes()).await
                    }
                    Arith::NotFound | Arith::Exists => {
                        reply(writer, noreply, b"NOT_FOUND\r\n").await
                    }
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
                let touched = {
                    let _writing = self.writing().await;
                    self.table.touch(&key, exptime, now)
                };
                let text: &[u8] = if touched {
                    b"TOUCHED\r\n"
                } else {
                    b"NOT_FOUND\r\n"
                };
                reply(writer, noreply, text).await
            }
            Command::FlushAll { delay, noreply } => {
                {
                    let _writing = self.writing().await;
                    self.table.flush(delay, now);
                }
                self.after_write();
                reply(writer, noreply, b"OK\r\n").await
            }
            Command::Version => {
                let version = format!("VERSION {VERSION}\r\n");
                reply(writer, false, version.as_bytes()).await
            }
            Command::Verbosity { noreply } => reply(writer, noreply, b"OK\r\n").await,
            Command::Stats(Some(group)) if group == b"detail" => {
                client_error(writer, "usage: stats detail on|off|dump").await?;
                Ok(Flow::Continue)
            }
            Command::Stats(group) => {
                let text = match self.stats_reply(group.as_deref(), now) {
                    Some(text) => text,
                    None => "ERROR\r\n".to_string(),
                };
                reply(writer, false, text.as_bytes()).await
            }
            Command::Meta(request) => self.meta(request, now, reader, writer).await,
            Command::Quit => Ok(Flow::Close),
        }
    }

    /// A storage command: reads the data block, stores it, replies.
    async fn store(
        &self,
        storage: &Storage,
        reader: &mut impl Input,
        writer: &mut impl Output,
    ) -> io::Result<Flow> {
        let _reserved = match self.admit(storage.bytes) {
            Ok(reserved) => reserved,
            Err(line) => return refuse_block(reader, writer, storage.bytes, line).await,
        };
        let value = match read_block(reader, writer, storage.bytes).await? {
            Block::Data(value) => value,
            Block::Bad => return Ok(Flow::Continue),
            Block::Closed => return Ok(Flow::Close),
        };
        let (mode, compare) = match storage.mode {
            StoreMode::Set => (Mode::Set, None),
            StoreMode::Add => (Mode::Add, None),
            StoreMode::Replace => (Mode::Replace, None),
            StoreMode::Append => (Mode::Append, None),
            StoreMode::Prepend => (Mode::Prepend, None),
            StoreMode::Cas(unique) => (Mode::Set, Some(unique)),
        };
        let write = Write {
            mode,
            key: &storage.key,
            value: &value,
            flags: storage.flags,
            exptime: storage.exptime,
            compare,
        };
        let stored = {
            let _writing = self.writing().await;
            self.table.store(&write, self.max_value_bytes, unix_now())
        };
        self.after_write();
        let text: &[u8] = match stored {
            StoreOutcome::Stored(_) => b"STORED\r\n",
            StoreOutcome::NotStored => b"NOT_STORED\r\n",
            StoreOutcome::Exists => b"EXISTS\r\n",
            StoreOutcome::NotFound => b"NOT_FOUND\r\n",
            StoreOutcome::TooLarge => b"SERVER_ERROR object too large for cache\r\n",
            StoreOutcome::OutOfMemory => b"SERVER_ERROR out of memory storing object\r\n",
        };
        let failed = matches!(stored, StoreOutcome::TooLarge | StoreOutcome::OutOfMemory);
        reply(writer, storage.noreply && !failed, text).await
    }

    /// `get`, `gets`, `gat`, `gats`: one `VALUE` block per live key (each found under its
    /// shard's lock, written with no lock held), then `END`.
    async fn get_many(
        &self,
        keys: &[Vec<u8>],
        with_cas: bool,
        touch: Option<i64>,
        now: i64,
        writer: &mut impl Output,
    ) -> io::Result<Flow> {
        let mut header = String::with_capacity(64);
        for key in keys {
            let Some(item) = self.table.get(key, touch, now) else {
                continue;
            };
            header.clear();
            let value = item.data.value();
            if with_cas {
                header.push_str(&format!(
                    " {} {} {}\r\n",
                    item.meta.flags,
                    value.len(),
                    item.meta.cas
                ));
            } else {
                header.push_str(&format!(" {} {}\r\n", item.meta.flags, value.len()));
            }
            writer.write_all(b"VALUE ").await?;
            writer.write_all(key).await?;
            writer.write_all(header.as_bytes()).await?;
            writer.write_all(value).await?;
            writer.write_all(b"\r\n").await?;
        }
        writer.write_all(b"END\r\n").await?;
        Ok(Flow::Continue)
    }

    /// The reply to `stats [group]`, or `None` for a group memcached does not have.
    fn stats_reply(&self, group: Option<&[u8]>, now: i64) -> Option<String> {
        let lines = self.stats_lines(group, now)?;
        Some(if group == Some(b"reset") {
            "RESET\r\n".into()
        } else {
            stats::render(&lines)
        })
    }

    /// The lines of `stats [group]` (none for `reset`, which zeroes the counters), or `None`
    /// for a group memcached does not have.
    pub(super) fn stats_lines(&self, group: Option<&[u8]>, now: i64) -> Option<stats::Lines> {
        let lines = match group {
            None => {
                let counts = self.table.counts();
                stats::general(&stats::General {
                    counts: &counts,
                    wire: &self.live.wire,
                    now,
                    curr_items: self.table.count(),
                    bytes: self.table.used(),
                    limit_maxbytes: self.table.limit(),
                    max_connections: self.max_connections,
                    threads: super::threads(),
                    evictions: self.table.evictions(),
                    item_size_max: self.max_value_bytes,
                })
            }
            Some(b"settings") => self.settings(),
            Some(b"items") => {
                let count = self.table.count();
                if count == 0 {
                    Vec::new()
                } else {
                    vec![
                        ("items:1:number", count.to_string()),
                        ("items:1:evicted", self.table.evictions().to_string()),
                        ("items:1:outofmemory", "0".into()),
                    ]
                }
            }
            Some(b"slabs") => {
                let count = self.table.count();
                let mut lines = Vec::new();
                if count > 0 {
                    lines.push(("1:used_chunks", count.to_string()));
                }
                lines.push(("active_slabs", usize::from(count > 0).to_string()));
                lines.push(("total_malloced", self.table.used().to_string()));
                lines
            }
            Some(b"sizes") => Vec::new(),
            Some(b"conns") => Vec::new(),
            Some(b"reset") => {
                self.table.reset_counts();
                let wire = &self.live.wire;
                for counter in [
                    &wire.total_connections,
                    &wire.rejected_connections,
                    &wire.bytes_read,
                    &wire.bytes_written,
                    &wire.cmd_meta,
                ] {
                    counter.store(0, Ordering::Relaxed);
                }
                Vec::new()
            }
            Some(_) => return None,
        };
        Some(lines)
    }

    /// `stats settings`: the limits this server runs with, in memcached's names.
    fn settings(&self) -> stats::Lines {
        vec![
            ("maxbytes", self.table.limit().to_string()),
            ("maxconns", self.max_connections.to_string()),
            ("tcpport", "0".into()),
            (
                "verbosity",
                stats::load(&self.live.wire.verbosity).to_string(),
            ),
            ("evictions", "on".into()),
            ("growth_factor", "1.25".into()),
            ("chunk_size", "48".into()),
            ("num_threads", super::threads().to_string()),
            ("cas_enabled", "yes".into()),
            ("tcp_backlog", "1024".into()),
            ("binding_protocol", "auto-negotiate".into()),
            ("item_size_max", self.max_value_bytes.to_string()),
            ("flush_enabled", "yes".into()),
            ("lru_crawler", "no".into()),
            ("maxconns_fast", "yes".into()),
        ]
    }
}
