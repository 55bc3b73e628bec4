//! One run of `rtwistd`, in the order twistd established: load -> log -> pidfile -> chroot,
//! rundir, umask -> daemonize -> pid -> runtime -> privileged start -> privilege drop -> start
//! -> ready -> serve -> stop -> shutdown save -> pidfile removed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sys::stat::{Mode, umask};
use rtwisted_core::{Application, Lifecycle, StopReason, Style};
use rtwisted_persist::Key;
use tokio::signal::unix::{SignalKind, signal};

use super::daemon::{self, StatusPipe};
use super::live;
use super::options::{Options, Source};
use super::pidfile::{self, Pidfile};
use super::privileges;
use crate::control::protocol::{Reply, Request};
use crate::control::server::{Command, ControlSocket};
use crate::control::status::{CheckpointRecord, SnapshotOrigin};
use crate::error::CliError;
use crate::logging::{self, LogFile, LogTarget};
use crate::passphrase::PassphraseSource;
use crate::snapshots::Location;
use crate::{plugins, snapshots};

/// Runs the application the options describe, until a signal stops it.
pub fn run(options: Options) -> Result<(), CliError> {
    // The pidfile comes first (as twistd's checkPID): a refused second start touches nothing.
    let (mut pidfile, stale) = match options.pidfile.as_deref().map(Pidfile::acquire) {
        Some(acquired) => {
            let (pidfile, stale) = acquired?;
            (Some(pidfile), stale)
        }
        None => (None, None),
    };
    let result = run_holding(&options, pidfile.as_mut(), stale);
    // Reached by the daemon (or a foreground run) only: the launching process exits inside
    // daemonize, leaving the file and its lock to the daemon.
    if let Some(pidfile) = pidfile {
        pidfile.remove();
    }
    result
}

