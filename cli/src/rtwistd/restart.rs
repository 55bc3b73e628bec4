//! Hot restart, the old process's side: start the rtwistd binary on disk now with the same
//! options, hand it every listening socket and the live state of the tree, and step aside
//! once it serves. If anything fails, the old process resumes and goes on serving.
//!
//! The order keeps the pause short and nothing lost: the successor is started first (it loads
//! its code and logging and waits); only then are the stateful services quiesced (writes wait,
//! they are not refused), the tree snapshotted and sent with the sockets; the successor starts
//! its services on the sockets it got (the kernel's accept queues never closed) and says it is
//! ready. Then the old process stops with [`StopReason::HandedOver`](rtwisted_core::StopReason):
//! it stops accepting, lets open connections finish (a quiesced factory's are cut at once, so
//! their clients come back to the successor), saves nothing, and leaves the pidfile, the control
//! socket and its files to the successor.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rtwisted_core::{Application, Lifecycle, Style};

use super::handover::{FD_VARIABLE, HandoverError, Manifest, PARENT_VARIABLE, Predecessor};
use crate::control::status::SnapshotOrigin;

/// How long the successor may take to say hello (it only has to start).
const HELLO_DEADLINE: Duration = Duration::from_secs(15);
/// How long it may take from receiving the tree to serving.
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// Where and from what binary this rtwistd was launched, remembered at startup: by restart
/// time the binary may have been replaced (an upgrade) and the daemon is in its run folder.
struct Launch {
    program: PathBuf,
    folder: PathBuf,
}

static LAUNCH: OnceLock<Launch> = OnceLock::new();

/// Remembers the binary's path and the launch folder; call first thing in `rtwistd`.
pub(super) fn remember_launch() {
    let program = std::env::current_exe()
        .ok()
        .or_else(|| std::env::args_os().next().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("rtwistd"));
    let folder = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let _ = LAUNCH.set(Launch { program, folder });
}

/// A successor that took over.
#[derive(Debug)]
pub(super) struct Handed {
    /// Its PID.
    pub(super) pid: u32,
    /// From the request to the successor serving, in milliseconds.
    pub(super) millis: f64,
    /// How long the tree was quiesced (no write was taken), in milliseconds.
    pub(super) paused_millis: f64,
}

/// What else goes to the successor besides the services' sockets.
pub(super) struct Extras<'a> {
    /// The control socket's listener.
    pub(super) control: Option<BorrowedFd<'a>>,
    /// The pidfile, locked.
    pub(super) pidfile: Option<BorrowedFd<'a>>,
    /// rtwistd's own listeners besides the control socket (the metrics endpoint), each with
    /// the key its new self asks for: they travel like the services' sockets.
    pub(super) own_sockets: Vec<(String, Vec<BorrowedFd<'a>>)>,
    /// Whether the successor's stderr is read (a daemon's goes to /dev/null, so what a
    /// successor says before its log is open would be lost); else it is inherited.
    pub(super) read_stderr: bool,
    /// Whether this process feeds a systemd watchdog: the successor (the main PID once it
    /// serves) takes over the duty; `WATCHDOG_PID` names this process, so it is not passed.
    pub(super) watchdog: bool,
}

/// The first line a successor wrote on stderr (where a usage error or an early failure goes),
/// read by a thread until the pipe closes.
struct Stderr(Option<std::thread::JoinHandle<String>>);

impl Stderr {
    fn read(child: &mut Child) -> Stderr {
        Stderr(child.stderr.take().and_then(|pipe| {
            std::thread::Builder::new()
                .name("successor-stderr".into())
                .spawn(move || first_line(pipe))
                .ok()
        }))
    }

    /// Waits for the pipe to close (the successor exited) and gives its first line.
    fn first_line(self) -> Option<String> {
        let line = self.0?.join().ok()?;
        (!line.is_empty()).then_some(line)
    }
}

/// The first non-empty line of `pipe` (at most 4 KiB of it); the rest is read and dropped, so
/// the writer never meets a closed pipe.
fn first_line(pipe: impl std::io::Read) -> String {
    use std::io::BufRead;
    let mut first = String::new();
    let mut reader = std::io::BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match std::io::Read::take(&mut reader, 4096).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return first,
            Ok(_) if first.is_empty() => {
                String::from_utf8_lossy(&line).trim().clone_into(&mut first);
            }
            Ok(_) => {}
        }
    }
}

