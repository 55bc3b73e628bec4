//! The daemon's main loop: start the tree, serve (signals, checkpoints, control requests, the
//! watchdog), then stop and save; or, after a hot restart, step aside.

use std::sync::Arc;

use rtwisted_core::{Application, Lifecycle, StopReason};
use tokio::signal::unix::{SignalKind, signal};

use super::daemon::{self, StatusPipe};
use super::endpoints::{self, METRICS_KEY, adopt_or_open_control, open_metrics};
use super::live;
use super::options::Options;
use super::origin::Origin;
use super::pidfile::Pidfile;
use super::privileges;
use super::requests::{Daemon, Next, answer};
use super::run::{Ended, Run, Taking, check_saves_possible, count};
use super::saves::{self, Saver};
use super::systemd::{notify_status, notify_systemd, watchdog_interval};
use crate::control::protocol::Reply;
use crate::control::server::ControlSocket;
use crate::error::CliError;
use crate::logging::LogFile;
use crate::snapshots::Access;

/// Serves until a stop signal (or `rtap stop`), then stops and saves; [`CliError::Forced`] when
/// a second signal cut the stop short.
pub(super) async fn serve(
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
        mut leadership_lost,
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
    let handed_metrics = inherited.take(METRICS_KEY);
    if let Err(error) = lifecycle.privileged_start(app.services_mut()).await {
        return Err(CliError::failed(error.to_string()));
    }
    // Sockets the predecessor had that this tree does not use are closed now.
    inherited.clear();
    // The control socket and the metrics endpoint are made like privileged resources: before
    // the drop (so a run folder only root may write, or a port below 1024, is fine).
    let own =
        adopt_or_open_control(options, &app, (uid, gid), handed_control).and_then(|control| {
            open_metrics(options, handed_metrics).map(|metrics| (control, metrics))
        });
    let (mut control, mut metrics) = match own {
        Ok(own) => own,
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
    if let Some(metrics) = metrics.as_mut() {
        metrics.serve(control_commands.clone());
    }
    #[cfg(feature = "etcd")]
    let fleet_member = super::fleet::plan(options, &origin).map(|plan| {
        let checkpoints = facts.watch_checkpoints();
        super::fleet::FleetMember::join(plan, control_commands.clone(), checkpoints)
    });
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
    // The checkpoint being written off the main loop, if one is: what it is for, and its end.
    let mut writing: Option<(String, tokio::sync::oneshot::Receiver<saves::SaveDone>)> = None;
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
            () = super::singleton::lost(&mut leadership_lost) => break "the loss of leadership",
            _ = hangup.recv() => reopen(log_file.as_deref(), "SIGHUP"),
            _ = user1.recv() => reopen(log_file.as_deref(), "SIGUSR1"),
            _ = next_watchdog => notify_systemd(sd_notify::NotifyState::Watchdog),
            _ = user2.recv() => start_checkpoint(&mut writing, &saver, &app, "SIGUSR2"),
            _ = next_checkpoint => start_checkpoint(&mut writing, &saver, &app, "timer"),
            () = requests.requested() => {
                start_checkpoint(&mut writing, &saver, &app, "Checkpoint task");
            }
            done = async { (&mut writing.as_mut()?.1).await.ok() }, if writing.is_some() => {
                writing = None;
                if let Some(done) = done {
                    facts.record_checkpoint(saver.finish_checkpoint(done));
                    notify_status(&app, &facts);
                }
            }
            Some(command) = control_requests.recv() => {
                let daemon = Daemon {
                    app: &mut app,
                    lifecycle: &lifecycle,
                    facts: &mut facts,
                    saver: &mut saver,
                    options,
                    control: control.as_ref(),
                    pidfile: pidfile.as_deref(),
                    own_sockets: endpoints::own_sockets(metrics.as_ref()),
                };
                match answer(command, daemon).await {
                    Next::Serve => {}
                    Next::Stop(reply) => {
                        stop_reply = Some(reply);
                        break "rtap stop";
                    }
                    Next::HandedOver(handed) => {
                        handed_over = Some(handed);
                        break "rtap restart";
                    }
                }
            }
        }
    };
    drop(requests);
    #[cfg(feature = "etcd")]
    if let Some(member) = fleet_member {
        member.leave().await;
    }
    // Requests that come during the stop are answered at once: the daemon is shutting down.
    drop(control_requests);
    let first_signal = tokio::time::Instant::now();
    if let Some(handed) = &handed_over {
        tracing::info!(
            successor = handed.pid,
            millis = handed.millis,
            paused_millis = handed.paused_millis,
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
        if let Some(metrics) = metrics.take() {
            metrics.stop(true).await;
        }
        let _ = stop_logged(&lifecycle, &mut app, StopReason::HandedOver).await;
        tracing::info!("Stepped aside for PID {}.", handed.pid);
        return Ok(Ended::HandedOver);
    }
    tracing::info!(signal = received, "Received {received}, shutting down.");
    notify_systemd(sd_notify::NotifyState::Stopping);
    let forced = second_signal(terminate, interrupt, first_signal);

    let stop_and_save = async {
        if let Some(metrics) = metrics.take() {
            metrics.stop(false).await;
        }
        let stopped = stop_logged(&lifecycle, &mut app, StopReason::Shutdown).await;
        if let Some((why, done)) = writing.take() {
            // A checkpoint still being written gets a moment to land; the stop does not wait
            // for one that is stuck.
            match tokio::time::timeout(CHECKPOINT_GRACE, done).await {
                Ok(Ok(done)) => facts.record_checkpoint(saver.finish_checkpoint(done)),
                _ => saver.abandon_checkpoint(&why),
            }
        }
        let saved = if options.save {
            saver.shutdown(&app, SHUTDOWN_SAVE_DEADLINE).await.map(Some)
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

/// Stops the tree for `reason`, logging each service that did not stop cleanly.
async fn stop_logged(
    lifecycle: &Lifecycle,
    app: &mut Application,
    reason: StopReason,
) -> Result<(), rtwisted_core::StopError> {
    let stopped = lifecycle.stop(app.services_mut(), reason).await;
    if let Err(error) = &stopped {
        for failure in &error.failures {
            tracing::warn!("{failure}");
        }
    }
    stopped
}

/// How long a stop waits for a checkpoint still being written before it goes on without it.
const CHECKPOINT_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// How long the shutdown save may take (it waits for the store's other writers first).
const SHUTDOWN_SAVE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Starts a checkpoint: encoded here, written on a thread of its own, so a write stuck on a
/// full or hung disk never holds up signals, control requests or the stop. One at a time: a
/// checkpoint asked for while another is being written is skipped (the next one covers it).
fn start_checkpoint(
    writing: &mut Option<(String, tokio::sync::oneshot::Receiver<saves::SaveDone>)>,
    saver: &Saver,
    app: &Application,
    why: &str,
) {
    if let Some((other, _)) = writing {
        tracing::warn!("Checkpoint ({why}) skipped: the {other} checkpoint is still being written");
        return;
    }
    let job = saver.begin_checkpoint(app, why);
    *writing = Some((job.why().to_owned(), job.spawn()));
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
