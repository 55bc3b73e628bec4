//! Locks on snapshot files, taken with `flock` (a snapshot itself is replaced by every atomic
//! save, so a lock on the file would not outlive a save):
//!
//! - [`EditLock`]: an exclusive lock on the folder that holds the snapshot, held by every save
//!   and for the whole of every edit, so edits and saves in one folder happen one after another,
//!   each re-reading what the last one wrote. Waiting for it is bounded ([`EDIT_LOCK_WAIT`]).
//!   It leaves no file behind.
//! - [`HeldMark`] (`.NAME.tap.held` beside the snapshot): held by a running `rtwistd` for its
//!   whole life, with its PID in the file, to mark the snapshots it runs from. An edit of a held
//!   snapshot is refused unless forced: the daemon would save over it, or resume past it. The
//!   lock dies with the process, even by SIGKILL, so a crash never leaves a snapshot held. The
//!   file is never removed (removing a lock file races with the next locker).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::SnapshotError;

/// How long a save or an edit waits for another one to finish with the same file.
pub const EDIT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// The file beside `path` named `.NAME.SUFFIX`.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{suffix}"))
}

fn open_sidecar(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

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
#[derive(Debug)]
pub struct HeldMark {
    _file: File,
    path: PathBuf,
}

impl HeldMark {
    /// Marks `path` as held by this process. Refuses with [`SnapshotError::Held`] when another
    /// live process holds it. Take it after daemonizing: the PID recorded is this process's.
    pub fn acquire(path: &Path) -> Result<Self, SnapshotError> {
        let mark = sidecar(path, "held");
        let lock_error = |cause| SnapshotError::Lock {
            path: path.to_owned(),
            cause,
        };
        let mut file = open_sidecar(&mark).map_err(lock_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(SnapshotError::Held {
                    path: path.to_owned(),
                    pid: read_pid(&mut file),
                });
            }
            Err(TryLockError::Error(cause)) => return Err(lock_error(cause)),
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(lock_error)?;
        Ok(HeldMark {
            _file: file,
            path: path.to_owned(),
        })
    }

    /// The snapshot this mark holds.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The PID of the live process that holds `path`, if one does.
pub fn holder(path: &Path) -> Option<String> {
    let mut file = File::open(sidecar(path, "held")).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => Some(read_pid(&mut file)),
        Err(TryLockError::Error(_)) => None,
    }
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

fn read_pid(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut text);
    match text.trim() {
        "" => "unknown".to_owned(),
        pid => pid.to_owned(),
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
    fn a_lock_in_a_missing_folder_is_left_to_the_save() {
        let folder = tempfile::tempdir().unwrap();
        assert!(
            EditLock::acquire(&folder.path().join("no/such/echo.tap"))
                .unwrap()
                .is_none()
        );
    }
}
