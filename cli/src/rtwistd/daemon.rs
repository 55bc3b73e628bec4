//! Daemonizing: double fork and setsid, stdio to /dev/null, and a status pipe through which
//! the daemon tells the launching process whether it started.
//!
//! This runs before any runtime thread exists: forking a multi-threaded process leaves the
//! child with locks held by threads that are gone.
//!
//! The two parents of the double fork end with `std::process::exit` on purpose, the one place
//! the tools exit outside their entry points: each parent is a copy of the daemon holding the
//! same open files, and returning would run the daemon's destructors in it, which unlock the
//! pidfile (a `flock` is shared by every copy of the descriptor, so the parent's unlock would
//! free the daemon's lock), remove the pidfile, and flush the log. `exit` runs none of them.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use nix::unistd::{ForkResult, dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe, setsid};

use crate::error::{CliError, EXIT_FAILURE, EXIT_OK};

/// The daemon's end of the status pipe.
#[derive(Debug)]
pub struct StatusPipe {
    writer: File,
}

impl StatusPipe {
    /// Every service started: the launching process exits 0.
    pub fn started(mut self) {
        let _ = self.writer.write_all(b"0");
    }

    /// The start failed: the launching process prints `message` and exits 1.
    pub fn failed(mut self, message: &str) {
        let _ = self.writer.write_all(format!("1 {message}").as_bytes());
    }
}

/// Forks into the background, with stdio on `null` (`/dev/null`, opened before any chroot).
/// Returns in the daemon only; the launching process waits for the daemon's status and exits
/// with it, and a failure on the way reaches it through the pipe.
pub fn daemonize(null: File) -> Result<StatusPipe, CliError> {
    let (reader, writer) =
        pipe().map_err(|errno| CliError::failed(format!("cannot make a pipe: {errno}")))?;
    match fork_once()? {
        ForkResult::Parent { .. } => {
            drop(writer);
            std::process::exit(wait_for_status(reader));
        }
        ForkResult::Child => {}
    }
    drop(reader);
    let status = StatusPipe {
        writer: File::from(writer),
    };
    match detach(&null) {
        Ok(()) => Ok(status),
        Err(error) => {
            status.failed(&error.to_string());
            std::process::exit(i32::from(EXIT_FAILURE));
        }
    }
}

fn detach(null: &File) -> Result<(), CliError> {
    setsid().map_err(|errno| CliError::failed(format!("cannot start a session: {errno}")))?;
    match fork_once()? {
        // The session leader leaves, so the daemon can never acquire a terminal.
        ForkResult::Parent { .. } => std::process::exit(0),
        ForkResult::Child => {}
    }
    let fd = null.as_fd();
    dup2_stdin(fd)
        .and_then(|()| dup2_stdout(fd))
        .and_then(|()| dup2_stderr(fd))
        .map_err(|errno| CliError::failed(format!("cannot detach from the terminal: {errno}")))
}

/// Opens `/dev/null` for the daemon's stdio; done before a chroot, which may not have one.
pub fn open_null() -> Result<File, CliError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|error| CliError::failed(format!("cannot open /dev/null: {error}")))
}

#[allow(unsafe_code)]
fn fork_once() -> Result<ForkResult, CliError> {
    // SAFETY: rtwistd forks before it creates any thread (the runtime is built after
    // daemonizing, and nothing earlier spawns threads), so the child is a full copy of a
    // single-threaded process and may run arbitrary code.
    unsafe { fork() }.map_err(|errno| CliError::failed(format!("cannot fork: {errno}")))
}

fn wait_for_status(reader: OwnedFd) -> i32 {
    let mut status = Vec::new();
    let _ = File::from(reader).read_to_end(&mut status);
    let status = String::from_utf8_lossy(&status);
    match status.split_once(' ') {
        _ if status == "0" => i32::from(EXIT_OK),
        Some(("1", message)) => {
            eprintln!("rtwistd: error: {message}");
            i32::from(EXIT_FAILURE)
        }
        _ => {
            eprintln!(
                "rtwistd: error: the daemon exited before it finished starting; see its log file"
            );
            i32::from(EXIT_FAILURE)
        }
    }
}
