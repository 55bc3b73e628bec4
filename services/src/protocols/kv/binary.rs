//! memcached's binary protocol: 24-byte request headers (magic `0x80`), extras, key and value;
//! 24-byte response headers (magic `0x81`) with a status. A connection whose first byte is
//! `0x80` speaks it, as in memcached.
//!
//! Commands: get, getq, getk, getkq, set, add, replace, append, prepend (and their quiet
//! forms), delete(q), increment(q), decrement(q), quit(q), flush(q), noop, version, stat,
//! verbosity, touch, gat, gatq, gatk, gatkq. Quiet forms answer only failures (and, for the
//! gets, only hits). Unknown commands get status `0x81`; SASL is not offered.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::command::MAX_KEY_BYTES;
use super::table::{Arith, DeleteOutcome, Delta, Mode, StoreOutcome, Write, unix_now};
use super::text::{Input, Output};
use super::{Flow, Kv, VERSION};

/// The response magic byte.
const RESPONSE: u8 = 0x81;

/// Response statuses.
mod status {
    pub const OK: u16 = 0x0000;
    pub const NOT_FOUND: u16 = 0x0001;
    pub const EXISTS: u16 = 0x0002;
    pub const TOO_LARGE: u16 = 0x0003;
    pub const INVALID: u16 = 0x0004;
    pub const NOT_STORED: u16 = 0x0005;
    pub const NON_NUMERIC: u16 = 0x0006;
    pub const UNKNOWN: u16 = 0x0081;
    pub const NO_MEMORY: u16 = 0x0082;
}

/// The message memcached sends in the body of a failure.
fn message(status: u16) -> &'static [u8] {
    match status {
        status::NOT_FOUND => b"Not found",
        status::EXISTS => b"Data exists for key.",
        status::TOO_LARGE => b"Too large.",
        status::INVALID => b"Invalid arguments",
        status::NOT_STORED => b"Not stored.",
        status::NON_NUMERIC => b"Non-numeric server-side value for incr or decr",
        status::UNKNOWN => b"Unknown command",
        status::NO_MEMORY => b"Out of memory",
        _ => b"",
    }
}

/// A request header.
#[derive(Debug, Clone, Copy)]
struct Header {
    opcode: u8,
    key_len: usize,
    extras_len: usize,
    body_len: usize,
    opaque: u32,
    cas: u64,
}

impl Header {
    fn parse(bytes: &[u8; 24]) -> Header {
        Header {
            opcode: bytes[1],
            key_len: usize::from(u16::from_be_bytes([bytes[2], bytes[3]])),
            extras_len: usize::from(bytes[4]),
            body_len: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            opaque: u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]),
            cas: u64::from_be_bytes([
                bytes[16], bytes[17], bytes[18], bytes[19], bytes[20], bytes[21], bytes[22],
                bytes[23],
            ]),
        }
    }

    /// A success reply to this request, with no body.
    fn ok(&self, cas: u64) -> Response<'static> {
        Response {
            opcode: self.opcode,
            status: status::OK,
            opaque: self.opaque,
            cas,
            extras: &[],
            key: &[],
            value: &[],
        }
    }

    /// A failure reply to this request, with memcached's message for `status`.
    fn fail(&self, status: u16) -> Response<'static> {
        Response {
            value: message(status),
            status,
            ..self.ok(0)
        }
    }
}

/// One response packet.
struct Response<'a> {
    opcode: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: &'a [u8],
    key: &'a [u8],
    value: &'a [u8],
}

async fn send(writer: &mut impl Output, response: &Response<'_>) -> io::Result<()> {
    let body = response.extras.len() + response.key.len() + response.value.len();
    let mut header = [0u8; 24];
    header[0] = RESPONSE;
    header[1] = response.opcode;
    header[2..4].copy_from_slice(&(response.key.len() as u16).to_be_bytes());
    header[4] = response.extras.len() as u8;
    header[6..8].copy_from_slice(&response.status.to_be_bytes());
    header[8..12].copy_from_slice(&(body as u32).to_be_bytes());
    header[12..16].copy_from_slice(&response.opaque.to_be_bytes());
    header[16..24].copy_from_slice(&response.cas.to_be_bytes());
    writer.write_all(&header).await?;
    writer.write_all(response.extras).await?;
    writer.write_all(response.key).await?;
    writer.write_all(response.value).await
}

