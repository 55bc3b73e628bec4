//! One run of `rtwistd`, in the order twistd established: load -> log -> pidfile -> chroot,
//! rundir, umask -> daemonize -> pid -> runtime -> privileged start -> privilege drop -> start
//! -> ready -> serve -> stop -> shutdown save -> pidfile removed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sys::stat::{Mode, umask};
use rtwisted_core::{Application, Lifecycle, StopReason};
use rtwisted_persist::Key;
use rtwisted_persist::lock::HeldMark;
use tokio::signal::unix::{SignalKind, signal};

use super::daemon::{self, StatusPipe};
use super::handover::{Received, Successor};
use super::live;
use super::options::Options;
use super::origin::{self, Origin};
use super::pidfile::{self, Pidfile};
use super::privileges;
use super::restart;
use super::saves::Saver;
use super::writable;
use crate::control::protocol::{Reply, Request};
use crate::control::server::{Command, ControlSocket};
use crate::error::CliError;
use crate::logging::{self, LogFile, LogTarget};
use crate::snapshots::Access;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Stopped (and saved); the pidfile and the control socket go away.
    Stopped,
    /// Handed over to a successor, which owns the pidfile, the sockets and the holds now.
    HandedOver,
}

/// What a successor received from its predecessor at a hot restart.
struct Taking {
    successor: Successor,
    received: Received,
}

/// Runs the application the options describe, until a signal stops it.
pub fn run(options: Options) -> Result<(), CliError> {
    restart::remember_launch();
    // A successor at a hot restart receives its tree and sockets before anything else.
    let mut taking = match Successor::inherited() {
        None => None,
        Some(mut successor) => match successor.receive() {
            Ok(received) => Some(Taking {
                successor,
                received,
            }),
            Err(error) => {
                successor.failed(&error.to_string());
                return Err(CliError::failed(error.to_string()));
            }
        },
    };
    // The pidfile comes first (as twistd's checkPID): a refused second start touches nothing.
    let handed_pidfile = taking
        .as_mut()
        .and_then(|taking| taking.received.pidfile.take());
    let (mut pidfile, stale) = match (options.pidfile.as_deref(), handed_pidfile) {
        (Some(path), Some(fd)) => (Some(Pidfile::adopt(fd, path)?), None),
        (Some(path), None) => {
            let (pidfile, stale) = Pidfile::acquire(path)?;
            (Some(pidfile), stale)
        }
        (None, _) => (None, None),
    };
    let (result, abandoned) = run_holding(&options, pidfile.as_mut(), stale, taking);
    // Reached by the daemon (or a foreground run) only: the launching process exits inside
    // daemonize, leaving the file and its lock to the daemon. After a hand-over the pidfile is
    // the successor's; a successor that never served leaves it to its predecessor.
    if let Some(pidfile) = pidfile
        && !matches!(result, Ok(Ended::HandedOver))
        && !abandoned
    {
        pidfile.remove();
    }
    result.map(drop)
}

fn run_holding(
    options: &Options,
    pidfile: Option<&mut Pidfile>,
    stale: Option<String>,
    mut taking: Option<Taking>,
) -> (Result<Ended, CliError>, bool) {
    let result = run_taking(options, pidfile, stale, &mut taking);
    // A successor that still holds its hand-over never served (see `serve`): its failure goes
    // back to the predecessor, which resumes and keeps the pidfile, the holds and the sockets.
    let abandoned = taking.is_some();
    if let (Err(error), Some(taking)) = (&result, taking.as_mut()) {
        taking.successor.failed(&error.to_string());
    }
    (result, abandoned)
}

