//! # Members: which daemons run an application, each under a lease
//!
//! A daemon registers itself under `members/APP/ID` with what `rtap status --fleet` shows
//! (host, PID, the snapshot it runs, its state, its last checkpoint), held by a lease it keeps
//! alive. When the daemon dies its lease expires one TTL later and etcd deletes the key: a
//! dead member disappears without anyone cleaning up. A live member whose lease was lost
//! anyway (etcd unreachable for longer than the TTL, or the lease revoked) registers again
//! under a new lease, with the same id, as soon as etcd answers.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::PutOptions;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::connection::Etcd;
use crate::error::FleetError;
use crate::lease::KeptLease;
use crate::store::check_app;

/// What a member tells the fleet about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The machine's host name.
    pub host: String,
    /// The daemon's process id.
    pub pid: u32,
    /// The snapshot it runs (`APP@N`), if it runs one from the store.
    pub snapshot: Option<String>,
    /// Its state (`starting`, `running`, `standby`, `leader`, `stopping`).
    pub state: String,
    /// Its last checkpoint into the store (`APP@N`), if any.
    pub last_checkpoint: Option<String>,
}

/// A registered member, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's id (unique in the fleet: its lease's id in hex).
    pub id: String,
    /// What it said about itself.
    pub info: MemberInfo,
}

/// This process's membership, kept up by a background task: it refreshes the lease and, if
/// the lease is lost while this value lives, registers again under a new one.
///
/// Dropping it stops that task, so the member vanishes one TTL later;
/// [`Membership::leave`] removes it at once.
pub struct Membership {
    etcd: Etcd,
    app: String,
    id: String,
    key: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// What the membership's task and its owner share.
struct Shared {
    /// What the member last said about itself, written again at each new registration.
    info: Mutex<MemberInfo>,
    /// The lease the key is held under now; 0 while registering again.
    lease: AtomicI64,
    /// How many times the member registered again after losing its lease.
    renewals: AtomicU64,
}

/// Registers this process as a member of `app`'s fleet under a lease of `ttl`.
pub async fn register(
    etcd: &Etcd,
    app: &str,
    info: &MemberInfo,
    ttl: Duration,
) -> Result<Membership, FleetError> {
    check_app(app)?;
    let what = format!("a member of {app}");
    let lease = KeptLease::grant(etcd, ttl, &what).await?;
    let id = format!("{:016x}", lease.id());
    let key = etcd.key(&format!("members/{app}/{id}"));
    let op = format!("register member {app}/{id}");
    put_info(etcd, &op, &key, info, lease.id()).await?;
    let shared = Arc::new(Shared {
        info: Mutex::new(info.clone()),
        lease: AtomicI64::new(lease.id()),
        renewals: AtomicU64::new(0),
    });
    let task = tokio::spawn(keep_registered(
        etcd.clone(),
        key.clone(),
        ttl,
        what,
        lease,
        shared.clone(),
    ));
    Ok(Membership {
        etcd: etcd.clone(),
        app: app.to_owned(),
        id,
        key,
        shared,
        task,
    })
}

/// Writes the member's record under `lease`.
async fn put_info(
    etcd: &Etcd,
    op: &str,
    key: &str,
    info: &MemberInfo,
    lease: i64,
) -> Result<(), FleetError> {
    let value = serde_json::to_vec(info).unwrap_or_default();
    let options = PutOptions::new().with_lease(lease);
    etcd.put(op, key.to_owned(), value, Some(options)).await?;
    Ok(())
}

/// Waits for the lease to be lost, then registers again under a new one, for as long as the
/// membership lives.
async fn keep_registered(
    etcd: Etcd,
    key: String,
    ttl: Duration,
    what: String,
    mut lease: KeptLease,
    shared: Arc<Shared>,
) {
    let op = format!("register {what} again");
    loop {
        lease.lost().await;
        shared.lease.store(0, Ordering::SeqCst);
        loop {
            if let Ok(fresh) = KeptLease::grant(&etcd, ttl, &what).await {
                let info = shared
                    .info
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if put_info(&etcd, &op, &key, &info, fresh.id()).await.is_ok() {
                    shared.lease.store(fresh.id(), Ordering::SeqCst);
                    shared.renewals.fetch_add(1, Ordering::SeqCst);
                    lease = fresh;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Every live member of `app`'s fleet, by id.
pub async fn list(etcd: &Etcd, app: &str) -> Result<Vec<Member>, FleetError> {
    check_app(app)?;
    let prefix = etcd.key(&format!("members/{app}/"));
    let op = format!("list the members of {app}");
    etcd.scan(&op, &prefix, false)
        .await?
        .iter()
        .map(|kv| {
            let key = String::from_utf8_lossy(kv.key());
            let info = serde_json::from_slice(kv.value()).map_err(|error| FleetError::Damaged {
                key: key.clone().into_owned(),
                detail: format!("unreadable member record ({error})"),
            })?;
            Ok(Member {
                id: key.strip_prefix(&prefix).unwrap_or(&key).to_owned(),
                info,
            })
        })
        .collect()
}

impl Membership {
    /// The member's id (the same across registrations).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Replaces what the member tells the fleet (its state, its snapshot, its checkpoint).
    /// While the member is registering again, the new record is what it registers with.
    pub async fn update(&self, info: &MemberInfo) -> Result<(), FleetError> {
        *self.shared.info.lock().unwrap_or_else(|e| e.into_inner()) = info.clone();
        let lease = self.shared.lease.load(Ordering::SeqCst);
        if lease == 0 {
            return Ok(());
        }
        let op = format!("register member {}/{}", self.app, self.id);
        put_info(&self.etcd, &op, &self.key, info, lease).await
    }

    /// True while the member is registered (not between a lost lease and its new one).
    pub fn is_current(&self) -> bool {
        self.shared.lease.load(Ordering::SeqCst) != 0
    }

    /// How many times the member registered again after losing its lease.
    pub fn renewals(&self) -> u64 {
        self.shared.renewals.load(Ordering::SeqCst)
    }

    /// Leaves the fleet now (revokes the lease, deleting the member's key).
    pub async fn leave(self) -> Result<(), FleetError> {
        self.task.abort();
        let lease = self.shared.lease.load(Ordering::SeqCst);
        if lease == 0 {
            return Ok(());
        }
        let op = format!("leave as member {}/{}", self.app, self.id);
        match self
            .etcd
            .retry(
                &op,
                |mut client| async move { client.lease_revoke(lease).await },
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(FleetError::Etcd { detail, .. }) if detail.contains("not found") => Ok(()),
            Err(error) => Err(error),
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.task.abort();
    }
}
