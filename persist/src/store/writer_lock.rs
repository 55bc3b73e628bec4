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
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WriterLock { _file: file }),
                Err(TryLockError::WouldBlock) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(StoreError::Busy {
                            dir: dir.to_owned(),
                        });
                    }
                    std::thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(Duration::from_millis(25));
                }
                Err(TryLockError::Error(cause)) => {
                    return Err(StoreError::Io {
                        dir: dir.to_owned(),
                        cause,
                    });
                }
            }
        }
    }
}