fn run_taking(
    options: &Options,
    mut pidfile: Option<&mut Pidfile>,
    stale: Option<String>,
    taking: &mut Option<Taking>,
) -> Result<Ended, CliError> {
    let log_file = logging::init(
        &options.log,
        options.log_format,
        options.log_max_size,
        options.log_keep,
    )?;
    tracing::info!("rtwistd {} starting up", env!("CARGO_PKG_VERSION"));
    if let (Some(stale), Some(path)) = (stale, &options.pidfile) {
        tracing::warn!(
            "Took over stale pidfile {} (PID {stale} no longer holds it)",
            path.display()
        );
    }
    let access = Access {
        passphrase: options.passphrase.clone(),
        limits: options.limits,
    };
    let origin::Loaded {
        mut app,
        key,
        origin,
    } = origin::load(
        &options.source,
        options.store.as_deref(),
        &access,
        options.resume,
        &save_folder(options)?,
    )?;
    if let Some(taking) = taking.as_ref() {
        // The snapshot loaded above names where the run's saves go on (its lineage); the tree
        // that runs is the predecessor's, live state and all.
        let options = access.load_options(None, rtwisted_persist::view::Detail::Everything);
        app = rtwisted_persist::decode_as(&taking.received.snapshot, &options)
            .map_err(|error| {
                CliError::failed(format!(
                    "the running tree handed over does not load here: {error}"
                ))
            })?
            .app;
        tracing::info!(
            "Took over the running {} from PID {} (a hot restart)",
            app.name(),
            nix::unistd::getppid()
        );
    }
    let ids = privileges::resolve(options.uid, options.gid, app.process())?;
    // Taken before daemonizing, so a refusal reaches the shell; the locks go with the forks.
    let marks = hold_files(&origin);
    if let Origin::Store { dir, entry, .. } = &origin
        && taking.is_none()
    {
        access
            .open_store(dir, false)?
            .check_not_held(&entry.app, false)?;
    }
    // A successor is detached already (its predecessor was), and inside its run folder.
    let null = if options.nodaemon || taking.is_some() {
        None
    } else {
        Some(daemon::open_null()?)
    };
    // A successor starts in the launch folder (its paths are the command line's) and enters
    // the run folder like its predecessor did; a restart in a chroot is refused before.
    enter_environment(options, &app, pidfile.as_deref_mut(), log_file.as_deref())?;
    let mut status = null.map(daemon::daemonize).transpose()?;
    // From here on a failure is also sent to the launching shell through the status pipe.
    let run = Run {
        app,
        key,
        origin,
        marks,
        access,
    };
    let result = daemon_body(run, options, ids, pidfile, &mut status, log_file, taking);
    if let Err(error) = &result {
        tracing::error!("{error}");
        if let Some(status) = status.take() {
            status.failed(&error.to_string());
        }
    }
    result
}

/// Where the run's shutdown and checkpoint snapshots go, seen from outside any chroot: the run
/// folder, absolute.
fn save_folder(options: &Options) -> Result<PathBuf, CliError> {
    let resolve = |path: &Path| {
        std::path::absolute(path)
            // `./x` and `.`: no `.` left in the path, so it names the folder as cwd does.
            .map(|path| {
                path.components()
                    .filter(|part| !matches!(part, std::path::Component::CurDir))
                    .collect::<PathBuf>()
            })
            .map_err(|error| {
                CliError::failed(format!(
                    "cannot resolve the path '{}': {error}",
                    path.display()
                ))
            })
    };
    match &options.chroot {
        None => resolve(&options.rundir),
        Some(root) => {
            let inside = options.rundir.strip_prefix("/").unwrap_or(&options.rundir);
            Ok(root.join(if inside == Path::new(".") {
                Path::new("")
            } else {
                inside
            }))
        }
    }
}

/// Marks the snapshot files the run comes from as held: the file given, and the one loaded
/// (with `--resume`, a newer one). A mark that cannot be made (a read-only folder) only warns:
/// it guards against edits, and nobody can edit there either.
fn hold_files(origin: &Origin) -> Vec<HeldMark> {
    let Origin::File { base, loaded, .. } = origin else {
        return Vec::new();
    };
    let mut paths = vec![base.clone()];
    if loaded != base {
        paths.push(loaded.clone());
    }
    let mut marks = Vec::new();
    for path in paths {
        let path = std::path::absolute(&path).unwrap_or(path);
        match HeldMark::acquire(&path) {
            Ok(mark) => marks.push(mark),
            Err(error) => tracing::warn!("{error}: edits of it are not refused while this runs"),
        }
    }
    marks
}

