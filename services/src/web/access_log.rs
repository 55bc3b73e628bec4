//! The access log, one line per response in the combined log format of Apache and nginx:
//!
//! ```text
//! 127.0.0.1 - - [24/Nov/2026:00:27:27 +0000] "GET /index.html HTTP/1.1" 200 1024 "-" "curl/8.5.0"
//! ```
//!
//! Lines go to the daemon's log (as Twisted's `Site` logs), to a file of their own, or nowhere.
//! A file is written through a buffer that is flushed every second and at the stop, and is
//! reopened when it is moved or removed (logrotate), so no signal is needed.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::calendar;

/// Where access lines go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLog {
    /// The daemon's own log, at info level (Twisted's default).
    #[default]
    Daemon,
    /// A file of its own, appended to (created mode 0640).
    File(PathBuf),
    /// No access log.
    Off,
}

/// One response's log line, built in two parts: what the request said (when it arrives) and
/// the status and size (when the response is done), so the line is written with one copy.
#[derive(Debug)]
pub struct Entry {
    line: String,
    /// Where ` STATUS BYTES` goes: after the quoted request line.
    split: usize,
}

/// The parts of a request the log shows.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The client's address (without the port).
    pub client: &'a str,
    /// The method.
    pub method: &'a str,
    /// The request target as received.
    pub target: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub version: &'a str,
    /// The `Referer` header.
    pub referer: Option<&'a [u8]>,
    /// The `User-Agent` header.
    pub agent: Option<&'a [u8]>,
}

impl Entry {
    /// The request's part of the line, stamped `now`.
    pub fn new(request: &Request<'_>, now: SystemTime) -> Self {
        let mut line = String::with_capacity(96 + request.target.len());
        line.push_str(request.client);
        line.push_str(" - - [");
        with_clf_time(now, |time| line.push_str(time));
        line.push_str("] \"");
        escape_into(&mut line, request.method.as_bytes());
        line.push(' ');
        escape_into(&mut line, request.target.as_bytes());
        line.push(' ');
        line.push_str(request.version);
        line.push('"');
        let split = line.len();
        for field in [request.referer, request.agent] {
            line.push_str(" \"");
            match field {
                Some(value) => escape_into(&mut line, value),
                None => line.push('-'),
            }
            line.push('"');
        }
        Entry { line, split }
    }

    /// The whole line, without its newline, for a response of `status` with `bytes` of body.
    pub fn line(&self, status: u16, bytes: u64) -> String {
        let mut out = Vec::with_capacity(self.line.len() + 16);
        self.write_to(&mut out, status, bytes);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn write_to(&self, out: &mut impl Write, status: u16, bytes: u64) {
        let _ = out.write_all(&self.line.as_bytes()[..self.split]);
        let _ = if bytes == 0 {
            write!(out, " {status} -")
        } else {
            write!(out, " {status} {bytes}")
        };
        let _ = out.write_all(&self.line.as_bytes()[self.split..]);
    }
}

/// Writes `text` with quotes, backslashes and control or non-ASCII bytes escaped as `\xHH`,
/// so a client cannot forge lines or fields.
fn escape_into(out: &mut String, text: &[u8]) {
    for &byte in text {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(byte as char);
            }
            0x20..=0x7e => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
}

/// Calls `f` with `now` in the common log format, formatted once per second per thread.
fn with_clf_time(now: SystemTime, f: impl FnOnce(&str)) {
    thread_local! {
        static CACHE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            *cache = (secs, clf_time(now));
        }
        f(&cache.1);
    });
}

/// `10/Oct/2000:13:55:36 +0000` for `now`, in UTC.
pub fn clf_time(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let rem = secs % 86_400;
    let (year, month, day) = calendar::civil_from_days(secs / 86_400);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        calendar::MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// An open access log.
#[derive(Debug)]
pub enum Sink {
    /// The daemon's log.
    Daemon,
    /// A file.
    File(Mutex<FileSink>),
    /// Nothing.
    Off,
}

/// An access log file and what it was opened as.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    writer: BufWriter<File>,
    identity: (u64, u64),
}

fn open(path: &Path) -> io::Result<(File, (u64, u64))> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)?;
    let meta = file.metadata()?;
    Ok((file, (meta.dev(), meta.ino())))
}

impl Sink {
    /// Opens the log (creates a file). The error names the file.
    pub fn open(log: &AccessLog) -> Result<Sink, String> {
        Ok(match log {
            AccessLog::Daemon => Sink::Daemon,
            AccessLog::Off => Sink::Off,
            AccessLog::File(path) => {
                let (file, identity) = open(path).map_err(|error| {
                    format!(
                        "cannot open the access log '{}': {}",
                        path.display(),
                        rtwisted_core::describe_io(&error)
                    )
                })?;
                Sink::File(Mutex::new(FileSink {
                    path: path.clone(),
                    writer: BufWriter::with_capacity(64 * 1024, file),
                    identity,
                }))
            }
        })
    }

    /// True when lines are written somewhere.
    pub fn is_on(&self) -> bool {
        !matches!(self, Sink::Off)
    }

    /// Writes one entry, for a response of `status` with `bytes` of body.
    pub fn write(&self, entry: &Entry, status: u16, bytes: u64) {
        match self {
            Sink::Off => {}
            Sink::Daemon => {
                tracing::info!(target: "rtwisted::web::access", "{}", entry.line(status, bytes));
            }
            Sink::File(file) => {
                let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
                entry.write_to(&mut file.writer, status, bytes);
                if let Err(error) = file.writer.write_all(b"\n") {
                    tracing::warn!(
                        "cannot write the access log '{}': {error}",
                        file.path.display()
                    );
                }
            }
        }
    }

    /// Flushes buffered lines, and reopens a file that was moved or removed.
    pub fn flush(&self) {
        let Sink::File(file) = self else { return };
        let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(error) = file.writer.flush() {
            tracing::warn!(
                "cannot write the access log '{}': {error}",
                file.path.display()
            );
        }
        let current = std::fs::metadata(&file.path).map(|meta| (meta.dev(), meta.ino()));
        if current.ok() != Some(file.identity) {
            match open(&file.path) {
                Ok((new, identity)) => {
                    file.writer = BufWriter::with_capacity(64 * 1024, new);
                    file.identity = identity;
                }
                Err(error) => tracing::warn!(
                    "cannot reopen the access log '{}': {error}",
                    file.path.display()
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_in_the_common_log_format() {
        let at = UNIX_EPOCH + Duration::from_secs(971_186_136);
        assert_eq!(clf_time(at), "10/Oct/2000:13:55:36 +0000");
        assert_eq!(clf_time(UNIX_EPOCH), "01/Jan/1970:00:00:00 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(clf_time(leap), "29/Feb/2000:00:00:00 +0000");
    }

    #[test]
    fn lines_are_combined_format_and_cannot_be_forged() {
        let request = Request {
            client: "127.0.0.1",
            method: "GET",
            target: "/a\"b\n",
            version: "HTTP/1.1",
            referer: None,
            agent: Some(b"curl/8\xff"),
        };
        let entry = Entry::new(&request, UNIX_EPOCH);
        assert_eq!(
            entry.line(200, 0),
            r#"127.0.0.1 - - [01/Jan/1970:00:00:00 +0000] "GET /a\"b\x0a HTTP/1.1" 200 - "-" "curl/8\xff""#
        );
        assert!(entry.line(404, 12).contains("\" 404 12 \"-\""));
    }
}
