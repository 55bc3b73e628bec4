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
}

impl Drop for BoundUnix {
    fn drop(&mut self) {
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
        }),
        Err(error) => {
            let _ = std::fs::remove_file(path);
            Err(error)
        }
    }
}
