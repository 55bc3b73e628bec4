//! The daemon's side of the control socket: accept, check the peer, read a line, hand the
//! request to the main loop, write its reply.
//!
//! The socket is created mode 0600 by the user the daemon runs as; a peer of another uid is
//! refused unless it is root (checked with `SO_PEERCRED`). Requests are answered one at a time
//! by the main loop, which owns the running tree; a connection may send several in turn.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::protocol::{self, MAX_REQUEST_BYTES, Reply, Request};

/// One request for the main loop, with the way back to its client.
#[derive(Debug)]
pub struct Command {
    /// What was asked.
    pub request: Request,
    /// Where the reply goes (dropping it answers with an error).
    pub reply: oneshot::Sender<Reply>,
}

/// The bound control socket; its file is removed when this is dropped.
#[derive(Debug)]
pub struct ControlSocket {
    listener: Option<std::sync::Arc<UnixListener>>,
    /// While serving: the same listener, kept to hand its descriptor to a successor.
    serving: Option<std::sync::Arc<UnixListener>>,
    /// Set while a hot restart runs: a second `restart` is refused at once.
    restarting: std::sync::Arc<std::sync::atomic::AtomicBool>,
    path: PathBuf,
    /// The accept loop, once serving.
    accept: Option<tokio::task::JoinHandle<()>>,
    /// Every client session, so a shutdown can let the last replies reach their clients.
    sessions: tokio_util::task::TaskTracker,
    /// False once the socket was handed to a successor, which keeps using the file.
    remove_on_drop: bool,
}

/// The control socket could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Another daemon answers on the socket.
    #[error(
        "the control socket '{}' is in use by another rtwistd: stop it, or give this one --control PATH",
        .path.display()
    )]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// The socket could not be created.
    #[error("cannot create the control socket '{}': {}", .path.display(), rtwisted_persist::describe_io(.cause))]
    Bind {
        /// The socket.
        path: PathBuf,
        /// Why.
        cause: io::Error,
    },
}