/// What a run holds between its load and its end.
struct Run {
    app: Application,
    key: Option<Key>,
    origin: Origin,
    marks: Vec<HeldMark>,
    access: Access,
}

/// chroot, rundir and umask, before daemonizing (twistd's `setupEnvironment`).
fn enter_environment(
    options: &Options,
    app: &Application,
    pidfile: Option<&mut Pidfile>,
    log_file: Option<&LogFile>,
) -> Result<(), CliError> {
    let mut rundir = options.rundir.clone();
    if let Some(root) = &options.chroot {
        privileges::chroot(root)?;
        if let Some(pidfile) = pidfile {
            pidfile.chrooted(root);
        }
        if let (Some(file), LogTarget::File(path)) = (log_file, &options.log) {
            file.set_path(pidfile::inside(root, path));
        }
        if rundir == Path::new(".") {
            rundir = PathBuf::from("/");
        }
    }
    std::env::set_current_dir(&rundir).map_err(|error| {
        CliError::failed(format!(
            "cannot change to the run folder '{}': {}",
            rundir.display(),
            rtwisted_persist::describe_io(&error)
        ))
    })?;
    let mask = options
        .umask
        .or(app.process().umask)
        .or((!options.nodaemon).then_some(0o077));
    if let Some(mask) = mask {
        umask(Mode::from_bits_truncate(mask));
    }
    Ok(())
}

fn daemon_body(
    mut run: Run,
    options: &Options,
    ids: (Option<u32>, Option<u32>),
    pidfile: Option<&mut Pidfile>,
    status: &mut Option<StatusPipe>,
    log_file: Option<Arc<LogFile>>,
    taking: &mut Option<Taking>,
) -> Result<Ended, CliError> {
    for mark in &mut run.marks {
        if let Err(error) = mark.record_pid() {
            tracing::warn!("{error}");
        }
    }
    // The store's hold names this process: the daemon, after daemonizing (a successor takes
    // it over from its predecessor once it serves).
    let held_store = match &run.origin {
        Origin::Store { dir, entry, .. } if taking.is_none() => {
            let store = run.access.open_store(dir, false)?;
            store.hold(&entry.app, Some(entry.number))?;
            Some((dir.clone(), entry.app.clone()))
        }
        Origin::Store { dir, entry, .. } => Some((dir.clone(), entry.app.clone())),
        _ => None,
    };
    let result = daemon_runtime(run, options, ids, pidfile, status, log_file, taking);
    // After a hand-over the successor holds the store's record (under its PID); a successor
    // that never served did not touch it.
    if let Some((dir, app)) = held_store
        && !matches!(result, Ok(Ended::HandedOver))
        && taking.is_none()
    {
        let released = Access::default()
            .open_store(&dir, false)
            .and_then(|store| store.release(&app).map_err(CliError::from));
        if let Err(error) = released {
            tracing::warn!("cannot release the hold on {app} in the store: {error}");
        }
    }
    result
}

fn daemon_runtime(
    run: Run,
    options: &Options,
    ids: (Option<u32>, Option<u32>),
    pidfile: Option<&mut Pidfile>,
    status: &mut Option<StatusPipe>,
    log_file: Option<Arc<LogFile>>,
    taking: &mut Option<Taking>,
) -> Result<Ended, CliError> {
    let app = &run.app;
    let mut pidfile = pidfile;
    if let Some(pidfile) = pidfile.as_deref_mut()
        && taking.is_none()
    {
        // A successor writes its PID once it serves (see `serve`).
        pidfile.write_pid()?;
        // The daemon removes its pidfile after dropping privileges; in a sticky folder such
        // as /tmp only the file's owner may.
        pidfile.give_to(ids);
    }
    set_process_name(app);
    // The runtime (and its threads) exists only from here on, after daemonizing.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::failed(format!("cannot start the runtime: {error}")))?;
    let result = runtime.block_on(serve(run, options, ids, status, log_file, pidfile, taking));
    if matches!(result, Err(CliError::Forced)) {
        // A service may still be stuck in its stop: leave without waiting for it.
        runtime.shutdown_background();
    }
    result
}

