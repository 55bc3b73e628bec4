//! rtwistd's own sockets, beside the application's: the control socket `rtap` talks to and
//! the metrics endpoint. Both are made like privileged resources, before the privilege drop,
//! and a hot restart hands them to the successor.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rtwisted_core::Application;

use super::options::Options;
use crate::control::server::ControlSocket;
use crate::error::CliError;

/// The control socket a predecessor handed over, or a new one.
pub(super) fn adopt_or_open_control(
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

#[cfg(feature = "metrics")]
pub(super) use super::metrics::{HANDOVER_KEY as METRICS_KEY, MetricsEndpoint};

/// Without the `metrics` feature there is no endpoint (`--metrics` is refused with the
/// options), so this type has no values.
#[cfg(not(feature = "metrics"))]
pub(super) enum MetricsEndpoint {}

/// The key the metrics socket travels under at a hot restart.
#[cfg(not(feature = "metrics"))]
pub(super) const METRICS_KEY: &str = "rtwistd --metrics";

#[cfg(not(feature = "metrics"))]
impl MetricsEndpoint {
    fn open(_: &str, _: Option<Vec<OwnedFd>>) -> Result<MetricsEndpoint, CliError> {
        Err(CliError::failed(
            "this rtwistd was built without --metrics (the cargo feature `metrics`)",
        ))
    }

    pub(super) fn serve(&mut self, _: tokio::sync::mpsc::Sender<crate::control::server::Command>) {
        match *self {}
    }

    pub(super) fn handover_fds(&self) -> Vec<BorrowedFd<'_>> {
        match *self {}
    }

    pub(super) async fn stop(self, _: bool) {
        match self {}
    }
}

/// The metrics endpoint the options ask for, on the socket a predecessor handed over if there
/// is one.
pub(super) fn open_metrics(
    options: &Options,
    handed: Option<Vec<OwnedFd>>,
) -> Result<Option<MetricsEndpoint>, CliError> {
    options
        .metrics
        .as_deref()
        .map(|description| MetricsEndpoint::open(description, handed))
        .transpose()
}

/// The descriptors of rtwistd's own listeners besides the control socket, for a successor.
pub(super) fn own_sockets(metrics: Option<&MetricsEndpoint>) -> Vec<(String, Vec<BorrowedFd<'_>>)> {
    metrics
        .map(|metrics| (METRICS_KEY.to_owned(), metrics.handover_fds()))
        .into_iter()
        .collect()
}
