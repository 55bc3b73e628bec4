//! The writers' lock: an exclusive `flock` on the store folder itself, held by every writer
//! (saves, tags, gc, holds, rebuild) for as long as its store is open. Waiting for it is a
//! queue with a deadline ([`OpenOptions::busy_timeout`](super::OpenOptions)); readers never
//! take it. The lock dies with its process, even by SIGKILL.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use super::StoreError;

/// The lock on a store folder; released when dropped.
#[derive(Debug)]
pub(super) struct WriterLock {
    _file: File,
}

impl WriterLock {
    /// Locks the store folder `dir`, waiting up to `wait` for the writer that has it.
    pub(super) fn acquire(dir: &Path, wait: Duration) -> Result<Self, StoreError> {
        let file = File::open(dir).map_err(|cause| StoreError::Io {
            dir: dir.to_owned(),
            cause,
        })?;
        let pauses = (Duration::from_millis(1), Duration::from_millis(25));
        retry_while_busy(dir, wait, pauses, || match file.try_lock() {
            Ok(()) => Ok(Some(())),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(cause)) => Err(StoreError::Io {
                dir: dir.to_owned(),
                cause,
            }),
        })?;
        Ok(WriterLock { _file: file })
    }
}

/// Calls `attempt` until it succeeds (`Ok(Some(_))`) or fails, pausing between the attempts
/// that find the store busy (`Ok(None)`): the first of `pauses` at first, doubling up to the
/// second; after `wait` the store is [`Busy`](StoreError::Busy).
pub(super) fn retry_while_busy<T>(
    dir: &Path,
    wait: Duration,
    pauses: (Duration, Duration),
    mut attempt: impl FnMut() -> Result<Option<T>, StoreError>,
) -> Result<T, StoreError> {
    let deadline = Instant::now() + wait;
    let (mut pause, longest) = pauses;
    loop {
        if let Some(done) = attempt()? {
            return Ok(done);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(StoreError::Busy {
                dir: dir.to_owned(),
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(longest);
    }
}
