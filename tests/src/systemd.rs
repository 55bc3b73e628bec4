//! Playing systemd for the binaries: a notify socket that hears `READY=1` and the rest, and
//! socket activation (listening descriptors handed over as 3, 4, ... with `LISTEN_FDS`).

use std::os::fd::RawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::{DEADLINE, Daemon, Scratch, binary};

/// A datagram socket in the scratch folder where a daemon sends its `sd_notify` messages.
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds `notify.sock` in `scratch`; each read waits at most [`DEADLINE`].
    pub fn bind(scratch: &Scratch) -> Self {
        let path = scratch.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(DEADLINE)).unwrap();
        NotifySocket { socket, path }
    }

    /// The socket's path, for `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next message, without its trailing newline.
    pub fn next(&self) -> String {
        let mut buffer = [0u8; 512];
        let n = self.socket.recv(&mut buffer).unwrap();
        String::from_utf8_lossy(buffer[..n].trim_ascii_end()).into_owned()
    }

    /// Starts `rtwistd ARGS` told to notify this socket, with `WATCHDOG_USEC` when
    /// `watchdog_usec` is given.
    pub fn spawn_rtwistd(
        &self,
        scratch: &Scratch,
        watchdog_usec: Option<&str>,
        args: &[&str],
    ) -> Daemon {
        let mut command = scratch.command("rtwistd");
        command.env("NOTIFY_SOCKET", &self.path).args(args);
        if let Some(usec) = watchdog_usec {
            command.env("WATCHDOG_USEC", usec);
        }
        scratch.spawn(&mut command)
    }
}

/// Starts `rtwistd ARGS` as systemd would start a socket-activated unit: `fds` become its
/// descriptors 3, 4, ..., with `LISTEN_PID`, `LISTEN_FDS` and, when given, `LISTEN_FDNAMES`
/// (names joined by `:`). The descriptors must stay open until the daemon has started.
pub fn socket_activated(
    scratch: &Scratch,
    fds: &[RawFd],
    names: Option<&str>,
    args: &[&str],
) -> Daemon {
    use std::os::fd::BorrowedFd;
    use std::os::unix::process::CommandExt;

    let names = names.map_or_else(String::new, |names| format!(" LISTEN_FDNAMES={names}"));
    let script = format!(
        r#"LISTEN_PID=$$ LISTEN_FDS={}{names} exec "$0" "$@""#,
        fds.len()
    );
    let rtwistd = binary("rtwistd");
    let mut command = scratch.command_at(Path::new("/bin/sh"));
    command
        .args(["-c", &script, rtwistd.to_str().unwrap()])
        .args(args);
    assert!(fds.len() <= 16, "at most 16 descriptors");
    let fds = fds.to_vec();
    #[allow(unsafe_code)]
    // SAFETY: between fork and exec only fcntl and dup2 run, which are async-signal-safe, on
    // descriptors that stay open in this process until the child has exec'd; `fds` was
    // allocated before the fork and is only read here.
    unsafe {
        command.pre_exec(move || {
            // Out of the way of 3, 4, ... first, then into place (dup2 clears close-on-exec).
            let mut high = [0; 16];
            for (slot, &fd) in high.iter_mut().zip(&fds) {
                *slot = nix::fcntl::fcntl(
                    BorrowedFd::borrow_raw(fd),
                    nix::fcntl::FcntlArg::F_DUPFD(100),
                )
                .map_err(std::io::Error::from)?;
            }
            for (target, &fd) in (3..).zip(&high[..fds.len()]) {
                let placed = nix::unistd::dup2_raw(BorrowedFd::borrow_raw(fd), target)
                    .map_err(std::io::Error::from)?;
                std::mem::forget(placed);
            }
            Ok(())
        });
    }
    scratch.spawn(&mut command)
}
