//! Files: atomic writes and Twisted's snapshot file names.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use rtwisted_core::Style;

/// Writes `bytes` to `path` atomically: a temporary file beside the target (mode 0600, since
/// snapshots may hold secrets), fsync, rename over the target, fsync the folder. A failed or
/// killed save leaves the previous file whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let mut temporary = tempfile::Builder::new()
        .prefix(&format!(".{}.", file_name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(folder)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    File::open(folder)?.sync_all()
}

/// Reads a whole snapshot file.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    fs::read(path)
}

/// Twisted's file name for a snapshot: `NAME.tap`, or `NAME-TAG.tap` with a tag (`.tas` for the
/// source style; `.etap` and `.etas` when encrypted).
///
/// ```
/// use rtwisted_core::Style;
/// assert_eq!(rtwisted_persist::file_name("echo", None, Style::Tap, false), "echo.tap");
/// assert_eq!(rtwisted_persist::file_name("echo", Some("shutdown"), Style::Tas, false), "echo-shutdown.tas");
/// assert_eq!(rtwisted_persist::file_name("echo", None, Style::Tap, true), "echo.etap");
/// ```
pub fn file_name(app_name: &str, tag: Option<&str>, style: Style, encrypted: bool) -> String {
    let extension = style.extension();
    let e = if encrypted { "e" } else { "" };
    match tag {
        Some(tag) if !tag.is_empty() => format!("{app_name}-{tag}.{e}{extension}"),
        _ => format!("{app_name}.{e}{extension}"),
    }
}
