//! systemd socket activation: the listening sockets systemd passes in `LISTEN_FDS` (starting at
//! descriptor 3), adopted by `systemd:` endpoints.
//!
//! The descriptors are taken over once per process, and only if `LISTEN_PID` names this
//! process (as `sd_listen_fds` does), with their names from `LISTEN_FDNAMES` (a socket unit's
//! `FileDescriptorName=`). Each one can be adopted by exactly one service; an
//! adopted socket is closed, never shut down, when its service stops (Twisted #5621), so
//! systemd keeps it for the next start.

use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::Mutex;

use crate::strports::{Descriptor, Domain, SystemdSocket};

/// The first descriptor systemd passes.
pub const FIRST_FD: RawFd = 3;

/// An adoption that did not work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// No socket with that name.
    #[error(
        "systemd passed no socket named '{name}' (LISTEN_FDNAMES: {passed}; set FileDescriptorName= in the .socket unit)"
    )]
    MissingName {
        /// The name asked for.
        name: String,
        /// The names passed, or "none".
        passed: String,
    },
    /// Another service already took it.
    #[error("the systemd socket {0} is already used by another service")]
    Taken(Descriptor),
    /// The socket has another family, or is not a TCP socket.
    #[error("the systemd socket {descriptor} is not {expected}: {detail}")]
    WrongFamily {
        /// Which socket.
        descriptor: Descriptor,
        /// The family the endpoint asked for.
        expected: &'static str,
        /// What it is instead.
        detail: String,
    },
}

/// One inherited descriptor (until a service adopts it) and its name.
struct Inherited {
    fd: Option<OwnedFd>,
    name: String,
}

static INHERITED: Mutex<Option<Vec<Inherited>>> = Mutex::new(None);

fn from_environment() -> Vec<Inherited> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse::<RawFd>().ok())
        .filter(|n| *n > 0 && ours)
        .unwrap_or(0);
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    let mut names = names.split(':');
    (FIRST_FD..FIRST_FD + count)
        .map(|fd| {
            // SAFETY: systemd hands these descriptors to the process named by LISTEN_PID,
            // which was checked above; this table is filled once per process and is the only
            // owner of each descriptor, so no other code closes or reuses them.
            #[allow(unsafe_code)]
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            Inherited {
                fd: Some(owned),
                name: names.next().unwrap_or_default().to_owned(),
            }
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

/// Takes the descriptor `wanted` out of the table: by index, or the first not yet adopted of
/// those with the name (so two services naming one `FileDescriptorName` that systemd passed
/// twice get one socket each).
fn take(fds: &mut [Inherited], wanted: &Descriptor) -> Result<OwnedFd, ActivationError> {
    match wanted {
        Descriptor::Index(index) => {
            let passed = fds.len();
            let slot = fds.get_mut(*index).ok_or(ActivationError::Missing {
                index: *index,
                passed,
            })?;
            slot.fd
                .take()
                .ok_or_else(|| ActivationError::Taken(wanted.clone()))
        }
        Descriptor::Name(name) => {
            let mut named = fds.iter_mut().filter(|slot| slot.name == *name).peekable();
            if named.peek().is_none() {
                let names: Vec<&str> = fds.iter().map(|slot| slot.name.as_str()).collect();
                return Err(ActivationError::MissingName {
                    name: name.clone(),
                    passed: if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(":")
                    },
                });
            }
            named
                .find_map(|slot| slot.fd.take())
                .ok_or_else(|| ActivationError::Taken(wanted.clone()))
        }
    }
}

/// Takes the listening socket systemd passed at the endpoint's index (or with its name) and
/// checks its family with getsockname.
pub fn adopt(socket: &SystemdSocket) -> Result<Adopted, ActivationError> {
    let fd = {
        let mut table = INHERITED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        take(
            table.get_or_insert_with(from_environment),
            &socket.descriptor,
        )?
    };
    let expected = match socket.domain {
        Domain::Inet => "an INET (IPv4) socket",
        Domain::Inet6 => "an INET6 (IPv6) socket",
        Domain::Unix => "a UNIX socket",
    };
    let wrong = |detail: String| ActivationError::WrongFamily {
        descriptor: socket.descriptor.clone(),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::fd::AsRawFd;

    use super::*;

    /// Descriptors named as in Twisted's `_parseNameStreamServerTest`.
    fn table(names: &[&str]) -> Vec<Inherited> {
        names
            .iter()
            .map(|name| Inherited {
                fd: Some(OwnedFd::from(std::fs::File::open("/dev/null").unwrap())),
                name: (*name).to_owned(),
            })
            .collect()
    }

    #[test]
    fn a_descriptor_is_found_by_its_name_as_in_twisteds_systemd_tests() {
        let mut fds = table(&["5.socket", "6.socket", "foo", "8.socket", "9.socket"]);
        let foo = fds[2].fd.as_ref().unwrap().as_raw_fd();
        let taken = take(&mut fds, &Descriptor::Name("foo".into())).unwrap();
        assert_eq!(taken.as_raw_fd(), foo);
        let fourth = fds[3].fd.as_ref().unwrap().as_raw_fd();
        assert_eq!(
            take(&mut fds, &Descriptor::Index(3)).unwrap().as_raw_fd(),
            fourth
        );
        assert_eq!(
            take(&mut fds, &Descriptor::Name("foo".into()))
                .unwrap_err()
                .to_string(),
            "the systemd socket named 'foo' is already used by another service"
        );
        assert_eq!(
            take(&mut fds, &Descriptor::Name("web".into()))
                .unwrap_err()
                .to_string(),
            "systemd passed no socket named 'web' (LISTEN_FDNAMES: 5.socket:6.socket:foo:8.socket:9.socket; set FileDescriptorName= in the .socket unit)"
        );
    }

    #[test]
    fn two_services_naming_one_name_passed_twice_get_one_socket_each() {
        let mut fds = table(&["web", "web"]);
        let first = take(&mut fds, &Descriptor::Name("web".into())).unwrap();
        let second = take(&mut fds, &Descriptor::Name("web".into())).unwrap();
        assert_ne!(first.as_raw_fd(), second.as_raw_fd());
        assert!(take(&mut fds, &Descriptor::Name("web".into())).is_err());
        assert!(
            take(&mut [], &Descriptor::Name("web".into()))
                .unwrap_err()
                .to_string()
                .contains("(LISTEN_FDNAMES: none;")
        );
    }
}
