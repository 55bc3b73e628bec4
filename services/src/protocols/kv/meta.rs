//! The meta commands of memcached's text protocol: `mg` (get), `ms` (set), `md` (delete),
//! `ma` (arithmetic), `mn` (no-op) and `me` (debug), with their flags.
//!
//! Flags understood: `b` (base64 key), `c` `f` `h` `k` `l` `O` `s` `t` `v` (returned in the
//! order asked), `q` (noreply semantics), `T` (TTL), `u` (no LRU bump), and for `ms` `C` `F`
//! `I` `M` `N`, for `md` `C`, for `ma` `C` `D` `J` `M` `N`. `P` and `L` are ignored, as
//! memcached ignores them; so are `E`, `R` and the stale-while-revalidate flags, which this
//! server does not implement.

use std::io;

use base64::Engine;
use tokio::io::AsyncWriteExt;

use super::command::{BAD_FORMAT, MAX_KEY_BYTES, ParseError, signed, unsigned};
use super::table::{Arith, DeleteOutcome, Delta, Item, Mode, StoreOutcome, Write};
use super::text::{Block, Input, Output, client_error, discard, read_block, refuse_block};
use super::{Flow, Kv};

/// Which meta command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Get,
    Set,
    Delete,
    Arith,
    Noop,
    Debug,
}

/// One flag: its letter and the token after it (often empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Flag {
    pub letter: u8,
    pub token: Vec<u8>,
}

/// A parsed meta command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Request {
    pub kind: Kind,
    /// The key, decoded when the `b` flag is given.
    pub key: Vec<u8>,
    /// The key as the client wrote it (returned by `k`).
    pub key_token: Vec<u8>,
    /// `ms`: the data length.
    pub datalen: usize,
    pub flags: Vec<Flag>,
}

impl Request {
    fn has(&self, letter: u8) -> bool {
        self.flags.iter().any(|flag| flag.letter == letter)
    }

    /// `q`: leave out the replies that only say all went well.
    fn quiet(&self) -> bool {
        self.has(b'q')
    }

    fn token(&self, letter: u8) -> Option<&[u8]> {
        self.flags
            .iter()
            .find(|flag| flag.letter == letter)
            .map(|flag| flag.token.as_slice())
    }

    /// A numeric flag token; `Err` when given but not a number.
    fn number(&self, letter: u8) -> Result<Option<u64>, ()> {
        match self.token(letter) {
            None => Ok(None),
            Some(token) => unsigned(token).map(Some).ok_or(()),
        }
    }

    /// The mode the `M` flag names among `modes` (a letter, in either case), `default`
    /// without one; `None` for a mode not in `modes`.
    fn mode<T: Copy>(&self, default: T, modes: &[(u8, T)]) -> Option<T> {
        match self.token(b'M') {
            None => Some(default),
            Some(&[letter]) => modes
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(&letter))
                .map(|&(_, mode)| mode),
            Some(_) => None,
        }
    }

    /// The client flags (`F`), 0 when not given; `Err` when not a 32-bit number.
    fn flags32(&self) -> Result<u32, ()> {
        self.number(b'F')?
            .map_or(Ok(0), |flags| u32::try_from(flags).map_err(|_| ()))
    }

    /// The flags `ms` and `ma` share; `Err` when one is given but not a number.
    fn common(&self) -> Result<Common, ()> {
        Ok(Common {
            ttl: self.ttl(b'T')?,
            compare: self.number(b'C')?,
            vivify: self.ttl(b'N')?,
        })
    }

    /// A signed numeric flag token (a TTL); `Err` when given but not a number.
    fn ttl(&self, letter: u8) -> Result<Option<i64>, ()> {
        match self.token(letter) {
            None => Ok(None),
            Some(token) => signed(token).map(Some).ok_or(()),
        }
    }
}

/// The flags `ms` and `ma` share.
struct Common {
    /// `T`: a new TTL for the item.
    ttl: Option<i64>,
    /// `C`: the cas unique the item must have.
    compare: Option<u64>,
    /// `N`: create a missing item, with this TTL.
    vivify: Option<i64>,
}

