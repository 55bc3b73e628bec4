//! Parsing one command line of the memcached text protocol into a [`Command`].
//!
//! The line arrives without its terminator. Tokens are separated by one or more spaces, as in
//! memcached. Parsing never allocates more than the line itself holds.

/// The longest key memcached accepts, in bytes.
pub(super) const MAX_KEY_BYTES: usize = 250;

/// The reason memcached gives for most malformed lines.
pub(super) const BAD_FORMAT: &str = "bad command line format";

/// The longest data block a storage command may announce (memcached's `INT_MAX - 2`); longer
/// is a malformed line, not an object too large.
const MAX_DATA_BYTES: u64 = i32::MAX as u64 - 2;

/// How a storage command treats the key's current item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StoreMode {
    /// Store unconditionally.
    Set,
    /// Store only if the key holds no item.
    Add,
    /// Store only if the key holds an item.
    Replace,
    /// Add the data after the current item's value.
    Append,
    /// Add the data before the current item's value.
    Prepend,
    /// Store only if the current item's cas unique is this one.
    Cas(u64),
}

/// A storage command's line; its data block follows on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Storage {
    pub mode: StoreMode,
    pub key: Vec<u8>,
    pub flags: u32,
    pub exptime: i64,
    pub bytes: usize,
    pub noreply: bool,
}

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Command {
    /// `set`, `add`, `replace`, `append`, `prepend`, `cas`.
    Store(Storage),
    /// `get` and `gets` (with cas uniques); `gat` and `gats` also give the items a new
    /// exptime (`touch`).
    Get {
        keys: Vec<Vec<u8>>,
        with_cas: bool,
        touch: Option<i64>,
    },
    /// `delete <key> [0] [noreply]`.
    Delete { key: Vec<u8>, noreply: bool },
    /// `incr` and `decr`.
    Arith {
        key: Vec<u8>,
        delta: u64,
        incr: bool,
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`.
    Touch {
        key: Vec<u8>,
        exptime: i64,
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`.
    FlushAll { delay: i64, noreply: bool },
    /// `version` (memcached 1.6 ignores any arguments).
    Version,
    /// `verbosity <level> [noreply]`.
    Verbosity { noreply: bool },
    /// `stats [group]`: the general statistics, or `settings`, `items`, `slabs`, `sizes`,
    /// `conns`, or `reset`.
    Stats(Option<Vec<u8>>),
    /// A meta command (`mg`, `ms`, `md`, `ma`, `mn`, `me`).
    Meta(super::meta::Request),
    /// `quit` (memcached 1.6 ignores any arguments).
    Quit,
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ParseError {
    /// Not a command this server knows (an empty line too): `ERROR`.
    Unknown,
    /// A known command with malformed arguments: `CLIENT_ERROR <reason>`. When the line was a
    /// storage command whose data length could be read, `swallow` is that length: its data block
    /// (and terminator) must be read and thrown away so the next line is a command again.
    Client {
        reason: &'static str,
        swallow: Option<usize>,
    },
}

impl ParseError {
    fn client(reason: &'static str) -> Self {
        ParseError::Client {
            reason,
            swallow: None,
        }
    }
}

/// Parses one line (without its `\r\n`).
pub(super) fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let tokens: Vec<&[u8]> = line
        .split(|&byte| byte == b' ')
        .filter(|token| !token.is_empty())
        .collect();
    let Some((&name, args)) = tokens.split_first() else {
        return Err(ParseError::Unknown);
    };
    match name {
        b"set" => storage(StoreMode::Set, args),
        b"add" => storage(StoreMode::Add, args),
        b"replace" => storage(StoreMode::Replace, args),
        b"append" => storage(StoreMode::Append, args),
        b"prepend" => storage(StoreMode::Prepend, args),
        b"cas" => storage(StoreMode::Cas(0), args),
        b"get" => get(args, false, None),
        b"gets" => get(args, true, None),
        b"gat" | b"gats" => gat(args, name == b"gats"),
        b"delete" => delete(args),
        b"incr" => arith(args, true),
        b"decr" => arith(args, false),
        b"touch" => touch(args),
        b"flush_all" => flush_all(args),
        b"version" => Ok(Command::Version),
        b"verbosity" => verbosity(args),
        b"stats" => match args {
            [] => Ok(Command::Stats(None)),
            [group, ..] => Ok(Command::Stats(Some(group.to_vec()))),
        },
        b"quit" => Ok(Command::Quit),
        b"mg" | b"ms" | b"md" | b"ma" | b"mn" | b"me" => {
            super::meta::parse(name, args).map(Command::Meta)
        }
        _ => Err(ParseError::Unknown),
    }
}

/// Splits a trailing `noreply` off the arguments.
fn noreply<'a, 'b>(args: &'a [&'b [u8]]) -> (&'a [&'b [u8]], bool) {
    match args.split_last() {
        Some((&b"noreply", rest)) => (rest, true),
        _ => (args, false),
    }
}