fn set_process_name(app: &Application) {
    if let Some(name) = &app.process().process_name {
        match std::ffi::CString::new(name.as_bytes()) {
            Ok(name) => {
                if let Err(errno) = nix::sys::prctl::set_name(&name) {
                    tracing::warn!("cannot set the process name: {errno}");
                }
            }
            Err(_) => tracing::warn!("the process name contains a NUL byte; left unchanged"),
        }
    }
}

/// Serves until a stop signal (or `rtap stop`), then stops and saves; [`CliError::Forced`] when
/// a second signal cut the stop short.
async fn serve(
    run: Run,
    options: &Options,
    (uid, gid): (Option<u32>, Option<u32>),
    status: &mut Option<StatusPipe>,
    log_file: Option<Arc<LogFile>>,
    pidfile: Option<&mut Pidfile>,
    taking: &mut Option<Taking>,
) -> Result<Ended, CliError> {
    let Run {
        mut app,
        key,
        origin,
        marks: _marks,
        access,
    } = run;
    let signal_error =
        |error: std::io::Error| CliError::failed(format!("cannot handle signals: {error}"));
    // Handlers go in before the start, so a signal that arrives while services start is kept
    // and answered with a clean stop, and SIGHUP/SIGUSR1 never kill the daemon.
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(signal_error)?;
    let mut user1 = signal(SignalKind::user_defined1()).map_err(signal_error)?;
    let mut user2 = signal(SignalKind::user_defined2()).map_err(signal_error)?;

    // TimerService(N, Checkpoint()) in the tree asks for checkpoints through this channel.
    let (checkpoint_requester, requests) = rtwisted_core::context::checkpoint_channel();
    let inherited = rtwisted_core::context::Inherited::default();
    // A successor keeps its hand-over (`taking`) until it serves: until then a failure is
    // reported to the predecessor, which keeps everything shared.
    let (handed_control, handed_origin) = match taking.as_mut() {
        None => (None, None),
        Some(Taking { received, .. }) => {
            for (key, fds) in std::mem::take(&mut received.sockets) {
                inherited.insert(key, fds);
            }
            (
                received.control.take(),
                Some(received.manifest.origin.clone()),
            )
        }
    };
    let lifecycle = Lifecycle::new(options.stop_timeout)
        .with_checkpoints(checkpoint_requester)
        .with_inherited(inherited.clone());
    if let Err(error) = lifecycle.privileged_start(app.services_mut()).await {
        return Err(CliError::failed(error.to_string()));
    }
    // Sockets the predecessor had that this tree does not use are closed now.
    inherited.clear();
    // The control socket is made like a privileged resource: before the drop (so a run folder
    // only root may write is fine), then handed to the user the daemon runs as.
    let mut control = match adopt_or_open_control(options, &app, (uid, gid), handed_control) {
        Ok(control) => control,
        Err(error) => {
            let _ = lifecycle
                .stop(app.services_mut(), StopReason::Rollback)
                .await;
            return Err(error);
        }
    };
    // A successor runs as its predecessor ran: privileges were dropped before it was born.
    let dropped = if taking.is_some() {
        privileges::check_running_as(uid, gid)
    } else {
        privileges::drop_to(uid, gid)
    };
    if let Err(error) = dropped {
        // Nothing stays half-started: release what the privileged start acquired.
        let _ = lifecycle
            .stop(app.services_mut(), StopReason::Rollback)
            .await;
        return Err(error);
    }
    if let Err(error) = check_saves_possible(options, &app, &access) {
        let _ = lifecycle
            .stop(app.services_mut(), StopReason::Rollback)
            .await;
        return Err(error);
    }
    let mut saver = Saver::new(&origin, key, options.limits, options.store.as_deref());
    if let Err(error) = lifecycle.start(app.services_mut()).await {
        return Err(CliError::failed(error.to_string()));
    }
    let services = count(app.services());
    tracing::info!(
        "{} is running ({services} service{}); waiting for SIGTERM or SIGINT",
        app.name(),
        if services == 1 { "" } else { "s" }
    );
    let mut facts = live::Facts::new(handed_origin.unwrap_or_else(|| origin.describe()));
    let (control_commands, mut control_requests) = tokio::sync::mpsc::channel(16);
    if let Some(socket) = control.as_mut() {
        socket.serve(control_commands.clone());
        tracing::info!("control socket at {}", socket.path().display());
    }
    drop(control_commands);
    if let Some(status) = status.take() {
        status.started();
    }
    if let Some(Taking { successor, .. }) = taking.as_mut() {
        // From here on this is the daemon: the pidfile, the store's hold and the control
        // socket's file become this process's just before it says so, so whoever hears of
        // the restart finds them new. (If the predecessor gave up meanwhile, it writes its
        // PID back.)
        became_the_daemon(
            options,
            &origin,
            &access,
            pidfile.as_deref(),
            control.as_mut(),
            successor.predecessor(),
        );
        successor
            .ready()
            .map_err(|error| CliError::failed(error.to_string()))?;
        *taking = None;
        notify_systemd(sd_notify::NotifyState::MainPid(std::process::id()));
    }
    notify_systemd(sd_notify::NotifyState::Ready);

    let mut checkpoints = options.checkpoint_every.map(|period| {
        let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer
    });
    // systemd's watchdog, when the unit asks for one: kept alive from this loop, so a daemon
    // whose main loop hangs is noticed.
    let mut watchdog = watchdog_interval().map(tokio::time::interval);
    notify_status(&app, &facts);
    let mut stop_reply = None;
    let mut handed_over = None;
    let received = loop {
        let next_checkpoint = async {
            match checkpoints.as_mut() {
                Some(timer) => timer.tick().await,
                None => std::future::pending().await,
            }
        };
        let next_watchdog = async {
            match watchdog.as_mut() {
                Some(timer) => timer.tick().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            _ = hangup.recv() => reopen(log_file.as_deref(), "SIGHUP"),
            _ = user1.recv() => reopen(log_file.as_deref(), "SIGUSR1"),
            _ = next_watchdog => notify_systemd(sd_notify::NotifyState::Watchdog),
            _ = user2.recv() => {
                facts.last_checkpoint = Some(saver.checkpoint(&app, "SIGUSR2"));
                notify_status(&app, &facts);
            }
            _ = next_checkpoint => {
                facts.last_checkpoint = Some(saver.checkpoint(&app, "timer"));
                notify_status(&app, &facts);
            }
            () = requests.requested() => {
                facts.last_checkpoint = Some(saver.checkpoint(&app, "Checkpoint task"));
                notify_status(&app, &facts);
            }
            Some(command) = control_requests.recv() => {
                let Command { request, reply } = command;
                match request {
                    Request::Stop => {
                        stop_reply = Some(reply);
                        break "rtap stop";
                    }
                    Request::Restart => {
                        notify_systemd(sd_notify::NotifyState::Reloading);
                        match restart_now(&mut app, &lifecycle, &facts, options, control.as_ref(), pidfile.as_deref()).await {
                            Ok(handed) => {
                                let _ = reply.send(Reply::success(serde_json::json!({
                                    "pid": handed.pid,
                                    "millis": handed.millis,
                                    "paused_millis": handed.paused_millis,
                                    "old_pid": std::process::id(),
                                })));
                                handed_over = Some(handed);
                                break "rtap restart";
                            }
                            Err(error) => {
                                notify_systemd(sd_notify::NotifyState::Ready);
                                let _ = reply.send(Reply::failure(format!("the restart failed, and this rtwistd goes on serving: {error}")));
                            }
                        }
                    }
                    Request::Status => {
                        let _ = reply.send(Reply::success(live::status(&app, &facts)));
                    }
                    Request::Snapshot => {
                        let _ = reply.send(match live::snapshot(&app) {
                            Ok(result) => Reply::success(result),
                            Err(error) => Reply::failure(error),
                        });
                    }
                    Request::Checkpoint => {
                        let record = saver.checkpoint(&app, "rtap checkpoint");
                        let answer = match &record.error {
                            None => Reply::success(serde_json::to_value(&record).unwrap_or_default()),
                            Some(error) => Reply::failure(format!("the checkpoint failed: {error}")),
                        };
                        facts.last_checkpoint = Some(record);
                        notify_status(&app, &facts);
                        let _ = reply.send(answer);
                    }
                    request if live::is_change(&request) => {
                        notify_systemd(sd_notify::NotifyState::Reloading);
                        let answer = match live::change(&mut app, &lifecycle, request).await {
                            Ok(mut result) => {
                                facts.origin.changes += 1;
                                // A live change is kept at once, as a checkpoint is.
                                let record = saver.checkpoint(&app, "live change");
                                result["saved"] = serde_json::to_value(&record).unwrap_or_default();
                                facts.last_checkpoint = Some(record);
                                Reply::success(result)
                            }
                            Err(error) => Reply::failure(error),
                        };
                        notify_systemd(sd_notify::NotifyState::Ready);
                        notify_status(&app, &facts);
                        let _ = reply.send(answer);
                    }
                    _ => {
                        let _ = reply.send(Reply::failure("this rtwistd cannot do that yet"));
                    }
                }
            }
        }
    };
    drop(requests);
    // Requests that come during the stop are answered at once: the daemon is shutting down.
    drop(control_requests);
    let first_signal = tokio::time::Instant::now();
    if let Some(handed) = &handed_over {
        tracing::info!(
            "Handed over to PID {} in {:.1}ms; letting open connections finish.",
            handed.pid,
            handed.millis
        );
        if let Some(socket) = control.as_mut() {
            // The successor answers on it now; the file is its.
            socket.keep_file();
            socket.shutdown(std::time::Duration::from_secs(2)).await;
        }
        drop(control.take());
        let stopped = lifecycle
            .stop(app.services_mut(), StopReason::HandedOver)
            .await;
        if let Err(error) = &stopped {
            for failure in &error.failures {
                tracing::warn!("{failure}");
            }
        }
        tracing::info!("Stepped aside for PID {}.", handed.pid);
        return Ok(Ended::HandedOver);
    }
    tracing::info!("Received {received}, shutting down.");
    notify_systemd(sd_notify::NotifyState::Stopping);
    let forced = second_signal(terminate, interrupt, first_signal);

    let stop_and_save = async {
        let stopped = lifecycle
            .stop(app.services_mut(), StopReason::Shutdown)
            .await;
        if let Err(error) = &stopped {
            for failure in &error.failures {
                tracing::warn!("{failure}");
            }
        }
        let saved = if options.save {
            saver.shutdown(&app).map(Some)
        } else if let Some(failure) = saver.last_failure() {
            // No shutdown save follows: the state since the last good checkpoint is gone.
            Err(CliError::failed(format!(
                "the last checkpoint failed, so the state since the one before it is lost: {failure}"
            )))
        } else {
            Ok(None)
        };
        if let Some(reply) = stop_reply.take() {
            let _ = reply.send(match &saved {
                Ok(to) => Reply::success(serde_json::json!({ "saved": to })),
                Err(error) => Reply::failure(format!("stopped, but {error}")),
            });
        }
        if let Some(socket) = control.as_mut() {
            socket.shutdown(std::time::Duration::from_secs(2)).await;
        }
        saved?;
        drop(control.take());
        tracing::info!("Server Shut Down.");
        stopped
            .map(|()| Ended::Stopped)
            .map_err(|error| CliError::failed(format!("the stop was not clean: {error}")))
    };
    tokio::select! {
        result = stop_and_save => result,
        () = forced => {
            tracing::warn!("{}", CliError::Forced);
            Err(CliError::Forced)
        }
    }
}

/// Resolves at the first SIGTERM or SIGINT that comes 50 ms or more after the one that started
/// the stop. Closer ones are the same request sent twice (`timeout` signals the process and
/// its group), so the graceful stop and its save still happen.
async fn second_signal(
    mut terminate: tokio::signal::unix::Signal,
    mut interrupt: tokio::signal::unix::Signal,
    first: tokio::time::Instant,
) {
    const SAME_REQUEST: std::time::Duration = std::time::Duration::from_millis(50);
    loop {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        if first.elapsed() >= SAME_REQUEST {
            return;
        }
        tracing::debug!("a second stop signal within 50 ms of the first: the same request");
    }
}

fn reopen(log_file: Option<&LogFile>, signal: &str) {
    match log_file {
        Some(file) => match file.reopen() {
            Ok(()) => tracing::info!("Received {signal}, reopened the log file."),
            Err(error) => tracing::warn!("Received {signal}, cannot reopen the log file: {error}"),
        },
        None => tracing::info!("Received {signal}; not logging to a file, nothing to reopen."),
    }
}

/// What a successor does once it serves, taking its predecessor's place: its PID in the
/// pidfile, the store's hold in its name, the control socket's file its own, and stdio off the
/// pipe its predecessor read. A failure here is logged: the service runs either way.
fn became_the_daemon(
    options: &Options,
    origin: &Origin,
    access: &Access,
    pidfile: Option<&Pidfile>,
    control: Option<&mut ControlSocket>,
    predecessor: u32,
) {
    if let Some(pidfile) = pidfile
        && let Err(error) = pidfile.write_pid()
    {
        tracing::warn!("{error}");
    }
    if let Origin::Store { dir, entry, .. } = origin {
        let held = access.open_store(dir, false).and_then(|store| {
            store
                .take_over_hold(&entry.app, Some(entry.number), predecessor)
                .map_err(CliError::from)
        });
        if let Err(error) = held {
            tracing::warn!(
                "cannot take over the hold on {} in the store: {error}",
                entry.app
            );
        }
    }
    if let Some(control) = control {
        control.own_file();
    }
    if !options.nodaemon
        && let Err(error) = daemon::silence_output()
    {
        tracing::warn!("{error}");
    }
}

/// Starts a successor and hands the running tree over (see [`restart`]); refused where a
/// successor could not take over.
async fn restart_now(
    app: &mut Application,
    lifecycle: &Lifecycle,
    facts: &live::Facts,
    options: &Options,
    control: Option<&ControlSocket>,
    pidfile: Option<&Pidfile>,
) -> Result<restart::Handed, String> {
    if options.chroot.is_some() {
        return Err(
            "a daemon in a chroot cannot start the binary outside it: stop it and start it again"
                .to_owned(),
        );
    }
    if let Some(socket) = control {
        socket.set_restarting(true);
    }
    let extras = restart::Extras {
        control: control.and_then(ControlSocket::handover_fd),
        pidfile: pidfile.map(Pidfile::handover_fd),
        read_stderr: !options.nodaemon,
        watchdog: watchdog_interval().is_some(),
    };
    let result = restart::hand_over(app, lifecycle, &facts.origin, extras).await;
    if result.is_err() {
        // A successor that failed late may have written its PID already.
        if let Some(pidfile) = pidfile
            && let Err(error) = pidfile.write_pid()
        {
            tracing::warn!("{error}");
        }
        if let Some(socket) = control {
            socket.set_restarting(false);
        }
    }
    result
}

/// The control socket a predecessor handed over, or a new one.
fn adopt_or_open_control(
    options: &Options,
    app: &Application,
    ids: (Option<u32>, Option<u32>),
    handed: Option<std::os::fd::OwnedFd>,
) -> Result<Option<ControlSocket>, CliError> {
    let Some(fd) = handed else {
        return open_control(options, app, ids);
    };
    let path = match &options.control {
        Some(Some(path)) => path.clone(),
        _ => PathBuf::from(format!("{}.ctl", app.name())),
    };
    ControlSocket::adopt(std::os::unix::net::UnixListener::from(fd), path)
        .map(Some)
        .map_err(|error| CliError::failed(format!("cannot take over the control socket: {error}")))
}

/// Binds the control socket the options ask for (`NAME.ctl` in the run folder by default) and
/// gives it to the user the daemon will run as.
fn open_control(
    options: &Options,
    app: &Application,
    (uid, gid): (Option<u32>, Option<u32>),
) -> Result<Option<ControlSocket>, CliError> {
    let Some(path) = &options.control else {
        return Ok(None);
    };
    let path = path
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.ctl", app.name())));
    let socket = ControlSocket::bind(&path).map_err(|error| CliError::failed(error.to_string()))?;
    if uid.is_some() || gid.is_some() {
        nix::unistd::chown(
            socket.path(),
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
        )
        .map_err(|errno| {
            CliError::failed(format!(
                "cannot give the control socket '{}' to the daemon's user: {errno}",
                socket.path().display()
            ))
        })?;
    }
    Ok(Some(socket))
}

/// Half of `WATCHDOG_USEC`, when systemd set it for this process (as `sd_watchdog_enabled`
/// reads it: a `WATCHDOG_PID` that is not this process turns it off).
fn watchdog_interval() -> Option<std::time::Duration> {
    std::env::var_os("NOTIFY_SOCKET")?;
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| {
        std::time::Duration::from_micros(usec / 2).max(std::time::Duration::from_millis(10))
    })
}

