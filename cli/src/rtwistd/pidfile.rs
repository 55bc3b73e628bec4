//! The pidfile: taken with an advisory lock (`flock`) that the daemon holds for its whole life.
//!
//! The lock, not the number in the file, says whether another rtwistd is running: a process
//! that dies (even by SIGKILL) drops its lock, so a stale file whose PID was recycled by some
//! other process never blocks a restart (Twisted's most common complaint). The lock is taken in
//! the launching process, so "another rtwistd is running" reaches the shell, and is inherited by
//! the daemon across the forks.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::CliError;

/// A pidfile this process holds locked.
#[derive(Debug)]
pub struct Pidfile {
    file: Flock<File>,
    path: PathBuf,
}

impl Pidfile {
    /// Opens and locks `path`. Refuses if another live process holds it; a stale file is taken
    /// over, and the PID it named is returned for the log.
    pub fn acquire(path: &Path) -> Result<(Self, Option<String>), CliError> {
        let fail = |error: std::io::Error| {
            CliError::failed(format!(
                "cannot open the pidfile '{}': {}",
                path.display(),
                rtwisted_persist::describe_io(&error)
            ))
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(fail)?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let pid = read_pid(&mut file).unwrap_or_else(|| "unknown".into());
                return Err(CliError::failed(format!(
                    "another rtwistd is running, PID {pid} (it holds the pidfile '{}'); stop it, or give this one another --pidfile",
                    path.display()
                )));
            }
            Err((_, errno)) => {
                return Err(CliError::failed(format!(
                    "cannot lock the pidfile '{}': {errno}",
                    path.display()
                )));
            }
        };
        let stale = read_pid(&mut file);
        Ok((
            Pidfile {
                file,
                path: path.to_owned(),
            },
            stale,
        ))
    }

    /// The pidfile a predecessor handed over at a hot restart: the same open file, so the
    /// lock it holds is this process's now (flock locks belong to the open file).
    pub fn adopt(fd: std::os::fd::OwnedFd, path: &Path) -> Result<Self, CliError> {
        let file = Flock::lock(File::from(fd), FlockArg::LockExclusiveNonblock).map_err(
            |(_, errno)| {
                CliError::failed(format!(
                    "cannot take over the pidfile '{}': {errno}",
                    path.display()
                ))
            },
        )?;
        Ok(Pidfile {
            file,
            path: path.to_owned(),
        })
    }

    /// The open file, for a successor at a hot restart.
    pub fn handover_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        let file: &File = &self.file;
        file.as_fd()
    }

    /// Writes this process's PID (after daemonizing, so it is the daemon's).
    pub fn write_pid(&mut self) -> Result<(), CliError> {
        let pid = std::process::id();
        let file: &mut File = &mut self.file;
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| file.write_all(format!("{pid}\n").as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(|error| {
                CliError::failed(format!(
                    "cannot write the pidfile '{}': {error}",
                    self.path.display()
                ))
            })
    }

    /// Hands the file to the user and group the daemon will run as, so it can remove the file
    /// at exit. Failure only means a warning then.
    pub fn give_to(&self, (uid, gid): (Option<u32>, Option<u32>)) {
        if uid.is_none() && gid.is_none() {
            return;
        }
        let file: &File = &self.file;
        if let Err(errno) = nix::unistd::fchown(
            file.as_fd(),
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
        ) {
            tracing::warn!("cannot hand the pidfile to uid {uid:?} gid {gid:?}: {errno}");
        }
    }

    /// After a chroot to `root`, the path the file is removed by at exit.
    pub fn chrooted(&mut self, root: &Path) {
        self.path = inside(root, &self.path);
    }

    /// Removes the file; the lock goes with the process.
    pub fn remove(self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!("cannot remove the pidfile {}: {error}", self.path.display());
        }
    }
}

fn read_pid(file: &mut File) -> Option<String> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Where `path` (absolute, from outside) is seen after a chroot to `root`.
pub fn inside(root: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix(root) {
        Ok(rest) => Path::new("/").join(rest),
        Err(_) => path.to_owned(),
    }
}
