//! A lease kept alive in the background: what members and leaders hold their keys under, so
//! their keys vanish from etcd once their process stops refreshing it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::connection::Etcd;
use crate::error::FleetError;

/// The shortest lease asked for: a shorter TTL is raised to it. (etcd may raise a TTL further,
/// to about 1.5 times its election timeout; the TTL it grants is the one kept.)
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
    expires: Arc<Mutex<Instant>>,
    task: JoinHandle<()>,
}

impl KeptLease {
    /// Grants a lease of `ttl` (whole seconds, at least [`MIN_TTL`]) and starts refreshing it.
    pub(crate) async fn grant(etcd: &Etcd, ttl: Duration, what: &str) -> Result<Self, FleetError> {
        let ttl = ttl.max(MIN_TTL);
        let seconds = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let op = format!("grant a lease for {what}");
        let asked = Instant::now();
        let granted = etcd
            .retry(&op, |mut client| async move {
                client.lease_grant(seconds, None).await
            })
            .await?;
        let id = granted.id();
        let ttl = Duration::from_secs(u64::try_from(granted.ttl()).unwrap_or(seconds as u64));
        let (tell, lost) = watch::channel(false);
        // Counted from before the grant was asked for: never later than etcd's own expiry.
        let expires = Arc::new(Mutex::new(asked + ttl));
        let task = tokio::spawn(refresh(etcd.clone(), id, ttl, expires.clone(), tell));
        Ok(KeptLease {
            etcd: etcd.clone(),
            id,
            ttl,
            lost,
            expires,
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

    /// True once the lease is lost (see the type's documentation). Read from the clock, so a
    /// process resumed after a pause longer than the TTL sees it at once, before any refresh.
    pub(crate) fn is_lost(&self) -> bool {
        *self.lost.borrow() || Instant::now() >= self.expiry()
    }

    fn expiry(&self) -> Instant {
        *self.expires.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the lease is lost.
    pub(crate) async fn lost(&self) {
        let mut lost = self.lost.clone();
        loop {
            if self.is_lost() {
                return;
            }
            let expiry = tokio::time::Instant::from_std(self.expiry());
            tokio::select! {
                // An error: the refresh task ended; the clock decides from here on.
                changed = lost.changed() => if changed.is_err() {
                    tokio::time::sleep_until(expiry).await;
                },
                () = tokio::time::sleep_until(expiry) => {}
            }
        }
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
/// without a refresh; then reports it lost. `expires` is this side's view of the expiry (never
/// later than etcd's, since each refresh counts from when it was sent); once it has passed it is
/// never moved again, so a lease seen lost stays lost.
async fn refresh(
    etcd: Etcd,
    id: i64,
    ttl: Duration,
    expires: Arc<Mutex<Instant>>,
    lost: watch::Sender<bool>,
) {
    let interval = ttl / 3;
    let mut stream = None;
    loop {
        let sent_at = Instant::now();
        let refreshed = match stream.as_mut() {
            None => {
                let mut client = etcd.client();
                match tokio::time::timeout(interval, client.lease_keep_alive(id)).await {
                    // Opening the stream refreshed the lease once already.
                    Ok(Ok(pair)) => {
                        stream = Some(pair);
                        true
                    }
                    Ok(Err(etcd_client::Error::LeaseKeepAliveError(_))) => break,
                    _ => false,
                }
            }
            Some((keeper, responses)) => {
                let answer = async {
                    keeper.keep_alive().await?;
                    responses.message().await
                };
                match tokio::time::timeout(interval, answer).await {
                    Ok(Ok(Some(response))) if response.ttl() > 0 => true,
                    Ok(Ok(Some(_))) => break,
                    // The stream broke (an etcd member went away): open another.
                    _ => {
                        stream = None;
                        false
                    }
                }
            }
        };
        {
            let mut expiry = expires.lock().unwrap_or_else(|e| e.into_inner());
            if Instant::now() >= *expiry {
                break;
            }
            if refreshed {
                *expiry = sent_at + ttl;
            }
        }
        let pause = if refreshed { interval } else { interval / 4 };
        tokio::time::sleep(pause).await;
    }
    let _ = lost.send(true);
}
