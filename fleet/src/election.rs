//! # Leader election with fencing, for `--singleton`
//!
//! Candidates for an application each put a key `elections/APP/LEASE` under their own lease;
//! the key created first (lowest create revision) is the leader, and each other candidate waits
//! for the key just before its own to go. A leader's key goes when it resigns, when its process
//! dies (the lease expires one TTL later), or when its lease is revoked.
//!
//! Leadership alone is not enough to write safely: a leader paused past its TTL wakes up still
//! believing it leads. So a leader writes under a [`Fence`], its key and that key's create
//! revision, and the store's commit checks both in the same transaction
//! ([`Save::fence`](crate::store::Save::fence)): once the key is gone or was created again by
//! someone else, the write is refused with [`FleetError::Fenced`], and nothing is written.
//!
//! The same rule as Patroni's, on etcd's primitives: the lease is the heartbeat, the key's
//! revision the epoch.

use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
    TxnResponse, WatchOptions,
};
use std::time::Duration;

use crate::connection::Etcd;
use crate::error::FleetError;
use crate::lease::KeptLease;

/// Proof of a leadership, checked by every write made under it: the leader key and the
/// revision at which it was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The application the election is for.
    pub app: String,
    /// The leader key.
    pub key: String,
    /// The create revision of the leader key (the leadership's epoch: a later leader always has
    /// a higher one).
    pub revision: i64,
}

impl Fence {
    /// The compare a fenced transaction carries: the key exists, created at this revision.
    pub(crate) fn compare(&self) -> Compare {
        Compare::create_revision(self.key.clone(), CompareOp::Equal, self.revision)
    }

    /// The read a fenced transaction's failure branch makes, for [`Fence::check_in`].
    pub(crate) fn read(&self) -> TxnOp {
        TxnOp::get(self.key.clone(), None)
    }

    /// After a failed fenced transaction: [`FleetError::Fenced`] if the failure branch's read
    /// found the leader key gone or re-created.
    pub(crate) fn check_in(&self, response: &TxnResponse) -> Result<(), FleetError> {
        let current = response.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(get) => Some(get.kvs().first().map(|kv| kv.create_revision())),
            _ => None,
        });
        match current {
            Some(Some(revision)) if revision == self.revision => Ok(()),
            _ => Err(self.fenced()),
        }
    }

    fn fenced(&self) -> FleetError {
        FleetError::Fenced {
            app: self.app.clone(),
            key: self.key.clone(),
        }
    }
}

/// The election for one application's singleton services.
#[derive(Clone)]
pub struct Election {
    etcd: Etcd,
    app: String,
    prefix: String,
}

/// Who leads an election, as anyone can read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The leader key.
    pub key: String,
    /// What the leader campaigned with (its member id, say).
    pub value: String,
    /// The leader key's create revision (its fence revision).
    pub revision: i64,
}

/// This process leads the election, for as long as its lease holds.
///
/// Dropping it stops refreshing the lease, so the leadership ends one TTL later;
/// [`Leader::resign`] ends it at once.
pub struct Leader {
    fence: Fence,
    lease: KeptLease,
}

impl Election {
    /// The election for `app`'s singleton services.
    pub fn new(etcd: &Etcd, app: &str) -> Result<Election, FleetError> {
        crate::store::check_app(app)?;
        Ok(Election {
            etcd: etcd.clone(),
            app: app.to_owned(),
            prefix: etcd.key(&format!("elections/{app}/")),
        })
    }

