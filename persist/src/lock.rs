//! Locks on snapshot files, taken with `flock` (a snapshot itself is replaced by every atomic
//! save, so a lock on the file would not outlive a save):
//!
//! - [`EditLock`]: an exclusive lock on the folder that holds the snapshot, held by every save
//!   and for the whole of every edit, so edits and saves in one folder happen one after another,
//!   each re-reading what the last one wrote. Waiting for it is bounded ([`EDIT_LOCK_WAIT`]).
//!   It leaves no file behind.
//! - [`HeldMark`] (`.NAME.tap.held.PID` beside the snapshot): held by a running `rtwistd` for
//!   its whole life, to mark the snapshots it runs from. An edit of a held snapshot is refused
//!   unless forced: the daemon would save over it, or resume past it. The lock dies with the
//!   process, even by SIGKILL, so a crash never leaves a snapshot held (the next look removes
//!   the mark it left).

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::SnapshotError;

/// How long a save or an edit waits for another one to finish with the same file.
pub const EDIT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// The exclusive lock on a snapshot's folder that every save and every edit holds. Released
/// when dropped.
#[derive(Debug)]
pub struct EditLock {
    _file: File,
    path: PathBuf,
}

impl EditLock {
    /// Locks `path` (its folder) for a save or an edit, waiting up to [`EDIT_LOCK_WAIT`] for
    /// another one. A missing folder is the save's to report, so no lock is taken then.
    pub fn acquire(path: &Path) -> Result<Option<Self>, SnapshotError> {
        Self::acquire_within(path, EDIT_LOCK_WAIT)
    }

    /// [`EditLock::acquire`], waiting up to `wait`.
    pub fn acquire_within(path: &Path, wait: Duration) -> Result<Option<Self>, SnapshotError> {
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let file = match File::open(folder) {
            Ok(file) => file,
            // Nowhere to lock: the folder is missing or unreadable, and the save that follows
            // reports that with the snapshot's own name.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::PermissionDenied
                        | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None);
            }
            Err(cause) => {
                return Err(SnapshotError::Lock {
                    path: path.to_owned(),
                    cause,
                });
            }
        };
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Some(EditLock {
                        _file: file,
                        path: path.to_owned(),
                    }));
                }
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(SnapshotError::Busy {
                        path: path.to_owned(),
                    });
                }
                Err(TryLockError::Error(cause)) => {
                    return Err(SnapshotError::Lock {
                        path: path.to_owned(),
                        cause,
                    });
                }
            }
        }
    }

    /// The snapshot file this lock is for.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A snapshot marked as held by this process (a running `rtwistd`), released when dropped or
/// when the process ends.
///
/// The mark is a file `.NAME.held.PID` beside the snapshot, locked for the life of the process
/// (it is created under another name, locked, and only then given its name, so it is never seen
/// unlocked while its holder lives). Several daemons may hold one snapshot (each its own mark).
/// [`holder`] finds a live one, and removes the marks of processes that are gone.
#[derive(Debug)]
pub struct HeldMark {
    file: File,
    mark: PathBuf,
    path: PathBuf,
}

const HELD: &str = "held";

fn mark_prefix(path: &Path) -> (PathBuf, String) {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    (folder, format!(".{name}.{HELD}."))
}

impl HeldMark {
    /// Marks `path` as held by this process.
    pub fn acquire(path: &Path) -> Result<Self, SnapshotError> {
        let lock_error = |cause| SnapshotError::Lock {
            path: path.to_owned(),
            cause,
        };
        let (folder, prefix) = mark_prefix(path);
        let temporary = tempfile::Builder::new()
            .prefix(&format!("{prefix}new."))
            .tempfile_in(&folder)
            .map_err(lock_error)?;
        temporary
            .as_file()
            .try_lock()
            .map_err(|error| lock_error(io::Error::from(error)))?;
        let mark = folder.join(format!("{prefix}{}", std::process::id()));
        let file = temporary
            .persist(&mark)
            .map_err(|error| lock_error(error.error))?;
        Ok(HeldMark {
            file,
            mark,
            path: path.to_owned(),
        })
    }

    /// Renames the mark after this process's PID (after daemonizing, the daemon's PID is not
    /// the one that took the mark; the lock goes with the file).
    pub fn record_pid(&mut self) -> Result<(), SnapshotError> {
        let (folder, prefix) = mark_prefix(&self.path);
        let mark = folder.join(format!("{prefix}{}", std::process::id()));
        if mark != self.mark {
            std::fs::rename(&self.mark, &mark).map_err(|cause| SnapshotError::Lock {
                path: self.path.clone(),
                cause,
            })?;
            self.mark = mark;
        }
        Ok(())
    }

    /// The snapshot this mark holds.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for HeldMark {
    fn drop(&mut self) {
        // The lock goes with the process anyway; the file goes with a clean exit.
        let _ = std::fs::remove_file(&self.mark);
        let _ = &self.file;
    }
}

/// The PID of a live process that holds `path`, if one does. Marks whose holder is gone are
/// removed on the way.
pub fn holder(path: &Path) -> Option<String> {
    let (folder, prefix) = mark_prefix(path);
    let entries = std::fs::read_dir(&folder).ok()?;
    let mut live = None;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(prefix.as_str()))
            .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let pid = pid.to_owned();
        let Ok(file) = File::open(entry.path()) else {
            continue;
        };
        match file.try_lock_shared() {
            Err(TryLockError::WouldBlock) => live = Some(pid),
            // Nobody holds it: its holder is gone.
            Ok(()) => {
                let _ = std::fs::remove_file(entry.path());
            }
            Err(TryLockError::Error(_)) => {}
        }
    }
    live
}

/// Refuses an edit of `path` while a live process holds it, unless `force`.
pub fn check_not_held(path: &Path, force: bool) -> Result<(), SnapshotError> {
    match holder(path) {
        Some(pid) if !force => Err(SnapshotError::Held {
            path: path.to_owned(),
            pid,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_second_edit_lock_waits_and_then_gives_up() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("echo.tap");
        let first = EditLock::acquire(&path).unwrap().unwrap();
        let err = EditLock::acquire_within(&path, Duration::from_millis(30)).unwrap_err();
        assert!(matches!(err, SnapshotError::Busy { .. }), "{err}");
        drop(first);
        assert!(EditLock::acquire(&path).unwrap().is_some());
        assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_held_snapshot_names_its_holder_until_the_mark_is_dropped() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("echo.tap");
        assert_eq!(holder(&path), None);
        let mark = HeldMark::acquire(&path).unwrap();
        // Another open file description: as another process would see it.
        assert_eq!(holder(&path), Some(std::process::id().to_string()));
        let err = check_not_held(&path, false).unwrap_err().to_string();
        assert!(
            err.contains(&format!("held by rtwistd PID {}", std::process::id())),
            "{err}"
        );
        check_not_held(&path, true).unwrap();
        drop(mark);
        assert_eq!(holder(&path), None);
    }

    #[test]
    fn a_mark_left_by_a_dead_holder_holds_nothing_and_is_removed() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("echo.tap");
        let stale = folder.path().join(".echo.tap.held.99999999");
        std::fs::write(&stale, b"").unwrap();
        assert_eq!(holder(&path), None);
        assert!(!stale.exists());
    }

    #[test]
    fn a_lock_in_a_missing_folder_is_left_to_the_save() {
        let folder = tempfile::tempdir().unwrap();
        assert!(
            EditLock::acquire(&folder.path().join("no/such/echo.tap"))
                .unwrap()
                .is_none()
        );
    }
}
