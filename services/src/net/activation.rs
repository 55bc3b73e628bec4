//! systemd socket activation: the listening sockets systemd passes in `LISTEN_FDS` (starting at
//! descriptor 3), adopted by `systemd:` endpoints.
//!
//! The descriptors are taken over once per process, and only if `LISTEN_PID` names this
//! process (as `sd_listen_fds` does). Each one can be adopted by exactly one service; an
//! adopted socket is closed, never shut down, when its service stops (Twisted #5621), so
//! systemd keeps it for the next start.

use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::Mutex;

use crate::strports::{Domain, SystemdSocket};

/// The first descriptor systemd passes.
pub const FIRST_FD: RawFd = 3;

/// An adoption that did not work.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// No socket at that index.
    #[error(
        "systemd passed no socket at index {index} ({passed} passed; is the unit started by its .socket unit, and does LISTEN_PID name this process?)"
    )]
    Missing {
        /// The index asked for.
        index: usize,
        /// How many were passed.
        passed: usize,
    },
    /// Another service already took it.
    #[error("the systemd socket at index {0} is already used by another service")]
    Taken(usize),
    /// The socket has another family, or is not a TCP socket.
    #[error("the systemd socket at index {index} is not {expected}: {detail}")]
    WrongFamily {
        /// The index.
        index: usize,
        /// The family the endpoint asked for.
        expected: &'static str,
        /// What it is instead.
        detail: String,
    },
}

static INHERITED: Mutex<Option<Vec<Option<OwnedFd>>>> = Mutex::new(None);

fn from_environment() -> Vec<Option<OwnedFd>> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse::<RawFd>().ok())
        .filter(|n| *n > 0 && ours)
        .unwrap_or(0);
    (FIRST_FD..FIRST_FD + count)
        .map(|fd| {
            // SAFETY: systemd hands these descriptors to the process named by LISTEN_PID,
            // which was checked above; this table is filled once per process and is the only
            // owner of each descriptor, so no other code closes or reuses them.
            #[allow(unsafe_code)]
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            Some(owned)
        })
        .collect()
}

/// Claims the descriptors systemd passed, if any. Call it before the process opens any file
/// (a runner does it first thing): descriptors opened earlier could take numbers from 3 on
/// when systemd passed fewer than it says. Later calls do nothing.
pub fn claim() -> usize {
    let mut table = INHERITED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    table.get_or_insert_with(from_environment).len()
}

/// An adopted listening socket.
#[derive(Debug)]
pub enum Adopted {
    /// An INET or INET6 stream socket.
    Tcp(TcpListener),
    /// A UNIX stream socket (its file belongs to systemd and stays).
    Unix(UnixListener),
}

/// Takes the listening socket systemd passed at `socket.index` and checks its family with
/// getsockname.
pub fn adopt(socket: &SystemdSocket) -> Result<Adopted, ActivationError> {
    let fd = {
        let mut table = INHERITED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fds = table.get_or_insert_with(from_environment);
        let passed = fds.len();
        match fds.get_mut(socket.index) {
            None => {
                return Err(ActivationError::Missing {
                    index: socket.index,
                    passed,
                });
            }
            Some(slot) => slot.take().ok_or(ActivationError::Taken(socket.index))?,
        }
    };
    let expected = match socket.domain {
        Domain::Inet => "an INET (IPv4) socket",
        Domain::Inet6 => "an INET6 (IPv6) socket",
        Domain::Unix => "a UNIX socket",
    };
    let wrong = |detail: String| ActivationError::WrongFamily {
        index: socket.index,
        expected,
        detail,
    };
    if socket.domain == Domain::Unix {
        let listener = UnixListener::from(fd);
        listener
            .local_addr()
            .map_err(|error| wrong(format!("getsockname says otherwise ({error})")))?;
        return Ok(Adopted::Unix(listener));
    }
    let listener = TcpListener::from(fd);
    let local = listener
        .local_addr()
        .map_err(|error| wrong(format!("it has no inet address ({error})")))?;
    match (socket.domain, local.is_ipv6()) {
        (Domain::Inet, false) | (Domain::Inet6, true) => Ok(Adopted::Tcp(listener)),
        _ => Err(wrong(format!("it is bound to {local}"))),
    }
}