impl ControlSocket {
    /// Binds `path` (mode 0600). A stale socket file nobody answers on is replaced; a live one
    /// is left alone and refused.
    pub fn bind(path: &Path) -> Result<Self, ControlError> {
        let bind_error = |cause| ControlError::Bind {
            path: path.to_owned(),
            cause,
        };
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse {
                    path: path.to_owned(),
                });
            }
            std::fs::remove_file(path).map_err(bind_error)?;
        }
        let listener = UnixListener::bind(path).map_err(bind_error)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(bind_error)?;
        Ok(ControlSocket {
            listener: Some(std::sync::Arc::new(listener)),
            serving: None,
            restarting: Default::default(),
            path: path.to_owned(),
            accept: None,
            sessions: tokio_util::task::TaskTracker::new(),
            remove_on_drop: true,
        })
    }

    /// Adopts an already bound listener (handed over by a predecessor at a hot restart); its
    /// file stays when this is dropped until [`ControlSocket::own_file`].
    pub fn adopt(listener: std::os::unix::net::UnixListener, path: PathBuf) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(ControlSocket {
            listener: Some(std::sync::Arc::new(UnixListener::from_std(listener)?)),
            serving: None,
            restarting: Default::default(),
            path,
            accept: None,
            sessions: tokio_util::task::TaskTracker::new(),
            remove_on_drop: false,
        })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the socket file in place when this is dropped (a successor uses it now).
    pub fn keep_file(&mut self) {
        self.remove_on_drop = false;
    }

    /// Makes an adopted socket's file this process's to remove at the end (a successor that
    /// never served leaves it to its predecessor).
    pub fn own_file(&mut self) {
        self.remove_on_drop = true;
    }

    /// Serves the socket: each request goes to `commands`.
    pub fn serve(&mut self, commands: mpsc::Sender<Command>) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        self.serving = Some(std::sync::Arc::clone(&listener));
        let own_uid = nix::unistd::geteuid().as_raw();
        let sessions = self.sessions.clone();
        let restarting = std::sync::Arc::clone(&self.restarting);
        self.accept = Some(tokio::spawn(accept_loop(
            listener, commands, own_uid, sessions, restarting,
        )));
    }

    /// The listener's descriptor, for a successor at a hot restart.
    pub fn handover_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.serving
            .as_deref()
            .or(self.listener.as_deref())
            .map(AsFd::as_fd)
    }

    /// Marks a hot restart as under way (or over): meanwhile another `restart` is refused.
    pub fn set_restarting(&self, restarting: bool) {
        self.restarting
            .store(restarting, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops accepting, and gives the clients still connected up to `grace` to read their
    /// last replies (the reply to `rtap stop` is sent just before the daemon exits).
    pub async fn shutdown(&mut self, grace: std::time::Duration) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        self.sessions.close();
        let _ = tokio::time::timeout(grace, self.sessions.wait()).await;
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn accept_loop(
    listener: std::sync::Arc<UnixListener>,
    commands: mpsc::Sender<Command>,
    own_uid: u32,
    sessions: tokio_util::task::TaskTracker,
    restarting: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                sessions.spawn(session(
                    stream,
                    commands.clone(),
                    own_uid,
                    std::sync::Arc::clone(&restarting),
                ));
            }
            Err(error) => {
                tracing::warn!("control socket: accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Answers one client's requests until it hangs up (or breaks the protocol beyond repair).
async fn session(
    mut stream: UnixStream,
    commands: mpsc::Sender<Command>,
    own_uid: u32,
    restarting: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let peer = match stream.peer_cred() {
        Ok(peer) => peer.uid(),
        Err(error) => {
            tracing::warn!("control socket: cannot tell who connected: {error}");
            return;
        }
    };
    let mut pending = Vec::new();
    if peer != own_uid && peer != 0 {
        tracing::warn!("control socket: refused a client running as uid {peer}");
        // Its request is read (and ignored) first, so the refusal is what it reads, not a
        // broken pipe.
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            read_line(&mut stream, &mut pending),
        )
        .await;
        refuse(
            &mut stream,
            format!(
                "permission denied: this rtwistd runs as uid {own_uid} and answers only that user and root (you are uid {peer})"
            ),
        )
        .await;
        return;
    }
    loop {
        let line = match read_line(&mut stream, &mut pending).await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(LineError::TooLong) => {
                refuse(
                    &mut stream,
                    format!(
                        "request too large: a request line may have at most {MAX_REQUEST_BYTES} bytes"
                    ),
                )
                .await;
                return;
            }
            Err(LineError::Io(error)) => {
                tracing::debug!("control socket: a client's connection failed: {error}");
                return;
            }
        };
        let reply = match protocol::parse_request(&line) {
            Err(reply) => reply,
            Ok(Request::Restart) if restarting.load(std::sync::atomic::Ordering::SeqCst) => {
                Reply::failure("a restart is already under way; wait for it to end")
            }
            Ok(request) => ask(&commands, request).await,
        };
        if write_reply(&mut stream, &reply).await.is_err() {
            return;
        }
    }
}

/// Hands `request` to the main loop and waits for its answer.
async fn ask(commands: &mpsc::Sender<Command>, request: Request) -> Reply {
    let (reply, answer) = oneshot::channel();
    if commands.send(Command { request, reply }).await.is_err() {
        return Reply::failure("the daemon is shutting down");
    }
    answer
        .await
        .unwrap_or_else(|_| Reply::failure("the daemon is shutting down"))
}

enum LineError {
    TooLong,
    Io(io::Error),
}

/// The next line (without its `\n`), or `None` at the end of the stream.
async fn read_line(
    stream: &mut UnixStream,
    pending: &mut Vec<u8>,
) -> Result<Option<Vec<u8>>, LineError> {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        if let Some(end) = pending.iter().position(|&byte| byte == b'\n') {
            let mut line: Vec<u8> = pending.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
        if pending.len() > MAX_REQUEST_BYTES {
            return Err(LineError::TooLong);
        }
        let read = stream.read(&mut chunk).await.map_err(LineError::Io)?;
        if read == 0 {
            return Ok(None);
        }
        pending.extend_from_slice(&chunk[..read]);
    }
}

/// Writes a failure as the last reply of a session that ends (a failed write changes nothing).
async fn refuse(stream: &mut UnixStream, why: String) {
    let _ = write_reply(stream, &Reply::failure(why)).await;
}

async fn write_reply(stream: &mut UnixStream, reply: &Reply) -> io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line).await
}