fn run_holding(
    options: &Options,
    mut pidfile: Option<&mut Pidfile>,
    stale: Option<String>,
) -> Result<(), CliError> {
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
    let (app, key, origin) = load(
        &options.source,
        options.store.as_deref(),
        &options.passphrase,
    )?;
    let ids = privileges::resolve(options.uid, options.gid, app.process())?;
    let null = if options.nodaemon {
        None
    } else {
        Some(daemon::open_null()?)
    };
    enter_environment(options, &app, pidfile.as_deref_mut(), log_file.as_deref())?;
    let mut status = null.map(daemon::daemonize).transpose()?;
    // From here on a failure is also sent to the launching shell through the status pipe.
    let result = daemon_body(
        (app, key, origin),
        options,
        ids,
        pidfile,
        &mut status,
        log_file,
    );
    if let Err(error) = &result {
        tracing::error!("{error}");
        if let Some(status) = status.take() {
            status.failed(&error.to_string());
        }
    }
    result
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
    (app, key, origin): (Application, Option<Key>, SnapshotOrigin),
    options: &Options,
    ids: (Option<u32>, Option<u32>),
    pidfile: Option<&mut Pidfile>,
    status: &mut Option<StatusPipe>,
    log_file: Option<Arc<LogFile>>,
) -> Result<(), CliError> {
    if let Some(pidfile) = pidfile {
        pidfile.write_pid()?;
        // The daemon removes its pidfile after dropping privileges; in a sticky folder such
        // as /tmp only the file's owner may.
        pidfile.give_to(ids);
    }
    set_process_name(&app);
    // The runtime (and its threads) exists only from here on, after daemonizing.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::failed(format!("cannot start the runtime: {error}")))?;
    let result = runtime.block_on(serve(app, key, origin, options, ids, status, log_file));
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

fn load(
    source: &Source,
    store: Option<&std::path::Path>,
    passphrase: &PassphraseSource,
) -> Result<(Application, Option<Key>, SnapshotOrigin), CliError> {
    match source {
        Source::Plugin { maker, options } => {
            tracing::info!("Building {} from the '{}' plugin", maker.name, maker.name);
            let origin = SnapshotOrigin {
                source: format!("the '{}' plugin", maker.name),
                ..SnapshotOrigin::default()
            };
            Ok((
                plugins::application_from(maker, options, maker.name)?,
                None,
                origin,
            ))
        }
        Source::Tac { path } => {
            tracing::info!("Loading {}...", path.display());
            let app = crate::tac_source::evaluate(path)?;
            tracing::info!("Loaded.");
            let origin = SnapshotOrigin {
                source: path.display().to_string(),
                ..SnapshotOrigin::default()
            };
            Ok((app, None, origin))
        }
        Source::File {
            path,
            source_style,
            defaulted,
        } => {
            if *defaulted && store.is_none() && std::fs::symlink_metadata(path).is_err() {
                return Err(CliError::failed(format!(
                    "no snapshot given, and the default, '{}', is not in this folder: give a snapshot with -f FILE, a TAC file with -y FILE, or a plugin (see rtap plugins)",
                    path.display()
                )));
            }
            let location = match store {
                None => Location::File(path.clone()),
                Some(dir) => Location::Store {
                    dir: dir.to_owned(),
                    address: path.to_string_lossy().parse().map_err(
                        |error: rtwisted_persist::store::StoreError| {
                            CliError::failed(error.to_string())
                        },
                    )?,
                },
            };
            tracing::info!("Loading {location}...");
            let (snapshot, key) = snapshots::open_at(&location, passphrase)?;
            if *source_style && snapshot.header.fields.style != Style::Tas {
                return Err(CliError::failed(format!(
                    "'{}' is a binary (tap) snapshot; run it with -f, not -s",
                    path.display()
                )));
            }
            tracing::info!("Loaded.");
            let origin = SnapshotOrigin {
                source: location.to_string(),
                checksum: Some(snapshot.header.checksum.clone()),
                parent: None,
                changes: 0,
            };
            Ok((snapshot.app, key, origin))
        }
    }
}

/// Serves until a stop signal, then stops and saves; [`CliError::Forced`] when a second signal
/// cut the stop short.
async fn serve(
    mut app: Application,
    key: Option<Key>,
    origin: SnapshotOrigin,
    options: &Options,
    (uid, gid): (Option<u32>, Option<u32>),
    status: &mut Option<StatusPipe>,
    log_file: Option<Arc<LogFile>>,
) -> Result<(), CliError> {
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
    let lifecycle = Lifecycle::new(options.stop_timeout).with_checkpoints(checkpoint_requester);
    if let Err(error) = lifecycle.privileged_start(app.services_mut()).await {
        return Err(CliError::failed(error.to_string()));
    }
    // The control socket is made like a privileged resource: before the drop (so a run folder
    // only root may write is fine), then handed to the user the daemon runs as.
    let mut control = match open_control(options, &app, (uid, gid)) {
        Ok(control) => control,
        Err(error) => {
            let _ = lifecycle
                .stop(app.services_mut(), StopReason::Rollback)
                .await;
            return Err(error);
        }
    };
    if let Err(error) = privileges::drop_to(uid, gid) {
        // Nothing stays half-started: release what the privileged start acquired.
        let _ = lifecycle
            .stop(app.services_mut(), StopReason::Rollback)
            .await;
        return Err(error);
    }
    if let Err(error) = lifecycle.start(app.services_mut()).await {
        return Err(CliError::failed(error.to_string()));
    }
    let services = count(app.services());
    tracing::info!(
        "{} is running ({services} service{}); waiting for SIGTERM or SIGINT",
        app.name(),
        if services == 1 { "" } else { "s" }
    );
    let mut facts = live::Facts::new(origin);
    let (control_commands, mut control_requests) = tokio::sync::mpsc::channel(16);
    if let Some(socket) = control.as_mut() {
        socket.serve(control_commands.clone());
        tracing::info!("control socket at {}", socket.path().display());
    }
    drop(control_commands);
    if let Some(status) = status.take() {
        status.started();
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
    let received = loop {
        let next_watchdog = async {
            match watchdog.as_mut() {
                Some(timer) => timer.tick().await,
                None => std::future::pending().await,
            }
        };
        let next_checkpoint = async {
            match checkpoints.as_mut() {
                Some(timer) => timer.tick().await,
                None => std::future::pending().await,
            }
        };
        let save = |app: &Application, why: &str| {
            checkpoint(app, key.as_ref(), options.store.as_deref(), why)
        };
        tokio::select! {
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            _ = hangup.recv() => reopen(log_file.as_deref(), "SIGHUP"),
            _ = user1.recv() => reopen(log_file.as_deref(), "SIGUSR1"),
            _ = next_watchdog => notify_systemd(sd_notify::NotifyState::Watchdog),
            _ = user2.recv() => {
                facts.last_checkpoint = Some(save(&app, "SIGUSR2"));
                notify_status(&app, &facts);
            }
            _ = next_checkpoint => {
                facts.last_checkpoint = Some(save(&app, "timer"));
                notify_status(&app, &facts);
            }
            () = requests.requested() => {
                facts.last_checkpoint = Some(save(&app, "Checkpoint task"));
                notify_status(&app, &facts);
            }
            Some(command) = control_requests.recv() => {
                let Command { request, reply } = command;
                match request {
                    Request::Stop => {
                        stop_reply = Some(reply);
                        break "rtap stop";
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
                        let record = save(&app, "rtap checkpoint");
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
                                let record = save(&app, "live change");
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
            save_shutdown(&app, key.as_ref(), options.store.as_deref()).map(Some)
        } else {
            Ok(None)
        };
        if let Some(reply) = stop_reply.take() {
            let _ = reply.send(match &saved {
                Ok(to) => Reply::success(serde_json::json!({ "saved": to })),
                Err(error) => {
                    Reply::failure(format!("stopped, but the shutdown save failed: {error}"))
                }
            });
        }
        if let Some(socket) = control.as_mut() {
            socket.shutdown(std::time::Duration::from_secs(2)).await;
        }
        saved?;
        drop(control.take());
        tracing::info!("Server Shut Down.");
        stopped.map_err(|error| CliError::failed(format!("the stop was not clean: {error}")))
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

fn reopen(log_file: Option<&LogFile>, signal: &str) {
    match log_file {
        Some(file) => match file.reopen() {
            Ok(()) => tracing::info!("Received {signal}, reopened the log file."),
            Err(error) => tracing::warn!("Received {signal}, cannot reopen the log file: {error}"),
        },
        None => tracing::info!("Received {signal}; not logging to a file, nothing to reopen."),
    }
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
            Some(to) => format!("last checkpoint {} to {to}", record.at),
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

/// Saves the running tree, live state included (and every `running` flag false in the file),
/// as `NAME-checkpoint.tap` in the current folder. A failure is logged; the daemon goes on.
/// Returns what happened, for `rtap status` and `rtap checkpoint`.
fn checkpoint(
    app: &Application,
    key: Option<&Key>,
    store: Option<&std::path::Path>,
    why: &str,
) -> CheckpointRecord {
    let began = std::time::Instant::now();
    let at = crate::control::status::now_rfc3339();
    let style = app.persistence().style;
    let millis = || began.elapsed().as_secs_f64() * 1000.0;
    let outcome = if let Some(dir) = store {
        match snapshots::save_to_store(dir, app, style, key, None) {
            Ok((_, written)) => {
                tracing::info!("Checkpoint ({why}) saved as {written} in {:.1}ms", millis());
                Ok(written)
            }
            Err(error) => Err(error.to_string()),
        }
    } else {
        let path = PathBuf::from(rtwisted_persist::file_name(
            app.name(),
            Some("checkpoint"),
            style,
            key.is_some(),
        ));
        match rtwisted_persist::save_with(app, &path, style, key) {
            Ok(header) => {
                tracing::info!(
                    "Checkpoint ({why}) saved to {} in {:.1}ms ({})",
                    path.display(),
                    millis(),
                    header.checksum
                );
                Ok(path.display().to_string())
            }
            Err(error) => Err(error.to_string()),
        }
    };
    if let Err(error) = &outcome {
        tracing::error!("Checkpoint ({why}) failed: {error}");
    }
    CheckpointRecord {
        at,
        millis: millis(),
        why: why.to_owned(),
        to: outcome.as_ref().ok().cloned(),
        error: outcome.err(),
    }
}

/// Saves `NAME-shutdown.tap` (`.tas`, and `.etap`/`.etas` when the input was encrypted) in the
/// current folder.
fn save_shutdown(
    app: &Application,
    key: Option<&Key>,
    store: Option<&std::path::Path>,
) -> Result<String, CliError> {
    let style = app.persistence().style;
    if let Some(dir) = store {
        let (_, written) = snapshots::save_to_store(dir, app, style, key, None)?;
        tracing::info!("Saved the {} application as {written}.", app.name());
        return Ok(written);
    }
    let path = PathBuf::from(rtwisted_persist::file_name(
        app.name(),
        Some("shutdown"),
        style,
        key.is_some(),
    ));
    tracing::info!("Saving {} application to {}...", app.name(), path.display());
    crate::snapshots::save(app, &path, style, key)?;
    tracing::info!("Saved.");
    Ok(path.display().to_string())
}

fn count(root: &rtwisted_core::MultiService) -> usize {
    root.iter()
        .map(|child| 1 + child.service().collection().map_or(0, count))
        .sum()
}