fn storage(mode: StoreMode, args: &[&[u8]]) -> Result<Command, ParseError> {
    let (args, noreply) = noreply(args);
    let expected = if matches!(mode, StoreMode::Cas(_)) {
        5
    } else {
        4
    };
    // The data length comes first, so that whatever else is wrong, the data block is skipped.
    let bytes = args
        .get(3)
        .and_then(|token| unsigned(token))
        .filter(|&bytes| bytes <= MAX_DATA_BYTES)
        .and_then(|bytes| usize::try_from(bytes).ok());
    let fail = || ParseError::Client {
        reason: BAD_FORMAT,
        swallow: bytes,
    };
    if args.len() != expected {
        return Err(fail());
    }
    let (Some(key), Some(flags), Some(exptime), Some(bytes)) = (
        key(args[0]),
        unsigned(args[1]).and_then(|flags| u32::try_from(flags).ok()),
        signed(args[2]),
        bytes,
    ) else {
        return Err(fail());
    };
    let mode = match mode {
        StoreMode::Cas(_) => StoreMode::Cas(unsigned(args[4]).ok_or_else(fail)?),
        other => other,
    };
    Ok(Command::Store(Storage {
        mode,
        key,
        flags,
        exptime,
        bytes,
        noreply,
    }))
}

fn get(args: &[&[u8]], with_cas: bool, touch: Option<i64>) -> Result<Command, ParseError> {
    if args.is_empty() {
        return Err(ParseError::Unknown);
    }
    let keys = args
        .iter()
        .map(|token| key(token))
        .collect::<Option<Vec<_>>>()
        .ok_or(ParseError::client(BAD_FORMAT))?;
    Ok(Command::Get {
        keys,
        with_cas,
        touch,
    })
}

/// `gat <exptime> <key>+` and `gats`.
fn gat(args: &[&[u8]], with_cas: bool) -> Result<Command, ParseError> {
    let Some((exptime, keys)) = args.split_first() else {
        return Err(ParseError::Unknown);
    };
    let exptime = signed(exptime).ok_or(ParseError::client("invalid exptime argument"))?;
    if keys.is_empty() {
        // memcached answers a `gat` without keys with an empty result.
        return Ok(Command::Get {
            keys: Vec::new(),
            with_cas,
            touch: Some(exptime),
        });
    }
    get(keys, with_cas, Some(exptime))
}

/// `verbosity <level> [noreply]`: as memcached, the level is read leniently and only the
/// number of arguments is checked.
fn verbosity(args: &[&[u8]]) -> Result<Command, ParseError> {
    match args {
        [_] | [_, _] => Ok(Command::Verbosity {
            noreply: args.last() == Some(&&b"noreply"[..]),
        }),
        _ => Err(ParseError::Unknown),
    }
}

fn delete(args: &[&[u8]]) -> Result<Command, ParseError> {
    let (args, noreply) = noreply(args);
    let key = match args {
        [] => return Err(ParseError::Unknown),
        // memcached still accepts the old `delete <key> 0`.
        [key_token] | [key_token, b"0"] => key(key_token),
        [_, _] => {
            return Err(ParseError::client(
                "bad command line format.  Usage: delete <key> [noreply]",
            ));
        }
        _ => None,
    };
    let key = key.ok_or(ParseError::client(BAD_FORMAT))?;
    Ok(Command::Delete { key, noreply })
}

fn arith(args: &[&[u8]], incr: bool) -> Result<Command, ParseError> {
    let (args, noreply) = noreply(args);
    let [key_token, delta_token] = args else {
        return Err(ParseError::client(BAD_FORMAT));
    };
    let key = key(key_token).ok_or(ParseError::client(BAD_FORMAT))?;
    let delta =
        unsigned(delta_token).ok_or(ParseError::client("invalid numeric delta argument"))?;
    Ok(Command::Arith {
        key,
        delta,
        incr,
        noreply,
    })
}

fn touch(args: &[&[u8]]) -> Result<Command, ParseError> {
    let (args, noreply) = noreply(args);
    let [key_token, exptime_token] = args else {
        return Err(ParseError::client(BAD_FORMAT));
    };
    let key = key(key_token).ok_or(ParseError::client(BAD_FORMAT))?;
    let exptime = signed(exptime_token).ok_or(ParseError::client("invalid exptime argument"))?;
    Ok(Command::Touch {
        key,
        exptime,
        noreply,
    })
}

