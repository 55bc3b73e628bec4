//! A lease kept alive in the background: what members and leaders hold their keys under, so
//! their keys vanish from etcd once their process stops refreshing it.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::connection::Etcd;
use crate::error::FleetError;

/// The shortest lease etcd grants is a few seconds; anything under one is refused here.
pub const MIN_TTL: Duration = Duration::from_secs(1);

/// A granted lease and the task refreshing it every third of its TTL.
///
/// The lease is *lost* when etcd says it no longer exists or when no refresh succeeded for a
/// whole TTL (the process was paused, or the cluster unreachable): from then on
/// [`KeptLease::is_lost`] is true, for good. Dropping it stops the refreshes, so etcd expires
/// it (and deletes its keys) one TTL later; [`KeptLease::revoke`] removes it at once.
pub(crate) struct KeptLease {
    etcd: Etcd,
    id: i64,
    ttl: Duration,
    lost: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl KeptLease {
    /// Grants a lease of `ttl` (whole seconds, at least [`MIN_TTL`]) and starts refreshing it.
    pub(crate) async fn grant(etcd: &Etcd, ttl: Duration, what: &str) -> Result<Self, FleetError> {
        let ttl = ttl.max(MIN_TTL);
        let seconds = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let op = format!("grant a lease for {what}");
        let granted = etcd
            .retry(&op, |mut client| async move {
                client.lease_grant(seconds, None).await
            })
            .await?;
        let id = granted.id();
        let ttl = Duration::from_secs(u64::try_from(granted.ttl()).unwrap_or(seconds as u64));
        let (tell, lost) = watch::channel(false);
        let task = tokio::spawn(refresh(etcd.clone(), id, ttl, tell));
        Ok(KeptLease {
            etcd: etcd.clone(),
            id,
            ttl,
            lost,
            task,
        })
    }

    /// The lease's id.
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    /// The lease's time to live.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// True once the lease is lost (see the type's documentation).
    pub(crate) fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Waits until the lease is lost.
    pub(crate) async fn lost(&self) {
        let mut lost = self.lost.clone();
        // An error means the refresh task ended, which it does only once the lease is lost.
        let _ = lost.wait_for(|lost| *lost).await;
    }

    /// Stops refreshing and revokes the lease, deleting every key held under it now.
    pub(crate) async fn revoke(self, what: &str) -> Result<(), FleetError> {
        self.task.abort();
        let op = format!("revoke the lease for {what}");
        let id = self.id;
        match self
            .etcd
            .retry(
                &op,
                |mut client| async move { client.lease_revoke(id).await },
            )
            .await
        {
            Ok(_) => Ok(()),
            // Already expired: its keys are gone, which is what was asked.
            Err(FleetError::Etcd { detail, .. }) if detail.contains("not found") => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Stops refreshing without revoking: the lease expires one TTL later, as if the process
    /// had died.
    pub(crate) fn abandon(&self) {
        self.task.abort();
    }
}

impl Drop for KeptLease {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Refreshes lease `id` every third of `ttl` until etcd says it is gone or a whole TTL passes
/// without a refresh; then reports it lost.
async fn refresh(etcd: Etcd, id: i64, ttl: Duration, lost: watch::Sender<bool>) {
    let interval = ttl / 3;
    let mut expires = Instant::now() + ttl;
    let mut stream = None;
    loop {
        if Instant::now() >= expires {
            break;
        }
        if stream.is_none() {
            let mut client = etcd.client();
            match tokio::time::timeout(interval, client.lease_keep_alive(id)).await {
                Ok(Ok(pair)) => {
                    // Opening the stream refreshed the lease once already.
                    expires = Instant::now() + ttl;
                    stream = Some(pair);
                }
                Ok(Err(etcd_client::Error::LeaseKeepAliveError(_))) => break,
                _ => {
                    tokio::time::sleep(interval / 4).await;
                    continue;
                }
            }
        } else if let Some((keeper, responses)) = stream.as_mut() {
            let sent_at = Instant::now();
            let answer = async {
                keeper.keep_alive().await?;
                responses.message().await
            };
            match tokio::time::timeout(interval, answer).await {
                Ok(Ok(Some(response))) if response.ttl() > 0 => expires = sent_at + ttl,
                Ok(Ok(Some(_))) => break,
                // The stream broke (an etcd member went away): open another.
                _ => {
                    stream = None;
                    continue;
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
    let _ = lost.send(true);
}
