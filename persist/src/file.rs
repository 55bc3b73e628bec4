//! Files: atomic writes, the temporary files they leave when killed, and Twisted's snapshot
//! file names.
//!
//! A save writes `.NAME.PID.XXXXXX.tmp` beside its target (PID is the writer's, XXXXXX random),
//! holding an `flock` on it while it writes, then renames it over the target. A save that is
//! killed leaves its temporary file; the next save into the same folder removes every file of
//! that pattern whose writer is gone (its lock is free, and its PID is dead or the file is
//! older than a minute). Nothing else is ever removed.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use rtwisted_core::Style;

/// How old a temporary file with a free lock must be before it is removed although its PID is
/// in use (by another process that reused the PID, or by a writer that has not locked it yet).
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// Writes `bytes` to `path` atomically: a temporary file beside the target (mode 0600, since
/// snapshots may hold secrets), fsync, rename over the target, fsync the folder. A failed or
/// killed save leaves the previous file whole; the temporary files of earlier killed saves in
/// the folder are removed first.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    remove_abandoned_temporaries(folder);
    let mut temporary = tempfile::Builder::new()
        .prefix(&format!(
            ".{}.{}.",
            file_name.to_string_lossy(),
            std::process::id()
        ))
        .suffix(".tmp")
        .rand_bytes(6)
        .tempfile_in(folder)?;
    // Held while it is written: a save running beside it sees the file is not abandoned.
    temporary.as_file().try_lock().map_err(io::Error::from)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    File::open(folder)?.sync_all()
}

/// The writer's PID if `name` is the name of one of [`write_atomic`]'s temporary files:
/// `.NAME.PID.XXXXXX.tmp`.
pub fn temporary_writer(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (rest, random) = rest.rsplit_once('.')?;
    let (target, pid) = rest.rsplit_once('.')?;
    let random_ok = random.len() == 6 && random.bytes().all(|b| b.is_ascii_alphanumeric());
    let pid_ok = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    (random_ok && pid_ok && !target.is_empty())
        .then(|| pid.parse().ok())
        .flatten()
}

/// True if process `pid` exists. Without `/proc` every process counts as alive, so nothing is
/// removed on a guess.
fn process_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the temporary files of killed saves in `folder`: those of [`write_atomic`]'s pattern
/// whose lock is free and whose writer is gone. Best effort: a file that cannot be examined is
/// left alone. Returns how many were removed.
pub fn remove_abandoned_temporaries(folder: &Path) -> usize {
    let Ok(entries) = fs::read_dir(folder) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temporary_writer) else {
            continue;
        };
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue; // its writer is still at work
        }
        let old = file
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_some_and(|age| age >= ABANDONED_AFTER);
        if ((pid != std::process::id() && !process_alive(pid)) || old)
            && fs::remove_file(&path).is_ok()
        {
            removed += 1;
        }
    }
    removed
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_our_own_pattern_is_a_temporary_file() {
        assert_eq!(temporary_writer(".echo.tap.1234.aB3dE9.tmp"), Some(1234));
        assert_eq!(temporary_writer(".my.app.tap.7.000000.tmp"), Some(7));
        for other in [
            "echo.tap",
            ".echo.tap.lock",
            ".echo.tap.aB3dE9.tmp",
            ".echo.tap.12x4.aB3dE9.tmp",
            ".echo.tap.1234.aB3d.tmp",
            "echo.tap.1234.aB3dE9.tmp",
            "..1234.aB3dE9.tmp",
        ] {
            assert_eq!(temporary_writer(other), None, "{other}");
        }
    }

    #[test]
    fn a_temporary_file_of_a_dead_writer_is_removed_and_nothing_else() {
        let folder = tempfile::tempdir().unwrap();
        // PIDs above the kernel's pid_max (4194304 at most) never exist.
        let dead = folder.path().join(".echo.tap.99999999.aB3dE9.tmp");
        let live = folder
            .path()
            .join(format!(".echo.tap.{}.zzzzzz.tmp", std::process::id()));
        let other = folder.path().join(".echo.tap.lock");
        for path in [&dead, &live, &other] {
            fs::write(path, b"x").unwrap();
        }
        assert_eq!(remove_abandoned_temporaries(folder.path()), 1);
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
    }

    #[test]
    fn a_locked_temporary_file_is_left_alone() {
        let folder = tempfile::tempdir().unwrap();
        let busy = folder.path().join(".echo.tap.99999999.aB3dE9.tmp");
        fs::write(&busy, b"x").unwrap();
        let writer = File::open(&busy).unwrap();
        writer.try_lock().unwrap();
        assert_eq!(remove_abandoned_temporaries(folder.path()), 0);
        drop(writer);
        assert_eq!(remove_abandoned_temporaries(folder.path()), 1);
    }
}
