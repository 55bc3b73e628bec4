//! `rtwistd --singleton`: one member at a time runs the application. Members campaign in an
//! etcd election (fleet's `Election`) before they load anything; a standby waits, listed by
//! `rtap status --fleet` as `standby`. The winner loads the snapshot `-f` names at that moment
//! (give `-f APP`: the newest, which is the last leader's newest checkpoint), and from then on
//! every save it makes into etcd is fenced by its leadership, so etcd itself refuses them once
//! the leadership is gone. A leader whose lease is lost (the process paused past the TTL, etcd
//! unreachable) stops at once, its refused shutdown save making the exit non-zero; a clean stop
//! resigns after the shutdown save, so a standby takes over from it at once.

use std::path::Path;
#[cfg(feature = "etcd")]
use std::time::Duration;

use tokio::sync::watch;

use crate::error::CliError;

/// The leadership's lease: a leader that stops refreshing it is replaced this long after.
#[cfg(feature = "etcd")]
const LEASE_TTL: Duration = Duration::from_secs(3);

/// How long a leader that lost its lease may take to stop before it exits without finishing.
#[cfg(feature = "etcd")]
const STOP_BOUND: Duration = Duration::from_secs(1);

/// This process's leadership of its application, kept alive on a runtime of its own.
pub(super) struct Leadership {
    #[cfg(feature = "etcd")]
    runtime: tokio::runtime::Runtime,
    #[cfg(feature = "etcd")]
    resign: Option<tokio::sync::oneshot::Sender<()>>,
    #[cfg(feature = "etcd")]
    task: Option<tokio::task::JoinHandle<()>>,
    lost: watch::Receiver<bool>,
}

impl Leadership {
    /// A receiver that turns true when the leadership is lost.
    pub(super) fn lost(&self) -> watch::Receiver<bool> {
        self.lost.clone()
    }
}

/// Waits until `lost` turns true; never, without a leadership.
pub(super) async fn lost(leadership: &mut Option<watch::Receiver<bool>>) {
    let Some(lost) = leadership.as_mut() else {
        return std::future::pending().await;
    };
    while !*lost.borrow_and_update() {
        if lost.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

#[cfg(feature = "etcd")]
impl Leadership {
    /// Stands for election in `app`'s singleton and waits (as long as it takes) until this
    /// process leads; meanwhile it is listed as a standby.
    pub(super) fn campaign(store: &Path, app: &str) -> Result<Leadership, CliError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rtwisted-leader")
            .enable_all()
            .build()
            .map_err(|error| CliError::failed(format!("cannot start the runtime: {error}")))?;
        let (fence, lost, resign, task) = runtime.block_on(win(store, app))?;
        crate::store_backend::write_under(fence);
        Ok(Leadership {
            runtime,
            resign: Some(resign),
            task: Some(task),
            lost,
        })
    }

    /// Gives the leadership up now (at a clean stop, after the shutdown save), so a standby
    /// takes over without waiting for the lease to run out.
    pub(super) fn resign(mut self) {
        if *self.lost.borrow() {
            return; // nothing left to give up
        }
        if let Some(resign) = self.resign.take() {
            let _ = resign.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(3), task).await });
        }
    }
}

#[cfg(feature = "etcd")]
type Won = (
    rtwisted_fleet::Fence,
    watch::Receiver<bool>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

#[cfg(feature = "etcd")]
async fn win(store: &Path, app: &str) -> Result<Won, CliError> {
    use rtwisted_fleet::members::{self, MemberInfo};
    let failed = |error: rtwisted_fleet::FleetError| {
        CliError::failed(format!("cannot stand for {app}'s singleton: {error}"))
    };
    let address: rtwisted_fleet::EtcdAddress = store
        .to_string_lossy()
        .parse()
        .map_err(|error: rtwisted_fleet::AddressError| failed(error.into()))?;
    let etcd = rtwisted_fleet::Etcd::connect(&address)
        .await
        .map_err(failed)?;
    let host = super::fleet::host_name();
    let info = MemberInfo {
        host: host.clone(),
        pid: std::process::id(),
        snapshot: None,
        state: "standby".to_owned(),
        last_checkpoint: None,
    };
    let standby = members::register(&etcd, app, &info, LEASE_TTL)
        .await
        .map_err(failed)?;
    tracing::info!("Standing by to run {app}: campaigning for its leadership in {address}");
    let election = rtwisted_fleet::Election::new(&etcd, app).map_err(failed)?;
    let value = format!("{host} PID {}", std::process::id());
    let leader = election.campaign(&value, LEASE_TTL).await.map_err(failed)?;
    let _ = standby.leave().await;
    tracing::info!("Leading {app}: loading its snapshot");
    let fence = leader.fence().clone();
    let (lost_sender, lost) = watch::channel(false);
    let (resign, resigned) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tokio::select! {
            () = leader.lost() => {
                tracing::error!("Lost the leadership (its lease expired): stopping at once");
                let _ = lost_sender.send(true);
                // The stop is asked for; if the main loop is busy past the bound, the process
                // goes anyway: a standby may already serve, and nothing more can be saved.
                tokio::time::sleep(STOP_BOUND).await;
                tracing::error!(
                    "still running {} ms after losing the leadership: exiting now",
                    STOP_BOUND.as_millis()
                );
                std::process::exit(1);
            }
            _ = resigned => {
                if let Err(error) = leader.resign().await {
                    tracing::warn!("cannot resign the leadership: {error}");
                }
            }
        }
    });
    Ok((fence, lost, resign, task))
}

#[cfg(not(feature = "etcd"))]
impl Leadership {
    /// A build without etcd has no elections.
    pub(super) fn campaign(store: &Path, _: &str) -> Result<Leadership, CliError> {
        Err(CliError::failed(format!(
            "--singleton campaigns in a store on etcd, and this build has no etcd support (store '{}')",
            store.display()
        )))
    }

    /// Nothing to give up.
    pub(super) fn resign(self) {}
}
