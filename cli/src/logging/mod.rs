//! Log output for `rtwistd`: `tracing` events as text or JSON lines, to stdout, to a log file
//! that rotates by size and reopens on SIGHUP/SIGUSR1 (for logrotate), or to syslog.
//! The filter is the command line's (`-v`, `-q`, `--log-level`), else `RTWISTD_LOG`, else
//! `RUST_LOG`, else `info`. JSON lines carry each event's fields (service, address, peer,
//! bytes, durations) beside its message.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::error::CliError;

mod text_fields;

pub use text_fields::TextFields;

/// The syslog socket; `RTWISTD_SYSLOG_SOCKET` overrides it (for tests and containers).
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard output (foreground runs).
    Stdout,
    /// A file, rotated by size and reopened on SIGHUP/SIGUSR1.
    File(PathBuf),
    /// The system log, with this identity.
    Syslog {
        /// The identity (`--prefix`).
        prefix: String,
    },
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-11-24T10:00:00Z  INFO message`.
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether log lines written to a terminal are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Color {
    /// On a terminal, unless `NO_COLOR` is set (to anything but empty).
    #[default]
    Auto,
    /// Always (stdout only: files and syslog never get escape codes).
    Always,
    /// Never.
    Never,
}

/// What [`init`] sets up.
#[derive(Debug, Clone)]
pub struct LogSettings<'a> {
    /// Where lines go.
    pub target: &'a LogTarget,
    /// How they look.
    pub format: LogFormat,
    /// The command line's filter, which wins over the environment's.
    pub filter: Option<&'a str>,
    /// Colour on a terminal.
    pub color: Color,
    /// Rotate a log file at this size (0: never).
    pub max_size: u64,
    /// Rotated files kept.
    pub keep: u32,
}

/// Installs logging as `settings` say; returns the log file, which the caller reopens on
/// signals.
pub fn init(settings: &LogSettings<'_>) -> Result<Option<Arc<LogFile>>, CliError> {
    let LogSettings {
        target,
        format,
        max_size,
        keep,
        ..
    } = *settings;
    let filter = filter(settings.filter);
    match target {
        LogTarget::Stdout => {
            let ansi = match settings.color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => io::stdout().is_terminal() && !no_color(),
            };
            install(format, filter, BoxMakeWriter::new(io::stdout), ansi, true);
            Ok(None)
        }
        LogTarget::File(path) => {
            let file = Arc::new(LogFile::open(path, max_size, keep).map_err(|error| {
                CliError::failed(format!(
                    "cannot open the log file '{}': {}",
                    path.display(),
                    rtwisted_persist::describe_io(&error)
                ))
            })?);
            install(
                format,
                filter,
                BoxMakeWriter::new(Arc::clone(&file)),
                false,
                true,
            );
            Ok(Some(file))
        }
        LogTarget::Syslog { prefix } => {
            let syslog = Syslog::connect(prefix).map_err(|error| {
                CliError::failed(format!(
                    "cannot reach syslog at {}: {error}",
                    syslog_socket().display()
                ))
            })?;
            // syslog stamps its own time.
            install(format, filter, BoxMakeWriter::new(syslog), false, false);
            Ok(None)
        }
    }
}

/// `NO_COLOR` set to anything but empty (<https://no-color.org>).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty())
}

/// The command line's filter (checked when the options were read), else `RTWISTD_LOG`, else
/// `RUST_LOG`, else `info`. An environment filter that does not parse is passed over.
fn filter(command_line: Option<&str>) -> EnvFilter {
    command_line
        .and_then(|filter| EnvFilter::try_new(filter).ok())
        .or_else(|| EnvFilter::try_from_env("RTWISTD_LOG").ok())
        .or_else(|| EnvFilter::try_from_env("RUST_LOG").ok())
        .unwrap_or_else(|| EnvFilter::new("info"))
}

fn install(
    format: LogFormat,
    filter: EnvFilter,
    writer: BoxMakeWriter,
    ansi: bool,
    time: bool,
) -> bool {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false);
    match (format, time) {
        (LogFormat::Text, true) => builder.fmt_fields(TextFields).try_init().is_ok(),
        (LogFormat::Text, false) => builder
            .fmt_fields(TextFields)
            .without_time()
            .try_init()
            .is_ok(),
        (LogFormat::Json, true) => builder.json().try_init().is_ok(),
        (LogFormat::Json, false) => builder.json().without_time().try_init().is_ok(),
    }
}

/// A log file that rotates when it reaches a size (`NAME.1` ... `NAME.N`, oldest dropped) and
/// can be reopened after an outside tool moved it.
#[derive(Debug)]
pub struct LogFile {
    state: Mutex<LogState>,
}

#[derive(Debug)]
struct LogState {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    keep: u32,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogFile {
    /// Opens (or creates) the file for appending.
    pub fn open(path: &Path, max_size: u64, keep: u32) -> io::Result<Self> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            state: Mutex::new(LogState {
                path: path.to_owned(),
                file,
                size,
                max_size,
                keep: keep.max(1),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reopens the file at its path (after logrotate moved it, say).
    pub fn reopen(&self) -> io::Result<()> {
        let mut state = self.lock();
        let file = open_append(&state.path)?;
        state.size = file.metadata()?.len();
        state.file = file;
        Ok(())
    }

    /// Changes the path the file is reopened and rotated at (after a chroot).
    pub fn set_path(&self, path: PathBuf) {
        self.lock().path = path;
    }
}

impl LogState {
    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        for n in (1..self.keep).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.rotated(1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Write for &LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.lock();
        if state.max_size > 0 && state.size > 0 && state.size + buf.len() as u64 > state.max_size {
            // A failed rotation must not lose the line: keep writing to the current file.
            let _ = state.rotate();
        }
        state.file.write_all(buf)?;
        state.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().file.flush()
    }
}

fn syslog_socket() -> PathBuf {
    std::env::var_os("RTWISTD_SYSLOG_SOCKET")
        .map_or_else(|| PathBuf::from(SYSLOG_SOCKET), PathBuf::from)
}

/// Sends each log line to syslog as one datagram: `<PRI>PREFIX[PID]: line`.
#[derive(Debug, Clone)]
pub struct Syslog {
    socket: Arc<UnixDatagram>,
    prefix: String,
}

impl Syslog {
    fn connect(prefix: &str) -> io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(syslog_socket())?;
        Ok(Syslog {
            socket: Arc::new(socket),
            prefix: prefix.to_owned(),
        })
    }
}

/// One line for syslog at one severity.
pub struct SyslogLine {
    syslog: Syslog,
    severity: u8,
}

impl Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Facility "daemon" (3).
        let priority = 3 * 8 + u32::from(self.severity);
        let text = String::from_utf8_lossy(buf);
        let line = format!(
            "<{priority}>{}[{}]: {}",
            self.syslog.prefix,
            std::process::id(),
            text.trim_end()
        );
        // A full or missing syslog must not stop the daemon: the line is dropped.
        let _ = self.syslog.socket.send(line.as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> Self::Writer {
        SyslogLine {
            syslog: self.clone(),
            severity: 6,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        let severity = match *meta.level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        SyslogLine {
            syslog: self.clone(),
            severity,
        }
    }
}
