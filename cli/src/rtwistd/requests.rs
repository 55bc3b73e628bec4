//! The main loop's answers to control requests (`rtap status`, `checkpoint`, `stop`,
//! `restart`, the live changes): one at a time, on the tree the loop owns.

use rtwisted_core::{Application, Lifecycle};
use tokio::sync::oneshot;

use super::live;
use super::options::Options;
use super::pidfile::Pidfile;
use super::restart;
use super::saves::Saver;
use super::systemd::{notify_status, notify_systemd, watchdog_interval};
use crate::control::protocol::{Reply, Request};
use crate::control::server::{Command, ControlSocket};

/// What the main loop does after a request.
pub(super) enum Next {
    /// Goes on serving.
    Serve,
    /// Stops (`rtap stop`); the reply goes out once the shutdown snapshot is saved.
    Stop(oneshot::Sender<Reply>),
    /// Steps aside: a successor serves now.
    HandedOver(restart::Handed),
}

/// What a request may read or change.
pub(super) struct Daemon<'a> {
    pub(super) app: &'a mut Application,
    pub(super) lifecycle: &'a Lifecycle,
    pub(super) facts: &'a mut live::Facts,
    pub(super) saver: &'a mut Saver,
    pub(super) options: &'a Options,
    pub(super) control: Option<&'a ControlSocket>,
    pub(super) pidfile: Option<&'a Pidfile>,
    /// Descriptors of rtwistd's own listeners besides the control socket (the metrics
    /// endpoint), each with its hand-over key.
    pub(super) own_sockets: Vec<(String, Vec<std::os::fd::BorrowedFd<'a>>)>,
}

/// Answers `command`.
pub(super) async fn answer(command: Command, daemon: Daemon<'_>) -> Next {
    let Command { request, reply } = command;
    let Daemon {
        app,
        lifecycle,
        facts,
        saver,
        options,
        control,
        pidfile,
        own_sockets,
    } = daemon;
    match request {
        Request::Stop => return Next::Stop(reply),
        Request::Restart => {
            notify_systemd(sd_notify::NotifyState::Reloading);
            match restart_now(
                app,
                lifecycle,
                facts,
                options,
                control,
                pidfile,
                own_sockets,
            )
            .await
            {
                Ok(handed) => {
                    let _ = reply.send(Reply::success(serde_json::json!({
                        "pid": handed.pid,
                        "millis": handed.millis,
                        "paused_millis": handed.paused_millis,
                        "old_pid": std::process::id(),
                    })));
                    return Next::HandedOver(handed);
                }
                Err(error) => {
                    notify_systemd(sd_notify::NotifyState::Ready);
                    let _ = reply.send(Reply::failure(format!(
                        "the restart failed, and this rtwistd goes on serving: {error}"
                    )));
                }
            }
        }
        Request::Status => {
            let _ = reply.send(Reply::success(live::status(app, facts)));
        }
        Request::Snapshot => {
            let _ = reply.send(match live::snapshot(app) {
                Ok(result) => Reply::success(result),
                Err(error) => Reply::failure(error),
            });
        }
        Request::Checkpoint => {
            let record = saver.checkpoint(app, "rtap checkpoint");
            let answer = match &record.error {
                None => Reply::success(serde_json::to_value(&record).unwrap_or_default()),
                Some(error) => Reply::failure(format!("the checkpoint failed: {error}")),
            };
            facts.record_checkpoint(record);
            notify_status(app, facts);
            let _ = reply.send(answer);
        }
        request if live::is_change(&request) => {
            notify_systemd(sd_notify::NotifyState::Reloading);
            let answer = match live::change(app, lifecycle, request).await {
                Ok(mut result) => {
                    facts.origin.changes += 1;
                    // A live change is kept at once, as a checkpoint is.
                    let record = saver.checkpoint(app, "live change");
                    result["saved"] = serde_json::to_value(&record).unwrap_or_default();
                    facts.record_checkpoint(record);
                    Reply::success(result)
                }
                Err(error) => Reply::failure(error),
            };
            notify_systemd(sd_notify::NotifyState::Ready);
            notify_status(app, facts);
            let _ = reply.send(answer);
        }
        _ => {
            let _ = reply.send(Reply::failure("this rtwistd cannot do that yet"));
        }
    }
    Next::Serve
}

/// Starts a successor and hands the running tree over (see [`restart`]); refused where a
/// successor could not take over.
pub(super) async fn restart_now(
    app: &mut Application,
    lifecycle: &Lifecycle,
    facts: &live::Facts,
    options: &Options,
    control: Option<&ControlSocket>,
    pidfile: Option<&Pidfile>,
    own_sockets: Vec<(String, Vec<std::os::fd::BorrowedFd<'_>>)>,
) -> Result<restart::Handed, String> {
    if options.singleton.is_some() {
        return Err(
            "a singleton cannot hand its leadership to a successor: stop it (a standby takes over) and start the new binary as a standby"
                .to_owned(),
        );
    }
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
        own_sockets,
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
