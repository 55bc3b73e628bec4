//! The wire between an rtwistd and its successor at a hot restart: one UNIX socket pair.
//!
//! The predecessor starts the successor with one end of the pair inherited (its number in
//! `RTWISTD_HANDOVER_FD`, the predecessor's PID in `RTWISTD_HANDOVER_PARENT`). Then, in order:
//!
//! 1. successor → predecessor: `{"hello":PID}` — it runs, and waits for the tree;
//! 2. predecessor → successor: one JSON line describing what comes (the snapshot's length, the
//!    key of each listening socket and how many descriptors it has), with every descriptor
//!    attached (`SCM_RIGHTS`), then the snapshot's bytes;
//! 3. successor → predecessor: `{"ready":true}` once its services started on those sockets,
//!    or `{"failed":"one line"}`. A successor that dies says nothing: the predecessor sees the
//!    end of the stream.

use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::{Deserialize, Serialize};

/// The variable that gives a successor its end of the pair.
pub const FD_VARIABLE: &str = "RTWISTD_HANDOVER_FD";
/// The variable that names the predecessor, so a stray variable is never trusted.
pub const PARENT_VARIABLE: &str = "RTWISTD_HANDOVER_PARENT";

/// The most descriptors one hand-over carries (sockets, lock files, pidfile, control socket).
const MAX_FDS: usize = 250;

/// What the predecessor sends before the snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The snapshot's length in bytes.
    pub snapshot_bytes: u64,
    /// Each handed-over listening socket: its key and how many descriptors it came with.
    pub sockets: Vec<(String, usize)>,
    /// Whether the control socket's listener follows the sockets' descriptors.
    pub control: bool,
    /// Whether the pidfile's descriptor comes last.
    pub pidfile: bool,
    /// Where the predecessor's tree came from, and how many live changes it saw.
    pub origin: crate::control::status::SnapshotOrigin,
}

/// What a successor received.
#[derive(Debug)]
pub struct Received {
    /// The manifest.
    pub manifest: Manifest,
    /// Each socket's key and descriptors.
    pub sockets: Vec<(String, Vec<OwnedFd>)>,
    /// The control socket's listener.
    pub control: Option<OwnedFd>,
    /// The pidfile, still locked.
    pub pidfile: Option<OwnedFd>,
    /// The running tree, as a plain snapshot.
    pub snapshot: Vec<u8>,
}

/// A hand-over went wrong; the message says where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandoverError(pub String);

fn fail(what: &str, error: impl std::fmt::Display) -> HandoverError {
    HandoverError(format!("{what}: {error}"))
}

/// The predecessor's end of the pair.
#[derive(Debug)]
pub struct Predecessor {
    stream: UnixStream,
}

impl Predecessor {
    /// A new pair: this end, and the end to give the successor (inheritable).
    pub fn pair() -> Result<(Predecessor, OwnedFd), HandoverError> {
        let (ours, theirs) =
            UnixStream::pair().map_err(|error| fail("cannot make the hand-over socket", error))?;
        let theirs = OwnedFd::from(theirs);
        // The successor inherits this one descriptor across exec; every other stays closed.
        nix::fcntl::fcntl(
            &theirs,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .map_err(|errno| fail("cannot pass the hand-over socket on", errno))?;
        Ok((Predecessor { stream: ours }, theirs))
    }

    /// Waits up to `deadline` for the successor's hello; its PID.
    pub fn hello(&mut self, deadline: Duration) -> Result<u32, HandoverError> {
        let line = self.read_line(deadline)?;
        #[derive(Deserialize)]
        struct Hello {
            hello: u32,
        }
        serde_json::from_str::<Hello>(&line)
            .map(|hello| hello.hello)
            .map_err(|_| {
                HandoverError(format!("the new rtwistd said something unexpected: {line}"))
            })
    }

    /// Sends the manifest, the descriptors and the snapshot.
    pub fn send(
        &mut self,
        manifest: &Manifest,
        fds: &[BorrowedFd<'_>],
        snapshot: &[u8],
    ) -> Result<(), HandoverError> {
        if fds.len() > MAX_FDS {
            return Err(HandoverError(format!(
                "{} descriptors to hand over, more than the {MAX_FDS} one message carries",
                fds.len()
            )));
        }
        let mut line = serde_json::to_vec(manifest)
            .map_err(|error| fail("cannot describe the hand-over", error))?;
        line.push(b'\n');
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        let control = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &control };
        let sent = sendmsg::<()>(
            self.stream.as_raw_fd(),
            &[IoSlice::new(&line)],
            cmsgs,
            MsgFlags::empty(),
            None,
        )
        .map_err(|errno| fail("cannot send the sockets to the new rtwistd", errno))?;
        if sent < line.len() {
            self.stream
                .write_all(&line[sent..])
                .map_err(|error| fail("cannot send the hand-over", error))?;
        }
        self.stream
            .write_all(snapshot)
            .map_err(|error| fail("cannot send the running tree to the new rtwistd", error))
    }

    /// Waits up to `deadline` for the successor to say it serves.
    pub fn ready(&mut self, deadline: Duration) -> Result<(), HandoverError> {
        let line = self.read_line(deadline)?;
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            ready: bool,
            #[serde(default)]
            failed: Option<String>,
        }
        match serde_json::from_str::<Answer>(&line) {
            Ok(Answer { ready: true, .. }) => Ok(()),
            Ok(Answer {
                failed: Some(reason),
                ..
            }) => Err(HandoverError(format!("the new rtwistd failed: {reason}"))),
            _ => Err(HandoverError(format!(
                "the new rtwistd said something unexpected: {line}"
            ))),
        }
    }

