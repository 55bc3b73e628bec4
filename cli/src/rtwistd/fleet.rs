//! A daemon that runs from a store on etcd is a member of its application's fleet: it
//! registers itself under a lease (host, PID, the snapshot it runs, its state, its last
//! checkpoint), so `rtap status --fleet APP` lists it and a dead member disappears one lease
//! later. With `--follow` (`-f APP@TAG`) it also watches the tag: when the tag moves
//! (`rtap store tag APP@8 prod --move`), it applies the new tree live through its own control
//! channel, exactly as `rtap apply` would (untouched services keep their connections), and
//! reports the snapshot it now runs.

use std::time::Duration;

use rtwisted_fleet::members::{self, MemberInfo, Membership};
use rtwisted_fleet::{Etcd, EtcdAddress, EtcdStore, TagWatch};
use rtwisted_persist::store::StoreAddress;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use crate::control::protocol::{self, Request};
use crate::control::server::Command;
use crate::control::status::CheckpointRecord;
use crate::rtwistd::options::Options;
use crate::rtwistd::origin::Origin;

/// How long a member's lease lasts: a member killed with `kill -9` leaves the list this long
/// after.
const MEMBER_TTL: Duration = Duration::from_secs(5);

/// What the member is and does.
pub(super) struct Plan {
    /// The store's address (`etcd://...`).
    pub(super) store: String,
    /// The application.
    pub(super) app: String,
    /// The snapshot the daemon started from.
    pub(super) number: u64,
    /// The tag to follow, with `--follow`.
    pub(super) follow: Option<String>,
    /// What the member says it is doing: `running`, or `leader` for a singleton.
    pub(super) state: &'static str,
}

/// The member a run from a store on etcd is, if it is one.
pub(super) fn plan(options: &Options, origin: &Origin) -> Option<Plan> {
    match origin {
        Origin::Store { dir, entry, .. } if crate::store_backend::is_remote(dir) => Some(Plan {
            store: dir.to_string_lossy().into_owned(),
            app: entry.app.clone(),
            number: entry.number,
            follow: options.follow.clone(),
            state: if options.singleton.is_some() {
                "leader"
            } else {
                "running"
            },
        }),
        _ => None,
    }
}

/// The running membership; [`FleetMember::leave`] ends it.
pub(super) struct FleetMember {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl FleetMember {
    /// Starts being a member (and following) in the background; requests go through
    /// `commands`, the daemon's control channel.
    /// `checkpoints` carries each checkpoint the daemon records, for the member's record.
    pub(super) fn join(
        plan: Plan,
        commands: mpsc::Sender<Command>,
        checkpoints: watch::Receiver<Option<CheckpointRecord>>,
    ) -> FleetMember {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(plan, commands, checkpoints, stopped));
        FleetMember { stop, task }
    }

    /// Leaves the fleet (the record goes at once, not a lease later).
    pub(super) async fn leave(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(3), self.task).await;
    }
}