/// The opcodes, by name.
mod op {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const VERBOSITY: u8 = 0x1b;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

/// A request's parts after the header.
struct Body {
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let slice = bytes.get(at..at + 8)?;
    let mut array = [0u8; 8];
    array.copy_from_slice(slice);
    Some(u64::from_be_bytes(array))
}

impl Kv {
    /// Reads one binary request and answers it; `Close` when the peer closed, quit or sent a
    /// broken header.
    pub(super) async fn binary_request(
        &self,
        reader: &mut impl Input,
        writer: &mut impl Output,
    ) -> io::Result<Flow> {
        let mut raw = [0u8; 24];
        match reader.read_exact(&mut raw).await {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(Flow::Close),
            Err(error) => return Err(error),
        }
        if raw[0] != super::BINARY_MAGIC {
            return Ok(Flow::Close);
        }
        self.binary_body(&Header::parse(&raw), reader, writer).await
    }

    /// Reads the body of one request and answers it.
    async fn binary_body(
        &self,
        header: &Header,
        reader: &mut impl Input,
        writer: &mut impl Output,
    ) -> io::Result<Flow> {
        let framing = header.extras_len + header.key_len;
        if framing > header.body_len {
            send(writer, &header.fail(status::INVALID)).await?;
            return Ok(Flow::Close);
        }
        let value_len = header.body_len - framing;
        if value_len > self.max_value_bytes || header.key_len > MAX_KEY_BYTES {
            let status = if header.key_len > MAX_KEY_BYTES {
                status::INVALID
            } else {
                status::TOO_LARGE
            };
            // Skip the body without holding it.
            let body = header.body_len as u64;
            let skipped =
                tokio::io::copy_buf(&mut (&mut *reader).take(body), &mut tokio::io::sink()).await?;
            if skipped < body {
                return Ok(Flow::Close);
            }
            send(writer, &header.fail(status)).await?;
            return Ok(Flow::Continue);
        }
        let Some(_reserved) = self.live.budget.reserve(header.body_len) else {
            let body = header.body_len as u64;
            tokio::io::copy_buf(&mut (&mut *reader).take(body), &mut tokio::io::sink()).await?;
            send(writer, &header.fail(status::NO_MEMORY)).await?;
            return Ok(Flow::Continue);
        };
        let mut extras = vec![0u8; header.extras_len];
        let mut key = vec![0u8; header.key_len];
        let mut value = vec![0u8; value_len];
        for part in [&mut extras, &mut key, &mut value] {
            if let Err(error) = reader.read_exact(part).await {
                return if error.kind() == io::ErrorKind::UnexpectedEof {
                    Ok(Flow::Close)
                } else {
                    Err(error)
                };
            }
        }
        let body = Body { extras, key, value };
        self.binary_command(header, &body, writer).await
    }