/// `STATUS=`: services running, and the last checkpoint.
fn notify_status(app: &Application, facts: &live::Facts) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let running = count_running(app.services());
    let checkpoint = match &facts.last_checkpoint {
        None => "no checkpoint yet".to_owned(),
        Some(record) => match &record.to {
            Some(to) => format!("last checkpoint {} {to}", record.at),
            None => format!("last checkpoint {} FAILED", record.at),
        },
    };
    let line = format!(
        "{running} service{} running; {checkpoint}",
        if running == 1 { "" } else { "s" }
    );
    notify_systemd(sd_notify::NotifyState::Status(&line));
}

fn count_running(root: &rtwisted_core::MultiService) -> usize {
    root.iter()
        .map(|child| {
            usize::from(child.running()) + child.service().collection().map_or(0, count_running)
        })
        .sum()
}

fn notify_systemd(state: sd_notify::NotifyState<'_>) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(error) = sd_notify::notify(false, &[state])
    {
        tracing::warn!("cannot notify systemd: {error}");
    }
}

/// After the privilege drop: refuses to start when the shutdown or checkpoint saves the run
/// will make could not be written, naming the folder and the user.
fn check_saves_possible(
    options: &Options,
    app: &Application,
    access: &Access,
) -> Result<(), CliError> {
    if !options.save && options.checkpoint_every.is_none() {
        return Ok(());
    }
    if let Some(dir) = &options.store {
        return writable::check_store(dir, access);
    }
    let folder = std::env::current_dir().map_err(|error| {
        CliError::failed(format!(
            "cannot tell the run folder: {}",
            rtwisted_persist::describe_io(&error)
        ))
    })?;
    let style = app.persistence().style;
    let targets: Vec<PathBuf> = ["shutdown", "checkpoint"]
        .iter()
        .flat_map(|tag| {
            [false, true].map(|encrypted| {
                folder.join(rtwisted_persist::file_name(
                    app.name(),
                    Some(tag),
                    style,
                    encrypted,
                ))
            })
        })
        .collect();
    let targets: Vec<&Path> = targets.iter().map(PathBuf::as_path).collect();
    writable::check_folder(&folder, &targets)
}

fn count(root: &rtwisted_core::MultiService) -> usize {
    root.iter()
        .map(|child| 1 + child.service().collection().map_or(0, count))
        .sum()
}