async fn run(
    plan: Plan,
    commands: mpsc::Sender<Command>,
    mut checkpoints: watch::Receiver<Option<CheckpointRecord>>,
    mut stopped: oneshot::Receiver<()>,
) {
    let etcd = match connect(&plan.store).await {
        Ok(etcd) => etcd,
        Err(error) => {
            tracing::warn!("not a member of {}'s fleet: {error}", plan.app);
            return;
        }
    };
    let mut info = MemberInfo {
        host: host_name(),
        pid: std::process::id(),
        snapshot: Some(format!("{}@{}", plan.app, plan.number)),
        state: plan.state.to_owned(),
        last_checkpoint: None,
    };
    let membership = match members::register(&etcd, &plan.app, &info, MEMBER_TTL).await {
        Ok(membership) => Some(membership),
        Err(error) => {
            tracing::warn!("cannot register in {}'s fleet: {error}", plan.app);
            None
        }
    };
    let store = EtcdStore::new(etcd);
    let mut watch = match &plan.follow {
        Some(tag) => match store.watch_tags(&plan.app).await {
            Ok(watch) => {
                tracing::info!("Following {}@{tag} in {}", plan.app, plan.store);
                Some(watch)
            }
            Err(error) => {
                tracing::warn!("cannot follow {}@{tag}: {error}", plan.app);
                None
            }
        },
        None => None,
    };
    let mut running = plan.number;
    // The tag may have moved between the load and the watch.
    if let (Some(tag), Some(watch)) = (&plan.follow, &watch)
        && let Some(number) = watch.tags().get(tag).copied()
        && number != running
        && roll_to(&store, &plan.app, number, &commands).await
    {
        running = number;
    }
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            change = next_change(&mut watch) => match change {
                Ok((tag, Some(number)))
                    if plan.follow.as_deref() == Some(tag.as_str()) && number != running =>
                {
                    if roll_to(&store, &plan.app, number, &commands).await {
                        running = number;
                    }
                }
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!("stopped following {}: {error}", plan.app);
                    watch = None;
                }
            },
            changed = checkpoints.changed() => {
                if changed.is_err() {
                    break; // the daemon's main loop is gone
                }
            }
        }
        let mut now = info.clone();
        now.snapshot = Some(format!("{}@{running}", plan.app));
        // A failed checkpoint leaves the last good one on record.
        if let Some(to) = checkpoints
            .borrow_and_update()
            .as_ref()
            .and_then(|r| r.to.as_deref())
        {
            now.last_checkpoint = Some(stored_address(to));
        }
        if now != info {
            info = now;
            if let Some(membership) = &membership {
                update(membership, &info).await;
            }
        }
    }
    if let Some(membership) = membership {
        let _ = membership.leave().await;
    }
}

async fn connect(text: &str) -> Result<Etcd, String> {
    let address: EtcdAddress = text.parse().map_err(|error| format!("{error}"))?;
    Etcd::connect(&address)
        .await
        .map_err(|error| error.to_string())
}

async fn update(membership: &Membership, info: &MemberInfo) {
    if let Err(error) = membership.update(info).await {
        tracing::warn!("cannot update this member's record: {error}");
    }
}

/// The next tag change, or never when there is no watch.
async fn next_change(
    watch: &mut Option<TagWatch>,
) -> Result<(String, Option<u64>), rtwisted_fleet::FleetError> {
    match watch {
        Some(watch) => watch.next().await.map(|change| (change.tag, change.number)),
        None => std::future::pending().await,
    }
}

/// Applies snapshot `number` of `app` to the running tree; true when it now runs it.
async fn roll_to(
    store: &EtcdStore,
    app: &str,
    number: u64,
    commands: &mpsc::Sender<Command>,
) -> bool {
    let address = StoreAddress::number(app.to_owned(), number);
    let bytes = match store.get(&address).await {
        Ok((_, bytes)) => bytes,
        Err(error) => {
            tracing::warn!("cannot roll out {address}: {error}");
            return false;
        }
    };
    let request = Request::Apply {
        snapshot: protocol::encode_bytes(&bytes),
        base: None,
    };
    match ask(commands, request).await {
        Ok(result) => {
            let summary = result["summary"].as_str().unwrap_or("applied").to_owned();
            tracing::info!("Rolled out {address}: {summary}");
            true
        }
        Err(error) => {
            tracing::warn!("cannot roll out {address}: {error}; still running the tree before");
            false
        }
    }
}

/// The address in where a checkpoint went (`as echo@4 in the store '...'`): what the fleet's
/// list shows.
fn stored_address(to: &str) -> String {
    let address = to.strip_prefix("as ").unwrap_or(to);
    address
        .split(" in the store")
        .next()
        .unwrap_or(address)
        .to_owned()
}

/// Sends `request` through the daemon's control channel and waits for its answer.
async fn ask(commands: &mpsc::Sender<Command>, request: Request) -> Result<Value, String> {
    let (reply, answer) = oneshot::channel();
    commands
        .send(Command { request, reply })
        .await
        .map_err(|_| "the daemon is stopping".to_owned())?;
    let reply = answer
        .await
        .map_err(|_| "the daemon did not answer".to_owned())?;
    if reply.ok {
        Ok(reply.result.unwrap_or(Value::Null))
    } else {
        Err(reply.error.unwrap_or_else(|| "refused".to_owned()))
    }
}

/// This machine's name (`/proc/sys/kernel/hostname`), or `unknown`.
pub(super) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