/// The modes (`M`) of `ms`, by letter; either case names one.
const SET_MODES: [(u8, Mode); 5] = [
    (b'S', Mode::Set),
    (b'E', Mode::Add),
    (b'A', Mode::Append),
    (b'P', Mode::Prepend),
    (b'R', Mode::Replace),
];

/// The modes (`M`) of `ma`, by letter: whether it increments.
const ARITH_MODES: [(u8, bool); 4] = [(b'I', true), (b'+', true), (b'D', false), (b'-', false)];

fn bad() -> ParseError {
    ParseError::Client {
        reason: BAD_FORMAT,
        swallow: None,
    }
}

/// Parses the arguments of the meta command `name`.
pub(super) fn parse(name: &[u8], args: &[&[u8]]) -> Result<Request, ParseError> {
    let kind = match name {
        b"mg" => Kind::Get,
        b"ms" => Kind::Set,
        b"md" => Kind::Delete,
        b"ma" => Kind::Arith,
        b"mn" => Kind::Noop,
        _ => Kind::Debug,
    };
    if kind == Kind::Noop {
        return Ok(Request {
            kind,
            key: Vec::new(),
            key_token: Vec::new(),
            datalen: 0,
            flags: Vec::new(),
        });
    }
    let Some((&key_token, rest)) = args.split_first() else {
        return Err(if kind == Kind::Get {
            ParseError::Unknown
        } else {
            bad()
        });
    };
    let (datalen, rest) = if kind == Kind::Set {
        let Some((&length, rest)) = rest.split_first() else {
            return Err(bad());
        };
        let length = unsigned(length)
            .and_then(|length| usize::try_from(length).ok())
            .filter(|&length| length <= i32::MAX as usize - 2)
            .ok_or_else(bad)?;
        (length, rest)
    } else {
        (0, rest)
    };
    let fail = || ParseError::Client {
        reason: BAD_FORMAT,
        swallow: (kind == Kind::Set).then_some(datalen),
    };
    let mut flags = Vec::with_capacity(rest.len());
    for token in rest {
        let Some((&letter, value)) = token.split_first() else {
            continue;
        };
        if !known(kind).contains(&letter) {
            return Err(ParseError::Client {
                reason: "invalid flag",
                swallow: (kind == Kind::Set).then_some(datalen),
            });
        }
        flags.push(Flag {
            letter,
            token: value.to_vec(),
        });
    }
    let base64 = flags.iter().any(|flag| flag.letter == b'b');
    let key = if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(key_token)
            .map_err(|_| fail())?
    } else {
        key_token.to_vec()
    };
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(fail());
    }
    Ok(Request {
        kind,
        key,
        key_token: key_token.to_vec(),
        datalen,
        flags,
    })
}

/// The flags each command takes (others are `CLIENT_ERROR invalid flag`, as in memcached).
fn known(kind: Kind) -> &'static [u8] {
    match kind {
        Kind::Get => b"bcfhklOqstuvENRTPL",
        Kind::Set => b"bcCEFIkOqsSTMNPL",
        Kind::Delete => b"bCEIkOqTxPL",
        Kind::Arith => b"bCENJDTMOqtcvkPL",
        Kind::Noop | Kind::Debug => b"bPL",
    }
}

/// The return flags asked for by `request`, for `item` (when there is one), in request order.
fn return_flags(request: &Request, item: Option<&Item>, now: i64) -> String {
    let mut out = String::new();
    for flag in &request.flags {
        match (flag.letter, item) {
            (b'O', _) => {
                out.push_str(" O");
                out.push_str(&String::from_utf8_lossy(&flag.token));
            }
            (b'k', _) => {
                out.push_str(" k");
                out.push_str(&String::from_utf8_lossy(&request.key_token));
                if request.has(b'b') {
                    out.push_str(" b");
                }
            }
            (b'c', Some(item)) => out.push_str(&format!(" c{}", item.meta.cas)),
            (b'f', Some(item)) => out.push_str(&format!(" f{}", item.meta.flags)),
            (b's', Some(item)) => out.push_str(&format!(" s{}", item.data.value().len())),
            (b't', Some(item)) => {
                let ttl = if item.meta.expires_at() == 0 {
                    -1
                } else {
                    (item.meta.expires_at() - now).max(0)
                };
                out.push_str(&format!(" t{ttl}"));
            }
            (b'h', Some(_)) => out.push_str(" h0"),
            (b'l', Some(_)) => out.push_str(" l0"),
            _ => {}
        }
    }
    out
}

