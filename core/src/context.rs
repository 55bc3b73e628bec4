//! What the lifecycle driver hands each hook: [`StartContext`] and [`StopContext`].
//!
//! A service never reaches for process-wide state. What it may need from the world around it
//! comes in its context:
//! - its own [`path`](StartContext::path) in the tree (for log lines);
//! - a [`CheckpointRequester`], to ask the runner (`rtwistd`) to save the running tree now,
//!   as Twisted's `TimerService(60, IPersistable(app).save)` does;
//! - a set of live [`Counters`] that `rtap status` and the metrics endpoint read while the
//!   service runs;
//! - at a stop, the [`reason`](StopContext::reason) and the [`deadline`](StopContext::deadline)
//!   after which the driver abandons the hook.
//!
//! ```
//! use rtwisted_core::context::{checkpoint_channel, Counters};
//! let (requester, requests) = checkpoint_channel();
//! assert!(requester.request());
//! drop(requests);
//! assert!(!requester.request(), "nobody saves checkpoints any more");
//!
//! let counters = Counters::default();
//! counters.counter("connections_total").add(2);
//! assert_eq!(counters.values(), [("connections_total", 2)]);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::path::ServicePath;
use crate::service::StopReason;

/// The context of `privileged_start` and `start`.
#[derive(Debug, Clone)]
pub struct StartContext {
    path: ServicePath,
    checkpoints: CheckpointRequester,
    counters: Counters,
    inherited: Inherited,
}

impl StartContext {
    /// A context for the service at `path`, built by the driver.
    pub fn new(path: ServicePath, checkpoints: CheckpointRequester, counters: Counters) -> Self {
        StartContext {
            path,
            checkpoints,
            counters,
            inherited: Inherited::default(),
        }
    }

    /// The same context, offering the sockets a predecessor handed over.
    pub fn with_inherited(mut self, inherited: Inherited) -> Self {
        self.inherited = inherited;
        self
    }

    /// The descriptors a predecessor handed over under `key` (see
    /// [`Service::handover_sockets`](crate::Service::handover_sockets)), taken once: a server
    /// that gets them listens on them instead of binding again.
    pub fn take_inherited(&self, key: &str) -> Option<Vec<OwnedFd>> {
        self.inherited.take(key)
    }

    /// The service's path from the root of the tree being started.
    pub fn path(&self) -> &ServicePath {
        &self.path
    }

    /// A handle that asks the runner for a checkpoint; keep a clone for later.
    pub fn checkpoints(&self) -> &CheckpointRequester {
        &self.checkpoints
    }

    /// The service's live counters; keep a clone and update it while running.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// Sockets handed over by a predecessor process, by key, until services take them.
#[derive(Clone, Default)]
pub struct Inherited {
    sockets: Arc<Mutex<HashMap<String, Vec<OwnedFd>>>>,
}

impl fmt::Debug for Inherited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys()).finish()
    }
}

impl Inherited {
    /// Offers `fds` under `key`.
    pub fn insert(&self, key: String, fds: Vec<OwnedFd>) {
        self.sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, fds);
    }

    /// Takes what is offered under `key`.
    pub fn take(&self, key: &str) -> Option<Vec<OwnedFd>> {
        self.sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
    }

    /// The keys still on offer (nobody took them), sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    /// Closes everything nobody took.
    pub fn clear(&self) {
        self.sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// The context of `stop`.
#[derive(Debug, Clone)]
pub struct StopContext {
    path: ServicePath,
    reason: StopReason,
    deadline: Instant,
}

impl StopContext {
    /// A context for stopping the service at `path`, built by the driver.
    pub fn new(path: ServicePath, reason: StopReason, deadline: Instant) -> Self {
        StopContext {
            path,
            reason,
            deadline,
        }
    }

    /// The service's path.
    pub fn path(&self) -> &ServicePath {
        &self.path
    }

    /// Why the service stops.
    pub fn reason(&self) -> StopReason {
        self.reason
    }

    /// When the driver abandons the stop hook. A service that drains work gracefully (a server
    /// letting connections finish) plans its stop around it.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// Asks the runner for a checkpoint; cheap to clone. A request made while a save is under way
/// is kept and answered after it; requests never pile up.
#[derive(Clone, Default)]
pub struct CheckpointRequester {
    shared: Option<Arc<CheckpointShared>>,
}

#[derive(Default)]
struct CheckpointShared {
    notify: Notify,
    listening: AtomicBool,
}

impl fmt::Debug for CheckpointRequester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointRequester")
            .field("listening", &self.is_listened_to())
            .finish()
    }
}