fn flush_all(args: &[&[u8]]) -> Result<Command, ParseError> {
    let (args, noreply) = noreply(args);
    let delay = match args {
        [] => 0,
        [delay] => signed(delay).ok_or(ParseError::client("invalid exptime argument"))?,
        _ => return Err(ParseError::client(BAD_FORMAT)),
    };
    Ok(Command::FlushAll { delay, noreply })
}

/// A key of the text protocol: 1 to 250 bytes, any bytes but a space (which splits tokens)
/// and `\n` (which ends the line), as memcached reads them: control bytes and non-UTF-8 bytes
/// are part of the key.
pub(super) fn key(token: &[u8]) -> Option<Vec<u8>> {
    (!token.is_empty() && token.len() <= MAX_KEY_BYTES && !token.contains(&b'\n'))
        .then(|| token.to_vec())
}

/// A decimal `u64`: digits only, no sign, no overflow.
pub(super) fn unsigned(token: &[u8]) -> Option<u64> {
    if token.is_empty() || !token.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(token).ok()?.parse().ok()
}

/// A decimal `i64`, with an optional leading `-`.
pub(super) fn signed(token: &[u8]) -> Option<i64> {
    let digits = token.strip_prefix(b"-").unwrap_or(token);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(token).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_lines_parse_with_and_without_noreply() {
        assert_eq!(
            parse(b"set k 5 -1 3 noreply"),
            Ok(Command::Store(Storage {
                mode: StoreMode::Set,
                key: b"k".to_vec(),
                flags: 5,
                exptime: -1,
                bytes: 3,
                noreply: true,
            }))
        );
        assert_eq!(
            parse(b"cas  k 0 0 3   42"),
            Ok(Command::Store(Storage {
                mode: StoreMode::Cas(42),
                key: b"k".to_vec(),
                flags: 0,
                exptime: 0,
                bytes: 3,
                noreply: false,
            }))
        );
    }

    #[test]
    fn malformed_storage_lines_still_know_how_much_data_to_skip() {
        let bad_key = format!("set {} 0 0 7", "k".repeat(251));
        for line in [
            bad_key.as_str(),
            "set k x 0 7",
            "set k 0 x 7",
            "cas k 0 0 7",
            "set k 0 0 7 junk",
        ] {
            assert_eq!(
                parse(line.as_bytes()),
                Err(ParseError::Client {
                    reason: BAD_FORMAT,
                    swallow: Some(7),
                }),
                "{line}"
            );
        }
        assert_eq!(
            parse(b"set k 0 0 -1"),
            Err(ParseError::Client {
                reason: BAD_FORMAT,
                swallow: None,
            })
        );
        assert_eq!(
            parse(b"set k 4294967296 0 1"),
            Err(ParseError::Client {
                reason: BAD_FORMAT,
                swallow: Some(1),
            })
        );
    }

    #[test]
    fn numbers_are_strict_decimals() {
        assert_eq!(unsigned(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(unsigned(b"18446744073709551616"), None);
        assert_eq!(unsigned(b"+1"), None);
        assert_eq!(unsigned(b""), None);
        assert_eq!(signed(b"-30"), Some(-30));
        assert_eq!(signed(b"-"), None);
        assert_eq!(signed(b"--1"), None);
    }

    #[test]
    fn keys_are_bytes_with_memcacheds_rules() {
        assert!(key(&[b'k'; 250]).is_some());
        assert!(key(&[b'k'; 251]).is_none());
        for bad in [&b"a\nb"[..], b""] {
            assert!(key(bad).is_none(), "{}", bad.escape_ascii());
        }
        for control in [&b"a\tb"[..], b"a\rb", b"\x10\x10k", b"a\0b"] {
            assert!(key(control).is_some(), "{}", control.escape_ascii());
        }
        assert_eq!(key(b"a\x7fb").as_deref(), Some(&b"a\x7fb"[..]));
        assert_eq!(key(b"\xff\x01").as_deref(), Some(&b"\xff\x01"[..]));
        assert_eq!(key("clé".as_bytes()).as_deref(), Some("clé".as_bytes()));
    }

    #[test]
    fn empty_and_unknown_lines_are_errors() {
        assert_eq!(parse(b""), Err(ParseError::Unknown));
        assert_eq!(parse(b"   "), Err(ParseError::Unknown));
        assert_eq!(parse(b"SET k 0 0 1"), Err(ParseError::Unknown));
        assert_eq!(parse(b"get"), Err(ParseError::Unknown));
    }
}