impl Kv {
    /// Runs one meta command.
    pub(super) async fn meta(
        &self,
        request: Request,
        now: i64,
        reader: &mut impl Input,
        writer: &mut impl Output,
    ) -> io::Result<Flow> {
        super::count_meta(self);
        match request.kind {
            Kind::Noop => {
                writer.write_all(b"MN\r\n").await?;
                writer.flush().await?;
                Ok(Flow::Continue)
            }
            Kind::Debug => {
                let line = match self.table.peek(&request.key, now) {
                    Some(item) => {
                        let exp = if item.meta.expires_at() == 0 {
                            -1
                        } else {
                            item.meta.expires_at() - now
                        };
                        format!(
                            "ME {} exp={exp} la=0 cas={} fetch=no cls=1 size={}\r\n",
                            String::from_utf8_lossy(&request.key_token),
                            item.meta.cas,
                            item.data.key().len() + item.data.value().len() + 48
                        )
                    }
                    None => "EN\r\n".into(),
                };
                writer.write_all(line.as_bytes()).await?;
                Ok(Flow::Continue)
            }
            Kind::Get => self.meta_get(&request, now, writer).await,
            Kind::Set => self.meta_set(&request, now, reader, writer).await,
            Kind::Delete => {
                let Ok(compare) = request.number(b'C') else {
                    client_error(writer, BAD_FORMAT).await?;
                    return Ok(Flow::Continue);
                };
                let outcome = {
                    let _writing = self.writing().await;
                    self.table.delete(&request.key, compare, now)
                };
                self.after_write();
                let code = match outcome {
                    DeleteOutcome::Deleted if request.quiet() => return Ok(Flow::Continue),
                    DeleteOutcome::Deleted => "HD",
                    DeleteOutcome::NotFound => "NF",
                    DeleteOutcome::Exists => "EX",
                };
                let line = format!("{code}{}\r\n", return_flags(&request, None, now));
                writer.write_all(line.as_bytes()).await?;
                Ok(Flow::Continue)
            }
            Kind::Arith => self.meta_arith(&request, now, writer).await,
        }
    }

    async fn meta_get(
        &self,
        request: &Request,
        now: i64,
        writer: &mut impl Output,
    ) -> io::Result<Flow> {
        let Ok(touch) = request.ttl(b'T') else {
            client_error(writer, "bad token in command line format").await?;
            return Ok(Flow::Continue);
        };
        let item = if touch.is_some() {
            let _writing = self.writing().await;
            self.table.get(&request.key, touch, now)
        } else if request.has(b'u') {
            self.table.peek(&request.key, now)
        } else {
            self.table.get(&request.key, None, now)
        };
        let Some(item) = item else {
            if !request.quiet() {
                writer.write_all(b"EN\r\n").await?;
            }
            return Ok(Flow::Continue);
        };
        let flags = return_flags(request, Some(&item), now);
        if request.has(b'v') {
            let value = item.data.value();
            writer
                .write_all(format!("VA {}{flags}\r\n", value.len()).as_bytes())
                .await?;
            writer.write_all(value).await?;
            writer.write_all(b"\r\n").await?;
        } else {
            writer
                .write_all(format!("HD{flags}\r\n").as_bytes())
                .await?;
        }
        Ok(Flow::Continue)
    }

