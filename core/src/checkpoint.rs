//! Checkpoint requests: code in the tree asks the runner to save the running tree now.
//!
//! Twisted's TAC files checkpoint with `TimerService(60, IPersistable(application).save)`. Core
//! does no snapshot I/O, so here a request is only a notification: the runner (`rtwistd`)
//! [`listen`]s and saves where its checkpoints go (the store, or `NAME-checkpoint.tap`). The
//! `Checkpoint` timer task of `rtwisted-services` sends one per run. A request
//! made while a save is under way is kept and answered after it; requests never pile up.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

fn requests() -> &'static Notify {
    static REQUESTS: OnceLock<Notify> = OnceLock::new();
    REQUESTS.get_or_init(Notify::new)
}

static LISTENERS: AtomicUsize = AtomicUsize::new(0);

/// Asks the runner for a checkpoint. False when nothing listens (the tree runs outside
/// `rtwistd`), so the caller can say that no checkpoint will be saved.
pub fn request() -> bool {
    if LISTENERS.load(Ordering::Acquire) == 0 {
        return false;
    }
    requests().notify_one();
    true
}

/// The runner's side: while a `Listener` lives, [`request`] reaches it.
#[derive(Debug)]
pub struct Listener(());

/// Starts listening for checkpoint requests.
pub fn listen() -> Listener {
    LISTENERS.fetch_add(1, Ordering::AcqRel);
    Listener(())
}

impl Listener {
    /// Waits for the next request.
    pub async fn requested(&self) {
        requests().notified().await;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        LISTENERS.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_request_reaches_a_listener_and_fails_without_one() {
        // One test owns the process-wide listener count, so the two halves cannot race.
        assert!(!request());
        let listener = listen();
        assert!(request());
        tokio::time::timeout(Duration::from_secs(5), listener.requested())
            .await
            .expect("the request was not delivered");
        drop(listener);
        assert!(!request());
    }
}