    /// Runs one complete request.
    async fn binary_command(
        &self,
        header: &Header,
        body: &Body,
        writer: &mut impl Output,
    ) -> io::Result<Flow> {
        let now = unix_now();
        let opcode = header.opcode;
        let key = body.key.as_slice();
        let needs_key = !matches!(
            opcode,
            op::QUIT
                | op::QUITQ
                | op::FLUSH
                | op::FLUSHQ
                | op::NOOP
                | op::VERSION
                | op::STAT
                | op::VERBOSITY
        );
        if needs_key && key.is_empty() && opcode <= op::GATKQ {
            send(writer, &header.fail(status::INVALID)).await?;
            return Ok(Flow::Continue);
        }
        match opcode {
            op::GET
            | op::GETQ
            | op::GETK
            | op::GETKQ
            | op::GAT
            | op::GATQ
            | op::GATK
            | op::GATKQ
            | op::TOUCH => {
                let touching = matches!(
                    opcode,
                    op::GAT | op::GATQ | op::GATK | op::GATKQ | op::TOUCH
                );
                let touch = if touching {
                    match be_u32(&body.extras, 0) {
                        Some(exptime) => Some(i64::from(exptime)),
                        None => {
                            send(writer, &header.fail(status::INVALID)).await?;
                            return Ok(Flow::Continue);
                        }
                    }
                } else {
                    None
                };
                let quiet = matches!(opcode, op::GETQ | op::GETKQ | op::GATQ | op::GATKQ);
                let with_key = matches!(opcode, op::GETK | op::GETKQ | op::GATK | op::GATKQ);
                let item = if touching {
                    let _writing = self.writing().await;
                    self.table.get(key, touch, now)
                } else {
                    self.table.get(key, None, now)
                };
                match item {
                    Some(item) => {
                        let flags = item.meta.flags.to_be_bytes();
                        let value = if opcode == op::TOUCH {
                            &[][..]
                        } else {
                            item.data.value()
                        };
                        send(
                            writer,
                            &Response {
                                extras: &flags,
                                key: if with_key { key } else { &[] },
                                value,
                                ..header.ok(item.meta.cas)
                            },
                        )
                        .await?;
                    }
                    None if quiet => {}
                    None => {
                        let mut miss = header.fail(status::NOT_FOUND);
                        if with_key {
                            miss.key = key;
                        }
                        send(writer, &miss).await?;
                    }
                }
                Ok(Flow::Continue)
            }
            op::SET
            | op::SETQ
            | op::ADD
            | op::ADDQ
            | op::REPLACE
            | op::REPLACEQ
            | op::APPEND
            | op::APPENDQ
            | op::PREPEND
            | op::PREPENDQ => {
                let (mode, quiet) = match opcode {
                    op::SET => (Mode::Set, false),
                    op::SETQ => (Mode::Set, true),
                    op::ADD => (Mode::Add, false),
                    op::ADDQ => (Mode::Add, true),
                    op::REPLACE => (Mode::Replace, false),
                    op::REPLACEQ => (Mode::Replace, true),
                    op::APPEND => (Mode::Append, false),
                    op::APPENDQ => (Mode::Append, true),
                    op::PREPEND => (Mode::Prepend, false),
                    _ => (Mode::Prepend, true),
                };
                let concat = matches!(mode, Mode::Append | Mode::Prepend);
                let (flags, exptime) = if concat {
                    (0, 0)
                } else {
                    match (be_u32(&body.extras, 0), be_u32(&body.extras, 4)) {
                        (Some(flags), Some(exptime)) => (flags, i64::from(exptime)),
                        _ => {
                            send(writer, &header.fail(status::INVALID)).await?;
                            return Ok(Flow::Continue);
                        }
                    }
                };
                let write = Write {
                    mode,
                    key,
                    value: &body.value,
                    flags,
                    exptime,
                    compare: (header.cas != 0 && mode != Mode::Add).then_some(header.cas),
                };
                let stored = {
                    let _writing = self.writing().await;
                    self.table.store(&write, self.max_value_bytes, now)
                };
                self.after_write();
                let status = match stored {
                    StoreOutcome::Stored(cas) => {
                        if !quiet {
                            send(writer, &header.ok(cas)).await?;
                        }
                        return Ok(Flow::Continue);
                    }
                    StoreOutcome::NotStored => match mode {
                        Mode::Add => status::EXISTS,
                        Mode::Replace => status::NOT_FOUND,
                        _ => status::NOT_STORED,
                    },
                    StoreOutcome::Exists => status::EXISTS,
                    StoreOutcome::NotFound => status::NOT_FOUND,
                    StoreOutcome::TooLarge => status::TOO_LARGE,
                    StoreOutcome::OutOfMemory => status::NO_MEMORY,
                };
                send(writer, &header.fail(status)).await?;
                Ok(Flow::Continue)
            }
            op::DELETE | op::DELETEQ => {
                let compare = (header.cas != 0).then_some(header.cas);
                let outcome = {
                    let _writing = self.writing().await;
                    self.table.delete(key, compare, now)
                };
                self.after_write();
                match outcome {
                    DeleteOutcome::Deleted if opcode == op::DELETEQ => {}
                    DeleteOutcome::Deleted => send(writer, &header.ok(0)).await?,
                    DeleteOutcome::NotFound => {
                        send(writer, &header.fail(status::NOT_FOUND)).await?
                    }
                    DeleteOutcome::Exists => send(writer, &header.fail(status::EXISTS)).await?,
                }
                Ok(Flow::Continue)
            }
            op::INCREMENT | op::INCREMENTQ | op::DECREMENT | op::DECREMENTQ => {
                let (Some(delta), Some(initial), Some(exptime)) = (
                    be_u64(&body.extras, 0),
                    be_u64(&body.extras, 8),
                    be_u32(&body.extras, 16),
                ) else {
                    send(writer, &header.fail(status::INVALID)).await?;
                    return Ok(Flow::Continue);
                };
                let delta = Delta {
                    delta,
                    incr: matches!(opcode, op::INCREMENT | op::INCREMENTQ),
                    compare: (header.cas != 0).then_some(header.cas),
                    initial: (exptime != u32::MAX).then_some((initial, i64::from(exptime))),
                };
                let outcome = {
                    let _writing = self.writing().await;
                    self.table.arith(key, &delta, now)
                };
                self.after_write();
                match outcome {
                    Arith::Value(value, cas) => {
                        if matches!(opcode, op::INCREMENT | op::DECREMENT) {
                            let bytes = value.to_be_bytes();
                            send(
                                writer,
                                &Response {
                                    value: &bytes,
                                    ..header.ok(cas)
                                },
                            )
                            .await?;
                        }
                    }
                    Arith::NotFound => send(writer, &header.fail(status::NOT_FOUND)).await?,
                    Arith::Exists => send(writer, &header.fail(status::EXISTS)).await?,
                    Arith::NonNumeric => send(writer, &header.fail(status::NON_NUMERIC)).await?,
                }
                Ok(Flow::Continue)
            }
            op::QUIT => {
                send(writer, &header.ok(0)).await?;
                Ok(Flow::Close)
            }
            op::QUITQ => Ok(Flow::Close),
            op::FLUSH | op::FLUSHQ => {
                let delay = be_u32(&body.extras, 0).map_or(0, i64::from);
                {
                    let _writing = self.writing().await;
                    self.table.flush(delay, now);
                }
                self.after_write();
                if opcode == op::FLUSH {
                    send(writer, &header.ok(0)).await?;
                }
                Ok(Flow::Continue)
            }
            op::NOOP | op::VERBOSITY => {
                send(writer, &header.ok(0)).await?;
                Ok(Flow::Continue)
            }
            op::VERSION => {
                send(
                    writer,
                    &Response {
                        value: VERSION.as_bytes(),
                        ..header.ok(0)
                    },
                )
                .await?;
                Ok(Flow::Continue)
            }
            op::STAT => {
                let group = (!key.is_empty()).then_some(key);
                match self.stats_lines(group, now) {
                    Some(lines) => {
                        for (name, value) in &lines {
                            send(
                                writer,
                                &Response {
                                    key: name.as_bytes(),
                                    value: value.as_bytes(),
                                    ..header.ok(0)
                                },
                            )
                            .await?;
                        }
                        send(writer, &header.ok(0)).await?;
                    }
                    None => send(writer, &header.fail(status::NOT_FOUND)).await?,
                }
                Ok(Flow::Continue)
            }
            _ => {
                send(writer, &header.fail(status::UNKNOWN)).await?;
                Ok(Flow::Continue)
            }
        }
    }
}