    async fn meta_set(
        &self,
        request: &Request,
        now: i64,
        reader: &mut impl Input,
        writer: &mut impl Output,
    ) -> io::Result<Flow> {
        let bytes = request.datalen;
        let parsed = (
            request.mode(Mode::Set, &SET_MODES),
            request.flags32(),
            request.common(),
        );
        let (Some(mode), Ok(flags), Ok(common)) = parsed else {
            client_error(writer, BAD_FORMAT).await?;
            writer.flush().await?;
            return discard(reader, bytes).await;
        };
        let _reserved = match self.admit(bytes) {
            Ok(reserved) => reserved,
            Err(line) => return refuse_block(reader, writer, bytes, line).await,
        };
        let value = match read_block(reader, writer, bytes).await? {
            Block::Data(value) => value,
            Block::Bad => return Ok(Flow::Continue),
            Block::Closed => return Ok(Flow::Close),
        };
        let mut write = Write {
            mode,
            key: &request.key,
            value: &value,
            flags,
            exptime: common.ttl.unwrap_or(0),
            compare: common.compare,
        };
        let stored = {
            let _writing = self.writing().await;
            let mut stored = self.table.store(&write, self.max_value_bytes, now);
            if let (StoreOutcome::NotStored, Some(exptime), Mode::Append | Mode::Prepend) =
                (stored, common.vivify, mode)
            {
                // Autovivify: an append to nothing creates the item.
                write.mode = Mode::Add;
                write.exptime = exptime;
                stored = self.table.store(&write, self.max_value_bytes, now);
            }
            stored
        };
        self.after_write();
        let (code, cas) = match stored {
            StoreOutcome::Stored(_) if request.quiet() => return Ok(Flow::Continue),
            StoreOutcome::Stored(cas) => ("HD", cas),
            StoreOutcome::NotStored => ("NS", 0),
            StoreOutcome::Exists => ("EX", 0),
            StoreOutcome::NotFound => ("NF", 0),
            StoreOutcome::TooLarge => {
                writer
                    .write_all(b"SERVER_ERROR object too large for cache\r\n")
                    .await?;
                return Ok(Flow::Continue);
            }
            StoreOutcome::OutOfMemory => {
                writer
                    .write_all(b"SERVER_ERROR out of memory storing object\r\n")
                    .await?;
                return Ok(Flow::Continue);
            }
        };
        let mut line = String::from(code);
        for flag in &request.flags {
            match flag.letter {
                b'O' => {
                    line.push_str(" O");
                    line.push_str(&String::from_utf8_lossy(&flag.token));
                }
                b'k' => {
                    line.push_str(" k");
                    line.push_str(&String::from_utf8_lossy(&request.key_token));
                    if request.has(b'b') {
                        line.push_str(" b");
                    }
                }
                b'c' => line.push_str(&format!(" c{cas}")),
                _ => {}
            }
        }
        line.push_str("\r\n");
        writer.write_all(line.as_bytes()).await?;
        Ok(Flow::Continue)
    }

    async fn meta_arith(
        &self,
        request: &Request,
        now: i64,
        writer: &mut impl Output,
    ) -> io::Result<Flow> {
        let parsed = (
            request.mode(true, &ARITH_MODES),
            request.number(b'D'),
            request.number(b'J'),
            request.common(),
        );
        let (Some(incr), Ok(delta), Ok(initial), Ok(common)) = parsed else {
            client_error(writer, BAD_FORMAT).await?;
            return Ok(Flow::Continue);
        };
        let delta = Delta {
            delta: delta.unwrap_or(1),
            incr,
            compare: common.compare,
            initial: common.vivify.map(|exptime| (initial.unwrap_or(0), exptime)),
        };
        let (outcome, item) = {
            let _writing = self.writing().await;
            let outcome = self.table.arith(&request.key, &delta, now);
            if let (Arith::Value(..), Some(exptime)) = (outcome, common.ttl) {
                self.table.touch(&request.key, exptime, now);
            }
            (outcome, self.table.peek(&request.key, now))
        };
        self.after_write();
        let code = match outcome {
            Arith::Value(value, _) => {
                let flags = return_flags(request, item.as_ref(), now);
                if request.has(b'v') {
                    let number = value.to_string();
                    let line = format!("VA {}{flags}\r\n{number}\r\n", number.len());
                    writer.write_all(line.as_bytes()).await?;
                } else if !request.quiet() {
                    writer
                        .write_all(format!("HD{flags}\r\n").as_bytes())
                        .await?;
                }
                return Ok(Flow::Continue);
            }
            Arith::NotFound => "NF",
            Arith::Exists => "EX",
            Arith::NonNumeric => {
                client_error(writer, "cannot increment or decrement non-numeric value").await?;
                return Ok(Flow::Continue);
            }
        };
        let line = format!("{code}{}\r\n", return_flags(request, None, now));
        writer.write_all(line.as_bytes()).await?;
        Ok(Flow::Continue)
    }
}