    /// Stands for election with `value` (shown to others by [`Election::leader`]) under a lease
    /// of `ttl`, and waits until this candidate leads. Each request is held to the
    /// connection's deadline; the wait itself is not (standbys wait for as long as the leader
    /// lives), but ends with [`FleetError::LeaseExpired`] if this candidate's own lease is lost
    /// meanwhile. Dropping the future gives up the candidacy one TTL later.
    pub async fn campaign(&self, value: &str, ttl: Duration) -> Result<Leader, FleetError> {
        let what = format!("the leadership of {}", self.app);
        let lease = KeptLease::grant(&self.etcd, ttl, &what).await?;
        let key = format!("{}{:016x}", self.prefix, lease.id());
        let op = format!("campaign for {}", self.app);
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then(vec![TxnOp::put(
                key.clone(),
                value,
                Some(etcd_client::PutOptions::new().with_lease(lease.id())),
            )])
            .or_else(vec![TxnOp::get(key.clone(), None)]);
        let response = self.etcd.txn(&op, txn).await?;
        let revision = match response.op_responses().into_iter().next() {
            Some(TxnOpResponse::Get(get)) => get.kvs().first().map(|kv| kv.create_revision()),
            _ => response.header().map(|header| header.revision()),
        }
        .unwrap_or(0);
        let fence = Fence {
            app: self.app.clone(),
            key,
            revision,
        };
        tokio::select! {
            result = self.wait_for_turn(&op, revision) => result?,
            () = lease.lost() => {
                return Err(FleetError::LeaseExpired { what, lease: lease.id() });
            }
        }
        // Our own key may have gone meanwhile (the lease revoked from outside): then this is no
        // leadership at all.
        let mine = self.etcd.get(&op, fence.key.clone(), None).await?;
        if mine.kvs().first().map(|kv| kv.create_revision()) != Some(fence.revision) {
            return Err(FleetError::LeaseExpired {
                what,
                lease: lease.id(),
            });
        }
        Ok(Leader { fence, lease })
    }

    /// Waits until no candidate key older than `revision` is left.
    async fn wait_for_turn(&self, op: &str, revision: i64) -> Result<(), FleetError> {
        loop {
            let options = GetOptions::new()
                .with_prefix()
                .with_max_create_revision(revision - 1)
                .with_sort(SortTarget::Create, SortOrder::Descend)
                .with_limit(1);
            let response = self
                .etcd
                .get(op, self.prefix.clone(), Some(options))
                .await?;
            let Some(before) = response.kvs().first() else {
                return Ok(());
            };
            let watched = before.key().to_vec();
            let from = response.header().map_or(0, |h| h.revision()) + 1;
            let options = WatchOptions::new().with_start_revision(from);
            let mut events = self.etcd.watch(op, watched, options).await?;
            // Until the key before ours is deleted; a broken watch just looks again.
            'watch: loop {
                match events.message().await {
                    Ok(Some(message)) => {
                        if message.canceled()
                            || message
                                .events()
                                .iter()
                                .any(|event| event.event_type() == EventType::Delete)
                        {
                            break 'watch;
                        }
                    }
                    Ok(None) | Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break 'watch;
                    }
                }
            }
        }
    }

    /// The current leader, if any.
    pub async fn leader(&self) -> Result<Option<LeaderInfo>, FleetError> {
        let op = format!("read the leader of {}", self.app);
        let options = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Ascend)
            .with_limit(1);
        let response = self
            .etcd
            .get(&op, self.prefix.clone(), Some(options))
            .await?;
        Ok(response.kvs().first().map(|kv| LeaderInfo {
            key: String::from_utf8_lossy(kv.key()).into_owned(),
            value: String::from_utf8_lossy(kv.value()).into_owned(),
            revision: kv.create_revision(),
        }))
    }
}

impl Leader {
    /// The fence every write under this leadership carries.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// True while the lease is believed alive. Once false, the singleton services must stop
    /// at once; etcd refuses fenced writes by then anyway.
    pub fn is_current(&self) -> bool {
        !self.lease.is_lost()
    }

    /// Waits until the leadership is lost (the lease expired or could not be refreshed for a
    /// whole TTL).
    pub async fn lost(&self) {
        self.lease.lost().await;
    }

    /// The lease's time to live.
    pub fn ttl(&self) -> Duration {
        self.lease.ttl()
    }

    /// Gives up the leadership now: revokes the lease, deleting the leader key, so the next
    /// candidate takes over at once.
    pub async fn resign(self) -> Result<(), FleetError> {
        let what = format!("the leadership of {}", self.fence.app);
        self.lease.revoke(&what).await
    }

    /// Stops refreshing the lease as a crashed process would: the leadership ends one TTL
    /// later. For tests of failover.
    pub fn abandon(&self) {
        self.lease.abandon();
    }
}
