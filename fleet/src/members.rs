//! # Members: which daemons run an application, each under a lease
//!
//! A daemon registers itself under `members/APP/ID` with what `rtap status --fleet` shows
//! (host, PID, the snapshot it runs, its state, its last checkpoint), held by a lease it keeps
//! alive. When the daemon dies its lease expires one TTL later and etcd deletes the key: a
//! dead member disappears without anyone cleaning up.

use std::time::Duration;

use etcd_client::{GetOptions, PutOptions};
use serde::{Deserialize, Serialize};

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

/// This process's membership. Dropping it stops the lease's refreshes, so the member vanishes
/// one TTL later; [`Membership::leave`] removes it at once.
pub struct Membership {
    etcd: Etcd,
    app: String,
    id: String,
    key: String,
    lease: KeptLease,
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
    let membership = Membership {
        etcd: etcd.clone(),
        app: app.to_owned(),
        id,
        key,
        lease,
    };
    membership.update(info).await?;
    Ok(membership)
}

/// Every live member of `app`'s fleet, by id.
pub async fn list(etcd: &Etcd, app: &str) -> Result<Vec<Member>, FleetError> {
    check_app(app)?;
    let prefix = etcd.key(&format!("members/{app}/"));
    let op = format!("list the members of {app}");
    let response = etcd
        .get(&op, prefix.clone(), Some(GetOptions::new().with_prefix()))
        .await?;
    response
        .kvs()
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
    /// The member's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Replaces what the member tells the fleet (its state, its snapshot, its checkpoint).
    pub async fn update(&self, info: &MemberInfo) -> Result<(), FleetError> {
        if self.lease.is_lost() {
            return Err(FleetError::LeaseExpired {
                what: format!("member {}/{}", self.app, self.id),
                lease: self.lease.id(),
            });
        }
        let op = format!("register member {}/{}", self.app, self.id);
        let value = serde_json::to_vec(info).unwrap_or_default();
        let options = PutOptions::new().with_lease(self.lease.id());
        self.etcd
            .put(&op, self.key.clone(), value, Some(options))
            .await?;
        Ok(())
    }

    /// True while the lease is believed alive.
    pub fn is_current(&self) -> bool {
        !self.lease.is_lost()
    }

    /// Leaves the fleet now (revokes the lease, deleting the member's key).
    pub async fn leave(self) -> Result<(), FleetError> {
        let what = format!("member {}/{}", self.app, self.id);
        self.lease.revoke(&what).await
    }
}
