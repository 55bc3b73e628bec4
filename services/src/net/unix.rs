//! UNIX stream sockets for servers: the lockfile that tells a stale socket file from a live
//! one, the file mode, and removal on stop.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

use crate::strports::UnixListen;

/// A bound UNIX socket file, removed (with its lock file) when dropped.
#[derive(Debug)]
pub struct BoundUnix {
    /// The listening socket.
    pub listener: tokio::net::UnixListener,
    path: PathBuf,
    lock: Option<(File, PathBuf)>,
    /// Set when a successor took the socket over: its files are the successor's now.
    released: std::sync::atomic::AtomicBool,
}

impl BoundUnix {
    /// The lock file's descriptor, if the socket has one.
    pub fn lock_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.lock.as_ref().map(|(file, _)| file.as_fd())
    }

    /// Leaves the socket file and the lock file in place when this is dropped: a successor
    /// process listens on the socket now.
    pub fn release(&self) {
        self.released
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// A socket handed over by a predecessor: its listener and, if it had one, its lock file
    /// (still locked: the lock belongs to the open file, which the handover shared).
    pub fn adopt(
        unix: &UnixListen,
        listener: std::os::fd::OwnedFd,
        lock: Option<std::os::fd::OwnedFd>,
    ) -> std::io::Result<BoundUnix> {
        let listener = std::os::unix::net::UnixListener::from(listener);
        listener.set_nonblocking(true)?;
        Ok(BoundUnix {
            listener: tokio::net::UnixListener::from_std(listener)?,
            path: unix.path.clone(),
            lock: lock.map(|fd| (File::from(fd), lock_path(&unix.path))),
            released: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

impl Drop for BoundUnix {
    fn drop(&mut self) {
        if self.released.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let _ = std::fs::remove_file(&self.path);
        if let Some((lock, lock_path)) = self.lock.take() {
            let _ = std::fs::remove_file(&lock_path);
            drop(lock);
        }
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Binds `unix`: with `lockfile`, takes `PATH.lock` (an advisory lock held while listening) and
/// removes a stale socket file that no live process holds; then binds, applies the mode and
/// listens.
pub fn bind(unix: &UnixListen) -> std::io::Result<BoundUnix> {
    let path = &unix.path;
    let lock = if unix.lockfile {
        let lock_path = lock_path(path);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("another process holds {}", lock_path.display()),
                ));
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(error),
        }
        if let Ok(metadata) = std::fs::symlink_metadata(path) {
            if !metadata.file_type().is_socket() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a file that is not a socket is in the way",
                ));
            }
            // Nobody holds the lock, so the socket file is stale.
            std::fs::remove_file(path)?;
        }
        Some((lock, lock_path))
    } else {
        None
    };
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    let listen = || -> std::io::Result<tokio::net::UnixListener> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(unix.mode))?;
        socket.listen(i32::try_from(unix.backlog).unwrap_or(i32::MAX))?;
        socket.set_nonblocking(true)?;
        tokio::net::UnixListener::from_std(std::os::unix::net::UnixListener::from(
            std::os::fd::OwnedFd::from(socket.try_clone()?),
        ))
    };
    match listen() {
        Ok(listener) => Ok(BoundUnix {
            listener,
            path: path.clone(),
            lock,
            released: std::sync::atomic::AtomicBool::new(false),
        }),
        Err(error) => {
            let _ = std::fs::remove_file(path);
            Err(error)
        }
    }
}