impl CheckpointRequester {
    /// Asks for a checkpoint. False when nothing saves checkpoints (the tree runs outside a
    /// runner, or the runner stopped listening), so the caller can say that none will be saved.
    pub fn request(&self) -> bool {
        match &self.shared {
            Some(shared) if shared.listening.load(Ordering::Acquire) => {
                shared.notify.notify_one();
                true
            }
            _ => false,
        }
    }

    /// True while a [`CheckpointRequests`] receives what this handle asks for.
    pub fn is_listened_to(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|shared| shared.listening.load(Ordering::Acquire))
    }
}

/// The runner's side of [`checkpoint_channel`]: while it lives, requests reach it.
#[derive(Debug)]
pub struct CheckpointRequests {
    shared: Arc<CheckpointShared>,
}

impl fmt::Debug for CheckpointShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckpointShared")
    }
}

impl CheckpointRequests {
    /// Waits for the next request.
    pub async fn requested(&self) {
        self.shared.notify.notified().await;
    }
}

impl Drop for CheckpointRequests {
    fn drop(&mut self) {
        self.shared.listening.store(false, Ordering::Release);
    }
}

/// A connected pair: give the requester to the [`Lifecycle`](crate::Lifecycle), which hands
/// it to every service it starts; the runner waits on the requests.
pub fn checkpoint_channel() -> (CheckpointRequester, CheckpointRequests) {
    let shared = Arc::new(CheckpointShared {
        notify: Notify::new(),
        listening: AtomicBool::new(true),
    });
    (
        CheckpointRequester {
            shared: Some(Arc::clone(&shared)),
        },
        CheckpointRequests { shared },
    )
}

/// A service's live counters and facts, shared between the service (which updates them) and
/// the framework (which shows them in `rtap status` and `/metrics`). Cheap to clone; every clone
/// is the same set. Names are `snake_case`, counted things end in `_total`.
#[derive(Clone, Default)]
pub struct Counters {
    inner: Arc<CountersInner>,
}

#[derive(Default)]
struct CountersInner {
    counters: Mutex<Vec<(&'static str, Counter)>>,
    facts: Mutex<Vec<(String, String)>>,
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.values()).finish()
    }
}

impl Counters {
    /// The counter called `name`, created at zero the first time it is asked for.
    pub fn counter(&self, name: &'static str) -> Counter {
        let mut counters = self
            .inner
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, counter)) = counters.iter().find(|(known, _)| *known == name) {
            return counter.clone();
        }
        let counter = Counter::default();
        counters.push((name, counter.clone()));
        counter
    }

    /// Every counter with its value, in the order they were first asked for.
    pub fn values(&self) -> Vec<(&'static str, u64)> {
        self.inner
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, counter)| (*name, counter.get()))
            .collect()
    }

    /// Records a fact about the running service, such as the address it is bound to.
    pub fn set_fact(&self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        let mut facts = self
            .inner
            .facts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match facts.iter_mut().find(|(known, _)| known == &name) {
            Some((_, old)) => *old = value,
            None => facts.push((name, value)),
        }
    }

    /// Every fact, in the order they were first set.
    pub fn facts(&self) -> Vec<(String, String)> {
        self.inner
            .facts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets every fact (counters keep counting across restarts of the service).
    pub fn clear_facts(&self) {
        self.inner
            .facts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// One live counter (or gauge): an atomic number shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts `n`, stopping at zero (for gauges such as open connections).
    pub fn sub(&self, n: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |value| {
                Some(value.saturating_sub(n))
            });
    }

    /// Sets the value (for gauges such as items stored).
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_request_reaches_the_runner_and_fails_without_one() {
        assert!(!CheckpointRequester::default().request());
        let (requester, requests) = checkpoint_channel();
        assert!(requester.clone().request());
        tokio::time::timeout(Duration::from_secs(5), requests.requested())
            .await
            .expect("the request was not delivered");
        drop(requests);
        assert!(!requester.request());
    }

    #[test]
    fn counters_are_shared_by_clones_and_keep_their_order() {
        let counters = Counters::default();
        let open = counters.clone().counter("connections_open");
        counters.counter("bytes_in_total").add(10);
        open.add(3);
        open.sub(5);
        assert_eq!(
            counters.values(),
            [("connections_open", 0), ("bytes_in_total", 10)]
        );
        counters.set_fact("address", "127.0.0.1:1");
        counters.set_fact("address", "127.0.0.1:2");
        assert_eq!(
            counters.facts(),
            [("address".to_owned(), "127.0.0.1:2".to_owned())]
        );
    }
}