/// Starts the binary at the path this rtwistd was launched from as a successor and hands it the
/// running tree; see the module docs. On failure the tree is resumed (it never stopped) and the
/// successor, if it still runs, killed.
pub(super) async fn hand_over(
    app: &mut Application,
    lifecycle: &Lifecycle,
    origin: &SnapshotOrigin,
    extras: Extras<'_>,
) -> Result<Handed, String> {
    let began = Instant::now();
    let launch = LAUNCH.get_or_init(|| Launch {
        program: PathBuf::from("rtwistd"),
        folder: PathBuf::from("/"),
    });
    let (predecessor, theirs) = Predecessor::pair().map_err(|error| error.to_string())?;
    let mut child = spawn(
        &launch.program,
        &launch.folder,
        theirs.as_fd(),
        (extras.read_stderr, extras.watchdog),
    )?;
    drop(theirs);
    let stderr = Stderr::read(&mut child);
    let waited = tokio::task::spawn_blocking(move || {
        let mut predecessor = predecessor;
        predecessor
            .hello(HELLO_DEADLINE)
            .map(|pid| (predecessor, pid))
    })
    .await;
    let (predecessor, pid) = match flatten(waited) {
        Ok(hello) => hello,
        Err(error) => return Err(give_up(&mut child, stderr, error)),
    };
    tracing::info!("restart: the new rtwistd (PID {pid}) waits for the tree");
    if let Err(error) = lifecycle.quiesce(app.services_mut()).await {
        return Err(give_up(
            &mut child,
            stderr,
            HandoverError(error.to_string()),
        ));
    }
    let paused = Instant::now();
    let sent = send(app, lifecycle, origin, extras, predecessor).await;
    match sent {
        Ok(()) => {
            let handed = Handed {
                pid,
                millis: began.elapsed().as_secs_f64() * 1000.0,
                paused_millis: paused.elapsed().as_secs_f64() * 1000.0,
            };
            // The successor outlives this process; its status is its own business now.
            drop(child);
            Ok(handed)
        }
        Err(error) => {
            lifecycle.resume(app.services_mut()).await;
            Err(give_up(&mut child, stderr, error))
        }
    }
}

/// Snapshots the quiesced tree, sends it with every descriptor, and waits for "ready".
async fn send(
    app: &Application,
    lifecycle: &Lifecycle,
    origin: &SnapshotOrigin,
    extras: Extras<'_>,
    predecessor: Predecessor,
) -> Result<(), HandoverError> {
    let (snapshot, _) = rtwisted_persist::encode(app, Style::Tap)
        .map_err(|error| HandoverError(format!("cannot snapshot the running tree: {error}")))?;
    let sockets = lifecycle.handover_sockets(app.services());
    let mut fds: Vec<std::os::fd::OwnedFd> = Vec::new();
    let mut keys = Vec::new();
    let duplicate = |fd: &BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map_err(|error| HandoverError(format!("cannot pass a socket on: {error}")))
    };
    let every = sockets
        .iter()
        .map(|socket| (&socket.key, &socket.fds))
        .chain(extras.own_sockets.iter().map(|(key, fds)| (key, fds)));
    for (key, socket_fds) in every {
        keys.push((key.clone(), socket_fds.len()));
        for fd in socket_fds {
            fds.push(duplicate(fd)?);
        }
    }
    if let Some(fd) = &extras.control {
        fds.push(duplicate(fd)?);
    }
    if let Some(fd) = &extras.pidfile {
        fds.push(duplicate(fd)?);
    }
    let manifest = Manifest {
        snapshot_bytes: snapshot.len() as u64,
        sockets: keys,
        control: extras.control.is_some(),
        pidfile: extras.pidfile.is_some(),
        origin: origin.clone(),
    };
    let sent = tokio::task::spawn_blocking(move || {
        let mut predecessor = predecessor;
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
        predecessor.send(&manifest, &borrowed, &snapshot)?;
        predecessor.ready(READY_DEADLINE)
    })
    .await;
    flatten(sent)
}

fn flatten<T>(
    joined: Result<Result<T, HandoverError>, tokio::task::JoinError>,
) -> Result<T, HandoverError> {
    joined.map_err(|error| HandoverError(format!("the hand-over task failed: {error}")))?
}

/// The same rtwistd command line, with the hand-over socket inherited.
fn spawn(
    program: &Path,
    folder: &Path,
    theirs: BorrowedFd<'_>,
    (read_stderr, watchdog): (bool, bool),
) -> Result<Child, String> {
    use std::os::fd::AsRawFd;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut command = Command::new(program);
    command.env_remove("WATCHDOG_PID");
    if !watchdog {
        command.env_remove("WATCHDOG_USEC");
    }
    command
        .args(&args)
        .current_dir(folder)
        .env(FD_VARIABLE, theirs.as_raw_fd().to_string())
        .env(PARENT_VARIABLE, std::process::id().to_string())
        .stdin(Stdio::null())
        .stderr(if read_stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .spawn()
        .map_err(|error| {
            format!(
                "cannot start the new rtwistd '{}': {}",
                program.display(),
                rtwisted_persist::describe_io(&error)
            )
        })
}

/// Kills and reaps a successor that did not take over; returns the one-line reason, with the
/// first thing it said on stderr when that was read.
fn give_up(child: &mut Child, stderr: Stderr, error: HandoverError) -> String {
    let _ = child.kill();
    let _ = child.wait();
    let reason = match stderr.first_line() {
        Some(said) if !error.0.contains(&said) => format!("{error}; it said: {said}"),
        _ => error.to_string(),
    };
    tracing::error!("restart failed, this rtwistd goes on serving: {reason}");
    reason
}