    fn read_line(&mut self, deadline: Duration) -> Result<String, HandoverError> {
        self.stream
            .set_read_timeout(Some(deadline))
            .map_err(|error| fail("cannot wait for the new rtwistd", error))?;
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match self.stream.read(&mut byte) {
                Ok(0) => {
                    return Err(HandoverError(
                        "the new rtwistd exited before it was ready (its log says why)".to_owned(),
                    ));
                }
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) => line.push(byte[0]),
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(HandoverError(format!(
                        "the new rtwistd was not ready within {:.0}s",
                        deadline.as_secs_f64()
                    )));
                }
                Err(error) => return Err(fail("lost the new rtwistd", error)),
            }
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }
}

/// The successor's end of the pair.
#[derive(Debug)]
pub struct Successor {
    stream: UnixStream,
}

impl Successor {
    /// The end a predecessor passed, if this process was started by one (the variables name
    /// a descriptor and this process's parent). Call it before opening any file.
    pub fn inherited() -> Option<Successor> {
        let fd: RawFd = std::env::var(FD_VARIABLE).ok()?.parse().ok()?;
        let parent: u32 = std::env::var(PARENT_VARIABLE).ok()?.parse().ok()?;
        // The variables stay (changing the environment is unsafe once threads run), but they
        // count only in a direct child of the process they name: programs this process starts
        // later have another parent and ignore them.
        if nix::unistd::getppid().as_raw() != i32::try_from(parent).ok()? || fd < 3 {
            return None;
        }
        // SAFETY: the predecessor (our parent, checked above) passed exactly this descriptor
        // for us, open across exec, and named it in the variables; this is called once, first
        // thing, so nothing else in this process knows or owns that number.
        #[allow(unsafe_code)]
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = nix::fcntl::fcntl(
            &owned,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        Some(Successor {
            stream: UnixStream::from(owned),
        })
    }

    /// Says hello and receives what the predecessor sends.
    pub fn receive(&mut self) -> Result<Received, HandoverError> {
        self.say(&serde_json::json!({ "hello": std::process::id() }))?;
        let mut buffer = vec![0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
        let (read, fds) = {
            let mut iov = [IoSliceMut::new(&mut buffer)];
            let message = recvmsg::<()>(
                self.stream.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(|errno| fail("cannot receive the hand-over", errno))?;
            let mut fds = Vec::new();
            for control in message
                .cmsgs()
                .map_err(|errno| fail("cannot read the hand-over", errno))?
            {
                if let ControlMessageOwned::ScmRights(received) = control {
                    fds.extend(received);
                }
            }
            (message.bytes, fds)
        };
        // SAFETY: the kernel created these descriptors in this process for the message just
        // received; nothing else knows their numbers.
        #[allow(unsafe_code)]
        let mut fds: std::collections::VecDeque<OwnedFd> = fds
            .into_iter()
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .collect();
        let mut reader =
            BufReader::new(std::io::Cursor::new(buffer[..read].to_vec()).chain(&mut self.stream));
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|error| fail("cannot read the hand-over", error))?;
        let manifest: Manifest = serde_json::from_str(&line)
            .map_err(|error| fail("the hand-over is not one this rtwistd reads", error))?;
        let limit = rtwisted_persist::bounds::MAX_SNAPSHOT_BYTES;
        if manifest.snapshot_bytes > limit {
            return Err(HandoverError(format!(
                "the running tree is {} bytes, more than the {limit} a snapshot may have here",
                manifest.snapshot_bytes
            )));
        }
        let mut sockets = Vec::new();
        for (key, count) in &manifest.sockets {
            let mut taken = Vec::new();
            for _ in 0..*count {
                taken.push(fds.pop_front().ok_or_else(|| {
                    HandoverError("descriptors are missing from the hand-over".to_owned())
                })?);
            }
            sockets.push((key.clone(), taken));
        }
        let control = if manifest.control {
            fds.pop_front()
        } else {
            None
        };
        let pidfile = if manifest.pidfile {
            fds.pop_front()
        } else {
            None
        };
        let mut snapshot = Vec::new();
        reader
            .take(manifest.snapshot_bytes)
            .read_to_end(&mut snapshot)
            .map_err(|error| fail("cannot receive the running tree", error))?;
        if snapshot.len() as u64 != manifest.snapshot_bytes {
            return Err(HandoverError(
                "the running tree arrived cut short".to_owned(),
            ));
        }
        Ok(Received {
            manifest,
            sockets,
            control,
            pidfile,
            snapshot,
        })
    }

    /// Tells the predecessor the services run.
    pub fn ready(&mut self) -> Result<(), HandoverError> {
        self.say(&serde_json::json!({ "ready": true }))
    }

    /// Tells the predecessor why this successor gives up.
    pub fn failed(&mut self, reason: &str) {
        let _ = self.say(&serde_json::json!({ "failed": reason }));
    }

    fn say(&mut self, message: &serde_json::Value) -> Result<(), HandoverError> {
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        self.stream
            .write_all(&line)
            .map_err(|error| fail("cannot talk to the old rtwistd", error))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn sockets_and_the_tree_cross_the_pair_and_the_answer_comes_back() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut predecessor = Predecessor { stream: ours };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let successor = std::thread::spawn(move || {
            let mut successor = Successor { stream: theirs };
            let received = successor.receive().unwrap();
            successor.ready().unwrap();
            received
        });
        assert_eq!(
            predecessor.hello(Duration::from_secs(10)).unwrap(),
            std::process::id()
        );
        let manifest = Manifest {
            snapshot_bytes: 5,
            sockets: vec![("tcp:0:interface=127.0.0.1".into(), 1)],
            control: false,
            pidfile: false,
            origin: Default::default(),
        };
        predecessor
            .send(&manifest, &[listener.as_fd()], b"bytes")
            .unwrap();
        predecessor.ready(Duration::from_secs(10)).unwrap();
        let mut received = successor.join().unwrap();
        assert_eq!(received.snapshot, b"bytes");
        let (key, mut fds) = received.sockets.pop().unwrap();
        assert_eq!(key, "tcp:0:interface=127.0.0.1");
        // The descriptor received is the same listening socket.
        drop(listener);
        let adopted = std::net::TcpListener::from(fds.pop().unwrap());
        let client = std::thread::spawn(move || std::net::TcpStream::connect(address).unwrap());
        adopted.accept().unwrap();
        client.join().unwrap();
    }

    #[test]
    fn a_successor_that_goes_away_is_an_error_not_a_hang() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut predecessor = Predecessor { stream: ours };
        drop(theirs);
        let error = predecessor.hello(Duration::from_secs(10)).unwrap_err();
        assert!(
            error.to_string().contains("exited before it was ready"),
            "{error}"
        );
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let mut predecessor = Predecessor { stream: ours };
        let error = predecessor.hello(Duration::from_millis(50)).unwrap_err();
        assert!(error.to_string().contains("not ready within"), "{error}");
    }
}
